#!/bin/sh
# check-model.sh: checks the Promela job model (tests/model/jobs.pml) with
# spin, and that its generated mask table matches the C table of
# src/qemu/qemu_domainjob.c (printed by tests/qemujobtest --promela-masks)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs under `make check` (abs_top_srcdir / abs_top_builddir set) or by
# hand from the build directory.  Exit 0: all good; 1: a check failed;
# 77: spin or a C compiler is missing (automake SKIP).

set -u

srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${abs_top_builddir:-$(pwd)}
model=$srcdir/tests/model/jobs.pml
jobtest=$builddir/tests/qemujobtest
CC=${CC:-cc}

command -v spin >/dev/null 2>&1 || { echo "SKIP: spin not installed"; exit 77; }
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no C compiler"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-model.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

# 1. Drift: the model's table is exactly what the C table generates.
if [ ! -x "$jobtest" ]; then
    echo "not ok - mask table drift: $jobtest not built"
    fail=1
else
    "$jobtest" --promela-masks > "$tmp/expected" || fail=1
    sed -n '/^\/\* BEGIN GENERATED/,/^\/\* END GENERATED/p' "$model" > "$tmp/actual"
    if diff -u "$tmp/expected" "$tmp/actual" > "$tmp/diff"; then
        echo "ok - mask table of jobs.pml matches qemu_domainjob.c"
    else
        echo "not ok - mask table of jobs.pml differs from qemu_domainjob.c:"
        cat "$tmp/diff"
        echo "  (replace the GENERATED block with: tests/qemujobtest --promela-masks)"
        fail=1
    fi
fi

# 2. spin: safety (assertions, invariants, invalid end states = deadlocks),
#    once with bounded waits that may expire, once without any timeout (the
#    protocol must not depend on deadlines to avoid deadlock).
run_spin() {
    name=$1
    shift
    dir=$tmp/$name
    mkdir -p "$dir"
    cp "$model" "$dir/jobs.pml"    # spin and pan write next to the model
    if ! (cd "$dir" && spin "$@" -a jobs.pml) > "$dir/spin.log" 2>&1; then
        echo "not ok - spin $name: spin -a failed"
        cat "$dir/spin.log"
        fail=1
        return
    fi
    if ! (cd "$dir" && $CC -O2 -DSAFETY -DCOLLAPSE -o pan pan.c) > "$dir/cc.log" 2>&1; then
        echo "not ok - spin $name: cannot compile pan.c"
        cat "$dir/cc.log"
        fail=1
        return
    fi
    (cd "$dir" && ./pan -m100000 -c1) > "$dir/pan.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || ! grep -q 'errors: 0$' "$dir/pan.log" ||
       grep -q -e 'error: max search depth too small' -e 'out of memory' "$dir/pan.log"; then
        echo "not ok - spin $name"
        cat "$dir/pan.log"
        if [ -f "$dir/jobs.pml.trail" ]; then
            echo "--- counterexample ---"
            (cd "$dir" && spin "$@" -t -p jobs.pml) | tail -60
        fi
        fail=1
        return
    fi
    states=$(sed -n 's/^ *\([0-9e+.]*\) states, stored.*/\1/p' "$dir/pan.log")
    echo "ok - spin $name ($states states, no assertion violated, no invalid end state)"
}

run_spin with-timeouts -DTIMEOUTS
run_spin without-timeouts

exit $fail
