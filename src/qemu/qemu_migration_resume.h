/*
 * qemu_migration_resume.h: recovery of a failed post-copy migration
 * (VIR_MIGRATE_POSTCOPY_RESUME, virsh migrate --postcopy --postcopy-resume)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A post-copy migration that broke after the switch (qemu_migration_
 * postcopy.h) leaves the guest post-copy failed on both hosts (paused on
 * the source, running on the destination: its vCPUs wait for the
 * missing pages) and both QEMUs in migration status postcopy-paused, the
 * jobs ended (virsh domjobabort --postcopy does that on purpose).  Once
 * the cause is fixed, the user repeats the migration between the same two
 * hosts with VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME: the
 * usual v3 steps, client-managed or peer-to-peer, each on the existing
 * guest (no new QEMU, no domain XML used):
 *
 *   source                               destination
 *   Begin: paused (post-copy failed),
 *     QEMU postcopy-paused; async job
 *     migration-out, phase begin_resume
 *                                        Prepare: the same checks; async
 *                                          job migration-in, a port of the
 *                                          migration range, QMP
 *                                          migrate-recover (prepare_resume;
 *                                          QEMU 7.2 keeps the listener of
 *                                          a failed attempt: reused)
 *   Perform: QMP migrate resume=true
 *     (postcopy_resume), waits for
 *     postcopy-active: paused (post-copy)
 *                                        Finish: waits for postcopy-active,
 *                                          'cont': running (post-copy),
 *                                          waits for completed: running
 *                                          (migrated)
 *   Confirm: waits for completed, stops
 *     the source: shut off (migrated)
 *
 * A step that fails leaves both guests post-copy failed, QEMU's stream
 * paused, and ends the jobs failed: the resume can be repeated.
 * The rules (phases, waits, restart) are in docs/THREADS.txt section 7.
 *
 * Locking: every function is called with the domain object locked (the
 * entry points take the lock themselves from the domain pointer), holds or
 * begins the resume's async job, and releases the lock inside the monitor
 * and while it waits or talks to the other daemon.
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_conf.h"
#include "qemu_domain.h"

/* How long the source waits for its QEMU to connect to the destination
 * (seconds): QEMU 7.2 reports no failure of that connect, its status
 * stays postcopy-paused. */
#define QEMU_MIGRATION_RESUME_CONNECT_SECONDS 30

/* Begin (source): vm locked, no job.  Begins the migration-out job and
 * returns the domain XML; NULL on error, the job not begun. */
char *qemuMigrationSrcResumeBegin(virQEMUDriver *driver,
                                  virConnectPtr conn,
                                  virDomainObj *vm,
                                  char **cookieout,
                                  int *cookieoutlen,
                                  unsigned long flags);

/* Prepare (destination), the ACL checked here; no lock held on entry. */
int qemuMigrationDstResumePrepare(virQEMUDriver *driver,
                                  virConnectPtr dconn,
                                  const char *dname,
                                  const char *uriIn,
                                  const char *listenAddress,
                                  const char *cookiein,
                                  int cookieinlen,
                                  char **cookieout,
                                  int *cookieoutlen,
                                  char **uriOut,
                                  unsigned long flags);

/* Perform (source) of a client-managed resume, to the URI of @params
 * (VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY, when given, limits the rest of
 * the transfer): vm locked, the job begun by Begin not yet adopted.  On
 * failure the job ends (no Confirm comes). */
int qemuMigrationSrcResumePerform(virQEMUDriver *driver,
                                  virDomainObj *vm,
                                  virTypedParameterPtr params,
                                  int nparams,
                                  char **cookieout,
                                  int *cookieoutlen,
                                  unsigned long flags);

/* A peer-to-peer resume, all steps from the source's Perform: vm locked,
 * no job. */
int qemuMigrationSrcResumePeer2Peer(virQEMUDriver *driver,
                                    virDomainObj *vm,
                                    const char *dconnuri,
                                    virTypedParameterPtr params,
                                    int nparams,
                                    unsigned long flags);

/* Finish (destination); no lock held on entry. */
virDomainPtr qemuMigrationDstResumeFinish(virQEMUDriver *driver,
                                          virConnectPtr dconn,
                                          const char *dname,
                                          const char *cookiein,
                                          int cookieinlen,
                                          char **cookieout,
                                          int *cookieoutlen,
                                          unsigned long flags,
                                          bool cancelled);

/* Confirm (source): vm locked, the job not yet adopted. */
int qemuMigrationSrcResumeConfirm(virQEMUDriver *driver,
                                  virDomainObj *vm,
                                  unsigned long flags,
                                  bool cancelled);

/* The incoming side's job is in a resume phase (vm locked). */
bool qemuMigrationDstResumeRunning(virDomainObj *vm);

/* The client driving a resume went away, or the destination's resume
 * failed: the guest stays, post-copy failed; the migration-in
 * job (adopted, vm locked) ends failed. */
void qemuMigrationDstResumeEndFailed(virQEMUDriver *driver, virDomainObj *vm,
                                     const char *why);

/* Reconnect of a destination interrupted in a resume phase (vm locked,
 * the adopted migration-in job held): its vCPUs run when QEMU completed
 * (running, migrated) or still runs post-copy; otherwise post-copy
 * failed.  Always keeps the guest: returns 0. */
int qemuMigrationDstResumeRecover(virQEMUDriver *driver, virDomainObj *vm);
