// Folder-private: checks a parsed file against the schema and turns it into a
// partial config (only the keys present), recording where every key was.

import { type Field, GO_ONLY_KEYS, KNOWN_KEYS } from "./_schema.ts";
import type { ScalarNode, TreeNode } from "./_yaml.ts";
import { ConfigError } from "./types.ts";

/** Where a key was set. */
export interface Location {
  /** Root-relative file name. */
  file: string;
  /** 1-based line. */
  line: number;
}

/** Options of {@linkcode validateTree}: what it needs besides the tree and the schema. */
export interface ValidateTreeOptions {
  /** Root-relative name of the file the tree was parsed from, for errors and locations. */
  file: string;
  /** Called with each warning (an unknown or deprecated key). */
  warn: (message: string) => void;
  /** Filled with formatted key path → location of every key read. */
  locations: Map<string, Location>;
}

/** A plain object of validated values; nested sections are nested objects. */
export type ConfigPart = { [key: string]: unknown };

/** Formats a key path: `workers.paths."/api".env`. */
export function formatKey(path: readonly string[]): string {
  return path.map((part) =>
    /^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part)
  )
    .join(".");
}

/**
 * Validates a whole file's tree against `schema`.
 *
 * @throws {ConfigError} On the first value of the wrong type or range.
 */
export function validateTree(
  tree: TreeNode,
  schema: Field,
  options: ValidateTreeOptions,
): ConfigPart {
  if (tree.type !== "map") {
    throw new ConfigError(
      options.file,
      tree.line,
      "",
      `expected a mapping with top-level keys like "server:", got ${
        describe(tree)
      }`,
    );
  }
  return read(tree, schema, [], options) as ConfigPart;
}

function read(
  node: TreeNode,
  field: Field,
  path: string[],
  ctx: ValidateTreeOptions,
): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(
      ctx.file,
      node.line,
      formatKey(path),
      `expected ${expected}, got ${describe(node)}`,
    );
  };
  switch (field.kind) {
    case "object":
      return readObject(node, field, path, ctx, fail);
    case "record": {
      const out: ConfigPart = {};
      if (node.type === "scalar" && node.value === null) return out;
      if (node.type !== "map") return fail("a mapping");
      for (const entry of node.entries) {
        const expected = field.checkKey?.(entry.key);
        if (expected) {
          throw new ConfigError(
            ctx.file,
            entry.keyLine,
            formatKey([...path, entry.key]),
            `expected the key to be ${expected}`,
          );
        }
        const key = field.normalizeKey?.(entry.key) ?? entry.key;
        const childPath = [...path, key];
        ctx.locations.set(formatKey(childPath), {
          file: ctx.file,
          line: entry.keyLine,
        });
        out[key] = read(entry.value, field.value, childPath, ctx);
      }
      return out;
    }
    case "env": {
      const out: Record<string, string> = {};
      if (node.type === "scalar" && node.value === null) return out;
      if (node.type !== "map") return fail("a mapping of names to strings");
      for (const entry of node.entries) {
        const value = entry.value;
        if (value.type !== "scalar") {
          throw new ConfigError(
            ctx.file,
            value.line,
            formatKey([...path, entry.key]),
            `expected a string, got ${describe(value)}`,
          );
        }
        out[entry.key] = value.value === null ? "" : String(value.value);
      }
      return out;
    }
    case "strings": {
      if (node.type === "scalar" && node.isString) {
        const expected = field.check?.(String(node.value));
        return expected === undefined ? [node.value] : fail(expected);
      }
      if (node.type !== "seq") return fail("a list of strings");
      return node.items.map((item, i) => {
        if (item.type !== "scalar" || item.value === null) {
          throw new ConfigError(
            ctx.file,
            item.line,
            formatKey([...path, String(i)]),
            `expected a string, got ${describe(item)}`,
          );
        }
        const expected = field.check?.(String(item.value));
        if (expected !== undefined) {
          throw new ConfigError(
            ctx.file,
            item.line,
            formatKey([...path, String(i)]),
            `expected ${expected}, got ${describe(item)}`,
          );
        }
        return String(item.value);
      });
    }
    case "bool": {
      if (node.type !== "scalar") return fail("true or false");
      if (typeof node.value === "boolean") return node.value;
      if (node.isString && node.value === "true") return true;
      if (node.isString && node.value === "false") return false;
      return fail("true or false");
    }
    case "int":
    case "number": {
      const expected = field.kind === "int"
        ? field.expected ?? intRange(field.min, field.max)
        : field.min === 0
        ? "a number >= 0"
        : `a number >= ${field.min}`;
      if (
        field.kind === "int" && field.auto && node.type === "scalar" &&
        node.value === "auto"
      ) return field.auto();
      const n = toNumber(node);
      if (n === undefined) return fail(expected);
      if (field.kind === "int" && !Number.isInteger(n)) return fail(expected);
      if (n < field.min) return fail(expected);
      if (field.kind === "int" && field.max !== undefined && n > field.max) {
        return fail(expected);
      }
      return n;
    }
    case "string": {
      if (node.type !== "scalar" || node.value === null) {
        return fail("a string");
      }
      const value = String(node.value);
      const expected = field.check?.(value);
      if (expected) return fail(expected);
      return field.normalize?.(value) ?? value;
    }
    case "enum": {
      const expected = field.values.map((v) => `"${v}"`).join(" or ");
      if (node.type !== "scalar") return fail(expected);
      if (field.emptyIsUnset && (node.value === null || node.value === "")) {
        return undefined;
      }
      if (
        typeof node.value !== "string" || !field.values.includes(node.value)
      ) {
        return fail(expected);
      }
      return node.value;
    }
  }
}

function readObject(
  node: TreeNode,
  field: Extract<Field, { kind: "object" }>,
  path: string[],
  ctx: ValidateTreeOptions,
  fail: (expected: string) => never,
): ConfigPart {
  const out: ConfigPart = {};
  if (node.type === "scalar" && node.value === null) return out;
  if (node.type !== "map") return fail("a mapping");
  const present = new Set(node.entries.map((e) => e.key));
  for (const entry of node.entries) {
    let key = entry.key;
    const where = `${ctx.file}:${entry.keyLine}`;
    if (GO_ONLY_KEYS.has(key) && field.fields[key] === undefined) {
      ctx.warn(
        `${where}: "${
          formatKey([...path, key])
        }" has no effect in tqserver (Go-only key)`,
      );
      continue;
    }
    const alias = field.aliases?.[key];
    if (alias !== undefined) {
      const old = formatKey([...path, key]);
      const current = formatKey([...path, alias]);
      if (present.has(alias)) {
        ctx.warn(
          `${where}: "${old}" is deprecated and ignored because "${current}" is set`,
        );
        continue;
      }
      ctx.warn(`${where}: "${old}" is deprecated, use "${current}"`);
      key = alias;
    }
    const child = field.fields[key];
    const childPath = [...path, key];
    if (child === undefined) {
      const suggestion = suggest(path, key, Object.keys(field.fields));
      ctx.warn(
        `${where}: unknown key "${formatKey(childPath)}"${
          suggestion ? ` (did you mean "${suggestion}"?)` : ""
        }`,
      );
      continue;
    }
    const value = entry.value;
    const isNull = value.type === "scalar" && value.value === null;
    // `key:` with nothing after it keeps the default, except for fields where
    // "nothing" is itself a value (an empty mapping, an unset mode).
    if (isNull && child.kind !== "object" && child.kind !== "enum") continue;
    ctx.locations.set(formatKey(childPath), {
      file: ctx.file,
      line: value.type === "scalar"
        ? value.line || entry.keyLine
        : entry.keyLine,
    });
    const result = read(value, child, childPath, ctx);
    if (result !== undefined || child.kind === "enum") out[key] = result;
  }
  return out;
}

function toNumber(node: TreeNode): number | undefined {
  if (node.type !== "scalar") return undefined;
  if (typeof node.value === "number") {
    return Number.isFinite(node.value) ? node.value : undefined;
  }
  // Quoted and `${VAR}`-expanded numbers are accepted: `port: ${PORT:-8080}`.
  if (
    node.isString && typeof node.value === "string" &&
    /^\s*-?\d+(\.\d+)?\s*$/.test(node.value)
  ) {
    return Number(node.value);
  }
  return undefined;
}

function intRange(min: number, max: number | undefined): string {
  if (max !== undefined) return `an integer from ${min} to ${max}`;
  return `an integer >= ${min}`;
}

function describe(node: TreeNode): string {
  if (node.type === "map") return "a mapping";
  if (node.type === "seq") return "a list";
  return describeScalar(node);
}

function describeScalar(node: ScalarNode): string {
  if (node.value === null) return "nothing";
  if (typeof node.value === "string") return JSON.stringify(node.value);
  return String(node.value);
}

/**
 * Nearest known key for an unknown `key` under `path`: the same key name in
 * another section when there is one (a key put in the wrong section), else
 * the sibling with the smallest edit distance.
 */
function suggest(
  path: readonly string[],
  key: string,
  siblings: readonly string[],
): string | undefined {
  let elsewhere: string | undefined;
  let shared = -1;
  for (const known of KNOWN_KEYS) {
    const parts = known.split(".");
    if (parts[parts.length - 1] !== key) continue;
    let n = 0;
    while (n < path.length && parts[n] === path[n]) n++;
    if (n > shared) {
      elsewhere = known;
      shared = n;
    }
  }
  if (elsewhere !== undefined) return elsewhere;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const sibling of siblings) {
    const distance = editDistance(key, sibling);
    if (distance < bestDistance) {
      best = sibling;
      bestDistance = distance;
    }
  }
  return best === undefined ? undefined : formatKey([...path, best]);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
