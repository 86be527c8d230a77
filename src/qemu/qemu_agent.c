/*
 * qemu_agent.c: the guest agent channel (qemu-guest-agent), its own job
 * slot and deadline
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_agent.h"
#include "virerror.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

void
qemuAgentRegister(virHypervisorDriver *driver G_GNUC_UNUSED)
{
}

int
qemuAgentSetup(virDomainObj *vm G_GNUC_UNUSED, qemuDomainAsyncJob asyncJob G_GNUC_UNUSED)
{
    return 0;
}

void
qemuAgentTeardown(virDomainObj *vm G_GNUC_UNUSED)
{
}

int
qemuAgentShutdown(virDomainObj *vm G_GNUC_UNUSED, bool reboot G_GNUC_UNUSED)
{
    virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                   _("the guest agent is not supported yet"));
    return -1;
}
