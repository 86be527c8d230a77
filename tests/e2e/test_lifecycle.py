# test_lifecycle.py: running guests through a real libvirtd with Tandem:
# start, suspend/resume, destroy, transient domains, QEMU dying behind the
# driver's back, start failures with QEMU's own error, daemon restart with
# guests running, the monitor passthrough, events, concurrent clients.
# The guest is a diskless machine sitting in its BIOS: enough for the
# lifecycle (ACPI shutdown needs a real guest; see test_guest.py).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import glob
import json
import os
import pwd
import signal
import textwrap
import threading

from tandemtest import TAP, Daemon, Embedded, run, write_tmp, qemu_pid, alive, wait_for, domstate

t = TAP()


def bare_xml(name, extra=""):
    return textwrap.dedent("""\
        <domain type='qemu'>
          <name>%s</name>
          <memory unit='MiB'>64</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <devices>%s</devices>
        </domain>
        """) % (name, extra)


def define(d, name, extra=""):
    path = write_tmp(bare_xml(name, extra))
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def test_start_stop(d):
    t.ok(define(d, "lc1").rc == 0, "define lc1")
    r = d.virsh("start", "lc1")
    t.ok(r.rc == 0, "start", r)
    t.eq(domstate(d, "lc1"), "running (booted)", "domstate --reason after start")
    pid = qemu_pid(d, "lc1")
    t.ok(alive(pid), "QEMU process runs (pid file in /run/libvirt/qemu)")
    if pid:
        uid = os.stat("/proc/%d" % pid).st_uid
        t.eq(pwd.getpwuid(uid).pw_name, "libvirt-qemu", "QEMU runs as the unprivileged qemu.conf user")
        with open("/proc/%d/cmdline" % pid) as f:
            argv = f.read().split("\0")
        t.ok("-sandbox" in argv, "QEMU runs sandboxed")
    domid = d.virsh("domid", "lc1").out.strip()
    t.ok(domid.isdigit(), "domid of a running domain is a number", domid)
    t.ok(os.path.exists(d.private("/run/libvirt/qemu/lc1.xml")), "status file written")
    r = d.virsh("dominfo", "lc1")
    t.ok(r.rc == 0 and "State:          running" in r.out, "dominfo of a running domain", r)
    r = d.virsh("start", "lc1")
    t.ok(r.rc != 0 and "already active" in r.err, "start of a running domain refused", r)

    r = d.virsh("suspend", "lc1")
    t.ok(r.rc == 0, "suspend", r)
    t.eq(domstate(d, "lc1"), "paused (user)", "paused (user) after suspend")
    r = d.virsh("resume", "lc1")
    t.ok(r.rc == 0, "resume", r)
    t.eq(domstate(d, "lc1"), "running (unpaused)", "running (unpaused) after resume")
    r = d.virsh("reset", "lc1")
    t.ok(r.rc == 0, "reset", r)

    r = d.virsh("qemu-monitor-command", "lc1", '{"execute":"query-status"}')
    t.ok(r.rc == 0 and '"running":true' in r.out.replace(" ", ""), "qemu-monitor-command (QMP)", r)
    r = d.virsh("qemu-monitor-command", "--hmp", "lc1", "info status")
    t.ok(r.rc == 0 and "running" in r.out, "qemu-monitor-command --hmp", r)
    r = d.virsh("domjobinfo", "lc1")
    t.ok(r.rc == 0 and "Job type:         None" in r.out, "domjobinfo without a job", r)

    r = d.virsh("destroy", "lc1")
    t.ok(r.rc == 0, "destroy", r)
    t.eq(domstate(d, "lc1"), "shut off (destroyed)", "shut off (destroyed)")
    t.ok(wait_for(lambda: not alive(pid), 10), "QEMU is gone after destroy")
    t.ok(not os.path.exists(d.private("/run/libvirt/qemu/lc1.xml")), "status file removed")
    t.eq(d.virsh("domid", "lc1").out.strip(), "-", "domid '-' again")
    r = d.virsh("destroy", "lc1")
    t.ok(r.rc != 0 and "domain is not running" in r.err, "destroy of a stopped domain refused", r)

    r = d.virsh("start", "--paused", "lc1")
    t.ok(r.rc == 0 and domstate(d, "lc1") == "paused (user)", "start --paused", r)
    d.virsh("destroy", "lc1")


def test_transient(d):
    path = write_tmp(bare_xml("tr1"))
    r = d.virsh("create", path)
    os.unlink(path)
    t.ok(r.rc == 0, "create (transient)", r)
    t.eq(d.virsh("list", "--transient", "--name").out.split(), ["tr1"], "listed as transient")
    t.ok(d.virsh("destroy", "tr1").rc == 0, "destroy transient")
    t.ok("tr1" not in d.virsh("list", "--all", "--name").out.split(), "transient domain gone after destroy")


def test_crash(d):
    define(d, "cr1")
    d.virsh("start", "cr1")
    pid = qemu_pid(d, "cr1")
    if not t.ok(alive(pid), "cr1 runs"):
        return
    os.kill(pid, signal.SIGKILL)
    t.ok(wait_for(lambda: domstate(d, "cr1") == "shut off (crashed)", 20),
         "QEMU killed behind the driver's back: shut off (crashed)", domstate(d, "cr1"))
    t.ok(not os.path.exists(d.private("/run/libvirt/qemu/cr1.xml")), "its status file removed")
    r = d.virsh("start", "cr1")
    t.ok(r.rc == 0, "it starts again", r)
    d.virsh("destroy", "cr1")


def test_start_failures(d):
    define(d, "bad1", "<disk type='file' device='disk'><source file='/nonexistent/disk.img'/>"
                      "<target dev='vda' bus='virtio'/></disk>")
    r = d.virsh("start", "bad1")
    t.ok(r.rc != 0 and "/nonexistent/disk.img" in r.err, "start with a missing disk names the file", r)
    t.eq(domstate(d, "bad1"), "shut off (failed)", "still shut off, reason failed (as libvirt)")

    img = d.private("/var/lib/libvirt/images/notqcow2.img")
    os.makedirs(os.path.dirname(img), exist_ok=True)
    with open(img, "wb") as f:
        f.write(b"\0" * 65536)
    define(d, "bad2", "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                      "<source file='/var/lib/libvirt/images/notqcow2.img'/>"
                      "<target dev='vda' bus='virtio'/></disk>")
    r = d.virsh("start", "bad2")
    t.ok(r.rc != 0 and "qcow2" in r.err and "failed to start" in r.err,
         "QEMU's own complaint is shown when it refuses to start", r)
    t.ok(not os.listdir(d.private("/run/libvirt/qemu")) or
         not any(n.startswith("bad2") for n in os.listdir(d.private("/run/libvirt/qemu"))),
         "nothing left of the failed start")


def test_restart(d):
    define(d, "rs1")
    define(d, "rs2")
    d.virsh("start", "rs1")
    d.virsh("start", "rs2")
    d.virsh("suspend", "rs2")
    pid1, pid2 = qemu_pid(d, "rs1"), qemu_pid(d, "rs2")
    d.restart()
    t.ok(alive(pid1) and alive(pid2), "guests keep running across a daemon restart")
    t.ok(wait_for(lambda: domstate(d, "rs1") == "running (booted)", 20),
         "reconnected: rs1 still running (booted)", domstate(d, "rs1"))
    t.ok(domstate(d, "rs2").startswith("paused"), "reconnected: rs2 still paused", domstate(d, "rs2"))
    t.eq(qemu_pid(d, "rs1"), pid1, "same QEMU process after restart")
    r = d.virsh("qemu-monitor-command", "rs1", '{"execute":"query-status"}')
    t.ok(r.rc == 0 and "running" in r.out, "monitor works after reconnect", r)
    t.ok(d.virsh("resume", "rs2").rc == 0 and domstate(d, "rs2") == "running (unpaused)",
         "resume after reconnect")

    # a guest that dies while the daemon is down is found shut off
    d.stop()
    os.kill(pid2, signal.SIGKILL)
    d.start()
    t.ok(wait_for(lambda: domstate(d, "rs2").startswith("shut off"), 20),
         "guest that died while the daemon was down is shut off after restart", domstate(d, "rs2"))
    d.virsh("destroy", "rs1")
    t.ok(wait_for(lambda: not alive(pid1), 10), "destroy after reconnect kills the old QEMU")


PY_EVENTS = textwrap.dedent(r'''
    import json, sys, threading, time, libvirt
    libvirt.virEventRegisterDefaultImpl()
    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=loop, daemon=True).start()
    conn = libvirt.open(sys.argv[1])
    events = []
    def cb(conn, dom, event, detail, opaque):
        events.append([event, detail])
    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, cb, None)
    dom = conn.lookupByName(sys.argv[2])
    dom.create()
    dom.suspend()
    dom.resume()
    dom.destroy()
    deadline = time.time() + 10
    while (not events or events[-1][0] != libvirt.VIR_DOMAIN_EVENT_STOPPED) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    print(json.dumps(events))
''')


def test_events(d):
    import libvirt
    define(d, "ev1")
    r = run(["/usr/bin/python3", "-c", PY_EVENTS, d.uri, "ev1"])
    if not t.ok(r.rc == 0, "python event client ran", r):
        return
    t.eq(json.loads(r.out),
         [[libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED],
          [libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED],
          [libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED],
          [libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED]],
         "lifecycle events in order: started, suspended, resumed, stopped")


def test_concurrent(d):
    define(d, "cc1")
    d.virsh("start", "cc1")
    errors = []

    def worker(cmds):
        for _ in range(5):
            for c in cmds:
                r = d.virsh(*c)
                if r.rc != 0:
                    errors.append((c, r.err.strip()))

    threads = [threading.Thread(target=worker, args=([("dominfo", "cc1"), ("domstate", "cc1")],)),
               threading.Thread(target=worker, args=([("suspend", "cc1"), ("resume", "cc1")],)),
               threading.Thread(target=worker, args=([("qemu-monitor-command", "cc1", '{"execute":"query-status"}')],)),
               threading.Thread(target=worker, args=([("domjobinfo", "cc1"), ("list", "--all")],))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.eq(errors, [], "concurrent clients on one running domain: no failures")
    t.ok(domstate(d, "cc1") == "running (unpaused)", "still running afterwards", domstate(d, "cc1"))
    d.virsh("destroy", "cc1")


def test_autodestroy(d):
    path = write_tmp(bare_xml("ad1"))
    r = d.virsh("create", "--autodestroy", path)
    os.unlink(path)
    t.ok(r.rc == 0, "create --autodestroy", r)
    t.ok(wait_for(lambda: "ad1" not in d.virsh("list", "--all", "--name").out.split(), 20),
         "autodestroy domain gone when its connection closed")


def test_embedded():
    e = Embedded("lc-embed")
    pids = []
    try:
        path = write_tmp(bare_xml("emb1"))
        r = e.virsh("define", path)
        os.unlink(path)
        r = e.virsh("start emb1; domstate --reason emb1; suspend emb1; domstate emb1; destroy emb1; domstate --reason emb1")
        t.ok(r.rc == 0 and r.out.split("\n").count("") >= 0, "embedded: start/suspend/destroy in one virsh", r)
        t.contains(r.out, "running (booted)", "embedded: running after start")
        t.contains(r.out, "shut off (destroyed)", "embedded: destroyed")

        # every virsh is a new process that reconnects to the running guest:
        # its first calls already find the monitor (the reconnect gate);
        # they used to fail with "QEMU monitor is not available"
        r = e.virsh("start", "emb1")
        t.ok(r.rc == 0, "embedded: start in one process", r)
        pids = glob.glob(os.path.join(e.root, "run", "emb1.pid"))
        t.eq(len(pids), 1, "embedded: the QEMU's pid file")
        for i in range(3):
            r = e.virsh("qemu-monitor-command", "emb1", '{"execute":"query-status"}')
            t.ok(r.rc == 0 and '"status":"running"' in r.out,
                 "embedded: a new process's first monitor call answers (%d)" % (i + 1), r)
        r = e.virsh("suspend emb1; domstate --reason emb1; resume emb1; domstate --reason emb1")
        t.ok(r.rc == 0 and "paused (user)" in r.out and "running (unpaused)" in r.out,
             "embedded: suspend and resume at once in a new process", r)
        with open(pids[0]) as f:
            qpid = int(f.read().strip())
        r = e.virsh("destroy", "emb1")
        t.ok(r.rc == 0 and "is gone" not in r.err,
             "embedded: destroy at once in a new process, not racing the reconnect", r)
        # (a later process reads an inactive domain from its definition:
        # the reason is not kept, as with libvirt)
        t.ok(e.virsh("domstate", "emb1").out.strip() == "shut off" and
             not alive(qpid) and not os.path.exists(pids[0]),
             "embedded: destroyed by the new process: its QEMU and pid file gone")
    finally:
        for path in pids:
            try:
                with open(path) as f:
                    pid = int(f.read().strip())
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        e.cleanup()


d = Daemon("lifecycle")
try:
    d.start()
    for name, fn in [("start/stop", test_start_stop), ("transient", test_transient),
                     ("crash", test_crash), ("start failures", test_start_failures),
                     ("events", test_events), ("concurrent", test_concurrent),
                     ("autodestroy", test_autodestroy), ("restart", test_restart)]:
        t.run(name, fn, d)
    t.ok(d.alive(), "daemon alive at the end")
except Exception as ex:
    t.ok(False, "lifecycle setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    # stop every QEMU this test started, by the pids the daemon recorded
    for n in os.listdir(d.private("/run/libvirt/qemu")) if os.path.isdir(d.private("/run/libvirt/qemu")) else []:
        if n.endswith(".pid"):
            pid = qemu_pid(d, n[:-4])
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    d.cleanup()
t.run("embedded", test_embedded)
t.done()
