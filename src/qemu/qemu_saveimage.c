/*
 * qemu_saveimage.c: Tandem's save image format (header, domain XML, QEMU's
 * migration stream) and the threads that move the stream between QEMU and
 * the image; the layout is documented in qemu_saveimage.h and
 * docs/save-image.txt
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qemu_saveimage.h"

#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virthread.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_saveimage");

/* bytes moved per read/write by the stream threads and by a rewrite */
#define QEMU_SAVE_IMAGE_CHUNK (1024 * 1024)

/* field offsets of the fixed header */
#define QEMU_SAVE_IMAGE_OFF_VERSION 16
#define QEMU_SAVE_IMAGE_OFF_HEADER_LEN 20
#define QEMU_SAVE_IMAGE_OFF_XML_LEN 24
#define QEMU_SAVE_IMAGE_OFF_FLAGS 28
#define QEMU_SAVE_IMAGE_OFF_FORMAT 32
#define QEMU_SAVE_IMAGE_OFF_DATA_OFFSET 40
#define QEMU_SAVE_IMAGE_OFF_DATA_LEN 48

static void
qemuSaveImagePut32(char *p, unsigned int v)
{
    size_t i;

    for (i = 0; i < 4; i++)
        p[i] = (char) ((v >> (8 * i)) & 0xff);
}

static void
qemuSaveImagePut64(char *p, unsigned long long v)
{
    size_t i;

    for (i = 0; i < 8; i++)
        p[i] = (char) ((v >> (8 * i)) & 0xff);
}

static unsigned int
qemuSaveImageGet32(const char *p)
{
    unsigned int v = 0;
    size_t i;

    for (i = 0; i < 4; i++)
        v |= ((unsigned int) (unsigned char) p[i]) << (8 * i);
    return v;
}

static unsigned long long
qemuSaveImageGet64(const char *p)
{
    unsigned long long v = 0;
    size_t i;

    for (i = 0; i < 8; i++)
        v |= ((unsigned long long) (unsigned char) p[i]) << (8 * i);
    return v;
}

void
qemuSaveImageFree(qemuSaveImage *img)
{
    if (!img)
        return;
    g_free(img->path);
    g_free(img->xml);
    g_free(img);
}

int
qemuSaveImageEncodeHeader(const char *xml,
                          unsigned int flags,
                          unsigned long long dataLen,
                          char **buf,
                          size_t *len)
{
    size_t xmlLen = strlen(xml) + 1;
    size_t dataOffset;
    char *b;

    if (xmlLen > QEMU_SAVE_IMAGE_XML_MAX) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("domain XML of %zu bytes is too large for a save image (at most %d)"),
                       xmlLen, QEMU_SAVE_IMAGE_XML_MAX);
        return -1;
    }
    if (flags & ~QEMU_SAVE_IMAGE_FLAG_ALL) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unknown save image flags 0x%x"), flags);
        return -1;
    }
    dataOffset = VIR_ROUND_UP(QEMU_SAVE_IMAGE_HEADER_LEN + xmlLen, QEMU_SAVE_IMAGE_ALIGN);

    b = g_new0(char, dataOffset);
    memcpy(b, QEMU_SAVE_IMAGE_MAGIC, QEMU_SAVE_IMAGE_MAGIC_LEN);
    qemuSaveImagePut32(b + QEMU_SAVE_IMAGE_OFF_VERSION, QEMU_SAVE_IMAGE_VERSION);
    qemuSaveImagePut32(b + QEMU_SAVE_IMAGE_OFF_HEADER_LEN, QEMU_SAVE_IMAGE_HEADER_LEN);
    qemuSaveImagePut32(b + QEMU_SAVE_IMAGE_OFF_XML_LEN, xmlLen);
    qemuSaveImagePut32(b + QEMU_SAVE_IMAGE_OFF_FLAGS, flags);
    qemuSaveImagePut32(b + QEMU_SAVE_IMAGE_OFF_FORMAT, QEMU_SAVE_IMAGE_FORMAT_RAW);
    qemuSaveImagePut64(b + QEMU_SAVE_IMAGE_OFF_DATA_OFFSET, dataOffset);
    qemuSaveImagePut64(b + QEMU_SAVE_IMAGE_OFF_DATA_LEN, dataLen);
    memcpy(b + QEMU_SAVE_IMAGE_HEADER_LEN, xml, xmlLen);

    *buf = b;
    *len = dataOffset;
    return 0;
}

int
qemuSaveImageParseHeader(const char *path,
                         const char *buf,
                         size_t len,
                         unsigned long long fileSize,
                         qemuSaveImageHeader *hdr)
{
    unsigned long long minOffset;

    memset(hdr, 0, sizeof(*hdr));

    if (len < QEMU_SAVE_IMAGE_MAGIC_LEN) {
        if (len > 0 && memcmp(buf, QEMU_SAVE_IMAGE_MAGIC, len) == 0)
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("save image '%s' is truncated: %zu bytes, its header alone has %d"),
                           path, len, QEMU_SAVE_IMAGE_HEADER_LEN);
        else
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("'%s' is not a Tandem save image (%zu bytes, no save image header)"),
                           path, len);
        return -1;
    }
    if (memcmp(buf, QEMU_SAVE_IMAGE_MAGIC, QEMU_SAVE_IMAGE_MAGIC_LEN) != 0) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("'%s' is not a Tandem save image (wrong magic)"), path);
        return -1;
    }
    if (len < QEMU_SAVE_IMAGE_HEADER_LEN) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is truncated: %zu bytes, its header alone has %d"),
                       path, len, QEMU_SAVE_IMAGE_HEADER_LEN);
        return -1;
    }

    hdr->version = qemuSaveImageGet32(buf + QEMU_SAVE_IMAGE_OFF_VERSION);
    hdr->headerLen = qemuSaveImageGet32(buf + QEMU_SAVE_IMAGE_OFF_HEADER_LEN);
    hdr->xmlLen = qemuSaveImageGet32(buf + QEMU_SAVE_IMAGE_OFF_XML_LEN);
    hdr->flags = qemuSaveImageGet32(buf + QEMU_SAVE_IMAGE_OFF_FLAGS);
    hdr->format = qemuSaveImageGet32(buf + QEMU_SAVE_IMAGE_OFF_FORMAT);
    hdr->dataOffset = qemuSaveImageGet64(buf + QEMU_SAVE_IMAGE_OFF_DATA_OFFSET);
    hdr->dataLen = qemuSaveImageGet64(buf + QEMU_SAVE_IMAGE_OFF_DATA_LEN);

    if (hdr->version != QEMU_SAVE_IMAGE_VERSION) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("save image '%s' has format version %u; this Tandem reads version %d"),
                       path, hdr->version, QEMU_SAVE_IMAGE_VERSION);
        return -1;
    }
    if (hdr->headerLen != QEMU_SAVE_IMAGE_HEADER_LEN) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is corrupt: header length %u, expected %d"),
                       path, hdr->headerLen, QEMU_SAVE_IMAGE_HEADER_LEN);
        return -1;
    }
    if (hdr->xmlLen < 2 || hdr->xmlLen > QEMU_SAVE_IMAGE_XML_MAX) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is corrupt: XML length %u is out of range (2 to %d)"),
                       path, hdr->xmlLen, QEMU_SAVE_IMAGE_XML_MAX);
        return -1;
    }
    if (hdr->flags & ~QEMU_SAVE_IMAGE_FLAG_ALL) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("save image '%s' has unknown flags 0x%x"),
                       path, hdr->flags & ~QEMU_SAVE_IMAGE_FLAG_ALL);
        return -1;
    }
    if (hdr->format != QEMU_SAVE_IMAGE_FORMAT_RAW) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("save image '%s' has data format %u; this Tandem reads only raw (0)"),
                       path, hdr->format);
        return -1;
    }
    minOffset = (unsigned long long) hdr->headerLen + hdr->xmlLen;
    if (hdr->dataOffset < minOffset ||
        hdr->dataOffset % QEMU_SAVE_IMAGE_ALIGN != 0 ||
        hdr->dataOffset > minOffset + QEMU_SAVE_IMAGE_ALIGN) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is corrupt: data offset %llu does not follow the XML"),
                       path, hdr->dataOffset);
        return -1;
    }
    if (hdr->dataLen == 0) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is incomplete: the save that wrote it did not finish"),
                       path);
        return -1;
    }
    if (fileSize < hdr->dataOffset || fileSize - hdr->dataOffset < hdr->dataLen) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is truncated: %llu bytes, its header says %llu"),
                       path, fileSize,
                       hdr->dataLen > G_MAXUINT64 - hdr->dataOffset ?
                       G_MAXUINT64 : hdr->dataOffset + hdr->dataLen);
        return -1;
    }
    return 0;
}

int
qemuSaveImageOpen(const char *path, qemuSaveImage **img)
{
    g_autoptr(qemuSaveImage) ret = NULL;
    char buf[QEMU_SAVE_IMAGE_HEADER_LEN];
    struct stat sb;
    ssize_t n;
    int fd;

    *img = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        virReportSystemError(errno, _("cannot open save image '%s'"), path);
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        virReportSystemError(errno, _("cannot stat save image '%s'"), path);
        goto error;
    }
    if (!S_ISREG(sb.st_mode)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("'%s' is not a Tandem save image (not a regular file)"), path);
        goto error;
    }
    if ((n = saferead(fd, buf, sizeof(buf))) < 0) {
        virReportSystemError(errno, _("cannot read save image '%s'"), path);
        goto error;
    }

    ret = g_new0(qemuSaveImage, 1);
    ret->path = g_strdup(path);
    if (qemuSaveImageParseHeader(path, buf, n, sb.st_size, &ret->header) < 0)
        goto error;

    ret->xml = g_new0(char, ret->header.xmlLen + 1);
    n = pread(fd, ret->xml, ret->header.xmlLen, ret->header.headerLen);
    if (n < 0) {
        virReportSystemError(errno, _("cannot read save image '%s'"), path);
        goto error;
    }
    if (n != ret->header.xmlLen) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is truncated: its XML is cut short"), path);
        goto error;
    }
    if (!memchr(ret->xml, '\0', ret->header.xmlLen) || ret->xml[0] == '\0') {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("save image '%s' is corrupt: no NUL-terminated domain XML"), path);
        goto error;
    }
    if (lseek(fd, ret->header.dataOffset, SEEK_SET) < 0) {
        virReportSystemError(errno, _("cannot seek in save image '%s'"), path);
        goto error;
    }
    *img = g_steal_pointer(&ret);
    return fd;

 error:
    VIR_FORCE_CLOSE(fd);
    return -1;
}

/* The directory holding @path, opened for fsync (-1 if it cannot be). */
static void
qemuSaveImageSyncDir(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0)
        return;
    if (fsync(dfd) < 0)
        VIR_WARN("cannot sync directory %s: %s", dir, g_strerror(errno));
    VIR_FORCE_CLOSE(dfd);
}

int
qemuSaveImageCreate(const char *path,
                    const char *xml,
                    unsigned int flags,
                    char **tmpPath,
                    unsigned long long *dataOffset)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *tmp = NULL;
    g_autofree char *buf = NULL;
    size_t len = 0;
    int fd;

    *tmpPath = NULL;
    if (qemuSaveImageEncodeHeader(xml, flags, 0, &buf, &len) < 0)
        return -1;
    if (virFileIsDir(path)) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("cannot write a save image to '%s': it is a directory"), path);
        return -1;
    }
    tmp = g_strdup_printf("%s/.%s.tandem-XXXXXX", dir, base);
    if ((fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600)) < 0) {
        virReportSystemError(errno, _("cannot create save image next to '%s'"), path);
        return -1;
    }
    if (safewrite(fd, buf, len) != (ssize_t) len) {
        virReportSystemError(errno, _("cannot write save image '%s'"), tmp);
        VIR_FORCE_CLOSE(fd);
        unlink(tmp);
        return -1;
    }
    *dataOffset = len;
    *tmpPath = g_steal_pointer(&tmp);
    return fd;
}

int
qemuSaveImageCommit(int *fd,
                    const char *tmpPath,
                    const char *path,
                    unsigned long long dataLen)
{
    char b[8];

    qemuSaveImagePut64(b, dataLen);
    if (pwrite(*fd, b, sizeof(b), QEMU_SAVE_IMAGE_OFF_DATA_LEN) != sizeof(b)) {
        virReportSystemError(errno, _("cannot write save image '%s'"), tmpPath);
        goto error;
    }
    if (fsync(*fd) < 0) {
        virReportSystemError(errno, _("cannot sync save image '%s'"), tmpPath);
        goto error;
    }
    if (VIR_CLOSE(*fd) < 0) {
        virReportSystemError(errno, _("cannot close save image '%s'"), tmpPath);
        goto error;
    }
    if (rename(tmpPath, path) < 0) {
        virReportSystemError(errno, _("cannot rename save image '%s' to '%s'"),
                             tmpPath, path);
        goto error;
    }
    qemuSaveImageSyncDir(path);
    return 0;

 error:
    qemuSaveImageDiscard(fd, tmpPath);
    return -1;
}

void
qemuSaveImageDiscard(int *fd, const char *tmpPath)
{
    VIR_FORCE_CLOSE(*fd);
    if (tmpPath && unlink(tmpPath) < 0 && errno != ENOENT)
        VIR_WARN("cannot remove %s: %s", tmpPath, g_strerror(errno));
}

int
qemuSaveImageRewrite(const char *path, const char *xml, unsigned int flags)
{
    g_autoptr(qemuSaveImage) img = NULL;
    g_autofree char *tmpPath = NULL;
    g_autofree char *buf = NULL;
    unsigned long long outOffset = 0;
    unsigned long long done = 0;
    int in = -1;
    int out = -1;
    int ret = -1;

    if ((in = qemuSaveImageOpen(path, &img)) < 0)
        return -1;
    if ((out = qemuSaveImageCreate(path, xml, flags, &tmpPath, &outOffset)) < 0)
        goto cleanup;

    buf = g_new(char, QEMU_SAVE_IMAGE_CHUNK);
    while (done < img->header.dataLen) {
        size_t want = MIN(QEMU_SAVE_IMAGE_CHUNK, img->header.dataLen - done);
        ssize_t n = pread(in, buf, want, img->header.dataOffset + done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                virReportSystemError(errno, _("cannot read save image '%s'"), path);
            else
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("save image '%s' is truncated: it ended while being copied"),
                               path);
            qemuSaveImageDiscard(&out, tmpPath);
            goto cleanup;
        }
        if (lseek(out, outOffset + done, SEEK_SET) < 0 ||
            safewrite(out, buf, n) != n) {
            virReportSystemError(errno, _("cannot write save image '%s'"), tmpPath);
            qemuSaveImageDiscard(&out, tmpPath);
            goto cleanup;
        }
        done += n;
    }
    ret = qemuSaveImageCommit(&out, tmpPath, path, img->header.dataLen);

 cleanup:
    VIR_FORCE_CLOSE(in);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* The stream threads                                                     */
/* ---------------------------------------------------------------------- */

struct _qemuSaveImageStream {
    bool save;                  /* QEMU -> image (else image -> QEMU) */
    char *sockPath;
    bool ownSocket;             /* we created the socket file */
    int listenFd;               /* save: the listening socket */
    int connFd;                 /* the connection (owned by the thread) */
    int fileFd;                 /* the image; not owned */
    unsigned long long offset;  /* where the stream begins in the image */
    unsigned long long len;     /* restore: bytes to send */
    int wakeup[2];              /* a byte on [1] stops the thread */

    virThread thread;
    bool joinable;              /* thread created and not joined yet */

    /* protected by @lock; the thread signals @cond when it ends */
    GMutex lock;
    GCond cond;
    bool done;
    bool failed;
    char *errmsg;
    unsigned long long bytes;
};

static void
qemuSaveImageStreamSetBytes(qemuSaveImageStream *s, unsigned long long bytes)
{
    g_mutex_lock(&s->lock);
    s->bytes = bytes;
    g_mutex_unlock(&s->lock);
}

/* The end of the thread: @errmsg NULL on success (stolen).  The outcome
 * is published before the connection is closed: QEMU fails on the closed
 * socket, and whoever sees QEMU fail must find the copy's reason here. */
static void
qemuSaveImageStreamEnd(qemuSaveImageStream *s, char *errmsg)
{
    g_mutex_lock(&s->lock);
    s->done = true;
    s->failed = !!errmsg;
    s->errmsg = errmsg;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
    VIR_FORCE_CLOSE(s->connFd);
    if (errmsg)
        VIR_DEBUG("save image stream %s ended: %s", s->sockPath, errmsg);
    else
        VIR_DEBUG("save image stream %s ended after %llu bytes", s->sockPath, s->bytes);
}

/* Waits until @fd is ready for @events, or the stream is told to stop.
 * 1: ready, 0: stop, -1: error (errno). */
static int
qemuSaveImageStreamPoll(qemuSaveImageStream *s, int fd, short events)
{
    for (;;) {
        struct pollfd fds[2] = {
            { .fd = fd, .events = events },
            { .fd = s->wakeup[0], .events = POLLIN },
        };

        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (fds[1].revents)
            return 0;
        if (fds[0].revents)
            return 1;
    }
}

static void
qemuSaveImageStreamSaveThread(void *opaque)
{
    qemuSaveImageStream *s = opaque;
    g_autofree char *buf = g_new(char, QEMU_SAVE_IMAGE_CHUNK);
    unsigned long long total = 0;
    int rc;

    while (s->connFd < 0) {
        if ((rc = qemuSaveImageStreamPoll(s, s->listenFd, POLLIN)) <= 0) {
            qemuSaveImageStreamEnd(s, rc == 0 ?
                                   g_strdup(_("QEMU did not connect to the save stream")) :
                                   g_strdup_printf(_("cannot wait for QEMU's save stream: %s"),
                                                   g_strerror(errno)));
            return;
        }
        s->connFd = accept4(s->listenFd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s->connFd < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            qemuSaveImageStreamEnd(s, g_strdup_printf(_("cannot accept QEMU's save stream: %s"),
                                                      g_strerror(errno)));
            return;
        }
    }
    /* one connection only */
    VIR_FORCE_CLOSE(s->listenFd);

    for (;;) {
        ssize_t n;
        ssize_t off = 0;

        if ((rc = qemuSaveImageStreamPoll(s, s->connFd, POLLIN)) <= 0) {
            qemuSaveImageStreamEnd(s, rc == 0 ?
                                   g_strdup_printf(_("save stream stopped after %llu bytes"), total) :
                                   g_strdup_printf(_("cannot wait for QEMU's save stream: %s"),
                                                   g_strerror(errno)));
            return;
        }
        n = read(s->connFd, buf, QEMU_SAVE_IMAGE_CHUNK);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            qemuSaveImageStreamEnd(s, g_strdup_printf(_("cannot read QEMU's save stream: %s"),
                                                      g_strerror(errno)));
            return;
        }
        if (n == 0)
            break;
        while (off < n) {
            ssize_t w = pwrite(s->fileFd, buf + off, n - off, s->offset + total + off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                qemuSaveImageStreamEnd(s, g_strdup_printf(_("cannot write the save image: %s"),
                                                          g_strerror(w < 0 ? errno : EIO)));
                return;
            }
            off += w;
        }
        total += n;
        qemuSaveImageStreamSetBytes(s, total);
    }

    if (total == 0) {
        qemuSaveImageStreamEnd(s, g_strdup(_("QEMU closed the save stream without sending anything")));
        return;
    }
    qemuSaveImageStreamEnd(s, NULL);
}

static void
qemuSaveImageStreamFeedThread(void *opaque)
{
    qemuSaveImageStream *s = opaque;
    g_autofree char *buf = g_new(char, QEMU_SAVE_IMAGE_CHUNK);
    unsigned long long total = 0;
    int rc;

    while (total < s->len) {
        size_t want = MIN(QEMU_SAVE_IMAGE_CHUNK, s->len - total);
        ssize_t n = pread(s->fileFd, buf, want, s->offset + total);
        ssize_t off = 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            qemuSaveImageStreamEnd(s, n < 0 ?
                                   g_strdup_printf(_("cannot read the save image: %s"),
                                                   g_strerror(errno)) :
                                   g_strdup_printf(_("the save image ended after %llu of %llu bytes"),
                                                   total, s->len));
            return;
        }
        while (off < n) {
            ssize_t w;

            if ((rc = qemuSaveImageStreamPoll(s, s->connFd, POLLOUT)) <= 0) {
                qemuSaveImageStreamEnd(s, rc == 0 ?
                                       g_strdup_printf(_("restore stream stopped after %llu bytes"),
                                                       total + off) :
                                       g_strdup_printf(_("cannot wait for QEMU's restore stream: %s"),
                                                       g_strerror(errno)));
                return;
            }
            w = send(s->connFd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                qemuSaveImageStreamEnd(s, g_strdup_printf(_("QEMU closed the restore stream after %llu bytes: %s"),
                                                          total + off, g_strerror(errno)));
                return;
            }
            off += w;
        }
        total += n;
        qemuSaveImageStreamSetBytes(s, total);
    }
    qemuSaveImageStreamEnd(s, NULL);
}

static qemuSaveImageStream *
qemuSaveImageStreamNew(const char *sockPath, struct sockaddr_un *addr)
{
    qemuSaveImageStream *s;

    if (strlen(sockPath) >= sizeof(addr->sun_path)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("save stream socket path '%s' is too long"), sockPath);
        return NULL;
    }
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, sockPath, strlen(sockPath) + 1);

    s = g_new0(qemuSaveImageStream, 1);
    s->sockPath = g_strdup(sockPath);
    s->listenFd = -1;
    s->connFd = -1;
    s->fileFd = -1;
    s->wakeup[0] = s->wakeup[1] = -1;
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    if (pipe2(s->wakeup, O_CLOEXEC | O_NONBLOCK) < 0) {
        virReportSystemError(errno, "%s", _("cannot create a pipe"));
        qemuSaveImageStreamFree(s);
        return NULL;
    }
    return s;
}

static int
qemuSaveImageStreamStart(qemuSaveImageStream *s)
{
    if (virThreadCreateFull(&s->thread, true,
                            s->save ? qemuSaveImageStreamSaveThread
                                    : qemuSaveImageStreamFeedThread,
                            s->save ? "save-stream" : "restore-stream",
                            false, s) < 0) {
        virReportSystemError(errno, "%s", _("cannot create the save stream thread"));
        return -1;
    }
    s->joinable = true;
    return 0;
}

qemuSaveImageStream *
qemuSaveImageStreamListen(const char *sockPath,
                          uid_t uid,
                          gid_t gid,
                          int fd,
                          unsigned long long offset)
{
    struct sockaddr_un addr;
    qemuSaveImageStream *s;

    if (!(s = qemuSaveImageStreamNew(sockPath, &addr)))
        return NULL;
    s->save = true;
    s->fileFd = fd;
    s->offset = offset;

    if (unlink(sockPath) < 0 && errno != ENOENT) {
        virReportSystemError(errno, _("cannot remove stale socket '%s'"), sockPath);
        goto error;
    }
    if ((s->listenFd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
        virReportSystemError(errno, "%s", _("cannot create the save stream socket"));
        goto error;
    }
    if (bind(s->listenFd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
        virReportSystemError(errno, _("cannot bind the save stream socket '%s'"), sockPath);
        goto error;
    }
    s->ownSocket = true;
    if (((uid != (uid_t) -1 || gid != (gid_t) -1) && chown(sockPath, uid, gid) < 0) ||
        chmod(sockPath, 0600) < 0) {
        virReportSystemError(errno, _("cannot set the owner of socket '%s'"), sockPath);
        goto error;
    }
    if (listen(s->listenFd, 1) < 0) {
        virReportSystemError(errno, _("cannot listen on socket '%s'"), sockPath);
        goto error;
    }
    if (qemuSaveImageStreamStart(s) < 0)
        goto error;
    return s;

 error:
    qemuSaveImageStreamFree(s);
    return NULL;
}

qemuSaveImageStream *
qemuSaveImageStreamFeed(const char *sockPath,
                        int fd,
                        unsigned long long offset,
                        unsigned long long len)
{
    struct sockaddr_un addr;
    qemuSaveImageStream *s;

    if (!(s = qemuSaveImageStreamNew(sockPath, &addr)))
        return NULL;
    s->fileFd = fd;
    s->offset = offset;
    s->len = len;

    if ((s->connFd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        virReportSystemError(errno, "%s", _("cannot create the restore stream socket"));
        goto error;
    }
    if (connect(s->connFd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
        virReportSystemError(errno, _("cannot connect to QEMU's restore stream '%s'"),
                             sockPath);
        goto error;
    }
    if (virSetNonBlock(s->connFd) < 0) {
        virReportSystemError(errno, "%s", _("cannot make the restore stream non-blocking"));
        goto error;
    }
    if (qemuSaveImageStreamStart(s) < 0)
        goto error;
    return s;

 error:
    qemuSaveImageStreamFree(s);
    return NULL;
}

unsigned long long
qemuSaveImageStreamBytes(qemuSaveImageStream *stream)
{
    unsigned long long bytes;

    g_mutex_lock(&stream->lock);
    bytes = stream->bytes;
    g_mutex_unlock(&stream->lock);
    return bytes;
}

bool
qemuSaveImageStreamDone(qemuSaveImageStream *stream, bool *failed)
{
    bool done;

    g_mutex_lock(&stream->lock);
    done = stream->done;
    if (failed)
        *failed = stream->failed;
    g_mutex_unlock(&stream->lock);
    return done;
}

static void
qemuSaveImageStreamStop(qemuSaveImageStream *s)
{
    if (!s->joinable)
        return;
    if (s->wakeup[1] >= 0 && write(s->wakeup[1], "x", 1) < 0 && errno != EAGAIN)
        VIR_WARN("cannot wake the save stream thread: %s", g_strerror(errno));
    virThreadJoin(&s->thread);
    s->joinable = false;
}

int
qemuSaveImageStreamFinish(qemuSaveImageStream *stream,
                          unsigned int timeoutMs)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) timeoutMs * 1000;
    g_autofree char *errmsg = NULL;
    bool failed;

    g_mutex_lock(&stream->lock);
    while (!stream->done && timeoutMs > 0) {
        if (!g_cond_wait_until(&stream->cond, &stream->lock, deadline))
            break;
    }
    g_mutex_unlock(&stream->lock);

    qemuSaveImageStreamStop(stream);

    g_mutex_lock(&stream->lock);
    failed = stream->failed || !stream->done;
    errmsg = g_strdup(stream->errmsg);
    g_mutex_unlock(&stream->lock);

    if (failed) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       errmsg ? errmsg : _("the save stream did not end"));
        return -1;
    }
    return 0;
}

void
qemuSaveImageStreamFree(qemuSaveImageStream *stream)
{
    if (!stream)
        return;
    qemuSaveImageStreamStop(stream);
    VIR_FORCE_CLOSE(stream->listenFd);
    VIR_FORCE_CLOSE(stream->connFd);
    VIR_FORCE_CLOSE(stream->wakeup[0]);
    VIR_FORCE_CLOSE(stream->wakeup[1]);
    if (stream->ownSocket && unlink(stream->sockPath) < 0 && errno != ENOENT)
        VIR_WARN("cannot remove %s: %s", stream->sockPath, g_strerror(errno));
    g_mutex_clear(&stream->lock);
    g_cond_clear(&stream->cond);
    g_free(stream->errmsg);
    g_free(stream->sockPath);
    g_free(stream);
}
