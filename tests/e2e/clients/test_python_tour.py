# test_python_tour.py: a scripted tour of the libvirt API from Debian's
# python3-libvirt, unmodified, against a real libvirtd running Tandem and
# against the embedded driver: host information, definitions, the lifecycle
# with its events (libvirt's default event loop in a thread), statistics,
# the QEMU monitor passthrough, errors as python exceptions, read-only
# connections.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tandemtest import TAP, Daemon, DRIVER_DIR, tmpdir  # noqa: E402

import libvirt  # noqa: E402
import libvirt_qemu  # noqa: E402

t = TAP()

XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><console type='pty'/></devices>
</domain>
"""

EV = libvirt


class Events:
    """Lifecycle events collected by libvirt's default event loop."""

    def __init__(self):
        self.lock = threading.Condition()
        self.seen = []

    def cb(self, conn, dom, event, detail, opaque):
        with self.lock:
            self.seen.append((dom.name(), event, detail))
            self.lock.notify_all()

    def wait(self, name, event, timeout=20):
        deadline = time.time() + timeout
        with self.lock:
            while True:
                for i, (n, e, _d) in enumerate(self.seen):
                    if n == name and e == event:
                        del self.seen[:i + 1]
                        return True
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.lock.wait(left)


def error_code(fn, *args):
    try:
        fn(*args)
    except libvirt.libvirtError as e:
        return e.get_error_code()
    return None


def tour(uri, label, ro_uri=None):
    conn = libvirt.open(uri)
    t.ok(conn is not None, "%s: libvirt.open" % label)
    t.eq(conn.getType(), "QEMU", "%s: getType" % label)
    t.ok(conn.getVersion() > 0 and conn.getLibVersion() >= 9000000,
         "%s: getVersion / getLibVersion" % label)
    t.ok(bool(conn.getHostname()), "%s: getHostname" % label)
    t.ok("<capabilities>" in conn.getCapabilities(), "%s: getCapabilities" % label)
    t.ok("<domainCapabilities>" in conn.getDomainCapabilities(None, "x86_64", None, "qemu"),
         "%s: getDomainCapabilities" % label)
    info = conn.getInfo()
    t.ok(info[0] == "x86_64" and info[2] > 0, "%s: getInfo (nodeinfo)" % label, info)
    t.ok(conn.isAlive() == 1, "%s: isAlive" % label)

    ev = Events()
    cbid = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, ev.cb, None)
    t.ok(cbid >= 0, "%s: domainEventRegisterAny(LIFECYCLE)" % label)

    name = "tour-%s" % label
    dom = conn.defineXML(XML % name)
    t.eq(dom.name(), name, "%s: defineXML" % label)
    t.ok(ev.wait(name, libvirt.VIR_DOMAIN_EVENT_DEFINED), "%s: DEFINED event" % label)
    t.eq(conn.lookupByName(name).UUIDString(), dom.UUIDString(), "%s: lookupByName" % label)
    t.eq(conn.lookupByUUIDString(dom.UUIDString()).name(), name, "%s: lookupByUUIDString" % label)
    t.ok(dom.isPersistent() == 1 and dom.isActive() == 0, "%s: isPersistent / isActive" % label)
    t.ok("<name>%s</name>" % name in dom.XMLDesc(0), "%s: XMLDesc" % label)
    t.ok(name in [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE)],
         "%s: listAllDomains(INACTIVE)" % label)
    dom.setAutostart(1)
    t.eq(dom.autostart(), 1, "%s: setAutostart / autostart" % label)
    dom.setAutostart(0)

    t.eq(dom.create(), 0, "%s: create (start)" % label)
    t.ok(ev.wait(name, libvirt.VIR_DOMAIN_EVENT_STARTED), "%s: STARTED event" % label)
    t.eq(dom.state()[0], libvirt.VIR_DOMAIN_RUNNING, "%s: state running" % label)
    t.ok(dom.ID() > 0, "%s: ID of a running domain" % label)
    st = dom.info()
    t.ok(st[0] == libvirt.VIR_DOMAIN_RUNNING and st[3] == 1, "%s: info()" % label, st)
    stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_VCPU |
                                   libvirt.VIR_DOMAIN_STATS_BALLOON)
    mine = [s for d, s in stats if d.name() == name]
    t.ok(mine and mine[0].get("state.state") == libvirt.VIR_DOMAIN_RUNNING,
         "%s: getAllDomainStats" % label, stats)
    out = libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-status"}', 0)
    t.ok('"running"' in out, "%s: libvirt_qemu.qemuMonitorCommand" % label, out)
    t.ok(dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE, "%s: jobInfo without a job" % label)

    t.eq(dom.suspend(), 0, "%s: suspend" % label)
    t.ok(ev.wait(name, libvirt.VIR_DOMAIN_EVENT_SUSPENDED), "%s: SUSPENDED event" % label)
    t.eq(dom.resume(), 0, "%s: resume" % label)
    t.ok(ev.wait(name, libvirt.VIR_DOMAIN_EVENT_RESUMED), "%s: RESUMED event" % label)
    t.eq(error_code(dom.create), libvirt.VIR_ERR_OPERATION_INVALID,
         "%s: starting a running domain raises VIR_ERR_OPERATION_INVALID" % label)
    t.eq(dom.destroy(), 0, "%s: destroy" % label)
    t.ok(ev.wait(name, libvirt.VIR_DOMAIN_EVENT_STOPPED), "%s: STOPPED event" % label)
    t.eq(dom.state()[0], libvirt.VIR_DOMAIN_SHUTOFF, "%s: state shut off" % label)
    t.eq(dom.undefine(), 0, "%s: undefine" % label)
    t.ok(ev.wait(name, libvirt.VIR_DOMAIN_EVENT_UNDEFINED), "%s: UNDEFINED event" % label)

    tname = name + "-transient"
    tdom = conn.createXML(XML % tname, 0)
    t.ok(tdom.isActive() == 1 and tdom.isPersistent() == 0, "%s: createXML (transient)" % label)
    t.ok(ev.wait(tname, libvirt.VIR_DOMAIN_EVENT_STARTED), "%s: STARTED event (transient)" % label)
    tdom.destroy()
    t.ok(ev.wait(tname, libvirt.VIR_DOMAIN_EVENT_STOPPED), "%s: STOPPED event (transient)" % label)
    t.eq(error_code(conn.lookupByName, tname), libvirt.VIR_ERR_NO_DOMAIN,
         "%s: a destroyed transient domain is gone (VIR_ERR_NO_DOMAIN)" % label)

    t.eq(error_code(conn.defineXML, XML.replace("type='qemu'", "type='xen'") % "bad"),
         libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
         "%s: an unsupported definition raises VIR_ERR_CONFIG_UNSUPPORTED" % label)
    conn.domainEventDeregisterAny(cbid)     # raises on failure
    t.ok(True, "%s: domainEventDeregisterAny" % label)

    if ro_uri:
        ro = libvirt.openReadOnly(ro_uri)
        t.ok(ro.getCapabilities() is not None, "%s: read-only connection reads" % label)
        t.eq(error_code(ro.defineXML, XML % "ro"), libvirt.VIR_ERR_OPERATION_DENIED,
             "%s: read-only connection may not define" % label)
        ro.close()
    conn.close()


def main():
    libvirt.registerErrorHandler(lambda *args: None, None)  # errors are checked, not printed
    libvirt.virEventRegisterDefaultImpl()
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            libvirt.virEventRunDefaultImpl()

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    # a timer keeps the loop turning so that it notices `stop`
    timer = libvirt.virEventAddTimeout(200, lambda *a: None, None)

    d = Daemon("pytour")
    try:
        d.start()
        t.run("daemon tour", tour, d.uri, "daemon", d.ro_uri)
    finally:
        d.cleanup()

    root = tmpdir("pytour-embed")
    os.environ["LIBVIRT_DRIVER_DIR"] = DRIVER_DIR
    try:
        t.run("embedded tour", tour, "qemu:///embed?root=%s" % root, "embed")
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)

    stop.set()
    libvirt.virEventRemoveTimeout(timer)
    th.join(5)
    t.done()


main()
