# test_storage_migration.py: migration with non-shared storage
# (virsh migrate --copy-storage-all / --copy-storage-inc) between two real
# libvirtd daemons running Tandem.  The two "hosts" share this machine's
# file system, so each side's guest uses its own image: the destination
# definition (--xml) points at a file the test created beforehand.
# Covered: --copy-storage-all client-managed (the destination image equals
# the source image, byte for byte as the guest sees it, checked by
# qemu-img compare once the source QEMU is gone), and back peer to peer
# with --persistent --undefinesource; --copy-storage-inc of a qcow2 overlay
# over a base both hosts share (only the overlay's data travels);
# --migrate-disks (one disk copied, the other shared);
# domjobinfo with the disk progress during a throttled copy,
# migrate-setspeed then (the mirrors' speed changes too), domjobabort
# then (the source keeps running, no mirror job or NBD node is left in its
# QEMU, nothing on the destination), the same in the RAM phase after the
# copy; the destination's QEMU killed during the copy; the source daemon
# killed during the copy (after its restart the guest runs there, no job
# or node left); the destination daemon killed and restarted during the
# copy (its recovery destroys the incoming guest);
# an image the destination created for the copy removed whenever the
# migration fails (abort, destination QEMU killed, either daemon restarted);
# a missing destination image created (--copy-storage-all) or refused
# naming it (--copy-storage-inc); --postcopy with a storage copy refused.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import shutil
import signal

from tandemtest import (
    MIG_ARGS, migrate_bg,
    guest_paths, TAP, Daemon, run, tmpdir, write_tmp, rss_kib, domstate, qemu_pid, alive, wait_for,
    jobinfo)

t = TAP()
MIB = 1 << 20


def disk_xml(name, kernel, image, fmt, uuid=None, extra="", dirty_mib=4, mem_mib=64):
    return """<domain type='qemu'>
  <name>%s</name>%s
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=%d quiet</cmdline></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='%s'/>
      <source file='%s'/><target dev='vda' bus='virtio'/>
    </disk>%s
    <serial type='pty'/><console type='pty'/>
  </devices>
</domain>
""" % (name, "<uuid>%s</uuid>" % uuid if uuid else "", mem_mib, kernel, dirty_mib, fmt,
       image, extra)


def shared_disk(image):
    """A second disk (vdb) both hosts use: shared storage."""
    return """
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%s'/><target dev='vdb' bus='virtio'/>
    </disk>""" % image


def dest_xml(d, name, kernel, image, fmt, extra="", dirty_mib=4, mem_mib=64):
    """The definition of @name on @d with another image: for --xml."""
    uuid = d.virsh("domuuid", name).out.strip()
    return write_tmp(disk_xml(name, kernel, image, fmt, uuid, extra, dirty_mib, mem_mib))


def virsh_file(d, cmd, xml, *args):
    path = write_tmp(xml)
    try:
        return d.virsh(cmd, path, *args)
    finally:
        os.unlink(path)


def qmp(d, name, cmd, args=None):
    c = {"execute": cmd}
    if args:
        c["arguments"] = args
    r = d.virsh("qemu-monitor-command", name, json.dumps(c))
    if r.rc != 0:
        return None
    return json.loads(r.out).get("return")


def migration_leftovers(d, name):
    """Our NBD client nodes and mirror jobs still in @name's QEMU on @d."""
    nodes = qmp(d, name, "query-named-block-nodes", {"flat": True})
    jobs = qmp(d, name, "query-jobs")
    if nodes is None or jobs is None:
        return "query failed"
    return ([n["node-name"] for n in nodes if n.get("node-name", "").startswith("migration-")] +
            [j["id"] for j in jobs])


def img(*args):
    return run(["qemu-img"] + list(args), timeout=120)


def qemu_io(path, fmt, *cmds):
    argv = ["qemu-io", "-f", fmt]
    for c in cmds:
        argv += ["-c", c]
    return run(argv + [path], timeout=120)


def compare(a, b):
    r = img("compare", a, b)
    return r.rc == 0 and "identical" in r.out, r


def names(d):
    return d.virsh("list", "--all", "--name").out.split()


def test_copy_all(a, b, kernel, work):
    src = os.path.join(work, "all-src.img")
    dst = os.path.join(work, "all-dst.img")
    back = os.path.join(work, "all-back.img")
    img("create", "-f", "raw", src, "24M")
    r = qemu_io(src, "raw", "write -P 0xab 0 1M", "write -P 0x5c 5M 3M", "write -P 0x17 23M 1M")
    t.ok(r.rc == 0, "a pattern written into the source image", r)
    img("create", "-f", "raw", dst, "24M")
    img("create", "-f", "raw", back, "24M")
    same, _ = compare(src, dst)
    t.ok(not same, "before the migration the destination image differs")

    r = virsh_file(a, "define", disk_xml("sto1", kernel, src, "raw"))
    t.ok(r.rc == 0, "sto1 defined on A", r)
    r = a.virsh("start", "sto1")
    t.ok(r.rc == 0, "sto1 starts on A", r)
    pid_a = qemu_pid(a, "sto1")
    dxml = dest_xml(a, "sto1", kernel, dst, "raw")
    try:
        r = a.virsh("migrate", "--live", "--copy-storage-all", "--verbose", "--xml", dxml,
                    "sto1", b.uri, *MIG_ARGS, timeout=180)
    finally:
        os.unlink(dxml)
    t.ok(r.rc == 0, "virsh migrate --live --copy-storage-all (client-managed)", r)
    t.ok(domstate(b, "sto1").startswith("running"), "sto1 runs on B", domstate(b, "sto1"))
    t.ok(wait_for(lambda: not alive(pid_a), 20), "A's QEMU is gone")
    t.eq(domstate(a, "sto1"), "shut off (migrated)", "A: shut off (migrated)")
    same, r = compare(src, dst)
    t.ok(same, "qemu-img compare: B's image equals A's", r)
    t.eq(migration_leftovers(b, "sto1"), [], "B's QEMU has no NBD node or job left")
    r = qmp(b, "sto1", "query-block-exports")
    t.eq(r, [], "B's NBD server exports nothing any more")
    b_img = [x.get("inserted", {}).get("file") for x in qmp(b, "sto1", "query-block") or []]
    t.ok(dst in b_img, "B's guest uses B's image", b_img)

    # back, peer to peer, into a third image: persistent there, gone here
    pid_b = qemu_pid(b, "sto1")
    a.virsh("undefine", "sto1")
    dxml = dest_xml(b, "sto1", kernel, back, "raw")
    try:
        r = b.virsh("migrate", "--live", "--p2p", "--persistent", "--undefinesource",
                    "--copy-storage-all", "--xml", dxml, "sto1", a.uri, *MIG_ARGS,
                    timeout=180)
    finally:
        os.unlink(dxml)
    t.ok(r.rc == 0, "virsh migrate --p2p --persistent --undefinesource --copy-storage-all back",
         r)
    t.ok(domstate(a, "sto1").startswith("running"), "sto1 runs on A again", domstate(a, "sto1"))
    t.ok("sto1" in a.virsh("list", "--persistent", "--name").out.split(), "A: persistent")
    t.ok(wait_for(lambda: not alive(pid_b), 20) and "sto1" not in names(b),
         "B: QEMU gone, nothing left defined")
    same, r = compare(dst, back)
    t.ok(same, "qemu-img compare: the image copied back equals B's", r)
    a.virsh("destroy", "sto1")
    a.virsh("undefine", "sto1")


def test_copy_inc(a, b, kernel, work):
    base = os.path.join(work, "inc-base.qcow2")
    src = os.path.join(work, "inc-src.qcow2")
    dst = os.path.join(work, "inc-dst.qcow2")
    img("create", "-f", "qcow2", base, "32M")
    r = qemu_io(base, "qcow2", "write -P 0x11 0 16M")
    t.ok(r.rc == 0, "inc: 16 MiB of data in the shared base", r)
    img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", src)
    r = qemu_io(src, "qcow2", "write -P 0x22 2M 1M", "write -P 0x33 20M 2M")
    t.ok(r.rc == 0, "inc: 3 MiB written into the source overlay", r)
    img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", dst)
    for f in (base, src, dst):
        os.chmod(f, 0o644)

    virsh_file(a, "define", disk_xml("sto2", kernel, src, "qcow2"))
    r = a.virsh("start", "sto2")
    t.ok(r.rc == 0, "inc: sto2 (qcow2 overlay over the shared base) starts on A", r)
    pid_a = qemu_pid(a, "sto2")
    dxml = dest_xml(a, "sto2", kernel, dst, "qcow2")
    try:
        r = a.virsh("migrate", "--live", "--copy-storage-inc", "--xml", dxml,
                    "sto2", b.uri, *MIG_ARGS, timeout=180)
    finally:
        os.unlink(dxml)
    t.ok(r.rc == 0, "virsh migrate --live --copy-storage-inc", r)
    t.ok(domstate(b, "sto2").startswith("running"), "inc: sto2 runs on B", domstate(b, "sto2"))
    t.ok(wait_for(lambda: not alive(pid_a), 20), "inc: A's QEMU is gone")
    b.virsh("destroy", "sto2")
    same, r = compare(src, dst)
    t.ok(same, "inc: qemu-img compare: B's overlay (with the base) equals A's", r)
    r = img("map", "--output=json", dst)
    try:
        top = sum(e["length"] for e in json.loads(r.out)
                  if e.get("depth") == 0 and e.get("data"))
    except (ValueError, KeyError):
        top = -1
    t.ok(0 < top <= 4 * MIB,
         "inc: only the overlay's data was copied (%d bytes in B's overlay, base 16 MiB)" % top,
         r)
    a.virsh("undefine", "sto2")


def start_big(a, kernel, work, name, create_dst=True):
    """A guest with 32 MiB of disk data on A.  Without @create_dst the
    destination image does not exist: B's Prepare creates it, and must
    remove it when the migration fails."""
    src = os.path.join(work, "%s-src.img" % name)
    dst = os.path.join(work, "%s-dst.img" % name)
    img("create", "-f", "raw", src, "32M")
    qemu_io(src, "raw", "write -P 0x42 0 32M")
    if create_dst:
        img("create", "-f", "raw", dst, "32M")
    virsh_file(a, "define", disk_xml(name, kernel, src, "raw"))
    r = a.virsh("start", name)
    return r, dst


def start_copy(a, b, kernel, work, name, label):
    """A throttled (2 MiB/s: about 16 s) --copy-storage-all of start_big's
    guest @name to B, which creates the image; returns once domjobinfo on
    A shows the disk copy's progress.  (pid of A's QEMU, the destination
    image, the destination XML file, the virsh process, A's job info)"""
    r, dst = start_big(a, kernel, work, name, create_dst=False)
    t.ok(r.rc == 0, "%s: %s (32 MiB of data) starts on A" % (label, name), r)
    pid_a = qemu_pid(a, name)
    dxml = dest_xml(a, name, kernel, dst, "raw")
    p = migrate_bg(a, name, b, ["--copy-storage-all", "--bandwidth", "2", "--xml", dxml])
    got = {}

    def copying():
        got.update(jobinfo(a, name))
        return got.get("Job type") == "Unbounded" and \
            got.get("File processed", "0 B").split()[0] not in ("0", "0.000")
    t.ok(wait_for(copying, 30), "%s: domjobinfo on A shows the disk copy's progress" % label, got)
    return pid_a, dst, dxml, p, got


def test_abort(a, b, kernel, work):
    pid_a, dst, dxml, p, got = start_copy(a, b, kernel, work, "sto3", "abort")
    t.ok("File total" in got and got.get("File total", "").startswith("32.000 MiB"),
         "abort: the disk total is the disk's size", got)
    t.ok("sto3" in names(b), "abort: the incoming guest exists on B during the copy")
    t.ok(os.path.exists(dst), "abort: B created the missing image", dst)
    r = a.virsh("domjobabort", "sto3")
    t.ok(r.rc == 0, "abort: domjobabort during the storage copy", r)
    out, err = p.communicate(timeout=120)
    os.unlink(dxml)
    t.ok(p.returncode != 0 and "abort" in err.lower(), "abort: virsh migrate reports the abort",
         err)
    t.ok(domstate(a, "sto3").startswith("running") and qemu_pid(a, "sto3") == pid_a and
         alive(pid_a), "abort: the source keeps running, same QEMU", domstate(a, "sto3"))
    t.eq(migration_leftovers(a, "sto3"), [], "abort: no NBD node or mirror job left on A")
    t.ok(wait_for(lambda: "sto3" not in names(b), 20), "abort: nothing left on B")
    t.ok(not os.path.exists(dst), "abort: B removed the image it had created", dst)
    t.eq(jobinfo(a, "sto3").get("Job type"), "None", "abort: no job left on A")
    a.virsh("destroy", "sto3")
    a.virsh("undefine", "sto3")


def test_setspeed(a, b, kernel, work):
    """migrate-setspeed during the disk copy changes the mirrors' speed too
    (block-job-set-speed): unthrottled, the copy of 32 MiB started at
    1 MiB/s ends and the migration completes."""
    r, dst = start_big(a, kernel, work, "sto10")
    t.ok(r.rc == 0, "setspeed: sto10 starts on A", r)
    dxml = dest_xml(a, "sto10", kernel, dst, "raw")
    sent_before = a.log().count("cmd=block-job-set-speed\n")
    p = migrate_bg(a, "sto10", b, ["--copy-storage-all", "--bandwidth", "1", "--xml", dxml])
    got = {}

    def copying():
        got.update(jobinfo(a, "sto10"))
        return got.get("File processed", "0 B").split()[0] not in ("0", "0.000")
    t.ok(wait_for(copying, 30), "setspeed: the throttled disk copy runs", got)
    r = a.virsh("migrate-setspeed", "sto10", "0")
    t.ok(r.rc == 0, "setspeed: migrate-setspeed 0 during the disk copy", r)
    t.eq(a.log().count("cmd=block-job-set-speed\n") - sent_before, 1,
         "setspeed: the mirror's speed was changed (block-job-set-speed sent once)")
    out, err = p.communicate(timeout=180)
    os.unlink(dxml)
    t.ok(p.returncode == 0, "setspeed: the migration completes", err)
    t.ok(domstate(b, "sto10").startswith("running"), "setspeed: sto10 runs on B",
         domstate(b, "sto10"))
    b.virsh("destroy", "sto10")
    t.ok(wait_for(lambda: compare(os.path.join(work, "sto10-src.img"), dst)[0], 20),
         "setspeed: qemu-img compare: equal")
    a.virsh("undefine", "sto10")


def test_abort_ram_phase(a, b, kernel, work):
    """domjobabort after the disks are copied, while QEMU migrates the RAM
    (the mirrors keep the destination in sync): the mirrors are cancelled
    too."""
    src = os.path.join(work, "ram-src.img")
    dst = os.path.join(work, "ram-dst.img")
    img("create", "-f", "raw", src, "4M")
    qemu_io(src, "raw", "write -P 0x99 0 4M")
    img("create", "-f", "raw", dst, "4M")
    # the guest keeps dirtying 96 MiB: at 4 MiB/s its RAM never converges
    virsh_file(a, "define", disk_xml("sto7", kernel, src, "raw", dirty_mib=96, mem_mib=128))
    r = a.virsh("start", "sto7")
    pid_a = qemu_pid(a, "sto7")
    t.ok(r.rc == 0 and wait_for(lambda: rss_kib(pid_a) > 100 * 1024, 60),
         "RAM phase: sto7 starts on A and dirties its memory", r)
    dxml = dest_xml(a, "sto7", kernel, dst, "raw", dirty_mib=96, mem_mib=128)
    # 4 MiB of disk at 4 MiB/s, then the RAM at 4 MiB/s
    p = migrate_bg(a, "sto7", b, ["--copy-storage-all", "--bandwidth", "4", "--xml", dxml])
    got = {}

    def ram_moving():
        got.update(jobinfo(a, "sto7"))
        return got.get("Memory processed", "0 B").split()[0] not in ("0", "0.000")
    t.ok(wait_for(ram_moving, 60), "RAM phase: the RAM migration runs after the disk copy",
         got)
    t.ok(got.get("File processed", "").startswith("4.000 MiB"),
         "RAM phase: domjobinfo still shows the copied disk", got)
    r = a.virsh("domjobabort", "sto7")
    t.ok(r.rc == 0, "RAM phase: domjobabort", r)
    out, err = p.communicate(timeout=120)
    os.unlink(dxml)
    t.ok(p.returncode != 0 and "cancel" in err.lower(),
         "RAM phase: virsh migrate reports the cancellation", err)
    t.ok(wait_for(lambda: domstate(a, "sto7").startswith("running"), 20) and
         qemu_pid(a, "sto7") == pid_a, "RAM phase: the source keeps running",
         domstate(a, "sto7"))
    t.eq(migration_leftovers(a, "sto7"), [], "RAM phase: no NBD node or mirror job left on A")
    t.ok(wait_for(lambda: "sto7" not in names(b), 20), "RAM phase: nothing left on B")
    a.virsh("destroy", "sto7")
    a.virsh("undefine", "sto7")


def test_dest_dies(a, b, kernel, work):
    """The destination's QEMU (and its NBD server) dies during the copy:
    the mirror fails, the source keeps running without leftovers."""
    pid_a, dst, dxml, p, _ = start_copy(a, b, kernel, work, "sto8", "destination dies")
    pid_b = qemu_pid(b, "sto8")
    t.ok(pid_b and alive(pid_b), "destination dies: B's QEMU runs")
    os.kill(pid_b, signal.SIGKILL)
    out, err = p.communicate(timeout=120)
    os.unlink(dxml)
    t.ok(p.returncode != 0, "destination dies: the migration fails", err)
    t.ok(domstate(a, "sto8").startswith("running") and qemu_pid(a, "sto8") == pid_a,
         "destination dies: the source keeps running", domstate(a, "sto8"))
    t.eq(migration_leftovers(a, "sto8"), [], "destination dies: no NBD node or job left on A")
    t.ok(wait_for(lambda: "sto8" not in names(b), 20), "destination dies: nothing left on B")
    t.ok(not os.path.exists(dst), "destination dies: B removed the image it had created", dst)
    a.virsh("destroy", "sto8")
    a.virsh("undefine", "sto8")


def test_source_restart(a, b, kernel, work):
    pid_a, dst, dxml, p, _ = start_copy(a, b, kernel, work, "sto4", "restart")
    a.stop(signal.SIGKILL)
    p.communicate(timeout=60)
    os.unlink(dxml)
    a.start()
    t.ok(wait_for(lambda: domstate(a, "sto4").startswith("running"), 30) and
         qemu_pid(a, "sto4") == pid_a and alive(pid_a),
         "restart: the guest runs on A with its QEMU", domstate(a, "sto4"))
    t.ok(wait_for(lambda: jobinfo(a, "sto4").get("Job type") == "None", 30),
         "restart: the recovery ends the job on A", jobinfo(a, "sto4"))
    t.eq(migration_leftovers(a, "sto4"), [], "restart: the recovery left no NBD node or job")
    t.ok(wait_for(lambda: "sto4" not in names(b), 30), "restart: nothing left on B")
    t.ok(not os.path.exists(dst), "restart: B removed the image it had created", dst)
    a.virsh("destroy", "sto4")
    a.virsh("undefine", "sto4")


def test_dest_restart(a, b, kernel, work):
    """The destination daemon is killed during the copy and restarted: its
    recovery destroys the incoming guest (Prepare phase, not committed) and
    removes the image its Prepare created (kept in the status file); the
    source keeps running."""
    pid_a, dst, dxml, p, _ = start_copy(a, b, kernel, work, "sto11", "destination restart")
    pid_b = qemu_pid(b, "sto11")
    with open(b.private("/run/libvirt/qemu/sto11.xml")) as fh:
        status = fh.read()
    t.ok(("<createdImage path='%s'/>" % dst) in status,
         "destination restart: B's status file records the image it created", status[-600:])
    b.stop(signal.SIGKILL)
    b.start()
    out, err = p.communicate(timeout=120)
    os.unlink(dxml)
    t.ok(p.returncode != 0, "destination restart: the migration fails", err)
    t.ok(wait_for(lambda: "sto11" not in names(b), 30),
         "destination restart: B's recovery removed the incoming guest", names(b))
    t.ok(not (pid_b and alive(pid_b)), "destination restart: B's incoming QEMU is gone")
    t.ok(not os.path.exists(dst), "destination restart: B removed the image it had created", dst)
    t.ok(wait_for(lambda: domstate(a, "sto11").startswith("running"), 30) and
         qemu_pid(a, "sto11") == pid_a, "destination restart: the source keeps running",
         domstate(a, "sto11"))
    t.ok(wait_for(lambda: jobinfo(a, "sto11").get("Job type") == "None", 30),
         "destination restart: no job left on A", jobinfo(a, "sto11"))
    t.eq(migration_leftovers(a, "sto11"), [], "destination restart: no NBD node or job left on A")
    a.virsh("destroy", "sto11")
    a.virsh("undefine", "sto11")


def test_migrate_disks(a, b, kernel, work):
    """--migrate-disks vda: vda is copied, vdb stays shared (the same file
    on both hosts, not copied)."""
    src = os.path.join(work, "md-src.img")
    dst = os.path.join(work, "md-dst.img")
    shared = os.path.join(work, "md-shared.img")
    img("create", "-f", "raw", src, "8M")
    qemu_io(src, "raw", "write -P 0x66 1M 2M")
    img("create", "-f", "raw", dst, "8M")
    img("create", "-f", "raw", shared, "16M")
    virsh_file(a, "define", disk_xml("sto6", kernel, src, "raw", extra=shared_disk(shared)))
    r = a.virsh("start", "sto6")
    t.ok(r.rc == 0, "migrate-disks: sto6 (vda local, vdb shared) starts on A", r)
    pid_a = qemu_pid(a, "sto6")
    dxml = dest_xml(a, "sto6", kernel, dst, "raw", shared_disk(shared))
    try:
        r = a.virsh("migrate", "--live", "--copy-storage-all", "--migrate-disks", "vda",
                    "--xml", dxml, "sto6", b.uri, *MIG_ARGS, timeout=180)
    finally:
        os.unlink(dxml)
    t.ok(r.rc == 0, "virsh migrate --copy-storage-all --migrate-disks vda", r)
    t.ok(domstate(b, "sto6").startswith("running"), "migrate-disks: sto6 runs on B",
         domstate(b, "sto6"))
    t.ok(wait_for(lambda: not alive(pid_a), 20), "migrate-disks: A's QEMU is gone")
    r = a.virsh("domjobinfo", "--completed", "sto6")
    t.ok(r.rc == 0 and "File total:       8.000 MiB" in r.out,
         "migrate-disks: A's completed job copied vda only (8 MiB)", r)
    b.virsh("destroy", "sto6")
    same, r = compare(src, dst)
    t.ok(same, "migrate-disks: qemu-img compare: B's vda equals A's", r)
    a.virsh("undefine", "sto6")


def test_create(a, b, kernel, work):
    """--copy-storage-all to a destination image that does not exist: the
    destination creates it (qemu-img, the size the source reported, the
    format of the destination definition)."""
    src = os.path.join(work, "new-src.qcow2")
    dst = os.path.join(work, "new-dst.qcow2")
    img("create", "-f", "qcow2", src, "12M")
    qemu_io(src, "qcow2", "write -P 0x3c 4M 1M")
    virsh_file(a, "define", disk_xml("sto9", kernel, src, "qcow2"))
    r = a.virsh("start", "sto9")
    t.ok(r.rc == 0, "create: sto9 starts on A", r)
    dxml = dest_xml(a, "sto9", kernel, dst, "qcow2")
    try:
        r = a.virsh("migrate", "--live", "--copy-storage-all", "--xml", dxml, "sto9", b.uri,
                    *MIG_ARGS, timeout=120)
    finally:
        os.unlink(dxml)
    t.ok(r.rc == 0, "create: migrate --copy-storage-all to a missing image", r)
    t.ok(domstate(b, "sto9").startswith("running"), "create: sto9 runs on B",
         domstate(b, "sto9"))
    b.virsh("destroy", "sto9")
    r = img("info", "--output=json", dst)
    try:
        info = json.loads(r.out)
    except ValueError:
        info = {}
    t.ok(info.get("format") == "qcow2" and info.get("virtual-size") == 12 * MIB,
         "create: B created a 12 MiB qcow2 image", r)
    a.virsh("undefine", "sto9")
    t.ok(wait_for(lambda: compare(src, dst)[0], 20), "create: qemu-img compare: equal",
         compare(src, dst)[1])


def test_refusals(a, b, kernel, work):
    src = os.path.join(work, "ref-src.img")
    img("create", "-f", "raw", src, "8M")
    virsh_file(a, "define", disk_xml("sto5", kernel, src, "raw"))
    r = a.virsh("start", "sto5")
    t.ok(r.rc == 0, "refusals: sto5 starts on A", r)
    missing = os.path.join(work, "no-such-image.img")
    dxml = dest_xml(a, "sto5", kernel, missing, "raw")
    try:
        r = a.virsh("migrate", "--live", "--copy-storage-inc", "--xml", dxml, "sto5", b.uri,
                    *MIG_ARGS, timeout=120)
        t.ok(r.rc != 0 and missing in r.err and "does not exist" in r.err and
             "Requested operation is not valid" in r.err,
             "--copy-storage-inc: a missing destination image is refused, naming it", r)
        t.ok(not os.path.exists(missing), "--copy-storage-inc: no image created")
        r = a.virsh("migrate", "--live", "--postcopy", "--copy-storage-all", "--xml", dxml,
                    "sto5", b.uri, *MIG_ARGS, timeout=120)
        t.ok(r.rc != 0 and "argument unsupported" in r.err and "post-copy" in r.err,
             "--postcopy with --copy-storage-all is refused as unsupported", r)
    finally:
        os.unlink(dxml)
    t.ok(domstate(a, "sto5").startswith("running") and jobinfo(a, "sto5").get("Job type") == "None",
         "refusals: the guest runs on A, no job left", jobinfo(a, "sto5"))
    t.ok("sto5" not in names(b), "refusals: nothing on B")
    a.virsh("destroy", "sto5")
    a.virsh("undefine", "sto5")


a = Daemon("stoA")
b = Daemon("stoB")
work = tmpdir("storage")
os.chmod(work, 0o755)
try:
    paths = guest_paths()
    a.start()
    b.start()
    for name, fn in [("copy all", test_copy_all), ("copy inc", test_copy_inc),
                     ("abort", test_abort), ("abort in the RAM phase", test_abort_ram_phase),
                     ("setspeed", test_setspeed),
                     ("destination dies", test_dest_dies),
                     ("destination restart", test_dest_restart),
                     ("migrate disks", test_migrate_disks), ("create", test_create),
                     ("refusals", test_refusals),
                     ("source restart", test_source_restart)]:
        t.run(name, fn, a, b, paths["DIRTY"], work)
    t.ok(a.alive() and b.alive(), "both daemons alive at the end")
except Exception as ex:
    t.ok(False, "storage migration setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
finally:
    for d in (a, b):
        rundir = d.private("/run/libvirt/qemu")
        for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
            if n.endswith(".pid"):
                pid = qemu_pid(d, n[:-4])
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)
        d.cleanup()
    shutil.rmtree(work, ignore_errors=True)
t.done()
