/*
 * qemu_agent.h: the guest agent channel (qemu-guest-agent), its own job
 * slot and deadline
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Locking contract (see also docs/THREADS.txt, 2f):
 *  - A qemuAgent is a virObjectLockable and self-locking, like the QMP
 *    monitor: its functions take and release the agent lock themselves.
 *    Callers hold a reference (qemuDomainObjEnterAgent takes one), never
 *    the lock, and never the domain lock while a command waits.
 *  - The per-domain agent state (which agent is open, whether the guest
 *    side of the channel is open, the response timeout) is protected by
 *    the domain object lock of its domain.
 *  - An agent command needs the domain's AGENT job (QUERY or MODIFY); a
 *    thread never holds it together with a sync job.
 *  - The agent's event loop callback never takes a domain lock.
 */
#pragma once

#include "internal.h"
#include "driver.h"
#include "qemu_domain.h"
#include "tdmjson.h"

/* The name of the virtio-serial port qemu-ga listens on. */
#define QEMU_AGENT_CHANNEL_NAME "org.qemu.guest_agent.0"

typedef struct _qemuAgent qemuAgent;

/* Fills this file's entries of the hypervisor driver table. */
void qemuAgentRegister(virHypervisorDriver *driver);

/* Connects to the guest agent channel of @vm when it has one.  Called by
 * the process layer at start and at reconnect once the monitor is up; the
 * caller holds a sync job (or the async job @asyncJob), which this uses
 * for one monitor query (is the guest side of the channel open?).
 * A guest without an agent (yet) is not an error.  vm locked. */
int qemuAgentSetup(virDomainObj *vm, qemuDomainAsyncJob asyncJob);

/* Closes the agent channel (process stop).  Threads waiting for the agent
 * return at once with an error.  vm locked. */
void qemuAgentTeardown(virDomainObj *vm);

/* virsh shutdown/reboot --mode agent: asks the guest agent to power off
 * or reboot the guest.  The caller holds no job.  vm locked. */
int qemuAgentShutdown(virDomainObj *vm, bool reboot);

/* Every QMP event of a running domain (vm locked, event loop thread; never
 * waits).  VSERPORT_CHANGE tells whether the guest opened the agent port;
 * SHUTDOWN and RESET end a pending guest-shutdown.  To be called by the
 * process layer's generic domainEvent callback. */
void qemuAgentNotifyEvent(virDomainObj *vm,
                          const char *event,
                          tdmJSONValue *data);

/* Entering the agent (the equivalent of qemuDomainObjEnterMonitor): the
 * calling thread holds the agent job of @vm, vm is locked and active and
 * the agent connected.  Returns the agent (a reference for the caller)
 * with vm UNLOCKED, or NULL with vm still locked and an error reported. */
qemuAgent *qemuDomainObjEnterAgent(virDomainObj *vm);
/* Re-locks vm and drops the reference.  Returns -1 with an error when the
 * domain died meanwhile. */
int qemuDomainObjExitAgent(virDomainObj *vm, qemuAgent *agent)
    G_GNUC_WARN_UNUSED_RESULT;

/* Timeouts of agent commands, in seconds, as virDomainQemuAgentCommand
 * takes them. */
#define QEMU_AGENT_WAIT_BLOCK    VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK    /* -2 */
#define QEMU_AGENT_WAIT_DEFAULT  VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT  /* -1 */
#define QEMU_AGENT_WAIT_NOWAIT   VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT   /* 0 */

/* Sends @cmd (stolen) to the guest agent and waits for its reply (after a
 * guest-sync-delimited handshake when the stream may hold stale replies).
 * @seconds: QEMU_AGENT_WAIT_* or a positive number.  *@reply is the whole
 * reply object; an "error" reply is reported and returns -1 (*@reply is
 * still set).  With NOWAIT, returns 0 once the command is queued and
 * *@reply is NULL.  Errors: VIR_ERR_AGENT_UNRESPONSIVE when the deadline
 * passes or the channel closes.  Blocks: vm must be unlocked. */
int qemuAgentCommand(qemuAgent *agent,
                     tdmJSONValue **cmd,
                     int seconds,
                     tdmJSONValue **reply);
