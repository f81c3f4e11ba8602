#!/bin/bash
# tools/make-photo-set.sh: builds a training folder of real photographs from Debian wallpaper packages, with LICENSES.txt.
# usage: tools/make-photo-set.sh [--jpeg JPEG_DIR] [--val VAL_DIR] OUT_DIR [MAX_SIDE]
#   e.g. tools/make-photo-set.sh --jpeg /var/cache/liif-photos-4-jpg --val /var/cache/liif-val /var/cache/liif-photos-4 2040
#
# MAX_SIDE (e.g. 2040, DIV2K's size): photos larger than that are downscaled to fit (ImageMagick's
# default Lanczos filter for shrinking) and stored as PNG: a 48 s crop of a 6000 px wallpaper is
# mostly smooth bokeh and sky, while DIV2K-sized photos put texture in most crops, and shrinking
# also averages away the JPEG blocks. Without it the files are copied as they are.
# Three photographs (VAL_HOLD: otters, the Colosseum, a mountain lake; none in the shipped LIIF's 25) are held out of
# OUT_DIR: with --val VAL_DIR, their centre 768 px squares (after MAX_SIDE) go there as PNG with their own
# LICENSES.txt, the validation set of the device runs (liif train's val_data: a LIIF-GAN run's detail per checkpoint).
# --jpeg JPEG_DIR also writes the same pixels as JPEG (quality $JPEG_QUALITY, default 95, 4:4:4 chroma) with its own
# LICENSES.txt: about 30% of the PNGs' size, for a device that receives 64 MiB per call. The 43 photos of 2026-12 at
# 2040 px: 35.6 MB at quality 95 (43-48 dB from the PNGs), 23.6 MB at 90 (40-47 dB); the 40 left once three were held
# out, 21 MB at 90, which leaves a LIIF-GAN leg room for the networks it resumes from (tools/gpu-pack.sh prints it).
#
# The packages are downloaded and unpacked into a temporary folder, never installed (only
# ImageMagick is, when missing). A package is taken from this machine's release when it has it,
# else from NEXT_SUITE (default trixie; budgie-backgrounds is new there) through the Debian mirror of
# this machine's own apt configuration, with apt lists kept in the temporary folder; a package
# neither has is skipped with a note.
#
# Each package below ships photographs; PHOTO_SKIP lists the files of those packages that are not
# photographs (drawn, rendered or abstract, looked at one by one), plus a few photographs with
# almost no texture (night sky, fog). Every copied file is named <package>__<file> and gets a line
# in OUT_DIR/LICENSES.txt: file, package, version, licence and copyright holder of that file: the
# stanza of the package's machine-readable /usr/share/doc/<package>/copyright (DEP-5) whose Files:
# pattern matches the installed path (the last match wins, as DEP-5 says); without such a file,
# all the package's License: fields.
set -euo pipefail
jpeg_dir="" val_dir=""
while [ "${1:-}" = --jpeg ] || [ "${1:-}" = --val ]; do
  [ $# -ge 2 ] || { echo "make-photo-set: $1 needs a folder" >&2; exit 2; }
  if [ "$1" = --jpeg ]; then jpeg_dir=$2; else val_dir=$2; fi
  shift 2
done
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 [--jpeg JPEG_DIR] [--val VAL_DIR] OUT_DIR [MAX_SIDE]" >&2; exit 2; }
out=$1 max_side=${2:-0}
case $max_side in ''|*[!0-9]*) echo "make-photo-set: MAX_SIDE must be a number of pixels" >&2; exit 2 ;; esac
JPEG_QUALITY=${JPEG_QUALITY:-95} # checked before anything is downloaded
case $JPEG_QUALITY in ''|*[!0-9]*) echo "make-photo-set: JPEG_QUALITY must be 1..100" >&2; exit 2 ;; esac
[ "$JPEG_QUALITY" -ge 1 ] && [ "$JPEG_QUALITY" -le 100 ] || { echo "make-photo-set: JPEG_QUALITY must be 1..100" >&2; exit 2; }
NEXT_SUITE=${NEXT_SUITE:-trixie}
# Not lomiri-wallpapers-20.04: its one photograph, Kleiber, is held out for the README's strip
# (tools/make-readme-strip.sh); Fossa, Infinite-Sea and Painting-Colors there are artwork.
PKGS="budgie-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 mate-backgrounds ubuntu-mate-wallpapers-photos"
# Not photographs (grep -Ei on the installed path; each file was looked at): the artwork of
# plasma-workspace-wallpapers (Cluster ... Volna, ScarletTree, Nexus; /Flow/ spares mate's FreshFlower
# and YellowFlower), mate-backgrounds (abstract/, desktop/), lomiri-wallpapers-16.04 (analogpattern;
# umang: a rendered gradient) and budgie-backgrounds (ocean-waves: a woodblock print; waves-midnight,
# valley-midnight: vector art; abstract-spiral, a photographed facade, goes with "abstract").
# Photographs with almost no texture: DarkestHour, ColdRipple, summer_1am (fog, still water),
# FallenLeaf, BytheWater (bokeh), Kite, Mountain (sky), saturnian-profile (black space).
# ukui-wallpapers, lomiri-wallpapers, phosh-wallpapers, sway-backgrounds and gnome-backgrounds hold
# no photographs.
PHOTO_SKIP='(screenshot|_dark_|Cluster|FlyingKonqui|Kay|Patak|DarkestHour|Float-into-MATE|GreenTraditional|abstract|pattern|gradient|stripes|circles|lines|waves|geometr|pixel|cartoon|logo|symbolic|default|Next|/Flow/|Shell|Volna|Honeywave|Opal|Elarun|IceCold|Kite|Cascade|Canopee|Milky|Autumn|ColdRipple|FallenLeaf|SafeLanding|Altai|BytheWater|Kokkini|summer_1am|PastelHills|Mountain|Bamboo|ScarletTree|Nexus|valley-midnight|saturnian|umang)'
# Held out for validation (grep -E on the installed path), never in OUT_DIR.
VAL_HOLD='(oakland-zoo-otters|roman-colosseum|lake-sherburne)'
VAL_SIDE=768

sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
export DEBIAN_FRONTEND=noninteractive
convert=/usr/bin/convert
if { [ "$max_side" -gt 0 ] || [ -n "$jpeg_dir" ] || [ -n "$val_dir" ]; } && [ ! -x "$convert" ]; then
  $sudo_ apt-get install -y -qq --no-install-recommends imagemagick > /dev/null
fi
$sudo_ apt-get update -qq || true
work=$(mktemp -d "${TMPDIR:-/tmp}/make-photo-set.XXXXXX")
trap 'rm -rf "$work"' EXIT
apt_host=()
[ "$(id -u)" -ne 0 ] || apt_host=(-o APT::Sandbox::User=root)   # downloads into $work, which _apt cannot write
apt_next=()   # the private apt configuration for NEXT_SUITE, set up when first needed
next_ready=""
setup_next() {   # apt lists of NEXT_SUITE main from this machine's Debian mirror, inside $work
  if [ -n "$next_ready" ]; then [ "$next_ready" = yes ]; return; fi
  next_ready=no
  local mirror key=""
  mirror=$(apt-get indextargets 'Identifier: Packages' 'Origin: Debian' 'Label: Debian' 'Component: main' 2>/dev/null |
           awk '/^Repo-URI:/ { print $2; exit }')
  if [ -z "$mirror" ]; then echo "note: no Debian mirror in this machine's apt configuration" >&2; return 1; fi
  [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ] || key="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
  echo "deb $key$mirror $NEXT_SUITE main" > "$work/apt/sources.list"
  apt_next=("${apt_host[@]}" -o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts="$work/apt/none"
            -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache" -o Dir::State::status=/dev/null)
  if ! apt-get "${apt_next[@]}" update -qq > "$work/apt/update.log" 2>&1; then
    echo "note: could not read $NEXT_SUITE from $mirror:" >&2; cat "$work/apt/update.log" >&2; return 1
  fi
  next_ready=yes
}
mkdir -p "$out"
lic="$out/LICENSES.txt"
printf 'file\tpackage\tversion\tlicence\tcopyright\n' > "$lic"
if [ -n "$val_dir" ]; then
  mkdir -p "$val_dir"
  printf 'file\tpackage\tversion\tlicence\tcopyright\n' > "$val_dir/LICENSES.txt"
fi

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
  # the package's .deb from this release, else from NEXT_SUITE
  if apt-cache show "$p" > /dev/null 2>&1; then opts=("${apt_host[@]}") from=this
  elif setup_next && apt-cache "${apt_next[@]}" show "$p" > /dev/null 2>&1; then opts=("${apt_next[@]}") from=$NEXT_SUITE
  else echo "note: $p is not available here or in $NEXT_SUITE; skipped" >&2; continue
  fi
  mkdir -p "$work/deb/$p"
  (cd "$work/deb/$p" && apt-get "${opts[@]}" download -qq "$p" > /dev/null)
  deb=$(ls "$work/deb/$p"/*.deb)
  root=$work/root/$p; mkdir -p "$root"
  dpkg-deb -x "$deb" "$root"
  ver=$(dpkg-deb -f "$deb" Version)
  echo "$p $ver (from $from release)" >&2
  copyright=/usr/share/doc/$p/copyright   # as installed; read from the unpacked tree
  licence=$( (grep -h '^License:' "$root$copyright" 2>/dev/null || true) | sed 's/^License: *//' | sort -u | paste -sd ';' -)
  [ -n "$licence" ] || licence="see $copyright"
  # the largest rendition of each image the package ships (plasma ships many sizes per wallpaper);
  # f is the installed path, $root$f the unpacked file (symbolic links are duplicates: left out)
  (cd "$root" && find . -type f | sed 's|^\.||') | grep -Ei '\.(jpe?g|png)$' | grep -Evi "$PHOTO_SKIP" | while read -r f; do
    echo "$(stat -c %s "$root$f") $f"
  done | sort -rn | awk '{ key=$2; sub(/\/contents\/images\/.*/, "", key); if (!(key in seen)) { seen[key]=1; print $2 } }' |
  while read -r f; do
    name="${p}__$(echo "${f#/usr/share/}" | tr '/' '_')"
    own=$(file_licence "$root$copyright" "$f" 2>/dev/null || true)
    [ -n "$own" ] || own="$licence	(see $copyright)"
    if echo "$f" | grep -Eq "$VAL_HOLD"; then # held out: validation only
      [ -n "$val_dir" ] || continue
      name="${name%.*}.png"
      if [ "$max_side" -gt 0 ]; then resize=(-resize "${max_side}x${max_side}>"); else resize=(); fi
      "$convert" -quiet "$root$f" "${resize[@]}" -gravity center -crop "${VAL_SIDE}x${VAL_SIDE}+0+0" +repage "$val_dir/$name"
      printf '%s\t%s\t%s\t%s\n' "$name" "$p" "$ver" "$own" >> "$val_dir/LICENSES.txt"
      continue
    fi
    if [ "$max_side" -gt 0 ]; then
      name="${name%.*}.png"
      "$convert" -quiet "$root$f" -resize "${max_side}x${max_side}>" "$out/$name"
    else
      cp "$root$f" "$out/$name"
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$p" "$ver" "$own" >> "$lic"
  done
  rm -rf "$root" "$work/deb/$p"
done
n=$(($(wc -l < "$lic") - 1))
echo "$n photographs in $out (licences in $lic)"
[ "$n" -gt 0 ]
[ -z "$val_dir" ] || echo "$(($(wc -l < "$val_dir/LICENSES.txt") - 1)) held-out validation crops (${VAL_SIDE} px) in $val_dir"
if [ -n "$jpeg_dir" ]; then   # the same pixels as JPEG without chroma subsampling
  mkdir -p "$jpeg_dir"
  awk -F'\t' -v OFS='\t' 'NR > 1 { sub(/\.[^.]*$/, ".jpg", $1) } { print }' "$lic" > "$jpeg_dir/LICENSES.txt"
  tail -n +2 "$lic" | cut -f1 | while read -r f; do
    "$convert" -quiet "$out/$f" -quality "$JPEG_QUALITY" -sampling-factor 1x1 "$jpeg_dir/${f%.*}.jpg"
  done
  echo "$n photographs as JPEG (quality $JPEG_QUALITY) in $jpeg_dir ($(du -sh "$jpeg_dir" | cut -f1))"
fi
