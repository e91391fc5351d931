#!/usr/bin/env bash
# Build the TypeScript workers for prod (deployment.prod.build: standalone `deno compile`
# executables, by default) and the Go workers (go build -ldflags "-s -w" by default). Then
# `killall -HUP tqserver` replaces the workers whose binary changed.
#   scripts/build-prod.sh [--force] [--format bundle|compile] [--target TRIPLE] [--root DIR] [workers...]
# deno compile downloads its runtime (denort) unless DENORT_BIN names a local one; offline,
# use --format bundle (needs deno on the server) or set DENORT_BIN=/path/to/denort.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v deno >/dev/null 2>&1 || { echo "build-prod: deno is not installed (https://deno.com)" >&2; exit 2; }
exec deno run --allow-all src/build/cli.ts --mode prod "$@"
