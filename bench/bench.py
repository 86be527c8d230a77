#!/usr/bin/python3
# bench.py: Tandem side by side with the stock Debian QEMU driver.
#
# One command runs the same workload against both drivers, in the same run,
# alternating which goes first between repetitions: the same libvirtd
# binary (started in a private mount namespace, see tests/tandemtest.py),
# the same python3-libvirt client over the daemon's unix socket, the same
# QEMU, the same guests, the same libvirtd.conf and qemu.conf.  Only
# LIBVIRT_DRIVER_DIR differs: the stock connection-driver directory, or
# Tandem's driver-dir (Tandem's module beside links to the same stock
# network/storage/... modules).
#
# It prints a table of both with the ratio Tandem/stock per figure, writes
# the raw results as JSON and a PNG plot under bench/results/.  See
# bench/README.md for the figures.
#
# Every process it starts (daemons, QEMUs) is stopped by PID at the end,
# also on Ctrl-C or error; every libvirt call that might hang runs under a
# client-side deadline; only loopback is used.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRCDIR, "tests"))

import libvirt           # noqa: E402  (python3-libvirt, Debian)
import libvirt_qemu      # noqa: E402
from tandemtest import Daemon, STOCK_DRIVER_DIR, QEMU_BINARY, qemu_version  # noqa: E402

libvirt.registerErrorHandler(lambda ctx, err: None, None)

DRIVERS = ("stock", "tandem")
STATS_GROUPS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL |
                libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU |
                libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
# qemu.conf given to both daemons.  stdio_handler: the stock driver would
# otherwise need a virtlogd in the namespace; Tandem ignores the keys it
# does not know (a warning in its log).
# namespaces: the stock driver's private /dev per QEMU cannot carry the
# /dev/kvm hiding below (BenchDaemon.start); turning it off only saves the
# stock driver work at start.
QEMU_CONF = 'stdio_handler = "file"\nnamespaces = [ ]\n'


# seconds a freshly started guest is left alone before its queries are
# timed (SeaBIOS keeps the TCG thread, and with it QEMU's main loop, busy
# for a moment after start)
SETTLE_S = 1.0

# figure 3: the migrating guest's data, how long the throttled first pass
# should last, client threads per host (smaller in quick mode: see main)
MIG_DATA_MIB = 512
MIG_SECONDS = 20.0
MIG_THREADS = 4


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class FigureTimeout(Exception):
    pass


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------

def percentile(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": percentile(xs, 50), "p99": percentile(xs, 99),
            "mean": sum(xs) / len(xs), "min": min(xs), "max": max(xs)}


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    """Alive and not a zombie: PID 1 may reap late (DESIGN.md §7)."""
    return pid is not None and proc_state(pid) not in (None, "Z", "X")


def rss_kib(pid, field="VmRSS"):
    """VmRSS (or another KiB field of /proc/PID/status, e.g. RssAnon: the
    heap and stacks, without the pages of mapped files) of @pid."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Reaper:
    """Every PID the bench is responsible for; killed at the end."""

    def __init__(self, tag):
        self.tag = tag          # unique in QEMU command lines: guest=<tag>...
        self.pids = set()
        self.lock = threading.Lock()

    def add(self, pid):
        if pid:
            with self.lock:
                self.pids.add(pid)

    def tagged_qemus(self):
        """QEMUs whose -name carries this run's tag (leftovers of a daemon
        that died or was stopped with guests running)."""
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and b"qemu-system" in argv[0] and any(self.tag.encode() in a for a in argv):
                found.append(int(d))
        return found

    def kill_all(self):
        with self.lock:
            pids = set(self.pids) | set(self.tagged_qemus())
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.time() + 10
        while time.time() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)


# ---------------------------------------------------------------------------
# Guests
# ---------------------------------------------------------------------------

def bios_xml(name, memory_mib=64):
    """A diskless guest sitting in its BIOS, with a balloon."""
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <memballoon model='virtio'/>
  </devices>
</domain>
""" % (name, memory_mib)


def dirty_xml(name, kernel, mem_mib, dirty_mib):
    """The dirtying guest (tests/guest/dirty): rewrites dirty_mib MiB of its
    RAM forever, so a live migration has real, changing data to move."""
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=%d quiet</cmdline></os>
  <devices><serial type='pty'/><console type='pty'/></devices>
</domain>
""" % (name, mem_mib, kernel, dirty_mib)


def linux_xml(name, kernel, initrd, serial):
    """The Linux test guest (tests/guest): handles the ACPI power button."""
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>console=ttyS0 tandem.nonet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='file'><source path='%s'/><target port='0'/></serial>
    <memballoon model='virtio'/>
  </devices>
</domain>
""" % (name, kernel, initrd, serial)


# ---------------------------------------------------------------------------
# Calls with deadlines
# ---------------------------------------------------------------------------

class Call:
    """A call run in a thread of its own; the caller waits at most a
    deadline, the call may go on (and be looked at later)."""

    def __init__(self, fn):
        self.fn = fn
        self.done = threading.Event()
        self.value = None
        self.error = None
        self.elapsed = None
        self.t0 = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.t0 = time.perf_counter()
        try:
            self.value = self.fn()
        except Exception as e:     # libvirtError and anything else
            self.error = "%s: %s" % (type(e).__name__, e)
        self.elapsed = time.perf_counter() - self.t0
        self.done.set()

    def start(self):
        self.thread.start()
        while self.t0 is None:
            time.sleep(0.0005)
        return self

    def wait(self, timeout):
        self.done.wait(timeout)
        return self.done.is_set()

    def record(self, deadline):
        if self.done.is_set():
            r = {"returned_after_s": round(self.elapsed, 4),
                 "outcome": "error" if self.error else "ok"}
            if self.error:
                r["error"] = self.error
            else:
                r["value"] = short(self.value)
            return r
        return {"returned_after_s": None, "outcome": "timed out",
                "note": "timed out after %g s (client deadline)" % deadline}


def short(v, n=160):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def stats_shape(recs):
    """getAllDomainStats' answer in short: fields returned per domain."""
    return {dom.name().rsplit("-", 2)[-2]: len(st) for dom, st in recs}


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bounded(fn, deadline, what):
    """Run fn with a deadline; raise FigureTimeout if it does not return."""
    c = Call(fn).start()
    if not c.wait(deadline):
        raise FigureTimeout("%s did not return within %g s" % (what, deadline))
    if c.error:
        raise RuntimeError("%s: %s" % (what, c.error))
    return c.value


# ---------------------------------------------------------------------------
# The daemon under test
# ---------------------------------------------------------------------------

class BenchDaemon(Daemon):
    """tandemtest.Daemon with bench settings: warnings-only logging (debug
    logging would dominate the figures), a persistent capabilities cache per
    driver (QEMU probing is not what is measured), world-readable work dir."""

    def __init__(self, name, driver_dir, cache_dir, workdir):
        os.environ["TANDEM_TEST_TMPDIR"] = workdir
        super().__init__(name=name, driver_dir=driver_dir, qemu_conf=QEMU_CONF)
        with open(os.path.join(self.dir, "libvirtd.conf"), "w") as f:
            f.write('unix_sock_dir = "%s"\n' % self.sockdir)
            f.write('unix_sock_group = "root"\n')
            f.write('auth_unix_ro = "none"\nauth_unix_rw = "none"\n')
            f.write('host_uuid = "%s"\n' % self.host_uuid)
            f.write('log_outputs = "3:file:%s"\n' % self.logfile)
            f.write('max_workers = 20\nkeepalive_interval = -1\n')
        cache = self.private("/var/cache/libvirt")
        os.makedirs(cache_dir, exist_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
        os.symlink(cache_dir, cache)

    def start(self, timeout=120):
        """As Daemon.start, plus /dev/kvm hidden inside the namespace (an
        unreadable file bound over it).  The benchmark's accelerator is TCG
        (DESIGN.md §7), and on this nested KVM the stock driver would
        otherwise re-probe QEMU on every capabilities lookup (/dev/kvm is
        accessible, but its probe with KVM fails, so its cached TCG
        capabilities never validate): seconds per start.  Both drivers get
        the same namespace."""
        nokvm = os.path.join(self.dir, "no-kvm")
        with open(nokvm, "w"):
            pass
        os.chmod(nokvm, 0)
        binds = " && ".join("mount --bind %s %s" % (self.private(d), d)
                            for d in self.PRIVATE_DIRS)
        if os.path.exists("/dev/kvm"):
            binds += " && mount --bind %s /dev/kvm" % nokvm
        script = "set -e; %s; exec libvirtd -f %s -p %s" % (
            binds, os.path.join(self.dir, "libvirtd.conf"),
            os.path.join(self.dir, "libvirtd.pid"))
        env = dict(os.environ, LIBVIRT_DRIVER_DIR=self.driver_dir)
        env.update(self.extra_env)
        self.stderr = open(os.path.join(self.dir, "libvirtd.stderr"), "w")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            env=env, stdout=self.stderr, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("libvirtd %s exited with %d:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            if os.path.exists(self.socket):
                try:
                    libvirt.open(self.uri).close()
                    return self
                except libvirt.libvirtError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("libvirtd %s did not come up:\n%s" % (self.name, self.log_tail()))

    def qemu_pid(self, name):
        try:
            with open(self.private("/run/libvirt/qemu/%s.pid" % name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def all_qemu_pids(self):
        out = []
        d = self.private("/run/libvirt/qemu")
        try:
            names = os.listdir(d)
        except OSError:
            return out
        for n in names:
            if n.endswith(".pid"):
                p = self.qemu_pid(n[:-4])
                if p:
                    out.append(p)
        return out

    def pid(self):
        return self.proc.pid if self.proc else None


# ---------------------------------------------------------------------------
# One driver, one repetition
# ---------------------------------------------------------------------------

class Session:
    def __init__(self, driver, daemon, cfg, reaper, rep):
        self.driver = driver
        self.rep = rep
        self.d = daemon
        self.cfg = cfg
        self.reaper = reaper
        self.tag = reaper.tag
        self.conn = libvirt.open(daemon.uri)
        self.seq = 0

    def name(self, what):
        self.seq += 1
        return "%s-%s%d-%s-%d" % (self.tag, self.driver[0], self.rep, what, self.seq)

    def connect(self):
        return libvirt.open(self.d.uri)

    def track(self, name):
        pid = self.d.qemu_pid(name)
        self.reaper.add(pid)
        return pid

    def create_bios(self, name, conn=None):
        dom = (conn or self.conn).createXML(bios_xml(name), 0)
        self.track(name)
        return dom

    def destroy_quiet(self, dom, deadline=60):
        try:
            bounded(dom.destroy, deadline, "destroy")
        except Exception:
            pass

    # -- figure 1 (and the destroy half of 6): start, destroy -------------
    def fig1_start(self):
        cfg = self.cfg
        # warm-up: first start after the daemon came up (caches, threads)
        n = self.name("warm")
        dom = bounded(lambda: self.conn.defineXML(bios_xml(n)), 60, "define")
        bounded(dom.create, 120, "warm-up create")
        self.track(n)
        bounded(dom.destroy, 60, "warm-up destroy")
        bounded(dom.undefine, 60, "undefine")

        start, destroy, gone, errors = [], [], [], []
        for i in range(cfg.starts):
            n = self.name("start")
            holder = {}

            def define_create():
                d = self.conn.defineXML(bios_xml(n))
                d.create()
                holder["dom"] = d
                return d
            c = Call(define_create).start()
            if not c.wait(120):
                raise FigureTimeout("define+create did not return within 120 s")
            if c.error:
                errors.append(c.error)
                continue
            dom = holder["dom"]
            st = dom.state()[0]
            if st != libvirt.VIR_DOMAIN_RUNNING:
                errors.append("state after create: %r" % (st,))
            start.append(c.elapsed)
            pid = self.track(n)
            time.sleep(0.2)
            # destroy: API return time, and when QEMU was actually gone
            # (polled from /proc by a watcher thread)
            w = {"t": None}
            stop_watch = threading.Event()

            def watch(pid=pid, t0box=w):
                while not stop_watch.is_set():
                    if pid is None or not alive(pid):
                        t0box["t"] = time.perf_counter()
                        return
                    time.sleep(0.0005)
            wt = threading.Thread(target=watch, daemon=True)
            t0 = time.perf_counter()
            wt.start()
            c = Call(dom.destroy).start()
            if not c.wait(60):
                raise FigureTimeout("destroy did not return within 60 s")
            wt.join(10)
            stop_watch.set()
            if c.error:
                errors.append("destroy: " + c.error)
            else:
                destroy.append(c.elapsed)
                if w["t"] is not None:
                    gone.append(w["t"] - t0)
            bounded(dom.undefine, 60, "undefine")
        return {"define_create_s": start, "destroy_s": destroy,
                "qemu_gone_after_s": gone, "errors": errors}

    # -- figure 2: idle query latency ---------------------------------------
    def fig2_idle(self):
        n = self.name("idle")
        dom = bounded(lambda: self.create_bios(n), 120, "create")
        time.sleep(SETTLE_S)
        calls = {
            "GetInfo": dom.info,
            "GetJobStats": dom.jobStats,
            "MemoryStats": dom.memoryStats,
            "GetAllDomainStats(1 dom)": lambda: self.conn.domainListGetStats([dom], STATS_GROUPS, 0),
            "qemu-monitor-command query-status":
                lambda: libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-status"}', 0),
        }
        out = {}
        for cname, fn in calls.items():
            lat, err = [], None
            c = Call(fn).start()     # first call, bounded: is it supported?
            if not c.wait(30):
                out[cname] = {"error": "first call did not return within 30 s"}
                continue
            if c.error:
                out[cname] = {"error": c.error}
                continue
            for _ in range(5):
                fn()
            t_end = time.time() + 120

            def loop():
                for _ in range(self.cfg.queries):
                    t0 = time.perf_counter()
                    fn()
                    lat.append(time.perf_counter() - t0)
                    if time.time() > t_end:
                        break
            c = Call(loop).start()
            if not c.wait(150):
                raise FigureTimeout("%s loop did not finish within 150 s" % cname)
            if c.error:
                err = c.error
            out[cname] = {"latency_s": lat}
            if err:
                out[cname]["error"] = err
        self.destroy_quiet(dom)
        return out

    # -- figure 3: queries during a live migration ----------------------------
    def fig3_migration(self):
        """A second daemon with the same driver is the destination host.  A
        guest with MIG_DATA_MIB of memory it keeps rewriting migrates over
        loopback TCP, throttled so that the first pass lasts about
        MIG_SECONDS; then the throttle is lifted, and if it still has not
        converged MIG_SECONDS/2 later the source is paused (recorded).
        Meanwhile MIG_THREADS client threads per host (own connections)
        call GetInfo, GetJobStats, MemoryStats and GetAllDomainStats(1 dom)
        in turn against the source and the destination."""
        cfg = self.cfg
        if not cfg.dirty:
            raise RuntimeError("no dirtying guest (tests/guest/build-guest.sh DIRTY=)")
        dst = BenchDaemon("bench-%s-dst" % self.driver, self.d.driver_dir,
                          os.path.join(cfg.cache_dir, self.driver), cfg.workdir)
        dst.start()
        self.reaper.add(dst.pid())
        out = {"data_mib": MIG_DATA_MIB, "errors": []}
        try:
            self._fig3(dst, out)
        finally:
            for p in dst.all_qemu_pids():
                self.reaper.add(p)
            try:
                dc = libvirt.open(dst.uri)
                for dm in dc.listAllDomains(0):
                    self.destroy_quiet(dm, 30)
                dc.close()
            except libvirt.libvirtError:
                pass
            for p in dst.all_qemu_pids():
                self.reaper.add(p)
            dst.cleanup()
        return out

    def _fig3(self, dst, out):
        cfg = self.cfg
        n = self.name("mig")
        xml = dirty_xml(n, cfg.dirty, MIG_DATA_MIB + 64, MIG_DATA_MIB)
        dom = bounded(lambda: self.conn.defineXML(xml), 60, "define")
        bounded(dom.create, 120, "create")
        pid = self.track(n)
        # wait until the guest has touched all its data
        t0 = time.time()
        while (rss_kib(pid) or 0) < MIG_DATA_MIB * 1024:
            if time.time() - t0 > 180:
                raise FigureTimeout("guest did not dirty %d MiB within 180 s" % MIG_DATA_MIB)
            time.sleep(0.2)
        out["guest_rss_kib"] = rss_kib(pid)
        uuid = dom.UUIDString()
        dconn = libvirt.open(dst.uri)
        bw = max(1, int(MIG_DATA_MIB / MIG_SECONDS))
        out["bandwidth_mib_s"] = bw
        hosts = {"source": self.d.uri, "destination": dst.uri}
        stop = threading.Event()
        lat = {h: {} for h in hosts}
        errs = {h: {} for h in hosts}
        inflight = {}
        handover = {"t": None}
        lock = threading.Lock()
        calls = ("GetInfo", "GetJobStats", "MemoryStats", "GetAllDomainStats(1 dom)")

        def worker(host, idx):
            cn = libvirt.open(hosts[host])
            dm = None
            i = idx
            while not stop.is_set():
                if dm is None:
                    try:
                        dm = cn.lookupByUUIDString(uuid)
                    except libvirt.libvirtError:
                        time.sleep(0.002)      # not there (yet): not a call
                        continue
                cname = calls[i % len(calls)]
                i += 1
                fn = {"GetInfo": dm.info, "GetJobStats": dm.jobStats,
                      "MemoryStats": dm.memoryStats,
                      "GetAllDomainStats(1 dom)":
                          lambda: cn.domainListGetStats([dm], STATS_GROUPS, 0)}[cname]
                key = (host, idx)
                t0 = time.perf_counter()
                with lock:
                    inflight[key] = (cname, t0)
                err = None
                try:
                    fn()
                except libvirt.libvirtError as e:
                    err = str(e)
                dt = time.perf_counter() - t0
                with lock:
                    inflight.pop(key, None)
                    lat[host].setdefault(cname, []).append(dt)
                    if err:
                        phase = "after handover" if handover["t"] is not None else "during migration"
                        k = "%s (%s): %s" % (cname, phase, err)
                        errs[host][k] = errs[host].get(k, 0) + 1
                if err:
                    time.sleep(0.002)
            try:
                cn.close()
            except libvirt.libvirtError:
                pass

        ths = [threading.Thread(target=worker, args=(h, i), daemon=True)
               for h in hosts for i in range(MIG_THREADS)]
        for t in ths:
            t.start()
        time.sleep(1.0)
        params = {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://127.0.0.1",
                  libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: "127.0.0.1",
                  libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: bw}
        flags = libvirt.VIR_MIGRATE_LIVE
        t_mig = time.perf_counter()
        mig = Call(lambda: dom.migrate3(dconn, params, flags)).start()
        actions = []
        if not mig.wait(MIG_SECONDS * 1.5):
            try:
                dom.migrateSetMaxSpeed(0, 0)
                actions.append("throttle lifted at %.1f s" % (time.perf_counter() - t_mig))
            except libvirt.libvirtError as e:
                actions.append("migrateSetMaxSpeed(0) failed: %s" % e)
            if not mig.wait(MIG_SECONDS / 2.0):
                try:
                    dom.suspend()
                    actions.append("source paused at %.1f s to converge" %
                                   (time.perf_counter() - t_mig))
                except libvirt.libvirtError as e:
                    actions.append("suspend failed: %s" % e)
        ok = mig.wait(180)
        handover["t"] = time.perf_counter()
        out["migration_total_s"] = (mig.elapsed if ok else None)
        out["migration_outcome"] = ("timed out (180 s)" if not ok else
                                    ("error: " + mig.error if mig.error else "ok"))
        out["actions"] = actions
        time.sleep(2.0)      # queries after the handover
        stop.set()
        for t in ths:
            t.join(30)
        with lock:
            now = time.perf_counter()
            out["still_in_flight"] = ["%s %s: %.1f s" % (k[0], c, now - t0)
                                      for k, (c, t0) in inflight.items()]
        # downtime: completed-job statistics, destination first
        out["downtime_ms"] = None
        for cn_uri in (dst.uri, self.d.uri):
            try:
                cn = libvirt.open(cn_uri)
                st = cn.lookupByUUIDString(uuid).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
                cn.close()
                if "downtime" in st:
                    out["downtime_ms"] = st["downtime"]
                    out["downtime_from"] = "destination" if cn_uri == dst.uri else "source"
                    break
            except libvirt.libvirtError as e:
                out.setdefault("downtime_errors", []).append(str(e))
        out["hosts"] = {}
        for h in hosts:
            allx = [x for v in lat[h].values() for x in v]
            out["hosts"][h] = {"latency": summary(allx),
                               "latency_s": allx,
                               "per_call": {c: summary(v) for c, v in lat[h].items()},
                               "errors": errs[h],
                               "failures": sum(errs[h].values())}
        try:
            dconn.close()
        except libvirt.libvirtError:
            pass
        self.destroy_quiet(dom)

    # -- figure 4: concurrent throughput on one domain ----------------------
    def fig4_throughput(self):
        n = self.name("tput")
        dom = bounded(lambda: self.create_bios(n), 120, "create")
        time.sleep(SETTLE_S)
        uuid = dom.UUIDString()
        out = {}
        for cname in ("MemoryStats", "GetAllDomainStats(1 dom)"):
            out[cname] = {}
            for nthreads in self.cfg.threads:
                conns = [self.connect() for _ in range(nthreads)]
                doms = [c.lookupByUUIDString(uuid) for c in conns]
                lats = [[] for _ in range(nthreads)]
                errs = [[] for _ in range(nthreads)]
                go = threading.Event()
                stop = threading.Event()

                def worker(i):
                    dm, cn = doms[i], conns[i]
                    if cname == "MemoryStats":
                        fn = dm.memoryStats
                    else:
                        def fn():
                            return cn.domainListGetStats([dm], STATS_GROUPS, 0)
                    go.wait()
                    while not stop.is_set():
                        t0 = time.perf_counter()
                        try:
                            fn()
                            lats[i].append(time.perf_counter() - t0)
                        except libvirt.libvirtError as e:
                            errs[i].append(str(e))
                            if len(errs[i]) > 1000:
                                return
                ths = [threading.Thread(target=worker, args=(i,), daemon=True)
                       for i in range(nthreads)]
                for t in ths:
                    t.start()
                t0 = time.perf_counter()
                go.set()
                time.sleep(self.cfg.duration)
                stop.set()
                for t in ths:
                    t.join(60)
                wall = time.perf_counter() - t0
                if any(t.is_alive() for t in ths):
                    raise FigureTimeout("throughput workers did not stop within 60 s")
                all_lat = [x for l in lats for x in l]
                all_err = [x for e in errs for x in e]
                out[cname][str(nthreads)] = {
                    "calls": len(all_lat), "wall_s": wall,
                    "calls_per_s": len(all_lat) / wall,
                    "latency": summary(all_lat),
                    "errors": len(all_err),
                    "first_error": all_err[0] if all_err else None}
                for c in conns:
                    try:
                        c.close()
                    except libvirt.libvirtError:
                        pass
        self.destroy_quiet(dom)
        return out

    # -- figure 5: scale ----------------------------------------------------
    def fig5_scale(self):
        k = self.cfg.domains
        dpid = self.d.pid()
        time.sleep(0.5)
        rss_before = rss_kib(dpid)
        anon_before = rss_kib(dpid, "RssAnon")
        names = [self.name("scale") for _ in range(k)]
        doms, errors = [], []
        lock = threading.Lock()
        idx = {"i": 0}

        def starter():
            cn = self.connect()
            while True:
                with lock:
                    if idx["i"] >= len(names):
                        break
                    nm = names[idx["i"]]
                    idx["i"] += 1
                try:
                    d = cn.createXML(bios_xml(nm), 0)
                    self.track(nm)
                    with lock:
                        doms.append(d.UUIDString())
                except libvirt.libvirtError as e:
                    with lock:
                        errors.append("create %s: %s" % (nm, e))
        t0 = time.perf_counter()
        ths = [threading.Thread(target=starter, daemon=True) for _ in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(max(120, 10 * k))
        if any(t.is_alive() for t in ths):
            raise FigureTimeout("starting %d domains did not finish" % k)
        start_all = time.perf_counter() - t0
        time.sleep(1.0)
        rss_with = rss_kib(dpid)
        anon_with = rss_kib(dpid, "RssAnon")

        def reps(fn, count, deadline):
            lat = []

            def loop():
                for _ in range(count):
                    t0 = time.perf_counter()
                    fn()
                    lat.append(time.perf_counter() - t0)
            c = Call(loop).start()
            if not c.wait(deadline):
                return {"latency_s": lat, "error": "did not finish within %g s" % deadline}
            r = {"latency_s": lat}
            if c.error:
                r["error"] = c.error
            return r
        nlisted = len(self.conn.listAllDomains(0))
        res = {
            "domains": k, "running": len(doms), "listed": nlisted,
            "start_all_s": start_all, "start_errors": errors,
            "listAllDomains": reps(lambda: self.conn.listAllDomains(0), self.cfg.scale_reps * 2, 120),
            "getAllDomainStats(all)": reps(lambda: self.conn.getAllDomainStats(STATS_GROUPS, 0),
                                           self.cfg.scale_reps, 300),
        }
        rss_with2 = rss_kib(dpid)
        anon_with2 = rss_kib(dpid, "RssAnon")
        # tear down, in parallel as they were started
        uuids = list(doms)

        def stopper():
            cn = self.connect()
            while True:
                with lock:
                    if not uuids:
                        break
                    u = uuids.pop()
                try:
                    cn.lookupByUUIDString(u).destroy()
                except libvirt.libvirtError as e:
                    with lock:
                        errors.append("destroy: %s" % e)
        t0 = time.perf_counter()
        ths = [threading.Thread(target=stopper, daemon=True) for _ in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(max(120, 15 * k))
        if any(t.is_alive() for t in ths):
            raise FigureTimeout("destroying %d domains did not finish" % k)
        res["destroy_all_s"] = time.perf_counter() - t0
        time.sleep(2.0)
        res["rss_kib"] = {"before": rss_before, "with": max(x or 0 for x in (rss_with, rss_with2)),
                          "after": rss_kib(dpid)}
        # the anonymous part (heap, stacks): what "returned after teardown"
        # is about; VmRSS also counts the pages of the daemon's libraries
        # that the start and stop paths touched for the first time
        res["rss_anon_kib"] = {"before": anon_before,
                               "with": max(x or 0 for x in (anon_with, anon_with2)),
                               "after": rss_kib(dpid, "RssAnon")}
        return res

    # -- figure 6: graceful shutdown of a Linux guest -----------------------
    def fig6_shutdown(self):
        out = {"shutdown_s": [], "boot_ready_s": [], "errors": []}
        for i in range(self.cfg.shutdowns):
            n = self.name("linux")
            serial = os.path.join(self.cfg.serial_dir, n + ".serial")
            xml = linux_xml(n, self.cfg.kernel, self.cfg.initrd, serial)
            t0 = time.perf_counter()
            dom = bounded(lambda: self.conn.createXML(xml, 0), 120, "create linux guest")
            self.track(n)
            ready = False
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    with open(serial, "rb") as f:
                        if b"TANDEM-GUEST-READY" in f.read():
                            ready = True
                            break
                except OSError:
                    pass
                time.sleep(0.05)
            if not ready:
                out["errors"].append("guest not ready within 120 s")
                self.destroy_quiet(dom)
                continue
            out["boot_ready_s"].append(time.perf_counter() - t0)
            time.sleep(1.0)   # let acpid settle
            t0 = time.perf_counter()
            c = Call(dom.shutdown).start()
            if not c.wait(60) or c.error:
                out["errors"].append("shutdown: %s" % (c.error or "no return in 60 s"))
                self.destroy_quiet(dom)
                continue
            # transient domain: gone from the daemon when QEMU exited
            off = False
            deadline = time.time() + 90
            while time.time() < deadline:
                try:
                    st = dom.state()[0]
                    if st == libvirt.VIR_DOMAIN_SHUTOFF:
                        off = True
                        break
                except libvirt.libvirtError as e:
                    if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                        off = True
                        break
                time.sleep(0.005)
            if off:
                out["shutdown_s"].append(time.perf_counter() - t0)
            else:
                out["errors"].append("not shut off within 90 s of shutdown")
                self.destroy_quiet(dom)
        return out

    # -- figure 7: a stuck QEMU (SIGSTOP) -----------------------------------
    def fig7_stuck(self):
        D = self.cfg.stuck_deadline
        sname, oname = self.name("stuck"), self.name("other")
        s = bounded(lambda: self.create_bios(sname), 120, "create")
        o = bounded(lambda: self.create_bios(oname), 120, "create")
        spid = self.d.qemu_pid(sname)
        time.sleep(0.5)
        out = {"deadline_s": D, "calls": {}}

        def fresh():
            cn = self.connect()
            return cn, cn.lookupByName(sname), cn.lookupByName(oname)

        cases = [
            ("GetInfo(stuck)", lambda cn, sd, od: sd.info()),
            ("GetInfo(other)", lambda cn, sd, od: od.info()),
            ("MemoryStats(other)", lambda cn, sd, od: od.memoryStats()),
            ("listAllDomains", lambda cn, sd, od: len(cn.listAllDomains(0))),
            ("getAllDomainStats(all)", lambda cn, sd, od: stats_shape(cn.getAllDomainStats(STATS_GROUPS, 0))),
            ("MemoryStats(stuck)", lambda cn, sd, od: sd.memoryStats()),
            ("setMemory(stuck)", lambda cn, sd, od: sd.setMemory(48 * 1024)),
            ("suspend(stuck)", lambda cn, sd, od: sd.suspend()),
            # the same with a query already hanging on the stuck QEMU (the
            # job it holds is what the stock driver makes others wait for)
            ("setMemory(stuck), MemoryStats in flight", lambda cn, sd, od: sd.setMemory(56 * 1024)),
            ("getAllDomainStats(all), MemoryStats in flight",
             lambda cn, sd, od: stats_shape(cn.getAllDomainStats(STATS_GROUPS, 0))),
        ]
        for cname, fn in cases:
            cn, sd, od = fresh()
            os.kill(spid, signal.SIGSTOP)
            inflight = None
            if "in flight" in cname:
                cnx = self.connect()
                sdx = cnx.lookupByName(sname)
                inflight = Call(sdx.memoryStats).start()
                inflight.wait(min(1.0, D))
            c = Call(lambda: fn(cn, sd, od)).start()
            c.wait(D)
            r = c.record(D)
            # let QEMU go on: does the call complete then?
            os.kill(spid, signal.SIGCONT)
            if r["outcome"] == "timed out":
                if c.wait(max(10, D)):
                    r["after_sigcont"] = c.record(D)
                else:
                    r["after_sigcont"] = {"outcome": "still no return %g s after SIGCONT" % max(10, D)}
            if inflight is not None:
                inflight.wait(10)
                r["in_flight_MemoryStats"] = inflight.record(10)
                try:
                    cnx.close()
                except Exception:
                    pass
            out["calls"][cname] = r
            if cname == "suspend(stuck)":
                try:
                    if bounded(s.state, 30, "state")[0] == libvirt.VIR_DOMAIN_PAUSED:
                        bounded(s.resume, 30, "resume")
                except Exception:
                    pass
            try:
                cn.close()
            except Exception:
                pass
            time.sleep(0.2)
        # destroy of the stopped QEMU, with a MemoryStats hanging on it
        cn, sd, od = fresh()
        os.kill(spid, signal.SIGSTOP)
        hung = Call(lambda: sd.memoryStats()).start()
        hung.wait(min(2.0, D))
        cn2 = self.connect()
        sd2 = cn2.lookupByName(sname)
        c = Call(sd2.destroy).start()
        c.wait(max(D, 45))
        r = c.record(max(D, 45))
        r["qemu_gone"] = not alive(spid)
        out["calls"]["destroy(stuck, MemoryStats in flight)"] = r
        hung.wait(10)
        out["calls"]["the in-flight MemoryStats(stuck)"] = hung.record(min(2.0, D) + 10)
        if alive(spid):
            os.kill(spid, signal.SIGCONT)
        self.destroy_quiet(o)
        self.destroy_quiet(s)
        for x in (cn, cn2):
            try:
                x.close()
            except Exception:
                pass
        return out

    def cleanup_domains(self):
        try:
            doms = bounded(lambda: self.conn.listAllDomains(0), 30, "listAllDomains")
        except Exception:
            return
        for dom in doms:
            try:
                if dom.isActive():
                    self.destroy_quiet(dom, 30)
                if dom.isPersistent():
                    bounded(dom.undefine, 30, "undefine")
            except Exception:
                pass


FIGURES = [
    ("1", "fig1_start", 600),
    ("2", "fig2_idle", 900),
    ("3", "fig3_migration", 900),
    ("4", "fig4_throughput", 900),
    ("5", "fig5_scale", 1800),
    ("6", "fig6_shutdown", 900),
    ("7", "fig7_stuck", 900),
]


def run_driver(driver, driver_dir, cfg, reaper, rep):
    res = {"driver": driver, "rep": rep, "driver_dir": driver_dir,
           "loadavg_before": os.getloadavg(), "figures": {}, "errors": []}
    d = BenchDaemon("bench-%s" % driver, driver_dir,
                    os.path.join(cfg.cache_dir, driver), cfg.workdir)
    log("rep %d: %s: starting libvirtd (LIBVIRT_DRIVER_DIR=%s)" % (rep, driver, driver_dir))
    sess = None
    try:
        d.start()
        reaper.add(d.pid())
        res["daemon_rss_kib_at_start"] = rss_kib(d.pid())
        sess = Session(driver, d, cfg, reaper, rep)
        res["hypervisor"] = sess.conn.getType()
        for fig, meth, budget in FIGURES:
            if fig not in cfg.figures:
                continue
            log("rep %d: %s: figure %s" % (rep, driver, fig))
            t0 = time.time()
            c = Call(getattr(sess, meth)).start()
            if not c.wait(budget):
                res["figures"][fig] = {"error": "figure did not finish within %d s" % budget}
                res["errors"].append("figure %s timed out; daemon run aborted" % fig)
                break
            if c.error:
                res["figures"][fig] = {"error": c.error}
                res["errors"].append("figure %s: %s" % (fig, c.error))
                log("rep %d: %s: figure %s failed: %s" % (rep, driver, fig, c.error))
            else:
                res["figures"][fig] = c.value
            res["figures"].setdefault(fig, {})
            if isinstance(res["figures"][fig], dict):
                res["figures"][fig]["elapsed_s"] = time.time() - t0
            # whatever a failed figure left behind
            if c.error:
                for p in d.all_qemu_pids():
                    reaper.add(p)
                    if proc_state(p) == "T":
                        os.kill(p, signal.SIGCONT)
                sess.cleanup_domains()
    except Exception as e:
        res["errors"].append("%s: %s" % (type(e).__name__, e))
        log("rep %d: %s: %s" % (rep, driver, traceback.format_exc()))
    finally:
        for p in d.all_qemu_pids():
            reaper.add(p)
        if sess is not None:
            c = Call(sess.cleanup_domains).start()
            c.wait(120)
        for p in d.all_qemu_pids():
            reaper.add(p)
        res["daemon_log_tail"] = d.log_tail(30).splitlines()[-30:]
        if os.environ.get("TANDEM_KEEP_TMP"):
            d.stop()
        else:
            d.cleanup()
        reaper.kill_all()
    return res


# ---------------------------------------------------------------------------
# The QMP floor: QEMU's own round trip, on a QMP socket of our own
# ---------------------------------------------------------------------------

def qmp_floor(cfg, reaper):
    sock = os.path.join(cfg.workdir, "floor.qmp")
    argv = [QEMU_BINARY, "-name", "guest=%s-floor" % reaper.tag, "-machine", "pc,acpi=on",
            "-accel", "tcg", "-m", "64", "-smp", "1", "-nodefaults", "-display", "none",
            "-no-user-config", "-device", "virtio-balloon-pci",
            "-qmp", "unix:%s,server=on,wait=off" % sock]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    reaper.add(p.pid)
    try:
        deadline = time.time() + 30
        while not os.path.exists(sock):
            if time.time() > deadline or p.poll() is not None:
                return {"error": "QEMU QMP socket did not appear"}
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(sock)
        f = s.makefile("rwb", buffering=0)

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise RuntimeError("QMP EOF")
                m = json.loads(line)
                if "return" in m or "error" in m:
                    return m

        f.readline()   # greeting
        f.write(b'{"execute":"qmp_capabilities"}\n')
        reply()
        # let the guest get past SeaBIOS's busy start, as the libvirt
        # figures do (SETTLE_S): measured at once, the floor's p99 is the
        # boot's (150 ms), not QMP's
        time.sleep(SETTLE_S)
        out = {}
        for cmd in ("query-status", "query-balloon"):
            msg = ('{"execute":"%s"}\n' % cmd).encode()
            for _ in range(10):
                f.write(msg)
                reply()
            lat = []
            for _ in range(cfg.queries):
                t0 = time.perf_counter()
                f.write(msg)
                reply()
                lat.append(time.perf_counter() - t0)
            out[cmd] = {"latency_s": lat}
        s.close()
        return out
    finally:
        p.kill()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


# ---------------------------------------------------------------------------
# Summary table
# ---------------------------------------------------------------------------

def pooled(runs, driver, getter):
    xs = []
    for r in runs:
        if r["driver"] != driver:
            continue
        try:
            v = getter(r["figures"])
        except (KeyError, TypeError):
            continue
        if v:
            xs += v
    return xs


def first_error(runs, driver, getter):
    for r in runs:
        if r["driver"] != driver:
            continue
        try:
            e = getter(r["figures"])
        except (KeyError, TypeError):
            continue
        if e:
            return e
    return None


def build_rows(results):
    runs = results["runs"]
    rows = []   # (figure, metric, unit, stock, tandem); values float or str

    def lat_rows(fig, label, get, err=None, pcts=(50, 99), unit="ms", scale=1000.0):
        for p in pcts:
            vals = []
            for drv in DRIVERS:
                xs = pooled(runs, drv, get)
                if xs:
                    vals.append(percentile(xs, p) * scale)
                else:
                    e = first_error(runs, drv, err) if err else None
                    vals.append("n/a" + (": " + e if e else ""))
            rows.append((fig, "%s p%d" % (label, p), unit, vals[0], vals[1]))

    lat_rows("1", "define+create until running", lambda f: f["1"]["define_create_s"],
             lambda f: f["1"].get("error"))
    for call in ("GetInfo", "GetJobStats", "MemoryStats", "GetAllDomainStats(1 dom)",
                 "qemu-monitor-command query-status"):
        lat_rows("2", "idle %s" % call, lambda f, c=call: f["2"][c]["latency_s"],
                 lambda f, c=call: f["2"].get("error") or f["2"][c].get("error"))
    fl = results.get("qmp_floor", {})
    for cmd in ("query-status", "query-balloon"):
        xs = fl.get(cmd, {}).get("latency_s")
        for p in (50, 99):
            v = percentile(xs, p) * 1000 if xs else "n/a"
            rows.append(("2", "raw QMP %s (floor, no libvirt) p%d" % (cmd, p), "ms", v, v))
    for host in ("source", "destination"):
        for p in (50, 99, 100):
            vals = []
            for drv in DRIVERS:
                xs = pooled(runs, drv, lambda f, h=host: f["3"]["hosts"][h]["latency_s"])
                if xs:
                    vals.append(percentile(xs, p) * 1000)
                else:
                    e = first_error(runs, drv, lambda f: f["3"].get("error"))
                    vals.append("n/a" + (": " + e if e else ""))
            rows.append(("3", "migration: %s queries %s" % (host, "max" if p == 100 else "p%d" % p),
                         "ms", vals[0], vals[1]))
        vals = []
        for drv in DRIVERS:
            recs = [r["figures"]["3"]["hosts"][host] for r in runs if r["driver"] == drv
                    and "hosts" in (r["figures"].get("3") or {})]
            if not recs:
                vals.append("n/a")
                continue
            nfail = sum(x["failures"] for x in recs)
            ncalls = sum(x["latency"].get("n", 0) for x in recs)
            msgs = {}
            for x in recs:
                for k, c in x["errors"].items():
                    msgs[k] = msgs.get(k, 0) + c
            v = "%d of %d" % (nfail, ncalls)
            if msgs:
                top = sorted(msgs.items(), key=lambda kv: -kv[1])[:3]
                v += "|" + "; ".join("%dx %s" % (c, k) for k, c in top)
            vals.append(v)
        rows.append(("3", "migration: %s failed calls" % host, "", vals[0], vals[1]))
    for key, label, unit in (("migration_total_s", "migration total time", "s"),
                             ("downtime_ms", "migration downtime", "ms")):
        vals = []
        for drv in DRIVERS:
            xs = [r["figures"]["3"][key] for r in runs if r["driver"] == drv
                  and (r["figures"].get("3") or {}).get(key) is not None]
            if xs:
                vals.append(sorted(xs)[len(xs) // 2])
            else:
                recs = [r["figures"].get("3") or {} for r in runs if r["driver"] == drv]
                e = next((x.get("error") or x.get("migration_outcome") for x in recs
                          if x.get("error") or x.get("migration_outcome", "ok") != "ok"), None)
                vals.append("n/a" + (": " + e if e else ""))
        rows.append(("3", label, unit, vals[0], vals[1]))
    for call in ("MemoryStats", "GetAllDomainStats(1 dom)"):
        for nt in results["config"]["threads"]:
            for what, unit in (("calls/s", "calls/s"), ("p99", "ms")):
                vals = []
                for drv in DRIVERS:
                    xs = []
                    err = None
                    for r in runs:
                        if r["driver"] != drv:
                            continue
                        try:
                            e = r["figures"]["4"][call][str(nt)]
                        except (KeyError, TypeError):
                            err = err or (r["figures"].get("4", {}) or {}).get("error")
                            continue
                        if e["calls"] == 0:
                            err = err or e.get("first_error")
                            continue
                        xs.append(e["calls_per_s"] if what == "calls/s" else e["latency"]["p99"] * 1000)
                    if xs:
                        vals.append(sum(xs) / len(xs) if what == "calls/s" else max(xs))
                    else:
                        vals.append("n/a" + (": " + err if err else ""))
                rows.append(("4", "%s x%d threads %s" % (call, nt, what), unit, vals[0], vals[1]))
    k = results["config"]["domains"]
    lat_rows("5", "listAllDomains (%d running)" % k, lambda f: f["5"]["listAllDomains"]["latency_s"],
             lambda f: f["5"].get("error") or f["5"]["listAllDomains"].get("error"), pcts=(50,))
    lat_rows("5", "getAllDomainStats over %d" % k,
             lambda f: f["5"]["getAllDomainStats(all)"]["latency_s"],
             lambda f: f["5"].get("error") or f["5"]["getAllDomainStats(all)"].get("error"),
             pcts=(50, 99))
    lat_rows("5", "start %d domains (4 clients), total" % k, lambda f: [f["5"]["start_all_s"]],
             lambda f: f["5"].get("error"), pcts=(50,), unit="s", scale=1.0)
    for key, label in (("rss_kib", "daemon RSS"), ("rss_anon_kib", "daemon RssAnon")):
        for when in ("before", "with", "after"):
            vals = []
            for drv in DRIVERS:
                xs = [r["figures"]["5"][key][when] / 1024.0 for r in runs
                      if r["driver"] == drv and key in (r["figures"].get("5") or {})
                      and r["figures"]["5"][key][when]]
                vals.append(max(xs) if xs else "n/a")
            rows.append(("5", "%s %s %d domains" % (label, when, k), "MiB", vals[0], vals[1]))
    lat_rows("6", "destroy (API return)", lambda f: f["1"]["destroy_s"], lambda f: f["1"].get("error"))
    lat_rows("6", "destroy: QEMU gone after", lambda f: f["1"]["qemu_gone_after_s"],
             lambda f: f["1"].get("error"), pcts=(50,))
    lat_rows("6", "graceful shutdown (ACPI) until shut off", lambda f: f["6"]["shutdown_s"],
             lambda f: f["6"].get("error") or "; ".join(f["6"].get("errors", [])), pcts=(50, 99),
             unit="s", scale=1.0)
    # figure 7: per call, median return time over repetitions and outcome
    calls7 = []
    for r in runs:
        for c in ((r["figures"].get("7") or {}).get("calls") or {}):
            if c not in calls7:
                calls7.append(c)
    for c in calls7:
        vals = []
        for drv in DRIVERS:
            recs = [r["figures"]["7"]["calls"][c] for r in runs if r["driver"] == drv
                    and c in ((r["figures"].get("7") or {}).get("calls") or {})]
            if not recs:
                vals.append("n/a")
                continue
            vals.append(describe7(recs))
        rows.append(("7", "stuck QEMU: %s" % c, "s", vals[0], vals[1]))
    return rows


def describe7(recs):
    rec = recs[len(recs) // 2]
    if rec["outcome"] == "timed out":
        s = ">%gs, no return" % float(rec["note"].split()[3])
        a = rec.get("after_sigcont")
        if a and a.get("returned_after_s") is not None:
            s += "; %s on SIGCONT" % a["outcome"]
        return s
    ts = sorted(r["returned_after_s"] for r in recs if r.get("returned_after_s") is not None)
    t = ts[len(ts) // 2] if ts else rec["returned_after_s"]
    s = "%.3f %s" % (t, rec["outcome"])
    if rec.get("error"):
        s += "|" + rec["error"]
    return s


def fmt(v, unit):
    if isinstance(v, str):
        return v
    if unit == "calls/s":
        return "%.0f" % v
    if unit == "MiB":
        return "%.1f" % v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.3f" % v


def ratio(a, b):
    if isinstance(a, str) or isinstance(b, str) or not a:
        return "-"
    r = b / a
    return "%.2fx" % r if r >= 0.01 else "%.4fx" % r


def table_text(results, rows):
    m = results["meta"]
    lines = []
    lines.append("Tandem vs stock libvirt QEMU driver  (%s, %s mode)" % (m["date"], m["mode"]))
    lines.append("machine: %s, nproc %d, %s, kernel %s; load avg at start %s, at end %s" % (
        m["cpu_model"], m["nproc"], m["mem"], m["kernel"], m["loadavg_start"],
        m.get("loadavg_end", "?")))
    lines.append("accelerator %s; libvirt %s, QEMU %s; reps %d, driver order per rep: %s" % (
        m["accelerator"], m["libvirt"], m["qemu"], m["reps"],
        ", ".join("/".join(o) for o in m["orders"])))
    lines.append("same libvirtd, python3-libvirt over the unix socket, QEMU, guests and "
                 "settings; only LIBVIRT_DRIVER_DIR differs")
    lines.append("")
    notes = []

    def note(text):
        text = text.replace("libvirtError: ", "")
        if text not in notes:
            notes.append(text)
        return " [%d]" % (notes.index(text) + 1)

    def cell(v, unit, wv):
        f = fmt(v, unit)
        if "|" in f:                      # "0.001 error|the message"
            head, text = f.split("|", 1)
            return head + note(text)
        if len(f) <= wv:
            return f
        if f.startswith("n/a: "):
            return "n/a" + note(f[5:])
        tagn = note(f)
        return f[:wv - len(tagn) - 2] + ".." + tagn
    w = max(len(r[1]) for r in rows) + 1
    wv = 30
    hdr = "%-3s %-*s %-7s %*s %*s %8s" % ("fig", w, "metric", "unit", wv, "stock", wv, "tandem", "T/stock")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for fig, metric, unit, s, t in rows:
        rt = ratio(s, t) if not metric.startswith("raw QMP") else "-"
        lines.append("%-3s %-*s %-7s %*s %*s %8s" % (fig, w, metric, unit, wv, cell(s, unit, wv),
                                                    wv, cell(t, unit, wv), rt))
    if notes:
        lines.append("")
        for i, n in enumerate(notes):
            lines.append("[%d] %s" % (i + 1, n))
    return "\n".join(lines)


def _log(ax, which):
    """Log scale when the axis has positive data to show."""
    import math
    vals = []
    for line in ax.get_lines():
        vals += list(line.get_xdata() if which == "x" else line.get_ydata())
    for p in ax.patches:
        bb = p.get_bbox() if hasattr(p, "get_bbox") else p.get_path().get_extents()
        vals += [bb.x1] if which == "x" else [bb.y1]
    vals = [v for v in vals if isinstance(v, (int, float)) and not math.isnan(v)]
    if vals and min(vals) > 0:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")


def plot_safe(results, path):
    try:
        return plot(results, path)
    except Exception:
        log("plot failed:\n%s" % traceback.format_exc())
        return None


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log("no plot: %s" % e)
        return None
    runs = results["runs"]
    colors = {"stock": "tab:blue", "tandem": "tab:orange"}
    fig, axes = plt.subplots(2, 4, figsize=(23, 10))
    m = results["meta"]
    fig.suptitle("Tandem vs stock libvirt QEMU driver: %s, nproc %d, %s, %s mode, %s" % (
        m["cpu_model"], m["nproc"], m["accelerator"], m["mode"], m["date"]))

    # (a) idle latency distributions (fig 2)
    ax = axes[0][0]
    calls = ["GetInfo", "GetJobStats", "MemoryStats", "GetAllDomainStats(1 dom)",
             "qemu-monitor-command query-status"]
    data, labels, cols = [], [], []
    for c in calls:
        for drv in DRIVERS:
            xs = pooled(runs, drv, lambda f, c=c: f["2"][c]["latency_s"])
            data.append([x * 1000 for x in xs] or [float("nan")])
            labels.append("%s\n%s" % (c.replace("qemu-monitor-command ", "QMP ").replace("(1 dom)", ""), drv))
            cols.append(colors[drv])
    xs = results.get("qmp_floor", {}).get("query-status", {}).get("latency_s")
    if xs:
        data.append([x * 1000 for x in xs])
        labels.append("raw QMP\nfloor")
        cols.append("tab:gray")
    bp = ax.boxplot(data, whis=(1, 99), showfliers=False, patch_artist=True)
    for patch, c in zip(bp["boxes"], cols):
        patch.set_facecolor(c)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    _log(ax, "y")
    ax.set_ylabel("ms (box p25-p75, whiskers p1-p99)")
    ax.set_title("2: idle query latency, one domain")

    # (b, c) throughput (fig 4)
    for ax, call in ((axes[0][1], "MemoryStats"), (axes[0][2], "GetAllDomainStats(1 dom)")):
        for drv in DRIVERS:
            pts, p99 = [], []
            for nt in results["config"]["threads"]:
                v = [r["figures"]["4"][call][str(nt)] for r in runs if r["driver"] == drv
                     and call in (r["figures"].get("4") or {}) and str(nt) in r["figures"]["4"][call]]
                v = [e for e in v if e["calls"]]
                if v:
                    pts.append((nt, sum(e["calls_per_s"] for e in v) / len(v)))
                    p99.append((nt, max((e["latency"].get("p99") or 0) for e in v) * 1000))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[drv],
                        label="%s calls/s" % drv)
                ax2 = ax.twinx() if not hasattr(ax, "_tw") else ax._tw
                ax._tw = ax2
                ax2.plot([p[0] for p in p99], [p[1] for p in p99], "x--", color=colors[drv],
                         label="%s p99 ms" % drv)
                ax2.set_ylabel("p99 latency, ms (dashed)")
        if hasattr(ax, "_tw"):
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax._tw.get_legend_handles_labels()
            ax._tw.set_ylim(bottom=0)
            ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(results["config"]["threads"])
        ax.set_xticklabels([str(t) for t in results["config"]["threads"]])
        ax.set_xlabel("client threads (one connection each)")
        ax.set_ylabel("calls/s (solid)")
        ax.set_ylim(bottom=0)
        ax.set_title("4: throughput, one domain: %s" % call)

    # (g) queries during live migration (fig 3)
    ax = axes[0][3]
    data, labels, cols = [], [], []
    for host in ("source", "destination"):
        for drv in DRIVERS:
            xs = pooled(runs, drv, lambda f, h=host: f["3"]["hosts"][h]["latency_s"])
            data.append([x * 1000 for x in xs] or [float("nan")])
            labels.append("%s\n%s" % (host, drv))
            cols.append(colors[drv])
    bp = ax.boxplot(data, whis=(1, 99), showfliers=False, patch_artist=True)
    for patch, c in zip(bp["boxes"], cols):
        patch.set_facecolor(c)
    for j, xs in enumerate(data):
        xs = [x for x in xs if x == x]
        if xs:
            ax.plot([j + 1], [max(xs)], "k^", markersize=5)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=8)
    _log(ax, "y")
    ax.set_ylabel("ms (box p25-p75, whiskers p1-p99, ^ max)")
    ax.set_title("3: queries during live migration")

    # (h) legend / notes panel
    ax = axes[1][3]
    ax.axis("off")
    ax.text(0.0, 1.0, "blue: stock driver\norange: Tandem\ngray: raw QMP floor\n\n"
            "load avg at start %s\nat end %s" % (m["loadavg_start"], m.get("loadavg_end", "?").replace(" (", "\n(")),
            va="top", fontsize=10, transform=ax.transAxes, wrap=True)

    # (d) start / destroy / shutdown distributions (figs 1, 6)
    ax = axes[1][0]
    data, labels, cols = [], [], []
    for lab, get in (("start", lambda f: f["1"]["define_create_s"]),
                     ("destroy", lambda f: f["1"]["destroy_s"]),
                     ("QEMU gone", lambda f: f["1"]["qemu_gone_after_s"])):
        for drv in DRIVERS:
            xs = pooled(runs, drv, get)
            data.append([x * 1000 for x in xs] or [float("nan")])
            labels.append("%s\n%s" % (lab, drv))
            cols.append(colors[drv])
    bp = ax.boxplot(data, whis=(0, 100), patch_artist=True)
    for patch, c in zip(bp["boxes"], cols):
        patch.set_facecolor(c)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=7)
    _log(ax, "y")
    ax.set_ylabel("ms")
    ax.set_title("1, 6: define+create until running; destroy")

    # (e) scale (fig 5)
    ax = axes[1][1]
    k = results["config"]["domains"]
    for i, drv in enumerate(DRIVERS):
        xs = pooled(runs, drv, lambda f: f["5"]["getAllDomainStats(all)"]["latency_s"])
        ls = pooled(runs, drv, lambda f: f["5"]["listAllDomains"]["latency_s"])
        vals = [percentile(ls, 50) * 1000 if ls else 0, percentile(xs, 50) * 1000 if xs else 0]
        ax.bar([j + i * 0.4 for j in range(2)], vals, width=0.4, color=colors[drv], label=drv)
    ax.set_xticks([0.2, 1.2])
    ax.set_xticklabels(["listAllDomains p50", "getAllDomainStats p50"])
    _log(ax, "y")
    ax.set_ylabel("ms")
    ax.set_title("5: %d running domains" % k)
    ax.legend(fontsize=8)

    # (f) stuck QEMU (fig 7)
    ax = axes[1][2]
    calls7 = []
    for r in runs:
        for c in ((r["figures"].get("7") or {}).get("calls") or {}):
            if c not in calls7:
                calls7.append(c)
    for i, drv in enumerate(DRIVERS):
        vals, hatch = [], []
        for c in calls7:
            recs = [r["figures"]["7"]["calls"][c] for r in runs if r["driver"] == drv
                    and c in ((r["figures"].get("7") or {}).get("calls") or {})]
            if not recs:
                vals.append(0)
                continue
            rec = recs[len(recs) // 2]
            if rec["returned_after_s"] is None:
                vals.append(float(rec["note"].split()[3]))
                hatch.append(len(vals) - 1)
            else:
                vals.append(max(rec["returned_after_s"], 1e-4))
        bars = ax.barh([j + i * 0.4 for j in range(len(calls7))], vals, height=0.4,
                       color=colors[drv], label=drv)
        for j in hatch:
            bars[j].set_hatch("//")
    ax.set_yticks([j + 0.2 for j in range(len(calls7))])
    ax.set_yticklabels(calls7, fontsize=7)
    _log(ax, "x")
    ax.set_xlabel("s until the call returned (hatched: client deadline hit)")
    ax.set_title("7: one QEMU stopped (SIGSTOP)")
    ax.legend(fontsize=8)

    try:
        fig.tight_layout()
    except ValueError:
        pass
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def machine_meta(cfg):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB RAM" % (int(line.split()[1]) / 1024.0 / 1024.0)
    qv = qemu_version()[0]
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "mode": "quick" if cfg.quick else "full",
            "nproc": os.cpu_count(), "cpu_model": cpu, "mem": mem,
            "kernel": platform.release(),
            "loadavg_start": "%.2f %.2f %.2f" % os.getloadavg(),
            "accelerator": "TCG (domain type='qemu')",
            "libvirt": "%d.%d.%d" % (libvirt.getVersion() // 1000000,
                                     libvirt.getVersion() // 1000 % 1000,
                                     libvirt.getVersion() % 1000),
            "qemu": qv, "reps": cfg.reps}


def guest_paths():
    r = subprocess.run([os.path.join(SRCDIR, "tests", "guest", "build-guest.sh")],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError("tests/guest/build-guest.sh failed (%d):\n%s" % (
            r.returncode, r.stderr[-2000:]))
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    return kv["KERNEL"], kv["INITRD"], kv.get("DIRTY")


def main():
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--driver-dir", default=os.environ.get("TANDEM_DRIVER_DIR",
                                                           os.path.join(SRCDIR, "driver-dir")))
    ap.add_argument("--stock-driver-dir", default=STOCK_DRIVER_DIR)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--cache-dir", default=os.environ.get("BENCH_CACHE_DIR", "/var/cache/tandem-bench"),
                    help="QEMU capabilities caches kept between runs (one per driver)")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", 1 if quick else 2)))
    ap.add_argument("--duration", type=float,
                    default=float(os.environ.get("BENCH_DURATION", 1.5 if quick else 10)),
                    help="seconds per throughput point (figure 4)")
    ap.add_argument("--domains", type=int,
                    default=int(os.environ.get("BENCH_DOMAINS", 5 if quick else 50)))
    ap.add_argument("--starts", type=int, default=4 if quick else 12)
    ap.add_argument("--queries", type=int, default=60 if quick else 500)
    ap.add_argument("--scale-reps", type=int, default=3 if quick else 10)
    ap.add_argument("--shutdowns", type=int, default=1 if quick else 3)
    ap.add_argument("--stuck-deadline", type=float,
                    default=float(os.environ.get("BENCH_STUCK_DEADLINE", 4 if quick else 40)))
    ap.add_argument("--threads", default="1,4,16")
    ap.add_argument("--figures", default=os.environ.get("BENCH_FIGURES", "1,2,3,4,5,6,7"))
    ap.add_argument("--drivers", default="stock,tandem")
    ap.add_argument("--replot", metavar="JSON", nargs="+",
                    help="only rebuild the table and the PNG from raw results; with "
                    "several files (e.g. figure 3 run on its own), their runs are pooled "
                    "and the first file's machine data heads the table; written as "
                    "FIRST-merged.{txt,png,json}")
    cfg = ap.parse_args()
    if cfg.replot:
        with open(cfg.replot[0]) as f:
            results = json.load(f)
        stem = cfg.replot[0][:-5] if cfg.replot[0].endswith(".json") else cfg.replot[0]
        if len(cfg.replot) > 1:
            stem += "-merged"
            results["meta"]["merged_from"] = [os.path.basename(x) for x in cfg.replot]
            for other in cfg.replot[1:]:
                with open(other) as f:
                    o = json.load(f)
                results["runs"] += o["runs"]
                results["meta"]["loadavg_end"] += " (%s: start %s, end %s)" % (
                    os.path.basename(other), o["meta"]["loadavg_start"],
                    o["meta"].get("loadavg_end", "?"))
            with open(stem + ".json", "w") as f:
                json.dump(results, f, indent=1, default=str)
        rows = build_rows(results)
        text = table_text(results, rows)
        with open(stem + ".txt", "w") as f:
            f.write(text + "\n")
        print(text)
        print("plot:        %s" % (plot_safe(results, stem + ".png") or "(none)"))
        return
    cfg.quick = quick
    global MIG_DATA_MIB, MIG_SECONDS
    MIG_DATA_MIB = int(os.environ.get("BENCH_MIG_MIB", 128 if quick else MIG_DATA_MIB))
    MIG_SECONDS = float(os.environ.get("BENCH_MIG_SECONDS", 6 if quick else MIG_SECONDS))
    cfg.mig_data_mib, cfg.mig_seconds = MIG_DATA_MIB, MIG_SECONDS
    cfg.threads = [int(x) for x in cfg.threads.split(",")]
    cfg.figures = cfg.figures.split(",")
    drivers = cfg.drivers.split(",")
    dirs = {"stock": cfg.stock_driver_dir, "tandem": os.path.abspath(cfg.driver_dir)}
    if "tandem" in drivers and not os.path.exists(os.path.join(dirs["tandem"], "libvirt_driver_qemu.so")):
        sys.exit("bench: no Tandem module in %s (build first, or --driver-dir)" % dirs["tandem"])
    if os.geteuid() != 0:
        sys.exit("bench: needs root (libvirtd in private mount namespaces)")

    run_id = time.strftime("%Y%m%d-%H%M%S")
    reaper = Reaper("bnch%x" % (os.getpid() & 0xffff))
    cfg.workdir = "/tmp/tandem-bench-%s-%d" % (run_id, os.getpid())
    os.makedirs(cfg.workdir)
    os.chmod(cfg.workdir, 0o755)
    cfg.serial_dir = os.path.join(cfg.workdir, "serial")
    os.makedirs(cfg.serial_dir)
    os.chmod(cfg.serial_dir, 0o777)

    def on_signal(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    results = {"meta": machine_meta(cfg),
               "config": {k: v for k, v in vars(cfg).items()
                          if isinstance(v, (int, float, str, list, bool))},
               "runs": []}
    orders = []
    t_start = time.time()
    rc = 0
    try:
        cfg.dirty = None
        if "6" in cfg.figures or "3" in cfg.figures:
            k, i, dirty = guest_paths()
            if dirty:
                cfg.dirty = os.path.join(cfg.workdir, "dirty.elf")
                shutil.copy(dirty, cfg.dirty)
                os.chmod(cfg.dirty, 0o644)
            # a world-readable copy: QEMU runs as libvirt-qemu, and the stock
            # driver relabels what it is given
            cfg.kernel = os.path.join(cfg.workdir, "vmlinuz")
            cfg.initrd = os.path.join(cfg.workdir, "initrd.img")
            shutil.copy(k, cfg.kernel)
            shutil.copy(i, cfg.initrd)
            os.chmod(cfg.kernel, 0o644)
            os.chmod(cfg.initrd, 0o644)
        log("QMP floor (raw QEMU socket)")
        results["qmp_floor"] = qmp_floor(cfg, reaper)
        for rep in range(cfg.reps):
            order = drivers if rep % 2 == 0 else list(reversed(drivers))
            orders.append(order)
            for drv in order:
                results["runs"].append(run_driver(drv, dirs[drv], cfg, reaper, rep))
    except KeyboardInterrupt as e:
        log("interrupted (%s): cleaning up" % (e or "Ctrl-C"))
        results["interrupted"] = True
        rc = 130
    finally:
        reaper.kill_all()
        if os.environ.get("TANDEM_KEEP_TMP"):
            log("kept %s" % cfg.workdir)
        else:
            shutil.rmtree(cfg.workdir, ignore_errors=True)
    results["meta"]["orders"] = orders or [drivers]
    results["meta"]["wall_s"] = time.time() - t_start
    results["meta"]["loadavg_end"] = "%.2f %.2f %.2f" % os.getloadavg()

    os.makedirs(cfg.out, exist_ok=True)
    stem = os.path.join(cfg.out, "bench-%s-%s" % (run_id, results["meta"]["mode"]))
    rows = build_rows(results)
    results["table"] = [list(r) for r in rows]
    text = table_text(results, rows)
    with open(stem + ".json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(stem + ".txt", "w") as f:
        f.write(text + "\n")
    png = plot_safe(results, stem + ".png")
    print(text)
    print()
    errs = [(r["driver"], r["rep"], e) for r in results["runs"] for e in r["errors"]]
    if errs:
        print("errors during the run:")
        for d, rp, e in errs:
            print("  rep %d %s: %s" % (rp, d, e))
    print("raw results: %s.json" % stem)
    print("table:       %s.txt" % stem)
    print("plot:        %s" % (png or "(none: matplotlib missing)"))
    print("wall time:   %.0f s" % results["meta"]["wall_s"])
    sys.stdout.flush()
    os._exit(rc)     # do not wait for calls still hanging in daemon threads


if __name__ == "__main__":
    main()
