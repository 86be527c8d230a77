/*
 * qemu_domain_devices.c: device-facing APIs (console, screenshot, send-key, removable media, display passwords)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_domain_devices.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

void
qemuDomainDevicesRegister(virHypervisorDriver *driver G_GNUC_UNUSED)
{
}

int
qemuDomainDevicesSetup(virDomainObj *vm G_GNUC_UNUSED, qemuDomainAsyncJob asyncJob G_GNUC_UNUSED)
{
    return 0;
}
