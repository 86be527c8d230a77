/*
 * qemu_domain_query.c: per-domain queries and tuning APIs (memory and balloon statistics, vCPUs, block and interface statistics, CPU statistics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_domain_query.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

void
qemuDomainQueryRegister(virHypervisorDriver *driver G_GNUC_UNUSED)
{
}

int
qemuDomainQuerySetup(virDomainObj *vm G_GNUC_UNUSED, qemuDomainAsyncJob asyncJob G_GNUC_UNUSED)
{
    return 0;
}
