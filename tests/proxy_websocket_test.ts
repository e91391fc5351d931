// Proxied WebSockets against peers we did not write: Node's `ws` package on
// both ends (worker and client), through a real tqserver (SPEC §7). Close
// codes pass unchanged both ways, a killed worker gives 1011, a replace
// gives 1012 within websocket_drain_ms + 1 s and leaves other workers'
// WebSockets and SSE streams alone, a message over the limit gets 1009.
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeProject, REPO, startServer, waitFor } from "./_helpers.ts";
import { hasCommand, writeScriptWorker } from "./_workers.ts";

const PEER = join(REPO, "tests", "testdata", "ws_peer.mjs");
const DRAIN_MS = 1000;

/** Installs `ws` into a temp dir (npm's cache makes it quick); undefined when it cannot. */
async function installWs(): Promise<string | undefined> {
  if (!hasCommand("node") || !hasCommand("npm")) return undefined;
  const dir = await Deno.makeTempDir({ prefix: "tq-ws-" });
  try {
    const out = await new Deno.Command("npm", {
      args: ["install", "--prefix", dir, "--no-audit", "--no-fund", "ws@8"],
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    if (out.success) return dir;
    console.error(new TextDecoder().decode(out.stderr));
  } catch (err) {
    console.error(`npm install ws failed: ${err}`);
  }
  await Deno.remove(dir, { recursive: true });
  return undefined;
}

const WS_DIR = await installWs();

interface PeerEvent {
  event: "open" | "message" | "close" | "error";
  text?: string;
  bytes?: number;
  code?: number;
  reason?: string;
  message?: string;
}

/** A Node `ws` client in its own process, driven by commands on stdin. */
class Client {
  readonly events: PeerEvent[] = [];
  #process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters = new Set<() => void>();

  constructor(url: string) {
    const child = new Deno.Command("node", {
      args: [PEER, "client", url],
      env: { TQ_WS_DIR: WS_DIR! },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#process = child;
    this.#writer = child.stdin.getWriter();
    (async () => {
      let rest = "";
      for await (
        const text of child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        rest += text;
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          this.events.push(JSON.parse(rest.slice(0, nl)));
          rest = rest.slice(nl + 1);
          for (const wake of this.#waiters) wake();
        }
      }
    })();
  }

  static async open(url: string): Promise<Client> {
    const client = new Client(url);
    await client.next((e) => e.event === "open", 10_000, `open ${url}`);
    return client;
  }

  command(line: string): Promise<void> {
    return this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** The first event matching `match` (past or future), waited for at most `ms`. */
  next(
    match: (e: PeerEvent) => boolean,
    ms = 10_000,
    what = "an event",
  ): Promise<PeerEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(match);
        if (found === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `No ${what} in ${ms} ms; events: ${JSON.stringify(this.events)}`,
          ),
        );
      }, ms);
      this.#waiters.add(check);
      check();
    });
  }

  closed(ms = 10_000): Promise<PeerEvent> {
    return this.next((e) => e.event === "close", ms, "close");
  }

  /** Sends `text` and waits for the worker's echo. */
  async echo(text: string): Promise<void> {
    await this.command(`send ${text}`);
    await this.next((e) => e.text === `echo: ${text}`, 5000, `echo ${text}`);
  }

  async end(): Promise<void> {
    try {
      this.#process.kill("SIGKILL");
    } catch {
      // Exited already (it exits once its socket closed).
    }
    await this.#writer.close().catch(() => {});
    await this.#process.status;
  }
}

async function workerCloses(
  base: string,
  worker: string,
): Promise<{ code: number; reason: string }[]> {
  const res = await fetch(`${base}/${worker}/closes`);
  return await res.json();
}

Deno.test({
  name:
    "proxied WebSockets keep close codes, survive other workers' replaces and get 1011/1012/1009",
  ignore: WS_DIR === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const project = makeProject({ workers: {} });
    for (const name of ["chat", "other"]) {
      writeScriptWorker(project.root, name, ["node", PEER], {
        TQ_WS_DIR: WS_DIR!,
      });
    }
    const server = await startServer(project);
    const ws = `ws://127.0.0.1:${server.port}`;
    const clients: Client[] = [];
    const open = async (url: string) => {
      const client = await Client.open(url);
      clients.push(client);
      return client;
    };
    try {
      await t.step(
        "codes and reasons from the worker reach the client unchanged",
        async () => {
          for (const code of [1001, 1008, 1011, 1012, 4001]) {
            const client = await open(`${ws}/chat/ws`);
            await client.echo("hi");
            await client.command(`send close ${code} worker says ${code}`);
            const closed = await client.closed();
            assert.equal(closed.code, code);
            assert.equal(closed.reason, `worker says ${code}`);
          }
        },
      );

      await t.step(
        "codes and reasons from the client reach the worker unchanged",
        async () => {
          for (const code of [1001, 1008, 1011, 4001]) {
            const client = await open(`${ws}/chat/ws`);
            await client.echo("hi");
            await client.command(`close ${code} client says ${code}`);
            const closed = await client.closed();
            assert.equal(closed.code, code, "the worker echoes the code");
            await waitFor(
              async () =>
                (await workerCloses(server.base, "chat")).some((c) =>
                  c.code === code && c.reason === `client says ${code}`
                ),
              5000,
              `close ${code} at the worker`,
            );
          }
        },
      );

      await t.step(
        "a SIGKILLed worker gives its clients 1011 at once",
        async () => {
          const client = await open(`${ws}/chat/ws`);
          await client.command("send pid");
          const pid = Number(
            (await client.next((e) => /^\d+$/.test(e.text ?? ""))).text,
          );
          const killed = performance.now();
          Deno.kill(pid, "SIGKILL");
          const closed = await client.closed(5000);
          const ms = performance.now() - killed;
          assert.equal(closed.code, 1011, JSON.stringify(closed));
          assert.ok(ms < 1000, `1011 after ${Math.round(ms)} ms`);
          // The crashed worker comes back before the next step.
          await waitFor(
            async () =>
              (await server.status()).workers.some((w) =>
                w.name === "chat" && w.status === "healthy" && w.pid !== pid
              ),
            15_000,
            "chat restarted",
          );
        },
      );

      await t.step(
        "a replace gives an open socket 1012 within websocket_drain_ms + 1 s, leaves other workers' WebSocket and SSE alone, and a new socket reaches the new instance",
        async () => {
          const client = await open(`${ws}/chat/ws`);
          await client.command("send pid");
          const oldPid = Number(
            (await client.next((e) => /^\d+$/.test(e.text ?? ""))).text,
          );
          const bystander = await open(`${ws}/other/ws`);
          await bystander.echo("before");
          const sse = await fetch(`${server.base}/other/events`);
          const reader = sse.body!.pipeThrough(new TextDecoderStream())
            .getReader();
          const ticks = async (n: number) => {
            let seen = 0;
            while (seen < n) {
              const { value, done } = await reader.read();
              assert.ok(!done, "the SSE stream of the other worker ended");
              seen += value.split("data: tick").length - 1;
            }
          };
          await ticks(1);
          const res = await fetch(
            `${server.admin}/api/workers/chat/restart`,
            { method: "POST", headers: { "content-type": "application/json" } },
          );
          assert.equal(res.status, 200, await res.text());
          // The restart answers once the new instance serves: the drain starts then.
          const switched = performance.now();
          const closed = await client.closed(DRAIN_MS + 3000);
          const ms = performance.now() - switched;
          assert.equal(closed.code, 1012, JSON.stringify(closed));
          assert.ok(ms <= DRAIN_MS + 1000, `1012 after ${Math.round(ms)} ms`);
          // The old process stops once its socket closed, not after the
          // 30 s drain_timeout_ms that an open socket used to hold it for.
          await server.waitForLog(
            new RegExp(`worker instance stopped.*pid=${oldPid}`),
            3000,
          );
          const fresh = await open(`${ws}/chat/ws`);
          await fresh.command("send pid");
          const newPid = Number(
            (await fresh.next((e) => /^\d+$/.test(e.text ?? ""))).text,
          );
          assert.notEqual(newPid, oldPid);
          // The other worker's sockets saw nothing of it.
          await bystander.echo("after");
          assert.ok(!bystander.events.some((e) => e.event === "close"));
          await ticks(3);
          await reader.cancel();
        },
      );

      await t.step(
        "a config reload that replaces one worker gives only its sockets 1012, within its own websocket_drain_ms",
        async () => {
          const client = await open(`${ws}/chat/ws`);
          await client.echo("hi");
          const bystander = await open(`${ws}/other/ws`);
          await bystander.echo("before");
          const sse = await fetch(`${server.base}/other/events`);
          const reader = sse.body!.pipeThrough(new TextDecoderStream())
            .getReader();
          await reader.read();
          const yaml = join(project.root, "config", "server.yaml");
          const text = Deno.readTextFileSync(yaml);
          assert.match(text, /\nworkers:\n/);
          Deno.writeTextFileSync(
            yaml,
            text.replace(
              "\nworkers:\n",
              '\nworkers:\n  paths:\n    "/chat":\n      websocket_drain_ms: 400\n',
            ),
          );
          const reloaded = performance.now();
          const res = await fetch(`${server.admin}/api/reload`, {
            method: "POST",
            headers: { "content-type": "application/json" },
          });
          assert.equal(res.status, 200, await res.text());
          const closed = await client.closed(5000);
          assert.equal(closed.code, 1012, JSON.stringify(closed));
          // Measured from the reload request: it includes the new instance's start.
          const ms = performance.now() - reloaded;
          assert.ok(ms < 400 + 1000 + 2000, `1012 after ${Math.round(ms)} ms`);
          await bystander.echo("after");
          assert.ok(!bystander.events.some((e) => e.event === "close"));
          const { done } = await reader.read();
          assert.equal(done, false, "the other worker's SSE stream ended");
          await reader.cancel();
        },
      );

      await t.step(
        "a 65 MiB message gets 1009 (the limit is Deno's 64 MiB)",
        async () => {
          const big = 65 * 1024 * 1024;
          // From the worker: refused by our client before its bytes are read.
          const down = await open(`${ws}/chat/ws`);
          await down.command(`send big ${big}`);
          const closed = await down.closed(20_000);
          assert.equal(closed.code, 1009, JSON.stringify(closed));
          await server.waitForLog(
            /websocket message too large.*limit=67108864/,
          );
          // From the client: Deno.serve's WebSocket drops the client at its
          // own limit before our code sees the message (the client sees
          // 1006); the worker gets 1009.
          const up = await open(`${ws}/chat/ws`);
          await up.echo("hi");
          await up.command(`sendbytes ${big}`);
          const dropped = await up.closed(20_000);
          assert.equal(dropped.code, 1006, JSON.stringify(dropped));
          await waitFor(
            async () =>
              (await workerCloses(server.base, "chat")).some((c) =>
                c.code === 1009
              ),
            5000,
            "1009 at the worker",
          );
          // Under the limit, a large message is relayed.
          const ok = await open(`${ws}/chat/ws`);
          await ok.command(`sendbytes ${8 * 1024 * 1024}`);
          await ok.next((e) => e.text === `bytes: ${8 * 1024 * 1024}`, 20_000);
        },
      );
    } finally {
      for (const client of clients) await client.end();
      await server.stop();
      project.cleanup();
      await Deno.remove(WS_DIR!, { recursive: true });
    }
  },
});
