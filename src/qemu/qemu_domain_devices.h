/*
 * qemu_domain_devices.h: device-facing APIs (console, screenshot, send-key, removable media, display passwords)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"
#include "tdmjson.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuDomainDevicesRegister(virHypervisorDriver *driver);

/* Called by the process layer once the monitor is connected, at start
 * (with the start job's @asyncJob) and at reconnect (QEMU_ASYNC_JOB_NONE,
 * a modify job held).  vm locked. */
int qemuDomainDevicesSetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob);

/* Does QEMU's device name @qdev (a qdev id or a QOM path) name the device
 * with libvirt alias @alias? */
bool qemuDomainDevicesQdevMatches(const char *qdev, const char *alias);

/* The number N of a node name "libvirt-N-..." (0 if it is not one). */
unsigned int qemuDomainDevicesNodeIndex(const char *name);

/* BLOCK_IO_ERROR (@data: its data), from the event pool: the IO_ERROR and
 * IO_ERROR_REASON events of the disk it is about (found with query-block,
 * under a query job).  vm locked, no job; @id: vm->def->id when it
 * happened. */
void qemuDomainDevicesHandleIOError(virDomainObj *vm, int id, tdmJSONValue *data);

/* Events of QEMU about devices (DEVICE_TRAY_MOVED): updates the live
 * definition and queues the libvirt event.  For the process layer's
 * generic event callback, in the event loop thread, vm locked. */
void qemuDomainDevicesHandleEvent(virDomainObj *vm,
                                  const char *event,
                                  tdmJSONValue *data);
