#!/usr/bin/env bash
# Starts sandboxd (configured by SANDBOXD_* variables, see server/config/config.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "sandboxd: the local provider needs root (network namespaces, cgroups, nftables); run: sudo npm start" >&2
  exit 1
fi
bash scripts/setup.sh
exec npx tsx server/main.ts
