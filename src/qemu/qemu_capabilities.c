/*
 * qemu_capabilities.c: what a QEMU binary can do, probed over QMP and cached
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Three layers, each usable on its own:
 *
 *  - the probe (qemuCapsProbeReplies): start the binary paused with
 *    "-machine none", talk QMP to it over one end of a socketpair that it
 *    inherits as a file descriptor, collect the raw reply of each query,
 *    quit it and reap it. Blocking, in the caller's thread; every read and
 *    write has a deadline.
 *  - the parser (qemuCapsNewFromReplies): raw replies -> qemuCaps. No I/O.
 *  - the cache (qemuCapsCacheLookup): the raw replies are stored in
 *    CACHEDIR/capabilities/<sha256 of the binary path>.json together with
 *    the key they are valid for (binary path, mtime, size, /dev/kvm, Tandem
 *    and libvirt versions, format version), and parsed objects are kept in
 *    memory. Storing replies rather than parsed data means one parser for
 *    both paths and a cache that follows parser fixes by itself.
 */

#include <config.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qemu_capabilities.h"
#include "vircommand.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virthread.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_capabilities");

/* Whole probe, from exec to the last reply (qemuCapsSetProbeTimeout). */
#define QEMU_CAPS_PROBE_TIMEOUT_MS (30 * 1000)
static int qemuCapsProbeTimeoutMs = QEMU_CAPS_PROBE_TIMEOUT_MS;  /* atomic */
/* Waiting for QEMU to go away after "quit" (then it is killed). */
#define QEMU_CAPS_QUIT_TIMEOUT_MS (3 * 1000)
/* Bump when the set of probed commands or the file layout changes. */
#define QEMU_CAPS_CACHE_FORMAT 1
/* Lines of QEMU's stderr quoted in errors. */
#define QEMU_CAPS_LOG_TAIL_LINES 5

static virClass *qemuCapsClass;
static void qemuCapsDispose(void *obj);

static int
qemuCapsOnceInit(void)
{
    if (!VIR_CLASS_NEW(qemuCaps, virClassForObject()))
        return -1;
    return 0;
}

VIR_ONCE_GLOBAL_INIT(qemuCaps);

static void
qemuCapsDispose(void *obj)
{
    qemuCaps *caps = obj;
    size_t i;

    for (i = 0; i < caps->nmachines; i++) {
        g_free(caps->machines[i].name);
        g_free(caps->machines[i].alias);
    }
    g_free(caps->machines);
    for (i = 0; i < caps->ncpuModelInfo; i++)
        g_free(caps->cpuModelInfo[i].name);
    g_free(caps->cpuModelInfo);
    g_free(caps->binary);
    g_free(caps->package);
    g_strfreev(caps->cpuModels);
    g_strfreev(caps->devices);
    g_strfreev(caps->commands);
}


/* ------------------------------------------------------------------------
 * What we ask
 * ------------------------------------------------------------------------ */

typedef struct _qemuCapsProbeCommand qemuCapsProbeCommand;
struct _qemuCapsProbeCommand {
    const char *name;
    const char *arguments;  /* JSON object text, or NULL */
};

static const qemuCapsProbeCommand qemuCapsProbeCommands[] = {
    { "query-version", NULL },
    { "query-target", NULL },
    { "query-kvm", NULL },
    { "query-machines", NULL },
    { "query-cpu-definitions", NULL },
    { "qom-list-types", "{\"implements\": \"device\", \"abstract\": false}" },
    { "query-commands", NULL },
};


/* ------------------------------------------------------------------------
 * The probe: QMP over a socketpair
 * ------------------------------------------------------------------------ */

typedef enum {
    QEMU_CAPS_READ_OK = 0,
    QEMU_CAPS_READ_EOF,
    QEMU_CAPS_READ_TIMEOUT,
    QEMU_CAPS_READ_ERROR,   /* reported */
} qemuCapsReadResult;

typedef struct _qemuCapsProbeConn qemuCapsProbeConn;
struct _qemuCapsProbeConn {
    const char *binary;
    int fd;                 /* our end of the socketpair, non-blocking */
    gint64 deadline;        /* g_get_monotonic_time() based, in us */
    GString *buf;           /* bytes received and not yet consumed */
};

static int
qemuCapsProbeRemainingMs(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();

    if (left <= 0)
        return 0;
    return (int)((left + 999) / 1000);
}

/* Wait for @events on the connection until the deadline. Returns 1 when
 * ready, 0 on timeout, -1 on error (reported). */
static int
qemuCapsProbeWait(qemuCapsProbeConn *conn, short events, gint64 deadline)
{
    for (;;) {
        struct pollfd pfd = { .fd = conn->fd, .events = events };
        int ms = qemuCapsProbeRemainingMs(deadline);
        int rc;

        if (ms == 0)
            return 0;
        rc = poll(&pfd, 1, ms);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            virReportSystemError(errno, "%s",
                                 _("cannot poll the QEMU monitor socket"));
            return -1;
        }
        if (rc > 0)
            return 1;
    }
}

/* Read one line (without its line ending) into @line. */
static qemuCapsReadResult
qemuCapsProbeReadLine(qemuCapsProbeConn *conn, gint64 deadline, char **line)
{
    for (;;) {
        char *nl = memchr(conn->buf->str, '\n', conn->buf->len);
        char chunk[4096];
        ssize_t got;
        int rc;

        if (nl) {
            size_t len = nl - conn->buf->str;

            *line = g_strndup(conn->buf->str, len);
            g_strchomp(*line);
            g_string_erase(conn->buf, 0, len + 1);
            return QEMU_CAPS_READ_OK;
        }

        if ((rc = qemuCapsProbeWait(conn, POLLIN, deadline)) < 0)
            return QEMU_CAPS_READ_ERROR;
        if (rc == 0)
            return QEMU_CAPS_READ_TIMEOUT;

        got = recv(conn->fd, chunk, sizeof(chunk), 0);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET)
                return QEMU_CAPS_READ_EOF;
            virReportSystemError(errno, "%s",
                                 _("cannot read from the QEMU monitor socket"));
            return QEMU_CAPS_READ_ERROR;
        }
        if (got == 0)
            return QEMU_CAPS_READ_EOF;
        g_string_append_len(conn->buf, chunk, got);
    }
}

static qemuCapsReadResult
qemuCapsProbeWrite(qemuCapsProbeConn *conn, const char *msg)
{
    size_t len = strlen(msg);
    size_t done = 0;

    while (done < len) {
        ssize_t sent = send(conn->fd, msg + done, len - done, MSG_NOSIGNAL);
        int rc;

        if (sent >= 0) {
            done += sent;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET)
            return QEMU_CAPS_READ_EOF;
        if (errno != EAGAIN) {
            virReportSystemError(errno, "%s",
                                 _("cannot write to the QEMU monitor socket"));
            return QEMU_CAPS_READ_ERROR;
        }
        if ((rc = qemuCapsProbeWait(conn, POLLOUT, conn->deadline)) < 0)
            return QEMU_CAPS_READ_ERROR;
        if (rc == 0)
            return QEMU_CAPS_READ_TIMEOUT;
    }
    return QEMU_CAPS_READ_OK;
}

/* Read messages until one that has @key (and, when @id is given, that id),
 * skipping asynchronous events. A message that is not a JSON object is
 * reported as garbage. */
static qemuCapsReadResult
qemuCapsProbeReadMessage(qemuCapsProbeConn *conn,
                         const char *what,
                         const char *id,
                         char **reply)
{
    for (;;) {
        g_autofree char *line = NULL;
        yajl_val root;
        char errbuf[256] = "";
        bool wanted = false;
        qemuCapsReadResult rc;

        if ((rc = qemuCapsProbeReadLine(conn, conn->deadline, &line)) != QEMU_CAPS_READ_OK)
            return rc;
        if (!*line)
            continue;

        if (!(root = yajl_tree_parse(line, errbuf, sizeof(errbuf))) ||
            !YAJL_IS_OBJECT(root)) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("QEMU binary '%s' sent garbage instead of the reply to '%s': '%.200s'"),
                           conn->binary, what, line);
            yajl_tree_free(root);
            return QEMU_CAPS_READ_ERROR;
        }

        if (id) {
            const char *idpath[] = { "id", NULL };
            yajl_val idval = yajl_tree_get(root, idpath, yajl_t_string);

            wanted = idval && STREQ_NULLABLE(YAJL_GET_STRING(idval), id);
        } else {
            const char *qmppath[] = { "QMP", NULL };

            wanted = yajl_tree_get(root, qmppath, yajl_t_object) != NULL;
        }
        yajl_tree_free(root);

        if (wanted) {
            *reply = g_steal_pointer(&line);
            return QEMU_CAPS_READ_OK;
        }
        VIR_DEBUG("skipping QMP message while waiting for '%s': %s", what, line);
    }
}

/* The last lines of QEMU's output, for error messages. */
static char *
qemuCapsProbeLogTail(const char *logpath)
{
    g_autofree char *data = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GString) tail = g_string_new(NULL);
    size_t nlines;
    size_t i;

    if (!g_file_get_contents(logpath, &data, NULL, NULL))
        return g_strdup("");
    g_strstrip(data);
    lines = g_strsplit(data, "\n", -1);
    nlines = g_strv_length(lines);
    for (i = nlines > QEMU_CAPS_LOG_TAIL_LINES ? nlines - QEMU_CAPS_LOG_TAIL_LINES : 0;
         i < nlines; i++) {
        if (tail->len)
            g_string_append(tail, " | ");
        g_string_append(tail, g_strstrip(lines[i]));
    }
    return g_string_free(g_steal_pointer(&tail), FALSE);
}

/* Has @pid exited? Does not reap it (virCommandWait does). */
static bool
qemuCapsProbeHasExited(pid_t pid)
{
    siginfo_t info = { 0 };

    if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno == ECHILD;
    return info.si_pid == pid;
}

/* Wait up to @ms for the child to exit, then reap it; kill it if it does
 * not go. Fills @status (-1 when it had to be killed). Never reports. */
static void
qemuCapsProbeReap(virCommand *cmd, pid_t pid, int ms, int *status)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;
    virErrorPtr saved = NULL;
    int st = -1;

    virErrorPreserveLast(&saved);
    while (!qemuCapsProbeHasExited(pid) &&
           g_get_monotonic_time() < deadline)
        g_usleep(10 * 1000);

    if (qemuCapsProbeHasExited(pid)) {
        if (virCommandWait(cmd, &st) < 0)
            st = -1;
    } else {
        VIR_WARN("QEMU binary probe (pid %lld) did not exit, killing it",
                 (long long)pid);
        virCommandAbort(cmd);
    }
    if (status)
        *status = st;
    virErrorRestore(&saved);
}

static void
qemuCapsProbeReportFailure(qemuCapsProbeConn *conn,
                           qemuCapsReadResult rc,
                           const char *what,
                           virCommand *cmd,
                           pid_t pid,
                           const char *logpath)
{
    g_autofree char *tail = NULL;
    int status = -1;

    if (rc == QEMU_CAPS_READ_ERROR)
        return;

    if (rc == QEMU_CAPS_READ_TIMEOUT) {
        virReportError(VIR_ERR_OPERATION_TIMEOUT,
                       _("QEMU binary '%s' did not answer '%s' within %d ms"),
                       conn->binary, what, g_atomic_int_get(&qemuCapsProbeTimeoutMs));
        return;
    }

    /* EOF: QEMU went away. Give it a moment to exit so we can tell how. */
    qemuCapsProbeReap(cmd, pid, 1000, &status);
    tail = qemuCapsProbeLogTail(logpath);
    if (status >= 0 && WIFEXITED(status)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' exited with status %d while probing its capabilities (at '%s'): %s"),
                       conn->binary, WEXITSTATUS(status), what,
                       *tail ? tail : _("no output"));
    } else if (status >= 0 && WIFSIGNALED(status)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' was killed by signal %d while probing its capabilities (at '%s'): %s"),
                       conn->binary, WTERMSIG(status), what,
                       *tail ? tail : _("no output"));
    } else {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' closed its monitor while probing its capabilities (at '%s'): %s"),
                       conn->binary, what, *tail ? tail : _("no output"));
    }
}

void
qemuCapsSetProbeTimeout(unsigned int ms)
{
    g_atomic_int_set(&qemuCapsProbeTimeoutMs,
                     ms ? MIN(ms, G_MAXINT / 1000) : QEMU_CAPS_PROBE_TIMEOUT_MS);
}

static int
qemuCapsProbeCheckBinary(const char *binary)
{
    struct stat sb;

    if (!binary || !g_path_is_absolute(binary)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("QEMU binary path must be absolute: '%s'"),
                       NULLSTR(binary));
        return -1;
    }
    if (stat(binary, &sb) < 0) {
        virReportSystemError(errno, _("cannot find QEMU binary '%s'"), binary);
        return -1;
    }
    if (!S_ISREG(sb.st_mode) || !virFileIsExecutable(binary)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' is not an executable file"), binary);
        return -1;
    }
    return 0;
}

static void
qemuCapsCloseFD(int *fd)
{
    if (*fd >= 0) {
        VIR_FORCE_CLOSE(*fd);
    }
}

GHashTable *
qemuCapsProbeReplies(const char *binary, const char *tmpDir)
{
    return qemuCapsProbeRepliesAs(binary, tmpDir, (uid_t) -1, (gid_t) -1);
}

GHashTable *
qemuCapsProbeRepliesAs(const char *binary, const char *tmpDir,
                       uid_t uid, gid_t gid)
{
    g_autoptr(GHashTable) replies = NULL;
    g_autoptr(virCommand) cmd = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *logpath = NULL;
    qemuCapsProbeConn conn = { .binary = binary, .fd = -1 };
    const char *what = "QMP greeting";
    qemuCapsReadResult rc;
    int pair[2] = { -1, -1 };
    int logfd = -1;
    pid_t pid = -1;
    bool started = false;
    GHashTable *ret = NULL;
    size_t i;

    if (qemuCapsProbeCheckBinary(binary) < 0)
        return NULL;

    if (g_mkdir_with_parents(tmpDir, 0700) < 0) {
        virReportSystemError(errno, _("cannot create directory '%s'"), tmpDir);
        return NULL;
    }
    dir = g_build_filename(tmpDir, "qemu-caps-XXXXXX", NULL);
    if (!g_mkdtemp(dir)) {
        virReportSystemError(errno, _("cannot create a temporary directory in '%s'"),
                             tmpDir);
        return NULL;
    }
    logpath = g_build_filename(dir, "qemu.log", NULL);

    if ((logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        virReportSystemError(errno, _("cannot create '%s'"), logpath);
        goto cleanup;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        virReportSystemError(errno, "%s",
                             _("cannot create a socket pair for the QEMU monitor"));
        goto cleanup;
    }
    if (virSetNonBlock(pair[0]) < 0) {
        virReportSystemError(errno, "%s",
                             _("cannot make the QEMU monitor socket non-blocking"));
        goto cleanup;
    }

    /* accel=kvm:tcg: QEMU falls back to TCG by itself when KVM is missing
     * or broken, and query-kvm then tells us which one it got. */
    cmd = virCommandNewArgList(binary,
                               "-S", "-no-user-config", "-nodefaults",
                               "-display", "none",
                               "-machine", "none,accel=kvm:tcg",
                               NULL);
    virCommandAddArg(cmd, "-chardev");
    virCommandAddArgFormat(cmd, "socket,id=tandemcaps,fd=%d", pair[1]);
    virCommandAddArgList(cmd, "-mon", "chardev=tandemcaps,mode=control", NULL);
    virCommandPassFD(cmd, pair[1], VIR_COMMAND_PASS_FD_CLOSE_PARENT);
    pair[1] = -1;
    virCommandSetOutputFD(cmd, &logfd);
    virCommandSetErrorFD(cmd, &logfd);
    virCommandAddEnvPassCommon(cmd);
    /* QEMU runs as the user it will run guests as: whether KVM is usable
     * is that user's answer (query-kvm says disabled when it cannot open
     * /dev/kvm, QEMU falling back to TCG).  It needs no file of the probe
     * directory (monitor and log are passed as fds), which that user may
     * not reach: it works in / then. */
    if (uid != (uid_t) -1 || gid != (gid_t) -1)
        virCommandSetWorkingDirectory(cmd, "/");
    else
        virCommandSetWorkingDirectory(cmd, dir);
    virCommandClearCaps(cmd);
    if (uid != (uid_t) -1)
        virCommandSetUID(cmd, uid);
    if (gid != (gid_t) -1)
        virCommandSetGID(cmd, gid);
    virCommandRawStatus(cmd);   /* we want to tell exits from signals */

    conn.fd = pair[0];
    conn.buf = g_string_new(NULL);
    conn.deadline = g_get_monotonic_time() +
        (gint64)g_atomic_int_get(&qemuCapsProbeTimeoutMs) * 1000;

    VIR_DEBUG("probing QEMU binary '%s' in '%s'", binary, dir);
    if (virCommandRunAsync(cmd, &pid) < 0)
        goto cleanup;
    started = true;
    VIR_FORCE_CLOSE(logfd);

    {
        g_autofree char *greeting = NULL;

        if ((rc = qemuCapsProbeReadMessage(&conn, what, NULL, &greeting)) != QEMU_CAPS_READ_OK)
            goto fail;
    }

    replies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (i = 0; i <= G_N_ELEMENTS(qemuCapsProbeCommands); i++) {
        const char *name;
        const char *arguments = NULL;
        g_autofree char *id = NULL;
        g_autofree char *msg = NULL;
        g_autofree char *reply = NULL;

        if (i == 0) {
            name = "qmp_capabilities";
        } else {
            name = qemuCapsProbeCommands[i - 1].name;
            arguments = qemuCapsProbeCommands[i - 1].arguments;
        }
        what = name;
        id = g_strdup_printf("tandem-caps-%zu", i);
        if (arguments)
            msg = g_strdup_printf("{\"execute\": \"%s\", \"arguments\": %s, \"id\": \"%s\"}\n",
                                  name, arguments, id);
        else
            msg = g_strdup_printf("{\"execute\": \"%s\", \"id\": \"%s\"}\n",
                                  name, id);

        if ((rc = qemuCapsProbeWrite(&conn, msg)) != QEMU_CAPS_READ_OK)
            goto fail;
        if ((rc = qemuCapsProbeReadMessage(&conn, name, id, &reply)) != QEMU_CAPS_READ_OK)
            goto fail;

        if (i == 0) {
            if (!strstr(reply, "\"return\"")) {
                virReportError(VIR_ERR_INTERNAL_ERROR,
                               _("QEMU binary '%s' refused qmp_capabilities: %s"),
                               binary, reply);
                goto cleanup;
            }
            continue;
        }
        g_hash_table_insert(replies, g_strdup(name), g_steal_pointer(&reply));
    }

    /* Done: ask it to quit and wait until it closes the socket. Failure
     * here is not a probe failure: qemuCapsProbeReap kills it if needed. */
    if (qemuCapsProbeWrite(&conn, "{\"execute\": \"quit\"}\n") == QEMU_CAPS_READ_OK) {
        gint64 quitDeadline = g_get_monotonic_time() +
            (gint64)QEMU_CAPS_QUIT_TIMEOUT_MS * 1000;
        g_autofree char *line = NULL;

        while (qemuCapsProbeReadLine(&conn, quitDeadline, &line) == QEMU_CAPS_READ_OK)
            g_clear_pointer(&line, g_free);
    }
    qemuCapsProbeReap(cmd, pid, QEMU_CAPS_QUIT_TIMEOUT_MS, NULL);
    started = false;

    VIR_DEBUG("probed QEMU binary '%s'", binary);
    ret = g_steal_pointer(&replies);
    goto cleanup;

 fail:
    qemuCapsProbeReportFailure(&conn, rc, what, cmd, pid, logpath);

 cleanup:
    if (started) {
        virErrorPtr saved = NULL;

        virErrorPreserveLast(&saved);
        virCommandAbort(cmd);
        virErrorRestore(&saved);
    }
    qemuCapsCloseFD(&pair[0]);
    qemuCapsCloseFD(&pair[1]);
    qemuCapsCloseFD(&logfd);
    if (conn.buf)
        g_string_free(conn.buf, TRUE);
    unlink(logpath);
    if (rmdir(dir) < 0)
        VIR_WARN("cannot remove '%s': %s", dir, g_strerror(errno));
    return ret;
}


/* ------------------------------------------------------------------------
 * The parser: replies -> qemuCaps
 * ------------------------------------------------------------------------ */

typedef struct _qemuCapsParser qemuCapsParser;
struct _qemuCapsParser {
    const char *binary;
    GHashTable *replies;
    GPtrArray *trees;   /* yajl_val roots to free */
};

static void
qemuCapsTreeFree(gpointer tree)
{
    yajl_tree_free(tree);
}

/* The "return" member of the reply to @command. When @optional, a missing
 * or error reply yields NULL without an error; otherwise it is reported.
 * Returns -1 on error, 0 otherwise (with *ret possibly NULL). */
static int
qemuCapsParserGetReturn(qemuCapsParser *p,
                        const char *command,
                        bool optional,
                        yajl_type type,
                        yajl_val *ret)
{
    const char *retpath[] = { "return", NULL };
    const char *descpath[] = { "error", "desc", NULL };
    const char *text = g_hash_table_lookup(p->replies, command);
    char errbuf[256] = "";
    yajl_val root;
    yajl_val val;
    yajl_val desc;

    *ret = NULL;
    if (!text) {
        if (optional)
            return 0;
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("no reply to '%s' from QEMU binary '%s'"),
                       command, p->binary);
        return -1;
    }

    if (!(root = yajl_tree_parse(text, errbuf, sizeof(errbuf))) ||
        !YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("malformed reply to '%s' from QEMU binary '%s': %s"),
                       command, p->binary, *errbuf ? errbuf : _("not a JSON object"));
        return -1;
    }
    g_ptr_array_add(p->trees, root);

    if ((desc = yajl_tree_get(root, descpath, yajl_t_string))) {
        if (optional) {
            VIR_DEBUG("QEMU binary '%s' does not support '%s': %s",
                      p->binary, command, YAJL_GET_STRING(desc));
            return 0;
        }
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' failed '%s': %s"),
                       p->binary, command, YAJL_GET_STRING(desc));
        return -1;
    }

    if (!(val = yajl_tree_get(root, retpath, type))) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("malformed reply to '%s' from QEMU binary '%s': no 'return' of the expected type"),
                       command, p->binary);
        return -1;
    }
    *ret = val;
    return 0;
}

static yajl_val
qemuCapsObjectGet(yajl_val obj, const char *key, yajl_type type)
{
    const char *path[] = { key, NULL };

    return yajl_tree_get(obj, path, type);
}

static const char *
qemuCapsObjectGetString(yajl_val obj, const char *key)
{
    yajl_val v = qemuCapsObjectGet(obj, key, yajl_t_string);

    return v ? YAJL_GET_STRING(v) : NULL;
}

static bool
qemuCapsObjectGetBool(yajl_val obj, const char *key)
{
    yajl_val v = qemuCapsObjectGet(obj, key, yajl_t_any);

    return v && YAJL_IS_TRUE(v);
}

static int
qemuCapsObjectGetUInt(yajl_val obj, const char *key, unsigned int *out)
{
    yajl_val v = qemuCapsObjectGet(obj, key, yajl_t_number);
    long long n;

    if (!v || !YAJL_IS_INTEGER(v))
        return -1;
    n = YAJL_GET_INTEGER(v);
    if (n < 0 || n > UINT_MAX)
        return -1;
    *out = n;
    return 0;
}

/* QEMU's target names where they differ from libvirt's. */
static virArch
qemuCapsArchFromString(const char *arch)
{
    if (STREQ(arch, "i386"))
        return VIR_ARCH_I686;
    if (STREQ(arch, "arm"))
        return VIR_ARCH_ARMV7L;
    if (STREQ(arch, "or1k"))
        return VIR_ARCH_OR32;
    return virArchFromString(arch);
}

static int
qemuCapsParseVersion(qemuCapsParser *p, qemuCaps *caps)
{
    const char *majpath[] = { "qemu", "major", NULL };
    const char *minpath[] = { "qemu", "minor", NULL };
    const char *micpath[] = { "qemu", "micro", NULL };
    yajl_val ret;
    yajl_val major;
    yajl_val minor;
    yajl_val micro;
    const char *package;

    if (qemuCapsParserGetReturn(p, "query-version", false, yajl_t_object, &ret) < 0)
        return -1;

    major = yajl_tree_get(ret, majpath, yajl_t_number);
    minor = yajl_tree_get(ret, minpath, yajl_t_number);
    micro = yajl_tree_get(ret, micpath, yajl_t_number);
    if (!major || !minor || !micro ||
        !YAJL_IS_INTEGER(major) || !YAJL_IS_INTEGER(minor) || !YAJL_IS_INTEGER(micro) ||
        YAJL_GET_INTEGER(major) < 0 || YAJL_GET_INTEGER(major) > 4000 ||
        YAJL_GET_INTEGER(minor) < 0 || YAJL_GET_INTEGER(minor) > 999 ||
        YAJL_GET_INTEGER(micro) < 0 || YAJL_GET_INTEGER(micro) > 999) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("malformed reply to 'query-version' from QEMU binary '%s'"),
                       p->binary);
        return -1;
    }
    caps->version = YAJL_GET_INTEGER(major) * 1000000 +
                    YAJL_GET_INTEGER(minor) * 1000 +
                    YAJL_GET_INTEGER(micro);

    if ((package = qemuCapsObjectGetString(ret, "package")) && *package)
        caps->package = g_strstrip(g_strdup(package));
    return 0;
}

static int
qemuCapsParseTarget(qemuCapsParser *p, qemuCaps *caps)
{
    yajl_val ret;
    const char *arch;

    if (qemuCapsParserGetReturn(p, "query-target", false, yajl_t_object, &ret) < 0)
        return -1;
    if (!(arch = qemuCapsObjectGetString(ret, "arch"))) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("malformed reply to 'query-target' from QEMU binary '%s'"),
                       p->binary);
        return -1;
    }
    if ((caps->arch = qemuCapsArchFromString(arch)) == VIR_ARCH_NONE) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' emulates an unknown architecture '%s'"),
                       p->binary, arch);
        return -1;
    }
    return 0;
}

static int
qemuCapsParseKVM(qemuCapsParser *p, qemuCaps *caps)
{
    yajl_val ret;

    if (qemuCapsParserGetReturn(p, "query-kvm", true, yajl_t_object, &ret) < 0)
        return -1;
    caps->kvmAvailable = ret &&
                         qemuCapsObjectGetBool(ret, "enabled") &&
                         qemuCapsObjectGetBool(ret, "present");
    return 0;
}

static int
qemuCapsParseMachines(qemuCapsParser *p, qemuCaps *caps)
{
    yajl_val ret;
    size_t n;
    size_t i;
    size_t pass;

    if (qemuCapsParserGetReturn(p, "query-machines", false, yajl_t_array, &ret) < 0)
        return -1;

    n = YAJL_GET_ARRAY(ret)->len;
    caps->machines = g_new0(qemuCapsMachine, n);
    caps->nmachines = 0;

    /* The default machine first, then the others in QEMU's order. */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i++) {
            yajl_val m = YAJL_GET_ARRAY(ret)->values[i];
            qemuCapsMachine *machine;
            const char *name;
            const char *alias;
            bool isDefault;

            if (!YAJL_IS_OBJECT(m) ||
                !(name = qemuCapsObjectGetString(m, "name"))) {
                virReportError(VIR_ERR_INTERNAL_ERROR,
                               _("malformed reply to 'query-machines' from QEMU binary '%s'"),
                               p->binary);
                return -1;
            }
            isDefault = qemuCapsObjectGetBool(m, "is-default");
            if (isDefault != (pass == 0))
                continue;
            /* "none" is what we probed with; it cannot run a guest. */
            if (STREQ(name, "none"))
                continue;

            machine = &caps->machines[caps->nmachines++];
            machine->name = g_strdup(name);
            if ((alias = qemuCapsObjectGetString(m, "alias")) && *alias)
                machine->alias = g_strdup(alias);
            if (qemuCapsObjectGetUInt(m, "cpu-max", &machine->maxCpus) < 0)
                machine->maxCpus = 1;
            machine->isDefault = isDefault;
            machine->deprecated = qemuCapsObjectGetBool(m, "deprecated");
        }
    }

    if (caps->nmachines == 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU binary '%s' reports no machine types"),
                       p->binary);
        return -1;
    }
    return 0;
}

static int
qemuCapsParseCPUDefinitions(qemuCapsParser *p, qemuCaps *caps)
{
    yajl_val ret;
    size_t n;
    size_t i;

    if (qemuCapsParserGetReturn(p, "query-cpu-definitions", true, yajl_t_array, &ret) < 0)
        return -1;

    n = ret ? YAJL_GET_ARRAY(ret)->len : 0;
    caps->cpuModels = g_new0(char *, n + 1);
    caps->cpuModelInfo = g_new0(qemuCapsCPUModel, n);
    for (i = 0; i < n; i++) {
        yajl_val def = YAJL_GET_ARRAY(ret)->values[i];
        qemuCapsCPUModel *model = &caps->cpuModelInfo[caps->ncpuModelInfo];
        yajl_val unavailable;
        const char *name;

        if (!YAJL_IS_OBJECT(def) ||
            !(name = qemuCapsObjectGetString(def, "name"))) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("malformed reply to 'query-cpu-definitions' from QEMU binary '%s'"),
                           p->binary);
            return -1;
        }
        model->name = g_strdup(name);
        model->deprecated = qemuCapsObjectGetBool(def, "deprecated");
        unavailable = qemuCapsObjectGet(def, "unavailable-features", yajl_t_array);
        if (!unavailable)
            model->usable = VIR_DOMCAPS_CPU_USABLE_UNKNOWN;
        else if (YAJL_GET_ARRAY(unavailable)->len == 0)
            model->usable = VIR_DOMCAPS_CPU_USABLE_YES;
        else
            model->usable = VIR_DOMCAPS_CPU_USABLE_NO;
        caps->cpuModels[caps->ncpuModelInfo++] = g_strdup(name);
    }
    return 0;
}

/* A NULL-terminated list of the "name" members of an array of objects. */
static int
qemuCapsParseNameList(qemuCapsParser *p, const char *command, char ***list)
{
    yajl_val ret;
    size_t n;
    size_t i;
    size_t j = 0;

    if (qemuCapsParserGetReturn(p, command, false, yajl_t_array, &ret) < 0)
        return -1;

    n = YAJL_GET_ARRAY(ret)->len;
    *list = g_new0(char *, n + 1);
    for (i = 0; i < n; i++) {
        yajl_val item = YAJL_GET_ARRAY(ret)->values[i];
        const char *name;

        if (!YAJL_IS_OBJECT(item) ||
            !(name = qemuCapsObjectGetString(item, "name"))) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("malformed reply to '%s' from QEMU binary '%s'"),
                           command, p->binary);
            return -1;
        }
        (*list)[j++] = g_strdup(name);
    }
    return 0;
}

static qemuCaps *
qemuCapsNew(const char *binary)
{
    qemuCaps *caps;

    if (qemuCapsInitialize() < 0)
        return NULL;
    if (!(caps = virObjectNew(qemuCapsClass)))
        return NULL;
    caps->binary = g_strdup(binary);
    return caps;
}

qemuCaps *
qemuCapsNewFromReplies(const char *binary, GHashTable *replies)
{
    g_autoptr(qemuCaps) caps = NULL;
    g_autoptr(GPtrArray) trees = g_ptr_array_new_with_free_func(qemuCapsTreeFree);
    qemuCapsParser p = { .binary = binary, .replies = replies, .trees = trees };

    if (!(caps = qemuCapsNew(binary)))
        return NULL;

    if (qemuCapsParseVersion(&p, caps) < 0 ||
        qemuCapsParseTarget(&p, caps) < 0 ||
        qemuCapsParseKVM(&p, caps) < 0 ||
        qemuCapsParseMachines(&p, caps) < 0 ||
        qemuCapsParseCPUDefinitions(&p, caps) < 0 ||
        qemuCapsParseNameList(&p, "qom-list-types", &caps->devices) < 0 ||
        qemuCapsParseNameList(&p, "query-commands", &caps->commands) < 0)
        return NULL;

    return g_steal_pointer(&caps);
}

static int
qemuCapsStatBinary(const char *binary, long long *mtime, long long *size)
{
    struct stat sb;

    if (stat(binary, &sb) < 0) {
        virReportSystemError(errno, _("cannot find QEMU binary '%s'"), binary);
        return -1;
    }
    *mtime = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    *size = sb.st_size;
    return 0;
}

qemuCaps *
qemuCapsProbe(const char *binary, const char *tmpDir)
{
    g_autoptr(GHashTable) replies = NULL;
    qemuCaps *caps;
    long long mtime;
    long long size;

    if (qemuCapsStatBinary(binary, &mtime, &size) < 0)
        return NULL;
    if (!(replies = qemuCapsProbeReplies(binary, tmpDir)))
        return NULL;
    if (!(caps = qemuCapsNewFromReplies(binary, replies)))
        return NULL;
    caps->mtime = mtime;
    caps->size = size;
    return caps;
}


/* ------------------------------------------------------------------------
 * The cache
 * ------------------------------------------------------------------------ */

/* What else, besides the binary, a probe result depends on: whether and
 * how /dev/kvm is there, and the user the probe ran as. */
static char *
qemuCapsCacheHostKey(uid_t uid, gid_t gid)
{
    struct stat sb;

    if (stat("/dev/kvm", &sb) < 0)
        return g_strdup_printf("kvm:none as:%d:%d", (int) uid, (int) gid);
    return g_strdup_printf("kvm:%llu:%o:%lld.%09ld as:%d:%d",
                           (unsigned long long)sb.st_rdev,
                           (unsigned int)sb.st_mode,
                           (long long)sb.st_ctim.tv_sec, (long)sb.st_ctim.tv_nsec,
                           (int) uid, (int) gid);
}

static char *
qemuCapsCacheFile(const char *cacheDir, const char *binary)
{
    g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
                                                         binary, -1);
    g_autofree char *name = g_strdup_printf("%s.json", sum);

    return g_build_filename(cacheDir, "capabilities", name, NULL);
}

typedef struct _qemuCapsCacheKey qemuCapsCacheKey;
struct _qemuCapsCacheKey {
    const char *binary;
    long long mtime;
    long long size;
    const char *host;
};

static void
qemuCapsGenString(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static char *
qemuCapsCacheFormat(const qemuCapsCacheKey *key, GHashTable *replies)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    g_autofree char *format = NULL;
    const unsigned char *buf;
    size_t len;
    char *ret = NULL;
    size_t i;

    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    qemuCapsGenString(g, "format");
    yajl_gen_integer(g, QEMU_CAPS_CACHE_FORMAT);
    qemuCapsGenString(g, "tandem");
    qemuCapsGenString(g, PACKAGE_VERSION);
    qemuCapsGenString(g, "libvirt");
    qemuCapsGenString(g, TANDEM_LIBVIRT_VERSION);
    qemuCapsGenString(g, "binary");
    qemuCapsGenString(g, key->binary);
    qemuCapsGenString(g, "mtime");
    yajl_gen_integer(g, key->mtime);
    qemuCapsGenString(g, "size");
    yajl_gen_integer(g, key->size);
    qemuCapsGenString(g, "host");
    qemuCapsGenString(g, key->host);
    qemuCapsGenString(g, "probed");
    yajl_gen_integer(g, g_get_real_time() / G_USEC_PER_SEC);
    qemuCapsGenString(g, "replies");
    yajl_gen_map_open(g);
    for (i = 0; i < G_N_ELEMENTS(qemuCapsProbeCommands); i++) {
        const char *name = qemuCapsProbeCommands[i].name;
        const char *reply = g_hash_table_lookup(replies, name);

        if (!reply)
            continue;
        qemuCapsGenString(g, name);
        qemuCapsGenString(g, reply);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
        ret = g_strndup((const char *)buf, len);
    yajl_gen_free(g);
    return ret;
}

static void
qemuCapsCacheSave(const char *path, const qemuCapsCacheKey *key, GHashTable *replies)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *data = NULL;
    g_autoptr(GError) err = NULL;

    if (g_mkdir_with_parents(dir, 0700) < 0) {
        VIR_WARN("cannot create capabilities cache directory '%s': %s",
                 dir, g_strerror(errno));
        return;
    }
    if (!(data = qemuCapsCacheFormat(key, replies))) {
        VIR_WARN("cannot format capabilities cache for '%s'", key->binary);
        return;
    }
    /* temp file + fsync + rename: readers see the old or the new file */
    if (!g_file_set_contents_full(path, data, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600, &err)) {
        VIR_WARN("cannot write capabilities cache '%s': %s", path, err->message);
        return;
    }
    VIR_DEBUG("saved capabilities of '%s' to '%s'", key->binary, path);
}

/* Returns the replies stored in @path when they are valid for @key, NULL
 * otherwise (a missing, stale or corrupt file; never reported). */
static GHashTable *
qemuCapsCacheLoad(const char *path, const qemuCapsCacheKey *key)
{
    const char *replpath[] = { "replies", NULL };
    g_autofree char *data = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GHashTable) replies = NULL;
    char errbuf[256] = "";
    yajl_val root = NULL;
    yajl_val v;
    yajl_val map;
    GHashTable *ret = NULL;
    size_t i;

    if (!g_file_get_contents(path, &data, NULL, &err)) {
        if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            VIR_WARN("cannot read capabilities cache '%s': %s", path, err->message);
        return NULL;
    }

    if (!(root = yajl_tree_parse(data, errbuf, sizeof(errbuf))) ||
        !YAJL_IS_OBJECT(root)) {
        g_strdelimit(errbuf, "\r\n", ' ');
        VIR_WARN("ignoring corrupt capabilities cache '%s': %s", path,
                 *errbuf ? errbuf : "not a JSON object");
        goto cleanup;
    }

#define QEMU_CAPS_CACHE_MISMATCH(what) \
    do { \
        VIR_DEBUG("capabilities cache '%s' is stale (%s)", path, what); \
        goto cleanup; \
    } while (0)

    if (!(v = qemuCapsObjectGet(root, "format", yajl_t_number)) ||
        !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != QEMU_CAPS_CACHE_FORMAT)
        QEMU_CAPS_CACHE_MISMATCH("format");
    if (STRNEQ_NULLABLE(qemuCapsObjectGetString(root, "tandem"), PACKAGE_VERSION))
        QEMU_CAPS_CACHE_MISMATCH("tandem version");
    if (STRNEQ_NULLABLE(qemuCapsObjectGetString(root, "libvirt"), TANDEM_LIBVIRT_VERSION))
        QEMU_CAPS_CACHE_MISMATCH("libvirt version");
    if (STRNEQ_NULLABLE(qemuCapsObjectGetString(root, "binary"), key->binary))
        QEMU_CAPS_CACHE_MISMATCH("binary");
    if (!(v = qemuCapsObjectGet(root, "mtime", yajl_t_number)) ||
        !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != key->mtime)
        QEMU_CAPS_CACHE_MISMATCH("mtime");
    if (!(v = qemuCapsObjectGet(root, "size", yajl_t_number)) ||
        !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != key->size)
        QEMU_CAPS_CACHE_MISMATCH("size");
    if (STRNEQ_NULLABLE(qemuCapsObjectGetString(root, "host"), key->host))
        QEMU_CAPS_CACHE_MISMATCH("/dev/kvm");

#undef QEMU_CAPS_CACHE_MISMATCH

    if (!(map = yajl_tree_get(root, replpath, yajl_t_object))) {
        VIR_WARN("ignoring corrupt capabilities cache '%s': no replies", path);
        goto cleanup;
    }
    replies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (i = 0; i < YAJL_GET_OBJECT(map)->len; i++) {
        yajl_val reply = YAJL_GET_OBJECT(map)->values[i];

        if (!YAJL_IS_STRING(reply)) {
            VIR_WARN("ignoring corrupt capabilities cache '%s': bad reply", path);
            goto cleanup;
        }
        g_hash_table_insert(replies, g_strdup(YAJL_GET_OBJECT(map)->keys[i]),
                            g_strdup(YAJL_GET_STRING(reply)));
    }
    ret = g_steal_pointer(&replies);

 cleanup:
    yajl_tree_free(root);
    return ret;
}


/* In-memory cache: "cacheDir\nbinary" -> entry. */
typedef struct _qemuCapsCacheEntry qemuCapsCacheEntry;
struct _qemuCapsCacheEntry {
    qemuCaps *caps;     /* a reference; mtime and size are the key */
    char *host;
};

static virMutex qemuCapsCacheLock = VIR_MUTEX_INITIALIZER;
static GHashTable *qemuCapsCacheTable;   /* protected by qemuCapsCacheLock */

static void
qemuCapsCacheEntryFree(gpointer opaque)
{
    qemuCapsCacheEntry *entry = opaque;

    virObjectUnref(entry->caps);
    g_free(entry->host);
    g_free(entry);
}

void
qemuCapsCacheFlush(void)
{
    virMutexLock(&qemuCapsCacheLock);
    g_clear_pointer(&qemuCapsCacheTable, g_hash_table_unref);
    virMutexUnlock(&qemuCapsCacheLock);
}

qemuCaps *
qemuCapsCacheLookup(const char *cacheDir, const char *binary,
                    const char *tmpDir, uid_t uid, gid_t gid)
{
    g_autofree char *memkey = NULL;
    g_autofree char *host = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GHashTable) replies = NULL;
    qemuCapsCacheKey key = { .binary = binary };
    qemuCapsCacheEntry *entry;
    qemuCaps *caps = NULL;

    if (qemuCapsProbeCheckBinary(binary) < 0 ||
        qemuCapsStatBinary(binary, &key.mtime, &key.size) < 0)
        return NULL;
    host = qemuCapsCacheHostKey(uid, gid);
    key.host = host;
    memkey = g_strdup_printf("%s\n%s", cacheDir, binary);

    virMutexLock(&qemuCapsCacheLock);
    if (qemuCapsCacheTable &&
        (entry = g_hash_table_lookup(qemuCapsCacheTable, memkey)) &&
        entry->caps->mtime == key.mtime &&
        entry->caps->size == key.size &&
        STREQ(entry->host, host))
        caps = virObjectRef(entry->caps);
    virMutexUnlock(&qemuCapsCacheLock);
    if (caps)
        return caps;

    /* Not under the lock: a probe takes a while, and two threads probing
     * the same binary at once only cost one extra probe. */
    path = qemuCapsCacheFile(cacheDir, binary);
    if ((replies = qemuCapsCacheLoad(path, &key))) {
        if (!(caps = qemuCapsNewFromReplies(binary, replies))) {
            VIR_WARN("ignoring unusable capabilities cache '%s': %s",
                     path, virGetLastErrorMessage());
            virResetLastError();
        } else {
            VIR_DEBUG("capabilities of '%s' loaded from '%s'", binary, path);
        }
        g_clear_pointer(&replies, g_hash_table_unref);
    }

    if (!caps) {
        if (!(replies = qemuCapsProbeRepliesAs(binary, tmpDir, uid, gid)))
            return NULL;
        if (!(caps = qemuCapsNewFromReplies(binary, replies)))
            return NULL;
        qemuCapsCacheSave(path, &key, replies);
    }
    caps->mtime = key.mtime;
    caps->size = key.size;

    entry = g_new0(qemuCapsCacheEntry, 1);
    entry->caps = virObjectRef(caps);
    entry->host = g_steal_pointer(&host);
    virMutexLock(&qemuCapsCacheLock);
    if (!qemuCapsCacheTable)
        qemuCapsCacheTable = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                   g_free, qemuCapsCacheEntryFree);
    g_hash_table_insert(qemuCapsCacheTable, g_steal_pointer(&memkey), entry);
    virMutexUnlock(&qemuCapsCacheLock);

    return caps;
}


/* ------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------ */

bool
qemuCapsHasDevice(qemuCaps *caps, const char *type)
{
    return caps->devices && g_strv_contains((const char *const *)caps->devices, type);
}

bool
qemuCapsHasCommand(qemuCaps *caps, const char *name)
{
    return caps->commands && g_strv_contains((const char *const *)caps->commands, name);
}

bool
qemuCapsHasCPUModel(qemuCaps *caps, const char *name)
{
    return caps->cpuModels && g_strv_contains((const char *const *)caps->cpuModels, name);
}

const char *
qemuCapsGetDefaultMachine(qemuCaps *caps)
{
    size_t i;

    for (i = 0; i < caps->nmachines; i++) {
        if (caps->machines[i].isDefault)
            return caps->machines[i].name;
    }
    return caps->nmachines ? caps->machines[0].name : NULL;
}

static qemuCapsMachine *
qemuCapsFindMachine(qemuCaps *caps, const char *name)
{
    size_t i;

    if (!name)
        return NULL;
    for (i = 0; i < caps->nmachines; i++) {
        if (STREQ(caps->machines[i].name, name))
            return &caps->machines[i];
    }
    for (i = 0; i < caps->nmachines; i++) {
        if (STREQ_NULLABLE(caps->machines[i].alias, name))
            return &caps->machines[i];
    }
    return NULL;
}

const char *
qemuCapsGetCanonicalMachine(qemuCaps *caps, const char *name)
{
    qemuCapsMachine *machine = qemuCapsFindMachine(caps, name);

    return machine ? machine->name : NULL;
}


/* ------------------------------------------------------------------------
 * <capabilities>: the guests of this binary
 * ------------------------------------------------------------------------ */

static void
qemuCapsAddGuest(qemuCaps *qcaps, virCaps *caps, virArch arch)
{
    virCapsGuestMachine **machines = g_new0(virCapsGuestMachine *, qcaps->nmachines * 2);
    virCapsGuest *guest;
    size_t n = 0;
    size_t i;

    for (i = 0; i < qcaps->nmachines; i++) {
        qemuCapsMachine *m = &qcaps->machines[i];
        virCapsGuestMachine *gm = g_new0(virCapsGuestMachine, 1);

        gm->name = g_strdup(m->name);
        gm->maxCpus = m->maxCpus;
        gm->deprecated = m->deprecated;
        machines[n++] = gm;

        if (m->alias) {
            gm = g_new0(virCapsGuestMachine, 1);
            gm->name = g_strdup(m->alias);
            gm->canonical = g_strdup(m->name);
            gm->maxCpus = m->maxCpus;
            gm->deprecated = m->deprecated;
            machines[n++] = gm;
        }
    }

    /* takes ownership of the machines */
    guest = virCapabilitiesAddGuest(caps, VIR_DOMAIN_OSTYPE_HVM, arch,
                                    qcaps->binary, NULL, n, machines);
    if (n == 0)
        g_free(machines);

    virCapabilitiesAddGuestDomain(guest, VIR_DOMAIN_VIRT_QEMU, NULL, NULL, 0, NULL);
    if (qcaps->kvmAvailable)
        virCapabilitiesAddGuestDomain(guest, VIR_DOMAIN_VIRT_KVM, NULL, NULL, 0, NULL);

    if (arch == VIR_ARCH_I686) {
        virCapabilitiesAddGuestFeature(guest, VIR_CAPS_GUEST_FEATURE_TYPE_PAE);
        virCapabilitiesAddGuestFeature(guest, VIR_CAPS_GUEST_FEATURE_TYPE_NONPAE);
    }
    if (ARCH_IS_X86(arch)) {
        virCapabilitiesAddGuestFeatureWithToggle(guest, VIR_CAPS_GUEST_FEATURE_TYPE_ACPI,
                                                 true, true);
        virCapabilitiesAddGuestFeatureWithToggle(guest, VIR_CAPS_GUEST_FEATURE_TYPE_APIC,
                                                 true, false);
    }
    virCapabilitiesAddGuestFeature(guest, VIR_CAPS_GUEST_FEATURE_TYPE_CPUSELECTION);
    virCapabilitiesAddGuestFeature(guest, VIR_CAPS_GUEST_FEATURE_TYPE_DEVICEBOOT);
    virCapabilitiesAddGuestFeatureWithToggle(guest, VIR_CAPS_GUEST_FEATURE_TYPE_DISKSNAPSHOT,
                                             true, false);
}

int
qemuCapsInitGuest(qemuCaps *qcaps, virCaps *caps)
{
    /* qemu-system-x86_64 runs 32-bit guests as well, as libvirt shows */
    if (qcaps->arch == VIR_ARCH_X86_64)
        qemuCapsAddGuest(qcaps, caps, VIR_ARCH_I686);
    qemuCapsAddGuest(qcaps, caps, qcaps->arch);
    return 0;
}


/* ------------------------------------------------------------------------
 * <domainCapabilities>
 * ------------------------------------------------------------------------ */

typedef enum {
    QEMU_CAPS_MACHINE_OTHER,
    QEMU_CAPS_MACHINE_I440FX,
    QEMU_CAPS_MACHINE_Q35,
    QEMU_CAPS_MACHINE_ISAPC,
    QEMU_CAPS_MACHINE_MICROVM,
} qemuCapsMachineFamily;

static qemuCapsMachineFamily
qemuCapsMachineGetFamily(virArch arch, const char *machine)
{
    if (!ARCH_IS_X86(arch) || !machine)
        return QEMU_CAPS_MACHINE_OTHER;
    if (STREQ(machine, "pc") || STRPREFIX(machine, "pc-i440fx-") ||
        STRPREFIX(machine, "pc-0.") || STRPREFIX(machine, "pc-1."))
        return QEMU_CAPS_MACHINE_I440FX;
    if (STREQ(machine, "q35") || STRPREFIX(machine, "pc-q35-"))
        return QEMU_CAPS_MACHINE_Q35;
    if (STREQ(machine, "isapc"))
        return QEMU_CAPS_MACHINE_ISAPC;
    if (STREQ(machine, "microvm"))
        return QEMU_CAPS_MACHINE_MICROVM;
    return QEMU_CAPS_MACHINE_OTHER;
}

/* Set values in an enum of <domainCapabilities> and have it reported. */
#define QEMU_CAPS_ENUM_SET(capsEnum, ...) \
    do { \
        (capsEnum).report = true; \
        VIR_DOMAIN_CAPS_ENUM_SET(capsEnum, __VA_ARGS__); \
    } while (0)

/* Where UEFI firmware for x86 guests is installed by the usual packages. */
static const char *const qemuCapsOVMFPaths[] = {
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/edk2/ovmf/OVMF_CODE.fd",
};

static void
qemuCapsFillOS(qemuCaps *qcaps, virDomainCaps *domCaps,
               qemuCapsMachineFamily family)
{
    virDomainCapsOS *os = &domCaps->os;
    virDomainCapsLoader *loader = &os->loader;
    g_autoptr(GPtrArray) ovmf = g_ptr_array_new();
    size_t i;

    os->supported = VIR_TRISTATE_BOOL_YES;
    os->firmware.report = true;
    loader->supported = VIR_TRISTATE_BOOL_YES;
    QEMU_CAPS_ENUM_SET(loader->type, VIR_DOMAIN_LOADER_TYPE_ROM);
    QEMU_CAPS_ENUM_SET(loader->readonly,
                             VIR_TRISTATE_BOOL_YES, VIR_TRISTATE_BOOL_NO);
    QEMU_CAPS_ENUM_SET(loader->secure, VIR_TRISTATE_BOOL_NO);

    if (!ARCH_IS_X86(qcaps->arch))
        return;
    if (family == QEMU_CAPS_MACHINE_I440FX || family == QEMU_CAPS_MACHINE_Q35 ||
        family == QEMU_CAPS_MACHINE_ISAPC)
        QEMU_CAPS_ENUM_SET(os->firmware, VIR_DOMAIN_OS_DEF_FIRMWARE_BIOS);

    if (family != QEMU_CAPS_MACHINE_I440FX && family != QEMU_CAPS_MACHINE_Q35)
        return;
    /* any firmware image the user brings */
    QEMU_CAPS_ENUM_SET(loader->type, VIR_DOMAIN_LOADER_TYPE_PFLASH);
    for (i = 0; i < G_N_ELEMENTS(qemuCapsOVMFPaths); i++) {
        if (virFileExists(qemuCapsOVMFPaths[i]))
            g_ptr_array_add(ovmf, (gpointer)qemuCapsOVMFPaths[i]);
    }
    if (ovmf->len == 0)
        return;

    QEMU_CAPS_ENUM_SET(os->firmware, VIR_DOMAIN_OS_DEF_FIRMWARE_EFI);
    loader->values.values = g_new0(char *, ovmf->len);
    for (i = 0; i < ovmf->len; i++)
        loader->values.values[loader->values.nvalues++] = g_strdup(ovmf->pdata[i]);
}

/* "Westmere-v2" style names are versions of the plain model names. */
static bool
qemuCapsCPUModelIsVersioned(const char *name)
{
    const char *v = strrchr(name, '-');

    if (!v || v[1] != 'v' || !g_ascii_isdigit(v[2]))
        return false;
    for (v += 2; *v; v++) {
        if (!g_ascii_isdigit(*v))
            return false;
    }
    return true;
}

static void
qemuCapsFillCPU(qemuCaps *qcaps, virDomainCaps *domCaps,
                virDomainVirtType virttype)
{
    virDomainCapsCPU *cpu = &domCaps->cpu;
    /* usability was probed with kvm when it was available, tcg otherwise */
    bool usableKnown = (virttype == VIR_DOMAIN_VIRT_KVM) == qcaps->kvmAvailable;
    size_t i;

    if (virttype == VIR_DOMAIN_VIRT_KVM && qcaps->kvmAvailable) {
        cpu->hostPassthrough = true;
        QEMU_CAPS_ENUM_SET(cpu->hostPassthroughMigratable,
                                 VIR_TRISTATE_SWITCH_ON, VIR_TRISTATE_SWITCH_OFF);
    }
    if (qemuCapsHasCPUModel(qcaps, "max")) {
        cpu->maximum = true;
        QEMU_CAPS_ENUM_SET(cpu->maximumMigratable,
                                 VIR_TRISTATE_SWITCH_ON, VIR_TRISTATE_SWITCH_OFF);
    }

    cpu->custom = virDomainCapsCPUModelsNew(qcaps->ncpuModelInfo);
    for (i = 0; i < qcaps->ncpuModelInfo; i++) {
        qemuCapsCPUModel *model = &qcaps->cpuModelInfo[i];

        if (STREQ(model->name, "host") || STREQ(model->name, "max") ||
            STREQ(model->name, "base") || qemuCapsCPUModelIsVersioned(model->name))
            continue;
        virDomainCapsCPUModelsAdd(cpu->custom, model->name,
                                  usableKnown ? model->usable : VIR_DOMCAPS_CPU_USABLE_UNKNOWN,
                                  NULL, model->deprecated, NULL);
    }
}

static void
qemuCapsFillDisk(qemuCaps *qcaps, virDomainCaps *domCaps,
                 qemuCapsMachineFamily family)
{
    virDomainCapsDeviceDisk *disk = &domCaps->disk;
    bool pc = family == QEMU_CAPS_MACHINE_I440FX || family == QEMU_CAPS_MACHINE_Q35;
    bool mmio = family == QEMU_CAPS_MACHINE_MICROVM;

    disk->supported = VIR_TRISTATE_BOOL_YES;
    QEMU_CAPS_ENUM_SET(disk->diskDevice,
                             VIR_DOMAIN_DISK_DEVICE_DISK,
                             VIR_DOMAIN_DISK_DEVICE_CDROM);
    if ((pc || family == QEMU_CAPS_MACHINE_ISAPC) &&
        qemuCapsHasDevice(qcaps, "floppy")) {
        QEMU_CAPS_ENUM_SET(disk->diskDevice, VIR_DOMAIN_DISK_DEVICE_FLOPPY);
    }

    disk->bus.report = true;
    if (family == QEMU_CAPS_MACHINE_I440FX || family == QEMU_CAPS_MACHINE_ISAPC)
        QEMU_CAPS_ENUM_SET(disk->bus, VIR_DOMAIN_DISK_BUS_IDE);
    if ((pc || family == QEMU_CAPS_MACHINE_ISAPC) && qemuCapsHasDevice(qcaps, "floppy"))
        QEMU_CAPS_ENUM_SET(disk->bus, VIR_DOMAIN_DISK_BUS_FDC);
    if ((!mmio && (qemuCapsHasDevice(qcaps, "virtio-scsi-pci") ||
                   qemuCapsHasDevice(qcaps, "lsi53c895a"))) ||
        (mmio && qemuCapsHasDevice(qcaps, "virtio-scsi-device")))
        QEMU_CAPS_ENUM_SET(disk->bus, VIR_DOMAIN_DISK_BUS_SCSI);
    if ((!mmio && qemuCapsHasDevice(qcaps, "virtio-blk-pci")) ||
        (mmio && qemuCapsHasDevice(qcaps, "virtio-blk-device")))
        QEMU_CAPS_ENUM_SET(disk->bus, VIR_DOMAIN_DISK_BUS_VIRTIO);
    if (!mmio && qemuCapsHasDevice(qcaps, "usb-storage"))
        QEMU_CAPS_ENUM_SET(disk->bus, VIR_DOMAIN_DISK_BUS_USB);
    if (family == QEMU_CAPS_MACHINE_Q35 ||
        (pc && qemuCapsHasDevice(qcaps, "ich9-ahci")))
        QEMU_CAPS_ENUM_SET(disk->bus, VIR_DOMAIN_DISK_BUS_SATA);

    disk->model.report = true;
    if (!mmio && qemuCapsHasDevice(qcaps, "virtio-blk-pci")) {
        QEMU_CAPS_ENUM_SET(disk->model, VIR_DOMAIN_DISK_MODEL_VIRTIO);
        if (qemuCapsHasDevice(qcaps, "virtio-blk-pci-transitional"))
            QEMU_CAPS_ENUM_SET(disk->model, VIR_DOMAIN_DISK_MODEL_VIRTIO_TRANSITIONAL);
        if (qemuCapsHasDevice(qcaps, "virtio-blk-pci-non-transitional"))
            QEMU_CAPS_ENUM_SET(disk->model, VIR_DOMAIN_DISK_MODEL_VIRTIO_NON_TRANSITIONAL);
    }
}

static void
qemuCapsFillDevices(qemuCaps *qcaps, virDomainCaps *domCaps,
                    qemuCapsMachineFamily family)
{
    bool mmio = family == QEMU_CAPS_MACHINE_MICROVM;

    qemuCapsFillDisk(qcaps, domCaps, family);

    domCaps->graphics.supported = VIR_TRISTATE_BOOL_YES;
    domCaps->graphics.type.report = true;
    if (qemuCapsHasCommand(qcaps, "query-vnc"))
        QEMU_CAPS_ENUM_SET(domCaps->graphics.type, VIR_DOMAIN_GRAPHICS_TYPE_VNC);
    if (qemuCapsHasCommand(qcaps, "query-spice"))
        QEMU_CAPS_ENUM_SET(domCaps->graphics.type, VIR_DOMAIN_GRAPHICS_TYPE_SPICE);
    if (!domCaps->graphics.type.values)
        domCaps->graphics.supported = VIR_TRISTATE_BOOL_NO;

    domCaps->video.supported = VIR_TRISTATE_BOOL_YES;
    domCaps->video.modelType.report = true;
    if (qemuCapsHasDevice(qcaps, "VGA"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_VGA);
    if (qemuCapsHasDevice(qcaps, "cirrus-vga"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_CIRRUS);
    if (qemuCapsHasDevice(qcaps, "vmware-svga"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_VMVGA);
    if (qemuCapsHasDevice(qcaps, "qxl-vga"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_QXL);
    if (qemuCapsHasDevice(qcaps, "virtio-vga") ||
        qemuCapsHasDevice(qcaps, "virtio-gpu-pci") ||
        qemuCapsHasDevice(qcaps, "virtio-gpu-device"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_VIRTIO);
    QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_NONE);
    if (qemuCapsHasDevice(qcaps, "bochs-display"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_BOCHS);
    if (qemuCapsHasDevice(qcaps, "ramfb"))
        QEMU_CAPS_ENUM_SET(domCaps->video.modelType, VIR_DOMAIN_VIDEO_TYPE_RAMFB);

    /* no host device assignment in Tandem */
    domCaps->hostdev.supported = VIR_TRISTATE_BOOL_NO;

    domCaps->rng.supported = VIR_TRISTATE_BOOL_NO;
    if ((!mmio && qemuCapsHasDevice(qcaps, "virtio-rng-pci")) ||
        (mmio && qemuCapsHasDevice(qcaps, "virtio-rng-device"))) {
        domCaps->rng.supported = VIR_TRISTATE_BOOL_YES;
        QEMU_CAPS_ENUM_SET(domCaps->rng.model, VIR_DOMAIN_RNG_MODEL_VIRTIO);
        if (!mmio && qemuCapsHasDevice(qcaps, "virtio-rng-pci-transitional"))
            QEMU_CAPS_ENUM_SET(domCaps->rng.model, VIR_DOMAIN_RNG_MODEL_VIRTIO_TRANSITIONAL);
        if (!mmio && qemuCapsHasDevice(qcaps, "virtio-rng-pci-non-transitional"))
            QEMU_CAPS_ENUM_SET(domCaps->rng.model, VIR_DOMAIN_RNG_MODEL_VIRTIO_NON_TRANSITIONAL);
        QEMU_CAPS_ENUM_SET(domCaps->rng.backendModel,
                                 VIR_DOMAIN_RNG_BACKEND_RANDOM,
                                 VIR_DOMAIN_RNG_BACKEND_EGD,
                                 VIR_DOMAIN_RNG_BACKEND_BUILTIN);
    }

    domCaps->filesystem.supported = VIR_TRISTATE_BOOL_NO;
    domCaps->tpm.supported = VIR_TRISTATE_BOOL_NO;
    domCaps->redirdev.supported = VIR_TRISTATE_BOOL_NO;

    domCaps->channel.supported = VIR_TRISTATE_BOOL_YES;
    QEMU_CAPS_ENUM_SET(domCaps->channel.type,
                             VIR_DOMAIN_CHR_TYPE_PTY, VIR_DOMAIN_CHR_TYPE_UNIX);
}

virDomainCaps *
qemuCapsGetDomainCaps(qemuCaps *qcaps, const char *machine,
                      virDomainVirtType virttype)
{
    g_autoptr(virDomainCaps) domCaps = NULL;
    qemuCapsMachine *m;
    qemuCapsMachineFamily family;
    virTristateBool yesno;

    if (!machine)
        machine = qemuCapsGetDefaultMachine(qcaps);
    if (!(m = qemuCapsFindMachine(qcaps, machine))) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("the machine '%s' is not supported by emulator '%s'"),
                       NULLSTR(machine), qcaps->binary);
        return NULL;
    }
    if (virttype == VIR_DOMAIN_VIRT_KVM && !qcaps->kvmAvailable) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("KVM is not available on this host"));
        return NULL;
    }
    family = qemuCapsMachineGetFamily(qcaps->arch, m->name);

    if (!(domCaps = virDomainCapsNew(qcaps->binary, m->name, qcaps->arch, virttype)))
        return NULL;

    domCaps->maxvcpus = m->maxCpus;
    domCaps->features[VIR_DOMAIN_CAPS_FEATURE_IOTHREADS] = VIR_TRISTATE_BOOL_YES;

    qemuCapsFillOS(qcaps, domCaps, family);
    qemuCapsFillCPU(qcaps, domCaps, virttype);

    domCaps->memoryBacking.supported = VIR_TRISTATE_BOOL_YES;
    QEMU_CAPS_ENUM_SET(domCaps->memoryBacking.sourceType,
                             VIR_DOMAIN_MEMORY_SOURCE_FILE,
                             VIR_DOMAIN_MEMORY_SOURCE_ANONYMOUS,
                             VIR_DOMAIN_MEMORY_SOURCE_MEMFD);

    qemuCapsFillDevices(qcaps, domCaps, family);

    if (ARCH_IS_X86(qcaps->arch))
        domCaps->gic.supported = VIR_TRISTATE_BOOL_NO;
    yesno = qemuCapsHasDevice(qcaps, "vmcoreinfo") ? VIR_TRISTATE_BOOL_YES : VIR_TRISTATE_BOOL_NO;
    domCaps->features[VIR_DOMAIN_CAPS_FEATURE_VMCOREINFO] = yesno;
    yesno = qemuCapsHasDevice(qcaps, "vmgenid") ? VIR_TRISTATE_BOOL_YES : VIR_TRISTATE_BOOL_NO;
    domCaps->features[VIR_DOMAIN_CAPS_FEATURE_GENID] = yesno;
    /* driver features Tandem does not offer (yet) */
    domCaps->features[VIR_DOMAIN_CAPS_FEATURE_BACKING_STORE_INPUT] = VIR_TRISTATE_BOOL_NO;
    domCaps->features[VIR_DOMAIN_CAPS_FEATURE_BACKUP] = VIR_TRISTATE_BOOL_NO;

    return g_steal_pointer(&domCaps);
}
