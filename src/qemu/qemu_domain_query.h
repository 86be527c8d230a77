/*
 * qemu_domain_query.h: per-domain queries and tuning APIs (memory and balloon statistics, vCPUs, block and interface statistics, CPU statistics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"
#include "virtypedparam.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuDomainQueryRegister(virHypervisorDriver *driver);

/* Called by the process layer once the monitor is connected, at start
 * (with the start job's @asyncJob) and at reconnect (QEMU_ASYNC_JOB_NONE,
 * a modify job held).  vm locked. */
int qemuDomainQuerySetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob);

/* The balloon group of domain stats beyond current/maximum, without QEMU:
 * the guest statistics virDomainMemoryStats last read (when a period is
 * set), and balloon.rss from /proc.  vm locked. */
int qemuDomainQueryBalloonStatsParams(virDomainObj *vm, virTypedParamList *params);
void qemuDomainQueryBalloonGuestRefresh(virDomainObj *vm, bool nowait);
