#!/bin/sh
# eval_test.sh: one test case of `liif eval`; run by meson as
#   sh eval_test.sh CASE LIIF MKPNG PNGINFO MODEL [LPIPS]
# The data are two small generated PNGs (RGB and gray, 8-bit) and MODEL a small random LIIF
# model: the model's numbers mean nothing, the bicubic ones must be finite and plausible.
# LPIPS: AlexNet-LPIPS weights (the README's PRNG ones, from test-lpips --write-weights).
# Error cases check the exit code and a one-line "liif: ..." message naming the problem.
set -u

CASE=$1
LIIF=$2
MKPNG=$3
PNGINFO=$4
MODEL=$5
LPIPS=${6:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/liif-eval-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    exit 1
}

[ -f "$MODEL" ] || { echo "SKIP [$CASE]: no test model ($MODEL)" >&2; exit 77; }

make_data() {
    mkdir -p "$T/data"
    "$MKPNG" "$T/data/a.png" 60 52 3 8 gradient || fail "mkpng"
    "$MKPNG" "$T/data/b.png" 50 47 1 8 gradient || fail "mkpng"
}

# run ARGS...: liif eval with the output in $T/stdout, $T/stderr and the exit code in $RC
run() {
    "$LIIF" eval "$@" >"$T/stdout" 2>"$T/stderr"
    RC=$?
    cat "$T/stderr" >&2
}

# expect_error CODE PATTERN ARGS...: exit CODE and one stderr line "liif: ..." matching PATTERN
expect_error() {
    code=$1
    pattern=$2
    shift 2
    run "$@"
    [ "$RC" -eq "$code" ] || fail "exit $RC, expected $code"
    [ "$(wc -l <"$T/stderr")" -eq 1 ] || fail "expected one line on stderr"
    grep -q "^liif: .*$pattern" "$T/stderr" || fail "message does not match '$pattern'"
    [ ! -e "$T/out/table.md" ] || fail "table written despite the error"
}

# the value of field N of the row of method M in table.csv
csv_field() {
    awk -F, -v m="$2" -v n="$3" '$1 == m { print $n }' "$1"
}
# the value in column NAME (e.g. "x2 sharpness") of the row of method M in table.csv
csv_col() {
    awk -F, -v m="$2" -v name="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
        NR > 1 && $1 == m && c { print $c }' "$1"
}

case $CASE in
help)
    run --help
    [ "$RC" -eq 0 ] || fail "exit $RC"
    grep -q -- "--scales" "$T/stdout" || fail "--help does not mention --scales"
    ;;
tables)
    make_data
    run --model "$MODEL" --data "$T/data" --scales 2,3,4.5 --out "$T/out" --threads 1 --crop 24
    [ "$RC" -eq 0 ] || fail "exit $RC"
    for f in table.md table.csv per_image.csv strip_x2.png strip_x3.png strip_x4.5.png; do
        [ -f "$T/out/$f" ] || fail "no $f"
    done
    cmp -s "$T/stdout" "$T/out/table.md" || fail "printed table differs from table.md"
    # Markdown: header, separator, bicubic, model; 3 scale columns
    [ "$(wc -l <"$T/out/table.md")" -eq 4 ] || fail "table.md is not 4 lines"
    head -n 1 "$T/out/table.md" | grep -q '^| method (PSNR / SSIM / sharpness / detail PSNR / grid) | x2 | x3 | x4.5 |$' ||
        fail "table.md header"
    cell='[0-9.]* / [0-9.]* / [0-9.]* / [0-9.]* / [0-9.]*'
    sed -n 3p "$T/out/table.md" | grep -q "^| bicubic | $cell | $cell | $cell |\$" || fail "table.md bicubic row"
    sed -n 4p "$T/out/table.md" | grep -q '^| model |' || fail "table.md model row"
    # CSV: header and two rows of 16 fields
    h='method'; for s in x2 x3 x4.5; do h="$h,$s psnr,$s ssim,$s sharpness,$s detail psnr,$s grid"; done
    [ "$(head -n 1 "$T/out/table.csv")" = "$h" ] || fail "table.csv header"
    [ "$(awk -F, 'NF == 16' "$T/out/table.csv" | wc -l)" -eq 3 ] || fail "table.csv is not 3 rows of 16 fields"
    head -n 1 "$T/out/per_image.csv" | grep -q '^image,scale,method,psnr,ssim,sharpness,detail_psnr,grid$' ||
        fail "per_image.csv header"
    [ "$(wc -l <"$T/out/per_image.csv")" -eq 13 ] || fail "per_image.csv: expected 2 images x 3 scales x 2 methods"
    # bicubic: finite PSNR in a plausible range, SSIM in (0, 1]; worse at larger scales
    # all four figures finite and plausible (these smooth gradients have almost no fine detail, so the
    # sharpness ratio is not < 1 here; eval-set5-bicubic checks that bicubic blurs real photos)
    for s in x2 x3 x4.5; do
        p=$(csv_col "$T/out/table.csv" bicubic "$s psnr")
        q=$(csv_col "$T/out/table.csv" bicubic "$s ssim")
        k=$(csv_col "$T/out/table.csv" bicubic "$s sharpness")
        d=$(csv_col "$T/out/table.csv" bicubic "$s detail psnr")
        echo "bicubic $s: PSNR $p SSIM $q sharpness $k detail PSNR $d" >&2
        awk -v p="$p" -v s="$q" -v k="$k" -v d="$d" \
            'BEGIN { exit !(p > 15 && p < 80 && s > 0 && s <= 1 && k > 0 && k < 1e6 && d > 15 && d < 80) }' ||
            fail "implausible bicubic figures at $s: $p / $q / $k / $d"
    done
    p2=$(csv_col "$T/out/table.csv" bicubic "x2 psnr")
    p45=$(csv_col "$T/out/table.csv" bicubic "x4.5 psnr")
    awk -v a="$p2" -v b="$p45" 'BEGIN { exit !(a > b) }' || fail "bicubic x2 ($p2) not above x4.5 ($p45)"
    # model numbers finite
    for n in $(seq 2 16); do
        v=$(csv_field "$T/out/table.csv" model $n)
        awk -v v="$v" 'BEGIN { exit !(v == v + 0 && v > -1e9 && v < 1e9) }' || fail "model field $n '$v'"
    done
    # strips: 3 crops of 24 px and 2 separators of 2 px; 2 rows
    for s in 2 3 4.5; do
        info=$("$PNGINFO" "$T/out/strip_x$s.png") || fail "pnginfo strip_x$s.png"
        [ "$info" = "76 50 3 8" ] || fail "strip_x$s.png is '$info', expected '76 50 3 8'"
    done
    ;;
div2k)
    make_data
    run --model "$MODEL" --data "$T/data" --scales 2 --protocol div2k -q
    [ "$RC" -eq 0 ] || fail "exit $RC"
    grep -q '^| bicubic | [0-9.]* / [0-9.]* / [0-9.]* / [0-9.]* / [0-9.]* |$' "$T/stdout" || fail "no bicubic row"
    [ ! -s "$T/stderr" ] || fail "-q printed something"
    ;;
skip-bad-image)
    make_data
    echo "not a png" >"$T/data/c.png"
    run --model "$MODEL" --data "$T/data" --scales 2 --threads 1
    [ "$RC" -eq 0 ] || fail "exit $RC"
    grep -q "^liif: warning: skipped: .*c.png" "$T/stderr" || fail "no warning naming c.png"
    ;;
skip-small-image)
    make_data
    "$MKPNG" "$T/data/c.png" 12 12 3 8 gradient || fail "mkpng"
    run --model "$MODEL" --data "$T/data" --scales 3 --threads 1
    [ "$RC" -eq 0 ] || fail "exit $RC"
    grep -q "^liif: warning: skipping .*c.png at x3" "$T/stderr" || fail "no warning naming c.png"
    ;;
err-missing-data)
    expect_error 1 "$T/nowhere" --model "$MODEL" --data "$T/nowhere" --out "$T/out"
    ;;
err-no-images)
    mkdir "$T/empty"
    echo text >"$T/empty/readme.txt"
    expect_error 1 "no PNG, JPEG or WebP images.*$T/empty" --model "$MODEL" --data "$T/empty" --out "$T/out"
    ;;
err-no-readable-images)
    mkdir "$T/bad"
    echo "not a png" >"$T/bad/x.png"
    run --model "$MODEL" --data "$T/bad" --out "$T/out"
    [ "$RC" -eq 1 ] || fail "exit $RC"
    tail -n 1 "$T/stderr" | grep -q "^liif: no readable PNG, JPEG or WebP images in data folder $T/bad" || fail "last message"
    [ ! -e "$T/out/table.md" ] || fail "table written"
    ;;
err-scale-zero)
    make_data
    expect_error 2 "--scales '0'" --model "$MODEL" --data "$T/data" --scales 0 --out "$T/out"
    ;;
err-scale-text)
    make_data
    expect_error 2 "--scales '2,x'.*'x' is not a number" --model "$MODEL" --data "$T/data" --scales 2,x --out "$T/out"
    ;;
err-scale-empty)
    make_data
    expect_error 2 "--scales" --model "$MODEL" --data "$T/data" --scales "" --out "$T/out"
    ;;
err-scale-below-one)
    make_data
    expect_error 2 "'0.5' is not a number from 1" --model "$MODEL" --data "$T/data" --scales 2,0.5 --out "$T/out"
    ;;
err-no-data)
    expect_error 2 "no data folder" --model "$MODEL" --out "$T/out"
    ;;
err-missing-model)
    make_data
    expect_error 1 "$T/none.safetensors" --model "$T/none.safetensors" --data "$T/data" --out "$T/out"
    ;;
lpips)
    [ -f "$LPIPS" ] || { echo "SKIP [$CASE]: no LPIPS weights ($LPIPS)" >&2; exit 77; }
    make_data
    run --model "$MODEL" --data "$T/data" --scales 2,4.5 --out "$T/out" --threads 2 --lpips "$LPIPS" -q
    [ "$RC" -eq 0 ] || fail "exit $RC"
    cmp -s "$T/stdout" "$T/out/table.md" || fail "printed table differs from table.md"
    cell='[0-9.]* / [0-9.]* / [0-9.]* / [0-9.]* / [0-9.]* / [0-9.]*'
    sed -n 3p "$T/out/table.md" | grep -q "^| bicubic | $cell | $cell |\$" || fail "table.md bicubic row"
    sed -n 4p "$T/out/table.md" | grep -q "^| model | $cell | $cell |\$" || fail "table.md model row"
    h='method'; for s in x2 x4.5; do h="$h,$s psnr,$s ssim,$s sharpness,$s detail psnr,$s grid,$s lpips"; done
    [ "$(head -n 1 "$T/out/table.csv")" = "$h" ] || fail "table.csv header"
    [ "$(awk -F, 'NF == 13' "$T/out/table.csv" | wc -l)" -eq 3 ] || fail "table.csv is not 3 rows of 13 fields"
    head -n 1 "$T/out/per_image.csv" | grep -q '^image,scale,method,psnr,ssim,sharpness,detail_psnr,grid,lpips$' ||
        fail "per_image.csv header"
    [ "$(awk -F, 'NR > 1 && NF == 9' "$T/out/per_image.csv" | wc -l)" -eq 8 ] ||
        fail "per_image.csv: expected 2 images x 2 scales x 2 methods, 9 fields"
    # LPIPS finite and >= 0 for both methods and scales, in the table and per image
    for m in bicubic model; do
        for s in x2 x4.5; do
            v=$(csv_col "$T/out/table.csv" $m "$s lpips")
            echo "$m $s: LPIPS $v" >&2
            awk -v v="$v" 'BEGIN { exit !(v == v + 0 && v >= 0 && v < 1e9) }' || fail "$m LPIPS $s '$v'"
        done
    done
    awk -F, 'NR > 1 && !($9 == $9 + 0 && $9 >= 0 && $9 < 1e9) { exit 1 }' "$T/out/per_image.csv" ||
        fail "per_image.csv: LPIPS not finite or negative"
    # bicubic is not a perfect reconstruction: its distance is positive
    awk -v v="$(csv_col "$T/out/table.csv" bicubic "x2 lpips")" 'BEGIN { exit !(v > 0) }' || fail "bicubic LPIPS is 0"
    ;;
err-lpips-missing)
    make_data
    expect_error 1 "--lpips: .*$T/w.safetensors" --model "$MODEL" --data "$T/data" --lpips "$T/w.safetensors" \
        --out "$T/out"
    ;;
err-lpips-weights)
    make_data
    expect_error 1 "--lpips: .*net.features.0.weight" --model "$MODEL" --data "$T/data" --lpips "$MODEL" \
        --out "$T/out"
    ;;
err-bad-protocol)
    make_data
    expect_error 2 "--protocol 'x'" --model "$MODEL" --data "$T/data" --protocol x
    ;;
*)
    fail "unknown case"
    ;;
esac
echo "ok [$CASE]" >&2
exit 0
