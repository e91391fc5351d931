// A warm standby of a dev worker, started ahead of the next rebuild by
// src/dev/standby.ts with the worker's own deno flags, cwd and environment.
// It loads the worker's packages, then waits for one line on stdin, a JSON
// object {url, env}: it takes that environment (the port is only known then)
// and imports the new bundle, which runs as if deno had started it. End of
// stdin first means the server is gone: exit.
const preload: string[] = JSON.parse(
  Deno.env.get("TQ_STANDBY_PRELOAD") ?? "[]",
);
Deno.env.delete("TQ_STANDBY_PRELOAD");
await Promise.allSettled(preload.map((specifier) => import(specifier)));

const decoder = new TextDecoder();
const buffer = new Uint8Array(1 << 16);
let text = "";
while (!text.includes("\n")) {
  const n = await Deno.stdin.read(buffer);
  if (n === null) Deno.exit(0);
  text += decoder.decode(buffer.subarray(0, n), { stream: true });
}
const { url, env } = JSON.parse(text.slice(0, text.indexOf("\n"))) as {
  url: string;
  env: Record<string, string>;
};
for (const key of Object.keys(Deno.env.toObject())) {
  if (!(key in env)) Deno.env.delete(key);
}
for (const [key, value] of Object.entries(env)) Deno.env.set(key, value);
await import(url);
