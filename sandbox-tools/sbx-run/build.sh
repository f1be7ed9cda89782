#!/usr/bin/env bash
# Builds sbx-run as a static x86_64 Linux binary (runs in any sandbox, no libc needed there).
# Usage: build.sh [OUT]   (default: sandbox-tools/sbx-run/bin/sbx-run)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/bin/sbx-run}"
mkdir -p "$(dirname "$out")"
gcc -std=c11 -static -Os -s -Wall -Wextra -Werror -o "$out" "$here/sbx-run.c"
