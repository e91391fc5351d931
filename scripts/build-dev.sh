#!/usr/bin/env bash
# Build the TypeScript workers for dev (deployment.dev.build: bundles run by deno, by default)
# and the Go workers (src/main.go: go build, deployment.dev.build.ldflags).
#   scripts/build-dev.sh [--force] [--format bundle|compile] [--root DIR] [workers...]
# Only workers whose sources changed are rebuilt; see `deno task build --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v deno >/dev/null 2>&1 || { echo "build-dev: deno is not installed (https://deno.com)" >&2; exit 2; }
exec deno run --allow-all src/build/cli.ts --mode dev "$@"
