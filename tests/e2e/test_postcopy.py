# test_postcopy.py: post-copy migration between two real libvirtd daemons
# running Tandem, with the guest that keeps dirtying its memory (a pre-copy
# migration of it never converges).  Covered: migrate --postcopy switched by
# `virsh migrate-postcopy` from a second client (states, lifecycle events,
# domjobinfo and queries on both hosts during the post-copy phase,
# domjobabort refused after the switch, domjobinfo --completed), virsh's
# --postcopy-after-precopy (it calls migrate-postcopy itself after the
# first pass, on the migration-iteration event; peer to peer), the source
# daemon restarted after the switch, migrate-postcopy refused
# without --postcopy and without a migration, the destination QEMU killed
# after the switch (the source stays paused: post-copy failed), and a
# destination whose QEMU may not use userfaultfd refusing --postcopy.
#
# QEMU needs userfaultfd on the destination: on a host with the sysctl
# vm.unprivileged_userfaultfd = 0 only a privileged QEMU has it, so host B
# runs its QEMUs as root (qemu.conf user/group); host A keeps the default
# unprivileged user.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import re
import signal
import subprocess
import threading
import time

from tandemtest import (
    MIG_ARGS, migrate_bg, finish,
    guest_paths, TAP, Daemon, write_tmp, domstate, qemu_pid, alive, rss_kib, wait_for, jobinfo)

t = TAP()
ROOT_QEMU = 'user = "root"\ngroup = "root"\n'


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


class Events:
    """virsh event --event lifecycle --loop on one host, stopped by PID."""

    def __init__(self, d):
        self.p = subprocess.Popen(["virsh", "-c", d.uri, "event", "--event", "lifecycle",
                                   "--loop", "--timeout", "600"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self):
        self.p.terminate()
        return self.p.communicate(timeout=10)[0]


class Prober(threading.Thread):
    """Keeps querying a domain on both hosts; records failures."""

    CALLS = ["dominfo", "domstate", "domjobinfo", "domstats"]

    def __init__(self, hosts, name):
        super().__init__(daemon=True)
        self.hosts, self.name = hosts, name
        self.stop_flag = threading.Event()
        self.failures = []
        self.count = 0

    def run(self):
        while not self.stop_flag.is_set():
            for h in self.hosts:
                for call in self.CALLS:
                    r = h.virsh(call, self.name, timeout=60)
                    self.count += 1
                    if r.rc != 0 and "failed to get domain" not in r.err and \
                       "Domain not found" not in r.err and "no domain" not in r.err:
                        self.failures.append((h.name, call, r.err.strip()))

    def stop(self):
        self.stop_flag.set()
        self.join(120)


def migration_moving(d, name):
    info = jobinfo(d, name)
    return info.get("Job type") == "Unbounded" and "Memory processed" in info


def test_switch_by_client(a, b, kernel):
    ok, pid_a = start_dirty(a, "pc1", kernel)
    t.ok(ok, "pc1 runs on A and dirties its memory")
    ev_a, ev_b = Events(a), Events(b)
    time.sleep(1)
    # pre-copy at 16 MiB/s never converges; after the switch the rest
    # comes at 4 MiB/s in the background (and on demand): long enough to
    # look at the post-copy phase
    p = migrate_bg(a, "pc1", b, ["--postcopy", "--bandwidth", "16",
                                 "--postcopy-bandwidth", "4"])
    t.ok(wait_for(lambda: migration_moving(a, "pc1"), 60),
         "pre-copy runs", jobinfo(a, "pc1"))
    r = a.virsh("migrate-getspeed", "--postcopy", "pc1")
    t.ok(r.rc == 0 and r.out.strip() == "4", "migrate-getspeed --postcopy: --postcopy-bandwidth's 4", r)
    time.sleep(2)
    t.ok(p.poll() is None, "the dirty guest does not converge in pre-copy")
    t.eq(domstate(b, "pc1"), "paused (migrating)", "B: paused (migrating) before the switch")

    prober = Prober([a, b], "pc1")
    prober.start()
    r = a.virsh("migrate-postcopy", "pc1")
    t.ok(r.rc == 0, "virsh migrate-postcopy from a second client", r)
    t.ok(wait_for(lambda: domstate(b, "pc1") == "running (post-copy)", 60),
         "B: running (post-copy)", domstate(b, "pc1"))
    state_a = domstate(a, "pc1")
    in_postcopy = domstate(b, "pc1") == "running (post-copy)"
    t.ok(state_a in ("paused (post-copy)", "shut off (migrated)"),
         "A: paused (post-copy)", state_a)
    if in_postcopy and state_a == "paused (post-copy)":
        info = jobinfo(a, "pc1")
        t.ok(info.get("Job type") == "Unbounded" and "Postcopy requests" in info,
             "A: domjobinfo during post-copy: unbounded, with post-copy requests", info)
        info = jobinfo(b, "pc1")
        t.ok(info.get("Job type") == "Unbounded" and
             info.get("Operation") == "Incoming migration",
             "B: domjobinfo during post-copy: the incoming migration", info)
        for h in (a, b):
            for call in ("dominfo", "domstats"):
                r = h.virsh(call, "pc1")
                t.ok(r.rc == 0, "%s: %s answers during post-copy" % (h.name, call), r)
        r = a.virsh("domjobabort", "pc1")
        t.ok(r.rc != 0 and "post-copy" in r.err and "Requested operation is not valid" in r.err,
             "A: domjobabort is refused after the switch", r)
        r = a.virsh("migrate-postcopy", "pc1")
        t.ok(r.rc != 0 and "already in post-copy" in r.err,
             "A: a second migrate-postcopy is refused", r)
    else:
        t.skip("queries during post-copy", "post-copy ended before it could be looked at "
               "(A %s, B %s)" % (state_a, domstate(b, "pc1")))

    rc, out, err = finish(p)
    prober.stop()
    t.ok(rc == 0, "virsh migrate --postcopy completed", "rc=%s\n%s\n%s" % (rc, out, err))
    t.eq(prober.failures, [], "no query failed on either host during the migration")
    print("# %d queries during the migration" % prober.count)
    t.eq(domstate(b, "pc1"), "running (migrated)", "B: running (migrated) after the transfer")
    t.ok(wait_for(lambda: not alive(pid_a), 20), "A's QEMU is gone")
    t.eq(domstate(a, "pc1"), "shut off (migrated)", "A: shut off (migrated)")
    for h in (a, b):
        info = jobinfo(h, "pc1", "--completed")
        t.ok(info.get("Job type") == "Completed", "%s: domjobinfo --completed" % h.name, info)
    time.sleep(1)
    out_a, out_b = ev_a.stop(), ev_b.stop()
    t.ok("'pc1': Suspended Post-copy" in out_a, "A: event suspended (post-copy)", out_a)
    t.ok("'pc1': Stopped Migrated" in out_a, "A: event stopped (migrated)", out_a)
    t.ok("'pc1': Resumed Post-copy" in out_b, "B: event resumed (post-copy)", out_b)
    t.ok(out_b.find("'pc1': Resumed Post-copy") < out_b.find("'pc1': Resumed Migrated"),
         "B: then resumed (migrated) at the end of the transfer", out_b)
    b.virsh("destroy", "pc1")
    a.virsh("undefine", "pc1")


def test_after_precopy(a, b, kernel):
    ok, pid_a = start_dirty(a, "pc2", kernel)
    t.ok(ok, "pc2 runs on A")
    ev_a = Events(a)
    time.sleep(1)
    # peer to peer: the source daemon drives the destination itself
    p = migrate_bg(a, "pc2", b, ["--p2p", "--postcopy", "--postcopy-after-precopy",
                                 "--bandwidth", "64"])
    rc, out, err = finish(p)
    t.ok(rc == 0, "virsh migrate --p2p --postcopy --postcopy-after-precopy completed "
         "(virsh switched after the first pass)", "rc=%s\n%s\n%s" % (rc, out, err))
    t.eq(domstate(b, "pc2"), "running (migrated)", "B: pc2 runs there")
    t.ok(wait_for(lambda: not alive(pid_a), 20), "A's QEMU is gone")
    info = jobinfo(a, "pc2", "--completed")
    t.ok(info.get("Job type") == "Completed" and int(info.get("Iteration", "0")) >= 2,
         "A: domjobinfo --completed: completed, after more than one pass", info)
    time.sleep(1)
    out_a = ev_a.stop()
    t.ok("'pc2': Suspended Post-copy" in out_a, "A: it went through post-copy", out_a)
    b.virsh("destroy", "pc2")
    a.virsh("undefine", "pc2")


def test_refusals(a, b, kernel):
    ok, pid_a = start_dirty(a, "pc3", kernel)
    # the post-copy speed, set before any migration
    r = a.virsh("migrate-getspeed", "--postcopy", "pc3")
    t.ok(r.rc == 0 and r.out.strip() == "0", "migrate-getspeed --postcopy: 0 (unlimited) at first", r)
    r = a.virsh("migrate-setspeed", "--postcopy", "pc3", "6")
    t.ok(r.rc == 0, "migrate-setspeed --postcopy 6", r)
    r = a.virsh("migrate-getspeed", "--postcopy", "pc3")
    t.ok(r.rc == 0 and r.out.strip() == "6", "migrate-getspeed --postcopy says 6", r)
    r = a.virsh("qemu-monitor-command", "pc3", '{"execute":"query-migrate-parameters"}')
    t.ok(r.rc == 0 and re.search(r'"max-postcopy-bandwidth":\s*6291456\b', r.out),
         "QEMU's max-postcopy-bandwidth is 6 MiB/s", r)
    r = a.virsh("migrate-getspeed", "pc3")
    t.ok(r.rc == 0 and r.out.strip() != "6", "the pre-copy speed is another one", r)
    r = a.virsh("migrate-postcopy", "pc3")
    t.ok(r.rc != 0 and "Requested operation is not valid" in r.err and "no outgoing migration" in r.err,
         "migrate-postcopy without a migration: operation invalid", r)
    p = migrate_bg(a, "pc3", b, ["--bandwidth", "8"])
    t.ok(wait_for(lambda: migration_moving(a, "pc3"), 60), "a pre-copy migration runs")
    r = a.virsh("migrate-postcopy", "pc3")
    t.ok(r.rc != 0 and "Requested operation is not valid" in r.err and "--postcopy" in r.err,
         "migrate-postcopy of a migration without --postcopy: operation invalid", r)
    r = a.virsh("domjobabort", "pc3")
    t.ok(r.rc == 0, "that migration can still be aborted", r)
    rc, out, err = finish(p)
    t.ok(rc != 0, "it ends aborted", err)
    t.ok(wait_for(lambda: domstate(a, "pc3").startswith("running"), 30) and
         qemu_pid(a, "pc3") == pid_a, "pc3 runs on A as before", domstate(a, "pc3"))
    a.virsh("destroy", "pc3")
    a.virsh("undefine", "pc3")


def test_dest_dies(a, b, kernel):
    ok, pid_a = start_dirty(a, "pc4", kernel)
    t.ok(ok, "pc4 runs on A")
    ev_a = Events(a)
    time.sleep(1)
    p = migrate_bg(a, "pc4", b, ["--postcopy", "--bandwidth", "16",
                                 "--postcopy-bandwidth", "1"])
    t.ok(wait_for(lambda: migration_moving(a, "pc4"), 60), "pre-copy runs",
         "%s %s" % (jobinfo(a, "pc4"), p.poll() is not None and finish(p)))
    time.sleep(1)
    r = a.virsh("migrate-postcopy", "pc4")
    t.ok(r.rc == 0, "migrate-postcopy", r)
    t.ok(wait_for(lambda: domstate(b, "pc4") == "running (post-copy)", 60),
         "B: running (post-copy)", domstate(b, "pc4"))
    pid_b = qemu_pid(b, "pc4")
    os.kill(pid_b, signal.SIGKILL)
    rc, out, err = finish(p)
    t.ok(rc != 0 and "post-copy" in err and "cannot be rolled back" in err,
         "virsh migrate fails with a clear error", "rc=%s\n%s" % (rc, err))
    print("# the error: %s" % err.strip().replace("\n", " "))
    t.eq(domstate(a, "pc4"), "paused (post-copy failed)",
         "A: the source stays paused (post-copy failed), never resumed")
    t.ok(alive(pid_a) and qemu_pid(a, "pc4") == pid_a, "A: same QEMU, kept")
    t.ok(wait_for(lambda: "pc4" not in b.virsh("list", "--name").out.split(), 30),
         "B: its QEMU is gone, the guest does not run there")
    info = jobinfo(a, "pc4", "--completed")
    t.ok(info.get("Job type") == "Failed", "A: domjobinfo --completed: failed", info)
    time.sleep(2)
    t.eq(domstate(a, "pc4"), "paused (post-copy failed)",
         "A: nothing resumed the source by itself")
    out_a = ev_a.stop()
    t.ok("'pc4': Suspended Post-copy Error" in out_a,
         "A: event suspended (post-copy error)", out_a)
    r = a.virsh("destroy", "pc4")
    t.ok(r.rc == 0, "A: destroy works on the failed source", r)
    a.virsh("undefine", "pc4")


def test_source_restart(a, b, kernel):
    """The source daemon is killed and restarted after the switch: its
    reconnect (from the status file) must not
    resume the guest there (the destination runs it); QEMU keeps sending
    the pages and the destination completes."""
    ok, pid_a = start_dirty(a, "pc6", kernel)
    t.ok(ok, "pc6 runs on A")
    p = migrate_bg(a, "pc6", b, ["--postcopy", "--bandwidth", "16",
                                 "--postcopy-bandwidth", "4"])
    t.ok(wait_for(lambda: migration_moving(a, "pc6"), 60), "pre-copy runs")
    time.sleep(1)
    r = a.virsh("migrate-postcopy", "pc6")
    t.ok(r.rc == 0, "migrate-postcopy", r)
    t.ok(wait_for(lambda: domstate(b, "pc6") == "running (post-copy)", 60),
         "B: running (post-copy)", domstate(b, "pc6"))
    # killed: no connection is closed cleanly, the status file is all
    # the new daemon knows
    a.stop(sig=signal.SIGKILL)
    a.start()
    state = domstate(a, "pc6")
    t.ok(state in ("paused (post-copy)", "paused (post-copy failed)"),
         "A after its restart: still paused after the switch, not resumed", state)
    t.ok(alive(pid_a) and qemu_pid(a, "pc6") == pid_a, "A: same QEMU")
    t.ok("interrupted after the switch to post-copy" in a.log(),
         "A's log says what reconnect found")
    rc, out, err = finish(p)
    print("# virsh migrate: rc=%s %s" % (rc, err.strip().replace("\n", " ")))
    t.ok(wait_for(lambda: domstate(b, "pc6") == "running (migrated)", 120),
         "B: the transfer completed, the guest runs there", domstate(b, "pc6"))
    t.ok(domstate(a, "pc6").startswith("paused"), "A: still paused, never resumed",
         domstate(a, "pc6"))
    r = a.virsh("destroy", "pc6")
    t.ok(r.rc == 0, "A: the stale source can be destroyed", r)
    b.virsh("destroy", "pc6")
    a.virsh("undefine", "pc6")


def test_no_userfaultfd(a, b, kernel):
    """B -> A: A runs QEMU unprivileged, which may not use userfaultfd when
    vm.unprivileged_userfaultfd is 0: the destination refuses --postcopy
    at Prepare with what to change, the guest stays on B."""
    try:
        with open("/proc/sys/vm/unprivileged_userfaultfd") as f:
            sysctl = f.read().strip()
    except OSError:
        sysctl = None
    if sysctl != "0":
        t.skip("no userfaultfd", "vm.unprivileged_userfaultfd is %s here: an unprivileged "
               "QEMU may use userfaultfd" % sysctl)
        return
    ok, pid_b = start_dirty(b, "pc5", kernel)
    r = b.virsh("migrate", "--live", "--postcopy", "pc5", a.uri, *MIG_ARGS, timeout=120)
    t.ok(r.rc != 0 and "post-copy migration is not available on the destination host" in r.err
         and "userfaultfd" in r.err,
         "A (unprivileged QEMU, no userfaultfd) refuses --postcopy, saying why", r)
    t.ok(domstate(b, "pc5").startswith("running") and qemu_pid(b, "pc5") == pid_b,
         "pc5 keeps running on B", domstate(b, "pc5"))
    t.ok(wait_for(lambda: "pc5" not in a.virsh("list", "--all", "--name").out.split(), 30),
         "nothing left on A")
    b.virsh("destroy", "pc5")
    b.virsh("undefine", "pc5")


a = Daemon("pcA")
b = Daemon("pcB", qemu_conf=ROOT_QEMU)
try:
    paths = guest_paths()
    a.start()
    b.start()
    for name, fn in [("switch by a second client", test_switch_by_client),
                     ("post-copy after pre-copy", test_after_precopy),
                     ("refusals", test_refusals),
                     ("destination dies after the switch", test_dest_dies),
                     ("source daemon restarts after the switch", test_source_restart),
                     ("destination without userfaultfd", test_no_userfaultfd)]:
        t.run(name, fn, a, b, paths["DIRTY"])
    t.ok(a.alive() and b.alive(), "both daemons alive at the end")
except Exception as ex:
    t.ok(False, "post-copy setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
finally:
    for d in (a, b):
        rundir = d.private("/run/libvirt/qemu")
        for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
            if n.endswith(".pid"):
                pid = qemu_pid(d, n[:-4])
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)
        d.cleanup()
t.done()
