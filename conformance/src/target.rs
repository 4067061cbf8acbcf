//! The device under test, as the suite sees it.

use std::fmt;

use crate::sense::Sense;

/// SCSI status GOOD.
pub(crate) const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION.
pub(crate) const STATUS_CHECK_CONDITION: u8 = 0x02;

/// What the suite talks to: one SCSI logical unit.
pub trait ScsiTarget {
    /// Run one command. `data_out` is sent to the device; up to
    /// `data_in_len` bytes may come back.
    ///
    /// # Errors
    ///
    /// A transport failure (not a SCSI status): the command never reached
    /// the device or its completion never came back.
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String>;

    /// Change the device's size as an operator would (TCMU RECONFIG
    /// `dev_size`). Targets that cannot do this keep the default, which
    /// makes the suite skip its resize checks.
    ///
    /// # Errors
    ///
    /// Why the size could not be changed.
    fn resize(&mut self, _new_size: u64) -> Result<(), String> {
        Err("resize not supported".into())
    }
}

/// How one command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// SCSI status byte (0x00 GOOD, 0x02 CHECK CONDITION, ...).
    pub status: u8,
    /// Sense data (fixed or descriptor format); empty unless CHECK CONDITION.
    pub sense: Vec<u8>,
    /// Exactly the data-in bytes the device returned.
    pub data_in: Vec<u8>,
}

impl Response {
    /// Decode [`Response::sense`].
    ///
    /// # Errors
    ///
    /// [`DecodeError`](crate::sense::DecodeError) when the sense bytes are
    /// empty or malformed.
    pub fn decoded_sense(&self) -> Result<Sense, crate::sense::DecodeError> {
        Sense::decode(&self.sense)
    }
}

/// Shows the status the way check failures report it: `GOOD`, or
/// `CHECK CONDITION 05/24/00`, or the status name for other statuses.
impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match status_name(self.status) {
            Some(name) => f.write_str(name)?,
            None => write!(f, "status 0x{:02X}", self.status)?,
        }
        if self.status == STATUS_CHECK_CONDITION {
            match self.decoded_sense() {
                Ok(sense) => write!(f, " {}", sense.code)?,
                Err(e) => write!(f, " ({e})")?,
            }
        }
        Ok(())
    }
}

/// The SAM-5 name of a status byte, if it has one.
#[must_use]
pub fn status_name(status: u8) -> Option<&'static str> {
    Some(match status {
        STATUS_GOOD => "GOOD",
        STATUS_CHECK_CONDITION => "CHECK CONDITION",
        0x04 => "CONDITION MET",
        0x08 => "BUSY",
        0x18 => "RESERVATION CONFLICT",
        0x28 => "TASK SET FULL",
        0x30 => "ACA ACTIVE",
        0x40 => "TASK ABORTED",
        _ => return None,
    })
}
