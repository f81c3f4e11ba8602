#!/bin/bash
# tests/gimp/run-in-root.sh [MESON-TEST-ARGS...]: the GIMP tests from the host (run as root; CI calls this).
# Creates the Debian trixie root when missing (tools/trixie-root.sh, cached in /var/cache/liif-trixie-root
# or $LIIF_TRIXIE_ROOT), builds the whole project in it in build-trixie/, and runs the 'gimp' test suite
# there (plus the dialog and cancel tests under Xvfb). Exit status: meson test's.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/trixie-root.sh setup
exec tools/trixie-root.sh run bash -c '
  set -e; cd /src
  if [ ! -f build-trixie/build.ninja ]; then meson setup build-trixie -Dgimp=enabled; fi
  # only what the suite needs, so an unrelated broken target does not hide the plug-in results
  ninja -C build-trixie plugin/liif-upscale ui/cli/liif $(sed "s|.*|po/&/LC_MESSAGES/liif-gan.mo|" po/LINGUAS)
  meson test -C build-trixie --no-rebuild --suite gimp --print-errorlogs "$@"' bash "$@"
