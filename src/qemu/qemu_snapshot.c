/*
 * qemu_snapshot.c: memory dumps and snapshots (internal snapshots: create, list, revert, delete)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_snapshot.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

void
qemuSnapshotRegister(virHypervisorDriver *driver G_GNUC_UNUSED)
{
}
