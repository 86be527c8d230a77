/*
 * qemu_interface.c: host side of <interface type='bridge'> and
 * <interface type='network'>
 *
 * A network interface becomes a port of the libvirt network it names: the
 * network driver (reached through virGetConnectNetwork, in the daemon's
 * own process) decides what the port is plugged into and records it in
 * the live definition (<source portid=...> and <actual>), which the status
 * file keeps.  Tandem handles ports that end on a host bridge.  An
 * interface on a bridge gets a tap device (libvirt's tap helpers) whose
 * open file descriptor QEMU receives; the device is not persistent, so
 * the kernel removes it when QEMU's descriptor closes, and the stop path
 * deletes one that did not go.  The tap's name is in the live definition
 * (<target dev='vnetN'/>), hence in the status file: a restarted daemon
 * finds it there.
 *
 * Locking: everything here runs with the domain lock held (the live
 * definition is changed in place).  The network driver is called in the
 * daemon's own process and the tap helpers are ioctl/netlink calls: short
 * work that never waits for QEMU.  (With qemu:///embed there is no network
 * driver in the process; virGetConnectNetwork then goes to the system
 * daemon over its socket.)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_interface.h"

#include "datatypes.h"
#include "virerror.h"
#include "virlog.h"
#include "virnetdev.h"
#include "virnetdevtap.h"
#include "network_conf.h"
#include "virfile.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_interface");

/* How an interface is called in messages: its alias, or its MAC. */
static const char *
qemuInterfaceName(const virDomainNetDef *net, char *macbuf)
{
    if (net->info.alias)
        return net->info.alias;
    return virMacAddrFormat(&net->mac, macbuf);
}

static bool
qemuInterfaceUsesTap(const virDomainNetDef *net)
{
    return net->type == VIR_DOMAIN_NET_TYPE_NETWORK ||
           net->type == VIR_DOMAIN_NET_TYPE_BRIDGE;
}

/* What the port the network driver gave us must look like for Tandem:
 * plugged into a bridge, with nothing on it Tandem would have to set up
 * (Open vSwitch profile, VLAN tags, bandwidth, a MAC table libvirt
 * manages). */
static int
qemuInterfaceCheckActual(const virDomainNetDef *net)
{
    char macbuf[VIR_MAC_STRING_BUFLEN];
    const char *name = qemuInterfaceName(net, macbuf);
    virDomainNetType actualType = virDomainNetGetActualType(net);
    const virNetDevVlan *vlan = virDomainNetGetActualVlan(net);

    if (actualType != VIR_DOMAIN_NET_TYPE_BRIDGE &&
        actualType != VIR_DOMAIN_NET_TYPE_NETWORK) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("interface '%s': network '%s' gives it a connection of type '%s'; Tandem supports only networks whose ports are on a bridge"),
                       name, net->data.network.name,
                       virDomainNetTypeToString(actualType));
        return -1;
    }
    if (!virDomainNetGetActualBridgeName(net)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("interface '%s': network '%s' named no bridge"),
                       name, net->data.network.name);
        return -1;
    }
    if (virDomainNetGetActualVirtPortProfile(net) || (vlan && vlan->nTags > 0) ||
        virDomainNetGetActualBandwidth(net)) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("interface '%s': network '%s' asks for a virtual port profile, VLAN tags or bandwidth limits, which Tandem does not set up"),
                       name, net->data.network.name);
        return -1;
    }
    if (virDomainNetGetActualBridgeMACTableManager(net) ==
        VIR_NETWORK_BRIDGE_MAC_TABLE_MANAGER_LIBVIRT) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("interface '%s': network '%s' has macTableManager='libvirt', which Tandem does not support"),
                       name, net->data.network.name);
        return -1;
    }
    return 0;
}

/* A tap device for @net on its bridge; its name goes to net->ifname. */
static int
qemuInterfaceCreateTap(virDomainDef *def, virDomainNetDef *net, int *tapfd)
{
    const char *brname = virDomainNetGetActualBridgeName(net);
    unsigned int flags = VIR_NETDEV_TAP_CREATE_IFUP;
    unsigned int actualMTU = 0;
    char macbuf[VIR_MAC_STRING_BUFLEN];

    if (!brname) {
        virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                       _("interface '%s' names no bridge"),
                       qemuInterfaceName(net, macbuf));
        return -1;
    }
    if (virDomainNetIsVirtioModel(net))
        flags |= VIR_NETDEV_TAP_CREATE_VNET_HDR;

    /* no name asked for: libvirt's generator picks the next vnetN */
    if (virNetDevTapCreateInBridgePort(brname, &net->ifname, &net->mac,
                                       def->uuid, NULL, tapfd, 1,
                                       NULL, NULL, VIR_TRISTATE_BOOL_ABSENT,
                                       NULL, net->mtu, &actualMTU, flags) < 0)
        return -1;
    VIR_DEBUG("interface %s of '%s': tap %s (fd %d) on bridge %s, mtu %u",
              NULLSTR(net->info.alias), def->name, net->ifname, *tapfd,
              brname, actualMTU);
    return 0;
}

int
qemuInterfaceStartOne(virDomainDef *def, virDomainNetDef *net,
                      virConnectPtr *conn, int *tapfd)
{
    *tapfd = -1;
    if (!qemuInterfaceUsesTap(net))
        return 0;

    if (net->type == VIR_DOMAIN_NET_TYPE_NETWORK) {
        if (!*conn && !(*conn = virGetConnectNetwork()))
            return -1;
        if (virDomainNetAllocateActualDevice(*conn, def, net) < 0)
            return -1;
        if (qemuInterfaceCheckActual(net) < 0)
            return -1;
    }
    return qemuInterfaceCreateTap(def, net, tapfd);
}

int
qemuInterfaceStartAll(virDomainObj *vm, bool privileged, int **tapfds)
{
    virDomainDef *def = vm->def;
    virConnectPtr conn = NULL;
    g_autofree int *fds = g_new(int, def->nnets + 1);
    size_t i;

    for (i = 0; i <= def->nnets; i++)
        fds[i] = -1;

    for (i = 0; privileged && i < def->nnets; i++) {
        if (qemuInterfaceStartOne(def, def->nets[i], &conn, &fds[i]) < 0)
            goto error;
    }
    if (conn)
        virObjectUnref(conn);
    *tapfds = g_steal_pointer(&fds);
    return 0;

 error:
    if (conn)
        virObjectUnref(conn);
    for (i = 0; i < def->nnets; i++)
        VIR_FORCE_CLOSE(fds[i]);
    return -1;
}

void
qemuInterfaceStopOne(virDomainDef *def, virDomainNetDef *net, virConnectPtr *conn)
{
    virErrorPtr err = NULL;

    if (!qemuInterfaceUsesTap(net))
        return;

    virErrorPreserveLast(&err);
    /* QEMU is gone (or let go of it): its descriptor closed, the kernel
     * removed the tap.  One that is still there was left behind. */
    if (net->ifname && virNetDevExists(net->ifname) == 1) {
        VIR_DEBUG("deleting tap %s of '%s'", net->ifname, def->name);
        if (virNetDevTapDelete(net->ifname, NULL) < 0)
            VIR_WARN("cannot delete tap device %s of domain '%s': %s",
                     net->ifname, def->name, virGetLastErrorMessage());
    }

    if (net->type == VIR_DOMAIN_NET_TYPE_NETWORK &&
        virUUIDIsValid(net->data.network.portid)) {
        char uuidstr[VIR_UUID_STRING_BUFLEN];

        virUUIDFormat(net->data.network.portid, uuidstr);
        VIR_DEBUG("releasing port %s of network %s for '%s'", uuidstr,
                  net->data.network.name, def->name);
        virResetLastError();
        if (!*conn)
            *conn = virGetConnectNetwork();
        /* its return value says nothing in libvirt 9.0: the error
         * left behind does */
        if (*conn)
            ignore_value(virDomainNetReleaseActualDevice(*conn, def, net));
        if (virGetLastError())
            VIR_WARN("cannot release port %s of network '%s' (domain '%s'): %s",
                     uuidstr, net->data.network.name, def->name,
                     virGetLastErrorMessage());
        memset(net->data.network.portid, 0, sizeof(net->data.network.portid));
    }
    virErrorRestore(&err);
}

void
qemuInterfaceStopAll(virDomainObj *vm)
{
    virDomainDef *def = vm->def;
    virConnectPtr conn = NULL;
    size_t i;

    for (i = 0; i < def->nnets; i++)
        qemuInterfaceStopOne(def, def->nets[i], &conn);
    if (conn)
        virObjectUnref(conn);
}

void
qemuInterfaceReconnectAll(virDomainObj *vm)
{
    virDomainDef *def = vm->def;
    g_autoptr(virConnect) conn = NULL;
    virErrorPtr err = NULL;
    size_t i;

    virErrorPreserveLast(&err);
    for (i = 0; i < def->nnets; i++) {
        virDomainNetDef *net = def->nets[i];

        if (!qemuInterfaceUsesTap(net) || !net->ifname)
            continue;
        virNetDevReserveName(net->ifname);
        if (net->type == VIR_DOMAIN_NET_TYPE_NETWORK && !conn &&
            !(conn = virGetConnectNetwork())) {
            VIR_WARN("cannot reach the network driver for interface %s of '%s': %s",
                     net->ifname, def->name, virGetLastErrorMessage());
            continue;
        }
        virResetLastError();
        virDomainNetNotifyActualDevice(conn, def, net);
        if (virGetLastError())
            VIR_WARN("interface %s of domain '%s': %s", net->ifname, def->name,
                     virGetLastErrorMessage());
    }
    virErrorRestore(&err);
}
