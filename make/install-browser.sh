#!/bin/sh
# Debian's Chromium and its chromedriver, for the review app's browser tests: installed with apt when missing
# (as root, or through sudo when it needs no password). Without either the tests skip and say why; the stamp
# ($1) is written only once both are present, so a later `make test` tries again.
set -u
stamp="$1"
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  touch "$stamp"; exit 0
fi
if [ "$(id -u)" = 0 ]; then as_root=""; elif sudo -n true 2>/dev/null; then as_root="sudo -n"; else
  echo "note: chromium and chromium-driver are missing and apt needs root: the browser tests will be skipped" >&2; exit 0
fi
echo "installing chromium and chromium-driver with apt (for the review app's browser tests)"
if $as_root apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
   { $as_root apt-get update -q >/dev/null 2>&1 && $as_root apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; then
  touch "$stamp"
else
  echo "note: apt could not install chromium and chromium-driver: the browser tests will be skipped" >&2
fi
