#!/bin/bash
# tools/make-readme-strip.sh: the README's comparison strip (bicubic | model | original, x4) on a photograph
# no shipped model was trained on: "Kleiber" by Lukas Baubkus (CC-BY-SA-3.0, Debian package
# lomiri-wallpapers-20.04; tools/make-photo-set.sh takes nothing from that package).
#   tools/make-readme-strip.sh [MODEL] [OUT.png] [GAN_MODEL]
#     (defaults: data/models/default.safetensors, docs/strip-x4.png). With GAN_MODEL, a LIIF-GAN model, the strip is
#     bicubic | MODEL | GAN_MODEL at detail 0.5 | GAN_MODEL at detail 1 | original (issue 16's README strip).
#   LIIF_STRIP_JPEG=Q tools/make-readme-strip.sh [MODEL] [OUT.png]
#     instead: the photo at x2 from an LR image saved as a JPEG of quality Q: bicubic | MODEL | MODEL after
#     liif's --deblock | original (the README's JPEG section; docs/strip-jpeg-x2.png with Q = 50).
# Needs a built tree, apt (to fetch the package) and ImageMagick's convert (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-data/models/default.safetensors} out=${2:-docs/strip-x4.png} gan=${3:-}
sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
convert=/usr/bin/convert
[ -x "$convert" ] || { $sudo_ apt-get install -y -qq --no-install-recommends imagemagick >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq lomiri-wallpapers-20.04 >/dev/null 2>&1) ||
  { echo "make-readme-strip: cannot download lomiri-wallpapers-20.04" >&2; exit 1; }
dpkg -x "$work"/lomiri-wallpapers-20.04_*.deb "$work/x"
mkdir -p "$work/hr" "$(dirname "$out")"
# the bird's head, 1080 px square of the 6028x3391 original, at a third of its size
"$convert" "$work/x/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg" -crop 1080x1080+2300+1450 +repage \
  -resize 360x360 "$work/hr/kleiber.png"
# liif eval's strip: three 200 px cells 2 px apart (bicubic | model | original); the panels side by side, 2 px apart
cell() { "$convert" "$1" -crop 200x200+$(( $2 * 202 ))+0 +repage "$3"; }
if [ -n "${LIIF_STRIP_JPEG:-}" ]; then
  q=$LIIF_STRIP_JPEG
  for d in "" --deblock; do
    build/ui/cli/liif eval -q --model "$model" --data "$work/hr" --scales 2 --strips 1 --crop 200 --lr-jpeg "$q" $d \
      --out "$work/jpeg$d"
  done
  cell "$work/jpeg/strip_x2.png" 0 "$work/p0.png"
  cell "$work/jpeg/strip_x2.png" 1 "$work/p1.png"
  cell "$work/jpeg--deblock/strip_x2.png" 1 "$work/p2.png"
  cell "$work/jpeg/strip_x2.png" 2 "$work/p3.png"
  "$convert" "$work"/p0.png "$work"/p1.png "$work"/p2.png "$work"/p3.png -background white -splice 2x0 \
    +append -chop 2x0 +repage "$out"
  echo "make-readme-strip: wrote $out (LR through JPEG q$q, x2: bicubic | model | model after --deblock | original)"
  exit 0
fi
build/ui/cli/liif eval -q --model "$model" --data "$work/hr" --scales 4 --strips 1 --crop 200 --out "$work/eval"
if [ -z "$gan" ]; then
  cp "$work/eval/strip_x4.png" "$out"
  echo "make-readme-strip: wrote $out (bicubic | model | original, x4)"
  exit 0
fi
for d in 0.5 1; do
  build/ui/cli/liif eval -q --model "$gan" --detail $d --data "$work/hr" --scales 4 --strips 1 --crop 200 \
    --out "$work/gan-$d"
done
cell "$work/eval/strip_x4.png" 0 "$work/p0.png"
cell "$work/eval/strip_x4.png" 1 "$work/p1.png"
cell "$work/gan-0.5/strip_x4.png" 1 "$work/p2.png"
cell "$work/gan-1/strip_x4.png" 1 "$work/p3.png"
cell "$work/eval/strip_x4.png" 2 "$work/p4.png"
"$convert" "$work"/p0.png "$work"/p1.png "$work"/p2.png "$work"/p3.png "$work"/p4.png -background white -splice 2x0 \
  +append -chop 2x0 +repage "$out"
echo "make-readme-strip: wrote $out (bicubic | model | LIIF-GAN detail 0.5 | LIIF-GAN detail 1 | original, x4)"
