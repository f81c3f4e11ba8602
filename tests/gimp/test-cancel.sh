#!/bin/bash
# tests/gimp/test-cancel.sh BUILD_DIR: a cancel during rendering leaves the image unchanged.
# GIMP's Cancel (progress bar) ends the plug-in process at once (app/plug-in/gimpplugin-progress.c:
# gimp_plug_in_close (plug_in, TRUE)). This test does the same to the plug-in process in the middle of
# a long render, headless, then checks that the image has its old size, its old pixels and the same dirty state:
# the plug-in computes everything before it touches the image.
set -u
. "$(dirname "$0")/common.sh"
liif_gimp_setup "$1"
# large enough that the render (bf16 where the CPU has it) is still computing 3 s in on a fast machine
python3 "$SRC/tests/gimp/mkpng.py" "$W/in.png" 320 240 4 8
LIIF_CASES="$W/in.png:$W/after.png" LIIF_MODEL=$LIIF_TEST_MODEL LIIF_SCALE=4 LIIF_EXPECT_ERROR=1 LIIF_SAVE_ON_ERROR=1 \
  gimp-console-3.0 -i --no-fonts --batch-interpreter=python-fu-eval \
    -b "exec(open('$SRC/tests/gimp/batch.py').read())" --quit > "$W/cancel.log" 2>&1 &
gpid=$!
pid=""
# (with a fresh profile GIMP first starts the plug-in once to register it: wait for the batch script)
for i in $(seq 1 240); do grep -q "LIIF-BATCH menu-label" "$W/cancel.log" && break; sleep 0.25; done
for i in $(seq 1 240); do pid=$(pgrep -x liif-upscale | head -1); [ -n "$pid" ] && break; sleep 0.25; done
[ -n "$pid" ] || { echo "FAIL: the plug-in never started"; cat "$W/cancel.log"; exit 1; }
sleep 3                                           # well into the render (it takes far longer)
kill -0 "$pid" 2>/dev/null || { echo "FAIL: the render ended before the cancel; make it larger"; exit 1; }
echo "cancelling plug-in process $pid 3 s into the render"
kill -KILL "$pid"
wait $gpid; rc=$?
line=$(grep "LIIF-BATCH in.png" "$W/cancel.log"); echo "$line"
[ $rc = 0 ] || { echo "FAIL: gimp-console exited $rc"; cat "$W/cancel.log"; exit 1; }
fail=0
case $line in *status=success*) echo "FAIL: the call succeeded"; fail=1;; esac
case $line in *out=320x240*) ;; *) echo "FAIL: the image size changed"; fail=1;; esac
d0=$(echo "$line" | sed 's/.*dirty-before=\([A-Za-z]*\).*/\1/'); d1=$(echo "$line" | sed 's/.* dirty=\([A-Za-z]*\).*/\1/')
[ "$d0" = "$d1" ] || { echo "FAIL: the dirty state changed ($d0 -> $d1)"; fail=1; }
pae=$(compare -metric PAE "$W/in.png" "$W/after.png" null: 2>&1)
echo "pixels after the cancel vs before: PAE $pae"
case $pae in "0 (0)") ;; *) echo "FAIL: the pixels changed"; fail=1;; esac
[ $fail = 0 ] && echo "PASS: cancel during rendering left the image unchanged"
exit $fail
