#!/bin/sh
# tools/gpu-train.sh: one leg of a long `liif train --device cuda` run on a lent GPU machine, from tools/gpu-pack.sh's
# pack: trains for at most SECONDS (liif train --time-limit: last.safetensors is written), and copies the run's
# log.csv and last.safetensors, split into parts of 15 MB (a device call returns files of at most 16 MB), to $OUT.
# Join them again with `cat last.safetensors.part-* > last.safetensors` and resume the next leg from it.
# usage: tools/gpu-train.sh CONFIG SECONDS [CKPT]   (from the repo root; unpacks $LIIF_GPU_PACK, default .gpu, when needed)
set -u
[ $# -ge 2 ] || { echo "usage: $0 CONFIG SECONDS [CKPT]" >&2; exit 2; }
W=${TMPDIR:-/tmp}/liif-gpu
PACK=${LIIF_GPU_PACK:-.gpu}
[ -x "$W/liif/bin/liif" ] || { mkdir -p "$W" && tar xzf "$PACK/liif-gpu.tar.gz" -C "$W"; } || exit 1
export LD_LIBRARY_PATH="$W/liif/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LIIF_CUDA_MODULE="$W/liif/lib/liif-cuda.so"
out=$(sed -n 's/^ *output *= *//p' "$1" | tail -1)
[ -n "$out" ] || { echo "gpu-train: $1 names no output folder" >&2; exit 2; }
if [ $# -ge 3 ] && [ ! -f "$3" ]; then
  echo "gpu-train: no checkpoint $3 here (a fresh machine?): starting the run from its config"
fi
if [ $# -ge 3 ] && [ -f "$3" ]; then
  "$W/liif/bin/liif" train --config "$1" --resume "$3" --device cuda --time-limit "$2"
else
  "$W/liif/bin/liif" train --config "$1" --device cuda --time-limit "$2"
fi
rc=$?
echo "liif train exited $rc"
tail -2 "$out/log.csv"
if [ -n "${OUT:-}" ] && [ -f "$out/last.safetensors" ]; then
  cp "$out/log.csv" "$OUT/log.csv"
  split -b 15000000 -d "$out/last.safetensors" "$OUT/last.safetensors.part-"
  ls -l "$OUT"
fi
[ $rc -eq 0 ]
