/*
 * qemujobtest.c: the job model (src/qemu/qemu_domainjob.c) exercised with
 * real threads: exclusion, shared queries, the async job masks, nested
 * jobs, the re-check after wake-up, deadlines and their error text,
 * immediate refusals, destroy beating a stuck job, abort, job info and the
 * status-file <job> element.  Prints "ok - name" / "not ok - name" and
 * exits non-zero on any failure.
 *
 * With --promela-masks it prints the mask table as the Promela fragment
 * tests/model/jobs.pml must carry (compared by tests/model/check-model.sh).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include "qemu_domain.h"
#include "qemu_domainjob.h"
#include "virerror.h"
#include "virobject.h"
#include "virthread.h"
#include "virthreadjob.h"
#include "virtime.h"
#include "virxml.h"
#include "virbuffer.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

static virDomainXMLOption *xmlopt;
static int failures;

#define TEST_LONG_WAIT_MS (60 * 1000ULL)   /* never reached when correct */

/* ------------------------------------------------------------------ */
/* A stand-in for the QMP monitor: an object with a "reply" condition.  */
/* ------------------------------------------------------------------ */

typedef struct {
    virObjectLockable parent;
    virCond cond;
    bool eof;        /* QEMU died: every waiter returns */
    int waiting;     /* threads inside testMonitorCommand */
} testMonitor;

static virClass *testMonitorClass;

static void
testMonitorDispose(void *obj)
{
    testMonitor *mon = obj;

    virCondDestroy(&mon->cond);
}

static testMonitor *
testMonitorNew(void)
{
    testMonitor *mon;

    if (!testMonitorClass &&
        !(testMonitorClass = virClassNew(virClassForObjectLockable(), "testMonitor",
                                         sizeof(testMonitor), sizeof(virObjectLockable),
                                         testMonitorDispose)))
        return NULL;
    if (!(mon = virObjectLockableNew(testMonitorClass)))
        return NULL;
    if (virCondInit(&mon->cond) < 0) {
        virObjectUnref(mon);
        return NULL;
    }
    return mon;
}

/* A monitor command whose reply never comes: returns -1 on EOF.  Called
 * with the domain unlocked (inside Enter/ExitMonitor), as the real one. */
static int
testMonitorCommand(testMonitor *mon)
{
    qemuDomainObjAssertUnlocked();
    virObjectLock(mon);
    mon->waiting++;
    while (!mon->eof)
        ignore_value(virCondWait(&mon->cond, &mon->parent.lock));
    mon->waiting--;
    virObjectUnlock(mon);
    virReportError(VIR_ERR_OPERATION_FAILED, "%s", "End of file from QEMU monitor");
    return -1;
}

static void
testMonitorEOF(testMonitor *mon)
{
    virObjectLock(mon);
    mon->eof = true;
    virCondBroadcast(&mon->cond);
    virObjectUnlock(mon);
}

static int
testMonitorWaiting(testMonitor *mon)
{
    int n;

    virObjectLock(mon);
    n = mon->waiting;
    virObjectUnlock(mon);
    return n;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Tests track whether they hold the domain lock, so that a failed CHECK
 * can unlock before joining the workers. */
#define LOCK(vm) do { virObjectLock(vm); locked = true; } while (0)
#define UNLOCK(vm) do { locked = false; virObjectUnlock(vm); } while (0)

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            goto cleanup; \
        } \
    } while (0)

static virDomainObj *
testDomainNew(testMonitor **monp)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    testMonitor *mon;

    if (!(vm = virDomainObjNew(xmlopt)))
        return NULL;
    /* returned locked */
    vm->def = virDomainDefNew(xmlopt);
    vm->def->name = g_strdup("jobtest");
    vm->def->id = 1;                    /* "running" */
    priv = QEMU_DOMAIN_PRIVATE(vm);
    mon = testMonitorNew();
    priv->mon = (qemuMonitor *) mon;
    if (monp)
        *monp = mon;
    virObjectUnlock(vm);
    return vm;
}

static void
testDomainFree(virDomainObj *vm)
{
    if (vm)
        virObjectUnref(vm);
}

static void
testSetTimeoutMs(unsigned long long ms)
{
    qemuDomainJobSetWaitTimeoutMs(ms);
}

/* Polls @pred with the domain locked until it holds (or a safety net of
 * TEST_LONG_WAIT_MS).  Used to know that a thread reached a wait, never
 * to assert how fast anything ran. */
typedef bool (*testPred)(virDomainObj *vm, void *opaque);

static bool
testWaitFor(virDomainObj *vm, testPred pred, void *opaque)
{
    unsigned long long i;

    for (i = 0; i < TEST_LONG_WAIT_MS / 5; i++) {
        bool ok;

        virObjectLock(vm);
        ok = pred(vm, opaque);
        virObjectUnlock(vm);
        if (ok)
            return true;
        g_usleep(5000);
    }
    fprintf(stderr, "  safety net: condition never became true\n");
    return false;
}

static bool
predWaiters(virDomainObj *vm, void *opaque)
{
    return QEMU_DOMAIN_PRIVATE(vm)->job.waiters >= GPOINTER_TO_UINT(opaque);
}

static bool
predAsyncRunning(virDomainObj *vm, void *opaque)
{
    return QEMU_DOMAIN_PRIVATE(vm)->job.asyncJob == GPOINTER_TO_INT(opaque);
}

/* A worker thread: takes a job, holds it until its gate opens, ends it. */
typedef struct {
    virDomainObj *vm;
    const char *api;                 /* virThreadJobSet() name, or NULL */
    qemuDomainJob job;
    qemuDomainAsyncJob async;        /* != NONE: takes this async job */
    bool agent;                      /* takes an agent query job */
    bool hold;                       /* wait for the gate before ending */

    /* results */
    unsigned long long tid;
    int rc;
    int errcode;
    char *errmsg;

    GMutex lock;
    GCond cond;
    bool holding;
    bool released;
    bool joined;
    virThread thread;
} testWorker;

static void
testWorkerSaveError(testWorker *w)
{
    virErrorPtr err = virGetLastError();

    w->errcode = err ? err->code : 0;
    w->errmsg = g_strdup(err && err->message ? err->message : "");
}

static void
testWorkerMain(void *opaque)
{
    testWorker *w = opaque;
    int rc;

    w->tid = virThreadSelfID();
    if (w->api)
        virThreadJobSet(w->api);

    virObjectLock(w->vm);
    if (w->async != QEMU_ASYNC_JOB_NONE)
        rc = qemuDomainObjBeginAsyncJob(w->vm, w->async,
                                        VIR_DOMAIN_JOB_OPERATION_UNKNOWN, 0);
    else if (w->agent)
        rc = qemuDomainObjBeginAgentJob(w->vm, QEMU_AGENT_JOB_QUERY);
    else
        rc = qemuDomainObjBeginJob(w->vm, w->job);
    if (rc < 0)
        testWorkerSaveError(w);
    virObjectUnlock(w->vm);

    /* @rc is read by testWorkerWaitStarted under w->lock */
    g_mutex_lock(&w->lock);
    w->rc = rc;
    w->holding = w->rc == 0;
    g_cond_broadcast(&w->cond);
    while (w->rc == 0 && w->hold && !w->released)
        g_cond_wait(&w->cond, &w->lock);
    g_mutex_unlock(&w->lock);

    if (w->rc == 0) {
        virObjectLock(w->vm);
        if (w->async != QEMU_ASYNC_JOB_NONE)
            qemuDomainObjEndAsyncJob(w->vm);
        else if (w->agent)
            qemuDomainObjEndAgentJob(w->vm);
        else
            qemuDomainObjEndJob(w->vm);
        virObjectUnlock(w->vm);
    }
}

static testWorker *
testWorkerStart(virDomainObj *vm, const char *api, qemuDomainJob job,
                qemuDomainAsyncJob async, bool hold)
{
    testWorker *w = g_new0(testWorker, 1);

    w->vm = vm;
    w->api = api;
    w->job = job;
    w->async = async;
    w->hold = hold;
    w->rc = 1;
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    if (virThreadCreate(&w->thread, true, testWorkerMain, w) < 0) {
        fprintf(stderr, "  cannot create thread\n");
        abort();
    }
    return w;
}

/* Waits until the worker has its job (true) or failed (false). */
static bool
testWorkerWaitStarted(testWorker *w)
{
    bool ret;

    g_mutex_lock(&w->lock);
    while (!w->holding && w->rc == 1)
        g_cond_wait(&w->cond, &w->lock);
    while (!w->holding && w->rc == 0)
        g_cond_wait(&w->cond, &w->lock);
    ret = w->holding;
    g_mutex_unlock(&w->lock);
    return ret;
}

static void
testWorkerRelease(testWorker *w)
{
    g_mutex_lock(&w->lock);
    w->released = true;
    g_cond_broadcast(&w->cond);
    g_mutex_unlock(&w->lock);
}

static void
testWorkerJoin(testWorker *w)
{
    if (!w->joined)
        virThreadJoin(&w->thread);
    w->joined = true;
}

static void
testWorkerFinish(testWorker *w)
{
    if (!w)
        return;
    testWorkerRelease(w);
    testWorkerJoin(w);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    g_free(w->errmsg);
    g_free(w);
}

static bool
testErrorIs(int code, const char *expected)
{
    virErrorPtr err = virGetLastError();

    if (!err || err->code != code || STRNEQ_NULLABLE(err->message, expected)) {
        fprintf(stderr, "  expected error %d '%s'\n  got      %d '%s'\n",
                code, expected, err ? err->code : 0,
                err ? NULLSTR(err->message) : "(none)");
        return false;
    }
    return true;
}

static bool
testMessageMatches(const char *msg, const char *pattern)
{
    if (!msg || !g_regex_match_simple(pattern, msg, 0, 0)) {
        fprintf(stderr, "  message '%s'\n  does not match '%s'\n", NULLSTR(msg), pattern);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* A non-query job waits while another is held, and gets it afterwards. */
static int
testExclusion(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *w = NULL;
    bool locked = false;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);
    UNLOCK(vm);

    w = testWorkerStart(vm, NULL, QEMU_JOB_SUSPEND, QEMU_ASYNC_JOB_NONE, true);
    CHECK(testWaitFor(vm, predWaiters, GUINT_TO_POINTER(1)));
    g_mutex_lock(&w->lock);
    CHECK(!w->holding);                 /* waiting, not holding */
    g_mutex_unlock(&w->lock);

    LOCK(vm);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.active == QEMU_JOB_MODIFY);
    qemuDomainObjEndJob(vm);
    UNLOCK(vm);

    CHECK(testWorkerWaitStarted(w));
    LOCK(vm);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.active == QEMU_JOB_SUSPEND);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.owner == w->tid);
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(w);
    testDomainFree(vm);
    return ret;
}

/* Many threads, many non-query jobs: never two inside at once. */
typedef struct {
    virDomainObj *vm;
    int inside;
    int violations;
    int iterations;
} testStressData;

static void
testStressThread(void *opaque)
{
    testStressData *d = opaque;
    static const qemuDomainJob jobs[] = {
        QEMU_JOB_MODIFY, QEMU_JOB_SUSPEND, QEMU_JOB_ABORT,
        QEMU_JOB_MIGRATION_OP, QEMU_JOB_MODIFY_MIGRATION_SAFE,
    };
    int i;

    for (i = 0; i < d->iterations; i++) {
        virObjectLock(d->vm);
        if (qemuDomainObjBeginJob(d->vm, jobs[i % G_N_ELEMENTS(jobs)]) < 0) {
            __atomic_add_fetch(&d->violations, 1, __ATOMIC_SEQ_CST);
            virObjectUnlock(d->vm);
            continue;
        }
        virObjectUnlock(d->vm);

        /* the critical section runs with the domain unlocked */
        if (__atomic_add_fetch(&d->inside, 1, __ATOMIC_SEQ_CST) != 1)
            __atomic_add_fetch(&d->violations, 1, __ATOMIC_SEQ_CST);
        g_usleep(50);
        __atomic_sub_fetch(&d->inside, 1, __ATOMIC_SEQ_CST);

        virObjectLock(d->vm);
        qemuDomainObjEndJob(d->vm);
        virObjectUnlock(d->vm);
    }
}

static int
testExclusionStress(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    virThread threads[6];
    testStressData d = { vm, 0, 0, 200 };
    size_t i;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    for (i = 0; i < G_N_ELEMENTS(threads); i++) {
        if (virThreadCreate(&threads[i], true, testStressThread, &d) < 0)
            abort();
    }
    for (i = 0; i < G_N_ELEMENTS(threads); i++)
        virThreadJoin(&threads[i]);
    testDomainFree(vm);
    if (d.violations) {
        fprintf(stderr, "  %d violations\n", d.violations);
        return -1;
    }
    return 0;
}

/* Two threads hold QUERY at once: the second gets it although the first
 * lets go only after the second is done (its 1 s deadline would expire
 * otherwise).  A non-query job does not share. */
static int
testQueriesShare(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *w = NULL;
    bool locked = false;
    int ret = -1;

    testSetTimeoutMs(1000);
    w = testWorkerStart(vm, NULL, QEMU_JOB_QUERY, QEMU_ASYNC_JOB_NONE, true);
    CHECK(testWorkerWaitStarted(w));

    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) == 0);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.active == QEMU_JOB_QUERY);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.queryOwners->len == 2);
    qemuDomainObjEndJob(vm);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.active == QEMU_JOB_QUERY);   /* still the worker's */
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.owner == w->tid);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0);
    CHECK(virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT);
    UNLOCK(vm);

    testWorkerFinish(g_steal_pointer(&w));
    LOCK(vm);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.active == QEMU_JOB_NONE);
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(w);
    testDomainFree(vm);
    return ret;
}

/* The promises the table must keep, written out independently of it. */
static int
testMaskPromises(void)
{
    const unsigned int *m = qemuDomainAsyncJobDefaultMask;
    int a;

    for (a = QEMU_ASYNC_JOB_NONE + 1; a < QEMU_ASYNC_JOB_LAST; a++) {
        if (!(m[a] & QEMU_JOB_MASK(QEMU_JOB_QUERY)) ||
            !(m[a] & QEMU_JOB_MASK(QEMU_JOB_DESTROY)) ||
            (m[a] & QEMU_JOB_MASK(QEMU_JOB_ASYNC_NESTED))) {
            fprintf(stderr, "  async job %s must allow query and destroy (and not list nested)\n",
                    qemuDomainAsyncJobTypeToString(a));
            return -1;
        }
    }
    if ((m[QEMU_ASYNC_JOB_START] & QEMU_JOB_MASK(QEMU_JOB_ABORT)) ||
        (m[QEMU_ASYNC_JOB_MIGRATION_IN] & QEMU_JOB_MASK(QEMU_JOB_ABORT)))
        return -1;
    if (!(m[QEMU_ASYNC_JOB_MIGRATION_OUT] & QEMU_JOB_MASK(QEMU_JOB_ABORT)) ||
        !(m[QEMU_ASYNC_JOB_MIGRATION_OUT] & QEMU_JOB_MASK(QEMU_JOB_SUSPEND)) ||
        !(m[QEMU_ASYNC_JOB_MIGRATION_OUT] & QEMU_JOB_MASK(QEMU_JOB_MIGRATION_OP)) ||
        !(m[QEMU_ASYNC_JOB_MIGRATION_OUT] & QEMU_JOB_MASK(QEMU_JOB_MODIFY_MIGRATION_SAFE)))
        return -1;
    if ((m[QEMU_ASYNC_JOB_MIGRATION_IN] & QEMU_JOB_MASK(QEMU_JOB_MODIFY)) ||
        (m[QEMU_ASYNC_JOB_MIGRATION_OUT] & QEMU_JOB_MASK(QEMU_JOB_MODIFY)))
        return -1;
    return 0;
}

/* For EACH async job type and EACH sync job type, driven by the table:
 * allowed jobs run beside it, forbidden ones are refused at once naming
 * the async job (jobs that wait for the async job would time out). */
static int
testMaskTable(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *a = NULL;
    testWorker *w = NULL;
    int ret = -1;
    int async;
    int job;

    testSetTimeoutMs(1000);
    for (async = QEMU_ASYNC_JOB_NONE + 1; async < QEMU_ASYNC_JOB_LAST; async++) {
        a = testWorkerStart(vm, "virDomainTest", QEMU_JOB_NONE, async, true);
        CHECK(testWorkerWaitStarted(a));

        for (job = QEMU_JOB_QUERY; job < QEMU_JOB_LAST; job++) {
            bool allowed = qemuDomainAsyncJobDefaultMask[async] & QEMU_JOB_MASK(job);

            if (job == QEMU_JOB_ASYNC_NESTED)
                continue;   /* only via BeginNestedJob; see testNested */
            w = testWorkerStart(vm, NULL, job, QEMU_ASYNC_JOB_NONE, false);
            testWorkerJoin(w);
            if (allowed) {
                if (w->rc != 0) {
                    fprintf(stderr, "  %s beside %s: expected success, got '%s'\n",
                            qemuDomainJobTypeToString(job),
                            qemuDomainAsyncJobTypeToString(async), NULLSTR(w->errmsg));
                    goto cleanup;
                }
            } else if (QEMU_JOB_WAITS_FOR_ASYNC_MASK & QEMU_JOB_MASK(job)) {
                CHECK(w->rc < 0 && w->errcode == VIR_ERR_OPERATION_TIMEOUT);
            } else {
                g_autofree char *pat = NULL;

                pat = g_strdup_printf("^Requested operation is not valid: cannot .*: async job '%s' is running and does not allow it$",
                                      qemuDomainAsyncJobTypeToString(async));
                if (w->rc >= 0 || w->errcode != VIR_ERR_OPERATION_INVALID) {
                    fprintf(stderr, "  %s beside %s: expected refusal, got rc=%d '%s'\n",
                            qemuDomainJobTypeToString(job),
                            qemuDomainAsyncJobTypeToString(async), w->rc, NULLSTR(w->errmsg));
                    goto cleanup;
                }
                CHECK(testMessageMatches(w->errmsg, pat));
            }
            testWorkerFinish(g_steal_pointer(&w));
        }
        testWorkerFinish(g_steal_pointer(&a));
    }
    ret = 0;

 cleanup:
    testWorkerFinish(w);
    testWorkerFinish(a);
    testDomainFree(vm);
    return ret;
}

/* The exact text of immediate refusals; queries beside an incoming
 * migration. */
static int
testRefusalText(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *a = NULL;
    bool locked = false;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);   /* a wait would hang the test */
    a = testWorkerStart(vm, NULL, QEMU_JOB_NONE, QEMU_ASYNC_JOB_MIGRATION_IN, true);
    CHECK(testWorkerWaitStarted(a));

    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_SUSPEND) < 0);
    CHECK(testErrorIs(VIR_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: cannot suspend domain: async job 'migration-in' is running and does not allow it"));
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_ABORT) < 0);
    CHECK(testErrorIs(VIR_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: cannot abort job: async job 'migration-in' is running and does not allow it"));
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0);
    CHECK(testErrorIs(VIR_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: cannot modify domain: async job 'migration-in' is running and does not allow it"));
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) == 0);
    qemuDomainObjEndJob(vm);
    UNLOCK(vm);
    testWorkerFinish(g_steal_pointer(&a));

    a = testWorkerStart(vm, NULL, QEMU_JOB_NONE, QEMU_ASYNC_JOB_START, true);
    CHECK(testWorkerWaitStarted(a));
    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_ABORT) < 0);
    CHECK(testErrorIs(VIR_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: cannot abort job: async job 'start' is running and does not allow it"));
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(a);
    testDomainFree(vm);
    return ret;
}

/* An async job's monitor commands: the nested job is not subject to the
 * mask, excludes other sync jobs (a query waits for it), and ends with
 * ExitMonitor. */
static int
testNested(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    testWorker *q = NULL;
    bool locked = false;
    bool inMonitor = false;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    LOCK(vm);
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                     VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0) == 0);
    qemuDomainObjSetAsyncJobMask(vm, 0);
    CHECK(job->mask == (QEMU_JOB_MASK(QEMU_JOB_QUERY) | QEMU_JOB_MASK(QEMU_JOB_DESTROY)));

    CHECK(qemuDomainObjEnterMonitorAsync(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) == 0);
    locked = false;
    inMonitor = true;
    qemuDomainObjAssertUnlocked();

    q = testWorkerStart(vm, NULL, QEMU_JOB_QUERY, QEMU_ASYNC_JOB_NONE, false);
    CHECK(testWaitFor(vm, predWaiters, GUINT_TO_POINTER(1)));
    LOCK(vm);
    CHECK(job->active == QEMU_JOB_ASYNC_NESTED);
    CHECK(job->monitorHolders == 1);
    UNLOCK(vm);

    inMonitor = false;
    CHECK(qemuDomainObjExitMonitor(vm) == 0);
    locked = true;
    CHECK(job->active == QEMU_JOB_NONE);     /* nested job ended */
    CHECK(job->asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT);
    UNLOCK(vm);

    testWorkerJoin(q);
    CHECK(q->rc == 0);

    /* plain BeginNestedJob / EndJob as well */
    LOCK(vm);
    CHECK(qemuDomainObjBeginNestedJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT) == 0);
    CHECK(job->active == QEMU_JOB_ASYNC_NESTED && job->owner == virThreadSelfID());
    qemuDomainObjEndJob(vm);
    qemuDomainObjEndAsyncJob(vm);
    CHECK(job->asyncJob == QEMU_ASYNC_JOB_NONE);
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (inMonitor)
        ignore_value(qemuDomainObjExitMonitor(vm));
    else if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(q);
    testDomainFree(vm);
    return ret;
}

/* The re-check after wake-up: while a job waits for the sync slot, the
 * holder ends its job and, before the waiter runs, an async job begins.
 * The waiter must re-check the mask: SUSPEND is refused beside 'start';
 * ABORT proceeds beside 'migration-out'. */
static int
testRecheckRace(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    testWorker *w = NULL;
    bool locked = false;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);
    UNLOCK(vm);
    w = testWorkerStart(vm, NULL, QEMU_JOB_SUSPEND, QEMU_ASYNC_JOB_NONE, false);
    CHECK(testWaitFor(vm, predWaiters, GUINT_TO_POINTER(1)));
    LOCK(vm);
    qemuDomainObjEndJob(vm);                 /* wakes the waiter ... */
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_START,
                                     VIR_DOMAIN_JOB_OPERATION_START, 0) == 0);
    UNLOCK(vm);                              /* ... which runs only now */
    testWorkerJoin(w);
    CHECK(w->rc < 0);
    CHECK(w->errcode == VIR_ERR_OPERATION_INVALID);
    CHECK(testMessageMatches(w->errmsg, "cannot suspend domain: async job 'start' is running"));
    LOCK(vm);
    CHECK(job->active == QEMU_JOB_NONE);
    qemuDomainObjEndAsyncJob(vm);
    UNLOCK(vm);
    testWorkerFinish(g_steal_pointer(&w));

    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);
    UNLOCK(vm);
    w = testWorkerStart(vm, NULL, QEMU_JOB_ABORT, QEMU_ASYNC_JOB_NONE, true);
    CHECK(testWaitFor(vm, predWaiters, GUINT_TO_POINTER(1)));
    LOCK(vm);
    qemuDomainObjEndJob(vm);
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                     VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0) == 0);
    UNLOCK(vm);
    CHECK(testWorkerWaitStarted(w));
    LOCK(vm);
    CHECK(job->active == QEMU_JOB_ABORT && job->owner == w->tid);
    CHECK(job->asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT);
    UNLOCK(vm);
    testWorkerFinish(g_steal_pointer(&w));
    LOCK(vm);
    qemuDomainObjEndAsyncJob(vm);
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(w);
    testDomainFree(vm);
    return ret;
}

/* Deadline expiry: the error names the holder (job, API, thread, time). */
static int
testDeadline(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *h = NULL;
    bool locked = false;
    int ret = -1;
    g_autofree char *pat = NULL;

    testSetTimeoutMs(1000);
    h = testWorkerStart(vm, "remoteDispatchDomainSetMemoryFlags", QEMU_JOB_MODIFY,
                        QEMU_ASYNC_JOB_NONE, true);
    CHECK(testWorkerWaitStarted(h));
    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0);
    CHECK(virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT);
    pat = g_strdup_printf("^Timed out during operation: cannot acquire state change lock "
                          "\\(held by job=modify api=virDomainSetMemoryFlags thread=%llu "
                          "for [0-9]+\\.[0-9] s\\)$", h->tid);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    /* an async job waits for the sync job too */
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SAVE,
                                     VIR_DOMAIN_JOB_OPERATION_SAVE, 0) < 0);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    UNLOCK(vm);
    testWorkerFinish(g_steal_pointer(&h));

    h = testWorkerStart(vm, "virDomainSaveFlags", QEMU_JOB_NONE,
                        QEMU_ASYNC_JOB_SAVE, true);
    CHECK(testWorkerWaitStarted(h));
    LOCK(vm);
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SNAPSHOT,
                                     VIR_DOMAIN_JOB_OPERATION_SNAPSHOT, 0) < 0);
    CHECK(virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT);
    g_free(pat);
    pat = g_strdup_printf("^Timed out during operation: cannot acquire state change lock "
                          "\\(held by async=save api=virDomainSaveFlags thread=%llu "
                          "for [0-9]+\\.[0-9] s\\)$", h->tid);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(h);
    testDomainFree(vm);
    return ret;
}

/* The stuck holder: takes MODIFY, enters the monitor and waits for a reply
 * that never comes; after EOF it gets stuck elsewhere, still holding its
 * job, until the test lets it go. */
typedef struct {
    virDomainObj *vm;
    testMonitor *mon;
    qemuDomainJob job;
    unsigned long long tid;
    int beginRc;
    int cmdRc;
    int exitRc;
    int exitErr;
    int enterAgainRc;
    int enterAgainErr;
    GMutex lock;
    GCond cond;
    bool outOfMonitor;
    bool release;
} testStuck;

static void
testStuckThread(void *opaque)
{
    testStuck *s = opaque;

    s->tid = virThreadSelfID();
    virThreadJobSet("remoteDispatchDomainSetMemoryFlags");
    virObjectLock(s->vm);
    if ((s->beginRc = qemuDomainObjBeginJob(s->vm, s->job)) < 0) {
        virObjectUnlock(s->vm);
        goto done;
    }
    if (qemuDomainObjEnterMonitor(s->vm) < 0) {
        s->beginRc = -1;
        qemuDomainObjEndJob(s->vm);
        virObjectUnlock(s->vm);
        goto done;
    }
    s->cmdRc = testMonitorCommand(s->mon);
    s->exitRc = qemuDomainObjExitMonitor(s->vm);
    s->exitErr = s->exitRc < 0 ? virGetLastErrorCode() : 0;
    virObjectUnlock(s->vm);

 done:
    g_mutex_lock(&s->lock);
    s->outOfMonitor = true;
    g_cond_broadcast(&s->cond);
    while (!s->release)
        g_cond_wait(&s->cond, &s->lock);
    g_mutex_unlock(&s->lock);

    if (s->beginRc < 0 || s->exitRc < 0) {
        if (s->beginRc == 0) {
            virObjectLock(s->vm);
            qemuDomainObjEndJob(s->vm);
            virObjectUnlock(s->vm);
        }
        return;
    }
    virObjectLock(s->vm);
    s->enterAgainRc = qemuDomainObjEnterMonitor(s->vm);
    if (s->enterAgainRc == 0) {
        ignore_value(qemuDomainObjExitMonitor(s->vm));
    } else {
        s->enterAgainErr = virGetLastErrorCode();
    }
    qemuDomainObjEndJob(s->vm);
    virObjectUnlock(s->vm);
}

static void
testStuckRelease(testStuck *s)
{
    g_mutex_lock(&s->lock);
    s->release = true;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

static bool
predNotActive(virDomainObj *vm, void *opaque G_GNUC_UNUSED)
{
    return !virDomainObjIsActive(vm);
}

/* An async job waiting for progress; ends when the domain goes away. */
static void
testAsyncWaiterThread(void *opaque)
{
    virDomainObj *vm = opaque;
    unsigned long long deadline = 0;

    virObjectLock(vm);
    if (qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                   VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0) < 0) {
        virObjectUnlock(vm);
        return;
    }
    ignore_value(virTimeMillisNow(&deadline));
    deadline += TEST_LONG_WAIT_MS;
    while (virDomainObjIsActive(vm)) {
        if (qemuDomainObjWaitAsyncJob(vm, deadline) != 0)
            break;
    }
    qemuDomainObjEndAsyncJob(vm);
    virObjectUnlock(vm);
}

/* Destroy beats a stuck job: kill QEMU (the monitor gets EOF), then the
 * destroy job waits only for the monitor holder to come back, not for the
 * stuck job, which still holds its slot afterwards. */
static int
testDestroyBeatsStuckJob(void)
{
    testMonitor *mon = NULL;
    virDomainObj *vm = testDomainNew(&mon);
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    testStuck s = { .vm = vm, .mon = mon, .job = QEMU_JOB_MODIFY };
    virThread thr;
    virThread asyncThr;
    bool started = false;
    bool asyncStarted = false;
    bool locked = false;
    unsigned long long i;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    g_mutex_init(&s.lock);
    g_cond_init(&s.cond);
    /* an async job beside it, blocked waiting for progress */
    if (virThreadCreate(&asyncThr, true, testAsyncWaiterThread, vm) < 0)
        goto cleanup;
    asyncStarted = true;
    CHECK(testWaitFor(vm, predAsyncRunning, GINT_TO_POINTER(QEMU_ASYNC_JOB_MIGRATION_OUT)));

    /* migration-out allows modify-migration-safe: use it for the stuck job */
    s.job = QEMU_JOB_MODIFY_MIGRATION_SAFE;
    if (virThreadCreate(&thr, true, testStuckThread, &s) < 0)
        goto cleanup;
    started = true;
    for (i = 0; i < TEST_LONG_WAIT_MS / 5 && testMonitorWaiting(mon) < 1; i++)
        g_usleep(5000);
    CHECK(testMonitorWaiting(mon) == 1);

    testMonitorEOF(mon);                     /* 1. kill QEMU */
    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_DESTROY) == 0);   /* 2. destroy job */
    /* the stuck job still holds its slot: destroy did not wait for it */
    CHECK(job->active == QEMU_JOB_MODIFY_MIGRATION_SAFE);
    CHECK(job->destroying);
    CHECK(job->monitorHolders == 0);
    vm->def->id = -1;                        /* 3. stop the domain */
    qemuDomainObjSignalAsyncJob(vm);
    qemuDomainObjEndJob(vm);
    CHECK(!job->destroying);
    UNLOCK(vm);

    testStuckRelease(&s);
    virThreadJoin(&thr);
    started = false;
    virThreadJoin(&asyncThr);
    asyncStarted = false;

    CHECK(s.beginRc == 0);
    CHECK(s.cmdRc < 0);                      /* the monitor command got EOF */
    CHECK(s.exitRc == 0);                    /* it left before destroy began */
    CHECK(s.enterAgainRc < 0);               /* the domain is gone */
    CHECK(s.enterAgainErr == VIR_ERR_OPERATION_INVALID);
    LOCK(vm);
    CHECK(job->active == QEMU_JOB_NONE);
    CHECK(job->asyncJob == QEMU_ASYNC_JOB_NONE);
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testMonitorEOF(mon);
    testStuckRelease(&s);
    if (started)
        virThreadJoin(&thr);
    if (asyncStarted) {
        virObjectLock(vm);
        vm->def->id = -1;
        qemuDomainObjSignalAsyncJob(vm);
        virObjectUnlock(vm);
        virThreadJoin(&asyncThr);
    }
    g_mutex_clear(&s.lock);
    g_cond_clear(&s.cond);
    testDomainFree(vm);
    return ret;
}

/* ExitMonitor reports that the domain died while the thread waited for
 * QEMU (the EOF handler marked it stopped without any job). */
static int
testExitMonitorDeath(void)
{
    testMonitor *mon = NULL;
    virDomainObj *vm = testDomainNew(&mon);
    testStuck s = { .vm = vm, .mon = mon, .job = QEMU_JOB_QUERY };
    virThread thr;
    bool started = false;
    unsigned long long i;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    g_mutex_init(&s.lock);
    g_cond_init(&s.cond);
    s.release = true;
    if (virThreadCreate(&thr, true, testStuckThread, &s) < 0)
        goto cleanup;
    started = true;
    for (i = 0; i < TEST_LONG_WAIT_MS / 5 && testMonitorWaiting(mon) < 1; i++)
        g_usleep(5000);
    CHECK(testMonitorWaiting(mon) == 1);

    virObjectLock(vm);
    vm->def->id = -1;                        /* the EOF handler: domain stopped */
    virObjectUnlock(vm);
    testMonitorEOF(mon);
    virThreadJoin(&thr);
    started = false;
    CHECK(s.exitRc < 0);
    CHECK(s.exitErr == VIR_ERR_OPERATION_FAILED);
    CHECK(testWaitFor(vm, predNotActive, NULL));
    ret = 0;

 cleanup:
    testMonitorEOF(mon);
    if (started)
        virThreadJoin(&thr);
    g_mutex_clear(&s.lock);
    g_cond_clear(&s.cond);
    testDomainFree(vm);
    return ret;
}

/* Abort: the flag wakes the async job waiting for progress. */
typedef struct {
    virDomainObj *vm;
    bool sawAbort;
    int rc;
} testAbortData;

static void
testAbortAsyncThread(void *opaque)
{
    testAbortData *d = opaque;
    virDomainObj *vm = d->vm;
    unsigned long long deadline = 0;

    virThreadJobSet("virDomainMigratePerform3Params");
    virObjectLock(vm);
    if ((d->rc = qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                            VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0)) < 0) {
        virObjectUnlock(vm);
        return;
    }
    ignore_value(qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_PERFORM3));
    ignore_value(virTimeMillisNow(&deadline));
    deadline += TEST_LONG_WAIT_MS;
    while (!qemuDomainObjAsyncJobAbortRequested(vm)) {
        if (qemuDomainObjWaitAsyncJob(vm, deadline) != 0)
            break;   /* safety net */
    }
    d->sawAbort = qemuDomainObjAsyncJobAbortRequested(vm);
    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_CANCELLED, "canceled by client");
    qemuDomainObjEndAsyncJob(vm);
    virObjectUnlock(vm);
}

static int
testAbort(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testAbortData d = { vm, false, -1 };
    qemuDomainJobInfo info = { 0 };
    virThread thr;
    bool started = false;
    bool locked = false;
    int ret = -1;

    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    if (virThreadCreate(&thr, true, testAbortAsyncThread, &d) < 0)
        goto cleanup;
    started = true;
    CHECK(testWaitFor(vm, predAsyncRunning, GINT_TO_POINTER(QEMU_ASYNC_JOB_MIGRATION_OUT)));

    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_ABORT) == 0);
    CHECK(qemuDomainObjAbortAsyncJob(vm) == 0);
    qemuDomainObjEndJob(vm);
    UNLOCK(vm);
    virThreadJoin(&thr);
    started = false;
    CHECK(d.rc == 0);
    CHECK(d.sawAbort);

    LOCK(vm);
    CHECK(qemuDomainJobGetInfo(vm, true, &info) == 0);
    CHECK(info.type == VIR_DOMAIN_JOB_CANCELLED);
    CHECK(info.operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
    CHECK(STREQ_NULLABLE(info.errmsg, "canceled by client"));
    CHECK(qemuDomainObjAbortAsyncJob(vm) < 0);
    CHECK(testErrorIs(VIR_ERR_OPERATION_INVALID,
                      "Requested operation is not valid: no job is active on the domain"));
    UNLOCK(vm);
    ret = 0;

 cleanup:
    qemuDomainJobInfoClear(&info);
    if (locked)
        virObjectUnlock(vm);
    if (started)
        virThreadJoin(&thr);
    testDomainFree(vm);
    return ret;
}

/* domjobinfo: progress of the running async job, completed-job stats. */
static int
testJobInfo(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;
    qemuDomainJobInfo info = { 0 };
    virDomainJobInfo pub;
    virTypedParameterPtr params = NULL;
    int nparams = 0;
    int type;
    int op = -1;
    int success = -1;
    unsigned long long ull = 0;
    bool locked = false;
    int ret = -1;

    LOCK(vm);
    CHECK(qemuDomainJobGetInfo(vm, false, &info) == 0);
    CHECK(info.type == VIR_DOMAIN_JOB_NONE);
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SAVE,
                                     VIR_DOMAIN_JOB_OPERATION_SAVE, 0) == 0);
    job->progress.dataTotal = 100;
    job->progress.dataProcessed = 40;
    job->progress.dataRemaining = 60;
    job->progress.memTotal = 100;
    job->progress.memProcessed = 40;
    job->progress.memRemaining = 60;
    job->progress.memBps = 5;

    CHECK(qemuDomainJobGetInfo(vm, false, &info) == 0);
    CHECK(info.type == VIR_DOMAIN_JOB_UNBOUNDED);
    CHECK(info.operation == VIR_DOMAIN_JOB_OPERATION_SAVE);
    CHECK(info.progress.dataTotal == 100);
    qemuDomainJobInfoToInfo(&info, &pub);
    CHECK(pub.type == VIR_DOMAIN_JOB_UNBOUNDED && pub.dataProcessed == 40 &&
          pub.memRemaining == 60);
    CHECK(qemuDomainJobInfoToParams(&info, &type, &params, &nparams) == 0);
    CHECK(type == VIR_DOMAIN_JOB_UNBOUNDED);
    CHECK(virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &op) == 1);
    CHECK(op == VIR_DOMAIN_JOB_OPERATION_SAVE);
    CHECK(virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_TOTAL, &ull) == 1 &&
          ull == 100);
    CHECK(virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_MEMORY_BPS, &ull) == 1 &&
          ull == 5);
    CHECK(virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_TIME_ELAPSED, &ull) == 1);
    virTypedParamsFree(params, nparams);
    params = NULL;
    qemuDomainJobInfoClear(&info);

    qemuDomainObjSetAsyncJobResult(vm, VIR_DOMAIN_JOB_COMPLETED, NULL);
    qemuDomainObjEndAsyncJob(vm);
    CHECK(qemuDomainJobGetInfo(vm, false, &info) == 0);
    CHECK(info.type == VIR_DOMAIN_JOB_NONE);
    CHECK(qemuDomainJobGetInfo(vm, true, &info) == 0);
    CHECK(info.type == VIR_DOMAIN_JOB_COMPLETED);
    CHECK(info.progress.dataTotal == 100);
    CHECK(qemuDomainJobInfoToParams(&info, &type, &params, &nparams) == 0);
    CHECK(type == VIR_DOMAIN_JOB_COMPLETED);
    CHECK(virTypedParamsGetBoolean(params, nparams, VIR_DOMAIN_JOB_SUCCESS, &success) == 1);
    CHECK(success == 1);
    qemuDomainJobInfoClear(&info);

    qemuDomainJobClearCompleted(vm);
    CHECK(qemuDomainJobGetInfo(vm, true, &info) == 0);
    CHECK(info.type == VIR_DOMAIN_JOB_NONE);
    UNLOCK(vm);
    ret = 0;

 cleanup:
    virTypedParamsFree(params, nparams);
    qemuDomainJobInfoClear(&info);
    if (locked)
        virObjectUnlock(vm);
    testDomainFree(vm);
    return ret;
}

/* The status file's <job>: format -> parse -> format is the identity. */
static char *
testFormatJob(virDomainObj *vm)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    qemuDomainJobFormat(&buf, vm);
    return virBufferContentAndReset(&buf);
}

static int
testParseJob(virDomainObj *vm, const char *jobxml)
{
    g_autofree char *xml = g_strdup_printf("<domstatus>%s</domstatus>", NULLSTR_EMPTY(jobxml));
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;

    if (!(doc = virXMLParseStringCtxt(xml, "(job test)", &ctxt)))
        return -1;
    return qemuDomainJobParse(ctxt, vm);
}

static int
testStatusXML(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    virDomainObj *vm2 = testDomainNew(NULL);
    qemuDomainJobObj *job2 = &QEMU_DOMAIN_PRIVATE(vm2)->job;
    g_autofree char *xml = NULL;
    g_autofree char *xml2 = NULL;
    g_autofree char *expect = NULL;
    bool locked = false;
    bool locked2 = false;
    int ret = -1;

    virThreadJobSet("remoteDispatchDomainMigratePerform3Params");
    LOCK(vm);
    xml = testFormatJob(vm);
    CHECK(STREQ_NULLABLE(xml, "") || !xml);
    g_clear_pointer(&xml, g_free);

    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_MIGRATION_OUT,
                                     VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0x5) == 0);
    CHECK(qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_BEGIN3) == 0);
    /* a storage migration copies the disks between Begin and Perform */
    CHECK(qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_STORAGE) == 0);
    CHECK(qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_PERFORM3) == 0);
    CHECK(qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_STORAGE) < 0);  /* backwards */
    CHECK(qemuDomainObjSetJobPhase(vm, QEMU_MIGRATION_OUT_PHASE_BEGIN3) < 0);   /* backwards */
    xml = testFormatJob(vm);
    expect = g_strdup_printf("<job type='none' async='migration-out' phase='perform3' "
                             "asyncOwner='%llu' asyncOwnerAPI='virDomainMigratePerform3Params' "
                             "asyncStarted='%llu' operation='migration-out' flags='0x5'/>\n",
                             virThreadSelfID(), QEMU_DOMAIN_PRIVATE(vm)->job.asyncStarted);
    if (STRNEQ_NULLABLE(xml, expect)) {
        fprintf(stderr, "  formatted '%s'\n  expected  '%s'\n", NULLSTR(xml), expect);
        goto cleanup;
    }

    virObjectLock(vm2);
    locked2 = true;
    CHECK(testParseJob(vm2, xml) == 0);
    CHECK(job2->asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT);
    CHECK(job2->phase == QEMU_MIGRATION_OUT_PHASE_PERFORM3);
    CHECK(job2->operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
    CHECK(job2->apiFlags == 0x5);
    CHECK(job2->mask == qemuDomainAsyncJobDefaultMask[QEMU_ASYNC_JOB_MIGRATION_OUT]);
    xml2 = testFormatJob(vm2);
    if (STRNEQ_NULLABLE(xml, xml2)) {
        fprintf(stderr, "  round trip '%s'\n  gave       '%s'\n", xml, NULLSTR(xml2));
        goto cleanup;
    }
    g_clear_pointer(&xml2, g_free);

    /* a peer-to-peer source keeps the destination's URI (escaped), and
     * it goes with the job */
    QEMU_DOMAIN_PRIVATE(vm)->job.peerURI = g_strdup("qemu+unix:///system?socket=/b&c'd");
    g_clear_pointer(&xml, g_free);
    xml = testFormatJob(vm);
    CHECK(xml && strstr(xml, " flags='0x5' peerURI='qemu+unix:///system?socket=/b&amp;c&apos;d'/>\n"));
    CHECK(testParseJob(vm2, xml) == 0);
    CHECK(STREQ_NULLABLE(job2->peerURI, "qemu+unix:///system?socket=/b&c'd"));
    qemuDomainObjEndAsyncJob(vm);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.peerURI == NULL);

    /* a sync job and an agent job, interrupted */
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);
    g_clear_pointer(&xml, g_free);
    xml = testFormatJob(vm);
    CHECK(STREQ_NULLABLE(xml, "<job type='modify' async='none'/>\n"));
    qemuDomainObjEndJob(vm);
    CHECK(testParseJob(vm2, "<job type='query' agent='modify' async='none'/>") == 0);
    CHECK(job2->active == QEMU_JOB_QUERY && job2->agentActive == QEMU_AGENT_JOB_MODIFY);
    CHECK(job2->asyncJob == QEMU_ASYNC_JOB_NONE);
    xml2 = testFormatJob(vm2);
    CHECK(STREQ_NULLABLE(xml2, "<job type='query' agent='modify' async='none'/>\n"));
    qemuDomainObjResetInterruptedJobs(vm2);
    CHECK(job2->active == QEMU_JOB_NONE && job2->agentActive == QEMU_AGENT_JOB_NONE);

    /* the storage phase of an outgoing migration, as the status keeps it */
    CHECK(testParseJob(vm2, "<job type='none' async='migration-out' phase='storage' "
                            "flags='0x45'/>") == 0);
    CHECK(job2->phase == QEMU_MIGRATION_OUT_PHASE_STORAGE && job2->apiFlags == 0x45);
    CHECK(STREQ_NULLABLE(qemuDomainAsyncJobPhaseToString(QEMU_ASYNC_JOB_MIGRATION_OUT,
                                                         QEMU_MIGRATION_OUT_PHASE_STORAGE),
                         "storage"));

    /* the images a migration-in's Prepare created go with the job, in the
     * status file, escaped; an image without a path is refused */
    CHECK(testParseJob(vm2, "<job type='none' async='migration-in' phase='prepare' "
                            "flags='0x40'>\n  <createdImage path='/i/a&amp;b.qcow2'/>\n"
                            "  <createdImage path='/i/c.img'/>\n</job>") == 0);
    CHECK(job2->createdImages && STREQ(job2->createdImages[0], "/i/a&b.qcow2") &&
          STREQ_NULLABLE(job2->createdImages[1], "/i/c.img") && !job2->createdImages[2]);
    g_clear_pointer(&xml2, g_free);
    xml2 = testFormatJob(vm2);
    CHECK(xml2 && strstr(xml2, " flags='0x40'>\n  <createdImage path='/i/a&amp;b.qcow2'/>\n"
                               "  <createdImage path='/i/c.img'/>\n</job>\n"));
    CHECK(testParseJob(vm2, "<job type='none' async='migration-in' phase='prepare'>"
                            "<createdImage/></job>") < 0);
    CHECK(testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: a created image of the job has no path"));

    /* errors */
    CHECK(testParseJob(vm2, "<job type='none' async='save' phase='perform3'/>") < 0);
    CHECK(testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: unknown phase 'perform3' of async job 'save'"));
    CHECK(testParseJob(vm2, "<job type='bogus' async='none'/>") < 0);
    CHECK(testParseJob(vm2, NULL) == 0);    /* no <job>: nothing held */
    ret = 0;

 cleanup:
    virThreadJobClear(0);
    if (locked2)
        virObjectUnlock(vm2);
    if (locked)
        virObjectUnlock(vm);
    testDomainFree(vm);
    testDomainFree(vm2);
    return ret;
}

/* Agent jobs: beside a sync job of another thread; exclusive among
 * themselves; the timeout names the agent holder. */
/* The reconnect gate: while the driver's start has a domain's reconnect
 * pending, every job of another thread waits (its timeout names the
 * gate); the reconnect thread's own jobs pass; opening the gate wakes the
 * waiters. */
static int
testReconnectGate(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *w = NULL;
    bool locked = false;
    bool waiting;
    int ret = -1;
    const char *pat = "^Timed out during operation: cannot acquire state change lock "
                      "\\(held by reconnect thread=0 \\(connecting to QEMU after the "
                      "driver started\\)\\)$";

    testSetTimeoutMs(300);
    LOCK(vm);
    qemuDomainObjBeginReconnect(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0);
    CHECK(virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_DESTROY) < 0);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SAVE,
                                     VIR_DOMAIN_JOB_OPERATION_SAVE, 0) < 0);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    CHECK(qemuDomainObjBeginAgentJob(vm, QEMU_AGENT_JOB_QUERY) < 0);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    UNLOCK(vm);

    /* a query waits; this thread plays the reconnect thread */
    testSetTimeoutMs(TEST_LONG_WAIT_MS);
    w = testWorkerStart(vm, "remoteDispatchDomainGetInfo", QEMU_JOB_QUERY,
                        QEMU_ASYNC_JOB_NONE, true);
    CHECK(testWaitFor(vm, predWaiters, GUINT_TO_POINTER(1)));
    LOCK(vm);
    qemuDomainObjTakeReconnect(vm);
    CHECK(QEMU_DOMAIN_PRIVATE(vm)->job.reconnectOwner == virThreadSelfID());
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);
    qemuDomainObjEndJob(vm);
    g_mutex_lock(&w->lock);
    waiting = w->rc == 1;
    g_mutex_unlock(&w->lock);
    CHECK(waiting);
    qemuDomainObjEndReconnect(vm);
    CHECK(!QEMU_DOMAIN_PRIVATE(vm)->job.reconnecting);
    UNLOCK(vm);
    CHECK(testWorkerWaitStarted(w));
    CHECK(w->rc == 0);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(w);
    testDomainFree(vm);
    return ret;
}

static int
testAgent(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testWorker *g = NULL;
    bool locked = false;
    int ret = -1;
    g_autofree char *pat = NULL;

    testSetTimeoutMs(1000);
    g = g_new0(testWorker, 1);
    g->vm = vm;
    g->api = "remoteDispatchDomainGetHostname";
    g->agent = true;
    g->hold = true;
    g->rc = 1;
    g_mutex_init(&g->lock);
    g_cond_init(&g->cond);
    if (virThreadCreate(&g->thread, true, testWorkerMain, g) < 0)
        abort();
    CHECK(testWorkerWaitStarted(g));

    LOCK(vm);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);   /* beside the agent job */
    qemuDomainObjEndJob(vm);
    CHECK(qemuDomainObjBeginAgentJob(vm, QEMU_AGENT_JOB_MODIFY) < 0);
    CHECK(virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT);
    pat = g_strdup_printf("^Timed out during operation: cannot acquire state change lock "
                          "\\(held by agent=query api=virDomainGetHostname thread=%llu "
                          "for [0-9]+\\.[0-9] s\\)$", g->tid);
    CHECK(testMessageMatches(virGetLastErrorMessage(), pat));
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testWorkerFinish(g);
    testDomainFree(vm);
    return ret;
}

#ifndef TANDEM_DEBUG_LOCKS
/* Rule violations are errors in normal builds (debug builds abort:
 * testDebugAsserts). */
/* Runs @fn(@opaque) in a new thread and waits for it. */
static void
testRunInThread(virThreadFunc fn, void *opaque)
{
    virThread thr;

    if (virThreadCreate(&thr, true, fn, opaque) < 0)
        abort();
    virThreadJoin(&thr);
}

typedef struct {
    virDomainObj *vm;
    int rc;
} testNestedData;

static void
testForeignNestedThread(void *opaque)
{
    testNestedData *d = opaque;

    virObjectLock(d->vm);
    d->rc = qemuDomainObjBeginNestedJob(d->vm, QEMU_ASYNC_JOB_SAVE);
    if (d->rc == 0)
        qemuDomainObjEndJob(d->vm);
    virObjectUnlock(d->vm);
}

static int
testRuleViolations(void)
{
    virDomainObj *vm = testDomainNew(NULL);
    testNestedData d = { vm, 0 };
    bool locked = false;
    int ret = -1;

    testSetTimeoutMs(1000);
    LOCK(vm);
    CHECK(qemuDomainObjEnterMonitor(vm) < 0);
    CHECK(testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: entering the monitor without a job"));
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) == 0);
    CHECK(qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0);     /* would deadlock */
    CHECK(qemuDomainObjBeginAgentJob(vm, QEMU_AGENT_JOB_QUERY) < 0);
    CHECK(testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: cannot start agent job 'query': this thread already holds a job"));
    qemuDomainObjEndJob(vm);
    CHECK(qemuDomainObjBeginAsyncJob(vm, QEMU_ASYNC_JOB_SAVE,
                                     VIR_DOMAIN_JOB_OPERATION_SAVE, 0) == 0);
    UNLOCK(vm);
    testRunInThread(testForeignNestedThread, &d);
    CHECK(d.rc < 0);
    LOCK(vm);
    qemuDomainObjEndAsyncJob(vm);
    UNLOCK(vm);
    CHECK(qemuDomainObjExitMonitor(vm) < 0);                  /* locks vm */
    locked = true;
    CHECK(testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: leaving the monitor without entering it"));
    UNLOCK(vm);
    ret = 0;

 cleanup:
    if (locked)
        virObjectUnlock(vm);
    testDomainFree(vm);
    return ret;
}
#else
/* Debug builds: a broken rule aborts.  Each case runs in a child. */
static int
testDebugAbortChild(int which)
{
    pid_t pid = fork();
    int status = 0;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        virDomainObj *vm = testDomainNew(NULL);

        virObjectLock(vm);
        switch (which) {
        case 0:     /* EnterMonitor without a job */
            ignore_value(qemuDomainObjEnterMonitor(vm));
            break;
        case 1:     /* waiting for the monitor with the domain locked */
            ignore_value(qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY));
            qemuDomainObjAssertUnlocked();
            break;
        case 2:     /* a sync job and an agent job in one thread */
            ignore_value(qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY));
            ignore_value(qemuDomainObjBeginAgentJob(vm, QEMU_AGENT_JOB_QUERY));
            break;
        case 3:     /* Begin*Job without the domain lock */
            virObjectUnlock(vm);
            ignore_value(qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY));
            break;
        }
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
        fprintf(stderr, "  case %d: child did not abort (status 0x%x)\n", which, status);
        return -1;
    }
    return 0;
}

static int
testDebugAsserts(void)
{
    int i;

    for (i = 0; i < 4; i++) {
        if (testDebugAbortChild(i) < 0)
            return -1;
    }
    return 0;
}
#endif

/* ------------------------------------------------------------------ */
/* The Promela fragment of the tables (tests/model/jobs.pml)            */
/* ------------------------------------------------------------------ */

static void
testPrintPromelaName(const char *prefix, const char *name, int value)
{
    g_autofree char *up = g_ascii_strup(name, -1);

    g_strdelimit(up, "- ", '_');
    printf("#define %s%s %d\n", prefix, up, value);
}

static int
testPrintPromelaMasks(void)
{
    int i;

    printf("/* BEGIN GENERATED: tests/qemujobtest --promela-masks (do not edit) */\n");
    for (i = 0; i < QEMU_JOB_LAST; i++)
        testPrintPromelaName("J_", qemuDomainJobTypeToString(i), i);
    printf("#define NJOBS %d\n", QEMU_JOB_LAST);
    for (i = 0; i < QEMU_ASYNC_JOB_LAST; i++)
        testPrintPromelaName("A_", qemuDomainAsyncJobTypeToString(i), i);
    printf("#define NASYNC %d\n", QEMU_ASYNC_JOB_LAST);
    printf("#define WAITS_FOR_ASYNC %u\n", (unsigned int) QEMU_JOB_WAITS_FOR_ASYNC_MASK);
    printf("inline init_masks() {\n");
    for (i = 0; i < QEMU_ASYNC_JOB_LAST; i++)
        printf("    mask[%d] = %u;   /* %s */\n", i, qemuDomainAsyncJobDefaultMask[i],
               qemuDomainAsyncJobTypeToString(i));
    printf("}\n");
    printf("/* END GENERATED */\n");
    return 0;
}

/* ------------------------------------------------------------------ */

static void
testRun(const char *name, int (*fn)(void))
{
    virResetLastError();
    if (fn() < 0) {
        printf("not ok - %s\n", name);
        failures++;
    } else {
        printf("ok - %s\n", name);
    }
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && STREQ(argv[1], "--promela-masks"))
        return testPrintPromelaMasks();

    if (virInitialize() < 0) {
        fprintf(stderr, "cannot initialize libvirt\n");
        return EXIT_FAILURE;
    }
    if (!(xmlopt = virDomainXMLOptionNew(NULL, &qemuDomainXMLPrivateDataCallbacks,
                                         NULL, NULL, NULL, NULL))) {
        fprintf(stderr, "cannot create XML options\n");
        return EXIT_FAILURE;
    }

    testRun("non-query jobs exclude each other", testExclusion);
    testRun("non-query jobs exclude each other (6 threads x 200)", testExclusionStress);
    testRun("query jobs share", testQueriesShare);
    testRun("mask table keeps the promises", testMaskPromises);
    testRun("every sync job beside every async job, as the table says", testMaskTable);
    testRun("immediate refusal names the async job", testRefusalText);
    testRun("nested job of an async job", testNested);
    testRun("re-check after wake-up: an async job began meanwhile", testRecheckRace);
    testRun("deadline expiry names the holder", testDeadline);
    testRun("destroy beats a stuck job", testDestroyBeatsStuckJob);
    testRun("ExitMonitor reports the domain's death", testExitMonitorDeath);
    testRun("abort wakes the async job", testAbort);
    testRun("job info and completed-job stats", testJobInfo);
    testRun("status XML round trip of job and phase", testStatusXML);
    testRun("agent jobs", testAgent);
    testRun("the reconnect gate", testReconnectGate);
#ifndef TANDEM_DEBUG_LOCKS
    testRun("rule violations are errors", testRuleViolations);
#else
    testRun("debug build: rule violations abort", testDebugAsserts);
#endif

    printf("1..%d\n", 17);
    virObjectUnref(xmlopt);
    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
