/* tsan-glib.c: makes glib's GMutex and GCond visible to ThreadSanitizer
 * (linked into the unit tests of a --enable-sanitizers=thread build only).
 *
 * On Linux, glib implements GMutex and GCond with atomics and futex(2)
 * inside libglib, which is not instrumented: TSan sees neither the lock nor
 * the unlock, and reports every access to data a GMutex protects as a race.
 * The test programs define the few entry points Tandem and its tests call;
 * each forwards to glib's own and tells TSan about the acquire (after the
 * lock is taken) or the release (before it is given up), keyed on the
 * mutex's address.  Calls inside glib itself still bind to glib's own
 * functions and stay invisible (tests/sanitizers/tsan.supp).
 *
 * The same for reference counts: libvirt's objects are GObjects, released
 * by g_object_unref (also when libvirt's virObjectUnref calls it), whose
 * atomic decrement orders every earlier unref before the finalizer.  Each
 * unref is told to TSan as a release followed by an acquire on the
 * object's address, as the atomic read-modify-write does.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <sanitizer/tsan_interface.h>

void g_mutex_lock(GMutex *mutex);
gboolean g_mutex_trylock(GMutex *mutex);
void g_mutex_unlock(GMutex *mutex);
void g_cond_wait(GCond *cond, GMutex *mutex);
gboolean g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time);
void g_object_unref(gpointer object);

static void *
tsanGlibReal(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);

    if (!fn) {
        fprintf(stderr, "tsan-glib: glib's %s not found: %s\n", name, dlerror());
        abort();
    }
    return fn;
}

void
g_mutex_lock(GMutex *mutex)
{
    static void (*real)(GMutex *);

    if (!real)
        real = tsanGlibReal("g_mutex_lock");
    real(mutex);
    __tsan_acquire(mutex);
}

gboolean
g_mutex_trylock(GMutex *mutex)
{
    static gboolean (*real)(GMutex *);

    if (!real)
        real = tsanGlibReal("g_mutex_trylock");
    if (!real(mutex))
        return FALSE;
    __tsan_acquire(mutex);
    return TRUE;
}

void
g_mutex_unlock(GMutex *mutex)
{
    static void (*real)(GMutex *);

    if (!real)
        real = tsanGlibReal("g_mutex_unlock");
    __tsan_release(mutex);
    real(mutex);
}

void
g_cond_wait(GCond *cond, GMutex *mutex)
{
    static void (*real)(GCond *, GMutex *);

    if (!real)
        real = tsanGlibReal("g_cond_wait");
    __tsan_release(mutex);
    real(cond, mutex);
    __tsan_acquire(mutex);
}

gboolean
g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time)
{
    static gboolean (*real)(GCond *, GMutex *, gint64);
    gboolean ret;

    if (!real)
        real = tsanGlibReal("g_cond_wait_until");
    __tsan_release(mutex);
    ret = real(cond, mutex, end_time);
    __tsan_acquire(mutex);
    return ret;
}

void
g_object_unref(gpointer object)
{
    static void (*real)(gpointer);

    if (!real)
        real = tsanGlibReal("g_object_unref");
    __tsan_release(object);
    __tsan_acquire(object);
    real(object);
}
