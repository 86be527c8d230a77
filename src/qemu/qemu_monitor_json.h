/*
 * qemu_monitor_json.h: QMP command builders and reply parsers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every function here sends one command through qemuMonitorSendCommand and
 * so blocks until the reply or the command's deadline: the caller must not
 * hold a domain object lock (see qemu_monitor.h).  All return 0 on success
 * and -1 with a libvirt error reported.
 */
#pragma once

#include "internal.h"
#include "qemu_monitor.h"

/* query-status "status" values */
typedef enum {
    QEMU_MONITOR_VM_STATUS_DEBUG,
    QEMU_MONITOR_VM_STATUS_INMIGRATE,
    QEMU_MONITOR_VM_STATUS_INTERNAL_ERROR,
    QEMU_MONITOR_VM_STATUS_IO_ERROR,
    QEMU_MONITOR_VM_STATUS_PAUSED,
    QEMU_MONITOR_VM_STATUS_POSTMIGRATE,
    QEMU_MONITOR_VM_STATUS_PRELAUNCH,
    QEMU_MONITOR_VM_STATUS_FINISH_MIGRATE,
    QEMU_MONITOR_VM_STATUS_RESTORE_VM,
    QEMU_MONITOR_VM_STATUS_RUNNING,
    QEMU_MONITOR_VM_STATUS_SAVE_VM,
    QEMU_MONITOR_VM_STATUS_SHUTDOWN,
    QEMU_MONITOR_VM_STATUS_SUSPENDED,
    QEMU_MONITOR_VM_STATUS_WATCHDOG,
    QEMU_MONITOR_VM_STATUS_GUEST_PANICKED,
    QEMU_MONITOR_VM_STATUS_COLO,

    QEMU_MONITOR_VM_STATUS_LAST
} qemuMonitorVMStatus;

const char *qemuMonitorVMStatusTypeToString(int type);
int qemuMonitorVMStatusTypeFromString(const char *str);
/* The virDomainPausedReason matching a (non-running) QEMU run state. */
int qemuMonitorVMStatusToPausedReason(int status);

int qemuMonitorJSONSetCapabilities(qemuMonitor *mon);

/* query-status: @status is a qemuMonitorVMStatus (may be NULL) */
int qemuMonitorJSONQueryStatus(qemuMonitor *mon, bool *running, int *status);

int qemuMonitorJSONStartCPUs(qemuMonitor *mon);          /* cont */
int qemuMonitorJSONStopCPUs(qemuMonitor *mon);           /* stop */
int qemuMonitorJSONSystemPowerdown(qemuMonitor *mon);
int qemuMonitorJSONSystemReset(qemuMonitor *mon);
int qemuMonitorJSONQuit(qemuMonitor *mon);

/* query-balloon: current guest memory in KiB */
int qemuMonitorJSONGetBalloonInfo(qemuMonitor *mon, unsigned long long *currmem);
/* balloon: @newmem in KiB */
int qemuMonitorJSONSetBalloon(qemuMonitor *mon, unsigned long long newmem);

typedef struct _qemuMonitorCPUInfo qemuMonitorCPUInfo;
struct _qemuMonitorCPUInfo {
    int cpuIndex;          /* "cpu-index" */
    long long threadId;    /* "thread-id" (host TID) */
    char *qomPath;
    char *target;
    int socketId;          /* -1 when absent */
    int coreId;
    int threadIdInCore;    /* props.thread-id */
    int nodeId;
};
void qemuMonitorCPUInfoFree(qemuMonitorCPUInfo *cpus, size_t ncpus);

/* query-cpus-fast */
int qemuMonitorJSONQueryCPUsFast(qemuMonitor *mon,
                                 qemuMonitorCPUInfo **cpus,
                                 size_t *ncpus);

typedef struct _qemuMonitorBlockStats qemuMonitorBlockStats;
struct _qemuMonitorBlockStats {
    char *device;          /* "device" (may be empty) */
    char *qdev;            /* "qdev" or NULL */
    char *nodeName;        /* "node-name" or NULL */
    unsigned long long rdReq;
    unsigned long long rdBytes;
    unsigned long long wrReq;
    unsigned long long wrBytes;
    unsigned long long flushReq;
    unsigned long long rdTotalTimeNs;
    unsigned long long wrTotalTimeNs;
    unsigned long long flushTotalTimeNs;
    unsigned long long wrHighestOffset;
};
void qemuMonitorBlockStatsFree(qemuMonitorBlockStats *stats, size_t nstats);

/* query-blockstats (top level devices) */
int qemuMonitorJSONGetBlockStats(qemuMonitor *mon,
                                 qemuMonitorBlockStats **stats,
                                 size_t *nstats);

typedef struct _qemuMonitorBlockInfo qemuMonitorBlockInfo;
struct _qemuMonitorBlockInfo {
    char *device;
    char *qdev;
    bool removable;
    bool locked;
    bool trayOpen;         /* false when not reported */
    char *ioStatus;        /* "ok", "failed", "nospace" or NULL */
    bool inserted;         /* the fields below are valid */
    char *file;
    char *nodeName;
    char *format;          /* "drv" */
    bool readonly;
};
void qemuMonitorBlockInfoFree(qemuMonitorBlockInfo *info, size_t ninfo);

/* query-block */
int qemuMonitorJSONQueryBlock(qemuMonitor *mon,
                              qemuMonitorBlockInfo **info,
                              size_t *ninfo);

typedef struct _qemuMonitorMigrationStats qemuMonitorMigrationStats;
struct _qemuMonitorMigrationStats {
    int status;                        /* qemuMonitorMigrationStatus */
    char *errorDesc;
    unsigned long long totalTime;      /* ms */
    unsigned long long setupTime;      /* ms */
    unsigned long long downtime;       /* ms, when completed */
    unsigned long long expectedDowntime;
    bool haveRam;
    unsigned long long ramTransferred;
    unsigned long long ramRemaining;
    unsigned long long ramTotal;
    unsigned long long ramDuplicate;
    unsigned long long ramNormal;
    unsigned long long ramNormalBytes;
    unsigned long long ramDirtyRate;   /* pages per second */
    unsigned long long ramIteration;   /* "dirty-sync-count" */
    unsigned long long ramPostcopyReqs;
    unsigned long long ramPageSize;
    double ramMbps;
    bool haveDisk;
    unsigned long long diskTransferred;
    unsigned long long diskRemaining;
    unsigned long long diskTotal;
};
void qemuMonitorMigrationStatsClear(qemuMonitorMigrationStats *stats);

/* query-migrate */
int qemuMonitorJSONQueryMigrate(qemuMonitor *mon, qemuMonitorMigrationStats *stats);
/* migrate: @uri like "tcp:127.0.0.1:49152" or "fd:name" */
int qemuMonitorJSONMigrate(qemuMonitor *mon, const char *uri, bool resume);
int qemuMonitorJSONMigrateCancel(qemuMonitor *mon);
/* migrate-set-parameters: @params (stolen) are the arguments */
int qemuMonitorJSONSetMigrationParams(qemuMonitor *mon, tdmJSONValue **params);
/* query-migrate-parameters: the "return" object */
int qemuMonitorJSONGetMigrationParams(qemuMonitor *mon, tdmJSONValue **params);

/* human-monitor-command: the HMP output in *@reply */
int qemuMonitorJSONHumanCommand(qemuMonitor *mon,
                                const char *cmdline,
                                char **reply);

/*
 * virsh qemu-monitor-command: @cmdstr is a QMP command in JSON; the raw
 * reply (including QEMU "error" replies, which are not a failure here) is
 * returned in *@reply, with the caller's own "id" if it gave one.
 */
int qemuMonitorJSONArbitraryCommand(qemuMonitor *mon,
                                    const char *cmdstr,
                                    char **reply);

/*
 * Reply parsers, separated from the round trip so the fuzzer and the tests
 * can feed them any reply object.  @reply is the whole reply; they check
 * for "error" themselves.
 */
int qemuMonitorJSONParseQueryStatusReply(tdmJSONValue *reply,
                                         bool *running, int *status);
int qemuMonitorJSONParseBalloonReply(tdmJSONValue *reply,
                                     unsigned long long *currmem);
int qemuMonitorJSONParseCPUsFastReply(tdmJSONValue *reply,
                                      qemuMonitorCPUInfo **cpus,
                                      size_t *ncpus);
int qemuMonitorJSONParseBlockStatsReply(tdmJSONValue *reply,
                                        qemuMonitorBlockStats **stats,
                                        size_t *nstats);
int qemuMonitorJSONParseQueryBlockReply(tdmJSONValue *reply,
                                        qemuMonitorBlockInfo **info,
                                        size_t *ninfo);
int qemuMonitorJSONParseQueryMigrateReply(tdmJSONValue *reply,
                                          qemuMonitorMigrationStats *stats);
