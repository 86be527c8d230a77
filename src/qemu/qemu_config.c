/* placeholder: replaced by the qemu.conf implementation */
#include <config.h>
#include "qemu_config.h"

qemuConfig *
qemuConfigNew(bool privileged)
{
    qemuConfig *cfg = g_new0(qemuConfig, 1);

    cfg->jobWaitTimeout = 30;
    cfg->emulator = g_strdup(QEMU_BINARY);
    cfg->user = g_strdup(privileged ? "libvirt-qemu" : NULL);
    return cfg;
}

void
qemuConfigFree(qemuConfig *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->emulator);
    g_free(cfg->user);
    g_free(cfg);
}

int
qemuConfigLoadFile(qemuConfig *cfg G_GNUC_UNUSED, const char *path G_GNUC_UNUSED,
                   bool allowMissing G_GNUC_UNUSED)
{
    return 0;
}
