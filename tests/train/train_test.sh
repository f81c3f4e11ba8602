#!/bin/sh
# train_test.sh: one `liif train` / `liif export` case (meson suite 'train').
# usage: train_test.sh CASE LIIF MKPNG MKJPEG MAKE_RANDOM_MODEL
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
here=$(cd "$(dirname "$0")" && pwd)
case_name=$1 liif=$(abs "$2") mkpng=$(abs "$3") mkjpeg=$(abs "$4") mkmodel=$(abs "$5")
work=$(mktemp -d /tmp/liif-train-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL $case_name: $*"; exit 1; }

# a fixed image set: one PNG and one JPEG photo-like image, a corrupt JPEG and a too-small PNG
mkdir data empty
"$mkpng" data/a.png 96 80 3 8 gradient || fail mkpng
"$mkjpeg" data/b.jpg 72 64 || fail mkjpeg
echo 'not a jpeg' > data/corrupt.jpg
"$mkpng" data/tiny.png 10 10 3 8 gradient || fail mkpng
"$mkmodel" model.safetensors liif 16 2 32 || fail make_random_model

config() { # config OUT STEPS [extra lines]
  out=$1 steps=$2; shift 2
  printf '[train]\ndata = data\noutput = %s\ninit_from = model.safetensors\nbatch = 2\ninp_size = 8\nscale_max = 2\nsample_q = 32\nlr = 1e-3\nsteps = %s\ncheckpoint_every = %s\nthreads = 2\nseed = 7\n' "$out" "$steps" "${CK:-5}"
  for l in "$@"; do printf '%s\n' "$l"; done
}

# expect_error WHAT PATTERN: the last command's exit status $rc is non-zero, stderr (err.txt) is one line matching PATTERN
expect_error() {
  [ "$rc" -ne 0 ] || fail "$1: exit status 0"
  [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "$1: not one line of error"; }
  grep -q "$2" err.txt || { cat err.txt; fail "$1: error does not say '$2'"; }
}

case $case_name in
help)
  # every key of the config table (ui/cli/train.c) is in --help with its default, as KEY=DEFAULT ("data" is required)
  "$liif" train --help > help.txt 2> err.txt || { cat err.txt; fail "liif train --help failed"; }
  grep -o '{"[a-z_0-9]*", K_[A-Z]*, RC([a-z_0-9]*), \("[^"]*"\|NULL\)}' "$here/../../ui/cli/train.c" |
    sed 's/^{"\([a-z_0-9]*\)".*, \("\([^"]*\)"\|NULL\)}$/\1 \2/' > keys.txt
  [ "$(wc -l < keys.txt)" -ge 38 ] || fail "read only $(wc -l < keys.txt) keys from train.c"
  while read -r key def; do
    case $def in
      NULL) want="$key (required)" ;;
      *) want="$key=$(echo "$def" | tr -d '"')" ;;
    esac
    grep -qF -- "$want" help.txt || fail "liif train --help does not say '$want'"
  done < keys.txt
  for word in --config --resume --device --time-limit val.csv Ctrl-C; do
    grep -q -- "$word" help.txt || fail "liif train --help does not mention $word"
  done
  ;;
loss-decreases)
  config out 30 > run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train failed"; }
  grep -q "skipping data/corrupt.jpg" err.txt || fail "no warning for the corrupt JPEG"
  grep -q "skipping data/tiny.png" err.txt || fail "no warning for the too-small PNG"
  [ "$(wc -l < out/log.csv)" -eq 31 ] || fail "log.csv has $(wc -l < out/log.csv) lines, want 31"
  # mean loss of steps 1-5 vs 26-30
  awk -F, 'NR>=2 && NR<=6 {a+=$3} NR>=27 {b+=$3} END {printf "loss: first five %.4f, last five %.4f\n", a/5, b/5; exit !(b < 0.7*a)}' out/log.csv \
    || fail "loss did not decrease"
  # stderr is a file, not a terminal: a progress line at every checkpoint (and at least every minute) with the mean
  # loss of the steps since the line before, instead of the terminal's bar
  [ "$(grep -o '^step [0-9]*/30' err.txt | tr '\n' ' ')" = "step 5/30 step 10/30 step 15/30 step 20/30 step 25/30 step 30/30 " ] ||
    { cat err.txt; fail "no progress line at each checkpoint"; }
  awk -F, 'NR>=22 && NR<=26 {a+=$3} END {printf "%.4f", a/5}' out/log.csv > want.txt
  grep -q "^step 25/30  loss $(cat want.txt) (mean since the last line)" err.txt ||
    { cat err.txt; fail "the line at step 25 does not give the mean loss of steps 21-25 ($(cat want.txt))"; }
  for s in 5 10 30; do [ -f out/ckpt-$(printf %08d $s).safetensors ] || fail "no checkpoint at step $s"; done
  [ -f out/last.safetensors ] || fail "no last.safetensors"
  ;;
resume)
  config straight 12 > a.ini
  "$liif" train --config a.ini 2> /dev/null || fail "straight run failed"
  CK=6 config resumed 12 > b.ini
  CK=6 config half 6 > h.ini
  "$liif" train --config h.ini 2> /dev/null || fail "first half failed"
  "$liif" train --config b.ini --resume half/last.safetensors 2> /dev/null || fail "resumed run failed"
  "$liif" export straight/last.safetensors s.safetensors || fail "export straight"
  "$liif" export resumed/last.safetensors r.safetensors || fail "export resumed"
  cmp s.safetensors r.safetensors || fail "12 steps straight and 6 + resume + 6 differ"
  # a plain resume (the config from the checkpoint's metadata) continues in the run's own folder
  "$liif" train --resume straight/ckpt-00000005.safetensors 2> /dev/null || fail "resume without --config"
  "$liif" export straight/last.safetensors s2.safetensors || fail "export"
  cmp s.safetensors s2.safetensors || fail "12 steps straight and 5 + plain resume + 7 differ"
  echo "resume: bit-identical parameters"
  ;;
export-upscale)
  config out 5 > run.ini
  "$liif" train --config run.ini 2> /dev/null || fail "train failed"
  "$liif" export out/last.safetensors g.safetensors || fail "export"
  "$liif" export --fp16 out/last.safetensors g16.safetensors || fail "export --fp16"
  [ "$(stat -c %s g16.safetensors)" -lt "$(stat -c %s g.safetensors)" ] || fail "fp16 export is not smaller"
  grep -aq adam g.safetensors && fail "the export holds Adam moments"
  "$mkpng" in.png 20 16 3 8 gradient || fail mkpng
  for m in g g16; do
    "$liif" upscale --model $m.safetensors in.png up-$m.png --scale 2.5 2> err.txt || { cat err.txt; fail "upscale with $m"; }
    [ -s up-$m.png ] || fail "no output with $m"
  done
  "$liif" export out/missing.safetensors x.safetensors 2> err.txt; rc=$?
  expect_error "export of a missing checkpoint" "missing"
  ;;
err-unknown-key)
  config out 5 'colour = blue' > run.ini
  "$liif" train --config run.ini 2> err.txt; rc=$?
  expect_error "unknown key" "unknown key 'colour'"
  ;;
err-missing-data)
  config out 5 > run.ini
  sed -i 's/^data = data/data = nowhere/' run.ini
  "$liif" train --config run.ini 2> err.txt; rc=$?
  expect_error "missing data folder" "nowhere"
  ;;
err-empty-data)
  config out 5 > run.ini
  sed -i 's/^data = data/data = empty/' run.ini
  "$liif" train --config run.ini 2> err.txt; rc=$?
  expect_error "empty data folder" "no PNG or JPEG"
  ;;
err-bad-value)
  config out 5 'batch = many' > run.ini
  "$liif" train --config run.ini 2> err.txt; rc=$?
  expect_error "bad value" "'batch'"
  ;;
validation)
  # a PNG and a JPEG: the validation folder is read as `liif eval` reads its data
  mkdir val && "$mkpng" val/v.png 64 48 3 8 gradient && "$mkjpeg" val/w.jpg 56 40 || fail "mkpng / mkjpeg"
  config out 10 'val_data = val' 'val_scales = 2,3' 'val_every = 5' > run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train with validation failed"; }
  cat out/val.csv
  [ "$(head -1 out/val.csv)" = "step,scale,detail,psnr_y,sharpness,detail_psnr,grid,bicubic_psnr_y,bicubic_sharpness,bicubic_detail_psnr,bicubic_grid,images" ] ||
    fail "val.csv header"
  [ "$(wc -l < out/val.csv)" -eq 7 ] || fail "val.csv has $(wc -l < out/val.csv) lines, want 7 (steps 0, 5 and 10, scales 2 and 3)"
  # a one-decoder model: one row per scale, said as detail 1; PSNR, sharpness, detail PSNR and grid score in their
  # ranges, for the model and for bicubic
  awk -F, 'NR > 1 && !($3 == 1 && $4 > 5 && $4 < 80 && $8 > 5 && $8 < 80 && $5 > 0 && $5 < 10 && $9 > 0 && $9 < 10 &&
           $6 > 5 && $6 < 99 && $10 > 5 && $10 < 99 && $7 > 0 && $7 < 1e6 && $11 > 0 && $11 < 1e6 && $12 == 2) {exit 1}' \
    out/val.csv || fail "implausible figures in val.csv"
  # bicubic's figures do not depend on the step; the model's do (it trains between them)
  [ "$(awk -F, 'NR > 1 {print $2, $8, $9, $10, $11}' out/val.csv | sort -u | wc -l)" -eq 2 ] || fail "bicubic's figures vary with the step"
  [ "$(awk -F, 'NR > 1 {print $2, $4, $5, $6}' out/val.csv | sort -u | wc -l)" -eq 6 ] || fail "the model's figures repeat across steps"
  awk -F, 'NR > 1 {print $1 "," $2}' out/val.csv | tr '\n' ' ' | grep -q "^0,2 0,3 5,2 5,3 10,2 10,3 $" ||
    fail "val.csv rows are not steps 0 (the start), 5, 10 at scales 2, 3"
  # a resume onto a val.csv of other columns (an older liif's) moves it aside, with a note, and starts a new one
  printf 'step,scale,psnr_y,bicubic_psnr_y,images\n5,2,30,29,2\n' > out/val.csv
  config out 12 'val_data = val' 'val_scales = 2,3' 'val_every = 5' > run12.ini
  "$liif" train --config run12.ini --resume out/last.safetensors 2> err.txt || { cat err.txt; fail "resume with validation failed"; }
  grep -q "other columns" err.txt || { cat err.txt; fail "no note on the moved val.csv"; }
  [ "$(cat out/val.csv.old)" = "$(printf 'step,scale,psnr_y,bicubic_psnr_y,images\n5,2,30,29,2')" ] || fail "the old val.csv was not kept"
  [ "$(wc -l < out/val.csv)" -eq 3 ] || fail "the resumed val.csv has $(wc -l < out/val.csv) lines, want 3 (step 12 at 2 scales)"
  # a run stopped by its time limit validates the model it stops with (the step it stopped at)
  config tl 100000 'val_data = val' 'val_scales = 2' 'val_every = 100000' > tl.ini
  "$liif" train --config tl.ini --time-limit 0.5 2> err.txt || { cat err.txt; fail "a run with --time-limit failed"; }
  last=$(tail -n 1 tl/log.csv | cut -d, -f1)
  [ "$(cut -d, -f1 tl/val.csv | tr '\n' ' ')" = "step 0 $last " ] || { cat tl/val.csv; fail "the time-limited run did not validate steps 0 and $last"; }
  config out2 5 'val_data = val' 'val_scales = 2,zero' > bad.ini
  "$liif" train --config bad.ini 2> err.txt; rc=$?
  expect_error "bad val_scales" "val_scales"
  config out2 5 'val_data = val' 'val_details = 0,1.5' > bad.ini
  "$liif" train --config bad.ini 2> err.txt; rc=$?
  expect_error "bad val_details" "val_details"
  ;;
time-limit)
  CK=1 config out 100000 > run.ini   # a checkpoint, and so a progress line, at every step
  "$liif" train --config run.ini --time-limit 1 2> err.txt || { cat err.txt; fail "a run with --time-limit failed"; }
  grep -q "time limit reached at step" err.txt || { cat err.txt; fail "no note at the time limit"; }
  # the progress lines' ETA is the time limit's, not that of step 100000
  grep -q '^step [0-9]*/100000 ' err.txt || { cat err.txt; fail "no progress line"; }
  ! grep '^step [0-9]*/100000 ' err.txt | grep -qv 'ETA 0:00:0[01]$' || { cat err.txt; fail "an ETA past the time limit"; }
  n=$(($(wc -l < out/log.csv) - 1))
  [ "$n" -ge 1 ] && [ "$n" -lt 100000 ] || fail "$n steps logged"
  "$liif" train --config run.ini --resume out/last.safetensors --time-limit 1 2> err.txt || { cat err.txt; fail "resume"; }
  m=$(($(wc -l < out/log.csv) - 1))
  [ "$m" -gt "$n" ] || fail "the resumed run logged no step ($n -> $m)"
  tail -1 out/log.csv | grep -q "^$m," || fail "the log does not continue at step $m"
  echo "time-limit: $n steps, then $m after a resume"
  ;;
err-device)
  config out 5 > run.ini
  "$liif" train --config run.ini --device tpu 2> err.txt; rc=$?
  expect_error "unknown device" "auto, cpu or cuda"
  [ $rc -eq 2 ] || fail "--device tpu: exit $rc, want 2"
  if "$liif" train --config run.ini --device cuda 2> err.txt; then
    echo "a GPU trained here: --device cuda works"
  else
    rc=$?
    [ $rc -eq 3 ] || { cat err.txt; fail "--device cuda without a GPU: exit $rc, want 3"; }
    [ "$(grep -vc 'warning: skipping' err.txt)" -eq 1 ] || { cat err.txt; fail "--device cuda without a GPU: not one line"; }
    grep -q "device cuda" err.txt || { cat err.txt; fail "--device cuda: the error does not name the option"; }
    [ ! -e out/ckpt-00000005.safetensors ] || fail "--device cuda without a GPU trained anyway"
  fi
  ;;
cuda-emu)
  # The CLI's GPU LIIF path (core/train/liif_gpu.c, the module's trainer) end to end on the CUDA emulation
  # (tests/cuda-emu; $LIIF_CUDA_MODULE set by meson): 6 steps agree with the CPU's, and the emulated GPU's step-3
  # checkpoint resumes on the CPU to the CPU's steps. lr 1e-4 (Adam's first steps turn rounding-sized gradient
  # differences into lr-sized moves); both sides are deterministic, so the bounds hold every run.
  [ -n "${LIIF_CUDA_MODULE:-}" ] || { echo "SKIP: no CUDA emulation module"; exit 77; }
  # both runs validate (steps 0, 2, 4, 6; 2 and 4 between checkpoints): on the emulated GPU engine with the weights
  # pulled from the GPU (stale host weights differ by 0.25 dB), and on the CPU
  mkdir val && "$mkpng" val/v.png 48 40 3 8 gradient || fail mkpng
  CK=3 config gpu 6 'val_data = val' 'val_scales = 2' 'val_every = 2' > g0.ini && sed 's/^lr = .*/lr = 1e-4/' g0.ini > g.ini
  config cpu 6 'val_data = val' 'val_scales = 2' 'val_every = 2' > c0.ini && sed 's/^lr = .*/lr = 1e-4/' c0.ini > c.ini
  config res 6 > r0.ini && sed 's/^lr = .*/lr = 1e-4/' r0.ini > r.ini
  "$liif" train --config g.ini --device cuda 2> err.txt || { cat err.txt; fail "--device cuda (emulated) failed"; }
  grep -qi "GPU" err.txt || { cat err.txt; fail "the run did not say it used the GPU"; }
  LIIF_CUDA_MODULE= "$liif" train --config c.ini --device cpu 2> /dev/null || fail "the CPU run failed"
  "$liif" train --config r.ini --device cpu --resume gpu/ckpt-00000003.safetensors 2> /dev/null || fail "CPU resume failed"
  paste -d, gpu/log.csv cpu/log.csv | awk -F, -v n="$(head -1 gpu/log.csv | awk -F, '{print NF}')" '
      NR > 1 { d = $3 - $(3 + n); if (d < 0) d = -d; if (d > m) m = d }
      END { printf "GPU (emulated) vs CPU, 6 steps: max loss difference %.2g\n", m; exit !(NR == 7 && m < 1e-4) }' ||
    { paste -d, gpu/log.csv cpu/log.csv; fail "the emulated GPU run and the CPU run differ"; }
  paste -d, gpu/val.csv cpu/val.csv | awk -F, 'NR > 1 { n++; if ($1 != $13) bad = 1
      for (i = 4; i <= 11; i++) { d = $i - $(i + 12); if (d < 0) d = -d; if (i == 5 || i == 9) d *= 10; if (d > m) m = d } }
      END { printf "validation, GPU (emulated) vs CPU: max difference %.2g\n", m; exit bad || n != 4 || !(m < 0.01) }' ||
    { paste -d, gpu/val.csv cpu/val.csv; fail "the emulated GPU's validation and the CPU's differ"; }
  tail -n 3 cpu/log.csv | cut -d, -f1,3 > c.txt
  tail -n 3 res/log.csv | cut -d, -f1,3 > r.txt
  paste -d, c.txt r.txt | awk -F, '$1 != $3 { bad = 1 } { d = $2 - $4; if (d < 0) d = -d; if (d > m) m = d }
      END { printf "GPU checkpoint resumed on the CPU, steps 4-6: max loss difference %.2g\n", m; exit !(!bad && m < 1e-4) }' ||
    { paste -d, c.txt r.txt; fail "the GPU checkpoint resumed on the CPU does not continue the run"; }
  ;;
err-no-config)
  "$liif" train 2> err.txt; rc=$?
  expect_error "no config" "config"
  ;;
*) fail "unknown case" ;;
esac
echo "PASS $case_name"
