/*
 * qemu_domain_query.c: per-domain queries and tuning APIs (memory and balloon statistics, vCPUs, block and interface statistics, CPU statistics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What can be answered from the domain object or /proc is answered there,
 * under the domain lock only, so these queries never wait behind a job:
 * vCPU threads, CPU times, affinity, interface counters, block sizes,
 * the control state.  Only what QEMU alone knows (balloon statistics,
 * block statistics) takes a query job, which shares with other queries
 * and runs beside every async job.  Changes take a modify job.
 */
#include <config.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_domain_query.h"
#include "qemu_conf.h"
#include "qemu_monitor_json.h"

#include "datatypes.h"
#include "viraccessapicheck.h"
#include "virbitmap.h"
#include "virerror.h"
#include "virfile.h"
#include "virhostcpu.h"
#include "virlog.h"
#include "virtime.h"
#include "virtypedparam.h"
#include "viruuid.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_domain_query");

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

/* The error of a query on a domain that does not run: after a migration
 * handed it to another host (shut off, migrated; or its QEMU exiting in
 * the Confirm that follows), it says so, still "domain is not running"
 * as libvirt words it.  vm locked. */
static bool
qemuQueryHandedOver(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int reason = 0;
    virDomainState state = virDomainObjGetState(vm, &reason);

    return (state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_MIGRATED) ||
           (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT &&
            priv->job.phase >= QEMU_MIGRATION_OUT_PHASE_PERFORM3_DONE &&
            priv->job.phase != QEMU_MIGRATION_OUT_PHASE_CONFIRM3_CANCELLED);
}

static void
qemuQueryReportNotRunning(virDomainObj *vm, const char *why)
{
    if (qemuQueryHandedOver(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain is not running: '%s' has migrated to another host"),
                       vm->def->name);
    } else if (why) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain '%s' is not running: %s"), vm->def->name, why);
    } else {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s", _("domain is not running"));
    }
}

/* A query's monitor call failed (vm locked): when QEMU went away because
 * the domain stopped or a migration handed it over (the source's QEMU
 * quits in Confirm, maybe under a query), that is the error, rather than
 * the monitor's end of file. */
static void
qemuQueryMonitorFailed(virDomainObj *vm)
{
    if (!virDomainObjIsActive(vm) || qemuQueryHandedOver(vm))
        qemuQueryReportNotRunning(vm, NULL);
}

/* virDomainObjCheckActive, naming a migration that took the domain away. */
static int
qemuQueryCheckActive(virDomainObj *vm)
{
    if (virDomainObjIsActive(vm))
        return 0;
    qemuQueryReportNotRunning(vm, NULL);
    return -1;
}

/* Begins @job and checks the domain still runs.  On failure no job is held. */
static int
qemuQueryBeginJobActive(virDomainObj *vm, qemuDomainJob job)
{
    if (qemuDomainObjBeginJob(vm, job) < 0)
        return -1;
    if (qemuQueryCheckActive(vm) < 0) {
        qemuDomainObjEndJob(vm);
        return -1;
    }
    return 0;
}

/* Enters the monitor under the caller's sync job, or under the nested job
 * of @asyncJob. */
static int
qemuQueryEnterMonitor(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    if (asyncJob != QEMU_ASYNC_JOB_NONE)
        return qemuDomainObjEnterMonitorAsync(vm, asyncJob);
    return qemuDomainObjEnterMonitor(vm);
}

/* QOM path of the balloon device of @def (which has one). */
static char *
qemuQueryBalloonPath(const virDomainDef *def)
{
    return g_strdup_printf("/machine/peripheral/%s", def->memballoon->info.alias);
}

/* Fields of /proc/@pid/stat, or of /proc/@pid/task/@tid/stat when @tid > 0:
 * user and system time in ns, the CPU it last ran on. */
static int
qemuQueryProcStat(pid_t pid,
                  long long tid,
                  unsigned long long *userNs,
                  unsigned long long *sysNs,
                  int *lastCpu)
{
    g_autofree char *path = NULL;
    g_autofree char *buf = NULL;
    g_auto(GStrv) fields = NULL;
    const char *p;
    long tick = sysconf(_SC_CLK_TCK);
    unsigned long long nsPerTick;

    if (tid > 0)
        path = g_strdup_printf("/proc/%d/task/%lld/stat", (int) pid, tid);
    else
        path = g_strdup_printf("/proc/%d/stat", (int) pid);

    if (pid <= 0 || tick <= 0 ||
        !g_file_get_contents(path, &buf, NULL, NULL) ||
        !(p = strrchr(buf, ')')) || p[1] != ' ') {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("cannot read process statistics from '%s'"), path);
        return -1;
    }
    /* after "pid (comm) ": state is field [0], utime [11], stime [12],
     * processor [36] */
    fields = g_strsplit(p + 2, " ", 40);
    if (g_strv_length(fields) < 38) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("unexpected format of '%s'"), path);
        return -1;
    }
    nsPerTick = 1000000000ULL / tick;
    if (userNs)
        *userNs = g_ascii_strtoull(fields[11], NULL, 10) * nsPerTick;
    if (sysNs)
        *sysNs = g_ascii_strtoull(fields[12], NULL, 10) * nsPerTick;
    if (lastCpu)
        *lastCpu = (int) g_ascii_strtoll(fields[36], NULL, 10);
    return 0;
}

/* Resident set size of the QEMU of @vm in KiB: the second field of
 * /proc/PID/statm (pages), the figure VmRSS of /proc/PID/status shows;
 * statm is a few numbers where status is 50 formatted lines (reading and
 * splitting it was 10 % of the daemon's CPU time per MemoryStats,
 * measured with perf). */
static int
qemuQueryProcRSS(virDomainObj *vm, unsigned long long *rss)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/statm", (int) vm->pid);
    char buf[256];
    unsigned long long pages = 0;
    long pageSize = sysconf(_SC_PAGESIZE);
    ssize_t got;
    char *p;
    int fd;

    if (vm->pid > 0 && pageSize > 0 &&
        (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        got = saferead(fd, buf, sizeof(buf) - 1);
        VIR_FORCE_CLOSE(fd);
        if (got > 0) {
            buf[got] = '\0';
            /* "size resident shared text lib data dt" */
            if ((p = strchr(buf, ' ')))
                pages = g_ascii_strtoull(p + 1, NULL, 10);
        }
    }
    if (pages > 0) {
        *rss = pages * (unsigned long long) pageSize / 1024;
        return 0;
    }
    /* No file: reaped; no resident pages: a zombie (its memory is gone).
     * Either way QEMU exited (destroyed or crashed) while this call was
     * running. */
    {
        g_autofree char *why = g_strdup_printf(_("its QEMU process %d has exited"),
                                               (int) vm->pid);

        qemuQueryReportNotRunning(vm, why);
    }
    return -1;
}

/* The vCPU thread of online vCPU @vcpu, or 0. */
static long long
qemuQueryVcpuTid(virDomainObj *vm, unsigned int vcpu)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (vcpu >= priv->nvcpuTids)
        return 0;
    return priv->vcpuTids[vcpu];
}

/* Pins thread @tid to the host CPUs in @map. */
static int
qemuQuerySetThreadAffinity(long long tid, virBitmap *map)
{
    cpu_set_t set;
    ssize_t cpu = -1;

    CPU_ZERO(&set);
    while ((cpu = virBitmapNextSetBit(map, cpu)) >= 0) {
        if (cpu < CPU_SETSIZE)
            CPU_SET(cpu, &set);
    }
    if (sched_setaffinity((pid_t) tid, sizeof(set), &set) < 0) {
        virReportSystemError(errno,
                             _("cannot set CPU affinity of vCPU thread %lld"), tid);
        return -1;
    }
    return 0;
}

/* Pinning that applies to vCPU @vcpu of @def: its own <vcpupin>, else the
 * <vcpu cpuset=...>, else NULL (all host CPUs). */
static virBitmap *
qemuQueryVcpuPinning(virDomainDef *def, unsigned int vcpu)
{
    virDomainVcpuDef *vcpuDef = virDomainDefGetVcpu(def, vcpu);

    if (vcpuDef && vcpuDef->cpumask)
        return vcpuDef->cpumask;
    return def->cpumask;
}

/* Applies the pinning of @def to the running vCPU threads from @first on. */
static int
qemuQueryApplyVcpuPinning(virDomainObj *vm, unsigned int first)
{
    unsigned int n = virDomainDefGetVcpusMax(vm->def);
    unsigned int i;

    for (i = first; i < n; i++) {
        virBitmap *map = qemuQueryVcpuPinning(vm->def, i);
        long long tid = qemuQueryVcpuTid(vm, i);
        virDomainVcpuDef *vcpuDef = virDomainDefGetVcpu(vm->def, i);

        if (!map || tid <= 0 || !vcpuDef || !vcpuDef->online)
            continue;
        if (qemuQuerySetThreadAffinity(tid, map) < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Memory                                                                 */
/* ---------------------------------------------------------------------- */

/* vm locked, no job.  While an async job (migration, save, dump,
 * snapshot, start) runs, QEMU's main loop is busy with the job's stream
 * and the job's own commands hold the monitor: a query-balloon then waits
 * behind both (measured: up to 0.9 s on a migration destination).  The
 * balloon size QEMU pushes by BALLOON_CHANGE is what GetInfo reports;
 * MemoryStats reports it too then, with the RSS, and asks QEMU nothing.
 * Not when guest statistics are wanted (a stats period is set: QEMU alone
 * has them) or when the monitor was found unresponsive (the QEMU path
 * fails at once, naming the command that got no reply).  Returns false
 * when the QEMU path must answer; true when answered, with the API's
 * result in @ret (the number of statistics, or -1 on error). */
static bool
qemuDomainMemoryStatsBesideAsyncJob(virDomainObj *vm,
                                    virDomainMemoryStatPtr stats,
                                    unsigned int nr_stats,
                                    int *ret)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long rss = 0;
    unsigned int got = 0;

    if (priv->job.asyncJob == QEMU_ASYNC_JOB_NONE ||
        !virDomainObjIsActive(vm) ||
        (virDomainDefHasMemballoon(vm->def) && vm->def->memballoon->period > 0) ||
        !priv->mon || qemuMonitorIsUnresponsive(priv->mon))
        return false;

    if (virDomainDefHasMemballoon(vm->def) && got < nr_stats) {
        stats[got].tag = VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON;
        stats[got].val = priv->balloonCur ? priv->balloonCur : vm->def->mem.cur_balloon;
        got++;
    }
    if (got < nr_stats) {
        if (qemuQueryProcRSS(vm, &rss) < 0) {
            *ret = -1;
            return true;
        }
        stats[got].tag = VIR_DOMAIN_MEMORY_STAT_RSS;
        stats[got].val = rss;
        got++;
    }
    *ret = got;
    return true;
}

static int
qemuDomainMemoryStats(virDomainPtr dom,
                      virDomainMemoryStatPtr stats,
                      unsigned int nr_stats,
                      unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    virDomainMemoryStatStruct guest[VIR_DOMAIN_MEMORY_STAT_NR];
    unsigned int nguest = 0;
    unsigned long long actual = 0;
    unsigned long long rss = 0;
    bool haveActual = false;
    bool haveGuest = false;
    unsigned int got = 0;
    unsigned int i;
    int ret = -1;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainMemoryStatsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainMemoryStatsBesideAsyncJob(vm, stats, nr_stats, &ret))
        goto cleanup;
    if (qemuQueryBeginJobActive(vm, QEMU_JOB_QUERY) < 0)
        goto cleanup;

    if (virDomainDefHasMemballoon(vm->def)) {
        g_autofree char *path = qemuQueryBalloonPath(vm->def);
        bool wantGuest = vm->def->memballoon->period > 0;
        int rcActual;
        int rcGuest = 0;

        if (qemuDomainObjEnterMonitor(vm) < 0)
            goto endjob;
        rcActual = qemuMonitorJSONGetBalloonInfo(priv->mon, &actual);
        if (rcActual < 0 && virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT) {
            /* QEMU does not answer: after the whole deadline, say so rather
             * than answer with the cached balloon size as if all was well */
            ignore_value(qemuDomainObjExitMonitor(vm));
            goto endjob;
        }
        if (rcActual < 0) {
            VIR_DEBUG("query-balloon failed: %s", virGetLastErrorMessage());
            virResetLastError();
        }
        if (wantGuest) {
            rcGuest = qemuMonitorJSONGetBalloonGuestStats(priv->mon, path, guest,
                                                          G_N_ELEMENTS(guest), &nguest);
            if (rcGuest < 0) {
                VIR_DEBUG("balloon guest-stats failed: %s", virGetLastErrorMessage());
                virResetLastError();
            }
        }
        if (qemuDomainObjExitMonitor(vm) < 0)
            goto endjob;

        if (rcActual == 0) {
            haveActual = true;
        } else if (priv->balloonCur) {
            actual = priv->balloonCur;
            haveActual = true;
        }
        if (wantGuest && rcGuest == 0) {
            haveGuest = true;
            memcpy(priv->memStats, guest, sizeof(guest[0]) * nguest);
            priv->nmemStats = nguest;
        }
    }

    if (haveActual && got < nr_stats) {
        stats[got].tag = VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON;
        stats[got].val = actual;
        got++;
    }
    for (i = 0; haveGuest && i < nguest && got < nr_stats; i++)
        stats[got++] = guest[i];
    if (got < nr_stats) {
        if (qemuQueryProcRSS(vm, &rss) < 0)
            goto endjob;
        stats[got].tag = VIR_DOMAIN_MEMORY_STAT_RSS;
        stats[got].val = rss;
        got++;
    }
    ret = got;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSetMemoryStatsPeriod(virDomainPtr dom, int period, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    virDomainDef *def;
    virDomainDef *persistentDef;
    int ret = -1;
    int rc;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainSetMemoryStatsPeriodEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (period < 0) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("invalid memory statistics period %d"), period);
        goto cleanup;
    }
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjGetDefs(vm, flags, &def, &persistentDef) < 0)
        goto endjob;

    if ((def && !virDomainDefHasMemballoon(def)) ||
        (persistentDef && !virDomainDefHasMemballoon(persistentDef))) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("No memory balloon device configured, can not set the collection period"));
        goto endjob;
    }

    if (def) {
        g_autofree char *path = qemuQueryBalloonPath(def);

        if (qemuDomainObjEnterMonitor(vm) < 0)
            goto endjob;
        rc = qemuMonitorJSONSetBalloonStatsPeriod(priv->mon, path, period);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto endjob;
        def->memballoon->period = period;
        if (period == 0)
            priv->nmemStats = 0;
        qemuDomainObjSaveStatus(driver, vm);
    }
    if (persistentDef) {
        persistentDef->memballoon->period = period;
        if (virDomainDefSave(persistentDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
    }
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSetMemoryFlags(virDomainPtr dom, unsigned long newmem, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    virDomainDef *def;
    virDomainDef *persistentDef;
    int ret = -1;
    int rc;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE |
                  VIR_DOMAIN_AFFECT_CONFIG |
                  VIR_DOMAIN_MEM_MAXIMUM, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainSetMemoryFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjGetDefs(vm, flags, &def, &persistentDef) < 0)
        goto endjob;

    if (flags & VIR_DOMAIN_MEM_MAXIMUM) {
        if (def) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("cannot resize the maximum memory on an active domain"));
            goto endjob;
        }
        if (virDomainNumaGetNodeCount(persistentDef->numa) > 0) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("initial memory size of a domain with NUMA nodes cannot be modified with this API"));
            goto endjob;
        }
        if (persistentDef->mem.max_memory && persistentDef->mem.max_memory < newmem) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("cannot set initial memory size greater than the maximum memory size"));
            goto endjob;
        }
        virDomainDefSetMemoryTotal(persistentDef, newmem);
        if (persistentDef->mem.cur_balloon > newmem)
            persistentDef->mem.cur_balloon = newmem;
        if (virDomainDefSave(persistentDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
        ret = 0;
        goto endjob;
    }

    if ((def && newmem > virDomainDefGetMemoryTotal(def)) ||
        (persistentDef && newmem > virDomainDefGetMemoryTotal(persistentDef))) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("cannot set memory higher than max memory"));
        goto endjob;
    }

    if (def) {
        if (!virDomainDefHasMemballoon(def)) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("Unable to change memory of active domain without the balloon device and guest OS balloon driver"));
            goto endjob;
        }
        if (qemuDomainObjEnterMonitor(vm) < 0)
            goto endjob;
        rc = qemuMonitorJSONSetBalloon(priv->mon, newmem);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto endjob;
        /* the guest gives the memory back in its own time: BALLOON_CHANGE
         * events keep priv->balloonCur current */
    }
    if (persistentDef) {
        persistentDef->mem.cur_balloon = newmem;
        if (virDomainDefSave(persistentDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
    }
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSetMemory(virDomainPtr dom, unsigned long newmem)
{
    return qemuDomainSetMemoryFlags(dom, newmem, VIR_DOMAIN_AFFECT_LIVE);
}

static int
qemuDomainSetMaxMemory(virDomainPtr dom, unsigned long memory)
{
    return qemuDomainSetMemoryFlags(dom, memory, VIR_DOMAIN_MEM_MAXIMUM);
}

/* The guest statistics virDomainMemoryStats last read, as the balloon
 * group of virConnectGetAllDomainStats names them. */
static const char *const qemuQueryBalloonStatNames[VIR_DOMAIN_MEMORY_STAT_NR] = {
    [VIR_DOMAIN_MEMORY_STAT_SWAP_IN] = "swap_in",
    [VIR_DOMAIN_MEMORY_STAT_SWAP_OUT] = "swap_out",
    [VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT] = "major_fault",
    [VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT] = "minor_fault",
    [VIR_DOMAIN_MEMORY_STAT_UNUSED] = "unused",
    [VIR_DOMAIN_MEMORY_STAT_AVAILABLE] = "available",
    [VIR_DOMAIN_MEMORY_STAT_USABLE] = "usable",
    [VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE] = "last-update",
    [VIR_DOMAIN_MEMORY_STAT_DISK_CACHES] = "disk_caches",
    [VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGALLOC] = "hugetlb_pgalloc",
    [VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGFAIL] = "hugetlb_pgfail",
};

/* vm locked; may take a query job and enter the monitor.  Refreshes the
 * guest statistics the balloon group reports (priv->memStats) from QEMU
 * when the guest reports them (a stats period is set).  Keeps the cached
 * ones beside an async job (QEMU is busy with its stream, see
 * qemuDomainMemoryStatsBesideAsyncJob), when @nowait and another job
 * holds the domain, and when QEMU does not answer: the group is then
 * reported with what was read last, never failed. */
void
qemuDomainQueryBalloonGuestRefresh(virDomainObj *vm, bool nowait)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virDomainMemoryStatStruct guest[VIR_DOMAIN_MEMORY_STAT_NR];
    unsigned int nguest = 0;
    g_autofree char *path = NULL;
    int rc = -1;

    if (!virDomainObjIsActive(vm) || !virDomainDefHasMemballoon(vm->def) ||
        vm->def->memballoon->period <= 0 ||
        priv->job.asyncJob != QEMU_ASYNC_JOB_NONE)
        return;
    if (nowait && priv->job.active != QEMU_JOB_NONE &&
        priv->job.active != QEMU_JOB_QUERY)
        return;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0) {
        virResetLastError();
        return;
    }
    path = qemuQueryBalloonPath(vm->def);
    if (virDomainObjIsActive(vm) && qemuDomainObjEnterMonitor(vm) == 0) {
        rc = qemuMonitorJSONGetBalloonGuestStats(priv->mon, path, guest,
                                                 G_N_ELEMENTS(guest), &nguest);
        if (qemuDomainObjExitMonitor(vm) < 0)
            rc = -1;
    }
    if (rc == 0) {
        memcpy(priv->memStats, guest, sizeof(guest[0]) * nguest);
        priv->nmemStats = nguest;
    }
    qemuDomainObjEndJob(vm);
    virResetLastError();
}

int
qemuDomainQueryBalloonStatsParams(virDomainObj *vm, virTypedParamList *params)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long rss = 0;
    unsigned int i;

    if (!virDomainObjIsActive(vm))
        return 0;
    if (virDomainDefHasMemballoon(vm->def) && vm->def->memballoon->period > 0) {
        for (i = 0; i < priv->nmemStats; i++) {
            int tag = priv->memStats[i].tag;

            if (tag < 0 || tag >= VIR_DOMAIN_MEMORY_STAT_NR ||
                !qemuQueryBalloonStatNames[tag])
                continue;
            if (virTypedParamListAddULLong(params, priv->memStats[i].val, "balloon.%s",
                                           qemuQueryBalloonStatNames[tag]) < 0)
                return -1;
        }
    }
    if (qemuQueryProcRSS(vm, &rss) < 0) {
        virResetLastError();
        return 0;
    }
    return virTypedParamListAddULLong(params, rss, "balloon.rss");
}

/* ---------------------------------------------------------------------- */
/* vCPUs                                                                  */
/* ---------------------------------------------------------------------- */

static int
qemuDomainGetVcpusFlags(virDomainPtr dom, unsigned int flags)
{
    virDomainObj *vm;
    virDomainDef *def;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE |
                  VIR_DOMAIN_AFFECT_CONFIG |
                  VIR_DOMAIN_VCPU_MAXIMUM |
                  VIR_DOMAIN_VCPU_GUEST, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetVcpusFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (flags & VIR_DOMAIN_VCPU_GUEST) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("counting vCPUs through the guest agent is not supported"));
        goto cleanup;
    }
    if (!(def = virDomainObjGetOneDef(vm, flags)))
        goto cleanup;
    if (flags & VIR_DOMAIN_VCPU_MAXIMUM)
        ret = virDomainDefGetVcpusMax(def);
    else
        ret = virDomainDefGetVcpus(def);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainGetMaxVcpus(virDomainPtr dom)
{
    return qemuDomainGetVcpusFlags(dom, VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_VCPU_MAXIMUM);
}

/* Order of hotpluggable CPU slots: by socket, die, core, thread. */
static int
qemuQueryHotpluggableCPUCompare(const void *a, const void *b)
{
    const qemuMonitorHotpluggableCPU *x = a;
    const qemuMonitorHotpluggableCPU *y = b;

    if (x->socketId != y->socketId)
        return x->socketId < y->socketId ? -1 : 1;
    if (x->dieId != y->dieId)
        return x->dieId < y->dieId ? -1 : 1;
    if (x->coreId != y->coreId)
        return x->coreId < y->coreId ? -1 : 1;
    if (x->threadId != y->threadId)
        return x->threadId < y->threadId ? -1 : 1;
    return 0;
}

/* Live vCPU hotplug up to @nvcpus online vCPUs: device_add of the empty
 * slots QEMU offers, in topology order.  vm locked, modify job held. */
static int
qemuQueryHotplugVcpus(virDomainObj *vm, unsigned int nvcpus)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned int cur = virDomainDefGetVcpus(vm->def);
    qemuMonitorHotpluggableCPU *slots = NULL;
    size_t nslots = 0;
    qemuMonitorCPUInfo *cpus = NULL;
    size_t ncpus = 0;
    unsigned int added = 0;
    size_t i;
    int rc = 0;
    int ret = -1;

    if (qemuDomainObjEnterMonitor(vm) < 0)
        return -1;
    if (qemuMonitorJSONQueryHotpluggableCPUs(priv->mon, &slots, &nslots) < 0) {
        rc = -1;
    } else {
        qsort(slots, nslots, sizeof(*slots), qemuQueryHotpluggableCPUCompare);
        for (i = 0; i < nslots && cur + added < nvcpus; i++) {
            g_autofree char *id = NULL;

            if (slots[i].qomPath)
                continue;
            if (slots[i].vcpusCount != 1) {
                virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                               _("vCPU hotplug of '%s' adds %d vCPUs at once, which is not supported"),
                               slots[i].type, slots[i].vcpusCount);
                rc = -1;
                break;
            }
            id = g_strdup_printf("vcpu%zu", i);
            if (qemuMonitorJSONAddVcpu(priv->mon, &slots[i], id) < 0) {
                rc = -1;
                break;
            }
            added++;
        }
        /* what runs now, also after a partial failure */
        if (qemuMonitorJSONQueryCPUsFast(priv->mon, &cpus, &ncpus) < 0 && rc == 0)
            rc = -1;
    }
    if (qemuDomainObjExitMonitor(vm) < 0)
        goto cleanup;

    if (cpus) {
        g_free(priv->vcpuTids);
        priv->vcpuTids = g_new0(long long, ncpus);
        priv->nvcpuTids = ncpus;
        for (i = 0; i < ncpus; i++)
            priv->vcpuTids[i] = cpus[i].threadId;
    }
    if (added > 0) {
        if (virDomainDefSetVcpus(vm->def, cur + added) < 0)
            goto cleanup;
        if (qemuQueryApplyVcpuPinning(vm, cur) < 0)
            goto cleanup;
    }
    if (rc < 0)
        goto cleanup;
    if (cur + added < nvcpus) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("QEMU offered no free slot to hotplug vCPU %u"), cur + added);
        goto cleanup;
    }
    ret = 0;
 cleanup:
    qemuMonitorHotpluggableCPUFree(slots, nslots);
    qemuMonitorCPUInfoFree(cpus, ncpus);
    return ret;
}

static int
qemuDomainSetVcpusFlags(virDomainPtr dom, unsigned int nvcpus, unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    virDomainDef *def;
    virDomainDef *persistentDef;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE |
                  VIR_DOMAIN_AFFECT_CONFIG |
                  VIR_DOMAIN_VCPU_MAXIMUM |
                  VIR_DOMAIN_VCPU_GUEST |
                  VIR_DOMAIN_VCPU_HOTPLUGGABLE, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainSetVcpusFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (flags & VIR_DOMAIN_VCPU_GUEST) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("changing vCPUs through the guest agent is not supported"));
        goto cleanup;
    }
    if (nvcpus == 0) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("vCPU count must be at least 1"));
        goto cleanup;
    }
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjGetDefs(vm, flags, &def, &persistentDef) < 0)
        goto endjob;

    if (flags & VIR_DOMAIN_VCPU_MAXIMUM) {
        if (def) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                           _("maximum vcpu count of a live domain can't be modified"));
            goto endjob;
        }
        if (nvcpus > 255) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("requested vcpus is greater than max allowable vcpus for the domain: %u > %d"),
                           nvcpus, 255);
            goto endjob;
        }
        if (persistentDef->cpu && persistentDef->cpu->sockets &&
            persistentDef->cpu->sockets * MAX(persistentDef->cpu->dies, 1) *
            persistentDef->cpu->cores * persistentDef->cpu->threads != nvcpus) {
            virReportError(VIR_ERR_INVALID_ARG, "%s",
                           _("CPU topology doesn't match the desired vcpu count"));
            goto endjob;
        }
        if (virDomainDefSetVcpusMax(persistentDef, nvcpus, driver->xmlopt) < 0)
            goto endjob;
        if (virDomainDefSave(persistentDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
        ret = 0;
        goto endjob;
    }

    if (def && nvcpus > virDomainDefGetVcpusMax(def)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("requested vcpus is greater than max allowable vcpus for the live domain: %u > %u"),
                       nvcpus, virDomainDefGetVcpusMax(def));
        goto endjob;
    }
    if (persistentDef && nvcpus > virDomainDefGetVcpusMax(persistentDef)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("requested vcpus is greater than max allowable vcpus for the persistent domain: %u > %u"),
                       nvcpus, virDomainDefGetVcpusMax(persistentDef));
        goto endjob;
    }

    if (def) {
        unsigned int cur = virDomainDefGetVcpus(def);

        if (nvcpus < cur) {
            virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                           _("live vCPU unplug is not supported (the domain has %u vCPUs online, %u requested); use --config"),
                           cur, nvcpus);
            goto endjob;
        }
        if (nvcpus > cur) {
            int rc = qemuQueryHotplugVcpus(vm, nvcpus);

            if (virDomainObjIsActive(vm))
                qemuDomainObjSaveStatus(driver, vm);
            if (rc < 0)
                goto endjob;
        }
    }
    if (persistentDef) {
        if (virDomainDefSetVcpus(persistentDef, nvcpus) < 0)
            goto endjob;
        if (virDomainDefSave(persistentDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
    }
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainSetVcpus(virDomainPtr dom, unsigned int nvcpus)
{
    return qemuDomainSetVcpusFlags(dom, nvcpus, VIR_DOMAIN_AFFECT_LIVE);
}

/* Answered from priv->vcpuTids and /proc: no job. */
static int
qemuDomainGetVcpus(virDomainPtr dom,
                   virVcpuInfoPtr info,
                   int maxinfo,
                   unsigned char *cpumaps,
                   int maplen)
{
    virDomainObj *vm;
    int ncpus;
    int i;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetVcpusEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("cannot retrieve vCPU information for inactive domain"));
        goto cleanup;
    }

    ncpus = MIN(maxinfo, (int) virDomainDefGetVcpus(vm->def));
    if (cpumaps)
        memset(cpumaps, 0, (size_t) maxinfo * maplen);
    memset(info, 0, sizeof(*info) * maxinfo);
    for (i = 0; i < ncpus; i++) {
        long long tid = qemuQueryVcpuTid(vm, i);
        unsigned long long user = 0;
        unsigned long long sys = 0;
        int lastCpu = -1;

        info[i].number = i;
        info[i].state = VIR_VCPU_RUNNING;
        info[i].cpu = -1;
        if (tid <= 0)
            continue;
        if (qemuQueryProcStat(vm->pid, tid, &user, &sys, &lastCpu) < 0)
            goto cleanup;
        info[i].cpuTime = user + sys;
        info[i].cpu = lastCpu;

        if (cpumaps) {
            cpu_set_t set;
            unsigned char *map = VIR_GET_CPUMAP(cpumaps, maplen, i);
            int cpu;

            CPU_ZERO(&set);
            if (sched_getaffinity((pid_t) tid, sizeof(set), &set) < 0) {
                virReportSystemError(errno,
                                     _("cannot get CPU affinity of vCPU thread %lld"), tid);
                goto cleanup;
            }
            for (cpu = 0; cpu < maplen * 8 && cpu < CPU_SETSIZE; cpu++) {
                if (CPU_ISSET(cpu, &set))
                    VIR_USE_CPU(map, cpu);
            }
        }
    }
    ret = ncpus;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainGetVcpuPinInfo(virDomainPtr dom,
                         int ncpumaps,
                         unsigned char *cpumaps,
                         int maplen,
                         unsigned int flags)
{
    virDomainObj *vm;
    virDomainDef *def;
    g_autoptr(virBitmap) hostcpus = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetVcpuPinInfoEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (!(def = virDomainObjGetOneDef(vm, flags)))
        goto cleanup;
    if (!(hostcpus = virHostCPUGetOnlineBitmap()))
        goto cleanup;
    ret = virDomainDefGetVcpuPinInfoHelper(def, maplen, ncpumaps, cpumaps,
                                           hostcpus, NULL);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainPinVcpuFlags(virDomainPtr dom,
                       unsigned int vcpu,
                       unsigned char *cpumap,
                       int maplen,
                       unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    virDomainDef *def;
    virDomainDef *persistentDef;
    g_autoptr(virBitmap) map = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainPinVcpuFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (!(map = virBitmapNewData(cpumap, maplen)))
        goto cleanup;
    if (virBitmapIsAllClear(map)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("Empty cpu list for pinning"));
        goto cleanup;
    }
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjGetDefs(vm, flags, &def, &persistentDef) < 0)
        goto endjob;

    if (persistentDef && vcpu >= virDomainDefGetVcpusMax(persistentDef)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("vcpu %u is out of range of persistent cpu count %u"),
                       vcpu, virDomainDefGetVcpusMax(persistentDef));
        goto endjob;
    }

    if (def) {
        virDomainVcpuDef *vcpuDef = virDomainDefGetVcpu(def, vcpu);
        long long tid = qemuQueryVcpuTid(vm, vcpu);

        if (!vcpuDef || !vcpuDef->online || tid <= 0) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("vcpu %u is out of range of live cpu count %u"),
                           vcpu, virDomainDefGetVcpus(def));
            goto endjob;
        }
        if (qemuQuerySetThreadAffinity(tid, map) < 0)
            goto endjob;
        virBitmapFree(vcpuDef->cpumask);
        vcpuDef->cpumask = virBitmapNewCopy(map);
        qemuDomainObjSaveStatus(driver, vm);
    }
    if (persistentDef) {
        virDomainVcpuDef *vcpuDef = virDomainDefGetVcpu(persistentDef, vcpu);

        virBitmapFree(vcpuDef->cpumask);
        vcpuDef->cpumask = virBitmapNewCopy(map);
        if (virDomainDefSave(persistentDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
    }
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainPinVcpu(virDomainPtr dom,
                  unsigned int vcpu,
                  unsigned char *cpumap,
                  int maplen)
{
    return qemuDomainPinVcpuFlags(dom, vcpu, cpumap, maplen, VIR_DOMAIN_AFFECT_LIVE);
}

/* ---------------------------------------------------------------------- */
/* CPU statistics                                                         */
/* ---------------------------------------------------------------------- */

#define QEMU_QUERY_NB_TOTAL_CPU_STATS 3

/* Totals from /proc/PID/stat; per-CPU statistics need cgroup CPU
 * accounting, which Tandem does not set up: none are offered. */
static int
qemuDomainGetCPUStats(virDomainPtr dom,
                      virTypedParameterPtr params,
                      unsigned int nparams,
                      int start_cpu,
                      unsigned int ncpus,
                      unsigned int flags)
{
    virDomainObj *vm;
    unsigned long long user = 0;
    unsigned long long sys = 0;
    int ret = -1;

    virCheckFlags(VIR_TYPED_PARAM_STRING_OKAY, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetCPUStatsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuQueryCheckActive(vm) < 0)
        goto cleanup;

    if (start_cpu >= 0) {
        if (nparams == 0 && ncpus == 0) {
            ret = virHostCPUGetCount();        /* CPUs of the host */
        } else if (nparams == 0) {
            ret = 0;                           /* no per-CPU parameters */
        } else {
            virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                           _("per-CPU statistics are not available (no cgroup CPU accounting)"));
        }
        goto cleanup;
    }

    if (nparams == 0) {
        ret = QEMU_QUERY_NB_TOTAL_CPU_STATS;
        goto cleanup;
    }
    if (qemuQueryProcStat(vm->pid, 0, &user, &sys, NULL) < 0)
        goto cleanup;
    ret = 0;
    if (virTypedParameterAssign(&params[ret++], VIR_DOMAIN_CPU_STATS_CPUTIME,
                                VIR_TYPED_PARAM_ULLONG, user + sys) < 0)
        goto error;
    if (nparams > 1 &&
        virTypedParameterAssign(&params[ret++], VIR_DOMAIN_CPU_STATS_USERTIME,
                                VIR_TYPED_PARAM_ULLONG, user) < 0)
        goto error;
    if (nparams > 2 &&
        virTypedParameterAssign(&params[ret++], VIR_DOMAIN_CPU_STATS_SYSTEMTIME,
                                VIR_TYPED_PARAM_ULLONG, sys) < 0)
        goto error;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
 error:
    ret = -1;
    goto cleanup;
}

/* ---------------------------------------------------------------------- */
/* Block devices                                                          */
/* ---------------------------------------------------------------------- */

/* Virtual size of a qcow2 image (big-endian 64 bit at offset 24). */
static int
qemuQueryQcow2VirtualSize(int fd, const char *path, unsigned long long *size)
{
    unsigned char hdr[32];
    size_t i;

    if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t) sizeof(hdr) ||
        memcmp(hdr, "QFI\xfb", 4) != 0) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("'%s' is not a qcow2 image"), path);
        return -1;
    }
    *size = 0;
    for (i = 24; i < 32; i++)
        *size = (*size << 8) | hdr[i];
    return 0;
}

/* Sizes of the image at @path (a file or a block device). */
static int
qemuQueryImageSizes(const char *path, int format, virDomainBlockInfoPtr info)
{
    VIR_AUTOCLOSE fd = -1;
    struct stat sb;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
        virReportSystemError(errno, _("cannot access disk image '%s'"), path);
        return -1;
    }
    if (S_ISBLK(sb.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);

        if (end < 0) {
            virReportSystemError(errno, _("cannot get the size of '%s'"), path);
            return -1;
        }
        info->physical = info->allocation = end;
    } else {
        info->physical = sb.st_size;
        info->allocation = (unsigned long long) sb.st_blocks * 512;
    }
    info->capacity = info->physical;
    if (format == VIR_STORAGE_FILE_QCOW2 &&
        qemuQueryQcow2VirtualSize(fd, path, &info->capacity) < 0)
        return -1;
    return 0;
}

/* Sizes from the image itself (no job, the domain lock released for the
 * file I/O). */
static int
qemuDomainGetBlockInfo(virDomainPtr dom,
                       const char *path,
                       virDomainBlockInfoPtr info,
                       unsigned int flags)
{
    virDomainObj *vm;
    virDomainDiskDef *disk;
    g_autofree char *source = NULL;
    int format = VIR_STORAGE_FILE_RAW;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetBlockInfoEnsureACL(dom->conn, vm->def) < 0)
        goto error;
    if (!(disk = virDomainDiskByName(vm->def, path, false))) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("invalid path %s not assigned to domain"), path);
        goto error;
    }
    if (virStorageSourceIsEmpty(disk->src)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("disk '%s' does not currently have a source assigned"), path);
        goto error;
    }
    if (disk->src->type != VIR_STORAGE_TYPE_FILE &&
        disk->src->type != VIR_STORAGE_TYPE_BLOCK) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("block information of disk '%s' of type '%s' is not supported"),
                       path, virStorageTypeToString(disk->src->type));
        goto error;
    }
    source = g_strdup(disk->src->path);
    if (disk->src->format > VIR_STORAGE_FILE_NONE)
        format = disk->src->format;
    virDomainObjEndAPI(&vm);

    memset(info, 0, sizeof(*info));
    return qemuQueryImageSizes(source, format, info);

 error:
    virDomainObjEndAPI(&vm);
    return -1;
}

/* Block statistics of the disk @path (name, target or source) or, for an
 * empty @path, summed over all disks.  vm locked, a query job held. */
static int
qemuQueryBlockStats(virDomainObj *vm, const char *path, qemuMonitorBlockStats *total)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuMonitorBlockStats *stats = NULL;
    size_t nstats = 0;
    virDomainDiskDef *disk = NULL;
    size_t i;
    int rc;
    int ret = -1;

    memset(total, 0, sizeof(*total));
    if (path && *path && !(disk = virDomainDiskByName(vm->def, path, false))) {
        virReportError(VIR_ERR_INVALID_ARG, _("invalid path: %s"), path);
        return -1;
    }

    if (qemuDomainObjEnterMonitor(vm) < 0)
        return -1;
    rc = qemuMonitorJSONGetBlockStats(priv->mon, &stats, &nstats);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuQueryMonitorFailed(vm);
        goto cleanup;
    }

    for (i = 0; i < vm->def->ndisks; i++) {
        virDomainDiskDef *d = vm->def->disks[i];
        const qemuMonitorBlockStats *st;

        if (disk && d != disk)
            continue;
        if (!(st = qemuMonitorBlockStatsFindByAlias(stats, nstats, d->info.alias))) {
            if (!disk)
                continue;
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("cannot find statistics for device '%s'"), d->dst);
            goto cleanup;
        }
        total->rdReq += st->rdReq;
        total->rdBytes += st->rdBytes;
        total->wrReq += st->wrReq;
        total->wrBytes += st->wrBytes;
        total->flushReq += st->flushReq;
        total->rdTotalTimeNs += st->rdTotalTimeNs;
        total->wrTotalTimeNs += st->wrTotalTimeNs;
        total->flushTotalTimeNs += st->flushTotalTimeNs;
    }
    ret = 0;
 cleanup:
    qemuMonitorBlockStatsFree(stats, nstats);
    return ret;
}

static int
qemuDomainBlockStats(virDomainPtr dom, const char *path, virDomainBlockStatsPtr stats)
{
    virDomainObj *vm;
    qemuMonitorBlockStats total;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainBlockStatsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuQueryBeginJobActive(vm, QEMU_JOB_QUERY) < 0)
        goto cleanup;
    if (qemuQueryBlockStats(vm, path, &total) == 0) {
        stats->rd_req = total.rdReq;
        stats->rd_bytes = total.rdBytes;
        stats->wr_req = total.wrReq;
        stats->wr_bytes = total.wrBytes;
        stats->errs = -1;      /* QEMU does not count errors */
        ret = 0;
    }
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

#define QEMU_QUERY_NB_BLOCK_STATS 8

static int
qemuDomainBlockStatsFlags(virDomainPtr dom,
                          const char *path,
                          virTypedParameterPtr params,
                          int *nparams,
                          unsigned int flags)
{
    virDomainObj *vm;
    qemuMonitorBlockStats total;
    int ret = -1;

    virCheckFlags(VIR_TYPED_PARAM_STRING_OKAY, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainBlockStatsFlagsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (*nparams == 0) {
        *nparams = QEMU_QUERY_NB_BLOCK_STATS;
        ret = 0;
        goto cleanup;
    }
    if (qemuQueryBeginJobActive(vm, QEMU_JOB_QUERY) < 0)
        goto cleanup;
    if (qemuQueryBlockStats(vm, path, &total) == 0) {
        struct {
            const char *name;
            unsigned long long value;
        } fields[] = {
            { VIR_DOMAIN_BLOCK_STATS_WRITE_BYTES, total.wrBytes },
            { VIR_DOMAIN_BLOCK_STATS_WRITE_REQ, total.wrReq },
            { VIR_DOMAIN_BLOCK_STATS_READ_BYTES, total.rdBytes },
            { VIR_DOMAIN_BLOCK_STATS_READ_REQ, total.rdReq },
            { VIR_DOMAIN_BLOCK_STATS_FLUSH_REQ, total.flushReq },
            { VIR_DOMAIN_BLOCK_STATS_WRITE_TOTAL_TIMES, total.wrTotalTimeNs },
            { VIR_DOMAIN_BLOCK_STATS_READ_TOTAL_TIMES, total.rdTotalTimeNs },
            { VIR_DOMAIN_BLOCK_STATS_FLUSH_TOTAL_TIMES, total.flushTotalTimeNs },
        };
        int i;

        G_STATIC_ASSERT(G_N_ELEMENTS(fields) == QEMU_QUERY_NB_BLOCK_STATS);
        for (i = 0; i < *nparams && i < QEMU_QUERY_NB_BLOCK_STATS; i++) {
            if (virTypedParameterAssign(&params[i], fields[i].name,
                                        VIR_TYPED_PARAM_ULLONG, fields[i].value) < 0)
                break;
        }
        if (i == MIN(*nparams, QEMU_QUERY_NB_BLOCK_STATS)) {
            *nparams = i;
            ret = 0;
        }
    }
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Interfaces                                                             */
/* ---------------------------------------------------------------------- */

/* Counters of host interface @ifname from /proc/net/dev.  A tap device
 * sees the guest's traffic the other way round: @swapped turns them. */
static int
qemuQueryNetDevStats(const char *ifname, bool swapped, virDomainInterfaceStatsPtr stats)
{
    g_autofree char *buf = NULL;
    g_auto(GStrv) lines = NULL;
    size_t i;

    if (!g_file_get_contents("/proc/net/dev", &buf, NULL, NULL)) {
        virReportSystemError(errno, "%s", _("cannot read /proc/net/dev"));
        return -1;
    }
    lines = g_strsplit(buf, "\n", 0);
    for (i = 0; lines[i]; i++) {
        char *colon = strchr(lines[i], ':');
        g_auto(GStrv) f = NULL;
        long long v[16];
        size_t n = 0;
        size_t j;

        if (!colon)
            continue;
        *colon = '\0';
        if (STRNEQ(g_strstrip(lines[i]), ifname))
            continue;
        f = g_strsplit_set(colon + 1, " \t", 0);
        for (j = 0; f[j] && n < G_N_ELEMENTS(v); j++) {
            if (*f[j])
                v[n++] = g_ascii_strtoll(f[j], NULL, 10);
        }
        if (n < 12)
            break;
        /* rx: bytes packets errs drop ...; tx from field 8 on */
        if (swapped) {
            stats->rx_bytes = v[8];
            stats->rx_packets = v[9];
            stats->rx_errs = v[10];
            stats->rx_drop = v[11];
            stats->tx_bytes = v[0];
            stats->tx_packets = v[1];
            stats->tx_errs = v[2];
            stats->tx_drop = v[3];
        } else {
            stats->rx_bytes = v[0];
            stats->rx_packets = v[1];
            stats->rx_errs = v[2];
            stats->rx_drop = v[3];
            stats->tx_bytes = v[8];
            stats->tx_packets = v[9];
            stats->tx_errs = v[10];
            stats->tx_drop = v[11];
        }
        return 0;
    }
    virReportError(VIR_ERR_OPERATION_FAILED,
                   _("interface '%s' not found in /proc/net/dev"), ifname);
    return -1;
}

static int
qemuDomainInterfaceStats(virDomainPtr dom,
                         const char *device,
                         virDomainInterfaceStatsPtr stats)
{
    virDomainObj *vm;
    virDomainNetDef *net = NULL;
    virMacAddr mac;
    bool isMac;
    size_t i;
    int ret = -1;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainInterfaceStatsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuQueryCheckActive(vm) < 0)
        goto cleanup;

    isMac = virMacAddrParse(device, &mac) == 0;
    for (i = 0; i < vm->def->nnets && !net; i++) {
        virDomainNetDef *n = vm->def->nets[i];

        if ((isMac && virMacAddrCmp(&mac, &n->mac) == 0) ||
            STREQ_NULLABLE(n->ifname, device) ||
            STREQ_NULLABLE(n->info.alias, device))
            net = n;
    }
    if (!net) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("'%s' is not a known interface"), device);
        goto cleanup;
    }
    if (net->type == VIR_DOMAIN_NET_TYPE_USER) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("interface statistics are not available for user-mode networking (interface '%s')"),
                       device);
        goto cleanup;
    }
    if (!net->ifname) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("interface '%s' has no host device"), device);
        goto cleanup;
    }
    memset(stats, 0, sizeof(*stats));
    ret = qemuQueryNetDevStats(net->ifname, true, stats);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Control state                                                          */
/* ---------------------------------------------------------------------- */

/* From the job state under the domain lock: no job, no wait. */
static int
qemuDomainGetControlInfo(virDomainPtr dom, virDomainControlInfoPtr info, unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    unsigned long long now;
    int ret = -1;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainGetControlInfoEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuQueryCheckActive(vm) < 0)
        goto cleanup;
    if (virTimeMillisNow(&now) < 0)
        goto cleanup;

    memset(info, 0, sizeof(*info));
    if (priv->mon && qemuMonitorIsUnresponsive(priv->mon)) {
        info->state = VIR_DOMAIN_CONTROL_ERROR;
        info->details = VIR_DOMAIN_CONTROL_ERROR_REASON_MONITOR;
    } else if (priv->job.asyncJob != QEMU_ASYNC_JOB_NONE) {
        info->state = VIR_DOMAIN_CONTROL_JOB;
        if (now > priv->job.asyncStarted)
            info->stateTime = now - priv->job.asyncStarted;
    } else if (priv->job.active != QEMU_JOB_NONE || priv->job.destroying) {
        unsigned long long since = priv->job.active != QEMU_JOB_NONE ?
                                   priv->job.started : priv->job.destroyStarted;

        info->state = VIR_DOMAIN_CONTROL_OCCUPIED;
        if (now > since)
            info->stateTime = now - since;
    } else {
        info->state = VIR_DOMAIN_CONTROL_OK;
    }
    ret = 0;
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Setup and registration                                                 */
/* ---------------------------------------------------------------------- */

int
qemuDomainQuerySetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long actual = 0;
    int period;
    int rcActual;

    priv->nmemStats = 0;
    if (qemuQueryApplyVcpuPinning(vm, 0) < 0) {
        /* a start fails, as libvirt; a running guest found again at
         * reconnect is not killed for it */
        if (asyncJob != QEMU_ASYNC_JOB_NONE)
            return -1;
        VIR_WARN("cannot apply the vCPU pinning of domain '%s': %s",
                 vm->def->name, virGetLastErrorMessage());
        virResetLastError();
    }
    if (!virDomainDefHasMemballoon(vm->def))
        return 0;

    period = vm->def->memballoon->period;
    {
        g_autofree char *path = qemuQueryBalloonPath(vm->def);

        if (qemuQueryEnterMonitor(vm, asyncJob) < 0)
            return -1;
        rcActual = qemuMonitorJSONGetBalloonInfo(priv->mon, &actual);
        if (rcActual < 0)
            virResetLastError();
        if (period > 0 &&
            qemuMonitorJSONSetBalloonStatsPeriod(priv->mon, path, period) < 0) {
            VIR_WARN("cannot set the balloon statistics period of domain '%s': %s",
                     vm->def->name, virGetLastErrorMessage());
            virResetLastError();
        }
        if (qemuDomainObjExitMonitor(vm) < 0)
            return -1;
    }
    /* at reconnect the size QEMU last announced is not known otherwise */
    if (rcActual == 0)
        priv->balloonCur = actual;
    return 0;
}

void
qemuDomainQueryRegister(virHypervisorDriver *driver)
{
    driver->domainMemoryStats = qemuDomainMemoryStats;
    driver->domainSetMemoryStatsPeriod = qemuDomainSetMemoryStatsPeriod;
    driver->domainSetMemory = qemuDomainSetMemory;
    driver->domainSetMemoryFlags = qemuDomainSetMemoryFlags;
    driver->domainSetMaxMemory = qemuDomainSetMaxMemory;
    driver->domainGetVcpusFlags = qemuDomainGetVcpusFlags;
    driver->domainGetMaxVcpus = qemuDomainGetMaxVcpus;
    driver->domainSetVcpus = qemuDomainSetVcpus;
    driver->domainSetVcpusFlags = qemuDomainSetVcpusFlags;
    driver->domainGetVcpus = qemuDomainGetVcpus;
    driver->domainGetVcpuPinInfo = qemuDomainGetVcpuPinInfo;
    driver->domainPinVcpu = qemuDomainPinVcpu;
    driver->domainPinVcpuFlags = qemuDomainPinVcpuFlags;
    driver->domainGetCPUStats = qemuDomainGetCPUStats;
    driver->domainGetBlockInfo = qemuDomainGetBlockInfo;
    driver->domainBlockStats = qemuDomainBlockStats;
    driver->domainBlockStatsFlags = qemuDomainBlockStatsFlags;
    driver->domainInterfaceStats = qemuDomainInterfaceStats;
    driver->domainGetControlInfo = qemuDomainGetControlInfo;
}
