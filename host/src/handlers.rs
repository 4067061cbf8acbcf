//! Finding handler components by name.
//!
//! `--handler file` looks for `file.wasm` or `tcmu_handler_file.wasm`, in
//! order, in: each directory of `$TCMU_WASM_HANDLER_PATH` (colon-separated),
//! `handlers/` next to the executable, `../lib/tcmu-wasm/handlers` from the
//! executable's directory (a `--prefix` install: `bin/` beside `lib/`), and
//! `/usr/lib/tcmu-wasm/handlers`. Anything with a `/` or ending in `.wasm`
//! is taken as a path.
//!
//! The build puts the handlers it compiles into `handlers/` next to the
//! binary it builds (`target/<profile>/handlers`), so the build tree has the
//! same layout as an installation and no build path is baked into the binary.

use std::path::{Path, PathBuf};

/// Where this build put the handlers it compiled (`target/<profile>/handlers`).
/// For tests: a binary finds its handlers through [`search_path`].
#[cfg(feature = "test-utils")]
pub const BUILT_HANDLERS: &str = env!("TCMU_WASM_BUILT_HANDLERS");

/// Where this build put its test-only components (the `hostile` fixture,
/// the second build `file-build-b`). Never on the search path.
#[cfg(feature = "test-utils")]
pub const BUILT_FIXTURES: &str = env!("TCMU_WASM_BUILT_FIXTURES");

/// A built test-only component by name (`hostile`, `file-build-b`).
#[cfg(feature = "test-utils")]
pub fn fixture(name: &str) -> PathBuf {
    Path::new(BUILT_FIXTURES).join(format!("{name}.wasm"))
}

/// A handler this build compiled, by name (`file`).
#[cfg(feature = "test-utils")]
pub fn built(name: &str) -> PathBuf {
    Path::new(BUILT_HANDLERS).join(format!("{name}.wasm"))
}

/// The directories searched for handlers by name, in order.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(var) = std::env::var_os("TCMU_WASM_HANDLER_PATH") {
        dirs.extend(std::env::split_paths(&var).filter(|d| !d.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_owned)) {
        dirs.push(exe_dir.join("handlers"));
        if let Some(prefix) = exe_dir.parent() {
            let lib = prefix.join("lib/tcmu-wasm/handlers");
            if !dirs.contains(&lib) {
                dirs.push(lib);
            }
        }
    }
    let system = PathBuf::from("/usr/lib/tcmu-wasm/handlers");
    if !dirs.contains(&system) {
        dirs.push(system);
    }
    dirs
}

/// Resolve a handler name or path to a `.wasm` file on the [`search_path`].
pub fn resolve(name_or_path: &str) -> anyhow::Result<PathBuf> {
    resolve_in(name_or_path, &search_path())
}

/// Resolve a handler name or path to a `.wasm` file in `dirs`.
pub fn resolve_in(name_or_path: &str, dirs: &[PathBuf]) -> anyhow::Result<PathBuf> {
    if name_or_path.contains('/') || name_or_path.ends_with(".wasm") {
        let path = PathBuf::from(name_or_path);
        anyhow::ensure!(path.is_file(), "handler file {} does not exist", path.display());
        return Ok(path);
    }
    anyhow::ensure!(
        !name_or_path.is_empty()
            && name_or_path.len() <= 64
            && name_or_path.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "handler name {name_or_path:?} must be 1-64 letters, digits, '-' or '_' (or give a path to a .wasm)"
    );
    let stems = [name_or_path.to_owned(), format!("tcmu_handler_{}", name_or_path.replace('-', "_"))];
    for dir in dirs {
        for stem in &stems {
            let candidate = dir.join(format!("{stem}.wasm"));
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    anyhow::bail!("no handler named {name_or_path:?}; searched {}", searched.join(", "))
}

/// Every `.wasm` file on the search path, in search order (a name found in
/// an earlier directory shadows the same name later).
pub fn available() -> Vec<PathBuf> {
    available_in(&search_path())
}

/// Every `.wasm` file in `dirs`, in order.
pub fn available_in(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        paths.sort();
        found.extend(paths);
    }
    found
}

/// The default directory for compiled-code caching:
/// `$TCMU_WASM_CACHE_DIR`, else `$XDG_CACHE_HOME/tcmu-wasm`, else
/// `~/.cache/tcmu-wasm`, else `/var/cache/tcmu-wasm`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TCMU_WASM_CACHE_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("tcmu-wasm");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/tcmu-wasm");
    }
    PathBuf::from("/var/cache/tcmu-wasm")
}
