# test_virt_manager.py: Debian's virt-manager (4.1), unmodified, driven for
# real under Xvfb through the accessibility bus (python3-dogtail / AT-SPI;
# xdotool for the clicks that have no accessible action), against two real
# libvirtd daemons running Tandem ("Host A" and "Host B").
#
# The test starts Xvfb on a free display, a private session bus (AT-SPI is
# activated on it), and virt-manager --debug --no-fork with a GSettings
# keyfile of its own (both connections, CPU/host CPU/memory graphs in the
# list, 1 s stats interval).  Then, checking every action with virsh and
# taking a screenshot of each step:
#   list     both connections and the guest are listed
#   start    Run; the CPU graph of the list fills with samples (the memory
#            graph draws from domstats' balloon.unused)
#   pause    Pause, and Pause again to resume
#   console  Open: the VM window with its VNC console
#   migrate  "Migrate..." from the VM window to Host B: the dialog, then its
#            progress window while the (throttled) live migration runs; the
#            guest ends running and persistent on B, gone from A
#   stop     Shut Down (ACPI) on B
# and at the end virt-manager's debug log must hold no libvirt error.
#
# Screenshots: $TANDEM_SCREENSHOT_DIR, else tests/e2e/clients/
# virt-manager-screenshots/ in the build directory; kept after the run and
# listed in the output ("# screenshot: PATH").
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tandemtest import BUILDDIR, TAP, Daemon, tmpdir  # noqa: E402
from clientutil import define, guest_paths, stop_proc, wait_for  # noqa: E402

t = TAP()
VIRT_MANAGER = "/usr/bin/virt-manager"
NAME = "vmm1"
SHOTS = os.environ.get("TANDEM_SCREENSHOT_DIR") or \
    os.path.join(BUILDDIR, "tests", "e2e", "clients", "virt-manager-screenshots")
MIGRATE_MIB_S = 8

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <standard_session_servicedirs/>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

GUEST_XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><initrd>%s</initrd>
    <cmdline>console=ttyS0 console=tty0</cmdline></os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
    <video><model type='vga'/></video>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


def conn_uri(d):
    # qemu:///system?socket=...: virt-manager takes a URI with an explicit
    # transport (qemu+unix://) for a remote host and then refuses a VNC
    # console that listens on 127.0.0.1; without it the connection is local
    return "qemu:///system?socket=%s" % d.socket


KEYFILE = """[org/virt-manager/virt-manager/connections]
uris=['{a}', '{b}']
autoconnect=['{a}', '{b}']

[org/virt-manager/virt-manager/vmlist-fields]
cpu-usage=true
host-cpu-usage=true
memory-usage=true

[org/virt-manager/virt-manager/stats]
update-interval=1
enable-memory-poll=true

[org/virt-manager/virt-manager/confirm]
forcepoweroff=false

[org/virt-manager/virt-manager/conns/{ka}]
pretty-name='Host A'

[org/virt-manager/virt-manager/conns/{kb}]
pretty-name='Host B'

[org/gnome/desktop/interface]
toolkit-accessibility=true
"""


class Desktop:
    """Xvfb + a session bus + virt-manager, all stopped by their PIDs."""

    def __init__(self, a, b):
        self.home = tmpdir("vmm")
        self.procs = []
        self.a, self.b = a, b
        cfg = os.path.join(self.home, "config")
        os.makedirs(os.path.join(cfg, "glib-2.0", "settings"))
        os.makedirs(os.path.join(self.home, "run"), mode=0o700)
        ua, ub = conn_uri(a), conn_uri(b)
        with open(os.path.join(cfg, "glib-2.0", "settings", "keyfile"), "w") as f:
            f.write(KEYFILE.format(a=ua, b=ub, ka=ua.replace("/", ""), kb=ub.replace("/", "")))
        self.env = dict(os.environ, HOME=self.home, XDG_CONFIG_HOME=cfg,
                        XDG_CACHE_HOME=os.path.join(self.home, "cache"),
                        XDG_RUNTIME_DIR=os.path.join(self.home, "run"),
                        GSETTINGS_BACKEND="keyfile", LC_ALL="C.UTF-8", LANG="C.UTF-8")
        self.env.pop("NO_AT_BRIDGE", None)
        self.vmm_log = os.path.join(self.home, "cache", "virt-manager", "virt-manager.log")

    def spawn(self, argv, logname, **kw):
        log = open(os.path.join(self.home, logname), "w")
        p = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def start_x(self):
        r, w = os.pipe()
        self.xvfb = self.spawn(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x900x24",
                                "-nolisten", "tcp"], "xvfb.log", pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            display = f.readline().strip()
        if not display:
            return False
        self.env["DISPLAY"] = ":" + display
        bus = os.path.join(self.home, "bus")
        with open(os.path.join(self.home, "bus.conf"), "w") as f:
            f.write(BUS_CONF % bus)
        self.bus = self.spawn(["dbus-daemon", "--nofork", "--nopidfile", "--config-file",
                               os.path.join(self.home, "bus.conf")], "dbus.log")
        wait_for(lambda: os.path.exists(bus), 30, 0.1)
        self.env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=%s" % bus
        return os.path.exists(bus)

    def start_vmm(self):
        self.vmm = self.spawn(["/usr/bin/python3", VIRT_MANAGER, "--debug", "--no-fork"],
                              "virt-manager.stderr")

    def screenshot(self, name):
        path = os.path.join(SHOTS, name + ".png")
        r = subprocess.run(["import", "-display", self.env["DISPLAY"], "-window", "root", path],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            print("# screenshot: %s" % path, flush=True)
            return path
        print("# screenshot %s failed: %s" % (name, r.stderr.strip()), flush=True)
        return None

    def click_at(self, node, double=False):
        (x, y), (w, h) = node.position, node.size
        subprocess.run(["xdotool", "mousemove", str(x + w // 2), str(y + h // 2),
                        "click", "--repeat", "2" if double else "1", "1"],
                       env=self.env, check=True, timeout=30)

    def log(self):
        try:
            with open(self.vmm_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        for p in reversed(self.procs):
            stop_proc(p)
        if not os.environ.get("TANDEM_KEEP_TMP"):
            shutil.rmtree(self.home, ignore_errors=True)


def colors(png, box):
    """How many colours the screenshot has inside box (x, y, w, h)."""
    from PIL import Image
    x, y, w, h = box
    with Image.open(png) as im:
        # well inside the white plot area of the cell (its frame and the
        # selection colour around it stay out)
        return len(im.convert("RGB").crop((x + 12, y + 3, x + w - 12, y + h - 3)).getcolors(1 << 16) or [])


class UI:
    def __init__(self, desk):
        self.desk = desk
        from dogtail import config, tree
        config.config.logDebugToFile = False
        config.config.logDebugToStdOut = False
        config.config.defaultDelay = 0.1
        self.tree = tree
        self.app = None

    def find(self, pred, root=None, timeout=30):
        """The first showing accessible matching pred, waiting for it."""
        deadline = time.time() + timeout
        while True:
            try:
                if root is None and self.app is None:
                    self.app = self.tree.root.application("virt-manager")
                n = (root or self.app).findChild(lambda x: x.showing and pred(x), retry=False,
                                                 requireResult=False)
                if n is not None:
                    return n
            except Exception:       # the application or node is not there yet
                pass
            if time.time() > deadline:
                return None
            time.sleep(0.3)

    def named(self, role, name, root=None, timeout=30):
        return self.find(lambda x: x.roleName == role and x.name == name, root, timeout)

    def vm_cell(self, timeout=30):
        return self.find(lambda x: x.roleName == "table cell" and x.name.startswith(NAME + "\n"),
                         timeout=timeout)

    def frames(self):
        try:
            return [f.name for f in self.app.children]
        except Exception:
            return []

    def wait_cell(self, state, timeout=60):
        def ok():
            c = self.vm_cell(1)
            return c is not None and c.name == "%s\n%s" % (NAME, state)
        return wait_for(ok, timeout, 0.3)

    def press(self, role, name, root=None):
        b = self.named(role, name, root)
        if b is None:
            raise RuntimeError("no %s %r on the screen (frames: %s)" % (role, name, self.frames()))
        wait_for(lambda: b.sensitive, 30, 0.2)
        b.doActionNamed("click")

    def select_vm(self):
        """Clicks the guest's row until the toolbar knows it is selected
        (Open is sensitive only with a selected guest)."""
        opened = self.named("push button", "Open")
        for _ in range(3):
            c = self.vm_cell()
            self.desk.click_at(c)
            if wait_for(lambda: opened is not None and opened.sensitive, 5, 0.2):
                break
        return c


def state(d):
    r = d.virsh("domstate", "--reason", NAME)
    return r.out.strip() if r.rc == 0 else "error: " + r.err.strip()


def graph_boxes(ui):
    """Screen boxes of the CPU usage and Memory usage cells of the VM row."""
    row = ui.vm_cell()
    boxes = {}
    for title in ("CPU usage", "Memory usage"):
        head = ui.find(lambda x: x.roleName == "table column header" and x.name == title, timeout=5)
        if head is None or row is None:
            continue
        (hx, _), (hw, _) = head.position, head.size
        (_, ry), (_, rh) = row.position, row.size
        boxes[title] = (hx, ry, hw, rh)
    return boxes


def steps(desk, ui, a, b):
    # --- list
    t.ok(ui.app is not None or ui.find(lambda x: x.roleName == "frame") is not None,
         "virt-manager is on the accessibility bus")
    t.ok(ui.named("table cell", "Host A") is not None and ui.named("table cell", "Host B") is not None,
         "the manager lists both connections (Host A, Host B)")
    t.ok(ui.wait_cell("Shutoff"), "the manager lists %s, shut off" % NAME)
    desk.screenshot("01-manager-list")

    # --- start, live graphs
    ui.select_vm()
    ui.press("push button", "Run")
    t.ok(wait_for(lambda: state(a).startswith("running"), 60), "Run: virsh says running", state(a))
    t.ok(ui.wait_cell("Running"), "the list shows it running")
    boxes = graph_boxes(ui)
    t.eq(sorted(boxes), ["CPU usage", "Memory usage"], "the list has CPU and memory graph columns")
    drawn = {}

    def graphs_drawn():
        shot = desk.screenshot("02-running-graphs")
        for k in boxes:
            drawn[k] = colors(shot, boxes[k]) if shot else 0
        return all(v > 8 for v in drawn.values())
    wait_for(graphs_drawn, 60, 3)
    balloon = a.virsh("domstats", "--balloon", NAME).out
    t.ok(drawn.get("CPU usage", 0) > 8, "the CPU usage graph of the list draws live samples",
         "colours in the plot area: %s" % drawn)
    # virt-manager draws memory from getAllDomainStats' balloon.current and
    # balloon.unused (guest statistics, polled once it set a stats period)
    t.ok(drawn.get("Memory usage", 0) > 8, "the Memory usage graph of the list draws live samples",
         "colours in the plot area: %s\nvirsh domstats --balloon:\n%s" % (drawn, balloon))

    # --- pause / resume
    ui.press("toggle button", "Pause")
    t.ok(wait_for(lambda: state(a).startswith("paused"), 30), "Pause: virsh says paused", state(a))
    t.ok(ui.wait_cell("Paused"), "the list shows it paused")
    desk.screenshot("03-paused")
    ui.press("toggle button", "Pause")
    t.ok(wait_for(lambda: state(a).startswith("running"), 30), "Pause again: virsh says running", state(a))
    t.ok(ui.wait_cell("Running"), "the list shows it running again")

    # --- console
    ui.press("push button", "Open")
    win = ui.named("frame", "%s on Host A" % NAME)
    t.ok(win is not None, "Open: the VM window '%s on Host A'" % NAME, ui.frames())
    connected = wait_for(lambda: "Viewer connected" in desk.log() or
                         "Error connecting to graphical console" in desk.log(), 30, 0.5)
    time.sleep(2)
    desk.screenshot("04-console")
    err = re.findall(r"libvirtError: (.*)", desk.log())
    # a local connection: virt-manager asks for a socket with
    # virDomainOpenGraphicsFD (getfd + add_client on the monitor)
    t.ok(connected and "Viewer connected" in desk.log(),
         "the VM window's VNC console connects to the guest (virDomainOpenGraphicsFD)",
         "\n".join(err) or desk.log()[-2000:])

    # --- migrate from the VM window, with its progress window
    r = a.virsh("migrate-setspeed", NAME, str(MIGRATE_MIB_S))
    t.ok(r.rc == 0, "migrate-setspeed %d (so that the migration lasts)" % MIGRATE_MIB_S, r)
    # the Virtual Machine menu of the VM window is not open: not "showing"
    item = win.findChild(lambda x: x.roleName == "menu item" and x.name == "Migrate...",
                         showingOnly=False, retry=False, requireResult=False) if win else None
    t.ok(item is not None, "the VM window has Virtual Machine > Migrate...")
    item.doActionNamed("click")
    dlg = ui.named("frame", "Migrate the virtual machine")
    t.ok(dlg is not None, "the migrate dialog opens", ui.frames())
    dest = ui.find(lambda x: x.roleName == "combo box" and x.name == "conn-combo", root=dlg)
    t.ok(dest is not None and
         ui.find(lambda x: x.roleName == "label" and x.name.endswith("(Host A)"), dlg, 5) is not None,
         "the dialog shows the original host (Host A) and a destination choice")
    desk.screenshot("05-migrate-dialog")
    # let the destination choose its port, and migrate over loopback
    port = ui.find(lambda x: x.roleName == "check box" and x.name == "port-check", root=dlg)
    if port is not None and port.checked:
        port.doActionNamed("click")
    addr = ui.find(lambda x: x.roleName == "text" and x.name == "address-text", root=dlg)
    addr.text = "127.0.0.1"
    ui.press("push button", "Migrate", root=dlg)
    prog = ui.named("frame", "Migrating VM '%s'" % NAME)
    t.ok(prog is not None, "the migration progress window opens", ui.frames())
    running = wait_for(lambda: "Unbounded" in a.virsh("domjobinfo", NAME).out, 30)
    t.ok(running, "virsh domjobinfo on A: the migration runs")
    bar = ui.find(lambda x: x.roleName == "progress bar", root=prog, timeout=10) if prog else None
    values = []

    def progress_moves():
        try:
            values.append(bar.value)
        except Exception:
            return False
        nonzero = [v for v in values if v > 0]
        return len(nonzero) >= 2 and nonzero[-1] > nonzero[0]
    moved = bar is not None and wait_for(progress_moves, 30, 1)
    desk.screenshot("06-migrate-progress")
    t.ok(moved, "the progress bar follows the migration (%s)" %
         ", ".join("%.0f%%" % (v * 100) for v in values[:6]), values)
    t.ok(wait_for(lambda: "Migrating VM '%s'" % NAME not in ui.frames(), 180, 1),
         "the progress window closes when the migration ends")
    t.ok(wait_for(lambda: state(b).startswith("running"), 30), "virsh on B: running", state(b))
    t.ok(NAME in b.virsh("list", "--persistent", "--name").out.split(), "B: persistent")
    t.ok(NAME not in a.virsh("list", "--all", "--name").out.split(), "A: undefined (moved)")
    # the list now shows it under Host B: the row below the Host B row
    t.ok(ui.wait_cell("Running"), "the list shows it running (on Host B)")
    cell, hb = ui.vm_cell(), ui.named("table cell", "Host B")
    t.ok(cell is not None and hb is not None and cell.position[1] > hb.position[1],
         "the guest is listed under Host B")
    desk.screenshot("07-after-migration")

    # --- stop: Shut Down (ACPI) of the Linux guest
    ui.select_vm()
    sd = ui.named("push button", "Shut Down")
    wait_for(lambda: sd is not None and sd.sensitive, 10, 0.2)
    print("# Shut Down button sensitive: %s; open: %s" % (sd.sensitive if sd else None,
                                                          ui.named("push button", "Open").sensitive),
          flush=True)
    ui.press("push button", "Shut Down")
    acpi = wait_for(lambda: state(b) == "shut off (shutdown)", 60, 1)
    t.ok(acpi, "Shut Down: virsh on B says shut off (shutdown)", state(b))
    t.ok(ui.wait_cell("Shutoff", 10), "the list shows it shut off")
    desk.screenshot("08-shut-down")


def check_log(desk):
    log = desk.log()
    t.ok(len(log) > 0, "virt-manager wrote its debug log (%s, %d lines)" % (desk.vmm_log, log.count("\n")))
    errors = re.findall(r"libvirt\.?libvirtError: (.*)", log)
    # virt-manager's own race: its progress window polls the source's job
    # once more after the migration undefined the guest there (and the
    # wizard's callback then trips over the closed window)
    gone = "Domain not found: no domain with matching uuid"
    raced = [e for e in errors if e.startswith(gone) and "(%s)" % NAME in e]
    for e in raced:
        print("# virt-manager polled the moved guest on the source: %s" % e, flush=True)
    other = [e for e in errors if e not in raced]
    t.eq(other, [], "no libvirt error in virt-manager's debug log")
    bad = [line for line in log.splitlines()
           if " ERROR (" in line and not (raced and "Error calling jobinfo" in line)]
    t.eq(bad, [], "no other ERROR line in virt-manager's debug log")


def main():
    missing = [p for p in (VIRT_MANAGER, "/usr/bin/Xvfb", "/usr/bin/xdotool", "/usr/bin/import",
                           "/usr/bin/dbus-daemon") if not os.access(p, os.X_OK)]
    try:
        import dogtail  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as ex:
        missing.append(str(ex))
    if missing:
        t.skip("virt-manager under Xvfb", "missing: %s (build-aux/install-deps.sh)" % ", ".join(missing))
        t.done()
    # a SIGTERM (make, or dogtail aborting itself) still stops what we started
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(143))
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS)
    a, b = Daemon("vmmA"), Daemon("vmmB")
    desk = None
    files = tmpdir("vmm-files")
    os.chmod(files, 0o755)
    try:
        paths = guest_paths()
        for k in ("KERNEL", "INITRD"):
            shutil.copyfile(paths[k], os.path.join(files, k.lower()))
            os.chmod(os.path.join(files, k.lower()), 0o644)
        a.start()
        b.start()
        r = define(a, GUEST_XML % (NAME, os.path.join(files, "kernel"), os.path.join(files, "initrd")))
        t.ok(r.rc == 0, "define %s on host A" % NAME, r)
        desk = Desktop(a, b)
        t.ok(desk.start_x(), "Xvfb on display %s and a private session bus" % desk.env.get("DISPLAY"))
        # dogtail, in this process, reads toolkit-accessibility from the keyfile
        os.environ.update({k: desk.env[k] for k in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS",
                                                    "GSETTINGS_BACKEND", "XDG_CONFIG_HOME")})
        desk.start_vmm()
        ui = UI(desk)
        t.ok(ui.find(lambda x: x.roleName == "frame" and x.name == "Virtual Machine Manager",
                     timeout=90) is not None, "virt-manager's window is up")
        t.run("virt-manager steps", steps, desk, ui, a, b)
        t.ok(desk.vmm.poll() is None, "virt-manager still runs at the end")
        check_log(desk)
    except Exception as ex:
        t.ok(False, "setup", "%s\nA:\n%s\nB:\n%s" % (ex, a.log_tail(), b.log_tail()))
    finally:
        if desk is not None:
            if t.failed:
                print("# virt-manager log tail:\n# " + "\n# ".join(desk.log().splitlines()[-30:]), flush=True)
            desk.cleanup()
        for d in (a, b):
            d.virsh("destroy", NAME)
            d.cleanup()
        shutil.rmtree(files, ignore_errors=True)
    print("# screenshots in %s: %s" % (SHOTS, " ".join(sorted(os.listdir(SHOTS)))), flush=True)
    t.done()


main()
