/*
 * qemu_validate.c: refusing definitions Tandem cannot run
 *
 * Everything the capabilities of the emulator already tell is refused at
 * define time with VIR_ERR_CONFIG_UNSUPPORTED naming the element, rather
 * than being dropped silently or failing at start.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>
#include <unistd.h>

#include "qemu_validate.h"
#include "virerror.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

typedef struct _qemuValidateDeviceClass qemuValidateDeviceClass;
struct _qemuValidateDeviceClass {
    const char *element;   /* how the domain XML names it */
    bool supported;
};

/* One row per virDomainDeviceType, in its order. */
static const qemuValidateDeviceClass qemuValidateDeviceClasses[] = {
    [VIR_DOMAIN_DEVICE_NONE] = { "none", false },
    [VIR_DOMAIN_DEVICE_DISK] = { "disk", true },
    [VIR_DOMAIN_DEVICE_LEASE] = { "lease", false },
    [VIR_DOMAIN_DEVICE_FS] = { "filesystem", false },
    [VIR_DOMAIN_DEVICE_NET] = { "interface", true },
    [VIR_DOMAIN_DEVICE_INPUT] = { "input", true },
    [VIR_DOMAIN_DEVICE_SOUND] = { "sound", true },
    [VIR_DOMAIN_DEVICE_VIDEO] = { "video", true },
    [VIR_DOMAIN_DEVICE_HOSTDEV] = { "hostdev", false },
    [VIR_DOMAIN_DEVICE_WATCHDOG] = { "watchdog", true },
    [VIR_DOMAIN_DEVICE_CONTROLLER] = { "controller", true },
    [VIR_DOMAIN_DEVICE_GRAPHICS] = { "graphics", true },
    [VIR_DOMAIN_DEVICE_HUB] = { "hub", false },
    [VIR_DOMAIN_DEVICE_REDIRDEV] = { "redirdev", true },
    [VIR_DOMAIN_DEVICE_SMARTCARD] = { "smartcard", false },
    [VIR_DOMAIN_DEVICE_CHR] = { "serial/console/channel", true },
    [VIR_DOMAIN_DEVICE_MEMBALLOON] = { "memballoon", true },
    [VIR_DOMAIN_DEVICE_NVRAM] = { "nvram", false },
    [VIR_DOMAIN_DEVICE_RNG] = { "rng", true },
    [VIR_DOMAIN_DEVICE_SHMEM] = { "shmem", false },
    [VIR_DOMAIN_DEVICE_TPM] = { "tpm", false },
    [VIR_DOMAIN_DEVICE_PANIC] = { "panic", true },
    [VIR_DOMAIN_DEVICE_MEMORY] = { "memory", false },
    [VIR_DOMAIN_DEVICE_IOMMU] = { "iommu", false },
    [VIR_DOMAIN_DEVICE_VSOCK] = { "vsock", false },
    [VIR_DOMAIN_DEVICE_AUDIO] = { "audio", true },
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuValidateDeviceClasses) == VIR_DOMAIN_DEVICE_LAST);

int
qemuValidateDomainDevice(const virDomainDeviceDef *dev,
                         const virDomainDef *def G_GNUC_UNUSED)
{
    const qemuValidateDeviceClass *cls;

    if (dev->type <= VIR_DOMAIN_DEVICE_NONE || dev->type >= VIR_DOMAIN_DEVICE_LAST) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("unexpected device type %d"), dev->type);
        return -1;
    }
    cls = &qemuValidateDeviceClasses[dev->type];
    if (!cls->supported) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("unsupported device element <%s>: Tandem cannot run it"),
                       cls->element);
        return -1;
    }
    return 0;
}

int
qemuValidateDomainDef(const virDomainDef *def, qemuCaps *qcaps)
{
    switch ((virDomainVirtType) def->virtType) {
    case VIR_DOMAIN_VIRT_QEMU:
        break;
    case VIR_DOMAIN_VIRT_KVM:
        if (!qcaps->kvmAvailable) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                           _("unsupported <domain type='kvm'>: KVM is not available on this host"));
            return -1;
        }
        break;
    default:
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("unsupported <domain type='%s'>: use 'qemu' or 'kvm'"),
                       virDomainVirtTypeToString(def->virtType));
        return -1;
    }

    if (def->os.arch != qcaps->arch &&
        !(qcaps->arch == VIR_ARCH_X86_64 && def->os.arch == VIR_ARCH_I686)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("unsupported <os><type arch='%s'>: emulator '%s' runs %s guests"),
                       virArchToString(def->os.arch), def->emulator,
                       virArchToString(qcaps->arch));
        return -1;
    }

    if (!def->os.machine || !qemuCapsGetCanonicalMachine(qcaps, def->os.machine)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("unsupported <os><type machine='%s'>: emulator '%s' has no such machine type"),
                       NULLSTR(def->os.machine), def->emulator);
        return -1;
    }

    return 0;
}
