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
//! ```no_run
//! use tcmu_guest_sdk::{Command, Completion, DeviceType, Handler, HandlerInfo, Store, Transfer};
//!
//! struct NullDisk;
//!
//! impl Handler for NullDisk {
//!     fn describe() -> HandlerInfo {
//!         HandlerInfo::new("null", DeviceType::Disk, "answers TEST UNIT READY")
//!     }
//!     fn open(_config: &str, _store: Option<Box<dyn Store>>) -> Result<Self, String> {
//!         Ok(NullDisk)
//!     }
//!     fn handle(&mut self, cmd: &Command<'_>, _xfer: &mut dyn Transfer) -> Completion {
//!         match cmd.opcode() {
//!             0x00 => Completion::good(),
//!             _ => Completion::check_condition(&tcmu_guest_sdk::sense::INVALID_COMMAND_OPERATION_CODE),
//!         }
//!     }
//! }
//!
//! tcmu_guest_sdk::export_handler!(NullDisk);
//! ```

#![warn(missing_docs)]

mod handler;
pub mod scsi;
pub mod sense;

pub use handler::*;

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
