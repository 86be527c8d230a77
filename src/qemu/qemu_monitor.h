/*
 * qemu_monitor.h: QMP transport -- socket, event loop, send/wait, events,
 * deadlines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Locking contract (see also docs/THREADS.txt):
 *  - qemuMonitor is a virObjectLockable and self-locking: every public
 *    function takes and releases the monitor lock itself.  Callers hold a
 *    reference (qemuDomainObjEnterMonitor takes one) but never the lock.
 *  - A caller of any command function blocks until the reply, an error or
 *    the command's deadline.  It must NOT hold a domain object lock while
 *    doing so: EnterMonitor drops it, ExitMonitor re-takes it.
 *  - Callbacks (eof, error, events) run in the event loop thread with the
 *    monitor lock released and a monitor reference held, so they may take
 *    the domain lock and may call qemuMonitorClose; they must not issue
 *    monitor commands themselves (that would wait on the thread that has
 *    to deliver the reply).
 */
#pragma once

#include "internal.h"
#include "tdmjson.h"

typedef struct _qemuMonitor qemuMonitor;

/* Deadline classes for commands; each has its own timeout. */
typedef enum {
    QEMU_MONITOR_CMD_CLASS_QUERY,   /* read-only, answers at once */
    QEMU_MONITOR_CMD_CLASS_MODIFY,  /* changes state, still quick */
    QEMU_MONITOR_CMD_CLASS_LONG,    /* may take a while (hmp, dump, ...) */

    QEMU_MONITOR_CMD_CLASS_LAST
} qemuMonitorCommandClass;

#define QEMU_MONITOR_TIMEOUT_QUERY_DEFAULT   10000  /* ms */
#define QEMU_MONITOR_TIMEOUT_MODIFY_DEFAULT  30000
#define QEMU_MONITOR_TIMEOUT_LONG_DEFAULT   120000

/* Largest message (one line) accepted from QEMU. */
#define QEMU_MONITOR_MAX_MESSAGE (10 * 1024 * 1024)
/* Commands written to QEMU and not yet answered, at most. */
#define QEMU_MONITOR_MAX_IN_FLIGHT 8

typedef enum {
    QEMU_MONITOR_MIGRATION_STATUS_INACTIVE,   /* "none" */
    QEMU_MONITOR_MIGRATION_STATUS_SETUP,
    QEMU_MONITOR_MIGRATION_STATUS_ACTIVE,
    QEMU_MONITOR_MIGRATION_STATUS_PRE_SWITCHOVER,
    QEMU_MONITOR_MIGRATION_STATUS_DEVICE,
    QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY,
    QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_PAUSED,
    QEMU_MONITOR_MIGRATION_STATUS_POSTCOPY_RECOVER,
    QEMU_MONITOR_MIGRATION_STATUS_COMPLETED,
    QEMU_MONITOR_MIGRATION_STATUS_ERROR,
    QEMU_MONITOR_MIGRATION_STATUS_CANCELLING,
    QEMU_MONITOR_MIGRATION_STATUS_CANCELLED,
    QEMU_MONITOR_MIGRATION_STATUS_WAIT_UNPLUG,

    QEMU_MONITOR_MIGRATION_STATUS_LAST
} qemuMonitorMigrationStatus;

const char *qemuMonitorMigrationStatusTypeToString(int type);
int qemuMonitorMigrationStatusTypeFromString(const char *str);

typedef enum {
    QEMU_MONITOR_BLOCK_JOB_EVENT_COMPLETED,
    QEMU_MONITOR_BLOCK_JOB_EVENT_CANCELLED,
    QEMU_MONITOR_BLOCK_JOB_EVENT_ERROR,
    QEMU_MONITOR_BLOCK_JOB_EVENT_READY,
    QEMU_MONITOR_BLOCK_JOB_EVENT_PENDING,

    QEMU_MONITOR_BLOCK_JOB_EVENT_LAST
} qemuMonitorBlockJobEvent;

typedef struct _qemuMonitorDumpStats qemuMonitorDumpStats;
struct _qemuMonitorDumpStats {
    int status;                     /* "none", "active", "completed", "failed" -> 0..3 */
    unsigned long long completed;   /* bytes written */
    unsigned long long total;       /* bytes to write */
};

/* The owner's callbacks.  All are optional; see the locking contract at
 * the top of this file.  @opaque is the pointer given to qemuMonitorOpen. */
typedef void (*qemuMonitorDestroyCallback)(qemuMonitor *mon, void *opaque);
typedef void (*qemuMonitorEofNotifyCallback)(qemuMonitor *mon, void *opaque);
typedef void (*qemuMonitorErrorNotifyCallback)(qemuMonitor *mon, void *opaque);
/* Every event, before its typed callback: @data may be NULL (no "data"). */
typedef void (*qemuMonitorDomainEventCallback)(qemuMonitor *mon,
                                               const char *event,
                                               tdmJSONValue *data,
                                               long long seconds,
                                               unsigned int micros,
                                               void *opaque);
typedef void (*qemuMonitorDomainSimpleCallback)(qemuMonitor *mon, void *opaque);
typedef void (*qemuMonitorDomainShutdownCallback)(qemuMonitor *mon,
                                                  bool guestInitiated,
                                                  const char *reason,
                                                  void *opaque);
typedef void (*qemuMonitorDomainMigrationStatusCallback)(qemuMonitor *mon,
                                                         int status,
                                                         void *opaque);
typedef void (*qemuMonitorDomainMigrationPassCallback)(qemuMonitor *mon,
                                                       int pass,
                                                       void *opaque);
typedef void (*qemuMonitorDomainBlockJobCallback)(qemuMonitor *mon,
                                                  qemuMonitorBlockJobEvent event,
                                                  const char *device,
                                                  const char *jobType,
                                                  unsigned long long len,
                                                  unsigned long long offset,
                                                  const char *error,
                                                  void *opaque);
typedef void (*qemuMonitorDomainDeviceDeletedCallback)(qemuMonitor *mon,
                                                       const char *devAlias,
                                                       void *opaque);
typedef void (*qemuMonitorDomainGuestPanicCallback)(qemuMonitor *mon,
                                                    const char *action,
                                                    tdmJSONValue *info,
                                                    void *opaque);
typedef void (*qemuMonitorDomainDumpCompletedCallback)(qemuMonitor *mon,
                                                       int status,
                                                       qemuMonitorDumpStats *stats,
                                                       const char *error,
                                                       void *opaque);

typedef struct _qemuMonitorCallbacks qemuMonitorCallbacks;
struct _qemuMonitorCallbacks {
    /* the monitor is being freed: drop what the owner keeps for it */
    qemuMonitorDestroyCallback destroy;
    /* QEMU closed the monitor (called at most once, eof or error) */
    qemuMonitorEofNotifyCallback eofNotify;
    /* I/O error or an unusable stream; falls back to eofNotify if NULL */
    qemuMonitorErrorNotifyCallback errorNotify;

    qemuMonitorDomainEventCallback domainEvent;
    qemuMonitorDomainSimpleCallback domainStop;
    qemuMonitorDomainSimpleCallback domainResume;
    qemuMonitorDomainShutdownCallback domainShutdown;
    qemuMonitorDomainSimpleCallback domainReset;
    qemuMonitorDomainSimpleCallback domainPowerdown;
    qemuMonitorDomainMigrationStatusCallback domainMigrationStatus;
    qemuMonitorDomainMigrationPassCallback domainMigrationPass;
    qemuMonitorDomainBlockJobCallback domainBlockJob;
    qemuMonitorDomainDeviceDeletedCallback domainDeviceDeleted;
    qemuMonitorDomainGuestPanicCallback domainGuestPanic;
    qemuMonitorDomainDumpCompletedCallback domainDumpCompleted;
};

/*
 * Takes over @fd (connected, e.g. accepted from the listening socket QEMU
 * was given) and watches it in the libvirt event loop.  @cb must outlive
 * the monitor; @opaque is passed to every callback.  Returns a monitor
 * with one reference, owned by the caller and released by qemuMonitorClose.
 * On failure @fd is left open, no callback (not even destroy) is called
 * and NULL is returned.
 * Does not block: call qemuMonitorNegotiate before any command.
 */
qemuMonitor *qemuMonitorOpen(int fd,
                             qemuMonitorCallbacks *cb,
                             void *opaque);

/* Waits for the QMP greeting (query deadline), then sends qmp_capabilities.
 * Blocks: no domain lock may be held. */
int qemuMonitorNegotiate(qemuMonitor *mon);

/* The greeting's "QMP" object (a copy), or NULL before negotiation. */
tdmJSONValue *qemuMonitorGetGreeting(qemuMonitor *mon);

/*
 * Stops watching the fd, closes it, fails every waiting caller at once and
 * releases the caller's reference (@mon may be freed).  No callback starts
 * after this returns (one already running may still finish).  NULL is ok.
 */
void qemuMonitorClose(qemuMonitor *mon);

/* Deadlines per command class, in ms (0 keeps the current value). */
void qemuMonitorSetTimeouts(qemuMonitor *mon,
                            unsigned long long queryMs,
                            unsigned long long modifyMs,
                            unsigned long long longMs);

/* True after a command timed out and until its late reply arrives. */
bool qemuMonitorIsUnresponsive(qemuMonitor *mon);

/* Number of commands written to QEMU since open (for tests / stats). */
unsigned long long qemuMonitorGetCommandsSent(qemuMonitor *mon);

/*
 * Sends @cmd (an object with "execute" and optional "arguments"; stolen
 * on success and on failure) and waits for its reply.  *@reply is the
 * whole reply object (with "return" or "error"); use
 * qemuMonitorReplyCheckError to turn an "error" into a libvirt error.
 * Identical read-only queries in flight are coalesced: each caller gets
 * its own copy of the one reply.
 * Errors: VIR_ERR_OPERATION_TIMEOUT on deadline expiry (the monitor is then
 * unresponsive and later callers fail at once), VIR_ERR_OPERATION_FAILED
 * when the monitor is closed or broken.
 * Blocks: no domain lock may be held.
 */
int qemuMonitorSendCommand(qemuMonitor *mon,
                           tdmJSONValue **cmd,
                           qemuMonitorCommandClass cmdClass,
                           tdmJSONValue **reply);

/* As qemuMonitorSendCommand, passing a copy of @passFd to QEMU with the
 * command's first byte (SCM_RIGHTS), for "getfd" and "add-fd".  Never
 * coalesced.  The caller keeps @passFd. */
int qemuMonitorSendCommandWithFd(qemuMonitor *mon,
                                 tdmJSONValue **cmd,
                                 qemuMonitorCommandClass cmdClass,
                                 int passFd,
                                 tdmJSONValue **reply);

/* If @reply carries an "error", reports it (VIR_ERR_INTERNAL_ERROR with
 * QEMU's class and desc) and returns -1; otherwise 0. */
int qemuMonitorReplyCheckError(const char *cmdname, tdmJSONValue *reply);

/*
 * Parsing one QMP message (one line, without the newline).  Exposed for
 * the fuzzer and the tests: never reports errors, never crashes.
 */
typedef enum {
    QEMU_MONITOR_MESSAGE_INVALID,   /* not JSON or not a QMP message */
    QEMU_MONITOR_MESSAGE_GREETING,  /* {"QMP": {...}} */
    QEMU_MONITOR_MESSAGE_REPLY,     /* "return" or "error", maybe an "id" */
    QEMU_MONITOR_MESSAGE_EVENT,     /* "event" */

    QEMU_MONITOR_MESSAGE_LAST
} qemuMonitorMessageKind;

typedef struct _qemuMonitorParsedMessage qemuMonitorParsedMessage;
struct _qemuMonitorParsedMessage {
    qemuMonitorMessageKind kind;
    tdmJSONValue *value;    /* the whole message */
    char *id;               /* reply's "id" if it is a string */
    const char *event;      /* event name, borrowed from @value */
    tdmJSONValue *data;     /* event "data", borrowed from @value, or NULL */
    long long seconds;      /* event timestamp */
    unsigned int micros;
};

void qemuMonitorParsedMessageClear(qemuMonitorParsedMessage *msg);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(qemuMonitorParsedMessage, qemuMonitorParsedMessageClear);

qemuMonitorMessageKind qemuMonitorParseMessage(const char *line,
                                               size_t len,
                                               qemuMonitorParsedMessage *msg);

/*
 * Runs the typed event dispatch for an already parsed event message with
 * @cb/@opaque, as the monitor does (exposed for the fuzzer and the tests).
 */
void qemuMonitorDispatchEvent(qemuMonitor *mon,
                              qemuMonitorCallbacks *cb,
                              void *opaque,
                              qemuMonitorParsedMessage *msg);
