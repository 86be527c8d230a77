# test_guest.py: a real Linux guest (tests/guest: kernel + busybox
# initramfs with qemu-ga and ACPI power button handling) run by a real
# libvirtd with Tandem: boot, the guest agent (qemu-agent-command, domtime,
# domhostname, domifaddr, domfsfreeze/domfsthaw, guestinfo, shutdown and
# reboot through the agent), ACPI shutdown and reboot with their lifecycle
# events, the agent's errors and deadline, and the agent after a daemon
# restart.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

from tandemtest import TAP, Daemon, SRCDIR, run, write_tmp, wait_for, alive, qemu_pid, domstate

t = TAP()

READY = "TANDEM-GUEST-READY"
AGENT_TIMEOUT = 3    # agent_timeout of the daemon's qemu.conf, seconds
BOOT_TIMEOUT = 120   # bounded waits for the guest (TCG)


def readable_by_qemu(path):
    """Can libvirt-qemu (not in root's groups) read @path?"""
    p = os.path.abspath(path)
    st = os.stat(p)
    if not st.st_mode & stat.S_IROTH:
        return False
    d = os.path.dirname(p)
    while True:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


class Guest:
    """The guest's files: kernel and initrd where QEMU may read them, and a
    directory QEMU may write the serial logs into."""

    def __init__(self):
        r = run(["bash", os.path.join(SRCDIR, "tests/guest/build-guest.sh")], timeout=1500)
        if r.rc == 77:
            # Debian packages unreachable: outside the project
            print("1..0 # SKIP cannot build the test guest: %s" % r.err.strip().splitlines()[-1:])
            sys.exit(0)
        if r.rc != 0:
            raise RuntimeError("build-guest.sh failed (%d):\n%s" % (r.rc, r.err[-2000:]))
        vals = dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)
        self.kernel, self.initrd = vals["KERNEL"], vals["INITRD"]
        self.dir = tempfile.mkdtemp(prefix="tandem-guest-",
                                    dir=os.environ.get("TANDEM_TEST_TMPDIR") or None)
        os.chmod(self.dir, 0o755)
        if not (readable_by_qemu(self.kernel) and readable_by_qemu(self.initrd)):
            for attr in ("kernel", "initrd"):
                dst = os.path.join(self.dir, os.path.basename(getattr(self, attr)))
                shutil.copyfile(getattr(self, attr), dst)
                os.chmod(dst, 0o644)
                setattr(self, attr, dst)
        # root's: the driver creates the serial logs for QEMU's user
        self.logdir = os.path.join(self.dir, "logs")
        os.mkdir(self.logdir)

    def serial_log(self, name):
        return os.path.join(self.logdir, "%s-serial.log" % name)

    def xml(self, name, agent=True, cmdline="console=ttyS0", watchdog=False):
        channel = ("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
                   if agent else "")
        if watchdog:
            channel += "<watchdog model='i6300esb' action='none'/>"

        return textwrap.dedent("""\
            <domain type='qemu'>
              <name>%s</name>
              <memory unit='MiB'>256</memory>
              <vcpu>1</vcpu>
              <os>
                <type arch='x86_64' machine='pc'>hvm</type>
                <kernel>%s</kernel>
                <initrd>%s</initrd>
                <cmdline>%s</cmdline>
              </os>
              <features><acpi/></features>
              <on_poweroff>destroy</on_poweroff>
              <on_reboot>restart</on_reboot>
              <devices>
                <serial type='pty'>
                  <log file='%s' append='on'/>
                  <target port='0'/>
                </serial>
                %s
                <interface type='user'><model type='virtio'/></interface>
                <memballoon model='virtio'/>
              </devices>
            </domain>
            """) % (name, self.kernel, self.initrd, cmdline, self.serial_log(name), channel)

    def ready_count(self, name):
        try:
            with open(self.serial_log(name), errors="replace") as f:
                return f.read().count(READY)
        except OSError:
            return 0

    def ready_line(self, name):
        try:
            with open(self.serial_log(name), errors="replace") as f:
                lines = [l for l in f.read().splitlines() if READY in l]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def cleanup(self):
        if not os.environ.get("TANDEM_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def define(d, g, name, **kw):
    path = write_tmp(g.xml(name, **kw))
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def boot(d, g, name, count=1):
    """Starts @name (unless running) and waits for its @count-th READY line."""
    if not domstate(d, name).startswith("running"):
        r = d.virsh("start", name)
        if r.rc != 0:
            return r
    ok = wait_for(lambda: g.ready_count(name) >= count, BOOT_TIMEOUT, 0.5)
    return ok


def agent_ping(d, name, timeout=None):
    args = ["qemu-agent-command", name, '{"execute":"guest-ping"}']
    if timeout is not None:
        args[1:1] = ["--timeout", str(timeout)]
    return d.virsh(*args)


def wait_agent(d, name):
    """qemu-ga starts before READY is printed; give the channel a moment."""
    return wait_for(lambda: agent_ping(d, name).rc == 0, 30, 0.5)


# python3-libvirt client that records lifecycle events around an action
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
    action = sys.argv[3]
    if action == "shutdown":
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    elif action == "agent-shutdown":
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
    deadline = time.time() + float(sys.argv[4])
    while (not events or events[-1][0] != libvirt.VIR_DOMAIN_EVENT_STOPPED) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    print(json.dumps(events))
''')


def test_boot_and_agent(d, g):
    t.ok(define(d, g, "g1", agent=True, watchdog=True).rc == 0,
         "define the Linux guest with an agent channel and a watchdog")
    ok = boot(d, g, "g1")
    if not t.ok(ok is True, "guest boots to READY (serial log of the pty console)",
                ok if ok is not True else None):
        return False
    line = g.ready_line("g1")
    t.contains(line, "agent=yes", "the guest runs qemu-ga on the agent port")
    t.contains(line, "acpi=yes", "the guest handles the ACPI power button")

    xml = d.virsh("dumpxml", "g1").out
    m = re.search(r"<channel type='unix'>\s*<source mode='bind' path='([^']+)'", xml)
    t.ok(m and m.group(1).endswith("/org.qemu.guest_agent.0"),
         "live XML names the agent socket in the domain's private directory", xml)

    t.ok(wait_agent(d, "g1"), "agent answers")
    r = agent_ping(d, "g1")
    t.ok(r.rc == 0 and json.loads(r.out) == {"return": {}},
         "qemu-agent-command guest-ping -> {\"return\":{}}", r)
    r = d.virsh("qemu-agent-command", "g1", '{"execute":"guest-info"}')
    t.ok(r.rc == 0 and "version" in json.loads(r.out).get("return", {}),
         "qemu-agent-command guest-info has a version", r)
    r = d.virsh("qemu-agent-command", "--block", "g1", '{"execute":"guest-ping"}')
    t.ok(r.rc == 0 and json.loads(r.out) == {"return": {}}, "qemu-agent-command --block", r)
    r = d.virsh("qemu-agent-command", "--timeout", "10", "g1", '{"execute":"guest-ping"}')
    t.ok(r.rc == 0, "qemu-agent-command --timeout 10", r)
    r = d.virsh("qemu-agent-command", "--async", "g1", '{"execute":"guest-ping"}')
    t.ok(r.rc == 0, "qemu-agent-command --async (no wait)", r)
    r = agent_ping(d, "g1")
    t.ok(r.rc == 0 and json.loads(r.out) == {"return": {}},
         "the reply left over by --async is flushed by the next handshake", r)
    r = d.virsh("qemu-agent-command", "g1", '{"execute":"guest-no-such-command"}')
    t.ok(r.rc != 0 and "unable to execute QEMU agent command 'guest-no-such-command'" in r.err,
         "an error reply of the agent is reported with the command name", r)
    r = d.virsh("qemu-agent-command", "g1", "not json")
    t.ok(r.rc != 0, "an invalid command is refused", r)

    r = d.virsh("domtime", "g1")
    m = re.search(r"Time:\s*(\d+)", r.out)
    t.ok(r.rc == 0 and m is not None, "domtime", r)
    if m:
        t.ok(abs(int(m.group(1)) - time.time()) < 3600,
             "guest time is the host's (within an hour)", r.out)
    r = d.virsh("domtime", "g1", "--now")
    t.ok(r.rc == 0, "domtime --now (guest-set-time)", r)

    r = d.virsh("domhostname", "g1")
    t.ok(r.rc == 0 and r.out.strip() == "tandem-guest", "domhostname (agent)", r)
    r = d.virsh("domhostname", "--source", "agent", "g1")
    t.ok(r.rc == 0 and r.out.strip() == "tandem-guest", "domhostname --source agent", r)

    r = d.virsh("domifaddr", "--source", "agent", "g1")
    t.ok(r.rc == 0 and re.search(r"eth0\s+\S+\s+ipv4\s+10\.0\.2\.15/24", r.out),
         "domifaddr --source agent: eth0 10.0.2.15/24", r)
    t.ok(re.search(r"lo\s+00:00:00:00:00:00\s+ipv4\s+127\.0\.0\.1/8", r.out),
         "domifaddr --source agent: lo 127.0.0.1/8", r)
    r = d.virsh("domifaddr", "--source", "lease", "g1")
    t.ok(r.rc != 0, "domifaddr --source lease is refused", r)

    r = d.virsh("domfsfreeze", "g1")
    t.ok(r.rc == 0, "domfsfreeze", r)
    d.virsh("domfsthaw", "g1")
    # the initramfs guest has nothing FIFREEZE can freeze: count 0, and
    # qemu-ga then stays "thawed"
    r = run(["/usr/bin/python3", "-c",
             "import libvirt, sys; c = libvirt.open(sys.argv[1]); "
             "d = c.lookupByName('g1'); print(d.fsFreeze()); print(d.fsThaw())", d.uri])
    t.ok(r.rc == 0 and r.out.split() == ["0", "0"],
         "virDomainFSFreeze/FSThaw return the guest's counts (0 and 0)", r)
    r = d.virsh("qemu-agent-command", "g1", '{"execute":"guest-fsfreeze-status"}')
    t.ok(r.rc == 0 and json.loads(r.out) == {"return": "thawed"},
         "guest-fsfreeze-status after freeze/thaw: thawed", r)
    r = d.virsh("domfsthaw", "g1")
    t.ok(r.rc == 0, "domfsthaw", r)

    r = d.virsh("guestinfo", "--hostname", "g1")
    t.ok(r.rc == 0 and re.search(r"hostname\s*:\s*tandem-guest", r.out), "guestinfo --hostname", r)
    r = d.virsh("guestinfo", "g1")
    t.ok(r.rc == 0 and "os.kernel-release" in r.out, "guestinfo (all types)", r)

    r = d.virsh("domstate", "g1")
    t.eq(r.out.strip(), "running", "still running after the agent commands")
    return True


def test_agent_deadline(d, g):
    pid = qemu_pid(d, "g1")
    if not t.ok(alive(pid), "QEMU of g1 runs"):
        return
    # QEMU stopped: nothing reaches the guest, nothing comes back
    os.kill(pid, signal.SIGSTOP)
    try:
        r = agent_ping(d, "g1")
        t.ok(r.rc != 0 and "Guest agent is not responding" in r.err and
             "guest-ping" in r.err and "%d s" % AGENT_TIMEOUT in r.err,
             "agent deadline (agent_timeout): 'Guest agent is not responding' naming the command", r)
        r = agent_ping(d, "g1", timeout=1)
        t.ok(r.rc != 0 and "Guest agent is not responding" in r.err and
             "guest-sync-delimited" in r.err,
             "next command: the handshake itself hits the deadline", r)
        r = d.virsh("dominfo", "g1")
        t.ok(r.rc == 0, "dominfo works while the agent does not answer", r)
    finally:
        os.kill(pid, signal.SIGCONT)
    r = agent_ping(d, "g1")
    t.ok(r.rc == 0 and json.loads(r.out) == {"return": {}},
         "after QEMU continues, stale replies are flushed and the agent works", r)
    r = d.virsh("domhostname", "g1")
    t.ok(r.rc == 0 and r.out.strip() == "tandem-guest", "domhostname after the deadline", r)


def test_no_agent(d, g):
    # no channel at all
    t.ok(define(d, g, "g2", agent=False).rc == 0, "define a guest without an agent channel")
    ok = boot(d, g, "g2")
    if not t.ok(ok is True, "guest without agent channel boots", ok if ok is not True else None):
        return
    r = agent_ping(d, "g2")
    t.ok(r.rc != 0 and "QEMU guest agent is not configured" in r.err,
         "agent command without a channel: 'QEMU guest agent is not configured'", r)
    r = d.virsh("domtime", "g2")
    t.ok(r.rc != 0 and "QEMU guest agent is not configured" in r.err,
         "domtime without a channel", r)
    r = d.virsh("shutdown", "--mode", "agent", "g2")
    t.ok(r.rc != 0 and "QEMU guest agent is not configured" in r.err,
         "shutdown --mode agent without a channel", r)
    d.virsh("destroy", "g2")

    # a channel, but nothing in the guest opens it (the BIOS only)
    path = write_tmp(textwrap.dedent("""\
        <domain type='qemu'>
          <name>g3</name>
          <memory unit='MiB'>64</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <devices>
            <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
          </devices>
        </domain>
        """))
    try:
        d.virsh("define", path)
    finally:
        os.unlink(path)
    r = d.virsh("start", "g3")
    t.ok(r.rc == 0, "start a guest whose agent channel nobody opens", r)
    r = agent_ping(d, "g3")
    t.ok(r.rc != 0 and "Guest agent is not responding: QEMU guest agent is not connected" in r.err,
         "agent command: 'Guest agent is not responding: QEMU guest agent is not connected'", r)
    r = d.virsh("domhostname", "g3")
    t.ok(r.rc != 0 and "QEMU guest agent is not connected" in r.err, "domhostname likewise", r)
    d.virsh("destroy", "g3")
    r = agent_ping(d, "g3")
    t.ok(r.rc != 0 and "domain is not running" in r.err, "agent command on a shut off domain", r)


def test_restart(d, g):
    pid = qemu_pid(d, "g1")
    d.restart()
    t.ok(alive(pid) and qemu_pid(d, "g1") == pid, "guest keeps running across a daemon restart")
    t.ok(wait_for(lambda: domstate(d, "g1").startswith("running"), 30),
         "reconnected: running", domstate(d, "g1"))
    r = agent_ping(d, "g1")
    t.ok(r.rc == 0 and json.loads(r.out) == {"return": {}}, "agent works after the daemon restart", r)
    r = d.virsh("domhostname", "g1")
    t.ok(r.rc == 0 and r.out.strip() == "tandem-guest", "domhostname after the daemon restart", r)


def test_acpi_reboot(d, g):
    before = g.ready_count("g1")
    pid = qemu_pid(d, "g1")
    r = d.virsh("reboot", "--mode", "acpi", "g1")
    t.ok(r.rc == 0, "virsh reboot (ACPI)", r)
    t.ok(wait_for(lambda: g.ready_count("g1") > before, BOOT_TIMEOUT, 0.5),
         "the guest boots again (READY once more in the same serial log)",
         "READY lines: %d" % g.ready_count("g1"))
    t.eq(qemu_pid(d, "g1"), pid, "same QEMU process after the reboot")
    t.ok(domstate(d, "g1").startswith("running"), "running after the reboot", domstate(d, "g1"))
    t.ok(wait_agent(d, "g1"), "agent answers after the reboot")


def test_agent_reboot(d, g):
    before = g.ready_count("g1")
    r = d.virsh("reboot", "--mode", "agent", "g1")
    t.ok(r.rc == 0, "virsh reboot --mode agent", r)
    t.ok(wait_for(lambda: g.ready_count("g1") > before, BOOT_TIMEOUT, 0.5),
         "the guest reboots through qemu-ga", "READY lines: %d" % g.ready_count("g1"))
    t.ok(domstate(d, "g1").startswith("running"), "running after the agent reboot", domstate(d, "g1"))
    t.ok(wait_agent(d, "g1"), "agent answers after the agent reboot")


def test_acpi_shutdown(d, g):
    import libvirt
    pid = qemu_pid(d, "g1")
    r = run(["/usr/bin/python3", "-c", PY_EVENTS, d.uri, "g1", "shutdown", str(BOOT_TIMEOUT)],
            timeout=BOOT_TIMEOUT + 30)
    if not t.ok(r.rc == 0, "python client: shutdown (ACPI power button) and events", r):
        return
    events = json.loads(r.out)
    shutdown = [libvirt.VIR_DOMAIN_EVENT_SHUTDOWN, libvirt.VIR_DOMAIN_EVENT_SHUTDOWN_GUEST]
    stopped = [libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN]
    t.ok(len(events) >= 2 and events[0] == shutdown and events[-1] == stopped,
         "lifecycle events: SHUTDOWN (guest) first, STOPPED (shutdown) last", events)
    # QEMU reports a second SHUTDOWN (host-signal) for the SIGTERM that ends
    # it: like libvirt, the driver does not repeat the lifecycle event
    t.ok(events == [shutdown, stopped],
         "lifecycle events: exactly SHUTDOWN (guest) then STOPPED (shutdown)", events)
    t.eq(domstate(d, "g1"), "shut off (shutdown)", "domstate --reason: shut off (shutdown)")
    t.ok(wait_for(lambda: not alive(pid), 20), "QEMU exited")


def test_agent_shutdown(d, g):
    import libvirt
    before = g.ready_count("g1")
    ok = boot(d, g, "g1", before + 1)
    if not t.ok(ok is True, "g1 boots again", ok if ok is not True else None):
        return
    t.ok(wait_agent(d, "g1"), "agent answers")
    r = run(["/usr/bin/python3", "-c", PY_EVENTS, d.uri, "g1", "agent-shutdown", str(BOOT_TIMEOUT)],
            timeout=BOOT_TIMEOUT + 30)
    if not t.ok(r.rc == 0, "python client: shutdown --mode agent and events", r):
        return
    events = json.loads(r.out)
    t.ok(events and events[-1] == [libvirt.VIR_DOMAIN_EVENT_STOPPED,
                                   libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN],
         "shutdown --mode agent: the domain stops (STOPPED shutdown)", events)
    t.eq(domstate(d, "g1"), "shut off (shutdown)", "shut off (shutdown) after the agent shut it down")

    # the same through virsh
    before = g.ready_count("g1")
    ok = boot(d, g, "g1", before + 1)
    t.ok(ok is True and wait_agent(d, "g1"), "g1 boots once more")
    r = d.virsh("shutdown", "--mode", "agent", "g1")
    t.ok(r.rc == 0, "virsh shutdown --mode agent", r)
    t.ok(wait_for(lambda: domstate(d, "g1") == "shut off (shutdown)", BOOT_TIMEOUT),
         "virsh shutdown --mode agent: shut off (shutdown)", domstate(d, "g1"))


def test_watchdog(d, g):
    """The guest arms its i6300esb watchdog (busybox watchdog, 2 s timeout,
    petted every 100 s): QEMU fires it (action none) and the watchdog event
    reaches a libvirt client."""
    w = subprocess.Popen(["virsh", "-c", d.uri, "event", "--domain", "g1", "--event", "watchdog",
                          "--timeout", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1)
        cmd = {"execute": "guest-exec",
               "arguments": {"path": "/bin/busybox",
                             "arg": ["watchdog", "-T", "2", "-t", "100", "/dev/watchdog"]}}
        r = d.virsh("qemu-agent-command", "g1", json.dumps(cmd))
        t.ok(r.rc == 0 and "pid" in r.out, "the guest arms its watchdog (guest-exec)", r)
        out = w.communicate(timeout=90)[0]
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    t.ok("event 'watchdog' for domain 'g1': none" in out,
         "watchdog event (action none) through virsh event", out)
    t.ok(domstate(d, "g1").startswith("running"), "action none: the guest runs on")


def guest_exec(d, name, argv):
    cmd = {"execute": "guest-exec",
           "arguments": {"path": "/bin/busybox", "arg": argv, "capture-output": True}}
    return d.virsh("qemu-agent-command", name, json.dumps(cmd))


def test_io_error(d, g):
    """A disk on a 1 MiB tmpfs (mounted in the daemon's mount namespace
    only) that cannot hold what the guest writes: with error_policy='stop'
    QEMU pauses the guest (paused, I/O error), the io-error and
    io-error-reason events name the disk, its source and 'enospc', and
    domblkerror says 'no space'; once the file system has room, resume
    lets the guest finish its write and the error is gone."""
    name = "gio"
    mnt = tempfile.mkdtemp(prefix="io-", dir=g.dir)
    os.chmod(mnt, 0o755)
    ns = ["nsenter", "-t", str(d.proc.pid), "-m"]
    r = run(ns + ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tandem-ioerr", mnt])
    if not t.ok(r.rc == 0, "a 1 MiB tmpfs in the daemon's mount namespace", r):
        return
    img = os.path.join(mnt, "disk.raw")
    ev = None
    try:
        r = run(ns + ["truncate", "-s", "64M", img])
        t.ok(r.rc == 0, "a sparse 64 MiB image on it", r)
        disk = ("<disk type='file' device='disk'><driver name='qemu' type='raw' error_policy='stop'/>"
                "<source file='%s'/><target dev='vda' bus='virtio'/></disk>\n" % img)
        xml = g.xml(name, agent=True, cmdline="console=ttyS0 tandem.nonet")
        xml = xml.replace("<serial type='pty'>", disk + "<serial type='pty'>", 1)
        path = write_tmp(xml)
        try:
            r = d.virsh("define", path)
        finally:
            os.unlink(path)
        t.ok(r.rc == 0, "define a guest with that disk (error_policy='stop')", r)
        if not t.ok(boot(d, g, name) is True, "it boots", g.ready_line(name)):
            return
        t.ok(wait_agent(d, name), "its agent answers")
        r = d.virsh("domblkerror", name)
        t.ok(r.rc == 0 and "No errors found" in r.out, "domblkerror before: no errors", r)
        ev = subprocess.Popen(["virsh", "-c", d.uri, "event", "--domain", name, "--all", "--loop",
                               "--timeout", "120"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)
        r = guest_exec(d, name, ["dd", "if=/dev/zero", "of=/dev/vda", "bs=1M", "count=8", "conv=fsync"])
        t.ok(r.rc == 0 and "pid" in r.out, "the guest writes 8 MiB to vda (guest-exec dd)", r)
        t.ok(wait_for(lambda: domstate(d, name) == "paused (I/O error)", 60),
             "QEMU pauses it: paused (I/O error)", domstate(d, name))
        r = d.virsh("domblkerror", name)
        t.ok(r.rc == 0 and re.search(r"^vda: no space", r.out, re.M), "domblkerror: vda: no space", r)
        r = d.virsh("domblkerror", name, readonly=True)
        t.ok(r.rc == 0 and "vda: no space" in r.out, "domblkerror works on a read-only connection", r)

        r = run(ns + ["mount", "-o", "remount,size=80m", mnt])
        t.ok(r.rc == 0, "the file system gets room", r)
        r = d.virsh("resume", name)
        t.ok(r.rc == 0, "resume", r)
        t.ok(wait_for(lambda: domstate(d, name).startswith("running"), 30), "running again", domstate(d, name))
        r = d.virsh("domblkerror", name)
        t.ok(r.rc == 0 and "No errors found" in r.out, "domblkerror after resume: no errors", r)
        used = lambda: os.stat("/proc/%d/root%s" % (d.proc.pid, img)).st_blocks * 512
        t.ok(wait_for(lambda: used() >= 8 << 20, 60), "the guest's write completes (8 MiB in the image)",
             used())
        d.virsh("destroy", name)
        r = d.virsh("domblkerror", name)
        t.ok(r.rc != 0 and "domain is not running" in r.err, "domblkerror of a shut off domain: not running", r)
    finally:
        if ev:
            time.sleep(1)
            ev.kill()
            out = ev.communicate()[0]
            want_reason = "event 'io-error-reason' for domain '%s': %s (virtio-disk0) pause due to enospc" % (
                name, img)
            want = "event 'io-error' for domain '%s': %s (virtio-disk0) pause" % (name, img)
            t.ok(want_reason in out, "io-error-reason event: source, alias, pause, enospc", out)
            t.ok(re.search(re.escape(want) + r"$", out, re.M), "io-error event: source, alias, pause", out)
            t.ok("event 'lifecycle' for domain '%s': Suspended I/O Error" % name in out,
                 "lifecycle event: Suspended I/O Error", out)
        d.virsh("destroy", name)
        d.virsh("undefine", name)
        run(ns + ["umount", mnt])
        os.rmdir(mnt)


g = None
d = Daemon("guest", qemu_conf="agent_timeout = %d\n" % AGENT_TIMEOUT)
try:
    g = Guest()
    d.start()
    if test_boot_and_agent(d, g):
        for name, fn in [("watchdog", test_watchdog),
                         ("agent deadline", test_agent_deadline),
                         ("restart", test_restart),
                         ("acpi reboot", test_acpi_reboot),
                         ("agent reboot", test_agent_reboot),
                         ("acpi shutdown", test_acpi_shutdown),
                         ("agent shutdown", test_agent_shutdown),
                         ("no agent", test_no_agent),
                         ("disk I/O error", test_io_error)]:
            t.run(name, fn, d, g)
    t.ok(d.alive(), "daemon alive at the end")
except Exception as ex:
    t.ok(False, "guest test setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    qdir = d.private("/run/libvirt/qemu")
    for n in os.listdir(qdir) if os.path.isdir(qdir) else []:
        if n.endswith(".pid"):
            pid = qemu_pid(d, n[:-4])
            if alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
    d.cleanup()
    if g:
        g.cleanup()
t.done()
