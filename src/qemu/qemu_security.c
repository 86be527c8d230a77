/*
 * qemu_security.c: DAC labelling: the files QEMU needs are handed to the
 * user and group QEMU runs as, and given back afterwards
 *
 * A privileged daemon runs QEMU as the qemu.conf user/group.  Before QEMU
 * starts, every file it opens by path (disk images and the backing files
 * the definition names, kernel, initrd, dtb, file outputs of character
 * devices) is chowned to that user; after QEMU is gone the file gets its
 * owner back.
 *
 * The owner before the first labelling is remembered on the file itself,
 * in the extended attribute QEMU_SECURITY_XATTR:
 *
 *     "UID:GID:REFS:BOOTID"
 *
 * REFS counts the labellings that hold the file (several domains, of this
 * daemon or of another one, may share a read-only image; a migration on
 * one host labels on the destination before the source lets go).  The
 * owner is restored when REFS drops to 0.  BOOTID is the kernel's boot id
 * when the record was written: a record from an earlier boot was left by
 * a domain that cannot be running any more, so its REFS is void but its
 * owner is still the one to restore.  Updates of a record happen under an
 * exclusive flock() on the file, which serializes daemons and threads
 * alike (QEMU's own image locks are fcntl locks and do not interact).
 *
 * Whether a domain was labelled is part of its status (priv->labelled), so
 * a daemon restarted while the domain runs restores what its predecessor
 * labelled.  Which files those are is computed from the live definition
 * both times; a medium change keeps it current.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "qemu_security.h"
#include "qemu_domain.h"

#include "storage_source_conf.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virstring.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_security");

#define QEMU_SECURITY_MODEL "dac"

/* One file QEMU opens by path. */
typedef struct _qemuSecurityItem qemuSecurityItem;
struct _qemuSecurityItem {
    const char *path;   /* borrowed from the definition */
    bool readonly;      /* QEMU only reads it */
    bool create;        /* an output: created (by the daemon) when missing */
};

/* The remembered owner of a labelled file. */
typedef struct _qemuSecurityRecord qemuSecurityRecord;
struct _qemuSecurityRecord {
    unsigned int uid;
    unsigned int gid;
    unsigned int refs;
};

/* ---------------------------------------------------------------------- */
/* The record on the file                                                 */
/* ---------------------------------------------------------------------- */

static gpointer
qemuSecurityReadBootId(gpointer data G_GNUC_UNUSED)
{
    g_autofree char *id = NULL;

    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &id, NULL, NULL))
        return g_strdup("unknown");
    return g_strdup(g_strstrip(id));
}

static const char *
qemuSecurityBootId(void)
{
    static GOnce once = G_ONCE_INIT;

    return g_once(&once, qemuSecurityReadBootId, NULL);
}

/* 1: @rec read from @fd's record; 0: the file has none; -1: errno set
 * (ENOTSUP: the file system keeps no such attributes). */
static int
qemuSecurityRecordRead(int fd, qemuSecurityRecord *rec)
{
    char buf[256];
    ssize_t len;
    g_auto(GStrv) fields = NULL;

    if ((len = fgetxattr(fd, QEMU_SECURITY_XATTR, buf, sizeof(buf) - 1)) < 0) {
        if (errno == ENODATA)
            return 0;
        return -1;
    }
    buf[len] = '\0';
    fields = g_strsplit(buf, ":", 4);
    if (g_strv_length(fields) != 4 ||
        virStrToLong_ui(fields[0], NULL, 10, &rec->uid) < 0 ||
        virStrToLong_ui(fields[1], NULL, 10, &rec->gid) < 0 ||
        virStrToLong_ui(fields[2], NULL, 10, &rec->refs) < 0) {
        VIR_WARN("ignoring a malformed %s attribute '%s'", QEMU_SECURITY_XATTR, buf);
        return 0;
    }
    if (STRNEQ(fields[3], qemuSecurityBootId())) {
        /* left by a domain of an earlier boot: nobody holds it now */
        VIR_DEBUG("%s record from boot %s: references void", QEMU_SECURITY_XATTR, fields[3]);
        rec->refs = 0;
    }
    return 1;
}

static int
qemuSecurityRecordWrite(int fd, const qemuSecurityRecord *rec)
{
    g_autofree char *value = g_strdup_printf("%u:%u:%u:%s", rec->uid, rec->gid,
                                             rec->refs, qemuSecurityBootId());

    return fsetxattr(fd, QEMU_SECURITY_XATTR, value, strlen(value), 0);
}

static bool
qemuSecurityErrnoUnsupported(int err)
{
    return err == ENOTSUP || err == EOPNOTSUPP;
}

/* @path opened for labelling, exclusively locked against other labellers.
 * -1 with errno set on failure. */
static int
qemuSecurityOpenLocked(const char *path, bool create)
{
    int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    int fd;

    if (create)
        flags |= O_CREAT;
    if ((fd = open(path, flags, 0600)) < 0)
        return -1;
    if (flock(fd, LOCK_EX) < 0) {
        int saved = errno;

        VIR_FORCE_CLOSE(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------------------------- */
/* One file                                                               */
/* ---------------------------------------------------------------------- */

/* Give @item to @uid:@gid.  1: labelled (restore it later); 0: left
 * alone (a read-only image on a read-only file system); -1: error
 * reported, nothing changed. */
static int
qemuSecurityLabelItem(const qemuSecurityItem *item, uid_t uid, gid_t gid)
{
    VIR_AUTOCLOSE fd = -1;
    struct stat sb;
    qemuSecurityRecord old = { 0 };
    qemuSecurityRecord rec = { 0 };
    bool remembered = true;
    int had;

    if ((fd = qemuSecurityOpenLocked(item->path, item->create)) < 0) {
        if (item->create)
            virReportSystemError(errno, _("cannot create output file '%s' for QEMU"),
                                 item->path);
        else
            virReportSystemError(errno, _("cannot open '%s' to give it to QEMU's user"),
                                 item->path);
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        virReportSystemError(errno, _("cannot stat '%s'"), item->path);
        return -1;
    }

    if ((had = qemuSecurityRecordRead(fd, &old)) < 0 &&
        !qemuSecurityErrnoUnsupported(errno)) {
        virReportSystemError(errno, _("cannot read the remembered owner of '%s'"),
                             item->path);
        return -1;
    }
    if (had > 0) {
        rec = old;
        rec.refs++;
    } else {
        rec.uid = sb.st_uid;
        rec.gid = sb.st_gid;
        rec.refs = 1;
    }

    /* remember first: a crash in between leaves a record, not a lost owner */
    if (had < 0 || qemuSecurityRecordWrite(fd, &rec) < 0) {
        if (had < 0 || qemuSecurityErrnoUnsupported(errno)) {
            VIR_WARN("the file system of '%s' cannot remember its owner (%u:%u): "
                     "it stays with QEMU's user after the domain stops",
                     item->path, (unsigned int) sb.st_uid, (unsigned int) sb.st_gid);
            remembered = false;
        } else if (errno == EROFS && item->readonly) {
            VIR_INFO("'%s' is on a read-only file system: left as it is", item->path);
            return 0;
        } else {
            virReportSystemError(errno, _("cannot remember the owner of '%s'"),
                                 item->path);
            return -1;
        }
    }

    if (fchown(fd, uid, gid) < 0) {
        int saved = errno;

        if (remembered) {
            if (had > 0 ? qemuSecurityRecordWrite(fd, &old) :
                          fremovexattr(fd, QEMU_SECURITY_XATTR) < 0)
                VIR_WARN("cannot undo the owner record of '%s': %s",
                         item->path, g_strerror(errno));
        }
        virReportSystemError(saved,
                             _("cannot give '%s' to QEMU's user and group %u:%u"),
                             item->path, (unsigned int) uid, (unsigned int) gid);
        return -1;
    }
    VIR_DEBUG("labelled '%s' %u:%u (owner %u:%u, references %u)", item->path,
              (unsigned int) uid, (unsigned int) gid, rec.uid, rec.gid, rec.refs);
    return 1;
}

/* Drop one labelling of @path; the last one gives the file back to its
 * remembered owner.  Problems are logged. */
static void
qemuSecurityRestorePath(const char *path)
{
    VIR_AUTOCLOSE fd = -1;
    qemuSecurityRecord rec = { 0 };
    int had;

    if ((fd = qemuSecurityOpenLocked(path, false)) < 0) {
        if (errno == ENOENT)
            VIR_DEBUG("'%s' is gone: no owner to restore", path);
        else
            VIR_WARN("cannot open '%s' to restore its owner: %s", path, g_strerror(errno));
        return;
    }
    if ((had = qemuSecurityRecordRead(fd, &rec)) <= 0) {
        if (had < 0 && !qemuSecurityErrnoUnsupported(errno))
            VIR_WARN("cannot read the remembered owner of '%s': %s", path, g_strerror(errno));
        else
            VIR_DEBUG("'%s' has no remembered owner", path);
        return;
    }

    if (rec.refs > 1) {
        rec.refs--;
        if (qemuSecurityRecordWrite(fd, &rec) < 0)
            VIR_WARN("cannot update the owner record of '%s': %s", path, g_strerror(errno));
        VIR_DEBUG("'%s' still used (%u references)", path, rec.refs);
        return;
    }

    if (fchown(fd, rec.uid, rec.gid) < 0) {
        VIR_WARN("cannot give '%s' back to %u:%u: %s", path, rec.uid, rec.gid,
                 g_strerror(errno));
        return;
    }
    if (fremovexattr(fd, QEMU_SECURITY_XATTR) < 0 && errno != ENODATA)
        VIR_WARN("cannot remove the owner record of '%s': %s", path, g_strerror(errno));
    VIR_DEBUG("gave '%s' back to %u:%u", path, rec.uid, rec.gid);
}

/* ---------------------------------------------------------------------- */
/* What a domain uses                                                     */
/* ---------------------------------------------------------------------- */

/* Does a per-device <seclabel> list allow relabelling for DAC? */
static bool
qemuSecurityDeviceRelabels(virSecurityDeviceLabelDef **labels, size_t nlabels)
{
    size_t i;

    for (i = 0; i < nlabels; i++) {
        if (labels[i]->model && STRNEQ(labels[i]->model, QEMU_SECURITY_MODEL))
            continue;
        if (!labels[i]->relabel)
            return false;
    }
    return true;
}

static void
qemuSecurityAddItem(GArray *items, const char *path, bool readonly, bool create)
{
    qemuSecurityItem item = { path, readonly, create };

    if (path && *path)
        g_array_append_val(items, item);
}

/* The medium @src of @disk and the backing files the definition names. */
static void
qemuSecurityCollectDisk(GArray *items, virDomainDiskDef *disk, virStorageSource *src)
{
    virStorageSource *n;
    bool top = true;

    for (n = src; n && !virStorageSourceIsEmpty(n); n = n->backingStore) {
        if ((n->type == VIR_STORAGE_TYPE_FILE || n->type == VIR_STORAGE_TYPE_BLOCK) &&
            qemuSecurityDeviceRelabels(n->seclabels, n->nseclabels)) {
            qemuSecurityAddItem(items, n->path,
                                !top || n->readonly ||
                                disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM,
                                false);
        }
        top = false;
    }
}

static void
qemuSecurityCollectChr(GArray *items, virDomainChrDef *chr)
{
    virDomainChrSourceDef *src = chr->source;

    if (!src || !qemuSecurityDeviceRelabels(src->seclabels, src->nseclabels))
        return;
    if (src->type == VIR_DOMAIN_CHR_TYPE_FILE)
        qemuSecurityAddItem(items, src->data.file.path, false, true);
    qemuSecurityAddItem(items, src->logfile, false, true);
}

/* Every file of @def that QEMU opens by path, in labelling order. */
static GArray *
qemuSecurityCollect(virDomainDef *def)
{
    GArray *items = g_array_new(FALSE, FALSE, sizeof(qemuSecurityItem));
    size_t i;

    qemuSecurityAddItem(items, def->os.kernel, true, false);
    qemuSecurityAddItem(items, def->os.initrd, true, false);
    qemuSecurityAddItem(items, def->os.dtb, true, false);
    for (i = 0; i < def->ndisks; i++)
        qemuSecurityCollectDisk(items, def->disks[i], def->disks[i]->src);
    for (i = 0; i < def->nserials; i++)
        qemuSecurityCollectChr(items, def->serials[i]);
    for (i = 0; i < def->nparallels; i++)
        qemuSecurityCollectChr(items, def->parallels[i]);
    for (i = 0; i < def->nconsoles; i++)
        qemuSecurityCollectChr(items, def->consoles[i]);
    for (i = 0; i < def->nchannels; i++)
        qemuSecurityCollectChr(items, def->channels[i]);
    return items;
}

/* Label @items in order; on error undo what was done. */
static int
qemuSecurityLabelItems(GArray *items, uid_t uid, gid_t gid)
{
    g_autofree bool *done = g_new0(bool, items->len + 1);
    size_t i;
    int rc;

    for (i = 0; i < items->len; i++) {
        if ((rc = qemuSecurityLabelItem(&g_array_index(items, qemuSecurityItem, i),
                                        uid, gid)) < 0)
            goto rollback;
        done[i] = rc > 0;
    }
    return 0;

 rollback:
    {
        virErrorPtr err = NULL;

        virErrorPreserveLast(&err);
        while (i-- > 0) {
            if (done[i])
                qemuSecurityRestorePath(g_array_index(items, qemuSecurityItem, i).path);
        }
        virErrorRestore(&err);
    }
    return -1;
}

static void
qemuSecurityRestoreItems(GArray *items)
{
    size_t i = items->len;

    while (i-- > 0)
        qemuSecurityRestorePath(g_array_index(items, qemuSecurityItem, i).path);
}

/* The user and group QEMU of a domain runs as: qemu.conf's when
 * privileged, the daemon's own otherwise. */
static int
qemuSecurityGetQEMUUser(virQEMUDriver *driver, uid_t *uid, gid_t *gid)
{
    if (qemuDriverGetQEMUUser(driver, uid, gid) < 0)
        return -1;
    if (*uid == (uid_t) -1)
        *uid = geteuid();
    if (*gid == (gid_t) -1)
        *gid = getegid();
    return 0;
}

/* Domain <seclabel>s of the DAC model: a dynamic one gets the label it
 * stands for (the status file needs one), and any that turns relabelling
 * off is reported by the return value (false). */
static bool
qemuSecurityPrepareDomainLabels(virDomainDef *def, uid_t uid, gid_t gid)
{
    bool relabel = true;
    size_t i;

    for (i = 0; i < def->nseclabels; i++) {
        virSecurityLabelDef *sl = def->seclabels[i];

        if (sl->model && STRNEQ(sl->model, QEMU_SECURITY_MODEL))
            continue;
        if (sl->type == VIR_DOMAIN_SECLABEL_DYNAMIC && !sl->label)
            sl->label = g_strdup_printf("+%u:+%u", (unsigned int) uid, (unsigned int) gid);
        if (sl->type == VIR_DOMAIN_SECLABEL_NONE || !sl->relabel)
            relabel = false;
    }
    return relabel;
}

/* 1: @vm's files are to be labelled for @uid:@gid; 0: not; -1: error. */
static int
qemuSecurityDomainOwner(virQEMUDriver *driver, virDomainObj *vm, uid_t *uid, gid_t *gid)
{
    bool relabel;

    if (qemuSecurityGetQEMUUser(driver, uid, gid) < 0)
        return -1;
    relabel = qemuSecurityPrepareDomainLabels(vm->def, *uid, *gid);
    if (!driver->privileged)
        return 0;
    if (!driver->config->dynamicOwnership) {
        VIR_DEBUG("dynamic_ownership = 0: files of '%s' left as they are", vm->def->name);
        return 0;
    }
    if (!relabel) {
        VIR_DEBUG("domain '%s' turns DAC relabelling off", vm->def->name);
        return 0;
    }
    if (*uid == geteuid() && *gid == getegid())
        return 0;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Entry points                                                           */
/* ---------------------------------------------------------------------- */

int
qemuSecuritySetAllLabel(virQEMUDriver *driver, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GArray) items = NULL;
    uid_t uid;
    gid_t gid;
    int rc;

    priv->labelled = false;
    if ((rc = qemuSecurityDomainOwner(driver, vm, &uid, &gid)) <= 0)
        return rc;

    items = qemuSecurityCollect(vm->def);
    VIR_DEBUG("labelling %u files of '%s' for %u:%u", items->len, vm->def->name,
              (unsigned int) uid, (unsigned int) gid);
    if (qemuSecurityLabelItems(items, uid, gid) < 0)
        return -1;
    priv->labelled = true;
    return 0;
}

void
qemuSecurityRestoreAllLabel(virQEMUDriver *driver G_GNUC_UNUSED, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GArray) items = NULL;

    if (!priv->labelled)
        return;
    priv->labelled = false;
    items = qemuSecurityCollect(vm->def);
    VIR_DEBUG("restoring the owners of %u files of '%s'", items->len, vm->def->name);
    qemuSecurityRestoreItems(items);
}

int
qemuSecuritySetDiskLabel(virQEMUDriver *driver, virDomainObj *vm,
                         virDomainDiskDef *disk, virStorageSource *src)
{
    g_autoptr(GArray) items = NULL;
    uid_t uid;
    gid_t gid;

    if (!QEMU_DOMAIN_PRIVATE(vm)->labelled)
        return 0;
    if (qemuSecurityGetQEMUUser(driver, &uid, &gid) < 0)
        return -1;
    items = g_array_new(FALSE, FALSE, sizeof(qemuSecurityItem));
    qemuSecurityCollectDisk(items, disk, src);
    return qemuSecurityLabelItems(items, uid, gid);
}

void
qemuSecurityRestoreDiskLabel(virQEMUDriver *driver G_GNUC_UNUSED, virDomainObj *vm,
                             virDomainDiskDef *disk, virStorageSource *src)
{
    g_autoptr(GArray) items = NULL;

    if (!QEMU_DOMAIN_PRIVATE(vm)->labelled)
        return;
    items = g_array_new(FALSE, FALSE, sizeof(qemuSecurityItem));
    qemuSecurityCollectDisk(items, disk, src);
    qemuSecurityRestoreItems(items);
}
