#!/usr/bin/env bash
# Set-up, then the multicluster demo in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/cli/src/main.js lab demo "$@"
