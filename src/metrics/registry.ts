/** Label values of one sample, by label name. */
export type Labels = Readonly<Record<string, string>>;

/** Options shared by every metric. */
export interface MetricOptions {
  /** Metric name, e.g. `tqserver_http_requests_total`. */
  name: string;
  /** One sentence for `# HELP`. */
  help: string;
  /** Label names, in output order. Default none. */
  labels?: readonly string[];
}

/** Options of {@linkcode Registry.histogram}. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, ascending; `+Inf` is added. */
  buckets: readonly number[];
}

/** Latency buckets in seconds, from 1 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(
    /\n/g,
    "\\n",
  );
}

function formatNumber(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

abstract class Metric<T> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly values = new Map<string, { labels: string[]; value: T }>();

  constructor(options: MetricOptions) {
    const { name, help, labels = [] } = options;
    if (!NAME.test(name)) throw new TypeError(`Bad metric name "${name}"`);
    for (const label of labels) {
      if (!LABEL.test(label) || label === "le") {
        throw new TypeError(`Bad label name "${label}" of "${name}"`);
      }
    }
    this.name = name;
    this.help = help;
    this.labelNames = labels;
  }

  abstract get type(): string;
  protected abstract initial(): T;
  abstract render(out: string[]): void;

  protected slot(labels: Labels): { labels: string[]; value: T } {
    // Called per request: the key is built without arrays or closures.
    const names = this.labelNames;
    let key = "";
    for (let i = 0; i < names.length; i++) {
      const v = labels[names[i]!];
      if (v === undefined) {
        throw new TypeError(`Missing label "${names[i]}" of "${this.name}"`);
      }
      key = i === 0 ? v : key + "\u0000" + v;
    }
    let slot = this.values.get(key);
    if (!slot) {
      slot = { labels: names.map((n) => labels[n]!), value: this.initial() };
      this.values.set(key, slot);
    }
    return slot;
  }

  /** Every sample: its label values by name, and its value. */
  *samples(): Generator<{ labels: Labels; value: T }> {
    for (const { labels, value } of this.values.values()) {
      yield {
        labels: Object.fromEntries(
          this.labelNames.map((n, i) => [n, labels[i]!]),
        ),
        value,
      };
    }
  }

  protected labelText(values: readonly string[], extra = ""): string {
    // An empty label value is the same as no label (Prometheus): left out,
    // so e.g. the server's own `process_*` samples carry no `worker=""`.
    const parts: string[] = [];
    values.forEach((v, i) => {
      if (v !== "") parts.push(`${this.labelNames[i]}="${escapeLabel(v)}"`);
    });
    if (extra) parts.push(extra);
    return parts.length ? `{${parts.join(",")}}` : "";
  }

  /** Forgets every sample (gauges recomputed at each scrape). */
  reset(): void {
    this.values.clear();
  }
}

/** A value that only goes up. */
export class Counter extends Metric<number> {
  get type(): string {
    return "counter";
  }
  protected initial(): number {
    return 0;
  }
  /** Adds `by` (default 1) to the sample with these labels. */
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`Counter "${this.name}" cannot go down`);
    this.slot(labels).value += by;
  }
  /**
   * Sets the total kept by someone else (a counter mirrored at scrape time).
   *
   * @throws {RangeError} When it would go down.
   */
  mirror(labels: Labels, total: number): void {
    const slot = this.slot(labels);
    if (total < slot.value) {
      throw new RangeError(`Counter "${this.name}" cannot go down`);
    }
    slot.value = total;
  }
  /** The current value (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.slot(labels).value;
  }
  /**
   * The sample with these labels, to be counted through its `value` without
   * looking the labels up again (a hot path's counter, bound once). Adding
   * to `value` skips the check that a counter never goes down.
   */
  sample(labels: Labels = {}): { value: number } {
    return this.slot(labels);
  }
  render(out: string[]): void {
    for (const { labels, value } of this.values.values()) {
      out.push(`${this.name}${this.labelText(labels)} ${formatNumber(value)}`);
    }
  }
}

/** A value that goes up and down. */
export class Gauge extends Counter {
  override get type(): string {
    return "gauge";
  }
  /** Sets the sample with these labels. */
  set(labels: Labels, value: number): void {
    this.slot(labels).value = value;
  }
  /** Adds `by` (may be negative). */
  override inc(labels: Labels = {}, by = 1): void {
    this.slot(labels).value += by;
  }
}

/** The observations of one label set of a {@linkcode Histogram}. */
export class HistogramSample {
  readonly #bounds: readonly number[];
  /** Observations per bucket, not cumulative: `counts[i]` holds those in (bound i-1, bound i]. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = bounds.map(() => 0);
  }

  /** Records one observation. */
  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** Observations counted into cumulative buckets. */
export class Histogram extends Metric<HistogramSample> {
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions) {
    super(options);
    const { buckets } = options;
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) {
        throw new RangeError(`Buckets of "${options.name}" must ascend`);
      }
    }
    this.buckets = buckets;
  }
  get type(): string {
    return "histogram";
  }
  protected initial(): HistogramSample {
    return new HistogramSample(this.buckets);
  }
  /** Records one observation. */
  observe(labels: Labels, value: number): void {
    this.slot(labels).value.observe(value);
  }
  /** The sample with these labels, to observe into without looking the labels up again. */
  sample(labels: Labels = {}): HistogramSample {
    return this.slot(labels).value;
  }
  /** Observations so far with these labels. */
  count(labels: Labels = {}): number {
    return this.slot(labels).value.count;
  }
  render(out: string[]): void {
    for (const { labels, value } of this.values.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += value.counts[i]!;
        out.push(
          `${this.name}_bucket${
            this.labelText(labels, `le="${formatNumber(le)}"`)
          } ${cumulative}`,
        );
      });
      out.push(
        `${this.name}_bucket${
          this.labelText(labels, `le="+Inf"`)
        } ${value.count}`,
        `${this.name}_sum${this.labelText(labels)} ${formatNumber(value.sum)}`,
        `${this.name}_count${this.labelText(labels)} ${value.count}`,
      );
    }
  }
}

/**
 * A set of metrics rendered together in the Prometheus text exposition
 * format (version 0.0.4).
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const hits = registry.counter({ name: "hits_total", help: "Hits.", labels: ["worker"] });
 * hits.inc({ worker: "index" });
 * registry.render(); // "# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total{worker=\"index\"} 1\n"
 * ```
 */
export class Registry {
  #metrics: (Counter | Gauge | Histogram)[] = [];
  #collectors: (() => void)[] = [];

  #add<T extends Counter | Gauge | Histogram>(metric: T): T {
    if (this.#metrics.some((m) => m.name === metric.name)) {
      throw new TypeError(`Metric "${metric.name}" is declared twice`);
    }
    this.#metrics.push(metric);
    return metric;
  }

  /** Declares a counter. */
  counter(options: MetricOptions): Counter {
    return this.#add(new Counter(options));
  }

  /** Declares a gauge. */
  gauge(options: MetricOptions): Gauge {
    return this.#add(new Gauge(options));
  }

  /** Declares a histogram. */
  histogram(options: HistogramOptions): Histogram {
    return this.#add(new Histogram(options));
  }

  /** Runs `fn` before each render, to refresh gauges read from elsewhere. */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** The declared metrics, in declaration order. */
  get metrics(): readonly (Counter | Gauge | Histogram)[] {
    return this.#metrics;
  }

  /** Renders every metric with its `# HELP` and `# TYPE` lines. */
  render(): string {
    for (const fn of this.#collectors) fn();
    const out: string[] = [];
    for (const metric of this.#metrics) {
      out.push(
        `# HELP ${metric.name} ${
          metric.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
        }`,
        `# TYPE ${metric.name} ${metric.type}`,
      );
      metric.render(out);
    }
    return out.join("\n") + "\n";
  }
}
