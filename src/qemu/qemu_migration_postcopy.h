/*
 * qemu_migration_postcopy.h: post-copy migration (VIR_MIGRATE_POSTCOPY,
 * virDomainMigrateStartPostCopy)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A migration started with VIR_MIGRATE_POSTCOPY enables QEMU's
 * postcopy-ram capability on both hosts (the destination before its
 * incoming migration starts).  It runs as a pre-copy migration until
 * virDomainMigrateStartPostCopy (virsh migrate-postcopy, or virsh itself
 * after the first pass with --postcopy-after-precopy) asks QEMU to switch:
 *
 *   source                               destination
 *   STOP: paused (post-copy)
 *   MIGRATION postcopy-active:
 *     Perform returns                    Finish sees postcopy-active:
 *                                          'cont', running (post-copy)
 *                                        waits for 'completed':
 *                                          running (migrated)
 *   Confirm waits for 'completed',
 *   stops the source
 *
 * From the switch on the guest's state is split between the hosts: nothing
 * can roll back.  A failure after it (a QEMU or the link dies, or
 * virDomainAbortJobFlags with VIR_DOMAIN_ABORT_JOB_POSTCOPY pauses the
 * stream: QMP migrate-pause) ends the jobs and leaves the surviving
 * copies with reason post-copy failed: the source paused, the
 * destination running (its vCPUs wait for the missing pages: QEMU cannot
 * stop them); the source never resumes, also not after a daemon restart.
 * While both QEMUs live (postcopy-paused), VIR_MIGRATE_POSTCOPY_RESUME
 * resumes the stream: qemu_migration_resume.h.
 *
 * Locking: every function here is called with the domain object locked;
 * those that talk to QEMU hold the migration's async job (nested job) or,
 * for the API, a QEMU_JOB_MIGRATION_OP job, and release the lock inside
 * the monitor as usual.  qemuMigrationPostcopyHandleStatus runs in the
 * event loop thread and never waits.
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_conf.h"
#include "qemu_domain.h"

/* Has the outgoing or incoming migration of @vm switched to post-copy
 * (by its phase or its paused reason)?  vm locked. */
bool qemuMigrationPostcopySwitched(virDomainObj *vm);

/* The MIGRATION event of @vm's QEMU reported @status (a
 * qemuMonitorMigrationStatus): corrects the source's paused reason at the
 * switch, marks a source whose post-copy failed.  Event loop thread, vm
 * locked; never waits. */
void qemuMigrationPostcopyHandleStatus(virQEMUDriver *driver,
                                       virDomainObj *vm,
                                       int status);

/* Source: the switch happened (vm locked): paused (post-copy) with its
 * event unless the STOP event already recorded it. */
void qemuMigrationSrcPostcopyMarkSwitched(virQEMUDriver *driver, virDomainObj *vm);

/* Source: post-copy failed after the switch (vm locked): the guest stays
 * paused with reason post-copy failed (event once), QEMU is kept. */
void qemuMigrationSrcPostcopyFailed(virQEMUDriver *driver, virDomainObj *vm);

/* Destination, in Finish, QEMU in postcopy-active: starts the vCPUs
 * (running, post-copy) and records the phase.  vm locked, migration-in
 * job held. */
int qemuMigrationDstPostcopyResume(virQEMUDriver *driver, virDomainObj *vm);

/* Destination, in Finish, the post-copy phase failed: a QEMU still alive
 * keeps its vCPUs (those that need a missing page wait for it; QEMU cannot
 * stop them) and is marked running (post-copy failed), or paused
 * (post-copy failed) when its vCPUs were not running; reports the error
 * that says so, keeping @why (the cause) in it.  vm locked, migration-in
 * job held.  Always returns -1. */
int qemuMigrationDstPostcopyFailed(virQEMUDriver *driver, virDomainObj *vm,
                                   const char *why);

/* Reports the error of a migration whose post-copy failed after the switch
 * (VIR_ERR_OPERATION_FAILED), @why being the cause. */
void qemuMigrationPostcopyReportFailed(virDomainObj *vm, const char *why);

/* The error of migrate-set-capabilities with postcopy-ram on the
 * destination: QEMU refuses it when it may not use userfaultfd.  Replaces
 * the last error with one that says what to change. */
void qemuMigrationDstPostcopyReportUnsupported(void);

/* virDomainAbortJobFlags with VIR_DOMAIN_ABORT_JOB_POSTCOPY (virsh
 * domjobabort --postcopy): QMP migrate-pause on the source of a migration
 * in post-copy mode; both QEMUs stop the stream (postcopy-paused), the
 * migration fails as after a broken link and can be resumed.  vm locked,
 * a QEMU_JOB_ABORT job held. */
int qemuMigrationSrcPostcopyPause(virDomainObj *vm);

/* virDomainMigrateStartPostCopy. */
int qemuDomainMigrateStartPostCopy(virDomainPtr dom, unsigned int flags);
