/*
 * qemu_domain.h: per-domain private data
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"

typedef struct _qemuDomainObjPrivate qemuDomainObjPrivate;
struct _qemuDomainObjPrivate {
    /* protected by the domain object lock */
    char *libDir;        /* per-domain private directory, while running */
    char *pidfile;
};

#define QEMU_DOMAIN_PRIVATE(vm) ((qemuDomainObjPrivate *) (vm)->privateData)

extern virDomainXMLPrivateDataCallbacks qemuDomainXMLPrivateDataCallbacks;
extern virDomainDefParserConfig qemuDomainDefParserConfig;

/* The XML option object of the driver (parser callbacks, private data). */
virDomainXMLOption *qemuDomainXMLOptionNew(void *driver);
