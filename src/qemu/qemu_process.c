/*
 * qemu_process.c: launching QEMU, watching it, stopping it, and finding
 * it again after a daemon restart
 *
 * QEMU runs daemonized (its parent is init, so it outlives the daemon).
 * Tandem learns that it exited from a pidfd, which becomes readable when
 * the process ends whether or not anybody reaped it yet, and from EOF on
 * the monitor; both hand the work to the event pool, where a thread takes
 * the destroy job and tears the domain down.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#ifdef __GLIBC__
# include <malloc.h>
#endif
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "qemu_process.h"
#include "qemu_command.h"
#include "qemu_monitor.h"
#include "qemu_monitor_json.h"
#include "qemu_domainjob.h"
#include "qemu_domain_query.h"
#include "qemu_domain_devices.h"
#include "qemu_hotplug.h"
#include "qemu_agent.h"
#include "qemu_migration.h"
#include "qemu_migration_postcopy.h"
#include "qemu_migration_nbd.h"
#include "qemu_save.h"
#include "qemu_snapshot.h"
#include "qemu_dump.h"
#include "qemu_interface.h"
#include "qemu_security.h"

#include "datatypes.h"
#include "domain_event.h"
#include "vircommand.h"
#include "virerror.h"
#include "virevent.h"
#include "virfile.h"
#include "virlog.h"
#include "virpidfile.h"
#include "virprocess.h"
#include "virtime.h"
#include "virutil.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_process");

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */
/* ---------------------------------------------------------------------- */

static int
qemuProcessPidfdOpen(pid_t pid)
{
#ifdef SYS_pidfd_open
    return syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* State letter of /proc/PID/stat, or 0 when there is no such process. */
static char
qemuProcessProcState(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int) pid);
    g_autofree char *buf = NULL;
    const char *p;

    if (pid <= 0 || !g_file_get_contents(path, &buf, NULL, NULL))
        return 0;
    if (!(p = strrchr(buf, ')')) || p[1] != ' ')
        return 0;
    return p[2];
}

bool
qemuProcessIsAlive(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    char state;

    if (vm->pid <= 0)
        return false;
    if (priv->pidfd >= 0) {
        struct pollfd pfd = { .fd = priv->pidfd, .events = POLLIN };

        return poll(&pfd, 1, 0) == 0;
    }
    state = qemuProcessProcState(vm->pid);
    return state != 0 && state != 'Z' && state != 'X';
}

unsigned long long
qemuProcessGetCPUTime(virDomainObj *vm)
{
    clockid_t clock;
    struct timespec ts;

    /* the process CPU clock: all threads, in ns, one system call (the
     * figure /proc/PID/stat gives in ticks costs an open, fstat, read,
     * close and parsing: 10 % of the daemon's CPU time per GetInfo,
     * measured with perf) */
    if (vm->pid <= 0 ||
        clock_getcpuclockid(vm->pid, &clock) != 0 ||
        clock_gettime(clock, &ts) < 0)
        return 0;
    return (unsigned long long) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The last lines of QEMU's log, for error messages. */
static char *
qemuProcessLogTail(qemuDomainObjPrivate *priv, off_t since)
{
    g_autofree char *buf = NULL;
    g_auto(GStrv) lines = NULL;
    GString *out;
    int fd;
    size_t n;
    ssize_t got;
    struct stat sb;
    size_t i;

    if (!priv->logPath || (fd = open(priv->logPath, O_RDONLY | O_CLOEXEC)) < 0)
        return NULL;
    if (fstat(fd, &sb) < 0 || sb.st_size <= since) {
        VIR_FORCE_CLOSE(fd);
        return NULL;
    }
    n = MIN(sb.st_size - since, 4096);
    buf = g_new0(char, n + 1);
    got = pread(fd, buf, n, sb.st_size - n);
    VIR_FORCE_CLOSE(fd);
    if (got <= 0)
        return NULL;
    buf[got] = '\0';

    lines = g_strsplit(buf, "\n", -1);
    out = g_string_new(NULL);
    n = g_strv_length(lines);
    for (i = n > 6 ? n - 6 : 0; i < n; i++) {
        g_strstrip(lines[i]);
        if (!*lines[i])
            continue;
        if (out->len)
            g_string_append(out, " ");
        g_string_append(out, lines[i]);
    }
    if (!out->len) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}

char *
qemuProcessGetLogTail(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    return qemuProcessLogTail(priv, priv->logStart);
}

/* Replaces the pending error with one naming QEMU's own complaint. */
static void
qemuProcessReportStartError(virDomainObj *vm, off_t logStart)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *tail = qemuProcessLogTail(priv, logStart);
    g_autofree char *cause = g_strdup(virGetLastErrorMessage());

    if (!tail)
        return;
    virReportError(VIR_ERR_OPERATION_FAILED,
                   _("QEMU of domain '%s' failed to start: %s (%s)"),
                   vm->def->name, tail, cause);
}

/* ---------------------------------------------------------------------- */
/* The event pool: work that needs a job, off the event loop thread       */
/* ---------------------------------------------------------------------- */

typedef enum {
    QEMU_PROCESS_EVENT_EXIT,         /* QEMU is gone (EOF, pidfd) */
    QEMU_PROCESS_EVENT_FAKE_REBOOT,  /* powered down for a reboot: reset + cont */
    QEMU_PROCESS_EVENT_AUTODESTROY,  /* the connection that started it closed */
    QEMU_PROCESS_EVENT_MIGRATION_CLIENT_GONE, /* the connection driving its
                                               * migration closed */
    QEMU_PROCESS_EVENT_TRIM_MEMORY,  /* no domain: give freed heap back */
    QEMU_PROCESS_EVENT_IO_ERROR,     /* BLOCK_IO_ERROR: which disk (query-block) */
    QEMU_PROCESS_EVENT_DEVICE_DELETED, /* DEVICE_DELETED nobody waited for:
                                        * finish the removal (qemu_hotplug.c) */
} qemuProcessEventType;

typedef struct _qemuProcessEvent qemuProcessEvent;
struct _qemuProcessEvent {
    qemuProcessEventType type;
    virDomainObj *vm;    /* a reference */
    int id;              /* vm->def->id when it happened: stale events are dropped */
    unsigned long long asyncStarted; /* MIGRATION_CLIENT_GONE: the migration
                                      * job it is about (job.asyncStarted) */
    tdmJSONValue *data;  /* IO_ERROR: a copy of the event's data;
                          * DEVICE_DELETED: the alias (a string) */
};

/* vm locked.  Never waits: callable from the event loop thread. */
static void
qemuProcessEventSubmit(virQEMUDriver *driver, virDomainObj *vm,
                       qemuProcessEventType type)
{
    qemuProcessEvent *ev = g_new0(qemuProcessEvent, 1);

    ev->type = type;
    ev->vm = virObjectRef(vm);
    ev->id = vm->def->id;
    ev->asyncStarted = QEMU_DOMAIN_PRIVATE(vm)->job.asyncStarted;
    g_thread_pool_push(driver->workerPool, ev, NULL);
}

/* As qemuProcessEventSubmit, with a copy of the QMP event's @data. */
static void
qemuProcessEventSubmitData(virQEMUDriver *driver, virDomainObj *vm,
                           qemuProcessEventType type, tdmJSONValue *data)
{
    qemuProcessEvent *ev = g_new0(qemuProcessEvent, 1);

    ev->type = type;
    ev->vm = virObjectRef(vm);
    ev->id = vm->def->id;
    ev->data = tdmJSONValueCopy(data);
    g_thread_pool_push(driver->workerPool, ev, NULL);
}

static void qemuProcessAutoDestroyOne(virQEMUDriver *driver, virDomainObj *vm, int id);

/* vm locked, no job */
static void
qemuProcessHandleExit(virQEMUDriver *driver, virDomainObj *vm, int id)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    virDomainShutoffReason reason;
    int eventDetail;

    if (!virDomainObjIsActive(vm) || vm->def->id != id || priv->beingDestroyed)
        return;

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_DESTROY) < 0) {
        VIR_WARN("Cannot tear down domain '%s' after QEMU exited: %s",
                 vm->def->name, virGetLastErrorMessage());
        return;
    }
    if (!virDomainObjIsActive(vm) || vm->def->id != id || priv->beingDestroyed)
        goto endjob;

    if (priv->gotShutdown) {
        reason = VIR_DOMAIN_SHUTOFF_SHUTDOWN;
        eventDetail = VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN;
    } else if (priv->job.asyncJob == QEMU_ASYNC_JOB_START ||
               priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN) {
        /* it never ran here: a start, restore or incoming migration
         * failed, whichever thread notices first */
        reason = VIR_DOMAIN_SHUTOFF_FAILED;
        eventDetail = VIR_DOMAIN_EVENT_STOPPED_FAILED;
    } else {
        reason = VIR_DOMAIN_SHUTOFF_CRASHED;
        eventDetail = VIR_DOMAIN_EVENT_STOPPED_FAILED;
    }
    VIR_INFO("QEMU of domain '%s' (pid %d) exited: %s", vm->def->name,
             (int) vm->pid, priv->gotShutdown ? "shut down" : "unexpectedly");
    qemuProcessStop(driver, vm, reason);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                              VIR_DOMAIN_EVENT_STOPPED, eventDetail));
    /* an incoming storage migration cannot finish any more: the images
     * its Prepare created go now (a transient domain goes below) */
    if (priv->job.asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN)
        qemuMigrationDstNBDRemoveCreated(vm);

 endjob:
    qemuDomainObjEndJob(vm);
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
}

/* vm locked, no job */
static void
qemuProcessHandleFakeReboot(virQEMUDriver *driver, virDomainObj *vm, int id)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    int rc;

    if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        return;
    if (!virDomainObjIsActive(vm) || vm->def->id != id)
        goto endjob;

    if (qemuDomainObjEnterMonitor(vm) < 0)
        goto endjob;
    rc = qemuMonitorJSONSystemReset(priv->mon);
    if (rc == 0)
        rc = qemuMonitorJSONStartCPUs(priv->mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        VIR_WARN("Reboot of domain '%s' failed: %s; destroying it",
                 vm->def->name, virGetLastErrorMessage());
        qemuProcessKill(driver, vm, QEMU_PROCESS_KILL_FORCE | QEMU_PROCESS_KILL_NOWAIT);
        goto endjob;
    }
    priv->gotShutdown = false;
    priv->fakeReboot = false;
    virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                              VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED));
    qemuDomainObjSaveStatus(driver, vm);

 endjob:
    qemuDomainObjEndJob(vm);
}

/* Memory given back after teardown.  What a stopped domain freed (its
 * definitions, private data, monitor buffers, event and RPC traffic)
 * stays in glibc's malloc arenas, one per thread that allocated (RPC
 * workers, this pool), which give little back by themselves: measured,
 * after 20 domains started and destroyed, 0.8 of the daemon's 1.5 MiB
 * growth came back only with malloc_trim(0).  So every stop arms a
 * one-shot timer (if not armed); QEMU_PROCESS_TRIM_DELAY_MS later, when
 * the stopping APIs have dropped their references and a burst of stops
 * is over, the timer queues one QEMU_PROCESS_EVENT_TRIM_MEMORY to this
 * pool (malloc_trim walks every arena: not for the event loop thread).
 * qemuProcessTrimTimer: under qemuProcessTrimLock, a leaf lock (taken
 * with or without a domain lock, nothing taken under it but the event
 * loop's own). */
#define QEMU_PROCESS_TRIM_DELAY_MS 1000
G_LOCK_DEFINE_STATIC(qemuProcessTrimLock);
static int qemuProcessTrimTimer = -1;

static void
qemuProcessTrimTimerFired(int timer, void *opaque)
{
    virQEMUDriver *driver = opaque;
    qemuProcessEvent *ev;

    G_LOCK(qemuProcessTrimLock);
    if (timer != qemuProcessTrimTimer) {
        G_UNLOCK(qemuProcessTrimLock);
        return;
    }
    virEventRemoveTimeout(timer);
    qemuProcessTrimTimer = -1;
    G_UNLOCK(qemuProcessTrimLock);

    ev = g_new0(qemuProcessEvent, 1);
    ev->type = QEMU_PROCESS_EVENT_TRIM_MEMORY;
    g_thread_pool_push(driver->workerPool, ev, NULL);
}

/* Any thread, any locks.  Never waits. */
static void
qemuProcessScheduleTrim(virQEMUDriver *driver)
{
#ifdef __GLIBC__
    G_LOCK(qemuProcessTrimLock);
    if (qemuProcessTrimTimer < 0 && driver->workerPool)
        qemuProcessTrimTimer = virEventAddTimeout(QEMU_PROCESS_TRIM_DELAY_MS,
                                                  qemuProcessTrimTimerFired,
                                                  driver, NULL);
    G_UNLOCK(qemuProcessTrimLock);
#endif
}

static void
qemuProcessEventRun(gpointer data, gpointer opaque)
{
    qemuProcessEvent *ev = data;
    virQEMUDriver *driver = opaque;
    virDomainObj *vm = ev->vm;

    if (ev->type == QEMU_PROCESS_EVENT_TRIM_MEMORY) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        g_free(ev);
        return;
    }

    virObjectLock(vm);
    switch (ev->type) {
    case QEMU_PROCESS_EVENT_EXIT:
        qemuProcessHandleExit(driver, vm, ev->id);
        break;
    case QEMU_PROCESS_EVENT_FAKE_REBOOT:
        qemuProcessHandleFakeReboot(driver, vm, ev->id);
        break;
    case QEMU_PROCESS_EVENT_AUTODESTROY:
        qemuProcessAutoDestroyOne(driver, vm, ev->id);
        break;
    case QEMU_PROCESS_EVENT_MIGRATION_CLIENT_GONE:
        qemuMigrationClientGone(driver, vm, ev->asyncStarted);
        break;
    case QEMU_PROCESS_EVENT_IO_ERROR:
        qemuDomainDevicesHandleIOError(vm, ev->id, ev->data);
        break;
    case QEMU_PROCESS_EVENT_DEVICE_DELETED:
        qemuHotplugDeviceDeletedWork(vm, ev->id, tdmJSONValueGetString(ev->data));
        break;
    case QEMU_PROCESS_EVENT_TRIM_MEMORY:
        break;
    }
    virDomainObjEndAPI(&vm);
    tdmJSONValueFree(ev->data);
    g_free(ev);
}

int
qemuProcessEventPoolInit(virQEMUDriver *driver)
{
    g_autoptr(GError) err = NULL;

    driver->workerPool = g_thread_pool_new(qemuProcessEventRun, driver, 4,
                                           FALSE, &err);
    if (!driver->workerPool) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot create the event worker pool: %s"), err->message);
        return -1;
    }
    return 0;
}

void
qemuProcessEventPoolFree(virQEMUDriver *driver)
{
    G_LOCK(qemuProcessTrimLock);
    if (qemuProcessTrimTimer >= 0)
        virEventRemoveTimeout(qemuProcessTrimTimer);
    qemuProcessTrimTimer = -1;
    G_UNLOCK(qemuProcessTrimLock);
    if (driver->workerPool)
        g_thread_pool_free(driver->workerPool, FALSE, TRUE);
    driver->workerPool = NULL;
}

/* ---------------------------------------------------------------------- */
/* Monitor callbacks (event loop thread; take the domain lock themselves, */
/* never wait on the monitor)                                             */
/* ---------------------------------------------------------------------- */

static void
qemuProcessMonitorDestroy(qemuMonitor *mon G_GNUC_UNUSED, void *opaque)
{
    virObjectUnref(opaque);
}

static void
qemuProcessMonitorEof(qemuMonitor *mon G_GNUC_UNUSED, void *opaque)
{
    virDomainObj *vm = opaque;

    virObjectLock(vm);
    VIR_DEBUG("monitor of domain '%s' closed", vm->def->name);
    if (virDomainObjIsActive(vm))
        qemuProcessEventSubmit(qemu_driver, vm, QEMU_PROCESS_EVENT_EXIT);
    qemuDomainObjSignalAsyncJob(vm);
    virObjectUnlock(vm);
}

static int
qemuProcessPausedEventDetail(int reason)
{
    switch ((virDomainPausedReason) reason) {
    case VIR_DOMAIN_PAUSED_MIGRATION:
        return VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED;
    case VIR_DOMAIN_PAUSED_IOERROR:
        return VIR_DOMAIN_EVENT_SUSPENDED_IOERROR;
    case VIR_DOMAIN_PAUSED_WATCHDOG:
        return VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG;
    case VIR_DOMAIN_PAUSED_FROM_SNAPSHOT:
    case VIR_DOMAIN_PAUSED_SNAPSHOT:
        return VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT;
    case VIR_DOMAIN_PAUSED_POSTCOPY:
        return VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY;
    case VIR_DOMAIN_PAUSED_POSTCOPY_FAILED:
        return VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED;
    default:
        return VIR_DOMAIN_EVENT_SUSPENDED_PAUSED;
    }
}

static void
qemuProcessMonitorStop(qemuMonitor *mon G_GNUC_UNUSED, void *opaque)
{
    virDomainObj *vm = opaque;
    qemuDomainObjPrivate *priv;
    int reason;

    virObjectLock(vm);
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (virDomainObjIsActive(vm) &&
        virDomainObjGetState(vm, NULL) == VIR_DOMAIN_RUNNING &&
        !priv->gotShutdown) {
        reason = priv->pausedReason ? priv->pausedReason : VIR_DOMAIN_PAUSED_UNKNOWN;
        priv->pausedReason = 0;
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, reason);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                  VIR_DOMAIN_EVENT_SUSPENDED,
                                  qemuProcessPausedEventDetail(reason)));
        qemuDomainObjSaveStatus(qemu_driver, vm);
    }
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorResume(qemuMonitor *mon G_GNUC_UNUSED, void *opaque)
{
    virDomainObj *vm = opaque;
    int reason;

    virObjectLock(vm);
    /* the first RESUME of a start is the start's business */
    if (virDomainObjIsActive(vm) &&
        virDomainObjGetState(vm, &reason) == VIR_DOMAIN_PAUSED &&
        reason != VIR_DOMAIN_PAUSED_STARTING_UP) {
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_UNPAUSED);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                  VIR_DOMAIN_EVENT_RESUMED,
                                  VIR_DOMAIN_EVENT_RESUMED_UNPAUSED));
        qemuDomainObjSaveStatus(qemu_driver, vm);
    }
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorShutdown(qemuMonitor *mon G_GNUC_UNUSED,
                           bool guestInitiated,
                           const char *reason G_GNUC_UNUSED,
                           void *opaque)
{
    virDomainObj *vm = opaque;
    qemuDomainObjPrivate *priv;

    virObjectLock(vm);
    priv = QEMU_DOMAIN_PRIVATE(vm);
    /* a destroy's SIGTERM makes QEMU report a host shutdown: not news */
    if (!virDomainObjIsActive(vm) || priv->beingDestroyed)
        goto cleanup;
    /* the SIGTERM that ends QEMU after a guest shutdown comes back as a
     * second (host) SHUTDOWN: the shutdown is already known */
    if (priv->gotShutdown) {
        VIR_DEBUG("repeated SHUTDOWN of '%s' ignored", vm->def->name);
        goto cleanup;
    }

    priv->gotShutdown = true;
    virDomainObjSetState(vm, VIR_DOMAIN_SHUTDOWN, VIR_DOMAIN_SHUTDOWN_UNKNOWN);
    qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                              VIR_DOMAIN_EVENT_SHUTDOWN,
                              guestInitiated ? VIR_DOMAIN_EVENT_SHUTDOWN_GUEST
                                             : VIR_DOMAIN_EVENT_SHUTDOWN_HOST));
    qemuDomainObjSaveStatus(qemu_driver, vm);

    /* QEMU runs with -no-shutdown: it waits for us to end it, or to
     * reset it when this shutdown was a reboot in disguise. */
    if (priv->fakeReboot) {
        qemuProcessEventSubmit(qemu_driver, vm, QEMU_PROCESS_EVENT_FAKE_REBOOT);
    } else if (vm->pid > 0) {
        VIR_DEBUG("guest '%s' shut down, ending QEMU (pid %d)",
                  vm->def->name, (int) vm->pid);
        kill(vm->pid, SIGTERM);
    }

 cleanup:
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorReset(qemuMonitor *mon G_GNUC_UNUSED, void *opaque)
{
    virDomainObj *vm = opaque;

    virObjectLock(vm);
    if (virDomainObjIsActive(vm))
        qemuDriverQueueEvent(qemu_driver, virDomainEventRebootNewFromObj(vm));
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorGuestPanic(qemuMonitor *mon G_GNUC_UNUSED,
                             const char *action G_GNUC_UNUSED,
                             tdmJSONValue *info G_GNUC_UNUSED,
                             void *opaque)
{
    virDomainObj *vm = opaque;

    virObjectLock(vm);
    if (virDomainObjIsActive(vm)) {
        virDomainObjSetState(vm, VIR_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED_PANICKED);
        qemuDriverQueueEvent(qemu_driver, virDomainEventLifecycleNewFromObj(vm,
                                  VIR_DOMAIN_EVENT_CRASHED,
                                  VIR_DOMAIN_EVENT_CRASHED_PANICKED));
        if (vm->def->onCrash == VIR_DOMAIN_LIFECYCLE_ACTION_DESTROY && vm->pid > 0)
            kill(vm->pid, SIGTERM);
        qemuDomainObjSaveStatus(qemu_driver, vm);
    }
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorDeviceDeleted(qemuMonitor *mon G_GNUC_UNUSED,
                                const char *devAlias,
                                void *opaque)
{
    virDomainObj *vm = opaque;

    virObjectLock(vm);
    if (virDomainObjIsActive(vm)) {
        switch (qemuHotplugDeviceDeleted(vm, devAlias)) {
        case QEMU_HOTPLUG_DELETED_WAITER:
            break;
        case QEMU_HOTPLUG_DELETED_DEFERRED: {
            g_autoptr(tdmJSONValue) alias = tdmJSONValueNewString(devAlias);

            qemuProcessEventSubmitData(qemu_driver, vm, QEMU_PROCESS_EVENT_DEVICE_DELETED, alias);
            break;
        }
        case QEMU_HOTPLUG_DELETED_OTHER:
            qemuDriverQueueEvent(qemu_driver,
                                  virDomainEventDeviceRemovedNewFromObj(vm, devAlias));
            break;
        }
    }
    virObjectUnlock(vm);
}

/* QEMU's watchdog actions, as the watchdog event reports them */
static const char *const qemuProcessWatchdogActions[] = {
    [VIR_DOMAIN_EVENT_WATCHDOG_NONE] = "none",
    [VIR_DOMAIN_EVENT_WATCHDOG_PAUSE] = "pause",
    [VIR_DOMAIN_EVENT_WATCHDOG_RESET] = "reset",
    [VIR_DOMAIN_EVENT_WATCHDOG_POWEROFF] = "poweroff",
    [VIR_DOMAIN_EVENT_WATCHDOG_SHUTDOWN] = "shutdown",
    [VIR_DOMAIN_EVENT_WATCHDOG_DEBUG] = "debug",
    [VIR_DOMAIN_EVENT_WATCHDOG_INJECTNMI] = "inject-nmi",
};
G_STATIC_ASSERT(G_N_ELEMENTS(qemuProcessWatchdogActions) ==
                VIR_DOMAIN_EVENT_WATCHDOG_LAST);

/* WATCHDOG {"action": ...}: the watchdog event (vm locked).  QEMU carries
 * the action out itself; a pause arrives as its own STOP event. */
static void
qemuProcessHandleWatchdog(virDomainObj *vm, tdmJSONValue *data)
{
    const char *action = data ? tdmJSONValueObjectGetString(data, "action") : NULL;
    size_t i;

    for (i = 0; action && i < G_N_ELEMENTS(qemuProcessWatchdogActions); i++) {
        if (STREQ(action, qemuProcessWatchdogActions[i])) {
            VIR_INFO("watchdog of '%s' fired: %s", vm->def->name, action);
            qemuDriverQueueEvent(qemu_driver,
                                  virDomainEventWatchdogNewFromObj(vm, i));
            return;
        }
    }
    VIR_WARN("watchdog event of '%s' with unknown action '%s'",
             vm->def->name, NULLSTR(action));
}

/* Every event: served to qemu-monitor-event listeners, and the balloon
 * size kept current. */
static void
qemuProcessMonitorDomainEvent(qemuMonitor *mon G_GNUC_UNUSED,
                              const char *event,
                              tdmJSONValue *data,
                              long long seconds,
                              unsigned int micros,
                              void *opaque)
{
    virDomainObj *vm = opaque;
    g_autofree char *details = NULL;

    virObjectLock(vm);
    if (!virDomainObjIsActive(vm))
        goto cleanup;

    qemuDomainDevicesHandleEvent(vm, event, data);
    /* the guest agent channel opening/closing; shutdown ends agent waits */
    qemuAgentNotifyEvent(vm, event, data);

    if (STREQ(event, "WATCHDOG"))
        qemuProcessHandleWatchdog(vm, data);

    /* BLOCK_IO_ERROR {"action": "stop"} comes before the STOP of the
     * guest it pauses: that STOP records the I/O error as its reason,
     * and a migration with VIR_MIGRATE_ABORT_ON_ERROR notices it */
    if (STREQ(event, "BLOCK_IO_ERROR") && data &&
        STREQ_NULLABLE(tdmJSONValueObjectGetString(data, "action"), "stop") &&
        virDomainObjGetState(vm, NULL) == VIR_DOMAIN_RUNNING) {
        VIR_INFO("I/O error pauses '%s'", vm->def->name);
        QEMU_DOMAIN_PRIVATE(vm)->pausedReason = VIR_DOMAIN_PAUSED_IOERROR;
        qemuDomainObjSignalAsyncJob(vm);
    }
    /* the domain events name the disk: found off the event loop */
    if (STREQ(event, "BLOCK_IO_ERROR") && data)
        qemuProcessEventSubmitData(qemu_driver, vm, QEMU_PROCESS_EVENT_IO_ERROR, data);

    if (STREQ(event, "BALLOON_CHANGE") && data) {
        unsigned long long actual;

        if (tdmJSONValueObjectGetNumberULLong(data, "actual", &actual) == 0)
            QEMU_DOMAIN_PRIVATE(vm)->balloonCur = actual / 1024;
    }
    /* the dump and snapshot jobs wait for these */
    if (STREQ(event, "DUMP_COMPLETED") || STREQ(event, "JOB_STATUS_CHANGE"))
        qemuSnapshotHandleEvent(vm, event, data);
    /* a storage migration waits for its disk mirrors */
    if (STRPREFIX(event, "BLOCK_JOB_") || STREQ(event, "JOB_STATUS_CHANGE"))
        qemuMigrationNBDHandleEvent(vm);

    if (data)
        details = tdmJSONValueToString(data, false);
    qemuDriverQueueEvent(qemu_driver,
                          virDomainQemuMonitorEventNew(vm->def->id, vm->def->name,
                                                       vm->def->uuid, event,
                                                       seconds, micros, details));
 cleanup:
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorMigrationStatus(qemuMonitor *mon G_GNUC_UNUSED,
                                  int status,
                                  void *opaque)
{
    virDomainObj *vm = opaque;

    virObjectLock(vm);
    VIR_DEBUG("migration of '%s': %s", vm->def->name,
              NULLSTR(qemuMonitorMigrationStatusTypeToString(status)));
    QEMU_DOMAIN_PRIVATE(vm)->migrationStatus = status;
    qemuMigrationPostcopyHandleStatus(qemu_driver, vm, status);
    qemuDomainObjSignalAsyncJob(vm);
    virObjectUnlock(vm);
}

static void
qemuProcessMonitorMigrationPass(qemuMonitor *mon G_GNUC_UNUSED,
                                int pass,
                                void *opaque)
{
    virDomainObj *vm = opaque;

    virObjectLock(vm);
    QEMU_DOMAIN_PRIVATE(vm)->job.progress.memIteration = pass;
    /* virsh migrate --postcopy-after-precopy switches on the second one */
    if (virDomainObjIsActive(vm))
        qemuDriverQueueEvent(qemu_driver,
                              virDomainEventMigrationIterationNewFromObj(vm, pass));
    qemuDomainObjSignalAsyncJob(vm);
    virObjectUnlock(vm);
}

static qemuMonitorCallbacks qemuProcessMonitorCallbacks = {
    .domainMigrationStatus = qemuProcessMonitorMigrationStatus,
    .domainMigrationPass = qemuProcessMonitorMigrationPass,
    .destroy = qemuProcessMonitorDestroy,
    .eofNotify = qemuProcessMonitorEof,
    .domainEvent = qemuProcessMonitorDomainEvent,
    .domainStop = qemuProcessMonitorStop,
    .domainResume = qemuProcessMonitorResume,
    .domainShutdown = qemuProcessMonitorShutdown,
    .domainReset = qemuProcessMonitorReset,
    .domainDeviceDeleted = qemuProcessMonitorDeviceDeleted,
    .domainGuestPanic = qemuProcessMonitorGuestPanic,
};

/* ---------------------------------------------------------------------- */
/* Watching the process                                                   */
/* ---------------------------------------------------------------------- */

static void
qemuProcessPidfdEvent(int watch, int fd G_GNUC_UNUSED, int events G_GNUC_UNUSED,
                      void *opaque)
{
    virDomainObj *vm = opaque;
    qemuDomainObjPrivate *priv;

    virObjectLock(vm);
    priv = QEMU_DOMAIN_PRIVATE(vm);
    if (priv->pidfdWatch == watch) {
        virEventRemoveHandle(watch);
        priv->pidfdWatch = -1;
        VIR_DEBUG("QEMU of domain '%s' (pid %d) exited", vm->def->name, (int) vm->pid);
        if (virDomainObjIsActive(vm))
            qemuProcessEventSubmit(qemu_driver, vm, QEMU_PROCESS_EVENT_EXIT);
        qemuDomainObjSignalAsyncJob(vm);
    }
    virObjectUnlock(vm);
}

/* vm locked.  Opens a pidfd for vm->pid and watches it. */
static int
qemuProcessWatchPid(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if ((priv->pidfd = qemuProcessPidfdOpen(vm->pid)) < 0) {
        virReportSystemError(errno, _("cannot watch QEMU process %d"), (int) vm->pid);
        return -1;
    }
    priv->pidfdWatch = virEventAddHandle(priv->pidfd, VIR_EVENT_HANDLE_READABLE,
                                         qemuProcessPidfdEvent,
                                         virObjectRef(vm), virObjectUnref);
    if (priv->pidfdWatch < 0) {
        virObjectUnref(vm);
        VIR_FORCE_CLOSE(priv->pidfd);
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot watch the QEMU process: no event loop"));
        return -1;
    }
    return 0;
}

static void
qemuProcessUnwatchPid(virDomainObj *vm)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    if (priv->pidfdWatch >= 0)
        virEventRemoveHandle(priv->pidfdWatch);
    priv->pidfdWatch = -1;
    VIR_FORCE_CLOSE(priv->pidfd);
}

/* Waits (vm unlocked) until QEMU exited or @ms passed.  true if it exited. */
static bool
qemuProcessWaitExit(virDomainObj *vm, unsigned long long ms)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    unsigned long long deadline = g_get_monotonic_time() / 1000 + ms;
    int fd = -1;
    pid_t pid = vm->pid;
    bool exited = false;

    if (priv->pidfd >= 0)
        fd = dup(priv->pidfd);

    virObjectUnlock(vm);
    for (;;) {
        long long left = (long long) deadline - g_get_monotonic_time() / 1000;
        char state;

        if (fd >= 0) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };

            if (poll(&pfd, 1, left > 0 ? MIN(left, 100) : 0) > 0) {
                exited = true;
                break;
            }
        } else {
            state = qemuProcessProcState(pid);
            if (state == 0 || state == 'Z' || state == 'X') {
                exited = true;
                break;
            }
            g_usleep(10 * 1000);
        }
        if (left <= 0)
            break;
    }
    VIR_FORCE_CLOSE(fd);
    virObjectLock(vm);
    return exited;
}

int
qemuProcessKill(virQEMUDriver *driver, virDomainObj *vm, unsigned int flags)
{
    unsigned long long grace = driver->config->destroyTimeout * 1000ULL;
    char state;

    if (vm->pid <= 0 || !qemuProcessIsAlive(vm))
        return 0;

    /* A stopped or traced QEMU (SIGSTOP, a debugger) cannot act on SIGTERM
     * before someone continues it: waiting the grace period would only
     * delay a forced kill, so go straight to SIGKILL. */
    state = qemuProcessProcState(vm->pid);
    if ((flags & QEMU_PROCESS_KILL_FORCE) && (state == 'T' || state == 't'))
        grace = 0;

    VIR_DEBUG("killing QEMU of '%s' (pid %d, state '%c') flags=0x%x", vm->def->name,
              (int) vm->pid, state ? state : '?', flags);
    if (kill(vm->pid, (flags & QEMU_PROCESS_KILL_FORCE) && grace == 0 ?
             SIGKILL : SIGTERM) < 0 && errno != ESRCH) {
        virReportSystemError(errno, _("failed to kill QEMU process %d"), (int) vm->pid);
        return -1;
    }
    if (flags & QEMU_PROCESS_KILL_NOWAIT)
        return 0;
    if (qemuProcessWaitExit(vm, grace))
        return 0;
    if (!(flags & QEMU_PROCESS_KILL_FORCE)) {
        virReportError(VIR_ERR_OPERATION_TIMEOUT,
                       _("QEMU of domain '%s' (pid %d) did not exit within %u s after SIGTERM"),
                       vm->def->name, (int) vm->pid, driver->config->destroyTimeout);
        return -1;
    }
    if (vm->pid > 0 && kill(vm->pid, SIGKILL) < 0 && errno != ESRCH) {
        virReportSystemError(errno, _("failed to kill QEMU process %d"), (int) vm->pid);
        return -1;
    }
    if (vm->pid > 0 && !qemuProcessWaitExit(vm, 5000)) {
        virReportError(VIR_ERR_OPERATION_FAILED,
                       _("QEMU of domain '%s' (pid %d) survived SIGKILL"),
                       vm->def->name, (int) vm->pid);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Stop                                                                   */
/* ---------------------------------------------------------------------- */

static void qemuProcessGraphicsReleasePorts(virDomainObj *vm);

void
qemuProcessKillAndStop(virQEMUDriver *driver,
                       virDomainObj *vm,
                       virDomainShutoffReason reason,
                       int detail)
{
    if (!virDomainObjIsActive(vm))
        return;
    QEMU_DOMAIN_PRIVATE(vm)->beingDestroyed = true;
    qemuProcessKill(driver, vm, QEMU_PROCESS_KILL_FORCE);
    qemuProcessStop(driver, vm, reason);
    qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                              VIR_DOMAIN_EVENT_STOPPED, detail));
}

void
qemuProcessStop(virQEMUDriver *driver,
                virDomainObj *vm,
                virDomainShutoffReason reason)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autofree char *statusFile = NULL;

    VIR_DEBUG("stopping domain '%s' (pid %d) reason=%s", vm->def->name,
              (int) vm->pid, virDomainShutoffReasonTypeToString(reason));

    qemuAgentTeardown(vm);
    if (priv->mon) {
        qemuMonitor *mon = g_steal_pointer(&priv->mon);

        qemuMonitorClose(mon);
    }

    if (vm->pid > 0 && qemuProcessIsAlive(vm) &&
        qemuProcessKill(driver, vm, QEMU_PROCESS_KILL_FORCE) < 0)
        VIR_WARN("QEMU of domain '%s' may still run: %s", vm->def->name,
                 virGetLastErrorMessage());
    qemuProcessUnwatchPid(vm);
    qemuSecurityRestoreAllLabel(driver, vm);

    /* QEMU is gone: its taps with it; the network ports go back */
    qemuInterfaceStopAll(vm);

    statusFile = virDomainConfigFile(driver->paths.stateDir, vm->def->name);
    if (unlink(statusFile) < 0 && errno != ENOENT)
        VIR_WARN("cannot remove status file %s: %s", statusFile, g_strerror(errno));
    if (priv->pidfile)
        unlink(priv->pidfile);
    if (priv->monitorPath)
        unlink(priv->monitorPath);
    if (priv->libDir)
        virFileDeleteTree(priv->libDir);
    g_clear_pointer(&priv->pidfile, g_free);
    g_clear_pointer(&priv->monitorPath, g_free);
    g_clear_pointer(&priv->libDir, g_free);
    g_clear_pointer(&priv->vcpuTids, g_free);
    priv->nvcpuTids = 0;

    priv->gotShutdown = false;
    priv->fakeReboot = false;
    priv->beingDestroyed = false;
    priv->pausedReason = 0;
    priv->balloonCur = 0;
    priv->migrationStatus = 0;
    priv->autoDestroyConn = NULL;

    qemuProcessGraphicsReleasePorts(vm);
    if (priv->migrationPort) {
        virPortAllocatorRelease(priv->migrationPort);
        priv->migrationPort = 0;
    }
    if (priv->nbdPort) {
        virPortAllocatorRelease(priv->nbdPort);
        priv->nbdPort = 0;
    }
    vm->pid = 0;
    vm->def->id = -1;
    virDomainObjSetState(vm, VIR_DOMAIN_SHUTOFF, reason);
    if (vm->newDef) {
        /* back to the persistent definition */
        virDomainObjRemoveTransientDef(vm);
    }
    qemuProcessScheduleTrim(driver);
}

/* ---------------------------------------------------------------------- */
/* Start                                                                  */
/* ---------------------------------------------------------------------- */

/* A listening socket at @path for QEMU's monitor; QEMU gets the fd. */
static int
qemuProcessMonitorListen(const char *path, uid_t uid, gid_t gid)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("monitor socket path '%s' is too long"), path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) {
        virReportSystemError(errno, "%s", _("cannot create monitor socket"));
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
        listen(fd, 1) < 0) {
        virReportSystemError(errno, _("cannot listen on monitor socket '%s'"), path);
        VIR_FORCE_CLOSE(fd);
        return -1;
    }
    if (chmod(path, 0600) < 0 ||
        ((uid != (uid_t) -1 || gid != (gid_t) -1) && chown(path, uid, gid) < 0)) {
        virReportSystemError(errno, _("cannot set permissions of '%s'"), path);
        VIR_FORCE_CLOSE(fd);
        return -1;
    }
    return fd;
}

/* Connects to QEMU's monitor socket.  Never blocks: the socket listens
 * already, so the connection waits in its backlog until QEMU accepts. */
static int
qemuProcessMonitorConnect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("monitor socket path '%s' is too long"), path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        virReportSystemError(errno, "%s", _("cannot create monitor socket"));
        return -1;
    }
    if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
        virReportSystemError(errno, _("cannot connect to QEMU monitor at '%s'"), path);
        VIR_FORCE_CLOSE(fd);
        return -1;
    }
    return fd;
}

/* vm locked, a job held.  Opens the monitor on @path and negotiates. */
static int
qemuProcessConnectMonitor(virQEMUDriver *driver, virDomainObj *vm,
                          qemuDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    const qemuConfig *cfg = driver->config;
    qemuMonitor *mon;
    int fd;
    int rc;

    if ((fd = qemuProcessMonitorConnect(priv->monitorPath)) < 0)
        return -1;
    if (!(mon = qemuMonitorOpen(fd, &qemuProcessMonitorCallbacks, virObjectRef(vm)))) {
        virObjectUnref(vm);
        VIR_FORCE_CLOSE(fd);
        return -1;
    }
    qemuMonitorSetTimeouts(mon, cfg->monitorTimeoutQuery * 1000ULL,
                           cfg->monitorTimeoutModify * 1000ULL,
                           cfg->monitorTimeoutLong * 1000ULL);
    priv->mon = mon;

    if (asyncJob != QEMU_ASYNC_JOB_NONE) {
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            return -1;
    } else if (qemuDomainObjEnterMonitor(vm) < 0) {
        return -1;
    }
    rc = qemuMonitorNegotiate(mon);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        return -1;
    return 0;
}

/* vm locked, a job held: the host thread of each vCPU, for statistics. */
static int
qemuProcessRefreshVcpus(virDomainObj *vm, qemuDomainAsyncJob asyncJob)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuMonitorCPUInfo *cpus = NULL;
    size_t ncpus = 0;
    size_t i;
    int rc;

    if (asyncJob != QEMU_ASYNC_JOB_NONE) {
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            return -1;
    } else if (qemuDomainObjEnterMonitor(vm) < 0) {
        return -1;
    }
    rc = qemuMonitorJSONQueryCPUsFast(priv->mon, &cpus, &ncpus);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0) {
        qemuMonitorCPUInfoFree(cpus, ncpus);
        return -1;
    }
    g_free(priv->vcpuTids);
    priv->vcpuTids = g_new0(long long, ncpus);
    priv->nvcpuTids = ncpus;
    for (i = 0; i < ncpus; i++)
        priv->vcpuTids[i] = cpus[i].threadId;
    qemuMonitorCPUInfoFree(cpus, ncpus);
    return 0;
}

/* Things that would make QEMU fail, told in libvirt's terms first. */
static int
qemuProcessStartCheck(virDomainObj *vm)
{
    size_t i;

    if (access(vm->def->emulator, X_OK) < 0) {
        virReportSystemError(errno, _("Cannot find QEMU binary %s"), vm->def->emulator);
        return -1;
    }
    for (i = 0; i < vm->def->ndisks; i++) {
        virDomainDiskDef *disk = vm->def->disks[i];
        const char *path = virDomainDiskGetSource(disk);

        if (virDomainDiskGetType(disk) != VIR_STORAGE_TYPE_FILE || !path || !*path)
            continue;
        if (access(path, disk->src->readonly ? R_OK : R_OK | W_OK) < 0) {
            virReportSystemError(errno,
                                 _("Cannot access storage file '%s' of disk '%s'"),
                                 path, disk->dst);
            return -1;
        }
    }
    return 0;
}

/* Display ports: every VNC/SPICE display listening on an address without
 * a fixed port gets a free one (libvirt's port allocator: shared by all
 * drivers of the daemon, checked against bind()).  Released at stop. */
static int
qemuProcessGraphicsReservePorts(virQEMUDriver *driver, virDomainObj *vm)
{
    size_t i;

    for (i = 0; i < vm->def->ngraphics; i++) {
        virDomainGraphicsDef *gr = vm->def->graphics[i];
        virDomainGraphicsListenDef *l = gr->nListens ? &gr->listens[0] : NULL;
        unsigned short port;

        if (l && l->type != VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_ADDRESS &&
            l->type != VIR_DOMAIN_GRAPHICS_LISTEN_TYPE_NETWORK)
            continue;

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC) {
            if (gr->data.vnc.autoport || gr->data.vnc.port <= 0) {
                if (virPortAllocatorAcquire(driver->remotePorts, &port) < 0)
                    return -1;
                gr->data.vnc.port = port;
                gr->data.vnc.portReserved = true;
            }
            if (gr->data.vnc.websocket == -1) {
                if (virPortAllocatorAcquire(driver->webSocketPorts, &port) < 0)
                    return -1;
                gr->data.vnc.websocket = port;
                gr->data.vnc.websocketReserved = true;
            }
        } else if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE) {
            if (gr->data.spice.autoport || gr->data.spice.port <= 0) {
                if (virPortAllocatorAcquire(driver->remotePorts, &port) < 0)
                    return -1;
                gr->data.spice.port = port;
                gr->data.spice.portReserved = true;
            }
        }
    }
    return 0;
}

static void
qemuProcessGraphicsReleasePorts(virDomainObj *vm)
{
    size_t i;

    for (i = 0; i < vm->def->ngraphics; i++) {
        virDomainGraphicsDef *gr = vm->def->graphics[i];

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC) {
            if (gr->data.vnc.portReserved)
                virPortAllocatorRelease(gr->data.vnc.port);
            if (gr->data.vnc.websocketReserved)
                virPortAllocatorRelease(gr->data.vnc.websocket);
            gr->data.vnc.portReserved = false;
            gr->data.vnc.websocketReserved = false;
        } else if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE) {
            if (gr->data.spice.portReserved)
                virPortAllocatorRelease(gr->data.spice.port);
            gr->data.spice.portReserved = false;
        }
    }
}

/* After a restart: the ports the running domain holds are taken. */
static void
qemuProcessGraphicsMarkPortsUsed(virDomainObj *vm)
{
    size_t i;

    for (i = 0; i < vm->def->ngraphics; i++) {
        virDomainGraphicsDef *gr = vm->def->graphics[i];

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC) {
            if (gr->data.vnc.autoport && gr->data.vnc.port > 0) {
                virPortAllocatorSetUsed(gr->data.vnc.port);
                gr->data.vnc.portReserved = true;
            }
        } else if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE) {
            if (gr->data.spice.autoport && gr->data.spice.port > 0) {
                virPortAllocatorSetUsed(gr->data.spice.port);
                gr->data.spice.portReserved = true;
            }
        }
    }
}

/* vm locked, async job held.  Builds argv and runs QEMU daemonized.
 * @tapfds (one per def->nets, -1 for none) are handed to QEMU: each one
 * passed is set to -1. */
static int
qemuProcessLaunch(virQEMUDriver *driver, virDomainObj *vm, qemuCaps *qcaps,
                  uid_t uid, gid_t gid, bool incoming, int *tapfds,
                  off_t *logStart)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    qemuBuildCommandLineOpts opts = { 0 };
    g_auto(GStrv) argv = NULL;
    g_autoptr(virCommand) cmd = NULL;
    g_autofree char *argvText = NULL;
    g_autofree char *header = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%F %T");
    int listenFd = -1;
    int logFd = -1;
    pid_t pid;
    int ret = -1;
    struct stat sb;
    size_t i;

    if ((listenFd = qemuProcessMonitorListen(priv->monitorPath, uid, gid)) < 0)
        return -1;

    opts.libDir = priv->libDir;
    opts.stateDir = driver->paths.stateDir;
    opts.monitorFd = listenFd;
    opts.privileged = driver->privileged;
    opts.vncListen = driver->config->vncListen;
    opts.spiceListen = driver->config->spiceListen;
    opts.kvm = qcaps->kvmAvailable;
    opts.tapfds = tapfds;
    opts.ntapfds = vm->def->nnets;
    if (!(argv = qemuBuildCommandLine(vm->def, qcaps, &opts)))
        goto cleanup;

    if ((logFd = open(priv->logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        virReportSystemError(errno, _("cannot open log file '%s'"), priv->logPath);
        goto cleanup;
    }
    if (fstat(logFd, &sb) == 0)
        *logStart = sb.st_size;
    argvText = qemuBuildCommandLineToString(argv);
    header = g_strdup_printf("%s: starting up Tandem, QEMU %s\n%s\n",
                             stamp, qcaps->package ? qcaps->package : "", argvText);
    if (safewrite(logFd, header, strlen(header)) < 0)
        VIR_WARN("cannot write to %s", priv->logPath);
    *logStart += strlen(header);

    cmd = virCommandNewArgs((const char *const *) argv);
    if (incoming)
        virCommandAddArgList(cmd, "-incoming", "defer", NULL);
    virCommandAddEnvPassCommon(cmd);
    virCommandAddEnvPair(cmd, "HOME", priv->libDir);
    virCommandAddEnvPair(cmd, "XDG_CACHE_HOME", priv->libDir);
    virCommandAddEnvPair(cmd, "XDG_DATA_HOME", priv->libDir);
    virCommandAddEnvPair(cmd, "XDG_CONFIG_HOME", priv->libDir);
    virCommandPassFD(cmd, listenFd, VIR_COMMAND_PASS_FD_CLOSE_PARENT);
    listenFd = -1;
    for (i = 0; i < vm->def->nnets; i++) {
        if (tapfds[i] >= 0) {
            virCommandPassFD(cmd, tapfds[i], VIR_COMMAND_PASS_FD_CLOSE_PARENT);
            tapfds[i] = -1;
        }
    }
    virCommandSetOutputFD(cmd, &logFd);
    virCommandSetErrorFD(cmd, &logFd);
    virCommandSetPidFile(cmd, priv->pidfile);
    virCommandDaemonize(cmd);
    virCommandSetUmask(cmd, 0007);
    virCommandClearCaps(cmd);
    if (uid != (uid_t) -1)
        virCommandSetUID(cmd, uid);
    if (gid != (gid_t) -1)
        virCommandSetGID(cmd, gid);

    VIR_DEBUG("launching QEMU for '%s': %s", vm->def->name, argvText);
    if (virCommandRun(cmd, NULL) < 0)
        goto cleanup;
    if (virPidFileReadPath(priv->pidfile, &pid) < 0) {
        virReportSystemError(errno, _("QEMU of domain '%s' did not write its pid file %s"),
                             vm->def->name, priv->pidfile);
        goto cleanup;
    }
    vm->pid = pid;
    priv->startTime = g_get_real_time() / 1000;
    ret = 0;

 cleanup:
    VIR_FORCE_CLOSE(listenFd);
    VIR_FORCE_CLOSE(logFd);
    return ret;
}

int
qemuProcessStart(virConnectPtr conn,
                 virQEMUDriver *driver,
                 virDomainObj *vm,
                 qemuDomainAsyncJob asyncJob,
                 unsigned int flags)
{
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);
    g_autoptr(qemuCaps) qcaps = NULL;
    g_autofree char *dirname = NULL;
    static int nextId;
    bool running = false;
    int status = 0;
    uid_t uid;
    gid_t gid;
    off_t logStart = 0;
    g_autofree int *tapfds = NULL;
    size_t i;
    int rc;

    if (virDomainObjIsActive(vm)) {
        virReportError(VIR_ERR_OPERATION_INVALID, "%s",
                       _("domain is already running"));
        return -1;
    }

    if (qemuProcessStartCheck(vm) < 0) {
        /* as after any other failed start */
        virDomainObjSetState(vm, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_FAILED);
        return -1;
    }
    if (!(qcaps = qemuDriverGetQEMUCapsForBinary(driver, vm->def->emulator)))
        return -1;
    if (qemuDriverGetQEMUUser(driver, &uid, &gid) < 0)
        return -1;

    /* the live definition: a copy the running domain may change */
    if (virDomainObjSetDefTransient(driver->xmlopt, vm, NULL) < 0)
        return -1;

    vm->def->id = g_atomic_int_add(&nextId, 1) + 1;
    dirname = g_strdup_printf("domain-%d-%s", vm->def->id, vm->def->name);
    priv->libDir = g_build_filename(driver->paths.libDir, dirname, NULL);
    priv->monitorPath = g_build_filename(priv->libDir, "monitor.sock", NULL);
    priv->pidfile = virPidFileBuildPath(driver->paths.stateDir, vm->def->name);
    g_free(priv->logPath);
    priv->logPath = g_strdup_printf("%s/%s.log", driver->paths.logDir, vm->def->name);
    priv->gotShutdown = false;
    priv->fakeReboot = false;
    priv->beingDestroyed = false;

    if (g_mkdir_with_parents(priv->libDir, 0700) < 0) {
        virReportSystemError(errno, _("cannot create directory '%s'"), priv->libDir);
        goto error;
    }
    if ((uid != (uid_t) -1 || gid != (gid_t) -1) && chown(priv->libDir, uid, gid) < 0) {
        virReportSystemError(errno, _("cannot change ownership of '%s'"), priv->libDir);
        goto error;
    }

    if (qemuSecuritySetAllLabel(driver, vm) < 0)
        goto error;
    if (qemuProcessGraphicsReservePorts(driver, vm) < 0)
        goto error;
    if (qemuInterfaceStartAll(vm, driver->privileged, &tapfds) < 0)
        goto error;
    rc = qemuProcessLaunch(driver, vm, qcaps, uid, gid,
                           !!(flags & QEMU_PROCESS_START_INCOMING), tapfds, &logStart);
    for (i = 0; i < vm->def->nnets; i++)
        VIR_FORCE_CLOSE(tapfds[i]);
    if (rc < 0)
        goto error;
    priv->logStart = logStart;
    if (qemuProcessWatchPid(vm) < 0)
        goto error;
    if (asyncJob == QEMU_ASYNC_JOB_START &&
        qemuDomainObjSetJobPhase(vm, QEMU_START_PHASE_LAUNCHED) < 0)
        goto error;
    /* early: a daemon that dies from here on finds QEMU at reconnect
     * (and stops it: the start or incoming migration did not finish) */
    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP);
    qemuDomainObjSaveStatus(driver, vm);

    if (qemuProcessConnectMonitor(driver, vm, asyncJob) < 0)
        goto error;
    if (asyncJob == QEMU_ASYNC_JOB_START &&
        qemuDomainObjSetJobPhase(vm, QEMU_START_PHASE_CONNECTED) < 0)
        goto error;
    virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP);
    if (qemuProcessRefreshVcpus(vm, asyncJob) < 0 ||
        qemuDomainQuerySetup(vm, asyncJob) < 0 ||
        qemuDomainDevicesSetup(vm, asyncJob) < 0 ||
        qemuAgentSetup(vm, asyncJob) < 0)
        goto error;
    qemuDomainObjSaveStatus(driver, vm);

    if (flags & QEMU_PROCESS_START_INCOMING) {
        /* the migration code takes it from here */
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION);
    } else if (!(flags & QEMU_PROCESS_START_PAUSED)) {
        if (asyncJob == QEMU_ASYNC_JOB_START &&
            qemuDomainObjSetJobPhase(vm, QEMU_START_PHASE_RESUMING) < 0)
            goto error;
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            goto error;
        rc = qemuMonitorJSONStartCPUs(priv->mon);
        if (rc == 0)
            rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto error;
        if (!running) {
            virReportError(VIR_ERR_OPERATION_FAILED,
                           _("QEMU of domain '%s' did not start its vCPUs (status '%s')"),
                           vm->def->name, NULLSTR(qemuMonitorVMStatusTypeToString(status)));
            goto error;
        }
        virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED);
    } else {
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER);
    }

    if (flags & QEMU_PROCESS_START_AUTODESTROY)
        priv->autoDestroyConn = conn;
    qemuDomainObjSaveStatus(driver, vm);
    VIR_INFO("Started domain '%s' (id %d, pid %d)", vm->def->name, vm->def->id,
             (int) vm->pid);
    return 0;

 error:
    {
        virErrorPtr err = NULL;

        qemuProcessReportStartError(vm, logStart);
        virErrorPreserveLast(&err);
        qemuProcessStop(driver, vm, VIR_DOMAIN_SHUTOFF_FAILED);
        virErrorRestore(&err);
    }
    return -1;
}

/* ---------------------------------------------------------------------- */
/* Reconnect after a daemon restart                                       */
/* ---------------------------------------------------------------------- */

/* Is vm->pid still the QEMU we started (not a recycled pid)? */
static bool
qemuProcessIsOurQEMU(virDomainObj *vm)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int) vm->pid);
    g_autofree char *cmdline = NULL;
    g_autofree char *guest = g_strdup_printf("guest=%s,", vm->def->name);
    gsize len = 0;
    gsize i;
    bool sawName = false;
    char state = qemuProcessProcState(vm->pid);

    if (state == 0 || state == 'Z' || state == 'X')
        return false;
    if (!g_file_get_contents(path, &cmdline, &len, NULL) || len == 0)
        return false;
    if (STRNEQ(cmdline, vm->def->emulator))
        return false;
    for (i = 0; i < len; i += strlen(cmdline + i) + 1) {
        if (STRPREFIX(cmdline + i, guest))
            sawName = true;
    }
    return sawName;
}

/* The reconnect thread of one domain.  It claims the reconnect gate the
 * driver's start shut (docs/THREADS.txt section 3), takes the modify job,
 * or adopts the async job the status file recorded (that job's phase
 * decides what happens to it) and works under it; it opens the gate once
 * the monitor answered, or after it stopped the domain. */
static void
qemuProcessReconnectThread(void *opaque)
{
    virDomainObj *vm = opaque;
    virQEMUDriver *driver = qemu_driver;
    qemuDomainObjPrivate *priv;
    bool running = false;
    bool migrated = false;
    int status = 0;
    int rc;
    qemuDomainAsyncJob asyncJob;
    int phase;

    virObjectLock(vm);
    priv = QEMU_DOMAIN_PRIVATE(vm);
    asyncJob = priv->job.asyncJob;
    phase = priv->job.phase;
    qemuDomainObjResetInterruptedJobs(vm);
    qemuDomainObjTakeReconnect(vm);

    qemuProcessGraphicsMarkPortsUsed(vm);
    if (asyncJob != QEMU_ASYNC_JOB_NONE)
        qemuDomainObjAdoptAsyncJob(vm);
    else if (qemuDomainObjBeginJob(vm, QEMU_JOB_MODIFY) < 0)
        goto cleanup;

    VIR_INFO("Reconnecting to domain '%s' (pid %d, interrupted async job %s phase %s)",
             vm->def->name, (int) vm->pid, qemuDomainAsyncJobTypeToString(asyncJob),
             NULLSTR(qemuDomainAsyncJobPhaseToString(asyncJob, phase)));
    if (!qemuProcessIsOurQEMU(vm)) {
        if (priv->beingDestroyed)
            VIR_INFO("QEMU of domain '%s' (pid %d) was killed by a destroy", vm->def->name,
                     (int) vm->pid);
        else
            VIR_WARN("QEMU of domain '%s' (pid %d) is gone", vm->def->name, (int) vm->pid);
        vm->pid = 0;
        goto stop;
    }
    if (qemuProcessWatchPid(vm) < 0 ||
        qemuProcessConnectMonitor(driver, vm, asyncJob) < 0 ||
        qemuProcessRefreshVcpus(vm, asyncJob) < 0 ||
        qemuDomainQuerySetup(vm, asyncJob) < 0 ||
        qemuDomainDevicesSetup(vm, asyncJob) < 0 ||
        qemuAgentSetup(vm, asyncJob) < 0)
        goto stop;
    qemuInterfaceReconnectAll(vm);
    /* needs the sync job: an adopted async job's domain waits for the next
     * restart or its removal event */
    if (asyncJob == QEMU_ASYNC_JOB_NONE)
        qemuHotplugReconnect(vm);

    if (asyncJob != QEMU_ASYNC_JOB_NONE) {
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            goto stop;
    } else if (qemuDomainObjEnterMonitor(vm) < 0) {
        goto stop;
    }
    rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
    if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
        goto stop;
    /* the monitor works: other threads' jobs need not wait any more (the
     * recovery below may ask another host for a minute) */
    qemuDomainObjEndReconnect(vm);

    /* an interrupted migration is resolved by its phase */
    if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_OUT || asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN) {
        rc = qemuMigrationRecover(driver, vm, asyncJob, phase);
        if (rc < 0)
            goto stop;
        if (rc > 0) {
            migrated = true;
            goto endjob;
        }
        if (qemuDomainObjEnterMonitorAsync(vm, asyncJob) < 0)
            goto stop;
        rc = qemuMonitorJSONQueryStatus(priv->mon, &running, &status);
        if (qemuDomainObjExitMonitor(vm) < 0 || rc < 0)
            goto stop;
    }

    /* an interrupted start is finished or undone according to its phase */
    if (asyncJob == QEMU_ASYNC_JOB_START && phase < QEMU_START_PHASE_RESUMING) {
        VIR_WARN("Start of domain '%s' was interrupted before it resumed; destroying it",
                 vm->def->name);
        goto stop;
    }

    if (running) {
        if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_RUNNING)
            virDomainObjSetState(vm, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_UNPAUSED);
    } else if (status == QEMU_MONITOR_VM_STATUS_SHUTDOWN) {
        /* the guest shut down while we were away */
        priv->gotShutdown = true;
        kill(vm->pid, SIGTERM);
    } else if (virDomainObjGetState(vm, NULL) != VIR_DOMAIN_PAUSED) {
        virDomainObjSetState(vm, VIR_DOMAIN_PAUSED,
                             qemuMonitorVMStatusToPausedReason(status));
    }
    VIR_INFO("Reconnected to domain '%s'", vm->def->name);
    goto endjob;

 stop:
    VIR_DEBUG("could not reconnect to '%s': %s", vm->def->name, virGetLastErrorMessage());
    if (priv->beingDestroyed) {
        /* a destroy killed QEMU while we connected (it waits at the
         * reconnect gate): the domain stops as destroyed */
        qemuProcessStop(driver, vm, VIR_DOMAIN_SHUTOFF_DESTROYED);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                  VIR_DOMAIN_EVENT_STOPPED,
                                  VIR_DOMAIN_EVENT_STOPPED_DESTROYED));
    } else {
        qemuProcessStop(driver, vm, priv->gotShutdown ? VIR_DOMAIN_SHUTOFF_SHUTDOWN
                                                      : VIR_DOMAIN_SHUTOFF_UNKNOWN);
        qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                  VIR_DOMAIN_EVENT_STOPPED,
                                  VIR_DOMAIN_EVENT_STOPPED_FAILED));
    }

 endjob:
    if (asyncJob == QEMU_ASYNC_JOB_SAVE) {
        /* cancelled whatever its phase: the guest runs on, no file is left */
        qemuSaveRecover(driver, vm, phase);
        qemuDomainObjEndAsyncJob(vm);
    } else if (asyncJob == QEMU_ASYNC_JOB_DUMP || asyncJob == QEMU_ASYNC_JOB_SNAPSHOT) {
        /* failed whatever its phase; a guest it paused runs again */
        qemuDumpRecover(vm, asyncJob, phase);
        qemuDomainObjEndAsyncJob(vm);
    } else if (asyncJob != QEMU_ASYNC_JOB_NONE) {
        /* an incoming storage migration undone: its new images go too */
        if (asyncJob == QEMU_ASYNC_JOB_MIGRATION_IN && !virDomainObjIsActive(vm))
            qemuMigrationDstNBDRemoveCreated(vm);
        qemuDomainObjSetAsyncJobResult(vm, migrated || virDomainObjIsActive(vm) ?
                                       VIR_DOMAIN_JOB_COMPLETED : VIR_DOMAIN_JOB_FAILED,
                                       NULL);
        qemuDomainObjEndAsyncJob(vm);
    } else {
        qemuDomainObjEndJob(vm);
    }
    qemuDomainObjSaveStatus(driver, vm);
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);

 cleanup:
    if (priv->job.reconnecting)
        qemuDomainObjEndReconnect(vm);
    virDomainObjEndAPI(&vm);
}

static int
qemuProcessReconnectOne(virDomainObj *vm, void *opaque G_GNUC_UNUSED)
{
    virThread thread;
    g_autofree char *name = NULL;

    virObjectLock(vm);
    if (!virDomainObjIsActive(vm)) {
        virObjectUnlock(vm);
        return 0;
    }
    name = g_strdup_printf("reconnect-%s", vm->def->name);
    /* API calls wait for the reconnect thread from now on */
    qemuDomainObjBeginReconnect(vm);
    virObjectRef(vm);
    virObjectUnlock(vm);
    if (virThreadCreateFull(&thread, false, qemuProcessReconnectThread,
                            name, false, vm) < 0) {
        VIR_ERROR(_("cannot start a thread to reconnect to domain"));
        virObjectLock(vm);
        qemuDomainObjEndReconnect(vm);
        virObjectUnlock(vm);
        virObjectUnref(vm);
    }
    return 0;
}

/* A QEMU whose pid file is still locked (QEMU holds the lock while it
 * runs) but whose domain was not reconnected: its status file was broken
 * or not yet written when the daemon died.  Nothing manages it any more,
 * and starting the domain again would run a second QEMU on the same
 * disks: kill it.  Checks that the process is QEMU of that guest. */
static void
qemuProcessKillOrphan(virQEMUDriver *driver, const char *entry)
{
    g_autofree char *name = g_strndup(entry, strlen(entry) - 4);
    g_autofree char *path = g_build_filename(driver->paths.stateDir, entry, NULL);
    g_autofree char *cmdlinePath = NULL;
    g_autofree char *cmdline = NULL;
    g_autofree char *want = NULL;
    virDomainObj *vm;
    gsize len = 0;
    gsize i;
    pid_t pid = -1;

    if (STREQ(name, "driver"))
        return;
    if ((vm = virDomainObjListFindByName(driver->domains, name))) {
        bool active = virDomainObjIsActive(vm);

        virDomainObjEndAPI(&vm);
        if (active)
            return;
    }
    if (virPidFileReadPathIfLocked(path, &pid) < 0 || pid <= 0)
        return;
    cmdlinePath = g_strdup_printf("/proc/%lld/cmdline", (long long) pid);
    if (!g_file_get_contents(cmdlinePath, &cmdline, &len, NULL))
        return;
    for (i = 0; i + 1 < len; i++) {
        if (cmdline[i] == '\0')
            cmdline[i] = ' ';
    }
    want = g_strdup_printf("-name guest=%s,", name);
    if (!strstr(cmdline, want))
        return;
    VIR_WARN("QEMU of domain '%s' (pid %lld) runs without a usable status file: killing it",
             name, (long long) pid);
    if (kill(pid, SIGKILL) < 0 && errno != ESRCH) {
        VIR_WARN("Cannot kill QEMU pid %lld: %s", (long long) pid, g_strerror(errno));
        return;
    }
    unlink(path);
}

void
qemuProcessReconnectAll(virQEMUDriver *driver)
{
    g_autoptr(GDir) dir = NULL;
    const char *entry;

    virDomainObjListForEach(driver->domains, false, qemuProcessReconnectOne, NULL);

    if (!(dir = g_dir_open(driver->paths.stateDir, 0, NULL)))
        return;
    while ((entry = g_dir_read_name(dir))) {
        if (g_str_has_suffix(entry, ".pid"))
            qemuProcessKillOrphan(driver, entry);
    }
}

/* ---------------------------------------------------------------------- */
/* Auto-destroy                                                           */
/* ---------------------------------------------------------------------- */

/* vm locked, no job; in a worker thread. */
static void
qemuProcessAutoDestroyOne(virQEMUDriver *driver, virDomainObj *vm, int id)
{
    if (!virDomainObjIsActive(vm) || vm->def->id != id)
        return;
    VIR_INFO("Auto-destroying domain '%s'", vm->def->name);
    QEMU_DOMAIN_PRIVATE(vm)->beingDestroyed = true;
    qemuProcessKill(driver, vm, QEMU_PROCESS_KILL_FORCE);
    if (qemuDomainObjBeginJob(vm, QEMU_JOB_DESTROY) == 0) {
        if (virDomainObjIsActive(vm)) {
            qemuProcessStop(driver, vm, VIR_DOMAIN_SHUTOFF_DESTROYED);
            qemuDriverQueueEvent(driver, virDomainEventLifecycleNewFromObj(vm,
                                      VIR_DOMAIN_EVENT_STOPPED,
                                      VIR_DOMAIN_EVENT_STOPPED_DESTROYED));
        }
        qemuDomainObjEndJob(vm);
    } else {
        VIR_WARN("Cannot auto-destroy domain '%s': %s",
                 vm->def->name, virGetLastErrorMessage());
    }
    if (!vm->persistent && !virDomainObjIsActive(vm))
        virDomainObjListRemove(driver->domains, vm);
}

typedef struct {
    virQEMUDriver *driver;
    virConnectPtr conn;
} qemuProcessConnectionClosedData;

static int
qemuProcessConnectionClosedOne(virDomainObj *vm, void *opaque)
{
    qemuProcessConnectionClosedData *data = opaque;
    qemuDomainObjPrivate *priv = QEMU_DOMAIN_PRIVATE(vm);

    virObjectLock(vm);
    if (priv->autoDestroyConn == data->conn) {
        priv->autoDestroyConn = NULL;
        if (virDomainObjIsActive(vm))
            qemuProcessEventSubmit(data->driver, vm, QEMU_PROCESS_EVENT_AUTODESTROY);
    }
    if (priv->migrationConn == data->conn) {
        priv->migrationConn = NULL;
        VIR_WARN("The client driving the migration of '%s' went away: undoing it",
                 vm->def->name);
        qemuProcessEventSubmit(data->driver, vm, QEMU_PROCESS_EVENT_MIGRATION_CLIENT_GONE);
    }
    virObjectUnlock(vm);
    return 0;
}

void
qemuProcessConnectionClosed(virQEMUDriver *driver, virConnectPtr conn)
{
    qemuProcessConnectionClosedData data = { driver, conn };

    virDomainObjListForEach(driver->domains, false,
                            qemuProcessConnectionClosedOne, &data);
}
