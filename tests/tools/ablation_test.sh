#!/bin/sh
# ablation_test.sh: tools/ablation-table.sh on tiny random models and a 2-step LIIF-GAN checkpoint, with two
# small images standing in for Set5 and Set14: the table has a bicubic row and one row per model for each set,
# four figures per scale, the paper's Table 1, and a bad argument gets a one-line error and no table.
# usage: ablation_test.sh TOOL LIIF MKPNG MAKE_RANDOM_MODEL
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
tool=$(abs "$1") liif=$(abs "$2") mkpng=$(abs "$3") mkmodel=$(abs "$4")
work=$(mktemp -d /tmp/liif-ablation-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL ablation: $*"; exit 1; }

mkdir -p bench/Set5 bench/Set14
"$mkpng" bench/Set5/a.png 96 80 3 8 gradient && "$mkpng" bench/Set5/b.png 90 84 3 8 || fail mkpng
"$mkpng" bench/Set14/a.png 100 76 3 8 gradient && "$mkpng" bench/Set14/b.png 84 96 3 8 || fail mkpng
mkdir data && "$mkpng" data/a.png 96 80 3 8 gradient && "$mkpng" data/b.png 72 64 3 8 || fail mkpng
"$mkmodel" liif.safetensors liif 8 2 16 || fail make_random_model
"$mkmodel" gan.safetensors liif-gan 8 2 16 || fail make_random_model
"$mkmodel" gans.safetensors liif-gan-s 8 2 16 || fail make_random_model
printf '[train]\ndata = data\noutput = ck\ninit_from = gan.safetensors\nvariant = liif-gan\nw_per = 0\nbatch = 2\ninp_size = 16\npatch = 16\nscale_max = 2\nsteps = 2\ncheckpoint_every = 2\nthreads = 2\ndisc_nf = 4\ndisc_hidden = 8\n' > run.ini
"$liif" train --config run.ini 2> train.err || { cat train.err; fail "liif train"; }

export LIIF="$liif" LIIF_BENCH="$work/bench"
"$tool" out/ablation.md LIIF=liif.safetensors LIIF-GAN=gan.safetensors LIIF-GAN-S=gans.safetensors \
  LIIF-GAN-ckpt=ck/last.safetensors > run.out 2> run.err || { cat run.err; fail "exit $?"; }
cat out/ablation.md
num='[0-9]+\.[0-9]+'
cell="$num / $num / $num / $num / ($num|-)"
for s in Set5 Set14; do
  grep -q "^## $s\$" out/ablation.md || fail "no $s section"
  grep -q '^| model | x2 | x4 | x6 |$' out/ablation.md || fail "header"
  for row in bicubic LIIF LIIF-GAN LIIF-GAN-S LIIF-GAN-ckpt; do
    [ "$(grep -Ec "^\| $row \| $cell \| $cell \| $cell \|\$" out/ablation.md)" -eq 2 ] ||
      fail "row $row: not one per set with five figures at each scale"
  done
  [ -f "out/ablation-eval/LIIF-GAN-$s/table.csv" ] && [ -f "out/ablation-eval/LIIF-GAN-$s/strip_x4.png" ] ||
    fail "no per-model table and strips for $s"
done
[ "$(grep -c '^| bicubic |' out/ablation.md)" -eq 2 ] && [ "$(grep '^| bicubic |' out/ablation.md | sort -u | wc -l)" -eq 2 ] ||
  fail "the two sets' bicubic rows are the same: one set measured twice?"
grep -q '^| LIIF-GAN | 32.25 / 0.913 / 0.024 |' out/ablation.md || fail "no paper Table 1"
[ -f out/ablation-eval/LIIF-GAN-ckpt.safetensors ] || fail "the checkpoint was not exported"

# errors: a missing model (one line, exit 1, no table), a bad argument (exit 2)
"$tool" out/bad.md LIIF=missing.safetensors > /dev/null 2> err.txt
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q "missing.safetensors" err.txt || fail "missing model: exit $rc"
[ ! -e out/bad.md ] || fail "a table was written despite the error"
"$tool" out/bad.md liif.safetensors > /dev/null 2>&1
[ $? -eq 2 ] || fail "an argument without NAME= was accepted"
echo "PASS ablation: 2 sets x 5 rows x 3 scales, Table 1, errors"
