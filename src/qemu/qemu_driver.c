/*
 * qemu_driver.c: the virHypervisorDriver table of Tandem
 *
 * Each API here is: lookup, ACL check, (job, monitor), result.  State,
 * policies and mechanisms live in the other qemu_*.c files.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <libintl.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_driver.h"
#include "qemu_conf.h"
#include "qemu_domain.h"
#include "qemu_domain_parse.h"
#include "qemu_capabilities.h"
#include "qemu_process.h"
#include "qemu_command.h"
#include "qemu_domain_query.h"
#include "qemu_domain_devices.h"
#include "qemu_hotplug.h"
#include "qemu_agent.h"
#include "qemu_migration.h"
#include "qemu_migration_postcopy.h"
#include "qemu_save.h"
#include "qemu_snapshot.h"
#include "qemu_domainstats.h"
#include "qemu_monitor_json.h"

#include "datatypes.h"
#include "driver.h"
#include "domain_event.h"
#include "viraccessapicheck.h"
#include "viraccessapicheckqemu.h"
#include "virerror.h"
#include "virlog.h"
#include "virpidfile.h"
#include "viruuid.h"
#include "virutil.h"
#include "virfile.h"
#include "virhostcpu.h"
#include "virarch.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_driver");

/* ---------------------------------------------------------------------- */
/* Lookup helpers                                                         */
/* ---------------------------------------------------------------------- */

/* ---------------------------------------------------------------------- */
/* State driver                                                           */
/* ---------------------------------------------------------------------- */

static int
qemuStateCleanup(void)
{
    virQEMUDriver *driver = qemu_driver;

    if (!driver)
        return -1;

    qemuProcessEventPoolFree(driver);
    virObjectUnref(driver->domains);
    virObjectUnref(driver->domainEventState);
    virObjectUnref(driver->xmlopt);
    virObjectUnref(driver->caps);
    virObjectUnref(driver->qemuCaps);
    virPortAllocatorRangeFree(driver->remotePorts);
    virPortAllocatorRangeFree(driver->webSocketPorts);
    virPortAllocatorRangeFree(driver->migrationPorts);
    qemuConfigFree(driver->config);
    if (driver->lockFD >= 0)
        virPidFileRelease(driver->paths.stateDir, "driver", driver->lockFD);
    qemuDriverPathsClear(&driver->paths);
    g_free(driver->embeddedRoot);
    virMutexDestroy(&driver->lock);
    g_clear_pointer(&qemu_driver, g_free);
    return 0;
}

static char *
qemuDomainManagedSavePath(virQEMUDriver *driver, virDomainObj *vm)
{
    return g_strdup_printf("%s/%s.save", driver->paths.saveDir, vm->def->name);
}

static int
qemuDomainObjNoticeManagedSave(virDomainObj *vm, void *opaque)
{
    g_autofree char *path = qemuDomainManagedSavePath(opaque, vm);

    virObjectLock(vm);
    vm->hasManagedSave = virFileExists(path);
    virObjectUnlock(vm);
    return 0;
}

/* libvirt's loader logs only the domain name of a definition it skips:
 * name the file, so that the administrator finds it. */
static void
qemuStateWarnUnloadedConfigs(virQEMUDriver *driver)
{
    g_autoptr(GDir) dir = g_dir_open(driver->paths.configDir, 0, NULL);
    const char *entry;

    if (!dir)
        return;
    while ((entry = g_dir_read_name(dir))) {
        g_autofree char *name = NULL;
        virDomainObj *vm;

        if (!g_str_has_suffix(entry, ".xml"))
            continue;
        name = g_strndup(entry, strlen(entry) - 4);
        if ((vm = virDomainObjListFindByName(driver->domains, name))) {
            virDomainObjEndAPI(&vm);
            continue;
        }
        VIR_WARN("Definition file '%s/%s' was not loaded (see the error before); it is left in place",
                 driver->paths.configDir, entry);
    }
}

static int
qemuStateLoadDomains(virQEMUDriver *driver)
{
    /* A definition that fails to parse is logged and skipped by
     * virDomainObjListLoadAllConfigs; its file is left in place. */
    if (virDomainObjListLoadAllConfigs(driver->domains,
                                       driver->paths.configDir,
                                       driver->paths.autostartDir,
                                       false, driver->xmlopt,
                                       NULL, NULL) < 0)
        return -1;
    qemuStateWarnUnloadedConfigs(driver);
    return virDomainObjListForEach(driver->domains, false,
                                   qemuDomainObjNoticeManagedSave, driver);
}

static int qemuDomainStartLocked(virConnectPtr conn, virDomainObj *vm,
                                 unsigned int flags);

/* ---------------------------------------------------------------------- */
/* Autostart                                                              */
/* ---------------------------------------------------------------------- */

/* Domains marked autostart are started once per boot of the host, as
 * libvirt does: a marker in the run directory (which a reboot clears)
 * keeps a restarted daemon from starting them again. */
#define QEMU_AUTOSTART_MARKER "autostarted"

static int
qemuAutostartCollect(virDomainObj *vm, void *opaque)
{
    GPtrArray *todo = opaque;

    virObjectLock(vm);
    if (vm->autostart && vm->persistent && !virDomainObjIsActive(vm))
        g_ptr_array_add(todo, virObjectRef(vm));
    virObjectUnlock(vm);
    return 0;
}

static void
qemuAutostartThread(void *opaque)
{
    g_autoptr(GPtrArray) todo = opaque;
    size_t i;

    for (i = 0; i < todo->len; i++) {
        virDomainObj *vm = g_ptr_array_index(todo, i);

        virObjectLock(vm);
        if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_START,
                                       VIR_DOMAIN_JOB_OPERATION_START, 0) < 0) {
            VIR_ERROR(_("Failed to autostart VM '%s': %s"),
                      vm->def->name, virGetLastErrorMessage());
            virObjectUnlock(vm);   /* the array holds the reference */
            continue;
        }
        /* the world may have moved since the list was taken */
        if (vm->autostart && vm->persistent && !virDomainObjIsActive(vm)) {
            if (qemuDomainStartLocked(NULL, vm, 0) < 0) {
                VIR_ERROR(_("Failed to autostart VM '%s': %s"),
                          vm->def->name, virGetLastErrorMessage());
                qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED,
                                               virGetLastErrorMessage());
            } else {
                VIR_INFO("Autostarted domain '%s'", vm->def->name);
                qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
            }
        }
        qemuDomainObjEndAsyncJob(vm);
        qemuDomainObjSaveStatus(qemu_driver, vm);
        virObjectUnlock(vm);   /* the array holds the reference */
    }
}

/* At daemon start, after the reconnect: starts the autostart domains in a
 * thread of their own (each under its start job), so that the daemon
 * answers meanwhile. */
static void
qemuAutostartDomains(virQEMUDriver *driver)
{
    g_autofree char *marker = g_build_filename(driver->paths.stateDir,
                                               QEMU_AUTOSTART_MARKER, NULL);
    GPtrArray *todo;
    virThread thread;

    if (virFileExists(marker)) {
        VIR_DEBUG("autostart already done in this boot (%s)", marker);
        return;
    }
    if (virFileTouch(marker, 0600) < 0)
        VIR_WARN("cannot create %s: %s", marker, virGetLastErrorMessage());

    todo = g_ptr_array_new_with_free_func((GDestroyNotify) virObjectUnref);
    virDomainObjListForEach(driver->domains, false, qemuAutostartCollect, todo);
    if (todo->len == 0) {
        g_ptr_array_unref(todo);
        return;
    }
    if (virThreadCreateFull(&thread, false, qemuAutostartThread,
                            "qemu-autostart", false, todo) < 0) {
        VIR_ERROR(_("cannot start the autostart thread: %s"), virGetLastErrorMessage());
        g_ptr_array_unref(todo);
    }
}

static virDrvStateInitResult
qemuStateInitialize(bool privileged,
                    const char *root,
                    bool monolithic G_GNUC_UNUSED,
                    virStateInhibitCallback callback G_GNUC_UNUSED,
                    void *opaque G_GNUC_UNUSED)
{
    virQEMUDriver *driver;
    uid_t qemuUid;
    gid_t qemuGid;

    if (root && !g_path_is_absolute(root)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("driver root must be an absolute path"));
        return VIR_DRV_STATE_INIT_ERROR;
    }

    driver = g_new0(virQEMUDriver, 1);
    driver->lockFD = -1;
    if (virMutexInit(&driver->lock) < 0) {
        g_free(driver);
        return VIR_DRV_STATE_INIT_ERROR;
    }
    qemu_driver = driver;
    driver->privileged = privileged;
    driver->embeddedRoot = g_strdup(root);

    if (qemuDriverPathsInit(&driver->paths, privileged, root) < 0)
        goto error;
    VIR_DEBUG("privileged=%d root=%s config=%s state=%s cache=%s",
              privileged, NULLSTR(root), driver->paths.configDir,
              driver->paths.stateDir, driver->paths.cacheDir);

    driver->config = qemuConfigNew(privileged);
    if (qemuConfigLoadFile(driver->config, driver->paths.configFile, true) < 0)
        goto error;

    if (qemuDriverPathsCreate(&driver->paths) < 0)
        goto error;

    if (!(driver->remotePorts = virPortAllocatorRangeNew(_("display"), 5900, 65535)) ||
        !(driver->webSocketPorts = virPortAllocatorRangeNew(_("webSocket"), 5700, 65535)) ||
        !(driver->migrationPorts = virPortAllocatorRangeNew(_("migration"),
                                                            driver->config->migrationPortMin,
                                                            driver->config->migrationPortMax)))
        goto error;

    /* Two drivers must never share one set of directories. */
    if ((driver->lockFD = virPidFileAcquire(driver->paths.stateDir, "driver",
                                            false, getpid())) < 0)
        goto error;

    qemuDomainJobSetWaitTimeout(driver->config->jobWaitTimeout);
    qemuDomainJobSetMaxQueued(driver->config->maxQueuedJobs);

    if (!(driver->domainEventState = virObjectEventStateNew()))
        goto error;
    if (qemuProcessEventPoolInit(driver) < 0)
        goto error;
    if (!(driver->domains = virDomainObjListNew()))
        goto error;
    if (!(driver->xmlopt = qemuDomainXMLOptionNew(driver)))
        goto error;

    if (qemuDriverGetQEMUUser(driver, &qemuUid, &qemuGid) < 0 ||
        !(driver->qemuCaps = qemuCapsCacheLookup(driver->paths.cacheDir,
                                                 driver->config->emulator,
                                                 driver->paths.stateDir,
                                                 qemuUid, qemuGid))) {
        VIR_ERROR(_("cannot probe the QEMU binary '%s': %s"),
                  driver->config->emulator, virGetLastErrorMessage());
        goto error;
    }
    if (!(driver->caps = qemuDriverBuildCapabilities(driver, driver->qemuCaps)))
        goto error;

    /* running domains first (their status), then every definition */
    if (virDomainObjListLoadAllConfigs(driver->domains, driver->paths.stateDir,
                                       NULL, true, driver->xmlopt, NULL, NULL) < 0)
        goto error;
    if (qemuStateLoadDomains(driver) < 0)
        goto error;
    qemuProcessReconnectAll(driver);
    qemuAutostartDomains(driver);

    VIR_INFO("Tandem QEMU driver ready (%s, config %s)",
             qemuDriverGetURI(driver), driver->paths.configDir);
    return VIR_DRV_STATE_INIT_COMPLETE;

 error:
    qemuStateCleanup();
    return VIR_DRV_STATE_INIT_ERROR;
}

static int
qemuStateReload(void)
{
    if (!qemu_driver)
        return 0;
    return qemuStateLoadDomains(qemu_driver);
}

/* libvirtd stops: it closed the client connections, drains its workers
 * next, then calls stateCleanup.  An incoming migration's Finish still
 * running must not commit (its answer is lost): see qemu_migration.h. */
static int
qemuStateShutdownPrepare(void)
{
    qemuMigrationShutdownPrepare();
    return 0;
}

static virStateDriver qemuStateDriver = {
    .name = "QEMU",
    .stateInitialize = qemuStateInitialize,
    .stateCleanup = qemuStateCleanup,
    .stateReload = qemuStateReload,
    .stateShutdownPrepare = qemuStateShutdownPrepare,
};

/* ---------------------------------------------------------------------- */
/* Connections                                                            */
/* ---------------------------------------------------------------------- */

static virDrvOpenStatus
qemuConnectOpen(virConnectPtr conn,
                virConnectAuthPtr auth G_GNUC_UNUSED,
                virConf *conf G_GNUC_UNUSED,
                unsigned int flags)
{
    virCheckFlags(VIR_CONNECT_RO, VIR_DRV_OPEN_ERROR);

    if (qemu_driver == NULL) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("qemu state driver is not active"));
        return VIR_DRV_OPEN_ERROR;
    }

    if (qemu_driver->embeddedRoot) {
        const char *root = virURIGetParam(conn->uri, "root");

        if (!root)
            return VIR_DRV_OPEN_ERROR;
        if (STRNEQ(conn->uri->path, "/embed")) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("URI must be qemu:///embed, not '%s'"),
                           conn->uri->path);
            return VIR_DRV_OPEN_ERROR;
        }
        if (STRNEQ(root, qemu_driver->embeddedRoot)) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("cannot open embedded driver at path '%s', already open with path '%s'"),
                           root, qemu_driver->embeddedRoot);
            return VIR_DRV_OPEN_ERROR;
        }
    } else if (!virConnectValidateURIPath(conn->uri->path, "qemu",
                                          qemu_driver->privileged)) {
        return VIR_DRV_OPEN_ERROR;
    }

    if (virConnectOpenEnsureACL(conn) < 0)
        return VIR_DRV_OPEN_ERROR;

    conn->privateData = qemu_driver;
    return VIR_DRV_OPEN_SUCCESS;
}

static int
qemuConnectClose(virConnectPtr conn)
{
    qemuProcessConnectionClosed(qemu_driver, conn);
    conn->privateData = NULL;
    return 0;
}

static int
qemuConnectSupportsFeature(virConnectPtr conn, int feature)
{
    if (virConnectSupportsFeatureEnsureACL(conn) < 0)
        return -1;

    switch ((virDrvFeature) feature) {
    case VIR_DRV_FEATURE_TYPED_PARAM_STRING:
    case VIR_DRV_FEATURE_FD_PASSING:
    case VIR_DRV_FEATURE_XML_MIGRATABLE:
    case VIR_DRV_FEATURE_MIGRATION_V3:
    case VIR_DRV_FEATURE_MIGRATION_P2P:
    case VIR_DRV_FEATURE_MIGRATION_PARAMS:
    case VIR_DRV_FEATURE_MIGRATE_CHANGE_PROTECTION:
    case VIR_DRV_FEATURE_MIGRATION_OFFLINE:
    case VIR_DRV_FEATURE_NETWORK_UPDATE_HAS_CORRECT_ORDER:
        return 1;
    default:
        return 0;
    }
}

static const char *
qemuConnectGetType(virConnectPtr conn)
{
    if (virConnectGetTypeEnsureACL(conn) < 0)
        return NULL;
    return "QEMU";
}

static int
qemuConnectIsSecure(virConnectPtr conn G_GNUC_UNUSED)
{
    return 1;   /* local only: trivially secure */
}

static int
qemuConnectIsEncrypted(virConnectPtr conn G_GNUC_UNUSED)
{
    return 0;
}

static int
qemuConnectIsAlive(virConnectPtr conn G_GNUC_UNUSED)
{
    return 1;
}

static int
qemuConnectGetVersion(virConnectPtr conn, unsigned long *version)
{
    g_autoptr(qemuCaps) qcaps = NULL;

    if (virConnectGetVersionEnsureACL(conn) < 0)
        return -1;
    if (!(qcaps = qemuDriverGetQEMUCaps(qemu_driver)))
        return -1;
    *version = qcaps->version;
    return 0;
}

static char *
qemuConnectGetHostname(virConnectPtr conn)
{
    if (virConnectGetHostnameEnsureACL(conn) < 0)
        return NULL;
    return virGetHostname();
}

static char *
qemuConnectGetCapabilities(virConnectPtr conn)
{
    g_autoptr(virCaps) caps = NULL;

    if (virConnectGetCapabilitiesEnsureACL(conn) < 0)
        return NULL;
    if (!(caps = qemuDriverGetCapabilities(qemu_driver)))
        return NULL;
    return virCapabilitiesFormatXML(caps);
}

static char *
qemuConnectGetDomainCapabilities(virConnectPtr conn,
                                 const char *emulatorbin,
                                 const char *arch_str,
                                 const char *machine,
                                 const char *virttype_str,
                                 unsigned int flags)
{
    g_autoptr(qemuCaps) qcaps = NULL;
    g_autoptr(virDomainCaps) domCaps = NULL;
    virDomainVirtType virttype = VIR_DOMAIN_VIRT_QEMU;
    const char *canonical;

    virCheckFlags(0, NULL);

    if (virConnectGetDomainCapabilitiesEnsureACL(conn) < 0)
        return NULL;

    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(qemu_driver, emulatorbin)))
        return NULL;

    if (virttype_str) {
        int t = virDomainVirtTypeFromString(virttype_str);

        if (t != VIR_DOMAIN_VIRT_QEMU && t != VIR_DOMAIN_VIRT_KVM) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("unknown virttype: %s"), virttype_str);
            return NULL;
        }
        virttype = t;
    } else if (qcaps->kvmAvailable) {
        virttype = VIR_DOMAIN_VIRT_KVM;
    }
    if (virttype == VIR_DOMAIN_VIRT_KVM && !qcaps->kvmAvailable) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("KVM is not available on this host"));
        return NULL;
    }

    if (arch_str) {
        virArch arch = virArchFromString(arch_str);

        if (arch == VIR_ARCH_NONE) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("unknown architecture: %s"), arch_str);
            return NULL;
        }
        if (arch != qcaps->arch) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("architecture from emulator '%s' doesn't match given architecture '%s'"),
                           virArchToString(qcaps->arch), arch_str);
            return NULL;
        }
    }

    if (!machine)
        machine = qemuCapsGetDefaultMachine(qcaps);
    if (!(canonical = qemuCapsGetCanonicalMachine(qcaps, machine))) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("the machine '%s' is not supported by emulator '%s'"),
                       machine, qcaps->binary);
        return NULL;
    }

    if (!(domCaps = qemuCapsGetDomainCaps(qcaps, canonical, virttype)))
        return NULL;
    return virDomainCapsFormat(domCaps);
}

static int
qemuNodeGetInfo(virConnectPtr conn, virNodeInfoPtr nodeinfo)
{
    if (virNodeGetInfoEnsureACL(conn) < 0)
        return -1;
    return virCapabilitiesGetNodeInfo(nodeinfo);
}

/* The host's CPUs as a bitmap (python3-libvirt's pinVcpu asks for it
 * before pinning). */
static int
qemuNodeGetCPUMap(virConnectPtr conn, unsigned char **cpumap,
                  unsigned int *online, unsigned int flags)
{
    virCheckFlags(0, -1);
    if (virNodeGetCPUMapEnsureACL(conn) < 0)
        return -1;
    return virHostCPUGetMap(cpumap, online, flags);
}

static int
qemuConnectGetMaxVcpus(virConnectPtr conn, const char *type)
{
    if (virConnectGetMaxVcpusEnsureACL(conn) < 0)
        return -1;
    if (type && STRCASENEQ(type, "qemu") && STRCASENEQ(type, "kvm")) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("unknown type '%s'"), type);
        return -1;
    }
    return 255;
}

/* ---------------------------------------------------------------------- */
/* Listing and lookup                                                     */
/* ---------------------------------------------------------------------- */

static int
qemuConnectListDomains(virConnectPtr conn, int *ids, int nids)
{
    if (virConnectListDomainsEnsureACL(conn) < 0)
        return -1;
    return virDomainObjListGetActiveIDs(qemu_driver->domains, ids, nids,
                                        virConnectListDomainsCheckACL, conn);
}

static int
qemuConnectNumOfDomains(virConnectPtr conn)
{
    if (virConnectNumOfDomainsEnsureACL(conn) < 0)
        return -1;
    return virDomainObjListNumOfDomains(qemu_driver->domains, true,
                                        virConnectNumOfDomainsCheckACL, conn);
}

static int
qemuConnectListDefinedDomains(virConnectPtr conn, char **const names, int nnames)
{
    if (virConnectListDefinedDomainsEnsureACL(conn) < 0)
        return -1;
    memset(names, 0, sizeof(*names) * nnames);
    return virDomainObjListGetInactiveNames(qemu_driver->domains, names, nnames,
                                            virConnectListDefinedDomainsCheckACL,
                                            conn);
}

static int
qemuConnectNumOfDefinedDomains(virConnectPtr conn)
{
    if (virConnectNumOfDefinedDomainsEnsureACL(conn) < 0)
        return -1;
    return virDomainObjListNumOfDomains(qemu_driver->domains, false,
                                        virConnectNumOfDefinedDomainsCheckACL,
                                        conn);
}

static int
qemuConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains,
                          unsigned int flags)
{
    virCheckFlags(VIR_CONNECT_LIST_DOMAINS_FILTERS_ALL, -1);

    if (virConnectListAllDomainsEnsureACL(conn) < 0)
        return -1;
    return virDomainObjListExport(qemu_driver->domains, conn, domains,
                                  virConnectListAllDomainsCheckACL, flags);
}

static virDomainPtr
qemuDomainLookupByID(virConnectPtr conn, int id)
{
    virDomainObj *vm;
    virDomainPtr dom = NULL;

    if (!(vm = virDomainObjListFindByID(qemu_driver->domains, id))) {
        virReportError(VIR_ERR_NO_DOMAIN, _("no domain with matching id %d"), id);
        return NULL;
    }
    if (virDomainLookupByIDEnsureACL(conn, vm->def) < 0)
        goto cleanup;
    dom = virGetDomain(conn, vm->def->name, vm->def->uuid, vm->def->id);

 cleanup:
    virDomainObjEndAPI(&vm);
    return dom;
}

static virDomainPtr
qemuDomainLookupByUUID(virConnectPtr conn, const unsigned char *uuid)
{
    virDomainObj *vm;
    virDomainPtr dom = NULL;

    if (!(vm = virDomainObjListFindByUUID(qemu_driver->domains, uuid))) {
        char uuidstr[VIR_UUID_STRING_BUFLEN];

        virUUIDFormat(uuid, uuidstr);
        virReportError(VIR_ERR_NO_DOMAIN,
                       _("no domain with matching uuid '%s'"), uuidstr);
        return NULL;
    }
    if (virDomainLookupByUUIDEnsureACL(conn, vm->def) < 0)
        goto cleanup;
    dom = virGetDomain(conn, vm->def->name, vm->def->uuid, vm->def->id);

 cleanup:
    virDomainObjEndAPI(&vm);
    return dom;
}

static virDomainPtr
qemuDomainLookupByName(virConnectPtr conn, const char *name)
{
    virDomainObj *vm;
    virDomainPtr dom = NULL;

    if (!(vm = virDomainObjListFindByName(qemu_driver->domains, name))) {
        virReportError(VIR_ERR_NO_DOMAIN,
                       _("no domain with matching name '%s'"), name);
        return NULL;
    }
    if (virDomainLookupByNameEnsureACL(conn, vm->def) < 0)
        goto cleanup;
    dom = virGetDomain(conn, vm->def->name, vm->def->uuid, vm->def->id);

 cleanup:
    virDomainObjEndAPI(&vm);
    return dom;
}

/* ---------------------------------------------------------------------- */
/* Definitions                                                            */
/* ---------------------------------------------------------------------- */

static virDomainPtr
qemuDomainDefineXMLFlags(virConnectPtr conn, const char *xml, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    g_autoptr(virDomainDef) def = NULL;
    g_autoptr(virDomainDef) oldDef = NULL;
    virDomainObj *vm = NULL;
    virDomainPtr dom = NULL;
    unsigned int parseFlags = VIR_DOMAIN_DEF_PARSE_INACTIVE;

    virCheckFlags(VIR_DOMAIN_DEFINE_VALIDATE, NULL);

    if (flags & VIR_DOMAIN_DEFINE_VALIDATE)
        parseFlags |= VIR_DOMAIN_DEF_PARSE_VALIDATE_SCHEMA;

    if (!(def = qemuDomainDefParseString(xml, driver->xmlopt, parseFlags)))
        return NULL;

    if (virDomainDefineXMLFlagsEnsureACL(conn, def) < 0)
        return NULL;

    if (!(vm = virDomainObjListAdd(driver->domains, &def, driver->xmlopt,
                                   0, &oldDef)))
        return NULL;

    vm->persistent = 1;
    if (virDomainDefSave(vm->newDef ? vm->newDef : vm->def,
                         driver->xmlopt, driver->paths.configDir) < 0) {
        if (oldDef) {
            /* put the previous definition back: nothing is lost */
            if (virDomainObjIsActive(vm))
                vm->newDef = g_steal_pointer(&oldDef);
            else
                vm->def = g_steal_pointer(&oldDef);
        } else {
            virDomainObjListRemove(driver->domains, vm);
        }
        goto cleanup;
    }

    qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                             VIR_DOMAIN_EVENT_DEFINED,
                             oldDef ? VIR_DOMAIN_EVENT_DEFINED_UPDATED
                                    : VIR_DOMAIN_EVENT_DEFINED_ADDED));
    VIR_INFO("Defined domain '%s'", vm->def->name);
    dom = virGetDomain(conn, vm->def->name, vm->def->uuid, vm->def->id);

 cleanup:
    virDomainObjEndAPI(&vm);
    return dom;
}

static virDomainPtr
qemuDomainDefineXML(virConnectPtr conn, const char *xml)
{
    return qemuDomainDefineXMLFlags(conn, xml, 0);
}

static char *
qemuDomainNVRAMPath(virQEMUDriver *driver, virDomainObj *vm)
{
    if (vm->def->os.loader && vm->def->os.loader->nvram &&
        vm->def->os.loader->nvram->path)
        return g_strdup(vm->def->os.loader->nvram->path);
    return g_strdup_printf("%s/%s_VARS.fd", driver->paths.nvramDir, vm->def->name);
}

static int
qemuDomainUndefineFlags(virDomainPtr dom, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    g_autofree char *managedSave = NULL;
    g_autofree char *nvram = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                  VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                  VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                  VIR_DOMAIN_UNDEFINE_NVRAM |
                  VIR_DOMAIN_UNDEFINE_KEEP_NVRAM, -1);

    if ((flags & VIR_DOMAIN_UNDEFINE_NVRAM) &&
        (flags & VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("cannot both keep and delete nvram"));
        return -1;
    }

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;

    if (virDomainUndefineFlagsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    if (!vm->persistent) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("cannot undefine transient domain"));
        goto cleanup;
    }

    managedSave = qemuDomainManagedSavePath(driver, vm);
    if (virFileExists(managedSave) &&
        !(flags & VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("Refusing to undefine while domain managed save image exists"));
        goto cleanup;
    }

    /* refuses without --snapshots-metadata, else drops the metadata */
    if (qemuSnapshotPrepareUndefine(vm, flags) < 0)
        goto cleanup;

    if (virFileExists(managedSave)) {
        if (unlink(managedSave) < 0) {
            virReportSystemError(errno,
                                 _("Failed to remove domain managed save image '%s'"),
                                 managedSave);
            goto cleanup;
        }
        vm->hasManagedSave = false;
    }

    if (vm->def->os.loader && vm->def->os.loader->nvram) {
        nvram = qemuDomainNVRAMPath(driver, vm);
        if (virFileExists(nvram)) {
            if (flags & VIR_DOMAIN_UNDEFINE_NVRAM) {
                if (unlink(nvram) < 0) {
                    virReportSystemError(errno, _("failed to remove nvram: %s"),
                                         nvram);
                    goto cleanup;
                }
            } else if (!(flags & VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)) {
                virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                               _("cannot undefine domain with nvram"));
                goto cleanup;
            }
        }
    }

    if (virDomainDeleteConfig(driver->paths.configDir, driver->paths.autostartDir,
                              vm) < 0)
        goto cleanup;

    qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                             VIR_DOMAIN_EVENT_UNDEFINED,
                             VIR_DOMAIN_EVENT_UNDEFINED_REMOVED));
    VIR_INFO("Undefined domain '%s'", vm->def->name);

    vm->autostart = 0;
    if (virDomainObjIsActive(vm))
        vm->persistent = 0;
    else
        virDomainObjListRemove(driver->domains, vm);
    ret = 0;

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainUndefine(virDomainPtr dom)
{
    return qemuDomainUndefineFlags(dom, 0);
}

static char *
qemuDomainGetXMLDesc(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    char *ret = NULL;

    virCheckFlags(VIR_DOMAIN_XML_COMMON_FLAGS, NULL);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;

    if (virDomainGetXMLDescEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;

    ret = virDomainDefFormat((flags & VIR_DOMAIN_XML_INACTIVE) && vm->newDef ?
                             vm->newDef : vm->def,
                             qemu_driver->xmlopt,
                             virDomainDefFormatConvertXMLFlags(flags));
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static char *
qemuConnectDomainXMLToNative(virConnectPtr conn,
                             const char *format,
                             const char *xml,
                             unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    g_autoptr(virDomainDef) def = NULL;
    g_autoptr(qemuCaps) qcaps = NULL;
    g_autofree char *libDir = NULL;

    virCheckFlags(0, NULL);

    if (virConnectDomainXMLToNativeEnsureACL(conn) < 0)
        return NULL;

    if (STRNEQ(format, "qemu-argv")) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("unsupported config type %s"), format);
        return NULL;
    }
    if (!(def = qemuDomainDefParseString(xml, driver->xmlopt,
                                        VIR_DOMAIN_DEF_PARSE_INACTIVE)))
        return NULL;
    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(driver, def->emulator)))
        return NULL;
    libDir = g_strdup_printf("%s/domain-%s", driver->paths.libDir, def->name);
    return qemuBuildNativeCommandLine(def, qcaps, libDir, driver->privileged);
}

static int
qemuDomainGetAutostart(virDomainPtr dom, int *autostart)
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetAutostartEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    *autostart = vm->autostart;
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSetAutostart(virDomainPtr dom, int autostart)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    g_autofree char *configFile = NULL;
    g_autofree char *autostartLink = NULL;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainSetAutostartEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    if (!vm->persistent) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("cannot set autostart for transient domain"));
        goto cleanup;
    }

    autostart = autostart != 0;
    if (vm->autostart != autostart) {
        configFile = virDomainConfigFile(driver->paths.configDir, vm->def->name);
        autostartLink = virDomainConfigFile(driver->paths.autostartDir, vm->def->name);

        if (autostart) {
            if (g_mkdir_with_parents(driver->paths.autostartDir, 0755) < 0) {
                virReportSystemError(errno, _("cannot create autostart directory %s"),
                                     driver->paths.autostartDir);
                goto cleanup;
            }
            if (symlink(configFile, autostartLink) < 0) {
                virReportSystemError(errno,
                                     _("Failed to create symlink '%s' to '%s'"),
                                     autostartLink, configFile);
                goto cleanup;
            }
        } else if (unlink(autostartLink) < 0 && errno != ENOENT && errno != ENOTDIR) {
            virReportSystemError(errno, _("Failed to delete symlink '%s'"),
                                 autostartLink);
            goto cleanup;
        }
        vm->autostart = autostart;
    }
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSetMetadata(virDomainPtr dom, int type, const char *metadata,
                      const char *key, const char *uri, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainSetMetadataEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;

    ret = virDomainObjSetMetadata(vm, type, metadata, key, uri, driver->xmlopt,
                                  driver->paths.stateDir, driver->paths.configDir,
                                  flags);
    if (ret == 0)
        qemuDriverQueueEvent(qemu_driver, virDomainEventMetadataChangeNewFromObj(vm, type, uri));
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static char *
qemuDomainGetMetadata(virDomainPtr dom, int type, const char *uri, unsigned int flags)
{
    virDomainObj *vm;
    char *ret = NULL;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    if (virDomainGetMetadataEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = virDomainObjGetMetadata(vm, type, uri, flags);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Simple queries answered from the domain object                         */
/* ---------------------------------------------------------------------- */

static int
qemuDomainGetInfo(virDomainPtr dom, virDomainInfoPtr info)
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetInfoEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    /* answered from the domain object: never waits for a job or QEMU */
    memset(info, 0, sizeof(*info));
    info->state = virDomainObjGetState(vm, NULL);
    info->maxMem = virDomainDefGetMemoryTotal(vm->def);
    info->memory = vm->def->mem.cur_balloon;
    info->nrVirtCpu = virDomainDefGetVcpus(vm->def);
    if (virDomainObjIsActive(vm)) {
        qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

        info->cpuTime = qemuProcessGetCPUTime(vm);
        if (priv->balloonCur)
            info->memory = priv->balloonCur;
    }
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainGetState(virDomainPtr dom, int *state, int *reason, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetStateEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    *state = virDomainObjGetState(vm, reason);
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* Taint and deprecation messages (virsh dominfo shows them).  Only reads
 * vm under its lock: no job. */
static int
qemuDomainGetMessages(virDomainPtr dom, char ***msgs, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_MESSAGE_DEPRECATION |
                  VIR_DOMAIN_MESSAGE_TAINTING, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetMessagesEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = virDomainObjGetMessages(vm, msgs, flags);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainIsActive(virDomainPtr dom)
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainIsActiveEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = virDomainObjIsActive(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainIsPersistent(virDomainPtr dom)
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainIsPersistentEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = vm->persistent;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainIsUpdated(virDomainPtr dom)
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainIsUpdatedEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = vm->updated;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static char *
qemuDomainGetOSType(virDomainPtr dom)
{
    virDomainObj *vm;
    char *ret = NULL;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    if (virDomainGetOSTypeEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = g_strdup(virDomainOSTypeToString(vm->def->os.type));
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static unsigned long long
qemuDomainGetMaxMemory(virDomainPtr dom)
{
    virDomainObj *vm;
    unsigned long long ret = 0;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return 0;
    if (virDomainGetMaxMemoryEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = virDomainDefGetMemoryTotal(vm->def);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainHasManagedSaveImage(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainHasManagedSaveImageEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = vm->hasManagedSave;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainGetSecurityLabel(virDomainPtr dom, virSecurityLabelPtr seclabel)
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetSecurityLabelEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    /* no security driver: an empty label, as libvirt's "none" model */
    memset(seclabel, 0, sizeof(*seclabel));
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuNodeGetSecurityModel(virConnectPtr conn, virSecurityModelPtr secmodel)
{
    if (virNodeGetSecurityModelEnsureACL(conn) < 0)
        return -1;
    memset(secmodel, 0, sizeof(*secmodel));
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                              */
/* ---------------------------------------------------------------------- */

/* Begins @job and checks the domain runs: the world may have moved while
 * we waited.  On failure no job is held. */
static int
qemuDomainObjBeginJobActive(virDomainObj *vm, qemuDomainJob job)
{
    if (qemuDomainObjBeginJob(vm, job) < 0)
        return -1;
    if (virDomainObjCheckActive(vm) < 0) {
        qemuDomainObjEndJob(vm);
        return -1;
    }
    return 0;
}

/* vm locked; the start job held. */
static int
qemuDomainStartLocked(virConnectPtr conn, virDomainObj *vm, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    unsigned int startFlags = 0;

    if (vm->hasManagedSave) {
        g_autofree char *path = qemuDomainManagedSavePath(driver, vm);

        if (!(flags & VIR_DOMAIN_START_FORCE_BOOT))
            return qemuSaveStartManaged(conn, driver, vm, flags);
        if (unlink(path) < 0 && errno != ENOENT) {
            virReportSystemError(errno, _("cannot remove managed save image '%s'"), path);
            return -1;
        }
        vm->hasManagedSave = false;
    }

    if (flags & VIR_DOMAIN_START_PAUSED)
        startFlags |= QEMU_PROCESS_START_PAUSED;
    if (flags & VIR_DOMAIN_START_AUTODESTROY)
        startFlags |= QEMU_PROCESS_START_AUTODESTROY;

    if (qemuProcessStart(conn, driver, vm, QEMU_ASYNC_JOB_START, startFlags) < 0)
        return -1;

    qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                             VIR_DOMAIN_EVENT_STARTED,
                             VIR_DOMAIN_EVENT_STARTED_BOOTED));
    if (flags & VIR_DOMAIN_START_PAUSED)
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                 VIR_DOMAIN_EVENT_SUSPENDED,
                                 VIR_DOMAIN_EVENT_SUSPENDED_PAUSED));
    return 0;
}

static int
qemuDomainCreateWithFlags(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_START_PAUSED |
                  VIR_DOMAIN_START_AUTODESTROY |
                  VIR_DOMAIN_START_BYPASS_CACHE |
                  VIR_DOMAIN_START_FORCE_BOOT, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainCreateWithFlagsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_START,
                                   VIR_DOMAIN_JOB_OPERATION_START, flags) < 0)
        goto cleanup;
    if (virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("domain is already running"));
    } else if (qemuDomainStartLocked(dom->conn, vm, flags) == 0) {
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
        dom->id = vm->def->id;
        ret = 0;
    }
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(qemu_driver, vm);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainCreate(virDomainPtr dom)
{
    return qemuDomainCreateWithFlags(dom, 0);
}

static virDomainPtr
qemuDomainCreateXML(virConnectPtr conn, const char *xml, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    g_autoptr(virDomainDef) def = NULL;
    virDomainObj *vm = NULL;
    virDomainPtr dom = NULL;
    unsigned int parseFlags = VIR_DOMAIN_DEF_PARSE_INACTIVE;

    virCheckFlags(VIR_DOMAIN_START_PAUSED |
                  VIR_DOMAIN_START_AUTODESTROY |
                  VIR_DOMAIN_START_BYPASS_CACHE |
                  VIR_DOMAIN_START_VALIDATE, NULL);

    if (flags & VIR_DOMAIN_START_VALIDATE)
        parseFlags |= VIR_DOMAIN_DEF_PARSE_VALIDATE_SCHEMA;
    if (!(def = qemuDomainDefParseString(xml, driver->xmlopt, parseFlags)))
        return NULL;
    if (virDomainCreateXMLEnsureACL(conn, def) < 0)
        return NULL;

    if (!(vm = virDomainObjListAdd(driver->domains, &def, driver->xmlopt,
                                   VIR_DOMAIN_OBJ_LIST_ADD_LIVE |
                                   VIR_DOMAIN_OBJ_LIST_ADD_CHECK_LIVE, NULL)))
        return NULL;

    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_START,
                                   VIR_DOMAIN_JOB_OPERATION_START, flags) < 0) {
        if (!vm->persistent && !virDomainObjIsActive(vm))
            virDomainObjListRemove(driver->domains, vm);
        goto cleanup;
    }
    if (qemuDomainStartLocked(conn, vm, flags & ~VIR_DOMAIN_START_VALIDATE) == 0) {
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
        dom = virGetDomain(conn, vm->def->name, vm->def->uuid, vm->def->id);
    }
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);
    if (!dom && !vm->persistent)
        virDomainObjListRemove(driver->domains, vm);

 cleanup:
    virDomainObjEndAPI(&vm);
    return dom;
}

/* Destroy never waits for a stuck job: QEMU is killed first (its monitor
 * then fails every waiter), and only then the destroy job is taken. */
static int
qemuDomainDestroyFlags(virDomainPtr dom, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_DESTROY_GRACEFUL, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainDestroyFlagsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto cleanup;

    priv->beingDestroyed = true;
    if (qemuProcessKill(driver, vm, (flags & VIR_DOMAIN_DESTROY_GRACEFUL) ?
                        0 : QEMU_PROCESS_KILL_FORCE) < 0) {
        priv->beingDestroyed = false;
        goto cleanup;
    }

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_DESTROY) < 0)
        goto cleanup;
    if (virDomainObjIsActive(vm)) {
        qemuProcessStop(driver, vm, VIR_DOMAIN_SHUTOFF_DESTROYED);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                 VIR_DOMAIN_EVENT_STOPPED,
                                 VIR_DOMAIN_EVENT_STOPPED_DESTROYED));
    }
    priv->beingDestroyed = false;
    qemuDomainObjEndJob(vm);
    if (!vm->persistent)
        virDomainObjListRemove(driver->domains, vm);
    ret = 0;

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainDestroy(virDomainPtr dom)
{
    return qemuDomainDestroyFlags(dom, 0);
}

/* Powerdown or reboot through ACPI.  @reboot: QEMU stays up (-no-shutdown)
 * and is reset when the guest has powered off. */
static int
qemuDomainPowerdown(virDomainPtr dom, bool reboot, unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;
    int rc;

    /* VIR_DOMAIN_SHUTDOWN_* and VIR_DOMAIN_REBOOT_* share their values */
    if (flags & ~(VIR_DOMAIN_SHUTDOWN_DEFAULT | VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN |
                  VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("only the ACPI power button and the guest agent are supported as shutdown/reboot modes"));
        return -1;
    }

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if ((reboot ? virDomainRebootEnsureACL(dom->conn, vm->def, flags)
                : virDomainShutdownFlagsEnsureACL(dom->conn, vm->def, flags)) < 0)
        goto cleanup;

    if (flags & VIR_DOMAIN_SHUTDOWN_GUEST_AGENT) {
        /* the agent first; the power button as well only when asked */
        if (virDomainObjCheckActive(vm) < 0)
            goto cleanup;
        ret = qemuAgentShutdown(vm, reboot);
        if (ret == 0 || !(flags & VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN))
            goto cleanup;
        virResetLastError();
        ret = -1;
    }

    if (qemuDomainObjBeginJobActive(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    priv->fakeReboot = reboot;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONSystemPowerdown(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    qemuDomainObjSaveStatus(qemu_driver, vm);
    ret = 0;

 endjob:
    if (ret < 0)
        priv->fakeReboot = false;
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainShutdownFlags(virDomainPtr dom, unsigned int flags)
{
    return qemuDomainPowerdown(dom, false, flags);
}

static int
qemuDomainShutdown(virDomainPtr dom)
{
    return qemuDomainPowerdown(dom, false, 0);
}

static int
qemuDomainReboot(virDomainPtr dom, unsigned int flags)
{
    return qemuDomainPowerdown(dom, true, flags);
}

static int
qemuDomainReset(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;
    int rc;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainResetEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJobActive(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONSystemReset(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    ret = 0;
 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSuspend(virDomainPtr dom)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;
    int rc;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainSuspendEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJobActive(vm, QEMU_JOB_SUSPEND) < 0)
        goto cleanup;

    if (virDomainObjGetState(vm, NULL) == VIR_DOMAIN_PAUSED) {
        ret = 0;      /* already paused: nothing to do, as libvirt */
        goto endjob;
    }
    priv->pausedReason = VIR_DOMAIN_PAUSED_USER;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONStopCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    /* the STOP event may have been handled already */
    if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_PAUSED) {
        priv->pausedReason = 0;
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                 VIR_DOMAIN_EVENT_SUSPENDED,
                                 VIR_DOMAIN_EVENT_SUSPENDED_PAUSED));
    }
    qemuDomainObjSaveStatus(qemu_driver, vm);
    ret = 0;
 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainResume(virDomainPtr dom)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;
    int rc;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainResumeEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJobActive(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;

    if (virDomainObjGetState(vm, NULL) == VIR_DOMAIN_RUNNING) {
        ret = 0;
        goto endjob;
    }
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_RUNNING) {
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_UNPAUSED);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                 VIR_DOMAIN_EVENT_RESUMED,
                                 VIR_DOMAIN_EVENT_RESUMED_UNPAUSED));
    }
    qemuDomainObjSaveStatus(qemu_driver, vm);
    ret = 0;
 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Jobs                                                                   */
/* ---------------------------------------------------------------------- */

/* Job information is read under the domain lock only: no job, no wait. */
static int
qemuDomainGetJobStats(virDomainPtr dom, int *type, virTypedParameterPtr *params,
                      int *nparams, unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainJobInfo info = { 0 };
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_JOB_STATS_COMPLETED |
                  VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetJobStatsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainJobGetInfo(vm, !!(flags & VIR_DOMAIN_JOB_STATS_COMPLETED), &info) < 0)
        goto cleanup;
    if (qemuDomainJobInfoToParams(&info, type, params, nparams) < 0)
        goto cleanup;
    if ((flags & VIR_DOMAIN_JOB_STATS_COMPLETED) &&
        !(flags & VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED))
        qemuDomainJobClearCompleted(vm);
    ret = 0;
 cleanup:
    qemuDomainJobInfoClear(&info);
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainGetJobInfo(virDomainPtr dom, virDomainJobInfoPtr out)
{
    virDomainObj *vm;
    qemuDomainJobInfo info = { 0 };
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetJobInfoEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainJobGetInfo(vm, false, &info) < 0)
        goto cleanup;
    qemuDomainJobInfoToInfo(&info, out);
    ret = 0;
 cleanup:
    qemuDomainJobInfoClear(&info);
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainAbortJobFlags(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_ABORT_JOB_POSTCOPY, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainAbortJobFlagsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_ABORT) < 0)
        goto cleanup;
    if (flags & VIR_DOMAIN_ABORT_JOB_POSTCOPY)
        ret = qemuMigrationSrcPostcopyPause(vm);
    else if (qemuMigrationPostcopySwitched(vm))
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("cannot abort a migration in post-copy mode: the destination runs the guest (domjobabort --postcopy pauses it, to be resumed with migrate --postcopy-resume)"));
    else
        ret = qemuDomainObjAbortAsyncJob(vm);
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainAbortJob(virDomainPtr dom)
{
    return qemuDomainAbortJobFlags(dom, 0);
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                             */
/* ---------------------------------------------------------------------- */

static int
qemuConnectGetAllDomainStats(virConnectPtr conn,
                             virDomainPtr *doms,
                             unsigned int ndoms,
                             unsigned int stats,
                             virDomainStatsRecordPtr **retStats,
                             unsigned int flags)
{
    virDomainObj **vms = NULL;
    size_t nvms = 0;
    unsigned int lflags = flags & (VIR_CONNECT_LIST_DOMAINS_FILTERS_ACTIVE |
                                   VIR_CONNECT_LIST_DOMAINS_FILTERS_PERSISTENT |
                                   VIR_CONNECT_LIST_DOMAINS_FILTERS_STATE);
    int ret;

    virCheckFlags(VIR_CONNECT_LIST_DOMAINS_FILTERS_ACTIVE |
                  VIR_CONNECT_LIST_DOMAINS_FILTERS_PERSISTENT |
                  VIR_CONNECT_LIST_DOMAINS_FILTERS_STATE |
                  VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT |
                  VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING |
                  VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS, -1);

    if (virConnectGetAllDomainStatsEnsureACL(conn) < 0)
        return -1;

    if (ndoms) {
        if (virDomainObjListConvert(qemu_driver->domains, conn, doms, ndoms,
                                    &vms, &nvms, virConnectGetAllDomainStatsCheckACL,
                                    lflags, true) < 0)
            return -1;
    } else {
        virDomainObjListCollect(qemu_driver->domains, conn, &vms, &nvms,
                                virConnectGetAllDomainStatsCheckACL, lflags);
    }

    ret = qemuDomainStatsCollect(conn, vms, nvms, stats, flags, retStats);
    virObjectListFreeCount(vms, nvms);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* QEMU's own monitor, for virsh qemu-monitor-command and -event          */
/* ---------------------------------------------------------------------- */

static int
qemuDomainQemuMonitorCommand(virDomainPtr dom, const char *cmd,
                             char **result, unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;
    int rc;

    virCheckFlags(VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainQemuMonitorCommandEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJobActive(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;

    virDomainObjTaint(vm, VIR_DOMAIN_TAINT_CUSTOM_MONITOR);
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    if (flags & VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
        rc = qemuMonitorJSONHumanCommand(priv->mon, cmd, result);
    else
        rc = qemuMonitorJSONArbitraryCommand(priv->mon, cmd, result);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    ret = 0;
 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuConnectDomainQemuMonitorEventRegister(virConnectPtr conn,
                                          virDomainPtr dom,
                                          const char *event,
                                          virConnectDomainQemuMonitorEventCallback callback,
                                          void *opaque,
                                          virFreeCallback freecb,
                                          unsigned int flags)
{
    int ret = -1;

    if (virConnectDomainQemuMonitorEventRegisterEnsureACL(conn) < 0)
        return -1;
    if (virDomainQemuMonitorEventStateRegisterID(conn, qemu_driver->domainEventState,
                                                 dom, event, callback, opaque,
                                                 freecb, flags, &ret) < 0)
        ret = -1;
    return ret;
}

static int
qemuConnectDomainQemuMonitorEventDeregister(virConnectPtr conn, int callbackID)
{
    if (virConnectDomainQemuMonitorEventDeregisterEnsureACL(conn) < 0)
        return -1;
    if (virObjectEventStateDeregisterID(conn, qemu_driver->domainEventState,
                                        callbackID, true) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Events                                                                 */
/* ---------------------------------------------------------------------- */

static int
qemuConnectDomainEventRegister(virConnectPtr conn,
                               virConnectDomainEventCallback callback,
                               void *opaque,
                               virFreeCallback freecb)
{
    if (virConnectDomainEventRegisterEnsureACL(conn) < 0)
        return -1;
    if (virDomainEventStateRegister(conn, qemu_driver->domainEventState,
                                    callback, opaque, freecb) < 0)
        return -1;
    return 0;
}

static int
qemuConnectDomainEventDeregister(virConnectPtr conn,
                                 virConnectDomainEventCallback callback)
{
    if (virConnectDomainEventDeregisterEnsureACL(conn) < 0)
        return -1;
    if (virDomainEventStateDeregister(conn, qemu_driver->domainEventState,
                                      callback) < 0)
        return -1;
    return 0;
}

static int
qemuConnectDomainEventRegisterAny(virConnectPtr conn,
                                  virDomainPtr dom,
                                  int eventID,
                                  virConnectDomainEventGenericCallback callback,
                                  void *opaque,
                                  virFreeCallback freecb)
{
    int ret = -1;

    if (virConnectDomainEventRegisterAnyEnsureACL(conn) < 0)
        return -1;
    if (virDomainEventStateRegisterID(conn, qemu_driver->domainEventState,
                                      dom, eventID, callback, opaque, freecb,
                                      &ret) < 0)
        ret = -1;
    return ret;
}

static int
qemuConnectDomainEventDeregisterAny(virConnectPtr conn, int callbackID)
{
    if (virConnectDomainEventDeregisterAnyEnsureACL(conn) < 0)
        return -1;
    if (virObjectEventStateDeregisterID(conn, qemu_driver->domainEventState,
                                        callbackID, true) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Registration                                                           */
/* ---------------------------------------------------------------------- */

static virHypervisorDriver qemuHypervisorDriver = {
    .name = "QEMU",
    .connectURIProbe = NULL,
    .connectOpen = qemuConnectOpen,
    .connectClose = qemuConnectClose,
    .connectSupportsFeature = qemuConnectSupportsFeature,
    .connectGetType = qemuConnectGetType,
    .connectGetVersion = qemuConnectGetVersion,
    .connectGetHostname = qemuConnectGetHostname,
    .connectGetMaxVcpus = qemuConnectGetMaxVcpus,
    .connectGetCapabilities = qemuConnectGetCapabilities,
    .connectGetDomainCapabilities = qemuConnectGetDomainCapabilities,
    .connectIsSecure = qemuConnectIsSecure,
    .connectIsEncrypted = qemuConnectIsEncrypted,
    .connectIsAlive = qemuConnectIsAlive,
    .nodeGetInfo = qemuNodeGetInfo,
    .nodeGetSecurityModel = qemuNodeGetSecurityModel,
    .nodeGetCPUMap = qemuNodeGetCPUMap,
    .connectListDomains = qemuConnectListDomains,
    .connectNumOfDomains = qemuConnectNumOfDomains,
    .connectListDefinedDomains = qemuConnectListDefinedDomains,
    .connectNumOfDefinedDomains = qemuConnectNumOfDefinedDomains,
    .connectListAllDomains = qemuConnectListAllDomains,
    .connectDomainXMLToNative = qemuConnectDomainXMLToNative,
    .connectDomainEventRegister = qemuConnectDomainEventRegister,
    .connectDomainEventDeregister = qemuConnectDomainEventDeregister,
    .connectDomainEventRegisterAny = qemuConnectDomainEventRegisterAny,
    .connectDomainEventDeregisterAny = qemuConnectDomainEventDeregisterAny,
    .domainLookupByID = qemuDomainLookupByID,
    .domainLookupByUUID = qemuDomainLookupByUUID,
    .domainLookupByName = qemuDomainLookupByName,
    .domainDefineXML = qemuDomainDefineXML,
    .domainDefineXMLFlags = qemuDomainDefineXMLFlags,
    .domainUndefine = qemuDomainUndefine,
    .domainUndefineFlags = qemuDomainUndefineFlags,
    .domainGetXMLDesc = qemuDomainGetXMLDesc,
    .domainGetAutostart = qemuDomainGetAutostart,
    .domainSetAutostart = qemuDomainSetAutostart,
    .domainSetMetadata = qemuDomainSetMetadata,
    .domainGetMetadata = qemuDomainGetMetadata,
    .domainGetInfo = qemuDomainGetInfo,
    .domainGetState = qemuDomainGetState,
    .domainGetMessages = qemuDomainGetMessages,
    .domainIsActive = qemuDomainIsActive,
    .domainIsPersistent = qemuDomainIsPersistent,
    .domainIsUpdated = qemuDomainIsUpdated,
    .domainGetOSType = qemuDomainGetOSType,
    .domainGetMaxMemory = qemuDomainGetMaxMemory,
    .domainHasManagedSaveImage = qemuDomainHasManagedSaveImage,
    .domainGetSecurityLabel = qemuDomainGetSecurityLabel,
    .domainCreate = qemuDomainCreate,
    .domainCreateWithFlags = qemuDomainCreateWithFlags,
    .domainCreateXML = qemuDomainCreateXML,
    .domainDestroy = qemuDomainDestroy,
    .domainDestroyFlags = qemuDomainDestroyFlags,
    .domainShutdown = qemuDomainShutdown,
    .domainShutdownFlags = qemuDomainShutdownFlags,
    .domainReboot = qemuDomainReboot,
    .domainReset = qemuDomainReset,
    .domainSuspend = qemuDomainSuspend,
    .domainResume = qemuDomainResume,
    .domainGetJobInfo = qemuDomainGetJobInfo,
    .domainGetJobStats = qemuDomainGetJobStats,
    .domainAbortJob = qemuDomainAbortJob,
    .domainAbortJobFlags = qemuDomainAbortJobFlags,
    .connectGetAllDomainStats = qemuConnectGetAllDomainStats,
    .domainQemuMonitorCommand = qemuDomainQemuMonitorCommand,
    .connectDomainQemuMonitorEventRegister = qemuConnectDomainQemuMonitorEventRegister,
    .connectDomainQemuMonitorEventDeregister = qemuConnectDomainQemuMonitorEventDeregister,
};

static virConnectDriver qemuConnectDriver = {
    .localOnly = true,
    .embeddable = true,
    .uriSchemes = (const char *[]){ "qemu", NULL },
    .hypervisorDriver = &qemuHypervisorDriver,
};

/* How tools tell this module from libvirt's own libvirt_driver_qemu.so:
 * build-aux/tandem-setup looks for "TANDEM-MODULE " in the file and shows
 * the rest of the string.  Keep the prefix. */
static const char qemuTandemModuleId[] __attribute__((used)) =
    "TANDEM-MODULE " PACKAGE_VERSION " for libvirt " TANDEM_LIBVIRT_VERSION;

/* The libvirt the module runs in must be the one it was built for: the
 * private ABI it uses has no compatibility promise. */
static int
qemuCheckLibvirtVersion(void)
{
    unsigned long libVer = 0;
    g_autofree char *running = NULL;
    const char *expected = TANDEM_LIBVIRT_VERSION;
    const char *override = getenv("TANDEM_TEST_RUNNING_LIBVIRT_VERSION");

    if (virGetVersion(&libVer, NULL, NULL) < 0)
        return -1;
    running = g_strdup_printf("%lu.%lu.%lu", libVer / 1000000,
                              (libVer / 1000) % 1000, libVer % 1000);
    /* test hook: pretend to run in another libvirt */
    if (override && *override)
        running = (g_free(running), g_strdup(override));

    if (STRNEQ(running, expected)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("Tandem QEMU driver was built for libvirt %s but is loaded into libvirt %s; refusing to register"),
                       expected, running);
        VIR_ERROR(_("Tandem QEMU driver was built for libvirt %s but is loaded into libvirt %s; refusing to register"),
                  expected, running);
        return -1;
    }
    return 0;
}

int
qemuRegister(void)
{
    const char *localedir = g_getenv("TANDEM_LOCALEDIR");

    if (qemuCheckLibvirtVersion() < 0)
        return -1;
    /* our messages live in our own text domain ("tandem", see _() in
     * internal.h); TANDEM_LOCALEDIR points at an uninstalled catalog */
    if (!bindtextdomain(PACKAGE, localedir && *localedir ? localedir : LOCALEDIR) ||
        !bind_textdomain_codeset(PACKAGE, "UTF-8"))
        VIR_WARN("cannot bind the text domain '%s': %s", PACKAGE, g_strerror(errno));
    qemuDomainQueryRegister(&qemuHypervisorDriver);
    qemuDomainDevicesRegister(&qemuHypervisorDriver);
    qemuHotplugRegister(&qemuHypervisorDriver);
    qemuAgentRegister(&qemuHypervisorDriver);
    qemuMigrationRegister(&qemuHypervisorDriver);
    qemuSaveRegister(&qemuHypervisorDriver);
    qemuSnapshotRegister(&qemuHypervisorDriver);
    if (virRegisterConnectDriver(&qemuConnectDriver, true) < 0)
        return -1;
    if (virRegisterStateDriver(&qemuStateDriver) < 0)
        return -1;
    return 0;
}
