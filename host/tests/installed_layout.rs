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

// One test, not three: copying an executable while another thread forks can
// leave the copy's write descriptor open in a child, and exec then fails
// with ETXTBSY.
#[test]
fn installed_binaries_find_their_handlers_and_install_sh_lays_out_a_prefix() {
    handlers_beside_the_binary_are_found();
    handlers_under_the_prefix_are_found();
    install_sh_lays_out_a_working_prefix();
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

/// `scripts/install.sh --no-build` into `prefix` and `etc`; it must succeed.
fn run_install_sh(prefix: &Path, etc: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("bash")
        .arg(repo.join("scripts/install.sh"))
        .args(["--no-build", "--prefix"])
        .arg(prefix)
        .arg("--sysconfdir")
        .arg(etc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `scripts/install.sh` puts everything in its FHS place under a prefix;
/// the installed binary finds the installed handlers and accepts the
/// installed config; `systemd-analyze verify` passes on the unit (with the
/// installed man pages it names); the completions parse.
fn install_sh_lays_out_a_working_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    let etc = dir.path().join("etc");
    run_install_sh(&prefix, &etc);
    for file in [
        "bin/tcmu-wasm",
        "lib/tcmu-wasm/handlers/file.wasm",
        "lib/tcmu-wasm/handlers/optical.wasm",
        "lib/systemd/system/tcmu-wasm.service",
        "lib/tmpfiles.d/tcmu-wasm.conf",
        "share/dbus-1/system.d/org.kernel.TCMUService1.conf",
        "share/man/man1/tcmu-wasm.1.gz",
        "share/man/man1/tcmu-wasm-serve.1.gz",
        "share/bash-completion/completions/tcmu-wasm",
        "share/zsh/vendor-completions/_tcmu-wasm",
        "share/fish/vendor_completions.d/tcmu-wasm.fish",
        "share/tcmu-wasm/sdk/guest-sdk/Cargo.toml",
        "share/tcmu-wasm/sdk/guest-sdk/src/lib.rs",
        "share/tcmu-wasm/sdk/guest-sdk/template/src/lib.rs",
        "share/tcmu-wasm/sdk/wit/handler.wit",
    ] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
    assert!(!prefix.join("lib/tcmu-wasm/handlers/hostile.wasm").exists(), "a test fixture was installed");
    let unit = std::fs::read_to_string(prefix.join("lib/systemd/system/tcmu-wasm.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={}/bin/tcmu-wasm serve --config {}/tcmu-wasm/devices.toml",
            prefix.display(),
            etc.display()
        )),
        "{unit}"
    );

    let bin = prefix.join("bin");
    let listing = listed_handlers(&bin, &dir.path().join("cache"));
    assert!(
        listing.lines().any(|l| l.starts_with("optical ") && l.contains(&prefix.display().to_string())),
        "{listing}"
    );
    let config = etc.join("tcmu-wasm/devices.toml");
    let check = Command::new(bin.join("tcmu-wasm"))
        .args(["serve", "--check-config", "--config"])
        .arg(&config)
        .env_remove("TCMU_WASM_HANDLER_PATH")
        .output()
        .unwrap();
    assert!(check.status.success(), "the installed config: {}", String::from_utf8_lossy(&check.stderr));

    // `new-handler` from the installed binary depends on the installed SDK.
    let crate_dir = dir.path().join("my-disk");
    let created = Command::new(bin.join("tcmu-wasm"))
        .args(["new-handler", "my-disk", "--dir"])
        .arg(&crate_dir)
        .env_remove("TCMU_WASM_SDK")
        .output()
        .unwrap();
    assert!(created.status.success(), "new-handler: {}", String::from_utf8_lossy(&created.stderr));
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let sdk = prefix.join("share/tcmu-wasm/sdk/guest-sdk").canonicalize().unwrap();
    assert!(manifest.contains(&format!("path = \"{}\"", sdk.display())), "{manifest}");
    // The installed SDK stands alone (no workspace to inherit from): the
    // crate compiles for the component target against it.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/handler-template");
    let built = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(built.status.success(), "against the installed SDK: {}", String::from_utf8_lossy(&built.stderr));

    // Installing again keeps an edited config.
    std::fs::write(&config, "# mine\n").unwrap();
    run_install_sh(&prefix, &etc);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n", "a reinstall overwrote the config");

    let bash = Command::new("bash")
        .arg("-n")
        .arg(prefix.join("share/bash-completion/completions/tcmu-wasm"))
        .status()
        .unwrap();
    assert!(bash.success(), "the bash completion does not parse");
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(prefix.join("lib/systemd/system/tcmu-wasm.service"))
        .env("MANPATH", prefix.join("share/man"))
        .output()
    {
        Ok(v) => assert!(
            v.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        ),
        Err(e) => eprintln!("systemd-analyze not available ({e}); the unit was not verified"),
    }
}
