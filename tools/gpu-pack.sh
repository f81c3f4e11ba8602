#!/bin/bash
# tools/gpu-pack.sh: packs what a GPU machine needs to run the CUDA tests, the benchmarks and `liif train --device cuda`
# without building there. The GPU image this project is lent (Ubuntu 24.04, CUDA 13 at /usr/local/cuda with cuBLAS,
# libpng, libjpeg-turbo 8) has no oneDNN, GLib, meson or package registry, so this machine builds (nvcc compiles
# here) and the tarball carries the binaries, the CUDA module and every shared library they load that is not part
# of the C/C++ runtime or CUDA itself. tests/gpu/check.sh unpacks and runs it.
#
#   tools/gpu-pack.sh [OUT_DIR]      (default .gpu, ignored by git; build folder $LIIF_GPU_BUILD, default build)
#
# OUT_DIR gets four folders, because a device call carries at most 64 MiB with the working tree and all four together
# are more than that:
#   bin/     the tarball (binaries, CUDA module, libraries)                       every call
#   golden/  the tensors the GPU tests read (from ../shared/golden: the training    tests/gpu/check.sh
#            step's, the LIIF-GAN step's and the model's weights)
#   bench/   one training photo as a 1920x1080 PNG (check.sh times the CLI on it)  tests/gpu/check.sh
#   photos/  with LIIF_PHOTOS: the training photos as JPEG (quality 95, 4:4:4)      tools/gpu-train.sh
#   val/     with LIIF_VAL: the held-out validation crops (make-photo-set.sh --val)  tools/gpu-train.sh
# so the check carries [OUT/bin, OUT/golden, OUT/bench] and a training leg [OUT/bin, OUT/photos, OUT/val]; the script prints the
# size of each set with the working tree and fails when one is over the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.gpu}
B=${LIIF_GPU_BUILD:-build}
GOLDEN=${GOLDEN_DIR:-../shared/golden}
PATH=$PATH:/usr/local/cuda/bin
command -v nvcc >/dev/null || { echo "gpu-pack: nvcc not found (CUDA toolkit at /usr/local/cuda?)" >&2; exit 1; }
[ -f "$B/build.ninja" ] || meson setup "$B" -Dcuda=enabled >/dev/null
ninja -C "$B" >/dev/null
[ -f "$B/core/cuda/liif-cuda.so" ] || { echo "gpu-pack: $B has no CUDA module (meson configure $B -Dcuda=enabled)" >&2; exit 1; }
BINS="ui/cli/liif tests/test-cuda tests/test-cuda-train tests/test-cuda-train-gan tests/test-train-golden tests/bench-cuda tests/bench-train-cuda tests/mkpng tests/pnginfo tests/mkvgg"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/liif/bin" "$stage/liif/lib" "$OUT/bin"
for b in $BINS; do cp "$B/$b" "$stage/liif/bin/"; done
cp "$B/core/cuda/liif-cuda.so" "$stage/liif/lib/"
# the libraries they load, but the C/C++ runtime (newer on the GPU image) and CUDA's own (the toolkit's there)
skip='^(libc|libm|libpthread|libdl|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s|libcublas|libcublasLt|libcudart|libcuda|linux-vdso)\.so'
for f in "$stage"/liif/bin/* "$stage/liif/lib/liif-cuda.so"; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
  base=$(basename "$lib")
  echo "$base" | grep -Eq "$skip" || cp -L "$lib" "$stage/liif/lib/$base"
done
tar czf "$OUT/bin/liif-gpu.tar.gz" -C "$stage" liif
mkdir -p "$OUT/golden/liif-edsr-baseline" "$OUT/golden/liif-edsr-baseline-train"
cp "$GOLDEN/liif-edsr-baseline/weights.safetensors" "$OUT/golden/liif-edsr-baseline/"
cp "$GOLDEN/liif-edsr-baseline-train/"*.safetensors "$OUT/golden/liif-edsr-baseline-train/"
mkdir -p "$OUT/golden/components" # the LIIF-GAN step and the VGG19s (4.4 MB)
cp "$GOLDEN/components/"{gan_{weights,step,grads,after_adam},vgg19_{trunc8,full}}.safetensors "$OUT/golden/components/"
if [ -n "${LIIF_PHOTOS:-}" ]; then
  rm -rf "$OUT/photos" # exactly LIIF_PHOTOS's photos (an earlier pack's may include held-out ones)
  mkdir -p "$OUT/photos"
  for f in "$LIIF_PHOTOS"/*.png "$LIIF_PHOTOS"/*.jpg; do
    [ -e "$f" ] || continue
    n=$(basename "${f%.*}")
    if [ "${f##*.}" = jpg ]; then cp "$f" "$OUT/photos/$n.jpg"
    elif [ ! -e "$OUT/photos/$n.jpg" ]; then convert "$f" -quality 95 -sampling-factor 1x1 "$OUT/photos/$n.jpg"; fi
  done
  cp "$LIIF_PHOTOS/LICENSES.txt" "$OUT/photos/" 2>/dev/null || true
  # one photo as a 1920x1080 PNG, the input of check.sh's timed `liif upscale --scale 2` (a photo, because the PNG
  # encoder's time depends on how well the output compresses)
  for f in "$LIIF_PHOTOS"/*.png "$LIIF_PHOTOS"/*.jpg; do
    [ -e "$f" ] || continue
    mkdir -p "$OUT/bench"
    convert "$f" -resize '1920x1080^' -gravity center -extent 1920x1080 +repage "$OUT/bench/photo-1920x1080.png"
    break
  done
fi
if [ -n "${LIIF_VAL:-}" ]; then # as they are (PNG: the validation compares with exact pixels; 3 crops, about 3 MB)
  rm -rf "$OUT/val"
  mkdir -p "$OUT/val"
  cp "$LIIF_VAL"/*.png "$LIIF_VAL"/*.jpg "$OUT/val/" 2>/dev/null || true
  cp "$LIIF_VAL/LICENSES.txt" "$OUT/val/" 2>/dev/null || true
  ls "$OUT/val" | grep -Eq '\.(png|jpg)$' || { echo "gpu-pack: no PNG or JPEG images in $LIIF_VAL" >&2; exit 1; }
fi
echo "packed: $(du -sh "$OUT/bin/liif-gpu.tar.gz" | cut -f1) tarball ($(tar tzf "$OUT/bin/liif-gpu.tar.gz" | grep -c '/lib/.') libraries) in $OUT/bin"
# what each call carries, with the working tree (tracked and untracked files that git does not ignore)
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
over=0
for set in "bin golden bench" "bin photos val"; do
  bytes=$tree paths=""
  for d in $set; do
    [ -e "$OUT/$d" ] || continue
    bytes=$((bytes + $(du -sb "$OUT/$d" | cut -f1)))
    paths="$paths${paths:+, }'$OUT/$d'"
  done
  mib=$((bytes / 1048576))
  echo "carry [$paths]: $mib MiB with the working tree (limit 64)"
  [ "$mib" -lt 64 ] || over=1
done
# a later training leg also carries what it resumes from: a LIIF checkpoint (19 MB with its Adam moments) or a
# LIIF-GAN run's networks from `liif export --with-disc --fp16` (19 MB: generator 3.8, discriminator 15.2)
if [ -e "$OUT/photos" ]; then
  valb=0
  [ ! -e "$OUT/val" ] || valb=$(du -sb "$OUT/val" | cut -f1)
  room=$(( (64 * 1048576 - tree - $(du -sb "$OUT/bin" | cut -f1) - $(du -sb "$OUT/photos" | cut -f1) - valb) / 1048576 ))
  echo "a training leg has $room MiB left for the checkpoint it resumes from (a LIIF-GAN run's networks in fp16: 19 MB;" \
    "make the photos with JPEG_QUALITY=90 if that is short)"
fi
[ "$over" -eq 0 ] || { echo "gpu-pack: a carry set is over the 64 MiB a device call takes" >&2; exit 1; }
