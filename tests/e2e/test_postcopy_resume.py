# test_postcopy_resume.py: recovery of a failed post-copy migration
# (virsh migrate --postcopy --postcopy-resume, VIR_MIGRATE_POSTCOPY_RESUME)
# between two real libvirtd daemons running Tandem.  The guest keeps
# dirtying its memory and prints "TANDEM-DIRTY-ALIVE pass=N" on its serial
# port (a file, one per host: each daemon has its own /var/lib/libvirt).
# Covered, client-managed and peer to peer: the post-copy switch, virsh
# domjobabort --postcopy (QMP migrate-pause) on the source breaking the stream (both hosts end their
# jobs, paused (post-copy failed), QEMU postcopy-paused), a resume to a
# host without the domain refused with nothing changed, a resume whose
# QEMU cannot connect (client-managed: a wrong address; it fails after
# QEMU_MIGRATION_RESUME_CONNECT_SECONDS, nothing changes, the next resume
# reuses the listener QEMU 7.2 keeps), then the resume:
# domjobinfo on both hosts during it, the guest running (migrated) on B,
# shut off (migrated) on A, its pass counter going on from where it was
# (memory intact); refusals: a running domain, no VIR_MIGRATE_POSTCOPY
# (virsh's own check, and the driver's through python3-libvirt),
# domjobabort --postcopy without a post-copy migration; the
# source daemon killed during a resume (the guest is not resumed there,
# QEMU completes the transfer to B).
#
# QEMU needs userfaultfd on the destination: host B runs its QEMUs as root
# (see test_postcopy.py).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import grp
import json
import os
import pwd
import re
import signal
import time

import libvirt

from tandemtest import (
    MIG_ARGS, migrate_bg, finish,
    TAP, Daemon, write_tmp, guest_paths, wait_for, qemu_pid, alive, rss_kib, domstate, jobinfo)

t = TAP()
ROOT_QEMU = 'user = "root"\ngroup = "root"\n'
OUTDIR = "/var/lib/libvirt/images/out"


def qemu_migration_status(d, name):
    r = d.virsh("qemu-monitor-command", name, '{"execute":"query-migrate"}')
    if r.rc != 0:
        return "error: " + r.err.strip()
    try:
        return json.loads(r.out)["return"].get("status", "none")
    except (ValueError, KeyError):
        return "unparsable: " + r.out


def serial_file(d, name):
    path = d.private("%s/%s.serial" % (OUTDIR, name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


class Guest:
    """The dirtying guest on host @d, its serial port appended to a file
    of each host it runs on."""

    def __init__(self, d, name, kernel, dirty_mib=64):
        self.d, self.name, self.dirty_mib = d, name, dirty_mib
        qemu = pwd.getpwnam("libvirt-qemu").pw_uid, grp.getgrnam("libvirt-qemu").gr_gid
        with open(serial_file(d, name), "w"):
            pass
        os.chown(serial_file(d, name), *qemu)
        xml = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=%d</cmdline></os>
  <devices>
    <serial type='file'><source path='%s/%s.serial' append='on'/><target port='0'/></serial>
  </devices>
</domain>
""" % (name, kernel, dirty_mib, OUTDIR, name)
        path = write_tmp(xml)
        try:
            r = d.virsh("define", path)
        finally:
            os.unlink(path)
        if r.rc != 0:
            raise RuntimeError("define %s failed: %r" % (name, r))

    def start(self):
        r = self.d.virsh("start", self.name)
        self.pid = qemu_pid(self.d, self.name)
        return r.rc == 0 and wait_for(lambda: self.last_pass(self.d) >= 1 and
                                      rss_kib(self.pid) > (self.dirty_mib + 16) * 1024, 90)

    def serial(self, d):
        try:
            with open(serial_file(d, self.name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def last_pass(self, d):
        passes = re.findall(r"TANDEM-DIRTY-ALIVE pass=(\d+)", self.serial(d))
        return int(passes[-1]) if passes else -1


def migration_moving(d, name):
    info = jobinfo(d, name)
    return info.get("Job type") == "Unbounded" and "Memory processed" in info


def break_postcopy(a, b, g, extra):
    """Migrates @g from A to B, switches to post-copy, breaks the stream
    with migrate-pause on A.  True when both ended paused (post-copy
    failed)."""
    name = g.name
    p = migrate_bg(a, name, b, ["--postcopy", "--bandwidth", "16",
                                "--postcopy-bandwidth", "1"] + extra)
    if not t.ok(wait_for(lambda: migration_moving(a, name), 60), "%s: pre-copy runs" % name,
                "%s\n%s" % (jobinfo(a, name), p.poll() is not None and finish(p))):
        return False
    time.sleep(1)
    r = a.virsh("migrate-postcopy", name)
    t.ok(r.rc == 0, "%s: migrate-postcopy" % name, r)
    t.ok(wait_for(lambda: domstate(b, name) == "running (post-copy)", 60),
         "%s: B running (post-copy)" % name, domstate(b, name))
    # QMP migrate-pause on the source (qemu-monitor-command is refused
    # beside the migration job: its modify job is not allowed there)
    r = a.virsh("domjobabort", "--postcopy", name)
    t.ok(r.rc == 0, "%s: domjobabort --postcopy on A (QMP migrate-pause)" % name, r)
    rc, out, err = finish(p)
    t.ok(rc != 0 and "post-copy" in err and "--postcopy-resume" in err,
         "%s: virsh migrate fails, its error names --postcopy-resume" % name,
         "rc=%s\n%s" % (rc, err))
    print("# the error: %s" % err.strip().replace("\n", " "))
    # B keeps its vCPUs: those that need a missing page wait for it (QEMU
    # cannot stop them), as libvirt >= 8.5 reports it
    both = wait_for(lambda: domstate(a, name) == "paused (post-copy failed)" and
                    domstate(b, name) == "running (post-copy failed)", 60)
    t.ok(both, "%s: A paused (post-copy failed), B running (post-copy failed)" % name,
         "A %s, B %s" % (domstate(a, name), domstate(b, name)))
    for h in (a, b):
        t.eq(qemu_migration_status(h, name), "postcopy-paused",
             "%s: %s's QEMU is postcopy-paused" % (name, h.name))
        t.eq(jobinfo(h, name).get("Job type"), "None", "%s: %s has no job left" % (name, h.name))
    return both


def test_resume(a, b, c, kernel, p2p):
    extra = ["--p2p"] if p2p else []
    name = "pcr_p2p" if p2p else "pcr_client"
    g = Guest(a, name, kernel)
    t.ok(g.start(), "%s runs on A and dirties its memory" % name)
    pid_a = g.pid
    # B's QEMU (root) creates its own serial file there
    serial_file(b, name)
    if not break_postcopy(a, b, g, extra):
        return
    pid_b = qemu_pid(b, name)

    # a resume to a host that does not have the domain: refused, nothing
    # changes, the resume can be tried again
    r = a.virsh("migrate", "--live", "--postcopy", "--postcopy-resume", name, c.uri,
                *(MIG_ARGS + extra), timeout=120)
    t.ok(r.rc != 0 and "no such domain on the destination host" in r.err,
         "%s: resume to a host without the domain is refused" % name, r)
    for h, pid, state in ((a, pid_a, "paused"), (b, pid_b, "running")):
        t.eq(domstate(h, name), state + " (post-copy failed)",
             "%s: %s still %s (post-copy failed)" % (name, h.name, state))
        t.ok(qemu_pid(h, name) == pid and alive(pid), "%s: %s same QEMU" % (name, h.name))
        t.eq(qemu_migration_status(h, name), "postcopy-paused",
             "%s: %s's QEMU still postcopy-paused" % (name, h.name))
    t.ok(name not in c.virsh("list", "--all", "--name").out.split(),
         "%s: nothing left on the third host" % name)
    t.eq(jobinfo(a, name).get("Job type"), "None", "%s: A: no job left after the refusal" % name)

    if not p2p:
        # the source's QEMU cannot reach the address the destination gives
        # (it listens on 127.0.0.1 only): QEMU 7.2 says nothing, the
        # source gives up after QEMU_MIGRATION_RESUME_CONNECT_SECONDS
        r = a.virsh("migrate", "--live", "--postcopy", "--postcopy-resume", name, b.uri,
                    "--migrateuri", "tcp://127.0.0.2", "--listen-address", "127.0.0.1",
                    timeout=180)
        t.ok(r.rc != 0 and "could not connect to the destination" in r.err,
             "%s: a resume whose QEMU cannot connect fails, saying so" % name, r)
        for h, state in ((a, "paused"), (b, "running")):
            t.eq(domstate(h, name), state + " (post-copy failed)",
                 "%s: %s: %s (post-copy failed) after the failed resume" % (name, h.name, state))
            t.eq(qemu_migration_status(h, name), "postcopy-paused",
                 "%s: %s's QEMU postcopy-paused after the failed resume" % (name, h.name))
            t.eq(jobinfo(h, name).get("Job type"), "None",
                 "%s: %s: no job left after the failed resume" % (name, h.name))

    before = max(g.last_pass(a), g.last_pass(b))
    p = migrate_bg(a, name, b, ["--postcopy", "--postcopy-resume",
                                "--postcopy-bandwidth", "8"] + extra)
    seen = wait_for(lambda: jobinfo(a, name).get("Job type") == "Unbounded" or
                    p.poll() is not None, 60)
    info_a, info_b = jobinfo(a, name), jobinfo(b, name)
    if seen and p.poll() is None and info_a.get("Job type") == "Unbounded":
        t.eq(info_a.get("Operation"), "Outgoing migration",
             "%s: A: domjobinfo during the resume: outgoing migration" % name)
        t.ok(info_b.get("Job type") in ("Unbounded", "None") and
             domstate(b, name) in ("running (post-copy failed)", "running (post-copy)",
                                   "running (migrated)"),
             "%s: B: domjobinfo answers during the resume" % name,
             "%s %s" % (info_b, domstate(b, name)))
        if info_b.get("Job type") == "Unbounded":
            t.eq(info_b.get("Operation"), "Incoming migration",
                 "%s: B: the incoming migration job" % name)
    else:
        t.skip("domjobinfo during the resume", "the resume ended before it could be "
               "looked at (%s)" % info_a)
    rc, out, err = finish(p)
    t.ok(rc == 0, "%s: virsh migrate --postcopy --postcopy-resume%s completed" %
         (name, " --p2p" if p2p else ""), "rc=%s\n%s\n%s" % (rc, out, err))
    t.eq(domstate(b, name), "running (migrated)", "%s: B: running (migrated)" % name)
    t.ok(qemu_pid(b, name) == pid_b, "%s: B: the same QEMU as before the resume" % name)
    t.ok(wait_for(lambda: not alive(pid_a), 30), "%s: A's QEMU is gone" % name)
    t.eq(domstate(a, name), "shut off (migrated)", "%s: A: shut off (migrated)" % name)
    t.eq(jobinfo(b, name, "--completed").get("Job type"), "Completed",
         "%s: B: domjobinfo --completed: completed" % name)
    t.ok(wait_for(lambda: g.last_pass(b) > before + 1, 60),
         "%s: the guest goes on counting on B (pass %d before the resume, %d now)" %
         (name, before, g.last_pass(b)))
    t.ok("TANDEM-DIRTY-READY" not in g.serial(b),
         "%s: it never rebooted on B (memory intact)" % name)
    b.virsh("destroy", name)
    a.virsh("undefine", name)


def status_has(d, name, text):
    try:
        with open(d.private("/run/libvirt/qemu/%s.xml" % name)) as f:
            return text in f.read()
    except OSError:
        return False


def test_source_restart(a, b, kernel):
    """A's daemon is killed during a client-managed resume, once its status
    file records the phase postcopy_resume (QEMU asked to resume): the
    restarted daemon never resumes the guest on A; QEMU goes on sending
    and B's Finish completes."""
    name = "pcr_rst"
    g = Guest(a, name, kernel)
    t.ok(g.start(), "%s runs on A" % name)
    pid_a = g.pid
    serial_file(b, name)
    if not break_postcopy(a, b, g, []):
        return
    p = migrate_bg(a, name, b, ["--postcopy", "--postcopy-resume", "--postcopy-bandwidth", "2"])
    recorded = wait_for(lambda: status_has(a, name, "phase='postcopy_resume'") or
                        p.poll() is not None, 60)
    if not recorded or p.poll() is not None:
        t.skip("source restart during the resume", "the resume ended before A recorded "
               "its phase (%s)" % (p.poll() is not None and finish(p)))
        b.virsh("destroy", name)
        a.virsh("destroy", name)
        a.virsh("undefine", name)
        return
    t.ok(True, "%s: A's status file records the phase postcopy_resume" % name)
    a.stop(sig=signal.SIGKILL)
    a.start()
    state = domstate(a, name)
    t.ok(state in ("paused (post-copy)", "paused (post-copy failed)"),
         "%s: A after its restart: still paused, not resumed" % name, state)
    t.ok(alive(pid_a) and qemu_pid(a, name) == pid_a, "%s: A: same QEMU" % name)
    t.ok("interrupted after the switch to post-copy" in a.log(),
         "%s: A's log says what reconnect found" % name)
    rc, out, err = finish(p)
    print("# virsh migrate --postcopy-resume: rc=%s %s" % (rc, err.strip().replace("\n", " ")))
    t.ok(wait_for(lambda: domstate(b, name) == "running (migrated)", 180),
         "%s: B: the transfer completed, the guest runs there" % name, domstate(b, name))
    t.ok(domstate(a, name).startswith("paused"), "%s: A: still paused, never resumed" % name,
         domstate(a, name))
    r = a.virsh("destroy", name)
    t.ok(r.rc == 0, "%s: A: the stale source can be destroyed" % name, r)
    b.virsh("destroy", name)
    a.virsh("undefine", name)


def test_refusals(a, b, kernel):
    name = "pcr_run"
    g = Guest(a, name, kernel)
    t.ok(g.start(), "%s runs on A" % name)
    r = a.virsh("migrate", "--live", "--postcopy", "--postcopy-resume", name, b.uri,
                *MIG_ARGS, timeout=120)
    t.ok(r.rc != 0 and "Requested operation is not valid" in r.err and
         "not paused after a failed post-copy migration on the source host" in r.err,
         "resume of a running domain: operation invalid", r)
    r = a.virsh("domjobabort", "--postcopy", name)
    t.ok(r.rc != 0 and "Requested operation is not valid" in r.err and
         "no outgoing migration in post-copy mode" in r.err,
         "domjobabort --postcopy without a post-copy migration: operation invalid", r)
    r = a.virsh("migrate", "--live", "--postcopy-resume", name, b.uri, *MIG_ARGS, timeout=120)
    t.ok(r.rc != 0 and "--postcopy" in r.err, "virsh: --postcopy-resume needs --postcopy", r)
    conn = libvirt.open(a.uri)
    dconn = libvirt.open(b.uri)
    try:
        dom = conn.lookupByName(name)
        try:
            dom.migrate3(dconn, {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://127.0.0.1"},
                         libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_POSTCOPY_RESUME)
            t.ok(False, "VIR_MIGRATE_POSTCOPY_RESUME without VIR_MIGRATE_POSTCOPY is refused")
        except libvirt.libvirtError as e:
            t.ok(e.get_error_code() == libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED and
                 "requires VIR_MIGRATE_POSTCOPY" in e.get_error_message(),
                 "VIR_MIGRATE_POSTCOPY_RESUME without VIR_MIGRATE_POSTCOPY: argument unsupported",
                 "%s %s" % (e.get_error_code(), e.get_error_message()))
    finally:
        dconn.close()
        conn.close()
    t.ok(domstate(a, name).startswith("running") and qemu_pid(a, name) == g.pid,
         "%s keeps running on A" % name, domstate(a, name))
    t.eq(jobinfo(a, name).get("Job type"), "None", "no job left on A")
    t.ok(name not in b.virsh("list", "--all", "--name").out.split(), "nothing on B")
    a.virsh("destroy", name)
    a.virsh("undefine", name)


a = Daemon("pcrA")
b = Daemon("pcrB", qemu_conf=ROOT_QEMU)
c = Daemon("pcrC", qemu_conf=ROOT_QEMU)
try:
    paths = guest_paths()
    for d in (a, b, c):
        d.start()
    t.run("resume, client-managed", test_resume, a, b, c, paths["DIRTY"], False)
    t.run("resume, peer to peer", test_resume, a, b, c, paths["DIRTY"], True)
    t.run("refusals", test_refusals, a, b, paths["DIRTY"])
    t.run("source daemon restarted during the resume", test_source_restart, a, b,
          paths["DIRTY"])
    t.ok(a.alive() and b.alive(), "both daemons alive at the end")
except Exception as ex:
    t.ok(False, "post-copy resume setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
finally:
    for d in (a, b, c):
        rundir = d.private("/run/libvirt/qemu")
        for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
            if n.endswith(".pid"):
                pid = qemu_pid(d, n[:-4])
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)
        d.cleanup()
t.done()
