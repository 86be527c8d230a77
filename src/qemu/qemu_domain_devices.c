/*
 * qemu_domain_devices.c: device-facing APIs (console, screenshot, send-key, removable media, display passwords)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_domain_devices.h"
#include "qemu_conf.h"
#include "qemu_capabilities.h"
#include "qemu_monitor_json.h"
#include "qemu_security.h"

#include "datatypes.h"
#include "domain_event.h"
#include "viraccessapicheck.h"
#include "virerror.h"
#include "virfdstream.h"
#include "virfile.h"
#include "virkeycode.h"
#include "virlog.h"
#include "virstring.h"
#include "viruuid.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_domain_devices");

/* How long a change of media waits for the guest to open a locked tray
 * (without VIR_DOMAIN_DEVICE_MODIFY_FORCE), and how often it looks. */
#define QEMU_DEVICES_TRAY_WAIT_MS 10000
#define QEMU_DEVICES_TRAY_POLL_MS 200

/* QEMU accepts screendump's "format" argument (png) since 7.1. */
#define QEMU_DEVICES_SCREENDUMP_FORMAT_VERSION 7001000


/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */


/* Enters the monitor with the start/adopted async job's nested job, or
 * with the sync job the caller holds. */
static int
qemuDevicesEnterMonitor(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    if (asyncJob != QEMU_ASYNC_JOB_NONE)
        return qemuDomainObjEnterMonitorAsync(vm, asyncJob);
    return qemuDomainObjEnterMonitor(vm);
}


/* ---------------------------------------------------------------------- */
/* Console streams: at most one client per pty                            */
/* ---------------------------------------------------------------------- */

/* An open console: the stream a client reads the pty through.  The table
 * maps a pty path to its entry; pty paths are unique on the host while
 * their QEMU runs.  Protected by qemuDevicesConsoleLock, a leaf lock: no
 * stream function is called while it is held (a stream calls our close
 * callback with its own lock held). */
typedef struct _qemuDevicesConsole qemuDevicesConsole;
struct _qemuDevicesConsole {
    virStreamPtr st;            /* a reference */
    unsigned long long id;      /* tells this open from a later one */
};

typedef struct _qemuDevicesConsoleCbData qemuDevicesConsoleCbData;
struct _qemuDevicesConsoleCbData {
    char *path;
    unsigned long long id;
};

static GMutex qemuDevicesConsoleLock;
static GHashTable *qemuDevicesConsoles;     /* path -> qemuDevicesConsole */
static unsigned long long qemuDevicesConsoleLastId;


static void
qemuDevicesConsoleFree(qemuDevicesConsole *con)
{
    if (!con)
        return;
    virObjectUnref(con->st);
    g_free(con);
}


/* Takes the entry of @path out of the table (with its stream reference).
 * Lock held. */
static qemuDevicesConsole *
qemuDevicesConsoleSteal_locked(const char *path)
{
    gpointer key = NULL;
    gpointer value = NULL;

    if (!qemuDevicesConsoles ||
        !g_hash_table_lookup_extended(qemuDevicesConsoles, path, &key, &value))
        return NULL;
    g_hash_table_steal(qemuDevicesConsoles, path);
    g_free(key);
    return value;
}


/* Ends the session of a console taken out of the table: its client gets
 * an error; our close callback then finds nothing to remove. */
static void
qemuDevicesConsoleAbort(qemuDevicesConsole *con)
{
    virErrorPtr err = NULL;

    if (!con)
        return;
    virErrorPreserveLast(&err);
    ignore_value(virStreamAbort(con->st));
    virErrorRestore(&err);
    qemuDevicesConsoleFree(con);
}


static void
qemuDevicesConsoleCbDataFree(void *opaque)
{
    qemuDevicesConsoleCbData *data = opaque;

    g_free(data->path);
    g_free(data);
}


/* The stream of @data was closed (by its client, or aborted): forget it,
 * unless the entry was replaced by a forced open meanwhile. */
static void
qemuDevicesConsoleClosed(virStreamPtr st G_GNUC_UNUSED, void *opaque)
{
    qemuDevicesConsoleCbData *data = opaque;
    qemuDevicesConsole *con = NULL;
    qemuDevicesConsole *cur;

    g_mutex_lock(&qemuDevicesConsoleLock);
    if (qemuDevicesConsoles &&
        (cur = g_hash_table_lookup(qemuDevicesConsoles, data->path)) &&
        cur->id == data->id)
        con = qemuDevicesConsoleSteal_locked(data->path);
    g_mutex_unlock(&qemuDevicesConsoleLock);

    /* the closing stream still holds a reference of its own */
    qemuDevicesConsoleFree(con);
}


/* Opens the pty @path as @st.  Returns 1 (nothing done) when another
 * client has it open and !@force, 0 on success, -1 on error.  With @force
 * the other client's stream is aborted. */
static int
qemuDevicesConsoleOpen(const char *path, virStreamPtr st, bool force)
{
    qemuDevicesConsole *old = NULL;
    qemuDevicesConsole *con;
    qemuDevicesConsoleCbData *data;
    unsigned long long id;

    g_mutex_lock(&qemuDevicesConsoleLock);
    if (!qemuDevicesConsoles)
        qemuDevicesConsoles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                    (GDestroyNotify) qemuDevicesConsoleFree);
    if (g_hash_table_contains(qemuDevicesConsoles, path)) {
        if (!force) {
            g_mutex_unlock(&qemuDevicesConsoleLock);
            return 1;
        }
        old = qemuDevicesConsoleSteal_locked(path);
    }
    id = ++qemuDevicesConsoleLastId;
    con = g_new0(qemuDevicesConsole, 1);
    con->st = virObjectRef(st);
    con->id = id;
    g_hash_table_insert(qemuDevicesConsoles, g_strdup(path), con);
    g_mutex_unlock(&qemuDevicesConsoleLock);

    /* outside the lock: aborting calls the old stream's close callback */
    if (old) {
        VIR_DEBUG("console %s: taking over from another client", path);
        qemuDevicesConsoleAbort(old);
    }

    data = g_new0(qemuDevicesConsoleCbData, 1);
    data->path = g_strdup(path);
    data->id = id;
    if (virFDStreamOpenPTY(st, path, 0, 0, O_RDWR) < 0) {
        qemuDevicesConsoleClosed(st, data);
        qemuDevicesConsoleCbDataFree(data);
        return -1;
    }
    virFDStreamSetInternalCloseCb(st, qemuDevicesConsoleClosed, data,
                                  qemuDevicesConsoleCbDataFree);
    return 0;
}


/* A new QEMU got the pty @path: a session left over on it belonged to a
 * domain that is gone. */
static void
qemuDevicesConsoleForget(const char *path)
{
    qemuDevicesConsole *old;

    g_mutex_lock(&qemuDevicesConsoleLock);
    old = qemuDevicesConsoleSteal_locked(path);
    g_mutex_unlock(&qemuDevicesConsoleLock);
    qemuDevicesConsoleAbort(old);
}


/* ---------------------------------------------------------------------- */
/* Setup once the monitor is up                                           */
/* ---------------------------------------------------------------------- */

/* The pty QEMU allocated for @chr, written into its source. */
static void
qemuDevicesChrSetPty(virDomainChrDef *chr, GHashTable *ptys)
{
    g_autofree char *label = NULL;
    const char *path;

    if (!chr->source || chr->source->type != VIR_DOMAIN_CHR_TYPE_PTY ||
        !chr->info.alias)
        return;
    label = g_strdup_printf("char%s", chr->info.alias);
    if (!(path = g_hash_table_lookup(ptys, label)))
        return;
    if (STRNEQ_NULLABLE(chr->source->data.file.path, path)) {
        qemuDevicesConsoleForget(path);
        g_free(chr->source->data.file.path);
        chr->source->data.file.path = g_strdup(path);
    }
}


static void
qemuDevicesAssignPtys(virDomainDef *def, GHashTable *ptys)
{
    size_t i;

    for (i = 0; i < def->nserials; i++)
        qemuDevicesChrSetPty(def->serials[i], ptys);
    for (i = 0; i < def->nparallels; i++)
        qemuDevicesChrSetPty(def->parallels[i], ptys);
    for (i = 0; i < def->nchannels; i++)
        qemuDevicesChrSetPty(def->channels[i], ptys);
    for (i = 0; i < def->nconsoles; i++) {
        virDomainChrDef *con = def->consoles[i];

        /* the first console may be the first serial port itself */
        if (i == 0 && def->nserials > 0 &&
            con->targetType == VIR_DOMAIN_CHR_CONSOLE_TARGET_TYPE_SERIAL &&
            con->source && def->serials[0]->source &&
            con->source->type == VIR_DOMAIN_CHR_TYPE_PTY &&
            def->serials[0]->source->type == VIR_DOMAIN_CHR_TYPE_PTY) {
            g_free(con->source->data.file.path);
            con->source->data.file.path = g_strdup(def->serials[0]->source->data.file.path);
            continue;
        }
        qemuDevicesChrSetPty(con, ptys);
    }
}


/* Displays listening on an address without naming it listen where the
 * command line put them (qemu.conf's vnc_listen/spice_listen, else
 * 127.0.0.1): the live definition says so, for virsh domdisplay. */
static int
qemuDevicesGraphicsSetupListen(virDomainDef *def)
{
    qemuConfig *cfg = qemu_driver->config;
    size_t i;

    for (i = 0; i < def->ngraphics; i++) {
        virDomainGraphicsDef *gr = def->graphics[i];
        const char *dflt = NULL;

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC)
            dflt = cfg->vncListen;
        else if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE)
            dflt = cfg->spiceListen;
        else
            continue;
        if (!dflt)
            dflt = "127.0.0.1";

        if (gr->nListens == 0) {
            if (virDomainGraphicsListenAppendAddress(gr, dflt) < 0)
                return -1;
        } else if (gr->listens[0].type == VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_ADDRESS &&
                   !gr->listens[0].address) {
            gr->listens[0].address = g_strdup(dflt);
        }
    }
    return 0;
}


typedef struct _qemuDevicesPassword qemuDevicesPassword;
struct _qemuDevicesPassword {
    const char *protocol;
    char *passwd;
    const char *connected;
    char *expire;
};

static void
qemuDevicesPasswordClear(qemuDevicesPassword *pw)
{
    g_free(pw->passwd);
    g_free(pw->expire);
}


static const char *
qemuDevicesPasswordConnected(int connected)
{
    switch ((virDomainGraphicsAuthConnectedType) connected) {
    case VIR_DOMAIN_GRAPHICS_AUTH_CONNECTED_FAIL:
        return "fail";
    case VIR_DOMAIN_GRAPHICS_AUTH_CONNECTED_DISCONNECT:
        return "disconnect";
    case VIR_DOMAIN_GRAPHICS_AUTH_CONNECTED_KEEP:
        return "keep";
    case VIR_DOMAIN_GRAPHICS_AUTH_CONNECTED_DEFAULT:
    case VIR_DOMAIN_GRAPHICS_AUTH_CONNECTED_LAST:
        break;
    }
    return NULL;
}


/* The passwords of @def's displays, copied out so that they can be set
 * with the domain unlocked. */
static GArray *
qemuDevicesCollectPasswords(virDomainDef *def)
{
    GArray *pws = g_array_new(FALSE, TRUE, sizeof(qemuDevicesPassword));
    size_t i;

    g_array_set_clear_func(pws, (GDestroyNotify) qemuDevicesPasswordClear);
    for (i = 0; i < def->ngraphics; i++) {
        virDomainGraphicsDef *gr = def->graphics[i];
        virDomainGraphicsAuthDef *auth;
        qemuDevicesPassword pw = { 0 };

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC) {
            auth = &gr->data.vnc.auth;
            pw.protocol = "vnc";
        } else if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE) {
            auth = &gr->data.spice.auth;
            pw.protocol = "spice";
            pw.connected = qemuDevicesPasswordConnected(auth->connected);
        } else {
            continue;
        }
        if (!auth->passwd)
            continue;
        pw.passwd = g_strdup(auth->passwd);
        if (auth->expires)
            pw.expire = g_strdup_printf("%lld", (long long) auth->validTo);
        else
            pw.expire = g_strdup("never");
        g_array_append_val(pws, pw);
    }
    return pws;
}


int
qemuDomainDevicesSetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(GHashTable) ptys = NULL;
    g_autoptr(GArray) pws = NULL;
    qemuMonitor *mon;
    size_t i;
    int rc;

    if (qemuDevicesGraphicsSetupListen(vm->def) < 0)
        return -1;
    pws = qemuDevicesCollectPasswords(vm->def);

    mon = priv->mon;
    if (qemuDevicesEnterMonitor(vm, asyncJob) < 0)
        return -1;
    rc = qemuMonitorJSONQueryChardevPtys(mon, &ptys);
    for (i = 0; rc == 0 && i < pws->len; i++) {
        qemuDevicesPassword *pw = &g_array_index(pws, qemuDevicesPassword, i);

        rc = qemuMonitorJSONSetPassword(mon, pw->protocol, pw->passwd, pw->connected);
        if (rc == 0)
            rc = qemuMonitorJSONExpirePassword(mon, pw->protocol, pw->expire);
    }
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;

    qemuDevicesAssignPtys(vm->def, ptys);
    return 0;
}


/* ---------------------------------------------------------------------- */
/* Events                                                                 */
/* ---------------------------------------------------------------------- */

bool
qemuDomainDevicesQdevMatches(const char *qdev, const char *alias)
{
    const char *rest;

    if (!qdev || !alias)
        return false;
    if (STREQ(qdev, alias))
        return true;
    if (!(rest = STRSKIP(qdev, "/machine/peripheral/")) ||
        !STRPREFIX(rest, alias))
        return false;
    rest += strlen(alias);
    return *rest == '\0' || *rest == '/';
}


static virDomainDiskDef *
qemuDevicesDiskByQdev(virDomainDef *def, const char *qdev)
{
    size_t i;

    for (i = 0; i < def->ndisks; i++) {
        if (qemuDomainDevicesQdevMatches(qdev, def->disks[i]->info.alias))
            return def->disks[i];
    }
    return NULL;
}


void
qemuDomainDevicesHandleEvent(virDomainObj *vm,
                             const char *event,
                             tdmJSONValue *data)
{
    if (!virDomainObjIsActive(vm) || !data)
        return;

    if (STREQ(event, "DEVICE_TRAY_MOVED")) {
        const char *id = tdmJSONValueObjectGetString(data, "id");
        virDomainDiskDef *disk;
        bool open;

        if (tdmJSONValueObjectGetBoolean(data, "tray-open", &open) < 0 ||
            !(disk = qemuDevicesDiskByQdev(vm->def, id)))
            return;
        disk->tray_status = open ? VIR_DOMAIN_DISK_TRAY_OPEN : VIR_DOMAIN_DISK_TRAY_CLOSED;
        virObjectEventStateQueue(qemu_driver->domainEventState,
                                 virDomainEventTrayChangeNewFromObj(vm, disk->info.alias,
                                     open ? VIR_DOMAIN_EVENT_TRAY_CHANGE_OPEN
                                          : VIR_DOMAIN_EVENT_TRAY_CHANGE_CLOSE));
    }
}


/* ---------------------------------------------------------------------- */
/* virsh console                                                          */
/* ---------------------------------------------------------------------- */

/* libvirt's parser turns a console that stands for serials[0]
 * (<console><target type='serial'/>) into a stub without a source and
 * without a port of its own: the device to open is that serial port (or
 * the serial port with the console's target port, when it has one). */
static virDomainChrDef *
qemuDevicesConsoleResolve(virDomainDef *def, virDomainChrDef *chr)
{
    size_t i;

    if (chr->deviceType != VIR_DOMAIN_CHR_DEVICE_TYPE_CONSOLE ||
        chr->targetType != VIR_DOMAIN_CHR_CONSOLE_TARGET_TYPE_SERIAL ||
        def->nserials == 0)
        return chr;
    if (chr->target.port < 0)
        return def->serials[0];
    for (i = 0; i < def->nserials; i++) {
        if (def->serials[i]->target.port == chr->target.port)
            return def->serials[i];
    }
    return chr;
}

static virDomainChrDef *
qemuDevicesFindConsole(virDomainDef *def, const char *devname)
{
    size_t i;

    if (!devname) {
        if (def->nconsoles)
            return qemuDevicesConsoleResolve(def, def->consoles[0]);
        if (def->nserials)
            return def->serials[0];
        return NULL;
    }
    for (i = 0; i < def->nconsoles; i++) {
        if (STREQ_NULLABLE(def->consoles[i]->info.alias, devname))
            return qemuDevicesConsoleResolve(def, def->consoles[i]);
    }
    for (i = 0; i < def->nserials; i++) {
        if (STREQ_NULLABLE(def->serials[i]->info.alias, devname))
            return def->serials[i];
    }
    for (i = 0; i < def->nparallels; i++) {
        if (STREQ_NULLABLE(def->parallels[i]->info.alias, devname))
            return def->parallels[i];
    }
    return NULL;
}


static int
qemuDomainOpenConsole(virDomainPtr dom,
                      const char *devname,
                      virStreamPtr st,
                      unsigned int flags)
{
    virDomainObj *vm;
    virDomainChrDef *chr;
    g_autofree char *path = NULL;
    int rc;

    virCheckFlags(VIR_DOMAIN_CONSOLE_SAFE | VIR_DOMAIN_CONSOLE_FORCE, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainOpenConsoleEnsureACL(dom->conn, vm->def) < 0 ||
        virDomainObjCheckActive(vm) < 0)
        goto error;

    if (!(chr = qemuDevicesFindConsole(vm->def, devname))) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot find character device %s"), NULLSTR(devname));
        goto error;
    }
    if (!chr->source || chr->source->type != VIR_DOMAIN_CHR_TYPE_PTY) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("character device %s is not using a PTY"),
                       devname ? devname : NULLSTR(chr->info.alias));
        goto error;
    }
    if (!chr->source->data.file.path) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("PTY device is not yet assigned"));
        goto error;
    }
    path = g_strdup(chr->source->data.file.path);
    virDomainObjEndAPI(&vm);

    /* the pty is opened with the domain unlocked */
    if ((rc = qemuDevicesConsoleOpen(path, st, !!(flags & VIR_DOMAIN_CONSOLE_FORCE))) == 1) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("Active console session exists for this domain"));
        return -1;
    }
    return rc;

 error:
    virDomainObjEndAPI(&vm);
    return -1;
}


/* ---------------------------------------------------------------------- */
/* virsh screenshot                                                       */
/* ---------------------------------------------------------------------- */

static char *
qemuDomainScreenshot(virDomainPtr dom,
                     virStreamPtr st,
                     unsigned int screen,
                     unsigned int flags)
{
    virDomainObj *vm;
    qemuDomainObjPrivate *priv;
    g_autoptr(qemuCaps) qcaps = NULL;
    g_autofree char *tmp = NULL;
    g_autofree char *videoAlias = NULL;
    const char *format = NULL;
    qemuMonitor *mon;
    int head = -1;
    int fd = -1;
    struct stat sb;
    char *ret = NULL;
    size_t i;
    int rc;

    virCheckFlags(0, NULL);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return NULL;
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainScreenshotEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto endjob;

    if (vm->def->nvideos == 0) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("no screens to take screenshot from"));
        goto endjob;
    }
    if (screen) {
        unsigned int left = screen;

        for (i = 0; i < vm->def->nvideos; i++) {
            virDomainVideoDef *video = vm->def->videos[i];
            unsigned int heads = video->heads ? video->heads : 1;

            if (left < heads) {
                videoAlias = g_strdup(video->info.alias);
                head = left;
                break;
            }
            left -= heads;
        }
        if (i == vm->def->nvideos) {
            virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                           _("no such screen ID"));
            goto endjob;
        }
    }

    if ((qcaps = qemuDriverGetQEMUCapsForBinary(qemu_driver, vm->def->emulator)) &&
        qcaps->version >= QEMU_DEVICES_SCREENDUMP_FORMAT_VERSION)
        format = "png";
    virResetLastError();

    /* a file of our own in the domain's private directory, which QEMU
     * (running as its own user) may write */
    tmp = g_strdup_printf("%s/qemu.screendump.XXXXXX", priv->libDir);
    if ((fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, S_IRUSR | S_IWUSR)) < 0) {
        virReportSystemError(errno, _("cannot create a temporary file in '%s'"),
                             priv->libDir);
        g_clear_pointer(&tmp, g_free);
        goto endjob;
    }
    if (stat(priv->libDir, &sb) < 0 ||
        fchown(fd, sb.st_uid, sb.st_gid) < 0) {
        virReportSystemError(errno, _("cannot hand '%s' over to QEMU"), tmp);
        goto endjob;
    }

    mon = priv->mon;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONScreendump(mon, videoAlias, head, format, tmp);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;

    if (virFDStreamOpenFile(st, tmp, 0, 0, O_RDONLY) < 0)
        goto endjob;
    ret = g_strdup(format ? "image/png" : "image/x-portable-pixmap");

 endjob:
    VIR_FORCE_CLOSE(fd);
    if (tmp)
        unlink(tmp);
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* virsh send-key                                                         */
/* ---------------------------------------------------------------------- */

static int
qemuDomainSendKey(virDomainPtr dom,
                  unsigned int codeset,
                  unsigned int holdtime,
                  unsigned int *keycodes,
                  int nkeycodes,
                  unsigned int flags)
{
    virDomainObj *vm;
    g_autofree unsigned int *qnums = NULL;
    qemuMonitor *mon;
    int ret = -1;
    int rc;
    int i;

    virCheckFlags(0, -1);

    if (codeset >= VIR_KEYCODE_SET_LAST) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("unsupported keycode set %u"), codeset);
        return -1;
    }
    if (nkeycodes <= 0 || nkeycodes > VIR_DOMAIN_SEND_KEY_MAX_KEYS) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("between 1 and %d keycodes are needed, not %d"),
                       VIR_DOMAIN_SEND_KEY_MAX_KEYS, nkeycodes);
        return -1;
    }

    /* QEMU takes keys as numbers of its own (libvirt's qnum codeset) */
    qnums = g_new0(unsigned int, nkeycodes);
    for (i = 0; i < nkeycodes; i++) {
        int qnum = keycodes[i];

        if (codeset != VIR_KEYCODE_SET_QNUM)
            qnum = virKeycodeValueTranslate(codeset, VIR_KEYCODE_SET_QNUM, keycodes[i]);
        if (qnum < 0) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("cannot translate keycode %u of %s codeset to qnum keycode"),
                           keycodes[i], virKeycodeSetTypeToString(codeset));
            return -1;
        }
        qnums[i] = qnum;
    }

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainSendKeyEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto endjob;

    mon = QEMU_DOMAIN_PRIVATE(vm)->mon;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONSendKey(mon, holdtime, qnums, nkeycodes);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* virDomainOpenGraphics[FD]: a client socket handed to QEMU's VNC/SPICE  */
/* server (virt-manager's console on a local connection)                  */
/* ---------------------------------------------------------------------- */

#define QEMU_GRAPHICS_FDNAME "graphicsfd"

/* vm locked, no job: QEMU's name of graphics device @idx's protocol. */
static const char *
qemuDevicesGraphicsProtocol(virDomainObj *vm, unsigned int idx)
{
    virDomainGraphicsDef *gr;

    if (idx >= vm->def->ngraphics) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("no graphics device with index %u"), idx);
        return NULL;
    }
    gr = vm->def->graphics[idx];
    switch ((virDomainGraphicsType) gr->type) {
    case VIR_DOMAIN_GRAPHICS_TYPE_VNC:
        return "vnc";
    case VIR_DOMAIN_GRAPHICS_TYPE_SPICE:
        return "spice";
    default:
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("only VNC and SPICE graphics can be opened, not '%s'"),
                       virDomainGraphicsTypeToString(gr->type));
        return NULL;
    }
}

/* vm locked and active, no job: takes a modify job, gives QEMU a copy of
 * @fd and connects it to graphics device @idx's server. */
static int
qemuDevicesGraphicsAddClient(virDomainObj *vm, unsigned int idx, int fd,
                             unsigned int flags)
{
    qemuMonitor *mon;
    const char *protocol;
    int rc;
    int ret = -1;

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        return -1;
    if (virDomainObjCheckActive(vm) < 0 ||
        !(protocol = qemuDevicesGraphicsProtocol(vm, idx)))
        goto endjob;

    mon = QEMU_DOMAIN_PRIVATE(vm)->mon;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONSendFileHandle(mon, QEMU_GRAPHICS_FDNAME, fd);
    if (rc == 0) {
        rc = qemuMonitorJSONAddClient(mon, protocol, QEMU_GRAPHICS_FDNAME,
                                      !!(flags & VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH));
        if (rc < 0) {
            virErrorPtr err = NULL;

            virErrorPreserveLast(&err);
            ignore_value(qemuMonitorJSONCloseFileHandle(mon, QEMU_GRAPHICS_FDNAME));
            virErrorRestore(&err);
        }
    }
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
    return ret;
}

static int
qemuDomainOpenGraphics(virDomainPtr dom, unsigned int idx, int fd,
                       unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainOpenGraphicsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0 ||
        !qemuDevicesGraphicsProtocol(vm, idx))
        goto cleanup;
    ret = qemuDevicesGraphicsAddClient(vm, idx, fd, flags);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}

static int
qemuDomainOpenGraphicsFD(virDomainPtr dom, unsigned int idx, unsigned int flags)
{
    virDomainObj *vm;
    int pair[2] = { -1, -1 };
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainOpenGraphicsFdEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0 ||
        !qemuDevicesGraphicsProtocol(vm, idx))
        goto cleanup;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        virReportSystemError(errno, "%s", _("cannot create a socket pair for the graphics client"));
        goto cleanup;
    }
    if (qemuDevicesGraphicsAddClient(vm, idx, pair[1], flags) < 0)
        goto cleanup;
    ret = pair[0];
    pair[0] = -1;

 cleanup:
    VIR_FORCE_CLOSE(pair[0]);
    VIR_FORCE_CLOSE(pair[1]);
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* virsh change-media / update-device                                     */
/* ---------------------------------------------------------------------- */

unsigned int
qemuDomainDevicesNodeIndex(const char *name)
{
    unsigned int n = 0;
    char *end = NULL;

    if (!name || !STRPREFIX(name, "libvirt-"))
        return 0;
    if (virStrToLong_ui(name + strlen("libvirt-"), &end, 10, &n) < 0 ||
        !end || *end != '-')
        return 0;
    return n;
}


/* The medium @src can be put into a drive the way the command line does
 * it for a cdrom (qemu_command.c): a file or block device, raw or qcow2. */
static int
qemuDevicesCheckMedium(virDomainDiskDef *disk, virStorageSource *src)
{
    if (virStorageSourceIsEmpty(src))
        return 0;
    if (src->type != VIR_STORAGE_TYPE_FILE && src->type != VIR_STORAGE_TYPE_BLOCK) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s': media of type '%s' are not supported"),
                       disk->dst, virStorageTypeToString(src->type));
        return -1;
    }
    if (src->format != VIR_STORAGE_FILE_NONE &&
        src->format != VIR_STORAGE_FILE_RAW &&
        src->format != VIR_STORAGE_FILE_QCOW2) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s': media of format '%s' are not supported"),
                       disk->dst, virStorageFileFormatTypeToString(src->format));
        return -1;
    }
    return 0;
}


/* The state of the drive with qdev id @id.  Monitor entered. */
static int
qemuDevicesQueryDrive(qemuMonitor *mon,
                      const char *id,
                      bool *trayOpen,
                      char **nodeName)
{
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    size_t i;
    int ret = -1;

    if (qemuMonitorJSONQueryBlock(mon, &info, &ninfo) < 0)
        return -1;
    for (i = 0; i < ninfo; i++) {
        if (!qemuDomainDevicesQdevMatches(info[i].qdev, id))
            continue;
        *trayOpen = info[i].trayOpen;
        if (nodeName) {
            g_free(*nodeName);
            *nodeName = info[i].inserted ? g_strdup(info[i].nodeName) : NULL;
        }
        ret = 0;
        break;
    }
    if (ret < 0)
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("QEMU does not know the drive '%s'"), id);
    qemuMonitorBlockInfoFree(info, ninfo);
    return ret;
}


/* Removes the nodes of a medium: the format node @formatName and, when it
 * follows our naming, its storage node.  Errors are logged only: the
 * medium is out of the drive already.  Monitor entered. */
static void
qemuDevicesDelMediumNodes(qemuMonitor *mon, const char *formatName)
{
    virErrorPtr err = NULL;
    unsigned int n = qemuDomainDevicesNodeIndex(formatName);

    if (!formatName)
        return;
    virErrorPreserveLast(&err);
    if (qemuMonitorJSONBlockdevDel(mon, formatName) < 0)
        VIR_WARN("cannot remove block node %s: %s", formatName, virGetLastErrorMessage());
    if (n > 0 && g_str_has_suffix(formatName, "-format")) {
        g_autofree char *storage = g_strdup_printf("libvirt-%u-storage", n);

        if (qemuMonitorJSONBlockdevDel(mon, storage) < 0)
            VIR_WARN("cannot remove block node %s: %s", storage, virGetLastErrorMessage());
    }
    virErrorRestore(&err);
}


/* The media change itself, with the domain unlocked (monitor entered).
 * @path NULL ejects. */
static int
qemuDevicesChangeMediaMon(qemuMonitor *mon,
                          const char *id,
                          const char *dst,
                          const char *path,
                          bool blockDevice,
                          bool qcow2,
                          bool force)
{
    g_autofree char *oldNode = NULL;
    g_autofree char *storageName = NULL;
    g_autofree char *formatName = NULL;
    g_auto(GStrv) names = NULL;
    bool trayOpen = false;
    bool added = false;
    unsigned int waited = 0;
    unsigned int maxIndex = 0;
    size_t i;

    if (qemuDevicesQueryDrive(mon, id, &trayOpen, &oldNode) < 0)
        return -1;

    if (path) {
        g_autoptr(tdmJSONValue) storage = NULL;
        g_autoptr(tdmJSONValue) format = NULL;

        if (qemuMonitorJSONQueryNamedBlockNodeNames(mon, &names) < 0)
            return -1;
        for (i = 0; names[i]; i++)
            maxIndex = MAX(maxIndex, qemuDomainDevicesNodeIndex(names[i]));
        storageName = g_strdup_printf("libvirt-%u-storage", maxIndex + 1);
        formatName = g_strdup_printf("libvirt-%u-format", maxIndex + 1);

        if (tdmJSONValueObjectCreate(&storage,
                                     "s:driver", blockDevice ? "host_device" : "file",
                                     "s:filename", path,
                                     "s:node-name", storageName,
                                     "b:auto-read-only", true,
                                     "s:discard", "unmap", NULL) < 0 ||
            tdmJSONValueObjectCreate(&format,
                                     "s:node-name", formatName,
                                     "b:read-only", true,
                                     "s:driver", qcow2 ? "qcow2" : "raw",
                                     "s:file", storageName, NULL) < 0)
            return -1;

        /* the new medium is opened first: a bad file changes nothing */
        if (qemuMonitorJSONBlockdevAdd(mon, &storage) < 0)
            return -1;
        if (qemuMonitorJSONBlockdevAdd(mon, &format) < 0) {
            virErrorPtr err = NULL;

            virErrorPreserveLast(&err);
            ignore_value(qemuMonitorJSONBlockdevDel(mon, storageName));
            virErrorRestore(&err);
            return -1;
        }
        added = true;
    }

    if (!trayOpen) {
        if (qemuMonitorJSONBlockdevTrayOpen(mon, id, force) < 0)
            goto error;
        /* a guest that locked the tray is asked to open it */
        while (true) {
            if (qemuDevicesQueryDrive(mon, id, &trayOpen, NULL) < 0)
                goto error;
            if (trayOpen)
                break;
            if (waited >= QEMU_DEVICES_TRAY_WAIT_MS) {
                virReportError(VIR_ERR_OPERATION_FAILED,
                               _("timed out waiting to open tray of '%s'"), dst);
                goto error;
            }
            g_usleep(QEMU_DEVICES_TRAY_POLL_MS * 1000);
            waited += QEMU_DEVICES_TRAY_POLL_MS;
        }
    }

    if (qemuMonitorJSONBlockdevMediumRemove(mon, id) < 0)
        goto error;
    qemuDevicesDelMediumNodes(mon, oldNode);

    if (path && qemuMonitorJSONBlockdevMediumInsert(mon, id, formatName) < 0)
        goto error;
    added = false;

    if (qemuMonitorJSONBlockdevTrayClose(mon, id) < 0)
        return -1;
    return 0;

 error:
    if (added)
        qemuDevicesDelMediumNodes(mon, formatName);
    return -1;
}


/* Live change of the medium of @disk (a drive of the running domain) to
 * @newsrc (empty: eject).  Modify job held, vm locked. */
static int
qemuDevicesChangeMedia(virDomainObj *vm,
                       virDomainDiskDef *disk,
                       virStorageSource **newsrc,
                       bool force)
{
    qemuMonitor *mon = QEMU_DOMAIN_PRIVATE(vm)->mon;
    g_autofree char *id = g_strdup(disk->info.alias);
    g_autofree char *dst = g_strdup(disk->dst);
    g_autofree char *path = NULL;
    virStorageSource *src = *newsrc;
    bool blockDevice = false;
    bool qcow2 = false;
    int rc;

    if (!id) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("disk '%s' has no alias"), disk->dst);
        return -1;
    }
    if (qemuDevicesCheckMedium(disk, src) < 0)
        return -1;
    if (!virStorageSourceIsEmpty(src)) {
        path = g_strdup(src->path);
        blockDevice = src->type == VIR_STORAGE_TYPE_BLOCK;
        qcow2 = src->format == VIR_STORAGE_FILE_QCOW2;
    }

    /* the new medium is QEMU's user's before QEMU opens it; the old one
     * goes back to its owner once QEMU let go of it */
    if (qemuSecuritySetDiskLabel(qemu_driver, vm, disk, src) < 0)
        return -1;
    if (qemuDomainObjEnterMonitor(vm) < 0) {
        qemuSecurityRestoreDiskLabel(qemu_driver, vm, disk, src);
        return -1;
    }
    rc = qemuDevicesChangeMediaMon(mon, id, dst, path, blockDevice, qcow2, force);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuSecurityRestoreDiskLabel(qemu_driver, vm, disk, src);
        return -1;
    }

    qemuSecurityRestoreDiskLabel(qemu_driver, vm, disk, disk->src);
    virObjectUnref(disk->src);
    disk->src = g_steal_pointer(newsrc);
    if (disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM)
        disk->src->readonly = true;
    disk->tray_status = VIR_DOMAIN_DISK_TRAY_CLOSED;
    return 0;
}


/* @newdisk may only differ from @disk in its source. */
static virDomainDiskDef *
qemuDevicesFindMediaDisk(virDomainDef *def, virDomainDiskDef *newdisk)
{
    virDomainDiskDef *disk;

    if (newdisk->device != VIR_DOMAIN_DISK_DEVICE_CDROM &&
        newdisk->device != VIR_DOMAIN_DISK_DEVICE_FLOPPY) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s' of device type '%s' cannot be updated: only the media of cdrom and floppy drives can be changed"),
                       newdisk->dst, virDomainDiskDeviceTypeToString(newdisk->device));
        return NULL;
    }
    if (!(disk = virDomainDiskByName(def, newdisk->dst, false))) {
        virReportError(VIR_ERR_INVALID_ARG,
                       _("target %s doesn't exist."), newdisk->dst);
        return NULL;
    }
    if (disk->device != newdisk->device || disk->bus != newdisk->bus) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s': the device type and bus cannot be changed, only the medium"),
                       newdisk->dst);
        return NULL;
    }
    return disk;
}


static virDomainDeviceDef *
qemuDevicesParseMediaDisk(const char *xml, virDomainDef *def)
{
    virDomainDeviceDef *dev;

    if (!(dev = virDomainDeviceDefParse(xml, def, qemu_driver->xmlopt, NULL,
                                        VIR_DOMAIN_DEF_PARSE_INACTIVE)))
        return NULL;
    if (dev->type != VIR_DOMAIN_DEVICE_DISK) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("updating a device of type '%s' is not supported: only the media of cdrom and floppy drives can be changed"),
                       virDomainDeviceTypeToString(dev->type));
        virDomainDeviceDefFree(dev);
        return NULL;
    }
    return dev;
}


static int
qemuDomainUpdateDeviceFlags(virDomainPtr dom,
                            const char *xml,
                            unsigned int flags)
{
    virQEMUDriver *driver = qemu_driver;
    virDomainObj *vm;
    virDomainDef *liveDef = NULL;
    virDomainDef *persDef = NULL;
    virDomainDeviceDef *liveDev = NULL;
    virDomainDeviceDef *persDev = NULL;
    virDomainDiskDef *disk;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE |
                  VIR_DOMAIN_AFFECT_CONFIG |
                  VIR_DOMAIN_DEVICE_MODIFY_FORCE, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainUpdateDeviceFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjUpdateModificationImpact(vm, &flags) < 0 ||
        virDomainObjGetDefs(vm, flags, &liveDef, &persDef) < 0)
        goto endjob;

    /* check both before changing either */
    if (persDef) {
        if (!(persDev = qemuDevicesParseMediaDisk(xml, persDef)) ||
            !qemuDevicesFindMediaDisk(persDef, persDev->data.disk) ||
            qemuDevicesCheckMedium(persDev->data.disk, persDev->data.disk->src) < 0)
            goto endjob;
    }
    if (liveDef) {
        if (!(liveDev = qemuDevicesParseMediaDisk(xml, liveDef)) ||
            !(disk = qemuDevicesFindMediaDisk(liveDef, liveDev->data.disk)))
            goto endjob;
        if (qemuDevicesChangeMedia(vm, disk, &liveDev->data.disk->src,
                                   !!(flags & VIR_DOMAIN_DEVICE_MODIFY_FORCE)) < 0)
            goto endjob;
        qemuDomainObjSaveStatus(driver, vm);
    }
    if (persDef) {
        /* the definition may have changed while the monitor was entered */
        if (!(disk = qemuDevicesFindMediaDisk(persDef, persDev->data.disk)))
            goto endjob;
        virObjectUnref(disk->src);
        disk->src = g_steal_pointer(&persDev->data.disk->src);
        if (virDomainDefSave(persDef, driver->xmlopt, driver->paths.configDir) < 0)
            goto endjob;
    }
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainDeviceDefFree(liveDev);
    virDomainDeviceDefFree(persDev);
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* Disk I/O errors: the IO_ERROR events and virsh domblkerror             */
/* ---------------------------------------------------------------------- */

/* QEMU's error actions (BLOCK_IO_ERROR "action") as libvirt's */
static const char *const qemuDevicesIOErrorActions[] = {
    [VIR_DOMAIN_EVENT_IO_ERROR_NONE] = "ignore",
    [VIR_DOMAIN_EVENT_IO_ERROR_PAUSE] = "stop",
    [VIR_DOMAIN_EVENT_IO_ERROR_REPORT] = "report",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuDevicesIOErrorActions) == VIR_DOMAIN_EVENT_IO_ERROR_LAST);

/* The disk of the query-block entry whose root node is @node (or whose
 * drive is @device, for a drive with a name).  NULL if none. */
static virDomainDiskDef *
qemuDevicesDiskOfBlock(virDomainDef *def,
                       const qemuMonitorBlockInfo *info,
                       size_t ninfo,
                       const char *node,
                       const char *device)
{
    size_t i;

    for (i = 0; i < ninfo; i++) {
        if ((node && *node && STREQ_NULLABLE(info[i].nodeName, node)) ||
            (device && *device && STREQ_NULLABLE(info[i].device, device)))
            return qemuDevicesDiskByQdev(def, info[i].qdev);
    }
    return NULL;
}

void
qemuDomainDevicesHandleIOError(virDomainObj *vm, int id, tdmJSONValue *data)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    const char *node = tdmJSONValueObjectGetString(data, "node-name");
    const char *device = tdmJSONValueObjectGetString(data, "device");
    const char *action = tdmJSONValueObjectGetString(data, "action");
    const char *why = tdmJSONValueObjectGetString(data, "reason");
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    virDomainDiskDef *disk = NULL;
    const char *srcPath = "";
    const char *alias;
    bool nospace = false;
    int act = -1;
    size_t i;

    if (!virDomainObjIsActive(vm) || vm->def->id != id)
        return;
    for (i = 0; action && i < G_N_ELEMENTS(qemuDevicesIOErrorActions); i++) {
        if (STREQ(action, qemuDevicesIOErrorActions[i]))
            act = i;
    }
    if (act < 0) {
        VIR_WARN("I/O error event of '%s' with unknown action '%s'",
                 vm->def->name, NULLSTR(action));
        return;
    }
    ignore_value(tdmJSONValueObjectGetBoolean(data, "nospace", &nospace));

    /* the event names QEMU's node, the domain's disk is behind its qdev */
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) == 0) {
        if (virDomainObjIsActive(vm) && vm->def->id == id &&
            qemuDomainObjEnterMonitor(vm) == 0) {
            int rc = qemuMonitorJSONQueryBlock(priv->mon, &info, &ninfo);

            if (qemuDomainObjExitMonitor(vm) == 0 && rc == 0)
                disk = qemuDevicesDiskOfBlock(vm->def, info, ninfo, node, device);
        }
        qemuDomainObjEndJob(vm);
    }
    if (!virDomainObjIsActive(vm) || vm->def->id != id)
        goto cleanup;
    if (disk && virDomainDiskGetSource(disk))
        srcPath = virDomainDiskGetSource(disk);
    alias = disk && disk->info.alias ? disk->info.alias :
            node && *node ? node : NULLSTR_EMPTY(device);
    VIR_WARN("I/O error on disk '%s' (%s) of '%s': %s, action %s",
             disk ? disk->dst : alias, srcPath, vm->def->name,
             NULLSTR(why), action);
    virObjectEventStateQueue(qemu_driver->domainEventState,
                             virDomainEventIOErrorNewFromObj(vm, srcPath, alias, act));
    virObjectEventStateQueue(qemu_driver->domainEventState,
                             virDomainEventIOErrorReasonNewFromObj(vm, srcPath, alias, act,
                                                                   nospace ? "enospc" : ""));
 cleanup:
    qemuMonitorBlockInfoFree(info, ninfo);
}

static int
qemuDomainGetDiskErrors(virDomainPtr dom,
                        virDomainDiskErrorPtr errors,
                        unsigned int maxerrors,
                        unsigned int flags)
{
    virDomainObj *vm;
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    int reason = 0;
    int n = 0;
    int ret = -1;
    int rc;
    size_t i;

    virCheckFlags(0, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainGetDiskErrorsEnsureACL(dom->conn, vm->def) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_QUERY) < 0)
        goto cleanup;
    if (virDomainObjCheckActive(vm) < 0)
        goto endjob;
    /* how many a caller must make room for */
    if (!errors) {
        ret = vm->def->ndisks;
        goto endjob;
    }
    /* QEMU sets a drive's io-status when an error stops the guest, and
     * 'cont' resets only the monitor's named drives, not ours (-blockdev
     * under a -device): the status is current only while the guest is
     * paused on an I/O error; once it runs, the failed request was retried */
    if (virDomainObjGetState(vm, &reason) != VIR_DOMAIN_PAUSED ||
        reason != VIR_DOMAIN_PAUSED_IOERROR) {
        ret = 0;
        goto endjob;
    }

    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONQueryBlock(QEMU_DOMAIN_PRIVATE(vm)->mon, &info, &ninfo);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto endjob;

    /* io-status "nospace" or "failed"; "ok" or none: no error */
    for (i = 0; i < ninfo && n < maxerrors; i++) {
        virDomainDiskDef *disk;

        if (!info[i].ioStatus || STREQ(info[i].ioStatus, "ok") ||
            !(disk = qemuDevicesDiskByQdev(vm->def, info[i].qdev)))
            continue;
        errors[n].disk = g_strdup(disk->dst);
        errors[n].error = STREQ(info[i].ioStatus, "nospace") ?
                          VIR_DOMAIN_DISK_ERROR_NO_SPACE : VIR_DOMAIN_DISK_ERROR_UNSPEC;
        n++;
    }
    ret = n;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    qemuMonitorBlockInfoFree(info, ninfo);
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* Registration                                                           */
/* ---------------------------------------------------------------------- */

void
qemuDomainDevicesRegister(virHypervisorDriver *driver)
{
    driver->domainGetDiskErrors = qemuDomainGetDiskErrors;
    driver->domainOpenConsole = qemuDomainOpenConsole;
    driver->domainOpenGraphics = qemuDomainOpenGraphics;
    driver->domainOpenGraphicsFD = qemuDomainOpenGraphicsFD;
    driver->domainScreenshot = qemuDomainScreenshot;
    driver->domainSendKey = qemuDomainSendKey;
    driver->domainUpdateDeviceFlags = qemuDomainUpdateDeviceFlags;
}
