#!/bin/bash
# tools/demo.sh: the main job from a fresh checkout: install build dependencies, build, and upscale a picture.
#   tools/demo.sh [IN.png] [OUT.png] [SCALE]
# Without IN.png it upscales a Set5 image from ../shared when present, else a generated test chart.
# The model is the shipped default, data/models/default.safetensors (its card: data/models/default.md).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh >/dev/null
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
in=${1:-} out=${2:-build/demo-upscaled.png} scale=${3:-3.5}
if [ -z "$in" ]; then
  in=../shared/data/benchmark/Set5/butterfly.png
  [ -f "$in" ] || { in=build/demo-input.png; build/tests/mkpng "$in" 96 72 3 8 gradient; }
fi
build/ui/cli/liif upscale "$in" "$out" --scale "$scale"   # the default model: data/models/default.safetensors
echo "demo: $in -> $out (x$scale)"
