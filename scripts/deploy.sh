#!/usr/bin/env bash
# Deploy workers to a target of config/deployment.yaml (see README "Deploying").
#   scripts/deploy.sh [--dry-run] [--reload] [--rollback] <target> [workers...]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rsync >/dev/null 2>&1 || { echo "deploy: rsync is not installed (apt-get install rsync)" >&2; exit 2; }
exec deno run --allow-all src/deploy/cli.ts "$@"
