#!/usr/bin/env bash
# Installs what sandboxd needs on a Debian/Ubuntu host, idempotently:
# the local runtime's system tools and the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in bwrap:bubblewrap sshd:openssh-server ssh:openssh-client scp:openssh-client \
            nft:nftables ip:iproute2 mkfs.ext4:e2fsprogs losetup:mount nsenter:util-linux \
            pgrep:procps curl:curl setpriv:util-linux; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
# sbx-run, the helper sandboxd installs into sandboxes, is a static C program built here.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# The jails' seccomp filter is compiled by libseccomp's Python binding, with Debian's own python3.
/usr/bin/python3 -c "import seccomp" >/dev/null 2>&1 || need+=(python3-seccomp)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.sandboxd-lock-hash
hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
  npm ci --no-audit --no-fund
  echo "$hash" > "$stamp"
fi
# ssh2's native crypto binding comes from an install script; without it fast ciphers fall back to JS.
node -e "if(!require('ssh2/lib/protocol/crypto.js').bindingAvailable){console.error('setup: ssh2 native crypto binding missing');process.exit(1)}"

# sbx-run: rebuilt when its source is newer than the binary.
bin=sandbox-tools/sbx-run/bin/sbx-run
if [ ! -x "$bin" ] || [ sandbox-tools/sbx-run/sbx-run.c -nt "$bin" ]; then
  bash sandbox-tools/sbx-run/build.sh "$bin"
fi
