/*
 * qemu_migration_nbd.c: migration with non-shared storage over NBD
 * (see qemu_migration_nbd.h for the protocol and the locking)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_migration_nbd.h"
#include "qemu_domain.h"
#include "qemu_domainjob.h"
#include "qemu_monitor.h"
#include "qemu_monitor_json.h"

#include "vircommand.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virportallocator.h"
#include "virstring.h"
#include "virtime.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_migration_nbd");

/* how often the source refreshes the mirrors' progress while it waits for
 * their events (ms) */
#define QEMU_MIGRATION_NBD_POLL_MS 250
/* how long cancelled mirrors may take to end (ms) */
#define QEMU_MIGRATION_NBD_CANCEL_MS 30000

/* QEMU names: job "migration-vda", client node "migration-vda-nbd",
 * destination export id "migration-vda" (export name "vda") */
#define QEMU_MIGRATION_NBD_PREFIX "migration-"
#define QEMU_MIGRATION_NBD_NODE_SUFFIX "-nbd"

struct _qemuMigrationNBDMirrors {
    GPtrArray *targets;     /* disk targets (char *) whose job may exist */
    GPtrArray *nodes;       /* client node names (char *) that may exist */
};

void
qemuMigrationNBDMirrorsFree(qemuMigrationNBDMirrors *mirrors)
{
    if (!mirrors)
        return;
    g_ptr_array_unref(mirrors->targets);
    g_ptr_array_unref(mirrors->nodes);
    g_free(mirrors);
}

static char *
qemuMigrationNBDJobId(const char *target)
{
    return g_strdup_printf(QEMU_MIGRATION_NBD_PREFIX "%s", target);
}

static char *
qemuMigrationNBDNodeName(const char *target)
{
    return g_strdup_printf(QEMU_MIGRATION_NBD_PREFIX "%s" QEMU_MIGRATION_NBD_NODE_SUFFIX,
                           target);
}

char **
qemuMigrationNBDGetMigrateDisks(virTypedParameterPtr params, int nparams)
{
    g_autoptr(GPtrArray) list = g_ptr_array_new();
    int i;

    for (i = 0; i < nparams; i++) {
        if (STREQ(params[i].field, VIR_MIGRATE_PARAM_MIGRATE_DISKS) &&
            params[i].type == VIR_TYPED_PARAM_STRING && params[i].value.s)
            g_ptr_array_add(list, g_strdup(params[i].value.s));
    }
    if (list->len == 0)
        return NULL;
    g_ptr_array_add(list, NULL);
    return (char **) g_ptr_array_free(g_steal_pointer(&list), false);
}

int
qemuMigrationNBDCheckFlags(unsigned long flags)
{
    if (!(flags & QEMU_MIGRATION_NBD_FLAGS))
        return 0;
    if ((flags & VIR_MIGRATE_NON_SHARED_DISK) && (flags & VIR_MIGRATE_NON_SHARED_INC)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("--copy-storage-all and --copy-storage-inc are mutually exclusive"));
        return -1;
    }
    if (flags & VIR_MIGRATE_POSTCOPY) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("post-copy migration with a copy of the storage (--copy-storage-all/--copy-storage-inc) is not supported by this driver"));
        return -1;
    }
    if (flags & VIR_MIGRATE_OFFLINE) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("offline migration cannot copy storage"));
        return -1;
    }
    return 0;
}

/* Can the storage of @disk be copied at all? */
static bool
qemuMigrationNBDDiskEligible(virDomainDiskDef *disk)
{
    virStorageSource *src = disk->src;

    return disk->device == VIR_DOMAIN_DISK_DEVICE_DISK &&
           src && src->path && !src->readonly && !src->shared &&
           (src->type == VIR_STORAGE_TYPE_FILE || src->type == VIR_STORAGE_TYPE_BLOCK);
}

/* Is @disk copied: named by @migrateDisks, or eligible when that is NULL? */
static bool
qemuMigrationNBDDiskWanted(virDomainDiskDef *disk, char **migrateDisks)
{
    if (migrateDisks)
        return g_strv_contains((const char *const *) migrateDisks, disk->dst);
    return qemuMigrationNBDDiskEligible(disk);
}

/* Every name of @migrateDisks is a disk of @def that can be copied. */
static int
qemuMigrationNBDCheckMigrateDisks(virDomainDef *def, char **migrateDisks)
{
    size_t i;
    size_t j;

    for (i = 0; migrateDisks && migrateDisks[i]; i++) {
        virDomainDiskDef *disk = NULL;

        for (j = 0; j < def->ndisks && !disk; j++) {
            if (STREQ(def->disks[j]->dst, migrateDisks[i]))
                disk = def->disks[j];
        }
        if (!disk) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("disk '%s' to migrate is not a disk of domain '%s'"),
                           migrateDisks[i], def->name);
            return -1;
        }
        if (!qemuMigrationNBDDiskEligible(disk)) {
            virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                           _("the storage of disk '%s' cannot be copied (read-only, shared, removable or not a file or block device)"),
                           disk->dst);
            return -1;
        }
    }
    return 0;
}

/* The size the source announced for disk @target in its cookie; 0 when
 * unknown. */
static unsigned long long
qemuMigrationNBDCookieCapacity(qemuMigrationCookie *cookie, const char *target)
{
    size_t i;

    if (!cookie || !cookie->haveNBD || !cookie->nbdDisks || !cookie->nbdCapacities)
        return 0;
    for (i = 0; cookie->nbdDisks[i]; i++) {
        if (STREQ(cookie->nbdDisks[i], target))
            return cookie->nbdCapacities[i];
    }
    return 0;
}

/* `qemu-img create -f FORMAT PATH SIZE` for @disk, with @vm unlocked
 * (the migration-in job held). */
static int
qemuMigrationDstNBDCreateImage(virDomainObj *vm, virDomainDiskDef *disk,
                               unsigned long long capacity)
{
    g_autofree char *qemuImg = virFindFileInPath("qemu-img");
    g_autofree char *path = g_strdup(disk->src->path);
    g_autofree char *size = g_strdup_printf("%llu", capacity);
    const char *format = disk->src->format == VIR_STORAGE_FILE_QCOW2 ? "qcow2" : "raw";
    g_autoptr(virCommand) cmd = NULL;
    g_autofree char *errbuf = NULL;
    int status = 0;
    int rc;

    if (!qemuImg) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot create the image '%s' of disk '%s': qemu-img not found"),
                       path, disk->dst);
        return -1;
    }
    cmd = virCommandNewArgList(qemuImg, "create", "-q", "-f", format, path, size, NULL);
    virCommandSetErrorBuffer(cmd, &errbuf);
    virObjectUnlock(vm);
    rc = virCommandRun(cmd, &status);
    virObjectLock(vm);
    if (rc < 0)
        return -1;
    if (status != 0) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot create the image '%s' of disk '%s': %s"),
                       path, disk->dst, errbuf ? g_strstrip(errbuf) : "");
        return -1;
    }
    VIR_INFO("Incoming storage migration of '%s': created the %s image %s of %s bytes for disk '%s'",
             vm->def->name, format, path, size, disk->dst);
    return 0;
}

static void
qemuMigrationDstNBDRemoveImages(virDomainObj *vm, char **paths)
{
    size_t i;

    for (i = 0; paths && paths[i]; i++) {
        if (unlink(paths[i]) == 0)
            VIR_INFO("Incoming storage migration of '%s' failed: removed the image %s it created",
                     vm->def->name, paths[i]);
        else if (errno != ENOENT)
            VIR_WARN("Incoming storage migration of '%s': cannot remove the image %s it created: %s",
                     vm->def->name, paths[i], g_strerror(errno));
    }
}

void
qemuMigrationDstNBDRemoveCreated(virDomainObj *vm)
{
    g_auto(GStrv) paths = g_steal_pointer(&QEMU_DOMAIN_PRIVATE(vm)->job.createdImages);

    qemuMigrationDstNBDRemoveImages(vm, paths);
}

int
qemuMigrationDstNBDPrepareDisks(virDomainObj *vm,
                                char **migrateDisks,
                                unsigned long flags,
                                qemuMigrationCookie *srcCookie)
{
    virDomainDef *def = vm->def;
    g_autoptr(GPtrArray) made = g_ptr_array_new_with_free_func(g_free);
    size_t i;

    if (qemuMigrationNBDCheckMigrateDisks(def, migrateDisks) < 0)
        return -1;
    for (i = 0; i < def->ndisks; i++) {
        virDomainDiskDef *disk = def->disks[i];
        unsigned long long capacity;

        if (!qemuMigrationNBDDiskWanted(disk, migrateDisks) ||
            virFileExists(disk->src->path))
            continue;
        capacity = qemuMigrationNBDCookieCapacity(srcCookie, disk->dst);
        /* a full copy fills a new plain image; an incremental one needs
         * the backing chain, which only the user can set up */
        if (!(flags & VIR_MIGRATE_NON_SHARED_DISK) || capacity == 0 ||
            disk->src->type != VIR_STORAGE_TYPE_FILE) {
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("cannot copy the storage of disk '%s': its image '%s' does not exist on the destination (create it with the source's size and format first)"),
                           disk->dst, disk->src->path);
            goto error;
        }
        if (qemuMigrationDstNBDCreateImage(vm, disk, capacity) < 0)
            goto error;
        g_ptr_array_add(made, g_strdup(disk->src->path));
    }
    if (made->len) {
        g_ptr_array_add(made, NULL);
        QEMU_DOMAIN_PRIVATE(vm)->job.createdImages =
            (char **) g_ptr_array_free(g_steal_pointer(&made), false);
    }
    return 0;

 error:
    g_ptr_array_add(made, NULL);
    qemuMigrationDstNBDRemoveImages(vm, (char **) made->pdata);
    return -1;
}

/* Does QEMU's query-block entry @info belong to @disk? */
static bool
qemuMigrationNBDBlockMatches(const qemuMonitorBlockInfo *info, virDomainDiskDef *disk)
{
    const char *alias = disk->info.alias;

    if (alias && info->qdev) {
        g_autofree char *prefix = g_strdup_printf("/machine/peripheral/%s/", alias);

        if (STREQ(info->qdev, alias) || STRPREFIX(info->qdev, prefix))
            return true;
    }
    return info->file && STREQ(info->file, disk->src->path);
}

/* The format node names of @vm's disks to copy (a NULL-terminated list
 * parallel to @targets, filled with the disk targets).  Enters the
 * monitor under @asyncJob. */
static char **
qemuMigrationNBDNodeNames(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                          char **migrateDisks, GPtrArray *targets, GArray *sizes)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GPtrArray) nodes = g_ptr_array_new_with_free_func(g_free);
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    size_t i;
    size_t j;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return NULL;
    rc = qemuMonitorJSONQueryBlock(priv->mon, &info, &ninfo);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuMonitorBlockInfoFree(info, ninfo);
        return NULL;
    }
    for (i = 0; i < vm->def->ndisks; i++) {
        virDomainDiskDef *disk = vm->def->disks[i];
        const char *node = NULL;
        unsigned long long size = 0;

        if (!qemuMigrationNBDDiskWanted(disk, migrateDisks))
            continue;
        for (j = 0; j < ninfo && !node; j++) {
            if (info[j].inserted && info[j].nodeName &&
                qemuMigrationNBDBlockMatches(&info[j], disk)) {
                node = info[j].nodeName;
                size = info[j].virtualSize;
            }
        }
        if (!node) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU does not report a block node for disk '%s'"), disk->dst);
            qemuMonitorBlockInfoFree(info, ninfo);
            return NULL;
        }
        g_ptr_array_add(nodes, g_strdup(node));
        g_ptr_array_add(targets, g_strdup(disk->dst));
        if (sizes)
            g_array_append_val(sizes, size);
    }
    qemuMonitorBlockInfoFree(info, ninfo);
    g_ptr_array_add(nodes, NULL);
    return (char **) g_ptr_array_free(g_steal_pointer(&nodes), false);
}

int
qemuMigrationSrcNBDDescribe(virDomainObj *vm,
                            char **migrateDisks,
                            qemuMigrationCookie *cookie)
{
    g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) sizes = g_array_new(true, true, sizeof(unsigned long long));
    g_auto(GStrv) nodes = NULL;

    if (qemuMigrationNBDCheckMigrateDisks(vm->def, migrateDisks) < 0)
        return -1;
    if (!(nodes = qemuMigrationNBDNodeNames(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                            migrateDisks, targets, sizes)))
        return -1;
    cookie->haveNBD = true;
    cookie->nbdPort = 0;
    g_ptr_array_add(targets, NULL);
    cookie->nbdDisks = (char **) g_ptr_array_free(g_steal_pointer(&targets), false);
    cookie->nbdCapacities = (unsigned long long *) g_array_free(g_steal_pointer(&sizes), false);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Destination                                                            */
/* ---------------------------------------------------------------------- */

int
qemuMigrationDstNBDStart(virQEMUDriver *driver,
                         virDomainObj *vm,
                         const char *listenAddress,
                         char **migrateDisks,
                         qemuMigrationCookie *cookie)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) nodes = NULL;
    g_autofree char *host = NULL;
    unsigned short port = 0;
    size_t i;
    int rc;

    if (!(nodes = qemuMigrationNBDNodeNames(vm, QEMU_ASYNC_JOB_MIGRATION_IN,
                                            migrateDisks, targets, NULL)))
        return -1;
    if (virPortAllocatorAcquire(driver->migrationPorts, &port) < 0)
        return -1;
    priv->nbdPort = port;

    /* QEMU wants the bare address, also for IPv6 */
    if (listenAddress[0] == '[' && listenAddress[strlen(listenAddress) - 1] == ']')
        host = g_strndup(listenAddress + 1, strlen(listenAddress) - 2);
    else
        host = g_strdup(listenAddress);

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        return -1;
    rc = qemuMonitorJSONNBDServerStart(priv->mon, host, port);
    for (i = 0; rc == 0 && nodes[i]; i++) {
        const char *target = g_ptr_array_index(targets, i);
        g_autofree char *id = qemuMigrationNBDJobId(target);

        rc = qemuMonitorJSONBlockExportAddNBD(priv->mon, id, nodes[i], target, true);
    }
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;

    cookie->haveNBD = true;
    cookie->nbdPort = port;
    g_ptr_array_add(targets, NULL);
    cookie->nbdDisks = (char **) g_ptr_array_free(g_steal_pointer(&targets), false);
    VIR_INFO("Incoming migration of '%s': NBD server on %s port %u exports %zu disk(s)",
             vm->def->name, host, port, i);
    return 0;
}

int
qemuMigrationDstNBDStop(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    if (!priv->nbdPort)
        return 0;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        return -1;
    rc = qemuMonitorJSONNBDServerStop(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    virPortAllocatorRelease(priv->nbdPort);
    priv->nbdPort = 0;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Source                                                                 */
/* ---------------------------------------------------------------------- */

static const qemuMonitorJobInfo *
qemuMigrationNBDFindJob(const qemuMonitorJobInfo *jobs, size_t njobs, const char *id)
{
    size_t i;

    for (i = 0; i < njobs; i++) {
        if (STREQ(jobs[i].id, id))
            return &jobs[i];
    }
    return NULL;
}

static int
qemuMigrationNBDQueryJobs(virDomainObj *vm,
                          qemuMonitorJobInfo **jobs,
                          size_t *njobs)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    *jobs = NULL;
    *njobs = 0;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return -1;
    rc = qemuMonitorJSONQueryJobs(priv->mon, jobs, njobs);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuMonitorJobInfoFree(*jobs, *njobs);
        *jobs = NULL;
        *njobs = 0;
        return -1;
    }
    return 0;
}

int
qemuMigrationSrcNBDCopy(virDomainObj *vm,
                        qemuMigrationCookie *cookie,
                        const char *host,
                        char **migrateDisks,
                        unsigned long long speed,
                        unsigned long flags,
                        qemuMigrationNBDMirrors **mirrors)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) nodes = NULL;
    qemuMigrationNBDMirrors *m;
    const char *sync = (flags & VIR_MIGRATE_NON_SHARED_INC) ? "top" : "full";
    size_t i;
    int rc = 0;

    *mirrors = NULL;
    if (!cookie->haveNBD) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("the destination did not start an NBD server for the storage migration"));
        return -1;
    }
    if (qemuMigrationNBDCheckMigrateDisks(vm->def, migrateDisks) < 0)
        return -1;
    if (!(nodes = qemuMigrationNBDNodeNames(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                            migrateDisks, targets, NULL)))
        return -1;
    for (i = 0; i < targets->len; i++) {
        const char *target = g_ptr_array_index(targets, i);

        if (!cookie->nbdDisks ||
            !g_strv_contains((const char *const *) cookie->nbdDisks, target)) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("the destination does not export disk '%s' for the storage migration"),
                           target);
            return -1;
        }
    }

    m = g_new0(qemuMigrationNBDMirrors, 1);
    m->targets = g_ptr_array_new_with_free_func(g_free);
    m->nodes = g_ptr_array_new_with_free_func(g_free);
    *mirrors = m;

    VIR_INFO("Migration of '%s': mirroring %u disk(s) (sync %s) to NBD on %s port %u",
             vm->def->name, targets->len, sync, host, cookie->nbdPort);
    for (i = 0; rc == 0 && i < targets->len; i++) {
        const char *target = g_ptr_array_index(targets, i);
        g_autofree char *node = qemuMigrationNBDNodeName(target);
        g_autofree char *jobId = qemuMigrationNBDJobId(target);
        g_autoptr(tdmJSONValue) props = qemuMonitorJSONBuildNBDClientProps(node, host,
                                                                           cookie->nbdPort,
                                                                           target);

        if (!props)
            return -1;
        if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
            return -1;
        rc = qemuMonitorJSONBlockdevAdd(priv->mon, &props);
        if (rc == 0) {
            g_ptr_array_add(m->nodes, g_strdup(node));
            rc = qemuMonitorJSONBlockdevMirror(priv->mon, jobId, nodes[i], node, sync,
                                               speed);
            if (rc == 0)
                g_ptr_array_add(m->targets, g_strdup(target));
        }
        if (qemuDomainObjExitMonitor(vm) < 0)
            return -1;
    }
    if (rc < 0)
        return -1;

    /* wait until every mirror is ready: woken by the job events */
    for (;;) {
        qemuMonitorJobInfo *jobs = NULL;
        size_t njobs = 0;
        unsigned long long total = 0;
        unsigned long long done = 0;
        size_t ready = 0;
        qemuDomainJobProgress *p = &priv->job.progress;

        if (qemuDomainObjAsyncJobAbortRequested(vm)) {
            virReportError(VIR_ERR_OPERATION_ABORTED, "%s",
                           _("migration job: canceled by client"));
            return -1;
        }
        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                           _("domain is no longer running: QEMU exited during the storage migration"));
            return -1;
        }
        if (qemuMigrationNBDQueryJobs(vm, &jobs, &njobs) < 0)
            return -1;
        for (i = 0; i < m->targets->len; i++) {
            g_autofree char *id = qemuMigrationNBDJobId(g_ptr_array_index(m->targets, i));
            const qemuMonitorJobInfo *job = qemuMigrationNBDFindJob(jobs, njobs, id);

            if (!job || STREQ(job->status, "concluded") || STREQ(job->status, "aborting") ||
                STREQ(job->status, "null")) {
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("the copy of disk '%s' to the destination failed: %s"),
                               (const char *) g_ptr_array_index(m->targets, i),
                               job && job->error ? job->error : _("the mirror job ended"));
                qemuMonitorJobInfoFree(jobs, njobs);
                return -1;
            }
            total += job->progressTotal;
            done += MIN(job->progressCurrent, job->progressTotal);
            if (STREQ(job->status, "ready"))
                ready++;
        }
        qemuMonitorJobInfoFree(jobs, njobs);
        p->diskTotal = total;
        p->diskProcessed = done;
        p->diskRemaining = total - done;
        p->dataTotal = p->memTotal + p->diskTotal;
        p->dataProcessed = p->memProcessed + p->diskProcessed;
        p->dataRemaining = p->memRemaining + p->diskRemaining;
        if (ready == m->targets->len) {
            VIR_INFO("Migration of '%s': %zu disk mirror(s) ready (%llu bytes)",
                     vm->def->name, ready, total);
            return 0;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_MIGRATION_NBD_POLL_MS) < 0)
            return -1;
    }
}

/* Cancels (@force: drops; else completes a ready mirror without pivot)
 * the mirrors of @targets, waits until each concluded (bounded), dismisses
 * them and returns the first error QEMU reported for one (-1), or 0. */
static int
qemuMigrationSrcNBDEndJobs(virDomainObj *vm, GPtrArray *targets, bool force)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long deadline = g_get_real_time() / 1000 + QEMU_MIGRATION_NBD_CANCEL_MS;
    g_autofree char *failed = NULL;
    g_autofree char *failure = NULL;
    qemuMonitorJobInfo *jobs = NULL;
    size_t njobs = 0;
    size_t i;
    int ret = 0;

    if (!targets || targets->len == 0)
        return 0;
    if (qemuMigrationNBDQueryJobs(vm, &jobs, &njobs) < 0)
        return -1;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0) {
        qemuMonitorJobInfoFree(jobs, njobs);
        return -1;
    }
    for (i = 0; i < targets->len; i++) {
        g_autofree char *id = qemuMigrationNBDJobId(g_ptr_array_index(targets, i));
        const qemuMonitorJobInfo *job = qemuMigrationNBDFindJob(jobs, njobs, id);

        /* a job that ended already (concluded) is only dismissed below */
        if (job && STRNEQ(job->status, "concluded") && STRNEQ(job->status, "null") &&
            qemuMonitorJSONBlockJobCancel(priv->mon, id, force) < 0)
            VIR_DEBUG("block-job-cancel %s: %s", id, virGetLastErrorMessage());
    }
    qemuMonitorJobInfoFree(jobs, njobs);
    jobs = NULL;
    njobs = 0;
    if (qemuDomainObjExitMonitor(vm) < 0)
        return -1;

    while (targets->len > 0) {
        if (qemuMigrationNBDQueryJobs(vm, &jobs, &njobs) < 0)
            return -1;
        for (i = 0; i < targets->len;) {
            const char *target = g_ptr_array_index(targets, i);
            g_autofree char *id = qemuMigrationNBDJobId(target);
            const qemuMonitorJobInfo *job = qemuMigrationNBDFindJob(jobs, njobs, id);
            int rc = 0;

            if (job && STRNEQ(job->status, "concluded") && STRNEQ(job->status, "null")) {
                i++;
                continue;
            }
            /* a forced cancel ends the job with an error of course */
            if (job && job->error && !force && !failed) {
                failed = g_strdup(target);
                failure = g_strdup(job->error);
            }
            if (job) {
                if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0) {
                    qemuMonitorJobInfoFree(jobs, njobs);
                    return -1;
                }
                rc = qemuMonitorJSONJobDismiss(priv->mon, id);
                if (qemuDomainObjExitMonitor(vm) < 0)
                    rc = -1;
                if (rc < 0)
                    VIR_WARN("cannot dismiss the mirror job %s: %s", id,
                             virGetLastErrorMessage());
            }
            g_ptr_array_remove_index(targets, i);
        }
        qemuMonitorJobInfoFree(jobs, njobs);
        if (targets->len == 0)
            break;
        if ((unsigned long long) (g_get_real_time() / 1000) > deadline) {
            virReportError(VIR_ERR_OPERATION_TIMEOUT,
                           _("the copy of disk '%s' did not end in time"),
                           (const char *) g_ptr_array_index(targets, 0));
            return -1;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_MIGRATION_NBD_POLL_MS) < 0)
            return -1;
    }
    if (failed) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("the copy of disk '%s' to the destination failed: %s"),
                       failed, failure);
        ret = -1;
    }
    return ret;
}

/* Deletes the client nodes of @nodes (errors logged). */
static void
qemuMigrationSrcNBDDelNodes(virDomainObj *vm, GPtrArray *nodes)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    size_t i;

    if (!nodes || nodes->len == 0 || !virDomainObjIsActive(vm))
        return;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return;
    for (i = 0; i < nodes->len; i++) {
        const char *node = g_ptr_array_index(nodes, i);

        if (qemuMonitorJSONBlockdevDel(priv->mon, node) < 0)
            VIR_WARN("cannot delete the NBD client node %s: %s", node,
                     virGetLastErrorMessage());
    }
    ignore_value(qemuDomainObjExitMonitor(vm));
    g_ptr_array_set_size(nodes, 0);
}

int
qemuMigrationSrcNBDComplete(virDomainObj *vm, qemuMigrationNBDMirrors *mirrors)
{
    qemuDomainJobProgress *p = &QEMU_DOMAIN_PRIVATE(vm)->job.progress;
    int ret;

    if (!mirrors)
        return 0;
    ret = qemuMigrationSrcNBDEndJobs(vm, mirrors->targets, false);
    if (ret == 0) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        qemuMigrationSrcNBDDelNodes(vm, mirrors->nodes);
        virErrorRestore(&err);
        p->diskProcessed = p->diskTotal;
        p->diskRemaining = 0;
        VIR_INFO("Migration of '%s': the disk copies are complete", vm->def->name);
    }
    return ret;
}

void
qemuMigrationSrcNBDCancel(virDomainObj *vm, qemuMigrationNBDMirrors *mirrors)
{
    virErrorPtr err = NULL;

    if (!mirrors || !virDomainObjIsActive(vm))
        return;
    virErrorPreserveLast(&err);
    VIR_INFO("Migration of '%s': cancelling %u disk mirror(s)", vm->def->name,
             mirrors->targets->len);
    if (qemuMigrationSrcNBDEndJobs(vm, mirrors->targets, true) < 0)
        VIR_WARN("Migration of '%s': cancelling the disk mirrors: %s", vm->def->name,
                 virGetLastErrorMessage());
    qemuMigrationSrcNBDDelNodes(vm, mirrors->nodes);
    virErrorRestore(&err);
}

void
qemuMigrationSrcNBDRecover(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(qemuMigrationNBDMirrors) m = g_new0(qemuMigrationNBDMirrors, 1);
    qemuMonitorJobInfo *jobs = NULL;
    size_t njobs = 0;
    g_auto(GStrv) names = NULL;
    size_t i;
    int rc;

    m->targets = g_ptr_array_new_with_free_func(g_free);
    m->nodes = g_ptr_array_new_with_free_func(g_free);
    if (qemuMigrationNBDQueryJobs(vm, &jobs, &njobs) == 0) {
        for (i = 0; i < njobs; i++) {
            if (STRPREFIX(jobs[i].id, QEMU_MIGRATION_NBD_PREFIX) &&
                STREQ_NULLABLE(jobs[i].type, "mirror"))
                g_ptr_array_add(m->targets,
                                g_strdup(jobs[i].id + strlen(QEMU_MIGRATION_NBD_PREFIX)));
        }
        qemuMonitorJobInfoFree(jobs, njobs);
    }
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return;
    rc = qemuMonitorJSONQueryNamedBlockNodeNames(priv->mon, &names);
    if (qemuDomainObjExitMonitor(vm) < 0)
        return;
    for (i = 0; rc == 0 && names[i]; i++) {
        if (STRPREFIX(names[i], QEMU_MIGRATION_NBD_PREFIX) &&
            g_str_has_suffix(names[i], QEMU_MIGRATION_NBD_NODE_SUFFIX))
            g_ptr_array_add(m->nodes, g_strdup(names[i]));
    }
    if (m->targets->len || m->nodes->len)
        VIR_WARN("Outgoing storage migration of '%s' was interrupted: cancelling %u mirror(s), deleting %u NBD node(s)",
                 vm->def->name, m->targets->len, m->nodes->len);
    qemuMigrationSrcNBDCancel(vm, m);
}

int
qemuMigrationSrcNBDSetSpeed(qemuMonitor *mon, unsigned long long speed)
{
    qemuMonitorJobInfo *jobs = NULL;
    size_t njobs = 0;
    size_t i;
    int ret = 0;

    if (qemuMonitorJSONQueryJobs(mon, &jobs, &njobs) < 0)
        return -1;
    for (i = 0; i < njobs && ret == 0; i++) {
        if (STRPREFIX(jobs[i].id, QEMU_MIGRATION_NBD_PREFIX) &&
            STREQ_NULLABLE(jobs[i].type, "mirror") &&
            STRNEQ(jobs[i].status, "concluded") && STRNEQ(jobs[i].status, "null"))
            ret = qemuMonitorJSONBlockJobSetSpeed(mon, jobs[i].id, speed);
    }
    qemuMonitorJobInfoFree(jobs, njobs);
    return ret;
}

void
qemuMigrationNBDHandleEvent(virDomainObj *vm)
{
    if (QEMU_DOMAIN_PRIVATE(vm)->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT)
        qemuDomainObjSignalAsyncJob(vm);
}
