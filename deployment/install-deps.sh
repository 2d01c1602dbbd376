#!/usr/bin/env bash
# Installs the Debian packages labrig needs on this machine. Safe to run twice:
# it installs only what is missing. Run as root (or it re-runs itself with sudo).
#   deployment/install-deps.sh          what the hub and the simulated rig need
#   deployment/install-deps.sh --dev    also what the test suite needs
set -euo pipefail

packages=(socat ffmpeg)    # socat: the simulated rig's serial console (a real PTY); ffmpeg: V4L2 capture and the test pattern
case "${1:-}" in
  "") ;;
  # The tests also run systemd-analyze verify on the unit (systemd), fake a GPIO sysfs tree in a private mount namespace (unshare, util-linux),
  # drive the dashboard in Debian's chromium through playwright-core (chromium), and read the board's screen off the video canvas (tesseract-ocr).
  --dev) packages+=(systemd util-linux chromium tesseract-ocr) ;;
  *) echo "install-deps: unknown argument '$1' (use --dev, or nothing)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all present (${packages[*]})"
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  exec sudo "$0" "$@"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
