/*
 * qemu_hotplug.h: device hot-plug and cold-plug (attach-device,
 * detach-device, detach-device-alias) of disks and interfaces
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "domain_conf.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuHotplugRegister(virHypervisorDriver *driver);

typedef enum {
    QEMU_HOTPLUG_DELETED_OTHER,     /* not a device this file removes */
    QEMU_HOTPLUG_DELETED_WAITER,    /* the detach waiting for it finishes it */
    QEMU_HOTPLUG_DELETED_DEFERRED,  /* nobody waits: qemuHotplugDeviceDeletedWork
                                     * must finish it, off the event loop */
} qemuHotplugDeletedResult;

/* DEVICE_DELETED of @alias, in the event loop thread, vm locked.  Wakes
 * the detach that waits for it, or says that the removal must be finished
 * by a worker (the detach gave up waiting).  Never waits. */
qemuHotplugDeletedResult qemuHotplugDeviceDeleted(virDomainObj *vm, const char *alias);

/* In a worker thread, vm locked, no job: finishes the removal of the
 * device @alias that QEMU deleted after its detach stopped waiting
 * (removes its block nodes or network backend, gives its image back,
 * drops it from the live definition, queues the device-removed event).
 * Takes a modify job.  @id: vm->def->id when the event came. */
void qemuHotplugDeviceDeletedWork(virDomainObj *vm, int id, const char *alias);

/* At reconnect after a daemon restart, vm locked, the reconnect's modify
 * job held: the hot-pluggable devices of the live definition that QEMU no
 * longer has (deleted while the daemon was away) are removed as if their
 * DEVICE_DELETED had come now.  Problems are logged. */
void qemuHotplugReconnect(virDomainObj *vm);
