/* unpreload.c: preloaded after the ASan runtime into the e2e tests'
 * processes (tests/tandemtest.py builds it).  In libvirtd and virsh, which
 * need the runtime only for themselves, it removes LD_PRELOAD from the
 * environment once the process has started: libvirt passes LD_PRELOAD on to
 * QEMU (virCommandAddEnvPassCommon), and QEMU under the ASan runtime warns
 * into its log and can hang in its coroutines.  Other processes keep it, so
 * what they start gets the runtime.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void tandemUnpreload(void) __attribute__((constructor));

static void
tandemUnpreload(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    const char *base;

    if (n <= 0)
        return;
    exe[n] = '\0';
    base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    if (strcmp(base, "libvirtd") == 0 || strcmp(base, "virsh") == 0)
        unsetenv("LD_PRELOAD");
}
