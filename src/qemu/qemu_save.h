/*
 * qemu_save.h: save, restore and managed save of running domains, through Tandem's own save image format
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuSaveRegister(virHypervisorDriver *driver);
