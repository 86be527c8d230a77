/*
 * qemu_domainjob.c: the per-domain job model: sync, async and agent job
 * slots, the masks of sync jobs allowed beside each async job, phases,
 * job statistics, the status-file <job> element, and entering/leaving the
 * QEMU monitor with the domain lock released
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The rules implemented here are written down in docs/THREADS.txt and
 * modelled in tests/model/jobs.pml.
 */
#include <config.h>

#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "qemu_domainjob.h"
#include "qemu_domain.h"
#include "virerror.h"
#include "virlog.h"
#include "virthreadjob.h"
#include "virtime.h"
#include "virstring.h"
#include "tdmtrace.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_domainjob");

VIR_ENUM_IMPL(qemuDomainJob,
              QEMU_JOB_LAST,
              "none",
              "query",
              "destroy",
              "suspend",
              "modify",
              "abort",
              "migration-op",
              "modify-migration-safe",
              "async-nested",
);

VIR_ENUM_IMPL(qemuDomainAsyncJob,
              QEMU_ASYNC_JOB_LAST,
              "none",
              "migration-out",
              "migration-in",
              "save",
              "dump",
              "snapshot",
              "start",
              "backup",
);

VIR_ENUM_IMPL(qemuDomainAgentJob,
              QEMU_AGENT_JOB_LAST,
              "none",
              "query",
              "modify",
);

VIR_ENUM_IMPL(qemuDomainJobOperation,
              VIR_DOMAIN_JOB_OPERATION_LAST,
              "unknown",
              "start",
              "save",
              "restore",
              "migration-in",
              "migration-out",
              "snapshot",
              "snapshot-revert",
              "dump",
              "backup",
              "snapshot-delete",
);

/* ------------------------------------------------------------------ */
/* The tables                                                          */
/* ------------------------------------------------------------------ */

#define QEMU_JOB_MASK_BASE \
    (QEMU_JOB_MASK(QEMU_JOB_QUERY) | QEMU_JOB_MASK(QEMU_JOB_DESTROY))

/* Sync jobs allowed beside each async job when it begins.  Queries and
 * destroy are allowed beside every async job (queries on the incoming side
 * too); abort is refused at once during start and incoming migration,
 * which cannot be aborted half-way. */
const unsigned int qemuDomainAsyncJobDefaultMask[QEMU_ASYNC_JOB_LAST] = {
    [QEMU_ASYNC_JOB_NONE] = QEMU_JOB_MASK_ALL,
    [QEMU_ASYNC_JOB_MIGRATION_OUT] = QEMU_JOB_MASK_BASE |
                                     QEMU_JOB_MASK(QEMU_JOB_ABORT) |
                                     QEMU_JOB_MASK(QEMU_JOB_SUSPEND) |
                                     QEMU_JOB_MASK(QEMU_JOB_MIGRATION_OP) |
                                     QEMU_JOB_MASK(QEMU_JOB_MODIFY_MIGRATION_SAFE),
    [QEMU_ASYNC_JOB_MIGRATION_IN] = QEMU_JOB_MASK_BASE,
    [QEMU_ASYNC_JOB_SAVE] = QEMU_JOB_MASK_BASE |
                            QEMU_JOB_MASK(QEMU_JOB_ABORT),
    [QEMU_ASYNC_JOB_DUMP] = QEMU_JOB_MASK_BASE |
                            QEMU_JOB_MASK(QEMU_JOB_ABORT) |
                            QEMU_JOB_MASK(QEMU_JOB_SUSPEND),
    [QEMU_ASYNC_JOB_SNAPSHOT] = QEMU_JOB_MASK_BASE |
                                QEMU_JOB_MASK(QEMU_JOB_ABORT),
    [QEMU_ASYNC_JOB_START] = QEMU_JOB_MASK_BASE,
    [QEMU_ASYNC_JOB_BACKUP] = QEMU_JOB_MASK_BASE |
                              QEMU_JOB_MASK(QEMU_JOB_ABORT) |
                              QEMU_JOB_MASK(QEMU_JOB_SUSPEND) |
                              QEMU_JOB_MASK(QEMU_JOB_MODIFY) |
                              QEMU_JOB_MASK(QEMU_JOB_MODIFY_MIGRATION_SAFE),
};

/* The error a sync job gets when the running async job forbids it; %s is
 * the async job. */
static const char *const qemuDomainJobRefusedMsg[QEMU_JOB_LAST] = {
    [QEMU_JOB_NONE] = N_("cannot start job: async job '%s' is running and does not allow it"),
    [QEMU_JOB_QUERY] = N_("cannot query domain: async job '%s' is running and does not allow it"),
    [QEMU_JOB_DESTROY] = N_("cannot destroy domain: async job '%s' is running and does not allow it"),
    [QEMU_JOB_SUSPEND] = N_("cannot suspend domain: async job '%s' is running and does not allow it"),
    [QEMU_JOB_MODIFY] = N_("cannot modify domain: async job '%s' is running and does not allow it"),
    [QEMU_JOB_ABORT] = N_("cannot abort job: async job '%s' is running and does not allow it"),
    [QEMU_JOB_MIGRATION_OP] = N_("cannot change migration parameters: async job '%s' is running and does not allow it"),
    [QEMU_JOB_MODIFY_MIGRATION_SAFE] = N_("cannot modify domain: async job '%s' is running and does not allow it"),
    [QEMU_JOB_ASYNC_NESTED] = N_("cannot start job: async job '%s' is running and does not allow it"),
};

/* The messages are in the table above, marked for translation. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
qemuDomainJobReportRefused(qemuDomainJob want, qemuDomainAsyncJob asyncJob)
{
    virReportError(VIR_ERR_OPERATION_INVALID,
                   _(qemuDomainJobRefusedMsg[want]),
                   qemuDomainAsyncJobTypeToString(asyncJob));
}
#pragma GCC diagnostic pop

static const char *const qemuMigrationOutPhaseNames[] = {
    "none", "begin3", "storage", "perform3", "perform3_done", "postcopy", "begin_resume",
    "postcopy_resume", "confirm3_cancelled", "confirm3",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuMigrationOutPhaseNames) == QEMU_MIGRATION_OUT_PHASE_LAST);
static const char *const qemuMigrationInPhaseNames[] = {
    "none", "prepare", "finish3", "postcopy", "prepare_resume", "postcopy_resume",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuMigrationInPhaseNames) == QEMU_MIGRATION_IN_PHASE_LAST);
static const char *const qemuSavePhaseNames[] = {
    "none", "paused", "writing",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuSavePhaseNames) == QEMU_SAVE_PHASE_LAST);
static const char *const qemuDumpPhaseNames[] = {
    "none", "paused", "dumping",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuDumpPhaseNames) == QEMU_DUMP_PHASE_LAST);
static const char *const qemuSnapshotPhaseNames[] = {
    "none", "paused", "saving",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuSnapshotPhaseNames) == QEMU_SNAPSHOT_PHASE_LAST);
static const char *const qemuStartPhaseNames[] = {
    "none", "launched", "connected", "resuming",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuStartPhaseNames) == QEMU_START_PHASE_LAST);
static const char *const qemuBackupPhaseNames[] = {
    "none", "running",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuBackupPhaseNames) == QEMU_BACKUP_PHASE_LAST);
static const char *const qemuNonePhaseNames[] = {
    "none",
};

typedef struct {
    const char *const *names;
    int count;
} qemuDomainAsyncJobPhases;

static const qemuDomainAsyncJobPhases qemuDomainAsyncJobPhaseTable[QEMU_ASYNC_JOB_LAST] = {
    [QEMU_ASYNC_JOB_NONE] = { qemuNonePhaseNames, G_N_ELEMENTS(qemuNonePhaseNames) },
    [QEMU_ASYNC_JOB_MIGRATION_OUT] = { qemuMigrationOutPhaseNames, QEMU_MIGRATION_OUT_PHASE_LAST },
    [QEMU_ASYNC_JOB_MIGRATION_IN] = { qemuMigrationInPhaseNames, QEMU_MIGRATION_IN_PHASE_LAST },
    [QEMU_ASYNC_JOB_SAVE] = { qemuSavePhaseNames, QEMU_SAVE_PHASE_LAST },
    [QEMU_ASYNC_JOB_DUMP] = { qemuDumpPhaseNames, QEMU_DUMP_PHASE_LAST },
    [QEMU_ASYNC_JOB_SNAPSHOT] = { qemuSnapshotPhaseNames, QEMU_SNAPSHOT_PHASE_LAST },
    [QEMU_ASYNC_JOB_START] = { qemuStartPhaseNames, QEMU_START_PHASE_LAST },
    [QEMU_ASYNC_JOB_BACKUP] = { qemuBackupPhaseNames, QEMU_BACKUP_PHASE_LAST },
};

int
qemuDomainAsyncJobPhaseCount(qemuDomainAsyncJob asyncJob)
{
    if (asyncJob < 0 || asyncJob >= QEMU_ASYNC_JOB_LAST)
        return 0;
    return qemuDomainAsyncJobPhaseTable[asyncJob].count;
}

const char *
qemuDomainAsyncJobPhaseToString(qemuDomainAsyncJob asyncJob, int phase)
{
    if (phase < 0 || phase >= qemuDomainAsyncJobPhaseCount(asyncJob))
        return NULL;
    return qemuDomainAsyncJobPhaseTable[asyncJob].names[phase];
}

int
qemuDomainAsyncJobPhaseFromString(qemuDomainAsyncJob asyncJob, const char *name)
{
    int i;

    if (!name)
        return -1;
    for (i = 0; i < qemuDomainAsyncJobPhaseCount(asyncJob); i++) {
        if (STREQ(qemuDomainAsyncJobPhaseTable[asyncJob].names[i], name))
            return i;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

#define QEMU_JOB_WAIT_TIMEOUT_DEFAULT_MS (30 * 1000ULL)

/* process-wide; written at driver start (or by tests), read atomically */
static unsigned long long qemuDomainJobWaitTimeoutMs = QEMU_JOB_WAIT_TIMEOUT_DEFAULT_MS;
static unsigned int qemuDomainJobMaxQueued;

void
qemuDomainJobSetWaitTimeoutMs(unsigned long long ms)
{
    if (ms == 0)
        ms = QEMU_JOB_WAIT_TIMEOUT_DEFAULT_MS;
    __atomic_store_n(&qemuDomainJobWaitTimeoutMs, ms, __ATOMIC_SEQ_CST);
}

void
qemuDomainJobSetWaitTimeout(unsigned int seconds)
{
    qemuDomainJobSetWaitTimeoutMs(seconds * 1000ULL);
}

void
qemuDomainJobSetMaxQueued(unsigned int maxQueued)
{
    __atomic_store_n(&qemuDomainJobMaxQueued, maxQueued, __ATOMIC_SEQ_CST);
}

static unsigned long long
qemuDomainJobGetWaitTimeoutMs(void)
{
    return __atomic_load_n(&qemuDomainJobWaitTimeoutMs, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------ */
/* Debug builds: the lock rules asserted at runtime                    */
/* ------------------------------------------------------------------ */

#ifdef TANDEM_DEBUG_LOCKS
# define QEMU_JOB_ASSERT_FAIL(...) \
    do { \
        VIR_ERROR(__VA_ARGS__); \
        abort(); \
    } while (0)

/* The domain whose lock this thread holds while holding a job on it (set
 * by Begin*Job, cleared inside the monitor and by the last End*Job), and
 * the domain whose monitor it entered. */
static __thread virDomainObj *qemuJobThreadLockedVm;
static __thread virDomainObj *qemuJobThreadMonitorVm;

# ifdef __GLIBC__
/* glibc records the owner of a normal mutex: a real check of "this
 * thread holds / does not hold the domain lock". */
static bool
qemuDomainObjLockHeldBySelf(virDomainObj *vm)
{
    return vm->parent.lock.lock.__data.__owner == (int) syscall(SYS_gettid);
}
#  define QEMU_JOB_ASSERT_LOCKED(vm) \
    do { \
        if (!qemuDomainObjLockHeldBySelf(vm)) \
            QEMU_JOB_ASSERT_FAIL("lock rule: %s called without the domain lock of '%s'", \
                                 __func__, (vm)->def ? (vm)->def->name : "?"); \
    } while (0)
# else
#  define QEMU_JOB_ASSERT_LOCKED(vm) do { } while (0)
# endif
#else
# define QEMU_JOB_ASSERT_FAIL(...) do { } while (0)
# define QEMU_JOB_ASSERT_LOCKED(vm) do { } while (0)
#endif

void
qemuDomainObjAssertUnlocked(void)
{
#ifdef TANDEM_DEBUG_LOCKS
    if (qemuJobThreadLockedVm) {
        QEMU_JOB_ASSERT_FAIL("lock rule: waiting for the monitor while holding the lock of domain '%s' (use qemuDomainObjEnterMonitor)",
                             qemuJobThreadLockedVm->def ? qemuJobThreadLockedVm->def->name : "?");
    }
# ifdef __GLIBC__
    if (qemuJobThreadMonitorVm && qemuDomainObjLockHeldBySelf(qemuJobThreadMonitorVm)) {
        QEMU_JOB_ASSERT_FAIL("lock rule: waiting for the monitor of domain '%s' with its lock held",
                             qemuJobThreadMonitorVm->def ? qemuJobThreadMonitorVm->def->name : "?");
    }
# endif
#endif
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* The API this thread is running, as users know it: libvirtd names its
 * worker jobs "remoteDispatchDomainFoo"; users know virDomainFoo. */
static char *
qemuDomainJobCurrentAPI(void)
{
    const char *name = virThreadJobGet();

    if (!name)
        return NULL;
    if (STRPREFIX(name, "remoteDispatch"))
        return g_strdup_printf("vir%s", name + strlen("remoteDispatch"));
    return g_strdup(name);
}

static const char *
qemuDomainVMName(virDomainObj *vm)
{
    return vm->def && vm->def->name ? vm->def->name : "(unnamed)";
}

static bool
qemuDomainJobQueryHeldBy(qemuDomainJobObj *job, unsigned long long thread)
{
    size_t i;

    if (job->active != QEMU_JOB_QUERY)
        return false;
    for (i = 0; i < job->queryOwners->len; i++) {
        if (g_array_index(job->queryOwners, unsigned long long, i) == thread)
            return true;
    }
    return false;
}

/* Does @thread hold the sync slot (any job, including a shared query)? */
static bool
qemuDomainJobSyncHeldBy(qemuDomainJobObj *job, unsigned long long thread)
{
    if (job->active == QEMU_JOB_NONE)
        return false;
    if (job->active == QEMU_JOB_QUERY)
        return qemuDomainJobQueryHeldBy(job, thread);
    return job->owner == thread;
}

static bool
qemuDomainJobAnyHeldBy(qemuDomainJobObj *job, unsigned long long thread)
{
    return qemuDomainJobSyncHeldBy(job, thread) ||
           (job->destroying && job->destroyOwner == thread) ||
           (job->asyncJob != QEMU_ASYNC_JOB_NONE && job->asyncOwner == thread) ||
           (job->agentActive != QEMU_AGENT_JOB_NONE && job->agentOwner == thread);
}

static void
qemuDomainJobNoteLocked(virDomainObj *vm)
{
#ifdef TANDEM_DEBUG_LOCKS
    qemuJobThreadLockedVm = vm;
#endif
}

static void
qemuDomainJobNoteReleased(virDomainObj *vm, qemuDomainJobObj *job)
{
#ifdef TANDEM_DEBUG_LOCKS
    if (qemuJobThreadLockedVm == vm && !qemuDomainJobAnyHeldBy(job, virThreadSelfID()))
        qemuJobThreadLockedVm = NULL;
#endif
}

/* "<what>=<type> api=<api> thread=<id> for <s> s" */
static void
qemuDomainJobDescribeOne(virBuffer *buf,
                         const char *what,
                         const char *type,
                         const char *api,
                         unsigned long long thread,
                         unsigned long long since,
                         unsigned long long now)
{
    unsigned long long held = now > since ? now - since : 0;

    if (virBufferUse(buf) > 0)
        virBufferAddLit(buf, ", ");
    virBufferAsprintf(buf, "%s=%s api=%s thread=%llu for %llu.%llu s",
                      what, type, NULLSTR(api), thread,
                      held / 1000, (held % 1000) / 100);
}

static char *
qemuDomainJobDescribeHolders(qemuDomainJobObj *job,
                             bool sync,
                             bool async,
                             bool agent,
                             bool monitor,
                             unsigned long long now)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    if (job->reconnecting)
        virBufferAsprintf(&buf, "reconnect thread=%llu (connecting to QEMU after the driver started)",
                          job->reconnectOwner);
    if (sync && job->destroying)
        qemuDomainJobDescribeOne(&buf, "job", "destroy", NULL,
                                 job->destroyOwner, job->destroyStarted, now);
    if (sync && job->active != QEMU_JOB_NONE) {
        qemuDomainJobDescribeOne(&buf, "job", qemuDomainJobTypeToString(job->active),
                                 job->ownerAPI, job->owner, job->started, now);
        if (job->active == QEMU_JOB_QUERY && job->queryOwners->len > 1)
            virBufferAsprintf(&buf, " (+%u more)", job->queryOwners->len - 1);
    }
    if (async && job->asyncJob != QEMU_ASYNC_JOB_NONE)
        qemuDomainJobDescribeOne(&buf, "async", qemuDomainAsyncJobTypeToString(job->asyncJob),
                                 job->asyncOwnerAPI, job->asyncOwner,
                                 job->asyncStarted, now);
    if (agent && job->agentActive != QEMU_AGENT_JOB_NONE)
        qemuDomainJobDescribeOne(&buf, "agent", qemuDomainAgentJobTypeToString(job->agentActive),
                                 job->agentOwnerAPI, job->agentOwner,
                                 job->agentStarted, now);
    if (monitor && job->monitorHolders > 0) {
        if (virBufferUse(&buf) > 0)
            virBufferAddLit(&buf, ", ");
        virBufferAsprintf(&buf, "monitor=%u thread(s) waiting for QEMU",
                          job->monitorHolders);
    }
    if (virBufferUse(&buf) == 0)
        virBufferAddLit(&buf, "nobody");
    return virBufferContentAndReset(&buf);
}

static unsigned long long
qemuDomainJobNow(void)
{
    unsigned long long now = 0;

    ignore_value(virTimeMillisNow(&now));
    return now;
}

/* The common wait: until @deadline, with the domain lock released.
 * Returns 0 when woken (the caller re-checks everything), 1 on deadline,
 * -1 on error. */
static int
qemuDomainJobWait(virDomainObj *vm, virCond *cond, unsigned long long deadline)
{
    if (virCondWaitUntil(cond, &vm->parent.lock, deadline) < 0) {
        if (errno == ETIMEDOUT)
            return 1;
        virReportSystemError(errno, "%s", _("cannot wait for the state change lock"));
        return -1;
    }
    return 0;
}

static void
qemuDomainJobReportTimeout(virDomainObj *vm,
                           const char *waitingFor,
                           const char *waiterAPI,
                           unsigned long long waitStart,
                           char *holders)
{
    unsigned long long waited = qemuDomainJobNow() - waitStart;

    VIR_WARN("Cannot start %s for domain %s in API %s (thread %llu) after waiting %llu ms: held by %s",
             waitingFor, qemuDomainVMName(vm), NULLSTR(waiterAPI),
             virThreadSelfID(), waited, holders);
    virReportError(VIR_ERR_OPERATION_TIMEOUT,
                   _("cannot acquire state change lock (held by %s)"), holders);
}

/* max_queued: fails when too many threads already wait on this domain. */
static int
qemuDomainJobCheckQueue(qemuDomainJobObj *job)
{
    unsigned int max = __atomic_load_n(&qemuDomainJobMaxQueued, __ATOMIC_SEQ_CST);

    if (max > 0 && job->waiters >= max) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot acquire state change lock: too many queued jobs (max_queued = %u)"),
                       max);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Init / clear                                                        */
/* ------------------------------------------------------------------ */

int
qemuDomainJobObjInit(qemuDomainJobObj *job)
{
    memset(job, 0, sizeof(*job));
    if (virCondInit(&job->cond) < 0) {
        virReportSystemError(errno, "%s", _("cannot initialize job condition"));
        return -1;
    }
    if (virCondInit(&job->asyncCond) < 0) {
        virReportSystemError(errno, "%s", _("cannot initialize async job condition"));
        virCondDestroy(&job->cond);
        return -1;
    }
    job->queryOwners = g_array_new(FALSE, FALSE, sizeof(unsigned long long));
    job->mask = QEMU_JOB_MASK_ALL;
    return 0;
}

void
qemuDomainJobInfoClear(qemuDomainJobInfo *info)
{
    if (!info)
        return;
    g_clear_pointer(&info->errmsg, g_free);
    memset(info, 0, sizeof(*info));
}

static void
qemuDomainJobInfoFree(qemuDomainJobInfo *info)
{
    qemuDomainJobInfoClear(info);
    g_free(info);
}

void
qemuDomainJobObjClear(qemuDomainJobObj *job)
{
    if (!job->queryOwners)
        return;   /* never initialized */
    virCondDestroy(&job->cond);
    virCondDestroy(&job->asyncCond);
    g_array_unref(job->queryOwners);
    if (job->monEntries)
        g_array_unref(job->monEntries);
    g_free(job->ownerAPI);
    g_free(job->agentOwnerAPI);
    g_free(job->asyncOwnerAPI);
    g_free(job->peerURI);
    g_strfreev(job->createdImages);
    g_free(job->errmsg);
    if (job->completed)
        qemuDomainJobInfoFree(job->completed);
    memset(job, 0, sizeof(*job));
}

/* ------------------------------------------------------------------ */
/* The reconnect gate                                                  */
/* ------------------------------------------------------------------ */

/* Must @self wait for the reconnect thread? */
static bool
qemuDomainJobGated(qemuDomainJobObj *job, unsigned long long self)
{
    return job->reconnecting && job->reconnectOwner != self;
}

void
qemuDomainObjBeginReconnect(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    QEMU_JOB_ASSERT_LOCKED(vm);
    job->reconnecting = true;
    job->reconnectOwner = 0;
}

void
qemuDomainObjTakeReconnect(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    QEMU_JOB_ASSERT_LOCKED(vm);
    if (!job->reconnecting || job->reconnectOwner != 0) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu claims a reconnect gate that is %s",
                             virThreadSelfID(), job->reconnecting ? "claimed" : "open");
        return;
    }
    job->reconnectOwner = virThreadSelfID();
}

void
qemuDomainObjEndReconnect(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    QEMU_JOB_ASSERT_LOCKED(vm);
    if (job->reconnectOwner != 0 && job->reconnectOwner != virThreadSelfID())
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu opens the reconnect gate of thread %llu",
                             virThreadSelfID(), job->reconnectOwner);
    job->reconnecting = false;
    job->reconnectOwner = 0;
    virCondBroadcast(&job->cond);
}

/* ------------------------------------------------------------------ */
/* Sync jobs                                                           */
/* ------------------------------------------------------------------ */

static bool
qemuDomainJobSlotFree(qemuDomainJobObj *job, qemuDomainJob want)
{
    if (job->destroying)
        return false;
    if (job->active == QEMU_JOB_NONE)
        return true;
    return want == QEMU_JOB_QUERY && job->active == QEMU_JOB_QUERY;
}

static void
qemuDomainJobTakeSlot(qemuDomainJobObj *job,
                      qemuDomainJob want,
                      unsigned long long self,
                      char **api,
                      unsigned long long now)
{
    if (want == QEMU_JOB_QUERY && job->active == QEMU_JOB_QUERY) {
        g_array_append_val(job->queryOwners, self);
        return;
    }
    job->active = want;
    job->owner = self;
    g_free(job->ownerAPI);
    job->ownerAPI = g_steal_pointer(api);
    job->started = now;
    g_array_set_size(job->queryOwners, 0);
    if (want == QEMU_JOB_QUERY)
        g_array_append_val(job->queryOwners, self);
}

/* DESTROY: wait only for the threads inside the monitor, then mark the
 * domain as being destroyed. */
static int
qemuDomainObjBeginDestroyJob(virDomainObj *vm,
                             qemuDomainJobObj *job,
                             unsigned long long self,
                             char *api)
{
    unsigned long long start = qemuDomainJobNow();
    unsigned long long deadline = start + qemuDomainJobGetWaitTimeoutMs();
    bool timedOut = false;
    int rc;

    VIR_DEBUG("Starting destroy job for domain %s (api=%s thread=%llu)",
              qemuDomainVMName(vm), NULLSTR(api), self);

    /* Wake the async job and everybody waiting: the domain is going away. */
    virCondBroadcast(&job->asyncCond);

    while (job->destroying || job->monitorHolders > 0 || qemuDomainJobGated(job, self)) {
        if (timedOut) {
            g_autofree char *holders = NULL;

            holders = qemuDomainJobDescribeHolders(job, job->destroying, false,
                                                   false, true, qemuDomainJobNow());
            qemuDomainJobReportTimeout(vm, "destroy job", api, start, holders);
            return -1;
        }
        if ((rc = qemuDomainJobWait(vm, &job->cond, deadline)) < 0)
            return -1;
        timedOut = rc == 1;
    }

    job->destroying = true;
    job->destroyOwner = self;
    job->destroyStarted = qemuDomainJobNow();
    qemuDomainJobNoteLocked(vm);
    return 0;
}

static int
qemuDomainObjBeginJobInternal(virDomainObj *vm,
                              qemuDomainJob want,
                              qemuDomainAsyncJob nestedFor)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuDomainJobObj *job = &priv->job;
    unsigned long long self = virThreadSelfID();
    g_autofree char *api = qemuDomainJobCurrentAPI();
    bool nested = want == QEMU_JOB_ASYNC_NESTED;
    unsigned long long start;
    unsigned long long deadline;
    unsigned long long traceStart = tdmTraceBegin();
    g_autofree char *traceBlockers = NULL;
    bool timedOut = false;
    int ret = -1;

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (want <= QEMU_JOB_NONE || want >= QEMU_JOB_LAST) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("invalid job type %d"), want);
        return -1;
    }

    if (job->agentActive != QEMU_AGENT_JOB_NONE && job->agentOwner == self) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu asks for job %s while holding agent job %s",
                             self, qemuDomainJobTypeToString(want),
                             qemuDomainAgentJobTypeToString(job->agentActive));
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot start job '%s': this thread holds agent job '%s'"),
                       qemuDomainJobTypeToString(want),
                       qemuDomainAgentJobTypeToString(job->agentActive));
        return -1;
    }

    if (want == QEMU_JOB_DESTROY)
        return qemuDomainObjBeginDestroyJob(vm, job, self, api);

    if (qemuDomainJobSyncHeldBy(job, self) ||
        (job->destroying && job->destroyOwner == self)) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu asks for job %s while holding job %s",
                             self, qemuDomainJobTypeToString(want),
                             qemuDomainJobTypeToString(job->active));
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot start job '%s': this thread already holds job '%s'"),
                       qemuDomainJobTypeToString(want),
                       qemuDomainJobTypeToString(job->destroying ? QEMU_JOB_DESTROY : job->active));
        return -1;
    }

    if (nested) {
        if (job->asyncJob == QEMU_ASYNC_JOB_NONE ||
            job->asyncJob != nestedFor ||
            job->asyncOwner != self) {
            QEMU_JOB_ASSERT_FAIL("lock rule: nested job for async job %s by thread %llu; running async job %s owned by %llu",
                                 qemuDomainAsyncJobTypeToString(nestedFor), self,
                                 qemuDomainAsyncJobTypeToString(job->asyncJob),
                                 job->asyncOwner);
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("nested job for async job '%s' requested by a thread that does not own it (running: '%s')"),
                           qemuDomainAsyncJobTypeToString(nestedFor),
                           qemuDomainAsyncJobTypeToString(job->asyncJob));
            return -1;
        }
    }

    if (qemuDomainJobCheckQueue(job) < 0)
        return -1;

    start = qemuDomainJobNow();
    deadline = start + qemuDomainJobGetWaitTimeoutMs();

    VIR_DEBUG("Starting job %s for domain %s (api=%s thread=%llu; async=%s)",
              qemuDomainJobTypeToString(want), qemuDomainVMName(vm),
              NULLSTR(api), self, qemuDomainAsyncJobTypeToString(job->asyncJob));

    job->waiters++;
    for (;;) {
        bool blockedByAsync = false;
        int rc;

        /* Re-checked after every wake-up: the domain lock was released. */
        if (!nested &&
            job->asyncJob != QEMU_ASYNC_JOB_NONE &&
            !(job->mask & QEMU_JOB_MASK(want))) {
            if (!(QEMU_JOB_WAITS_FOR_ASYNC_MASK & QEMU_JOB_MASK(want))) {
                VIR_DEBUG("Job %s refused: async job %s does not allow it (mask 0x%x)",
                          qemuDomainJobTypeToString(want),
                          qemuDomainAsyncJobTypeToString(job->asyncJob), job->mask);
                qemuDomainJobReportRefused(want, job->asyncJob);
                goto cleanup;
            }
            blockedByAsync = true;
        }

        if (!blockedByAsync && !qemuDomainJobGated(job, self) &&
            qemuDomainJobSlotFree(job, want))
            break;

        if (timedOut) {
            g_autofree char *holders = NULL;
            g_autofree char *what = g_strdup_printf("job %s", qemuDomainJobTypeToString(want));

            holders = qemuDomainJobDescribeHolders(job, !blockedByAsync,
                                                   blockedByAsync, false, false,
                                                   qemuDomainJobNow());
            qemuDomainJobReportTimeout(vm, what, api, start, holders);
            goto cleanup;
        }

        if (traceStart && !traceBlockers)
            traceBlockers = qemuDomainJobDescribeHolders(job, !blockedByAsync,
                                                         blockedByAsync, false, false,
                                                         qemuDomainJobNow());
        if ((rc = qemuDomainJobWait(vm, &job->cond, deadline)) < 0)
            goto cleanup;
        timedOut = rc == 1;
    }

    if (traceBlockers) {
        double ms = tdmTraceSlowMs(traceStart);

        if (ms > 0)
            VIR_WARN("slow: job %s of '%s' (api %s) waited %.1f ms, behind %s",
                     qemuDomainJobTypeToString(want), qemuDomainVMName(vm),
                     NULLSTR(api), ms, traceBlockers);
    }
    qemuDomainJobTakeSlot(job, want, self, &api, qemuDomainJobNow());
    qemuDomainJobNoteLocked(vm);
    ret = 0;

 cleanup:
    job->waiters--;
    return ret;
}

int
qemuDomainObjBeginJob(virDomainObj *vm, qemuDomainJob job)
{
    if (job == QEMU_JOB_ASYNC_NESTED) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("nested jobs are taken with qemuDomainObjBeginNestedJob"));
        return -1;
    }
    return qemuDomainObjBeginJobInternal(vm, job, QEMU_ASYNC_JOB_NONE);
}

int
qemuDomainObjBeginNestedJob(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    return qemuDomainObjBeginJobInternal(vm, QEMU_JOB_ASYNC_NESTED, asyncJob);
}

void
qemuDomainObjEndJob(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    unsigned long long self = virThreadSelfID();

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (job->destroying && job->destroyOwner == self) {
        VIR_DEBUG("Ending destroy job for domain %s", qemuDomainVMName(vm));
        job->destroying = false;
        job->destroyOwner = 0;
    } else if (job->active == QEMU_JOB_QUERY && qemuDomainJobQueryHeldBy(job, self)) {
        size_t i;

        for (i = 0; i < job->queryOwners->len; i++) {
            if (g_array_index(job->queryOwners, unsigned long long, i) == self) {
                g_array_remove_index_fast(job->queryOwners, i);
                break;
            }
        }
        if (job->queryOwners->len > 0) {
            /* still shared: keep the slot, name a remaining holder */
            job->owner = g_array_index(job->queryOwners, unsigned long long, 0);
            qemuDomainJobNoteReleased(vm, job);
            return;
        }
        job->active = QEMU_JOB_NONE;
        job->owner = 0;
        g_clear_pointer(&job->ownerAPI, g_free);
    } else if (job->active != QEMU_JOB_NONE && job->owner == self) {
        VIR_DEBUG("Ending job %s for domain %s",
                  qemuDomainJobTypeToString(job->active), qemuDomainVMName(vm));
        job->active = QEMU_JOB_NONE;
        job->owner = 0;
        g_clear_pointer(&job->ownerAPI, g_free);
    } else {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu ends a job it does not hold (job %s owner %llu)",
                             self, qemuDomainJobTypeToString(job->active), job->owner);
        VIR_WARN("Thread %llu ends a job it does not hold on domain %s (job %s owner %llu)",
                 self, qemuDomainVMName(vm),
                 qemuDomainJobTypeToString(job->active), job->owner);
        return;
    }

    qemuDomainJobNoteReleased(vm, job);
    virCondBroadcast(&job->cond);
}

/* ------------------------------------------------------------------ */
/* Async jobs                                                          */
/* ------------------------------------------------------------------ */

static bool
qemuDomainJobIsAsyncOwner(qemuDomainJobObj *job, unsigned long long self)
{
    return job->asyncJob != QEMU_ASYNC_JOB_NONE && job->asyncOwner == self;
}

int
qemuDomainObjBeginAsyncJob(virDomainObj *vm,
                           qemuDomainAsyncJob asyncJob,
                           virDomainJobOperation operation,
                           unsigned long apiFlags)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuDomainJobObj *job = &priv->job;
    unsigned long long self = virThreadSelfID();
    g_autofree char *api = qemuDomainJobCurrentAPI();
    unsigned long long start;
    unsigned long long deadline;
    bool timedOut = false;
    int ret = -1;

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (asyncJob <= QEMU_ASYNC_JOB_NONE || asyncJob >= QEMU_ASYNC_JOB_LAST) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("invalid async job type %d"), asyncJob);
        return -1;
    }
    if (qemuDomainJobAnyHeldBy(job, self)) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu begins async job %s while holding a job",
                             self, qemuDomainAsyncJobTypeToString(asyncJob));
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot start async job '%s': this thread already holds a job"),
                       qemuDomainAsyncJobTypeToString(asyncJob));
        return -1;
    }
    if (qemuDomainJobCheckQueue(job) < 0)
        return -1;

    start = qemuDomainJobNow();
    deadline = start + qemuDomainJobGetWaitTimeoutMs();
    VIR_DEBUG("Starting async job %s for domain %s (api=%s thread=%llu)",
              qemuDomainAsyncJobTypeToString(asyncJob), qemuDomainVMName(vm),
              NULLSTR(api), self);

    job->waiters++;
    while (job->asyncJob != QEMU_ASYNC_JOB_NONE ||
           job->active != QEMU_JOB_NONE ||
           job->destroying ||
           qemuDomainJobGated(job, self)) {
        int rc;

        if (timedOut) {
            g_autofree char *holders = NULL;
            g_autofree char *what = g_strdup_printf("async job %s",
                                                    qemuDomainAsyncJobTypeToString(asyncJob));

            holders = qemuDomainJobDescribeHolders(job, true, true, false, false,
                                                   qemuDomainJobNow());
            qemuDomainJobReportTimeout(vm, what, api, start, holders);
            goto cleanup;
        }
        if ((rc = qemuDomainJobWait(vm, &job->cond, deadline)) < 0)
            goto cleanup;
        timedOut = rc == 1;
    }

    job->asyncJob = asyncJob;
    job->asyncOwner = self;
    g_free(job->asyncOwnerAPI);
    job->asyncOwnerAPI = g_steal_pointer(&api);
    job->asyncStarted = qemuDomainJobNow();
    job->mask = qemuDomainAsyncJobDefaultMask[asyncJob];
    job->phase = 0;
    job->operation = operation;
    job->apiFlags = apiFlags;
    job->abortRequested = false;
    job->status = VIR_DOMAIN_JOB_UNBOUNDED;
    memset(&job->progress, 0, sizeof(job->progress));
    g_clear_pointer(&job->errmsg, g_free);
    qemuDomainJobNoteLocked(vm);
    ret = 0;

 cleanup:
    job->waiters--;
    return ret;
}

void
qemuDomainObjEndAsyncJob(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    unsigned long long self = virThreadSelfID();
    qemuDomainJobInfo *done;

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (!qemuDomainJobIsAsyncOwner(job, self)) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu ends async job %s owned by %llu",
                             self, qemuDomainAsyncJobTypeToString(job->asyncJob),
                             job->asyncOwner);
        VIR_WARN("Thread %llu ends async job %s of domain %s owned by %llu",
                 self, qemuDomainAsyncJobTypeToString(job->asyncJob),
                 qemuDomainVMName(vm), job->asyncOwner);
        if (job->asyncJob == QEMU_ASYNC_JOB_NONE)
            return;
    }

    VIR_DEBUG("Ending async job %s for domain %s",
              qemuDomainAsyncJobTypeToString(job->asyncJob), qemuDomainVMName(vm));

    done = g_new0(qemuDomainJobInfo, 1);
    done->asyncJob = job->asyncJob;
    done->operation = job->operation;
    done->started = job->asyncStarted;
    done->elapsed = qemuDomainJobNow() - job->asyncStarted;
    done->progress = job->progress;
    done->progress.timeRemaining = 0;
    if (job->status == VIR_DOMAIN_JOB_COMPLETED ||
        job->status == VIR_DOMAIN_JOB_FAILED ||
        job->status == VIR_DOMAIN_JOB_CANCELLED)
        done->type = job->status;
    else
        done->type = job->abortRequested ? VIR_DOMAIN_JOB_CANCELLED : VIR_DOMAIN_JOB_FAILED;
    done->errmsg = g_steal_pointer(&job->errmsg);
    if (job->completed)
        qemuDomainJobInfoFree(job->completed);
    job->completed = done;

    job->asyncJob = QEMU_ASYNC_JOB_NONE;
    job->asyncOwner = 0;
    g_clear_pointer(&job->asyncOwnerAPI, g_free);
    job->asyncStarted = 0;
    job->mask = QEMU_JOB_MASK_ALL;
    job->phase = 0;
    job->operation = VIR_DOMAIN_JOB_OPERATION_UNKNOWN;
    job->apiFlags = 0;
    g_clear_pointer(&job->peerURI, g_free);
    g_clear_pointer(&job->createdImages, g_strfreev);
    job->abortRequested = false;
    job->status = VIR_DOMAIN_JOB_NONE;
    memset(&job->progress, 0, sizeof(job->progress));

    qemuDomainJobNoteReleased(vm, job);
    virCondBroadcast(&job->cond);
}

void
qemuDomainObjSetAsyncJobMask(virDomainObj *vm, unsigned int allowedJobs)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    if (!qemuDomainJobIsAsyncOwner(job, virThreadSelfID())) {
        QEMU_JOB_ASSERT_FAIL("lock rule: async job mask changed by a thread not owning async job %s",
                             qemuDomainAsyncJobTypeToString(job->asyncJob));
        VIR_WARN("Ignoring a mask change of async job %s by a thread not owning it",
                 qemuDomainAsyncJobTypeToString(job->asyncJob));
        return;
    }
    job->mask = (allowedJobs | QEMU_JOB_MASK(QEMU_JOB_QUERY) |
                 QEMU_JOB_MASK(QEMU_JOB_DESTROY)) & QEMU_JOB_MASK_ALL;
    job->mask &= ~QEMU_JOB_MASK(QEMU_JOB_ASYNC_NESTED);
    VIR_DEBUG("Async job %s of domain %s allows 0x%x",
              qemuDomainAsyncJobTypeToString(job->asyncJob),
              qemuDomainVMName(vm), job->mask);
    /* jobs that were waiting may now be allowed */
    virCondBroadcast(&job->cond);
}

int
qemuDomainObjSetJobPhase(virDomainObj *vm, int phase)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    if (!qemuDomainJobIsAsyncOwner(job, virThreadSelfID())) {
        QEMU_JOB_ASSERT_FAIL("lock rule: phase of async job %s set by a thread not owning it",
                             qemuDomainAsyncJobTypeToString(job->asyncJob));
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot set the phase of async job '%s': this thread does not own it"),
                       qemuDomainAsyncJobTypeToString(job->asyncJob));
        return -1;
    }
    if (phase < job->phase || phase >= qemuDomainAsyncJobPhaseCount(job->asyncJob)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("invalid phase change %s -> %d of async job '%s'"),
                       NULLSTR(qemuDomainAsyncJobPhaseToString(job->asyncJob, job->phase)),
                       phase, qemuDomainAsyncJobTypeToString(job->asyncJob));
        return -1;
    }
    VIR_DEBUG("Async job %s of domain %s: phase %s -> %s",
              qemuDomainAsyncJobTypeToString(job->asyncJob), qemuDomainVMName(vm),
              qemuDomainAsyncJobPhaseToString(job->asyncJob, job->phase),
              qemuDomainAsyncJobPhaseToString(job->asyncJob, phase));
    job->phase = phase;
    return 0;
}

void
qemuDomainObjSetAsyncJobResult(virDomainObj *vm,
                               virDomainJobType status,
                               const char *errmsg)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    if (job->asyncJob == QEMU_ASYNC_JOB_NONE)
        return;
    job->status = status;
    g_free(job->errmsg);
    job->errmsg = g_strdup(errmsg);
}

void
qemuDomainObjAdoptAsyncJob(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    if (job->asyncJob == QEMU_ASYNC_JOB_NONE)
        return;
    VIR_DEBUG("Thread %llu adopts async job %s of domain %s (was %llu)",
              virThreadSelfID(), qemuDomainAsyncJobTypeToString(job->asyncJob),
              qemuDomainVMName(vm), job->asyncOwner);
    job->asyncOwner = virThreadSelfID();
    qemuDomainJobNoteLocked(vm);
}

void
qemuDomainObjResetInterruptedJobs(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    VIR_DEBUG("Resetting interrupted jobs of domain %s: job %s%s, agent job %s",
              qemuDomainVMName(vm), qemuDomainJobTypeToString(job->active),
              job->destroying ? " (destroying)" : "",
              qemuDomainAgentJobTypeToString(job->agentActive));
    job->active = QEMU_JOB_NONE;
    job->owner = 0;
    g_clear_pointer(&job->ownerAPI, g_free);
    g_array_set_size(job->queryOwners, 0);
    job->destroying = false;
    job->destroyOwner = 0;
    job->agentActive = QEMU_AGENT_JOB_NONE;
    job->agentOwner = 0;
    g_clear_pointer(&job->agentOwnerAPI, g_free);
    virCondBroadcast(&job->cond);
}

int
qemuDomainObjAbortAsyncJob(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    if (job->asyncJob == QEMU_ASYNC_JOB_NONE) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("no job is active on the domain"));
        return -1;
    }
    if (!(job->mask & QEMU_JOB_MASK(QEMU_JOB_ABORT))) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("cannot abort job: async job '%s' is running and does not allow it"),
                       qemuDomainAsyncJobTypeToString(job->asyncJob));
        return -1;
    }
    VIR_DEBUG("Abort requested for async job %s of domain %s",
              qemuDomainAsyncJobTypeToString(job->asyncJob), qemuDomainVMName(vm));
    job->abortRequested = true;
    virCondBroadcast(&job->asyncCond);
    return 0;
}

bool
qemuDomainObjAsyncJobAbortRequested(virDomainObj *vm)
{
    return QEMU_DOMAIN_PRIVATE(vm)->job.abortRequested;
}

int
qemuDomainObjWaitAsyncJob(virDomainObj *vm, unsigned long long deadline)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    QEMU_JOB_ASSERT_LOCKED(vm);
    if (deadline == 0) {
        if (virCondWait(&job->asyncCond, &vm->parent.lock) < 0) {
            virReportSystemError(errno, "%s", _("cannot wait for the async job condition"));
            return -1;
        }
        return 0;
    }
    return qemuDomainJobWait(vm, &job->asyncCond, deadline);
}

void
qemuDomainObjSignalAsyncJob(virDomainObj *vm)
{
    virCondBroadcast(&QEMU_DOMAIN_PRIVATE(vm)->job.asyncCond);
}

/* ------------------------------------------------------------------ */
/* Agent jobs                                                          */
/* ------------------------------------------------------------------ */

int
qemuDomainObjBeginAgentJob(virDomainObj *vm, qemuDomainAgentJob agentJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuDomainJobObj *job = &priv->job;
    unsigned long long self = virThreadSelfID();
    g_autofree char *api = qemuDomainJobCurrentAPI();
    unsigned long long start;
    unsigned long long deadline;
    bool timedOut = false;
    int ret = -1;

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (agentJob <= QEMU_AGENT_JOB_NONE || agentJob >= QEMU_AGENT_JOB_LAST) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("invalid agent job type %d"), agentJob);
        return -1;
    }
    if (qemuDomainJobSyncHeldBy(job, self) ||
        (job->destroying && job->destroyOwner == self) ||
        (job->agentActive != QEMU_AGENT_JOB_NONE && job->agentOwner == self)) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu asks for agent job %s while holding job %s / agent job %s",
                             self, qemuDomainAgentJobTypeToString(agentJob),
                             qemuDomainJobTypeToString(job->active),
                             qemuDomainAgentJobTypeToString(job->agentActive));
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot start agent job '%s': this thread already holds a job"),
                       qemuDomainAgentJobTypeToString(agentJob));
        return -1;
    }
    if (qemuDomainJobCheckQueue(job) < 0)
        return -1;

    start = qemuDomainJobNow();
    deadline = start + qemuDomainJobGetWaitTimeoutMs();
    job->waiters++;
    while (job->agentActive != QEMU_AGENT_JOB_NONE || qemuDomainJobGated(job, self)) {
        int rc;

        if (timedOut) {
            g_autofree char *holders = NULL;
            g_autofree char *what = g_strdup_printf("agent job %s",
                                                    qemuDomainAgentJobTypeToString(agentJob));

            holders = qemuDomainJobDescribeHolders(job, false, false, true, false,
                                                   qemuDomainJobNow());
            qemuDomainJobReportTimeout(vm, what, api, start, holders);
            goto cleanup;
        }
        if ((rc = qemuDomainJobWait(vm, &job->cond, deadline)) < 0)
            goto cleanup;
        timedOut = rc == 1;
    }

    job->agentActive = agentJob;
    job->agentOwner = self;
    g_free(job->agentOwnerAPI);
    job->agentOwnerAPI = g_steal_pointer(&api);
    job->agentStarted = qemuDomainJobNow();
    qemuDomainJobNoteLocked(vm);
    ret = 0;

 cleanup:
    job->waiters--;
    return ret;
}

void
qemuDomainObjEndAgentJob(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    unsigned long long self = virThreadSelfID();

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (job->agentActive == QEMU_AGENT_JOB_NONE || job->agentOwner != self) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu ends agent job %s owned by %llu",
                             self, qemuDomainAgentJobTypeToString(job->agentActive),
                             job->agentOwner);
        VIR_WARN("Thread %llu ends agent job %s of domain %s owned by %llu",
                 self, qemuDomainAgentJobTypeToString(job->agentActive),
                 qemuDomainVMName(vm), job->agentOwner);
        if (job->agentActive == QEMU_AGENT_JOB_NONE)
            return;
    }
    job->agentActive = QEMU_AGENT_JOB_NONE;
    job->agentOwner = 0;
    g_clear_pointer(&job->agentOwnerAPI, g_free);
    job->agentStarted = 0;
    qemuDomainJobNoteReleased(vm, job);
    virCondBroadcast(&job->cond);
}

/* ------------------------------------------------------------------ */
/* The monitor                                                         */
/* ------------------------------------------------------------------ */

/* One entry per thread between EnterMonitor and ExitMonitor: the monitor
 * it referenced (priv->mon may be replaced meanwhile) and whether it ends
 * a nested job on exit. */
typedef struct {
    unsigned long long thread;
    qemuMonitor *mon;
    bool nested;
    unsigned long long traceEntered;  /* tdmTraceBegin() at entry */
} qemuDomainMonitorEntry;

static int
qemuDomainObjEnterMonitorInternal(virDomainObj *vm, bool nested)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuDomainJobObj *job = &priv->job;
    unsigned long long self = virThreadSelfID();
    qemuDomainMonitorEntry entry = { self, NULL, nested, tdmTraceBegin() };
    size_t i;

    QEMU_JOB_ASSERT_LOCKED(vm);

    if (!qemuDomainJobSyncHeldBy(job, self) &&
        !(job->destroying && job->destroyOwner == self)) {
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu enters the monitor of domain %s without a job (job %s owner %llu, async %s owner %llu)",
                             self, qemuDomainVMName(vm),
                             qemuDomainJobTypeToString(job->active), job->owner,
                             qemuDomainAsyncJobTypeToString(job->asyncJob),
                             job->asyncOwner);
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("entering the monitor without a job"));
        return -1;
    }
    for (i = 0; job->monEntries && i < job->monEntries->len; i++) {
        if (g_array_index(job->monEntries, qemuDomainMonitorEntry, i).thread == self) {
            QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu enters the monitor of domain %s twice",
                                 self, qemuDomainVMName(vm));
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("entering the monitor twice"));
            return -1;
        }
    }
    if (job->destroying && job->destroyOwner != self) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is being destroyed"));
        return -1;
    }
    if (virDomainObjCheckActive(vm) < 0)
        return -1;
    if (!priv->mon) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("QEMU monitor is not available"));
        return -1;
    }

    if (!job->monEntries)
        job->monEntries = g_array_new(FALSE, FALSE, sizeof(qemuDomainMonitorEntry));
    entry.mon = priv->mon;
    virObjectRef(entry.mon);
    g_array_append_val(job->monEntries, entry);
    job->monitorHolders++;

#ifdef TANDEM_DEBUG_LOCKS
    qemuJobThreadLockedVm = NULL;
    qemuJobThreadMonitorVm = vm;
#endif
    virObjectUnlock(vm);
    return 0;
}

int
qemuDomainObjEnterMonitor(virDomainObj *vm)
{
    return qemuDomainObjEnterMonitorInternal(vm, false);
}

int
qemuDomainObjEnterMonitorAsync(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    if (asyncJob == QEMU_ASYNC_JOB_NONE)
        return qemuDomainObjEnterMonitorInternal(vm, false);

    if (qemuDomainObjBeginNestedJob(vm, asyncJob) < 0)
        return -1;
    if (qemuDomainObjEnterMonitorInternal(vm, true) < 0) {
        qemuDomainObjEndJob(vm);
        return -1;
    }
    return 0;
}

int
qemuDomainObjExitMonitor(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv;
    qemuDomainJobObj *job;
    unsigned long long self = virThreadSelfID();
    qemuDomainMonitorEntry entry = { 0 };
    bool found = false;
    size_t i;
    int ret = 0;
    unsigned long long traceLock;
    double lockMs;

#ifdef TANDEM_DEBUG_LOCKS
    if (qemuJobThreadMonitorVm != vm)
        QEMU_JOB_ASSERT_FAIL("lock rule: thread %llu exits the monitor of domain %s it did not enter",
                             self, vm->def ? vm->def->name : "?");
#endif

    traceLock = tdmTraceBegin();
    virObjectLock(vm);
    lockMs = tdmTraceSlowMs(traceLock);
    priv = QEMU_DOMAIN_PRIVATE(vm);
    job = &priv->job;
    if (lockMs > 0)
        VIR_WARN("slow: leaving the monitor of '%s' waited %.1f ms for the domain lock",
                 qemuDomainVMName(vm), lockMs);

    for (i = 0; job->monEntries && i < job->monEntries->len; i++) {
        if (g_array_index(job->monEntries, qemuDomainMonitorEntry, i).thread == self) {
            entry = g_array_index(job->monEntries, qemuDomainMonitorEntry, i);
            g_array_remove_index_fast(job->monEntries, i);
            found = true;
            break;
        }
    }
    if (!found) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("leaving the monitor without entering it"));
        return -1;
    }

#ifdef TANDEM_DEBUG_LOCKS
    qemuJobThreadMonitorVm = NULL;
    qemuJobThreadLockedVm = vm;
#endif

    if (entry.traceEntered) {
        double ms = tdmTraceSlowMs(entry.traceEntered);

        if (ms > 0)
            VIR_WARN("slow: a %s job stayed %.1f ms in the monitor of '%s'",
                     entry.nested ? "nested" : qemuDomainJobTypeToString(job->active),
                     ms, qemuDomainVMName(vm));
    }
    job->monitorHolders--;
    virObjectUnref(entry.mon);
    if (job->monitorHolders == 0)
        virCondBroadcast(&job->cond);   /* a destroy job may wait for it */

    if (job->destroying && job->destroyOwner != self) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is being destroyed"));
        ret = -1;
    } else if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is no longer running"));
        ret = -1;
    }

    if (entry.nested)
        qemuDomainObjEndJob(vm);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Job info                                                            */
/* ------------------------------------------------------------------ */

int
qemuDomainJobGetInfo(virDomainObj *vm, bool completed, qemuDomainJobInfo *info)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    memset(info, 0, sizeof(*info));
    if (completed) {
        if (job->completed) {
            *info = *job->completed;
            info->errmsg = g_strdup(job->completed->errmsg);
        } else {
            info->type = VIR_DOMAIN_JOB_NONE;
        }
        return 0;
    }

    if (job->asyncJob == QEMU_ASYNC_JOB_NONE) {
        info->type = VIR_DOMAIN_JOB_NONE;
        return 0;
    }
    info->type = job->status == VIR_DOMAIN_JOB_BOUNDED ? VIR_DOMAIN_JOB_BOUNDED
                                                       : VIR_DOMAIN_JOB_UNBOUNDED;
    info->asyncJob = job->asyncJob;
    info->operation = job->operation;
    info->started = job->asyncStarted;
    info->elapsed = qemuDomainJobNow() - job->asyncStarted;
    info->progress = job->progress;
    return 0;
}

void
qemuDomainJobInfoToInfo(const qemuDomainJobInfo *info, virDomainJobInfoPtr out)
{
    memset(out, 0, sizeof(*out));
    out->type = info->type;
    out->timeElapsed = info->elapsed;
    out->timeRemaining = info->type == VIR_DOMAIN_JOB_BOUNDED ?
                         info->progress.timeRemaining : 0;
    out->dataTotal = info->progress.dataTotal;
    out->dataProcessed = info->progress.dataProcessed;
    out->dataRemaining = info->progress.dataRemaining;
    out->memTotal = info->progress.memTotal;
    out->memProcessed = info->progress.memProcessed;
    out->memRemaining = info->progress.memRemaining;
    out->fileTotal = info->progress.diskTotal;
    out->fileProcessed = info->progress.diskProcessed;
    out->fileRemaining = info->progress.diskRemaining;
}

int
qemuDomainJobInfoToParams(const qemuDomainJobInfo *info,
                          int *type,
                          virTypedParameterPtr *params,
                          int *nparams)
{
    virTypedParameterPtr par = NULL;
    int npar = 0;
    int maxpar = 0;
    const qemuDomainJobProgress *p = &info->progress;

#define ADD_ULL(name, value) \
    do { \
        if (virTypedParamsAddULLong(&par, &npar, &maxpar, name, value) < 0) \
            goto error; \
    } while (0)

    *type = info->type;
    if (info->type == VIR_DOMAIN_JOB_NONE) {
        *params = NULL;
        *nparams = 0;
        return 0;
    }

    if (virTypedParamsAddInt(&par, &npar, &maxpar,
                             VIR_DOMAIN_JOB_OPERATION, info->operation) < 0)
        goto error;
    ADD_ULL(VIR_DOMAIN_JOB_TIME_ELAPSED, info->elapsed);
    if (info->type == VIR_DOMAIN_JOB_BOUNDED)
        ADD_ULL(VIR_DOMAIN_JOB_TIME_REMAINING, p->timeRemaining);
    if (p->downtime)
        ADD_ULL(VIR_DOMAIN_JOB_DOWNTIME, p->downtime);
    if (p->setupTime)
        ADD_ULL(VIR_DOMAIN_JOB_SETUP_TIME, p->setupTime);
    ADD_ULL(VIR_DOMAIN_JOB_DATA_TOTAL, p->dataTotal);
    ADD_ULL(VIR_DOMAIN_JOB_DATA_PROCESSED, p->dataProcessed);
    ADD_ULL(VIR_DOMAIN_JOB_DATA_REMAINING, p->dataRemaining);
    if (p->memTotal || p->memProcessed || p->memRemaining) {
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_TOTAL, p->memTotal);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_PROCESSED, p->memProcessed);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_REMAINING, p->memRemaining);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_CONSTANT, p->memConstant);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_NORMAL, p->memNormal);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_NORMAL_BYTES, p->memNormalBytes);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_BPS, p->memBps);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, p->memDirtyRate);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_ITERATION, p->memIteration);
        if (p->memPageSize)
            ADD_ULL(VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, p->memPageSize);
        ADD_ULL(VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS, p->memPostcopyReqs);
    }
    if (p->diskTotal || p->diskProcessed || p->diskRemaining) {
        ADD_ULL(VIR_DOMAIN_JOB_DISK_TOTAL, p->diskTotal);
        ADD_ULL(VIR_DOMAIN_JOB_DISK_PROCESSED, p->diskProcessed);
        ADD_ULL(VIR_DOMAIN_JOB_DISK_REMAINING, p->diskRemaining);
        ADD_ULL(VIR_DOMAIN_JOB_DISK_BPS, p->diskBps);
    }
    if (info->type == VIR_DOMAIN_JOB_COMPLETED ||
        info->type == VIR_DOMAIN_JOB_FAILED ||
        info->type == VIR_DOMAIN_JOB_CANCELLED) {
        if (virTypedParamsAddBoolean(&par, &npar, &maxpar, VIR_DOMAIN_JOB_SUCCESS,
                                     info->type == VIR_DOMAIN_JOB_COMPLETED) < 0)
            goto error;
        if (info->errmsg &&
            virTypedParamsAddString(&par, &npar, &maxpar, VIR_DOMAIN_JOB_ERRMSG,
                                    info->errmsg) < 0)
            goto error;
    }
#undef ADD_ULL

    *params = par;
    *nparams = npar;
    return 0;

 error:
    virTypedParamsFree(par, npar);
    return -1;
}

void
qemuDomainJobClearCompleted(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    if (job->completed) {
        qemuDomainJobInfoFree(job->completed);
        job->completed = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Status file                                                         */
/* ------------------------------------------------------------------ */

/* <job type='modify' agent='none' async='migration out' phase='perform3'
 *      asyncOwner='1234' asyncOwnerAPI='virDomainMigratePerform3Params'
 *      asyncStarted='1700000000000' operation='outgoing migration'
 *      flags='0x1' peerURI='qemu+unix:///system?socket=...'>
 *   <createdImage path='/var/lib/libvirt/images/vm.qcow2'/>
 * </job>
 * (peerURI: a peer-to-peer migration-out only; createdImage: the images a
 * migration-in's Prepare created.)  Written only when some job is held.
 * The sync and agent jobs are recorded so that reconnect knows what was
 * interrupted. */
void
qemuDomainJobFormat(virBuffer *buf, virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    qemuDomainJob active = job->destroying ? QEMU_JOB_DESTROY : job->active;
    size_t i;

    if (active == QEMU_JOB_NONE &&
        job->agentActive == QEMU_AGENT_JOB_NONE &&
        job->asyncJob == QEMU_ASYNC_JOB_NONE)
        return;

    virBufferAsprintf(buf, "<job type='%s'", qemuDomainJobTypeToString(active));
    if (job->agentActive != QEMU_AGENT_JOB_NONE)
        virBufferAsprintf(buf, " agent='%s'",
                          qemuDomainAgentJobTypeToString(job->agentActive));
    virBufferAsprintf(buf, " async='%s'", qemuDomainAsyncJobTypeToString(job->asyncJob));
    if (job->asyncJob != QEMU_ASYNC_JOB_NONE) {
        virBufferAsprintf(buf, " phase='%s'",
                          qemuDomainAsyncJobPhaseToString(job->asyncJob, job->phase));
        virBufferAsprintf(buf, " asyncOwner='%llu'", job->asyncOwner);
        virBufferEscapeString(buf, " asyncOwnerAPI='%s'", job->asyncOwnerAPI);
        virBufferAsprintf(buf, " asyncStarted='%llu'", job->asyncStarted);
        virBufferAsprintf(buf, " operation='%s'",
                          qemuDomainJobOperationTypeToString(job->operation));
        virBufferAsprintf(buf, " flags='0x%lx'", job->apiFlags);
        virBufferEscapeString(buf, " peerURI='%s'", job->peerURI);
    }
    if (job->asyncJob == QEMU_ASYNC_JOB_NONE || !job->createdImages) {
        virBufferAddLit(buf, "/>\n");
        return;
    }
    virBufferAddLit(buf, ">\n");
    virBufferAdjustIndent(buf, 2);
    for (i = 0; job->createdImages[i]; i++)
        virBufferEscapeString(buf, "<createdImage path='%s'/>\n", job->createdImages[i]);
    virBufferAdjustIndent(buf, -2);
    virBufferAddLit(buf, "</job>\n");
}

int
qemuDomainJobParse(xmlXPathContextPtr ctxt, virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    VIR_XPATH_NODE_AUTORESTORE(ctxt)
    xmlNodePtr node;
    unsigned int active = QEMU_JOB_NONE;
    unsigned int agent = QEMU_AGENT_JOB_NONE;
    unsigned int async = QEMU_ASYNC_JOB_NONE;
    unsigned int operation = VIR_DOMAIN_JOB_OPERATION_UNKNOWN;
    unsigned long long owner = 0;
    unsigned long long started = 0;
    g_autofree char *phase = NULL;
    g_autofree char *api = NULL;
    g_autofree char *flags = NULL;
    unsigned long long apiFlags = 0;
    int phaseNum = 0;
    g_autofree xmlNodePtr *images = NULL;
    int nimages;
    int i;

    if (!(node = virXPathNode("./job[1]", ctxt)))
        return 0;
    ctxt->node = node;

    if (virXMLPropEnum(node, "type", qemuDomainJobTypeFromString,
                       VIR_XML_PROP_NONE, &active) < 0 ||
        virXMLPropEnum(node, "agent", qemuDomainAgentJobTypeFromString,
                       VIR_XML_PROP_NONE, &agent) < 0 ||
        virXMLPropEnum(node, "async", qemuDomainAsyncJobTypeFromString,
                       VIR_XML_PROP_NONE, &async) < 0 ||
        virXMLPropEnum(node, "operation", qemuDomainJobOperationTypeFromString,
                       VIR_XML_PROP_NONE, &operation) < 0 ||
        virXMLPropULongLong(node, "asyncOwner", 10, VIR_XML_PROP_NONE, &owner) < 0 ||
        virXMLPropULongLong(node, "asyncStarted", 10, VIR_XML_PROP_NONE, &started) < 0)
        return -1;

    if ((phase = virXMLPropString(node, "phase")) &&
        (phaseNum = qemuDomainAsyncJobPhaseFromString(async, phase)) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unknown phase '%s' of async job '%s'"),
                       phase, qemuDomainAsyncJobTypeToString(async));
        return -1;
    }
    if ((flags = virXMLPropString(node, "flags")) &&
        virStrToLong_ull(flags, NULL, 0, &apiFlags) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("invalid job flags '%s'"), flags);
        return -1;
    }
    api = virXMLPropString(node, "asyncOwnerAPI");

    /* The interrupted sync and agent jobs: no thread owns them any more;
     * reconnect inspects and resets them. */
    if (active == QEMU_JOB_DESTROY) {
        job->active = QEMU_JOB_NONE;
        job->destroying = true;
        job->destroyOwner = 0;
    } else {
        job->active = active;
        job->owner = 0;
    }
    job->agentActive = agent;
    job->agentOwner = 0;

    job->asyncJob = async;
    if (async != QEMU_ASYNC_JOB_NONE) {
        job->asyncOwner = owner;
        g_free(job->asyncOwnerAPI);
        job->asyncOwnerAPI = g_steal_pointer(&api);
        job->asyncStarted = started;
        job->phase = phaseNum;
        job->operation = operation;
        job->apiFlags = apiFlags;
        g_free(job->peerURI);
        job->peerURI = virXMLPropString(node, "peerURI");
        g_clear_pointer(&job->createdImages, g_strfreev);
        if ((nimages = virXPathNodeSet("./createdImage", ctxt, &images)) > 0) {
            job->createdImages = g_new0(char *, nimages + 1);
            for (i = 0; i < nimages; i++) {
                if (!(job->createdImages[i] = virXMLPropString(images[i], "path"))) {
                    virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                                   _("a created image of the job has no path"));
                    return -1;
                }
            }
        }
        job->mask = qemuDomainAsyncJobDefaultMask[async];
        job->status = VIR_DOMAIN_JOB_UNBOUNDED;
    }
    return 0;
}
