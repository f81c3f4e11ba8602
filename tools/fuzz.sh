#!/bin/bash
# tools/fuzz.sh: builds the libFuzzer harnesses (tests/fuzz) with clang, ASan and UBSan in build-fuzz/, and
# runs each target for SECONDS (default 15) from its seed corpus plus what earlier runs found.
#
#   tools/fuzz.sh                    the short run of .ci/run (about a minute and three quarters for the seven targets)
#   tools/fuzz.sh 3600 model png     a long run: an hour per named target (model png image exif config train-data weights)
#   LIIF_FUZZ_JOBS=4 tools/fuzz.sh 3600   4 parallel workers per target
#
# Corpora grow in build-fuzz/corpus/<target>; a crash, leak, timeout or out-of-memory input lands in
# build-fuzz/crashes/<target>/ and fails the run. Fix it, then keep the input as a regression test:
#   cp build-fuzz/crashes/<target>/crash-... tests/fuzz/regressions/<target>/<what-it-was>
# (the normal suite replays every file there: meson test --suite fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
shift || true
targets=${*:-model png image exif config train-data weights}
command -v clang >/dev/null || { echo "tools/fuzz.sh: clang is missing (tools/install-deps.sh installs it)" >&2; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dcuda=disabled -Dgimp=disabled -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null
fi
# regenerate first when a meson.build changed (a new target is not found otherwise); meson prints its errors
# on stdout, so a failed build shows its log's end
ninja -C build-fuzz build.ninja >/dev/null
nice meson compile -C build-fuzz $(for t in $targets; do echo "tests/fuzz/fuzz-$t"; done) tests/fuzz/fuzz-seeds \
  >build-fuzz/compile.log 2>&1 || { tail -20 build-fuzz/compile.log >&2; echo "tools/fuzz.sh: the build failed" >&2; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in $targets; do
  corpus=build-fuzz/corpus/$t crashes=build-fuzz/crashes/$t
  mkdir -p "$corpus" "$crashes"
  log=build-fuzz/fuzz-$t.log
  # -rss_limit_mb: a file under 1 MB may make the loaders use at most 200 MB (+ the sanitizers' own);
  # -timeout: an input must be done in a second or two.
  rc=0
  build-fuzz/tests/fuzz/fuzz-$t "$corpus" build-fuzz/tests/fuzz/seeds/$t tests/fuzz/regressions/$t \
    -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=1024 -malloc_limit_mb=300 -timeout=10 \
    -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$crashes/" \
    ${LIIF_FUZZ_JOBS:+-fork=$LIIF_FUZZ_JOBS} >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/{n+=$2} END{print n+0}' "$log")
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "fuzz-$t: FAILED after $execs executions (see $log, input in $crashes/)"
    grep -m3 -E "ERROR|SUMMARY|==[0-9]+==" "$log" || tail -5 "$log"
  else
    echo "fuzz-$t: $execs executions in ${secs}s, no crash (corpus: $(ls "$corpus" | wc -l) inputs)"
  fi
done
exit $status
