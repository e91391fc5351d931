import assert from "node:assert/strict";
import type { WorkerSpec } from "../config/mod.ts";
import { recordingLogger } from "../build/_testing.ts";
import type { Supervisor, WorkerMtimes } from "../supervisor/mod.ts";
import { applyChanges } from "./apply.ts";
import { type ChangeSet, emptyChangeSet } from "./classify.ts";
import type { ReloadReport } from "./report.ts";

const OLD: WorkerMtimes = { binary: 1, public: 1, private: 1 };
const NOW: WorkerMtimes = { binary: 2, public: 2, private: 2 };

function spec(name: string): WorkerSpec {
  return { name, kind: "binary", dir: `/app/workers/${name}` } as WorkerSpec;
}

/** A supervisor that runs one worker `w` and answers its actions as told. */
function fakeSupervisor(answers: {
  update?: "replaced" | "failed" | "unchanged";
  reloadPrivate?: "signalled" | "replaced" | "failed";
  add?: boolean;
  running?: boolean;
}) {
  const workers = new Map<
    string,
    { mtimes: WorkerMtimes; lastError?: string }
  >();
  if (answers.running !== false) workers.set("w", { mtimes: { ...OLD } });
  const supervisor = {
    workers,
    recordMtimes(name: string, mtimes: Partial<WorkerMtimes>) {
      const entry = workers.get(name);
      if (entry) entry.mtimes = { ...entry.mtimes, ...mtimes };
    },
    update: () => Promise.resolve(answers.update ?? "unchanged"),
    reloadPrivate: () => Promise.resolve(answers.reloadPrivate ?? "signalled"),
    add: (s: WorkerSpec) => {
      workers.set(s.name, { mtimes: { binary: 0, public: 0, private: 0 } });
      return Promise.resolve(answers.add ?? true);
    },
    remove: (name: string) => {
      workers.delete(name);
      return Promise.resolve();
    },
  };
  return supervisor;
}

interface Case {
  name: string;
  changes: Partial<ChangeSet>;
  answers: Parameters<typeof fakeSupervisor>[0];
  record?: boolean;
  /** The mtimes of `w` afterwards. */
  mtimes: WorkerMtimes | undefined;
  actions: string[];
}

const CASES: Case[] = [
  {
    name: "a replace that worked records every mtime",
    changes: { replaces: [{ worker: "w", reason: "binary-changed" }] },
    answers: { update: "replaced" },
    mtimes: NOW,
    actions: ["binary:replaced"],
  },
  {
    name: "a failed replace records nothing, so the next check retries it",
    changes: { replaces: [{ worker: "w", reason: "binary-changed" }] },
    answers: { update: "failed" },
    mtimes: OLD,
    actions: ["binary:failed"],
  },
  {
    name: "public/ is recorded before the replace, which may fail",
    changes: {
      statics: ["w"],
      replaces: [{ worker: "w", reason: "binary-changed" }],
    },
    answers: { update: "failed" },
    mtimes: { ...OLD, public: 2 },
    actions: ["public:none", "binary:failed"],
  },
  {
    name: "a private/ signal records private/",
    changes: { signals: ["w"] },
    answers: { reloadPrivate: "signalled" },
    mtimes: { ...OLD, private: 2 },
    actions: ["private:signalled"],
  },
  {
    name: "a failed private/ reload records nothing",
    changes: { signals: ["w"] },
    answers: { reloadPrivate: "failed" },
    mtimes: OLD,
    actions: ["private:failed"],
  },
  {
    name: "a worker that started records its mtimes",
    changes: { adds: ["w"] },
    answers: { running: false, add: true },
    mtimes: NOW,
    actions: ["added:started"],
  },
  {
    name:
      "a worker that failed to start records no binary, so a new one is tried",
    changes: { adds: ["w"] },
    answers: { running: false, add: false },
    mtimes: { ...NOW, binary: 0 },
    actions: ["added:failed"],
  },
  {
    name: "a removed worker is stopped",
    changes: { removes: ["w"] },
    answers: {},
    mtimes: undefined,
    actions: ["removed:stopped"],
  },
  {
    name: "at startup every mtime is recorded and nothing is done",
    changes: { signals: ["w"] },
    answers: { reloadPrivate: "failed" },
    record: true,
    mtimes: NOW,
    actions: [],
  },
];

Deno.test("applyChanges() records a worker's mtimes only once its action succeeded", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const supervisor = fakeSupervisor(c.answers);
      const report: ReloadReport = {
        ms: 0,
        workers: 1,
        config: "unchanged",
        actions: [],
      };
      const removed = c.changes.removes?.length ? [] : [spec("w")];
      await applyChanges({ ...emptyChangeSet("scan"), ...c.changes }, {
        source: "scan",
        host: {
          log: recordingLogger(),
          supervisor: supervisor as unknown as Supervisor,
          applyConfig: () => {},
        },
        facts: { specs: removed, mtimes: new Map([["w", { ...NOW }]]) },
        report,
        ...(c.record ? { record: true } : {}),
      });
      assert.deepEqual(supervisor.workers.get("w")?.mtimes, c.mtimes);
      assert.deepEqual(
        report.actions.map((a) => `${a.change}:${a.action}`),
        c.actions,
      );
    });
  }
});

Deno.test("applyChanges() refuses a ChangeSet from the other source", () => {
  assert.throws(
    () =>
      applyChanges(emptyChangeSet("watch"), {
        source: "scan",
        host: {
          log: recordingLogger(),
          supervisor: fakeSupervisor({}) as unknown as Supervisor,
          applyConfig: () => {},
        },
        facts: { specs: [], mtimes: new Map() },
        report: { ms: 0, workers: 0, config: "unchanged", actions: [] },
      }),
    TypeError,
  );
});
