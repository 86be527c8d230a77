/*
 * qemu_monitor.c: QMP transport -- socket, event loop, send/wait, events,
 * deadlines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How a command travels:
 *
 *   caller thread                          event loop thread
 *   -------------                          -----------------
 *   qemuMonitorSendCommand
 *     lock; join an identical read-only
 *     query in flight, or queue a new
 *     message (state PENDING)
 *     fill free slots: PENDING -> IN_FLIGHT,
 *     its line appended to txBuf
 *     wait on mon->notify (deadline) ----.   qemuMonitorIO: write txBuf,
 *                                        |   read lines (under the lock);
 *                                        |   then, lock released, each line
 *                                        |   in order: event -> callbacks,
 *                                        '-- reply -> lock, mark DONE, broadcast
 *     each waiter takes its own copy
 *
 * A command whose last waiter gave up (deadline) while it was IN_FLIGHT is
 * "abandoned": it keeps its slot until the late reply arrives, which is
 * then dropped.  While any command is abandoned the monitor is
 * "unresponsive" and new commands fail at once.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>

#include "qemu_monitor.h"
#include "virerror.h"
#include "virlog.h"
#include "virobject.h"
#include "virthread.h"
#include "virtime.h"
#include "virfile.h"
#include "virevent.h"
#include "virutil.h"
#include "tdmtrace.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_monitor");

/* Bytes read per read(2) and at most per wake-up of the event loop. */
#define QEMU_MONITOR_READ_CHUNK (64 * 1024)
#define QEMU_MONITOR_READ_BUDGET (1024 * 1024)

typedef enum {
    QEMU_MONITOR_MSG_PENDING,     /* queued, waiting for a free slot */
    QEMU_MONITOR_MSG_IN_FLIGHT,   /* written (or in txBuf), no reply yet */
    QEMU_MONITOR_MSG_DONE,        /* reply arrived, or failed */
} qemuMonitorMsgState;

typedef struct _qemuMonitorMsg qemuMonitorMsg;
struct _qemuMonitorMsg {
    /* all fields protected by mon->lock */
    char *id;                /* our "id", unique per monitor */
    char *cmdname;
    char *key;               /* coalescing key, NULL if not coalescible */
    char *line;              /* the command as sent, with "\n" */
    int passFd;              /* sent with the command's first byte, or -1 */
    qemuMonitorMsgState state;
    bool failed;             /* DONE without a reply (monitor broke) */
    tdmJSONValue *reply;     /* the whole reply object when DONE */
    unsigned int waiters;    /* callers waiting; 0 while IN_FLIGHT = abandoned */
};

struct _qemuMonitor {
    virObjectLockable parent;     /* parent.lock is "mon->lock" */

    /* immutable after qemuMonitorOpen */
    qemuMonitorCallbacks *cb;
    void *opaque;

    /* protected by mon->lock */
    int fd;
    int watch;                    /* event loop handle, -1 if none */
    virCond notify;               /* broadcast on reply, greeting, failure */

    char *rxBuf;                  /* bytes read, not yet a complete line */
    size_t rxLen;
    size_t rxAlloc;
    size_t rxScanned;             /* rxBuf[0..rxScanned) has no newline */
    GString *txBuf;               /* bytes to write */
    size_t txOffset;              /* already written from txBuf */
    int txFd;                     /* to pass (SCM_RIGHTS) with the byte at
                                   * txBuf[txFdOffset], or -1; one at a time */
    size_t txFdOffset;

    tdmJSONValue *greeting;       /* the "QMP" object of the greeting */
    unsigned long long serial;    /* last id number used */
    GQueue *pending;              /* qemuMonitorMsg *, PENDING, FIFO */
    GHashTable *inFlight;         /* id -> qemuMonitorMsg *, IN_FLIGHT */
    size_t nabandoned;            /* IN_FLIGHT messages without waiters */
    unsigned long long timeouts[QEMU_MONITOR_CMD_CLASS_LAST];  /* ms */

    bool unresponsive;            /* a command timed out, no late reply yet */
    char *unresponsiveCmd;        /* the command that timed out */
    bool broken;                  /* EOF, I/O error or local close */
    int errCode;                  /* why, for the waiters */
    char *errMsg;
    bool eofNotified;             /* eof/error callback called (once) */
    bool closed;                  /* qemuMonitorClose called */

    unsigned long long commandsSent;
};

static virClass *qemuMonitorClass;
static void qemuMonitorDispose(void *obj);

static int
qemuMonitorOnceInit(void)
{
    if (!VIR_CLASS_NEW(qemuMonitor, virClassForObjectLockable()))
        return -1;
    return 0;
}

VIR_ONCE_GLOBAL_INIT(qemuMonitor);


/* Read-only commands whose identical concurrent calls share one round trip. */
static const char *const qemuMonitorCoalescible[] = {
    "query-status",
    "query-balloon",
    "query-cpus-fast",
    "query-blockstats",
    "query-block",
    "query-migrate",
    "query-migrate-parameters",
    "query-version",
};


static const char *const qemuMonitorMigrationStatusNames[] = {
    "none", "setup", "active", "pre-switchover", "device", "postcopy-active",
    "postcopy-paused", "postcopy-recover", "completed", "failed",
    "cancelling", "cancelled", "wait-unplug",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuMonitorMigrationStatusNames) ==
                QEMU_MONITOR_MIGRATION_STATUS_LAST);


const char *
qemuMonitorMigrationStatusTypeToString(int type)
{
    if (type < 0 || type >= QEMU_MONITOR_MIGRATION_STATUS_LAST)
        return NULL;
    return qemuMonitorMigrationStatusNames[type];
}


int
qemuMonitorMigrationStatusTypeFromString(const char *str)
{
    size_t i;

    if (!str)
        return -1;
    for (i = 0; i < QEMU_MONITOR_MIGRATION_STATUS_LAST; i++) {
        if (STREQ(qemuMonitorMigrationStatusNames[i], str))
            return i;
    }
    return -1;
}


static void
qemuMonitorMsgFree(qemuMonitorMsg *msg)
{
    if (!msg)
        return;
    g_free(msg->id);
    g_free(msg->cmdname);
    g_free(msg->key);
    g_free(msg->line);
    VIR_FORCE_CLOSE(msg->passFd);
    tdmJSONValueFree(msg->reply);
    g_free(msg);
}


static void
qemuMonitorDispose(void *obj)
{
    qemuMonitor *mon = obj;
    qemuMonitorMsg *msg;

    VIR_DEBUG("mon=%p", mon);

    if (mon->cb && mon->cb->destroy)
        mon->cb->destroy(mon, mon->opaque);

    /* qemuMonitorClose or the failure path emptied these; be safe anyway */
    while ((msg = g_queue_pop_head(mon->pending)))
        qemuMonitorMsgFree(msg);
    g_queue_free(mon->pending);
    if (mon->inFlight) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, mon->inFlight);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
            g_hash_table_iter_steal(&iter);
            qemuMonitorMsgFree(value);
        }
        g_hash_table_unref(mon->inFlight);
    }

    VIR_FORCE_CLOSE(mon->fd);
    VIR_FORCE_CLOSE(mon->txFd);
    virCondDestroy(&mon->notify);
    g_free(mon->rxBuf);
    if (mon->txBuf)
        g_string_free(mon->txBuf, TRUE);
    tdmJSONValueFree(mon->greeting);
    g_free(mon->unresponsiveCmd);
    g_free(mon->errMsg);
}


/* ------------------------------------------------------------------ */
/* Parsing one message                                                 */
/* ------------------------------------------------------------------ */

void
qemuMonitorParsedMessageClear(qemuMonitorParsedMessage *msg)
{
    if (!msg)
        return;
    tdmJSONValueFree(msg->value);
    g_free(msg->id);
    memset(msg, 0, sizeof(*msg));
}


qemuMonitorMessageKind
qemuMonitorParseMessage(const char *line,
                        size_t len,
                        qemuMonitorParsedMessage *msg)
{
    tdmJSONValue *value;

    memset(msg, 0, sizeof(*msg));

    if (!(value = tdmJSONValueFromStringLen(line, len))) {
        /* the caller logs; keep the thread's last error clean */
        virResetLastError();
        return msg->kind = QEMU_MONITOR_MESSAGE_INVALID;
    }
    msg->value = value;

    if (tdmJSONValueGetType(value) != TDM_JSON_TYPE_OBJECT)
        return msg->kind = QEMU_MONITOR_MESSAGE_INVALID;

    if (tdmJSONValueObjectGetObject(value, "QMP"))
        return msg->kind = QEMU_MONITOR_MESSAGE_GREETING;

    if ((msg->event = tdmJSONValueObjectGetString(value, "event"))) {
        tdmJSONValue *timestamp = tdmJSONValueObjectGetObject(value, "timestamp");

        msg->data = tdmJSONValueObjectGetObject(value, "data");
        if (timestamp) {
            long long secs = 0;
            long long usecs = 0;

            if (tdmJSONValueObjectGetNumberLLong(timestamp, "seconds", &secs) == 0)
                msg->seconds = secs;
            if (tdmJSONValueObjectGetNumberLLong(timestamp, "microseconds", &usecs) == 0 &&
                usecs >= 0 && usecs < 1000000)
                msg->micros = usecs;
        }
        return msg->kind = QEMU_MONITOR_MESSAGE_EVENT;
    }

    if (tdmJSONValueObjectHasKey(value, "return") ||
        tdmJSONValueObjectGetObject(value, "error")) {
        const char *id = tdmJSONValueObjectGetString(value, "id");

        msg->id = g_strdup(id);
        return msg->kind = QEMU_MONITOR_MESSAGE_REPLY;
    }

    return msg->kind = QEMU_MONITOR_MESSAGE_INVALID;
}


/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static const char *const qemuMonitorBlockJobEventNames[] = {
    "BLOCK_JOB_COMPLETED",
    "BLOCK_JOB_CANCELLED",
    "BLOCK_JOB_ERROR",
    "BLOCK_JOB_READY",
    "BLOCK_JOB_PENDING",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuMonitorBlockJobEventNames) ==
                QEMU_MONITOR_BLOCK_JOB_EVENT_LAST);


static void
qemuMonitorDispatchBlockJob(qemuMonitor *mon,
                            qemuMonitorCallbacks *cb,
                            void *opaque,
                            qemuMonitorBlockJobEvent type,
                            tdmJSONValue *data)
{
    unsigned long long len = 0;
    unsigned long long offset = 0;
    const char *device = NULL;
    const char *jobType = NULL;
    const char *error = NULL;

    if (!cb->domainBlockJob)
        return;

    if (data) {
        device = tdmJSONValueObjectGetString(data, "device");
        if (!device)
            device = tdmJSONValueObjectGetString(data, "id");
        jobType = tdmJSONValueObjectGetString(data, "type");
        ignore_value(tdmJSONValueObjectGetNumberULLong(data, "len", &len));
        ignore_value(tdmJSONValueObjectGetNumberULLong(data, "offset", &offset));
        error = tdmJSONValueObjectGetString(data, "error");
        if (!error && type == QEMU_MONITOR_BLOCK_JOB_EVENT_ERROR)
            error = tdmJSONValueObjectGetString(data, "operation");
    }
    if (!device) {
        VIR_WARN("block job event without a device");
        return;
    }

    cb->domainBlockJob(mon, type, device, jobType, len, offset, error, opaque);
}


void
qemuMonitorDispatchEvent(qemuMonitor *mon,
                         qemuMonitorCallbacks *cb,
                         void *opaque,
                         qemuMonitorParsedMessage *msg)
{
    const char *name = msg->event;
    tdmJSONValue *data = msg->data;
    size_t i;

    if (!cb || !name)
        return;

    VIR_DEBUG("mon=%p event=%s", mon, name);

    if (cb->domainEvent)
        cb->domainEvent(mon, name, data, msg->seconds, msg->micros, opaque);

    if (STREQ(name, "STOP")) {
        if (cb->domainStop)
            cb->domainStop(mon, opaque);
    } else if (STREQ(name, "RESUME")) {
        if (cb->domainResume)
            cb->domainResume(mon, opaque);
    } else if (STREQ(name, "SHUTDOWN")) {
        bool guest = false;
        const char *reason = NULL;

        if (data) {
            ignore_value(tdmJSONValueObjectGetBoolean(data, "guest", &guest));
            reason = tdmJSONValueObjectGetString(data, "reason");
        }
        if (cb->domainShutdown)
            cb->domainShutdown(mon, guest, reason, opaque);
    } else if (STREQ(name, "RESET")) {
        if (cb->domainReset)
            cb->domainReset(mon, opaque);
    } else if (STREQ(name, "POWERDOWN")) {
        if (cb->domainPowerdown)
            cb->domainPowerdown(mon, opaque);
    } else if (STREQ(name, "MIGRATION")) {
        const char *str = data ? tdmJSONValueObjectGetString(data, "status") : NULL;
        int status = qemuMonitorMigrationStatusTypeFromString(str);

        if (status < 0) {
            VIR_WARN("unknown migration status '%s'", NULLSTR(str));
            return;
        }
        if (cb->domainMigrationStatus)
            cb->domainMigrationStatus(mon, status, opaque);
    } else if (STREQ(name, "MIGRATION_PASS")) {
        int pass;

        if (!data || tdmJSONValueObjectGetNumberInt(data, "pass", &pass) < 0) {
            VIR_WARN("MIGRATION_PASS event without a pass number");
            return;
        }
        if (cb->domainMigrationPass)
            cb->domainMigrationPass(mon, pass, opaque);
    } else if (STREQ(name, "DEVICE_DELETED")) {
        const char *dev = data ? tdmJSONValueObjectGetString(data, "device") : NULL;

        if (!dev) {
            VIR_DEBUG("DEVICE_DELETED without a device alias (path only)");
            return;
        }
        if (cb->domainDeviceDeleted)
            cb->domainDeviceDeleted(mon, dev, opaque);
    } else if (STREQ(name, "GUEST_PANICKED")) {
        const char *action = data ? tdmJSONValueObjectGetString(data, "action") : NULL;
        tdmJSONValue *info = data ? tdmJSONValueObjectGetObject(data, "info") : NULL;

        if (cb->domainGuestPanic)
            cb->domainGuestPanic(mon, action, info, opaque);
    } else if (STREQ(name, "DUMP_COMPLETED")) {
        static const char *const statuses[] = { "none", "active", "completed", "failed" };
        qemuMonitorDumpStats stats = { 0 };
        tdmJSONValue *result = data ? tdmJSONValueObjectGetObject(data, "result") : NULL;
        const char *error = data ? tdmJSONValueObjectGetString(data, "error") : NULL;

        stats.status = -1;
        if (result) {
            const char *st = tdmJSONValueObjectGetString(result, "status");

            for (i = 0; st && i < G_N_ELEMENTS(statuses); i++) {
                if (STREQ(st, statuses[i]))
                    stats.status = i;
            }
            ignore_value(tdmJSONValueObjectGetNumberULLong(result, "completed",
                                                           &stats.completed));
            ignore_value(tdmJSONValueObjectGetNumberULLong(result, "total",
                                                           &stats.total));
        }
        if (cb->domainDumpCompleted)
            cb->domainDumpCompleted(mon, stats.status, &stats, error, opaque);
    } else {
        for (i = 0; i < QEMU_MONITOR_BLOCK_JOB_EVENT_LAST; i++) {
            if (STREQ(name, qemuMonitorBlockJobEventNames[i])) {
                qemuMonitorDispatchBlockJob(mon, cb, opaque, i, data);
                return;
            }
        }
    }
}


/* ------------------------------------------------------------------ */
/* I/O                                                                 */
/* ------------------------------------------------------------------ */

static void
qemuMonitorUpdateWatch_locked(qemuMonitor *mon)
{
    int events = VIR_EVENT_HANDLE_READABLE;

    if (mon->watch < 0)
        return;
    if (mon->txOffset < mon->txBuf->len)
        events |= VIR_EVENT_HANDLE_WRITABLE;
    virEventUpdateHandle(mon->watch, events);
}


/* Moves PENDING messages into free slots and queues their lines. */
static void
qemuMonitorFillSlots_locked(qemuMonitor *mon)
{
    qemuMonitorMsg *msg;

    if (mon->broken)
        return;

    while (g_hash_table_size(mon->inFlight) < QEMU_MONITOR_MAX_IN_FLIGHT &&
           (msg = g_queue_peek_head(mon->pending))) {
        if (msg->passFd >= 0) {
            /* QEMU keeps the last fd it received for the next getfd:
             * one in the send buffer at a time */
            if (mon->txFd >= 0)
                break;
            mon->txFd = msg->passFd;
            msg->passFd = -1;
            mon->txFdOffset = mon->txBuf->len;
        }
        g_queue_pop_head(mon->pending);
        msg->state = QEMU_MONITOR_MSG_IN_FLIGHT;
        g_hash_table_insert(mon->inFlight, msg->id, msg);
        g_string_append(mon->txBuf, msg->line);
        mon->commandsSent++;
        VIR_DEBUG("mon=%p send id=%s cmd=%s", mon, msg->id, msg->cmdname);
    }
    qemuMonitorUpdateWatch_locked(mon);
}


/*
 * Fails every message at once and stops watching the fd.  Waiters wake up
 * and report @code/@message.  Returns true if the eof/error callback still
 * has to be called (the caller does it without the lock).
 */
static bool
qemuMonitorFailAll_locked(qemuMonitor *mon, int code, const char *message)
{
    qemuMonitorMsg *msg;
    GHashTableIter iter;
    gpointer value;

    if (!mon->broken) {
        mon->broken = true;
        mon->errCode = code;
        mon->errMsg = g_strdup(message);
        VIR_DEBUG("mon=%p broken: %s", mon, message);
    }

    if (mon->watch >= 0) {
        virEventRemoveHandle(mon->watch);
        mon->watch = -1;
    }

    while ((msg = g_queue_pop_head(mon->pending))) {
        msg->state = QEMU_MONITOR_MSG_DONE;
        msg->failed = true;
        if (msg->waiters == 0)
            qemuMonitorMsgFree(msg);
    }

    g_hash_table_iter_init(&iter, mon->inFlight);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        msg = value;
        g_hash_table_iter_steal(&iter);
        msg->state = QEMU_MONITOR_MSG_DONE;
        msg->failed = true;
        if (msg->waiters == 0)
            qemuMonitorMsgFree(msg);
    }
    mon->nabandoned = 0;

    virCondBroadcast(&mon->notify);

    if (mon->eofNotified || mon->closed)
        return false;
    mon->eofNotified = true;
    return true;
}


/* Fails the monitor from the event loop and tells the owner (once). */
static void
qemuMonitorFail(qemuMonitor *mon, bool eof, const char *message)
{
    bool notify;
    qemuMonitorCallbacks *cb = mon->cb;

    virObjectLock(mon);
    notify = qemuMonitorFailAll_locked(mon, VIR_ERR_OPERATION_FAILED, message);
    /* after an I/O or protocol error the stream is useless: hang up so
     * QEMU does not block writing to a socket nobody reads */
    if (!eof && mon->fd >= 0)
        ignore_value(shutdown(mon->fd, SHUT_RDWR));
    virObjectUnlock(mon);

    if (eof)
        VIR_DEBUG("mon=%p: %s", mon, message);
    else
        VIR_WARN("%s", message);

    if (!notify || !cb)
        return;

    /* no lock held: the owner may take its domain lock or close us */
    if (!eof && cb->errorNotify)
        cb->errorNotify(mon, mon->opaque);
    else if (cb->eofNotify)
        cb->eofNotify(mon, mon->opaque);
}


/* Sends one byte of @buf with @passfd attached (SCM_RIGHTS). */
static ssize_t
qemuMonitorSendFdByte(int sock, const char *buf, int passfd)
{
    struct msghdr hdr = { 0 };
    struct iovec iov = { .iov_base = (void *) buf, .iov_len = 1 };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct cmsghdr *cmsg;

    memset(&control, 0, sizeof(control));
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.buf;
    hdr.msg_controllen = sizeof(control.buf);
    cmsg = CMSG_FIRSTHDR(&hdr);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &passfd, sizeof(int));
    return sendmsg(sock, &hdr, MSG_NOSIGNAL);
}


/* Returns 0, or -1 with *@reason set. */
static int
qemuMonitorIOWrite_locked(qemuMonitor *mon, char **reason)
{
    while (mon->txOffset < mon->txBuf->len) {
        size_t len = mon->txBuf->len - mon->txOffset;
        ssize_t n;

        if (mon->txFd >= 0 && mon->txOffset == mon->txFdOffset) {
            n = qemuMonitorSendFdByte(mon->fd, mon->txBuf->str + mon->txOffset, mon->txFd);
            if (n > 0) {
                VIR_DEBUG("mon=%p passed fd %d", mon, mon->txFd);
                VIR_FORCE_CLOSE(mon->txFd);
            }
        } else {
            if (mon->txFd >= 0 && mon->txOffset < mon->txFdOffset)
                len = mon->txFdOffset - mon->txOffset;
            n = send(mon->fd, mon->txBuf->str + mon->txOffset, len, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK)
                n = write(mon->fd, mon->txBuf->str + mon->txOffset, len);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            *reason = g_strdup_printf(_("QEMU monitor closed: cannot write: %s"),
                                      g_strerror(errno));
            return -1;
        }
        mon->txOffset += n;
    }

    if (mon->txOffset == mon->txBuf->len) {
        g_string_truncate(mon->txBuf, 0);
        mon->txOffset = 0;
    }
    return 0;
}


/*
 * Reads what is available and cuts complete lines into @lines (GBytes,
 * without the line end).  Returns 0, 1 on end of file, -1 with *@reason.
 */
static int
qemuMonitorIORead_locked(qemuMonitor *mon, GPtrArray *lines, char **reason)
{
    size_t budget = QEMU_MONITOR_READ_BUDGET;

    while (budget > 0) {
        size_t start = 0;
        size_t i;
        ssize_t n;

        if (mon->rxAlloc - mon->rxLen < QEMU_MONITOR_READ_CHUNK) {
            mon->rxAlloc = mon->rxLen + QEMU_MONITOR_READ_CHUNK;
            mon->rxBuf = g_renew(char, mon->rxBuf, mon->rxAlloc);
        }

        n = read(mon->fd, mon->rxBuf + mon->rxLen, QEMU_MONITOR_READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            *reason = g_strdup_printf(_("QEMU monitor closed: cannot read: %s"),
                                      g_strerror(errno));
            return -1;
        }
        if (n == 0) {
            if (mon->rxLen > 0)
                *reason = g_strdup_printf(_("QEMU monitor closed: end of file from QEMU (in the middle of a %zu byte message)"),
                                          mon->rxLen);
            else
                *reason = g_strdup(_("QEMU monitor closed: end of file from QEMU"));
            return 1;
        }
        mon->rxLen += n;
        budget = (size_t) n >= budget ? 0 : budget - n;

        /* only the new bytes can hold a newline */
        for (i = mon->rxScanned; i < mon->rxLen; i++) {
            size_t end;

            if (mon->rxBuf[i] != '\n')
                continue;
            end = i;
            if (end > start && mon->rxBuf[end - 1] == '\r')
                end--;
            if (end - start > QEMU_MONITOR_MAX_MESSAGE)
                goto oversized;
            if (end > start)
                g_ptr_array_add(lines, g_bytes_new(mon->rxBuf + start, end - start));
            start = i + 1;
        }
        if (start > 0) {
            memmove(mon->rxBuf, mon->rxBuf + start, mon->rxLen - start);
            mon->rxLen -= start;
        }
        mon->rxScanned = mon->rxLen;
        if (mon->rxLen > QEMU_MONITOR_MAX_MESSAGE)
            goto oversized;
    }

    /* give back memory after a big message */
    if (mon->rxAlloc > 4 * QEMU_MONITOR_READ_CHUNK &&
        mon->rxLen < QEMU_MONITOR_READ_CHUNK) {
        mon->rxAlloc = QEMU_MONITOR_READ_CHUNK * 2;
        mon->rxBuf = g_renew(char, mon->rxBuf, mon->rxAlloc);
    }
    return 0;

 oversized:
    *reason = g_strdup_printf(_("QEMU monitor closed: message from QEMU exceeds %d bytes"),
                              QEMU_MONITOR_MAX_MESSAGE);
    return -1;
}


/* Hands a reply to its waiters (or drops it); called without the lock. */
static void
qemuMonitorHandleReply(qemuMonitor *mon, qemuMonitorParsedMessage *parsed)
{
    qemuMonitorMsg *msg;

    virObjectLock(mon);

    if (!parsed->id || !(msg = g_hash_table_lookup(mon->inFlight, parsed->id))) {
        g_autofree char *text = tdmJSONValueToString(parsed->value, false);

        virResetLastError();
        VIR_WARN("QEMU monitor reply with unknown id '%s' ignored: %.200s",
                 NULLSTR(parsed->id), NULLSTR(text));
        virObjectUnlock(mon);
        return;
    }

    g_hash_table_steal(mon->inFlight, parsed->id);

    if (msg->waiters == 0) {
        VIR_WARN("late reply to QEMU monitor command '%s' (id %s) discarded",
                 msg->cmdname, msg->id);
        qemuMonitorMsgFree(msg);
        if (mon->nabandoned > 0)
            mon->nabandoned--;
        if (mon->nabandoned == 0 && mon->unresponsive) {
            VIR_INFO("QEMU monitor responds again");
            mon->unresponsive = false;
            g_clear_pointer(&mon->unresponsiveCmd, g_free);
        }
    } else {
        VIR_DEBUG("mon=%p reply id=%s cmd=%s waiters=%u",
                  mon, msg->id, msg->cmdname, msg->waiters);
        msg->reply = g_steal_pointer(&parsed->value);
        msg->state = QEMU_MONITOR_MSG_DONE;
        virCondBroadcast(&mon->notify);
    }

    qemuMonitorFillSlots_locked(mon);
    virObjectUnlock(mon);
}


/* One complete line from QEMU; called without the lock. */
static void
qemuMonitorProcessLine(qemuMonitor *mon, GBytes *line)
{
    g_auto(qemuMonitorParsedMessage) parsed = { 0 };
    gsize len;
    const char *data = g_bytes_get_data(line, &len);
    bool closed;

    switch (qemuMonitorParseMessage(data, len, &parsed)) {
    case QEMU_MONITOR_MESSAGE_INVALID:
    case QEMU_MONITOR_MESSAGE_LAST: {
        g_autofree char *head = g_strndup(data, MIN(len, 200));
        g_autofree char *escaped = g_strescape(head, NULL);

        VIR_WARN("QEMU monitor: ignoring invalid message of %zu bytes: %s",
                 (size_t) len, escaped);
        return;
    }

    case QEMU_MONITOR_MESSAGE_GREETING:
        virObjectLock(mon);
        if (mon->greeting) {
            VIR_WARN("QEMU monitor: ignoring a second greeting");
        } else {
            mon->greeting = tdmJSONValueCopy(tdmJSONValueObjectGetObject(parsed.value,
                                                                         "QMP"));
            virCondBroadcast(&mon->notify);
        }
        virObjectUnlock(mon);
        return;

    case QEMU_MONITOR_MESSAGE_REPLY:
        qemuMonitorHandleReply(mon, &parsed);
        return;

    case QEMU_MONITOR_MESSAGE_EVENT:
        virObjectLock(mon);
        closed = mon->closed;
        virObjectUnlock(mon);
        if (closed)
            return;
        /* No monitor lock here: callbacks may take the domain lock. */
        {
            unsigned long long traceStart = tdmTraceBegin();
            double ms;

            qemuMonitorDispatchEvent(mon, mon->cb, mon->opaque, &parsed);
            if ((ms = tdmTraceSlowMs(traceStart)) > 0)
                VIR_WARN("slow: the event loop spent %.1f ms handling event %s",
                         ms, NULLSTR(parsed.event));
        }
        return;
    }
}


/*
 * The event loop callback.  Reads and writes under the monitor lock, then
 * releases it and handles the complete lines in order: an event that came
 * before a reply is dispatched before that reply's waiter wakes up.
 * Only the event loop thread runs this, so lines keep their order.
 */
static void
qemuMonitorIO(int watch, int fd, int events, void *opaque)
{
    qemuMonitor *mon = opaque;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
    g_autofree char *reason = NULL;
    bool eof = false;
    bool failed = false;
    size_t i;

    virObjectRef(mon);
    virObjectLock(mon);

    if (mon->broken || mon->watch != watch || mon->fd != fd) {
        virObjectUnlock(mon);
        virObjectUnref(mon);
        return;
    }

    if (events & VIR_EVENT_HANDLE_WRITABLE) {
        if (qemuMonitorIOWrite_locked(mon, &reason) < 0)
            failed = true;
    }

    if (!failed && (events & VIR_EVENT_HANDLE_READABLE)) {
        int rc = qemuMonitorIORead_locked(mon, lines, &reason);

        if (rc < 0)
            failed = true;
        else if (rc > 0)
            eof = true;
    }

    if (!failed && !eof && !(events & VIR_EVENT_HANDLE_READABLE)) {
        if (events & VIR_EVENT_HANDLE_HANGUP) {
            eof = true;
            reason = g_strdup(_("QEMU monitor closed: end of file from QEMU"));
        } else if (events & VIR_EVENT_HANDLE_ERROR) {
            failed = true;
            reason = g_strdup(_("QEMU monitor closed: error on the monitor socket"));
        }
    }

    if (!failed && !eof)
        qemuMonitorUpdateWatch_locked(mon);

    virObjectUnlock(mon);

    for (i = 0; i < lines->len; i++)
        qemuMonitorProcessLine(mon, g_ptr_array_index(lines, i));

    if (failed || eof)
        qemuMonitorFail(mon, eof, reason);

    virObjectUnref(mon);
}


/* ------------------------------------------------------------------ */
/* Open / close                                                        */
/* ------------------------------------------------------------------ */

qemuMonitor *
qemuMonitorOpen(int fd,
                qemuMonitorCallbacks *cb,
                void *opaque)
{
    qemuMonitor *mon;

    if (qemuMonitorInitialize() < 0)
        return NULL;

    if (fd < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("invalid file descriptor for the QEMU monitor"));
        return NULL;
    }

    if (virSetNonBlock(fd) < 0 || virSetCloseExec(fd) < 0) {
        virReportSystemError(errno, "%s",
                             _("cannot set up the QEMU monitor socket"));
        return NULL;
    }

    if (!(mon = virObjectLockableNew(qemuMonitorClass)))
        return NULL;

    mon->fd = -1;
    mon->txFd = -1;
    mon->watch = -1;
    if (virCondInit(&mon->notify) < 0) {
        virReportSystemError(errno, "%s",
                             _("cannot initialize the QEMU monitor condition"));
        virObjectUnref(mon);
        return NULL;
    }
    mon->txBuf = g_string_new(NULL);
    mon->pending = g_queue_new();
    mon->inFlight = g_hash_table_new(g_str_hash, g_str_equal);
    mon->timeouts[QEMU_MONITOR_CMD_CLASS_QUERY] = QEMU_MONITOR_TIMEOUT_QUERY_DEFAULT;
    mon->timeouts[QEMU_MONITOR_CMD_CLASS_MODIFY] = QEMU_MONITOR_TIMEOUT_MODIFY_DEFAULT;
    mon->timeouts[QEMU_MONITOR_CMD_CLASS_LONG] = QEMU_MONITOR_TIMEOUT_LONG_DEFAULT;

    /* the handle holds its own reference, dropped by the event loop */
    virObjectLock(mon);
    mon->watch = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE,
                                   qemuMonitorIO, virObjectRef(mon),
                                   virObjectUnref);
    if (mon->watch < 0) {
        virObjectUnlock(mon);
        virObjectUnref(mon);   /* the handle's reference */
        virObjectUnref(mon);
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot watch the QEMU monitor socket"));
        return NULL;
    }
    mon->fd = fd;
    /* only now: a failed open calls no callback, not even destroy */
    mon->cb = cb;
    mon->opaque = opaque;
    virObjectUnlock(mon);

    VIR_DEBUG("mon=%p fd=%d watch=%d", mon, fd, mon->watch);
    return mon;
}


void
qemuMonitorClose(qemuMonitor *mon)
{
    if (!mon)
        return;

    VIR_DEBUG("mon=%p", mon);

    virObjectLock(mon);
    if (!mon->closed) {
        mon->closed = true;
        /* no eof callback for a close the owner asked for */
        mon->eofNotified = true;
        qemuMonitorFailAll_locked(mon, VIR_ERR_OPERATION_FAILED,
                                  _("QEMU monitor closed: the monitor was closed"));
        VIR_FORCE_CLOSE(mon->fd);
    }
    virObjectUnlock(mon);

    virObjectUnref(mon);
}


void
qemuMonitorSetTimeouts(qemuMonitor *mon,
                       unsigned long long queryMs,
                       unsigned long long modifyMs,
                       unsigned long long longMs)
{
    virObjectLock(mon);
    if (queryMs)
        mon->timeouts[QEMU_MONITOR_CMD_CLASS_QUERY] = queryMs;
    if (modifyMs)
        mon->timeouts[QEMU_MONITOR_CMD_CLASS_MODIFY] = modifyMs;
    if (longMs)
        mon->timeouts[QEMU_MONITOR_CMD_CLASS_LONG] = longMs;
    virObjectUnlock(mon);
}


bool
qemuMonitorIsUnresponsive(qemuMonitor *mon)
{
    bool ret;

    virObjectLock(mon);
    ret = mon->unresponsive;
    virObjectUnlock(mon);
    return ret;
}


unsigned long long
qemuMonitorGetCommandsSent(qemuMonitor *mon)
{
    unsigned long long ret;

    virObjectLock(mon);
    ret = mon->commandsSent;
    virObjectUnlock(mon);
    return ret;
}


tdmJSONValue *
qemuMonitorGetGreeting(qemuMonitor *mon)
{
    tdmJSONValue *ret;

    virObjectLock(mon);
    ret = tdmJSONValueCopy(mon->greeting);
    virObjectUnlock(mon);
    return ret;
}


/* "10 s" or "250 ms" */
static char *
qemuMonitorFormatTimeout(unsigned long long ms)
{
    if (ms % 1000 == 0)
        return g_strdup_printf("%llu s", ms / 1000);
    return g_strdup_printf("%llu ms", ms);
}


static void
qemuMonitorReportBroken_locked(qemuMonitor *mon)
{
    virReportError(mon->errCode ? mon->errCode : VIR_ERR_OPERATION_FAILED,
                   "%s", mon->errMsg ? mon->errMsg : _("QEMU monitor closed"));
}


int
qemuMonitorNegotiate(qemuMonitor *mon)
{
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    unsigned long long now;
    unsigned long long deadline;
    unsigned long long timeout;

    if (virTimeMillisNow(&now) < 0)
        return -1;

    virObjectLock(mon);
    timeout = mon->timeouts[QEMU_MONITOR_CMD_CLASS_QUERY];
    deadline = now + timeout;
    while (!mon->greeting && !mon->broken) {
        if (virCondWaitUntil(&mon->notify, &mon->parent.lock, deadline) < 0) {
            if (errno == ETIMEDOUT && !mon->greeting && !mon->broken) {
                g_autofree char *after = qemuMonitorFormatTimeout(timeout);

                virReportError(VIR_ERR_OPERATION_TIMEOUT,
                               _("no QMP greeting from QEMU after %s"), after);
                virObjectUnlock(mon);
                return -1;
            }
            if (errno != ETIMEDOUT) {
                virReportSystemError(errno, "%s",
                                     _("cannot wait for the QEMU monitor"));
                virObjectUnlock(mon);
                return -1;
            }
        }
    }
    if (!mon->greeting) {
        qemuMonitorReportBroken_locked(mon);
        virObjectUnlock(mon);
        return -1;
    }
    virObjectUnlock(mon);

    if (!(cmd = tdmJSONCommandBuild("qmp_capabilities", NULL)))
        return -1;
    if (qemuMonitorSendCommand(mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply) < 0)
        return -1;
    return qemuMonitorReplyCheckError("qmp_capabilities", reply);
}


/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

static bool
qemuMonitorCommandIsCoalescible(const char *cmdname)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(qemuMonitorCoalescible); i++) {
        if (STREQ(cmdname, qemuMonitorCoalescible[i]))
            return true;
    }
    return false;
}


static qemuMonitorMsg *
qemuMonitorFindCoalescible_locked(qemuMonitor *mon, const char *key)
{
    GHashTableIter iter;
    gpointer value;
    GList *l;

    for (l = mon->pending->head; l; l = l->next) {
        qemuMonitorMsg *msg = l->data;
        if (msg->key && msg->waiters > 0 && STREQ(msg->key, key))
            return msg;
    }

    g_hash_table_iter_init(&iter, mon->inFlight);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        qemuMonitorMsg *msg = value;
        if (msg->key && msg->waiters > 0 && STREQ(msg->key, key))
            return msg;
    }
    return NULL;
}


/* The last waiter of @msg gives up on it (deadline). */
static void
qemuMonitorMsgAbandon_locked(qemuMonitor *mon, qemuMonitorMsg *msg)
{
    msg->waiters--;
    if (msg->waiters > 0)
        return;

    switch (msg->state) {
    case QEMU_MONITOR_MSG_PENDING:
        /* never sent: forget it */
        g_queue_remove(mon->pending, msg);
        qemuMonitorMsgFree(msg);
        break;
    case QEMU_MONITOR_MSG_IN_FLIGHT:
        /* QEMU will answer some day: keep the slot, drop the answer */
        mon->nabandoned++;
        break;
    case QEMU_MONITOR_MSG_DONE:
        qemuMonitorMsgFree(msg);
        break;
    }
}


static int
qemuMonitorSendCommandInternal(qemuMonitor *mon,
                               tdmJSONValue **cmd,
                               qemuMonitorCommandClass cmdClass,
                               int passFd,
                               tdmJSONValue **reply)
{
    g_autoptr(tdmJSONValue) command = g_steal_pointer(cmd);
    g_autofree char *key = NULL;
    const char *cmdname;
    qemuMonitorMsg *msg = NULL;
    unsigned long long now;
    unsigned long long deadline;
    unsigned long long timeout;
    unsigned long long traceStart = tdmTraceBegin();
    bool joined = false;
    int ret = -1;

    *reply = NULL;

    if (!command || tdmJSONValueGetType(command) != TDM_JSON_TYPE_OBJECT ||
        !(cmdname = tdmJSONValueObjectGetString(command, "execute"))) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("QMP command without an 'execute' name"));
        return -1;
    }
    if ((int) cmdClass < 0 || cmdClass >= QEMU_MONITOR_CMD_CLASS_LAST)
        cmdClass = QEMU_MONITOR_CMD_CLASS_MODIFY;

    /* ids are ours */
    ignore_value(tdmJSONValueObjectRemove(command, "id"));

    if (passFd < 0 && qemuMonitorCommandIsCoalescible(cmdname) &&
        !(key = tdmJSONValueToString(command, false)))
        return -1;

    if (virTimeMillisNow(&now) < 0)
        return -1;

    virObjectLock(mon);

    if (mon->broken) {
        qemuMonitorReportBroken_locked(mon);
        goto cleanup;
    }
    if (mon->unresponsive) {
        virReportError(VIR_ERR_OPERATION_TIMEOUT,
                       _("QEMU monitor is not responding (command '%s' got no reply); not sending '%s'"),
                       NULLSTR(mon->unresponsiveCmd), cmdname);
        goto cleanup;
    }

    timeout = mon->timeouts[cmdClass];
    deadline = now + timeout;

    if (key && (msg = qemuMonitorFindCoalescible_locked(mon, key))) {
        msg->waiters++;
        joined = true;
        VIR_DEBUG("mon=%p cmd=%s joins id=%s (waiters=%u)",
                  mon, cmdname, msg->id, msg->waiters);
    } else {
        g_autofree char *text = NULL;

        msg = g_new0(qemuMonitorMsg, 1);
        msg->id = g_strdup_printf("tdm-%llu", ++mon->serial);
        msg->cmdname = g_strdup(cmdname);
        msg->key = g_steal_pointer(&key);
        msg->state = QEMU_MONITOR_MSG_PENDING;
        msg->waiters = 1;
        msg->passFd = -1;
        if (tdmJSONValueObjectSetString(command, "id", msg->id) < 0 ||
            !(text = tdmJSONValueToString(command, false))) {
            qemuMonitorMsgFree(msg);
            goto cleanup;
        }
        msg->line = g_strdup_printf("%s\n", text);
        if (passFd >= 0 && (msg->passFd = fcntl(passFd, F_DUPFD_CLOEXEC, 0)) < 0) {
            virReportSystemError(errno, _("cannot pass a file descriptor with '%s'"), cmdname);
            qemuMonitorMsgFree(msg);
            goto cleanup;
        }
        g_queue_push_tail(mon->pending, msg);
        qemuMonitorFillSlots_locked(mon);
    }

    /* The caller holds no domain lock while it waits (see the header). */
    while (msg->state != QEMU_MONITOR_MSG_DONE) {
        if (virCondWaitUntil(&mon->notify, &mon->parent.lock, deadline) < 0) {
            g_autofree char *after = NULL;

            if (errno != ETIMEDOUT) {
                virReportSystemError(errno, "%s",
                                     _("cannot wait for the QEMU monitor"));
                qemuMonitorMsgAbandon_locked(mon, msg);
                goto cleanup;
            }
            if (msg->state == QEMU_MONITOR_MSG_DONE)
                break;

            after = qemuMonitorFormatTimeout(timeout);
            VIR_WARN("QEMU monitor command '%s' (id %s) timed out after %s",
                     msg->cmdname, msg->id, after);
            virReportError(VIR_ERR_OPERATION_TIMEOUT,
                           _("QEMU monitor command '%s' timed out after %s"),
                           msg->cmdname, after);
            if (!mon->unresponsive) {
                mon->unresponsive = true;
                mon->unresponsiveCmd = g_strdup(msg->cmdname);
            }
            qemuMonitorMsgAbandon_locked(mon, msg);
            goto cleanup;
        }
    }

    if (msg->failed) {
        qemuMonitorReportBroken_locked(mon);
    } else {
        *reply = tdmJSONValueCopy(msg->reply);
        ret = 0;
    }
    if (--msg->waiters == 0)
        qemuMonitorMsgFree(msg);

 cleanup:
    virObjectUnlock(mon);
    if (traceStart) {
        double ms = tdmTraceSlowMs(traceStart);

        if (ms > 0)
            VIR_WARN("slow: QMP '%s' took %.1f ms%s", cmdname, ms,
                     joined ? " (joined an identical command in flight)" : "");
    }
    return ret;
}


int
qemuMonitorSendCommand(qemuMonitor *mon,
                       tdmJSONValue **cmd,
                       qemuMonitorCommandClass cmdClass,
                       tdmJSONValue **reply)
{
    return qemuMonitorSendCommandInternal(mon, cmd, cmdClass, -1, reply);
}


int
qemuMonitorSendCommandWithFd(qemuMonitor *mon,
                             tdmJSONValue **cmd,
                             qemuMonitorCommandClass cmdClass,
                             int passFd,
                             tdmJSONValue **reply)
{
    return qemuMonitorSendCommandInternal(mon, cmd, cmdClass, passFd, reply);
}


int
qemuMonitorReplyCheckError(const char *cmdname, tdmJSONValue *reply)
{
    tdmJSONValue *error;
    const char *klass;
    const char *desc;

    if (!reply) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("no reply to QEMU command '%s'"), cmdname);
        return -1;
    }

    if ((error = tdmJSONValueObjectGetObject(reply, "error"))) {
        klass = tdmJSONValueObjectGetString(error, "class");
        desc = tdmJSONValueObjectGetString(error, "desc");
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unable to execute QEMU command '%s': %s: %s"),
                       cmdname, klass ? klass : "GenericError",
                       desc ? desc : _("unknown error"));
        return -1;
    }

    if (!tdmJSONValueObjectHasKey(reply, "return")) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("reply to QEMU command '%s' has neither 'return' nor 'error'"),
                       cmdname);
        return -1;
    }
    return 0;
}
