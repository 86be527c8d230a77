/*
 * saveimagefuzz.c: libFuzzer target for the save image reader
 * (qemuSaveImageParseHeader, qemuSaveImageOpen)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is a whole save image file (docs/save-image.txt).  It is parsed
 * from memory, then written to a scratch file and opened as an image; what
 * opens must re-encode to a header that parses to the same values.
 * Build and run: make fuzz-saveimage FUZZ_SECONDS=60
 */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "qemu_saveimage.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzzPath;

static void
fuzzCleanup(void)
{
    if (fuzzPath) {
        g_autofree char *dir = g_path_get_dirname(fuzzPath);

        unlink(fuzzPath);
        rmdir(dir);
    }
}

static void
fuzzInit(void)
{
    g_autofree char *dir = NULL;

    if (virInitialize() < 0)
        abort();
    /* parse errors are expected by the thousand: keep them quiet */
    virLogSetDefaultPriority(VIR_LOG_ERROR);
    ignore_value(virLogSetOutputs("4:file:/dev/null"));
    if (!(dir = g_dir_make_tmp("tandem-saveimagefuzz-XXXXXX", NULL)))
        abort();
    fuzzPath = g_build_filename(dir, "image", NULL);
    atexit(fuzzCleanup);
}

/* An image that opened: its XML and flags encode to a header that parses
 * back to the same values. */
static void
fuzzReencode(qemuSaveImage *img)
{
    g_autofree char *buf = NULL;
    size_t len = 0;
    qemuSaveImageHeader hdr;

    if (qemuSaveImageEncodeHeader(img->xml, img->header.flags,
                                  img->header.dataLen, &buf, &len) < 0)
        abort();
    if (qemuSaveImageParseHeader("re-encoded", buf, len,
                                 len + img->header.dataLen, &hdr) < 0)
        abort();
    if (hdr.flags != img->header.flags || hdr.dataLen != img->header.dataLen ||
        hdr.version != img->header.version || hdr.format != img->header.format ||
        hdr.dataOffset != len || strlen(img->xml) >= hdr.xmlLen)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool initialized;
    g_autoptr(qemuSaveImage) img = NULL;
    qemuSaveImageHeader hdr;
    int fd;

    if (!initialized) {
        fuzzInit();
        initialized = true;
    }

    /* from memory: the file size is the input's size */
    ignore_value(qemuSaveImageParseHeader("fuzz", (const char *) data, size,
                                          size, &hdr));
    virResetLastError();

    /* from a file, as restore reads it */
    if ((fd = open(fuzzPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        abort();
    if (safewrite(fd, data, size) != (ssize_t) size)
        abort();
    VIR_FORCE_CLOSE(fd);

    if ((fd = qemuSaveImageOpen(fuzzPath, &img)) >= 0) {
        if (!img || !img->xml || lseek(fd, 0, SEEK_CUR) != (off_t) img->header.dataOffset)
            abort();
        fuzzReencode(img);
        VIR_FORCE_CLOSE(fd);
    } else if (img) {
        abort();
    }
    virResetLastError();
    return 0;
}
