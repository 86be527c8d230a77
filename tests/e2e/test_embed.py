# test_embed.py: the embedded driver (qemu:///embed?root=DIR) through real
# virsh and python3-libvirt: definitions, persistence, bad input, host info.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import textwrap

from tandemtest import qemu_version, TAP, Embedded, domain_xml, write_tmp, run

t = TAP()
e = Embedded("embed")


def define(name, **kw):
    path = write_tmp(domain_xml(name, **kw))
    try:
        return e.virsh("define", path)
    finally:
        os.unlink(path)


def test_host_info():
    r = e.virsh("uri")
    t.eq(r.out.strip(), e.uri, "virsh uri names the embedded root")
    r = e.virsh("version")
    t.contains(r.out, "Running hypervisor: QEMU %s" % qemu_version()[0], "virsh version reports the probed QEMU")
    r = e.virsh("capabilities")
    t.ok(r.rc == 0 and "<os_type>hvm</os_type>" in r.out and "<arch name='x86_64'>" in r.out,
         "capabilities list an x86_64 hvm guest", r)
    t.contains(r.out, "pc-i440fx-7.2", "capabilities list the probed machine types")
    t.contains(r.out, "<domain type='qemu'", "capabilities offer domain type qemu")
    r = e.virsh("domcapabilities")
    t.ok(r.rc == 0 and "<domainCapabilities>" in r.out and "<path>/usr/bin/qemu-system-x86_64</path>" in r.out,
         "domcapabilities for the default emulator", r)
    r = e.virsh("domcapabilities", "--machine", "no-such-machine")
    t.ok(r.rc != 0 and "no-such-machine" in r.err, "domcapabilities refuses an unknown machine", r)
    r = e.virsh("nodeinfo")
    t.ok(r.rc == 0 and "CPU(s):" in r.out, "nodeinfo", r)
    r = e.virsh("hostname")
    t.eq(r.out.strip(), os.uname().nodename, "hostname")


def test_define_roundtrip():
    r = define("rt1")
    t.ok(r.rc == 0, "define a domain", r)
    r = e.virsh("list", "--all", "--name")
    t.eq(r.out.split(), ["rt1"], "list --all shows it")
    r = e.virsh("list", "--name")
    t.eq(r.out.split(), [], "list (active only) does not")
    r = e.virsh("dumpxml", "rt1")
    t.ok(r.rc == 0 and "<name>rt1</name>" in r.out, "dumpxml has the name", r)
    t.contains(r.out, "machine='pc-i440fx-7.2'", "machine alias 'pc' is canonicalized")
    t.contains(r.out, "<emulator>/usr/bin/qemu-system-x86_64</emulator>", "default emulator filled in")
    uuid1 = e.virsh("domuuid", "rt1").out.strip()
    t.eq(len(uuid1), 36, "domuuid")
    t.eq(e.virsh("domname", uuid1).out.strip(), "rt1", "domname by uuid")
    t.eq(e.virsh("domid", "rt1").out.strip(), "-", "domid of an inactive domain is '-'")
    r = e.virsh("dumpxml", "--inactive", "--security-info", "rt1")
    t.ok(r.rc == 0 and "<name>rt1</name>" in r.out, "dumpxml --inactive --security-info", r)

    # the dumped XML defines the same domain again: a true round trip
    dumped = e.virsh("dumpxml", "rt1").out
    path = write_tmp(dumped)
    r = e.virsh("define", path)
    os.unlink(path)
    t.ok(r.rc == 0, "redefine from dumpxml output", r)
    t.eq(e.virsh("dumpxml", "rt1").out, dumped, "dumpxml is stable across redefine")
    t.eq(e.virsh("domuuid", "rt1").out.strip(), uuid1, "redefine keeps the uuid")

    r = define("rt1", uuid_str="11111111-2222-3333-4444-555555555555")
    t.ok(r.rc != 0 and "already" in r.err, "same name with another uuid is refused", r)

    path = os.path.join(e.root, "etc", "qemu", "rt1.xml")
    t.ok(os.path.exists(path), "definition persisted in ROOT/etc/qemu", path)


def test_list_filters_autostart_metadata():
    define("flt1")
    define("flt2")
    r = e.virsh("autostart", "flt1")
    t.ok(r.rc == 0, "autostart", r)
    t.ok(os.path.islink(os.path.join(e.root, "etc", "qemu", "autostart", "flt1.xml")),
         "autostart link created")
    t.eq(e.virsh("list", "--all", "--name", "--autostart").out.split(), ["flt1"],
         "list --autostart")
    t.ok("flt1" not in e.virsh("list", "--all", "--name", "--no-autostart").out.split(),
         "list --no-autostart")
    t.ok("flt2" in e.virsh("list", "--inactive", "--name").out.split(), "list --inactive")
    t.ok("flt2" in e.virsh("list", "--all", "--persistent", "--name").out.split(),
         "list --persistent")
    t.eq(e.virsh("list", "--all", "--transient", "--name").out.split(), [], "list --transient")
    r = e.virsh("dominfo", "flt1")
    t.ok(r.rc == 0 and "Autostart:      enable" in r.out, "dominfo shows autostart", r)
    r = e.virsh("autostart", "--disable", "flt1")
    t.ok(r.rc == 0 and not os.path.lexists(os.path.join(e.root, "etc", "qemu", "autostart", "flt1.xml")),
         "autostart --disable removes the link", r)

    r = e.virsh("desc", "flt2", "--title", "--config", "Second guest")
    t.ok(r.rc == 0, "desc --title", r)
    r = e.virsh("desc", "flt2", "--config", "A longer description")
    t.ok(r.rc == 0, "desc (description)", r)
    t.eq(e.virsh("desc", "flt2", "--title").out.strip(), "Second guest", "title read back")
    t.eq(e.virsh("desc", "flt2").out.strip(), "A longer description", "description read back")
    r = e.virsh("list", "--all", "--title")
    t.contains(r.out, "Second guest", "list --title")
    t.contains(e.virsh("dumpxml", "flt2").out, "<title>Second guest</title>", "title persisted in XML")
    r = e.virsh("metadata", "flt2", "--uri", "http://example.org/t", "--key", "t",
                "--set", "<thing>x</thing>", "--config")
    t.ok(r.rc == 0, "metadata --set", r)
    r = e.virsh("metadata", "flt2", "--uri", "http://example.org/t")
    t.contains(r.out, "<thing>x</thing>", "metadata read back")


def test_undefine():
    define("und1")
    r = e.virsh("undefine", "und1")
    t.ok(r.rc == 0, "undefine", r)
    t.ok("und1" not in e.virsh("list", "--all", "--name").out.split(), "gone from list")
    t.ok(not os.path.exists(os.path.join(e.root, "etc", "qemu", "und1.xml")), "config file removed")
    r = e.virsh("undefine", "und1")
    t.ok(r.rc != 0 and "failed to get domain" in r.err, "undefine of an unknown domain fails", r)

    # a managed save image blocks undefine unless --managed-save
    define("und2")
    save = os.path.join(e.root, "lib", "save", "und2.save")
    with open(save, "w") as f:
        f.write("fake")
    # a new process: the driver notices the image when it loads definitions
    r = e.virsh("dominfo", "und2")
    t.contains(r.out, "Managed save:   yes", "dominfo notices a managed save image")
    r = e.virsh("undefine", "und2")
    t.ok(r.rc != 0 and "managed save image exists" in r.err, "undefine refused with a managed save image", r)
    t.ok(os.path.exists(save), "image kept after refusal")
    r = e.virsh("undefine", "--managed-save", "und2")
    t.ok(r.rc == 0 and not os.path.exists(save), "undefine --managed-save removes it", r)

    define("und3")
    r = e.virsh("undefine", "--nvram", "und3")
    t.ok(r.rc == 0, "undefine --nvram accepted", r)
    define("und4")
    r = e.virsh("undefine", "--keep-nvram", "--snapshots-metadata", "--checkpoints-metadata", "und4")
    t.ok(r.rc == 0, "undefine --keep-nvram --snapshots-metadata --checkpoints-metadata accepted", r)


def test_persistence_and_corrupt_file():
    define("pers1")
    bad = os.path.join(e.root, "etc", "qemu", "broken.xml")
    with open(bad, "w") as f:
        f.write("<domain type='qemu'><name>broken</name><this is not xml")
    # every virsh call is a new process: the definitions are reloaded
    r = e.virsh("list", "--all", "--name")
    t.ok(r.rc == 0 and "pers1" in r.out.split(), "definition reloaded by a new driver instance", r)
    t.ok("broken" not in r.out.split(), "corrupt definition skipped")
    t.ok(os.path.exists(bad), "corrupt definition file is not deleted")
    with open(bad) as f:
        t.ok("this is not xml" in f.read(), "corrupt definition file left untouched")
    os.unlink(bad)


def test_bad_input():
    before = sorted(os.listdir(os.path.join(e.root, "etc", "qemu")))
    path = write_tmp("<domain type='qemu'><name>x</name><memory>1024</memory")
    r = e.virsh("define", path)
    os.unlink(path)
    t.ok(r.rc != 0 and "(domain_definition):1: expected '>'" in r.err,
         "malformed XML refused with the parser's error and position", r)

    cases = [
        ("xen", domain_xml("bad1", vtype="xen"), "unsupported configuration: unsupported <domain type='xen'>"),
        ("unknown machine", domain_xml("bad2", machine="nosuch"), "machine type 'nosuch' is not supported"),
        ("arch", domain_xml("bad3", arch="aarch64"), "arch='aarch64'"),
        ("hostdev", domain_xml("bad4", extra_devices="<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0' slot='2' function='0'/></source></hostdev>"),
         "unsupported configuration: unsupported device element <hostdev>"),
        ("tpm", domain_xml("bad5", extra_devices="<tpm model='tpm-tis'><backend type='emulator'/></tpm>"),
         "unsupported device element <tpm>"),
        # libvirt's parser would allocate for UINT_MAX vCPUs and abort the
        # process (found by the cookie fuzzer)
        ("vcpu -1", domain_xml("bad7").replace("<vcpu>1</vcpu>", "<vcpu>-1</vcpu>"),
         "vCPU count '-1' is out of range: QEMU runs 1 to 4096 vCPUs"),
        ("vcpu current 100000", domain_xml("bad8").replace("<vcpu>1</vcpu>",
                                                           "<vcpu current='100000'>2</vcpu>"),
         "vCPU count '100000' is out of range"),
    ]
    for what, xml, msg in cases:
        path = write_tmp(xml)
        r = e.virsh("define", path)
        os.unlink(path)
        t.ok(r.rc != 0 and msg in r.err, "refused: %s" % what, r)
    xml = domain_xml("bad6").replace("<devices>", "<devices><emulator>/nonexistent/qemu</emulator>")
    path = write_tmp(xml)
    r = e.virsh("define", path)
    os.unlink(path)
    t.ok(r.rc != 0 and "/nonexistent/qemu" in r.err, "refused: missing emulator", r)
    t.eq(sorted(os.listdir(os.path.join(e.root, "etc", "qemu"))), before,
         "nothing written for refused definitions")

    path = write_tmp(domain_xml("nat1"))
    r = e.virsh("domxml-to-native", "qemu-argv", path)
    os.unlink(path)
    t.ok(r.rc == 0 and r.out.startswith("LC_ALL=C") or "/usr/bin/qemu-system-x86_64 " in r.out,
         "domxml-to-native qemu-argv prints the command line", r)
    t.ok("-blockdev" in r.out and "-no-user-config" in r.out and "guest=nat1" in r.out,
         "domxml-to-native: modern argv for the domain", r.out)


def test_logging():
    env = dict(e.env, LIBVIRT_LOG_FILTERS="1:qemu", LIBVIRT_LOG_OUTPUTS="1:stderr")
    path = write_tmp(domain_xml("log1"))
    r = e.virsh("define", path, env=env)
    os.unlink(path)
    t.ok(r.rc == 0 and "debug : qemuStateInitialize" in r.err,
         "LIBVIRT_LOG_FILTERS=1:qemu shows Tandem's debug output", r)
    t.contains(r.err, "info : qemuDomainDefineXMLFlags", "and its info messages")


def test_qemu_conf():
    conf = Embedded("qemuconf")
    path = os.path.join(conf.root, "etc", "qemu.conf")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("job_wait_timeout = -5\n")
    r = conf.virsh("list", "--all")
    t.ok(r.rc != 0 and "%s: invalid value for 'job_wait_timeout': expected a positive integer" % path in r.err,
         "qemu.conf: a bad value fails the driver, naming the file and the key", r)
    with open(path, "w") as f:
        f.write("# Debian's own keys\nsecurity_driver = \"none\"\njob_wait_timeout = 5\n")
    env = dict(conf.env, LIBVIRT_LOG_OUTPUTS="3:stderr")
    r = conf.virsh("list", "--all", env=env)
    t.ok(r.rc == 0 and "unknown setting 'security_driver' ignored" in r.err,
         "qemu.conf: an unknown key is a warning, not an error", r)
    with open(path, "w") as f:
        f.write("migration_port_min = 50000\nmigration_port_max = 40000\n")
    r = conf.virsh("list", "--all")
    t.ok(r.rc != 0 and "migration_port" in r.err, "qemu.conf: port range checked", r)
    with open(path, "w") as f:
        f.write("vnc_listen = [ \"unterminated\"\n")
    r = conf.virsh("list", "--all")
    t.ok(r.rc != 0 and "%s:1" % path in r.err, "qemu.conf: a syntax error names the line", r)
    conf.cleanup()


def test_version_mismatch():
    env = dict(e.env, TANDEM_TEST_RUNNING_LIBVIRT_VERSION="8.0.0")
    r = e.virsh("list", "--all", env=env)
    t.ok(r.rc != 0 and "built for libvirt 9.0.0 but is loaded into libvirt 8.0.0" in r.err,
         "module refuses to register in another libvirt version", r)


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
    out["name"] = dom.name()
    out["persistent"] = dom.isPersistent()
    out["active"] = dom.isActive()
    out["state"] = dom.state()
    out["list"] = sorted(d.name() for d in conn.listAllDomains())
    out["xml_has_name"] = "<name>%s</name>" % dom.name() in dom.XMLDesc()
    try:
        conn.defineXML(xml.replace("type='qemu'", "type='xen'", 1).replace(dom.name(), "pyxen"))
        out["xen_error"] = None
    except libvirt.libvirtError as ex:
        out["xen_error"] = [ex.get_error_code(), ex.get_error_domain()]
    try:
        conn.lookupByName("no-such-domain")
    except libvirt.libvirtError as ex:
        out["lookup_error"] = ex.get_error_code()
    dom.undefine()
    deadline = time.time() + 10
    while len(events) < 2 and time.time() < deadline:
        time.sleep(0.05)
    out["events"] = events
    conn.domainEventDeregisterAny(cid)
    conn.close()
    print(json.dumps(out))
''')


def test_python_embedded():
    import json
    r = run(["/usr/bin/python3", "-c", PY_CLIENT, e.uri], env=e.env,
            input=domain_xml("pyemb"))
    if not t.ok(r.rc == 0, "python3-libvirt embedded client ran", r):
        return
    out = json.loads(r.out)
    import libvirt
    t.eq(out["name"], "pyemb", "python: defineXML")
    t.eq([out["persistent"], out["active"]], [1, 0], "python: persistent, inactive")
    t.eq(out["state"], [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN],
         "python: state shutoff")
    t.ok("pyemb" in out["list"], "python: listAllDomains")
    t.ok(out["xml_has_name"], "python: XMLDesc")
    t.eq(out["xen_error"], [libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_FROM_QEMU],
         "python: unsupported XML gives VIR_ERR_CONFIG_UNSUPPORTED from the qemu driver")
    t.eq(out["lookup_error"], libvirt.VIR_ERR_NO_DOMAIN, "python: unknown domain gives VIR_ERR_NO_DOMAIN")
    t.eq(out["events"], [["pyemb", libvirt.VIR_DOMAIN_EVENT_DEFINED, libvirt.VIR_DOMAIN_EVENT_DEFINED_ADDED],
                         ["pyemb", libvirt.VIR_DOMAIN_EVENT_UNDEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED]],
         "python: lifecycle events for define and undefine")


def test_root_lock():
    # one root, one driver: a second process on the same root is refused
    # while the first holds it
    p = subprocess.Popen(["virsh", "-c", e.uri], env=e.env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write("uri\n")
        p.stdin.flush()
        p.stdout.readline()
        r = e.virsh("list", "--all")
        t.ok(r.rc != 0, "a second driver on the same root is refused", r)
    finally:
        p.stdin.close()
        p.wait(timeout=30)


for name, fn in [("host info", test_host_info),
                 ("define round trip", test_define_roundtrip),
                 ("list filters, autostart, metadata", test_list_filters_autostart_metadata),
                 ("undefine", test_undefine),
                 ("persistence and corrupt files", test_persistence_and_corrupt_file),
                 ("bad input", test_bad_input),
                 ("logging", test_logging),
                 ("qemu.conf", test_qemu_conf),
                 ("version mismatch", test_version_mismatch),
                 ("python embedded", test_python_embedded),
                 ("root lock", test_root_lock)]:
    t.run(name, fn)
e.cleanup()
t.done()
