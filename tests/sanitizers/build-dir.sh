#!/bin/sh
# build-dir.sh DIR [CONFIGURE-ARG...]: prepare and build a separate build
# of Tandem in DIR (make check-asan, check-tsan, scan-build; docs/ANALYSIS.md).
#
# automake refuses a second build directory beside a configured source tree
# (make would find the source tree's objects through VPATH), so DIR/tree gets
# a copy of the sources made by `make distdir` and DIR itself is configured
# from it.  Files whose content did not change keep their timestamps, so a
# second run rebuilds only what changed.  Run from the top build directory
# of a configured tree; MAKE, CONFIGURE_WRAPPER (e.g. scan-build) and
# LIBVIRT_SRC (reused, never fetched again) come from the environment.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -e
dir=$1
shift
MAKE=${MAKE:-make}
case $dir in
    /*|*..*) echo "build-dir.sh: DIR must be relative, below the build directory" >&2
        exit 1 ;;
esac
mkdir -p "$dir"
# (po/'s distdir rule wants a relative distdir)
rm -rf "$dir/tree.new"
$MAKE -s distdir distdir="$dir/tree.new" >/dev/null
dir=$(pwd)/$dir
stage=$dir/tree.new
# copy into DIR/tree only what differs (cmp), keeping the stage's timestamps
mkdir -p "$dir/tree"
(cd "$stage" && find . -type d) | (cd "$dir/tree" && xargs mkdir -p)
(cd "$stage" && find . -type f -o -type l) | while read -r f; do
    if [ -L "$stage/$f" ] || ! cmp -s "$stage/$f" "$dir/tree/$f"; then
        rm -f "$dir/tree/$f"
        cp -pP "$stage/$f" "$dir/tree/$f"
    fi
done
rm -rf "$stage"
# (re)configure when the arguments changed
args="--with-libvirt-src=$LIBVIRT_SRC $*"
cd "$dir"
if [ ! -f config.status ] || [ "$(cat .configure-args 2>/dev/null)" != "$args" ]; then
    # shellcheck disable=SC2086
    $CONFIGURE_WRAPPER ./tree/configure $args
    printf '%s\n' "$args" > .configure-args
fi
$CONFIGURE_WRAPPER $MAKE
