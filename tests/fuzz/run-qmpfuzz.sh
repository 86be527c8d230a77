#!/bin/sh
# run-qmpfuzz.sh: a short libFuzzer run of every fuzz target for
# `make check`, one TAP line per target: the QMP parsers (qmpfuzz.c), the
# save image reader (saveimagefuzz.c), the migration cookie parser
# (cookiefuzz.c) and the status file's private data (statusfuzz.c).  `make fuzz-NAME FUZZ_SECONDS=N` runs one longer.
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 77 (skip) when clang or its fuzzer runtime is missing.

seconds=${QMPFUZZ_SECONDS:-6}
builddir=${abs_top_builddir:-.}
targets="qmp saveimage cookie status"

if ! command -v clang >/dev/null 2>&1; then
    echo "SKIP: clang is not installed (needed for -fsanitize=fuzzer)"
    exit 77
fi

probe_dir=$(mktemp -d) || exit 99
trap 'rm -rf "$probe_dir"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' \
    > "$probe_dir/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$probe_dir/probe" \
        "$probe_dir/probe.c" >"$probe_dir/log" 2>&1; then
    echo "SKIP: clang cannot build a libFuzzer binary (libclang-rt-dev missing?):"
    sed 's/^/  /' "$probe_dir/log"
    exit 77
fi

n=0
failed=0
for t in $targets; do
    n=$((n + 1))
    # unset MAKEFLAGS: this runs inside `make check`, possibly with -j
    if MAKEFLAGS= MFLAGS= make -s -C "$builddir" fuzz-$t FUZZ_SECONDS="$seconds" \
            >"$probe_dir/$t.log" 2>&1; then
        sed 's/^/# /' "$probe_dir/$t.log" | grep -e '^# stat::' -e 'DONE'
        echo "ok $n - fuzz-$t ($seconds s)"
    else
        sed 's/^/# /' "$probe_dir/$t.log"
        echo "not ok $n - fuzz-$t"
        failed=1
    fi
done
echo "1..$n"
exit $failed
