import { dirname, isAbsolute, resolve } from "node:path";
import type * as esbuild from "esbuild";
import { type Logger, silentLogger } from "../log/mod.ts";
import { DEFAULT_BUILD_TIMEOUT_MS } from "../config/defaults.ts";
import type { BuildError } from "./_errors.ts";
import { type Project, readHead } from "./_files.ts";
import { launcherArgs, shellQuote } from "./_launcher.ts";
import type { BuildTarget } from "./target.ts";

/** Options for {@linkcode EsbuildEmitter}. */
export interface EsbuildEmitterOptions {
  /** Permission flags of the built worker (its launcher line). */
  permissions: string[];
  /** Minify the bundle. Default false. */
  minify?: boolean;
  /** Logger for timings. Default: silent. */
  logger?: Logger;
  /** A bundle taking longer fails, and its context is dropped. Default 120000. */
  timeoutMs?: number;
  /** Names the timeout in messages. Default `"build.timeout_ms"`. */
  timeoutKey?: string;
}

/** How a dev bundle is run: what a warm standby process must match to run it. */
export interface LaunchInfo {
  /** `deno run` and its flags, as in the launcher line. */
  args: string[];
  /** The bundle's external imports (packages, `node:`, `npm:` …), for preloading. */
  externals: string[];
  /** The JavaScript module the launcher runs (`bin/{name}.js`). */
  module: string;
}

interface Context {
  entry: string;
  cwd: string;
  ctx: esbuild.BuildContext<{ write: false; metafile: true }>;
}

type Esbuild = typeof esbuild;

/** Specifiers deno resolves itself: never bundled. */
const EXTERNAL = /^(npm|jsr|node|https?|data|blob):/;

let loading: Promise<Esbuild | undefined> | undefined;

/** esbuild from npm, or undefined when it cannot run here (then deno bundle is used). */
export function loadEsbuild(): Promise<Esbuild | undefined> {
  loading ??= import("esbuild").then(
    (mod) => mod as Esbuild,
    () => undefined,
  );
  return loading;
}

/**
 * The dev-mode bundler: esbuild in-process (one incremental context per
 * worker, kept between rebuilds) instead of a `deno bundle` process per save.
 * Local modules are bundled; packages (bare specifiers of the import map,
 * `npm:`, `jsr:`, `node:`) stay imports that deno resolves at run time through
 * the project's deno.json and lock file, so the launcher line says
 * `--config=…`. The bundle carries an inline source map, shifted past the
 * launcher lines, so stack traces name `src/` files and lines. No type
 * checking: dev checks types in the background.
 */
export class EsbuildEmitter {
  #esbuild: Esbuild;
  #permissions: string[];
  #minify: boolean;
  #log: Logger;
  #timeoutMs: number;
  #timeoutKey: string;
  #contexts = new Map<string, Context>();
  #inputs = new Map<string, string[]>();
  #launch = new Map<string, LaunchInfo>();
  #sameExternals = new Map<string, boolean>();

  constructor(esbuildModule: Esbuild, options: EsbuildEmitterOptions) {
    const {
      permissions,
      minify = false,
      logger = silentLogger,
      timeoutMs = DEFAULT_BUILD_TIMEOUT_MS,
      timeoutKey = "build.timeout_ms",
    } = options;
    this.#esbuild = esbuildModule;
    this.#timeoutMs = timeoutMs;
    this.#timeoutKey = timeoutKey;
    this.#permissions = [...permissions];
    this.#minify = minify;
    this.#log = logger;
  }

  /** Bundles `target` into `tmp`; returns why it failed, or undefined. */
  async emit(
    target: BuildTarget,
    tmp: string,
    project: Project | undefined,
  ): Promise<BuildError | undefined> {
    const started = performance.now();
    const cwd = project ? dirname(project.config) : target.dir;
    let context = this.#contexts.get(target.name);
    if (context && (context.entry !== target.entry || context.cwd !== cwd)) {
      await context.ctx.dispose();
      context = undefined;
    }
    if (!context) {
      context = {
        entry: target.entry,
        cwd,
        ctx: await this.#esbuild.context({
          entryPoints: [target.entry],
          absWorkingDir: cwd,
          outfile: `${target.binPath}.js`,
          bundle: true,
          write: false,
          metafile: true,
          format: "esm",
          platform: "neutral",
          target: "esnext",
          packages: "external",
          sourcemap: "external",
          sourcesContent: false,
          minify: this.#minify,
          logLevel: "silent",
          // A bundle is its own main module, as with deno bundle.
          define: { "import.meta.main": "true" },
          plugins: [{
            name: "deno-specifiers",
            setup(build: esbuild.PluginBuild) {
              build.onResolve(
                { filter: EXTERNAL },
                (args: esbuild.OnResolveArgs) => ({
                  path: args.path,
                  external: true,
                }),
              );
            },
          }],
        }),
      };
      this.#contexts.set(target.name, context);
    }
    let result: esbuild.BuildResult<{ write: false; metafile: true }>;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ctx = context.ctx;
    try {
      // esbuild runs in its own service process; a build stuck there (a file
      // that never finishes reading, a plugin) is bounded like deno's builds.
      const expired = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), this.#timeoutMs);
      });
      const outcome = await Promise.race([ctx.rebuild(), expired]);
      if (outcome === "timeout") {
        // The context may still be busy: drop it, the next build makes a new one.
        this.#contexts.delete(target.name);
        ctx.cancel().then(() => ctx.dispose()).catch((err) =>
          this.#log.debug("esbuild context not disposed", {
            worker: target.name,
            error: err,
          })
        );
        return {
          message:
            `esbuild bundling ${target.entry} ran longer than ${this.#timeoutMs} ms and was cancelled (${this.#timeoutKey})`,
        };
      }
      result = outcome;
    } catch (err) {
      return esbuildError(err, cwd);
    } finally {
      clearTimeout(timer);
    }
    const files = result.outputFiles ?? [];
    const js = files.find((f) => !f.path.endsWith(".map"))?.text;
    const map = files.find((f) => f.path.endsWith(".map"))?.text;
    if (js === undefined) return { message: "esbuild wrote no bundle" };
    // The module goes beside the launcher with a .js name: deno would take a
    // file without extension for TypeScript and transpile it again, which
    // costs time and breaks the source map.
    const module = `${target.binPath}.js`;
    const moduleTmp = `${tmp}.js`;
    await Deno.writeTextFile(moduleTmp, withInlineMap(js, map));
    await Deno.rename(moduleTmp, module);
    await Deno.writeTextFile(tmp, this.#header(project), { mode: 0o755 });
    await Deno.chmod(tmp, 0o755);
    const meta = result.metafile;
    this.#inputs.set(
      target.name,
      Object.keys(meta.inputs)
        .filter((p) => !EXTERNAL.test(p))
        .map((p) => isAbsolute(p) ? p : resolve(cwd, p)),
    );
    const externals = new Set<string>();
    for (const output of Object.values(meta.outputs)) {
      for (const imp of output.imports) {
        if (imp.external && imp.kind === "import-statement") {
          externals.add(imp.path);
        }
      }
    }
    const before = this.#launch.get(target.binPath)?.externals;
    this.#sameExternals.set(
      target.binPath,
      before !== undefined &&
        JSON.stringify([...before].sort()) ===
          JSON.stringify([...externals].sort()),
    );
    this.#launch.set(target.binPath, {
      args: launcherArgs(this.#flags(project), project?.config),
      externals: [...externals],
      module,
    });
    this.#log.debug("esbuild", {
      worker: target.name,
      ms: Math.round(performance.now() - started),
    });
    return undefined;
  }

  /** Whether the binary is a dev bundle with this launcher line. */
  async sameFlags(
    target: BuildTarget,
    project: Project | undefined,
  ): Promise<boolean> {
    try {
      // The launcher is nothing without its module beside it.
      await Deno.stat(`${target.binPath}.js`);
      return (await readHead(target.binPath)).startsWith(this.#header(project));
    } catch {
      return false;
    }
  }

  /** Local files the last build of `name` read (absolute paths). */
  inputs(name: string): string[] | undefined {
    return this.#inputs.get(name);
  }

  /** True when the last two bundles written to `binPath` import the same packages (no new import to resolve). */
  sameExternals(binPath: string): boolean {
    return this.#sameExternals.get(binPath) ?? false;
  }

  /** How the last bundle written to `binPath` is run, when this emitter wrote it. */
  launchInfo(binPath: string): LaunchInfo | undefined {
    return this.#launch.get(binPath);
  }

  /** Disposes every context and stops esbuild's service process. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.#contexts.values()].map((c) => c.ctx.dispose()),
    );
    this.#contexts.clear();
    await this.#esbuild.stop();
  }

  #flags(project: Project | undefined): string[] {
    return [...this.#permissions, ...(project?.unstable ?? [])];
  }

  /** The whole launcher: a shell script that runs `bin/{name}.js` with deno. */
  #header(project: Project | undefined): string {
    const args = launcherArgs(this.#flags(project), project?.config);
    return `#!/bin/sh\n# Dev build by tqserver (esbuild): runs the bundle beside it.\nexec ${
      args.map(shellQuote).join(" ")
    } "$0.js" "$@"\n`;
  }
}

/** Moves esbuild's external source map inline. */
function withInlineMap(js: string, map: string | undefined): string {
  const body = js.replace(/\/\/# sourceMappingURL=\S*\s*$/, "");
  if (!map) return body;
  const bytes = new TextEncoder().encode(map);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `${body}//# sourceMappingURL=data:application/json;base64,${
    btoa(binary)
  }\n`;
}

/** The first esbuild error as a {@linkcode BuildError} with a code frame. */
export function esbuildError(err: unknown, cwd: string): BuildError {
  const errors = (err as { errors?: esbuild.Message[] } | null)?.errors;
  const first = errors?.[0];
  if (!first) {
    return {
      message: `esbuild failed: ${
        err instanceof Error ? err.message : String(err)
      }`,
    };
  }
  const loc = first.location;
  if (!loc) return { message: first.text };
  const file = isAbsolute(loc.file) ? loc.file : resolve(cwd, loc.file);
  const gutter = `${loc.line} | `;
  const frame = `${gutter}${loc.lineText}\n${" ".repeat(gutter.length)}${
    " ".repeat(loc.column)
  }${"^".repeat(Math.max(1, loc.length))}`;
  const more = errors!.length > 1
    ? `\n\n(${errors!.length - 1} more error${errors!.length > 2 ? "s" : ""})`
    : "";
  return {
    message: `${first.text}\n\n${frame}${more}`,
    file,
    line: loc.line,
    column: loc.column + 1,
  };
}
