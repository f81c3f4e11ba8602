#!/bin/bash
# tests/gimp/test-dialog.sh BUILD_DIR: the interactive dialog under Xvfb: it opens, the live preview draws
# (screenshot: BUILD_DIR/liif-dialog.png), OK gives the expected size; then a last-values run repeats it.
set -u
. "$(dirname "$0")/common.sh"
for p in xvfb-run xdotool import; do command -v $p > /dev/null || { echo "SKIP: $p not installed"; exit 77; }; done
if [ -z "${DISPLAY:-}" ]; then exec xvfb-run -a -s "-screen 0 1280x900x24" bash "$0" "$@"; fi
liif_gimp_setup "$1"
# The dialog starts from the caller's arguments (scale 2.5, the model by path); the user folder's
# model shows in the model list too.
mkdir -p "$GIMP3_DIRECTORY/liif/models"
cp "$LIIF_TEST_MODEL" "$GIMP3_DIRECTORY/liif/models/edsr-baseline-random.safetensors"
python3 "$SRC/tests/gimp/mkpng.py" "$W/in.png" 37 29 4 8
python3 "$SRC/tests/gimp/mkpng.py" "$W/in2.png" 37 29 4 8
export LIIF_PREVIEW_LOG=1
t0=$(date +%s)
gimp_dialog "$W/dialog.log" "LIIF Upscale" LIIF_CASES="$W/in.png:$W/out-dialog.png" LIIF_MODEL=$LIIF_TEST_MODEL \
  LIIF_SCALE=2.5 || { echo "FAIL: the dialog never appeared"; kill $gpid; cat "$W/dialog.log"; exit 1; }
echo "dialog window $wid after $(( $(date +%s) - t0 )) s"
for i in $(seq 1 120); do grep -q "^liif-preview: region" "$W/dialog.log" && break; sleep 0.5; done
grep "^liif-preview: region" "$W/dialog.log" || { echo "FAIL: the preview never rendered"; import -window root "$B/liif-dialog-fail.png"; kill $gpid; cat "$W/dialog.log"; exit 1; }
sleep 1                                                    # the result is drawn from the main loop
import -window "$wid" "$B/liif-dialog.png"; echo "screenshot: $B/liif-dialog.png ($(identify -format '%wx%h' "$B/liif-dialog.png"))"
xdotool windowfocus --sync "$wid"; xdotool key Return     # OK (no window manager: focus first)
for i in $(seq 1 240); do kill -0 $gpid 2>/dev/null || break; sleep 0.5; done
kill -0 $gpid 2>/dev/null && { echo "FAIL: GIMP still running"; kill $gpid; cat "$W/dialog.log"; exit 1; }
wait $gpid; rc=$?
grep "LIIF-BATCH" "$W/dialog.log"
[ $rc = 0 ] || { echo "FAIL: gimp exited $rc"; cat "$W/dialog.log"; exit 1; }
no_crash "$W/dialog.log" || exit 1
size=$(identify -format '%wx%h' "$W/out-dialog.png"); echo "dialog result: $size"
[ "$size" = 93x73 ] || { echo "FAIL: expected 93x73"; exit 1; }

LIIF_MODE=last-vals LIIF_CASES="$W/in2.png:$W/out-last.png" LIIF_MODEL=unused \
  gimp_batch "$W/last.log" python-fu-eval "exec(open('$SRC/tests/gimp/batch.py').read())"
grep "LIIF-BATCH in2" "$W/last.log"
size=$(identify -format '%wx%h' "$W/out-last.png" 2>/dev/null); echo "last-values result: $size"
[ "$size" = 93x73 ] || { echo "FAIL: expected 93x73 again"; cat "$W/last.log"; exit 1; }
compare -metric PAE "$W/out-dialog.png" "$W/out-last.png" null: 2>&1 | grep -q '^0 (0)' \
  || { echo "FAIL: the last-values run differs from the dialog run"; exit 1; }
echo "PASS: dialog opened, preview drawn, OK gave 93x73; last-values run identical"
