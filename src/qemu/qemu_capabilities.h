/*
 * qemu_capabilities.h: what a QEMU binary can do, probed over QMP and cached
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "virobject.h"
#include "virarch.h"
#include "capabilities.h"
#include "domain_capabilities.h"

typedef struct _qemuCapsMachine qemuCapsMachine;
struct _qemuCapsMachine {
    char *name;
    char *alias;          /* e.g. "pc" for "pc-i440fx-7.2", or NULL */
    unsigned int maxCpus;
    bool isDefault;
    bool deprecated;
};

/* A CPU model from query-cpu-definitions. */
typedef struct _qemuCapsCPUModel qemuCapsCPUModel;
struct _qemuCapsCPUModel {
    char *name;
    /* usable with the accelerator the binary was probed with (kvm when
     * kvmAvailable, tcg otherwise); UNKNOWN when QEMU did not say */
    virDomainCapsCPUUsable usable;
    bool deprecated;
};

/* Immutable once probed (or loaded from the cache): shared by reference. */
typedef struct _qemuCaps qemuCaps;
struct _qemuCaps {
    virObject parent;

    char *binary;
    long long mtime;       /* cache key: binary path + mtime (in ns) + size */
    long long size;

    unsigned int version;  /* major * 1000000 + minor * 1000 + micro */
    char *package;         /* e.g. "Debian 1:7.2+dfsg-7+deb12u18" */
    virArch arch;
    bool kvmAvailable;     /* KVM could be enabled by this binary here */

    qemuCapsMachine *machines;
    size_t nmachines;
    char **cpuModels;      /* NULL-terminated */
    qemuCapsCPUModel *cpuModelInfo; /* the same models, with usability */
    size_t ncpuModelInfo;
    char **devices;        /* NULL-terminated -device type names */
    char **commands;       /* NULL-terminated QMP command names */
};

G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuCaps, virObjectUnref);

/* Probe @binary (starting it with -S, -machine none, QMP on a socket in
 * @tmpDir), independent of any cache. */
qemuCaps *qemuCapsProbe(const char *binary, const char *tmpDir);

/* The raw QMP conversation of a probe: a table of command name -> the
 * JSON text of QEMU's reply ({"return": ...} or {"error": ...}). Exposed
 * for recording test data; qemuCapsProbe = this + qemuCapsNewFromReplies. */
GHashTable *qemuCapsProbeReplies(const char *binary, const char *tmpDir);

/* The same with QEMU run as @uid/@gid ((uid_t) -1 / (gid_t) -1: as the
 * daemon), so that what it reports (KVM usable or not) is that user's. */
GHashTable *qemuCapsProbeRepliesAs(const char *binary, const char *tmpDir,
                                   uid_t uid, gid_t gid);

/* Build the capabilities of @binary from the replies of a probe (see
 * qemuCapsProbeReplies). No I/O: unit tests feed recorded replies. */
qemuCaps *qemuCapsNewFromReplies(const char *binary, GHashTable *replies);

/* The capabilities of @binary: from @cacheDir when the cached entry still
 * matches the binary (path, mtime, size), /dev/kvm and the user, otherwise
 * probed as @uid/@gid (see qemuCapsProbeRepliesAs) and stored. */
qemuCaps *qemuCapsCacheLookup(const char *cacheDir, const char *binary,
                              const char *tmpDir, uid_t uid, gid_t gid);

/* How long a probe may take in all, in ms (0: the default, 30 s). */
void qemuCapsSetProbeTimeout(unsigned int ms);

/* Forget the in-memory cache (the cache files stay). */
void qemuCapsCacheFlush(void);

bool qemuCapsHasDevice(qemuCaps *caps, const char *type);
bool qemuCapsHasCommand(qemuCaps *caps, const char *name);
bool qemuCapsHasCPUModel(qemuCaps *caps, const char *name);
const char *qemuCapsGetDefaultMachine(qemuCaps *caps);
/* The canonical machine name for @name (resolving aliases), or NULL when
 * @name is not a machine type this binary knows. */
const char *qemuCapsGetCanonicalMachine(qemuCaps *caps, const char *name);

/* Add the hvm guest of this binary (machines, domain types qemu and, when
 * available, kvm) to @caps. */
int qemuCapsInitGuest(qemuCaps *qcaps, virCaps *caps);

/* Domain capabilities for virConnectGetDomainCapabilities. */
virDomainCaps *qemuCapsGetDomainCaps(qemuCaps *qcaps, const char *machine,
                                     virDomainVirtType virttype);
