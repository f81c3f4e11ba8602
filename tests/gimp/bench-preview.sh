#!/bin/bash
# tests/gimp/bench-preview.sh BUILD_DIR [IMAGE] [SCALE] [MODEL]: preview latency of the dialog (a benchmark, not a
# test).
# Opens the dialog under Xvfb on IMAGE (default: Set14's baboon, a 500x480 photo) at SCALE (default 3) on the
# CPU and prints: the time from starting the plug-in to the first preview rendered, that render's own time
# (what the worker spends in the engine for the region; model loading excluded), and an update: the scale
# raised by one keyboard step (Up in the scale field), from the key to the new render. With a LIIF-GAN MODEL
# (default: the shipped one) also a detail change: the second render at another detail (decoders only, in the
# background) and a detail typed into the field, from the key to the picture shown (blended, no model run).
# Run in the trixie root: tools/trixie-root.sh run bash /src/tests/gimp/bench-preview.sh /src/build-trixie
set -u
. "$(dirname "$0")/common.sh"
if [ -z "${DISPLAY:-}" ]; then exec xvfb-run -a -s "-screen 0 1280x900x24" bash "$0" "$@"; fi
liif_gimp_setup "$1"
IMAGE=${2:-$SRC/../shared/data/benchmark/Set14/baboon.png}
SCALE=${3:-3}
MODEL=${4:-}
LIIF_PREVIEW_LOG=1 LIIF_MODE=interactive LIIF_CASES="$IMAGE:$W/out.png" LIIF_MODEL=$MODEL \
  LIIF_SCALE=$SCALE LIIF_DEVICE=cpu LIIF_EXPECT_ERROR=1 \
  gimp-console-3.0 -i --no-fonts --batch-interpreter=python-fu-eval \
    -b "exec(open('$SRC/tests/gimp/batch.py').read())" --quit > "$W/bench.log" 2>&1 &
gpid=$!
renders() { grep -c '^liif-preview: region' "$W/bench.log"; }
for i in $(seq 1 240); do grep -q "LIIF-BATCH menu-label" "$W/bench.log" && break; sleep 0.25; done
t0=$(date +%s%N)
for i in $(seq 1 1200); do [ "$(renders)" -ge 1 ] && break; sleep 0.05; done
first=$(( ($(date +%s%N) - t0) / 1000000 ))
sleep 2
wid=$(xdotool search --name '^LIIF Upscale$' | head -1)
xdotool windowfocus --sync "$wid"; xdotool key alt+a; sleep 0.5
n=$(renders); t1=$(date +%s%N); xdotool key Up
for i in $(seq 1 1200); do [ "$(renders)" -gt "$n" ] && break; sleep 0.05; done
update=$(( ($(date +%s%N) - t1) / 1000000 ))
detail=""
if grep -q '^liif-dialog: model .*: 2 decoders' "$W/bench.log"; then
  for i in $(seq 1 1200); do grep -q '^liif-preview: kept' "$W/bench.log" && break; sleep 0.05; done
  sleep 2
  read -r fx fy <<< "$(grep '^liif-dialog: detail field at' "$W/bench.log" | tail -1 | sed -E 's/.* at ([0-9]+),([0-9]+)$/\1 \2/')"
  xdotool mousemove --window "$wid" "$fx" "$fy" click --repeat 3 1 sleep 0.3 key ctrl+a type 0.4
  t2=$(date +%s%N); xdotool key Tab
  for i in $(seq 1 1200); do grep -q '^liif-preview: detail 0.40 blended' "$W/bench.log" && break; sleep 0.01; done
  detail=$(( ($(date +%s%N) - t2) / 1000000 ))
fi
xdotool key Escape                                                  # Cancel the dialog
wait $gpid
grep -E '^liif-preview: (region|second detail|kept|detail)' "$W/bench.log"
echo "plug-in start (dialog, model load, engine set-up) to the first preview rendered: ${first} ms" \
     "(render itself: $(grep '^liif-preview: region' "$W/bench.log" | head -1 | sed 's/.*: //'))"
echo "update (scale +1 step, key to the new render; 120 ms of it is the dialog's settle delay): ${update} ms" \
     "(render itself: $(grep '^liif-preview: region' "$W/bench.log" | tail -1 | sed 's/.*: //'))"
[ -z "$detail" ] || echo "detail change (0.4 typed, Tab to the picture shown): ${detail} ms" \
  "($(grep '^liif-preview: detail 0.40' "$W/bench.log" | sed 's/.*blended //')); the model's own render of the view" \
  "at another detail took $(grep '^liif-preview: second detail' "$W/bench.log" | tail -1 | sed 's/.*: //')"
