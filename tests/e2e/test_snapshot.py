# test_snapshot.py: memory dumps and internal snapshots on a real libvirtd
# running Tandem, with a guest that keeps dirtying its memory and a qcow2
# disk.  While a dump or a snapshot job runs a second client keeps asking
# dominfo, domstate and domjobinfo: none of those calls may fail (the worst
# latency seen is printed).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import signal
import subprocess
import threading
import time

import libvirt

from tandemtest import (
    guest_paths, TAP, Daemon, run, write_tmp, domstate, qemu_pid, alive, jobinfo, wait_for)

t = TAP()


def make_disk(d, name, fmt="qcow2"):
    """A disk image in the daemon's private images directory, root's: the
    driver gives it to the QEMU user while a guest runs."""
    path = "/var/lib/libvirt/images/%s.%s" % (name, fmt)
    real = d.private(path)
    os.makedirs(os.path.dirname(real), exist_ok=True)
    r = run(["qemu-img", "create", "-q", "-f", fmt, real, "32M"])
    if r.rc != 0:
        raise RuntimeError("qemu-img create failed: %s" % r)
    return path, real


def guest_xml(name, kernel, disk_path, fmt="qcow2", mem_mib=128):
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=32 quiet</cmdline></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='%s'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'/><console type='pty'/>
  </devices>
</domain>
""" % (name, mem_mib, kernel, fmt, disk_path)


def define(d, xml):
    path = write_tmp(xml)
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def qcow2_tags(real):
    r = run(["qemu-img", "snapshot", "-U", "-l", real])
    tags = []
    for line in r.out.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 2:
            tags.append(parts[1])
    return sorted(tags)


class Prober(threading.Thread):
    """Keeps querying a domain through python3-libvirt (dominfo, domstate,
    domjobinfo) and records failures, the worst latency, and what the job
    looked like while it ran."""

    def __init__(self, uri, name):
        super().__init__(daemon=True)
        self.uri, self.name = uri, name
        self.stop_flag = threading.Event()
        self.failures = []
        self.worst = 0.0
        self.count = 0
        self.jobs = []          # (type, operation, processed, total) seen running
        self.states = set()

    def run(self):
        conn = libvirt.open(self.uri)
        dom = conn.lookupByName(self.name)
        while not self.stop_flag.is_set():
            for call in ("info", "state", "jobStats"):
                start = time.time()
                try:
                    if call == "info":
                        dom.info()
                    elif call == "state":
                        st = dom.state()
                        self.states.add(tuple(st))
                    else:
                        js = dom.jobStats()
                        if js.get("type") == libvirt.VIR_DOMAIN_JOB_UNBOUNDED:
                            self.jobs.append((js.get("type"), js.get("operation"),
                                              js.get("data_processed"),
                                              js.get("data_total")))
                except libvirt.libvirtError as e:
                    self.failures.append((call, str(e)))
                dt = time.time() - start
                self.worst = max(self.worst, dt)
                self.count += 1
        conn.close()

    def stop(self):
        self.stop_flag.set()
        self.join(60)


def test_dump(d, kernel, outdir, realdir):
    """@outdir: the dump directory as the daemon sees it; @realdir: on disk."""
    disk, _ = make_disk(d, "dump1")
    define(d, guest_xml("dump1", kernel, disk, mem_mib=512))
    r = d.virsh("start", "dump1")
    t.ok(r.rc == 0, "dump1 starts", r)
    pid = qemu_pid(d, "dump1")

    # --live: ELF, the guest keeps running, queries answered throughout
    core = os.path.join(outdir, "dump1.core")
    core_real = os.path.join(realdir, "dump1.core")
    prober = Prober(d.uri, "dump1")
    prober.start()
    r = d.virsh("dump", "--memory-only", "--live", "dump1", core, timeout=300)
    prober.stop()
    t.ok(r.rc == 0, "dump --memory-only --live", r)
    with open(core_real, "rb") as f:
        head = f.read(5)
    t.eq(head, b"\x7fELF\x02", "the dump is a 64-bit ELF core")
    size = os.path.getsize(core_real)
    t.ok(512 * 2**20 <= size <= 600 * 2**20, "ELF dump size is about the guest RAM (%d bytes)" % size)
    st = os.stat(core_real)
    t.ok(st.st_uid == os.getuid(), "the dump file belongs to the daemon's user")
    t.eq(prober.failures, [], "no query failed during the live dump")
    print("# worst query latency during the dump: %.3f s (%d calls)" % (prober.worst, prober.count))
    t.ok(any(j[1] == libvirt.VIR_DOMAIN_JOB_OPERATION_DUMP and (j[3] or 0) > 0
             for j in prober.jobs),
         "domjobinfo during the dump: unbounded job, operation dump, data total",
         prober.jobs[:5])
    # QEMU itself stops the vCPUs while it writes the dump and resumes
    # them after (STOP/RESUME events), so the reason is 'unpaused', as with
    # the stock driver; --live means libvirt does not pause it on top.
    t.ok(domstate(d, "dump1").startswith("running"), "--live: the guest runs after the dump")
    info = jobinfo(d, "dump1", "--completed")
    t.ok(info.get("Job type") == "Completed" and info.get("Operation") == "Dump",
         "domjobinfo --completed: completed memory dump", info)
    t.ok("Data total" in info and info.get("Data remaining", "").startswith("0"),
         "domjobinfo --completed: data processed / total", info)

    # not live: paused during the dump, running after; kdump-zlib
    kd = os.path.join(outdir, "dump1.kdump")
    prober = Prober(d.uri, "dump1")
    prober.start()
    r = d.virsh("dump", "--memory-only", "--format", "kdump-zlib", "dump1", kd, timeout=300)
    prober.stop()
    t.ok(r.rc == 0, "dump --memory-only --format kdump-zlib", r)
    with open(os.path.join(realdir, "dump1.kdump"), "rb") as f:
        t.eq(f.read(8), b"makedump", "kdump-zlib file starts with the makedumpfile signature")
    t.eq(prober.failures, [], "no query failed during the non-live dump")
    t.ok((libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_DUMP) in prober.states or
         not prober.jobs, "the guest was paused (dumping) during a non-live dump",
         prober.states)
    t.eq(domstate(d, "dump1"), "running (unpaused)", "resumed after the non-live dump")

    # errors
    r = d.virsh("dump", "dump1", os.path.join(outdir, "raw.core"))
    t.ok(r.rc != 0 and "only --memory-only dumps are supported" in r.err,
         "a non memory-only dump is refused clearly", r)
    t.ok(not os.path.exists(os.path.join(realdir, "raw.core")), "no file left for it")
    r = d.virsh("dump", "--memory-only", "--format", "win-dmp", "dump1",
                os.path.join(outdir, "w.dmp"))
    t.ok(r.rc != 0 and "win-dmp" in r.err, "win-dmp is refused naming the format", r)
    t.ok(not os.path.exists(os.path.join(realdir, "w.dmp")), "no file left for win-dmp")
    r = d.virsh("dump", "--memory-only", "dump1", "/nonexistent-dir/x.core")
    t.ok(r.rc != 0 and "cannot create dump file" in r.err, "unwritable path reported", r)
    t.eq(domstate(d, "dump1"), "running (unpaused)", "the guest runs after failed dumps")

    # abort is refused while QEMU dumps (QEMU 7.2 cannot cancel it)
    p = subprocess.Popen(["virsh", "-q", "-c", d.uri, "dump", "--memory-only", "--live",
                          "dump1", os.path.join(outdir, "ab.core")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = wait_for(lambda: jobinfo(d, "dump1").get("Operation") == "Dump", 30)
    r = d.virsh("domjobabort", "dump1")
    out, err = p.communicate(timeout=300)
    if seen and p.returncode == 0 and r.rc != 0:
        t.ok("does not allow" in r.err, "domjobabort during a dump is refused at once", r)
    else:
        t.skip("domjobabort during a dump", "the dump ended before the abort (%s)" % r)
    t.eq(p.returncode, 0, "the dump that was asked to abort completed")

    # the daemon killed during a non-live dump: after the restart the job
    # is failed and the guest the dump paused runs again
    p = subprocess.Popen(["virsh", "-q", "-c", d.uri, "dump", "--memory-only",
                          "dump1", os.path.join(outdir, "kill.core")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the kill must come once the status file records the dump job (its
    # phase is written before QEMU is asked to dump; killed earlier, the
    # restarted daemon rightly knows of no dump)
    status = d.private("/run/libvirt/qemu/dump1.xml")

    def dump_recorded():
        try:
            with open(status) as f:
                return "async='dump'" in f.read()
        except OSError:
            return False
    seen = wait_for(dump_recorded, 30)
    d.stop(sig=signal.SIGKILL)
    p.communicate(timeout=60)
    d.start()
    if not seen:
        t.skip("a dump interrupted by a daemon restart", "the dump ended before the kill")
    else:
        t.ok(qemu_pid(d, "dump1") == pid and alive(pid),
             "the guest survives a daemon killed during its dump")
        t.ok(wait_for(lambda: domstate(d, "dump1").startswith("running"), 150),
             "after the restart the guest the dump paused runs again", domstate(d, "dump1"))
        # virsh shows a failed job's error message with --anystats only;
        # QEMU's RESUME event may show the guest running a moment before
        # the reconnect thread ends the recovered job
        # (--keep-completed: a plain --completed read clears the stats)
        wait_for(lambda: jobinfo(d, "dump1", "--completed", "--keep-completed",
                                 "--anystats").get("Job type") != "None", 30)
        info = jobinfo(d, "dump1", "--completed", "--anystats")
        t.ok(info.get("Job type") == "Failed" and
             "interrupted by a restart of the daemon" in info.get("Error message", ""),
             "domjobinfo --completed: the dump failed, interrupted by the restart", info)

    # --crash: shut off (crashed) after the dump
    r = d.virsh("dump", "--memory-only", "--crash", "dump1", os.path.join(outdir, "c.core"),
                timeout=300)
    t.ok(r.rc == 0, "dump --memory-only --crash", r)
    t.eq(domstate(d, "dump1"), "shut off (crashed)", "--crash: shut off, reason crashed")
    t.ok(wait_for(lambda: not alive(pid), 20), "--crash: QEMU is gone")
    r = d.virsh("dump", "--memory-only", "dump1", os.path.join(outdir, "off.core"))
    t.ok(r.rc != 0 and "not running" in r.err, "dump of a shut-off domain is refused", r)

    # --reset
    d.virsh("start", "dump1")
    r = d.virsh("dump", "--memory-only", "--reset", "dump1", os.path.join(outdir, "r.core"),
                timeout=300)
    t.ok(r.rc == 0, "dump --memory-only --reset", r)
    t.ok(domstate(d, "dump1").startswith("running"), "--reset: running afterwards",
         domstate(d, "dump1"))
    d.virsh("destroy", "dump1")


def test_snapshots_running(d, kernel):
    disk, real = make_disk(d, "snap1")
    define(d, guest_xml("snap1", kernel, disk))
    r = d.virsh("start", "snap1")
    t.ok(r.rc == 0, "snap1 starts", r)

    prober = Prober(d.uri, "snap1")
    prober.start()
    r = d.virsh("snapshot-create-as", "snap1", "first", "--description", "the first one",
                timeout=300)
    t.ok(r.rc == 0, "snapshot-create-as first (running)", r)
    r = d.virsh("suspend", "snap1")
    r = d.virsh("snapshot-create-as", "snap1", "second", timeout=300)
    t.ok(r.rc == 0, "snapshot-create-as second (paused)", r)
    prober.stop()
    t.eq(prober.failures, [], "no query failed during the snapshots")
    print("# worst query latency during snapshots: %.3f s (%d calls)" % (prober.worst, prober.count))
    t.eq(qcow2_tags(real), ["first", "second"], "both internal snapshots are in the qcow2 image")
    t.eq(domstate(d, "snap1"), "paused (user)", "a paused guest stays paused after a snapshot")

    r = d.virsh("snapshot-list", "--name", "snap1")
    t.eq(sorted(r.out.split()), ["first", "second"], "snapshot-list --name")
    r = d.virsh("snapshot-list", "--parent", "snap1")
    rows = {l.split()[0]: l.split() for l in r.out.splitlines() if l.strip()}
    t.ok(rows.get("second", [""])[-1] == "first" and rows.get("first", [""])[-1] == "running",
         "snapshot-list --parent: second's parent is first; first was running", r.out)
    r = d.virsh("snapshot-list", "--roots", "--name", "snap1")
    t.eq(r.out.split(), ["first"], "snapshot-list --roots")
    r = d.virsh("snapshot-list", "--leaves", "--name", "snap1")
    t.eq(r.out.split(), ["second"], "snapshot-list --leaves")
    r = d.virsh("snapshot-current", "--name", "snap1")
    t.eq(r.out.strip(), "second", "snapshot-current is the last one created")
    r = d.virsh("snapshot-parent", "snap1", "second")
    t.eq(r.out.strip(), "first", "snapshot-parent")
    r = d.virsh("snapshot-parent", "snap1", "first")
    # virsh turns VIR_ERR_NO_DOMAIN_SNAPSHOT from GetParent into its own words
    t.ok(r.rc != 0 and "has no parent" in r.err, "a root has no parent", r)
    r = d.virsh("snapshot-dumpxml", "snap1", "first")
    t.ok(r.rc == 0 and "<name>first</name>" in r.out and
         "<description>the first one</description>" in r.out and
         "<state>running</state>" in r.out and "snapshot='internal'" in r.out and
         "<name>snap1</name>" in r.out, "snapshot-dumpxml", r)
    r = d.virsh("snapshot-info", "snap1", "second")
    t.ok("State:          paused" in r.out and "Parent:         first" in r.out and
         "Current:        yes" in r.out, "snapshot-info", r)
    conn = libvirt.open(d.uri)
    dom = conn.lookupByName("snap1")
    t.eq(dom.hasCurrentSnapshot(), 1, "virDomainHasCurrentSnapshot")
    t.eq(dom.snapshotNum(), 2, "virDomainSnapshotNum")
    t.eq(dom.snapshotLookupByName("first").numChildren(), 1, "virDomainSnapshotNumChildren")
    try:
        dom.snapshotLookupByName("nosuch")
        t.ok(False, "lookup of a missing snapshot fails")
    except libvirt.libvirtError as e:
        t.eq(e.get_error_code(), libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
             "lookup of a missing snapshot: VIR_ERR_NO_DOMAIN_SNAPSHOT")
    conn.close()
    r = d.virsh("snapshot-create-as", "snap1", "first")
    t.ok(r.rc != 0 and "already exists" in r.err, "a duplicate name is refused", r)
    r = d.virsh("snapshot-create-as", "snap1", "d1", "--disk-only")
    t.ok(r.rc != 0 and "not supported" in r.err, "--disk-only is refused clearly", r)

    # revert: the state recorded by the snapshot
    r = d.virsh("snapshot-revert", "snap1", "first", timeout=300)
    t.ok(r.rc == 0, "snapshot-revert to first", r)
    t.eq(domstate(d, "snap1"), "running (from snapshot)", "after revert to first: running")
    r = d.virsh("snapshot-current", "--name", "snap1")
    t.eq(r.out.strip(), "first", "the reverted-to snapshot is current")
    info = jobinfo(d, "snap1", "--completed")
    t.eq(info.get("Operation"), "Snapshot revert", "domjobinfo --completed: snapshot revert")
    r = d.virsh("snapshot-revert", "snap1", "second", timeout=300)
    t.ok(r.rc == 0, "snapshot-revert to second", r)
    t.eq(domstate(d, "snap1"), "paused (from snapshot)", "after revert to second: paused")
    r = d.virsh("snapshot-revert", "--running", "snap1", "second", timeout=300)
    t.eq(domstate(d, "snap1"), "running (from snapshot)", "snapshot-revert --running")

    # a third one, child of second (the current one); metadata survives a restart
    r = d.virsh("snapshot-create-as", "snap1", "third", timeout=300)
    t.ok(r.rc == 0, "snapshot-create-as third", r)
    pid = qemu_pid(d, "snap1")
    d.restart()
    t.ok(qemu_pid(d, "snap1") == pid and alive(pid), "the guest survives the daemon restart")
    r = d.virsh("snapshot-list", "--parent", "snap1")
    rows = {l.split()[0]: l.split()[-1] for l in r.out.splitlines() if l.strip()}
    t.eq(rows, {"first": "running", "second": "first", "third": "second"},
         "after a daemon restart: same snapshots, same tree")
    r = d.virsh("snapshot-current", "--name", "snap1")
    t.eq(r.out.strip(), "third", "after a daemon restart: same current snapshot")

    # delete: children move up; --children
    r = d.virsh("snapshot-delete", "snap1", "second", timeout=300)
    t.ok(r.rc == 0, "snapshot-delete second", r)
    r = d.virsh("snapshot-parent", "snap1", "third")
    t.eq(r.out.strip(), "first", "third's parent is now first")
    t.eq(qcow2_tags(real), ["first", "third"], "second is gone from the qcow2 image")
    r = d.virsh("snapshot-delete", "--children", "snap1", "first", timeout=300)
    t.ok(r.rc == 0, "snapshot-delete --children first", r)
    r = d.virsh("snapshot-list", "--name", "snap1")
    t.eq(r.out.split(), [], "no snapshot left")
    t.eq(qcow2_tags(real), [], "no internal snapshot left in the image")
    r = d.virsh("snapshot-current", "snap1")
    t.ok(r.rc != 0, "no current snapshot any more", r)
    t.ok(not os.path.isdir(d.private("/var/lib/libvirt/qemu/snapshot/snap1")),
         "the metadata directory is gone")

    # --metadata: QEMU keeps the internal snapshot
    d.virsh("snapshot-create-as", "snap1", "meta", timeout=300)
    r = d.virsh("snapshot-delete", "--metadata", "snap1", "meta")
    t.ok(r.rc == 0 and d.virsh("snapshot-list", "--name", "snap1").out.split() == [],
         "snapshot-delete --metadata forgets the snapshot", r)
    t.eq(qcow2_tags(real), ["meta"], "--metadata: the qcow2 snapshot stays")
    t.ok(domstate(d, "snap1").startswith("running"), "snap1 still runs", domstate(d, "snap1"))
    d.virsh("destroy", "snap1")


def test_snapshots_shutoff(d, kernel):
    disk, real = make_disk(d, "snap2")
    define(d, guest_xml("snap2", kernel, disk))
    r = d.virsh("snapshot-create-as", "snap2", "off1", timeout=120)
    t.ok(r.rc == 0, "snapshot-create-as on a shut-off domain (qemu-img)", r)
    t.eq(qcow2_tags(real), ["off1"], "qemu-img created the internal snapshot")
    r = d.virsh("snapshot-info", "snap2", "off1")
    t.ok("State:          shutoff" in r.out, "its state is shutoff", r)
    r = d.virsh("start", "snap2")
    t.ok(r.rc == 0, "snap2 starts", r)
    r = d.virsh("snapshot-create-as", "snap2", "on1", timeout=300)
    t.ok(r.rc == 0, "snapshot-create-as while running", r)
    r = d.virsh("snapshot-revert", "snap2", "off1", timeout=300)
    t.ok(r.rc == 0, "revert a running domain to a shut-off snapshot", r)
    t.eq(domstate(d, "snap2"), "shut off (from snapshot)", "it is shut off (from snapshot)")
    r = d.virsh("snapshot-revert", "snap2", "on1", timeout=300)
    t.ok(r.rc == 0, "revert a shut-off domain to a running snapshot", r)
    t.eq(domstate(d, "snap2"), "running (from snapshot)", "it runs (from snapshot)")
    d.virsh("destroy", "snap2")
    r = d.virsh("snapshot-delete", "snap2", "on1", timeout=120)
    t.ok(r.rc == 0, "snapshot-delete on a shut-off domain (qemu-img)", r)
    r = d.virsh("snapshot-delete", "snap2", "off1", timeout=120)
    t.eq(qcow2_tags(real), [], "qemu-img removed the internal snapshots")


def test_not_qcow2(d, kernel):
    disk, _ = make_disk(d, "raw1", fmt="raw")
    define(d, guest_xml("raw1", kernel, disk, fmt="raw"))
    r = d.virsh("snapshot-create-as", "raw1", "x")
    t.ok(r.rc != 0 and "qcow2" in r.err and "vda" in r.err,
         "a raw disk is refused naming the disk (shut off)", r)
    d.virsh("start", "raw1")
    r = d.virsh("snapshot-create-as", "raw1", "x")
    t.ok(r.rc != 0 and "qcow2" in r.err and "vda" in r.err,
         "a raw disk is refused naming the disk (running)", r)
    t.eq(domstate(d, "raw1"), "running (booted)", "the guest still runs")
    t.eq(d.virsh("snapshot-list", "--name", "raw1").out.split(), [], "no snapshot recorded")
    d.virsh("destroy", "raw1")


d = Daemon("snap")
try:
    paths = guest_paths()
    outdir = "/var/lib/libvirt/images/out"
    realdir = d.private(outdir)
    os.makedirs(realdir, exist_ok=True)
    os.chmod(realdir, 0o755)
    d.start()
    for name, fn, args in [("dump", test_dump, (d, paths["DIRTY"], outdir, realdir)),
                           ("snapshots running", test_snapshots_running, (d, paths["DIRTY"])),
                           ("snapshots shut off", test_snapshots_shutoff, (d, paths["DIRTY"])),
                           ("not qcow2", test_not_qcow2, (d, paths["DIRTY"]))]:
        t.run(name, fn, *args)
    t.ok(d.alive(), "the daemon is alive at the end")
except Exception as ex:
    t.ok(False, "snapshot test setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    rundir = d.private("/run/libvirt/qemu")
    for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
        if n.endswith(".pid"):
            pid = qemu_pid(d, n[:-4])
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
    d.cleanup()
t.done()
