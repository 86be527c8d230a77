#!/bin/sh
# run-short.sh: the short stress run of `make check` (TAP): 60 s, 4
# clients, 3 guests, two daemons, a fixed seed (STRESS_SEED overrides,
# STRESS_SHORT_SECONDS the duration).  Daemon restarts happen only between
# migrations here (a restart during a migration's last steps is finding F9
# in tests/stress/FINDINGS.md); `make check-stress` runs the full mix.
# SPDX-License-Identifier: LGPL-2.1-or-later
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
seed=${STRESS_SEED:-20261125}
seconds=${STRESS_SHORT_SECONDS:-60}
exec python3 "$srcdir/tests/stress/stress.py" --seed "$seed" --seconds "$seconds" \
    --clients 4 --guests 3 --no-restart-during-migration
