#!/bin/sh
# tests/check-layers.sh CORE_DIR: fails if a file of core/ includes a header of a folder it may not use.
#   engine/  uses nothing else (cuda/'s module header is the engine's own interface to the module)
#   io/      engine          nn/    engine          eval/   engine, nn
#   train/   engine, nn, and cuda/'s module header (the GPU trainer's interface)
#   cuda/    engine
# A header is found by its name in the folders (every header name in core/ is unique; the check
# fails if two folders hold the same name, since the layering could then not be read from an include).
set -eu
core=${1:?usage: check-layers.sh CORE_DIR}
cd "$core"
folders="engine io nn train eval cuda"

allowed() { # allowed FOLDER: the folders FOLDER's files may include from, itself included
  case $1 in
    engine) echo "engine cuda" ;;
    io | nn) echo "$1 engine" ;;
    train) echo "train engine nn cuda" ;;
    eval) echo "eval engine nn" ;;
    cuda) echo "cuda engine" ;;
  esac
}

# folder of each header name
owners=$(for d in $folders; do for h in "$d"/*.h "$d"/*.cuh; do [ -e "$h" ] && echo "${h##*/} $d"; done; done)
dups=$(echo "$owners" | awk '{print $1}' | sort | uniq -d)
if [ -n "$dups" ]; then
  echo "check-layers: header names in more than one folder of core/: $dups"
  exit 1
fi

stray=$(find . -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) | sed 's|^\./||')
if [ -n "$stray" ]; then
  echo "check-layers: sources directly in core/ belong to a folder: $stray"
  exit 1
fi

bad=0 checked=0
for d in $folders; do
  ok=$(allowed "$d")
  for f in "$d"/*.c "$d"/*.h "$d"/*.cu "$d"/*.cuh; do
    [ -e "$f" ] || continue
    checked=$((checked + 1))
    # every quoted include, with any path stripped: "../train/train.h" is train.h
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
      name=${inc##*/}
      owner=$(echo "$owners" | awk -v n="$name" '$1 == n {print $2}')
      [ -n "$owner" ] || continue # not a core header (liif-config.h, system headers in quotes)
      case " $ok " in
        *" $owner "*) ;;
        *) echo "check-layers: core/$f includes $inc from core/$owner/, but $d/ may use only: $ok"; bad=1 ;;
      esac
    done
  done
done
[ "$checked" -gt 0 ] || { echo "check-layers: no sources found under $core"; exit 1; }
[ "$bad" -eq 0 ] || exit 1
echo "check-layers: $checked files of core/ include only what their folder may use"
