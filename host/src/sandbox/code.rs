//! Loading handler code: compile a component once, keep its compiled form
//! on disk keyed by the SHA-256 of the `.wasm` (plus the engine's
//! compatibility hash), and pre-link it so instantiating a device — or
//! rebuilding one after a trap — costs tens of microseconds.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{self, DeviceHandlerPre};
use super::host::DeviceState;
use super::{Limits, Runtime, wt};
use tcmu_guest_sdk::{DeviceType, HandlerInfo};

/// A compiled, pre-linked handler component.
pub struct HandlerCode {
    pub(super) runtime: Arc<Runtime>,
    pub(super) pre: DeviceHandlerPre<DeviceState>,
    path: PathBuf,
    digest: String,
    info: HandlerInfo,
}

impl std::fmt::Debug for HandlerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerCode").field("path", &self.path).field("digest", &self.digest).finish()
    }
}

impl HandlerCode {
    /// Load the component at `path`.
    pub fn load(runtime: &Arc<Runtime>, path: &Path) -> anyhow::Result<Arc<Self>> {
        let bytes = std::fs::read(path).with_context(|| format!("reading handler {}", path.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let component = Self::compile_cached(runtime, &bytes, &digest)
            .with_context(|| format!("compiling handler {}", path.display()))?;
        let pre = runtime
            .linker
            .instantiate_pre(&component)
            .map_err(wt)
            .with_context(|| format!("handler {} imports something the host does not provide", path.display()))?;
        let pre = DeviceHandlerPre::new(pre).map_err(wt).with_context(|| {
            format!("handler {} does not export the tcmu:handler device-handler world", path.display())
        })?;
        let info = Self::describe(runtime, &pre).with_context(|| format!("describing handler {}", path.display()))?;
        tracing::info!(handler = %info.name, kind = ?info.device_type, digest = &digest[..12], "handler loaded");
        Ok(Arc::new(Self { runtime: runtime.clone(), pre, path: path.to_owned(), digest, info }))
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
                // Write-then-rename so a concurrent reader never sees half a file.
                let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
                if let Err(e) = std::fs::write(&tmp, blob).and_then(|_| std::fs::rename(&tmp, &cached)) {
                    tracing::warn!(path = %cached.display(), error = %e, "could not cache compiled handler");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize compiled handler"),
        }
        Ok(component)
    }

    fn describe(runtime: &Runtime, pre: &DeviceHandlerPre<DeviceState>) -> anyhow::Result<HandlerInfo> {
        let limits = Limits::default();
        let mut store = Store::new(runtime.engine(), DeviceState::new("describe".into(), None, limits.memory_bytes));
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(Limits::ticks(limits.open_budget));
        let handler = pre.instantiate(&mut store).map_err(wt)?;
        let info = handler.tcmu_handler_device().call_describe(&mut store).map_err(wt)?;
        let device_type = match info.device_type {
            bindings::types::DeviceType::Disk => DeviceType::Disk,
            bindings::types::DeviceType::Tape => DeviceType::Tape,
            bindings::types::DeviceType::Changer => DeviceType::Changer,
            bindings::types::DeviceType::Optical => DeviceType::Optical,
            bindings::types::DeviceType::Other => DeviceType::Other,
        };
        Ok(HandlerInfo { name: info.name, device_type, description: info.description })
    }

    /// What the handler says about itself.
    pub fn info(&self) -> &HandlerInfo {
        &self.info
    }

    /// SHA-256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where the component was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
