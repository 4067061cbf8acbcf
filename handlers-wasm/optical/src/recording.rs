//! A recordable disc (DVD+R, one session, one track) and the commands that
//! burn it: RESERVE TRACK, WRITE(10)/(12) at the next writable address,
//! SEND OPC INFORMATION, CLOSE TRACK/SESSION.
//!
//! The image holds the data area from LBA 0, then a 4096-byte trailer
//! with the recording state (docs/optical.md, "Recordable disc image"):
//!
//! ```text
//! 0-7    magic "TCMUDVDR"
//! 8-9    format version, 1 (little-endian, as every field)
//! 10-11  reserved, 0
//! 12-15  CRC-32 of the 4096 bytes with this field zero
//! 16     disc status: 0 blank, 1 incomplete (track open), 2 complete
//! 17     1 if the track is closed
//! 18-19  reserved, 0
//! 20-23  capacity: sectors in the data area
//! 24-27  sectors recorded from LBA 0 (the next writable address)
//! 28-31  reserved track size in sectors, 0 if none was reserved
//! 32-    zeroes
//! ```
//!
//! An all-zero trailer over an all-zero start of the data area is a blank
//! disc (what `tcmu-wasm media blank` creates); the first write gives it a
//! trailer. Because the data area comes first, a burned image is also a
//! plain ISO image followed by 4 KiB. The trailer is rewritten after every
//! write and close, and flushed by SYNCHRONIZE CACHE and CLOSE; a closed
//! disc reads as written, after an eject or a daemon restart too.
//!
//! Single session: closing the session (function 2) completes the disc as
//! finalizing (5, 6) does; there is no second session to append.

use tcmu_guest_sdk::scsi::bytes::get_be32;
use tcmu_guest_sdk::scsi::cdb::ReadWrite;
use tcmu_guest_sdk::sense::{LBA_OUT_OF_RANGE, Sense, SenseCode, WRITE_PROTECTED, key};
use tcmu_guest_sdk::{Command, Completion};

use crate::disc::{SECTOR, medium_failed};
use crate::{OpticalDrive, Outcome};

/// Bytes of the trailer at the end of a recordable image.
pub const TRAILER: u64 = 4096;
const MAGIC: &[u8; 8] = b"TCMUDVDR";
const VERSION: u16 = 1;
/// Bytes at the start of the data area that must be zero for an image
/// without a trailer to count as blank (an ISO's volume descriptors live
/// at 32 KiB, so a written image never passes).
pub const BLANK_PROBE: u32 = 64 * 1024;
/// A DVD's ECC block: reserved tracks are rounded up to it.
const ECC_BLOCK: u32 = 16;

/// ILLEGAL REQUEST, INVALID ADDRESS FOR WRITE.
pub const INVALID_ADDRESS_FOR_WRITE: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x21, 0x02);
/// ILLEGAL REQUEST, COMMAND SEQUENCE ERROR.
pub const COMMAND_SEQUENCE_ERROR: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x2c, 0x00);
/// ILLEGAL REQUEST, CANNOT WRITE MEDIUM - INCOMPATIBLE FORMAT (a pressed disc).
pub const CANNOT_WRITE_INCOMPATIBLE: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x30, 0x05);
/// NOT READY, LOGICAL UNIT NOT READY, OPERATION IN PROGRESS.
pub const OPERATION_IN_PROGRESS: SenseCode = SenseCode::new(key::NOT_READY, 0x04, 0x07);

/// Commands that report "operation in progress" after an immediate close,
/// as a drive busy writing the lead-out does.
pub const CLOSE_POLLS: u8 = 2;

/// Where a recordable disc stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing recorded.
    Blank,
    /// Recorded, the session still open.
    Incomplete,
    /// Closed: reads as written, takes no more writes.
    Complete,
}

/// The recording state of a recordable disc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Sectors in the data area.
    pub capacity: u32,
    pub status: Status,
    /// Sectors recorded from LBA 0: the next writable address.
    pub written: u32,
    /// RESERVE TRACK's size, 0 if none.
    pub reserved: u32,
    /// CLOSE TRACK happened.
    pub track_closed: bool,
}

impl Recording {
    /// A blank disc of `capacity` sectors.
    pub fn blank(capacity: u32) -> Self {
        Self { capacity, status: Status::Blank, written: 0, reserved: 0, track_closed: false }
    }

    /// Where the open track ends: its reservation, else the disc's end.
    pub fn track_end(&self) -> u32 {
        if self.reserved > 0 { self.reserved } else { self.capacity }
    }

    /// Sectors the open track can still take.
    pub fn free(&self) -> u32 {
        match self.status {
            Status::Complete => 0,
            _ if self.track_closed => 0,
            _ => self.track_end() - self.written,
        }
    }

    /// The trailer bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; TRAILER as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[16] = match self.status {
            Status::Blank => 0,
            Status::Incomplete => 1,
            Status::Complete => 2,
        };
        b[17] = u8::from(self.track_closed);
        b[20..24].copy_from_slice(&self.capacity.to_le_bytes());
        b[24..28].copy_from_slice(&self.written.to_le_bytes());
        b[28..32].copy_from_slice(&self.reserved.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Read a trailer: `Ok(None)` if it is not one (no magic), an error if
    /// it claims to be one but is damaged or does not fit `capacity`.
    pub fn decode(b: &[u8], capacity: u32) -> Result<Option<Self>, String> {
        if b.len() != TRAILER as usize || &b[..8] != MAGIC {
            return Ok(None);
        }
        let le32 = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(format!("recordable disc format version {version} is not {VERSION}"));
        }
        let mut zeroed = b.to_vec();
        zeroed[12..16].fill(0);
        if crc32fast::hash(&zeroed) != le32(12) {
            return Err("the recordable disc's trailer fails its CRC".into());
        }
        let status = match b[16] {
            0 => Status::Blank,
            1 => Status::Incomplete,
            2 => Status::Complete,
            s => return Err(format!("the recordable disc's trailer has status {s}")),
        };
        let r = Self { capacity: le32(20), status, written: le32(24), reserved: le32(28), track_closed: b[17] != 0 };
        let consistent = r.capacity == capacity
            && r.reserved <= r.capacity
            && r.written <= r.track_end()
            && (r.status == Status::Blank) == (r.written == 0);
        if !consistent {
            return Err(format!(
                "the recordable disc's trailer does not fit its image ({} sectors recorded of {}, {} reserved, image \
                 holds {capacity})",
                r.written, r.capacity, r.reserved
            ));
        }
        Ok(Some(r))
    }
}

impl OpticalDrive {
    /// The recording of the disc, ready for a write: a pressed disc or a
    /// write-protected grant refuse.
    fn writable_recording(&mut self) -> Result<(), Sense> {
        let disc = self.ready_disc()?;
        if disc.recording.is_none() {
            return Err(CANNOT_WRITE_INCOMPATIBLE.into());
        }
        if disc.info.write_protected {
            return Err(WRITE_PROTECTED.into());
        }
        Ok(())
    }

    /// WRITE(10)/(12): sequential recording at the next writable address.
    pub(crate) fn write(&mut self, cmd: &Command<'_>) -> Outcome {
        let rw = ReadWrite::parse(cmd.cdb)?;
        self.writable_recording()?;
        let disc = self.disc.as_mut().expect("checked ready");
        let r = disc.recording.as_ref().expect("checked recordable");
        if r.status == Status::Complete || r.track_closed {
            return Err(Sense::from(INVALID_ADDRESS_FOR_WRITE).with_information(rw.lba));
        }
        if rw.lba != u64::from(r.written) {
            return Err(Sense::from(INVALID_ADDRESS_FOR_WRITE).with_information(rw.lba));
        }
        if rw.blocks == 0 {
            return Ok(Completion::good());
        }
        if u64::from(r.written) + u64::from(rw.blocks) > u64::from(r.track_end()) {
            return Err(Sense::from(LBA_OUT_OF_RANGE).with_information(rw.lba));
        }
        let len = u64::from(rw.blocks) * u64::from(SECTOR);
        if len > u64::from(cmd.data_out_len) {
            return Err(Sense::invalid_cdb_field(7, None));
        }
        disc.write_from_data_out(rw.lba as u32, rw.blocks)?;
        let r = disc.recording.as_mut().expect("checked recordable");
        r.written += rw.blocks;
        r.status = Status::Incomplete;
        disc.save_recording(false)?;
        Ok(Completion::good())
    }

    /// RESERVE TRACK (ARSV 0): a track of the given size, rounded up to an
    /// ECC block, on a blank disc.
    pub(crate) fn reserve_track(&mut self, cmd: &Command<'_>) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        if cdb[1] & 0x01 != 0 {
            // Reserving by logical track address is for multi-track discs.
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let size = get_be32(&cdb[5..]);
        self.writable_recording()?;
        let disc = self.disc.as_mut().expect("checked ready");
        let r = disc.recording.as_mut().expect("checked recordable");
        if r.status != Status::Blank || r.reserved != 0 {
            return Err(COMMAND_SEQUENCE_ERROR.into());
        }
        let rounded = size.div_ceil(ECC_BLOCK).saturating_mul(ECC_BLOCK);
        if size == 0 || rounded > r.capacity {
            return Err(Sense::invalid_cdb_field(5, None));
        }
        r.reserved = rounded;
        disc.save_recording(false)?;
        Ok(Completion::good())
    }

    /// SEND OPC INFORMATION: the power calibration a real drive runs
    /// before burning. Nothing to calibrate here; a pressed disc refuses.
    pub(crate) fn send_opc(&mut self, cmd: &Command<'_>) -> Outcome {
        if cmd.cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let disc = self.ready_disc()?;
        if disc.recording.is_none() {
            return Err(CANNOT_WRITE_INCOMPATIBLE.into());
        }
        Ok(Completion::good())
    }

    /// CLOSE TRACK/SESSION: function 1 closes the track, 2 the session, 5
    /// and 6 finalize the disc (this single-session disc is complete after
    /// any of 2, 5, 6). With Immed the command returns at once and the next
    /// commands report "operation in progress", as a drive writing its
    /// lead-out does.
    pub(crate) fn close_track_session(&mut self, cmd: &Command<'_>) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let immediate = cdb[1] & 0x01 != 0;
        let function = cdb[2] & 0x07;
        let track = u16::from_be_bytes([cdb[4], cdb[5]]);
        self.writable_recording()?;
        let disc = self.disc.as_mut().expect("checked ready");
        let r = disc.recording.as_mut().expect("checked recordable");
        match function {
            0x01 => {
                if !matches!(track, 1 | 0xff) {
                    return Err(Sense::invalid_cdb_field(4, None));
                }
                match r.status {
                    Status::Blank => return Err(COMMAND_SEQUENCE_ERROR.into()),
                    Status::Complete => {}
                    Status::Incomplete => r.track_closed = true,
                }
            }
            0x02 | 0x05 | 0x06 => match r.status {
                Status::Blank => return Err(COMMAND_SEQUENCE_ERROR.into()),
                Status::Complete => {}
                Status::Incomplete => {
                    r.track_closed = true;
                    r.status = Status::Complete;
                }
            },
            _ => return Err(Sense::invalid_cdb_field(2, Some(0))),
        }
        disc.save_recording(true)?;
        if immediate {
            self.busy = CLOSE_POLLS;
        }
        Ok(Completion::good())
    }

    /// SYNCHRONIZE CACHE: make what was recorded durable.
    pub(crate) fn synchronize_cache(&mut self) -> Outcome {
        let disc = self.ready_disc()?;
        if disc.recording.is_some() && !disc.info.write_protected {
            disc.flush()?;
        }
        Ok(Completion::good())
    }
}

/// The opcodes of recording, for the dispatcher.
pub(crate) mod opcode {
    pub const RESERVE_TRACK: u8 = 0x53;
    pub const SEND_OPC_INFORMATION: u8 = 0x54;
    pub const CLOSE_TRACK_SESSION: u8 = 0x5b;
}

/// A failed trailer or data write.
pub(crate) fn write_failed(e: tcmu_guest_sdk::MediumError, lba: u32) -> Sense {
    medium_failed(e, lba, tcmu_guest_sdk::sense::WRITE_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_round_trip_and_damage_is_caught() {
        let r = Recording { capacity: 1000, status: Status::Incomplete, written: 48, reserved: 0, track_closed: false };
        let b = r.encode();
        assert_eq!(Recording::decode(&b, 1000), Ok(Some(r.clone())));
        assert_eq!(Recording::decode(&vec![0u8; 4096], 1000), Ok(None), "no magic: not a trailer");
        let mut bad = b.clone();
        bad[24] ^= 1;
        assert!(Recording::decode(&bad, 1000).unwrap_err().contains("CRC"));
        assert!(Recording::decode(&b, 999).unwrap_err().contains("does not fit"));
        let mut later = r.encode();
        later[8] = 2;
        assert!(Recording::decode(&later, 1000).unwrap_err().contains("version 2"));
    }

    #[test]
    fn free_space_follows_the_reservation_and_the_close() {
        let mut r = Recording::blank(2000);
        assert_eq!(r.free(), 2000);
        r.reserved = 320;
        r.written = 100;
        r.status = Status::Incomplete;
        assert_eq!((r.track_end(), r.free()), (320, 220));
        r.track_closed = true;
        assert_eq!(r.free(), 0);
    }
}
