/*
 * qemu_domain_address.c: device addresses, aliases and the implicit
 * devices of the x86 machine types Tandem runs (pc, q35)
 *
 * Called from the XML post-parse, so what is decided here is saved in the
 * persistent definition and the guest sees the same hardware at every
 * start and on the destination of a migration.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_domain_address.h"
#include "virerror.h"
#include "virlog.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_domain_address");

#define QEMU_PCI_SLOTS 32
#define QEMU_PCI_FUNCS 8

int
qemuDomainMachineGetFamily(const virDomainDef *def)
{
    const char *m = def->os.machine;

    if (m && (STREQ(m, "q35") || STRPREFIX(m, "pc-q35-")))
        return QEMU_DOMAIN_MACHINE_Q35;
    if (m && (STREQ(m, "pc") || STRPREFIX(m, "pc-i440fx-") ||
              STRPREFIX(m, "pc-0.") || STRPREFIX(m, "pc-1.")))
        return QEMU_DOMAIN_MACHINE_PC;

    virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                   _("machine type '%s' is not supported by Tandem (use pc or q35)"),
                   NULLSTR(m));
    return -1;
}


/* ------------------------------------------------------------------------
 * Implicit devices and default models
 * ------------------------------------------------------------------------ */

static virDomainControllerDef *
qemuDomainAddrFindController(virDomainDef *def, int type, int idx)
{
    int i = virDomainControllerFind(def, type, idx);

    return i < 0 ? NULL : def->controllers[i];
}

static virDomainControllerDef *
qemuDomainAddrAddController(virDomainDef *def, int type, int idx, int model)
{
    virDomainControllerDef *cont = virDomainControllerDefNew(type);

    cont->idx = idx;
    cont->model = model;
    virDomainControllerInsert(def, cont);
    return cont;
}

static int
qemuDomainAddrDefaultUSBModel(int family)
{
    return family == QEMU_DOMAIN_MACHINE_Q35 ?
        VIR_DOMAIN_CONTROLLER_MODEL_USB_QEMU_XHCI :
        VIR_DOMAIN_CONTROLLER_MODEL_USB_PIIX3_UHCI;
}

static int
qemuDomainAddrAddImplicit(virDomainDef *def, int family)
{
    virDomainControllerDef *cont;
    int rootModel = family == QEMU_DOMAIN_MACHINE_Q35 ?
        VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT :
        VIR_DOMAIN_CONTROLLER_MODEL_PCI_ROOT;
    size_t i;

    /* the root bus */
    if (!(cont = qemuDomainAddrFindController(def, VIR_DOMAIN_CONTROLLER_TYPE_PCI, 0)))
        cont = qemuDomainAddrAddController(def, VIR_DOMAIN_CONTROLLER_TYPE_PCI, 0, rootModel);
    if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_PCI_DEFAULT)
        cont->model = rootModel;
    if (cont->model != rootModel) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("controller type 'pci' index 0 must have model '%s' on machine '%s'"),
                       virDomainControllerModelPCITypeToString(rootModel),
                       def->os.machine);
        return -1;
    }

    /* the disk controller built into the chipset */
    if (family == QEMU_DOMAIN_MACHINE_Q35) {
        if (!qemuDomainAddrFindController(def, VIR_DOMAIN_CONTROLLER_TYPE_SATA, 0))
            qemuDomainAddrAddController(def, VIR_DOMAIN_CONTROLLER_TYPE_SATA, 0, -1);
    } else {
        if (!qemuDomainAddrFindController(def, VIR_DOMAIN_CONTROLLER_TYPE_IDE, 0))
            qemuDomainAddrAddController(def, VIR_DOMAIN_CONTROLLER_TYPE_IDE, 0, -1);
    }

    /* a USB controller unless the definition has one (model='none' included) */
    if (virDomainControllerFindByType(def, VIR_DOMAIN_CONTROLLER_TYPE_USB) < 0)
        qemuDomainAddrAddController(def, VIR_DOMAIN_CONTROLLER_TYPE_USB, 0,
                                    qemuDomainAddrDefaultUSBModel(family));

    /* default models */
    for (i = 0; i < def->ncontrollers; i++) {
        cont = def->controllers[i];
        switch ((virDomainControllerType) cont->type) {
        case VIR_DOMAIN_CONTROLLER_TYPE_USB:
            if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_USB_DEFAULT)
                cont->model = qemuDomainAddrDefaultUSBModel(family);
            break;
        case VIR_DOMAIN_CONTROLLER_TYPE_SCSI:
            if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_SCSI_DEFAULT ||
                cont->model == VIR_DOMAIN_CONTROLLER_MODEL_SCSI_AUTO)
                cont->model = VIR_DOMAIN_CONTROLLER_MODEL_SCSI_VIRTIO_SCSI;
            break;
        case VIR_DOMAIN_CONTROLLER_TYPE_VIRTIO_SERIAL:
            if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_VIRTIO_SERIAL_DEFAULT)
                cont->model = VIR_DOMAIN_CONTROLLER_MODEL_VIRTIO_SERIAL_VIRTIO;
            break;
        case VIR_DOMAIN_CONTROLLER_TYPE_PCI:
            if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_PCI_DEFAULT) {
                virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                               _("controller type 'pci' index %d needs a model"),
                               cont->idx);
                return -1;
            }
            break;
        case VIR_DOMAIN_CONTROLLER_TYPE_IDE:
        case VIR_DOMAIN_CONTROLLER_TYPE_FDC:
        case VIR_DOMAIN_CONTROLLER_TYPE_SATA:
        case VIR_DOMAIN_CONTROLLER_TYPE_CCID:
        case VIR_DOMAIN_CONTROLLER_TYPE_XENBUS:
        case VIR_DOMAIN_CONTROLLER_TYPE_ISA:
        case VIR_DOMAIN_CONTROLLER_TYPE_LAST:
            break;
        }
    }

    if (!def->memballoon) {
        def->memballoon = g_new0(virDomainMemballoonDef, 1);
        def->memballoon->model = VIR_DOMAIN_MEMBALLOON_MODEL_VIRTIO;
    }

    /* the i8042 of both chipsets: what a VNC/SPICE client types into */
    if (def->ngraphics > 0) {
        if (virDomainDefMaybeAddInput(def, VIR_DOMAIN_INPUT_TYPE_MOUSE,
                                      VIR_DOMAIN_INPUT_BUS_PS2) < 0 ||
            virDomainDefMaybeAddInput(def, VIR_DOMAIN_INPUT_TYPE_KBD,
                                      VIR_DOMAIN_INPUT_BUS_PS2) < 0)
            return -1;
    }

    for (i = 0; i < def->nvideos; i++) {
        virDomainVideoDef *video = def->videos[i];

        /* the parser fills the video RAM of a known model: do the same,
         * so that the saved definition reads back identically */
        if (video->type == VIR_DOMAIN_VIDEO_TYPE_DEFAULT) {
            video->type = VIR_DOMAIN_VIDEO_TYPE_VGA;
            if (video->vram == 0)
                video->vram = virDomainVideoDefaultRAM(def, video->type);
        }
    }

    for (i = 0; i < def->nnets; i++) {
        if (def->nets[i]->model == VIR_DOMAIN_NET_MODEL_UNKNOWN &&
            !def->nets[i]->modelstr)
            def->nets[i]->model = VIR_DOMAIN_NET_MODEL_RTL8139;
    }

    for (i = 0; i < def->npanics; i++) {
        if (def->panics[i]->model == VIR_DOMAIN_PANIC_MODEL_DEFAULT)
            def->panics[i]->model = VIR_DOMAIN_PANIC_MODEL_ISA;
    }

    return 0;
}


/* ------------------------------------------------------------------------
 * PCI addresses
 * ------------------------------------------------------------------------ */

typedef enum {
    QEMU_PCI_KIND_NONE = 0,       /* not a PCI device, or built in */
    QEMU_PCI_KIND_CONVENTIONAL,   /* a whole slot on the root bus */
    QEMU_PCI_KIND_EXPRESS,        /* q35: its own pcie-root-port */
    QEMU_PCI_KIND_ROOT_PORT,      /* a function of a root port slot on pcie.0 */
} qemuPCIKind;

typedef struct _qemuPCIAddrSet qemuPCIAddrSet;
struct _qemuPCIAddrSet {
    virDomainDef *def;
    int family;
    GHashTable *used;                   /* key: bus/slot/function -> info */
    bool rootPortSlot[QEMU_PCI_SLOTS];  /* slot of bus 0 holding root ports */
};

static gpointer
qemuPCIKey(unsigned int bus, unsigned int slot, unsigned int function)
{
    return GUINT_TO_POINTER(((bus << 8) | (slot << 3) | function) + 1);
}

static virDomainDeviceInfo *
qemuPCIGet(qemuPCIAddrSet *set, unsigned int bus, unsigned int slot,
           unsigned int function)
{
    return g_hash_table_lookup(set->used, qemuPCIKey(bus, slot, function));
}

static bool
qemuPCISlotIsFree(qemuPCIAddrSet *set, unsigned int bus, unsigned int slot)
{
    size_t f;

    if (bus == 0 && set->rootPortSlot[slot])
        return false;
    for (f = 0; f < QEMU_PCI_FUNCS; f++) {
        if (qemuPCIGet(set, bus, slot, f))
            return false;
    }
    return true;
}

static bool
qemuPCIInfoIsRootPort(virDomainDef *def, virDomainDeviceInfo *info)
{
    size_t i;

    for (i = 0; i < def->ncontrollers; i++) {
        if (&def->controllers[i]->info == info)
            return def->controllers[i]->type == VIR_DOMAIN_CONTROLLER_TYPE_PCI &&
                   def->controllers[i]->model == VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT_PORT;
    }
    return false;
}

static int
qemuPCIReserve(qemuPCIAddrSet *set, virDomainDeviceInfo *info)
{
    virPCIDeviceAddress *a = &info->addr.pci;

    if (a->domain != 0 || a->bus > 255 || a->slot >= QEMU_PCI_SLOTS ||
        a->function >= QEMU_PCI_FUNCS) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("PCI address %04x:%02x:%02x.%x is out of range"),
                       a->domain, a->bus, a->slot, a->function);
        return -1;
    }
    if (qemuPCIGet(set, a->bus, a->slot, a->function)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("PCI address %04x:%02x:%02x.%x is used by two devices"),
                       a->domain, a->bus, a->slot, a->function);
        return -1;
    }
    g_hash_table_insert(set->used, qemuPCIKey(a->bus, a->slot, a->function), info);
    if (a->bus == 0 && qemuPCIInfoIsRootPort(set->def, info))
        set->rootPortSlot[a->slot] = true;
    return 0;
}

static int
qemuPCIReserveIterator(virDomainDef *def G_GNUC_UNUSED,
                       virDomainDeviceDef *dev G_GNUC_UNUSED,
                       virDomainDeviceInfo *info,
                       void *opaque)
{
    if (info->type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_PCI)
        return 0;
    return qemuPCIReserve(opaque, info);
}

static int
qemuPCISet(qemuPCIAddrSet *set, virDomainDeviceInfo *info,
           unsigned int bus, unsigned int slot, unsigned int function)
{
    virDomainDeviceInfo *first;

    info->type = VIR_DOMAIN_DEVICE_ADDRESS_TYPE_PCI;
    info->addr.pci.domain = 0;
    info->addr.pci.bus = bus;
    info->addr.pci.slot = slot;
    info->addr.pci.function = function;
    if (qemuPCIReserve(set, info) < 0)
        return -1;
    /* a slot with several functions: function 0 says so */
    if (function > 0 && (first = qemuPCIGet(set, bus, slot, 0)) &&
        first->addr.pci.multi == VIR_TRISTATE_SWITCH_ABSENT)
        first->addr.pci.multi = VIR_TRISTATE_SWITCH_ON;
    return 0;
}

static int
qemuPCIAssignConventional(qemuPCIAddrSet *set, virDomainDeviceInfo *info,
                          unsigned int preferSlot)
{
    unsigned int slot;

    if (preferSlot && qemuPCISlotIsFree(set, 0, preferSlot))
        return qemuPCISet(set, info, 0, preferSlot, 0);

    /* pc: slot 1 is the PIIX3, slot 2 is kept for the primary video */
    for (slot = set->family == QEMU_DOMAIN_MACHINE_PC ? 3 : 2;
         slot < QEMU_PCI_SLOTS; slot++) {
        if (set->family == QEMU_DOMAIN_MACHINE_Q35 && slot == 0x1f)
            continue;
        if (qemuPCISlotIsFree(set, 0, slot))
            return qemuPCISet(set, info, 0, slot, 0);
    }
    virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                   _("no free PCI slot left on the root bus"));
    return -1;
}

static int
qemuPCIAssignRootPort(qemuPCIAddrSet *set, virDomainControllerDef *cont)
{
    unsigned int slot;
    unsigned int f;

    for (slot = 2; slot < QEMU_PCI_SLOTS; slot++) {
        if (slot == 0x1f)
            continue;
        if (!set->rootPortSlot[slot] && !qemuPCISlotIsFree(set, 0, slot))
            continue;
        for (f = 0; f < QEMU_PCI_FUNCS; f++) {
            if (!qemuPCIGet(set, 0, slot, f))
                return qemuPCISet(set, &cont->info, 0, slot, f);
        }
    }
    virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                   _("no free PCI slot left on pcie.0 for a pcie-root-port"));
    return -1;
}

/* The target of a root port as libvirt writes it: chassis = index,
 * port = slot * 8 + function of the root port itself. */
static void
qemuPCIFillRootPort(virDomainControllerDef *cont)
{
    virDomainPCIControllerOpts *o = &cont->opts.pciopts;

    if (o->modelName == VIR_DOMAIN_CONTROLLER_PCI_MODEL_NAME_NONE)
        o->modelName = VIR_DOMAIN_CONTROLLER_PCI_MODEL_NAME_PCIE_ROOT_PORT;
    if (o->chassis < 0)
        o->chassis = cont->idx;
    if (o->port < 0 && cont->info.type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_PCI)
        o->port = (cont->info.addr.pci.slot << 3) | cont->info.addr.pci.function;
}

static int
qemuPCIAssignExpress(qemuPCIAddrSet *set, virDomainDeviceInfo *info)
{
    virDomainDef *def = set->def;
    virDomainControllerDef *cont = NULL;
    int maxIdx = 0;
    size_t i;

    for (i = 0; i < def->ncontrollers; i++) {
        virDomainControllerDef *c = def->controllers[i];

        if (c->type != VIR_DOMAIN_CONTROLLER_TYPE_PCI)
            continue;
        maxIdx = MAX(maxIdx, c->idx);
        if (!cont && c->model == VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT_PORT &&
            qemuPCISlotIsFree(set, c->idx, 0))
            cont = c;
    }

    if (!cont) {
        if (maxIdx >= 255) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                           _("no PCI bus index left for another pcie-root-port"));
            return -1;
        }
        cont = qemuDomainAddrAddController(def, VIR_DOMAIN_CONTROLLER_TYPE_PCI,
                                           maxIdx + 1,
                                           VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT_PORT);
        if (qemuPCIAssignRootPort(set, cont) < 0)
            return -1;
        qemuPCIFillRootPort(cont);
    }
    return qemuPCISet(set, info, cont->idx, 0, 0);
}

static int
qemuPCIAssign(qemuPCIAddrSet *set, virDomainDeviceInfo *info,
              qemuPCIKind kind, unsigned int preferSlot)
{
    if (info->type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE || kind == QEMU_PCI_KIND_NONE)
        return 0;
    if (kind == QEMU_PCI_KIND_EXPRESS && set->family == QEMU_DOMAIN_MACHINE_Q35)
        return qemuPCIAssignExpress(set, info);
    return qemuPCIAssignConventional(set, info, preferSlot);
}

static qemuPCIKind
qemuPCIControllerKind(virDomainDef *def, virDomainControllerDef *cont, int family)
{
    switch ((virDomainControllerType) cont->type) {
    case VIR_DOMAIN_CONTROLLER_TYPE_USB:
        switch ((virDomainControllerModelUSB) cont->model) {
        case VIR_DOMAIN_CONTROLLER_MODEL_USB_QEMU_XHCI:
        case VIR_DOMAIN_CONTROLLER_MODEL_USB_NEC_XHCI:
            return QEMU_PCI_KIND_EXPRESS;
        case VIR_DOMAIN_CONTROLLER_MODEL_USB_NONE:
            return QEMU_PCI_KIND_NONE;
        default:
            return QEMU_PCI_KIND_CONVENTIONAL;
        }
    case VIR_DOMAIN_CONTROLLER_TYPE_SCSI:
    case VIR_DOMAIN_CONTROLLER_TYPE_VIRTIO_SERIAL:
        return QEMU_PCI_KIND_EXPRESS;
    case VIR_DOMAIN_CONTROLLER_TYPE_SATA:
        if (family == QEMU_DOMAIN_MACHINE_Q35 && cont->idx == 0)
            return QEMU_PCI_KIND_NONE;
        return QEMU_PCI_KIND_CONVENTIONAL;
    case VIR_DOMAIN_CONTROLLER_TYPE_IDE:
        return QEMU_PCI_KIND_NONE;
    case VIR_DOMAIN_CONTROLLER_TYPE_PCI:
        if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT_PORT)
            return QEMU_PCI_KIND_ROOT_PORT;
        if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_PCI_BRIDGE)
            return QEMU_PCI_KIND_CONVENTIONAL;
        return QEMU_PCI_KIND_NONE;
    case VIR_DOMAIN_CONTROLLER_TYPE_FDC:
    case VIR_DOMAIN_CONTROLLER_TYPE_CCID:
    case VIR_DOMAIN_CONTROLLER_TYPE_XENBUS:
    case VIR_DOMAIN_CONTROLLER_TYPE_ISA:
    case VIR_DOMAIN_CONTROLLER_TYPE_LAST:
        break;
    }
    (void)def;
    return QEMU_PCI_KIND_NONE;
}

static qemuPCIKind
qemuPCINetKind(virDomainNetDef *net)
{
    switch (net->model) {
    case VIR_DOMAIN_NET_MODEL_VIRTIO:
    case VIR_DOMAIN_NET_MODEL_VIRTIO_TRANSITIONAL:
    case VIR_DOMAIN_NET_MODEL_VIRTIO_NON_TRANSITIONAL:
    case VIR_DOMAIN_NET_MODEL_E1000E:
        return QEMU_PCI_KIND_EXPRESS;
    default:
        return QEMU_PCI_KIND_CONVENTIONAL;
    }
}

/* Built-in functions of the chipsets, at the addresses QEMU gives them. */
static int
qemuPCIAssignBuiltin(qemuPCIAddrSet *set)
{
    virDomainDef *def = set->def;
    size_t i;

    for (i = 0; i < def->ncontrollers; i++) {
        virDomainControllerDef *cont = def->controllers[i];
        unsigned int slot = 0;
        unsigned int function = 0;

        if (cont->idx != 0 || cont->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE)
            continue;
        if (set->family == QEMU_DOMAIN_MACHINE_PC &&
            cont->type == VIR_DOMAIN_CONTROLLER_TYPE_IDE) {
            slot = 1;
            function = 1;
        } else if (set->family == QEMU_DOMAIN_MACHINE_PC &&
                   cont->type == VIR_DOMAIN_CONTROLLER_TYPE_USB &&
                   cont->model == VIR_DOMAIN_CONTROLLER_MODEL_USB_PIIX3_UHCI) {
            slot = 1;
            function = 2;
        } else if (set->family == QEMU_DOMAIN_MACHINE_Q35 &&
                   cont->type == VIR_DOMAIN_CONTROLLER_TYPE_SATA) {
            slot = 0x1f;
            function = 2;
        } else {
            continue;
        }
        if (!qemuPCIGet(set, 0, slot, function) &&
            qemuPCISet(set, &cont->info, 0, slot, function) < 0)
            return -1;
    }
    return 0;
}

/* ich9-ehci1 and its uhci companions share one slot (ehci at function 7). */
static int
qemuPCIAssignUSB2Companions(qemuPCIAddrSet *set)
{
    virDomainDef *def = set->def;
    size_t i;
    size_t j;

    for (i = 0; i < def->ncontrollers; i++) {
        virDomainControllerDef *ehci = def->controllers[i];
        virDomainDeviceInfo tmp = { 0 };
        unsigned int slot;

        if (ehci->type != VIR_DOMAIN_CONTROLLER_TYPE_USB ||
            ehci->model != VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_EHCI1 ||
            ehci->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE)
            continue;

        for (j = 0; j < def->ncontrollers; j++) {
            virDomainControllerDef *c = def->controllers[j];
            if (c != ehci && c->type == VIR_DOMAIN_CONTROLLER_TYPE_USB &&
                c->idx == ehci->idx && IS_USB2_CONTROLLER(c) &&
                c->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE)
                break;
        }
        if (j < def->ncontrollers)
            continue;   /* partly placed by the user: one by one then */

        /* find a free slot without taking it */
        if (qemuPCIAssignConventional(set, &tmp,
                                      set->family == QEMU_DOMAIN_MACHINE_Q35 ? 0x1d : 0) < 0)
            return -1;
        slot = tmp.addr.pci.slot;
        g_hash_table_remove(set->used, qemuPCIKey(0, slot, 0));

        for (j = 0; j < def->ncontrollers; j++) {
            virDomainControllerDef *c = def->controllers[j];
            unsigned int function;

            if (c->type != VIR_DOMAIN_CONTROLLER_TYPE_USB || c->idx != ehci->idx ||
                !IS_USB2_CONTROLLER(c))
                continue;
            function = c->model == VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_EHCI1 ? 7 :
                c->model - VIR_DOMAIN_CONTROLLER_MODEL_USB_ICH9_UHCI1;
            if (qemuPCIGet(set, 0, slot, function))
                continue;
            if (qemuPCISet(set, &c->info, 0, slot, function) < 0)
                return -1;
        }
        /* companions placed after the ehci function: mark function 0 */
        if (qemuPCIGet(set, 0, slot, 0) &&
            qemuPCIGet(set, 0, slot, 0)->addr.pci.multi == VIR_TRISTATE_SWITCH_ABSENT)
            qemuPCIGet(set, 0, slot, 0)->addr.pci.multi = VIR_TRISTATE_SWITCH_ON;
    }
    return 0;
}

static int
qemuDomainAssignPCIAddresses(virDomainDef *def, int family)
{
    g_autoptr(GHashTable) used = g_hash_table_new(g_direct_hash, g_direct_equal);
    qemuPCIAddrSet set = { .def = def, .family = family, .used = used };
    g_autoptr(GPtrArray) conts = g_ptr_array_new();
    size_t i;

    /* the host bridge, and on q35 the ICH9 functions of slot 0x1f */
    g_hash_table_insert(used, qemuPCIKey(0, 0, 0), &set);
    if (family == QEMU_DOMAIN_MACHINE_PC)
        g_hash_table_insert(used, qemuPCIKey(0, 1, 0), &set);
    else
        g_hash_table_insert(used, qemuPCIKey(0, 0x1f, 0), &set);

    if (virDomainDeviceInfoIterate(def, qemuPCIReserveIterator, &set) < 0)
        return -1;

    if (qemuPCIAssignBuiltin(&set) < 0)
        return -1;

    /* the primary video at the slot the guest firmware expects it */
    if (def->nvideos > 0 && def->videos[0]->type != VIR_DOMAIN_VIDEO_TYPE_NONE &&
        qemuPCIAssign(&set, &def->videos[0]->info, QEMU_PCI_KIND_CONVENTIONAL,
                      family == QEMU_DOMAIN_MACHINE_Q35 ? 1 : 2) < 0)
        return -1;

    if (qemuPCIAssignUSB2Companions(&set) < 0)
        return -1;

    /* root ports and bridges of the definition, before anything is
     * plugged into them; new root ports get appended while assigning,
     * so take the list first */
    for (i = 0; i < def->ncontrollers; i++)
        g_ptr_array_add(conts, def->controllers[i]);
    for (i = 0; i < conts->len; i++) {
        virDomainControllerDef *cont = g_ptr_array_index(conts, i);
        qemuPCIKind kind = qemuPCIControllerKind(def, cont, family);

        if (kind == QEMU_PCI_KIND_ROOT_PORT) {
            if (family != QEMU_DOMAIN_MACHINE_Q35) {
                virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                               _("controller model 'pcie-root-port' needs machine q35"));
                return -1;
            }
            if (cont->info.type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE &&
                qemuPCIAssignRootPort(&set, cont) < 0)
                return -1;
            qemuPCIFillRootPort(cont);
        } else if (cont->type == VIR_DOMAIN_CONTROLLER_TYPE_PCI &&
                   cont->model == VIR_DOMAIN_CONTROLLER_MODEL_PCI_BRIDGE) {
            if (qemuPCIAssign(&set, &cont->info, kind, 0) < 0)
                return -1;
            if (cont->opts.pciopts.modelName == VIR_DOMAIN_CONTROLLER_PCI_MODEL_NAME_NONE)
                cont->opts.pciopts.modelName = VIR_DOMAIN_CONTROLLER_PCI_MODEL_NAME_PCI_BRIDGE;
            if (cont->opts.pciopts.chassisNr < 0)
                cont->opts.pciopts.chassisNr = cont->idx;
        }
    }

    /* the other controllers */
    for (i = 0; i < conts->len; i++) {
        virDomainControllerDef *cont = g_ptr_array_index(conts, i);

        if (cont->type == VIR_DOMAIN_CONTROLLER_TYPE_PCI)
            continue;
        if (qemuPCIAssign(&set, &cont->info,
                          qemuPCIControllerKind(def, cont, family), 0) < 0)
            return -1;
    }

    for (i = 0; i < def->nnets; i++) {
        if (qemuPCIAssign(&set, &def->nets[i]->info,
                          qemuPCINetKind(def->nets[i]), 0) < 0)
            return -1;
    }

    for (i = 0; i < def->nsounds; i++) {
        virDomainSoundDef *snd = def->sounds[i];
        qemuPCIKind kind = QEMU_PCI_KIND_NONE;
        unsigned int prefer = 0;

        if (snd->model == VIR_DOMAIN_SOUND_MODEL_ICH6 ||
            snd->model == VIR_DOMAIN_SOUND_MODEL_AC97)
            kind = QEMU_PCI_KIND_CONVENTIONAL;
        if (snd->model == VIR_DOMAIN_SOUND_MODEL_ICH9) {
            kind = QEMU_PCI_KIND_CONVENTIONAL;
            if (family == QEMU_DOMAIN_MACHINE_Q35)
                prefer = 0x1b;
        }
        if (qemuPCIAssign(&set, &snd->info, kind, prefer) < 0)
            return -1;
    }

    for (i = 0; i < def->ndisks; i++) {
        if (def->disks[i]->bus == VIR_DOMAIN_DISK_BUS_VIRTIO &&
            qemuPCIAssign(&set, &def->disks[i]->info, QEMU_PCI_KIND_EXPRESS, 0) < 0)
            return -1;
    }

    for (i = 1; i < def->nvideos; i++) {
        virDomainVideoDef *video = def->videos[i];
        qemuPCIKind kind = video->type == VIR_DOMAIN_VIDEO_TYPE_VIRTIO ?
            QEMU_PCI_KIND_EXPRESS : QEMU_PCI_KIND_CONVENTIONAL;

        if (video->type != VIR_DOMAIN_VIDEO_TYPE_NONE &&
            qemuPCIAssign(&set, &video->info, kind, 0) < 0)
            return -1;
    }

    for (i = 0; i < def->ninputs; i++) {
        if (def->inputs[i]->bus == VIR_DOMAIN_INPUT_BUS_VIRTIO &&
            qemuPCIAssign(&set, &def->inputs[i]->info, QEMU_PCI_KIND_EXPRESS, 0) < 0)
            return -1;
    }

    if (def->watchdog &&
        def->watchdog->model == VIR_DOMAIN_WATCHDOG_MODEL_I6300ESB &&
        qemuPCIAssign(&set, &def->watchdog->info, QEMU_PCI_KIND_CONVENTIONAL, 0) < 0)
        return -1;

    if (def->memballoon &&
        def->memballoon->model != VIR_DOMAIN_MEMBALLOON_MODEL_NONE &&
        qemuPCIAssign(&set, &def->memballoon->info, QEMU_PCI_KIND_EXPRESS, 0) < 0)
        return -1;

    for (i = 0; i < def->nrngs; i++) {
        if (qemuPCIAssign(&set, &def->rngs[i]->info, QEMU_PCI_KIND_EXPRESS, 0) < 0)
            return -1;
    }

    return 0;
}


/* ------------------------------------------------------------------------
 * virtio-serial ports
 * ------------------------------------------------------------------------ */

static bool
qemuChrIsVirtioSerial(virDomainChrDef *chr)
{
    return (chr->deviceType == VIR_DOMAIN_CHR_DEVICE_TYPE_CHANNEL &&
            chr->targetType == VIR_DOMAIN_CHR_CHANNEL_TARGET_TYPE_VIRTIO) ||
           (chr->deviceType == VIR_DOMAIN_CHR_DEVICE_TYPE_CONSOLE &&
            chr->targetType == VIR_DOMAIN_CHR_CONSOLE_TARGET_TYPE_VIRTIO);
}

static bool
qemuVirtioSerialPortUsed(virDomainDef *def, unsigned int port)
{
    size_t i;

    for (i = 0; i < def->nchannels; i++) {
        virDomainDeviceInfo *info = &def->channels[i]->info;
        if (info->type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_VIRTIO_SERIAL &&
            info->addr.vioserial.controller == 0 && info->addr.vioserial.bus == 0 &&
            info->addr.vioserial.port == port)
            return true;
    }
    for (i = 0; i < def->nconsoles; i++) {
        virDomainDeviceInfo *info = &def->consoles[i]->info;
        if (info->type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_VIRTIO_SERIAL &&
            info->addr.vioserial.controller == 0 && info->addr.vioserial.bus == 0 &&
            info->addr.vioserial.port == port)
            return true;
    }
    return false;
}

static int
qemuDomainAssignVirtioSerialPorts(virDomainDef *def)
{
    virDomainChrDef **chrs[] = { def->consoles, def->channels };
    size_t nchrs[] = { def->nconsoles, def->nchannels };
    size_t k;
    size_t i;

    for (k = 0; k < G_N_ELEMENTS(chrs); k++) {
        for (i = 0; i < nchrs[k]; i++) {
            virDomainChrDef *chr = chrs[k][i];
            unsigned int port = chr->deviceType == VIR_DOMAIN_CHR_DEVICE_TYPE_CONSOLE ? 0 : 1;

            if (!qemuChrIsVirtioSerial(chr) ||
                chr->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_NONE)
                continue;
            while (qemuVirtioSerialPortUsed(def, port))
                port++;
            if (port > 30) {
                virReportError(VIR_ERR_CONFIG_UNSUPPORTED, "%s",
                               _("too many virtio serial ports on controller 0"));
                return -1;
            }
            chr->info.type = VIR_DOMAIN_DEVICE_ADDRESS_TYPE_VIRTIO_SERIAL;
            chr->info.addr.vioserial.controller = 0;
            chr->info.addr.vioserial.bus = 0;
            chr->info.addr.vioserial.port = port;
        }
    }
    return 0;
}


/* ------------------------------------------------------------------------
 * Aliases
 * ------------------------------------------------------------------------ */

typedef struct _qemuAliasClass qemuAliasClass;
struct _qemuAliasClass {
    const char *prefix;
    virDomainDeviceInfo **infos;
    size_t ninfos;
};

static bool
qemuAliasClassHas(qemuAliasClass *cls, const char *alias)
{
    size_t i;

    for (i = 0; i < cls->ninfos; i++) {
        if (cls->infos[i]->alias && STREQ(cls->infos[i]->alias, alias))
            return true;
    }
    return false;
}

/* Device i of a class becomes PREFIX<i>, or the next free number. */
static void
qemuAliasClassAssign(qemuAliasClass *cls)
{
    size_t i;

    for (i = 0; i < cls->ninfos; i++) {
        size_t n = i;
        char *alias;

        if (cls->infos[i]->alias)
            continue;
        while (true) {
            alias = g_strdup_printf("%s%zu", cls->prefix, n);
            if (!qemuAliasClassHas(cls, alias))
                break;
            g_free(alias);
            n++;
        }
        cls->infos[i]->alias = alias;
    }
}

#define QEMU_ALIAS_CLASS(cls, pfx, array, n, member) \
    do { \
        size_t _i; \
        (cls)->prefix = (pfx); \
        (cls)->ninfos = (n); \
        (cls)->infos = g_new0(virDomainDeviceInfo *, (n) + 1); \
        for (_i = 0; _i < (n); _i++) \
            (cls)->infos[_i] = &(array)[_i]->member; \
        qemuAliasClassAssign(cls); \
        g_free((cls)->infos); \
    } while (0)

static char *
qemuControllerAlias(virDomainControllerDef *cont, int family)
{
    const char *type = virDomainControllerTypeToString(cont->type);

    switch ((virDomainControllerType) cont->type) {
    case VIR_DOMAIN_CONTROLLER_TYPE_PCI:
        if (cont->model == VIR_DOMAIN_CONTROLLER_MODEL_PCIE_ROOT)
            return g_strdup_printf("pcie.%d", cont->idx);
        return g_strdup_printf("pci.%d", cont->idx);
    case VIR_DOMAIN_CONTROLLER_TYPE_IDE:
    case VIR_DOMAIN_CONTROLLER_TYPE_USB:
        if (cont->idx == 0)
            return g_strdup(type);
        break;
    case VIR_DOMAIN_CONTROLLER_TYPE_SATA:
        /* ICH9's built-in AHCI names its buses ide.N */
        if (cont->idx == 0 && family == QEMU_DOMAIN_MACHINE_Q35)
            return g_strdup("ide");
        break;
    default:
        break;
    }
    return g_strdup_printf("%s%d", type, cont->idx);
}

static char *
qemuDiskAlias(virDomainDiskDef *disk)
{
    virDomainDeviceDriveAddress *a = &disk->info.addr.drive;
    int idx;

    switch (disk->bus) {
    case VIR_DOMAIN_DISK_BUS_IDE:
    case VIR_DOMAIN_DISK_BUS_SATA:
        if (disk->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_DRIVE)
            return NULL;
        return g_strdup_printf("%s%u-%u-%u",
                               disk->bus == VIR_DOMAIN_DISK_BUS_IDE ? "ide" : "sata",
                               a->controller, a->bus, a->unit);
    case VIR_DOMAIN_DISK_BUS_SCSI:
        if (disk->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_DRIVE)
            return NULL;
        return g_strdup_printf("scsi%u-%u-%u-%u",
                               a->controller, a->bus, a->target, a->unit);
    case VIR_DOMAIN_DISK_BUS_VIRTIO:
        if ((idx = virDiskNameToIndex(disk->dst)) < 0)
            return NULL;
        return g_strdup_printf("virtio-disk%d", idx);
    default:
        return NULL;
    }
}

static void
qemuDomainAssignAliases(virDomainDef *def, int family)
{
    qemuAliasClass cls;
    size_t i;

    for (i = 0; i < def->ncontrollers; i++) {
        if (!def->controllers[i]->info.alias)
            def->controllers[i]->info.alias = qemuControllerAlias(def->controllers[i], family);
    }
    for (i = 0; i < def->ndisks; i++) {
        if (!def->disks[i]->info.alias)
            def->disks[i]->info.alias = qemuDiskAlias(def->disks[i]);
    }

    QEMU_ALIAS_CLASS(&cls, "net", def->nets, def->nnets, info);
    QEMU_ALIAS_CLASS(&cls, "video", def->videos, def->nvideos, info);
    QEMU_ALIAS_CLASS(&cls, "input", def->inputs, def->ninputs, info);
    QEMU_ALIAS_CLASS(&cls, "sound", def->sounds, def->nsounds, info);
    QEMU_ALIAS_CLASS(&cls, "rng", def->rngs, def->nrngs, info);
    QEMU_ALIAS_CLASS(&cls, "panic", def->panics, def->npanics, info);
    QEMU_ALIAS_CLASS(&cls, "redir", def->redirdevs, def->nredirdevs, info);
    QEMU_ALIAS_CLASS(&cls, "serial", def->serials, def->nserials, info);
    QEMU_ALIAS_CLASS(&cls, "parallel", def->parallels, def->nparallels, info);
    QEMU_ALIAS_CLASS(&cls, "channel", def->channels, def->nchannels, info);

    /* <console type='pty'><target type='serial'/> is serial0 itself */
    if (def->nconsoles > 0 && def->nserials > 0 && !def->consoles[0]->info.alias &&
        def->consoles[0]->targetType == VIR_DOMAIN_CHR_CONSOLE_TARGET_TYPE_SERIAL)
        def->consoles[0]->info.alias = g_strdup(def->serials[0]->info.alias);
    QEMU_ALIAS_CLASS(&cls, "console", def->consoles, def->nconsoles, info);

    if (def->watchdog && !def->watchdog->info.alias)
        def->watchdog->info.alias = g_strdup("watchdog0");
    if (def->memballoon && !def->memballoon->info.alias &&
        def->memballoon->model != VIR_DOMAIN_MEMBALLOON_MODEL_NONE)
        def->memballoon->info.alias = g_strdup("balloon0");
}


/* ------------------------------------------------------------------------
 * The entry point
 * ------------------------------------------------------------------------ */

int
qemuDomainAssignAddresses(virDomainDef *def, qemuCaps *qcaps G_GNUC_UNUSED)
{
    int family;

    if ((family = qemuDomainMachineGetFamily(def)) < 0)
        return -1;

    if (qemuDomainAddrAddImplicit(def, family) < 0)
        return -1;

    if (qemuDomainAssignPCIAddresses(def, family) < 0)
        return -1;

    if (qemuDomainAssignVirtioSerialPorts(def) < 0)
        return -1;

    qemuDomainAssignAliases(def, family);
    return 0;
}
