#!/usr/bin/env python3
# test_faults.py: fault injection against two real libvirtd daemons with
# Tandem (hosts A and B).  Every case and its expected outcome is written
# down in tests/fault/CASES.md; the case ids (K1 ...) are the same there.
# Cases that fail because of a known driver bug are reported as TAP TODO
# with the finding id of tests/stress/FINDINGS.md (never silently).
#
# Small monitor deadlines (qemu.conf) make a hung QEMU visible quickly.
# Time bounds used here are "did it hang" bounds, far above what the
# operation needs.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tandemtest import (  # noqa: E402
    TAP, Daemon, SRCDIR, run, write_tmp, proc_state, alive, qemu_pid, wait_for, domstate, jobinfo,
    rss_kib)

t = TAP()
MIG_ARGS = ["--migrateuri", "tcp://127.0.0.1", "--listen-address", "127.0.0.1"]
PORT_BASE = 46000 + (os.getpid() % 200) * 20
CONF = """monitor_timeout_query = 2
monitor_timeout_modify = 3
monitor_timeout_long = 6
job_wait_timeout = 10
destroy_timeout = 2
migration_port_min = %d
migration_port_max = %d
"""
HANG = 60       # bound for "did the call hang"
OUR_NS = set()  # mount namespaces of the daemons this test started


class FaultDaemon(Daemon):
    """Records the mount namespace of each daemon it starts: QEMU
    processes inherit it, so a QEMU found in /proc is one of ours only if
    its namespace is one of these (other tests may use the same names)."""

    def start(self, timeout=60):
        r = super().start(timeout)
        OUR_NS.add(os.readlink("/proc/%d/ns/mnt" % self.proc.pid))
        return r


def todo(cond, name, finding, detail=None):
    """A check that currently fails because of a known driver bug."""
    t.n += 1
    if cond:
        print("ok %d - %s # TODO %s (now passes: update FINDINGS.md)" % (t.n, name, finding), flush=True)
    else:
        print("not ok %d - %s # TODO %s" % (t.n, name, finding), flush=True)
        for line in str(detail or "").splitlines()[:20]:
            print("#   " + line, flush=True)


def bare_xml(name):
    return """<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices></devices></domain>""" % name


def dirty_xml(name, kernel):
    return """<domain type='qemu'><name>%s</name><memory unit='MiB'>96</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><cmdline>dirty=32 quiet</cmdline></os>
<devices><serial type='pty'/></devices></domain>""" % (name, kernel)


def define(d, xml):
    p = write_tmp(xml)
    try:
        return d.virsh("define", p)
    finally:
        os.unlink(p)


def qemu_pids(name):
    """Live QEMU processes of guest name, from /proc."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and ("guest=%s,debug-threads=on" % name).encode() in argv \
                and alive(int(p)):
            try:
                if os.readlink("/proc/%s/ns/mnt" % p) not in OUR_NS:
                    continue
            except OSError:
                continue
            out.append(int(p))
    return out


def listed(d, name):
    return name in d.virsh("list", "--all", "--name", timeout=HANG).out.split()


def active(d, name):
    return name in d.virsh("list", "--name", timeout=HANG).out.split()


def timed(d, *args, timeout=HANG):
    t0 = time.time()
    try:
        r = d.virsh(*args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.time() - t0
    return r, time.time() - t0


def migrating(d, name):
    """The source's QEMU is sending memory (Perform): the job exists from
    Begin on, so its type alone does not say that Prepare is over."""
    info = jobinfo(d, name)
    done = info.get("Memory processed", "0").split()[0]
    return info.get("Job type") == "Unbounded" and done not in ("0", "0.000")


def start_guest(d, xml, name, dirty=False):
    define(d, xml)
    r = d.virsh("start", name, timeout=HANG)
    pid = qemu_pid(d, name)
    if dirty:
        # QEMU alone holds about 40 MiB under TCG: 64 MiB means that most
        # of the guest's 32 dirty MiB were written (else a migration moves
        # zero pages and ends at once)
        wait_for(lambda: rss_kib(pid) > 64 * 1024, 60)
    return r.rc == 0 and alive(pid), pid


def migrate_bg(src, name, dst, extra=()):
    argv = ["virsh", "-q", "-c", src.uri, "migrate", "--live", "--persistent", "--undefinesource",
            name, dst.uri] + MIG_ARGS + list(extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=180):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, err
    return p.returncode, err


def one_copy(a, b, name, want_host, timeout=60):
    """Waits (bounded) until name runs on exactly want_host, with exactly
    one QEMU process; returns a description of what was seen."""
    hosts = {"A": a, "B": b}

    def seen():
        return ([h for h, d in hosts.items() if active(d, name)],
                [h for h, d in hosts.items() if listed(d, name)], qemu_pids(name))

    ok = wait_for(lambda: (lambda s: s[0] == [want_host] and s[1] == [want_host] and len(s[2]) == 1
                           and s[2][0] == qemu_pid(hosts[want_host], name))(seen()), timeout, 0.5)
    s = seen()
    return ok, "active on %s, listed on %s, QEMU pids %s" % s


def log_about(d, name, n=25):
    """The daemon log's last lines that name the domain (for diagnostics)."""
    return "\n".join([l for l in d.log().splitlines() if name in l][-n:])


def cleanup_guest(name, *daemons):
    for d in daemons:
        if d.alive():
            d.virsh("destroy", name, timeout=HANG)
            d.virsh("undefine", name, timeout=HANG)
    for pid in qemu_pids(name):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------
def k1_qemu_sigkill(a, b, kernel):
    ok, pid = start_guest(a, bare_xml("k1"), "k1")
    t.ok(ok, "K1: k1 runs")
    ev = subprocess.Popen(["virsh", "-q", "-c", a.uri, "event", "--domain", "k1", "--event", "lifecycle",
                           "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    os.kill(pid, signal.SIGKILL)
    t.ok(wait_for(lambda: domstate(a, "k1") == "shut off (crashed)", 30),
         "K1: QEMU SIGKILLed: shut off (crashed)", domstate(a, "k1"))
    out, err = ev.communicate(timeout=40)
    t.ok("Stopped Crashed" in out or "Stopped Failed" in out,
         "K1: lifecycle event 'Stopped Crashed' delivered", out + err)
    t.ok(not os.path.exists(a.private("/run/libvirt/qemu/k1.xml")), "K1: status file removed")
    r = a.virsh("start", "k1", timeout=HANG)
    t.ok(r.rc == 0, "K1: it starts again", r)
    cleanup_guest("k1", a)


def k2_qemu_sigstop(a, b, kernel):
    ok2, pid = start_guest(a, bare_xml("k2"), "k2")
    ok3, pid3 = start_guest(a, bare_xml("k2o"), "k2o")
    t.ok(ok2 and ok3, "K2: k2 and k2o run")
    os.kill(pid, signal.SIGSTOP)
    try:
        mark = len(a.log())
        # dommemstat sends query-balloon (query class, 2 s here); when QEMU
        # does not answer it fails at that deadline naming the command
        # (issue 6: queries on a stuck domain fail within the deadline)
        r, dt = timed(a, "dommemstat", "k2")
        t.ok(r is not None and r.rc != 0 and "'query-balloon' timed out after 2 s" in r.err,
             "K2: dommemstat on the stopped QEMU fails at the deadline, naming query-balloon", r)
        late = a.log()[mark:]
        t.ok(re.search(r"command 'query-balloon' \(id [^)]*\) timed out after 2 s", late),
             "K2: query-balloon gave up at the query-class deadline (daemon log)",
             "\n".join(l for l in late.splitlines() if "query-balloon" in l)[-2000:])
        print("# K2: dommemstat failed after %.1f s" % dt)
        # the monitor is now known not to answer: every later command fails
        # at once with an error naming the command that got no reply
        for args in (["setmem", "k2", "48M", "--live"],
                     ["qemu-monitor-command", "k2", '{"execute":"query-status"}']):
            r, dt = timed(a, *args)
            t.ok(r is not None and r.rc != 0 and re.search(r"timed out|not responding", r.err, re.I)
                 and re.search(r"'[a-z-]+'", r.err),
                 "K2: %s on the unresponsive monitor fails, naming the command" % args[0],
                 "%.1f s: %r" % (dt, r))
            print("# K2: %s failed after %.1f s: %s" % (args[0], dt, r and r.err.strip()))
        for args in (["dominfo", "k2"], ["domstate", "k2"], ["domjobinfo", "k2"]):
            r, dt = timed(a, *args, timeout=15)
            t.ok(r is not None and r.rc == 0, "K2: %s of the stopped domain answers (%.2f s)" % (args[0], dt), r)
        r, dt = timed(a, "qemu-monitor-command", "k2o", '{"execute":"query-status"}', timeout=15)
        t.ok(r is not None and r.rc == 0, "K2: the other domain's monitor works (%.2f s)" % dt, r)
        r = a.virsh("dominfo", "k2o", timeout=HANG)
        t.ok(r.rc == 0 and "tainted: custom monitor control commands issued" in r.out,
             "K2: dominfo shows the taint of the monitor command (virDomainGetMessages)", r)
        r, dt = timed(a, "list", "--all", timeout=15)
        t.ok(r is not None and r.rc == 0 and "k2o" in r.out, "K2: virsh list answers (%.2f s)" % dt, r)
        r, dt = timed(a, "domstats", timeout=HANG)
        t.ok(r is not None and r.rc == 0 and "k2o" in r.out,
             "K2: domstats over all domains answers (%.2f s)" % dt, r)
        r, dt = timed(a, "destroy", "k2", timeout=HANG)
        t.ok(r is not None and r.rc == 0, "K2: destroy of the stopped QEMU returns (%.2f s)" % dt, r)
        t.ok(domstate(a, "k2").startswith("shut off"), "K2: k2 shut off", domstate(a, "k2"))
        t.ok(wait_for(lambda: not alive(pid), 20), "K2: the stopped QEMU is gone")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGCONT)
    cleanup_guest("k2", a)
    cleanup_guest("k2o", a)


def k3_kill_source_qemu_perform(a, b, kernel):
    ok, pid = start_guest(a, dirty_xml("k3", kernel), "k3", dirty=True)
    t.ok(ok, "K3: k3 runs on A")
    p = migrate_bg(a, "k3", b, ["--bandwidth", "2"])
    t.ok(wait_for(lambda: migrating(a, "k3"), 60), "K3: migration running")
    time.sleep(1)
    os.kill(pid, signal.SIGKILL)
    rc, err = finish(p)
    t.ok(rc not in (0, None), "K3: source QEMU killed during perform: migration fails", err)
    t.ok(wait_for(lambda: domstate(a, "k3") == "shut off (crashed)", 30),
         "K3: source shut off (crashed), still defined on A", domstate(a, "k3"))
    t.ok(wait_for(lambda: not listed(b, "k3") and not qemu_pids("k3"), 30),
         "K3: nothing left on B (no domain, no QEMU)", (listed(b, "k3"), qemu_pids("k3")))
    cleanup_guest("k3", a, b)


def k4_kill_dest_qemu(a, b, kernel, phase):
    tag = "p" if phase == "prepare" else "f"
    name = "k4" + tag
    ok, pid = start_guest(a, dirty_xml(name, kernel), name, dirty=True)
    t.ok(ok, "K4%s: %s runs on A" % (tag, name))
    p = migrate_bg(a, name, b, ["--bandwidth", "2"])
    if phase == "prepare":
        # as soon as the destination QEMU exists: prepare (or the very
        # start of perform)
        t.ok(wait_for(lambda: alive(qemu_pid(b, name)), 30, 0.02), "K4p: destination QEMU started")
    else:
        t.ok(wait_for(lambda: jobinfo(b, name).get("Job type") == "Unbounded", 30) and
             wait_for(lambda: migrating(a, name), 60),
             "K4f: migration running on both sides")
        time.sleep(1)
    dpid = qemu_pid(b, name)
    if dpid:
        os.kill(dpid, signal.SIGKILL)
    rc, err = finish(p)
    t.ok(rc not in (0, None), "K4%s: destination QEMU killed during %s: migration fails" % (tag, phase), err)
    ok, seen = one_copy(a, b, name, "A")
    t.ok(ok and qemu_pid(a, name) == pid, "K4%s: exactly one running copy: the source's, same QEMU" % tag,
         seen)
    t.ok(domstate(a, name).startswith("running") or domstate(a, name).startswith("paused"),
         "K4%s: source state" % tag, domstate(a, name))
    cleanup_guest(name, a, b)


def k5_daemon_kill_guests_running(a, b, kernel):
    ok1, pid1 = start_guest(a, bare_xml("k5a"), "k5a")
    ok2, pid2 = start_guest(a, bare_xml("k5b"), "k5b")
    a.virsh("suspend", "k5b")
    a.stop(signal.SIGKILL)
    a.start()
    t.ok(alive(pid1) and alive(pid2), "K5: daemon SIGKILLed: guests keep running")
    t.ok(wait_for(lambda: domstate(a, "k5a") == "running (booted)" and domstate(a, "k5b").startswith("paused"), 30),
         "K5: reconnected with the states kept", (domstate(a, "k5a"), domstate(a, "k5b")))
    t.eq((qemu_pid(a, "k5a"), qemu_pid(a, "k5b")), (pid1, pid2), "K5: same QEMU processes")
    r = a.virsh("qemu-monitor-command", "k5a", '{"execute":"query-status"}')
    t.ok(r.rc == 0, "K5: monitor works after reconnect", r)
    r = a.virsh("resume", "k5b")
    t.ok(r.rc == 0, "K5: resume after reconnect", r)
    cleanup_guest("k5a", a)
    cleanup_guest("k5b", a)


def k6_daemon_kill_during_migration(a, b, kernel, side, p2p):
    name = "k6" + side[0].lower() + ("p" if p2p else "m")
    label = "K6-%s-%s" % (side, "p2p" if p2p else "managed")
    ok, pid = start_guest(a, dirty_xml(name, kernel), name, dirty=True)
    t.ok(ok, "%s: %s runs on A" % (label, name))
    p = migrate_bg(a, name, b, ["--bandwidth", "2"] + (["--p2p"] if p2p else []))
    running = wait_for(lambda: migrating(a, name), 60) and \
        wait_for(lambda: jobinfo(b, name).get("Job type") == "Unbounded", 30)
    t.ok(running, "%s: migration running (perform phase)" % label)
    # a starved TCG guest dirties little: with a 1 ms downtime limit the
    # migration cannot converge before the kill on a loaded machine
    a.virsh("migrate-setmaxdowntime", name, "1")
    time.sleep(1)
    before = jobinfo(a, name)
    victim = a if side == "source" else b
    victim.stop(signal.SIGKILL)
    still = p.poll() is None
    # QEMU outlives its daemon: a killed destination daemon leaves the two
    # QEMUs migrating, and only its restart (which drops the interrupted
    # incoming guest) ends the migration the client waits for
    victim.start()
    rc, err = finish(p)
    t.ok(rc not in (0, None), "%s: the client sees the migration fail" % label,
         "rc=%s (client %s at the kill): %s\nsource job just before the kill: %s"
         % (rc, "still waiting" if still else "already done", err, before))
    ok, seen = one_copy(a, b, name, "A", 90)
    t.ok(ok, "%s: after the restart exactly one running copy, on the source" % label,
         "%s\nA's log:\n%s\nB's log:\n%s" % (seen, log_about(a, name), log_about(b, name)))
    t.ok(qemu_pid(a, name) == pid, "%s: the source's own QEMU" % label)
    r = a.virsh("domjobinfo", name)
    t.ok(r.rc == 0 and re.search(r"Job type:\s+None", r.out), "%s: no job left on the source" % label, r)
    r = a.virsh("suspend", name, timeout=HANG)
    r2 = a.virsh("resume", name, timeout=HANG)
    t.ok(r.rc == 0 and r2.rc == 0, "%s: source domain usable (suspend/resume)" % label, (r, r2))
    cleanup_guest(name, a, b)


def k7_status_file_corrupt(a, b, kernel):
    ok1, pid1 = start_guest(a, bare_xml("k7a"), "k7a")
    ok2, pid2 = start_guest(a, bare_xml("k7b"), "k7b")
    a.stop()
    path = a.private("/run/libvirt/qemu/k7a.xml")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[:len(text) // 2])          # truncated mid-element
    a.start()
    t.ok(wait_for(lambda: domstate(a, "k7b") == "running (booted)", 30),
         "K7: other domain reconnected and running", domstate(a, "k7b"))
    t.ok(os.path.exists(path), "K7: truncated status file kept in place")
    log = a.log()
    t.ok(re.search(r"(error|warn).*k7a", log) is not None,
         "K7: the daemon log names the broken status file / domain",
         "\n".join(l for l in log.splitlines() if "k7a" in l)[-2000:])
    st = domstate(a, "k7a")
    t.ok(not st.startswith("running") or qemu_pid(a, "k7a") == pid1,
         "K7: k7a not claimed running without its QEMU", st)
    print("# K7: k7a after restart: %s; its QEMU %s" % (st, "still runs" if alive(pid1) else "is gone"))
    t.ok(wait_for(lambda: not alive(pid1), 30),
         "K7: k7a's QEMU, unmanaged without its status file, is killed (F5, fixed)",
         "k7a %s, its QEMU pid %d still runs" % (st, pid1))
    t.ok(re.search(r"QEMU of domain 'k7a' \(pid %d\) runs without a usable status file" % pid1,
                   a.log()) is not None, "K7: the daemon log says why it killed k7a's QEMU")
    r = a.virsh("list", "--all")
    t.ok(r.rc == 0, "K7: list answers", r)
    cleanup_guest("k7a", a)
    cleanup_guest("k7b", a)
    try:
        os.unlink(path)
    except OSError:
        pass


def k8_definition_corrupt(a, b, kernel):
    define(a, bare_xml("k8a"))
    define(a, bare_xml("k8b"))
    a.stop()
    path = a.private("/etc/libvirt/qemu/k8a.xml")
    with open(path, "w") as f:
        f.write("<domain type='qemu'><name>k8a</nam")
    a.start()
    names = a.virsh("list", "--all", "--name").out.split()
    t.ok("k8b" in names, "K8: the other definition loaded", names)
    t.ok("k8a" not in names, "K8: the corrupt definition is not loaded", names)
    t.ok(os.path.exists(path), "K8: the corrupt file is kept in place")
    t.ok("k8a.xml" in a.log(), "K8: the daemon log names the file",
         a.log_tail(10))
    r = a.virsh("start", "k8b")
    t.ok(r.rc == 0, "K8: the other domain starts", r)
    cleanup_guest("k8b", a)
    os.unlink(path)


def k9_client_disconnect(a, b, kernel):
    # (a) virsh killed during a long monitor call on a hung QEMU
    ok, pid = start_guest(a, bare_xml("k9a"), "k9a")
    os.kill(pid, signal.SIGSTOP)
    v = subprocess.Popen(["virsh", "-q", "-c", a.uri, "qemu-monitor-command", "k9a",
                          '{"execute":"query-status"}'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    v.kill()
    v.wait()
    time.sleep(6)       # past the long-class monitor deadline
    os.kill(pid, signal.SIGCONT)
    r = a.virsh("domjobinfo", "k9a")
    t.ok(r.rc == 0 and re.search(r"Job type:\s+None", r.out), "K9a: no job held after the client went away", r)
    r1 = a.virsh("suspend", "k9a", timeout=HANG)
    r2 = a.virsh("resume", "k9a", timeout=HANG)
    t.ok(r1.rc == 0 and r2.rc == 0, "K9a: modify calls work again (the monitor recovered)", (r1, r2))
    cleanup_guest("k9a", a)

    # (b) virsh killed during a client-managed migration: the source
    # undoes it; other domains' monitors keep working meanwhile
    ok, pid = start_guest(a, dirty_xml("k9b", kernel), "k9b", dirty=True)
    ok2, pid2 = start_guest(a, bare_xml("k9o"), "k9o")
    p = migrate_bg(a, "k9b", b, ["--bandwidth", "2"])
    t.ok(wait_for(lambda: migrating(a, "k9b"), 60), "K9b: migration running")
    time.sleep(1)
    mark = len(a.log())
    p.kill()
    p.communicate()
    r, dt = timed(a, "qemu-monitor-command", "k9o", '{"execute":"query-status"}', timeout=HANG)
    t.ok(r is not None and r.rc == 0, "K9b: another domain's monitor answers while the migration is undone", r)
    print("# K9b: other domain's monitor command took %.2f s" % dt)
    ok, seen = one_copy(a, b, "k9b", "A")
    t.ok(ok and qemu_pid(a, "k9b") == pid, "K9b: source keeps the guest, nothing on B", seen)
    r = a.virsh("domjobinfo", "k9b")
    t.ok(r.rc == 0 and re.search(r"Job type:\s+None", r.out), "K9b: no job left held on the source", r)
    r1 = a.virsh("suspend", "k9b", timeout=HANG)
    r2 = a.virsh("resume", "k9b", timeout=HANG)
    t.ok(r1.rc == 0 and r2.rc == 0, "K9b: source domain usable", (r1, r2))
    late = [l for l in a.log()[mark:].splitlines()
            if re.search(r"late reply|timed out after|not responding", l)]
    t.ok(not late, "K9b: undoing the migration does not stall the monitor event loop (F3, fixed)",
         "\n".join(late[:6]))
    cleanup_guest("k9b", a, b)
    cleanup_guest("k9o", a)


def restart_with_env(d, env):
    """Restarts daemon d with extra environment env (replacing the last
    one): used for the test-only knobs of the driver."""
    d.stop()
    for k in [k for k in d.extra_env if k.startswith("TANDEM_TEST_")]:
        del d.extra_env[k]
    d.extra_env.update(env)
    d.start()


def k10_dest_stopped_in_finish(a, b, kernel, sig, p2p):
    """F2 window 1: the destination daemon stops (SIGTERM) or dies
    (SIGKILL) while its Finish runs.  The test-only knob
    TANDEM_TEST_FINISH_DELAY_MS holds every Finish of B for 5 s right
    before its commit point (after the guest's vCPUs were resumed on B)."""
    tag = ("t" if sig == signal.SIGTERM else "k") + ("p" if p2p else "m")
    name = "k10" + tag
    label = "K10%s" % tag
    restart_with_env(b, {"TANDEM_TEST_FINISH_DELAY_MS": "5000"})
    try:
        ok, pid = start_guest(a, bare_xml(name), name)
        t.ok(ok, "%s: %s runs on A" % (label, name))
        mark = len(b.log())
        p = migrate_bg(a, name, b, ["--p2p"] if p2p else [])
        reached = wait_for(lambda: "Migration of '%s': test delay of 5000 ms before the commit" % name in b.log()[mark:], 60, 0.05)
        t.ok(reached, "%s: B's Finish reached its commit point (test delay)" % label, log_about(b, name))
        t.ok(active(b, name) and proc_state(qemu_pid(b, name)) is not None,
             "%s: the guest runs on B at that moment (vCPUs resumed)" % label)
        b.stop(sig)
        restart_with_env(b, {})
        rc, err = finish(p)
        t.ok(rc not in (0, None), "%s: the client sees the migration fail" % label, "rc=%s %s" % (rc, err))
        print("# %s: client error: %s" % (label, err.strip()))
        if p2p:
            t.ok("does not run there and resumes here" in err,
                 "%s: the client's error says the destination does not run it and it resumes here" % label, err)
        ok, seen = one_copy(a, b, name, "A", 90)
        t.ok(ok, "%s: exactly one copy, on A (F2 window 1)" % label,
             "%s\nA's log:\n%s\nB's log:\n%s" % (seen, log_about(a, name), log_about(b, name)))
        t.ok(qemu_pid(a, name) == pid, "%s: A's own QEMU" % label)
        t.ok(wait_for(lambda: domstate(a, name).startswith("running"), 30),
             "%s: running on A" % label, domstate(a, name))
        r = a.virsh("dominfo", name)
        t.ok(r.rc == 0 and re.search(r"Persistent:\s+yes", r.out), "%s: still defined on A" % label, r)
        r = a.virsh("domjobinfo", name)
        t.ok(r.rc == 0 and re.search(r"Job type:\s+None", r.out), "%s: no job left on A" % label, r)
        want = ("Incoming migration of '%s' could not answer the source (operation failed: incoming "
                "migration of '%s' undone: the destination's daemon is shutting down): undoing it"
                % (name, name)) if sig == signal.SIGTERM else \
            "Incoming migration of '%s' was interrupted in its Finish, before it committed: destroying it" % name
        t.ok(want in b.log()[mark:], "%s: B's log says why it dropped the guest" % label,
             "want: %s\n%s" % (want, log_about(b, name)))
        if p2p:
            t.ok("Migration of '%s': the destination does not run the guest: it resumes here" % name in a.log(),
                 "%s: A asked B after B's restart before resuming" % label, log_about(a, name))
    finally:
        restart_with_env(b, {})
        cleanup_guest(name, a, b)


def k14_source_killed_after_switchover(a, b, kernel, where):
    """F9: the source daemon of a peer-to-peer migration is killed after
    QEMU's switch-over.  where="confirm": B's Finish has answered (B owns
    the guest), A is held before its Confirm by the test-only knob
    TANDEM_TEST_CONFIRM_DELAY_MS.  where="finish": B's Finish is held at
    its commit point (TANDEM_TEST_FINISH_DELAY_MS), A is killed and B
    stopped there, so B undoes.  The restarted A asks B, through the URI
    in its status file, until B is back and answers."""
    name = "k14" + where[0]
    label = "K14" + where[0]
    knob_host, knob = (a, "TANDEM_TEST_CONFIRM_DELAY_MS") if where == "confirm" else \
        (b, "TANDEM_TEST_FINISH_DELAY_MS")
    restart_with_env(knob_host, {knob: "5000"})
    try:
        ok, pid = start_guest(a, bare_xml(name), name)
        t.ok(ok, "%s: %s runs on A" % (label, name))
        mark_a, mark_b = len(a.log()), len(b.log())
        p = migrate_bg(a, name, b, ["--p2p"])
        line = "Migration of '%s': test delay of 5000 ms before the %s" % (
            name, "Confirm" if where == "confirm" else "commit")
        reached = wait_for(lambda: line in knob_host.log(), 60, 0.05)
        t.ok(reached, "%s: the migration reached the test delay (%s)" % (label, line),
             log_about(knob_host, name))
        a.stop(signal.SIGKILL)
        if where == "finish":
            # B stops (SIGTERM) while its Finish is held: it undoes
            b.stop(signal.SIGTERM)
        restart_with_env(a, {})
        if where == "finish":
            restart_with_env(b, {})
        rc, err = finish(p)
        t.ok(rc not in (0, None), "%s: the client sees the migration fail (A died)" % label,
             "rc=%s %s" % (rc, err))
        asked = ("Migration of '%s': the source's daemon restarted after QEMU's switch-over without "
                 "the destination's answer; asking it whether the guest runs there" % name)
        # A must follow B's answer (B's commit check does not see A's
        # connection close while the Finish call runs: libvirtd keeps the
        # connection until the call returns, so B stopping is what undoes)
        said_there = lambda: "Migration of '%s': the destination runs the guest" % name in a.log()[mark_a:]
        said_not = lambda: "Migration of '%s': the destination does not run the guest" % name in a.log()[mark_a:]
        t.ok(wait_for(lambda: said_there() or said_not(), 90), "%s: A asked B and got an answer" % label,
             log_about(a, name))
        owner = "B" if said_there() else "A"
        t.ok(owner == ("B" if where == "confirm" else "A"),
             "%s: B's answer: %s" % (label, "it runs the guest" if where == "confirm" else "not there"))
        print("# %s: B %s the guest" % (label, "kept" if owner == "B" else "undid"))
        if owner == "B":
            ok, seen = one_copy(a, b, name, "B", 90)
            t.ok(ok, "%s: exactly one copy, on B, A's copy stopped and undefined (F9)" % label,
                 "%s\nA's log:\n%s\nB's log:\n%s" % (seen, log_about(a, name), log_about(b, name)))
            t.ok(not alive(pid), "%s: A's QEMU is gone" % label)
            t.ok(wait_for(lambda: domstate(b, name).startswith("running"), 30),
                 "%s: running on B" % label, domstate(b, name))
            r = b.virsh("dominfo", name)
            t.ok(r.rc == 0 and re.search(r"Persistent:\s+yes", r.out), "%s: defined on B" % label, r)
            want = [asked, "Migration of '%s': the destination runs the guest: the migration succeeded" % name,
                    "Outgoing migration of '%s' was interrupted in phase perform3_done after the "
                    "destination took the guest: stopping it here" % name]
        else:
            ok, seen = one_copy(a, b, name, "A", 90)
            t.ok(ok, "%s: exactly one copy, on A (F9)" % label,
                 "%s\nA's log:\n%s\nB's log:\n%s" % (seen, log_about(a, name), log_about(b, name)))
            t.ok(qemu_pid(a, name) == pid, "%s: A's own QEMU" % label)
            t.ok(wait_for(lambda: domstate(a, name).startswith("running"), 30),
                 "%s: running on A again, not left paused" % label, domstate(a, name))
            r = a.virsh("dominfo", name)
            t.ok(r.rc == 0 and re.search(r"Persistent:\s+yes", r.out), "%s: still defined on A" % label, r)
            want = [asked, "Migration of '%s': the destination does not run the guest: it resumes here" % name,
                    "Outgoing migration of '%s' was interrupted in phase perform3_done: cancelled, "
                    "guest runs here" % name]
        alog = a.log()[mark_a:]
        for w in want:
            t.ok(w in alog, "%s: A's log says: %s" % (label, w), log_about(a, name))
        r = a.virsh("domjobinfo", name)
        t.ok(r.rc != 0 or re.search(r"Job type:\s+None", r.out), "%s: no job left on A" % label, r)
        print("# %s: B's log: %s" % (label, "; ".join(
            l for l in b.log()[mark_b:].splitlines() if name in l and ("warning" in l or "error" in l))[:600]))
    finally:
        restart_with_env(knob_host, {})
        cleanup_guest(name, a, b)


def k15_client_killed_in_finish(a, b, kernel):
    """The client (virsh) of a client-managed migration is killed while
    B's Finish runs (held at its commit point by the test-only knob
    TANDEM_TEST_FINISH_DELAY_MS).  libvirtd keeps B's connection until the
    Finish call returns, so B commits and runs the guest; A, told nothing
    after QEMU sent everything, must not resume its copy: it keeps it
    paused, as upstream libvirt does (two running copies would write the
    same disks)."""
    name = "k15"
    restart_with_env(b, {"TANDEM_TEST_FINISH_DELAY_MS": "5000"})
    try:
        ok, pid = start_guest(a, bare_xml(name), name)
        t.ok(ok, "K15: k15 runs on A")
        mark = len(a.log())
        p = migrate_bg(a, name, b)
        line = "Migration of '%s': test delay of 5000 ms before the commit" % name
        t.ok(wait_for(lambda: line in b.log(), 60, 0.05), "K15: B's Finish reached the test delay",
             log_about(b, name))
        p.kill()
        p.communicate()
        t.ok(wait_for(lambda: domstate(b, name).startswith("running") and
                      jobinfo(b, name).get("Job type") == "None", 60),
             "K15: B committed: the guest runs on B", "%s\n%s" % (domstate(b, name), log_about(b, name)))
        t.ok(wait_for(lambda: jobinfo(a, name).get("Job type") == "None", 60), "K15: no job left on A",
             log_about(a, name))
        st = domstate(a, name)
        t.ok(st.startswith("paused"), "K15: A keeps its copy paused, not running (exactly one running copy)",
             "%s\n%s" % (st, log_about(a, name)))
        t.ok(qemu_pid(a, name) == pid and alive(pid), "K15: A's QEMU is kept for the administrator")
        want = ("The client driving the migration of '%s' went away after QEMU sent everything: "
                "the destination may run the guest, so it stays paused here" % name)
        t.ok(want in a.log()[mark:], "K15: A's log says why it stays paused", log_about(a, name))
        r = a.virsh("domjobinfo", "--completed", name)
        t.ok(r.rc == 0 and re.search(r"Job type:\s+Failed", r.out), "K15: A's completed job: Failed", r)
    finally:
        restart_with_env(b, {})
        cleanup_guest(name, a, b)


def k11_setspeed_restart(a, b, kernel):
    # (a) set on a running guest, daemon restarted (SIGTERM)
    ok, pid = start_guest(a, bare_xml("k11"), "k11")
    t.ok(ok, "K11: k11 runs on A")
    r = a.virsh("migrate-setspeed", "k11", "7")
    t.ok(r.rc == 0, "K11: migrate-setspeed 7", r)
    a.stop()
    a.start()
    r = a.virsh("migrate-getspeed", "k11")
    t.ok(r.rc == 0 and r.out.strip() == "7", "K11: after a daemon restart migrate-getspeed says 7", r)
    cleanup_guest("k11", a)
    # (b) changed during a migration, source daemon killed, restarted: the
    # interrupted migration is cancelled, the speed stays
    ok, pid = start_guest(a, dirty_xml("k11m", kernel), "k11m", dirty=True)
    t.ok(ok, "K11m: k11m runs on A")
    p = migrate_bg(a, "k11m", b, ["--bandwidth", "2"])
    t.ok(wait_for(lambda: migrating(a, "k11m"), 60), "K11m: migration running")
    r = a.virsh("migrate-getspeed", "k11m")
    t.ok(r.rc == 0 and r.out.strip() == "2", "K11m: migrate-getspeed during the migration says 2", r)
    r = a.virsh("migrate-setspeed", "k11m", "3")
    t.ok(r.rc == 0, "K11m: migrate-setspeed 3 during the migration", r)
    a.stop(signal.SIGKILL)
    a.start()
    rc, err = finish(p)
    t.ok(rc not in (0, None), "K11m: the client sees the migration fail", err)
    ok, seen = one_copy(a, b, "k11m", "A", 90)
    t.ok(ok and qemu_pid(a, "k11m") == pid, "K11m: the guest stays on A, same QEMU", seen)
    r = a.virsh("migrate-getspeed", "k11m")
    t.ok(r.rc == 0 and r.out.strip() == "3", "K11m: after the restart migrate-getspeed says 3", r)
    r = a.virsh("qemu-monitor-command", "k11m", '{"execute":"query-migrate-parameters"}')
    t.ok(r.rc == 0 and re.search(r'"max-bandwidth":\s*3145728\b', r.out),
         "K11m: QEMU's max-bandwidth is 3 MiB/s", r)
    cleanup_guest("k11m", a, b)


def nsenter(d, *argv):
    """Runs argv in daemon d's mount namespace (where its QEMUs and its
    file writes live)."""
    return run(["nsenter", "-t", str(d.proc.pid), "-m"] + list(argv))


def k13_disk_full_save(a, b, kernel):
    """virsh save to a directory on a small tmpfs (mounted in A's mount
    namespace only) that cannot hold the image."""
    ok, pid = start_guest(a, dirty_xml("k13", kernel), "k13", dirty=True)
    t.ok(ok, "K13: k13 runs on A (dirty guest)")
    d = tempfile_dir("k13")
    r = nsenter(a, "mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tandem-k13", d)
    t.ok(r.rc == 0, "K13: 64 KiB tmpfs mounted in A's namespace", r)
    try:
        r, dt = timed(a, "save", "k13", os.path.join(d, "k13.save"))
        t.ok(r is not None and r.rc != 0 and "No space left on device" in r.err,
             "K13: save fails, naming the full disk", r)
        print("# K13: save failed after %.1f s: %s" % (dt, r and r.err.strip()))
        t.ok(wait_for(lambda: domstate(a, "k13").startswith("running"), 30),
             "K13: the guest runs on (state)", domstate(a, "k13"))
        t.ok(qemu_pid(a, "k13") == pid and alive(pid), "K13: same QEMU")
        r = nsenter(a, "ls", "-A", d)
        t.ok(r.rc == 0 and r.out.strip() == "", "K13: nothing left on the full disk (no partial image)", r)
        r = a.virsh("domjobinfo", "k13")
        t.ok(r.rc == 0 and re.search(r"Job type:\s+None", r.out), "K13: no job left", r)
        r = a.virsh("domjobinfo", "--completed", "k13")
        t.ok(r.rc == 0 and re.search(r"Job type:\s+Failed", r.out), "K13: the completed job says Failed", r)
        r1 = a.virsh("suspend", "k13", timeout=HANG)
        r2 = a.virsh("resume", "k13", timeout=HANG)
        t.ok(r1.rc == 0 and r2.rc == 0, "K13: domain usable (suspend/resume)", (r1, r2))
        r = a.virsh("save", "k13", os.path.join(a.dir, "k13.save"), timeout=HANG)
        t.ok(r.rc == 0 and not active(a, "k13"), "K13: save to a disk with room works afterwards", r)
    finally:
        nsenter(a, "umount", d)
        os.rmdir(d)
        try:
            os.unlink(os.path.join(a.dir, "k13.save"))
        except OSError:
            pass
    cleanup_guest("k13", a)


def tempfile_dir(tag):
    import tempfile
    return tempfile.mkdtemp(prefix="tandem-%s-" % tag)


class LinkNet:
    """A network namespace with a veth pair to the root namespace, private
    addresses, and daemon C (a third host) living in the namespace: the
    migration data from A to C crosses the veth pair, whose root end the
    test sets down to cut the link.  Everything created here is deleted
    by teardown()."""

    def __init__(self):
        pid = os.getpid()
        self.ns = "tdmfault%d" % pid
        self.vroot = "tfr%d" % (pid % 10000000)
        self.vns = "tfn%d" % (pid % 10000000)
        self.addr_a = "10.213.%d.1" % (pid % 250)
        self.addr_c = "10.213.%d.2" % (pid % 250)
        self.daemon = None
        self.created = False
        self.failed = None

    def setup(self):
        steps = [["ip", "netns", "add", self.ns],
                 ["ip", "link", "add", self.vroot, "type", "veth", "peer", "name", self.vns],
                 ["ip", "link", "set", self.vns, "netns", self.ns],
                 ["ip", "addr", "add", self.addr_a + "/30", "dev", self.vroot],
                 ["ip", "link", "set", self.vroot, "up"],
                 ["ip", "netns", "exec", self.ns, "ip", "addr", "add", self.addr_c + "/30", "dev", self.vns],
                 ["ip", "netns", "exec", self.ns, "ip", "link", "set", self.vns, "up"],
                 ["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"]]
        if self.failed:
            return self.failed
        for argv in steps:
            r = run(argv)
            if argv[:3] == ["ip", "netns", "add"] and r.rc == 0:
                self.created = True
            if r.rc != 0:
                self.failed = "%s: %s" % (" ".join(argv), r.err.strip())
                self.teardown()
                return self.failed
        self.daemon = FaultDaemon("faultC", netns=self.ns,
                                  qemu_conf=CONF % (PORT_BASE + 10, PORT_BASE + 19))
        self.daemon.start()
        return None

    def link(self, up):
        return run(["ip", "link", "set", self.vroot, "up" if up else "down"])

    def teardown(self):
        if self.daemon:
            self.daemon.cleanup()
            self.daemon = None
        if self.created:
            run(["ip", "link", "del", self.vroot])      # deletes its peer too
            run(["ip", "netns", "del", self.ns])
            self.created = False


LINK = LinkNet()


def k12_link_cut(a, b, kernel, relink):
    """Migration A -> C over the veth pair; the link is set down while the
    (throttled, never converging) migration runs.  Nothing times out by
    itself soon (TCP retransmits for many minutes): the user's abort ends
    it.  relink: the link comes back up first and the migration moves
    again before the abort."""
    if LINK.daemon is None:
        why = LINK.setup()
        if why:
            t.ok(False, "K12: network namespace and veth pair set up", why)
            return
    c = LINK.daemon
    if not c.alive():
        c.start()
    name = "k12" + ("b" if relink else "a")
    label = "K12" + ("b" if relink else "a")
    ok, pid = start_guest(a, dirty_xml(name, kernel), name, dirty=True)
    t.ok(ok, "%s: %s runs on A" % (label, name))
    argv = ["virsh", "-q", "-c", a.uri, "migrate", "--live", "--persistent", "--undefinesource",
            name, c.uri, "--migrateuri", "tcp://%s" % LINK.addr_c, "--listen-address", LINK.addr_c,
            "--bandwidth", "2"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t.ok(wait_for(lambda: migrating(a, name), 60) and
             wait_for(lambda: jobinfo(c, name).get("Job type") == "Unbounded", 30),
             "%s: migration running over the veth pair (A -> C)" % label)
        r = LINK.link(False)
        t.ok(r.rc == 0, "%s: link set down" % label, r)
        # the data already in flight drains into the socket buffers, then
        # QEMU's sender blocks: the migration stalls (nothing fails soon)
        before = jobinfo(a, name).get("Memory processed")
        seen = []

        def stable():
            seen.append(jobinfo(a, name).get("Memory processed"))
            return len(seen) >= 2 and seen[-1] == seen[-2]
        t.ok(wait_for(stable, 60, 2), "%s: the migration stalls (memory processed stops moving)" % label,
             seen)
        stalled = seen[-1]
        print("# %s: memory processed %s at the cut, then %s" % (label, before, " ".join(seen)))
        for d, host in ((a, "A"), (c, "C")):
            for args in (["dominfo", name], ["domstate", "--reason", name], ["domjobinfo", name]):
                r, dt = timed(d, *args, timeout=HANG)
                t.ok(r is not None and r.rc == 0,
                     "%s: %s on %s answers during the stall (%.2f s)" % (label, args[0], host, dt), r)
        t.ok(domstate(a, name) == "running (migrating)" or domstate(a, name).startswith("running"),
             "%s: the guest still runs on A during the stall" % label, domstate(a, name))
        t.ok(jobinfo(a, name).get("Job type") == "Unbounded" and p.poll() is None,
             "%s: the migration is still in progress (no premature failure)" % label,
             jobinfo(a, name))
        if relink:
            r = LINK.link(True)
            t.ok(r.rc == 0, "%s: link set up again" % label, r)
            t.ok(wait_for(lambda: jobinfo(a, name).get("Memory processed") != stalled, 60, 0.5),
                 "%s: the migration moves again once the link is back" % label,
                 "still %s" % jobinfo(a, name).get("Memory processed"))
        r = a.virsh("domjobabort", name, timeout=HANG)
        t.ok(r.rc == 0, "%s: domjobabort on A" % label, r)
        rc, err = finish(p)
        t.ok(rc not in (0, None) and "operation aborted: migration job: canceled by client" in err,
             "%s: the client says the migration was aborted by the client" % label, "rc=%s %s" % (rc, err))
        print("# %s: client error: %s" % (label, err.strip()))
        ok, seen = one_copy(a, c, name, "A", 60)
        t.ok(ok and qemu_pid(a, name) == pid, "%s: the guest stays on A only, same QEMU; nothing on C" % label,
             "%s\nA:\n%s\nC:\n%s" % (seen, log_about(a, name), log_about(c, name)))
        t.ok(wait_for(lambda: domstate(a, name).startswith("running"), 30),
             "%s: running on A" % label, domstate(a, name))
        r = a.virsh("domjobinfo", name)
        t.ok(r.rc == 0 and re.search(r"Job type:\s+None", r.out), "%s: no job left on A" % label, r)
        r = c.virsh("list", "--all", "--name")
        t.ok(r.rc == 0 and name not in r.out.split(), "%s: C has no such domain" % label, r)
    finally:
        LINK.link(True)
        if p.poll() is None:
            p.kill()
            p.communicate()
        cleanup_guest(name, a, c)


def guest_kernel():
    r = run(["bash", os.path.join(SRCDIR, "tests", "guest", "build-guest.sh")], timeout=900)
    if r.rc == 77:
        return None
    if r.rc != 0:
        raise RuntimeError("build-guest.sh failed:\n%s" % r)
    return dict(l.split("=", 1) for l in r.out.splitlines() if "=" in l)["DIRTY"]


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP fault injection needs root")
        return
    only = set(sys.argv[1:])
    kernel = guest_kernel()
    a = FaultDaemon("faultA", qemu_conf=CONF % (PORT_BASE, PORT_BASE + 9))
    b = FaultDaemon("faultB", qemu_conf=CONF % (PORT_BASE + 10, PORT_BASE + 19))
    cases = [("K1", k1_qemu_sigkill, ()), ("K2", k2_qemu_sigstop, ()),
             ("K3", k3_kill_source_qemu_perform, ()),
             ("K4p", k4_kill_dest_qemu, ("prepare",)), ("K4f", k4_kill_dest_qemu, ("perform",)),
             ("K5", k5_daemon_kill_guests_running, ()),
             ("K6sm", k6_daemon_kill_during_migration, ("source", False)),
             ("K6sp", k6_daemon_kill_during_migration, ("source", True)),
             ("K6dm", k6_daemon_kill_during_migration, ("dest", False)),
             ("K6dp", k6_daemon_kill_during_migration, ("dest", True)),
             ("K7", k7_status_file_corrupt, ()), ("K8", k8_definition_corrupt, ()),
             ("K9", k9_client_disconnect, ()),
             ("K10tm", k10_dest_stopped_in_finish, (signal.SIGTERM, False)),
             ("K10tp", k10_dest_stopped_in_finish, (signal.SIGTERM, True)),
             ("K10km", k10_dest_stopped_in_finish, (signal.SIGKILL, False)),
             ("K11", k11_setspeed_restart, ()),
             ("K12a", k12_link_cut, (False,)), ("K12b", k12_link_cut, (True,)),
             ("K13", k13_disk_full_save, ()),
             ("K14c", k14_source_killed_after_switchover, ("confirm",)),
             ("K14f", k14_source_killed_after_switchover, ("finish",)),
             ("K15", k15_client_killed_in_finish, ())]
    needs_kernel = {"K3", "K4p", "K4f", "K6sm", "K6sp", "K6dm", "K6dp", "K9", "K11", "K12a", "K12b",
                    "K13"}
    try:
        a.start()
        b.start()
        for cid, fn, extra in cases:
            if only and cid not in only:
                continue
            if cid in needs_kernel and kernel is None:
                t.skip(cid, "test guests unavailable (build-guest.sh exit 77)")
                continue
            for d in (a, b):
                if not d.alive():
                    d.start()
            t.run(cid, fn, a, b, kernel, *extra)
        t.ok(a.alive() and b.alive(), "both daemons alive at the end")
    except Exception as ex:
        t.ok(False, "fault setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
    finally:
        if t.failed:
            os.environ["TANDEM_KEEP_TMP"] = "1"
            print("# logs kept: %s %s%s" % (a.dir, b.dir, " " + LINK.daemon.dir if LINK.daemon else ""))
        extra = [LINK.daemon] if LINK.daemon else []
        for d in [a, b] + extra:
            rundir = d.private("/run/libvirt/qemu")
            for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
                if n.endswith(".pid") and n != "driver.pid":
                    pid = qemu_pid(d, n[:-4])
                    if pid and alive(pid):
                        os.kill(pid, signal.SIGCONT)
                        os.kill(pid, signal.SIGKILL)
            d.cleanup()
        LINK.teardown()
    t.done()


main()
