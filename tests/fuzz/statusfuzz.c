/*
 * statusfuzz.c: libFuzzer target for the private part of a domain's status
 * file (qemuDomainXMLPrivateDataCallbacks.parse, qemuDomainJobParse)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is a <domstatus> document as the daemon reads it back after a
 * restart; the private data parser sees it as libvirt hands it over (the
 * context node on the root).  What parses must format, and the formatted
 * text must parse and format to itself.
 * Build and run: make fuzz-status FUZZ_SECONDS=60
 */
#include <config.h>

#include <stdint.h>

#include "qemu_domain.h"
#include "virbuffer.h"
#include "virerror.h"
#include "virlog.h"
#include "virxml.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static virDomainXMLOption *fuzzXMLOpt;

/* Parses @xml into a new domain object's private data; NULL when refused. */
static virDomainObj *
fuzzParse(const char *xml)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    virDomainObj *vm;
    int rc;

    if (!(doc = virXMLParseStringCtxt(xml, "(status fuzz)", &ctxt)))
        return NULL;
    if (!(vm = virDomainObjNew(fuzzXMLOpt)))
        abort();
    rc = qemuDomainXMLPrivateDataCallbacks.parse(ctxt, vm, NULL);
    virObjectUnlock(vm);
    if (rc < 0) {
        virObjectUnref(vm);
        return NULL;
    }
    return vm;
}

static char *
fuzzFormat(virDomainObj *vm)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;

    virBufferAddLit(&buf, "<domstatus>\n");
    virBufferAdjustIndent(&buf, 2);
    virObjectLock(vm);
    if (qemuDomainXMLPrivateDataCallbacks.format(&buf, vm) < 0)
        abort();
    virObjectUnlock(vm);
    virBufferAdjustIndent(&buf, -2);
    virBufferAddLit(&buf, "</domstatus>\n");
    return virBufferContentAndReset(&buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *xml = NULL;
    g_autofree char *text = NULL;
    g_autofree char *again = NULL;
    virDomainObj *vm;
    virDomainObj *vm2;

    if (!fuzzXMLOpt) {
        if (virInitialize() < 0)
            abort();
        /* parse errors are expected by the thousand: keep them quiet */
        virLogSetDefaultPriority(VIR_LOG_ERROR);
        ignore_value(virLogSetOutputs("4:file:/dev/null"));
        if (!(fuzzXMLOpt = virDomainXMLOptionNew(NULL, &qemuDomainXMLPrivateDataCallbacks,
                                                 NULL, NULL, NULL, NULL)))
            abort();
    }

    xml = g_strndup((const char *) data, size);
    if ((vm = fuzzParse(xml))) {
        text = fuzzFormat(vm);
        virObjectUnref(vm);
        if (!(vm2 = fuzzParse(text)))
            abort();
        again = fuzzFormat(vm2);
        virObjectUnref(vm2);
        if (STRNEQ(text, again))
            abort();
    }
    virResetLastError();
    return 0;
}
