#!/bin/sh
# Install what Tandem needs on Debian 12 (run as root): build tools, libvirt
# (daemon, clients, development files, the stock QEMU driver for side-by-side
# benchmarks), QEMU, test tools; and create the unprivileged user QEMU runs as.
# The libvirt internal headers are fetched later by the build itself
# (build-aux/fetch-libvirt-src.sh).  Safe to run again: installs only what is
# missing.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

PACKAGES="
 gcc make autoconf automake libtool autopoint gettext pkg-config gnulib
 dpkg-dev perl xz-utils util-linux iproute2 procps
 libvirt-dev libvirt0 libvirt-daemon libvirt-daemon-driver-qemu
 libvirt-clients python3 python3-libvirt
 qemu-system-x86 qemu-utils
 libyajl-dev libglib2.0-dev libxml2-dev
 spin clang libclang-rt-14-dev
 locales virtinst
 polkitd dbus-daemon dbus-bin
 prometheus-libvirt-exporter libvirt-dbus dbus
 virt-manager xvfb xauth imagemagick x11-apps xdotool python3-dogtail at-spi2-core
 python3-pil
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing packages:$missing (run as root to install)" >&2
        exit 1
    fi
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # libvirt-dbus pulls in libvirt-daemon-system, and
    # prometheus-libvirt-exporter has a service of its own: their maintainer
    # scripts must not start the stock system libvirtd or the exporter on
    # this machine (the tests start their own, by PID)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

# The unprivileged account QEMU runs as in privileged mode (qemu.conf
# user/group); Debian's libvirt-daemon-system would create it, and is
# installed now only as a dependency of libvirt-dbus.
if [ "$(id -u)" = 0 ]; then
    getent group libvirt-qemu >/dev/null || addgroup --quiet --system libvirt-qemu
    getent group kvm >/dev/null || addgroup --quiet --system kvm
    if ! getent passwd libvirt-qemu >/dev/null; then
        adduser --quiet --system --ingroup libvirt-qemu --no-create-home \
            --home /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
        adduser --quiet libvirt-qemu kvm || true
    fi
fi
echo "install-deps: all dependencies present"
