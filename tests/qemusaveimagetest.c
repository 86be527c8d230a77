/*
 * qemusaveimagetest.c: unit tests of the save image format and its stream
 * threads (src/qemu/qemu_saveimage.c): header write/read, validation of
 * truncated, foreign, wrong-version and corrupt files, atomic replacement,
 * the copy threads over unix sockets
 *
 * Prints one line per sub-test, "ok - NAME" or "not ok - NAME" followed by
 * "#" lines explaining the failure; exits 0 when every sub-test passed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qemu_saveimage.h"
#include "virerror.h"
#include "virfile.h"

#define VIR_FROM_THIS VIR_FROM_NONE

static int testFailures;
static bool testCurrentFailed;
static GString *testDiagnostics;
static char *testDir;

static const char testXML[] =
    "<domain type='qemu'>\n  <name>t</name>\n</domain>\n";

static void G_GNUC_PRINTF(1, 2)
testFail(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    testCurrentFailed = true;
    g_string_append_printf(testDiagnostics, "#   %s\n", msg);
}

static void
testRun(const char *name, void (*func)(const void *data), const void *data)
{
    testCurrentFailed = false;
    g_string_truncate(testDiagnostics, 0);
    virResetLastError();
    func(data);
    if (testCurrentFailed) {
        printf("not ok - %s\n", name);
        testFailures++;
    } else {
        printf("ok - %s\n", name);
    }
    printf("%s", testDiagnostics->str);
    fflush(stdout);
}

static char *
testPath(const char *name)
{
    return g_build_filename(testDir, name, NULL);
}

/* The data QEMU's stream would hold: @len bytes of a pattern. */
static char *
testData(size_t len)
{
    char *data = g_new(char, len);
    size_t i;

    for (i = 0; i < len; i++)
        data[i] = (char) ((i * 7 + i / 251) & 0xff);
    return data;
}

/* Writes a complete image at @path through Create + Commit. */
static int
testWriteImage(const char *path, const char *xml, unsigned int flags,
               const char *data, size_t len)
{
    g_autofree char *tmp = NULL;
    unsigned long long off = 0;
    int fd;

    if ((fd = qemuSaveImageCreate(path, xml, flags, &tmp, &off)) < 0) {
        testFail("create %s: %s", path, virGetLastErrorMessage());
        return -1;
    }
    if (pwrite(fd, data, len, off) != (ssize_t) len) {
        testFail("pwrite: %s", g_strerror(errno));
        qemuSaveImageDiscard(&fd, tmp);
        return -1;
    }
    if (qemuSaveImageCommit(&fd, tmp, path, len) < 0) {
        testFail("commit %s: %s", path, virGetLastErrorMessage());
        return -1;
    }
    return 0;
}

static char *
testReadFile(const char *path, size_t *len)
{
    char *buf = NULL;
    gsize n = 0;

    if (!g_file_get_contents(path, &buf, &n, NULL))
        return NULL;
    *len = n;
    return buf;
}

static void
testWriteFile(const char *path, const char *buf, size_t len)
{
    if (!g_file_set_contents(path, buf, len, NULL))
        testFail("cannot write %s", path);
}

/* No temporary file left behind in the test directory. */
static void
testNoTempFiles(void)
{
    g_autoptr(GDir) dir = g_dir_open(testDir, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        if (strstr(name, ".tandem-"))
            testFail("temporary file left behind: %s", name);
    }
}

/* Opening @path fails with @code and a message holding @sub; the file is
 * unchanged. */
static void
testOpenFails(const char *path, int code, const char *sub)
{
    g_autoptr(qemuSaveImage) img = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    size_t lenBefore = 0;
    size_t lenAfter = 0;
    virErrorPtr err;
    int fd;

    before = testReadFile(path, &lenBefore);
    virResetLastError();
    if ((fd = qemuSaveImageOpen(path, &img)) >= 0) {
        testFail("opening %s succeeded, expected an error containing '%s'", path, sub);
        VIR_FORCE_CLOSE(fd);
        return;
    }
    if (img)
        testFail("an image was returned with the error");
    err = virGetLastError();
    if (!err) {
        testFail("no error reported");
        return;
    }
    if (err->code != code)
        testFail("error code %d, expected %d (%s)", err->code, code, err->message);
    if (!err->message || !strstr(err->message, sub))
        testFail("error '%s' does not contain '%s'", NULLSTR(err->message), sub);
    if (!strstr(NULLSTR(err->message), path))
        testFail("error '%s' does not name the file", NULLSTR(err->message));
    after = testReadFile(path, &lenAfter);
    if (before && (!after || lenBefore != lenAfter || memcmp(before, after, lenBefore) != 0))
        testFail("the file changed");
}

static void
testRoundTrip(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("round.img");
    g_autofree char *data = testData(300000);
    g_autofree char *back = g_new0(char, 300000);
    g_autoptr(qemuSaveImage) img = NULL;
    struct stat sb;
    int fd;

    if (testWriteImage(path, testXML, QEMU_SAVE_IMAGE_FLAG_RUNNING, data, 300000) < 0)
        return;
    if ((fd = qemuSaveImageOpen(path, &img)) < 0) {
        testFail("open: %s", virGetLastErrorMessage());
        return;
    }
    if (STRNEQ(img->xml, testXML))
        testFail("XML: got '%s'", img->xml);
    if (img->header.version != QEMU_SAVE_IMAGE_VERSION ||
        img->header.headerLen != QEMU_SAVE_IMAGE_HEADER_LEN ||
        img->header.xmlLen != strlen(testXML) + 1 ||
        img->header.flags != QEMU_SAVE_IMAGE_FLAG_RUNNING ||
        img->header.format != QEMU_SAVE_IMAGE_FORMAT_RAW ||
        img->header.dataOffset != QEMU_SAVE_IMAGE_ALIGN ||
        img->header.dataLen != 300000)
        testFail("header: version %u headerLen %u xmlLen %u flags %u format %u offset %llu len %llu",
                 img->header.version, img->header.headerLen, img->header.xmlLen,
                 img->header.flags, img->header.format, img->header.dataOffset,
                 img->header.dataLen);
    if (lseek(fd, 0, SEEK_CUR) != (off_t) img->header.dataOffset)
        testFail("fd not positioned at the data");
    if (saferead(fd, back, 300000) != 300000 || memcmp(back, data, 300000) != 0)
        testFail("data read back differs");
    VIR_FORCE_CLOSE(fd);
    if (stat(path, &sb) < 0 || (sb.st_mode & 0777) != 0600)
        testFail("image mode %o, expected 600", (unsigned int) (sb.st_mode & 0777));
    testNoTempFiles();
}

static void
testLayout(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *buf = NULL;
    size_t len = 0;
    static const char le1[] = { 1, 0, 0, 0 };
    static const char le64[] = { 64, 0, 0, 0 };

    if (qemuSaveImageEncodeHeader(testXML, 0, 0x0102030405060708ULL, &buf, &len) < 0) {
        testFail("encode: %s", virGetLastErrorMessage());
        return;
    }
    if (len != QEMU_SAVE_IMAGE_ALIGN)
        testFail("length %zu, expected %d", len, QEMU_SAVE_IMAGE_ALIGN);
    if (memcmp(buf, "TANDEM-SAVEIMAGE", 16) != 0)
        testFail("magic");
    if (memcmp(buf + 16, le1, 4) != 0 || memcmp(buf + 20, le64, 4) != 0)
        testFail("version / header length not little-endian 1 / 64");
    if ((unsigned char) buf[48] != 0x08 || (unsigned char) buf[55] != 0x01)
        testFail("data length not little-endian");
    if (STRNEQ(buf + 64, testXML))
        testFail("XML not at offset 64");
}

static void
testBigXML(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("big.img");
    g_autofree char *xml = NULL;
    g_autofree char *data = testData(10);
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(GString) s = g_string_new("<domain>");
    int fd;

    while (s->len < 10000)
        g_string_append(s, "<!-- padding padding padding -->");
    g_string_append(s, "</domain>");
    xml = g_strdup(s->str);
    if (testWriteImage(path, xml, 0, data, 10) < 0)
        return;
    if ((fd = qemuSaveImageOpen(path, &img)) < 0) {
        testFail("open: %s", virGetLastErrorMessage());
        return;
    }
    VIR_FORCE_CLOSE(fd);
    if (img->header.dataOffset % QEMU_SAVE_IMAGE_ALIGN != 0 ||
        img->header.dataOffset < QEMU_SAVE_IMAGE_HEADER_LEN + strlen(xml) + 1)
        testFail("data offset %llu", img->header.dataOffset);
    if (STRNEQ(img->xml, xml))
        testFail("XML differs");
}

/* A valid image in memory, for the corruptions below. */
static char *
testValidImage(size_t *len)
{
    g_autofree char *hdr = NULL;
    g_autofree char *data = testData(8192);
    size_t hlen = 0;
    char *buf;

    if (qemuSaveImageEncodeHeader(testXML, 0, 8192, &hdr, &hlen) < 0)
        return NULL;
    buf = g_new(char, hlen + 8192);
    memcpy(buf, hdr, hlen);
    memcpy(buf + hlen, data, 8192);
    *len = hlen + 8192;
    return buf;
}

static void
testPut32(char *p, unsigned int v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = (v >> 24) & 0xff;
}

static void
testPut64(char *p, unsigned long long v)
{
    testPut32(p, v & 0xffffffffULL);
    testPut32(p + 4, v >> 32);
}

static void
testTruncated(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("truncated.img");
    size_t len = 0;
    g_autofree char *img = testValidImage(&len);
    size_t cuts[] = { 5, 16, 40, 63, 64, 80, 4096, 4097, 8000 };
    size_t i;

    if (!img) {
        testFail("encode: %s", virGetLastErrorMessage());
        return;
    }
    for (i = 0; i < G_N_ELEMENTS(cuts); i++) {
        testWriteFile(path, img, cuts[i]);
        testOpenFails(path, VIR_ERR_OPERATION_FAILED, "truncated");
    }
    testWriteFile(path, img, len - 1);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "truncated");
    /* the whole thing opens */
    testWriteFile(path, img, len);
    {
        g_autoptr(qemuSaveImage) ok = NULL;
        int fd = qemuSaveImageOpen(path, &ok);

        if (fd < 0)
            testFail("the complete image does not open: %s", virGetLastErrorMessage());
        VIR_FORCE_CLOSE(fd);
    }
}

static void
testForeign(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("foreign.img");
    g_autofree char *junk = testData(100000);
    static const char libvirtMagic[] = "LibvirtQemudSave\002\0\0\0";

    testWriteFile(path, "", 0);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "not a Tandem save image");
    testWriteFile(path, "hello\n", 6);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "not a Tandem save image");
    testWriteFile(path, junk, 100000);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "not a Tandem save image");
    memcpy(junk, libvirtMagic, sizeof(libvirtMagic));
    testWriteFile(path, junk, 100000);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "not a Tandem save image");
    memcpy(junk, "\177ELF\002\001\001", 7);
    testWriteFile(path, junk, 100000);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "wrong magic");
    testOpenFails(testDir, VIR_ERR_OPERATION_FAILED, "not a regular file");
}

static void
testMissing(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("does-not-exist.img");

    testOpenFails(path, VIR_ERR_SYSTEM_ERROR, "cannot open save image");
}

typedef struct {
    const char *name;
    size_t offset;         /* field to patch */
    int width;             /* 4 or 8 */
    unsigned long long value;
    int code;
    const char *sub;
} testCorruption;

static const testCorruption testCorruptions[] = {
    { "wrong version 2", 16, 4, 2, VIR_ERR_OPERATION_INVALID, "format version 2" },
    { "wrong version 0", 16, 4, 0, VIR_ERR_OPERATION_INVALID, "format version 0" },
    { "huge version", 16, 4, 0xffffffffULL, VIR_ERR_OPERATION_INVALID, "format version 4294967295" },
    { "header length", 20, 4, 128, VIR_ERR_OPERATION_FAILED, "header length 128" },
    { "huge XML length", 24, 4, 0xffffffffULL, VIR_ERR_OPERATION_FAILED, "XML length 4294967295" },
    { "XML length just over the limit", 24, 4, QEMU_SAVE_IMAGE_XML_MAX + 1,
      VIR_ERR_OPERATION_FAILED, "XML length" },
    { "zero XML length", 24, 4, 0, VIR_ERR_OPERATION_FAILED, "XML length 0" },
    { "unknown flags", 28, 4, 0x80, VIR_ERR_OPERATION_INVALID, "unknown flags 0x80" },
    { "unknown data format", 32, 4, 3, VIR_ERR_OPERATION_INVALID, "data format 3" },
    { "data offset inside the XML", 40, 8, 64, VIR_ERR_OPERATION_FAILED, "data offset 64" },
    { "unaligned data offset", 40, 8, 4097, VIR_ERR_OPERATION_FAILED, "data offset 4097" },
    { "huge data offset", 40, 8, 0xfffffffffffff000ULL, VIR_ERR_OPERATION_FAILED, "data offset" },
    { "huge data length", 48, 8, 0x7fffffffffffffffULL, VIR_ERR_OPERATION_FAILED, "truncated" },
    { "wrapping data length", 48, 8, 0xffffffffffffffffULL, VIR_ERR_OPERATION_FAILED, "truncated" },
    { "incomplete (data length 0)", 48, 8, 0, VIR_ERR_OPERATION_FAILED, "incomplete" },
};

static void
testCorrupt(const void *opaque)
{
    const testCorruption *c = opaque;
    g_autofree char *path = testPath("corrupt.img");
    size_t len = 0;
    g_autofree char *img = testValidImage(&len);

    if (!img) {
        testFail("encode: %s", virGetLastErrorMessage());
        return;
    }
    if (c->width == 4)
        testPut32(img + c->offset, c->value);
    else
        testPut64(img + c->offset, c->value);
    testWriteFile(path, img, len);
    testOpenFails(path, c->code, c->sub);
}

static void
testUnterminatedXML(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("noterm.img");
    size_t len = 0;
    g_autofree char *img = testValidImage(&len);
    size_t xmlLen = strlen(testXML) + 1;

    if (!img)
        return;
    img[64 + xmlLen - 1] = 'x';
    testWriteFile(path, img, len);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "NUL-terminated");
    img[64] = '\0';
    testWriteFile(path, img, len);
    testOpenFails(path, VIR_ERR_OPERATION_FAILED, "NUL-terminated");
}

static void
testDiscardKeepsOld(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("old.img");
    g_autofree char *tmp = NULL;
    g_autofree char *content = NULL;
    unsigned long long off = 0;
    size_t len = 0;
    int fd;

    testWriteFile(path, "OLD", 3);
    if ((fd = qemuSaveImageCreate(path, testXML, 0, &tmp, &off)) < 0) {
        testFail("create: %s", virGetLastErrorMessage());
        return;
    }
    if (!tmp || !g_str_has_prefix(tmp, testDir) || STREQ(tmp, path))
        testFail("temporary file '%s' not next to the image", NULLSTR(tmp));
    if (write(fd, "partial", 7) != 7)
        testFail("write");
    qemuSaveImageDiscard(&fd, tmp);
    if (fd != -1)
        testFail("descriptor not closed");
    content = testReadFile(path, &len);
    if (!content || len != 3 || memcmp(content, "OLD", 3) != 0)
        testFail("the previous file changed");
    testNoTempFiles();

    /* a directory is refused before anything is created (tmpPath is an
     * output: the first call's name is freed first) */
    g_clear_pointer(&tmp, g_free);
    if (qemuSaveImageCreate(testDir, testXML, 0, &tmp, &off) >= 0)
        testFail("creating an image over a directory succeeded");
    testNoTempFiles();
}

static void
testRewrite(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("rewrite.img");
    g_autofree char *data = testData(3 * 1024 * 1024 + 17);
    g_autofree char *back = g_new0(char, 3 * 1024 * 1024 + 17);
    g_autoptr(qemuSaveImage) img = NULL;
    g_autoptr(GString) xml = g_string_new("<domain><name>t</name>");
    size_t n = 3 * 1024 * 1024 + 17;
    int fd;

    if (testWriteImage(path, testXML, QEMU_SAVE_IMAGE_FLAG_RUNNING, data, n) < 0)
        return;
    while (xml->len < 6000)
        g_string_append(xml, "<description>longer than a page</description>");
    g_string_append(xml, "</domain>");
    if (qemuSaveImageRewrite(path, xml->str, 0) < 0) {
        testFail("rewrite: %s", virGetLastErrorMessage());
        return;
    }
    if ((fd = qemuSaveImageOpen(path, &img)) < 0) {
        testFail("open after rewrite: %s", virGetLastErrorMessage());
        return;
    }
    if (STRNEQ(img->xml, xml->str))
        testFail("XML not replaced");
    if (img->header.flags != 0)
        testFail("flags %u, expected 0", img->header.flags);
    if (img->header.dataOffset != 2 * QEMU_SAVE_IMAGE_ALIGN)
        testFail("data offset %llu", img->header.dataOffset);
    if (img->header.dataLen != n ||
        saferead(fd, back, n) != (ssize_t) n || memcmp(back, data, n) != 0)
        testFail("data not preserved by the rewrite");
    VIR_FORCE_CLOSE(fd);
    testNoTempFiles();
}

static void
testRewriteCorrupt(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *path = testPath("rewrite-bad.img");
    size_t len = 0;
    g_autofree char *img = testValidImage(&len);
    g_autofree char *after = NULL;
    size_t lenAfter = 0;

    if (!img)
        return;
    testWriteFile(path, img, len - 100);
    if (qemuSaveImageRewrite(path, testXML, 0) == 0)
        testFail("rewriting a truncated image succeeded");
    else if (!strstr(virGetLastErrorMessage(), "truncated"))
        testFail("error: %s", virGetLastErrorMessage());
    after = testReadFile(path, &lenAfter);
    if (!after || lenAfter != len - 100 || memcmp(after, img, lenAfter) != 0)
        testFail("the truncated image changed");
    testNoTempFiles();
}

/* ---------------------------------------------------------------------- */
/* The stream threads                                                     */
/* ---------------------------------------------------------------------- */

static int
testUnixConnect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
        testFail("connect %s: %s", path, g_strerror(errno));
        VIR_FORCE_CLOSE(fd);
    }
    return fd;
}

static void
testStreamSave(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *sock = testPath("save.sock");
    g_autofree char *file = testPath("stream-save.bin");
    g_autofree char *data = testData(5 * 1024 * 1024 + 3);
    g_autofree char *back = NULL;
    size_t n = 5 * 1024 * 1024 + 3;
    size_t len = 0;
    qemuSaveImageStream *s;
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int conn;

    if (!(s = qemuSaveImageStreamListen(sock, (uid_t) -1, (gid_t) -1, fd, 4096))) {
        testFail("listen: %s", virGetLastErrorMessage());
        VIR_FORCE_CLOSE(fd);
        return;
    }
    if ((conn = testUnixConnect(sock)) >= 0) {
        if (safewrite(conn, data, n) != (ssize_t) n)
            testFail("write to the stream: %s", g_strerror(errno));
        VIR_FORCE_CLOSE(conn);
    }
    if (qemuSaveImageStreamFinish(s, 30000) < 0)
        testFail("finish: %s", virGetLastErrorMessage());
    if (qemuSaveImageStreamBytes(s) != n)
        testFail("bytes %llu, expected %zu", qemuSaveImageStreamBytes(s), n);
    qemuSaveImageStreamFree(s);
    VIR_FORCE_CLOSE(fd);
    if (virFileExists(sock))
        testFail("socket left behind");
    back = testReadFile(file, &len);
    if (!back || len != n + 4096 || memcmp(back + 4096, data, n) != 0)
        testFail("file content differs (%zu bytes)", len);
}

static void
testStreamSaveNobody(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *sock = testPath("nobody.sock");
    qemuSaveImageStream *s;
    bool failed = false;

    if (!(s = qemuSaveImageStreamListen(sock, (uid_t) -1, (gid_t) -1, -1, 0))) {
        testFail("listen: %s", virGetLastErrorMessage());
        return;
    }
    if (qemuSaveImageStreamDone(s, &failed))
        testFail("done before anything happened");
    if (qemuSaveImageStreamFinish(s, 0) == 0)
        testFail("a stream nobody connected to finished successfully");
    else if (!strstr(virGetLastErrorMessage(), "did not connect"))
        testFail("error: %s", virGetLastErrorMessage());
    if (!qemuSaveImageStreamDone(s, &failed) || !failed)
        testFail("not marked failed");
    qemuSaveImageStreamFree(s);
}

static void
testStreamSaveEmpty(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *sock = testPath("empty.sock");
    qemuSaveImageStream *s;
    int conn;

    if (!(s = qemuSaveImageStreamListen(sock, (uid_t) -1, (gid_t) -1, -1, 0))) {
        testFail("listen: %s", virGetLastErrorMessage());
        return;
    }
    if ((conn = testUnixConnect(sock)) >= 0)
        VIR_FORCE_CLOSE(conn);
    if (qemuSaveImageStreamFinish(s, 30000) == 0)
        testFail("an empty stream counts as complete");
    else if (!strstr(virGetLastErrorMessage(), "without sending anything"))
        testFail("error: %s", virGetLastErrorMessage());
    qemuSaveImageStreamFree(s);
}

typedef struct {
    int listenFd;
    char *received;
    size_t len;
    size_t stopAfter;     /* close after that many bytes (0: read all) */
} testReader;

static gpointer
testReaderThread(gpointer opaque)
{
    testReader *r = opaque;
    int conn = accept(r->listenFd, NULL, NULL);
    g_autoptr(GByteArray) got = g_byte_array_new();
    char buf[65536];
    ssize_t n;

    if (conn < 0)
        return NULL;
    while ((n = read(conn, buf, sizeof(buf))) > 0) {
        g_byte_array_append(got, (guint8 *) buf, n);
        if (r->stopAfter && got->len >= r->stopAfter)
            break;
    }
    VIR_FORCE_CLOSE(conn);
    r->len = got->len;
    r->received = g_memdup2(got->data, got->len);
    return NULL;
}

static int
testUnixListen(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    unlink(path);
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
        listen(fd, 1) < 0) {
        testFail("listen %s: %s", path, g_strerror(errno));
        VIR_FORCE_CLOSE(fd);
    }
    return fd;
}

static void
testStreamFeed(const void *opaque)
{
    bool peerCloses = !!opaque;
    g_autofree char *sock = testPath("feed.sock");
    g_autofree char *file = testPath("feed.bin");
    size_t n = 4 * 1024 * 1024 + 5;
    g_autofree char *data = testData(n + 8192);
    testReader r = { .stopAfter = peerCloses ? 100000 : 0 };
    qemuSaveImageStream *s;
    GThread *th;
    int fd;

    testWriteFile(file, data, n + 8192);
    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0 ||
        (r.listenFd = testUnixListen(sock)) < 0) {
        VIR_FORCE_CLOSE(fd);
        return;
    }
    th = g_thread_new("reader", testReaderThread, &r);
    if (!(s = qemuSaveImageStreamFeed(sock, fd, 8192, n))) {
        testFail("feed: %s", virGetLastErrorMessage());
        VIR_FORCE_CLOSE(r.listenFd);
    } else {
        int rc = qemuSaveImageStreamFinish(s, 30000);

        if (!peerCloses) {
            if (rc < 0)
                testFail("finish: %s", virGetLastErrorMessage());
            if (qemuSaveImageStreamBytes(s) != n)
                testFail("bytes %llu, expected %zu", qemuSaveImageStreamBytes(s), n);
        } else if (rc == 0) {
            testFail("feeding a peer that closed early succeeded");
        } else if (!strstr(virGetLastErrorMessage(), "closed the restore stream")) {
            testFail("error: %s", virGetLastErrorMessage());
        }
        qemuSaveImageStreamFree(s);
    }
    g_thread_join(th);
    VIR_FORCE_CLOSE(r.listenFd);
    VIR_FORCE_CLOSE(fd);
    if (!peerCloses && (r.len != n || memcmp(r.received, data + 8192, n) != 0))
        testFail("peer received %zu bytes, expected %zu identical", r.len, n);
    g_free(r.received);
}

static void
testStreamFeedNoListener(const void *opaque G_GNUC_UNUSED)
{
    g_autofree char *sock = testPath("absent.sock");
    qemuSaveImageStream *s;

    if ((s = qemuSaveImageStreamFeed(sock, -1, 0, 10))) {
        testFail("feeding a missing socket succeeded");
        qemuSaveImageStreamFree(s);
    } else if (!strstr(virGetLastErrorMessage(), "cannot connect")) {
        testFail("error: %s", virGetLastErrorMessage());
    }
}

int
main(void)
{
    g_autofree char *tmpl = NULL;
    size_t i;

    testDiagnostics = g_string_new(NULL);
    if (virInitialize() < 0) {
        fprintf(stderr, "cannot initialize libvirt: %s\n", virGetLastErrorMessage());
        return EXIT_FAILURE;
    }
    tmpl = g_build_filename(g_get_tmp_dir(), "tandem-saveimage-XXXXXX", NULL);
    if (!(testDir = g_mkdtemp(tmpl))) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return EXIT_FAILURE;
    }
    testDir = g_strdup(testDir);

    testRun("write, commit and read back an image", testRoundTrip, NULL);
    testRun("header layout: magic, little-endian fields, XML at 64", testLayout, NULL);
    testRun("XML longer than a page: aligned data offset", testBigXML, NULL);
    testRun("truncated files are refused", testTruncated, NULL);
    testRun("foreign files are refused", testForeign, NULL);
    testRun("missing file: system error", testMissing, NULL);
    for (i = 0; i < G_N_ELEMENTS(testCorruptions); i++) {
        g_autofree char *name = g_strdup_printf("corrupt header: %s",
                                                testCorruptions[i].name);

        testRun(name, testCorrupt, &testCorruptions[i]);
    }
    testRun("unterminated or empty XML is refused", testUnterminatedXML, NULL);
    testRun("a discarded image leaves the old file and no temporary", testDiscardKeepsOld, NULL);
    testRun("rewrite: new XML and flags, same data", testRewrite, NULL);
    testRun("rewrite of a truncated image changes nothing", testRewriteCorrupt, NULL);
    testRun("save stream: socket to file", testStreamSave, NULL);
    testRun("save stream: nobody connects, stopped", testStreamSaveNobody, NULL);
    testRun("save stream: empty stream is a failure", testStreamSaveEmpty, NULL);
    testRun("restore stream: file to socket", testStreamFeed, NULL);
    testRun("restore stream: peer closes early", testStreamFeed, (void *) 1);
    testRun("restore stream: nothing listens", testStreamFeedNoListener, NULL);

    virFileDeleteTree(testDir);
    g_free(testDir);
    if (testFailures) {
        printf("# %d sub-test(s) failed\n", testFailures);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
