# clientutil.py: small helpers shared by the client-program tests in
# tests/e2e/clients/ (free loopback ports, the test guests, waiting,
# processes stopped by the PID they were started with).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import signal
import socket
import subprocess
import time

from tandemtest import MIG_ARGS, migrate_bg, guest_paths, wait_for, write_tmp  # noqa: F401 (re-exported to the client tests)



def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=30):
    """Waits until something accepts connections on 127.0.0.1:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False



def dirty_xml(name, kernel, mem_mib=128, dirty_mib=16, devices=""):
    """The guest that keeps writing dirty_mib of its RAM (tests/guest/dirty)."""
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel><cmdline>dirty=%d quiet</cmdline></os>
  <devices><serial type='pty'/><console type='pty'/>%s</devices>
</domain>
""" % (name, mem_mib, kernel, dirty_mib, devices)


def define(d, xml):
    path = write_tmp(xml)
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def domstate(d, name):
    r = d.virsh("domstate", name)
    return r.out.strip() if r.rc == 0 else "error: " + r.err.strip()


def stop_proc(p, timeout=15):
    """Stops a process this test started, by its PID."""
    if p is None or p.poll() is not None:
        return
    try:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    except ProcessLookupError:
        pass
