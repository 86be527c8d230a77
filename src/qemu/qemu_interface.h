/*
 * qemu_interface.h: host side of <interface type='bridge'> and
 * <interface type='network'>: network ports and tap devices
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"

/* vm locked, the start (or incoming migration) job held, vm->def the live
 * definition.  For every <interface> of type network, a port of that
 * network is created through the network driver (recorded in the live
 * definition: portid and <actual>); for every interface that ends on a
 * bridge (type bridge, or a network whose port is a bridge), a tap device
 * is created with the interface's MAC, attached to the bridge, its MTU
 * set, and its name recorded as <target dev='vnetN'/>.
 *
 * @tapfds gets an array of def->nnets file descriptors (-1 where an
 * interface has none), to be handed to QEMU; the caller closes those it
 * did not hand over.  Nothing is done in an unprivileged driver: the
 * command line builder refuses such interfaces there.  On error, what was
 * set up stays recorded in vm->def for qemuInterfaceStopAll to undo. */
int qemuInterfaceStartAll(virDomainObj *vm, bool privileged, int **tapfds);

/* One interface of StartAll, for hot-plug (@net need not be in @def
 * yet): its port and tap; *@tapfd -1 when it has none.  @conn: the network
 * driver's connection, opened when needed (the caller unrefs it).  On
 * error, what was set up stays recorded in @net for qemuInterfaceStopOne. */
int qemuInterfaceStartOne(virDomainDef *def, virDomainNetDef *net,
                          virConnectPtr *conn, int *tapfd);

/* One interface of StopAll, after QEMU let go of its tap (hot-unplug, or
 * a failed hot-plug).  Never fails. */
void qemuInterfaceStopOne(virDomainDef *def, virDomainNetDef *net,
                          virConnectPtr *conn);

/* vm locked, QEMU gone.  Deletes tap devices that survived QEMU and
 * releases the network ports recorded in the live definition.  Never
 * fails (problems are logged); keeps the caller's error. */
void qemuInterfaceStopAll(virDomainObj *vm);

/* vm locked, reconnect job held, QEMU found alive after a daemon restart.
 * Reserves the recorded tap names (no new tap gets one of them), makes
 * the network driver aware of the recorded ports again if it lost them,
 * and re-attaches the taps to their bridges if needed. */
void qemuInterfaceReconnectAll(virDomainObj *vm);
