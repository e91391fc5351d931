// What a server self-upgrade loses under wrk load: starts tqserver from a private copy of its
// source, runs wrk, touches the copy's src/ and sends SIGHUP mid-run, then prints wrk's
// socket errors and non-2xx answers for the run that contained the handover.
//   deno run -A bench/upgrade_handover.ts [--connections 50] [--duration 8]
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  alive,
  makeProject,
  REPO,
  startServer,
  waitFor,
} from "../tests/_helpers.ts";
import { parseWrk } from "./_wrk.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    connections: { type: "string", default: "50" },
    duration: { type: "string", default: "8" },
  },
});
const source = Deno.makeTempDirSync({ prefix: "tq-src-" });
for (const file of ["main.ts", "deno.json", "deno.lock"]) {
  Deno.copyFileSync(join(REPO, file), join(source, file));
}
new Deno.Command("cp", { args: ["-r", join(REPO, "src"), join(source, "src")] })
  .outputSync();
const project = makeProject({ workers: { index: {} } });
const server = await startServer(project, ["--mode", "prod"], {
  main: join(source, "main.ts"),
});
let successor = 0;
try {
  const wrk = new Deno.Command("wrk", {
    args: [
      "-t2",
      `-c${values.connections}`,
      `-d${values.duration}s`,
      "--timeout",
      "5s",
      `${server.base}/x`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await new Promise((r) => setTimeout(r, Number(values.duration) * 1000 / 3));
  const now = new Date();
  Deno.utimeSync(join(source, "src", "version.ts"), now, now);
  Deno.kill(server.process.pid, "SIGHUP");
  await server.process.status;
  successor = (await (await fetch(`${server.admin}/api/status`)).json()).pid;
  const out = await wrk;
  const result = parseWrk(new TextDecoder().decode(out.stdout));
  console.log(
    `self-upgrade under wrk -c${values.connections} for ${values.duration}s: ${result.requests} requests, ` +
      `${result.non2xx} non-2xx, ${result.socketErrors} socket errors ` +
      `(old pid ${server.process.pid} -> new pid ${successor})`,
  );
  console.log(
    new TextDecoder().decode(out.stdout).split("\n").filter((l) =>
      /Socket|Non-2xx/.test(l)
    ).join("\n"),
  );
} finally {
  if (successor && alive(successor)) {
    Deno.kill(successor, "SIGTERM");
    await waitFor(() => !alive(successor), 10000, "the successor to stop")
      .catch(() => {});
  }
  await server.stop();
  project.cleanup();
  Deno.removeSync(source, { recursive: true });
}
