# test_security.py: DAC labelling (src/qemu/qemu_security.c).  The system
# daemon runs QEMU as libvirt-qemu and gives it the files it opens by path
# while it runs: a root-owned 0600 image works, is QEMU's user's while the
# domain runs and root's again (same mode) after; a read-only image shared
# by two domains goes back only when both stopped; a serial log in a
# root-owned directory is created for QEMU and root's afterwards; a daemon
# restart in between changes nothing; relabel='no', <seclabel type='none'/>
# and dynamic_ownership = 0 leave files alone; a failed start leaves
# nothing labelled; a medium change swaps the owners of the media; save
# gives back and restore labels again; after a live migration between two
# daemons the destination holds the shared image; the unprivileged driver
# changes nothing.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import grp
import os
import pwd
import shutil
import signal
import textwrap

from tandemtest import TAP, DRIVER_DIR, Daemon, run, tmpdir, write_tmp, wait_for

t = TAP()
XATTR = "trusted.tandem.dac"
QEMU_PW = pwd.getpwnam("libvirt-qemu")
# the group is qemu.conf's default, the libvirt-qemu group: not always the
# user's primary group (Debian's libvirt-daemon-system makes that kvm)
QEMU_UID, QEMU_GID = QEMU_PW.pw_uid, grp.getgrnam("libvirt-qemu").gr_gid

# a root-owned directory QEMU's user may traverse but not write
work = tmpdir("security")
os.chmod(work, 0o755)


def xml(name, devices="", extra=""):
    return textwrap.dedent("""\
        <domain type='qemu'>
          <name>%s</name>
          <memory unit='MiB'>64</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          %s
          <devices>%s</devices>
        </domain>
        """) % (name, extra, devices)


def disk(path, dev="vda", readonly=False, seclabel=""):
    return """
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='%s'>%s</source>
      <target dev='%s' bus='virtio'/>%s
    </disk>""" % (path, seclabel, dev, "<readonly/>" if readonly else "")


def serial_file(path):
    return """
    <serial type='file'><source path='%s'/><target port='0'/></serial>""" % path


def define(d, name, devices="", extra=""):
    path = write_tmp(xml(name, devices, extra))
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def image(name, mode=0o600):
    path = os.path.join(work, name)
    r = run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"])
    if r.rc != 0:
        raise RuntimeError("qemu-img create: %s" % r)
    os.chown(path, 0, 0)
    os.chmod(path, mode)
    return path


def owner(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def record(path):
    try:
        return os.getxattr(path, XATTR).decode()
    except OSError:
        return None


def refs(path):
    rec = record(path)
    return int(rec.split(":")[2]) if rec else 0


def domstate(d, name):
    return d.virsh("domstate", name).out.strip()


def test_private_image(d):
    img = image("private.qcow2")
    t.ok(define(d, "sec-priv", disk(img)).rc == 0, "define a guest with a root-owned 0600 image")
    r = d.virsh("start", "sec-priv")
    t.ok(r.rc == 0, "it starts (QEMU runs as libvirt-qemu)", "%s\n%s" % (r, d.log_tail()))
    t.eq(owner(img)[:2], (QEMU_UID, QEMU_GID), "while it runs the image is libvirt-qemu's")
    rec = record(img) or ""
    t.ok(rec.startswith("0:0:1:"), "the original owner is remembered on the file", rec)
    r = d.virsh("domblkinfo", "sec-priv", "vda")
    t.ok(r.rc == 0 and "Capacity" in r.out, "QEMU has the image open", r)
    t.ok(d.virsh("destroy", "sec-priv").rc == 0, "destroy")
    t.eq(owner(img), (0, 0, 0o600), "after destroy: root's again, mode 0600")
    t.eq(record(img), None, "and the record is gone")

    # a shutdown by QEMU itself (crash path): kill QEMU behind the driver's back
    d.virsh("start", "sec-priv")
    pid = int(open(d.private("/run/libvirt/qemu/sec-priv.pid")).read())
    os.kill(pid, signal.SIGKILL)
    ok = wait_for(lambda: domstate(d, "sec-priv") == "shut off")
    t.ok(ok, "QEMU killed: the domain is shut off")
    t.eq(owner(img), (0, 0, 0o600), "after a crash: root's again")
    d.virsh("undefine", "sec-priv")


def test_shared_readonly(d):
    img = image("shared.qcow2")
    for n in ("sec-ro1", "sec-ro2"):
        t.ok(define(d, n, disk(img, readonly=True)).rc == 0, "define %s with a shared read-only image" % n)
        r = d.virsh("start", n)
        t.ok(r.rc == 0, "start %s" % n, "%s\n%s" % (r, d.log_tail()))
    t.eq(owner(img)[:2], (QEMU_UID, QEMU_GID), "the shared image is libvirt-qemu's")
    t.eq(refs(img), 2, "two references")
    d.virsh("destroy", "sec-ro1")
    t.eq(owner(img)[:2], (QEMU_UID, QEMU_GID), "one domain stopped: still libvirt-qemu's")
    t.eq(refs(img), 1, "one reference left")
    d.virsh("destroy", "sec-ro2")
    t.eq(owner(img), (0, 0, 0o600), "both stopped: root's again, mode 0600")
    t.eq(record(img), None, "no record left")
    for n in ("sec-ro1", "sec-ro2"):
        d.virsh("undefine", n)


def test_serial_file(d):
    outdir = os.path.join(work, "out")
    os.makedirs(outdir)
    os.chmod(outdir, 0o755)          # root's: QEMU's user cannot create files here
    log = os.path.join(outdir, "serial.log")
    t.ok(define(d, "sec-serial", serial_file(log)).rc == 0, "define a guest with a serial file output")
    r = d.virsh("start", "sec-serial")
    t.ok(r.rc == 0, "it starts with the log in a root-owned directory", "%s\n%s" % (r, d.log_tail()))
    t.ok(os.path.exists(log), "the log file exists")
    if os.path.exists(log):
        t.eq(owner(log)[:2], (QEMU_UID, QEMU_GID), "QEMU's user owns it while it runs")
    d.virsh("destroy", "sec-serial")
    t.ok(os.path.exists(log), "the log file is still there after destroy")
    if os.path.exists(log):
        t.eq(owner(log)[:2], (0, 0), "and root's")
        with open(log, "rb") as f:
            f.read()
        t.ok(True, "root reads it")
        t.eq(record(log), None, "no record left on it")

    # an existing log of another owner gets that owner back
    os.chown(log, 1, 1)
    os.chmod(log, 0o640)
    d.virsh("start", "sec-serial")
    t.eq(owner(log)[:2], (QEMU_UID, QEMU_GID), "an existing log: QEMU's user's while it runs")
    d.virsh("destroy", "sec-serial")
    t.eq(owner(log), (1, 1, 0o640), "its owner and mode are back after")
    d.virsh("undefine", "sec-serial")


def test_restart(d):
    img = image("restart.qcow2")
    define(d, "sec-restart", disk(img))
    r = d.virsh("start", "sec-restart")
    t.ok(r.rc == 0, "start before a daemon restart", r)
    d.restart()
    t.eq(domstate(d, "sec-restart"), "running", "running after the daemon restarted")
    t.eq(owner(img)[:2], (QEMU_UID, QEMU_GID), "the image is still libvirt-qemu's")
    d.virsh("destroy", "sec-restart")
    t.eq(owner(img), (0, 0, 0o600), "destroy after the restart gives it back")
    t.eq(record(img), None, "no record left")
    d.virsh("undefine", "sec-restart")


def test_no_relabel(d):
    img = image("norelabel.qcow2")
    define(d, "sec-norelabel", disk(img, seclabel="<seclabel model='dac' relabel='no'/>"))
    r = d.virsh("start", "sec-norelabel")
    t.ok(r.rc != 0, "disk seclabel relabel='no' on a root-only image: start fails", r)
    t.ok(img in r.err and "Permission denied" in r.err,
         "with QEMU's error naming the image", r.err)
    t.eq(owner(img), (0, 0, 0o600), "the image was left alone")
    t.eq(record(img), None, "not even a record")

    os.chmod(img, 0o644)
    d.virsh("undefine", "sec-norelabel")
    define(d, "sec-norelabel", disk(img, readonly=True,
                                    seclabel="<seclabel model='dac' relabel='no'/>"))
    r = d.virsh("start", "sec-norelabel")
    t.ok(r.rc == 0, "a readable image with relabel='no' works", "%s\n%s" % (r, d.log_tail()))
    t.eq(owner(img), (0, 0, 0o644), "and stays root's while it runs")
    d.virsh("destroy", "sec-norelabel")
    d.virsh("undefine", "sec-norelabel")

    for label in ("<seclabel type='none' model='dac'/>", "<seclabel type='none'/>"):
        img2 = image("none.qcow2", 0o644)
        r = define(d, "sec-none", disk(img2, readonly=True), extra=label)
        t.ok(r.rc == 0, "define with %s" % label, r)
        r = d.virsh("start", "sec-none")
        t.ok(r.rc == 0, "start with %s" % label, "%s\n%s" % (r, d.log_tail()))
        t.eq((owner(img2), record(img2)), ((0, 0, 0o644), None),
             "%s: the image is left alone" % label)
        d.virsh("destroy", "sec-none")
        d.virsh("undefine", "sec-none")
        os.unlink(img2)


def test_rollback(d):
    img = image("rollback.qcow2")
    bad = os.path.join(work, "no-such-dir", "serial.log")
    define(d, "sec-rollback", disk(img) + serial_file(bad))
    r = d.virsh("start", "sec-rollback")
    t.ok(r.rc != 0, "a serial output that cannot be created: start fails", r)
    t.ok(bad in r.err, "the error names the file", r.err)
    t.eq(owner(img), (0, 0, 0o600), "the image labelled before it was given back")
    t.eq(record(img), None, "no record left")
    d.virsh("undefine", "sec-rollback")

    # a file root cannot chown (immutable): the error names it, the image
    # labelled before it is given back
    locked = image("immutable.qcow2")
    if run(["chattr", "+i", locked]).rc != 0:
        t.skip("an image that cannot be chowned", "chattr +i not supported here")
        return
    try:
        define(d, "sec-rollback", disk(img) + disk(locked, dev="vdb"))
        r = d.virsh("start", "sec-rollback")
        t.ok(r.rc != 0 and locked in r.err, "an immutable image: start fails naming it", r)
        t.eq((owner(img), record(img)), ((0, 0, 0o600), None),
             "the other image was given back")
        t.eq((owner(locked), record(locked)), ((0, 0, 0o600), None),
             "the immutable image is untouched")
    finally:
        run(["chattr", "-i", locked])
        d.virsh("undefine", "sec-rollback")


def test_change_media(d):
    isos = []
    for n, fill in (("m1.iso", b"A"), ("m2.iso", b"B")):
        p = os.path.join(work, n)
        with open(p, "wb") as f:
            f.write(fill * (1024 * 1024))
        os.chmod(p, 0o600)
        isos.append(p)
    cdrom = """
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide'/><readonly/>
    </disk>"""
    define(d, "sec-media", cdrom)
    r = d.virsh("start", "sec-media")
    t.ok(r.rc == 0, "start with an empty cdrom", r)
    r = d.virsh("change-media", "sec-media", "hdc", isos[0], "--insert", "--live")
    t.ok(r.rc == 0, "change-media --insert a root-only medium", "%s\n%s" % (r, d.log_tail()))
    t.eq(owner(isos[0])[:2], (QEMU_UID, QEMU_GID), "the inserted medium is libvirt-qemu's")
    r = d.virsh("change-media", "sec-media", "hdc", isos[1], "--update", "--live")
    t.ok(r.rc == 0, "change-media --update to another root-only medium", r)
    t.eq((owner(isos[0]), owner(isos[1])[:2]), ((0, 0, 0o600), (QEMU_UID, QEMU_GID)),
         "the old medium is root's again, the new one libvirt-qemu's")
    r = d.virsh("change-media", "sec-media", "hdc", "--eject", "--live")
    t.ok(r.rc == 0, "change-media --eject", r)
    t.eq(owner(isos[1]), (0, 0, 0o600), "the ejected medium is root's again")
    d.virsh("change-media", "sec-media", "hdc", isos[0], "--insert", "--live")
    d.virsh("destroy", "sec-media")
    t.eq((owner(isos[0]), record(isos[0])), ((0, 0, 0o600), None),
         "a medium inserted at destroy time is given back")
    d.virsh("undefine", "sec-media")


def test_save_restore(d):
    img = image("save.qcow2")
    saved = os.path.join(work, "sec-save.sav")
    define(d, "sec-save", disk(img))
    r = d.virsh("start", "sec-save")
    t.ok(r.rc == 0, "start a guest to save", r)
    r = d.virsh("save", "sec-save", saved, timeout=300)
    t.ok(r.rc == 0, "save", "%s\n%s" % (r, d.log_tail()))
    t.eq((owner(img), record(img)), ((0, 0, 0o600), None), "saved: the image is root's again")
    r = d.virsh("restore", saved, timeout=300)
    t.ok(r.rc == 0, "restore", "%s\n%s" % (r, d.log_tail()))
    t.eq(owner(img)[:2], (QEMU_UID, QEMU_GID), "restored: the image is libvirt-qemu's")
    d.virsh("destroy", "sec-save")
    t.eq(owner(img), (0, 0, 0o600), "destroyed: root's again")
    d.virsh("undefine", "sec-save")


def test_migration(a):
    b = Daemon("security-dst")
    try:
        b.start()
        img = image("migrate.qcow2")
        define(a, "sec-mig", disk(img))
        r = a.virsh("start", "sec-mig")
        t.ok(r.rc == 0, "start a guest to migrate", r)
        r = a.virsh("migrate", "--live", "sec-mig", b.uri, "--migrateuri", "tcp://127.0.0.1",
                    "--listen-address", "127.0.0.1", timeout=300)
        t.ok(r.rc == 0, "live migration to a second daemon (shared image)",
             "%s\nA:\n%s\nB:\n%s" % (r, a.log_tail(), b.log_tail()))
        t.eq(b.virsh("domstate", "sec-mig").out.strip(), "running", "running on the destination")
        t.eq((owner(img)[:2], refs(img)), ((QEMU_UID, QEMU_GID), 1),
             "the destination holds the image, the source let go of it")
        b.virsh("destroy", "sec-mig")
        t.eq((owner(img), record(img)), ((0, 0, 0o600), None),
             "destroyed on the destination: root's again")
        a.virsh("undefine", "sec-mig")
    finally:
        for pid in qemu_pids(b):
            os.kill(pid, signal.SIGKILL)
        b.cleanup()


def test_dynamic_ownership_off():
    d2 = Daemon("security-off", qemu_conf="dynamic_ownership = 0\n")
    try:
        d2.start()
        img = image("off.qcow2", 0o644)
        define(d2, "sec-off", disk(img, readonly=True))
        r = d2.virsh("start", "sec-off")
        t.ok(r.rc == 0, "dynamic_ownership = 0: a readable image works", "%s\n%s" % (r, d2.log_tail()))
        t.eq((owner(img), record(img)), ((0, 0, 0o644), None),
             "dynamic_ownership = 0: the image is left alone")
        d2.virsh("destroy", "sec-off")
    finally:
        d2.cleanup()


def test_session():
    user = "nobody"
    pw = pwd.getpwnam(user)
    root = tmpdir("security-embed")
    os.chmod(root, 0o755)
    os.chown(root, pw.pw_uid, pw.pw_gid)
    img = os.path.join(root, "session.qcow2")
    run(["qemu-img", "create", "-q", "-f", "qcow2", img, "16M"])
    os.chown(img, pw.pw_uid, pw.pw_gid)
    os.chmod(img, 0o600)
    as_user = ["setpriv", "--reuid=%s" % user, "--regid=%d" % pw.pw_gid, "--clear-groups"]
    env = dict(os.environ, HOME=root, LIBVIRT_DRIVER_DIR=DRIVER_DIR)
    path = os.path.join(root, "dom.xml")
    with open(path, "w") as f:
        f.write(xml("sec-session", disk(img)))
    os.chmod(path, 0o644)
    uri = "qemu:///embed?root=%s/embed" % root
    try:
        r = run(as_user + ["virsh", "-q", "-c", uri,
                           "define %s; start sec-session; domstate sec-session; destroy sec-session"
                           % path], env=env, timeout=120)
        t.ok(r.rc == 0 and "running" in r.out, "unprivileged embedded driver runs the guest", r)
        t.eq((owner(img), record(img)), ((pw.pw_uid, pw.pw_gid, 0o600), None),
             "unprivileged: the image is left alone")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def qemu_pids(d):
    rundir = d.private("/run/libvirt/qemu")
    pids = []
    for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
        if n.endswith(".pid"):
            try:
                pid = int(open(os.path.join(rundir, n)).read())
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"qemu" in f.read():
                        pids.append(pid)
            except (OSError, ValueError):
                pass
    return pids


d = Daemon("security")
try:
    d.start()
    for name, fn in [("private image", test_private_image),
                     ("shared read-only image", test_shared_readonly),
                     ("serial file", test_serial_file),
                     ("daemon restart", test_restart),
                     ("relabel='no'", test_no_relabel),
                     ("rollback", test_rollback),
                     ("change-media", test_change_media),
                     ("save and restore", test_save_restore),
                     ("migration", test_migration)]:
        t.run(name, fn, d)
    t.ok(d.alive(), "daemon alive at the end")
except Exception as ex:
    t.ok(False, "security setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    for pid in qemu_pids(d):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    d.cleanup()
t.run("dynamic_ownership = 0", test_dynamic_ownership_off)
t.run("session", test_session)
shutil.rmtree(work, ignore_errors=True)
t.done()
