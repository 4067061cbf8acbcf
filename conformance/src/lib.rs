//! # tcmu-conformance: the SCSI conformance suite behind `tcmu-wasm check`
//!
//! The suite drives one SCSI logical unit through the [`ScsiTarget`] trait
//! and checks its answers against the T10 standards (SPC-4 for the commands
//! every device type shares, SBC-3 for disks). It knows nothing about
//! WebAssembly or TCMU: the host plugs a handler instance in behind
//! [`ScsiTarget`], and tests plug in handlers compiled natively.
//!
//! Every check asserts concrete bytes and sense codes, so each one can fail,
//! and each one that writes puts the medium back the way it found it.
//!
//! ```no_run
//! use tcmu_conformance::{disk_suite, DiskParams, ScsiTarget};
//!
//! fn check(target: &mut dyn ScsiTarget) -> bool {
//!     let params = DiskParams { size_bytes: 16 << 20, block_size: 512, read_only: false };
//!     let outcomes = disk_suite(target, &params);
//!     for outcome in &outcomes {
//!         println!("{outcome}");
//!     }
//!     outcomes.iter().all(|outcome| outcome.passed())
//! }
//! ```

#![warn(missing_docs)]

mod cdb;
mod disk;
mod expect;
mod outcome;
mod pattern;
pub mod sense;
mod target;

pub use disk::{DISK_MIN_BLOCKS, DiskParams, disk_suite};
pub use outcome::CheckOutcome;
pub use target::{Response, ScsiTarget, status_name};
