#!/bin/sh
# shipped_model_test.sh: the plain LIIF model shipped as data/models/MODEL beats bicubic on Set5 at x2 and
# x4 (PSNR, benchmark protocol: Y channel, shave ceil(s), mean over the 5 images), with `liif eval`.
# Skipped (77) without the Set5 folder; fails when the model file is missing or is not a LIIF model.
# usage: shipped_model_test.sh LIIF MODEL SET5_DIR
set -u
LIIF=$1 MODEL=$2 SET5=$3
name=$(basename "$MODEL")
fail() { echo "FAIL [shipped $name]: $*" >&2; exit 1; }
[ -d "$SET5" ] || { echo "SKIP [shipped $name]: no Set5 folder ($SET5)" >&2; exit 77; }
[ -f "$MODEL" ] || fail "no such file: $MODEL"
head -c 4096 "$MODEL" | grep -aq '"liif.variant":"liif"' || fail "not a plain LIIF model (liif.variant)"
T=$(mktemp -d "${TMPDIR:-/tmp}/liif-shipped.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

"$LIIF" eval --model "$MODEL" --data "$SET5" --scales 2,4 --protocol benchmark --strips 0 --out "$T/out" -q \
  > "$T/stdout" 2> "$T/stderr" || { cat "$T/stderr" >&2; fail "liif eval failed"; }
cat "$T/stdout"
n=$(($(wc -l < "$T/out/per_image.csv") - 1))
[ "$n" -eq 20 ] || fail "per_image.csv has $n rows, want 5 images x 2 scales x 2 methods"
# table.csv: method, then PSNR and SSIM per scale (x2 in column 2, x4 in column 4)
for col in 2:x2 4:x4; do
  c=${col%%:*} s=${col#*:}
  b=$(awk -F, -v c="$c" '$1 == "bicubic" { print $c }' "$T/out/table.csv")
  m=$(awk -F, -v c="$c" '$1 == "model" { print $c }' "$T/out/table.csv")
  [ -n "$b" ] && [ -n "$m" ] || { cat "$T/out/table.csv" >&2; fail "no $s PSNR in table.csv"; }
  awk -v b="$b" -v m="$m" 'BEGIN { exit !(m > b) }' || fail "$s: model $m dB does not beat bicubic $b dB"
  echo "shipped $name: $s model $m dB > bicubic $b dB"
done
