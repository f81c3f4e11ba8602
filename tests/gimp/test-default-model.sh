#!/bin/bash
# tests/gimp/test-default-model.sh BUILD_DIR CLI: the plug-in with an empty model name uses the shipped
# data/models/default.safetensors: a headless python-fu call at x2.5 on an RGB photo-like image, checked
# against `liif upscale` with that file (size and pixels within 1/255), out of the box (no model given).
set -u
CLI=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
. "$(dirname "$0")/common.sh"
liif_gimp_setup "$1"
MODEL=$SRC/data/models/default.safetensors
[ -f "$MODEL" ] || { echo "FAIL: no shipped model ($MODEL)"; exit 1; }
python3 "$SRC/tests/gimp/mkpng.py" "$W/in.png" 37 29 3 8
LIIF_CASES="$W/in.png:$W/out-gimp.png" LIIF_MODEL="" LIIF_SCALE=2.5 \
  gimp_batch "$W/gimp.log" python-fu-eval "exec(open('$SRC/tests/gimp/batch.py').read())"
rc=$?
grep "LIIF-BATCH" "$W/gimp.log"
[ $rc = 0 ] || { cat "$W/gimp.log"; echo "FAIL: gimp-console exited $rc"; exit 1; }
no_crash "$W/gimp.log" || exit 1
"$CLI" upscale -q --model "$MODEL" --scale 2.5 --device cpu "$W/in.png" "$W/out-cli.png" || { echo "FAIL: the CLI"; exit 1; }
size=$(identify -format '%wx%h' "$W/out-gimp.png")
pae=$(compare -metric PAE "$W/out-gimp.png" "$W/out-cli.png" null: 2>&1 | sed 's/.*(\(.*\))/\1/')
echo "default model: $size, max |gimp - cli --model default.safetensors| = $pae"
[ "$size" = 93x73 ] || { echo "FAIL: size $size, want 93x73"; exit 1; }
awk -v p="$pae" 'BEGIN { exit !(p <= 1.0/255 + 1e-6) }' || { echo "FAIL: pixels differ from the CLI with the shipped model"; exit 1; }
echo "PASS: the plug-in's default model is the shipped one"
