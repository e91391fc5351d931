// Helpers for tests that run workers as real processes.
import { join } from "node:path";

const ROOT = join(import.meta.dirname!, "..", "..", "..");

/** A free loopback port: bind port 0, note it, release it. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A worker process under test. */
export interface Started {
  child: Deno.ChildProcess;
  origin: string;
  output: Promise<string>;
}

/** Runs `deno run -A entry` as tqserver would and waits (bounded) until `/health` answers 2xx. */
export async function startWorker(
  entry: string,
  env: Record<string, string>,
): Promise<Started> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", entry],
    cwd: ROOT,
    env: { ...env, TQ_PORT: String(port), NO_COLOR: "1" },
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const output = new Response(child.stderr).text();
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${origin}/health`, {
        signal: AbortSignal.timeout(1000),
      });
      await res.body?.cancel();
      if (res.ok) return { child, origin, output };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`Worker "${entry}" not healthy in 15 s: ${await output}`);
}

/** Waits for the exit status, at most `ms`; kills the process when it overstays. */
export async function exitWithin(
  child: Deno.ChildProcess,
  ms: number,
): Promise<Deno.CommandStatus | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    child.status,
    new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), ms)
    ),
  ]);
  clearTimeout(timer);
  if (result === "timeout") {
    child.kill("SIGKILL");
    await child.status;
  }
  return result;
}
