//! # tcmu-guest-sdk: write tcmu-wasm SCSI device handlers in plain Rust
//!
//! A handler is a type that implements [`Handler`]. The SDK turns it into a
//! WebAssembly component that the tcmu-wasm host can load (via
//! [`export_handler!`]), and the very same code compiles natively, which is
//! how the host benchmarks the sandbox tax and how handlers unit-test
//! without a wasm runtime.
//!
//! The handler sees the world only through two capabilities the host
//! grants: a [`Store`] (the device's backing store, bounded to what the
//! operator configured) and a [`Transfer`] (the data buffers of the
//! command being handled). It has no filesystem, network or environment.
//!
//! ## Building blocks
//!
//! - [`sense`]: the common sense key/ASC/ASCQ triples and fixed- or
//!   descriptor-format sense with INFORMATION and field pointer.
//! - [`scsi::opcode`] and [`scsi::cdb`]: operation codes and typed CDB
//!   decoders that fail with the right sense (INVALID FIELD IN CDB with a
//!   field pointer) on their own.
//! - [`scsi::inquiry`], [`scsi::vpd`], [`scsi::mode`], [`scsi::capacity`],
//!   [`scsi::supported`]: builders for the parameter data of INQUIRY, MODE
//!   SENSE/SELECT, READ CAPACITY and REPORT SUPPORTED OPERATION CODES.
//! - [`scsi::respond`]: send data-in cut to the allocation length.
//! - [`spc`]: the SPC layer every handler shares — unit-attention queue
//!   with SAM's bypass rules, REQUEST SENSE, sense format choice, INQUIRY
//!   with VPD 00h/80h/83h.
//! - [`sense`] also carries the stream bits (FILEMARK, EOM, ILI) and signed
//!   INFORMATION that tape residuals need.
//! - [`config`]: the `key=value` config-string convention.
//! - [`testing`]: in-memory store/cartridge, command buffers and a
//!   one-call runner, for handler unit tests and the conformance suites.
//!
//! Removable media and libraries: a drive handler implements
//! [`Handler::medium_loaded`] / [`Handler::medium_unloaded`] and reads the
//! image through the [`Cartridge`] it is given (calls fail with
//! [`MediumError::NoMedium`] once the host took the medium away), and
//! answers [`Handler::removal_requested`] when the operator asks for the
//! medium while the initiator may have locked it in; a changer keeps the [`Library`] it gets in [`Handler::library_attached`].
//!
//! A convenient shape for a handler is an `execute` method returning
//! `Result<Completion, Sense>`, so decoders and store errors propagate with
//! `?`, and a `handle` that turns the error into CHECK CONDITION.
//!
//! ## Example: a read-only disk
//!
//! A complete handler serving a read-only disk of 512-byte blocks from
//! the granted store; `handlers-wasm/file` is the full-featured version.
//!
//! ```no_run
//! use tcmu_guest_sdk::scsi::capacity::{ReadCapacity16Data, read_capacity_10_data};
//! use tcmu_guest_sdk::scsi::cdb::{Inquiry, ModeSense, ReadCapacity16, ReadWrite, RequestSense};
//! use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type::DISK};
//! use tcmu_guest_sdk::scsi::mode::{BlockDescriptor, DEVICE_SPECIFIC_WP, ModeHeader, mode_sense_data};
//! use tcmu_guest_sdk::scsi::{opcode, respond, vpd};
//! use tcmu_guest_sdk::sense::{self, Sense};
//! use tcmu_guest_sdk::{Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, Store, Transfer};
//!
//! const BLOCK: u32 = 512;
//!
//! pub struct ReadOnlyDisk {
//!     store: Box<dyn Store>,
//!     /// The serial number the host assigned (unique per device).
//!     serial: String,
//! }
//!
//! impl Handler for ReadOnlyDisk {
//!     fn describe() -> HandlerInfo {
//!         HandlerInfo::new("ro-disk", DeviceType::Disk, "read-only disk over the store")
//!     }
//!
//!     fn open(config: &str, identity: &DeviceIdentity, store: Option<Box<dyn Store>>) -> Result<Self, String> {
//!         if !config.is_empty() {
//!             return Err(format!("ro-disk takes no options, got {config:?}"));
//!         }
//!         let store = store.ok_or("ro-disk needs a backing store")?;
//!         if store.size() < u64::from(BLOCK) {
//!             return Err("the backing store holds no whole block".into());
//!         }
//!         Ok(ReadOnlyDisk { store, serial: identity.serial.clone() })
//!     }
//!
//!     fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
//!         self.execute(cmd, xfer).unwrap_or_else(Completion::from)
//!     }
//! }
//!
//! impl ReadOnlyDisk {
//!     fn blocks(&self) -> u64 {
//!         self.store.size() / u64::from(BLOCK)
//!     }
//!
//!     fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Result<Completion, Sense> {
//!         use opcode::*;
//!         match cmd.opcode() {
//!             TEST_UNIT_READY => Ok(Completion::good()),
//!             REQUEST_SENSE => {
//!                 let request = RequestSense::parse(cmd.cdb)?;
//!                 let data = sense::NO_ADDITIONAL_SENSE.fixed();
//!                 Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
//!             }
//!             INQUIRY => {
//!                 let inquiry = Inquiry::parse(cmd.cdb)?;
//!                 let data = match (inquiry.evpd, inquiry.page_code) {
//!                     (false, _) => StandardInquiry::new(DISK, "EXAMPLE", "RO DISK", "1.0").to_bytes(),
//!                     (true, vpd::page::SUPPORTED_PAGES) => vpd::supported_pages(DISK, &[0x00, 0x80]),
//!                     (true, vpd::page::UNIT_SERIAL_NUMBER) => vpd::unit_serial_number(DISK, &self.serial),
//!                     (true, _) => return Err(Sense::invalid_cdb_field(2, None)),
//!                 };
//!                 Ok(respond(xfer, cmd, &data, inquiry.allocation_length.into()))
//!             }
//!             READ_CAPACITY_10 => {
//!                 let data = read_capacity_10_data(self.blocks() - 1, BLOCK);
//!                 Ok(respond(xfer, cmd, &data, 8))
//!             }
//!             SERVICE_ACTION_IN_16 => {
//!                 let request = ReadCapacity16::parse(cmd.cdb)?;
//!                 let data = ReadCapacity16Data {
//!                     last_lba: self.blocks() - 1,
//!                     block_length: BLOCK,
//!                     ..Default::default()
//!                 };
//!                 Ok(respond(xfer, cmd, &data.to_bytes(), request.allocation_length))
//!             }
//!             MODE_SENSE_6 | MODE_SENSE_10 => {
//!                 let request = ModeSense::parse(cmd.cdb)?;
//!                 let header = ModeHeader { medium_type: 0, device_specific: DEVICE_SPECIFIC_WP };
//!                 let blocks = BlockDescriptor { blocks: self.blocks(), block_length: BLOCK };
//!                 // No mode pages: only "all pages" (0x3F) succeeds.
//!                 let data = mode_sense_data(&request, header, Some(blocks), &[])?;
//!                 Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
//!             }
//!             READ_6 | READ_10 | READ_12 | READ_16 => {
//!                 let read = ReadWrite::parse(cmd.cdb)?;
//!                 let end = read.lba.checked_add(read.blocks.into());
//!                 if end.is_none_or(|end| end > self.blocks()) {
//!                     return Err(sense::LBA_OUT_OF_RANGE.into());
//!                 }
//!                 let len = u64::from(read.blocks) * u64::from(BLOCK);
//!                 let len = u32::try_from(len).ok().filter(|&len| len <= cmd.data_in_len);
//!                 let len = len.ok_or(sense::INVALID_FIELD_IN_CDB)?;
//!                 // Zero-copy: the host moves the bytes from the store to the initiator.
//!                 let offset = read.lba * u64::from(BLOCK);
//!                 self.store.read_to_data_in(offset, len, 0).map_err(|e| e.read_sense())?;
//!                 Ok(Completion::good_with_data(len))
//!             }
//!             WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 => Err(sense::WRITE_PROTECTED.into()),
//!             _ => Err(sense::INVALID_COMMAND_OPERATION_CODE.into()),
//!         }
//!     }
//! }
//!
//! tcmu_guest_sdk::export_handler!(ReadOnlyDisk);
//! ```

#![warn(missing_docs)]

pub mod config;
mod handler;
pub mod scsi;
pub mod sense;
pub mod spc;
pub mod state;
pub mod testing;

pub use handler::*;

/// The SDK's version (`version` in its Cargo.toml).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version of the handler contract (`package tcmu:handler@…` in
/// `wit/handler.wit`) that components built with this SDK import and
/// export. Hosts load every 0.2.x component up to the newest they know
/// (docs/wit.md, "Versions").
pub const WIT_VERSION: &str = "0.2.4";

#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub mod wasm;

/// Turn a [`Handler`] into the component's exports. Call it once, at the
/// top level of the handler crate. On native targets it expands to nothing,
/// so the same crate also builds as an ordinary library.
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            type __TcmuGlue = $crate::wasm::Glue<$handler>;
    $crate::wasm::bindings::export!(__TcmuGlue with_types_in $crate::wasm::bindings);
        };
    };
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn wit_version_matches_the_contract_file() {
        let wit = include_str!("../../wit/handler.wit");
        let line = wit.lines().find(|l| l.starts_with("package ")).expect("a package line");
        assert_eq!(line, format!("package tcmu:handler@{};", super::WIT_VERSION));
    }
}
