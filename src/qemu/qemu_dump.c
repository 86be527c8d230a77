/*
 * qemu_dump.c: guest memory dumps (virsh dump --memory-only) as an async
 * job driven over QMP
 *
 * QEMU writes the dump itself (dump-guest-memory with "file:PATH" and
 * detach=true) into a file the daemon created and handed to the user QEMU
 * runs as.  The dump job polls query-dump for progress, woken by the
 * DUMP_COMPLETED event, with the domain unlocked between polls, so queries
 * are answered throughout.  QEMU 7.2 cannot cancel a dump: the job does not
 * allow aborts.
 *
 *   phases:  none -> [paused]  (not --live: vCPUs stopped by us)
 *                 -> dumping   (QEMU writes the file)
 *   after:   --crash: the domain is stopped (shut off, crashed)
 *            --reset: system_reset
 *            resumed when we paused it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_dump.h"
#include "qemu_conf.h"
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
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_dump");

/* how often the dump job refreshes the progress from QEMU (ms) */
#define QEMU_DUMP_POLL_MS 250

#define QEMU_DUMP_FLAGS \
    (VIR_DUMP_CRASH | \
     VIR_DUMP_LIVE | \
     VIR_DUMP_BYPASS_CACHE | \
     VIR_DUMP_RESET | \
     VIR_DUMP_MEMORY_ONLY)

/* QEMU's name of each virDomainCoreDumpFormat */
static const char *const qemuDumpFormatNames[] = {
    [VIR_DOMAIN_CORE_DUMP_FORMAT_RAW] = "elf",
    [VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_ZLIB] = "kdump-zlib",
    [VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_LZO] = "kdump-lzo",
    [VIR_DOMAIN_CORE_DUMP_FORMAT_KDUMP_SNAPPY] = "kdump-snappy",
    [VIR_DOMAIN_CORE_DUMP_FORMAT_WIN_DMP] = "win-dmp",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuDumpFormatNames) == VIR_DOMAIN_CORE_DUMP_FORMAT_LAST);

/* ---------------------------------------------------------------------- */
/* Helpers shared with qemu_snapshot.c                                    */
/* ---------------------------------------------------------------------- */

int
qemuDumpPauseDomain(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                    virDomainPausedReason reason, bool *paused)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    *paused = false;
    if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_RUNNING)
        return 0;

    priv->pausedReason = reason;
    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorJSONStopCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        if (priv->pausedReason == (int) reason)
            priv->pausedReason = 0;
        return -1;
    }
    *paused = true;
    /* the STOP event may have been handled already */
    if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_PAUSED) {
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, reason);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                               VIR_DOMAIN_EVENT_SUSPENDED,
                               reason == VIR_DOMAIN_PAUSED_DUMP ?
                               VIR_DOMAIN_EVENT_SUSPENDED_PAUSED :
                               VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT));
    }
    priv->pausedReason = 0;
    qemuDomainObjSaveStatus(qemu_driver, vm);
    return 0;
}

int
qemuDumpResumeDomain(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                     virDomainRunningReason reason)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    if (!virDomainObjIsActive(vm))
        return 0;
    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_RUNNING)
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                               VIR_DOMAIN_EVENT_RESUMED,
                               reason == VIR_DOMAIN_RUNNING_FROM_SNAPSHOT ?
                               VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT :
                               VIR_DOMAIN_EVENT_RESUMED_UNPAUSED));
    virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, reason);
    qemuDomainObjSaveStatus(qemu_driver, vm);
    return 0;
}

void
qemuDumpStopDomain(virDomainObj *vm, virDomainShutoffReason reason, int eventDetail)
{
    virQEMUDriver *driver = qemu_driver;
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (!virDomainObjIsActive(vm))
        return;
    /* the destroy recipe: kill first, then the destroy job */
    priv->beingDestroyed = true;
    if (qemuProcessKill(driver, vm, QEMU_PROCESS_KILL_FORCE) < 0)
        VIR_WARN("cannot kill QEMU of domain '%s': %s", vm->def->name,
                 virGetLastErrorMessage());
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_DESTROY) < 0) {
        priv->beingDestroyed = false;
        return;
    }
    if (virDomainObjIsActive(vm)) {
        qemuProcessStop(driver, vm, reason);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                               VIR_DOMAIN_EVENT_STOPPED, eventDetail));
    }
    priv->beingDestroyed = false;
    qemuDomainObjEndJob(vm);
}

/* ---------------------------------------------------------------------- */
/* The DUMP_COMPLETED event                                               */
/* ---------------------------------------------------------------------- */

void
qemuDumpHandleCompleted(virDomainObj *vm, tdmJSONValue *data)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    const char *error = data ? tdmJSONValueObjectGetString(data, "error") : NULL;

    if (priv->job.asyncJob != QEMU_ASYNC_JOB_DUMP)
        return;
    priv->dumpCompleted = true;
    if (error && !priv->dumpError)
        priv->dumpError = g_strdup(error);
    qemuDomainObjSignalAsyncJob(vm);
}

/* ---------------------------------------------------------------------- */
/* The dump job                                                           */
/* ---------------------------------------------------------------------- */

/* Creates @path (truncated) for QEMU to write: owned by the QEMU user. */
static int
qemuDumpCreateFile(virQEMUDriver *driver, const char *path)
{
    uid_t uid;
    gid_t gid;
    int fd;

    if (qemuDriverGetQEMUUser(driver, &uid, &gid) < 0)
        return -1;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        virReportSystemError(errno, _("cannot create dump file '%s'"), path);
        return -1;
    }
    if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0) {
        virReportSystemError(errno,
                             _("cannot give dump file '%s' to the QEMU user"), path);
        VIR_FORCE_CLOSE(fd);
        unlink(path);
        return -1;
    }
    VIR_FORCE_CLOSE(fd);
    return 0;
}

/* vm locked, dump job held.  Is @format one QEMU can write? */
static int
qemuDumpCheckFormat(virDomainObj *vm, const char *format)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_auto(GStrv) formats = NULL;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_DUMP) < 0)
        return -1;
    rc = qemuMonitorJSONGetDumpGuestMemoryFormats(priv->mon, &formats);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    if (!g_strv_contains((const char *const *) formats, format)) {
        g_autofree char *known = g_strjoinv(", ", formats);

        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("dump format '%s' is not supported by this QEMU binary (it supports: %s)"),
                       format, known);
        return -1;
    }
    return 0;
}

/* vm locked, dump job held: waits (vm unlocked between polls) until QEMU
 * finished writing the dump in @format (named in errors). */
static int
qemuDumpWait(virDomainObj *vm, const char *format)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    for (;;) {
        qemuMonitorDumpStats st = { 0 };
        qemuDomainJobProgress *p = &priv->job.progress;
        int rc;

        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                           _("domain is no longer running: QEMU exited during the dump"));
            return -1;
        }
        if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_DUMP) < 0)
            return -1;
        rc = qemuMonitorJSONQueryDump(priv->mon, &st);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            return -1;

        p->dataTotal = st.total;
        p->dataProcessed = st.completed;
        p->dataRemaining = st.total > st.completed ? st.total - st.completed : 0;
        p->memTotal = p->dataTotal;
        p->memProcessed = p->dataProcessed;
        p->memRemaining = p->dataRemaining;

        switch (st.status) {
        case 2:   /* completed */
            return 0;
        case 3:   /* failed */
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU failed to dump the guest memory in format '%s': %s"),
                           format,
                           priv->dumpError ? priv->dumpError : _("no reason given"));
            return -1;
        case 0:   /* none: the dump is over only if QEMU said so */
            if (priv->dumpCompleted) {
                if (priv->dumpError) {
                    virReportError(VIR_ERR_OPERATION_FAILED,
                                   _("QEMU failed to dump the guest memory in format '%s': %s"),
                                   format, priv->dumpError);
                    return -1;
                }
                return 0;
            }
            break;
        default:
            break;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_DUMP_POLL_MS) < 0)
            return -1;
    }
}

/* How long an interrupted dump or snapshot may keep QEMU busy before the
 * recovery gives up waiting for it (the guest then stays paused). */
#define QEMU_DUMP_RECOVER_WAIT_MS (120 * 1000)

void
qemuDumpRecover(virDomainObj *vm, qemuDomainAsyncJob asyncJob, int phase)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long deadline = g_get_real_time() / 1000 + QEMU_DUMP_RECOVER_WAIT_MS;
    const char *what = asyncJob == QEMU_ASYNC_JOB_DUMP ? "dump" : "snapshot";
    virDomainPausedReason ours = asyncJob == QEMU_ASYNC_JOB_DUMP ?
        VIR_DOMAIN_PAUSED_DUMP : VIR_DOMAIN_PAUSED_SNAPSHOT;
    bool running = false;
    int status = 0;
    int reason = 0;
    int rc;

    VIR_WARN("The %s of '%s' was interrupted in phase %s by a daemon restart",
             what, vm->def->name,
             NULLSTR(qemuDomainAsyncJobPhaseToString(asyncJob, phase)));

    /* QEMU goes on with a dump or snapshot it was given (its run state is
     * save-vm meanwhile, or query-dump says active when the guest was
     * already paused, and QEMU refuses 'cont' until it is over) and
     * resumes the vCPUs it stopped itself */
    while (virDomainObjIsActive(vm)) {
        qemuMonitorDumpStats st = { 0 };

        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            goto done;
        rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
        if (rc == 0 && asyncJob == QEMU_ASYNC_JOB_DUMP)
            rc = qemuMonitorJSONQueryDump(priv->mon, &st);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto done;
        if (status != QEMU_MONITOR_VM_STATUS_SAVE_VM &&
            st.status != 1 /* active */)
            break;
        if ((unsigned long long) (g_get_real_time() / 1000) > deadline) {
            VIR_WARN("QEMU of '%s' still saves the guest: leaving it paused",
                     vm->def->name);
            goto done;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_DUMP_POLL_MS) < 0)
            goto done;
    }

    if (!virDomainObjIsActive(vm))
        goto done;
    if (running) {
        if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_RUNNING)
            virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_UNPAUSED);
    } else if (virDomainObjGetState(vm, &reason) == VIR_DOMAIN_PAUSED &&
               reason == (int) ours) {
        /* QEMU may still refuse 'cont' for a moment after its dump thread
         * reported the end: retry until the same deadline */
        while (qemuDumpResumeDomain(vm, asyncJob, VIR_DOMAIN_RUNNING_UNPAUSED) < 0) {
            if (!virDomainObjIsActive(vm) ||
                (unsigned long long) (g_get_real_time() / 1000) > deadline ||
                qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                          QEMU_DUMP_POLL_MS) < 0) {
                VIR_WARN("cannot resume '%s' after its interrupted %s: %s",
                         vm->def->name, what, virGetLastErrorMessage());
                break;
            }
            VIR_DEBUG("resuming '%s' failed (%s): retrying",
                      vm->def->name, virGetLastErrorMessage());
        }
    }

 done:
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED,
                                   asyncJob == QEMU_ASYNC_JOB_DUMP ?
                                   _("the dump was interrupted by a restart of the daemon") :
                                   _("the snapshot was interrupted by a restart of the daemon"));
}

/* vm locked, no job. */
static int
qemuDumpMemory(virDomainObj *vm, const char *path, unsigned int dumpformat,
               unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    const char *format = qemuDumpFormatNames[dumpformat];
    g_autofree char *protocol = NULL;
    bool paused = false;
    bool fileCreated = false;
    int ret = -1;
    int rc;

    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_DUMP,
                                   VIR_DOMAIN_JOB_OPERATION_DUMP, flags) < 0)
        return -1;
    /* QEMU 7.2 cannot cancel dump-guest-memory: no abort beside the job */
    qemuDomainObjSetAsyncJobMask(vm, qemuDomainAsyncJobDefaultMask[QEMU_ASYNC_JOB_DUMP] &
                                 ~QEMU_JOB_MASK(QEMU_JOB_ABORT));
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;
    priv->dumpCompleted = false;
    g_clear_pointer(&priv->dumpError, g_free);

    if (virDomainObjCheckActive(vm) < 0)
        goto endjob;
    if (qemuDumpCheckFormat(vm, format) < 0)
        goto endjob;

    if (!(flags & VIR_DUMP_LIVE)) {
        if (qemuDomainObjSetJobPhase(vm, QEMU_DUMP_PHASE_PAUSED) < 0)
            goto endjob;
        qemuDomainObjSaveStatus(driver, vm);
        if (qemuDumpPauseDomain(vm, QEMU_ASYNC_JOB_DUMP, VIR_DOMAIN_PAUSED_DUMP,
                                &paused) < 0)
            goto endjob;
    }

    if (qemuDomainObjSetJobPhase(vm, QEMU_DUMP_PHASE_DUMPING) < 0)
        goto resume;
    qemuDomainObjSaveStatus(driver, vm);

    if (qemuDumpCreateFile(driver, path) < 0)
        goto resume;
    fileCreated = true;

    VIR_INFO("Dumping the memory of domain '%s' to %s (format %s%s)",
             vm->def->name, path, format, (flags & VIR_DUMP_LIVE) ? ", live" : "");
    protocol = g_strdup_printf("file:%s", path);
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_DUMP) < 0)
        goto resume;
    rc = qemuMonitorJSONDumpGuestMemory(priv->mon, protocol, format, true);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto resume;

    if (qemuDumpWait(vm, format) < 0)
        goto resume;

    /* the file is the daemon's again, as if it had written it */
    if (chown(path, getuid(), getgid()) < 0)
        VIR_WARN("cannot give dump file '%s' back to the daemon's user: %s",
                 path, g_strerror(errno));

    if (flags & VIR_DUMP_CRASH) {
        qemuDumpStopDomain(vm, VIR_DOMAIN_SHUTOFF_CRASHED,
                           VIR_DOMAIN_EVENT_STOPPED_CRASHED);
        paused = false;
    } else if (flags & VIR_DUMP_RESET) {
        if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_DUMP) < 0)
            goto resume;
        rc = qemuMonitorJSONSystemReset(priv->mon);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto resume;
    }
    ret = 0;

 resume:
    if (paused && virDomainObjIsActive(vm)) {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        if (qemuDumpResumeDomain(vm, QEMU_ASYNC_JOB_DUMP,
                                 VIR_DOMAIN_RUNNING_UNPAUSED) < 0) {
            VIR_WARN("cannot resume domain '%s' after the dump: %s",
                     vm->def->name, virGetLastErrorMessage());
            if (ret == 0) {
                /* the dump is there, but the user must learn that the
                 * guest stays paused: keep the resume error */
                virFreeError(err);
                err = NULL;
                ret = -1;
            }
        }
        virErrorRestore(&err);
    }
    if (ret < 0 && fileCreated && unlink(path) < 0 && errno != ENOENT)
        VIR_WARN("cannot remove partial dump file '%s': %s", path, g_strerror(errno));

 endjob:
    qemuDomainObjSetAsyncJobResult(vm, ret == 0 ? VIR_DOMAIN_JOB_COMPLETED
                                                : VIR_DOMAIN_JOB_FAILED,
                                   ret == 0 ? NULL : virGetLastErrorMessage());
    priv->dumpCompleted = false;
    g_clear_pointer(&priv->dumpError, g_free);
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
    return ret;
}

static int
qemuDumpValidate(const char *path, unsigned int dumpformat, unsigned int flags)
{
    if (!path || !g_path_is_absolute(path)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("dump file '%s' must be an absolute path"), NULLSTR(path));
        return -1;
    }
    if (dumpformat >= VIR_DOMAIN_CORE_DUMP_FORMAT_LAST) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("unknown dump format %u"), dumpformat);
        return -1;
    }
    if ((flags & VIR_DUMP_CRASH) && (flags & VIR_DUMP_RESET)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("--crash and --reset are mutually exclusive"));
        return -1;
    }
    if ((flags & VIR_DUMP_LIVE) && (flags & VIR_DUMP_RESET)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("--live and --reset are mutually exclusive"));
        return -1;
    }
    if (!(flags & VIR_DUMP_MEMORY_ONLY)) {
        if (dumpformat != VIR_DOMAIN_CORE_DUMP_FORMAT_RAW) {
            virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                           _("dump format '%s' needs --memory-only"),
                           qemuDumpFormatNames[dumpformat]);
            return -1;
        }
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("only --memory-only dumps are supported"));
        return -1;
    }
    return 0;
}

/* The two dump APIs differ only in their ACL check and format. */
static int
qemuDumpFromAPI(virDomainPtr dom, const char *to, unsigned int dumpformat,
                unsigned int flags,
                int (*checkACL)(virConnectPtr, virDomainDef *))
{
    virDomainObj *vm;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (checkACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDumpValidate(to, dumpformat, flags) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto cleanup;
    ret = qemuDumpMemory(vm, to, dumpformat, flags);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainCoreDumpWithFormat(virDomainPtr dom, const char *to,
                             unsigned int dumpformat, unsigned int flags)
{
    virCheckFlags(QEMU_DUMP_FLAGS, -1);
    return qemuDumpFromAPI(dom, to, dumpformat, flags,
                           virDomainCoreDumpWithFormatEnsureACL);
}

static int
qemuDomainCoreDump(virDomainPtr dom, const char *to, unsigned int flags)
{
    virCheckFlags(QEMU_DUMP_FLAGS, -1);
    return qemuDumpFromAPI(dom, to, VIR_DOMAIN_CORE_DUMP_FORMAT_RAW, flags,
                           virDomainCoreDumpEnsureACL);
}

void
qemuDumpRegister(virHypervisorDriver *driver)
{
    driver->domainCoreDump = qemuDomainCoreDump;
    driver->domainCoreDumpWithFormat = qemuDomainCoreDumpWithFormat;
}
