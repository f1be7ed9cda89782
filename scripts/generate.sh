#!/usr/bin/env bash
# Regenerates all code from the protos with pinned local plugins (no registry).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
npx buf lint
rm -rf gen/ts gen/python gen/go/sandbox  # cleaned here, not by buf: gen/go/go.mod is hand-written
npx buf generate
npx buf generate --template buf.gen.grpc.yaml
# Go: keep the generated module's requirements in step with the generated code.
(cd gen/go && GOFLAGS=-mod=mod go mod tidy)
