/*
 * qemumonitortest.c: the QMP monitor (src/qemu/qemu_monitor*.c) against a
 * scripted fake QMP server (tests/fakeqmp.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Prints "ok - name" / "not ok - name" per check and exits non-zero if any
 * check failed.  libvirt's default event loop runs in its own thread, as
 * in the daemon.
 */
#include <config.h>

#include <fcntl.h>

#include <signal.h>
#include <stdio.h>

#include "qemu_monitor.h"
#include "qemu_monitor_json.h"
#include "fakeqmp.h"
#include "virerror.h"
#include "virevent.h"
#include "virobject.h"

static int failures;

#define CHECK(name, cond) \
    do { \
        if (cond) { \
            printf("ok - %s\n", name); \
        } else { \
            printf("not ok - %s\n", name); \
            failures++; \
        } \
        fflush(stdout); \
    } while (0)


/* ------------------------------------------------------------------ */
/* What the callbacks saw                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    GMutex lock;
    GString *events;          /* "A,B,C," in dispatch order */
    int eof;
    int error;
    int stop;
    int resume;
    int reset;
    int powerdown;
    int shutdown;
    bool shutdownGuest;
    char *shutdownReason;
    int migrationStatus;
    int migrationPass;
    int blockJobType;
    char *blockJobDevice;
    unsigned long long blockJobLen;
    char *deviceDeleted;
    char *panicAction;
    int dumpStatus;
    unsigned long long dumpTotal;
    long long lastSeconds;
    int destroyed;
} testEvents;

static testEvents ev;


static void
testEventsReset(void)
{
    g_mutex_lock(&ev.lock);
    g_string_truncate(ev.events, 0);
    ev.eof = ev.error = ev.stop = ev.resume = ev.reset = 0;
    ev.powerdown = ev.shutdown = ev.destroyed = 0;
    ev.shutdownGuest = false;
    g_clear_pointer(&ev.shutdownReason, g_free);
    ev.migrationStatus = ev.migrationPass = ev.blockJobType = -1;
    g_clear_pointer(&ev.blockJobDevice, g_free);
    ev.blockJobLen = 0;
    g_clear_pointer(&ev.deviceDeleted, g_free);
    g_clear_pointer(&ev.panicAction, g_free);
    ev.dumpStatus = -1;
    ev.dumpTotal = 0;
    ev.lastSeconds = 0;
    g_mutex_unlock(&ev.lock);
}


static char *
testEventsGet(void)
{
    char *ret;

    g_mutex_lock(&ev.lock);
    ret = g_strdup(ev.events->str);
    g_mutex_unlock(&ev.lock);
    return ret;
}


static int
testEventsCount(int *counter)
{
    int ret;

    g_mutex_lock(&ev.lock);
    ret = *counter;
    g_mutex_unlock(&ev.lock);
    return ret;
}


/* Waits up to @ms for *@counter to reach @want. */
static bool
testWaitCounter(int *counter, int want, unsigned int ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) ms * 1000;

    while (g_get_monotonic_time() < deadline) {
        if (testEventsCount(counter) >= want)
            return true;
        g_usleep(10 * 1000);
    }
    return testEventsCount(counter) >= want;
}


static void
testCbDestroy(qemuMonitor *mon G_GNUC_UNUSED, void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.destroyed++;
    g_mutex_unlock(&ev.lock);
}


static void
testCbEof(qemuMonitor *mon G_GNUC_UNUSED, void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.eof++;
    g_mutex_unlock(&ev.lock);
}


static void
testCbError(qemuMonitor *mon G_GNUC_UNUSED, void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.error++;
    g_mutex_unlock(&ev.lock);
}


static void
testCbEvent(qemuMonitor *mon G_GNUC_UNUSED,
            const char *event,
            tdmJSONValue *data G_GNUC_UNUSED,
            long long seconds,
            unsigned int micros G_GNUC_UNUSED,
            void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    g_string_append_printf(ev.events, "%s,", event);
    ev.lastSeconds = seconds;
    g_mutex_unlock(&ev.lock);
}


#define TEST_COUNTER_CB(name, field) \
    static void \
    name(qemuMonitor *mon G_GNUC_UNUSED, void *opaque G_GNUC_UNUSED) \
    { \
        g_mutex_lock(&ev.lock); \
        ev.field++; \
        g_mutex_unlock(&ev.lock); \
    }

TEST_COUNTER_CB(testCbStop, stop)
TEST_COUNTER_CB(testCbResume, resume)
TEST_COUNTER_CB(testCbReset, reset)
TEST_COUNTER_CB(testCbPowerdown, powerdown)


static void
testCbShutdown(qemuMonitor *mon G_GNUC_UNUSED, bool guest, const char *reason,
               void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.shutdown++;
    ev.shutdownGuest = guest;
    g_free(ev.shutdownReason);
    ev.shutdownReason = g_strdup(reason);
    g_mutex_unlock(&ev.lock);
}


static void
testCbMigrationStatus(qemuMonitor *mon G_GNUC_UNUSED, int status,
                      void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.migrationStatus = status;
    g_mutex_unlock(&ev.lock);
}


static void
testCbMigrationPass(qemuMonitor *mon G_GNUC_UNUSED, int pass,
                    void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.migrationPass = pass;
    g_mutex_unlock(&ev.lock);
}


static void
testCbBlockJob(qemuMonitor *mon G_GNUC_UNUSED,
               qemuMonitorBlockJobEvent type,
               const char *device,
               const char *jobType G_GNUC_UNUSED,
               unsigned long long len,
               unsigned long long offset G_GNUC_UNUSED,
               const char *error G_GNUC_UNUSED,
               void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.blockJobType = type;
    g_free(ev.blockJobDevice);
    ev.blockJobDevice = g_strdup(device);
    ev.blockJobLen = len;
    g_mutex_unlock(&ev.lock);
}


static void
testCbDeviceDeleted(qemuMonitor *mon G_GNUC_UNUSED, const char *alias,
                    void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    g_free(ev.deviceDeleted);
    ev.deviceDeleted = g_strdup(alias);
    g_mutex_unlock(&ev.lock);
}


static void
testCbGuestPanic(qemuMonitor *mon G_GNUC_UNUSED, const char *action,
                 tdmJSONValue *info G_GNUC_UNUSED, void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    g_free(ev.panicAction);
    ev.panicAction = g_strdup(action);
    g_mutex_unlock(&ev.lock);
}


static void
testCbDumpCompleted(qemuMonitor *mon G_GNUC_UNUSED, int status,
                    qemuMonitorDumpStats *stats, const char *error G_GNUC_UNUSED,
                    void *opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&ev.lock);
    ev.dumpStatus = status;
    ev.dumpTotal = stats->total;
    g_mutex_unlock(&ev.lock);
}


static qemuMonitorCallbacks testCallbacks = {
    .destroy = testCbDestroy,
    .eofNotify = testCbEof,
    .errorNotify = testCbError,
    .domainEvent = testCbEvent,
    .domainStop = testCbStop,
    .domainResume = testCbResume,
    .domainShutdown = testCbShutdown,
    .domainReset = testCbReset,
    .domainPowerdown = testCbPowerdown,
    .domainMigrationStatus = testCbMigrationStatus,
    .domainMigrationPass = testCbMigrationPass,
    .domainBlockJob = testCbBlockJob,
    .domainDeviceDeleted = testCbDeviceDeleted,
    .domainGuestPanic = testCbGuestPanic,
    .domainDumpCompleted = testCbDumpCompleted,
};


/* ------------------------------------------------------------------ */
/* Harness                                                             */
/* ------------------------------------------------------------------ */

static gpointer
testEventLoop(gpointer opaque G_GNUC_UNUSED)
{
    for (;;) {
        if (virEventRunDefaultImpl() < 0)
            fprintf(stderr, "# event loop: %s\n", virGetLastErrorMessage());
    }
    return NULL;
}


/* A server with the greeting and qmp_capabilities already scripted. */
static fakeQMP *
testServerNew(void)
{
    fakeQMP *srv = fakeQMPNew();

    fakeQMPAddGreeting(srv);
    fakeQMPExpect(srv, "qmp_capabilities", NULL);
    fakeQMPReply(srv, -1, "{}");
    return srv;
}


/* Starts @srv and a monitor on it, negotiated. */
static qemuMonitor *
testMonitorStart(fakeQMP *srv)
{
    qemuMonitor *mon;

    testEventsReset();
    if (fakeQMPStart(srv) < 0)
        return NULL;
    if (!(mon = qemuMonitorOpen(fakeQMPGetClientFD(srv), &testCallbacks, NULL))) {
        fprintf(stderr, "# open: %s\n", virGetLastErrorMessage());
        return NULL;
    }
    if (qemuMonitorNegotiate(mon) < 0) {
        fprintf(stderr, "# negotiate: %s\n", virGetLastErrorMessage());
        qemuMonitorClose(mon);
        return NULL;
    }
    return mon;
}


/* Closes the monitor, checks the script. */
static bool
testFinish(fakeQMP *srv, qemuMonitor *mon)
{
    bool ok;

    qemuMonitorClose(mon);
    ok = fakeQMPFinish(srv) == 0;
    fakeQMPFree(srv);
    return ok;
}


static bool
testErrorIs(int code, const char *prefix)
{
    const char *msg = virGetLastErrorMessage();

    if (virGetLastErrorCode() != code || !g_str_has_prefix(msg, prefix)) {
        fprintf(stderr, "# error %d '%s', want %d '%s...'\n",
                virGetLastErrorCode(), msg, code, prefix);
        return false;
    }
    return true;
}


/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void
testNegotiation(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon = testMonitorStart(srv);
    g_autoptr(tdmJSONValue) greeting = NULL;
    tdmJSONValue *qemu;
    int major = 0;

    CHECK("negotiation: open and qmp_capabilities", mon != NULL);
    if (!mon) {
        fakeQMPFinish(srv);
        fakeQMPFree(srv);
        return;
    }
    greeting = qemuMonitorGetGreeting(mon);
    qemu = greeting ? tdmJSONValueObjectGetObject(tdmJSONValueObjectGetObject(greeting,
                                                                              "version"),
                                                  "qemu") : NULL;
    CHECK("negotiation: greeting kept",
          qemu && tdmJSONValueObjectGetNumberInt(qemu, "major", &major) == 0 && major == 7);
    CHECK("negotiation: one command sent", qemuMonitorGetCommandsSent(mon) == 1);
    CHECK("negotiation: script", testFinish(srv, mon));
    CHECK("negotiation: destroy callback after close", testWaitCounter(&ev.destroyed, 1, 2000));
}


static void
testSimpleCommands(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    bool running = false;
    int status = -1;
    unsigned long long mem = 0;
    g_autoptr(tdmJSONValue) params = NULL;
    g_autoptr(tdmJSONValue) setParams = NULL;
    g_autofree char *hmp = NULL;
    g_autofree char *raw = NULL;
    g_autofree char *rawErr = NULL;
    g_autofree char *rawBad = NULL;
    qemuMonitorMigrationStats mig = { 0 };
    qemuMonitorCPUInfo *cpus = NULL;
    size_t ncpus = 0;

    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPReply(srv, -1, "{\"running\": false, \"singlestep\": false, \"status\": \"paused\"}");
    fakeQMPExpect(srv, "cont", NULL);
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "balloon", "{\"value\": 1073741824}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "query-balloon", NULL);
    fakeQMPReply(srv, -1, "{\"actual\": 1073741824}");
    fakeQMPExpect(srv, "migrate", "{\"uri\": \"tcp:127.0.0.1:49152\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "query-migrate", NULL);
    fakeQMPReply(srv, -1, "{\"status\": \"active\", \"total-time\": 1200, "
                 "\"ram\": {\"transferred\": 1000, \"remaining\": 24, \"total\": 1024, "
                 "\"mbps\": 268.5, \"dirty-sync-count\": 2}}");
    fakeQMPExpect(srv, "migrate-set-parameters", "{\"max-bandwidth\": 1048576}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "query-migrate-parameters", NULL);
    fakeQMPReply(srv, -1, "{\"max-bandwidth\": 1048576, \"downtime-limit\": 300}");
    fakeQMPExpect(srv, "query-cpus-fast", NULL);
    fakeQMPReply(srv, -1, "[{\"thread-id\": 4242, \"props\": {\"core-id\": 0, "
                 "\"thread-id\": 0, \"socket-id\": 0}, \"qom-path\": "
                 "\"/machine/unattached/device[0]\", \"cpu-index\": 0, \"target\": \"x86_64\"}]");
    fakeQMPExpect(srv, "human-monitor-command", "{\"command-line\": \"info name\"}");
    fakeQMPReply(srv, -1, "\"guest1\\r\\n\"");
    fakeQMPExpect(srv, "query-name", NULL);
    fakeQMPReply(srv, -1, "{\"name\": \"guest1\"}");
    fakeQMPExpect(srv, "query-nothing", NULL);
    fakeQMPReplyError(srv, -1, "CommandNotFound", "The command query-nothing has not been found");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("simple: start", false);
        fakeQMPFree(srv);
        return;
    }

    CHECK("simple: query-status",
          qemuMonitorJSONQueryStatus(mon, &running, &status) == 0 &&
          !running && status == QEMU_MONITOR_VM_STATUS_PAUSED &&
          qemuMonitorVMStatusToPausedReason(status) == VIR_DOMAIN_PAUSED_USER);
    CHECK("simple: cont", qemuMonitorJSONStartCPUs(mon) == 0);
    CHECK("simple: balloon with arguments", qemuMonitorJSONSetBalloon(mon, 1024 * 1024) == 0);
    CHECK("simple: query-balloon", qemuMonitorJSONGetBalloonInfo(mon, &mem) == 0 &&
          mem == 1024 * 1024);
    CHECK("simple: migrate", qemuMonitorJSONMigrate(mon, "tcp:127.0.0.1:49152", false) == 0);
    CHECK("simple: query-migrate",
          qemuMonitorJSONQueryMigrate(mon, &mig) == 0 &&
          mig.status == QEMU_MONITOR_MIGRATION_STATUS_ACTIVE && mig.haveRam &&
          mig.ramRemaining == 24 && mig.ramMbps == 268.5 && mig.totalTime == 1200);
    qemuMonitorMigrationStatsClear(&mig);
    tdmJSONValueObjectCreate(&setParams, "U:max-bandwidth", 1048576ULL, NULL);
    CHECK("simple: migrate-set-parameters",
          qemuMonitorJSONSetMigrationParams(mon, &setParams) == 0);
    CHECK("simple: query-migrate-parameters",
          qemuMonitorJSONGetMigrationParams(mon, &params) == 0 && params &&
          tdmJSONValueObjectHasKey(params, "downtime-limit"));
    CHECK("simple: query-cpus-fast",
          qemuMonitorJSONQueryCPUsFast(mon, &cpus, &ncpus) == 0 && ncpus == 1 &&
          cpus[0].threadId == 4242 && cpus[0].coreId == 0 && cpus[0].nodeId == -1);
    qemuMonitorCPUInfoFree(cpus, ncpus);
    CHECK("simple: human-monitor-command",
          qemuMonitorJSONHumanCommand(mon, "info name", &hmp) == 0 &&
          STREQ_NULLABLE(hmp, "guest1\r\n"));
    CHECK("simple: passthrough keeps the caller's id",
          qemuMonitorJSONArbitraryCommand(mon, "{\"execute\": \"query-name\", \"id\": \"mine\"}",
                                          &raw) == 0 &&
          STREQ_NULLABLE(raw, "{\"return\":{\"name\":\"guest1\"},\"id\":\"mine\"}"));
    CHECK("simple: passthrough returns QEMU errors as text",
          qemuMonitorJSONArbitraryCommand(mon, "{\"execute\": \"query-nothing\"}",
                                          &rawErr) == 0 &&
          rawErr && strstr(rawErr, "CommandNotFound"));
    CHECK("simple: passthrough rejects non-commands",
          qemuMonitorJSONArbitraryCommand(mon, "[1]", &rawBad) < 0 && !rawBad &&
          virGetLastErrorCode() == VIR_ERR_INVALID_ARG);
    CHECK("simple: script", testFinish(srv, mon));
}


/* The commands of a storage migration over NBD (qemu_migration_nbd.c):
 * their arguments as QEMU's schema wants them, and a refusal reported. */
static void
testStorageMigrationCommands(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    g_autoptr(tdmJSONValue) props = NULL;
    g_autoptr(tdmJSONValue) want = NULL;

    fakeQMPExpect(srv, "nbd-server-start",
                  "{\"addr\": {\"type\": \"inet\", \"data\": "
                  "{\"host\": \"127.0.0.1\", \"port\": \"49153\"}}}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "block-export-add",
                  "{\"type\": \"nbd\", \"id\": \"migration-vda\", "
                  "\"node-name\": \"libvirt-1-format\", \"name\": \"vda\", \"writable\": true}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "blockdev-mirror",
                  "{\"job-id\": \"migration-vda\", \"device\": \"libvirt-1-format\", "
                  "\"target\": \"migration-vda-nbd\", \"sync\": \"full\", "
                  "\"auto-dismiss\": false, \"speed\": 2097152}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "blockdev-mirror",
                  "{\"job-id\": \"migration-vdb\", \"device\": \"libvirt-2-format\", "
                  "\"target\": \"migration-vdb-nbd\", \"sync\": \"top\", "
                  "\"auto-dismiss\": false}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "block-job-cancel", "{\"device\": \"migration-vda\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "block-job-cancel", "{\"device\": \"migration-vdb\", \"force\": true}");
    fakeQMPReplyError(srv, -1, "GenericError", "Block job 'migration-vdb' not found");
    fakeQMPExpect(srv, "block-job-set-speed", "{\"device\": \"migration-vda\", \"speed\": 0}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "nbd-server-stop", NULL);
    fakeQMPReply(srv, -1, "{}");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("storage: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("storage: nbd-server-start on an inet address, the port as a string",
          qemuMonitorJSONNBDServerStart(mon, "127.0.0.1", 49153) == 0);
    CHECK("storage: block-export-add of a writable nbd export",
          qemuMonitorJSONBlockExportAddNBD(mon, "migration-vda", "libvirt-1-format",
                                           "vda", true) == 0);
    CHECK("storage: blockdev-mirror full with a speed, kept after it concluded",
          qemuMonitorJSONBlockdevMirror(mon, "migration-vda", "libvirt-1-format",
                                        "migration-vda-nbd", "full", 2 << 20) == 0);
    CHECK("storage: blockdev-mirror top without a speed",
          qemuMonitorJSONBlockdevMirror(mon, "migration-vdb", "libvirt-2-format",
                                        "migration-vdb-nbd", "top", 0) == 0);
    CHECK("storage: block-job-cancel (complete a ready mirror)",
          qemuMonitorJSONBlockJobCancel(mon, "migration-vda", false) == 0);
    CHECK("storage: block-job-cancel forced, QEMU's refusal reported",
          qemuMonitorJSONBlockJobCancel(mon, "migration-vdb", true) < 0 &&
          testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: unable to execute QEMU command 'block-job-cancel': "
                      "GenericError: Block job 'migration-vdb' not found"));
    CHECK("storage: block-job-set-speed 0 (unlimited)",
          qemuMonitorJSONBlockJobSetSpeed(mon, "migration-vda", 0) == 0);
    CHECK("storage: migrate-continue from pre-switchover",
          qemuMonitorJSONMigrateContinue(mon, "pre-switchover") == 0);
    CHECK("storage: nbd-server-stop", qemuMonitorJSONNBDServerStop(mon) == 0);
    CHECK("storage: script", testFinish(srv, mon));

    props = qemuMonitorJSONBuildNBDClientProps("migration-vda-nbd", "::1", 49153, "vda");
    want = tdmJSONValueFromString("{\"driver\": \"nbd\", \"node-name\": \"migration-vda-nbd\", "
                                  "\"server\": {\"type\": \"inet\", \"host\": \"::1\", "
                                  "\"port\": \"49153\"}, \"export\": \"vda\"}");
    CHECK("storage: blockdev-add arguments of the NBD client node",
          props && want && tdmJSONValueEqual(props, want));
}


static void
testErrorReply(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;

    fakeQMPExpect(srv, "cont", NULL);
    fakeQMPReplyError(srv, -1, "GenericError", "Resetting the Virtual Machine is required");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("error reply: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("error reply: command fails", qemuMonitorJSONStartCPUs(mon) < 0);
    CHECK("error reply: mapped with QEMU's class and desc",
          testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: unable to execute QEMU command 'cont': "
                      "GenericError: Resetting the Virtual Machine is required"));
    CHECK("error reply: monitor still usable", !qemuMonitorIsUnresponsive(mon));
    CHECK("error reply: script", testFinish(srv, mon));
}


/* The hot-plug commands (qemu_hotplug.c): their arguments as built, and
 * QEMU's refusal reported with its words. */
static void
testHotplugCommands(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    g_autoptr(tdmJSONValue) dev = NULL;
    g_autoptr(tdmJSONValue) dev2 = NULL;
    g_autoptr(tdmJSONValue) netdev = NULL;
    g_autoptr(tdmJSONValue) nodes = NULL;
    g_auto(GStrv) names = NULL;
    g_auto(GStrv) bad = NULL;

    fakeQMPExpect(srv, "device_add",
                  "{\"driver\": \"virtio-blk-pci\", \"bus\": \"pci.0\", \"addr\": \"0x7\", "
                  "\"drive\": \"libvirt-3-format\", \"id\": \"virtio-disk1\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "device_add", "{\"driver\": \"scsi-hd\", \"id\": \"scsi0-0-300-0\"}");
    fakeQMPReplyError(srv, -1, "GenericError", "bad scsi device id: 300");
    fakeQMPExpect(srv, "device_del", "{\"id\": \"virtio-disk1\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "netdev_add", "{\"type\": \"user\", \"id\": \"hostnet1\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "netdev_del", "{\"id\": \"hostnet1\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "qom-list", "{\"path\": \"/machine/peripheral\"}");
    fakeQMPReply(srv, -1, "[{\"name\": \"type\", \"type\": \"string\"}, "
                 "{\"name\": \"virtio-disk0\", \"type\": \"child<virtio-blk-pci>\"}, "
                 "{\"name\": \"net0\", \"type\": \"child<virtio-net-pci>\"}]");
    fakeQMPExpect(srv, "qom-list", "{\"path\": \"/machine/peripheral\"}");
    fakeQMPReply(srv, -1, "[{\"type\": \"string\"}]");
    fakeQMPExpect(srv, "query-named-block-nodes", "{\"flat\": true}");
    fakeQMPReply(srv, -1, "[{\"node-name\": \"libvirt-2-format\", \"file\": \"/i.raw\"}]");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("hotplug: start", false);
        fakeQMPFree(srv);
        return;
    }
    tdmJSONValueObjectCreate(&dev, "s:driver", "virtio-blk-pci", "s:bus", "pci.0",
                             "s:addr", "0x7", "s:drive", "libvirt-3-format",
                             "s:id", "virtio-disk1", NULL);
    CHECK("hotplug: device_add with the device's properties",
          qemuMonitorJSONDeviceAdd(mon, &dev) == 0 && !dev);
    tdmJSONValueObjectCreate(&dev2, "s:driver", "scsi-hd", "s:id", "scsi0-0-300-0", NULL);
    CHECK("hotplug: device_add refused by QEMU fails",
          qemuMonitorJSONDeviceAdd(mon, &dev2) < 0);
    CHECK("hotplug: ... with QEMU's error",
          testErrorIs(VIR_ERR_INTERNAL_ERROR,
                      "internal error: unable to execute QEMU command 'device_add': "
                      "GenericError: bad scsi device id: 300"));
    CHECK("hotplug: device_del by id", qemuMonitorJSONDeviceDel(mon, "virtio-disk1") == 0);
    tdmJSONValueObjectCreate(&netdev, "s:type", "user", "s:id", "hostnet1", NULL);
    CHECK("hotplug: netdev_add", qemuMonitorJSONNetdevAdd(mon, &netdev) == 0 && !netdev);
    CHECK("hotplug: netdev_del by id", qemuMonitorJSONNetdevDel(mon, "hostnet1") == 0);
    CHECK("hotplug: qom-list names",
          qemuMonitorJSONQomListNames(mon, "/machine/peripheral", &names) == 0 && names &&
          g_strv_length(names) == 3 && STREQ(names[1], "virtio-disk0") && STREQ(names[2], "net0"));
    CHECK("hotplug: qom-list entry without a name is an error",
          qemuMonitorJSONQomListNames(mon, "/machine/peripheral", &bad) < 0 && !bad &&
          testErrorIs(VIR_ERR_INTERNAL_ERROR, "internal error: qom-list reply entry has no name"));
    CHECK("hotplug: query-named-block-nodes as sent",
          qemuMonitorJSONQueryNamedBlockNodes(mon, &nodes) == 0 && nodes &&
          tdmJSONValueArraySize(nodes) == 1 &&
          STREQ_NULLABLE(tdmJSONValueObjectGetString(tdmJSONValueArrayGet(nodes, 0), "file"),
                         "/i.raw"));
    CHECK("hotplug: script", testFinish(srv, mon));
}


/* getfd passes the fd with the command: the fake server gets a working
 * copy of it, the caller keeps its own. */
static void
testPassFd(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    int pipefd[2] = { -1, -1 };
    int got;
    size_t count = 0;
    char buf[8] = { 0 };

    fakeQMPExpect(srv, "getfd", "{\"fdname\": \"graphicsfd\"}");
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "add_client",
                  "{\"protocol\": \"vnc\", \"fdname\": \"graphicsfd\", \"skipauth\": false}");
    fakeQMPReply(srv, -1, "{}");

    if (pipe(pipefd) < 0 || !(mon = testMonitorStart(srv))) {
        CHECK("pass fd: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("pass fd: getfd succeeds",
          qemuMonitorJSONSendFileHandle(mon, "graphicsfd", pipefd[1]) == 0);
    CHECK("pass fd: add_client succeeds",
          qemuMonitorJSONAddClient(mon, "vnc", "graphicsfd", false) == 0);
    got = fakeQMPTakeReceivedFD(srv, &count);
    CHECK("pass fd: exactly one fd reached the server", got >= 0 && count == 1);
    CHECK("pass fd: it is a copy of the caller's (a write reaches the pipe)",
          got >= 0 && write(got, "tandem", 6) == 6 && read(pipefd[0], buf, 6) == 6 &&
          memcmp(buf, "tandem", 6) == 0);
    CHECK("pass fd: the caller keeps its own fd open", fcntl(pipefd[1], F_GETFD) >= 0);
    if (got >= 0)
        close(got);
    close(pipefd[0]);
    close(pipefd[1]);
    CHECK("pass fd: script", testFinish(srv, mon));
}


static void
testEventsOrder(void)
{
    fakeQMP *srv = fakeQMPNew();
    qemuMonitor *mon;
    g_autofree char *seen1 = NULL;
    g_autofree char *seen2 = NULL;
    g_autofree char *all = NULL;
    bool running = false;
    gint64 deadline;

    fakeQMPAddGreeting(srv);
    fakeQMPExpect(srv, "qmp_capabilities", NULL);
    fakeQMPEvent(srv, "EV_A", NULL);
    fakeQMPReply(srv, -1, "{}");
    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPEvent(srv, "EV_B", "{\"x\": 1}");
    fakeQMPDelay(srv, 50);
    fakeQMPEvent(srv, "EV_C", NULL);
    fakeQMPReply(srv, -1, "{\"running\": true, \"status\": \"running\"}");
    fakeQMPEvent(srv, "EV_D", NULL);
    fakeQMPExpect(srv, "stop", NULL);
    fakeQMPEvent(srv, "STOP", NULL);
    fakeQMPReply(srv, -1, "{}");
    fakeQMPEvent(srv, "RESUME", NULL);
    fakeQMPEvent(srv, "RESET", "{\"guest\": false, \"reason\": \"host-qmp-system-reset\"}");
    fakeQMPEvent(srv, "POWERDOWN", NULL);
    fakeQMPEvent(srv, "SHUTDOWN", "{\"guest\": true, \"reason\": \"guest-shutdown\"}");
    fakeQMPEvent(srv, "MIGRATION", "{\"status\": \"completed\"}");
    fakeQMPEvent(srv, "MIGRATION_PASS", "{\"pass\": 3}");
    fakeQMPEvent(srv, "BLOCK_JOB_COMPLETED", "{\"device\": \"drive-virtio-disk0\", "
                 "\"type\": \"mirror\", \"len\": 1048576, \"offset\": 1048576, \"speed\": 0}");
    fakeQMPEvent(srv, "DEVICE_DELETED", "{\"device\": \"net1\", \"path\": \"/machine/peripheral/net1\"}");
    fakeQMPEvent(srv, "GUEST_PANICKED", "{\"action\": \"pause\"}");
    fakeQMPEvent(srv, "DUMP_COMPLETED", "{\"result\": {\"total\": 4096, \"status\": "
                 "\"completed\", \"completed\": 4096}}");
    fakeQMPEvent(srv, "MIGRATION", "{\"status\": \"bogus-status\"}");
    fakeQMPEvent(srv, "EV_LAST", NULL);

    if (!(mon = testMonitorStart(srv))) {
        CHECK("events: start", false);
        fakeQMPFree(srv);
        return;
    }
    seen1 = testEventsGet();
    CHECK("events: event before a reply dispatched before the caller returns",
          STREQ(seen1, "EV_A,"));
    CHECK("events: command between events", qemuMonitorJSONQueryStatus(mon, &running, NULL) == 0 &&
          running);
    seen2 = testEventsGet();
    /* EV_D follows the reply and may already be dispatched too */
    CHECK("events: events between replies dispatched in order",
          STREQ(seen2, "EV_A,EV_B,EV_C,") || STREQ(seen2, "EV_A,EV_B,EV_C,EV_D,"));
    CHECK("events: stop", qemuMonitorJSONStopCPUs(mon) == 0);

    deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
        g_free(all);
        all = testEventsGet();
        if (g_str_has_suffix(all, "EV_LAST,"))
            break;
        g_usleep(10 * 1000);
    }
    CHECK("events: events after the reply dispatched in order",
          STREQ_NULLABLE(all, "EV_A,EV_B,EV_C,EV_D,STOP,RESUME,RESET,POWERDOWN,SHUTDOWN,"
                         "MIGRATION,MIGRATION_PASS,BLOCK_JOB_COMPLETED,DEVICE_DELETED,"
                         "GUEST_PANICKED,DUMP_COMPLETED,MIGRATION,EV_LAST,"));
    g_mutex_lock(&ev.lock);
    CHECK("events: timestamp passed", ev.lastSeconds > 1600000000);
    CHECK("events: typed STOP/RESUME/RESET/POWERDOWN",
          ev.stop == 1 && ev.resume == 1 && ev.reset == 1 && ev.powerdown == 1);
    CHECK("events: typed SHUTDOWN", ev.shutdown == 1 && ev.shutdownGuest &&
          STREQ_NULLABLE(ev.shutdownReason, "guest-shutdown"));
    CHECK("events: typed MIGRATION (bogus status ignored)",
          ev.migrationStatus == QEMU_MONITOR_MIGRATION_STATUS_COMPLETED);
    CHECK("events: typed MIGRATION_PASS", ev.migrationPass == 3);
    CHECK("events: typed BLOCK_JOB_COMPLETED",
          ev.blockJobType == QEMU_MONITOR_BLOCK_JOB_EVENT_COMPLETED &&
          STREQ_NULLABLE(ev.blockJobDevice, "drive-virtio-disk0") &&
          ev.blockJobLen == 1048576);
    CHECK("events: typed DEVICE_DELETED", STREQ_NULLABLE(ev.deviceDeleted, "net1"));
    CHECK("events: typed GUEST_PANICKED", STREQ_NULLABLE(ev.panicAction, "pause"));
    CHECK("events: typed DUMP_COMPLETED", ev.dumpStatus == 2 && ev.dumpTotal == 4096);
    g_mutex_unlock(&ev.lock);
    CHECK("events: script", testFinish(srv, mon));
}


static void
testEofMidReply(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    bool running;
    gint64 start;

    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPRaw(srv, "{\"return\": {\"running\": tr");
    fakeQMPDelay(srv, 50);
    fakeQMPClose(srv);

    if (!(mon = testMonitorStart(srv))) {
        CHECK("eof: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("eof: waiter fails", qemuMonitorJSONQueryStatus(mon, &running, NULL) < 0);
    CHECK("eof: clear error",
          testErrorIs(VIR_ERR_OPERATION_FAILED,
                      "operation failed: QEMU monitor closed: end of file from QEMU"));
    CHECK("eof: eof callback called", testWaitCounter(&ev.eof, 1, 2000));
    start = g_get_monotonic_time();
    CHECK("eof: later command fails at once",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) < 0 &&
          testErrorIs(VIR_ERR_OPERATION_FAILED, "operation failed: QEMU monitor closed") &&
          g_get_monotonic_time() - start < 500 * 1000);
    g_usleep(100 * 1000);
    CHECK("eof: eof callback called once, no error callback",
          testEventsCount(&ev.eof) == 1 && testEventsCount(&ev.error) == 0);
    CHECK("eof: script", testFinish(srv, mon));
    CHECK("eof: no eof callback from close", testEventsCount(&ev.eof) == 1);
}


static void
testGarbage(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    bool running = false;

    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPRaw(srv, "this is not JSON\r\n");
    fakeQMPRaw(srv, "\x01\x02\xff{]\n");
    fakeQMPRaw(srv, "[1, 2, 3]\n");
    fakeQMPRaw(srv, "{\"neither\": \"reply nor event\"}\n");
    fakeQMPRaw(srv, "\n\r\n");
    fakeQMPReply(srv, -1, "{\"running\": true, \"status\": \"running\"}");
    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPRaw(srv, "{\"return\": {\"running\": tr\r\n");      /* truncated */
    fakeQMPRaw(srv, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": \n");
    fakeQMPReply(srv, -1, "{\"running\": false, \"status\": \"paused\"}");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("garbage: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("garbage: lines ignored, reply delivered",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) == 0 && running);
    CHECK("truncated JSON: line ignored, reply delivered",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) == 0 && !running);
    CHECK("garbage: no eof/error callback, no event",
          testEventsCount(&ev.eof) == 0 && testEventsCount(&ev.error) == 0 &&
          testEventsCount(&ev.stop) == 0);
    CHECK("garbage: script", testFinish(srv, mon));
}


static void
testOversized(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    bool running;

    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPRaw(srv, "{\"return\": \"");
    fakeQMPRawRepeat(srv, 'x', QEMU_MONITOR_MAX_MESSAGE + 4096);
    fakeQMPRaw(srv, "\"}\n");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("oversized: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("oversized: waiter fails",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) < 0 &&
          testErrorIs(VIR_ERR_OPERATION_FAILED,
                      "operation failed: QEMU monitor closed: message from QEMU exceeds 10485760 bytes"));
    CHECK("oversized: error callback once",
          testWaitCounter(&ev.error, 1, 2000) && testEventsCount(&ev.eof) == 0);
    g_usleep(100 * 1000);
    CHECK("oversized: still once", testEventsCount(&ev.error) == 1);
    CHECK("oversized: script", testFinish(srv, mon));
}


static void
testTimeout(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    bool running = true;
    unsigned long long mem;
    gint64 start;
    gint64 elapsed;
    int slot;

    slot = fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPDelay(srv, 1500);
    fakeQMPReply(srv, slot, "{\"running\": false, \"status\": \"paused\"}");   /* late */
    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPReply(srv, -1, "{\"running\": true, \"status\": \"running\"}");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("timeout: start", false);
        fakeQMPFree(srv);
        return;
    }
    qemuMonitorSetTimeouts(mon, 1000, 0, 0);

    start = g_get_monotonic_time();
    CHECK("timeout: reply never comes -> fails",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) < 0);
    elapsed = g_get_monotonic_time() - start;
    CHECK("timeout: VIR_ERR_OPERATION_TIMEOUT with the exact message",
          virGetLastErrorCode() == VIR_ERR_OPERATION_TIMEOUT &&
          STREQ(virGetLastErrorMessage(),
                "Timed out during operation: QEMU monitor command 'query-status' "
                "timed out after 1 s"));
    CHECK("timeout: after the deadline, not much later",
          elapsed >= 950 * 1000 && elapsed < 1500 * 1000);
    CHECK("timeout: monitor marked unresponsive", qemuMonitorIsUnresponsive(mon));

    start = g_get_monotonic_time();
    CHECK("timeout: later command fails fast",
          qemuMonitorJSONGetBalloonInfo(mon, &mem) < 0 &&
          g_get_monotonic_time() - start < 100 * 1000);
    CHECK("timeout: fast-fail error is clear",
          testErrorIs(VIR_ERR_OPERATION_TIMEOUT,
                      "Timed out during operation: QEMU monitor is not responding "
                      "(command 'query-status' got no reply); not sending 'query-balloon'"));

    start = g_get_monotonic_time();
    while (qemuMonitorIsUnresponsive(mon) &&
           g_get_monotonic_time() - start < 3 * G_USEC_PER_SEC)
        g_usleep(10 * 1000);
    CHECK("late reply: discarded, monitor responsive again", !qemuMonitorIsUnresponsive(mon));
    CHECK("late reply: next command gets its own reply",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) == 0 && running);
    CHECK("timeout: no eof callback", testEventsCount(&ev.eof) == 0);
    CHECK("timeout: script", testFinish(srv, mon));
}


static void
testUnknownId(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    bool running = false;

    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPRaw(srv, "{\"return\": {\"running\": false, \"status\": \"paused\"}, \"id\": \"bogus\"}\r\n");
    fakeQMPRaw(srv, "{\"return\": {}}\r\n");
    fakeQMPRaw(srv, "{\"return\": {}, \"id\": 17}\r\n");
    fakeQMPRaw(srv, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
    fakeQMPReply(srv, -1, "{\"running\": true, \"status\": \"running\"}");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("unknown id: start", false);
        fakeQMPFree(srv);
        return;
    }
    CHECK("unknown id: ignored, real reply delivered",
          qemuMonitorJSONQueryStatus(mon, &running, NULL) == 0 && running);
    CHECK("unknown id: script", testFinish(srv, mon));
}


typedef struct {
    qemuMonitor *mon;
    int n;
    int rc;
    long long got;
    bool running;
    GMutex *startLock;
} testWorker;


static gpointer
testEchoWorker(gpointer opaque)
{
    testWorker *w = opaque;
    g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("test-echo", "i:n", w->n, NULL);
    g_autoptr(tdmJSONValue) reply = NULL;
    tdmJSONValue *ret;

    w->rc = qemuMonitorSendCommand(w->mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply);
    if (w->rc == 0 &&
        (!(ret = tdmJSONValueObjectGetObject(reply, "return")) ||
         tdmJSONValueObjectGetNumberLLong(ret, "n", &w->got) < 0))
        w->rc = -1;
    return NULL;
}


static void
testPipelining(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    int slots[QEMU_MONITOR_MAX_IN_FLIGHT];
    testWorker workers[10];
    GThread *threads[10];
    bool allOk = true;
    int ninth;
    int i;

    for (i = 0; i < QEMU_MONITOR_MAX_IN_FLIGHT; i++)
        slots[i] = fakeQMPExpect(srv, "test-echo", NULL);
    fakeQMPExpectNothing(srv, 300);           /* the 9th waits for a slot */
    for (i = QEMU_MONITOR_MAX_IN_FLIGHT - 1; i >= 0; i--)
        fakeQMPReply(srv, slots[i], NULL);     /* out of order */
    ninth = fakeQMPExpect(srv, "test-echo", NULL);
    fakeQMPExpect(srv, "test-echo", NULL);
    fakeQMPReply(srv, -1, NULL);
    fakeQMPReply(srv, ninth, NULL);

    if (!(mon = testMonitorStart(srv))) {
        CHECK("pipelining: start", false);
        fakeQMPFree(srv);
        return;
    }
    for (i = 0; i < 10; i++) {
        workers[i] = (testWorker) { .mon = mon, .n = 100 + i, .rc = -2 };
        threads[i] = g_thread_new("worker", testEchoWorker, &workers[i]);
    }
    for (i = 0; i < 10; i++) {
        g_thread_join(threads[i]);
        if (workers[i].rc != 0 || workers[i].got != workers[i].n) {
            fprintf(stderr, "# worker %d: rc=%d got=%lld\n", i, workers[i].rc, workers[i].got);
            allOk = false;
        }
    }
    CHECK("pipelining: 10 threads, 8 in flight, replies out of order matched by id", allOk);
    CHECK("pipelining: script (never more than 8 in flight)", testFinish(srv, mon));
}


static gpointer
testStatusWorker(gpointer opaque)
{
    testWorker *w = opaque;

    w->rc = qemuMonitorJSONQueryStatus(w->mon, &w->running, NULL);
    return NULL;
}


static void
testCoalescing(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    testWorker workers[6];
    GThread *threads[6];
    bool allOk = true;
    unsigned long long sentBefore;
    int i;

    fakeQMPExpect(srv, "query-status", NULL);
    fakeQMPDelay(srv, 500);
    fakeQMPReply(srv, -1, "{\"running\": true, \"status\": \"running\"}");
    fakeQMPExpect(srv, "query-status", "{}");
    fakeQMPReply(srv, -1, "{\"running\": false, \"status\": \"paused\"}");

    if (!(mon = testMonitorStart(srv))) {
        CHECK("coalescing: start", false);
        fakeQMPFree(srv);
        return;
    }
    sentBefore = qemuMonitorGetCommandsSent(mon);
    for (i = 0; i < 6; i++) {
        workers[i] = (testWorker) { .mon = mon, .rc = -2 };
        threads[i] = g_thread_new("status", testStatusWorker, &workers[i]);
    }
    for (i = 0; i < 6; i++) {
        g_thread_join(threads[i]);
        if (workers[i].rc != 0 || !workers[i].running)
            allOk = false;
    }
    CHECK("coalescing: all 6 callers get the reply", allOk);
    CHECK("coalescing: one command on the wire",
          qemuMonitorGetCommandsSent(mon) - sentBefore == 1 &&
          fakeQMPCommandsReceived(srv) == 2);
    {
        /* different arguments: not the same query, a round trip of its own */
        g_autoptr(tdmJSONValue) cmd = tdmJSONCommandBuild("query-status", NULL);
        g_autoptr(tdmJSONValue) args = tdmJSONValueNewObject();
        g_autoptr(tdmJSONValue) reply = NULL;
        bool running = true;

        tdmJSONValueObjectSet(cmd, "arguments", &args);
        CHECK("coalescing: a later query is sent again",
              qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) == 0 &&
              qemuMonitorJSONParseQueryStatusReply(reply, &running, NULL) == 0 && !running);
    }
    CHECK("coalescing: script", testFinish(srv, mon));
}


static void
testCloseWakesWaiters(void)
{
    fakeQMP *srv = testServerNew();
    qemuMonitor *mon;
    testWorker w = { 0 };
    GThread *thread;
    gint64 start;

    fakeQMPExpect(srv, "query-status", NULL);   /* never answered */

    if (!(mon = testMonitorStart(srv))) {
        CHECK("close: start", false);
        fakeQMPFree(srv);
        return;
    }
    /* the waiter holds a reference of its own, as qemuDomainObjEnterMonitor
     * does (qemu_monitor.h): the close releases only the owner's */
    w.mon = virObjectRef(mon);
    w.rc = -2;
    thread = g_thread_new("status", testStatusWorker, &w);
    fakeQMPWaitScript(srv, 5000);
    g_usleep(50 * 1000);
    start = g_get_monotonic_time();
    CHECK("close: script", testFinish(srv, mon));
    g_thread_join(thread);
    virObjectUnref(w.mon);
    CHECK("close: waiter failed at once",
          w.rc == -1 && g_get_monotonic_time() - start < 1000 * 1000);
    CHECK("close: no eof callback for an owner close", testEventsCount(&ev.eof) == 0);
}


int
main(void)
{
    signal(SIGPIPE, SIG_IGN);

    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
        fprintf(stderr, "cannot initialize libvirt\n");
        return EXIT_FAILURE;
    }
    g_mutex_init(&ev.lock);
    ev.events = g_string_new(NULL);
    /* the default main context exists before the loop thread starts (as
     * in libvirtd): created lazily by that thread, it would reach this one
     * through glib's own atomics, which ThreadSanitizer does not see */
    (void) g_main_context_default();
    g_thread_unref(g_thread_new("eventloop", testEventLoop, NULL));

    testNegotiation();
    testSimpleCommands();
    testStorageMigrationCommands();
    testHotplugCommands();
    testErrorReply();
    testPassFd();
    testEventsOrder();
    testEofMidReply();
    testGarbage();
    testOversized();
    testTimeout();
    testUnknownId();
    testPipelining();
    testCoalescing();
    testCloseWakesWaiters();

    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
