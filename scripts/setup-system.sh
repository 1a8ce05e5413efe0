#!/usr/bin/env bash
# System packages the hub needs beyond Python: a CJK font (rich menu images, screenshots) and
# Debian's Chromium (browser tests). Idempotent; installs only what is missing.
set -euo pipefail

want=()
dpkg -s fonts-ipaexfont-gothic >/dev/null 2>&1 || want+=(fonts-ipaexfont-gothic)
if [ "${HUB_SKIP_BROWSER:-}" != "1" ]; then
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
fi
if [ ${#want[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "missing system packages: ${want[*]} (run as root or install them: apt-get install ${want[*]})" >&2
    exit 1
  fi
  echo "installing system packages: ${want[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
