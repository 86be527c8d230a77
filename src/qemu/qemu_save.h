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
