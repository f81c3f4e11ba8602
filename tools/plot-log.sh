#!/bin/bash
# tools/plot-log.sh: draws a training run's learning curve as a PNG (for the model cards).
# usage: tools/plot-log.sh LOG.csv OUT.png [WINDOW]
#
# LOG.csv is what `liif train` writes (step,epoch,loss,lr,seconds[,l1,adv,per,d_real,d_fake,fm]): the L1
# loss (the l1 column of a LIIF-GAN log, else loss) against the step, every step in grey and its
# moving average over WINDOW steps (default 200) in colour, on a log scale. A step logged twice (a run
# resumed from a checkpoint repeats the steps after it) counts once, with its last value. When a
# val.csv (liif train's validation) lies next to the log, a second panel shows the validation PSNR per
# scale (and per detail, for a two-decoder model), with bicubic's as dashed lines of the same colour.
# Needs gnuplot: installs gnuplot-nox with apt when it is missing.
set -euo pipefail
[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 LOG.csv OUT.png [WINDOW]" >&2; exit 2; }
log=$1 png=$2 window=${3:-200}
case $window in ''|*[!0-9]*|0) echo "plot-log: WINDOW must be a positive number of steps" >&2; exit 2 ;; esac
[ -r "$log" ] || { echo "plot-log: cannot read $log" >&2; exit 1; }
if ! command -v gnuplot > /dev/null; then
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_ apt-get install -y -qq --no-install-recommends gnuplot-nox > /dev/null 2>&1 ||
    { $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq --no-install-recommends gnuplot-nox > /dev/null; }
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/plot-log.XXXXXX")
trap 'rm -rf "$work"' EXIT

# step, L1, moving average (over the last WINDOW logged steps, fewer at the start)
awk -F, -v w="$window" -v out="$work/loss.dat" '
  NR == 1 { col = 3; for (i = 1; i <= NF; i++) if ($i == "l1") col = i; next }
  $1 ~ /^[0-9]+$/ && $col + 0 > 0 { v[$1 + 0] = $col + 0; if ($1 + 0 > max) max = $1 + 0 }
  END {
    for (s = 0; s <= max; s++) {
      if (!(s in v)) continue
      k++; j = k % w; if (k > w) sum -= ring[j]; ring[j] = v[s]; sum += v[s]
      a = sum / (k < w ? k : w); print s, v[s], a > out
      if (k == 1 || a < lo) lo = a; if (k == 1 || a > hi) hi = a
    }
    print (col == 3 ? "loss" : "l1"), k + 0, max + 0, lo / 1.6, hi * 1.6
  }' "$log" > "$work/meta"
read -r column nsteps laststep ylo yhi < "$work/meta"
[ "$nsteps" -gt 0 ] || { echo "plot-log: no steps in $log" >&2; exit 1; }
# tick marks at 1, 1.2, 1.5, 2, 3, 4, 5, 6, 7, 8 times a power of ten within the range (a log axis
# over less than a decade would otherwise label one tick or none)
ytics=$(awk -v lo="$ylo" -v hi="$yhi" 'BEGIN {
  split("1 1.2 1.5 2 3 4 5 6 7 8", m, " ")
  for (e = int(log(lo) / log(10)) - 1; e <= int(log(hi) / log(10)) + 1; e++)
    for (i = 1; i <= 10; i++) { t = m[i] * 10 ^ e; if (t >= lo && t <= hi) l = l (l == "" ? "" : ", ") sprintf("%g", t) }
  print l }')
last_avg=$(tail -n 1 "$work/loss.dat" | awk '{ printf "%.5f", $3 }')

# validation: one file per scale and detail (step, psnr_y, bicubic_psnr_y); columns found by name, so a val.csv of
# before the detail column (step,scale,psnr_y,bicubic_psnr_y,images) plots too; "SCALE" or "SCALE@DETAIL" series
val=$(dirname "$log")/val.csv
series=""
if [ -r "$val" ]; then
  series=$(awk -F, -v dir="$work" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 ~ /^[0-9]+$/ {
      d = ("detail" in col) ? $col["detail"] : 1
      if (!(d in dseen)) { dseen[d] = 1; nd++ }
      key = $2 "@" d
      if (!(key in seen)) { seen[key] = 1; list = list " " key }
      print $1, $col["psnr_y"], $col["bicubic_psnr_y"] > (dir "/val-" key ".dat") }
    END { print (nd > 1 ? "details" : "one"), list }' "$val")
fi
scales=""
if [ -n "$series" ]; then
  several=${series%% *} # "details" when the run validated more than one detail (a two-decoder model)
  scales=$(echo ${series#* })
fi
run=$(basename "$(cd "$(dirname "$log")" && pwd)")
{
  if [ -n "$scales" ]; then
    echo "set terminal pngcairo size 1100,900 font 'sans,10'"
  else
    echo "set terminal pngcairo size 1100,480 font 'sans,10'"
  fi
  echo "set output '$png'"
  echo "set datafile separator whitespace"
  [ -z "$scales" ] || echo "set multiplot layout 2,1"
  echo "set title \"$run: L1 loss ($column) over $nsteps steps (last $laststep); moving average of $window steps, last $last_avg\" noenhanced"
  echo "set xlabel 'step'"
  echo "set ylabel 'L1 loss (log scale)'"
  echo "set logscale y"
  echo "set yrange [$ylo:$yhi]   # around the moving average: single steps beyond it are clipped"
  echo "set ytics ($ytics)"
  echo "set format y '%g'"
  echo "set xrange [0:$laststep]"
  [ -z "$scales" ] || echo "set lmargin 10; set rmargin 20"   # both panels share the step axis
  echo "set grid xtics ytics mytics"
  echo "set key top right"
  echo "plot '$work/loss.dat' using 1:2 with points pt 7 ps 0.12 lc rgb '#cccccc' title 'each step', \\"
  echo "     '' using 1:3 with lines lw 2 lc rgb '#1f5fbf' title 'moving average ($window steps)'"
  if [ -n "$scales" ]; then
    echo "unset logscale y"
    echo "set autoscale y; set ytics autofreq; set format y '%g'"
    if [ "$several" = details ]; then
      echo "set title 'validation: PSNR on Y per scale and detail (solid), bicubic (dashed)'"
    else
      echo "set title 'validation: PSNR on Y per scale (solid), bicubic (dashed)'"
    fi
    echo "set ylabel 'PSNR Y (dB)'"
    echo "set key outside right top"
    # one solid line per series ("4@0.5": x4, detail 0.5) and bicubic's dashed in the same colour
    # (bicubic is titled once per scale)
    i=0 sep="plot" titled=" "
    for k in $scales; do
      i=$((i + 1)) sc=${k%@*} d=${k#*@}
      title="x$sc" bic="title 'bicubic x$sc'"
      [ "$several" = details ] && title="x$sc detail $d"
      case $titled in *" $sc "*) bic=notitle ;; esac
      titled="$titled$sc "
      echo "$sep '$work/val-$k.dat' using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc $i title '$title', \\"
      echo "     '$work/val-$k.dat' using 1:3 with lines dt 2 lw 1.5 lc $i $bic \\"
      sep="    ,"
    done
    echo ""
    echo "unset multiplot"
  fi
} > "$work/plot.gp"
gnuplot "$work/plot.gp"
echo "plot-log: $png ($nsteps steps${scales:+, validation series (scale@detail) $scales})"
