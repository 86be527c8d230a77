/*
 * qemu_conf.h: the driver's state: directories, settings, domains
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "virthread.h"
#include "capabilities.h"
#include "domain_conf.h"
#include "virdomainobjlist.h"
#include "object_event.h"
#include "virportallocator.h"
#include "qemu_config.h"
#include "qemu_capabilities.h"

/* Where the driver keeps its files, laid out as libvirt does:
 *   privileged:   /etc/libvirt, /run/libvirt/qemu, /var/lib/libvirt/qemu, ...
 *   session:      $XDG_CONFIG_HOME/libvirt, $XDG_RUNTIME_DIR/libvirt/qemu/run, ...
 *   embedded:     ROOT/etc, ROOT/run, ROOT/lib, ROOT/cache, ROOT/log
 * Immutable after qemuDriverPathsInit. */
typedef struct _qemuDriverPaths qemuDriverPaths;
struct _qemuDriverPaths {
    char *configBaseDir;   /* holds qemu.conf */
    char *configFile;      /* qemu.conf */
    char *configDir;       /* persistent domain definitions */
    char *autostartDir;    /* autostart links */
    char *stateDir;        /* status files, pid files, sockets of running domains */
    char *libDir;          /* per-domain private data */
    char *saveDir;         /* managed save images */
    char *snapshotDir;
    char *dumpDir;
    char *nvramDir;
    char *cacheDir;        /* capabilities cache */
    char *logDir;          /* per-domain QEMU logs */
};

int qemuDriverPathsInit(qemuDriverPaths *paths, bool privileged, const char *root);
void qemuDriverPathsClear(qemuDriverPaths *paths);
int qemuDriverPathsCreate(const qemuDriverPaths *paths);

typedef struct _virQEMUDriver virQEMUDriver;
struct _virQEMUDriver {
    virMutex lock;                /* protects the fields marked "driver lock" */

    /* immutable after qemuStateInitialize */
    bool privileged;
    char *embeddedRoot;           /* NULL unless qemu:///embed */
    qemuDriverPaths paths;
    virDomainXMLOption *xmlopt;
    int lockFD;                   /* exclusive lock on stateDir/driver.pid */

    qemuConfig *config;           /* immutable: read at start, freed at cleanup */
    virPortAllocatorRange *remotePorts;    /* VNC/SPICE (self-locking) */
    virPortAllocatorRange *webSocketPorts; /* VNC websockets (self-locking) */
    virPortAllocatorRange *migrationPorts; /* incoming migration (self-locking) */

    /* driver lock: replaced, never modified in place; readers take a
     * reference with qemuDriverGet...() */
    qemuCaps *qemuCaps;           /* the default emulator's capabilities */
    virCaps *caps;

    /* self-locking */
    GThreadPool *workerPool;      /* work that needs a job, off the event loop */
    virDomainObjList *domains;
    virObjectEventState *domainEventState;
};

extern virQEMUDriver *qemu_driver;

/* Queues @event (NULL: nothing, as when its creation failed) for the
 * driver's event loop.  Any thread, any lock held. */
void qemuDriverQueueEvent(virQEMUDriver *driver, virObjectEvent *event);

/* Snapshots (references) of the replaceable driver state. */
virCaps *qemuDriverGetCapabilities(virQEMUDriver *driver);
/* The user and group QEMU runs as: qemu.conf's user/group when
 * privileged, (uid_t) -1 / (gid_t) -1 (the daemon's own) otherwise.  -1
 * with an error when they do not exist. */
int qemuDriverGetQEMUUser(virQEMUDriver *driver, uid_t *uid, gid_t *gid);

qemuCaps *qemuDriverGetQEMUCaps(virQEMUDriver *driver);
/* Capabilities of @binary: the default emulator's or, for another binary,
 * looked up in the cache (probing it if needed).  Reports an error and
 * returns NULL when @binary is not a usable QEMU. */
qemuCaps *qemuDriverGetQEMUCapsForBinary(virQEMUDriver *driver, const char *binary);

/* Build host + guest capabilities from the probed QEMU. */
virCaps *qemuDriverBuildCapabilities(virQEMUDriver *driver, qemuCaps *qcaps);

const char *qemuDriverGetURI(virQEMUDriver *driver);
