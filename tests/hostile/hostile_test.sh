#!/bin/sh
# hostile_test.sh: one hostile-file case (meson suite 'hostile'): the file makes `liif` fail with the documented
# exit code and one "liif: ..." line naming the file and the problem, in under a second and 200 MB, leaving no
# output behind. `liif upscale` fails with 1 (runtime), `liif train` with 2 for a bad config or data folder, as
# documented. usage: hostile_test.sh CASE LIIF MKHOSTILE MKPNG
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
case_name=$1 liif=$(abs "$2") mk=$(abs "$3") mkpng=$(abs "$4")
work=$(mktemp -d "${TMPDIR:-/tmp}/liif-hostile.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
mkdir out
fail() { echo "FAIL $case_name: $*"; exit 1; }
"$mkpng" in.png 9 7 3 8 gradient || fail mkpng
"$mk" model good.safetensors 3 3 || fail "mkhostile model"

# The time `liif --version` takes here: process start-up (oneDNN, OpenMP, the sanitizers' runtime) on a
# machine that may be busy; the loaders get one second beyond it.
"$mk" measure -- "$liif" --version 3>measure.txt >/dev/null 2>&1
read -r _ startup_ms _ <measure.txt

# expect CODE PATTERN [WARNING] -- ARGS...: liif ARGS exits CODE within 1 s (beyond start-up) and 200 MB
# (ASan's own memory is allowed for: 600 MB there), stderr is one error line matching PATTERN (after
# WARNING lines, when given), and out/ stays empty.
expect() {
  code=$1 pattern=$2 warn=$3
  shift 4
  echo "+ liif $*"
  "$mk" measure -- "$liif" "$@" 3>measure.txt 2>err.txt
  read -r rc ms kib <measure.txt
  sed 's/^/  stderr: /' err.txt
  echo "  exit $rc, $ms ms (start-up $startup_ms ms), peak $((kib / 1024)) MiB"
  [ "$rc" = "$code" ] || fail "exit status $rc, want $code"
  limit=200
  [ -n "${ASAN_OPTIONS:-}" ] && limit=600
  [ "$ms" -lt $((startup_ms + 1000)) ] || fail "took $ms ms (start-up alone: $startup_ms ms)"
  [ "$kib" -lt $((limit * 1024)) ] || fail "peak memory $((kib / 1024)) MiB"
  if [ -n "$warn" ]; then
    grep -q "^liif: warning: .*$warn" err.txt || fail "no warning matching '$warn'"
    grep -v '^liif: warning: ' err.txt >err1.txt
    mv err1.txt err.txt
  fi
  [ "$(wc -l <err.txt)" -eq 1 ] || fail "not one line of error"
  grep -q "^liif: " err.txt || fail "the error does not start with 'liif: '"
  grep -qE "$pattern" err.txt || fail "the error does not match '$pattern'"
  if LC_ALL=C grep -q "$(printf '\033')" err.txt; then fail "raw escape character in the message"; fi
  [ -z "$(ls -A out)" ] || fail "output left behind: $(ls -A out)"
}

upscale() { expect "$1" "$2" "" -- upscale "$3" out/out.png --model "$4" --scale 2; }
train() { # train PATTERN WARNING: a run on folder data/
  printf '[train]\ndata = data\noutput = out/run\ninit_from = good.safetensors\nbatch = 1\ninp_size = 8\nscale_max = 2\nsample_q = 16\nsteps = 1\n' >run.ini
  expect 2 "$1" "$2" -- train --config run.ini
}

case $case_name in
model-1-channel) "$mk" model m.safetensors 1 1 && upscale 1 "m\.safetensors: the input channel count .* is 1; every backend needs 3" in.png m.safetensors ;;
model-4-channels) "$mk" model m.safetensors 4 4 && upscale 1 "m\.safetensors: the input channel count .* is 4" in.png m.safetensors ;;
model-4-outputs) "$mk" model m.safetensors 3 4 && upscale 1 "m\.safetensors: the output width .* is 4" in.png m.safetensors ;;
model-fifo) mkfifo m.safetensors && upscale 1 "m\.safetensors: not a regular file" in.png m.safetensors ;;
model-huge-header) "$mk" st-header m.safetensors 900000 && upscale 1 "m\.safetensors: tensor 'a'" in.png m.safetensors ;;
input-fifo) mkfifo in2.png && upscale 1 "in2\.png: not a regular file" in2.png good.safetensors ;;
input-device) upscale 1 "/dev/zero: not a regular file" /dev/zero good.safetensors ;;
png-chunk-*)
  type=${case_name#png-chunk-}
  "$mk" png-chunk bomb.png "$type" || fail mkhostile
  [ "$(wc -c <bomb.png)" -le 60 ] || fail "bomb.png is $(wc -c <bomb.png) bytes"
  upscale 1 "bomb\.png: " bomb.png good.safetensors ;;
png-lying-header) "$mk" png-lying big.png 20000 20000 && upscale 1 "big\.png: a 20000x20000 image .*(bomb|corrupt)" big.png good.safetensors ;;
png-zeros-bomb) "$mk" png-zeros zeros.png 12000 12000 && upscale 1 "zeros\.png: a 12000x12000 image .*bomb" zeros.png good.safetensors ;;
jpeg-lying-header) "$mk" jpeg big.jpg 16 16 20000 20000 && upscale 1 "big\.jpg: a 20000x20000 image cannot come from a [0-9]*-byte file" big.jpg good.safetensors ;;
webp-lying-header) # a lossless header that says 16383 x 16383, in 40 bytes
  { printf 'RIFF\040\000\000\000WEBPVP8L\024\000\000\000\057\376\277\377\017'; head -c 15 /dev/zero; } >big.webp
  [ "$(wc -c <big.webp)" -eq 40 ] || fail "big.webp is $(wc -c <big.webp) bytes"
  upscale 1 "big\.webp: a 16383x16383 image cannot come from a 40-byte file" big.webp good.safetensors ;;
jpeg-truncated)
  "$mk" jpeg full.jpg 200 160 && head -c "$(($(wc -c <full.jpg) * 3 / 4))" full.jpg >half.jpg
  upscale 1 "half\.jpg: corrupt or truncated JPEG data" half.jpg good.safetensors ;;
jpeg-many-scans)
  "$mk" jpeg-scans scans.jpg 64 48 || fail "mkhostile jpeg-scans"
  [ "$(wc -c <scans.jpg)" -le 131072 ] || fail "scans.jpg is $(wc -c <scans.jpg) bytes"
  upscale 1 "scans\.jpg: more than 100 scans" scans.jpg good.safetensors ;;
train-jpeg-truncated)
  mkdir data && "$mk" jpeg full.jpg 64 64 && head -c "$(($(wc -c <full.jpg) / 2))" full.jpg >data/half.jpg
  train "none of its 1 images is usable" "data/half\.jpg: corrupt or truncated" ;;
train-jpeg-huge)
  mkdir data && "$mk" jpeg data/huge.jpg 16 16 20000 20000
  train "none of its 1 images is usable" "data/huge\.jpg: a 20000x20000 image cannot come from a [0-9]*-byte file" ;;
train-jpeg-too-large)
  mkdir data && "$mk" jpeg data/huge.jpg 16 16 65500 65500
  train "none of its 1 images is usable" "data/huge\.jpg: image too large (65500x65500" ;;
train-photo-fifo)
  mkdir data && mkfifo data/pipe.jpg
  train "none of its 1 images is usable" "data/pipe\.jpg: not a regular file" ;;
train-config-inp-size)
  mkdir data && printf '[train]\ndata = data\ninp_size = 65536\n' >run.ini
  expect 2 "run\.ini: key 'inp_size' = 65536 is out of range \(allowed 4\.\.512\)" "" -- train --config run.ini ;;
train-config-escape)
  mkdir data && printf '[train]\ndata = data\nbatch = \033[2J\n' >run.ini
  expect 2 "run\.ini: key 'batch' = '.x1b\[2J' is not a whole number" "" -- train --config run.ini ;;
train-config-fifo) mkfifo run.ini && expect 2 "run\.ini: not a regular file" "" -- train --config run.ini ;;
*) fail "unknown case" ;;
esac
echo "PASS $case_name"
