// server.host defaults by mode: dev binds 127.0.0.1 only (like Vite), prod 0.0.0.0.
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeProject, startServer } from "./_helpers.ts";

async function reachable(hostname: string, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

for (const [mode, open] of [["dev", false], ["prod", true]] as const) {
  Deno.test(`without server.host, ${mode} mode ${open ? "binds every address" : "binds 127.0.0.1 only"}`, async () => {
    const project = makeProject();
    const file = join(project.root, "config", "server.yaml");
    Deno.writeTextFileSync(
      file,
      Deno.readTextFileSync(file).replace("  host: 127.0.0.1\n", ""),
    );
    assert.doesNotMatch(Deno.readTextFileSync(file), /^ {2}host:/m);
    const server = await startServer(project, ["--mode", mode]);
    try {
      assert.equal(await reachable("127.0.0.1", server.port), true);
      // 127.0.0.2 is loopback too, but only a 0.0.0.0 listener accepts it.
      assert.equal(await reachable("127.0.0.2", server.port), open);
    } finally {
      await server.stop();
      project.cleanup();
    }
  });
}
