/*
 * qemu_dump.h: guest memory dumps (virsh dump --memory-only) as an async
 * job driven over QMP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_conf.h"
#include "qemu_domain.h"
#include "tdmjson.h"

/* Fills the dump entries of the hypervisor driver table. */
void qemuDumpRegister(virHypervisorDriver *driver);

/* DUMP_COMPLETED from QEMU (event loop thread, vm locked): records the
 * outcome for the running dump job and wakes it. */
void qemuDumpHandleCompleted(virDomainObj *vm, tdmJSONValue *data);

/* Helpers shared with qemu_snapshot.c (vm locked, the async job held). */

/* Stops the vCPUs when the domain runs; *@paused tells whether it did. */
int qemuDumpPauseDomain(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                        virDomainPausedReason reason, bool *paused);
/* Starts the vCPUs; the domain runs with @reason. */
int qemuDumpResumeDomain(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                         virDomainRunningReason reason);
/* Stops the domain (the destroy recipe) with @reason and the STOPPED
 * event @eventDetail. */
void qemuDumpStopDomain(virDomainObj *vm, virDomainShutoffReason reason,
                        int eventDetail);

/* Reconnect after a daemon restart interrupted a dump or a snapshot job
 * (@asyncJob QEMU_ASYNC_JOB_DUMP or _SNAPSHOT, held; vm locked): waits
 * (bounded, vm unlocked) until QEMU no longer saves the guest, resumes a
 * guest the job had paused, and records the job as failed.  QEMU cannot
 * cancel its dump: a dump file it was writing is left as it is. */
void qemuDumpRecover(virDomainObj *vm, qemuDomainAsyncJob asyncJob, int phase);
