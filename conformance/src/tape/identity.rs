//! What the drive says it is and how it is set up: standard INQUIRY and
//! the VPD pages (SPC-4 6.6, 7.8; SSC-3's page B0h), REQUEST SENSE, READ
//! BLOCK LIMITS, MODE SENSE(6/10) with the block descriptor and MODE
//! SELECT of the block length and of D_SENSE (SPC-4, SSC-3).

use super::drive::{Drive, Info, Stop, VARIABLE, mode_select6};
use crate::common::{self, Lun, Runner};
use crate::expect::{be, ensure};
use crate::sense;

/// Peripheral device type of a sequential-access device.
pub(super) const TAPE: u8 = 0x01;
/// VPD page B0h of SSC-3: sequential-access device capabilities.
const SEQUENTIAL_ACCESS_CAPABILITIES: u8 = 0xB0;
/// Removable medium bit of standard INQUIRY byte 1.
const RMB: u8 = 0x80;
/// The control mode page and its D_SENSE bit (byte 2).
const CONTROL: u8 = 0x0A;
const D_SENSE: u8 = 0x04;
/// WP bit of the mode header's device-specific byte.
pub(super) const WP: u8 = 0x80;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("inquiry.standard", |drive| {
        let data = common::check_standard_inquiry(drive, TAPE)?;
        ensure!(data[1] & RMB != 0, "RMB clear: a tape drive's medium is removable");
        Ok(())
    });
    suite.check("inquiry.vpd-00-supported-pages", |drive| common::check_supported_pages(drive, TAPE, &[]).map(drop));
    suite.check("inquiry.vpd-80-unit-serial-number", |drive| common::check_serial_number(drive, TAPE).map(drop));
    suite.check("inquiry.vpd-83-device-identification", |drive| common::check_device_identification(drive, TAPE));
    let listed = listed_pages(suite);
    suite.check_if("inquiry.vpd-b0-sequential-access-capabilities", listed, |drive, ()| {
        let page = common::vpd_page(drive, SEQUENTIAL_ACCESS_CAPABILITIES, TAPE)?;
        ensure!(page.len() >= 6, "page B0h is {} bytes, SSC-3 defines 6", page.len());
        Ok(())
    });
    suite.check("inquiry.invalid-requests", |drive| common::check_vpd_errors(drive, TAPE));
    suite.check("request-sense.ready", common::check_request_sense);
    suite.check("read-block-limits", check_read_block_limits);
    suite.check("mode-sense6.block-descriptor", check_mode_sense6);
    suite.check("mode-sense10.block-descriptor", check_mode_sense10);
    suite.check("mode-sense.dbd", |drive| {
        let data = drive.execute_good(&common::mode_sense6(0x08, 0x3F, 0xFF), &[], 0xFF)?;
        ensure!(data.len() >= 4, "MODE SENSE(6) returned {} bytes", data.len());
        ensure!(data[3] == 0, "BLOCK DESCRIPTOR LENGTH {} with DBD set, expected 0", data[3]);
        common::mode_pages(&data, false).map(drop)
    });
    suite.check("mode-sense.unsupported-page", |drive| {
        let data = drive.execute_good(&common::mode_sense6(0x08, 0x3F, 0xFF), &[], 0xFF)?;
        let pages: Vec<u8> = common::mode_pages(&data, false)?.into_iter().map(|(code, _)| code).collect();
        let page = [0x3E, 0x2F, 0x05].into_iter().find(|c| !pages.contains(c)).ok_or("every candidate page exists")?;
        drive
            .execute_expecting(&common::mode_sense6(0, page, 0xFF), &[], 0xFF, sense::INVALID_FIELD_IN_CDB)
            .map_err(|e| format!("page {page:02X}h: {e}"))?;
        Ok(())
    });
    suite.check("mode-select.fixed-then-variable", check_fixed_and_back);
    suite.check("mode-select.descriptor-sense", |drive| {
        set_descriptor_sense(drive, true)?;
        let result = check_descriptor_sense(drive);
        let restored = set_descriptor_sense(drive, false);
        result.and(restored)
    });
    suite.check("mode-select.block-length-over-limit", |drive| {
        let too_long = drive.max_block + 1;
        ensure!(
            too_long <= 0xFF_FFFF,
            "MAXIMUM BLOCK LENGTH LIMIT {} leaves no longer block to refuse",
            drive.max_block
        );
        let list = drive.block_descriptor_list(too_long);
        drive.execute_expecting(&mode_select6(list.len() as u8), &list, 0, sense::INVALID_FIELD_IN_PARAMETER_LIST)?;
        let length = drive.block_length()?;
        ensure!(length == VARIABLE, "a refused MODE SELECT changed the block length to {length}");
        Ok(())
    });
}

/// Whether VPD page B0h is listed (else the check of it is skipped).
fn listed_pages(suite: &mut Runner<Drive<'_>>) -> Result<(), String> {
    let page = common::vpd_page(&mut suite.dev, 0x00, TAPE).map_err(|e| format!("VPD page 00h: {e}"))?;
    if page[4..].contains(&SEQUENTIAL_ACCESS_CAPABILITIES) { Ok(()) } else { Err("VPD page B0h is not listed".into()) }
}

/// READ BLOCK LIMITS: six bytes, a maximum no smaller than the minimum.
/// The suite writes blocks the drive accepts, so it keeps what it says.
fn check_read_block_limits(drive: &mut Drive<'_>) -> Result<(), String> {
    let data = drive.execute_good(&[super::drive::op::READ_BLOCK_LIMITS, 0, 0, 0, 0, 0], &[], 6)?;
    ensure!(data.len() == 6, "READ BLOCK LIMITS returned {} bytes, expected 6", data.len());
    let granularity = data[0] & 0x1F;
    let max = be(&data, 1..4)? as u32;
    let min = be(&data, 4..6)? as u32;
    ensure!(max != 0, "MAXIMUM BLOCK LENGTH LIMIT 0: no block can be written");
    ensure!(min <= max, "MINIMUM BLOCK LENGTH LIMIT {min} exceeds MAXIMUM {max}");
    ensure!(max >= 4096, "MAXIMUM BLOCK LENGTH LIMIT {max}: the suite needs blocks of 4 KiB");
    ensure!(
        min <= 1 && granularity == 0,
        "blocks must be {min} bytes or longer in steps of 2^{granularity}: the suite writes any length"
    );
    drive.max_block = max;
    Ok(())
}

/// MODE SENSE(6), all pages: one 8-byte block descriptor with the block
/// length of variable mode (the suite's known state), pages that tile
/// the data, WP clear on the writable cartridge.
fn check_mode_sense6(drive: &mut Drive<'_>) -> Result<(), String> {
    let data = drive.execute_good(&common::mode_sense6(0, 0x3F, 0xFF), &[], 0xFF)?;
    common::mode_pages(&data, false)?;
    ensure!(data[3] == 8, "BLOCK DESCRIPTOR LENGTH {}, expected 8", data[3]);
    ensure!(data[2] & WP == 0, "WP set in the device-specific byte 0x{:02X} of a writable cartridge", data[2]);
    let length = be(&data, 9..12)?;
    ensure!(length == 0, "BLOCK LENGTH {length} in variable-block mode, expected 0");
    ensure!(data[4] == drive.density, "DENSITY CODE {:02X}h, the drive said {:02X}h before", data[4], drive.density);
    Ok(())
}

/// MODE SENSE(10): the same header values and block descriptor as (6).
fn check_mode_sense10(drive: &mut Drive<'_>) -> Result<(), String> {
    let six = drive.execute_good(&common::mode_sense6(0, 0x3F, 0xFF), &[], 0xFF)?;
    let ten = drive.execute_good(&common::mode_sense10(0, 0x3F, 4096), &[], 4096)?;
    common::mode_pages(&ten, true)?;
    ensure!(ten.len() >= 16, "MODE SENSE(10) returned {} bytes", ten.len());
    ensure!(ten[4] & 0x01 == 0, "LONGLBA set: a tape's block descriptor is the short one");
    ensure!(be(&ten, 6..8)? == 8, "BLOCK DESCRIPTOR LENGTH {}, expected 8", be(&ten, 6..8)?);
    ensure!(ten[3] == six[2], "device-specific byte 0x{:02X}, MODE SENSE(6) says 0x{:02X}", ten[3], six[2]);
    ensure!(ten[8..16] == six[4..12], "block descriptor {:02X?}, MODE SENSE(6) says {:02X?}", &ten[8..16], &six[4..12]);
    let pages = |data: &[u8], ten| -> Result<Vec<u8>, String> {
        Ok(common::mode_pages(data, ten)?.into_iter().map(|(code, _)| code).collect())
    };
    ensure!(pages(&ten, true)? == pages(&six, false)?, "MODE SENSE(6) and (10) list different pages");
    Ok(())
}

/// Set D_SENSE of the control mode page (SPC-4) with MODE
/// SELECT(6), sending the page back as MODE SENSE reports it.
fn set_descriptor_sense(drive: &mut Drive<'_>, on: bool) -> Result<(), String> {
    let data = drive.execute_good(&common::mode_sense6(0x08, CONTROL, 0xFF), &[], 0xFF)?;
    let pages = common::mode_pages(&data, false)?;
    let (_, page) = pages.into_iter().find(|(code, _)| *code == CONTROL).ok_or("no control mode page")?;
    ensure!(page.len() >= 4, "control mode page of {} bytes", page.len());
    let mut list = vec![0, 0, drive.device_specific & 0x7F, 0];
    list.extend_from_slice(&page);
    let at = list.len() - page.len();
    list[at] &= 0x7F; // PS is reserved in MODE SELECT
    list[at + 2] = (list[at + 2] & !D_SENSE) | if on { D_SENSE } else { 0 };
    drive.execute_good(&mode_select6(list.len() as u8), &list, 0)?;
    let data = drive.execute_good(&common::mode_sense6(0x08, CONTROL, 0xFF), &[], 0xFF)?;
    let (_, page) = common::mode_pages(&data, false)?
        .into_iter()
        .find(|(code, _)| *code == CONTROL)
        .ok_or("no control mode page")?;
    ensure!((page[2] & D_SENSE != 0) == on, "D_SENSE {} after MODE SELECT of {}", page[2] & D_SENSE != 0, on);
    Ok(())
}

/// With D_SENSE, a read into a filemark reports descriptor-format sense
/// (72h) with the residual in an information descriptor and FILEMARK in a
/// stream commands descriptor (SPC-4 sense data, SSC-3).
fn check_descriptor_sense(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.filemarks(1)?;
    drive.rewind()?;
    let response = drive.expect_stream(&super::drive::read6(4096, false), &[], 4096, Stop::filemark(Info::Is(4096)))?;
    ensure!(
        response.sense[0] & 0x7F == 0x72,
        "response code 0x{:02X} with D_SENSE set, expected 72h",
        response.sense[0]
    );
    drive.expect_at(1, 1)
}

/// MODE SELECT(6) to 512-byte fixed blocks, MODE SENSE shows it; MODE
/// SELECT(10) back to variable, MODE SENSE shows that.
fn check_fixed_and_back(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.set_block_length(512)?;
    let length = drive.block_length()?;
    ensure!(length == 512, "MODE SELECT(6) of 512-byte blocks, MODE SENSE reports {length}");
    let mut list = vec![0, 0, 0, drive.device_specific & 0x7F, 0, 0, 0, 8];
    list.extend_from_slice(&drive.block_descriptor_list(VARIABLE)[4..]);
    let mut cdb = vec![0x55, 0x10, 0, 0, 0, 0, 0, 0, list.len() as u8, 0];
    drive.execute_good(&cdb, &list, 0)?;
    let length = drive.block_length()?;
    ensure!(length == VARIABLE, "MODE SELECT(10) of variable blocks, MODE SENSE reports {length}");
    // SP: a drive that saves no pages must refuse it (SPC-4), not
    // pretend; one that saves them takes it.
    cdb[1] = 0x11;
    let response = drive.execute(&cdb, &list, 0)?;
    if response.status != crate::target::STATUS_GOOD {
        crate::expect::sense(&response, sense::INVALID_FIELD_IN_CDB)
            .or_else(|_| crate::expect::sense(&response, sense::SAVING_PARAMETERS_NOT_SUPPORTED))
            .map_err(|e| format!("MODE SELECT(10) with SP: {e}"))?;
    }
    Ok(())
}
