//! What a handler instance can reach: its store data and the host
//! functions behind the WIT imports. There is no WASI filesystem, network,
//! environment or clock beyond what wasi:cli's defaults hand an empty
//! context; the device's backing store is the only resource it is given.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::tcmu::handler::{backing, log, transfer, types};
use crate::backing::{BackingFile, StoreError};
use crate::device::CommandIo;

/// The backing-store capability as it sits in a device's resource table.
#[derive(Debug)]
pub struct StoreGrant {
    file: Arc<BackingFile>,
}

/// Everything a device's wasm `Store` holds.
pub struct DeviceState {
    pub(super) device: Arc<str>,
    pub(super) backing: Option<Arc<BackingFile>>,
    /// The command being handled (None between commands).
    pub(super) io: Option<CommandIo>,
    pub(super) cap: MemoryCap,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl DeviceState {
    pub(super) fn new(device: Arc<str>, backing: Option<Arc<BackingFile>>, memory_bytes: usize) -> Self {
        // Nothing inherited: no args, env, preopens, sockets or stdio.
        let wasi = WasiCtx::builder().build();
        let cap = MemoryCap { limit: memory_bytes, denied: None };
        Self { device, backing, io: None, cap, wasi, table: ResourceTable::new() }
    }

    /// Put the backing store into the table as a handle to give the guest.
    pub(super) fn grant_store(&mut self) -> wasmtime::Result<Option<Resource<StoreGrant>>> {
        match &self.backing {
            Some(file) => Ok(Some(self.table.push(StoreGrant { file: file.clone() })?)),
            None => Ok(None),
        }
    }

    pub(super) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.cap
    }

    fn grant(&self, handle: &Resource<StoreGrant>) -> wasmtime::Result<Arc<BackingFile>> {
        Ok(self.table.get(handle)?.file.clone())
    }

    fn io(&mut self) -> Result<&mut CommandIo, StoreError> {
        // Outside `handle` there is no command and so no buffer to touch.
        self.io.as_mut().ok_or(StoreError::OutOfRange)
    }
}

/// The memory cap of one instance. A denied grow traps at once (rather
/// than returning -1 to an allocator that would abort less legibly) and is
/// remembered, so the host can name the cause in its log.
#[derive(Debug)]
pub(super) struct MemoryCap {
    limit: usize,
    /// The size a denied grow asked for, since the last reset.
    pub(super) denied: Option<usize>,
}

/// Table elements an instance may have; Rust guests need a few hundred.
const TABLE_ELEMENTS_LIMIT: usize = 1 << 16;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit || maximum.is_some_and(|m| desired > m) {
            self.denied = Some(desired);
            wasmtime::bail!("memory cap of {} bytes exceeded: {desired} bytes requested", self.limit);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_LIMIT && maximum.is_none_or(|m| desired <= m))
    }
}

impl WasiView for DeviceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn wit_error(e: StoreError) -> types::IoError {
    match e {
        StoreError::OutOfRange => types::IoError::OutOfRange,
        StoreError::ReadOnly => types::IoError::ReadOnly,
        StoreError::Io(e) => types::IoError::Io(e.to_string()),
    }
}

type Wit<T> = wasmtime::Result<Result<T, types::IoError>>;

fn wit<T>(r: Result<T, StoreError>) -> Wit<T> {
    Ok(r.map_err(wit_error))
}

impl types::Host for DeviceState {}

impl backing::Host for DeviceState {}

impl backing::HostStore for DeviceState {
    fn size(&mut self, s: Resource<StoreGrant>) -> wasmtime::Result<u64> {
        Ok(self.grant(&s)?.size())
    }

    fn read_only(&mut self, s: Resource<StoreGrant>) -> wasmtime::Result<bool> {
        Ok(self.grant(&s)?.read_only())
    }

    fn read_at(&mut self, s: Resource<StoreGrant>, offset: u64, len: u32) -> Wit<Vec<u8>> {
        wit(self.grant(&s)?.read_vec(offset, len))
    }

    fn write_at(&mut self, s: Resource<StoreGrant>, offset: u64, data: Vec<u8>) -> Wit<()> {
        wit(self.grant(&s)?.write_from(offset, &data))
    }

    fn flush(&mut self, s: Resource<StoreGrant>) -> Wit<()> {
        wit(self.grant(&s)?.flush())
    }

    fn discard(&mut self, s: Resource<StoreGrant>, offset: u64, len: u64) -> Wit<()> {
        wit(self.grant(&s)?.discard(offset, len))
    }

    fn write_zeroes(&mut self, s: Resource<StoreGrant>, offset: u64, len: u64) -> Wit<()> {
        wit(self.grant(&s)?.write_zeroes(offset, len))
    }

    fn read_to_data_in(&mut self, s: Resource<StoreGrant>, offset: u64, len: u32, data_in_offset: u32) -> Wit<()> {
        let file = self.grant(&s)?;
        wit(self.io().and_then(|io| io.store_to_data_in(&file, offset, len, data_in_offset)))
    }

    fn write_from_data_out(&mut self, s: Resource<StoreGrant>, offset: u64, len: u32, data_out_offset: u32) -> Wit<()> {
        let file = self.grant(&s)?;
        wit(self.io().and_then(|io| io.data_out_to_store(&file, offset, len, data_out_offset)))
    }

    fn drop(&mut self, s: Resource<StoreGrant>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

impl transfer::Host for DeviceState {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Wit<Vec<u8>> {
        wit(self.io().and_then(|io| io.read_data_out(offset, len)))
    }

    fn write_data_in(&mut self, offset: u32, data: Vec<u8>) -> Wit<()> {
        wit(self.io().and_then(|io| io.write_data_in(offset, &data)))
    }
}

impl log::Host for DeviceState {
    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        // Bound what a guest can push into the host's logs per line.
        let message: String = message.chars().take(1024).collect();
        let device = &*self.device;
        match level {
            types::LogLevel::Error => tracing::error!(device, handler = true, "{message}"),
            types::LogLevel::Warn => tracing::warn!(device, handler = true, "{message}"),
            types::LogLevel::Info => tracing::info!(device, handler = true, "{message}"),
            types::LogLevel::Debug => tracing::debug!(device, handler = true, "{message}"),
            types::LogLevel::Trace => tracing::trace!(device, handler = true, "{message}"),
        }
        Ok(())
    }
}
