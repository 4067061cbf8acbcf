//! Loading handler code: compile a component once, keep its compiled form
//! on disk keyed by the SHA-256 of the `.wasm` (plus the engine's
//! compatibility hash), and pre-link it so instantiating a device — or
//! rebuilding one after a trap — costs tens of microseconds.
//!
//! Loading is also where a component is checked before any device sees it:
//! it must export the `tcmu:handler/device` interface of this contract
//! version, and `describe` must answer within its budget with a usable name.
//! Imports the sandbox does not provide (filesystem, sockets, ...) are linked
//! to functions that fault the calling command.

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre};

use super::bindings::{self, config_help, device, library_events, removable, removal, short_command, state};
use super::guest_text::{MAX_GUEST_TEXT, sanitize};
use super::host::DeviceState;
use super::instance::Instance;
use super::{DESCRIBE_BUDGET, Limits, Runtime, wt};
use crate::metrics::DeviceMetrics;
use tcmu_guest_sdk::{ConfigKey, DeviceType, HandlerInfo};

/// Largest component file accepted.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;
/// Config keys kept from a handler's `config-help` (the rest are dropped).
pub const MAX_CONFIG_KEYS: usize = 64;
/// Characters kept of each config key's texts.
const MAX_CONFIG_KEY_TEXT: usize = 200;

/// Where a component's exports are, found once at load.
pub(super) struct ExportIndices {
    pub device: device::GuestIndices,
    pub state: Option<state::GuestIndices>,
    pub removable: Option<removable::GuestIndices>,
    pub removal: Option<removal::GuestIndices>,
    pub library_events: Option<library_events::GuestIndices>,
    pub config_help: Option<config_help::GuestIndices>,
    pub short_command: Option<short_command::GuestIndices>,
}

/// A compiled, pre-linked handler component.
pub struct HandlerCode {
    pub(super) runtime: Arc<Runtime>,
    pub(super) pre: InstancePre<DeviceState>,
    pub(super) exports: ExportIndices,
    path: PathBuf,
    digest: String,
    info: HandlerInfo,
    config_keys: Vec<ConfigKey>,
}

impl std::fmt::Debug for HandlerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerCode").field("path", &self.path).field("digest", &self.digest).finish()
    }
}

impl HandlerCode {
    /// Load the component at `path`.
    pub fn load(runtime: &Arc<Runtime>, path: &Path) -> anyhow::Result<Arc<Self>> {
        Self::load_reusing(runtime, path, |_| None)
    }

    /// Load the component at `path`, unless `loaded(digest)` already has
    /// code with its digest: then that is returned, and nothing is compiled,
    /// linked or described again.
    pub fn load_reusing(
        runtime: &Arc<Runtime>,
        path: &Path,
        loaded: impl FnOnce(&str) -> Option<Arc<Self>>,
    ) -> anyhow::Result<Arc<Self>> {
        let bytes = read_bounded(path).with_context(|| format!("reading handler {}", path.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if let Some(code) = loaded(&digest) {
            return Ok(code);
        }
        let component = Self::compile_cached(runtime, &bytes, &digest)
            .with_context(|| format!("compiling handler {}", path.display()))?;
        let mut linker = runtime.linker.clone();
        // Imports we do not provide fault when called, not when loading: Rust's
        // std pulls in interfaces (filesystem, sockets) a handler never calls.
        super::wasi::stub_unknown_imports(&mut linker, &component, runtime.engine()).map_err(wt)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(wt)
            .with_context(|| format!("handler {} imports something the host cannot link", path.display()))?;
        let device_exports = device::GuestIndices::new(&pre).map_err(wt).with_context(|| {
            format!(
                "handler {} does not export tcmu:handler/device@{} (built for another contract version?)",
                path.display(),
                super::WIT_VERSION
            )
        })?;
        let exports = ExportIndices {
            device: device_exports,
            state: state::GuestIndices::new(&pre).ok(),
            removable: removable::GuestIndices::new(&pre).ok(),
            removal: removal::GuestIndices::new(&pre).ok(),
            library_events: library_events::GuestIndices::new(&pre).ok(),
            config_help: config_help::GuestIndices::new(&pre).ok(),
            short_command: short_command::GuestIndices::new(&pre).ok(),
        };
        let mut code = Self {
            runtime: runtime.clone(),
            pre,
            exports,
            path: path.to_owned(),
            digest,
            info: HandlerInfo::new("?", DeviceType::Other, ""),
            config_keys: Vec::new(),
        };
        (code.info, code.config_keys) =
            code.describe().with_context(|| format!("describing handler {}", path.display()))?;
        tracing::info!(
            handler = %code.info.name, kind = ?code.info.device_type, digest = &code.digest[..12],
            stateful = code.exports.state.is_some(),
            removable_media = code.exports.removable.is_some(), changer = code.exports.library_events.is_some(), "handler loaded"
        );
        Ok(Arc::new(code))
    }

    fn compile_cached(runtime: &Runtime, bytes: &[u8], digest: &str) -> anyhow::Result<Component> {
        let engine = runtime.engine();
        let Some(dir) = &runtime.cache_dir else {
            return Component::new(engine, bytes).map_err(wt);
        };
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let cached = dir.join(format!("{digest}-{:016x}.cwasm", h.finish()));
        if cached.exists() {
            // SAFETY: the file is one we serialized into our own cache dir
            // for this engine configuration; wasmtime still validates its
            // header and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(path = %cached.display(), error = %e, "ignoring unusable cached code"),
            }
        }
        let component = Component::new(engine, bytes).map_err(wt)?;
        match component.serialize() {
            Ok(blob) => {
                // Write-then-rename so a concurrent reader never sees half a
                // file; a name per writer, since devices load in parallel.
                static WRITERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tmp = cached.with_extension(format!("tmp{}-{n}", std::process::id()));
                if let Err(e) = std::fs::write(&tmp, blob).and_then(|_| std::fs::rename(&tmp, &cached)) {
                    tracing::warn!(path = %cached.display(), error = %e, "could not cache compiled handler");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize compiled handler"),
        }
        Ok(component)
    }

    /// Call `describe`, and `config-keys` where exported, in a scratch
    /// instance, within [`DESCRIBE_BUDGET`] each.
    fn describe(&self) -> anyhow::Result<(HandlerInfo, Vec<ConfigKey>)> {
        let limits = Limits::default();
        let metrics = Arc::new(DeviceMetrics::default());
        let data = DeviceState::new("describe".into(), None, limits.memory_bytes, metrics, Default::default());
        let mut instance = Instance::new(self, data, DESCRIBE_BUDGET, limits.slice)
            .map_err(|f| anyhow::anyhow!("instantiating: {f}"))?;
        let info = instance
            .call(DESCRIBE_BUDGET, limits.slice, |store, x| x.device.call_describe(store))
            .map_err(|f| anyhow::anyhow!("handler faulted in describe: {f}"))?;
        let name_ok = !info.name.is_empty()
            && info.name.len() <= 64
            && info.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        anyhow::ensure!(
            name_ok,
            "the handler calls itself {:?}: a name must be 1-64 letters, digits, '-', '_' or '.'",
            sanitize(&info.name, 80)
        );
        let device_type = match info.device_type {
            bindings::types::DeviceType::Disk => DeviceType::Disk,
            bindings::types::DeviceType::Tape => DeviceType::Tape,
            bindings::types::DeviceType::Changer => DeviceType::Changer,
            bindings::types::DeviceType::Optical => DeviceType::Optical,
            bindings::types::DeviceType::Other => DeviceType::Other,
        };
        let description = sanitize(&info.description, MAX_GUEST_TEXT).into_owned();
        // Without the (0.2.3, optional) export: no keys.
        let keys = instance
            .call(DESCRIBE_BUDGET, limits.slice, |store, x| {
                x.config_help.as_ref().map(|help| help.call_config_keys(store)).transpose()
            })
            .map_err(|f| anyhow::anyhow!("handler faulted in config-keys: {f}"))?
            .unwrap_or_default();
        // Operators read these: bounded, escaped, and only as many as fit a help text.
        let text = |s: &str| sanitize(s, MAX_CONFIG_KEY_TEXT).into_owned();
        let config_keys = keys
            .iter()
            .take(MAX_CONFIG_KEYS)
            .map(|k| ConfigKey {
                name: text(&k.name),
                value: k.value.as_deref().map(text),
                description: text(&k.description),
            })
            .collect();
        Ok((HandlerInfo { name: info.name, device_type, description }, config_keys))
    }

    /// What the handler says about itself.
    pub fn info(&self) -> &HandlerInfo {
        &self.info
    }

    /// The keys its config string takes, as the handler describes them
    /// (`config-help`, WIT 0.2.3; empty for handlers without it).
    pub fn config_keys(&self) -> &[ConfigKey] {
        &self.config_keys
    }

    /// SHA-256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where the component was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the component exports the optional `state` interface.
    pub fn is_stateful(&self) -> bool {
        self.exports.state.is_some()
    }

    /// Whether the component takes removable media (exports `removable`).
    pub fn takes_media(&self) -> bool {
        self.exports.removable.is_some()
    }

    /// Whether the component is a changer (exports `library-events`).
    pub fn is_changer(&self) -> bool {
        self.exports.library_events.is_some()
    }
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_COMPONENT_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}
