#!/bin/sh
# eval_set5_test.sh: `liif eval` on the Set5 benchmark at x4, benchmark protocol (Y channel, shave 4),
# with any model (a small random one: its row means nothing): the bicubic row's x4 PSNR must be
# 28.43 dB within 0.05 dB, and bicubic keeps a fraction of the fine detail (sharpness). Skipped (77)
# without the Set5 folder.
# usage: eval_set5_test.sh LIIF MODEL SET5_DIR
set -u
LIIF=$1 MODEL=$2 SET5=$3
fail() { echo "FAIL [eval-set5-bicubic]: $*" >&2; exit 1; }
[ -d "$SET5" ] || { echo "SKIP [eval-set5-bicubic]: no Set5 folder ($SET5)" >&2; exit 77; }
[ -f "$MODEL" ] || fail "no test model ($MODEL)"
T=$(mktemp -d "${TMPDIR:-/tmp}/liif-eval-set5.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

"$LIIF" eval --model "$MODEL" --data "$SET5" --scales 4 --protocol benchmark --strips 0 --out "$T/out" -q \
  > "$T/stdout" 2> "$T/stderr" || { cat "$T/stderr" >&2; fail "liif eval failed"; }
cat "$T/stdout"
n=$(($(wc -l < "$T/out/per_image.csv") - 1))
[ "$n" -eq 10 ] || fail "per_image.csv has $n rows, want 5 images x 2 methods"
p=$(awk -F, '$1 == "bicubic" { print $2 }' "$T/out/table.csv")
[ -n "$p" ] || fail "no bicubic row in table.csv"
awk -v p="$p" 'BEGIN { d = p - 28.43; if (d < 0) d = -d; exit !(d <= 0.05) }' ||
  fail "bicubic x4 PSNR $p dB, want 28.43 +- 0.05"
echo "eval-set5-bicubic: bicubic x4 PSNR $p dB (want 28.43 +- 0.05)"
# Detail figures on real photos: bicubic at x4 blurs, so it keeps well under half of the original's
# fine detail (sharpness 0.130 measured, 2026-12-05), and its detail PSNR is finite and above its PSNR
# (the high-pass of the error is a part of the error).
k=$(awk -F, '$1 == "bicubic" { print $4 }' "$T/out/table.csv")
d=$(awk -F, '$1 == "bicubic" { print $5 }' "$T/out/table.csv")
head -n 1 "$T/out/table.csv" | grep -q '^method,x4 psnr,x4 ssim,x4 sharpness,x4 detail psnr,x4 grid$' || fail "table.csv header"
awk -v k="$k" -v d="$d" -v p="$p" 'BEGIN { exit !(k > 0.05 && k < 0.3 && d > p && d < 60) }' ||
  fail "bicubic x4 sharpness $k (want 0.05-0.3), detail PSNR $d (want above PSNR $p)"
echo "eval-set5-bicubic: bicubic x4 sharpness $k, detail PSNR $d dB"
# The grid score on photographs: bicubic repeats nothing per LR cell, so it is near 1 (0.77 measured, 2026-12-07)
g=$(awk -F, '$1 == "bicubic" { print $6 }' "$T/out/table.csv")
awk -v g="$g" 'BEGIN { exit !(g > 0.5 && g < 1.6) }' || fail "bicubic x4 grid score $g, want 0.5-1.6"
echo "eval-set5-bicubic: bicubic x4 grid score $g"
