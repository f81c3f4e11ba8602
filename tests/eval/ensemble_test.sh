#!/bin/sh
# ensemble_test.sh: `liif eval --ensemble` with the shipped model on two Set5 photos (bird, butterfly) at x4: the
# self-ensemble's PSNR is above the plain model's by at least 0.1 dB (+0.35 measured, 2026-12-07: the mean of the
# input's 8 turns is closer to the original than one of them), and the table says it is the ensemble. Skipped (77)
# without the Set5 folder.
# usage: ensemble_test.sh LIIF MODEL SET5_DIR
set -u
LIIF=$1 MODEL=$2 SET5=$3
fail() { echo "FAIL [ensemble]: $*" >&2; exit 1; }
[ -d "$SET5" ] || { echo "SKIP [ensemble]: no Set5 folder ($SET5)" >&2; exit 77; }
[ -f "$MODEL" ] || fail "no such file: $MODEL"
T=$(mktemp -d "${TMPDIR:-/tmp}/liif-ensemble.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
mkdir "$T/data"
for f in bird butterfly; do ln -s "$SET5/$f.png" "$T/data/$f.png" || fail "no $f.png in $SET5"; done
for how in plain ensemble; do
  flag=
  [ "$how" = ensemble ] && flag=--ensemble
  "$LIIF" eval --model "$MODEL" --data "$T/data" --scales 4 --strips 0 --out "$T/$how" -q $flag \
    > "$T/$how.md" 2> "$T/stderr" || { cat "$T/stderr" >&2; fail "liif eval $flag failed"; }
  cat "$T/$how.md"
done
grep -q '^| model (self-ensemble) |' "$T/ensemble.md" || fail "the ensemble's table does not say so"
grep -q '^| model |' "$T/plain.md" || fail "the plain table names its row otherwise"
p=$(awk -F, '$1 == "model" { print $2 }' "$T/plain/table.csv")
e=$(awk -F, '$1 == "model" { print $2 }' "$T/ensemble/table.csv")
[ -n "$p" ] && [ -n "$e" ] || fail "no x4 PSNR in table.csv"
awk -v p="$p" -v e="$e" 'BEGIN { exit !(e >= p + 0.1) }' || fail "x4: ensemble $e dB, plain $p dB: want at least +0.1"
echo "ensemble: x4 PSNR $e dB against the plain model's $p dB"
