# test_prometheus_exporter.py: Debian's prometheus-libvirt-exporter (0.2.0),
# unmodified, scraping real libvirtd daemons that run Tandem.
#
# - one exporter per daemon (host A and host B), each on a free loopback
#   port, pointed at the daemon's URI with --libvirt.uri;
# - a running guest with a disk: every libvirt_domain_* metric the exporter
#   knows is present, with the values virsh reports (dominfo, domstate,
#   domblkstat, list --all); a paused guest reads state 3;
# - scrapes every 0.3 s on both exporters while a live migration from A to
#   B runs, throttled with --bandwidth so that it lasts several seconds:
#   every scrape answers 200 with libvirt_up 1 (on A one scrape may fail
#   at the handover: the exporter lists the domains, then asks each, and
#   the domain left in between; its log then names the migration), A carries the running
#   domain in every scrape until the handover (the exporter lists active
#   domains only, so it is gone after it), B carries it paused while it
#   comes in and running after, every scrape round finds it on one host at
#   least, and none shows it running on A after B runs it.  Scrape counts and latencies are
#   printed.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tandemtest import TAP, Daemon  # noqa: E402
from clientutil import (define, dirty_xml, domstate, free_port, guest_paths,  # noqa: E402
                        migrate_bg, stop_proc, wait_for, wait_port)

t = TAP()
EXPORTER = "/usr/bin/prometheus-libvirt-exporter"
NAME = "prom1"
SCRAPE_PERIOD = 0.3
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Prometheus text format -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if m:
            labels = frozenset(LABEL.findall(m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    want = set(labels.items())
    for (n, lab), v in metrics.items():
        if n == name and want <= set(lab):
            return v
    return None


class Exporter:
    def __init__(self, d):
        self.d = d
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/metrics" % self.port
        self.log = open(os.path.join(d.dir, "exporter.log"), "w")
        self.proc = subprocess.Popen(
            [EXPORTER, "--web.listen-address=127.0.0.1:%d" % self.port,
             "--libvirt.uri=%s" % d.uri],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def up(self):
        return wait_port(self.port, self.proc)

    def scrape(self):
        """(ok, seconds, metrics or error text)"""
        start = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=30) as r:
                body = r.read().decode()
                status = r.status
        except Exception as ex:   # any failure is a failed scrape
            return False, time.monotonic() - start, repr(ex)
        dt = time.monotonic() - start
        return status == 200, dt, parse(body)

    def stop(self):
        stop_proc(self.proc)
        self.log.close()

    def logtext(self):
        with open(os.path.join(self.d.dir, "exporter.log")) as f:
            return f.read()


def virsh_kv(d, *args):
    r = d.virsh(*args)
    out = {}
    for line in r.out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
        elif len(line.split()) >= 2:
            # domblkstat: "vda rd_req 0"
            k, v = line.split()[-2:]
            out[k] = v
    return out


def test_values(a, ea, disk):
    ok, dt, m = ea.scrape()
    if not t.ok(ok, "scrape of host A answers 200", m):
        return
    print("# first scrape: %.3f s, %d samples" % (dt, len(m)), flush=True)
    t.eq(metric(m, "libvirt_up"), 1.0, "libvirt_up 1")
    ndom = len(a.virsh("list", "--all", "--name").out.split())
    t.eq(metric(m, "libvirt_domains_number"), float(ndom),
         "libvirt_domains_number = virsh list --all (%d)" % ndom)
    info = virsh_kv(a, "dominfo", NAME)
    uuid = info.get("UUID")
    lab = dict(domain=NAME, uuid=uuid)
    t.eq(metric(m, "libvirt_domain_state_code", **lab), 1.0,
         "libvirt_domain_state_code 1 (running) with domain and uuid labels")
    t.eq(metric(m, "libvirt_domain_info_virtual_cpus", **lab), float(info.get("CPU(s)", -1)),
         "libvirt_domain_info_virtual_cpus = dominfo CPU(s)")
    maxmem = int(info.get("Max memory", "0 KiB").split()[0]) * 1024
    t.eq(metric(m, "libvirt_domain_info_maximum_memory_bytes", **lab), float(maxmem),
         "libvirt_domain_info_maximum_memory_bytes = dominfo Max memory")
    used = int(info.get("Used memory", "0 KiB").split()[0]) * 1024
    t.eq(metric(m, "libvirt_domain_info_memory_usage_bytes", **lab), float(used),
         "libvirt_domain_info_memory_usage_bytes = dominfo Used memory")
    # CPU time grows: the scrape lies between two dominfo readings
    before = float(info.get("CPU time", "0s").rstrip("s"))
    ok, dt, m2 = ea.scrape()
    cpu = metric(m2, "libvirt_domain_info_cpu_time_seconds_total", **lab)
    after = float(virsh_kv(a, "dominfo", NAME).get("CPU time", "0s").rstrip("s"))
    t.ok(cpu is not None and before - 0.1 <= cpu <= after + 0.1 and cpu > 0,
         "libvirt_domain_info_cpu_time_seconds_total between two dominfo readings",
         "before %s scrape %s after %s" % (before, cpu, after))
    # block statistics of the disk (vda): domblkstat's counters
    blk = virsh_kv(a, "domblkstat", NAME, "vda")
    for metric_name, key in [("libvirt_domain_block_stats_read_bytes_total", "rd_bytes"),
                             ("libvirt_domain_block_stats_read_requests_total", "rd_req"),
                             ("libvirt_domain_block_stats_write_bytes_total", "wr_bytes"),
                             ("libvirt_domain_block_stats_write_requests_total", "wr_req")]:
        got = metric(m2, metric_name, domain=NAME, target_device="vda")
        t.eq(got, float(blk.get(key, -1)), "%s{target_device=vda} = domblkstat %s" % (metric_name, key))
    t.eq(metric(m2, "libvirt_domain_block_stats_read_bytes_total", source_file=disk), float(blk.get("rd_bytes", -1)),
         "block metrics carry the disk's source_file label")

    r = a.virsh("suspend", NAME)
    t.ok(r.rc == 0, "suspend", r)
    ok, dt, m3 = ea.scrape()
    t.eq((ok, metric(m3, "libvirt_domain_state_code", **lab)), (True, 3.0),
         "a paused domain: libvirt_domain_state_code 3")
    a.virsh("resume", NAME)
    t.eq(domstate(a, NAME), "running", "resumed")


class Scraper(threading.Thread):
    """Scrapes both exporters every SCRAPE_PERIOD and keeps every sample."""

    def __init__(self, exporters):
        super().__init__(daemon=True)
        self.exporters = exporters
        self.samples = []        # (host, t, ok, seconds, up, state or None, error)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for host, e in self.exporters:
                ok, dt, m = e.scrape()
                if ok:
                    st = metric(m, "libvirt_domain_state_code", domain=NAME)
                    self.samples.append((host, time.monotonic(), True, dt,
                                         metric(m, "libvirt_up"), st, None))
                else:
                    self.samples.append((host, time.monotonic(), False, dt, None, None, m))
            self.halt.wait(SCRAPE_PERIOD)

    def stop(self):
        self.halt.set()
        self.join(120)


def test_migration(a, b, ea, eb):
    sc = Scraper([("A", ea), ("B", eb)])
    sc.start()
    time.sleep(1)
    p = migrate_bg(a, NAME, b, ["--bandwidth", "8"])
    running = wait_for(lambda: "Unbounded" in a.virsh("domjobinfo", NAME).out, 30)
    t.ok(running, "live migration A -> B runs (throttled to 8 MiB/s)")
    # let the exporters see the migration for a while, then let it converge
    time.sleep(6)
    during = sum(1 for s in sc.samples if s[0] == "A")
    t.ok("Unbounded" in a.virsh("domjobinfo", NAME).out,
         "the migration still runs after 6 s of scraping (%d scrapes of A so far)" % during)
    a.virsh("migrate-setspeed", NAME, "0")
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        stop_proc(p)
        out, err = p.communicate()
    t.ok(p.returncode == 0, "virsh migrate --live succeeded", "rc=%s\n%s\n%s" % (p.returncode, out, err))
    time.sleep(1.5)
    sc.stop()

    samples = sc.samples
    failed = [s for s in samples if not s[2]]
    t.eq(failed, [], "every scrape answered 200 on both hosts during the migration")
    # The exporter lists the active domains, then asks each for its
    # numbers: a domain that leaves the host in between (the handover on
    # A) fails that one scrape with any driver.  B never fails; A at most
    # once, after its last scrape that saw the guest run, and its log must
    # say that the domain left (checked below).
    down_b = [s for s in samples if s[0] == "B" and s[2] and s[4] != 1.0]
    t.eq(down_b, [], "B: libvirt_up 1 in every scrape (no scrape error)")
    down_a = [s for s in samples if s[0] == "A" and s[2] and s[4] != 1.0]
    last_run_a = max((s[1] for s in samples if s[0] == "A" and s[2] and s[5] == 1.0), default=0)
    t.ok(len(down_a) <= 1 and all(s[1] > last_run_a for s in down_a),
         "A: libvirt_up 1 in every scrape but at most one at the handover (%d)" % len(down_a),
         down_a)
    sa = [s for s in samples if s[0] == "A" and s[2]]
    sb = [s for s in samples if s[0] == "B" and s[2]]
    states_a = [s[5] for s in sa]
    # A: running (1) until the handover, maybe paused (3) while it ends,
    # then gone from the exporter (it lists active domains only)
    n1 = next((i for i, v in enumerate(states_a) if v != 1.0), len(states_a))
    n3 = next((i for i, v in enumerate(states_a[n1:], n1) if v != 3.0), len(states_a))
    t.ok(n1 > 0 and all(v is None for v in states_a[n3:]) and states_a[-1] is None,
         "A: running in every scrape until the handover (%d scrapes), absent after it" % n1,
         states_a)
    states_b = [s[5] for s in sb]
    t.ok(states_b and states_b[-1] == 1.0, "B carries the running domain after the handover", states_b)
    t.ok(any(v == 3.0 for v in states_b),
         "B shows the incoming domain paused (state 3) while the migration runs", states_b)
    # no gap: when A is scraped and then B, one of them has the domain;
    # when B is scraped and then A, they never both show it running
    gaps, both = [], []
    for x, y in zip(samples, samples[1:]):
        if not (x[2] and y[2]):
            continue
        if x[0] == "A" and y[0] == "B" and x[5] is None and y[5] is None:
            gaps.append((x, y))
        if x[0] == "B" and y[0] == "A" and x[5] == 1.0 and y[5] == 1.0:
            both.append((x, y))
    t.eq(gaps, [], "no gap: every scrape round finds the domain on one host at least")
    t.eq(both, [], "no scrape shows the domain running on A after B runs it")
    lat = sorted(s[3] for s in samples)
    if lat:
        print("# scrapes during the migration: %d (A %d, B %d), failed %d; latency p50 %.3f s, "
              "p99 %.3f s, max %.3f s" % (len(samples), len(sa), len(sb), len(failed),
                                           lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                                           lat[-1]), flush=True)
    for name, e in (("A", ea), ("B", eb)):
        log = e.logtext()
        bad = [line for line in log.splitlines() if "error" in line.lower() or "failed" in line.lower()]
        if name == "A":
            # the handover scrape: the driver names why the domain is gone
            left = [line for line in bad if "has migrated to another host" in line or
                    "Domain not found" in line]
            bad = [line for line in bad if line not in left]
            t.ok(len(left) <= 1, "exporter of host A: at most one scrape error, naming the "
                 "migration that took the domain (%d)" % len(left), left)
        t.eq(bad, [], "exporter of host %s logged no other error" % name)


def main():
    if not os.access(EXPORTER, os.X_OK):
        t.skip("prometheus-libvirt-exporter", "%s not installed (build-aux/install-deps.sh)" % EXPORTER)
        t.done()
    a = Daemon("promA")
    b = Daemon("promB")
    files = tempfile.mkdtemp(prefix="tandem-prom-", dir=os.environ.get("TANDEM_TEST_TMPDIR") or None)
    os.chmod(files, 0o755)
    exporters = []
    try:
        paths = guest_paths()
        disk = os.path.join(files, "prom1.img")
        with open(disk, "wb") as f:
            f.truncate(8 << 20)
        os.chmod(disk, 0o666)
        a.start()
        b.start()
        ea, eb = Exporter(a), Exporter(b)
        exporters = [ea, eb]
        t.ok(ea.up() and eb.up(), "both exporters listen on their loopback ports (%d, %d)" % (ea.port, eb.port))
        devs = """<disk type='file' device='disk'><driver name='qemu' type='raw'/>
          <source file='%s'/><target dev='vda' bus='virtio'/></disk>""" % disk
        r = define(a, dirty_xml(NAME, paths["DIRTY"], dirty_mib=16, devices=devs))
        t.ok(r.rc == 0, "define %s on A" % NAME, r)
        r = a.virsh("start", NAME)
        t.ok(r.rc == 0, "start %s on A" % NAME, r)
        t.run("values", test_values, a, ea, disk)
        t.run("scrapes during a live migration", test_migration, a, b, ea, eb)
    except Exception as ex:
        t.ok(False, "setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
    finally:
        for e in exporters:
            e.stop()
        for d in (a, b):
            d.virsh("destroy", NAME)
            d.cleanup()
        shutil.rmtree(files, ignore_errors=True)
    t.done()


main()
