/*
 * qemu_monitor_json.c: QMP command builders and reply parsers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_monitor_json.h"
#include "virerror.h"
#include "virlog.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_monitor_json");

static const char *const qemuMonitorVMStatusNames[] = {
    "debug", "inmigrate", "internal-error", "io-error", "paused",
    "postmigrate", "prelaunch", "finish-migrate", "restore-vm",
    "running", "save-vm", "shutdown", "suspended", "watchdog",
    "guest-panicked", "colo",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuMonitorVMStatusNames) == QEMU_MONITOR_VM_STATUS_LAST);

/* Paused reason per run state, same order as qemuMonitorVMStatus. */
static const int qemuMonitorVMStatusPausedReasons[] = {
    VIR_DOMAIN_PAUSED_UNKNOWN,        /* debug */
    VIR_DOMAIN_PAUSED_MIGRATION,      /* inmigrate */
    VIR_DOMAIN_PAUSED_UNKNOWN,        /* internal-error */
    VIR_DOMAIN_PAUSED_IOERROR,        /* io-error */
    VIR_DOMAIN_PAUSED_USER,           /* paused */
    VIR_DOMAIN_PAUSED_MIGRATION,      /* postmigrate */
    VIR_DOMAIN_PAUSED_STARTING_UP,    /* prelaunch */
    VIR_DOMAIN_PAUSED_MIGRATION,      /* finish-migrate */
    VIR_DOMAIN_PAUSED_FROM_SNAPSHOT,  /* restore-vm */
    VIR_DOMAIN_PAUSED_UNKNOWN,        /* running */
    VIR_DOMAIN_PAUSED_SNAPSHOT,       /* save-vm */
    VIR_DOMAIN_PAUSED_SHUTTING_DOWN,  /* shutdown */
    VIR_DOMAIN_PAUSED_UNKNOWN,        /* suspended */
    VIR_DOMAIN_PAUSED_WATCHDOG,       /* watchdog */
    VIR_DOMAIN_PAUSED_CRASHED,        /* guest-panicked */
    VIR_DOMAIN_PAUSED_UNKNOWN,        /* colo */
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuMonitorVMStatusPausedReasons) ==
                QEMU_MONITOR_VM_STATUS_LAST);


const char *
qemuMonitorVMStatusTypeToString(int type)
{
    if (type < 0 || type >= QEMU_MONITOR_VM_STATUS_LAST)
        return NULL;
    return qemuMonitorVMStatusNames[type];
}


int
qemuMonitorVMStatusTypeFromString(const char *str)
{
    size_t i;

    if (!str)
        return -1;
    for (i = 0; i < QEMU_MONITOR_VM_STATUS_LAST; i++) {
        if (STREQ(qemuMonitorVMStatusNames[i], str))
            return i;
    }
    return -1;
}


int
qemuMonitorVMStatusToPausedReason(int status)
{
    if (status < 0 || status >= QEMU_MONITOR_VM_STATUS_LAST)
        return VIR_DOMAIN_PAUSED_UNKNOWN;
    return qemuMonitorVMStatusPausedReasons[status];
}


/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Sends @cmd and checks the reply for an error; *@reply may be NULL. */
static int
qemuMonitorJSONCommand(qemuMonitor *mon,
                       tdmJSONValue **cmd,
                       qemuMonitorCommandClass cmdClass,
                       tdmJSONValue **reply)
{
    g_autoptr(tdmJSONValue) rep = NULL;
    g_autofree char *cmdname = NULL;

    if (!*cmd)
        return -1;
    cmdname = g_strdup(tdmJSONValueObjectGetString(*cmd, "execute"));

    if (qemuMonitorSendCommand(mon, cmd, cmdClass, &rep) < 0)
        return -1;
    if (qemuMonitorReplyCheckError(cmdname, rep) < 0)
        return -1;
    if (reply)
        *reply = g_steal_pointer(&rep);
    return 0;
}


/* A command with no arguments whose "return" is not interesting. */
static int
qemuMonitorJSONSimpleCommand(qemuMonitor *mon,
                             const char *cmdname,
                             qemuMonitorCommandClass cmdClass)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild(cmdname, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, cmdClass, NULL);
}


/* The "return" member of @reply with the wanted type, or an error. */
static tdmJSONValue *
qemuMonitorJSONGetReturn(tdmJSONValue *reply,
                         const char *cmdname,
                         tdmJSONType type)
{
    tdmJSONValue *ret;

    if (qemuMonitorReplyCheckError(cmdname, reply) < 0)
        return NULL;

    if (!(ret = tdmJSONValueObjectGetByType(reply, "return", type))) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("reply to QEMU command '%s' is not an %s"),
                       cmdname, tdmJSONTypeToString(type));
        return NULL;
    }
    return ret;
}


static void
qemuMonitorJSONMissing(const char *cmdname, const char *field)
{
    virReportError(VIR_ERR_INTERNAL_ERROR,
                   _("reply to QEMU command '%s' lacks a valid '%s'"),
                   cmdname, field);
}


/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

int
qemuMonitorJSONSetCapabilities(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "qmp_capabilities",
                                        QEMU_MONITOR_CMD_CLASS_QUERY);
}


int
qemuMonitorJSONParseQueryStatusReply(tdmJSONValue *reply,
                                     bool *running, int *status)
{
    tdmJSONValue *ret;
    const char *str;
    int st;

    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-status", TDM_JSON_TYPE_OBJECT)))
        return -1;

    if (tdmJSONValueObjectGetBoolean(ret, "running", running) < 0) {
        qemuMonitorJSONMissing("query-status", "running");
        return -1;
    }

    str = tdmJSONValueObjectGetString(ret, "status");
    if ((st = qemuMonitorVMStatusTypeFromString(str)) < 0) {
        VIR_DEBUG("unknown QEMU run state '%s'", NULLSTR(str));
        st = *running ? QEMU_MONITOR_VM_STATUS_RUNNING : QEMU_MONITOR_VM_STATUS_PAUSED;
    }
    if (status)
        *status = st;
    return 0;
}


int
qemuMonitorJSONQueryStatus(qemuMonitor *mon, bool *running, int *status)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-status", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQueryStatusReply(reply, running, status);
}


int
qemuMonitorJSONStartCPUs(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "cont", QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONStopCPUs(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "stop", QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONSystemPowerdown(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "system_powerdown",
                                        QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONSystemReset(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "system_reset",
                                        QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONQuit(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "quit", QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONParseBalloonReply(tdmJSONValue *reply,
                                 unsigned long long *currmem)
{
    tdmJSONValue *ret;
    unsigned long long actual;

    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-balloon", TDM_JSON_TYPE_OBJECT)))
        return -1;

    if (tdmJSONValueObjectGetNumberULLong(ret, "actual", &actual) < 0) {
        qemuMonitorJSONMissing("query-balloon", "actual");
        return -1;
    }
    *currmem = actual / 1024;
    return 0;
}


int
qemuMonitorJSONGetBalloonInfo(qemuMonitor *mon, unsigned long long *currmem)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-balloon", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseBalloonReply(reply, currmem);
}


int
qemuMonitorJSONSetBalloon(qemuMonitor *mon, unsigned long long newmem)
{
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (newmem > ULLONG_MAX / 1024) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("balloon size %llu KiB is too large"), newmem);
        return -1;
    }
    cmd = tdmJSONCommandBuild("balloon", "U:value", newmem * 1024, NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


void
qemuMonitorCPUInfoFree(qemuMonitorCPUInfo *cpus, size_t ncpus)
{
    size_t i;

    if (!cpus)
        return;
    for (i = 0; i < ncpus; i++) {
        g_free(cpus[i].qomPath);
        g_free(cpus[i].target);
    }
    g_free(cpus);
}


int
qemuMonitorJSONParseCPUsFastReply(tdmJSONValue *reply,
                                  qemuMonitorCPUInfo **cpus,
                                  size_t *ncpus)
{
    tdmJSONValue *ret;
    qemuMonitorCPUInfo *list = NULL;
    size_t n;
    size_t i;

    *cpus = NULL;
    *ncpus = 0;

    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-cpus-fast", TDM_JSON_TYPE_ARRAY)))
        return -1;

    n = tdmJSONValueArraySize(ret);
    list = g_new0(qemuMonitorCPUInfo, n);
    for (i = 0; i < n; i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(ret, i);
        tdmJSONValue *props;
        qemuMonitorCPUInfo *cpu = list + i;

        if (tdmJSONValueGetType(entry) != TDM_JSON_TYPE_OBJECT ||
            tdmJSONValueObjectGetNumberInt(entry, "cpu-index", &cpu->cpuIndex) < 0 ||
            tdmJSONValueObjectGetNumberLLong(entry, "thread-id", &cpu->threadId) < 0) {
            qemuMonitorJSONMissing("query-cpus-fast", "cpu-index/thread-id");
            qemuMonitorCPUInfoFree(list, n);
            return -1;
        }
        cpu->qomPath = g_strdup(tdmJSONValueObjectGetString(entry, "qom-path"));
        cpu->target = g_strdup(tdmJSONValueObjectGetString(entry, "target"));
        cpu->socketId = cpu->coreId = cpu->threadIdInCore = cpu->nodeId = -1;
        if ((props = tdmJSONValueObjectGetObject(entry, "props"))) {
            ignore_value(tdmJSONValueObjectGetNumberInt(props, "socket-id", &cpu->socketId));
            ignore_value(tdmJSONValueObjectGetNumberInt(props, "core-id", &cpu->coreId));
            ignore_value(tdmJSONValueObjectGetNumberInt(props, "thread-id",
                                                        &cpu->threadIdInCore));
            ignore_value(tdmJSONValueObjectGetNumberInt(props, "node-id", &cpu->nodeId));
        }
    }

    *cpus = list;
    *ncpus = n;
    return 0;
}


int
qemuMonitorJSONQueryCPUsFast(qemuMonitor *mon,
                             qemuMonitorCPUInfo **cpus,
                             size_t *ncpus)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-cpus-fast", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *cpus = NULL;
    *ncpus = 0;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseCPUsFastReply(reply, cpus, ncpus);
}


void
qemuMonitorBlockStatsFree(qemuMonitorBlockStats *stats, size_t nstats)
{
    size_t i;

    if (!stats)
        return;
    for (i = 0; i < nstats; i++) {
        g_free(stats[i].device);
        g_free(stats[i].qdev);
        g_free(stats[i].nodeName);
    }
    g_free(stats);
}


int
qemuMonitorJSONParseBlockStatsReply(tdmJSONValue *reply,
                                    qemuMonitorBlockStats **stats,
                                    size_t *nstats)
{
    tdmJSONValue *ret;
    qemuMonitorBlockStats *list;
    size_t n;
    size_t i;

    *stats = NULL;
    *nstats = 0;

    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-blockstats", TDM_JSON_TYPE_ARRAY)))
        return -1;

    n = tdmJSONValueArraySize(ret);
    list = g_new0(qemuMonitorBlockStats, n);
    for (i = 0; i < n; i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(ret, i);
        tdmJSONValue *st;
        qemuMonitorBlockStats *bs = list + i;
        struct {
            const char *name;
            unsigned long long *field;
        } fields[] = {
            { "rd_operations", &bs->rdReq },
            { "rd_bytes", &bs->rdBytes },
            { "wr_operations", &bs->wrReq },
            { "wr_bytes", &bs->wrBytes },
            { "flush_operations", &bs->flushReq },
            { "rd_total_time_ns", &bs->rdTotalTimeNs },
            { "wr_total_time_ns", &bs->wrTotalTimeNs },
            { "flush_total_time_ns", &bs->flushTotalTimeNs },
            { "wr_highest_offset", &bs->wrHighestOffset },
        };
        size_t j;

        if (tdmJSONValueGetType(entry) != TDM_JSON_TYPE_OBJECT ||
            !(st = tdmJSONValueObjectGetObject(entry, "stats"))) {
            qemuMonitorJSONMissing("query-blockstats", "stats");
            qemuMonitorBlockStatsFree(list, n);
            return -1;
        }
        bs->device = g_strdup(tdmJSONValueObjectGetString(entry, "device"));
        bs->qdev = g_strdup(tdmJSONValueObjectGetString(entry, "qdev"));
        bs->nodeName = g_strdup(tdmJSONValueObjectGetString(entry, "node-name"));
        for (j = 0; j < G_N_ELEMENTS(fields); j++)
            ignore_value(tdmJSONValueObjectGetNumberULLong(st, fields[j].name,
                                                           fields[j].field));
    }

    *stats = list;
    *nstats = n;
    return 0;
}


int
qemuMonitorJSONGetBlockStats(qemuMonitor *mon,
                             qemuMonitorBlockStats **stats,
                             size_t *nstats)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-blockstats", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *stats = NULL;
    *nstats = 0;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseBlockStatsReply(reply, stats, nstats);
}


void
qemuMonitorBlockInfoFree(qemuMonitorBlockInfo *info, size_t ninfo)
{
    size_t i;

    if (!info)
        return;
    for (i = 0; i < ninfo; i++) {
        g_free(info[i].device);
        g_free(info[i].qdev);
        g_free(info[i].ioStatus);
        g_free(info[i].file);
        g_free(info[i].nodeName);
        g_free(info[i].format);
    }
    g_free(info);
}


int
qemuMonitorJSONParseQueryBlockReply(tdmJSONValue *reply,
                                    qemuMonitorBlockInfo **info,
                                    size_t *ninfo)
{
    tdmJSONValue *ret;
    qemuMonitorBlockInfo *list;
    size_t n;
    size_t i;

    *info = NULL;
    *ninfo = 0;

    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-block", TDM_JSON_TYPE_ARRAY)))
        return -1;

    n = tdmJSONValueArraySize(ret);
    list = g_new0(qemuMonitorBlockInfo, n);
    for (i = 0; i < n; i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(ret, i);
        tdmJSONValue *inserted;
        tdmJSONValue *image;
        qemuMonitorBlockInfo *bi = list + i;

        if (tdmJSONValueGetType(entry) != TDM_JSON_TYPE_OBJECT ||
            tdmJSONValueObjectGetBoolean(entry, "removable", &bi->removable) < 0 ||
            tdmJSONValueObjectGetBoolean(entry, "locked", &bi->locked) < 0) {
            qemuMonitorJSONMissing("query-block", "removable/locked");
            qemuMonitorBlockInfoFree(list, n);
            return -1;
        }
        bi->device = g_strdup(tdmJSONValueObjectGetString(entry, "device"));
        bi->qdev = g_strdup(tdmJSONValueObjectGetString(entry, "qdev"));
        bi->ioStatus = g_strdup(tdmJSONValueObjectGetString(entry, "io-status"));
        ignore_value(tdmJSONValueObjectGetBoolean(entry, "tray_open", &bi->trayOpen));
        if ((inserted = tdmJSONValueObjectGetObject(entry, "inserted"))) {
            bi->inserted = true;
            bi->file = g_strdup(tdmJSONValueObjectGetString(inserted, "file"));
            bi->nodeName = g_strdup(tdmJSONValueObjectGetString(inserted, "node-name"));
            bi->format = g_strdup(tdmJSONValueObjectGetString(inserted, "drv"));
            ignore_value(tdmJSONValueObjectGetBoolean(inserted, "ro", &bi->readonly));
            if ((image = tdmJSONValueObjectGetObject(inserted, "image")))
                ignore_value(tdmJSONValueObjectGetNumberULLong(image, "virtual-size",
                                                               &bi->virtualSize));
        }
    }

    *info = list;
    *ninfo = n;
    return 0;
}


int
qemuMonitorJSONQueryBlock(qemuMonitor *mon,
                          qemuMonitorBlockInfo **info,
                          size_t *ninfo)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-block", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *info = NULL;
    *ninfo = 0;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQueryBlockReply(reply, info, ninfo);
}


void
qemuMonitorMigrationStatsClear(qemuMonitorMigrationStats *stats)
{
    if (!stats)
        return;
    g_free(stats->errorDesc);
    memset(stats, 0, sizeof(*stats));
}


int
qemuMonitorJSONParseQueryMigrateReply(tdmJSONValue *reply,
                                      qemuMonitorMigrationStats *stats)
{
    tdmJSONValue *ret;
    tdmJSONValue *ram;
    tdmJSONValue *disk;
    const char *status;

    memset(stats, 0, sizeof(*stats));

    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-migrate", TDM_JSON_TYPE_OBJECT)))
        return -1;

    /* before any migration QEMU answers {} */
    status = tdmJSONValueObjectGetString(ret, "status");
    if (!status) {
        stats->status = QEMU_MONITOR_MIGRATION_STATUS_INACTIVE;
        return 0;
    }
    if ((stats->status = qemuMonitorMigrationStatusTypeFromString(status)) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unknown migration status '%s' from QEMU"), status);
        stats->status = QEMU_MONITOR_MIGRATION_STATUS_INACTIVE;
        return -1;
    }

    stats->errorDesc = g_strdup(tdmJSONValueObjectGetString(ret, "error-desc"));
    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "total-time", &stats->totalTime));
    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "setup-time", &stats->setupTime));
    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "downtime", &stats->downtime));
    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "expected-downtime",
                                                   &stats->expectedDowntime));

    if ((ram = tdmJSONValueObjectGetObject(ret, "ram"))) {
        stats->haveRam = true;
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "transferred",
                                                       &stats->ramTransferred));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "remaining",
                                                       &stats->ramRemaining));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "total", &stats->ramTotal));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "duplicate",
                                                       &stats->ramDuplicate));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "normal", &stats->ramNormal));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "normal-bytes",
                                                       &stats->ramNormalBytes));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "dirty-pages-rate",
                                                       &stats->ramDirtyRate));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "dirty-sync-count",
                                                       &stats->ramIteration));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "postcopy-requests",
                                                       &stats->ramPostcopyReqs));
        ignore_value(tdmJSONValueObjectGetNumberULLong(ram, "page-size",
                                                       &stats->ramPageSize));
        ignore_value(tdmJSONValueObjectGetNumberDouble(ram, "mbps", &stats->ramMbps));
    }

    if ((disk = tdmJSONValueObjectGetObject(ret, "disk"))) {
        stats->haveDisk = true;
        ignore_value(tdmJSONValueObjectGetNumberULLong(disk, "transferred",
                                                       &stats->diskTransferred));
        ignore_value(tdmJSONValueObjectGetNumberULLong(disk, "remaining",
                                                       &stats->diskRemaining));
        ignore_value(tdmJSONValueObjectGetNumberULLong(disk, "total", &stats->diskTotal));
    }
    return 0;
}


int
qemuMonitorJSONQueryMigrate(qemuMonitor *mon, qemuMonitorMigrationStats *stats)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-migrate", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    memset(stats, 0, sizeof(*stats));
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQueryMigrateReply(reply, stats);
}


int
qemuMonitorJSONMigrate(qemuMonitor *mon, const char *uri, bool resume)
{
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (!uri) {
        virReportError(VIR_ERR_INVALID_ARG, "%s", _("missing migration URI"));
        return -1;
    }
    cmd = tdmJSONCommandBuild("migrate", "s:uri", uri, "B:resume", resume, NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONMigrateCancel(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "migrate_cancel",
                                        QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONSetMigrationParams(qemuMonitor *mon, tdmJSONValue **params)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuildArgs("migrate-set-parameters",
                                                          params);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONGetMigrationParams(qemuMonitor *mon, tdmJSONValue **params)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-migrate-parameters", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *params = NULL;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    if (!qemuMonitorJSONGetReturn(reply, "query-migrate-parameters", TDM_JSON_TYPE_OBJECT))
        return -1;
    *params = tdmJSONValueObjectSteal(reply, "return");
    return 0;
}


int
qemuMonitorJSONHumanCommand(qemuMonitor *mon,
                            const char *cmdline,
                            char **reply)
{
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) rep = NULL;
    tdmJSONValue *ret;

    *reply = NULL;
    if (!(cmd = tdmJSONCommandBuild("human-monitor-command",
                                    "s:command-line", cmdline, NULL)))
        return -1;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_LONG, &rep) < 0)
        return -1;
    if (!(ret = qemuMonitorJSONGetReturn(rep, "human-monitor-command",
                                         TDM_JSON_TYPE_STRING)))
        return -1;
    *reply = g_strdup(tdmJSONValueGetString(ret));
    return 0;
}


int
qemuMonitorJSONArbitraryCommand(qemuMonitor *mon,
                                const char *cmdstr,
                                char **reply)
{
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) rep = NULL;
    g_autoptr(tdmJSONValue) userId = NULL;
    const char *cmdname;
    qemuMonitorCommandClass cmdClass = QEMU_MONITOR_CMD_CLASS_LONG;

    *reply = NULL;

    if (!(cmd = tdmJSONValueFromString(cmdstr)))
        return -1;
    if (tdmJSONValueGetType(cmd) != TDM_JSON_TYPE_OBJECT ||
        !(cmdname = tdmJSONValueObjectGetString(cmd, "execute"))) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("a QMP command must be a JSON object with an 'execute' member"));
        return -1;
    }
    if (STREQ(cmdname, "qmp_capabilities")) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("QMP capabilities are already negotiated"));
        return -1;
    }
    if (tdmJSONValueObjectHasKey(cmd, "arguments") &&
        !tdmJSONValueObjectGetObject(cmd, "arguments")) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("QMP command 'arguments' must be a JSON object"));
        return -1;
    }

    /* the monitor owns the "id"; give the caller's back in the reply */
    userId = tdmJSONValueObjectSteal(cmd, "id");

    if (qemuMonitorSendCommand(mon, &cmd, cmdClass, &rep) < 0)
        return -1;

    ignore_value(tdmJSONValueObjectRemove(rep, "id"));
    if (userId && tdmJSONValueObjectSet(rep, "id", &userId) < 0)
        return -1;

    if (!(*reply = tdmJSONValueToString(rep, false)))
        return -1;
    return 0;
}


/* ------------------------------------------------------------------ */
/* Devices: character devices, displays, keyboard, removable media     */
/* ------------------------------------------------------------------ */

int
qemuMonitorJSONParseQueryChardevReply(tdmJSONValue *reply,
                                      GHashTable **ptys)
{
    tdmJSONValue *ret;
    g_autoptr(GHashTable) table = NULL;
    size_t n;
    size_t i;

    *ptys = NULL;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-chardev", TDM_JSON_TYPE_ARRAY)))
        return -1;

    table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    n = tdmJSONValueArraySize(ret);
    for (i = 0; i < n; i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(ret, i);
        const char *label;
        const char *filename;

        if (tdmJSONValueGetType(entry) != TDM_JSON_TYPE_OBJECT ||
            !(label = tdmJSONValueObjectGetString(entry, "label")) ||
            !(filename = tdmJSONValueObjectGetString(entry, "filename"))) {
            qemuMonitorJSONMissing("query-chardev", "label/filename");
            return -1;
        }
        if (STRPREFIX(filename, "pty:") && filename[4])
            g_hash_table_insert(table, g_strdup(label), g_strdup(filename + 4));
    }
    *ptys = g_steal_pointer(&table);
    return 0;
}


int
qemuMonitorJSONQueryChardevPtys(qemuMonitor *mon, GHashTable **ptys)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-chardev", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *ptys = NULL;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQueryChardevReply(reply, ptys);
}


int
qemuMonitorJSONSetPassword(qemuMonitor *mon,
                           const char *protocol,
                           const char *password,
                           const char *connected)
{
    g_autoptr(tdmJSONValue) cmd = NULL;

    cmd = tdmJSONCommandBuild("set_password",
                              "s:protocol", protocol,
                              "s:password", password ? password : "",
                              "S:connected", connected,
                              NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONSendFileHandle(qemuMonitor *mon, const char *fdname, int fd)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("getfd", "s:fdname", fdname, NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    if (!cmd)
        return -1;
    if (qemuMonitorSendCommandWithFd(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, fd, &reply) < 0)
        return -1;
    return qemuMonitorReplyCheckError("getfd", reply);
}


int
qemuMonitorJSONCloseFileHandle(qemuMonitor *mon, const char *fdname)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("closefd", "s:fdname", fdname, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONAddClient(qemuMonitor *mon, const char *protocol,
                         const char *fdname, bool skipauth)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("add_client",
                                                      "s:protocol", protocol,
                                                      "s:fdname", fdname,
                                                      "b:skipauth", skipauth,
                                                      NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONExpirePassword(qemuMonitor *mon,
                              const char *protocol,
                              const char *expireTime)
{
    g_autoptr(tdmJSONValue) cmd = NULL;

    cmd = tdmJSONCommandBuild("expire_password",
                              "s:protocol", protocol,
                              "s:time", expireTime,
                              NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONScreendump(qemuMonitor *mon,
                          const char *device,
                          int head,
                          const char *format,
                          const char *file)
{
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) args = tdmJSONValueNewObject();

    if (tdmJSONValueObjectAdd(args, "s:filename", file,
                              "S:device", device,
                              "S:format", format, NULL) < 0)
        return -1;
    if (device && head >= 0 &&
        tdmJSONValueObjectAdd(args, "i:head", head, NULL) < 0)
        return -1;
    cmd = tdmJSONCommandBuildArgs("screendump", &args);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_LONG, NULL);
}


int
qemuMonitorJSONSendKey(qemuMonitor *mon,
                       unsigned int holdtime,
                       const unsigned int *keycodes,
                       size_t nkeycodes)
{
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) keys = tdmJSONValueNewArray();
    g_autoptr(tdmJSONValue) args = NULL;
    size_t i;

    for (i = 0; i < nkeycodes; i++) {
        g_autoptr(tdmJSONValue) key = NULL;

        if (tdmJSONValueObjectCreate(&key,
                                     "s:type", "number",
                                     "u:data", keycodes[i], NULL) < 0 ||
            tdmJSONValueArrayAppend(keys, &key) < 0)
            return -1;
    }
    if (tdmJSONValueObjectCreate(&args, "a:keys", &keys, NULL) < 0)
        return -1;
    if (holdtime &&
        tdmJSONValueObjectAdd(args, "u:hold-time", holdtime, NULL) < 0)
        return -1;
    cmd = tdmJSONCommandBuildArgs("send-key", &args);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockdevTrayOpen(qemuMonitor *mon, const char *id, bool force)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("blockdev-open-tray",
                                                      "s:id", id,
                                                      "b:force", force, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockdevTrayClose(qemuMonitor *mon, const char *id)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("blockdev-close-tray",
                                                      "s:id", id, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockdevMediumRemove(qemuMonitor *mon, const char *id)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("blockdev-remove-medium",
                                                      "s:id", id, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockdevMediumInsert(qemuMonitor *mon,
                                    const char *id,
                                    const char *nodeName)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("blockdev-insert-medium",
                                                      "s:id", id,
                                                      "s:node-name", nodeName, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockdevAdd(qemuMonitor *mon, tdmJSONValue **props)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuildArgs("blockdev-add", props);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockdevDel(qemuMonitor *mon, const char *nodeName)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("blockdev-del",
                                                      "s:node-name", nodeName, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONQueryNamedBlockNodeNames(qemuMonitor *mon, char ***names)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-named-block-nodes",
                                                      "b:flat", true, NULL);
    g_autoptr(tdmJSONValue) reply = NULL;
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);
    tdmJSONValue *ret;
    size_t n;
    size_t i;

    *names = NULL;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-named-block-nodes",
                                         TDM_JSON_TYPE_ARRAY)))
        return -1;
    n = tdmJSONValueArraySize(ret);
    for (i = 0; i < n; i++) {
        const char *name = tdmJSONValueObjectGetString(tdmJSONValueArrayGet(ret, i),
                                                       "node-name");

        if (name)
            g_ptr_array_add(list, g_strdup(name));
    }
    g_ptr_array_add(list, NULL);
    *names = (char **) g_ptr_array_free(g_steal_pointer(&list), FALSE);
    return 0;
}


/* ------------------------------------------------------------------ */
/* Balloon statistics, vCPU hotplug (qemu_domain_query.c)             */
/* ------------------------------------------------------------------ */

const qemuMonitorBlockStats *
qemuMonitorBlockStatsFindByAlias(const qemuMonitorBlockStats *stats,
                                 size_t nstats,
                                 const char *alias)
{
    g_autofree char *inPath = NULL;
    g_autofree char *atEnd = NULL;
    size_t i;

    if (!alias)
        return NULL;
    inPath = g_strdup_printf("/%s/", alias);
    atEnd = g_strdup_printf("/%s", alias);
    for (i = 0; i < nstats; i++) {
        const char *qdev = stats[i].qdev;

        if ((qdev && (STREQ(qdev, alias) || strstr(qdev, inPath) ||
                      g_str_has_suffix(qdev, atEnd))) ||
            STREQ_NULLABLE(stats[i].device, alias))
            return &stats[i];
    }
    return NULL;
}


/* QEMU's guest-stats member names, their libvirt tags and the divisor
 * that turns them into libvirt's units (KiB for sizes). */
static const struct {
    const char *name;
    int tag;
    unsigned long long divisor;
} qemuMonitorBalloonStatNames[] = {
    { "stat-swap-in", VIR_DOMAIN_MEMORY_STAT_SWAP_IN, 1024 },
    { "stat-swap-out", VIR_DOMAIN_MEMORY_STAT_SWAP_OUT, 1024 },
    { "stat-major-faults", VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT, 1 },
    { "stat-minor-faults", VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT, 1 },
    { "stat-free-memory", VIR_DOMAIN_MEMORY_STAT_UNUSED, 1024 },
    { "stat-total-memory", VIR_DOMAIN_MEMORY_STAT_AVAILABLE, 1024 },
    { "stat-available-memory", VIR_DOMAIN_MEMORY_STAT_USABLE, 1024 },
    { "stat-disk-caches", VIR_DOMAIN_MEMORY_STAT_DISK_CACHES, 1024 },
    { "stat-htlb-pgalloc", VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGALLOC, 1 },
    { "stat-htlb-pgfail", VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGFAIL, 1 },
};


int
qemuMonitorJSONParseBalloonGuestStatsReply(tdmJSONValue *reply,
                                           virDomainMemoryStatPtr stats,
                                           unsigned int nr_stats,
                                           unsigned int *nfilled)
{
    tdmJSONValue *ret;
    tdmJSONValue *data;
    unsigned long long val;
    unsigned long long lastUpdate = 0;
    unsigned int got = 0;
    size_t i;

    *nfilled = 0;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "qom-get", TDM_JSON_TYPE_OBJECT)))
        return -1;
    if (!(data = tdmJSONValueObjectGetObject(ret, "stats"))) {
        qemuMonitorJSONMissing("qom-get", "stats");
        return -1;
    }

    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "last-update", &lastUpdate));
    /* the guest driver has not reported yet: nothing to give */
    if (lastUpdate == 0)
        return 0;

    for (i = 0; i < G_N_ELEMENTS(qemuMonitorBalloonStatNames) && got < nr_stats; i++) {
        /* QEMU says -1 (all ones) for what the guest does not collect */
        if (tdmJSONValueObjectGetNumberULLong(data, qemuMonitorBalloonStatNames[i].name,
                                              &val) < 0 ||
            val == ULLONG_MAX)
            continue;
        stats[got].tag = qemuMonitorBalloonStatNames[i].tag;
        stats[got].val = val / qemuMonitorBalloonStatNames[i].divisor;
        got++;
    }
    if (got < nr_stats) {
        stats[got].tag = VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE;
        stats[got].val = lastUpdate;
        got++;
    }
    *nfilled = got;
    return 0;
}


int
qemuMonitorJSONGetBalloonGuestStats(qemuMonitor *mon,
                                    const char *path,
                                    virDomainMemoryStatPtr stats,
                                    unsigned int nr_stats,
                                    unsigned int *nfilled)
{
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;

    *nfilled = 0;
    if (!(cmd = tdmJSONCommandBuild("qom-get", "s:path", path,
                                    "s:property", "guest-stats", NULL)))
        return -1;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseBalloonGuestStatsReply(reply, stats, nr_stats, nfilled);
}


int
qemuMonitorJSONSetBalloonStatsPeriod(qemuMonitor *mon,
                                     const char *path,
                                     int period)
{
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (period < 0) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("invalid balloon statistics period %d"), period);
        return -1;
    }
    cmd = tdmJSONCommandBuild("qom-set", "s:path", path,
                              "s:property", "guest-stats-polling-interval",
                              "i:value", period, NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


void
qemuMonitorHotpluggableCPUFree(qemuMonitorHotpluggableCPU *cpus, size_t ncpus)
{
    size_t i;

    if (!cpus)
        return;
    for (i = 0; i < ncpus; i++) {
        g_free(cpus[i].type);
        g_free(cpus[i].qomPath);
    }
    g_free(cpus);
}


int
qemuMonitorJSONParseHotpluggableCPUsReply(tdmJSONValue *reply,
                                          qemuMonitorHotpluggableCPU **cpus,
                                          size_t *ncpus)
{
    tdmJSONValue *ret;
    qemuMonitorHotpluggableCPU *list;
    size_t n;
    size_t i;

    *cpus = NULL;
    *ncpus = 0;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-hotpluggable-cpus",
                                         TDM_JSON_TYPE_ARRAY)))
        return -1;

    n = tdmJSONValueArraySize(ret);
    list = g_new0(qemuMonitorHotpluggableCPU, n);
    for (i = 0; i < n; i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(ret, i);
        tdmJSONValue *props;
        qemuMonitorHotpluggableCPU *cpu = list + i;
        const char *type;

        if (tdmJSONValueGetType(entry) != TDM_JSON_TYPE_OBJECT ||
            !(type = tdmJSONValueObjectGetString(entry, "type")) ||
            !(props = tdmJSONValueObjectGetObject(entry, "props"))) {
            qemuMonitorJSONMissing("query-hotpluggable-cpus", "type/props");
            qemuMonitorHotpluggableCPUFree(list, n);
            return -1;
        }
        cpu->type = g_strdup(type);
        cpu->qomPath = g_strdup(tdmJSONValueObjectGetString(entry, "qom-path"));
        cpu->vcpusCount = 1;
        ignore_value(tdmJSONValueObjectGetNumberInt(entry, "vcpus-count", &cpu->vcpusCount));
        cpu->socketId = cpu->dieId = cpu->coreId = cpu->threadId = cpu->nodeId = -1;
        ignore_value(tdmJSONValueObjectGetNumberInt(props, "socket-id", &cpu->socketId));
        ignore_value(tdmJSONValueObjectGetNumberInt(props, "die-id", &cpu->dieId));
        ignore_value(tdmJSONValueObjectGetNumberInt(props, "core-id", &cpu->coreId));
        ignore_value(tdmJSONValueObjectGetNumberInt(props, "thread-id", &cpu->threadId));
        ignore_value(tdmJSONValueObjectGetNumberInt(props, "node-id", &cpu->nodeId));
    }
    *cpus = list;
    *ncpus = n;
    return 0;
}


int
qemuMonitorJSONQueryHotpluggableCPUs(qemuMonitor *mon,
                                     qemuMonitorHotpluggableCPU **cpus,
                                     size_t *ncpus)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-hotpluggable-cpus", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *cpus = NULL;
    *ncpus = 0;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseHotpluggableCPUsReply(reply, cpus, ncpus);
}


int
qemuMonitorJSONAddVcpu(qemuMonitor *mon,
                       const qemuMonitorHotpluggableCPU *cpu,
                       const char *id)
{
    g_autoptr(tdmJSONValue) args = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (tdmJSONValueObjectCreate(&args, "s:driver", cpu->type, "s:id", id, NULL) < 0)
        return -1;
    if ((cpu->socketId >= 0 &&
         tdmJSONValueObjectAdd(args, "i:socket-id", cpu->socketId, NULL) < 0) ||
        (cpu->dieId >= 0 &&
         tdmJSONValueObjectAdd(args, "i:die-id", cpu->dieId, NULL) < 0) ||
        (cpu->coreId >= 0 &&
         tdmJSONValueObjectAdd(args, "i:core-id", cpu->coreId, NULL) < 0) ||
        (cpu->threadId >= 0 &&
         tdmJSONValueObjectAdd(args, "i:thread-id", cpu->threadId, NULL) < 0) ||
        (cpu->nodeId >= 0 &&
         tdmJSONValueObjectAdd(args, "i:node-id", cpu->nodeId, NULL) < 0))
        return -1;
    cmd = tdmJSONCommandBuildArgs("device_add", &args);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


/* ------------------------------------------------------------------ */
/* Memory dumps and internal snapshots (qemu_dump.c, qemu_snapshot.c)  */
/* ------------------------------------------------------------------ */

int
qemuMonitorJSONParseDumpGuestMemoryFormatsReply(tdmJSONValue *reply,
                                                char ***formats)
{
    const char *cmdname = "query-dump-guest-memory-capability";
    tdmJSONValue *ret;
    tdmJSONValue *list;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    size_t i;

    *formats = NULL;
    if (!(ret = qemuMonitorJSONGetReturn(reply, cmdname, TDM_JSON_TYPE_OBJECT)))
        return -1;
    if (!(list = tdmJSONValueObjectGetArray(ret, "formats"))) {
        qemuMonitorJSONMissing(cmdname, "formats");
        return -1;
    }
    for (i = 0; i < tdmJSONValueArraySize(list); i++) {
        const char *name = tdmJSONValueGetString(tdmJSONValueArrayGet(list, i));

        if (!name) {
            qemuMonitorJSONMissing(cmdname, "formats");
            return -1;
        }
        g_ptr_array_add(names, g_strdup(name));
    }
    g_ptr_array_add(names, NULL);
    *formats = (char **) g_ptr_array_steal(names, NULL);
    return 0;
}


int
qemuMonitorJSONGetDumpGuestMemoryFormats(qemuMonitor *mon, char ***formats)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-dump-guest-memory-capability",
                                                      NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *formats = NULL;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseDumpGuestMemoryFormatsReply(reply, formats);
}


int
qemuMonitorJSONDumpGuestMemory(qemuMonitor *mon,
                               const char *protocol,
                               const char *format,
                               bool detach)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("dump-guest-memory",
                                                      "b:paging", false,
                                                      "s:protocol", protocol,
                                                      "S:format", format,
                                                      "B:detach", detach,
                                                      NULL);

    return qemuMonitorJSONCommand(mon, &cmd,
                                  detach ? QEMU_MONITOR_CMD_CLASS_MODIFY
                                         : QEMU_MONITOR_CMD_CLASS_LONG,
                                  NULL);
}


int
qemuMonitorJSONParseQueryDumpReply(tdmJSONValue *reply,
                                   qemuMonitorDumpStats *stats)
{
    static const char *const statuses[] = { "none", "active", "completed", "failed" };
    tdmJSONValue *ret;
    const char *status;
    size_t i;

    memset(stats, 0, sizeof(*stats));
    stats->status = -1;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-dump", TDM_JSON_TYPE_OBJECT)))
        return -1;
    if (!(status = tdmJSONValueObjectGetString(ret, "status"))) {
        qemuMonitorJSONMissing("query-dump", "status");
        return -1;
    }
    for (i = 0; i < G_N_ELEMENTS(statuses); i++) {
        if (STREQ(status, statuses[i]))
            stats->status = i;
    }
    if (stats->status < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unknown dump status '%s' in reply to QEMU command 'query-dump'"),
                       status);
        return -1;
    }
    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "completed", &stats->completed));
    ignore_value(tdmJSONValueObjectGetNumberULLong(ret, "total", &stats->total));
    return 0;
}


int
qemuMonitorJSONQueryDump(qemuMonitor *mon, qemuMonitorDumpStats *stats)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-dump", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    memset(stats, 0, sizeof(*stats));
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQueryDumpReply(reply, stats);
}


/* snapshot-save / snapshot-load / snapshot-delete: start a QEMU job */
static int
qemuMonitorJSONSnapshotJob(qemuMonitor *mon,
                           const char *cmdname,
                           const char *jobId,
                           const char *tag,
                           const char *vmstate,
                           const char *const *devices)
{
    g_autoptr(tdmJSONValue) devs = tdmJSONValueNewArray();
    g_autoptr(tdmJSONValue) cmd = NULL;
    size_t i;

    for (i = 0; devices && devices[i]; i++) {
        if (tdmJSONValueArrayAppendString(devs, devices[i]) < 0)
            return -1;
    }
    cmd = tdmJSONCommandBuild(cmdname,
                              "s:job-id", jobId,
                              "s:tag", tag,
                              "S:vmstate", vmstate,
                              "a:devices", &devs,
                              NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONSnapshotSave(qemuMonitor *mon,
                            const char *jobId,
                            const char *tag,
                            const char *vmstate,
                            const char *const *devices)
{
    return qemuMonitorJSONSnapshotJob(mon, "snapshot-save", jobId, tag, vmstate, devices);
}


int
qemuMonitorJSONSnapshotLoad(qemuMonitor *mon,
                            const char *jobId,
                            const char *tag,
                            const char *vmstate,
                            const char *const *devices)
{
    return qemuMonitorJSONSnapshotJob(mon, "snapshot-load", jobId, tag, vmstate, devices);
}


int
qemuMonitorJSONSnapshotDelete(qemuMonitor *mon,
                              const char *jobId,
                              const char *tag,
                              const char *const *devices)
{
    return qemuMonitorJSONSnapshotJob(mon, "snapshot-delete", jobId, tag, NULL, devices);
}


void
qemuMonitorJobInfoFree(qemuMonitorJobInfo *jobs, size_t njobs)
{
    size_t i;

    if (!jobs)
        return;
    for (i = 0; i < njobs; i++) {
        g_free(jobs[i].id);
        g_free(jobs[i].type);
        g_free(jobs[i].status);
        g_free(jobs[i].error);
    }
    g_free(jobs);
}


int
qemuMonitorJSONParseQueryJobsReply(tdmJSONValue *reply,
                                   qemuMonitorJobInfo **jobs,
                                   size_t *njobs)
{
    tdmJSONValue *ret;
    qemuMonitorJobInfo *list;
    size_t n;
    size_t i;

    *jobs = NULL;
    *njobs = 0;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-jobs", TDM_JSON_TYPE_ARRAY)))
        return -1;
    n = tdmJSONValueArraySize(ret);
    list = g_new0(qemuMonitorJobInfo, n);
    for (i = 0; i < n; i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(ret, i);
        const char *id;
        const char *status;

        if (tdmJSONValueGetType(entry) != TDM_JSON_TYPE_OBJECT ||
            !(id = tdmJSONValueObjectGetString(entry, "id")) ||
            !(status = tdmJSONValueObjectGetString(entry, "status"))) {
            qemuMonitorJSONMissing("query-jobs", "id/status");
            qemuMonitorJobInfoFree(list, n);
            return -1;
        }
        list[i].id = g_strdup(id);
        list[i].status = g_strdup(status);
        list[i].type = g_strdup(tdmJSONValueObjectGetString(entry, "type"));
        list[i].error = g_strdup(tdmJSONValueObjectGetString(entry, "error"));
        ignore_value(tdmJSONValueObjectGetNumberULLong(entry, "current-progress",
                                                       &list[i].progressCurrent));
        ignore_value(tdmJSONValueObjectGetNumberULLong(entry, "total-progress",
                                                       &list[i].progressTotal));
    }
    *jobs = list;
    *njobs = n;
    return 0;
}


int
qemuMonitorJSONQueryJobs(qemuMonitor *mon,
                         qemuMonitorJobInfo **jobs,
                         size_t *njobs)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-jobs", NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *jobs = NULL;
    *njobs = 0;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQueryJobsReply(reply, jobs, njobs);
}


int
qemuMonitorJSONJobDismiss(qemuMonitor *mon, const char *id)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("job-dismiss", "s:id", id, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


/* ------------------------------------------------------------------ */
/* Storage migration over NBD (qemu_migration_nbd.c)                  */
/* ------------------------------------------------------------------ */

int
qemuMonitorJSONNBDServerStart(qemuMonitor *mon, const char *host, unsigned int port)
{
    g_autofree char *portStr = g_strdup_printf("%u", port);
    g_autoptr(tdmJSONValue) data = NULL;
    g_autoptr(tdmJSONValue) addr = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (tdmJSONValueObjectCreate(&data, "s:host", host, "s:port", portStr, NULL) < 0 ||
        tdmJSONValueObjectCreate(&addr, "s:type", "inet", "a:data", &data, NULL) < 0)
        return -1;
    cmd = tdmJSONCommandBuild("nbd-server-start", "a:addr", &addr, NULL);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONNBDServerStop(qemuMonitor *mon)
{
    return qemuMonitorJSONSimpleCommand(mon, "nbd-server-stop",
                                        QEMU_MONITOR_CMD_CLASS_MODIFY);
}


int
qemuMonitorJSONBlockExportAddNBD(qemuMonitor *mon,
                                 const char *id,
                                 const char *nodeName,
                                 const char *exportName,
                                 bool writable)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("block-export-add",
                                                      "s:type", "nbd",
                                                      "s:id", id,
                                                      "s:node-name", nodeName,
                                                      "s:name", exportName,
                                                      "b:writable", writable,
                                                      NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


tdmJSONValue *
qemuMonitorJSONBuildNBDClientProps(const char *nodeName,
                                   const char *host,
                                   unsigned int port,
                                   const char *exportName)
{
    g_autofree char *portStr = g_strdup_printf("%u", port);
    g_autoptr(tdmJSONValue) server = NULL;
    tdmJSONValue *props = NULL;

    if (tdmJSONValueObjectCreate(&server, "s:type", "inet", "s:host", host,
                                 "s:port", portStr, NULL) < 0 ||
        tdmJSONValueObjectCreate(&props, "s:driver", "nbd",
                                 "s:node-name", nodeName,
                                 "a:server", &server,
                                 "s:export", exportName, NULL) < 0)
        return NULL;
    return props;
}


int
qemuMonitorJSONBlockdevMirror(qemuMonitor *mon,
                              const char *jobId,
                              const char *device,
                              const char *target,
                              const char *sync,
                              unsigned long long speed)
{
    g_autoptr(tdmJSONValue) args = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;

    if (tdmJSONValueObjectCreate(&args,
                                 "s:job-id", jobId,
                                 "s:device", device,
                                 "s:target", target,
                                 "s:sync", sync,
                                 "b:auto-dismiss", false,
                                 NULL) < 0)
        return -1;
    if (speed && tdmJSONValueObjectSetNumberULLong(args, "speed", speed) < 0)
        return -1;
    cmd = tdmJSONCommandBuildArgs("blockdev-mirror", &args);
    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockJobCancel(qemuMonitor *mon, const char *jobId, bool force)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("block-job-cancel",
                                                      "s:device", jobId,
                                                      "B:force", force,
                                                      NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONBlockJobSetSpeed(qemuMonitor *mon, const char *jobId,
                                unsigned long long speed)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("block-job-set-speed",
                                                      "s:device", jobId,
                                                      "U:speed", speed,
                                                      NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONMigrateContinue(qemuMonitor *mon, const char *state)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("migrate-continue",
                                                      "s:state", state, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


/* ------------------------------------------------------------------ */
/* Device hot-plug (qemu_hotplug.c)                                    */
/* ------------------------------------------------------------------ */

int
qemuMonitorJSONDeviceAdd(qemuMonitor *mon, tdmJSONValue **props)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuildArgs("device_add", props);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONDeviceDel(qemuMonitor *mon, const char *id)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("device_del", "s:id", id, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONNetdevAdd(qemuMonitor *mon, tdmJSONValue **props)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuildArgs("netdev_add", props);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONNetdevDel(qemuMonitor *mon, const char *id)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("netdev_del", "s:id", id, NULL);

    return qemuMonitorJSONCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_MODIFY, NULL);
}


int
qemuMonitorJSONParseQomListNamesReply(tdmJSONValue *reply, char ***names)
{
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);
    tdmJSONValue *ret;
    size_t n;
    size_t i;

    *names = NULL;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "qom-list", TDM_JSON_TYPE_ARRAY)))
        return -1;
    n = tdmJSONValueArraySize(ret);
    for (i = 0; i < n; i++) {
        const char *name = tdmJSONValueObjectGetString(tdmJSONValueArrayGet(ret, i), "name");

        if (!name) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("qom-list reply entry has no name"));
            return -1;
        }
        g_ptr_array_add(list, g_strdup(name));
    }
    g_ptr_array_add(list, NULL);
    *names = (char **) g_ptr_array_free(g_steal_pointer(&list), FALSE);
    return 0;
}


int
qemuMonitorJSONQomListNames(qemuMonitor *mon, const char *path, char ***names)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("qom-list", "s:path", path, NULL);
    g_autoptr(tdmJSONValue) reply = NULL;

    *names = NULL;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorJSONParseQomListNamesReply(reply, names);
}


int
qemuMonitorJSONQueryNamedBlockNodes(qemuMonitor *mon, tdmJSONValue **nodes)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-named-block-nodes",
                                                      "b:flat", true, NULL);
    g_autoptr(tdmJSONValue) reply = NULL;
    tdmJSONValue *ret;

    *nodes = NULL;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    if (!(ret = qemuMonitorJSONGetReturn(reply, "query-named-block-nodes",
                                         TDM_JSON_TYPE_ARRAY)))
        return -1;
    *nodes = tdmJSONValueCopy(ret);
    return 0;
}
