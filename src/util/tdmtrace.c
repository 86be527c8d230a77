/*
 * tdmtrace.c: the slow-spot tracer (see tdmtrace.h)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "tdmtrace.h"

/* threshold in microseconds; 0: off */
static unsigned long long tdmTraceThresholdUs;

static gpointer
tdmTraceInit(gpointer data G_GNUC_UNUSED)
{
    const char *env = g_getenv("TANDEM_TRACE_SLOW_MS");

    if (env && *env)
        tdmTraceThresholdUs = g_ascii_strtoull(env, NULL, 10) * 1000ULL;
    return NULL;
}

unsigned long long
tdmTraceBegin(void)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, tdmTraceInit, NULL);
    if (!tdmTraceThresholdUs)
        return 0;
    return (unsigned long long) g_get_monotonic_time();
}

double
tdmTraceSlowMs(unsigned long long begin)
{
    unsigned long long now;

    if (!begin || !tdmTraceThresholdUs)
        return 0;
    now = (unsigned long long) g_get_monotonic_time();
    if (now < begin + tdmTraceThresholdUs)
        return 0;
    return (now - begin) / 1000.0;
}
