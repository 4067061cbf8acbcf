//! The SSC-3 tape suite: what `tcmu-wasm check` runs for handlers that
//! describe themselves as tape drives.
//!
//! The drive starts empty; the suite loads its cartridge through
//! [`TapeTarget`] (and reloads it write-protected for the protection
//! checks). Every check after the load starts from the same state, the
//! writable cartridge threaded, nothing prevented, variable-block mode, at
//! the beginning of an erased tape, and the suite puts the drive back in it
//! afterwards (REWIND, ERASE, MODE SELECT), so the checks are independent
//! and a failing one does not drag the rest down.

mod data;
mod drive;
mod identity;
mod limits;
mod media;
mod motion;
mod pages;
mod readiness;

use drive::Drive;

use crate::common::{self, Runner};
use crate::outcome::CheckOutcome;
use crate::target::ScsiTarget;

/// A tape drive whose cartridge the suite can have loaded and unloaded, as
/// a library's robot or an operator would.
pub trait TapeTarget: ScsiTarget {
    /// Put the cartridge into the (empty) drive, with the write-protect tab
    /// set or not. It is the same cartridge every time, blank at the first
    /// load; the drive sees a new load each time.
    ///
    /// # Errors
    ///
    /// Why the cartridge could not be loaded.
    fn load(&mut self, write_protected: bool) -> Result<(), String>;

    /// Take the cartridge out of the drive, whether or not the drive
    /// unloaded it first.
    ///
    /// # Errors
    ///
    /// Why the cartridge could not be taken out.
    fn unload(&mut self) -> Result<(), String>;
}

/// The cartridge the operator gave the drive under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeParams {
    /// Bytes of tape: the size of the cartridge (image), of which the drive
    /// may spend some on its format.
    pub capacity: u64,
    /// How far before the physical end early warning begins, in bytes (the
    /// drive's configuration).
    pub early_warning: u64,
}

/// The smallest cartridge the suite can work with.
pub const TAPE_MIN_CAPACITY: u64 = 1 << 20;

/// Run the tape suite against `target` and return one outcome per check, in
/// the order they ran. The drive must be empty at the start; `target`
/// loads a blank cartridge of `params.capacity` bytes (the suite erases it
/// after every check, so reloads find it blank too).
///
/// The checks, by family: readiness (no medium, becoming ready, the unit
/// attention after a load); standard INQUIRY, VPD pages 00h, 80h, 83h and
/// B0h, REQUEST SENSE, READ BLOCK LIMITS, MODE SENSE(6/10) block
/// descriptors and MODE SELECT to fixed-block mode and back; WRITE(6) and
/// READ(6) in variable and fixed mode with every residual SSC defines
/// (short and long blocks with and without SILI, filemarks, end of data, in
/// bytes and in blocks); WRITE FILEMARKS, SPACE(6/16) over blocks,
/// filemarks and to end of data in both directions, LOCATE(10/16), READ
/// POSITION in its three forms after each motion, overwriting and ERASE;
/// early warning and VOLUME OVERFLOW; LOG SENSE, READ/WRITE ATTRIBUTE,
/// REPORT DENSITY SUPPORT and short allocation lengths; LOAD UNLOAD and
/// PREVENT ALLOW MEDIUM REMOVAL; a write-protected cartridge; invalid CDB
/// fields.
pub fn tape_suite(target: &mut dyn TapeTarget, params: &TapeParams) -> Vec<CheckOutcome> {
    if let Err(reason) = check_params(params) {
        return vec![CheckOutcome::fail("tape-parameters", reason)];
    }
    let mut drive = Drive::new(target, *params);
    common::clear_unit_attentions(&mut drive);
    let mut suite = Runner::new(drive);
    readiness::run_before_load(&mut suite);
    identity::run(&mut suite);
    data::run(&mut suite);
    motion::run(&mut suite);
    limits::run(&mut suite);
    pages::run(&mut suite);
    media::run(&mut suite);
    suite.into_outcomes()
}

fn check_params(params: &TapeParams) -> Result<(), String> {
    if params.capacity < TAPE_MIN_CAPACITY {
        return Err(format!(
            "a cartridge of {} bytes is smaller than the {TAPE_MIN_CAPACITY} the suite needs",
            params.capacity
        ));
    }
    if params.early_warning < 16 << 10 || params.early_warning > params.capacity / 2 {
        return Err(format!(
            "an early warning {} bytes before the end of a {}-byte cartridge leaves no room to test it \
             (16 KiB to half the cartridge)",
            params.early_warning, params.capacity
        ));
    }
    Ok(())
}
