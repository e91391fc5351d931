/** What one process, or a process group summed, uses (Linux `/proc`). */
export interface ProcessUsage {
  /** Resident memory, bytes. */
  rssBytes: number;
  /** User plus system CPU time, seconds. */
  cpuSeconds: number;
  /** Virtual memory, bytes. */
  virtualBytes: number;
  /** Processes counted (1 for a single process). */
  processes: number;
  /** Start of the oldest process, seconds since the epoch. */
  startTimeSeconds: number;
}

/** The server process's own usage, with what only it reports (open and allowed file descriptors). */
export interface SelfUsage extends ProcessUsage {
  openFds: number;
  maxFds: number;
}

/** Options for {@linkcode ProcessStats}. */
export interface ProcessStatsOptions {
  /** How long a scan of `/proc` is reused, ms. Default 1000. */
  maxAgeMs?: number;
  /** Where `/proc` is mounted. Default "/proc". */
  proc?: string;
  /** The clock (ms). Default `performance.now`. */
  now?: () => number;
}

// Linux's USER_HZ and the page size of every platform Deno runs on Linux
// (x86_64, aarch64 with 4 KiB pages); /proc reports in these units.
const TICKS_PER_SECOND = 100;
const PAGE_BYTES = 4096;

interface StatLine {
  pgrp: number;
  ticks: number;
  startTicks: number;
  virtualBytes: number;
  rssPages: number;
}

/** Fields of `/proc/{pid}/stat` (see proc(5)); the command may hold spaces and parentheses. */
function parseStat(text: string): StatLine | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // Field 3 (state) is the first after the command.
  const f = text.slice(close + 2).split(" ");
  const num = (n: number) => Number(f[n - 3]);
  const line = {
    pgrp: num(5),
    ticks: num(14) + num(15),
    startTicks: num(22),
    virtualBytes: num(23),
    rssPages: num(24),
  };
  return Number.isFinite(line.pgrp) && Number.isFinite(line.ticks)
    ? line
    : undefined;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Memory and CPU of the server and of each worker's process groups, read from
 * Linux's `/proc` (a worker leads its own process group, so what it spawns
 * counts too). A scan is reused for `maxAgeMs`, so status polls and scrapes
 * cost one scan a second at most. Elsewhere every figure is undefined.
 *
 * @example
 * ```ts
 * const stats = new ProcessStats();
 * stats.group(1234)?.rssBytes;
 * stats.self()?.cpuSeconds;
 * ```
 */
export class ProcessStats {
  #maxAgeMs: number;
  #proc: string;
  #now: () => number;
  #scannedAt = -Infinity;
  #groups = new Map<number, ProcessUsage>();
  #bootSeconds: number | undefined;

  constructor(options: ProcessStatsOptions = {}) {
    const { maxAgeMs = 1000, proc = "/proc", now = () => performance.now() } =
      options;
    this.#maxAgeMs = maxAgeMs;
    this.#proc = proc;
    this.#now = now;
  }

  /** Seconds since the epoch at boot (`btime`), to date process starts. */
  #boot(): number | undefined {
    if (this.#bootSeconds === undefined) {
      const m = /^btime (\d+)$/m.exec(readText(`${this.#proc}/stat`) ?? "");
      if (m) this.#bootSeconds = Number(m[1]);
    }
    return this.#bootSeconds;
  }

  #usage(lines: StatLine[]): ProcessUsage {
    const boot = this.#boot() ?? 0;
    let oldest = Infinity;
    const usage: ProcessUsage = {
      rssBytes: 0,
      cpuSeconds: 0,
      virtualBytes: 0,
      processes: lines.length,
      startTimeSeconds: 0,
    };
    for (const l of lines) {
      usage.rssBytes += l.rssPages * PAGE_BYTES;
      usage.cpuSeconds += l.ticks / TICKS_PER_SECOND;
      usage.virtualBytes += l.virtualBytes;
      oldest = Math.min(oldest, l.startTicks);
    }
    usage.cpuSeconds = Math.round(usage.cpuSeconds * 100) / 100;
    if (Number.isFinite(oldest)) {
      usage.startTimeSeconds = boot + oldest / TICKS_PER_SECOND;
    }
    return usage;
  }

  #scan(): void {
    if (this.#now() - this.#scannedAt < this.#maxAgeMs) return;
    this.#scannedAt = this.#now();
    const byGroup = new Map<number, StatLine[]>();
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.#proc)];
    } catch {
      this.#groups = new Map();
      return;
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry.name)) continue;
      const text = readText(`${this.#proc}/${entry.name}/stat`);
      const line = text === undefined ? undefined : parseStat(text);
      if (!line) continue; // Gone meanwhile.
      const list = byGroup.get(line.pgrp);
      if (list) list.push(line);
      else byGroup.set(line.pgrp, [line]);
    }
    this.#groups = new Map(
      [...byGroup].map(([pgrp, lines]) => [pgrp, this.#usage(lines)]),
    );
  }

  /** The summed usage of the processes in group `pgid` (a worker instance leads its own), if any. */
  group(pgid: number): ProcessUsage | undefined {
    this.#scan();
    return this.#groups.get(pgid);
  }

  /** This process's usage, read now; undefined without `/proc`. */
  self(): SelfUsage | undefined {
    const text = readText(`${this.#proc}/self/stat`);
    const line = text === undefined ? undefined : parseStat(text);
    if (!line) return undefined;
    let openFds = 0;
    try {
      for (const _ of Deno.readDirSync(`${this.#proc}/self/fd`)) openFds++;
    } catch {
      // Counted as 0 below.
    }
    const limits = readText(`${this.#proc}/self/limits`) ?? "";
    const max = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    return {
      ...this.#usage([line]),
      openFds,
      maxFds: max === undefined || max === "unlimited" ? 0 : Number(max),
    };
  }
}

/** The summed usage of instances' process groups; undefined when none could be read. */
export function groupsUsage(
  stats: ProcessStats,
  instances: readonly { pid: number }[],
): ProcessUsage | undefined {
  let sum: ProcessUsage | undefined;
  for (const { pid } of instances) {
    const u = stats.group(pid);
    if (!u) continue;
    sum = sum
      ? {
        rssBytes: sum.rssBytes + u.rssBytes,
        cpuSeconds: Math.round((sum.cpuSeconds + u.cpuSeconds) * 100) / 100,
        virtualBytes: sum.virtualBytes + u.virtualBytes,
        processes: sum.processes + u.processes,
        startTimeSeconds: Math.min(sum.startTimeSeconds, u.startTimeSeconds),
      }
      : { ...u };
  }
  return sum;
}
