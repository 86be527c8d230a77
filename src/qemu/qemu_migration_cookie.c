/*
 * qemu_migration_cookie.c: the cookie Tandem's migration steps pass along
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include "qemu_migration_cookie.h"
#include "qemu_domain_parse.h"

#include "virbuffer.h"
#include "virerror.h"
#include "virlog.h"
#include "virstring.h"
#include "virutil.h"
#include "viruuid.h"
#include "virxml.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_migration_cookie");

#define QEMU_MIGRATION_COOKIE_VERSION 1

void
qemuMigrationCookieFree(qemuMigrationCookie *cookie)
{
    if (!cookie)
        return;
    g_free(cookie->name);
    g_free(cookie->hostname);
    virDomainDefFree(cookie->persistent);
    g_free(cookie->graphicsType);
    g_free(cookie->graphicsListen);
    g_strfreev(cookie->nbdDisks);
    g_free(cookie->nbdCapacities);
    g_free(cookie);
}

qemuMigrationCookie *
qemuMigrationCookieNew(const virDomainDef *def)
{
    g_autoptr(qemuMigrationCookie) cookie = g_new0(qemuMigrationCookie, 1);

    cookie->name = g_strdup(def->name);
    memcpy(cookie->uuid, def->uuid, VIR_UUID_BUFLEN);
    if (!(cookie->hostname = virGetHostname()))
        return NULL;
    if (virGetHostUUID(cookie->hostuuid) < 0)
        return NULL;

    return g_steal_pointer(&cookie);
}

int
qemuMigrationCookieFormat(qemuMigrationCookie *cookie,
                          virDomainXMLOption *xmlopt,
                          char **out,
                          int *outlen)
{
    g_auto(virBuffer) buf = VIR_BUFFER_INITIALIZER;
    char uuidstr[VIR_UUID_STRING_BUFLEN];

    if (!out)
        return 0;

    virBufferAsprintf(&buf, "<tandem-migration version='%d'>\n",
                      QEMU_MIGRATION_COOKIE_VERSION);
    virBufferAdjustIndent(&buf, 2);
    virBufferEscapeString(&buf, "<name>%s</name>\n", cookie->name);
    virUUIDFormat(cookie->uuid, uuidstr);
    virBufferAsprintf(&buf, "<uuid>%s</uuid>\n", uuidstr);
    virBufferEscapeString(&buf, "<hostname>%s</hostname>\n", cookie->hostname);
    virUUIDFormat(cookie->hostuuid, uuidstr);
    virBufferAsprintf(&buf, "<hostuuid>%s</hostuuid>\n", uuidstr);

    if (cookie->persistent) {
        g_autofree char *xml = virDomainDefFormat(cookie->persistent, xmlopt,
                                                  VIR_DOMAIN_DEF_FORMAT_SECURE |
                                                  VIR_DOMAIN_DEF_FORMAT_MIGRATABLE);

        if (!xml)
            return -1;
        virBufferAddLit(&buf, "<persistent>\n");
        virBufferAdjustIndent(&buf, 2);
        virBufferAddStr(&buf, xml);
        virBufferAdjustIndent(&buf, -2);
        virBufferAddLit(&buf, "</persistent>\n");
    }

    if (cookie->graphicsType) {
        virBufferEscapeString(&buf, "<graphics type='%s'", cookie->graphicsType);
        virBufferAsprintf(&buf, " port='%d'", cookie->graphicsPort);
        virBufferEscapeString(&buf, " listen='%s'", cookie->graphicsListen);
        virBufferAddLit(&buf, "/>\n");
    }

    if (cookie->haveStats)
        virBufferAsprintf(&buf,
                          "<statistics downtime='%llu' total='%llu' transferred='%llu'/>\n",
                          cookie->downtime, cookie->totalTime, cookie->transferred);

    if (cookie->haveNBD) {
        size_t i;

        virBufferAddLit(&buf, "<nbd");
        if (cookie->nbdPort)
            virBufferAsprintf(&buf, " port='%u'", cookie->nbdPort);
        virBufferAddLit(&buf, ">\n");
        virBufferAdjustIndent(&buf, 2);
        for (i = 0; cookie->nbdDisks && cookie->nbdDisks[i]; i++) {
            virBufferEscapeString(&buf, "<disk target='%s'", cookie->nbdDisks[i]);
            if (cookie->nbdCapacities && cookie->nbdCapacities[i])
                virBufferAsprintf(&buf, " capacity='%llu'", cookie->nbdCapacities[i]);
            virBufferAddLit(&buf, "/>\n");
        }
        virBufferAdjustIndent(&buf, -2);
        virBufferAddLit(&buf, "</nbd>\n");
    }

    virBufferAdjustIndent(&buf, -2);
    virBufferAddLit(&buf, "</tandem-migration>\n");

    *out = virBufferContentAndReset(&buf);
    *outlen = strlen(*out) + 1;
    return 0;
}

static int
qemuMigrationCookieParseUUID(xmlXPathContextPtr ctxt, const char *xpath,
                             const char *what, unsigned char *uuid)
{
    g_autofree char *str = virXPathString(xpath, ctxt);

    if (!str || virUUIDParse(str, uuid) < 0) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("migration cookie: missing or malformed %s"), what);
        return -1;
    }
    return 0;
}

static int
qemuMigrationCookieParseNBD(xmlXPathContextPtr ctxt, qemuMigrationCookie *cookie)
{
    g_autofree xmlNodePtr *nodes = NULL;
    unsigned int port = 0;
    int n;
    int i;

    if (virXPathBoolean("boolean(./nbd[1]/@port)", ctxt) == 1 &&
        (virXPathUInt("string(./nbd[1]/@port)", ctxt, &port) < 0 ||
         port == 0 || port > 65535)) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("migration cookie: invalid NBD server port"));
        return -1;
    }
    if ((n = virXPathNodeSet("./nbd[1]/disk", ctxt, &nodes)) < 0)
        return -1;
    cookie->haveNBD = true;
    cookie->nbdPort = port;
    cookie->nbdDisks = g_new0(char *, n + 1);
    cookie->nbdCapacities = g_new0(unsigned long long, n + 1);
    for (i = 0; i < n; i++) {
        char *target = virXMLPropString(nodes[i], "target");
        g_autofree char *capacity = virXMLPropString(nodes[i], "capacity");

        if (!target || !*target) {
            g_free(target);
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("migration cookie: NBD disk without a target"));
            return -1;
        }
        cookie->nbdDisks[i] = target;
        if (capacity &&
            virStrToLong_ullp(capacity, NULL, 10, &cookie->nbdCapacities[i]) < 0) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("migration cookie: invalid capacity of NBD disk '%s'"), target);
            return -1;
        }
    }
    return 0;
}

qemuMigrationCookie *
qemuMigrationCookieParse(const char *in, int inlen, virDomainXMLOption *xmlopt)
{
    g_autoptr(qemuMigrationCookie) cookie = g_new0(qemuMigrationCookie, 1);
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctxt = NULL;
    g_autofree char *text = NULL;
    xmlNodePtr node;
    unsigned int version = 0;

    if (!in || inlen <= 0 || !*in)
        return g_steal_pointer(&cookie);

    /* never trust the peer to terminate the string */
    text = g_strndup(in, inlen);
    if (!(doc = virXMLParseStringCtxt(text, _("(migration cookie)"), &ctxt)))
        return NULL;
    if (!virXMLNodeNameEqual(ctxt->node, "tandem-migration")) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("migration cookie from an unknown peer: root element <%s>"),
                       (const char *) ctxt->node->name);
        return NULL;
    }
    if (virXPathUInt("string(./@version)", ctxt, &version) < 0 ||
        version != QEMU_MIGRATION_COOKIE_VERSION) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("migration cookie version %u is not supported (expected %d)"),
                       version, QEMU_MIGRATION_COOKIE_VERSION);
        return NULL;
    }

    if (!(cookie->name = virXPathString("string(./name[1])", ctxt))) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("migration cookie: missing domain name"));
        return NULL;
    }
    if (qemuMigrationCookieParseUUID(ctxt, "string(./uuid[1])", _("domain uuid"),
                                     cookie->uuid) < 0 ||
        qemuMigrationCookieParseUUID(ctxt, "string(./hostuuid[1])", _("host uuid"),
                                     cookie->hostuuid) < 0)
        return NULL;
    cookie->hostname = virXPathString("string(./hostname[1])", ctxt);

    if ((node = virXPathNode("./persistent/domain[1]", ctxt))) {
        VIR_XPATH_NODE_AUTORESTORE(ctxt)

        ctxt->node = node;
        if (qemuDomainDefCheckVcpusNode(ctxt) < 0)
            return NULL;
        if (!(cookie->persistent = virDomainDefParseNode(ctxt, xmlopt, NULL,
                                                         VIR_DOMAIN_DEF_PARSE_INACTIVE |
                                                         VIR_DOMAIN_DEF_PARSE_SKIP_VALIDATE)))
            return NULL;
    }

    if ((cookie->graphicsType = virXPathString("string(./graphics[1]/@type)", ctxt))) {
        if (virXPathInt("string(./graphics[1]/@port)", ctxt, &cookie->graphicsPort) < 0)
            cookie->graphicsPort = -1;
        cookie->graphicsListen = virXPathString("string(./graphics[1]/@listen)", ctxt);
    }

    if (virXPathNode("./statistics[1]", ctxt)) {
        cookie->haveStats = true;
        virXPathULongLong("string(./statistics[1]/@downtime)", ctxt, &cookie->downtime);
        virXPathULongLong("string(./statistics[1]/@total)", ctxt, &cookie->totalTime);
        virXPathULongLong("string(./statistics[1]/@transferred)", ctxt, &cookie->transferred);
    }

    if (virXPathNode("./nbd[1]", ctxt) &&
        qemuMigrationCookieParseNBD(ctxt, cookie) < 0)
        return NULL;

    return g_steal_pointer(&cookie);
}
