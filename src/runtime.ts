import { basename } from "node:path";

/**
 * True when this process runs from source under `deno` rather than as a
 * `deno compile` binary (`server/bin/tqserver`).
 */
export function runsFromSource(): boolean {
  return /^deno(\.exe)?$/.test(basename(Deno.execPath()));
}
