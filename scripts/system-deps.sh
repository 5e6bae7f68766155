#!/usr/bin/env bash
# System packages the tests need: a Java runtime (PySpark local mode) and Debian's chromium
# (headless checks of the HTML reports). Installed with apt-get when missing and running as root.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "aiscale tests need these system packages; install them: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
