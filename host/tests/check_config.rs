//! `serve --check-config` opens every device's handler with its config on
//! its backing, read-only, without the kernel: a config the handler refuses
//! fails here, not at `enable`, and nothing is created or written.

use std::process::Command;

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("devices.toml");
    std::fs::write(&path, config.replace("@DIR@", dir.path().to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
        .args(["serve", "--check-config", "--config"])
        .arg(&path)
        .env("TCMU_WASM_HANDLER_PATH", tcmu_wasm::handlers::BUILT_HANDLERS)
        .env("TCMU_WASM_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let created =
        std::fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".img"));
    assert!(!created, "--check-config created a backing file:\n{text}");
    (out.status.success(), text)
}

const DISK: &str = r#"
[[device]]
name = "disk0"
handler = "file"
size = "4M"
backing = "@DIR@/disk0.img"
export = "loopback"
"#;

#[test]
fn a_valid_config_opens() {
    let (ok, text) = check(DISK);
    assert!(
        ok && text.contains("disk0: handler file (disk), 4194304 bytes") && text.contains("configuration OK"),
        "{text}"
    );
}

#[test]
fn a_handler_config_the_handler_refuses_fails() {
    let (ok, text) = check(&DISK.replace("size =", "config = \"block_size=513\"\nsize ="));
    assert!(!ok && text.contains("block_size") && text.contains("disk0"), "{text}");
}

#[test]
fn two_devices_on_one_backing_fail_unless_both_allow_it() {
    let two = format!("{DISK}{}", DISK.replace("name = \"disk0\"", "name = \"disk1\""));
    let (ok, text) = check(&two);
    assert!(!ok && text.contains("use the same backing"), "{text}");
    let shared = two.replace("export = \"loopback\"", "export = \"loopback\"\nshared_backing = true");
    let (ok, text) = check(&shared);
    assert!(ok, "{text}");
}

#[test]
fn an_unknown_handler_fails() {
    let (ok, text) = check(&DISK.replace("handler = \"file\"", "handler = \"nosuch\""));
    assert!(!ok && text.contains("no handler named \"nosuch\""), "{text}");
}
