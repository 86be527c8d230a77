/*
 * qemu_agent.c: the guest agent channel (qemu-guest-agent), its own job
 * slot and deadline
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * QEMU listens on a unix socket (chardev server=on) whose other end is
 * the virtio-serial port org.qemu.guest_agent.0 in the guest.  Tandem
 * connects as the client and speaks qemu-ga's JSON line protocol:
 *
 *   caller thread (agent job, vm unlocked)      event loop thread
 *   --------------------------------------      -----------------
 *   qemuAgentCommand
 *     lock; if the stream may hold stale
 *     replies: 0xFF + guest-sync-delimited
 *     {id}; state SYNC; wait (deadline) ----.   qemuAgentIO: write txBuf;
 *                                           |   read: in SYNC drop every
 *                                           |   byte up to a 0xFF, then the
 *                                           |   line after it must be
 *                                           |   {"return": id} (else drop
 *                                           '-- again up to the next 0xFF)
 *     command line; state REPLY; wait ---.      next complete line: the
 *                                        '----  reply; broadcast
 *
 * One command at a time: the domain's agent job serializes callers.  A
 * command whose deadline passed leaves the stream "out of sync": its late
 * reply is flushed by the next command's handshake.
 *
 * Whether the guest side of the channel is open is kept in the live
 * definition (virDomainChrDef.state of the agent channel), from
 * query-chardev at setup and VSERPORT_CHANGE events afterwards; when it is
 * not known to be open, an API asks QEMU again before it gives up.
 */
#include <config.h>

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "qemu_agent.h"
#include "qemu_conf.h"
#include "qemu_monitor.h"

#include "datatypes.h"
#include "viraccessapicheck.h"
#include "viraccessapicheckqemu.h"
#include "virerror.h"
#include "virlog.h"
#include "virobject.h"
#include "virthread.h"
#include "virtime.h"
#include "virfile.h"
#include "virevent.h"
#include "virutil.h"
#include "virtypedparam.h"
#include "viruuid.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_agent");

/* Largest reply line accepted from the guest. */
#define QEMU_AGENT_MAX_MESSAGE (10 * 1024 * 1024)
#define QEMU_AGENT_READ_CHUNK 4096
/* Bytes read at most per wake-up of the event loop. */
#define QEMU_AGENT_READ_BUDGET (256 * 1024)
/* Byte that precedes the reply to guest-sync-delimited (and resets the
 * guest's parser when we send it). */
#define QEMU_AGENT_DELIMITER 0xFF

typedef enum {
    QEMU_AGENT_WAIT_NONE = 0,    /* no caller waits: lines are dropped */
    QEMU_AGENT_WAIT_SYNC,        /* dropping bytes up to a 0xFF */
    QEMU_AGENT_WAIT_SYNC_LINE,   /* after a 0xFF: the sync reply line */
    QEMU_AGENT_WAIT_REPLY,       /* the next line is the command's reply */
} qemuAgentWaitState;

struct _qemuAgent {
    virObjectLockable parent;     /* parent.lock is "agent->lock" */

    /* protected by agent->lock */
    int fd;
    int watch;                    /* event loop handle, -1 if none */
    virCond notify;               /* broadcast on reply, failure, event */

    GString *rxLine;              /* the line being read */
    GString *txBuf;               /* bytes to write */
    size_t txOffset;

    qemuAgentWaitState state;
    bool busy;                    /* a caller is inside qemuAgentCommand */
    unsigned long long syncId;    /* id of the guest-sync-delimited in flight */
    bool synced;                  /* the sync reply arrived */
    tdmJSONValue *reply;          /* the command's reply when it arrived */
    bool inSync;                  /* no stale reply can be in the stream */
    bool awaitShutdown;           /* guest-shutdown sent: no reply expected */
    bool shutdownSeen;            /* SHUTDOWN/RESET event or guest closed */
    bool guestClosed;             /* the guest closed its side meanwhile */

    bool broken;                  /* EOF, I/O error or closed */
    char *errMsg;                 /* why, for the callers */
    bool closed;                  /* qemuAgentClose called */
};

static virClass *qemuAgentClass;
static void qemuAgentDispose(void *obj);

static int
qemuAgentOnceInit(void)
{
    if (!VIR_CLASS_NEW(qemuAgent, virClassForObjectLockable()))
        return -1;
    return 0;
}

VIR_ONCE_GLOBAL_INIT(qemuAgent);


/* ------------------------------------------------------------------ */
/* Per-domain state                                                    */
/* ------------------------------------------------------------------ */

/* What the driver keeps per running domain with an agent channel.
 * ALL FIELDS: protected by the domain object lock of @vm.  The table
 * itself is protected by qemuAgentDomainsLock (a leaf lock: taken with
 * or without a domain lock, never held while taking another lock). */
typedef struct _qemuAgentDomain qemuAgentDomain;
struct _qemuAgentDomain {
    virDomainObj *vm;        /* the key; a reference */
    qemuAgent *agent;        /* NULL while not connected */
    int timeout;             /* virDomainAgentSetResponseTimeout: seconds
                              * or QEMU_AGENT_WAIT_*; DEFAULT = agent_timeout */
};

static virMutex qemuAgentDomainsLock = VIR_MUTEX_INITIALIZER;
static GHashTable *qemuAgentDomains;   /* virDomainObj * -> qemuAgentDomain * */

static void qemuAgentClose(qemuAgent *agent);

static void
qemuAgentDomainFree(qemuAgentDomain *ad)
{
    if (!ad)
        return;
    qemuAgentClose(ad->agent);
    virObjectUnref(ad->vm);
    g_free(ad);
}

/* vm locked.  Returns the domain's entry, creating it if @create. */
static qemuAgentDomain *
qemuAgentDomainGet(virDomainObj *vm, bool create)
{
    qemuAgentDomain *ad = NULL;

    virMutexLock(&qemuAgentDomainsLock);
    if (!qemuAgentDomains)
        qemuAgentDomains = g_hash_table_new(g_direct_hash, g_direct_equal);
    ad = g_hash_table_lookup(qemuAgentDomains, vm);
    if (!ad && create) {
        ad = g_new0(qemuAgentDomain, 1);
        ad->vm = virObjectRef(vm);
        ad->timeout = QEMU_AGENT_WAIT_DEFAULT;
        g_hash_table_insert(qemuAgentDomains, vm, ad);
    }
    virMutexUnlock(&qemuAgentDomainsLock);
    return ad;
}

/* vm locked */
static void
qemuAgentDomainRemove(virDomainObj *vm)
{
    qemuAgentDomain *ad = NULL;

    virMutexLock(&qemuAgentDomainsLock);
    if (qemuAgentDomains &&
        (ad = g_hash_table_lookup(qemuAgentDomains, vm)))
        g_hash_table_remove(qemuAgentDomains, vm);
    virMutexUnlock(&qemuAgentDomainsLock);

    /* the domain lock is held, the table lock is not: closing wakes the
     * waiters, who re-take the domain lock only after we released it */
    qemuAgentDomainFree(ad);
}

/* The agent channel of @def (virtio, named org.qemu.guest_agent.0), or NULL. */
static virDomainChrDef *
qemuAgentFindChannel(virDomainDef *def)
{
    size_t i;

    for (i = 0; i < def->nchannels; i++) {
        virDomainChrDef *chr = def->channels[i];

        if (chr->targetType == VIR_DOMAIN_CHR_CHANNEL_TARGET_TYPE_VIRTIO &&
            STREQ_NULLABLE(chr->target.name, QEMU_AGENT_CHANNEL_NAME))
            return chr;
    }
    return NULL;
}

/* The agent's deadline from qemu.conf, in seconds. */
static int
qemuAgentConfigTimeout(void)
{
    if (qemu_driver && qemu_driver->config && qemu_driver->config->agentTimeout > 0)
        return qemu_driver->config->agentTimeout;
    return 5;
}


/* ------------------------------------------------------------------ */
/* The agent object: I/O                                               */
/* ------------------------------------------------------------------ */

static void
qemuAgentDispose(void *obj)
{
    qemuAgent *agent = obj;

    VIR_DEBUG("agent=%p", agent);
    VIR_FORCE_CLOSE(agent->fd);
    virCondDestroy(&agent->notify);
    if (agent->rxLine)
        g_string_free(agent->rxLine, TRUE);
    if (agent->txBuf)
        g_string_free(agent->txBuf, TRUE);
    tdmJSONValueFree(agent->reply);
    g_free(agent->errMsg);
}


static void
qemuAgentUpdateWatch_locked(qemuAgent *agent)
{
    int events = VIR_EVENT_HANDLE_READABLE;

    if (agent->watch < 0)
        return;
    if (agent->txOffset < agent->txBuf->len)
        events |= VIR_EVENT_HANDLE_WRITABLE;
    virEventUpdateHandle(agent->watch, events);
}


/* The channel is unusable from now on: wake the caller. */
static void
qemuAgentFail_locked(qemuAgent *agent, const char *message)
{
    if (!agent->broken) {
        agent->broken = true;
        agent->errMsg = g_strdup(message);
        VIR_DEBUG("agent=%p broken: %s", agent, message);
    }
    if (agent->watch >= 0) {
        virEventRemoveHandle(agent->watch);
        agent->watch = -1;
    }
    virCondBroadcast(&agent->notify);
}


static void
qemuAgentReportBroken_locked(qemuAgent *agent)
{
    /* a shutdown the guest carried out closes the channel: that is the
     * expected end, not a failure */
    virReportError(VIR_ERR_AGENT_UNRESPONSIVE, "%s",
                   agent->errMsg ? agent->errMsg
                                 : _("QEMU guest agent is not connected"));
}


/* One complete line from the guest (agent lock held). */
static void
qemuAgentProcessLine_locked(qemuAgent *agent, const char *line, size_t len)
{
    g_autoptr(tdmJSONValue) value = NULL;

    if (len == 0)
        return;

    if (agent->state != QEMU_AGENT_WAIT_SYNC_LINE &&
        agent->state != QEMU_AGENT_WAIT_REPLY) {
        VIR_DEBUG("agent=%p: dropping a line nobody waits for (%zu bytes)", agent, len);
        return;
    }

    value = tdmJSONValueFromStringLen(line, len);
    if (!value || tdmJSONValueGetType(value) != TDM_JSON_TYPE_OBJECT) {
        g_autofree char *head = g_strndup(line, MIN(len, 200));
        g_autofree char *escaped = g_strescape(head, NULL);

        virResetLastError();
        VIR_WARN("guest agent: ignoring invalid message of %zu bytes: %s", len, escaped);
        if (agent->state == QEMU_AGENT_WAIT_SYNC_LINE)
            agent->state = QEMU_AGENT_WAIT_SYNC;
        return;
    }

    if (agent->state == QEMU_AGENT_WAIT_SYNC_LINE) {
        unsigned long long id = 0;

        if (tdmJSONValueObjectGetNumberULLong(value, "return", &id) == 0 &&
            id == agent->syncId) {
            VIR_DEBUG("agent=%p in sync (id %llu)", agent, id);
            agent->synced = true;
            agent->state = QEMU_AGENT_WAIT_NONE;
            virCondBroadcast(&agent->notify);
        } else {
            /* a stale sync reply: keep flushing */
            VIR_DEBUG("agent=%p: stale sync reply dropped", agent);
            virResetLastError();
            agent->state = QEMU_AGENT_WAIT_SYNC;
        }
        return;
    }

    if (!tdmJSONValueObjectHasKey(value, "return") &&
        !tdmJSONValueObjectHasKey(value, "error")) {
        VIR_DEBUG("agent=%p: dropping a message that is no reply", agent);
        return;
    }
    tdmJSONValueFree(agent->reply);
    agent->reply = g_steal_pointer(&value);
    agent->state = QEMU_AGENT_WAIT_NONE;
    virCondBroadcast(&agent->notify);
}


/* Returns 0, 1 on EOF, -1 with *@reason. */
static int
qemuAgentIORead_locked(qemuAgent *agent, char **reason)
{
    char buf[QEMU_AGENT_READ_CHUNK];
    size_t budget = QEMU_AGENT_READ_BUDGET;

    /* a chatty guest must not keep the event loop to itself */
    while (budget > 0) {
        ssize_t n = read(agent->fd, buf, MIN(sizeof(buf), budget));
        ssize_t i;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            *reason = g_strdup_printf(_("cannot read from the guest agent channel: %s"),
                                      g_strerror(errno));
            return -1;
        }
        if (n == 0) {
            *reason = g_strdup(_("the guest agent channel was closed"));
            return 1;
        }
        budget -= n;

        for (i = 0; i < n; i++) {
            unsigned char c = buf[i];

            if (agent->state == QEMU_AGENT_WAIT_SYNC) {
                /* flushing: only the delimiter counts */
                if (c == QEMU_AGENT_DELIMITER) {
                    agent->state = QEMU_AGENT_WAIT_SYNC_LINE;
                    g_string_truncate(agent->rxLine, 0);
                }
                continue;
            }
            if (c == QEMU_AGENT_DELIMITER) {
                /* a delimited (sync) reply starts: what came before is junk */
                g_string_truncate(agent->rxLine, 0);
                continue;
            }
            if (c == '\n') {
                size_t len = agent->rxLine->len;

                if (len > 0 && agent->rxLine->str[len - 1] == '\r')
                    len--;
                qemuAgentProcessLine_locked(agent, agent->rxLine->str, len);
                g_string_truncate(agent->rxLine, 0);
                continue;
            }
            if (agent->rxLine->len >= QEMU_AGENT_MAX_MESSAGE) {
                /* drop the monster and resynchronize */
                VIR_WARN("guest agent: message exceeds %d bytes, dropped",
                         QEMU_AGENT_MAX_MESSAGE);
                g_string_truncate(agent->rxLine, 0);
                agent->inSync = false;
                if (agent->state != QEMU_AGENT_WAIT_NONE)
                    agent->state = QEMU_AGENT_WAIT_SYNC;
                continue;
            }
            g_string_append_c(agent->rxLine, c);
        }
    }
    return 0;
}


static int
qemuAgentIOWrite_locked(qemuAgent *agent, char **reason)
{
    while (agent->txOffset < agent->txBuf->len) {
        ssize_t n = send(agent->fd, agent->txBuf->str + agent->txOffset,
                         agent->txBuf->len - agent->txOffset, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            *reason = g_strdup_printf(_("cannot write to the guest agent channel: %s"),
                                      g_strerror(errno));
            return -1;
        }
        agent->txOffset += n;
    }
    if (agent->txOffset == agent->txBuf->len) {
        g_string_truncate(agent->txBuf, 0);
        agent->txOffset = 0;
    }
    return 0;
}


/* The event loop callback.  Takes only the agent lock. */
static void
qemuAgentIO(int watch, int fd, int events, void *opaque)
{
    qemuAgent *agent = opaque;
    g_autofree char *reason = NULL;
    bool failed = false;

    virObjectRef(agent);
    virObjectLock(agent);

    if (agent->broken || agent->watch != watch || agent->fd != fd)
        goto cleanup;

    if ((events & VIR_EVENT_HANDLE_WRITABLE) &&
        qemuAgentIOWrite_locked(agent, &reason) < 0)
        failed = true;

    if (!failed && (events & VIR_EVENT_HANDLE_READABLE) &&
        qemuAgentIORead_locked(agent, &reason) != 0)
        failed = true;

    if (!failed && !(events & VIR_EVENT_HANDLE_READABLE) &&
        (events & (VIR_EVENT_HANDLE_HANGUP | VIR_EVENT_HANDLE_ERROR))) {
        failed = true;
        reason = g_strdup(_("the guest agent channel was closed"));
    }

    if (failed)
        qemuAgentFail_locked(agent, reason);
    else
        qemuAgentUpdateWatch_locked(agent);

 cleanup:
    virObjectUnlock(agent);
    virObjectUnref(agent);
}


/* Connects to QEMU's end of the channel at @path and watches it.  Does not
 * block (QEMU listens already).  Returns a new agent (one reference) or
 * NULL with an error. */
static qemuAgent *
qemuAgentOpen(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    qemuAgent *agent;
    int fd;

    if (qemuAgentInitialize() < 0)
        return NULL;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("guest agent socket path '%s' is too long"), path);
        return NULL;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    /* non-blocking from the start: this may run in the event loop thread;
     * a unix socket connects at once or fails (EAGAIN: backlog full) */
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
        virReportSystemError(errno, "%s", _("cannot create the guest agent socket"));
        return NULL;
    }
    if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
        virReportSystemError(errno, _("cannot connect to the guest agent channel at '%s'"),
                             path);
        VIR_FORCE_CLOSE(fd);
        return NULL;
    }

    if (!(agent = virObjectLockableNew(qemuAgentClass))) {
        VIR_FORCE_CLOSE(fd);
        return NULL;
    }
    agent->fd = -1;
    agent->watch = -1;
    if (virCondInit(&agent->notify) < 0) {
        virReportSystemError(errno, "%s",
                             _("cannot initialize the guest agent condition"));
        VIR_FORCE_CLOSE(fd);
        virObjectUnref(agent);
        return NULL;
    }
    agent->rxLine = g_string_new(NULL);
    agent->txBuf = g_string_new(NULL);

    virObjectLock(agent);
    agent->watch = virEventAddHandle(fd, VIR_EVENT_HANDLE_READABLE,
                                     qemuAgentIO, virObjectRef(agent),
                                     virObjectUnref);
    if (agent->watch < 0) {
        virObjectUnlock(agent);
        virObjectUnref(agent);   /* the handle's reference */
        virObjectUnref(agent);
        VIR_FORCE_CLOSE(fd);
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot watch the guest agent socket"));
        return NULL;
    }
    agent->fd = fd;
    virObjectUnlock(agent);

    VIR_DEBUG("agent=%p path=%s fd=%d", agent, path, fd);
    return agent;
}


/* Stops watching, closes the socket, fails the waiting caller at once and
 * releases the caller's reference.  NULL is ok. */
static void
qemuAgentClose(qemuAgent *agent)
{
    if (!agent)
        return;

    VIR_DEBUG("agent=%p", agent);
    virObjectLock(agent);
    if (!agent->closed) {
        agent->closed = true;
        qemuAgentFail_locked(agent, _("QEMU guest agent is not connected"));
        VIR_FORCE_CLOSE(agent->fd);
    }
    virObjectUnlock(agent);
    virObjectUnref(agent);
}


static bool
qemuAgentIsBroken(qemuAgent *agent)
{
    bool ret;

    virObjectLock(agent);
    ret = agent->broken;
    virObjectUnlock(agent);
    return ret;
}


/* ------------------------------------------------------------------ */
/* The agent object: commands                                          */
/* ------------------------------------------------------------------ */

/* Queues @text (a line with its newline). */
static void
qemuAgentQueue_locked(qemuAgent *agent, const char *text)
{
    g_string_append(agent->txBuf, text);
    qemuAgentUpdateWatch_locked(agent);
}


/* Waits with the agent lock until @done() or the deadline (0: none).
 * Returns 0 when done, 1 on deadline, -1 when the agent broke (reported
 * by the caller) or on a wait error (reported). */
static int
qemuAgentWait_locked(qemuAgent *agent,
                     bool (*done)(qemuAgent *agent),
                     unsigned long long deadline)
{
    while (!done(agent)) {
        if (agent->broken)
            return -1;
        if (deadline == 0) {
            if (virCondWait(&agent->notify, &agent->parent.lock) < 0) {
                virReportSystemError(errno, "%s",
                                     _("cannot wait for the guest agent"));
                return -1;
            }
        } else if (virCondWaitUntil(&agent->notify, &agent->parent.lock, deadline) < 0) {
            if (errno == ETIMEDOUT)
                return done(agent) ? 0 : 1;
            virReportSystemError(errno, "%s", _("cannot wait for the guest agent"));
            return -1;
        }
    }
    return 0;
}

static bool
qemuAgentSyncDone(qemuAgent *agent)
{
    return agent->synced;
}

static bool
qemuAgentReplyDone(qemuAgent *agent)
{
    return agent->reply != NULL ||
           (agent->awaitShutdown && (agent->shutdownSeen || agent->guestClosed)) ||
           (!agent->awaitShutdown && agent->guestClosed);
}


static unsigned long long
qemuAgentDeadline(int seconds)
{
    unsigned long long now = 0;

    if (seconds <= 0)
        return 0;
    ignore_value(virTimeMillisNow(&now));
    return now + seconds * 1000ULL;
}


/* guest-sync-delimited: flush whatever stale replies the stream holds. */
static int
qemuAgentSync_locked(qemuAgent *agent)
{
    g_autofree char *line = NULL;
    int seconds = qemuAgentConfigTimeout();
    unsigned long long id = 0;
    int rc;

    if (agent->inSync)
        return 0;

    /* unique enough: stale replies carry older ids */
    ignore_value(virTimeMillisNow(&id));
    if (id <= agent->syncId)
        id = agent->syncId + 1;
    agent->syncId = id;
    agent->synced = false;
    agent->state = QEMU_AGENT_WAIT_SYNC;
    g_string_truncate(agent->rxLine, 0);

    /* the leading 0xFF makes qemu-ga drop a half-received command */
    line = g_strdup_printf("%c{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%llu}}\n",
                           QEMU_AGENT_DELIMITER, id);
    VIR_DEBUG("agent=%p guest-sync-delimited id=%llu", agent, id);
    qemuAgentQueue_locked(agent, line);

    rc = qemuAgentWait_locked(agent, qemuAgentSyncDone, qemuAgentDeadline(seconds));
    agent->state = QEMU_AGENT_WAIT_NONE;
    if (rc < 0) {
        if (agent->broken)
            qemuAgentReportBroken_locked(agent);
        return -1;
    }
    if (rc > 0) {
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE,
                       _("guest agent did not answer 'guest-sync-delimited' within %d s"),
                       seconds);
        return -1;
    }
    agent->inSync = true;
    return 0;
}


/* Turns an "error" reply into a libvirt error. */
static int
qemuAgentCheckError(const char *cmdname, tdmJSONValue *reply)
{
    tdmJSONValue *error;

    if ((error = tdmJSONValueObjectGetObject(reply, "error"))) {
        const char *desc = tdmJSONValueObjectGetString(error, "desc");
        const char *klass = tdmJSONValueObjectGetString(error, "class");

        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unable to execute QEMU agent command '%s': %s"),
                       cmdname, desc ? desc : (klass ? klass : _("unknown error")));
        return -1;
    }
    if (!tdmJSONValueObjectHasKey(reply, "return")) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unable to execute QEMU agent command '%s'"), cmdname);
        return -1;
    }
    return 0;
}


/* The common part of qemuAgentCommand and the shutdown command. */
static int
qemuAgentCommandInternal(qemuAgent *agent,
                         tdmJSONValue **cmd,
                         int seconds,
                         bool shutdown,
                         tdmJSONValue **reply)
{
    g_autoptr(tdmJSONValue) command = g_steal_pointer(cmd);
    g_autofree char *text = NULL;
    g_autofree char *line = NULL;
    g_autofree char *cmdname = NULL;
    unsigned long long deadline = 0;
    int ret = -1;
    int rc;

    *reply = NULL;

    if (!command || tdmJSONValueGetType(command) != TDM_JSON_TYPE_OBJECT ||
        !tdmJSONValueObjectGetString(command, "execute")) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("guest agent command must be a JSON object with an 'execute' member"));
        return -1;
    }
    if (seconds < QEMU_AGENT_WAIT_BLOCK) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("guest agent timeout '%d' is less than the minimum '%d'"),
                       seconds, QEMU_AGENT_WAIT_BLOCK);
        return -1;
    }
    cmdname = g_strdup(tdmJSONValueObjectGetString(command, "execute"));
    if (!(text = tdmJSONValueToString(command, false)))
        return -1;
    line = g_strdup_printf("%s\n", text);

    if (seconds == QEMU_AGENT_WAIT_DEFAULT)
        seconds = qemuAgentConfigTimeout();

    virObjectLock(agent);

    if (agent->busy) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("guest agent is busy with another command"));
        goto unlock;
    }
    if (agent->broken) {
        qemuAgentReportBroken_locked(agent);
        goto unlock;
    }
    agent->busy = true;
    agent->guestClosed = false;

    if (qemuAgentSync_locked(agent) < 0)
        goto cleanup;

    VIR_DEBUG("agent=%p send %s seconds=%d", agent, cmdname, seconds);
    tdmJSONValueFree(g_steal_pointer(&agent->reply));
    agent->awaitShutdown = shutdown;
    agent->shutdownSeen = false;
    qemuAgentQueue_locked(agent, line);

    if (seconds == QEMU_AGENT_WAIT_NOWAIT) {
        /* whatever it answers is flushed by the next command's sync */
        agent->inSync = false;
        ret = 0;
        goto cleanup;
    }

    agent->state = QEMU_AGENT_WAIT_REPLY;
    if (seconds != QEMU_AGENT_WAIT_BLOCK)
        deadline = qemuAgentDeadline(seconds);
    rc = qemuAgentWait_locked(agent, qemuAgentReplyDone, deadline);
    agent->state = QEMU_AGENT_WAIT_NONE;

    if (shutdown && !agent->reply) {
        /* no news is good news: qemu-ga does not answer a guest-shutdown
         * that works; the guest closing the channel, QEMU's SHUTDOWN or
         * RESET, or QEMU going away (EOF) all say it is under way */
        agent->inSync = false;
        if (rc < 0 && !agent->broken)
            goto cleanup;
        ret = 0;
        goto cleanup;
    }

    if (rc < 0) {
        if (agent->broken)
            qemuAgentReportBroken_locked(agent);
        agent->inSync = false;
        goto cleanup;
    }
    if (rc > 0) {
        agent->inSync = false;
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE,
                       _("guest agent command '%s' got no reply within %d s"),
                       cmdname, seconds);
        goto cleanup;
    }
    if (!agent->reply) {
        /* the guest closed its side while we waited */
        agent->inSync = false;
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE,
                       _("guest agent disappeared while executing command '%s'"),
                       cmdname);
        goto cleanup;
    }

    *reply = g_steal_pointer(&agent->reply);
    ret = qemuAgentCheckError(cmdname, *reply);

 cleanup:
    agent->awaitShutdown = false;
    agent->busy = false;
 unlock:
    virObjectUnlock(agent);
    return ret;
}


int
qemuAgentCommand(qemuAgent *agent,
                 tdmJSONValue **cmd,
                 int seconds,
                 tdmJSONValue **reply)
{
    return qemuAgentCommandInternal(agent, cmd, seconds, false, reply);
}


/* The guest closed (@open false) or opened its side of the channel. */
static void
qemuAgentNotifyGuest(qemuAgent *agent, bool open)
{
    virObjectLock(agent);
    if (!open) {
        /* whatever was asked is lost; the next command re-syncs */
        agent->inSync = false;
        agent->guestClosed = true;
        virCondBroadcast(&agent->notify);
    }
    virObjectUnlock(agent);
}


static void
qemuAgentNotifyShutdown(qemuAgent *agent)
{
    virObjectLock(agent);
    if (agent->awaitShutdown) {
        agent->shutdownSeen = true;
        virCondBroadcast(&agent->notify);
    }
    virObjectUnlock(agent);
}


/* ------------------------------------------------------------------ */
/* Domain side: setup, teardown, events, enter/exit                    */
/* ------------------------------------------------------------------ */

/* vm locked.  (Re)connects the agent of a running domain whose channel
 * has a socket; keeps an open one.  Returns 0 (also when there is nothing
 * to connect to), -1 with an error when connecting failed. */
static int
qemuAgentConnect(virDomainObj *vm)
{
    virDomainChrDef *chr = qemuAgentFindChannel(vm->def);
    qemuAgentDomain *ad;
    qemuAgent *agent;

    if (!chr || chr->source->type != VIR_DOMAIN_CHR_TYPE_UNIX ||
        !chr->source->data.nix.path)
        return 0;

    ad = qemuAgentDomainGet(vm, true);
    if (ad->agent) {
        if (!qemuAgentIsBroken(ad->agent))
            return 0;
        qemuAgentClose(g_steal_pointer(&ad->agent));
    }
    if (!(agent = qemuAgentOpen(chr->source->data.nix.path)))
        return -1;
    ad->agent = agent;
    return 0;
}


/* vm locked, a monitor job held (the sync job, or the async job @asyncJob).
 * Asks QEMU whether the guest opened the agent port (query-chardev) and
 * records it in the live definition. */
static int
qemuAgentRefreshGuestState(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    g_autofree char *label = NULL;
    virDomainChrDef *chr;
    tdmJSONValue *list;
    size_t i;
    int rc;

    if (!(chr = qemuAgentFindChannel(vm->def)) || !chr->info.alias)
        return 0;
    label = g_strdup_printf("char%s", chr->info.alias);

    if (!(cmd = tdmJSONCommandBuild("query-chardev", NULL)))
        return -1;
    if (asyncJob != QEMU_ASYNC_JOB_NONE) {
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            return -1;
    } else if (qemuDomainObjEnterMonitor(vm) < 0) {
        return -1;
    }
    rc = qemuMonitorSendCommand(priv->mon, &cmd, QEMU_MONITOR_CMD_CLASS_QUERY, &reply);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0 ||
        qemuMonitorReplyCheckError("query-chardev", reply) < 0)
        return -1;

    /* the definition may have changed while the lock was released */
    if (!(chr = qemuAgentFindChannel(vm->def)) || !chr->info.alias ||
        !(list = tdmJSONValueObjectGetArray(reply, "return")))
        return 0;

    for (i = 0; i < tdmJSONValueArraySize(list); i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(list, i);
        bool open = false;

        if (STRNEQ_NULLABLE(tdmJSONValueObjectGetString(entry, "label"), label))
            continue;
        if (tdmJSONValueObjectGetBoolean(entry, "frontend-open", &open) < 0)
            break;
        chr->state = open ? VIR_DOMAIN_CHR_DEVICE_STATE_CONNECTED
                          : VIR_DOMAIN_CHR_DEVICE_STATE_DISCONNECTED;
        VIR_DEBUG("guest agent channel of '%s': guest side %s",
                  vm->def->name, open ? "open" : "closed");
        break;
    }
    return 0;
}


int
qemuAgentSetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    virDomainChrDef *chr = qemuAgentFindChannel(vm->def);

    if (!chr)
        return 0;
    if (chr->source->type != VIR_DOMAIN_CHR_TYPE_UNIX) {
        VIR_DEBUG("guest agent channel of '%s' is no unix socket: not used",
                  vm->def->name);
        return 0;
    }

    /* failing to talk to the agent never fails a start or reconnect */
    if (qemuAgentRefreshGuestState(vm, asyncJob) < 0) {
        if (!virDomainObjIsActive(vm))
            return -1;
        VIR_WARN("cannot query the guest agent channel of '%s': %s",
                 vm->def->name, virGetLastErrorMessage());
        virResetLastError();
    }
    if (qemuAgentConnect(vm) < 0) {
        VIR_WARN("cannot connect to the guest agent of '%s': %s",
                 vm->def->name, virGetLastErrorMessage());
        virResetLastError();
    }
    return 0;
}


void
qemuAgentTeardown(virDomainObj *vm)
{
    virDomainChrDef *chr = qemuAgentFindChannel(vm->def);

    qemuAgentDomainRemove(vm);
    if (chr)
        chr->state = VIR_DOMAIN_CHR_DEVICE_STATE_DEFAULT;
}


void
qemuAgentNotifyEvent(virDomainObj *vm,
                     const char *event,
                     tdmJSONValue *data)
{
    qemuAgentDomain *ad;
    virDomainChrDef *chr;

    if (!event || !virDomainObjIsActive(vm))
        return;

    if (STREQ(event, "VSERPORT_CHANGE")) {
        const char *id = data ? tdmJSONValueObjectGetString(data, "id") : NULL;
        bool open = false;

        if (!(chr = qemuAgentFindChannel(vm->def)) || !id ||
            STRNEQ_NULLABLE(chr->info.alias, id) ||
            tdmJSONValueObjectGetBoolean(data, "open", &open) < 0)
            return;
        VIR_DEBUG("guest of '%s' %s the agent channel", vm->def->name,
                  open ? "opened" : "closed");
        chr->state = open ? VIR_DOMAIN_CHR_DEVICE_STATE_CONNECTED
                          : VIR_DOMAIN_CHR_DEVICE_STATE_DISCONNECTED;
        if ((ad = qemuAgentDomainGet(vm, false)) && ad->agent)
            qemuAgentNotifyGuest(ad->agent, open);
        /* connect now rather than at the next command (non-blocking) */
        if (open && qemuAgentConnect(vm) < 0) {
            VIR_WARN("cannot connect to the guest agent of '%s': %s",
                     vm->def->name, virGetLastErrorMessage());
            virResetLastError();
        }
    } else if (STREQ(event, "SHUTDOWN") || STREQ(event, "RESET")) {
        if ((ad = qemuAgentDomainGet(vm, false)) && ad->agent)
            qemuAgentNotifyShutdown(ad->agent);
    }
}


static bool
qemuAgentJobHeldBySelf(virDomainObj *vm)
{
    qemuDomainJobObj *job = &QEMU_DOMAIN_PRIVATE(vm)->job;

    return job->agentActive != QEMU_AGENT_JOB_NONE &&
           job->agentOwner == virThreadSelfID();
}


qemuAgent *
qemuDomainObjEnterAgent(virDomainObj *vm)
{
    qemuAgentDomain *ad;
    qemuAgent *agent;

    if (!qemuAgentJobHeldBySelf(vm)) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("entering the guest agent without an agent job"));
        return NULL;
    }
    if (QEMU_DOMAIN_PRIVATE(vm)->job.destroying) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is being destroyed"));
        return NULL;
    }
    if (virDomainObjCheckActive(vm) < 0)
        return NULL;
    if (!(ad = qemuAgentDomainGet(vm, false)) || !ad->agent) {
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE, "%s",
                       _("QEMU guest agent is not connected"));
        return NULL;
    }
    agent = virObjectRef(ad->agent);
    virObjectUnlock(vm);
    return agent;
}


int
qemuDomainObjExitAgent(virDomainObj *vm, qemuAgent *agent)
{
    virObjectLock(vm);
    virObjectUnref(agent);
    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is no longer running"));
        return -1;
    }
    return 0;
}


/* vm locked, no job.  Makes sure QEMU is asked whether the guest opened
 * the agent port when we have not been told so (events may be missing or
 * late).  Takes and ends a QUERY sync job for that: before the agent job,
 * never together with it. */
static void
qemuAgentRefreshIfNeeded(virDomainObj *vm)
{
    virDomainChrDef *chr = qemuAgentFindChannel(vm->def);

    if (!chr || chr->state == VIR_DOMAIN_CHR_DEVICE_STATE_CONNECTED ||
        !virDomainObjIsActive(vm))
        return;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0) {
        virResetLastError();
        return;
    }
    if (virDomainObjIsActive(vm) && qemuAgentRefreshGuestState(vm, QEMU_ASYNC_JOB_NONE) < 0)
        virResetLastError();
    qemuDomainObjEndJob(vm);
}


/* vm locked, the agent job held: can the agent be used now?  Reports
 * what libvirt reports when not. */
static int
qemuAgentCheckAvailable(virDomainObj *vm)
{
    virDomainChrDef *chr;
    qemuAgentDomain *ad;

    if (virDomainObjCheckActive(vm) < 0)
        return -1;
    if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_RUNNING) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("domain is not running"));
        return -1;
    }
    if (!(chr = qemuAgentFindChannel(vm->def))) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("QEMU guest agent is not configured"));
        return -1;
    }
    if (chr->state != VIR_DOMAIN_CHR_DEVICE_STATE_CONNECTED) {
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE, "%s",
                       _("QEMU guest agent is not connected"));
        return -1;
    }
    if (qemuAgentConnect(vm) < 0) {
        virResetLastError();
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE, "%s",
                       _("QEMU guest agent is not connected"));
        return -1;
    }
    if (!(ad = qemuAgentDomainGet(vm, false)) || !ad->agent) {
        virReportError(VIR_ERR_AGENT_UNRESPONSIVE, "%s",
                       _("QEMU guest agent is not connected"));
        return -1;
    }
    return 0;
}


/* vm locked, no job.  The agent API prologue: refresh, agent job, checks,
 * enter.  On success vm is UNLOCKED and *@agent referenced; end with
 * qemuAgentEndCall.  On failure vm stays locked, no job is held. */
static int
qemuAgentBeginCall(virDomainObj *vm, qemuDomainAgentJob job, qemuAgent **agent)
{
    *agent = NULL;

    qemuAgentRefreshIfNeeded(vm);
    if (qemuDomainObjBeginAgentJob(vm, job) < 0)
        return -1;
    if (qemuAgentCheckAvailable(vm) < 0 ||
        !(*agent = qemuDomainObjEnterAgent(vm))) {
        qemuDomainObjEndAgentJob(vm);
        return -1;
    }
    return 0;
}


/* Leaves the agent and ends the agent job; vm locked again.  @rc is the
 * command's result; returns it, or -1 when the domain died meanwhile
 * (keeping the command's error if it had one). */
static int
qemuAgentEndCall(virDomainObj *vm, qemuAgent **agent, int rc)
{
    virErrorPtr err = NULL;

    if (rc < 0)
        virErrorPreserveLast(&err);
    if (qemuDomainObjExitAgent(vm, g_steal_pointer(agent)) < 0 && rc == 0)
        rc = -1;
    if (err)
        virErrorRestore(&err);
    qemuDomainObjEndAgentJob(vm);
    return rc;
}


/* vm locked: the response timeout of the domain's agent APIs. */
static int
qemuAgentDomainTimeout(virDomainObj *vm)
{
    qemuAgentDomain *ad = qemuAgentDomainGet(vm, false);

    return ad ? ad->timeout : QEMU_AGENT_WAIT_DEFAULT;
}


/* Runs one command built by the caller; *@reply as qemuAgentCommand. */
static int
qemuAgentRun(qemuAgent *agent, tdmJSONValue *cmd, int seconds, tdmJSONValue **reply)
{
    if (!cmd)
        return -1;
    return qemuAgentCommand(agent, &cmd, seconds, reply);
}


int
qemuAgentShutdown(virDomainObj *vm, bool reboot)
{
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    int rc;

    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_MODIFY, &agent) < 0)
        return -1;
    cmd = tdmJSONCommandBuild("guest-shutdown",
                              "s:mode", reboot ? "reboot" : "powerdown",
                              NULL);
    rc = cmd ? qemuAgentCommandInternal(agent, &cmd, QEMU_AGENT_WAIT_DEFAULT,
                                        true, &reply)
             : -1;
    if (rc == 0) {
        /* the guest may be gone already: that is what was asked for */
        if (qemuDomainObjExitAgent(vm, g_steal_pointer(&agent)) < 0)
            virResetLastError();
        qemuDomainObjEndAgentJob(vm);
        return 0;
    }
    return qemuAgentEndCall(vm, &agent, rc);
}


/* ------------------------------------------------------------------ */
/* APIs                                                                */
/* ------------------------------------------------------------------ */


static char *
qemuAgentDomainQemuAgentCommand(virDomainPtr dom,
                                const char *cmdstr,
                                int timeout,
                                unsigned int flags)
{
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    char *result = NULL;
    int rc;

    virCheckFlags(0, NULL);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    if (virDomainQemuAgentCommandEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (timeout < QEMU_AGENT_WAIT_BLOCK) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("guest agent timeout '%d' is less than the minimum '%d'"),
                       timeout, QEMU_AGENT_WAIT_BLOCK);
        goto cleanup;
    }
    if (!(cmd = tdmJSONValueFromString(cmdstr)))
        goto cleanup;

    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_MODIFY, &agent) < 0)
        goto cleanup;
    rc = qemuAgentCommand(agent, &cmd, timeout, &reply);
    if (rc == 0) {
        /* NOWAIT: nothing to show but that it was sent */
        result = reply ? tdmJSONValueToString(reply, false) : g_strdup("{}");
        if (!result)
            rc = -1;
    }
    if (qemuAgentEndCall(vm, &agent, rc) < 0)
        g_clear_pointer(&result, g_free);

 cleanup:
    virDomainObjEndAPI(&vm);
    return result;
}


static int
qemuAgentDomainGetTime(virDomainPtr dom,
                       long long *seconds,
                       unsigned int *nseconds,
                       unsigned int flags)
{
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    unsigned long long ns = 0;
    int timeout;
    int ret = -1;
    int rc;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetTimeEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    timeout = qemuAgentDomainTimeout(vm);
    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_QUERY, &agent) < 0)
        goto cleanup;
    rc = qemuAgentRun(agent, tdmJSONCommandBuild("guest-get-time", NULL), timeout, &reply);
    if (rc == 0 &&
        tdmJSONValueObjectGetNumberULLong(reply, "return", &ns) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("malformed return value of guest-get-time"));
        rc = -1;
    }
    if (qemuAgentEndCall(vm, &agent, rc) < 0)
        goto cleanup;

    *seconds = ns / 1000000000ULL;
    *nseconds = ns % 1000000000ULL;
    ret = 0;

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


static int
qemuAgentDomainSetTime(virDomainPtr dom,
                       long long seconds,
                       unsigned int nseconds,
                       unsigned int flags)
{
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    tdmJSONValue *cmd;
    bool rtcSync = flags & VIR_DOMAIN_TIME_SYNC;
    int timeout;
    int ret = -1;
    int rc;

    virCheckFlags(VIR_DOMAIN_TIME_SYNC, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainSetTimeEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    if (!rtcSync) {
        if (seconds < 0 || nseconds > 999999999 ||
            (unsigned long long) seconds > LLONG_MAX / 1000000000LL - 1) {
            virReportError(VIR_ERR_INVALID_ARG,
                           _("Time '%lld' is out of range for the guest agent"),
                           seconds);
            goto cleanup;
        }
    }

    timeout = qemuAgentDomainTimeout(vm);
    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_MODIFY, &agent) < 0)
        goto cleanup;
    /* without a time the guest takes it from its RTC */
    if (rtcSync)
        cmd = tdmJSONCommandBuild("guest-set-time", NULL);
    else
        cmd = tdmJSONCommandBuild("guest-set-time",
                                  "I:time", seconds * 1000000000LL + nseconds,
                                  NULL);
    rc = qemuAgentRun(agent, cmd, timeout, &reply);
    ret = qemuAgentEndCall(vm, &agent, rc);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


/* guest-fsfreeze-freeze(-list) / guest-fsfreeze-thaw */
static int
qemuAgentDomainFSFreezeThaw(virDomainPtr dom,
                            const char **mountpoints,
                            unsigned int nmountpoints,
                            unsigned int flags,
                            bool freeze)
{
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    tdmJSONValue *cmd = NULL;
    int count = 0;
    int timeout;
    int ret = -1;
    int rc;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if ((freeze ? virDomainFSFreezeEnsureACL(dom->conn, vm->def)
                : virDomainFSThawEnsureACL(dom->conn, vm->def)) < 0)
        goto cleanup;
    if (!freeze && nmountpoints > 0) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED, "%s",
                       _("specifying mountpoints is not supported for thaw"));
        goto cleanup;
    }

    if (freeze && nmountpoints > 0) {
        g_autoptr(tdmJSONValue) list = tdmJSONValueNewArray();
        size_t i;

        for (i = 0; i < nmountpoints; i++) {
            if (tdmJSONValueArrayAppendString(list, mountpoints[i]) < 0)
                goto cleanup;
        }
        cmd = tdmJSONCommandBuild("guest-fsfreeze-freeze-list",
                                  "a:mountpoints", &list,
                                  NULL);
    } else {
        cmd = tdmJSONCommandBuild(freeze ? "guest-fsfreeze-freeze"
                                         : "guest-fsfreeze-thaw", NULL);
    }
    if (!cmd)
        goto cleanup;

    timeout = qemuAgentDomainTimeout(vm);
    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_MODIFY, &agent) < 0) {
        tdmJSONValueFree(cmd);
        goto cleanup;
    }
    rc = qemuAgentRun(agent, cmd, timeout, &reply);
    if (rc == 0 && tdmJSONValueObjectGetNumberInt(reply, "return", &count) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("malformed return value of %s"),
                       freeze ? "guest-fsfreeze-freeze" : "guest-fsfreeze-thaw");
        rc = -1;
    }
    if (qemuAgentEndCall(vm, &agent, rc) < 0)
        goto cleanup;
    ret = count;

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


static int
qemuAgentDomainFSFreeze(virDomainPtr dom,
                        const char **mountpoints,
                        unsigned int nmountpoints,
                        unsigned int flags)
{
    return qemuAgentDomainFSFreezeThaw(dom, mountpoints, nmountpoints, flags, true);
}


static int
qemuAgentDomainFSThaw(virDomainPtr dom,
                      const char **mountpoints,
                      unsigned int nmountpoints,
                      unsigned int flags)
{
    return qemuAgentDomainFSFreezeThaw(dom, mountpoints, nmountpoints, flags, false);
}


static char *
qemuAgentDomainGetHostname(virDomainPtr dom,
                           unsigned int flags)
{
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    char *hostname = NULL;
    int timeout;
    int rc;

    virCheckFlags(VIR_DOMAIN_GET_HOSTNAME_LEASE |
                  VIR_DOMAIN_GET_HOSTNAME_AGENT, NULL);

    if ((flags & VIR_DOMAIN_GET_HOSTNAME_LEASE) &&
        (flags & VIR_DOMAIN_GET_HOSTNAME_AGENT)) {
        virReportError(VIR_ERR_INVALID_ARG, "%s",
                       _("Flags 'lease' and 'agent' are mutually exclusive"));
        return NULL;
    }

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    if (virDomainGetHostnameEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (flags & VIR_DOMAIN_GET_HOSTNAME_LEASE) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED, "%s",
                       _("the hostname from DHCP leases is not supported; use the guest agent"));
        goto cleanup;
    }

    timeout = qemuAgentDomainTimeout(vm);
    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_QUERY, &agent) < 0)
        goto cleanup;
    rc = qemuAgentRun(agent, tdmJSONCommandBuild("guest-get-host-name", NULL),
                      timeout, &reply);
    if (rc == 0) {
        tdmJSONValue *ret = tdmJSONValueObjectGetObject(reply, "return");
        const char *name = ret ? tdmJSONValueObjectGetString(ret, "host-name") : NULL;

        if (!name || !*name) {
            virReportError(VIR_ERR_NO_HOSTNAME,
                           _("no hostname found for domain %s"), dom->name);
            rc = -1;
        } else {
            hostname = g_strdup(name);
        }
    }
    if (qemuAgentEndCall(vm, &agent, rc) < 0)
        g_clear_pointer(&hostname, g_free);

 cleanup:
    virDomainObjEndAPI(&vm);
    return hostname;
}


/* guest-network-get-interfaces -> virDomainInterface list.  Aliases
 * ("eth0:1") are folded into their interface. */
static int
qemuAgentParseInterfaces(tdmJSONValue *reply, virDomainInterfacePtr **ifaces)
{
    tdmJSONValue *list = tdmJSONValueObjectGetArray(reply, "return");
    g_autoptr(GPtrArray) out = g_ptr_array_new();
    size_t i;
    size_t j;

    if (!list) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("malformed return value of guest-network-get-interfaces"));
        return -1;
    }

    for (i = 0; i < tdmJSONValueArraySize(list); i++) {
        tdmJSONValue *entry = tdmJSONValueArrayGet(list, i);
        const char *fullname = tdmJSONValueObjectGetString(entry, "name");
        const char *hwaddr = tdmJSONValueObjectGetString(entry, "hardware-address");
        tdmJSONValue *addrs = tdmJSONValueObjectGetArray(entry, "ip-addresses");
        g_autofree char *name = NULL;
        virDomainInterfacePtr iface = NULL;
        char *colon;

        if (!fullname) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("guest agent reported an interface without a name"));
            goto error;
        }
        name = g_strdup(fullname);
        if ((colon = strchr(name, ':')))
            *colon = '\0';

        for (j = 0; j < out->len; j++) {
            virDomainInterfacePtr cur = g_ptr_array_index(out, j);

            if (STREQ(cur->name, name)) {
                iface = cur;
                break;
            }
        }
        if (!iface) {
            iface = g_new0(virDomainInterface, 1);
            iface->name = g_steal_pointer(&name);
            iface->hwaddr = g_strdup(hwaddr);
            g_ptr_array_add(out, iface);
        }

        for (j = 0; addrs && j < tdmJSONValueArraySize(addrs); j++) {
            tdmJSONValue *a = tdmJSONValueArrayGet(addrs, j);
            const char *type = tdmJSONValueObjectGetString(a, "ip-address-type");
            const char *addr = tdmJSONValueObjectGetString(a, "ip-address");
            unsigned int prefix = 0;
            virDomainIPAddressPtr ip;

            if (!type || !addr ||
                tdmJSONValueObjectGetNumberUInt(a, "prefix", &prefix) < 0) {
                virReportError(VIR_ERR_INTERNAL_ERROR,
                               _("malformed IP address of interface '%s' from the guest agent"),
                               fullname);
                goto error;
            }
            if (STRNEQ(type, "ipv4") && STRNEQ(type, "ipv6"))
                continue;
            iface->addrs = g_renew(virDomainIPAddress, iface->addrs, iface->naddrs + 1);
            ip = &iface->addrs[iface->naddrs++];
            memset(ip, 0, sizeof(*ip));
            ip->type = STREQ(type, "ipv4") ? VIR_IP_ADDR_TYPE_IPV4 : VIR_IP_ADDR_TYPE_IPV6;
            ip->addr = g_strdup(addr);
            ip->prefix = prefix;
        }
    }

    *ifaces = g_new0(virDomainInterfacePtr, out->len + 1);
    for (i = 0; i < out->len; i++)
        (*ifaces)[i] = g_ptr_array_index(out, i);
    return out->len;

 error:
    for (i = 0; i < out->len; i++)
        virDomainInterfaceFree(g_ptr_array_index(out, i));
    return -1;
}


static int
qemuAgentDomainInterfaceAddresses(virDomainPtr dom,
                                  virDomainInterfacePtr **ifaces,
                                  unsigned int source,
                                  unsigned int flags)
{
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) reply = NULL;
    int timeout;
    int ret = -1;
    int rc;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainInterfaceAddressesEnsureACL(dom->conn, vm->def, source) < 0)
        goto cleanup;
    if (source != VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT) {
        virReportError(VIR_ERR_ARGUMENT_UNSUPPORTED,
                       _("interface address source %u is not supported; use the guest agent"),
                       source);
        goto cleanup;
    }

    timeout = qemuAgentDomainTimeout(vm);
    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_QUERY, &agent) < 0)
        goto cleanup;
    rc = qemuAgentRun(agent, tdmJSONCommandBuild("guest-network-get-interfaces", NULL),
                      timeout, &reply);
    if (qemuAgentEndCall(vm, &agent, rc) < 0)
        goto cleanup;
    ret = qemuAgentParseInterfaces(reply, ifaces);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


static int
qemuAgentDomainAgentSetResponseTimeout(virDomainPtr dom,
                                       int timeout,
                                       unsigned int flags)
{
    virDomainObj *vm;
    qemuAgentDomain *ad;
    int ret = -1;

    virCheckFlags(0, -1);

    if (timeout < VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("guest agent timeout '%d' is less than the minimum '%d'"),
                       timeout, VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK);
        return -1;
    }
    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainAgentSetResponseTimeoutEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto cleanup;
    /* kept while the domain runs (not in the status file) */
    ad = qemuAgentDomainGet(vm, true);
    ad->timeout = timeout;
    ret = 0;

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ------------------------------------------------------------------ */
/* guestinfo                                                           */
/* ------------------------------------------------------------------ */

/* Runs @cmdname; a guest that does not know it is no error (0, no reply). */
static int
qemuAgentRunOptional(qemuAgent *agent, const char *cmdname, int timeout,
                     tdmJSONValue **reply)
{
    tdmJSONValue *cmd = tdmJSONCommandBuild(cmdname, NULL);
    tdmJSONValue *error;
    int rc = qemuAgentRun(agent, cmd, timeout, reply);

    if (rc < 0 && *reply && (error = tdmJSONValueObjectGetObject(*reply, "error"))) {
        const char *klass = tdmJSONValueObjectGetString(error, "class");

        if (STREQ_NULLABLE(klass, "CommandNotFound") ||
            STREQ_NULLABLE(klass, "CommandDisabled")) {
            virResetLastError();
            g_clear_pointer(reply, tdmJSONValueFree);
            return 0;
        }
    }
    return rc;
}


static int
qemuAgentGuestInfoUsers(tdmJSONValue *ret, virTypedParameterPtr *params,
                        int *nparams, int *maxparams)
{
    size_t i;
    size_t n = tdmJSONValueArraySize(ret);

    if (virTypedParamsAddUInt(params, nparams, maxparams, "user.count", n) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        tdmJSONValue *u = tdmJSONValueArrayGet(ret, i);
        const char *user = tdmJSONValueObjectGetString(u, "user");
        const char *domain = tdmJSONValueObjectGetString(u, "domain");
        double login = 0;
        char key[VIR_TYPED_PARAM_FIELD_LENGTH];

        if (user) {
            g_snprintf(key, sizeof(key), "user.%zu.name", i);
            if (virTypedParamsAddString(params, nparams, maxparams, key, user) < 0)
                return -1;
        }
        if (domain) {
            g_snprintf(key, sizeof(key), "user.%zu.domain", i);
            if (virTypedParamsAddString(params, nparams, maxparams, key, domain) < 0)
                return -1;
        }
        if (tdmJSONValueObjectGetNumberDouble(u, "login-time", &login) == 0) {
            g_snprintf(key, sizeof(key), "user.%zu.login-time", i);
            if (virTypedParamsAddULLong(params, nparams, maxparams, key,
                                        (unsigned long long) (login * 1000)) < 0)
                return -1;
        }
    }
    return 0;
}


static int
qemuAgentGuestInfoOS(tdmJSONValue *ret, virTypedParameterPtr *params,
                     int *nparams, int *maxparams)
{
    static const char *const keys[][2] = {
        { "id", "os.id" },
        { "name", "os.name" },
        { "pretty-name", "os.pretty-name" },
        { "version", "os.version" },
        { "version-id", "os.version-id" },
        { "machine", "os.machine" },
        { "variant", "os.variant" },
        { "variant-id", "os.variant-id" },
        { "kernel-release", "os.kernel-release" },
        { "kernel-version", "os.kernel-version" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *val = tdmJSONValueObjectGetString(ret, keys[i][0]);

        if (val && virTypedParamsAddString(params, nparams, maxparams,
                                           keys[i][1], val) < 0)
            return -1;
    }
    return 0;
}


static int
qemuAgentGuestInfoTimezone(tdmJSONValue *ret, virTypedParameterPtr *params,
                           int *nparams, int *maxparams)
{
    const char *zone = tdmJSONValueObjectGetString(ret, "zone");
    int offset = 0;

    if (zone && virTypedParamsAddString(params, nparams, maxparams,
                                        "timezone.name", zone) < 0)
        return -1;
    if (tdmJSONValueObjectGetNumberInt(ret, "offset", &offset) == 0 &&
        virTypedParamsAddInt(params, nparams, maxparams, "timezone.offset", offset) < 0)
        return -1;
    return 0;
}


static int
qemuAgentGuestInfoFS(tdmJSONValue *ret, virTypedParameterPtr *params,
                     int *nparams, int *maxparams)
{
    size_t i;
    size_t n = tdmJSONValueArraySize(ret);

    if (virTypedParamsAddUInt(params, nparams, maxparams, "fs.count", n) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        tdmJSONValue *fs = tdmJSONValueArrayGet(ret, i);
        const char *mnt = tdmJSONValueObjectGetString(fs, "mountpoint");
        const char *name = tdmJSONValueObjectGetString(fs, "name");
        const char *type = tdmJSONValueObjectGetString(fs, "type");
        unsigned long long used = 0;
        unsigned long long total = 0;
        char key[VIR_TYPED_PARAM_FIELD_LENGTH];

        if (mnt) {
            g_snprintf(key, sizeof(key), "fs.%zu.mountpoint", i);
            if (virTypedParamsAddString(params, nparams, maxparams, key, mnt) < 0)
                return -1;
        }
        if (name) {
            g_snprintf(key, sizeof(key), "fs.%zu.name", i);
            if (virTypedParamsAddString(params, nparams, maxparams, key, name) < 0)
                return -1;
        }
        if (type) {
            g_snprintf(key, sizeof(key), "fs.%zu.fstype", i);
            if (virTypedParamsAddString(params, nparams, maxparams, key, type) < 0)
                return -1;
        }
        if (tdmJSONValueObjectGetNumberULLong(fs, "total-bytes", &total) == 0 &&
            tdmJSONValueObjectGetNumberULLong(fs, "used-bytes", &used) == 0) {
            g_snprintf(key, sizeof(key), "fs.%zu.total-bytes", i);
            if (virTypedParamsAddULLong(params, nparams, maxparams, key, total) < 0)
                return -1;
            g_snprintf(key, sizeof(key), "fs.%zu.used-bytes", i);
            if (virTypedParamsAddULLong(params, nparams, maxparams, key, used) < 0)
                return -1;
        }
        g_snprintf(key, sizeof(key), "fs.%zu.disk.count", i);
        if (virTypedParamsAddUInt(params, nparams, maxparams, key, 0) < 0)
            return -1;
    }
    return 0;
}


static int
qemuAgentDomainGetGuestInfo(virDomainPtr dom,
                            unsigned int types,
                            virTypedParameterPtr *params,
                            int *nparams,
                            unsigned int flags)
{
    static const unsigned int supported = VIR_DOMAIN_GUEST_INFO_USERS |
                                          VIR_DOMAIN_GUEST_INFO_OS |
                                          VIR_DOMAIN_GUEST_INFO_TIMEZONE |
                                          VIR_DOMAIN_GUEST_INFO_HOSTNAME |
                                          VIR_DOMAIN_GUEST_INFO_FILESYSTEM;
    virDomainObj *vm;
    qemuAgent *agent = NULL;
    g_autoptr(tdmJSONValue) users = NULL;
    g_autoptr(tdmJSONValue) os = NULL;
    g_autoptr(tdmJSONValue) tz = NULL;
    g_autoptr(tdmJSONValue) host = NULL;
    g_autoptr(tdmJSONValue) fs = NULL;
    virTypedParameterPtr par = NULL;
    int npar = 0;
    int maxpar = 0;
    int timeout;
    int ret = -1;
    int rc = 0;

    virCheckFlags(0, -1);

    if (types & ~(supported | VIR_DOMAIN_GUEST_INFO_DISKS | VIR_DOMAIN_GUEST_INFO_INTERFACES)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("unsupported guest information types '0x%x'"), types);
        return -1;
    }
    if (types == 0)
        types = supported;

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetGuestInfoEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;

    timeout = qemuAgentDomainTimeout(vm);
    if (qemuAgentBeginCall(vm, QEMU_AGENT_JOB_QUERY, &agent) < 0)
        goto cleanup;
    if (rc == 0 && (types & VIR_DOMAIN_GUEST_INFO_USERS))
        rc = qemuAgentRunOptional(agent, "guest-get-users", timeout, &users);
    if (rc == 0 && (types & VIR_DOMAIN_GUEST_INFO_OS))
        rc = qemuAgentRunOptional(agent, "guest-get-osinfo", timeout, &os);
    if (rc == 0 && (types & VIR_DOMAIN_GUEST_INFO_TIMEZONE))
        rc = qemuAgentRunOptional(agent, "guest-get-timezone", timeout, &tz);
    if (rc == 0 && (types & VIR_DOMAIN_GUEST_INFO_HOSTNAME))
        rc = qemuAgentRunOptional(agent, "guest-get-host-name", timeout, &host);
    if (rc == 0 && (types & VIR_DOMAIN_GUEST_INFO_FILESYSTEM))
        rc = qemuAgentRunOptional(agent, "guest-get-fsinfo", timeout, &fs);
    if (qemuAgentEndCall(vm, &agent, rc) < 0)
        goto cleanup;

    if (users && tdmJSONValueObjectGetArray(users, "return") &&
        qemuAgentGuestInfoUsers(tdmJSONValueObjectGetArray(users, "return"),
                                &par, &npar, &maxpar) < 0)
        goto error;
    if (os && tdmJSONValueObjectGetObject(os, "return") &&
        qemuAgentGuestInfoOS(tdmJSONValueObjectGetObject(os, "return"),
                             &par, &npar, &maxpar) < 0)
        goto error;
    if (tz && tdmJSONValueObjectGetObject(tz, "return") &&
        qemuAgentGuestInfoTimezone(tdmJSONValueObjectGetObject(tz, "return"),
                                   &par, &npar, &maxpar) < 0)
        goto error;
    if (host && tdmJSONValueObjectGetObject(host, "return")) {
        const char *name = tdmJSONValueObjectGetString(tdmJSONValueObjectGetObject(host, "return"),
                                                       "host-name");

        if (name && virTypedParamsAddString(&par, &npar, &maxpar, "hostname", name) < 0)
            goto error;
    }
    if (fs && tdmJSONValueObjectGetArray(fs, "return") &&
        qemuAgentGuestInfoFS(tdmJSONValueObjectGetArray(fs, "return"),
                             &par, &npar, &maxpar) < 0)
        goto error;

    *params = g_steal_pointer(&par);
    *nparams = npar;
    ret = 0;
    goto cleanup;

 error:
    virTypedParamsFree(par, npar);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


void
qemuAgentRegister(virHypervisorDriver *driver)
{
    driver->domainQemuAgentCommand = qemuAgentDomainQemuAgentCommand;
    driver->domainGetTime = qemuAgentDomainGetTime;
    driver->domainSetTime = qemuAgentDomainSetTime;
    driver->domainFSFreeze = qemuAgentDomainFSFreeze;
    driver->domainFSThaw = qemuAgentDomainFSThaw;
    driver->domainGetHostname = qemuAgentDomainGetHostname;
    driver->domainInterfaceAddresses = qemuAgentDomainInterfaceAddresses;
    driver->domainAgentSetResponseTimeout = qemuAgentDomainAgentSetResponseTimeout;
    driver->domainGetGuestInfo = qemuAgentDomainGetGuestInfo;
}
