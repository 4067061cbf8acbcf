//! A release binary finds its handlers from where it is installed, not
//! from the build tree: `handlers/` beside it, or `lib/tcmu-wasm/handlers`
//! under its prefix.

use std::path::Path;
use std::process::Command;

fn install(bin_dir: &Path, handlers_dir: &Path) {
    std::fs::create_dir_all(bin_dir).unwrap();
    std::fs::create_dir_all(handlers_dir).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_tcmu-wasm"), bin_dir.join("tcmu-wasm")).unwrap();
    std::fs::copy(tcmu_wasm::handlers::built("file"), handlers_dir.join("file.wasm")).unwrap();
}

fn listed_handlers(bin_dir: &Path, cache: &Path) -> String {
    let out = Command::new(bin_dir.join("tcmu-wasm"))
        .args(["handlers", "--cache-dir"])
        .arg(cache)
        .env_remove("TCMU_WASM_HANDLER_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

// One test, not two: copying an executable while another thread forks can
// leave the copy's write descriptor open in a child, and exec then fails
// with ETXTBSY.
#[test]
fn handlers_are_found_beside_the_binary_and_under_its_prefix() {
    handlers_beside_the_binary_are_found();
    handlers_under_the_prefix_are_found();
}

fn handlers_beside_the_binary_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("opt");
    install(&bin, &bin.join("handlers"));
    let listing = listed_handlers(&bin, &dir.path().join("cache"));
    assert!(listing.lines().any(|l| l.starts_with("file ") && l.contains("disk")), "{listing}");
    assert!(listing.contains(&*bin.join("handlers/file.wasm").to_string_lossy()), "{listing}");
}

fn handlers_under_the_prefix_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr-local");
    install(&prefix.join("bin"), &prefix.join("lib/tcmu-wasm/handlers"));
    let listing = listed_handlers(&prefix.join("bin"), &dir.path().join("cache"));
    assert!(listing.contains(&*prefix.join("lib/tcmu-wasm/handlers/file.wasm").to_string_lossy()), "{listing}");
}
