/** One thing a reload check did. */
export interface ReloadAction {
  worker: string;
  change:
    | "added"
    | "removed"
    | "binary"
    | "private"
    | "public"
    | "config"
    | "server";
  action:
    | "started"
    | "stopped"
    | "replaced"
    | "signalled"
    | "none"
    | "failed"
    | "upgraded";
  error?: string;
}

/** Result of one reload check, returned by `POST /api/reload`. */
export interface ReloadReport {
  ms: number;
  /** Workers checked. */
  workers: number;
  config: "unchanged" | "applied" | "rejected";
  config_error?: string;
  actions: ReloadAction[];
}
