/** Sends a signal to a whole process group, ignoring a group that is already gone. */
export function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      try {
        Deno.kill(pid, signal);
      } catch {
        // The process exited between the two calls: nothing left to signal.
      }
    }
  }
}

/**
 * True while a process of group `pgid` runs. A group whose members are all
 * zombies (killed, not yet reaped by init) counts as gone: they hold no port.
 */
export function groupAlive(pgid: number): boolean {
  try {
    // SIGCONT is harmless to a running process; ESRCH means the group is empty.
    Deno.kill(-pgid, "SIGCONT");
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      let stat: string;
      try {
        stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      } catch {
        continue;
      }
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") return true;
    }
    return false;
  } catch {
    // No /proc to look at: the group answered the signal, so it is there.
    return true;
  }
}

/**
 * SIGKILLs what is left of group `pgid` until none of it runs, or `timeoutMs`
 * passes. No process reports a group's end, so this looks every 20 ms.
 *
 * @returns true when the group is gone.
 */
export async function killGroupAndWait(
  pgid: number,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    killGroup(pgid, "SIGKILL");
    if (!groupAlive(pgid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
