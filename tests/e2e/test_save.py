# test_save.py: save, restore and managed save on a real libvirtd running
# Tandem, with the multiboot guest that keeps dirtying its memory and
# counts its passes on a serial port logged to a file: a guest that resumes
# where it was goes on counting, a guest that reboots says READY again.
# Bad images (truncated, foreign, corrupt stream, missing) are refused
# leaving no QEMU and no domain behind; a failed or aborted save, or one
# interrupted by killing the daemon, leaves the guest running and no file
# behind; destroy ends a save at once.  While a save runs a second client keeps
# asking dominfo, domstate and domjobinfo: none of those calls may fail
# (the worst latency seen is printed).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import re
import signal
import struct
import subprocess
import threading
import time

import libvirt

from tandemtest import (
    guest_paths, TAP, Daemon, write_tmp, domstate, jobinfo, qemu_pid, alive, rss_kib, wait_for,
    fields)

t = TAP()
QEMU_UID = None
QEMU_GID = None
OUTDIR = "/var/lib/libvirt/images/out"
SAVEDIR = "/var/lib/libvirt/qemu/save"
MAGIC = b"TANDEM-SAVEIMAGE"


def qemu_user():
    import grp
    import pwd
    # qemu.conf's default group: the libvirt-qemu group, not always the
    # user's primary group
    return pwd.getpwnam("libvirt-qemu").pw_uid, grp.getgrnam("libvirt-qemu").gr_gid


class Guest:
    """A dirtying guest whose first serial port goes to a file (appended
    to, so a restored QEMU writes after the old one)."""

    def __init__(self, d, name, kernel, mem_mib=128, dirty_mib=48,
                 description=None, transient=False):
        self.d, self.name = d, name
        self.log_path = "%s/%s.serial" % (OUTDIR, name)
        self.log_real = d.private(self.log_path)
        with open(self.log_real, "w"):
            pass
        os.chown(self.log_real, QEMU_UID, QEMU_GID)
        desc = "<description>%s</description>" % description if description else ""
        self.xml = """<domain type='qemu'>
  <name>%s</name>%s
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=%d</cmdline></os>
  <devices>
    <serial type='file'><source path='%s' append='on'/><target port='0'/></serial>
  </devices>
</domain>
""" % (name, desc, mem_mib, kernel, dirty_mib, self.log_path)
        self.dirty_mib = dirty_mib
        path = write_tmp(self.xml)
        try:
            r = d.virsh("create" if transient else "define", path)
        finally:
            os.unlink(path)
        if r.rc != 0:
            raise RuntimeError("%s %s failed: %r" % ("create" if transient else "define",
                                                     name, r))

    def serial(self):
        with open(self.log_real, errors="replace") as f:
            return f.read()

    def readies(self):
        return self.serial().count("TANDEM-DIRTY-READY")

    def last_pass(self):
        passes = re.findall(r"TANDEM-DIRTY-ALIVE pass=(\d+)", self.serial())
        return int(passes[-1]) if passes else -1

    def wait_up(self, timeout=60):
        """Until the guest has counted a pass after the current last one
        and QEMU holds its dirtied memory."""
        before = self.last_pass()
        pid = qemu_pid(self.d, self.name)
        return wait_for(lambda: self.last_pass() > before and
                        rss_kib(pid) > (self.dirty_mib + 16) * 1024, timeout)


def qemu_status(d, name):
    """QEMU's own run state through the monitor passthrough."""
    r = d.virsh("qemu-monitor-command", name, '{"execute":"query-status"}')
    if r.rc != 0:
        return "error: " + r.err.strip()
    return json.loads(r.out)["return"]["status"]


def dominfo(d, name):
    return fields(d.virsh("dominfo", name).out)


def qemu_procs(d, name):
    """Live QEMU processes of domain @name in the daemon's mount namespace."""
    try:
        ns = os.readlink("/proc/%d/ns/mnt" % d.proc.pid)
    except (OSError, AttributeError):
        return []
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
            if b"qemu-system" not in argv[0] or os.readlink("/proc/%s/ns/mnt" % p) != ns:
                continue
        except OSError:
            continue
        if any(a.startswith(b"guest=%s," % name.encode()) or a == b"guest=%s" % name.encode()
               for a in argv) and alive(int(p)):
            found.append(int(p))
    return found


def leftovers(realdir, name):
    """Temporary save files of @name left in @realdir."""
    return [f for f in os.listdir(realdir) if f.startswith(".%s." % name)]


def header(real):
    with open(real, "rb") as f:
        h = f.read(64)
    magic = h[:16]
    version, hlen, xlen, flags, fmt = struct.unpack("<5I", h[16:36])
    off, dlen = struct.unpack("<2Q", h[40:56])
    return dict(magic=magic, version=version, flags=flags, format=fmt,
                offset=off, length=dlen, size=os.path.getsize(real))


def edited(xml, old, new):
    out = xml.replace(old, new)
    if out == xml:
        raise RuntimeError("%r not in the XML" % old)
    return out


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
        self.jobs = []          # (operation, processed, total, remaining) seen running
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
                        self.states.add(tuple(dom.state()))
                    else:
                        js = dom.jobStats()
                        if js.get("type") == libvirt.VIR_DOMAIN_JOB_UNBOUNDED:
                            self.jobs.append((js.get("operation"), js.get("data_processed"),
                                              js.get("data_total"), js.get("data_remaining")))
                except libvirt.libvirtError as e:
                    self.failures.append((call, str(e)))
                dt = time.time() - start
                self.worst = max(self.worst, dt)
                self.count += 1
            # a breath between rounds: the cores are shared with QEMU
            self.stop_flag.wait(0.01)
        conn.close()

    def stop(self):
        self.stop_flag.set()
        self.join(60)


def restore_error(d, path):
    """virDomainRestore through python3-libvirt: (code, message) or None."""
    conn = libvirt.open(d.uri)
    try:
        conn.restore(path)
        return None
    except libvirt.libvirtError as e:
        return e.get_error_code(), e.get_error_message()
    finally:
        conn.close()


def test_save_restore(d, kernel, realdir):
    g = Guest(d, "sr1", kernel, description="as defined")
    r = d.virsh("start", "sr1")
    t.ok(r.rc == 0 and g.wait_up(), "sr1 starts and dirties its memory", r)
    pid = qemu_pid(d, "sr1")
    uuid = d.virsh("domuuid", "sr1").out.strip()
    img = "%s/sr1.save" % OUTDIR
    img_real = os.path.join(realdir, "sr1.save")

    # save: shut off (saved), QEMU gone, a complete image in place
    r = d.virsh("save", "sr1", img, timeout=300)
    t.ok(r.rc == 0, "save sr1", r)
    t.eq(domstate(d, "sr1"), "shut off (saved)", "after save: shut off (saved)")
    t.ok(wait_for(lambda: not alive(pid), 20), "after save: QEMU is gone")
    h = header(img_real)
    t.ok(h["magic"] == MAGIC and h["version"] == 1 and h["format"] == 0 and
         h["flags"] == 1 and h["length"] > 0 and h["offset"] % 4096 == 0 and
         h["size"] == h["offset"] + h["length"],
         "the image has a complete header: magic, version 1, raw, running, "
         "data length = file size - data offset", h)
    t.eq(leftovers(realdir, "sr1.save"), [], "no temporary file left by the save")
    info = jobinfo(d, "sr1", "--completed")
    t.ok(info.get("Job type") == "Completed" and info.get("Operation") == "Save",
         "domjobinfo --completed: completed save", info)
    t.eq(dominfo(d, "sr1").get("Managed save"), "no", "a plain save is not a managed save")

    # save-image-dumpxml: the guest's XML
    r = d.virsh("save-image-dumpxml", img)
    t.ok(r.rc == 0 and "<name>sr1</name>" in r.out and "<uuid>%s</uuid>" % uuid in r.out and
         "<description>as defined</description>" in r.out,
         "save-image-dumpxml shows the guest's name, UUID and description", r)

    # restore: running, where it was (no reboot), the image stays
    readies = g.readies()
    passes = g.last_pass()
    r = d.virsh("restore", img, timeout=300)
    t.ok(r.rc == 0, "restore", r)
    t.eq(domstate(d, "sr1"), "running (restored)", "after restore: running (restored)")
    t.eq(qemu_status(d, "sr1"), "running", "after restore: QEMU runs the guest")
    t.ok(wait_for(lambda: g.last_pass() > passes, 30) and g.readies() == readies,
         "after restore: the guest goes on counting passes without rebooting",
         g.serial()[-300:])
    t.ok(os.path.exists(img_real), "restore keeps a plain save image")
    info = jobinfo(d, "sr1", "--completed")
    t.eq(info.get("Operation"), "Restore", "domjobinfo --completed: restore")

    # restore --paused
    r = d.virsh("save", "--bypass-cache", "sr1", img, timeout=300)
    t.ok(r.rc == 0, "save --bypass-cache", r)
    r = d.virsh("restore", "--paused", img, timeout=300)
    t.ok(r.rc == 0, "restore --paused", r)
    t.eq(domstate(d, "sr1"), "paused (user)", "restore --paused: paused")
    t.eq(qemu_status(d, "sr1"), "paused", "restore --paused: QEMU's CPUs are stopped")
    r = d.virsh("resume", "sr1")
    t.ok(r.rc == 0 and domstate(d, "sr1").startswith("running"), "resume after restore --paused", r)

    # save --paused: the image says paused; restore follows it unless --running
    r = d.virsh("save", "--paused", "sr1", img, timeout=300)
    t.ok(r.rc == 0 and header(img_real)["flags"] == 0, "save --paused: the image says paused", r)
    r = d.virsh("restore", "--bypass-cache", img, timeout=300)
    t.ok(r.rc == 0, "restore --bypass-cache of a paused image", r)
    t.eq(domstate(d, "sr1"), "paused (user)", "an image saved --paused restores paused")
    r = d.virsh("save", "sr1", img, timeout=300)
    t.ok(r.rc == 0 and header(img_real)["flags"] == 0,
         "save of a paused guest: the image says paused", r)
    r = d.virsh("restore", "--running", img, timeout=300)
    t.ok(r.rc == 0, "restore --running", r)
    t.eq(domstate(d, "sr1"), "running (restored)", "restore --running: running")
    t.eq(qemu_status(d, "sr1"), "running", "restore --running: QEMU runs the guest")
    r = d.virsh("restore", "--running", "--paused", img)
    t.ok(r.rc != 0, "restore --running --paused is refused", r)

    # save --xml: the image carries the edited XML
    path = write_tmp(edited(d.virsh("dumpxml", "--migratable", "sr1").out,
                            "as defined", "saved with --xml"))
    try:
        r = d.virsh("save", "--xml", path, "sr1", img, timeout=300)
    finally:
        os.unlink(path)
    t.ok(r.rc == 0, "save --xml", r)
    r = d.virsh("save-image-dumpxml", img)
    t.contains(r.out, "<description>saved with --xml</description>",
               "save-image-dumpxml shows the XML given to save --xml")

    # save-image-define: new description, --paused flag
    path = write_tmp(edited(r.out, "saved with --xml", "redefined"))
    try:
        r = d.virsh("save-image-define", img, path, "--paused")
    finally:
        os.unlink(path)
    t.ok(r.rc == 0, "save-image-define --paused", r)
    t.contains(d.virsh("save-image-dumpxml", img).out, "<description>redefined</description>",
               "save-image-dumpxml shows the redefined XML")
    h = header(img_real)
    t.ok(h["flags"] == 0 and h["size"] == h["offset"] + h["length"],
         "save-image-define --paused: the image says paused and is complete", h)
    t.eq(leftovers(realdir, "sr1.save"), [], "no temporary file left by save-image-define")
    # an incompatible XML (other UUID) is refused and the image stays
    path = write_tmp(edited(d.virsh("save-image-dumpxml", img).out,
                            "<uuid>%s</uuid>" % uuid,
                            "<uuid>00000000-0000-4000-8000-000000000001</uuid>"))
    try:
        r = d.virsh("save-image-define", img, path)
    finally:
        os.unlink(path)
    t.ok(r.rc != 0 and "UUID" in r.err, "save-image-define with another UUID is refused", r)
    t.contains(d.virsh("save-image-dumpxml", img).out, "<description>redefined</description>",
               "the refused redefinition left the image as it was")

    # restore --xml: a compatible edit runs; an incompatible one is refused
    # before anything changes
    xml = d.virsh("save-image-dumpxml", img).out
    path = write_tmp(edited(xml, "<memory unit='KiB'>131072</memory>",
                            "<memory unit='KiB'>262144</memory>"))
    try:
        r = d.virsh("restore", "--xml", path, img)
    finally:
        os.unlink(path)
    t.ok(r.rc != 0 and "memory" in r.err.lower(),
         "restore --xml with another memory size is refused (ABI)", r)
    t.eq(domstate(d, "sr1"), "shut off (saved)", "the refused restore changed nothing")
    t.eq(qemu_procs(d, "sr1"), [], "the refused restore started no QEMU")
    path = write_tmp(edited(xml, "redefined", "restored with --xml"))
    try:
        r = d.virsh("restore", "--xml", path, img, timeout=300)
    finally:
        os.unlink(path)
    t.ok(r.rc == 0, "restore --xml with another description", r)
    t.eq(domstate(d, "sr1"), "paused (user)", "restore --xml follows the image's paused flag")
    t.contains(d.virsh("dumpxml", "sr1").out, "<description>restored with --xml</description>",
               "the running guest has the description given to restore --xml")
    t.contains(d.virsh("dumpxml", "--inactive", "sr1").out,
               "<description>as defined</description>",
               "the persistent definition keeps its description")
    d.virsh("destroy", "sr1")
    t.contains(d.virsh("dumpxml", "sr1").out, "<description>as defined</description>",
               "after destroy the persistent definition is back")

    # restore of a domain that is already running
    d.virsh("start", "sr1")
    r = d.virsh("restore", img)
    t.ok(r.rc != 0 and ("already" in r.err), "restore of a running domain is refused", r)
    t.ok(domstate(d, "sr1").startswith("running"), "the running domain keeps running",
         domstate(d, "sr1"))
    d.virsh("destroy", "sr1")


def test_managed_save(d, kernel):
    g = Guest(d, "ms1", kernel)
    managed = d.private("%s/ms1.save" % SAVEDIR)
    r = d.virsh("start", "ms1")
    t.ok(r.rc == 0 and g.wait_up(), "ms1 starts", r)
    pid = qemu_pid(d, "ms1")

    r = d.virsh("managedsave", "ms1", timeout=300)
    t.ok(r.rc == 0, "managedsave", r)
    t.eq(domstate(d, "ms1"), "shut off (saved)", "after managedsave: shut off (saved)")
    t.ok(wait_for(lambda: not alive(pid), 20), "after managedsave: QEMU is gone")
    t.ok(os.path.exists(managed) and header(managed)["magic"] == MAGIC,
         "the managed save image is in the save directory")
    t.eq(dominfo(d, "ms1").get("Managed save"), "yes", "dominfo: Managed save: yes")
    r = d.virsh("list", "--all", "--managed-save")
    t.ok(any(l.split()[1:] == ["ms1", "saved"] for l in r.out.splitlines() if l.split()),
         "list --all --managed-save: ms1 saved", r)
    r = d.virsh("list", "--all", "--with-managed-save", "--name")
    t.ok("ms1" in r.out.split(), "list --with-managed-save names ms1", r)
    r = d.virsh("list", "--all", "--without-managed-save", "--name")
    t.ok("ms1" not in r.out.split(), "list --without-managed-save does not", r)
    r = d.virsh("managedsave-dumpxml", "ms1")
    t.ok(r.rc == 0 and "<name>ms1</name>" in r.out, "managedsave-dumpxml", r)

    r = d.virsh("undefine", "ms1")
    t.ok(r.rc != 0 and "managed save image exists" in r.err,
         "undefine is refused while a managed save image exists", r)
    t.eq(domstate(d, "ms1"), "shut off (saved)", "ms1 is still defined")

    # the daemon finds the image again after a restart
    d.restart()
    t.eq(dominfo(d, "ms1").get("Managed save"), "yes",
         "after a daemon restart: Managed save: yes")

    # start restores it: the guest goes on where it was, the image is gone
    readies = g.readies()
    passes = g.last_pass()
    r = d.virsh("start", "ms1", timeout=300)
    t.ok(r.rc == 0, "start from the managed save image", r)
    t.eq(domstate(d, "ms1"), "running (restored)", "start: running (restored)")
    t.eq(qemu_status(d, "ms1"), "running", "start: QEMU runs the guest")
    t.ok(wait_for(lambda: g.last_pass() > passes, 30) and g.readies() == readies,
         "start: the guest goes on counting passes without rebooting", g.serial()[-300:])
    t.ok(not os.path.exists(managed), "start removed the managed save image")
    t.eq(dominfo(d, "ms1").get("Managed save"), "no", "dominfo: Managed save: no")
    info = jobinfo(d, "ms1", "--completed")
    t.eq(info.get("Operation"), "Restore",
         "domjobinfo --completed after a start from the image: restore")

    # managedsave-remove: the next start boots
    r = d.virsh("managedsave", "ms1", timeout=300)
    t.ok(r.rc == 0 and os.path.exists(managed), "managedsave again", r)
    r = d.virsh("managedsave-remove", "ms1")
    t.ok(r.rc == 0 and not os.path.exists(managed), "managedsave-remove removes the image", r)
    t.eq(dominfo(d, "ms1").get("Managed save"), "no", "after managedsave-remove: Managed save: no")
    readies = g.readies()
    r = d.virsh("start", "ms1")
    t.ok(r.rc == 0 and domstate(d, "ms1") == "running (booted)",
         "after managedsave-remove start boots", r)
    t.ok(wait_for(lambda: g.readies() == readies + 1, 30), "the guest booted afresh")

    # a managed save image QEMU cannot load: start fails saying so, the
    # image is kept; start --force-boot discards it
    r = d.virsh("managedsave", "ms1", timeout=300)
    t.ok(r.rc == 0 and os.path.exists(managed), "managedsave once more", r)
    h = header(managed)
    with open(managed, "r+b") as f:
        f.seek(h["offset"])
        f.write(os.urandom(4096))
    r = d.virsh("start", "ms1", timeout=300)
    t.ok(r.rc != 0 and "managed save image (kept" in r.err and "--force-boot" in r.err and
         "could not load the save image" in r.err,
         "start from a corrupt managed save image fails, says the image is kept and why", r)
    t.ok(os.path.exists(managed) and dominfo(d, "ms1").get("Managed save") == "yes",
         "the corrupt managed save image is kept")
    t.eq(domstate(d, "ms1"), "shut off (failed)", "the failed start left ms1 shut off (failed)")
    t.eq(qemu_procs(d, "ms1"), [], "the failed start left no QEMU")
    readies = g.readies()
    r = d.virsh("start", "--force-boot", "ms1")
    t.ok(r.rc == 0 and domstate(d, "ms1") == "running (booted)", "start --force-boot boots", r)
    t.ok(not os.path.exists(managed), "start --force-boot discarded the image")
    t.eq(dominfo(d, "ms1").get("Managed save"), "no", "after --force-boot: Managed save: no")
    t.ok(wait_for(lambda: g.readies() == readies + 1, 30), "the guest booted afresh")

    # undefine --managed-save
    r = d.virsh("managedsave", "ms1", timeout=300)
    t.ok(r.rc == 0, "managedsave before undefine", r)
    r = d.virsh("undefine", "--managed-save", "ms1")
    t.ok(r.rc == 0, "undefine --managed-save", r)
    t.ok(not os.path.exists(managed), "undefine --managed-save removed the image")
    t.ok("ms1" not in d.virsh("list", "--all", "--name").out.split(), "ms1 is gone")


def test_bad_input(d, kernel, realdir):
    # a good image of a transient guest: after the save the guest is gone
    Guest(d, "bad1", kernel, mem_mib=64, dirty_mib=16, transient=True)
    good = "%s/bad1.save" % OUTDIR
    good_real = os.path.join(realdir, "bad1.save")
    r = d.virsh("save", "bad1", good, timeout=300)
    t.ok(r.rc == 0, "save of a transient guest", r)
    t.ok("bad1" not in d.virsh("list", "--all", "--name").out.split(),
         "a saved transient guest is gone")
    with open(good_real, "rb") as f:
        data = f.read()
    h = header(good_real)

    def refused(name, path, code, words):
        """Restore of @path fails with @code and a message with @words;
        nothing is left behind."""
        err = restore_error(d, path)
        t.ok(err is not None and err[0] == code and all(w in err[1] for w in words),
             "%s: refused (%s)" % (name, ", ".join(words)), err)
        t.ok("bad1" not in d.virsh("list", "--all", "--name").out.split() and
             d.virsh("domstate", "bad1").rc != 0,
             "%s: no domain is left defined" % name)
        t.eq(qemu_procs(d, "bad1"), [], "%s: no QEMU process is left" % name)

    def write(name, content):
        with open(os.path.join(realdir, name), "wb") as f:
            f.write(content)
        return "%s/%s" % (OUTDIR, name)

    p = write("trunc.save", data[:len(data) // 2])
    refused("truncated image", p, libvirt.VIR_ERR_OPERATION_FAILED,
            ["trunc.save", "is truncated", "%d bytes" % (len(data) // 2)])
    p = write("short.save", data[:40])
    refused("image cut inside its header", p, libvirt.VIR_ERR_OPERATION_FAILED,
            ["short.save", "is truncated"])
    p = write("random.save", os.urandom(1 << 20))
    refused("random bytes", p, libvirt.VIR_ERR_OPERATION_FAILED,
            ["random.save", "is not a Tandem save image"])
    p = write("libvirt.save", b"LibvirtQemudSave" + os.urandom(65536))
    refused("a stock libvirt save image", p, libvirt.VIR_ERR_OPERATION_FAILED,
            ["libvirt.save", "is not a Tandem save image"])
    p = write("incomplete.save", data[:48] + b"\0" * 8 + data[56:])
    refused("image whose save did not finish", p, libvirt.VIR_ERR_OPERATION_FAILED,
            ["incomplete.save", "incomplete"])
    p = write("v2.save", data[:16] + struct.pack("<I", 2) + data[20:])
    refused("image of another version", p, libvirt.VIR_ERR_OPERATION_INVALID,
            ["v2.save", "version 2"])
    # a valid header over a stream QEMU cannot load: QEMU is started,
    # fails, and is gone again
    junk = bytearray(data)
    junk[h["offset"]:h["offset"] + 4096] = os.urandom(4096)
    p = write("corrupt.save", bytes(junk))
    refused("corrupt QEMU stream", p, libvirt.VIR_ERR_OPERATION_FAILED,
            ["could not load the save image"])
    refused("nonexistent path", "%s/nonexistent.save" % OUTDIR, libvirt.VIR_ERR_SYSTEM_ERROR,
            ["cannot open save image", "nonexistent.save", "No such file or directory"])
    refused("a directory", OUTDIR, libvirt.VIR_ERR_OPERATION_FAILED,
            ["not a regular file"])
    r = d.virsh("restore", os.path.join(OUTDIR, "random.save"))
    t.ok(r.rc != 0 and "is not a Tandem save image" in r.err, "virsh restore shows the reason", r)
    r = d.virsh("save-image-dumpxml", os.path.join(OUTDIR, "trunc.save"))
    t.ok(r.rc != 0 and "is truncated" in r.err, "save-image-dumpxml of a truncated image", r)

    # the good image still restores after all that
    r = d.virsh("restore", good, timeout=300)
    t.ok(r.rc == 0 and domstate(d, "bad1") == "running (restored)",
         "the good image restores (transient guest is back)", r)

    # save into a directory that does not exist, onto a directory
    pid = qemu_pid(d, "bad1")
    r = d.virsh("save", "bad1", "/nonexistent-dir/bad1.save")
    t.ok(r.rc != 0 and "/nonexistent-dir/bad1.save" in r.err and
         "No such file or directory" in r.err,
         "save into a missing directory: error naming the path", r)
    t.eq(domstate(d, "bad1"), "running (restored)", "after the failed save: the guest still runs")
    t.eq(qemu_status(d, "bad1"), "running", "after the failed save: QEMU runs the guest")
    t.eq(qemu_pid(d, "bad1"), pid, "after the failed save: the same QEMU")
    r = d.virsh("save", "bad1", OUTDIR)
    t.ok(r.rc != 0 and "is a directory" in r.err, "save onto a directory is refused", r)
    t.eq(qemu_status(d, "bad1"), "running", "the guest still runs")
    r = d.virsh("managedsave", "bad1")
    t.ok(r.rc != 0 and "transient" in r.err, "managedsave of a transient guest is refused", r)
    d.virsh("destroy", "bad1")


def test_concurrent(d, kernel, realdir):
    g = Guest(d, "big1", kernel, mem_mib=256, dirty_mib=200)
    img = "%s/big1.save" % OUTDIR
    img_real = os.path.join(realdir, "big1.save")
    r = d.virsh("start", "big1")
    t.ok(r.rc == 0 and g.wait_up(90), "big1 starts and dirties 200 MiB", r)
    # about 200 MiB at 40 MiB/s: a save of some seconds
    r = d.virsh("migrate-setspeed", "big1", "40")
    t.ok(r.rc == 0, "migrate-setspeed 40 MiB/s (applies to saves)", r)

    prober = Prober(d.uri, "big1")
    prober.start()
    start = time.time()
    r = d.virsh("save", "big1", img, timeout=300)
    took = time.time() - start
    prober.stop()
    t.ok(r.rc == 0, "save of 200 MiB of dirtied memory", r)
    print("# save took %.1f s" % took)
    t.eq(prober.failures, [], "no query failed during the save")
    print("# worst query latency during the save: %.3f s (%d calls)" % (prober.worst, prober.count))
    saves = [j for j in prober.jobs if j[0] == libvirt.VIR_DOMAIN_JOB_OPERATION_SAVE]
    t.ok(any((j[2] or 0) >= 200 * 2**20 for j in saves),
         "domjobinfo during the save: operation save with the data total", prober.jobs[:3])
    t.ok(len(set(j[1] for j in saves)) >= 2,
         "domjobinfo during the save: the data processed moves",
         sorted(set(j[1] for j in saves))[:10])
    t.ok((libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_SAVE) in prober.states,
         "the guest was paused (saving) during the save", prober.states)
    t.ok(header(img_real)["length"] >= 200 * 2**20, "the image holds the dirtied memory")

    prober = Prober(d.uri, "big1")
    prober.start()
    r = d.virsh("restore", img, timeout=300)
    prober.stop()
    t.ok(r.rc == 0 and domstate(d, "big1") == "running (restored)", "restore of the big image", r)
    t.eq(prober.failures, [], "no query failed during the restore")
    print("# worst query latency during the restore: %.3f s (%d calls)" %
          (prober.worst, prober.count))
    os.unlink(img_real)

    # domjobabort while the save writes: the guest runs on, nothing is left
    # (the bandwidth limit is a property of the domain: still 40 MiB/s)
    pid = qemu_pid(d, "big1")
    passes = g.last_pass()
    p = subprocess.Popen(["virsh", "-q", "-c", d.uri, "save", "big1", img],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = wait_for(lambda: jobinfo(d, "big1").get("Operation") == "Save" and
                    not jobinfo(d, "big1").get("Data processed", "0").startswith("0"), 60)
    t.ok(seen, "domjobinfo shows the save writing")
    r = d.virsh("domjobabort", "big1")
    t.ok(r.rc == 0, "domjobabort during the save", r)
    out, err = p.communicate(timeout=300)
    t.ok(p.returncode != 0 and "canceled by client" in err, "the save fails: canceled by client",
         "rc=%d\n%s" % (p.returncode, err))
    t.eq(domstate(d, "big1"), "running (save canceled)", "after the abort: running (save canceled)")
    t.eq(qemu_status(d, "big1"), "running", "after the abort: QEMU runs the guest")
    t.eq(qemu_pid(d, "big1"), pid, "after the abort: the same QEMU")
    t.ok(wait_for(lambda: g.last_pass() > passes, 30), "after the abort: the guest counts on")
    t.ok(not os.path.exists(img_real), "after the abort: no image")
    t.eq(leftovers(realdir, "big1.save"), [], "after the abort: no temporary file")
    info = jobinfo(d, "big1", "--completed")
    t.eq(info.get("Job type"), "Cancelled", "domjobinfo --completed: cancelled")

    # the daemon is killed while the save writes: after its restart the
    # interrupted save is cancelled, the guest runs on, no file is left
    passes = g.last_pass()
    p = subprocess.Popen(["virsh", "-q", "-c", d.uri, "save", "big1", img],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = wait_for(lambda: not jobinfo(d, "big1").get("Data processed", "0").startswith("0"),
                    60)
    t.ok(seen, "a second save is writing")
    d.stop(sig=signal.SIGKILL)
    p.communicate(timeout=60)
    t.ok(p.returncode != 0, "the client of the save sees it fail")
    d.start()
    t.ok(wait_for(lambda: domstate(d, "big1") == "running (save canceled)", 30),
         "after a daemon restart: the interrupted save is cancelled, running (save canceled)",
         domstate(d, "big1"))
    t.eq(qemu_status(d, "big1"), "running", "after a daemon restart: QEMU runs the guest")
    t.eq(qemu_pid(d, "big1"), pid, "after a daemon restart: the same QEMU")
    t.ok(wait_for(lambda: g.last_pass() > passes, 30),
         "after a daemon restart: the guest counts on")
    t.ok(not os.path.exists(img_real), "after a daemon restart: no image")
    t.eq(leftovers(realdir, "big1.save"), [], "after a daemon restart: no temporary file")
    t.eq(jobinfo(d, "big1").get("Job type"), "None", "after a daemon restart: no job runs")

    # destroy during a save: at once, the save fails, nothing is left
    r = d.virsh("migrate-setspeed", "big1", "40")
    p = subprocess.Popen(["virsh", "-q", "-c", d.uri, "save", "big1", img],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = wait_for(lambda: not jobinfo(d, "big1").get("Data processed", "0").startswith("0"),
                    60)
    t.ok(seen, "a third save is writing")
    r = d.virsh("destroy", "big1")
    t.ok(r.rc == 0, "destroy during the save", r)
    out, err = p.communicate(timeout=120)
    t.ok(p.returncode != 0, "the save fails", "rc=%d\n%s" % (p.returncode, err))
    t.eq(domstate(d, "big1"), "shut off (destroyed)", "after destroy: shut off (destroyed)")
    t.ok(wait_for(lambda: not alive(pid), 20), "after destroy: QEMU is gone")
    t.ok(not os.path.exists(img_real), "after destroy: no image")
    t.eq(leftovers(realdir, "big1.save"), [], "after destroy: no temporary file")
    r = d.virsh("start", "big1")
    t.ok(r.rc == 0 and domstate(d, "big1") == "running (booted)",
         "big1 starts again after all that", r)
    d.virsh("destroy", "big1")


QEMU_UID, QEMU_GID = qemu_user()
d = Daemon("save")
try:
    paths = guest_paths()
    realdir = d.private(OUTDIR)
    os.makedirs(realdir, exist_ok=True)
    os.chmod(realdir, 0o755)
    d.start()
    for name, fn, args in [("save and restore", test_save_restore, (d, paths["DIRTY"], realdir)),
                           ("managed save", test_managed_save, (d, paths["DIRTY"])),
                           ("bad input", test_bad_input, (d, paths["DIRTY"], realdir)),
                           ("concurrent queries and abort", test_concurrent,
                            (d, paths["DIRTY"], realdir))]:
        t.run(name, fn, *args)
    t.ok(d.alive(), "the daemon is alive at the end")
except Exception as ex:
    t.ok(False, "save test setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    rundir = d.private("/run/libvirt/qemu")
    for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
        if n.endswith(".pid"):
            pid = qemu_pid(d, n[:-4])
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
    d.cleanup()
t.done()
