#!/usr/bin/env bash
# Deploy to the hosts of a target in config/deployment.yaml (docs/deployment.md).
#   scripts/deploy.sh [--dry-run] [--reload] [--canary [SECONDS]] TARGET [workers...]
#   scripts/deploy.sh --rollback TARGET [DEPLOY_ID]
#   scripts/deploy.sh status TARGET [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rsync >/dev/null 2>&1 || { echo "deploy: rsync is not installed (apt-get install rsync)" >&2; exit 2; }
exec deno run --allow-all src/deploy/cli.ts "$@"
