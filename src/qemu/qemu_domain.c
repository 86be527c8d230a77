/*
 * qemu_domain.c: per-domain private data and the domain XML options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <unistd.h>

#include "qemu_domain.h"
#include "qemu_conf.h"
#include "qemu_validate.h"
#include "qemu_domain_address.h"
#include "datatypes.h"
#include "virerror.h"
#include "virlog.h"
#include "virfile.h"
#include "virxml.h"
#include "tdmtrace.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_domain");

static void *
qemuDomainObjPrivateAlloc(void *opaque G_GNUC_UNUSED)
{
    qemuDomainObjPrivate *priv = g_new0(qemuDomainObjPrivate, 1);

    priv->pidfd = -1;
    priv->pidfdWatch = -1;
    if (qemuDomainJobObjInit(&priv->job) < 0) {
        g_free(priv);
        return NULL;
    }
    return priv;
}

static void
qemuDomainObjPrivateFree(void *data)
{
    qemuDomainObjPrivate *priv = data;

    if (!priv)
        return;
    g_free(priv->libDir);
    g_free(priv->pidfile);
    g_free(priv->monitorPath);
    g_free(priv->logPath);
    g_free(priv->saveTmpPath);
    g_free(priv->vcpuTids);
    g_free(priv->unplugAlias);
    g_clear_pointer(&priv->unplugNodes, g_hash_table_unref);
    if (priv->pidfd >= 0)
        VIR_FORCE_CLOSE(priv->pidfd);
    qemuDomainJobObjClear(&priv->job);
    if (priv->mon)
        virObjectUnref(priv->mon);
    g_free(priv);
}

/* The private part of the status file:
 *   <monitor path='...'/> <libDir path='...'/> <pidfile path='...'/>
 *   <flags><gotShutdown/><fakeReboot/><labelled/></flags>  <save tmp='...'/>
 *   <migration maxBandwidth='MiB/s' maxPostcopyBandwidth='MiB/s'/>
 *   (migrate-setspeed [--postcopy], each when set)  <job .../> */
static int
qemuDomainObjPrivateXMLFormat(virBuffer *buf, virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->monitorPath)
        virBufferEscapeString(buf, "<monitor path='%s'/>\n", priv->monitorPath);
    if (priv->libDir)
        virBufferEscapeString(buf, "<libDir path='%s'/>\n", priv->libDir);
    if (priv->pidfile)
        virBufferEscapeString(buf, "<pidfile path='%s'/>\n", priv->pidfile);
    if (priv->gotShutdown || priv->fakeReboot || priv->labelled) {
        virBufferAddLit(buf, "<flags>\n");
        virBufferAdjustIndent(buf, 2);
        if (priv->gotShutdown)
            virBufferAddLit(buf, "<gotShutdown/>\n");
        if (priv->fakeReboot)
            virBufferAddLit(buf, "<fakeReboot/>\n");
        if (priv->labelled)
            virBufferAddLit(buf, "<labelled/>\n");
        virBufferAdjustIndent(buf, -2);
        virBufferAddLit(buf, "</flags>\n");
    }
    if (priv->saveTmpPath)
        virBufferEscapeString(buf, "<save tmp='%s'/>\n", priv->saveTmpPath);
    if (priv->migMaxBandwidth || priv->migMaxPostcopyBandwidth) {
        virBufferAddLit(buf, "<migration");
        if (priv->migMaxBandwidth)
            virBufferAsprintf(buf, " maxBandwidth='%lu'", priv->migMaxBandwidth);
        if (priv->migMaxPostcopyBandwidth)
            virBufferAsprintf(buf, " maxPostcopyBandwidth='%lu'", priv->migMaxPostcopyBandwidth);
        virBufferAddLit(buf, "/>\n");
    }
    qemuDomainJobFormat(buf, vm);
    return 0;
}

static int
qemuDomainObjPrivateXMLParse(xmlXPathContextPtr ctxt,
                             virDomainObj *vm,
                             virDomainDefParserConfig *config G_GNUC_UNUSED)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    priv->monitorPath = virXPathString("string(./monitor[1]/@path)", ctxt);
    priv->libDir = virXPathString("string(./libDir[1]/@path)", ctxt);
    priv->pidfile = virXPathString("string(./pidfile[1]/@path)", ctxt);
    priv->gotShutdown = virXPathBoolean("boolean(./flags/gotShutdown)", ctxt) == 1;
    priv->fakeReboot = virXPathBoolean("boolean(./flags/fakeReboot)", ctxt) == 1;
    priv->saveTmpPath = virXPathString("string(./save[1]/@tmp)", ctxt);
    priv->labelled = virXPathBoolean("boolean(./flags/labelled)", ctxt) == 1;
    if (virXPathNode("./migration[@maxBandwidth]", ctxt)) {
        unsigned long long bw = 0;

        if (virXPathULongLong("string(./migration[1]/@maxBandwidth)", ctxt, &bw) < 0 ||
            bw > G_MAXINT64 / (1024 * 1024)) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("status file has an invalid migration bandwidth"));
            return -1;
        }
        priv->migMaxBandwidth = bw;
    }
    if (virXPathNode("./migration[@maxPostcopyBandwidth]", ctxt)) {
        unsigned long long bw = 0;

        if (virXPathULongLong("string(./migration[1]/@maxPostcopyBandwidth)", ctxt, &bw) < 0 ||
            bw > G_MAXINT64 / (1024 * 1024)) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("status file has an invalid post-copy migration bandwidth"));
            return -1;
        }
        priv->migMaxPostcopyBandwidth = bw;
    }
    if (!priv->monitorPath) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("status file has no monitor path"));
        return -1;
    }
    return qemuDomainJobParse(ctxt, vm);
}

virDomainXMLPrivateDataCallbacks qemuDomainXMLPrivateDataCallbacks = {
    .alloc = qemuDomainObjPrivateAlloc,
    .free = qemuDomainObjPrivateFree,
    .format = qemuDomainObjPrivateXMLFormat,
    .parse = qemuDomainObjPrivateXMLParse,
};

/* Writes @xml to @path as a whole: a temporary file renamed over it, so
 * that a reader (the daemon after a restart) finds the old or the new
 * content, never a part.  No fsync: the status directory is a runtime
 * directory (/run/libvirt/qemu, a tmpfs in a normal install) whose files
 * describe QEMU processes that a power loss ends anyway; what must hold is
 * atomicity towards the next daemon, which rename gives.  The fsync that
 * libvirt's virDomainObjSave does cost 10-25 ms on the benchmark's disk,
 * with the domain lock held, and in the event loop for events that change
 * the state (bench/README.md, performance). */
static int
qemuDomainWriteStatusFile(const char *path, const char *xml)
{
    g_autofree char *tmp = g_strdup_printf("%s.new", path);
    size_t len = strlen(xml);
    int fd;

    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        virReportSystemError(errno, _("cannot create status file '%s'"), tmp);
        return -1;
    }
    if (safewrite(fd, xml, len) != (ssize_t) len) {
        virReportSystemError(errno, _("cannot write status file '%s'"), tmp);
        VIR_FORCE_CLOSE(fd);
        unlink(tmp);
        return -1;
    }
    if (VIR_CLOSE(fd) < 0) {
        virReportSystemError(errno, _("cannot write status file '%s'"), tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        virReportSystemError(errno, _("cannot rename status file '%s' to '%s'"),
                             tmp, path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

int
qemuDomainObjSaveStatus(void *opaque, virDomainObj *vm)
{
    virQEMUDriver *driver = opaque;
    unsigned long long traceStart = tdmTraceBegin();
    unsigned int flags = VIR_DOMAIN_DEF_FORMAT_SECURE |
                         VIR_DOMAIN_DEF_FORMAT_STATUS |
                         VIR_DOMAIN_DEF_FORMAT_ACTUAL_NET |
                         VIR_DOMAIN_DEF_FORMAT_PCI_ORIG_STATES |
                         VIR_DOMAIN_DEF_FORMAT_CLOCK_ADJUST;
    g_autofree char *xml = NULL;
    g_autofree char *path = NULL;
    double ms;
    int ret = 0;

    if (!virDomainObjIsActive(vm))
        return 0;
    if (!(xml = virDomainObjFormat(vm, driver->xmlopt, flags)) ||
        !(path = virDomainConfigFile(driver->paths.stateDir, vm->def->name)) ||
        qemuDomainWriteStatusFile(path, xml) < 0) {
        VIR_WARN("Failed to save status of domain '%s': %s",
                 vm->def->name, virGetLastErrorMessage());
        ret = -1;
    }
    if ((ms = tdmTraceSlowMs(traceStart)) > 0)
        VIR_WARN("slow: writing the status file of '%s' took %.1f ms (domain lock held)",
                 vm->def->name, ms);
    return ret;
}

void
qemuDomainDefDropPrivatePaths(virDomainDef *def, const char *libDir)
{
    size_t len = libDir ? strlen(libDir) : 0;
    size_t i;

    if (!libDir)
        return;
    for (i = 0; i < def->nchannels; i++) {
        virDomainChrSourceDef *src = def->channels[i]->source;

        if (src->type == VIR_DOMAIN_CHR_TYPE_UNIX && src->data.nix.path &&
            STRPREFIX(src->data.nix.path, libDir) && src->data.nix.path[len] == '/')
            g_clear_pointer(&src->data.nix.path, g_free);
    }
}

/* Defaults a definition gets before the rest of the post-parse runs:
 * the emulator. */
static int
qemuDomainDefPostParseBasic(virDomainDef *def, void *opaque)
{
    virQEMUDriver *driver = opaque;

    if (!def->emulator)
        def->emulator = g_strdup(driver->config->emulator);
    return 0;
}

/* Whole-domain defaults that need the emulator's capabilities: the
 * canonical machine type. */
static int
qemuDomainDefPostParse(virDomainDef *def,
                       unsigned int parseFlags G_GNUC_UNUSED,
                       void *opaque,
                       void *parseOpaque G_GNUC_UNUSED)
{
    virQEMUDriver *driver = opaque;
    g_autoptr(qemuCaps) qcaps = NULL;
    const char *machine;

    if (def->os.type != VIR_DOMAIN_OSTYPE_HVM) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("unsupported <os><type>: '%s' (only 'hvm' is supported)"),
                       virDomainOSTypeToString(def->os.type));
        return -1;
    }

    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(driver, def->emulator)))
        return -1;

    if (!def->os.machine) {
        def->os.machine = g_strdup(qemuCapsGetDefaultMachine(qcaps));
    } else if ((machine = qemuCapsGetCanonicalMachine(qcaps, def->os.machine)) &&
               STRNEQ(machine, def->os.machine)) {
        g_free(def->os.machine);
        def->os.machine = g_strdup(machine);
    }
    return 0;
}

/* Every device gets its PCI slot, drive address and alias when defined, so
 * they are saved with the definition and stay stable across starts and
 * migrations. */
static int
qemuDomainDefAssignAddresses(virDomainDef *def,
                             unsigned int parseFlags G_GNUC_UNUSED,
                             void *opaque,
                             void *parseOpaque G_GNUC_UNUSED)
{
    virQEMUDriver *driver = opaque;
    g_autoptr(qemuCaps) qcaps = NULL;

    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(driver, def->emulator)))
        return -1;
    return qemuDomainAssignAddresses(def, qcaps);
}

static int
qemuDomainDefValidate(const virDomainDef *def, void *opaque, void *parseOpaque G_GNUC_UNUSED)
{
    virQEMUDriver *driver = opaque;
    g_autoptr(qemuCaps) qcaps = NULL;

    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(driver, def->emulator)))
        return -1;
    return qemuValidateDomainDef(def, qcaps);
}

static int
qemuDomainDeviceDefValidate(const virDomainDeviceDef *dev,
                            const virDomainDef *def,
                            void *opaque G_GNUC_UNUSED,
                            void *parseOpaque G_GNUC_UNUSED)
{
    return qemuValidateDomainDevice(dev, def);
}

virDomainDefParserConfig qemuDomainDefParserConfig = {
    .domainPostParseBasicCallback = qemuDomainDefPostParseBasic,
    .domainPostParseCallback = qemuDomainDefPostParse,
    .assignAddressesCallback = qemuDomainDefAssignAddresses,
    .domainValidateCallback = qemuDomainDefValidate,
    .deviceValidateCallback = qemuDomainDeviceDefValidate,
    .features = VIR_DOMAIN_DEF_FEATURE_WIDE_SCSI |
                VIR_DOMAIN_DEF_FEATURE_MEMORY_HOTPLUG |
                VIR_DOMAIN_DEF_FEATURE_OFFLINE_VCPUPIN |
                VIR_DOMAIN_DEF_FEATURE_INDIVIDUAL_VCPUS |
                VIR_DOMAIN_DEF_FEATURE_USER_ALIAS |
                VIR_DOMAIN_DEF_FEATURE_NET_MODEL_STRING,
    .defArch = VIR_ARCH_X86_64,
    .defSecModel = "dac",  /* a <seclabel> without a model (qemu_security.c) */
    .netPrefix = "vnet",
    .macPrefix = { 0x52, 0x54, 0x00 },
};

virDomainXMLOption *
qemuDomainXMLOptionNew(void *driver)
{
    qemuDomainDefParserConfig.priv = driver;
    return virDomainXMLOptionNew(&qemuDomainDefParserConfig,
                                 &qemuDomainXMLPrivateDataCallbacks,
                                 NULL, NULL, NULL, NULL);
}


virDomainObj *
qemuDomainObjFromDomain(virDomainPtr domain)
{
    virDomainObj *vm;
    char uuidstr[VIR_UUID_STRING_BUFLEN];
    unsigned long long traceStart = tdmTraceBegin();
    double ms;

    vm = virDomainObjListFindByUUID(qemu_driver->domains, domain->uuid);
    if ((ms = tdmTraceSlowMs(traceStart)) > 0)
        VIR_WARN("slow: looking up '%s' waited %.1f ms (domain list and domain lock)",
                 domain->name, ms);
    if (!vm) {
        virUUIDFormat(domain->uuid, uuidstr);
        virReportError(VIR_ERR_NO_DOMAIN,
                       _("no domain with matching uuid '%s' (%s)"),
                       uuidstr, domain->name);
        return NULL;
    }
    return vm;
}
