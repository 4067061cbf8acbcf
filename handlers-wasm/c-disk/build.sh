#!/usr/bin/env bash
# Build the c-disk handler: C sources -> WebAssembly component.
#
#   handlers-wasm/c-disk/build.sh [--out FILE]    (default target/c-disk/c-disk.wasm)
#
# Tools, all from public package registries:
#   - Debian bookworm: clang-16, lld-16 (wasm-ld), wasi-libc (the wasm32-wasi
#     sysroot) and libclang-rt-16-dev-wasm32 (compiler builtins); installed
#     here with apt-get when missing and running as root;
#   - crates.io: wit-bindgen's C generator (wit-bindgen-c 0.61.1, the SDK's
#     wit-bindgen release), built into target/release/tcmu-c-bindgen by the
#     workspace build, or wit-bindgen-cli given as $WIT_BINDGEN;
#   - rustup: wasm-component-ld, which ships with the repository's pinned
#     toolchain (rust-toolchain.toml); it runs wasm-ld and wraps the core
#     module into a component from the type information wit-bindgen embeds.
#
# The generated bindings and objects go to target/c-disk/ and are never
# committed. Progress goes to stderr; stdout gets the component's path.
set -euo pipefail

APT_PACKAGES=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="$repo/target/c-disk"
out="$build/c-disk.wasm"

usage() {
    sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
    --out)
        [ $# -ge 2 ] || { echo "build.sh: --out needs a file name" >&2; exit 2; }
        out="$2"
        shift 2
        ;;
    --out=*)
        out="${1#--out=}"
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "build.sh: unknown argument $1" >&2
        usage >&2
        exit 2
        ;;
    esac
done
# --out is relative to where the script was started; make it absolute.
case "$out" in
/*) ;;
*) out="$PWD/$out" ;;
esac

# --- apt packages -----------------------------------------------------------
missing=()
for package in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "build.sh: installing ${missing[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "build.sh: missing packages: ${missing[*]} (apt-get install them, or run as root)" >&2
        exit 1
    fi
fi
cc="${CC:-clang-16}"
wasm_ld="$(command -v wasm-ld-16)" || { echo "build.sh: wasm-ld-16 not found (package lld-16)" >&2; exit 1; }

# --- wit-bindgen's C generator ----------------------------------------------
# $WIT_BINDGEN: a wit-bindgen-cli binary (`cargo install wit-bindgen-cli`,
# what a handler author outside this repository uses). Otherwise the same
# generator as a library (bindgen/, a workspace member): the workspace build
# has it already, and installing the CLI costs minutes of compiling.
if [ -n "${WIT_BINDGEN:-}" ]; then
    generate() { "$WIT_BINDGEN" c "$1" --world "$2" --out-dir "$3" >/dev/null; }
else
    bindgen="$repo/target/release/tcmu-c-bindgen"
    if [ ! -x "$bindgen" ]; then
        echo "build.sh: building the C binding generator (cargo build --release -p tcmu-c-bindgen)" >&2
        (cd "$repo" && cargo build --quiet --release -p tcmu-c-bindgen)
    fi
    generate() { "$bindgen" "$1" "$2" "$3"; }
fi

# --- wasm-component-ld, from the pinned Rust toolchain ---------------------
sysroot="$(cd "$repo" && rustc --print sysroot)"
host="$(cd "$repo" && rustc -vV | sed -n 's/^host: //p')"
component_ld="$sysroot/lib/rustlib/$host/bin/wasm-component-ld"
if [ ! -x "$component_ld" ]; then
    echo "build.sh: $component_ld not found (it ships with rustup toolchains since Rust 1.82)" >&2
    exit 1
fi

# --- bindings ---------------------------------------------------------------
gen="$build/gen"
obj="$build/obj"
rm -rf "$gen" "$obj"
mkdir -p "$gen" "$obj" "$(dirname "$out")"
# device_handler.h/.c (types, import wrappers, export glue, cabi_realloc) and
# device_handler_component_type.o (the world's type, for wasm-component-ld).
generate "$repo/wit" device-handler "$gen"

# --- compile ----------------------------------------------------------------
cflags=(--target=wasm32-wasi -std=c11 -O2 -Wall -Wextra -Werror)
for source in "$here"/src/*.c; do
    "$cc" "${cflags[@]}" -Wpedantic -Wconversion -Wshadow -Wmissing-prototypes -Wstrict-prototypes -I"$gen" -c "$source" -o "$obj/$(basename "${source%.c}").o"
done
# The generated code casts compound literals to their own type, which
# -Wpedantic flags; everything else holds for it too.
"$cc" "${cflags[@]}" -c "$gen/device_handler.c" -o "$obj/device_handler.o"

# --- link -------------------------------------------------------------------
# A reactor (no main; _initialize runs the constructors, and the component
# calls it at instantiation). clang passes wasi-libc and the builtins to the
# linker; wasm-component-ld runs wasm-ld and turns the module into a
# component. --wasi-adapter=none: the module imports no WASI at all (see
# src/text.h), and the link fails should something bring WASI in.
"$cc" --target=wasm32-wasi -mexec-model=reactor -fuse-ld="$component_ld" \
    -Wl,--wasm-ld-path="$wasm_ld" -Wl,--wasi-adapter=none -Wl,--strip-debug \
    "$obj"/*.o "$gen/device_handler_component_type.o" -o "$out"

echo "$out"
