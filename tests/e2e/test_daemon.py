# test_daemon.py: Tandem as the qemu driver of a real libvirtd (privileged,
# qemu:///system, in a private mount namespace), driven by virsh and
# python3-libvirt over the daemon's unix socket.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import time
import textwrap

from tandemtest import qemu_version, TAP, Daemon, domain_xml, write_tmp, run

t = TAP()


def define(d, name, **kw):
    path = write_tmp(domain_xml(name, **kw))
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def test_basics(d):
    r = d.virsh("uri")
    t.eq(r.out.strip(), d.uri, "virsh connects to the daemon")
    r = d.virsh("version")
    t.contains(r.out, "Running hypervisor: QEMU %s" % qemu_version()[0], "version through the daemon")
    r = d.virsh("capabilities")
    t.ok(r.rc == 0 and ("<uuid>%s</uuid>" % d.host_uuid) in r.out,
         "capabilities carry the daemon's host_uuid", r)
    t.contains(d.log(), "Tandem QEMU driver ready (qemu:///system",
               "daemon log shows Tandem registered as the qemu driver")
    # the stock drivers beside Tandem keep working
    r = d.virsh("net-list", "--all")
    t.ok(r.rc == 0, "network driver works beside Tandem", r)
    r = d.virsh("pool-list", "--all")
    t.ok(r.rc == 0, "storage driver works beside Tandem", r)
    r = d.virsh("secret-list")
    t.ok(r.rc == 0, "secret driver works beside Tandem", r)
    r = d.virsh("nwfilter-list")
    t.ok(r.rc == 0, "nwfilter driver works beside Tandem", r)


def test_definitions(d):
    r = define(d, "dm1")
    t.ok(r.rc == 0, "define through the daemon", r)
    define(d, "dm2")
    t.eq(sorted(d.virsh("list", "--all", "--name").out.split()), ["dm1", "dm2"],
         "list --all through the daemon")
    t.ok(os.path.exists(d.private("/etc/libvirt/qemu/dm1.xml")),
         "definition stored in /etc/libvirt/qemu (the daemon's namespace)")
    r = d.virsh("dumpxml", "dm1")
    t.ok(r.rc == 0 and "<name>dm1</name>" in r.out, "dumpxml through the daemon", r)
    d.virsh("autostart", "dm2")
    d.virsh("desc", "dm2", "--title", "--config", "kept across restart")


def test_restart(d):
    uuid_before = d.virsh("domuuid", "dm1").out.strip()
    bad = d.private("/etc/libvirt/qemu/corrupt.xml")
    with open(bad, "w") as f:
        f.write("<domain type='qemu'><name>corrupt</name><uuid>zzz</uuid></domain>")
    d.restart()
    t.ok(d.alive(), "daemon restarted")
    names = sorted(d.virsh("list", "--all", "--name").out.split())
    t.eq(names, ["dm1", "dm2"], "definitions survive a daemon restart; the corrupt one is skipped")
    t.eq(d.virsh("domuuid", "dm1").out.strip(), uuid_before, "uuid survives the restart")
    t.contains(d.virsh("dominfo", "dm2").out, "Autostart:      enable", "autostart survives the restart")
    t.eq(d.virsh("desc", "dm2", "--title").out.strip(), "kept across restart", "title survives the restart")
    t.ok(os.path.exists(bad), "the corrupt definition file is still there")
    t.contains(d.log(), "Failed to load config for domain 'corrupt'",
               "the corrupt definition is reported in the daemon log")
    os.unlink(bad)


def test_readonly(d):
    r = d.virsh("list", "--all", "--name", readonly=True)
    t.ok(r.rc == 0 and "dm1" in r.out.split(), "read-only connection can list", r)
    r = d.virsh("dumpxml", "dm1", readonly=True)
    t.ok(r.rc == 0, "read-only connection can dumpxml", r)
    path = write_tmp(domain_xml("ro1"))
    for argv in (["define", path], ["undefine", "dm1"], ["autostart", "dm1"],
                 ["desc", "dm1", "--config", "--title", "x"]):
        r = d.virsh(*argv, readonly=True)
        t.ok(r.rc != 0 and "read only access prevents virDomain" in r.err,
             "read-only connection refused: %s" % argv[0], r)
    os.unlink(path)
    r = d.virsh("dumpxml", "--security-info", "dm1", readonly=True)
    t.ok(r.rc != 0 and "virDomainGetXMLDesc with secure flag" in r.err,
         "read-only connection refused: dumpxml --security-info", r)
    t.ok("ro1" not in d.virsh("list", "--all", "--name").out.split(),
         "nothing defined by the refused calls")


PY_CLIENT = textwrap.dedent(r'''
    import json, sys, threading, time, libvirt
    uri = sys.argv[1]
    libvirt.virEventRegisterDefaultImpl()
    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=loop, daemon=True).start()
    out = {}
    conn = libvirt.open(uri)
    events = []
    def cb(conn, dom, event, detail, opaque):
        events.append([dom.name(), event, detail])
    cid = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, cb, None)
    xml = sys.stdin.read()
    dom = conn.defineXML(xml)
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, "py title", None, None,
                    libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    out["title"] = dom.metadata(libvirt.VIR_DOMAIN_METADATA_TITLE, None)
    out["list"] = sorted(d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE))
    out["type"] = conn.getType()
    out["hv_version"] = conn.getVersion()
    ro = libvirt.openReadOnly(uri)
    try:
        ro.defineXML(xml.replace("pyd1", "pyd2"))
        out["ro_error"] = None
    except libvirt.libvirtError as ex:
        out["ro_error"] = ex.get_error_code()
    ro.close()
    dom.undefine()
    deadline = time.time() + 10
    while len(events) < 3 and time.time() < deadline:
        time.sleep(0.05)
    out["events"] = events
    conn.domainEventDeregisterAny(cid)
    conn.close()
    print(json.dumps(out))
''')


def test_python(d):
    import libvirt
    r = run(["/usr/bin/python3", "-c", PY_CLIENT, d.uri], input=domain_xml("pyd1"))
    if not t.ok(r.rc == 0, "python3-libvirt client over the daemon socket ran", r):
        return
    out = json.loads(r.out)
    t.eq(out["title"], "py title", "python: setMetadata/metadata")
    t.ok("pyd1" in out["list"], "python: listAllDomains(INACTIVE)")
    t.eq(out["type"], "QEMU", "python: getType")
    t.eq(out["hv_version"], qemu_version()[1], "python: getVersion is QEMU's")
    t.eq(out["ro_error"], libvirt.VIR_ERR_OPERATION_DENIED, "python: read-only define denied")
    t.eq(out["events"],
         [["pyd1", libvirt.VIR_DOMAIN_EVENT_DEFINED, libvirt.VIR_DOMAIN_EVENT_DEFINED_ADDED],
          ["pyd1", libvirt.VIR_DOMAIN_EVENT_UNDEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED]],
         "python: lifecycle events through the daemon")


def test_version_mismatch():
    d = Daemon("mismatch", extra_env={"TANDEM_TEST_RUNNING_LIBVIRT_VERSION": "1.2.3"})
    try:
        try:
            d.start(timeout=30)
            started = True
        except RuntimeError:
            started = False
        t.ok(not started, "libvirtd does not come up with a module built for another libvirt")
        t.contains(d.log_tail(200), "built for libvirt 9.0.0 but is loaded into libvirt 1.2.3; refusing to register",
                   "daemon log: the module refuses another libvirt version, naming both")
    finally:
        d.cleanup()


def test_bad_qemu_conf():
    d = Daemon("badconf", qemu_conf="max_queued = \"lots\"\n")
    try:
        try:
            d.start(timeout=30)
            started = True
        except RuntimeError:
            started = False
        t.ok(not started, "libvirtd refuses to run with a bad qemu.conf")
        t.contains(d.log_tail(200), "/etc/libvirt/qemu.conf: invalid value for 'max_queued'",
                   "daemon log names qemu.conf and the key")
    finally:
        d.cleanup()


def test_two_daemons():
    a = Daemon("hostA")
    b = Daemon("hostB")
    try:
        a.start()
        b.start()
        path = write_tmp(domain_xml("only-on-a"))
        t.ok(a.virsh("define", path).rc == 0, "two daemons: define on A")
        os.unlink(path)
        t.eq(b.virsh("list", "--all", "--name").out.split(), [], "two daemons: B does not see A's domain")
        t.ok(a.host_uuid != b.host_uuid and a.host_uuid in a.virsh("capabilities").out
             and b.host_uuid in b.virsh("capabilities").out,
             "two daemons: each has its own host UUID")
    finally:
        a.cleanup()
        b.cleanup()


AUTO_XML = """<domain type='qemu'>
  <name>auto1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><console type='pty'/></devices>
</domain>
"""


def test_autostart(d):
    """Autostart domains start once per boot of the host: a daemon start
    after a reboot (the run directory is empty) starts them; a restart of
    the daemon alone does not.  dm2 (autostart, its disk missing) fails
    to start without keeping auto1 from starting."""
    path = write_tmp(AUTO_XML)
    try:
        t.ok(d.virsh("define", path).rc == 0, "define auto1", None)
    finally:
        os.unlink(path)
    r = d.virsh("autostart", "auto1")
    t.ok(r.rc == 0, "autostart auto1", r)
    d.stop()
    marker = d.private("/run/libvirt/qemu/autostarted")
    t.ok(os.path.exists(marker), "the daemon marked this boot's autostart as done")
    os.unlink(marker)          # what a reboot does to the run directory
    d.start()
    deadline = time.time() + 60
    while time.time() < deadline and d.virsh("domstate", "auto1").out.strip() != "running":
        time.sleep(0.5)
    t.eq(d.virsh("domstate", "auto1").out.strip(), "running",
         "after a host boot the daemon starts auto1")
    t.ok(d.virsh("domstate", "dm2").out.strip() == "shut off",
         "dm2 could not start (its disk is missing): shut off")
    t.ok("Failed to autostart VM 'dm2'" in d.log(), "the failure is in the daemon log")
    r = d.virsh("destroy", "auto1")
    t.ok(r.rc == 0, "destroy auto1", r)
    d.restart()
    time.sleep(3)
    t.eq(d.virsh("domstate", "auto1").out.strip(), "shut off",
         "a daemon restart in the same boot does not autostart again")
    d.virsh("undefine", "auto1")


d = Daemon("daemon")
try:
    d.start()
    for name, fn in [("basics", test_basics), ("definitions", test_definitions),
                     ("restart", test_restart), ("autostart", test_autostart),
                     ("read-only", test_readonly),
                     ("python", test_python)]:
        t.run(name, fn, d)
    t.ok(d.alive(), "daemon still alive at the end")
    rc = d.stop()
    t.eq(rc, 0, "daemon stopped cleanly on SIGTERM")
except Exception as ex:
    t.ok(False, "daemon test setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    d.cleanup()
t.run("version mismatch", test_version_mismatch)
t.run("bad qemu.conf", test_bad_qemu_conf)
t.run("two daemons", test_two_daemons)
t.done()
