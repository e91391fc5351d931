/** The tqserver version, reported by `--version` and `/api/status`. */
export const VERSION = "0.1.0";
