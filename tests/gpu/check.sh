#!/bin/sh
# tests/gpu/check.sh: the whole GPU check on a machine with an NVIDIA GPU, run from tools/gpu-pack.sh's pack (nothing
# is built there): the CUDA inference test, the GPU training test (conv ops, whole steps of every decoder variant,
# the scatter's feature gradient, resume on GPU and CPU, all against the CPU reference), the GAN training test (D ops,
# whole LIIF-GAN steps of the three variants, the golden GAN step's VGG-free parts, resume), the training step against
# the PyTorch goldens on the GPU, the CLI on the GPU, the inference and training benchmarks, a 300-step
# `liif train --device cuda` whose loss must fall, then resumed, and 100 LIIF-GAN steps (w_per = 0) from the golden
# LIIF model, resumed on the GPU and, for one step, on the CPU. Prints every figure; exit 0 only if all passed.
# usage: tests/gpu/check.sh [PACK_DIR]   (default .gpu, carried as [.gpu/bin, .gpu/golden, .gpu/bench]; PACK_DIR/photos,
# when present, is the smoke run's data, else synthetic images)
# Designed to take about 3 minutes on one H200, leaving most of a 10-minute device call to tools/gpu-train.sh. Every
# command runs under a timeout (a hung kernel costs two minutes, not the call), and the log goes to $OUT as it grows.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PACK=${1:-$ROOT/.gpu}
W=${TMPDIR:-/tmp}/liif-gpu
LOG=${OUT:-$W}/gpu-check.log
status=0
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }
fail() { echo "CHECK FAILED: $1"; status=1; }

rm -rf "$W" && mkdir -p "$W" "$(dirname "$LOG")"
tar xzf "$PACK/bin/liif-gpu.tar.gz" -C "$W" || { echo "no pack at $PACK (run tools/gpu-pack.sh first)"; exit 1; }
export LD_LIBRARY_PATH="$W/liif/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LIIF_CUDA_MODULE="$W/liif/lib/liif-cuda.so"
BIN=$W/liif/bin
GOLDEN=$PACK/golden
{
step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi not available"
if ldd "$BIN/liif" "$LIIF_CUDA_MODULE" | grep "not found"; then fail "a library the pack needs is missing"; fi

step "CUDA inference test (ops and models vs the CPU reference; the inference goldens are not carried)"
timeout 300 "$BIN/test-cuda" "$W/no-golden" > "$W/cuda.log" 2>&1
rc=$?
grep -E "FAIL|device:|golden|ok$" "$W/cuda.log" | tail -30
echo "new-kernel checks passed: implicit-GEMM convolution $(grep -c 'implicit GEMM ran.* ok$' "$W/cuda.log") (want 16 on a GPU)," \
     "fused decoder $(grep -c 'fused decoder ran.* ok$' "$W/cuda.log") (want 7: 4 bf16, 3 TF32)," \
     "LIIF-GAN's decoders in one pass $(grep -c 'one pass equal two launches.* ok$' "$W/cuda.log") (want 2)"
[ $rc -eq 0 ] || fail "test-cuda exited $rc"

step "GPU training test (ops, steps, resume vs the CPU reference)"
timeout 300 "$BIN/test-cuda-train" > "$W/cuda-train.log" 2>&1
rc=$?
cat "$W/cuda-train.log"
echo "implicit-GEMM weight gradient checks passed: $(grep -c 'implicit weight gradient ran.* ok$' "$W/cuda-train.log") (want 3)"
[ $rc -eq 0 ] || fail "test-cuda-train exited $rc (77 = skipped: no usable GPU)"

step "GPU GAN training test (D ops, VGG19, LIIF-GAN steps, gradient blocking, golden step, resume vs the CPU)"
timeout 300 "$BIN/test-cuda-train-gan" "$GOLDEN" > "$W/cuda-train-gan.log" 2>&1
rc=$?
grep -vE "^grad|^  grad " "$W/cuda-train-gan.log"
grep -E "^(grad|  grad ).*FAIL" "$W/cuda-train-gan.log" | head -40
[ $rc -eq 0 ] || fail "test-cuda-train-gan exited $rc (77 = skipped: no usable GPU)"

step "training step on the GPU against the PyTorch goldens"
timeout 120 "$BIN/test-train-golden" "$GOLDEN" cuda > "$W/golden.log" 2>&1
rc=$?
grep -vE "^  (grad\.|encoder|imnet)" "$W/golden.log"
[ $rc -eq 0 ] || fail "test-train-golden cuda exited $rc"

step "CLI on the GPU"
"$BIN/mkpng" "$W/in.png" 240 135 3 8
for dev in cuda cpu; do
    t0=$(date +%s%N)
    timeout 120 "$BIN/liif" upscale "$W/in.png" "$W/out-$dev.png" --scale 4 --device $dev --quiet \
        --model "$GOLDEN/liif-edsr-baseline/weights.safetensors" || fail "liif upscale --device $dev"
    echo "liif upscale 240x135 x4 --device $dev: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
# Bands on the GPU: the CPU backend gives the same bits whatever --band-rows (engine-bands); cuBLAS picks its
# kernels by the matrix sizes, so the GPU may not. Reported, and at most one 8-bit level allowed.
timeout 120 "$BIN/liif" upscale "$W/in.png" "$W/out-bands.png" --scale 4 --device cuda --quiet --band-rows 7 \
    --model "$GOLDEN/liif-edsr-baseline/weights.safetensors" || fail "liif upscale --band-rows 7 --device cuda"
bdiff=$("$BIN/pnginfo" "$W/out-bands.png" versus "$W/out-cuda.png") # "MAX MEAN"
bmax=${bdiff%% *} bmean=${bdiff#* }
echo "cuda, bands of 7 rows vs one band: $(cmp -s "$W/out-bands.png" "$W/out-cuda.png" && echo identical bytes || echo "max $bmax, mean $bmean levels")"
awk -v m="${bmax:-99}" 'BEGIN { exit !(m <= 1) }' || fail "bands on the GPU differ by $bmax levels"
# JPEG in and out on the device's libjpeg
timeout 120 "$BIN/liif" upscale "$W/out-cuda.png" "$W/x.jpg" --scale 0.5 --device cuda --quiet \
    --model "$GOLDEN/liif-edsr-baseline/weights.safetensors" &&
    timeout 120 "$BIN/liif" upscale "$W/x.jpg" "$W/x2.png" --scale 2 --device cuda --quiet \
        --model "$GOLDEN/liif-edsr-baseline/weights.safetensors" &&
    echo "JPEG out and in: $("$BIN/pnginfo" "$W/x.jpg" image) -> $("$BIN/pnginfo" "$W/x2.png" image)" ||
    fail "liif upscale with JPEG on the device"

step "CLI wall time: 1920x1080 -> 3840x2160 (--scale 2), beside bench-cuda's time of the same upscale below"
IN=$PACK/bench/photo-1920x1080.png
[ -f "$IN" ] || { IN=$W/big.png; "$BIN/mkpng" "$IN" 1920 1080 3 8; echo "(no photo in the pack: a synthetic gradient, which compresses better than a photo)"; }
for prec in bf16 tf32 fp32; do
    timeout 120 "$BIN/liif" upscale "$IN" "$W/big-$prec.png" --scale 2 --device cuda --precision $prec --quiet --timing \
        --model "$GOLDEN/liif-edsr-baseline/weights.safetensors" > "$W/timing-$prec.txt" || fail "liif upscale 4K --precision $prec"
    echo "--precision $prec: $(cat "$W/timing-$prec.txt")"
done
echo "output $(stat -c %s "$W/big-fp32.png" 2>/dev/null) bytes; this machine has $(nproc) processors for the PNG writer"

step "benchmarks"
if [ -f "$PACK/bench/photo-1920x1080.png" ]; then
    # the shipped model (the official shape: the same FLOPs as the random one), so the PSNR lines are a real model's
    timeout 150 "$BIN/bench-cuda" "$ROOT/data/models/default.safetensors" --reps 2 --photo "$PACK/bench/photo-1920x1080.png" ||
        fail "bench-cuda"
else
    timeout 120 "$BIN/bench-cuda" --reps 2 || fail "bench-cuda"
fi
timeout 120 "$BIN/bench-train-cuda" --steps 40 || fail "bench-train-cuda"

step "300 steps of liif train --device cuda, then resumed for 20"
D=$PACK/photos
if [ ! -d "$D" ]; then
    D=$W/data && mkdir -p "$D"
    for i in 1 2 3 4; do "$BIN/mkpng" "$D/p$i.png" 300 260 3 8; done
fi
mkdir -p "$W/val" && "$BIN/mkpng" "$W/val/v1.png" 200 160 3 8 && "$BIN/mkpng" "$W/val/v2.png" 180 150 3 8
cat > "$W/smoke.ini" <<EOF
[train]
data = $D
output = $W/smoke
steps = 300
checkpoint_every = 300
seed = 3
val_data = $W/val
val_scales = 2,4
val_every = 150
EOF
timeout 120 "$BIN/liif" train --config "$W/smoke.ini" --device cuda || fail "liif train --device cuda"
awk -F, 'NR>=2 && NR<=21 {a+=$3} NR>=282 && NR<=301 {b+=$3} NR>=12 {t+=$5; n++}
     END {printf "smoke: mean L1 steps 1-20 %.4f, steps 281-300 %.4f; %.2f ms per step with the data pipeline\n", a/20, b/20, 1000*t/n;
          exit !(b < a)}' "$W/smoke/log.csv" || fail "the loss did not fall"
sed -i 's/steps = 300/steps = 320/' "$W/smoke.ini"
timeout 120 "$BIN/liif" train --config "$W/smoke.ini" --resume "$W/smoke/last.safetensors" --device cuda || fail "resume on the GPU"
[ "$(wc -l < "$W/smoke/log.csv")" -eq 321 ] || fail "the resumed run's log has $(wc -l < "$W/smoke/log.csv") lines, want 321"
cat "$W/smoke/val.csv"
[ "$(wc -l < "$W/smoke/val.csv")" -eq 9 ] || fail "val.csv (PSNR on the GPU at steps 0, 150, 300, 320) has $(wc -l < "$W/smoke/val.csv") lines, want 9"

step "100 LIIF-GAN steps (w_per = 0) on the GPU from the golden LIIF model, resumed on the GPU and on the CPU"
cat > "$W/gan.ini" <<EOF
[train]
data = $D
output = $W/gan
init_from = $GOLDEN/liif-edsr-baseline/weights.safetensors
variant = liif-gan
w_per = 0
steps = 100
checkpoint_every = 50
seed = 5
EOF
# this run validates on the GPU at details 0 and 1 (what a LIIF-GAN leg of tools/gpu-train.sh logs)
{ cat "$W/gan.ini"; printf 'val_data = %s\nval_scales = 4\nval_every = 50\n' "$W/val"; } > "$W/gan-val.ini"
timeout 120 "$BIN/liif" train --config "$W/gan-val.ini" --device cuda || fail "liif train liif-gan --device cuda"
cat "$W/gan/val.csv"
awk -F, 'NR > 1 {n++; if ($4 !~ /^[0-9.]+$/ || $5 !~ /^[0-9.]+$/ || $6 !~ /^[0-9.]+$/) bad = 1; if ($1 == 100) p[$3] = $4}
         END {exit bad || n != 6 || !(0 in p) || !(1 in p) || p[0] == p[1]}' "$W/gan/val.csv" ||
    fail "the GAN run's val.csv is not steps 0, 50 and 100 at details 0 and 1 with finite, distinct figures"
awk -F, 'NR == 1 {next} {for (i = 1; i <= 10; i++) if (i != 2 && i != 4 && i != 5 && $i !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) bad = 1}
     NR == 2 {first = $3} {last = $3} NR >= 12 {t += $5; n++}
     END {printf "gan: %d steps, loss_g %s at step 1, %s at step 100; %.1f ms per step with the data pipeline\n",
                 NR - 1, first, last, n ? 1000 * t / n : 0; exit bad || NR != 101}' "$W/gan/log.csv" ||
    fail "the GAN log is not 100 finite steps"
[ -f "$W/gan/ckpt-00000050.safetensors" ] && [ -f "$W/gan/last.safetensors" ] || fail "no GAN checkpoints"
# step 51 again from the step-50 checkpoint, on the GPU and on the CPU: the same batch, nearly the same losses
for dev in cuda cpu; do
    sed "s|^output = .*|output = $W/gan-$dev|; s/^steps = .*/steps = 51/" "$W/gan.ini" > "$W/gan-$dev.ini"
    timeout 120 "$BIN/liif" train --config "$W/gan-$dev.ini" --resume "$W/gan/ckpt-00000050.safetensors" --device $dev ||
        fail "resuming the GAN run on $dev"
    tail -n 1 "$W/gan-$dev/log.csv" | awk -F, -v dev=$dev -v ref="$(sed -n 52p "$W/gan/log.csv")" '
        BEGIN {split(ref, r, ",")}
        {printf "step %s resumed on %s: loss %s (straight %s), l1 %s (%s), adv %s (%s), d_real %s (%s), d_fake %s (%s)\n",
                $1, dev, $3, r[3], $6, r[6], $7, r[7], $9, r[9], $10, r[10]
         if ($1 != 51) exit 1
         split("3 6 7 9 10", c, " ")
         for (k in c) {d = $c[k] - r[c[k]]; if (d < 0) d = -d; m = r[c[k]] < 0 ? -r[c[k]] : r[c[k]]; if (d > 2e-3 * m + 2e-6) exit 1}}' ||
        fail "step 51 resumed on $dev differs from the straight run's"
done
# a run whose checkpoint cannot come back goes on from its networks alone (liif export --with-disc --fp16, what
# tools/gpu-train.sh returns): steps 51 and 52 on the GPU, step 51 drawing the straight run's batch
timeout 120 "$BIN/liif" export --with-disc --fp16 "$W/gan/ckpt-00000050.safetensors" "$W/gan-nets.safetensors" ||
    fail "liif export --with-disc --fp16"
sed "s|^output = .*|output = $W/gan-nets|; s/^steps = .*/steps = 52/" "$W/gan.ini" > "$W/gan-nets.ini"
timeout 120 "$BIN/liif" train --config "$W/gan-nets.ini" --resume "$W/gan-nets.safetensors" --device cuda ||
    fail "resuming the GAN run from its fp16 networks on the GPU"
awk -F, -v ref="$(sed -n 52p "$W/gan/log.csv")" 'BEGIN {split(ref, r, ",")}
    NR == 2 {printf "from the fp16 networks: step %s l1 %s (straight %s)\n", $1, $6, r[6]
             d = $6 - r[6]; if (d < 0) d = -d; if ($1 != 51 || d > 5e-3 * r[6]) bad = 1}
    END {exit bad || NR != 3}' "$W/gan-nets/log.csv" ||
    fail "the run from its networks does not go on at step 51 with the straight run's batch"

step "20 LIIF-GAN steps with the perceptual loss (w_per = 1, a random full-width VGG19) on the GPU"
"$BIN/mkvgg" "$W/vgg19.safetensors" 64 3 || fail "mkvgg"
{ grep -vE '^(output|steps|w_per) =' "$W/gan.ini"; printf 'output = %s\nsteps = 20\nw_per = 1\nvgg = %s\n' "$W/gan-per" "$W/vgg19.safetensors"; } > "$W/gan-per.ini"
timeout 120 "$BIN/liif" train --config "$W/gan-per.ini" --device cuda || fail "liif train liif-gan --device cuda with w_per = 1"
awk -F, 'NR == 1 {next} !($8 > 0) || $3 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ {bad = 1} NR >= 7 {t += $5; n++}
     END {printf "gan with VGG19: %d steps, per %s at the last; %.1f ms per step with the data pipeline\n", NR - 1, $8,
                 n ? 1000 * t / n : 0; exit bad || NR != 21}' "$W/gan-per/log.csv" ||
    fail "the w_per = 1 log is not 20 finite steps with a perceptual loss"

step "summary"
[ $status -eq 0 ] && echo "GPU CHECK PASSED" || echo "GPU CHECK FAILED"
exit $status
} 2>&1 | tee "$LOG"
grep -q "^GPU CHECK PASSED" "$LOG"
