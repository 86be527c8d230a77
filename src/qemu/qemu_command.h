/*
 * qemu_command.h: domain definition -> QEMU command line (QEMU 7.2, x86_64)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"
#include "qemu_capabilities.h"

/* What the process layer decided for this start; none of it is in the
 * domain definition.  Immutable while the command line is built. */
typedef struct _qemuBuildCommandLineOpts qemuBuildCommandLineOpts;
struct _qemuBuildCommandLineOpts {
    const char *libDir;       /* per-domain private directory (agent sockets) */
    const char *stateDir;     /* per-domain runtime directory, or NULL */
    int monitorFd;            /* listening QMP socket passed to QEMU */
    bool privileged;          /* system daemon: tap devices are allowed */
    const char *vncListen;    /* qemu.conf vnc_listen, or NULL: 127.0.0.1 */
    const char *spiceListen;  /* qemu.conf spice_listen, or NULL: 127.0.0.1 */
    bool kvm;                 /* KVM is usable (domain type='kvm' needs it) */
    /* tap file descriptors opened by the process layer, one per
     * <interface>, indexed like def->nets; -1 (or beyond ntapfds) when the
     * interface has none */
    const int *tapfds;
    size_t ntapfds;
    /* hot-plug of one interface: the name its tap's fd was given with
     * getfd (tapfds unused) */
    const char *tapfdName;
};

/* The argv (NULL-terminated, argv[0] = def->emulator) that starts @def
 * paused (-S).  @def must have gone through qemuDomainAssignAddresses.
 * Runtime details the live definition must carry are filled into @def:
 * the path of a unix channel without one (guest agent).  VNC and SPICE
 * ports must already be chosen (the process layer picks them).  Anything
 * the definition asks for that Tandem cannot do fails with
 * VIR_ERR_CONFIG_UNSUPPORTED naming it.  Returns NULL on error. */
char **qemuBuildCommandLine(virDomainDef *def,
                            qemuCaps *qcaps,
                            const qemuBuildCommandLineOpts *opts);

/* @argv as one shell-quoted line, the way `virsh domxml-to-native
 * qemu-argv` prints it (no environment). */
char *qemuBuildCommandLineToString(char **argv);

/* virConnectDomainXMLToNative for format "qemu-argv": the command line of
 * a freshly parsed definition (a throw-away: addresses are assigned and
 * display ports, tap and monitor fds get placeholder values, as libvirt
 * prints them). */
char *qemuBuildNativeCommandLine(virDomainDef *def, qemuCaps *qcaps,
                                 const char *libDir, bool privileged);

/* Hot-plug (qemu_hotplug.c): the JSON objects the command line would give
 * QEMU for @disk of @def, which must carry its alias and address (the
 * disk need not be in @def yet): the blockdev-add arguments of its storage
 * and format nodes (named libvirt-@node-storage and libvirt-@node-format)
 * and the device_add arguments, NULL-terminated.  NULL with an error
 * reported (VIR_ERR_CONFIG_UNSUPPORTED for what Tandem cannot do). */
char **qemuBuildDiskHotplugObjects(virDomainDef *def, virDomainDiskDef *disk,
                                   unsigned int node);

/* As qemuBuildDiskHotplugObjects for an <interface>: the netdev_add
 * arguments (netdev id "host" + alias) and device_add's.  A tap
 * interface's netdev takes the fd QEMU got with getfd as @tapfdName. */
char **qemuBuildNetHotplugObjects(virDomainDef *def, virDomainNetDef *net,
                                  const char *tapfdName);
