# test_hotplug.py: device hot-plug and cold-plug against a real Linux
# guest (tests/guest) run by a real libvirtd with Tandem:
# attach-disk/detach-disk --live (the guest sees the disk and reads what
# the image holds; the image is QEMU's user's while attached and its
# owner's again after; the block nodes come and go), a SCSI disk on the
# guest's virtio-scsi controller, attach-interface/detach-interface of a
# user-mode NIC (the guest sees it come and go), --config and
# --live --config, detach-device-alias, the errors (shut off domain,
# duplicate target, unsupported device class, missing device, QEMU
# refusing an image or an address: nothing left half-attached), a daemon
# restart that keeps a hot-plugged disk, which then detaches, and a disk
# QEMU deleted while the daemon was stopped, cleaned up at reconnect.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import base64
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sys
import tempfile
import textwrap
import threading
import time

from tandemtest import TAP, Daemon, SRCDIR, run, write_tmp, wait_for

try:
    import libvirt
except ImportError:
    libvirt = None

t = TAP()

READY = "TANDEM-GUEST-READY"
BOOT_TIMEOUT = 120
PATTERN = b"TANDEM-HOTPLUG-PATTERN-5d1c"
NAME = "hp"
NS = "tandem-hp-%d" % os.getpid()   # the daemon's network namespace
BRIDGE = "tbr0"                      # a bridge in it
EVENTS = []   # ("added"|"removed", alias) from the device events


class Guest:
    """Kernel and initrd of the test guest where QEMU's user may read them,
    a directory for the serial log and the disk images."""

    def __init__(self):
        r = run(["bash", os.path.join(SRCDIR, "tests/guest/build-guest.sh")], timeout=1500)
        if r.rc == 77:
            print("1..0 # SKIP cannot build the test guest: %s" % r.err.strip().splitlines()[-1:])
            sys.exit(0)
        if r.rc != 0:
            raise RuntimeError("build-guest.sh failed (%d):\n%s" % (r.rc, r.err[-2000:]))
        vals = dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)
        self.dir = tempfile.mkdtemp(prefix="tandem-hotplug-",
                                    dir=os.environ.get("TANDEM_TEST_TMPDIR") or None)
        os.chmod(self.dir, 0o755)
        d = self.dir
        while d != "/":
            d = os.path.dirname(d)
            if not os.stat(d).st_mode & 0o001:
                raise RuntimeError("%s is not searchable by QEMU's user" % d)
        for attr, key in (("kernel", "KERNEL"), ("initrd", "INITRD")):
            dst = os.path.join(self.dir, os.path.basename(vals[key]))
            shutil.copyfile(vals[key], dst)
            os.chmod(dst, 0o644)
            setattr(self, attr, dst)
        self.log = os.path.join(self.dir, "serial.log")

    def xml(self):
        return textwrap.dedent("""\
            <domain type='qemu'>
              <name>%s</name>
              <memory unit='MiB'>256</memory>
              <vcpu>1</vcpu>
              <os>
                <type arch='x86_64' machine='pc'>hvm</type>
                <kernel>%s</kernel>
                <initrd>%s</initrd>
                <cmdline>console=ttyS0</cmdline>
              </os>
              <features><acpi/></features>
              <devices>
                <controller type='scsi' model='virtio-scsi'/>
                <serial type='pty'><log file='%s' append='on'/><target port='0'/></serial>
                <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
                <interface type='user'><model type='virtio'/></interface>
                <memballoon model='virtio'/>
              </devices>
            </domain>
            """) % (NAME, self.kernel, self.initrd, self.log)

    def ready_count(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().count(READY)
        except OSError:
            return 0

    def image(self, name, size=8 << 20, pattern=True):
        """A raw image owned by root, 0600: only the driver's labelling
        lets QEMU's user open it."""
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            if pattern:
                f.write(PATTERN)
            f.truncate(size)
        os.chown(p, 0, 0)
        os.chmod(p, 0o600)
        return p

    def cleanup(self):
        if not os.environ.get("TANDEM_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def owner(path):
    st = os.stat(path)
    return (st.st_uid, st.st_gid, st.st_mode & 0o777)


def qmp(d, cmd):
    r = d.virsh("qemu-monitor-command", NAME, json.dumps({"execute": cmd}))
    if r.rc != 0:
        raise RuntimeError("%s: %s" % (cmd, r.err))
    return json.loads(r.out)["return"]


def node_names(d):
    return sorted(n["node-name"] for n in qmp(d, "query-named-block-nodes"))


def pci_ids(d):
    return sorted(dev.get("qdev_id", "") for bus in qmp(d, "query-pci") for dev in bus["devices"])


def agent(d, cmd, args=None, timeout=None):
    c = {"execute": cmd}
    if args is not None:
        c["arguments"] = args
    return d.virsh("qemu-agent-command", NAME, json.dumps(c))


def guest_sh(d, script, timeout=30):
    """Runs @script with the guest's busybox sh; (exit code, stdout) or
    (None, error)."""
    r = agent(d, "guest-exec", {"path": "/bin/busybox", "arg": ["sh", "-c", script],
                                "capture-output": True})
    if r.rc != 0:
        return None, r.err
    pid = json.loads(r.out)["return"]["pid"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = agent(d, "guest-exec-status", {"pid": pid})
        if r.rc != 0:
            return None, r.err
        st = json.loads(r.out)["return"]
        if st.get("exited"):
            out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
            return st.get("exitcode"), out
        time.sleep(0.2)
    return None, "guest-exec timed out"


def live_xml(d):
    return d.virsh("dumpxml", NAME).out


def inactive_xml(d):
    return d.virsh("dumpxml", "--inactive", NAME).out


def disk_in(xml, dev):
    return re.search(r"<target dev='%s'" % dev, xml) is not None


def lv_error(fn):
    """(error code, message) of a libvirt call that must fail, or (None, result)."""
    try:
        return None, fn()
    except libvirt.libvirtError as e:
        return e.get_error_code(), e.get_error_message()


def disk_xml(path, dev, bus="virtio", fmt="raw", extra=""):
    return ("<disk type='file' device='disk'><driver name='qemu' type='%s'/>"
            "<source file='%s'/><target dev='%s' bus='%s'/>%s</disk>" % (fmt, path, dev, bus, extra))


# virsh attach-interface has no type 'user' (9.0): the XML, as virt-manager does
NIC_XML = "<interface type='user'><mac address='%s'/><model type='%s'/></interface>"


def attach_file(d, xml, *flags):
    path = write_tmp(xml)
    try:
        return d.virsh("attach-device", NAME, path, *flags)
    finally:
        os.unlink(path)


def test_shutoff(d, g, conn):
    img = g.image("cold.raw")
    r = d.virsh("attach-disk", NAME, img, "vdc", "--live")
    t.ok(r.rc != 0 and "domain is not running" in r.err,
         "attach-disk --live on a shut off domain: 'domain is not running'", r)
    dom = conn.lookupByName(NAME)
    code, msg = lv_error(lambda: dom.attachDeviceFlags(disk_xml(img, "vdc"), libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.eq(code, libvirt.VIR_ERR_OPERATION_INVALID, "... VIR_ERR_OPERATION_INVALID")

    r = d.virsh("attach-disk", NAME, img, "vdc", "--config")
    t.ok(r.rc == 0, "attach-disk --config on a shut off domain", r)
    x = inactive_xml(d)
    t.ok(disk_in(x, "vdc") and img in x, "the persistent XML has vdc", x)
    t.ok(re.search(r"<target dev='vdc' bus='virtio'/>\s*(<alias name='virtio-disk2'/>\s*)?<address type='pci'", x),
         "vdc got a PCI address in the persistent XML", x)
    code, msg = lv_error(lambda: dom.attachDeviceFlags(disk_xml(img, "vdc"), libvirt.VIR_DOMAIN_AFFECT_CONFIG))
    t.ok(code == libvirt.VIR_ERR_OPERATION_INVALID and "target vdc already exists" in msg,
         "a second vdc --config: 'target vdc already exists'", (code, msg))
    r = d.virsh("detach-disk", NAME, "vdc", "--config")
    t.ok(r.rc == 0 and not disk_in(inactive_xml(d), "vdc"), "detach-disk --config removes it", r)
    code, msg = lv_error(lambda: dom.detachDeviceFlags(disk_xml(img, "vdc"), libvirt.VIR_DOMAIN_AFFECT_CONFIG))
    t.ok(code == libvirt.VIR_ERR_DEVICE_MISSING and "vdc" in msg,
         "detach of a disk that is not there: VIR_ERR_DEVICE_MISSING naming it", (code, msg))

    r = attach_file(d, NIC_XML % ("52:54:00:aa:bb:01", "e1000"), "--config")
    t.ok(r.rc == 0 and "52:54:00:aa:bb:01" in inactive_xml(d), "attach-device --config of a user interface", r)
    r = d.virsh("detach-interface", NAME, "--type", "user", "--mac", "52:54:00:aa:bb:01", "--config")
    t.ok(r.rc == 0 and "52:54:00:aa:bb:01" not in inactive_xml(d), "detach-interface --config", r)
    t.eq(owner(img), (0, 0, 0o600), "a --config attach does not touch the image")


def test_disk(d, g, conn, qemu_uid):
    dom = conn.lookupByName(NAME)
    img = g.image("hot.raw")
    nodes0 = node_names(d)
    pci0 = pci_ids(d)

    r = d.virsh("attach-disk", NAME, img, "vdb", "--serial", "tandem-hp1", "--live")
    t.ok(r.rc == 0, "attach-disk --live vdb", r)
    x = live_xml(d)
    m = re.search(r"<disk type='file' device='disk'>.*?<target dev='vdb' bus='virtio'/>.*?</disk>", x, re.S)
    t.ok(m and "<alias name='virtio-disk1'/>" in m.group(0) and "<address type='pci'" in m.group(0),
         "live XML: vdb with alias virtio-disk1 and a PCI address", x)
    t.ok(not disk_in(inactive_xml(d), "vdb"), "--live leaves the persistent XML alone")
    t.eq(owner(img)[0], qemu_uid, "the image belongs to QEMU's user while attached")
    nodes = node_names(d)
    new = sorted(set(nodes) - set(nodes0))
    t.ok(len(new) == 2 and all(re.match(r"libvirt-\d+-(format|storage)$", n) for n in new),
         "two new block nodes libvirt-N-format/storage", new)
    t.ok("virtio-disk1" in pci_ids(d), "query-pci lists virtio-disk1", pci_ids(d))
    t.ok(wait_for(lambda: ("added", "virtio-disk1") in EVENTS, 10), "device-added event for virtio-disk1",
         EVENTS)

    # the initramfs guest has no disk of its own: it names the new one vda;
    # the serial tells it from any other
    find = ("for i in $(seq 50); do for b in /sys/block/vd*; do "
            "[ \"$(cat $b/serial 2>/dev/null)\" = %s ] && echo ${b##*/} && exit 0; done; sleep 0.2; done; exit 1")
    rc, out = guest_sh(d, find % "tandem-hp1")
    gdev = out.strip()
    t.ok(rc == 0 and gdev.startswith("vd"), "the guest sees the disk (serial tandem-hp1)",
         (rc, out, guest_sh(d, "ls /sys/block; dmesg | tail -5")))
    rc, out = guest_sh(d, "cat /sys/block/%s/size; head -c %d /dev/%s" % (gdev, len(PATTERN), gdev))
    t.ok(rc == 0 and out.split("\n", 1)[0] == str((8 << 20) // 512), "its size is 8 MiB", (rc, out))
    t.ok(rc == 0 and out.split("\n", 1)[-1] == PATTERN.decode(),
         "the guest reads the pattern written into the image", (rc, out))

    code, msg = lv_error(lambda: dom.attachDeviceFlags(disk_xml(img, "vdb"), libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_OPERATION_FAILED and "target vdb already exists" in msg,
         "attaching vdb again: VIR_ERR_OPERATION_FAILED 'target vdb already exists'", (code, msg))

    r = d.virsh("detach-disk", NAME, "vdb", "--live")
    t.ok(r.rc == 0, "detach-disk --live vdb", r)
    t.ok(wait_for(lambda: not disk_in(live_xml(d), "vdb"), 30), "vdb leaves the live XML", live_xml(d))
    t.ok(wait_for(lambda: ("removed", "virtio-disk1") in EVENTS, 10),
         "device-removed event for virtio-disk1", EVENTS)
    rc, out = guest_sh(d, "cat /sys/block/vd*/serial 2>/dev/null; true")
    t.ok(rc == 0 and "tandem-hp1" not in out, "the guest no longer sees it", (rc, out))
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again, 0600")
    t.eq(node_names(d), nodes0, "its block nodes are gone")
    t.eq(pci_ids(d), pci0, "query-pci as before")
    code, msg = lv_error(lambda: dom.detachDeviceFlags(disk_xml(img, "vdb"), libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_DEVICE_MISSING and "vdb" in msg,
         "detaching vdb again: VIR_ERR_DEVICE_MISSING", (code, msg))


def test_qcow2_readonly(d, g, conn, qemu_uid):
    """A qcow2 image attached read-only: the guest sees a read-only disk
    holding what was written through qcow2."""
    img = os.path.join(g.dir, "ro.qcow2")
    r = run(["qemu-img", "create", "-q", "-f", "qcow2", img, "4M"])
    r2 = run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4k", img])
    if not t.ok(r.rc == 0 and r2.rc == 0, "a qcow2 image with 4 KiB of 0x5a", (r, r2)):
        return
    os.chmod(img, 0o600)
    nodes0 = node_names(d)
    r = d.virsh("attach-disk", NAME, img, "vdg", "--subdriver", "qcow2", "--mode", "readonly",
                "--serial", "tandem-ro", "--live")
    t.ok(r.rc == 0, "attach-disk --live --subdriver qcow2 --mode readonly", r)
    m = re.search(r"<driver (name='qemu' )?type='qcow2'/>.*?<target dev='vdg' bus='virtio'/>\s*<readonly/>",
                  live_xml(d), re.S)
    t.ok(m is not None, "live XML: vdg qcow2, readonly", live_xml(d))
    ro = [n for n in qmp(d, "query-named-block-nodes") if n["node-name"] not in nodes0
          and n.get("drv") == "qcow2"]
    t.ok(len(ro) == 1 and ro[0].get("ro") is True, "QEMU has a read-only qcow2 format node", ro)
    find = ("for i in $(seq 50); do for b in /sys/block/vd*; do "
            "[ \"$(cat $b/serial 2>/dev/null)\" = tandem-ro ] && echo ${b##*/} && exit 0; done; "
            "sleep 0.2; done; exit 1")
    rc, out = guest_sh(d, find)
    gdev = out.strip()
    rc2, out2 = guest_sh(d, "cat /sys/block/%s/ro; head -c 8 /dev/%s" % (gdev, gdev))
    t.ok(rc == 0 and rc2 == 0 and out2 == "1\nZZZZZZZZ",
         "the guest sees it read-only and reads the qcow2 data", (rc, out, rc2, out2))
    r = d.virsh("detach-disk", NAME, "vdg", "--live")
    t.ok(r.rc == 0 and wait_for(lambda: not disk_in(live_xml(d), "vdg"), 30), "detach-disk vdg", r)
    t.eq(node_names(d), nodes0, "its block nodes are gone")
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again")


def test_refusals(d, g, conn, qemu_uid):
    dom = conn.lookupByName(NAME)
    nodes0 = node_names(d)
    pci0 = pci_ids(d)
    live0 = live_xml(d)

    code, msg = lv_error(lambda: dom.attachDeviceFlags("<watchdog model='i6300esb' action='none'/>",
                                                       libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_OPERATION_UNSUPPORTED and "watchdog" in msg,
         "attaching a watchdog: VIR_ERR_OPERATION_UNSUPPORTED naming it", (code, msg))

    img0 = g.image("bus.raw")
    code, msg = lv_error(lambda: dom.attachDeviceFlags(disk_xml(img0, "sdc", bus="sata"),
                                                       libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_OPERATION_UNSUPPORTED and "'sata' cannot be hot-plugged" in msg,
         "a sata disk: VIR_ERR_OPERATION_UNSUPPORTED naming the bus", (code, msg))
    code, msg = lv_error(lambda: dom.attachDeviceFlags(
        disk_xml(img0, "sdc", bus="scsi",
                 extra="<address type='drive' controller='1' bus='0' target='0' unit='0'/>"),
        libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_OPERATION_UNSUPPORTED and "SCSI controller with index 1" in msg,
         "a scsi disk on a controller the guest lacks: refused naming it", (code, msg))
    t.eq(owner(img0), (0, 0, 0o600), "... the image untouched")

    # a raw image declared qcow2: QEMU refuses the format node
    img = g.image("notqcow2.raw")
    code, msg = lv_error(lambda: dom.attachDeviceFlags(disk_xml(img, "vde", fmt="qcow2"),
                                                       libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code is not None and "qcow2" in msg and "blockdev-add" in msg,
         "a raw image as qcow2: QEMU's error (blockdev-add) in the message", (code, msg))
    t.eq(node_names(d), nodes0, "... no block node left behind")
    t.eq(owner(img), (0, 0, 0o600), "... the image is root's again")

    # an occupied PCI slot: QEMU refuses the device after both nodes exist
    img2 = g.image("slot1.raw")
    code, msg = lv_error(lambda: dom.attachDeviceFlags(
        disk_xml(img2, "vdf", extra="<address type='pci' domain='0' bus='0' slot='1' function='0'/>"),
        libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code is not None and msg, "a disk on the PIIX3's PCI slot is refused", (code, msg))
    t.eq(node_names(d), nodes0, "... no block node left behind")
    t.eq(pci_ids(d), pci0, "... no PCI device left behind")
    t.eq(owner(img2), (0, 0, 0o600), "... the image is root's again")
    t.eq(live_xml(d), live0, "... the live XML is unchanged")

    # SCSI target 300 does not exist on virtio-scsi: QEMU refuses the
    # device itself after both block nodes were added
    img3 = g.image("target300.raw")
    code, msg = lv_error(lambda: dom.attachDeviceFlags(
        disk_xml(img3, "sdz", bus="scsi",
                 extra="<address type='drive' controller='0' bus='0' target='300' unit='0'/>"),
        libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_INTERNAL_ERROR and "device_add" in msg and "300" in msg,
         "QEMU refusing the device: its error (device_add) in the message", (code, msg))
    t.eq(node_names(d), nodes0, "... both block nodes removed again")
    t.eq(owner(img3), (0, 0, 0o600), "... the image is root's again")
    t.eq(live_xml(d), live0, "... the live XML is unchanged")


def test_scsi(d, g, conn, qemu_uid):
    img = g.image("scsi.raw")
    nodes0 = node_names(d)
    r = d.virsh("attach-disk", NAME, img, "sdb", "--targetbus", "scsi", "--live")
    t.ok(r.rc == 0, "attach-disk --live sdb on the virtio-scsi controller", r)
    x = live_xml(d)
    m = re.search(r"<target dev='sdb' bus='scsi'/>.*?</disk>", x, re.S)
    t.ok(m and "<address type='drive' controller='0'" in m.group(0) and
         re.search(r"<alias name='scsi0-0-0-\d+'/>", m.group(0)),
         "live XML: sdb with a drive address on controller 0 and a scsi alias", x)
    alias = re.search(r"<alias name='(scsi0-0-0-\d+)'/>", m.group(0)).group(1) if m else "?"
    blk = qmp(d, "query-block")
    t.ok(any(b.get("qdev") == alias for b in blk), "query-block lists the scsi-hd device %s" % alias,
         [b.get("qdev") for b in blk])
    t.eq(owner(img)[0], qemu_uid, "the image belongs to QEMU's user")
    r = d.virsh("detach-disk", NAME, "sdb", "--live")
    t.ok(r.rc == 0, "detach-disk --live sdb", r)
    t.ok(wait_for(lambda: not disk_in(live_xml(d), "sdb"), 30), "sdb leaves the live XML")
    t.eq(node_names(d), nodes0, "its block nodes are gone")
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again")


def guest_macs(d):
    rc, out = guest_sh(d, "cat /sys/class/net/*/address")
    return out.split() if rc == 0 else None


def test_interface(d, g, conn):
    mac = "52:54:00:aa:bb:02"
    r = attach_file(d, NIC_XML % (mac, "virtio"), "--live")
    t.ok(r.rc == 0, "attach-device --live of a user interface, model virtio", r)
    x = live_xml(d)
    m = re.search(r"<interface type='user'>\s*<mac address='%s'/>.*?</interface>" % mac, x, re.S)
    t.ok(m and "<alias name='net1'/>" in m.group(0) and "<address type='pci'" in m.group(0),
         "live XML: the interface with alias net1 and a PCI address", x)
    t.ok(wait_for(lambda: mac in (guest_macs(d) or []), 15), "the guest sees a NIC with that MAC",
         guest_macs(d))
    r = d.virsh("qemu-monitor-command", NAME, "--hmp", "info network")
    t.ok(r.rc == 0 and "hostnet1" in r.out, "QEMU has the backend hostnet1", r)

    r = d.virsh("detach-interface", NAME, "--type", "user", "--mac", mac, "--live")
    t.ok(r.rc == 0, "detach-interface --live", r)
    t.ok(wait_for(lambda: mac not in live_xml(d), 30), "the interface leaves the live XML")
    t.ok(wait_for(lambda: mac not in (guest_macs(d) or [mac]), 15), "the guest no longer sees it",
         guest_macs(d))
    r = d.virsh("qemu-monitor-command", NAME, "--hmp", "info network")
    t.ok(r.rc == 0 and "hostnet1" not in r.out, "its backend is gone (netdev_del)", r)


def ns_run(*argv):
    return run(["ip", "netns", "exec", NS] + list(argv))


def test_bridge(d, g, conn):
    """A bridge interface (privileged daemon): a tap on the bridge whose fd
    QEMU gets with getfd; detached, the tap is gone."""
    mac = "52:54:00:aa:bb:03"
    r = d.virsh("attach-interface", NAME, "bridge", BRIDGE, "--model", "virtio", "--mac", mac, "--live")
    t.ok(r.rc == 0, "attach-interface bridge %s --model virtio --live" % BRIDGE, r)
    x = live_xml(d)
    m = re.search(r"<interface type='bridge'>\s*<mac address='%s'/>.*?</interface>" % mac, x, re.S)
    tap = re.search(r"<target dev='([^']+)'/>", m.group(0)).group(1) if m and "<target dev=" in m.group(0) else None
    t.ok(tap is not None and "<alias name='net1'/>" in m.group(0),
         "live XML: the interface with its tap and alias net1", x)
    r = ns_run("ip", "-o", "link", "show", "master", BRIDGE)
    t.ok(tap and r.rc == 0 and (" %s:" % tap) in r.out and ("fe" + mac[2:]) in r.out,
         "the tap is on the bridge, its MAC the interface's with fe: first (as libvirt's)", r)
    t.ok(wait_for(lambda: mac in (guest_macs(d) or []), 15), "the guest sees a NIC with that MAC",
         guest_macs(d))
    r = d.virsh("domifstat", NAME, tap or "?")
    t.ok(r.rc == 0 and "rx_bytes" in r.out, "domifstat on the tap", r)

    r = d.virsh("detach-interface", NAME, "bridge", "--mac", mac, "--live")
    t.ok(r.rc == 0, "detach-interface bridge --live", r)
    t.ok(wait_for(lambda: mac not in live_xml(d), 30), "the interface leaves the live XML")
    t.ok(wait_for(lambda: ns_run("ip", "link", "show", tap or "?").rc != 0, 10), "its tap is gone")
    t.ok(wait_for(lambda: mac not in (guest_macs(d) or [mac]), 15), "the guest no longer sees it",
         guest_macs(d))


def test_network(d, g, conn):
    """A network interface: a port of the libvirt network while attached."""
    net = write_tmp("<network><name>hpnet</name><forward mode='bridge'/><bridge name='%s'/></network>"
                    % BRIDGE)
    try:
        r = d.virsh("net-define", net)
    finally:
        os.unlink(net)
    t.ok(r.rc == 0 and d.virsh("net-start", "hpnet").rc == 0, "a libvirt network on the bridge", r)
    mac = "52:54:00:aa:bb:04"
    r = d.virsh("attach-interface", NAME, "network", "hpnet", "--model", "virtio", "--mac", mac, "--live")
    t.ok(r.rc == 0, "attach-interface network hpnet --model virtio --live", r)
    r = d.virsh("net-port-list", "hpnet")
    t.ok(r.rc == 0 and len(r.out.split()) == 1, "the network has one port", r)
    t.ok(wait_for(lambda: mac in (guest_macs(d) or []), 15), "the guest sees the NIC", guest_macs(d))
    # the live XML shows the port's actual type (bridge), as libvirt's does
    r = d.virsh("detach-interface", NAME, "bridge", "--mac", mac, "--live")
    t.ok(r.rc == 0, "detach-interface --live (type bridge in the live XML)", r)
    t.ok(wait_for(lambda: mac not in live_xml(d), 30), "the interface leaves the live XML")
    r = d.virsh("net-port-list", "hpnet")
    t.ok(r.rc == 0 and r.out.split() == [], "its port is released", r)
    d.virsh("net-destroy", "hpnet")
    d.virsh("net-undefine", "hpnet")


def test_live_and_config(d, g, conn):
    img = g.image("both.raw")
    r = d.virsh("attach-disk", NAME, img, "vdc", "--live", "--config")
    t.ok(r.rc == 0, "attach-disk --live --config vdc", r)
    t.ok(disk_in(live_xml(d), "vdc") and disk_in(inactive_xml(d), "vdc"), "vdc in both definitions")
    r = d.virsh("detach-disk", NAME, "vdc", "--live", "--config")
    t.ok(r.rc == 0, "detach-disk --live --config vdc", r)
    t.ok(wait_for(lambda: not disk_in(live_xml(d), "vdc"), 30) and not disk_in(inactive_xml(d), "vdc"),
         "vdc gone from both definitions")
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again")


def test_alias(d, g, conn):
    dom = conn.lookupByName(NAME)
    img = g.image("alias.raw")
    nodes0 = node_names(d)
    r = d.virsh("attach-disk", NAME, img, "vdd", "--live")
    t.ok(r.rc == 0, "attach-disk --live vdd", r)
    code, res = lv_error(lambda: dom.detachDeviceAlias("virtio-disk3", libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code is None and res == 0, "detach-device-alias virtio-disk3", (code, res))
    t.ok(wait_for(lambda: not disk_in(live_xml(d), "vdd"), 30),
         "vdd leaves the live XML once the guest let go")
    t.ok(wait_for(lambda: node_names(d) == nodes0, 10), "its block nodes are gone", node_names(d))
    t.ok(wait_for(lambda: ("removed", "virtio-disk3") in EVENTS, 10),
         "device-removed event for virtio-disk3", EVENTS)
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again")
    code, msg = lv_error(lambda: dom.detachDeviceAlias("virtio-disk3", libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_DEVICE_MISSING, "detach-device-alias of a gone alias: DEVICE_MISSING",
         (code, msg))

    # an interface with a user alias keeps it; a second one with the same
    # alias is refused
    nic = ("<interface type='user'><mac address='52:54:00:aa:bb:05'/><model type='virtio'/>"
           "<alias name='ua-hpnic'/></interface>")
    code, res = lv_error(lambda: dom.attachDeviceFlags(nic, libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code is None and "<alias name='ua-hpnic'/>" in live_xml(d),
         "an interface attached with the user alias ua-hpnic keeps it", (code, res))
    r = d.virsh("qemu-monitor-command", NAME, "--hmp", "info network")
    t.ok(r.rc == 0 and "ua-hpnic" in r.out and "hostua-hpnic" in r.out,
         "QEMU has device ua-hpnic on backend hostua-hpnic", r)
    code, msg = lv_error(lambda: dom.attachDeviceFlags(nic.replace("bb:05", "bb:06"),
                                                       libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code == libvirt.VIR_ERR_CONFIG_UNSUPPORTED and "non unique alias detected: ua-hpnic" in msg,
         "a second device with alias ua-hpnic: libvirt's 'non unique alias detected' (before QEMU)",
         (code, msg))
    code, res = lv_error(lambda: dom.detachDeviceAlias("ua-hpnic", libvirt.VIR_DOMAIN_AFFECT_LIVE))
    t.ok(code is None and wait_for(lambda: "ua-hpnic" not in live_xml(d), 30),
         "detach-device-alias ua-hpnic", (code, res))
    t.ok(wait_for(lambda: ("removed", "ua-hpnic") in EVENTS, 10), "device-removed event for ua-hpnic",
         EVENTS)


def test_restart(d, g, qemu_uid):
    img = g.image("restart.raw")
    nodes0 = node_names(d)
    r = d.virsh("attach-disk", NAME, img, "vdb", "--live")
    t.ok(r.rc == 0, "attach-disk --live vdb before a daemon restart", r)
    d.restart()
    t.ok(disk_in(live_xml(d), "vdb"), "after the restart vdb is still in the live XML")
    t.eq(owner(img)[0], qemu_uid, "and still QEMU's user's")
    r = d.virsh("detach-disk", NAME, "vdb", "--live")
    t.ok(r.rc == 0, "detach-disk --live vdb after the restart", r)
    t.ok(wait_for(lambda: not disk_in(live_xml(d), "vdb"), 30), "vdb leaves the live XML")
    t.eq(node_names(d), nodes0, "its block nodes are gone")
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again")


def qmp_direct(d, commands, wait_event, timeout=30):
    """Talks to QEMU's monitor socket itself (the daemon stopped): runs
    @commands, then waits for the event @wait_event with data.device.
    Returns the event or None."""
    with open(d.private("/run/libvirt/qemu/%s.xml" % NAME)) as f:
        path = re.search(r"<monitor path='([^']+)'/>", f.read()).group(1)
    for top in Daemon.PRIVATE_DIRS:
        if path.startswith(top + "/"):
            path = d.private(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    f = s.makefile("rwb")
    try:
        f.readline()                                    # greeting
        for cmd in [{"execute": "qmp_capabilities"}] + commands:
            f.write((json.dumps(cmd) + "\n").encode())
            f.flush()
            while True:
                msg = json.loads(f.readline())
                if "return" in msg or "error" in msg:
                    if "error" in msg:
                        raise RuntimeError("%s: %s" % (cmd, msg))
                    break
                if msg.get("event") == wait_event[0] and msg["data"].get("device") == wait_event[1]:
                    return msg
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = json.loads(f.readline())
            if msg.get("event") == wait_event[0] and msg["data"].get("device") == wait_event[1]:
                return msg
        return None
    finally:
        f.close()
        s.close()


def test_removed_while_away(d, g, qemu_uid):
    """The guest lets go of a disk while the daemon is stopped (device_del
    sent straight to QEMU): the restarted daemon removes it from the live
    XML, deletes its block nodes and gives the image back."""
    img = g.image("away.raw")
    nodes0 = node_names(d)
    r = d.virsh("attach-disk", NAME, img, "vdh", "--live")
    t.ok(r.rc == 0, "attach-disk --live vdh", r)
    m = re.search(r"<target dev='vdh' bus='virtio'/>\s*<alias name='([^']+)'/>", live_xml(d))
    alias = m.group(1) if m else "?"
    d.stop()
    ev = qmp_direct(d, [{"execute": "device_del", "arguments": {"id": alias}}],
                    ("DEVICE_DELETED", alias))
    t.ok(ev is not None, "with the daemon stopped, QEMU deletes %s (device_del on its monitor)" % alias)
    d.start()
    t.ok(not disk_in(live_xml(d), "vdh"), "the restarted daemon drops vdh from the live XML")
    t.eq(node_names(d), nodes0, "and deletes its block nodes (found by the image's name)")
    t.eq(owner(img), (0, 0, 0o600), "the image is root's again")


def main():
    if libvirt is None:
        print("1..0 # SKIP python3-libvirt is not installed")
        return
    g = None
    d = None
    r = run(["ip", "netns", "add", NS])
    if r.rc != 0:
        print("1..0 # SKIP cannot create a network namespace: %s" % r.err.strip())
        return
    try:
        for argv in (["ip", "link", "set", "lo", "up"],
                     ["ip", "link", "add", BRIDGE, "type", "bridge"],
                     ["ip", "link", "set", BRIDGE, "up"]):
            r = ns_run(*argv)
            if r.rc != 0:
                raise RuntimeError("%s: %s" % (argv, r.err))
        d = Daemon("hotplug", netns=NS)
        g = Guest()
        d.start()
        qemu_uid = pwd.getpwnam("libvirt-qemu").pw_uid
        path = write_tmp(g.xml())
        try:
            r = d.virsh("define", path)
        finally:
            os.unlink(path)
        t.ok(r.rc == 0, "define the guest", r)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)],
                         daemon=True).start()
        conn = libvirt.open(d.uri)
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                                    lambda c, dom, alias, o: EVENTS.append(("added", alias)), None)
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                    lambda c, dom, alias, o: EVENTS.append(("removed", alias)), None)
        t.run("shut off domain", test_shutoff, d, g, conn)
        r = d.virsh("start", NAME)
        if not t.ok(r.rc == 0, "start", r):
            return
        if not t.ok(wait_for(lambda: g.ready_count() >= 1, BOOT_TIMEOUT, 0.5), "the guest boots"):
            return
        t.ok(wait_for(lambda: agent(d, "guest-ping").rc == 0, 30, 0.5), "its agent answers")
        t.run("disk", test_disk, d, g, conn, qemu_uid)
        t.run("qcow2 read-only", test_qcow2_readonly, d, g, conn, qemu_uid)
        t.run("refusals", test_refusals, d, g, conn, qemu_uid)
        t.run("scsi", test_scsi, d, g, conn, qemu_uid)
        t.run("interface", test_interface, d, g, conn)
        t.run("bridge interface", test_bridge, d, g, conn)
        t.run("network interface", test_network, d, g, conn)
        t.run("live and config", test_live_and_config, d, g, conn)
        t.run("alias", test_alias, d, g, conn)
        conn.close()
        t.run("restart", test_restart, d, g, qemu_uid)
        t.run("removed while away", test_removed_while_away, d, g, qemu_uid)
        t.ok(d.alive(), "daemon alive at the end")
    except Exception as ex:
        t.ok(False, "hotplug test setup", "%s\n%s" % (ex, d.log_tail() if d else ""))
    finally:
        if d:
            try:
                with open(d.private("/run/libvirt/qemu/%s.pid" % NAME)) as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            d.cleanup()
        if g:
            g.cleanup()
        run(["ip", "netns", "del", NS])


main()
t.done()
