/*
 * qemu_validate.h: refusing definitions Tandem cannot run
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"
#include "qemu_capabilities.h"

/* Checks against what the emulator offers (virt type, arch, machine). */
int qemuValidateDomainDef(const virDomainDef *def, qemuCaps *qcaps);

/* Refuses device classes Tandem does not implement, naming the element. */
int qemuValidateDomainDevice(const virDomainDeviceDef *dev, const virDomainDef *def);
