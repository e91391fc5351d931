// End-to-end: scripts/deploy.sh over a real OpenSSH sshd and rsync to three
// hosts (three tqservers on 127.0.0.2-4), behind a real nginx on 127.0.0.1.
import assert from "node:assert/strict";
import { join } from "node:path";
import { Admin } from "../src/deploy/_admin.ts";
import { Host, runCommand, type RunFn } from "../src/deploy/_host.ts";
import { REPO, type RunningServer, startServer, waitFor } from "./_helpers.ts";
import {
  fleetMissing,
  HOST_ADDRS,
  type Nginx,
  portFreeOn,
  type Proc,
  pythonWorker,
  spawn,
  type Sshd,
  startNginx,
  startSshd,
} from "./_fleet.ts";

const missing = fleetMissing();
const hasWrk = (() => {
  try {
    new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
})();

/** The relative target path: a space and a quote, to prove the quoting. */
const TARGET_PATH = "srv/it's a tq";
const TOKEN = "fleet-secret-token";

/**
 * The worker every build ships: a Python stdlib server whose answer names its
 * build, the view it read from private/ and the X-Forwarded-* it got. A build
 * with `failOnMarker` fails its health check on a host whose directory holds
 * `fail-health`; `status` 500 makes a build that answers every page with 500.
 */
function workerScript(
  build: string,
  options: { status?: number; failOnMarker?: boolean } = {},
): string {
  const { status = 200, failOnMarker = false } = options;
  return pythonWorker(
    `        if self.path == "/health":
            code, body = (503 if SICK else 200), b"ok"
        else:
            with open(os.path.join(BASE, "private", "views", "page.txt")) as f:
                view = f.read().strip()
            code = ${status}
            body = json.dumps({"build": BUILD, "view": view, "base": BASE,
                "xff": self.headers.get("X-Forwarded-For"),
                "proto": self.headers.get("X-Forwarded-Proto")}).encode()
`,
    `BUILD = ${JSON.stringify(build)}
BASE = os.environ["TQ_WORKER_BASE"]
SICK = ${
      failOnMarker ? "True" : "False"
    } and os.path.exists(os.path.join(BASE, "..", "..", "..", "..", "fail-health"))
`,
  );
}

interface Fleet {
  dir: string;
  src: string;
  sshd: Sshd;
  nginx?: Nginx;
  servers: (RunningServer | undefined)[];
  adminPort: number;
  hostRoots: string[];
}

/** Writes build `build` of worker `app` (binary, view, public file) into the source project, newer than before. */
function writeBuild(
  src: string,
  build: string,
  options: {
    status?: number;
    failOnMarker?: boolean;
    view?: string;
    pub?: string;
  } = {},
): void {
  const dir = join(src, "workers", "app");
  Deno.mkdirSync(join(dir, "bin"), { recursive: true });
  Deno.mkdirSync(join(dir, "private", "views"), { recursive: true });
  Deno.mkdirSync(join(dir, "public"), { recursive: true });
  const bin = join(dir, "bin", "app");
  Deno.writeTextFileSync(`${bin}.tmp`, workerScript(build, options), {
    mode: 0o755,
  });
  Deno.chmodSync(`${bin}.tmp`, 0o755);
  Deno.renameSync(`${bin}.tmp`, bin);
  if (options.view !== undefined) {
    Deno.writeTextFileSync(
      join(dir, "private", "views", "page.txt"),
      options.view,
    );
  }
  if (options.pub !== undefined) {
    Deno.writeTextFileSync(join(dir, "public", "hello.txt"), options.pub);
  }
  // A new build is newer than the one it replaces, even within one second.
  const now = new Date(Date.now() + 1000 * (buildCounter++));
  for (
    const p of [
      bin,
      join(dir, "private", "views", "page.txt"),
      join(dir, "public", "hello.txt"),
    ]
  ) {
    try {
      Deno.utimeSync(p, now, now);
    } catch {
      // Not written yet.
    }
  }
}
let buildCounter = 1;

async function deploySh(
  src: string,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(join(REPO, "scripts", "deploy.sh"), {
    args: ["--root", src, ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(120_000),
  }).output();
  return {
    code: out.code,
    out: new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr),
  };
}

/** What host `i` serves, asked directly (not through nginx). */
async function served(
  fleet: Fleet,
  i: number,
): Promise<{ build: string; view: string; pub: string }> {
  const base = `http://${HOST_ADDRS[i]}:${fleet.servers[i]!.port}`;
  const page =
    await (await fetch(`${base}/`, { signal: AbortSignal.timeout(10_000) }))
      .json();
  const pub = await (await fetch(`${base}/static/app/hello.txt`, {
    signal: AbortSignal.timeout(10_000),
  })).text();
  return { build: page.build, view: page.view, pub };
}

async function allServe(fleet: Fleet): Promise<string[]> {
  return await Promise.all(HOST_ADDRS.map(async (_, i) => {
    const s = await served(fleet, i);
    return `${s.build}/${s.view}/${s.pub}`;
  }));
}

async function adminStatus(fleet: Fleet, i: number) {
  const res = await fetch(
    `http://${HOST_ADDRS[i]}:${fleet.adminPort}/api/status`,
    {
      headers: { Authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    },
  );
  return await res.json() as {
    workers: {
      name: string;
      restarts: number;
      status: string;
      requests: number;
    }[];
  };
}

/** Requests the fleet's workers answered so far (retired instances' included). */
async function fleetRequests(fleet: Fleet): Promise<number> {
  let total = 0;
  for (let i = 0; i < HOST_ADDRS.length; i++) {
    for (const w of (await adminStatus(fleet, i)).workers) total += w.requests;
  }
  return total;
}

/** Resolves once wrk's requests through nginx reached the fleet's workers `count` more times (bounded). */
async function loadReaches(fleet: Fleet, count: number, what: string) {
  const from = await fleetRequests(fleet);
  await waitFor(
    async () => (await fleetRequests(fleet)) >= from + count,
    10_000,
    `${count} requests of wrk ${what}`,
  );
}

function startHost(
  fleet: Fleet,
  i: number,
  pool: number,
): Promise<RunningServer> {
  return startServer(
    {
      root: fleet.hostRoots[i]!,
      adminPort: fleet.adminPort,
      poolStart: pool,
      cleanup: () => {},
    },
    ["--mode", "prod"],
    {
      env: {
        TQ_TEST_HOST: HOST_ADDRS[i]!,
        TQ_TEST_POOL: String(pool),
        TQ_TEST_POOL_END: String(pool + 39),
      },
    },
  );
}

/** Starts wrk through nginx; `stop()` ends it (SIGINT: it prints its totals) and parses them. */
function startWrk(
  port: number,
): {
  proc: Proc;
  stop(): Promise<
    { requests: number; non2xx: number; socketErrors: number; text: string }
  >;
} {
  const proc = spawn([
    "wrk",
    "-t2",
    "--timeout",
    "10s",
    "-c20",
    "-d120s",
    "--latency",
    `http://127.0.0.1:${port}/`,
  ]);
  return {
    proc,
    stop: async () => {
      try {
        proc.child.kill("SIGINT");
      } catch {
        // Already exited.
      }
      const timer = setTimeout(() => proc.stop(), 10_000);
      await proc.child.status;
      clearTimeout(timer);
      // Its totals end with "Transfer/sec"; a wrk that printed none fails
      // the caller's assertions with its output.
      await waitFor(
        () => proc.output().includes("Transfer/sec"),
        2000,
        "wrk's totals",
      ).catch(() => {});
      const text = proc.output();
      const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
      const non2xx = Number(
        /Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0,
      );
      const se =
        /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
          .exec(text);
      const socketErrors = se
        ? se.slice(1).reduce((n, v) => n + Number(v), 0)
        : 0;
      return { requests, non2xx, socketErrors, text };
    },
  };
}

Deno.test({
  name:
    `deploy.sh rolls a fleet of three hosts over ssh behind nginx: no failed request, verified, canary, rollback, status${
      missing ? ` (skipped: ${missing})` : ""
    }`,
  ignore: missing !== "",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "tq-fleet-" });
    const sshd = await startSshd(dir);
    const adminPort = portFreeOn(HOST_ADDRS);
    const fleet: Fleet = {
      dir,
      src: join(dir, "source"),
      sshd,
      servers: [],
      adminPort,
      hostRoots: sshd.hostDirs.map((d) => join(d, TARGET_PATH)),
    };
    const src = fleet.src;
    const numbers: string[] = [];
    try {
      Deno.mkdirSync(join(src, "config"), { recursive: true });
      Deno.writeTextFileSync(
        join(src, "config", "server.yaml"),
        `server:
  host: \${TQ_TEST_HOST:-127.0.0.1}
  trusted_proxies: ["127.0.0.1/32"]
  admin:
    host: \${TQ_TEST_HOST:-127.0.0.1}
    port: ${adminPort}
    token: ${TOKEN}
workers:
  routes:
    app: /
  port_range_start: \${TQ_TEST_POOL:-30000}
  port_range_end: \${TQ_TEST_POOL_END:-30039}
  startup_delay_ms: 20
  restart_delay_ms: 20
  shutdown_grace_period_ms: 2000
  default:
    startup_timeout_ms: 5000
    drain_timeout_ms: 5000
`,
      );
      Deno.writeTextFileSync(
        join(src, "config", "deployment.yaml"),
        `deployment:
  targets:
    fleet:
      hosts: [${HOST_ADDRS.map((a) => `root@${a}`).join(", ")}]
      path: "${TARGET_PATH}"
      ssh_options: "${sshd.sshOptions}"
      admin_url: http://{host}:${adminPort}
      canary_seconds: 2
      keep_releases: 4
    fleet-sighup:
      hosts: [${HOST_ADDRS.map((a) => `root@${a}`).join(", ")}]
      path: "${TARGET_PATH}"
      ssh_options: "${sshd.sshOptions}"
      keep_releases: 4
      batch: 3
`,
      );
      writeBuild(src, "v1", { view: "view-1", pub: "public-1" });

      await t.step(
        "a first deploy ships the project; each host then starts on it",
        async () => {
          const r = await deploySh(src, "fleet");
          assert.equal(r.code, 0, r.out);
          for (const root of fleet.hostRoots) {
            const bin = Deno.readTextFileSync(
              join(root, "workers", "app", "bin", "app"),
            );
            assert.match(bin, /BUILD = "v1"/);
            assert.equal(
              Deno.readTextFileSync(
                join(root, "workers", "app", "private", "views", "page.txt"),
              ),
              "view-1",
            );
          }
          fleet.servers = await Promise.all(
            HOST_ADDRS.map((_, i) =>
              startHost(fleet, i, 30000 + 100 * (i + 1))
            ),
          );
          assert.deepEqual(await allServe(fleet), [
            "v1/view-1/public-1",
            "v1/view-1/public-1",
            "v1/view-1/public-1",
          ]);
          fleet.nginx = await startNginx(
            dir,
            HOST_ADDRS.map((a, i) => `${a}:${fleet.servers[i]!.port}`),
          );
        },
      );

      await t.step(
        "status shows all three hosts with their deploy and workers",
        async () => {
          const r = await deploySh(src, "status", "fleet", "--json");
          assert.equal(r.code, 0, r.out);
          const json = JSON.parse(r.out.slice(r.out.indexOf("{")));
          assert.equal(json.hosts.length, 3);
          for (const h of json.hosts) {
            assert.equal(h.reachable, true, JSON.stringify(h));
            assert.match(h.deploy_id, /^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
            assert.equal(h.workers[0].name, "app");
            assert.equal(h.workers[0].status, "healthy");
          }
          const table = await deploySh(src, "status", "fleet");
          assert.match(table.out, /HOST\s+REACHABLE\s+DEPLOY\s+WORKER\s+STATE/);
          for (const a of HOST_ADDRS) {
            assert.match(
              table.out,
              new RegExp(`root@${a.replaceAll(".", "\\.")}\\s+yes`),
            );
          }
        },
      );

      await t.step(
        "the admin API over ssh: curl on the host gets the token on stdin, never in its arguments",
        async () => {
          const commands: string[][] = [];
          const run: RunFn = (cmd, options) => {
            commands.push(cmd);
            return runCommand(cmd, options);
          };
          const host = new Host(`root@${HOST_ADDRS[0]}`, TARGET_PATH, {
            sshOptions: sshd.sshOptions,
            run,
          });
          const admin = new Admin(host, `http://{host}:${adminPort}`, {
            token: TOKEN,
          });
          admin.useSsh();
          const workers = await admin.workers();
          assert.equal(workers[0]?.name, "app");
          const wrong = new Admin(host, `http://{host}:${adminPort}`, {
            token: "not-the-token",
          });
          wrong.useSsh();
          await assert.rejects(() => wrong.workers(), /answered 401/);
          assert.ok(commands.length >= 2);
          for (const cmd of commands) {
            assert.ok(
              !cmd.join(" ").includes(TOKEN) &&
                !cmd.join(" ").includes("not-the-token"),
              cmd.join(" "),
            );
          }
        },
      );

      await t.step(
        "X-Forwarded-For from nginx on a trusted address is appended to; from an untrusted one replaced",
        async () => {
          const ask = async (port: number) =>
            await (await fetch(`http://127.0.0.1:${port}/`, {
              headers: { "X-Forwarded-For": "203.0.113.7" },
              signal: AbortSignal.timeout(10_000),
            })).json();
          const trusted = await ask(fleet.nginx!.port);
          // nginx appends its client (127.0.0.1); tqserver appends nginx's address.
          assert.equal(trusted.xff, "203.0.113.7, 127.0.0.1, 127.0.0.1");
          assert.equal(trusted.proto, "http");
          const untrusted = await ask(fleet.nginx!.untrustedPort);
          assert.equal(
            untrusted.xff,
            "127.0.0.9",
            "what 127.0.0.9 claimed is dropped",
          );
        },
      );

      await t.step(
        "--dry-run lists per host what would change and touches nothing; a stale build warns",
        async () => {
          writeBuild(src, "v2", { view: "view-2", pub: "public-2" });
          Deno.mkdirSync(join(src, "workers", "app", "src"), {
            recursive: true,
          });
          const srcFile = join(src, "workers", "app", "src", "main.ts");
          Deno.writeTextFileSync(srcFile, "// newer than the build\n");
          const future = new Date(Date.now() + 3_600_000);
          Deno.utimeSync(srcFile, future, future);
          const r = await deploySh(src, "--dry-run", "fleet");
          Deno.removeSync(join(src, "workers", "app", "src"), {
            recursive: true,
          });
          assert.equal(r.code, 0, r.out);
          assert.match(r.out, /older than its sources/);
          for (const a of HOST_ADDRS) {
            assert.match(
              r.out,
              new RegExp(`root@${a.replaceAll(".", "\\.")}: 3 change\\(s\\)`),
              r.out,
            );
          }
          assert.match(r.out, /updated workers\/app\/bin\/app/);
          assert.match(
            r.out,
            /updated workers\/app\/private\/views\/page\.txt/,
          );
          assert.deepEqual(await allServe(fleet), [
            "v1/view-1/public-1",
            "v1/view-1/public-1",
            "v1/view-1/public-1",
          ]);
          assert.match(
            Deno.readTextFileSync(
              join(fleet.hostRoots[0]!, "workers", "app", "bin", "app"),
            ),
            /"v1"/,
          );
        },
      );

      await t.step(
        "shipping server/ without its binary to a host that runs the compiled server is an error",
        async () => {
          const fake = join(fleet.hostRoots[1]!, "server", "bin");
          Deno.mkdirSync(fake, { recursive: true });
          Deno.writeTextFileSync(join(fake, "tqserver"), "#!/bin/sh\n", {
            mode: 0o755,
          });
          Deno.chmodSync(join(fake, "tqserver"), 0o755);
          Deno.mkdirSync(join(src, "server", "public"), { recursive: true });
          const r = await deploySh(src, "--reload", "fleet");
          Deno.removeSync(join(src, "server"), { recursive: true });
          Deno.removeSync(join(fleet.hostRoots[1]!, "server"), {
            recursive: true,
          });
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, /root@127\.0\.0\.3 runs the compiled server/);
          assert.deepEqual(await allServe(fleet), [
            "v1/view-1/public-1",
            "v1/view-1/public-1",
            "v1/view-1/public-1",
          ]);
        },
      );

      let d1 = "";
      await t.step(
        "a rolling deploy of a changed worker under wrk -c20 through nginx fails no request",
        async () => {
          const wrk = hasWrk ? startWrk(fleet.nginx!.port) : undefined;
          if (wrk) await loadReaches(fleet, 100, "before the deploy");
          const started = performance.now();
          const r = await deploySh(src, "--reload", "fleet");
          const ms = performance.now() - started;
          if (wrk) await loadReaches(fleet, 100, "after the deploy");
          const load = await wrk?.stop();
          assert.equal(r.code, 0, r.out);
          d1 = /deploy (\S+) to fleet: done/.exec(r.out)?.[1] ?? "";
          assert.match(d1, /^\d{8}T\d{6}Z-[0-9a-f]{4}$/, r.out);
          for (const a of HOST_ADDRS) {
            assert.match(
              r.out,
              new RegExp(`root@${a.replaceAll(".", "\\.")} deployed`),
            );
          }
          assert.deepEqual(await allServe(fleet), [
            "v2/view-2/public-2",
            "v2/view-2/public-2",
            "v2/view-2/public-2",
          ]);
          if (load) {
            assert.ok(load.requests > 0, load.text);
            assert.equal(load.non2xx, 0, load.text);
            assert.equal(load.socketErrors, 0, load.text);
            numbers.push(
              `rolling deploy of 3 hosts: ${
                (ms / 1000).toFixed(1)
              } s (deploy.sh wall time); through nginx under wrk -c20: ${load.requests} requests, ${load.non2xx} non-2xx, ${load.socketErrors} socket errors`,
            );
          }
        },
      );

      await t.step(
        "a build that fails its health check on the second host: the roll stops, the first host is rolled back, the third untouched",
        async () => {
          const restarts3 = (await adminStatus(fleet, 2)).workers[0]!.restarts;
          Deno.writeTextFileSync(join(sshd.hostDirs[1]!, "fail-health"), "");
          writeBuild(src, "v3", {
            failOnMarker: true,
            view: "view-3",
            pub: "public-3",
          });
          const r = await deploySh(src, "--reload", "fleet");
          Deno.removeSync(join(sshd.hostDirs[1]!, "fail-health"));
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, /root@127\.0\.0\.2 rolled back/);
          assert.match(
            r.out,
            /root@127\.0\.0\.3 failed: worker app: .*; rolled back/,
          );
          numbers.push(
            r.out.split("\n").filter((l) => /^(deploy|root@)/.test(l)).join(
              "\n",
            ),
          );
          assert.match(r.out, /root@127\.0\.0\.4 untouched/);
          const took = /rolled back in ([\d.]+) s/.exec(r.out)?.[1];
          assert.ok(took, r.out);
          numbers.push(
            `failed health check on host 2 -> whole fleet back on the old release: ${took} s`,
          );
          // Binary and views back on the first host; every host serves the old build.
          assert.deepEqual(await allServe(fleet), [
            "v2/view-2/public-2",
            "v2/view-2/public-2",
            "v2/view-2/public-2",
          ]);
          const bin1 = Deno.readTextFileSync(
            join(fleet.hostRoots[0]!, "workers", "app", "bin", "app"),
          );
          assert.match(bin1, /BUILD = "v2"/);
          assert.equal(
            Deno.readTextFileSync(
              join(
                fleet.hostRoots[0]!,
                "workers",
                "app",
                "private",
                "views",
                "page.txt",
              ),
            ),
            "view-2",
          );
          assert.match(
            Deno.readTextFileSync(
              join(fleet.hostRoots[2]!, "workers", "app", "bin", "app"),
            ),
            /BUILD = "v2"/,
          );
          assert.equal(
            (await adminStatus(fleet, 2)).workers[0]!.restarts,
            restarts3,
            "the third host was never reloaded",
          );
          for (const root of fleet.hostRoots) {
            assert.equal(
              Deno.readTextFileSync(join(root, ".tqdeploy", "current")).trim(),
              d1,
            );
          }
        },
      );

      await t.step(
        "a file corrupted after transfer fails the manifest check before any reload",
        async () => {
          const before = (await adminStatus(fleet, 0)).workers[0]!.restarts;
          Deno.writeTextFileSync(join(sshd.hostDirs[0]!, "corrupt-stage"), "");
          writeBuild(src, "v3b", { view: "view-3", pub: "public-3" });
          const r = await deploySh(src, "--reload", "fleet");
          Deno.removeSync(join(sshd.hostDirs[0]!, "corrupt-stage"));
          assert.equal(r.code, 1, r.out);
          assert.match(
            r.out,
            /root@127\.0\.0\.2 failed: .*manifest mismatch: workers\/app\/bin\/app: FAILED/,
          );
          assert.match(r.out, /root@127\.0\.0\.3 untouched/);
          assert.equal(
            (await adminStatus(fleet, 0)).workers[0]!.restarts,
            before,
            "no reload on the failed host",
          );
          assert.match(
            Deno.readTextFileSync(
              join(fleet.hostRoots[0]!, "workers", "app", "bin", "app"),
            ),
            /BUILD = "v2"/,
          );
          assert.deepEqual(await allServe(fleet), [
            "v2/view-2/public-2",
            "v2/view-2/public-2",
            "v2/view-2/public-2",
          ]);
        },
      );

      await t.step(
        "a connection dropped in the middle of a deploy fails that host; the host before it is rolled back",
        async () => {
          Deno.writeTextFileSync(
            join(sshd.hostDirs[1]!, "drop-connection"),
            "",
          );
          writeBuild(src, "v3c", { view: "view-3", pub: "public-3" });
          const r = await deploySh(src, "--reload", "fleet");
          Deno.removeSync(join(sshd.hostDirs[1]!, "drop-connection"));
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, /root@127\.0\.0\.2 rolled back/);
          assert.match(
            r.out,
            /root@127\.0\.0\.3 failed: rsync on root@127\.0\.0\.3 failed/,
          );
          assert.match(r.out, /root@127\.0\.0\.4 untouched/);
          assert.deepEqual(await allServe(fleet), [
            "v2/view-2/public-2",
            "v2/view-2/public-2",
            "v2/view-2/public-2",
          ]);
          for (const root of fleet.hostRoots) {
            assert.equal(
              Deno.readTextFileSync(join(root, ".tqdeploy", "current")).trim(),
              d1,
            );
          }
        },
      );

      await t.step(
        "--canary with a build that answers 500: aborted after the canary, rolled back",
        async () => {
          writeBuild(src, "v4", {
            status: 500,
            view: "view-4",
            pub: "public-4",
          });
          let stop = false;
          const traffic = (async () => {
            let n = 0;
            while (!stop) {
              try {
                await (await fetch(`http://127.0.0.1:${fleet.nginx!.port}/`, {
                  signal: AbortSignal.timeout(5000),
                })).body?.cancel();
                n++;
              } catch {
                // Counted by the servers; the test only needs traffic.
              }
              // The pace of the traffic the canary judges, not a wait.
              await new Promise((r) => setTimeout(r, 10));
            }
            return n;
          })();
          const r = await deploySh(src, "--reload", "--canary", "3", "fleet");
          stop = true;
          await traffic;
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, /root@127\.0\.0\.2 failed: canary: 5xx rate/);
          assert.match(r.out, /root@127\.0\.0\.2 failed: .*; rolled back/);
          assert.match(r.out, /root@127\.0\.0\.3 untouched/);
          assert.match(r.out, /root@127\.0\.0\.4 untouched/);
          assert.deepEqual(await allServe(fleet), [
            "v2/view-2/public-2",
            "v2/view-2/public-2",
            "v2/view-2/public-2",
          ]);
        },
      );

      await t.step(
        "--rollback of an earlier deploy id restores binary, private/ and public/ on every host",
        async () => {
          // One more good deploy (binary only) on top, then roll back past it and d1.
          writeBuild(src, "v5", {});
          const r5 = await deploySh(src, "--reload", "fleet");
          assert.equal(r5.code, 0, r5.out);
          assert.deepEqual(await allServe(fleet), [
            "v5/view-4/public-4",
            "v5/view-4/public-4",
            "v5/view-4/public-4",
          ]);
          const r = await deploySh(src, "--rollback", "fleet", d1);
          assert.equal(r.code, 0, r.out);
          for (const a of HOST_ADDRS) {
            assert.match(
              r.out,
              new RegExp(`root@${a.replaceAll(".", "\\.")} rolled back`),
            );
          }
          assert.deepEqual(await allServe(fleet), [
            "v1/view-1/public-1",
            "v1/view-1/public-1",
            "v1/view-1/public-1",
          ]);
          for (const root of fleet.hostRoots) {
            assert.match(
              Deno.readTextFileSync(join(root, "workers", "app", "bin", "app")),
              /BUILD = "v1"/,
            );
            assert.equal(
              Deno.readTextFileSync(
                join(root, "workers", "app", "public", "hello.txt"),
              ),
              "public-1",
            );
          }
        },
      );

      await t.step(
        "without an admin_url the reload is a SIGHUP to the PID file's process (batch: 3, all hosts at once)",
        async () => {
          writeBuild(src, "v6", {});
          const r = await deploySh(src, "--reload", "fleet-sighup");
          assert.equal(r.code, 0, r.out);
          await waitFor(
            async () =>
              (await allServe(fleet)).every((s) => s.startsWith("v6/")),
            15_000,
            "every host on v6 after SIGHUP",
          );
          const releases = [
            ...Deno.readDirSync(
              join(fleet.hostRoots[0]!, ".tqdeploy", "releases"),
            ),
          ];
          assert.ok(
            releases.length <= 4,
            `keep_releases: 4, found ${releases.length}`,
          );
        },
      );

      await t.step("status shows a stopped host as unreachable", async () => {
        await fleet.servers[2]!.stop();
        fleet.servers[2] = undefined;
        const r = await deploySh(src, "status", "fleet", "--json");
        assert.equal(r.code, 1, r.out);
        const json = JSON.parse(r.out.slice(r.out.indexOf("{")));
        assert.deepEqual(
          json.hosts.map((h: { reachable: boolean }) => h.reachable),
          [true, true, false],
        );
        assert.match(json.hosts[2].error, /unreachable/);
        const table = await deploySh(src, "status", "fleet");
        assert.match(table.out, /root@127\.0\.0\.4\s+no/);
      });
      if (numbers.length) console.log(`\n${numbers.join("\n")}`);
    } finally {
      await Promise.all(fleet.servers.map((s) => s?.stop().catch(() => {})));
      await fleet.nginx?.proc.stop();
      await sshd.proc.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
