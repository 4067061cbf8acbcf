//! SCSI building blocks for handlers: operation codes, typed CDB
//! decoders, big-endian field access, and builders for the parameter data
//! of INQUIRY (standard and VPD), MODE SENSE / MODE SELECT, READ CAPACITY
//! and REPORT SUPPORTED OPERATION CODES. [`respond`] sends a reply cut to
//! the allocation length.
//!
//! Everything here is plain data in, bytes (or a [`Sense`](crate::sense::Sense)
//! to fail with) out; none of it touches the store or keeps state.

pub mod bytes;
pub mod capacity;
pub mod cdb;
pub mod inquiry;
pub mod mode;
pub mod opcode;
mod reply;
pub mod supported;
pub mod vpd;

pub use reply::respond;
