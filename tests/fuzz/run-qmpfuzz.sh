#!/bin/sh
# run-qmpfuzz.sh: a short libFuzzer run of the QMP parsers for `make check`
# (tests/fuzz/qmpfuzz.c); `make fuzz-qmp FUZZ_SECONDS=N` runs it longer.
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Exit 77 (skip) when clang or its fuzzer runtime is missing.

seconds=${QMPFUZZ_SECONDS:-10}
builddir=${abs_top_builddir:-.}

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

# unset MAKEFLAGS: this runs inside `make check`, possibly with -j
MAKEFLAGS= MFLAGS= make -s -C "$builddir" fuzz-qmp FUZZ_SECONDS="$seconds"
