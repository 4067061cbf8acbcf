//! Builds the WebAssembly handlers in `handlers-wasm/` for `wasm32-wasip2`
//! so a plain `cargo build`/`cargo test` of a fresh clone has them.
//!
//! Every crate under `handlers-wasm/` is built. Its
//! `[package.metadata.tcmu-wasm] role` says where the component goes:
//! - `"handler"` (the default): `<target>/<profile>/handlers/<name>.wasm`,
//!   next to the binary — the same layout an installed daemon finds
//!   (`handlers/` beside the executable), so a release binary copied with its
//!   `handlers/` directory works without the build tree;
//! - `"fixture"` (test-only components such as `hostile`):
//!   `<target>/wasm-handlers/fixtures/<name>.wasm`, never installed.
//!
//! `variants = ["feature", ...]` builds the crate again once per feature into
//! `fixtures/<name>-<feature>.wasm` — a second build of the same handler,
//! which the hot-reload tests and benchmark swap in and out.
//!
//! The inner cargo gets its own target directory: sharing the outer one
//! would wait forever on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

struct HandlerCrate {
    package: String,
    /// File stem cargo gives the component (`tcmu_handler_file`).
    stem: String,
    /// Installed name (`file`).
    name: String,
    fixture: bool,
    variants: Vec<String>,
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_owned();
    for dir in ["handlers-wasm", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=TCMU_WASM_SKIP_HANDLER_BUILD");

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let profile_dir = out_dir.ancestors().nth(3).unwrap().to_owned();
    let target_root = out_dir.ancestors().nth(4).unwrap().to_owned();
    let inner_target = target_root.join("wasm-handlers");
    let built = inner_target.join("wasm32-wasip2").join("release");
    let handlers_dir = profile_dir.join("handlers");
    let fixtures_dir = inner_target.join("fixtures");
    println!("cargo:rustc-env=TCMU_WASM_BUILT_HANDLERS={}", handlers_dir.display());
    println!("cargo:rustc-env=TCMU_WASM_BUILT_FIXTURES={}", fixtures_dir.display());

    if std::env::var_os("TCMU_WASM_SKIP_HANDLER_BUILD").is_some() {
        return;
    }
    ensure_wasm_target();
    let crates = discover(&workspace.join("handlers-wasm"));
    assert!(!crates.is_empty(), "no handler crates under handlers-wasm/");

    let packages: Vec<&str> = crates.iter().map(|c| c.package.as_str()).collect();
    inner_cargo(&workspace, &inner_target, &packages, None);
    std::fs::create_dir_all(&handlers_dir).expect("creating the handlers directory");
    std::fs::create_dir_all(&fixtures_dir).expect("creating the fixtures directory");
    for c in &crates {
        let dest = if c.fixture { &fixtures_dir } else { &handlers_dir };
        copy(&built.join(format!("{}.wasm", c.stem)), &dest.join(format!("{}.wasm", c.name)));
    }
    // Variants last: each rebuilds its crate with one feature on, over the
    // same output file, which the next plain build overwrites again.
    for c in &crates {
        for feature in &c.variants {
            inner_cargo(&workspace, &inner_target, &[&c.package], Some(feature));
            copy(&built.join(format!("{}.wasm", c.stem)), &fixtures_dir.join(format!("{}-{feature}.wasm", c.name)));
        }
    }
}

fn copy(from: &Path, to: &Path) {
    assert!(from.exists(), "expected {}", from.display());
    // Write-then-rename: a test reading the old component never sees half a file.
    let tmp = to.with_extension("wasm.tmp");
    std::fs::copy(from, &tmp).unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), tmp.display()));
    std::fs::rename(&tmp, to).unwrap_or_else(|e| panic!("renaming {}: {e}", tmp.display()));
}

/// The crates under `handlers-wasm/`, with their role from the manifest.
fn discover(dir: &Path) -> Vec<HandlerCrate> {
    let mut crates = Vec::new();
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("reading handlers-wasm/").filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let manifest = path.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let package = doc.get("package").and_then(|p| p.as_table()).expect("[package]");
        let name = package.get("name").and_then(|n| n.as_str()).expect("package.name").to_owned();
        let meta = package.get("metadata").and_then(|m| m.get("tcmu-wasm")).and_then(|m| m.as_table());
        let role = meta.and_then(|m| m.get("role")).and_then(|r| r.as_str()).unwrap_or("handler");
        assert!(
            matches!(role, "handler" | "fixture"),
            "{}: role must be \"handler\" or \"fixture\"",
            manifest.display()
        );
        let variants = meta
            .and_then(|m| m.get("variants"))
            .and_then(|v| v.as_array())
            .map(|v| v.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let short = name.strip_prefix("tcmu-handler-").unwrap_or(&name).to_owned();
        crates.push(HandlerCrate {
            stem: name.replace('-', "_"),
            package: name,
            name: short,
            fixture: role == "fixture",
            variants,
        });
    }
    crates
}

fn inner_cargo(workspace: &Path, target_dir: &Path, packages: &[&str], feature: Option<&str>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    if let Some(feature) = feature {
        cmd.args(["--features", &format!("{}/{feature}", packages[0])]);
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
            || key == "CLIPPY_ARGS"
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
