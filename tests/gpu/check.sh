#!/bin/sh
# tests/gpu/check.sh: the CUDA backend's whole check on a machine with an NVIDIA GPU, from a clean checkout:
# configure with -Dcuda=enabled, build, run the CUDA test (every op and the whole model against the CPU
# reference and the PyTorch goldens), the engine's CLI on the GPU, and the 1920x1080 -> 3840x2160 benchmark
# (fp32 and TF32, beside cuBLAS's sgemm rate). Prints every figure; exit status 0 only if all passed.
# usage: tests/gpu/check.sh [BUILD_DIR]   (default build-gpu-check; env GOLDEN_DIR, SANITIZER=1 for compute-sanitizer)
# Designed to finish in under 8 minutes on one H200.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$ROOT/build-gpu-check}
GOLDEN=${GOLDEN_DIR:-$ROOT/../shared/golden}
LOG=${OUT:-$B}/gpu-check.log
PATH=$PATH:/usr/local/cuda/bin
status=0
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }
fail() { echo "CHECK FAILED: $1"; status=1; }

mkdir -p "$(dirname "$LOG")"
{
step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi not available"
nvcc --version | tail -2

step "configure ($B)"
rm -rf "$B"
# without GLib there is no CLI: retry without it rather than stop
meson setup "$B" "$ROOT" -Dcuda=enabled -Dgimp=disabled -Dgolden_dir="$GOLDEN" >"$B.setup.log" 2>&1 ||
    { rm -rf "$B"; meson setup "$B" "$ROOT" -Dcuda=enabled -Dgimp=disabled -Dcli=disabled -Dgolden_dir="$GOLDEN" \
        >"$B.setup.log" 2>&1; } || { cat "$B.setup.log"; fail "meson setup"; }
grep -E "nvcc|golden" "$B.setup.log"

step "build"
t0=$(date +%s)
ninja -C "$B" >"$B.build.log" 2>&1 || fail "build"
grep -iE "warning|error" "$B.build.log" | head -40
echo "build took $(( $(date +%s) - t0 )) s; module: $(ls -l "$B/core/cuda/liif-cuda.so" 2>&1)"
ldd "$B/core/cuda/liif-cuda.so" | grep -E "cublas|cudart|not found"

step "CUDA test (ops vs CPU reference, model vs goldens)"
if [ "${SANITIZER:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --print-limit 20 "$B/tests/test-cuda" "$GOLDEN" || fail "compute-sanitizer test-cuda"
else
    "$B/tests/test-cuda" "$GOLDEN"
    rc=$?
    [ $rc -eq 0 ] || fail "test-cuda exited $rc (77 = skipped: no usable GPU)"
fi

step "CLI tests, whose default device (auto) is CUDA here"
if [ -x "$B/ui/cli/liif" ]; then
    meson test -C "$B" --no-rebuild --print-errorlogs cli-err-cuda cli-note-and-quiet cli-golden-96x80 \
        cli-golden-61x50-bands cli-bands cli-detail >"$B.cli.log" 2>&1 || fail "CLI tests"
    grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped):" "$B.cli.log"
else
    echo "no CLI in this build (GLib missing): CLI tests skipped"
fi

step "CLI on the GPU"
T=$(mktemp -d)
if [ -x "$B/ui/cli/liif" ] && [ -f "$GOLDEN/liif-edsr-baseline/weights.safetensors" ]; then
    "$B/tests/mkpng" "$T/in.png" 480 270 3 8
    for dev in cuda cpu; do
        t0=$(date +%s%N)
        "$B/ui/cli/liif" upscale "$T/in.png" "$T/out-$dev.png" --scale 4 --device $dev --quiet \
            --model "$GOLDEN/liif-edsr-baseline/weights.safetensors" || fail "liif --device $dev"
        echo "liif upscale 480x270 x4 --device $dev: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    done
    cmp -s "$T/out-cuda.png" "$T/out-cpu.png" && echo "cuda and cpu PNGs are identical" ||
        echo "cuda and cpu PNGs differ (8-bit rounding of values within 1e-5 may flip a few)"
fi
rm -rf "$T"

step "benchmark 1920x1080 -> 3840x2160"
"$B/tests/bench-cuda" --reps 3 || fail "bench-cuda"

step "summary"
[ $status -eq 0 ] && echo "GPU CHECK PASSED" || echo "GPU CHECK FAILED"
exit $status
} 2>&1 | tee "$LOG"
# the status of the block, not of tee
grep -q "^GPU CHECK PASSED" "$LOG"
