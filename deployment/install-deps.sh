#!/usr/bin/env bash
# Installs the Debian packages labrig needs on this machine. Safe to run again: it installs only
# what is missing. It asks for root only when it must: never as root, never when everything is
# already there; otherwise through sudo when there is one, else it says how to run it as root.
#   deployment/install-deps.sh          what the hub, the simulated rig and `npm ci` need
#   deployment/install-deps.sh --dev    also what the test suite needs
set -euo pipefail

# socat: the simulated rig's serial console (a real PTY); ffmpeg: V4L2 capture and the test pattern;
# build-essential, python3: node-gyp builds the native modules (better-sqlite3, serialport, epoll,
# node-webcodecs) when no prebuilt binary can be downloaded.
packages=(socat ffmpeg build-essential python3)
# Node.js itself only when there is none: Debian's nodejs package must be 20.19 or newer (checked below).
command -v node >/dev/null || packages+=(nodejs npm)
case "${1:-}" in
  "") ;;
  # The tests also run: systemd-analyze and systemd-notify (systemd), unshare for a fake GPIO sysfs
  # and the fault suite's full disks (util-linux), a probe compiled against the kernel's linux/gpio.h for the GPIO uAPI layout (gcc,
  # linux-libc-dev), promtool (prometheus), xmllint (libxml2-utils), nginx with an openssl-made
  # certificate, logrotate on pm2's logs, the dashboard in Debian's chromium through playwright-core
  # (chromium), and the board's screen read off the video canvas (tesseract-ocr).
  --dev) packages+=(systemd util-linux gcc linux-libc-dev prometheus libxml2-utils nginx openssl logrotate chromium tesseract-ocr) ;;
  *) echo "install-deps: unknown argument '$1' (use --dev, or nothing)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null; then
      echo "install-deps: installing ${missing[*]} needs root; asking sudo"
      exec sudo -- "$0" "$@"
    fi
    echo "install-deps: ${missing[*]} must be installed, which needs root, and there is no sudo here." >&2
    echo "install-deps: run it as root: su -c '$0 $*'   (or: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all present (${packages[*]})"
fi

version=$(node -p 'process.versions.node' 2>/dev/null || echo 0)
IFS=. read -r major minor _ <<<"$version"
if (( major < 20 || (major == 20 && minor < 19) )); then
  echo "install-deps: Node.js $version is too old; labrig needs 20.19 or newer (this Debian's nodejs is older: install Node.js 20 or 22 from nodejs.org's packages)." >&2
  exit 1
fi
