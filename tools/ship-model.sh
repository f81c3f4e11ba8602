#!/bin/bash
# tools/ship-model.sh: export a trained checkpoint into data/models/ with its model card.
#   tools/ship-model.sh CHECKPOINT NAME TITLE [PHOTOS_DIR]
# Writes data/models/NAME.safetensors (inference-only export, fp16 storage) and data/models/NAME.md:
# what the model is, its training data and their licences (PHOTOS_DIR/LICENSES.txt of
# tools/make-photo-set.sh, default /var/cache/liif-photos), steps, training time (the step times
# of the run's log.csv next to the checkpoint), hardware, the settings stored in the checkpoint,
# and `liif eval` on Set5 and Set14 (../shared/data/benchmark) at the paper's scales beside
# bicubic. Needs a built tree (build/ui/cli/liif). LIIF_SHIP_DATA_NOTE adds a sentence about the data
# (e.g. how the run's data changed); LIIF_SHIP_SCALES replaces the paper's scales (quick trials);
# LIIF_SHIP_HARDWARE says where it trained (default: this machine's CPU); LIIF_SHIP_TRAIN_NOTE adds a
# sentence about the run (e.g. legs on a lent GPU). A LIIF-GAN checkpoint (variant liif-gan*) is evaluated at
# detail 0 (decoder 1 alone), 0.5 and 1, each a table; the run's log.csv, when there, becomes the card's learning
# curve (docs/NAME-learning-curve.png, tools/plot-log.sh) unless LIIF_SHIP_PLOT=0. LIIF_SHIP_OUT writes the model
# and card into another folder than data/models, LIIF_BIN names the liif binary (tests). LIIF_SHIP_DETAIL=D (LIIF-GAN)
# stores D as the model's own detail (liif export --default-detail: what the CLI and a GIMP user picking the model
# get when they give none); LIIF_SHIP_DETAIL_WHY says in the card why that value.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CHECKPOINT NAME TITLE [PHOTOS_DIR]" >&2; exit 2; }
ckpt=$1 name=$2 title=$3 photos=${4:-/var/cache/liif-photos}
cd "$(dirname "$0")/.."
liif=${LIIF_BIN:-build/ui/cli/liif}
bench=../shared/data/benchmark
scales=${LIIF_SHIP_SCALES:-2,3,4,4.5,5,5.5,6,6.5,7}
[ -x "$liif" ] || { echo "ship-model: build first (meson setup build && meson compile -C build)" >&2; exit 1; }
[ -f "$ckpt" ] || { echo "ship-model: $ckpt: no such checkpoint" >&2; exit 1; }
[ -d "$bench/Set5" ] && [ -d "$bench/Set14" ] || { echo "ship-model: $bench/Set5 and Set14 are needed" >&2; exit 1; }

outdir=${LIIF_SHIP_OUT:-data/models}
out=$outdir/$name.safetensors card=$outdir/$name.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the checkpoint's metadata: variant, step, config
meta() {
  python3 - "$ckpt" "$1" <<'EOF'
import json, struct, sys
with open(sys.argv[1], 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    m = json.loads(f.read(n)).get('__metadata__', {})
print(m.get(sys.argv[2], ''))
EOF
}
variant=$(meta liif.variant)
step=$(meta adam.step)
[ -n "$step" ] || step=$(meta gan.g_step)
config=$(meta train.config)

"$liif" export --fp16 ${LIIF_SHIP_DETAIL:+--default-detail "$LIIF_SHIP_DETAIL"} "$ckpt" "$work/model.safetensors"
case $variant in liif-gan*) details="0 0.5 1" ;; *) details=1 ;; esac
for set in Set5 Set14; do
  for d in $details; do
    "$liif" eval --quiet --model "$work/model.safetensors" --data "$bench/$set" --scales "$scales" --detail "$d" \
      --out "$work/$set-$d" --strips 0 >/dev/null
  done
done

log=${LIIF_SHIP_LOG:-$(dirname "$ckpt")/log.csv}   # the run's step log (step, epoch, loss, lr, seconds, ...)
hours=unknown
if [ -f "$log" ]; then
  hours=$(awk -F, -v s="$step" 'NR > 1 && $1 <= s { t += $5 } END { printf "%.1f h (%.1f min)", t / 3600, t / 60 }' "$log")
fi
curve=""
if [ -f "$log" ] && [ "${LIIF_SHIP_PLOT:-1}" != 0 ]; then
  curve=docs/$name-learning-curve.png
  tools/plot-log.sh "$log" "$curve" >/dev/null
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
size=$(stat -c %s "$work/model.safetensors")

{
  echo "# $title"
  echo
  echo "File: \`$name.safetensors\` ($((size / 1024)) KiB, parameters stored as float16). Variant: \`$variant\`"
  case $variant in
  liif-gan*)
    echo "(EDSR-baseline encoder, 16 residual blocks of 64 features; two MLP decoders 580-256-256-256-256-3 with"
    echo "feature unfolding, local ensemble and cell decoding, decoder 1 \`imnet\` for the structure and decoder 2"
    echo "\`imnet2\` for the detail, out = d1 + detail * d2: MODEL.md section 2; the official LIIF key names)."
    if [ -n "${LIIF_SHIP_DETAIL:-}" ]; then
      echo
      echo "Its own detail is **$LIIF_SHIP_DETAIL** (metadata \`liif.detail\`): what \`liif upscale\` and \`liif eval\` use"
      echo "without \`--detail\`, and what the GIMP dialog sets when the model is picked.${LIIF_SHIP_DETAIL_WHY:+ $LIIF_SHIP_DETAIL_WHY}"
    fi ;;
  *)
    echo "(EDSR-baseline encoder, 16 residual blocks of 64 features; MLP decoder 580-256-256-256-256-3 with"
    echo "feature unfolding, local ensemble and cell decoding: the official LIIF shape and key names)." ;;
  esac
  echo
  echo "## Training"
  echo
  init=$(printf '%s\n' "$config" | sed -n 's/^ *init_from *= *//p' | tail -1)
  hw=${LIIF_SHIP_HARDWARE:-"$(nproc) CPU cores: $cpu; no GPU"}
  if [ -n "$init" ]; then
    echo "- Trained with \`liif train\` alone: $step steps from the weights of \`$(basename "$init")\` (fresh Adam"
    echo "  moments), $hours of step time on $hw."
  else
    echo "- Trained from random initialisation with \`liif train\` alone, $step steps"
    echo "  ($hours of step time on $hw)."
  fi
  [ -z "${LIIF_SHIP_TRAIN_NOTE:-}" ] || echo "  $LIIF_SHIP_TRAIN_NOTE"
  if [ -n "$curve" ]; then
    echo "- Learning curve (L1 on the training batches, moving average; \`tools/plot-log.sh\`):"
    echo "  ![learning curve](../../$curve)"
  fi
  case $variant in
  liif-gan*)
    echo "- Settings (the checkpoint's stored config; every other setting at MODEL.md sections 2 and 3's defaults:"
    echo "  48x48 LR crops, scale U(1,4), one random-group-sampling patch per sample, L1 into decoder 1,"
    echo "  L1 + w_adv adversarial + w_per perceptual + w_fm feature matching into decoder 2, Adam betas 0.9/0.999):" ;;
  *)
    echo "- Settings (the checkpoint's stored config; every other setting at MODEL.md section 3's default:"
    echo "  48x48 LR crops, scale U(1,4), 2304 queries per sample, L1, Adam betas 0.9/0.999):" ;;
  esac
  echo
  echo '```ini'
  echo "$config"
  echo '```'
  echo
  echo "- Data: $(($(wc -l < "$photos/LICENSES.txt") - 1)) photographs from Debian wallpaper packages, assembled by"
  echo "  \`tools/make-photo-set.sh\` (the images are not in this repository). Each photograph, its package and"
  echo "  version, and the licence and copyright holder of its stanza in the package's copyright file."
  [ -z "${LIIF_SHIP_DATA_NOTE:-}" ] || echo "  $LIIF_SHIP_DATA_NOTE"
  echo
  echo "| photograph | package (version) | licence | copyright |"
  echo "|---|---|---|---|"
  awk -F'\t' 'NR > 1 { f = $1; sub(/^[^_]*__/, "", f); gsub(/\|/, "/", $5); print "| " f " | " $2 " (" $3 ") | " $4 " | " $5 " |" }' \
    "$photos/LICENSES.txt"
  echo
  echo "This is a short run on a small set (the paper: 1000 epochs of DIV2K, a million steps). The published"
  echo "figures are on DIV2K validation (LIIF x4 29.03 dB vs bicubic 26.69 there: +2.3 dB), which is not"
  echo "available here; the bicubic rows below are the yardstick."
  echo
  echo "## Evaluation"
  echo
  echo "\`liif eval --model $name.safetensors --scales $scales\` (MODEL.md section 4 benchmark protocol:"
  echo "PSNR / SSIM / sharpness / detail PSNR on Y, shave ceil(s), per-image mean; sharpness and detail"
  echo "PSNR compare the high-pass I - G(I), G a Gaussian of sigma 1.5: see \`liif eval --help\`), on the"
  echo "file as shipped (fp16 weights)."
  [ "$details" = 1 ] || echo "A LIIF-GAN model is measured at \`--detail\` 0, 0.5 and 1: one table each."
  for set in Set5 Set14; do
    for d in $details; do
      echo
      case $variant in
      liif-gan*)
        case $d in 0) what="detail 0: decoder 1 alone, the faithful image" ;; 1) what="detail 1: the full GAN detail" ;;
                   *) what="detail $d" ;; esac
        echo "### $set, $what" ;;
      *) echo "### $set" ;;
      esac
      echo
      cat "$work/$set-$d/table.md"
    done
  done
} > "$work/card.md"

mv "$work/model.safetensors" "$out"
mv "$work/card.md" "$card"
echo "ship-model: wrote $out and $card"
cat "$card"
