// Folder-private: a host's admin API (reload, status, metrics), called from
// here when it is reachable, else with curl on the host over ssh.
import { curlScript, signalScript } from "./_scripts.ts";
import type { Host } from "./_host.ts";

/** An admin API answer. */
export interface AdminAnswer {
  ok: boolean;
  status: number;
  body: unknown;
  text: string;
}

/** The part of `/api/status` a deploy reads. */
export interface WorkerStatus {
  name: string;
  status: string;
  binary_mtime: string | null;
  restarts: number;
  last_error: string | null;
}

/** The admin API could not be reached at all (as opposed to an answer that says no). */
export class AdminUnreachable extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AdminUnreachable";
  }
}

/** Options for {@linkcode Admin}. */
export interface AdminOptions {
  /** Bearer token (`server.admin.token`). Default none. */
  token?: string;
  /** fetch used for direct calls. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.trim().slice(0, 200) };
  }
}

function isLoopbackUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return h === "localhost" || h.startsWith("127.") || h === "::1";
  } catch {
    return false;
  }
}

/**
 * One host's admin API. Tries the URL from here first (`{host}` replaced by
 * the host's address); when that cannot connect, or the URL is a loopback
 * one of a remote host (it would reach this machine), it runs curl on the
 * host over ssh with the token on stdin.
 */
export class Admin {
  readonly url: string;
  readonly #host: Host;
  readonly #token: string;
  readonly #fetch: typeof fetch;
  #viaSsh: boolean;
  #probed = false;

  constructor(host: Host, adminUrl: string, options: AdminOptions = {}) {
    const { token = "", fetch: fetchFn = fetch } = options;
    this.#host = host;
    this.url = adminUrl.replaceAll(
      "{host}",
      host.address.includes(":") ? `[${host.address}]` : host.address,
    ).replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = fetchFn;
    this.#viaSsh = host.login !== "" && isLoopbackUrl(adminUrl);
  }

  #headers(): Record<string, string> {
    return {
      "Content-Type": "application/json",
      ...(this.#token ? { Authorization: `Bearer ${this.#token}` } : {}),
    };
  }

  /** How the last call went: `direct` or `ssh`. */
  get via(): "direct" | "ssh" {
    return this.#viaSsh ? "ssh" : "direct";
  }

  /** Forces calls over ssh (curl on the host). */
  useSsh(): void {
    this.#viaSsh = true;
  }

  /**
   * Calls `path`.
   *
   * @throws {AdminUnreachable} When neither way reaches the server.
   */
  async call(
    path: string,
    method: "GET" | "POST" = "GET",
  ): Promise<AdminAnswer> {
    if (!this.#viaSsh && !this.#probed && this.#host.login) {
      // Once per host, briefly: a firewalled port would otherwise hold a
      // reload for the whole request timeout before the ssh way is tried.
      this.#probed = true;
      try {
        const res = await this.#fetch(`${this.url}/api/status`, {
          headers: this.#headers(),
          signal: AbortSignal.timeout(3000),
        });
        await res.body?.cancel();
      } catch {
        this.#viaSsh = true;
      }
    }
    if (!this.#viaSsh) {
      try {
        const res = await this.#fetch(`${this.url}${path}`, {
          method,
          headers: this.#headers(),
          signal: AbortSignal.timeout(method === "POST" ? 120_000 : 10_000),
        });
        const text = await res.text();
        return { ok: res.ok, status: res.status, body: parseBody(text), text };
      } catch (err) {
        if (!this.#host.login) {
          throw new AdminUnreachable(
            `Admin API ${this.url}${path} unreachable: ${
              (err as Error).message
            }`,
            { cause: err },
          );
        }
        // Not reachable from here: the listener may be bound to the host's
        // own addresses. Ask the host.
        this.#viaSsh = true;
      }
    }
    const res = await this.#host.shResult(
      curlScript(`${this.url}${path}`, {
        method,
        withToken: this.#token !== "",
      }),
      {
        ...(this.#token
          ? { stdin: `Authorization: Bearer ${this.#token}\n` }
          : {}),
        timeoutMs: 130_000,
      },
    );
    if (res.code === 255) {
      throw new AdminUnreachable(
        `ssh to ${this.#host.login} failed: ${
          res.stderr.trim() || "connection lost"
        }`,
      );
    }
    if (res.code === 127) {
      throw new AdminUnreachable(
        `curl is not installed on ${this.#host.label} (needed there for ${this.url}, which is not reachable from here)`,
      );
    }
    if (res.code !== 0) {
      throw new AdminUnreachable(
        `Admin API ${this.url}${path} unreachable from ${this.#host.label}: ${
          res.stderr.trim() || `curl exit ${res.code}`
        }`,
      );
    }
    const out = res.stdout.trimEnd();
    const cut = out.lastIndexOf("\n");
    const status = Number(out.slice(cut + 1)) || 0;
    const text = cut < 0 ? "" : out.slice(0, cut);
    return {
      ok: status >= 200 && status < 300,
      status,
      body: parseBody(text),
      text,
    };
  }

  /** `/api/status`'s workers. */
  async workers(): Promise<WorkerStatus[]> {
    const res = await this.call("/api/status");
    if (!res.ok) {
      throw new Error(
        `Status of ${this.#host.label} answered ${res.status}: ${
          (res.body as { error?: string }).error ?? "no reason given"
        }`,
      );
    }
    return (res.body as { workers?: WorkerStatus[] }).workers ?? [];
  }

  /** Public requests and 5xx answers so far, from `/metrics` (`tqserver_http_requests_total`). */
  async requestCounts(): Promise<{ total: number; errors: number }> {
    const res = await this.call("/metrics");
    if (!res.ok) {
      throw new Error(`Metrics of ${this.#host.label} answered ${res.status}`);
    }
    let total = 0;
    let errors = 0;
    for (const line of res.text.split("\n")) {
      const m = /^tqserver_http_requests_total\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const value = Number(m[2]);
      total += value;
      if (/code="5/.test(m[1]!)) errors += value;
    }
    return { total, errors };
  }
}

/** How a host's server was told to reload. */
export type ReloadVia = "admin" | "pid-file" | "killall";

/** Options for {@linkcode reloadServer}. */
export interface ReloadServerOptions {
  /** The host's admin API. Default none: the server is signalled. */
  admin?: Admin | undefined;
  /** Root-relative PID file of the host's server, e.g. `logs/tqserver.pid`. */
  pidFile: string;
}

/**
 * Reloads a host's server: `POST /api/reload` when an admin URL is set and
 * answers; else SIGHUP to the PID file's process; else `killall -HUP tqserver`.
 *
 * @throws {Error} When the admin API reports a failed replace or a rejected config, or no way worked.
 */
export async function reloadServer(
  host: Host,
  options: ReloadServerOptions,
): Promise<ReloadVia> {
  const { admin, pidFile } = options;
  if (admin) {
    let res: AdminAnswer | undefined;
    try {
      res = await admin.call("/api/reload", "POST");
    } catch (err) {
      if (!(err instanceof AdminUnreachable)) throw err;
    }
    if (res) {
      const body = res.body as {
        error?: string;
        report?: {
          actions?: { worker: string; action: string; error?: string }[];
          config?: string;
          config_error?: string;
        };
      };
      const failed = (body.report?.actions ?? []).filter((a) =>
        a.action === "failed"
      ).map((a) => `worker ${a.worker}: ${a.error ?? "failed"}`);
      if (body.report?.config === "rejected") {
        failed.unshift(
          `config rejected: ${body.report.config_error ?? "invalid"}`,
        );
      }
      if (!res.ok || failed.length) {
        throw new Error(
          failed.join("; ") ||
            `reload answered ${res.status}${
              body.error ? ` (${body.error})` : ""
            }`,
        );
      }
      return "admin";
    }
  }
  const out = await host.sh(signalScript(pidFile));
  return out.trim() === "pid-file" ? "pid-file" : "killall";
}
