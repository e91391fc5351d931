// Folder-private: the shape of the config files, used both to validate them
// and to name the nearest known key for an unknown one.
import { checkCidr } from "../cidr.ts";

/** What a config value must be. `check` returns what was expected when the value is wrong. */
export type Field =
  | {
    kind: "int";
    min: number;
    max?: number;
    expected?: string;
    /** The value of the word `auto`; without it `auto` is an error. */
    auto?: () => number;
  }
  | { kind: "number"; min: number }
  | { kind: "bool" }
  | {
    kind: "string";
    check?: (value: string) => string | undefined;
    normalize?: (value: string) => string;
  }
  | { kind: "enum"; values: readonly string[]; emptyIsUnset?: boolean }
  | { kind: "strings"; check?: (value: string) => string | undefined }
  | { kind: "env" }
  | {
    kind: "object";
    fields: Readonly<Record<string, Field>>;
    /** Deprecated key → current key. */
    aliases?: Readonly<Record<string, string>>;
  }
  | {
    kind: "record";
    value: Field;
    checkKey?: (key: string) => string | undefined;
    normalizeKey?: (key: string) => string;
  };

/**
 * Keys of the Go implementation that tqserver accepts and ignores where they
 * appear outside `workers.default` and `workers.paths` (where they become
 * `GOMAXPROCS` / `GOMEMLIMIT` of Go workers).
 */
export const GO_ONLY_KEYS: ReadonlySet<string> = new Set([
  "go_max_procs",
  "go_mem_limit",
]);

/** The one placeholder of `binaries.path` and `binaries.format`. */
export const WORKER_NAME = "{worker_name}";

function checkBinaryTemplate(value: string, what: string): string | undefined {
  const unknown = value.match(/\{[^}]*\}/g)?.find((p) => p !== WORKER_NAME);
  if (unknown !== undefined) {
    return `${what} whose only placeholder is "${WORKER_NAME}" (not "${unknown}")`;
  }
  if (!value.includes(WORKER_NAME)) {
    return `${what} that contains "${WORKER_NAME}", e.g. "workers/${WORKER_NAME}/bin/${WORKER_NAME}"`;
  }
  return undefined;
}

/** Go's GOMEMLIMIT syntax: a byte count with an optional B, KiB, MiB, GiB or TiB suffix. */
const GO_MEM_LIMIT = /^\d+(?:B|KiB|MiB|GiB|TiB)?$/;

const ROUTE = /^\/(?:[^/?#\s]+(?:\/[^/?#\s]+)*)?$/;

/** Returns what a route must look like, or undefined when `value` is one. */
export function checkRoute(value: string): string | undefined {
  return ROUTE.test(value)
    ? undefined
    : `a path that starts with "/" and has no trailing slash, e.g. "/api"`;
}

function stripSlash(value: string): string {
  return value.length > 1 ? value.replace(/\/+$/, "") || "/" : value;
}

const port: Field = {
  kind: "int",
  min: 0,
  max: 65535,
  expected: "an integer from 0 to 65535 (0 = any free port)",
};
const poolPort: Field = { kind: "int", min: 1, max: 65535 };
const duration: Field = { kind: "number", min: 0 };
const count: Field = { kind: "int", min: 0 };
const bool: Field = { kind: "bool" };
const nonEmpty: Field = {
  kind: "string",
  check: (v) => v.trim() ? undefined : "a non-empty string",
};
const absPath: Field = {
  kind: "string",
  check: (v) => v.startsWith("/") ? undefined : `a path that starts with "/"`,
};

const workerSettings: Field = {
  kind: "object",
  fields: {
    max_requests: count,
    read_timeout_seconds: duration,
    write_timeout_seconds: duration,
    idle_timeout_seconds: duration,
    env: { kind: "env" },
    health_path: absPath,
    startup_timeout_ms: duration,
    drain_timeout_ms: duration,
    instances: {
      kind: "int",
      min: 1,
      expected: `an integer >= 1 or "auto" (one per CPU)`,
      auto: cpuCount,
    },
    retry_window_ms: duration,
    websocket_drain_ms: duration,
    go_max_procs: count,
    go_mem_limit: {
      kind: "string",
      check: (v) =>
        v === "" || GO_MEM_LIMIT.test(v)
          ? undefined
          : `a Go memory limit like "512MiB" (bytes with B, KiB, MiB, GiB or TiB), or "" for none`,
    },
    log_file: { kind: "string" },
  },
};

/** The CPUs this process may run on: what `instances: auto` means. */
export function cpuCount(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

const workersFolder: Field = nonEmpty;

const timestampCheck: Field = {
  kind: "object",
  fields: {
    enabled: bool,
    interval_seconds: duration,
    trigger: { kind: "enum", values: ["sighup"] },
  },
};

const modeSettings: Field = {
  kind: "object",
  fields: {
    file_watcher: {
      kind: "object",
      aliases: { paths: "watch_patterns" },
      fields: {
        enabled: bool,
        debounce_ms: duration,
        watch_patterns: { kind: "strings" },
        ignore: { kind: "strings" },
      },
    },
    build: {
      kind: "object",
      fields: {
        format: { kind: "enum", values: ["bundle", "compile"] },
        parallel_builds: { kind: "int", min: 1 },
        check: bool,
        minify: bool,
        permissions: { kind: "strings" },
        target: { kind: "string" },
        output_dir: nonEmpty,
        ldflags: { kind: "string" },
        timeout_ms: { kind: "number", min: 1 },
      },
    },
    resources: {
      kind: "object",
      fields: {
        worker_max_memory_mb: count,
        base_path: workersFolder,
        watch_resource_changes: bool,
      },
    },
    timestamp_check: timestampCheck,
  },
};

/** Top-level sections of either config file. */
export const SCHEMA: Field = {
  kind: "object",
  fields: {
    server: {
      kind: "object",
      fields: {
        port,
        host: nonEmpty,
        read_timeout_seconds: duration,
        write_timeout_seconds: duration,
        idle_timeout_seconds: duration,
        request_buffer_bytes: count,
        max_body_bytes: count,
        body_temp_dir: { kind: "string" },
        max_ws_message_bytes: {
          kind: "int",
          min: 1,
          max: 64 * 1024 * 1024,
          expected:
            "a positive integer up to 67108864 (Deno's WebSocket frame limit)",
        },
        trusted_proxies: { kind: "strings", check: checkCidr },
        deployment_mode: {
          kind: "enum",
          values: ["dev", "prod"],
          emptyIsUnset: true,
        },
        log_file: { kind: "string" },
        pid_file: { kind: "string" },
        access_log: { kind: "string" },
        access_log_format: { kind: "enum", values: ["combined", "json"] },
        static: {
          kind: "object",
          fields: {
            enabled: bool,
            url_prefix: {
              kind: "string",
              check: (v) =>
                stripSlash(v) !== "/" && v.startsWith("/") && !/[?#\s]/.test(v)
                  ? undefined
                  : `a path that starts with "/", e.g. "/static"`,
              normalize: stripSlash,
            },
            cache_max_age_seconds: count,
            dev_root: workersFolder,
            cache_max_bytes: count,
            cache_file_max_bytes: count,
            revalidate_ms: count,
          },
        },
        compression: {
          kind: "object",
          fields: {
            enabled: bool,
            min_bytes: count,
            types: {
              kind: "strings",
              check: (v) =>
                /^[^/\s*]+\/[^/\s]+$/.test(v.trim()) &&
                  v.split("*").length <= 2
                  ? undefined
                  : `a media type like "text/html", or with one "*" like "text/*"`,
            },
          },
        },
        admin: {
          kind: "object",
          fields: {
            enabled: bool,
            host: nonEmpty,
            port,
            token: { kind: "string" },
          },
        },
      },
    },
    workers: {
      kind: "object",
      aliases: { directory: "workers_dir" },
      fields: {
        workers_dir: workersFolder,
        port_range_start: poolPort,
        port_range_end: poolPort,
        startup_delay_ms: duration,
        restart_delay_ms: duration,
        shutdown_grace_period_ms: duration,
        timestamp_check: timestampCheck,
        discovery: {
          kind: "object",
          fields: {
            mode: { kind: "enum", values: ["filesystem"] },
            workers_dir: workersFolder,
            include_patterns: { kind: "strings" },
          },
        },
        default: workerSettings,
        paths: {
          kind: "record",
          value: workerSettings,
          checkKey: (k) =>
            k.startsWith("/")
              ? undefined
              : `a path prefix that starts with "/"`,
          normalizeKey: stripSlash,
        },
        routes: {
          kind: "record",
          value: { kind: "string", check: checkRoute },
        },
      },
    },
    deployment: {
      kind: "object",
      fields: {
        mode: { kind: "enum", values: ["dev", "prod"], emptyIsUnset: true },
        dev: modeSettings,
        prod: modeSettings,
        targets: {
          kind: "record",
          value: {
            kind: "object",
            fields: {
              hosts: { kind: "strings" },
              path: { kind: "string" },
              ssh_options: { kind: "string" },
              admin_url: { kind: "string" },
              batch: { kind: "int", min: 1 },
              canary_seconds: duration,
              keep_releases: { kind: "int", min: 1 },
            },
          },
        },
      },
    },
    binaries: {
      kind: "object",
      fields: {
        format: {
          kind: "string",
          check: (v) =>
            v.includes("/")
              ? `a file name without "/", e.g. "${WORKER_NAME}"`
              : checkBinaryTemplate(v, "a file name"),
        },
        path: {
          kind: "string",
          check: (v) => checkBinaryTemplate(v, "a root-relative path"),
        },
      },
    },
  },
};

/** Every fixed key path (records excluded), e.g. `server.static.url_prefix`. */
export const KNOWN_KEYS: readonly string[] = (() => {
  const out: string[] = [];
  const walk = (field: Field, prefix: string) => {
    if (field.kind !== "object") return;
    for (const [key, child] of Object.entries(field.fields)) {
      const path = prefix ? `${prefix}.${key}` : key;
      out.push(path);
      walk(child, path);
    }
  };
  walk(SCHEMA, "");
  return out;
})();
