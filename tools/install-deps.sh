#!/bin/bash
# tools/install-deps.sh: installs what building and testing the project needs on Debian 12 (bookworm). Idempotent.
set -euo pipefail
PKGS="gcc g++ perl pkg-config meson ninja-build libglib2.0-dev libpng-dev zlib1g-dev libjpeg62-turbo-dev libwebp-dev libdnnl-dev libomp-dev debootstrap util-linux
 clang libclang-rt-14-dev shellcheck"  # clang + its libFuzzer/sanitizer runtimes: tools/fuzz.sh; shellcheck: posix-sh
missing=$(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null | awk '$NF != "installed" {print $1}' || true)
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
  echo "installing: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "build dependencies: ok"
