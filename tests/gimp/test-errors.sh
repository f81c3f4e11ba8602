#!/bin/bash
# tests/gimp/test-errors.sh BUILD_DIR: bad batch input (scale 0, a missing model file, a corrupt model file)
# must give an error status with a clear message, leave the image as it was, and not crash the plug-in.
set -u
. "$(dirname "$0")/common.sh"
liif_gimp_setup "$1"
python3 "$SRC/tests/gimp/mkpng.py" "$W/in.png" 21 17 3 8
head -c 3000 "$LIIF_TEST_MODEL" > "$W/corrupt.safetensors"      # truncated: header says more than there is
printf 'not a model at all' > "$W/garbage.safetensors"
fail=0
check() {  # NAME EXPECTED-MESSAGE-PART ENV...
  local name=$1 want=$2; shift 2
  ( export "$@" LIIF_EXPECT_ERROR=1 LIIF_CASES="$W/in.png:$W/out-$name.png"
    gimp_batch "$W/$name.log" python-fu-eval "exec(open('$SRC/tests/gimp/batch.py').read())" )
  local rc=$? line; line=$(grep "LIIF-BATCH in.png" "$W/$name.log")
  echo "$name: $line"
  if [ $rc != 0 ]; then echo "FAIL $name: gimp-console exited $rc"; cat "$W/$name.log"; fail=1; return; fi
  case $line in *status=success*) echo "FAIL $name: the call succeeded"; fail=1; return;; esac
  case $line in *out=21x17*) ;; *) echo "FAIL $name: the image changed"; fail=1;; esac
  case $line in *"$want"*) ;; *) echo "FAIL $name: the message lacks '$want'"; fail=1;; esac
  no_crash "$W/$name.log" || fail=1
}
check scale-zero "scale factors must be greater than 0" LIIF_MODEL="$LIIF_TEST_MODEL" LIIF_SCALE=0
check scale-negative-y "scale factors must be greater than 0" LIIF_MODEL="$LIIF_TEST_MODEL" LIIF_SCALE=2 LIIF_SCALE_Y=0
check missing-model "does not exist" LIIF_MODEL="$W/no-such-model.safetensors"
check corrupt-model "Could not load the model" LIIF_MODEL="$W/corrupt.safetensors"
check garbage-model "Could not load the model" LIIF_MODEL="$W/garbage.safetensors"
check unknown-name "No model named" LIIF_MODEL="no-such-model"
check too-large "not possible" LIIF_MODEL="$LIIF_TEST_MODEL" LIIF_WIDTH=65536 LIIF_HEIGHT=65536
[ $fail = 0 ] && echo "PASS: 7 bad inputs rejected with clear messages, no crash"
exit $fail
