//! Typed CDB decoders.
//!
//! Each decoder takes the whole CDB and returns the fields a device server
//! acts on, or the [`Sense`] to fail the command with: INVALID FIELD IN CDB
//! (05/24/00) with a field pointer for values the standard reserves. Bits
//! the standard marks reserved are ignored rather than rejected (SPC-4
//! allows either), and fields whose meaning a handler may or may not
//! implement, such as RDPROTECT, are decoded for the handler to judge.

mod block;
pub mod changer;
mod primary;
mod provisioning;
pub mod stream;
mod unit;

pub use block::*;
pub use primary::*;
pub use provisioning::*;
pub use unit::*;
// SSC and SMC decoders stay in their modules (`cdb::stream`, `cdb::changer`):
// their opcodes overlap SBC's (08h, 2Bh) with different fields.

use crate::sense::{INVALID_FIELD_IN_CDB, Sense};

/// The first `N` bytes of `cdb`, or INVALID FIELD IN CDB when the CDB is
/// shorter than its operation code requires.
fn fixed_len<const N: usize>(cdb: &[u8]) -> Result<&[u8; N], Sense> {
    cdb.get(..N).and_then(|head| head.try_into().ok()).ok_or_else(|| Sense::from(INVALID_FIELD_IN_CDB))
}

/// The 3-bit RDPROTECT/WRPROTECT/VRPROTECT field of byte 1.
fn protect_field(byte1: u8) -> u8 {
    byte1 >> 5
}

/// Bit `bit` of byte `byte`, as a bool.
fn bit(byte: u8, bit: u8) -> bool {
    byte & (1 << bit) != 0
}
