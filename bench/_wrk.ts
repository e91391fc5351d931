/**
 * Runs `wrk` and reads its report: good answers per second (non-2xx/3xx and
 * socket errors never count), p99 latency (`--latency`) and bytes per second.
 *
 * @module
 */

/** What one wrk run measured. */
export interface WrkResult {
  requests: number;
  seconds: number;
  non2xx: number;
  socketErrors: number;
  /** Good (2xx/3xx) responses per second. */
  rps: number;
  /** 99th percentile latency in milliseconds (NaN when wrk printed none). */
  p99Ms: number;
  /** Transfer per second in MiB. */
  mibPerSec: number;
}

/** Options of {@linkcode runWrk}. */
export interface WrkOptions {
  threads: number;
  connections: number;
  /** Seconds. */
  duration: number;
  /** A Lua script for `wrk -s` (e.g. a POST body). Default none. */
  script?: string;
}

const UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60_000 };
const SIZES: Record<string, number> = {
  B: 1 / 1048576,
  KB: 1 / 1024,
  MB: 1,
  GB: 1024,
  TB: 1024 * 1024,
};

/** Parses wrk's text report. @throws {Error} When the text is not a wrk report. */
export function parseWrk(text: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text);
  if (!total) throw new Error(`Cannot read wrk output:\n${text}`);
  const requests = Number(total[1]);
  const seconds = Number(total[2]) * UNITS[total[3]!]! / 1000;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const sock =
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
      .exec(text);
  const socketErrors = sock
    ? sock.slice(1).reduce((sum, n) => sum + Number(n), 0)
    : 0;
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text);
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/.exec(text);
  return {
    requests,
    seconds,
    non2xx,
    socketErrors,
    rps: Math.max(0, requests - non2xx) / seconds,
    p99Ms: p99 ? Number(p99[1]) * UNITS[p99[2]!]! : NaN,
    mibPerSec: transfer ? Number(transfer[1]) * SIZES[transfer[2]!]! : 0,
  };
}

/** True when `wrk` is on the PATH. */
export async function hasWrk(): Promise<boolean> {
  try {
    await new Deno.Command("wrk", {
      args: ["-v"],
      stdout: "null",
      stderr: "null",
    }).output();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Runs wrk against `url` with `--latency`. @throws {Error} When wrk fails. */
export async function runWrk(
  url: string,
  options: WrkOptions,
): Promise<WrkResult> {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.duration}s`,
    "--timeout",
    "5s",
    "--latency",
  ];
  if (options.script) args.push("-s", options.script);
  const out = await new Deno.Command("wrk", {
    args: [...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`wrk failed:\n${text}`);
  return parseWrk(text);
}
