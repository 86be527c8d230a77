/*
 * qemu_migration_postcopy.c: post-copy migration (VIR_MIGRATE_POSTCOPY,
 * virDomainMigrateStartPostCopy); see qemu_migration_postcopy.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

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

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_migration_postcopy");

bool
qemuMigrationPostcopySwitched(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int reason;
    virDomainState state = virDomainObjGetState(vm, &reason);

    if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT) {
        if (priv->job.phase == QEMU_MIGRATION_OUT_PHASE_POSTCOPY)
            return true;
        return state == VIR_DOMAIN_PAUSED &&
               (reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
                reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED);
    }
    if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN)
        return priv->job.phase >= QEMU_MIGRATION_IN_PHASE_POSTCOPY;
    return false;
}

void
qemuMigrationSrcPostcopyMarkSwitched(virQEMUDriver *driver, virDomainObj *vm)
{
    int reason;

    if (virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
        reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
        reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)
        return;
    /* the STOP of the switch came before the switch was asked for through
     * this driver (or the reason was the migration's) */
    VIR_INFO("Migration of '%s' switched to post-copy", vm->def->name);
    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                        VIR_DOMAIN_EVENT_SUSPENDED,
                                        VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY));
    qemuDomainObjSaveStatus(driver, vm);
}

void
qemuMigrationSrcPostcopyFailed(virQEMUDriver *driver, virDomainObj *vm)
{
    int reason;

    if (!virDomainObjIsActive(vm) ||
        virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
        reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)
        return;
    VIR_WARN("Migration of '%s' failed after the switch to post-copy: leaving it paused",
             vm->def->name);
    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY_FAILED);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                        VIR_DOMAIN_EVENT_SUSPENDED,
                                        VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED));
    qemuDomainObjSaveStatus(driver, vm);
}

void
qemuMigrationPostcopyHandleStatus(virQEMUDriver *driver,
                                  virDomainObj *vm,
                                  int status)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->job.asyncJob != QEMU_ASYNC_JOB_MIGRATION_OUT ||
        !(priv->job.apiFlags & VIR_MIGRATE_POSTCOPY) ||
        !virDomainObjIsActive(vm))
        return;

    switch ((qemuMonitorMigrationStatus) status) {
    case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY:
        qemuMigrationSrcPostcopyMarkSwitched(driver, vm);
        break;
    case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED:
    case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_RECOVER:
    case QEMU_MONITOR_MIGRATION_STATUS_ERROR:
        /* after Perform returned nobody watches the source's QEMU until
         * Confirm: the state changes here */
        if (qemuMigrationPostcopySwitched(vm))
            qemuMigrationSrcPostcopyFailed(driver, vm);
        break;
    default:
        break;
    }
}

int
qemuMigrationDstPostcopyResume(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        return -1;
    rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    /* the phase first: from here a failure pauses the guest here instead
     * of destroying it (it is the only copy with the newest state) */
    if (qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_IN_PHASE_POSTCOPY) < 0)
        return -1;
    VIR_INFO("Incoming migration of '%s' switched to post-copy: the guest runs here",
             vm->def->name);
    virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_POSTCOPY);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                        VIR_DOMAIN_EVENT_RESUMED,
                                        VIR_DOMAIN_EVENT_RESUMED_POSTCOPY));
    qemuDomainObjSaveStatus(driver, vm);
    return 0;
}

void
qemuMigrationPostcopyReportFailed(virDomainObj *vm, const char *why)
{
    virReportError(VIR_ERR_OPERATION_FAILED,
                   _("post-copy migration of '%s' failed after the switch (%s): the guest's state is split between the hosts and cannot be rolled back; the source is left paused (post-copy failed), the destination's copy, where its QEMU lives, running (post-copy failed) until the missing pages arrive; while both QEMUs live, fix the cause and resume the migration with VIR_MIGRATE_POSTCOPY_RESUME (virsh migrate --postcopy --postcopy-resume)"),
                   vm->def->name, why);
}

int
qemuMigrationDstPostcopyFailed(virQEMUDriver *driver, virDomainObj *vm,
                               const char *why)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *cause = g_strdup(why);
    bool running = false;
    int vmStatus = 0;
    int reason;
    int rc = -1;

    /* no 'stop': vCPUs blocked on pages that have not arrived cannot be
     * paused, QEMU would not answer until the stream resumed */
    if (virDomainObjIsActive(vm) &&
        qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) == 0) {
        rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &vmStatus);
        if (qemuDomainObjExitMonitor(vm) < 0)
            rc = -1;
    }
    if (virDomainObjIsActive(vm)) {
        virDomainState state = virDomainObjGetState(vm, &reason);

        if (rc == 0 && running &&
            (state != VIR_DOMAIN_RUNNING || reason != VIR_DOMAIN_RUNNING_POSTCOPY_FAILED)) {
            virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_POSTCOPY_FAILED);
            qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                                VIR_DOMAIN_EVENT_RESUMED,
                                                VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED));
        } else if ((rc < 0 || !running) &&
                   (state != VIR_DOMAIN_PAUSED || reason != VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)) {
            virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY_FAILED);
            qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                                VIR_DOMAIN_EVENT_SUSPENDED,
                                                VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED));
        }
        qemuDomainObjSaveStatus(driver, vm);
    }
    VIR_WARN("Incoming migration of '%s' failed in post-copy: %s", vm->def->name, cause);
    qemuMigrationPostcopyReportFailed(vm, cause);
    return -1;
}

void
qemuMigrationDstPostcopyReportUnsupported(void)
{
    g_autofree char *qemuMsg = g_strdup(virGetLastErrorMessage());

    virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                   _("post-copy migration is not available on the destination host: %s (QEMU needs userfaultfd: allow it with the sysctl vm.unprivileged_userfaultfd=1, or run QEMU as a user that may use it, 'user' in qemu.conf)"),
                   qemuMsg);
}

int
qemuMigrationSrcPostcopyPause(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    int reason;
    int rc;

    if (virDomainObjCheckActive(vm) < 0)
        return -1;
    if (priv->job.asyncJob != QEMU_ASYNC_JOB_MIGRATION_OUT ||
        !qemuMigrationPostcopySwitched(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot pause the migration of domain '%s': no outgoing migration in post-copy mode is running"),
                       vm->def->name);
        return -1;
    }
    if (virDomainObjGetState(vm, &reason) == VIR_DOMAIN_PAUSED &&
        reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("the post-copy migration of domain '%s' is paused already (post-copy failed)"),
                       vm->def->name);
        return -1;
    }
    VIR_INFO("Pausing the post-copy migration of '%s' on request", vm->def->name);
    cmd = tdmJSONCommandBuild("migrate-pause", NULL);
    if (qemuDomainObjEnterMonitor(vm) < 0)
        return -1;
    rc = qemuMonitorSendCommand(priv->mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, &reply);
    if (rc == 0)
        rc = qemuMonitorReplyCheckError("migrate-pause", reply);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    /* the MIGRATION event postcopy-paused ends the migration's waits */
    return 0;
}

int
qemuDomainMigrateStartPostCopy(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    int oldReason;
    int rc;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainMigrateStartPostCopyEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MIGRATION_OP) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto endjob;
    if (priv->job.asyncJob != QEMU_ASYNC_JOB_MIGRATION_OUT) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot switch domain '%s' to post-copy: no outgoing migration is running"),
                       vm->def->name);
        goto endjob;
    }
    if (!(priv->job.apiFlags & VIR_MIGRATE_POSTCOPY)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot switch domain '%s' to post-copy: the migration was not started with VIR_MIGRATE_POSTCOPY (virsh migrate --postcopy)"),
                       vm->def->name);
        goto endjob;
    }
    if (qemuMigrationPostcopySwitched(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("migration of domain '%s' is already in post-copy mode"),
                       vm->def->name);
        goto endjob;
    }
    if (priv->job.phase < QEMU_MIGRATION_OUT_PHASE_PERFORM3) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot switch domain '%s' to post-copy: the migration has not started moving data yet"),
                       vm->def->name);
        goto endjob;
    }

    /* the STOP of the switch records this reason */
    oldReason = priv->pausedReason;
    priv->pausedReason = VIR_DOMAIN_PAUSED_POSTCOPY;
    cmd = tdmJSONCommandBuild("migrate-start-postcopy", NULL);
    VIR_INFO("Switching the migration of '%s' to post-copy", vm->def->name);
    if (qemuDomainObjEnterMonitor(vm) < 0) {
        priv->pausedReason = oldReason;
        goto endjob;
    }
    rc = qemuMonitorSendCommand(priv->mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, &reply);
    if (rc == 0)
        rc = qemuMonitorReplyCheckError("migrate-start-postcopy", reply);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        if (priv->pausedReason == VIR_DOMAIN_PAUSED_POSTCOPY)
            priv->pausedReason = oldReason;
        goto endjob;
    }
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}
