//! The MMC-6 optical suite: what `tcmu-wasm check` runs for handlers that
//! describe themselves as CD/DVD drives (peripheral device type 05h).
//!
//! The drive starts empty with its tray closed; the suite has discs put in
//! and taken out through [`OpticalTarget`], as an operator would: a pressed
//! DVD-ROM whose every sector the suite can recognize
//! ([`pressed_sector`]), and fresh blank DVD+R discs that the recording
//! checks burn, close and re-insert. Every check after the first insertion
//! starts from the same state, the pressed disc in, the tray closed, the
//! drive ready with no unit attention or media event pending and nothing
//! prevented, and the suite puts the drive back in it afterwards, so the
//! checks are independent and a failing one does not drag the rest down.
//!
//! What is checked is what the standard says and what Linux's sr driver
//! and cdrom layer, udev's `cdrom_id`, growisofs, libburn and
//! dvd+rw-mediainfo rely on; the optical handler is one implementation of
//! it, not the definition.

mod configuration;
mod drive;
mod events;
mod identity;
mod layout;
mod pages;
mod readiness;
mod recording;
mod tray;

use drive::Drive;

use crate::common::{self, Runner};
use crate::outcome::CheckOutcome;
use crate::pattern;
use crate::target::ScsiTarget;

/// Bytes in a logical block of a data CD or DVD (Mode 1 / DVD sectors).
pub const OPTICAL_SECTOR_SIZE: u32 = 2048;

/// The smallest pressed disc the suite can work with, in sectors.
pub const OPTICAL_MIN_PRESSED_SECTORS: u32 = 64;
/// The smallest blank recordable disc the suite can work with, in sectors:
/// room for a reservation of 112 sectors and the writes around it.
pub const OPTICAL_MIN_RECORDABLE_SECTORS: u32 = 256;

/// Tag of the cells of a pressed disc's sectors (see [`pressed_sector`]).
const PRESSED_TAG: u8 = 0xD5;

/// A disc the suite asks the operator to put into the drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscKind {
    /// A pressed DVD-ROM: a read-only image of `sectors` 2048-byte sectors,
    /// sector `n` holding [`pressed_sector`]`(n)`. The same contents every
    /// time.
    Pressed {
        /// Sectors on the disc.
        sectors: u32,
    },
    /// A new blank recordable disc (DVD+R) of `sectors` sectors, granted
    /// writable: for the optical handler, an all-zero image of `sectors`
    /// × 2048 bytes followed by its 4096-byte recording trailer (what
    /// `tcmu-wasm media blank` creates).
    BlankRecordable {
        /// Sectors in the data area.
        sectors: u32,
    },
    /// The recordable disc inserted last, exactly as the drive left it
    /// when it came out (the operator putting a burned or half-burned
    /// disc back in).
    SameRecordable,
}

/// An optical drive whose disc the suite can have changed, as an operator
/// at the drive (or `tcmu-wasm ctl media`) would.
pub trait OpticalTarget: ScsiTarget {
    /// Put `disc` into the drive, which the suite has emptied first. The
    /// drive sees a new disc each time.
    ///
    /// # Errors
    ///
    /// Why the disc could not be put in (the target cannot make it, or the
    /// drive refused it).
    fn insert(&mut self, disc: DiscKind) -> Result<(), String>;

    /// Take the disc out, as the operator pressing the eject button would:
    /// unless `force`, the drive is asked first and may refuse while the
    /// initiator prevents medium removal (PREVENT ALLOW MEDIUM REMOVAL);
    /// with `force` the disc comes out regardless. An empty drive is fine.
    ///
    /// # Errors
    ///
    /// The drive refused an unforced eject (the disc stays in), or the disc
    /// could not be taken out.
    fn eject(&mut self, force: bool) -> Result<(), String>;
}

/// The discs the suite has the target make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpticalParams {
    /// Sectors on the pressed disc ([`DiscKind::Pressed`]).
    pub pressed_sectors: u32,
    /// Sectors on each blank recordable disc ([`DiscKind::BlankRecordable`]).
    pub recordable_sectors: u32,
}

/// The contents of sector `lba` of the pressed disc: 16-byte cells that
/// each carry a tag, the LBA and the cell's offset, so a sector read from
/// the wrong place, torn or shifted shows as a mismatch naming the LBA.
#[must_use]
pub fn pressed_sector(lba: u32) -> Vec<u8> {
    pattern::blocks(u64::from(lba), 1, OPTICAL_SECTOR_SIZE, PRESSED_TAG)
}

/// The whole pressed disc of `sectors` sectors, for targets that build its
/// image in one piece.
#[must_use]
pub fn pressed_disc_image(sectors: u32) -> Vec<u8> {
    pattern::blocks(0, sectors, OPTICAL_SECTOR_SIZE, PRESSED_TAG)
}

/// Run the optical suite against `target` and return one outcome per
/// check, in the order they ran. The drive must be empty, with its tray
/// closed, at the start; it ends with the pressed disc in.
///
/// The checks, by family: the empty drive (NOT READY, MEDIUM NOT PRESENT -
/// TRAY CLOSED, no current profile) and a disc arriving (one UNIT
/// ATTENTION 28/00 among any BECOMING READYs, which GET CONFIGURATION and
/// GET EVENT STATUS NOTIFICATION leave pending); standard INQUIRY (peripheral type
/// 05h, removable), VPD pages 00h, 80h, 83h, REQUEST SENSE, short
/// allocation lengths; GET EVENT STATUS NOTIFICATION's media events across
/// insertions, operator ejects and swaps; START STOP UNIT eject and load,
/// PREVENT ALLOW MEDIUM REMOVAL against it and against the operator, a
/// forced eject, MECHANISM STATUS; GET CONFIGURATION (RT 0, 1, 2, the
/// profile list and the features the profiles need, their current bits
/// with and without a disc); MODE SENSE pages 01h, 1Ah, 1Dh and 2Ah; READ
/// CAPACITY, READ(10)/(12) of the pressed disc, READ TOC/PMA/ATIP formats
/// 0, 1 and 2 in LBA and MSF form, READ DISC INFORMATION, READ TRACK
/// INFORMATION, READ DVD STRUCTURE; recording a blank DVD+R (writes only
/// at the next writable address, RESERVE TRACK, CLOSE TRACK with Immed,
/// CLOSE SESSION, the disc taken out and put back in); invalid CDB fields.
pub fn optical_suite(target: &mut dyn OpticalTarget, params: &OpticalParams) -> Vec<CheckOutcome> {
    if let Err(reason) = check_params(params) {
        return vec![CheckOutcome::fail("optical-parameters", reason)];
    }
    let mut drive = Drive::new(target, *params);
    common::clear_unit_attentions(&mut drive);
    let mut suite = Runner::new(drive);
    readiness::run_empty(&mut suite);
    identity::run_empty(&mut suite);
    events::run_empty(&mut suite);
    configuration::run_empty(&mut suite);
    tray::run_empty(&mut suite);
    readiness::run(&mut suite);
    identity::run(&mut suite);
    events::run(&mut suite);
    tray::run(&mut suite);
    configuration::run(&mut suite);
    pages::run(&mut suite);
    layout::run(&mut suite);
    recording::run(&mut suite);
    suite.into_outcomes()
}

fn check_params(params: &OpticalParams) -> Result<(), String> {
    if params.pressed_sectors < OPTICAL_MIN_PRESSED_SECTORS {
        return Err(format!(
            "a pressed disc of {} sectors is smaller than the {OPTICAL_MIN_PRESSED_SECTORS} the suite needs",
            params.pressed_sectors
        ));
    }
    if params.recordable_sectors < OPTICAL_MIN_RECORDABLE_SECTORS {
        return Err(format!(
            "a recordable disc of {} sectors is smaller than the {OPTICAL_MIN_RECORDABLE_SECTORS} the suite needs",
            params.recordable_sectors
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressed_sectors_differ_and_the_image_is_their_concatenation() {
        assert_eq!(pressed_sector(3).len(), OPTICAL_SECTOR_SIZE as usize);
        assert_ne!(pressed_sector(3), pressed_sector(4));
        let image = pressed_disc_image(5);
        assert_eq!(&image[4 * 2048..], &pressed_sector(4)[..]);
    }

    #[test]
    fn too_small_discs_fail_the_parameters() {
        let ok = OpticalParams { pressed_sectors: 64, recordable_sectors: 256 };
        assert!(check_params(&ok).is_ok());
        assert!(check_params(&OpticalParams { pressed_sectors: 63, ..ok }).is_err());
        assert!(check_params(&OpticalParams { recordable_sectors: 255, ..ok }).is_err());
    }
}
