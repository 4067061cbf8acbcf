//! Finding handler components by name.
//!
//! `--handler file` looks for `file.wasm` or `tcmu_handler_file.wasm`, in
//! order, in: each directory of `$TCMU_WASM_HANDLER_PATH` (colon-separated),
//! `handlers/` next to the executable, `/usr/lib/tcmu-wasm/handlers`, and
//! the directory this binary's build produced them in. Anything with a `/`
//! or ending in `.wasm` is taken as a path.

use std::path::{Path, PathBuf};

/// Where the build script put the handlers it compiled.
pub const BUILT_HANDLERS: &str = env!("TCMU_WASM_BUILT_HANDLERS");

/// The directories searched for handlers by name, in order.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(var) = std::env::var_os("TCMU_WASM_HANDLER_PATH") {
        dirs.extend(std::env::split_paths(&var));
    }
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_owned)) {
        dirs.push(exe_dir.join("handlers"));
    }
    dirs.push(PathBuf::from("/usr/lib/tcmu-wasm/handlers"));
    dirs.push(PathBuf::from(BUILT_HANDLERS));
    dirs
}

/// Resolve a handler name or path to a `.wasm` file.
pub fn resolve(name_or_path: &str) -> anyhow::Result<PathBuf> {
    if name_or_path.contains('/') || name_or_path.ends_with(".wasm") {
        let path = PathBuf::from(name_or_path);
        anyhow::ensure!(path.is_file(), "handler file {} does not exist", path.display());
        return Ok(path);
    }
    anyhow::ensure!(
        !name_or_path.is_empty() && name_or_path.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "handler name {name_or_path:?} must be letters, digits, '-' or '_' (or give a path to a .wasm)"
    );
    let stems = [name_or_path.to_owned(), format!("tcmu_handler_{}", name_or_path.replace('-', "_"))];
    let dirs = search_path();
    for dir in &dirs {
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
