#!/bin/sh
# cli_test.sh: one test case of the liif command; run by meson as
#   sh cli_test.sh CASE LIIF MKPNG PNGINFO MODEL [GOLDEN [GAN_MODEL [MKJPEG]]]
# MODEL is a model file for the cases that run the engine; GOLDEN the folder of the LIIF
# golden vectors (golden/liif-edsr-baseline) for the cases that compare with PyTorch's
# output; GAN_MODEL a two-decoder model for --detail. A case whose files are missing
# exits 77 (skipped). Error cases check the documented exit code, a one-line "liif: ..." message
# naming the problem, and that no output file and no temporary file is left behind.
set -u

CASE=$1
LIIF=$2
MKPNG=$3
PNGINFO=$4
MODEL=${5:-}
GOLDEN=${6:-}
GAN_MODEL=${7:-}
MKJPEG=${8:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/liif-cli-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
OUTDIR=$T/out
mkdir "$OUTDIR"

fail() {
    echo "FAIL [$CASE]: $*" >&2
    exit 1
}

need_model() {
    if [ -z "$MODEL" ] || [ ! -f "$MODEL" ]; then
        echo "SKIP [$CASE]: no test model (${MODEL:-none given})" >&2
        exit 77
    fi
}

need_golden() {
    if [ -z "$GOLDEN" ] || [ ! -f "$GOLDEN/weights.safetensors" ]; then
        echo "SKIP [$CASE]: no golden vectors (${GOLDEN:-none given})" >&2
        exit 77
    fi
}

# golden_case SIZE CASEFILE ARGS...: upscale the golden input to SIZE with the golden
# weights; every 8-bit sample is PyTorch's value rounded (within 0.6 / 255).
golden_case() {
    need_golden
    size=$1
    ref=$GOLDEN/$2
    shift 2
    expect_ok upscale "$GOLDEN/input.png" "$OUTDIR/out.png" --model "$GOLDEN/weights.safetensors" \
        --size "$size" "$@"
    d=$("$PNGINFO" "$OUTDIR/out.png" diff "$ref" rgb) || fail "pnginfo diff"
    echo "max |liif - pytorch| = $d / 255" >&2
    awk -v d="$d" 'BEGIN { exit !(d <= 0.6) }' || fail "output differs from $ref by $d / 255"
}

mkpng() {
    "$MKPNG" "$@" || fail "mkpng $*"
}

# run ARGS...: runs liif; sets RC, and the files $T/stdout and $T/stderr.
run() {
    echo "+ liif $*" >&2
    "$LIIF" "$@" >"$T/stdout" 2>"$T/stderr"
    RC=$?
    sed 's/^/  stderr: /' "$T/stderr" >&2
}

out_dir_empty() {
    [ -z "$(ls -A "$OUTDIR")" ] || fail "files left in the output folder: $(ls -A "$OUTDIR")"
}

# expect_error CODE PATTERN ARGS...: liif fails with exit CODE, prints exactly one line
# "liif: ..." matching the extended regular expression PATTERN (case-insensitive), and
# leaves nothing in the output folder.
expect_error() {
    code=$1
    pattern=$2
    shift 2
    run "$@"
    [ "$RC" -eq "$code" ] || fail "exit code $RC, expected $code"
    [ "$(wc -l <"$T/stderr")" -eq 1 ] || fail "expected exactly one line on stderr"
    grep -q '^liif: ' "$T/stderr" || fail "the message does not start with 'liif: '"
    grep -Eqi -- "$pattern" "$T/stderr" || fail "the message does not match '$pattern'"
    [ ! -s "$T/stdout" ] || fail "unexpected output on stdout"
    out_dir_empty
}

# expect_ok ARGS...: liif succeeds quietly (--quiet is added).
expect_ok() {
    run "$@" --quiet
    [ "$RC" -eq 0 ] || fail "exit code $RC, expected 0"
    [ ! -s "$T/stderr" ] || fail "stderr is not empty with --quiet"
}

# wait_after_sigint PID: liif must stop within 60 s of the SIGINT it was sent; its exit code into RC.
wait_after_sigint() {
    waited=0
    while kill -0 "$1" 2>/dev/null && [ "$waited" -lt 60 ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1"
        fail "liif did not stop within 60 s of SIGINT"
    fi
    wait "$1"
    RC=$?
    sed 's/^/  stderr: /' "$T/stderr" >&2
}

# expect_info FILE "W H C BITS"
expect_info() {
    info=$("$PNGINFO" "$1") || fail "pnginfo $1"
    [ "$info" = "$2" ] || fail "$1 is '$info', expected '$2'"
}

# stats FILE CHANNEL -> "MIN MAX MEAN" in sample units
stats() {
    "$PNGINFO" "$1" stats "$2" || fail "pnginfo $1 stats $2"
}

upscale_rgb_error() { # CODE PATTERN ARGS...: an error case on a small RGB input
    code=$1
    pattern=$2
    shift 2
    mkpng "$T/in.png" 9 7 3 8
    expect_error "$code" "$pattern" upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" "$@"
}

case $CASE in
# ---------------------------------------------------------------- help
help)
    run --help
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    for word in upscale --version --help "Exit status" 130; do
        grep -q -- "$word" "$T/stdout" || fail "liif --help does not mention $word"
    done
    ;;
help-upscale)
    run upscale --help
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    for opt in --model --scale --size --fit --scale-x --scale-y --detail --threads --tile --memory \
        --device --precision --quiet --timing --quality JPEG EXIF LIIF_MODEL "Exit status"; do
        grep -q -- "$opt" "$T/stdout" || fail "liif upscale --help does not mention $opt"
    done
    for dev in auto cpu cpu-ref cuda; do
        grep -q -- "$dev" "$T/stdout" || fail "liif upscale --help does not mention device $dev"
    done
    ;;
version)
    run --version
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -Eq '^liif [0-9]+\.[0-9]+' "$T/stdout" || fail "no version on stdout"
    ;;
err-no-command)
    expect_error 2 "command" ;;
err-unknown-command)
    expect_error 2 "unknown command 'frobnicate'" frobnicate ;;
err-unknown-option)
    mkpng "$T/in.png" 9 7 3 8
    expect_error 2 "--frobnicate" upscale "$T/in.png" "$OUTDIR/out.png" --scale 2 --frobnicate ;;
err-missing-output-arg)
    mkpng "$T/in.png" 9 7 3 8
    expect_error 2 "IN and OUT" upscale "$T/in.png" --scale 2 ;;

# ------------------------------------------------------- bad inputs
err-not-png)
    need_model
    echo "this is not a PNG image" >"$T/in.png"
    expect_error 1 "in\.png" upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2 ;;
err-missing-input)
    need_model
    expect_error 1 "nothere\.png" upscale "$T/nothere.png" "$OUTDIR/out.png" --model "$MODEL" \
        --scale 2 ;;
err-truncated-model)
    need_model
    head -c 3000 "$MODEL" >"$T/truncated.safetensors"
    mkpng "$T/in.png" 9 7 3 8
    expect_error 1 "truncated\.safetensors" upscale "$T/in.png" "$OUTDIR/out.png" \
        --model "$T/truncated.safetensors" --scale 2 ;;
err-input-and-model)
    # the input is read while the model loads: with both bad, the one line names the input (what to fix first);
    # with the input good and too large an output, the size (not the model)
    need_model
    head -c 3000 "$MODEL" >"$T/truncated.safetensors"
    echo "this is not a PNG image" >"$T/in.png"
    expect_error 1 "in\.png" upscale "$T/in.png" "$OUTDIR/out.png" --model "$T/truncated.safetensors" --scale 2
    grep -q "truncated" "$T/stderr" && fail "the model's error came before the input's"
    mkpng "$T/ok.png" 9 7 3 8
    expect_error 2 "65536" upscale "$T/ok.png" "$OUTDIR/out.png" --model "$T/truncated.safetensors" --scale 10000 ;;
err-missing-model)
    mkpng "$T/in.png" 9 7 3 8
    expect_error 1 "nomodel\.safetensors" upscale "$T/in.png" "$OUTDIR/out.png" \
        --model "$T/nomodel.safetensors" --scale 2 ;;
err-scale-zero)
    upscale_rgb_error 2 "scale must be a positive finite number, got 0" --scale 0 ;;
err-scale-negative)
    upscale_rgb_error 2 "scale must be a positive finite number, got -1" --scale -1 ;;
err-scale-nan)
    upscale_rgb_error 2 "scale must be a positive finite number, got nan" --scale nan ;;
err-scale-inf)
    upscale_rgb_error 2 "scale must be a positive finite number, got inf" --scale inf ;;
err-scale-not-a-number)
    upscale_rgb_error 2 "'2x'.*not a number" --scale 2x ;;
err-scale-too-small)
    upscale_rgb_error 2 "0 px" --scale 0.01 ;;
err-too-large)
    upscale_rgb_error 2 "70000x10.*65536" --size 70000x10 ;;
err-too-large-scale)
    upscale_rgb_error 2 "65536" --scale 10000 ;;
err-too-many-pixels)
    upscale_rgb_error 2 "1073741824 pixels" --size 40000x40000 ;;
err-bad-size)
    upscale_rgb_error 2 "--size '12by5'" --size 12by5 ;;
err-size-zero)
    upscale_rgb_error 2 "--size 0x5: each side must be at least 1 px" --size 0x5 ;;
err-bad-fit)
    upscale_rgb_error 2 "invalid --fit '30x': expected WxH" --fit 30x ;;
err-conflicting-fit)
    upscale_rgb_error 2 "conflicting size options" --size 40x --fit 30x30 ;;
err-conflicting-size)
    upscale_rgb_error 2 "conflicting size options" --scale 2 --size 20x20 ;;
err-conflicting-scale-xy)
    upscale_rgb_error 2 "conflicting size options" --scale 2 --scale-x 2 --scale-y 3 ;;
err-scale-x-alone)
    upscale_rgb_error 2 "--scale-x needs --scale-y" --scale-x 2 ;;
err-no-size)
    upscale_rgb_error 2 "no output size" ;;
err-detail-range)
    upscale_rgb_error 2 "--detail must be in \[0, 1\], got 1.5" --scale 2 --detail 1.5 ;;
err-bad-device)
    upscale_rgb_error 2 "unknown --device 'gpu'" --scale 2 --device gpu ;;
err-bad-precision)
    upscale_rgb_error 2 "unknown --precision 'bf8'" --scale 2 --precision bf8 ;;
err-unwritable)
    need_model
    mkpng "$T/in.png" 9 7 3 8
    expect_error 1 "nodir/out\.png" upscale "$T/in.png" "$OUTDIR/nodir/out.png" \
        --model "$MODEL" --scale 2 ;;
err-file-too-large)
    # The output stops growing in the middle of the stream (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC)
    # while the next bands are computed and written by the writer thread: one line naming the file and
    # the cause, exit 1, no output and no temporary file left.
    need_model
    mkpng "$T/in.png" 64 48 3 8
    echo "+ (ulimit -f 10) liif upscale ... --scale 4 --band-rows 8" >&2
    (trap '' XFSZ; ulimit -f 10; exec "$LIIF" upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 4 \
        --band-rows 8 --quiet) >"$T/stdout" 2>"$T/stderr"
    RC=$?
    sed 's/^/  stderr: /' "$T/stderr" >&2
    [ "$RC" -eq 1 ] || fail "exit code $RC, expected 1"
    [ "$(wc -l <"$T/stderr")" -eq 1 ] || fail "expected exactly one line on stderr"
    grep -Eq '^liif: .*out\.png: write failed: File too large' "$T/stderr" || fail "the message names no file or cause"
    out_dir_empty ;;
err-cuda)
    # In a build without CUDA (or on a machine without a GPU): exit 3 and a message.
    need_model
    mkpng "$T/in.png" 9 7 3 8
    run upscale "$T/in.png" "$OUTDIR/probe.png" --model "$MODEL" --scale 2 --device cuda --quiet
    if [ "$RC" -eq 0 ]; then
        echo "SKIP [$CASE]: CUDA is available here" >&2
        exit 77
    fi
    rm -f "$OUTDIR/probe.png"
    expect_error 3 "cuda" upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2 \
        --device cuda ;;
model-env-missing)
    # $LIIF_MODEL is used when --model is not given.
    mkpng "$T/in.png" 9 7 3 8
    LIIF_MODEL="$T/absent.safetensors"
    export LIIF_MODEL
    expect_error 1 "absent\.safetensors" upscale "$T/in.png" "$OUTDIR/out.png" --scale 2 ;;

# ------------------------------------------------------- good inputs
scale-odd)
    need_model
    mkpng "$T/in.png" 13 9 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2.5
    expect_info "$OUTDIR/out.png" "33 23 3 8" # round(32.5) = 33, round(22.5) = 23
    [ "$(ls -A "$OUTDIR")" = "out.png" ] || fail "leftovers: $(ls -A "$OUTDIR")"
    ;;
scale-down)
    need_model
    mkpng "$T/in.png" 13 9 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 0.5
    expect_info "$OUTDIR/out.png" "7 5 3 8"
    ;;
size)
    need_model
    mkpng "$T/in.png" 13 9 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --size 40x17
    expect_info "$OUTDIR/out.png" "40 17 3 8"
    ;;
size-one-side)
    # --size Wx / xH: that side, the other from the input's aspect ratio (13x9: 40 wide is 27.7 high, 27 high is
    # 39 wide)
    need_model
    mkpng "$T/in.png" 13 9 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/w.png" --model "$MODEL" --size 40x
    expect_info "$OUTDIR/w.png" "40 28 3 8"
    expect_ok upscale "$T/in.png" "$OUTDIR/h.png" --model "$MODEL" --size x27
    expect_info "$OUTDIR/h.png" "39 27 3 8"
    # x27 is exactly --scale 3
    expect_ok upscale "$T/in.png" "$OUTDIR/s.png" --model "$MODEL" --scale 3
    cmp "$OUTDIR/h.png" "$OUTDIR/s.png" || fail "--size x27 of a 13x9 image differs from --scale 3"
    ;;
fit)
    # --fit: the largest size within the box with the input's aspect ratio, landscape and portrait
    need_model
    mkpng "$T/l.png" 13 9 3 8 && mkpng "$T/p.png" 9 13 3 8 || fail "inputs"
    expect_ok upscale "$T/l.png" "$OUTDIR/l.png" --model "$MODEL" --fit 30x30
    expect_info "$OUTDIR/l.png" "30 21 3 8"
    expect_ok upscale "$T/p.png" "$OUTDIR/p.png" --model "$MODEL" --fit 30x30
    expect_info "$OUTDIR/p.png" "21 30 3 8"
    expect_ok upscale "$T/l.png" "$OUTDIR/w.png" --model "$MODEL" --fit 26x100
    expect_info "$OUTDIR/w.png" "26 18 3 8"
    ;;
batch-fit)
    # one --fit for photos of both orientations; one --size stretches the one whose aspect ratio differs, with a note
    need_model
    mkpng "$T/w.png" 20 10 3 8 && mkpng "$T/t.png" 10 21 3 8 || fail "inputs"
    run upscale "$T/w.png" "$T/t.png" --model "$MODEL" --fit 30x30 -o "$OUTDIR" --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "stretches" "$T/stderr" && fail "a note on --fit: $(cat "$T/stderr")"
    expect_info "$OUTDIR/w.png" "30 15 3 8"
    expect_info "$OUTDIR/t.png" "14 30 3 8"
    rm -f "$OUTDIR"/*
    run upscale "$T/w.png" "$T/t.png" --model "$MODEL" --size 40x20 -o "$OUTDIR" --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    [ "$(grep -c stretches "$T/stderr")" -eq 1 ] &&
        grep -q "^liif: note: .*t\.png is 10x21: --size 40x20 stretches it (--fit 40x20 keeps its aspect ratio)" \
            "$T/stderr" || fail "no one note for the stretched image: $(cat "$T/stderr")"
    expect_info "$OUTDIR/t.png" "40 20 3 8"
    ;;
scale-xy)
    need_model
    mkpng "$T/in.png" 13 9 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale-x 2 --scale-y 3.5
    expect_info "$OUTDIR/out.png" "26 32 3 8" # round(31.5) = 32
    ;;
depth16)
    need_model
    mkpng "$T/in.png" 11 8 3 16
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "22 16 3 16"
    ;;
gray)
    need_model
    mkpng "$T/in.png" 11 8 1 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "22 16 1 8"
    ;;
gray16-alpha)
    need_model
    mkpng "$T/in.png" 11 8 2 16 alpha=0.25
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "22 16 2 16"
    set -- $(stats "$OUTDIR/out.png" 1)
    # 0.25 * 65535 = 16383.75, within 1/255 (257 units)
    [ "$1" -ge 16127 ] && [ "$2" -le 16641 ] || fail "alpha range $1..$2, expected ~16384"
    ;;
rgba-opaque)
    need_model
    mkpng "$T/in.png" 11 8 4 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 3
    expect_info "$OUTDIR/out.png" "33 24 4 8"
    set -- $(stats "$OUTDIR/out.png" 3)
    [ "$1" -eq 255 ] && [ "$2" -eq 255 ] || fail "alpha range $1..$2, expected 255..255"
    ;;
rgba-half)
    need_model
    mkpng "$T/in.png" 11 8 4 8 alpha=0.5
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2.3
    expect_info "$OUTDIR/out.png" "25 18 4 8"
    set -- $(stats "$OUTDIR/out.png" 3)
    [ "$1" -ge 127 ] && [ "$2" -le 129 ] || fail "alpha range $1..$2, expected 128 +- 1"
    ;;
palette)
    need_model
    mkpng "$T/in.png" 10 6 P 8
    expect_info "$T/in.png" "10 6 P 8"
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "20 12 3 8"
    ;;
palette-trns)
    need_model
    mkpng "$T/in.png" 10 6 PA 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "20 12 4 8"
    ;;
overwrite)
    # An existing output is replaced whole on success, and left untouched on failure.
    need_model
    mkpng "$T/in.png" 9 7 3 8
    mkpng "$OUTDIR/out.png" 5 5 1 8
    run upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 0 --quiet
    [ "$RC" -eq 2 ] || fail "exit code $RC, expected 2"
    expect_info "$OUTDIR/out.png" "5 5 1 8"
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "18 14 3 8"
    [ "$(ls -A "$OUTDIR")" = "out.png" ] || fail "leftovers: $(ls -A "$OUTDIR")"
    ;;
bands)
    # Output streamed in bands of 5 rows equals the output computed in one band.
    need_model
    mkpng "$T/in.png" 12 10 4 16 alpha=0.7
    expect_ok upscale "$T/in.png" "$T/whole.png" --model "$MODEL" --scale 2.7 --band-rows 1000
    expect_ok upscale "$T/in.png" "$T/banded.png" --model "$MODEL" --scale 2.7 --band-rows 5
    cmp "$T/whole.png" "$T/banded.png" || fail "banded output differs"
    ;;
bands-large)
    # An output of several 256 KiB pieces of PNG image data (deflated in parallel): the same bytes whether it
    # comes in one band or in bands of 7 rows, and a valid PNG.
    need_model
    # 400 x 300 RGBA at 16 bits: 300 rows of 1 + 3200 filtered bytes, 3.7 pieces.
    mkpng "$T/in.png" 200 150 4 16 alpha=0.6
    expect_ok upscale "$T/in.png" "$T/whole.png" --model "$MODEL" --scale 2 --band-rows 1000
    expect_ok upscale "$T/in.png" "$T/banded.png" --model "$MODEL" --scale 2 --band-rows 7
    cmp "$T/whole.png" "$T/banded.png" || fail "banded output differs"
    expect_info "$T/banded.png" "400 300 4 16"
    ;;
timing)
    # --timing prints one line on stdout: the total and its parts, and the PNG encoding time.
    need_model
    mkpng "$T/in.png" 40 30 3 8
    run upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 3 --band-rows 16 --timing --quiet
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    [ ! -s "$T/stderr" ] || fail "stderr is not empty with --quiet"
    [ "$(wc -l <"$T/stdout")" -eq 1 ] || fail "expected one line on stdout"
    n='[0-9]+\.[0-9]{3}'
    grep -Eq "^time: $n s in all: reading $n, model and device $n \(side by side: $n\), upscaling $n, waiting for the PNG writer $n, finishing the file $n; PNG encoding took $n on the writer thread \($n of it during the upscale\)$" \
        "$T/stdout" || fail "unexpected --timing line: $(cat "$T/stdout")"
    # the parts are measured, not zeros: the upscale (a few ms at least) and the encoding took time, and the
    # parts add up to no more than the total
    awk '{ gsub(/[(),;:]/, " "); total = $2; up = $17; enc = $31
           if (up <= 0 || enc <= 0 || up > total) { print "bad parts: total " total " upscaling " up " encoding " enc; exit 1 } }' \
        "$T/stdout" >"$T/why" || fail "--timing parts: $(cat "$T/why")"
    expect_info "$OUTDIR/out.png" "120 90 3 8"
    ;;
note-and-quiet)
    # --device auto may print a note (one line) about the device; --quiet silences it.
    need_model
    mkpng "$T/in.png" 9 7 3 8
    run upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    [ "$(wc -l <"$T/stderr")" -le 1 ] || fail "more than one line on stderr"
    if [ -s "$T/stderr" ]; then grep -q '^liif: ' "$T/stderr" || fail "note lacks 'liif: '"; fi
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    ;;
precision)
    # --precision fast runs (bf16 where the processor has it); without bf16 instructions (oneDNN's ISA
    # held below AVX512-BF16) it is int8 to the bit, without a note; int8 differs from fp32 by at most a few levels.
    need_model
    mkpng "$T/in.png" 12 10 3 8
    expect_ok upscale "$T/in.png" "$T/fp32.png" --model "$MODEL" --scale 2.5 --device cpu
    expect_ok upscale "$T/in.png" "$T/fast.png" --model "$MODEL" --scale 2.5 --device cpu --precision fast
    expect_info "$T/fast.png" "30 25 3 8"
    expect_ok upscale "$T/in.png" "$T/int8.png" --model "$MODEL" --scale 2.5 --device cpu --precision int8
    d=$("$PNGINFO" "$T/fp32.png" versus "$T/int8.png") || fail "pnginfo versus: $d"
    echo "$d" | awk '{ exit !($1 >= 1 && $1 <= 4) }' ||
        fail "int8 is $d (max, mean) levels from fp32 (want a max of 1 to 4: computed, and close)"
    ONEDNN_MAX_CPU_ISA=AVX512_CORE
    export ONEDNN_MAX_CPU_ISA
    run upscale "$T/in.png" "$T/fallback.png" --model "$MODEL" --scale 2.5 --device cpu --precision fast
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    [ ! -s "$T/stderr" ] || fail "a note on fast without bf16: $(cat "$T/stderr")"
    cmp "$T/int8.png" "$T/fallback.png" || fail "fast without bf16 differs from int8"
    # tf32 does not exist on the CPU: fp32 to the bit, with a note naming it
    run upscale "$T/in.png" "$T/tf32.png" --model "$MODEL" --scale 2.5 --device cpu --precision tf32
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    [ "$(wc -l <"$T/stderr")" -eq 1 ] && grep -q '^liif: --precision tf32: the cpu backend has no tf32 arithmetic, using fp32' "$T/stderr" ||
        fail "no one-line note on tf32's fp32 fallback: $(cat "$T/stderr")"
    cmp "$T/fp32.png" "$T/tf32.png" || fail "tf32 on the CPU differs from fp32"
    # bf16 where the processor lacks it (ISA still held): fp32 with the same reason as fast's
    run upscale "$T/in.png" "$T/bf16.png" --model "$MODEL" --scale 2.5 --device cpu --precision bf16
    [ "$RC" -eq 0 ] && grep -q '^liif: --precision bf16: .*fp32' "$T/stderr" || fail "bf16 fallback: $(cat "$T/stderr")"
    cmp "$T/fp32.png" "$T/bf16.png" || fail "the bf16 fallback differs from fp32"
    unset ONEDNN_MAX_CPU_ISA
    # with the processor's own ISA, fast on the CPU is bf16's arithmetic where it runs, else int8's, bit for bit
    run upscale "$T/in.png" "$T/bf16b.png" --model "$MODEL" --scale 2.5 --device cpu --precision bf16
    if [ -s "$T/stderr" ]; then
        cmp "$T/fast.png" "$T/int8.png" || fail "fast (no bf16 here: $(cat "$T/stderr")) differs from int8"
    else
        cmp "$T/fast.png" "$T/bf16b.png" || fail "--precision bf16 on the CPU differs from fast"
    fi
    ;;
model-env)
    need_model
    mkpng "$T/in.png" 9 7 3 8
    LIIF_MODEL=$MODEL
    export LIIF_MODEL
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --scale 2
    expect_info "$OUTDIR/out.png" "18 14 3 8"
    ;;
interrupt)
    # SIGINT during a long run (the largest output allowed): exit 130, a message, no
    # output, no temporary file.
    need_model
    mkpng "$T/in.png" 64 64 3 8
    "$LIIF" upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --size 32768x32768 --quiet \
        >"$T/stdout" 2>"$T/stderr" &
    pid=$!
    sleep 2
    kill -INT "$pid" 2>/dev/null || fail "liif ended before the signal"
    wait_after_sigint "$pid"
    [ "$RC" -eq 130 ] || fail "exit code $RC, expected 130"
    grep -q '^liif: interrupted' "$T/stderr" || fail "no 'interrupted' message"
    out_dir_empty
    ;;
progress-tty)
    # With stderr on a terminal a progress bar is drawn, then cleared.
    need_model
    command -v script >/dev/null 2>&1 || { echo "SKIP: no script(1)" >&2; exit 77; }
    mkpng "$T/in.png" 9 7 3 8
    script -qec "'$LIIF' upscale '$T/in.png' '$OUTDIR/out.png' --model '$MODEL' --scale 2" \
        /dev/null >"$T/tty" 2>&1 </dev/null || fail "liif failed under script(1)"
    grep -q '\[[#.]*\] *[0-9]*%' "$T/tty" || fail "no progress bar on the terminal"
    expect_info "$OUTDIR/out.png" "18 14 3 8"
    ;;
detail)
    # A two-decoder model: --detail 0 and 1 give different images.
    if [ -z "$GAN_MODEL" ] || [ ! -f "$GAN_MODEL" ]; then
        echo "SKIP [$CASE]: no two-decoder model" >&2
        exit 77
    fi
    mkpng "$T/in.png" 12 9 3 8
    for a in 0 0.5 1; do
        expect_ok upscale "$T/in.png" "$T/d$a.png" --model "$GAN_MODEL" --scale 2 --detail "$a"
        expect_info "$T/d$a.png" "24 18 3 8"
    done
    ! cmp -s "$T/d0.png" "$T/d1.png" || fail "--detail 0 and --detail 1 give the same image"
    # the model's own detail (liif export --default-detail: metadata liif.detail) is what no --detail gives
    run export --default-detail 0.25 "$GAN_MODEL" "$T/g25.safetensors"
    [ "$RC" -eq 0 ] || fail "export --default-detail: exit $RC: $(cat "$T/stderr")"
    expect_ok upscale "$T/in.png" "$T/own.png" --model "$T/g25.safetensors" --scale 2
    expect_ok upscale "$T/in.png" "$T/d25.png" --model "$T/g25.safetensors" --scale 2 --detail 0.25
    expect_ok upscale "$T/in.png" "$T/g1.png" --model "$T/g25.safetensors" --scale 2 --detail 1
    cmp -s "$T/own.png" "$T/d25.png" || fail "no --detail did not give the model's detail 0.25"
    ! cmp -s "$T/own.png" "$T/g1.png" || fail "the model's detail 0.25 gave detail 1's image"
    cmp -s "$T/g1.png" "$T/d1.png" || fail "the exported model is not the same network"
    # a one-decoder model takes no default detail; a bad value is a usage error
    if [ -f "${GOLDEN:-}/weights.safetensors" ]; then           # the golden LIIF: one decoder
        run export --default-detail 0.5 "$GOLDEN/weights.safetensors" "$T/x.safetensors"
        [ "$RC" -ne 0 ] && grep -q "not a LIIF-GAN" "$T/stderr" || fail "export --default-detail on plain LIIF: exit $RC"
        # --detail changes nothing there, and a note says so
        run upscale "$T/in.png" "$T/p5.png" --model "$GOLDEN/weights.safetensors" --scale 2 --device cpu --detail 0.5
        [ "$RC" -eq 0 ] && [ "$(wc -l <"$T/stderr")" -eq 1 ] &&
            grep -q "^liif: --detail has no effect: .*weights.safetensors has one decoder" "$T/stderr" ||
            fail "no note that --detail does nothing on a one-decoder model: exit $RC: $(cat "$T/stderr")"
        expect_ok upscale "$T/in.png" "$T/p.png" --model "$GOLDEN/weights.safetensors" --scale 2 --device cpu
        cmp -s "$T/p5.png" "$T/p.png" || fail "--detail changed a one-decoder model's image"
        # a two-decoder model: no note
        run upscale "$T/in.png" "$T/g5.png" --model "$GAN_MODEL" --scale 2 --device cpu --detail 0.5
        [ "$RC" -eq 0 ] && [ ! -s "$T/stderr" ] || fail "a note on --detail with a two-decoder model: $(cat "$T/stderr")"
    fi
    run export --default-detail 1.5 "$GAN_MODEL" "$T/x.safetensors"
    [ "$RC" -eq 2 ] || fail "export --default-detail 1.5: exit $RC"
    ;;
golden-96x80)
    golden_case 80x96 case_default_96x80.safetensors ;;
golden-61x50-bands)
    golden_case 50x61 case_default_61x50.safetensors --band-rows 7 ;;
golden-61x50-ref)
    golden_case 50x61 case_default_61x50.safetensors --device cpu-ref ;;

# ------------------------------------------------------- JPEG in and out
jpeg-in)
    # A JPEG input gives the same output, byte for byte, as a PNG of the pixels it decodes to.
    need_model
    "$MKJPEG" "$T/in.jpg" 21 14 || fail mkjpeg
    "$PNGINFO" "$T/in.jpg" topng "$T/same.png" || fail "pnginfo topng"
    expect_ok upscale "$T/in.jpg" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_info "$OUTDIR/out.png" "42 28 3 8"
    expect_ok upscale "$T/same.png" "$T/from-png.png" --model "$MODEL" --scale 2
    cmp -s "$OUTDIR/out.png" "$T/from-png.png" || fail "the JPEG's output differs from its pixels' as PNG"
    ;;
jpeg-out)
    # OUT.jpg is a JPEG of the PNG output's pixels (quality 95: within a few levels); --quality 20 is smaller.
    need_model
    mkpng "$T/in.png" 24 18 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 3
    expect_ok upscale "$T/in.png" "$OUTDIR/out.jpg" --model "$MODEL" --scale 3
    expect_ok upscale "$T/in.png" "$OUTDIR/low.JPEG" --model "$MODEL" --scale 3 --quality 20
    [ "$("$PNGINFO" "$OUTDIR/out.jpg" image)" = "JPEG 72 54 3 8" ] || fail "out.jpg: $("$PNGINFO" "$OUTDIR/out.jpg" image)"
    set -- $("$PNGINFO" "$OUTDIR/out.jpg" versus "$OUTDIR/out.png") || fail "pnginfo versus"
    echo "quality 95 against the PNG: max $1, mean $2 levels" >&2
    awk -v m="$1" -v a="$2" 'BEGIN { exit !(m <= 10 && a <= 1.5) }' || fail "out.jpg is $1 (mean $2) levels off the PNG"
    set -- $("$PNGINFO" "$OUTDIR/low.JPEG" versus "$OUTDIR/out.png")
    awk -v a="$2" 'BEGIN { exit !(a > 2) }' || fail "quality 20 is as close as 95 (mean $2)"
    [ "$(wc -c <"$OUTDIR/low.JPEG")" -lt "$(wc -c <"$OUTDIR/out.jpg")" ] || fail "quality 20 is not smaller"
    [ "$(ls -A "$OUTDIR" | tr '\n' ' ')" = "low.JPEG out.jpg out.png " ] || fail "leftovers: $(ls -A "$OUTDIR")"
    ;;
jpeg-orientation)
    # EXIF orientation 6 (turn 90 degrees clockwise): the output stands turned, with a note, and equals the
    # upscale of the turned pixels.
    need_model
    "$MKJPEG" "$T/in.jpg" 21 14 6 || fail mkjpeg
    [ "$("$PNGINFO" "$T/in.jpg" image)" = "JPEG 14 21 3 8" ] || fail "in.jpg reads as $("$PNGINFO" "$T/in.jpg" image)"
    "$PNGINFO" "$T/in.jpg" topng "$T/turned.png" || fail "pnginfo topng"
    run upscale "$T/in.jpg" "$OUTDIR/out.png" --model "$MODEL" --scale 2 --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "^liif: note: .*in\.jpg: EXIF orientation 6 applied" "$T/stderr" || fail "no note on the orientation"
    expect_info "$OUTDIR/out.png" "28 42 3 8"
    expect_ok upscale "$T/turned.png" "$T/turned-out.png" --model "$MODEL" --scale 2 --device cpu
    cmp -s "$OUTDIR/out.png" "$T/turned-out.png" || fail "not the upscale of the turned pixels"
    ;;
jpeg-gray)
    need_model
    "$MKJPEG" "$T/in.jpg" 16 12 0 gray || fail mkjpeg
    expect_ok upscale "$T/in.jpg" "$OUTDIR/out.jpg" --model "$MODEL" --scale 2
    [ "$("$PNGINFO" "$OUTDIR/out.jpg" image)" = "JPEG 32 24 1 8" ] || fail "out.jpg: $("$PNGINFO" "$OUTDIR/out.jpg" image)"
    ;;
jpeg-16bit-note)
    need_model
    mkpng "$T/in.png" 11 8 3 16
    run upscale "$T/in.png" "$OUTDIR/out.jpg" --model "$MODEL" --scale 2 --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "^liif: note: .*in\.png is 16-bit; a JPEG holds 8 bits" "$T/stderr" || fail "no note on the bit depth"
    [ "$("$PNGINFO" "$OUTDIR/out.jpg" image)" = "JPEG 22 16 3 8" ] || fail "out.jpg: $("$PNGINFO" "$OUTDIR/out.jpg" image)"
    ;;
err-jpeg-alpha)
    need_model
    mkpng "$T/in.png" 9 7 4 8 alpha=0.5
    expect_error 2 "out\.jpg: a JPEG has no alpha channel and .*in\.png has one: name the output \.png" \
        upscale "$T/in.png" "$OUTDIR/out.jpg" --model "$MODEL" --scale 2 ;;
err-output-format)
    mkpng "$T/in.png" 9 7 3 8
    expect_error 2 "out\.tif: cannot write '\.tif' files: name it \.png, \.jpg or \.webp" upscale "$T/in.png" "$OUTDIR/out.tif" --scale 2 ;;
err-quality)
    upscale_rgb_error 2 "--quality must be 1 to 100, got 101" --scale 2 --quality 101 ;;
err-truncated-jpeg)
    need_model
    "$MKJPEG" "$T/full.jpg" 200 150 || fail mkjpeg
    head -c "$(($(wc -c <"$T/full.jpg") * 3 / 4))" "$T/full.jpg" >"$T/in.jpg"
    expect_error 1 "in\.jpg: corrupt or truncated JPEG data" upscale "$T/in.jpg" "$OUTDIR/out.png" --model "$MODEL" --scale 2 ;;
icc)
    # The input's ICC colour profile goes into the output: PNG to PNG and to JPEG, JPEG to PNG, gray too.
    need_model
    mkpng "$T/in.png" 12 9 3 8 icc
    want=$("$PNGINFO" "$T/in.png" icc)
    [ "$want" != none ] || fail "mkpng wrote no profile"
    expect_ok upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_ok upscale "$T/in.png" "$OUTDIR/out.jpg" --model "$MODEL" --scale 2
    expect_ok upscale "$OUTDIR/out.jpg" "$T/again.png" --model "$MODEL" --scale 1.5
    for f in "$OUTDIR/out.png" "$OUTDIR/out.jpg" "$T/again.png"; do
        [ "$("$PNGINFO" "$f" icc)" = "$want" ] || fail "$f: profile '$("$PNGINFO" "$f" icc)', want '$want'"
    done
    mkpng "$T/gray.png" 12 9 1 8 icc
    expect_ok upscale "$T/gray.png" "$OUTDIR/gray.png" --model "$MODEL" --scale 2
    [ "$("$PNGINFO" "$OUTDIR/gray.png" icc)" = "$("$PNGINFO" "$T/gray.png" icc)" ] || fail "gray: the profile was lost"
    mkpng "$T/plain.png" 12 9 3 8
    expect_ok upscale "$T/plain.png" "$OUTDIR/plain.png" --model "$MODEL" --scale 2
    [ "$("$PNGINFO" "$OUTDIR/plain.png" icc)" = none ] || fail "a profile appeared from nowhere"
    ;;
metadata)
    # What the input says of itself goes into the output: EXIF with the output's size (a photo turned upright:
    # orientation 1 and no thumbnail), the density, PNG's gamma; --no-exif leaves the EXIF out, nothing else.
    need_model
    expect_meta() {
        got=$("$PNGINFO" "$1" meta) || fail "pnginfo $1 meta"
        [ "$got" = "$2" ] || fail "$1: '$got', want '$2'"
    }
    "$MKJPEG" "$T/in.jpg" 21 14 6 camera || fail mkjpeg
    expect_ok upscale "$T/in.jpg" "$OUTDIR/out.jpg" --model "$MODEL" --scale 2
    expect_meta "$OUTDIR/out.jpg" "exif 1 28 42 3 0 1 1; density 2 11811 11811; colour 0 0 0"
    expect_ok upscale "$T/in.jpg" "$OUTDIR/out.png" --model "$MODEL" --scale 2
    expect_meta "$OUTDIR/out.png" "exif 1 28 42 3 0 1 1; density 2 11811 11811; colour 0 0 0"
    expect_ok upscale "$T/in.jpg" "$OUTDIR/out.webp" --model "$MODEL" --scale 2
    expect_meta "$OUTDIR/out.webp" "exif 1 28 42 3 0 1 1; density 0 0 0; colour 0 0 0"
    mkpng "$T/in.png" 12 9 3 8 meta
    expect_meta "$T/in.png" "exif 1 12 9 3 130 1 1; density 2 11811 11811; colour 0 100000 0"
    expect_ok upscale "$T/in.png" "$OUTDIR/p.png" --model "$MODEL" --scale 2.5
    expect_meta "$OUTDIR/p.png" "exif 1 30 23 3 130 1 1; density 2 11811 11811; colour 0 100000 0"
    expect_ok upscale "$T/in.png" "$OUTDIR/p.jpg" --model "$MODEL" --scale 2.5
    expect_meta "$OUTDIR/p.jpg" "exif 1 30 23 3 130 1 1; density 2 11811 11811; colour 0 0 0"
    expect_ok upscale "$T/in.png" "$OUTDIR/no.png" --model "$MODEL" --scale 2 --no-exif
    expect_meta "$OUTDIR/no.png" "exif none; density 2 11811 11811; colour 0 100000 0"
    expect_ok upscale "$T/in.jpg" "$OUTDIR/no.jpg" --model "$MODEL" --scale 2 --no-exif
    expect_meta "$OUTDIR/no.jpg" "exif none; density 2 11811 11811; colour 0 0 0"
    mkpng "$T/plain.png" 12 9 3 8
    expect_ok upscale "$T/plain.png" "$OUTDIR/plain.jpg" --model "$MODEL" --scale 2
    expect_meta "$OUTDIR/plain.jpg" "exif none; density 0 0 0; colour 0 0 0"
    ;;
metadata-notes)
    # A PNG's gamma that a JPEG cannot carry is said; an sRGB-like one is not.
    need_model
    mkpng "$T/in.png" 12 9 3 8 meta
    run upscale "$T/in.png" "$OUTDIR/out.jpg" --model "$MODEL" --scale 2 --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "^liif: note: .*in\.png: its colour encoding (PNG gAMA) cannot be said in .*out\.jpg" "$T/stderr" ||
        fail "no note on the gamma"
    run upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2 --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    ! grep -q "note: .*colour" "$T/stderr" || fail "a note on colour for a PNG output"
    ;;
preview)
    # --preview: the 512x512 centre of the output as the whole run makes it (within a level: another tile width
    # may move the last bit), a time for the whole, and OUT not written.
    need_model
    mkpng "$T/in.png" 30 26 3 8
    run upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 20 --preview "$OUTDIR/p.png" --quiet
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "^preview: the 512x512 centre of the 600x520 output, in .*p\.png (.* s); the whole output would take about .* here (without --preview, .*out\.png is written)" \
        "$T/stdout" || fail "no preview line: $(cat "$T/stdout")"
    [ "$(ls -A "$OUTDIR")" = "p.png" ] || fail "in the output folder: $(ls -A "$OUTDIR")"
    expect_ok upscale "$T/in.png" "$T/full.png" --model "$MODEL" --scale 20
    "$PNGINFO" "$T/full.png" crop 44 4 512 512 "$T/centre.png" || fail "pnginfo crop"
    d=$("$PNGINFO" "$OUTDIR/p.png" versus "$T/centre.png") || fail "pnginfo versus"
    echo "preview vs the output's centre: max mean = $d levels" >&2
    echo "$d" | awk '{ exit !($1 <= 1.001 && $2 <= 0.01) }' || fail "the preview is not the output's centre: $d"
    ;;
preview-small)
    # An output smaller than the crop: the preview is the whole output, to the bit; alpha and gray go through.
    need_model
    mkpng "$T/in.png" 12 9 2 8 alpha=0.5
    expect_ok upscale "$T/in.png" "$T/full.png" --model "$MODEL" --scale 2
    run upscale "$T/in.png" "$OUTDIR/out.png" --model "$MODEL" --scale 2 --preview "$T/p.png" --quiet
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "^preview: the 24x18 centre of the 24x18 output" "$T/stdout" || fail "no preview line: $(cat "$T/stdout")"
    cmp -s "$T/p.png" "$T/full.png" || fail "the preview of a small output is not the output"
    out_dir_empty
    ;;
err-preview-batch)
    mkpng "$T/in.png" 9 7 3 8
    expect_error 2 "--preview is for one image, not for --output-dir" \
        upscale "$T/in.png" --scale 2 -o "$OUTDIR" --preview "$T/p.png" ;;
webp-in)
    # A WebP in gives the same bytes as a PNG of its decoded pixels.
    need_model
    mkpng "$T/src.png" 21 14 3 8
    expect_ok upscale "$T/src.png" "$T/in.webp" --model "$MODEL" --scale 1.5 --quality 80
    [ "$("$PNGINFO" "$T/in.webp" image)" = "WebP 32 21 3 8" ] || fail "in.webp: $("$PNGINFO" "$T/in.webp" image)"
    "$PNGINFO" "$T/in.webp" topng "$T/decoded.png" || fail "pnginfo topng"
    expect_ok upscale "$T/in.webp" "$OUTDIR/a.png" --model "$MODEL" --scale 2
    expect_ok upscale "$T/decoded.png" "$OUTDIR/b.png" --model "$MODEL" --scale 2
    cmp -s "$OUTDIR/a.png" "$OUTDIR/b.png" || fail "not the upscale of the decoded pixels"
    ;;
webp-out)
    # .webp: lossless at --quality 100 (the PNG's pixels exactly), lossy at 95 by default (near them).
    need_model
    mkpng "$T/in.png" 24 18 3 8
    expect_ok upscale "$T/in.png" "$OUTDIR/ref.png" --model "$MODEL" --scale 2
    expect_ok upscale "$T/in.png" "$OUTDIR/exact.webp" --model "$MODEL" --scale 2 --quality 100
    d=$("$PNGINFO" "$OUTDIR/exact.webp" versus "$OUTDIR/ref.png") || fail "pnginfo versus"
    [ "$d" = "0.000 0.0000" ] || fail "lossless WebP differs from the PNG: $d"
    expect_ok upscale "$T/in.png" "$OUTDIR/lossy.webp" --model "$MODEL" --scale 2
    d=$("$PNGINFO" "$OUTDIR/lossy.webp" versus "$OUTDIR/ref.png") || fail "pnginfo versus"
    echo "lossy WebP vs PNG: max mean = $d levels" >&2
    # measured 15 / 2.00 (libwebp 1.2.4): VP8 keeps colour at half resolution, and this picture is all colour edges
    echo "$d" | awk '{ exit !($1 <= 24 && $2 <= 3) }' || fail "lossy WebP too far from the PNG: $d"
    [ "$(wc -c <"$OUTDIR/lossy.webp")" -lt "$(wc -c <"$OUTDIR/exact.webp")" ] || fail "lossy is not smaller"
    ;;
webp-alpha)
    # Alpha goes through a WebP (a JPEG would refuse it); a 16-bit input gets a note.
    need_model
    mkpng "$T/in.png" 12 9 4 16 alpha=0.5
    run upscale "$T/in.png" "$OUTDIR/out.webp" --model "$MODEL" --scale 2 --device cpu
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "^liif: note: .*in\.png is 16-bit; a WebP holds 8 bits" "$T/stderr" || fail "no note on the bit depth"
    [ "$("$PNGINFO" "$OUTDIR/out.webp" image)" = "WebP 24 18 4 8" ] || fail "out.webp: $("$PNGINFO" "$OUTDIR/out.webp" image)"
    [ "$(stats "$OUTDIR/out.webp" 3)" = "128 128 128.00" ] || fail "alpha: $(stats "$OUTDIR/out.webp" 3)"
    ;;
err-webp-too-large)
    need_model
    mkpng "$T/in.png" 9 7 3 8
    expect_error 2 "out\.webp: 16389x12747: a WebP holds 1 to 16383 pixels per side" \
        upscale "$T/in.png" "$OUTDIR/out.webp" --model "$MODEL" --scale 1821 ;;
deblock)
    # --deblock: a JPEG's output changes (its luma made smoother within what the file says; test-jpeg checks how),
    # the same in a batch as alone, turned as its EXIF says, and --timing counts it in the read; a PNG gets a note.
    need_model
    "$MKJPEG" "$T/a.jpg" 40 32 6 || fail mkjpeg
    expect_ok upscale "$T/a.jpg" "$T/plain.png" --model "$MODEL" --scale 2 --device cpu
    expect_ok upscale "$T/a.jpg" "$T/db.png" --model "$MODEL" --scale 2 --device cpu --deblock
    expect_info "$T/db.png" "64 80 3 8"
    ! cmp -s "$T/plain.png" "$T/db.png" || fail "--deblock changed nothing"
    expect_ok upscale "$T/a.jpg" --model "$MODEL" --scale 2 --device cpu --deblock -o "$OUTDIR" # into DIR/a.jpg
    expect_ok upscale "$T/a.jpg" "$T/db.jpg" --model "$MODEL" --scale 2 --device cpu --deblock
    cmp -s "$T/db.jpg" "$OUTDIR/a.jpg" || fail "--deblock in a batch differs from one run"
    run upscale "$T/a.jpg" "$T/t.png" --model "$MODEL" --scale 2 --device cpu --deblock --timing
    grep -q "reading [0-9.]* (deblocking the JPEG included)" "$T/stdout" || fail "--timing does not count the deblocking"
    mkpng "$T/b.png" 12 9 3 8
    run upscale "$T/b.png" "$T/b2.png" --model "$MODEL" --scale 2 --device cpu --deblock
    [ "$RC" -eq 0 ] && grep -q "^liif: note: .*b\.png: --deblock is for JPEG input; this is a PNG" "$T/stderr" ||
        fail "no note for --deblock on a PNG: exit $RC"
    ;;
batch)
    # --output-dir: every input under its own name, the same bytes as one run each; a broken input is said and
    # the others go on (exit 1); a name that is no image format's becomes NAME.png.
    need_model
    "$MKJPEG" "$T/a.jpg" 21 14 6 camera && mkpng "$T/b.png" 12 9 4 16 alpha=0.5 && mkpng "$T/c.img" 10 7 1 8 ||
        fail "inputs"
    echo "not an image" >"$T/bad.png"
    run upscale "$T/a.jpg" "$T/bad.png" "$T/b.png" "$T/c.img" --model "$MODEL" --scale 2.5 -o "$OUTDIR" --device cpu
    [ "$RC" -eq 1 ] || fail "exit code $RC, expected 1"
    grep -q "^liif: .*bad\.png: not a PNG, JPEG or WebP image" "$T/stderr" || fail "the broken input is not named"
    grep -q "^liif: 1 of 4 images failed (said above); 3 written" "$T/stderr" || fail "no summary"
    grep -q "^liif: \[4/4\] .*c\.img -> .*c\.png" "$T/stderr" || fail "no line for the fourth image"
    # the next image is read while one is upscaled; a read's error still comes in its turn: after [2/4], before [3/4]
    [ "$(grep -E '^liif: (\[[234]/4\]|.*bad\.png: not a PNG)' "$T/stderr" | sed 's/^liif: \(\[.\/4\]\)*.*/\1/' |
        tr '\n' ' ')" = "[2/4]  [3/4] [4/4] " ] || fail "the broken input is not said in its turn"
    [ "$(ls -A "$OUTDIR" | tr '\n' ' ')" = "a.jpg b.png c.png " ] || fail "outputs: $(ls -A "$OUTDIR")"
    for f in a.jpg b.png c.img; do
        o=$f
        [ "$f" = c.img ] && o=c.png
        expect_ok upscale "$T/$f" "$T/one-$o" --model "$MODEL" --scale 2.5 --device cpu
        cmp -s "$T/one-$o" "$OUTDIR/$o" || fail "$o differs from a run of its own"
    done
    ;;
batch-interrupt)
    # Ctrl-C during the second image, while the third is read ahead: exit 130, the first output kept, no second or
    # third one and no temporary file (the ASan build: nothing of the third image leaks).
    need_model
    mkpng "$T/a.png" 8 8 3 8 && mkpng "$T/b.png" 512 512 3 8 && mkpng "$T/c.png" 64 64 3 16 || fail "inputs"
    "$LIIF" upscale "$T/a.png" "$T/b.png" "$T/c.png" --model "$MODEL" --scale 64 -o "$OUTDIR" --device cpu \
        >"$T/stdout" 2>"$T/stderr" &
    pid=$!
    waited=0
    while ! grep -q "\[2/3\]" "$T/stderr" && [ "$waited" -lt 600 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    sleep 1
    kill -INT "$pid" 2>/dev/null || fail "liif ended before the signal"
    wait_after_sigint "$pid"
    [ "$RC" -eq 130 ] || fail "exit code $RC, expected 130"
    grep -q '^liif: the batch stopped: 1 of 3 images written' "$T/stderr" || fail "no word on the stop"
    [ "$(ls -A "$OUTDIR")" = "a.png" ] || fail "in the output folder: $(ls -A "$OUTDIR")"
    ;;
batch-timing)
    # --timing in a batch: each image's line; every input is read ahead of its turn on a thread (the first while the
    # model loads, the others while the image before is upscaled), and "reading" is then the wait for it.
    need_model
    mkpng "$T/a.png" 40 30 3 8 && mkpng "$T/b.png" 30 40 3 16 && mkpng "$T/c.png" 20 20 4 8 || fail "inputs"
    run upscale "$T/a.png" "$T/b.png" "$T/c.png" --model "$MODEL" --scale 2 -o "$OUTDIR" --device cpu --timing --quiet
    [ "$RC" -eq 0 ] || fail "exit code $RC, expected 0"
    n='[0-9]+\.[0-9]{3}'
    [ "$(grep -cE "^time: $n s in all: reading $n \(read ahead of its turn on a thread: $n\), model and device $n" \
        "$T/stdout")" -eq 3 ] || fail "--timing lines: $(cat "$T/stdout")"
    [ "$(ls -A "$OUTDIR" | tr '\n' ' ')" = "a.png b.png c.png " ] || fail "outputs: $(ls -A "$OUTDIR")"
    ;;
err-batch-same-output)
    mkpng "$T/a.png" 9 7 3 8
    mkdir "$T/x" && mkpng "$T/x/a.png" 9 7 3 8
    expect_error 2 "a\.png and .*x/a\.png would both be written to .*/out/a\.png" \
        upscale "$T/a.png" "$T/x/a.png" --scale 2 -o "$OUTDIR" ;;
err-batch-replaces-input)
    mkpng "$OUTDIR/a.png" 9 7 3 8
    run upscale "$OUTDIR/a.png" --scale 2 -o "$OUTDIR"
    [ "$RC" -eq 2 ] || fail "exit code $RC, expected 2"
    grep -q "^liif: .*a\.png would replace its input .*a\.png: choose another --output-dir" "$T/stderr" ||
        fail "no message"
    [ "$(ls -A "$OUTDIR")" = "a.png" ] || fail "in the output folder: $(ls -A "$OUTDIR")"
    ;;
err-batch-no-dir)
    mkpng "$T/a.png" 9 7 3 8
    expect_error 2 "nowhere: not a folder \(--output-dir\)" upscale "$T/a.png" --scale 2 -o "$T/nowhere" ;;
err-batch-no-input)
    expect_error 2 "--output-dir needs at least one input image" upscale --scale 2 -o "$OUTDIR" ;;
eval-jpeg)
    # liif eval takes JPEG HR images beside PNGs.
    need_model
    mkdir "$T/hr" && "$MKJPEG" "$T/hr/a.jpg" 48 40 && mkpng "$T/hr/b.png" 40 48 3 8 || fail "images"
    expect_ok upscale "$T/hr/b.png" "$T/hr/c.webp" --model "$MODEL" --scale 1 --quality 100
    run eval --model "$MODEL" --data "$T/hr" --scales 2 --quiet --out "$T/ev"
    [ "$RC" -eq 0 ] || fail "exit code $RC"
    grep -q "a\.jpg" "$T/ev/per_image.csv" && grep -q "b\.png" "$T/ev/per_image.csv" &&
        grep -q "c\.webp" "$T/ev/per_image.csv" || fail "not every image measured: $(cat "$T/ev/per_image.csv")"
    ;;
err-eval-jpeg-options)
    # liif eval: --lr-jpeg-420 and --deblock say what they need; a quality outside 1..100 is refused
    mkdir "$T/hr" && mkpng "$T/hr/b.png" 40 48 3 8 || fail "images"
    expect_error 2 "--lr-jpeg-420 need --lr-jpeg" eval --model "$MODEL" --data "$T/hr" --lr-jpeg-420
    expect_error 2 "--deblock and --lr-jpeg-420 need --lr-jpeg" eval --model "$MODEL" --data "$T/hr" --deblock
    expect_error 2 "quality of 1 to 100" eval --model "$MODEL" --data "$T/hr" --lr-jpeg 101 --lr-jpeg-420
    ;;
eval-jpeg-420)
    # liif eval --lr-jpeg 60 --lr-jpeg-420: the table says 4:2:0, and the RGB scores differ from 4:4:4's
    need_model
    mkdir "$T/hr" && mkpng "$T/hr/b.png" 40 48 3 8 || fail "images"
    for s in 444 420; do
        flag=; [ $s = 420 ] && flag=--lr-jpeg-420
        run eval --model "$MODEL" --data "$T/hr" --scales 2 --quiet --protocol div2k --strips 0 --lr-jpeg 60 $flag \
            --out "$T/ev$s"
        [ "$RC" -eq 0 ] || fail "exit code $RC ($s)"
    done
    grep -q "LR as JPEG q60 4:2:0;" "$T/ev420/table.md" || fail "the 4:2:0 table does not say so: $(head -1 "$T/ev420/table.md")"
    grep -q "LR as JPEG q60;" "$T/ev444/table.md" || fail "the 4:4:4 table: $(head -1 "$T/ev444/table.md")"
    [ "$(grep '^bicubic' "$T/ev420/table.csv")" != "$(grep '^bicubic' "$T/ev444/table.csv")" ] ||
        fail "4:2:0 and 4:4:4 give the same bicubic scores"
    ;;
*)
    fail "unknown test case" ;;
esac
exit 0
