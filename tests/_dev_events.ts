// Helpers of the dev-mode end-to-end tests: the /_tq/events stream and small workers.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Project, type RunningServer, waitFor } from "./_helpers.ts";

/** One server-sent event. */
export interface DevEvent {
  type: string;
  data: Record<string, unknown>;
  /** When it arrived (performance.now()). */
  at: number;
}

/** A subscription to `/_tq/events`. */
export interface Events {
  list: DevEvent[];
  close(): void;
}

/** Subscribes to `/_tq/events` and waits for its `hello`. */
export async function subscribe(server: RunningServer): Promise<Events> {
  const ac = new AbortController();
  const res = await fetch(`${server.base}/_tq/events`, { signal: ac.signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const events: Events = { list: [], close: () => ac.abort() };
  (async () => {
    let buffer = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type) {
          events.list.push({
            type,
            data: data ? JSON.parse(data) : {},
            at: performance.now(),
          });
        }
      }
    }
  })().catch(() => {});
  await waitFor(
    () => events.list.some((e) => e.type === "hello"),
    5000,
    "the hello event",
  );
  return events;
}

/** A Deno.serve worker answering `text` (an expression) on every path but /health. */
export function plainWorker(text: string, prelude = ""): string {
  return `${prelude}
const server = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("TQ_PORT")), onListen() {} }, (req) => {
  if (new URL(req.url).pathname === "/health") return new Response("ok");
  return new Response(${text});
});
Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
(async () => { for await (const _ of Deno.stdin.readable) { /* never written */ } Deno.exit(0); })();
`;
}

/** Writes `workers/{name}/src/{file}` (folders included). */
export function writeSource(
  project: Project,
  name: string,
  file: string,
  text: string,
): string {
  const dir = join(project.root, "workers", name, "src");
  Deno.mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  Deno.writeTextFileSync(path, text);
  return path;
}
