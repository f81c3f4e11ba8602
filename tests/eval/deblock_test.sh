#!/bin/sh
# deblock_test.sh: `liif eval --lr-jpeg 50 [--deblock]` with the shipped model on two Set5 photos (bird, butterfly) at
# x2: through a JPEG of quality 50 the model's PSNR falls (it sharpens the block edges too), and deblocking that JPEG
# (liif upscale --deblock) gets at least 0.2 dB of it back (+0.5 on all of Set5 measured, 2026-12-07); the table
# says what its LR images were. Skipped (77) without the Set5 folder.
# usage: deblock_test.sh LIIF MODEL SET5_DIR
set -u
LIIF=$1 MODEL=$2 SET5=$3
fail() { echo "FAIL [deblock]: $*" >&2; exit 1; }
[ -d "$SET5" ] || { echo "SKIP [deblock]: no Set5 folder ($SET5)" >&2; exit 77; }
[ -f "$MODEL" ] || fail "no such file: $MODEL"
T=$(mktemp -d "${TMPDIR:-/tmp}/liif-deblock.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
mkdir "$T/data"
for f in bird butterfly; do ln -s "$SET5/$f.png" "$T/data/$f.png" || fail "no $f.png in $SET5"; done
for how in clean jpeg deblocked; do
  case $how in clean) flags= ;; jpeg) flags="--lr-jpeg 50" ;; deblocked) flags="--lr-jpeg 50 --deblock" ;; esac
  # shellcheck disable=SC2086 # the flags are words
  "$LIIF" eval --model "$MODEL" --data "$T/data" --scales 2 --strips 0 --out "$T/$how" -q $flags \
    > "$T/$how.md" 2> "$T/stderr" || { cat "$T/stderr" >&2; fail "liif eval $flags failed"; }
  cat "$T/$how.md"
done
grep -q '^| method (LR as JPEG q50, deblocked; ' "$T/deblocked.md" || fail "the deblocked table does not say so"
grep -q '^| method (LR as JPEG q50; ' "$T/jpeg.md" || fail "the JPEG table does not say so"
c=$(awk -F, '$1 == "model" { print $2 }' "$T/clean/table.csv")
j=$(awk -F, '$1 == "model" { print $2 }' "$T/jpeg/table.csv")
d=$(awk -F, '$1 == "model" { print $2 }' "$T/deblocked/table.csv")
[ -n "$c" ] && [ -n "$j" ] && [ -n "$d" ] || fail "no x2 PSNR in table.csv"
awk -v c="$c" -v j="$j" 'BEGIN { exit !(j < c - 1) }' || fail "x2: JPEG q50 $j dB, clean $c dB: the JPEG should cost more than 1 dB"
awk -v j="$j" -v d="$d" 'BEGIN { exit !(d >= j + 0.2) }' || fail "x2: deblocked $d dB, JPEG $j dB: want at least +0.2"
echo "deblock: x2 PSNR clean $c dB, through JPEG q50 $j dB, deblocked $d dB"
