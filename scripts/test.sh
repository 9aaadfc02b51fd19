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

# Where this script could install every package (root, apt), a lab,
# browser or coturn test that cannot run is a failure, not a skip: the
# machine has what they need, so a skip would hide a breakage. Elsewhere
# they skip loudly and say why. Either can be set by hand.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export ICE_LAB_REQUIRED="${ICE_LAB_REQUIRED:-1}"
  export ICE_PROBE_REQUIRE_COTURN="${ICE_PROBE_REQUIRE_COTURN:-1}"
fi

cargo test --workspace --all-targets "$@"
