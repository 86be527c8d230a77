#!/bin/sh
# Regenerate the build system and configure.
# SPDX-License-Identifier: LGPL-2.1-or-later
set -e
srcdir=$(dirname "$0")
cd "$srcdir"
# gnulib's maintainer makefile, taken from Debian's gnulib package (not committed).
if [ -d /usr/share/gnulib ]; then
    cp -f /usr/share/gnulib/top/maint.mk maint.mk
    cp -f /usr/share/gnulib/top/GNUmakefile GNUmakefile
    cp -f /usr/share/gnulib/build-aux/vc-list-files build-aux/vc-list-files
    cp -f /usr/share/gnulib/build-aux/useless-if-before-free build-aux/useless-if-before-free
    chmod +x build-aux/vc-list-files build-aux/useless-if-before-free
fi
# automake's TAP driver for the test scripts
for f in /usr/share/automake-*/tap-driver.sh; do
    [ -f "$f" ] && cp -f "$f" build-aux/tap-driver.sh && chmod +x build-aux/tap-driver.sh
done
autopoint --force >/dev/null 2>&1 || autopoint --force
autoreconf -fi
cd - >/dev/null
if [ -z "$NOCONFIGURE" ]; then
    exec "$srcdir"/configure "$@"
fi
