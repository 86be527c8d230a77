/*
 * qemu_save.c: save, restore and managed save of running domains, through
 * Tandem's own save image format (qemu_saveimage.h)
 *
 * Save: the async job "save" pauses the guest, Tandem listens on a unix
 * socket in the domain's private directory, QEMU migrates to it and a
 * thread of Tandem's copies the stream behind the image header.  Restore:
 * QEMU starts with -incoming defer, listens on a unix socket, and a thread
 * feeds it the stream from the image.  The copy threads never take the
 * domain lock; the job waits for QEMU with the domain lock released, so
 * queries, domjobinfo and domjobabort keep working.  Images are written to
 * a temporary file and renamed into place when complete: a failed or
 * aborted save leaves nothing behind, a corrupt image is refused before
 * anything changes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <sys/stat.h>
#include <unistd.h>

#include "qemu_save.h"
#include "qemu_saveimage.h"
#include "qemu_conf.h"
#include "qemu_domain.h"
#include "qemu_domain_parse.h"
#include "qemu_domainjob.h"
#include "qemu_monitor.h"
#include "qemu_monitor_json.h"
#include "qemu_process.h"

#include "datatypes.h"
#include "domain_event.h"
#include "viraccessapicheck.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virtypedparam.h"
#include "viruuid.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_save");

/* how often a waiting save or restore refreshes its progress (ms) */
#define QEMU_SAVE_POLL_MS 250
/* how long the copy thread may take to see the end of the stream once QEMU
 * reports the migration completed (ms) */
#define QEMU_SAVE_STREAM_END_MS 30000

static char *
qemuSaveManagedPath(virQEMUDriver *driver, virDomainObj *vm)
{
    return g_strdup_printf("%s/%s.save", driver->paths.saveDir, vm->def->name);
}

static int
qemuSaveCheckRunPausedFlags(unsigned int flags, unsigned int runningFlag,
                            unsigned int pausedFlag)
{
    if ((flags & runningFlag) && (flags & pausedFlag)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("running and paused flags are mutually exclusive"));
        return -1;
    }
    return 0;
}

/* A QMP command built by the caller, under the async job's nested job. */
static int
qemuSaveMonitorCommand(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                       tdmJSONValue **cmd, const char *name)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(tdmJSONValue) reply = NULL;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0) {
        g_clear_pointer(cmd, tdmJSONValueFree);
        return -1;
    }
    rc = qemuMonitorSendCommand(priv->mon, cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, &reply);
    if (rc == 0)
        rc = qemuMonitorReplyCheckError(name, reply);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    return 0;
}

/* MIGRATION events wake the waiting job sooner than its poll. */
static int
qemuSaveEnableMigrationEvents(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    g_autoptr(tdmJSONValue) caps = tdmJSONValueNewArray();
    g_autoptr(tdmJSONValue) cap = NULL;
    g_autoptr(tdmJSONValue) args = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (tdmJSONValueObjectCreate(&cap, "s:capability", "events", "b:state", true, NULL) < 0 ||
        tdmJSONValueArrayAppend(caps, &cap) < 0 ||
        tdmJSONValueObjectCreate(&args, "a:capabilities", &caps, NULL) < 0)
        return -1;
    cmd = tdmJSONCommandBuildArgs("migrate-set-capabilities", &args);
    return qemuSaveMonitorCommand(vm, asyncJob, &cmd, "migrate-set-capabilities");
}

static int
qemuSaveSetJobPhase(virQEMUDriver *driver, virDomainObj *vm, int phase)
{
    if (qemuDomainObjSetJobPhase(vm, phase) < 0)
        return -1;
    qemuDomainObjSaveStatus(driver, vm);
    return 0;
}

/* The owner of the domain's private directory: QEMU's user. */
static void
qemuSaveGetQEMUUser(virDomainObj *vm, uid_t *uid, gid_t *gid)
{
    struct stat sb;

    *uid = (uid_t) -1;
    *gid = (gid_t) -1;
    if (QEMU_DOMAIN_PRIVATE(vm)->libDir &&
        stat(QEMU_DOMAIN_PRIVATE(vm)->libDir, &sb) == 0) {
        *uid = sb.st_uid;
        *gid = sb.st_gid;
    }
}

/* QEMU's view of the migration into the job's progress; the stream bytes
 * the copy thread moved count as the data processed. */
static void
qemuSaveUpdateProgress(virDomainObj *vm,
                       const qemuMonitorMigrationStats *st,
                       unsigned long long streamBytes)
{
    qemuDomainJobProgress *p = &QEMU_DOMAIN_PRIVATE(vm)->job.progress;

    if (st && st->haveRam) {
        p->memTotal = st->ramTotal;
        p->memProcessed = st->ramTransferred;
        p->memRemaining = st->ramRemaining;
        p->memConstant = st->ramDuplicate;
        p->memNormal = st->ramNormal;
        p->memNormalBytes = st->ramNormalBytes;
        p->memPageSize = st->ramPageSize;
        p->memIteration = st->ramIteration;
        p->memBps = (unsigned long long) (st->ramMbps * 1000 * 1000 / 8);
        p->setupTime = st->setupTime;
    }
    p->dataProcessed = streamBytes;
    p->dataTotal = MAX(p->memTotal, streamBytes);
    p->dataRemaining = p->memRemaining;
}

/* Waits (domain unlocked between polls) until QEMU's outgoing or incoming
 * migration through @stream is over.  Saving, an abort request or a broken
 * copy thread cancel QEMU's migration.  0: QEMU completed. */
static int
qemuSaveWaitMigration(virQEMUDriver *driver,
                      virDomainObj *vm,
                      qemuDomainAsyncJob asyncJob,
                      qemuSaveImageStream *stream,
                      bool outgoing)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long deadline = 0;
    bool cancelSent = false;

    for (;;) {
        qemuMonitorMigrationStats st = { 0 };
        bool streamFailed = false;
        bool streamDone = qemuSaveImageStreamDone(stream, &streamFailed);
        int rc;

        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                           outgoing ? _("domain is no longer running: QEMU exited during the save")
                                    : _("domain is no longer running: QEMU exited during the restore"));
            return -1;
        }
        if (outgoing && !cancelSent &&
            (qemuDomainObjAsyncJobAbortRequested(vm) || streamFailed)) {
            VIR_INFO("Cancelling the save of '%s' (%s)", vm->def->name,
                     streamFailed ? "the copy thread failed" : "abort requested");
            if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
                return -1;
            rc = qemuMonitorJSONMigrateCancel(priv->mon);
            if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
                return -1;
            cancelSent = true;
        }

        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            return -1;
        rc = qemuMonitorJSONQueryMigrate(priv->mon, &st);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
            qemuMonitorMigrationStatsClear(&st);
            return -1;
        }
        qemuSaveUpdateProgress(vm, outgoing ? &st : NULL,
                               qemuSaveImageStreamBytes(stream));

        switch ((qemuMonitorMigrationStatus) st.status) {
        case QEMU_MONITOR_MIGRATION_STATUS_COMPLETED:
            qemuMonitorMigrationStatsClear(&st);
            return 0;
        case QEMU_MONITOR_MIGRATION_STATUS_CANCELLED:
        case QEMU_MONITOR_MIGRATION_STATUS_ERROR:
            /* the copy thread may have failed since the loop began (a full
             * disk): QEMU's error is then only its closed socket */
            ignore_value(qemuSaveImageStreamDone(stream, &streamFailed));
            if (qemuDomainObjAsyncJobAbortRequested(vm)) {
                virReportError(VIR_ERR_OPERATION_ABORTED, "%s",
                               _("save job: canceled by client"));
            } else if (streamFailed) {
                /* the copy thread's reason is the real one */
                virObjectUnlock(vm);
                qemuSaveImageStreamFinish(stream, 0);
                virObjectLock(vm);
            } else {
                virReportError(VIR_ERR_OPERATION_FAILED,
                               outgoing ? _("QEMU could not save the domain: %s")
                                        : _("QEMU could not load the save image: %s"),
                               st.errorDesc ? st.errorDesc :
                               qemuMonitorMigrationStatusTypeToString(st.status));
            }
            qemuMonitorMigrationStatsClear(&st);
            return -1;
        default:
            break;
        }
        qemuMonitorMigrationStatsClear(&st);

        /* restore: once every byte is fed, QEMU has a bounded time to
         * finish loading */
        if (!outgoing && streamDone) {
            if (streamFailed) {
                virObjectUnlock(vm);
                qemuSaveImageStreamFinish(stream, 0);
                virObjectLock(vm);
                return -1;
            }
            if (!deadline)
                deadline = g_get_real_time() / 1000 +
                           driver->config->monitorTimeoutLong * 1000ULL;
            else if ((unsigned long long) (g_get_real_time() / 1000) > deadline) {
                virReportError(VIR_ERR_OPERATION_TIMEOUT, "%s",
                               _("QEMU did not finish loading the save image in time"));
                return -1;
            }
        }

        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_SAVE_POLL_MS) < 0)
            return -1;
    }
}

/* ---------------------------------------------------------------------- */
/* Save                                                                   */
/* ---------------------------------------------------------------------- */

/* vm locked, no job.  Saves the running domain into @path and stops it.
 * @managed: the managed save image (the domain remembers it).  On failure
 * the domain runs on as before and @path is untouched. */
static int
qemuSaveDomain(virQEMUDriver *driver,
               virDomainObj *vm,
               const char *path,
               const char *dxml,
               unsigned int flags,
               bool managed)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(virDomainDef) altDef = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *tmpPath = NULL;
    g_autofree char *sockPath = NULL;
    g_autofree char *uri = NULL;
    qemuSaveImageStream *stream = NULL;
    unsigned long long dataOffset = 0;
    unsigned long long bytes = 0;
    unsigned int imgFlags = 0;
    bool wasRunning;
    bool paused = false;
    int fd = -1;
    int rc;
    int ret = -1;

    if (qemuSaveCheckRunPausedFlags(flags, VIR_DOMAIN_SAVE_RUNNING,
                                    VIR_DOMAIN_SAVE_PAUSED) < 0)
        return -1;
    if (virDomainObjCheckActive(vm) < 0)
        return -1;
    if (managed && !vm->persistent) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("cannot do managed save for transient domain"));
        return -1;
    }
    if (flags & VIR_DOMAIN_SAVE_BYPASS_CACHE)
        VIR_INFO("Saving '%s': bypass-cache is accepted and has no effect here",
                 vm->def->name);

    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SAVE,
                                   VIR_DOMAIN_JOB_OPERATION_SAVE, flags) < 0)
        return -1;
    if (virDomainObjCheckActive(vm) < 0)
        goto endjob;
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;

    if (dxml) {
        if (!(altDef = qemuDomainDefParseString(dxml, driver->xmlopt,
                                               VIR_DOMAIN_DEF_PARSE_INACTIVE)))
            goto endjob;
        if (!virDomainDefCheckABIStability(vm->def, altDef, driver->xmlopt))
            goto endjob;
    }
    /* the image's definition must not name this run's private directory
     * (the restored QEMU gets another one) */
    if (!altDef && !(altDef = virDomainDefCopy(vm->def, driver->xmlopt, NULL, true)))
        goto endjob;
    qemuDomainDefDropPrivatePaths(altDef, priv->libDir);
    if (!(xml = virDomainDefFormat(altDef, driver->xmlopt,
                                   VIR_DOMAIN_DEF_FORMAT_SECURE |
                                   VIR_DOMAIN_DEF_FORMAT_MIGRATABLE)))
        goto endjob;

    wasRunning = virDomainObjGetState(vm, NULL) == VIR_DOMAIN_RUNNING;
    if ((wasRunning && !(flags & VIR_DOMAIN_SAVE_PAUSED)) ||
        (flags & VIR_DOMAIN_SAVE_RUNNING))
        imgFlags |= QEMU_SAVE_IMAGE_FLAG_RUNNING;

    /* file I/O: never with the domain locked */
    virObjectUnlock(vm);
    fd = qemuSaveImageCreate(path, xml, imgFlags, &tmpPath, &dataOffset);
    virObjectLock(vm);
    if (fd < 0)
        goto endjob;
    /* recorded in the status: a daemon restart removes it (qemuSaveRecover) */
    priv->saveTmpPath = g_strdup(tmpPath);
    if (virDomainObjCheckActive(vm) < 0)
        goto error;

    /* the guest stops while its state is written: the image is one
     * consistent moment */
    if (wasRunning) {
        priv->pausedReason = VIR_DOMAIN_PAUSED_SAVE;
        if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SAVE) < 0)
            goto error;
        rc = qemuMonitorJSONStopCPUs(priv->mon);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto error;
        paused = true;
        /* the STOP event may not have been handled yet */
        if (virDomainObjGetState(vm, NULL) == VIR_DOMAIN_RUNNING) {
            priv->pausedReason = 0;
            virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_SAVE);
            qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                   VIR_DOMAIN_EVENT_SUSPENDED,
                                   VIR_DOMAIN_EVENT_SUSPENDED_PAUSED));
        }
    }
    if (qemuSaveSetJobPhase(driver, vm, QEMU_SAVE_PHASE_PAUSED) < 0)
        goto error;

    if (qemuSaveEnableMigrationEvents(vm, QEMU_ASYNC_JOB_SAVE) < 0)
        goto error;
    {
        g_autoptr(tdmJSONValue) args = tdmJSONValueNewObject();
        g_autoptr(tdmJSONValue) cmd = NULL;

        /* migrate-setspeed applies to saves as well */
        if (tdmJSONValueObjectSetNumberULLong(args, "max-bandwidth",
                                              priv->migMaxBandwidth ?
                                              priv->migMaxBandwidth * 1024ULL * 1024ULL :
                                              (unsigned long long) G_MAXINT64) < 0)
            goto error;
        cmd = tdmJSONCommandBuildArgs("migrate-set-parameters", &args);
        if (qemuSaveMonitorCommand(vm, QEMU_ASYNC_JOB_SAVE, &cmd,
                                   "migrate-set-parameters") < 0)
            goto error;
    }

    {
        uid_t uid;
        gid_t gid;

        qemuSaveGetQEMUUser(vm, &uid, &gid);
        sockPath = g_build_filename(priv->libDir, "save.sock", NULL);
        if (!(stream = qemuSaveImageStreamListen(sockPath, uid, gid, fd, dataOffset)))
            goto error;
    }
    if (qemuSaveSetJobPhase(driver, vm, QEMU_SAVE_PHASE_WRITING) < 0)
        goto error;

    memset(&priv->job.progress, 0, sizeof(priv->job.progress));
    uri = g_strdup_printf("unix:%s", sockPath);
    VIR_INFO("Saving '%s' to %s (through %s, %s)", vm->def->name, path, uri,
             (imgFlags & QEMU_SAVE_IMAGE_FLAG_RUNNING) ? "to run" : "to stay paused");
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SAVE) < 0)
        goto error;
    rc = qemuMonitorJSONMigrate(priv->mon, uri, false);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto error;

    if (qemuSaveWaitMigration(driver, vm, QEMU_ASYNC_JOB_SAVE, stream, true) < 0)
        goto error;

    /* QEMU is done: the copy thread sees the end of the stream */
    virObjectUnlock(vm);
    rc = qemuSaveImageStreamFinish(stream, QEMU_SAVE_STREAM_END_MS);
    bytes = qemuSaveImageStreamBytes(stream);
    if (rc == 0)
        rc = qemuSaveImageCommit(&fd, tmpPath, path, bytes);
    virObjectLock(vm);
    if (rc < 0)
        goto error;
    qemuSaveUpdateProgress(vm, NULL, bytes);
    priv->job.progress.dataTotal = bytes;
    priv->job.progress.dataRemaining = 0;

    VIR_INFO("Saved '%s' to %s (%llu bytes of QEMU state)", vm->def->name, path, bytes);
    if (managed)
        vm->hasManagedSave = true;
    qemuProcessKillAndStop(driver, vm, VIR_DOMAIN_SHUTOFF_SAVED,
                           VIR_DOMAIN_EVENT_STOPPED_SAVED);
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
    ret = 0;
    goto endjob;

 error:
    {
        virErrorPtr err = NULL;
        bool aborted = qemuDomainObjAsyncJobAbortRequested(vm);

        virErrorPreserveLast(&err);
        virObjectUnlock(vm);
        if (stream)
            qemuSaveImageStreamFree(g_steal_pointer(&stream));
        qemuSaveImageDiscard(&fd, tmpPath);
        virObjectLock(vm);

        if (priv->pausedReason == VIR_DOMAIN_PAUSED_SAVE)
            priv->pausedReason = 0;
        if (paused && virDomainObjIsActive(vm) &&
            qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SAVE) == 0) {
            /* QEMU stopped the migration (cancelled, failed or completed
             * into a file we dropped): the guest runs on */
            rc = qemuMonitorJSONStartCPUs(priv->mon);
            if (qemuDomainObjExitMonitor(vm) == 0 && rc == 0) {
                /* unless the RESUME event was handled already */
                if (virDomainObjGetState(vm, NULL) == VIR_DOMAIN_PAUSED)
                    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                           VIR_DOMAIN_EVENT_RESUMED,
                                           VIR_DOMAIN_EVENT_RESUMED_UNPAUSED));
                virDomainObjSetState(vm, VIR_DOMAIN_RUNNING,
                                     VIR_DOMAIN_RUNNING_SAVE_CANCELED);
            } else {
                VIR_WARN("Could not resume '%s' after a failed save", vm->def->name);
            }
        }
        qemuDomainObjSetAsyncJobResult(vm, aborted ? VIR_DOMAIN_JOB_CANCELLED
                                                   : VIR_DOMAIN_JOB_FAILED,
                                       err ? err->message : NULL);
        virErrorRestore(&err);
    }

 endjob:
    if (stream) {
        virObjectUnlock(vm);
        qemuSaveImageStreamFree(stream);
        virObjectLock(vm);
    }
    VIR_FORCE_CLOSE(fd);
    g_clear_pointer(&priv->saveTmpPath, g_free);
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);
    if (ret == 0 && !vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
    return ret;
}

static int
qemuDomainSaveFlags(virDomainPtr dom, const char *path, const char *dxml,
                    unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SAVE_BYPASS_CACHE |
                  VIR_DOMAIN_SAVE_RUNNING |
                  VIR_DOMAIN_SAVE_PAUSED, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainSaveFlagsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (!path || !*path) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("no file to save the domain to"));
        goto cleanup;
    }
    ret = qemuSaveDomain(qemu_driver, vm, path, dxml, flags, false);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSave(virDomainPtr dom, const char *path)
{
    return qemuDomainSaveFlags(dom, path, NULL, 0);
}

static int
qemuDomainSaveParams(virDomainPtr dom, virTypedParameterPtr params, int nparams,
                     unsigned int flags)
{
    const char *path = NULL;
    const char *dxml = NULL;

    virCheckFlags(VIR_DOMAIN_SAVE_BYPASS_CACHE |
                  VIR_DOMAIN_SAVE_RUNNING |
                  VIR_DOMAIN_SAVE_PAUSED, -1);
    if (virTypedParamsValidate(params, nparams,
                               VIR_DOMAIN_SAVE_PARAM_FILE, VIR_TYPED_PARAM_STRING,
                               VIR_DOMAIN_SAVE_PARAM_DXML, VIR_TYPED_PARAM_STRING,
                               NULL) < 0)
        return -1;
    if (virTypedParamsGetString(params, nparams, VIR_DOMAIN_SAVE_PARAM_FILE, &path) < 0 ||
        virTypedParamsGetString(params, nparams, VIR_DOMAIN_SAVE_PARAM_DXML, &dxml) < 0)
        return -1;
    if (!path) {
        /* no file: the managed save image, as libvirt does */
        virDomainObj *vm;
        int ret = -1;

        if (!(vm = qemuDomainObjFromDomain(dom)))
            return -1;
        if (virDomainSaveParamsEnsureACL(dom->conn, vm->def) == 0) {
            g_autofree char *managed = qemuSaveManagedPath(qemu_driver, vm);

            ret = qemuSaveDomain(qemu_driver, vm, managed, dxml, flags, true);
        }
        virDomainObjEndAPI(&vm);
        return ret;
    }
    return qemuDomainSaveFlags(dom, path, dxml, flags);
}

static int
qemuDomainManagedSave(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    g_autofree char *path = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SAVE_BYPASS_CACHE |
                  VIR_DOMAIN_SAVE_RUNNING |
                  VIR_DOMAIN_SAVE_PAUSED, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainManagedSaveEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    path = qemuSaveManagedPath(qemu_driver, vm);
    ret = qemuSaveDomain(qemu_driver, vm, path, NULL, flags, true);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* how long an interrupted save's cancel may take before the guest is
 * resumed anyway (ms) */
#define QEMU_SAVE_RECOVER_CANCEL_MS 10000

/* vm locked, the adopted save job held, active: QEMU's migration into a
 * stream nobody reads any more is cancelled, then the guest runs again if
 * the save had paused it. */
static int
qemuSaveRecoverRunning(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long deadline = g_get_real_time() / 1000 + QEMU_SAVE_RECOVER_CANCEL_MS;
    bool running = false;
    int status = 0;
    int reason = 0;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SAVE) < 0)
        return -1;
    rc = qemuMonitorJSONMigrateCancel(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;

    /* resuming while QEMU still cancels would race with its migration
     * thread: wait (bounded) until the migration is over */
    for (;;) {
        qemuMonitorMigrationStats st = { 0 };

        if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SAVE) < 0)
            return -1;
        rc = qemuMonitorJSONQueryMigrate(priv->mon, &st);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
            qemuMonitorMigrationStatsClear(&st);
            return -1;
        }
        status = st.status;
        qemuMonitorMigrationStatsClear(&st);
        if (status == QEMU_MONITOR_MIGRATION_STATUS_INACTIVE ||
            status == QEMU_MONITOR_MIGRATION_STATUS_COMPLETED ||
            status == QEMU_MONITOR_MIGRATION_STATUS_ERROR ||
            status == QEMU_MONITOR_MIGRATION_STATUS_CANCELLED)
            break;
        if ((unsigned long long) (g_get_real_time() / 1000) > deadline) {
            VIR_WARN("QEMU of '%s' is still in migration state '%s' after the cancel",
                     vm->def->name, qemuMonitorMigrationStatusTypeToString(status));
            break;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 + 100) < 0)
            return -1;
    }

    if (virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
        reason != VIR_DOMAIN_PAUSED_SAVE)
        return 0;

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_SAVE) < 0)
        return -1;
    rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (rc == 0)
        rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    if (!running) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("QEMU of domain '%s' did not resume (status '%s')"),
                       vm->def->name, NULLSTR(qemuMonitorVMStatusTypeToString(status)));
        return -1;
    }
    /* the RESUME event may have been handled already */
    if (virDomainObjGetState(vm, NULL) == VIR_DOMAIN_PAUSED)
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                               VIR_DOMAIN_EVENT_RESUMED,
                               VIR_DOMAIN_EVENT_RESUMED_UNPAUSED));
    virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_SAVE_CANCELED);
    return 0;
}

void
qemuSaveRecover(virQEMUDriver *driver, virDomainObj *vm, int phase)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *tmpPath = g_steal_pointer(&priv->saveTmpPath);

    VIR_WARN("Save of '%s' was interrupted in phase %s: cancelling it", vm->def->name,
             NULLSTR(qemuDomainAsyncJobPhaseToString(QEMU_ASYNC_JOB_SAVE, phase)));
    if (virDomainObjIsActive(vm) && qemuSaveRecoverRunning(driver, vm) < 0)
        VIR_WARN("Could not resume '%s' after its interrupted save: %s",
                 vm->def->name, virGetLastErrorMessage());
    if (tmpPath) {
        virObjectUnlock(vm);
        if (unlink(tmpPath) < 0 && errno != ENOENT)
            VIR_WARN("cannot remove %s: %s", tmpPath, g_strerror(errno));
        virObjectLock(vm);
    }
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED,
                                   _("the save was interrupted by a restart of the daemon"));
    qemuDomainObjSaveStatus(driver, vm);
}

/* ---------------------------------------------------------------------- */
/* Restore                                                                */
/* ---------------------------------------------------------------------- */

/* vm locked, async job @asyncJob held, inactive; vm->def is the definition
 * to run (the image's).  Starts QEMU, feeds it the image @img (@fd) and
 * runs or leaves paused the guest.  On failure nothing runs. */
static int
qemuSaveRestoreLocked(virConnectPtr conn,
                      virQEMUDriver *driver,
                      virDomainObj *vm,
                      qemuSaveImage *img,
                      int fd,
                      qemuDomainAsyncJob asyncJob,
                      bool startPaused,
                      bool userPaused,
                      bool autoDestroy)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuSaveImageStream *stream = NULL;
    g_autofree char *sockPath = NULL;
    g_autofree char *uri = NULL;
    unsigned int startFlags = QEMU_PROCESS_START_INCOMING;
    int rc;

    if (autoDestroy)
        startFlags |= QEMU_PROCESS_START_AUTODESTROY;
    if (qemuProcessStart(conn, driver, vm, asyncJob, startFlags) < 0)
        return -1;
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;

    if (qemuSaveEnableMigrationEvents(vm, asyncJob) < 0)
        goto error;
    sockPath = g_build_filename(priv->libDir, "restore.sock", NULL);
    uri = g_strdup_printf("unix:%s", sockPath);
    {
        g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("migrate-incoming",
                                                          "s:uri", uri, NULL);

        if (qemuSaveMonitorCommand(vm, asyncJob, &cmd, "migrate-incoming") < 0)
            goto error;
    }
    VIR_INFO("Restoring '%s' from %s (%llu bytes of QEMU state through %s)",
             vm->def->name, img->path, img->header.dataLen, uri);

    virObjectUnlock(vm);
    stream = qemuSaveImageStreamFeed(sockPath, fd, img->header.dataOffset,
                                     img->header.dataLen);
    virObjectLock(vm);
    if (!stream)
        goto error;

    if (qemuSaveWaitMigration(driver, vm, asyncJob, stream, false) < 0)
        goto error;
    virObjectUnlock(vm);
    rc = qemuSaveImageStreamFinish(stream, QEMU_SAVE_STREAM_END_MS);
    qemuSaveImageStreamFree(g_steal_pointer(&stream));
    virObjectLock(vm);
    if (rc < 0)
        goto error;
    priv->job.progress.dataTotal = img->header.dataLen;
    priv->job.progress.dataProcessed = img->header.dataLen;
    priv->job.progress.dataRemaining = 0;

    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                           VIR_DOMAIN_EVENT_STARTED,
                           VIR_DOMAIN_EVENT_STARTED_RESTORED));
    if (!startPaused) {
        bool running = false;
        int status = 0;

        if (asyncJob == QEMU_ASYNC_JOB_START &&
            qemuDomainObjSetJobPhase(vm, QEMU_START_PHASE_RESUMING) < 0)
            goto error;
        /* the RESUME event of this cont is ours, not news */
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP);
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            goto error;
        rc = qemuMonitorJSONStartCPUs(priv->mon);
        if (rc == 0)
            rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto error;
        if (!running) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU of domain '%s' did not resume after the restore (status '%s')"),
                           vm->def->name, NULLSTR(qemuMonitorVMStatusTypeToString(status)));
            goto error;
        }
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_RESTORED);
    } else {
        if (asyncJob == QEMU_ASYNC_JOB_START &&
            qemuDomainObjSetJobPhase(vm, QEMU_START_PHASE_RESUMING) < 0)
            goto error;
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                               VIR_DOMAIN_EVENT_SUSPENDED,
                               userPaused ? VIR_DOMAIN_EVENT_SUSPENDED_PAUSED
                                          : VIR_DOMAIN_EVENT_SUSPENDED_RESTORED));
    }
    qemuDomainObjSaveStatus(driver, vm);
    VIR_INFO("Restored '%s' from %s (%s)", vm->def->name, img->path,
             startPaused ? "paused" : "running");
    return 0;

 error:
    {
        virErrorPtr err = NULL;
        g_autofree char *qemuSaid = NULL;

        if (stream) {
            virErrorPreserveLast(&err);
            virObjectUnlock(vm);
            qemuSaveImageStreamFree(stream);
            virObjectLock(vm);
            virErrorRestore(&err);
        }
        /* QEMU quits when it cannot load the stream: its log says why,
         * the monitor only that it went away.  Read before we kill it. */
        if ((qemuSaid = qemuProcessGetLogTail(vm))) {
            g_autofree char *cause = g_strdup(virGetLastErrorMessage());

            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU could not load the save image '%s': %s (%s)"),
                           img->path, qemuSaid, cause);
        }
        virErrorPreserveLast(&err);
        qemuProcessKillAndStop(driver, vm, VIR_DOMAIN_SHUTOFF_FAILED,
                               VIR_DOMAIN_EVENT_STOPPED_FAILED);
        virErrorRestore(&err);
    }
    return -1;
}

/* The definition to restore: the image's, or @dxml when it is compatible
 * with it. */
static virDomainDef *
qemuSaveImageDef(virQEMUDriver *driver, qemuSaveImage *img, const char *dxml)
{
    g_autoptr(virDomainDef) def = NULL;
    g_autoptr(virDomainDef) alt = NULL;

    if (!(def = qemuDomainDefParseString(img->xml, driver->xmlopt,
                                        VIR_DOMAIN_DEF_PARSE_INACTIVE))) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' holds a domain XML that does not parse: %s"),
                       img->path, err && err->message ? err->message : _("unknown error"));
        virFreeError(err);
        return NULL;
    }
    if (!dxml)
        return g_steal_pointer(&def);
    if (!(alt = qemuDomainDefParseString(dxml, driver->xmlopt,
                                        VIR_DOMAIN_DEF_PARSE_INACTIVE)))
        return NULL;
    if (memcmp(alt->uuid, def->uuid, VIR_UUID_BUFLEN) != 0) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("the replacement XML must keep the domain's UUID"));
        return NULL;
    }
    if (!virDomainDefCheckABIStability(def, alt, driver->xmlopt))
        return NULL;
    return g_steal_pointer(&alt);
}

static int
qemuDomainRestoreFlags(virConnectPtr conn, const char *path, const char *dxml,
                       unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(virDomainDef) def = NULL;
    virDomainObj *vm = NULL;
    bool startPaused;
    int fd = -1;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SAVE_BYPASS_CACHE |
                  VIR_DOMAIN_SAVE_RUNNING |
                  VIR_DOMAIN_SAVE_PAUSED, -1);
    if (qemuSaveCheckRunPausedFlags(flags, VIR_DOMAIN_SAVE_RUNNING,
                                    VIR_DOMAIN_SAVE_PAUSED) < 0)
        return -1;
    if (!path || !*path) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("no save image to restore"));
        return -1;
    }

    /* everything is checked before anything changes */
    if ((fd = qemuSaveImageOpen(path, &img)) < 0)
        return -1;
    if (!(def = qemuSaveImageDef(driver, img, dxml)))
        goto cleanup;
    if (virDomainRestoreFlagsEnsureACL(conn, def) < 0)
        goto cleanup;
    if (flags & VIR_DOMAIN_SAVE_BYPASS_CACHE)
        VIR_INFO("Restoring from %s: bypass-cache is accepted and has no effect here", path);
    startPaused = (flags & VIR_DOMAIN_SAVE_PAUSED) ||
                  (!(flags & VIR_DOMAIN_SAVE_RUNNING) &&
                   !(img->header.flags & QEMU_SAVE_IMAGE_FLAG_RUNNING));

    if (!(vm = virDomainObjListAdd(driver->domains, &def, driver->xmlopt,
                                   VIR_DOMAIN_OBJ_LIST_ADD_LIVE |
                                   VIR_DOMAIN_OBJ_LIST_ADD_CHECK_LIVE, NULL)))
        goto cleanup;

    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_START,
                                   VIR_DOMAIN_JOB_OPERATION_RESTORE, flags) < 0)
        goto undo;
    if (virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s", _("domain is already running"));
    } else if (qemuSaveRestoreLocked(conn, driver, vm, img, fd, QEMU_ASYNC_JOB_START,
                                     startPaused, !!(flags & VIR_DOMAIN_SAVE_PAUSED),
                                     false) == 0) {
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
        ret = 0;
    }
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);

 undo:
    if (ret < 0 && !virDomainObjIsActive(vm)) {
        /* back to the persistent definition, or gone if there is none */
        virDomainObjRemoveTransientDef(vm);
        if (!vm->persistent)
            virDomainObjListRemove(driver->domains, vm);
    }
 cleanup:
    virDomainObjEndAPI(&vm);
    VIR_FORCE_CLOSE(fd);
    return ret;
}

static int
qemuDomainRestore(virConnectPtr conn, const char *path)
{
    return qemuDomainRestoreFlags(conn, path, NULL, 0);
}

static int
qemuDomainRestoreParams(virConnectPtr conn, virTypedParameterPtr params,
                        int nparams, unsigned int flags)
{
    const char *path = NULL;
    const char *dxml = NULL;

    if (virTypedParamsValidate(params, nparams,
                               VIR_DOMAIN_SAVE_PARAM_FILE, VIR_TYPED_PARAM_STRING,
                               VIR_DOMAIN_SAVE_PARAM_DXML, VIR_TYPED_PARAM_STRING,
                               NULL) < 0)
        return -1;
    if (virTypedParamsGetString(params, nparams, VIR_DOMAIN_SAVE_PARAM_FILE, &path) < 0 ||
        virTypedParamsGetString(params, nparams, VIR_DOMAIN_SAVE_PARAM_DXML, &dxml) < 0)
        return -1;
    return qemuDomainRestoreFlags(conn, path, dxml, flags);
}

int
qemuSaveStartManaged(virConnectPtr conn,
                     virQEMUDriver *driver,
                     virDomainObj *vm,
                     unsigned int flags)
{
    g_autofree char *path = qemuSaveManagedPath(driver, vm);
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(virDomainDef) def = NULL;
    bool startPaused;
    int fd;
    int ret = -1;

    if (flags & VIR_DOMAIN_START_BYPASS_CACHE)
        VIR_INFO("Starting '%s': bypass-cache is accepted and has no effect here",
                 vm->def->name);

    virObjectUnlock(vm);
    fd = qemuSaveImageOpen(path, &img);
    virObjectLock(vm);
    if (fd < 0) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot restore domain '%s' from its managed save image (kept; use start --force-boot or managedsave-remove to discard it): %s"),
                       vm->def->name, err && err->message ? err->message : _("unknown error"));
        virFreeError(err);
        return -1;
    }
    if (virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s", _("domain is already running"));
        goto cleanup;
    }
    if (!(def = qemuSaveImageDef(driver, img, NULL)))
        goto cleanup;
    if (memcmp(def->uuid, vm->def->uuid, VIR_UUID_BUFLEN) != 0) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("managed save image '%s' belongs to another domain"), path);
        goto cleanup;
    }
    startPaused = (flags & VIR_DOMAIN_START_PAUSED) ||
                  !(img->header.flags & QEMU_SAVE_IMAGE_FLAG_RUNNING);

    /* what the start job does: domjobinfo says restore, as for virsh restore */
    QEMU_DOMAIN_PRIVATE(vm)->job.operation = VIR_DOMAIN_JOB_OPERATION_RESTORE;
    /* the image's definition runs; the persistent one comes back at stop */
    virDomainObjAssignDef(vm, &def, true, NULL);
    if (qemuSaveRestoreLocked(conn, driver, vm, img, fd, QEMU_ASYNC_JOB_START,
                              startPaused, !!(flags & VIR_DOMAIN_START_PAUSED),
                              !!(flags & VIR_DOMAIN_START_AUTODESTROY)) < 0) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot restore domain '%s' from its managed save image (kept; use start --force-boot or managedsave-remove to discard it): %s"),
                       vm->def->name, err && err->message ? err->message : _("unknown error"));
        virFreeError(err);
        if (!virDomainObjIsActive(vm))
            virDomainObjRemoveTransientDef(vm);
        goto cleanup;
    }

    if (unlink(path) < 0 && errno != ENOENT)
        VIR_WARN("cannot remove managed save image %s: %s", path, g_strerror(errno));
    vm->hasManagedSave = false;
    ret = 0;

 cleanup:
    VIR_FORCE_CLOSE(fd);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Image XML, managed save image                                          */
/* ---------------------------------------------------------------------- */

static char *
qemuDomainSaveImageGetXMLDesc(virConnectPtr conn, const char *path, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(virDomainDef) def = NULL;
    int fd;

    virCheckFlags(VIR_DOMAIN_SAVE_IMAGE_XML_SECURE, NULL);

    if ((fd = qemuSaveImageOpen(path, &img)) < 0)
        return NULL;
    VIR_FORCE_CLOSE(fd);
    if (!(def = qemuSaveImageDef(driver, img, NULL)))
        return NULL;
    if (virDomainSaveImageGetXMLDescEnsureACL(conn, def) < 0)
        return NULL;
    return virDomainDefFormat(def, driver->xmlopt,
                              virDomainDefFormatConvertXMLFlags(flags));
}

/* The new XML and flags for an image: the XML compatible with the image's,
 * the RUNNING flag changed only when asked. */
static int
qemuSaveImageDefineCommon(virQEMUDriver *driver,
                          const char *path,
                          qemuSaveImage *img,
                          const char *dxml,
                          unsigned int flags)
{
    g_autoptr(virDomainDef) def = NULL;
    g_autofree char *xml = NULL;
    unsigned int imgFlags = img->header.flags;

    if (qemuSaveCheckRunPausedFlags(flags, VIR_DOMAIN_SAVE_RUNNING,
                                    VIR_DOMAIN_SAVE_PAUSED) < 0)
        return -1;
    if (!dxml) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("no domain XML given"));
        return -1;
    }
    if (!(def = qemuSaveImageDef(driver, img, dxml)))
        return -1;
    if (!(xml = virDomainDefFormat(def, driver->xmlopt,
                                   VIR_DOMAIN_DEF_FORMAT_SECURE |
                                   VIR_DOMAIN_DEF_FORMAT_MIGRATABLE)))
        return -1;
    if (flags & VIR_DOMAIN_SAVE_RUNNING)
        imgFlags |= QEMU_SAVE_IMAGE_FLAG_RUNNING;
    if (flags & VIR_DOMAIN_SAVE_PAUSED)
        imgFlags &= ~QEMU_SAVE_IMAGE_FLAG_RUNNING;
    if (qemuSaveImageRewrite(path, xml, imgFlags) < 0)
        return -1;
    VIR_INFO("Redefined the domain XML of save image %s", path);
    return 0;
}

static int
qemuDomainSaveImageDefineXML(virConnectPtr conn, const char *path, const char *dxml,
                             unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(virDomainDef) def = NULL;
    int fd;

    virCheckFlags(VIR_DOMAIN_SAVE_RUNNING | VIR_DOMAIN_SAVE_PAUSED, -1);

    if ((fd = qemuSaveImageOpen(path, &img)) < 0)
        return -1;
    VIR_FORCE_CLOSE(fd);
    if (!(def = qemuSaveImageDef(driver, img, NULL)))
        return -1;
    if (virDomainSaveImageDefineXMLEnsureACL(conn, def) < 0)
        return -1;
    return qemuSaveImageDefineCommon(driver, path, img, dxml, flags);
}

/* vm locked: the managed save image of @vm, opened (fd closed). */
static qemuSaveImage *
qemuSaveManagedImage(virQEMUDriver *driver, virDomainObj *vm, char **pathOut)
{
    g_autofree char *path = qemuSaveManagedPath(driver, vm);
    qemuSaveImage *img = NULL;
    int fd;

    if (!vm->hasManagedSave) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%s' has no managed save image"), vm->def->name);
        return NULL;
    }
    if ((fd = qemuSaveImageOpen(path, &img)) < 0)
        return NULL;
    VIR_FORCE_CLOSE(fd);
    if (pathOut)
        *pathOut = g_steal_pointer(&path);
    return img;
}

static char *
qemuDomainManagedSaveGetXMLDesc(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(virDomainDef) def = NULL;
    char *ret = NULL;

    virCheckFlags(VIR_DOMAIN_SAVE_IMAGE_XML_SECURE, NULL);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    if (virDomainManagedSaveGetXMLDescEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (!(img = qemuSaveManagedImage(qemu_driver, vm, NULL)) ||
        !(def = qemuSaveImageDef(qemu_driver, img, NULL)))
        goto cleanup;
    ret = virDomainDefFormat(def, qemu_driver->xmlopt,
                             virDomainDefFormatConvertXMLFlags(flags));
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainManagedSaveDefineXML(virDomainPtr dom, const char *dxml, unsigned int flags)
{
    virDomainObj *vm;
    g_autoptr(qemuSaveImage) img = NULL;
    g_autofree char *path = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_SAVE_RUNNING | VIR_DOMAIN_SAVE_PAUSED, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainManagedSaveDefineXMLEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    /* a modify job: no start from the image while it is rewritten */
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if ((img = qemuSaveManagedImage(qemu_driver, vm, &path))) {
        virObjectUnlock(vm);
        ret = qemuSaveImageDefineCommon(qemu_driver, path, img, dxml, flags);
        virObjectLock(vm);
    }
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainManagedSaveRemove(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    g_autofree char *path = NULL;
    int ret = -1;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainManagedSaveRemoveEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    path = qemuSaveManagedPath(qemu_driver, vm);
    if (unlink(path) < 0 && errno != ENOENT) {
        virReportSystemError(errno, _("cannot remove managed save image '%s'"), path);
    } else {
        vm->hasManagedSave = false;
        VIR_INFO("Removed the managed save image of '%s'", vm->def->name);
        ret = 0;
    }
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

void
qemuSaveRegister(virHypervisorDriver *driver)
{
    driver->domainSave = qemuDomainSave;
    driver->domainSaveFlags = qemuDomainSaveFlags;
    driver->domainSaveParams = qemuDomainSaveParams;
    driver->domainRestore = qemuDomainRestore;
    driver->domainRestoreFlags = qemuDomainRestoreFlags;
    driver->domainRestoreParams = qemuDomainRestoreParams;
    driver->domainSaveImageGetXMLDesc = qemuDomainSaveImageGetXMLDesc;
    driver->domainSaveImageDefineXML = qemuDomainSaveImageDefineXML;
    driver->domainManagedSave = qemuDomainManagedSave;
    driver->domainManagedSaveRemove = qemuDomainManagedSaveRemove;
    driver->domainManagedSaveGetXMLDesc = qemuDomainManagedSaveGetXMLDesc;
    driver->domainManagedSaveDefineXML = qemuDomainManagedSaveDefineXML;
}
