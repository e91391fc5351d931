// Folder-private (used by tests): a strict parser of the Prometheus text
// exposition format 0.0.4, so tests check /metrics the way a scraper reads it.

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: its `# TYPE`, `# HELP` and samples. */
export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

/** What {@linkcode parsePrometheus} returns. */
export interface Parsed {
  families: Map<string, Family>;
  /** The value of the sample with exactly these labels; undefined when absent. */
  value(name: string, labels: Record<string, string>): number | undefined;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseLabels(
  text: string,
  where: string,
): [Record<string, string>, string] {
  const labels: Record<string, string> = {};
  let rest = text;
  if (!rest.startsWith("{")) return [labels, rest];
  rest = rest.slice(1);
  while (!rest.startsWith("}")) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(rest);
    if (!m) throw new SyntaxError(`${where}: bad label at "${rest}"`);
    rest = rest.slice(m[0].length);
    let value = "";
    for (;;) {
      const c = rest[0];
      if (c === undefined) {
        throw new SyntaxError(`${where}: unterminated label value`);
      }
      rest = rest.slice(1);
      if (c === '"') break;
      if (c === "\\") {
        const e = rest[0];
        rest = rest.slice(1);
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else throw new SyntaxError(`${where}: bad escape \\${e}`);
      } else if (c === "\n") {
        throw new SyntaxError(`${where}: newline in label value`);
      } else value += c;
    }
    if (m[1]! in labels) {
      throw new SyntaxError(`${where}: label "${m[1]}" twice`);
    }
    labels[m[1]!] = value;
    if (rest.startsWith(",")) rest = rest.slice(1);
    else if (!rest.startsWith("}")) {
      throw new SyntaxError(`${where}: expected , or }`);
    }
  }
  return [labels, rest.slice(1)];
}

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new SyntaxError(`${where}: bad value "${text}"`);
  }
  return Number(text);
}

function familyOf(
  name: string,
  families: Map<string, Family>,
): Family | undefined {
  if (families.has(name)) return families.get(name);
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const f = families.get(name.slice(0, -suffix.length));
      if (f && (f.type === "histogram" || f.type === "summary")) return f;
    }
  }
  return undefined;
}

function key(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort());
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { le: number; v: number }[]>();
  const counts = new Map<string, number>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const k = key(rest);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) {
        throw new SyntaxError(`${f.name}: bucket without le`);
      }
      const list = groups.get(k) ?? [];
      list.push({ le: parseValue(le, f.name), v: s.value });
      groups.set(k, list);
    } else if (s.name === `${f.name}_count`) counts.set(k, s.value);
  }
  for (const [k, buckets] of groups) {
    for (let i = 1; i < buckets.length; i++) {
      if (
        buckets[i]!.le <= buckets[i - 1]!.le ||
        buckets[i]!.v < buckets[i - 1]!.v
      ) {
        throw new SyntaxError(`${f.name}${k}: buckets not cumulative`);
      }
    }
    const last = buckets.at(-1)!;
    if (last.le !== Infinity) {
      throw new SyntaxError(`${f.name}${k}: no +Inf bucket`);
    }
    if (counts.get(k) !== last.v) {
      throw new SyntaxError(`${f.name}${k}: +Inf bucket differs from _count`);
    }
  }
}

/**
 * Parses exposition text; throws a `SyntaxError` naming the line on anything
 * a Prometheus scraper would reject.
 */
export function parsePrometheus(text: string): Parsed {
  if (!text.endsWith("\n")) {
    throw new SyntaxError("Exposition must end with a newline");
  }
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  text.slice(0, -1).split("\n").forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [
        string,
        string,
        string,
        string,
      ];
      let f = families.get(name);
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) {
          throw new SyntaxError(`${where}: bad type "${rest}"`);
        }
        if (f?.type) throw new SyntaxError(`${where}: second TYPE for ${name}`);
        if (f?.samples.length) {
          throw new SyntaxError(`${where}: TYPE after samples of ${name}`);
        }
        if (!f) {
          families.set(name, f = { name, type: "", help: "", samples: [] });
        }
        f.type = rest;
      } else {
        if (!f) {
          families.set(name, f = { name, type: "", help: "", samples: [] });
        }
        f.help = rest;
      }
      return;
    }
    const m = NAME.exec(line);
    if (!m) throw new SyntaxError(`${where}: bad sample "${line}"`);
    const name = m[0];
    const [labels, rest] = parseLabels(line.slice(name.length), where);
    const parts = rest.trim().split(/\s+/);
    if (!rest.startsWith(" ") || parts.length < 1 || parts.length > 2) {
      throw new SyntaxError(`${where}: bad sample "${line}"`);
    }
    const value = parseValue(parts[0]!, where);
    const family = familyOf(name, families);
    if (!family || !family.type) {
      throw new SyntaxError(`${where}: ${name} has no TYPE before it`);
    }
    const id = name + key(labels);
    if (seen.has(id)) throw new SyntaxError(`${where}: duplicate series ${id}`);
    seen.add(id);
    if (family.type === "counter" && !(value >= 0)) {
      throw new SyntaxError(`${where}: counter ${name} is ${value}`);
    }
    family.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type === "histogram") checkHistogram(f);
  }
  return {
    families,
    value(name, labels) {
      const family = familyOf(name, families);
      const k = key(labels);
      return family?.samples.find((s) => s.name === name && key(s.labels) === k)
        ?.value;
    },
  };
}
