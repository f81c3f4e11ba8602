#!/bin/bash
# tools/ablation-table.sh OUT.md NAME=FILE [NAME=FILE...]: the paper's ablation table for this project's models.
# Each FILE is a model (.safetensors as `liif upscale` reads it) or a `liif train` checkpoint (exported first);
# NAME is its row label (e.g. LIIF, LIIF-GAN, LIIF-GAN-S, LIIF-GAN-SF). Every model is measured with `liif eval`
# on Set5 and Set14 (../shared/data/benchmark, or $LIIF_BENCH) at the scales $LIIF_ABLATION_SCALES (default
# 2,4,6), benchmark protocol (Y, shave ceil(s)), at detail $LIIF_ABLATION_DETAIL (default 1: the GAN's full
# detail; a one-decoder model ignores it), and the table lists PSNR / SSIM / sharpness / detail PSNR / grid per scale,
# bicubic first, then the paper's Table 1 (DIV2K validation, PSNR / SSIM / LPIPS; MODEL.md section 5) to set
# them beside. OUT.md is written through a temporary file; the per-model tables stay in OUT.md's folder as
# OUT-eval/NAME-SET/ (table.csv, per_image.csv, strips).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
usage() { echo "usage: $0 OUT.md NAME=MODEL_OR_CHECKPOINT [NAME=...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
out=$1; shift
liif=${LIIF:-$ROOT/build/ui/cli/liif}
bench=${LIIF_BENCH:-$ROOT/../shared/data/benchmark}
scales=${LIIF_ABLATION_SCALES:-2,4,6}
detail=${LIIF_ABLATION_DETAIL:-1}
sets=${LIIF_ABLATION_SETS:-Set5 Set14}
[ -x "$liif" ] || { echo "ablation-table: no liif at $liif (build first, or set LIIF)" >&2; exit 1; }
for s in $sets; do [ -d "$bench/$s" ] || { echo "ablation-table: no $bench/$s" >&2; exit 1; }; done
evals=${out%.md}-eval
mkdir -p "$evals"
names=()
for arg in "$@"; do
  name=${arg%%=*} file=${arg#*=}
  [ -n "$name" ] && [ "$name" != "$arg" ] || usage
  case $name in *[!A-Za-z0-9._-]*) echo "ablation-table: name '$name': letters, digits, . _ - only" >&2; exit 2 ;; esac
  [ -f "$file" ] || { echo "ablation-table: $name: no such file: $file" >&2; exit 1; }
  model=$file
  # not `head | grep -q`: grep -q exits at the first match, head then dies of SIGPIPE and pipefail fails the test
  if grep -aq '"adam.step"\|"gan.g_step"' < <(head -c 65536 "$file"); then
    model=$evals/$name.safetensors                      # a checkpoint: its generator, as shipped (fp16)
    "$liif" export --fp16 "$file" "$model" >/dev/null
  fi
  for s in $sets; do
    "$liif" eval --quiet --model "$model" --data "$bench/$s" --scales "$scales" --detail "$detail" \
      --strips 1 --out "$evals/$name-$s" >/dev/null
  done
  names+=("$name")
done

# cell METHOD NAME SET SCALE: "PSNR / SSIM / sharpness / detail PSNR / grid" from NAME-SET/table.csv, row METHOD
cell() {
  awk -F, -v m="$1" -v s="x$4" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i }
    NR > 1 && $1 == m { g = $col[s " grid"]; printf "%.2f / %.4f / %.3f / %.2f / %s", $col[s " psnr"], $col[s " ssim"],
                        $col[s " sharpness"], $col[s " detail psnr"], g == "" ? "-" : sprintf("%.2f", g) }' \
    "$evals/$2-$3/table.csv"
}
IFS=, read -r -a sc <<< "$scales"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  echo "# Ablation: LIIF-GAN and its variants"
  echo
  echo "\`tools/ablation-table.sh\` on $(date -u +%Y-%m-%d): \`liif eval\` (benchmark protocol: Y channel,"
  echo "shave ceil(s), per-image mean), GAN models at detail $detail. Cells: PSNR (dB) / SSIM / sharpness /"
  echo "detail PSNR (dB) / grid score; sharpness = sum H(out)^2 / sum H(gt)^2 with H(I) = I - G(I), G a Gaussian of"
  echo "sigma 1.5 (1 = the original's fine detail), detail PSNR = PSNR of H(out) against H(gt), grid score = the"
  echo "power at the LR pixel grid's frequencies over their neighbours' (about 1; a pattern repeated in every"
  echo "LR cell raises it). Strips"
  echo "(bicubic | model | original) are in \`$(basename "$evals")/NAME-SET/\`."
  for s in $sets; do
    echo
    echo "## $s"
    echo
    printf '| model |'; for x in "${sc[@]}"; do printf ' x%s |' "$x"; done; echo
    printf '|---|'; for x in "${sc[@]}"; do printf -- '---|'; done; echo
    printf '| bicubic |'; for x in "${sc[@]}"; do printf ' %s |' "$(cell bicubic "${names[0]}" "$s" "$x")"; done; echo
    for n in "${names[@]}"; do
      printf '| %s |' "$n"; for x in "${sc[@]}"; do printf ' %s |' "$(cell model "$n" "$s" "$x")"; done; echo
    done
  done
  echo
  echo "## The paper's Table 1 (DIV2K validation: PSNR / SSIM / LPIPS)"
  echo
  echo "From MODEL.md section 5 (Kang & Ahn, LIIF-GAN), for comparison of trends only: other data, other"
  echo "training length, LPIPS where this project has sharpness and detail PSNR."
  echo
  echo "| model | x2 | x3 | x4 | x6 | x7 |"
  echo "|---|---|---|---|---|---|"
  echo "| Bicubic | 31.04 / 0.901 / 0.144 | 28.25 / 0.827 / 0.262 | 26.69 / 0.766 / 0.341 | 24.87 / 0.679 / 0.446 | 24.24 / 0.649 / 0.488 |"
  echo "| LIIF | 34.67 / 0.943 / 0.060 | 30.98 / 0.886 / 0.142 | 29.03 / 0.834 / 0.203 | 26.79 / 0.751 / 0.287 | 26.04 / 0.719 / 0.318 |"
  echo "| LIIF-GAN-S | 32.24 / 0.922 / 0.025 | 27.94 / 0.817 / 0.063 | 26.29 / 0.753 / 0.102 | 24.36 / 0.654 / 0.167 | 23.71 / 0.618 / 0.199 |"
  echo "| LIIF-GAN | 32.25 / 0.913 / 0.024 | 28.66 / 0.834 / 0.065 | 26.45 / 0.756 / 0.100 | 24.64 / 0.664 / 0.164 | 24.13 / 0.634 / 0.196 |"
} > "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "ablation-table: wrote $out"
