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
import { main } from "./src/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
