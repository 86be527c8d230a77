# tandemtest.py: harness for Tandem's end-to-end tests
#
# Starts real libvirtd daemons (each in a private mount namespace, so it has
# its own /etc/libvirt, /run/libvirt, /var/lib/libvirt, ... under a temporary
# directory) and runs real virsh / python3-libvirt against them or against
# the embedded driver.  Every process a test starts is stopped by its PID.
# Output is TAP, one "ok N - name" line per check.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

BUILDDIR = os.environ.get("abs_top_builddir", os.getcwd())
SRCDIR = os.environ.get("abs_top_srcdir", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER_DIR = os.environ.get("TANDEM_DRIVER_DIR", os.path.join(BUILDDIR, "driver-dir"))
STOCK_DRIVER_DIR = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver"
VIRSH_TIMEOUT = 60
QEMU_BINARY = os.environ.get("QEMU_BINARY", "/usr/bin/qemu-system-x86_64")


# ---------------------------------------------------------------------------
# Sanitizer builds (configure --enable-sanitizers=address, `make check-asan`;
# docs/ANALYSIS.md).  The module is built with ASan+UBSan; the programs that
# dlopen it (libvirtd, virsh, python3 itself for embedded URIs) are not, so
# the ASan runtime must be loaded first into each of them: this script
# re-executes itself once with LD_PRELOAD set, and every process it starts
# inherits that (but libvirtd and virsh drop it for the QEMUs they start,
# and a few programs get wrappers without it: see below).
# ASan and UBSan write their reports under one directory per test script;
# a script with any report there fails (TAP.done() adds a failing check,
# any other script bails out at exit).  Leaks are not checked here: libvirtd
# and virsh are killed or leak on exit by design; the unit tests check them.
SAN_PRELOAD = os.environ.get("TANDEM_SAN_PRELOAD", "")
SAN_REPORT_DIR = os.environ.get("TANDEM_SAN_REPORT_DIR", "")


def _san_reexec():
    if not SAN_PRELOAD:
        return
    preload = os.environ.get("LD_PRELOAD", "")
    if SAN_REPORT_DIR and SAN_PRELOAD in preload.split(":"):
        return
    name = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0]
    report_dir = tempfile.mkdtemp(prefix="tandem-san-%s-" % name,
                                  dir=os.environ.get("TANDEM_TEST_TMPDIR") or None)
    # processes the tests run as other users (a session libvirtd as nobody)
    # must load unpreload.so from here and may write their reports here
    os.chmod(report_dir, 0o1777)
    env = dict(os.environ)
    # libtirpc too: ASan intercepts the xdr* functions and binds them when
    # it starts; in python3, which dlopens libvirt (and so libtirpc) later,
    # they would stay unbound and the first RPC message jumps to address 0.
    tirpc = "libtirpc.so.3"
    if not any(os.path.exists(os.path.join(d, tirpc))
               for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64")):
        tirpc = ""
    # libvirtd and virsh drop the preload from their environment once
    # started (tests/sanitizers/unpreload.c): libvirt passes LD_PRELOAD on
    # to QEMU, which must not run with the ASan runtime (see qemu-img below)
    unpreload = os.path.join(report_dir, "unpreload.so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", BUILDDIR, "-o", unpreload,
                        os.path.join(SRCDIR, "tests", "sanitizers", "unpreload.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("cannot build unpreload.so:\n%s" % r.stderr)
        unpreload = ""
    env["LD_PRELOAD"] = ":".join(x for x in (SAN_PRELOAD, tirpc, unpreload, preload) if x)
    env["TANDEM_SAN_REPORT_DIR"] = report_dir
    # Programs that never load the module run without the preload, through
    # wrappers first in PATH (the tests and Tandem find them there):
    # qemu-img runs its coroutines on stacks of its own, which ASan does not
    # follow (it warns, then hangs); the session bus of the virt-manager
    # test would pass the runtime on to at-spi-bus-launcher, which then
    # never answers; Xvfb needs none either.
    bindir = os.path.join(report_dir, "bin")
    os.mkdir(bindir)
    for prog in ("qemu-img", "dbus-daemon", "Xvfb"):
        real = shutil.which(prog)
        if not real:
            continue
        wrapper = os.path.join(bindir, prog)
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' % real)
        os.chmod(wrapper, 0o755)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    opts = "halt_on_error=1:detect_leaks=0:log_path=%s/asan" % report_dir
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), opts) if x)
    opts = "halt_on_error=1:print_stacktrace=1:log_path=%s/ubsan" % report_dir
    env["UBSAN_OPTIONS"] = ":".join(x for x in (env.get("UBSAN_OPTIONS"), opts) if x)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


_san_reexec()


def plain_env(env=None):
    """@env (default: this process's) without the sanitizer preload, for
    programs the tests start that never load Tandem (polkitd: its
    JavaScript engine does not start under the ASan runtime)."""
    env = dict(os.environ if env is None else env)
    if SAN_PRELOAD:
        env.pop("LD_PRELOAD", None)
    return env


_san_seen = set()
_san_reported = []


def san_reports():
    """The sanitizer reports written by processes of this script since the
    last call (text, empty when there are none or this is no sanitizer
    build)."""
    if not SAN_PRELOAD or not SAN_REPORT_DIR:
        return ""
    out = []
    try:
        names = sorted(os.listdir(SAN_REPORT_DIR))
    except OSError:
        return ""
    for n in names:
        if n in _san_seen or not n.startswith(("asan.", "ubsan.")):
            continue
        _san_seen.add(n)
        try:
            with open(os.path.join(SAN_REPORT_DIR, n), errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        # warnings alone (qemu-img's coroutines: "ASan doesn't fully
        # support makecontext/swapcontext") are no report
        if any(m in text for m in ("==ERROR: ", "runtime error:", "SUMMARY: ")):
            out.append("==> %s <==\n%s" % (n, text))
            _san_reported.append(n)
    return "\n".join(out)


def _san_check_at_exit():
    reports = san_reports()
    if reports:
        for line in reports.splitlines():
            print("# " + line, flush=True)
        print("Bail out! sanitizer reports in %s" % SAN_REPORT_DIR, flush=True)
        os._exit(1)
    if SAN_REPORT_DIR and not _san_reported and not os.environ.get("TANDEM_KEEP_TMP"):
        shutil.rmtree(SAN_REPORT_DIR, ignore_errors=True)


if SAN_PRELOAD:
    import atexit
    atexit.register(_san_check_at_exit)


def qemu_version():
    """The installed QEMU's version as (text, libvirt number), e.g.
    ("7.2.22", 7002022)."""
    import re
    out = subprocess.run([QEMU_BINARY, "--version"], capture_output=True,
                         text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    major, minor, micro = (int(x) for x in m.groups())
    return "%d.%d.%d" % (major, minor, micro), major * 1000000 + minor * 1000 + micro


class TAP:
    """Minimal TAP producer: checks never stop the script; the exit code
    says whether any failed."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, name), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, name), flush=True)
            if detail is not None:
                for line in str(detail).splitlines():
                    print("#   " + line, flush=True)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def contains(self, text, sub, name):
        return self.ok(sub in (text or ""), name, "%r not in:\n%s" % (sub, text))

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why), flush=True)

    def run(self, name, fn, *args):
        """Run a group of checks; an exception fails the group, not the file."""
        try:
            fn(*args)
        except Exception:
            self.ok(False, "%s (exception)" % name, traceback.format_exc())

    def done(self):
        if SAN_PRELOAD:
            # processes that are still running (daemons the script forgot)
            # may report later: the exit hook looks again
            reports = san_reports()
            self.ok(not reports, "no ASan/UBSan reports from this script's processes",
                    reports)
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err)


def run(argv, env=None, timeout=VIRSH_TIMEOUT, input=None):
    p = subprocess.run(argv, env=env, capture_output=True, text=True,
                       timeout=timeout, input=input)
    return Result(p.returncode, p.stdout, p.stderr)


def tmpdir(prefix):
    base = os.environ.get("TANDEM_TEST_TMPDIR") or None
    return tempfile.mkdtemp(prefix="tandem-%s-" % prefix, dir=base)


class Embedded:
    """The driver loaded in-process by virsh: qemu:///embed?root=DIR."""

    def __init__(self, name="embed", driver_dir=DRIVER_DIR):
        self.root = tmpdir(name)
        self.uri = "qemu:///embed?root=%s" % self.root
        self.env = dict(os.environ, LIBVIRT_DRIVER_DIR=driver_dir)

    def virsh(self, *args, readonly=False, timeout=VIRSH_TIMEOUT, env=None):
        argv = ["virsh", "-q", "-c", self.uri]
        if readonly:
            argv.append("-r")
        return run(argv + list(args), env=env or self.env, timeout=timeout)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Daemon:
    """A real libvirtd with Tandem as its qemu driver, as a host of its own:
    private mount namespace over the libvirt directories, own socket dir,
    own host UUID.  Stopped by the PID it was started with."""

    PRIVATE_DIRS = ["/etc/libvirt", "/run/libvirt", "/var/lib/libvirt",
                    "/var/cache/libvirt", "/var/log/libvirt"]

    def __init__(self, name="host", driver_dir=DRIVER_DIR, qemu_conf=None,
                 host_uuid=None, extra_env=None, netns=None):
        self.name = name
        # a network namespace the test created (`ip netns add`): the daemon
        # (and its guests) live in it, across restarts
        self.netns = netns
        self.dir = tmpdir(name)
        self.driver_dir = driver_dir
        self.host_uuid = host_uuid or str(uuid.uuid4())
        self.sockdir = os.path.join(self.dir, "sock")
        self.socket = os.path.join(self.sockdir, "libvirt-sock")
        self.uri = "qemu+unix:///system?socket=%s" % self.socket
        self.ro_uri = "qemu+unix:///system?socket=%s-ro" % self.socket
        self.logfile = os.path.join(self.dir, "libvirtd.log")
        self.proc = None
        self.extra_env = extra_env or {}
        os.makedirs(self.sockdir)
        for d in self.PRIVATE_DIRS:
            os.makedirs(self.private(d), exist_ok=True)
        if qemu_conf is not None:
            self.write_file("/etc/libvirt/qemu.conf", qemu_conf)
        with open(os.path.join(self.dir, "libvirtd.conf"), "w") as f:
            f.write('unix_sock_dir = "%s"\n' % self.sockdir)
            f.write('unix_sock_group = "root"\n')
            f.write('auth_unix_ro = "none"\nauth_unix_rw = "none"\n')
            f.write('host_uuid = "%s"\n' % self.host_uuid)
            f.write('log_outputs = "1:file:%s"\n' % self.logfile)
            f.write('log_filters = "1:qemu 1:libvirt 3:rpc 3:util 3:conf 3:object 3:event"\n')
            f.write('max_workers = 20\nkeepalive_interval = -1\n')

    def private(self, path):
        """Where a path inside the daemon's namespace lives on the real disk."""
        for d in self.PRIVATE_DIRS:
            if path == d or path.startswith(d + "/"):
                return os.path.join(self.dir, d.strip("/").replace("/", "_")) + path[len(d):]
        raise ValueError(path)

    def write_file(self, path, text):
        p = self.private(path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def start(self, timeout=60):
        binds = " && ".join("mount --bind %s %s" % (self.private(d), d)
                            for d in self.PRIVATE_DIRS)
        script = "set -e; %s; exec libvirtd -f %s -p %s" % (
            binds, os.path.join(self.dir, "libvirtd.conf"),
            os.path.join(self.dir, "libvirtd.pid"))
        env = dict(os.environ, LIBVIRT_DRIVER_DIR=self.driver_dir)
        env.update(self.extra_env)
        self.stderr = open(os.path.join(self.dir, "libvirtd.stderr"), "w")
        # unshare execs sh, sh execs libvirtd: the PID is the daemon's.
        # (ip netns exec execs too.)
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            prefix + ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            env=env, stdout=self.stderr, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("libvirtd %s exited with %d:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            if os.path.exists(self.socket):
                r = run(["virsh", "-q", "-c", self.uri, "uri"], timeout=30)
                if r.rc == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("libvirtd %s did not come up:\n%s" % (self.name, self.log_tail()))

    def virsh(self, *args, readonly=False, timeout=VIRSH_TIMEOUT):
        uri = self.ro_uri if readonly else self.uri
        return run(["virsh", "-q", "-c", uri] + list(args), timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        rc = self.proc.returncode
        self.proc = None
        self.stderr.close()
        return rc

    def restart(self):
        self.stop()
        return self.start()

    def log_tail(self, n=40):
        out = []
        for f in (self.logfile, os.path.join(self.dir, "libvirtd.stderr")):
            try:
                with open(f) as fh:
                    out += fh.read().splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(out)

    def log(self):
        try:
            with open(self.logfile) as fh:
                return fh.read()
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        if not os.environ.get("TANDEM_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Helpers shared by the e2e, fault and stress scripts
# ---------------------------------------------------------------------------

# Loopback migrations: the stock driver refuses a loopback migration_host,
# so every test passes the URI and listen address per call.
MIG_ARGS = ["--migrateuri", "tcp://127.0.0.1", "--listen-address", "127.0.0.1"]


def migrate_bg(src, name, dst, extra=()):
    """`virsh migrate --live --verbose NAME DST` (client-managed unless
    @extra says --p2p) from daemon @src in the background."""
    argv = ["virsh", "-q", "-c", src.uri, "migrate", "--live", "--verbose", name,
            dst.uri] + MIG_ARGS + list(extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=300):
    """Waits for a migrate_bg process: (rc, stdout, stderr); killed after
    @timeout seconds."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out, err


def guest_paths():
    """KERNEL, INITRD, DIRTY... of the test guests, built once and cached by
    tests/guest/build-guest.sh."""
    r = run(["bash", os.path.join(SRCDIR, "tests", "guest", "build-guest.sh")], timeout=1500)
    if r.rc != 0:
        raise RuntimeError("build-guest.sh failed:\n%s" % r)
    return dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)


def wait_for(cond, timeout=30, step=0.1):
    """Polls @cond until it is true or @timeout seconds passed; returns
    its last value (a wait is never a test assertion by itself)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def proc_state(pid):
    """The state letter of process @pid (R, S, T, Z...), None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, TypeError):
        return None


def alive(pid):
    return pid is not None and proc_state(pid) not in (None, "Z", "X")


def rss_kib(pid):
    """VmRSS of process @pid in KiB (0 when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return 0


def qemu_pid(d, name):
    """The PID of domain @name's QEMU from daemon @d's pid file, or None."""
    try:
        with open(d.private("/run/libvirt/qemu/%s.pid" % name)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def domstate(d, name):
    """`virsh domstate --reason`, e.g. "paused (migrating)", or
    "error: ..." with virsh's message."""
    r = d.virsh("domstate", "--reason", name)
    return r.out.strip() if r.rc == 0 else "error: " + r.err.strip()


def fields(text):
    """virsh's 'Key:   value' lines (dominfo, domjobinfo, domblkinfo,
    vcpuinfo) as a dict."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def jobinfo(d, name, *extra):
    """`virsh domjobinfo [extra] NAME` as a dict (empty when it failed)."""
    return fields(d.virsh("domjobinfo", *extra, name).out)


def domain_xml(name, uuid_str=None, extra_devices="", vtype="qemu",
               machine="pc", arch="x86_64", memory_mib=128):
    u = "<uuid>%s</uuid>" % uuid_str if uuid_str else ""
    return """<domain type='%s'>
  <name>%s</name>%s
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='%s' machine='%s'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/%s.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    %s
  </devices>
</domain>
""" % (vtype, name, u, memory_mib, arch, machine, name, extra_devices)


def write_tmp(text, suffix=".xml"):
    fd, path = tempfile.mkstemp(prefix="tandem-", suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
