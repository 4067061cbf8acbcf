//! # tcmu-conformance: the SCSI conformance suite behind `tcmu-wasm check`
//!
//! The suite drives one SCSI logical unit through the [`ScsiTarget`] trait
//! and checks its answers against the T10 standards (SPC-4 for the commands
//! every device type shares, SBC-3 for disks, SSC-3 for tape drives, SMC-3
//! for medium changers): [`disk_suite`], [`tape_suite`] (whose target also
//! loads and unloads the cartridge, [`TapeTarget`]) and [`changer_suite`].
//! It knows nothing about WebAssembly or TCMU: the host plugs a handler
//! instance in behind [`ScsiTarget`], and tests plug in handlers compiled
//! natively.
//!
//! Every check asserts concrete bytes and sense codes, so each one can fail,
//! and each one that writes puts the medium back the way it found it (a
//! tape rewound and erased, a library's cartridges back in their slots).
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
mod changer;
mod common;
mod disk;
mod expect;
mod outcome;
mod pattern;
pub mod sense;
mod tape;
mod target;

pub use changer::{CHANGER_MIN_LAYOUT, ChangerParams, changer_suite};
pub use disk::{DISK_MIN_BLOCKS, DiskParams, disk_suite};
pub use outcome::CheckOutcome;
pub use tape::{TAPE_MIN_CAPACITY, TapeParams, TapeTarget, tape_suite};
pub use target::{Response, ScsiTarget, status_name};
