#!/bin/bash
# tools/trixie-root.sh: a Debian trixie root (GIMP 3, libgimp-3.0-dev, oneDNN) to build and test the plug-in in.
#
#   tools/trixie-root.sh setup        create or refresh the root (idempotent; seconds when ready)
#   tools/trixie-root.sh run CMD...   run CMD inside, with the repo bound at /src (and ../shared, read-only,
#                                     at /shared) in a private mount namespace (mounts vanish when CMD exits)
#
# Environment: LIIF_TRIXIE_ROOT (default /var/cache/liif-trixie-root, outside the repo so CI can cache it),
#              SRC (default: this repo), DEBIAN_MIRROR (default: the host's first Debian mirror),
#              BIND_CUDA=/usr/local/cuda-13.0 binds a host CUDA toolkit read-only inside.
# Needs root (debootstrap, chroot, unshare -m).
set -euo pipefail
ROOT=${LIIF_TRIXIE_ROOT:-/var/cache/liif-trixie-root}
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
# The Debian archive this machine's own apt uses (the repo names no mirror): the first URI of a deb822
# .sources file or a one-line "deb URI SUITE" entry that is not the security archive.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] && awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while (i <= NF && $(i - 1) !~ /\]$/) i++; print $i }' "$f"
  done
}
MIRROR=${DEBIAN_MIRROR:-$(host_mirror | grep -E '^(https?|file)://' | grep -v -- '-security/*$' | head -n 1 || true)}
if [ -z "$MIRROR" ] && [ "${1:-}" = setup ]; then
  echo "tools/trixie-root.sh: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list;" \
       "set DEBIAN_MIRROR=<archive URL>" >&2
  exit 1
fi
# What the whole project needs to build and test in the root; changing this list re-runs apt.
PKGS="gimp libgimp-3.0-dev meson ninja-build gcc g++ pkg-config libpng-dev libjpeg-dev libwebp-dev libglib2.0-dev libdnnl-dev
 gettext python3 python3-gi xvfb xauth imagemagick xdotool x11-utils locales"
PKGS=$(echo $PKGS)

in_root() {
  unshare -m --propagation private /bin/sh -c '
    R=$1; S=$2; shift 2
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    mount --rbind /sys "$R/sys"
    mkdir -p "$R/src" && mount --bind "$S" "$R/src"
    if [ -d "$S/../shared" ]; then      # shared material (golden weights) beside the repo, read-only
      mkdir -p "$R/shared" && mount --bind "$S/../shared" "$R/shared" && mount -o remount,bind,ro "$R/shared"
    fi
    if [ -n "${BIND_CUDA:-}" ] && [ -d "$BIND_CUDA" ]; then
      mkdir -p "$R$BIND_CUDA" && mount --bind -o ro "$BIND_CUDA" "$R$BIND_CUDA"
      ln -sfn "$BIND_CUDA" "$R/usr/local/cuda"
    fi
    exec chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"' sh "$ROOT" "$SRC" "$@"
}

setup() {
  local stamp="$ROOT/.liif-root-pkgs"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PKGS" ]; then echo "trixie root ready: $ROOT"; return; fi
  mkdir -p "$(dirname "$ROOT")"
  exec 9>"$ROOT.lock"; flock 9                               # one setup at a time
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PKGS" ]; then echo "trixie root ready: $ROOT"; return; fi
  if [ -n "$(findmnt -rn -R -o TARGET "$ROOT" 2>/dev/null)" ]; then
    echo "refusing: something is mounted under $ROOT (umount -R it first)" >&2; exit 1
  fi
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  fi
  if [ ! -f "$ROOT/.debootstrap-ok" ]; then
    local t0; t0=$(date +%s); rm -rf "$ROOT.partial" "$ROOT"
    debootstrap --variant=minbase trixie "$ROOT.partial" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 \
      || { tail -20 "$ROOT.debootstrap.log"; exit 1; }
    touch "$ROOT.partial/.debootstrap-ok"; mv "$ROOT.partial" "$ROOT"
    echo "debootstrap: $(( $(date +%s) - t0 )) s"
  fi
  echo force-unsafe-io > "$ROOT/etc/dpkg/dpkg.cfg.d/02unsafe-io"   # no fsync: a much faster dpkg
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"                      # apt inside must resolve the mirror
  local t0; t0=$(date +%s)
  in_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends $PKGS > /tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }; apt-get clean"
  # The translation test runs GIMP under de_DE and fr_FR: those locales must exist.
  printf 'C.UTF-8 UTF-8\nde_DE.UTF-8 UTF-8\nfr_FR.UTF-8 UTF-8\n' > "$ROOT/etc/locale.gen"
  in_root locale-gen > /dev/null
  echo "apt install: $(( $(date +%s) - t0 )) s"
  echo "$PKGS" > "$stamp"
}

case "${1:-}" in
  setup) setup ;;
  run) shift; [ -f "$ROOT/.liif-root-pkgs" ] || { echo "no trixie root at $ROOT: run '$0 setup'" >&2; exit 1; }
       in_root "$@" ;;
  *) echo "usage: $0 setup | run CMD..." >&2; exit 2 ;;
esac
