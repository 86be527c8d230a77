/*
 * qemu_migration_cookie.h: the cookie Tandem's migration steps pass along
 *
 * The cookie is our own XML:
 *
 *   <tandem-migration version='1'>
 *     <name>NAME</name>
 *     <uuid>UUID</uuid>
 *     <hostname>HOST</hostname>
 *     <hostuuid>HOST-UUID</hostuuid>
 *     <persistent>  <domain>...</domain>  </persistent>   (optional)
 *     <graphics type='vnc' port='5901' listen='127.0.0.1'/>  (optional)
 *     <statistics downtime='MS' total='MS' transferred='BYTES'/> (optional)
 *     <nbd port='49153'>                  (optional, storage migration:
 *       <disk target='vda' capacity='N'/>   Begin: the disks to copy with
 *     </nbd>                                their size in bytes, no port;
 *                                           Prepare: its NBD server's port
 *                                           and the disks it exports)
 *   </tandem-migration>
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"

typedef struct _qemuMigrationCookie qemuMigrationCookie;
struct _qemuMigrationCookie {
    char *name;
    unsigned char uuid[VIR_UUID_BUFLEN];
    char *hostname;
    unsigned char hostuuid[VIR_UUID_BUFLEN];
    virDomainDef *persistent;      /* the definition to keep on the destination */

    char *graphicsType;            /* relocation data for display clients */
    int graphicsPort;
    char *graphicsListen;

    bool haveStats;
    unsigned long long downtime;   /* ms */
    unsigned long long totalTime;  /* ms */
    unsigned long long transferred;

    /* storage migration (qemu_migration_nbd.c): from Begin, the disks
     * to copy and their sizes; from Prepare, the destination's NBD
     * server, on the host of the migration URI, exporting each disk
     * under its target name */
    bool haveNBD;
    unsigned int nbdPort;          /* 1..65535; 0: none (Begin's cookie) */
    char **nbdDisks;               /* NULL-terminated disk targets */
    unsigned long long *nbdCapacities; /* per disk, bytes; 0: unknown */
};

void qemuMigrationCookieFree(qemuMigrationCookie *cookie);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuMigrationCookie, qemuMigrationCookieFree);

/* A cookie describing @vm on this host. */
qemuMigrationCookie *qemuMigrationCookieNew(const virDomainDef *def);

/* Formats @cookie into *@out (NUL included in *@outlen, as libvirt passes
 * cookies).  @out may be NULL (caller does not want it). */
int qemuMigrationCookieFormat(qemuMigrationCookie *cookie,
                              virDomainXMLOption *xmlopt,
                              char **out,
                              int *outlen);

/* Parses a cookie; NULL/empty input gives an empty cookie.  Errors are
 * VIR_ERR_INTERNAL_ERROR naming what is wrong. */
qemuMigrationCookie *qemuMigrationCookieParse(const char *in,
                                              int inlen,
                                              virDomainXMLOption *xmlopt);
