// The README's SDK snippet runs as copied: its three files, put where it says, serve the page.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  copyServer,
  freePort,
  freePortRange,
  REPO,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** The README's code blocks that name a file under workers/hello/, by path. */
function snippetFiles(readme: string): Map<string, string> {
  const files = new Map<string, string>();
  const block =
    /(?:`(workers\/hello\/[^`]+)`[^\n]*\n\s*\n)?( *)```(ts|html)\n([\s\S]*?)\n\s*```/g;
  for (const m of readme.matchAll(block)) {
    const indent = m[2]!.length;
    const body = m[4]!.split("\n").map((l) => l.slice(indent)).join("\n");
    const path = m[1] ?? /^\/\/ (workers\/hello\/\S+)/.exec(body)?.[1];
    if (path) files.set(path, body + "\n");
  }
  return files;
}

Deno.test("the README's SDK snippet (main.ts, its view and its layout) serves its page as copied", async () => {
  const files = snippetFiles(Deno.readTextFileSync(join(REPO, "README.md")));
  assert.deepEqual([...files.keys()].sort(), [
    "workers/hello/private/templates/base.html",
    "workers/hello/private/views/home.html",
    "workers/hello/src/main.ts",
  ]);
  const root = copyServer();
  for (const [path, text] of files) {
    Deno.mkdirSync(dirname(join(root, path)), { recursive: true });
    Deno.writeTextFileSync(join(root, path), text);
  }
  const adminPort = freePort();
  const poolStart = freePortRange(10);
  Deno.mkdirSync(join(root, "config"));
  Deno.writeTextFileSync(
    join(root, "config", "server.yaml"),
    `server:\n  admin:\n    port: ${adminPort}\nworkers:\n  port_range_start: ${poolStart}\n  port_range_end: ${
      poolStart + 9
    }\n`,
  );
  const project = {
    root,
    adminPort,
    poolStart,
    cleanup: () => Deno.removeSync(root, { recursive: true }),
  };
  const server = await startServer(project, ["--mode", "dev"], {
    main: join(root, "main.ts"),
  });
  try {
    const page = await waitFor(
      async () => {
        const res = await fetch(`${server.base}/hello`);
        const text = await res.text();
        return res.status === 200 ? text : undefined;
      },
      15_000,
      "the hello page",
    );
    assert.match(page, /<title>Hello<\/title>/);
    assert.match(page, /<h1>Hello<\/h1>/);
    assert.doesNotMatch(server.logs(), / ERROR /);
  } finally {
    await server.stop();
    project.cleanup();
  }
});
