#!/bin/bash
# tests/gimp/bench-preview.sh BUILD_DIR [RUNS]: preview latency of the dialog (a benchmark, not a test).
# Opens the dialog under Xvfb on a 128x128 RGB layer at scale 4 on the CPU; the preview shows a
# 256x256 region of the 512x512 result and, with LIIF_PREVIEW_BENCH=RUNS, renders it RUNS times.
# Prints each render time (what the worker spends in the engine for the region; the model is
# loaded once before) and the time from starting the plug-in to the first preview drawn.
# Run in the trixie root: tools/trixie-root.sh run bash /src/tests/gimp/bench-preview.sh /src/build-trixie
set -u
. "$(dirname "$0")/common.sh"
if [ -z "${DISPLAY:-}" ]; then exec xvfb-run -a -s "-screen 0 1280x900x24" bash "$0" "$@"; fi
liif_gimp_setup "$1"
RUNS=${2:-5}
python3 "$SRC/tests/gimp/mkpng.py" "$W/in.png" 128 128 3 8
LIIF_PREVIEW_BENCH=$RUNS LIIF_MODE=interactive LIIF_CASES="$W/in.png:$W/out.png" LIIF_MODEL=$LIIF_TEST_MODEL \
  LIIF_SCALE=4 LIIF_DEVICE=cpu LIIF_EXPECT_ERROR=1 \
  gimp-console-3.0 -i --no-fonts --batch-interpreter=python-fu-eval \
    -b "exec(open('$SRC/tests/gimp/batch.py').read())" --quit > "$W/bench.log" 2>&1 &
gpid=$!
for i in $(seq 1 240); do grep -q "LIIF-BATCH menu-label" "$W/bench.log" && break; sleep 0.25; done
t0=$(date +%s%N)
for i in $(seq 1 600); do [ "$(grep -c '^liif-preview: region' "$W/bench.log")" -ge 1 ] && break; sleep 0.05; done
first=$(( ($(date +%s%N) - t0) / 1000000 ))
for i in $(seq 1 1200); do [ "$(grep -c '^liif-preview: region' "$W/bench.log")" -ge "$RUNS" ] && break; sleep 0.1; done
wid=$(xdotool search --name '^LIIF Upscale$' | head -1)
[ -n "$wid" ] && { xdotool windowfocus --sync "$wid"; xdotool key Escape; }   # Cancel the dialog
wait $gpid
grep '^liif-preview:' "$W/bench.log"
echo "plug-in start (dialog, model load, engine set-up) to the first preview rendered: ${first} ms"
grep '^liif-preview: region' "$W/bench.log" | sed 's/.*: \([0-9.]*\) s$/\1/' | sort -n |
  awk '{ t[NR] = $1 } END { if (NR) printf "preview render of a 256x256 output region at x4 (CPU, %d runs): min %.3f s, median %.3f s, max %.3f s (target < 1 s)\n", NR, t[1], t[int((NR + 1) / 2)], t[NR] }'
