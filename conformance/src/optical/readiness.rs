//! The drive without a disc and a disc arriving (MMC-6, SPC-4 and SAM-5's
//! unit attentions): NOT READY, MEDIUM NOT PRESENT - TRAY CLOSED while
//! empty; after an insertion one UNIT ATTENTION, NOT READY TO READY CHANGE
//! and any number of NOT READY, BECOMING READY (before or after it), then
//! GOOD. GET
//! CONFIGURATION and GET EVENT STATUS NOTIFICATION run while that unit
//! attention is pending and leave it pending (MMC-5 4.1.6.1): the sr
//! driver polls GESN first and still needs TEST UNIT READY to see 28/00.

use super::drive::{
    CONFIGURATION_ALLOC, Drive, MEDIA_CLASS, check_arrival, code, codes, event, event_names, gesn, get_configuration,
    op, read_toc, transfer, tur,
};
use crate::common::{self, Lun, Runner, describe};
use crate::expect::{self, ensure};
use crate::sense::Sense;
use crate::target::STATUS_GOOD;

/// Rounds of GET CONFIGURATION, GESN and TEST UNIT READY the suite waits
/// through for a new disc to become ready.
const MAX_ROUNDS: usize = 32;

/// The checks of the empty drive, before there is a state to go back to.
pub(super) fn run_empty(suite: &mut Runner<Drive<'_>>) {
    suite.check_as_is("readiness.empty-drive", |drive| {
        drive.execute_expecting(&tur(), &[], 0, code::NO_DISC_TRAY_CLOSED)?;
        let sense = drive.execute_good(&[op::REQUEST_SENSE, 0, 0, 0, 252, 0], &[], 252)?;
        let reported = Sense::decode(&sense).map_err(|e| format!("REQUEST SENSE data: {e}"))?.code;
        ensure!(
            reported == code::NO_DISC_TRAY_CLOSED,
            "REQUEST SENSE of an empty drive reports {reported}, expected {}",
            code::NO_DISC_TRAY_CLOSED
        );
        drive.execute_expecting(&transfer(op::READ_10, 0, 1), &[], 2048, code::NO_DISC_TRAY_CLOSED)?;
        drive.execute_expecting(&[op::READ_CAPACITY, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8, code::NO_DISC_TRAY_CLOSED)?;
        drive.execute_expecting(&read_toc(false, 0, 0, 0x100), &[], 0x100, code::NO_DISC_TRAY_CLOSED)?;
        Ok(())
    });
}

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("readiness.insert-pressed-disc", |drive| {
        drive.insert_pressed()?;
        drive.expect_disc_arrival()?;
        common::check_request_sense(drive)?;
        drive.expect_pressed(op::READ_10, 0, 1)
    });
    suite.check("unit-attention.survives-gesn-and-get-configuration", check_unit_attention_survives);
}

/// A new disc, and between the TEST UNIT READYs that watch it become
/// ready, GET CONFIGURATION and GESN: both GOOD every time, GESN reporting
/// the new disc once, and the TEST UNIT READYs still seeing the one unit
/// attention.
fn check_unit_attention_survives(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.eject(true).map_err(|e| format!("the forced eject failed: {e}"))?;
    drive.drain_media_events()?;
    drive.insert_pressed()?;
    let mut seen = Vec::new();
    let mut events = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let cdb = get_configuration(0, 0, CONFIGURATION_ALLOC);
        let response = drive.execute(&cdb, &[], CONFIGURATION_ALLOC.into())?;
        expect::good(&response).map_err(|e| {
            format!(
                "{} while the disc became ready: {e} (MMC-5 4.1.6.1: it runs under a unit attention)",
                describe(&cdb)
            )
        })?;
        let cdb = gesn(1 << MEDIA_CLASS, 8);
        let response = drive.execute(&cdb, &[], 8)?;
        expect::good(&response).map_err(|e| {
            format!(
                "{} while the disc became ready: {e} (MMC-5 4.1.6.1: it runs under a unit attention)",
                describe(&cdb)
            )
        })?;
        let reported = response.data_in.get(4).map_or(event::NO_CHANGE, |b| b & 0x0F);
        if reported != event::NO_CHANGE {
            events.push(reported);
        }
        let response = drive.execute(&tur(), &[], 0)?;
        if response.status == STATUS_GOOD {
            ensure!(
                events == [event::NEW_MEDIA],
                "GESN reported {} while the disc became ready, expected new media (2) once",
                event_names(&events)
            );
            return check_arrival(&seen);
        }
        let sense = response.decoded_sense().map_err(|e| format!("TEST UNIT READY: {response} ({e})"))?;
        seen.push(sense.code);
    }
    Err(format!("the drive did not become ready in {MAX_ROUNDS} rounds: {}", codes(&seen)))
}
