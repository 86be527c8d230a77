/*
 * qemu_security.h: DAC labelling: the files QEMU needs are handed to the
 * user and group QEMU runs as, and given back afterwards
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"
#include "qemu_conf.h"

/* The extended attribute on a labelled file that remembers its owner
 * before the first domain took it, and how many labellings hold it:
 * "UID:GID:REFCOUNT" (decimal).  Shared by every domain and every daemon
 * that uses the file; the owner is restored when the count drops to 0. */
#define QEMU_SECURITY_XATTR "trusted.tandem.dac"

/* Before QEMU of @vm starts (vm locked, start or incoming job held): give
 * the QEMU user the domain's disk images, kernel, initrd, dtb and
 * file-type character device outputs (created when missing).  Does
 * nothing for a session daemon, with dynamic_ownership = 0, with a domain
 * <seclabel type='none'/> or relabel='no' of the 'dac' model, or when QEMU
 * runs as the daemon's own user; items with <seclabel relabel='no'/> are
 * left alone.  On error nothing stays labelled.  Records that the domain
 * is labelled (status). */
int qemuSecuritySetAllLabel(virQEMUDriver *driver, virDomainObj *vm);

/* After QEMU of @vm is gone (vm locked): give every file labelled by
 * qemuSecuritySetAllLabel back to its owner (once no other user is left).
 * Does nothing when the domain was not labelled.  Never fails: problems
 * are logged. */
void qemuSecurityRestoreAllLabel(virQEMUDriver *driver, virDomainObj *vm);

/* A medium inserted into @disk of the running, labelled domain @vm.
 * Returns 0 / -1 (error reported). */
int qemuSecuritySetDiskLabel(virQEMUDriver *driver, virDomainObj *vm,
                             virDomainDiskDef *disk, virStorageSource *src);

/* The medium @src of @disk leaves the running, labelled domain @vm. */
void qemuSecurityRestoreDiskLabel(virQEMUDriver *driver, virDomainObj *vm,
                                  virDomainDiskDef *disk, virStorageSource *src);
