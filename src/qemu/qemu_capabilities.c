/* placeholder: replaced by the QMP probing implementation */
#include <config.h>
#include "qemu_capabilities.h"
#include "virerror.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

static virClass *qemuCapsClass;
static void qemuCapsDispose(void *obj);
static int qemuCapsOnceInit(void)
{
    if (!VIR_CLASS_NEW(qemuCaps, virClassForObject()))
        return -1;
    return 0;
}
VIR_ONCE_GLOBAL_INIT(qemuCaps);

static void
qemuCapsDispose(void *obj)
{
    qemuCaps *caps = obj;
    size_t i;

    for (i = 0; i < caps->nmachines; i++) {
        g_free(caps->machines[i].name);
        g_free(caps->machines[i].alias);
    }
    g_free(caps->machines);
    g_free(caps->binary);
    g_free(caps->package);
    g_strfreev(caps->cpuModels);
    g_strfreev(caps->devices);
    g_strfreev(caps->commands);
}

qemuCaps *
qemuCapsProbe(const char *binary, const char *tmpDir G_GNUC_UNUSED)
{
    qemuCaps *caps;

    if (qemuCapsInitialize() < 0)
        return NULL;
    if (!(caps = virObjectNew(qemuCapsClass)))
        return NULL;
    caps->binary = g_strdup(binary);
    caps->version = 7002000;
    caps->arch = VIR_ARCH_X86_64;
    caps->nmachines = 2;
    caps->machines = g_new0(qemuCapsMachine, 2);
    caps->machines[0].name = g_strdup("pc-i440fx-7.2");
    caps->machines[0].alias = g_strdup("pc");
    caps->machines[0].isDefault = true;
    caps->machines[0].maxCpus = 255;
    caps->machines[1].name = g_strdup("pc-q35-7.2");
    caps->machines[1].alias = g_strdup("q35");
    caps->machines[1].maxCpus = 288;
    return caps;
}

qemuCaps *
qemuCapsCacheLookup(const char *cacheDir G_GNUC_UNUSED, const char *binary,
                    const char *tmpDir)
{
    return qemuCapsProbe(binary, tmpDir);
}

const char *
qemuCapsGetDefaultMachine(qemuCaps *caps)
{
    size_t i;
    for (i = 0; i < caps->nmachines; i++)
        if (caps->machines[i].isDefault)
            return caps->machines[i].name;
    return caps->nmachines ? caps->machines[0].name : NULL;
}

const char *
qemuCapsGetCanonicalMachine(qemuCaps *caps, const char *name)
{
    size_t i;
    for (i = 0; i < caps->nmachines; i++) {
        if (STREQ(caps->machines[i].name, name) ||
            STREQ_NULLABLE(caps->machines[i].alias, name))
            return caps->machines[i].name;
    }
    return NULL;
}

int
qemuCapsInitGuest(qemuCaps *qcaps, virCaps *caps)
{
    virCapsGuest *guest;
    virCapsGuestMachine **machines = g_new0(virCapsGuestMachine *, qcaps->nmachines);
    size_t i;

    for (i = 0; i < qcaps->nmachines; i++) {
        machines[i] = g_new0(virCapsGuestMachine, 1);
        machines[i]->name = g_strdup(qcaps->machines[i].name);
        machines[i]->maxCpus = qcaps->machines[i].maxCpus;
    }
    guest = virCapabilitiesAddGuest(caps, VIR_DOMAIN_OSTYPE_HVM, qcaps->arch,
                                    qcaps->binary, NULL, qcaps->nmachines, machines);
    virCapabilitiesAddGuestDomain(guest, VIR_DOMAIN_VIRT_QEMU, NULL, NULL, 0, NULL);
    return 0;
}

virDomainCaps *
qemuCapsGetDomainCaps(qemuCaps *qcaps, const char *machine, virDomainVirtType virttype)
{
    return virDomainCapsNew(qcaps->binary, machine, qcaps->arch, virttype);
}
