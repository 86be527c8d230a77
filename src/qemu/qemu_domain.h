/*
 * qemu_domain.h: per-domain private data
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"
#include "qemu_domainjob.h"

typedef struct _qemuDomainObjPrivate qemuDomainObjPrivate;
struct _qemuDomainObjPrivate {
    /* All fields: protected by the domain object lock.  Those marked
     * "status" are saved in the status file and survive a daemon restart. */
    char *libDir;        /* status: per-domain private directory, while running */
    char *pidfile;       /* status: QEMU's pid file */
    char *monitorPath;   /* status: QMP socket QEMU listens on */
    char *logPath;       /* QEMU's log (stderr), appended per start */
    off_t logStart;      /* where the running QEMU's own output begins in
                          * logPath (after Tandem's header) */
    char *saveTmpPath;   /* status: the temporary image a save job writes
                          * (qemu_save.c); an interrupted save's is removed
                          * at reconnect */

    int pidfd;           /* -1, or a pidfd of the running QEMU: readable
                          * once it exited, reaped or not */
    int pidfdWatch;      /* event loop watch on pidfd, or -1 */

    bool gotShutdown;    /* status: QEMU reported SHUTDOWN: its end is no crash */
    bool fakeReboot;     /* status: reboot by powerdown + reset + cont */
    bool beingDestroyed; /* a destroy killed QEMU: EOF is expected */
    bool labelled;       /* status: the domain's files were given to QEMU's
                          * user (qemu_security.c); restored at stop */
    int pausedReason;    /* reason the next STOP event records (virDomainPausedReason) */
    unsigned long long balloonCur; /* KiB, kept current by BALLOON_CHANGE */
    unsigned long long startTime;  /* ms since the epoch QEMU started */
    long long *vcpuTids;           /* host thread of each vCPU (query-cpus-fast) */
    size_t nvcpuTids;
    int migrationStatus;           /* last MIGRATION event (qemuMonitorMigrationStatus) */
    unsigned long migMaxBandwidth; /* status: MiB/s for outgoing migration,
                                    * 0 = unlimited (migrate-setspeed, or
                                    * the bandwidth of the last migration) */
    unsigned long migMaxPostcopyBandwidth; /* status: MiB/s after a switch
                                    * to post-copy, 0 = unlimited
                                    * (migrate-setspeed --postcopy, or
                                    * --postcopy-bandwidth) */
    unsigned short migrationPort;  /* incoming migration port while reserved */
    unsigned short nbdPort;        /* incoming storage migration: the NBD
                                    * server's port while reserved */
    virConnectPtr migrationConn;   /* connection driving a client-managed
                                    * migration step by step (not a reference):
                                    * when it closes, the migration is undone */
    /* guest memory statistics of the balloon driver as last read by
     * virDomainMemoryStats (qemu_domain_query.c), served by the balloon
     * group of domain stats; cleared at start and reconnect */
    virDomainMemoryStatStruct memStats[VIR_DOMAIN_MEMORY_STAT_NR];
    unsigned int nmemStats;
    virConnectPtr autoDestroyConn; /* started with AUTODESTROY by this
                                    * connection (not a reference) */

    /* dumps and snapshots (qemu_dump.c, qemu_snapshot.c) */
    bool snapshotsLoaded;   /* vm->snapshots read from the snapshot directory */
    bool dumpCompleted;     /* DUMP_COMPLETED seen during the dump job */
    char *dumpError;        /* its error; set and freed by the dump job */

    /* device hot-unplug (qemu_hotplug.c) */
    char *unplugAlias;      /* the device whose DEVICE_DELETED a detach
                             * waits for (on vm->cond), set and cleared by
                             * the thread holding that detach's modify job */
    bool unplugDone;        /* that event came (set by the event loop) */
    GHashTable *unplugNodes; /* alias -> format node of disks whose
                              * device_del was sent, until their removal */

    qemuDomainJobObj job;   /* the job model: see qemu_domainjob.h */
    qemuMonitor *mon;       /* NULL while no QEMU runs; set and cleared with
                             * the domain lock held; threads inside the
                             * monitor hold their own reference */
};

#define QEMU_DOMAIN_PRIVATE(vm) ((qemuDomainObjPrivate *) (vm)->privateData)

extern virDomainXMLPrivateDataCallbacks qemuDomainXMLPrivateDataCallbacks;
extern virDomainDefParserConfig qemuDomainDefParserConfig;

/* Writes vm's status file (the live definition plus private data) in the
 * driver's state directory.  vm locked. */
int qemuDomainObjSaveStatus(void *driver, virDomainObj *vm);

/* Clears the unix socket paths of channels that live in @libDir (the
 * per-domain directory of this run, filled in for <source mode='bind'/>
 * without a path): a definition leaving this run (save image) must not
 * name it, the next run places them in its own directory. */
void qemuDomainDefDropPrivatePaths(virDomainDef *def, const char *libDir);

/* The XML option object of the driver (parser callbacks, private data). */
virDomainXMLOption *qemuDomainXMLOptionNew(void *driver);

/* The domain object of an API's @domain, locked and referenced (release
 * with virDomainObjEndAPI), or NULL with VIR_ERR_NO_DOMAIN reported. */
virDomainObj *qemuDomainObjFromDomain(virDomainPtr domain);
