//! `tcmu-wasm new-handler`: start a handler crate outside this repository
//! from the SDK's template (`guest-sdk/template/`).
//!
//! The new crate depends on the SDK by version and path: the SDK an
//! installation ships (`<prefix>/share/tcmu-wasm/sdk/guest-sdk`, beside its
//! `wit/`), or the build tree's `guest-sdk/` for a daemon run from
//! `target/`, or any SDK given with `--sdk`. It is its own workspace, so it
//! builds wherever it is put.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};

/// The template's files: (path in the new crate, text).
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../guest-sdk/template/Cargo.toml.in")),
    ("README.md", include_str!("../../guest-sdk/template/README.md")),
    (".gitignore", include_str!("../../guest-sdk/template/gitignore")),
    ("src/lib.rs", include_str!("../../guest-sdk/template/src/lib.rs")),
];

/// The SDK the template's Cargo.toml depends on, and which contract it builds for.
const SDK_VERSION: &str = tcmu_guest_sdk::SDK_VERSION;
const WIT_VERSION: &str = tcmu_guest_sdk::WIT_VERSION;
/// The SDK's minimum Rust, for the new crate's `rust-version`.
const RUST_VERSION: &str = env!("CARGO_PKG_RUST_VERSION");

/// Check a handler name: what the daemon will know it by (`handler =
/// "NAME"`, `wasm/NAME/...`), so the same rules as a handler lookup, kept
/// to lower case and `-` since it also names the crate.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ensure!(
        first_ok && rest_ok && name.len() <= 48 && !name.ends_with('-') && !name.contains("--"),
        "handler name {name:?} must start with a lower-case letter and hold only a-z, 0-9 and single '-' \
         (at most 48 characters)"
    );
    Ok(())
}

/// Where the SDK is: `explicit`, else `$TCMU_WASM_SDK`, else the installed
/// one beside this executable, else this build tree's. The directory must
/// hold the `tcmu-guest-sdk` crate with the contract beside it (`../wit`).
pub fn find_sdk(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let given = explicit.map(Path::to_owned).or_else(|| std::env::var_os("TCMU_WASM_SDK").map(PathBuf::from));
    if let Some(dir) = given {
        check_sdk(&dir)?;
        return absolute(&dir);
    }
    let mut candidates = Vec::new();
    if let Some(prefix) = std::env::current_exe().ok().and_then(|e| e.parent()?.parent().map(Path::to_owned)) {
        candidates.push(prefix.join("share/tcmu-wasm/sdk/guest-sdk"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk"));
    for dir in &candidates {
        if check_sdk(dir).is_ok() {
            return absolute(dir);
        }
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    bail!("no tcmu-guest-sdk found (tried {}); give one with --sdk DIR", tried.join(", "))
}

fn check_sdk(dir: &Path) -> anyhow::Result<()> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("{} is not an SDK", manifest.display()))?;
    ensure!(text.contains("name = \"tcmu-guest-sdk\""), "{} is not the tcmu-guest-sdk crate", manifest.display());
    let wit = dir.join("../wit/handler.wit");
    ensure!(wit.is_file(), "the SDK at {} has no contract beside it ({} is missing)", dir.display(), wit.display());
    Ok(())
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))
}

/// Write a new handler crate named after `name` into `dir` (created; it
/// must not exist or be empty), depending on the SDK at `sdk`. Returns the
/// files written.
pub fn create(dir: &Path, name: &str, sdk: &Path) -> anyhow::Result<Vec<PathBuf>> {
    validate_name(name)?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        ensure!(entries.next().is_none(), "{} exists and is not empty; nothing written", dir.display());
    }
    let sdk_path = sdk.to_str().with_context(|| format!("the SDK path {} is not UTF-8", sdk.display()))?;
    ensure!(!sdk_path.contains('"') && !sdk_path.contains('\\'), "the SDK path {sdk_path:?} cannot go into TOML");
    let crate_name = format!("tcmu-handler-{name}");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{stem}}", &crate_name.replace('-', "_"))
            .replace("{{sdk_path}}", sdk_path)
            .replace("{{sdk_version}}", SDK_VERSION)
            .replace("{{sdk_req}}", &sdk_requirement(SDK_VERSION))
            .replace("{{wit_version}}", WIT_VERSION)
            .replace("{{rust_version}}", RUST_VERSION)
    };
    let mut written = Vec::new();
    for (relative, text) in TEMPLATE {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, fill(text)).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The Cargo requirement a handler states for the SDK: compatible releases
/// of this one (`0.1` for 0.1.x: Cargo's rule for 0.x versions).
fn sdk_requirement(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_owned(),
        _ => version.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_a_lookup_and_a_crate_accept() {
        for good in ["ram", "my-disk", "vtl2"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "Ram", "2disk", "a_b", "a--b", "disk-", "../x", "a/b", &"x".repeat(49)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_requirement_is_the_compatible_range() {
        assert_eq!(sdk_requirement("0.1.0"), "0.1");
        assert_eq!(sdk_requirement("1.4.2"), "1");
    }

    #[test]
    fn no_placeholder_is_left_unfilled() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = find_sdk(None).unwrap();
        let files = create(&dir.path().join("ram"), "ram", &sdk).unwrap();
        assert_eq!(files.len(), TEMPLATE.len());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.contains("{{"), "{} keeps a placeholder", file.display());
        }
        let manifest = std::fs::read_to_string(dir.path().join("ram/Cargo.toml")).unwrap();
        let manifest: toml::Table = manifest.parse().unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("tcmu-handler-ram"));
        let sdk_dep = &manifest["dependencies"]["tcmu-guest-sdk"];
        assert_eq!(sdk_dep["path"].as_str(), sdk.to_str());
        assert_eq!(sdk_dep["version"].as_str(), Some("0.1"));
    }

    #[test]
    fn a_non_empty_directory_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine"), "keep").unwrap();
        let sdk = find_sdk(None).unwrap();
        let error = create(dir.path(), "ram", &sdk).unwrap_err().to_string();
        assert!(error.contains("not empty"), "{error}");
        assert_eq!(std::fs::read_to_string(dir.path().join("mine")).unwrap(), "keep");
        assert!(!dir.path().join("Cargo.toml").exists());
    }

    #[test]
    fn a_directory_without_the_sdk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(find_sdk(Some(dir.path())).is_err());
    }
}
