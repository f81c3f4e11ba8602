#!/bin/bash
# tests/gimp/test-deblock.sh BUILD_DIR CLI: the deblock argument ("Remove JPEG artifacts") in headless batch calls,
# with the JPEG found as the image's file or given as the jpeg-file argument, and the shipped model (the test model's
# output hardly depends on deblocking). JPEGs of quality 35 (colour 4:2:0, gray, colour with EXIF orientation 6)
# upscaled x2 with deblock on are deblocked (far from GIMP's plain result) as `liif upscale --deblock` deblocks them:
# as close to its result as GIMP's plain result is to the CLI's plain one (GIMP decodes JPEGs with libjpeg's float
# IDCT, the CLI with its default integer one: a level or two apart in places). An edited layer (the image flipped)
# and an image from a PNG give exactly the plain result, with a message that says why.
set -u
CLI=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
. "$(dirname "$0")/common.sh"
liif_gimp_setup "$1"
MODEL=$SRC/data/models/default.safetensors
python3 "$SRC/tests/gimp/mkpng.py" "$W/src.png" 96 72 3 8 edges
convert "$W/src.png" -quality 35 -sampling-factor 2x2 "$W/rgb.jpg"
convert "$W/src.png" -colorspace Gray -quality 35 "$W/gray.jpg"
convert "$W/src.png" -quality 35 -sampling-factor 2x2 -orient RightTop "$W/o6.jpg" # rgb.jpg's pixels, turned
fail=0
run() { # LOG CASES [VAR=VALUE...]: with LIIF_OPENED=1 the inputs are opened as File > Open does (with their file)
  local log=$1 cases=$2 open=(); shift 2
  case " $* " in *" LIIF_OPENED=1 "*) for c in $cases; do open+=("${c%%:*}"); done ;; esac
  env "$@" LIIF_CASES="$cases" LIIF_MODEL="$MODEL" LIIF_SCALE=2 LIIF_PRECISION=fp32 \
    gimp-console-3.0 -i --no-fonts --batch-interpreter=python-fu-eval \
    -b "exec(open('$SRC/tests/gimp/batch.py').read())" --quit "${open[@]}" > "$log" 2>&1 ||
    { cat "$log"; echo "FAIL: gimp-console failed ($log)"; fail=1; }
  no_crash "$log" || fail=1
}
pae() { compare -metric PAE "$1" "$2" null: 2>&1 | sed 's/.*(\(.*\))/\1/'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b + 1e-6) }'; }

# deblocked: the image's file (opened as File > Open does) for rgb and o6, the jpeg-file argument (scripts) for
# gray. Headless GIMP opens o6.jpg as stored, without turning it: rgb.jpg's pixels, so rgb.jpg's results.
run "$W/deblock.log" "$W/rgb.jpg:$W/rgb-gimp.png $W/o6.jpg:$W/o6-gimp.png" LIIF_DEBLOCK=1 LIIF_OPENED=1
run "$W/deblock-arg.log" "$W/gray.jpg:$W/gray-gimp.png" LIIF_DEBLOCK=1 LIIF_JPEG_ARG=1
run "$W/plain.log" "$W/rgb.jpg:$W/rgb-gimp-plain.png $W/gray.jpg:$W/gray-gimp-plain.png" LIIF_OPENED=1
cat "$W/deblock.log" "$W/deblock-arg.log" | grep "LIIF-BATCH .*status"
for name in rgb gray; do
  for mode in deblock plain; do
    flag=; [ $mode = deblock ] && flag=--deblock
    "$CLI" upscale -q --model "$MODEL" --scale 2 --device cpu --precision fp32 $flag "$W/$name.jpg" \
      "$W/$name-cli-$mode.png" || { echo "FAIL: the CLI failed on $name ($mode)"; fail=1; }
  done
done
for name in rgb gray o6; do
  ref=$name; [ $name = o6 ] && ref=rgb
  d=$(pae "$W/$name-gimp.png" "$W/$ref-cli-deblock.png")
  decoders=$(pae "$W/$ref-gimp-plain.png" "$W/$ref-cli-plain.png")
  change=$(pae "$W/$name-gimp.png" "$W/$ref-gimp-plain.png")
  verdict=ok
  le "$d" "$(awk -v p="$decoders" 'BEGIN { print p + 1.0 / 255 }')" || verdict="not the CLI's deblocked result"
  le 0.0392 "$change" || verdict="(nearly) GIMP's plain result: not deblocked"
  printf '%-5s %s max |gimp - cli --deblock| %-10s (plain: |gimp - cli| %-10s)  from the plain result %-9s %s\n' \
    "$name" "$(identify -format '%wx%h' "$W/$name-gimp.png")" "$d" "$decoders" "$change" "$verdict"
  [ "$verdict" = ok ] || fail=1
done
grep -q "JPEG artifacts were not removed" "$W/deblock.log" "$W/deblock-arg.log" &&
  { echo "FAIL: a JPEG that was not edited was not deblocked:"; grep "JPEG artifacts" "$W"/deblock*.log; fail=1; }

# an edit (the image flipped) and a PNG: exactly the plain result, and a message why
run "$W/edited.log" "$W/rgb.jpg:$W/flip-gimp.png $W/src.png:$W/png-gimp.png" LIIF_DEBLOCK=1 LIIF_FLIP=1 LIIF_OPENED=1
run "$W/edited-plain.log" "$W/rgb.jpg:$W/flip-plain.png $W/src.png:$W/png-plain.png" LIIF_FLIP=1 LIIF_OPENED=1
for c in "flip:no longer holds the pixels of rgb.jpg" "png:not opened from a JPEG file"; do
  IFS=: read -r name note <<< "$c"
  d=$(pae "$W/$name-gimp.png" "$W/$name-plain.png")
  verdict=ok
  [ "$d" = 0 ] || verdict="not the plain result"
  grep -q "$note" "$W/edited.log" || verdict="no message \"$note\""
  printf '%-5s max |gimp - gimp plain| = %-10s %s\n' "$name" "$d" "$verdict"
  [ "$verdict" = ok ] || fail=1
done
grep "JPEG artifacts" "$W/edited.log" | sed 's/^/  message: /'
[ $fail = 0 ] && echo "PASS: deblock in batch calls" || echo "FAIL"
exit $fail
