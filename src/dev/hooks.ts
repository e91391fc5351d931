import type { DevHooks } from "../dev_contract.ts";
import { buildErrorEvent, LiveReload } from "./livereload.ts";
import { CrashReporter } from "./crash_report.ts";
import { StartProblems } from "./start_problems.ts";
import type { LogRecord } from "../log/mod.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { StandbyPool } from "./standby.ts";
import { TypeChecker } from "./type_check.ts";
import { type DevHost, DevWatcher } from "./watcher.ts";

/** A server that dev hooks can attach to. */
export interface DevServer extends DevHost {
  readonly finished: Promise<void>;
  /** Calls `listener` with every record the server logs from now on. */
  onLogRecord?(listener: (record: LogRecord) => void): void;
}

/**
 * Creates the dev-mode hooks of a server: live reload endpoints, HTML script
 * injection, and the file watcher (started at once, closed when the server stops).
 */
export function createDevHooks(
  server: DevServer,
): DevHooks & { live: LiveReload; watcher: DevWatcher | undefined } {
  const live = new LiveReload();
  let watcher: DevWatcher | undefined;
  const standby = new StandbyPool({
    launchInfo: (binPath) => server.builder.launchInfo?.(binPath),
    logger: server.log,
    idle: () => !watcher?.busy,
    // A removed worker's standby must not wait until the server stops.
    wanted: (binPath) =>
      [...server.supervisor.workers.values()].some((w) =>
        w.spec.binPath === binPath
      ),
  });
  const deno = join(server.root, "deno.json");
  const types = new TypeChecker({
    live,
    logger: server.log,
    configPath: existsSync(deno) ? deno : undefined,
    timeoutMs: server.config.deployment.dev.build.timeout_ms,
    idle: () => !watcher?.busy,
    noteError: (worker, error) =>
      server.supervisor.workers.get(worker)?.noteError(error),
  });
  const checkTypes = (name: string) => {
    const spec = server.supervisor.workers.get(name)?.spec;
    if (spec?.kind !== "typescript" || !spec.entry) return;
    types.check({
      name,
      entry: spec.entry,
      binPath: spec.binPath,
      dir: spec.dir,
    });
  };
  let startupChecks: ReturnType<typeof setTimeout> | undefined;
  const crashes = new CrashReporter({
    live,
    supervisor: server.supervisor,
    logger: server.log,
  });
  const problems = new StartProblems({
    live,
    supervisor: server.supervisor,
    root: server.root,
  });
  server.onLogRecord?.((record) => problems.observe(record));
  const settings = server.config.deployment.dev.file_watcher;
  if (settings.enabled) {
    watcher = new DevWatcher(server, live, {
      debounceMs: settings.debounce_ms,
      onServed: checkTypes,
      onActivity: () => types.interrupt(),
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
    intercept: (pathname, req) =>
      live.buildingResponse(pathname) ?? problems.response(pathname, req),
    transform: (res, req) => live.transform(res, req),
    spawn: crashes.wrap(standby.spawn),
    close: async () => {
      clearTimeout(startupChecks);
      crashes.close();
      await Promise.all([standby.close(), types.close()]);
    },
    onBuild: (results) => {
      for (const r of results) {
        if (r.status === "failed") live.emit(buildErrorEvent(r.name, r.error));
      }
      // Once the workers run: the startup's checks must not slow their start.
      clearTimeout(startupChecks);
      startupChecks = setTimeout(() => {
        for (const r of results) if (r.status !== "failed") checkTypes(r.name);
      }, 1000);
    },
  };
}
