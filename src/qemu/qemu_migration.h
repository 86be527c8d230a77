/*
 * qemu_migration.h: live and offline migration between libvirt hosts, the
 * v3 protocol with parameters (begin, prepare, perform, finish, confirm)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Jobs: the source holds the async job migration-out from Begin to
 * Confirm, the destination holds migration-in from Prepare to Finish.
 * Those steps are separate API calls, often in separate threads: each step
 * adopts the async job when it starts.  Queries, abort, suspend and the
 * migration tuning calls run beside the job (see the mask table in
 * qemu_domainjob.c); the domain lock is released whenever a step waits.
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_conf.h"
#include "qemu_domain.h"
#include "qemu_monitor_json.h"

/* The flags Tandem's migration accepts. */
#define QEMU_MIGRATION_FLAGS \
    (VIR_MIGRATE_LIVE | \
     VIR_MIGRATE_PEER2PEER | \
     VIR_MIGRATE_PERSIST_DEST | \
     VIR_MIGRATE_UNDEFINE_SOURCE | \
     VIR_MIGRATE_PAUSED | \
     VIR_MIGRATE_CHANGE_PROTECTION | \
     VIR_MIGRATE_ABORT_ON_ERROR | \
     VIR_MIGRATE_AUTO_CONVERGE | \
     VIR_MIGRATE_OFFLINE | \
     VIR_MIGRATE_UNSAFE | \
     VIR_MIGRATE_POSTCOPY | \
     VIR_MIGRATE_POSTCOPY_RESUME | \
     VIR_MIGRATE_NON_SHARED_DISK | \
     VIR_MIGRATE_NON_SHARED_INC)

/* Fills the migration entries of the hypervisor driver table. */
void qemuMigrationRegister(virHypervisorDriver *driver);

/* The connection driving @vm's migration step by step closed
 * (qemuProcessConnectionClosed): the migration will never see its next
 * step; undo it (source: cancel and keep the guest running unless QEMU
 * already switched over; destination: drop the incoming guest).  Does
 * nothing when the migration job that began at @asyncStarted is over.
 * vm locked, no job; in a worker thread (it waits for QEMU). */
void qemuMigrationClientGone(virQEMUDriver *driver, virDomainObj *vm,
                             unsigned long long asyncStarted);

/* libvirtd begins to stop (stateShutdownPrepare; its client connections
 * are closed already): incoming migrations no longer commit, their Finish
 * undoes them (docs/THREADS.txt section 7).  Any thread. */
void qemuMigrationShutdownPrepare(void);

/* Resolves a migration job interrupted by a daemon restart, by its phase.
 * Called by the reconnect code with the adopted async job held and the
 * monitor connected.  Returns 0 when the domain stays, -1 when it must be
 * stopped, 1 when the destination owns the guest and it was stopped here
 * (shut off, migrated; undefined with --undefinesource). */
int qemuMigrationRecover(virQEMUDriver *driver, virDomainObj *vm,
                         qemuDomainAsyncJob asyncJob, int phase);

/* Shared with qemu_migration_resume.c (post-copy recovery). */

/* The string parameter @name, or NULL. */
const char *qemuMigrationParamString(virTypedParameterPtr params, int nparams,
                                     const char *name);
/* Adopts the async job @asyncJob that a previous step began (vm locked);
 * -1 (operation invalid) when another one runs. */
int qemuMigrationJobContinue(virDomainObj *vm, qemuDomainAsyncJob asyncJob);
/* "tcp://host:port" or "tcp:host:port" -> QEMU's "tcp:host:port"; @port
 * fills in a missing port. */
char *qemuMigrationQEMUURI(const char *uri, int port);
/* Copies QEMU's migration statistics into the job's progress (vm locked). */
void qemuMigrationUpdateProgress(virDomainObj *vm, const qemuMonitorMigrationStats *st);
/* The destination owns the guest: the source's copy is stopped (shut off,
 * migrated), undefined with VIR_MIGRATE_UNDEFINE_SOURCE (vm locked, the
 * migration-out job held). */
void qemuMigrationSrcStopMigrated(virQEMUDriver *driver, virDomainObj *vm,
                                  unsigned long flags);
/* The job-completed event of a migration that succeeded (vm locked, after
 * the async job ended). */
void qemuMigrationQueueJobCompleted(virQEMUDriver *driver, virDomainObj *vm);
/* Records the running migration job's new @phase and saves the status
 * (vm locked, the job held); -1 when the phase would go backwards. */
int qemuMigrationSetPhase(virQEMUDriver *driver, virDomainObj *vm, int phase);
/* query-migrate under @asyncJob's nested job (vm locked, released inside). */
int qemuMigrationQuery(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                       qemuMonitorMigrationStats *st);
