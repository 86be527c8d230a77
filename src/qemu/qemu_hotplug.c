/*
 * qemu_hotplug.c: device hot-plug and cold-plug (attach-device,
 * detach-device, detach-device-alias) of disks and interfaces
 *
 * Live attach of a disk: its image is given to QEMU's user, its storage
 * and format nodes are added (blockdev-add, named libvirt-N-* above every
 * N QEMU has, as a change of media does), then the device (device_add,
 * id = alias, a free PCI slot or a unit of an existing SCSI controller);
 * every step is undone when a later one fails.  An interface: netdev_add
 * and device_add; a bridge or network one (privileged daemon) first gets
 * its port and tap (qemu_interface.c), whose fd QEMU receives with getfd.  The objects are those the command line would have
 * (qemu_command.c builds them).
 *
 * Live detach: device_del, then a bounded wait (the domain lock released)
 * for QEMU's DEVICE_DELETED; when it comes the nodes or the network
 * backend are removed, the image is given back (the tap and the network
 * port released) and the device leaves the live definition
 * (device-removed event).  When the guest takes longer,
 * the detach returns success and a worker finishes the removal when the
 * event comes (as libvirt does).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_hotplug.h"
#include "qemu_conf.h"
#include "qemu_command.h"
#include "qemu_domain.h"
#include "qemu_domain_address.h"
#include "qemu_domain_devices.h"
#include "qemu_interface.h"
#include "qemu_monitor_json.h"
#include "qemu_security.h"

#include "datatypes.h"
#include "domain_event.h"
#include "domain_validate.h"
#include "viraccessapicheck.h"
#include "virerror.h"
#include "virfile.h"
#include "virlog.h"
#include "virmacaddr.h"
#include "virstring.h"
#include "virtime.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_hotplug");

/* How long a detach waits for the guest to let go of the device before
 * it returns, leaving the rest to qemuHotplugDeviceDeletedWork. */
#define QEMU_HOTPLUG_UNPLUG_WAIT_MS 5000


/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

static virDomainDeviceDef *
qemuHotplugParse(const char *xml, virDomainDef *def)
{
    return virDomainDeviceDefParse(xml, def, qemu_driver->xmlopt, NULL,
                                   VIR_DOMAIN_DEF_PARSE_INACTIVE);
}


/* Only disks and interfaces are attached and detached. */
static int
qemuHotplugCheckClass(virDomainDeviceDef *dev, bool live, bool attach)
{
    if (dev->type == VIR_DOMAIN_DEVICE_DISK || dev->type == VIR_DOMAIN_DEVICE_NET)
        return 0;
    virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                   attach ? (live ? _("live attach of device '%s' is not supported")
                                  : _("persistent attach of device '%s' is not supported"))
                          : (live ? _("live detach of device '%s' is not supported")
                                  : _("persistent detach of device '%s' is not supported")),
                   virDomainDeviceTypeToString(dev->type));
    return -1;
}


static virDomainDiskDef *
qemuHotplugDiskByAlias(virDomainDef *def, const char *alias, size_t *idx)
{
    size_t i;

    for (i = 0; i < def->ndisks; i++) {
        if (STREQ_NULLABLE(def->disks[i]->info.alias, alias)) {
            if (idx)
                *idx = i;
            return def->disks[i];
        }
    }
    return NULL;
}


static virDomainNetDef *
qemuHotplugNetByAlias(virDomainDef *def, const char *alias, size_t *idx)
{
    size_t i;

    for (i = 0; i < def->nnets; i++) {
        if (STREQ_NULLABLE(def->nets[i]->info.alias, alias)) {
            if (idx)
                *idx = i;
            return def->nets[i];
        }
    }
    return NULL;
}


/* Can this disk be plugged into / unplugged from a running guest? */
static int
qemuHotplugCheckDiskLive(virDomainDef *def, virDomainDiskDef *disk)
{
    if (disk->device != VIR_DOMAIN_DISK_DEVICE_DISK) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s': hot-plug of a '%s' device is not supported"),
                       disk->dst, virDomainDiskDeviceTypeToString(disk->device));
        return -1;
    }
    if (disk->bus != VIR_DOMAIN_DISK_BUS_VIRTIO && disk->bus != VIR_DOMAIN_DISK_BUS_SCSI) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s': disk bus '%s' cannot be hot-plugged (use 'virtio' or 'scsi')"),
                       disk->dst, virDomainDiskBusTypeToString(disk->bus));
        return -1;
    }
    if (disk->bus == VIR_DOMAIN_DISK_BUS_SCSI &&
        (disk->info.type != VIR_DOMAIN_DEVICE_ADDRESS_TYPE_DRIVE ||
         virDomainControllerFind(def, VIR_DOMAIN_CONTROLLER_TYPE_SCSI,
                                 disk->info.addr.drive.controller) < 0)) {
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("disk '%s': hot-plug needs an existing SCSI controller with index %u"),
                       disk->dst, disk->info.type == VIR_DOMAIN_DEVICE_ADDRESS_TYPE_DRIVE ?
                       disk->info.addr.drive.controller : 0);
        return -1;
    }
    return 0;
}


static bool
qemuHotplugNetUsesTap(const virDomainNetDef *net)
{
    return net->type == VIR_DOMAIN_NET_TYPE_NETWORK || net->type == VIR_DOMAIN_NET_TYPE_BRIDGE;
}


static int
qemuHotplugCheckNetLive(virDomainNetDef *net)
{
    if (net->type == VIR_DOMAIN_NET_TYPE_USER)
        return 0;
    if (qemuHotplugNetUsesTap(net)) {
        if (qemu_driver->privileged)
            return 0;
        virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                       _("hot-plug of an interface of type '%s' needs the privileged daemon (qemu:///system): an unprivileged driver cannot create tap devices"),
                       virDomainNetTypeToString(net->type));
        return -1;
    }
    virReportError(VIR_ERR_OPERATION_UNSUPPORTED,
                   _("hot-plug of an interface of type '%s' is not supported by Tandem"),
                   virDomainNetTypeToString(net->type));
    return -1;
}


/* Can QEMU delete this device of the definition on its own (a hot-plug
 * kind: its removal is finished here when it does)? */
static bool
qemuHotplugUnpluggable(virDomainDef *def, const char *alias)
{
    virDomainDiskDef *disk;
    virDomainNetDef *net;

    if ((disk = qemuHotplugDiskByAlias(def, alias, NULL)))
        return disk->device == VIR_DOMAIN_DISK_DEVICE_DISK &&
               (disk->bus == VIR_DOMAIN_DISK_BUS_VIRTIO || disk->bus == VIR_DOMAIN_DISK_BUS_SCSI);
    if ((net = qemuHotplugNetByAlias(def, alias, NULL)))
        return net->type == VIR_DOMAIN_NET_TYPE_USER || qemuHotplugNetUsesTap(net);
    return false;
}


/* The device info of @dev (a disk or an interface) */
static virDomainDeviceInfo *
qemuHotplugDevInfo(virDomainDeviceDef *dev)
{
    return dev->type == VIR_DOMAIN_DEVICE_DISK ? &dev->data.disk->info
                                               : &dev->data.net->info;
}


/* Moves @dev (a disk or an interface) into @def. */
static int
qemuHotplugInsert(virDomainDef *def, virDomainDeviceDef *dev)
{
    if (dev->type == VIR_DOMAIN_DEVICE_DISK) {
        virDomainDiskInsert(def, g_steal_pointer(&dev->data.disk));
        return 0;
    }
    if (virDomainNetInsert(def, dev->data.net) < 0)
        return -1;
    dev->data.net = NULL;
    return 0;
}


/* The PCI slot (or drive address) and the alias of @dev, about to be
 * plugged into the running @vm: the address assignment of define runs on
 * a copy of the live definition with the device added, which must not
 * need a new controller (none is plugged).  vm locked, job held. */
static int
qemuHotplugAssignLive(virDomainObj *vm, const char *xml, virDomainDeviceDef *dev)
{
    g_autoptr(qemuCaps) qcaps = NULL;
    g_autoptr(virDomainDef) copy = NULL;
    virDomainDeviceDef *cdev = NULL;
    virDomainDeviceInfo *info = qemuHotplugDevInfo(dev);
    virDomainDeviceInfo *cinfo;
    size_t ncontrollers;
    int ret = -1;

    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(qemu_driver, vm->def->emulator)) ||
        !(copy = virDomainDefCopy(vm->def, qemu_driver->xmlopt, NULL, false)) ||
        !(cdev = qemuHotplugParse(xml, copy)))
        goto cleanup;
    cinfo = qemuHotplugDevInfo(cdev);
    ncontrollers = copy->ncontrollers;
    if (qemuHotplugInsert(copy, cdev) < 0 ||
        qemuDomainAssignAddresses(copy, qcaps) < 0)
        goto cleanup;
    if (copy->ncontrollers != ncontrollers) {
        if (qemuDomainMachineGetFamily(vm->def) == QEMU_DOMAIN_MACHINE_Q35)
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("no free pcie-root-port for the new %s: define spare <controller type='pci' model='pcie-root-port'/> to hot-plug into"),
                           virDomainDeviceTypeToString(dev->type));
        else
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("no free hot-pluggable PCI slot for the new %s"),
                           virDomainDeviceTypeToString(dev->type));
        goto cleanup;
    }
    info->type = cinfo->type;
    info->addr = cinfo->addr;
    if (!info->alias && dev->type == VIR_DOMAIN_DEVICE_DISK)
        info->alias = g_strdup(cinfo->alias);
    ret = 0;

 cleanup:
    virDomainDeviceDefFree(cdev);
    return ret;
}


/* "net<N>", N above every interface alias of @def (libvirt's choice for a
 * hot-plugged interface). */
static char *
qemuHotplugNetAlias(virDomainDef *def)
{
    unsigned int max = 0;
    bool any = false;
    size_t i;

    for (i = 0; i < def->nnets; i++) {
        const char *a = def->nets[i]->info.alias;
        unsigned int n;

        if (a && STRPREFIX(a, "net") && virStrToLong_ui(a + 3, NULL, 10, &n) == 0) {
            max = any ? MAX(max, n) : n;
            any = true;
        }
    }
    return g_strdup_printf("net%u", any ? max + 1 : 0);
}


/* Parses the arguments of one QMP command as built by qemu_command.c */
static tdmJSONValue *
qemuHotplugParseObject(const char *json)
{
    tdmJSONValue *v = tdmJSONValueFromString(json);

    if (!v)
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot parse the device properties '%s'"), json);
    return v;
}


/* ---------------------------------------------------------------------- */
/* Live attach                                                            */
/* ---------------------------------------------------------------------- */

/* The nodes and the device, with the domain unlocked (monitor entered);
 * on failure nothing stays in QEMU. */
static int
qemuHotplugAddDiskMon(qemuMonitor *mon, char **objs,
                      const char *storageName, const char *formatName)
{
    g_autoptr(tdmJSONValue) storage = NULL;
    g_autoptr(tdmJSONValue) format = NULL;
    g_autoptr(tdmJSONValue) device = NULL;
    virErrorPtr err = NULL;

    if (!(storage = qemuHotplugParseObject(objs[0])) ||
        !(format = qemuHotplugParseObject(objs[1])) ||
        !(device = qemuHotplugParseObject(objs[2])))
        return -1;

    if (qemuMonitorJSONBlockdevAdd(mon, &storage) < 0)
        return -1;
    if (qemuMonitorJSONBlockdevAdd(mon, &format) < 0)
        goto del_storage;
    if (qemuMonitorJSONDeviceAdd(mon, &device) < 0)
        goto del_format;
    return 0;

 del_format:
    virErrorPreserveLast(&err);
    if (qemuMonitorJSONBlockdevDel(mon, formatName) < 0)
        VIR_WARN("cannot remove block node %s: %s", formatName, virGetLastErrorMessage());
    virErrorRestore(&err);
 del_storage:
    virErrorPreserveLast(&err);
    if (qemuMonitorJSONBlockdevDel(mon, storageName) < 0)
        VIR_WARN("cannot remove block node %s: %s", storageName, virGetLastErrorMessage());
    virErrorRestore(&err);
    return -1;
}


/* Plugs @dev->data.disk into the running @vm; on success the disk moves
 * into vm->def.  vm locked, modify job held. */
static int
qemuHotplugAttachDiskLive(virDomainObj *vm, const char *xml, virDomainDeviceDef *dev)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virDomainDiskDef *disk = dev->data.disk;
    qemuMonitor *mon;
    g_auto(GStrv) names = NULL;
    g_auto(GStrv) objs = NULL;
    g_autofree char *storageName = NULL;
    g_autofree char *formatName = NULL;
    g_autofree char *alias = NULL;
    unsigned int node = 0;
    size_t i;
    int rc;

    if (virDomainDiskIndexByName(vm->def, disk->dst, false) >= 0) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("target %s already exists"), disk->dst);
        return -1;
    }
    if (virDomainDefCompatibleDevice(vm->def, dev, NULL,
                                     VIR_DOMAIN_DEVICE_ACTION_ATTACH, true) < 0 ||
        qemuHotplugCheckDiskLive(vm->def, disk) < 0 ||
        qemuHotplugAssignLive(vm, xml, dev) < 0)
        return -1;
    if (!disk->info.alias || qemuHotplugDiskByAlias(vm->def, disk->info.alias, NULL)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("disk '%s': its address is taken by another disk (alias '%s')"),
                       disk->dst, NULLSTR(disk->info.alias));
        return -1;
    }
    alias = g_strdup(disk->info.alias);

    /* node names above every libvirt-N-* QEMU has (the command line's
     * and those of changed media) */
    mon = priv->mon;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        return -1;
    rc = qemuMonitorJSONQueryNamedBlockNodeNames(mon, &names);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    for (i = 0; names[i]; i++)
        node = MAX(node, qemuDomainDevicesNodeIndex(names[i]));
    node++;
    storageName = g_strdup_printf("libvirt-%u-storage", node);
    formatName = g_strdup_printf("libvirt-%u-format", node);

    if (!(objs = qemuBuildDiskHotplugObjects(vm->def, disk, node)))
        return -1;
    if (g_strv_length(objs) != 3) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("disk '%s': unexpected QEMU objects for hot-plug"), disk->dst);
        return -1;
    }

    /* QEMU's user may open the image before QEMU is asked to */
    if (qemuSecuritySetDiskLabel(qemu_driver, vm, disk, disk->src) < 0)
        return -1;
    mon = priv->mon;
    if (qemuDomainObjEnterMonitor(vm) < 0) {
        qemuSecurityRestoreDiskLabel(qemu_driver, vm, disk, disk->src);
        return -1;
    }
    rc = qemuHotplugAddDiskMon(mon, objs, storageName, formatName);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuSecurityRestoreDiskLabel(qemu_driver, vm, disk, disk->src);
        return -1;
    }

    VIR_INFO("disk %s (%s) of '%s' plugged: %s", disk->dst, alias, vm->def->name, formatName);
    virDomainDiskInsert(vm->def, g_steal_pointer(&dev->data.disk));
    qemuDriverQueueEvent(qemu_driver, virDomainEventDeviceAddedNewFromObj(vm, alias));
    return 0;
}


/* getfd of the tap (@fdName), netdev_add, device_add, with the domain
 * unlocked (monitor entered); on failure nothing stays in QEMU. */
static int
qemuHotplugAddNetMon(qemuMonitor *mon, char **objs, const char *netdevId,
                     const char *fdName, int tapfd)
{
    g_autoptr(tdmJSONValue) netdev = NULL;
    g_autoptr(tdmJSONValue) device = NULL;
    virErrorPtr err = NULL;

    if (!(netdev = qemuHotplugParseObject(objs[0])) ||
        !(device = qemuHotplugParseObject(objs[1])))
        return -1;
    if (fdName && qemuMonitorJSONSendFileHandle(mon, fdName, tapfd) < 0)
        return -1;
    if (qemuMonitorJSONNetdevAdd(mon, &netdev) < 0) {
        if (fdName) {
            /* the netdev may have taken the fd before it failed */
            virErrorPreserveLast(&err);
            ignore_value(qemuMonitorJSONCloseFileHandle(mon, fdName));
            virErrorRestore(&err);
        }
        return -1;
    }
    if (qemuMonitorJSONDeviceAdd(mon, &device) < 0) {
        virErrorPreserveLast(&err);
        if (qemuMonitorJSONNetdevDel(mon, netdevId) < 0)
            VIR_WARN("cannot remove network backend %s: %s", netdevId, virGetLastErrorMessage());
        virErrorRestore(&err);
        return -1;
    }
    return 0;
}


/* Plugs @dev->data.net into the running @vm; on success the interface
 * moves into vm->def.  A bridge or network interface gets its port and
 * tap first (qemu_interface.c; domain lock held, as at start), QEMU gets
 * the tap's fd with getfd.  vm locked, modify job held. */
static int
qemuHotplugAttachNetLive(virDomainObj *vm, const char *xml, virDomainDeviceDef *dev)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virDomainNetDef *net = dev->data.net;
    qemuMonitor *mon;
    virConnectPtr conn = NULL;
    g_auto(GStrv) objs = NULL;
    g_autofree char *netdevId = NULL;
    g_autofree char *fdName = NULL;
    g_autofree char *alias = NULL;
    char mac[VIR_MAC_STRING_BUFLEN];
    int tapfd = -1;
    int ret = -1;
    int rc;

    if (qemuHotplugCheckNetLive(net) < 0)
        return -1;
    if (virDomainHasNet(vm->def, net)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("an interface with MAC address %s already exists"),
                       virMacAddrFormat(&net->mac, mac));
        return -1;
    }
    if (virDomainDefCompatibleDevice(vm->def, dev, NULL,
                                     VIR_DOMAIN_DEVICE_ACTION_ATTACH, true) < 0)
        return -1;
    /* a user alias (ua-...) is kept, as libvirt does */
    if (!net->info.alias || !STRPREFIX(net->info.alias, "ua-")) {
        g_clear_pointer(&net->info.alias, g_free);
        net->info.alias = qemuHotplugNetAlias(vm->def);
    }
    if (qemuHotplugAssignLive(vm, xml, dev) < 0)
        return -1;
    alias = g_strdup(net->info.alias);
    netdevId = g_strdup_printf("host%s", alias);

    if (qemuHotplugNetUsesTap(net)) {
        fdName = g_strdup_printf("fd-%s", netdevId);
        if (qemuInterfaceStartOne(vm->def, net, &conn, &tapfd) < 0)
            goto cleanup;
    }
    if (!(objs = qemuBuildNetHotplugObjects(vm->def, net, fdName)))
        goto cleanup;
    if (g_strv_length(objs) != 2) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("interface '%s': unexpected QEMU objects for hot-plug"), alias);
        goto cleanup;
    }

    mon = priv->mon;
    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto cleanup;
    rc = qemuHotplugAddNetMon(mon, objs, netdevId, fdName, tapfd);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto cleanup;

    VIR_INFO("interface %s of '%s' plugged%s%s", alias, vm->def->name,
             net->ifname ? " on tap " : "", NULLSTR_EMPTY(net->ifname));
    if (qemuHotplugInsert(vm->def, dev) < 0)
        goto cleanup;
    qemuDriverQueueEvent(qemu_driver, virDomainEventDeviceAddedNewFromObj(vm, alias));
    ret = 0;

 cleanup:
    /* QEMU has its own copy of the tap's fd */
    VIR_FORCE_CLOSE(tapfd);
    if (ret < 0 && dev->data.net)
        qemuInterfaceStopOne(vm->def, dev->data.net, &conn);
    if (conn)
        virObjectUnref(conn);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* Live detach                                                            */
/* ---------------------------------------------------------------------- */

/* The format node of the drive of device @alias, or NULL.  Monitor
 * entered. */
static char *
qemuHotplugQueryDiskNode(qemuMonitor *mon, const char *alias)
{
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    char *node = NULL;
    size_t i;

    if (qemuMonitorJSONQueryBlock(mon, &info, &ninfo) < 0) {
        VIR_WARN("cannot query the block nodes of %s: %s", alias, virGetLastErrorMessage());
        virResetLastError();
        return NULL;
    }
    for (i = 0; i < ninfo; i++) {
        if (qemuDomainDevicesQdevMatches(info[i].qdev, alias) && info[i].inserted) {
            node = g_strdup(info[i].nodeName);
            break;
        }
    }
    qemuMonitorBlockInfoFree(info, ninfo);
    return node;
}


/* The format node of image @path that no drive uses any more: the nodes
 * of a disk whose device QEMU deleted while nobody recorded them (the
 * guest ejected it, or its detach had stopped waiting before a daemon
 * restart).  NULL if none.  Monitor entered. */
static char *
qemuHotplugFindOrphanFormat(qemuMonitor *mon, const char *path)
{
    g_autoptr(tdmJSONValue) nodes = NULL;
    qemuMonitorBlockInfo *info = NULL;
    size_t ninfo = 0;
    char *ret = NULL;
    size_t i;
    size_t j;

    if (!path)
        return NULL;
    if (qemuMonitorJSONQueryBlock(mon, &info, &ninfo) < 0 ||
        qemuMonitorJSONQueryNamedBlockNodes(mon, &nodes) < 0) {
        VIR_WARN("cannot look for the block nodes of %s: %s", path, virGetLastErrorMessage());
        virResetLastError();
        goto cleanup;
    }
    for (i = 0; i < tdmJSONValueArraySize(nodes) && !ret; i++) {
        tdmJSONValue *node = tdmJSONValueArrayGet(nodes, i);
        const char *name = tdmJSONValueObjectGetString(node, "node-name");
        const char *file = tdmJSONValueObjectGetString(node, "file");
        bool used = false;

        if (!name || !file || STRNEQ(file, path) ||
            qemuDomainDevicesNodeIndex(name) == 0 || !g_str_has_suffix(name, "-format"))
            continue;
        for (j = 0; j < ninfo; j++) {
            if (info[j].inserted && STREQ_NULLABLE(info[j].nodeName, name))
                used = true;
        }
        if (!used)
            ret = g_strdup(name);
    }

 cleanup:
    qemuMonitorBlockInfoFree(info, ninfo);
    return ret;
}


/* QEMU deleted the device @alias: remove what backed it (block nodes,
 * network backend), give the image back, drop it from the live
 * definition, queue device-removed, save the status.  vm locked, modify
 * job held. */
static int
qemuHotplugFinishRemoval(virDomainObj *vm, const char *devAlias)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *alias = g_strdup(devAlias);  /* the device goes away */
    qemuMonitor *mon = priv->mon;
    g_autofree char *format = NULL;
    g_autofree char *storage = NULL;
    g_autofree char *netdevId = NULL;
    virDomainDiskDef *disk;
    virDomainNetDef *net;
    virConnectPtr conn = NULL;
    size_t idx;
    int rc = 0;

    if ((disk = qemuHotplugDiskByAlias(vm->def, alias, &idx))) {
        g_autofree char *path = g_strdup(disk->src->path);

        if (priv->unplugNodes) {
            format = g_strdup(g_hash_table_lookup(priv->unplugNodes, alias));
            g_hash_table_remove(priv->unplugNodes, alias);
        }
        if (qemuDomainObjEnterMonitor(vm) < 0)
            return -1;
        if (!format)
            format = qemuHotplugFindOrphanFormat(mon, path);
        if (format && qemuDomainDevicesNodeIndex(format) > 0 && g_str_has_suffix(format, "-format"))
            storage = g_strdup_printf("libvirt-%u-storage", qemuDomainDevicesNodeIndex(format));
        if (format && qemuMonitorJSONBlockdevDel(mon, format) < 0) {
            VIR_WARN("cannot remove block node %s: %s", format, virGetLastErrorMessage());
            rc = -1;
        }
        if (storage && qemuMonitorJSONBlockdevDel(mon, storage) < 0) {
            VIR_WARN("cannot remove block node %s: %s", storage, virGetLastErrorMessage());
            rc = -1;
        }
        if (qemuDomainObjExitMonitor(vm) < 0)
            return -1;
        if (rc < 0)
            virResetLastError();
        if (!format)
            VIR_WARN("disk %s of '%s' removed: no block node of %s found to remove",
                     alias, vm->def->name, NULLSTR(path));
        /* the job kept every other writer of vm->def out */
        if (!(disk = qemuHotplugDiskByAlias(vm->def, alias, &idx)))
            return 0;
        qemuSecurityRestoreDiskLabel(qemu_driver, vm, disk, disk->src);
        virDomainDiskDefFree(virDomainDiskRemove(vm->def, idx));
    } else if (qemuHotplugNetByAlias(vm->def, alias, &idx)) {
        netdevId = g_strdup_printf("host%s", alias);
        if (qemuDomainObjEnterMonitor(vm) < 0)
            return -1;
        if (qemuMonitorJSONNetdevDel(mon, netdevId) < 0) {
            VIR_WARN("cannot remove network backend %s: %s", netdevId, virGetLastErrorMessage());
            rc = -1;
        }
        if (qemuDomainObjExitMonitor(vm) < 0)
            return -1;
        if (rc < 0)
            virResetLastError();
        if (!(net = qemuHotplugNetByAlias(vm->def, alias, &idx)))
            return 0;
        /* QEMU closed the tap: the kernel removed it; the port goes back */
        qemuInterfaceStopOne(vm->def, net, &conn);
        if (conn)
            virObjectUnref(conn);
        virDomainNetDefFree(virDomainNetRemove(vm->def, idx));
    } else {
        return 0;
    }

    VIR_INFO("device %s of '%s' removed", alias, vm->def->name);
    qemuDriverQueueEvent(qemu_driver, virDomainEventDeviceRemovedNewFromObj(vm, alias));
    qemuDomainObjSaveStatus(qemu_driver, vm);
    return 0;
}


/* device_del of @alias, then (@wait) up to QEMU_HOTPLUG_UNPLUG_WAIT_MS for
 * DEVICE_DELETED with the domain unlocked; the removal is finished here
 * when it came, else later by qemuHotplugDeviceDeletedWork.  vm locked,
 * modify job held. */
static int
qemuHotplugUnplug(virDomainObj *vm, const char *devAlias, bool isDisk, bool wait)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *alias = g_strdup(devAlias);  /* the device goes away */
    qemuMonitor *mon = priv->mon;
    g_autofree char *format = NULL;
    unsigned long long now;
    unsigned long long deadline;
    bool done;
    int rc;

    /* set before device_del: the event may come before it returns */
    g_free(priv->unplugAlias);
    priv->unplugAlias = g_strdup(alias);
    priv->unplugDone = false;

    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto error;
    if (isDisk)
        format = qemuHotplugQueryDiskNode(mon, alias);
    rc = qemuMonitorJSONDeviceDel(mon, alias);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto error;

    if (format) {
        if (!priv->unplugNodes)
            priv->unplugNodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(priv->unplugNodes, g_strdup(alias), g_steal_pointer(&format));
    }

    if (wait && virTimeMillisNow(&now) == 0) {
        deadline = now + QEMU_HOTPLUG_UNPLUG_WAIT_MS;
        /* vm->cond, broadcast by qemuHotplugDeviceDeleted; the job keeps
         * other modifications out while the lock is released */
        while (!priv->unplugDone && virDomainObjIsActive(vm)) {
            if (virDomainObjWaitUntil(vm, deadline) != 0)
                break;
        }
        virResetLastError();
    }
    done = priv->unplugDone;
    g_clear_pointer(&priv->unplugAlias, g_free);
    priv->unplugDone = false;

    if (!virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_FAILED, "%s",
                       _("domain is no longer running"));
        return -1;
    }
    if (!done) {
        VIR_INFO("device %s of '%s': the guest has not released it yet; its removal completes when it does",
                 alias, vm->def->name);
        return 0;
    }
    return qemuHotplugFinishRemoval(vm, alias);

 error:
    g_clear_pointer(&priv->unplugAlias, g_free);
    priv->unplugDone = false;
    return -1;
}


/* Unplugs the live device matching @dev (a disk by target, an interface
 * by MAC, PCI address or alias).  vm locked, modify job held. */
static int
qemuHotplugDetachLive(virDomainObj *vm, virDomainDeviceDef *dev, bool wait)
{
    if (dev->type == VIR_DOMAIN_DEVICE_DISK) {
        virDomainDiskDef *disk = virDomainDiskByName(vm->def, dev->data.disk->dst, false);

        if (!disk) {
            virReportError(VIR_ERR_DEVICE_MISSING,
                           _("disk %s not found"), dev->data.disk->dst);
            return -1;
        }
        if (qemuHotplugCheckDiskLive(vm->def, disk) < 0)
            return -1;
        if (!disk->info.alias) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("disk '%s' has no alias"), disk->dst);
            return -1;
        }
        return qemuHotplugUnplug(vm, disk->info.alias, true, wait);
    } else {
        virDomainNetDef *net;
        int idx;

        if ((idx = virDomainNetFindIdx(vm->def, dev->data.net)) < 0)
            return -1;
        net = vm->def->nets[idx];
        if (qemuHotplugCheckNetLive(net) < 0)
            return -1;
        if (!net->info.alias) {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("the interface has no alias"));
            return -1;
        }
        return qemuHotplugUnplug(vm, net->info.alias, false, wait);
    }
}


qemuHotplugDeletedResult
qemuHotplugDeviceDeleted(virDomainObj *vm, const char *alias)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->unplugAlias && STREQ(priv->unplugAlias, alias)) {
        priv->unplugDone = true;
        virDomainObjBroadcast(vm);
        return QEMU_HOTPLUG_DELETED_WAITER;
    }
    if (qemuHotplugUnpluggable(vm->def, alias))
        return QEMU_HOTPLUG_DELETED_DEFERRED;
    return QEMU_HOTPLUG_DELETED_OTHER;
}


void
qemuHotplugDeviceDeletedWork(virDomainObj *vm, int id, const char *alias)
{
    if (!virDomainObjIsActive(vm) || vm->def->id != id)
        return;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0) {
        VIR_WARN("device %s of '%s' was deleted by QEMU but cannot be removed from the definition: %s",
                 alias, vm->def->name, virGetLastErrorMessage());
        return;
    }
    if (virDomainObjIsActive(vm) && vm->def->id == id &&
        qemuHotplugFinishRemoval(vm, alias) < 0)
        VIR_WARN("removal of device %s of '%s': %s", alias, vm->def->name,
                 virGetLastErrorMessage());
    qemuDomainObjEndJob(vm);
}


void
qemuHotplugReconnect(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuMonitor *mon = priv->mon;
    g_auto(GStrv) ids = NULL;
    g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
    size_t i;
    int rc;

    if (qemuDomainObjEnterMonitor(vm) < 0)
        return;
    rc = qemuMonitorJSONQomListNames(mon, "/machine/peripheral", &ids);
    if (qemuDomainObjExitMonitor(vm) < 0)
        return;
    if (rc < 0) {
        VIR_WARN("cannot list the devices of '%s': %s", vm->def->name, virGetLastErrorMessage());
        virResetLastError();
        return;
    }
    for (i = 0; i < vm->def->ndisks; i++) {
        const char *alias = vm->def->disks[i]->info.alias;

        if (alias && qemuHotplugUnpluggable(vm->def, alias) && !g_strv_contains((const char **) ids, alias))
            g_ptr_array_add(gone, g_strdup(alias));
    }
    for (i = 0; i < vm->def->nnets; i++) {
        const char *alias = vm->def->nets[i]->info.alias;

        if (alias && qemuHotplugUnpluggable(vm->def, alias) && !g_strv_contains((const char **) ids, alias))
            g_ptr_array_add(gone, g_strdup(alias));
    }
    for (i = 0; i < gone->len; i++) {
        const char *alias = g_ptr_array_index(gone, i);

        VIR_INFO("device %s of '%s' was deleted by QEMU while the daemon was away",
                 alias, vm->def->name);
        if (qemuHotplugFinishRemoval(vm, alias) < 0) {
            VIR_WARN("removal of device %s of '%s': %s", alias, vm->def->name,
                     virGetLastErrorMessage());
            virResetLastError();
        }
    }
}


/* ---------------------------------------------------------------------- */
/* The persistent definition                                              */
/* ---------------------------------------------------------------------- */

/* Adds @dev to @def (a copy of the persistent definition) and gives it an
 * address; @dev's device moves into @def. */
static int
qemuHotplugAttachConfig(virDomainDef *def, virDomainDeviceDef *dev)
{
    g_autoptr(qemuCaps) qcaps = NULL;

    if (dev->type == VIR_DOMAIN_DEVICE_DISK &&
        virDomainDiskIndexByName(def, dev->data.disk->dst, true) >= 0) {
        virReportError(VIR_ERR_OPERATION_INVALID,
                       _("target %s already exists"), dev->data.disk->dst);
        return -1;
    }
    if (virDomainDefCompatibleDevice(def, dev, NULL, VIR_DOMAIN_DEVICE_ACTION_ATTACH, false) < 0 ||
        qemuHotplugInsert(def, dev) < 0 ||
        !(qcaps = qemuDriverGetQEMUCapsForBinary(qemu_driver, def->emulator)) ||
        qemuDomainAssignAddresses(def, qcaps) < 0 ||
        virDomainDefValidate(def, 0, qemu_driver->xmlopt, NULL) < 0)
        return -1;
    return 0;
}


/* Removes the device matching @dev from @def (a copy of the persistent
 * definition). */
static int
qemuHotplugDetachConfig(virDomainDef *def, virDomainDeviceDef *dev)
{
    if (dev->type == VIR_DOMAIN_DEVICE_DISK) {
        virDomainDiskDef *disk = virDomainDiskRemoveByName(def, dev->data.disk->dst);

        if (!disk) {
            virReportError(VIR_ERR_DEVICE_MISSING,
                           _("no target device %s"), dev->data.disk->dst);
            return -1;
        }
        virDomainDiskDefFree(disk);
    } else {
        int idx;

        if ((idx = virDomainNetFindIdx(def, dev->data.net)) < 0)
            return -1;
        virDomainNetDefFree(virDomainNetRemove(def, idx));
    }
    return 0;
}


/* Saves @newdef as @vm's persistent definition.  vm locked, job held. */
static int
qemuHotplugCommitConfig(virDomainObj *vm, virDomainDef **newdef)
{
    if (virDomainDefSave(*newdef, qemu_driver->xmlopt, qemu_driver->paths.configDir) < 0)
        return -1;
    virDomainObjAssignDef(vm, newdef, false, NULL);
    return 0;
}


/* ---------------------------------------------------------------------- */
/* The APIs                                                               */
/* ---------------------------------------------------------------------- */

static int
qemuDomainAttachDeviceFlags(virDomainPtr dom, const char *xml, unsigned int flags)
{
    virDomainObj *vm;
    g_autoptr(virDomainDef) persDef = NULL;
    virDomainDeviceDef *devConf = NULL;
    virDomainDeviceDef *devLive = NULL;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainAttachDeviceFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;
    if (virDomainObjUpdateModificationImpact(vm, &flags) < 0)
        goto endjob;

    /* a user alias must be new to every definition it goes into */
    if (!(devLive = qemuHotplugParse(xml, vm->def)) ||
        qemuHotplugCheckClass(devLive, !!(flags & VIR_DOMAIN_AFFECT_LIVE), true) < 0 ||
        virDomainDeviceValidateAliasForHotplug(vm, devLive, flags) < 0)
        goto endjob;

    /* the persistent change is checked first, committed last */
    if (flags & VIR_DOMAIN_AFFECT_CONFIG) {
        if (!(persDef = virDomainObjCopyPersistentDef(vm, qemu_driver->xmlopt, NULL)) ||
            !(devConf = qemuHotplugParse(xml, persDef)) ||
            qemuHotplugAttachConfig(persDef, devConf) < 0)
            goto endjob;
    }
    if (flags & VIR_DOMAIN_AFFECT_LIVE) {
        if (devLive->type == VIR_DOMAIN_DEVICE_DISK)
            ret = qemuHotplugAttachDiskLive(vm, xml, devLive);
        else
            ret = qemuHotplugAttachNetLive(vm, xml, devLive);
        if (ret < 0)
            goto endjob;
        ret = -1;
        /* a daemon restart keeps the new device */
        qemuDomainObjSaveStatus(qemu_driver, vm);
    }
    if (persDef && qemuHotplugCommitConfig(vm, &persDef) < 0)
        goto endjob;
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
 cleanup:
    virDomainDeviceDefFree(devConf);
    virDomainDeviceDefFree(devLive);
    virDomainObjEndAPI(&vm);
    return ret;
}


static int
qemuDomainAttachDevice(virDomainPtr dom, const char *xml)
{
    return qemuDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE);
}


/* Detach by definition (@xml) or by @alias: one of them is NULL. */
static int
qemuHotplugDetach(virDomainObj *vm, const char *xml, const char *alias,
                  unsigned int flags, bool wait)
{
    g_autoptr(virDomainDef) persDef = NULL;
    virDomainDeviceDef *devConf = NULL;
    virDomainDeviceDef *devLive = NULL;
    int ret = -1;

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        return -1;
    if (virDomainObjUpdateModificationImpact(vm, &flags) < 0)
        goto endjob;

    if (flags & VIR_DOMAIN_AFFECT_CONFIG) {
        if (!(persDef = virDomainObjCopyPersistentDef(vm, qemu_driver->xmlopt, NULL)))
            goto endjob;
        if (alias) {
            virDomainDiskDef *disk = qemuHotplugDiskByAlias(persDef, alias, NULL);
            virDomainNetDef *net = qemuHotplugNetByAlias(persDef, alias, NULL);

            if (!disk && !net) {
                virReportError(VIR_ERR_DEVICE_MISSING,
                               _("no device found with alias %s"), alias);
                goto endjob;
            }
            devConf = g_new0(virDomainDeviceDef, 1);
            devConf->type = disk ? VIR_DOMAIN_DEVICE_DISK : VIR_DOMAIN_DEVICE_NET;
            if (disk)
                devConf->data.disk = disk;
            else
                devConf->data.net = net;
            ret = qemuHotplugDetachConfig(persDef, devConf);
            g_clear_pointer(&devConf, g_free);   /* its device is gone */
            if (ret < 0)
                goto endjob;
            ret = -1;
        } else if (!(devConf = qemuHotplugParse(xml, persDef)) ||
                   qemuHotplugCheckClass(devConf, false, false) < 0 ||
                   qemuHotplugDetachConfig(persDef, devConf) < 0) {
            goto endjob;
        }
    }
    if (flags & VIR_DOMAIN_AFFECT_LIVE) {
        if (alias) {
            virDomainDiskDef *disk = qemuHotplugDiskByAlias(vm->def, alias, NULL);
            virDomainNetDef *net = qemuHotplugNetByAlias(vm->def, alias, NULL);

            if (!disk && !net) {
                virReportError(VIR_ERR_DEVICE_MISSING,
                               _("no device found with alias %s"), alias);
                goto endjob;
            }
            if ((disk && qemuHotplugCheckDiskLive(vm->def, disk) < 0) ||
                (net && qemuHotplugCheckNetLive(net) < 0) ||
                qemuHotplugUnplug(vm, alias, !!disk, wait) < 0)
                goto endjob;
        } else {
            if (!(devLive = qemuHotplugParse(xml, vm->def)) ||
                qemuHotplugCheckClass(devLive, true, false) < 0 ||
                qemuHotplugDetachLive(vm, devLive, wait) < 0)
                goto endjob;
        }
    }
    if (persDef && qemuHotplugCommitConfig(vm, &persDef) < 0)
        goto endjob;
    ret = 0;

 endjob:
    qemuDomainObjEndJob(vm);
    virDomainDeviceDefFree(devConf);
    virDomainDeviceDefFree(devLive);
    return ret;
}


static int
qemuDomainDetachDeviceFlags(virDomainPtr dom, const char *xml, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainDetachDeviceFlagsEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    ret = qemuHotplugDetach(vm, xml, NULL, flags, true);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


static int
qemuDomainDetachDevice(virDomainPtr dom, const char *xml)
{
    return qemuDomainDetachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE);
}


/* Asynchronous, as documented: the device-removed event tells when the
 * guest let go of the device. */
static int
qemuDomainDetachDeviceAlias(virDomainPtr dom, const char *alias, unsigned int flags)
{
    virDomainObj *vm;
    int ret = -1;

    virCheckFlags(VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG, -1);

    if (!(vm = qemuDomainObjFromDomain(dom)))
        return -1;
    if (virDomainDetachDeviceAliasEnsureACL(dom->conn, vm->def, flags) < 0)
        goto cleanup;
    ret = qemuHotplugDetach(vm, NULL, alias, flags, false);

 cleanup:
    virDomainObjEndAPI(&vm);
    return ret;
}


/* ---------------------------------------------------------------------- */
/* Registration                                                           */
/* ---------------------------------------------------------------------- */

void
qemuHotplugRegister(virHypervisorDriver *driver)
{
    driver->domainAttachDevice = qemuDomainAttachDevice;
    driver->domainAttachDeviceFlags = qemuDomainAttachDeviceFlags;
    driver->domainDetachDevice = qemuDomainDetachDevice;
    driver->domainDetachDeviceFlags = qemuDomainDetachDeviceFlags;
    driver->domainDetachDeviceAlias = qemuDomainDetachDeviceAlias;
}
