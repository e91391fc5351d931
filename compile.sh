#!/usr/bin/env bash
# Compile the server (main.ts) into one executable: server/bin/tqserver.
#   ./compile.sh [--target TRIPLE]
# deno compile needs its runtime, denort: it downloads it from dl.deno.land (once, then cached)
# unless DENORT_BIN names a local denort binary of the same deno version and target.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
Usage: ./compile.sh [--target TRIPLE]

Compiles main.ts into server/bin/tqserver with the permissions the server needs.
  --target TRIPLE   cross-compile, e.g. x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu
Environment:
  DENORT_BIN        a local denort binary (same deno version and target) instead of the download
USAGE
}

target=""
while (($# > 0)); do
  case "$1" in
    --target)
      (($# >= 2)) || { echo "compile.sh: --target needs a value" >&2; usage >&2; exit 2; }
      target="$2"
      shift 2
      ;;
    --target=*) target="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compile.sh: unknown argument \"$1\"" >&2; usage >&2; exit 2 ;;
  esac
done

command -v deno >/dev/null 2>&1 || { echo "compile.sh: deno is not installed (https://deno.com)" >&2; exit 2; }
if [[ -n "${DENORT_BIN:-}" && ! -f "$DENORT_BIN" ]]; then
  echo "compile.sh: DENORT_BIN=\"$DENORT_BIN\" does not exist: point it at a denort binary or unset it" >&2
  exit 1
fi

# The least the server needs; no -A, so no FFI, no remote imports, no system information.
# Hosts, ports and paths come from the config at run time, so these cannot be scoped further.
permissions=(
  --allow-net   # listen on server.host:port and the admin port; proxy to workers on 127.0.0.1
  --allow-read  # the project root (--root or the cwd), its config and workers, its own binary
  --allow-write # workers/*/bin (dev builds) and server.log_file
  --allow-env   # ${VAR} in the config may name any variable; workers inherit the environment
  --allow-run   # worker executables (any language), deno for builds, itself for self-upgrade
  --unstable-net # reusePort: a new server binds the same port during a self-upgrade
  --unstable-no-legacy-abort # request.signal aborts only when the client goes away (the proxy watches it)
)
# V8's young generation grows to 3 x 16 MiB under load and is never given back. Capped at 4 MiB
# semi-spaces, the server's RSS after 9 s of wrk -c50 hello world is 91-99 MiB (8 MiB: 99-138;
# default: about a third more). The cost is scavenges twice as often: 3.8% of the CPU instead
# of 2.4% (--trace-gc-nvp), within the noise of CPU per request (26.6 vs 26.4 us).
v8=(--v8-flags=--max-semi-space-size=4)
args=("${permissions[@]}" "${v8[@]}")
[[ -z "$target" ]] || args+=(--target "$target")

out="server/bin/tqserver"
[[ "$target" != *windows* ]] || out="$out.exe"
tmp="server/bin/.tqserver.tmp-$$"
[[ "$target" != *windows* ]] || tmp="$tmp.exe"
log="$(mktemp)"
trap 'rm -f "$tmp" "$log"' EXIT
mkdir -p server/bin

echo "compile.sh: compiling main.ts to $out ($(deno --version | head -n 1)${target:+, target $target})" >&2
if ! deno compile "${args[@]}" --output "$tmp" main.ts >"$log" 2>&1; then
  cat "$log" >&2
  if grep -qE 'dl\.deno\.land|denort|Setting up base binary' "$log"; then
    cat >&2 <<EOF

compile.sh: deno compile could not download its runtime (denort${target:+ for $target}).
deno compile fetches the runtime from dl.deno.land the first time it runs, and this machine
cannot reach it. Either:
  - set DENORT_BIN=/path/to/denort (a denort binary of this deno version${target:+ for $target}) and run ./compile.sh again,
  - run ./compile.sh once on a machine with internet access (deno caches the runtime) and copy server/bin/tqserver,
  - or run the server from source: deno task start (prod) or deno task dev.
EOF
  else
    echo "compile.sh: deno compile failed (see above)" >&2
  fi
  exit 1
fi
cat "$log" >&2
chmod 755 "$tmp"
mv -f "$tmp" "$out"
echo "compile.sh: wrote $out ($(du -h "$out" | cut -f1))" >&2
