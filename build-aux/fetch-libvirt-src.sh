#!/bin/sh
# Fetch the Debian source package of the *installed* libvirt into DIR and
# generate the access-control header Tandem needs.  Uses a private apt
# configuration under DIR: the machine's own apt sources are never touched.
#
# Usage: build-aux/fetch-libvirt-src.sh DIR
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

ver=$(dpkg-query -W -f='${source:Version}' libvirt0 2>/dev/null) || {
    echo "fetch-libvirt-src: libvirt0 is not installed" >&2
    exit 1
}
stamp="$dir/.version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$ver" ] && [ -d "$dir/src/src" ]; then
    exit 0
fi

. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}
apt="$dir/apt"
rm -rf "$apt" "$dir/src"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/dl"
cat > "$apt/sources.list" <<SRC
deb-src http://deb.debian.org/debian $codename main
deb-src http://deb.debian.org/debian $codename-updates main
deb-src http://deb.debian.org/debian-security $codename-security main
SRC
opts="-o Dir::Etc::SourceList=$apt/sources.list -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache
      -o APT::Sandbox::User=root -o Debug::NoLocking=1"
# shellcheck disable=SC2086
apt-get -q $opts update >"$apt/update.log" 2>&1 || {
    echo "fetch-libvirt-src: apt-get update failed, see $apt/update.log" >&2
    exit 1
}
# shellcheck disable=SC2086
(cd "$apt/dl" && apt-get -q $opts source --download-only "libvirt=$ver") \
    >"$apt/source.log" 2>&1 || {
    echo "fetch-libvirt-src: could not download libvirt $ver source, see $apt/source.log" >&2
    exit 1
}
dpkg-source -x --no-check "$apt/dl"/libvirt_*.dsc "$dir/src" >"$apt/extract.log" 2>&1 || {
    echo "fetch-libvirt-src: dpkg-source failed, see $apt/extract.log" >&2
    exit 1
}
rm -rf "$apt/dl"

# Prototypes of the vir...EnsureACL checks (their bodies live in libvirt.so).
mkdir -p "$dir/gen"
perl -I"$dir/src/src/rpc" "$dir/src/src/rpc/gendispatch.pl" --mode=aclheader \
    remote REMOTE "$dir/src/src/remote/remote_protocol.x" > "$dir/gen/viraccessapicheck.h"
perl -I"$dir/src/src/rpc" "$dir/src/src/rpc/gendispatch.pl" --mode=aclheader \
    qemu QEMU "$dir/src/src/remote/qemu_protocol.x" > "$dir/gen/viraccessapicheckqemu.h"
echo "$ver" > "$stamp"
echo "fetch-libvirt-src: libvirt $ver internal headers in $dir/src"
