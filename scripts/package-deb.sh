#!/usr/bin/env bash
# Build a Debian package of tcmu-wasm from scripts/install.sh's staged
# layout (/usr, /etc), with the config as a conffile and maintainer scripts
# that create the tmpfiles directories and reload systemd.
#
#   scripts/package-deb.sh [--out DIR] [--no-build]     -> DIR/tcmu-wasm_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/debian BUILD=--build
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=--no-build; shift ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "package-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v dpkg-deb >/dev/null || { echo "package-deb.sh: needs dpkg-deb (Debian's dpkg)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ "$BUILD" = --build ]; then
    scripts/install.sh --prefix /usr --sysconfdir /etc --destdir "$stage"
else
    scripts/install.sh --no-build --prefix /usr --sysconfdir /etc --destdir "$stage"
fi

# The release profile keeps debug info for profiling; a package does not.
if command -v strip >/dev/null; then
    strip --strip-debug "$stage/usr/bin/tcmu-wasm"
fi
mkdir -p "$stage/DEBIAN" "$OUT"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: tcmu-wasm
Version: $version
Architecture: $arch
Maintainer: tcmu-wasm developers <tcmu-wasm@localhost>
Installed-Size: $size
Depends: libc6, kmod
Recommends: dbus, targetcli-fb
Section: admin
Priority: optional
Description: TCMU daemon with sandboxed WebAssembly device handlers
 Serves LIO user backstores (target_core_user): disks, tape drives and
 changers, optical drives, each handler an isolated WebAssembly component.
 Provides org.kernel.TCMUService1 so targetcli can create user:wasm devices.
CONTROL
echo /etc/tcmu-wasm/devices.toml >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/tcmu-wasm.conf >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
POSTINST
cat >"$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
deb=$OUT/tcmu-wasm_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
