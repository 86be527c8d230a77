/*
 * qemu_driver.h: the entry point libvirt calls when it loads the module
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

int qemuRegister(void);
