/*
 * qemu_domain_parse.c: guards in front of libvirt's domain XML parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_domain_parse.h"

#include "virerror.h"
#include "virstring.h"
#include "virxml.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

/* libvirt's domain parser sizes its vCPU array from <vcpu> before any
 * driver callback sees the definition, reading "-1" as UINT_MAX: a
 * definition or a migration cookie asking for billions of vCPUs would
 * take the whole process down on that allocation.  QEMU runs at most
 * QEMU_DOMAIN_MAX_VCPUS. */
#define QEMU_DOMAIN_MAX_VCPUS 4096

int
qemuDomainDefCheckVcpusNode(xmlXPathContextPtr ctxt)
{
    static const char *const exprs[] = {
        "string(./vcpu[1])", "string(./vcpu[1]/@current)",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(exprs); i++) {
        g_autofree char *str = virXPathString(exprs[i], ctxt);
        long long n;

        /* what is not a number is libvirt's parser's to report */
        if (!str || virStrToLong_ll(g_strstrip(str), NULL, 10, &n) < 0)
            continue;
        if (n < 1 || n > QEMU_DOMAIN_MAX_VCPUS) {
            virReportError(VIR_ERR_CONFIG_UNSUPPORTED,
                           _("vCPU count '%s' is out of range: QEMU runs 1 to %d vCPUs"),
                           str, QEMU_DOMAIN_MAX_VCPUS);
            return -1;
        }
    }
    return 0;
}


virDomainDef *
qemuDomainDefParseString(const char *xml, virDomainXMLOption *xmlopt,
                         unsigned int flags)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;

    if ((doc = virXMLParseStringCtxt(xml, _("(domain_definition)"), &ctxt))) {
        if (qemuDomainDefCheckVcpusNode(ctxt) < 0)
            return NULL;
    } else {
        virResetLastError();   /* libvirt's parser below says what is wrong */
    }
    return virDomainDefParseString(xml, xmlopt, NULL, flags);
}
