// End-to-end: the front configurations of docs/deployment.md (nginx, Caddy,
// HAProxy) run for real in front of a tqserver, one upstream of three down;
// and the systemd unit's contract (READY=1 on NOTIFY_SOCKET, SIGHUP reload,
// SIGTERM to the main process alone) against a real server.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeProject,
  type RunningServer,
  startServer,
  waitFor,
} from "./_helpers.ts";
import {
  caddyConfig,
  docBlock,
  haproxyConfig,
  installed,
  nginxConfig,
  portFreeOn,
  type Proc,
  pythonWorker,
  spawn,
  waitListening,
} from "./_fleet.ts";

const PY = installed("python3", ["--version"]);

/** A worker that answers with the X-Forwarded-* it got. */
const XFF_WORKER = pythonWorker(
  `        code = 200
        body = json.dumps({"xff": self.headers.get("X-Forwarded-For"),
            "proto": self.headers.get("X-Forwarded-Proto"),
            "host": self.headers.get("X-Forwarded-Host")}).encode()
`,
);

function writeWorker(root: string): void {
  const bin = join(root, "workers", "index", "bin", "index");
  Deno.writeTextFileSync(bin, XFF_WORKER, { mode: 0o755 });
  Deno.chmodSync(bin, 0o755);
}

interface Front {
  name: string;
  cmd: string;
  ok: boolean;
  start(dir: string, upstreams: string[], port: number): Proc;
  /** What the worker sees in X-Forwarded-For for a client (127.0.0.1) that sent `203.0.113.7`. */
  xff: string;
}

const FRONTS: Front[] = [
  {
    name: "nginx",
    cmd: "/usr/sbin/nginx",
    ok: installed("/usr/sbin/nginx", ["-v"]),
    start: (dir, upstreams, port) => {
      const conf = join(dir, "nginx.conf");
      Deno.writeTextFileSync(conf, nginxConfig(dir, upstreams, port));
      return spawn(["/usr/sbin/nginx", "-c", conf, "-p", dir]);
    },
    // nginx appends its client; tqserver (nginx is a trusted loopback peer) appends nginx.
    xff: "203.0.113.7, 127.0.0.1, 127.0.0.1",
  },
  {
    name: "HAProxy",
    cmd: "haproxy",
    ok: installed("haproxy", ["-v"]),
    start: (dir, upstreams, port) => {
      const conf = join(dir, "haproxy.cfg");
      Deno.writeTextFileSync(conf, haproxyConfig(upstreams, port));
      return spawn(["haproxy", "-db", "-f", conf]);
    },
    // option forwardfor adds a second X-Forwarded-For line; tqserver joins them and appends.
    xff: "203.0.113.7, 127.0.0.1, 127.0.0.1",
  },
  {
    name: "Caddy",
    cmd: "caddy",
    ok: installed("caddy", ["version"]),
    start: (dir, upstreams, port) => {
      const conf = join(dir, "Caddyfile");
      Deno.writeTextFileSync(conf, caddyConfig(upstreams, port));
      return spawn(
        ["caddy", "run", "--config", conf, "--adapter", "caddyfile"],
        {
          env: {
            HOME: dir,
            XDG_DATA_HOME: join(dir, "data"),
            XDG_CONFIG_HOME: join(dir, "config"),
          },
        },
      );
    },
    // Caddy trusts no client's X-Forwarded-For by default: it sends the client alone.
    xff: "127.0.0.1, 127.0.0.1",
  },
];

for (const front of FRONTS) {
  const skip = !PY
    ? "python3 missing"
    : !front.ok
    ? `${front.cmd} missing`
    : "";
  Deno.test({
    name:
      `the documented ${front.name} front balances tqservers, skips a host that is down, and forwards the client's address${
        skip ? ` (skipped: ${skip})` : ""
      }`,
    ignore: skip !== "",
    fn: async () => {
      const project = makeProject();
      writeWorker(project.root);
      const dir = await Deno.makeTempDir({
        prefix: `tq-front-${front.name.toLowerCase()}-`,
      });
      let server: RunningServer | undefined;
      let proc: Proc | undefined;
      try {
        server = await startServer(project);
        const dead = `127.0.0.3:${portFreeOn(["127.0.0.3"])}`;
        const live = `127.0.0.1:${server.port}`;
        const port = portFreeOn(["127.0.0.1"]);
        proc = front.start(dir, [live, dead, live], port);
        await waitListening(port, proc, front.name);
        for (let i = 0; i < 12; i++) {
          const res = await fetch(`http://127.0.0.1:${port}/page`, {
            headers: { "X-Forwarded-For": "203.0.113.7" },
            signal: AbortSignal.timeout(10_000),
          });
          assert.equal(
            res.status,
            200,
            `request ${i}: ${await res.clone().text()}\n${proc.output()}`,
          );
          const seen = await res.json();
          assert.equal(seen.xff, front.xff);
          assert.equal(seen.proto, "http");
        }
      } finally {
        await proc?.stop();
        await server?.stop();
        project.cleanup();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

Deno.test({
  name:
    `the documented systemd unit's contract: READY=1 on NOTIFY_SOCKET, ExecReload's SIGHUP reloads, KillMode=mixed's SIGTERM to the server alone stops everything${
      PY ? "" : " (skipped: python3 missing)"
    }`,
  ignore: !PY,
  fn: async () => {
    const unit = docBlock("systemd", "ini");
    for (
      const line of [
        "Type=notify",
        "NotifyAccess=all",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
      ]
    ) {
      assert.match(unit, new RegExp(`^${line.replace(/[$]/g, "\\$")}$`, "m"));
    }
    const project = makeProject();
    writeWorker(project.root);
    const dir = await Deno.makeTempDir({ prefix: "tq-systemd-" });
    const socket = join(dir, "notify");
    // systemd's side of sd_notify: a datagram socket that prints what it gets.
    const listener = spawn([
      "python3",
      "-c",
      "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\n" +
      "print('bound',flush=True)\nwhile True: print(s.recv(4096).decode().replace(chr(10),' '),flush=True)",
      socket,
    ]);
    let server: RunningServer | undefined;
    try {
      await waitFor(
        () => listener.output().includes("bound"),
        10_000,
        "the notify socket",
      );
      server = await startServer(project, ["--mode", "prod"], {
        env: { NOTIFY_SOCKET: socket },
      });
      await waitFor(
        () => /READY=1/.test(listener.output()),
        10_000,
        `READY=1 on ${socket}`,
      );
      const worker = (await server.status()).workers[0]!;
      // ExecReload: SIGHUP to the main PID makes the server check what changed.
      writeWorker(project.root);
      Deno.kill(server.process.pid, "SIGHUP");
      await waitFor(
        async () => (await server!.status()).workers[0]!.pid !== worker.pid,
        15_000,
        "the worker replaced after SIGHUP",
      );
      const replaced = (await server.status()).workers[0]!.pid!;
      // KillMode=mixed: SIGTERM to the main process only; it stops its workers.
      Deno.kill(server.process.pid, "SIGTERM");
      const status = await server.process.status;
      assert.equal(status.code, 0);
      await waitFor(
        () => {
          try {
            Deno.kill(replaced, "SIGCONT");
            return false;
          } catch {
            return true;
          }
        },
        10_000,
        `worker ${replaced} gone`,
      );
      await server.stop();
      server = undefined;
      assert.match(listener.output(), /STOPPING=1/);
    } finally {
      await server?.stop();
      await listener.stop();
      project.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
