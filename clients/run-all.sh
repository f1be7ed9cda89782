#!/usr/bin/env bash
# Builds and runs the three example clients (Go, Python, TypeScript) against a
# live sandboxd. Usage: clients/run-all.sh [ADDR]   (default $SANDBOXD_ADDR or 127.0.0.1:8080)
# Runs all three even when one fails; exits non-zero if any failed.
# SANDBOXD_TOKEN, when set, reaches each client through the environment (never
# the command line, where ps would show it); they send it as a bearer token.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ADDR=${1:-${SANDBOXD_ADDR:-127.0.0.1:8080}}
export PATH="/usr/local/go/bin:$PATH"
PY=$ROOT/.tools/venv/bin/python
[ -x "$PY" ] || bash scripts/tools.sh || { echo "run-all: scripts/tools.sh failed" >&2; exit 1; }

failed=()
step() { # name command...
  local name=$1; shift
  echo "=== $name (addr $ADDR)"
  if "$@"; then echo "=== $name passed"; else echo "=== $name FAILED (rc $?)"; failed+=("$name"); fi
}

mkdir -p "$ROOT/clients/go/bin"
go_client() {
  (cd "$ROOT/clients/go" && go vet ./... && go build -o bin/sandboxd-client-go .) &&
    "$ROOT/clients/go/bin/sandboxd-client-go" --addr "$ADDR"
}
step go go_client
step python env PYTHONPATH="$ROOT/clients/python:$ROOT/gen/python" "$PY" -m sandboxd_client --addr "$ADDR"
step ts npx --no-install tsx clients/ts/example.ts --addr "$ADDR"

if [ ${#failed[@]} -gt 0 ]; then
  echo "run-all: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "run-all: all clients OK"
