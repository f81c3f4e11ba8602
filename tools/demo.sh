#!/bin/bash
# tools/demo.sh: the main job from a fresh checkout: install build dependencies, build, and upscale a picture.
#   tools/demo.sh [IN.png] [OUT.png] [SCALE]
# Without IN.png it upscales a Set5 image from ../shared when present, else a generated test chart.
# The model is data/models/default.safetensors when the project ships one (see data/models/README.md);
# until then it falls back to ../shared/golden's LIIF weights, which are RANDOM (untrained): the run
# exercises the whole pipeline, but the picture is not a real upscale and the script says so.
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
model=data/models/default.safetensors
if [ ! -f "$model" ]; then
  model=../shared/golden/liif-edsr-baseline/weights.safetensors
  echo "demo: no trained model ships yet (data/models/ is empty): using the untrained golden LIIF weights;" >&2
  echo "demo: the output has the right size and passes through every stage, but it is not a real upscale." >&2
fi
build/ui/cli/liif upscale "$in" "$out" --scale "$scale" --model "$model"
echo "demo: $in -> $out (x$scale)"
