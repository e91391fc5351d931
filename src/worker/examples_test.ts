// Runs each example worker from source, as tqserver runs its build: a real process with TQ_* set.
import assert from "node:assert/strict";
import { join } from "node:path";
import { exitWithin, startWorker } from "./testdata/process.ts";

const WORKERS = join(import.meta.dirname!, "..", "..", "workers");

function envFor(name: string, route: string): Record<string, string> {
  return {
    TQ_MODE: "prod",
    TQ_WORKER_NAME: name,
    TQ_WORKER_ROUTE: route,
    TQ_WORKER_BASE: join(WORKERS, name),
  };
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGTERM");
  const status = await exitWithin(child, 5000);
  assert.notEqual(status, "timeout");
  assert.equal((status as Deno.CommandStatus).code, 0);
}

Deno.test("the index worker renders its pages from private/", async () => {
  const w = await startWorker(
    join(WORKERS, "index", "src", "main.ts"),
    envFor("index", "/"),
  );
  try {
    const home = await fetch(`${w.origin}/`);
    assert.equal(home.status, 200);
    assert.match(home.headers.get("content-type") ?? "", /^text\/html/);
    const html = await home.text();
    assert.match(html, /<\/body>/);
    assert.match(html, /href="\/static\/index\/css\/style\.css"/);
    assert.match(html, /<code>index<\/code>/);
    assert.match(html, new RegExp(`<code>${w.child.pid}</code>`));
    assert.match(html, /badge-prod/);
    assert.match(html, /href="\/api\/users"/);
    assert.match(html, /href="\/static\/api_users\/swagger\/index\.html"/);

    const about = await fetch(`${w.origin}/about`);
    assert.equal(about.status, 200);
    assert.match(await about.text(), /<h1>About tqserver<\/h1>[\s\S]*<\/body>/);

    const missing = await fetch(`${w.origin}/no/such/<page>`);
    assert.equal(missing.status, 404);
    assert.doesNotMatch(await missing.text(), /<page>/, "the path is escaped");
  } finally {
    await stop(w.child);
  }
});

Deno.test("the api_users worker serves JSON CRUD at /api/users", async () => {
  const w = await startWorker(
    join(WORKERS, "api_users", "src", "main.ts"),
    envFor("api_users", "/api/users"),
  );
  try {
    const health = await fetch(`${w.origin}/health`);
    await health.body?.cancel();
    assert.equal(health.headers.get("x-tq-reload"), "SIGHUP");

    const list = await fetch(`${w.origin}/api/users`);
    assert.equal(list.status, 200);
    assert.deepEqual(
      (await list.json()).map((u: { name: string }) => u.name),
      ["Ada Lovelace", "Alan Turing"],
    );

    const created = await fetch(`${w.origin}/api/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Grace", email: "grace@example.com" }),
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get("location"), "/api/users/3");
    await created.body?.cancel();

    const invalid = await fetch(`${w.origin}/api/users/3`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Grace", email: "not-an-email", age: 151 }),
    });
    assert.equal(invalid.status, 400);
    assert.deepEqual(
      (await invalid.json()).errors.map((e: { field: string }) => e.field),
      ["email", "age"],
    );

    const gone = await fetch(`${w.origin}/api/users/42`);
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
  } finally {
    await stop(w.child);
  }
});
