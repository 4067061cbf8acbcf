//! # tcmu-conformance: the SCSI conformance suite behind `tcmu-wasm check`
//!
//! The suite drives one SCSI logical unit through the [`ScsiTarget`] trait
//! and checks its answers against the T10 standards (SPC-4 for the commands
//! every device type shares, SBC-3 for disks, SSC-3 for tape drives, SMC-3
//! for medium changers, MMC-6 for CD/DVD drives): [`disk_suite`],
//! [`tape_suite`] (whose target also loads and unloads the cartridge,
//! [`TapeTarget`]), [`changer_suite`] and [`optical_suite`] (whose target
//! also inserts and ejects discs, [`OpticalTarget`]: a pressed disc of
//! [`pressed_sector`]s and blank recordable ones the suite burns).
//! It knows nothing about WebAssembly or TCMU: the host plugs a handler
//! instance in behind [`ScsiTarget`], and tests plug in handlers compiled
//! natively.
//!
//! Every check asserts concrete bytes and sense codes, so each one can fail,
//! and each one that writes puts the medium back the way it found it (a
//! tape rewound and erased, a library's cartridges back in their slots, the
//! pressed disc back in the drive).
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
mod optical;
mod outcome;
mod pattern;
pub mod sense;
mod tape;
mod target;

pub use changer::{CHANGER_MIN_LAYOUT, ChangerParams, changer_suite};
pub use disk::{DISK_MIN_BLOCKS, DiskParams, disk_suite};
pub use optical::{
    DiscKind, OPTICAL_MIN_PRESSED_SECTORS, OPTICAL_MIN_RECORDABLE_SECTORS, OPTICAL_SECTOR_SIZE, OpticalParams,
    OpticalTarget, optical_suite, pressed_disc_image, pressed_sector,
};
pub use outcome::CheckOutcome;
pub use tape::{TAPE_MIN_CAPACITY, TapeParams, TapeTarget, tape_suite};
pub use target::{Response, ScsiTarget, status_name};
