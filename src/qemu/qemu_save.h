/*
 * qemu_save.h: save, restore and managed save of running domains, through Tandem's own save image format
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_conf.h"
#include "qemu_domain.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuSaveRegister(virHypervisorDriver *driver);

/* Start (virDomainCreateWithFlags) of a domain that has a managed save
 * image: restores it instead of booting.  vm locked, inactive, the async
 * job QEMU_ASYNC_JOB_START held; @flags are VIR_DOMAIN_START_* (PAUSED,
 * AUTODESTROY, BYPASS_CACHE).  Queues the lifecycle events.  On success
 * the image is removed and vm->hasManagedSave cleared; on failure nothing
 * runs and the image is kept, with an error saying why. */
int qemuSaveStartManaged(virConnectPtr conn,
                         virQEMUDriver *driver,
                         virDomainObj *vm,
                         unsigned int flags);

/* Resolves a save job interrupted by a daemon restart (any phase): QEMU's
 * migration into the dead stream is cancelled, the guest runs again if the
 * save had paused it (running, reason save canceled), and the temporary
 * image recorded in the status is removed.  The target file was never
 * touched.  Called by the reconnect code with the adopted async job held
 * and QEMU's monitor connected, or with the domain already stopped (then
 * only the file goes); records the job's outcome (failed). */
void qemuSaveRecover(virQEMUDriver *driver, virDomainObj *vm, int phase);
