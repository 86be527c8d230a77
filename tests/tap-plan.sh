#!/bin/sh
# tap-plan.sh: runs a test program or script under automake's TAP driver.
# Tests that print TAP result lines ("ok ...", "not ok ...") get a plan
# line added when they did not print one, so every check counts.  A test
# that prints no result lines counts as one check, passed when it exits 0;
# exit 77 without result lines is a skip, with the test's last line as the
# reason.  The exit status is the test's otherwise: a crash stays an error.
# SPDX-License-Identifier: LGPL-2.1-or-later
out=$(mktemp)
"$@" > "$out" 2>&1
rc=$?
n=$(grep -c '^\(not \)\?ok' "$out")
if [ "$n" -eq 0 ]; then
    sed 's/^/# /' "$out"
    if [ $rc -eq 77 ]; then
        echo "1..0 # SKIP $(grep -v '^[[:space:]]*$' "$out" | tail -n 1)"
        rc=0
    elif [ $rc -eq 0 ]; then
        echo "ok 1 - $*"
        echo "1..1"
    else
        echo "not ok 1 - $* (exit status $rc)"
        echo "1..1"
    fi
else
    cat "$out"
    grep -q '^1\.\.[0-9]' "$out" || echo "1..$n"
fi
rm -f "$out"
exit $rc
