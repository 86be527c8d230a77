/*
 * qemu_config.h: qemu.conf, the settings of the Tandem driver
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"

/* Settings read from qemu.conf.  A qemuConfig is built at driver start
 * (or reload) and is immutable afterwards: threads share it by pointer. */
typedef struct _qemuConfig qemuConfig;
struct _qemuConfig {
    /* deadlines, in seconds */
    unsigned int jobWaitTimeout;          /* job_wait_timeout (30) */
    unsigned int monitorTimeoutQuery;     /* monitor_timeout_query */
    unsigned int monitorTimeoutModify;    /* monitor_timeout_modify */
    unsigned int monitorTimeoutLong;      /* monitor_timeout_long (migration, savevm) */
    unsigned int agentTimeout;            /* agent_timeout */
    unsigned int destroyTimeout;          /* destroy_timeout: SIGTERM -> SIGKILL */

    /* migration */
    unsigned int migrationPortMin;        /* migration_port_min (49152) */
    unsigned int migrationPortMax;        /* migration_port_max (49215) */
    char *migrationAddress;               /* migration_address */
    char *migrationHost;                  /* migration_host */

    /* processes */
    char *user;                           /* user ("libvirt-qemu" when privileged) */
    char *group;                          /* group */
    bool dynamicOwnership;                /* dynamic_ownership (1): give QEMU's
                                           * files to user/group while it runs */
    char *vncListen;                      /* vnc_listen ("127.0.0.1") */
    char *spiceListen;                    /* spice_listen ("127.0.0.1") */
    char *saveImageFormat;                /* save_image_format ("raw") */
    char *dumpImageFormat;                /* dump_image_format */
    char *snapshotImageFormat;            /* snapshot_image_format */
    char *emulator;                       /* emulator: default QEMU binary */
    unsigned int maxQueuedJobs;           /* max_queued (0 = unlimited) */
};

qemuConfig *qemuConfigNew(bool privileged);
void qemuConfigFree(qemuConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuConfig, qemuConfigFree);

/* Read @path into @cfg.  A missing file is fine when @allowMissing.
 * Unknown keys are logged as warnings; a bad value fails with
 * VIR_ERR_CONF_SYNTAX naming the key and the file.  Returns 0 / -1;
 * on error @cfg is left as it was (nothing of the file is applied). */
int qemuConfigLoadFile(qemuConfig *cfg, const char *path, bool allowMissing);

/* Same, from a string (for tests); @name is used in error messages. */
int qemuConfigLoadString(qemuConfig *cfg, const char *text, const char *name);
