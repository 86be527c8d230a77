/*
 * qemuxml2argvtest.c: golden tests of the command-line builder
 * (src/qemu/qemu_command.c) and of device address assignment
 * (src/qemu/qemu_domain_address.c), and proof that QEMU accepts each
 * produced command line.
 *
 * For every tests/qemuxml2argv/NAME.xml:
 *   - NAME.args (one argument per line): the XML is parsed with the
 *     driver's XML options, addresses are assigned (twice: the second run
 *     must change nothing), the command line is built and compared; the
 *     inactive XML is re-parsed and must give the same command line (what
 *     the post-parse decided survives in the persistent definition);
 *     then the real QEMU is started with it (-S), answers query-status
 *     over QMP and is told to quit.
 *   - NAME.err: the first error (from parsing, address assignment or the
 *     builder) must be exactly this text.
 * Cases named "unpriv-*" are built as for the session daemon.
 *
 * Environment: TANDEM_REGENERATE=1 rewrites the .args/.err files;
 * TANDEM_SKIP_QEMU=1 skips starting QEMU; TANDEM_XML2ARGV_ONLY=NAME runs
 * one case.  Prints TAP ("ok N - ...", "not ok N - ...", "1..N").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "qemu_command.h"
#include "qemu_domain_address.h"
#include "qemu_domain.h"
#include "qemu_conf.h"
#include "virerror.h"
#include "virbuffer.h"
#include "storage_source_conf.h"

#define TEST_QEMU "/usr/bin/qemu-system-x86_64"
#define TEST_CAPS "tests/qemucapsdata/qemu-7.2-x86_64"
#define TEST_DATA "tests/qemuxml2argv"
#define TEST_PLACEHOLDER "/tandem-test/"
#define TEST_LIBDIR TEST_PLACEHOLDER "lib/domain-tandem"

static unsigned int testNum;
static unsigned int testFailures;
static virDomainXMLOption *testXMLOpt;
static qemuCaps *testCaps;
static const char *testSrcDir;

static void
testResult(bool ok, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
testResult(bool ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s %u - ", ok ? "ok" : "not ok", ++testNum);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok)
        testFailures++;
}

static void
testDiag(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    size_t i;

    for (i = 0; lines[i]; i++) {
        if (lines[i][0] || lines[i + 1])
            printf("#   %s\n", lines[i]);
    }
}

static const char *
testLastError(void)
{
    const char *msg = virGetLastErrorMessage();

    return msg ? msg : "(no error)";
}


/* ------------------------------------------------------------------------
 * Fixtures: capabilities from recorded replies, a minimal driver
 * ------------------------------------------------------------------------ */

static qemuCaps *
testLoadCaps(void)
{
    g_autofree char *dir = g_build_filename(testSrcDir, TEST_CAPS, NULL);
    g_autoptr(GHashTable) replies = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                          g_free, g_free);
    g_autoptr(GDir) d = NULL;
    const char *ent;

    if (!(d = g_dir_open(dir, 0, NULL))) {
        fprintf(stderr, "cannot open %s\n", dir);
        return NULL;
    }
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, ent, NULL);
        char *data = NULL;

        if (!g_str_has_suffix(ent, ".json") ||
            !g_file_get_contents(path, &data, NULL, NULL))
            continue;
        g_hash_table_insert(replies, g_strndup(ent, strlen(ent) - 5), data);
    }
    return qemuCapsNewFromReplies(TEST_QEMU, replies);
}

static virQEMUDriver testDriver;

/* What the driver's XML post-parse does (qemu_domain.c wires the same
 * call as its assignAddressesCallback). */
static int
testAssignAddressesCallback(virDomainDef *def,
                            unsigned int parseFlags G_GNUC_UNUSED,
                            void *opaque G_GNUC_UNUSED,
                            void *parseOpaque G_GNUC_UNUSED)
{
    return qemuDomainAssignAddresses(def, testCaps);
}

static int
testDriverInit(void)
{
    if (virMutexInit(&testDriver.lock) < 0)
        return -1;
    testDriver.privileged = true;
    testDriver.config = qemuConfigNew(true);
    g_free(testDriver.config->emulator);
    testDriver.config->emulator = g_strdup(TEST_QEMU);
    testDriver.qemuCaps = virObjectRef(testCaps);
    /* the post-parse reads the capabilities through this pointer */
    qemu_driver = &testDriver;
    if (!qemuDomainDefParserConfig.assignAddressesCallback)
        qemuDomainDefParserConfig.assignAddressesCallback = testAssignAddressesCallback;
    if (!(testXMLOpt = qemuDomainXMLOptionNew(&testDriver)))
        return -1;
    testDriver.xmlopt = testXMLOpt;
    return 0;
}


/* ------------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------------ */

typedef struct _testPorts testPorts;
struct _testPorts {
    int vnc;
    int spice;
};

/* What the process layer does before building: pick display ports. */
static void
testAllocatePorts(virDomainDef *def, const testPorts *ports)
{
    size_t i;

    for (i = 0; i < def->ngraphics; i++) {
        virDomainGraphicsDef *gr = def->graphics[i];

        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_VNC &&
            (gr->data.vnc.autoport || gr->data.vnc.port <= 0))
            gr->data.vnc.port = ports->vnc;
        if (gr->type == VIR_DOMAIN_GRAPHICS_TYPE_SPICE &&
            (gr->data.spice.autoport || gr->data.spice.port <= 0))
            gr->data.spice.port = ports->spice;
    }
}

/* the tap file descriptor numbers the command lines name, by interface */
static const int testTapFds[] = { 100, 101, 102, 103, 104, 105, 106, 107 };

static char **
testBuild(virDomainDef *def, const char *name, const testPorts *ports)
{
    qemuBuildCommandLineOpts opts = {
        .libDir = TEST_LIBDIR,
        .stateDir = TEST_PLACEHOLDER "run",
        .monitorFd = 3,
        .privileged = !g_str_has_prefix(name, "unpriv-"),
        .kvm = true,
        .tapfds = testTapFds,
        .ntapfds = G_N_ELEMENTS(testTapFds),
    };

    testAllocatePorts(def, ports);
    return qemuBuildCommandLine(def, testCaps, &opts);
}

static virDomainDef *
testParse(const char *xml)
{
    return virDomainDefParseString(xml, testXMLOpt, NULL,
                                   VIR_DOMAIN_DEF_PARSE_INACTIVE);
}

static char *
testFormat(virDomainDef *def, unsigned int flags)
{
    return virDomainDefFormat(def, testXMLOpt, VIR_DOMAIN_DEF_FORMAT_SECURE | flags);
}

static char *
testArgvToLines(char **argv)
{
    g_autofree char *joined = g_strjoinv("\n", argv);

    return g_strdup_printf("%s\n", joined);
}

/* A line diff good enough for argv files: the first difference, then
 * both sides from there on. */
static void
testDiff(const char *expected, const char *actual)
{
    g_auto(GStrv) e = g_strsplit(expected, "\n", -1);
    g_auto(GStrv) a = g_strsplit(actual, "\n", -1);
    size_t i = 0;
    size_t j;

    while (e[i] && a[i] && STREQ(e[i], a[i]))
        i++;
    printf("#   first difference at line %zu\n", i + 1);
    for (j = i; e[j] && j < i + 8; j++)
        printf("#   - %s\n", e[j]);
    for (j = i; a[j] && j < i + 8; j++)
        printf("#   + %s\n", a[j]);
}

static bool
testCompareFile(const char *path, const char *actual)
{
    g_autofree char *expected = NULL;

    if (getenv("TANDEM_REGENERATE")) {
        if (!g_file_set_contents(path, actual, -1, NULL)) {
            printf("#   cannot write %s\n", path);
            return false;
        }
        return true;
    }
    if (!g_file_get_contents(path, &expected, NULL, NULL)) {
        printf("#   cannot read %s (TANDEM_REGENERATE=1 creates it)\n", path);
        return false;
    }
    if (STRNEQ(expected, actual)) {
        testDiff(expected, actual);
        return false;
    }
    return true;
}


/* ------------------------------------------------------------------------
 * Starting the real QEMU
 * ------------------------------------------------------------------------ */

static char *
testReplacePlaceholder(const char *arg, const char *tmpdir)
{
    g_auto(GStrv) parts = g_strsplit(arg, TEST_PLACEHOLDER, -1);
    g_autofree char *with = g_strdup_printf("%s/", tmpdir);

    return g_strjoinv(with, parts);
}

static int
testRun(const char *const *argv, char **output)
{
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) gerr = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                      &out, &err, &status, &gerr) ||
        !g_spawn_check_wait_status(status, NULL)) {
        *output = g_strdup_printf("%s failed: %s%s", argv[0],
                                  gerr ? gerr->message : "", NULLSTR_EMPTY(err));
        return -1;
    }
    return 0;
}

/* A file QEMU can load with -kernel: a bzImage header, nothing to run
 * (QEMU is started paused and never runs the guest). */
static int
testWriteFakeKernel(const char *path)
{
    g_autofree unsigned char *img = g_new0(unsigned char, 8192);

    img[0x1f1] = 1;                         /* setup sectors */
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    memcpy(img + 0x202, "HdrS", 4);
    img[0x206] = 0x0c;                      /* boot protocol 2.12 */
    img[0x207] = 0x02;
    img[0x211] = 0x01;                      /* LOADED_HIGH: a bzImage */
    img[0x22c] = 0xff;                      /* initrd_addr_max */
    img[0x22d] = 0xff;
    img[0x22e] = 0xff;
    img[0x22f] = 0x37;
    img[0x238] = 0x00;                      /* cmdline_size: 2048 */
    img[0x239] = 0x08;
    return g_file_set_contents(path, (const char *)img, 8192, NULL) ? 0 : -1;
}

/* Create what the definition points to under the placeholder directory. */
static int
testPrepareFiles(virDomainDef *def, const char *tmpdir, char **why)
{
    g_autofree char *lib = testReplacePlaceholder(TEST_LIBDIR, tmpdir);
    size_t i;

    if (g_mkdir_with_parents(lib, 0700) < 0) {
        *why = g_strdup_printf("cannot create %s", lib);
        return -1;
    }
    for (i = 0; i < def->ndisks; i++) {
        virStorageSource *src = def->disks[i]->src;
        g_autofree char *path = NULL;
        g_autofree char *dir = NULL;
        const char *fmt = src->format == VIR_STORAGE_FILE_QCOW2 ? "qcow2" : "raw";

        if (!src->path || !g_str_has_prefix(src->path, TEST_PLACEHOLDER))
            continue;
        path = testReplacePlaceholder(src->path, tmpdir);
        dir = g_path_get_dirname(path);
        g_mkdir_with_parents(dir, 0700);
        if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
            const char *const argv[] = { "qemu-img", "create", "-q", "-f", fmt,
                                         path, "16M", NULL };
            if (testRun(argv, why) < 0)
                return -1;
        }
    }
    if (def->os.kernel && g_str_has_prefix(def->os.kernel, TEST_PLACEHOLDER)) {
        g_autofree char *path = testReplacePlaceholder(def->os.kernel, tmpdir);
        g_autofree char *dir = g_path_get_dirname(path);

        g_mkdir_with_parents(dir, 0700);
        if (testWriteFakeKernel(path) < 0) {
            *why = g_strdup_printf("cannot write %s", path);
            return -1;
        }
    }
    if (def->os.initrd && g_str_has_prefix(def->os.initrd, TEST_PLACEHOLDER)) {
        g_autofree char *path = testReplacePlaceholder(def->os.initrd, tmpdir);
        g_autofree char *dir = g_path_get_dirname(path);

        g_mkdir_with_parents(dir, 0700);
        if (!g_file_set_contents(path, "initrd", -1, NULL)) {
            *why = g_strdup_printf("cannot write %s", path);
            return -1;
        }
    }
    for (i = 0; i < def->nserials; i++) {
        virDomainChrSourceDef *src = def->serials[i]->source;
        const char *p = src->type == VIR_DOMAIN_CHR_TYPE_FILE ? src->data.file.path :
                        src->type == VIR_DOMAIN_CHR_TYPE_UNIX ? src->data.nix.path : NULL;

        if (p && g_str_has_prefix(p, TEST_PLACEHOLDER)) {
            g_autofree char *path = testReplacePlaceholder(p, tmpdir);
            g_autofree char *dir = g_path_get_dirname(path);
            g_mkdir_with_parents(dir, 0700);
        }
    }
    return 0;
}

/* A TCP port nobody listens on, for a display. */
static int
testFreePort(int from)
{
    int port;

    for (port = from; port < from + 1000; port++) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        bool ok;

        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return from;
}

typedef struct _testQMP testQMP;
struct _testQMP {
    int fd;
    GString *buf;
};

/* The next message with "return" or "error" (events are skipped), or
 * NULL after @ms without one or at EOF. */
static char *
testQMPReadReply(testQMP *qmp, int ms, bool greeting)
{
    gint64 deadline = g_get_monotonic_time() + ms * 1000LL;

    while (true) {
        char *nl;
        char chunk[4096];
        struct pollfd pfd = { .fd = qmp->fd, .events = POLLIN };
        int left;
        ssize_t n;

        while ((nl = strchr(qmp->buf->str, '\n'))) {
            g_autofree char *line = g_strndup(qmp->buf->str, nl - qmp->buf->str);

            g_string_erase(qmp->buf, 0, nl - qmp->buf->str + 1);
            if ((greeting && strstr(line, "\"QMP\"")) ||
                (!greeting && (strstr(line, "\"return\"") || strstr(line, "\"error\""))))
                return g_steal_pointer(&line);
        }
        left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return NULL;
        if ((n = read(qmp->fd, chunk, sizeof(chunk))) <= 0)
            return NULL;
        g_string_append_len(qmp->buf, chunk, n);
    }
}

static char *
testQMPCommand(testQMP *qmp, const char *cmd)
{
    g_autofree char *msg = g_strdup_printf("{\"execute\":\"%s\"}\n", cmd);

    if (write(qmp->fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
        return NULL;
    return testQMPReadReply(qmp, 30000, false);
}

static bool
testReapWithin(pid_t pid, int ms)
{
    int status;
    int waited;

    for (waited = 0; waited < ms; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        g_usleep(20 * 1000);
    }
    return false;
}

/* Start QEMU with @argv (placeholders already replaced) and the QMP
 * socket as fd 3, check it sits paused before the guest runs, quit. */
/* In the child about to exec QEMU: the tap devices the process layer
 * would have opened, as file descriptors @tapfds[0..ntapfds-1].  They are
 * created in a network namespace of the child's own (it and its taps
 * vanish with QEMU): nothing appears in the host's network stack. */
static int
testChildOpenTaps(const int *tapfds, size_t ntapfds)
{
    size_t i;

    if (ntapfds == 0)
        return 0;
    if (unshare(CLONE_NEWNET) < 0)
        return -1;
    for (i = 0; i < ntapfds; i++) {
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
        int fd = open("/dev/net/tun", O_RDWR);

        g_snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "tdmtap%zu", i);
        if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0)
            return -1;
        if (fd != tapfds[i] && (dup2(fd, tapfds[i]) < 0 || close(fd) < 0))
            return -1;
    }
    return 0;
}

static int
testStartQEMU(char **argv, const char *tmpdir, const int *tapfds, size_t ntapfds,
              char **why)
{
    g_autofree char *sockpath = g_build_filename(tmpdir, "monitor.sock", NULL);
    g_autofree char *logpath = g_build_filename(tmpdir, "qemu.log", NULL);
    g_autofree char *greeting = NULL;
    g_autofree char *reply = NULL;
    g_autoptr(GString) buf = g_string_new(NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    testQMP qmp = { .fd = -1, .buf = buf };
    int lfd;
    int ret = -1;
    pid_t pid;

    if (strlen(sockpath) >= sizeof(sa.sun_path)) {
        *why = g_strdup("socket path too long");
        return -1;
    }
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(lfd, 1) < 0) {
        *why = g_strdup_printf("cannot listen on %s: %s", sockpath, g_strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }

    if ((pid = fork()) < 0) {
        close(lfd);
        *why = g_strdup("fork failed");
        return -1;
    }
    if (pid == 0) {
        int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDONLY);

        if (log < 0 || null < 0)
            _exit(127);
        dup2(null, 0);
        dup2(log, 1);
        dup2(log, 2);
        if (lfd == 3) {
            fcntl(3, F_SETFD, 0);
        } else if (dup2(lfd, 3) < 0) {
            _exit(127);
        }
        if (testChildOpenTaps(tapfds, ntapfds) < 0) {
            dprintf(2, "cannot create tap devices in a private network namespace: %s\n",
                    g_strerror(errno));
            _exit(127);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(lfd);

    qmp.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (qmp.fd < 0 || connect(qmp.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        *why = g_strdup_printf("cannot connect to %s: %s", sockpath, g_strerror(errno));
        goto cleanup;
    }
    if (!(greeting = testQMPReadReply(&qmp, 60000, true))) {
        *why = g_strdup("no QMP greeting");
        goto cleanup;
    }
    g_clear_pointer(&reply, g_free);
    if (!(reply = testQMPCommand(&qmp, "qmp_capabilities")) || !strstr(reply, "\"return\"")) {
        *why = g_strdup_printf("qmp_capabilities: %s", NULLSTR(reply));
        goto cleanup;
    }
    g_clear_pointer(&reply, g_free);
    if (!(reply = testQMPCommand(&qmp, "query-status")) ||
        (!strstr(reply, "\"prelaunch\"") && !strstr(reply, "\"paused\""))) {
        *why = g_strdup_printf("query-status: %s", NULLSTR(reply));
        goto cleanup;
    }
    g_clear_pointer(&reply, g_free);
    reply = testQMPCommand(&qmp, "quit");
    ret = 0;

 cleanup:
    if (qmp.fd >= 0)
        close(qmp.fd);
    if (!testReapWithin(pid, ret == 0 ? 10000 : 2000)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (ret < 0) {
        g_autofree char *log = NULL;

        if (g_file_get_contents(logpath, &log, NULL, NULL) && *log) {
            g_autofree char *old = g_steal_pointer(why);
            *why = g_strdup_printf("%s\nQEMU said:\n%s", old, log);
        }
    }
    unlink(sockpath);
    return ret;
}

static const char *
testQEMUSkipReason(virDomainDef *def)
{
    size_t i;

    for (i = 0; i < def->nnets; i++) {
        if ((def->nets[i]->type == VIR_DOMAIN_NET_TYPE_NETWORK ||
             def->nets[i]->type == VIR_DOMAIN_NET_TYPE_BRIDGE) &&
            (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) < 0))
            return "interface type network/bridge: tap devices (in a private network namespace) need root and /dev/net/tun";
    }
    /* a fixed port taken by another process on a shared machine says
     * nothing about the command line */
    for (i = 0; i < def->ngraphics; i++) {
        virDomainGraphicsDef *g = def->graphics[i];

        if (g->type != VIR_DOMAIN_GRAPHICS_TYPE_VNC || g->data.vnc.autoport)
            continue;
        if ((g->data.vnc.port > 0 &&
             testFreePort(g->data.vnc.port) != g->data.vnc.port) ||
            (g->data.vnc.websocket > 0 &&
             testFreePort(g->data.vnc.websocket) != g->data.vnc.websocket))
            return "a fixed VNC port of this test is in use on the machine";
    }
    if (def->virtType == VIR_DOMAIN_VIRT_KVM) {
        if (access("/dev/kvm", R_OK | W_OK) < 0)
            return "/dev/kvm is not usable";
        if (def->cpu && (def->cpu->mode == VIR_CPU_MODE_HOST_PASSTHROUGH ||
                         def->cpu->mode == VIR_CPU_MODE_HOST_MODEL))
            return "-cpu host: the nested KVM of the test machines rejects it";
    }
    return NULL;
}

static void
testQEMU(const char *name, const char *xml)
{
    g_autoptr(virDomainDef) def = NULL;
    g_autofree char *tmpdir = NULL;
    g_autofree char *why = NULL;
    g_auto(GStrv) argv = NULL;
    const char *skip;
    testPorts ports;
    int tapfds[G_N_ELEMENTS(testTapFds)];
    size_t ntapfds = 0;
    size_t i;

    if (getenv("TANDEM_SKIP_QEMU")) {
        printf("ok %u - %s accepted by QEMU # SKIP TANDEM_SKIP_QEMU is set\n", ++testNum, name);
        return;
    }
    if (access(TEST_QEMU, X_OK) < 0) {
        printf("ok %u - %s accepted by QEMU # SKIP no %s\n", ++testNum, name, TEST_QEMU);
        return;
    }

    if (!(def = testParse(xml)) || qemuDomainAssignAddresses(def, testCaps) < 0) {
        testResult(false, "%s accepted by QEMU", name);
        testDiag(testLastError());
        return;
    }
    if ((skip = testQEMUSkipReason(def))) {
        printf("ok %u - %s accepted by QEMU # SKIP %s\n", ++testNum, name, skip);
        return;
    }

    if (!(tmpdir = g_dir_make_tmp("tandem-xml2argv-XXXXXX", NULL))) {
        testResult(false, "%s accepted by QEMU", name);
        return;
    }
    ports.vnc = testFreePort(5900 + g_random_int_range(100, 2000));
    ports.spice = testFreePort(ports.vnc + 1);
    if (testPrepareFiles(def, tmpdir, &why) < 0 ||
        !(argv = testBuild(def, name, &ports))) {
        testResult(false, "%s accepted by QEMU", name);
        testDiag(why ? why : testLastError());
    } else {
        for (i = 0; argv[i]; i++) {
            char *arg = testReplacePlaceholder(argv[i], tmpdir);
            g_free(argv[i]);
            argv[i] = arg;
        }
        for (i = 0; i < def->nnets && i < G_N_ELEMENTS(testTapFds); i++) {
            if (def->nets[i]->type == VIR_DOMAIN_NET_TYPE_NETWORK ||
                def->nets[i]->type == VIR_DOMAIN_NET_TYPE_BRIDGE)
                tapfds[ntapfds++] = testTapFds[i];
        }
        if (testStartQEMU(argv, tmpdir, tapfds, ntapfds, &why) < 0) {
            g_autofree char *line = qemuBuildCommandLineToString(argv);
            testResult(false, "%s accepted by QEMU", name);
            testDiag(why);
            testDiag(line);
        } else {
            testResult(true, "%s accepted by QEMU", name);
        }
    }

    {
        const char *const rm[] = { "rm", "-rf", tmpdir, NULL };
        g_autofree char *ignored = NULL;
        testRun(rm, &ignored);
    }
}


/* ------------------------------------------------------------------------
 * One case
 * ------------------------------------------------------------------------ */

static bool
testGoldenArgs(const char *name, const char *xml, const char *argsPath)
{
    static const testPorts ports = { .vnc = 5900, .spice = 5901 };
    g_autoptr(virDomainDef) def = NULL;
    g_autoptr(virDomainDef) def2 = NULL;
    g_autofree char *xml1 = NULL;
    g_autofree char *xml2 = NULL;
    g_autofree char *inactive = NULL;
    g_autofree char *lines = NULL;
    g_autofree char *lines2 = NULL;
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) argv2 = NULL;

    if (!(def = testParse(xml)) || qemuDomainAssignAddresses(def, testCaps) < 0) {
        testDiag(testLastError());
        return false;
    }
    xml1 = testFormat(def, 0);
    if (qemuDomainAssignAddresses(def, testCaps) < 0) {
        testDiag(testLastError());
        return false;
    }
    xml2 = testFormat(def, 0);
    if (STRNEQ(xml1, xml2)) {
        printf("#   address assignment is not idempotent\n");
        testDiff(xml1, xml2);
        return false;
    }

    if (!(argv = testBuild(def, name, &ports))) {
        testDiag(testLastError());
        return false;
    }
    lines = testArgvToLines(argv);
    if (!testCompareFile(argsPath, lines))
        return false;

    /* what the persistent definition keeps gives the same guest */
    inactive = testFormat(def, VIR_DOMAIN_DEF_FORMAT_INACTIVE);
    if (!(def2 = testParse(inactive)) ||
        qemuDomainAssignAddresses(def2, testCaps) < 0 ||
        !(argv2 = testBuild(def2, name, &ports))) {
        printf("#   re-parsing the inactive XML failed\n");
        testDiag(testLastError());
        return false;
    }
    lines2 = testArgvToLines(argv2);
    if (STRNEQ(lines, lines2)) {
        printf("#   the saved definition gives another command line\n");
        testDiff(lines, lines2);
        return false;
    }
    return true;
}

static bool
testGoldenError(const char *name, const char *xml, const char *errPath)
{
    static const testPorts ports = { .vnc = 5900, .spice = 5901 };
    g_autoptr(virDomainDef) def = NULL;
    g_auto(GStrv) argv = NULL;
    g_autofree char *actual = NULL;

    virResetLastError();
    if ((def = testParse(xml)) &&
        qemuDomainAssignAddresses(def, testCaps) == 0 &&
        (argv = testBuild(def, name, &ports))) {
        printf("#   expected an error, got a command line\n");
        return false;
    }
    actual = g_strdup_printf("%s\n", testLastError());
    return testCompareFile(errPath, actual);
}

/* virsh domxml-to-native qemu-argv: one shell-quoted line */
static bool
testNative(const char *xml, const char *nativePath)
{
    g_autoptr(virDomainDef) def = NULL;
    g_autofree char *line = NULL;
    g_autofree char *actual = NULL;

    if (!(def = testParse(xml)) ||
        !(line = qemuBuildNativeCommandLine(def, testCaps, TEST_LIBDIR, true))) {
        testDiag(testLastError());
        return false;
    }
    actual = g_strdup_printf("%s\n", line);
    return testCompareFile(nativePath, actual);
}

static void
testCase(const char *name)
{
    g_autofree char *xmlPath = g_strdup_printf("%s/%s/%s.xml", testSrcDir, TEST_DATA, name);
    g_autofree char *argsPath = g_strdup_printf("%s/%s/%s.args", testSrcDir, TEST_DATA, name);
    g_autofree char *errPath = g_strdup_printf("%s/%s/%s.err", testSrcDir, TEST_DATA, name);
    g_autofree char *xml = NULL;
    bool isError = g_file_test(errPath, G_FILE_TEST_EXISTS) ||
                   g_str_has_prefix(name, "error-") || g_str_has_prefix(name, "unpriv-");
    bool ok;

    if (!g_file_get_contents(xmlPath, &xml, NULL, NULL)) {
        testResult(false, "%s: cannot read %s", name, xmlPath);
        return;
    }

    if (isError) {
        ok = testGoldenError(name, xml, errPath);
        testResult(ok, "%s fails with the expected error", name);
        return;
    }

    ok = testGoldenArgs(name, xml, argsPath);
    testResult(ok, "%s", name);
    if (ok)
        testQEMU(name, xml);

    /* a few cases also as domxml-to-native prints them */
    if (g_str_has_prefix(name, "virt-install-") || STREQ(name, "kernel-boot")) {
        g_autofree char *nativePath = g_strdup_printf("%s/%s/%s.native",
                                                      testSrcDir, TEST_DATA, name);
        testResult(testNative(xml, nativePath), "%s as domxml-to-native", name);
    }
}

static gint
testCompareStrings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
main(int argc G_GNUC_UNUSED, char **argv G_GNUC_UNUSED)
{
    g_autofree char *dataDir = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) d = NULL;
    const char *only = getenv("TANDEM_XML2ARGV_ONLY");
    const char *ent;
    size_t i;

    signal(SIGPIPE, SIG_IGN);
    if (virInitialize() < 0) {
        fprintf(stderr, "virInitialize failed\n");
        return EXIT_FAILURE;
    }
    if (!(testSrcDir = getenv("abs_top_srcdir")))
        testSrcDir = ".";

    if (!(testCaps = testLoadCaps())) {
        fprintf(stderr, "cannot load the recorded capabilities: %s\n", testLastError());
        return EXIT_FAILURE;
    }
    if (testDriverInit() < 0) {
        fprintf(stderr, "cannot set up the driver: %s\n", testLastError());
        return EXIT_FAILURE;
    }

    dataDir = g_build_filename(testSrcDir, TEST_DATA, NULL);
    if (!(d = g_dir_open(dataDir, 0, NULL))) {
        fprintf(stderr, "cannot open %s\n", dataDir);
        return EXIT_FAILURE;
    }
    while ((ent = g_dir_read_name(d))) {
        if (g_str_has_suffix(ent, ".xml"))
            g_ptr_array_add(names, g_strndup(ent, strlen(ent) - 4));
    }
    g_ptr_array_sort(names, testCompareStrings);

    for (i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);

        if (only && STRNEQ(only, name))
            continue;
        testCase(name);
    }

    printf("1..%u\n", testNum);
    virObjectUnref(testXMLOpt);
    virObjectUnref(testCaps);
    return testFailures ? EXIT_FAILURE : EXIT_SUCCESS;
}
