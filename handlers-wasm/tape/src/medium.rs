//! A loaded cartridge: its image, index and the position on it, and the
//! primitive operations the commands are built from (read a record's
//! payload, append a record, truncate, rewrite the header).

use tcmu_guest_sdk::sense::{self, Sense, SenseCode, key};
use tcmu_guest_sdk::spc::readiness;
use tcmu_guest_sdk::{Cartridge, IoError, LogLevel, MediumError, MediumInfo, log};

use crate::format::{HEADER_LEN, Header, HeaderState, Index, Kind, RecordHeader};

/// BLANK CHECK, END-OF-DATA DETECTED (08/00/05).
pub const END_OF_DATA: SenseCode = SenseCode::new(key::BLANK_CHECK, 0x00, 0x05);
/// NO SENSE, FILEMARK DETECTED (00/00/01).
pub const FILEMARK_DETECTED: SenseCode = SenseCode::new(key::NO_SENSE, 0x00, 0x01);
/// NO SENSE, END-OF-PARTITION/MEDIUM DETECTED (00/00/02): early warning.
pub const EARLY_WARNING: SenseCode = SenseCode::new(key::NO_SENSE, 0x00, 0x02);
/// NO SENSE, BEGINNING-OF-PARTITION/MEDIUM DETECTED (00/00/04).
pub const BEGINNING_OF_PARTITION: SenseCode = SenseCode::new(key::NO_SENSE, 0x00, 0x04);
/// VOLUME OVERFLOW, END-OF-PARTITION/MEDIUM DETECTED (0D/00/02).
pub const VOLUME_OVERFLOW: SenseCode = SenseCode::new(key::VOLUME_OVERFLOW, 0x00, 0x02);

/// The cartridge in the drive.
pub(crate) struct Tape {
    cartridge: Box<dyn Cartridge>,
    /// What the host said about it.
    pub info: MediumInfo,
    /// Image size: the physical end of the tape.
    size: u64,
    /// The header as it is (or will be, for a blank cartridge) on the image.
    pub header: Header,
    /// The image has a header; a blank one gets it with the first write.
    formatted: bool,
    /// The image cannot be used at all; every medium command fails so.
    unusable: Option<(SenseCode, String)>,
    /// Where the records are.
    pub index: Index,
    /// Logical object number of the position: the next record to read or
    /// the place the next write goes.
    pub pos: u64,
    /// Early warning: writes that end beyond this offset report it.
    early_warning_at: u64,
    /// Writes since the last flush.
    dirty: bool,
}

impl Tape {
    /// Take a loaded cartridge: read its header and index its records. An
    /// unreadable image is still loaded (the drive holds the cartridge);
    /// its commands fail with the reason.
    pub fn load(cartridge: Box<dyn Cartridge>, info: MediumInfo, early_warning: impl Fn(u64) -> u64) -> Self {
        let size = cartridge.size().unwrap_or(0);
        let early_warning_at = size.saturating_sub(early_warning(size.saturating_sub(HEADER_LEN)));
        let mut tape = Tape {
            cartridge,
            info,
            size,
            header: Header::default(),
            formatted: false,
            unusable: None,
            index: Index::new(),
            pos: 0,
            early_warning_at,
            dirty: false,
        };
        let head = tape.cartridge.read_at(0, HEADER_LEN.min(size) as u32);
        match head.map(|bytes| Header::decode(&bytes)) {
            Ok(HeaderState::Blank) => {}
            Ok(HeaderState::Formatted(header)) => {
                tape.header = header;
                tape.formatted = true;
            }
            Ok(HeaderState::Unusable(code, why)) => tape.unusable = Some((code, why)),
            Err(e) => tape.unusable = Some((sense::UNRECOVERED_READ_ERROR, format!("reading the header: {e}"))),
        }
        if tape.unusable.is_none() {
            let cartridge = &tape.cartridge;
            match Index::scan(size, |at, len| cartridge.read_at(at, len)) {
                Ok(index) => tape.index = index,
                Err(e) => tape.unusable = Some((sense::UNRECOVERED_READ_ERROR, format!("indexing: {e}"))),
            }
        }
        if let Some((_, why)) = &tape.unusable {
            log(LogLevel::Error, &format!("cartridge {}: {why}", tape.info.barcode));
        } else if let Some(why) = tape.index.damage() {
            log(LogLevel::Error, &format!("cartridge {}: readable up to {}", tape.info.barcode, why));
        }
        tape
    }

    /// Count this load in the header (on the image, when it can be
    /// written): done when the drive threads the tape, not when a
    /// rebuilt instance takes over the same load.
    pub fn thread(&mut self) {
        self.header.load_count += 1;
        if self.formatted && self.writable().is_ok() && self.write_header().is_err() {
            log(LogLevel::Warn, "could not count the load in the cartridge header");
        }
    }

    /// Fails when the image cannot be used at all.
    pub fn usable(&self) -> Result<(), Sense> {
        match &self.unusable {
            Some((code, _)) => Err((*code).into()),
            None => Ok(()),
        }
    }

    /// Fails when writes are refused: the write-protect tab or a
    /// read-only image.
    pub fn writable(&self) -> Result<(), Sense> {
        match self.cartridge.read_only() {
            _ if self.info.write_protected => Err(sense::WRITE_PROTECTED.into()),
            Ok(true) => Err(sense::WRITE_PROTECTED.into()),
            Ok(false) => Ok(()),
            Err(e) => Err(read_failed(&e)),
        }
    }

    /// The write-protect tab, as MODE SENSE reports it.
    pub fn write_protected(&self) -> bool {
        self.info.write_protected || self.cartridge.read_only().unwrap_or(false)
    }

    /// Bytes between the start of the records and the physical end.
    pub fn capacity(&self) -> u64 {
        self.size.saturating_sub(HEADER_LEN)
    }

    /// Bytes left between end of data and the physical end.
    pub fn remaining(&self) -> u64 {
        self.size.saturating_sub(self.index.end())
    }

    /// What a read or space that reaches the end of the index reports:
    /// end of data, or that the rest cannot be read.
    pub fn end_sense(&self) -> Sense {
        match self.index.damage() {
            Some(_) => crate::format::FORMAT_CORRUPTED.into(),
            None => END_OF_DATA.into(),
        }
    }

    /// The record at the position, `None` at end of data.
    pub fn current(&self) -> Option<(Kind, u32)> {
        self.index.record(self.pos)
    }

    /// Whether the position is between early warning and the physical end.
    pub fn in_early_warning(&self) -> bool {
        self.index.offset(self.pos) > self.early_warning_at
    }

    /// Move `len` payload bytes of record `object` into the data-in buffer.
    pub fn payload_to_data_in(&self, object: u64, len: u32, data_in_offset: u32) -> Result<(), Sense> {
        let at = self.index.offset(object) + crate::format::RECORD_HEADER_LEN;
        self.cartridge.read_to_data_in(at, len, data_in_offset).map_err(|e| read_failed(&e))
    }

    /// Read `len` payload bytes of record `object` into guest memory.
    pub fn payload(&self, object: u64, len: u32) -> Result<Vec<u8>, Sense> {
        let at = self.index.offset(object) + crate::format::RECORD_HEADER_LEN;
        self.cartridge.read_at(at, len).map_err(|e| read_failed(&e))
    }

    /// Get ready to write at the position: refuse a protected or unusable
    /// cartridge, forget (and zero) everything from the position on, and
    /// give a blank cartridge its header.
    pub fn begin_write(&mut self) -> Result<(), Sense> {
        self.usable()?;
        self.writable()?;
        let stale_end = if self.index.damage().is_some() { self.size } else { self.index.end() };
        let end = self.index.truncate(self.pos);
        if stale_end > end {
            // Keep the tail zero, so what follows the new last record is
            // end of data even if the daemon dies before it is written.
            self.cartridge.discard(end, stale_end - end).map_err(|e| write_failed(&e))?;
            self.dirty = true;
        }
        if !self.formatted {
            self.write_header()?;
        }
        Ok(())
    }

    /// Whether a record of `length` payload bytes fits before the physical
    /// end (and in the index).
    pub fn fits(&self, length: u32) -> bool {
        self.index.len() < crate::format::MAX_RECORDS && self.index.end() + RecordHeader::footprint(length) <= self.size
    }

    /// Append a record at end of data (the position, after
    /// [`begin_write`](Tape::begin_write)): its payload from the data-out
    /// buffer first, then its header, so the record exists only once it
    /// is whole. Moves the position past it.
    pub fn append(&mut self, kind: Kind, length: u32, data_out_offset: u32) -> Result<(), Sense> {
        debug_assert_eq!(self.pos, self.index.len());
        let at = self.index.end();
        if length > 0 {
            let payload_at = at + crate::format::RECORD_HEADER_LEN;
            self.cartridge.write_from_data_out(payload_at, length, data_out_offset).map_err(|e| write_failed(&e))?;
        }
        let header = RecordHeader { kind, length, object: self.index.len() };
        self.cartridge.write_at(at, &header.encode()).map_err(|e| write_failed(&e))?;
        self.index.push(kind, length);
        self.pos = self.index.len();
        self.dirty = true;
        Ok(())
    }

    /// Whether end of data lies beyond early warning (after a write).
    pub fn past_early_warning(&self) -> bool {
        self.index.end() > self.early_warning_at
    }

    /// Write the header as it stands (formatting a blank cartridge).
    pub fn write_header(&mut self) -> Result<(), Sense> {
        self.cartridge.write_at(0, &self.header.encode()).map_err(|e| write_failed(&e))?;
        self.formatted = true;
        self.dirty = true;
        Ok(())
    }

    /// Make what was written durable (before motion away from it, as a
    /// drive empties its buffer).
    pub fn flush(&mut self) -> Result<(), Sense> {
        if self.dirty {
            self.cartridge.flush().map_err(|e| write_failed(&e))?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// The sense for a failed read of the image.
pub fn read_failed(e: &MediumError) -> Sense {
    match e {
        MediumError::NoMedium => readiness::MEDIUM_NOT_PRESENT.into(),
        MediumError::Io(IoError::OutOfRange) => crate::format::FORMAT_CORRUPTED.into(),
        MediumError::Io(e) => {
            log(LogLevel::Error, &format!("reading the cartridge failed: {e}"));
            e.read_sense().into()
        }
    }
}

/// The sense for a failed write of the image.
pub fn write_failed(e: &MediumError) -> Sense {
    match e {
        MediumError::NoMedium => readiness::MEDIUM_NOT_PRESENT.into(),
        MediumError::Io(e) => {
            log(LogLevel::Error, &format!("writing the cartridge failed: {e}"));
            e.write_sense().into()
        }
    }
}
