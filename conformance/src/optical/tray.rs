//! The tray and the lock (MMC-6, SPC-4): START STOP UNIT with LoEj opens
//! the tray (MEDIUM NOT PRESENT - TRAY OPEN, a media removal event, the
//! door open in MECHANISM STATUS) and closes it again (new media, then the
//! disc becomes ready as if it had just arrived); PREVENT ALLOW MEDIUM
//! REMOVAL refuses the initiator's eject with MEDIUM REMOVAL PREVENTED and
//! the operator's with an eject request event, shows in page 2Ah's lock
//! state, and yields to a forced eject; ALLOW lifts it.

use super::drive::{DOOR_OPEN, Drive, MEDIA_PRESENT, code, event, event_names, op, prevent_allow, start_stop, tur};
use super::pages::{CAPABILITIES, LOCK_STATE};
use crate::common::{Lun, Runner};
use crate::expect::ensure;

/// The check of the empty drive, before there is a state to go back to.
pub(super) fn run_empty(suite: &mut Runner<Drive<'_>>) {
    suite.check_as_is("mechanism-status.empty-drive", |drive| {
        ensure!(!drive.door_open()?, "MECHANISM STATUS says the door is open; the drive starts with its tray closed");
        Ok(())
    });
}

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("start-stop.eject-then-load", check_eject_then_load);
    suite.check("start-stop.load-with-the-tray-closed", |drive| {
        drive.tray(true)?;
        drive.execute_good(&tur(), &[], 0)?;
        drive.expect_media_events(&[], DOOR_OPEN | MEDIA_PRESENT, MEDIA_PRESENT)?;
        drive.expect_pressed(op::READ_10, 0, 1)
    });
    suite.check("prevent.start-stop-eject-refused", |drive| {
        drive.execute_good(&prevent_allow(true), &[], 0)?;
        drive.execute_expecting(&start_stop(true, false), &[], 0, code::MEDIUM_REMOVAL_PREVENTED)?;
        drive.execute_good(&tur(), &[], 0)?;
        ensure!(!drive.door_open()?, "MECHANISM STATUS says the door opened although the eject was refused");
        drive.expect_media_events(&[], DOOR_OPEN | MEDIA_PRESENT, MEDIA_PRESENT)?;
        drive.expect_pressed(op::READ_10, 1, 2)
    });
    suite.check("prevent.lock-state-in-page-2a", |drive| {
        let lock_state = |drive: &mut Drive<'_>| -> Result<bool, String> {
            let page = drive.mode_page(CAPABILITIES)?;
            ensure!(page.len() > 6, "page 2Ah is {} bytes, too short for byte 6", page.len());
            Ok(page[6] & LOCK_STATE != 0)
        };
        ensure!(!lock_state(drive)?, "page 2Ah reports the drive locked before any PREVENT");
        drive.execute_good(&prevent_allow(true), &[], 0)?;
        ensure!(lock_state(drive)?, "page 2Ah Lock State clear after PREVENT ALLOW MEDIUM REMOVAL with PREVENT");
        drive.execute_good(&prevent_allow(false), &[], 0)?;
        ensure!(!lock_state(drive)?, "page 2Ah Lock State still set after ALLOW");
        Ok(())
    });
    suite.check("prevent.operator-eject-refused", |drive| {
        drive.execute_good(&prevent_allow(true), &[], 0)?;
        if drive.eject(false).is_ok() {
            return Err("the operator's eject took the disc out of a drive the initiator locked".into());
        }
        drive.execute_good(&tur(), &[], 0)?;
        drive.expect_pressed(op::READ_10, 2, 1)?;
        // The locked drive's eject button: the initiator hears the request
        // (udisks then unmounts and ejects).
        drive.expect_media_events(&[event::EJECT_REQUEST], DOOR_OPEN | MEDIA_PRESENT, MEDIA_PRESENT)
    });
    suite.check("prevent.forced-eject", |drive| {
        drive.execute_good(&prevent_allow(true), &[], 0)?;
        drive.eject(true).map_err(|e| format!("the forced eject of a locked drive failed: {e}"))?;
        let sense = drive.execute(&tur(), &[], 0)?.decoded_sense().map_err(|e| format!("TEST UNIT READY: {e}"))?;
        ensure!(
            (sense.code.key, sense.code.asc) == (0x02, 0x3A),
            "TEST UNIT READY after the disc was taken out reported {}, expected NOT READY, MEDIUM NOT PRESENT (02/3A)",
            sense.code
        );
        let (events, status) = drive.media_events()?;
        ensure!(
            events.last() == Some(&event::MEDIA_REMOVAL) && !events.contains(&event::NEW_MEDIA),
            "media events {} after a forced eject, expected them to end with media removal (3)",
            event_names(&events)
        );
        ensure!(status & MEDIA_PRESENT == 0, "media status 0x{status:02X} after the disc was taken out: Media Present");
        Ok(())
    });
    suite.check("prevent.allow-restores-eject", |drive| {
        drive.execute_good(&prevent_allow(true), &[], 0)?;
        drive.execute_good(&prevent_allow(false), &[], 0)?;
        drive.tray(false)?;
        drive.execute_expecting(&tur(), &[], 0, code::NO_DISC_TRAY_OPEN).map(drop)
    });
}

/// Open the tray: MEDIUM NOT PRESENT - TRAY OPEN, a media removal event
/// (the initiator's eject is not an eject request), the door open; close
/// it: new media, the disc becomes ready again with one unit attention,
/// reads, the door closed.
fn check_eject_then_load(drive: &mut Drive<'_>) -> Result<(), String> {
    drive.tray(false)?;
    drive.execute_expecting(&tur(), &[], 0, code::NO_DISC_TRAY_OPEN)?;
    drive.execute_expecting(&super::drive::transfer(op::READ_10, 0, 1), &[], 2048, code::NO_DISC_TRAY_OPEN)?;
    drive.expect_media_events(&[event::MEDIA_REMOVAL], DOOR_OPEN, DOOR_OPEN)?;
    ensure!(drive.door_open()?, "MECHANISM STATUS says the door is closed with the tray open");
    drive.tray(true)?;
    drive.expect_media_events(&[event::NEW_MEDIA], DOOR_OPEN | MEDIA_PRESENT, MEDIA_PRESENT)?;
    drive.expect_disc_arrival()?;
    ensure!(!drive.door_open()?, "MECHANISM STATUS says the door is open after the tray closed");
    drive.expect_pressed(op::READ_10, 0, 4)
}
