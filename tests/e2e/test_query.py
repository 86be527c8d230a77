# test_query.py: per-domain queries and tuning through a real libvirtd with
# Tandem: dommemstat (with a real Linux guest's balloon driver), setmem,
# setmaxmem, vcpucount, setvcpus (live hotplug and config), vcpuinfo,
# vcpupin, cpu-stats, domblkinfo, domblkstat, domifstat, domcontrol and the
# balloon group of domstats; errors on shut-off domains, read-only
# refusals, persistence of --config changes across a daemon restart, and
# queries answering while another call waits on a stopped QEMU.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import re
import signal
import subprocess
import textwrap

from tandemtest import TAP, Daemon, SRCDIR, run, write_tmp, qemu_pid, alive, wait_for, fields

t = TAP()


def bare_xml(name, extra="", os_extra="", vcpus="<vcpu current='1'>2</vcpu>",
             memory="<memory unit='MiB'>128</memory>"):
    return textwrap.dedent("""\
        <domain type='qemu'>
          <name>%s</name>
          %s
          %s
          <os><type arch='x86_64' machine='pc'>hvm</type>%s</os>
          <devices>%s</devices>
        </domain>
        """) % (name, memory, vcpus, os_extra, extra)


def define(d, name, **kw):
    path = write_tmp(bare_xml(name, **kw))
    try:
        return d.virsh("define", path)
    finally:
        os.unlink(path)


def kv(text):
    """'name value' lines (dommemstat, domblkstat) as a dict."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[-2]] = parts[-1]
    return out


def test_memory(d):
    t.ok(define(d, "qm1", extra="<memballoon model='virtio'/>").rc == 0, "define qm1")
    r = d.virsh("start", "qm1")
    t.ok(r.rc == 0, "start qm1", r)
    r = d.virsh("dommemstat", "qm1")
    st = kv(r.out)
    t.ok(r.rc == 0, "dommemstat of a running domain", r)
    t.eq(st.get("actual"), "131072", "dommemstat: actual is the balloon size (KiB)")
    t.ok(st.get("rss", "0").isdigit() and int(st["rss"]) > 0, "dommemstat: rss from /proc", r.out)
    t.ok("usable" not in st, "dommemstat: no guest statistics without a period", r.out)

    r = d.virsh("setmem", "qm1", "100M")
    t.ok(r.rc == 0, "setmem live asks the balloon", r)
    r = d.virsh("setmem", "qm1", "200M")
    t.ok(r.rc != 0 and "cannot set memory higher than max memory" in r.err,
         "setmem above the maximum refused", r)
    r = d.virsh("setmaxmem", "qm1", "200M")
    t.ok(r.rc != 0 and "cannot resize the maximum memory on an active domain" in r.err,
         "setmaxmem on a running domain refused like libvirt", r)
    r = d.virsh("setmaxmem", "qm1", "200M", "--config")
    t.ok(r.rc == 0, "setmaxmem --config on a running domain", r)
    r = d.virsh("dumpxml", "--inactive", "qm1")
    t.contains(r.out, "<memory unit='KiB'>204800</memory>", "setmaxmem --config: persistent definition changed")
    r = d.virsh("dominfo", "qm1")
    t.eq(fields(r.out).get("Max memory"), "131072 KiB", "setmaxmem --config: live maximum unchanged")

    r = d.virsh("dommemstat", "qm1", "--period", "3", "--live")
    t.ok(r.rc == 0, "dommemstat --period --live", r)
    r = d.virsh("dumpxml", "qm1")
    t.contains(r.out, "<stats period='3'/>", "live definition records the period")
    r = d.virsh("qemu-monitor-command", "qm1",
                '{"execute":"qom-get","arguments":{"path":"/machine/peripheral/balloon0",'
                '"property":"guest-stats-polling-interval"}}')
    t.contains(r.out.replace(" ", ""), '"return":3', "QEMU polls the guest statistics every 3 s")
    r = d.virsh("dommemstat", "qm1", "--period", "-1")
    t.ok(r.rc != 0, "dommemstat --period -1 refused", r)

    r = d.virsh("domstats", "--balloon", "qm1")
    t.contains(r.out, "balloon.current=131072", "domstats --balloon: current")
    t.contains(r.out, "balloon.rss=", "domstats --balloon: rss")

    d.virsh("destroy", "qm1")
    r = d.virsh("dommemstat", "qm1")
    t.ok(r.rc != 0 and "domain is not running" in r.err, "dommemstat of a shut-off domain refused", r)
    r = d.virsh("setmem", "qm1", "64M", "--live")
    t.ok(r.rc != 0 and "domain is not running" in r.err, "setmem --live of a shut-off domain refused", r)
    r = d.virsh("setmem", "qm1", "64M")
    t.ok(r.rc != 0 and "domain is not running" in r.err,
         "setmem without flags means --live (virDomainSetMemory), as libvirt", r)
    r = d.virsh("setmem", "qm1", "64M", "--config")
    t.ok(r.rc == 0, "setmem --config of a shut-off domain changes its definition", r)
    r = d.virsh("dominfo", "qm1")
    t.eq(fields(r.out).get("Used memory"), "65536 KiB", "dominfo shows the new current memory")
    r = d.virsh("setmaxmem", "qm1", "96M")
    t.ok(r.rc == 0, "setmaxmem of a shut-off domain", r)
    r = d.virsh("dominfo", "qm1")
    t.eq(fields(r.out).get("Max memory"), "98304 KiB", "dominfo shows the new maximum")
    r = d.virsh("dommemstat", "qm1", "--period", "5", "--config")
    t.ok(r.rc == 0, "dommemstat --period --config of a shut-off domain", r)

    t.ok(define(d, "qm2", extra="<memballoon model='none'/>").rc == 0, "define qm2 without balloon")
    d.virsh("start", "qm2")
    r = d.virsh("dommemstat", "qm2")
    st = kv(r.out)
    t.ok(r.rc == 0 and "actual" not in st and "rss" in st, "dommemstat without balloon: rss only", r)
    r = d.virsh("setmem", "qm2", "64M")
    t.ok(r.rc != 0 and "without the balloon device" in r.err, "setmem without balloon refused", r)
    r = d.virsh("dommemstat", "qm2", "--period", "2")
    t.ok(r.rc != 0 and "No memory balloon device configured" in r.err,
         "dommemstat --period without balloon refused", r)
    d.virsh("destroy", "qm2")


def test_vcpus(d):
    t.ok(define(d, "qv1").rc == 0, "define qv1 (1 of 2 vCPUs)")
    r = d.virsh("vcpucount", "qv1")
    t.eq(r.out.split("\n")[:2], ["maximum      config         2", "current      config         1"],
         "vcpucount of a shut-off domain: config only")
    r = d.virsh("start", "qv1")
    t.ok(r.rc == 0, "start qv1", r)
    r = d.virsh("vcpucount", "qv1")
    t.eq([" ".join(l.split()) for l in r.out.splitlines() if l.strip()],
         ["maximum config 2", "maximum live 2", "current config 1", "current live 1"],
         "vcpucount of a running domain")
    r = d.virsh("vcpuinfo", "qv1")
    info = fields(r.out)
    t.ok(r.rc == 0 and info.get("VCPU") == "0" and info.get("State") == "running",
         "vcpuinfo: one vCPU running", r)
    t.ok(info.get("CPU", "").isdigit(), "vcpuinfo: the host CPU it last ran on", r.out)
    t.ok(set(info.get("CPU Affinity", "")) <= {"y", "-"} and "y" in info.get("CPU Affinity", ""),
         "vcpuinfo: affinity", r.out)

    r = d.virsh("setvcpus", "qv1", "2", "--live")
    t.ok(r.rc == 0, "setvcpus --live hotplugs a vCPU", r)
    r = d.virsh("vcpucount", "qv1", "--live", "--current")
    t.eq(r.out.strip(), "2", "two vCPUs online after the hotplug")
    r = d.virsh("qemu-monitor-command", "qv1", "--hmp", "info cpus")
    t.ok(r.out.count("thread_id=") == 2, "QEMU runs two vCPU threads", r)
    r = d.virsh("vcpuinfo", "qv1")
    t.ok(r.rc == 0 and "VCPU:           1" in r.out, "vcpuinfo lists the new vCPU", r)
    r = d.virsh("setvcpus", "qv1", "1", "--live")
    t.ok(r.rc != 0 and "live vCPU unplug is not supported" in r.err, "live unplug: clear error", r)
    r = d.virsh("setvcpus", "qv1", "3", "--live")
    t.ok(r.rc != 0 and "greater than max allowable vcpus" in r.err, "setvcpus above maximum refused", r)
    r = d.virsh("setvcpus", "qv1", "4", "--maximum", "--live", "--config")
    t.ok(r.rc != 0 and "maximum vcpu count of a live domain can't be modified" in r.err,
         "setvcpus --maximum --live refused", r)

    r = d.virsh("vcpupin", "qv1", "0", "0")
    t.ok(r.rc == 0, "vcpupin live", r)
    r = d.virsh("vcpupin", "qv1")
    rows = [l.split() for l in r.out.splitlines() if l.strip()]
    t.eq(rows[0], ["0", "0"], "vcpupin query shows vCPU 0 pinned to CPU 0")
    pid = qemu_pid(d, "qv1")
    tid = None
    out = d.virsh("qemu-monitor-command", "qv1", "--hmp", "info cpus").out
    for line in out.splitlines():
        if "CPU #0" in line:
            tid = int(line.split("thread_id=")[1])
    if tid:
        aff = os.sched_getaffinity(tid)
        t.eq(sorted(aff), [0], "the vCPU 0 thread really is pinned to CPU 0 (sched_getaffinity)")
    r = d.virsh("vcpuinfo", "qv1")
    t.eq(fields(r.out.split("\n\n")[0]).get("CPU Affinity"), "y" + "-" * (os.cpu_count() - 1),
         "vcpuinfo shows the pinning")
    r = d.virsh("vcpupin", "qv1", "5", "0")
    t.ok(r.rc != 0 and "out of range" in r.err, "vcpupin of a vCPU that does not exist refused", r)

    r = d.virsh("cpu-stats", "qv1", "--total")
    t.ok(r.rc == 0 and "cpu_time" in r.out and "user_time" in r.out and "system_time" in r.out,
         "cpu-stats --total: cpu, user and system time", r)
    r = d.virsh("cpu-stats", "qv1")
    t.ok(r.rc == 0 and "No per-CPU stats available" in r.out and "Total:" in r.out,
         "cpu-stats: no per-CPU statistics, totals shown", r)
    r = d.virsh("domcontrol", "qv1")
    t.eq(r.out.strip(), "ok", "domcontrol of an idle domain: ok")

    d.virsh("destroy", "qv1")
    for cmd, err in [(("vcpuinfo", "qv1"), None),
                     (("cpu-stats", "qv1", "--total"), "domain is not running"),
                     (("domcontrol", "qv1"), "domain is not running"),
                     (("setvcpus", "qv1", "2", "--live"), "domain is not running")]:
        r = d.virsh(*cmd)
        if err:
            t.ok(r.rc != 0 and err in r.err, "%s of a shut-off domain refused" % cmd[0], r)
    r = d.virsh("vcpupin", "qv1", "1", "1", "--config")
    t.ok(r.rc == 0, "vcpupin --config of a shut-off domain", r)
    r = d.virsh("setvcpus", "qv1", "2", "--config")
    t.ok(r.rc == 0, "setvcpus --config", r)
    r = d.virsh("setvcpus", "qv1", "3", "--config", "--maximum")
    t.ok(r.rc == 0, "setvcpus --config --maximum", r)
    r = d.virsh("vcpucount", "qv1", "--config", "--maximum")
    t.eq(r.out.strip(), "3", "maximum is now 3")


def test_config_persistence(d):
    # qm1 and qv1 were changed with --config above; a daemon restart reloads them
    d.restart()
    r = d.virsh("dumpxml", "--inactive", "qm1")
    t.contains(r.out, "<memory unit='KiB'>98304</memory>", "after restart: setmaxmem kept")
    t.contains(r.out, "<currentMemory unit='KiB'>65536</currentMemory>", "after restart: setmem kept")
    t.contains(r.out, "<stats period='5'/>", "after restart: memory stats period kept")
    r = d.virsh("dumpxml", "--inactive", "qv1")
    t.contains(r.out, "<vcpu placement='static' current='2'>3</vcpu>", "after restart: vCPU counts kept")
    t.contains(r.out, "<vcpupin vcpu='1' cpuset='1'/>", "after restart: vcpupin --config kept")
    r = d.virsh("start", "qv1")
    t.ok(r.rc == 0, "qv1 starts with its new vCPU configuration", r)
    r = d.virsh("vcpucount", "qv1", "--live", "--current")
    t.eq(r.out.strip(), "2", "it runs 2 vCPUs")
    r = d.virsh("vcpupin", "qv1", "--live")
    rows = [l.split() for l in r.out.splitlines() if l.strip()]
    t.ok(["1", "1"] in rows, "the configured pinning applies to the live vCPU", r.out)
    d.virsh("destroy", "qv1")


def test_readonly(d):
    define(d, "qr1")
    d.virsh("start", "qr1")
    for cmd in [("setmem", "qr1", "64M"), ("setmaxmem", "qr1", "64M", "--config"),
                ("setvcpus", "qr1", "2"), ("vcpupin", "qr1", "0", "0"),
                ("dommemstat", "qr1", "--period", "2")]:
        r = d.virsh(*cmd, readonly=True)
        t.ok(r.rc != 0 and "read only access prevents" in r.err,
             "read-only connection refused: %s" % cmd[0], r)
    for cmd in [("dommemstat", "qr1"), ("vcpucount", "qr1"), ("vcpuinfo", "qr1"),
                ("cpu-stats", "qr1", "--total"), ("domcontrol", "qr1")]:
        r = d.virsh(*cmd, readonly=True)
        t.ok(r.rc == 0, "read-only connection may query: %s" % cmd[0], r)
    d.virsh("destroy", "qr1")


def test_block_and_net(d):
    img = d.private("/var/lib/libvirt/images/qb1.img")
    qcow = d.private("/var/lib/libvirt/images/qb1.qcow2")
    os.makedirs(os.path.dirname(img), exist_ok=True)
    with open(img, "wb") as f:
        f.truncate(8 * 1024 * 1024)
        f.seek(0)
        f.write(b"\1" * 65536)
    r = run(["qemu-img", "create", "-q", "-f", "qcow2", qcow, "64M"])
    disks = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
             "<source file='/var/lib/libvirt/images/qb1.img'/><target dev='vda' bus='virtio'/></disk>"
             "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='/var/lib/libvirt/images/qb1.qcow2'/><target dev='vdb' bus='virtio'/></disk>"
             "<interface type='user'><mac address='52:54:00:aa:bb:01'/><model type='virtio'/></interface>")
    t.ok(define(d, "qb1", extra=disks).rc == 0, "define qb1 with a raw and a qcow2 disk")

    r = d.virsh("domblkinfo", "qb1", "vda")
    info = fields(r.out)
    t.ok(r.rc == 0, "domblkinfo of a shut-off domain", r)
    t.eq(info.get("Capacity"), str(8 * 1024 * 1024), "raw: capacity is the file size")
    t.eq(info.get("Physical"), str(8 * 1024 * 1024), "raw: physical is the file size")
    alloc = int(info.get("Allocation", "-1"))
    t.ok(65536 <= alloc < 8 * 1024 * 1024, "raw sparse file: allocation is what is written", r.out)
    r = d.virsh("domblkinfo", "qb1", "vdb")
    t.eq(fields(r.out).get("Capacity"), str(64 * 1024 * 1024), "qcow2: capacity is the virtual size")
    r = d.virsh("domblkinfo", "qb1", "vdz")
    t.ok(r.rc != 0 and "invalid path vdz not assigned to domain" in r.err, "domblkinfo of an unknown disk", r)
    r = d.virsh("domblkstat", "qb1", "vda")
    t.ok(r.rc != 0 and "domain is not running" in r.err, "domblkstat of a shut-off domain refused", r)

    r = d.virsh("start", "qb1")
    t.ok(r.rc == 0, "start qb1", r)
    r = d.virsh("domblkinfo", "qb1", "/var/lib/libvirt/images/qb1.img")
    t.eq(fields(r.out).get("Capacity"), str(8 * 1024 * 1024), "domblkinfo by source path while running")
    r = d.virsh("domblkstat", "qb1", "vda")
    st = kv(r.out)
    t.ok(r.rc == 0 and "rd_req" in st and "wr_bytes" in st and "flush_operations" in st,
         "domblkstat vda", r)

    # SeaBIOS reads the boot disk's first sector once it gets there
    def firmware_read():
        st.clear()
        st.update(kv(d.virsh("domblkstat", "qb1", "vda").out))
        return int(st.get("rd_req", "0")) >= 1
    t.ok(wait_for(firmware_read, 60, 0.5) and int(st.get("rd_bytes", "0")) >= 512,
         "domblkstat: the firmware's reads are counted", st)
    r = d.virsh("domblkstat", "qb1")
    t.ok(r.rc == 0 and int(kv(r.out).get("rd_bytes", "0")) >= int(st.get("rd_bytes", "0")),
         "domblkstat without a device: sum of all disks", r)
    r = d.virsh("domblkstat", "qb1", "vdz")
    t.ok(r.rc != 0 and "invalid path: vdz" in r.err, "domblkstat of an unknown disk", r)

    r = d.virsh("domifstat", "qb1", "52:54:00:aa:bb:01")
    t.ok(r.rc != 0 and "not available for user-mode networking" in r.err,
         "domifstat of a user-mode interface: clear error", r)
    r = d.virsh("domifstat", "qb1", "nosuchif")
    t.ok(r.rc != 0 and "'nosuchif' is not a known interface" in r.err, "domifstat of an unknown interface", r)
    d.virsh("destroy", "qb1")


def test_busy(d):
    """Queries answer while a monitor call waits for a QEMU that is stopped
    (SIGSTOP): that call holds a modify job and never the domain lock."""
    define(d, "qs1")
    d.virsh("start", "qs1")
    pid = qemu_pid(d, "qs1")
    if not t.ok(alive(pid), "qs1 runs"):
        return
    os.kill(pid, signal.SIGSTOP)
    try:
        slow = subprocess.Popen(["virsh", "-q", "-c", d.uri, "qemu-monitor-command", "qs1",
                                 '{"execute":"query-status"}'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t.ok(wait_for(lambda: d.virsh("domcontrol", "qs1").out.startswith("occupied"), 20),
             "domcontrol: occupied while the monitor call waits")
        for cmd, want in [(("dominfo", "qs1"), "running"), (("domstate", "qs1"), "running"),
                          (("domjobinfo", "qs1"), "None"), (("vcpucount", "qs1"), "current"),
                          (("vcpuinfo", "qs1"), "VCPU"), (("cpu-stats", "qs1", "--total"), "cpu_time")]:
            r = d.virsh(*cmd)
            t.ok(r.rc == 0 and want in r.out, "%s answers while QEMU is stopped" % cmd[0], r)
        t.ok(slow.poll() is None, "the monitor call was still waiting meanwhile")
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = slow.communicate(timeout=60)
    t.ok(slow.returncode == 0 and "running" in out, "the monitor call completes once QEMU continues",
         err)
    t.eq(d.virsh("domcontrol", "qs1").out.strip(), "ok", "domcontrol: ok again")
    d.virsh("destroy", "qs1")


def guest_paths():
    r = run([os.path.join(SRCDIR, "tests", "guest", "build-guest.sh")], timeout=1800)
    if r.rc != 0:
        return None, r
    env = dict(l.split("=", 1) for l in r.out.splitlines() if "=" in l)
    return env, r


def test_guest_balloon(d):
    env, r = guest_paths()
    if env is None:
        t.skip("balloon statistics of a Linux guest", "guest build failed (rc %d)" % r.rc)
        return
    os_extra = ("<kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 tandem.nonet</cmdline>"
                % (env["KERNEL"], env["INITRD"]))
    t.ok(define(d, "qg1", os_extra=os_extra, memory="<memory unit='MiB'>256</memory>",
                vcpus="<vcpu>1</vcpu>",
                extra="<memballoon model='virtio'><stats period='1'/></memballoon>").rc == 0,
         "define qg1 (Linux guest, balloon stats period 1 s)")
    r = d.virsh("start", "qg1")
    if not t.ok(r.rc == 0, "start qg1", r):
        return
    got = {}

    def guest_stats():
        got.clear()
        got.update(kv(d.virsh("dommemstat", "qg1").out))
        return "usable" in got or "available" in got

    t.ok(wait_for(guest_stats, 120, 1), "dommemstat: the guest balloon driver reports", got)
    t.eq(got.get("actual"), "262144", "dommemstat: actual")
    t.ok(int(got.get("rss", "0")) > 0, "dommemstat: rss", got)
    t.ok(0 < int(got.get("available", "0")) <= 262144, "dommemstat: available is at most the RAM", got)
    t.ok(int(got.get("last_update", "0")) > 1600000000, "dommemstat: last_update is a time", got)
    r = d.virsh("domstats", "--balloon", "qg1")
    t.contains(r.out, "balloon.available=", "domstats --balloon: guest statistics (cached)")
    t.contains(r.out, "balloon.last-update=", "domstats --balloon: last-update")
    # domstats asks QEMU itself (virt-manager and exporters never call
    # dommemstat): its last-update moves on with no dommemstat in between
    seen = int(got.get("last_update", "0"))

    def domstats_update():
        out = d.virsh("domstats", "--balloon", "qg1").out
        m = re.search(r"balloon\.last-update=(\d+)", out)
        return m is not None and int(m.group(1)) > seen and "balloon.unused=" in out

    t.ok(wait_for(domstats_update, 30, 1),
         "domstats --balloon reads fresh guest statistics itself (unused, last-update)",
         d.virsh("domstats", "--balloon", "qg1").out)

    r = d.virsh("setmem", "qg1", "200M", "--live")
    t.ok(r.rc == 0, "setmem --live on a guest with a balloon driver", r)
    t.ok(wait_for(lambda: fields(d.virsh("dominfo", "qg1").out).get("Used memory") == "204800 KiB", 60),
         "the guest gives the memory back (BALLOON_CHANGE): dominfo used memory 204800 KiB")
    t.ok(wait_for(lambda: kv(d.virsh("dommemstat", "qg1").out).get("actual") == "204800", 30),
         "dommemstat: actual follows the balloon")
    d.virsh("destroy", "qg1")


d = Daemon("query")
try:
    d.start()
    for name, fn in [("memory", test_memory), ("vcpus", test_vcpus),
                     ("config persistence", test_config_persistence),
                     ("read-only", test_readonly), ("block and net", test_block_and_net),
                     ("busy", test_busy), ("guest balloon", test_guest_balloon)]:
        t.run(name, fn, d)
    t.ok(d.alive(), "daemon alive at the end")
except Exception as ex:
    t.ok(False, "query setup", "%s\n%s" % (ex, d.log_tail()))
finally:
    qdir = d.private("/run/libvirt/qemu")
    for n in os.listdir(qdir) if os.path.isdir(qdir) else []:
        if n.endswith(".pid"):
            pid = qemu_pid(d, n[:-4])
            if alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
    d.cleanup()
t.done()
