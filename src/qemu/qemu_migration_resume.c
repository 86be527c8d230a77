/*
 * qemu_migration_resume.c: recovery of a failed post-copy migration
 * (VIR_MIGRATE_POSTCOPY_RESUME); see qemu_migration_resume.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_migration_resume.h"
#include "qemu_migration.h"
#include "qemu_migration_cookie.h"
#include "qemu_migration_postcopy.h"
#include "qemu_domain.h"
#include "qemu_domainjob.h"
#include "qemu_monitor.h"
#include "qemu_monitor_json.h"

#include "datatypes.h"
#include "domain_event.h"
#include "viraccessapicheck.h"
#include "virerror.h"
#include "virlog.h"
#include "virportallocator.h"
#include "virtypedparam.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_migration_resume");

/* how often a wait refreshes the progress from QEMU when no MIGRATION
 * event wakes it first (ms) */
#define QEMU_MIGRATION_RESUME_POLL_MS 250

/* The checks both ends make before a resume (vm locked): the guest is
 * left from a failed post-copy migration (source: paused, post-copy
 * failed; destination, @dst: running or paused, post-copy failed) and,
 * unless @jobHeld (the check is repeated under the resume's job), no
 * async job runs. */
static int
qemuMigrationResumeCheckState(virDomainObj *vm, unsigned long flags,
                              bool dst, bool jobHeld)
{
    const char *where = dst ? _("destination") : _("source");
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int reason = 0;
    virDomainState state;

    if (!(flags & VIR_MIGRATE_POSTCOPY)) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("resuming a failed post-copy migration (VIR_MIGRATE_POSTCOPY_RESUME) requires VIR_MIGRATE_POSTCOPY (virsh migrate --postcopy --postcopy-resume)"));
        return -1;
    }
    if (flags & (VIR_MIGRATE_OFFLINE | VIR_MIGRATE_NON_SHARED_DISK |
                 VIR_MIGRATE_NON_SHARED_INC)) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("resuming a failed post-copy migration cannot be combined with an offline or storage migration"));
        return -1;
    }
    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot resume the post-copy migration of domain '%s': it is not running on the %s host"),
                       vm->def->name, where);
        return -1;
    }
    state = virDomainObjGetState(vm, &reason);
    if (!(state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) &&
        !(dst && state == VIR_DOMAIN_RUNNING && reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED)) {
        if (dst)
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("cannot resume the post-copy migration of domain '%s': it is not left from a failed post-copy migration on the destination host (state %s, not post-copy failed)"),
                           vm->def->name, virDomainStateTypeToString(state));
        else
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("cannot resume the post-copy migration of domain '%s': it is not paused after a failed post-copy migration on the source host (state %s, not post-copy failed)"),
                           vm->def->name, virDomainStateTypeToString(state));
        return -1;
    }
    if (!jobHeld && priv->job.asyncJob != QEMU_ASYNC_JOB_NONE) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot resume the post-copy migration of domain '%s': async job '%s' is running on the %s host"),
                       vm->def->name, qemuDomainAsyncJobTypeToString(priv->job.asyncJob),
                       where);
        return -1;
    }
    return 0;
}

/* Under the job just begun: QEMU's migration must be postcopy-paused. */
static int
qemuMigrationResumeCheckQEMU(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                             const char *where)
{
    qemuMonitorMigrationStats st = { 0 };
    int status;

    if (qemuMigrationQuery(vm, asyncJob, &st) < 0) {
        qemuMonitorMigrationStatsClear(&st);
        return -1;
    }
    status = st.status;
    qemuMonitorMigrationStatsClear(&st);
    if (status != QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot resume the post-copy migration of domain '%s': QEMU's migration on the %s host is '%s', not 'postcopy-paused'"),
                       vm->def->name, where,
                       NULLSTR(qemuMonitorMigrationStatusTypeToString(status)));
        return -1;
    }
    return 0;
}

/* Waits, the domain unlocked and woken by the MIGRATION events, until
 * QEMU's migration is postcopy-active (@untilActive) or completed.
 * 0: reached (or completed); -1: the stream paused again, failed, QEMU
 * exited, or (@connectDeadline, ms since the epoch, not 0) QEMU did not
 * leave postcopy-paused by then: it could not connect. */
static int
qemuMigrationResumeWait(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                        bool untilActive, unsigned long long connectDeadline)
{
    bool started = connectDeadline == 0;

    for (;;) {
        qemuMonitorMigrationStats st = { 0 };
        int status;

        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                           _("domain is no longer running: QEMU exited during the post-copy recovery"));
            return -1;
        }
        if (qemuMigrationQuery(vm, asyncJob, &st) < 0) {
            qemuMonitorMigrationStatsClear(&st);
            return -1;
        }
        status = st.status;
        if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT ||
            status == QEMU_MONITOR_MIGRATION_STATUS_COMPLETED)
            qemuMigrationUpdateProgress(vm, &st);
        qemuMonitorMigrationStatsClear(&st);

        switch ((qemuMonitorMigrationStatus) status) {
        case QEMU_MONITOR_MIGRATION_STATUS_COMPLETED:
            return 0;
        case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY:
            if (untilActive)
                return 0;
            started = true;
            break;
        case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_RECOVER:
            started = true;
            break;
        case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED:
            if (started) {
                virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                               _("the resumed post-copy migration broke again: QEMU lost the migration connection (postcopy-paused)"));
                return -1;
            }
            if ((unsigned long long) (g_get_real_time() / 1000) > connectDeadline) {
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("QEMU did not resume the post-copy migration within %d seconds: it could not connect to the destination"),
                               QEMU_MIGRATION_RESUME_CONNECT_SECONDS);
                return -1;
            }
            break;
        default:
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("post-copy recovery failed: QEMU's migration is '%s'"),
                           NULLSTR(qemuMonitorMigrationStatusTypeToString(status)));
            return -1;
        }
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_MIGRATION_RESUME_POLL_MS) < 0)
            return -1;
    }
}

/* ---------------------------------------------------------------------- */
/* Source                                                                 */
/* ---------------------------------------------------------------------- */

/* The source's resume failed or was cancelled (vm locked, the adopted
 * migration-out job held): the guest stays paused (post-copy failed), the
 * job ends failed with the last error. */
static void
qemuMigrationSrcResumeEndFailed(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virErrorPtr err = NULL;

    virErrorPreserveLast(&err);
    qemuMigrationSrcPostcopyFailed(driver, vm);
    if (priv->pausedReason == VIR_DOMAIN_PAUSED_POSTCOPY)
        priv->pausedReason = 0;
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, err ? err->message : NULL);
    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);
    VIR_WARN("Post-copy recovery of '%s' failed (%s): the guest stays paused here",
             vm->def->name, err && err->message ? err->message : "?");
    virErrorRestore(&err);
}

char *
qemuMigrationSrcResumeBegin(virQEMUDriver *driver,
                            virConnectPtr conn,
                            virDomainObj *vm,
                            char **cookieout,
                            int *cookieoutlen,
                            unsigned long flags)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    g_autofree char *xml = NULL;

    if (qemuMigrationResumeCheckState(vm, flags, false, false) < 0)
        return NULL;
    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                   VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, flags) < 0)
        return NULL;
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;
    priv->migrationConn = conn;
    /* the state may have changed while the job was awaited */
    if (qemuMigrationResumeCheckState(vm, flags, false, true) < 0 ||
        qemuMigrationResumeCheckQEMU(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, _("source")) < 0 ||
        qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_BEGIN_RESUME) < 0)
        goto endjob;

    if (!(xml = virDomainDefFormat(vm->def, driver->xmlopt,
                                   VIR_DOMAIN_DEF_FORMAT_SECURE |
                                   VIR_DOMAIN_DEF_FORMAT_MIGRATABLE)) ||
        !(cookie = qemuMigrationCookieNew(vm->def)) ||
        qemuMigrationCookieFormat(cookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
        goto endjob;
    VIR_INFO("Post-copy recovery of '%s' begins (flags 0x%lx)", vm->def->name, flags);
    return g_steal_pointer(&xml);

 endjob:
    {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, err ? err->message : NULL);
        priv->migrationConn = NULL;
        qemuDomainObjEndAsyncJob(vm);
        qemuDomainObjSaveStatus(driver, vm);
        virErrorRestore(&err);
    }
    return NULL;
}

/* --postcopy-bandwidth given to the resume (MiB/s): QEMU's
 * max-postcopy-bandwidth for the rest of the transfer. */
static int
qemuMigrationSrcResumeSetBandwidth(virDomainObj *vm, unsigned long long mibps)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(tdmJSONValue) args = tdmJSONValueNewObject();
    int rc;

    if (tdmJSONValueObjectSetNumberULLong(args, "max-postcopy-bandwidth",
                                          mibps * 1024ULL * 1024ULL) < 0)
        return -1;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return -1;
    rc = qemuMonitorJSONSetMigrationParams(priv->mon, &args);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    priv->migMaxPostcopyBandwidth = mibps;
    return 0;
}

/* vm locked, the migration-out job held in phase begin_resume: asks QEMU
 * to resume the stream to @uri and waits until it is postcopy-active. */
static int
qemuMigrationSrcResumeRun(virQEMUDriver *driver,
                          virDomainObj *vm,
                          const char *uri,
                          virTypedParameterPtr params,
                          int nparams,
                          char **cookieout,
                          int *cookieoutlen)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    g_autofree char *qemuURI = NULL;
    unsigned long long postcopyBandwidth = 0;
    int rc;

    if (priv->job.phase != QEMU_MIGRATION_OUT_PHASE_BEGIN_RESUME) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the post-copy recovery of domain '%s' is not at its Perform step (phase %s)"),
                       vm->def->name,
                       NULLSTR(qemuDomainAsyncJobPhaseToString(priv->job.asyncJob,
                                                               priv->job.phase)));
        return -1;
    }
    if (!uri) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("the destination did not give a migration URI"));
        return -1;
    }
    if (!(qemuURI = qemuMigrationQEMUURI(uri, 0)))
        return -1;
    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is no longer running: QEMU exited before the post-copy recovery"));
        return -1;
    }
    if (virTypedParamsGetULLong(params, nparams, VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY,
                                &postcopyBandwidth) == 1 && postcopyBandwidth &&
        qemuMigrationSrcResumeSetBandwidth(vm, postcopyBandwidth) < 0)
        return -1;
    if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_POSTCOPY_RESUME) < 0)
        return -1;

    VIR_INFO("Resuming the post-copy migration of '%s' to %s", vm->def->name, qemuURI);
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return -1;
    rc = qemuMonitorJSONMigrate(priv->mon, qemuURI, true);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    if (qemuMigrationResumeWait(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, true,
                                g_get_real_time() / 1000 +
                                QEMU_MIGRATION_RESUME_CONNECT_SECONDS * 1000ULL) < 0)
        return -1;

    /* the stream runs again: the guest is in post-copy, no longer failed */
    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                      VIR_DOMAIN_EVENT_SUSPENDED,
                                      VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY));
    qemuDomainObjSaveStatus(driver, vm);
    if (!(cookie = qemuMigrationCookieNew(vm->def)) ||
        qemuMigrationCookieFormat(cookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
        return -1;
    VIR_INFO("Post-copy migration of '%s' resumed", vm->def->name);
    return 0;
}

int
qemuMigrationSrcResumePerform(virQEMUDriver *driver,
                              virDomainObj *vm,
                              virTypedParameterPtr params,
                              int nparams,
                              char **cookieout,
                              int *cookieoutlen,
                              unsigned long flags G_GNUC_UNUSED)
{
    if (qemuMigrationJobContinue(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return -1;
    if (qemuMigrationSrcResumeRun(driver, vm,
                                  qemuMigrationParamString(params, nparams,
                                                           VIR_MIGRATE_PARAM_URI),
                                  params, nparams, cookieout, cookieoutlen) < 0) {
        /* libvirt calls no Confirm after a failed Perform */
        qemuMigrationSrcResumeEndFailed(driver, vm);
        return -1;
    }
    return 0;
}

/* vm locked, the migration-out job held: the end of the source side. */
static int
qemuMigrationSrcResumeConfirmLocked(virQEMUDriver *driver,
                                    virDomainObj *vm,
                                    unsigned long flags,
                                    bool cancelled)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (cancelled) {
        /* before Perform (Prepare failed) nothing happened; after it, the
         * destination could not finish: the stream broke again */
        bool performed = priv->job.phase >= QEMU_MIGRATION_OUT_PHASE_POSTCOPY_RESUME;

        if (performed && virGetLastErrorCode() == VIR_ERR_OK)
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("the destination could not finish the post-copy recovery of '%s': the guest stays paused (post-copy failed) here"),
                           vm->def->name);
        VIR_INFO("Post-copy recovery of '%s' cancelled", vm->def->name);
        qemuMigrationSrcResumeEndFailed(driver, vm);
        return performed ? -1 : 0;
    }
    if (priv->job.phase != QEMU_MIGRATION_OUT_PHASE_POSTCOPY_RESUME) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the post-copy recovery of domain '%s' was not performed"),
                       vm->def->name);
        qemuMigrationSrcResumeEndFailed(driver, vm);
        return -1;
    }
    if (qemuMigrationResumeWait(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, false, 0) < 0) {
        qemuMigrationPostcopyReportFailed(vm, virGetLastErrorMessage());
        qemuMigrationSrcResumeEndFailed(driver, vm);
        return -1;
    }
    VIR_INFO("Post-copy recovery of '%s' completed: stopping the source", vm->def->name);
    if (priv->pausedReason == VIR_DOMAIN_PAUSED_POSTCOPY)
        priv->pausedReason = 0;
    qemuMigrationSrcStopMigrated(driver, vm, flags);
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuMigrationQueueJobCompleted(driver, vm);
    qemuDomainObjSaveStatus(driver, vm);
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
    return 0;
}

int
qemuMigrationSrcResumeConfirm(virQEMUDriver *driver,
                              virDomainObj *vm,
                              unsigned long flags,
                              bool cancelled)
{
    if (qemuMigrationJobContinue(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return -1;
    return qemuMigrationSrcResumeConfirmLocked(driver, vm, flags, cancelled);
}

int
qemuMigrationSrcResumePeer2Peer(virQEMUDriver *driver,
                                virDomainObj *vm,
                                const char *dconnuri,
                                virTypedParameterPtr params,
                                int nparams,
                                unsigned long flags)
{
    virConnectPtr dconn = NULL;
    virDomainPtr ddomain = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *cookie1 = NULL;
    g_autofree char *cookie2 = NULL;
    g_autofree char *cookie3 = NULL;
    g_autofree char *cookie4 = NULL;
    int cookie1len = 0, cookie2len = 0, cookie3len = 0, cookie4len = 0;
    g_autofree char *uriOut = NULL;
    virTypedParameterPtr dparams = NULL;
    int ndparams = 0;
    const char *uri;
    unsigned long destflags = flags & ~(VIR_MIGRATE_ABORT_ON_ERROR |
                                        VIR_MIGRATE_AUTO_CONVERGE |
                                        VIR_MIGRATE_PEER2PEER);
    bool cancelled = true;
    virErrorPtr err = NULL;
    int rc;
    int ret = -1;

    if (!(xml = qemuMigrationSrcResumeBegin(driver, NULL, vm, &cookie1, &cookie1len, flags)))
        return -1;

    /* talking to the other daemon: never with the domain locked */
    virObjectUnlock(vm);
    dconn = virConnectOpenAuth(dconnuri, virConnectAuthPtrDefault, 0);
    virObjectLock(vm);
    if (!dconn) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot connect to the destination '%s': %s"),
                       dconnuri, virGetLastErrorMessage());
        goto confirm;
    }
    if (!VIR_DRV_SUPPORTS_FEATURE(dconn->driver, dconn, VIR_DRV_FEATURE_MIGRATION_PARAMS) ||
        !dconn->driver->domainMigratePrepare3Params ||
        !dconn->driver->domainMigrateFinish3Params) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("the destination does not support migration v3 with parameters"));
        goto confirm;
    }
    virTypedParamsCopy(&dparams, params, nparams);
    ndparams = nparams;
    if (virTypedParamsReplaceString(&dparams, &ndparams, VIR_MIGRATE_PARAM_DEST_XML, xml) < 0)
        goto confirm;

    virObjectUnlock(vm);
    rc = dconn->driver->domainMigratePrepare3Params(dconn, dparams, ndparams,
                                                    cookie1, cookie1len,
                                                    &cookie2, &cookie2len,
                                                    &uriOut, destflags);
    virObjectLock(vm);
    if (rc < 0)
        goto confirm;

    uri = uriOut ? uriOut : qemuMigrationParamString(params, nparams, VIR_MIGRATE_PARAM_URI);
    if (uri && virTypedParamsReplaceString(&dparams, &ndparams, VIR_MIGRATE_PARAM_URI, uri) < 0)
        goto finish;
    if (qemuMigrationSrcResumeRun(driver, vm, uri, params, nparams, &cookie3, &cookie3len) == 0)
        cancelled = false;

 finish:
    virErrorPreserveLast(&err);
    virObjectUnlock(vm);
    ddomain = dconn->driver->domainMigrateFinish3Params(dconn, dparams, ndparams,
                                                        cookie3 ? cookie3 : cookie2,
                                                        cookie3 ? cookie3len : cookie2len,
                                                        &cookie4, &cookie4len,
                                                        destflags, cancelled);
    virObjectLock(vm);
    if (cancelled && err) {
        virErrorRestore(&err);
    } else {
        virFreeError(err);
        err = NULL;
    }
    cancelled = ddomain == NULL;

 confirm:
    virErrorPreserveLast(&err);
    if (qemuMigrationSrcResumeConfirmLocked(driver, vm, flags, cancelled) == 0 && !cancelled)
        ret = 0;
    if (cancelled)
        virErrorRestore(&err);
    else
        virFreeError(err);

    if (ddomain)
        virObjectUnref(ddomain);
    virTypedParamsFree(dparams, ndparams);
    if (dconn) {
        virErrorPtr cerr = NULL;

        /* virConnectClose resets the thread's last error */
        virErrorPreserveLast(&cerr);
        virObjectUnlock(vm);
        virConnectClose(dconn);
        virObjectLock(vm);
        virErrorRestore(&cerr);
    }
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Destination                                                            */
/* ---------------------------------------------------------------------- */

bool
qemuMigrationDstResumeRunning(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    return priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN &&
           priv->job.phase >= QEMU_MIGRATION_IN_PHASE_PREPARE_RESUME;
}

static void
qemuMigrationDstResumeReleasePort(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->migrationPort) {
        virPortAllocatorRelease(priv->migrationPort);
        priv->migrationPort = 0;
    }
}

void
qemuMigrationDstResumeEndFailed(virQEMUDriver *driver, virDomainObj *vm,
                                const char *why)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virErrorPtr err = NULL;

    /* post-copy failed again, reports why */
    qemuMigrationDstPostcopyFailed(driver, vm, why);
    virErrorPreserveLast(&err);
    /* priv->migrationPort stays reserved: QEMU 7.2 may still listen there
     * (migrate-recover without a source), the next Prepare uses it */
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, err ? err->message : NULL);
    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);
    virErrorRestore(&err);
}

/* The domain of a resume on this host, locked and referenced, or NULL
 * with an error. */
static virDomainObj *
qemuMigrationDstResumeFind(virQEMUDriver *driver,
                           const char *dname,
                           qemuMigrationCookie *cookie)
{
    virDomainObj *vm = NULL;

    if (dname)
        vm = virDomainObjListFindByName(driver->domains, dname);
    else if (cookie->name)
        vm = virDomainObjListFindByUUID(driver->domains, cookie->uuid);
    if (!vm)
        virReportError(VIR_ERR_NO_DOMAIN,
                       _("cannot resume the post-copy migration of '%s': no such domain on the destination host"),
                       NULLSTR(dname ? dname : cookie->name));
    return vm;
}

int
qemuMigrationDstResumePrepare(virQEMUDriver *driver,
                              virConnectPtr dconn,
                              const char *dname,
                              const char *uriIn,
                              const char *listenAddress,
                              const char *cookiein,
                              int cookieinlen,
                              char **cookieout,
                              int *cookieoutlen,
                              char **uriOut,
                              unsigned long flags)
{
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    g_autoptr(qemuMigrationCookie) outCookie = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    g_autofree char *listenURI = NULL;
    g_autofree char *host = NULL;
    qemuDomainObjPrivate *priv;
    virDomainObj *vm = NULL;
    unsigned short port = 0;
    int rc;
    int ret = -1;

    if (!(cookie = qemuMigrationCookieParse(cookiein, cookieinlen, driver->xmlopt)))
        return -1;
    if (!(vm = qemuMigrationDstResumeFind(driver, dname, cookie)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainMigratePrepare3ParamsEnsureACL(dconn, vm->def) < 0)
        goto cleanup;
    if (cookie->name && memcmp(cookie->uuid, vm->def->uuid, VIR_UUID_BUFLEN) != 0) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot resume the post-copy migration of '%s': the domain of that name on the destination host is another one (UUID differs)"),
                       vm->def->name);
        goto cleanup;
    }
    if (qemuMigrationResumeCheckState(vm, flags, true, false) < 0)
        goto cleanup;
    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_IN,
                                   VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN, flags) < 0)
        goto cleanup;
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;
    if (qemuMigrationResumeCheckState(vm, flags, true, true) < 0 ||
        qemuMigrationResumeCheckQEMU(vm, QEMU_ASYNC_JOB_MIGRATION_IN, _("destination")) < 0)
        goto endjob;

    if (virPortAllocatorAcquire(driver->migrationPorts, &port) < 0)
        goto endjob;
    if (!listenAddress)
        listenAddress = driver->config->migrationAddress;
    if (!listenAddress)
        listenAddress = "0.0.0.0";
    if (strchr(listenAddress, ':') && listenAddress[0] != '[')
        listenURI = g_strdup_printf("tcp:[%s]:%u", listenAddress, port);
    else
        listenURI = g_strdup_printf("tcp:%s:%u", listenAddress, port);

    if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_IN_PHASE_PREPARE_RESUME) < 0)
        goto endjob;
    cmd = tdmJSONCommandBuild("migrate-recover", "s:uri", listenURI, NULL);
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        goto endjob;
    rc = qemuMonitorSendCommand(priv->mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, &reply);
    if (rc == 0)
        rc = qemuMonitorReplyCheckError("migrate-recover", reply);
    if (qemuDomainObjExitMonitor(vm) < 0)
        goto endjob;
    if (rc < 0 && priv->migrationPort) {
        /* QEMU 7.2 runs migrate-recover once until a source connects: the
         * listener of a failed earlier attempt is still there */
        VIR_WARN("Post-copy recovery of '%s': QEMU still listens on port %u from an earlier attempt (%s): using it",
                 vm->def->name, priv->migrationPort, virGetLastErrorMessage());
        virResetLastError();
        virPortAllocatorRelease(port);
        port = priv->migrationPort;
    } else if (rc < 0) {
        goto endjob;
    } else {
        /* a fresh listener: an earlier one is gone */
        qemuMigrationDstResumeReleasePort(vm);
        priv->migrationPort = port;
    }
    port = 0;

    if (uriIn) {
        if (!(*uriOut = qemuMigrationQEMUURI(uriIn, priv->migrationPort)))
            goto endjob;
    } else {
        host = driver->config->migrationHost ?
               g_strdup(driver->config->migrationHost) : virGetHostname();
        if (!host)
            goto endjob;
        *uriOut = g_strdup_printf("tcp:%s:%u", host, priv->migrationPort);
    }
    if (!(outCookie = qemuMigrationCookieNew(vm->def)) ||
        qemuMigrationCookieFormat(outCookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
        goto endjob;
    priv->migrationConn = dconn;
    qemuDomainObjSaveStatus(driver, vm);
    VIR_INFO("Post-copy recovery of '%s': QEMU listens on port %u (URI %s)",
             vm->def->name, priv->migrationPort, *uriOut);
    /* the migration-in job goes on until Finish */
    ret = 0;
    goto cleanup;

 endjob:
    {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        g_clear_pointer(uriOut, g_free);
        /* priv->migrationPort: QEMU may listen there */
        if (port)
            virPortAllocatorRelease(port);
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, err ? err->message : NULL);
        qemuDomainObjEndAsyncJob(vm);
        qemuDomainObjSaveStatus(driver, vm);
        virErrorRestore(&err);
    }
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* Destination, the stream resumed (postcopy-active): the vCPUs run
 * (started when they were paused), running (post-copy).  vm locked, the
 * migration-in job held. */
static int
qemuMigrationDstResumeStartCPUs(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    bool running = false;
    int vmStatus = 0;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        return -1;
    rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &vmStatus);
    if (rc == 0 && !running)
        rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_IN_PHASE_POSTCOPY_RESUME) < 0)
        return -1;
    virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_POSTCOPY);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                      VIR_DOMAIN_EVENT_RESUMED,
                                      VIR_DOMAIN_EVENT_RESUMED_POSTCOPY));
    qemuDomainObjSaveStatus(driver, vm);
    VIR_INFO("Post-copy migration of '%s' resumed: the guest runs here again",
             vm->def->name);
    return 0;
}

/* --persistent: the definition is kept (vm locked, job held). */
static int
qemuMigrationDstResumePersist(virQEMUDriver *driver, virDomainObj *vm,
                              qemuMigrationCookie *cookie)
{
    virDomainDef *persistent = cookie->persistent;
    bool existed = vm->persistent;

    if (!persistent && !(persistent = virDomainDefCopy(vm->def, driver->xmlopt, NULL, true)))
        return -1;
    cookie->persistent = NULL;
    if (virDomainDefSave(persistent, driver->xmlopt, driver->paths.configDir) < 0) {
        virDomainDefFree(persistent);
        return -1;
    }
    virDomainDefFree(vm->newDef);
    vm->newDef = persistent;
    vm->persistent = 1;
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                      VIR_DOMAIN_EVENT_DEFINED,
                                      existed ? VIR_DOMAIN_EVENT_DEFINED_UPDATED
                                              : VIR_DOMAIN_EVENT_DEFINED_ADDED));
    return 0;
}

virDomainPtr
qemuMigrationDstResumeFinish(virQEMUDriver *driver,
                             virConnectPtr dconn,
                             const char *dname,
                             const char *cookiein,
                             int cookieinlen,
                             char **cookieout,
                             int *cookieoutlen,
                             unsigned long flags,
                             bool cancelled)
{
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    g_autoptr(qemuMigrationCookie) outCookie = NULL;
    qemuDomainObjPrivate *priv;
    virDomainObj *vm = NULL;
    virDomainPtr dom = NULL;

    if (!(cookie = qemuMigrationCookieParse(cookiein, cookieinlen, driver->xmlopt)))
        return NULL;
    if (!(vm = qemuMigrationDstResumeFind(driver, dname, cookie)))
        return NULL;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainMigrateFinish3ParamsEnsureACL(dconn, vm->def) < 0)
        goto cleanup;
    if (qemuMigrationJobContinue(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        goto cleanup;
    if (!qemuMigrationDstResumeRunning(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the incoming migration of domain '%s' is not a post-copy recovery"),
                       vm->def->name);
        goto cleanup;
    }

    if (cancelled) {
        VIR_INFO("Post-copy recovery of '%s' cancelled by the source", vm->def->name);
        qemuMigrationDstResumeEndFailed(driver, vm,
                                        _("the source could not resume the migration"));
        virResetLastError();
        goto cleanup;
    }

    /* the source saw the stream resume: QEMU here is postcopy-active (or
     * done already) */
    if (qemuMigrationResumeWait(vm, QEMU_ASYNC_JOB_MIGRATION_IN, true, 0) < 0)
        goto fail;
    if (!(flags & VIR_MIGRATE_PAUSED) &&
        qemuMigrationDstResumeStartCPUs(driver, vm) < 0)
        goto fail;
    if (qemuMigrationResumeWait(vm, QEMU_ASYNC_JOB_MIGRATION_IN, false, 0) < 0)
        goto fail;

    /* QEMU has the whole guest: it is this host's */
    if (!(flags & VIR_MIGRATE_PAUSED)) {
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                          VIR_DOMAIN_EVENT_RESUMED,
                                          VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
    }
    if ((flags & VIR_MIGRATE_PERSIST_DEST) &&
        qemuMigrationDstResumePersist(driver, vm, cookie) < 0)
        VIR_WARN("Post-copy recovery of '%s': the definition could not be saved: %s",
                 vm->def->name, virGetLastErrorMessage());
    qemuMigrationDstResumeReleasePort(vm);
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuMigrationQueueJobCompleted(driver, vm);
    qemuDomainObjSaveStatus(driver, vm);
    if ((outCookie = qemuMigrationCookieNew(vm->def)))
        ignore_value(qemuMigrationCookieFormat(outCookie, driver->xmlopt,
                                               cookieout, cookieoutlen));
    VIR_INFO("Post-copy recovery of '%s' finished: the guest runs here", vm->def->name);
    dom = virGetDomain(dconn, vm->def->name, vm->def->uuid, vm->def->id);
    goto cleanup;

 fail:
    qemuMigrationDstResumeEndFailed(driver, vm, virGetLastErrorMessage());

 cleanup:
    virDomainObjEndAPI(&vm);
    if (cancelled && !dom && virGetLastErrorCode() == VIR_ERR_OK)
        virReportError(VIR_ERR_MIGRATE_FINISH_OK, NULL);
    return dom;
}

int
qemuMigrationDstResumeRecover(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuMonitorMigrationStats st = { 0 };
    bool running = false;
    int vmStatus = 0;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        return 0;
    rc = qemuMonitorJSONQueryMigrate(priv->mon, &st);
    if (rc == 0)
        rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &vmStatus);
    if (rc == 0 && st.status == QEMU_MONITOR_MIGRATION_STATUS_COMPLETED && !running &&
        qemuMonitorJSONStartCPUs(priv->mon) == 0)
        running = true;
    if (qemuDomainObjExitMonitor(vm) < 0)
        rc = -1;

    if (rc == 0 && running && st.status == QEMU_MONITOR_MIGRATION_STATUS_COMPLETED) {
        VIR_WARN("Post-copy recovery of '%s' was interrupted, QEMU completed it: the guest runs here",
                 vm->def->name);
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                          VIR_DOMAIN_EVENT_RESUMED,
                                          VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
    } else if (rc == 0 && running && st.status == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY) {
        VIR_WARN("Post-copy recovery of '%s' was interrupted while QEMU still receives: the guest keeps running here",
                 vm->def->name);
    } else if (virDomainObjIsActive(vm)) {
        VIR_WARN("Post-copy recovery of '%s' was interrupted (QEMU: %s): the guest stays here, post-copy failed",
                 vm->def->name, rc < 0 ? "unknown" :
                 NULLSTR(qemuMonitorMigrationStatusTypeToString(st.status)));
        qemuMigrationDstPostcopyFailed(driver, vm, _("the daemon restarted during the post-copy recovery"));
        virResetLastError();
    }
    qemuMonitorMigrationStatsClear(&st);
    return 0;
}
