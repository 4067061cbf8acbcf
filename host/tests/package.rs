//! `scripts/package-deb.sh` builds a Debian package whose contents are
//! install.sh's layout under /usr and /etc, with the config as a conffile,
//! a stripped binary, and a daemon that runs from the extracted tree.
//! Needs dpkg-deb (Debian, Ubuntu); elsewhere it says so and passes.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_debian_package_holds_the_installed_layout_and_runs() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("no dpkg-deb here: the package is not built");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    let built = run(Command::new("bash")
        .arg(repo.join("scripts/package-deb.sh"))
        .args(["--no-build", "--out"])
        .arg(out.path()));
    let deb = Path::new(built.lines().last().unwrap().trim());
    assert!(deb.is_file() && deb.file_name().unwrap().to_string_lossy().starts_with("tcmu-wasm_"), "{built}");

    let info = run(Command::new("dpkg-deb").arg("--info").arg(deb));
    for field in ["Package: tcmu-wasm", "Architecture: ", "Recommends: dbus, targetcli-fb", "conffiles", "postinst"] {
        assert!(info.contains(field), "no {field:?} in:\n{info}");
    }
    let conffiles = run(Command::new("dpkg-deb").arg("--info").arg(deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/tcmu-wasm/devices.toml", "an upgrade must keep the operator's config");
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for path in [
        "./usr/bin/tcmu-wasm",
        "./usr/lib/tcmu-wasm/handlers/file.wasm",
        "./usr/lib/systemd/system/tcmu-wasm.service",
        "./usr/lib/tmpfiles.d/tcmu-wasm.conf",
        "./usr/share/dbus-1/system.d/org.kernel.TCMUService1.conf",
        "./usr/share/man/man1/tcmu-wasm-serve.1.gz",
        "./etc/tcmu-wasm/devices.toml",
    ] {
        assert!(contents.lines().any(|l| l.ends_with(path)), "{path} is not in the package");
    }
    assert!(!contents.contains("hostile.wasm"), "a test fixture is in the package");

    // Extracted, the packaged daemon finds its handlers and accepts its config.
    let root = out.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    let bin = root.join("usr/bin/tcmu-wasm");
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/tcmu-wasm.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/tcmu-wasm serve --config /etc/tcmu-wasm/devices.toml"), "{unit}");
    let listing = run(Command::new(&bin)
        .args(["handlers", "--cache-dir"])
        .arg(out.path().join("cache"))
        .env_remove("TCMU_WASM_HANDLER_PATH"));
    assert!(listing.lines().any(|l| l.starts_with("file ") && l.contains(&root.display().to_string())), "{listing}");
    let sections = run(Command::new("readelf").arg("-S").arg(&bin));
    assert!(!sections.contains(".debug_info"), "the packaged binary keeps its debug info");
}
