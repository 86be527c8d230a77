/*
 * qemu_domainstats.h: virConnectGetAllDomainStats / virDomainListGetStats
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"

/* Records for @vms (referenced, unlocked; the caller keeps its references).
 * @stats: VIR_DOMAIN_STATS_* groups (0: all supported); @flags:
 * VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT / ENFORCE_STATS.  Returns the
 * number of records in the NULL-terminated *@retStats, or -1. */
int qemuDomainStatsCollect(virConnectPtr conn,
                           virDomainObj **vms,
                           size_t nvms,
                           unsigned int stats,
                           unsigned int flags,
                           virDomainStatsRecordPtr **retStats);
