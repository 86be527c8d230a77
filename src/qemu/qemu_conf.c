/*
 * qemu_conf.c: the driver's state: directories, settings, capabilities
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <sys/stat.h>

#include "qemu_conf.h"
#include "virerror.h"
#include "virlog.h"
#include "virutil.h"
#include "virarch.h"
#include "cpu_conf.h"
#include "cpu/cpu.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_conf");

virQEMUDriver *qemu_driver;

int
qemuDriverPathsInit(qemuDriverPaths *paths, bool privileged, const char *root)
{
    g_autofree char *configBase = NULL;
    g_autofree char *libBase = NULL;

    if (root) {
        configBase = g_build_filename(root, "etc", NULL);
        paths->configDir = g_build_filename(configBase, "qemu", NULL);
        paths->stateDir = g_build_filename(root, "run", NULL);
        paths->cacheDir = g_build_filename(root, "cache", NULL);
        paths->logDir = g_build_filename(root, "log", NULL);
        libBase = g_build_filename(root, "lib", NULL);
    } else if (privileged) {
        configBase = g_strdup("/etc/libvirt");
        paths->configDir = g_build_filename(configBase, "qemu", NULL);
        paths->stateDir = g_strdup("/run/libvirt/qemu");
        paths->cacheDir = g_strdup("/var/cache/libvirt/qemu");
        paths->logDir = g_strdup("/var/log/libvirt/qemu");
        libBase = g_strdup("/var/lib/libvirt/qemu");
    } else {
        g_autofree char *rundir = virGetUserRuntimeDirectory();
        g_autofree char *cachedir = virGetUserCacheDirectory();

        configBase = virGetUserConfigDirectory();
        paths->configDir = g_build_filename(configBase, "qemu", NULL);
        paths->stateDir = g_build_filename(rundir, "qemu", "run", NULL);
        paths->cacheDir = g_build_filename(cachedir, "qemu", NULL);
        paths->logDir = g_build_filename(cachedir, "qemu", "log", NULL);
        libBase = g_build_filename(paths->configDir, "lib", NULL);
    }

    paths->configBaseDir = g_strdup(configBase);
    paths->configFile = g_build_filename(configBase, "qemu.conf", NULL);
    paths->autostartDir = g_build_filename(paths->configDir, "autostart", NULL);
    if (!root && !privileged) {
        /* the session daemon keeps these beside the definitions */
        paths->libDir = g_strdup(libBase);
        paths->saveDir = g_build_filename(paths->configDir, "save", NULL);
        paths->snapshotDir = g_build_filename(paths->configDir, "snapshot", NULL);
        paths->dumpDir = g_build_filename(paths->configDir, "dump", NULL);
        paths->nvramDir = g_build_filename(paths->configDir, "nvram", NULL);
    } else {
        paths->libDir = g_strdup(libBase);
        paths->saveDir = g_build_filename(libBase, "save", NULL);
        paths->snapshotDir = g_build_filename(libBase, "snapshot", NULL);
        paths->dumpDir = g_build_filename(libBase, "dump", NULL);
        paths->nvramDir = g_build_filename(libBase, "nvram", NULL);
    }
    return 0;
}

void
qemuDriverPathsClear(qemuDriverPaths *paths)
{
    g_clear_pointer(&paths->configBaseDir, g_free);
    g_clear_pointer(&paths->configFile, g_free);
    g_clear_pointer(&paths->configDir, g_free);
    g_clear_pointer(&paths->autostartDir, g_free);
    g_clear_pointer(&paths->stateDir, g_free);
    g_clear_pointer(&paths->libDir, g_free);
    g_clear_pointer(&paths->saveDir, g_free);
    g_clear_pointer(&paths->snapshotDir, g_free);
    g_clear_pointer(&paths->dumpDir, g_free);
    g_clear_pointer(&paths->nvramDir, g_free);
    g_clear_pointer(&paths->cacheDir, g_free);
    g_clear_pointer(&paths->logDir, g_free);
}

int
qemuDriverPathsCreate(const qemuDriverPaths *paths)
{
    struct {
        const char *dir;
        int mode;
    } dirs[] = {
        { paths->configBaseDir, 0755 },
        { paths->configDir, 0700 },
        { paths->autostartDir, 0700 },
        { paths->stateDir, 0755 },
        { paths->libDir, 0751 },
        { paths->saveDir, 0700 },
        { paths->snapshotDir, 0700 },
        { paths->dumpDir, 0700 },
        { paths->nvramDir, 0755 },
        { paths->cacheDir, 0755 },
        { paths->logDir, 0700 },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(dirs); i++) {
        if (g_mkdir_with_parents(dirs[i].dir, dirs[i].mode) < 0) {
            virReportSystemError(errno, _("cannot create directory '%s'"),
                                 dirs[i].dir);
            return -1;
        }
    }
    return 0;
}

void
qemuDriverQueueEvent(virQEMUDriver *driver, virObjectEvent *event)
{
    /* libvirt's queue drops a NULL event itself */
    virObjectEventStateQueue(driver->domainEventState, event);
}

virCaps *
qemuDriverGetCapabilities(virQEMUDriver *driver)
{
    virCaps *caps;

    virMutexLock(&driver->lock);
    caps = virObjectRef(driver->caps);
    virMutexUnlock(&driver->lock);
    return caps;
}

int
qemuDriverGetQEMUUser(virQEMUDriver *driver, uid_t *uid, gid_t *gid)
{
    const qemuConfig *cfg = driver->config;

    *uid = (uid_t) -1;
    *gid = (gid_t) -1;
    if (!driver->privileged)
        return 0;
    if (cfg->user && virGetUserID(cfg->user, uid) < 0)
        return -1;
    if (cfg->group && virGetGroupID(cfg->group, gid) < 0)
        return -1;
    return 0;
}

qemuCaps *
qemuDriverGetQEMUCaps(virQEMUDriver *driver)
{
    qemuCaps *qcaps;

    virMutexLock(&driver->lock);
    qcaps = virObjectRef(driver->qemuCaps);
    virMutexUnlock(&driver->lock);
    return qcaps;
}

qemuCaps *
qemuDriverGetQEMUCapsForBinary(virQEMUDriver *driver, const char *binary)
{
    qemuCaps *qcaps = qemuDriverGetQEMUCaps(driver);
    uid_t uid;
    gid_t gid;

    if (!binary || (qcaps && STREQ(binary, qcaps->binary)))
        return qcaps;
    virObjectUnref(qcaps);

    if (!g_path_is_absolute(binary) || access(binary, X_OK) < 0) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("unsupported <emulator>: '%s' is not an executable file"),
                       binary);
        return NULL;
    }
    if (qemuDriverGetQEMUUser(driver, &uid, &gid) < 0)
        return NULL;
    return qemuCapsCacheLookup(driver->paths.cacheDir, binary,
                               driver->paths.stateDir, uid, gid);
}

virCaps *
qemuDriverBuildCapabilities(virQEMUDriver *driver, qemuCaps *qcaps)
{
    g_autoptr(virCaps) caps = NULL;

    if (!(caps = virCapabilitiesNew(virArchFromHost(), true, true)))
        return NULL;

    if (!(caps->host.numa = virCapabilitiesHostNUMANewHost()))
        return NULL;
    if (virCapabilitiesInitCaches(caps) < 0)
        VIR_WARN("Failed to get host CPU cache info");
    if (virCapabilitiesInitPages(caps) < 0)
        VIR_WARN("Failed to get pages info");
    if (!(caps->host.cpu = virCPUProbeHost(caps->host.arch)))
        VIR_WARN("Failed to get host CPU");
    if (virGetHostUUID(caps->host.host_uuid) < 0)
        return NULL;

    if (qcaps && qemuCapsInitGuest(qcaps, caps) < 0)
        return NULL;

    if (driver->privileged)
        virCapabilitiesAddHostMigrateTransport(caps, "tcp");

    return g_steal_pointer(&caps);
}

const char *
qemuDriverGetURI(virQEMUDriver *driver)
{
    if (driver->embeddedRoot)
        return "qemu:///embed";
    return driver->privileged ? "qemu:///system" : "qemu:///session";
}
