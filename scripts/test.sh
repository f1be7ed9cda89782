#!/usr/bin/env bash
# Runs every test: installs what is missing, checks the contract and the
# generated code, type-checks, then vitest against real sandboxes, a real
# server, grpcurl and the Go, Python and TypeScript clients.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tests need root (namespaces, cgroups, nftables)" >&2; exit 1; }
bash scripts/setup.sh
bash scripts/tools.sh

# The contract: lint, no breaking change against main, generated code up to date.
npx buf lint
if git rev-parse --verify -q main >/dev/null; then
  npx buf breaking --against '.git#branch=main'
fi
if git rev-parse --git-dir >/dev/null 2>&1; then
  bash scripts/generate.sh >/dev/null
  git diff --exit-code --stat -- gen clients/python/sandboxd/_gen clients/ts/src/gen || { echo "generated code is stale: run npm run generate" >&2; exit 1; }
  untracked=$(git ls-files --others --exclude-standard -- gen clients/python/sandboxd/_gen clients/ts/src/gen)
  [ -z "$untracked" ] || { echo "generated files not committed: $untracked" >&2; exit 1; }
fi

npx tsc -p tsconfig.json --noEmit

# The suite takes ~12 min here. Past SANDBOXD_TEST_LIMIT_S the watchdog prints
# what runs (the progress reporter's lines say which test) and stops it.
exec bash scripts/watchdog.sh "${SANDBOXD_TEST_LIMIT_S:-2400}" npx vitest run "$@"
