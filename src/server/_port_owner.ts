// Who holds a port, and which ports a process listens on, from Linux's /proc.
// Best effort: elsewhere, or for another user's process, the answer is
// "unknown" and the callers' messages simply say less.

/** A process found in /proc. */
export interface ProcessInfo {
  pid: number;
  /** Its command line, arguments joined by spaces. */
  command: string;
  /** True when the command line is a tqserver's (the binary, or main.ts run by deno). */
  tqserver: boolean;
  /** The TCP ports it listens on, ascending. */
  ports: number[];
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Listening TCP sockets (IPv4 and IPv6): socket inode → port. */
function listeningSockets(): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = readText(file);
    if (!text) continue;
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN; inode is column 10.
      if (cols.length < 10 || cols[3] !== "0A") continue;
      const port = parseInt(cols[1]!.split(":")[1] ?? "", 16);
      if (Number.isFinite(port)) out.set(cols[9]!, port);
    }
  }
  return out;
}

/** Socket inodes a process has open (only readable for our own processes). */
function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(
          Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`),
        );
        if (m) inodes.push(m[1]!);
      } catch {
        // Closed meanwhile.
      }
    }
  } catch {
    // Gone, or not ours.
  }
  return inodes;
}

function commandOf(pid: number): string | undefined {
  const raw = readText(`/proc/${pid}/cmdline`);
  if (raw === undefined || raw === "") return undefined;
  return raw.replace(/\0+$/, "").split("\0").join(" ");
}

function isTqserver(command: string): boolean {
  const [argv0 = "", ...args] = command.split(" ");
  return /(^|\/)tqserver$/.test(argv0) ||
    (/(^|\/)deno$/.test(argv0) && args.some((a) => /(^|\/)main\.ts$/.test(a)));
}

/**
 * What /proc says about a running process, or undefined when it does not run
 * (or /proc does not exist).
 */
export function processInfo(pid: number): ProcessInfo | undefined {
  const command = commandOf(pid);
  if (command === undefined) return undefined;
  const sockets = listeningSockets();
  const ports = new Set<number>();
  for (const inode of socketInodes(pid)) {
    const port = sockets.get(inode);
    if (port !== undefined) ports.add(port);
  }
  return {
    pid,
    command,
    tqserver: isTqserver(command),
    ports: [...ports].sort((a, b) => a - b),
  };
}

/** The process that listens on TCP `port`, when /proc lets us see it. */
export function portHolder(port: number): ProcessInfo | undefined {
  const inodes = new Set<string>();
  for (const [inode, p] of listeningSockets()) {
    if (p === port) inodes.add(inode);
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = [...Deno.readDirSync("/proc")].map((e) => e.name).filter((n) =>
      /^\d+$/.test(n)
    );
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    if (Number(pid) === Deno.pid) continue;
    if (socketInodes(Number(pid)).some((i) => inodes.has(i))) {
      return processInfo(Number(pid));
    }
  }
  return undefined;
}

/** "tqserver (pid 123, ports 8080 and 8081)" or "pid 456 (python3 -m http.server)". */
export function describeProcess(info: ProcessInfo): string {
  const ports = info.ports.length === 0
    ? ""
    : `, port${info.ports.length > 1 ? "s" : ""} ${
      info.ports.length > 1
        ? `${info.ports.slice(0, -1).join(", ")} and ${info.ports.at(-1)}`
        : info.ports[0]
    }`;
  if (info.tqserver) return `tqserver (pid ${info.pid}${ports})`;
  const command = info.command.length > 60
    ? `${info.command.slice(0, 57)}...`
    : info.command;
  return `pid ${info.pid} (${command}${ports})`;
}
