/*
 * jobs.pml: the per-domain job model of src/qemu/qemu_domainjob.c as a
 * Promela model, checked exhaustively by spin (tests/model/check-model.sh)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Modelled: the domain object lock; the job condition variable (a
 * broadcast bumps a generation counter; a waiter records it under the
 * lock, releases the lock and sleeps until it changes -- so a lost
 * wake-up shows up as a deadlock); BeginJob/EndJob with the mask check
 * re-done after every wake-up and the immediate refusal; shared queries;
 * BeginAsyncJob/EndAsyncJob; the async job's monitor commands under a
 * nested job (EnterMonitorAsync); EnterMonitor/ExitMonitor releasing the
 * lock around a command that QEMU may never answer until it is killed;
 * abort; the agent job; destroy (kill QEMU first, then wait only for the
 * monitor holders); the reconnect gate (a domain found running when the
 * driver starts: every other thread's Begin*Job waits until its reconnect
 * thread connected the monitor or gave up and stopped the domain).  With -DTIMEOUTS every wait may also expire, as the
 * C code's bounded waits do; without it the protocol must be free of
 * deadlocks on its own.
 *
 * Properties: no invalid end state (deadlock); mutual exclusion of the
 * non-query sync jobs (nested included); no sync job runs that the
 * running async job's mask forbids; the async job's monitor commands run
 * only under its nested job; nobody is inside the monitor while destroy
 * stops the domain; no thread holds a sync job and the agent job; nobody
 * but the reconnect thread enters the monitor before it is connected.
 *
 * The block between BEGIN GENERATED and END GENERATED is the output of
 * `tests/qemujobtest --promela-masks`; check-model.sh fails when they
 * differ, so the model and the C table cannot drift apart.
 */

/* BEGIN GENERATED: tests/qemujobtest --promela-masks (do not edit) */
#define J_NONE 0
#define J_QUERY 1
#define J_DESTROY 2
#define J_SUSPEND 3
#define J_MODIFY 4
#define J_ABORT 5
#define J_MIGRATION_OP 6
#define J_MODIFY_MIGRATION_SAFE 7
#define J_ASYNC_NESTED 8
#define NJOBS 9
#define A_NONE 0
#define A_MIGRATION_OUT 1
#define A_MIGRATION_IN 2
#define A_SAVE 3
#define A_DUMP 4
#define A_SNAPSHOT 5
#define A_START 6
#define A_BACKUP 7
#define NASYNC 8
#define WAITS_FOR_ASYNC 2
inline init_masks() {
    mask[0] = 511;   /* none */
    mask[1] = 238;   /* migration-out */
    mask[2] = 6;   /* migration-in */
    mask[3] = 38;   /* save */
    mask[4] = 46;   /* dump */
    mask[5] = 38;   /* snapshot */
    mask[6] = 6;   /* start */
    mask[7] = 190;   /* backup */
}
/* END GENERATED */

#define BIT(j) (1 << (j))
#define NONQUERY_HELD (held[J_SUSPEND] + held[J_MODIFY] + held[J_ABORT] + \
                       held[J_MIGRATION_OP] + held[J_MODIFY_MIGRATION_SAFE] + \
                       held[J_ASYNC_NESTED])
#define FORBIDDEN_HELD(j) (held[j] > 0 && async != A_NONE && (curmask & BIT(j)) == 0)

int mask[NASYNC];

/* the domain object lock */
bit vmlock;
/* job->cond: the set of waiting processes (bit per _pid); a broadcast
 * empties it.  job->asyncCond is not waited on in the model (the async
 * job polls its abort flag between steps), so it is not modelled. */
byte waitset;

/* the job state, protected by vmlock */
byte syncJob = J_NONE;      /* sync slot */
byte owner;                /* its holder (non-query) */
byte nquery;               /* holders of a shared query */
byte async = A_NONE;
byte asyncOwner;
int curmask = 511;
bool abortReq;
bool destroying;
byte monHolders;           /* threads between Enter/ExitMonitor */
bool agentBusy;
byte agentOwner;
bool domActive = true;     /* virDomainObjIsActive */
bool reconnecting = true;  /* the gate, shut by the driver's start */
byte reconnectOwner;       /* the reconnect thread once it claimed it */
bool monConnected;         /* the reconnect thread connected the monitor */

#define GATED (reconnecting && reconnectOwner != _pid)

/* QEMU: killed by destroy; a command waits for a reply or EOF */
bool qemuAlive = true;

/* instrumentation for the properties */
byte held[NJOBS];
bool nestedInMonitor;      /* the async job is inside the monitor */
bool syncHeldByAgentOwner; /* set if a thread holds sync and agent jobs */

inline lock() {
    atomic { vmlock == 0 -> vmlock = 1 }
}

inline unlock() {
    vmlock = 0
}

#define broadcast() waitset = 0

/* virCondWaitUntil(&job->cond, vm lock, deadline): the caller holds the
 * lock; joining the wait set and releasing the lock are one step, as in
 * pthread_cond_timedwait */
inline wait_cond(expired) {
    atomic {
        waitset = waitset | BIT(_pid);
        unlock()
    };
    if
    :: (waitset & BIT(_pid)) == 0 -> skip   /* broadcast */
#ifdef TIMEOUTS
    :: atomic {
           expired = true;          /* deadline */
           waitset = waitset & ~BIT(_pid)
       }
#endif
    fi;
    lock()
}

/* a monitor command, domain unlocked: QEMU answers, or hangs until killed */
inline monitor_command() {
    if
    :: skip
    :: !qemuAlive -> skip           /* EOF */
    fi
}

/* qemuDomainObjBeginJob for a non-destroy, non-nested job */
inline begin_job(j, got, expired) {
    got = false;
    expired = false;
    do
    :: async != A_NONE && (curmask & BIT(j)) == 0 && (WAITS_FOR_ASYNC & BIT(j)) == 0 ->
        break                       /* refused at once */
    :: (async == A_NONE || (curmask & BIT(j)) != 0) && !destroying && !GATED &&
       (syncJob == J_NONE || (j == J_QUERY && syncJob == J_QUERY)) ->
        if
        :: j == J_QUERY && syncJob == J_QUERY -> nquery++
        :: else -> syncJob = j; owner = _pid; nquery = (j == J_QUERY -> 1 : 0)
        fi;
        held[j]++;
        got = true;
        break
    :: else ->
        if
        :: expired -> break         /* "cannot acquire state change lock" */
        :: else -> wait_cond(expired)
        fi
    od
}

inline end_job(j) {
    if
    :: j == J_QUERY && nquery > 1 -> nquery--
    :: else -> syncJob = J_NONE; owner = 0; nquery = 0
    fi;
    held[j]--;
    broadcast()
}

/* EnterMonitor (lock held): requires a job held by this thread; refuses
 * when the domain is gone or being destroyed.  The caller releases the
 * lock after it. */
inline enter_monitor(j, entered) {
    assert(held[j] > 0 && syncJob == j && (j == J_QUERY || owner == _pid));
    if
    :: domActive && !destroying ->
        assert(monConnected || reconnectOwner == _pid);
        monHolders++;
        nestedInMonitor = (j == J_ASYNC_NESTED);
        entered = true
    :: else -> entered = false      /* "domain is not running" */
    fi
}

/* ExitMonitor: the caller re-took the lock */
inline exit_monitor() {
    nestedInMonitor = false;
    monHolders--;
    if
    :: monHolders == 0 -> broadcast()
    :: else
    fi
}

/* An API thread: query, modify, suspend, abort, migration-op or
 * modify-migration-safe.  Each locked section is one atomic step (nobody
 * else touches the job state without the lock); the monitor command runs
 * unlocked, interleaved with everybody. */
proctype SyncClient() {
    byte j;
    bool got;
    bool expired;
    bool entered;

    if
    :: j = J_QUERY
    :: j = J_MODIFY
    :: j = J_SUSPEND
    :: j = J_ABORT
    :: j = J_MIGRATION_OP
    :: j = J_MODIFY_MIGRATION_SAFE
    fi;
    atomic {
        lock();
        begin_job(j, got, expired);
        if
        :: got ->
            assert(!(async != A_NONE && (curmask & BIT(j)) == 0));
            if
            :: j == J_ABORT && async != A_NONE ->
                abortReq = true     /* qemuDomainObjAbortAsyncJob */
            :: else
            fi;
            enter_monitor(j, entered);
            if
            :: !entered -> end_job(j)
            :: else
            fi
        :: else
        fi;
        unlock()
    };
    if
    :: got && entered ->
        monitor_command();
        atomic {
            lock();
            exit_monitor();
            end_job(j);
            unlock()
        }
    :: else
    fi
}

/* An async job: its monitor commands under the nested job; lets others
 * run between steps; stops on abort. */
proctype AsyncJob() {
    byte a;
    byte n;
    bool got;
    bool expired;
    bool entered;

    if
    :: a = A_MIGRATION_OUT
    :: a = A_MIGRATION_IN
    :: a = A_SAVE
    :: a = A_DUMP
    :: a = A_SNAPSHOT
    :: a = A_START
    :: a = A_BACKUP
    fi;
    atomic {
        lock();
        /* BeginAsyncJob: no async job and no sync job */
        do
        :: async == A_NONE && syncJob == J_NONE && !destroying && !GATED ->
            async = a;
            asyncOwner = _pid;
            curmask = mask[a];
            abortReq = false;
            got = true;
            break
        :: else ->
            if
            :: expired -> break
            :: else -> wait_cond(expired)
            fi
        od;
        unlock()
    };
    if
    :: got ->
        n = 0;
        do
        :: n < 2 ->
            atomic {
                lock();
                if
                :: abortReq -> unlock(); break
                :: else
                fi;
                /* EnterMonitorAsync: the nested job, not subject to the mask */
                got = false;
                expired = false;
                do
                :: syncJob == J_NONE && !destroying && !GATED ->
                    assert(asyncOwner == _pid);
                    syncJob = J_ASYNC_NESTED;
                    owner = _pid;
                    held[J_ASYNC_NESTED]++;
                    got = true;
                    break
                :: else ->
                    if
                    :: expired -> break
                    :: else -> wait_cond(expired)
                    fi
                od;
                entered = false;
                if
                :: got ->
                    enter_monitor(J_ASYNC_NESTED, entered);
                    if
                    :: !entered -> end_job(J_ASYNC_NESTED)
                    :: else
                    fi
                :: else
                fi;
                unlock()
            };
            if
            :: entered ->
                monitor_command();
                atomic {
                    lock();
                    exit_monitor();
                    end_job(J_ASYNC_NESTED);
                    unlock()
                }
            :: else
            fi;
            n++                     /* waiting for progress, unlocked */
        :: else -> break
        od;
        atomic {
            lock();
            async = A_NONE;
            asyncOwner = 0;
            curmask = mask[A_NONE];
            broadcast();
            unlock()
        }
    :: else
    fi
}

/* A guest agent command: its own slot, never with a sync job. */
proctype AgentClient() {
    bool expired;
    bool got;

    atomic {
        lock();
        do
        :: !agentBusy && !GATED ->
            agentBusy = true;
            agentOwner = _pid;
            got = true;
            if
            :: (syncJob != J_NONE && owner == _pid) -> syncHeldByAgentOwner = true
            :: else
            fi;
            break
        :: else ->
            if
            :: expired -> break
            :: else -> wait_cond(expired)
            fi
        od;
        unlock()
    };
    if
    :: got ->
        skip;                       /* the agent command, domain unlocked */
        atomic {
            lock();
            agentBusy = false;
            agentOwner = 0;
            broadcast();
            unlock()
        }
    :: else
    fi
}

/* virDomainDestroy: kill QEMU first, then the destroy job waits only for
 * the monitor holders, never for a stuck job. */
proctype Destroyer() {
    bool expired;
    bool got;

    qemuAlive = false;              /* SIGKILL: the monitor gets EOF */
    atomic {
        lock();
        do
        :: !destroying && monHolders == 0 && !GATED ->
            destroying = true;
            got = true;
            break
        :: else ->
            if
            :: expired -> break
            :: else -> wait_cond(expired)
            fi
        od;
        unlock()
    };
    if
    :: got ->
        atomic {
            lock();
            assert(monHolders == 0);
            domActive = false;      /* qemuProcessStop */
            destroying = false;
            broadcast();
            unlock()
        }
    :: else
    fi
}

/* The reconnect thread of a domain found running: claims the gate, takes
 * its modify job, connects the monitor (QEMU answers, or is dead: then it
 * stops the domain), and opens the gate either way. */
proctype Reconnector() {
    bool got;
    bool expired;
    bool entered;

    atomic {
        lock();
        reconnectOwner = _pid;      /* qemuDomainObjTakeReconnect */
        begin_job(J_MODIFY, got, expired);
        entered = false;
        if
        :: got ->
            enter_monitor(J_MODIFY, entered);
            if
            :: !entered -> end_job(J_MODIFY)
            :: else
            fi
        :: else
        fi;
        if
        :: !entered ->              /* gave up */
            reconnecting = false;
            reconnectOwner = 0;
            broadcast()
        :: else
        fi;
        unlock()
    };
    if
    :: entered ->
        monitor_command();          /* connect, query-status */
        atomic {
            lock();
            exit_monitor();
            if
            :: qemuAlive -> monConnected = true
            :: domActive = false    /* no answer: qemuProcessStop */
            fi;
            reconnecting = false;   /* qemuDomainObjEndReconnect */
            reconnectOwner = 0;
            broadcast();
            end_job(J_MODIFY);
            unlock()
        }
    :: else
    fi
}

/* The invariants, checked in every reachable state. */
active proctype Invariants() {
end_watch:
    atomic {
        (NONQUERY_HELD > 1 ||
         (NONQUERY_HELD == 1 && held[J_QUERY] > 0) ||
         FORBIDDEN_HELD(J_QUERY) || FORBIDDEN_HELD(J_SUSPEND) ||
         FORBIDDEN_HELD(J_MODIFY) || FORBIDDEN_HELD(J_ABORT) ||
         FORBIDDEN_HELD(J_MIGRATION_OP) ||
         FORBIDDEN_HELD(J_MODIFY_MIGRATION_SAFE) ||
         (nestedInMonitor && !(syncJob == J_ASYNC_NESTED && owner == asyncOwner)) ||
         (!domActive && monHolders > 0) ||
         syncHeldByAgentOwner) ->
        assert(false)
    }
}

init {
    atomic {
        init_masks();
        run SyncClient();
        run SyncClient();
        run AsyncJob();
        run AgentClient();
        run Destroyer();
        run Reconnector()
    }
}
