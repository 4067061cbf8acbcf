#!/usr/bin/env bash
# Install tcmu-wasm: the binary, the built handlers, the systemd unit, the
# D-Bus policy, the tmpfiles entry, a default config, man pages and shell
# completions, in FHS places under PREFIX (and SYSCONFDIR).
#
#   scripts/install.sh [--prefix /usr] [--sysconfdir /etc] [--destdir DIR] [--no-build]
#
# --destdir stages everything under DIR (for a package) with the paths
# inside the files still pointing at PREFIX. An existing config is kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PREFIX=/usr SYSCONFDIR=/etc DESTDIR='' BUILD=1
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) PREFIX=$2; shift 2 ;;
        --sysconfdir) SYSCONFDIR=$2; shift 2 ;;
        --destdir) DESTDIR=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case $PREFIX in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac

if [ "$BUILD" = 1 ]; then
    cargo build --release -p tcmu-wasm
fi
BIN=target/release/tcmu-wasm
HANDLERS=target/release/handlers
[ -x "$BIN" ] || { echo "install.sh: no $BIN (build first)" >&2; exit 1; }
ls "$HANDLERS"/*.wasm >/dev/null 2>&1 || { echo "install.sh: no handlers in $HANDLERS" >&2; exit 1; }

root=$DESTDIR
bindir=$PREFIX/bin
libdir=$PREFIX/lib/tcmu-wasm/handlers
unitdir=$PREFIX/lib/systemd/system
tmpfilesdir=$PREFIX/lib/tmpfiles.d
dbusdir=$PREFIX/share/dbus-1/system.d
mandir=$PREFIX/share/man/man1
confdir=$SYSCONFDIR/tcmu-wasm

install -d "$root$bindir" "$root$libdir" "$root$unitdir" "$root$tmpfilesdir" "$root$dbusdir" "$root$mandir" \
    "$root$confdir" "$root$PREFIX/share/bash-completion/completions" "$root$PREFIX/share/zsh/vendor-completions" \
    "$root$PREFIX/share/fish/vendor_completions.d"
install -m 0755 "$BIN" "$root$bindir/tcmu-wasm"
# Only the installable handlers, not the test fixtures.
for h in "$HANDLERS"/*.wasm; do
    install -m 0644 "$h" "$root$libdir/"
done
sed -e "s|@BINDIR@|$bindir|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" packaging/systemd/tcmu-wasm.service.in \
    >"$root$unitdir/tcmu-wasm.service"
chmod 0644 "$root$unitdir/tcmu-wasm.service"
# The handler SDK and the contract beside it (the SDK's bindings read
# ../wit), for `tcmu-wasm new-handler` and crates built outside this tree.
sdkdir=$PREFIX/share/tcmu-wasm/sdk
rm -rf -- "$root$sdkdir"
install -d "$root$sdkdir/guest-sdk" "$root$sdkdir/wit"
cp -R guest-sdk/Cargo.toml guest-sdk/src guest-sdk/template "$root$sdkdir/guest-sdk/"
install -m 0644 wit/handler.wit "$root$sdkdir/wit/handler.wit"
chmod -R u=rwX,go=rX "$root$sdkdir"
install -m 0644 packaging/tmpfiles/tcmu-wasm.conf "$root$tmpfilesdir/tcmu-wasm.conf"
install -m 0644 packaging/dbus/org.kernel.TCMUService1.conf "$root$dbusdir/org.kernel.TCMUService1.conf"
if [ -e "$root$confdir/devices.toml" ]; then
    echo "install.sh: keeping the existing $confdir/devices.toml"
else
    install -m 0644 packaging/config/devices.toml "$root$confdir/devices.toml"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BIN" generate man "$tmp/man"
for page in "$tmp"/man/*.1; do
    gzip -9n -c "$page" >"$root$mandir/$(basename "$page").gz"
done
"$BIN" generate completions bash "$tmp" >/dev/null
"$BIN" generate completions zsh "$tmp" >/dev/null
"$BIN" generate completions fish "$tmp" >/dev/null
install -m 0644 "$tmp/tcmu-wasm.bash" "$root$PREFIX/share/bash-completion/completions/tcmu-wasm"
install -m 0644 "$tmp/_tcmu-wasm" "$root$PREFIX/share/zsh/vendor-completions/_tcmu-wasm"
install -m 0644 "$tmp/tcmu-wasm.fish" "$root$PREFIX/share/fish/vendor_completions.d/tcmu-wasm.fish"
echo "installed tcmu-wasm under ${DESTDIR:+$DESTDIR}$PREFIX (config $confdir/devices.toml)"
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemd-tmpfiles --create "$tmpfilesdir/tcmu-wasm.conf" || true
    systemctl daemon-reload || true
    echo "start it with: systemctl enable --now tcmu-wasm"
fi
