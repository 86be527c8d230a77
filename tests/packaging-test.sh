#!/bin/sh
# packaging-test.sh: `make install` / `make uninstall` and tandem-setup
# (build-aux/tandem-setup, man/tandem-setup.8), in a temporary directory.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# 1. make install DESTDIR=TMP/root into a connection-driver directory that
#    holds a fake stock module, tandem-setup status/disable/enable there,
#    the refusal when both modules are stock, usage errors, make uninstall.
# 2. tandem-setup on a directory that a fake dpkg says is packaged: the
#    stock module is moved aside by `dpkg-divert --local --rename` (a fake
#    dpkg-divert that records its arguments and renames like the real one).
# The machine's own connection-driver directory and dpkg database are never
# touched: the test checks that they are unchanged.  TAP output.
#
# Runs under `make check` (abs_top_builddir, abs_top_srcdir and
# TANDEM_INSTALL_DRIVER_DIR set) or by hand from the build directory.

set -u

builddir=${abs_top_builddir:-$(pwd)}
driverdir=${TANDEM_INSTALL_DRIVER_DIR:-$(sed -n 's/^DEFAULT_DRIVER_DIR="\(.*\)"$/\1/p' "$builddir/tandem-setup" 2>/dev/null)}
module=$builddir/src/.libs/libvirt_driver_qemu.so
real_dir=/usr/lib/x86_64-linux-gnu/libvirt

if [ ! -f "$module" ] || [ -z "$driverdir" ]; then
    echo "not ok 1 - the module is built ($module) and the driver directory known"
    echo "1..1"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-pkg.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

n=0
failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $*"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $*"
}
# check DESCRIPTION COMMAND...: one TAP line for a shell condition
check() {
    what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# run EXPECTED_RC NAME COMMAND...: runs COMMAND, output in $tmp/out and
# $tmp/err, one TAP line for its exit status
run() {
    want=$1 name=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$name (exit $rc)"
    else
        not_ok "$name (exit $rc, expected $want)"
        sed 's/^/# stdout: /' "$tmp/out"
        sed 's/^/# stderr: /' "$tmp/err"
    fi
}
# expect REF FILE [REF FILE]...: each FILE has REF's bytes; REF "none":
# FILE does not exist
expect() {
    while [ $# -ge 2 ]; do
        if [ "$1" = none ]; then
            [ ! -e "$2" ] || return 1
        else
            cmp -s "$1" "$2" || return 1
        fi
        shift 2
    done
}
not_grep() {
    ! grep -q "$@"
}
# state of the machine's own files, compared at the end
snapshot_system() {
    {
        if [ -d "$real_dir" ]; then
            find "$real_dir" -exec ls -ld --time-style=+%s.%N {} + 2>&1
            find "$real_dir" -type f -exec md5sum {} + 2>&1
        fi
        if [ -x /usr/bin/dpkg-divert ]; then
            /usr/bin/dpkg-divert --list 2>&1 | sort
        fi
    } > "$1"
}
snapshot_system "$tmp/system.before"

# --- fake dpkg: packaged files are the ones under $tmp/sys ---------------
mkdir -p "$tmp/bin" "$tmp/sys"
: > "$tmp/divert.log"
: > "$tmp/diversions"
cat > "$tmp/bin/dpkg-query" <<EOF
#!/bin/sh
# fake dpkg-query -S FILE: $tmp/sys/* belongs to libvirt-daemon-driver-qemu
[ "\$1" = -S ] || exit 2
f=\$2
to=\$(sed -n "s|^\$f \\(.*\\)\$|\\1|p" "$tmp/diversions")
[ -n "\$to" ] && printf 'local diversion from: %s\\nlocal diversion to: %s\\n' "\$f" "\$to"
case \$f in
    "$tmp/sys/"*) echo "libvirt-daemon-driver-qemu: \$f" ;;
    *) echo "dpkg-query: no path found matching pattern \$f" >&2; exit 1 ;;
esac
EOF
cat > "$tmp/bin/dpkg-divert" <<EOF
#!/bin/sh
# fake dpkg-divert: records its arguments, keeps diversions in a file and
# renames like the real one (never over an existing file)
echo "dpkg-divert \$*" >> "$tmp/divert.log"
db="$tmp/diversions"
rename=no divert= op= file=
while [ \$# -gt 0 ]; do
    case \$1 in
        --local) ;;
        --rename) rename=yes ;;
        --divert) divert=\$2; shift ;;
        --add|--remove) op=\$1; file=\$2; shift ;;
        --listpackage|--truename) op=\$1; file=\$2; shift ;;
        *) echo "fake dpkg-divert: unexpected \$1" >&2; exit 2 ;;
    esac
    shift
done
to=\$(sed -n "s|^\$file \\(.*\\)\$|\\1|p" "\$db")
case \$op in
    --listpackage) [ -n "\$to" ] && echo LOCAL; exit 0 ;;
    --truename) echo "\${to:-\$file}"; exit 0 ;;
    --add)
        [ -z "\$to" ] || { echo "already diverted" >&2; exit 1; }
        if [ \$rename = yes ] && [ -e "\$file" ]; then
            [ ! -e "\$divert" ] || { echo "rename over \$divert" >&2; exit 1; }
            mv "\$file" "\$divert" || exit 1
        fi
        echo "\$file \$divert" >> "\$db" ;;
    --remove)
        [ "\$to" = "\$divert" ] || { echo "no such diversion" >&2; exit 1; }
        if [ \$rename = yes ] && [ -e "\$divert" ]; then
            [ ! -e "\$file" ] || { echo "rename over \$file" >&2; exit 1; }
            mv "\$divert" "\$file" || exit 1
        fi
        grep -v "^\$file " "\$db" > "\$db.new"; mv "\$db.new" "\$db" ;;
    *) exit 2 ;;
esac
EOF
chmod +x "$tmp/bin/dpkg-query" "$tmp/bin/dpkg-divert"
PATH=$tmp/bin:$PATH
export PATH
unset DESTDIR

# a fake stock module: some text and binary bytes, not Tandem
make_stock() {
    { printf 'fake stock libvirt_driver_qemu.so %s\n' "$2"; seq 1 3000; \
      printf '\001\002\000\377'; } > "$1"
}

# --- 1. make install into a DESTDIR with a stock module ------------------
root=$tmp/root
dir=$root$driverdir
M=$dir/libvirt_driver_qemu.so
S=$M.stock
T=$M.tandem
mkdir -p "$dir"
make_stock "$tmp/stock-ref" one
cp "$tmp/stock-ref" "$M"

# the build directory's make, on its own (not part of make check's -j)
mk() {
    MAKEFLAGS='' MFLAGS='' make -s -C "$builddir" "$@"
}

run 0 "make install DESTDIR=TMP/root" mk install DESTDIR="$root"
check "Tandem is installed as libvirt_driver_qemu.so" cmp -s "$module" "$M"
check "the stock module is kept as .stock, byte-identical" cmp -s "$tmp/stock-ref" "$S"
check "no .la and no .tandem left in the driver directory" \
    test ! -e "$dir/libvirt_driver_qemu.la" -a ! -e "$T"
setup=$(find "$root" -name tandem-setup -type f | head -n 1)
check "tandem-setup is installed" test -n "$setup" -a -x "$setup"
[ -n "$setup" ] || setup=$builddir/tandem-setup
# a copy: make uninstall removes the installed one
cp "$setup" "$tmp/bin/tandem-setup"
setup=$tmp/bin/tandem-setup
check "its default driver directory is the configured one" \
    grep -q -x -F "DEFAULT_DRIVER_DIR=\"$driverdir\"" "$setup"

ts() {
    "$setup" --driver-dir "$dir" "$@"
}

run 0 "status after install" ts status
check "status names Tandem as the active driver" \
    grep -q '^active QEMU driver: Tandem [0-9.]* for libvirt ' "$tmp/out"
check "status shows the stock module kept aside" grep -q -F "$S" "$tmp/out"
run 0 "status --quiet" ts --quiet status
check "status --quiet prints 'tandem'" test "$(cat "$tmp/out")" = tandem

run 0 "disable" ts disable
check "disable restores the stock module byte-identical" cmp -s "$tmp/stock-ref" "$M"
check "disable keeps Tandem as .tandem" cmp -s "$module" "$T"
check "disable leaves no .stock" test ! -e "$S"
check "disable says to restart the daemon" grep -q -i restart "$tmp/out"
run 0 "status after disable" ts status
check "status names the stock driver as active" grep -q '^active QEMU driver: stock' "$tmp/out"
run 0 "disable again: nothing to do" ts disable
check "  and nothing changed" cmp -s "$tmp/stock-ref" "$M"

run 0 "enable" ts enable
check "enable makes Tandem active again" cmp -s "$module" "$M"
check "enable keeps the stock module aside byte-identical" cmp -s "$tmp/stock-ref" "$S"
check "enable leaves no .tandem" test ! -e "$T"
run 0 "enable again: nothing to do" ts --quiet enable
check "  quietly" test ! -s "$tmp/out"

# both look stock: the stock module was reinstalled while Tandem was active
run 0 "disable before the refusal case" ts -q disable
make_stock "$tmp/stock-ref2" two
cp "$tmp/stock-ref2" "$S"
( cd "$dir" && ls -l --time-style=+%s.%N && md5sum ./* ) > "$tmp/dir.before" 2>&1
run 1 "enable refuses when both modules are stock" ts enable
check "  with an explanation on stderr" grep -q 'both .* stock' "$tmp/err"
( cd "$dir" && ls -l --time-style=+%s.%N && md5sum ./* ) > "$tmp/dir.after" 2>&1
check "  and changes nothing" cmp -s "$tmp/dir.before" "$tmp/dir.after"
run 2 "make install refuses too (make exits 2)" mk install DESTDIR="$root"
( cd "$dir" && ls -l --time-style=+%s.%N && md5sum ./* ) > "$tmp/dir.after" 2>&1
check "  and changes nothing in the driver directory" cmp -s "$tmp/dir.before" "$tmp/dir.after"
rm -f "$S"

run 2 "usage: no command" ts
run 2 "usage: unknown command" ts frobnicate
run 2 "usage: unknown option" ts --bogus status
run 2 "usage: two commands" ts enable disable
run 2 "usage: --driver-dir without a directory" "$setup" status --driver-dir
run 1 "a driver directory that does not exist" "$setup" --driver-dir "$tmp/nowhere" status
run 0 "--help" ts --help
check "  prints the usage" grep -q '^Usage: tandem-setup' "$tmp/out"

# make install over a disabled Tandem: Tandem active again, one copy only
run 0 "make install over a disabled Tandem" mk install DESTDIR="$root"
check "  Tandem active, stock kept aside, old .tandem dropped" \
    expect "$module" "$M" "$tmp/stock-ref" "$S" none "$T"

run 0 "make uninstall DESTDIR=TMP/root" mk uninstall DESTDIR="$root"
check "uninstall restores the stock module byte-identical" cmp -s "$tmp/stock-ref" "$M"
check "uninstall removes Tandem (no .stock, no .tandem)" test ! -e "$S" -a ! -e "$T"
find "$root" -type f > "$tmp/left"
check "nothing else left under DESTDIR" test "$(cat "$tmp/left")" = "$M"

# uninstall while Tandem is disabled keeps the stock module
run 0 "make install again" mk install DESTDIR="$root"
run 0 "disable" ts -q disable
run 0 "make uninstall while disabled" mk uninstall DESTDIR="$root"
check "  the stock module stays, Tandem is gone" \
    expect "$tmp/stock-ref" "$M" none "$S" none "$T"
check "no diversion added or removed for the DESTDIR tree" \
    not_grep -e --add -e --remove "$tmp/divert.log"

# --- 2. a directory that (fake) dpkg says is packaged --------------------
dir=$tmp/sys
M=$dir/libvirt_driver_qemu.so
S=$M.stock
T=$M.tandem
cp "$tmp/stock-ref" "$M"
cp "$module" "$T"

run 0 "packaged: enable" ts enable
check "  dpkg-divert --local --rename --divert .stock --add" \
    grep -q -x -F "dpkg-divert --local --rename --divert $S --add $M" "$tmp/divert.log"
check "  Tandem active, stock module diverted byte-identical" \
    expect "$module" "$M" "$tmp/stock-ref" "$S" none "$T"
run 0 "packaged: status" ts status
check "  shows the local diversion" grep -q "local dpkg diversion" "$tmp/out"
check "  and the package" grep -q "belongs to Debian package libvirt-daemon-driver-qemu" "$tmp/out"
: > "$tmp/divert.log"
run 0 "packaged: disable" ts disable
check "  dpkg-divert --local --rename --divert .stock --remove" \
    grep -q -x -F "dpkg-divert --local --rename --divert $S --remove $M" "$tmp/divert.log"
check "  stock module back byte-identical, Tandem kept" \
    expect "$tmp/stock-ref" "$M" "$module" "$T" none "$S"
check "  the diversion is gone" test ! -s "$tmp/diversions"
: > "$tmp/divert.log"
run 0 "packaged, but DESTDIR set: install-pre" \
    env DESTDIR=/staging "$setup" --driver-dir "$dir" install-pre
check "  moves the stock module aside, drops the old Tandem" \
    expect "$tmp/stock-ref" "$S" none "$M" none "$T"
check "  without calling dpkg-divert" not_grep -e . "$tmp/divert.log"

# --- the machine ----------------------------------------------------------
snapshot_system "$tmp/system.after"
check "the machine's $real_dir and dpkg diversions are unchanged" \
    cmp -s "$tmp/system.before" "$tmp/system.after"

echo "1..$n"
[ "$failed" -eq 0 ]
