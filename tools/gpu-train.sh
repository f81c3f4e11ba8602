#!/bin/sh
# tools/gpu-train.sh: one leg of a long `liif train --device cuda` run on a lent GPU machine, from tools/gpu-pack.sh's
# pack: trains for at most SECONDS (liif train --time-limit: last.safetensors is written), and copies the run's
# log.csv, its generator as model.safetensors and last.safetensors split into parts of 15 MB (a device call returns
# files of at most 16 MB, 64 MiB together), to $OUT: the checkpoint when it fits, else (LIIF-GAN) its two networks
# in float16 without Adam moments, from which the next leg (CKPT) goes on with the same run and fresh moments.
# Join them again with `cat last.safetensors.part-* > last.safetensors` and resume the next leg from it.
# With the room left, the leg's val.csv (the config's val_data, e.g. tools/gpu-pack.sh's val/) and the generator of
# each checkpoint this leg wrote (ckpt-STEP, float16, what a shipped model holds) come back too, newest first while
# they fit, as snapshots.tar (parts of 15 MB: `cat snapshots.tar.part-* | tar x`): the checkpoint to ship is chosen
# afterwards from val.csv and `liif eval` (a LIIF-GAN's detail can peak before the leg's end).
# usage: tools/gpu-train.sh CONFIG SECONDS [CKPT]   (from the repo root; unpacks $LIIF_GPU_PACK, default .gpu, when needed;
# the call carries [.gpu/bin, .gpu/photos, .gpu/val] and, to resume, the folder holding CKPT)
set -u
[ $# -ge 2 ] || { echo "usage: $0 CONFIG SECONDS [CKPT]" >&2; exit 2; }
W=${TMPDIR:-/tmp}/liif-gpu
PACK=${LIIF_GPU_PACK:-.gpu}
[ -x "$W/liif/bin/liif" ] || { mkdir -p "$W" && tar xzf "$PACK/bin/liif-gpu.tar.gz" -C "$W"; } || exit 1
export LD_LIBRARY_PATH="$W/liif/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LIIF_CUDA_MODULE="$W/liif/lib/liif-cuda.so"
out=$(sed -n 's/^ *output *= *//p' "$1" | tail -1)
[ -n "$out" ] || { echo "gpu-train: $1 names no output folder" >&2; exit 2; }
if [ $# -ge 3 ] && [ ! -f "$3" ]; then
  echo "gpu-train: no checkpoint $3 here (a fresh machine?): starting the run from its config"
fi
config=$1
val=$(sed -n 's/^ *val_data *= *//p' "$1" | tail -1)
if [ -n "$val" ] && [ ! -d "$val" ]; then # not packed (gpu-pack.sh without LIIF_VAL): train all the same
  config=$W/run-noval.ini
  grep -v '^ *val_' "$1" > "$config"
  echo "gpu-train: no validation folder $val here: this leg trains without validation"
fi
mkdir -p "$out" && ls "$out" > "$W/ckpts-before" # the checkpoints of earlier legs on this machine (not snapshots)
dev=${LIIF_TRAIN_DEVICE:-cuda} # cpu: the same leg on the CPU (to try this script without a GPU)
if [ $# -ge 3 ] && [ -f "$3" ] && ! grep -aq 'adam\.m\.' "$3" && grep -aq '"train\.rng"' "$3"; then
  # the last leg's networks without their Adam moments (liif export --with-disc): the same run goes on (its step,
  # RNG and schedule) with fresh moments
  "$W/liif/bin/liif" train --config "$config" --resume "$3" --device "$dev" --time-limit "$2"
elif [ $# -ge 3 ] && [ -f "$3" ] && ! grep -aq 'adam\.m\.' "$3"; then
  # networks without the run's metadata (an export of before 2026-12-07): a new run from them
  cfg=${TMPDIR:-/tmp}/gpu-train-$$.ini
  sed "s|^ *init_from *=.*|init_from = $3|" "$config" > "$cfg"
  echo "gpu-train: $3 has no Adam moments: a new run from its generator and discriminator (init_from)"
  "$W/liif/bin/liif" train --config "$cfg" --device "$dev" --time-limit "$2"
elif [ $# -ge 3 ] && [ -f "$3" ]; then
  "$W/liif/bin/liif" train --config "$config" --resume "$3" --device "$dev" --time-limit "$2"
else
  "$W/liif/bin/liif" train --config "$config" --device "$dev" --time-limit "$2"
fi
rc=$?
echo "liif train exited $rc"
tail -2 "$out/log.csv"
if [ -n "${OUT:-}" ] && [ -f "$out/last.safetensors" ]; then
  cp "$out/log.csv" "$OUT/log.csv"
  # The generator alone (float32; `liif upscale` reads it) always comes back. The whole checkpoint (Adam moments) comes
  # back when it fits what a call returns (8 files, 64 MiB together, with the log and the model): a LIIF run's does
  # (19 MB); a LIIF-GAN run's (108 MiB: its discriminator and every moment) does not, so its two networks come back
  # without moments and in float16 (liif export --with-disc --fp16, 19 MB, small enough to travel with the next
  # leg's photos), from which the next leg goes on with the same run and fresh Adam moments.
  "$W/liif/bin/liif" export "$out/last.safetensors" "$OUT/model.safetensors" || echo "gpu-train: export failed"
  ck=$(stat -c %s "$out/last.safetensors")
  if [ "$ck" -le $((${LIIF_RETURN_MAX_MIB:-40} * 1048576)) ]; then # (tests lower it to try the other branch)
    split -b 15000000 -d "$out/last.safetensors" "$OUT/last.safetensors.part-"
  else
    echo "gpu-train: the checkpoint ($((ck / 1048576)) MiB) is more than a call can return: its networks come back" \
      "in float16 without Adam moments (the next leg goes on from them with fresh moments)"
    "$W/liif/bin/liif" export --with-disc --fp16 "$out/last.safetensors" "$W/networks.safetensors" &&
      split -b 15000000 -d "$W/networks.safetensors" "$OUT/last.safetensors.part-"
  fi
  [ ! -f "$out/val.csv" ] || cp "$out/val.csv" "$OUT/val.csv"
  # the snapshots, newest first, in what a call still returns: 64 MiB and 8 files in all (less a MiB for safety)
  used=$(du -cb "$OUT"/* | tail -1 | cut -f1) files=$(ls "$OUT" | wc -l)
  room=$((${LIIF_RETURN_TOTAL_MIB:-64} * 1048576 - 1048576 - used)) # (tests lower the total)
  mkdir -p "$W/snap" && rm -f "$W/snap"/*
  total=0 taken=""
  for ck in $(ls "$out" | grep '^ckpt-.*\.safetensors$' | sort -r); do
    grep -qx "$ck" "$W/ckpts-before" && continue
    g="$W/snap/gen-${ck#ckpt-}"
    "$W/liif/bin/liif" export --fp16 "$out/$ck" "$g" || { echo "gpu-train: export of $ck failed"; rm -f "$g"; continue; }
    # the tar so far with this file: a header and padding per file (at most 1 KiB), 10 KiB at the end
    tar_size=$((total + $(stat -c %s "$g") + 1024 + 10240))
    if [ "$tar_size" -gt "$room" ] || [ $((files + (tar_size + 14999999) / 15000000)) -gt 8 ]; then rm -f "$g"; break; fi
    total=$((tar_size - 10240)) taken="$taken ${ck#ckpt-}"
  done
  if [ -n "$taken" ]; then
    (cd "$W/snap" && tar cf - gen-*) | split -b 15000000 -d - "$OUT/snapshots.tar.part-"
    echo "gpu-train: the generators of steps$(echo "$taken" | sed 's/\.safetensors//g; s/ 0*/ /g') in snapshots.tar.part-*"
  fi
  ls -l "$OUT"
fi
[ $rc -eq 0 ]
