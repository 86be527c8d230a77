/*
 * qemu_snapshot.h: memory dumps and snapshots (internal snapshots: create, list, revert, delete)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuSnapshotRegister(virHypervisorDriver *driver);
