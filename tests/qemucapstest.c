/*
 * qemucapstest.c: unit tests for qemu_capabilities.c: parsing recorded QMP
 * replies, machine lookup, <capabilities> and <domainCapabilities>, the
 * capabilities cache (hit, invalidation, corruption) and real probes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: qemucapstest                      run the tests
 *        qemucapstest --record DIR [QEMU]  probe QEMU, store its replies in DIR
 */

#include <config.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu_capabilities.h"
#include "virerror.h"
#include "virfile.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

#define TEST_QEMU "/usr/bin/qemu-system-x86_64"
#define TEST_DATA "tests/qemucapsdata/qemu-7.2-x86_64"

static int testFailures;
static char *testTmpDir;
static GHashTable *testReplies;   /* the recorded ones */

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "#   %s:%d: check failed: %s\n", \
                    __FILE__, __LINE__, #cond); \
            return -1; \
        } \
    } while (0)

static void
testRun(const char *name, int (*fn)(void))
{
    int rc;

    virResetLastError();
    rc = fn();
    if (rc < 0) {
        const char *msg = virGetLastErrorMessage();

        if (msg && *msg && STRNEQ(msg, "no error"))
            fprintf(stderr, "#   last error: %s\n", msg);
        testFailures++;
    }
    printf("%s - %s\n", rc < 0 ? "not ok" : "ok", name);
    fflush(stdout);
}

static void
testSkip(const char *name, const char *why)
{
    printf("ok - %s # SKIP %s\n", name, why);
    fflush(stdout);
}

static GHashTable *
testLoadReplies(const char *dir)
{
    g_autoptr(GHashTable) replies = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                          g_free, g_free);
    g_autoptr(GDir) d = NULL;
    const char *ent;

    if (!(d = g_dir_open(dir, 0, NULL)))
        return NULL;
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, ent, NULL);
        char *data = NULL;

        if (!g_str_has_suffix(ent, ".json") ||
            !g_file_get_contents(path, &data, NULL, NULL))
            continue;
        g_hash_table_insert(replies, g_strndup(ent, strlen(ent) - 5), data);
    }
    return g_steal_pointer(&replies);
}

static GHashTable *
testCopyReplies(void)
{
    GHashTable *copy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTableIter iter;
    gpointer k;
    gpointer v;

    g_hash_table_iter_init(&iter, testReplies);
    while (g_hash_table_iter_next(&iter, &k, &v))
        g_hash_table_insert(copy, g_strdup(k), g_strdup(v));
    return copy;
}

static bool
testHasMachine(qemuCaps *caps, const char *name, unsigned int maxCpus)
{
    size_t i;

    for (i = 0; i < caps->nmachines; i++) {
        if (STREQ(caps->machines[i].name, name))
            return caps->machines[i].maxCpus == maxCpus;
    }
    return false;
}

/* ---- parsing recorded replies ---------------------------------------- */

static int
testParseRecorded(void)
{
    g_autoptr(qemuCaps) caps = qemuCapsNewFromReplies(TEST_QEMU, testReplies);
    size_t i;
    bool usableKnown = false;

    CHECK(caps);
    CHECK(caps->version / 1000 == 7002);
    CHECK(caps->package && strstr(caps->package, "Debian"));
    CHECK(caps->arch == VIR_ARCH_X86_64);
    CHECK(STREQ(caps->binary, TEST_QEMU));
    CHECK(caps->nmachines > 10);
    CHECK(testHasMachine(caps, "pc-i440fx-7.2", 255));
    CHECK(testHasMachine(caps, "pc-q35-7.2", 288));
    CHECK(testHasMachine(caps, "isapc", 1));
    CHECK(!testHasMachine(caps, "none", 1));
    /* the default machine is listed first */
    CHECK(caps->machines[0].isDefault);
    for (i = 1; i < caps->nmachines; i++)
        CHECK(!caps->machines[i].isDefault);
    CHECK(qemuCapsHasDevice(caps, "virtio-blk-pci"));
    CHECK(qemuCapsHasDevice(caps, "VGA"));
    CHECK(!qemuCapsHasDevice(caps, "no-such-device"));
    CHECK(qemuCapsHasCommand(caps, "query-kvm"));
    CHECK(qemuCapsHasCommand(caps, "quit"));
    CHECK(!qemuCapsHasCommand(caps, "no-such-command"));
    CHECK(qemuCapsHasCPUModel(caps, "qemu64"));
    CHECK(qemuCapsHasCPUModel(caps, "max"));
    CHECK(caps->ncpuModelInfo == g_strv_length(caps->cpuModels));
    for (i = 0; i < caps->ncpuModelInfo; i++) {
        if (caps->cpuModelInfo[i].usable != VIR_DOMCAPS_CPU_USABLE_UNKNOWN)
            usableKnown = true;
    }
    CHECK(usableKnown);
    return 0;
}

static int
testMachineLookup(void)
{
    g_autoptr(qemuCaps) caps = qemuCapsNewFromReplies(TEST_QEMU, testReplies);

    CHECK(caps);
    CHECK(STREQ_NULLABLE(qemuCapsGetDefaultMachine(caps), "pc-i440fx-7.2"));
    CHECK(STREQ_NULLABLE(qemuCapsGetCanonicalMachine(caps, "pc"), "pc-i440fx-7.2"));
    CHECK(STREQ_NULLABLE(qemuCapsGetCanonicalMachine(caps, "q35"), "pc-q35-7.2"));
    CHECK(STREQ_NULLABLE(qemuCapsGetCanonicalMachine(caps, "pc-q35-7.2"), "pc-q35-7.2"));
    CHECK(STREQ_NULLABLE(qemuCapsGetCanonicalMachine(caps, "pc-i440fx-2.0"), "pc-i440fx-2.0"));
    CHECK(qemuCapsGetCanonicalMachine(caps, "no-such-machine") == NULL);
    CHECK(qemuCapsGetCanonicalMachine(caps, "none") == NULL);
    return 0;
}

/* Replace the reply to @cmd (NULL: remove it) and parse. */
static qemuCaps *
testParseWith(const char *cmd, const char *reply)
{
    g_autoptr(GHashTable) replies = testCopyReplies();

    if (reply)
        g_hash_table_insert(replies, g_strdup(cmd), g_strdup(reply));
    else
        g_hash_table_remove(replies, cmd);
    virResetLastError();
    return qemuCapsNewFromReplies(TEST_QEMU, replies);
}

static int
testParseBad(void)
{
    qemuCaps *caps;

    /* required replies: missing, garbage, wrong type, error */
    CHECK(!(caps = testParseWith("query-version", NULL)));
    CHECK(strstr(virGetLastErrorMessage(), "query-version"));
    CHECK(!(caps = testParseWith("query-machines", "{\"return\": [{\"na")));
    CHECK(strstr(virGetLastErrorMessage(), "malformed reply to 'query-machines'"));
    CHECK(!(caps = testParseWith("query-machines", "[1, 2]")));
    CHECK(!(caps = testParseWith("query-machines", "{\"return\": {}}")));
    CHECK(!(caps = testParseWith("query-machines", "{\"return\": []}")));
    CHECK(!(caps = testParseWith("query-machines", "{\"return\": [{\"cpu-max\": 1}]}")));
    CHECK(!(caps = testParseWith("query-target", "{\"return\": {\"arch\": \"pdp11\"}}")));
    CHECK(!(caps = testParseWith("query-version", "{\"return\": {\"qemu\": {\"major\": \"7\"}}}")));
    CHECK(!(caps = testParseWith("qom-list-types",
                                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}}")));
    CHECK(strstr(virGetLastErrorMessage(), "boom"));

    /* optional replies: an error or no reply is fine */
    CHECK((caps = testParseWith("query-kvm",
                                "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}")));
    CHECK(!caps->kvmAvailable);
    virObjectUnref(caps);
    CHECK((caps = testParseWith("query-kvm", "{\"return\": {\"enabled\": false, \"present\": true}}")));
    CHECK(!caps->kvmAvailable);
    virObjectUnref(caps);
    CHECK((caps = testParseWith("query-kvm", "{\"return\": {\"enabled\": true, \"present\": true}}")));
    CHECK(caps->kvmAvailable);
    virObjectUnref(caps);
    CHECK((caps = testParseWith("query-cpu-definitions", NULL)));
    CHECK(caps->cpuModels && !caps->cpuModels[0]);
    virObjectUnref(caps);
    CHECK((caps = testParseWith("query-target", "{\"return\": {\"arch\": \"i386\"}}")));
    CHECK(caps->arch == VIR_ARCH_I686);
    virObjectUnref(caps);
    return 0;
}

/* ---- <capabilities> and <domainCapabilities> ------------------------- */

static int
testGuestCaps(void)
{
    g_autoptr(qemuCaps) qcaps = testParseWith("query-kvm",
                                              "{\"return\": {\"enabled\": true, \"present\": true}}");
    g_autoptr(virCaps) caps = NULL;
    g_autofree char *xml = NULL;

    CHECK(qcaps);
    CHECK((caps = virCapabilitiesNew(VIR_ARCH_X86_64, false, false)));
    CHECK(qemuCapsInitGuest(qcaps, caps) == 0);
    CHECK(caps->nguests == 2);
    CHECK((xml = virCapabilitiesFormatXML(caps)));
    CHECK(strstr(xml, "<arch name='x86_64'>"));
    CHECK(strstr(xml, "<arch name='i686'>"));
    CHECK(strstr(xml, "<emulator>" TEST_QEMU "</emulator>"));
    CHECK(strstr(xml,
                 "      <machine maxCpus='255'>pc-i440fx-7.2</machine>\n"
                 "      <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>\n"));
    CHECK(strstr(xml,
                 "      <machine maxCpus='288'>pc-q35-7.2</machine>\n"
                 "      <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>\n"));
    CHECK(strstr(xml, "deprecated='yes'"));
    CHECK(strstr(xml, "<domain type='qemu'/>"));
    CHECK(strstr(xml, "<domain type='kvm'/>"));
    CHECK(strstr(xml, "<acpi default='on' toggle='yes'/>"));
    CHECK(strstr(xml, "<nonpae/>"));
    CHECK(strstr(xml, "<disksnapshot default='on' toggle='no'/>"));
    CHECK(!strstr(xml, ">none</machine>"));
    return 0;
}

static int
testGuestCapsNoKVM(void)
{
    g_autoptr(qemuCaps) qcaps = testParseWith("query-kvm",
                                              "{\"return\": {\"enabled\": false, \"present\": false}}");
    g_autoptr(virCaps) caps = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(virDomainCaps) domCaps = NULL;

    CHECK(qcaps);
    CHECK((caps = virCapabilitiesNew(VIR_ARCH_X86_64, false, false)));
    CHECK(qemuCapsInitGuest(qcaps, caps) == 0);
    CHECK((xml = virCapabilitiesFormatXML(caps)));
    CHECK(strstr(xml, "<domain type='qemu'/>"));
    CHECK(!strstr(xml, "<domain type='kvm'/>"));
    CHECK(!(domCaps = qemuCapsGetDomainCaps(qcaps, "pc", VIR_DOMAIN_VIRT_KVM)));
    return 0;
}

static int
testDomainCaps(void)
{
    g_autoptr(qemuCaps) qcaps = testParseWith("query-kvm",
                                              "{\"return\": {\"enabled\": true, \"present\": true}}");
    g_autoptr(virDomainCaps) pc = NULL;
    g_autoptr(virDomainCaps) q35 = NULL;
    g_autoptr(virDomainCaps) tcg = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *xml35 = NULL;
    g_autofree char *xmltcg = NULL;

    CHECK(qcaps);
    CHECK((pc = qemuCapsGetDomainCaps(qcaps, "pc-i440fx-7.2", VIR_DOMAIN_VIRT_KVM)));
    CHECK((xml = virDomainCapsFormat(pc)));
    CHECK(strstr(xml, "<domain>kvm</domain>"));
    CHECK(strstr(xml, "<machine>pc-i440fx-7.2</machine>"));
    CHECK(strstr(xml, "<vcpu max='255'/>"));
    CHECK(strstr(xml, "<value>bios</value>"));
    CHECK(strstr(xml, "<mode name='host-passthrough' supported='yes'>"));
    CHECK(strstr(xml, "<mode name='maximum' supported='yes'>"));
    CHECK(strstr(xml, "<mode name='custom' supported='yes'>"));
    CHECK(strstr(xml, ">qemu64</model>"));
    CHECK(!strstr(xml, ">qemu64-v1</model>"));
    CHECK(!strstr(xml, ">host</model>"));
    CHECK(strstr(xml, "<disk supported='yes'>"));
    CHECK(strstr(xml, "<value>cdrom</value>"));
    CHECK(strstr(xml, "<value>ide</value>"));
    CHECK(strstr(xml, "<value>virtio</value>"));
    CHECK(strstr(xml, "<value>vnc</value>"));
    CHECK(strstr(xml, "<value>vga</value>"));
    CHECK(strstr(xml, "<hostdev supported='no'/>"));
    CHECK(strstr(xml, "<rng supported='yes'>"));
    CHECK(strstr(xml, "<value>random</value>"));

    /* aliases resolve; q35 has SATA but no IDE */
    CHECK((q35 = qemuCapsGetDomainCaps(qcaps, "q35", VIR_DOMAIN_VIRT_KVM)));
    CHECK((xml35 = virDomainCapsFormat(q35)));
    CHECK(strstr(xml35, "<machine>pc-q35-7.2</machine>"));
    CHECK(strstr(xml35, "<vcpu max='288'/>"));
    CHECK(strstr(xml35, "<value>sata</value>"));
    CHECK(!strstr(xml35, "<value>ide</value>"));

    /* TCG: no host-passthrough, CPU usability unknown (probed with KVM) */
    CHECK((tcg = qemuCapsGetDomainCaps(qcaps, NULL, VIR_DOMAIN_VIRT_QEMU)));
    CHECK((xmltcg = virDomainCapsFormat(tcg)));
    CHECK(strstr(xmltcg, "<domain>qemu</domain>"));
    CHECK(strstr(xmltcg, "<machine>pc-i440fx-7.2</machine>"));
    CHECK(strstr(xmltcg, "<mode name='host-passthrough' supported='no'/>"));
    CHECK(strstr(xmltcg, "usable='unknown'"));
    CHECK(!strstr(xmltcg, "usable='yes'"));

    CHECK(!qemuCapsGetDomainCaps(qcaps, "no-such-machine", VIR_DOMAIN_VIRT_QEMU));
    return 0;
}

/* ---- the cache, with a wrapper script that counts its runs ----------- */

static char *testWrapper;
static char *testCountFile;
static char *testCacheDir;
static char *testRunDir;

static int
testProbeCount(void)
{
    g_autofree char *data = NULL;
    int n = 0;
    char *p;

    if (!g_file_get_contents(testCountFile, &data, NULL, NULL))
        return 0;
    for (p = data; *p; p++) {
        if (*p == '\n')
            n++;
    }
    return n;
}

static int
testWriteScript(const char *path, const char *body)
{
    g_autofree char *script = g_strdup_printf("#!/bin/sh\n%s", body);

    if (!g_file_set_contents(path, script, -1, NULL) ||
        chmod(path, 0755) < 0)
        return -1;
    return 0;
}

static int
testWriteWrapper(const char *extra)
{
    g_autofree char *body = g_strdup_printf("echo probe >> '%s'\n%s"
                                            "exec " TEST_QEMU " \"$@\"\n",
                                            testCountFile, extra);

    return testWriteScript(testWrapper, body);
}

static char *
testCacheFile(void)
{
    g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
                                                         testWrapper, -1);
    g_autofree char *name = g_strdup_printf("%s.json", sum);

    return g_build_filename(testCacheDir, "capabilities", name, NULL);
}

static int
testCacheMiss(void)
{
    g_autoptr(qemuCaps) caps = NULL;
    g_autofree char *file = testCacheFile();

    CHECK(testWriteWrapper("") == 0);
    CHECK((caps = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 1);
    CHECK(STREQ(caps->binary, testWrapper));
    CHECK(caps->version / 1000 == 7002);
    CHECK(qemuCapsGetCanonicalMachine(caps, "pc"));
    CHECK(virFileExists(file));
    return 0;
}

static int
testCacheHitMemory(void)
{
    g_autoptr(qemuCaps) a = NULL;
    g_autoptr(qemuCaps) b = NULL;

    CHECK((a = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK((b = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(a == b);
    CHECK(testProbeCount() == 1);
    return 0;
}

static int
testCacheHitFile(void)
{
    g_autoptr(qemuCaps) caps = NULL;

    qemuCapsCacheFlush();
    CHECK((caps = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 1);
    CHECK(caps->version / 1000 == 7002);
    CHECK(caps->arch == VIR_ARCH_X86_64);
    CHECK(STREQ_NULLABLE(qemuCapsGetCanonicalMachine(caps, "q35"), "pc-q35-7.2"));
    CHECK(qemuCapsHasDevice(caps, "virtio-blk-pci"));
    return 0;
}

static int
testCacheInvalidateMtime(void)
{
    g_autoptr(qemuCaps) caps = NULL;
    g_autoptr(qemuCaps) again = NULL;
    struct stat sb;
    struct timespec times[2];

    CHECK(stat(testWrapper, &sb) == 0);
    times[0] = sb.st_atim;
    times[1] = sb.st_mtim;
    times[1].tv_sec += 10;      /* same size, new mtime */
    CHECK(utimensat(AT_FDCWD, testWrapper, times, 0) == 0);

    CHECK((caps = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 2);
    /* and the rewritten file is good for a new process */
    qemuCapsCacheFlush();
    CHECK((again = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 2);
    return 0;
}

static int
testCacheInvalidateSize(void)
{
    g_autoptr(qemuCaps) caps = NULL;
    struct stat sb;
    struct timespec times[2];

    /* a different size, with the old mtime put back */
    CHECK(stat(testWrapper, &sb) == 0);
    CHECK(testWriteWrapper("# a longer script\n") == 0);
    times[0] = sb.st_atim;
    times[1] = sb.st_mtim;
    CHECK(utimensat(AT_FDCWD, testWrapper, times, 0) == 0);

    CHECK((caps = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 3);
    return 0;
}

static int
testCacheCorrupt(void)
{
    g_autofree char *file = testCacheFile();
    g_autofree char *data = NULL;
    g_autoptr(qemuCaps) caps = NULL;
    g_autoptr(qemuCaps) again = NULL;

    /* not JSON */
    CHECK(g_file_set_contents(file, "{\"format\": 1, \"replies\": {\"query-ver", -1, NULL));
    qemuCapsCacheFlush();
    CHECK((caps = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 4);
    CHECK(g_file_get_contents(file, &data, NULL, NULL));
    CHECK(strstr(data, "\"replies\""));
    g_clear_pointer(&caps, virObjectUnref);

    /* valid JSON with the right key, but replies that do not parse */
    g_clear_pointer(&data, g_free);
    CHECK(g_file_get_contents(file, &data, NULL, NULL));
    {
        g_autofree char *bad = NULL;
        char *p = strstr(data, "\"query-machines\"");

        CHECK(p);
        p = strchr(p + strlen("\"query-machines\""), '"');
        CHECK(p);
        *p = '\0';
        bad = g_strdup_printf("%s\"{\\\"return\\\": 42}\"\n}}\n", data);
        /* drop whatever followed query-machines: still valid JSON */
        CHECK(g_file_set_contents(file, bad, -1, NULL));
    }
    qemuCapsCacheFlush();
    CHECK((caps = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 5);

    qemuCapsCacheFlush();
    CHECK((again = qemuCapsCacheLookup(testCacheDir, testWrapper, testRunDir, (uid_t) -1, (gid_t) -1)));
    CHECK(testProbeCount() == 5);
    return 0;
}

/* ---- probe errors ------------------------------------------------------ */

static int
testProbeMissing(void)
{
    g_autofree char *path = g_build_filename(testTmpDir, "no-such-qemu", NULL);

    CHECK(!qemuCapsProbe(path, testRunDir));
    CHECK(strstr(virGetLastErrorMessage(), "cannot find QEMU binary"));
    CHECK(!qemuCapsCacheLookup(testCacheDir, path, testRunDir, (uid_t) -1, (gid_t) -1));
    CHECK(!qemuCapsProbe("relative/qemu", testRunDir));
    return 0;
}

static int
testProbeNotExecutable(void)
{
    g_autofree char *path = g_build_filename(testTmpDir, "not-executable", NULL);

    CHECK(g_file_set_contents(path, "#!/bin/sh\n", -1, NULL));
    CHECK(chmod(path, 0644) == 0);
    CHECK(!qemuCapsProbe(path, testRunDir));
    CHECK(strstr(virGetLastErrorMessage(), "not an executable"));
    return 0;
}

static int
testProbeEarlyExit(void)
{
    g_autofree char *path = g_build_filename(testTmpDir, "early-exit", NULL);
    const char *msg;

    CHECK(testWriteScript(path,
                          "echo 'line one' >&2\n"
                          "echo 'qemu: could not load the thing' >&2\n"
                          "exit 3\n") == 0);
    CHECK(!qemuCapsProbe(path, testRunDir));
    msg = virGetLastErrorMessage();
    CHECK(strstr(msg, "exited with status 3"));
    CHECK(strstr(msg, "could not load the thing"));
    return 0;
}

/* Writes garbage on the monitor file descriptor it was given. */
static int
testProbeGarbage(void)
{
    g_autofree char *path = g_build_filename(testTmpDir, "garbage", NULL);

    CHECK(testWriteScript(path,
                          "for a; do case \"$a\" in socket,*fd=*) fd=${a##*fd=};; esac; done\n"
                          "eval \"echo 'this is not QMP' >&$fd\"\n"
                          "exec sleep 10\n") == 0);
    CHECK(!qemuCapsProbe(path, testRunDir));
    CHECK(strstr(virGetLastErrorMessage(), "garbage"));
    return 0;
}

/* Says nothing at all: the deadline must fire and the process must go. */
static int
testProbeTimeout(void)
{
    g_autofree char *path = g_build_filename(testTmpDir, "silent", NULL);
    gint64 start = g_get_monotonic_time();
    qemuCaps *caps;

    CHECK(testWriteScript(path, "exec sleep 30\n") == 0);
    qemuCapsSetProbeTimeout(300);
    caps = qemuCapsProbe(path, testRunDir);
    qemuCapsSetProbeTimeout(0);
    CHECK(!caps);
    CHECK(strstr(virGetLastErrorMessage(), "did not answer"));
    CHECK(g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC);
    return 0;
}

/* ---- the real thing ---------------------------------------------------- */

static int
testProbeReal(void)
{
    g_autoptr(qemuCaps) caps = NULL;

    CHECK((caps = qemuCapsProbe(TEST_QEMU, testRunDir)));
    CHECK(caps->version / 1000 == 7002);
    CHECK(caps->arch == VIR_ARCH_X86_64);
    CHECK(testHasMachine(caps, "pc-i440fx-7.2", 255));
    CHECK(STREQ_NULLABLE(qemuCapsGetCanonicalMachine(caps, "pc"), "pc-i440fx-7.2"));
    CHECK(qemuCapsHasDevice(caps, "virtio-blk-pci"));
    CHECK(qemuCapsHasCommand(caps, "query-machines"));
    CHECK(caps->size > 0 && caps->mtime > 0);
    fprintf(stderr, "#   probed %s: version %u, kvm %s\n", TEST_QEMU,
            caps->version, caps->kvmAvailable ? "available" : "not available");
    return 0;
}

/* Probed as another user (nobody), from a directory that user cannot
 * reach: QEMU runs as that user, and KVM counts as available only when
 * that user may open /dev/kvm. */
static int
testProbeAsUser(void)
{
    g_autoptr(GHashTable) replies = NULL;
    g_autoptr(qemuCaps) caps = NULL;
    struct passwd *pw = getpwnam("nobody");
    bool kvmOpen;
    pid_t pid;
    int status = 0;

    if (geteuid() != 0 || !pw) {
        fprintf(stderr, "#   skipped: needs root and a user 'nobody'\n");
        return 0;
    }
    /* can nobody open /dev/kvm? (asked by a child that becomes nobody) */
    if ((pid = fork()) == 0) {
        int fd;

        if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(2);
        fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        _exit(fd >= 0 ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
          WEXITSTATUS(status) != 2);
    kvmOpen = WEXITSTATUS(status) == 0;

    CHECK((replies = qemuCapsProbeRepliesAs(TEST_QEMU, testRunDir, pw->pw_uid, pw->pw_gid)));
    CHECK((caps = qemuCapsNewFromReplies(TEST_QEMU, replies)));
    fprintf(stderr, "#   as nobody: /dev/kvm %s, kvm %s\n", kvmOpen ? "opens" : "does not open",
            caps->kvmAvailable ? "available" : "not available");
    if (!kvmOpen)
        CHECK(!caps->kvmAvailable);
    return 0;
}

/* Every QEMU (and script) a probe started has been reaped. */
static int
testNoLeftovers(void)
{
    g_autoptr(GDir) d = NULL;

    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
    /* and the private probe directories are gone */
    CHECK((d = g_dir_open(testRunDir, 0, NULL)));
    CHECK(g_dir_read_name(d) == NULL);
    return 0;
}

/* ---- recording test data ---------------------------------------------- */

static int
testRecord(const char *dir, const char *binary)
{
    g_autoptr(GHashTable) replies = NULL;
    g_autofree char *tmp = g_dir_make_tmp("qemucapsrecord-XXXXXX", NULL);
    GHashTableIter iter;
    gpointer k;
    gpointer v;

    if (!tmp || g_mkdir_with_parents(dir, 0755) < 0) {
        fprintf(stderr, "cannot create directories\n");
        return EXIT_FAILURE;
    }
    replies = qemuCapsProbeReplies(binary, tmp);
    virFileDeleteTree(tmp);
    if (!replies) {
        fprintf(stderr, "probe failed: %s\n", virGetLastErrorMessage());
        return EXIT_FAILURE;
    }
    g_hash_table_iter_init(&iter, replies);
    while (g_hash_table_iter_next(&iter, &k, &v)) {
        g_autofree char *name = g_strdup_printf("%s.json", (char *)k);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *data = g_strdup_printf("%s\n", (char *)v);

        if (!g_file_set_contents(path, data, -1, NULL)) {
            fprintf(stderr, "cannot write %s\n", path);
            return EXIT_FAILURE;
        }
        printf("wrote %s\n", path);
    }
    return EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
    const char *srcdir = getenv("abs_top_srcdir");
    g_autofree char *datadir = NULL;

    if (virInitialize() < 0) {
        fprintf(stderr, "virInitialize failed\n");
        return EXIT_FAILURE;
    }

    if (argc >= 3 && STREQ(argv[1], "--record"))
        return testRecord(argv[2], argc >= 4 ? argv[3] : TEST_QEMU);

    datadir = g_build_filename(srcdir ? srcdir : ".", TEST_DATA, NULL);
    if (!(testReplies = testLoadReplies(datadir)) ||
        g_hash_table_size(testReplies) == 0) {
        printf("not ok - load recorded replies from %s\n", datadir);
        return EXIT_FAILURE;
    }

    testRun("parse recorded replies", testParseRecorded);
    testRun("canonical, alias and default machine lookup", testMachineLookup);
    testRun("bad and optional replies", testParseBad);
    testRun("guest capabilities", testGuestCaps);
    testRun("guest capabilities without KVM", testGuestCapsNoKVM);
    testRun("domain capabilities", testDomainCaps);

    if (!virFileIsExecutable(TEST_QEMU)) {
        testSkip("probing and caching", TEST_QEMU " is not installed");
    } else if (!(testTmpDir = g_dir_make_tmp("qemucapstest-XXXXXX", NULL))) {
        printf("not ok - create a temporary directory\n");
        testFailures++;
    } else {
        testWrapper = g_build_filename(testTmpDir, "qemu-wrapper", NULL);
        testCountFile = g_build_filename(testTmpDir, "probes", NULL);
        testCacheDir = g_build_filename(testTmpDir, "cache", NULL);
        testRunDir = g_build_filename(testTmpDir, "run", NULL);
        g_mkdir_with_parents(testRunDir, 0700);

        testRun("cache miss probes and stores", testCacheMiss);
        testRun("cache hit in memory", testCacheHitMemory);
        testRun("cache hit from file", testCacheHitFile);
        testRun("cache invalidated by mtime", testCacheInvalidateMtime);
        testRun("cache invalidated by size", testCacheInvalidateSize);
        testRun("corrupt cache file is replaced", testCacheCorrupt);
        testRun("probe: missing binary", testProbeMissing);
        testRun("probe: not executable", testProbeNotExecutable);
        testRun("probe: QEMU exits early", testProbeEarlyExit);
        testRun("probe: garbage on the monitor", testProbeGarbage);
        testRun("probe: deadline", testProbeTimeout);
        testRun("probe: real " TEST_QEMU, testProbeReal);
        testRun("probe: as another user, KVM that user's", testProbeAsUser);
        testRun("no processes or directories left behind", testNoLeftovers);

        qemuCapsCacheFlush();
        virFileDeleteTree(testTmpDir);
    }

    g_hash_table_unref(testReplies);
    return testFailures ? EXIT_FAILURE : EXIT_SUCCESS;
}
