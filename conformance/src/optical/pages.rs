//! MODE SENSE of an MMC drive (MMC-6, and MMC-3's page 2Ah, which it
//! still carries): the MM capabilities and mechanical status page 2Ah,
//! from which Linux's sr driver learns that the drive reads DVDs, what it
//! writes, and that its tray ejects and locks (without the page sr masks
//! DVD support and dvd+rw-mediainfo says "not a DVD unit"); the pages
//! MMC-6 requires (01h read/write error recovery, 1Ah power condition, 1Dh
//! timeout and protect); an unsupported page.

use super::drive::{Drive, MODE_ALLOC, profile};
use crate::common::{self, Lun, Runner};
use crate::expect::{self, ensure};
use crate::sense;

/// MM capabilities and mechanical status page.
pub(crate) const CAPABILITIES: u8 = 0x2A;
/// Byte 6 of page 2Ah: Lock State (the drive is prevented).
pub(crate) const LOCK_STATE: u8 = 0x02;
/// Byte 6 of page 2Ah: Lock (the drive can lock) and Eject (it can eject
/// by command); bits 7-5 the loading mechanism type.
const LOCK: u8 = 0x01;
const EJECT: u8 = 0x08;
/// Byte 2 of page 2Ah: DVD-ROM Read.
const DVD_ROM_READ: u8 = 0x08;
/// Byte 3 of page 2Ah, the write bits, and the profile each claims.
const WRITE_BITS: [(u8, u16, &str); 4] = [
    (0x01, profile::CD_R, "CD-R Write"),
    (0x02, profile::CD_RW, "CD-RW Write"),
    (0x10, profile::DVD_R, "DVD-R Write"),
    (0x20, profile::DVD_RAM, "DVD-RAM Write"),
];
/// The Removable Medium feature (0003h) whose bits page 2Ah repeats.
const REMOVABLE_MEDIUM: u16 = 0x0003;

/// Read/write error recovery, power condition and timeout and protect.
const READ_WRITE_ERROR_RECOVERY: u8 = 0x01;
const POWER_CONDITION: u8 = 0x1A;
const TIMEOUT_AND_PROTECT: u8 = 0x1D;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("mode-sense.capabilities-page", check_capabilities);
    suite.check("mode-sense.capabilities-page-in-mode-sense6", |drive| {
        let ten = drive.mode_page(CAPABILITIES)?;
        let data = drive.execute_good(&common::mode_sense6(0, CAPABILITIES, 0xFF), &[], 0xFF)?;
        let pages = common::mode_pages(&data, false)?;
        let (_, six) = pages.iter().find(|(code, _)| *code == CAPABILITIES).ok_or("MODE SENSE(6) lacks page 2Ah")?;
        expect::same_bytes("page 2Ah from MODE SENSE(6) against MODE SENSE(10)", six, &ten)
    });
    suite.check("mode-sense.mmc-pages", |drive| {
        let data = drive.execute_good(&common::mode_sense10(0, 0x3F, MODE_ALLOC), &[], MODE_ALLOC.into())?;
        let all = common::mode_pages(&data, true)?;
        for code in [READ_WRITE_ERROR_RECOVERY, POWER_CONDITION, TIMEOUT_AND_PROTECT, CAPABILITIES] {
            let (_, listed) = all
                .iter()
                .find(|(c, _)| *c == code)
                .ok_or_else(|| format!("MODE SENSE(10) of all pages lacks page {code:02X}h"))?;
            let alone = drive.mode_page(code)?;
            expect::same_bytes(&format!("page {code:02X}h alone against all pages"), &alone, listed)?;
        }
        let length = |code: u8| all.iter().find(|(c, _)| *c == code).map_or(0, |(_, page)| page[1]);
        ensure!(
            length(READ_WRITE_ERROR_RECOVERY) == 0x0A,
            "page 01h PAGE LENGTH {:02X}h, MMC-6 defines 0Ah",
            length(READ_WRITE_ERROR_RECOVERY)
        );
        ensure!(
            [0x0A, 0x26].contains(&length(POWER_CONDITION)),
            "page 1Ah PAGE LENGTH {:02X}h, expected 0Ah (MMC) or 26h (SPC-4)",
            length(POWER_CONDITION)
        );
        ensure!(
            length(TIMEOUT_AND_PROTECT) >= 0x08,
            "page 1Dh PAGE LENGTH {:02X}h, too short for the group 1 and 2 minimum timeouts",
            length(TIMEOUT_AND_PROTECT)
        );
        Ok(())
    });
    suite.check("mode-sense.unsupported-page", |drive| {
        let data = drive.execute_good(&common::mode_sense10(0, 0x3F, MODE_ALLOC), &[], MODE_ALLOC.into())?;
        let codes: Vec<u8> = common::mode_pages(&data, true)?.into_iter().map(|(code, _)| code).collect();
        let page = [0x3E, 0x2F, 0x0E].into_iter().find(|c| !codes.contains(c)).ok_or("every candidate page exists")?;
        drive
            .execute_expecting(
                &common::mode_sense10(0, page, MODE_ALLOC),
                &[],
                MODE_ALLOC.into(),
                sense::INVALID_FIELD_IN_CDB,
            )
            .map_err(|e| format!("page {page:02X}h: {e}"))?;
        Ok(())
    });
}

/// Page 2Ah: long enough for the fields sr reads (through the maximum
/// read speed at bytes 8-9), DVD-ROM Read as the profile list says, no
/// write capability the profile list does not back, and a tray that
/// ejects and locks, unlocked, described as feature 0003h describes it.
fn check_capabilities(drive: &mut Drive<'_>) -> Result<(), String> {
    let page = drive.mode_page(CAPABILITIES)?;
    ensure!(page[1] >= 0x12, "page 2Ah PAGE LENGTH {:02X}h, MMC-3 defines at least 12h", page[1]);
    let configuration = drive.configuration(0, 0)?;
    let profiles: Vec<u16> = configuration.profiles()?.into_iter().map(|(p, _)| p).collect();
    let dvd_rom = profiles.contains(&profile::DVD_ROM);
    ensure!(
        (page[2] & DVD_ROM_READ != 0) == dvd_rom,
        "page 2Ah DVD-ROM Read is {} but the profile list {} DVD-ROM (0010h)",
        u8::from(page[2] & DVD_ROM_READ != 0),
        if dvd_rom { "has" } else { "lacks" }
    );
    for (bit, needed, name) in WRITE_BITS {
        ensure!(
            page[3] & bit == 0 || profiles.contains(&needed),
            "page 2Ah claims {name} without profile {needed:04X}h in the profile list {profiles:04X?}"
        );
    }
    let removable = configuration.require(REMOVABLE_MEDIUM)?;
    ensure!(!removable.data.is_empty(), "feature 0003h has no data");
    let feature = removable.data[0];
    ensure!(page[6] & EJECT != 0, "page 2Ah Eject clear: the drive cannot open its tray by command");
    ensure!(page[6] & LOCK != 0, "page 2Ah Lock clear: PREVENT ALLOW MEDIUM REMOVAL would not lock the tray");
    ensure!(page[6] & LOCK_STATE == 0, "page 2Ah Lock State set with nothing prevented");
    ensure!(
        page[6] >> 5 == feature >> 5,
        "page 2Ah loading mechanism type {}, feature 0003h says {}",
        page[6] >> 5,
        feature >> 5
    );
    ensure!(
        (page[6] & EJECT != 0) == (feature & EJECT != 0) && (page[6] & LOCK != 0) == (feature & LOCK != 0),
        "page 2Ah byte 6 0x{:02X} and feature 0003h byte 4 0x{feature:02X} disagree on Eject or Lock",
        page[6]
    );
    Ok(())
}
