#!/bin/bash
# tools/make-photo-set.sh: builds a training folder of real photographs from Debian wallpaper packages, with LICENSES.txt.
# usage: tools/make-photo-set.sh OUT_DIR [MAX_SIDE]   (installs packages: run as root, or with sudo available)
#
# MAX_SIDE (e.g. 2040, DIV2K's size): photos larger than that are downscaled to fit (ImageMagick's
# default Lanczos filter for shrinking) and stored as PNG: a 48 s crop of a 6000 px wallpaper is
# mostly smooth bokeh and sky, while DIV2K-sized photos put texture in most crops, and shrinking
# also averages away the JPEG blocks. Without it the files are copied as they are.
#
# Each package below ships photographs (not drawings or renders); PHOTO_SKIP lists files of those
# packages that are artwork. Packages this release lacks are skipped with a note. Every copied
# file is named <package>__<file> and gets a line in OUT_DIR/LICENSES.txt: file, package,
# version, licence and copyright holder of that file: the stanza of the package's machine-readable
# /usr/share/doc/<package>/copyright (DEP-5) whose Files: pattern matches the installed path (the
# last match wins, as DEP-5 says); without such a file, all the package's License: fields.
set -euo pipefail
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 OUT_DIR [MAX_SIDE]" >&2; exit 2; }
out=$1 max_side=${2:-0}
case $max_side in ''|*[!0-9]*) echo "make-photo-set: MAX_SIDE must be a number of pixels" >&2; exit 2 ;; esac
PKGS="budgie-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 mate-backgrounds ubuntu-mate-wallpapers-photos"
# artwork inside those packages (drawn, rendered or abstract), by file name pattern
PHOTO_SKIP='(screenshot|_dark_|Cluster|FlyingKonqui|Kay|Patak|DarkestHour|Float-into-MATE|GreenTraditional|abstract|pattern|gradient|stripes|circles|lines|waves|geometr|pixel|cartoon|logo|symbolic|default|Next|Flow|Shell|Volna|Honeywave|Opal|Elarun|IceCold|Kite|Cascade|Canopee|Milky|Autumn|ColdRipple|FallenLeaf|SafeLanding|Altai|Grey|Path|BytheWater|Kokkini|OneStandsOut|EveningGlow|summer_1am|PastelHills|Mountain|Bamboo)'

sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
export DEBIAN_FRONTEND=noninteractive
convert=/usr/bin/convert
if [ "$max_side" -gt 0 ] && [ ! -x "$convert" ]; then
  $sudo_ apt-get install -y -qq --no-install-recommends imagemagick > /dev/null
fi
$sudo_ apt-get update -qq || true
mkdir -p "$out"
lic="$out/LICENSES.txt"
printf 'file\tpackage\tversion\tlicence\tcopyright\n' > "$lic"

# file_licence COPYRIGHT PATH: "licence<TAB>copyright holder" of PATH from a DEP-5 copyright file.
file_licence() {
  awk -v path="$2" '
    function glob_re(g,   r, i, ch) {   # a DEP-5 glob as an awk regex anchored after a "/"
      r = ""
      for (i = 1; i <= length(g); i++) {
        ch = substr(g, i, 1)
        if (ch == "*") r = r "[^/]*"
        else if (ch == "?") r = r "[^/]"
        else if (ch ~ /[A-Za-z0-9_\/-]/) r = r ch
        else r = r "[" ch "]"
      }
      return "/" r "$"
    }
    function base(x) { sub(/.*\//, "", x); return x }
    function flush(   n, i, pats) {
      if (files != "" && lic != "") {
        n = split(files, pats, /[ \t]+/)
        for (i = 1; i <= n; i++) {
          if (pats[i] == "") continue
          # rank: 4 the path, 3 the file name alone (source and installed trees differ in their
          # folders), 2 and 1 the same through a wildcard; the last of the highest rank wins
          wild = pats[i] ~ /[*?]/
          r = 0
          if (("/" path) ~ glob_re(pats[i])) r = wild ? 2 : 4
          else if (("/" base(path)) ~ glob_re(base(pats[i]))) r = wild ? 1 : 3
          if (r > 0 && r >= rank) { rank = r; best_l = lic; best_c = cop }
        }
      }
      files = ""; lic = ""; cop = ""; field = ""
    }
    /^[ \t]*$/ { flush(); next }
    /^Files:/ { files = substr($0, 7); field = "f"; next }
    /^Copyright:/ { cop = substr($0, 11); field = "c"; next }
    /^License:/ { lic = substr($0, 9); field = "l"; next }
    /^[A-Za-z-]+:/ { field = ""; next }
    /^[ \t]/ { if (field == "f") files = files " " $0; else if (field == "c") cop = cop ";" $0; next }
    END { flush()
          l = best_l; c = best_c
          gsub(/^[ \t]+|[ \t]+$/, "", l); gsub(/[ \t]+/, " ", c); gsub(/^ +| +$/, "", c)
          if (l != "") print l "\t" c }' "$1"
}
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
    if [ "$max_side" -gt 0 ]; then
      name="${name%.*}.png"
      "$convert" "$f" -resize "${max_side}x${max_side}>" "$out/$name"
    else
      cp "$f" "$out/$name"
    fi
    own=$(file_licence "$copyright" "$f" 2>/dev/null || true)
    [ -n "$own" ] || own="$licence	(see $copyright)"
    printf '%s\t%s\t%s\t%s\n' "$name" "$p" "$ver" "$own" >> "$lic"
  done
done
n=$(($(wc -l < "$lic") - 1))
echo "$n photographs in $out (licences in $lic)"
[ "$n" -gt 0 ]
