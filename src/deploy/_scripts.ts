// Folder-private: the POSIX sh scripts a deploy runs on a host, in its
// project root. A host needs sh, coreutils (sha256sum) and rsync; nothing else.
//
// Layout beside the serving tree (workers/, config/, server/ are never
// versioned folders):
//   .tqdeploy/current                 id of the deploy the host runs
//   .tqdeploy/lock/owner              who deploys now (one deploy or rollback at a time)
//   .tqdeploy/stage/                  the incoming tree, checked before it is applied
//   .tqdeploy/releases/ID/manifest.sha256, filter, prev, changes, created, created_dirs
//   .tqdeploy/releases/ID/backup/     every file the deploy replaced or deleted
import { shellQuote } from "./_host.ts";

const D = ".tqdeploy";

/** Read-only look at a host before anything is shipped: `key=value` lines (run with `ifExists`). */
export function inspectScript(): string {
  return [
    `if [ -z "$TQ_FRESH" ]; then printf 'current=%s\\n' "$(cat ${D}/current 2>/dev/null)"; fi`,
    `if [ -z "$TQ_FRESH" ] && [ -x server/bin/tqserver ]; then echo compiled=1; fi`,
    `if command -v rsync >/dev/null 2>&1; then echo rsync=1; fi`,
  ].join("\n");
}

/**
 * Takes the host's deploy lock for `holder` (`mkdir` is atomic), or exits 75
 * naming who holds it and how to clear a lock no deploy holds any more (run
 * with `create`).
 */
export function lockScript(holder: string): string {
  return [
    `mkdir -p ${D}`,
    `if mkdir ${D}/lock 2>/dev/null; then printf '%s\\n' ${
      shellQuote(holder)
    } > ${D}/lock/owner; exit 0; fi`,
    `printf 'another deploy holds its lock (%s); if none runs, remove %s\\n' "$(cat ${D}/lock/owner 2>/dev/null || echo 'holder unknown')" "$(pwd)/${D}/lock" >&2`,
    `exit 75`,
  ].join("\n");
}

/** Releases the deploy lock when `holder` holds it (another's is left alone). */
export function unlockScript(holder: string): string {
  return `if [ "$(cat ${D}/lock/owner 2>/dev/null)" = ${
    shellQuote(holder)
  } ]; then rm -rf ${D}/lock; fi`;
}

/**
 * Empties the stage and makes the release folder with its rsync filter
 * `rules` and the manifest, which comes on stdin (run with `create`).
 */
export function prepareScript(id: string, rules: string[]): string {
  const R = `${D}/releases/${id}`;
  return [
    "set -e",
    `rm -rf ${D}/stage ${R}`,
    `mkdir -p ${D}/stage ${R}`,
    `cat > ${R}/manifest.sha256`,
    `cat > ${R}/filter <<'TQ_FILTER_END'`,
    ...rules,
    "TQ_FILTER_END",
  ].join("\n");
}

/**
 * Checks the staged tree against the manifest; on a mismatch removes the
 * stage and the release and exits 65 before the serving tree is touched.
 * Then applies it: rsync into the root with `--delete`, every replaced or
 * deleted file moved to the release's backup, records what was created and
 * the previous deploy id, makes this deploy current, keeps the newest
 * `keep` releases, and prints the itemized changes.
 */
export function verifyApplyScript(id: string, keep: number): string {
  const R = `${D}/releases/${id}`;
  return [
    `R=${R}`,
    `if command -v sha256sum >/dev/null 2>&1; then sum=sha256sum; else sum="shasum -a 256"; fi`,
    `if ! out=$(cd ${D}/stage && $sum -c --quiet "../releases/${id}/manifest.sha256" 2>&1); then`,
    `  rm -rf ${D}/stage "$R"`,
    `  printf 'manifest mismatch: %s\\n' "$(printf '%s' "$out" | grep -v '^sha256sum: WARNING' | tr '\\n' ';' | sed 's/;$//')" >&2`,
    `  exit 65`,
    `fi`,
    "set -e",
    `prev=$(cat ${D}/current 2>/dev/null || true)`,
    `printf '%s\\n' "$prev" > "$R/prev"`,
    `rsync -a --checksum --delete --backup --backup-dir="$R/backup" --filter="merge $R/filter" --itemize-changes ${D}/stage/ ./ > "$R/changes"`,
    `sed -n -e 's/^[>ch]f+++++++++ //p' -e 's/^cL+++++++++ \\(.*\\) -> .*$/\\1/p' "$R/changes" > "$R/created"`,
    `sed -n 's/^cd+++++++++ //p' "$R/changes" > "$R/created_dirs"`,
    `printf '%s\\n' ${id} > ${D}/current.new && mv -f ${D}/current.new ${D}/current`,
    `rm -rf ${D}/stage`,
    // Only deploy ids live here; the newest first.
    `ls -1 ${D}/releases | grep -E '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4}$' | sort -r | tail -n +${
      keep + 1
    } | while IFS= read -r old; do rm -rf "${D}/releases/$old"; done`,
    `cat "$R/changes"`,
  ].join("\n");
}

/** Removes what a deploy left half-way on a host that did not take it (best effort). */
export function discardScript(id: string): string {
  return `rm -rf ${D}/stage ${D}/releases/${id}`;
}

/**
 * Undoes deploy `id` and every later one on this host, newest first: deletes
 * the files each created, puts back (by rename, safe for running binaries)
 * what it replaced or deleted, and makes the deploy before `id` current.
 * Exits 66 before changing anything when `id` is not in the host's kept
 * history. Prints the ids it undid.
 */
export function rollbackScript(id: string): string {
  return [
    `target=${shellQuote(id)}`,
    `chain=""`,
    `c=$(cat ${D}/current 2>/dev/null || true)`,
    `while :; do`,
    `  if [ -z "$c" ]; then echo "deploy $target is not in this host's history (current: $(cat ${D}/current 2>/dev/null || echo none))" >&2; exit 66; fi`,
    `  if [ ! -d "${D}/releases/$c" ]; then echo "deploy $c is no longer kept on this host (keep_releases)" >&2; exit 66; fi`,
    `  chain="$chain $c"`,
    `  [ "$c" = "$target" ] && break`,
    `  c=$(cat "${D}/releases/$c/prev")`,
    `done`,
    "set -e",
    `for r in $chain; do`,
    `  R="${D}/releases/$r"`,
    `  while IFS= read -r f; do rm -f -- "$f"; done < "$R/created"`,
    `  sort -r "$R/created_dirs" | while IFS= read -r d; do rmdir -- "$d" 2>/dev/null || true; done`,
    `  if [ -d "$R/backup" ]; then rsync -a --ignore-times "$R/backup/" ./; fi`,
    `  cp "$R/prev" ${D}/current.new && mv -f ${D}/current.new ${D}/current`,
    `  rm -rf "$R"`,
    `  echo "$r"`,
    `done`,
  ].join("\n");
}

/** SIGHUP to the server without its admin API: the PID file's process, else `killall -HUP tqserver`. */
export function signalScript(pidFile: string): string {
  const pf = shellQuote(pidFile);
  return [
    pidFile
      ? `if [ -f ${pf} ] && kill -HUP "$(cat ${pf})" 2>/dev/null; then echo pid-file; exit 0; fi`
      : "",
    `if killall -HUP tqserver 2>/dev/null; then echo killall; exit 0; fi`,
    `echo "no tqserver found (no live PID in ${
      pidFile || "the PID file"
    }, killall found none)" >&2`,
    `exit 1`,
  ].filter(Boolean).join("\n");
}

/** Options for {@linkcode curlScript}. */
export interface CurlScriptOptions {
  /** The request method. */
  method: "GET" | "POST";
  /** Read an Authorization header from stdin (`-H @-`). Default false. */
  withToken?: boolean;
}

/**
 * `curl` on the host for the admin API: the Authorization header comes on
 * stdin (`-H @-`), never on a command line; prints the body, then the status
 * code on a line of its own.
 */
export function curlScript(url: string, options: CurlScriptOptions): string {
  const { method, withToken = false } = options;
  return [
    "curl -sS --max-time 60 -w '\\n%{http_code}'",
    `-X ${method}`,
    "-H 'Content-Type: application/json'",
    withToken ? "-H @-" : "",
    shellQuote(url),
  ].filter(Boolean).join(" ");
}

/** Reads the deploy id a host runs. */
export function currentScript(): string {
  return `cat ${D}/current 2>/dev/null || true`;
}
