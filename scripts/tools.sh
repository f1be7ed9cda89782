#!/usr/bin/env bash
# Installs the pinned code-generation and client tool chains into .tools/, idempotently:
# Go protoc plugins and grpcurl (Go module proxy), and a Python venv with grpcio-tools
# (which carries protoc and the gRPC Python generator). buf and protoc-gen-es come from npm.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
TOOLS=$PWD/.tools
mkdir -p "$TOOLS/bin"

go_tool() { # name module@version
  local stamp="$TOOLS/bin/.$1.version"
  if [ ! -x "$TOOLS/bin/$1" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$2" ]; then
    echo "tools: go install $2" >&2
    GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false go install "$2"
    echo "$2" > "$stamp"
  fi
}
go_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
go_tool protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
go_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4

# pytest, pytest-asyncio and mypy: the Python client library's tests and type check (clients/python).
PY_REQS="grpcio==1.80.0 grpcio-tools==1.80.0 protobuf==6.33.6 pytest==9.2.0 pytest-asyncio==1.5.0 mypy==2.4.1"
if [ "$(cat "$TOOLS/venv/.reqs" 2>/dev/null)" != "$PY_REQS" ]; then
  echo "tools: python venv with $PY_REQS" >&2
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check $PY_REQS
  echo "$PY_REQS" > "$TOOLS/venv/.reqs"
fi

# nginx and haproxy: the proxies the tests put in front of sandboxd (test/proxy). Each test runs its own instance.
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  echo "tools: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: the packages must not start their system-wide services (port 80) on install.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
