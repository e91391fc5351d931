/**
 * tqserver: one port, many worker processes, zero-downtime replaces.
 *
 * @example
 * ```sh
 * deno run -A main.ts --mode dev
 * ```
 *
 * @module
 */
// First, before the rest of the server loads: a SIGHUP or SIGTERM during
// startup must find a listener, never the default action.
import { ProcessSignals } from "./src/cli/signals.ts";
import { raiseMallocThresholds } from "./src/runtime.ts";

if (import.meta.main) {
  const signals = ProcessSignals.install();
  raiseMallocThresholds();
  const { main } = await import("./src/cli/mod.ts");
  Deno.exit(await main(Deno.args, { signals }));
}
