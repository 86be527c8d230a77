/*
 * qemu_process.h: launching QEMU, watching it, stopping it, and finding
 * it again after a daemon restart
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every function here is called with the domain object locked and returns
 * with it locked; those that talk to QEMU or wait for it to exit release
 * the lock meanwhile (through the job model), so the caller must hold the
 * job named in each comment.
 */
#pragma once

#include "internal.h"
#include "qemu_conf.h"
#include "qemu_domain.h"

typedef enum {
    QEMU_PROCESS_START_PAUSED = (1 << 0),      /* leave the vCPUs stopped */
    QEMU_PROCESS_START_AUTODESTROY = (1 << 1), /* destroy when @conn closes */
    QEMU_PROCESS_START_INCOMING = (1 << 2),    /* -incoming defer: the guest
                                                * arrives by migration */
} qemuProcessStartFlags;

/* Starts QEMU for @vm.  The caller holds the async job @asyncJob
 * (QEMU_ASYNC_JOB_START).  On failure nothing is left running and the
 * error names QEMU's own complaint (the end of its log) when it has one. */
int qemuProcessStart(virConnectPtr conn,
                     virQEMUDriver *driver,
                     virDomainObj *vm,
                     qemuDomainAsyncJob asyncJob,
                     unsigned int flags);

typedef enum {
    QEMU_PROCESS_KILL_FORCE = (1 << 0),    /* SIGKILL after the grace period */
    QEMU_PROCESS_KILL_NOWAIT = (1 << 1),   /* send the signal, do not wait */
} qemuProcessKillFlags;

/* Signals QEMU (SIGTERM; SIGKILL after destroy_timeout with FORCE) and
 * waits for it to exit, with the domain lock released while waiting.  Needs
 * no job (destroy kills first, then takes its job).  0 when QEMU is gone,
 * -1 with an error when it is still there. */
int qemuProcessKill(virQEMUDriver *driver, virDomainObj *vm, unsigned int flags);

/* Tears down what a running QEMU had: monitor, process, status file,
 * directories; the domain becomes shut off with @reason.  The caller holds
 * the destroy job (or the start job when a start fails). */
void qemuProcessStop(virQEMUDriver *driver,
                     virDomainObj *vm,
                     virDomainShutoffReason reason);

/* For a job that ends the domain (migrated away, saved, an incoming
 * guest undone): kills QEMU (forced), stops the domain with @reason and
 * queues the lifecycle event STOPPED with @detail (a
 * virDomainEventStoppedDetailType).  Nothing when it is not running.  vm
 * locked, the job that decided it held. */
void qemuProcessKillAndStop(virQEMUDriver *driver,
                            virDomainObj *vm,
                            virDomainShutoffReason reason,
                            int detail);

/* At daemon start: for every domain whose status file was loaded, find its
 * QEMU again (in a thread per domain, so a stuck one delays nobody) or mark
 * it shut off when it is gone. */
void qemuProcessReconnectAll(virQEMUDriver *driver);

/* True while QEMU's process exists (a zombie counts as exited). */
bool qemuProcessIsAlive(virDomainObj *vm);

/* The last lines QEMU wrote to its log since the last qemuProcessStart of
 * @vm (NULL if none): its own complaint when it quit by itself, e.g. on a
 * migration stream it could not load.  Reads the log with vm locked, as
 * the start does for its errors. */
char *qemuProcessGetLogTail(virDomainObj *vm);

/* Seconds of CPU QEMU has used, in ns (0 if unknown). */
unsigned long long qemuProcessGetCPUTime(virDomainObj *vm);

/* The worker pool for events that need a job (QEMU exit, fake reboot,
 * a closed connection's auto-destroy and migration undo). */
int qemuProcessEventPoolInit(virQEMUDriver *driver);
void qemuProcessEventPoolFree(virQEMUDriver *driver);

/* @conn closes (libvirtd calls this in its event loop thread: it never
 * waits).  Domains started with AUTODESTROY by @conn, and client-managed
 * migrations driven by @conn, are handed to the worker pool, which
 * destroys the former and undoes the latter (qemuMigrationClientGone). */
void qemuProcessConnectionClosed(virQEMUDriver *driver, virConnectPtr conn);
