import assert from "node:assert/strict";
import { defaultConfig, type WorkerSpec } from "../config/mod.ts";
import { recordingLogger } from "../build/_testing.ts";
import type { Supervisor, WorkerMtimes } from "../supervisor/mod.ts";
import { type LiveEvent, LiveReload } from "../dev/livereload.ts";
import { applyChanges } from "./apply.ts";
import { type ChangeSet, emptyChangeSet } from "./classify.ts";
import { waitFor } from "../../tests/_helpers.ts";

/** Remembers every event sent to browsers. */
class RecordingLive extends LiveReload {
  events: LiveEvent[] = [];
  override emit(event: LiveEvent): void {
    this.events.push(event);
    super.emit(event);
  }
}

/** A dev server with one prebuilt worker `py`; it records what it was asked. */
function fakeHost() {
  const calls: string[] = [];
  const spec = {
    name: "py",
    kind: "binary",
    dir: "/nowhere/workers/py",
    binPath: "/nowhere/workers/py/bin/py",
  } as WorkerSpec;
  const workers = new Map([["py", { spec, active: [] }]]);
  const supervisor = {
    workers,
    replace: (name: string, reason: string) => {
      calls.push(`replace ${name} ${reason}`);
      return Promise.resolve(true);
    },
    reloadPrivate: (name: string) => {
      calls.push(`private ${name}`);
      return Promise.resolve("signalled");
    },
    recordMtimes: (name: string, mtimes: Partial<WorkerMtimes>) =>
      calls.push(`record ${name} ${Object.keys(mtimes).join(",")}`),
    noteError: () => {},
  };
  const fail = () => Promise.reject(new Error("no build expected"));
  const host = {
    root: "/nowhere",
    log: recordingLogger(),
    supervisor: supervisor as unknown as Supervisor,
    builder: {
      dependents: () => [],
      invalidate: () => {},
      build: fail,
      graph: () => Promise.resolve([]),
    },
    goBuilder: { build: fail },
    config: defaultConfig(),
    reload: () => {
      calls.push("reload");
      return Promise.resolve({
        ms: 0,
        workers: 1,
        config: "applied" as const,
        actions: [],
      });
    },
    upgrade: () => {
      calls.push("upgrade");
      return Promise.resolve(true);
    },
    invalidateStatic: (worker: string) => calls.push(`static ${worker}`),
  };
  return { host, calls };
}

/** The browser events that are not `ok`, as `type` or `type:detail`. */
function shown(events: LiveEvent[]): string[] {
  return events.filter((e) => e.type !== "ok").map((e) =>
    e.type === "css"
      ? `css:${e.path}`
      : e.type === "reload"
      ? `reload:${e.reason}`
      : e.type
  );
}

interface Case {
  name: string;
  changes: Partial<ChangeSet>;
  calls: string[];
  /** The browser events, as `type` or `type:detail`. */
  events: string[];
}

const CASES: Case[] = [
  {
    name: "a CSS change swaps the stylesheet and reloads no page",
    changes: { statics: ["py"], css: ["/static/py/a.css"] },
    calls: ["static py"],
    events: ["css:/static/py/a.css"],
  },
  {
    name:
      "a new prebuilt binary replaces the worker, records its mtime, reloads pages",
    changes: { replaces: [{ worker: "py", reason: "binary-changed" }] },
    calls: ["replace py binary-changed", "record py binary"],
    events: ["reload:replaced"],
  },
  {
    name: "a private/ change signals the worker and reloads pages",
    changes: { signals: ["py"] },
    calls: ["private py"],
    events: ["reload:changed"],
  },
  {
    name: "a config change runs the reload check and reloads pages",
    changes: { config: true },
    calls: ["reload"],
    events: ["reload:changed"],
  },
  {
    name: "a server change restarts the server and does nothing else",
    changes: { server: true, signals: ["py"], statics: ["py"] },
    calls: ["static py", "upgrade"],
    events: [],
  },
];

Deno.test("applyChanges() carries out a batch of dev file events", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const { host, calls } = fakeHost();
      const live = new RecordingLive();
      const now = performance.now();
      await applyChanges({ ...emptyChangeSet("watch"), ...c.changes }, {
        source: "watch",
        host,
        live,
        timing: {
          firstEventAt: now,
          lastEventAt: now,
          early: new Map(),
          waitMs: 0,
        },
      });
      // Replaces and signals finish after applyChanges() returns; the browsers'
      // event comes last, after every call: wait for it (bounded).
      await waitFor(
        () => shown(live.events).length >= c.events.length,
        2000,
        `the browsers' events ${JSON.stringify(c.events)}`,
      );
      live.close();
      assert.deepEqual(calls, c.calls);
      assert.deepEqual(shown(live.events), c.events);
    });
  }
});
