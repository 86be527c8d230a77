/*
 * qemu_save.c: save, restore and managed save of running domains, through Tandem's own save image format
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_save.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

void
qemuSaveRegister(virHypervisorDriver *driver G_GNUC_UNUSED)
{
}
