#!/bin/sh
# shipped_model_test.sh: the plain LIIF model shipped as data/models/MODEL beats bicubic on Set5 at x2 and
# x4 (PSNR, benchmark protocol: Y channel, shave ceil(s), mean over the 5 images), and restores more fine
# detail (sharpness and detail PSNR above bicubic's), with `liif eval`.
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
# table.csv: method, then per scale "xS psnr", "xS ssim", "xS sharpness", "xS detail psnr" (found by name)
col() { awk -F, -v m="$1" -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
        NR > 1 && $1 == m && c { print $c }' "$T/out/table.csv"; }
for s in x2 x4; do
  b=$(col bicubic "$s psnr") m=$(col model "$s psnr")
  [ -n "$b" ] && [ -n "$m" ] || { cat "$T/out/table.csv" >&2; fail "no $s PSNR in table.csv"; }
  awk -v b="$b" -v m="$m" 'BEGIN { exit !(m > b) }' || fail "$s: model $m dB does not beat bicubic $b dB"
  echo "shipped $name: $s model $m dB > bicubic $b dB"
  # a trained model restores fine detail that bicubic blurs away, in the right place
  b=$(col bicubic "$s sharpness") m=$(col model "$s sharpness")
  awk -v b="$b" -v m="$m" 'BEGIN { exit !(m > b) }' || fail "$s: model sharpness $m not above bicubic's $b"
  bd=$(col bicubic "$s detail psnr") md=$(col model "$s detail psnr")
  awk -v b="$bd" -v m="$md" 'BEGIN { exit !(m > b) }' || fail "$s: model detail PSNR $md not above bicubic's $bd"
  echo "shipped $name: $s sharpness $m > bicubic $b, detail PSNR $md > bicubic $bd"
done
