// Folder-private: reads one YAML file into a small tree that remembers the
// line of every key and value and has `${VAR}` already expanded, so that the
// validator can name file, line and key in every message.

import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
} from "yaml";
import { ConfigError } from "./types.ts";

/** A scalar value after `${VAR}` expansion. */
export interface ScalarNode {
  type: "scalar";
  line: number;
  value: string | number | boolean | null;
  /** True when the YAML value was a string (quoted, plain text or expanded). */
  isString: boolean;
}

/** One `key: value` of a mapping. */
export interface Entry {
  key: string;
  keyLine: number;
  value: TreeNode;
}

/** A parsed YAML node with the lines needed for messages. */
export type TreeNode =
  | { type: "map"; line: number; entries: Entry[] }
  | { type: "seq"; line: number; items: TreeNode[] }
  | ScalarNode;

/** Options of {@linkcode parseYaml}. */
export interface ParseYamlOptions {
  /** File name used in messages (root-relative when possible). */
  file: string;
  /** Environment lookup for `${VAR}` expansion. */
  env: (name: string) => string | undefined;
  /** Warnings sink (YAML warnings). */
  warn: (message: string) => void;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Expands `${VAR}` and `${VAR:-default}`; the default applies when the
 * variable is unset or empty (as in the shell), an unset variable without
 * default expands to "".
 */
export function expandEnv(
  text: string,
  env: (name: string) => string | undefined,
): string {
  return text.replace(VAR, (_match, name: string, fallback?: string) => {
    const value = env(name);
    if (value === undefined || value === "") return fallback ?? "";
    return value;
  });
}

/**
 * Parses YAML text into a {@linkcode TreeNode}, or `null` for an empty
 * document.
 *
 * @throws {ConfigError} On a YAML syntax error, naming the line.
 */
export function parseYaml(
  text: string,
  options: ParseYamlOptions,
): TreeNode | null {
  const { file, env, warn } = options;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0].line ?? 0;
    throw new ConfigError(
      file,
      line,
      "",
      `invalid YAML: ${firstLine(first.message)}`,
    );
  }
  for (const warning of doc.warnings) {
    const line = warning.linePos?.[0].line ?? 0;
    warn(`${line ? `${file}:${line}` : file}: ${firstLine(warning.message)}`);
  }
  const lineOf = (node: Node | null | undefined, fallback: number): number =>
    node?.range ? lineCounter.linePos(node.range[0]).line : fallback;

  function convert(raw: unknown, fallbackLine: number): TreeNode {
    let node = raw as Node | null | undefined;
    if (isAlias(node)) node = node.resolve(doc) as Node | undefined;
    const line = lineOf(node, fallbackLine);
    if (isMap(node)) {
      const entries: Entry[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const keyLine = lineOf(keyNode, line);
        if (!isScalar(keyNode) || typeof keyNode.value === "object") {
          throw new ConfigError(
            file,
            keyLine,
            "",
            "expected a plain key, got a complex key",
          );
        }
        entries.push({
          key: String(keyNode.value),
          keyLine,
          value: convert(pair.value, keyLine),
        });
      }
      return { type: "map", line, entries };
    }
    if (isSeq(node)) {
      return {
        type: "seq",
        line,
        items: node.items.map((item) => convert(item, line)),
      };
    }
    if (isScalar(node)) {
      const value = node.value;
      if (typeof value === "string") {
        return {
          type: "scalar",
          line,
          value: expandEnv(value, env),
          isString: true,
        };
      }
      if (
        value === null || typeof value === "number" ||
        typeof value === "boolean"
      ) {
        return { type: "scalar", line, value, isString: false };
      }
      if (typeof value === "bigint") {
        return { type: "scalar", line, value: Number(value), isString: false };
      }
      // Tagged values (dates, binary) are kept as their source text.
      return {
        type: "scalar",
        line,
        value: String(node.source ?? value),
        isString: true,
      };
    }
    // A key with no value at all (`key:` at the end of a flow mapping).
    return { type: "scalar", line, value: null, isString: false };
  }

  if (doc.contents === null) return null;
  const tree = convert(doc.contents, 1);
  if (tree.type === "scalar" && tree.value === null) return null;
  return tree;
}

function firstLine(message: string): string {
  return (message.split("\n")[0] ?? message)
    .replace(/ at line \d+, column \d+:?$/, "")
    .trim();
}
