#!/usr/bin/env bash
# The full test suite: set-up, static checks, then every test (unit and
# privileged). Privileged suites need root; under CI=true they fail instead of
# skipping when a capability is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json
npx eslint .
npx prettier --check --log-level warn .
npx vitest run "$@"
