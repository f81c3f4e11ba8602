#!/bin/bash
# tests/gimp/test-dialog-ui.sh BUILD_DIR: what a user sees in the dialog, under Xvfb: the preview grows with the
# dialog and shows Cubic and the model side by side; the header names the layer; no GPU is offered without
# CUDA; a model given by path is listed; x20 is shown as limited to x16 (and OK gives x16); an empty layer gets
# a note; the dialog in German and French; with a LIIF-GAN model a detail change shows at once, blended from two
# kept renders, equal to the model's render, and a model picked brings its own detail; a JPEG's artifacts removed in
# the preview and the result, and a note when its layer was edited.
# Screenshots: BUILD_DIR/liif-dialog-{en,big,x20,empty,de,fr,gan,jpeg}.png.
set -u
. "$(dirname "$0")/common.sh"
for p in xvfb-run xdotool import; do command -v $p > /dev/null || { echo "SKIP: $p not installed"; exit 77; }; done
if [ -z "${DISPLAY:-}" ]; then exec xvfb-run -a -s "-screen 0 1400x1000x24" bash "$0" "$@"; fi
CLI=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
liif_gimp_setup "$1"
PHOTO=$SRC/../shared/data/benchmark/Set14/baboon.png            # a 500x480 photo
[ -f "$PHOTO" ] || { python3 "$SRC/tests/gimp/mkpng.py" "$W/photo.png" 500 480 3 8; PHOTO=$W/photo.png; }
python3 "$SRC/tests/gimp/mkpng.py" "$W/small.png" 37 29 3 8
export LIIF_PREVIEW_LOG=1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

TITLE="LIIF Upscale"                                        # the dialog's title, translated for de and fr
# open_dialog LOG IN OUT [VAR=VALUE...]: starts GIMP with the dialog titled $TITLE; sets gpid and wid.
open_dialog() {
  local log=$1 in=$2 out=$3; shift 3
  gimp_dialog "$log" "$TITLE" LIIF_CASES="$in:$out" LIIF_EXPECT_ERROR=1 "$@" \
    || { fail "the dialog never appeared ($log)"; cat "$log"; kill $gpid; return 1; }
}
# wait_for LOG PATTERN [N]: until the log holds N lines matching PATTERN (2 min at most: the machine may be busy).
wait_for() {
  for i in $(seq 1 480); do [ "$(grep -c -- "$2" "$1")" -ge "${3:-1}" ] && return 0; sleep 0.25; done
  return 1
}
# close_dialog KEY: Return = OK, Escape = Cancel; waits for GIMP to end.
close_dialog() {
  xdotool windowfocus --sync "$wid"; xdotool key "$1"
  for i in $(seq 1 240); do kill -0 $gpid 2>/dev/null || break; sleep 0.5; done
  kill -0 $gpid 2>/dev/null && { fail "GIMP still running"; kill $gpid; }
  wait $gpid
}
# shot NAME: a screenshot of the dialog, the pointer moved off it first (no tooltip in the picture)
shot() { xdotool mousemove 1390 990; sleep 0.5; import -window "$wid" "$B/liif-dialog-$1.png"; echo "screenshot: $B/liif-dialog-$1.png"; }

# 1. A photo at x3 with the shipped model: header, devices, model card, the split preview; then the dialog enlarged.
L=$W/photo.log
open_dialog "$L" "$PHOTO" "$W/photo-out.png" LIIF_MODEL= LIIF_SCALE=3 || exit 1
wait_for "$L" '^liif-preview: shown' || fail "the preview never showed the model's half"
shot en
grep -E '^liif-dialog: (header|devices|model)|^liif-preview: (view|region|shown)' "$L"
grep -q '^liif-dialog: header: .*(500 × 480).*“Background”' "$L" || fail "the header does not name the image size and the layer"
grep -q '^liif-dialog: devices: cpu; no GPU: ' "$L" || fail "the device list is not CPU-only with a reason"
grep -q '^liif-dialog: model default (LIIF (EDSR-baseline): the shipped default model): 1 decoders, detail disabled' "$L" \
  || fail "the default model is not chosen with its card's description and the detail off"
grep -q '^liif-dialog: .*Estimated time on this machine' "$L" || fail "no time estimate after the first render"
read -r vw vh split <<< "$(grep '^liif-preview: shown' "$L" | tail -1 | sed -E 's/.*shown ([0-9]+)x([0-9]+) .*Cubic left of column ([0-9]+).*/\1 \2 \3/')"
[ "$split" -gt 0 ] && [ "$split" -lt "$vw" ] || fail "the divider at column $split does not split the ${vw}-wide view"
rw0=$(grep '^liif-preview: shown' "$L" | tail -1 | sed -E 's/.*\(model region ([0-9]+)x.*/\1/')
# Pan: drag the picture (left of the divider) by (+80, -50): Cubic follows while dragging, the model renders on
# release, 80 output pixels further left and 50 down (the first view opens on the detail, away from those edges).
# The estimate that the first render brings changes no layout (the notes keep their size): no new view size and
# no second render while nothing changes.
sleep 3
[ "$(awk '/^liif-preview: shown/ { s = 1 } s && /^liif-preview: view/' "$L" | wc -l)" = 0 ] ||
  fail "the preview changed size after its first render: $(grep '^liif-preview: view' "$L" | tr '\n' ' ')"
[ "$(grep -c '^liif-preview: region' "$L")" = 1 ] || fail "the preview rendered again with nothing changed"
x0=$(grep '^liif-preview: region' "$L" | tail -1 | sed -E 's/.* at \(([0-9]+),([0-9]+)\).*/\1 \2/')
n=$(grep -c '^liif-preview: region' "$L")
xdotool mousemove --window "$wid" 60 200 mousedown 1 sleep 0.3 mousemove --window "$wid" 100 175 sleep 0.3 \
  mousemove --window "$wid" 140 150 sleep 1 mouseup 1
# the pan's render: the first region elsewhere than x0 (a render already in flight when the drag began, on a
# loaded machine, may still report the old place first)
x1=$x0
for i in $(seq 1 480); do
  x1=$(grep '^liif-preview: region' "$L" | tail -n +$((n + 1)) | sed -E 's/.* at \(([0-9]+),([0-9]+)\).*/\1 \2/' \
    | grep -vx "$x0" | head -1)
  [ -n "$x1" ] && break
  sleep 0.25
done
[ -n "$x1" ] || { fail "no render after panning"; x1=$x0; }
grep '^liif-preview: panning' "$L" | tail -2
echo "pan: model region at ($x0) -> ($x1)"
grep -q '^liif-preview: panning' "$L" || fail "no live Cubic while panning"
read -r ax ay <<< "$x0"; read -r bx by <<< "$x1"
[ $((ax - bx)) = 80 ] && [ $((by - ay)) = 50 ] || fail "the pan did not move the model's region by (-80, +50)"
xdotool windowsize "$wid" 1300 950
wait_for "$L" '^liif-preview: view' 2 || fail "the preview did not get a new size when the dialog grew"
# the render of the grown view: a "shown" line whose own model region is wider than before. A render started
# before the resize (the pan's, on a loaded machine) may still be shown first, in the grown view, with its
# old region; it must not count.
grown=0
for i in $(seq 1 480); do
  read -r vw2 vh2 rw1 <<< "$(grep '^liif-preview: shown' "$L" | tail -1 \
    | sed -E 's/.*shown ([0-9]+)x([0-9]+) \(model region ([0-9]+)x.*/\1 \2 \3/')"
  [ "${rw1:-0}" -gt "$rw0" ] && { grown=1; break; }
  sleep 0.25
done
[ $grown = 1 ] || fail "no render of a wider model region after the dialog grew"
shot big
echo "view ${vw}x${vh} -> ${vw2}x${vh2}; model region width $rw0 -> $rw1"
[ "$vw2" -gt "$vw" ] && [ "$vh2" -gt "$vh" ] && [ "$rw1" -gt "$rw0" ] || fail "the preview did not grow with the dialog"
close_dialog Escape
no_crash "$L" || fails=$((fails + 1))

# 2. An empty layer selected: the note, and the preview of that layer.
L=$W/empty.log
open_dialog "$L" "$W/small.png" "$W/empty-out.png" LIIF_MODEL=$LIIF_TEST_MODEL LIIF_SCALE=2 LIIF_EMPTY_LAYER=1 || exit 1
wait_for "$L" '^liif-dialog: header' || true
sleep 2; shot empty
grep '^liif-dialog: warning' "$L"
grep -q '^liif-dialog: warning: “Empty” is empty (fully transparent)' "$L" || fail "no note for the empty layer"
grep -q '^liif-dialog: JPEG artifacts: not offered (no JPEG file)' "$L" || fail "JPEG deblocking offered for a PNG"
close_dialog Escape

# 3. German and French: the dialog's own texts translated.
for loc in de_DE fr_FR; do
  L=$W/$loc.log
  case $loc in de_DE) TITLE="LIIF-Vergrößerung" ;; fr_FR) TITLE="Agrandissement LIIF" ;; esac
  open_dialog "$L" "$PHOTO" "$W/$loc-out.png" LIIF_MODEL= LIIF_SCALE=3 \
    LANG=$loc.UTF-8 LANGUAGE=${loc%%_*} LC_ALL=$loc.UTF-8 || exit 1
  wait_for "$L" '^liif-preview: shown' || fail "$loc: no preview"
  shot "${loc%%_*}"
  grep '^liif-dialog: header' "$L"
  case $loc in
    de_DE) grep -q '^liif-dialog: header: .*das Modell vergrößert die Ebene' "$L" || fail "de: header not translated" ;;
    fr_FR) grep -q '^liif-dialog: header: .*le modèle agrandit le calque' "$L" || fail "fr: header not translated" ;;
  esac
  # the engine's reason for offering no GPU (English, marked LIIF_N_ in core/) in the language of the dialog
  reason=$(sed -n 's/^liif-dialog: devices: cpu; no GPU: //p' "$L")
  case $loc:$reason in
    "de_DE:this build has no CUDA backend") want="Keine GPU angeboten: diese Version wurde ohne CUDA gebaut." ;;
    "fr_FR:this build has no CUDA backend") want="Aucun GPU proposé : cette version a été compilée sans CUDA." ;;
    "de_DE:no NVIDIA driver is installed"*) want="Keine GPU angeboten: kein NVIDIA-Treiber installiert (libcuda.so.1 nicht gefunden)." ;;
    "fr_FR:no NVIDIA driver is installed"*) want="Aucun GPU proposé : aucun pilote NVIDIA n’est installé (libcuda.so.1 introuvable)." ;;
    *) want="(the test knows no translation of '$reason')" ;;
  esac
  grep '^liif-dialog: device note' "$L"
  grep -qxF "liif-dialog: device note: $want" "$L" || fail "$loc: the device note is not '$want'"
  close_dialog Escape
done
TITLE="LIIF Upscale"

# 4. A LIIF-GAN model (two decoders: PyTorch's golden one): after the first render the preview renders the view
# again at a second detail, in the background; a detail typed into the field then shows at once, blended from the
# two renders with no model run, and equals the model's own render at that detail (LIIF_PREVIEW_VERIFY renders it
# and compares the two 8-bit pictures).
GAN=${LIIF_GOLDEN_DIR:-$SRC/../shared/golden}/components/gan_weights.safetensors
# the same network with its own detail, 0.25 (liif export --default-detail), in the user's models folder
mkdir -p "$GIMP3_DIRECTORY/liif/models"
"$CLI" export --default-detail 0.25 "$GAN" "$GIMP3_DIRECTORY/liif/models/gan-quarter.safetensors" \
  || fail "liif export --default-detail failed"
L=$W/gan.log
open_dialog "$L" "$PHOTO" "$W/gan-out.png" LIIF_MODEL=$GAN LIIF_SCALE=3 LIIF_PREVIEW_VERIFY=1 || exit 1
wait_for "$L" '^liif-preview: kept the render at detail' || fail "no second render for the detail control"
# settled: the last render is a kept second detail, and nothing follows it for a second
for i in $(seq 1 120); do
  n=$(grep -cE '^liif-preview: (region|second detail|kept)' "$L"); last=$(grep -E '^liif-preview: (region|second detail|kept)' "$L" | tail -1)
  sleep 1
  [ "$(grep -cE '^liif-preview: (region|second detail|kept)' "$L")" = "$n" ] && [[ $last == *kept* ]] && break
done
grep -E '^liif-dialog: (model|detail field)|^liif-preview: (region|second detail|kept)' "$L"
grep -q '^liif-dialog: model .*: 2 decoders, detail enabled' "$L" || fail "the LIIF-GAN model's detail is not enabled"
read -r fx fy <<< "$(grep '^liif-dialog: detail field at' "$L" | tail -1 | sed -E 's/.* at ([0-9]+),([0-9]+)$/\1 \2/')"
renders=$(grep -c '^liif-preview: region' "$L")
[ "$renders" = 1 ] && [ "$(grep -c '^liif-preview: second detail' "$L")" = 1 ] ||
  fail "$renders renders of the view and $(grep -c '^liif-preview: second detail' "$L") second details: want one each"
for t in 0.3 0.75; do
  xdotool windowfocus --sync "$wid"
  xdotool mousemove --window "$wid" "${fx:-0}" "${fy:-0}" click --repeat 3 1 sleep 0.3 key ctrl+a type "$t"
  xdotool key Tab                                          # the field takes the value when it loses the focus
  wait_for "$L" "^liif-preview: verify detail $(printf '%.2f' $t)" || fail "detail $t: no blend shown and verified"
done
shot gan
grep -E '^liif-preview: (detail .* blended|verify detail)' "$L"
[ "$(grep -c '^liif-preview: detail .* blended .*(no model run)' "$L")" -ge 2 ] || fail "the detail changes were not blended"
[ "$(grep -c '^liif-preview: region' "$L")" = "$renders" ] || fail "a detail change ran the model for the view"
# the blend equals the render: at most one level off (float rounding at a rounding boundary), in at most 0.1%
while read -r differ total worst; do
  [ "$worst" -le 1 ] && [ $((differ * 1000)) -le "$total" ] || fail "blend vs render: $differ of $total samples, up to $worst levels"
done < <(grep '^liif-preview: verify detail' "$L" | sed -E 's/.*differ in ([0-9]+) of ([0-9]+) samples, by at most ([0-9]+) levels/\1 \2 \3/')
# The user picks the model with its own detail (a click opens the list, Up moves one model up, Return takes it):
# the detail becomes 0.25, and the preview renders at 0.25.
mapfile -t listed < <(grep '^liif-dialog: model listed: ' "$L" | sed 's/^liif-dialog: model listed: //')
steps=0
for i in "${!listed[@]}"; do [ "${listed[$i]}" = gan-quarter ] && steps=$(( ${#listed[@]} - 1 - i )); done
read -r mx my <<< "$(grep '^liif-dialog: model list at' "$L" | tail -1 | sed -E 's/.* at ([0-9]+),([0-9]+)$/\1 \2/')"
echo "models listed: ${listed[*]}; gan-quarter $steps up from the last"
[ "$steps" -gt 0 ] || fail "gan-quarter is not listed above the model given by path"
xdotool mousemove --window "$wid" "${mx:-0}" "${my:-0}"
xdotool click 1; sleep 1
for i in $(seq 1 "$steps"); do xdotool key Up; sleep 0.3; done
xdotool key Return
wait_for "$L" "^liif-dialog: detail set to the model's own, 0.25" || fail "picking gan-quarter did not set its detail"
wait_for "$L" '^liif-preview: region .*(detail 0.25)' || fail "no render at the model's detail 0.25"
grep -E "^liif-dialog: (model gan-quarter|detail set)|^liif-preview: region .*detail 0.25" "$L"
close_dialog Escape
no_crash "$L" || fails=$((fails + 1))

# 6. A JPEG opened as File > Open does, with Remove JPEG artifacts on (the caller's choice): the dialog offers it, the
# preview deblocks the layer once and shows the model's half from it, and the time estimate counts what it took.
# The same JPEG flipped first (an edit): the note says why it is not deblocked. (Cancel both: OK would save last
# values, which an interactive run starts from; gimp-deblock checks the final render.)
convert "$PHOTO" -quality 30 -sampling-factor 2x2 "$W/photo.jpg"
L=$W/jpeg.log
open_dialog "$L" "$W/photo.jpg" "$W/jpeg-out.png" LIIF_OPENED=1 LIIF_DEBLOCK=1 LIIF_MODEL= LIIF_SCALE=2 || exit 1
wait_for "$L" '^liif-preview: shown' || fail "JPEG: no preview"
shot jpeg
grep -E '^liif-dialog: (JPEG|warning)|^liif-preview: (deblocking|region)' "$L"
grep -qF "liif-dialog: JPEG artifacts: $W/photo.jpg" "$L" || fail "JPEG deblocking not offered for an image opened from a JPEG"
grep -q '^liif-preview: deblocking the 500x480 layer: done' "$L" || fail "the preview did not deblock the layer"
[ "$(grep -c '^liif-preview: deblocking' "$L")" = 1 ] || fail "the preview deblocked more than once"
grep -q '^liif-dialog: the time estimate counts [0-9.]* s of deblocking' "$L" || fail "the time estimate leaves deblocking out"
close_dialog Escape
L=$W/jpeg-flip.log
open_dialog "$L" "$W/photo.jpg" "$W/jpeg-flip-out.png" LIIF_OPENED=1 LIIF_DEBLOCK=1 LIIF_FLIP=1 LIIF_MODEL= LIIF_SCALE=2 ||
  exit 1
wait_for "$L" '^liif-dialog: warning: JPEG artifacts were not removed' || fail "no note for an edited JPEG layer"
grep '^liif-dialog: warning: JPEG' "$L"
close_dialog Escape

# 5. x20 asked (by a script or the last run) with a model given by path (what Browse… sets): the path is
# listed, the note says x16, OK gives x16. Last, since OK saves x16 as the last values.
L=$W/x20.log
open_dialog "$L" "$W/small.png" "$W/x20-out.png" LIIF_MODEL=$LIIF_TEST_MODEL LIIF_SCALE=20 || exit 1
wait_for "$L" '^liif-preview: shown' || fail "x20: no preview"
shot x20
grep -E '^liif-dialog: (warning|model)' "$L"
grep -q "^liif-dialog: model listed: $LIIF_TEST_MODEL\$" "$L" || fail "the model given by path is not listed"
grep -q '^liif-dialog: warning: ×20 is more than this dialog offers: limited to ×16' "$L" || fail "x20: no clamp note"
close_dialog Return
size=$(identify -format '%wx%h' "$W/x20-out.png" 2>/dev/null); echo "x20 request gave $size"
[ "$size" = 592x464 ] || fail "x20: expected the clamped 592x464 (37x29 x16)"

[ $fails = 0 ] || { echo "FAIL: $fails checks failed"; exit 1; }
echo "PASS: preview grows and splits Cubic | model; header, devices, model by path, x20 clamp, empty-layer note, de/fr, instant detail, JPEG deblocking"
