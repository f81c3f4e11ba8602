#!/bin/sh
# gpu_train_test.sh GPU_TRAIN LIIF MKPNG MAKE_RANDOM_MODEL: tools/gpu-train.sh, the script that runs a training leg on a
# lent GPU machine, here on the CPU (LIIF_TRAIN_DEVICE=cpu) with the build's liif in place of the pack: a LIIF-GAN
# leg whose checkpoint is "too big to come back" (LIIF_RETURN_MAX_MIB=0) returns its networks in float16 parts, and a
# second leg resumed from them goes on with the run's step count and returns its val.csv and the float16 generators of
# the checkpoints it wrote (not those of an earlier leg on the same machine), newest first.
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
script=$(abs "$1") liif=$(abs "$2") mkpng=$(abs "$3") mkmodel=$(abs "$4")
work=$(mktemp -d /tmp/liif-gpu-train-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL gpu-train: $*"; exit 1; }
mkdir -p data tmp/liif-gpu/liif/bin out1 out2
ln -s "$liif" tmp/liif-gpu/liif/bin/liif # what the pack would unpack
"$mkpng" data/a.png 96 80 3 8 gradient && "$mkpng" data/b.png 72 64 3 8 gradient || fail mkpng
mkdir val && "$mkpng" val/v.png 64 48 3 8 gradient || fail mkpng
"$mkmodel" gan.safetensors liif-gan 8 2 16 || fail make_random_model
printf '[train]\ndata = data\noutput = %s/run\ninit_from = gan.safetensors\nvariant = liif-gan\nw_per = 0\nw_fm = 1\nbatch = 2\ninp_size = 16\npatch = 16\nscale_max = 2\nsteps = 5\ncheckpoint_every = 2\nval_data = val\nval_scales = 2\nval_every = 2\nthreads = 2\nseed = 3\ndisc_nf = 4\ndisc_hidden = 8\n' "$work" > run.ini
export TMPDIR="$work/tmp" LIIF_TRAIN_DEVICE=cpu LIIF_RETURN_MAX_MIB=0
# leg 1: stops at its time limit (0.01 s: after one step) or at step 5; without its validation folder (not packed),
# it trains all the same
mv val val-away
OUT=$work/out1 sh "$script" run.ini 0.01 > leg1.txt 2>&1 || { cat leg1.txt; fail "leg 1"; }
mv val-away val
grep -q "no validation folder val here" leg1.txt || { cat leg1.txt; fail "leg 1 did not say it had no validation"; }
grep -q "its networks come back in float16 without Adam moments" leg1.txt || { cat leg1.txt; fail "no networks returned"; }
[ -f out1/model.safetensors ] && [ -f out1/log.csv ] && [ -f out1/last.safetensors.part-00 ] || fail "leg 1 returned $(ls out1)"
n1=$(tail -n 1 out1/log.csv | cut -d, -f1)
cat out1/last.safetensors.part-* > nets.safetensors
grep -aq 'adam\.' nets.safetensors && fail "the returned networks hold Adam moments"
grep -aq '"dtype":"F16"' nets.safetensors || fail "the returned networks are not float16"
# leg 2 on a "fresh machine" (the run's folder gone) from the returned networks: the same run goes on
rm -rf run
mkdir run && cp nets.safetensors run/ckpt-00000000.safetensors # as if an earlier leg on this machine had left it
OUT=$work/out2 sh "$script" run.ini 600 nets.safetensors > leg2.txt 2>&1 || { cat leg2.txt; fail "leg 2"; }
grep -q "the run goes on from step $n1 with fresh ones" leg2.txt || { cat leg2.txt; fail "leg 2 did not go on from step $n1"; }
first=$(sed -n 2p out2/log.csv | cut -d, -f1) last=$(tail -n 1 out2/log.csv | cut -d, -f1)
[ "$first" -eq $((n1 + 1)) ] && [ "$last" -eq 5 ] || { cat out2/log.csv; fail "leg 2 logged steps $first..$last, want $((n1 + 1))..5"; }
# leg 2's validation and its checkpoints' generators came back: steps 5, 4, 2 (those after n1), not the earlier leg's
[ -f out2/val.csv ] && [ "$(tail -n 1 out2/val.csv | cut -d, -f1,3)" = "5,1" ] || fail "no val.csv of steps up to 5 (detail 1)"
want=""
for st in 5 4 2; do [ "$st" -gt "$n1" ] && want="$want $(printf 'gen-%08d.safetensors' "$st")"; done # checkpoint_every 2, last 5
mkdir snaps && cat out2/snapshots.tar.part-* | tar xf - -C snaps || { ls -l out2; fail "no snapshots.tar"; }
got=$(ls snaps | sort -r | tr '\n' ' ')
[ "$got" = "$(echo $want) " ] || fail "snapshots are '$got', want '$(echo $want)'"
for f in snaps/*; do
  grep -aq '"dtype":"F16"' "$f" && grep -aq imnet2 "$f" || fail "$f is not a float16 two-decoder generator"
  grep -aq 'disc\.' "$f" && fail "$f holds the discriminator"
done
"$liif" upscale -q --model "snaps/$(ls snaps | tail -1)" data/b.png big.png --scale 2 || fail "a snapshot does not upscale"
grep -q "the generators of steps $(echo "$want" | sed 's/gen-0*//g; s/\.safetensors//g' | sed 's/^ //')" leg2.txt ||
  { cat leg2.txt; fail "leg 2 did not say which snapshots it returned"; }
echo "gpu-train.sh: leg 1 stopped at step $n1 and returned fp16 networks; leg 2 went on with steps $first..$last and returned the generators of steps $(echo $want | sed 's/gen-0*//g; s/\.safetensors//g')"
