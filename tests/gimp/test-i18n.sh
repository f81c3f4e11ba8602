#!/bin/bash
# tests/gimp/test-i18n.sh BUILD_DIR: under German and French, GIMP shows the plug-in's translated menu label
# and its translated error messages (catalogs from <plug-in dir>/locale, as installed).
set -u
. "$(dirname "$0")/common.sh"
liif_gimp_setup "$1"
python3 "$SRC/tests/gimp/mkpng.py" "$W/in.png" 21 17 3 8
fail=0
for t in "de_DE.UTF-8|_LIIF-Vergrößerung...|Ungültige Skalierung" "fr_FR.UTF-8|Agrandissement _LIIF...|Échelle 0 × 0 invalide"; do
  IFS='|' read -r locale label message <<< "$t"
  rm -f "$GIMP3_DIRECTORY/pluginrc"        # the menu label is registered again under this language
  ( export LANG=$locale LANGUAGE=${locale%%_*} LC_ALL=$locale LIIF_EXPECT_ERROR=1 \
           LIIF_CASES="$W/in.png:$W/out.png" LIIF_MODEL="$LIIF_TEST_MODEL" LIIF_SCALE=0
    gimp_batch "$W/$locale.log" python-fu-eval "exec(open('$SRC/tests/gimp/batch.py').read())" )
  got_label=$(grep "LIIF-BATCH menu-label" "$W/$locale.log" | sed 's/LIIF-BATCH menu-label //')
  got_msg=$(grep "LIIF-BATCH in.png" "$W/$locale.log" | sed 's/.*msg=//')
  echo "$locale: menu label '$got_label', error '$got_msg'"
  [ "$got_label" = "$label" ] || { echo "FAIL: expected the label '$label'"; fail=1; }
  case $got_msg in "$message"*) ;; *) echo "FAIL: expected an error starting '$message'"; fail=1;; esac
done
[ $fail = 0 ] && echo "PASS: German and French menu label and messages"
exit $fail
