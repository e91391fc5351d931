import type { LogRecord } from "../log/mod.ts";
import type { StaticCacheStats } from "../static/mod.ts";
import type { WorkerStatusJson } from "../supervisor/mod.ts";
import { type HistogramSample, LATENCY_BUCKETS, Registry } from "./registry.ts";
import { RateSeries } from "./series.ts";
import { groupsUsage, type ProcessStats } from "./process_stats.ts";
import { declareProcessMetrics } from "./_process_metrics.ts";

/** What the server is, for the gauges read at each scrape. */
export interface MetricsSource {
  version: string;
  mode: string;
  started_at: string;
  workers: WorkerStatusJson[];
}

/** Options for {@linkcode ServerMetrics}. */
export interface ServerMetricsOptions {
  /** Current server and worker status. */
  source: () => MetricsSource;
  /**
   * The static handler's counters (bytes, cache hits…), read at each scrape;
   * without it (static files off) no static metric is declared.
   */
  staticCounters?: () => StaticCacheStats | undefined;
  /** Clock of the sparkline series (epoch ms). Default `Date.now`. */
  now?: () => number;
  /**
   * Memory and CPU of the server and of the workers' process groups, for the
   * standard `process_*` metrics (the server's samples unlabelled, each
   * worker's with `worker`). Default: none declared.
   */
  processStats?: ProcessStats;
}

/** Answers by status class, as `/api/status` shows them. */
export interface ResponseCounts {
  "2xx": number;
  "3xx": number;
  "4xx": number;
  "5xx": number;
}

/** `2xx`, `4xx`, … for a status code. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/** The request counters of one worker (see {@linkcode ServerMetrics.requestMeter}). */
export class RequestMeter {
  readonly #inFlight: { value: number };
  readonly #requestsOf: (code: string) => { value: number };
  /** `tqserver_http_requests_total` samples by status class (index 1–5), made on first use. */
  readonly #requests: ({ value: number } | undefined)[] = [];
  readonly #duration: HistogramSample;
  readonly #series: RateSeries;
  readonly #worker: string;

  constructor(
    inFlight: { value: number },
    requestsOf: (code: string) => { value: number },
    duration: HistogramSample,
    series: RateSeries,
    worker: string,
  ) {
    this.#inFlight = inFlight;
    this.#requestsOf = requestsOf;
    this.#duration = duration;
    this.#series = series;
    this.#worker = worker;
  }

  /** A request of this worker is in flight. */
  started(): void {
    this.#inFlight.value++;
  }

  /** That request got its response headers (`status`) after `seconds`. */
  finished(status: number, seconds: number): void {
    this.#inFlight.value--;
    const cls = Math.floor(status / 100);
    const sample = this.#requests[cls] ??= this.#requestsOf(
      statusClass(status),
    );
    sample.value++;
    this.#duration.observe(seconds);
    this.#series.record(this.#worker, seconds * 1000);
  }
}

/**
 * Every metric of `GET /metrics`, and the per-worker series the dashboard
 * draws. Counters are fed at the boundaries: the request meter around the
 * public handler ({@linkcode ServerMetrics.requestMeter}), and the log
 * records of the supervisor, builder and reload check
 * ({@linkcode ServerMetrics.observe}).
 *
 * @example
 * ```ts
 * const metrics = new ServerMetrics({ source: () => server.status() });
 * const meter = metrics.requestMeter("index");
 * meter.started();
 * meter.finished(200, 0.012);
 * metrics.render();
 * ```
 */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Per-second request counts and latency per worker (sparklines). */
  readonly series: RateSeries;
  #requests;
  #duration;
  #inFlight;
  #restarts;
  #crashes;
  #startFailures;
  #buildErrors;
  #reloadChecks;
  #reloadDuration;
  #staticResponses;
  #meters = new Map<string, RequestMeter>();

  constructor(options: ServerMetricsOptions) {
    const { source, staticCounters, now = Date.now, processStats } = options;
    this.series = new RateSeries({ now });
    const r = this.registry;
    const info = r.gauge({
      name: "tqserver_info",
      help: "Version and mode of the running server (always 1).",
      labels: ["version", "mode"],
    });
    const startTime = r.gauge({
      name: "tqserver_start_time_seconds",
      help: "Unix time the server started.",
    });
    this.#requests = r.counter({
      name: "tqserver_http_requests_total",
      help: "Requests answered on the public port, by worker and status class.",
      labels: ["worker", "code"],
    });
    this.#duration = r.histogram({
      name: "tqserver_http_request_duration_seconds",
      help: "Time from request to response headers, by worker.",
      labels: ["worker"],
      buckets: LATENCY_BUCKETS,
    });
    this.#inFlight = r.gauge({
      name: "tqserver_http_requests_in_flight",
      help: "Requests being answered on the public port, by worker.",
      labels: ["worker"],
    });
    const up = r.gauge({
      name: "tqserver_worker_up",
      help: "1 when at least one instance of the worker serves.",
      labels: ["worker"],
    });
    const healthy = r.gauge({
      name: "tqserver_worker_healthy",
      help: "1 when the worker is in state healthy (all its instances serve).",
      labels: ["worker"],
    });
    const instances = r.gauge({
      name: "tqserver_worker_instances",
      help: "Instances of the worker that receive requests.",
      labels: ["worker"],
    });
    this.#restarts = r.counter({
      name: "tqserver_worker_restarts_total",
      help: "Successful replaces of the worker, by reason.",
      labels: ["worker", "reason"],
    });
    this.#crashes = r.counter({
      name: "tqserver_worker_crashes_total",
      help: "Instances of the worker that exited unexpectedly.",
      labels: ["worker"],
    });
    this.#startFailures = r.counter({
      name: "tqserver_worker_start_failures_total",
      help: "Starts or replaces of the worker that failed, by reason.",
      labels: ["worker", "reason"],
    });
    this.#buildErrors = r.counter({
      name: "tqserver_build_errors_total",
      help: "Failed builds of the worker.",
      labels: ["worker"],
    });
    this.#reloadChecks = r.counter({
      name: "tqserver_reload_checks_total",
      help: "SIGHUP / POST /api/reload checks run.",
    });
    this.#reloadDuration = r.histogram({
      name: "tqserver_reload_check_duration_seconds",
      help: "Duration of SIGHUP / POST /api/reload checks.",
      buckets: LATENCY_BUCKETS,
    });
    // Declared only with a source, so that no declared metric stays at zero forever.
    const stat = staticCounters
      ? {
        responses: r.counter({
          name: "tqserver_static_responses_total",
          help: "Static file answers, by status code.",
          labels: ["code"],
        }),
        bytes: r.counter({
          name: "tqserver_static_bytes_total",
          help: "Body bytes of static file answers sent (from memory or disk).",
        }),
        hits: r.counter({
          name: "tqserver_static_cache_hits_total",
          help: "Static answers served from the memory cache.",
        }),
        misses: r.counter({
          name: "tqserver_static_cache_misses_total",
          help: "Static answers that resolved the path on disk.",
        }),
        evictions: r.counter({
          name: "tqserver_static_cache_evictions_total",
          help: "Static cache entries dropped to stay under cache_max_bytes.",
        }),
        cacheBytes: r.gauge({
          name: "tqserver_static_cache_bytes",
          help: "Memory the static cache holds.",
        }),
      }
      : undefined;
    this.#staticResponses = stat?.responses;
    const proc = processStats ? declareProcessMetrics(r) : undefined;
    this.#reloadChecks.inc({}, 0);
    r.onCollect(() => {
      const s = source();
      info.reset();
      info.set({ version: s.version, mode: s.mode }, 1);
      startTime.set({}, Math.floor(Date.parse(s.started_at) / 1000));
      for (const g of [up, healthy, instances]) g.reset();
      for (const w of s.workers) {
        const labels = { worker: w.name };
        // Starting and draining instances are listed too; these count those that serve.
        const serving = w.instances.filter((i) =>
          i.status === "healthy" || i.status === "unhealthy"
        ).length;
        up.set(labels, serving > 0 ? 1 : 0);
        healthy.set(labels, w.status === "healthy" ? 1 : 0);
        instances.set(labels, serving);
        // Present from the start, so rate() and absent() work before the first event.
        this.#restarts.inc({ ...labels, reason: "manual" }, 0);
        this.#crashes.inc(labels, 0);
        this.#buildErrors.inc(labels, 0);
        this.#inFlight.inc(labels, 0);
      }
      if (proc && processStats) {
        proc.collect(processStats.self(), "");
        for (const w of s.workers) {
          proc.collect(groupsUsage(processStats, w.instances), w.name);
        }
      }
      const c = stat && staticCounters?.();
      if (stat && c) {
        stat.bytes.mirror({}, c.servedBytes);
        stat.hits.mirror({}, c.hits);
        stat.misses.mirror({}, c.misses);
        stat.evictions.mirror({}, c.evictions);
        stat.cacheBytes.set({}, c.bytes);
      }
    });
  }

  /**
   * The request counters of `worker`, bound once (kept per worker name): the
   * meter around the public handler counts every request through it without
   * building label sets, keys or closures.
   */
  requestMeter(worker: string): RequestMeter {
    let meter = this.#meters.get(worker);
    if (meter === undefined) {
      const labels = { worker };
      const requests = this.#requests;
      meter = new RequestMeter(
        this.#inFlight.sample(labels),
        (code) => requests.sample({ worker, code }),
        this.#duration.sample(labels),
        this.series,
        worker,
      );
      this.#meters.set(worker, meter);
    }
    return meter;
  }

  /**
   * Answers so far by status class: of `worker` (a name, `static`, `_tq` or
   * `-` for no route), or of the whole public port when omitted.
   */
  responses(worker?: string): ResponseCounts {
    const counts: ResponseCounts = { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 };
    for (const { labels, value } of this.#requests.samples()) {
      if (worker !== undefined && labels.worker !== worker) continue;
      const code = labels.code as keyof ResponseCounts;
      if (code in counts) counts[code] += value;
    }
    return counts;
  }

  /** Counts a static file answer by its status. */
  staticResponse(status: number): void {
    this.#staticResponses?.inc({ code: String(status) });
  }

  /** Updates the counters a log record stands for (restarts, crashes, builds, checks). */
  observe(record: LogRecord): void {
    const { msg, fields: f } = record;
    const worker = typeof f.worker === "string" ? f.worker : "";
    switch (msg) {
      case "worker replaced":
        this.#restarts.inc({ worker, reason: String(f.reason) });
        return;
      case "worker crashed":
        this.#crashes.inc({ worker });
        return;
      case "worker start failed":
      case "worker cannot start":
        this.#startFailures.inc({ worker, reason: String(f.reason) });
        return;
      case "worker build failed":
      case "build failed, old instance keeps serving":
        this.#buildErrors.inc({ worker });
        return;
    }
    if (msg.startsWith("checked ") && typeof f.ms === "number") {
      this.#reloadChecks.inc();
      this.#reloadDuration.observe({}, f.ms / 1000);
    }
  }

  /** The Prometheus text exposition. */
  render(): string {
    return this.registry.render();
  }
}
