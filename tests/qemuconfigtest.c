/*
 * qemuconfigtest.c: unit tests of qemu.conf parsing (src/qemu/qemu_config.c)
 *
 * Prints one line per sub-test, "ok - NAME" or "not ok - NAME" followed by
 * "#" lines explaining the failure; exits 0 when every sub-test passed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <unistd.h>

#include "qemu_config.h"
#include "virerror.h"
#include "virlog.h"

/* Every key of qemu.conf, as documented in the shipped sample. */
static const char *const testAllKeys[] = {
    "job_wait_timeout", "monitor_timeout_query", "monitor_timeout_modify",
    "monitor_timeout_long", "agent_timeout", "destroy_timeout",
    "migration_port_min", "migration_port_max", "migration_address",
    "migration_host", "user", "group", "dynamic_ownership", "vnc_listen",
    "spice_listen",
    "save_image_format", "dump_image_format", "snapshot_image_format",
    "emulator", "max_queued", NULL
};

#define ERR_PREFIX "configuration file syntax error: "

static int testFailures;
static bool testCurrentFailed;
static GString *testDiagnostics;     /* of the running sub-test */

/* Warnings logged by qemu_config.c since the last testWarningsReset(). */
static GString *testWarnings;

static void
testLogOutput(virLogSource *source,
              virLogPriority priority,
              const char *filename G_GNUC_UNUSED,
              int linenr G_GNUC_UNUSED,
              const char *funcname G_GNUC_UNUSED,
              const char *timestamp G_GNUC_UNUSED,
              struct _virLogMetadata *metadata G_GNUC_UNUSED,
              const char *rawstr,
              const char *str,
              void *data G_GNUC_UNUSED)
{
    if (priority == VIR_LOG_WARN && g_str_equal(source->name, "qemu.qemu_config")) {
        g_string_append(testWarnings, rawstr);
        g_string_append_c(testWarnings, '\n');
    }
    if (getenv("VIR_TEST_DEBUG"))
        fprintf(stderr, "%s", str);
}

static int
testLogInit(void)
{
    virLogOutput **outputs = g_new0(virLogOutput *, 1);

    testWarnings = g_string_new(NULL);
    if (!(outputs[0] = virLogOutputNew(testLogOutput, NULL, NULL, VIR_LOG_WARN,
                                       VIR_LOG_TO_STDERR, NULL)))
        goto error;
    if (virLogDefineOutputs(outputs, 1) < 0)
        goto error;
    return 0;

 error:
    virLogOutputFree(outputs[0]);
    g_free(outputs);
    return -1;
}

static void
testWarningsReset(void)
{
    g_string_truncate(testWarnings, 0);
}

static void G_GNUC_PRINTF(1, 2)
testFail(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_string_append_printf(testDiagnostics, "#   %s\n", msg);
    testCurrentFailed = true;
}

static void
testRun(const char *name,
        void (*func)(const void *data),
        const void *data)
{
    testCurrentFailed = false;
    g_string_truncate(testDiagnostics, 0);
    testWarningsReset();
    virResetLastError();
    func(data);
    if (testCurrentFailed) {
        printf("not ok - %s\n", name);
        testFailures++;
    } else {
        printf("ok - %s\n", name);
    }
    printf("%s", testDiagnostics->str);
    fflush(stdout);
}

static void
testCheckUInt(const char *what,
              unsigned int got,
              unsigned int want)
{
    if (got != want)
        testFail("%s: got %u, expected %u", what, got, want);
}

static void
testCheckStr(const char *what,
             const char *got,
             const char *want)
{
    if (g_strcmp0(got, want) != 0)
        testFail("%s: got %s%s%s, expected %s%s%s", what,
                 got ? "'" : "", NULLSTR(got), got ? "'" : "",
                 want ? "'" : "", NULLSTR(want), want ? "'" : "");
}

/* Every field of @got equals the one of @want. */
static void
testCheckConfig(const qemuConfig *got,
                const qemuConfig *want)
{
    testCheckUInt("jobWaitTimeout", got->jobWaitTimeout, want->jobWaitTimeout);
    testCheckUInt("monitorTimeoutQuery", got->monitorTimeoutQuery, want->monitorTimeoutQuery);
    testCheckUInt("monitorTimeoutModify", got->monitorTimeoutModify, want->monitorTimeoutModify);
    testCheckUInt("monitorTimeoutLong", got->monitorTimeoutLong, want->monitorTimeoutLong);
    testCheckUInt("agentTimeout", got->agentTimeout, want->agentTimeout);
    testCheckUInt("destroyTimeout", got->destroyTimeout, want->destroyTimeout);
    testCheckUInt("migrationPortMin", got->migrationPortMin, want->migrationPortMin);
    testCheckUInt("migrationPortMax", got->migrationPortMax, want->migrationPortMax);
    testCheckStr("migrationAddress", got->migrationAddress, want->migrationAddress);
    testCheckStr("migrationHost", got->migrationHost, want->migrationHost);
    testCheckStr("user", got->user, want->user);
    testCheckStr("group", got->group, want->group);
    testCheckUInt("dynamicOwnership", got->dynamicOwnership, want->dynamicOwnership);
    testCheckStr("vncListen", got->vncListen, want->vncListen);
    testCheckStr("spiceListen", got->spiceListen, want->spiceListen);
    testCheckStr("saveImageFormat", got->saveImageFormat, want->saveImageFormat);
    testCheckStr("dumpImageFormat", got->dumpImageFormat, want->dumpImageFormat);
    testCheckStr("snapshotImageFormat", got->snapshotImageFormat, want->snapshotImageFormat);
    testCheckStr("emulator", got->emulator, want->emulator);
    testCheckUInt("maxQueuedJobs", got->maxQueuedJobs, want->maxQueuedJobs);
}

/* Load @text, expecting success. */
static bool
testLoadOK(qemuConfig *cfg,
           const char *text)
{
    if (qemuConfigLoadString(cfg, text, "qemu.conf") < 0) {
        testFail("load failed: %s", virGetLastErrorMessage());
        return false;
    }
    return true;
}

static void
testCheckNoWarnings(void)
{
    if (testWarnings->len > 0)
        testFail("unexpected warnings: %s", testWarnings->str);
}

static void
testCheckWarning(const char *needle)
{
    if (!strstr(testWarnings->str, needle))
        testFail("no warning containing \"%s\"; warnings: %s", needle,
                 testWarnings->len ? testWarnings->str : "(none)");
}

/* The last error is @code with exactly @msg. */
static void
testCheckLastError(int code,
                   const char *msg)
{
    if (virGetLastErrorCode() != code)
        testFail("error code %d, expected %d (message: %s)",
                 virGetLastErrorCode(), code, virGetLastErrorMessage());
    if (msg && !g_str_equal(virGetLastErrorMessage(), msg))
        testFail("error message:\n#     got:      %s\n#     expected: %s",
                 virGetLastErrorMessage(), msg);
}

static char *
testSrcPath(const char *relpath)
{
    const char *srcdir = getenv("abs_top_srcdir");

    if (!srcdir) {
        testFail("abs_top_srcdir is not set (run this test through 'make check')");
        return NULL;
    }
    return g_build_filename(srcdir, relpath, NULL);
}

/* ---------------------------------------------------------------------- */

static void
testDefaults(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) priv = qemuConfigNew(true);
    g_autoptr(qemuConfig) unpriv = qemuConfigNew(false);
    qemuConfig want = {
        .jobWaitTimeout = 30,
        .monitorTimeoutQuery = 10,
        .monitorTimeoutModify = 30,
        .monitorTimeoutLong = 300,
        .agentTimeout = 5,
        .destroyTimeout = 10,
        .migrationPortMin = 49152,
        .migrationPortMax = 49215,
        .migrationAddress = NULL,
        .migrationHost = NULL,
        .user = (char *) "libvirt-qemu",
        .group = (char *) "libvirt-qemu",
        .dynamicOwnership = true,
        .vncListen = (char *) "127.0.0.1",
        .spiceListen = (char *) "127.0.0.1",
        .saveImageFormat = (char *) "raw",
        .dumpImageFormat = (char *) "raw",
        .snapshotImageFormat = (char *) "raw",
        .emulator = (char *) QEMU_BINARY,
        .maxQueuedJobs = 0,
    };

    testCheckConfig(priv, &want);
    want.user = NULL;
    want.group = NULL;
    testCheckConfig(unpriv, &want);
}

static void
testEmpty(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autoptr(qemuConfig) defaults = qemuConfigNew(true);

    if (!testLoadOK(cfg, "") ||
        !testLoadOK(cfg, "\n\n   \n# only a comment\n\t# indented comment"))
        return;
    testCheckConfig(cfg, defaults);
    testCheckNoWarnings();
}

static void
testAllKeysParsed(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(false);
    const char *text =
        "job_wait_timeout = 45\n"
        "monitor_timeout_query = 11\n"
        "monitor_timeout_modify = 31\n"
        "monitor_timeout_long = 301\n"
        "agent_timeout = 6\n"
        "destroy_timeout = 0\n"
        "migration_port_min = 50000\n"
        "migration_port_max = 50010\n"
        "migration_address = \"::\"\n"
        "migration_host = \"dst.example.org\"\n"
        "user = \"qemu-user\"\n"
        "group = \"+107\"\n"
        "dynamic_ownership = 0\n"
        "vnc_listen = \"0.0.0.0\"\n"
        "spice_listen = \"::1\"\n"
        "save_image_format = \"zstd\"\n"
        "dump_image_format = \"xz\"\n"
        "snapshot_image_format = \"lzop\"\n"
        "emulator = \"/opt/qemu/bin/qemu-system-x86_64\"\n"
        "max_queued = 8\n";
    qemuConfig want = {
        .jobWaitTimeout = 45,
        .monitorTimeoutQuery = 11,
        .monitorTimeoutModify = 31,
        .monitorTimeoutLong = 301,
        .agentTimeout = 6,
        .destroyTimeout = 0,
        .migrationPortMin = 50000,
        .migrationPortMax = 50010,
        .migrationAddress = (char *) "::",
        .migrationHost = (char *) "dst.example.org",
        .user = (char *) "qemu-user",
        .group = (char *) "+107",
        .dynamicOwnership = false,
        .vncListen = (char *) "0.0.0.0",
        .spiceListen = (char *) "::1",
        .saveImageFormat = (char *) "zstd",
        .dumpImageFormat = (char *) "xz",
        .snapshotImageFormat = (char *) "lzop",
        .emulator = (char *) "/opt/qemu/bin/qemu-system-x86_64",
        .maxQueuedJobs = 8,
    };

    if (!testLoadOK(cfg, text))
        return;
    testCheckConfig(cfg, &want);
    testCheckNoWarnings();
}

static void
testAllImageFormats(const void *data G_GNUC_UNUSED)
{
    const char *formats[] = { "raw", "gzip", "bzip2", "xz", "lzop", "zstd" };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
        g_autofree char *text = g_strdup_printf("save_image_format = \"%s\"\n"
                                                "dump_image_format = \"%s\"\n"
                                                "snapshot_image_format = \"%s\"\n",
                                                formats[i], formats[i], formats[i]);

        if (!testLoadOK(cfg, text))
            return;
        testCheckStr("saveImageFormat", cfg->saveImageFormat, formats[i]);
        testCheckStr("dumpImageFormat", cfg->dumpImageFormat, formats[i]);
        testCheckStr("snapshotImageFormat", cfg->snapshotImageFormat, formats[i]);
    }
}

static void
testLimits(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);

    if (!testLoadOK(cfg,
                    "job_wait_timeout = 1\n"
                    "monitor_timeout_long = 2147483\n"
                    "migration_port_min = 1\n"
                    "migration_port_max = 65535\n"
                    "max_queued = 4294967295\n"
                    "agent_timeout = +7\n"))
        return;
    testCheckUInt("jobWaitTimeout", cfg->jobWaitTimeout, 1);
    testCheckUInt("monitorTimeoutLong", cfg->monitorTimeoutLong, 2147483);
    testCheckUInt("migrationPortMin", cfg->migrationPortMin, 1);
    testCheckUInt("migrationPortMax", cfg->migrationPortMax, 65535);
    testCheckUInt("maxQueuedJobs", cfg->maxQueuedJobs, 4294967295U);
    testCheckUInt("agentTimeout", cfg->agentTimeout, 7);
}

static void
testStrings(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);

    if (!testLoadOK(cfg,
                    "migration_host = \"a \\\"quoted\\\" \\\\ name\"\n"
                    "migration_address = 'single \"double\" \\' quoted'\n"
                    "user = \"hash#inside\"  # a real comment\n"
                    "group = \"back\\slash\\n\"\n"
                    "vnc_listen = \"\xc3\xa9t\xc3\xa9\"\n"))
        return;
    testCheckStr("migrationHost", cfg->migrationHost, "a \"quoted\" \\ name");
    testCheckStr("migrationAddress", cfg->migrationAddress, "single \"double\" ' quoted");
    testCheckStr("user", cfg->user, "hash#inside");
    testCheckStr("group", cfg->group, "back\\slash\\n");
    testCheckStr("vncListen", cfg->vncListen, "\xc3\xa9t\xc3\xa9");
}

static void
testLayout(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);

    if (!testLoadOK(cfg,
                    "# leading comment\n"
                    "\n"
                    "   job_wait_timeout=40# no space before the comment\n"
                    "\tagent_timeout\t =\t 9 \t\n"
                    "destroy_timeout = 3 ; max_queued = 2;\n"
                    "monitor_timeout_query = 12\r\n"
                    "vnc_listen = \"::\"\r\n"
                    "   # indented comment = 5\n"
                    "monitor_timeout_modify = 33"))
        return;
    testCheckUInt("jobWaitTimeout", cfg->jobWaitTimeout, 40);
    testCheckUInt("agentTimeout", cfg->agentTimeout, 9);
    testCheckUInt("destroyTimeout", cfg->destroyTimeout, 3);
    testCheckUInt("maxQueuedJobs", cfg->maxQueuedJobs, 2);
    testCheckUInt("monitorTimeoutQuery", cfg->monitorTimeoutQuery, 12);
    testCheckStr("vncListen", cfg->vncListen, "::");
    testCheckUInt("monitorTimeoutModify", cfg->monitorTimeoutModify, 33);
    testCheckNoWarnings();
}

static void
testLists(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);

    if (!testLoadOK(cfg,
                    "cgroup_device_acl = [\n"
                    "    \"/dev/null\", \"/dev/full\",  # comment in a list\n"
                    "\n"
                    "    # a comment line in a list\n"
                    "    \"/dev/zero\",\n"
                    "]\n"
                    "namespaces = []\n"
                    "cgroup_controllers = [ \"cpu\", \"devices\" ]  # trailing\n"
                    "mixed = [ 1, -2, 'three' ]\n"
                    "job_wait_timeout = 50\n"))
        return;
    testCheckUInt("jobWaitTimeout", cfg->jobWaitTimeout, 50);
    testCheckWarning("qemu.conf:1: unknown setting 'cgroup_device_acl' ignored");
    testCheckWarning("qemu.conf:7: unknown setting 'namespaces' ignored");
    testCheckWarning("qemu.conf:8: unknown setting 'cgroup_controllers' ignored");
    testCheckWarning("qemu.conf:9: unknown setting 'mixed' ignored");
}

static void
testUnknownKeys(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autoptr(qemuConfig) defaults = qemuConfigNew(true);

    if (!testLoadOK(cfg,
                    "security_driver = \"none\"\n"
                    "vnc_tls = 1\n"
                    "set_process_name = 1\n"))
        return;
    testCheckConfig(cfg, defaults);
    testCheckWarning("qemu.conf:1: unknown setting 'security_driver' ignored");
    testCheckWarning("qemu.conf:2: unknown setting 'vnc_tls' ignored");
    testCheckWarning("qemu.conf:3: unknown setting 'set_process_name' ignored");
}

static void
testDuplicateKey(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);

    if (!testLoadOK(cfg,
                    "job_wait_timeout = 11\n"
                    "job_wait_timeout = 22\n"))
        return;
    testCheckUInt("jobWaitTimeout", cfg->jobWaitTimeout, 11);
    testCheckWarning("qemu.conf:2: setting 'job_wait_timeout' was already set on line 1; ignored");
}

static void
testPortRange(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autoptr(qemuConfig) defaults = qemuConfigNew(true);

    /* equal bounds: one port */
    if (!testLoadOK(cfg, "migration_port_min = 50000\nmigration_port_max = 50000\n"))
        return;
    testCheckUInt("migrationPortMin", cfg->migrationPortMin, 50000);
    testCheckUInt("migrationPortMax", cfg->migrationPortMax, 50000);

    /* the check is on the whole file, whatever the order */
    g_clear_pointer(&cfg, qemuConfigFree);
    cfg = qemuConfigNew(true);
    if (!testLoadOK(cfg, "migration_port_min = 60000\nmigration_port_max = 60010\n"))
        return;
    testCheckUInt("migrationPortMin", cfg->migrationPortMin, 60000);

    g_clear_pointer(&cfg, qemuConfigFree);
    cfg = qemuConfigNew(true);
    if (qemuConfigLoadString(cfg, "migration_port_max = 49999\n"
                                  "agent_timeout = 8\n"
                                  "migration_port_min = 50000\n", "qemu.conf") == 0) {
        testFail("min > max accepted");
        return;
    }
    testCheckLastError(VIR_ERR_CONF_SYNTAX,
                       ERR_PREFIX "qemu.conf: migration_port_min (50000) is greater "
                       "than migration_port_max (49999)");
    testCheckConfig(cfg, defaults);

    /* against the default maximum */
    if (qemuConfigLoadString(cfg, "migration_port_min = 50000\n", "qemu.conf") == 0) {
        testFail("min > default max accepted");
        return;
    }
    testCheckLastError(VIR_ERR_CONF_SYNTAX,
                       ERR_PREFIX "qemu.conf: migration_port_min (50000) is greater "
                       "than migration_port_max (49215)");
    testCheckConfig(cfg, defaults);
}

typedef struct {
    const char *text;
    const char *message;        /* after ERR_PREFIX */
} testErrorCase;

static void
testError(const void *data)
{
    const testErrorCase *tc = data;
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autoptr(qemuConfig) defaults = qemuConfigNew(true);
    g_autofree char *msg = g_strdup_printf(ERR_PREFIX "%s", tc->message);

    if (qemuConfigLoadString(cfg, tc->text, "qemu.conf") == 0) {
        testFail("accepted: %s", tc->text);
        return;
    }
    testCheckLastError(VIR_ERR_CONF_SYNTAX, msg);
    /* nothing of a rejected file is applied */
    testCheckConfig(cfg, defaults);
}

static const testErrorCase testBadValues[] = {
    { "job_wait_timeout = 0\n",
      "qemu.conf: invalid value for 'job_wait_timeout': expected a positive integer" },
    { "job_wait_timeout = -5\n",
      "qemu.conf: invalid value for 'job_wait_timeout': expected a positive integer" },
    { "job_wait_timeout = \"30\"\n",
      "qemu.conf: invalid value for 'job_wait_timeout': expected a positive integer" },
    { "job_wait_timeout = [ 30 ]\n",
      "qemu.conf: invalid value for 'job_wait_timeout': expected a positive integer" },
    { "agent_timeout = 9\njob_wait_timeout = 2147484\n",
      "qemu.conf: invalid value for 'job_wait_timeout': 2147484 is too large (the maximum is 2147483)" },
    { "monitor_timeout_query = 0\n",
      "qemu.conf: invalid value for 'monitor_timeout_query': expected a positive integer" },
    { "monitor_timeout_modify = -1\n",
      "qemu.conf: invalid value for 'monitor_timeout_modify': expected a positive integer" },
    { "monitor_timeout_long = 9999999999\n",
      "qemu.conf: invalid value for 'monitor_timeout_long': 9999999999 is too large (the maximum is 2147483)" },
    { "agent_timeout = 0\n",
      "qemu.conf: invalid value for 'agent_timeout': expected a positive integer" },
    { "destroy_timeout = -1\n",
      "qemu.conf: invalid value for 'destroy_timeout': expected a non-negative integer" },
    { "migration_port_min = 0\n",
      "qemu.conf: invalid value for 'migration_port_min': expected a positive integer" },
    { "migration_port_max = 65536\n",
      "qemu.conf: invalid value for 'migration_port_max': 65536 is too large (the maximum is 65535)" },
    { "migration_port_max = \"49300\"\n",
      "qemu.conf: invalid value for 'migration_port_max': expected a positive integer" },
    { "migration_address = 0\n",
      "qemu.conf: invalid value for 'migration_address': expected a quoted string" },
    { "migration_host = \"\"\n",
      "qemu.conf: invalid value for 'migration_host': expected a non-empty string" },
    { "user = 0\n",
      "qemu.conf: invalid value for 'user': expected a quoted string" },
    { "group = [ \"kvm\" ]\n",
      "qemu.conf: invalid value for 'group': expected a quoted string" },
    { "vnc_listen = \"\"\n",
      "qemu.conf: invalid value for 'vnc_listen': expected a non-empty string" },
    { "spice_listen = 127\n",
      "qemu.conf: invalid value for 'spice_listen': expected a quoted string" },
    { "save_image_format = \"lz4\"\n",
      "qemu.conf: invalid value for 'save_image_format': unknown image format 'lz4' "
      "(expected one of: raw, gzip, bzip2, xz, lzop, zstd)" },
    { "dump_image_format = \"RAW\"\n",
      "qemu.conf: invalid value for 'dump_image_format': unknown image format 'RAW' "
      "(expected one of: raw, gzip, bzip2, xz, lzop, zstd)" },
    { "snapshot_image_format = 1\n",
      "qemu.conf: invalid value for 'snapshot_image_format': expected a quoted string" },
    { "emulator = \"qemu-system-x86_64\"\n",
      "qemu.conf: invalid value for 'emulator': expected an absolute path" },
    { "emulator = \"\"\n",
      "qemu.conf: invalid value for 'emulator': expected a non-empty string" },
    { "max_queued = -1\n",
      "qemu.conf: invalid value for 'max_queued': expected a non-negative integer" },
    { "max_queued = 4294967296\n",
      "qemu.conf: invalid value for 'max_queued': 4294967296 is too large (the maximum is 4294967295)" },
};

static const testErrorCase testSyntaxErrors[] = {
    { "= 1\n", "qemu.conf:1: expected a setting name" },
    { "job_wait_timeout = 30\n\n1abc = 2\n", "qemu.conf:3: expected a setting name" },
    { "job_wait_timeout 30\n", "qemu.conf:1: expected '=' after 'job_wait_timeout'" },
    { "job_wait_timeout\n= 30\n", "qemu.conf:1: expected '=' after 'job_wait_timeout'" },
    { "\njob_wait_timeout =\n", "qemu.conf:2: missing value for 'job_wait_timeout'" },
    { "job_wait_timeout = # nothing\n", "qemu.conf:1: missing value for 'job_wait_timeout'" },
    { "job_wait_timeout = 30s\n",
      "qemu.conf:1: unexpected text after the value of 'job_wait_timeout'" },
    { "user = \"a\" \"b\"\n", "qemu.conf:1: unexpected text after the value of 'user'" },
    { "user = \"qemu\n", "qemu.conf:1: unterminated string in the value of 'user'" },
    { "user = \"qemu\\\"\n", "qemu.conf:1: unterminated string in the value of 'user'" },
    { "user = qemu\n",
      "qemu.conf:1: invalid value for 'user': expected a number, a quoted string or a list" },
    { "job_wait_timeout = -\n", "qemu.conf:1: invalid number in the value of 'job_wait_timeout'" },
    { "job_wait_timeout = 99999999999999999999\n",
      "qemu.conf:1: number out of range in the value of 'job_wait_timeout'" },
    { "acl = [ \"a\" \"b\" ]\n", "qemu.conf:1: expected ',' or ']' in the list of 'acl'" },
    { "acl = [ , ]\n", "qemu.conf:1: missing list element before ',' in the value of 'acl'" },
    { "acl = [ \"a\",, ]\n", "qemu.conf:1: missing list element before ',' in the value of 'acl'" },
    { "acl = [ [ \"a\" ] ]\n", "qemu.conf:1: nested list in the value of 'acl'" },
    { "x = 1\nacl = [\n  \"a\",\n  \"b\",\n", "qemu.conf:2: list in the value of 'acl' is not closed by ']'" },
    { "acl = [\n  \"a\",\n  # \"b\",\n]\nnamespaces = [ \"mount\" ]\njob_wait_timeout = 1 2\n",
      "qemu.conf:6: unexpected text after the value of 'job_wait_timeout'" },
    { "acl = [\n  \"a\",\n  \"b\"\n  \"c\"\n]\n", "qemu.conf:4: expected ',' or ']' in the list of 'acl'" },
    /* a syntax error anywhere rejects the file, even after good settings */
    { "job_wait_timeout = 5\nagent_timeout = 9\n!\n", "qemu.conf:3: expected a setting name" },
};

static void
testMissingFile(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autoptr(qemuConfig) defaults = qemuConfigNew(true);
    g_autofree char *dir = g_dir_make_tmp("qemuconfigtest-XXXXXX", NULL);
    g_autofree char *path = NULL;
    g_autofree char *msg = NULL;

    if (!dir) {
        testFail("cannot create a temporary directory");
        return;
    }
    path = g_build_filename(dir, "qemu.conf", NULL);

    if (qemuConfigLoadFile(cfg, path, true) < 0)
        testFail("missing file with allowMissing: %s", virGetLastErrorMessage());
    testCheckConfig(cfg, defaults);

    if (qemuConfigLoadFile(cfg, path, false) == 0) {
        testFail("missing file accepted without allowMissing");
    } else {
        msg = g_strdup_printf("cannot open configuration file '%s': %s",
                              path, g_strerror(ENOENT));
        testCheckLastError(VIR_ERR_SYSTEM_ERROR, msg);
        g_clear_pointer(&msg, g_free);
    }

    /* a directory is not readable as a file, even with allowMissing */
    if (qemuConfigLoadFile(cfg, dir, true) == 0) {
        testFail("directory accepted as a configuration file");
    } else {
        msg = g_strdup_printf("cannot read configuration file '%s': %s",
                              dir, g_strerror(EISDIR));
        testCheckLastError(VIR_ERR_SYSTEM_ERROR, msg);
    }
    testCheckConfig(cfg, defaults);

    rmdir(dir);
}

static void
testFileFixtures(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autofree char *good = testSrcPath("tests/qemuconfigdata/full.conf");
    g_autofree char *bad = testSrcPath("tests/qemuconfigdata/bad-format.conf");
    g_autofree char *syntax = testSrcPath("tests/qemuconfigdata/syntax-error.conf");
    g_autofree char *msg = NULL;

    if (!good || !bad || !syntax)
        return;

    if (qemuConfigLoadFile(cfg, good, false) < 0) {
        testFail("%s: %s", good, virGetLastErrorMessage());
        return;
    }
    testCheckUInt("jobWaitTimeout", cfg->jobWaitTimeout, 60);
    testCheckUInt("migrationPortMin", cfg->migrationPortMin, 61000);
    testCheckUInt("migrationPortMax", cfg->migrationPortMax, 61099);
    testCheckStr("migrationHost", cfg->migrationHost, "dst \"one\"");
    testCheckStr("snapshotImageFormat", cfg->snapshotImageFormat, "gzip");
    testCheckStr("emulator", cfg->emulator, "/usr/local/bin/qemu-system-x86_64");
    testCheckWarning("full.conf:19: unknown setting 'cgroup_device_acl' ignored");

    if (qemuConfigLoadFile(cfg, bad, false) == 0) {
        testFail("%s accepted", bad);
    } else {
        msg = g_strdup_printf(ERR_PREFIX "%s: invalid value for 'dump_image_format': "
                              "unknown image format 'lz4' (expected one of: raw, "
                              "gzip, bzip2, xz, lzop, zstd)", bad);
        testCheckLastError(VIR_ERR_CONF_SYNTAX, msg);
        g_clear_pointer(&msg, g_free);
    }

    if (qemuConfigLoadFile(cfg, syntax, false) == 0) {
        testFail("%s accepted", syntax);
    } else {
        msg = g_strdup_printf(ERR_PREFIX "%s:7: unterminated string in the value "
                              "of 'migration_host'", syntax);
        testCheckLastError(VIR_ERR_CONF_SYNTAX, msg);
    }
    /* still what full.conf set */
    testCheckUInt("jobWaitTimeout", cfg->jobWaitTimeout, 60);
}

/* Text of @sample with every "#key = value" setting uncommented, lists
 * that span lines included. */
static char *
testUncomment(const char *sample)
{
    g_auto(GStrv) lines = g_strsplit(sample, "\n", -1);
    g_autoptr(GString) out = g_string_new(NULL);
    bool inList = false;
    size_t i;

    for (i = 0; lines[i]; i++) {
        const char *line = lines[i];

        if (inList) {
            if (line[0] == '#')
                line++;
            if (strchr(line, ']'))
                inList = false;
        } else if (line[0] == '#' && (g_ascii_isalpha(line[1]) || line[1] == '_') &&
                   strstr(line, " = ")) {
            line++;
            if (strchr(line, '[') && !strchr(line, ']'))
                inList = true;
        }
        g_string_append(out, line);
        g_string_append_c(out, '\n');
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
testShippedSample(const void *data G_GNUC_UNUSED)
{
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autoptr(qemuConfig) defaults = qemuConfigNew(true);
    g_autofree char *path = testSrcPath("src/qemu/qemu.conf");
    g_autofree char *text = NULL;
    g_autofree char *uncommented = NULL;
    size_t i;

    if (!path)
        return;

    /* as shipped: everything commented out */
    if (qemuConfigLoadFile(cfg, path, false) < 0) {
        testFail("%s: %s", path, virGetLastErrorMessage());
        return;
    }
    testCheckConfig(cfg, defaults);
    testCheckNoWarnings();

    /* every key is documented */
    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        testFail("cannot read %s", path);
        return;
    }
    for (i = 0; testAllKeys[i]; i++) {
        g_autofree char *needle = g_strdup_printf("\n#%s = ", testAllKeys[i]);

        if (!strstr(text, needle))
            testFail("%s does not document '%s'", path, testAllKeys[i]);
    }

    /* uncommented, the documented values are the defaults, apart from the
     * settings that are unset by default and show an example */
    uncommented = testUncomment(text);
    if (!testLoadOK(cfg, uncommented))
        return;
    testCheckNoWarnings();
    testCheckStr("migrationAddress", cfg->migrationAddress, "0.0.0.0");
    testCheckStr("migrationHost", cfg->migrationHost, "host.example.com");
    g_clear_pointer(&cfg->migrationAddress, g_free);
    g_clear_pointer(&cfg->migrationHost, g_free);
    if (!g_str_equal(QEMU_BINARY, "/usr/bin/qemu-system-x86_64")) {
        g_free(cfg->emulator);
        cfg->emulator = g_strdup(QEMU_BINARY);
    }
    testCheckConfig(cfg, defaults);
}

/* The qemu.conf a Debian host already has (libvirt's sample) loads, also
 * with all of its settings uncommented: unknown keys only warn. */
static void
testDistroFile(const void *data G_GNUC_UNUSED)
{
    const char *path = "/etc/libvirt/qemu.conf";
    g_autoptr(qemuConfig) cfg = qemuConfigNew(true);
    g_autofree char *text = NULL;
    g_autofree char *uncommented = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        g_string_append_printf(testDiagnostics, "#   skipped: %s is not installed\n", path);
        return;
    }

    if (qemuConfigLoadFile(cfg, path, false) < 0) {
        testFail("%s: %s", path, virGetLastErrorMessage());
        return;
    }
    uncommented = testUncomment(text);
    if (!testLoadOK(cfg, uncommented))
        return;
    testCheckWarning("unknown setting 'security_driver' ignored");
}

int
main(void)
{
    size_t i;

    testDiagnostics = g_string_new(NULL);
    if (virInitialize() < 0 || testLogInit() < 0) {
        fprintf(stderr, "cannot initialize libvirt: %s\n", virGetLastErrorMessage());
        return EXIT_FAILURE;
    }

    testRun("defaults", testDefaults, NULL);
    testRun("empty file and comments only", testEmpty, NULL);
    testRun("every key parsed", testAllKeysParsed, NULL);
    testRun("every image format accepted", testAllImageFormats, NULL);
    testRun("limits of ranges accepted", testLimits, NULL);
    testRun("strings, quotes and escapes", testStrings, NULL);
    testRun("comments, blanks, separators, CRLF", testLayout, NULL);
    testRun("lists, multi-line, trailing comma", testLists, NULL);
    testRun("unknown keys warn and are ignored", testUnknownKeys, NULL);
    testRun("duplicate key: first wins with a warning", testDuplicateKey, NULL);
    testRun("migration port range", testPortRange, NULL);
    for (i = 0; i < G_N_ELEMENTS(testBadValues); i++) {
        g_autofree char *text = g_strescape(testBadValues[i].text, NULL);
        g_autofree char *name = g_strdup_printf("bad value: %s", text);

        testRun(name, testError, &testBadValues[i]);
    }
    for (i = 0; i < G_N_ELEMENTS(testSyntaxErrors); i++) {
        g_autofree char *text = g_strescape(testSyntaxErrors[i].text, NULL);
        g_autofree char *name = g_strdup_printf("syntax error: %s", text);

        testRun(name, testError, &testSyntaxErrors[i]);
    }
    testRun("missing or unreadable file", testMissingFile, NULL);
    testRun("files: good, bad value, syntax error", testFileFixtures, NULL);
    testRun("shipped sample src/qemu/qemu.conf", testShippedSample, NULL);
    testRun("distribution's /etc/libvirt/qemu.conf", testDistroFile, NULL);

    if (testFailures) {
        printf("# %d sub-test(s) failed\n", testFailures);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
