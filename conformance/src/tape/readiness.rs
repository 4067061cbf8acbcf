//! The drive without a cartridge and the load (SSC-3, SAM-5's unit
//! attentions): NOT READY, MEDIUM NOT PRESENT while empty; after a load,
//! optionally NOT READY, BECOMING READY while the tape threads, then one
//! UNIT ATTENTION, NOT READY TO READY CHANGE, then GOOD, at the beginning
//! of the partition.

use super::drive::{Drive, Info, Stop, code, codes, op, read_position, read6};
use crate::common::{Lun, Runner};
use crate::expect::ensure;
use crate::target::STATUS_GOOD;

/// BECOMING READYs the suite waits through after a load.
const MAX_BECOMING_READY: usize = 15;

pub(super) fn run_before_load(suite: &mut Runner<Drive<'_>>) {
    suite.check_as_is("readiness.no-medium", |drive| {
        drive.execute_expecting(&[op::TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0, code::MEDIUM_NOT_PRESENT)?;
        let sense = drive.execute_good(&[0x03, 0, 0, 0, 252, 0], &[], 252)?;
        let reported = crate::sense::Sense::decode(&sense).map_err(|e| format!("REQUEST SENSE data: {e}"))?.code;
        ensure!(
            reported == code::MEDIUM_NOT_PRESENT,
            "REQUEST SENSE of an empty drive reports {reported}, expected {}",
            code::MEDIUM_NOT_PRESENT
        );
        drive.execute_expecting(&read6(512, false), &[], 512, code::MEDIUM_NOT_PRESENT)?;
        drive.execute_expecting(&read_position(0x00, 0), &[], 20, code::MEDIUM_NOT_PRESENT)?;
        Ok(())
    });
    suite.check("readiness.load", check_load);
}

/// Load the cartridge and watch the drive become ready.
fn check_load(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.load(false)?;
    let mut seen = Vec::new();
    let mut ready = false;
    for _ in 0..=MAX_BECOMING_READY + 1 {
        let response = drive.execute(&[op::TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0)?;
        if response.status == STATUS_GOOD {
            ready = true;
            break;
        }
        let sense = response.decoded_sense().map_err(|e| format!("TEST UNIT READY: {response} ({e})"))?;
        seen.push(sense.code);
    }
    ensure!(ready, "the drive did not become ready after the load: {}", codes(&seen));
    let (attention, becoming) = seen.split_last().ok_or_else(|| {
        format!("TEST UNIT READY was GOOD at once after a load, without {}", code::MEDIUM_MAY_HAVE_CHANGED)
    })?;
    ensure!(
        *attention == code::MEDIUM_MAY_HAVE_CHANGED && becoming.iter().all(|&c| c == code::BECOMING_READY),
        "after a load TEST UNIT READY reported {}; expected any number of {} then one {} then GOOD",
        codes(&seen),
        code::BECOMING_READY,
        code::MEDIUM_MAY_HAVE_CHANGED
    );
    crate::common::check_request_sense(drive)?;
    let pos = drive.position()?;
    ensure!(pos.bop && pos.object == 0 && pos.file == 0, "a fresh load is not at BOP: {pos:?}");
    // Blank tape: end of data at once, the whole request left over.
    drive.expect_stream(&read6(512, false), &[], 512, Stop::end_of_data(Info::Is(512)))?;
    drive.expect_at(0, 0)
}
