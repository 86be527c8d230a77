/*
 * qemu_migration_nbd.h: migration with non-shared storage
 * (VIR_MIGRATE_NON_SHARED_DISK, VIR_MIGRATE_NON_SHARED_INC: virsh migrate
 * --copy-storage-all / --copy-storage-inc) over NBD
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   source                                destination
 *   Begin: the disks to copy and their
 *     sizes in the cookie
 *                                         Prepare: creates missing images
 *                                           (full copy); QEMU -incoming; for the
 *                                           disks to copy nbd-server-start on
 *                                           the migration address and a port
 *                                           of the migration range, one
 *                                           writable block-export-add each
 *                                           (export name = disk target);
 *                                           <nbd port=..> in the cookie
 *   Perform: phase "storage": per disk an
 *     NBD client node "migration-DST-nbd"
 *     and blockdev-mirror job
 *     "migration-DST" (sync full, or top
 *     for --copy-storage-inc); waits for
 *     every job to be ready (woken by the
 *     job events, domain unlocked), disk
 *     progress in domjobinfo;
 *     phase perform3: RAM migration with
 *     pause-before-switchover; at
 *     pre-switchover (vCPUs stopped) each
 *     mirror is completed without pivot
 *     (block-job-cancel of a ready job:
 *     the copy is consistent), the client
 *     nodes deleted, migrate-continue
 *                                         Finish: nbd-server-stop before
 *                                           the vCPUs run
 *
 * The disks copied: every disk with a file or block source that is not
 * read-only, shared or a CD-ROM/floppy, or those named by
 * VIR_MIGRATE_PARAM_MIGRATE_DISKS.  The destination's images must exist,
 * except plain files of a full copy: Prepare creates them with the size
 * Begin put in its cookie (and removes them if Prepare fails; a later
 * failure leaves them); otherwise it fails naming the missing one.  Any
 * failure or abort before the
 * switch-over cancels the mirrors and deletes the client nodes on the
 * source (which keeps running); the destination's QEMU, and its NBD
 * server with it, is stopped as in any failed migration.  A daemon
 * restarted during phase storage or perform3 of such a migration cancels
 * whatever job and node of ours QEMU still has (qemuMigrationRecover).
 *
 * Locking: every function is called with the domain object locked and
 * the migration's async job held (monitor calls take the nested job and
 * release the lock); qemuMigrationNBDHandleEvent runs in the event loop
 * thread and never waits.
 */
#pragma once

#include "internal.h"
#include "qemu_conf.h"
#include "qemu_domain.h"
#include "qemu_migration_cookie.h"

#define QEMU_MIGRATION_NBD_FLAGS (VIR_MIGRATE_NON_SHARED_DISK | VIR_MIGRATE_NON_SHARED_INC)

/* The disks named by VIR_MIGRATE_PARAM_MIGRATE_DISKS (a NULL-terminated
 * copy), or NULL when the parameter is absent (every eligible disk). */
char **qemuMigrationNBDGetMigrateDisks(virTypedParameterPtr params, int nparams);

/* Refuses flag combinations storage migration does not support (with
 * post-copy, offline, both NON_SHARED flags). */
int qemuMigrationNBDCheckFlags(unsigned long flags);

/* Source, Begin (QEMU running): the disks to copy and their sizes, as
 * QEMU reports them, into @cookie's <nbd> (without a port). */
int qemuMigrationSrcNBDDescribe(virDomainObj *vm,
                                char **migrateDisks,
                                qemuMigrationCookie *cookie);

/* Destination, before QEMU starts: each disk to copy of @vm is known
 * (@migrateDisks) and its image exists.  A missing file image of a full
 * copy (VIR_MIGRATE_NON_SHARED_DISK) is created (qemu-img, the
 * destination definition's format, the size in the source's cookie
 * @srcCookie; vm unlocked meanwhile); otherwise the error names it.
 * The images created are recorded in the migration-in job
 * (job.createdImages, kept in the status file); on failure none is left. */
int qemuMigrationDstNBDPrepareDisks(virDomainObj *vm,
                                    char **migrateDisks,
                                    unsigned long flags,
                                    qemuMigrationCookie *srcCookie);

/* Destination, the incoming migration failed in any phase, or a restarted
 * daemon undid it (vm locked, the migration-in job held): removes the
 * images its Prepare created.  Not for a guest that stays here. */
void qemuMigrationDstNBDRemoveCreated(virDomainObj *vm);

/* Destination, QEMU started for the incoming migration: starts the NBD
 * server on @listenAddress and exports the disks to copy; fills
 * @cookie's <nbd>.  The port stays reserved in priv->nbdPort until Finish
 * or the QEMU stops. */
int qemuMigrationDstNBDStart(virQEMUDriver *driver,
                             virDomainObj *vm,
                             const char *listenAddress,
                             char **migrateDisks,
                             qemuMigrationCookie *cookie);

/* Destination, Finish, the migration completed: stops the NBD server
 * before the guest runs. */
int qemuMigrationDstNBDStop(virDomainObj *vm);

/* Source: the mirrors of one Perform. */
typedef struct _qemuMigrationNBDMirrors qemuMigrationNBDMirrors;
void qemuMigrationNBDMirrorsFree(qemuMigrationNBDMirrors *mirrors);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuMigrationNBDMirrors, qemuMigrationNBDMirrorsFree);

/* Source, Perform: connects to the NBD server the destination announced
 * in @cookie (on @host), starts one mirror per disk to copy (each limited
 * to @speed bytes/s, 0: unlimited; the migration's bandwidth) and waits
 * until all are ready; the job's disk progress is kept current.  Fails on
 * abort, a failed job or a QEMU that died; the caller then calls
 * qemuMigrationSrcNBDCancel. *@mirrors is set as soon as one mirror may
 * exist. */
int qemuMigrationSrcNBDCopy(virDomainObj *vm,
                            qemuMigrationCookie *cookie,
                            const char *host,
                            char **migrateDisks,
                            unsigned long long speed,
                            unsigned long flags,
                            qemuMigrationNBDMirrors **mirrors);

/* Source, QEMU paused at pre-switchover: completes each mirror without
 * pivot, waits until all ended, checks they succeeded and deletes the
 * client nodes. */
int qemuMigrationSrcNBDComplete(virDomainObj *vm, qemuMigrationNBDMirrors *mirrors);

/* Source, failure or abort: cancels the mirrors that are left and deletes
 * the client nodes; errors are logged, the last error kept. */
void qemuMigrationSrcNBDCancel(virDomainObj *vm, qemuMigrationNBDMirrors *mirrors);

/* Source, reconnect after a daemon restart (adopted migration-out job):
 * cancels every mirror job "migration-*" QEMU still has and deletes the
 * client nodes "migration-*-nbd". */
void qemuMigrationSrcNBDRecover(virDomainObj *vm);

/* migrate-setspeed during a storage migration (the caller holds a
 * QEMU_JOB_MIGRATION_OP job and is inside the monitor @mon): the running
 * mirrors "migration-*" get @speed bytes/s (0: unlimited). */
int qemuMigrationSrcNBDSetSpeed(qemuMonitor *mon, unsigned long long speed);

/* A block job event (BLOCK_JOB_*, JOB_STATUS_CHANGE) of @vm's QEMU: wakes
 * an outgoing migration waiting for its mirrors.  Event loop thread, vm
 * locked; never waits. */
void qemuMigrationNBDHandleEvent(virDomainObj *vm);
