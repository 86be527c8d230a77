/*
 * qemu_snapshot.c: memory dumps and snapshots (internal snapshots: create, list, revert, delete)
 *
 * Internal snapshots live inside the domain's qcow2 disks.  A running
 * domain is snapshotted by QEMU's own jobs (snapshot-save, snapshot-load,
 * snapshot-delete: disks and VM state), watched with query-jobs and the
 * JOB_STATUS_CHANGE event under the async job "snapshot" with the domain
 * unlocked between polls; a shut-off domain by `qemu-img snapshot` on
 * each disk.  The snapshot tree (libvirt's virDomainSnapshotObjList in
 * vm->snapshots) is kept as one XML file per snapshot in
 * SNAPSHOTDIR/DOMAIN/NAME.xml and read back the first time a domain's
 * snapshots are needed after the daemon started.
 *
 *   phases:  none -> [paused]  (the vCPUs stopped by us)
 *                 -> saving    (QEMU or qemu-img works on the disks)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <unistd.h>

#include "qemu_snapshot.h"
#include "qemu_dump.h"
#include "qemu_conf.h"
#include "qemu_domainjob.h"
#include "qemu_monitor.h"
#include "qemu_monitor_json.h"
#include "qemu_process.h"

#include "datatypes.h"
#include "domain_event.h"
#include "snapshot_conf.h"
#include "virdomainsnapshotobjlist.h"
#include "viraccessapicheck.h"
#include "vircommand.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "viruuid.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_snapshot");

/* how often a waiting snapshot job refreshes its progress (ms) */
#define QEMU_SNAPSHOT_POLL_MS 250

#define QEMU_SNAPSHOT_LIST_FLAGS \
    (VIR_DOMAIN_SNAPSHOT_LIST_ROOTS | \
     VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL | \
     VIR_DOMAIN_SNAPSHOT_FILTERS_ALL)

#define QEMU_SNAPSHOT_CHILDREN_FLAGS \
    (VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS | \
     VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL | \
     VIR_DOMAIN_SNAPSHOT_FILTERS_ALL)

typedef enum {
    QEMU_SNAPSHOT_OP_SAVE,
    QEMU_SNAPSHOT_OP_LOAD,
    QEMU_SNAPSHOT_OP_DELETE,
} qemuSnapshotOp;

/* ---------------------------------------------------------------------- */
/* Metadata on disk                                                       */
/* ---------------------------------------------------------------------- */

static char *
qemuSnapshotDomainDir(virDomainObj *vm)
{
    return g_build_filename(qemu_driver->paths.snapshotDir, vm->def->name, NULL);
}

static char *
qemuSnapshotMetadataFile(virDomainObj *vm, const char *name)
{
    g_autofree char *dir = qemuSnapshotDomainDir(vm);
    g_autofree char *file = g_strdup_printf("%s.xml", name);

    return g_build_filename(dir, file, NULL);
}

/* vm locked.  Writes the metadata of @snap (whether it is the current one
 * included). */
static int
qemuSnapshotWriteMetadata(virDomainObj *vm, virDomainMomentObj *snap)
{
    g_autofree char *dir = qemuSnapshotDomainDir(vm);
    g_autofree char *file = qemuSnapshotMetadataFile(vm, snap->def->name);
    g_autofree char *xml = NULL;
    char uuidstr[VIR_UUID_STRING_BUFLEN];
    unsigned int flags = VIR_DOMAIN_SNAPSHOT_FORMAT_SECURE |
                         VIR_DOMAIN_SNAPSHOT_FORMAT_INTERNAL;
    g_autoptr(GError) gerr = NULL;

    if (virDomainSnapshotGetCurrent(vm->snapshots) == snap)
        flags |= VIR_DOMAIN_SNAPSHOT_FORMAT_CURRENT;
    virUUIDFormat(vm->def->uuid, uuidstr);
    if (!(xml = virDomainSnapshotDefFormat(uuidstr, virDomainSnapshotObjGetDef(snap),
                                           qemu_driver->xmlopt, flags)))
        return -1;
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        virReportSystemError(errno, _("cannot create snapshot directory '%s'"), dir);
        return -1;
    }
    /* root's only: the definition inside keeps the graphics passwords */
    if (!g_file_set_contents_full(file, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                  0600, &gerr)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot write snapshot metadata '%s': %s"), file, gerr->message);
        return -1;
    }
    return 0;
}

static void
qemuSnapshotRemoveMetadata(virDomainObj *vm, const char *name)
{
    g_autofree char *file = qemuSnapshotMetadataFile(vm, name);
    g_autofree char *dir = qemuSnapshotDomainDir(vm);

    if (unlink(file) < 0 && errno != ENOENT)
        VIR_WARN("cannot remove snapshot metadata '%s': %s", file, g_strerror(errno));
    /* the directory goes with the last snapshot */
    ignore_value(rmdir(dir));
}

/* vm locked.  Makes @snap (or none) the current snapshot and rewrites the
 * files whose "current" mark changed. */
static void
qemuSnapshotSetCurrent(virDomainObj *vm, virDomainMomentObj *snap)
{
    virDomainMomentObj *old = virDomainSnapshotGetCurrent(vm->snapshots);

    virDomainSnapshotSetCurrent(vm->snapshots, snap);
    if (old && old != snap && qemuSnapshotWriteMetadata(vm, old) < 0)
        VIR_WARN("cannot update snapshot metadata of '%s': %s", old->def->name,
                 virGetLastErrorMessage());
    if (snap && qemuSnapshotWriteMetadata(vm, snap) < 0)
        VIR_WARN("cannot update snapshot metadata of '%s': %s", snap->def->name,
                 virGetLastErrorMessage());
}

/* vm locked.  Reads the domain's snapshot metadata the first time it is
 * needed.  A file that does not parse is logged and skipped. */
static void
qemuSnapshotLoad(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *dir = NULL;
    g_autoptr(GDir) d = NULL;
    virDomainMomentObj *current = NULL;
    const char *entry;

    if (priv->snapshotsLoaded)
        return;
    priv->snapshotsLoaded = true;
    dir = qemuSnapshotDomainDir(vm);
    if (!(d = g_dir_open(dir, 0, NULL)))
        return;

    while ((entry = g_dir_read_name(d))) {
        g_autofree char *file = NULL;
        g_autofree char *xml = NULL;
        g_autoptr(virDomainSnapshotDef) def = NULL;
        virDomainMomentObj *snap;
        bool cur = false;

        if (!g_str_has_suffix(entry, ".xml"))
            continue;
        file = g_build_filename(dir, entry, NULL);
        if (!g_file_get_contents(file, &xml, NULL, NULL)) {
            VIR_WARN("cannot read snapshot metadata '%s'", file);
            continue;
        }
        if (!(def = virDomainSnapshotDefParseString(xml, qemu_driver->xmlopt, NULL, &cur,
                                                    VIR_DOMAIN_SNAPSHOT_PARSE_REDEFINE |
                                                    VIR_DOMAIN_SNAPSHOT_PARSE_INTERNAL))) {
            VIR_WARN("skipping snapshot metadata '%s': %s", file,
                     virGetLastErrorMessage());
            continue;
        }
        if (virDomainSnapshotFindByName(vm->snapshots, def->parent.name)) {
            VIR_WARN("skipping duplicate snapshot metadata '%s'", file);
            continue;
        }
        if (!(snap = virDomainSnapshotAssignDef(vm->snapshots, &def)))
            continue;
        if (cur)
            current = snap;
    }
    if (virDomainSnapshotUpdateRelations(vm->snapshots) < 0)
        VIR_WARN("snapshots of domain '%s' do not form a tree", vm->def->name);
    virDomainSnapshotSetCurrent(vm->snapshots, current);
    VIR_DEBUG("loaded %d snapshots of domain '%s'",
              virDomainSnapshotObjListNum(vm->snapshots, NULL, 0), vm->def->name);
}

/* ---------------------------------------------------------------------- */
/* Lookups                                                                */
/* ---------------------------------------------------------------------- */

/* The domain, locked and referenced, its snapshots loaded. */
static virDomainObj *
qemuSnapshotDomObj(virDomainPtr dom)
{
    virDomainObj *vm;

    if ((vm = qemuDomainObjFromDomain(dom)))
        qemuSnapshotLoad(vm);
    return vm;
}

static virDomainMomentObj *
qemuSnapshotFind(virDomainObj *vm, const char *name)
{
    virDomainMomentObj *snap = virDomainSnapshotFindByName(vm->snapshots, name);

    if (!snap)
        virReportError(VIR_ERR_NO_DOMAIN_SNAPSHOT,
                       _("no domain snapshot with matching name '%s'"), name);
    return snap;
}

/* ---------------------------------------------------------------------- */
/* Disks                                                                  */
/* ---------------------------------------------------------------------- */

/* After virDomainSnapshotAlignDisks: every disk taking part must be a
 * qcow2 file; read-only disks and CD-ROMs do not take part. */
static int
qemuSnapshotCheckDisks(virDomainSnapshotDef *def, virDomainDef *domdef)
{
    size_t n = 0;
    size_t i;

    for (i = 0; i < def->ndisks; i++) {
        virDomainSnapshotDiskDef *sd = &def->disks[i];
        virDomainDiskDef *disk = virDomainDiskByName(domdef, sd->name, false);

        if (!disk) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("no disk named '%s'"), sd->name);
            return -1;
        }
        if (sd->snapshot == VIR_DOMAIN_SNAPSHOT_LOCATION_NO)
            continue;
        if (disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM || disk->src->readonly) {
            sd->snapshot = VIR_DOMAIN_SNAPSHOT_LOCATION_NO;
            continue;
        }
        if (sd->snapshot != VIR_DOMAIN_SNAPSHOT_LOCATION_INTERNAL) {
            virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                           _("disk '%s': only internal snapshots are supported, not '%s'"),
                           sd->name, virDomainSnapshotLocationTypeToString(sd->snapshot));
            return -1;
        }
        if (virDomainDiskGetType(disk) != VIR_STORAGE_TYPE_FILE ||
            disk->src->format != VIR_STORAGE_FILE_QCOW2) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("internal snapshots need qcow2 disks: disk '%s' is '%s'"),
                           sd->name,
                           disk->src->format > 0 ?
                           virStorageFileFormatTypeToString(disk->src->format) :
                           virStorageTypeToString(virDomainDiskGetType(disk)));
            return -1;
        }
        n++;
    }
    if (n == 0) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("internal snapshots need at least one writable qcow2 disk"));
        return -1;
    }
    return 0;
}

/* The disks of @domdef that take part in @def. */
static GPtrArray *
qemuSnapshotDisks(virDomainSnapshotDef *def, virDomainDef *domdef)
{
    GPtrArray *disks = g_ptr_array_new();
    size_t i;

    for (i = 0; i < def->ndisks; i++) {
        virDomainDiskDef *disk;

        if (def->disks[i].snapshot != VIR_DOMAIN_SNAPSHOT_LOCATION_INTERNAL)
            continue;
        if (!(disk = virDomainDiskByName(domdef, def->disks[i].name, false))) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("disk '%s' of the snapshot is no longer in the domain"),
                           def->disks[i].name);
            g_ptr_array_free(disks, TRUE);
            return NULL;
        }
        g_ptr_array_add(disks, disk);
    }
    return disks;
}

/* Is the query-block entry @info the one of the device with alias @alias? */
static bool
qemuSnapshotBlockMatches(const qemuMonitorBlockInfo *info, const char *alias)
{
    g_autofree char *prefix = g_strdup_printf("/machine/peripheral/%s/", alias);

    if (!info->qdev)
        return false;
    return STREQ(info->qdev, alias) || STRPREFIX(info->qdev, prefix);
}

/* vm locked, snapshot job held: QEMU's format node name of each disk
 * taking part (NULL-terminated). */
static char **
qemuSnapshotNodeNames(virDomainObj *vm, virDomainSnapshotDef *def)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GPtrArray) disks = NULL;
    g_autoptr(GPtrArray) nodes = g_ptr_array_new_with_free_func(g_free);
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    size_t i;
    size_t j;
    int rc;

    if (!(disks = qemuSnapshotDisks(def, vm->def)))
        return NULL;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SNAPSHOT) < 0)
        return NULL;
    rc = qemuMonitorJSONQueryBlock(priv->mon, &info, &ninfo);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuMonitorBlockInfoFree(info, ninfo);
        return NULL;
    }

    for (i = 0; i < disks->len; i++) {
        virDomainDiskDef *disk = g_ptr_array_index(disks, i);
        const char *node = NULL;

        for (j = 0; j < ninfo && !node; j++) {
            if (!info[j].inserted || !info[j].nodeName)
                continue;
            if ((disk->info.alias && qemuSnapshotBlockMatches(&info[j], disk->info.alias)) ||
                (info[j].file && disk->src->path && STREQ(info[j].file, disk->src->path)))
                node = info[j].nodeName;
        }
        if (!node) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU does not report a block node for disk '%s'"), disk->dst);
            qemuMonitorBlockInfoFree(info, ninfo);
            return NULL;
        }
        g_ptr_array_add(nodes, g_strdup(node));
    }
    qemuMonitorBlockInfoFree(info, ninfo);
    g_ptr_array_add(nodes, NULL);
    return (char **) g_ptr_array_steal(nodes, NULL);
}

/* `qemu-img snapshot @op NAME PATH` on each disk taking part (the domain
 * is shut off).  @op: "-c", "-a" or "-d".  A creation is undone on the
 * disks done already when one fails. */
static int
qemuSnapshotQemuImg(virDomainSnapshotDef *def, virDomainDef *domdef, const char *op)
{
    g_autoptr(GPtrArray) disks = NULL;
    g_autofree char *qemuImg = virFindFileInPath("qemu-img");
    size_t i;

    if (!qemuImg) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("cannot find qemu-img, needed for snapshots of shut-off domains"));
        return -1;
    }
    if (!(disks = qemuSnapshotDisks(def, domdef)))
        return -1;

    for (i = 0; i < disks->len; i++) {
        virDomainDiskDef *disk = g_ptr_array_index(disks, i);
        g_autoptr(virCommand) cmd = NULL;
        g_autofree char *errbuf = NULL;
        int status = 0;

        cmd = virCommandNewArgList(qemuImg, "snapshot", op, def->parent.name,
                                   disk->src->path, NULL);
        virCommandSetErrorBuffer(cmd, &errbuf);
        if (virCommandRun(cmd, &status) < 0)
            return -1;
        if (status != 0) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("qemu-img snapshot %s '%s' failed on disk '%s' (%s): %s"),
                           op, def->parent.name, disk->dst, disk->src->path,
                           errbuf ? g_strstrip(errbuf) : "");
            if (STREQ(op, "-c")) {
                size_t k;

                for (k = 0; k < i; k++) {
                    virDomainDiskDef *done = g_ptr_array_index(disks, k);
                    g_autoptr(virCommand) undo = NULL;

                    undo = virCommandNewArgList(qemuImg, "snapshot", "-d",
                                                def->parent.name, done->src->path, NULL);
                    ignore_value(virCommandRun(undo, &status));
                }
            }
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* QEMU's snapshot jobs                                                   */
/* ---------------------------------------------------------------------- */

void
qemuSnapshotHandleEvent(virDomainObj *vm, const char *event, tdmJSONValue *data)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (STREQ(event, "DUMP_COMPLETED")) {
        qemuDumpHandleCompleted(vm, data);
    } else if (STREQ(event, "JOB_STATUS_CHANGE")) {
        if (priv->job.asyncJob == QEMU_ASYNC_JOB_SNAPSHOT)
            qemuDomainObjSignalAsyncJob(vm);
    }
}

/* vm locked, snapshot job held: waits (vm unlocked between polls) until
 * QEMU's job @jobId concluded, then dismisses it. */
static int
qemuSnapshotWaitJob(virDomainObj *vm, const char *jobId, const char *what)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    for (;;) {
        qemuMonitorJobInfo *jobs = NULL;
        size_t njobs = 0;
        qemuMonitorJobInfo *job = NULL;
        g_autofree char *error = NULL;
        bool concluded = false;
        size_t i;
        int rc;

        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("domain is no longer running: QEMU exited during the %s"),
                           what);
            return -1;
        }
        if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SNAPSHOT) < 0)
            return -1;
        rc = qemuMonitorJSONQueryJobs(priv->mon, &jobs, &njobs);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
            qemuMonitorJobInfoFree(jobs, njobs);
            return -1;
        }
        for (i = 0; i < njobs; i++) {
            if (STREQ(jobs[i].id, jobId))
                job = &jobs[i];
        }
        if (!job) {
            qemuMonitorJobInfoFree(jobs, njobs);
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU's %s job '%s' disappeared"), what, jobId);
            return -1;
        }
        priv->job.progress.dataTotal = job->progressTotal;
        priv->job.progress.dataProcessed = job->progressCurrent;
        priv->job.progress.dataRemaining = job->progressTotal > job->progressCurrent ?
                                           job->progressTotal - job->progressCurrent : 0;
        concluded = STREQ(job->status, "concluded");
        error = g_strdup(job->error);
        qemuMonitorJobInfoFree(jobs, njobs);

        if (concluded) {
            if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SNAPSHOT) < 0)
                return -1;
            rc = qemuMonitorJSONJobDismiss(priv->mon, jobId);
            if (qemuDomainObjExitMonitor(vm) < 0)
                return -1;
            if (rc < 0)
                VIR_WARN("cannot dismiss QEMU job '%s': %s", jobId,
                         virGetLastErrorMessage());
            if (error) {
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("QEMU's %s failed: %s"), what, error);
                return -1;
            }
            return 0;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_SNAPSHOT_POLL_MS) < 0)
            return -1;
    }
}

/* vm locked, snapshot job held: runs QEMU's snapshot-save/-load/-delete
 * for @def on the disks taking part and waits for it. */
static int
qemuSnapshotRunQEMUJob(virDomainObj *vm, virDomainSnapshotDef *def, qemuSnapshotOp op)
{
    static int counter;
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_auto(GStrv) nodes = NULL;
    g_autofree char *jobId = NULL;
    const char *const *devs;
    const char *what;
    int rc;

    if (!(nodes = qemuSnapshotNodeNames(vm, def)))
        return -1;
    devs = (const char *const *) nodes;
    if (!nodes[0]) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("internal snapshots need at least one writable qcow2 disk"));
        return -1;
    }
    jobId = g_strdup_printf("tandem-snapshot-%d", g_atomic_int_add(&counter, 1));

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SNAPSHOT) < 0)
        return -1;
    switch (op) {
    case QEMU_SNAPSHOT_OP_SAVE:
        what = _("snapshot save");
        rc = qemuMonitorJSONSnapshotSave(priv->mon, jobId, def->parent.name, nodes[0], devs);
        break;
    case QEMU_SNAPSHOT_OP_LOAD:
        what = _("snapshot load");
        rc = qemuMonitorJSONSnapshotLoad(priv->mon, jobId, def->parent.name, nodes[0], devs);
        break;
    case QEMU_SNAPSHOT_OP_DELETE:
    default:
        what = _("snapshot delete");
        rc = qemuMonitorJSONSnapshotDelete(priv->mon, jobId, def->parent.name, devs);
        break;
    }
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    return qemuSnapshotWaitJob(vm, jobId, what);
}

/* ---------------------------------------------------------------------- */
/* Jobs                                                                   */
/* ---------------------------------------------------------------------- */

/* vm locked.  The snapshot async job; QEMU's snapshot jobs cannot be
 * cancelled, so no abort beside it. */
static int
qemuSnapshotBeginJob(virDomainObj *vm, virDomainJobOperation op, unsigned int flags)
{
    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SNAPSHOT, op, flags) < 0)
        return -1;
    qemuDomainObjSetAsyncJobMask(vm, qemuDomainAsyncJobDefaultMask[QEMU_ASYNC_JOB_SNAPSHOT] &
                                 ~QEMU_JOB_MASK(QEMU_JOB_ABORT));
    QEMU_DOMAIN_PRIVATE(vm)->job.status = VIR_DOMAIN_JOB_UNBOUNDED;
    return 0;
}

static int
qemuSnapshotSetPhase(virDomainObj *vm, int phase)
{
    if (QEMU_DOMAIN_PRIVATE(vm)->job.phase >= phase)
        return 0;
    if (qemuDomainObjSetJobPhase(vm, phase) < 0)
        return -1;
    qemuDomainObjSaveStatus(qemu_driver, vm);
    return 0;
}

static void
qemuSnapshotEndJob(virDomainObj *vm, int ret)
{
    qemuDomainObjSetAsyncJobResult(vm, ret == 0 ? VIR_DOMAIN_JOB_COMPLETED
                                                : VIR_DOMAIN_JOB_FAILED,
                                   ret == 0 ? NULL : virGetLastErrorMessage());
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(qemu_driver, vm);
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(qemu_driver->domains, vm);
}

/* ---------------------------------------------------------------------- */
/* Create                                                                 */
/* ---------------------------------------------------------------------- */

/* vm locked, snapshot job held, domain running. */
static int
qemuSnapshotCreateActive(virDomainObj *vm, virDomainSnapshotDef *def, unsigned int flags)
{
    bool paused = false;
    int ret = -1;

    def->state = virDomainObjGetState(vm, NULL);
    if (def->memory == VIR_DOMAIN_SNAPSHOT_LOCATION_DEFAULT)
        def->memory = VIR_DOMAIN_SNAPSHOT_LOCATION_INTERNAL;
    if (def->memory != VIR_DOMAIN_SNAPSHOT_LOCATION_INTERNAL) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("internal snapshots of a running domain always include its memory"));
        return -1;
    }

    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_PAUSED) < 0 ||
        qemuDumpPauseDomain(vm, QEMU_ASYNC_JOB_SNAPSHOT, VIR_DOMAIN_PAUSED_SNAPSHOT,
                            &paused) < 0)
        return -1;
    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_SAVING) < 0)
        goto resume;
    VIR_INFO("Creating internal snapshot '%s' of running domain '%s'",
             def->parent.name, vm->def->name);
    if (qemuSnapshotRunQEMUJob(vm, def, QEMU_SNAPSHOT_OP_SAVE) < 0)
        goto resume;
    ret = 0;

    if (flags & VIR_DOMAIN_SNAPSHOT_CREATE_HALT) {
        qemuDumpStopDomain(vm, VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT,
                           VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT);
        return 0;
    }

 resume:
    if (paused && virDomainObjIsActive(vm)) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        if (qemuDumpResumeDomain(vm, QEMU_ASYNC_JOB_SNAPSHOT,
                                 VIR_DOMAIN_RUNNING_UNPAUSED) < 0 && ret == 0) {
            virFreeError(err);
            err = NULL;
            ret = -1;
        }
        virErrorRestore(&err);
    }
    return ret;
}

/* vm locked, snapshot job held, domain shut off. */
static int
qemuSnapshotCreateInactive(virDomainObj *vm, virDomainSnapshotDef *def)
{
    def->state = VIR_DOMAIN_SNAPSHOT_SHUTOFF;
    def->memory = VIR_DOMAIN_SNAPSHOT_LOCATION_NO;
    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_SAVING) < 0)
        return -1;
    VIR_INFO("Creating internal snapshot '%s' of shut-off domain '%s' with qemu-img",
             def->parent.name, vm->def->name);
    return qemuSnapshotQemuImg(def, vm->def, "-c");
}

static virDomainSnapshotPtr
qemuDomainSnapshotCreateXML(virDomainPtr dom, const char *xmlDesc, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    g_autoptr(virDomainSnapshotDef) def = NULL;
    virDomainSnapshotPtr result = NULL;
    unsigned int parseFlags = 0;
    g_autofree char *name = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE |
                  VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT |
                  VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
                  VIR_DOMAIN_SNAPSHOT_CREATE_HALT |
                  VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
                  VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT |
                  VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE |
                  VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
                  VIR_DOMAIN_SNAPSHOT_CREATE_LIVE |
                  VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE, NULL);

    if (!(vm = qemuSnapshotDomObj(dom)))
        return NULL;
    if (virDomainSnapshotCreateXMLEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;

    if (flags & (VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("redefining snapshot metadata is not supported"));
        goto cleanup;
    }
    if (flags & (VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("disk-only (external) snapshots are not supported: only internal snapshots of qcow2 disks"));
        goto cleanup;
    }
    if (flags & VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("quiesced snapshots are not supported"));
        goto cleanup;
    }
    if (flags & VIR_DOMAIN_SNAPSHOT_CREATE_LIVE) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("live snapshots are not supported: internal snapshots pause the guest"));
        goto cleanup;
    }

    if (flags & VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE)
        parseFlags |= VIR_DOMAIN_SNAPSHOT_PARSE_VALIDATE;
    if (!virDomainObjIsActive(vm))
        parseFlags |= VIR_DOMAIN_SNAPSHOT_PARSE_OFFLINE;
    if (!(def = virDomainSnapshotDefParseString(xmlDesc, driver->xmlopt, NULL, NULL,
                                                parseFlags)))
        goto cleanup;
    if (strchr(def->parent.name, '/') || def->parent.name[0] == '.' ||
        !def->parent.name[0]) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("invalid snapshot name '%s': it must not be empty, contain '/' or start with '.'"),
                       def->parent.name);
        goto cleanup;
    }
    if (virDomainSnapshotDefIsExternal(def)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("external snapshots are not supported: only internal snapshots of qcow2 disks"));
        goto cleanup;
    }

    if (qemuSnapshotBeginJob(vm, VIR_DOMAIN_JOB_OPERATION_SNAPSHOT, flags) < 0)
        goto cleanup;

    if (virDomainSnapshotFindByName(vm->snapshots, def->parent.name)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain snapshot '%s' already exists"), def->parent.name);
        goto endjob;
    }
    if (!(def->parent.dom = virDomainDefCopy(vm->def, driver->xmlopt, NULL, true)))
        goto endjob;
    if (virDomainObjIsActive(vm) && vm->newDef &&
        !(def->parent.inactiveDom = virDomainDefCopy(vm->newDef, driver->xmlopt,
                                                     NULL, true)))
        goto endjob;
    if (virDomainSnapshotAlignDisks(def, NULL, VIR_DOMAIN_SNAPSHOT_LOCATION_INTERNAL,
                                    true) < 0 ||
        qemuSnapshotCheckDisks(def, vm->def) < 0)
        goto endjob;

    if (virDomainObjIsActive(vm)) {
        if (qemuSnapshotCreateActive(vm, def, flags) < 0)
            goto endjob;
    } else {
        if (qemuSnapshotCreateInactive(vm, def) < 0)
            goto endjob;
    }

    name = g_strdup(def->parent.name);
    if (!(flags & VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA)) {
        virDomainMomentObj *current = virDomainSnapshotGetCurrent(vm->snapshots);
        virDomainMomentObj *snap;

        if (current)
            def->parent.parent_name = g_strdup(current->def->name);
        if (!(snap = virDomainSnapshotAssignDef(vm->snapshots, &def)))
            goto endjob;
        virDomainSnapshotLinkParent(vm->snapshots, snap);
        virDomainSnapshotSetCurrent(vm->snapshots, snap);
        if (qemuSnapshotWriteMetadata(vm, snap) < 0) {
            virDomainMomentDropParent(snap);
            virDomainSnapshotObjListRemove(vm->snapshots, snap);
            virDomainSnapshotSetCurrent(vm->snapshots, current);
            goto endjob;
        }
        /* the former current one loses its mark */
        if (current && qemuSnapshotWriteMetadata(vm, current) < 0)
            VIR_WARN("cannot update snapshot metadata of '%s': %s",
                     current->def->name, virGetLastErrorMessage());
    }
    result = virGetDomainSnapshot(dom, name);
    ret = result ? 0 : -1;

 endjob:
    qemuSnapshotEndJob(vm, ret);
 cleanup:
    virDomainObjEndAPI(&vm);
    return result;
}

/* ---------------------------------------------------------------------- */
/* Revert                                                                 */
/* ---------------------------------------------------------------------- */

/* vm locked, snapshot job held: the snapshot holds the guest's memory. */
static int
qemuSnapshotRevertMemory(virConnectPtr conn, virDomainObj *vm,
                         virDomainSnapshotDef *def, unsigned int flags)
{
    bool wantRunning = (flags & VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING) ||
                       (!(flags & VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED) &&
                        def->state == VIR_DOMAIN_SNAPSHOT_RUNNING);
    bool started = false;
    bool paused = false;

    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_PAUSED) < 0)
        return -1;
    if (!virDomainObjIsActive(vm)) {
        if (qemuProcessStart(conn, qemu_driver, vm, QEMU_ASYNC_JOB_SNAPSHOT,
                             QEMU_PROCESS_START_PAUSED) < 0)
            return -1;
        started = true;
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                   VIR_DOMAIN_EVENT_STARTED,
                                   VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT));
    } else if (qemuDumpPauseDomain(vm, QEMU_ASYNC_JOB_SNAPSHOT,
                                   VIR_DOMAIN_PAUSED_FROM_SNAPSHOT, &paused) < 0) {
        return -1;
    }

    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_SAVING) < 0 ||
        qemuSnapshotRunQEMUJob(vm, def, QEMU_SNAPSHOT_OP_LOAD) < 0) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        if (started) {
            qemuDumpStopDomain(vm, VIR_DOMAIN_SHUTOFF_FAILED,
                               VIR_DOMAIN_EVENT_STOPPED_FAILED);
        } else if (paused && virDomainObjIsActive(vm)) {
            ignore_value(qemuDumpResumeDomain(vm, QEMU_ASYNC_JOB_SNAPSHOT,
                                              VIR_DOMAIN_RUNNING_UNPAUSED));
        }
        virErrorRestore(&err);
        return -1;
    }

    if (wantRunning)
        return qemuDumpResumeDomain(vm, QEMU_ASYNC_JOB_SNAPSHOT,
                                    VIR_DOMAIN_RUNNING_FROM_SNAPSHOT);
    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_FROM_SNAPSHOT);
    qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                               VIR_DOMAIN_EVENT_SUSPENDED,
                               VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT));
    return 0;
}

/* vm locked, snapshot job held: a snapshot of a shut-off domain. */
static int
qemuSnapshotRevertDisks(virConnectPtr conn, virDomainObj *vm,
                        virDomainSnapshotDef *def, unsigned int flags)
{
    if (virDomainObjIsActive(vm))
        qemuDumpStopDomain(vm, VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT,
                           VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT);
    if (virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("cannot stop the domain to revert its disks"));
        return -1;
    }
    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_SAVING) < 0 ||
        qemuSnapshotQemuImg(def, vm->def, "-a") < 0)
        return -1;

    if (flags & (VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING | VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)) {
        bool pausedStart = !!(flags & VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED);

        if (qemuProcessStart(conn, qemu_driver, vm, QEMU_ASYNC_JOB_SNAPSHOT,
                             pausedStart ? QEMU_PROCESS_START_PAUSED : 0) < 0)
            return -1;
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                   VIR_DOMAIN_EVENT_STARTED,
                                   VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT));
        if (pausedStart) {
            virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_FROM_SNAPSHOT);
            qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                       VIR_DOMAIN_EVENT_SUSPENDED,
                                       VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT));
        } else {
            virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_FROM_SNAPSHOT);
        }
    } else {
        virDomainObjSetState(vm, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT);
    }
    return 0;
}

static int
qemuDomainRevertToSnapshot(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    virDomainSnapshotDef *def;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING |
                  VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED |
                  VIR_DOMAIN_SNAPSHOT_REVERT_FORCE, -1);

    if ((flags & VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING) &&
        (flags & VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("--running and --paused are mutually exclusive"));
        return -1;
    }
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainRevertToSnapshotEnsureACL(snapshot->domain->conn, vm->def) < 0)
        goto cleanup;
    if (qemuSnapshotBeginJob(vm, VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT, flags) < 0)
        goto cleanup;

    if (!(snap = qemuSnapshotFind(vm, snapshot->name)))
        goto endjob;
    def = virDomainSnapshotObjGetDef(snap);
    if (virDomainSnapshotIsExternal(snap) ||
        def->state == VIR_DOMAIN_SNAPSHOT_DISK_SNAPSHOT) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("cannot revert to snapshot '%s': only internal snapshots are supported"),
                       snapshot->name);
        goto endjob;
    }

    VIR_INFO("Reverting domain '%s' to snapshot '%s' (state %s)", vm->def->name,
             snapshot->name, virDomainSnapshotStateTypeToString(def->state));
    if (def->state == VIR_DOMAIN_SNAPSHOT_RUNNING ||
        def->state == VIR_DOMAIN_SNAPSHOT_PAUSED) {
        if (qemuSnapshotRevertMemory(snapshot->domain->conn, vm, def, flags) < 0)
            goto endjob;
    } else {
        if (qemuSnapshotRevertDisks(snapshot->domain->conn, vm, def, flags) < 0)
            goto endjob;
    }
    snapshot->domain->id = vm->def->id;
    qemuSnapshotSetCurrent(vm, snap);
    ret = 0;

 endjob:
    qemuSnapshotEndJob(vm, ret);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Delete                                                                 */
/* ---------------------------------------------------------------------- */

static int
qemuSnapshotCollect(void *payload, const char *name G_GNUC_UNUSED, void *opaque)
{
    g_ptr_array_add(opaque, payload);
    return 0;
}

/* vm locked.  Forgets @snap (a leaf unless @reparent: then its children
 * move to its parent).  @snap is freed. */
static void
qemuSnapshotDiscardMetadata(virDomainObj *vm, virDomainMomentObj *snap)
{
    virDomainMomentObj *current = virDomainSnapshotGetCurrent(vm->snapshots);
    virDomainMomentObj *parent = NULL;
    virDomainMomentObj *child;
    g_autofree char *name = g_strdup(snap->def->name);

    if (snap->def->parent_name)
        parent = virDomainSnapshotFindByName(vm->snapshots, snap->def->parent_name);

    for (child = snap->first_child; child; child = child->sibling) {
        g_free(child->def->parent_name);
        child->def->parent_name = g_strdup(snap->def->parent_name);
        if (qemuSnapshotWriteMetadata(vm, child) < 0)
            VIR_WARN("cannot update snapshot metadata of '%s': %s",
                     child->def->name, virGetLastErrorMessage());
    }
    if (snap->parent)
        virDomainMomentMoveChildren(snap, snap->parent);
    virDomainMomentDropParent(snap);
    virDomainSnapshotObjListRemove(vm->snapshots, snap);
    qemuSnapshotRemoveMetadata(vm, name);
    if (current == snap)
        qemuSnapshotSetCurrent(vm, parent);
}

static int
qemuDomainSnapshotDelete(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    g_autoptr(GPtrArray) victims = g_ptr_array_new();
    g_auto(GStrv) names = NULL;
    size_t i;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN |
                  VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY |
                  VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY, -1);

    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainSnapshotDeleteEnsureACL(snapshot->domain->conn, vm->def) < 0)
        goto cleanup;
    if (qemuSnapshotBeginJob(vm, VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_DELETE, flags) < 0)
        goto cleanup;
    if (!(snap = qemuSnapshotFind(vm, snapshot->name)))
        goto endjob;

    /* parents before children; deleted in the reverse order */
    if (!(flags & VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY))
        g_ptr_array_add(victims, snap);
    if (flags & (VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN |
                 VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY))
        virDomainMomentForEachDescendant(snap, qemuSnapshotCollect, victims);
    names = g_new0(char *, victims->len + 1);
    for (i = 0; i < victims->len; i++)
        names[i] = g_strdup(((virDomainMomentObj *) g_ptr_array_index(victims, i))->def->name);

    if (qemuSnapshotSetPhase(vm, QEMU_SNAPSHOT_PHASE_SAVING) < 0)
        goto endjob;
    for (i = victims->len; i > 0; i--) {
        virDomainMomentObj *victim = virDomainSnapshotFindByName(vm->snapshots,
                                                                 names[i - 1]);
        virDomainSnapshotDef *def;

        if (!victim)
            continue;
        def = virDomainSnapshotObjGetDef(victim);
        if (!(flags & VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY) &&
            !virDomainSnapshotIsExternal(victim)) {
            int rc;

            VIR_INFO("Deleting internal snapshot '%s' of domain '%s'",
                     names[i - 1], vm->def->name);
            if (virDomainObjIsActive(vm))
                rc = qemuSnapshotRunQEMUJob(vm, def, QEMU_SNAPSHOT_OP_DELETE);
            else
                rc = qemuSnapshotQemuImg(def, vm->def, "-d");
            if (rc < 0)
                goto endjob;
        }
        qemuSnapshotDiscardMetadata(vm, victim);
    }
    ret = 0;

 endjob:
    qemuSnapshotEndJob(vm, ret);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Queries (domain lock only: no job, answered beside any long job)       */
/* ---------------------------------------------------------------------- */

static int
qemuDomainSnapshotNum(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    int n = -1;

    virCheckFlags(QEMU_SNAPSHOT_LIST_FLAGS, -1);
    if (!(vm = qemuSnapshotDomObj(dom)))
        return -1;
    if (virDomainSnapshotNumEnsureACL(dom->conn, vm->def) == 0)
        n = virDomainSnapshotObjListNum(vm->snapshots, NULL, flags);
    virDomainObjEndAPI(&vm);
    return n;
}

static int
qemuDomainSnapshotListNames(virDomainPtr dom, char **names, int nameslen,
                            unsigned int flags)
{
    virDomainObj *vm;
    int n = -1;

    virCheckFlags(QEMU_SNAPSHOT_LIST_FLAGS, -1);
    if (!(vm = qemuSnapshotDomObj(dom)))
        return -1;
    if (virDomainSnapshotListNamesEnsureACL(dom->conn, vm->def) == 0)
        n = virDomainSnapshotObjListGetNames(vm->snapshots, NULL, names, nameslen, flags);
    virDomainObjEndAPI(&vm);
    return n;
}

static int
qemuDomainListAllSnapshots(virDomainPtr dom, virDomainSnapshotPtr **snaps,
                           unsigned int flags)
{
    virDomainObj *vm;
    int n = -1;

    virCheckFlags(QEMU_SNAPSHOT_LIST_FLAGS, -1);
    if (!(vm = qemuSnapshotDomObj(dom)))
        return -1;
    if (virDomainListAllSnapshotsEnsureACL(dom->conn, vm->def) == 0)
        n = virDomainListSnapshots(vm->snapshots, NULL, dom, snaps, flags);
    virDomainObjEndAPI(&vm);
    return n;
}

static int
qemuDomainSnapshotNumChildren(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    int n = -1;

    virCheckFlags(QEMU_SNAPSHOT_CHILDREN_FLAGS, -1);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainSnapshotNumChildrenEnsureACL(snapshot->domain->conn, vm->def) == 0 &&
        (snap = qemuSnapshotFind(vm, snapshot->name)))
        n = virDomainSnapshotObjListNum(vm->snapshots, snap, flags);
    virDomainObjEndAPI(&vm);
    return n;
}

static int
qemuDomainSnapshotListChildrenNames(virDomainSnapshotPtr snapshot, char **names,
                                    int nameslen, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    int n = -1;

    virCheckFlags(QEMU_SNAPSHOT_CHILDREN_FLAGS, -1);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainSnapshotListChildrenNamesEnsureACL(snapshot->domain->conn, vm->def) == 0 &&
        (snap = qemuSnapshotFind(vm, snapshot->name)))
        n = virDomainSnapshotObjListGetNames(vm->snapshots, snap, names, nameslen, flags);
    virDomainObjEndAPI(&vm);
    return n;
}

static int
qemuDomainSnapshotListAllChildren(virDomainSnapshotPtr snapshot,
                                  virDomainSnapshotPtr **snaps, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    int n = -1;

    virCheckFlags(QEMU_SNAPSHOT_CHILDREN_FLAGS, -1);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainSnapshotListAllChildrenEnsureACL(snapshot->domain->conn, vm->def) == 0 &&
        (snap = qemuSnapshotFind(vm, snapshot->name)))
        n = virDomainListSnapshots(vm->snapshots, snap, snapshot->domain, snaps, flags);
    virDomainObjEndAPI(&vm);
    return n;
}

static virDomainSnapshotPtr
qemuDomainSnapshotLookupByName(virDomainPtr dom, const char *name, unsigned int flags)
{
    virDomainObj *vm;
    virDomainSnapshotPtr ret = NULL;

    virCheckFlags(0, NULL);
    if (!(vm = qemuSnapshotDomObj(dom)))
        return NULL;
    if (virDomainSnapshotLookupByNameEnsureACL(dom->conn, vm->def) == 0 &&
        qemuSnapshotFind(vm, name))
        ret = virGetDomainSnapshot(dom, name);
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainHasCurrentSnapshot(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuSnapshotDomObj(dom)))
        return -1;
    if (virDomainHasCurrentSnapshotEnsureACL(dom->conn, vm->def) == 0)
        ret = virDomainSnapshotGetCurrent(vm->snapshots) != NULL;
    virDomainObjEndAPI(&vm);
    return ret;
}

static virDomainSnapshotPtr
qemuDomainSnapshotGetParent(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    virDomainSnapshotPtr ret = NULL;

    virCheckFlags(0, NULL);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return NULL;
    if (virDomainSnapshotGetParentEnsureACL(snapshot->domain->conn, vm->def) < 0 ||
        !(snap = qemuSnapshotFind(vm, snapshot->name)))
        goto cleanup;
    if (!snap->def->parent_name) {
        virReportError(VIR_ERR_NO_DOMAIN_SNAPSHOT,
                       _("snapshot '%s' does not have a parent"), snap->def->name);
        goto cleanup;
    }
    ret = virGetDomainSnapshot(snapshot->domain, snap->def->parent_name);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static virDomainSnapshotPtr
qemuDomainSnapshotCurrent(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    const char *name;
    virDomainSnapshotPtr ret = NULL;

    virCheckFlags(0, NULL);
    if (!(vm = qemuSnapshotDomObj(dom)))
        return NULL;
    if (virDomainSnapshotCurrentEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (!(name = virDomainSnapshotGetCurrentName(vm->snapshots))) {
        virReportError(VIR_ERR_NO_DOMAIN_SNAPSHOT, "%s",
                       _("the domain does not have a current snapshot"));
        goto cleanup;
    }
    ret = virGetDomainSnapshot(dom, name);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static char *
qemuDomainSnapshotGetXMLDesc(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    char uuidstr[VIR_UUID_STRING_BUFLEN];
    char *xml = NULL;

    virCheckFlags(VIR_DOMAIN_SNAPSHOT_XML_SECURE, NULL);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return NULL;
    if (virDomainSnapshotGetXMLDescEnsureACL(snapshot->domain->conn, vm->def, flags) == 0 &&
        (snap = qemuSnapshotFind(vm, snapshot->name))) {
        virUUIDFormat(snapshot->domain->uuid, uuidstr);
        xml = virDomainSnapshotDefFormat(uuidstr, virDomainSnapshotObjGetDef(snap),
                                         qemu_driver->xmlopt,
                                         virDomainSnapshotFormatConvertXMLFlags(flags));
    }
    virDomainObjEndAPI(&vm);
    return xml;
}

static int
qemuDomainSnapshotIsCurrent(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    virDomainMomentObj *snap;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainSnapshotIsCurrentEnsureACL(snapshot->domain->conn, vm->def) == 0 &&
        (snap = qemuSnapshotFind(vm, snapshot->name)))
        ret = virDomainSnapshotGetCurrent(vm->snapshots) == snap;
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSnapshotHasMetadata(virDomainSnapshotPtr snapshot, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuSnapshotDomObj(snapshot->domain)))
        return -1;
    if (virDomainSnapshotHasMetadataEnsureACL(snapshot->domain->conn, vm->def) == 0 &&
        qemuSnapshotFind(vm, snapshot->name))
        ret = 1;
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Undefine                                                               */
/* ---------------------------------------------------------------------- */

int
qemuSnapshotPrepareUndefine(virDomainObj *vm, unsigned int flags)
{
    int n;
    g_autofree char *dir = NULL;

    qemuSnapshotLoad(vm);
    n = virDomainSnapshotObjListNum(vm->snapshots, NULL, 0);
    if (n == 0)
        return 0;
    if (!(flags & VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot undefine domain '%s' with %d snapshots: use --snapshots-metadata to remove their metadata"),
                       vm->def->name, n);
        return -1;
    }
    if (virDomainObjIsActive(vm))
        return 0;     /* the running domain keeps them until it stops */
    virDomainSnapshotObjListRemoveAll(vm->snapshots);
    dir = qemuSnapshotDomainDir(vm);
    if (virFileDeleteTree(dir) < 0)
        return -1;
    return 0;
}

void
qemuSnapshotRegister(virHypervisorDriver *driver)
{
    qemuDumpRegister(driver);
    driver->domainSnapshotCreateXML = qemuDomainSnapshotCreateXML;
    driver->domainSnapshotGetXMLDesc = qemuDomainSnapshotGetXMLDesc;
    driver->domainSnapshotNum = qemuDomainSnapshotNum;
    driver->domainSnapshotListNames = qemuDomainSnapshotListNames;
    driver->domainListAllSnapshots = qemuDomainListAllSnapshots;
    driver->domainSnapshotNumChildren = qemuDomainSnapshotNumChildren;
    driver->domainSnapshotListChildrenNames = qemuDomainSnapshotListChildrenNames;
    driver->domainSnapshotListAllChildren = qemuDomainSnapshotListAllChildren;
    driver->domainSnapshotLookupByName = qemuDomainSnapshotLookupByName;
    driver->domainHasCurrentSnapshot = qemuDomainHasCurrentSnapshot;
    driver->domainSnapshotGetParent = qemuDomainSnapshotGetParent;
    driver->domainSnapshotCurrent = qemuDomainSnapshotCurrent;
    driver->domainSnapshotIsCurrent = qemuDomainSnapshotIsCurrent;
    driver->domainSnapshotHasMetadata = qemuDomainSnapshotHasMetadata;
    driver->domainRevertToSnapshot = qemuDomainRevertToSnapshot;
    driver->domainSnapshotDelete = qemuDomainSnapshotDelete;
}
