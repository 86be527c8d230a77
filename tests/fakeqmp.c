/*
 * fakeqmp.c: a scripted fake QMP server for the monitor tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>

#include "fakeqmp.h"
#include "tdmjson.h"

typedef enum {
    FAKE_QMP_GREETING,
    FAKE_QMP_EXPECT,
    FAKE_QMP_REPLY,
    FAKE_QMP_ERROR,
    FAKE_QMP_EVENT,
    FAKE_QMP_DELAY,
    FAKE_QMP_RAW,
    FAKE_QMP_NOTHING,
    FAKE_QMP_CLOSE,
} fakeQMPStepType;

typedef struct _fakeQMPStep fakeQMPStep;
struct _fakeQMPStep {
    fakeQMPStepType type;
    char *str1;              /* execute / return / class / event / raw */
    char *str2;              /* args / desc / data */
    size_t rawLen;
    int slot;
    unsigned int ms;
    tdmJSONValue *received;  /* EXPECT: the command that came */
};

struct _fakeQMP {
    int fds[2];              /* [0] server, [1] client */
    bool clientTaken;
    GPtrArray *steps;        /* fakeQMPStep * */
    GThread *thread;

    GMutex lock;             /* protects the fields below */
    GCond cond;
    bool quit;
    bool scriptDone;
    char *error;
    size_t extra;
    size_t received;

    GString *rx;             /* server thread only */
    int lastFd;              /* last fd received (SCM_RIGHTS), under lock */
    size_t nfds;             /* fds received in all, under lock */
};


static void
fakeQMPStepFree(void *opaque)
{
    fakeQMPStep *step = opaque;

    g_free(step->str1);
    g_free(step->str2);
    tdmJSONValueFree(step->received);
    g_free(step);
}


fakeQMP *
fakeQMPNew(void)
{
    fakeQMP *srv = g_new0(fakeQMP, 1);

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, srv->fds) < 0) {
        g_free(srv);
        return NULL;
    }
    srv->steps = g_ptr_array_new_with_free_func(fakeQMPStepFree);
    srv->rx = g_string_new(NULL);
    srv->lastFd = -1;
    g_mutex_init(&srv->lock);
    g_cond_init(&srv->cond);
    return srv;
}


int
fakeQMPGetClientFD(fakeQMP *srv)
{
    srv->clientTaken = true;
    return srv->fds[1];
}


static fakeQMPStep *
fakeQMPAddStep(fakeQMP *srv, fakeQMPStepType type)
{
    fakeQMPStep *step = g_new0(fakeQMPStep, 1);

    step->type = type;
    step->slot = -1;
    g_ptr_array_add(srv->steps, step);
    return step;
}


/* The EXPECT step a reply refers to. */
static int
fakeQMPResolveSlot(fakeQMP *srv, int slot)
{
    int i;

    if (slot >= 0)
        return slot;
    for (i = (int) srv->steps->len - 1; i >= 0; i--) {
        fakeQMPStep *step = g_ptr_array_index(srv->steps, i);
        if (step->type == FAKE_QMP_EXPECT)
            return i;
    }
    return -1;
}


void
fakeQMPAddGreeting(fakeQMP *srv)
{
    fakeQMPAddStep(srv, FAKE_QMP_GREETING);
}


int
fakeQMPExpect(fakeQMP *srv, const char *execute, const char *args)
{
    fakeQMPStep *step = fakeQMPAddStep(srv, FAKE_QMP_EXPECT);

    step->str1 = g_strdup(execute);
    step->str2 = g_strdup(args);
    return srv->steps->len - 1;
}


void
fakeQMPReply(fakeQMP *srv, int slot, const char *ret)
{
    int resolved = fakeQMPResolveSlot(srv, slot);
    fakeQMPStep *step = fakeQMPAddStep(srv, FAKE_QMP_REPLY);

    step->slot = resolved;
    step->str1 = g_strdup(ret);
}


void
fakeQMPReplyError(fakeQMP *srv, int slot, const char *klass, const char *desc)
{
    int resolved = fakeQMPResolveSlot(srv, slot);
    fakeQMPStep *step = fakeQMPAddStep(srv, FAKE_QMP_ERROR);

    step->slot = resolved;
    step->str1 = g_strdup(klass);
    step->str2 = g_strdup(desc);
}


void
fakeQMPEvent(fakeQMP *srv, const char *name, const char *data)
{
    fakeQMPStep *step = fakeQMPAddStep(srv, FAKE_QMP_EVENT);

    step->str1 = g_strdup(name);
    step->str2 = g_strdup(data);
}


void
fakeQMPDelay(fakeQMP *srv, unsigned int ms)
{
    fakeQMPAddStep(srv, FAKE_QMP_DELAY)->ms = ms;
}


void
fakeQMPRaw(fakeQMP *srv, const char *text)
{
    fakeQMPStep *step = fakeQMPAddStep(srv, FAKE_QMP_RAW);

    step->str1 = g_strdup(text);
    step->rawLen = strlen(text);
}


void
fakeQMPRawRepeat(fakeQMP *srv, char c, size_t len)
{
    fakeQMPStep *step = fakeQMPAddStep(srv, FAKE_QMP_RAW);

    step->str1 = g_new0(char, len + 1);
    memset(step->str1, c, len);
    step->str1[len] = '\0';
    step->rawLen = len;
}


void
fakeQMPExpectNothing(fakeQMP *srv, unsigned int ms)
{
    fakeQMPAddStep(srv, FAKE_QMP_NOTHING)->ms = ms;
}


void
fakeQMPClose(fakeQMP *srv)
{
    fakeQMPAddStep(srv, FAKE_QMP_CLOSE);
}


static void
fakeQMPFail(fakeQMP *srv, const char *fmt, ...)
{
    va_list ap;

    g_mutex_lock(&srv->lock);
    if (!srv->error) {
        va_start(ap, fmt);
        srv->error = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    g_mutex_unlock(&srv->lock);
}


static bool
fakeQMPShouldQuit(fakeQMP *srv)
{
    bool quit;

    g_mutex_lock(&srv->lock);
    quit = srv->quit;
    g_mutex_unlock(&srv->lock);
    return quit;
}


static int
fakeQMPSend(fakeQMP *srv, const char *data, size_t len)
{
    size_t done = 0;

    while (done < len) {
        struct pollfd pfd = { .fd = srv->fds[0], .events = POLLOUT };
        ssize_t n;

        /* the monitor may stop reading (e.g. after an oversized message):
         * never block for good */
        if (fakeQMPShouldQuit(srv))
            return -1;
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        n = send(srv->fds[0], data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return -1;
        }
        done += n;
    }
    return 0;
}


static int
fakeQMPSendLine(fakeQMP *srv, tdmJSONValue *value)
{
    g_autofree char *text = tdmJSONValueToString(value, false);
    g_autofree char *line = NULL;

    if (!text)
        return -1;
    line = g_strdup_printf("%s\r\n", text);
    return fakeQMPSend(srv, line, strlen(line));
}


/* read() that also keeps a file descriptor passed with the bytes. */
static ssize_t
fakeQMPRecv(fakeQMP *srv, char *buf, size_t len)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr hdr = { 0 };
    struct cmsghdr *cmsg;
    ssize_t n;

    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.buf;
    hdr.msg_controllen = sizeof(control.buf);
    if ((n = recvmsg(srv->fds[0], &hdr, MSG_CMSG_CLOEXEC)) <= 0)
        return n;
    for (cmsg = CMSG_FIRSTHDR(&hdr); cmsg; cmsg = CMSG_NXTHDR(&hdr, cmsg)) {
        int fd;

        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
        g_mutex_lock(&srv->lock);
        if (srv->lastFd >= 0)
            close(srv->lastFd);
        srv->lastFd = fd;
        srv->nfds++;
        g_mutex_unlock(&srv->lock);
    }
    return n;
}


int
fakeQMPTakeReceivedFD(fakeQMP *srv, size_t *count)
{
    int fd;

    g_mutex_lock(&srv->lock);
    fd = srv->lastFd;
    srv->lastFd = -1;
    if (count)
        *count = srv->nfds;
    g_mutex_unlock(&srv->lock);
    return fd;
}


/*
 * Reads one line within @ms (forever if 0, but still checks for quit).
 * Returns 1 with *@line, 0 on timeout, -1 on EOF/error or quit.
 */
static int
fakeQMPReadLine(fakeQMP *srv, unsigned int ms, char **line)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) ms * 1000;

    for (;;) {
        char *nl = memchr(srv->rx->str, '\n', srv->rx->len);
        struct pollfd pfd = { .fd = srv->fds[0], .events = POLLIN };
        char buf[4096];
        ssize_t n;
        int wait = 100;

        if (nl) {
            size_t len = nl - srv->rx->str;
            *line = g_strndup(srv->rx->str, len);
            g_string_erase(srv->rx, 0, len + 1);
            return 1;
        }
        if (fakeQMPShouldQuit(srv))
            return -1;
        if (ms) {
            gint64 left = (deadline - g_get_monotonic_time()) / 1000;
            if (left <= 0)
                return 0;
            wait = MIN(wait, (int) left);
        }
        if (poll(&pfd, 1, wait) <= 0)
            continue;
        n = fakeQMPRecv(srv, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        g_string_append_len(srv->rx, buf, n);
    }
}


static int
fakeQMPRunStep(fakeQMP *srv, size_t idx)
{
    fakeQMPStep *step = g_ptr_array_index(srv->steps, idx);
    fakeQMPStep *target = NULL;
    g_autoptr(tdmJSONValue) msg = NULL;
    g_autofree char *line = NULL;

    if (step->slot >= 0) {
        if (step->slot >= (int) srv->steps->len ||
            !(target = g_ptr_array_index(srv->steps, step->slot))->received) {
            fakeQMPFail(srv, "step %zu: slot %d has no command", idx, step->slot);
            return -1;
        }
    }

    switch (step->type) {
    case FAKE_QMP_GREETING:
        msg = tdmJSONValueFromString("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
                                     "\"minor\": 2, \"major\": 7}, \"package\": "
                                     "\"fake\"}, \"capabilities\": [\"oob\"]}}");
        return fakeQMPSendLine(srv, msg);

    case FAKE_QMP_EXPECT: {
        g_autoptr(tdmJSONValue) cmd = NULL;
        const char *execute;
        int rc = fakeQMPReadLine(srv, 10000, &line);

        if (rc <= 0) {
            fakeQMPFail(srv, "step %zu: expected '%s', got %s", idx, step->str1,
                        rc == 0 ? "nothing within 10 s" : "EOF");
            return -1;
        }
        g_mutex_lock(&srv->lock);
        srv->received++;
        g_mutex_unlock(&srv->lock);
        if (!(cmd = tdmJSONValueFromString(line)) ||
            !(execute = tdmJSONValueObjectGetString(cmd, "execute"))) {
            fakeQMPFail(srv, "step %zu: not a command: %s", idx, line);
            return -1;
        }
        if (STRNEQ(execute, step->str1)) {
            fakeQMPFail(srv, "step %zu: expected '%s', got '%s'", idx, step->str1, line);
            return -1;
        }
        if (step->str2) {
            g_autoptr(tdmJSONValue) want = tdmJSONValueFromString(step->str2);
            if (!tdmJSONValueEqual(want, tdmJSONValueObjectGet(cmd, "arguments"))) {
                fakeQMPFail(srv, "step %zu: arguments differ: %s", idx, line);
                return -1;
            }
        }
        step->received = g_steal_pointer(&cmd);
        return 0;
    }

    case FAKE_QMP_REPLY:
    case FAKE_QMP_ERROR: {
        tdmJSONValue *id = tdmJSONValueObjectGet(target->received, "id");
        g_autoptr(tdmJSONValue) ret = NULL;

        msg = tdmJSONValueNewObject();
        if (step->type == FAKE_QMP_REPLY) {
            if (step->str1)
                ret = tdmJSONValueFromString(step->str1);
            else if (tdmJSONValueObjectGet(target->received, "arguments"))
                ret = tdmJSONValueCopy(tdmJSONValueObjectGet(target->received, "arguments"));
            else
                ret = tdmJSONValueNewObject();
            if (!ret) {
                fakeQMPFail(srv, "step %zu: bad return JSON", idx);
                return -1;
            }
            tdmJSONValueObjectSet(msg, "return", &ret);
        } else {
            ret = tdmJSONValueNewObject();
            tdmJSONValueObjectSetString(ret, "class", step->str1);
            tdmJSONValueObjectSetString(ret, "desc", step->str2);
            tdmJSONValueObjectSet(msg, "error", &ret);
        }
        if (id) {
            g_autoptr(tdmJSONValue) idcopy = tdmJSONValueCopy(id);
            tdmJSONValueObjectSet(msg, "id", &idcopy);
        }
        return fakeQMPSendLine(srv, msg);
    }

    case FAKE_QMP_EVENT: {
        gint64 now = g_get_real_time();
        g_autoptr(tdmJSONValue) ts = tdmJSONValueNewObject();

        msg = tdmJSONValueNewObject();
        tdmJSONValueObjectSetString(msg, "event", step->str1);
        if (step->str2) {
            g_autoptr(tdmJSONValue) data = tdmJSONValueFromString(step->str2);
            if (!data) {
                fakeQMPFail(srv, "step %zu: bad event data", idx);
                return -1;
            }
            tdmJSONValueObjectSet(msg, "data", &data);
        }
        tdmJSONValueObjectSetNumberLLong(ts, "seconds", now / 1000000);
        tdmJSONValueObjectSetNumberLLong(ts, "microseconds", now % 1000000);
        tdmJSONValueObjectSet(msg, "timestamp", &ts);
        return fakeQMPSendLine(srv, msg);
    }

    case FAKE_QMP_DELAY:
        g_usleep((gulong) step->ms * 1000);
        return 0;

    case FAKE_QMP_RAW:
        if (fakeQMPSend(srv, step->str1, step->rawLen) < 0) {
            /* the monitor may legitimately hang up on garbage */
            return 0;
        }
        return 0;

    case FAKE_QMP_NOTHING: {
        int rc = fakeQMPReadLine(srv, step->ms, &line);

        if (rc > 0) {
            fakeQMPFail(srv, "step %zu: expected nothing, got %s", idx, line);
            return -1;
        }
        return 0;
    }

    case FAKE_QMP_CLOSE:
        shutdown(srv->fds[0], SHUT_RDWR);
        return 0;
    }
    return -1;
}


static gpointer
fakeQMPThread(gpointer opaque)
{
    fakeQMP *srv = opaque;
    bool closed = false;
    size_t i;

    for (i = 0; i < srv->steps->len; i++) {
        fakeQMPStep *step = g_ptr_array_index(srv->steps, i);

        if (fakeQMPRunStep(srv, i) < 0) {
            fakeQMPFail(srv, "step %zu failed", i);
            break;
        }
        if (step->type == FAKE_QMP_CLOSE) {
            closed = true;
            break;
        }
    }

    g_mutex_lock(&srv->lock);
    srv->scriptDone = true;
    g_cond_broadcast(&srv->cond);
    g_mutex_unlock(&srv->lock);

    /* count whatever comes after the script */
    while (!closed) {
        g_autofree char *line = NULL;
        int rc = fakeQMPReadLine(srv, 0, &line);

        if (rc < 0)
            break;
        if (rc > 0) {
            g_mutex_lock(&srv->lock);
            srv->extra++;
            srv->received++;
            g_mutex_unlock(&srv->lock);
        }
    }
    return NULL;
}


int
fakeQMPStart(fakeQMP *srv)
{
    srv->thread = g_thread_new("fakeqmp", fakeQMPThread, srv);
    return srv->thread ? 0 : -1;
}


int
fakeQMPWaitScript(fakeQMP *srv, unsigned int timeoutMs)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) timeoutMs * 1000;
    int ret = 0;

    g_mutex_lock(&srv->lock);
    while (!srv->scriptDone) {
        if (!g_cond_wait_until(&srv->cond, &srv->lock, deadline)) {
            ret = -1;
            break;
        }
    }
    if (srv->error)
        ret = -1;
    g_mutex_unlock(&srv->lock);
    return ret;
}


size_t
fakeQMPExtraCommands(fakeQMP *srv)
{
    size_t ret;

    g_mutex_lock(&srv->lock);
    ret = srv->extra;
    g_mutex_unlock(&srv->lock);
    return ret;
}


size_t
fakeQMPCommandsReceived(fakeQMP *srv)
{
    size_t ret;

    g_mutex_lock(&srv->lock);
    ret = srv->received;
    g_mutex_unlock(&srv->lock);
    return ret;
}


int
fakeQMPFinish(fakeQMP *srv)
{
    int ret = 0;

    if (srv->thread) {
        g_mutex_lock(&srv->lock);
        srv->quit = true;
        g_mutex_unlock(&srv->lock);
        g_thread_join(srv->thread);
        srv->thread = NULL;
    }
    g_mutex_lock(&srv->lock);
    if (!srv->scriptDone && !srv->error)
        srv->error = g_strdup("script did not finish");
    if (srv->error) {
        fprintf(stderr, "# fake QMP server: %s\n", srv->error);
        ret = -1;
    }
    g_mutex_unlock(&srv->lock);
    return ret;
}


void
fakeQMPFree(fakeQMP *srv)
{
    if (!srv)
        return;
    if (srv->thread)
        fakeQMPFinish(srv);
    if (srv->fds[0] >= 0)
        close(srv->fds[0]);
    if (!srv->clientTaken && srv->fds[1] >= 0)
        close(srv->fds[1]);
    g_ptr_array_unref(srv->steps);
    g_string_free(srv->rx, TRUE);
    if (srv->lastFd >= 0)
        close(srv->lastFd);
    g_mutex_clear(&srv->lock);
    g_cond_clear(&srv->cond);
    g_free(srv->error);
    g_free(srv);
}
