# test_migration.py: live and offline migration between two real libvirtd
# daemons running Tandem (two "hosts": separate mount namespaces, sockets
# and host UUIDs), with a guest that keeps dirtying its memory.  While the
# migration runs a second client keeps asking dominfo, domstate,
# domjobinfo and domstats on both hosts: none of those calls may fail or
# wait for the migration (the worst latency seen is printed).  Also:
# --timeout (virsh pauses the guest, the destination resumes it),
# migrate-compcache idle and during the migration, --postcopy-resume of a
# running guest refused (post-copy itself: test_postcopy.py, its recovery:
# test_postcopy_resume.py), and
# --abort-on-error with a Linux guest whose disk sits on a full tmpfs
# (mounted by this test before the daemons start, unmounted at the end).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import signal
import subprocess
import tempfile
import threading
import time

import libvirt

from tandemtest import (
    MIG_ARGS, migrate_bg,
    guest_paths, TAP, Daemon, run, write_tmp, domstate, qemu_pid, alive, rss_kib, wait_for, jobinfo)

t = TAP()


def dirty_xml(name, kernel, mem_mib=128, dirty_mib=64):
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=%d quiet</cmdline></os>
  <devices><serial type='pty'/><console type='pty'/></devices>
</domain>
""" % (name, mem_mib, kernel, dirty_mib)


def define(d, xml):
    path = write_tmp(xml)
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def start_dirty(d, name, kernel, dirty_mib=64):
    """Starts the dirtying guest and waits until it has touched its memory."""
    define(d, dirty_xml(name, kernel, dirty_mib=dirty_mib))
    r = d.virsh("start", name)
    pid = qemu_pid(d, name)
    # QEMU alone holds about 40 MiB under TCG: dirty_mib + 16 means that
    # most of the guest's dirty memory was written
    ok = r.rc == 0 and wait_for(lambda: rss_kib(pid) > (dirty_mib + 16) * 1024, 60)
    return ok, pid


class Prober(threading.Thread):
    """Keeps querying a domain on both hosts and records failures and the
    worst latency per host."""

    CALLS = [("dominfo",), ("domstate",), ("domjobinfo",), ("domstats",)]

    def __init__(self, hosts, name):
        super().__init__(daemon=True)
        self.hosts, self.name = hosts, name
        self.stop_flag = threading.Event()
        self.failures = []
        self.worst = {h.name: 0.0 for h in hosts}
        self.count = 0

    def run(self):
        while not self.stop_flag.is_set():
            for h in self.hosts:
                for call in self.CALLS:
                    start = time.time()
                    r = h.virsh(call[0], self.name, timeout=60)
                    dt = time.time() - start
                    self.worst[h.name] = max(self.worst[h.name], dt)
                    self.count += 1
                    # not (yet / any more) on that host is not a failure
                    if r.rc != 0 and "failed to get domain" not in r.err and \
                       "Domain not found" not in r.err and "no domain" not in r.err:
                        self.failures.append((h.name, call[0], r.err.strip()))

    def stop(self):
        self.stop_flag.set()
        self.join(120)


def test_managed_and_back(a, b, kernel):
    ok, pid_a = start_dirty(a, "mig1", kernel)
    t.ok(ok, "mig1 runs on A and dirties its memory")

    prober = Prober([a, b], "mig1")
    prober.start()
    # job-completed events on both hosts (virsh event, stopped by PID below)
    watchers = [subprocess.Popen(["virsh", "-c", h.uri, "event", "--event", "job-completed",
                                  "--loop", "--timeout", "300"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for h in (a, b)]
    time.sleep(1)
    p = migrate_bg(a, "mig1", b, ["--bandwidth", "16"])
    # the migration runs (throttled): look at it from both sides
    t.ok(wait_for(lambda: jobinfo(a, "mig1").get("Job type") == "Unbounded", 30),
         "source domjobinfo shows the running migration", jobinfo(a, "mig1"))
    t.ok(wait_for(lambda: jobinfo(b, "mig1").get("Job type") == "Unbounded", 30),
         "destination domjobinfo shows the incoming migration", jobinfo(b, "mig1"))
    time.sleep(2)
    info = jobinfo(a, "mig1")
    t.ok(info.get("Operation") == "Outgoing migration" and "Memory processed" in info,
         "source domjobinfo: outgoing migration with memory progress", info)
    r = a.virsh("migrate-getspeed", "mig1")
    t.eq(r.out.strip(), "16", "migrate-getspeed during the migration")
    r = a.virsh("migrate-setmaxdowntime", "mig1", "500")
    t.ok(r.rc == 0, "migrate-setmaxdowntime during the migration", r)
    t.eq(domstate(b, "mig1"), "paused (migrating)", "destination: paused (migrating)")
    # dommemstat during the migration, on both hosts: from the balloon
    # cache and /proc, without waiting behind the migration's monitor
    # commands; the destination reports the balloon size the source has
    memstats = {}
    for h in (a, b):
        r = h.virsh("dommemstat", "mig1")
        memstats[h.name] = dict(line.split(None, 1) for line in r.out.splitlines()
                                if len(line.split(None, 1)) == 2)
        t.ok(r.rc == 0 and int(memstats[h.name].get("actual", "0")) > 0 and
             int(memstats[h.name].get("rss", "0")) > 0,
             "%s: dommemstat during the migration gives actual and rss" % h.name, r)
    t.eq(memstats[b.name].get("actual"), memstats[a.name].get("actual"),
         "destination dommemstat: the source's balloon size during the migration")
    # let it converge: stop the dirtying by pausing the source, then
    # unthrottle (in this order: unthrottled, it may end before the pause)
    r = a.virsh("suspend", "mig1")
    t.ok(r.rc == 0, "suspend is allowed during the migration", r)
    r = a.virsh("migrate-setspeed", "mig1", "0")
    t.ok(r.rc == 0, "migrate-setspeed during the migration", r)
    try:
        out, err = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    prober.stop()
    t.ok(p.returncode == 0, "virsh migrate --live (client-managed) succeeded",
         "rc=%s\n%s\n%s" % (p.returncode, out, err))
    t.eq(prober.failures, [], "no query failed on either host during the migration")
    print("# worst query latency during migration: %s (%d calls)" % (
        ", ".join("%s %.3f s" % kv for kv in prober.worst.items()), prober.count))
    t.ok(domstate(b, "mig1").startswith("running"), "mig1 runs on B", domstate(b, "mig1"))
    t.ok(wait_for(lambda: not alive(pid_a), 20), "A's QEMU is gone")
    t.eq(domstate(a, "mig1"), "shut off (migrated)", "A: shut off (migrated), still defined")
    r = a.virsh("dommemstat", "mig1")
    t.ok(r.rc != 0 and "Requested operation is not valid: domain is not running: "
         "'mig1' has migrated to another host" in r.err,
         "A: a query after the handover says the domain has migrated", r)
    t.eq(b.virsh("list", "--transient", "--name").out.split(), ["mig1"], "B: transient")
    info = jobinfo(a, "mig1")
    r = a.virsh("domjobinfo", "--completed", "mig1")
    t.ok(r.rc == 0 and "Completed" in r.out, "source domjobinfo --completed", r)
    time.sleep(1)
    for h, op, w in zip(("source", "destination"),
                        (libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
                         libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN), watchers):
        w.terminate()
        out = w.communicate(timeout=10)[0]
        t.ok("event 'job-completed' for domain 'mig1'" in out and "operation: %d" % op in out,
             "%s: job-completed event with the migration's statistics" % h, out)

    # and back, peer to peer, making it persistent there and gone here
    r = b.virsh("migrate", "--live", "--p2p", "--persistent", "--undefinesource",
                "mig1", a.uri, *MIG_ARGS, timeout=180)
    t.ok(r.rc == 0, "virsh migrate --p2p --persistent --undefinesource back to A", r)
    t.ok(domstate(a, "mig1").startswith("running"), "mig1 runs on A again", domstate(a, "mig1"))
    t.ok("mig1" in a.virsh("list", "--persistent", "--name").out.split(), "A: persistent")
    t.ok("mig1" not in b.virsh("list", "--all", "--name").out.split(),
         "B: nothing left (transient source gone)")
    a.virsh("destroy", "mig1")


def test_abort(a, b, kernel):
    ok, pid_a = start_dirty(a, "mig2", kernel)
    p = migrate_bg(a, "mig2", b, ["--bandwidth", "4"])
    t.ok(wait_for(lambda: jobinfo(a, "mig2").get("Job type") == "Unbounded", 30),
         "abort: migration running")
    time.sleep(1)
    r = a.virsh("domjobabort", "mig2")
    t.ok(r.rc == 0, "domjobabort on the source", r)
    out, err = p.communicate(timeout=120)
    t.ok(p.returncode != 0 and "abort" in err.lower(), "virsh migrate reports the abort", err)
    t.ok(domstate(a, "mig2").startswith("running"), "source keeps running after the abort",
         domstate(a, "mig2"))
    t.ok(alive(pid_a) and qemu_pid(a, "mig2") == pid_a, "same source QEMU")
    t.ok(wait_for(lambda: "mig2" not in b.virsh("list", "--all", "--name").out.split(), 20),
         "destination torn down, nothing left defined there")
    r = b.virsh("domjobabort", "mig2")
    t.ok(r.rc != 0, "nothing to abort on the destination any more", r)
    a.virsh("destroy", "mig2")


def test_dest_dies(a, b, kernel):
    start_dirty(a, "mig3", kernel)
    p = migrate_bg(a, "mig3", b, ["--bandwidth", "4"])
    t.ok(wait_for(lambda: qemu_pid(b, "mig3") is not None and alive(qemu_pid(b, "mig3")), 30),
         "destination QEMU started")
    time.sleep(1)
    os.kill(qemu_pid(b, "mig3"), signal.SIGKILL)
    out, err = p.communicate(timeout=120)
    t.ok(p.returncode != 0, "migration fails when the destination QEMU dies", err)
    t.ok(wait_for(lambda: domstate(a, "mig3").startswith("running"), 30),
         "source still runs: exactly one copy", domstate(a, "mig3"))
    t.ok(wait_for(lambda: "mig3" not in b.virsh("list", "--all", "--name").out.split(), 30),
         "nothing left on the destination")
    a.virsh("destroy", "mig3")


def test_client_dies(a, b, kernel):
    ok, pid_a = start_dirty(a, "mig5", kernel)
    p = migrate_bg(a, "mig5", b, ["--bandwidth", "4"])
    t.ok(wait_for(lambda: jobinfo(a, "mig5").get("Job type") == "Unbounded", 30),
         "client dies: migration running")
    time.sleep(1)
    p.kill()
    p.communicate()
    t.ok(wait_for(lambda: jobinfo(a, "mig5").get("Job type") == "None", 30),
         "the source undoes the migration when its client goes away", jobinfo(a, "mig5"))
    t.ok(domstate(a, "mig5").startswith("running") and qemu_pid(a, "mig5") == pid_a,
         "the guest keeps running on the source", domstate(a, "mig5"))
    t.ok(wait_for(lambda: "mig5" not in b.virsh("list", "--all", "--name").out.split(), 30),
         "the destination drops the incoming guest")
    a.virsh("destroy", "mig5")


def compcache(d, name, *args):
    r = d.virsh("migrate-compcache", name, *args)
    return r.out.strip() if r.rc == 0 else "error: " + r.err.strip()


def test_timeout_compcache(a, b, kernel):
    """migrate --timeout (virsh suspends the guest after N s and the
    migration completes with it paused; the destination runs it), with
    --abort-on-error, which a user pause must not trigger; migrate-compcache
    when idle and beside the migration; --postcopy-resume (recovery of a
    failed post-copy migration) of a running guest refused."""
    ok, pid_a = start_dirty(a, "mig6", kernel)
    t.ok(ok, "mig6 runs on A and dirties its memory")
    t.eq(compcache(a, "mig6", "--size", str(32 << 20)), "Compression cache: 32.000 MiB",
         "migrate-compcache --size sets the XBZRLE cache (idle)")
    t.eq(compcache(a, "mig6"), "Compression cache: 32.000 MiB",
         "migrate-compcache reads it back")
    r = a.virsh("migrate-setmaxdowntime", "mig6", "400")
    t.ok(r.rc == 0, "migrate-setmaxdowntime (idle)", r)
    t.eq(a.virsh("migrate-getmaxdowntime", "mig6").out.strip(), "400",
         "migrate-getmaxdowntime reads it back")

    r = a.virsh("migrate", "--live", "--postcopy", "--postcopy-resume", "mig6", b.uri, *MIG_ARGS)
    t.ok(r.rc != 0 and "Requested operation is not valid" in r.err and
         "not paused after a failed post-copy migration" in r.err,
         "migrate --postcopy-resume of a running guest is refused (test_postcopy_resume.py)", r)
    t.ok(domstate(a, "mig6").startswith("running") and jobinfo(a, "mig6").get("Job type") == "None",
         "the refused --postcopy-resume left no job and the guest running", jobinfo(a, "mig6"))

    watcher = subprocess.Popen(["virsh", "-c", a.uri, "event", "--event", "lifecycle",
                                "--loop", "--timeout", "120"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    start = time.time()
    p = migrate_bg(a, "mig6", b, ["--bandwidth", "16", "--timeout", "4", "--abort-on-error"])
    t.ok(wait_for(lambda: jobinfo(a, "mig6").get("Job type") == "Unbounded", 30),
         "timeout: migration running")
    t.eq(compcache(a, "mig6", "--size", str(16 << 20)), "Compression cache: 16.000 MiB",
         "migrate-compcache --size during the outgoing migration")
    t.eq(compcache(a, "mig6"), "Compression cache: 16.000 MiB",
         "migrate-compcache during the outgoing migration")
    t.ok(wait_for(lambda: domstate(a, "mig6") == "paused (user)", 30),
         "virsh suspended the source after the timeout", domstate(a, "mig6"))
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took = time.time() - start
    t.ok(p.returncode == 0, "migrate --timeout 4 --abort-on-error completed",
         "rc=%s\n%s\n%s" % (p.returncode, out, err))
    t.ok(took >= 4, "the migration outlasted the timeout (%.1f s)" % took)
    # the source was paused by the user (virsh), not by the migration: as
    # with libvirt's own driver the destination resumes the guest
    t.eq(domstate(b, "mig6"), "running (migrated)", "B: mig6 runs there, resumed by the migration")
    t.ok(wait_for(lambda: not alive(pid_a), 20), "A's QEMU is gone")
    watcher.terminate()
    ev = watcher.communicate(timeout=10)[0]
    t.ok("event 'lifecycle' for domain 'mig6': Suspended Paused" in ev,
         "A: suspended event of the timeout's pause", ev)
    b.virsh("destroy", "mig6")
    a.virsh("undefine", "mig6")


class FullDisk:
    """A sparse raw image on a tiny tmpfs that a filler file has filled:
    every write to a block not yet allocated fails with ENOSPC.  Mounted
    before the daemons start, so that their mount namespaces see it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tandem-enospc-",
                                    dir=os.environ.get("TANDEM_TEST_TMPDIR") or None)
        os.chmod(self.dir, 0o755)
        r = run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tandem-enospc", self.dir])
        self.mounted = r.rc == 0
        self.image = os.path.join(self.dir, "disk.img")
        if self.mounted:
            with open(self.image, "w") as f:
                f.truncate(16 << 20)
            run(["dd", "if=/dev/zero", "of=%s" % os.path.join(self.dir, "filler"), "bs=4k"])

    def cleanup(self):
        if self.mounted:
            run(["umount", self.dir])
        os.rmdir(self.dir)


def io_error_xml(name, kernel, initrd, image):
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 tandem.nonet</cmdline></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' error_policy='stop'/>
      <source file='%s'/><target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'/><console type='pty'/>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>
""" % (name, kernel, initrd, image)


def test_abort_on_error(a, b, paths, disk):
    """--abort-on-error: the guest pauses on a write error (werror=stop on a
    full disk) during the migration: the migration is cancelled, the guest
    stays here, paused on the I/O error."""
    if not disk.mounted:
        t.skip("abort on error", "cannot mount a tmpfs for the full disk")
        return
    define(a, io_error_xml("mig7", paths["KERNEL"], paths["INITRD"], disk.image))
    r = a.virsh("start", "mig7")
    t.ok(r.rc == 0, "mig7 (Linux guest, disk on a full file system) starts", r)
    ping = '{"execute":"guest-ping"}'
    t.ok(wait_for(lambda: a.virsh("qemu-agent-command", "mig7", ping).rc == 0, 120),
         "mig7's guest agent answers")
    pid_a = qemu_pid(a, "mig7")
    # the write comes a few seconds into the (throttled) migration
    r = a.virsh("qemu-agent-command", "mig7", json.dumps(
        {"execute": "guest-exec", "arguments": {
            "path": "/bin/sh",
            "arg": ["-c", "sleep 4; dd if=/dev/zero of=/dev/vda bs=4096 count=16 conv=fsync"]}}))
    t.ok(r.rc == 0, "guest-exec: a write to the full disk in 4 s", r)
    start = time.time()
    p = migrate_bg(a, "mig7", b, ["--bandwidth", "1", "--abort-on-error"])
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    t.ok(p.returncode != 0 and "I/O error" in err,
         "migrate --abort-on-error fails when the guest pauses on an I/O error (%.1f s)" % (
             time.time() - start), "rc=%s\n%s" % (p.returncode, err))
    t.eq(domstate(a, "mig7"), "paused (I/O error)", "A: the guest stays, paused on the I/O error")
    t.ok(qemu_pid(a, "mig7") == pid_a and alive(pid_a), "A: same QEMU")
    t.ok(wait_for(lambda: "mig7" not in b.virsh("list", "--all", "--name").out.split(), 30),
         "B: nothing left")
    a.virsh("destroy", "mig7")
    a.virsh("undefine", "mig7")


def test_offline(a, b, kernel):
    define(a, dirty_xml("mig4", kernel))
    r = a.virsh("migrate", "--offline", "--persistent", "mig4", b.uri)
    t.ok(r.rc == 0, "migrate --offline --persistent", r)
    t.eq(domstate(b, "mig4"), "shut off (unknown)", "offline: defined on B, shut off")
    t.ok("mig4" in a.virsh("list", "--all", "--name").out.split(), "offline: still defined on A")
    r = a.virsh("migrate", "--offline", "mig4", b.uri)
    t.ok(r.rc != 0, "offline migration without --persistent is refused", r)


def test_same_host():
    u = "5a1f6c6e-1111-4222-8333-944455556666"
    x, y = Daemon("same1", host_uuid=u), Daemon("same2", host_uuid=u)
    try:
        x.start()
        y.start()
        define(x, dirty_xml("same", "/nonexistent"))
        r = x.virsh("migrate", "--offline", "--persistent", "same", y.uri)
        t.ok(r.rc != 0 and "Attempt to migrate guest to the same host" in r.err,
             "migration to a host with the same host UUID is refused", r)
    finally:
        x.cleanup()
        y.cleanup()


disk = FullDisk()
a = Daemon("migA")
b = Daemon("migB")
try:
    paths = guest_paths()
    a.start()
    b.start()
    for name, fn in [("managed and back", test_managed_and_back), ("abort", test_abort),
                     ("destination dies", test_dest_dies), ("client dies", test_client_dies),
                     ("timeout and compcache", test_timeout_compcache),
                     ("offline", test_offline)]:
        t.run(name, fn, a, b, paths["DIRTY"])
    t.run("abort on error", test_abort_on_error, a, b, paths, disk)
    t.ok(a.alive() and b.alive(), "both daemons alive at the end")
except Exception as ex:
    t.ok(False, "migration setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
finally:
    for d in (a, b):
        rundir = d.private("/run/libvirt/qemu")
        for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
            if n.endswith(".pid"):
                pid = qemu_pid(d, n[:-4])
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)
        d.cleanup()
    disk.cleanup()
t.run("same host", test_same_host)
t.done()
