# test_libvirt_dbus.py: Debian's libvirt-dbus (1.4.1), unmodified, in front
# of Tandem.  libvirt-dbus --session serves qemu:///session, so the test
# runs what a desktop user has: a session libvirtd with Tandem as an
# ordinary user (nobody, as tests/e2e/test_session.py does), a private
# session bus (dbus-daemon started by this test) and libvirt-dbus --session
# as that user on it.  The tour goes through D-Bus only (python3-gi,
# Gio.DBusProxy): the Connect properties, ListDomains, DomainDefineXML,
# the Domain properties (Name, UUID, Active, Persistent, Id) and GetState,
# Create, Suspend/Resume, Shutdown of a Linux guest (ACPI), Destroy,
# Undefine, DomainCreateXML, libvirt errors as D-Bus errors, and the
# DomainEvent signals of each step, asserted against virsh.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import pwd
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tandemtest import TAP, DRIVER_DIR, run, tmpdir  # noqa: E402
from clientutil import guest_paths, stop_proc, wait_for  # noqa: E402

t = TAP()
USER = "nobody"
LIBVIRT_DBUS = "/usr/sbin/libvirt-dbus"
BUS_NAME = "org.libvirt"
CONNECT_PATH = "/org/libvirt/QEMU"

# virDomainEventType
DEFINED, UNDEFINED, STARTED, SUSPENDED, RESUMED, STOPPED, SHUTDOWN = range(7)
# virDomainState
RUNNING, PAUSED, SHUTOFF = 1, 3, 5

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <!-- the test (root) and libvirt-dbus (%s) share this private bus -->
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

PLAIN_XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><console type='pty'/></devices>
</domain>
"""

LINUX_XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0</cmdline></os>
  <features><acpi/></features>
  <devices>
    <serial type='file'><source path='%s'/></serial>
  </devices>
</domain>
"""


class Session:
    """The user's world: home, session libvirtd, bus, libvirt-dbus."""

    def __init__(self):
        self.home = tmpdir("dbus")
        os.chmod(self.home, 0o755)
        self.pw = pwd.getpwnam(USER)
        os.chown(self.home, self.pw.pw_uid, self.pw.pw_gid)
        self.env = dict(os.environ,
                        HOME=self.home,
                        XDG_RUNTIME_DIR=os.path.join(self.home, "run"),
                        XDG_CONFIG_HOME=os.path.join(self.home, "config"),
                        XDG_CACHE_HOME=os.path.join(self.home, "cache"),
                        LIBVIRT_DRIVER_DIR=DRIVER_DIR)
        self.as_user = ["setpriv", "--reuid=%s" % USER, "--regid=%d" % self.pw.pw_gid,
                        "--clear-groups"]
        self.procs = []
        self.bus_socket = os.path.join(self.home, "bus")
        self.address = "unix:path=%s" % self.bus_socket

    def spawn(self, argv, logname, env=None, as_user=True):
        log = open(os.path.join(self.home, logname), "w")
        p = subprocess.Popen((self.as_user if as_user else []) + argv, env=env or self.env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def start(self):
        sock = os.path.join(self.home, "run", "libvirt", "libvirt-sock")
        denv = dict(self.env, LIBVIRT_LOG_OUTPUTS="1:file:%s" % os.path.join(self.home, "libvirtd.log"),
                    LIBVIRT_LOG_FILTERS="1:qemu 3:*")
        self.libvirtd = self.spawn(["libvirtd"], "libvirtd.stderr", env=denv)
        wait_for(lambda: os.path.exists(sock) or self.libvirtd.poll() is not None, 60, 0.1)
        t.ok(self.libvirtd.poll() is None and os.path.exists(sock),
             "session libvirtd (Tandem) up as %s" % USER)
        conf = os.path.join(self.home, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF % (self.bus_socket, USER))
        self.bus = self.spawn(["dbus-daemon", "--nofork", "--nopidfile", "--config-file", conf],
                              "dbus-daemon.log", as_user=False)
        wait_for(lambda: os.path.exists(self.bus_socket) or self.bus.poll() is not None, 30, 0.1)
        t.ok(self.bus.poll() is None and os.path.exists(self.bus_socket),
             "private session bus up (%s)" % self.address)
        self.dbus_env = dict(self.env, DBUS_SESSION_BUS_ADDRESS=self.address)
        self.libvirt_dbus = self.spawn([LIBVIRT_DBUS, "--session"], "libvirt-dbus.log",
                                       env=self.dbus_env)

    def virsh(self, *args):
        return run(self.as_user + ["virsh", "-q", "-c", "qemu:///session"] + list(args), env=self.env)

    def cleanup(self):
        for p in reversed(self.procs):
            stop_proc(p)
        if not os.environ.get("TANDEM_KEEP_TMP"):
            shutil.rmtree(self.home, ignore_errors=True)


class Events:
    """DomainEvent signals of org.libvirt.Connect, received by a GLib main
    loop in a thread."""

    def __init__(self, bus, GLib):
        self.cond = threading.Condition()
        self.seen = []
        self.all = []
        self.sub = bus.signal_subscribe(BUS_NAME, "org.libvirt.Connect", "DomainEvent",
                                        CONNECT_PATH, None, 0, self.cb)

    def cb(self, conn, sender, path, iface, signal, params):
        dom, event, detail = params.unpack()
        with self.cond:
            self.seen.append((dom, event, detail))
            self.all.append((dom, event, detail))
            self.cond.notify_all()

    def wait(self, path, event, timeout=30):
        """Consumes events up to the first (path, event); its detail or None."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for i, (p, e, d) in enumerate(self.seen):
                    if p == path and e == event:
                        del self.seen[:i + 1]
                        return d
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)


def tour(s, paths):
    import gi
    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    bus = Gio.DBusConnection.new_for_address_sync(
        s.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
        Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    loop = GLib.MainLoop()
    th = threading.Thread(target=loop.run, daemon=True)
    th.start()
    try:
        _tour(s, paths, bus, Gio, GLib)
    finally:
        loop.quit()
        th.join(5)
        bus.close_sync(None)


def _tour(s, paths, bus, Gio, GLib):
    def owner():
        try:
            r = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                              "GetNameOwner", GLib.Variant("(s)", (BUS_NAME,)), None, 0, 5000, None)
            return r.unpack()[0]
        except GLib.Error:
            return None
    t.ok(wait_for(lambda: owner() is not None or s.libvirt_dbus.poll() is not None, 30, 0.1)
         and owner() is not None, "libvirt-dbus --session owns %s on the bus" % BUS_NAME)

    def proxy(path, iface):
        return Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.DO_NOT_AUTO_START, None,
                                      BUS_NAME, path, iface, None)

    def call(px, method, sig=None, *args, timeout=60000):
        params = GLib.Variant("(%s)" % sig, args) if sig else None
        r = px.call_sync(method, params, Gio.DBusCallFlags.NONE, timeout, None)
        return r.unpack() if r is not None else None

    def prop(path, iface, name):
        r = bus.call_sync(BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                          GLib.Variant("(ss)", (iface, name)), None, 0, 30000, None)
        return r.unpack()[0]

    def dbus_error(fn, *args):
        try:
            fn(*args)
        except GLib.Error as e:
            remote = Gio.dbus_error_get_remote_error(e)
            Gio.dbus_error_strip_remote_error(e)
            return remote, e.message
        return None

    ev = Events(bus, GLib)
    conn = proxy(CONNECT_PATH, "org.libvirt.Connect")
    # properties of the connection
    t.ok(prop(CONNECT_PATH, "org.libvirt.Connect", "LibVersion") >= 9000000,
         "Connect.LibVersion (libvirt >= 9.0.0)")
    t.ok(prop(CONNECT_PATH, "org.libvirt.Connect", "Version") > 0, "Connect.Version (QEMU's)")
    t.eq(prop(CONNECT_PATH, "org.libvirt.Connect", "Hostname"),
         s.virsh("hostname").out.strip(), "Connect.Hostname = virsh hostname")
    caps = call(conn, "GetCapabilities")[0]
    t.ok("<capabilities>" in caps and "<arch>x86_64</arch>" in caps, "Connect.GetCapabilities")
    t.eq(call(conn, "ListDomains", "u", 0)[0], [], "ListDomains: none yet")

    # define
    name = "dbus1"
    path = call(conn, "DomainDefineXML", "s", PLAIN_XML % name)[0]
    t.ok(path.startswith(CONNECT_PATH + "/domain/"), "DomainDefineXML returns a domain object path", path)
    t.ok(ev.wait(path, DEFINED) is not None, "DomainEvent DEFINED")
    dom = proxy(path, "org.libvirt.Domain")
    D = "org.libvirt.Domain"
    t.eq(prop(path, D, "Name"), name, "Domain.Name")
    uuid = s.virsh("domuuid", name).out.strip()
    t.eq(prop(path, D, "UUID"), uuid, "Domain.UUID = virsh domuuid")
    t.eq((prop(path, D, "Active"), prop(path, D, "Persistent")), (False, True),
         "Domain.Active false, Domain.Persistent true")
    t.eq(call(dom, "GetState", "u", 0)[0][0], SHUTOFF, "Domain.GetState: shut off")
    t.eq(call(conn, "ListDomains", "u", 0)[0], [path], "ListDomains lists it")
    t.eq(call(conn, "DomainLookupByName", "s", name)[0], path, "DomainLookupByName")
    t.eq(call(conn, "DomainLookupByUUID", "s", uuid)[0], path, "DomainLookupByUUID")
    t.ok("<name>%s</name>" % name in call(dom, "GetXMLDesc", "u", 0)[0], "Domain.GetXMLDesc")

    # lifecycle
    call(dom, "Create", "u", 0)
    t.ok(ev.wait(path, STARTED) is not None, "Domain.Create: DomainEvent STARTED")
    t.eq((prop(path, D, "Active"), call(dom, "GetState", "u", 0)[0][0]), (True, RUNNING),
         "running: Active true, GetState running")
    t.eq(s.virsh("domstate", name).out.strip(), "running", "virsh agrees: running")
    t.eq(prop(path, D, "Id"), int(s.virsh("domid", name).out.strip() or -1), "Domain.Id = virsh domid")
    call(dom, "Suspend")
    t.ok(ev.wait(path, SUSPENDED) is not None, "Domain.Suspend: DomainEvent SUSPENDED")
    t.eq((call(dom, "GetState", "u", 0)[0][0], s.virsh("domstate", name).out.strip()),
         (PAUSED, "paused"), "paused (GetState and virsh)")
    call(dom, "Resume")
    t.ok(ev.wait(path, RESUMED) is not None, "Domain.Resume: DomainEvent RESUMED")
    t.eq(s.virsh("domstate", name).out.strip(), "running", "running again")
    err = dbus_error(call, dom, "Create", "u", 0)
    t.ok(err is not None and err[0] == "org.libvirt.Error" and "already running" in err[1],
         "Create of a running domain: org.libvirt.Error with the driver's message", err)
    call(dom, "Destroy", "u", 0)
    t.eq(ev.wait(path, STOPPED), 1, "Domain.Destroy: DomainEvent STOPPED (detail destroyed)")
    t.eq((prop(path, D, "Active"), s.virsh("domstate", name).out.strip()), (False, "shut off"),
         "shut off (Active and virsh)")
    call(dom, "Undefine", "u", 0)
    t.ok(ev.wait(path, UNDEFINED) is not None, "Domain.Undefine: DomainEvent UNDEFINED")
    t.eq(s.virsh("list", "--all", "--name").out.split(), [], "virsh: nothing left")
    err = dbus_error(call, conn, "DomainLookupByName", "s", name)
    t.ok(err is not None and err[0] == "org.libvirt.Error" and name in err[1],
         "DomainLookupByName of an undefined domain: org.libvirt.Error", err)

    # a transient domain
    tpath = call(conn, "DomainCreateXML", "su", PLAIN_XML % "dbus-transient", 0)[0]
    t.ok(ev.wait(tpath, STARTED) is not None, "DomainCreateXML: DomainEvent STARTED")
    t.eq(prop(tpath, D, "Persistent"), False, "transient: Persistent false")
    call(proxy(tpath, D), "Destroy", "u", 0)
    t.ok(ev.wait(tpath, STOPPED) is not None, "transient destroyed: DomainEvent STOPPED")
    t.eq(s.virsh("list", "--all", "--name").out.split(), [], "the transient domain is gone")

    # ACPI shutdown of a Linux guest
    if paths is None:
        t.skip("Domain.Shutdown of a Linux guest", "test guest not available")
        return
    kernel = os.path.join(s.home, "vmlinuz")
    initrd = os.path.join(s.home, "initrd.img")
    shutil.copyfile(paths["KERNEL"], kernel)
    shutil.copyfile(paths["INITRD"], initrd)
    serial = os.path.join(s.home, "linux-serial.log")
    for f in (kernel, initrd):
        os.chmod(f, 0o644)
    lpath = call(conn, "DomainDefineXML", "s", LINUX_XML % ("dbus-linux", kernel, initrd, serial))[0]
    call(proxy(lpath, D), "Create", "u", 0)
    t.ok(ev.wait(lpath, STARTED) is not None, "Linux guest started through D-Bus")

    def ready():
        try:
            with open(serial, errors="replace") as f:
                return "TANDEM-GUEST-READY" in f.read()
        except OSError:
            return False
    t.ok(wait_for(ready, 180, 0.5), "the Linux guest booted (TANDEM-GUEST-READY on its serial port)")
    call(proxy(lpath, D), "Shutdown", "u", 0)
    t.ok(ev.wait(lpath, SHUTDOWN, 120) is not None, "Domain.Shutdown: DomainEvent SHUTDOWN")
    t.eq(ev.wait(lpath, STOPPED, 60), 0, "DomainEvent STOPPED (detail shutdown)")
    t.eq(s.virsh("domstate", "--reason", "dbus-linux").out.strip(), "shut off (shutdown)",
         "virsh: shut off (shutdown)")
    call(proxy(lpath, D), "Undefine", "u", 0)
    t.ok(ev.wait(lpath, UNDEFINED) is not None, "Linux guest undefined: DomainEvent UNDEFINED")
    print("# DomainEvent signals received: %d" % len(ev.all), flush=True)
    bus.signal_unsubscribe(ev.sub)


def main():
    if not os.access(LIBVIRT_DBUS, os.X_OK):
        t.skip("libvirt-dbus", "%s not installed (build-aux/install-deps.sh)" % LIBVIRT_DBUS)
        t.done()
    try:
        paths = guest_paths()
    except Exception as ex:
        print("# test guest: %s" % ex, flush=True)
        paths = None
    s = Session()
    try:
        s.start()
        t.run("D-Bus tour", tour, s, paths)
        t.ok(s.libvirt_dbus.poll() is None, "libvirt-dbus still runs at the end")
    finally:
        s.cleanup()
    t.done()


main()
