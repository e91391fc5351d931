// Folder-private: one host of a target, reached with the system ssh and rsync
// (or a local directory when the target has no hosts).

/** What a command printed and how it ended. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of a {@linkcode RunFn} call. */
export interface RunOptions {
  /** Written to the command's stdin, then closed. Default: nothing (stdin closed at once). */
  stdin?: string;
  /** Kill the command after this many ms. Default 600000. */
  timeoutMs?: number;
}

/** Runs a command; injectable for tests. */
export type RunFn = (cmd: string[], options?: RunOptions) => Promise<RunResult>;

const decoder = new TextDecoder();

/** Runs `cmd` with `Deno.Command`, killed (SIGTERM) when its time runs out. */
export async function runCommand(
  cmd: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const { stdin, timeoutMs = 600_000 } = options;
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  try {
    const writer = child.stdin.getWriter();
    if (stdin) {
      // A command that exits without reading its stdin fails its own way.
      await writer.write(new TextEncoder().encode(stdin)).catch(() => {});
    }
    await writer.close().catch(() => {});
    const out = await child.output();
    const stderr = decoder.decode(out.stderr);
    return {
      code: out.signal ? 124 : out.code,
      stdout: decoder.decode(out.stdout),
      stderr: out.signal
        ? `${stderr}(killed after ${timeoutMs} ms: ${cmd[0]})`
        : stderr,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Splits `ssh_options` as a shell would split an unexpanded word list:
 * whitespace separates, single and double quotes group, a backslash escapes.
 *
 * @throws {RangeError} On an unclosed quote.
 */
export function splitOptions(text: string): string[] {
  const out: string[] = [];
  let word = "";
  let inWord = false;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = "";
      else if (
        c === "\\" && quote === '"' && /["\\$`]/.test(text[i + 1] ?? "")
      ) {
        word += text[++i];
      } else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new RangeError(`Unclosed ${quote} in ssh_options "${text}"`);
  if (inWord) out.push(word);
  return out;
}

/** Quotes one argument of rsync's `-e` command (rsync splits it on spaces and honours quotes, not backslashes). */
function rsyncQuote(arg: string): string {
  if (!/[\s'"]/.test(arg)) return arg;
  if (!arg.includes("'")) return `'${arg}'`;
  if (!arg.includes('"')) return `"${arg}"`;
  throw new RangeError(
    `An ssh option with both quote characters cannot be passed to rsync: "${arg}"`,
  );
}

/** A failed remote step, with the host's own words. */
export class HostError extends Error {
  /** Exit code of the command (255: ssh could not reach the host or the connection dropped). */
  readonly code: number;
  constructor(message: string, code: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "HostError";
    this.code = code;
  }
}

/** Options for {@linkcode Host}. */
export interface HostOptions {
  /** `ssh_options` of the target. Default none. */
  sshOptions?: string;
  /** Command runner. Default {@linkcode runCommand}. */
  run?: RunFn;
}

/**
 * One host of a target: shell scripts run in its project root over ssh, and
 * rsync to it. An empty `login` is the local machine (`path` a directory).
 */
export class Host {
  /** `user@host` as written in the target, or empty for a local directory. */
  readonly login: string;
  /** Project root on the host (absolute, or relative to the login directory). */
  readonly path: string;
  readonly #ssh: string[];
  readonly #run: RunFn;

  constructor(login: string, path: string, options: HostOptions = {}) {
    const { sshOptions = "", run = runCommand } = options;
    this.login = login;
    this.path = path;
    this.#run = run;
    // Never wait for a password prompt or a host that does not answer; a
    // connection that goes silent is dropped within 15 s.
    this.#ssh = [
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "ServerAliveInterval=5",
      "-o",
      "ServerAliveCountMax=3",
      ...splitOptions(sshOptions),
    ];
  }

  /** The name used in messages: the login, or the path of a local target. */
  get label(): string {
    return this.login || this.path;
  }

  /** The host's address, for `{host}` in `admin_url`: the login without its user. */
  get address(): string {
    return this.login
      ? this.login.slice(this.login.lastIndexOf("@") + 1)
      : "127.0.0.1";
  }

  /**
   * Runs a POSIX sh script in the project root (created first with
   * `create`). Fails with a {@linkcode HostError} carrying the script's
   * stderr when it exits non-zero.
   */
  async sh(
    script: string,
    options: RunOptions & { create?: boolean; ifExists?: boolean } = {},
  ): Promise<string> {
    const res = await this.shResult(script, options);
    if (res.code !== 0) {
      throw new HostError(this.#failure(res), res.code);
    }
    return res.stdout;
  }

  /** Like {@linkcode sh}, but returns the result whatever the exit code. */
  async shResult(
    script: string,
    options: RunOptions & { create?: boolean; ifExists?: boolean } = {},
  ): Promise<RunResult> {
    const { create = false, ifExists = false, ...run } = options;
    const dir = shellQuote(this.path);
    // ifExists: on a host without the project yet the script runs in the
    // login directory with TQ_FRESH=1 (and "fresh=1" printed) instead of failing.
    const full = ifExists
      ? `TQ_FRESH=; if ! cd -- ${dir} 2>/dev/null; then TQ_FRESH=1; echo fresh=1; fi\n{\n${script}\n}`
      : `${
        create ? `mkdir -p -- ${dir} && ` : ""
      }cd -- ${dir} && {\n${script}\n}`;
    const cmd = this.login
      ? ["ssh", ...this.#ssh, this.login, full]
      : ["sh", "-c", full];
    return await this.#run(cmd, run);
  }

  /**
   * Runs rsync with `args` (sources and options) and `dest`, a path relative
   * to the project root on the host (trailing slash kept).
   */
  async rsync(args: string[], dest: string): Promise<string> {
    const target = dest
      ? `${this.path.replace(/\/+$/, "")}/${dest}`
      : `${this.path}/`;
    const cmd = [
      "rsync",
      // Names with spaces or quotes reach the remote rsync unchanged; a
      // stalled connection fails after 60 s instead of hanging.
      "--protect-args",
      "--timeout=60",
      ...(this.login
        ? ["-e", ["ssh", ...this.#ssh].map(rsyncQuote).join(" ")]
        : []),
      ...args,
      this.login ? `${this.login}:${target}` : target,
    ];
    const res = await this.#run(cmd, { timeoutMs: 3_600_000 });
    if (res.code !== 0) {
      throw new HostError(this.#failure(res, "rsync"), res.code);
    }
    return res.stdout;
  }

  #failure(res: RunResult, what = "remote step"): string {
    const text = (res.stderr.trim() || res.stdout.trim()).split("\n").slice(-6)
      .join("\n");
    if (this.login && res.code === 255 && what !== "rsync") {
      return `ssh to ${this.login} failed: ${text || "connection lost"}`;
    }
    return `${what} on ${this.label} failed (exit ${res.code}): ${
      text || "no output"
    }`;
  }
}

/** Options for {@linkcode targetHosts}. */
export interface TargetHostsOptions {
  /** Command runner. Default {@linkcode runCommand}. */
  run?: RunFn;
}

/** The hosts of a target, in order; a target without hosts is one local directory. */
export function targetHosts(
  target: { hosts: string[]; path: string; ssh_options: string },
  options: TargetHostsOptions = {},
): Host[] {
  const { run } = options;
  return (target.hosts.length ? target.hosts : [""]).map((login) =>
    new Host(login, target.path, {
      sshOptions: target.ssh_options,
      ...(run ? { run } : {}),
    })
  );
}
