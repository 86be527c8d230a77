/*
 * qemu_command.c: domain definition -> QEMU command line (QEMU 7.2, x86_64)
 *
 * Modern QEMU syntax only: -blockdev node pairs per disk, JSON -device,
 * -netdev and -object, -accel.  Every device carries its alias as id so
 * the monitor can name it.  Whatever the definition asks for and Tandem
 * cannot do is refused with VIR_ERR_CONFIG_UNSUPPORTED naming the element
 * and the value: nothing is dropped silently.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_command.h"
#include "qemu_domain_address.h"
#include "virbuffer.h"
#include "virerror.h"
#include "virlog.h"
#include "viruuid.h"
#include "virmacaddr.h"
#include "virutil.h"
#include "virsocketaddr.h"
#include "storage_source_conf.h"
#include "cpu_conf.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_command");

static int
qemuCmdUnsupported(const char *what, const char *value)
{
    virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                   _("%s '%s' is not supported by Tandem"),
                   what, NULLSTR(value));
    return -1;
}


/* Names of libvirt enums whose ToString functions libvirt does not export */
static const char *const qemuChannelTargetNames[] = { "none", "guestfwd", "virtio", "xen" };
G_STATIC_ASSERT(G_N_ELEMENTS(qemuChannelTargetNames) == VIR_DOMAIN_CHR_CHANNEL_TARGET_TYPE_LAST);
static const char *const qemuVirtioSerialModelNames[] = {
    "virtio", "virtio-transitional", "virtio-non-transitional" };
G_STATIC_ASSERT(G_N_ELEMENTS(qemuVirtioSerialModelNames) == VIR_DOMAIN_CONTROLLER_MODEL_VIRTIO_SERIAL_LAST);
static const char *const qemuListenTypeNames[] = { "none", "address", "network", "socket" };
G_STATIC_ASSERT(G_N_ELEMENTS(qemuListenTypeNames) == VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_LAST);
static const char *const qemuInputModelNames[] = {
    "default", "virtio", "virtio-transitional", "virtio-non-transitional" };
G_STATIC_ASSERT(G_N_ELEMENTS(qemuInputModelNames) == VIR_DOMAIN_INPUT_MODEL_LAST);
static const char *const qemuPanicModelNames[] = { "default", "isa", "pseries", "hyperv", "s390" };
G_STATIC_ASSERT(G_N_ELEMENTS(qemuPanicModelNames) == VIR_DOMAIN_PANIC_MODEL_LAST);

#define QEMU_ENUM_NAME(names, value) \
    ((value) >= 0 && (size_t)(value) < G_N_ELEMENTS(names) ? (names)[value] : "unknown")


/* ------------------------------------------------------------------------
 * JSON objects for -device, -blockdev, -netdev, -object
 * ------------------------------------------------------------------------ */

typedef struct _qemuProps qemuProps;
struct _qemuProps {
    virBuffer buf;     /* "key":value,"key":value */
};

static void
qemuPropsClear(qemuProps *p)
{
    virBufferFreeAndReset(&p->buf);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(qemuProps, qemuPropsClear);

static void
qemuJSONEscape(virBuffer *buf, const char *str)
{
    const char *p;

    virBufferAddChar(buf, '"');
    for (p = str; *p; p++) {
        unsigned char c = *p;

        if (c == '"' || c == '\\')
            virBufferAsprintf(buf, "\\%c", c);
        else if (c < 0x20)
            virBufferAsprintf(buf, "\\u%04x", c);
        else
            virBufferAddChar(buf, c);
    }
    virBufferAddChar(buf, '"');
}

static void
qemuPropsKey(qemuProps *p, const char *key)
{
    if (virBufferUse(&p->buf) > 0)
        virBufferAddChar(&p->buf, ',');
    qemuJSONEscape(&p->buf, key);
    virBufferAddChar(&p->buf, ':');
}

static void
qemuPropsStr(qemuProps *p, const char *key, const char *val)
{
    if (!val)
        return;
    qemuPropsKey(p, key);
    qemuJSONEscape(&p->buf, val);
}

static void
qemuPropsInt(qemuProps *p, const char *key, long long val)
{
    qemuPropsKey(p, key);
    virBufferAsprintf(&p->buf, "%lld", val);
}

static void
qemuPropsBool(qemuProps *p, const char *key, bool val)
{
    qemuPropsKey(p, key);
    virBufferAdd(&p->buf, val ? "true" : "false", -1);
}

static void
qemuPropsRaw(qemuProps *p, const char *key, const char *json)
{
    qemuPropsKey(p, key);
    virBufferAdd(&p->buf, json, -1);
}

static char *
qemuPropsFinish(qemuProps *p)
{
    g_autofree char *body = virBufferContentAndReset(&p->buf);

    return g_strdup_printf("{%s}", NULLSTR_EMPTY(body));
}


/* ------------------------------------------------------------------------
 * The command being built
 * ------------------------------------------------------------------------ */

typedef struct _qemuCmd qemuCmd;
struct _qemuCmd {
    virDomainDef *def;
    qemuCaps *qcaps;
    const qemuBuildCommandLineOpts *opts;
    int family;
    GPtrArray *argv;
    bool hasSpice;
};

static void
qemuCmdAdd(qemuCmd *cmd, const char *arg)
{
    g_ptr_array_add(cmd->argv, g_strdup(arg));
}

static void
qemuCmdAddPair(qemuCmd *cmd, const char *opt, const char *val)
{
    qemuCmdAdd(cmd, opt);
    qemuCmdAdd(cmd, val);
}

static void
qemuCmdAddBuf(qemuCmd *cmd, const char *opt, virBuffer *buf)
{
    qemuCmdAdd(cmd, opt);
    g_ptr_array_add(cmd->argv, virBufferContentAndReset(buf));
}

static void
qemuCmdAddProps(qemuCmd *cmd, const char *opt, qemuProps *p)
{
    qemuCmdAdd(cmd, opt);
    g_ptr_array_add(cmd->argv, qemuPropsFinish(p));
}

/* key=value option values: a comma in a value is written twice */
static void
qemuBufEscapeComma(virBuffer *buf, const char *str)
{
    const char *p;

    for (p = str; *p; p++) {
        if (*p == ',')
            virBufferAddChar(buf, ',');
        virBufferAddChar(buf, *p);
    }
}

static int
qemuCmdCheckAlias(virDomainDeviceInfo *info, const char *what)
{
    if (!info->alias) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("%s has no alias: addresses were not assigned"), what);
        return -1;
    }
    return 0;
}

static virDomainControllerDef *
qemuCmdFindController(virDomainDef *def, int type, int idx)
{
    int i = virDomainControllerFind(def, type, idx);

    return i < 0 ? NULL : def->controllers[i];
}

/* "bus", "addr" (and "multifunction") of a PCI device */
static int
qemuCmdAddPCIAddress(qemuCmd *cmd, qemuProps *p, virDomainDeviceInfo *info)
{
    virPCIDeviceAddress *a = &info->addr.pci;
    virDomainControllerDef *bus;
    g_autofree char *addr = NULL;

    if (info->type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_PCI) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("device '%s' has no PCI address"), NULLSTR(info->alias));
        return -1;
    }
    if (a->domain != 0 ||
        !(bus = qemuCmdFindController(cmd->def, VIR_DOMAIN_CONTROLLER_TYPE_PCI, a->bus)) ||
        !bus->info.alias) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("PCI address %04x:%02x:%02x.%x of device '%s' is on a bus without controller"),
                       a->domain, a->bus, a->slot, a->function, NULLSTR(info->alias));
        return -1;
    }
    if (bus->model == VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT_PORT && a->slot != 0) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("device '%s': a pcie-root-port has only slot 0"),
                       NULLSTR(info->alias));
        return -1;
    }

    qemuPropsStr(p, "bus", bus->info.alias);
    if (a->multi == VIR_TRISTATE_SWITCH_ON)
        qemuPropsBool(p, "multifunction", true);
    else if (a->multi == VIR_TRISTATE_SWITCH_OFF)
        qemuPropsBool(p, "multifunction", false);
    if (a->function == 0)
        addr = g_strdup_printf("0x%x", a->slot);
    else
        addr = g_strdup_printf("0x%x.0x%x", a->slot, a->function);
    qemuPropsStr(p, "addr", addr);
    return 0;
}

/* A device that is not on PCI must not carry an address of another kind
 * that would be silently ignored. */
static int
qemuCmdCheckNoAddress(virDomainDeviceInfo *info, const char *what)
{
    if (info->type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE)
        return 0;
    virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                   _("%s with an address of type '%s' is not supported by Tandem"),
                   what, virDomainDeviceAddressTypeToString(info->type));
    return -1;
}


/* ------------------------------------------------------------------------
 * Elements Tandem does not run at all
 * ------------------------------------------------------------------------ */

static int
qemuCmdCheckUnsupportedElements(virDomainDef *def)
{
    struct {
        const char *element;
        bool present;
    } table[] = {
        { "filesystem", def->nfss > 0 },
        { "hostdev", def->nhostdevs > 0 },
        { "smartcard", def->nsmartcards > 0 },
        { "hub", def->nhubs > 0 },
        { "shmem", def->nshmems > 0 },
        { "memory", def->nmems > 0 },
        { "tpm", def->ntpms > 0 },
        { "lease", def->nleases > 0 },
        { "parallel", def->nparallels > 0 },
        { "iommu", def->iommu != NULL },
        { "vsock", def->vsock != NULL },
        { "nvram", def->nvram != NULL },
        { "sysinfo", def->nsysinfo > 0 },
        { "os/loader", def->os.loader != NULL },
        { "os/dtb", def->os.dtb != NULL },
        { "maxMemory", def->mem.max_memory > 0 },
        { "memoryBacking/hugepages", def->mem.nhugepages > 0 },
        { "memoryBacking/source", def->mem.source != VIR_DOMAIN_MEMORY_SOURCE_NONE },
        { "iothreads", def->niothreadids > 0 },
        { "cpu/numa", virDomainNumaGetNodeCount(def->numa) > 0 },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(table); i++) {
        if (table[i].present) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("element <%s> is not supported by Tandem"),
                           table[i].element);
            return -1;
        }
    }
    if (def->os.firmware == VIR_DOMAIN_OS_DEF_FIRMWARE_EFI)
        return qemuCmdUnsupported("os firmware", "efi");
    if (def->os.bios.useserial == VIR_TRISTATE_BOOL_YES)
        return qemuCmdUnsupported("os bios useserial", "yes");
    return 0;
}


/* ------------------------------------------------------------------------
 * Machine, accelerator, CPU, memory
 * ------------------------------------------------------------------------ */

static int
qemuCmdBuildMachine(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    size_t i;

    for (i = 0; i < VIR_DOMAIN_FEATURE_LAST; i++) {
        if (def->features[i] == 0)
            continue;
        switch ((virDomainFeature) i) {
        case VIR_DOMAIN_FEATURE_ACPI:
        case VIR_DOMAIN_FEATURE_PAE:
        case VIR_DOMAIN_FEATURE_VMPORT:
            break;
        case VIR_DOMAIN_FEATURE_APIC:
            if (def->features[i] == VIR_TRISTATE_SWITCH_ON &&
                def->apic_eoi == VIR_TRISTATE_SWITCH_ABSENT)
                break;
            G_GNUC_FALLTHROUGH;
        default:
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("feature <%s> is not supported by Tandem"),
                           virDomainFeatureTypeToString(i));
            return -1;
        }
    }

    qemuBufEscapeComma(&buf, def->os.machine);
    virBufferAddLit(&buf, ",usb=off");
    if (def->features[VIR_DOMAIN_FEATURE_VMPORT] != VIR_TRISTATE_SWITCH_ABSENT)
        virBufferAsprintf(&buf, ",vmport=%s",
                          virTristateSwitchTypeToString(def->features[VIR_DOMAIN_FEATURE_VMPORT]));
    virBufferAddLit(&buf, ",dump-guest-core=off");
    if (def->features[VIR_DOMAIN_FEATURE_ACPI] != VIR_TRISTATE_SWITCH_ON)
        virBufferAddLit(&buf, ",acpi=off");
    for (i = 0; i < def->clock.ntimers; i++) {
        virDomainTimerDef *t = def->clock.timers[i];
        if (t->name == VIR_DOMAIN_TIMER_NAME_HPET &&
            t->present == VIR_TRISTATE_BOOL_NO)
            virBufferAddLit(&buf, ",hpet=off");
    }
    qemuCmdAddBuf(cmd, "-machine", &buf);

    qemuCmdAddPair(cmd, "-accel", def->virtType == VIR_DOMAIN_VIRT_KVM ? "kvm" : "tcg");
    return 0;
}

static int
qemuCmdBuildCPU(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    virCPUDef *cpu = def->cpu;
    bool kvm = def->virtType == VIR_DOMAIN_VIRT_KVM;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    size_t i;

    if (!cpu)
        return 0;

    switch ((virCPUMode) cpu->mode) {
    case VIR_CPU_MODE_HOST_PASSTHROUGH:
        if (!kvm) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                           _("cpu mode 'host-passthrough' needs domain type 'kvm'"));
            return -1;
        }
        virBufferAddLit(&buf, "host");
        if (cpu->migratable == VIR_TRISTATE_SWITCH_OFF)
            virBufferAddLit(&buf, ",migratable=off");
        break;
    case VIR_CPU_MODE_HOST_MODEL:
        /* no host CPU model expansion: the closest QEMU model of "all the
         * host can do" for the accelerator */
        virBufferAdd(&buf, kvm ? "host" : "max", -1);
        break;
    case VIR_CPU_MODE_MAXIMUM:
        virBufferAddLit(&buf, "max");
        break;
    case VIR_CPU_MODE_CUSTOM:
        if (!cpu->model) {
            if (cpu->nfeatures > 0) {
                virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                               _("cpu features without a cpu model are not supported by Tandem"));
                return -1;
            }
            return 0;
        }
        if (!qemuCapsHasCPUModel(cmd->qcaps, cpu->model)) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("cpu model '%s' is not supported by the emulator '%s'"),
                           cpu->model, def->emulator);
            return -1;
        }
        qemuBufEscapeComma(&buf, cpu->model);
        break;
    case VIR_CPU_MODE_LAST:
    default:
        return qemuCmdUnsupported("cpu mode", "unknown");
    }

    for (i = 0; i < cpu->nfeatures; i++) {
        virCPUFeatureDef *f = &cpu->features[i];

        switch ((virCPUFeaturePolicy) f->policy) {
        case VIR_CPU_FEATURE_FORCE:
        case VIR_CPU_FEATURE_REQUIRE:
        case VIR_CPU_FEATURE_OPTIONAL:
            virBufferAsprintf(&buf, ",%s=on", f->name);
            break;
        case VIR_CPU_FEATURE_DISABLE:
        case VIR_CPU_FEATURE_FORBID:
            virBufferAsprintf(&buf, ",%s=off", f->name);
            break;
        case VIR_CPU_FEATURE_LAST:
            break;
        }
    }
    qemuCmdAddBuf(cmd, "-cpu", &buf);
    return 0;
}

static int
qemuCmdBuildMemorySMP(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    unsigned int maxvcpus = virDomainDefGetVcpusMax(def);
    unsigned int vcpus = virDomainDefGetVcpus(def);
    unsigned int sockets = maxvcpus;
    unsigned int dies = 1;
    unsigned int cores = 1;
    unsigned int threads = 1;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    virBufferAsprintf(&buf, "size=%lluk", virDomainDefGetMemoryInitial(def));
    qemuCmdAddBuf(cmd, "-m", &buf);

    if (def->cpu && def->cpu->sockets) {
        sockets = def->cpu->sockets;
        dies = def->cpu->dies ? def->cpu->dies : 1;
        cores = def->cpu->cores;
        threads = def->cpu->threads;
        if (sockets * dies * cores * threads != maxvcpus) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("cpu topology %u sockets, %u dies, %u cores, %u threads does not give %u vcpus"),
                           sockets, dies, cores, threads, maxvcpus);
            return -1;
        }
    }
    virBufferAsprintf(&buf, "%u", vcpus);
    if (vcpus != maxvcpus)
        virBufferAsprintf(&buf, ",maxcpus=%u", maxvcpus);
    virBufferAsprintf(&buf, ",sockets=%u", sockets);
    if (dies > 1)
        virBufferAsprintf(&buf, ",dies=%u", dies);
    virBufferAsprintf(&buf, ",cores=%u,threads=%u", cores, threads);
    qemuCmdAddBuf(cmd, "-smp", &buf);
    return 0;
}


/* ------------------------------------------------------------------------
 * Clock, power management, boot
 * ------------------------------------------------------------------------ */

static int
qemuCmdBuildClock(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    const char *pitPolicy = NULL;
    size_t i;

    switch (def->clock.offset) {
    case VIR_DOMAIN_CLOCK_OFFSET_UTC:
        virBufferAddLit(&buf, "base=utc");
        break;
    case VIR_DOMAIN_CLOCK_OFFSET_LOCALTIME:
        if (def->clock.data.timezone)
            return qemuCmdUnsupported("clock timezone", def->clock.data.timezone);
        virBufferAddLit(&buf, "base=localtime");
        break;
    default:
        return qemuCmdUnsupported("clock offset",
                                  virDomainClockOffsetTypeToString(def->clock.offset));
    }

    for (i = 0; i < def->clock.ntimers; i++) {
        virDomainTimerDef *t = def->clock.timers[i];
        const char *name = virDomainTimerNameTypeToString(t->name);

        switch (t->name) {
        case VIR_DOMAIN_TIMER_NAME_RTC:
            if (t->present == VIR_TRISTATE_BOOL_NO)
                return qemuCmdUnsupported("timer rtc present", "no");
            switch (t->track) {
            case VIR_DOMAIN_TIMER_TRACK_NONE:
            case VIR_DOMAIN_TIMER_TRACK_WALL:
                break;
            case VIR_DOMAIN_TIMER_TRACK_GUEST:
                virBufferAddLit(&buf, ",clock=vm");
                break;
            case VIR_DOMAIN_TIMER_TRACK_REALTIME:
                virBufferAddLit(&buf, ",clock=rt");
                break;
            default:
                return qemuCmdUnsupported("timer rtc track",
                                          virDomainTimerTrackTypeToString(t->track));
            }
            switch (t->tickpolicy) {
            case VIR_DOMAIN_TIMER_TICKPOLICY_NONE:
            case VIR_DOMAIN_TIMER_TICKPOLICY_DELAY:
                break;
            case VIR_DOMAIN_TIMER_TICKPOLICY_CATCHUP:
                virBufferAddLit(&buf, ",driftfix=slew");
                break;
            default:
                return qemuCmdUnsupported("timer rtc tickpolicy",
                                          virDomainTimerTickpolicyTypeToString(t->tickpolicy));
            }
            break;
        case VIR_DOMAIN_TIMER_NAME_PIT:
            if (t->present == VIR_TRISTATE_BOOL_NO)
                return qemuCmdUnsupported("timer pit present", "no");
            switch (t->tickpolicy) {
            case VIR_DOMAIN_TIMER_TICKPOLICY_NONE:
                break;
            case VIR_DOMAIN_TIMER_TICKPOLICY_DELAY:
                pitPolicy = "delay";
                break;
            case VIR_DOMAIN_TIMER_TICKPOLICY_DISCARD:
                pitPolicy = "discard";
                break;
            default:
                return qemuCmdUnsupported("timer pit tickpolicy",
                                          virDomainTimerTickpolicyTypeToString(t->tickpolicy));
            }
            break;
        case VIR_DOMAIN_TIMER_NAME_HPET:
            /* present='no' is a machine property, see qemuCmdBuildMachine */
            break;
        default:
            return qemuCmdUnsupported("timer", name);
        }
    }
    qemuCmdAddBuf(cmd, "-rtc", &buf);

    /* the TCG i8254 has no lost tick policy: it always delays */
    if (pitPolicy && def->virtType == VIR_DOMAIN_VIRT_KVM) {
        g_autofree char *global = g_strdup_printf("kvm-pit.lost_tick_policy=%s", pitPolicy);
        qemuCmdAddPair(cmd, "-global", global);
    } else if (pitPolicy && STREQ(pitPolicy, "discard")) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("timer pit tickpolicy 'discard' needs domain type 'kvm'"));
        return -1;
    }
    return 0;
}

static void
qemuCmdBuildPM(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    const char *dev = cmd->family == QEMU_DOMAIN_MACHINE_Q35 ? "ICH9-LPC" : "PIIX4_PM";
    struct {
        virTristateBool state;
        const char *prop;
    } table[] = {
        { def->pm.s3, "disable_s3" },
        { def->pm.s4, "disable_s4" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(table); i++) {
        g_autofree char *global = NULL;

        if (table[i].state == VIR_TRISTATE_BOOL_ABSENT)
            continue;
        global = g_strdup_printf("%s.%s=%d", dev, table[i].prop,
                                 table[i].state == VIR_TRISTATE_BOOL_NO ? 1 : 0);
        qemuCmdAddPair(cmd, "-global", global);
    }
}

/* <os><boot dev=.../> becomes a bootindex on the first device of each
 * kind, unless devices carry <boot order=.../> themselves. */
static void
qemuCmdComputeBootIndexes(virDomainDef *def)
{
    unsigned int next = 1;
    bool perDevice = false;
    size_t i;
    size_t b;

    for (i = 0; i < def->ndisks; i++) {
        def->disks[i]->info.effectiveBootIndex = def->disks[i]->info.bootIndex;
        perDevice |= def->disks[i]->info.bootIndex > 0;
    }
    for (i = 0; i < def->nnets; i++) {
        def->nets[i]->info.effectiveBootIndex = def->nets[i]->info.bootIndex;
        perDevice |= def->nets[i]->info.bootIndex > 0;
    }
    if (perDevice)
        return;

    for (b = 0; b < def->os.nBootDevs; b++) {
        virDomainDeviceInfo *info = NULL;

        switch (def->os.bootDevs[b]) {
        case VIR_DOMAIN_BOOT_DISK:
        case VIR_DOMAIN_BOOT_CDROM:
            for (i = 0; i < def->ndisks && !info; i++) {
                virDomainDiskDef *disk = def->disks[i];
                if ((def->os.bootDevs[b] == VIR_DOMAIN_BOOT_DISK) ==
                    (disk->device == VIR_DOMAIN_DISK_DEVICE_DISK) &&
                    (disk->device == VIR_DOMAIN_DISK_DEVICE_DISK ||
                     disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM))
                    info = &disk->info;
            }
            break;
        case VIR_DOMAIN_BOOT_NET:
            if (def->nnets > 0)
                info = &def->nets[0]->info;
            break;
        case VIR_DOMAIN_BOOT_FLOPPY:
        case VIR_DOMAIN_BOOT_LAST:
            break;
        }
        if (info && info->effectiveBootIndex == 0)
            info->effectiveBootIndex = next++;
    }
}

static void
qemuCmdBuildBoot(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    if (def->os.bootmenu == VIR_TRISTATE_BOOL_YES) {
        virBufferAddLit(&buf, "menu=on,");
        if (def->os.bm_timeout_set)
            virBufferAsprintf(&buf, "splash-time=%u,", def->os.bm_timeout);
    } else if (def->os.bootmenu == VIR_TRISTATE_BOOL_NO) {
        virBufferAddLit(&buf, "menu=off,");
    }
    if (def->os.bios.rt_set)
        virBufferAsprintf(&buf, "reboot-timeout=%d,", def->os.bios.rt_delay);
    virBufferAddLit(&buf, "strict=on");
    qemuCmdAddBuf(cmd, "-boot", &buf);

    if (def->os.kernel)
        qemuCmdAddPair(cmd, "-kernel", def->os.kernel);
    if (def->os.initrd)
        qemuCmdAddPair(cmd, "-initrd", def->os.initrd);
    if (def->os.cmdline)
        qemuCmdAddPair(cmd, "-append", def->os.cmdline);
}


/* ------------------------------------------------------------------------
 * Controllers
 * ------------------------------------------------------------------------ */

typedef struct _qemuUSBModel qemuUSBModel;
struct _qemuUSBModel {
    int model;
    const char *driver;
};

static const qemuUSBModel qemuUSBModels[] = {
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_PIIX3_UHCI, "piix3-usb-uhci" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_PIIX4_UHCI, "piix4-usb-uhci" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_EHCI, "usb-ehci" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_EHCI1, "ich9-usb-ehci1" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_UHCI1, "ich9-usb-uhci1" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_UHCI2, "ich9-usb-uhci2" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_UHCI3, "ich9-usb-uhci3" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_NEC_XHCI, "nec-usb-xhci" },
    { VIR_DOMAIN_CONTROLLER_MODEL_USB_QEMU_XHCI, "qemu-xhci" },
};

static int
qemuCmdBuildController(qemuCmd *cmd, virDomainControllerDef *cont)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    const char *driver = NULL;
    const char *type = virDomainControllerTypeToString(cont->type);
    size_t i;

    switch ((virDomainControllerType) cont->type) {
    case VIR_DOMAIN_CONTROLLER_TYPE_PCI:
        switch ((virDomainControllerModelPCI) cont->model) {
        case VIR_DOMAIN_CONTROLLER_MODEL_PCI_ROOT:
        case VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT:
            if (cont->idx != 0)
                return qemuCmdUnsupported("controller type 'pci' model",
                                          virDomainControllerModelPCITypeToString(cont->model));
            return 0;
        case VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT_PORT:
            if (cont->opts.pciopts.modelName != VIR_DOMAIN_CONTROLLER_PCI_MODEL_NAME_PCIE_ROOT_PORT)
                return qemuCmdUnsupported("controller model name",
                                          virDomainControllerPCIModelNameTypeToString(cont->opts.pciopts.modelName));
            qemuPropsStr(&p, "driver", "pcie-root-port");
            qemuPropsInt(&p, "port", cont->opts.pciopts.port);
            qemuPropsInt(&p, "chassis", cont->opts.pciopts.chassis);
            break;
        case VIR_DOMAIN_CONTROLLER_MODEL_PCI_BRIDGE:
            qemuPropsStr(&p, "driver", "pci-bridge");
            qemuPropsInt(&p, "chassis_nr", cont->opts.pciopts.chassisNr);
            break;
        default:
            return qemuCmdUnsupported("controller type 'pci' model",
                                      virDomainControllerModelPCITypeToString(cont->model));
        }
        if (cont->opts.pciopts.hotplug == VIR_TRISTATE_SWITCH_OFF)
            return qemuCmdUnsupported("controller hotplug", "off");
        break;

    case VIR_DOMAIN_CONTROLLER_TYPE_USB:
        if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_USB_NONE)
            return 0;
        for (i = 0; i < G_N_ELEMENTS(qemuUSBModels); i++) {
            if (qemuUSBModels[i].model == cont->model)
                driver = qemuUSBModels[i].driver;
        }
        if (!driver)
            return qemuCmdUnsupported("controller type 'usb' model",
                                      virDomainControllerModelUSBTypeToString(cont->model));
        if (cmd->family == QEMU_DOMAIN_MACHINE_PC && cont->idx == 0 &&
            cont->model == VIR_DOMAIN_CONTROLLER_MODEL_USB_PIIX3_UHCI &&
            cont->info.type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_PCI &&
            cont->info.addr.pci.bus == 0 && cont->info.addr.pci.slot == 1 &&
            cont->info.addr.pci.function != 2) {
            return qemuCmdUnsupported("USB controller PCI function on slot 1", "not 2");
        }
        qemuPropsStr(&p, "driver", driver);
        if (cont->info.mastertype == VIR_DOMAIN_CONTROLLER_MASTER_USB) {
            /* a companion: no id of its own, it serves the ehci's bus */
            g_autofree char *master = g_strdup_printf("%s.0", cont->info.alias);
            qemuPropsStr(&p, "masterbus", master);
            qemuPropsInt(&p, "firstport", cont->info.master.usb.startport);
            if (qemuCmdAddPCIAddress(cmd, &p, &cont->info) < 0)
                return -1;
            qemuCmdAddProps(cmd, "-device", &p);
            return 0;
        }
        if (cont->opts.usbopts.ports > 0) {
            if (cont->model != VIR_DOMAIN_CONTROLLER_MODEL_USB_QEMU_XHCI &&
                cont->model != VIR_DOMAIN_CONTROLLER_MODEL_USB_NEC_XHCI)
                return qemuCmdUnsupported("controller type 'usb' ports with model",
                                          virDomainControllerModelUSBTypeToString(cont->model));
            qemuPropsInt(&p, "p2", cont->opts.usbopts.ports);
            qemuPropsInt(&p, "p3", cont->opts.usbopts.ports);
        }
        break;

    case VIR_DOMAIN_CONTROLLER_TYPE_SCSI:
        if (cont->model != VIR_DOMAIN_CONTROLLER_MODEL_SCSI_VIRTIO_SCSI)
            return qemuCmdUnsupported("controller type 'scsi' model",
                                      virDomainControllerModelSCSITypeToString(cont->model));
        qemuPropsStr(&p, "driver", "virtio-scsi-pci");
        if (cont->queues)
            qemuPropsInt(&p, "num_queues", cont->queues);
        break;

    case VIR_DOMAIN_CONTROLLER_TYPE_VIRTIO_SERIAL:
        if (cont->model != VIR_DOMAIN_CONTROLLER_MODEL_VIRTIO_SERIAL_VIRTIO)
            return qemuCmdUnsupported("controller type 'virtio-serial' model",
                                      QEMU_ENUM_NAME(qemuVirtioSerialModelNames, cont->model));
        qemuPropsStr(&p, "driver", "virtio-serial-pci");
        if (cont->opts.vioserial.ports > 0)
            qemuPropsInt(&p, "max_ports", cont->opts.vioserial.ports);
        if (cont->opts.vioserial.vectors > 0)
            qemuPropsInt(&p, "vectors", cont->opts.vioserial.vectors);
        break;

    case VIR_DOMAIN_CONTROLLER_TYPE_IDE:
        if (cmd->family != QEMU_DOMAIN_MACHINE_PC || cont->idx != 0)
            return qemuCmdUnsupported("controller type 'ide' on machine type", cmd->def->os.machine);
        if (cont->model != VIR_DOMAIN_CONTROLLER_MODEL_IDE_DEFAULT &&
            cont->model != VIR_DOMAIN_CONTROLLER_MODEL_IDE_PIIX3)
            return qemuCmdUnsupported("controller type 'ide' model",
                                      virDomainControllerModelIDETypeToString(cont->model));
        return 0;   /* the PIIX3 IDE function */

    case VIR_DOMAIN_CONTROLLER_TYPE_SATA:
        if (cmd->family == QEMU_DOMAIN_MACHINE_Q35 && cont->idx == 0)
            return 0;   /* the ICH9 AHCI function */
        qemuPropsStr(&p, "driver", "ich9-ahci");
        break;

    case VIR_DOMAIN_CONTROLLER_TYPE_FDC:
    case VIR_DOMAIN_CONTROLLER_TYPE_CCID:
    case VIR_DOMAIN_CONTROLLER_TYPE_XENBUS:
    case VIR_DOMAIN_CONTROLLER_TYPE_ISA:
    case VIR_DOMAIN_CONTROLLER_TYPE_LAST:
    default:
        return qemuCmdUnsupported("controller type", type);
    }

    if (cont->iothread || cont->ioeventfd || cont->cmd_per_lun || cont->max_sectors)
        return qemuCmdUnsupported("controller driver options for type", type);
    if (qemuCmdCheckAlias(&cont->info, "controller") < 0)
        return -1;
    qemuPropsStr(&p, "id", cont->info.alias);
    if (qemuCmdAddPCIAddress(cmd, &p, &cont->info) < 0)
        return -1;
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildControllers(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    /* buses before what plugs into them */
    int order[] = {
        VIR_DOMAIN_CONTROLLER_TYPE_PCI,
        VIR_DOMAIN_CONTROLLER_TYPE_USB,
        VIR_DOMAIN_CONTROLLER_TYPE_IDE,
        VIR_DOMAIN_CONTROLLER_TYPE_SATA,
        VIR_DOMAIN_CONTROLLER_TYPE_SCSI,
        VIR_DOMAIN_CONTROLLER_TYPE_VIRTIO_SERIAL,
        VIR_DOMAIN_CONTROLLER_TYPE_FDC,
        VIR_DOMAIN_CONTROLLER_TYPE_CCID,
        VIR_DOMAIN_CONTROLLER_TYPE_XENBUS,
        VIR_DOMAIN_CONTROLLER_TYPE_ISA,
    };
    size_t o;
    size_t i;

    G_STATIC_ASSERT(G_N_ELEMENTS(order) == VIR_DOMAIN_CONTROLLER_TYPE_LAST);

    for (o = 0; o < G_N_ELEMENTS(order); o++) {
        for (i = 0; i < def->ncontrollers; i++) {
            if (def->controllers[i]->type == order[o] &&
                qemuCmdBuildController(cmd, def->controllers[i]) < 0)
                return -1;
        }
    }
    return 0;
}


/* ------------------------------------------------------------------------
 * Disks
 * ------------------------------------------------------------------------ */

typedef struct _qemuDiskCacheMode qemuDiskCacheMode;
struct _qemuDiskCacheMode {
    bool direct;
    bool noFlush;
    bool writeCache;
};

static const qemuDiskCacheMode qemuDiskCacheModes[] = {
    [VIR_DOMAIN_DISK_CACHE_DEFAULT] = { false, false, true },
    [VIR_DOMAIN_DISK_CACHE_DISABLE] = { true, false, true },
    [VIR_DOMAIN_DISK_CACHE_WRITETHRU] = { false, false, false },
    [VIR_DOMAIN_DISK_CACHE_WRITEBACK] = { false, false, true },
    [VIR_DOMAIN_DISK_CACHE_DIRECTSYNC] = { true, false, false },
    [VIR_DOMAIN_DISK_CACHE_UNSAFE] = { false, true, true },
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuDiskCacheModes) == VIR_DOMAIN_DISK_CACHE_LAST);

static const char *const qemuDiskErrorPolicies[] = {
    [VIR_DOMAIN_DISK_ERROR_POLICY_DEFAULT] = NULL,
    [VIR_DOMAIN_DISK_ERROR_POLICY_STOP] = "stop",
    [VIR_DOMAIN_DISK_ERROR_POLICY_REPORT] = "report",
    [VIR_DOMAIN_DISK_ERROR_POLICY_IGNORE] = "ignore",
    [VIR_DOMAIN_DISK_ERROR_POLICY_ENOSPACE] = "enospc",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuDiskErrorPolicies) == VIR_DOMAIN_DISK_ERROR_POLICY_LAST);

static int
qemuCmdCheckDisk(qemuCmd *cmd, virDomainDiskDef *disk)
{
    virStorageSource *src = disk->src;
    const char *bus = virDomainDiskBusTypeToString(disk->bus);

    switch (disk->bus) {
    case VIR_DOMAIN_DISK_BUS_VIRTIO:
    case VIR_DOMAIN_DISK_BUS_SCSI:
    case VIR_DOMAIN_DISK_BUS_SATA:
        break;
    case VIR_DOMAIN_DISK_BUS_IDE:
        if (cmd->family != QEMU_DOMAIN_MACHINE_PC) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("disk bus 'ide' is not supported by machine type '%s' (use 'sata')"),
                           cmd->def->os.machine);
            return -1;
        }
        break;
    default:
        return qemuCmdUnsupported("disk bus", bus);
    }

    switch (disk->device) {
    case VIR_DOMAIN_DISK_DEVICE_DISK:
        break;
    case VIR_DOMAIN_DISK_DEVICE_CDROM:
        if (disk->bus == VIR_DOMAIN_DISK_BUS_VIRTIO)
            return qemuCmdUnsupported("cdrom on disk bus", bus);
        break;
    default:
        return qemuCmdUnsupported("disk device", virDomainDiskDeviceTypeToString(disk->device));
    }

    switch (src->type) {
    case VIR_STORAGE_TYPE_FILE:
    case VIR_STORAGE_TYPE_BLOCK:
        break;
    case VIR_STORAGE_TYPE_NONE:
        if (disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM)
            break;
        G_GNUC_FALLTHROUGH;
    default:
        return qemuCmdUnsupported("disk type", virStorageTypeToString(src->type));
    }
    if (!src->path && disk->device != VIR_DOMAIN_DISK_DEVICE_CDROM) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("disk '%s' has no source"), disk->dst);
        return -1;
    }

    if (src->format != VIR_STORAGE_FILE_NONE &&
        src->format != VIR_STORAGE_FILE_RAW &&
        src->format != VIR_STORAGE_FILE_QCOW2)
        return qemuCmdUnsupported("disk format", virStorageFileFormatTypeToString(src->format));

    if (src->readonly && disk->device == VIR_DOMAIN_DISK_DEVICE_DISK &&
        (disk->bus == VIR_DOMAIN_DISK_BUS_IDE || disk->bus == VIR_DOMAIN_DISK_BUS_SATA))
        return qemuCmdUnsupported("readonly disk on disk bus", bus);

    if (disk->iomode == VIR_DOMAIN_DISK_IO_NATIVE &&
        !qemuDiskCacheModes[disk->cachemode].direct) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("disk '%s': io 'native' needs cache mode 'none' or 'directsync'"),
                       disk->dst);
        return -1;
    }

    if (disk->rerror_policy == VIR_DOMAIN_DISK_ERROR_POLICY_ENOSPACE)
        return qemuCmdUnsupported("disk rerror_policy", "enospace");

    if (disk->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_DRIVE &&
        disk->bus != VIR_DOMAIN_DISK_BUS_VIRTIO) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("disk '%s' has no drive address"), disk->dst);
        return -1;
    }

    if (disk->iothread || disk->transient || disk->queues || disk->queue_size ||
        disk->blockio.logical_block_size || disk->blockio.physical_block_size ||
        disk->geometry.cylinders || disk->copy_on_read || disk->wwn ||
        disk->vendor || disk->product || disk->blkdeviotune.total_bytes_sec ||
        disk->blkdeviotune.read_bytes_sec || disk->blkdeviotune.write_bytes_sec ||
        disk->blkdeviotune.total_iops_sec || disk->blkdeviotune.read_iops_sec ||
        disk->blkdeviotune.write_iops_sec || src->encryption || src->auth ||
        disk->mirror) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("disk '%s' uses driver, iotune, geometry or encryption options that are not supported by Tandem"),
                       disk->dst);
        return -1;
    }
    return 0;
}

static char *
qemuCmdDiskCacheJSON(const qemuDiskCacheMode *mode)
{
    return g_strdup_printf("{\"direct\":%s,\"no-flush\":%s}",
                           mode->direct ? "true" : "false",
                           mode->noFlush ? "true" : "false");
}

static int
qemuCmdBuildDisk(qemuCmd *cmd, virDomainDiskDef *disk, unsigned int node)
{
    virStorageSource *src = disk->src;
    const qemuDiskCacheMode *cache = &qemuDiskCacheModes[disk->cachemode];
    bool explicitCache = disk->cachemode != VIR_DOMAIN_DISK_CACHE_DEFAULT;
    bool readonly = src->readonly || disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM;
    g_autofree char *cacheJSON = qemuCmdDiskCacheJSON(cache);
    g_autofree char *storageName = NULL;
    g_autofree char *formatName = NULL;
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    virDomainDeviceDriveAddress *a = &disk->info.addr.drive;
    const char *discard = NULL;
    bool cd = disk->device == VIR_DOMAIN_DISK_DEVICE_CDROM;

    if (qemuCmdCheckDisk(cmd, disk) < 0 ||
        qemuCmdCheckAlias(&disk->info, "disk") < 0)
        return -1;

    if (disk->discard == VIR_DOMAIN_DISK_DISCARD_UNMAP)
        discard = "unmap";
    else if (disk->discard == VIR_DOMAIN_DISK_DISCARD_IGNORE)
        discard = "ignore";

    if (src->path) {
        storageName = g_strdup_printf("libvirt-%u-storage", node);
        formatName = g_strdup_printf("libvirt-%u-format", node);

        qemuPropsStr(&p, "driver", src->type == VIR_STORAGE_TYPE_BLOCK ? "host_device" : "file");
        qemuPropsStr(&p, "filename", src->path);
        if (disk->iomode != VIR_DOMAIN_DISK_IO_DEFAULT)
            qemuPropsStr(&p, "aio", virDomainDiskIoTypeToString(disk->iomode));
        qemuPropsStr(&p, "node-name", storageName);
        if (explicitCache)
            qemuPropsRaw(&p, "cache", cacheJSON);
        qemuPropsBool(&p, "auto-read-only", true);
        qemuPropsStr(&p, "discard", "unmap");
        qemuCmdAddProps(cmd, "-blockdev", &p);

        qemuPropsStr(&p, "node-name", formatName);
        qemuPropsBool(&p, "read-only", readonly);
        if (discard)
            qemuPropsStr(&p, "discard", discard);
        if (explicitCache)
            qemuPropsRaw(&p, "cache", cacheJSON);
        switch (disk->detect_zeroes) {
        case VIR_DOMAIN_DISK_DETECT_ZEROES_ON:
            qemuPropsStr(&p, "detect-zeroes", "on");
            break;
        case VIR_DOMAIN_DISK_DETECT_ZEROES_UNMAP:
            qemuPropsStr(&p, "detect-zeroes", "unmap");
            break;
        case VIR_DOMAIN_DISK_DETECT_ZEROES_OFF:
            qemuPropsStr(&p, "detect-zeroes", "off");
            break;
        default:
            break;
        }
        qemuPropsStr(&p, "driver", src->format == VIR_STORAGE_FILE_QCOW2 ? "qcow2" : "raw");
        qemuPropsStr(&p, "file", storageName);
        qemuCmdAddProps(cmd, "-blockdev", &p);
    }

    switch (disk->bus) {
    case VIR_DOMAIN_DISK_BUS_VIRTIO:
        qemuPropsStr(&p, "driver", "virtio-blk-pci");
        if (qemuCmdAddPCIAddress(cmd, &p, &disk->info) < 0)
            return -1;
        break;

    case VIR_DOMAIN_DISK_BUS_IDE: {
        g_autofree char *busName = NULL;

        if (a->controller != 0 || a->bus > 1 || a->unit > 1 || a->target != 0)
            return qemuCmdUnsupported("ide disk address for disk", disk->dst);
        busName = g_strdup_printf("ide.%u", a->bus);
        qemuPropsStr(&p, "driver", cd ? "ide-cd" : "ide-hd");
        qemuPropsStr(&p, "bus", busName);
        qemuPropsInt(&p, "unit", a->unit);
        break;
    }

    case VIR_DOMAIN_DISK_BUS_SATA: {
        virDomainControllerDef *ctrl = qemuCmdFindController(cmd->def, VIR_DOMAIN_CONTROLLER_TYPE_SATA,
                                                             a->controller);
        g_autofree char *busName = NULL;

        if (!ctrl || a->bus != 0 || a->target != 0 || a->unit > 5)
            return qemuCmdUnsupported("sata disk address for disk", disk->dst);
        busName = g_strdup_printf("%s.%u", ctrl->info.alias, a->unit);
        qemuPropsStr(&p, "driver", cd ? "ide-cd" : "ide-hd");
        qemuPropsStr(&p, "bus", busName);
        break;
    }

    case VIR_DOMAIN_DISK_BUS_SCSI: {
        virDomainControllerDef *ctrl = qemuCmdFindController(cmd->def, VIR_DOMAIN_CONTROLLER_TYPE_SCSI,
                                                             a->controller);
        g_autofree char *busName = NULL;

        if (!ctrl)
            return qemuCmdUnsupported("scsi disk address for disk", disk->dst);
        busName = g_strdup_printf("%s.0", ctrl->info.alias);
        qemuPropsStr(&p, "driver", cd ? "scsi-cd" : "scsi-hd");
        qemuPropsStr(&p, "bus", busName);
        qemuPropsInt(&p, "channel", a->bus);
        qemuPropsInt(&p, "scsi-id", a->target);
        qemuPropsInt(&p, "lun", a->unit);
        break;
    }

    default:
        return qemuCmdUnsupported("disk bus", virDomainDiskBusTypeToString(disk->bus));
    }

    if (formatName)
        qemuPropsStr(&p, "drive", formatName);
    qemuPropsStr(&p, "id", disk->info.alias);
    if (disk->info.effectiveBootIndex)
        qemuPropsInt(&p, "bootindex", disk->info.effectiveBootIndex);
    if (explicitCache && formatName)
        qemuPropsStr(&p, "write-cache", cache->writeCache ? "on" : "off");
    if (disk->serial)
        qemuPropsStr(&p, "serial", disk->serial);
    if (src->shared && formatName)
        qemuPropsBool(&p, "share-rw", true);
    if (qemuDiskErrorPolicies[disk->error_policy])
        qemuPropsStr(&p, "werror", qemuDiskErrorPolicies[disk->error_policy]);
    if (qemuDiskErrorPolicies[disk->rerror_policy])
        qemuPropsStr(&p, "rerror", qemuDiskErrorPolicies[disk->rerror_policy]);
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildDisks(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    unsigned int node = 0;
    size_t i;

    /* node names count down like libvirt's: the last disk is libvirt-1 */
    for (i = 0; i < def->ndisks; i++) {
        if (def->disks[i]->src->path)
            node++;
    }
    for (i = 0; i < def->ndisks; i++) {
        if (qemuCmdBuildDisk(cmd, def->disks[i], node) < 0)
            return -1;
        if (def->disks[i]->src->path)
            node--;
    }
    return 0;
}


/* ------------------------------------------------------------------------
 * Network interfaces
 * ------------------------------------------------------------------------ */

typedef struct _qemuNetModel qemuNetModel;
struct _qemuNetModel {
    int model;
    const char *driver;
};

static const qemuNetModel qemuNetModels[] = {
    { VIR_DOMAIN_NET_MODEL_VIRTIO, "virtio-net-pci" },
    { VIR_DOMAIN_NET_MODEL_E1000, "e1000" },
    { VIR_DOMAIN_NET_MODEL_E1000E, "e1000e" },
    { VIR_DOMAIN_NET_MODEL_RTL8139, "rtl8139" },
};

static int
qemuCmdBuildNet(qemuCmd *cmd, virDomainNetDef *net, size_t idx)
{
    const qemuBuildCommandLineOpts *opts = cmd->opts;
    const char *type = virDomainNetTypeToString(net->type);
    const char *driver = NULL;
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *netdevId = NULL;
    char mac[VIR_MAC_STRING_BUFLEN];
    size_t i;

    if (qemuCmdCheckAlias(&net->info, "interface") < 0)
        return -1;
    netdevId = g_strdup_printf("host%s", net->info.alias);

    if (net->modelstr)
        return qemuCmdUnsupported("interface model", net->modelstr);
    for (i = 0; i < G_N_ELEMENTS(qemuNetModels); i++) {
        if (qemuNetModels[i].model == net->model)
            driver = qemuNetModels[i].driver;
    }
    if (!driver)
        return qemuCmdUnsupported("interface model", virDomainNetModelTypeToString(net->model));
    if (net->backend.type != VIR_DOMAIN_NET_BACKEND_DEFAULT || net->backend.tap ||
        net->backend.vhost)
        return qemuCmdUnsupported("interface backend for type", type);
    if (net->nPortForwards > 0 || net->bandwidth || net->virtPortProfile ||
        net->vlan.nTags > 0 || net->filter || net->coalesce || net->script ||
        net->driver.virtio.queues > 1 || net->driver.virtio.name) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("interface '%s' uses driver, bandwidth, vlan, filter, port forwarding or script options that are not supported by Tandem"),
                       net->info.alias);
        return -1;
    }

    switch (net->type) {
    case VIR_DOMAIN_NET_TYPE_USER:
        qemuPropsStr(&p, "type", "user");
        break;
    case VIR_DOMAIN_NET_TYPE_NETWORK:
    case VIR_DOMAIN_NET_TYPE_BRIDGE: {
        g_autofree char *fd = NULL;

        if (!opts->privileged) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("interface '%s' of type '%s' needs the privileged daemon (qemu:///system): an unprivileged driver cannot create tap devices; use type 'user' instead"),
                           net->info.alias, type);
            return -1;
        }
        if (opts->tapfdName) {
            fd = g_strdup(opts->tapfdName);
        } else if (!opts->tapfds || idx >= opts->ntapfds || opts->tapfds[idx] < 0) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("no tap device was opened for interface '%s'"),
                           net->info.alias);
            return -1;
        } else {
            fd = g_strdup_printf("%d", opts->tapfds[idx]);
        }
        qemuPropsStr(&p, "type", "tap");
        qemuPropsStr(&p, "fd", fd);
        break;
    }
    default:
        return qemuCmdUnsupported("interface type", type);
    }
    qemuPropsStr(&p, "id", netdevId);
    qemuCmdAddProps(cmd, "-netdev", &p);

    qemuPropsStr(&p, "driver", driver);
    qemuPropsStr(&p, "netdev", netdevId);
    qemuPropsStr(&p, "id", net->info.alias);
    qemuPropsStr(&p, "mac", virMacAddrFormat(&net->mac, mac));
    if (net->mtu) {
        if (net->model != VIR_DOMAIN_NET_MODEL_VIRTIO)
            return qemuCmdUnsupported("interface mtu with model", driver);
        qemuPropsInt(&p, "host_mtu", net->mtu);
    }
    if (qemuCmdAddPCIAddress(cmd, &p, &net->info) < 0)
        return -1;
    if (net->info.effectiveBootIndex)
        qemuPropsInt(&p, "bootindex", net->info.effectiveBootIndex);
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}


/* ------------------------------------------------------------------------
 * Character devices
 * ------------------------------------------------------------------------ */

static const char *const qemuSpicevmcNames[] = {
    [VIR_DOMAIN_CHR_SPICEVMC_VDAGENT] = "vdagent",
    [VIR_DOMAIN_CHR_SPICEVMC_SMARTCARD] = "smartcard",
    [VIR_DOMAIN_CHR_SPICEVMC_USBREDIR] = "usbredir",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuSpicevmcNames) == VIR_DOMAIN_CHR_SPICEVMC_LAST);

static int
qemuCmdBuildChardev(qemuCmd *cmd, virDomainChrSourceDef *src, const char *alias)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    switch ((virDomainChrType) src->type) {
    case VIR_DOMAIN_CHR_TYPE_NULL:
        virBufferAsprintf(&buf, "null,id=char%s", alias);
        break;
    case VIR_DOMAIN_CHR_TYPE_PTY:
        virBufferAsprintf(&buf, "pty,id=char%s", alias);
        break;
    case VIR_DOMAIN_CHR_TYPE_FILE:
        if (!src->data.file.path)
            return qemuCmdUnsupported("file character device without a path for", alias);
        virBufferAsprintf(&buf, "file,id=char%s,path=", alias);
        qemuBufEscapeComma(&buf, src->data.file.path);
        if (src->data.file.append != VIR_TRISTATE_SWITCH_ABSENT)
            virBufferAsprintf(&buf, ",append=%s",
                              virTristateSwitchTypeToString(src->data.file.append));
        break;
    case VIR_DOMAIN_CHR_TYPE_UNIX:
        if (!src->data.nix.path)
            return qemuCmdUnsupported("unix character device without a path for", alias);
        virBufferAsprintf(&buf, "socket,id=char%s,path=", alias);
        qemuBufEscapeComma(&buf, src->data.nix.path);
        if (src->data.nix.listen)
            virBufferAddLit(&buf, ",server=on,wait=off");
        else if (src->data.nix.reconnect.enabled == VIR_TRISTATE_BOOL_YES)
            virBufferAsprintf(&buf, ",reconnect=%u", src->data.nix.reconnect.timeout);
        break;
    case VIR_DOMAIN_CHR_TYPE_TCP:
        if (src->data.tcp.protocol != VIR_DOMAIN_CHR_TCP_PROTOCOL_RAW &&
            src->data.tcp.protocol != VIR_DOMAIN_CHR_TCP_PROTOCOL_TELNET)
            return qemuCmdUnsupported("tcp character device protocol",
                                      virDomainChrTcpProtocolTypeToString(src->data.tcp.protocol));
        if (!src->data.tcp.host || !src->data.tcp.service)
            return qemuCmdUnsupported("tcp character device without host and service for", alias);
        virBufferAsprintf(&buf, "socket,id=char%s,host=", alias);
        qemuBufEscapeComma(&buf, src->data.tcp.host);
        virBufferAddLit(&buf, ",port=");
        qemuBufEscapeComma(&buf, src->data.tcp.service);
        if (src->data.tcp.protocol == VIR_DOMAIN_CHR_TCP_PROTOCOL_TELNET)
            virBufferAddLit(&buf, ",telnet=on");
        if (src->data.tcp.listen)
            virBufferAddLit(&buf, ",server=on,wait=off");
        else if (src->data.tcp.reconnect.enabled == VIR_TRISTATE_BOOL_YES)
            virBufferAsprintf(&buf, ",reconnect=%u", src->data.tcp.reconnect.timeout);
        break;
    case VIR_DOMAIN_CHR_TYPE_SPICEVMC:
        if (!cmd->hasSpice)
            return qemuCmdUnsupported("spicevmc character device without spice graphics for", alias);
        virBufferAsprintf(&buf, "spicevmc,id=char%s,name=%s", alias,
                          qemuSpicevmcNames[src->data.spicevmc]);
        break;
    case VIR_DOMAIN_CHR_TYPE_SPICEPORT:
        if (!cmd->hasSpice)
            return qemuCmdUnsupported("spiceport character device without spice graphics for", alias);
        virBufferAsprintf(&buf, "spiceport,id=char%s,name=", alias);
        qemuBufEscapeComma(&buf, src->data.spiceport.channel);
        break;
    default:
        return qemuCmdUnsupported("character device type", virDomainChrTypeToString(src->type));
    }

    if (src->logfile) {
        virBufferAddLit(&buf, ",logfile=");
        qemuBufEscapeComma(&buf, src->logfile);
        if (src->logappend != VIR_TRISTATE_SWITCH_ABSENT)
            virBufferAsprintf(&buf, ",logappend=%s",
                              virTristateSwitchTypeToString(src->logappend));
    }
    qemuCmdAddBuf(cmd, "-chardev", &buf);
    return 0;
}

static int
qemuCmdAddVirtioSerialBus(qemuCmd *cmd, qemuProps *p, virDomainChrDef *chr)
{
    virDomainDeviceVirtioSerialAddress *a = &chr->info.addr.vioserial;
    virDomainControllerDef *ctrl;
    g_autofree char *bus = NULL;

    if (chr->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_VIRTIO_SERIAL ||
        !(ctrl = qemuCmdFindController(cmd->def, VIR_DOMAIN_CONTROLLER_TYPE_VIRTIO_SERIAL,
                                       a->controller))) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("'%s' needs a virtio-serial controller"), chr->info.alias);
        return -1;
    }
    bus = g_strdup_printf("%s.%u", ctrl->info.alias, a->bus);
    qemuPropsStr(p, "bus", bus);
    qemuPropsInt(p, "nr", a->port);
    return 0;
}

static int
qemuCmdBuildSerial(qemuCmd *cmd, virDomainChrDef *chr)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *chardev = NULL;

    if (qemuCmdCheckAlias(&chr->info, "serial") < 0)
        return -1;
    if (chr->targetType != VIR_DOMAIN_CHR_SERIAL_TARGET_TYPE_ISA &&
        chr->targetType != VIR_DOMAIN_CHR_SERIAL_TARGET_TYPE_NONE)
        return qemuCmdUnsupported("serial target type",
                                  virDomainChrSerialTargetTypeToString(chr->targetType));
    if (chr->targetModel != VIR_DOMAIN_CHR_SERIAL_TARGET_MODEL_NONE &&
        chr->targetModel != VIR_DOMAIN_CHR_SERIAL_TARGET_MODEL_ISA_SERIAL)
        return qemuCmdUnsupported("serial target model",
                                  virDomainChrSerialTargetModelTypeToString(chr->targetModel));
    if (qemuCmdCheckNoAddress(&chr->info, "serial port") < 0 ||
        qemuCmdBuildChardev(cmd, chr->source, chr->info.alias) < 0)
        return -1;

    chardev = g_strdup_printf("char%s", chr->info.alias);
    qemuPropsStr(&p, "driver", "isa-serial");
    qemuPropsStr(&p, "chardev", chardev);
    qemuPropsStr(&p, "id", chr->info.alias);
    qemuPropsInt(&p, "index", chr->target.port);
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildConsole(qemuCmd *cmd, virDomainChrDef *chr, size_t idx)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *chardev = NULL;

    switch (chr->targetType) {
    case VIR_DOMAIN_CHR_CONSOLE_TARGET_TYPE_SERIAL:
        /* the first console is the first serial port */
        if (idx == 0 && cmd->def->nserials > 0)
            return 0;
        return qemuCmdUnsupported("console target type", "serial");
    case VIR_DOMAIN_CHR_CONSOLE_TARGET_TYPE_VIRTIO:
        break;
    default:
        return qemuCmdUnsupported("console target type",
                                  virDomainChrConsoleTargetTypeToString(chr->targetType));
    }

    if (qemuCmdCheckAlias(&chr->info, "console") < 0 ||
        qemuCmdBuildChardev(cmd, chr->source, chr->info.alias) < 0)
        return -1;
    chardev = g_strdup_printf("char%s", chr->info.alias);
    qemuPropsStr(&p, "driver", "virtconsole");
    if (qemuCmdAddVirtioSerialBus(cmd, &p, chr) < 0)
        return -1;
    qemuPropsStr(&p, "chardev", chardev);
    qemuPropsStr(&p, "id", chr->info.alias);
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildChannel(qemuCmd *cmd, virDomainChrDef *chr)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *chardev = NULL;
    virDomainChrSourceDef *src = chr->source;

    if (chr->targetType != VIR_DOMAIN_CHR_CHANNEL_TARGET_TYPE_VIRTIO)
        return qemuCmdUnsupported("channel target type",
                                  QEMU_ENUM_NAME(qemuChannelTargetNames, chr->targetType));
    if (qemuCmdCheckAlias(&chr->info, "channel") < 0)
        return -1;

    /* <source mode='bind'/> without a path (virt-install's guest agent
     * channel): the socket lives in the domain's private directory, and
     * the live definition says where */
    if (src->type == VIR_DOMAIN_CHR_TYPE_UNIX && !src->data.nix.path) {
        if (!cmd->opts->libDir) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("no private directory for the channel sockets"));
            return -1;
        }
        src->data.nix.path = g_build_filename(cmd->opts->libDir,
                                              chr->target.name ? chr->target.name : chr->info.alias,
                                              NULL);
        src->data.nix.listen = true;
    }

    if (qemuCmdBuildChardev(cmd, src, chr->info.alias) < 0)
        return -1;
    chardev = g_strdup_printf("char%s", chr->info.alias);
    qemuPropsStr(&p, "driver", "virtserialport");
    if (qemuCmdAddVirtioSerialBus(cmd, &p, chr) < 0)
        return -1;
    qemuPropsStr(&p, "chardev", chardev);
    qemuPropsStr(&p, "id", chr->info.alias);
    qemuPropsStr(&p, "name", chr->target.name);
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildChrs(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    size_t i;

    for (i = 0; i < def->nserials; i++) {
        if (qemuCmdBuildSerial(cmd, def->serials[i]) < 0)
            return -1;
    }
    for (i = 0; i < def->nchannels; i++) {
        if (qemuCmdBuildChannel(cmd, def->channels[i]) < 0)
            return -1;
    }
    for (i = 0; i < def->nconsoles; i++) {
        if (qemuCmdBuildConsole(cmd, def->consoles[i], i) < 0)
            return -1;
    }
    return 0;
}


/* ------------------------------------------------------------------------
 * Input, USB redirection
 * ------------------------------------------------------------------------ */

static bool
qemuCmdHasUSB(virDomainDef *def)
{
    size_t i;

    for (i = 0; i < def->ncontrollers; i++) {
        if (def->controllers[i]->type == VIR_DOMAIN_CONTROLLER_TYPE_USB &&
            def->controllers[i]->model != VIR_DOMAIN_CONTROLLER_MODEL_USB_NONE)
            return true;
    }
    return false;
}

static int
qemuCmdAddUSBAddress(qemuCmd *cmd, qemuProps *p, virDomainDeviceInfo *info,
                     const char *what)
{
    virDomainControllerDef *ctrl;
    g_auto(virBuffer) port = VIR_BUFFER_INITIALIZER;
    g_autofree char *bus = NULL;
    size_t i;

    if (!qemuCmdHasUSB(cmd->def)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("%s needs a USB controller"), what);
        return -1;
    }
    if (info->type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE)
        return 0;   /* QEMU takes the first free port */
    if (info->type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_USB)
        return qemuCmdCheckNoAddress(info, what);

    if (!(ctrl = qemuCmdFindController(cmd->def, VIR_DOMAIN_CONTROLLER_TYPE_USB,
                                       info->addr.usb.bus))) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("%s is on USB bus %u, which has no controller"),
                       what, info->addr.usb.bus);
        return -1;
    }
    bus = g_strdup_printf("%s.0", ctrl->info.alias);
    qemuPropsStr(p, "bus", bus);
    for (i = 0; i < VIR_DOMAIN_DEVICE_USB_MAX_PORT_DEPTH && info->addr.usb.port[i]; i++)
        virBufferAsprintf(&port, "%s%u", i ? "." : "", info->addr.usb.port[i]);
    if (virBufferUse(&port) > 0) {
        g_autofree char *str = virBufferContentAndReset(&port);
        qemuPropsStr(p, "port", str);
    }
    return 0;
}

static int
qemuCmdBuildInput(qemuCmd *cmd, virDomainInputDef *input)
{
    static const char *const usbDrivers[] = {
        [VIR_DOMAIN_INPUT_TYPE_MOUSE] = "usb-mouse",
        [VIR_DOMAIN_INPUT_TYPE_TABLET] = "usb-tablet",
        [VIR_DOMAIN_INPUT_TYPE_KBD] = "usb-kbd",
    };
    static const char *const virtioDrivers[] = {
        [VIR_DOMAIN_INPUT_TYPE_MOUSE] = "virtio-mouse-pci",
        [VIR_DOMAIN_INPUT_TYPE_TABLET] = "virtio-tablet-pci",
        [VIR_DOMAIN_INPUT_TYPE_KBD] = "virtio-keyboard-pci",
    };
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    const char *type = virDomainInputTypeToString(input->type);

    if (input->type != VIR_DOMAIN_INPUT_TYPE_MOUSE &&
        input->type != VIR_DOMAIN_INPUT_TYPE_TABLET &&
        input->type != VIR_DOMAIN_INPUT_TYPE_KBD)
        return qemuCmdUnsupported("input type", type);
    if (input->model != VIR_DOMAIN_INPUT_MODEL_DEFAULT &&
        input->model != VIR_DOMAIN_INPUT_MODEL_VIRTIO)
        return qemuCmdUnsupported("input model", QEMU_ENUM_NAME(qemuInputModelNames, input->model));

    switch (input->bus) {
    case VIR_DOMAIN_INPUT_BUS_PS2:
        /* the i8042 of the chipset */
        if (input->type == VIR_DOMAIN_INPUT_TYPE_TABLET)
            return qemuCmdUnsupported("input type 'tablet' on bus", "ps2");
        return 0;
    case VIR_DOMAIN_INPUT_BUS_USB:
        if (qemuCmdCheckAlias(&input->info, "input") < 0)
            return -1;
        qemuPropsStr(&p, "driver", usbDrivers[input->type]);
        qemuPropsStr(&p, "id", input->info.alias);
        if (qemuCmdAddUSBAddress(cmd, &p, &input->info, "USB input") < 0)
            return -1;
        break;
    case VIR_DOMAIN_INPUT_BUS_VIRTIO:
        if (qemuCmdCheckAlias(&input->info, "input") < 0)
            return -1;
        qemuPropsStr(&p, "driver", virtioDrivers[input->type]);
        qemuPropsStr(&p, "id", input->info.alias);
        if (qemuCmdAddPCIAddress(cmd, &p, &input->info) < 0)
            return -1;
        break;
    default:
        return qemuCmdUnsupported("input bus", virDomainInputBusTypeToString(input->bus));
    }
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildRedirdev(qemuCmd *cmd, virDomainRedirdevDef *redir)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *chardev = NULL;

    if (qemuCmdCheckAlias(&redir->info, "redirdev") < 0 ||
        qemuCmdBuildChardev(cmd, redir->source, redir->info.alias) < 0)
        return -1;
    chardev = g_strdup_printf("char%s", redir->info.alias);
    qemuPropsStr(&p, "driver", "usb-redir");
    qemuPropsStr(&p, "chardev", chardev);
    qemuPropsStr(&p, "id", redir->info.alias);
    if (qemuCmdAddUSBAddress(cmd, &p, &redir->info, "USB redirection") < 0)
        return -1;
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}


/* ------------------------------------------------------------------------
 * Graphics, video, sound
 * ------------------------------------------------------------------------ */

static const char *
qemuCmdGraphicsListen(virDomainGraphicsDef *gr, const char *dflt, const char *what)
{
    virDomainGraphicsListenDef *l;

    if (gr->nListens == 0)
        return dflt ? dflt : "127.0.0.1";
    if (gr->nListens > 1) {
        qemuCmdUnsupported("several listen elements for graphics", what);
        return NULL;
    }
    l = &gr->listens[0];
    if (l->type != VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_ADDRESS) {
        qemuCmdUnsupported("graphics listen type",
                           QEMU_ENUM_NAME(qemuListenTypeNames, l->type));
        return NULL;
    }
    if (l->address)
        return l->address;
    return dflt ? dflt : "127.0.0.1";
}

static int
qemuCmdBuildVNC(qemuCmd *cmd, virDomainGraphicsDef *gr)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    virDomainGraphicsListenDef *l = gr->nListens > 0 ? &gr->listens[0] : NULL;
    static const char *const sharePolicies[] = {
        [VIR_DOMAIN_GRAPHICS_VNC_SHARE_DEFAULT] = NULL,
        [VIR_DOMAIN_GRAPHICS_VNC_SHARE_ALLOW_EXCLUSIVE] = "allow-exclusive",
        [VIR_DOMAIN_GRAPHICS_VNC_SHARE_FORCE_SHARED] = "force-shared",
        [VIR_DOMAIN_GRAPHICS_VNC_SHARE_IGNORE] = "ignore",
    };

    if (l && l->type == VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_SOCKET) {
        if (!l->socket) {
            if (!cmd->opts->libDir) {
                virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                               _("no private directory for the VNC socket"));
                return -1;
            }
            l->socket = g_build_filename(cmd->opts->libDir, "vnc.sock", NULL);
            l->autoGenerated = true;
        }
        virBufferAddLit(&buf, "unix:");
        qemuBufEscapeComma(&buf, l->socket);
    } else if (l && l->type == VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_NONE) {
        virBufferAddLit(&buf, "none");
    } else {
        const char *addr = qemuCmdGraphicsListen(gr, cmd->opts->vncListen, "vnc");

        if (!addr)
            return -1;
        if (gr->data.vnc.port < 5900) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("VNC port %d was not allocated (ports start at 5900)"),
                           gr->data.vnc.port);
            return -1;
        }
        if (strchr(addr, ':'))
            virBufferAsprintf(&buf, "[%s]", addr);
        else
            virBufferAdd(&buf, addr, -1);
        virBufferAsprintf(&buf, ":%d", gr->data.vnc.port - 5900);
        if (gr->data.vnc.websocket < 0) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("VNC websocket port was not allocated"));
            return -1;
        }
        if (gr->data.vnc.websocket > 0)
            virBufferAsprintf(&buf, ",websocket=%d", gr->data.vnc.websocket);
    }
    if (sharePolicies[gr->data.vnc.sharePolicy])
        virBufferAsprintf(&buf, ",share=%s", sharePolicies[gr->data.vnc.sharePolicy]);
    /* the password itself is set over QMP (set_password) */
    if (gr->data.vnc.auth.passwd)
        virBufferAddLit(&buf, ",password=on");
    if (gr->data.vnc.powerControl == VIR_TRISTATE_BOOL_YES)
        virBufferAddLit(&buf, ",power-control=on");
    if (gr->data.vnc.audioId > 0)
        virBufferAsprintf(&buf, ",audiodev=audio%u", gr->data.vnc.audioId);
    qemuCmdAddBuf(cmd, "-vnc", &buf);

    if (gr->data.vnc.keymap)
        qemuCmdAddPair(cmd, "-k", gr->data.vnc.keymap);
    return 0;
}

static int
qemuCmdBuildSpice(qemuCmd *cmd, virDomainGraphicsDef *gr)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    const char *addr = qemuCmdGraphicsListen(gr, cmd->opts->spiceListen, "spice");
    size_t i;
    struct {
        int value;
        const char *option;
        const char *const *names;
    } compression[] = {
        { gr->data.spice.image, "image-compression",
          (const char *const[]) { NULL, "auto_glz", "auto_lz", "quic", "glz", "lz", "off" } },
        { gr->data.spice.jpeg, "jpeg-wan-compression",
          (const char *const[]) { NULL, "auto", "never", "always" } },
        { gr->data.spice.zlib, "zlib-glz-wan-compression",
          (const char *const[]) { NULL, "auto", "never", "always" } },
        { gr->data.spice.streaming, "streaming-video",
          (const char *const[]) { NULL, "filter", "all", "off" } },
    };

    if (!addr)
        return -1;
    if (gr->data.spice.tlsPort > 0 ||
        gr->data.spice.defaultMode != VIR_DOMAIN_GRAPHICS_SPICE_CHANNEL_MODE_ANY)
        return qemuCmdUnsupported("spice TLS (tlsPort, defaultMode) for graphics", "spice");
    for (i = 0; i < VIR_DOMAIN_GRAPHICS_SPICE_CHANNEL_LAST; i++) {
        if (gr->data.spice.channels[i] != VIR_DOMAIN_GRAPHICS_SPICE_CHANNEL_MODE_ANY)
            return qemuCmdUnsupported("spice channel",
                                      virDomainGraphicsSpiceChannelNameTypeToString(i));
    }
    if (gr->data.spice.gl == VIR_TRISTATE_BOOL_YES || gr->data.spice.rendernode)
        return qemuCmdUnsupported("spice gl", "yes");
    if (gr->data.spice.port <= 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("SPICE port was not allocated"));
        return -1;
    }

    virBufferAsprintf(&buf, "port=%d,addr=", gr->data.spice.port);
    qemuBufEscapeComma(&buf, addr);
    if (!gr->data.spice.auth.passwd)
        virBufferAddLit(&buf, ",disable-ticketing=on");
    for (i = 0; i < G_N_ELEMENTS(compression); i++) {
        if (compression[i].value > 0)
            virBufferAsprintf(&buf, ",%s=%s", compression[i].option,
                              compression[i].names[compression[i].value]);
    }
    if (gr->data.spice.playback != VIR_TRISTATE_SWITCH_ABSENT)
        virBufferAsprintf(&buf, ",playback-compression=%s",
                          virTristateSwitchTypeToString(gr->data.spice.playback));
    if (gr->data.spice.mousemode == VIR_DOMAIN_MOUSE_MODE_SERVER)
        virBufferAddLit(&buf, ",agent-mouse=off");
    else if (gr->data.spice.mousemode == VIR_DOMAIN_MOUSE_MODE_CLIENT)
        virBufferAddLit(&buf, ",agent-mouse=on");
    if (gr->data.spice.copypaste == VIR_TRISTATE_BOOL_NO)
        virBufferAddLit(&buf, ",disable-copy-paste=on");
    if (gr->data.spice.filetransfer == VIR_TRISTATE_BOOL_NO)
        virBufferAddLit(&buf, ",disable-agent-file-xfer=on");
    virBufferAddLit(&buf, ",seamless-migration=on");
    qemuCmdAddBuf(cmd, "-spice", &buf);

    if (gr->data.spice.keymap)
        qemuCmdAddPair(cmd, "-k", gr->data.spice.keymap);
    return 0;
}

static int
qemuCmdBuildGraphics(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    bool seen[VIR_DOMAIN_GRAPHICS_TYPE_LAST] = { false };
    size_t i;

    if (def->ngraphics == 0) {
        qemuCmdAddPair(cmd, "-display", "none");
        return 0;
    }
    for (i = 0; i < def->ngraphics; i++) {
        virDomainGraphicsDef *gr = def->graphics[i];
        const char *type = virDomainGraphicsTypeToString(gr->type);

        if (seen[gr->type])
            return qemuCmdUnsupported("a second graphics of type", type);
        seen[gr->type] = true;
        switch (gr->type) {
        case VIR_DOMAIN_GRAPHICS_TYPE_VNC:
            if (qemuCmdBuildVNC(cmd, gr) < 0)
                return -1;
            break;
        case VIR_DOMAIN_GRAPHICS_TYPE_SPICE:
            if (qemuCmdBuildSpice(cmd, gr) < 0)
                return -1;
            break;
        default:
            return qemuCmdUnsupported("graphics type", type);
        }
    }
    return 0;
}

static int
qemuCmdBuildVideo(qemuCmd *cmd, virDomainVideoDef *video, bool primary)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    const char *type = virDomainVideoTypeToString(video->type);

    if (video->type == VIR_DOMAIN_VIDEO_TYPE_NONE)
        return 0;
    if (qemuCmdCheckAlias(&video->info, "video") < 0)
        return -1;
    if ((video->accel && (video->accel->accel3d == VIR_TRISTATE_BOOL_YES ||
                          video->accel->accel2d == VIR_TRISTATE_BOOL_YES)) ||
        video->res || video->backend == VIR_DOMAIN_VIDEO_BACKEND_TYPE_VHOSTUSER)
        return qemuCmdUnsupported("video acceleration, resolution or vhost-user for model", type);

    switch (video->type) {
    case VIR_DOMAIN_VIDEO_TYPE_VGA:
    case VIR_DOMAIN_VIDEO_TYPE_CIRRUS:
        if (!primary)
            return qemuCmdUnsupported("secondary video model", type);
        qemuPropsStr(&p, "driver",
                     video->type == VIR_DOMAIN_VIDEO_TYPE_VGA ? "VGA" : "cirrus-vga");
        qemuPropsStr(&p, "id", video->info.alias);
        if (video->vram)
            qemuPropsInt(&p, "vgamem_mb", video->vram / 1024);
        break;
    case VIR_DOMAIN_VIDEO_TYPE_QXL:
        qemuPropsStr(&p, "driver", primary ? "qxl-vga" : "qxl");
        qemuPropsStr(&p, "id", video->info.alias);
        if (video->heads)
            qemuPropsInt(&p, "max_outputs", video->heads);
        if (video->ram)
            qemuPropsInt(&p, "ram_size", video->ram * 1024ULL);
        if (video->vram)
            qemuPropsInt(&p, "vram_size", video->vram * 1024ULL);
        if (video->vram64)
            qemuPropsInt(&p, "vram64_size_mb", video->vram64 / 1024);
        if (video->vgamem)
            qemuPropsInt(&p, "vgamem_mb", video->vgamem / 1024);
        break;
    case VIR_DOMAIN_VIDEO_TYPE_VIRTIO:
        qemuPropsStr(&p, "driver",
                     primary && qemuCapsHasDevice(cmd->qcaps, "virtio-vga") ?
                     "virtio-vga" : "virtio-gpu-pci");
        qemuPropsStr(&p, "id", video->info.alias);
        if (video->heads)
            qemuPropsInt(&p, "max_outputs", video->heads);
        break;
    case VIR_DOMAIN_VIDEO_TYPE_BOCHS:
        qemuPropsStr(&p, "driver", "bochs-display");
        qemuPropsStr(&p, "id", video->info.alias);
        if (video->vram)
            qemuPropsInt(&p, "vgamem", video->vram * 1024ULL);
        break;
    default:
        return qemuCmdUnsupported("video model", type);
    }
    if (qemuCmdAddPCIAddress(cmd, &p, &video->info) < 0)
        return -1;
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildAudio(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    size_t i;

    if (def->naudios == 0) {
        if (def->nsounds == 0)
            return 0;
        /* sound without a host backend: SPICE plays it, or nothing does */
        qemuPropsStr(&p, "id", "audio1");
        qemuPropsStr(&p, "driver", cmd->hasSpice ? "spice" : "none");
        qemuCmdAddProps(cmd, "-audiodev", &p);
        return 0;
    }
    for (i = 0; i < def->naudios; i++) {
        virDomainAudioDef *audio = def->audios[i];
        g_autofree char *id = g_strdup_printf("audio%u", audio->id);

        switch (audio->type) {
        case VIR_DOMAIN_AUDIO_TYPE_NONE:
            break;
        case VIR_DOMAIN_AUDIO_TYPE_SPICE:
            if (!cmd->hasSpice)
                return qemuCmdUnsupported("audio type 'spice' without graphics", "spice");
            break;
        default:
            return qemuCmdUnsupported("audio type", virDomainAudioTypeTypeToString(audio->type));
        }
        qemuPropsStr(&p, "id", id);
        qemuPropsStr(&p, "driver", virDomainAudioTypeTypeToString(audio->type));
        qemuCmdAddProps(cmd, "-audiodev", &p);
    }
    return 0;
}

static int
qemuCmdBuildSound(qemuCmd *cmd, virDomainSoundDef *snd)
{
    static const char *const codecDrivers[] = {
        [VIR_DOMAIN_SOUND_CODEC_TYPE_DUPLEX] = "hda-duplex",
        [VIR_DOMAIN_SOUND_CODEC_TYPE_MICRO] = "hda-micro",
        [VIR_DOMAIN_SOUND_CODEC_TYPE_OUTPUT] = "hda-output",
    };
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *audiodev = g_strdup_printf("audio%u", snd->audioId ? snd->audioId : 1);
    g_autofree char *hdaBus = NULL;
    bool hda = false;
    size_t i;

    if (qemuCmdCheckAlias(&snd->info, "sound") < 0)
        return -1;
    switch (snd->model) {
    case VIR_DOMAIN_SOUND_MODEL_ICH6:
        qemuPropsStr(&p, "driver", "intel-hda");
        hda = true;
        break;
    case VIR_DOMAIN_SOUND_MODEL_ICH9:
        qemuPropsStr(&p, "driver", "ich9-intel-hda");
        hda = true;
        break;
    case VIR_DOMAIN_SOUND_MODEL_AC97:
        qemuPropsStr(&p, "driver", "AC97");
        qemuPropsStr(&p, "audiodev", audiodev);
        break;
    default:
        return qemuCmdUnsupported("sound model", virDomainSoundModelTypeToString(snd->model));
    }
    if (!hda && snd->ncodecs > 0)
        return qemuCmdUnsupported("sound codec with model",
                                  virDomainSoundModelTypeToString(snd->model));
    qemuPropsStr(&p, "id", snd->info.alias);
    if (qemuCmdAddPCIAddress(cmd, &p, &snd->info) < 0)
        return -1;
    qemuCmdAddProps(cmd, "-device", &p);

    if (!hda)
        return 0;

    hdaBus = g_strdup_printf("%s.0", snd->info.alias);
    for (i = 0; i < MAX(snd->ncodecs, 1); i++) {
        int codecType = snd->ncodecs ? snd->codecs[i]->type : VIR_DOMAIN_SOUND_CODEC_TYPE_DUPLEX;
        int cad = snd->ncodecs ? snd->codecs[i]->cad : 0;
        g_autofree char *id = g_strdup_printf("%s-codec%d", snd->info.alias, cad);

        qemuPropsStr(&p, "driver", codecDrivers[codecType]);
        qemuPropsStr(&p, "id", id);
        qemuPropsStr(&p, "bus", hdaBus);
        qemuPropsInt(&p, "cad", cad);
        qemuPropsStr(&p, "audiodev", audiodev);
        qemuCmdAddProps(cmd, "-device", &p);
    }
    return 0;
}


/* ------------------------------------------------------------------------
 * Watchdog, balloon, RNG, panic
 * ------------------------------------------------------------------------ */

static const char *const qemuWatchdogActions[] = {
    [VIR_DOMAIN_WATCHDOG_ACTION_RESET] = "reset",
    [VIR_DOMAIN_WATCHDOG_ACTION_SHUTDOWN] = "shutdown",
    [VIR_DOMAIN_WATCHDOG_ACTION_POWEROFF] = "poweroff",
    [VIR_DOMAIN_WATCHDOG_ACTION_PAUSE] = "pause",
    [VIR_DOMAIN_WATCHDOG_ACTION_DUMP] = NULL,
    [VIR_DOMAIN_WATCHDOG_ACTION_NONE] = "none",
    [VIR_DOMAIN_WATCHDOG_ACTION_INJECTNMI] = "inject-nmi",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuWatchdogActions) == VIR_DOMAIN_WATCHDOG_ACTION_LAST);

static int
qemuCmdBuildWatchdog(qemuCmd *cmd, virDomainWatchdogDef *wd)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *action = NULL;

    if (!qemuWatchdogActions[wd->action])
        return qemuCmdUnsupported("watchdog action",
                                  virDomainWatchdogActionTypeToString(wd->action));
    if (qemuCmdCheckAlias(&wd->info, "watchdog") < 0)
        return -1;
    switch (wd->model) {
    case VIR_DOMAIN_WATCHDOG_MODEL_I6300ESB:
        qemuPropsStr(&p, "driver", "i6300esb");
        qemuPropsStr(&p, "id", wd->info.alias);
        if (qemuCmdAddPCIAddress(cmd, &p, &wd->info) < 0)
            return -1;
        break;
    case VIR_DOMAIN_WATCHDOG_MODEL_IB700:
        if (qemuCmdCheckNoAddress(&wd->info, "watchdog 'ib700'") < 0)
            return -1;
        qemuPropsStr(&p, "driver", "ib700");
        qemuPropsStr(&p, "id", wd->info.alias);
        break;
    default:
        return qemuCmdUnsupported("watchdog model",
                                  virDomainWatchdogModelTypeToString(wd->model));
    }
    qemuCmdAddProps(cmd, "-device", &p);

    action = g_strdup_printf("watchdog=%s", qemuWatchdogActions[wd->action]);
    qemuCmdAddPair(cmd, "-action", action);
    return 0;
}

static int
qemuCmdBuildMemballoon(qemuCmd *cmd, virDomainMemballoonDef *balloon)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };

    if (!balloon || balloon->model == VIR_DOMAIN_MEMBALLOON_MODEL_NONE)
        return 0;
    if (balloon->model != VIR_DOMAIN_MEMBALLOON_MODEL_VIRTIO)
        return qemuCmdUnsupported("memballoon model",
                                  virDomainMemballoonModelTypeToString(balloon->model));
    if (qemuCmdCheckAlias(&balloon->info, "memballoon") < 0)
        return -1;
    /* the statistics period is set over QMP once QEMU runs */
    qemuPropsStr(&p, "driver", "virtio-balloon-pci");
    qemuPropsStr(&p, "id", balloon->info.alias);
    if (qemuCmdAddPCIAddress(cmd, &p, &balloon->info) < 0)
        return -1;
    if (balloon->autodeflate != VIR_TRISTATE_SWITCH_ABSENT)
        qemuPropsBool(&p, "deflate-on-oom", balloon->autodeflate == VIR_TRISTATE_SWITCH_ON);
    if (balloon->free_page_reporting != VIR_TRISTATE_SWITCH_ABSENT)
        qemuPropsBool(&p, "free-page-reporting",
                      balloon->free_page_reporting == VIR_TRISTATE_SWITCH_ON);
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildRNG(qemuCmd *cmd, virDomainRNGDef *rng)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };
    g_autofree char *objId = NULL;

    if (rng->model != VIR_DOMAIN_RNG_MODEL_VIRTIO)
        return qemuCmdUnsupported("rng model", virDomainRNGModelTypeToString(rng->model));
    if (qemuCmdCheckAlias(&rng->info, "rng") < 0)
        return -1;
    objId = g_strdup_printf("obj%s", rng->info.alias);

    switch (rng->backend) {
    case VIR_DOMAIN_RNG_BACKEND_RANDOM:
        qemuPropsStr(&p, "qom-type", "rng-random");
        qemuPropsStr(&p, "id", objId);
        qemuPropsStr(&p, "filename", rng->source.file ? rng->source.file : "/dev/urandom");
        break;
    case VIR_DOMAIN_RNG_BACKEND_BUILTIN:
        qemuPropsStr(&p, "qom-type", "rng-builtin");
        qemuPropsStr(&p, "id", objId);
        break;
    default:
        return qemuCmdUnsupported("rng backend model",
                                  virDomainRNGBackendTypeToString(rng->backend));
    }
    qemuCmdAddProps(cmd, "-object", &p);

    qemuPropsStr(&p, "driver", "virtio-rng-pci");
    qemuPropsStr(&p, "rng", objId);
    qemuPropsStr(&p, "id", rng->info.alias);
    if (rng->rate) {
        qemuPropsInt(&p, "max-bytes", rng->rate);
        qemuPropsInt(&p, "period", rng->period ? rng->period : 1000);
    }
    if (qemuCmdAddPCIAddress(cmd, &p, &rng->info) < 0)
        return -1;
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}

static int
qemuCmdBuildPanic(qemuCmd *cmd, virDomainPanicDef *panic)
{
    g_auto(qemuProps) p = { VIR_BUFFER_INITIALIZER };

    if (panic->model != VIR_DOMAIN_PANIC_MODEL_ISA)
        return qemuCmdUnsupported("panic model", QEMU_ENUM_NAME(qemuPanicModelNames, panic->model));
    if (!qemuCapsHasDevice(cmd->qcaps, "pvpanic"))
        return qemuCmdUnsupported("panic model with this emulator", "isa");
    if (qemuCmdCheckAlias(&panic->info, "panic") < 0)
        return -1;
    qemuPropsStr(&p, "driver", "pvpanic");
    qemuPropsStr(&p, "id", panic->info.alias);
    if (panic->info.type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_ISA)
        qemuPropsInt(&p, "ioport", panic->info.addr.isa.iobase);
    else if (qemuCmdCheckNoAddress(&panic->info, "panic device") < 0)
        return -1;
    qemuCmdAddProps(cmd, "-device", &p);
    return 0;
}


/* ------------------------------------------------------------------------
 * The whole command line
 * ------------------------------------------------------------------------ */

static int
qemuCmdCheckDomain(qemuCmd *cmd)
{
    virDomainDef *def = cmd->def;
    size_t i;

    if (def->virtType != VIR_DOMAIN_VIRT_QEMU && def->virtType != VIR_DOMAIN_VIRT_KVM)
        return qemuCmdUnsupported("domain type", virDomainVirtTypeToString(def->virtType));
    if (def->virtType == VIR_DOMAIN_VIRT_KVM && !cmd->opts->kvm) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                       _("domain type 'kvm' needs KVM, which is not usable on this host"));
        return -1;
    }
    if (def->os.arch != VIR_ARCH_X86_64 && def->os.arch != VIR_ARCH_I686)
        return qemuCmdUnsupported("architecture", virArchToString(def->os.arch));
    if (!def->emulator) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s", _("no emulator in the definition"));
        return -1;
    }
    if (cmd->opts->monitorFd < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s", _("no monitor socket"));
        return -1;
    }
    if (qemuCmdCheckUnsupportedElements(def) < 0)
        return -1;
    /* disks first: their bus or device explains an implicit controller */
    for (i = 0; i < def->ndisks; i++) {
        if (qemuCmdCheckDisk(cmd, def->disks[i]) < 0)
            return -1;
    }
    return 0;
}

char **
qemuBuildCommandLine(virDomainDef *def,
                     qemuCaps *qcaps,
                     const qemuBuildCommandLineOpts *opts)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    qemuCmd cmd = { .def = def, .qcaps = qcaps, .opts = opts, .argv = argv };
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    char uuid[VIR_UUID_STRING_BUFLEN];
    size_t i;

    if ((cmd.family = qemuDomainMachineGetFamily(def)) < 0 ||
        qemuCmdCheckDomain(&cmd) < 0)
        return NULL;
    for (i = 0; i < def->ngraphics; i++)
        cmd.hasSpice |= def->graphics[i]->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE;

    qemuCmdAdd(&cmd, def->emulator);

    virBufferAddLit(&buf, "guest=");
    qemuBufEscapeComma(&buf, def->name);
    virBufferAddLit(&buf, ",debug-threads=on");
    qemuCmdAddBuf(&cmd, "-name", &buf);
    qemuCmdAdd(&cmd, "-S");

    if (qemuCmdBuildMachine(&cmd) < 0 ||
        qemuCmdBuildCPU(&cmd) < 0 ||
        qemuCmdBuildMemorySMP(&cmd) < 0)
        return NULL;

    qemuCmdAddPair(&cmd, "-uuid", virUUIDFormat(def->uuid, uuid));
    qemuCmdAdd(&cmd, "-no-user-config");
    qemuCmdAdd(&cmd, "-nodefaults");
    virBufferAsprintf(&buf, "socket,id=charmonitor,fd=%d,server=on,wait=off", opts->monitorFd);
    qemuCmdAddBuf(&cmd, "-chardev", &buf);
    qemuCmdAddPair(&cmd, "-mon", "chardev=charmonitor,id=monitor,mode=control");

    if (qemuCmdBuildClock(&cmd) < 0)
        return NULL;
    qemuCmdAdd(&cmd, "-no-shutdown");
    qemuCmdBuildPM(&cmd);
    qemuCmdComputeBootIndexes(def);
    qemuCmdBuildBoot(&cmd);

    if (qemuCmdBuildControllers(&cmd) < 0 ||
        qemuCmdBuildDisks(&cmd) < 0)
        return NULL;
    for (i = 0; i < def->nnets; i++) {
        if (qemuCmdBuildNet(&cmd, def->nets[i], i) < 0)
            return NULL;
    }
    if (qemuCmdBuildChrs(&cmd) < 0)
        return NULL;
    for (i = 0; i < def->ninputs; i++) {
        if (qemuCmdBuildInput(&cmd, def->inputs[i]) < 0)
            return NULL;
    }
    if (qemuCmdBuildAudio(&cmd) < 0 ||
        qemuCmdBuildGraphics(&cmd) < 0)
        return NULL;
    for (i = 0; i < def->nvideos; i++) {
        if (qemuCmdBuildVideo(&cmd, def->videos[i], i == 0) < 0)
            return NULL;
    }
    for (i = 0; i < def->nsounds; i++) {
        if (qemuCmdBuildSound(&cmd, def->sounds[i]) < 0)
            return NULL;
    }
    for (i = 0; i < def->nredirdevs; i++) {
        if (qemuCmdBuildRedirdev(&cmd, def->redirdevs[i]) < 0)
            return NULL;
    }
    if (def->watchdog && qemuCmdBuildWatchdog(&cmd, def->watchdog) < 0)
        return NULL;
    if (qemuCmdBuildMemballoon(&cmd, def->memballoon) < 0)
        return NULL;
    for (i = 0; i < def->nrngs; i++) {
        if (qemuCmdBuildRNG(&cmd, def->rngs[i]) < 0)
            return NULL;
    }
    for (i = 0; i < def->npanics; i++) {
        if (qemuCmdBuildPanic(&cmd, def->panics[i]) < 0)
            return NULL;
    }

    qemuCmdAddPair(&cmd, "-sandbox",
                   "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    qemuCmdAddPair(&cmd, "-msg", "timestamp=on");

    g_ptr_array_add(argv, NULL);
    return (char **)g_ptr_array_steal(argv, NULL);
}


/* ------------------------------------------------------------------------
 * As text
 * ------------------------------------------------------------------------ */

static void
qemuShellQuote(virBuffer *buf, const char *arg)
{
    const char *p;

    if (*arg && !arg[strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-_=,.:/@%+")]) {
        virBufferAdd(buf, arg, -1);
        return;
    }
    virBufferAddChar(buf, '\'');
    for (p = arg; *p; p++) {
        if (*p == '\'')
            virBufferAddLit(buf, "'\\''");
        else
            virBufferAddChar(buf, *p);
    }
    virBufferAddChar(buf, '\'');
}

char *
qemuBuildCommandLineToString(char **argv)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    size_t i;

    for (i = 0; argv[i]; i++) {
        if (i > 0)
            virBufferAddChar(&buf, ' ');
        qemuShellQuote(&buf, argv[i]);
    }
    return virBufferContentAndReset(&buf);
}

char *
qemuBuildNativeCommandLine(virDomainDef *def, qemuCaps *qcaps,
                           const char *libDir, bool privileged)
{
    g_autofree int *tapfds = g_new0(int, def->nnets + 1);
    qemuBuildCommandLineOpts opts = {
        .libDir = libDir,
        .monitorFd = 3,     /* placeholder: the fd a start would pass */
        .privileged = privileged,
        .kvm = qcaps->kvmAvailable,
        .tapfds = tapfds,
        .ntapfds = def->nnets,
    };
    g_auto(GStrv) argv = NULL;
    size_t i;

    if (qemuDomainAssignAddresses(def, qcaps) < 0)
        return NULL;

    /* placeholders like libvirt prints: tap fds after the monitor's,
     * display ports as if they were the first free ones */
    for (i = 0; i < def->nnets; i++)
        tapfds[i] = 4 + i;
    for (i = 0; i < def->ngraphics; i++) {
        virDomainGraphicsDef *gr = def->graphics[i];

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC) {
            if (gr->data.vnc.port <= 0)
                gr->data.vnc.port = 5900;
            if (gr->data.vnc.websocket < 0)
                gr->data.vnc.websocket = 5700;
        } else if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE &&
                   gr->data.spice.port <= 0) {
            gr->data.spice.port = 5901;
        }
    }

    if (!(argv = qemuBuildCommandLine(def, qcaps, &opts)))
        return NULL;
    return qemuBuildCommandLineToString(argv);
}


/* ------------------------------------------------------------------------
 * Hot-plug: one device's objects, as the command line has them
 * ------------------------------------------------------------------------ */

/* Runs @build for one device of @def and hands out the JSON objects it
 * produced, in order, without their option names. */
static char **
qemuBuildHotplugObjects(virDomainDef *def,
                        int (*build)(qemuCmd *cmd, void *dev),
                        void *dev,
                        const char *tapfdName)
{
    qemuBuildCommandLineOpts opts = { .monitorFd = -1, .privileged = !!tapfdName,
                                      .tapfdName = tapfdName };
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    qemuCmd cmd = { .def = def, .opts = &opts, .argv = argv };
    GPtrArray *objs;
    size_t i;

    if ((cmd.family = qemuDomainMachineGetFamily(def)) < 0)
        return NULL;
    if (build(&cmd, dev) < 0)
        return NULL;
    objs = g_ptr_array_new();
    for (i = 1; i < argv->len; i += 2)
        g_ptr_array_add(objs, g_strdup(g_ptr_array_index(argv, i)));
    g_ptr_array_add(objs, NULL);
    return (char **) g_ptr_array_free(objs, FALSE);
}

typedef struct _qemuBuildHotplugDisk qemuBuildHotplugDisk;
struct _qemuBuildHotplugDisk {
    virDomainDiskDef *disk;
    unsigned int node;
};

static int
qemuBuildHotplugDiskCb(qemuCmd *cmd, void *opaque)
{
    qemuBuildHotplugDisk *d = opaque;

    return qemuCmdBuildDisk(cmd, d->disk, d->node);
}

char **
qemuBuildDiskHotplugObjects(virDomainDef *def, virDomainDiskDef *disk, unsigned int node)
{
    qemuBuildHotplugDisk d = { disk, node };

    return qemuBuildHotplugObjects(def, qemuBuildHotplugDiskCb, &d, NULL);
}

static int
qemuBuildHotplugNetCb(qemuCmd *cmd, void *opaque)
{
    return qemuCmdBuildNet(cmd, opaque, 0);
}

char **
qemuBuildNetHotplugObjects(virDomainDef *def, virDomainNetDef *net,
                           const char *tapfdName)
{
    return qemuBuildHotplugObjects(def, qemuBuildHotplugNetCb, net, tapfdName);
}
