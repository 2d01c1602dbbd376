#!/usr/bin/env bash
# Installs the labrig host agent on this Pi as a systemd service. Safe to run twice.
#
#   deployment/install-agent.sh [--dry-run]
#
# Run from a checkout that is built (npm ci && npm run build). The script:
#   1. checks Node.js >= 20.19 and the built agent in the checkout;
#   2. creates the system user labrig (no login shell) and the gpio group if missing,
#      and adds labrig to dialout, gpio and video;
#   3. creates /etc/labrig (0750 root:labrig) and /var/lib/labrig (0750 labrig:labrig);
#   4. stages the built agent in /opt/labrig.new (package files + shared/dist + host-agent/dist),
#      runs `npm ci --omit=dev -w host-agent -w shared` there, then swaps it into /opt/labrig;
#      (npm ci builds the GPIO character-device addon with node-gyp: a C compiler is needed);
#   5. installs /usr/local/bin/labrig-agent (a wrapper), writes /etc/labrig/agent.yaml with
#      `labrig-agent init` only if it does not exist;
#   6. grants the GPIO access the chosen driver needs (`labrig-agent gpio driver`): for the
#      character device, a udev rule making /dev/gpiochip* the gpio group's where they are not;
#      for sysfs, the unit drop-in gpio-sysfs.conf (writable /sys); and loads the modules whose
#      device groups the unit's DeviceAllow= names at boot (usbserial, cdc_acm, videodev);
#   7. installs systemd/labrig-agent.service, reloads systemd, enables the unit, and starts
#      (restarts) it only when /etc/labrig/token exists; otherwise it says what to do next.
# --dry-run prints every step that would change something, and changes nothing.
set -euo pipefail

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-agent: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/labrig
ETC=/etc/labrig
STATE=/var/lib/labrig
UNIT=/etc/systemd/system/labrig-agent.service
DROPIN_DIR=/etc/systemd/system/labrig-agent.service.d
SYSFS_DROPIN=$DROPIN_DIR/gpio-sysfs.conf
UDEV_RULE=/etc/udev/rules.d/60-labrig-gpio.rules
MODULES_CONF=/etc/modules-load.d/labrig.conf
WRAPPER=/usr/local/bin/labrig-agent
SERVICE_USER=labrig
GROUPS_NEEDED=(dialout gpio video)

say() { echo "install-agent: $*"; }
die() { echo "install-agent: error: $*" >&2; exit 1; }
# Runs a command that changes the system; in a dry run, only prints it.
run() {
  if [[ $DRY_RUN -eq 1 ]]; then
    echo "would run: $*"
  else
    echo "+ $*"
    "$@"
  fi
}

if [[ $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then
  die "run as root (sudo $0), or with --dry-run to see what it would do"
fi

# 1. Node.js and the built checkout.
NODE="$(command -v node || true)"
[[ -n "$NODE" ]] || die "Node.js is not installed; install Node.js 20.19 or newer (e.g. NodeSource's Debian packages), then run this again"
NODE_VERSION="$("$NODE" -p 'process.versions.node')"
if ! "$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  die "Node.js $NODE_VERSION is too old; labrig needs 20.19 or newer"
fi
say "Node.js $NODE_VERSION at $NODE"
for f in package.json package-lock.json shared/package.json shared/dist/index.js host-agent/package.json host-agent/dist/cli.js host-agent/binding.gyp host-agent/native/gpio_uapi.c hub/package.json; do
  [[ -e "$REPO/$f" ]] || die "$REPO/$f is missing; build the checkout first: cd $REPO && npm ci && npm run build"
done
# npm ci below builds the GPIO addon (and serialport's) from source.
for tool in cc make python3; do
  command -v "$tool" >/dev/null || die "$tool is missing; the native modules are built from source: sudo apt-get install build-essential python3"
done

# 2. Groups and the service user.
for g in "${GROUPS_NEEDED[@]}"; do
  if getent group "$g" >/dev/null; then
    say "group $g exists"
  else
    run groupadd --system "$g"
  fi
done
if getent passwd "$SERVICE_USER" >/dev/null; then
  say "user $SERVICE_USER exists"
else
  run useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin --comment "labrig host agent" "$SERVICE_USER"
fi
missing_groups=()
for g in "${GROUPS_NEEDED[@]}"; do
  if id -nG "$SERVICE_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$g"; then
    say "user $SERVICE_USER is in $g"
  else
    missing_groups+=("$g")
  fi
done
if [[ ${#missing_groups[@]} -gt 0 ]]; then
  run usermod -aG "$(IFS=,; echo "${missing_groups[*]}")" "$SERVICE_USER"
fi

# 3. Directories (install -d fixes owner and mode on every run, so a second run repairs drift).
run install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE"

# 4. The agent itself: staged next to the live copy, then swapped in, so a failed npm ci leaves the old one running.
STAGE="$PREFIX.new"
run rm -rf "$STAGE"
run install -d -m 0755 "$STAGE/shared" "$STAGE/host-agent" "$STAGE/hub"
run cp "$REPO/package.json" "$REPO/package-lock.json" "$STAGE/"
run cp "$REPO/shared/package.json" "$STAGE/shared/"
run cp "$REPO/hub/package.json" "$STAGE/hub/"
run cp "$REPO/host-agent/package.json" "$STAGE/host-agent/"
run cp -a "$REPO/shared/dist" "$STAGE/shared/dist"
run cp -a "$REPO/host-agent/dist" "$STAGE/host-agent/dist"
run cp "$REPO/host-agent/binding.gyp" "$STAGE/host-agent/"
run cp -a "$REPO/host-agent/native" "$STAGE/host-agent/native"
# hub/package.json is there only so the lockfile's workspaces resolve; -w installs the agent's dependencies alone.
run npm ci --prefix "$STAGE" --omit=dev --no-audit --no-fund -w host-agent -w shared
run rm -rf "$PREFIX.old"
if [[ -e "$PREFIX" ]]; then run mv "$PREFIX" "$PREFIX.old"; fi
run mv "$STAGE" "$PREFIX"
run rm -rf "$PREFIX.old"

# 5. The command, and a config only if there is none (an existing one is never touched).
# Writes FILE with TEXT (and MODE, default 0644) unless it already holds exactly that.
write_file() {
  local file="$1" text="$2" mode="${3:-0644}"
  if [[ -f "$file" && "$(cat "$file")" == "$text" ]]; then
    say "$file is current"
  elif [[ $DRY_RUN -eq 1 ]]; then
    echo "would run: write $file"
  else
    echo "+ write $file"
    install -d -m 0755 "$(dirname "$file")"
    printf '%s\n' "$text" > "$file"
    chmod "$mode" "$file"
  fi
}
WRAPPER_TEXT="#!/bin/sh
exec $NODE $PREFIX/host-agent/dist/cli.js \"\$@\""
write_file "$WRAPPER" "$WRAPPER_TEXT" 0755
if [[ -e "$ETC/agent.yaml" ]]; then
  say "$ETC/agent.yaml exists; left as it is"
else
  run "$WRAPPER" init --out "$ETC/agent.yaml"
  run chown "root:$SERVICE_USER" "$ETC/agent.yaml"
  run chmod 0640 "$ETC/agent.yaml"
fi

# 6. GPIO access for the driver the agent will use, and the modules behind the unit's device groups.
CONFIG_ARG=()
if [[ -e "$ETC/agent.yaml" ]]; then CONFIG_ARG=(--config "$ETC/agent.yaml"); fi
GPIO_CHOICE="$("$NODE" "$REPO/host-agent/dist/cli.js" gpio driver "${CONFIG_ARG[@]}")" || die "could not tell which GPIO driver the agent will use: $GPIO_CHOICE"
GPIO_DRIVER="$(head -n1 <<<"$GPIO_CHOICE")"
say "GPIO driver: $GPIO_DRIVER ($(tail -n +2 <<<"$GPIO_CHOICE"))"
if [[ "$GPIO_DRIVER" == sysfs ]]; then
  write_file "$SYSFS_DROPIN" "$(cat "$REPO/systemd/labrig-agent.service.d/gpio-sysfs.conf")"
elif [[ -e "$SYSFS_DROPIN" ]]; then
  run rm -f "$SYSFS_DROPIN"
fi
if [[ "$GPIO_DRIVER" == chardev ]]; then
  # Raspberry Pi OS ships a rule giving /dev/gpiochip* to the gpio group; plain Debian leaves them root's.
  needs_rule=0
  for chip in /dev/gpiochip*; do
    [[ -e "$chip" && "$(stat -c %G "$chip")" != gpio ]] && needs_rule=1
  done
  if [[ $needs_rule -eq 1 || -e "$UDEV_RULE" ]]; then
    write_file "$UDEV_RULE" 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"'
    if [[ $needs_rule -eq 1 ]]; then
      run udevadm control --reload
      run udevadm trigger --subsystem-match=gpio --action=change
    fi
  fi
fi
modules=()
for m in usbserial cdc_acm videodev; do
  if command -v modinfo >/dev/null && modinfo "$m" >/dev/null 2>&1; then modules+=("$m"); fi
done
if [[ ${#modules[@]} -gt 0 ]]; then
  write_file "$MODULES_CONF" "$(printf '%s\n' "# labrig-agent.service's DeviceAllow= resolves these modules' device groups when it starts." "${modules[@]}")"
else
  say "no usbserial/cdc_acm/videodev modules here; $MODULES_CONF not needed"
fi

# 7. The unit. It names /usr/bin/node; where node lives elsewhere, the installed copy says so.
UNIT_SRC="$REPO/systemd/labrig-agent.service"
if [[ "$NODE" != /usr/bin/node ]]; then
  say "node is at $NODE, not /usr/bin/node: the installed unit's ExecStart uses $NODE"
fi
if [[ -f "$UNIT" ]] && cmp -s <(sed "s#^ExecStart=/usr/bin/node #ExecStart=$NODE #" "$UNIT_SRC") "$UNIT"; then
  say "$UNIT is current"
elif [[ $DRY_RUN -eq 1 ]]; then
  echo "would run: install $UNIT_SRC as $UNIT"
else
  echo "+ install $UNIT_SRC as $UNIT"
  sed "s#^ExecStart=/usr/bin/node #ExecStart=$NODE #" "$UNIT_SRC" > "$UNIT.tmp"
  chmod 0644 "$UNIT.tmp"
  mv "$UNIT.tmp" "$UNIT"
fi
run systemctl daemon-reload
run systemctl enable labrig-agent.service
if [[ -s "$ETC/token" ]]; then
  run systemctl restart labrig-agent.service
  say "started; follow it with: journalctl -u labrig-agent -f"
else
  say "not started: $ETC/token is missing."
  say "next: put this host's enrollment token (from the hub) in $ETC/token, then:"
  say "  sudo chown root:$SERVICE_USER $ETC/token && sudo chmod 0640 $ETC/token"
  say "  sudo labrig-agent doctor --user $SERVICE_USER --config $ETC/agent.yaml"
  say "  sudo systemctl start labrig-agent && journalctl -u labrig-agent -f"
fi
