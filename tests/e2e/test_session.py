# test_session.py: the unprivileged driver, qemu:///session, served by a
# libvirtd that an ordinary user (nobody) runs with Tandem; and the embedded
# driver as that user.  Each layout keeps to its own directories.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import pwd
import shutil
import signal
import subprocess
import time

from tandemtest import TAP, DRIVER_DIR, domain_xml, run, tmpdir

t = TAP()
USER = "nobody"

home = tmpdir("session")
os.chmod(home, 0o755)
pw = pwd.getpwnam(USER)
os.chown(home, pw.pw_uid, pw.pw_gid)
env = dict(os.environ,
           HOME=home,
           XDG_RUNTIME_DIR=os.path.join(home, "run"),
           XDG_CONFIG_HOME=os.path.join(home, "config"),
           XDG_CACHE_HOME=os.path.join(home, "cache"),
           LIBVIRT_DRIVER_DIR=DRIVER_DIR)
as_user = ["setpriv", "--reuid=%s" % USER, "--regid=%d" % pw.pw_gid, "--clear-groups"]


def virsh(uri, *args, stdin=None):
    return run(as_user + ["virsh", "-q", "-c", uri] + list(args), env=env, input=stdin)


def daemon_session():
    sock = os.path.join(home, "run", "libvirt", "libvirt-sock")
    log = os.path.join(home, "libvirtd.log")
    denv = dict(env, LIBVIRT_LOG_OUTPUTS="1:file:%s" % log, LIBVIRT_LOG_FILTERS="1:qemu 3:*")
    # setpriv execs libvirtd: the PID is the daemon's
    p = subprocess.Popen(as_user + ["libvirtd"], env=denv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not os.path.exists(sock):
            if p.poll() is not None:
                break
            time.sleep(0.1)
        t.ok(p.poll() is None and os.path.exists(sock), "session libvirtd up as %s" % USER)
        maps = open("/proc/%d/maps" % p.pid).read()
        t.ok("libvirt_driver_qemu.so" in maps and "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so" not in maps,
             "the session daemon runs Tandem, not the stock module")
        uri = "qemu:///session"
        t.eq(virsh(uri, "uri").out.strip(), uri, "virsh qemu:///session reaches it")
        with open(os.path.join(home, "sess.xml"), "w") as f:
            f.write(domain_xml("sess1"))
        r = virsh(uri, "define", os.path.join(home, "sess.xml"))
        t.ok(r.rc == 0, "define as an unprivileged user", r)
        t.ok(os.path.exists(os.path.join(home, "config", "libvirt", "qemu", "sess1.xml")),
             "definition in $XDG_CONFIG_HOME/libvirt/qemu")
        t.ok(os.path.isdir(os.path.join(home, "run", "libvirt", "qemu", "run")),
             "state in $XDG_RUNTIME_DIR/libvirt/qemu/run")
        t.ok(os.path.isdir(os.path.join(home, "cache", "libvirt", "qemu")),
             "cache in $XDG_CACHE_HOME/libvirt/qemu")
        t.eq(virsh(uri, "list", "--all", "--name").out.split(), ["sess1"], "list in the session")
        st = os.stat(os.path.join(home, "config", "libvirt", "qemu", "sess1.xml"))
        t.eq(st.st_uid, pw.pw_uid, "files belong to the user")
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def embed_as_user():
    root = os.path.join(home, "embedroot")
    uri = "qemu:///embed?root=%s" % root
    with open(os.path.join(home, "emb.xml"), "w") as f:
        f.write(domain_xml("emb1"))
    r = virsh(uri, "define", os.path.join(home, "emb.xml"))
    t.ok(r.rc == 0, "embedded driver as an unprivileged user", r)
    t.ok(os.path.exists(os.path.join(root, "etc", "qemu", "emb1.xml")),
         "embedded definitions stay under the root")
    t.ok(not os.path.exists(os.path.join(home, "config", "libvirt", "qemu", "emb1.xml")),
         "embedded driver does not touch the session directories")


t.run("session daemon", daemon_session)
t.run("embedded as user", embed_as_user)
if not os.environ.get("TANDEM_KEEP_TMP"):
    shutil.rmtree(home, ignore_errors=True)
t.done()
