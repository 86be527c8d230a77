/*
 * qemu_snapshot.h: memory dumps and snapshots (internal snapshots: create, list, revert, delete)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"
#include "tdmjson.h"

/* Fills this file's entries of the hypervisor driver table (and those of
 * qemu_dump.c). */
void qemuSnapshotRegister(virHypervisorDriver *driver);

/* Events for the dump and snapshot jobs (DUMP_COMPLETED,
 * JOB_STATUS_CHANGE), called by the process layer's generic event callback
 * (event loop thread, vm locked and active).  Never waits. */
void qemuSnapshotHandleEvent(virDomainObj *vm, const char *event, tdmJSONValue *data);

/* For undefine (vm locked, the caller about to delete the definition):
 * fails with VIR_ERR_OPERATION_INVALID when the domain has snapshots and
 * @flags lack VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA; with the flag, the
 * snapshot metadata of an inactive domain is removed. */
int qemuSnapshotPrepareUndefine(virDomainObj *vm, unsigned int flags);
