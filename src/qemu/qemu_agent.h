/*
 * qemu_agent.h: the guest agent channel (qemu-guest-agent), its own job
 * slot and deadline
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"

/* Fills this file's entries of the hypervisor driver table. */
void qemuAgentRegister(virHypervisorDriver *driver);

/* Connects to the guest agent channel of @vm when it has one.  Called by
 * the process layer at start and at reconnect once the monitor is up.
 * A guest without an agent (yet) is not an error.  vm locked. */
int qemuAgentSetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob);

/* Closes the agent channel (process stop).  vm locked. */
void qemuAgentTeardown(virDomainObj *vm);

/* virsh shutdown/reboot --mode agent: asks the guest agent to power off
 * or reboot the guest.  The caller holds no job.  vm locked. */
int qemuAgentShutdown(virDomainObj *vm, bool reboot);
