#!/bin/bash
# tests/gimp/test-batch.sh python|script-fu BUILD_DIR CLI: headless batch calls of plug-in-liif-upscale on
# RGB, RGBA, GRAY, GRAYA images in 8 and 16 bit at scale 2.5 (odd sizes: halves round up), then checks
# the exported sizes, that alpha survived, and the pixels against `liif upscale` (the CLI) within 1/255.
set -u
INTERP=$1; CLI=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
. "$(dirname "$0")/common.sh"
liif_gimp_setup "$2"
SCALE=2.5; IN_W=37; IN_H=29; EXP=93x73
CASES="rgb8:3:8 rgba8:4:8 gray8:1:8 graya8:2:8 rgb16:3:16 rgba16:4:16 gray16:1:16"
list=""; scm=""
for c in $CASES; do
  IFS=: read -r name ch bits <<< "$c"
  python3 "$SRC/tests/gimp/mkpng.py" "$W/$name.png" $IN_W $IN_H "$ch" "$bits"
  list="$list $W/$name.png:$W/$name-gimp.png"
  scm="$scm (let* ((img (car (gimp-file-load RUN-NONINTERACTIVE \"$W/$name.png\")))
                  (drws (car (gimp-image-get-selected-drawables img))))
             (plug-in-liif-upscale #:run-mode RUN-NONINTERACTIVE #:image img #:drawables drws
                                   #:scale-x $SCALE #:scale-y $SCALE #:model \"$LIIF_TEST_MODEL\" #:device \"cpu\")
             (gimp-message (string-append \"LIIF-BATCH $name.png \" (number->string (car (gimp-image-get-width img)))
                                          \"x\" (number->string (car (gimp-image-get-height img)))))
             (gimp-file-save RUN-NONINTERACTIVE img \"$W/$name-gimp.png\" -1)
             (gimp-image-delete img))"
done

t0=$(date +%s)
if [ "$INTERP" = python ]; then
  LIIF_CASES=$list LIIF_MODEL=$LIIF_TEST_MODEL LIIF_SCALE=$SCALE \
    gimp_batch "$W/gimp.log" python-fu-eval "exec(open('$SRC/tests/gimp/batch.py').read())"
else
  gimp_batch "$W/gimp.log" plug-in-script-fu-eval "(begin $scm)"
fi
rc=$?
grep "LIIF-BATCH" "$W/gimp.log"
echo "gimp-console $INTERP batch: $(( $(date +%s) - t0 )) s for 7 images (GIMP start included)"
[ $rc = 0 ] || { cat "$W/gimp.log"; echo "FAIL: gimp-console exited $rc"; exit 1; }
no_crash "$W/gimp.log" || exit 1

fail=0
for c in $CASES; do
  IFS=: read -r name ch bits <<< "$c"
  "$CLI" upscale -q --model "$LIIF_TEST_MODEL" --scale $SCALE --device cpu "$W/$name.png" "$W/$name-cli.png" \
    || { echo "FAIL: the CLI failed on $name"; fail=1; continue; }
  size=$(identify -format '%wx%h' "$W/$name-gimp.png")
  depth=$(identify -format '%z' "$W/$name-gimp.png")
  pae=$(compare -metric PAE "$W/$name-gimp.png" "$W/$name-cli.png" null: 2>&1 | sed 's/.*(\(.*\))/\1/')
  alpha=$(convert "$W/$name-gimp.png" -format '%[opaque] %[fx:minima.a]' info:)
  verdict=ok
  [ "$size" = $EXP ] || verdict="wrong size"
  [ "$depth" = "$bits" ] || verdict="wrong depth $depth"
  awk -v p="$pae" 'BEGIN { exit !(p <= 1.0/255 + 1e-6) }' || verdict="pixels differ from the CLI"
  if [ "$ch" = 2 ] || [ "$ch" = 4 ]; then
    # input alpha runs from 0.2 to 1: the result must keep a translucent part
    awk -v a="$alpha" 'BEGIN { split(a, f, " "); exit !(f[1] == "False" && f[2] < 0.3) }' || verdict="alpha lost ($alpha)"
  fi
  printf '%-7s %s %2s-bit  max |gimp - cli| = %-12s (x255 = %.3f)  alpha: %-18s %s\n' \
    "$name" "$size" "$depth" "$pae" "$(awk -v p="$pae" 'BEGIN{print p*255}')" "$alpha" "$verdict"
  [ "$verdict" = ok ] || fail=1
done
# The ensemble argument (python only), with the shipped model in fp32: the self-ensemble as `liif upscale --ensemble`
# makes it, and not the plain result (7 levels apart at most on this image, measured 2026-12-07).
if [ "$INTERP" = python ]; then
  SHIPPED=$SRC/data/models/default.safetensors
  LIIF_CASES="$W/rgb8.png:$W/rgb8-ens-gimp.png" LIIF_MODEL=$SHIPPED LIIF_SCALE=$SCALE LIIF_ENSEMBLE=1 LIIF_PRECISION=fp32 \
    gimp_batch "$W/gimp-ens.log" python-fu-eval "exec(open('$SRC/tests/gimp/batch.py').read())" ||
    { cat "$W/gimp-ens.log"; echo "FAIL: gimp-console failed with the ensemble"; fail=1; }
  for e in plain ensemble; do
    flag=; [ $e = ensemble ] && flag=--ensemble
    "$CLI" upscale -q --model "$SHIPPED" --scale $SCALE --device cpu $flag "$W/rgb8.png" "$W/rgb8-$e-cli.png" ||
      { echo "FAIL: the CLI failed ($e)"; fail=1; }
  done
  pae=$(compare -metric PAE "$W/rgb8-ens-gimp.png" "$W/rgb8-ensemble-cli.png" null: 2>&1 | sed 's/.*(\(.*\))/\1/')
  plain=$(compare -metric PAE "$W/rgb8-ens-gimp.png" "$W/rgb8-plain-cli.png" null: 2>&1 | sed 's/.*(\(.*\))/\1/')
  echo "ensemble: max |gimp - cli --ensemble| = $pae; from the plain CLI result: $plain"
  awk -v p="$pae" 'BEGIN { exit !(p <= 1.0/255 + 1e-6) }' || { echo "FAIL: the ensemble differs from the CLI's"; fail=1; }
  awk -v p="$plain" 'BEGIN { exit !(p >= 3.5/255) }' || { echo "FAIL: the ensemble is (nearly) the plain result"; fail=1; }
fi
[ $fail = 0 ] && echo "PASS: $INTERP batch, 7 images" || echo "FAIL"
exit $fail
