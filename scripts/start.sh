#!/usr/bin/env bash
# Starts sandboxd (configured by SANDBOXD_* variables, see server/config/config.ts).
# Installs what it needs first, then *becomes* the server: `exec` leaves one
# process, node running sandboxd, which handles SIGTERM itself (NOT_SERVING,
# drain delay, grace) and exits when it is done. A supervisor (systemd, a
# container runtime) that runs this script therefore sees the service stop
# only when it has stopped. (`npm start` is fine for trying it out, but npm
# exits at once on SIGTERM while the server still drains.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] && [ "${SANDBOXD_PROVIDER:-local}" = local ]; then
  echo "sandboxd: the local provider needs root (network namespaces, cgroups, nftables); run: sudo $0" >&2
  exit 1
fi
bash scripts/setup.sh >&2
# tsx as a loader inside this node process (its CLI would add a parent process).
# A 64 MiB young generation: the data path's short-lived buffers (one per output
# chunk, message and envelope) made V8's default 16 MiB scavenge so often that GC
# took a quarter of sandboxd's CPU streaming output (docs/performance.md).
exec node --max-semi-space-size=64 --import tsx server/main.ts
