#!/bin/sh
# eval_set5_test.sh: `liif eval` on the Set5 benchmark at x4, benchmark protocol (Y channel, shave 4),
# with any model (a small random one: its row means nothing): the bicubic row's x4 PSNR must be
# 28.43 dB within 0.05 dB. Skipped (77) without the Set5 folder.
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
