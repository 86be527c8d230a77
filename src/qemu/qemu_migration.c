/*
 * qemu_migration.c: live and offline migration between libvirt hosts, the
 * v3 protocol with parameters (begin, prepare, perform, finish, confirm)
 *
 *   source                         destination
 *   Begin    async job out, XML
 *                                  Prepare  async job in, QEMU -incoming
 *   Perform  QEMU migrates, wait
 *                                  Finish   wait, resume, end job
 *   Confirm  stop (or resume when cancelled), end job
 *
 * With --copy-storage-all/-inc the disks are copied over NBD first, inside
 * Perform (qemu_migration_nbd.h).
 *
 * Client-managed migration calls each step through its own connection;
 * peer-to-peer migration runs them all from the source's Perform, the
 * source daemon talking to the destination daemon itself.  Every wait
 * releases the domain lock: queries keep being answered on both sides.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_migration.h"
#include "qemu_migration_cookie.h"
#include "qemu_migration_postcopy.h"
#include "qemu_migration_resume.h"
#include "qemu_migration_nbd.h"
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
#include "virlog.h"
#include "virtime.h"
#include "virtypedparam.h"
#include "viruuid.h"
#include "virutil.h"
#include "virstring.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_migration");

/* how often a waiting step refreshes the progress from QEMU (ms) */
#define QEMU_MIGRATION_POLL_MS 250

/* After the async job ended (vm locked): the job-completed event with the
 * final statistics when the migration succeeded, as libvirt sends it on
 * both hosts. */
void
qemuMigrationQueueJobCompleted(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainJobInfo *done = QEMU_DOMAIN_PRIVATE(vm)->job.completed;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type;

    if (!done || done->type != VIR_DOMAIN_JOB_COMPLETED ||
        qemuDomainJobInfoToParams(done, &type, &params, &nparams) < 0)
        return;
    qemuDriverQueueEvent(driver,
                            virDomainEventJobCompletedNewFromObj(vm, params, nparams));
}

/* Set once libvirtd begins to stop (stateShutdownPrepare, after it closed
 * every client connection): an incoming migration's Finish can no longer
 * answer the source, so it does not commit (docs/THREADS.txt section 7).
 * Atomic: read by Finish threads, written by the daemon's main thread. */
static int qemuMigrationShuttingDown;

void
qemuMigrationShutdownPrepare(void)
{
    g_atomic_int_set(&qemuMigrationShuttingDown, 1);
}

/* TEST ONLY: the environment variable @knob=N makes the migration wait N
 * ms (at most 10 s) at @where, with the domain unlocked, so that the
 * fault tests can stop or kill a daemon there (tests/fault/CASES.md):
 * TANDEM_TEST_FINISH_DELAY_MS before an incoming migration's commit point
 * (K10), TANDEM_TEST_CONFIRM_DELAY_MS before a peer-to-peer source's
 * Confirm of a finished migration (K14).  Never set them elsewhere.  vm
 * locked, the migration job held. */
static void
qemuMigrationTestDelay(virDomainObj *vm, const char *knob, const char *where)
{
    const char *env = getenv(knob);
    unsigned int ms = 0;

    if (!env || virStrToLong_ui(env, NULL, 10, &ms) < 0 || ms == 0)
        return;
    ms = MIN(ms, 10000);
    VIR_WARN("Migration of '%s': test delay of %u ms %s (%s)",
             vm->def->name, ms, where, knob);
    virObjectUnlock(vm);
    g_usleep(ms * 1000ULL);
    virObjectLock(vm);
}

/* The commit point of an incoming migration (docs/THREADS.txt section 7):
 * Finish may keep the guest only when its answer can still reach the
 * source.  Reports why not and returns -1 otherwise.  vm locked, the
 * migration-in job held. */
static int
qemuMigrationDstCheckCommit(virDomainObj *vm, virConnectPtr dconn)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (g_atomic_int_get(&qemuMigrationShuttingDown)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("incoming migration of '%s' undone: the destination's daemon is shutting down"),
                       vm->def->name);
        return -1;
    }
    if (priv->migrationConn != dconn) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("incoming migration of '%s' undone: the connection driving it closed"),
                       vm->def->name);
        return -1;
    }
    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("incoming migration of '%s' failed: the guest stopped on the destination"),
                       vm->def->name);
        return -1;
    }
    return 0;
}

static int
qemuMigrationValidateParams(virTypedParameterPtr params, int nparams)
{
    return virTypedParamsValidate(params, nparams,
                                  VIR_MIGRATE_PARAM_URI, VIR_TYPED_PARAM_STRING,
                                  VIR_MIGRATE_PARAM_DEST_NAME, VIR_TYPED_PARAM_STRING,
                                  VIR_MIGRATE_PARAM_DEST_XML, VIR_TYPED_PARAM_STRING,
                                  VIR_MIGRATE_PARAM_PERSIST_XML, VIR_TYPED_PARAM_STRING,
                                  VIR_MIGRATE_PARAM_BANDWIDTH, VIR_TYPED_PARAM_ULLONG,
                                  VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY, VIR_TYPED_PARAM_ULLONG,
                                  VIR_MIGRATE_PARAM_LISTEN_ADDRESS, VIR_TYPED_PARAM_STRING,
                                  VIR_MIGRATE_PARAM_MIGRATE_DISKS,
                                  VIR_TYPED_PARAM_STRING | VIR_TYPED_PARAM_MULTIPLE,
                                  NULL);
}

/* Flags of the migration API that Tandem does not implement: refused by
 * name, before the generic "unsupported flags" check, so that the user
 * learns what is missing. */
static int
qemuMigrationCheckUnsupportedFlags(unsigned long flags)
{
    return qemuMigrationNBDCheckFlags(flags);
}

const char *
qemuMigrationParamString(virTypedParameterPtr params, int nparams, const char *name)
{
    const char *value = NULL;

    if (virTypedParamsGetString(params, nparams, name, &value) < 0)
        return NULL;
    return value;
}

/* The async job of a migration step that began in another API call. */
int
qemuMigrationJobContinue(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->job.asyncJob != asyncJob) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%s' is not being migrated (%s)"), vm->def->name,
                       asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT ? _("outgoing")
                                                                : _("incoming"));
        return -1;
    }
    qemuDomainObjAdoptAsyncJob(vm);
    return 0;
}

int
qemuMigrationSetPhase(virQEMUDriver *driver, virDomainObj *vm, int phase)
{
    if (qemuDomainObjSetJobPhase(vm, phase) < 0)
        return -1;
    qemuDomainObjSaveStatus(driver, vm);
    return 0;
}

/* A QMP command built by the caller, under the async job's nested job. */
static int
qemuMigrationMonitorCommand(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                            tdmJSONValue **cmd, const char *name)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(tdmJSONValue) reply = NULL;
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0) {
        tdmJSONValueFree(*cmd);
        *cmd = NULL;
        return -1;
    }
    rc = qemuMonitorSendCommand(priv->mon, cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, &reply);
    if (rc == 0)
        rc = qemuMonitorReplyCheckError(name, reply);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    return 0;
}

/* Migration events and, on the source, auto-converge; post-copy on both
 * sides when the migration may switch to it (VIR_MIGRATE_POSTCOPY); on a
 * source copying storage, a pause before the switch-over (QEMU stops the
 * vCPUs and waits for migrate-continue: the disk mirrors end there). */
static int
qemuMigrationSetCapabilities(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                             bool autoConverge, bool postcopy,
                             bool pauseBeforeSwitchover)
{
    g_autoptr(tdmJSONValue) caps = tdmJSONValueNewArray();
    g_autoptr(tdmJSONValue) args = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;
    struct {
        const char *name;
        bool state;
    } wanted[] = {
        { "events", true },
        { "auto-converge", autoConverge },
        { "postcopy-ram", postcopy },
        { "pause-before-switchover", pauseBeforeSwitchover },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(wanted); i++) {
        g_autoptr(tdmJSONValue) cap = NULL;

        if (tdmJSONValueObjectCreate(&cap, "s:capability", wanted[i].name,
                                     "b:state", wanted[i].state, NULL) < 0 ||
            tdmJSONValueArrayAppend(caps, &cap) < 0)
            return -1;
    }
    if (tdmJSONValueObjectCreate(&args, "a:capabilities", &caps, NULL) < 0)
        return -1;
    cmd = tdmJSONCommandBuildArgs("migrate-set-capabilities", &args);
    return qemuMigrationMonitorCommand(vm, asyncJob, &cmd, "migrate-set-capabilities");
}

static int
qemuMigrationSetParameter(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                          const char *name, unsigned long long value)
{
    g_autoptr(tdmJSONValue) args = tdmJSONValueNewObject();
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (tdmJSONValueObjectSetNumberULLong(args, name, value) < 0)
        return -1;
    cmd = tdmJSONCommandBuildArgs("migrate-set-parameters", &args);
    return qemuMigrationMonitorCommand(vm, asyncJob, &cmd, "migrate-set-parameters");
}

/* "tcp://host:port" or "tcp:host:port" -> QEMU's "tcp:host:port".  @port
 * fills in a missing port. */
char *
qemuMigrationQEMUURI(const char *uri, int port)
{
    const char *rest;
    g_autofree char *hostport = NULL;

    if (!STRPREFIX(uri, "tcp:")) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED,
                       _("unsupported migration URI '%s': only tcp is supported"), uri);
        return NULL;
    }
    rest = uri + 4;
    if (STRPREFIX(rest, "//"))
        rest += 2;
    hostport = g_strdup(rest);
    if (strchr(hostport, '/'))
        *strchr(hostport, '/') = '\0';
    if (!*hostport) {
        virReportError(VIR_ERR_INVALID_ARG, _("migration URI '%s' has no host"), uri);
        return NULL;
    }
    /* a port is there unless the last ':' belongs to an IPv6 address */
    if (!strrchr(hostport, ':') ||
        (hostport[0] == '[' && strrchr(hostport, ']') > strrchr(hostport, ':'))) {
        if (port <= 0) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("migration URI '%s' has no port"), uri);
            return NULL;
        }
        return g_strdup_printf("tcp:%s:%d", hostport, port);
    }
    return g_strdup_printf("tcp:%s", hostport);
}

/* Copies QEMU's view of the migration into the job's progress. */
void
qemuMigrationUpdateProgress(virDomainObj *vm, const qemuMonitorMigrationStats *st)
{
    qemuDomainJobProgress *p = &QEMU_DOMAIN_PRIVATE(vm)->job.progress;

    p->setupTime = st->setupTime;
    p->downtime = st->status == QEMU_MONITOR_MIGRATION_STATUS_COMPLETED ?
                  st->downtime : st->expectedDowntime;
    if (st->haveRam) {
        p->memTotal = st->ramTotal;
        p->memProcessed = st->ramTransferred;
        p->memRemaining = st->ramRemaining;
        p->memConstant = st->ramDuplicate;
        p->memNormal = st->ramNormal;
        p->memNormalBytes = st->ramNormalBytes;
        p->memDirtyRate = st->ramDirtyRate;
        p->memPageSize = st->ramPageSize;
        p->memIteration = st->ramIteration;
        p->memPostcopyReqs = st->ramPostcopyReqs;
        p->memBps = (unsigned long long) (st->ramMbps * 1000 * 1000 / 8);
    }
    if (st->haveDisk) {
        p->diskTotal = st->diskTotal;
        p->diskProcessed = st->diskTransferred;
        p->diskRemaining = st->diskRemaining;
    }
    p->dataTotal = p->memTotal + p->diskTotal;
    p->dataProcessed = p->memProcessed + p->diskProcessed;
    p->dataRemaining = p->memRemaining + p->diskRemaining;
}

int
qemuMigrationQuery(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                   qemuMonitorMigrationStats *st)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorJSONQueryMigrate(priv->mon, st);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    return 0;
}

/* VIR_MIGRATE_ABORT_ON_ERROR: the guest stopped on an I/O error (recorded
 * by the BLOCK_IO_ERROR and STOP events, qemu_process.c). */
static bool
qemuMigrationPausedOnIOError(virDomainObj *vm)
{
    int reason;

    return virDomainObjGetState(vm, &reason) == VIR_DOMAIN_PAUSED &&
           reason == VIR_DOMAIN_PAUSED_IOERROR;
}

/* Waits (domain unlocked between polls) until QEMU's migration is over.
 * The source cancels when an abort is requested (not after a switch to
 * post-copy, which cannot be undone).  0: completed; 1: QEMU switched to
 * post-copy (postcopy-active) and @returnAtPostcopy asked to stop there;
 * 2: QEMU paused before the switch-over (pre-switchover, with the
 * capability pause-before-switchover) and @returnAtSwitchover asked to
 * stop there. */
static int
qemuMigrationWait(virDomainObj *vm, qemuDomainAsyncJob asyncJob,
                  unsigned long long deadlineMs, bool returnAtPostcopy,
                  bool returnAtSwitchover)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    bool cancelSent = false;

    for (;;) {
        qemuMonitorMigrationStats st = { 0 };
        int status;

        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                           _("domain is no longer running: QEMU exited during migration"));
            return -1;
        }
        if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT &&
            qemuDomainObjAsyncJobAbortRequested(vm) && !cancelSent &&
            !qemuMigrationPostcopySwitched(vm)) {
            VIR_INFO("Cancelling migration of '%s' on request", vm->def->name);
            if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) == 0) {
                int rc = qemuMonitorJSONMigrateCancel(priv->mon);

                if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
                    return -1;
            }
            cancelSent = true;
        }
        if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT &&
            (priv->job.apiFlags & VIR_MIGRATE_ABORT_ON_ERROR) &&
            qemuMigrationPausedOnIOError(vm)) {
            VIR_INFO("Cancelling migration of '%s': the guest paused on an I/O error",
                     vm->def->name);
            if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) == 0) {
                ignore_value(qemuMonitorJSONMigrateCancel(priv->mon));
                ignore_value(qemuDomainObjExitMonitor(vm));
            }
            virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                           _("migration was aborted: the guest paused on an I/O error"));
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

        switch ((qemuMonitorMigrationStatus) status) {
        case QEMU_MONITOR_MIGRATION_STATUS_COMPLETED:
            qemuMonitorMigrationStatsClear(&st);
            return 0;
        case QEMU_MONITOR_MIGRATION_STATUS_CANCELLED:
            qemuMonitorMigrationStatsClear(&st);
            virReportError(VIR_ERR_OPERATION_ABORTED, "%s",
                           _("migration job: canceled by client"));
            return -1;
        case QEMU_MONITOR_MIGRATION_STATUS_ERROR:
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("migration failed: %s"),
                           st.errorDesc ? st.errorDesc : _("QEMU reported an error"));
            qemuMonitorMigrationStatsClear(&st);
            return -1;
        case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY:
            if (returnAtPostcopy) {
                qemuMonitorMigrationStatsClear(&st);
                return 1;
            }
            break;
        case QEMU_MONITOR_MIGRATION_STATUS_PRE_SWITCHOVER:
            if (returnAtSwitchover) {
                qemuMonitorMigrationStatsClear(&st);
                return 2;
            }
            break;
        case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED:
        case QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_RECOVER:
            /* QEMU lost the migration stream after the switch: it waits
             * for a recovery this driver does not offer */
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("post-copy migration failed: QEMU lost the migration connection (%s)"),
                           qemuMonitorMigrationStatusTypeToString(status));
            qemuMonitorMigrationStatsClear(&st);
            return -1;
        case QEMU_MONITOR_MIGRATION_STATUS_INACTIVE:
            if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT) {
                qemuMonitorMigrationStatsClear(&st);
                virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                               _("migration is not running in QEMU"));
                return -1;
            }
            break;
        default:
            break;
        }
        qemuMonitorMigrationStatsClear(&st);

        if (deadlineMs && (unsigned long long) (g_get_real_time() / 1000) > deadlineMs) {
            virReportError(VIR_ERR_OPERATION_TIMEOUT, "%s",
                           _("migration did not complete in time"));
            return -1;
        }
        /* sleep with the domain unlocked until an event or the next poll */
        if (qemuDomainObjWaitAsyncJob(vm, g_get_real_time() / 1000 +
                                      QEMU_MIGRATION_POLL_MS) < 0)
            return -1;
    }
}

/* ---------------------------------------------------------------------- */
/* Source                                                                 */
/* ---------------------------------------------------------------------- */

/* Channel sockets the driver placed in the domain's private directory
 * (<source mode='bind'/> without a path) name this host's directory of
 * this run: the destination places them in its own. */
static void
qemuMigrationStripPrivatePaths(virDomainDef *def, const char *libDir)
{
    size_t i;

    if (!libDir)
        return;
    for (i = 0; i < def->nchannels; i++) {
        virDomainChrSourceDef *src = def->channels[i]->source;

        if (src->type == VIR_DOMAIN_CHR_TYPE_UNIX && src->data.nix.path &&
            STRPREFIX(src->data.nix.path, libDir) &&
            src->data.nix.path[strlen(libDir)] == '/')
            g_clear_pointer(&src->data.nix.path, g_free);
    }
}

/* vm locked, no job.  Begins the async job (except offline) and returns
 * the XML the destination will run. */
static char *
qemuMigrationSrcBegin(virQEMUDriver *driver,
                      virConnectPtr conn,
                      virDomainObj *vm,
                      const char *xmlin,
                      const char *persistXML,
                      char **migrateDisks,
                      char **cookieout,
                      int *cookieoutlen,
                      unsigned long flags)
{
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    g_autofree char *xml = NULL;
    virDomainDef *def;
    g_autoptr(virDomainDef) xmlinDef = NULL;
    bool offline = !!(flags & VIR_MIGRATE_OFFLINE);

    if (offline) {
        if (!(flags & VIR_MIGRATE_PERSIST_DEST)) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("offline migration requires the --persistent flag"));
            return NULL;
        }
        if (!vm->persistent) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("cannot migrate a transient domain offline"));
            return NULL;
        }
        if (virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("offline migration cannot be used with a running domain"));
            return NULL;
        }
        if (vm->hasManagedSave) {
            /* the image stays on this host: it would be lost with the
             * definition (--undefinesource) or restored twice */
            virReportError(VIR_ERR_OPERATION_INVALID,
                           _("cannot migrate domain '%s' offline: it has a managed save image (start it, or remove the image with managedsave-remove)"),
                           vm->def->name);
            return NULL;
        }
    } else {
        if (virDomainObjCheckActive(vm) < 0)
            return NULL;
        if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                       VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
                                       flags) < 0)
            return NULL;
        if (!virDomainObjIsActive(vm)) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s", _("domain is not running"));
            goto endjob;
        }
        QEMU_DOMAIN_PRIVATE(vm)->job.status = VIR_DOMAIN_JOB_UNBOUNDED;
        QEMU_DOMAIN_PRIVATE(vm)->migrationConn = conn;
        if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_BEGIN3) < 0)
            goto endjob;
    }

    if (xmlin) {
        if (!(xmlinDef = qemuDomainDefParseString(xmlin, driver->xmlopt,
                                                 VIR_DOMAIN_DEF_PARSE_INACTIVE)))
            goto endjob;
        if (!virDomainDefCheckABIStability(vm->def, xmlinDef, driver->xmlopt))
            goto endjob;
    } else if (!(xmlinDef = virDomainDefCopy(vm->def, driver->xmlopt, NULL, true))) {
        goto endjob;
    }
    def = xmlinDef;
    if (!offline)
        qemuMigrationStripPrivatePaths(def, QEMU_DOMAIN_PRIVATE(vm)->libDir);
    if (!(xml = virDomainDefFormat(def, driver->xmlopt,
                                   VIR_DOMAIN_DEF_FORMAT_SECURE |
                                   VIR_DOMAIN_DEF_FORMAT_MIGRATABLE)))
        goto endjob;

    if (!(cookie = qemuMigrationCookieNew(vm->def)))
        goto endjob;
    if (flags & VIR_MIGRATE_PERSIST_DEST) {
        if (persistXML) {
            if (!(cookie->persistent = qemuDomainDefParseString(persistXML, driver->xmlopt,
                                                                VIR_DOMAIN_DEF_PARSE_INACTIVE)))
                goto endjob;
        } else {
            virDomainDef *persistent = vm->newDef ? vm->newDef : vm->def;

            if (!(cookie->persistent = virDomainDefCopy(persistent, driver->xmlopt,
                                                        NULL, true)))
                goto endjob;
        }
    }
    /* storage migration: the disks to copy and their sizes, so that the
     * destination can create missing images */
    if (!offline && (flags & QEMU_MIGRATION_NBD_FLAGS) &&
        qemuMigrationSrcNBDDescribe(vm, migrateDisks, cookie) < 0)
        goto endjob;
    if (qemuMigrationCookieFormat(cookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
        goto endjob;

    VIR_INFO("Migration of '%s' begins (flags 0x%lx)", vm->def->name, flags);
    return g_steal_pointer(&xml);

 endjob:
    if (!offline && QEMU_DOMAIN_PRIVATE(vm)->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT) {
        qemuDomainObjEndAsyncJob(vm);
        qemuDomainObjSaveStatus(driver, vm);
    }
    return NULL;
}

/* The host part of QEMU's "tcp:HOST:PORT" (brackets of an IPv6 address
 * removed): where the destination's NBD server listens too. */
static char *
qemuMigrationURIHost(const char *qemuURI)
{
    const char *host = qemuURI + strlen("tcp:");
    const char *colon = strrchr(host, ':');

    if (!STRPREFIX(qemuURI, "tcp:") || !colon || colon == host) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("migration URI '%s' has no host for the storage migration"), qemuURI);
        return NULL;
    }
    if (host[0] == '[' && colon[-1] == ']')
        return g_strndup(host + 1, colon - host - 2);
    return g_strndup(host, colon - host);
}

/* vm locked, the migration-out job held.  Runs QEMU's migration to
 * @qemuURI and waits for it.  With @mirrors (storage migration, the
 * mirrors ready) QEMU pauses before the switch-over, the mirrors end
 * there, then QEMU goes on. */
static int
qemuMigrationSrcPerformRun(virQEMUDriver *driver,
                           virDomainObj *vm,
                           const char *qemuURI,
                           qemuMigrationNBDMirrors *mirrors,
                           char **cookieout,
                           int *cookieoutlen,
                           unsigned long flags)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    qemuDomainJobProgress disk = priv->job.progress;
    int rc;

    /* priv->migMaxBandwidth: the migration's bandwidth (set by
     * PerformLocked, or changed by migrate-setspeed since) is part of the
     * status the phase change writes */
    if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_PERFORM3) < 0)
        return -1;
    if (qemuMigrationSetCapabilities(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                     !!(flags & VIR_MIGRATE_AUTO_CONVERGE),
                                     !!(flags & VIR_MIGRATE_POSTCOPY),
                                     mirrors != NULL) < 0)
        return -1;
    if (qemuMigrationSetParameter(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, "max-bandwidth",
                                  priv->migMaxBandwidth ?
                                  priv->migMaxBandwidth * 1024ULL * 1024ULL :
                                  G_MAXINT64) < 0)
        return -1;
    /* the background transfer after a switch to post-copy (MiB/s; 0 is
     * QEMU's unlimited): --postcopy-bandwidth, or migrate-setspeed
     * --postcopy before or during the migration */
    if ((flags & VIR_MIGRATE_POSTCOPY) &&
        qemuMigrationSetParameter(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, "max-postcopy-bandwidth",
                                  priv->migMaxPostcopyBandwidth * 1024ULL * 1024ULL) < 0)
        return -1;

    /* the pause at the end of the migration is the migration's */
    priv->pausedReason = VIR_DOMAIN_PAUSED_MIGRATION;
    priv->migrationStatus = 0;
    memset(&priv->job.progress, 0, sizeof(priv->job.progress));
    /* the storage phase's figures stay */
    priv->job.progress.diskTotal = disk.diskTotal;
    priv->job.progress.diskProcessed = disk.diskProcessed;
    priv->job.progress.diskRemaining = disk.diskRemaining;
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;

    VIR_INFO("Migrating '%s' to %s", vm->def->name, qemuURI);
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return -1;
    rc = qemuMonitorJSONMigrate(priv->mon, qemuURI, false);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;

    rc = qemuMigrationWait(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, 0,
                           !!(flags & VIR_MIGRATE_POSTCOPY), mirrors != NULL);
    if (rc == 2) {
        /* paused before the switch-over: the disks' last writes reach
         * the destination, then QEMU sends the devices' state */
        if (qemuMigrationSrcNBDComplete(vm, mirrors) < 0) {
            virErrorPtr err = NULL;

            virErrorPreserveLast(&err);
            if (virDomainObjIsActive(vm) &&
                qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) == 0) {
                ignore_value(qemuMonitorJSONMigrateCancel(priv->mon));
                ignore_value(qemuDomainObjExitMonitor(vm));
            }
            virErrorRestore(&err);
            rc = -1;
        } else if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0) {
            rc = -1;
        } else {
            rc = qemuMonitorJSONMigrateContinue(priv->mon, "pre-switchover");
            if (qemuDomainObjExitMonitor(vm) < 0)
                rc = -1;
            if (rc == 0)
                rc = qemuMigrationWait(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, 0, false, false);
        }
    }
    if (rc < 0) {
        if ((flags & VIR_MIGRATE_POSTCOPY) &&
            (qemuMigrationPostcopySwitched(vm) ||
             priv->migrationStatus == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY ||
             priv->migrationStatus == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED ||
             priv->migrationStatus == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_RECOVER)) {
            /* the guest's newest state is partly over there already */
            ignore_value(qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_POSTCOPY));
            qemuMigrationSrcPostcopyFailed(driver, vm);
        }
        if (priv->pausedReason == VIR_DOMAIN_PAUSED_MIGRATION ||
            priv->pausedReason == VIR_DOMAIN_PAUSED_POSTCOPY)
            priv->pausedReason = 0;
        return -1;
    }

    if (rc == 1) {
        /* switched to post-copy: the destination's Finish resumes the
         * guest there, Confirm waits for the end of the transfer */
        if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_POSTCOPY) < 0)
            return -1;
        qemuMigrationSrcPostcopyMarkSwitched(driver, vm);
    } else if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE) < 0) {
        return -1;
    }
    if (!(cookie = qemuMigrationCookieNew(vm->def)))
        return -1;
    cookie->haveStats = true;
    cookie->downtime = priv->job.progress.downtime;
    cookie->transferred = priv->job.progress.dataProcessed;
    cookie->totalTime = g_get_real_time() / 1000 - priv->job.asyncStarted;
    if (qemuMigrationCookieFormat(cookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
        return -1;
    VIR_INFO("Migration of '%s' %s", vm->def->name,
             rc == 1 ? "switched to post-copy" : "completed by QEMU");
    return 0;
}

/* vm locked, the migration-out job held.  Copies the storage first when
 * asked (VIR_MIGRATE_NON_SHARED_*: to the NBD server of @cookiein, the
 * Prepare's cookie), then runs QEMU's migration to @uri and waits for it.
 * A failure leaves no mirror or NBD node behind. */
static int
qemuMigrationSrcPerformLocked(virQEMUDriver *driver,
                              virDomainObj *vm,
                              const char *uri,
                              unsigned long long bandwidth,
                              unsigned long long postcopyBandwidth,
                              const char *cookiein,
                              int cookieinlen,
                              char **migrateDisks,
                              char **cookieout,
                              int *cookieoutlen,
                              unsigned long flags)
{
    g_autoptr(qemuMigrationNBDMirrors) mirrors = NULL;
    g_autofree char *qemuURI = NULL;
    int ret;

    if (!uri) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("the destination did not give a migration URI"));
        return -1;
    }
    if (!(qemuURI = qemuMigrationQEMUURI(uri, 0)))
        return -1;
    /* once: a migrate-setspeed during the storage copy changes it */
    if (bandwidth)
        QEMU_DOMAIN_PRIVATE(vm)->migMaxBandwidth = bandwidth;
    if (postcopyBandwidth)
        QEMU_DOMAIN_PRIVATE(vm)->migMaxPostcopyBandwidth = postcopyBandwidth;

    if (flags & QEMU_MIGRATION_NBD_FLAGS) {
        g_autoptr(qemuMigrationCookie) dstCookie = NULL;
        g_autofree char *host = NULL;

        if (!(host = qemuMigrationURIHost(qemuURI)) ||
            !(dstCookie = qemuMigrationCookieParse(cookiein, cookieinlen, driver->xmlopt)))
            return -1;
        if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_OUT_PHASE_STORAGE) < 0)
            return -1;
        memset(&QEMU_DOMAIN_PRIVATE(vm)->job.progress, 0,
               sizeof(QEMU_DOMAIN_PRIVATE(vm)->job.progress));
        /* each disk's copy gets the migration's bandwidth, as the RAM */
        if (qemuMigrationSrcNBDCopy(vm, dstCookie, host, migrateDisks,
                                    QEMU_DOMAIN_PRIVATE(vm)->migMaxBandwidth * 1024ULL * 1024ULL,
                                    flags, &mirrors) < 0) {
            qemuMigrationSrcNBDCancel(vm, mirrors);
            return -1;
        }
    }

    ret = qemuMigrationSrcPerformRun(driver, vm, qemuURI, mirrors,
                                     cookieout, cookieoutlen, flags);
    if (ret < 0)
        qemuMigrationSrcNBDCancel(vm, mirrors);
    return ret;
}

/* Confirm after the switch to post-copy (vm locked, the migration-out job
 * held).  Waits for QEMU to send the last pages.  0: the migration
 * completed (the caller stops the source as after a pre-copy migration);
 * -1 when it was cancelled (Finish failed) or failed: the source is left
 * paused (post-copy failed) with its QEMU, the job failed, an error
 * reported. */
static int
qemuMigrationSrcConfirmPostcopy(virQEMUDriver *driver,
                                virDomainObj *vm,
                                bool cancelled)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virErrorPtr err = NULL;

    if (!cancelled &&
        qemuMigrationWait(vm, QEMU_ASYNC_JOB_MIGRATION_OUT, 0, false, false) == 0)
        return 0;

    if (cancelled)
        qemuMigrationPostcopyReportFailed(vm, _("the destination could not finish it"));
    else
        qemuMigrationPostcopyReportFailed(vm, virGetLastErrorMessage());
    virErrorPreserveLast(&err);
    qemuMigrationSrcPostcopyFailed(driver, vm);
    if (priv->pausedReason == VIR_DOMAIN_PAUSED_POSTCOPY)
        priv->pausedReason = 0;
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, err ? err->message : NULL);
    virErrorRestore(&err);
    return -1;
}

/* The destination owns the guest: the source's copy is stopped (shut off,
 * migrated) and, with VIR_MIGRATE_UNDEFINE_SOURCE, undefined here.  The
 * caller ends the job.  vm locked, the migration-out job held. */
void
qemuMigrationSrcStopMigrated(virQEMUDriver *driver,
                             virDomainObj *vm,
                             unsigned long flags)
{
    qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_CONFIRM3);
    qemuProcessKillAndStop(driver, vm, VIR_DOMAIN_SHUTOFF_MIGRATED,
                           VIR_DOMAIN_EVENT_STOPPED_MIGRATED);
    if ((flags & VIR_MIGRATE_UNDEFINE_SOURCE) && vm->persistent &&
        virDomainDeleteConfig(driver->paths.configDir,
                              driver->paths.autostartDir, vm) == 0) {
        vm->persistent = 0;
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                    VIR_DOMAIN_EVENT_UNDEFINED,
                                    VIR_DOMAIN_EVENT_UNDEFINED_REMOVED));
    }
}

/* vm locked, the migration-out job held: the end of the source side. */
static int
qemuMigrationSrcConfirmLocked(virQEMUDriver *driver,
                              virDomainObj *vm,
                              unsigned long flags,
                              bool cancelled)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int ret = 0;

    if (qemuMigrationPostcopySwitched(vm) &&
        qemuMigrationSrcConfirmPostcopy(driver, vm, cancelled) < 0) {
        /* the switch cannot be undone: the source stays, paused */
        ret = -1;
    } else if (cancelled) {
        bool running = false;
        int status = 0;

        qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_CONFIRM3_CANCELLED);
        VIR_INFO("Migration of '%s' cancelled: keeping it here", vm->def->name);
        if (virDomainObjIsActive(vm) &&
            qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) == 0) {
            qemuMonitorMigrationStats st = { 0 };
            int rc = qemuMonitorJSONQueryMigrate(priv->mon, &st);

            if (rc == 0 && (st.status == QEMU_MONITOR_MIGRATION_STATUS_ACTIVE ||
                            st.status == QEMU_MONITOR_MIGRATION_STATUS_SETUP ||
                            st.status == QEMU_MONITOR_MIGRATION_STATUS_PRE_SWITCHOVER ||
                            st.status == QEMU_MONITOR_MIGRATION_STATUS_DEVICE))
                qemuMonitorJSONMigrateCancel(priv->mon);
            qemuMonitorMigrationStatsClear(&st);
            rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
            /* QEMU stopped the vCPUs for the switch-over: the guest runs
             * here again unless the user had paused it */
            if (rc == 0 && !running && status == QEMU_MONITOR_VM_STATUS_POSTMIGRATE)
                rc = qemuMonitorJSONStartCPUs(priv->mon);
            if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
                ret = -1;
            else if (status == QEMU_MONITOR_VM_STATUS_POSTMIGRATE) {
                virDomainObjSetState(vm, VIR_DOMAIN_RUNNING,
                                     VIR_DOMAIN_RUNNING_MIGRATION_CANCELED);
                qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                            VIR_DOMAIN_EVENT_RESUMED,
                                            VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
            }
        }
        if (priv->pausedReason == VIR_DOMAIN_PAUSED_MIGRATION)
            priv->pausedReason = 0;
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_CANCELLED, NULL);
    } else {
        VIR_INFO("Migration of '%s' confirmed: stopping the source", vm->def->name);
        qemuMigrationSrcStopMigrated(driver, vm, flags);
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
    }

    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuMigrationQueueJobCompleted(driver, vm);
    qemuDomainObjSaveStatus(driver, vm);
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* Destination                                                            */
/* ---------------------------------------------------------------------- */

static int
qemuMigrationDstPrepare(virQEMUDriver *driver,
                        virConnectPtr dconn,
                        const char *domXML,
                        const char *dname,
                        const char *uriIn,
                        const char *listenAddress,
                        const char *cookiein,
                        int cookieinlen,
                        char **cookieout,
                        int *cookieoutlen,
                        char **uriOut,
                        char **migrateDisks,
                        unsigned long flags)
{
    qemuDomainObjPrivate *priv;
    g_autoptr(virDomainDef) def = NULL;
    g_autoptr(qemuMigrationCookie) cookie = NULL;
    g_autoptr(qemuMigrationCookie) outCookie = NULL;
    unsigned char hostuuid[VIR_UUID_BUFLEN];
    virDomainObj *vm = NULL;
    g_autofree char *listenURI = NULL;
    g_autofree char *host = NULL;
    g_autofree char *inURI = NULL;
    unsigned short port = 0;
    bool portAcquired = false;
    int ret = -1;

    if (!domXML) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("no domain XML passed"));
        return -1;
    }
    if (!(def = qemuDomainDefParseString(domXML, driver->xmlopt,
                                        VIR_DOMAIN_DEF_PARSE_INACTIVE)))
        return -1;
    if (dname) {
        g_free(def->name);
        def->name = g_strdup(dname);
    }
    if (virDomainMigratePrepare3ParamsEnsureACL(dconn, def) < 0)
        return -1;

    if (!(cookie = qemuMigrationCookieParse(cookiein, cookieinlen, driver->xmlopt)))
        return -1;
    if (virGetHostUUID(hostuuid) < 0)
        return -1;
    if (cookie->name && memcmp(cookie->hostuuid, hostuuid, VIR_UUID_BUFLEN) == 0) {
        char uuidstr[VIR_UUID_STRING_BUFLEN];

        virUUIDFormat(hostuuid, uuidstr);
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("Attempt to migrate guest to the same host %s"), uuidstr);
        return -1;
    }

    if (flags & VIR_MIGRATE_OFFLINE) {
        virDomainDef *persistent = cookie->persistent ? cookie->persistent : def;

        if (!(flags & VIR_MIGRATE_PERSIST_DEST)) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("offline migration requires the --persistent flag"));
            return -1;
        }
        if (persistent == cookie->persistent) {
            cookie->persistent = NULL;
            virDomainDefFree(def);
            def = persistent;
            if (dname) {
                g_free(def->name);
                def->name = g_strdup(dname);
            }
        }
        if (!(vm = virDomainObjListAdd(driver->domains, &def, driver->xmlopt, 0, NULL)))
            return -1;
        vm->persistent = 1;
        if (virDomainDefSave(vm->def, driver->xmlopt, driver->paths.configDir) < 0) {
            virDomainObjListRemove(driver->domains, vm);
            goto cleanup;
        }
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                    VIR_DOMAIN_EVENT_DEFINED,
                                    VIR_DOMAIN_EVENT_DEFINED_ADDED));
        /* libvirt wants a URI even when no data will move */
        *uriOut = g_strdup_printf("tcp:%s", driver->config->migrationHost ?
                                  driver->config->migrationHost : "localhost");
        if (!(outCookie = qemuMigrationCookieNew(vm->def)) ||
            qemuMigrationCookieFormat(outCookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
            goto cleanup;
        ret = 0;
        goto cleanup;
    }

    if (!(vm = virDomainObjListAdd(driver->domains, &def, driver->xmlopt,
                                   VIR_DOMAIN_OBJ_LIST_ADD_LIVE |
                                   VIR_DOMAIN_OBJ_LIST_ADD_CHECK_LIVE, NULL)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);

    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_IN,
                                   VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN, flags) < 0)
        goto remove;
    priv->job.status = VIR_DOMAIN_JOB_UNBOUNDED;

    if (virPortAllocatorAcquire(driver->migrationPorts, &port) < 0)
        goto endjob;
    portAcquired = true;

    if (!listenAddress)
        listenAddress = driver->config->migrationAddress;
    if (!listenAddress)
        listenAddress = "0.0.0.0";
    if (strchr(listenAddress, ':') && listenAddress[0] != '[')
        listenURI = g_strdup_printf("tcp:[%s]:%u", listenAddress, port);
    else
        listenURI = g_strdup_printf("tcp:%s:%u", listenAddress, port);

    if (uriIn) {
        if (!(inURI = qemuMigrationQEMUURI(uriIn, port)))
            goto endjob;
        *uriOut = g_strdup(inURI);
    } else {
        host = driver->config->migrationHost ?
               g_strdup(driver->config->migrationHost) : virGetHostname();
        if (!host)
            goto endjob;
        *uriOut = g_strdup_printf("tcp:%s:%u", host, port);
    }

    if ((flags & QEMU_MIGRATION_NBD_FLAGS) &&
        qemuMigrationDstNBDPrepareDisks(vm, migrateDisks, flags, cookie) < 0)
        goto endjob;
    if (qemuProcessStart(dconn, driver, vm, QEMU_ASYNC_JOB_MIGRATION_IN,
                         QEMU_PROCESS_START_INCOMING) < 0)
        goto endjob;
    if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_IN_PHASE_PREPARE) < 0)
        goto stop;

    /* post-copy must be enabled here before the stream arrives */
    if (qemuMigrationSetCapabilities(vm, QEMU_ASYNC_JOB_MIGRATION_IN, false,
                                     !!(flags & VIR_MIGRATE_POSTCOPY), false) < 0) {
        if (flags & VIR_MIGRATE_POSTCOPY)
            qemuMigrationDstPostcopyReportUnsupported();
        goto stop;
    }
    if (!(outCookie = qemuMigrationCookieNew(vm->def)))
        goto stop;
    /* storage migration: the NBD server the source's mirrors write to */
    if ((flags & QEMU_MIGRATION_NBD_FLAGS) &&
        qemuMigrationDstNBDStart(driver, vm, listenAddress, migrateDisks, outCookie) < 0)
        goto stop;
    {
        g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("migrate-incoming",
                                                          "s:uri", listenURI, NULL);

        if (qemuMigrationMonitorCommand(vm, QEMU_ASYNC_JOB_MIGRATION_IN, &cmd,
                                        "migrate-incoming") < 0)
            goto stop;
    }
    priv->migrationPort = port;
    priv->migrationConn = dconn;
    portAcquired = false;

    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                VIR_DOMAIN_EVENT_STARTED,
                                VIR_DOMAIN_EVENT_STARTED_MIGRATED));
    if (qemuMigrationCookieFormat(outCookie, driver->xmlopt, cookieout, cookieoutlen) < 0)
        goto stop;
    qemuDomainObjSaveStatus(driver, vm);
    VIR_INFO("Incoming migration of '%s' listening on %s (URI %s)",
             vm->def->name, listenURI, *uriOut);
    /* the migration-in job goes on until Finish */
    ret = 0;
    goto cleanup;

 stop:
    qemuProcessStop(driver, vm, VIR_DOMAIN_SHUTOFF_FAILED);
 endjob:
    g_clear_pointer(uriOut, g_free);
    if (portAcquired)
        virPortAllocatorRelease(port);
    /* images created for the storage migration go with it */
    qemuMigrationDstNBDRemoveCreated(vm);
    qemuDomainObjEndAsyncJob(vm);
 remove:
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static virDomainPtr
qemuMigrationDstFinish(virQEMUDriver *driver,
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
    bool running = false;
    bool defined = false;   /* this Finish made the domain persistent */
    bool postcopy = false;  /* switched: the source cannot take it back */
    bool postcopyResumed = false;
    int rc;

    if (!(cookie = qemuMigrationCookieParse(cookiein, cookieinlen, driver->xmlopt)))
        return NULL;
    if (dname)
        vm = virDomainObjListFindByName(driver->domains, dname);
    else if (cookie->name)
        vm = virDomainObjListFindByUUID(driver->domains, cookie->uuid);
    if (!vm && cancelled) {
        /* the incoming QEMU ended when the source cancelled and the guest
         * is gone already: nothing to undo.  Not an error of its own, so
         * that the client reports the source's reason for the failure */
        virReportError(VIR_ERR_MIGRATE_FINISH_OK,
                       _("incoming migration of '%s' is already cancelled"),
                       NULLSTR(dname ? dname : cookie->name));
        return NULL;
    }
    if (!vm) {
        virReportError(VIR_ERR_NO_DOMAIN,
                       _("no domain with matching name '%s'"),
                       NULLSTR(dname ? dname : cookie->name));
        return NULL;
    }
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainMigrateFinish3ParamsEnsureACL(dconn, vm->def) < 0)
        goto cleanup;

    if (flags & VIR_MIGRATE_OFFLINE) {
        if (!cancelled)
            dom = virGetDomain(dconn, vm->def->name, vm->def->uuid, -1);
        goto cleanup;
    }

    if (qemuMigrationJobContinue(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
        goto cleanup;
    if (qemuMigrationSetPhase(driver, vm, QEMU_MIGRATION_IN_PHASE_FINISH3) < 0)
        goto fail;

    if (cancelled) {
        VIR_INFO("Incoming migration of '%s' cancelled", vm->def->name);
        goto fail;
    }

    rc = qemuMigrationWait(vm, QEMU_ASYNC_JOB_MIGRATION_IN,
                           g_get_real_time() / 1000 +
                           driver->config->monitorTimeoutLong * 1000ULL,
                           !!(flags & VIR_MIGRATE_POSTCOPY), false);
    if (rc < 0)
        goto fail;
    /* storage migration: the source's mirrors are done; nothing may write
     * to the disks but the guest from now on */
    if (qemuMigrationDstNBDStop(vm) < 0)
        goto fail;
    if (rc == 1) {
        postcopy = true;
        /* post-copy: the guest runs here at once and fetches the pages it
         * misses from the source; the transfer ends when QEMU says so (no
         * deadline: a broken stream shows as postcopy-paused) */
        if (!(flags & VIR_MIGRATE_PAUSED)) {
            if (qemuMigrationDstPostcopyResume(driver, vm) < 0)
                goto postcopy_fail;
            postcopyResumed = true;
        }
        if (qemuMigrationWait(vm, QEMU_ASYNC_JOB_MIGRATION_IN, 0, false, false) < 0)
            goto postcopy_fail;
    }

    if (!(flags & VIR_MIGRATE_PAUSED)) {
        if (!postcopyResumed) {
            if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_IN) < 0)
                goto fail;
            rc = qemuMonitorJSONStartCPUs(priv->mon);
            if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
                goto fail;
        }
        running = true;
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                    VIR_DOMAIN_EVENT_RESUMED,
                                    VIR_DOMAIN_EVENT_RESUMED_MIGRATED));
    } else {
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                    VIR_DOMAIN_EVENT_SUSPENDED,
                                    VIR_DOMAIN_EVENT_SUSPENDED_PAUSED));
    }

    /* the commit point: from here on the guest is the destination's (a
     * daemon killed before the job ends and the status is written
     * destroys it at restart: qemuMigrationRecover) */
    qemuMigrationTestDelay(vm, "TANDEM_TEST_FINISH_DELAY_MS", "before the commit");
    if (!postcopy && qemuMigrationDstCheckCommit(vm, dconn) < 0) {
        VIR_WARN("Incoming migration of '%s' could not answer the source (%s): undoing it",
                 vm->def->name, virGetLastErrorMessage());
        goto fail;
    }

    if (flags & VIR_MIGRATE_PERSIST_DEST) {
        virDomainDef *persistent = cookie->persistent;
        bool existed = vm->persistent;

        if (!persistent && !(persistent = virDomainDefCopy(vm->def, driver->xmlopt,
                                                           NULL, true)))
            goto fail;
        cookie->persistent = NULL;
        if (dname) {
            g_free(persistent->name);
            persistent->name = g_strdup(dname);
        }
        if (virDomainDefSave(persistent, driver->xmlopt, driver->paths.configDir) < 0) {
            virDomainDefFree(persistent);
            goto fail;
        }
        virDomainDefFree(vm->newDef);
        vm->newDef = persistent;
        vm->persistent = 1;
        defined = !existed;
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                    VIR_DOMAIN_EVENT_DEFINED,
                                    existed ? VIR_DOMAIN_EVENT_DEFINED_UPDATED
                                            : VIR_DOMAIN_EVENT_DEFINED_ADDED));
    }

    if (priv->migrationPort) {
        virPortAllocatorRelease(priv->migrationPort);
        priv->migrationPort = 0;
    }
    if (cookie->haveStats) {
        priv->job.progress.downtime = cookie->downtime;
        priv->job.progress.dataProcessed = cookie->transferred;
    }
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuMigrationQueueJobCompleted(driver, vm);
    qemuDomainObjSaveStatus(driver, vm);
    if ((outCookie = qemuMigrationCookieNew(vm->def)))
        qemuMigrationCookieFormat(outCookie, driver->xmlopt, cookieout, cookieoutlen);
    VIR_INFO("Incoming migration of '%s' finished (%s)", vm->def->name,
             running ? "running" : "paused");
    dom = virGetDomain(dconn, vm->def->name, vm->def->uuid, vm->def->id);
    goto cleanup;

 postcopy_fail:
    /* the source has stopped for good: the guest stays here, paused */
    {
        virErrorPtr err = NULL;

        qemuMigrationDstPostcopyFailed(driver, vm, virGetLastErrorMessage());
        virErrorPreserveLast(&err);
        if (priv->migrationPort) {
            virPortAllocatorRelease(priv->migrationPort);
            priv->migrationPort = 0;
        }
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, err ? err->message : NULL);
        priv->migrationConn = NULL;
        qemuDomainObjEndAsyncJob(vm);
        qemuDomainObjSaveStatus(driver, vm);
        if (!vm->persistent && !virDomainObjIsActive(vm))
            virDomainObjListRemove(driver->domains, vm);
        virErrorRestore(&err);
        goto cleanup;
    }

 fail:
    {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        qemuProcessKillAndStop(driver, vm, VIR_DOMAIN_SHUTOFF_FAILED,
                               VIR_DOMAIN_EVENT_STOPPED_FAILED);
        qemuMigrationDstNBDRemoveCreated(vm);
        if (priv->migrationPort) {
            virPortAllocatorRelease(priv->migrationPort);
            priv->migrationPort = 0;
        }
        /* a definition this Finish wrote goes with the guest */
        if (defined &&
            virDomainDeleteConfig(driver->paths.configDir,
                                  driver->paths.autostartDir, vm) == 0) {
            vm->persistent = 0;
            g_clear_pointer(&vm->newDef, virDomainDefFree);
            qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                        VIR_DOMAIN_EVENT_UNDEFINED,
                                        VIR_DOMAIN_EVENT_UNDEFINED_REMOVED));
        }
        qemuDomainObjSetAsyncJobResult(vm, cancelled ? VIR_DOMAIN_JOB_CANCELLED
                                                     : VIR_DOMAIN_JOB_FAILED, NULL);
        priv->migrationConn = NULL;
        qemuDomainObjEndAsyncJob(vm);
        if (!vm->persistent)
            virDomainObjListRemove(driver->domains, vm);
        virErrorRestore(&err);
    }

 cleanup:
    virDomainObjEndAPI(&vm);
    /* a Finish told that the migration was cancelled returns no domain,
     * as asked: that is no error of its own, and libvirt's client and
     * peer-to-peer code expect this special one */
    if (cancelled && !dom && virGetLastErrorCode() == VIR_ERR_OK)
        virReportError(VIR_ERR_MIGRATE_FINISH_OK, NULL);
    return dom;
}

/* ---------------------------------------------------------------------- */
/* Peer to peer: the source daemon drives the destination daemon          */
/* ---------------------------------------------------------------------- */

/* How long the source of a peer-to-peer migration asks a destination
 * whose Finish did not answer before it gives up (seconds). */
#define QEMU_MIGRATION_ASK_DEST_SECONDS 60

/* The connection to the destination broke while its Finish ran, or the
 * source daemon restarted after QEMU's switch-over (@why says which): the
 * answer is unknown (docs/THREADS.txt section 7).  Asks the destination,
 * over new connections to @dconnuri, until its migration-in job is over.
 * Returns 1 when the domain is active there (the destination owns it),
 * 0 when it is not there or inactive, -1 when the destination did not
 * answer within QEMU_MIGRATION_ASK_DEST_SECONDS.  vm locked, the
 * migration-out job held; the lock is released while asking. */
static int
qemuMigrationSrcAskDestination(virDomainObj *vm,
                               const char *dconnuri,
                               const char *why)
{
    unsigned char uuid[VIR_UUID_BUFLEN];
    g_autofree char *name = g_strdup(vm->def->name);
    gint64 deadline = g_get_monotonic_time() +
                      QEMU_MIGRATION_ASK_DEST_SECONDS * G_USEC_PER_SEC;
    int ret = -1;

    memcpy(uuid, vm->def->uuid, VIR_UUID_BUFLEN);
    VIR_WARN("Migration of '%s': %s; asking it whether the guest runs there",
             name, why);
    virObjectUnlock(vm);
    while (ret < 0 && g_get_monotonic_time() < deadline) {
        virConnectPtr conn = virConnectOpenAuth(dconnuri, virConnectAuthPtrDefault, 0);
        virDomainPtr dom = NULL;

        if (conn) {
            if (!(dom = virDomainLookupByUUID(conn, uuid))) {
                if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
                    ret = 0;
            } else {
                virDomainJobInfo info = { 0 };
                int active;

                /* still in its migration-in job: undecided, ask again */
                if (virDomainGetJobInfo(dom, &info) == 0 &&
                    info.type == VIR_DOMAIN_JOB_NONE &&
                    (active = virDomainIsActive(dom)) >= 0)
                    ret = active ? 1 : 0;
                virObjectUnref(dom);
            }
            virConnectClose(conn);
        }
        if (ret < 0)
            g_usleep(500 * 1000);
    }
    virResetLastError();
    virObjectLock(vm);
    VIR_WARN("Migration of '%s': the destination %s", name,
             ret == 1 ? "runs the guest: the migration succeeded" :
             ret == 0 ? "does not run the guest: it resumes here" :
             "did not answer in time: the guest stays paused here");
    return ret;
}

/* The outcome of a migration is unknown (the destination did not answer
 * in time): the source keeps its copy paused (QEMU stopped it for the
 * switch-over) and ends the job; only the administrator can tell which
 * copy may run.  vm locked, the migration-out job held. */
static void
qemuMigrationSrcLeavePaused(virQEMUDriver *driver,
                            virDomainObj *vm,
                            const char *errmsg)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_CONFIRM3_CANCELLED);
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED, errmsg);
    priv->migrationConn = NULL;
    qemuDomainObjEndAsyncJob(vm);
    qemuDomainObjSaveStatus(driver, vm);
}

static int
qemuMigrationSrcPeer2Peer(virQEMUDriver *driver,
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
    unsigned long long bandwidth = 0;
    unsigned long long postcopyBandwidth = 0;
    unsigned long destflags = flags & ~(VIR_MIGRATE_ABORT_ON_ERROR |
                                        VIR_MIGRATE_AUTO_CONVERGE |
                                        VIR_MIGRATE_PEER2PEER);
    bool cancelled = true;
    g_auto(GStrv) migrateDisks = qemuMigrationNBDGetMigrateDisks(params, nparams);
    int rc;
    int ret = -1;

    if (!(xml = qemuMigrationSrcBegin(driver, NULL, vm,
                                      qemuMigrationParamString(params, nparams,
                                                               VIR_MIGRATE_PARAM_DEST_XML),
                                      qemuMigrationParamString(params, nparams,
                                                               VIR_MIGRATE_PARAM_PERSIST_XML),
                                      migrateDisks, &cookie1, &cookie1len, flags)))
        return -1;
    /* a restarted source asks the destination (F9): saved with the phase */
    QEMU_DOMAIN_PRIVATE(vm)->job.peerURI = g_strdup(dconnuri);
    if (virDomainObjGetState(vm, NULL) == VIR_DOMAIN_PAUSED)
        destflags |= VIR_MIGRATE_PAUSED;

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
        !VIR_DRV_SUPPORTS_FEATURE(dconn->driver, dconn, VIR_DRV_FEATURE_MIGRATION_V3) ||
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
    virTypedParamsGetULLong(params, nparams, VIR_MIGRATE_PARAM_BANDWIDTH, &bandwidth);
    virTypedParamsGetULLong(params, nparams, VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY,
                            &postcopyBandwidth);

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

    if (qemuMigrationSrcPerformLocked(driver, vm, uri, bandwidth, postcopyBandwidth,
                                      cookie2, cookie2len, migrateDisks,
                                      &cookie3, &cookie3len, flags) == 0)
        cancelled = false;

 finish:
    {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        virObjectUnlock(vm);
        ddomain = dconn->driver->domainMigrateFinish3Params(dconn, dparams, ndparams,
                                                            cookie3 ? cookie3 : cookie2,
                                                            cookie3 ? cookie3len : cookie2len,
                                                            &cookie4, &cookie4len,
                                                            destflags, cancelled);
        virObjectLock(vm);
        if (!ddomain && !cancelled) {
            /* QEMU sent everything, Finish failed: an answer of the
             * destination (it has no guest), or a broken connection (the
             * answer is unknown: ask) */
            virErrorPtr ferr = NULL;
            int alive;
            int there;

            virErrorPreserveLast(&ferr);
            virObjectUnlock(vm);
            alive = virConnectIsAlive(dconn);
            virObjectLock(vm);
            if (alive != 1) {
                there = qemuMigrationSrcAskDestination(vm, dconnuri,
                                                       "the destination did not answer its Finish");
                if (there == 1) {
                    virFreeError(ferr);
                    virFreeError(err);
                    virResetLastError();
                    cancelled = false;
                    goto confirm;
                }
                if (there < 0) {
                    virReportError(VIR_ERR_OPERATION_FAILED,
                                   _("the destination of the migration of '%s' did not answer its Finish (%s) nor later: the guest may run there, so it is left paused here; check the destination, then resume or destroy it here"),
                                   vm->def->name, ferr && ferr->message ? ferr->message : "?");
                    virFreeError(ferr);
                    virFreeError(err);
                    qemuMigrationSrcLeavePaused(driver, vm, NULL);
                    goto done;
                }
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("the connection to the destination broke during the Finish of the migration of '%s' (%s); the guest does not run there and resumes here"),
                               vm->def->name, ferr && ferr->message ? ferr->message : "?");
                virFreeError(ferr);
                virFreeError(err);
                cancelled = true;
                goto confirm;
            }
            virErrorRestore(&ferr);
        }
        if (cancelled && err)
            virErrorRestore(&err);
        else
            virFreeError(err);
    }
    cancelled = ddomain == NULL;
    if (!cancelled)
        qemuMigrationTestDelay(vm, "TANDEM_TEST_CONFIRM_DELAY_MS", "before the Confirm");

 confirm:
    {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        if (qemuMigrationSrcConfirmLocked(driver, vm, flags, cancelled) == 0 && !cancelled)
            ret = 0;
        if (cancelled)
            virErrorRestore(&err);
        else
            virFreeError(err);
    }
    if (cancelled && ret == 0)
        ret = -1;
 done:
    if (ddomain)
        virObjectUnref(ddomain);
    virTypedParamsFree(dparams, ndparams);
    if (dconn) {
        virErrorPtr err = NULL;

        /* virConnectClose, a public API, resets the thread's last error:
         * keep the migration's */
        virErrorPreserveLast(&err);
        virObjectUnlock(vm);
        virConnectClose(dconn);
        virObjectLock(vm);
        virErrorRestore(&err);
    }
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Driver entry points                                                    */
/* ---------------------------------------------------------------------- */

static char *
qemuDomainMigrateBegin3Params(virDomainPtr dom,
                              virTypedParameterPtr params,
                              int nparams,
                              char **cookieout,
                              int *cookieoutlen,
                              unsigned int flags)
{
    virDomainObj *vm;
    char *xml = NULL;
    g_auto(GStrv) migrateDisks = qemuMigrationNBDGetMigrateDisks(params, nparams);

    if (qemuMigrationCheckUnsupportedFlags(flags) < 0)
        return NULL;
    virCheckFlags(QEMU_MIGRATION_FLAGS, NULL);
    if (qemuMigrationValidateParams(params, nparams) < 0)
        return NULL;
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    if (virDomainMigrateBegin3ParamsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (flags & VIR_MIGRATE_POSTCOPY_RESUME) {
        xml = qemuMigrationSrcResumeBegin(qemu_driver, dom->conn, vm,
                                          cookieout, cookieoutlen, flags);
        goto cleanup;
    }
    xml = qemuMigrationSrcBegin(qemu_driver, dom->conn, vm,
                                qemuMigrationParamString(params, nparams,
                                                         VIR_MIGRATE_PARAM_DEST_XML),
                                qemuMigrationParamString(params, nparams,
                                                         VIR_MIGRATE_PARAM_PERSIST_XML),
                                migrateDisks, cookieout, cookieoutlen, flags);
 cleanup:
    virDomainObjEndAPI(&vm);
    return xml;
}

static int
qemuDomainMigratePrepare3Params(virConnectPtr dconn,
                                virTypedParameterPtr params,
                                int nparams,
                                const char *cookiein,
                                int cookieinlen,
                                char **cookieout,
                                int *cookieoutlen,
                                char **uri_out,
                                unsigned int flags)
{
    g_auto(GStrv) migrateDisks = qemuMigrationNBDGetMigrateDisks(params, nparams);

    if (qemuMigrationCheckUnsupportedFlags(flags) < 0)
        return -1;
    virCheckFlags(QEMU_MIGRATION_FLAGS, -1);
    if (qemuMigrationValidateParams(params, nparams) < 0)
        return -1;
    if (flags & VIR_MIGRATE_POSTCOPY_RESUME)
        return qemuMigrationDstResumePrepare(qemu_driver, dconn,
                                             qemuMigrationParamString(params, nparams,
                                                                      VIR_MIGRATE_PARAM_DEST_NAME),
                                             qemuMigrationParamString(params, nparams,
                                                                      VIR_MIGRATE_PARAM_URI),
                                             qemuMigrationParamString(params, nparams,
                                                                      VIR_MIGRATE_PARAM_LISTEN_ADDRESS),
                                             cookiein, cookieinlen, cookieout, cookieoutlen,
                                             uri_out, flags);
    return qemuMigrationDstPrepare(qemu_driver, dconn,
                                   qemuMigrationParamString(params, nparams,
                                                            VIR_MIGRATE_PARAM_DEST_XML),
                                   qemuMigrationParamString(params, nparams,
                                                            VIR_MIGRATE_PARAM_DEST_NAME),
                                   qemuMigrationParamString(params, nparams,
                                                            VIR_MIGRATE_PARAM_URI),
                                   qemuMigrationParamString(params, nparams,
                                                            VIR_MIGRATE_PARAM_LISTEN_ADDRESS),
                                   cookiein, cookieinlen, cookieout, cookieoutlen,
                                   uri_out, migrateDisks, flags);
}

static int
qemuDomainMigratePerform3Params(virDomainPtr dom,
                                const char *dconnuri,
                                virTypedParameterPtr params,
                                int nparams,
                                const char *cookiein,
                                int cookieinlen,
                                char **cookieout,
                                int *cookieoutlen,
                                unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    unsigned long long bandwidth = 0;
    unsigned long long postcopyBandwidth = 0;
    g_auto(GStrv) migrateDisks = NULL;
    int ret = -1;

    if (qemuMigrationCheckUnsupportedFlags(flags) < 0)
        return -1;
    virCheckFlags(QEMU_MIGRATION_FLAGS, -1);
    if (qemuMigrationValidateParams(params, nparams) < 0)
        return -1;
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigratePerform3ParamsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    if (flags & VIR_MIGRATE_POSTCOPY_RESUME) {
        if (!(flags & VIR_MIGRATE_PEER2PEER))
            ret = qemuMigrationSrcResumePerform(driver, vm, params, nparams,
                                                cookieout, cookieoutlen, flags);
        else if (dconnuri)
            ret = qemuMigrationSrcResumePeer2Peer(driver, vm, dconnuri, params, nparams, flags);
        else
            virReportError(VIR_ERR_INVALID_ARG, "%s",
                           _("peer-to-peer migration needs the destination URI"));
        goto cleanup;
    }
    if (flags & VIR_MIGRATE_PEER2PEER) {
        if (!dconnuri) {
            virReportError(VIR_ERR_INVALID_ARG, "%s",
                           _("peer-to-peer migration needs the destination URI"));
            goto cleanup;
        }
        ret = qemuMigrationSrcPeer2Peer(driver, vm, dconnuri, params, nparams, flags);
        goto cleanup;
    }

    if (flags & VIR_MIGRATE_OFFLINE) {
        ret = 0;     /* nothing to move */
        goto cleanup;
    }
    if (qemuMigrationJobContinue(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        goto cleanup;
    virTypedParamsGetULLong(params, nparams, VIR_MIGRATE_PARAM_BANDWIDTH, &bandwidth);
    virTypedParamsGetULLong(params, nparams, VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY,
                            &postcopyBandwidth);
    migrateDisks = qemuMigrationNBDGetMigrateDisks(params, nparams);
    ret = qemuMigrationSrcPerformLocked(driver, vm,
                                        qemuMigrationParamString(params, nparams,
                                                                 VIR_MIGRATE_PARAM_URI),
                                        bandwidth, postcopyBandwidth,
                                        cookiein, cookieinlen, migrateDisks,
                                        cookieout, cookieoutlen, flags);
    if (ret < 0) {
        virErrorPtr err = NULL;

        /* libvirt calls no Confirm after a failed Perform (it only tells
         * the destination, by Finish with cancelled): the source undoes
         * the migration now and keeps the guest */
        virErrorPreserveLast(&err);
        qemuMigrationSrcConfirmLocked(driver, vm, flags, true);
        virErrorRestore(&err);
    }
    /* after a successful Perform the job waits for Confirm, in whatever
     * thread it comes */
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static virDomainPtr
qemuDomainMigrateFinish3Params(virConnectPtr dconn,
                               virTypedParameterPtr params,
                               int nparams,
                               const char *cookiein,
                               int cookieinlen,
                               char **cookieout,
                               int *cookieoutlen,
                               unsigned int flags,
                               int cancelled)
{
    virCheckFlags(QEMU_MIGRATION_FLAGS, NULL);
    if (qemuMigrationValidateParams(params, nparams) < 0)
        return NULL;
    if (flags & VIR_MIGRATE_POSTCOPY_RESUME)
        return qemuMigrationDstResumeFinish(qemu_driver, dconn,
                                            qemuMigrationParamString(params, nparams,
                                                                     VIR_MIGRATE_PARAM_DEST_NAME),
                                            cookiein, cookieinlen, cookieout, cookieoutlen,
                                            flags, cancelled != 0);
    return qemuMigrationDstFinish(qemu_driver, dconn,
                                  qemuMigrationParamString(params, nparams,
                                                           VIR_MIGRATE_PARAM_DEST_NAME),
                                  cookiein, cookieinlen, cookieout, cookieoutlen,
                                  flags, cancelled != 0);
}

static int
qemuDomainMigrateConfirm3Params(virDomainPtr dom,
                                virTypedParameterPtr params,
                                int nparams,
                                const char *cookiein G_GNUC_UNUSED,
                                int cookieinlen G_GNUC_UNUSED,
                                unsigned int flags,
                                int cancelled)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(QEMU_MIGRATION_FLAGS, -1);
    if (qemuMigrationValidateParams(params, nparams) < 0)
        return -1;
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigrateConfirm3ParamsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (flags & VIR_MIGRATE_OFFLINE) {
        if (!cancelled && (flags & VIR_MIGRATE_UNDEFINE_SOURCE) && vm->persistent &&
            virDomainDeleteConfig(qemu_driver->paths.configDir,
                                  qemu_driver->paths.autostartDir, vm) == 0) {
            vm->persistent = 0;
            qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                        VIR_DOMAIN_EVENT_UNDEFINED,
                                        VIR_DOMAIN_EVENT_UNDEFINED_REMOVED));
            virDomainObjListRemove(qemu_driver->domains, vm);
        }
        ret = 0;
        goto cleanup;
    }
    if (flags & VIR_MIGRATE_POSTCOPY_RESUME) {
        ret = qemuMigrationSrcResumeConfirm(qemu_driver, vm, flags, cancelled != 0);
        goto cleanup;
    }
    if (qemuMigrationJobContinue(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        goto cleanup;
    ret = qemuMigrationSrcConfirmLocked(qemu_driver, vm, flags, cancelled != 0);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* Sets one of QEMU's migration parameters (@name, a number) under a
 * QEMU_JOB_MIGRATION_OP job, allowed beside an outgoing migration: the
 * setters of migrate-setspeed, migrate-setmaxdowntime, migrate-compcache.
 * When @speed is not NULL, it becomes priv->migMaxBandwidth on success
 * (@postcopySpeed: priv->migMaxPostcopyBandwidth) and the status file is
 * written, still under the job (a daemon restart keeps it, like the rest
 * of the job state).  vm locked, the ACL checked. */
static int
qemuMigrationSetParamULL(virDomainObj *vm, const char *name, unsigned long long value,
                         const unsigned long *speed, const unsigned long *postcopySpeed)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *key = g_strdup_printf("U:%s", name);
    int ret = -1;

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MIGRATION_OP) < 0)
        return -1;
    VIR_DEBUG("%s of '%s': %llu", name, vm->def->name, value);
    if (virDomainObjCheckActive(vm) == 0) {
        /* a storage migration's disk copies run at the migration's speed */
        bool mirrors = speed && priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT &&
                       (priv->job.apiFlags & QEMU_MIGRATION_NBD_FLAGS) &&
                       priv->job.phase >= QEMU_MIGRATION_OUT_PHASE_STORAGE &&
                       priv->job.phase < QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE;

        if (qemuDomainObjEnterMonitor(vm) == 0) {
            g_autoptr(tdmJSONValue) args = NULL;
            int rc = -1;

            if (tdmJSONValueObjectCreate(&args, key, value, NULL) == 0)
                rc = qemuMonitorJSONSetMigrationParams(priv->mon, &args);
            if (rc == 0 && mirrors)
                rc = qemuMigrationSrcNBDSetSpeed(priv->mon, *speed * 1024ULL * 1024ULL);
            if (qemuDomainObjExitMonitor(vm) == 0 && rc == 0)
                ret = 0;
        }
    }
    if (ret == 0 && (speed || postcopySpeed)) {
        if (speed)
            priv->migMaxBandwidth = *speed;
        else
            priv->migMaxPostcopyBandwidth = *postcopySpeed;
        qemuDomainObjSaveStatus(qemu_driver, vm);
    }
    qemuDomainObjEndJob(vm);
    return ret;
}

/* Tuning calls allowed beside the migration (QEMU_JOB_MIGRATION_OP). */
static int
qemuDomainMigrateSetMaxSpeed(virDomainPtr dom, unsigned long bandwidth,
                             unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainMigrateSetMaxSpeedEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (bandwidth > G_MAXINT64 / (1024 * 1024)) {
        virReportError(VIR_ERR_OVERFLOW,
                       _("bandwidth must be less than %llu"),
                       (unsigned long long) G_MAXINT64 / (1024 * 1024) + 1);
        goto cleanup;
    }
    if (flags & VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY) {
        /* after a switch to post-copy; QEMU's 0 is unlimited */
        if (!virDomainObjIsActive(vm)) {
            priv->migMaxPostcopyBandwidth = bandwidth;
            ret = 0;
        } else {
            ret = qemuMigrationSetParamULL(vm, "max-postcopy-bandwidth",
                                           bandwidth * 1024ULL * 1024ULL, NULL, &bandwidth);
        }
        goto cleanup;
    }
    if (!virDomainObjIsActive(vm)) {
        priv->migMaxBandwidth = bandwidth;
        ret = 0;
        goto cleanup;
    }
    ret = qemuMigrationSetParamULL(vm, "max-bandwidth",
                                   bandwidth ? bandwidth * 1024ULL * 1024ULL :
                                   (unsigned long long) G_MAXINT64, &bandwidth, NULL);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainMigrateGetMaxSpeed(virDomainPtr dom, unsigned long *bandwidth,
                             unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigrateGetMaxSpeedEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (flags & VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY) {
        /* 0: unlimited, as QEMU says it */
        *bandwidth = QEMU_DOMAIN_PRIVATE(vm)->migMaxPostcopyBandwidth;
        ret = 0;
        goto cleanup;
    }
    *bandwidth = QEMU_DOMAIN_PRIVATE(vm)->migMaxBandwidth;
    if (*bandwidth == 0)
        *bandwidth = G_MAXINT64 / (1024 * 1024);   /* unlimited, as libvirt says it */
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainMigrateSetMaxDowntime(virDomainPtr dom, unsigned long long downtime,
                                unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigrateSetMaxDowntimeEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    ret = qemuMigrationSetParamULL(vm, "downtime-limit", downtime, NULL, NULL);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* One of QEMU's migration parameters (@name, a number) under a query job:
 * the getters of migrate-setmaxdowntime and migrate-compcache.  vm locked,
 * the ACL checked; @what names the value when QEMU does not report it. */
static int
qemuMigrationGetParamULL(virDomainObj *vm, const char *name, const char *what,
                         unsigned long long *value)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int ret = -1;

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0)
        return -1;
    if (virDomainObjCheckActive(vm) == 0 && qemuDomainObjEnterMonitor(vm) == 0) {
        g_autoptr(tdmJSONValue) mparams = NULL;
        int rc = qemuMonitorJSONGetMigrationParams(priv->mon, &mparams);

        if (qemuDomainObjExitMonitor(vm) == 0 && rc == 0) {
            if (tdmJSONValueObjectGetNumberULLong(mparams, name, value) < 0)
                virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                               _("QEMU does not report the %s (%s)"), what, name);
            else
                ret = 0;
        }
    }
    qemuDomainObjEndJob(vm);
    return ret;
}

static int
qemuDomainMigrateGetMaxDowntime(virDomainPtr dom, unsigned long long *downtime,
                                unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigrateGetMaxDowntimeEnsureACL(dom->conn, vm->def) == 0)
        ret = qemuMigrationGetParamULL(vm, "downtime-limit",
                                       _("migration downtime limit"), downtime);
    virDomainObjEndAPI(&vm);
    return ret;
}

/* migrate-compcache: the XBZRLE cache of QEMU's migration parameters
 * (xbzrle-cache-size, bytes).  Allowed beside an outgoing migration: the
 * getter is a query, the setter a QEMU_JOB_MIGRATION_OP, like the other
 * tuning calls. */
static int
qemuDomainMigrateGetCompressionCache(virDomainPtr dom,
                                     unsigned long long *cacheSize,
                                     unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigrateGetCompressionCacheEnsureACL(dom->conn, vm->def) == 0)
        ret = qemuMigrationGetParamULL(vm, "xbzrle-cache-size",
                                       _("migration compression cache size"), cacheSize);
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainMigrateSetCompressionCache(virDomainPtr dom,
                                     unsigned long long cacheSize,
                                     unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(0, -1);
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainMigrateSetCompressionCacheEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (cacheSize > G_MAXINT64) {
        virReportError(VIR_ERR_OVERFLOW,
                       _("compression cache size must not exceed %llu bytes"),
                       (unsigned long long) G_MAXINT64);
        goto cleanup;
    }
    ret = qemuMigrationSetParamULL(vm, "xbzrle-cache-size", cacheSize, NULL, NULL);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

void
qemuMigrationClientGone(virQEMUDriver *driver, virDomainObj *vm,
                        unsigned long long asyncStarted)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->job.asyncStarted != asyncStarted ||
        priv->migrationConn)
        return;

    if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT &&
        qemuMigrationPostcopySwitched(vm)) {
        /* nothing to undo after the switch, and the outcome is QEMU's:
         * the guest stays paused here, the transfer goes on */
        qemuDomainObjAdoptAsyncJob(vm);
        VIR_WARN("The client driving the post-copy migration of '%s' went away after the switch: the guest stays paused here",
                 vm->def->name);
        if (priv->pausedReason == VIR_DOMAIN_PAUSED_POSTCOPY)
            priv->pausedReason = 0;
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_FAILED,
                                       _("the client driving the migration went away after the switch to post-copy"));
        priv->migrationConn = NULL;
        qemuDomainObjEndAsyncJob(vm);
        qemuDomainObjSaveStatus(driver, vm);
    } else if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT &&
               priv->job.phase == QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE) {
        /* QEMU sent everything: the destination's Finish may have kept
         * the guest (docs/THREADS.txt section 7), and nobody can ask it */
        VIR_WARN("The client driving the migration of '%s' went away after QEMU sent everything: the destination may run the guest, so it stays paused here",
                 vm->def->name);
        qemuDomainObjAdoptAsyncJob(vm);
        qemuMigrationSrcLeavePaused(driver, vm,
                                    _("the client driving the migration went away after the guest's state was sent: the destination may run it"));
    } else if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT) {
        VIR_INFO("Undoing the outgoing migration of '%s'", vm->def->name);
        qemuDomainObjAdoptAsyncJob(vm);
        qemuMigrationSrcConfirmLocked(driver, vm, 0, true);
    } else if (qemuMigrationDstResumeRunning(vm)) {
        /* the guest's newest state is here: kept (post-copy failed) */
        qemuDomainObjAdoptAsyncJob(vm);
        qemuMigrationDstResumeEndFailed(driver, vm,
                                        _("the client driving the post-copy recovery went away"));
    } else if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN) {
        VIR_INFO("Undoing the incoming migration of '%s'", vm->def->name);
        qemuDomainObjAdoptAsyncJob(vm);
        qemuProcessKillAndStop(driver, vm, VIR_DOMAIN_SHUTOFF_FAILED,
                               VIR_DOMAIN_EVENT_STOPPED_FAILED);
        qemuMigrationDstNBDRemoveCreated(vm);
        if (priv->migrationPort) {
            virPortAllocatorRelease(priv->migrationPort);
            priv->migrationPort = 0;
        }
        qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_CANCELLED, NULL);
        qemuDomainObjEndAsyncJob(vm);
        if (!vm->persistent)
            virDomainObjListRemove(driver->domains, vm);
    }
}

void
qemuMigrationRegister(virHypervisorDriver *driver)
{
    driver->domainMigrateBegin3Params = qemuDomainMigrateBegin3Params;
    driver->domainMigratePrepare3Params = qemuDomainMigratePrepare3Params;
    driver->domainMigratePerform3Params = qemuDomainMigratePerform3Params;
    driver->domainMigrateFinish3Params = qemuDomainMigrateFinish3Params;
    driver->domainMigrateConfirm3Params = qemuDomainMigrateConfirm3Params;
    driver->domainMigrateSetMaxSpeed = qemuDomainMigrateSetMaxSpeed;
    driver->domainMigrateGetMaxSpeed = qemuDomainMigrateGetMaxSpeed;
    driver->domainMigrateSetMaxDowntime = qemuDomainMigrateSetMaxDowntime;
    driver->domainMigrateGetMaxDowntime = qemuDomainMigrateGetMaxDowntime;
    driver->domainMigrateGetCompressionCache = qemuDomainMigrateGetCompressionCache;
    driver->domainMigrateSetCompressionCache = qemuDomainMigrateSetCompressionCache;
    driver->domainMigrateStartPostCopy = qemuDomainMigrateStartPostCopy;
}

/* Reconnect of a source whose migration may have switched to post-copy
 * (vm locked, the adopted migration-out job held).  Returns 0 when it did
 * not switch (the caller goes on), 1 when it did: the guest is left
 * paused here, (post-copy) while QEMU still completes the transfer,
 * (post-copy failed) otherwise; nothing is cancelled or resumed. */
static int
qemuMigrationRecoverPostcopySource(virQEMUDriver *driver, virDomainObj *vm, int phase)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuMonitorMigrationStats st = { 0 };
    int reason;
    bool switched = phase == QEMU_MIGRATION_OUT_PHASE_POSTCOPY ||
                    (virDomainObjGetState(vm, &reason) == VIR_DOMAIN_PAUSED &&
                     (reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
                      reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED));
    int rc;

    if (!(priv->job.apiFlags & VIR_MIGRATE_POSTCOPY) && !switched)
        return 0;
    if (qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) < 0)
        return switched ? 1 : 0;
    rc = qemuMonitorJSONQueryMigrate(priv->mon, &st);
    if (qemuDomainObjExitMonitor(vm) < 0)
        rc = -1;
    if (rc == 0 &&
        (st.status == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY ||
         st.status == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED ||
         st.status == QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_RECOVER))
        switched = true;
    if (switched) {
        if (virDomainObjIsActive(vm) &&
            (virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
             (reason != VIR_DOMAIN_PAUSED_POSTCOPY &&
              reason != VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)))
            virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY);
        if (rc < 0 || (st.status != QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY &&
                       st.status != QEMU_MONITOR_MIGRATION_STATUS_COMPLETED))
            qemuMigrationSrcPostcopyFailed(driver, vm);
        VIR_WARN("Outgoing migration of '%s' was interrupted after the switch to post-copy (QEMU: %s): the guest stays paused here",
                 vm->def->name, rc < 0 ? "unknown" :
                 NULLSTR(qemuMonitorMigrationStatusTypeToString(st.status)));
    }
    qemuMonitorMigrationStatsClear(&st);
    return switched ? 1 : 0;
}

int
qemuMigrationRecover(virQEMUDriver *driver,
                     virDomainObj *vm,
                     qemuDomainAsyncJob asyncJob,
                     int phase)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    bool running = false;
    bool resume;
    int status = 0;
    int there = -1;
    int rc;

    if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN) {
        /* after post-copy resumed it here, this is the guest's newest
         * state (the source stopped for good): kept whatever QEMU does */
        if (phase >= QEMU_MIGRATION_IN_PHASE_PREPARE_RESUME)
            return qemuMigrationDstResumeRecover(driver, vm);
        if (phase >= QEMU_MIGRATION_IN_PHASE_POSTCOPY) {
            VIR_WARN("Incoming migration of '%s' was interrupted in post-copy: keeping it",
                     vm->def->name);
            return 0;
        }
        /* an incoming guest whose Finish did not pass its commit point is
         * not ours, even when its vCPUs ran for a moment: the source was
         * not told, and resumes its copy (or, peer-to-peer, asks us after
         * this restart and resumes on our "not here") -- docs/THREADS.txt
         * section 7 */
        if (phase < QEMU_MIGRATION_IN_PHASE_FINISH3)
            VIR_WARN("Incoming migration of '%s' was interrupted: destroying it",
                     vm->def->name);
        else
            VIR_WARN("Incoming migration of '%s' was interrupted in its Finish, before it committed: destroying it",
                     vm->def->name);
        return -1;
    }
    if (asyncJob != QEMU_ASYNC_JOB_MIGRATION_OUT)
        return 0;

    /* after a switch to post-copy (recorded, or seen in QEMU's migration
     * status) the source never resumes: the destination runs the guest */
    if (qemuMigrationRecoverPostcopySource(driver, vm, phase) != 0)
        return 0;

    /* after the switch-over: the outcome was decided (confirm3), or a
     * peer-to-peer source asks the destination (perform3_done, F9) */
    if (phase == QEMU_MIGRATION_OUT_PHASE_CONFIRM3)
        there = 1;
    else if (phase == QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE && priv->job.peerURI) {
        g_autofree char *uri = g_strdup(priv->job.peerURI);

        there = qemuMigrationSrcAskDestination(vm, uri,
                                               "the source's daemon restarted after QEMU's switch-over without the destination's answer");
        if (!virDomainObjIsActive(vm))
            return -1;
    }
    if (there == 1) {
        VIR_WARN("Outgoing migration of '%s' was interrupted in phase %s after the destination took the guest: stopping it here",
                 vm->def->name, NULLSTR(qemuDomainAsyncJobPhaseToString(asyncJob, phase)));
        qemuMigrationSrcStopMigrated(driver, vm, priv->job.apiFlags);
        return 1;
    }
    resume = phase < QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE ||
             phase == QEMU_MIGRATION_OUT_PHASE_CONFIRM3_CANCELLED || there == 0;

    /* the source: cancel what QEMU may still do, and the guest runs here
     * unless the switch-over happened and the destination may run it
     * (then it stays paused: only the user can know) */
    if ((priv->job.apiFlags & QEMU_MIGRATION_NBD_FLAGS) &&
        phase < QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE)
        qemuMigrationSrcNBDRecover(vm);
    if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
        return -1;
    if (phase < QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE)
        qemuMonitorJSONMigrateCancel(priv->mon);
    rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
    if (rc == 0 && !running && status == QEMU_MONITOR_VM_STATUS_POSTMIGRATE && resume)
        rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    VIR_WARN("Outgoing migration of '%s' was interrupted in phase %s: %s",
             vm->def->name, NULLSTR(qemuDomainAsyncJobPhaseToString(asyncJob, phase)),
             resume ? "cancelled, guest runs here" : "guest left paused here");
    return 0;
}
