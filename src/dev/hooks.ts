import type { DevHooks } from "../dev_contract.ts";
import { buildErrorEvent, LiveReload } from "./livereload.ts";
import { CrashReporter } from "./crash_report.ts";
import { StandbyPool } from "./standby.ts";
import { type DevHost, DevWatcher } from "./watcher.ts";

/** A server that dev hooks can attach to. */
export interface DevServer extends DevHost {
  readonly finished: Promise<void>;
}

/**
 * Creates the dev-mode hooks of a server: live reload endpoints, HTML script
 * injection, and the file watcher (started at once, closed when the server stops).
 */
export function createDevHooks(
  server: DevServer,
): DevHooks & { live: LiveReload; watcher: DevWatcher | undefined } {
  const live = new LiveReload();
  const standby = new StandbyPool({
    launchInfo: (binPath) => server.builder.launchInfo?.(binPath),
    logger: server.log,
  });
  const crashes = new CrashReporter({
    live,
    supervisor: server.supervisor,
    logger: server.log,
  });
  const settings = server.config.deployment.dev.file_watcher;
  let watcher: DevWatcher | undefined;
  if (settings.enabled) {
    watcher = new DevWatcher(server, live, {
      debounceMs: settings.debounce_ms,
    });
    watcher.start();
  }
  server.finished.then(() => {
    watcher?.close();
    live.close();
  });
  return {
    live,
    watcher,
    handle: (req, pathname) => live.handle(req, pathname),
    transform: (res, req) => live.transform(res, req),
    spawn: crashes.wrap(standby.spawn),
    close: () => {
      crashes.close();
      return standby.close();
    },
    onBuild: (results) => {
      for (const r of results) {
        if (r.status === "failed") live.emit(buildErrorEvent(r.name, r.error));
      }
    },
  };
}
