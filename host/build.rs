//! Builds the WebAssembly handlers in `handlers-wasm/` for `wasm32-wasip2`
//! so a plain `cargo build`/`cargo test` of a fresh clone has them, and
//! tells the binary where they are (`TCMU_WASM_BUILT_HANDLERS`).
//!
//! The inner cargo gets its own target directory: sharing the outer one
//! would wait forever on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Handler crates built into components: (package, component file stem).
const HANDLERS: &[(&str, &str)] =
    &[("tcmu-handler-file", "tcmu_handler_file"), ("tcmu-handler-hostile", "tcmu_handler_hostile")];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_owned();
    for dir in ["handlers-wasm", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=TCMU_WASM_SKIP_HANDLER_BUILD");

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_root = out_dir.ancestors().nth(4).unwrap().to_owned();
    let inner_target = target_root.join("wasm-handlers");
    let built = inner_target.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=TCMU_WASM_BUILT_HANDLERS={}", built.display());

    if std::env::var_os("TCMU_WASM_SKIP_HANDLER_BUILD").is_some() {
        return;
    }
    ensure_wasm_target();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&inner_target);
    for (package, _) in HANDLERS {
        cmd.args(["-p", package]);
    }
    // The outer build's settings are not the inner build's.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_")
            && key != "CARGO_HOME"
            && !key.starts_with("CARGO_NET")
            && !key.starts_with("CARGO_HTTP"))
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    // No DWARF in the components: it is most of their size, and compiling
    // it costs seconds under emulation. The name section stays, so traps
    // still name the guest function.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    let status = cmd.status().expect("running cargo for the wasm handlers");
    if !status.success() {
        panic!("building the wasm handlers failed ({status}); see the output above");
    }
    for (_, stem) in HANDLERS {
        let wasm = built.join(format!("{stem}.wasm"));
        assert!(wasm.exists(), "expected {}", wasm.display());
    }
}

/// `rust-toolchain.toml` lists the target, but rustup only installs listed
/// targets when it installs the toolchain itself; on a machine that already
/// had 1.95 the target may be missing.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().ok();
    let has_target = sysroot
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|root| has_wasm_std(&root));
    if !has_target {
        let status = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
        if !status.is_ok_and(|s| s.success()) {
            println!("cargo:warning=could not run `rustup target add wasm32-wasip2`; install the target by hand");
        }
    }
}

fn has_wasm_std(sysroot: &Path) -> bool {
    sysroot.join("lib/rustlib/wasm32-wasip2/lib").is_dir()
}
