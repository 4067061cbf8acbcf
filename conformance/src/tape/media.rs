//! The cartridge as a removable medium: LOAD UNLOAD with PREVENT ALLOW
//! MEDIUM REMOVAL (SSC-3, SPC-4), a write-protected cartridge
//! (SSC-3: DATA PROTECT, WRITE PROTECTED; the WP bit of the mode
//! header), and CDB fields a drive must refuse.

use super::drive::{
    Drive, Info, SpaceCode, Stop, block, code, load_unload, op, read_position, read6, read6_fixed, space6, transfer6,
};
use super::identity::WP;
use crate::common::{self, Lun, Runner};
use crate::expect::ensure;
use crate::sense::{self, SenseCode};

/// ERASE(6), short.
const ERASE: [u8; 6] = [op::ERASE_6, 0, 0, 0, 0, 0];

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("load-unload.prevent-then-allow", check_load_unload);
    suite.check("write-protected", check_write_protected);
    suite.check("invalid.fixed-with-sili", |drive| {
        drive.set_block_length(512)?;
        drive.execute_expecting(
            &super::drive::transfer6(op::READ_6, 0x03, 1),
            &[],
            512,
            sense::INVALID_FIELD_IN_CDB,
        )?;
        drive.expect_at(0, 0)
    });
    suite.check("invalid.fixed-in-variable-mode", |drive| {
        drive.execute_expecting(&read6_fixed(1), &[], 512, sense::INVALID_FIELD_IN_CDB)?;
        drive.execute_expecting(&transfer6(op::WRITE_6, 0x01, 1), &[0; 512], 0, sense::INVALID_FIELD_IN_CDB)?;
        drive.expect_at(0, 0)
    });
    suite.check("invalid.block-over-limit", |drive| {
        let too_long = drive.max_block + 1;
        ensure!(
            too_long <= 0xFF_FFFF,
            "MAXIMUM BLOCK LENGTH LIMIT {} leaves no longer block to refuse",
            drive.max_block
        );
        let data = vec![0x5A; too_long as usize];
        drive.execute_expecting(&transfer6(op::WRITE_6, 0, too_long), &data, 0, sense::INVALID_FIELD_IN_CDB)?;
        drive.expect_at(0, 0)?;
        drive.expect_stream(&read6(512, false), &[], 512, Stop::end_of_data(Info::Is(512)))?;
        Ok(())
    });
    let setmarks = setmarks_unsupported(suite);
    suite.check_if("invalid.setmarks", setmarks, |drive, ()| {
        drive.write(&block(0, 64, 0x01))?;
        drive.execute_expecting(&transfer6(op::WRITE_FILEMARKS_6, 0x02, 1), &[], 0, sense::INVALID_FIELD_IN_CDB)?;
        drive.expect_at(1, 0)?;
        drive.rewind()?;
        let mut cdb = space6(SpaceCode::Blocks, 1);
        cdb[1] = 0x04; // setmarks
        drive.execute_expecting(&cdb, &[], 0, sense::INVALID_FIELD_IN_CDB)?;
        drive.expect_at(0, 0)
    });
    suite.check("invalid.space-reserved-code", |drive| {
        let mut cdb = space6(SpaceCode::Blocks, 1);
        cdb[1] = 0x07;
        drive.execute_expecting(&cdb, &[], 0, sense::INVALID_FIELD_IN_CDB)?;
        drive.expect_at(0, 0)
    });
    suite.check("invalid.read-position-service-action", |drive| {
        drive.execute_expecting(&read_position(0x1F, 32), &[], 32, sense::INVALID_FIELD_IN_CDB).map(drop)
    });
    suite.check("invalid.unknown-opcode", |drive| {
        // READ(10): a direct-access command SSC does not define.
        let cdb = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        drive.execute_expecting(&cdb, &[], 512, sense::INVALID_COMMAND_OPERATION_CODE).map(drop)
    });
    suite.check("invalid.load-with-eot", |drive| {
        // LOAD with EOT (unload at the end of tape) contradicts itself.
        drive.execute_expecting(&[op::LOAD_UNLOAD, 0, 0, 0, 0x05, 0], &[], 0, sense::INVALID_FIELD_IN_CDB)?;
        drive.expect_at(0, 0)
    });
}

/// PREVENT refuses an unload with MEDIUM REMOVAL PREVENTED and the tape
/// stays ready; ALLOW lets it unload, after which the drive is not ready;
/// LOAD threads it again at BOP with the data still there.
fn check_load_unload(drive: &mut Drive<'_>) -> Result<(), String> {
    let data = block(0, 1000, 0xA1);
    drive.write(&data)?;
    drive.execute_good(&[op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1, 0], &[], 0)?;
    drive.execute_expecting(&load_unload(false), &[], 0, code::MEDIUM_REMOVAL_PREVENTED)?;
    drive.execute_good(&[op::TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0)?;
    drive.expect_at(1, 0)?;
    drive.execute_good(&[op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0, 0], &[], 0)?;
    drive.execute_good(&load_unload(false), &[], 0)?;
    drive.ejected = true;
    let commands =
        [(vec![op::TEST_UNIT_READY, 0, 0, 0, 0, 0], 0), (read6(1000, false), 1000), (read_position(0x00, 0), 20)];
    for (cdb, len) in &commands {
        let response = drive.execute(cdb, &[], *len)?;
        let unloaded = response
            .decoded_sense()
            .is_ok_and(|s| [code::MEDIUM_NOT_PRESENT, code::INITIALIZING_COMMAND_REQUIRED].contains(&s.code));
        ensure!(
            unloaded,
            "{} after an unload: expected {} or {}, got {response}",
            common::describe(cdb),
            code::MEDIUM_NOT_PRESENT,
            code::INITIALIZING_COMMAND_REQUIRED
        );
    }
    drive.execute_good(&load_unload(true), &[], 0)?;
    drive.ejected = false;
    let seen = drive.thread()?;
    ensure!(
        seen.iter().all(|&c| c == code::MEDIUM_MAY_HAVE_CHANGED) && seen.len() <= 1,
        "after the initiator's own LOAD, TEST UNIT READY reported {}",
        super::drive::codes(&seen)
    );
    drive.expect_at(0, 0)?;
    drive.read_expecting(&data)
}

/// The cartridge reloaded with its tab set: MODE SENSE(6) and (10) say
/// WP, it reads, and every change is DATA PROTECT, WRITE PROTECTED with
/// the tape where it was. Reloaded writable, WP is clear again.
fn check_write_protected(drive: &mut Drive<'_>) -> Result<(), String> {
    let data = block(0, 1000, 0xB1);
    drive.write(&data)?;
    drive.filemarks(1)?;
    drive.unload()?;
    drive.load(true)?;
    drive.thread()?;
    let six = drive.execute_good(&common::mode_sense6(0, 0x3F, 0xFF), &[], 0xFF)?;
    ensure!(six.len() >= 4 && six[2] & WP != 0, "MODE SENSE(6) device-specific byte {:02X?}: WP clear", six.get(2));
    let ten = drive.execute_good(&common::mode_sense10(0, 0x3F, 4096), &[], 4096)?;
    ensure!(ten.len() >= 8 && ten[3] & WP != 0, "MODE SENSE(10) device-specific byte {:02X?}: WP clear", ten.get(3));
    drive.read_expecting(&data)?;
    drive.expect_at(1, 0)?;
    let protected = SenseCode::new(0x07, 0x27, 0x00);
    drive.execute_expecting(&transfer6(op::WRITE_6, 0, 64), &[0x11; 64], 0, protected)?;
    drive.execute_expecting(&transfer6(op::WRITE_FILEMARKS_6, 0, 1), &[], 0, protected)?;
    drive.execute_expecting(&ERASE, &[], 0, protected)?;
    drive.expect_at(1, 0)?;
    drive.rewind()?;
    drive.execute_expecting(&ERASE, &[], 0, protected)?;
    drive.read_expecting(&data)?;
    drive.expect_stream(&read6(64, false), &[], 64, Stop::filemark(Info::Is(64)))?;
    drive.unload()?;
    drive.load(false)?;
    drive.thread()?;
    let six = drive.execute_good(&common::mode_sense6(0, 0x3F, 0xFF), &[], 0xFF)?;
    ensure!(six.len() >= 4 && six[2] & WP == 0, "MODE SENSE(6) of the writable cartridge: WP set");
    drive.read_expecting(&data)
}

/// Whether the drive reports setmarks unsupported: page 10h's RSMK (byte 8
/// bit 5) clear, or no page 10h at all.
fn setmarks_unsupported(suite: &mut Runner<Drive<'_>>) -> Result<(), String> {
    let data = suite
        .dev
        .execute_good(&common::mode_sense6(0x08, 0x3F, 0xFF), &[], 0xFF)
        .map_err(|e| format!("MODE SENSE(6): {e}"))?;
    let pages = common::mode_pages(&data, false)?;
    match pages.iter().find(|(code, _)| *code == 0x10) {
        Some((_, page)) if page.get(8).is_some_and(|b| b & 0x20 != 0) => Err("page 10h reports setmarks (RSMK)".into()),
        _ => Ok(()),
    }
}
