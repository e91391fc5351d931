// Folder-private: where each key of a loaded Config came from, kept beside
// the Config object (not in it) so that later checks such as worker discovery
// can name the file and line of `workers.routes.{name}`.

import type { Location } from "./_validate.ts";
import type { Config } from "./types.ts";

const LOCATIONS = new WeakMap<Config, ReadonlyMap<string, Location>>();

/** Remembers the key locations of a loaded config. */
export function setLocations(
  config: Config,
  locations: ReadonlyMap<string, Location>,
): void {
  LOCATIONS.set(config, locations);
}

/** Where `key` (formatted, e.g. `workers.routes.api`) was set, if loaded from a file. */
export function locationOf(config: Config, key: string): Location | undefined {
  return LOCATIONS.get(config)?.get(key);
}
