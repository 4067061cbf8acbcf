//! What a handler instance can reach: its store data and the host
//! functions behind the WIT imports. The device's backing store, a drive's
//! loaded cartridge and a changer's library are the only resources it is
//! given (WASI: see [`super::wasi`]).
//!
//! Every host function is bounded, because epoch interruption cannot stop
//! host code: none allocates more host memory than the guest's own memory
//! cap (a guest could never receive more), and the ones that may take long
//! — the write-zeroes fallback on an unhelpful filesystem, and a changer's
//! moves, which wait for the drives — stop at the call's deadline. Nothing
//! else waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource, ResourceTable, WasmStr};
use wasmtime::{ResourceLimiter, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::tcmu::handler::{backing, library, medium, transfer, types};
use super::guest_text::{LogLimiter, MAX_LOG_LINE, Verdict, sanitize};
use super::sched;
use crate::aio::{IoEngine, OpKind};
use crate::backing::{BackingFile, StoreError};
use crate::device::{CommandIo, ElementKind, LibraryPort, Medium, MoveError};
use crate::metrics::DeviceMetrics;

/// The backing-store capability as it sits in a device's resource table.
#[derive(Debug)]
pub struct StoreGrant {
    file: Arc<BackingFile>,
}

/// A cartridge capability as it sits in a drive's resource table: it names
/// the load it was granted for, not the file, so once the medium leaves
/// (or another one comes) every call through it fails with `no-medium`
/// without ever reaching an image.
#[derive(Debug)]
pub struct CartridgeGrant {
    load_id: u64,
}

/// Resource handles (streams, pollables, the store grant) one instance may
/// hold at once; a guest creating them in a loop faults at this bound
/// instead of growing the host's table without end.
const MAX_RESOURCES: usize = 1024;

/// The CPU accounting of the call in progress.
#[derive(Debug)]
pub(super) struct CallClock {
    /// When the call's budget runs out.
    pub deadline: Instant,
    /// Epoch ticks per slice.
    pub slice_ticks: u64,
    /// Length of a slice.
    pub slice: Duration,
    /// The thread's scheduling before this call overran its slice.
    pub demoted: Option<sched::Saved>,
    /// Whether this call already overran a slice.
    pub overran: bool,
}

impl CallClock {
    fn idle() -> Self {
        Self { deadline: Instant::now(), slice_ticks: 1, slice: Duration::ZERO, demoted: None, overran: false }
    }
}

/// Everything a device's wasm `Store` holds.
pub struct DeviceState {
    pub(super) device: Arc<str>,
    pub(super) backing: Option<Arc<BackingFile>>,
    /// Where the store's transfers are queued (devices with a store).
    pub(super) engine: Option<Arc<IoEngine>>,
    /// The medium in the drive now; `None` revokes every cartridge grant.
    pub(super) medium: Option<Medium>,
    /// The changer's library, for changers.
    pub(super) library: Option<Arc<dyn LibraryPort>>,
    /// The command being handled (None between commands).
    pub(super) io: Option<CommandIo>,
    pub(super) cap: MemoryCap,
    pub(super) clock: CallClock,
    pub(super) log: LogLimiter,
    pub(super) metrics: Arc<DeviceMetrics>,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
}

impl DeviceState {
    pub(super) fn new(
        device: Arc<str>,
        backing: Option<Arc<BackingFile>>,
        memory_bytes: usize,
        metrics: Arc<DeviceMetrics>,
        log: LogLimiter,
    ) -> Self {
        // Nothing inherited: no args, env, preopens, sockets or stdio.
        let wasi = WasiCtx::builder().max_random_size(super::wasi::MAX_RANDOM_BYTES).build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let cap = MemoryCap::new(memory_bytes);
        Self {
            device,
            backing,
            engine: None,
            medium: None,
            library: None,
            io: None,
            cap,
            clock: CallClock::idle(),
            log,
            metrics,
            wasi,
            table,
        }
    }

    /// Put `medium` in the drive and a grant for it into the table.
    pub(super) fn load_medium(&mut self, medium: Medium) -> wasmtime::Result<Resource<CartridgeGrant>> {
        let grant = self.table.push(CartridgeGrant { load_id: medium.load_id })?;
        self.medium = Some(medium);
        Ok(grant)
    }

    /// Take the medium out: every grant for it is revoked from now on.
    pub(super) fn unload_medium(&mut self) {
        self.medium = None;
    }

    /// Run `f` on the image behind a cartridge grant; a revoked grant
    /// (the medium left, or another came) fails with `no-medium` untouched.
    fn on_cartridge<T>(
        &mut self,
        handle: &Resource<CartridgeGrant>,
        f: impl FnOnce(&mut Self, Arc<BackingFile>) -> Result<T, StoreError>,
    ) -> MediumResult<T> {
        let load_id = self.table.get(handle)?.load_id;
        let file = match &self.medium {
            Some(m) if m.load_id == load_id => m.image.clone(),
            _ => return Ok(Err(medium::MediumError::NoMedium)),
        };
        Ok(f(self, file).map_err(|e| medium::MediumError::Io(e.into())))
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

    /// Wait for the queued I/O a synchronous `kind` access of the store at
    /// `[offset, offset+len)` must see (ordering rule 3 of [`crate::aio`]),
    /// no longer than the call's deadline.
    fn settle(&self, file: &Arc<BackingFile>, kind: OpKind, offset: u64, len: u64) -> Result<(), StoreError> {
        match &self.engine {
            Some(engine) => engine.settle(file, kind, offset, len, Some(self.clock.deadline)),
            None => Ok(()),
        }
    }

    /// Refuse a request whose answer the guest could never hold.
    fn fits_guest(&self, len: u64) -> Result<(), StoreError> {
        if len > self.cap.limit as u64 { Err(StoreError::TooLarge) } else { Ok(()) }
    }
}

/// Log one guest line (already admitted by the rate limit), cut and escaped.
fn guest_log(device: &str, level: types::LogLevel, message: &str) {
    let message = sanitize(message, MAX_LOG_LINE);
    match level {
        types::LogLevel::Error => tracing::error!(device, handler = true, "{message}"),
        types::LogLevel::Warn => tracing::warn!(device, handler = true, "{message}"),
        types::LogLevel::Info => tracing::info!(device, handler = true, "{message}"),
        types::LogLevel::Debug => tracing::debug!(device, handler = true, "{message}"),
        types::LogLevel::Trace => tracing::trace!(device, handler = true, "{message}"),
    }
}

/// The memory cap of one instance, summed over every linear memory and
/// table of the component (a component may define many). A denied grow
/// traps at once (rather than returning -1 to an allocator that would abort
/// less legibly) and is remembered, so the host can name the cause.
#[derive(Debug)]
pub(super) struct MemoryCap {
    pub(super) limit: usize,
    used: usize,
    table_elements: usize,
    /// The total a denied grow asked for, since the last reset.
    pub(super) denied: Option<usize>,
}

/// Table elements an instance may have in all; Rust guests need a few hundred.
const TABLE_ELEMENTS_LIMIT: usize = 1 << 16;
/// Linear memories, tables and core instances a component may create.
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;
const MAX_INSTANCES: usize = 64;

impl MemoryCap {
    fn new(limit: usize) -> Self {
        Self { limit, used: 0, table_elements: 0, denied: None }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit || maximum.is_some_and(|m| desired > m) {
            self.denied = Some(total);
            wasmtime::bail!("memory cap of {} bytes exceeded: {total} bytes requested in all", self.limit);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.table_elements.saturating_sub(current).saturating_add(desired);
        if total > TABLE_ELEMENTS_LIMIT || maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl WasiView for DeviceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl From<StoreError> for types::IoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OutOfRange => types::IoError::OutOfRange,
            StoreError::ReadOnly => types::IoError::ReadOnly,
            StoreError::TooLarge => types::IoError::TooLarge,
            StoreError::Io(e) => types::IoError::Io(sanitize(&e.to_string(), 256).into_owned()),
        }
    }
}

type Wit<T> = wasmtime::Result<Result<T, types::IoError>>;

fn wit<T>(r: Result<T, StoreError>) -> Wit<T> {
    Ok(r.map_err(types::IoError::from))
}

/// Link the tcmu:handler imports.
pub(super) fn add_to_linker(linker: &mut Linker<DeviceState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    backing::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    medium::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    library::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    transfer::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    // `log` by hand: the message stays in guest memory until the rate limit
    // has admitted the line, and only its first kilobyte is ever copied.
    linker.instance(&format!("tcmu:handler/log@{}", super::WIT_VERSION))?.func_wrap(
        "log",
        |mut cx: StoreContextMut<'_, DeviceState>, (level, message): (types::LogLevel, WasmStr)| {
            match cx.data_mut().log.admit(Instant::now()) {
                Verdict::Drop => {
                    cx.data().metrics.log_suppressed(1);
                    return Ok(());
                }
                Verdict::Log { suppressed } if suppressed > 0 => {
                    let device = &*cx.data().device;
                    tracing::warn!(device, handler = true, suppressed, "handler log lines suppressed (rate limit)");
                }
                Verdict::Log { .. } => {}
            }
            let text = message.to_str(&cx)?;
            guest_log(&cx.data().device, level, &text);
            Ok(())
        },
    )?;
    Ok(())
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
        let file = self.grant(&s)?;
        wit(self
            .fits_guest(len.into())
            .and_then(|()| self.settle(&file, OpKind::Read, offset, len.into()))
            .and_then(|()| file.read_vec(offset, len)))
    }

    fn write_at(&mut self, s: Resource<StoreGrant>, offset: u64, data: Vec<u8>) -> Wit<()> {
        let file = self.grant(&s)?;
        wit(self.settle(&file, OpKind::Write, offset, data.len() as u64).and_then(|()| file.write_from(offset, &data)))
    }

    fn flush(&mut self, s: Resource<StoreGrant>) -> Wit<()> {
        let file = self.grant(&s)?;
        // Queued behind the command's writes (FUA, SYNCHRONIZE CACHE); run
        // at once, after every earlier write, outside a command.
        wit(match &self.engine {
            Some(engine) => engine.flush(&file),
            None => file.flush(),
        })
    }

    // Both queued behind the command's earlier I/O like a write (run at
    // once, after what they overlap, outside a command); where fallocate
    // cannot, zeroes are written, up to the call's deadline.
    fn discard(&mut self, s: Resource<StoreGrant>, offset: u64, len: u64) -> Wit<()> {
        let deadline = Some(self.clock.deadline);
        let file = self.grant(&s)?;
        wit(match &self.engine {
            Some(engine) => engine.discard(&file, offset, len, deadline),
            None => file.discard(offset, len, deadline),
        })
    }

    fn write_zeroes(&mut self, s: Resource<StoreGrant>, offset: u64, len: u64) -> Wit<()> {
        let deadline = Some(self.clock.deadline);
        let file = self.grant(&s)?;
        wit(match &self.engine {
            Some(engine) => engine.write_zeroes(&file, offset, len, deadline),
            None => file.write_zeroes(offset, len, deadline),
        })
    }

    fn read_to_data_in(&mut self, s: Resource<StoreGrant>, offset: u64, len: u32, data_in_offset: u32) -> Wit<()> {
        let file = self.grant(&s)?;
        wit(self.io().and_then(|io| io.store_to_data_in(&file, offset, len, data_in_offset, true)))
    }

    fn write_from_data_out(&mut self, s: Resource<StoreGrant>, offset: u64, len: u32, data_out_offset: u32) -> Wit<()> {
        let file = self.grant(&s)?;
        wit(self.io().and_then(|io| io.data_out_to_store(&file, offset, len, data_out_offset, true)))
    }

    fn drop(&mut self, s: Resource<StoreGrant>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

type MediumResult<T> = wasmtime::Result<Result<T, medium::MediumError>>;

impl medium::Host for DeviceState {}

impl medium::HostCartridge for DeviceState {
    fn size(&mut self, c: Resource<CartridgeGrant>) -> MediumResult<u64> {
        self.on_cartridge(&c, |_, file| Ok(file.size()))
    }

    fn read_only(&mut self, c: Resource<CartridgeGrant>) -> MediumResult<bool> {
        self.on_cartridge(&c, |_, file| Ok(file.read_only()))
    }

    fn read_at(&mut self, c: Resource<CartridgeGrant>, offset: u64, len: u32) -> MediumResult<Vec<u8>> {
        self.on_cartridge(&c, |s, file| s.fits_guest(len.into()).and_then(|()| file.read_vec(offset, len)))
    }

    fn write_at(&mut self, c: Resource<CartridgeGrant>, offset: u64, data: Vec<u8>) -> MediumResult<()> {
        self.on_cartridge(&c, |_, file| file.write_from(offset, &data))
    }

    fn flush(&mut self, c: Resource<CartridgeGrant>) -> MediumResult<()> {
        self.on_cartridge(&c, |_, file| file.flush())
    }

    fn discard(&mut self, c: Resource<CartridgeGrant>, offset: u64, len: u64) -> MediumResult<()> {
        self.on_cartridge(&c, |s, file| file.discard(offset, len, Some(s.clock.deadline)))
    }

    fn read_to_data_in(&mut self, c: Resource<CartridgeGrant>, offset: u64, len: u32, at: u32) -> MediumResult<()> {
        self.on_cartridge(&c, |s, file| s.io()?.store_to_data_in(&file, offset, len, at, false))
    }

    fn write_from_data_out(&mut self, c: Resource<CartridgeGrant>, offset: u64, len: u32, at: u32) -> MediumResult<()> {
        self.on_cartridge(&c, |s, file| s.io()?.data_out_to_store(&file, offset, len, at, false))
    }

    fn drop(&mut self, c: Resource<CartridgeGrant>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

impl From<MoveError> for library::MoveError {
    fn from(e: MoveError) -> Self {
        match e {
            MoveError::SourceEmpty => library::MoveError::SourceEmpty,
            MoveError::DestinationFull => library::MoveError::DestinationFull,
            MoveError::InvalidElement(a) => library::MoveError::InvalidElement(a),
            MoveError::RemovalPrevented => library::MoveError::RemovalPrevented,
            MoveError::DriveFailed(why) => library::MoveError::DriveFailed(sanitize(&why, 256).into_owned()),
        }
    }
}

/// A device that is not a changer has no library: it sees no elements and
/// every move names an element that does not exist.
impl library::Host for DeviceState {
    fn elements(&mut self) -> wasmtime::Result<Vec<library::Element>> {
        let Some(port) = &self.library else { return Ok(Vec::new()) };
        let elements = port.elements();
        self.fits_guest(elements.len() as u64 * 128).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        Ok(elements
            .into_iter()
            .map(|e| library::Element {
                address: e.address,
                kind: match e.kind {
                    ElementKind::Transport => library::ElementKind::Transport,
                    ElementKind::Storage => library::ElementKind::Storage,
                    ElementKind::ImportExport => library::ElementKind::ImportExport,
                    ElementKind::DataTransfer => library::ElementKind::DataTransfer,
                },
                full: e.barcode.is_some(),
                barcode: e.barcode,
                source: e.source,
                drive_serial: e.drive_serial,
                imported: e.imported,
            })
            .collect())
    }

    fn move_medium(&mut self, source: u16, destination: u16) -> wasmtime::Result<Result<(), library::MoveError>> {
        let Some(port) = &self.library else { return Ok(Err(library::MoveError::InvalidElement(source))) };
        Ok(port.move_medium(source, destination, self.clock.deadline).map_err(Into::into))
    }

    fn exchange_medium(
        &mut self,
        source: u16,
        first: u16,
        second: u16,
    ) -> wasmtime::Result<Result<(), library::MoveError>> {
        let Some(port) = &self.library else { return Ok(Err(library::MoveError::InvalidElement(source))) };
        Ok(port.exchange_medium(source, first, second, self.clock.deadline).map_err(Into::into))
    }

    fn prevent_removal(&mut self, prevent: bool) -> wasmtime::Result<()> {
        if let Some(port) = &self.library {
            port.prevent_removal(prevent);
        }
        Ok(())
    }
}

impl transfer::Host for DeviceState {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Wit<Vec<u8>> {
        let cap = self.cap.limit as u64;
        wit(self.io().and_then(|io| io.read_data_out(offset, len, cap)))
    }

    fn write_data_in(&mut self, offset: u32, data: Vec<u8>) -> Wit<()> {
        wit(self.io().and_then(|io| io.write_data_in(offset, &data)))
    }

    fn set_sense(&mut self, sense: Vec<u8>) -> wasmtime::Result<()> {
        // (The list is in host memory already, bounded by the guest's cap,
        // as `write-data-in`'s is.)
        if let Some(io) = self.io.as_mut() {
            io.set_sense(sense);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_instance() {
        let mut cap = MemoryCap::new(256 << 20);
        // Eight memories of 32 MiB each fit exactly...
        for _ in 0..8 {
            assert!(cap.memory_growing(0, 32 << 20, None).unwrap());
        }
        // ...and a ninth, or growing any of them, does not.
        assert!(cap.memory_growing(0, 1 << 16, None).is_err());
        assert_eq!(cap.denied, Some((256 << 20) + (1 << 16)));
        assert!(cap.memory_growing(32 << 20, 64 << 20, None).is_err());
        // Growing within the total is fine after a memory shrinks away.
        let mut cap = MemoryCap::new(100);
        assert!(cap.memory_growing(0, 60, None).unwrap());
        assert!(cap.memory_growing(0, 40, None).unwrap());
        assert!(cap.memory_growing(60, 61, None).is_err());
        assert!(!cap.table_growing(0, TABLE_ELEMENTS_LIMIT + 1, None).unwrap());
        assert!(cap.table_growing(0, TABLE_ELEMENTS_LIMIT, None).unwrap());
        assert!(!cap.table_growing(0, 1, None).unwrap(), "tables are summed too");
    }
}
