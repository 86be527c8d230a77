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
    unsigned long long virtualSize; /* bytes, "image" "virtual-size"; 0
                                     * when not reported */
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

/* Devices (qemu_domain_devices.c) */

/* query-chardev: *@ptys maps each chardev label ("char" + device alias)
 * whose backend is a pty to the pty's path. */
int qemuMonitorJSONQueryChardevPtys(qemuMonitor *mon, GHashTable **ptys);
int qemuMonitorJSONParseQueryChardevReply(tdmJSONValue *reply,
                                          GHashTable **ptys);
/* set_password: @protocol "vnc" or "spice"; @connected NULL or
 * "keep"/"fail"/"disconnect" (spice only) */
int qemuMonitorJSONSetPassword(qemuMonitor *mon,
                               const char *protocol,
                               const char *password,
                               const char *connected);
/* expire_password: @expireTime "never", "now", "+SECONDS" or epoch seconds */
/* getfd: QEMU keeps a copy of @fd under @fdname (the caller keeps @fd). */
int qemuMonitorJSONSendFileHandle(qemuMonitor *mon, const char *fdname, int fd);
int qemuMonitorJSONCloseFileHandle(qemuMonitor *mon, const char *fdname);
/* add_client: hands the fd named @fdname to QEMU's @protocol server. */
int qemuMonitorJSONAddClient(qemuMonitor *mon, const char *protocol,
                             const char *fdname, bool skipauth);
int qemuMonitorJSONExpirePassword(qemuMonitor *mon,
                                  const char *protocol,
                                  const char *expireTime);
/* screendump into @file; @device NULL for the primary console, @head < 0
 * for its default head; @format NULL (ppm) or "png"/"ppm" (QEMU >= 7.1) */
int qemuMonitorJSONScreendump(qemuMonitor *mon,
                              const char *device,
                              int head,
                              const char *format,
                              const char *file);
/* send-key: @keycodes are QEMU numbers (libvirt's qnum codeset); @holdtime
 * in ms, 0 for QEMU's default */
int qemuMonitorJSONSendKey(qemuMonitor *mon,
                           unsigned int holdtime,
                           const unsigned int *keycodes,
                           size_t nkeycodes);
/* Removable media of the device whose qdev id is @id */
int qemuMonitorJSONBlockdevTrayOpen(qemuMonitor *mon, const char *id, bool force);
int qemuMonitorJSONBlockdevTrayClose(qemuMonitor *mon, const char *id);
int qemuMonitorJSONBlockdevMediumRemove(qemuMonitor *mon, const char *id);
int qemuMonitorJSONBlockdevMediumInsert(qemuMonitor *mon,
                                        const char *id,
                                        const char *nodeName);
/* blockdev-add with @props (stolen) as arguments; blockdev-del */
int qemuMonitorJSONBlockdevAdd(qemuMonitor *mon, tdmJSONValue **props);
int qemuMonitorJSONBlockdevDel(qemuMonitor *mon, const char *nodeName);
/* query-named-block-nodes (flat): a NULL-terminated list of node names */
int qemuMonitorJSONQueryNamedBlockNodeNames(qemuMonitor *mon, char ***names);

/* ------------------------------------------------------------------ */
/* Balloon statistics, vCPU hotplug (qemu_domain_query.c)             */
/* ------------------------------------------------------------------ */

/* The query-blockstats entry of the disk whose device alias is @alias:
 * QEMU names it by the device's QOM path
 * ("/machine/peripheral/virtio-disk0/virtio-backend") or by its id.
 * NULL when there is none (no error reported). */
const qemuMonitorBlockStats *qemuMonitorBlockStatsFindByAlias(const qemuMonitorBlockStats *stats,
                                                              size_t nstats,
                                                              const char *alias);

/* qom-get @path "guest-stats" of a virtio balloon: fills up to @nr_stats
 * entries of @stats (tags VIR_DOMAIN_MEMORY_STAT_*, sizes in KiB) with
 * what the guest reported, "last-update" included once the guest driver
 * has reported something; *@nfilled is the number filled. */
int qemuMonitorJSONGetBalloonGuestStats(qemuMonitor *mon,
                                        const char *path,
                                        virDomainMemoryStatPtr stats,
                                        unsigned int nr_stats,
                                        unsigned int *nfilled);
int qemuMonitorJSONParseBalloonGuestStatsReply(tdmJSONValue *reply,
                                               virDomainMemoryStatPtr stats,
                                               unsigned int nr_stats,
                                               unsigned int *nfilled);
/* qom-set @path "guest-stats-polling-interval" @period (seconds, 0 = off) */
int qemuMonitorJSONSetBalloonStatsPeriod(qemuMonitor *mon,
                                         const char *path,
                                         int period);

typedef struct _qemuMonitorHotpluggableCPU qemuMonitorHotpluggableCPU;
struct _qemuMonitorHotpluggableCPU {
    char *type;            /* the -device driver, e.g. "qemu64-x86_64-cpu" */
    char *qomPath;         /* NULL while the slot is empty */
    int vcpusCount;        /* "vcpus-count" */
    int socketId;          /* props; -1 when absent */
    int dieId;
    int coreId;
    int threadId;
    int nodeId;
};
void qemuMonitorHotpluggableCPUFree(qemuMonitorHotpluggableCPU *cpus, size_t ncpus);

/* query-hotpluggable-cpus */
int qemuMonitorJSONQueryHotpluggableCPUs(qemuMonitor *mon,
                                         qemuMonitorHotpluggableCPU **cpus,
                                         size_t *ncpus);
int qemuMonitorJSONParseHotpluggableCPUsReply(tdmJSONValue *reply,
                                              qemuMonitorHotpluggableCPU **cpus,
                                              size_t *ncpus);
/* device_add of the vCPU in slot @cpu with the device id @id */
int qemuMonitorJSONAddVcpu(qemuMonitor *mon,
                           const qemuMonitorHotpluggableCPU *cpu,
                           const char *id);

/* ------------------------------------------------------------------ */
/* Memory dumps and internal snapshots (qemu_dump.c, qemu_snapshot.c)  */
/* ------------------------------------------------------------------ */

/* query-dump-guest-memory-capability: NULL-terminated list of formats */
int qemuMonitorJSONGetDumpGuestMemoryFormats(qemuMonitor *mon, char ***formats);
int qemuMonitorJSONParseDumpGuestMemoryFormatsReply(tdmJSONValue *reply,
                                                    char ***formats);
/* dump-guest-memory without paging; @protocol "file:PATH"; @format NULL
 * for QEMU's default (elf); @detach: returns at once, progress through
 * query-dump and the DUMP_COMPLETED event */
int qemuMonitorJSONDumpGuestMemory(qemuMonitor *mon,
                                   const char *protocol,
                                   const char *format,
                                   bool detach);
/* query-dump (status: 0 none, 1 active, 2 completed, 3 failed) */
int qemuMonitorJSONQueryDump(qemuMonitor *mon, qemuMonitorDumpStats *stats);
int qemuMonitorJSONParseQueryDumpReply(tdmJSONValue *reply,
                                       qemuMonitorDumpStats *stats);

/* Internal snapshots as QEMU jobs (QEMU >= 6.0): the command returns once
 * the job @jobId exists; watch it with query-jobs (JOB_STATUS_CHANGE),
 * dismiss it with job-dismiss once "concluded".  @devices: NULL-terminated
 * format node names; @vmstate: the node that holds the VM state. */
int qemuMonitorJSONSnapshotSave(qemuMonitor *mon,
                                const char *jobId,
                                const char *tag,
                                const char *vmstate,
                                const char *const *devices);
int qemuMonitorJSONSnapshotLoad(qemuMonitor *mon,
                                const char *jobId,
                                const char *tag,
                                const char *vmstate,
                                const char *const *devices);
int qemuMonitorJSONSnapshotDelete(qemuMonitor *mon,
                                  const char *jobId,
                                  const char *tag,
                                  const char *const *devices);

typedef struct _qemuMonitorJobInfo qemuMonitorJobInfo;
struct _qemuMonitorJobInfo {
    char *id;
    char *type;                         /* "snapshot-save", ... */
    char *status;                       /* "running", "concluded", ... */
    char *error;                        /* set when a concluded job failed */
    unsigned long long progressCurrent;
    unsigned long long progressTotal;
};
void qemuMonitorJobInfoFree(qemuMonitorJobInfo *jobs, size_t njobs);

/* query-jobs */
int qemuMonitorJSONQueryJobs(qemuMonitor *mon,
                             qemuMonitorJobInfo **jobs,
                             size_t *njobs);
int qemuMonitorJSONParseQueryJobsReply(tdmJSONValue *reply,
                                       qemuMonitorJobInfo **jobs,
                                       size_t *njobs);
/* job-dismiss */
int qemuMonitorJSONJobDismiss(qemuMonitor *mon, const char *id);

/* ------------------------------------------------------------------ */
/* Storage migration over NBD (qemu_migration_nbd.c)                  */
/* ------------------------------------------------------------------ */

/* nbd-server-start on @host:@port (TCP) */
int qemuMonitorJSONNBDServerStart(qemuMonitor *mon, const char *host,
                                  unsigned int port);
/* nbd-server-stop (also removes every export) */
int qemuMonitorJSONNBDServerStop(qemuMonitor *mon);
/* block-export-add of type nbd: export @nodeName as @exportName, with the
 * export id @id */
int qemuMonitorJSONBlockExportAddNBD(qemuMonitor *mon,
                                     const char *id,
                                     const char *nodeName,
                                     const char *exportName,
                                     bool writable);
/* The blockdev-add arguments of an NBD client node @nodeName reading and
 * writing the export @exportName of the server at @host:@port. */
tdmJSONValue *qemuMonitorJSONBuildNBDClientProps(const char *nodeName,
                                                 const char *host,
                                                 unsigned int port,
                                                 const char *exportName);
/* blockdev-mirror of @device to @target as job @jobId; @sync "full" or
 * "top"; @speed in bytes/s, 0 for unlimited; the job stays after it
 * concluded (auto-dismiss off): read its end with query-jobs, then
 * job-dismiss it */
int qemuMonitorJSONBlockdevMirror(qemuMonitor *mon,
                                  const char *jobId,
                                  const char *device,
                                  const char *target,
                                  const char *sync,
                                  unsigned long long speed);
/* block-job-cancel of job @jobId.  On a mirror in the ready state without
 * @force it completes the job without switching the device to the target:
 * the target is then a consistent copy. */
int qemuMonitorJSONBlockJobCancel(qemuMonitor *mon, const char *jobId, bool force);
/* block-job-set-speed of job @jobId: @speed bytes/s, 0 for unlimited */
int qemuMonitorJSONBlockJobSetSpeed(qemuMonitor *mon, const char *jobId,
                                    unsigned long long speed);
/* migrate-continue from the state @state ("pre-switchover") */
int qemuMonitorJSONMigrateContinue(qemuMonitor *mon, const char *state);

/* ------------------------------------------------------------------ */
/* Device hot-plug (qemu_hotplug.c)                                    */
/* ------------------------------------------------------------------ */

/* device_add with the arguments @props (consumed) */
int qemuMonitorJSONDeviceAdd(qemuMonitor *mon, tdmJSONValue **props);
/* device_del of the device with id @id: QEMU asks the guest to let go
 * of it; DEVICE_DELETED tells when it is gone */
int qemuMonitorJSONDeviceDel(qemuMonitor *mon, const char *id);
/* netdev_add with the arguments @props (consumed) */
int qemuMonitorJSONNetdevAdd(qemuMonitor *mon, tdmJSONValue **props);
/* netdev_del of the network backend @id */
int qemuMonitorJSONNetdevDel(qemuMonitor *mon, const char *id);
/* qom-list of @path: the names of its children, NULL-terminated */
int qemuMonitorJSONQomListNames(qemuMonitor *mon, const char *path, char ***names);
int qemuMonitorJSONParseQomListNamesReply(tdmJSONValue *reply, char ***names);
/* query-named-block-nodes (flat): the array of nodes as QEMU sent it */
int qemuMonitorJSONQueryNamedBlockNodes(qemuMonitor *mon, tdmJSONValue **nodes);
