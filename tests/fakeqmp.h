/*
 * fakeqmp.h: a scripted fake QMP server for the monitor tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The server runs in its own thread on one end of a socketpair; the other
 * end goes to qemuMonitorOpen.  A test builds a script of steps, starts
 * the server, drives the monitor, then calls fakeQMPFinish to learn whether
 * the script ran as written.  After the last step the server keeps reading
 * and counts (and records) any further commands.
 */
#pragma once

#include "internal.h"

typedef struct _fakeQMP fakeQMP;

fakeQMP *fakeQMPNew(void);
/* The client end of the socketpair, for qemuMonitorOpen (taken over). */
int fakeQMPGetClientFD(fakeQMP *srv);

/* Script steps.  Steps that take a @slot refer to the command received by
 * an EXPECT step: pass the index fakeQMPExpect returned, or -1 for the
 * most recent EXPECT before this step. */
void fakeQMPAddGreeting(fakeQMP *srv);
/* Waits for one command named @execute; @args (JSON, may be NULL = any)
 * must equal its "arguments".  Returns the step's slot. */
int fakeQMPExpect(fakeQMP *srv, const char *execute, const char *args);
/* Replies {"return": @ret, "id": <its id>}; @ret NULL echoes the
 * command's arguments ({} if none). */
void fakeQMPReply(fakeQMP *srv, int slot, const char *ret);
void fakeQMPReplyError(fakeQMP *srv, int slot, const char *klass, const char *desc);
/* {"event": @name, "data": @data, "timestamp": {...}}; @data may be NULL. */
void fakeQMPEvent(fakeQMP *srv, const char *name, const char *data);
void fakeQMPDelay(fakeQMP *srv, unsigned int ms);
/* Bytes sent as they are (no newline added). */
void fakeQMPRaw(fakeQMP *srv, const char *text);
/* @len bytes of @c (no newline). */
void fakeQMPRawRepeat(fakeQMP *srv, char c, size_t len);
/* Fails the script if any command arrives within @ms. */
void fakeQMPExpectNothing(fakeQMP *srv, unsigned int ms);
/* Closes the server end (the monitor sees EOF); ends the script. */
void fakeQMPClose(fakeQMP *srv);
/* The last file descriptor the client passed (SCM_RIGHTS), now the
 * caller's, or -1; *@count: how many were passed in all. */
int fakeQMPTakeReceivedFD(fakeQMP *srv, size_t *count);

int fakeQMPStart(fakeQMP *srv);
/* Waits until every step ran (up to @timeoutMs). 0 if they all did. */
int fakeQMPWaitScript(fakeQMP *srv, unsigned int timeoutMs);
/* Commands received after the script ended. */
size_t fakeQMPExtraCommands(fakeQMP *srv);
/* Commands received in total (script and after). */
size_t fakeQMPCommandsReceived(fakeQMP *srv);
/* Stops the thread; returns 0 if the script passed, -1 and prints why. */
int fakeQMPFinish(fakeQMP *srv);
void fakeQMPFree(fakeQMP *srv);
