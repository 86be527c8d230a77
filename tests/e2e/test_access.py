# test_access.py: least privilege and access control (issue #7).
#
# 1. Read-only connections: every entry point the driver registers (read
#    from the virHypervisorDriver table in src/qemu/qemu_driver.c and the
#    *Register() functions that fill it, so a new API cannot be missed) is
#    called through python3-libvirt on a read-only connection against a
#    running and a defined domain: modifying ones fail with
#    VIR_ERR_OPERATION_DENIED, queries do not; afterwards both domains are
#    unchanged.
# 2. polkit: a daemon with access_drivers = ["polkit"] (on a private D-Bus
#    system bus with its own polkitd) and a rule that lets an unprivileged
#    user read two domains and nothing else: the same table is run as that
#    user; allowed queries work, everything else fails with
#    VIR_ERR_ACCESS_DENIED, and the daemon log names the polkit action.
# 3. Secrets: VNC and SPICE passwords are absent from dumpxml (live and
#    inactive) without --security-info, present with it on a read-write
#    connection, refused on a read-only one, and never in the daemon's debug
#    log, QEMU's argv or the per-domain QEMU log; the status and config files
#    that hold them are 0600.
# 4. Least privilege: QEMU runs as the qemu.conf user (uids/gids from
#    /proc/PID/status), with the exact -sandbox option; the per-domain
#    directory is 0700 and QEMU's; the monitor, agent and console are not
#    reachable by another user (modes and a real connect/open attempt as
#    nobody).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import glob
import grp
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import uuid

try:
    import libvirt
    import libvirt_qemu
except ImportError:
    libvirt = None

SRCDIR = os.environ.get("abs_top_srcdir",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

VNC_PW = "VncPw-7f3a9c"
SPICE_PW = "SpicePw-51e2b8"
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


# ---------------------------------------------------------------------------
# The driver's entry points, from its source
# ---------------------------------------------------------------------------

def registered_entries():
    """Names of the virHypervisorDriver members Tandem fills in: the static
    table in qemu_driver.c plus the assignments in every
    qemuXxxRegister(virHypervisorDriver *driver) function."""
    names = set()
    with open(os.path.join(SRCDIR, "src/qemu/qemu_driver.c")) as f:
        text = f.read()
    m = re.search(r"static virHypervisorDriver qemuHypervisorDriver = \{(.*?)\n\};", text, re.S)
    if not m:
        raise RuntimeError("qemuHypervisorDriver table not found in qemu_driver.c")
    for field, value in re.findall(r"^\s*\.(\w+)\s*=\s*(\w+)\s*,", m.group(1), re.M):
        if field != "name" and value != "NULL":
            names.add(field)
    for path in sorted(glob.glob(os.path.join(SRCDIR, "src/qemu/*.c"))):
        with open(path) as f:
            text = f.read()
        for body in re.findall(r"\n\w+Register\(virHypervisorDriver \*(\w+)\)\n\{(.*?)\n\}", text, re.S):
            var, code = body
            names.update(re.findall(r"^\s*%s->(\w+)\s*=\s*\w+;" % var, code, re.M))
    return names


# Entry points no client calls directly: libvirt's own code reaches them on
# the way to another API (which the table below covers).
INTERNAL = {
    "connectSupportsFeature": "asked by the client library (migration, events)",
}

DENIED, ALLOWED = "denied", "allowed"


class Ctx:
    """What the calls work on: a connection and domains looked up on it."""

    def __init__(self, conn, uri, run, defd, snap, tmp, rw=None):
        self.conn, self.uri, self.run, self.defd, self.snap, self.tmp = conn, uri, run, defd, snap, tmp
        self.rw = rw

    def path(self, name):
        return os.path.join(self.tmp, name)


def _cb(*args):
    pass


def _event_register(c):
    c.conn.domainEventRegister(_cb, None)
    c.conn.domainEventDeregister(_cb)


def _event_register_any(c):
    cid = c.conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, _cb, None)
    c.conn.domainEventDeregisterAny(cid)


def _open_close(c):
    conn = libvirt.openReadOnly(c.uri) if c.rw is None else libvirt.open(c.uri)
    conn.getType()
    conn.close()


def _console(c):
    st = c.conn.newStream(0)
    try:
        c.run.openConsole(None, st, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    finally:
        try:
            st.abort()
        except libvirt.libvirtError:
            pass


def _graphics(c):
    a, b = socket.socketpair()
    try:
        c.run.openGraphics(0, b.fileno(), 0)
    finally:
        a.close()
        b.close()


def _screenshot(c):
    st = c.conn.newStream(0)
    try:
        c.run.screenshot(st, 0, 0)
    finally:
        try:
            st.abort()
        except libvirt.libvirtError:
            pass


def _checked(fn):
    """python3-libvirt returns None/-1 from a few getters instead of
    raising: turn that into the libvirtError it should have been."""
    def call(c):
        r = fn(c)
        if r is None or r == -1:
            raise libvirt.libvirtError("call failed")
        return r
    return call


def _qemu_event_register(c):
    cid = libvirt_qemu.qemuMonitorEventRegister(c.conn, None, None, _cb, None, 0)
    libvirt_qemu.qemuMonitorEventDeregister(c.conn, cid)


DEF_XML = None        # set by the test: the inactive XML of the defined domain
RUN_XML = None        # and of a transient domain
CDROM = "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
NIC = "<interface type='user'><mac address='52:54:00:7e:11:01'/><model type='virtio'/></interface>"


def api_table():
    """(entry, label, call, read-only expectation, ACL permissions).

    The read-only expectation is libvirt's rule for a read-only connection
    (its public API refuses what modifies or reveals secrets, and a few
    queries that reach into the guest or the host).  The permissions are the
    ACL annotations of the procedure in libvirt's remote_protocol.x /
    qemu_protocol.x (object.permission, with the flags the call passes)."""
    L = libvirt
    AFF_CONFIG = L.VIR_DOMAIN_AFFECT_CONFIG
    return [
        # connection
        ("connectOpen", "open/close", _open_close, ALLOWED, ["connect.getattr"]),
        ("connectClose", "open/close", _open_close, ALLOWED, ["connect.getattr"]),
        ("connectGetType", "getType", lambda c: c.conn.getType(), ALLOWED, ["connect.getattr"]),
        ("connectGetVersion", "getVersion", lambda c: c.conn.getVersion(), ALLOWED, ["connect.getattr"]),
        ("connectGetHostname", "getHostname", lambda c: c.conn.getHostname(), ALLOWED, ["connect.getattr"]),
        ("connectGetMaxVcpus", "getMaxVcpus", lambda c: c.conn.getMaxVcpus(None), ALLOWED, ["connect.read"]),
        ("connectGetCapabilities", "getCapabilities", lambda c: c.conn.getCapabilities(), ALLOWED, ["connect.read"]),
        ("connectGetDomainCapabilities", "getDomainCapabilities",
         lambda c: c.conn.getDomainCapabilities(None, None, None, None, 0), DENIED, ["connect.write"]),
        ("connectIsSecure", "isSecure", lambda c: c.conn.isSecure(), ALLOWED, []),
        ("connectIsEncrypted", "isEncrypted", lambda c: c.conn.isEncrypted(), ALLOWED, []),
        ("connectIsAlive", "isAlive", lambda c: c.conn.isAlive(), ALLOWED, []),
        ("nodeGetInfo", "getInfo", lambda c: c.conn.getInfo(), ALLOWED, ["connect.read"]),
        ("nodeGetCPUMap", "getCPUMap", lambda c: c.conn.getCPUMap(0), ALLOWED, ["connect.read"]),
        ("nodeGetSecurityModel", "getSecurityModel", lambda c: c.conn.getSecurityModel(), ALLOWED, ["connect.read"]),
        ("connectListDomains", "listDomainsID", lambda c: c.conn.listDomainsID(), ALLOWED, ["connect.search-domains"]),
        ("connectNumOfDomains", "numOfDomains", lambda c: c.conn.numOfDomains(), ALLOWED, ["connect.search-domains"]),
        ("connectListDefinedDomains", "listDefinedDomains", lambda c: c.conn.listDefinedDomains(), ALLOWED,
         ["connect.search-domains"]),
        ("connectNumOfDefinedDomains", "numOfDefinedDomains", lambda c: c.conn.numOfDefinedDomains(), ALLOWED,
         ["connect.search-domains"]),
        ("connectListAllDomains", "listAllDomains", lambda c: c.conn.listAllDomains(0), ALLOWED,
         ["connect.search-domains"]),
        ("connectDomainXMLToNative", "domainXMLToNative",
         lambda c: c.conn.domainXMLToNative("qemu-argv", DEF_XML, 0), DENIED, ["connect.write"]),
        ("connectDomainEventRegister", "domainEventRegister", _event_register, ALLOWED, ["connect.search-domains"]),
        ("connectDomainEventDeregister", "domainEventRegister", _event_register, ALLOWED, ["connect.search-domains"]),
        ("connectDomainEventRegisterAny", "domainEventRegisterAny", _event_register_any, ALLOWED,
         ["connect.search-domains"]),
        ("connectDomainEventDeregisterAny", "domainEventRegisterAny", _event_register_any, ALLOWED,
         ["connect.search-domains"]),
        ("connectGetAllDomainStats", "getAllDomainStats", lambda c: c.conn.getAllDomainStats(0, 0), ALLOWED,
         ["connect.search-domains"]),
        ("connectDomainQemuMonitorEventRegister", "qemuMonitorEventRegister", _qemu_event_register, DENIED,
         ["connect.search-domains", "connect.write"]),
        ("connectDomainQemuMonitorEventDeregister", "qemuMonitorEventRegister", _qemu_event_register, DENIED,
         ["connect.search-domains", "connect.write"]),
        # lookups and definitions
        ("domainLookupByID", "lookupByID", lambda c: c.conn.lookupByID(c.run.ID()), ALLOWED, ["domain.getattr"]),
        ("domainLookupByUUID", "lookupByUUIDString", lambda c: c.conn.lookupByUUIDString(c.defd.UUIDString()),
         ALLOWED, ["domain.getattr"]),
        ("domainLookupByName", "lookupByName", lambda c: c.conn.lookupByName(c.defd.name()), ALLOWED,
         ["domain.getattr"]),
        ("domainDefineXML", "defineXML (same domain)", lambda c: c.conn.defineXML(DEF_XML), DENIED,
         ["domain.write", "domain.save"]),
        ("domainDefineXMLFlags", "defineXMLFlags (same domain)", lambda c: c.conn.defineXMLFlags(DEF_XML, 0),
         DENIED, ["domain.write", "domain.save"]),
        ("domainUndefine", "undefine", lambda c: c.defd.undefine(), DENIED, ["domain.delete"]),
        ("domainUndefineFlags", "undefineFlags",
         lambda c: c.defd.undefineFlags(L.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA), DENIED, ["domain.delete"]),
        ("domainGetXMLDesc", "XMLDesc", lambda c: c.run.XMLDesc(0), ALLOWED, ["domain.read"]),
        ("domainGetXMLDesc", "XMLDesc(SECURE)", lambda c: c.run.XMLDesc(L.VIR_DOMAIN_XML_SECURE), DENIED,
         ["domain.read", "domain.read-secure"]),
        ("domainGetXMLDesc", "XMLDesc(MIGRATABLE)", lambda c: c.run.XMLDesc(L.VIR_DOMAIN_XML_MIGRATABLE), DENIED,
         ["domain.read", "domain.read-secure"]),
        ("domainGetAutostart", "autostart", lambda c: c.defd.autostart(), ALLOWED, ["domain.read"]),
        ("domainSetAutostart", "setAutostart(1)", lambda c: c.defd.setAutostart(1), DENIED, ["domain.write"]),
        ("domainSetMetadata", "setMetadata",
         lambda c: c.defd.setMetadata(L.VIR_DOMAIN_METADATA_DESCRIPTION, "changed", None, None, AFF_CONFIG),
         DENIED, ["domain.write", "domain.save"]),
        ("domainGetMetadata", "metadata",
         lambda c: c.defd.metadata(L.VIR_DOMAIN_METADATA_DESCRIPTION, None, 0), ALLOWED, ["domain.read"]),
        ("domainGetInfo", "info", lambda c: c.run.info(), ALLOWED, ["domain.read"]),
        ("domainGetState", "state", lambda c: c.run.state(0), ALLOWED, ["domain.read"]),
        ("domainGetMessages", "messages", lambda c: c.run.messages(0), ALLOWED, ["domain.read"]),
        ("domainIsActive", "isActive", lambda c: c.run.isActive(), ALLOWED, ["domain.read"]),
        ("domainIsPersistent", "isPersistent", lambda c: c.run.isPersistent(), ALLOWED, ["domain.read"]),
        ("domainIsUpdated", "isUpdated", lambda c: c.run.isUpdated(), ALLOWED, ["domain.read"]),
        ("domainGetOSType", "OSType", lambda c: c.run.OSType(), ALLOWED, ["domain.read"]),
        ("domainGetMaxMemory", "maxMemory", lambda c: c.run.maxMemory(), ALLOWED, ["domain.read"]),
        ("domainHasManagedSaveImage", "hasManagedSaveImage", lambda c: c.defd.hasManagedSaveImage(0), ALLOWED,
         ["domain.read"]),
        ("domainGetSecurityLabel", "securityLabel", lambda c: c.run.securityLabel(), ALLOWED, ["domain.read"]),
        # lifecycle
        ("domainCreate", "create", lambda c: c.defd.create(), DENIED, ["domain.start"]),
        ("domainCreateWithFlags", "createWithFlags(PAUSED)",
         lambda c: c.defd.createWithFlags(L.VIR_DOMAIN_START_PAUSED), DENIED, ["domain.start"]),
        ("domainCreateXML", "createXML", lambda c: c.conn.createXML(RUN_XML, 0), DENIED,
         ["domain.write", "domain.start"]),
        ("domainDestroy", "destroy", lambda c: c.run.destroy(), DENIED, ["domain.stop"]),
        ("domainDestroyFlags", "destroyFlags", lambda c: c.run.destroyFlags(0), DENIED, ["domain.stop"]),
        ("domainShutdown", "shutdown", lambda c: c.run.shutdown(), DENIED, ["domain.init-control"]),
        ("domainShutdownFlags", "shutdownFlags(ACPI)",
         lambda c: c.run.shutdownFlags(L.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN), DENIED, ["domain.init-control"]),
        ("domainReboot", "reboot(ACPI)", lambda c: c.run.reboot(L.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN), DENIED,
         ["domain.init-control"]),
        ("domainReset", "reset", lambda c: c.run.reset(0), DENIED, ["domain.reset"]),
        ("domainSuspend", "suspend", lambda c: c.run.suspend(), DENIED, ["domain.suspend"]),
        ("domainResume", "resume", lambda c: c.run.resume(), DENIED, ["domain.suspend"]),
        # jobs
        ("domainGetJobInfo", "jobInfo", lambda c: c.run.jobInfo(), ALLOWED, ["domain.read"]),
        ("domainGetJobStats", "jobStats", lambda c: c.run.jobStats(0), ALLOWED, ["domain.read"]),
        ("domainAbortJob", "abortJob", lambda c: c.run.abortJob(), DENIED, ["domain.write"]),
        ("domainAbortJobFlags", "abortJobFlags", lambda c: c.run.abortJobFlags(0), DENIED, ["domain.write"]),
        # QEMU specific
        ("domainQemuMonitorCommand", "qemuMonitorCommand(stop)",
         lambda c: libvirt_qemu.qemuMonitorCommand(c.run, '{"execute":"stop"}', 0), DENIED, ["domain.write"]),
        ("domainQemuAgentCommand", "qemuAgentCommand",
         lambda c: libvirt_qemu.qemuAgentCommand(c.run, '{"execute":"guest-ping"}', 1, 0), DENIED,
         ["domain.write"]),
        # guest agent
        ("domainGetTime", "getTime", lambda c: c.run.getTime(0), DENIED, ["domain.write"]),
        ("domainSetTime", "setTime", lambda c: c.run.setTime({"seconds": 1, "nseconds": 0}, 0), DENIED,
         ["domain.set-time"]),
        ("domainFSFreeze", "fsFreeze", lambda c: c.run.fsFreeze(None, 0), DENIED, ["domain.fs-freeze"]),
        ("domainFSThaw", "fsThaw", lambda c: c.run.fsThaw(None, 0), DENIED, ["domain.fs-freeze"]),
        ("domainGetHostname", "hostname", lambda c: c.run.hostname(0), DENIED, ["domain.write"]),
        ("domainInterfaceAddresses", "interfaceAddresses(AGENT)",
         lambda c: c.run.interfaceAddresses(L.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0), DENIED,
         ["domain.read", "domain.write"]),
        ("domainInterfaceAddresses", "interfaceAddresses(LEASE)",
         lambda c: c.run.interfaceAddresses(L.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0), ALLOWED,
         ["domain.read"]),
        ("domainAgentSetResponseTimeout", "agentSetResponseTimeout",
         lambda c: c.run.agentSetResponseTimeout(7, 0), DENIED, ["domain.write"]),
        ("domainGetGuestInfo", "guestInfo", lambda c: c.run.guestInfo(0, 0), DENIED, ["domain.write"]),
        # devices
        ("domainOpenConsole", "openConsole", _console, DENIED, ["domain.open-device"]),
        ("domainOpenGraphics", "openGraphics", _graphics, DENIED, ["domain.open-graphics"]),
        ("domainOpenGraphicsFD", "openGraphicsFD", lambda c: os.close(c.run.openGraphicsFD(0, 0)),
         DENIED, ["domain.open-graphics"]),
        ("domainScreenshot", "screenshot", _screenshot, DENIED, ["domain.screenshot"]),
        ("domainSendKey", "sendKey", lambda c: c.run.sendKey(0, 0, [30], 1, 0), DENIED, ["domain.send-input"]),
        ("domainUpdateDeviceFlags", "updateDeviceFlags(CONFIG)",
         lambda c: c.defd.updateDeviceFlags(CDROM, AFF_CONFIG), DENIED, ["domain.write", "domain.save"]),
        ("domainAttachDevice", "attachDevice", lambda c: c.run.attachDevice(NIC), DENIED, ["domain.write"]),
        ("domainAttachDeviceFlags", "attachDeviceFlags(CONFIG)",
         lambda c: c.defd.attachDeviceFlags(NIC, AFF_CONFIG), DENIED, ["domain.write", "domain.save"]),
        ("domainDetachDevice", "detachDevice", lambda c: c.run.detachDevice(NIC), DENIED, ["domain.write"]),
        ("domainDetachDeviceFlags", "detachDeviceFlags(CONFIG)",
         lambda c: c.defd.detachDeviceFlags(NIC, AFF_CONFIG), DENIED, ["domain.write", "domain.save"]),
        ("domainDetachDeviceAlias", "detachDeviceAlias(CONFIG)",
         lambda c: c.defd.detachDeviceAlias("net0", AFF_CONFIG), DENIED, ["domain.write", "domain.save"]),
        # memory, vCPUs, statistics
        ("domainMemoryStats", "memoryStats", lambda c: c.run.memoryStats(), ALLOWED, ["domain.read"]),
        ("domainSetMemoryStatsPeriod", "setMemoryStatsPeriod", lambda c: c.run.setMemoryStatsPeriod(3, 0),
         DENIED, ["domain.write"]),
        ("domainSetMemory", "setMemory", lambda c: c.run.setMemory(48 * 1024), DENIED, ["domain.write"]),
        ("domainSetMemoryFlags", "setMemoryFlags(CONFIG)",
         lambda c: c.defd.setMemoryFlags(48 * 1024, AFF_CONFIG), DENIED, ["domain.write", "domain.save"]),
        ("domainSetMaxMemory", "setMaxMemory", lambda c: c.defd.setMaxMemory(96 * 1024), DENIED,
         ["domain.write"]),
        ("domainGetVcpusFlags", "vcpusFlags", lambda c: c.run.vcpusFlags(0), ALLOWED, ["domain.read"]),
        ("domainGetVcpusFlags", "vcpusFlags(GUEST)", lambda c: c.run.vcpusFlags(L.VIR_DOMAIN_VCPU_GUEST),
         DENIED, ["domain.read", "domain.write"]),
        ("domainGetMaxVcpus", "maxVcpus", lambda c: c.run.maxVcpus(), ALLOWED, ["domain.read"]),
        ("domainSetVcpus", "setVcpus", lambda c: c.run.setVcpus(2), DENIED, ["domain.write"]),
        ("domainSetVcpusFlags", "setVcpusFlags(CONFIG)", lambda c: c.defd.setVcpusFlags(2, AFF_CONFIG), DENIED,
         ["domain.write", "domain.save"]),
        ("domainGetVcpus", "vcpus", lambda c: c.run.vcpus(), ALLOWED, ["domain.read"]),
        ("domainGetVcpuPinInfo", "vcpuPinInfo", lambda c: c.defd.vcpuPinInfo(0), ALLOWED, ["domain.read"]),
        ("domainPinVcpu", "pinVcpu", lambda c: c.run.pinVcpu(0, (True,)), DENIED, ["domain.write"]),
        ("domainPinVcpuFlags", "pinVcpuFlags(CONFIG)", lambda c: c.defd.pinVcpuFlags(0, (True,), AFF_CONFIG),
         DENIED, ["domain.write", "domain.save"]),
        ("domainGetCPUStats", "getCPUStats", lambda c: c.run.getCPUStats(True), ALLOWED, ["domain.read"]),
        ("domainGetBlockInfo", "blockInfo", lambda c: c.defd.blockInfo("vda"), ALLOWED, ["domain.read"]),
        ("domainBlockStats", "blockStats", lambda c: c.run.blockStats("vda"), ALLOWED, ["domain.read"]),
        ("domainGetDiskErrors", "diskErrors", lambda c: c.run.diskErrors(0), ALLOWED, ["domain.read"]),
        ("domainBlockStatsFlags", "blockStatsFlags", lambda c: c.run.blockStatsFlags("vda", 0), ALLOWED,
         ["domain.read"]),
        ("domainInterfaceStats", "interfaceStats", lambda c: c.run.interfaceStats("vnet0"), ALLOWED,
         ["domain.read"]),
        ("domainGetControlInfo", "controlInfo", lambda c: c.run.controlInfo(), ALLOWED, ["domain.read"]),
        # dump
        ("domainCoreDump", "coreDump", lambda c: c.run.coreDump(c.path("core"), L.VIR_DUMP_MEMORY_ONLY), DENIED,
         ["domain.core-dump"]),
        ("domainCoreDumpWithFormat", "coreDumpWithFormat",
         lambda c: c.run.coreDumpWithFormat(c.path("core2"), 0, L.VIR_DUMP_MEMORY_ONLY), DENIED,
         ["domain.core-dump"]),
        # migration: the v3 steps are reached through the migrate APIs
        ("domainMigrateBegin3Params", "migrate3 from this connection",
         lambda c: c.run.migrate3(c.rw or c.conn, {}, L.VIR_MIGRATE_LIVE), DENIED, ["domain.migrate"]),
        ("domainMigratePerform3Params", "migrateToURI3(PEER2PEER)",
         lambda c: c.run.migrateToURI3(c.uri, {}, L.VIR_MIGRATE_LIVE | L.VIR_MIGRATE_PEER2PEER), DENIED,
         ["domain.migrate"]),
        ("domainMigratePrepare3Params", "migrate3 to this connection",
         lambda c: c.rw_run().migrate3(c.conn, {}, L.VIR_MIGRATE_LIVE), DENIED,
         ["domain.migrate", "domain.start", "domain.write"]),
        ("domainMigrateFinish3Params", "migrate3 to this connection",
         lambda c: c.rw_run().migrate3(c.conn, {}, L.VIR_MIGRATE_LIVE), DENIED, ["domain.migrate"]),
        ("domainMigrateConfirm3Params", "migrate3 from this connection",
         lambda c: c.run.migrate3(c.rw or c.conn, {}, L.VIR_MIGRATE_LIVE), DENIED, ["domain.migrate"]),
        ("domainMigrateStartPostCopy", "migrateStartPostCopy", lambda c: c.run.migrateStartPostCopy(0),
         DENIED, ["domain.migrate"]),
        ("domainMigrateSetMaxSpeed", "migrateSetMaxSpeed", lambda c: c.run.migrateSetMaxSpeed(77, 0), DENIED,
         ["domain.migrate"]),
        ("domainMigrateGetMaxSpeed", "migrateGetMaxSpeed", lambda c: c.run.migrateGetMaxSpeed(0), DENIED,
         ["domain.migrate"]),
        ("domainMigrateSetMaxDowntime", "migrateSetMaxDowntime", lambda c: c.run.migrateSetMaxDowntime(777, 0),
         DENIED, ["domain.migrate"]),
        ("domainMigrateGetMaxDowntime", "migrateGetMaxDowntime", _checked(lambda c: c.run.migrateGetMaxDowntime(0)),
         ALLOWED, ["domain.migrate"]),
        ("domainMigrateGetCompressionCache", "migrateGetCompressionCache",
         _checked(lambda c: c.run.migrateGetCompressionCache(0)), ALLOWED, ["domain.migrate"]),
        ("domainMigrateSetCompressionCache", "migrateSetCompressionCache",
         lambda c: c.run.migrateSetCompressionCache(8 * 1024 * 1024, 0), DENIED, ["domain.migrate"]),
        # save and restore
        ("domainSave", "save", lambda c: c.run.save(c.path("s1")), DENIED, ["domain.hibernate"]),
        ("domainSaveFlags", "saveFlags", lambda c: c.run.saveFlags(c.path("s2"), None, 0), DENIED,
         ["domain.hibernate"]),
        ("domainSaveParams", "saveParams",
         lambda c: c.run.saveParams({L.VIR_DOMAIN_SAVE_PARAM_FILE: c.path("s3")}, 0), DENIED,
         ["domain.hibernate"]),
        ("domainRestore", "restore", lambda c: c.conn.restore(c.path("image")), DENIED,
         ["domain.start", "domain.write"]),
        ("domainRestoreFlags", "restoreFlags", lambda c: c.conn.restoreFlags(c.path("image"), None, 0), DENIED,
         ["domain.start", "domain.write"]),
        ("domainRestoreParams", "restoreParams",
         lambda c: c.conn.restoreParams({L.VIR_DOMAIN_SAVE_PARAM_FILE: c.path("image")}, 0), DENIED,
         ["domain.start", "domain.write"]),
        ("domainSaveImageGetXMLDesc", "saveImageGetXMLDesc",
         lambda c: c.conn.saveImageGetXMLDesc(c.path("image"), 0), DENIED, ["domain.write"]),
        ("domainSaveImageDefineXML", "saveImageDefineXML",
         lambda c: c.conn.saveImageDefineXML(c.path("image"), DEF_XML, 0), DENIED,
         ["domain.write", "domain.hibernate"]),
        ("domainManagedSave", "managedSave", lambda c: c.run.managedSave(0), DENIED, ["domain.hibernate"]),
        ("domainManagedSaveRemove", "managedSaveRemove", lambda c: c.defd.managedSaveRemove(0), DENIED,
         ["domain.hibernate"]),
        ("domainManagedSaveGetXMLDesc", "managedSaveGetXMLDesc", lambda c: c.defd.managedSaveGetXMLDesc(0),
         ALLOWED, ["domain.read"]),
        ("domainManagedSaveGetXMLDesc", "managedSaveGetXMLDesc(SECURE)",
         lambda c: c.defd.managedSaveGetXMLDesc(L.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE), DENIED,
         ["domain.read", "domain.read-secure"]),
        ("domainManagedSaveDefineXML", "managedSaveDefineXML",
         lambda c: c.defd.managedSaveDefineXML(DEF_XML, 0), DENIED, ["domain.write", "domain.hibernate"]),
        # snapshots
        ("domainSnapshotCreateXML", "snapshotCreateXML",
         lambda c: c.defd.snapshotCreateXML("<domainsnapshot><name>ro-made</name></domainsnapshot>", 0),
         DENIED, ["domain.snapshot"]),
        ("domainSnapshotGetXMLDesc", "snapshot getXMLDesc", lambda c: c.snap.getXMLDesc(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotGetXMLDesc", "snapshot getXMLDesc(SECURE)",
         lambda c: c.snap.getXMLDesc(L.VIR_DOMAIN_SNAPSHOT_XML_SECURE), DENIED,
         ["domain.read", "domain.read-secure"]),
        ("domainSnapshotNum", "snapshotNum", lambda c: c.defd.snapshotNum(0), ALLOWED, ["domain.read"]),
        ("domainSnapshotListNames", "snapshotListNames", lambda c: c.defd.snapshotListNames(0), ALLOWED,
         ["domain.read"]),
        ("domainListAllSnapshots", "listAllSnapshots", lambda c: c.defd.listAllSnapshots(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotNumChildren", "snapshot numChildren", lambda c: c.snap.numChildren(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotListChildrenNames", "snapshot listChildrenNames", lambda c: c.snap.listChildrenNames(0),
         ALLOWED, ["domain.read"]),
        ("domainSnapshotListAllChildren", "snapshot listAllChildren", lambda c: c.snap.listAllChildren(0),
         ALLOWED, ["domain.read"]),
        ("domainSnapshotLookupByName", "snapshotLookupByName",
         lambda c: c.defd.snapshotLookupByName("s1", 0), ALLOWED, ["domain.read"]),
        ("domainHasCurrentSnapshot", "hasCurrentSnapshot", lambda c: c.defd.hasCurrentSnapshot(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotGetParent", "snapshot getParent", lambda c: c.snap.getParent(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotCurrent", "snapshotCurrent", lambda c: c.defd.snapshotCurrent(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotIsCurrent", "snapshot isCurrent", lambda c: c.snap.isCurrent(0), ALLOWED,
         ["domain.read"]),
        ("domainSnapshotHasMetadata", "snapshot hasMetadata", lambda c: c.snap.hasMetadata(0), ALLOWED,
         ["domain.read"]),
        ("domainRevertToSnapshot", "revertToSnapshot", lambda c: c.defd.revertToSnapshot(c.snap, 0), DENIED,
         ["domain.snapshot"]),
        ("domainSnapshotDelete", "snapshot delete", lambda c: c.snap.delete(0), DENIED, ["domain.snapshot"]),
    ]


def run_table(ctx):
    """Call every entry of the table on ctx; return one result per row:
    [entry, label, error code or None, message]."""
    out = []
    for entry, label, fn, _ro, _perms in api_table():
        try:
            fn(ctx)
            out.append([entry, label, None, ""])
        except libvirt.libvirtError as ex:
            out.append([entry, label, ex.get_error_code(), ex.get_error_message() or ""])
        except Exception as ex:     # a client-side problem: report, do not stop
            out.append([entry, label, -1, "%s: %s" % (type(ex).__name__, ex)])
    return out


def start_event_loop():
    libvirt.virEventRegisterDefaultImpl()

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=loop, daemon=True).start()


def silence_libvirt():
    libvirt.registerErrorHandler(lambda *a: None, None)


# ---------------------------------------------------------------------------
# Client mode: run the table as another user (the polkit part)
# ---------------------------------------------------------------------------

def client_main(uri, run_name, def_name, other_name, tmp, xml_path):
    global DEF_XML, RUN_XML
    silence_libvirt()
    start_event_loop()
    with open(xml_path) as f:
        DEF_XML, RUN_XML = json.load(f)
    result = {}
    conn = libvirt.open(uri)
    run = conn.lookupByName(run_name)
    defd = conn.lookupByName(def_name)
    snap = defd.snapshotLookupByName("s1", 0)
    ctx = Ctx(conn, uri, run, defd, snap, tmp, rw=conn)
    ctx.rw_run = lambda: run
    result["table"] = run_table(ctx)
    result["listed"] = sorted(d.name() for d in conn.listAllDomains(0))
    other = {}
    for label, fn in [("lookupByName", lambda: conn.lookupByName(other_name))]:
        try:
            fn()
            other[label] = [None, ""]
        except libvirt.libvirtError as ex:
            other[label] = [ex.get_error_code(), ex.get_error_message()]
    result["other"] = other
    result["uid"] = os.getuid()
    print(json.dumps(result))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--client":
    client_main(*sys.argv[2:8])
    sys.exit(0)


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------

from tandemtest import TAP, Daemon, run, tmpdir, qemu_pid, wait_for, plain_env  # noqa: E402

t = TAP()
QEMU_PW = pwd.getpwnam("libvirt-qemu")
# qemu.conf's default group is the libvirt-qemu group, which need not be
# the user's primary group (Debian's libvirt-daemon-system makes that kvm)
QEMU_GID = grp.getgrnam("libvirt-qemu").gr_gid
NOBODY = pwd.getpwnam("nobody")


def domain_xml(name, disk=None, graphics=True, agent=False):
    devices = ""
    if disk:
        devices += """
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>""" % disk
    if graphics:
        devices += """
    <graphics type='vnc' autoport='yes' passwd='%s'/>
    <graphics type='spice' autoport='yes' passwd='%s'/>""" % (VNC_PW, SPICE_PW)
    if agent:
        devices += """
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>"""
    return textwrap.dedent("""\
        <domain type='qemu'>
          <name>%s</name>
          <description>acl test</description>
          <memory unit='MiB'>64</memory>
          <vcpu current='1'>2</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <devices>%s
          </devices>
        </domain>
        """) % (name, devices)


def make_image(path):
    r = run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"])
    if r.rc != 0:
        raise RuntimeError("qemu-img create: %s" % r)


def setup_domains(conn, prefix, work):
    """A running domain <prefix>run and a defined one <prefix>def with a
    qcow2 disk and a snapshot s1."""
    img = os.path.join(work, "%sdef.qcow2" % prefix)
    make_image(img)
    defd = conn.defineXML(domain_xml(prefix + "def", disk=img))
    defd.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    run_dom = conn.defineXML(domain_xml(prefix + "run", agent=True))
    run_dom.create()
    return run_dom, defd


def snapshot_of(conn, run_name, def_name):
    """Everything the refused calls could have changed."""
    out = {}
    for name in (run_name, def_name):
        d = conn.lookupByName(name)
        out[name] = {
            "state": d.state(0),
            "id": d.ID(),
            "xml": d.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE),
            "inactive": d.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE),
            "autostart": d.autostart(),
            "snapshots": sorted(d.snapshotListNames(0)),
            "managedsave": d.hasManagedSaveImage(0),
        }
        if d.isActive():
            out[name]["qemu-status"] = json.loads(libvirt_qemu.qemuMonitorCommand(
                d, '{"execute":"query-status"}', 0))["return"]["status"]
            out[name]["vcpus"] = d.vcpusFlags(0)
    out["domains"] = sorted(d.name() for d in conn.listAllDomains(0))
    return out


def fmt_err(code, msg):
    return "code %s: %s" % (code, msg)


def check_coverage(entries):
    table = {row[0] for row in api_table()}
    missing = sorted(entries - table - set(INTERNAL))
    t.eq(missing, [], "every registered entry point is in the test's table (%d registered)" % len(entries))
    stale = sorted(table - entries)
    t.eq(stale, [], "the table names only registered entry points")


def test_readonly(d, work):
    rw = libvirt.open(d.uri)
    run_dom, defd = setup_domains(rw, "acl-", work)
    t.eq(run_dom.state(0)[0], libvirt.VIR_DOMAIN_RUNNING, "setup: acl-run runs")
    image = os.path.join(work, "image")
    run_dom.save(image)                # a real save image for the restore calls
    rw.restore(image)
    run_dom = rw.lookupByName("acl-run")
    before = snapshot_of(rw, "acl-run", "acl-def")

    ro = libvirt.openReadOnly(d.ro_uri)
    ctx = Ctx(ro, d.ro_uri, ro.lookupByName("acl-run"), ro.lookupByName("acl-def"),
              ro.lookupByName("acl-def").snapshotLookupByName("s1", 0), work, rw=rw)
    ctx.rw_run = lambda: run_dom
    rows = run_table(ctx)
    expect = {(e, label): ro_exp for e, label, _f, ro_exp, _p in api_table()}
    ndenied = nallowed = 0
    for entry, label, code, msg in rows:
        want = expect[(entry, label)]
        if want == DENIED:
            ndenied += 1
            t.ok(code == libvirt.VIR_ERR_OPERATION_DENIED and
                 ("read only access prevents" in msg or "operation forbidden" in msg),
                 "read-only %s [%s]: VIR_ERR_OPERATION_DENIED" % (label, entry), fmt_err(code, msg))
        else:
            nallowed += 1
            t.ok(code != libvirt.VIR_ERR_OPERATION_DENIED and code != -1,
                 "read-only %s [%s]: allowed%s" % (label, entry, "" if code is None else " (error %d)" % code),
                 fmt_err(code, msg))
    t.ok(ndenied > 60 and nallowed > 40, "%d refused and %d allowed calls made" % (ndenied, nallowed))
    after = snapshot_of(rw, "acl-run", "acl-def")
    for key in before:
        t.eq(after[key], before[key], "unchanged after the read-only calls: %s" % key)
    made = sorted(n for n in os.listdir(work) if n not in ("image", "acl-def.qcow2"))
    t.eq(made, [], "no file written by a refused call")
    ro.close()
    run_dom.destroy()
    for name in ("acl-run", "acl-def"):
        dom = rw.lookupByName(name)
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    rw.close()


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------

def set_log_filters(d, filters):
    """Replace the log_filters line of a Daemon not started yet."""
    conf = os.path.join(d.dir, "libvirtd.conf")
    with open(conf) as f:
        lines = [ln for ln in f.read().splitlines() if not ln.startswith("log_filters")]
    lines.append('log_filters = "%s"' % filters)
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")


def test_secrets(work):
    # the driver at debug level; libvirt's own public API layer (module
    # "libvirt") logs the XML its callers pass at debug level, as upstream
    # does, so it stays at info here
    d = Daemon("access-secrets")
    set_log_filters(d, "1:qemu 3:libvirt 3:rpc 3:util 3:conf 3:object 3:event")
    try:
        d.start()
        secrets_checks(d, work)
    finally:
        kill_qemus(d)
        d.cleanup()


def no_pw(xml):
    return VNC_PW not in xml and SPICE_PW not in xml


def both_pw(xml):
    return "passwd='%s'" % VNC_PW in xml and "passwd='%s'" % SPICE_PW in xml


def secrets_checks(d, work):
    rw = libvirt.open(d.uri)
    ro = libvirt.openReadOnly(d.ro_uri)
    img = os.path.join(work, "acl-sec.qcow2")
    make_image(img)
    dom = rw.defineXML(domain_xml("acl-sec", disk=img, agent=True))
    dom.create()
    for pw in (VNC_PW, SPICE_PW):
        kind = "VNC" if pw == VNC_PW else "SPICE"
        t.ok(pw not in dom.XMLDesc(0), "%s password absent from dumpxml" % kind)
        t.ok(pw not in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "%s password absent from dumpxml --inactive" % kind)
        t.ok(pw not in ro.lookupByName("acl-sec").XMLDesc(0), "%s password absent from read-only dumpxml" % kind)
        t.contains(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE), "passwd='%s'" % pw,
                   "%s password in dumpxml --security-info (read-write)" % kind)
        t.contains(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE),
                   "passwd='%s'" % pw, "%s password in dumpxml --inactive --security-info" % kind)
    r = d.virsh("dumpxml", "--security-info", "acl-sec", readonly=True)
    t.ok(r.rc != 0 and "virDomainGetXMLDesc with secure flag" in r.err,
         "virsh -r dumpxml --security-info refused", r)
    r = d.virsh("dumpxml", "acl-sec")
    t.ok(r.rc == 0 and VNC_PW not in r.out and SPICE_PW not in r.out and "<graphics type='vnc'" in r.out,
         "virsh dumpxml: graphics shown without passwords", r)

    # QEMU's argv and environment
    pid = qemu_pid(d, "acl-sec")
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().decode(errors="replace")
    t.ok(VNC_PW not in argv and SPICE_PW not in argv, "no password on QEMU's command line")
    with open("/proc/%d/environ" % pid, "rb") as f:
        env = f.read().decode(errors="replace")
    t.ok(VNC_PW not in env and SPICE_PW not in env, "no password in QEMU's environment")

    # the password does reach QEMU: VNC asks for authentication
    vnc = json.loads(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-vnc"}', 0))["return"]
    t.eq(vnc.get("auth"), "vnc", "QEMU's VNC server requires the password")

    # files: status XML (0600, root's), definition, per-domain log
    status = d.private("/run/libvirt/qemu/acl-sec.xml")
    st = os.stat(status)
    t.eq((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600), "status file: root's, 0600")
    cfg = d.private("/etc/libvirt/qemu/acl-sec.xml")
    st = os.stat(cfg)
    t.eq((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600), "definition file: root's, 0600")
    for path, what in [(status, "status"), (cfg, "definition")]:
        with open(path) as f:
            t.contains(f.read(), VNC_PW, "the %s file keeps the VNC password (it is root-only)" % what)

    # snapshots, save images and managed save keep the definition too
    snap = dom.snapshotCreateXML("<domainsnapshot><name>sec1</name></domainsnapshot>", 0)
    t.ok(no_pw(snap.getXMLDesc(0)), "snapshot-dumpxml: no passwords")
    t.ok(both_pw(snap.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)),
         "snapshot-dumpxml --security-info: both passwords")
    sdir = d.private("/var/lib/libvirt/qemu/snapshot/acl-sec")
    for n in sorted(os.listdir(sdir)) if os.path.isdir(sdir) else []:
        st = os.stat(os.path.join(sdir, n))
        t.eq(stat.S_IMODE(st.st_mode) & 0o077, 0, "snapshot metadata %s: no group/other permissions" % n)
    snap.delete(0)
    saved = os.path.join(work, "acl-sec.save")
    dom.save(saved)
    st = os.stat(saved)
    t.eq(stat.S_IMODE(st.st_mode) & 0o077, 0, "save image: no group/other permissions (mode %o)"
         % stat.S_IMODE(st.st_mode))
    t.ok(no_pw(rw.saveImageGetXMLDesc(saved, 0)), "save-image-dumpxml: no passwords")
    t.ok(both_pw(rw.saveImageGetXMLDesc(saved, libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)),
         "save-image-dumpxml --security-info: both passwords")
    rw.restore(saved)
    dom = rw.lookupByName("acl-sec")
    vnc = json.loads(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-vnc"}', 0))["return"]
    t.eq(vnc.get("auth"), "vnc", "restored: QEMU's VNC server still requires the password")
    dom.managedSave(0)
    t.ok(no_pw(dom.managedSaveGetXMLDesc(0)), "managedsave-dumpxml: no passwords")
    t.ok(both_pw(dom.managedSaveGetXMLDesc(libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)),
         "managedsave-dumpxml --security-info: both passwords")
    msdir = d.private("/var/lib/libvirt/qemu/save")
    st = os.stat(msdir)
    t.eq(stat.S_IMODE(st.st_mode), 0o700, "managed save directory: 0700")
    dom.create()
    t.ok(both_pw(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)), "started from the managed save: passwords kept")
    dom.destroy()
    logpath = d.private("/var/log/libvirt/qemu/acl-sec.log")
    with open(logpath, errors="replace") as f:
        qlog = f.read()
    t.ok(len(qlog) > 0, "the per-domain QEMU log exists")
    for pw in (VNC_PW, SPICE_PW):
        t.ok(pw not in qlog, "per-domain QEMU log: no %s" % pw)
    dlog = d.log()
    t.contains(dlog, "set_password", "the daemon debug log shows the set_password commands")
    for pw in (VNC_PW, SPICE_PW):
        hits = [ln for ln in dlog.splitlines() if pw in ln]
        t.eq(hits[:3], [], "daemon debug log: no %s" % pw)
    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    ro.close()
    rw.close()


# ---------------------------------------------------------------------------
# Least privilege
# ---------------------------------------------------------------------------

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def as_nobody(argv):
    return run(["setpriv", "--reuid=nobody", "--regid=%d" % NOBODY.pw_gid, "--clear-groups"] + argv,
               timeout=30)


CONNECT_PY = ("import socket,sys\n"
              "s=socket.socket(socket.AF_UNIX)\n"
              "try:\n"
              "    s.connect(sys.argv[1]); print('CONNECTED')\n"
              "except OSError as e:\n"
              "    print('ERRNO', e.errno)\n")
OPEN_PY = ("import os,sys\n"
           "try:\n"
           "    os.close(os.open(sys.argv[1], os.O_RDWR|os.O_NOCTTY)); print('OPENED')\n"
           "except OSError as e:\n"
           "    print('ERRNO', e.errno)\n")


def test_privilege(d, work):
    rw = libvirt.open(d.uri)
    dom = rw.defineXML(domain_xml("acl-priv", agent=True))
    dom.create()
    pid = qemu_pid(d, "acl-priv")
    st = proc_status(pid)
    t.eq(st["Uid"], [str(QEMU_PW.pw_uid)] * 4, "QEMU's real/effective/saved/fs uid: libvirt-qemu")
    t.eq(st["Gid"], [str(QEMU_GID)] * 4, "QEMU's gids: libvirt-qemu's group")
    groups = set(st.get("Groups", []))
    t.ok("0" not in groups, "QEMU is not in group root", groups)
    t.eq(st["CapEff"], ["0000000000000000"], "QEMU has no effective capabilities")
    t.eq(st.get("NoNewPrivs"), ["1"], "QEMU runs with no_new_privs (the sandbox)")
    t.eq(st.get("Seccomp"), ["2"], "QEMU runs under a seccomp filter")
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    argv = [a.decode() for a in argv if a]
    i = argv.index("-sandbox") if "-sandbox" in argv else -1
    t.eq(argv[i + 1] if i >= 0 else None, SANDBOX, "argv: -sandbox %s" % SANDBOX)

    # per-domain directory
    rundir = d.private("/var/lib/libvirt/qemu")
    dirs = [n for n in os.listdir(rundir) if n.startswith("domain-") and n.endswith("-acl-priv")]
    t.ok(len(dirs) == 1, "one per-domain directory", os.listdir(rundir))
    if not dirs:
        return
    ddir = os.path.join(rundir, dirs[0])
    s = os.stat(ddir)
    t.eq((s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)), (QEMU_PW.pw_uid, QEMU_GID, 0o700),
         "per-domain directory: libvirt-qemu's, 0700")
    mon = os.path.join(ddir, "monitor.sock")
    t.ok(os.path.exists(mon), "monitor socket in the per-domain directory")
    if os.path.exists(mon):
        s = os.stat(mon)
        t.eq(stat.S_IMODE(s.st_mode) & 0o077, 0, "monitor socket: no group/other permissions")
    agent = os.path.join(ddir, "org.qemu.guest_agent.0")
    t.ok(os.path.exists(agent), "agent socket in the per-domain directory")
    # a real attempt, in the daemon's mount namespace (where the path is
    # /var/lib/libvirt/qemu/...): nobody is refused, QEMU's user (for
    # comparison: the attempt is real) gets through
    inside = "/var/lib/libvirt/qemu/%s/" % dirs[0]
    ns = ["nsenter", "--mount", "--target", str(d.proc.pid)]
    for name, what in [("monitor.sock", "monitor"), ("org.qemu.guest_agent.0", "agent")]:
        r = run(ns + ["setpriv", "--reuid=nobody", "--regid=%d" % NOBODY.pw_gid, "--clear-groups",
                      sys.executable, "-c", CONNECT_PY, inside + name], timeout=30)
        t.eq(r.out.strip(), "ERRNO 13", "nobody cannot connect to the %s socket (EACCES)" % what)
    r = run(ns + ["setpriv", "--reuid=libvirt-qemu", "--regid=%d" % QEMU_GID, "--clear-groups",
                  sys.executable, "-c", CONNECT_PY, inside + "org.qemu.guest_agent.0"], timeout=30)
    t.eq(r.out.strip(), "CONNECTED", "QEMU's user can connect to the agent socket")

    # the console pty
    xml = dom.XMLDesc(0)
    m = re.search(r"<console type='pty' tty='(/dev/pts/\d+)'", xml)
    t.ok(m is not None, "the console has a pty", xml)
    if m:
        pts = m.group(1)
        s = os.stat(pts)
        t.ok(s.st_mode & 0o006 == 0, "console pty %s: no permissions for others (mode %o, uid %d)"
             % (pts, stat.S_IMODE(s.st_mode), s.st_uid))
        r = as_nobody([sys.executable, "-c", OPEN_PY, pts])
        t.eq(r.out.strip(), "ERRNO 13", "nobody cannot open the console pty")

    # the driver's directories
    for path, mode in [("/var/lib/libvirt/qemu", None), ("/var/log/libvirt/qemu", 0o700),
                       ("/etc/libvirt/qemu", 0o700), ("/var/lib/libvirt/qemu/save", 0o700),
                       ("/var/lib/libvirt/qemu/snapshot", 0o700), ("/var/lib/libvirt/qemu/dump", 0o700)]:
        p = d.private(path)
        if not os.path.exists(p):
            t.ok(False, "%s exists" % path)
            continue
        s = os.stat(p)
        if mode is None:
            t.eq(stat.S_IMODE(s.st_mode) & 0o006, 0,
                 "%s: others may at most traverse (mode %o)" % (path, stat.S_IMODE(s.st_mode)))
        else:
            t.eq((s.st_uid, stat.S_IMODE(s.st_mode)), (0, mode), "%s: root's, mode %o" % (path, mode))
    rdir = d.private("/run/libvirt/qemu")
    for n in sorted(os.listdir(rdir)):
        if n.endswith(".xml"):
            s = os.stat(os.path.join(rdir, n))
            t.eq((s.st_uid, stat.S_IMODE(s.st_mode)), (0, 0o600),
                 "run directory: status file %s is root's, 0600" % n)
    logf = d.private("/var/log/libvirt/qemu/acl-priv.log")
    s = os.stat(logf)
    t.eq(stat.S_IMODE(s.st_mode) & 0o077, 0, "per-domain QEMU log: no group/other permissions")
    dom.destroy()
    t.ok(not os.path.exists(ddir), "the per-domain directory is removed when QEMU stops")
    dom.undefine()
    rw.close()


# ---------------------------------------------------------------------------
# polkit
# ---------------------------------------------------------------------------

POLKITD = "/usr/lib/polkit-1/polkitd"
RULES_DIR = "/etc/polkit-1/rules.d"
ALLOWED_ACTIONS = ["connect.getattr", "connect.read", "connect.search-domains",
                   "domain.getattr", "domain.read"]

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

RULE = """// installed by Tandem's tests/e2e/test_access.py; removed when it ends
polkit.addRule(function(action, subject) {
    if (subject.user != "%(user)s" || action.id.indexOf("org.libvirt.api.") != 0)
        return polkit.Result.NOT_HANDLED;
    var allowed = %(allowed)s;
    if (allowed.indexOf(action.id) < 0)
        return polkit.Result.NO;
    var dom = action.lookup("domain_name");
    if (dom !== undefined && dom.indexOf("%(prefix)s") != 0)
        return polkit.Result.NO;
    return polkit.Result.YES;
});
"""


def polkit_missing():
    for path in (POLKITD, "/usr/bin/dbus-daemon", "/usr/share/polkit-1/actions/org.libvirt.api.policy"):
        if not os.path.exists(path):
            return "%s is missing (packages polkitd, dbus-daemon; libvirt's polkit actions come with libvirt-daemon-system, which install-deps.sh does not install)" % path
    if not os.path.isdir(RULES_DIR):
        return "%s does not exist" % RULES_DIR
    return None


class PrivateBus:
    """A dbus-daemon acting as the system bus and a polkitd on it; both
    stopped by their PIDs."""

    def __init__(self, work):
        self.dir = os.path.join(work, "bus")
        os.makedirs(self.dir)
        os.chmod(work, 0o755)
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "system_bus_socket")
        self.address = "unix:path=%s" % self.sock
        self.procs = []

    def start(self):
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF % self.sock)
        self.log = open(os.path.join(self.dir, "bus.log"), "w")
        self.procs.append(subprocess.Popen(["dbus-daemon", "--config-file=%s" % conf, "--nofork"],
                                           stdout=self.log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL))
        if not wait_for(lambda: os.path.exists(self.sock), 10):
            raise RuntimeError("dbus-daemon did not create %s" % self.sock)
        env = dict(plain_env(), DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.procs.append(subprocess.Popen([POLKITD, "--no-debug"], env=env, stdout=self.log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        # polkitd is up when it owns its name on the bus
        ok = wait_for(lambda: run(["dbus-send", "--bus=%s" % self.address, "--print-reply",
                                   "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus.NameHasOwner",
                                   "string:org.freedesktop.PolicyKit1"]).out.find("true") >= 0, 20)
        if not ok:
            raise RuntimeError("polkitd did not appear on the private bus:\n%s" % self.log_text())

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "bus.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


def test_polkit(work):
    why = polkit_missing()
    if why:
        t.skip("polkit access driver", why)
        return
    user = NOBODY.pw_name
    prefix = "aclpk-"
    rule_path = os.path.join(RULES_DIR, "90-tandem-test-access-%d-%s.rules" % (os.getpid(), uuid.uuid4().hex[:8]))
    bus = PrivateBus(work)
    d = None
    try:
        bus.start()
        with open(rule_path, "w") as f:
            f.write(RULE % {"user": user, "prefix": prefix,
                            "allowed": json.dumps(["org.libvirt.api." + a for a in ALLOWED_ACTIONS])})
        os.chmod(rule_path, 0o644)
        d = Daemon("access-polkit", extra_env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
        set_log_filters(d, "1:qemu 1:libvirt 1:access 3:rpc 3:util 3:conf 3:object 3:event")
        with open(os.path.join(d.dir, "libvirtd.conf"), "a") as f:
            f.write('access_drivers = [ "polkit" ]\n')
            f.write('unix_sock_rw_perms = "0777"\n')
        os.chmod(d.dir, 0o755)
        os.chmod(d.sockdir, 0o755)
        d.start()
        rw = libvirt.open(d.uri)
        run_dom, defd = setup_domains(rw, prefix, work)
        other = rw.defineXML(domain_xml(prefix.replace("-", "") + "other", graphics=False))
        other_name = other.name()
        image = os.path.join(work, "image")
        run_dom.save(image)
        rw.restore(image)
        os.chmod(image, 0o644)
        before = snapshot_of(rw, prefix + "run", prefix + "def")
        xml_path = os.path.join(work, "xmls.json")
        with open(xml_path, "w") as f:
            json.dump([domain_xml(prefix + "def"), domain_xml(prefix + "transient", graphics=False)], f)
        os.chmod(xml_path, 0o644)
        loglen = len(d.log())
        r = run(["setpriv", "--reuid=%s" % user, "--regid=%d" % NOBODY.pw_gid, "--clear-groups",
                 sys.executable, os.path.abspath(__file__), "--client", d.uri, prefix + "run", prefix + "def",
                 other_name, work, xml_path], timeout=600,
                env=dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", "")))
        try:
            res = json.loads(r.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            t.ok(False, "the unprivileged client ran as %s" % user, "%s\n%s" % (r, d.log_tail()))
            return
        t.eq(res["uid"], NOBODY.pw_uid, "the client ran as %s" % user)
        perms = {(e, label): p for e, label, _f, _ro, p in api_table()}
        nallowed = ndenied = 0
        log = d.log()[loglen:]
        for entry, label, code, msg in res["table"]:
            need = perms[(entry, label)]
            missing = [p for p in need if p not in ALLOWED_ACTIONS]
            if missing:
                ndenied += 1
                ok = (code == libvirt.VIR_ERR_ACCESS_DENIED and "denied access" in msg)
                t.ok(ok, "polkit %s [%s]: VIR_ERR_ACCESS_DENIED (needs %s)" % (label, entry, ", ".join(missing)),
                     fmt_err(code, msg))
            else:
                nallowed += 1
                t.ok(code not in (libvirt.VIR_ERR_ACCESS_DENIED, libvirt.VIR_ERR_OPERATION_DENIED, -1),
                     "polkit %s [%s]: allowed%s" % (label, entry, "" if code is None else " (error %d)" % code),
                     fmt_err(code, msg))
        t.ok(ndenied > 60 and nallowed > 40, "%d refused and %d allowed calls made as %s" % (ndenied, nallowed, user))
        for action in ("domain.start", "domain.stop", "domain.write", "domain.read-secure", "domain.migrate",
                       "domain.hibernate", "domain.snapshot", "connect.write"):
            t.contains(log, "Check action 'org.libvirt.api.%s' for process" % action,
                       "daemon log names the polkit action org.libvirt.api.%s" % action)
        code, msg = res["other"]["lookupByName"]
        t.ok(code == libvirt.VIR_ERR_ACCESS_DENIED, "%s cannot look up %s (another domain)" % (user, other_name),
             fmt_err(code, msg))
        t.eq(res["listed"], sorted([prefix + "def", prefix + "run"]),
             "listAllDomains as %s shows only the domains the rule allows" % user)
        after = snapshot_of(rw, prefix + "run", prefix + "def")
        for key in before:
            t.eq(after[key], before[key], "unchanged after the unprivileged calls: %s" % key)
        # root (uid 0) is still allowed everything
        t.eq(rw.lookupByName(prefix + "run").state(0)[0], libvirt.VIR_DOMAIN_RUNNING, "root still manages it")
        rw.lookupByName(prefix + "run").destroy()
        for name in (prefix + "run", prefix + "def", other_name):
            rw.lookupByName(name).undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        rw.close()
    finally:
        if d is not None:
            kill_qemus(d)
            d.cleanup()
        if os.path.exists(rule_path):
            os.unlink(rule_path)
        bus.stop()


def kill_qemus(d):
    rundir = d.private("/run/libvirt/qemu")
    for n in os.listdir(rundir) if os.path.isdir(rundir) else []:
        if not n.endswith(".pid"):
            continue
        try:
            pid = int(open(os.path.join(rundir, n)).read())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"qemu" in f.read():
                    os.kill(pid, 9)
        except (OSError, ValueError):
            pass


def main():
    if libvirt is None:
        t.skip("access tests", "python3-libvirt is not installed")
        t.done()
    silence_libvirt()
    start_event_loop()
    global DEF_XML, RUN_XML
    DEF_XML = domain_xml("acl-def")
    RUN_XML = domain_xml("acl-transient", graphics=False)
    t.run("entry points", lambda: check_coverage(registered_entries()))
    work = tmpdir("access")
    os.chmod(work, 0o755)
    d = Daemon("access")
    try:
        d.start()
        t.run("read-only", test_readonly, d, work)
        t.run("secrets", test_secrets, work)
        t.run("least privilege", test_privilege, d, work)
        t.ok(d.alive(), "daemon alive at the end")
    except Exception as ex:
        t.ok(False, "access setup", "%s\n%s" % (ex, d.log_tail()))
    finally:
        kill_qemus(d)
        d.cleanup()
    pkwork = tmpdir("access-polkit")
    t.run("polkit", test_polkit, pkwork)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(pkwork, ignore_errors=True)
    t.done()


main()
