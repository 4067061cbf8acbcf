//! The disc in the drive: a host-granted image of 2048-byte sectors (an
//! ISO 9660 or UDF image, as `xorriso`, `genisoimage` or `dd` of a real
//! disc make them), read as a pressed DVD-ROM with one session and one
//! data track.

use tcmu_guest_sdk::sense::{self, Sense, SenseCode, UNRECOVERED_READ_ERROR};
use tcmu_guest_sdk::{Cartridge, LogLevel, MediumError, MediumInfo, log};

/// Bytes per logical block of a data disc (Mode 1 / DVD sectors).
pub const SECTOR: u32 = 2048;

/// The sense of a read through a grant the host revoked: the disc is gone.
const NO_DISC: SenseCode = sense::MEDIUM_NOT_PRESENT;

/// A loaded disc.
pub(crate) struct Disc {
    image: Box<dyn Cartridge>,
    /// Whole sectors in the image (a trailing partial sector is ignored).
    blocks: u32,
    /// What the host said about it.
    pub info: MediumInfo,
}

impl Disc {
    /// Take over a granted image. An empty image, one too large for
    /// READ CAPACITY(10)'s 32-bit LBAs, or one whose size cannot be read is
    /// refused: the drive stays empty.
    pub fn load(image: Box<dyn Cartridge>, info: MediumInfo) -> Result<Self, String> {
        let size = image.size().map_err(|e| format!("disc image size: {e}"))?;
        let blocks = size / u64::from(SECTOR);
        if blocks == 0 {
            return Err(format!(
                "the disc image holds {size} bytes, less than one {SECTOR}-byte sector (blank recordable discs are not supported yet)"
            ));
        }
        let blocks = u32::try_from(blocks).map_err(|_| format!("the disc image is too large ({size} bytes)"))?;
        if size % u64::from(SECTOR) != 0 {
            log(LogLevel::Warn, &format!("disc image of {size} bytes: the last partial sector is not readable"));
        }
        Ok(Self { image, blocks, info })
    }

    /// Readable sectors.
    pub fn blocks(&self) -> u32 {
        self.blocks
    }

    /// Move sectors `lba..lba + count` into the command's data-in buffer.
    /// The range was checked by the caller.
    pub fn read_to_data_in(&self, lba: u32, count: u32) -> Result<(), Sense> {
        debug_assert!(u64::from(lba) + u64::from(count) <= u64::from(self.blocks));
        let offset = u64::from(lba) * u64::from(SECTOR);
        let len = count * SECTOR;
        self.image.read_to_data_in(offset, len, 0).map_err(|e| read_failed(e, lba))
    }
}

/// A failed read: the disc went away (NOT READY), or the image failed
/// (MEDIUM ERROR at the first block, as a real drive reports an
/// unreadable sector).
fn read_failed(e: MediumError, lba: u32) -> Sense {
    match e {
        MediumError::NoMedium => NO_DISC.into(),
        MediumError::Io(e) => {
            log(LogLevel::Error, &format!("reading the disc image at sector {lba} failed: {e}"));
            Sense::from(UNRECOVERED_READ_ERROR).with_information(u64::from(lba))
        }
    }
}
