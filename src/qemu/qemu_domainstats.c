/*
 * qemu_domainstats.c: virConnectGetAllDomainStats / virDomainListGetStats
 *
 * Most groups are answered without QEMU: the state from the domain object,
 * CPU time from /proc, the balloon from the size QEMU last announced
 * (BALLOON_CHANGE), vCPU times from the vCPU threads.  Only block
 * statistics need the monitor; for them each domain takes a query job
 * (query jobs share, so concurrent collectors do not queue) and the
 * domains are asked in parallel, so one slow QEMU costs one deadline, not
 * one per domain.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_domainstats.h"
#include "qemu_domain.h"
#include "qemu_monitor_json.h"
#include "qemu_process.h"
#include "qemu_domain_query.h"

#include "datatypes.h"
#include "virerror.h"
#include "virlog.h"
#include "virtypedparam.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_domainstats");

#define QEMU_DOMAIN_STATS_SUPPORTED \
    (VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | \
     VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU | \
     VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK)

/* One domain's collection, done by a pool thread or the caller. */
typedef struct _qemuDomainStatsWork qemuDomainStatsWork;
struct _qemuDomainStatsWork {
    virDomainObj *vm;          /* a reference */
    unsigned int stats;
    unsigned int flags;
    virTypedParamList *params; /* result */
    GMutex *lock;              /* protects *pending and the cond */
    GCond *cond;
    unsigned int *pending;
};

/* Thread time of /proc/PID/task/TID, in ns. */
static unsigned long long
qemuDomainStatsThreadTime(pid_t pid, long long tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%lld/stat", (int) pid, tid);
    g_autofree char *buf = NULL;
    g_auto(GStrv) fields = NULL;
    const char *p;
    long tick = sysconf(_SC_CLK_TCK);

    if (tick <= 0 || !g_file_get_contents(path, &buf, NULL, NULL) ||
        !(p = strrchr(buf, ')')))
        return 0;
    fields = g_strsplit(p + 2, " ", 16);
    if (g_strv_length(fields) < 14)
        return 0;
    return (g_ascii_strtoull(fields[11], NULL, 10) +
            g_ascii_strtoull(fields[12], NULL, 10)) * (1000000000ULL / tick);
}

/* vm locked */
static int
qemuDomainStatsState(virDomainObj *vm, virTypedParamList *params)
{
    int reason;
    int state = virDomainObjGetState(vm, &reason);

    if (virTypedParamListAddInt(params, state, "state.state") < 0 ||
        virTypedParamListAddInt(params, reason, "state.reason") < 0)
        return -1;
    return 0;
}

static int
qemuDomainStatsCPUTotal(virDomainObj *vm, virTypedParamList *params)
{
    if (!virDomainObjIsActive(vm))
        return 0;
    return virTypedParamListAddULLong(params, qemuProcessGetCPUTime(vm), "cpu.time");
}

/* vm locked; may take a query job and enter the monitor (guest
 * statistics, when a stats period is set). */
static int
qemuDomainStatsBalloon(virDomainObj *vm, unsigned int flags, virTypedParamList *params)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long cur;

    qemuDomainQueryBalloonGuestRefresh(vm, flags & VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    cur = vm->def->mem.cur_balloon;

    if (virDomainObjIsActive(vm) && priv->balloonCur)
        cur = priv->balloonCur;
    if (virTypedParamListAddULLong(params, cur, "balloon.current") < 0 ||
        virTypedParamListAddULLong(params, virDomainDefGetMemoryTotal(vm->def),
                                   "balloon.maximum") < 0)
        return -1;
    /* guest statistics as last read, rss from /proc */
    return qemuDomainQueryBalloonStatsParams(vm, params);
}

static int
qemuDomainStatsVcpu(virDomainObj *vm, virTypedParamList *params)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned int cur = virDomainDefGetVcpus(vm->def);
    unsigned int max = virDomainDefGetVcpusMax(vm->def);
    size_t i;

    if (virTypedParamListAddUInt(params, cur, "vcpu.current") < 0 ||
        virTypedParamListAddUInt(params, max, "vcpu.maximum") < 0)
        return -1;
    if (!virDomainObjIsActive(vm))
        return 0;
    for (i = 0; i < priv->nvcpuTids && i < cur; i++) {
        if (virTypedParamListAddInt(params, VIR_VCPU_RUNNING, "vcpu.%zu.state", i) < 0 ||
            virTypedParamListAddULLong(params,
                                       qemuDomainStatsThreadTime(vm->pid, priv->vcpuTids[i]),
                                       "vcpu.%zu.time", i) < 0)
            return -1;
    }
    return 0;
}

static int
qemuDomainStatsInterface(virDomainObj *vm, virTypedParamList *params)
{
    size_t i;

    if (!virDomainObjIsActive(vm))
        return 0;
    if (virTypedParamListAddUInt(params, vm->def->nnets, "net.count") < 0)
        return -1;
    for (i = 0; i < vm->def->nnets; i++) {
        virDomainNetDef *net = vm->def->nets[i];
        const char *name = net->ifname ? net->ifname : net->info.alias;

        if (name && virTypedParamListAddString(params, name, "net.%zu.name", i) < 0)
            return -1;
    }
    return 0;
}

/* vm locked; may take a query job and enter the monitor. */
static int
qemuDomainStatsBlock(virDomainObj *vm, unsigned int flags, virTypedParamList *params)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuMonitorBlockStats *stats = NULL;
    size_t nstats = 0;
    bool haveStats = false;
    size_t i;
    int ret = -1;

    if (virTypedParamListAddUInt(params, vm->def->ndisks, "block.count") < 0)
        return -1;

    if (virDomainObjIsActive(vm) && vm->def->ndisks > 0) {
        bool busy = priv->job.active != QEMU_JOB_NONE &&
                    priv->job.active != QEMU_JOB_QUERY;

        if ((flags & VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT) && busy) {
            VIR_DEBUG("domain '%s' busy: skipping block stats", vm->def->name);
        } else if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) == 0) {
            if (virDomainObjIsActive(vm) && qemuDomainObjEnterMonitor(vm) == 0) {
                int rc = qemuMonitorJSONGetBlockStats(priv->mon, &stats, &nstats);

                if (qemuDomainObjExitMonitor(vm) == 0 && rc == 0)
                    haveStats = true;
            }
            qemuDomainObjEndJob(vm);
            /* a domain we cannot ask is reported without the numbers */
            virResetLastError();
        } else {
            virResetLastError();
        }
    }

    for (i = 0; i < vm->def->ndisks; i++) {
        virDomainDiskDef *disk = vm->def->disks[i];
        const char *path = virDomainDiskGetSource(disk);
        const qemuMonitorBlockStats *st = NULL;

        if (virTypedParamListAddString(params, disk->dst, "block.%zu.name", i) < 0)
            goto cleanup;
        if (path && virTypedParamListAddString(params, path, "block.%zu.path", i) < 0)
            goto cleanup;
        if (haveStats && disk->info.alias)
            st = qemuMonitorBlockStatsFindByAlias(stats, nstats, disk->info.alias);
        if (!st)
            continue;
        if (virTypedParamListAddULLong(params, st->rdReq, "block.%zu.rd.reqs", i) < 0 ||
            virTypedParamListAddULLong(params, st->rdBytes, "block.%zu.rd.bytes", i) < 0 ||
            virTypedParamListAddULLong(params, st->rdTotalTimeNs, "block.%zu.rd.times", i) < 0 ||
            virTypedParamListAddULLong(params, st->wrReq, "block.%zu.wr.reqs", i) < 0 ||
            virTypedParamListAddULLong(params, st->wrBytes, "block.%zu.wr.bytes", i) < 0 ||
            virTypedParamListAddULLong(params, st->wrTotalTimeNs, "block.%zu.wr.times", i) < 0 ||
            virTypedParamListAddULLong(params, st->flushReq, "block.%zu.fl.reqs", i) < 0 ||
            virTypedParamListAddULLong(params, st->flushTotalTimeNs, "block.%zu.fl.times", i) < 0)
            goto cleanup;
    }
    ret = 0;
 cleanup:
    qemuMonitorBlockStatsFree(stats, nstats);
    return ret;
}

/* Collects one domain's record into work->params.  Takes vm's lock. */
static void
qemuDomainStatsCollectOne(qemuDomainStatsWork *work)
{
    virDomainObj *vm = work->vm;
    virTypedParamList *params = g_new0(virTypedParamList, 1);
    unsigned int stats = work->stats;
    int rc = 0;

    virObjectLock(vm);
    if (stats & VIR_DOMAIN_STATS_STATE)
        rc |= qemuDomainStatsState(vm, params);
    if (stats & VIR_DOMAIN_STATS_CPU_TOTAL)
        rc |= qemuDomainStatsCPUTotal(vm, params);
    if (stats & VIR_DOMAIN_STATS_BALLOON)
        rc |= qemuDomainStatsBalloon(vm, work->flags, params);
    if (stats & VIR_DOMAIN_STATS_VCPU)
        rc |= qemuDomainStatsVcpu(vm, params);
    if (stats & VIR_DOMAIN_STATS_INTERFACE)
        rc |= qemuDomainStatsInterface(vm, params);
    if (stats & VIR_DOMAIN_STATS_BLOCK)
        rc |= qemuDomainStatsBlock(vm, work->flags, params);
    virObjectUnlock(vm);

    if (rc != 0) {
        virTypedParamListFree(params);
        params = NULL;
    }
    work->params = params;
}

static void
qemuDomainStatsPoolRun(gpointer data, gpointer opaque G_GNUC_UNUSED)
{
    qemuDomainStatsWork *work = data;

    qemuDomainStatsCollectOne(work);
    g_mutex_lock(work->lock);
    if (--(*work->pending) == 0)
        g_cond_signal(work->cond);
    g_mutex_unlock(work->lock);
}

/* Whether @vm needs QEMU for the requested groups (worth a thread). */
static bool
qemuDomainStatsNeedsMonitor(virDomainObj *vm, unsigned int stats)
{
    bool ret;

    virObjectLock(vm);
    ret = virDomainObjIsActive(vm) &&
          (((stats & VIR_DOMAIN_STATS_BLOCK) && vm->def->ndisks > 0) ||
           ((stats & VIR_DOMAIN_STATS_BALLOON) && virDomainDefHasMemballoon(vm->def) &&
            vm->def->memballoon->period > 0));
    virObjectUnlock(vm);
    return ret;
}

int
qemuDomainStatsCollect(virConnectPtr conn,
                       virDomainObj **vms,
                       size_t nvms,
                       unsigned int stats,
                       unsigned int flags,
                       virDomainStatsRecordPtr **retStats)
{
    g_autofree qemuDomainStatsWork *work = g_new0(qemuDomainStatsWork, nvms);
    virDomainStatsRecordPtr *records = g_new0(virDomainStatsRecordPtr, nvms + 1);
    GThreadPool *pool = NULL;
    GMutex lock;
    GCond cond;
    unsigned int pending = 0;
    size_t nrecords = 0;
    size_t i;

    if (stats == 0) {
        stats = QEMU_DOMAIN_STATS_SUPPORTED;
    } else if ((flags & VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS) &&
               (stats & ~QEMU_DOMAIN_STATS_SUPPORTED)) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED,
                       _("Stats types bits 0x%x are not supported by this daemon"),
                       stats & ~QEMU_DOMAIN_STATS_SUPPORTED);
        g_free(records);
        return -1;
    }
    stats &= QEMU_DOMAIN_STATS_SUPPORTED;

    g_mutex_init(&lock);
    g_cond_init(&cond);
    for (i = 0; i < nvms; i++) {
        work[i].vm = vms[i];
        work[i].stats = stats;
        work[i].flags = flags;
        work[i].lock = &lock;
        work[i].cond = &cond;
        work[i].pending = &pending;
    }

    /* the domains that need QEMU are asked in parallel */
    for (i = 0; i < nvms; i++) {
        if (nvms > 1 && qemuDomainStatsNeedsMonitor(vms[i], stats)) {
            if (!pool)
                pool = g_thread_pool_new(qemuDomainStatsPoolRun, NULL,
                                         MIN(nvms, 16), FALSE, NULL);
            if (pool) {
                g_mutex_lock(&lock);
                pending++;
                g_mutex_unlock(&lock);
                g_thread_pool_push(pool, &work[i], NULL);
                continue;
            }
        }
        qemuDomainStatsCollectOne(&work[i]);
    }
    g_mutex_lock(&lock);
    while (pending > 0)
        g_cond_wait(&cond, &lock);
    g_mutex_unlock(&lock);
    if (pool)
        g_thread_pool_free(pool, FALSE, TRUE);
    g_mutex_clear(&lock);
    g_cond_clear(&cond);

    for (i = 0; i < nvms; i++) {
        virDomainStatsRecordPtr rec;
        virDomainObj *vm = vms[i];

        if (!work[i].params)
            continue;
        rec = g_new0(virDomainStatsRecord, 1);
        virObjectLock(vm);
        rec->dom = virGetDomain(conn, vm->def->name, vm->def->uuid, vm->def->id);
        virObjectUnlock(vm);
        rec->nparams = virTypedParamListStealParams(work[i].params, &rec->params);
        virTypedParamListFree(work[i].params);
        if (!rec->dom) {
            virTypedParamsFree(rec->params, rec->nparams);
            g_free(rec);
            continue;
        }
        records[nrecords++] = rec;
    }
    *retStats = records;
    return nrecords;
}
