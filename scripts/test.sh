#!/usr/bin/env bash
# Runs every test: installs what is missing, type-checks, then vitest against real sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tests need root (namespaces, cgroups, nftables)" >&2; exit 1; }
bash scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"
