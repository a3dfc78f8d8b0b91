#!/usr/bin/env bash
# Install the Debian packages the test-suite starts for real, only if a binary is missing.
# Usage: scripts/install_apt.sh victoria-metrics prometheus prometheus-alertmanager
set -euo pipefail
declare -A probe=(
  [victoria-metrics]=victoria-metrics
  [prometheus]=promtool
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [chromium-driver]=chromedriver
  [redis-server]=redis-server
)
missing=()
for pkg in "$@"; do
  bin=${probe[$pkg]:-$pkg}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "apt: all of $* already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian starts services from postinst where it can; policy-rc.d keeps it from doing so in containers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
