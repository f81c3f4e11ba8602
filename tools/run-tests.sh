#!/bin/bash
# tools/run-tests.sh: the whole test suite (the README's test command):
#   1. release build + every test (goldens, engine, PNG, safetensors, CLI),
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the GIMP 3 plug-in built and tested headless in a Debian trixie root (created when missing).
# Set LIIF_SKIP_GIMP=1 to leave out step 3 (it needs root and, the first time, ~6 minutes of apt).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
passed=0 failed=0 skipped=0

# Runs meson test in build folder $1 and adds its counts to the totals.
run_suite() {
  local dir=$1; shift
  local rc=0
  meson test -C "$dir" --print-errorlogs "$@" | tee "$dir/test-summary.txt" || rc=$?
  local ok fail skip
  ok=$(awk '/^Ok:/{print $2}' "$dir/test-summary.txt"); fail=$(awk '/^Fail:/{print $2}' "$dir/test-summary.txt")
  skip=$(awk '/^Skipped:/{print $2}' "$dir/test-summary.txt")
  local timeout; timeout=$(awk '/^Timeout:/{print $2}' "$dir/test-summary.txt")
  passed=$((passed + ${ok:-0})); failed=$((failed + ${fail:-0} + ${timeout:-0})); skipped=$((skipped + ${skip:-0}))
  [ "$rc" -eq 0 ] || { [ "${fail:-0}" -gt 0 ] || [ "${timeout:-0}" -gt 0 ] || failed=$((failed + 1)); }
}

echo "== release build =="
[ -f build/build.ninja ] || meson setup build
meson compile -C build
run_suite build

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build =="
[ -f build-asan/build.ninja ] || meson setup build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
  -Dc_args=-fno-sanitize-recover=all -Db_lundef=false
meson compile -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan --timeout-multiplier 4

if [ "${LIIF_SKIP_GIMP:-0}" != 1 ] && [ -x tests/gimp/run-in-root.sh ]; then
  echo "== GIMP 3 plug-in in a Debian trixie root =="
  rc=0
  tests/gimp/run-in-root.sh | tee build/gimp-summary.txt || rc=$?
  ok=$(awk '/^Ok:/{print $2}' build/gimp-summary.txt | tail -1); fail=$(awk '/^Fail:/{print $2}' build/gimp-summary.txt | tail -1)
  skip=$(awk '/^Skipped:/{print $2}' build/gimp-summary.txt | tail -1)
  passed=$((passed + ${ok:-0})); failed=$((failed + ${fail:-0})); skipped=$((skipped + ${skip:-0}))
  [ "$rc" -eq 0 ] || [ "${fail:-0}" -gt 0 ] || failed=$((failed + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
