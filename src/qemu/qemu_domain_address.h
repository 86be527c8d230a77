/*
 * qemu_domain_address.h: device addresses, aliases and the implicit
 * devices of the x86 machine types Tandem runs (pc, q35)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"
#include "qemu_capabilities.h"

typedef enum {
    QEMU_DOMAIN_MACHINE_PC,      /* i440fx + PIIX3: conventional PCI bus 0 */
    QEMU_DOMAIN_MACHINE_Q35,     /* q35 + ICH9: pcie.0 and root ports */

    QEMU_DOMAIN_MACHINE_LAST
} qemuDomainMachineFamily;

/* The family of def->os.machine, or -1 (reported) when Tandem does not
 * run that machine type. */
int qemuDomainMachineGetFamily(const virDomainDef *def);

/* Complete @def so that it can be turned into a QEMU command line and
 * keeps a stable guest ABI:
 *  - adds the controllers and devices the machine needs (pci-root or
 *    pcie-root, the built-in IDE/SATA controller, a default USB controller,
 *    a virtio memballoon, PS/2 inputs when there is graphics);
 *  - fills in default models (video, USB, SCSI, interface);
 *  - gives every PCI device without an address a stable slot (on q35 one
 *    pcie-root-port per PCI Express device, added as needed), every virtio
 *    serial port a port number;
 *  - assigns device aliases (libvirt's naming; user 'ua-' aliases kept).
 * Idempotent: running it on its own output changes nothing.
 * Returns 0, or -1 with an error reported. */
int qemuDomainAssignAddresses(virDomainDef *def, qemuCaps *qcaps);
