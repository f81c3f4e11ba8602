#!/bin/sh
# train_gan_test.sh: one `liif train` / `liif export` case of the GAN variants (meson suite 'train').
# usage: train_gan_test.sh CASE LIIF MKPNG MAKE_RANDOM_MODEL MKVGG STCMP
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
src=$(cd "$(dirname "$0")/../.." && pwd)
case_name=$1 liif=$(abs "$2") mkpng=$(abs "$3") mkmodel=$(abs "$4") mkvgg=$(abs "$5") stcmp=$(abs "$6")
work=$(mktemp -d /tmp/liif-train-gan-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL $case_name: $*"; exit 1; }

mkdir data
"$mkpng" data/a.png 96 80 3 8 gradient || fail mkpng
"$mkpng" data/b.png 72 64 3 8 gradient || fail mkpng
"$mkmodel" gan.safetensors liif-gan 8 2 16 || fail make_random_model
"$mkmodel" plain.safetensors liif 8 2 16 || fail make_random_model
"$mkvgg" vgg.safetensors 4 || fail mkvgg

config() { # config OUT STEPS [extra lines]
  out=$1 steps=$2; shift 2
  printf '[train]\ndata = data\noutput = %s\ninit_from = gan.safetensors\nvariant = liif-gan\nvgg = vgg.safetensors\nbatch = 2\ninp_size = 16\npatch = 16\nscale_max = 2\nlr = %s\nsteps = %s\ncheckpoint_every = %s\nthreads = 2\nseed = 7\ndisc_nf = 4\ndisc_hidden = 8\n' "$out" "${LR:-1e-3}" "$steps" "${CK:-2}"
  for l in "$@"; do printf '%s\n' "$l"; done
}

# every loss column of log.csv (all but step, epoch, lr, seconds) is a finite number
finite_log() {
  awk -F, 'NR == 1 { if ($0 != "step,epoch,loss,lr,seconds,l1,adv,per,d_real,d_fake,fm") exit 1; next }
           { for (i = 1; i <= 11; i++) if (i != 2 && i != 4 && i != 5 && ($i == "" || $i !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/)) exit 1 }' "$1"
}

case $case_name in
gan-steps)
  config out 3 > run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train failed"; }
  [ "$(wc -l < out/log.csv)" -eq 4 ] || fail "log.csv has $(wc -l < out/log.csv) lines, want 4"
  finite_log out/log.csv || { cat out/log.csv; fail "log.csv: a loss is not a finite number"; }
  cat out/log.csv
  awk -F, 'NR > 1 && ($8 <= 0 || $6 <= 0 || $7 <= 0 || $9 <= 0 || $10 <= 0) { exit 1 }' out/log.csv || fail "a loss term is zero"
  [ -f out/ckpt-00000002.safetensors ] && [ -f out/last.safetensors ] || fail "no checkpoints"
  for k in disc.conv0_0.weight disc.bn0_1.running_mean adam.m.disc.linear2.weight adam.v.imnet2.layers.0.weight gan.d_step; do
    grep -aq "$k" out/last.safetensors || fail "the checkpoint lacks $k"
  done
  ;;
gan-validation)
  # a two-decoder run's val.csv: one row per step, scale and detail, each what `liif eval` measures of that step's
  # generator (PSNR, sharpness, detail PSNR, grid score on Y), bicubic beside
  mkdir val && "$mkpng" val/v.png 64 48 3 8 gradient && "$mkpng" val/w.png 40 56 3 8 gradient || fail mkpng
  config out 4 'w_per = 0' 'val_data = val' 'val_scales = 2,3' 'val_every = 2' 'val_details = 0,0.5,1' > run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train with validation failed"; }
  cat out/val.csv
  [ "$(wc -l < out/val.csv)" -eq 19 ] || fail "val.csv has $(wc -l < out/val.csv) lines, want 19 (3 steps x 2 scales x 3 details)"
  awk -F, 'NR > 1 {printf "%s,%s,%s ", $1, $2, $3}' out/val.csv | grep -q "^0,2,0 0,2,0.5 0,2,1 0,3,0 0,3,0.5 0,3,1 \
2,2,0 2,2,0.5 2,2,1 2,3,0 2,3,0.5 2,3,1 4,2,0 4,2,0.5 4,2,1 4,3,0 4,3,0.5 4,3,1 $" ||
    fail "val.csv rows are not steps 0, 2, 4 x scales 2, 3 x details 0, 0.5, 1"
  [ "$(awk -F, 'NR > 1 && $1 == 4 && $2 == 2 {print $4}' out/val.csv | sort -u | wc -l)" -eq 3 ] ||
    fail "the three details give the same PSNR"
  "$liif" export out/ckpt-00000004.safetensors g4.safetensors || fail "export"
  for d in 0 0.5 1; do
    "$liif" eval -q --model g4.safetensors --data val --scales 2,3 --detail $d --out "eval-$d" 2> err.txt ||
      { cat err.txt; fail "liif eval at detail $d"; }
    for sc in 2 3; do
      col=$(( sc == 2 ? 2 : 7 )) # table.csv: method, then psnr, ssim, sharpness, detail psnr, grid per scale
      want=$(awk -F, -v c=$col '$1 == "model" {printf "%.4f %.4f %.4f %.4f", $c, $(c + 2), $(c + 3), $(c + 4)}' "eval-$d/table.csv")
      got=$(awk -F, -v d=$d -v s=$sc '$1 == 4 && $2 == s && $3 == d {printf "%.4f %.4f %.4f %.4f", $4, $5, $6, $7}' out/val.csv)
      [ -n "$want" ] && [ "$want" = "$got" ] || fail "detail $d x$sc: val.csv says '$got', liif eval '$want'"
      want=$(awk -F, -v c=$col '$1 == "bicubic" {printf "%.4f %.4f %.4f %.4f", $c, $(c + 2), $(c + 3), $(c + 4)}' "eval-$d/table.csv")
      got=$(awk -F, -v d=$d -v s=$sc '$1 == 4 && $2 == s && $3 == d {printf "%.4f %.4f %.4f %.4f", $8, $9, $10, $11}' out/val.csv)
      [ "$want" = "$got" ] || fail "bicubic x$sc: val.csv says '$got', liif eval '$want'"
    done
  done
  echo "val.csv agrees with liif eval at 3 details and 2 scales"
  ;;
gan-resume)
  config straight 4 > a.ini
  "$liif" train --config a.ini 2> /dev/null || fail "straight run failed"
  config half 2 > h.ini
  "$liif" train --config h.ini 2> /dev/null || fail "first half failed"
  config resumed 4 > b.ini
  "$liif" train --config b.ini --resume half/last.safetensors 2> /dev/null || fail "resumed run failed"
  "$liif" export straight/last.safetensors s.safetensors || fail "export straight"
  "$liif" export resumed/last.safetensors r.safetensors || fail "export resumed"
  cmp s.safetensors r.safetensors || fail "4 steps straight and 2 + resume + 2 differ"
  [ "$(wc -l < resumed/log.csv)" -eq 3 ] || fail "the resumed log has $(wc -l < resumed/log.csv) lines, want 3"
  tail -n 1 straight/log.csv | cut -d, -f3,6- > s.txt
  tail -n 1 resumed/log.csv | cut -d, -f3,6- > r.txt
  cmp s.txt r.txt || fail "the losses of step 4 differ after a resume"
  echo "resume: bit-identical generator and losses"
  ;;
gan-export-upscale)
  config out 2 'adv_loss = minimax' > run.ini
  "$liif" train --config run.ini 2> /dev/null || fail "train failed"
  awk -F, 'NR > 1 && !($7 < 0) { exit 1 }' out/log.csv || fail "minimax: the adversarial term log(1 - D) is not negative"
  "$liif" export out/last.safetensors g.safetensors || fail "export"
  "$liif" export --fp16 out/last.safetensors g16.safetensors || fail "export --fp16"
  grep -aq 'adam\.' g.safetensors && fail "the export holds Adam moments"
  grep -aq 'disc\.' g.safetensors && fail "the export holds the discriminator"
  grep -aq 'imnet2.layers.0.weight' g.safetensors || fail "the export lacks imnet2"
  grep -aq '"liif.variant":"liif-gan"' g.safetensors || fail "the export lacks liif.variant = liif-gan"
  "$mkpng" in.png 20 16 3 8 gradient || fail mkpng
  for m in g g16; do
    for d in 0 1; do
      "$liif" upscale --model $m.safetensors --detail $d in.png up-$m-$d.png --scale 2.5 2> err.txt || { cat err.txt; fail "upscale with $m, detail $d"; }
      [ -s up-$m-$d.png ] || fail "no output with $m, detail $d"
    done
  done
  cmp -s up-g-0.png up-g-1.png && fail "detail 0 and 1 give the same image"
  ;;
gan-export-disc)
  # export --with-disc: the generator and the discriminator without Adam moments (a LIIF-GAN run that must go on
  # from a lent GPU machine whose checkpoint cannot come back); init_from such a file starts a new run from both
  config out 2 > run.ini
  "$liif" train --config run.ini 2> /dev/null || fail "train failed"
  "$liif" export --with-disc out/last.safetensors gd.safetensors || fail "export --with-disc"
  grep -aq 'adam\.' gd.safetensors && fail "the export holds Adam moments"
  "$stcmp" gd.safetensors out/last.safetensors disc. || fail "the export's discriminator is not the checkpoint's"
  "$stcmp" gd.safetensors out/last.safetensors imnet || fail "the export's decoders are not the checkpoint's"
  [ "$(wc -c < gd.safetensors)" -lt "$(wc -c < out/last.safetensors)" ] || fail "the export is not smaller"
  "$liif" export --with-disc plain.safetensors x.safetensors 2> err.txt && fail "--with-disc took a plain LIIF model"
  grep -q 'not a LIIF-GAN checkpoint' err.txt || { cat err.txt; fail "no one-line refusal: $(cat err.txt)"; }
  # a new run from it with lr 1e-12: one step moves no weight by more than ~1e-12, so D's weights are those of the
  # export (a random D would be ~0.1 away), G's too
  LR=1e-12 config next 1 > next.ini
  sed -i 's/^init_from = .*/init_from = gd.safetensors/' next.ini
  "$liif" train --config next.ini 2> err.txt || { cat err.txt; fail "init_from the export failed"; }
  [ "$(wc -l < next/log.csv)" -eq 2 ] || fail "the new run's log has $(wc -l < next/log.csv) lines, want 2 (step 1)"
  for k in disc.conv disc.linear disc.bn0_1.weight imnet2.; do
    "$stcmp" gd.safetensors next/last.safetensors $k 1e-9 || fail "$k: the new run did not start from the export"
  done
  # its config must match the discriminator it takes
  config bad 1 'disc_nf = 8' > bad.ini
  sed -i 's/^init_from = .*/init_from = gd.safetensors/' bad.ini
  "$liif" train --config bad.ini 2> err.txt && fail "a discriminator of another width was taken"
  [ "$(wc -l < err.txt)" -eq 1 ] && grep -q 'is not the config' err.txt || { cat err.txt; fail "no one-line error"; }
  ;;
gan-resume-networks)
  # a run whose checkpoint (moments included) cannot come back from a lent GPU goes on from its networks alone:
  # export --with-disc keeps the run's config, RNG and step; --resume with it continues the step count and the batch
  # sequence with fresh Adam moments. lr 1e-12: the weights stay put, so the straight run's losses at steps 3 and 4
  # are what the continued run must log if it draws the same batches.
  LR=1e-12 config straight 4 > s.ini
  "$liif" train --config s.ini 2> /dev/null || fail "straight run failed"
  LR=1e-12 config half 2 > h.ini
  "$liif" train --config h.ini 2> /dev/null || fail "first half failed"
  "$liif" export --with-disc half/last.safetensors gd.safetensors || fail "export --with-disc"
  "$liif" export --with-disc --fp16 half/last.safetensors gd16.safetensors || fail "export --with-disc --fp16"
  grep -aq 'adam\.' gd16.safetensors && fail "the export holds Adam moments"
  grep -aq '"train.step_base":"2"' gd.safetensors || fail "the export does not say the run's step (2)"
  grep -aq '"train.rng":' gd.safetensors || fail "the export lacks the run's RNG state"
  s32=$(wc -c < gd.safetensors) s16=$(wc -c < gd16.safetensors)
  [ $((s16 * 100)) -lt $((s32 * 55)) ] || fail "--fp16 with --with-disc: $s16 bytes against $s32 (want about half)"
  for f in gd gd16; do
    LR=1e-12 config cont-$f 4 > c.ini
    "$liif" train --config c.ini --resume $f.safetensors 2> err-$f.txt || { cat err-$f.txt; fail "resume from $f failed"; }
    grep -q 'has no Adam moments (liif export --with-disc): the run goes on from step 2 with fresh ones' err-$f.txt ||
      { cat err-$f.txt; fail "no note that the moments start afresh"; }
    [ "$(cut -d, -f1 cont-$f/log.csv | tr '\n' ' ')" = "step 3 4 " ] ||
      { cat cont-$f/log.csv; fail "$f: the continued run does not log steps 3 and 4"; }
    grep -aq '"train.step_base":"2"' cont-$f/last.safetensors && grep -aq '"gan.g_step":"2"' cont-$f/last.safetensors ||
      fail "$f: the continued run's checkpoint does not say 2 steps before its moments and 2 with them"
  done
  # the same batches as the straight run: every loss column (l1, adv, d_real, d_fake) of steps 3 and 4, within
  # float32 noise from the float32 networks and within float16 rounding of the weights from the --fp16 ones
  for f in gd:1e-5 gd16:2e-3; do
    tail -n 2 straight/log.csv > s.csv
    tail -n 2 cont-${f%%:*}/log.csv > c.csv
    paste -d, s.csv c.csv | awk -F, -v tol=${f#*:} -v n=11 '
      { for (i = 6; i <= 10; i++) { if (i == 8) continue; d = $i - $(i + n); if (d < 0) d = -d
          if (d > tol * ($i < 0 ? -$i : $i) + 1e-7) { print "column " i ": " $i " against " $(i + n); bad = 1 } } }
      END { exit bad }' || { cat straight/log.csv cont-${f%%:*}/log.csv; fail "${f%%:*}: the continued run drew other batches"; }
  done
  # a config whose discriminator is not the file's is refused in one line, for --resume as for init_from
  LR=1e-12 config bad 4 'disc_nf = 8' > bad.ini
  "$liif" train --config bad.ini --resume gd16.safetensors 2> err.txt && fail "a discriminator of another width was taken"
  [ "$(wc -l < err.txt)" -eq 1 ] && grep -q 'is not the config' err.txt || { cat err.txt; fail "no one-line error"; }
  # a normal resume of the continued run keeps counting from its base
  LR=1e-12 config cont-gd 6 > c6.ini
  "$liif" train --config c6.ini --resume cont-gd/last.safetensors 2> err.txt || { cat err.txt; fail "second resume failed"; }
  [ "$(tail -n 1 cont-gd/log.csv | cut -d, -f1)" = 6 ] || { cat cont-gd/log.csv; fail "the second resume did not reach step 6"; }
  "$liif" export cont-gd/last.safetensors g.safetensors || fail "export"
  grep -aq '"liif.trained_steps":"6"' g.safetensors || fail "the export does not say 6 trained steps"
  echo "resume from networks: steps 3-4 continue the batch sequence (float32 and float16 exports)"
  ;;
warmup)
  # warmup = 4: the lr column rises as lr * k / 4 over the optimiser's first 4 steps; a resume from a checkpoint
  # (moments kept) goes on with the count, one from networks without moments (export --with-disc) warms up again;
  # plain LIIF runs warm up too
  lrs() { cut -d, -f4 "$1" | tail -n +2 | awk '{ printf "%s%.6g", (NR > 1 ? " " : ""), $1 / 1e-3 }'; }
  config full 5 'warmup = 4' > f.ini
  "$liif" train --config f.ini 2> /dev/null || fail "warm-up run failed"
  [ "$(lrs full/log.csv)" = "0.25 0.5 0.75 1 1" ] || { cat full/log.csv; fail "lr over steps 1-5: $(lrs full/log.csv)"; }
  config half 2 'warmup = 4' > h.ini
  "$liif" train --config h.ini 2> /dev/null || fail "first half failed"
  cp -r half half2
  config half 5 'warmup = 4' > r.ini
  "$liif" train --config r.ini --resume half/last.safetensors 2> /dev/null || fail "resume failed"
  [ "$(lrs half/log.csv)" = "0.25 0.5 0.75 1 1" ] || { cat half/log.csv; fail "resumed with moments: $(lrs half/log.csv)"; }
  "$liif" export --with-disc half2/last.safetensors gd.safetensors || fail "export --with-disc"
  config cont 5 'warmup = 4' > c.ini
  "$liif" train --config c.ini --resume gd.safetensors 2> /dev/null || fail "resume from networks failed"
  [ "$(lrs cont/log.csv)" = "0.25 0.5 0.75" ] || { cat cont/log.csv; fail "fresh moments at step 3: $(lrs cont/log.csv)"; }
  config plain 3 'warmup = 2' 'sample_q = 64' > p.ini
  sed -i 's/^init_from = .*/init_from = plain.safetensors/; s/^variant = .*/variant = liif/; /^vgg/d' p.ini
  "$liif" train --config p.ini 2> err.txt || { cat err.txt; fail "LIIF run failed"; }
  [ "$(lrs plain/log.csv)" = "0.5 1 1" ] || { cat plain/log.csv; fail "LIIF lr over steps 1-3: $(lrs plain/log.csv)"; }
  echo "warm-up: 0.25 0.5 0.75 1 1; kept through a checkpoint resume, again after a resume from networks; LIIF too"
  ;;
gan-init-liif)
  # a one-decoder LIIF model as init_from (decoder 2 = decoder 1 with a zero last layer), liif-gan-sf
  config out 2 > run.ini
  sed -i 's/^init_from = .*/init_from = plain.safetensors/; s/^variant = .*/variant = liif-gan-sf/' run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train failed"; }
  finite_log out/log.csv || { cat out/log.csv; fail "log.csv: a loss is not a finite number"; }
  "$liif" export out/last.safetensors g.safetensors || fail "export"
  grep -aq '"liif.variant":"liif-gan-sf"' g.safetensors || fail "the export lacks liif.variant = liif-gan-sf"
  "$mkpng" in.png 20 16 3 8 gradient || fail mkpng
  "$liif" upscale --model g.safetensors in.png up.png --scale 2 2> err.txt || { cat err.txt; fail "upscale"; }
  ;;
gan-s)
  # LIIF-GAN-S: one decoder on the last-layer features, from a plain LIIF model, every term into it
  config out 2 > run.ini
  sed -i 's/^init_from = .*/init_from = plain.safetensors/; s/^variant = .*/variant = liif-gan-s/' run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train failed"; }
  finite_log out/log.csv || { cat out/log.csv; fail "log.csv: a loss is not a finite number"; }
  grep -aq 'imnet2' out/last.safetensors && fail "a LIIF-GAN-S checkpoint holds imnet2"
  "$liif" export out/last.safetensors g.safetensors || fail "export"
  grep -aq '"liif.variant":"liif-gan-s"' g.safetensors || fail "the export lacks liif.variant = liif-gan-s"
  "$mkpng" in.png 20 16 3 8 gradient || fail mkpng
  "$liif" upscale --model g.safetensors in.png up.png --scale 2 2> err.txt || { cat err.txt; fail "upscale"; }
  # a two-decoder model does not fit liif-gan-s
  sed -i 's/^init_from = .*/init_from = gan.safetensors/; s/^output = .*/output = out2/' run.ini
  "$liif" train --config run.ini 2> err.txt; rc=$?
  [ "$rc" -ne 0 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q "is a liif-gan model; the config asks for liif-gan-s" err.txt \
    || { cat err.txt; fail "a liif-gan init_from for liif-gan-s is not refused in one line"; }
  ;;
gan-err-no-vgg)
  config out 2 > run.ini
  sed -i '/^vgg = /d' run.ini
  "$liif" train --config run.ini 2> err.txt; rc=$?
  [ "$rc" -ne 0 ] || fail "exit status 0"
  [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "not one line of error"; }
  grep -q "VGG19 safetensors.*torchvision key names.*none can be downloaded here" err.txt || { cat err.txt; fail "the error does not explain the VGG file"; }
  [ -d out ] && fail "the run started"
  cat err.txt
  # without a perceptual term no VGG19 is needed: L1 + adversarial train, resume and export
  printf 'w_per = 0\n' >> run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "a w_per = 0 run without vgg"; }
  finite_log out/log.csv || { cat out/log.csv; fail "log.csv: a loss is not a finite number"; }
  "$liif" export out/last.safetensors g.safetensors || fail "export of the w_per = 0 run"
  ;;
gan-err-device)
  # --device cuda, with the perceptual loss (VGG19, w_per = 1) and without (w_per = 0): the GPU trains, or, without
  # one, exit 3 in one line naming the option, before any step
  for w in 1 0; do
    config out$w 3 "w_per = $w" > run$w.ini
    if "$liif" train --config run$w.ini --device cuda 2> err.txt; then
      echo "a GPU trained here: --device cuda works for liif-gan with w_per = $w"
      finite_log out$w/log.csv || { cat out$w/log.csv; fail "GPU: a loss is not a finite number"; }
    else
      rc=$?
      [ $rc -eq 3 ] || { cat err.txt; fail "--device cuda without a GPU, w_per = $w: exit $rc, want 3"; }
      [ "$(grep -vc 'warning: skipping' err.txt)" -eq 1 ] || { cat err.txt; fail "--device cuda without a GPU: not one line"; }
      grep -q "device cuda" err.txt || { cat err.txt; fail "--device cuda: the error does not name the option"; }
      grep -q "w_per\|VGG" err.txt && { cat err.txt; fail "--device cuda refused for the perceptual loss"; }
      [ ! -e out$w/log.csv ] || fail "--device cuda without a GPU trained anyway"
      cat err.txt
    fi
  done
  ;;
gan-cuda-emu)
  # The CLI's GPU LIIF-GAN path (core/train/gan_gpu.c, the module's GAN trainer) end to end, against the CUDA
  # emulation (tests/cuda-emu; $LIIF_CUDA_MODULE set by meson): 6 steps agree with the CPU's (same batches, float32
  # on both, sums in another order), and the emulated GPU's step-3 checkpoint resumes on the CPU to the CPU's steps.
  # Then 4 steps with discriminator feature matching (w_fm), and 3 with the perceptual loss (w_per), on both devices.
  # lr 1e-4: Adam's first steps turn rounding-sized gradient differences into lr-sized moves. Both sides are
  # deterministic (serial emulation, bit-exact CPU), so the bounds hold every run: measured 1.2e-4 and 2.3e-5.
  [ -n "${LIIF_CUDA_MODULE:-}" ] || { echo "SKIP: no CUDA emulation module"; exit 77; }
  LR=1e-4 CK=3 config gpu 6 'w_per = 0' > g.ini
  LR=1e-4 config cpu 6 'w_per = 0' > c.ini
  LR=1e-4 config res 6 'w_per = 0' > r.ini
  "$liif" train --config g.ini --device cuda 2> err.txt || { cat err.txt; fail "--device cuda (emulated) failed"; }
  grep -q "GPU GAN step phases" err.txt || { cat err.txt; fail "the run did not use the GPU trainer"; }
  LIIF_CUDA_MODULE= "$liif" train --config c.ini --device cpu 2> /dev/null || fail "the CPU run failed"
  "$liif" train --config r.ini --device cpu --resume gpu/ckpt-00000003.safetensors 2> /dev/null || fail "CPU resume failed"
  finite_log gpu/log.csv || { cat gpu/log.csv; fail "gpu log.csv: a loss is not a finite number"; }
  # loss, l1, adv, d_real, d_fake, fm of each step: within 1e-3 (the discriminator's BN statistics round differently)
  paste -d, gpu/log.csv cpu/log.csv | awk -F, 'NR > 1 { for (i = 3; i <= 11; i++) if (i != 4 && i != 5 && i != 8) {
      d = $i - $(i + 11); if (d < 0) d = -d; if (d > m) m = d } } END { printf "GPU (emulated) vs CPU, 6 steps: max loss difference %.2g\n", m; exit !(m < 1e-3) }' ||
    { paste -d, gpu/log.csv cpu/log.csv; fail "the emulated GPU run and the CPU run differ"; }
  tail -n 3 cpu/log.csv | cut -d, -f1,3,6 > c.txt
  cut -d, -f1,3,6 res/log.csv | tail -n 3 > r.txt
  paste -d, c.txt r.txt | awk -F, '{ for (i = 2; i <= 3; i++) { d = $i - $(i + 3); if (d < 0) d = -d; if (d > m) m = d } }
      END { printf "GPU checkpoint resumed on the CPU, steps 4-6: max loss difference %.2g\n", m; exit !(m < 1e-4) }' ||
    { paste -d, c.txt r.txt; fail "the GPU checkpoint resumed on the CPU does not continue the run"; }
  # these two also validate (on the emulated GPU engine, pulling the GPU's weights, and on the CPU) at details 0 and 1
  # (stale host weights differ by 0.2 dB)
  mkdir val && "$mkpng" val/v.png 48 40 3 8 gradient || fail mkpng
  LR=1e-4 CK=10 config gpu-fm 4 'w_per = 0' 'w_fm = 0.5' 'val_data = val' 'val_scales = 2' 'val_every = 2' > gf.ini
  LR=1e-4 CK=10 config cpu-fm 4 'w_per = 0' 'w_fm = 0.5' 'val_data = val' 'val_scales = 2' 'val_every = 2' > cf.ini
  "$liif" train --config gf.ini --device cuda 2> err.txt || { cat err.txt; fail "--device cuda (emulated), w_fm, failed"; }
  LIIF_CUDA_MODULE= "$liif" train --config cf.ini --device cpu 2> /dev/null || fail "the CPU run with w_fm failed"
  awk -F, 'NR > 1 && !($11 > 0) { exit 1 }' gpu-fm/log.csv || { cat gpu-fm/log.csv; fail "w_fm = 0.5 but no feature matching loss logged"; }
  awk -F, 'NR > 1 && $11 != 0 { exit 1 }' gpu/log.csv || { cat gpu/log.csv; fail "w_fm = 0 but a feature matching loss logged"; }
  paste -d, gpu-fm/log.csv cpu-fm/log.csv | awk -F, 'NR > 1 { for (i = 3; i <= 11; i++) if (i != 4 && i != 5 && i != 8) {
      d = $i - $(i + 11); if (d < 0) d = -d; if (d > m) m = d } } END { printf "with w_fm = 0.5, GPU (emulated) vs CPU, 4 steps: max loss difference %.2g\n", m; exit !(m < 1e-3) }' ||
    { paste -d, gpu-fm/log.csv cpu-fm/log.csv; fail "with w_fm, the emulated GPU run and the CPU run differ"; }
  # steps 0, 2, 4 at details 0 and 1: the same rows, figures within 0.01 dB / 1e-3 (weights a few steps apart by rounding)
  paste -d, gpu-fm/val.csv cpu-fm/val.csv | awk -F, 'NR > 1 { n++; if ($1 != $13 || $3 != $15) bad = 1
      for (i = 4; i <= 11; i++) { d = $i - $(i + 12); if (d < 0) d = -d; if (i == 5 || i == 9) d *= 10; if (d > m) m = d } }
      END { printf "validation, GPU (emulated) vs CPU: max difference %.2g\n", m; exit bad || n != 6 || !(m < 0.01) }' ||
    { paste -d, gpu-fm/val.csv cpu-fm/val.csv; fail "the emulated GPU's validation and the CPU's differ"; }
  # the perceptual loss (VGG19 of mkvgg, w_per = 1) on both devices: every loss column, per included, agrees
  LR=1e-4 CK=10 config gpu-per 3 'w_per = 1' > gp.ini
  LR=1e-4 CK=10 config cpu-per 3 'w_per = 1' > cp.ini
  "$liif" train --config gp.ini --device cuda 2> err.txt || { cat err.txt; fail "--device cuda (emulated), w_per, failed"; }
  grep -q "GPU GAN step phases" err.txt || { cat err.txt; fail "the w_per = 1 run did not use the GPU trainer"; }
  LIIF_CUDA_MODULE= "$liif" train --config cp.ini --device cpu 2> /dev/null || fail "the CPU run with w_per failed"
  awk -F, 'NR > 1 && !($8 > 0) { exit 1 }' gpu-per/log.csv || { cat gpu-per/log.csv; fail "w_per = 1 but no perceptual loss logged"; }
  paste -d, gpu-per/log.csv cpu-per/log.csv | awk -F, 'NR > 1 { for (i = 3; i <= 11; i++) if (i != 4 && i != 5) {
      d = $i - $(i + 11); if (d < 0) d = -d; if (d > m) m = d } } END { printf "with w_per = 1, GPU (emulated) vs CPU, 3 steps: max loss difference %.2g\n", m; exit !(m < 1e-3) }' ||
    { paste -d, gpu-per/log.csv cpu-per/log.csv; fail "with w_per, the emulated GPU run and the CPU run differ"; }
  ;;
gan-ship)
  # tools/ship-model.sh on a LIIF-GAN checkpoint: an fp16 export with its own detail (LIIF_SHIP_DETAIL) and a card
  # with one table per detail (0, 0.5, 1) on Set5 and Set14 (x2 only: LIIF_SHIP_SCALES), each detail's numbers its own
  # (detail 0 is decoder 1 alone).
  [ -d "$src/../shared/data/benchmark/Set5" ] || { echo "SKIP: no ../shared/data/benchmark next to the source tree"; exit 77; }
  config out 2 'w_per = 0' 'w_fm = 0.5' > run.ini
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train failed"; }
  mkdir photos ship
  printf 'file\tpackage\tversion\tlicence\tcopyright\n' > photos/LICENSES.txt
  printf 'pkg__a.png\tpkg\t1.0\tCC0-1.0\tnobody\n' >> photos/LICENSES.txt
  LIIF_SHIP_OUT="$work/ship" LIIF_BIN="$liif" LIIF_SHIP_SCALES=2 LIIF_SHIP_PLOT=0 LIIF_SHIP_DETAIL=0.6 \
    LIIF_SHIP_DETAIL_WHY="(test)" "$src/tools/ship-model.sh" "$work/out/last.safetensors" gan-test "Test GAN" "$work/photos" > ship.txt 2>&1 ||
    { cat ship.txt; fail "ship-model failed"; }
  card=ship/gan-test.md
  [ -s ship/gan-test.safetensors ] || fail "no model written"
  grep -aq '"liif.variant":"liif-gan"' ship/gan-test.safetensors || fail "the shipped model is not liif-gan"
  for t in "Set5, detail 0: decoder 1 alone" "Set5, detail 0.5" "Set5, detail 1: the full GAN detail" "Set14, detail 0: decoder 1 alone"; do
    grep -q "^### $t" "$card" || { cat "$card"; fail "the card has no table '$t'"; }
  done
  grep -q "w_fm = 0.5" "$card" || fail "the card does not show the run's settings"
  grep -aq '"liif.detail":"0.6000"' ship/gan-test.safetensors || fail "the shipped model does not carry its detail 0.6"
  grep -q 'Its own detail is \*\*0.6\*\*.*' "$card" || { cat "$card"; fail "the card does not give the model's own detail"; }
  # the model rows of Set5 at detail 0 and at detail 1 differ (decoder 2 adds something after two steps at lr 1e-3)
  p0=$(awk '/^### Set5, detail 0:/ { f = 1 } f && /^\| model/ { print; exit }' "$card")
  p1=$(awk '/^### Set5, detail 1:/ { f = 1 } f && /^\| model/ { print; exit }' "$card")
  [ -n "$p0" ] && [ -n "$p1" ] || { cat "$card"; fail "no table rows"; }
  [ "$p0" != "$p1" ] || { cat "$card"; fail "detail 0 and detail 1 give the same table row: $p0"; }
  ;;
*) fail "unknown case" ;;
esac
exit 0
