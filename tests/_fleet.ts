// A fleet of three "hosts" on this machine for the deploy tests: one OpenSSH
// sshd (throwaway host and client keys, a known_hosts written here) that
// serves 127.0.0.2, .3 and .4, each address entering its own directory
// through a forced command; a tqserver per host bound to its address; and
// nginx on 127.0.0.1 balancing them. Everything lives in one temp dir and
// every process is stopped by its PID.
import { join } from "node:path";
import { REPO, waitFor } from "./_helpers.ts";

export const HOST_ADDRS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/** True when `cmd` with `args` runs here. */
export function installed(cmd: string, args: string[] = ["-V"]): boolean {
  try {
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
}

/**
 * A Python stdlib worker for tqserver: an HTTP/1.1 server on TQ_PORT that
 * stops on SIGTERM or when its stdin closes. `globals` (Python lines) stand
 * before the handler; `answer` (lines indented by 8) is the body of do_GET
 * and sets `code` and `body`, sent as JSON.
 */
export function pythonWorker(answer: string, globals = ""): string {
  return `#!/usr/bin/env python3
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
${globals}class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
${answer}        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = ThreadingHTTPServer(("127.0.0.1", int(os.environ["TQ_PORT"])), H)
srv.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
def watch_stdin():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch_stdin, daemon=True).start()
srv.serve_forever()
`;
}

/** Why the fleet tests cannot run here, or "" when they can. */
export function fleetMissing(): string {
  const missing = [
    ["/usr/sbin/sshd", "openssh-server"],
    ["ssh", "openssh-client"],
    ["ssh-keygen", "openssh-client"],
    ["rsync", "rsync"],
    ["/usr/sbin/nginx", "nginx-light"],
    ["python3", "python3"],
    ["curl", "curl"],
  ].filter(([cmd]) =>
    !installed(
      cmd!,
      cmd === "rsync" || cmd === "curl" || cmd === "python3"
        ? ["--version"]
        : ["-V"],
    )
  )
    .map(([, pkg]) => pkg);
  if (Deno.build.os !== "linux") {
    return "needs Linux (all of 127.0.0.0/8 on lo)";
  }
  return missing.length ? `missing ${[...new Set(missing)].join(", ")}` : "";
}

async function sh(cmd: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    ...(cwd ? { cwd } : {}),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text;
}

/** A TCP port free on every one of `addrs` right now. */
export function portFreeOn(addrs: string[]): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      const ls = addrs.map((hostname) => Deno.listen({ hostname, port }));
      ls.forEach((l) => l.close());
      return port;
    } catch {
      // Taken on one of them: try another.
    }
  }
  throw new Error(`No port free on all of ${addrs.join(", ")}`);
}

/** A spawned process the fleet owns, with its output kept for failures. */
export interface Proc {
  child: Deno.ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `cmd` and keeps its output; `stop()` sends SIGTERM, then SIGKILL after 5 s. */
export function spawn(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Proc {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) text += c;
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(
    () => {},
  );
  return {
    child,
    output: () => text,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }, 5000);
      await child.status;
      clearTimeout(timer);
      await Promise.race([pumped, new Promise((r) => setTimeout(r, 2000))]);
    },
  };
}

/** The sshd of the fleet and how to reach each host through it. */
export interface Sshd {
  port: number;
  /** `ssh_options` for the target. */
  sshOptions: string;
  /** Directory each host's forced command enters (its "/"). */
  hostDirs: string[];
  proc: Proc;
}

/**
 * Starts sshd on 127.0.0.2-4:port. Each address has its own authorized_keys
 * whose forced command enters that host's directory and runs the original
 * command there (relative target paths resolve per host); after it, a host
 * whose directory holds `corrupt-stage` has a byte appended to every file
 * under `.../.tqdeploy/stage/workers/*\/bin/` — a transfer corrupted on
 * arrival; and one whose directory holds `drop-connection` (a count, initially 0)
 * kills its ssh session when the transfer into the stage starts — a
 * connection dropped in the middle of a deploy.
 */
export async function startSshd(dir: string): Promise<Sshd> {
  Deno.mkdirSync("/run/sshd", { recursive: true });
  for (const key of ["host_key", "client_key"]) {
    await sh([
      "ssh-keygen",
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-f",
      join(dir, key),
    ]);
  }
  const clientPub = Deno.readTextFileSync(join(dir, "client_key.pub")).trim();
  const hostPub = Deno.readTextFileSync(join(dir, "host_key.pub")).trim().split(
    " ",
  ).slice(0, 2).join(" ");
  const port = portFreeOn(HOST_ADDRS);
  const hostDirs = HOST_ADDRS.map((_, i) => join(dir, `host${i + 1}`));
  const blocks: string[] = [];
  HOST_ADDRS.forEach((addr, i) => {
    const hd = hostDirs[i]!;
    Deno.mkdirSync(hd, { recursive: true });
    const enter = join(dir, `enter${i + 1}.sh`);
    Deno.writeTextFileSync(
      enter,
      `#!/bin/sh\ncd '${hd}' || exit 1\n` +
        // drop-connection: the session dies at the host's first rsync of a
        // deploy (the transfer into the stage), after the release folder came.
        `if [ -f drop-connection ]; then case "$SSH_ORIGINAL_COMMAND" in "rsync --server"*)\n` +
        `  n=$(( $(cat drop-connection) + 1 )); echo $n > drop-connection; [ $n -eq 1 ] && kill -9 $PPID;; esac; fi\n` +
        `sh -c "$SSH_ORIGINAL_COMMAND"\nstatus=$?\n` +
        `if [ -f corrupt-stage ]; then\n  find . -path '*/.tqdeploy/stage/workers/*/bin/*' -type f -links 1 | while IFS= read -r f; do printf 'X' >> "$f"; done\nfi\n` +
        `exit $status\n`,
      { mode: 0o755 },
    );
    Deno.chmodSync(enter, 0o755);
    Deno.writeTextFileSync(
      join(dir, `authorized_keys${i + 1}`),
      `command="${enter}",no-pty,no-agent-forwarding,no-X11-forwarding ${clientPub}\n`,
    );
    blocks.push(
      `Match LocalAddress ${addr}\n  AuthorizedKeysFile ${
        join(dir, `authorized_keys${i + 1}`)
      }\n`,
    );
  });
  Deno.writeTextFileSync(
    join(dir, "sshd_config"),
    [
      ...HOST_ADDRS.map((a) => `ListenAddress ${a}`),
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "UseDNS no",
      "AuthorizedKeysFile none",
      "MaxStartups 50:30:100",
      "",
      ...blocks,
    ].join("\n"),
  );
  Deno.writeTextFileSync(
    join(dir, "known_hosts"),
    HOST_ADDRS.map((a) => `[${a}]:${port} ${hostPub}\n`).join(""),
  );
  const proc = spawn([
    "/usr/sbin/sshd",
    "-D",
    "-e",
    "-f",
    join(dir, "sshd_config"),
    "-p",
    String(port),
  ]);
  await waitFor(
    async () => {
      try {
        (await Deno.connect({ hostname: HOST_ADDRS[0]!, port })).close();
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    `sshd on ${HOST_ADDRS[0]}:${port}\n${proc.output()}`,
  );
  return {
    port,
    sshOptions: `-p ${port} -i ${
      join(dir, "client_key")
    } -o UserKnownHostsFile=${
      join(dir, "known_hosts")
    } -o IdentitiesOnly=yes -o LogLevel=ERROR`,
    hostDirs,
    proc,
  };
}

/** nginx on 127.0.0.1 balancing the hosts; `untrustedPort` proxies from 127.0.0.9. */
export interface Nginx {
  port: number;
  untrustedPort: number;
  proc: Proc;
}

/**
 * The fenced block of `lang` under the docs/deployment.md heading `heading`
 * (the configurations the docs promise are tested).
 */
export function docBlock(heading: string, lang: string): string {
  const text = Deno.readTextFileSync(join(REPO, "docs", "deployment.md"));
  const at = text.indexOf(`\n### ${heading}\n`);
  if (at < 0) throw new Error(`docs/deployment.md has no "### ${heading}"`);
  const open = text.indexOf("```" + lang + "\n", at);
  const close = text.indexOf("\n```", open + 4);
  if (open < 0 || close < 0) {
    throw new Error(`No \`\`\`${lang} block under "### ${heading}"`);
  }
  return text.slice(open + lang.length + 4, close + 1);
}

/** The documented upstreams, replaced by the test's. */
export const DOC_UPSTREAMS = [
  "10.0.0.11:8080",
  "10.0.0.12:8080",
  "10.0.0.13:8080",
];

function withUpstreams(conf: string, upstreams: string[]): string {
  DOC_UPSTREAMS.forEach((u, i) => {
    if (!conf.includes(u)) throw new Error(`The documented config lost ${u}`);
    conf = conf.replaceAll(u, upstreams[i]!);
  });
  return conf;
}

/**
 * The nginx config of the docs (upstream keepalive, proxy_next_upstream) on
 * `port`, with `upstreams`, inside a main config whose paths are in `dir`;
 * with `untrustedPort`, a copy of its server that connects from 127.0.0.9.
 */
export function nginxConfig(
  dir: string,
  upstreams: string[],
  port: number,
  untrustedPort?: number,
): string {
  const doc = withUpstreams(docBlock("nginx", "nginx"), upstreams);
  const server = doc.slice(doc.indexOf("\nserver {") + 1);
  let body = doc.replace("listen 80;", `listen 127.0.0.1:${port};`);
  if (untrustedPort !== undefined) {
    body += server.replace("listen 80;", `listen 127.0.0.1:${untrustedPort};`)
      .replace("location / {", "location / {\n        proxy_bind 127.0.0.9;");
  }
  return `daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
${body}}
`;
}

/** The HAProxy config of the docs on `port` with `upstreams`. */
export function haproxyConfig(upstreams: string[], port: number): string {
  return withUpstreams(docBlock("HAProxy", "haproxy"), upstreams).replace(
    "bind :80",
    `bind 127.0.0.1:${port}`,
  );
}

/** The Caddyfile of the docs on `port` with `upstreams`, its admin endpoint off. */
export function caddyConfig(upstreams: string[], port: number): string {
  return "{\n\tadmin off\n\tauto_https off\n}\n" +
    withUpstreams(docBlock("Caddy", "caddyfile"), upstreams).replace(
      ":80 {",
      `http://127.0.0.1:${port} {`,
    );
}

/** Waits until something accepts connections on 127.0.0.1:`port`. */
export async function waitListening(
  port: number,
  proc: Proc,
  what: string,
): Promise<void> {
  await waitFor(
    async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    `${what} on 127.0.0.1:${port}\n${proc.output()}`,
  );
}

export async function startNginx(
  dir: string,
  upstreams: string[],
): Promise<Nginx> {
  const port = portFreeOn(["127.0.0.1"]);
  let untrustedPort = portFreeOn(["127.0.0.1"]);
  while (untrustedPort === port) untrustedPort = portFreeOn(["127.0.0.1"]);
  const conf = join(dir, "nginx.conf");
  Deno.writeTextFileSync(
    conf,
    nginxConfig(dir, upstreams, port, untrustedPort),
  );
  const proc = spawn(["/usr/sbin/nginx", "-c", conf, "-p", dir]);
  await waitListening(port, proc, "nginx");
  return { port, untrustedPort, proc };
}
