/*
 * qemu_saveimage.h: Tandem's save image format (header, domain XML, QEMU's
 * migration stream) and the threads that move the stream between QEMU and
 * the image
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Layout of a save image, version 1 (every integer little-endian; also
 * described in docs/save-image.txt):
 *
 *   offset  size  field
 *        0    16  magic "TANDEM-SAVEIMAGE" (no terminating NUL)
 *       16     4  version: 1
 *       20     4  header length: 64 (where the XML begins)
 *       24     4  XML length: bytes of the XML region, including at least
 *                 one terminating NUL (1 ... QEMU_SAVE_IMAGE_XML_MAX)
 *       28     4  flags: bit 0 QEMU_SAVE_IMAGE_FLAG_RUNNING (the guest is to
 *                 run after restore unless told otherwise); other bits 0
 *       32     4  data format: 0 = raw QEMU migration stream
 *       36     4  reserved, 0
 *       40     8  data offset: where QEMU's stream begins; a multiple of
 *                 4096, at least header length + XML length
 *       48     8  data length: bytes of QEMU's stream.  0 while the image
 *                 is being written: a writer records it last, after the
 *                 stream is complete
 *       56     8  reserved, 0
 *       64     .  the domain XML (NUL-terminated), zero padding up to the
 *                 data offset, then QEMU's migration stream
 *
 * Images are written to a temporary file next to their final path, synced
 * and renamed into place: a reader never sees a half-written image.
 *
 * Nothing here knows about domains, jobs or locks: these functions do file
 * and socket I/O and must be called WITHOUT the domain lock held.
 */
#pragma once

#include "internal.h"

#define QEMU_SAVE_IMAGE_MAGIC "TANDEM-SAVEIMAGE"
#define QEMU_SAVE_IMAGE_MAGIC_LEN 16
#define QEMU_SAVE_IMAGE_VERSION 1
#define QEMU_SAVE_IMAGE_HEADER_LEN 64
#define QEMU_SAVE_IMAGE_ALIGN 4096
/* Largest XML region a reader accepts (a corrupt length is refused before
 * anything is allocated for it). */
#define QEMU_SAVE_IMAGE_XML_MAX (16 * 1024 * 1024)

typedef enum {
    QEMU_SAVE_IMAGE_FLAG_RUNNING = (1 << 0),

    QEMU_SAVE_IMAGE_FLAG_ALL = QEMU_SAVE_IMAGE_FLAG_RUNNING,
} qemuSaveImageFlags;

typedef enum {
    QEMU_SAVE_IMAGE_FORMAT_RAW = 0,

    QEMU_SAVE_IMAGE_FORMAT_LAST
} qemuSaveImageDataFormat;

typedef struct _qemuSaveImageHeader qemuSaveImageHeader;
struct _qemuSaveImageHeader {
    unsigned int version;
    unsigned int headerLen;
    unsigned int xmlLen;
    unsigned int flags;          /* qemuSaveImageFlags */
    unsigned int format;         /* qemuSaveImageDataFormat */
    unsigned long long dataOffset;
    unsigned long long dataLen;
};

typedef struct _qemuSaveImage qemuSaveImage;
struct _qemuSaveImage {
    char *path;
    qemuSaveImageHeader header;
    char *xml;                   /* the domain XML, NUL-terminated */
};

void qemuSaveImageFree(qemuSaveImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuSaveImage, qemuSaveImageFree);

/* The first @len bytes of an image: header, @xml, padding up to the data
 * offset (returned in *@len).  @dataLen may be 0 (image being written). */
int qemuSaveImageEncodeHeader(const char *xml,
                              unsigned int flags,
                              unsigned long long dataLen,
                              char **buf,
                              size_t *len);

/* Validates the fixed 64-byte header in @buf (@len bytes available) of the
 * file @path whose size is @fileSize, into @hdr.  Errors (naming @path):
 * VIR_ERR_OPERATION_FAILED for a foreign, truncated, incomplete or corrupt
 * file, VIR_ERR_OPERATION_INVALID for a version or data format this Tandem
 * does not support. */
int qemuSaveImageParseHeader(const char *path,
                             const char *buf,
                             size_t len,
                             unsigned long long fileSize,
                             qemuSaveImageHeader *hdr);

/* Opens @path read-only and validates it (header, XML, size): returns the
 * file descriptor and the image in *@img, or -1 with an error naming
 * @path.  The file is never modified. */
int qemuSaveImageOpen(const char *path, qemuSaveImage **img);

/* Writing an image: a temporary file next to @path (mode 0600) holding the
 * header (data length 0) and @xml; returns its descriptor, its path in
 * *@tmpPath and where QEMU's stream goes in *@dataOffset. */
int qemuSaveImageCreate(const char *path,
                        const char *xml,
                        unsigned int flags,
                        char **tmpPath,
                        unsigned long long *dataOffset);
/* Records @dataLen in the header of the temporary file, syncs it and renames
 * it to @path (then syncs the directory).  Closes *@fd; on failure removes
 * the temporary file: @path is then as it was. */
int qemuSaveImageCommit(int *fd,
                        const char *tmpPath,
                        const char *path,
                        unsigned long long dataLen);
/* Closes *@fd and removes the temporary file (no error reported). */
void qemuSaveImageDiscard(int *fd, const char *tmpPath);

/* save-image-define: replaces the XML and the flags of the image at @path
 * by writing a complete new image next to it and renaming it into place.
 * @path is left as it was on any failure. */
int qemuSaveImageRewrite(const char *path, const char *xml, unsigned int flags);

/*
 * The migration stream between QEMU and an image, moved by a thread of its
 * own (it never takes a domain lock).
 */
typedef struct _qemuSaveImageStream qemuSaveImageStream;

/* Save: listens on the unix socket @sockPath (chowned to @uid/@gid, mode
 * 0600), accepts QEMU's one connection and appends what it reads to @fd
 * from @offset on, until EOF. */
qemuSaveImageStream *qemuSaveImageStreamListen(const char *sockPath,
                                               uid_t uid,
                                               gid_t gid,
                                               int fd,
                                               unsigned long long offset);
/* Restore: connects to the unix socket @sockPath QEMU listens on and
 * writes the @len bytes of @fd at @offset to it, then closes. */
qemuSaveImageStream *qemuSaveImageStreamFeed(const char *sockPath,
                                             int fd,
                                             unsigned long long offset,
                                             unsigned long long len);
/* Bytes moved so far (any thread). */
unsigned long long qemuSaveImageStreamBytes(qemuSaveImageStream *stream);
/* Whether the thread has ended, and whether it failed (any thread). */
bool qemuSaveImageStreamDone(qemuSaveImageStream *stream, bool *failed);
/* Waits up to @timeoutMs for the thread to end by itself (0: do not wait),
 * then stops it and joins it.  Returns 0 when the stream was moved
 * completely (EOF after data on save; every byte on restore), -1 with the
 * reason reported otherwise.  Blocks: no domain lock may be held. */
int qemuSaveImageStreamFinish(qemuSaveImageStream *stream,
                              unsigned int timeoutMs);
/* Stops the thread if it still runs, removes the socket, frees. */
void qemuSaveImageStreamFree(qemuSaveImageStream *stream);
