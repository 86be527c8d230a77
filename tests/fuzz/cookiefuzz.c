/*
 * cookiefuzz.c: libFuzzer target for the migration cookie parser
 * (qemuMigrationCookieParse, qemuMigrationCookieFormat)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is a cookie as a migration peer sends it: bytes of any length,
 * not necessarily NUL-terminated.  What parses must format, and the
 * formatted cookie must parse back to the same values.  The definition
 * parser gets a bare virDomainXMLOption (no driver callbacks).
 * Build and run: make fuzz-cookie FUZZ_SECONDS=60
 */
#include <config.h>

#include <stdint.h>

#include "qemu_migration_cookie.h"
#include "virerror.h"
#include "virlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static virDomainXMLOption *fuzzXMLOpt;

static void
fuzzRoundTrip(qemuMigrationCookie *cookie)
{
    g_autoptr(qemuMigrationCookie) again = NULL;
    g_autofree char *out = NULL;
    int outlen = 0;

    if (qemuMigrationCookieFormat(cookie, fuzzXMLOpt, &out, &outlen) < 0) {
        /* only libvirt's definition formatter may refuse what it parsed */
        if (!cookie->persistent)
            abort();
        return;
    }
    if (!out || outlen != (int) strlen(out) + 1)
        abort();
    if (!(again = qemuMigrationCookieParse(out, outlen, fuzzXMLOpt))) {
        if (!cookie->persistent)
            abort();
        return;
    }
    if (memcmp(again->uuid, cookie->uuid, VIR_UUID_BUFLEN) != 0 ||
        memcmp(again->hostuuid, cookie->hostuuid, VIR_UUID_BUFLEN) != 0 ||
        !again->name ||
        again->haveStats != cookie->haveStats ||
        again->downtime != cookie->downtime ||
        again->totalTime != cookie->totalTime ||
        again->transferred != cookie->transferred ||
        !again->graphicsType != !cookie->graphicsType ||
        (cookie->graphicsType && again->graphicsPort != cookie->graphicsPort) ||
        !again->persistent != !cookie->persistent ||
        again->haveNBD != cookie->haveNBD ||
        again->nbdPort != cookie->nbdPort ||
        !again->nbdDisks != !cookie->nbdDisks)
        abort();
    if (cookie->nbdDisks) {
        size_t i;

        for (i = 0; cookie->nbdDisks[i]; i++) {
            if (STRNEQ_NULLABLE(again->nbdDisks[i], cookie->nbdDisks[i]) ||
                again->nbdCapacities[i] != cookie->nbdCapacities[i])
                abort();
        }
        if (again->nbdDisks[i])
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(qemuMigrationCookie) cookie = NULL;

    if (!fuzzXMLOpt) {
        if (virInitialize() < 0)
            abort();
        /* parse errors are expected by the thousand: keep them quiet */
        virLogSetDefaultPriority(VIR_LOG_ERROR);
        ignore_value(virLogSetOutputs("4:file:/dev/null"));
        if (!(fuzzXMLOpt = virDomainXMLOptionNew(NULL, NULL, NULL, NULL, NULL, NULL)))
            abort();
    }
    if (size > INT_MAX)
        return 0;

    /* the peer's buffer is exactly @size bytes: a copy lets ASan see overreads */
    {
        g_autofree char *in = g_memdup2(data, size);

        /* an empty input is an empty cookie, which is never formatted */
        if ((cookie = qemuMigrationCookieParse(in, size, fuzzXMLOpt)) && cookie->name)
            fuzzRoundTrip(cookie);
    }
    virResetLastError();
    return 0;
}
