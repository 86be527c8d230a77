#!/bin/sh
# Tandem's main job on the embedded default: virsh on qemu:///embed with the
# module from the build tree and a sample domain defined.
#
# Usage: demo.sh DRIVER_DIR ROOT SRCDIR batch|interactive
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu
driverdir=$1 root=$2 srcdir=$3 mode=$4
uri="qemu:///embed?root=$root"
export LIBVIRT_DRIVER_DIR="$driverdir"
mkdir -p "$root"

virsh_embed() {
    virsh -q -c "$uri" "$@"
}

if ! virsh_embed domname demo >/dev/null 2>&1; then
    virsh_embed define "$srcdir/examples/demo.xml"
fi

echo "== Tandem $(virsh_embed version | sed -n 's/^Running hypervisor: //p') on $uri"
virsh_embed "uri; list --all; dominfo demo"

if [ "$mode" = interactive ] && [ -t 0 ]; then
    echo "== Interactive virsh on the embedded driver ('help', 'quit'):"
    exec virsh -c "$uri"
fi
echo "== demo done"
