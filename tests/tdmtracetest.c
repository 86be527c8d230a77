/*
 * tdmtracetest.c: unit tests for the slow-spot tracer (src/util/tdmtrace.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Only lower bounds on time are asserted (a sleep lasts at least what was
 * asked): never that something was fast.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "tdmtrace.h"

static int failures;

#define CHECK(name, cond) \
    do { \
        if (cond) { \
            printf("ok - %s\n", name); \
        } else { \
            printf("not ok - %s\n", name); \
            failures++; \
        } \
    } while (0)

int
main(void)
{
    unsigned long long begin;
    double ms;

    /* read once, at the first call */
    g_setenv("TANDEM_TRACE_SLOW_MS", "20", TRUE);

    begin = tdmTraceBegin();
    CHECK("tracing on: a start mark", begin != 0);
    g_usleep(30 * 1000);
    ms = tdmTraceSlowMs(begin);
    CHECK("a 30 ms spot is slow at a 20 ms threshold", ms >= 30.0);
    CHECK("the off mark is never slow", tdmTraceSlowMs(0) == 0);

    g_setenv("TANDEM_TRACE_SLOW_MS", "0", TRUE);
    CHECK("the variable is read once", tdmTraceBegin() != 0);

    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
