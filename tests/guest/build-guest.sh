#!/bin/bash
# build-guest.sh [CACHE_DIR]: build the small guests Tandem's end-to-end
# tests boot, from what Debian packages ship, and cache them outside the
# repository.
#
#   linux guest   kernel of linux-image-amd64 (downloaded with apt-get
#                 download and unpacked with dpkg -x, never installed on the
#                 host) + an initramfs (cpio newc, gzip) holding
#                 busybox-static, qemu-ga with the shared libraries it needs,
#                 the virtio/ACPI button modules and tests/guest/rootfs/.
#                 Boot it with: -kernel KERNEL -initrd INITRD
#                 -append "console=ttyS0" [tandem.dirty=MB]
#                 It prints "TANDEM-GUEST-READY ..." on ttyS0 once it is up.
#   dirty guest   tests/guest/dirty/: a 32-bit multiboot ELF for
#                 -kernel DIRTY that prints "TANDEM-DIRTY-READY ..." on the
#                 first serial port and then keeps writing all its RAM.
#
# The cache (CACHE_DIR, else $TANDEM_GUEST_CACHE, else
# /var/cache/tandem-guest) holds one directory per key; the key is made of
# the package versions used and a hash of the sources in tests/guest/, so a
# rebuild happens only when one of them changes.  Host libraries copied
# into the initramfs are recorded with their package versions and checked
# on every run; entries of other keys unused for a day are removed.  The
# whole run holds an flock on CACHE_DIR/.lock, so
# concurrent runs are safe; finished builds are moved into place with
# rename(2) and never modified afterwards.
#
# stdout carries only KEY=VALUE lines (KERNEL=, INITRD=, DIRTY=, KVER=);
# progress goes to stderr.  Exit status: 0 ok, 1 build failure, 77 a Debian
# package could not be obtained (apt unreachable: outside the project).
#
# Missing host tools (cpio, gzip, binutils, gcc) are installed with apt-get;
# busybox-static, qemu-guest-agent and linux-image-amd64 are only
# downloaded and unpacked into a temporary directory.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -euo pipefail
umask 022
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
CACHE=${1:-${TANDEM_GUEST_CACHE:-/var/cache/tandem-guest}}
LOCK_TIMEOUT=${TANDEM_GUEST_LOCK_TIMEOUT:-1200}

# Modules the initramfs carries (with their dependencies), in load order.
# Names as modprobe knows them; those built into the kernel are skipped.
GUEST_MODULES="virtio_pci virtio_console virtio_balloon virtio_net virtio_blk
virtio_rng button evdev i6300esb"

log() { echo "build-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }
unavailable() { log "unavailable: $*"; exit 77; }

# Install the Debian package $2 if command $1 is missing.
need_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "$2" >&2 ||
        unavailable "cannot install $2 with apt-get"
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 still missing"
}

# "Package Version Depends" of the candidate versions of the packages
# given, from the local apt lists (no network), one package a line.
pkg_candidates() {
    apt-cache show --no-all-versions "$@" 2>/dev/null |
        awk -F': ' '$1 == "Package" { p = $2; v = ""; d = "" }
                    $1 == "Version" { v = $2 }
                    $1 == "Depends" { d = $2 }
                    $0 == "" && p != "" { print p, v, d; p = "" }
                    END { if (p != "") print p, v, d }'
}

# apt-get download $@ into the current directory.  apt drops privileges to
# _apt for downloads, so let it write here.
pkg_download() {
    chown _apt: . 2>/dev/null || true
    apt-get download -q "$@" >&2 2>"$WORK/apt-download.log" || {
        cat "$WORK/apt-download.log" >&2
        unavailable "apt-get download $* failed"
    }
}

# sha256 of the files given (names relative to tests/guest/ and contents),
# first 16 hex digits: the same wherever the tree is checked out.
hash_files() {
    local f
    for f in "$@"; do
        printf '%s\n' "${f#"$HERE"/}"
        sha256sum <"$f"
    done | sha256sum | cut -c1-16
}

# "pkg=version" for the installed package owning each file given.
host_pkg_versions() {
    local f owner
    for f in "$@"; do
        owner=$(dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null ||
                dpkg -S "/usr$f" 2>/dev/null || true)
        owner=${owner%%:*}
        [ -n "$owner" ] || { echo "unowned:$f"; continue; }
        dpkg-query -W -f '${Package}=${Version}\n' "$owner" 2>/dev/null | head -n1
    done | sort -u
}

# Re-query the versions recorded in a libs.versions file; 0 if unchanged.
host_pkgs_unchanged() {
    local line pkg
    while read -r line; do
        pkg=${line%%=*}
        case $pkg in unowned:*) continue ;; esac
        [ "$(dpkg-query -W -f '${Package}=${Version}\n' "$pkg" 2>/dev/null | head -n1)" = "$line" ] ||
            return 1
    done <"$1"
    return 0
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w "$LOCK_TIMEOUT" 9 || die "timed out waiting for $CACHE/.lock"

# leftovers of a build that was killed (we hold the lock: none is running)
rm -rf "$CACHE"/.build.*
WORK=$(mktemp -d "$CACHE/.build.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

command -v apt-cache >/dev/null || unavailable "apt-cache missing (not a Debian host?)"

# ---------------------------------------------------------------- keys
# one apt-cache call: it costs ~0.6 s; linux-image-amd64 pins its kernel
# package with "Depends: linux-image-X (= VERSION)"
CANDIDATES=$(pkg_candidates linux-image-amd64 busybox-static qemu-guest-agent)
cand_field() { awk -v p="$1" -v f="$2" '$1 == p { print $f; exit }' <<<"$CANDIDATES"; }
BB_VER=$(cand_field busybox-static 2)
QGA_VER=$(cand_field qemu-guest-agent 2)
KDEP=$(awk '$1 == "linux-image-amd64" { $1 = $2 = ""; print; exit }' <<<"$CANDIDATES")
[ -n "$KDEP" ] && [ -n "$BB_VER" ] && [ -n "$QGA_VER" ] ||
    unavailable "apt knows no linux-image-amd64, busybox-static or qemu-guest-agent (apt-get update?)"
KPKG=$(tr ',|' '\n\n' <<<"$KDEP" | sed -n 's/^ *\(linux-image-[^ ]*\) (= \([^)]*\)).*/\1/p' | head -n1)
KPKG_VER=$(tr ',|' '\n\n' <<<"$KDEP" | sed -n 's/^ *\(linux-image-[^ ]*\) (= \([^)]*\)).*/\2/p' | head -n1)
if [ -z "$KPKG" ]; then
    # no exact pin: take the first linux-image-* dependency and ask for it
    KPKG=$(tr ',|' '\n\n' <<<"$KDEP" | sed 's/^ *//; s/ .*//' | grep '^linux-image-' | head -n1)
    [ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 to a kernel package"
    KPKG_VER=$(pkg_candidates "$KPKG" | awk '{ print $2; exit }')
fi
[ -n "$KPKG_VER" ] || unavailable "apt knows no $KPKG"
KVER=${KPKG#linux-image-}

mapfile -t LINUX_SRCS < <(find "$HERE/rootfs" -type f | sort)
LINUX_KEY="$KPKG=$KPKG_VER busybox-static=$BB_VER qemu-guest-agent=$QGA_VER"
LINUX_KEY+=" src=$(hash_files "$SELF" "${LINUX_SRCS[@]}")"
LINUX_DIR="$CACHE/linux-$(printf '%s' "$LINUX_KEY" | sha256sum | cut -c1-16)"

mapfile -t DIRTY_SRCS < <(find "$HERE/dirty" -type f | sort)

# ---------------------------------------------------------------- linux
build_linux() {
    local out="$WORK/linux" root="$WORK/root" x="$WORK/x" kmod
    local m f lib

    need_tool cpio cpio
    need_tool gzip gzip

    log "building linux guest: $LINUX_KEY"
    mkdir -p "$WORK/debs" "$out" "$root" "$x"
    (cd "$WORK/debs" && pkg_download "$KPKG=$KPKG_VER" "busybox-static=$BB_VER" \
        "qemu-guest-agent=$QGA_VER")

    for f in "$WORK"/debs/*.deb; do
        dpkg -x "$f" "$x"
    done
    [ -f "$x/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER in $KPKG"
    cp "$x/boot/vmlinuz-$KVER" "$out/vmlinuz"
    cp "$x/boot/config-$KVER" "$out/config"

    # rootfs skeleton and busybox with all its applets
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/log}
    mkdir -p "$root"/lib/modules "$root/lib64"
    chmod 1777 "$root/tmp"
    ln -s ../run "$root/var/run"
    install -m 0755 "$x/bin/busybox" "$root/bin/busybox"
    local bb="$x/bin/busybox"
    "$bb" --list-full | while read -r f; do
        [ "$f" = bin/busybox ] && continue
        mkdir -p "$root/$(dirname "$f")"
        ln -sf /bin/busybox "$root/$f"
    done
    if [ "$(id -u)" = 0 ]; then
        mknod -m 600 "$root/dev/console" c 5 1
    fi

    # kernel modules: closure of GUEST_MODULES over modules.dep
    kmod="$x/lib/modules/$KVER"
    "$bb" depmod -b "$x" "$KVER"
    mkdir -p "$root/lib/modules/$KVER"
    cp "$kmod/modules.builtin" "$kmod/modules.order" "$root/lib/modules/$KVER/"
    local want="" missing=""
    for m in $GUEST_MODULES; do
        f=$(awk -F: -v m="$m" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n);
                                  gsub(/-/, "_", n); if (n == m) { print; exit } }' \
            "$kmod/modules.dep")
        if [ -z "$f" ]; then
            if grep -Eq "/${m//_/[-_]}\.ko" "$kmod/modules.builtin"; then
                log "module $m is built in"
            else
                missing+=" $m"
            fi
            continue
        fi
        want+=" ${f%%:*} ${f#*:}"
    done
    [ -z "$missing" ] || log "warning: modules not in $KPKG:$missing"
    for f in $(printf '%s\n' $want | sort -u); do
        mkdir -p "$root/lib/modules/$KVER/$(dirname "$f")"
        cp "$kmod/$f" "$root/lib/modules/$KVER/$f"
    done
    "$bb" depmod -b "$root" "$KVER"
    printf '%s\n' $GUEST_MODULES >"$root/etc/tandem-modules"

    # qemu-ga and the shared libraries it needs, from the host
    install -m 0755 "$x/usr/sbin/qemu-ga" "$root/usr/sbin/qemu-ga"
    if ldd "$root/usr/sbin/qemu-ga" | grep -q 'not found'; then
        log "qemu-ga needs libraries the host lacks; installing its dependencies"
        # shellcheck disable=SC2046
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            $(apt-cache depends qemu-guest-agent | awk '$1 == "Depends:" && $2 !~ /^</ { print $2 }') >&2 ||
            unavailable "cannot install qemu-guest-agent's dependencies"
    fi
    local libs=()
    while read -r lib; do
        [ -n "$lib" ] || continue
        libs+=("$lib")
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done < <(ldd "$root/usr/sbin/qemu-ga" |
             awk '/not found/ { print "MISSING:" $1; next }
                  $2 == "=>" && $3 ~ /^\// { print $3; next }
                  $1 ~ /^\// { print $1 }' | tee "$WORK/ldd.out" | grep -v '^MISSING:' || true)
    ! grep -q '^MISSING:' "$WORK/ldd.out" || die "qemu-ga libraries missing: $(grep MISSING: "$WORK/ldd.out")"
    [ "${#libs[@]}" -gt 0 ] || die "ldd found no libraries for qemu-ga"
    host_pkg_versions "${libs[@]}" >"$out/libs.versions"
    # the loader also searches the plain dirs if the multiarch one is not compiled in
    printf '%s\n' /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu >"$root/etc/ld.so.conf"

    # our files last, so they win over busybox applet links
    cp -a "$HERE/rootfs/." "$root/"
    chmod 0755 "$root/init" "$root/sbin/shutdown" "$root/sbin/tandem-ga-loop" \
        "$root/etc/acpi/PWRF/00000080" "$root/etc/tandem/shutdown" \
        "$root/usr/share/udhcpc/default.script"

    (cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) |
        gzip -9 -n >"$out/initrd.img"

    {
        echo "key: $LINUX_KEY"
        echo "kver: $KVER"
        echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "modules:"
        (cd "$root/lib/modules/$KVER" && find . -name '*.ko' | sort | sed 's/^/  /')
        echo "libraries:"
        printf '  %s\n' "${libs[@]}"
    } >"$out/manifest.txt"
    echo "$KVER" >"$out/kver"

    rm -rf "$LINUX_DIR"
    mv "$out" "$LINUX_DIR"
    log "linux guest: $LINUX_DIR (initrd $(stat -c %s "$LINUX_DIR/initrd.img") bytes)"
}

# ---------------------------------------------------------------- dirty
build_dirty() {
    local out="$WORK/dirty"
    local cflags="-m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie
                  -fno-stack-protector -mgeneral-regs-only
                  -fno-asynchronous-unwind-tables -O2 -Wall -Wextra -Werror"

    log "building dirty guest: $DIRTY_KEY"
    mkdir -p "$out"
    # shellcheck disable=SC2086
    as --32 -o "$out/boot.o" "$HERE/dirty/boot.s"
    # shellcheck disable=SC2086
    gcc $cflags -c -o "$out/dirty.o" "$HERE/dirty/dirty.c"
    ld -m elf_i386 -static -nostdlib -z noexecstack -T "$HERE/dirty/dirty.ld" \
        -o "$out/dirty.elf" "$out/boot.o" "$out/dirty.o"
    rm -f "$out"/*.o
    echo "key: $DIRTY_KEY" >"$out/manifest.txt"

    rm -rf "$DIRTY_DIR"
    mv "$out" "$DIRTY_DIR"
    log "dirty guest: $DIRTY_DIR/dirty.elf"
}

if [ -f "$LINUX_DIR/initrd.img" ] && [ -f "$LINUX_DIR/vmlinuz" ] &&
   host_pkgs_unchanged "$LINUX_DIR/libs.versions"; then
    log "linux guest cached: $LINUX_DIR"
else
    build_linux
fi

need_tool as binutils
need_tool ld binutils
need_tool gcc gcc
DIRTY_KEY="src=$(hash_files "$SELF" "${DIRTY_SRCS[@]}")"
DIRTY_KEY+=" $(gcc -dumpfullversion) $(as --version | head -n1)"
DIRTY_DIR="$CACHE/dirty-$(printf '%s' "$DIRTY_KEY" | sha256sum | cut -c1-16)"
if [ -f "$DIRTY_DIR/dirty.elf" ]; then
    log "dirty guest cached: $DIRTY_DIR"
else
    build_dirty
fi

# Entries of other keys are dropped once unused for a day (a hit touches
# its directory), so a test still booting an old kernel keeps its files.
touch "$LINUX_DIR" "$DIRTY_DIR"
find "$CACHE" -mindepth 1 -maxdepth 1 -type d \( -name 'linux-*' -o -name 'dirty-*' \) \
    ! -path "$LINUX_DIR" ! -path "$DIRTY_DIR" -mmin +1440 -exec rm -rf {} + 2>/dev/null || true

echo "KERNEL=$LINUX_DIR/vmlinuz"
echo "INITRD=$LINUX_DIR/initrd.img"
echo "KVER=$(cat "$LINUX_DIR/kver")"
echo "DIRTY=$DIRTY_DIR/dirty.elf"
