//! The end of the tape (SSC-3, WRITE(6)): a write that reaches
//! early warning completes and reports CHECK CONDITION, NO SENSE, EOM,
//! 00/02; writes go on doing so until one does not fit before the physical
//! end, which writes nothing and reports VOLUME OVERFLOW, EOM, 0D/00/02
//! with the whole transfer as its residual. READ POSITION says EOP in
//! between, and everything acknowledged reads back.

use super::drive::{Drive, Info, Stop, block, code, locate10, log_sense, op, read6, transfer6};
use crate::common::{Lun, Runner};
use crate::expect::{be, ensure};
use crate::target::STATUS_GOOD;

/// Tape capacity log page.
pub(super) const TAPE_CAPACITY: u8 = 0x31;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("early-warning-then-overflow", check_early_warning);
}

fn check_early_warning(drive: &mut Drive<'_>) -> Result<(), String> {
    let params = drive.params;
    let len = drive.big_block().min((params.early_warning / 4) as u32);
    let limit = params.capacity / u64::from(len) + 2;
    let tag = 0xE0;

    // Up to early warning: GOOD, then the warning on the write that reaches it.
    let mut written = 0u64;
    let warning = loop {
        ensure!(written < limit, "{written} blocks of {len} bytes written and no early warning");
        let data = block(written, len, tag);
        let response = drive.execute(&transfer6(op::WRITE_6, 0, len), &data, 0)?;
        written += 1;
        if response.status != STATUS_GOOD {
            break response;
        }
    };
    super::drive::stream(&warning, Stop::early_warning())
        .map_err(|e| format!("write {written} (the first not GOOD): {e}"))?;
    let before = written * u64::from(len);
    let room = params.capacity - params.early_warning;
    ensure!(
        (written - 1) * u64::from(len) <= room,
        "early warning after {before} bytes, later than {} bytes before the end of a {}-byte cartridge",
        params.early_warning,
        params.capacity
    );
    ensure!(
        before + params.capacity / 16 >= room,
        "early warning after only {before} bytes of a {}-byte cartridge warning {} bytes before its end",
        params.capacity,
        params.early_warning
    );
    let pos = drive.position()?;
    ensure!(pos.object == written, "the write that warned is not on tape: at object {}, {written} written", pos.object);
    ensure!(pos.eop, "READ POSITION past early warning: EOP clear");
    check_remaining_capacity(drive, params.early_warning)?;

    // Past it: each write completes and warns, until one does not fit.
    let mut after = 0u64;
    let overflow = loop {
        ensure!(after <= limit, "{after} writes past early warning and no VOLUME OVERFLOW");
        let data = block(written, len, tag);
        let response = drive.execute(&transfer6(op::WRITE_6, 0, len), &data, 0)?;
        let sense = super::drive::StreamSense::decode(&response.sense).ok();
        if sense.is_some_and(|s| s.code == code::EARLY_WARNING) {
            super::drive::stream(&response, Stop::early_warning())
                .map_err(|e| format!("write {} past early warning: {e}", after + 1))?;
            written += 1;
            after += 1;
            continue;
        }
        break response;
    };
    super::drive::stream(&overflow, Stop::overflow(Info::Is(len.into())))
        .map_err(|e| format!("the write that did not fit: {e}"))?;
    ensure!(after >= 1, "no write completed between early warning and the end of the tape");
    ensure!(
        after * u64::from(len) <= params.early_warning,
        "{after} blocks of {len} bytes fit after early warning, more than its {} bytes",
        params.early_warning
    );
    let pos = drive.position()?;
    ensure!(pos.object == written, "VOLUME OVERFLOW moved the tape: at object {}, {written} written", pos.object);
    ensure!(pos.eop, "READ POSITION at the end of the tape: EOP clear");

    // What was acknowledged is there, the refused block is not.
    let last = written - 1;
    drive.execute_good(&locate10(last as u32), &[], 0)?;
    drive.read_expecting(&block(last, len, tag))?;
    drive.expect_stream(&read6(len, false), &[], len, Stop::end_of_data(Info::Is(len.into())))?;
    drive.rewind()?;
    drive.read_expecting(&block(0, len, tag))
}

/// LOG SENSE 31h, where the drive has it: the main partition's remaining
/// capacity (MiB) in early warning is at most the early-warning distance.
fn check_remaining_capacity(drive: &mut Drive<'_>, early_warning: u64) -> Result<(), String> {
    let Some(page) = tape_capacity(drive)? else { return Ok(()) };
    let remaining = page.remaining;
    ensure!(
        remaining <= (early_warning >> 20) + 1,
        "LOG SENSE 31h: {remaining} MiB remaining in early warning, {early_warning} bytes before the end"
    );
    Ok(())
}

/// The tape capacity page's main partition values, in MiB.
#[derive(Debug, Clone, Copy)]
pub(super) struct Capacity {
    pub(super) remaining: u64,
    pub(super) maximum: u64,
}

/// LOG SENSE 31h, `None` if page 00h does not list it.
pub(super) fn tape_capacity(drive: &mut Drive<'_>) -> Result<Option<Capacity>, String> {
    let supported = drive.execute_good(&log_sense(0x00, 1024), &[], 1024)?;
    if !supported.get(4..).unwrap_or_default().contains(&TAPE_CAPACITY) {
        return Ok(None);
    }
    let page = drive.execute_good(&log_sense(TAPE_CAPACITY, 1024), &[], 1024)?;
    let parameters = super::pages::log_parameters(&page)?;
    let value = |code: u16| -> Result<u64, String> {
        let (_, _, value) = parameters
            .iter()
            .find(|(c, _, _)| *c == code)
            .ok_or_else(|| format!("LOG SENSE 31h has no parameter {code:04X}h"))?;
        ensure!(value.len() == 4, "LOG SENSE 31h parameter {code:04X}h is {} bytes, SSC-3 says 4", value.len());
        be(value, 0..4)
    };
    Ok(Some(Capacity { remaining: value(1)?, maximum: value(3)? }))
}
