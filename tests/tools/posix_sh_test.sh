#!/bin/sh
# posix_sh_test.sh ROOT: every #!/bin/sh script of the repository parses in the system's sh (dash on Debian and on
# the lent GPU machine's Ubuntu) and uses nothing POSIX sh lacks (shellcheck -s sh: its SC3xxx warnings). A bashism
# in tests/gpu/check.sh stops the whole GPU check before its first line, on a machine lent for minutes: a here-string
# there (2026-12-06) made dash refuse the script, unnoticed until this test.
set -u
root=$1
command -v shellcheck > /dev/null || { echo "SKIP: shellcheck is not installed (tools/install-deps.sh installs it)"; exit 77; }
files=$(git -C "$root" ls-files '*.sh' 2> /dev/null) || files=$(cd "$root" && find . -name '*.sh' ! -path './build*')
n=0 bad=0
for f in $files; do
  p=$root/$f
  [ "$(head -c 9 "$p")" = '#!/bin/sh' ] || continue
  n=$((n + 1))
  sh -n "$p" || { echo "FAIL $f: sh -n refuses it"; bad=1; }
  out=$(shellcheck -s sh -f gcc "$p" 2>&1 | grep -E '\[SC3[0-9]{3}\]')
  [ -z "$out" ] || { echo "FAIL $f: not POSIX sh:"; echo "$out"; bad=1; }
done
[ "$n" -gt 5 ] || { echo "FAIL: only $n #!/bin/sh scripts found under $root"; exit 1; }
[ $bad -eq 0 ] && echo "$n #!/bin/sh scripts: parsed by $(readlink -f /bin/sh), no POSIX-undefined constructs (shellcheck -s sh)"
exit $bad
