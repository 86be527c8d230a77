/*
 * qemu_domain_parse.h: guards in front of libvirt's domain XML parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "internal.h"
#include "domain_conf.h"

/* Refuses a <vcpu> count (or its @current) QEMU cannot run, before
 * libvirt's parser allocates for it.  @ctxt's node is the <domain>. */
int qemuDomainDefCheckVcpusNode(xmlXPathContextPtr ctxt);

/* virDomainDefParseString behind qemuDomainDefCheckVcpusNode: every
 * definition that comes from a client, a save image or another host goes
 * through here. */
virDomainDef *qemuDomainDefParseString(const char *xml, virDomainXMLOption *xmlopt,
                                       unsigned int flags);
