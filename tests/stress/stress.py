#!/usr/bin/env python3
# stress.py: seeded, reproducible stress driver for Tandem.
#
# Two real libvirtd daemons with Tandem (hosts A and B, tests/tandemtest.py
# class Daemon), a handful of small guests (diskless BIOS guests and
# memory-dirtying guests), M client threads doing random interleavings of
# queries, suspend/resume, setmem, save/restore/managedsave (when the driver
# supports them), live migration there and back (throttled, aborted),
# abort, destroy, start, define/undefine, and a chaos thread restarting
# either daemon (SIGTERM, sometimes SIGKILL) while guests run.
#
# Every client call is a virsh process with a deadline; a call that passes
# its deadline is an invariant violation ("hung").  Between phases and at
# the end, with the clients quiesced, the invariants are checked against
# what the daemons say AND what /proc and the daemons' files say:
#   - every defined domain is defined exactly once across both hosts
#   - every guest that should run runs on exactly one host, with exactly
#     one QEMU process (found in /proc by guest=NAME), the one in that
#     host's pid file
#   - no leaked QEMU process, pid/status file, domain directory or
#     migration port
#   - no job left held: domjobinfo says None, a query and a modifying
#     call succeed within their deadline
#   - both daemons alive
# Output is TAP (one line per invariant and phase) with the operation
# counts and errors per kind as comments; the seed is printed on failure.
#
# The clients' random choices are reproducible from --seed (one RNG per
# client, seeded from it); thread timing is not.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tandemtest import Daemon, SRCDIR, DRIVER_DIR, write_tmp, alive  # noqa: E402

MIG_ARGS = ["--migrateuri", "tcp://127.0.0.1", "--listen-address", "127.0.0.1"]

# Client-side deadlines (seconds): a call still running after its deadline
# is killed and recorded as a hang.  job_wait_timeout is 30 s in the
# daemons, so a modify call may legitimately wait 30 s for a job.
DEADLINE = {"query": 45, "modify": 60, "start": 90, "destroy": 60,
            "migrate": 300, "save": 300, "define": 45}

# Errors a client may legitimately see, by operation kind: the guest moved
# to the other host meanwhile, it was destroyed by a racing client, there
# was no job to abort ...  Anything else is an unexpected error (counted as
# a violation).
NOT_FOUND = r"failed to get domain|Domain not found|no domain with matching"
EXPECTED = {
    "query": [NOT_FOUND, r"domain is not running"],
    "list": [],
    "suspend": [NOT_FOUND, r"domain is not running", r"already paused",
                r"not allowed while|not allowed during|migration in progress|"
                r"operation is not valid"],
    "resume": [NOT_FOUND, r"domain is not running", r"not paused",
               r"not allowed while|not allowed during|migration in progress|"
               r"operation is not valid"],
    "setmem": [NOT_FOUND, r"domain is not running",
               r"not allowed while|not allowed during|migration in progress"],
    "abort": [NOT_FOUND, r"no job|not active|domain is not running|"
              r"no.*job.*(active|running)|nothing to abort"],
    "abort-mig": [NOT_FOUND, r"no job|not active|domain is not running|"
                  r"no.*job.*(active|running)|nothing to abort"],
    "migrate": [r"abort|cancel"],
    "migrate-offline": [],
    "destroy": [],
    "destroy-race": [NOT_FOUND, r"domain is not running"],
    "start": [],
    "define": [],
    "undefine": [],
    # op_abort aborts whatever async job runs, a save job too: the guest
    # then keeps running
    "save": [r"operation aborted: save job: canceled by client"],
    "restore": [],
    "managedsave": [r"operation aborted: save job: canceled by client"],
}
# Lock-free operations race destroys and the end of migrations: the
# domain may die while their monitor command is in flight, and the job
# mask refuses some of them at once while an async job runs.
RACY = [r"QEMU monitor closed|domain is no longer running|QEMU exited",
        r"does not allow it"]
for _k in ("query", "suspend", "resume", "setmem", "abort", "abort-mig", "destroy-race"):
    EXPECTED[_k] = EXPECTED[_k] + RACY

# Bugs already written down in tests/stress/FINDINGS.md: an error matching
# one of these is counted as "known" (reported as TAP TODO naming the id),
# not as a new violation.  Remove an entry when the bug is fixed.
KNOWN = [
]

# What a lifecycle operation may see when a racing destroy (op_destroy_race)
# killed the guest under it.
RACED = [r"domain is not running|no longer running|QEMU exited|QEMU monitor closed|"
         r"being destroyed|failed to get domain|Domain not found"]

# The lock-free operations (queries, suspend/resume, setmem, abort, racing
# destroy) run beside lifecycle operations of other clients, so "not
# running"/"not found" is a normal outcome for them.  Lifecycle operations
# hold the guest's lock and the model says what must succeed.


def norm(msg):
    """An error message with names and numbers blanked, to count kinds."""
    lines = [l for l in msg.strip().splitlines() if l.strip()]
    msg = lines[-1] if lines else "(no message)"
    msg = re.sub(r"'[^']*'", "'X'", msg)
    msg = re.sub(r"\d+", "N", msg)
    return msg[:160]


def qemu_processes(prefix):
    """{guest name: [pid, ...]} of live qemu-system processes whose
    -name guest=... starts with prefix, found in /proc."""
    found = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or b"qemu-system" not in argv[0]:
            continue
        for i, a in enumerate(argv[:-1]):
            if a == b"-name" and argv[i + 1].startswith(b"guest=" + prefix.encode()):
                name = argv[i + 1][6:].split(b",")[0].decode()
                if alive(int(d)):
                    found[name].append(int(d))
    return found


def listening_ports(lo, hi):
    try:
        out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    ports = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            try:
                p = int(f[3].rsplit(":", 1)[1])
            except ValueError:
                continue
            if lo <= p <= hi:
                ports.append(p)
    return ports


class Host:
    def __init__(self, name, port_lo, port_hi, driver_dir):
        conf = ("migration_port_min = %d\nmigration_port_max = %d\n"
                "job_wait_timeout = 30\n" % (port_lo, port_hi))
        self.d = Daemon("stress" + name, driver_dir=driver_dir, qemu_conf=conf)
        self.name = name
        self.uri = self.d.uri
        self.epoch = 0          # odd while a restart is in progress
        self.restarts = 0
        self.kills = 0

    def pidfile_pid(self, guest):
        try:
            with open(self.d.private("/run/libvirt/qemu/%s.pid" % guest)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def leftovers(self, guest):
        """Run-time files of guest on this host: pid/status files in
        /run/libvirt/qemu, domain-N-guest directories in /var/lib/libvirt/qemu."""
        out = []
        rd = self.d.private("/run/libvirt/qemu")
        for suffix in (".pid", ".xml"):
            if os.path.exists(os.path.join(rd, guest + suffix)):
                out.append("/run/libvirt/qemu/" + guest + suffix)
        ld = self.d.private("/var/lib/libvirt/qemu")
        try:
            for n in os.listdir(ld):
                if re.match(r"domain-\d+-%s$" % re.escape(guest), n):
                    out.append("/var/lib/libvirt/qemu/" + n)
        except OSError:
            pass
        return out


class Guest:
    def __init__(self, name, kind, xml, host):
        self.name, self.kind, self.xml = name, kind, xml
        self.lock = threading.Lock()    # held by lifecycle operations
        self.host = host                # where defined/running; None: unknown
        self.defined = True             # None: unknown
        self.active = False             # None: unknown
        self.managed_save = False
        self.races = 0                  # +1 when a racing destroy starts, +1 when it ends
        self.races0 = 0                 # races when the lock was taken


def bare_xml(name):
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices></devices>
</domain>
""" % name


def dirty_xml(name, kernel):
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=16 quiet</cmdline></os>
  <devices><serial type='pty'/></devices>
</domain>
""" % (name, kernel)


class Stress:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.prefix = "st%d-" % (os.getpid() % 100000)
        base = args.port_base or (47000 + (os.getpid() % 200) * 20)
        self.port_range = (base, base + 19)
        self.hosts = {"A": Host("A", base, base + 9, args.driver_dir),
                      "B": Host("B", base + 10, base + 19, args.driver_dir)}
        self.guests = []
        self.savedir = None
        self.lock = threading.Lock()            # protects the counters below
        self.ops = collections.defaultdict(collections.Counter)
        self.errors = collections.defaultdict(collections.Counter)
        self.worst = collections.defaultdict(float)
        self.violations = []
        self.skipped = {}                       # op class -> reason
        self.known = collections.Counter()      # known bug id -> times seen
        self.migrating = 0                      # migrations in flight
        self.restart_pending = False
        # quiescing
        self.cond = threading.Condition()
        self.paused = False
        self.stopping = False
        self.inflight = 0
        self.tap_n = 0
        self.tap_failed = 0

    # -- output ---------------------------------------------------------
    def tap(self, cond, name, detail=None):
        self.tap_n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.tap_n, name), flush=True)
        if not cond:
            self.tap_failed += 1
            for line in str(detail or "").splitlines()[:60]:
                print("#   " + line, flush=True)
        return cond

    def note(self, msg):
        print("# " + msg, flush=True)

    def violation(self, kind, detail):
        with self.lock:
            self.violations.append((time.time() - self.t0, kind, detail))
        self.note("VIOLATION %s: %s" % (kind, detail.splitlines()[0] if detail else ""))

    # -- calls ----------------------------------------------------------
    def epochs(self, hosts):
        return tuple(h.epoch for h in hosts)

    def virsh(self, host, args, deadline, kind, extra_hosts=()):
        """Runs virsh against host; returns (result or None on hang,
        overlapped_restart)."""
        hosts = (host,) + tuple(extra_hosts)
        e0 = self.epochs(hosts)
        t = time.time()
        argv = ["virsh", "-q", "-c", host.uri] + list(args)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=deadline,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            dt = time.time() - t
            self.violation("hung", "%s: virsh %s on %s passed its %d s deadline (killed after %.1f s)"
                           % (kind, " ".join(args), host.name, deadline, dt))
            with self.lock:
                self.ops[kind]["hung"] += 1
            return None, True
        dt = time.time() - t
        with self.lock:
            self.worst[kind] = max(self.worst[kind], dt)
        e1 = self.epochs(hosts)
        overlapped = e0 != e1 or any(e % 2 for e in e0)
        return p, overlapped

    def outcome(self, kind, p, overlapped, expected=()):
        """Counts the outcome of a call; returns 'ok', 'expected' or
        'unexpected'."""
        if p is None:
            return "hung"
        if p.returncode == 0:
            with self.lock:
                self.ops[kind]["ok"] += 1
            return "ok"
        msg = norm(p.stderr)
        pats = list(EXPECTED.get(kind, [])) + list(expected)
        known = [fid for fid, k, rx in KNOWN
                 if (k == "*" or k == kind) and re.search(rx, p.stderr)]
        if overlapped:
            cls = "expected"
            key = "[daemon restart] " + msg
        elif known:
            cls = "known"
            key = "[known %s] " % known[0] + msg
            with self.lock:
                self.known[known[0]] += 1
            self.note("known bug %s at t=%.0fs: %s %s: %s" % (
                known[0], time.time() - self.t0, kind, " ".join(p.args[3:]),
                " / ".join(l for l in p.stderr.splitlines() if l.strip())))
        elif any(re.search(x, p.stderr, re.I) for x in pats):
            cls = "expected"
            key = msg
        else:
            cls = "unexpected"
            key = msg
        with self.lock:
            self.ops[kind][cls] += 1
            self.errors[kind][("UNEXPECTED " if cls == "unexpected" else "") + key] += 1
        if cls == "unexpected":
            errs = [l for l in p.stderr.splitlines() if "error" in l] or [p.stderr.strip()]
            self.violation("unexpected-error", "%s on %s: %s" % (kind, " ".join(p.args[3:6]),
                                                                  " / ".join(errs)))
        return cls

    def call(self, kind, host, args, deadline, expected=(), extra_hosts=()):
        p, ov = self.virsh(host, args, deadline, kind, extra_hosts)
        return self.outcome(kind, p, ov, expected), p, ov

    def raced(self, g):
        """True when a racing destroy overlapped the lifecycle operation
        that holds g's lock."""
        with self.lock:
            return g.races != g.races0 or g.races % 2 == 1

    def lcall(self, kind, g, host, args, deadline, expected=(), extra_hosts=()):
        """A lifecycle call on g (its lock held): a racing destroy may
        have killed the guest under it."""
        p, ov = self.virsh(host, args, deadline, kind, extra_hosts)
        exp = list(expected) + (RACED if self.raced(g) else [])
        return self.outcome(kind, p, ov, exp), p, ov

    # -- setup ----------------------------------------------------------
    def setup(self):
        kernel = None
        if self.args.dirty_every:
            r = subprocess.run(["bash", os.path.join(SRCDIR, "tests", "guest", "build-guest.sh")],
                               capture_output=True, text=True, timeout=900)
            if r.returncode == 77:
                self.note("test guests unavailable (build-guest.sh exit 77): bare guests only")
            elif r.returncode != 0:
                raise RuntimeError("build-guest.sh failed:\n" + r.stderr[-2000:])
            else:
                paths = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
                kernel = paths.get("DIRTY")
        self.savedir = tempfile_dir("stress-save")
        os.chmod(self.savedir, 0o777)
        for h in self.hosts.values():
            h.d.start()
        hs = ["A", "B"]
        for i in range(self.args.guests):
            name = "%sg%d" % (self.prefix, i)
            if kernel and self.args.dirty_every and i % self.args.dirty_every == self.args.dirty_every - 1:
                g = Guest(name, "dirty", dirty_xml(name, kernel), hs[i % 2])
            else:
                g = Guest(name, "bare", bare_xml(name), hs[i % 2])
            self.guests.append(g)
            h = self.hosts[g.host]
            path = write_tmp(g.xml)
            try:
                r, _ = self.virsh(h, ["define", path], DEADLINE["define"], "setup")
            finally:
                os.unlink(path)
            if r is None or r.returncode != 0:
                raise RuntimeError("define %s: %s" % (name, r and r.stderr))
            r, _ = self.virsh(h, ["start", name], DEADLINE["start"], "setup")
            if r is None or r.returncode != 0:
                raise RuntimeError("start %s: %s" % (name, r and r.stderr))
            g.active = True
        self.probe()

    def probe(self):
        """Which optional operation classes the driver supports."""
        g = self.guests[0]
        h = self.hosts[g.host]
        r, _ = self.virsh(h, ["setmem", g.name, "60M", "--live"], DEADLINE["modify"], "probe")
        if r is None or r.returncode != 0:
            self.skipped["setmem"] = norm(r.stderr if r else "hung")
        r, _ = self.virsh(h, ["setmem", g.name, "64M", "--live"], DEADLINE["modify"], "probe")
        path = os.path.join(self.savedir, "probe.save")
        r, _ = self.virsh(h, ["save", g.name, path], DEADLINE["save"], "probe")
        if r is not None and r.returncode == 0:
            r, _ = self.virsh(h, ["restore", path], DEADLINE["save"], "probe")
            if r is None or r.returncode != 0:
                raise RuntimeError("restore after probe save failed: %s" % (r and r.stderr))
            os.unlink(path)
        else:
            self.skipped["save/restore"] = norm(r.stderr if r else "hung")
        r, _ = self.virsh(h, ["managedsave", g.name], DEADLINE["save"], "probe")
        if r is not None and r.returncode == 0:
            r, _ = self.virsh(h, ["start", g.name], DEADLINE["start"], "probe")
            if r is None or r.returncode != 0:
                raise RuntimeError("start after probe managedsave failed: %s" % (r and r.stderr))
        else:
            self.skipped["managedsave"] = norm(r.stderr if r else "hung")
        for k, why in self.skipped.items():
            self.note("operation class %s skipped: %s" % (k, why))

    # -- operations -----------------------------------------------------
    def where(self, g, rng):
        return self.hosts[g.host] if g.host else self.hosts[rng.choice("AB")]

    def other(self, h):
        return self.hosts["B" if h.name == "A" else "A"]

    def op_query(self, rng):
        g = rng.choice(self.guests)
        h = self.where(g, rng) if rng.random() < 0.85 else self.hosts[rng.choice("AB")]
        cmd = rng.choice(["dominfo", "domstate", "domjobinfo", "domstats"])
        self.call("query", h, [cmd, g.name], DEADLINE["query"])

    def op_list(self, rng):
        h = self.hosts[rng.choice("AB")]
        args = rng.choice([["list", "--all"], ["list", "--name"], ["domstats"]])
        self.call("list", h, args, DEADLINE["query"])

    def op_suspend_resume(self, rng):
        g = rng.choice(self.guests)
        h = self.where(g, rng)
        kind = rng.choice(["suspend", "resume"])
        self.call(kind, h, [kind, g.name], DEADLINE["modify"])

    def op_setmem(self, rng):
        g = rng.choice(self.guests)
        h = self.where(g, rng)
        top = 64 if g.kind == "bare" else 96
        self.call("setmem", h, ["setmem", g.name, "%dM" % rng.randint(top // 2, top), "--live"],
                  DEADLINE["modify"])

    def op_abort(self, rng):
        g = rng.choice(self.guests)
        self.call("abort", self.where(g, rng), ["domjobabort", g.name], DEADLINE["query"])

    def op_destroy_race(self, rng):
        """destroy without the guest's lock: races whatever lifecycle
        operation holds it; the guest's state becomes unknown until
        observed again (op_resolve or the next check)."""
        g = rng.choice(self.guests)
        with self.lock:
            g.races += 1
        try:
            self.call("destroy-race", self.where(g, rng), ["destroy", g.name], DEADLINE["destroy"])
        finally:
            with self.lock:
                g.races += 1
        if g.lock.acquire(blocking=False):
            g.active = None
            g.lock.release()

    def op_resolve(self, rng):
        """Observes a guest whose state the model lost (racing destroy,
        daemon restart, failed migration) and adopts what the hosts say."""
        g = self.locked(rng, lambda g: g.active is None or g.defined is None or g.host is None)
        if not g:
            return False
        try:
            e0 = self.epochs(self.hosts.values())
            if any(e % 2 for e in e0):
                return True
            seen = {}
            for hn, h in self.hosts.items():
                res, p, ov = self.call("resolve", h, ["domstate", g.name], DEADLINE["query"],
                                       expected=[NOT_FOUND])
                if res == "ok":
                    seen[hn] = p.stdout.strip()
                elif res != "expected" or ov:
                    return True
            if self.epochs(self.hosts.values()) != e0 or len(seen) > 1:
                return True
            if not seen:
                g.defined, g.active = False, False
                return True
            (hn, st), = seen.items()
            g.host = hn
            g.active = st in ("running", "paused", "in shutdown", "pmsuspended")
            r, _ = self.virsh(self.hosts[hn], ["dominfo", g.name], DEADLINE["query"], "resolve")
            if r is not None and r.returncode == 0:
                g.defined = bool(re.search(r"Persistent:\s+yes", r.stdout))
            else:
                g.defined = None
        finally:
            self.release(g)
        return True

    def locked(self, rng, want):
        """A guest in the wanted state whose lock we got, or None."""
        cands = [g for g in self.guests if want(g)]
        rng.shuffle(cands)
        for g in cands:
            if g.lock.acquire(blocking=False):
                with self.lock:
                    g.races0 = g.races
                if want(g):
                    return g
                g.lock.release()
        return None

    def release(self, g):
        """Ends a lifecycle operation: if a racing destroy overlapped it,
        the guest's state is unknown."""
        with self.lock:
            if g.races != g.races0 or g.races % 2:
                g.active = None
        g.lock.release()

    def op_start(self, rng):
        g = self.locked(rng, lambda g: g.active is False and g.defined is True and g.host)
        if not g:
            return False
        try:
            res, p, ov = self.lcall("start", g, self.hosts[g.host], ["start", g.name],
                                    DEADLINE["start"])
            if res == "ok":
                g.active = True
                g.managed_save = False
            elif ov or res == "hung" or self.raced(g):
                g.active = None
                g.managed_save = None
        finally:
            self.release(g)
        return True

    def op_destroy(self, rng):
        g = self.locked(rng, lambda g: g.active is True and g.host)
        if not g:
            return False
        try:
            p, ov = self.virsh(self.hosts[g.host], ["destroy", g.name], DEADLINE["destroy"], "destroy")
            with self.lock:
                raced = g.races != g.races0 or g.races % 2
            res = self.outcome("destroy", p, ov, [r"domain is not running"] if raced else [])
            if res == "ok":
                g.active = False
            else:
                g.active = None
        finally:
            self.release(g)
        return True

    def op_define_undefine(self, rng):
        g = self.locked(rng, lambda g: g.active is False and g.defined is not None and g.host)
        if not g:
            return False
        try:
            if g.defined:
                res, p, ov = self.call("undefine", self.hosts[g.host], ["undefine", "--managed-save", g.name],
                                       DEADLINE["define"])
                if res == "ok":
                    g.defined = False
                    g.managed_save = False
                elif ov or res == "hung":
                    g.defined = None
            else:
                h = self.hosts[rng.choice("AB")]
                path = write_tmp(g.xml)
                try:
                    res, p, ov = self.call("define", h, ["define", path], DEADLINE["define"])
                finally:
                    os.unlink(path)
                if res == "ok":
                    g.defined = True
                    g.host = h.name
                    g.managed_save = False
                elif ov or res == "hung":
                    g.defined = None
                    g.host = None
        finally:
            self.release(g)
        return True

    def op_migrate(self, rng):
        if self.args.no_restart_during_migration:
            with self.cond:
                if self.restart_pending:
                    return False
                self.migrating += 1
        g = self.locked(rng, lambda g: g.active is not None and g.defined is True and g.host)
        if not g:
            self.migration_done()
            return False
        try:
            src = self.hosts[g.host]
            dst = self.other(src)
            if not g.active:
                # offline: moves the definition
                # a guest with a managed save image stays where the image is
                exp = [r"has a managed save image"] if g.managed_save is not False else []
                res, p, ov = self.call("migrate-offline", src,
                                       ["migrate", "--offline", "--persistent", "--undefinesource",
                                        g.name, dst.uri], DEADLINE["migrate"], exp, extra_hosts=(dst,))
                if res == "expected" and not ov and "managed save image" in p.stderr:
                    g.managed_save = True
                if res == "ok":
                    g.host = dst.name
                elif ov or res == "hung":
                    g.host = None
                return True
            args = ["migrate", "--live", "--persistent", "--undefinesource", "--verbose"]
            p2p = rng.random() < 0.5
            if p2p:
                args.append("--p2p")
            throttled = rng.random() < 0.3
            aborted = rng.random() < 0.2
            if throttled or aborted:
                args += ["--bandwidth", str(rng.choice([2, 4, 8]))]
            if g.kind == "dirty" or throttled or aborted:
                # converge: virsh suspends the source after this many seconds
                args += ["--timeout", str(rng.randint(3, 10))]
            args += [g.name, dst.uri] + MIG_ARGS
            abort_t = None
            if aborted:
                delay = rng.uniform(0.3, 4)

                def do_abort():
                    time.sleep(delay)
                    self.call("abort-mig", src, ["domjobabort", g.name], DEADLINE["query"])
                abort_t = threading.Thread(target=do_abort, daemon=True)
                abort_t.start()
            kind = "migrate"
            p, ov = self.virsh(src, args, DEADLINE["migrate"], kind, extra_hosts=(dst,))
            exp = [r"abort|cancel"] if aborted else []
            with self.lock:
                if g.races != g.races0 or g.races % 2:
                    # a racing destroy killed the guest under the migration
                    exp += [r"domain is not running|no longer running|QEMU exited|"
                            r"QEMU monitor closed|failed to get domain|Domain not found"]
            res = self.outcome(kind, p, ov, exp)
            if abort_t:
                abort_t.join(DEADLINE["query"] + 5)
            with self.lock:
                self.ops["migrate-variant"]["%s%s%s" % ("p2p" if p2p else "managed",
                                                        "+throttled" if throttled else "",
                                                        "+aborted" if aborted else "")] += 1
            if res == "ok":
                g.host = dst.name
            else:
                g.host = None       # still running, on exactly one host
        finally:
            self.release(g)
            self.migration_done()
        return True

    def migration_done(self):
        if self.args.no_restart_during_migration:
            with self.cond:
                self.migrating -= 1
                self.cond.notify_all()

    def op_save_restore(self, rng):
        g = self.locked(rng, lambda g: g.active is True and g.defined is True and g.host)
        if not g:
            return False
        try:
            h = self.hosts[g.host]
            path = os.path.join(self.savedir, "%s.save" % g.name)
            res, p, ov = self.lcall("save", g, h, ["save", g.name, path], DEADLINE["save"])
            if res == "ok":
                g.active = False
                res, p, ov = self.lcall("restore", g, h, ["restore", path], DEADLINE["save"])
                g.active = True if res == "ok" else (None if ov or self.raced(g) else False)
            elif ov or res == "hung" or self.raced(g):
                g.active = None
            try:
                os.unlink(path)
            except OSError:
                pass
        finally:
            self.release(g)
        return True

    def op_managedsave(self, rng):
        g = self.locked(rng, lambda g: g.active is True and g.defined is True and g.host)
        if not g:
            return False
        try:
            res, p, ov = self.lcall("managedsave", g, self.hosts[g.host], ["managedsave", g.name],
                                    DEADLINE["save"])
            if res == "ok":
                g.active = False
                g.managed_save = True
            elif ov or res == "hung" or self.raced(g):
                g.active = None
                g.managed_save = None
        finally:
            self.release(g)
        return True

    def op_table(self):
        t = [(30, self.op_query), (6, self.op_list), (10, self.op_suspend_resume),
             (3, self.op_abort), (2, self.op_destroy_race),
             (8, self.op_start), (5, self.op_destroy), (3, self.op_define_undefine),
             (10, self.op_migrate), (4, self.op_resolve)]
        if "setmem" not in self.skipped:
            t.append((5, self.op_setmem))
        if "save/restore" not in self.skipped:
            t.append((4, self.op_save_restore))
        if "managedsave" not in self.skipped:
            t.append((3, self.op_managedsave))
        return t

    # -- threads --------------------------------------------------------
    def enter(self):
        with self.cond:
            while self.paused and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return False
            self.inflight += 1
            return True

    def leave(self):
        with self.cond:
            self.inflight -= 1
            self.cond.notify_all()

    def client(self, idx):
        rng = random.Random("%d-client-%d" % (self.seed, idx))
        table = self.op_table()
        weights = [w for w, _ in table]
        n = 0
        while self.enter():
            try:
                if self.args.ops and self.total_ops() >= self.args.ops:
                    with self.cond:
                        self.stopping = True
                        self.cond.notify_all()
                    break
                for _ in range(5):
                    fn = rng.choices(table, weights)[0][1]
                    if fn(rng) is not False:
                        break
                n += 1
            except Exception:
                self.violation("client-exception", traceback.format_exc())
            finally:
                self.leave()
            time.sleep(rng.uniform(0, 0.15))

    def chaos(self):
        rng = random.Random("%d-chaos" % self.seed)
        if not self.args.restart_every:
            return
        while True:
            delay = rng.uniform(0.5, 1.5) * self.args.restart_every
            end = time.time() + delay
            while time.time() < end:
                with self.cond:
                    if self.stopping:
                        return
                time.sleep(0.2)
            if not self.enter():
                return
            try:
                h = self.hosts[rng.choice("AB")]
                sig = signal.SIGKILL if rng.random() < self.args.kill_ratio else signal.SIGTERM
                if self.args.no_restart_during_migration:
                    # finding F9 (residual: client-managed): a restart of the source between the
                    # destination's resume and Confirm leaves a paused copy
                    with self.cond:
                        self.restart_pending = True
                        end = time.time() + DEADLINE["migrate"] + 30
                        while self.migrating and time.time() < end:
                            self.cond.wait(1)
                try:
                    self.restart(h, sig)
                finally:
                    with self.cond:
                        self.restart_pending = False
            finally:
                self.leave()

    def restart(self, h, sig):
        h.epoch += 1
        try:
            t = time.time()
            h.d.stop(sig)
            h.d.start()
            h.restarts += 1
            if sig == signal.SIGKILL:
                h.kills += 1
            with self.lock:
                self.ops["daemon-restart"]["ok-" + signal.Signals(sig).name] += 1
                self.worst["daemon-restart"] = max(self.worst["daemon-restart"], time.time() - t)
        except Exception as ex:
            self.violation("daemon-restart", "host %s did not come back: %s" % (h.name, ex))
            with self.cond:
                self.stopping = True
                self.cond.notify_all()
        finally:
            h.epoch += 1

    def total_ops(self):
        with self.lock:
            return sum(sum(c.values()) for k, c in self.ops.items()
                       if k not in ("migrate-variant",))

    def quiesce(self, timeout):
        with self.cond:
            self.paused = True
            deadline = time.time() + timeout
            while self.inflight > 0 and time.time() < deadline:
                self.cond.wait(1)
            return self.inflight == 0

    def unquiesce(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    # -- invariants -----------------------------------------------------
    def observe(self):
        obs = {"hosts": {}, "procs": qemu_processes(self.prefix), "err": []}
        for hn, h in self.hosts.items():
            o = {}
            for key, args in (("all", ["list", "--all", "--name"]),
                              ("active", ["list", "--name"]),
                              ("persistent", ["list", "--all", "--persistent", "--name"])):
                r, _ = self.virsh(h, args, DEADLINE["query"], "check")
                if r is None or r.returncode != 0:
                    obs["err"].append("%s: virsh %s failed: %s" % (hn, " ".join(args), r and r.stderr))
                    o[key] = set()
                else:
                    o[key] = set(r.stdout.split())
            obs["hosts"][hn] = o
        return obs

    def evaluate(self, obs):
        bad = collections.defaultdict(list)
        bad["daemon"] += obs["err"]
        for g in self.guests:
            listed = [hn for hn in "AB" if g.name in obs["hosts"][hn]["all"]]
            active = [hn for hn in "AB" if g.name in obs["hosts"][hn]["active"]]
            pers = [hn for hn in "AB" if g.name in obs["hosts"][hn]["persistent"]]
            procs = obs["procs"].get(g.name, [])
            model = "model: host=%s defined=%s active=%s" % (g.host, g.defined, g.active)
            # definitions
            if len(listed) > 1:
                bad["defined"].append("%s listed on both hosts (%s)" % (g.name, model))
            if g.defined is True and len(pers) != 1:
                bad["defined"].append("%s persistent on %s, want exactly one host (%s)"
                                      % (g.name, pers or "no host", model))
            if g.defined is False and g.active is False and listed:
                bad["defined"].append("%s undefined but listed on %s (%s)" % (g.name, listed, model))
            if g.defined is True and g.host and listed and listed != [g.host]:
                bad["defined"].append("%s on %s, expected %s (%s)" % (g.name, listed, g.host, model))
            # running
            if len(active) > 1:
                bad["running"].append("%s active on both hosts (%s)" % (g.name, model))
            if g.active is True and len(active) != 1:
                bad["running"].append("%s should run but is active on %s (%s)"
                                      % (g.name, active or "no host", model))
            if g.active is False and active:
                bad["running"].append("%s should not run but is active on %s (%s)"
                                      % (g.name, active, model))
            if g.active and g.host and active and active != [g.host]:
                bad["running"].append("%s runs on %s, expected %s (%s)" % (g.name, active, g.host, model))
            # QEMU processes against the daemons' word and pid files
            if len(procs) != len(active):
                bad["qemu"].append("%s: %d QEMU process(es) %s in /proc, %d host(s) say active %s"
                                   % (g.name, len(procs), procs, len(active), active))
            for hn in active:
                pid = self.hosts[hn].pidfile_pid(g.name)
                if pid not in procs:
                    bad["qemu"].append("%s: active on %s, pid file says %s, /proc has %s"
                                       % (g.name, hn, pid, procs))
            for hn in "AB":
                if hn not in active:
                    left = self.hosts[hn].leftovers(g.name)
                    if left:
                        bad["leak"].append("%s not active on %s but %s left there" % (g.name, hn, left))
        names = {g.name for g in self.guests}
        for n, pids in obs["procs"].items():
            if n not in names:
                bad["qemu"].append("unknown QEMU %s pids %s" % (n, pids))
        ports = listening_ports(*self.port_range)
        if ports:
            bad["leak"].append("migration ports still listening: %s" % ports)
        return bad

    def adopt(self, obs):
        for g in self.guests:
            listed = [hn for hn in "AB" if g.name in obs["hosts"][hn]["all"]]
            active = [hn for hn in "AB" if g.name in obs["hosts"][hn]["active"]]
            pers = [hn for hn in "AB" if g.name in obs["hosts"][hn]["persistent"]]
            if len(listed) == 1:
                g.host = listed[0]
            g.active = len(active) == 1 if len(active) <= 1 else None
            g.defined = len(pers) == 1 if len(pers) <= 1 else None

    def check_jobs(self):
        bad = []
        for g in self.guests:
            if not g.host or not g.active:
                continue
            h = self.hosts[g.host]
            r, _ = self.virsh(h, ["domjobinfo", g.name], DEADLINE["query"], "check")
            if r is None or r.returncode != 0 or not re.search(r"Job type:\s+None", r.stdout):
                bad.append("%s on %s: domjobinfo: %s" % (g.name, h.name, r and (r.stdout + r.stderr).strip()))
                continue
            r, _ = self.virsh(h, ["domstate", g.name], DEADLINE["query"], "check")
            st = r.stdout.strip() if r and r.returncode == 0 else None
            seq = [["suspend", g.name], ["resume", g.name]]
            if st == "paused":
                seq = [["resume", g.name], ["suspend", g.name]]
            elif st != "running":
                bad.append("%s on %s: domstate %r" % (g.name, h.name, st))
                continue
            for args in seq:
                r, _ = self.virsh(h, args, 35, "check")
                if r is None or r.returncode != 0:
                    bad.append("%s on %s: %s after the run: %s" % (g.name, h.name, args[0],
                                                                    r and r.stderr.strip() or "hung"))
                    break
        return bad

    def check(self, label):
        ok = self.quiesce(max(DEADLINE.values()) + 60)
        self.tap(ok, "%s: clients quiesced" % label)
        for h in self.hosts.values():
            if not h.d.alive():
                self.tap(False, "%s: daemon %s alive" % (label, h.name), h.d.log_tail())
                return False
        self.tap(True, "%s: both daemons alive" % label)
        # let asynchronous cleanup finish (QEMU exit, reaping): bounded
        deadline = time.time() + self.args.settle
        while True:
            obs = self.observe()
            bad = self.evaluate(obs)
            if not any(bad.values()) or time.time() > deadline:
                break
            time.sleep(1)
        for key, name in (("daemon", "daemons answer"),
                          ("defined", "every defined domain defined exactly once across both hosts"),
                          ("running", "every guest that should run runs on exactly one host"),
                          ("qemu", "QEMU processes in /proc match the daemons and their pid files"),
                          ("leak", "no leaked pid/status file, domain directory or migration port")):
            self.tap(not bad[key], "%s: %s" % (label, name), "\n".join(bad[key]))
            for b in bad[key]:
                self.violation(key, b)
        self.adopt(obs)
        jb = self.check_jobs()
        self.tap(not jb, "%s: no job left held (domjobinfo None, query+modify succeed)" % label,
                 "\n".join(jb))
        for b in jb:
            self.violation("job", b)
        state = ", ".join("%s:%s%s" % (g.name[len(self.prefix):], g.host or "?",
                                       {True: "+run", False: "", None: "?"}[g.active])
                          for g in self.guests)
        self.note("%s: guests %s" % (label, state))
        self.unquiesce()
        return True

    # -- main -----------------------------------------------------------
    def run(self):
        self.t0 = time.time()
        self.note("seed %d, %d guests, %d clients, %s, restart every ~%s s (SIGKILL ratio %.2f)%s"
                  % (self.seed, self.args.guests, self.args.clients,
                     ("%d ops" % self.args.ops) if self.args.ops else ("%d s" % self.args.seconds),
                     self.args.restart_every, self.args.kill_ratio,
                     ", no restart during migrations" if self.args.no_restart_during_migration else ""))
        try:
            self.setup()
        except Exception:
            self.tap(False, "setup: daemons up, guests defined and started",
                     traceback.format_exc() + "\nA:\n" + self.hosts["A"].d.log_tail() +
                     "\nB:\n" + self.hosts["B"].d.log_tail())
            return
        self.tap(True, "setup: daemons up, %d guests defined and started" % len(self.guests))
        threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                   for i in range(self.args.clients)]
        threads.append(threading.Thread(target=self.chaos, daemon=True))
        for t in threads:
            t.start()
        end = self.t0 + self.args.seconds if not self.args.ops else None
        phase = 0
        next_check = time.time() + self.args.phase
        while True:
            time.sleep(0.5)
            with self.cond:
                if self.stopping:
                    break
            now = time.time()
            if end and now >= end:
                break
            if now >= next_check and (not end or end - now > self.args.phase / 2):
                phase += 1
                if not self.check("phase %d" % phase):
                    break
                next_check = time.time() + self.args.phase
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for t in threads:
            t.join(max(DEADLINE.values()) + 60)
        self.unquiesce()
        self.check("final")
        self.report()

    def report(self):
        hung = [v for v in self.violations if v[1] == "hung"]
        self.tap(not hung, "no client call passed its deadline",
                 "\n".join("t=%.0fs %s" % (v[0], v[2]) for v in hung))
        unexp = [v for v in self.violations if v[1] in ("unexpected-error", "client-exception")]
        self.tap(not unexp, "no unexpected error",
                 "\n".join("t=%.0fs %s" % (v[0], v[2]) for v in unexp[:40]))
        for fid, n in sorted(self.known.items()):
            self.tap_n += 1
            print("not ok %d - known driver bug %s seen %d times (tests/stress/FINDINGS.md) # TODO"
                  % (self.tap_n, fid, n), flush=True)
        dur = time.time() - self.t0
        self.note("--- operations (%.0f s) ---" % dur)
        total = 0
        for kind in sorted(self.ops):
            c = self.ops[kind]
            if kind != "migrate-variant":
                total += sum(c.values())
            self.note("%-16s %s  worst %.2f s" % (kind, " ".join("%s=%d" % kv for kv in sorted(c.items())),
                                                   self.worst.get(kind, 0.0)))
        self.note("total %d operations, %d violations" % (total, len(self.violations)))
        for k, why in self.skipped.items():
            self.note("skipped class %s: %s" % (k, why))
        self.note("--- errors per kind ---")
        for kind in sorted(self.errors):
            for msg, n in self.errors[kind].most_common():
                self.note("%-16s %4d  %s" % (kind, n, msg))
        self.note("restarts: A %d (%d SIGKILL), B %d (%d SIGKILL)" % (
            self.hosts["A"].restarts, self.hosts["A"].kills,
            self.hosts["B"].restarts, self.hosts["B"].kills))
        if self.tap_failed or self.violations:
            self.note("FAILED with seed %d: rerun with --seed %d --guests %d --clients %d %s%s"
                      % (self.seed, self.seed, self.args.guests, self.args.clients,
                         ("--ops %d" % self.args.ops) if self.args.ops else ("--seconds %d" % self.args.seconds),
                         " --no-restart-during-migration" if self.args.no_restart_during_migration else ""))

    def cleanup(self):
        # stop every QEMU of ours by PID (daemons first would leave them)
        if self.tap_failed:
            # keep the daemons' logs of a failed run
            os.environ["TANDEM_KEEP_TMP"] = "1"
            for h in self.hosts.values():
                self.note("logs of host %s kept in %s" % (h.name, h.d.dir))
        for n, pids in qemu_processes(self.prefix).items():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for h in self.hosts.values():
            h.d.cleanup()
        if self.savedir:
            shutil.rmtree(self.savedir, ignore_errors=True)


def tempfile_dir(prefix):
    import tempfile
    return tempfile.mkdtemp(prefix="tandem-%s-" % prefix, dir=os.environ.get("TANDEM_TEST_TMPDIR"))


def main():
    ap = argparse.ArgumentParser(description="Seeded stress driver for Tandem (two daemons, M clients).")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", "--duration", type=int, default=60)
    ap.add_argument("--ops", type=int, default=0, help="stop after this many operations instead")
    ap.add_argument("--guests", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--dirty-every", type=int, default=3,
                    help="every Nth guest is a memory-dirtying guest (0: none)")
    ap.add_argument("--restart-every", type=float, default=20,
                    help="mean seconds between daemon restarts (0: none)")
    ap.add_argument("--kill-ratio", type=float, default=0.25,
                    help="share of restarts done with SIGKILL instead of SIGTERM")
    ap.add_argument("--phase", type=float, default=30, help="seconds between invariant checks")
    ap.add_argument("--settle", type=float, default=30,
                    help="bound on the wait for asynchronous cleanup before a check fails")
    ap.add_argument("--no-restart-during-migration", action="store_true",
                    help="restart a daemon only while no migration runs (avoids known bug F9)")
    ap.add_argument("--port-base", type=int, default=0)
    ap.add_argument("--driver-dir", default=DRIVER_DIR)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int(time.time()) % 1000000
    if os.geteuid() != 0:
        print("1..0 # SKIP stress needs root (libvirtd in mount namespaces)")
        return 0
    s = Stress(args)
    try:
        s.run()
    except Exception:
        s.tap(False, "stress driver", traceback.format_exc())
    finally:
        s.cleanup()
    print("1..%d" % s.tap_n, flush=True)
    if s.tap_failed:
        print("# seed %d" % args.seed)
    return 1 if s.tap_failed else 0


if __name__ == "__main__":
    sys.exit(main())
