//! `tcmu-wasm new-handler` makes a crate that builds outside this
//! repository against the SDK, passes its own tests, is clean under
//! rustfmt and clippy, and passes `tcmu-wasm check` as a disk, writable and
//! read-only: what a handler author does first, done the way they do it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Cargo for the generated crate: the toolchain running this test, a target
/// directory kept in this build tree (so a rerun is warm), and none of the
/// outer build's settings.
fn cargo(crate_dir: &Path) -> Command {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/handler-template");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(crate_dir).env("CARGO_TARGET_DIR", target).env_remove("RUSTFLAGS");
    cmd
}

#[test]
fn a_new_handler_builds_outside_the_tree_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap();
    assert!(!dir.path().starts_with(&repo), "the crate must live outside the repository");
    let crate_dir = dir.path().join("scratch-disk");
    let bin = env!("CARGO_BIN_EXE_tcmu-wasm");

    run(
        "new-handler",
        Command::new(bin).args(["new-handler", "scratch-disk", "--dir"]).arg(&crate_dir).env_remove("TCMU_WASM_SDK"),
    );
    // A second time into the same directory writes nothing.
    let again = Command::new(bin).args(["new-handler", "scratch-disk", "--dir"]).arg(&crate_dir).output().unwrap();
    assert!(!again.status.success(), "new-handler overwrote a crate");

    run("cargo fmt --check", cargo(&crate_dir).args(["fmt", "--check"]));
    run("cargo test", cargo(&crate_dir).args(["test", "--quiet"]));
    run("cargo clippy", cargo(&crate_dir).args(["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"]));
    run("cargo build", cargo(&crate_dir).args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"]));

    let component: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/handler-template/wasm32-wasip2/release/tcmu_handler_scratch_disk.wasm");
    assert!(component.is_file(), "no component at {}", component.display());
    for config in ["", "ro"] {
        let out = run(
            &format!("check --config {config:?}"),
            Command::new(bin).args(["check", "--config", config, "--handler"]).arg(&component),
        );
        let report = String::from_utf8_lossy(&out.stdout);
        let summary = report.lines().last().unwrap_or_default();
        assert!(summary.contains(" 0 failed"), "config {config:?}: {summary}\n{report}");
        assert!(report.contains("PASS  read10."), "config {config:?}: the disk suite did not run:\n{report}");
    }
    let listing =
        run("handlers", Command::new(bin).arg("handlers").env("TCMU_WASM_HANDLER_PATH", component.parent().unwrap()));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l.starts_with("scratch-disk ") && l.contains("disk")), "{listing}");
    assert!(
        listing.lines().any(|l| l.trim_start().starts_with("ro: refuse writes")),
        "the template's config key: {listing}"
    );
}
