//! The disc in the drive: a host-granted image of 2048-byte sectors. An
//! image without a recording trailer (an ISO 9660 or UDF image, as
//! `xorriso`, `genisoimage` or `dd` of a real disc make them) reads as a
//! pressed DVD-ROM with one session and one data track. A recordable image
//! (see `recording.rs`) is a DVD+R: blank, being written, or complete.

use tcmu_guest_sdk::sense::{self, Sense, SenseCode, UNRECOVERED_READ_ERROR};
use tcmu_guest_sdk::{Cartridge, LogLevel, MediumError, MediumInfo, log};

use crate::recording::{BLANK_PROBE, Recording, TRAILER, write_failed};

/// Bytes per logical block of a data disc (Mode 1 / DVD sectors).
pub const SECTOR: u32 = 2048;

/// The sense of a read through a grant the host revoked: the disc is gone.
const NO_DISC: SenseCode = sense::MEDIUM_NOT_PRESENT;

/// Smallest recordable disc: a few ECC blocks.
const MIN_RECORDABLE_SECTORS: u64 = 64;

/// A loaded disc.
pub(crate) struct Disc {
    image: Box<dyn Cartridge>,
    /// A pressed disc's whole sectors (a trailing partial sector is
    /// ignored); a recordable disc's data area.
    area: u32,
    /// What the host said about it.
    pub info: MediumInfo,
    /// A recordable disc's state; `None` for a pressed disc.
    pub recording: Option<Recording>,
}

impl Disc {
    /// Take over a granted image. An empty image, one too large for
    /// READ CAPACITY(10)'s 32-bit LBAs, one whose size cannot be read, or a
    /// recordable image with a damaged trailer is refused: the drive stays
    /// empty and the operator hears why.
    pub fn load(image: Box<dyn Cartridge>, info: MediumInfo) -> Result<Self, String> {
        let size = image.size().map_err(|e| format!("disc image size: {e}"))?;
        if let Some(disc) = Self::recordable(&*image, size, &info)? {
            let recording = Some(disc);
            let area = recording.as_ref().map_or(0, |r| r.capacity);
            return Ok(Self { image, area, info, recording });
        }
        let blocks = size / u64::from(SECTOR);
        if blocks == 0 {
            return Err(format!("the disc image holds {size} bytes, less than one {SECTOR}-byte sector"));
        }
        let blocks = u32::try_from(blocks).map_err(|_| format!("the disc image is too large ({size} bytes)"))?;
        if size % u64::from(SECTOR) != 0 {
            log(LogLevel::Warn, &format!("disc image of {size} bytes: the last partial sector is not readable"));
        }
        Ok(Self { image, area: blocks, info, recording: None })
    }

    /// The recording state of an image that has a trailer, or of a blank
    /// one granted writable; `None` for a pressed disc.
    fn recordable(image: &dyn Cartridge, size: u64, info: &MediumInfo) -> Result<Option<Recording>, String> {
        if size < TRAILER + MIN_RECORDABLE_SECTORS * u64::from(SECTOR) {
            return Ok(None);
        }
        let capacity = u32::try_from((size - TRAILER) / u64::from(SECTOR))
            .map_err(|_| format!("the disc image is too large ({size} bytes)"))?;
        let trailer =
            image.read_at(size - TRAILER, TRAILER as u32).map_err(|e| format!("reading the disc image: {e}"))?;
        if let Some(recording) = Recording::decode(&trailer, capacity)? {
            return Ok(Some(recording));
        }
        if info.write_protected || trailer.iter().any(|&b| b != 0) {
            return Ok(None);
        }
        // No trailer yet: blank only if nothing was ever written at the
        // start either (an ISO granted writable by mistake stays a pressed
        // disc and is never overwritten).
        let start = image.read_at(0, BLANK_PROBE).map_err(|e| format!("reading the disc image: {e}"))?;
        if start.iter().any(|&b| b != 0) {
            log(
                LogLevel::Warn,
                "a writable disc image with data and no recording trailer: reading it as a pressed disc",
            );
            return Ok(None);
        }
        Ok(Some(Recording::blank(capacity)))
    }

    /// Readable sectors: a pressed disc's all, a recordable one's recorded.
    pub fn blocks(&self) -> u32 {
        match &self.recording {
            Some(r) => r.written,
            None => self.area,
        }
    }

    /// Move sectors `lba..lba + count` into the command's data-in buffer.
    /// The range was checked by the caller.
    pub fn read_to_data_in(&self, lba: u32, count: u32) -> Result<(), Sense> {
        debug_assert!(u64::from(lba) + u64::from(count) <= u64::from(self.blocks()));
        let offset = u64::from(lba) * u64::from(SECTOR);
        let len = count * SECTOR;
        self.image.read_to_data_in(offset, len, 0).map_err(|e| medium_failed(e, lba, UNRECOVERED_READ_ERROR))
    }

    /// Record sectors `lba..lba + count` from the command's data-out.
    pub fn write_from_data_out(&self, lba: u32, count: u32) -> Result<(), Sense> {
        let offset = u64::from(lba) * u64::from(SECTOR);
        self.image.write_from_data_out(offset, count * SECTOR, 0).map_err(|e| write_failed(e, lba))
    }

    /// Write the recording trailer (and with `durable`, flush the image).
    pub fn save_recording(&self, durable: bool) -> Result<(), Sense> {
        let Some(r) = &self.recording else { return Ok(()) };
        let offset = u64::from(self.area) * u64::from(SECTOR);
        self.image.write_at(offset, &r.encode()).map_err(|e| write_failed(e, r.written))?;
        if durable { self.flush() } else { Ok(()) }
    }

    /// Make what was written durable.
    pub fn flush(&self) -> Result<(), Sense> {
        self.image.flush().map_err(|e| write_failed(e, self.blocks()))
    }
}

/// A failed medium access: the disc went away (NOT READY), or the image
/// failed (MEDIUM ERROR `code` at the first block, as a real drive reports
/// an unreadable or unwritable sector).
pub(crate) fn medium_failed(e: MediumError, lba: u32, code: SenseCode) -> Sense {
    match e {
        MediumError::NoMedium => NO_DISC.into(),
        MediumError::Io(e) => {
            log(LogLevel::Error, &format!("disc image access at sector {lba} failed: {e}"));
            Sense::from(code).with_information(u64::from(lba))
        }
    }
}
