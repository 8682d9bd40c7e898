#!/usr/bin/env bash
# promtool (Prometheus' config/rules/metrics checker) for the tests, from Debian's
# `prometheus` package.
#
#   deploy/local/promtool.sh ensure   print the path of a working promtool, fetching it once
#
# Order: `promtool` on PATH, then $KIZUNA_LOCAL_DIR/prometheus/usr/bin/promtool, else
# `apt-get download prometheus` and unpack it there with dpkg-deb. The package is not
# installed: its postinst would start a Prometheus server on :9090 (it ships an init
# script), and compose publishes that port; the tests only need the static promtool binary.
#
# Exit codes: 0 promtool printed; 3 this machine has no apt/dpkg (the tests skip, saying
# so); 1 apt is here but fetching failed (the tests fail: that is worth fixing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${KIZUNA_LOCAL_DIR:-$ROOT/.local}"
UNPACKED="$LOCAL_DIR/prometheus"
PROMTOOL="$UNPACKED/usr/bin/promtool"

log() { printf '[promtool] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

works() { "$1" --version >/dev/null 2>&1; }

fetch() {
  local debs="$UNPACKED/debs"
  rm -rf "$UNPACKED" && mkdir -p "$debs"
  log "fetching Debian's prometheus package for promtool (unpacked into $UNPACKED)"
  # apt-get download writes into the current directory; the _apt sandbox user may not be
  # able to, which only costs a warning.
  if ! (cd "$debs" && apt-get download -q prometheus >/dev/null 2>&1); then
    log "apt-get download failed; refreshing the package lists and trying again"
    as_root apt-get update -q >/dev/null || log "apt-get update failed; trying anyway"
    (cd "$debs" && apt-get download -q prometheus >/dev/null) \
      || die "apt-get download prometheus failed"
  fi
  dpkg-deb -x "$debs"/prometheus_*.deb "$UNPACKED/pkg" || die "dpkg-deb could not unpack it"
  mkdir -p "$UNPACKED/usr/bin"
  mv "$UNPACKED/pkg/usr/bin/promtool" "$PROMTOOL" || die "the package has no usr/bin/promtool"
  rm -rf "$UNPACKED/pkg" "$debs"
}

cmd_ensure() {
  local found
  if found="$(command -v promtool)" && works "$found"; then echo "$found"; return 0; fi
  if [ -x "$PROMTOOL" ] && works "$PROMTOOL"; then echo "$PROMTOOL"; return 0; fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    log "no promtool and no apt-get/dpkg-deb here to fetch Debian's prometheus package"
    exit 3
  fi
  fetch
  works "$PROMTOOL" || die "$PROMTOOL does not run"
  log "ready: $("$PROMTOOL" --version 2>&1 | head -1)"
  echo "$PROMTOOL"
}

case "${1:-}" in
  ensure) cmd_ensure ;;
  *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
