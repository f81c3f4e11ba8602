#!/bin/bash
# tools/make-photo-set.sh: builds a training folder of real photographs from Debian wallpaper packages, with LICENSES.txt.
# usage: tools/make-photo-set.sh OUT_DIR   (installs packages: run as root, or with sudo available)
#
# Each package below ships photographs (not drawings or renders); PHOTO_SKIP lists files of those
# packages that are artwork. Packages this release lacks are skipped with a note. Every copied
# file is named <package>__<file> and gets a line in OUT_DIR/LICENSES.txt: file, package,
# version, licence (the License: fields of /usr/share/doc/<package>/copyright).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out=$1
PKGS="budgie-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 mate-backgrounds ubuntu-mate-wallpapers-photos"
# artwork inside those packages (drawn, rendered or abstract), by file name pattern
PHOTO_SKIP='(screenshot|_dark_|Cluster|FlyingKonqui|Kay|Patak|DarkestHour|Float-into-MATE|GreenTraditional|abstract|pattern|gradient|stripes|circles|lines|waves|geometr|pixel|cartoon|logo|symbolic|default|Next|Flow|Shell|Volna|Honeywave|Opal|Elarun|IceCold|Kite|Cascade|Canopee|Milky|Autumn|ColdRipple|FallenLeaf|SafeLanding|Altai|Grey|Path|BytheWater|Kokkini|OneStandsOut|EveningGlow|summer_1am|PastelHills|Mountain|Bamboo)'

sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_ apt-get update -qq || true
mkdir -p "$out"
lic="$out/LICENSES.txt"
printf 'file\tpackage\tversion\tlicence\n' > "$lic"
n=0
for p in $PKGS; do
  if ! apt-cache show "$p" > /dev/null 2>&1; then
    echo "note: $p is not available here; skipped" >&2
    continue
  fi
  $sudo_ apt-get install -y -qq --no-install-recommends "$p" > /dev/null
  ver=$(dpkg-query -W -f='${Version}' "$p")
  copyright=/usr/share/doc/$p/copyright
  licence=$( (grep -h '^License:' "$copyright" 2>/dev/null || true) | sed 's/^License: *//' | sort -u | paste -sd ';' -)
  [ -n "$licence" ] || licence="see $copyright"
  # the largest rendition of each image the package ships (plasma ships many sizes per wallpaper)
  dpkg -L "$p" | grep -Ei '\.(jpe?g|png)$' | grep -Evi "$PHOTO_SKIP" | while read -r f; do
    [ -f "$f" ] || continue
    echo "$(stat -c %s "$f") $f"
  done | sort -rn | awk '{ key=$2; sub(/\/contents\/images\/.*/, "", key); if (!(key in seen)) { seen[key]=1; print $2 } }' |
  while read -r f; do
    name="${p}__$(echo "${f#/usr/share/}" | tr '/' '_')"
    cp "$f" "$out/$name"
    printf '%s\t%s\t%s\t%s\n' "$name" "$p" "$ver" "$licence" >> "$lic"
  done
done
n=$(($(wc -l < "$lic") - 1))
echo "$n photographs in $out (licences in $lic)"
[ "$n" -gt 0 ]
