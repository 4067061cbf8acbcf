//! The component glue: wit-bindgen bindings plus an adapter from the
//! generated `Guest` trait to [`crate::Handler`]. Handler authors never use
//! this module directly; [`crate::export_handler!`] does.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::{
    Cartridge, Command, Completion, DeviceIdentity, DeviceType, Element, ElementKind, Handler, IoError, Library,
    LogLevel, MediumError, MediumInfo, MoveError, Store, TaskManagement, Transfer,
};

#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "any-handler",
        pub_export_macro: true,
        default_bindings_module: "tcmu_guest_sdk::wasm::bindings",
    });
}

use bindings::tcmu::handler::{backing, library as wlib, log as wlog, medium as wm, transfer, types as wt};

thread_local! {
    // The open device. A component instance serves one device, and wasm32
    // components are single-threaded, so one slot is all there is.
    static DEVICE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    // The state as last reported to the host, to notice changes.
    static LAST_STATE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    // Scratch for the next save, reused so a command costs no allocation.
    static NEXT_STATE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Save the device's state and report whether it differs from what the
/// host last heard.
fn state_changed<H: Handler>() -> bool {
    NEXT_STATE.with(|next| {
        let mut next = next.borrow_mut();
        next.clear();
        if with_device::<H, _>(|dev| dev.save_state(&mut next)).is_none() {
            return false;
        }
        LAST_STATE.with(|last| {
            let mut last = last.borrow_mut();
            if *last == *next {
                false
            } else {
                std::mem::swap(&mut *last, &mut *next);
                true
            }
        })
    })
}

/// Adapter from the generated `Guest` trait to a [`Handler`].
pub struct Glue<H>(PhantomData<H>);

fn with_device<H: Handler, R>(f: impl FnOnce(&mut H) -> R) -> Option<R> {
    DEVICE.with(|slot| {
        let mut slot = slot.borrow_mut();
        slot.as_mut().and_then(|b| b.downcast_mut::<H>()).map(f)
    })
}

impl<H: Handler> bindings::exports::tcmu::handler::device::Guest for Glue<H> {
    fn describe() -> wt::HandlerInfo {
        let info = H::describe();
        wt::HandlerInfo {
            name: info.name,
            device_type: match info.device_type {
                DeviceType::Disk => wt::DeviceType::Disk,
                DeviceType::Tape => wt::DeviceType::Tape,
                DeviceType::Changer => wt::DeviceType::Changer,
                DeviceType::Optical => wt::DeviceType::Optical,
                DeviceType::Other => wt::DeviceType::Other,
            },
            description: info.description,
        }
    }

    fn open(config: String, identity: wt::DeviceIdentity, store: Option<backing::Store>) -> Result<(), String> {
        let store = store.map(|s| Box::new(WasmStore(s)) as Box<dyn Store>);
        let identity = DeviceIdentity { name: identity.name, serial: identity.serial, naa: identity.naa };
        let mut dev = H::open(&config, &identity, store)?;
        dev.library_attached(Box::new(WasmLibrary));
        DEVICE.with(|slot| *slot.borrow_mut() = Some(Box::new(dev)));
        // The opened state is the baseline; the host snapshots after open.
        state_changed::<H>();
        Ok(())
    }

    fn handle(command: wt::Command) -> wt::Completion {
        let cmd = Command { cdb: &command.cdb, data_out_len: command.data_out_len, data_in_len: command.data_in_len };
        let done = handle_one::<H>(&cmd);
        wt::Completion {
            status: done.status,
            sense: done.sense,
            data_in_len: done.data_in_len,
            state_changed: state_changed::<H>(),
        }
    }

    fn task_management(tmf: wt::TaskManagementFunction) {
        let tmf = match tmf {
            wt::TaskManagementFunction::AbortTask => TaskManagement::AbortTask,
            wt::TaskManagementFunction::AbortTaskSet => TaskManagement::AbortTaskSet,
            wt::TaskManagementFunction::ClearAca => TaskManagement::ClearAca,
            wt::TaskManagementFunction::ClearTaskSet => TaskManagement::ClearTaskSet,
            wt::TaskManagementFunction::LunReset => TaskManagement::LunReset,
            wt::TaskManagementFunction::TargetWarmReset => TaskManagement::TargetWarmReset,
            wt::TaskManagementFunction::TargetColdReset => TaskManagement::TargetColdReset,
            wt::TaskManagementFunction::LunResetPr => TaskManagement::LunResetPr,
            wt::TaskManagementFunction::Unknown => TaskManagement::Unknown,
        };
        with_device::<H, _>(|dev| dev.task_management(tmf));
    }

    fn resized(new_size: u64) {
        with_device::<H, _>(|dev| dev.resized(new_size));
    }

    fn write_cache_changed(enabled: bool) {
        with_device::<H, _>(|dev| dev.write_cache_changed(enabled));
    }

    fn close() {
        with_device::<H, _>(|dev| dev.close());
        DEVICE.with(|slot| slot.borrow_mut().take());
    }
}

/// One command into the open device.
fn handle_one<H: Handler>(cmd: &Command<'_>) -> Completion {
    with_device::<H, _>(|dev| dev.handle(cmd, &mut WasmTransfer))
        // Commands before a successful open: the LUN is not ready.
        .unwrap_or_else(|| Completion::check_condition(&crate::sense::LUN_NOT_READY))
}

/// The CDB bytes `handle-short` packs into two big-endian words.
fn unpack_cdb(high: u64, low: u64) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[..8].copy_from_slice(&high.to_be_bytes());
    cdb[8..].copy_from_slice(&low.to_be_bytes());
    cdb
}

impl<H: Handler> bindings::exports::tcmu::handler::short_command::Guest for Glue<H> {
    fn handle_short(
        cdb_high: u64,
        cdb_low: u64,
        cdb_len: u8,
        data_out_len: u32,
        data_in_len: u32,
    ) -> bindings::exports::tcmu::handler::short_command::ShortCompletion {
        let bytes = unpack_cdb(cdb_high, cdb_low);
        let cdb = &bytes[..usize::from(cdb_len).min(bytes.len())];
        let done = handle_one::<H>(&Command { cdb, data_out_len, data_in_len });
        if !done.sense.is_empty() {
            transfer::set_sense(&done.sense);
        }
        bindings::exports::tcmu::handler::short_command::ShortCompletion {
            status: done.status,
            data_in_len: done.data_in_len,
            state_changed: state_changed::<H>(),
        }
    }
}

impl<H: Handler> bindings::exports::tcmu::handler::state::Guest for Glue<H> {
    fn save() -> Vec<u8> {
        state_changed::<H>();
        LAST_STATE.with(|last| last.borrow().clone())
    }

    fn restore(state: Vec<u8>) -> Result<(), String> {
        with_device::<H, _>(|dev| dev.restore_state(&state)).unwrap_or_else(|| Err("the device is not open".into()))?;
        state_changed::<H>();
        Ok(())
    }
}

impl<H: Handler> bindings::exports::tcmu::handler::removable::Guest for Glue<H> {
    fn loaded(cartridge: wm::Cartridge, info: wm::MediumInfo) -> Result<(), String> {
        let info = MediumInfo { barcode: info.barcode, write_protected: info.write_protected, load_id: info.load_id };
        with_device::<H, _>(|dev| dev.medium_loaded(Box::new(WasmCartridge(cartridge)), info))
            .unwrap_or_else(|| Err("the device is not open".into()))
    }

    fn unloaded() {
        with_device::<H, _>(|dev| dev.medium_unloaded());
    }
}

impl<H: Handler> bindings::exports::tcmu::handler::removal::Guest for Glue<H> {
    fn removal_requested() -> bool {
        with_device::<H, _>(|dev| dev.removal_requested()).unwrap_or(true)
    }
}

impl<H: Handler> bindings::exports::tcmu::handler::config_help::Guest for Glue<H> {
    fn config_keys() -> Vec<bindings::exports::tcmu::handler::config_help::ConfigKey> {
        H::config_keys()
            .into_iter()
            .map(|k| bindings::exports::tcmu::handler::config_help::ConfigKey {
                name: k.name,
                value: k.value,
                description: k.description,
            })
            .collect()
    }
}

impl<H: Handler> bindings::exports::tcmu::handler::library_events::Guest for Glue<H> {
    fn elements_changed(addresses: Vec<u16>) {
        with_device::<H, _>(|dev| dev.elements_changed(&addresses));
    }
}

fn medium_error(e: wm::MediumError) -> MediumError {
    match e {
        wm::MediumError::NoMedium => MediumError::NoMedium,
        wm::MediumError::Io(e) => MediumError::Io(io_error(e)),
    }
}

struct WasmCartridge(wm::Cartridge);

impl Cartridge for WasmCartridge {
    fn size(&self) -> Result<u64, MediumError> {
        self.0.size().map_err(medium_error)
    }
    fn read_only(&self) -> Result<bool, MediumError> {
        self.0.read_only().map_err(medium_error)
    }
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, MediumError> {
        self.0.read_at(offset, len).map_err(medium_error)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.0.write_at(offset, data).map_err(medium_error)
    }
    fn flush(&self) -> Result<(), MediumError> {
        self.0.flush().map_err(medium_error)
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), MediumError> {
        self.0.discard(offset, len).map_err(medium_error)
    }
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), MediumError> {
        self.0.read_to_data_in(offset, len, data_in_offset).map_err(medium_error)
    }
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), MediumError> {
        self.0.write_from_data_out(offset, len, data_out_offset).map_err(medium_error)
    }
}

struct WasmLibrary;

impl Library for WasmLibrary {
    fn elements(&self) -> Vec<Element> {
        wlib::elements()
            .into_iter()
            .map(|e| Element {
                address: e.address,
                kind: match e.kind {
                    wlib::ElementKind::Transport => ElementKind::Transport,
                    wlib::ElementKind::Storage => ElementKind::Storage,
                    wlib::ElementKind::ImportExport => ElementKind::ImportExport,
                    wlib::ElementKind::DataTransfer => ElementKind::DataTransfer,
                },
                barcode: e.barcode.filter(|_| e.full),
                source: e.source,
                drive_serial: e.drive_serial,
                imported: e.imported,
            })
            .collect()
    }
    fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), MoveError> {
        wlib::move_medium(source, destination).map_err(move_error)
    }
    fn exchange_medium(&mut self, source: u16, first: u16, second: u16) -> Result<(), MoveError> {
        wlib::exchange_medium(source, first, second).map_err(move_error)
    }
    fn prevent_removal(&mut self, prevent: bool) {
        wlib::prevent_removal(prevent);
    }
}

fn move_error(e: wlib::MoveError) -> MoveError {
    match e {
        wlib::MoveError::SourceEmpty => MoveError::SourceEmpty,
        wlib::MoveError::DestinationFull => MoveError::DestinationFull,
        wlib::MoveError::InvalidElement(a) => MoveError::InvalidElement(a),
        wlib::MoveError::RemovalPrevented => MoveError::RemovalPrevented,
        wlib::MoveError::DriveFailed(why) => MoveError::DriveFailed(why),
    }
}

fn io_error(e: wt::IoError) -> IoError {
    match e {
        wt::IoError::OutOfRange => IoError::OutOfRange,
        wt::IoError::ReadOnly => IoError::ReadOnly,
        wt::IoError::TooLarge => IoError::TooLarge,
        wt::IoError::Io(s) => IoError::Io(s),
    }
}

struct WasmStore(backing::Store);

impl Store for WasmStore {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_only(&self) -> bool {
        self.0.read_only()
    }
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, IoError> {
        self.0.read_at(offset, len).map_err(io_error)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), IoError> {
        self.0.write_at(offset, data).map_err(io_error)
    }
    fn flush(&self) -> Result<(), IoError> {
        self.0.flush().map_err(io_error)
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), IoError> {
        self.0.discard(offset, len).map_err(io_error)
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), IoError> {
        self.0.write_zeroes(offset, len).map_err(io_error)
    }
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), IoError> {
        self.0.read_to_data_in(offset, len, data_in_offset).map_err(io_error)
    }
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), IoError> {
        self.0.write_from_data_out(offset, len, data_out_offset).map_err(io_error)
    }
}

struct WasmTransfer;

impl Transfer for WasmTransfer {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, IoError> {
        transfer::read_data_out(offset, len).map_err(io_error)
    }
    fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), IoError> {
        transfer::write_data_in(offset, data).map_err(io_error)
    }
}

pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Error => wt::LogLevel::Error,
        LogLevel::Warn => wt::LogLevel::Warn,
        LogLevel::Info => wt::LogLevel::Info,
        LogLevel::Debug => wt::LogLevel::Debug,
        LogLevel::Trace => wt::LogLevel::Trace,
    };
    wlog::log(level, message);
}
