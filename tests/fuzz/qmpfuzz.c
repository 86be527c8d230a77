/*
 * qmpfuzz.c: libFuzzer target for the QMP message parser and the reply
 * parsers (qemuMonitorParseMessage, qemuMonitorDispatchEvent,
 * qemuMonitorJSONParse*Reply, tdmJSON parse/format)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is a stream of QMP lines, as QEMU would write them on the
 * monitor socket.  Build and run: make fuzz-qmp FUZZ_SECONDS=60
 */
#include <config.h>

#include <stdint.h>

#include "qemu_monitor.h"
#include "qemu_monitor_json.h"
#include "tdmjson.h"
#include "virerror.h"
#include "virlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t fuzzSink;

static void
fuzzSimple(qemuMonitor *mon G_GNUC_UNUSED, void *opaque G_GNUC_UNUSED)
{
    fuzzSink++;
}

static void
fuzzEvent(qemuMonitor *mon G_GNUC_UNUSED, const char *event, tdmJSONValue *data,
          long long seconds, unsigned int micros, void *opaque G_GNUC_UNUSED)
{
    fuzzSink += strlen(event) + (data ? tdmJSONValueObjectKeysNumber(data) : 0) +
        (size_t) seconds + micros;
}

static void
fuzzShutdown(qemuMonitor *mon G_GNUC_UNUSED, bool guest, const char *reason,
             void *opaque G_GNUC_UNUSED)
{
    fuzzSink += guest + (reason ? strlen(reason) : 0);
}

static void
fuzzInt(qemuMonitor *mon G_GNUC_UNUSED, int val, void *opaque G_GNUC_UNUSED)
{
    fuzzSink += val;
}

static void
fuzzBlockJob(qemuMonitor *mon G_GNUC_UNUSED, qemuMonitorBlockJobEvent type,
             const char *device, const char *jobType, unsigned long long len,
             unsigned long long offset, const char *error, void *opaque G_GNUC_UNUSED)
{
    fuzzSink += type + strlen(device) + (jobType ? strlen(jobType) : 0) +
        len + offset + (error ? strlen(error) : 0);
}

static void
fuzzString(qemuMonitor *mon G_GNUC_UNUSED, const char *str, void *opaque G_GNUC_UNUSED)
{
    fuzzSink += strlen(str);
}

static void
fuzzPanic(qemuMonitor *mon G_GNUC_UNUSED, const char *action, tdmJSONValue *info,
          void *opaque G_GNUC_UNUSED)
{
    fuzzSink += (action ? strlen(action) : 0) + (info ? 1 : 0);
}

static void
fuzzDump(qemuMonitor *mon G_GNUC_UNUSED, int status, qemuMonitorDumpStats *stats,
         const char *error, void *opaque G_GNUC_UNUSED)
{
    fuzzSink += status + stats->completed + stats->total + (error ? strlen(error) : 0);
}

static qemuMonitorCallbacks fuzzCallbacks = {
    .domainEvent = fuzzEvent,
    .domainStop = fuzzSimple,
    .domainResume = fuzzSimple,
    .domainShutdown = fuzzShutdown,
    .domainReset = fuzzSimple,
    .domainPowerdown = fuzzSimple,
    .domainMigrationStatus = fuzzInt,
    .domainMigrationPass = fuzzInt,
    .domainBlockJob = fuzzBlockJob,
    .domainDeviceDeleted = fuzzString,
    .domainGuestPanic = fuzzPanic,
    .domainDumpCompleted = fuzzDump,
};


static void
fuzzReply(tdmJSONValue *reply)
{
    bool running;
    int status;
    unsigned long long mem;
    qemuMonitorCPUInfo *cpus = NULL;
    qemuMonitorBlockStats *stats = NULL;
    qemuMonitorBlockInfo *info = NULL;
    qemuMonitorMigrationStats mig;
    size_t n = 0;

    ignore_value(qemuMonitorReplyCheckError("fuzz", reply));
    ignore_value(qemuMonitorJSONParseQueryStatusReply(reply, &running, &status));
    ignore_value(qemuMonitorJSONParseBalloonReply(reply, &mem));
    if (qemuMonitorJSONParseCPUsFastReply(reply, &cpus, &n) == 0)
        qemuMonitorCPUInfoFree(cpus, n);
    if (qemuMonitorJSONParseBlockStatsReply(reply, &stats, &n) == 0)
        qemuMonitorBlockStatsFree(stats, n);
    if (qemuMonitorJSONParseQueryBlockReply(reply, &info, &n) == 0)
        qemuMonitorBlockInfoFree(info, n);
    ignore_value(qemuMonitorJSONParseQueryMigrateReply(reply, &mig));
    qemuMonitorMigrationStatsClear(&mig);
}


static void
fuzzLine(const char *line, size_t len)
{
    g_auto(qemuMonitorParsedMessage) msg = { 0 };
    g_autofree char *text = NULL;

    switch (qemuMonitorParseMessage(line, len, &msg)) {
    case QEMU_MONITOR_MESSAGE_EVENT:
        qemuMonitorDispatchEvent(NULL, &fuzzCallbacks, NULL, &msg);
        break;
    case QEMU_MONITOR_MESSAGE_REPLY:
        fuzzReply(msg.value);
        break;
    case QEMU_MONITOR_MESSAGE_GREETING:
    case QEMU_MONITOR_MESSAGE_INVALID:
    case QEMU_MONITOR_MESSAGE_LAST:
        break;
    }

    /* whatever parsed must format, and re-parse to the same value */
    if (msg.value && (text = tdmJSONValueToString(msg.value, false))) {
        g_autoptr(tdmJSONValue) again = tdmJSONValueFromString(text);

        if (!again || !tdmJSONValueEqual(again, msg.value) || strchr(text, '\n'))
            abort();
    }
    virResetLastError();
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool initialized;
    const char *p = (const char *) data;
    const char *end = p + size;

    if (!initialized) {
        if (virInitialize() < 0)
            abort();
        /* parse errors are expected by the thousand: keep them quiet */
        virLogSetDefaultPriority(VIR_LOG_ERROR);
        ignore_value(virLogSetOutputs("4:file:/dev/null"));
        initialized = true;
    }

    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);

        if (len > 0 && p[len - 1] == '\r')
            fuzzLine(p, len - 1);
        else
            fuzzLine(p, len);
        p += len + 1;
    }
    return 0;
}
