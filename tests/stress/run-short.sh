#!/bin/sh
# run-short.sh: the short stress run of `make check` (TAP): 60 s, 4
# clients, 3 guests, two daemons, a fixed seed (STRESS_SEED overrides).
# Daemon restarts happen only between migrations there (known bug F2 in
# tests/stress/FINDINGS.md); `make check-stress` runs the full mix.
# SPDX-License-Identifier: LGPL-2.1-or-later
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
exec python3 "$srcdir/tests/stress/stress.py" \
    --seed "${STRESS_SEED:-20261125}" --seconds "${STRESS_SHORT_SECONDS:-60}" \
    --clients 4 --guests 3 --no-restart-during-migration
