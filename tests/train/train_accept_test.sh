#!/bin/sh
# train_accept_test.sh: acceptance cases of `liif train` (meson tests train-overfit, train-kill-resume).
# usage: train_accept_test.sh CASE LIIF MKTEXTURE MAKE_RANDOM_MODEL
#   overfit      a tiny random LIIF model trained on one 48x48 textured PNG: the mean L1 loss of the
#                last five logged steps is at least 10x below that of the first five; prints the
#                figures and the time (wall and CPU time under 60 s unless the binary is built with a sanitizer).
#   kill-resume  N steps straight vs the same run SIGKILLed after checkpoint k was written and then
#                resumed from last.safetensors (with truncated temporary files next to it, as a write
#                cut short leaves them): identical exported weights; a truncated checkpoint given to
#                --resume fails with one line naming the file.
set -u
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
case_name=$1 liif=$(abs "$2") mktexture=$(abs "$3") mkmodel=$(abs "$4")
work=$(mktemp -d /tmp/liif-train-accept.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2> /dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL $case_name: $*"; exit 1; }
now() { date +%s.%N; }

mkdir data
"$mktexture" data/texture.png 48 48 || fail mktexture

config() { # config OUT STEPS CHECKPOINT_EVERY: the kill-resume run
  printf '[train]\ndata = data\noutput = %s\ninit_from = model.safetensors\nbatch = 4\ninp_size = 16\nscale_max = 2\nsample_q = 64\nlr = 1e-3\nsteps = %s\ncheckpoint_every = %s\nthreads = 1\nseed = 5\n' "$1" "$2" "$3"
}
# adam_step CKPT: the step count in the checkpoint's metadata
adam_step() { grep -ao '"adam.step":"[0-9]*"' "$1" | head -n 1 | tr -dc 0-9; }
ckpt() { printf 'ckpt-%08d.safetensors' "$1"; }

case $case_name in
overfit)
  "$mkmodel" model.safetensors liif 8 1 16 || fail make_random_model
  steps=800
  printf '[train]\ndata = data\noutput = out\ninit_from = model.safetensors\nbatch = 4\ninp_size = 8\nscale_max = 2\nsample_q = 64\nlr = 2e-3\nsteps = %s\ncheckpoint_every = %s\nthreads = 1\nseed = 7\n' \
    $steps $steps > run.ini
  t0=$(now)
  "$liif" train --config run.ini 2> err.txt || { cat err.txt; fail "train failed"; }
  t1=$(now)
  # the CPU time of the children (the second line of `times`: user and system, as XmYs)
  times > times.txt # not in $(...): a subshell has no children's times
  cpu=$(tail -n 1 times.txt | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } print s }')
  [ "$(wc -l < out/log.csv)" -eq $((steps + 1)) ] || fail "log.csv has $(wc -l < out/log.csv) lines, want $((steps + 1))"
  awk -F, -v n=$steps -v t0="$t0" -v t1="$t1" -v cpu="$cpu" '
    NR >= 2 && NR <= 6 { a += $3 } NR >= n - 3 { b += $3 }
    END { printf "overfit: %d steps, loss first five %.4f, last five %.4f, ratio %.1fx; %.1f s wall, %.1f s CPU\n",
                 n, a / 5, b / 5, a / b, t1 - t0, cpu; exit !(b > 0 && a >= 10 * b) }' out/log.csv \
    || fail "the loss did not fall 10x"
  if ! grep -aq -e __asan_ -e __tsan_ -e __msan_ -e __ubsan_ "$liif"; then
    awk -v c="$cpu" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 'BEGIN { exit !(c < 60 && w < 60) }' ||
      fail "took $cpu s of CPU time, $t0 .. $t1 wall (want each under 60 s)"
  fi
  ;;
kill-resume)
  "$mkmodel" model.safetensors liif 16 2 32 || fail make_random_model
  N=100 k=5
  # the straight run
  config straight $N 1 > straight.ini
  "$liif" train --config straight.ini 2> err.txt || { cat err.txt; fail "straight run failed"; }
  "$liif" export straight/last.safetensors s.safetensors || fail "export straight"
  # the run killed (SIGKILL) as soon as checkpoint k exists
  config killed $N 1 > killed.ini
  "$liif" train --config killed.ini 2> killed-err.txt &
  pid=$!
  while [ ! -e killed/$(ckpt $k) ] && kill -0 $pid 2> /dev/null; do sleep 0.01; done
  kill -9 $pid 2> /dev/null
  wait $pid
  rc=$? pid=
  [ $rc -eq 137 ] || { cat killed-err.txt; fail "the run to be killed ended with status $rc before the kill"; }
  [ -e killed/$(ckpt $k) ] || fail "no checkpoint $k before the kill"
  s=$(adam_step killed/last.safetensors)
  # (the kill may land between ckpt-k and last.safetensors: last is then still at k - 1)
  [ -n "$s" ] && [ "$s" -ge $((k - 1)) ] && [ "$s" -lt $N ] ||
    fail "killed/last.safetensors is at step '$s', want $((k - 1))..$((N - 1))"
  # last.safetensors is whole: the same bytes as the checkpoint of its step
  cmp -s killed/last.safetensors killed/$(ckpt "$s") || fail "killed/last.safetensors differs from $(ckpt "$s")"
  leftover=$(ls killed | grep -c '\.tmp$')
  echo "kill-resume: killed after step $s (checkpoint $k seen), $leftover temporary file(s) left by the kill"
  # writes of the next checkpoint cut short: truncated temporary files where liif_st_write puts them
  # (<path>.<6 hex>.tmp), from the straight run's checkpoint of that step
  next=straight/$(ckpt $((s + 1)))
  size=$(stat -c %s "$next")
  head -c $((size / 2)) "$next" > "killed/last.safetensors.a1b2c3.tmp"
  head -c $((size / 3)) "$next" > "killed/$(ckpt $((s + 1))).d4e5f6.tmp"
  cp -r killed killed2
  # a plain resume (the config from the checkpoint) continues from step s to N
  lines=$(wc -l < killed/log.csv)
  "$liif" train --resume killed/last.safetensors 2> err.txt || { cat err.txt; fail "resume failed"; }
  first=$(sed -n "$((lines + 1))p" killed/log.csv | cut -d, -f1)
  [ "$first" = $((s + 1)) ] || fail "the resumed run started at step '$first', want $((s + 1))"
  [ "$(tail -n 1 killed/log.csv | cut -d, -f1)" = $N ] || fail "the resumed run did not reach step $N"
  [ "$(adam_step killed/last.safetensors)" = $N ] || fail "killed/last.safetensors is not at step $N"
  "$liif" export killed/last.safetensors r.safetensors || fail "export resumed"
  cmp s.safetensors r.safetensors || fail "$N steps straight and $s + kill + resume differ"
  # the same with --config
  config killed2 $N 1 > killed2.ini
  "$liif" train --config killed2.ini --resume killed2/last.safetensors 2> err.txt ||
    { cat err.txt; fail "resume with --config failed"; }
  "$liif" export killed2/last.safetensors r2.safetensors || fail "export resumed 2"
  cmp s.safetensors r2.safetensors || fail "$N steps straight and $s + kill + resume --config differ"
  echo "kill-resume: $N steps straight = $s + SIGKILL + resume (plain and --config): bit-identical weights"
  # a checkpoint cut short (truncated at its final name) given to --resume: one line naming it, no crash
  mkdir cut
  for n in 2 3 100; do
    head -c $((size / n)) "$next" > cut/last.safetensors
    for how in plain config; do
      if [ $how = plain ]; then
        "$liif" train --resume cut/last.safetensors > out.txt 2> err.txt; rc=$?
      else
        "$liif" train --config straight.ini --resume cut/last.safetensors > out.txt 2> err.txt; rc=$?
      fi
      [ $rc -ne 0 ] && [ $rc -lt 128 ] || { cat err.txt; fail "truncated checkpoint (1/$n, $how): exit status $rc"; }
      [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "truncated checkpoint (1/$n, $how): not one line of error"; }
      grep -q "cut/last.safetensors" err.txt || { cat err.txt; fail "truncated checkpoint (1/$n, $how): error does not name the file"; }
    done
    echo "truncated to 1/$n: $(cat err.txt)"
  done
  ;;
*) fail "unknown case" ;;
esac
echo "PASS $case_name"
