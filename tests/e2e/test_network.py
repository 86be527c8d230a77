# test_network.py: <interface type='bridge'> and <interface type='network'>
# through a real libvirtd with Tandem and libvirt's own network driver.
#
# Everything happens in a network namespace the test creates and deletes:
# the daemon (and so its guests and their tap devices) runs in it, the test
# bridge lives in it, nothing is added to the host's network stack and no
# packet leaves the namespace.  Checks: a guest on a bridge starts with a
# tap device enslaved to the bridge (MAC, MTU), the live XML names it,
# domifstat reads it; a guest on a libvirt network (forward mode bridge)
# gets a port of that network; both survive a daemon restart, and destroy
# or a crash afterwards still deletes the tap and releases the port; a
# network whose ports are not on a bridge is refused with an error naming
# the interface; the unprivileged driver refuses such interfaces clearly.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import pwd
import re
import shutil
import signal
import textwrap

from tandemtest import TAP, DRIVER_DIR, Daemon, run, tmpdir, write_tmp, qemu_pid, alive, wait_for

t = TAP()
NS = "tandem-net-%d" % os.getpid()
BRIDGE = "tbr0"
# the pool of the passthrough network: the network driver does not look at
# it until a port would be plugged, which Tandem refuses before
DUMMY = "tdummy0"


def guest_xml(name, iface):
    return textwrap.dedent("""\
        <domain type='qemu'>
          <name>%s</name>
          <memory unit='MiB'>64</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <devices>%s</devices>
        </domain>
        """) % (name, iface)


BRIDGE_IF = """<interface type='bridge'>
  <mac address='52:54:00:aa:00:01'/>
  <source bridge='%s'/>
  <model type='virtio'/>
  <mtu size='1400'/>
</interface>""" % BRIDGE
NETWORK_IF = """<interface type='network'>
  <mac address='52:54:00:aa:00:02'/>
  <source network='tnet'/>
  <model type='e1000'/>
</interface>"""
DIRECT_IF = """<interface type='network'>
  <mac address='52:54:00:aa:00:03'/>
  <source network='tdirect'/>
  <model type='virtio'/>
</interface>"""


def ns(*argv):
    return run(["ip", "netns", "exec", NS] + list(argv))


def link(dev):
    """`ip -d link show DEV` inside the test namespace, or None."""
    r = ns("ip", "-d", "link", "show", "dev", dev)
    return r.out if r.rc == 0 else None


def define_from(d, cmd, xml):
    path = write_tmp(xml)
    try:
        return d.virsh(cmd, path)
    finally:
        os.unlink(path)


def tap_of(d, name):
    m = re.search(r"<target dev='([^']+)'/>", d.virsh("dumpxml", name).out)
    return m.group(1) if m else None


def ports(d, network):
    r = d.virsh("net-port-list", network)
    return [l.split()[0] for l in r.out.splitlines() if l.strip()] if r.rc == 0 else None


def check_tap(dev, mac_tail, mtu=None, what=""):
    info = link(dev)
    t.ok(info is not None, "%stap %s exists in the namespace" % (what, dev), info)
    info = info or ""
    t.contains(info, "master %s" % BRIDGE, "%stap %s is enslaved to %s" % (what, dev, BRIDGE))
    t.contains(info, "tun type tap", "%s%s is a tap device" % (what, dev))
    # the tap's own MAC is the guest's with the first byte changed
    t.contains(info, "link/ether fe:54:00:aa:00:%s" % mac_tail,
               "%stap %s carries the guest's MAC (first byte fe)" % (what, dev))
    t.ok(",UP" in info or "<UP" in info, "%stap %s is up" % (what, dev), info)
    if mtu:
        t.contains(info, "mtu %d " % mtu, "%stap %s has the MTU of the definition" % (what, dev))


def setup_network(d):
    r = define_from(d, "net-define", """<network><name>tnet</name>
  <forward mode='bridge'/><bridge name='%s'/></network>""" % BRIDGE)
    t.ok(r.rc == 0, "define network tnet (forward mode bridge onto %s)" % BRIDGE, r)
    t.ok(d.virsh("net-start", "tnet").rc == 0, "start network tnet")
    r = define_from(d, "net-define", """<network><name>tdirect</name>
  <forward mode='passthrough'><interface dev='%s'/></forward></network>""" % DUMMY)
    t.ok(r.rc == 0, "define network tdirect (forward mode passthrough)", r)
    t.ok(d.virsh("net-start", "tdirect").rc == 0, "start network tdirect")
    for name, iface in [("nb", BRIDGE_IF), ("nn", NETWORK_IF), ("nd", DIRECT_IF)]:
        r = define_from(d, "define", guest_xml(name, iface))
        t.ok(r.rc == 0, "define guest %s" % name, r)


state = {}


def test_bridge(d):
    r = d.virsh("start", "nb")
    t.ok(r.rc == 0, "guest with <interface type='bridge'> starts", "%s\n%s" % (r, d.log_tail()))
    dev = tap_of(d, "nb")
    t.ok(dev is not None and dev.startswith("vnet"),
         "live XML names the tap: <target dev='vnetN'/>", dev)
    state["nb"] = dev
    if not dev:
        return
    check_tap(dev, "01", mtu=1400)
    t.ok(tap_of_inactive(d, "nb") is None, "the persistent definition has no target dev")
    r = d.virsh("domifstat", "nb", dev)
    t.ok(r.rc == 0 and "rx_bytes" in r.out and "tx_packets" in r.out,
         "domifstat on the tap name", r)
    r = d.virsh("domiflist", "nb")
    t.contains(r.out, dev, "domiflist shows the tap")
    args = open(d.private("/var/log/libvirt/qemu/nb.log")).read()
    t.ok(re.search(r'"type":"tap","fd":"\d+"', args) is not None,
         "QEMU got the tap as a file descriptor (-netdev tap,fd=N)")


def tap_of_inactive(d, name):
    m = re.search(r"<target dev='([^']+)'/>", d.virsh("dumpxml", "--inactive", name).out)
    return m.group(1) if m else None


def test_network(d):
    t.eq(ports(d, "tnet"), [], "network tnet has no port before the guest starts")
    r = d.virsh("start", "nn")
    t.ok(r.rc == 0, "guest with <interface type='network'> starts", "%s\n%s" % (r, d.log_tail()))
    dev = tap_of(d, "nn")
    t.ok(dev is not None and dev.startswith("vnet") and dev != state.get("nb"),
         "live XML names a tap of its own", dev)
    state["nn"] = dev
    if dev:
        check_tap(dev, "02", what="network guest: ")
    p = ports(d, "tnet")
    t.ok(p is not None and len(p) == 1, "network tnet has a port for the guest", p)
    xml = d.virsh("dumpxml", "nn").out
    m = re.search(r"portid='([0-9a-f-]+)'", xml)
    t.ok(m is not None and p and m.group(1) == p[0],
         "the live XML records the port's UUID", xml)
    if p:
        pxml = d.virsh("net-port-dumpxml", "tnet", p[0]).out
        t.contains(pxml, "52:54:00:aa:00:02", "the port carries the guest's MAC")
        t.contains(pxml, "<plug type='bridge' bridge='%s'" % BRIDGE, "the port is plugged into the bridge")
    if dev:
        r = d.virsh("domifstat", "nn", dev)
        t.ok(r.rc == 0, "domifstat on the network guest's tap", r)


def test_unsupported(d):
    r = d.virsh("start", "nd")
    t.ok(r.rc != 0, "a network whose ports are not on a bridge is refused")
    t.contains(r.err, "unsupported configuration", "... as an unsupported configuration")
    t.contains(r.err, "interface 'net0'", "... naming the interface")
    t.contains(r.err, "direct", "... and the kind of connection the network gives")
    t.eq(ports(d, "tdirect"), [], "the port allocated for it is released again")
    t.ok(d.virsh("domstate", "nd").out.strip() == "shut off", "the guest stays shut off")


def test_restart(d):
    pids = {n: qemu_pid(d, n) for n in ("nb", "nn")}
    d.restart()
    t.ok(True, "daemon restarted")
    for n in ("nb", "nn"):
        t.eq(d.virsh("domstate", n).out.strip(), "running", "%s still running after the restart" % n)
        t.eq(qemu_pid(d, n), pids[n], "%s: the same QEMU" % n)
        dev = state.get(n)
        t.eq(tap_of(d, n), dev, "%s: the live XML still names tap %s" % (n, dev))
        if dev:
            t.contains(link(dev) or "", "master %s" % BRIDGE,
                       "%s: tap %s still on the bridge" % (n, dev))
            r = d.virsh("domifstat", n, dev)
            t.ok(r.rc == 0, "%s: domifstat after the restart" % n, r)
    p = ports(d, "tnet")
    t.ok(p is not None and len(p) == 1, "the network still has the guest's port", p)

    # a guest started after the restart gets a name no running guest has
    r = define_from(d, "define", guest_xml("nb2", BRIDGE_IF.replace("aa:00:01", "aa:00:04")))
    r = d.virsh("start", "nb2")
    t.ok(r.rc == 0, "another bridge guest starts after the restart", r)
    dev2 = tap_of(d, "nb2")
    t.ok(dev2 is not None and dev2 not in (state.get("nb"), state.get("nn")),
         "its tap name is new (%s)" % dev2)
    t.ok(d.virsh("destroy", "nb2").rc == 0, "destroy it")
    if dev2:
        t.ok(wait_for(lambda: link(dev2) is None, 10), "its tap is gone")


def test_destroy(d):
    r = d.virsh("destroy", "nn")
    t.ok(r.rc == 0, "destroy the network guest (started before the restart)", r)
    dev = state.get("nn")
    if dev:
        t.ok(wait_for(lambda: link(dev) is None, 10), "destroy removed tap %s" % dev)
    t.eq(ports(d, "tnet"), [], "destroy released the network port")
    r = d.virsh("destroy", "nb")
    t.ok(r.rc == 0, "destroy the bridge guest", r)
    dev = state.get("nb")
    if dev:
        t.ok(wait_for(lambda: link(dev) is None, 10), "destroy removed tap %s" % dev)
    t.ok(tap_of(d, "nb") is None, "the inactive guest has no target dev")


def test_crash(d):
    r = d.virsh("start", "nn")
    t.ok(r.rc == 0, "start the network guest again", r)
    dev = tap_of(d, "nn")
    pid = qemu_pid(d, "nn")
    t.ok(dev is not None and link(dev) is not None, "it has a tap again (%s)" % dev)
    t.eq(len(ports(d, "tnet") or []), 1, "and a port again")
    if pid:
        os.kill(pid, signal.SIGKILL)
    t.ok(wait_for(lambda: d.virsh("domstate", "nn").out.strip() == "shut off", 30),
         "QEMU killed: the guest is shut off")
    if dev:
        t.ok(wait_for(lambda: link(dev) is None, 10), "the crashed guest's tap is gone")
    t.ok(wait_for(lambda: ports(d, "tnet") == [], 10), "the crashed guest's port is released")


def test_dead_while_away(d):
    """QEMU dies while the daemon is down: the restarted daemon still
    releases the port the status file records."""
    r = d.virsh("start", "nn")
    t.ok(r.rc == 0, "start the network guest once more", r)
    dev = tap_of(d, "nn")
    pid = qemu_pid(d, "nn")
    t.eq(len(ports(d, "tnet") or []), 1, "it has a port")
    d.stop()
    if pid:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10)
    d.start()
    t.ok(wait_for(lambda: d.virsh("domstate", "nn").out.strip() == "shut off", 30),
         "QEMU died while the daemon was down: the guest is shut off after the restart")
    t.ok(wait_for(lambda: ports(d, "tnet") == [], 10),
         "the restarted daemon released the port of the dead guest")
    if dev:
        t.ok(link(dev) is None, "no tap is left behind")


def test_session():
    """The embedded driver as an ordinary user is unprivileged."""
    user = "nobody"
    pw = pwd.getpwnam(user)
    home = tmpdir("netsess")
    try:
        os.chmod(home, 0o755)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        env = dict(os.environ, HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"),
                   XDG_CONFIG_HOME=os.path.join(home, "config"),
                   XDG_CACHE_HOME=os.path.join(home, "cache"),
                   LIBVIRT_DRIVER_DIR=DRIVER_DIR)
        xml = os.path.join(home, "s.xml")
        with open(xml, "w") as f:
            f.write(guest_xml("sessnet", BRIDGE_IF))
        os.chown(xml, pw.pw_uid, pw.pw_gid)
        uri = "qemu:///embed?root=%s" % os.path.join(home, "root")
        as_user = ["setpriv", "--reuid=%s" % user, "--regid=%d" % pw.pw_gid, "--clear-groups"]
        r = run(as_user + ["virsh", "-q", "-c", uri, "create", xml], env=env, timeout=120)
        t.ok(r.rc != 0, "unprivileged: a bridge interface cannot start", r)
        t.contains(r.err, "unsupported configuration: interface 'net0' of type 'bridge' needs the privileged daemon",
                   "unprivileged: a clear unsupported-configuration error naming the interface")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        t.skip("network tests", "need root and /dev/net/tun")
        return
    r = run(["ip", "netns", "add", NS])
    if r.rc != 0:
        t.ok(False, "create network namespace %s" % NS, r)
        return
    d = None
    try:
        for argv in (["ip", "link", "set", "lo", "up"],
                     ["ip", "link", "add", BRIDGE, "type", "bridge"],
                     ["ip", "link", "set", BRIDGE, "up"]):
            r = ns(*argv)
            t.ok(r.rc == 0, "namespace: %s" % " ".join(argv), r)
        d = Daemon("network", netns=NS)
        d.start()
        setup_network(d)
        for name, fn in [("bridge", test_bridge), ("network", test_network),
                         ("unsupported", test_unsupported), ("restart", test_restart),
                         ("destroy", test_destroy), ("crash", test_crash),
                         ("dead while away", test_dead_while_away)]:
            t.run(name, fn, d)
        t.ok(d.alive(), "daemon alive at the end")
    except Exception as ex:
        t.ok(False, "network test setup", "%s\n%s" % (ex, d.log_tail() if d else ""))
    finally:
        if d is not None:
            for n in ("nb", "nn", "nd", "nb2"):
                pid = qemu_pid(d, n)
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)
            d.cleanup()
        run(["ip", "netns", "del", NS])
    t.run("session", test_session)


main()
t.done()
