#!/bin/sh
# setup.sh: what the benchmark needs beyond the build's own dependencies:
# python3-libvirt (the client) and python3-matplotlib (the plot), from
# Debian, installed with apt-get only when missing.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -e
missing=
/usr/bin/python3 -c 'import libvirt' 2>/dev/null || missing="$missing python3-libvirt"
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || missing="$missing python3-matplotlib"
if [ -n "$missing" ]; then
    echo "bench: installing$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi
