/*
 * qemu_domainjob.h: the per-domain job model (sync, async and agent job
 * slots, their masks and phases) and entering/leaving the QEMU monitor
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The binding rules are in docs/THREADS.txt; the protocol is modelled in
 * tests/model/jobs.pml.  Everything in a qemuDomainJobObj is protected by
 * the domain object lock (virObjectLock(vm)); every function here is called
 * with that lock held and returns with it held, except where a function
 * name or comment says otherwise.
 */
#pragma once

#include "internal.h"
#include "virenum.h"
#include "virthread.h"
#include "virbuffer.h"
#include "virxml.h"
#include "domain_conf.h"

/* The QMP monitor (src/qemu/qemu_monitor.h): a virObjectLockable. */
typedef struct _qemuMonitor qemuMonitor;

/* Synchronous jobs: one thread at a time (queries share). */
typedef enum {
    QEMU_JOB_NONE = 0,              /* no job */
    QEMU_JOB_QUERY,                 /* read-only; shared between threads */
    QEMU_JOB_DESTROY,               /* tearing the domain down; never waits
                                     * for another job (see qemuDomainObjBeginJob) */
    QEMU_JOB_SUSPEND,               /* pausing the vCPUs */
    QEMU_JOB_MODIFY,                /* anything that changes the domain */
    QEMU_JOB_ABORT,                 /* aborting the running async job */
    QEMU_JOB_MIGRATION_OP,          /* changing parameters of a migration */
    QEMU_JOB_MODIFY_MIGRATION_SAFE, /* a modification harmless to a migration */
    QEMU_JOB_ASYNC_NESTED,          /* an async job's own monitor commands */

    QEMU_JOB_LAST
} qemuDomainJob;
VIR_ENUM_DECL(qemuDomainJob);

#define QEMU_JOB_MASK(job) (1U << (job))
#define QEMU_JOB_MASK_ALL ((1U << QEMU_JOB_LAST) - 1)

/* Asynchronous (long) jobs: at most one; runs beside the sync jobs its
 * mask allows. */
typedef enum {
    QEMU_ASYNC_JOB_NONE = 0,
    QEMU_ASYNC_JOB_MIGRATION_OUT,
    QEMU_ASYNC_JOB_MIGRATION_IN,
    QEMU_ASYNC_JOB_SAVE,
    QEMU_ASYNC_JOB_DUMP,
    QEMU_ASYNC_JOB_SNAPSHOT,
    QEMU_ASYNC_JOB_START,
    QEMU_ASYNC_JOB_BACKUP,

    QEMU_ASYNC_JOB_LAST
} qemuDomainAsyncJob;
VIR_ENUM_DECL(qemuDomainAsyncJob);

/* Guest agent jobs: their own slot; never held with a sync job by the
 * same thread. */
typedef enum {
    QEMU_AGENT_JOB_NONE = 0,
    QEMU_AGENT_JOB_QUERY,
    QEMU_AGENT_JOB_MODIFY,

    QEMU_AGENT_JOB_LAST
} qemuDomainAgentJob;
VIR_ENUM_DECL(qemuDomainAgentJob);

/* virDomainJobOperation as written in the status XML. */
VIR_ENUM_DECL(qemuDomainJobOperation);

/* THE TABLE: sync jobs an async job allows beside it when it begins
 * (QEMU_JOB_MASK bits; QEMU_JOB_ASYNC_NESTED is never subject to it).
 * Indexed by qemuDomainAsyncJob; the NONE entry allows everything.
 * tests/model/jobs.pml carries a copy, compared by check-model.sh. */
extern const unsigned int qemuDomainAsyncJobDefaultMask[QEMU_ASYNC_JOB_LAST];

/* Sync jobs that wait (bounded) for an async job that forbids them, rather
 * than being refused at once.  Every other forbidden job is refused at once
 * with VIR_ERR_OPERATION_INVALID naming the async job. */
#define QEMU_JOB_WAITS_FOR_ASYNC_MASK (QEMU_JOB_MASK(QEMU_JOB_QUERY))

/* Phases of the async jobs: what the status file records, so that an
 * interrupted job can be resolved after a daemon restart. */
typedef enum {
    QEMU_MIGRATION_OUT_PHASE_NONE = 0,
    QEMU_MIGRATION_OUT_PHASE_BEGIN3,
    QEMU_MIGRATION_OUT_PHASE_STORAGE,       /* --copy-storage-*: the disks'
                                             * mirrors to the destination's
                                             * NBD server run (until
                                             * Perform ends, also in the
                                             * phases after it) */
    QEMU_MIGRATION_OUT_PHASE_PERFORM3,
    QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE,
    QEMU_MIGRATION_OUT_PHASE_POSTCOPY,      /* switched to post-copy: the
                                             * destination runs the guest,
                                             * the source never resumes */
    /* post-copy recovery (VIR_MIGRATE_POSTCOPY_RESUME): a job of its own
     * on the paused guest, ending in confirm3 */
    QEMU_MIGRATION_OUT_PHASE_BEGIN_RESUME,
    QEMU_MIGRATION_OUT_PHASE_POSTCOPY_RESUME, /* QEMU asked to resume */
    QEMU_MIGRATION_OUT_PHASE_CONFIRM3_CANCELLED,
    QEMU_MIGRATION_OUT_PHASE_CONFIRM3,

    QEMU_MIGRATION_OUT_PHASE_LAST
} qemuMigrationOutPhase;

typedef enum {
    QEMU_MIGRATION_IN_PHASE_NONE = 0,
    QEMU_MIGRATION_IN_PHASE_PREPARE,
    QEMU_MIGRATION_IN_PHASE_FINISH3,
    QEMU_MIGRATION_IN_PHASE_POSTCOPY,       /* resumed here in post-copy */
    /* post-copy recovery: a job of its own on the paused guest */
    QEMU_MIGRATION_IN_PHASE_PREPARE_RESUME,  /* QEMU listens (migrate-recover) */
    QEMU_MIGRATION_IN_PHASE_POSTCOPY_RESUME, /* the stream resumed, vCPUs run */

    QEMU_MIGRATION_IN_PHASE_LAST
} qemuMigrationInPhase;

typedef enum {
    QEMU_SAVE_PHASE_NONE = 0,
    QEMU_SAVE_PHASE_PAUSED,         /* vCPUs stopped by the save */
    QEMU_SAVE_PHASE_WRITING,        /* QEMU streams the state to the image */

    QEMU_SAVE_PHASE_LAST
} qemuSavePhase;

typedef enum {
    QEMU_DUMP_PHASE_NONE = 0,
    QEMU_DUMP_PHASE_PAUSED,
    QEMU_DUMP_PHASE_DUMPING,

    QEMU_DUMP_PHASE_LAST
} qemuDumpPhase;

typedef enum {
    QEMU_SNAPSHOT_PHASE_NONE = 0,
    QEMU_SNAPSHOT_PHASE_PAUSED,
    QEMU_SNAPSHOT_PHASE_SAVING,

    QEMU_SNAPSHOT_PHASE_LAST
} qemuSnapshotPhase;

typedef enum {
    QEMU_START_PHASE_NONE = 0,
    QEMU_START_PHASE_LAUNCHED,      /* QEMU process exists */
    QEMU_START_PHASE_CONNECTED,     /* monitor connected, configuring */
    QEMU_START_PHASE_RESUMING,      /* starting the vCPUs */

    QEMU_START_PHASE_LAST
} qemuStartPhase;

typedef enum {
    QEMU_BACKUP_PHASE_NONE = 0,
    QEMU_BACKUP_PHASE_RUNNING,

    QEMU_BACKUP_PHASE_LAST
} qemuBackupPhase;

/* Name of @phase of @asyncJob ("none" for phase 0); NULL if out of range. */
const char *qemuDomainAsyncJobPhaseToString(qemuDomainAsyncJob asyncJob, int phase);
/* -1 if @name is not a phase of @asyncJob. */
int qemuDomainAsyncJobPhaseFromString(qemuDomainAsyncJob asyncJob, const char *name);
/* Number of phases of @asyncJob (including "none"). */
int qemuDomainAsyncJobPhaseCount(qemuDomainAsyncJob asyncJob);

/* Progress of an async job, filled by the job itself (under the domain
 * lock) and read by domjobinfo / virDomainGetJobStats. */
typedef struct _qemuDomainJobProgress qemuDomainJobProgress;
struct _qemuDomainJobProgress {
    unsigned long long timeRemaining;   /* ms, for BOUNDED jobs */
    unsigned long long dataTotal;       /* bytes */
    unsigned long long dataProcessed;
    unsigned long long dataRemaining;
    unsigned long long memTotal;
    unsigned long long memProcessed;
    unsigned long long memRemaining;
    unsigned long long memConstant;     /* pages */
    unsigned long long memNormal;       /* pages */
    unsigned long long memNormalBytes;
    unsigned long long memBps;          /* bytes per second */
    unsigned long long memDirtyRate;    /* pages per second */
    unsigned long long memPageSize;
    unsigned long long memIteration;
    unsigned long long memPostcopyReqs;
    unsigned long long diskTotal;
    unsigned long long diskProcessed;
    unsigned long long diskRemaining;
    unsigned long long diskBps;
    unsigned long long downtime;        /* ms; expected, or actual when done */
    unsigned long long setupTime;       /* ms */
};

/* What domjobinfo reports: a snapshot copied out under the domain lock. */
typedef struct _qemuDomainJobInfo qemuDomainJobInfo;
struct _qemuDomainJobInfo {
    virDomainJobType type;              /* NONE / BOUNDED / UNBOUNDED /
                                         * COMPLETED / FAILED / CANCELLED */
    qemuDomainAsyncJob asyncJob;
    virDomainJobOperation operation;
    unsigned long long started;         /* ms since the epoch */
    unsigned long long elapsed;         /* ms */
    qemuDomainJobProgress progress;
    char *errmsg;                       /* completed jobs: why it failed */
};
void qemuDomainJobInfoClear(qemuDomainJobInfo *info);

/* The job state of one domain.  ALL FIELDS: protected by the domain object
 * lock.  Embedded in qemuDomainObjPrivate (priv->job). */
typedef struct _qemuDomainJobObj qemuDomainJobObj;
struct _qemuDomainJobObj {
    virCond cond;                       /* a slot was released, or a monitor
                                         * holder returned; waits use the
                                         * domain object's mutex */
    virCond asyncCond;                  /* wakes the async job: abort request,
                                         * progress, domain death */

    /* sync slot */
    qemuDomainJob active;               /* the job held (QUERY: by nquery threads) */
    unsigned long long owner;           /* thread holding it (QUERY: first holder) */
    char *ownerAPI;
    unsigned long long started;         /* ms since the epoch */
    GArray *queryOwners;                /* thread ids holding QUERY */

    /* destroy: not a slot user; see qemuDomainObjBeginJob */
    bool destroying;
    unsigned long long destroyOwner;
    unsigned long long destroyStarted;

    /* the reconnect gate (docs/THREADS.txt section 3) */
    bool reconnecting;                  /* shut: other threads' Begin*Job wait */
    unsigned long long reconnectOwner;  /* the reconnect thread (0 until it
                                         * claimed the gate) */

    unsigned int monitorHolders;        /* threads between Enter/ExitMonitor */
    GArray *monEntries;                 /* per such thread: the monitor it
                                         * referenced (private to the .c) */
    unsigned int waiters;               /* threads waiting in Begin*Job */

    /* agent slot */
    qemuDomainAgentJob agentActive;
    unsigned long long agentOwner;
    char *agentOwnerAPI;
    unsigned long long agentStarted;

    /* async slot */
    qemuDomainAsyncJob asyncJob;
    unsigned long long asyncOwner;      /* 0 after a daemon restart */
    char *asyncOwnerAPI;
    unsigned long long asyncStarted;    /* ms since the epoch */
    unsigned int mask;                  /* QEMU_JOB_MASK bits allowed beside it */
    int phase;                          /* per-async-type phase */
    virDomainJobOperation operation;
    unsigned long apiFlags;             /* flags of the API that started it */
    char *peerURI;                      /* a peer-to-peer migration-out: the
                                         * destination daemon's URI, kept in
                                         * the status file so that a restarted
                                         * source can ask it (F9) */
    char **createdImages;               /* a migration-in: the disk images its
                                         * Prepare created (storage migration,
                                         * NULL-terminated), removed when it
                                         * fails; kept in the status file */
    bool abortRequested;                /* set by qemuDomainObjAbortAsyncJob */
    virDomainJobType status;            /* BOUNDED/UNBOUNDED while running; the
                                         * job sets COMPLETED/FAILED/CANCELLED */
    qemuDomainJobProgress progress;     /* filled by the async job */
    char *errmsg;

    qemuDomainJobInfo *completed;       /* the last finished async job */
};

int qemuDomainJobObjInit(qemuDomainJobObj *job);
void qemuDomainJobObjClear(qemuDomainJobObj *job);

/* How long a Begin*Job waits: job_wait_timeout of qemu.conf (seconds;
 * 0 = default 30).  Process-wide; set by the driver at start. */
void qemuDomainJobSetWaitTimeout(unsigned int seconds);
/* Same in milliseconds (tests). */
void qemuDomainJobSetWaitTimeoutMs(unsigned long long ms);
/* max_queued of qemu.conf: waiters per domain beyond which Begin*Job fails
 * at once (0 = unlimited). */
void qemuDomainJobSetMaxQueued(unsigned int maxQueued);

/* Sync jobs.  Called with vm locked; may release it while waiting.
 *
 * QEMU_JOB_DESTROY is special: it is allowed beside any async job and does
 * not wait for the sync slot.  It waits (bounded) only until no thread is
 * inside the monitor, then marks the domain as being destroyed: no job can
 * begin and no thread can enter the monitor until EndJob.  Recipe: kill
 * QEMU first (the monitor gets EOF, so monitor holders return), then
 * BeginJob(DESTROY), stop the domain, EndJob.  A job that was stuck keeps
 * its slot, finds the domain inactive at its next EnterMonitor, and ends.
 */
int qemuDomainObjBeginJob(virDomainObj *vm, qemuDomainJob job)
    G_GNUC_WARN_UNUSED_RESULT;
void qemuDomainObjEndJob(virDomainObj *vm);

/* The async job's own sync job, for its monitor commands: only the async
 * job's owner thread; not subject to the mask. */
int qemuDomainObjBeginNestedJob(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
    G_GNUC_WARN_UNUSED_RESULT;

/* Async jobs: wait until no async job and no sync job is held. */
int qemuDomainObjBeginAsyncJob(virDomainObj *vm,
                               qemuDomainAsyncJob asyncJob,
                               virDomainJobOperation operation,
                               unsigned long apiFlags)
    G_GNUC_WARN_UNUSED_RESULT;
/* Records the job's stats as the completed job and frees the slot. */
void qemuDomainObjEndAsyncJob(virDomainObj *vm);
/* Changes the sync jobs allowed beside the running async job (owner only).
 * QEMU_JOB_DESTROY and QEMU_JOB_QUERY stay allowed whatever @allowedJobs. */
void qemuDomainObjSetAsyncJobMask(virDomainObj *vm, unsigned int allowedJobs);
/* Records a new phase of the running async job (owner only).  Phases only
 * move forward; returns -1 with an internal error otherwise. */
int qemuDomainObjSetJobPhase(virDomainObj *vm, int phase);
/* The async job's outcome for the completed-job stats
 * (VIR_DOMAIN_JOB_COMPLETED / FAILED / CANCELLED); @errmsg may be NULL. */
void qemuDomainObjSetAsyncJobResult(virDomainObj *vm,
                                    virDomainJobType status,
                                    const char *errmsg);
/* Makes the async job restartable after a daemon restart: the status file
 * recorded no owner thread (asyncOwner 0), the reconnecting thread adopts it. */
void qemuDomainObjAdoptAsyncJob(virDomainObj *vm);

/* The reconnect gate (docs/THREADS.txt section 3), all with vm locked.
 * BeginReconnect: the driver's start, for a domain found running, before
 * its reconnect thread exists: shuts the gate.  TakeReconnect: the
 * reconnect thread claims it (its own jobs then pass).  EndReconnect: the
 * reconnect thread opens it when done, whatever the outcome, or the
 * driver's start when it could not create the thread; wakes the
 * waiters. */
void qemuDomainObjBeginReconnect(virDomainObj *vm);
void qemuDomainObjTakeReconnect(virDomainObj *vm);
void qemuDomainObjEndReconnect(virDomainObj *vm);

/* Reconnect after a daemon restart: the sync, destroy and agent jobs
 * parsed from the status file belong to no thread; after looking at them
 * (priv->job.active, agentActive), reconnect frees the slots. */
void qemuDomainObjResetInterruptedJobs(virDomainObj *vm);

/* Abort: the caller holds a QEMU_JOB_ABORT job.  Sets the flag and wakes
 * the async job.  Fails when no async job runs. */
int qemuDomainObjAbortAsyncJob(virDomainObj *vm);
/* For the async job: was an abort requested?  (vm locked) */
bool qemuDomainObjAsyncJobAbortRequested(virDomainObj *vm);
/* For the async job (owner): wait with vm unlocked until woken (abort,
 * progress, domain death) or until @deadline (ms since the epoch; 0 = no
 * deadline).  Returns 0 when woken, 1 on deadline, -1 on error. */
int qemuDomainObjWaitAsyncJob(virDomainObj *vm, unsigned long long deadline);
/* Wakes the async job (event handlers: progress, domain death). */
void qemuDomainObjSignalAsyncJob(virDomainObj *vm);

/* Agent jobs. */
int qemuDomainObjBeginAgentJob(virDomainObj *vm, qemuDomainAgentJob agentJob)
    G_GNUC_WARN_UNUSED_RESULT;
void qemuDomainObjEndAgentJob(virDomainObj *vm);

/* The monitor.  EnterMonitor: the calling thread holds a sync job (or the
 * nested job); the domain is active; takes a reference on priv->mon and
 * RELEASES the domain lock.  ExitMonitor re-takes the lock, drops the
 * reference and returns -1 with an error when the domain died (or is being
 * destroyed) meanwhile. */
int qemuDomainObjEnterMonitor(virDomainObj *vm) G_GNUC_WARN_UNUSED_RESULT;
int qemuDomainObjExitMonitor(virDomainObj *vm) G_GNUC_WARN_UNUSED_RESULT;
/* Takes the nested job of @asyncJob (owner only), then enters the monitor;
 * on failure no job is held.  ExitMonitor ends the nested job. */
int qemuDomainObjEnterMonitorAsync(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
    G_GNUC_WARN_UNUSED_RESULT;

/* Job info (vm locked, no job needed: reading the job is a query of the
 * domain lock only).  @completed: the last finished async job. */
int qemuDomainJobGetInfo(virDomainObj *vm, bool completed, qemuDomainJobInfo *info);
/* virDomainGetJobInfo form. */
void qemuDomainJobInfoToInfo(const qemuDomainJobInfo *info, virDomainJobInfoPtr out);
/* virDomainGetJobStats form (typed parameters). */
int qemuDomainJobInfoToParams(const qemuDomainJobInfo *info,
                              int *type,
                              virTypedParameterPtr *params,
                              int *nparams);
/* Forget the completed-job stats (VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED unset). */
void qemuDomainJobClearCompleted(virDomainObj *vm);

/* Status file: the <job> element of the private data (vm locked). */
void qemuDomainJobFormat(virBuffer *buf, virDomainObj *vm);
int qemuDomainJobParse(xmlXPathContextPtr ctxt, virDomainObj *vm);

/* Debug builds (TANDEM_DEBUG_LOCKS): aborts when the calling thread is
 * known to hold a domain lock (it holds a job and is not inside
 * Enter/ExitMonitor).  The monitor calls it before every wait for QEMU.
 * No-op otherwise. */
void qemuDomainObjAssertUnlocked(void);
