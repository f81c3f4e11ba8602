# tests/gimp/common.sh: sourced by the GIMP tests: a private GIMP profile with the freshly built plug-in.
#   liif_gimp_setup BUILD_DIR   sets W (a temp folder, removed at exit), GIMP3_DIRECTORY, LIIF_TEST_MODEL
# The model is the golden LIIF-EDSR-baseline; without it the test is skipped (exit 77).
set -u
liif_gimp_setup() {
  B=$(cd "$1" && pwd)
  SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  local golden=${LIIF_GOLDEN_DIR:-$SRC/../shared/golden}/liif-edsr-baseline
  if [ ! -f "$golden/weights.safetensors" ]; then
    echo "SKIP: no test model ($golden/weights.safetensors is absent)"; exit 77
  fi
  command -v gimp-console-3.0 > /dev/null || { echo "SKIP: gimp-console-3.0 not installed"; exit 77; }
  W=$(mktemp -d /tmp/liif-gimp.XXXXXX)
  [ -n "${LIIF_KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
  cp "$golden/weights.safetensors" "$W/model.safetensors"
  LIIF_TEST_MODEL=$W/model.safetensors
  export GIMP3_DIRECTORY=$W/profile
  local dir=$GIMP3_DIRECTORY/plug-ins/liif-upscale   # GIMP wants NAME/NAME, catalogs in NAME/locale
  install -D -m755 "$B/plugin/liif-upscale" "$dir/liif-upscale"
  install -D -m644 -t "$dir/help/en" "$SRC"/plugin/help/en/*
  for mo in "$B"/po/*/LC_MESSAGES/liif-gan.mo; do
    [ -f "$mo" ] || continue
    local lang; lang=$(basename "$(dirname "$(dirname "$mo")")")
    install -D -m644 "$mo" "$dir/locale/$lang/LC_MESSAGES/liif-gan.mo"
  done
  export LIIF_TEST_MODEL W B SRC
}

# gimp_batch LOG INTERPRETER CODE: one headless GIMP run; returns GIMP's exit status.
gimp_batch() {
  local log=$1 interp=$2 code=$3
  gimp-console-3.0 -i --no-fonts --batch-interpreter="$interp" -b "$code" --quit > "$log" 2>&1
}

# gimp_dialog LOG TITLE [VAR=VALUE...]: GIMP in the background running batch.py interactively (the cases from
# the environment or the arguments); waits up to 2 min for the window titled TITLE. Sets gpid and wid;
# returns 1 when the window never appears. With LIIF_OPENED=1 among the arguments, GIMP opens the inputs itself.
gimp_dialog() {
  local log=$1 title=$2 open=(); shift 2
  case " $* " in *" LIIF_OPENED=1 "*)
    for a in "$@"; do case $a in LIIF_CASES=*) for c in ${a#LIIF_CASES=}; do open+=("${c%%:*}"); done ;; esac; done ;;
  esac
  env "$@" LIIF_MODE=interactive gimp-console-3.0 -i --no-fonts --batch-interpreter=python-fu-eval \
    -b "exec(open('$SRC/tests/gimp/batch.py').read())" --quit "${open[@]}" > "$log" 2>&1 &
  gpid=$!
  wid=""
  for i in $(seq 1 240); do
    wid=$(xdotool search --name "^$title\$" 2>/dev/null | head -1); [ -n "$wid" ] && return 0; sleep 0.5
  done
  return 1
}

# no_crash LOG: fails when GIMP reports a crashed plug-in.
no_crash() {
  if grep -qiE "crash|terminated|segmentation|backtrace" "$1"; then
    echo "FAIL: GIMP reported a crash:"; grep -iE "crash|terminated|segmentation|backtrace" "$1"; return 1
  fi
}
