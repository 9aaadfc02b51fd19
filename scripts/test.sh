#!/usr/bin/env bash
# Runs the whole test suite. Installs the Debian packages the tests need
# first (when run as root on Debian; otherwise it says what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(iproute2 procps coturn nftables conntrack chromium chromium-driver python3-aioice)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing packages: ${missing[*]} (run as root, or apt-get install them)" >&2
  fi
fi

cargo test --workspace --all-targets "$@"
