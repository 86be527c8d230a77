/*
 * tdmtrace.h: the slow-spot tracer, for profiling lock and wait times
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * TANDEM_TRACE_SLOW_MS=N in the environment of the process that runs the
 * driver (libvirtd, or a client using qemu:///embed) makes the traced
 * spots log a warning "slow: ..." whenever they took N ms or more: job
 * waits, monitor round trips, domain lock waits, status file writes,
 * event handlers.  Unset or 0: off, and each traced spot costs one
 * compare.  Thread-safe; the variable is read once.
 */
#pragma once

#include "internal.h"

/* A start mark for tdmTraceSlowMs(), or 0 when tracing is off. */
unsigned long long tdmTraceBegin(void);

/* Milliseconds since @begin when at least the threshold, else 0 (also
 * when @begin is 0: tracing off). */
double tdmTraceSlowMs(unsigned long long begin);
