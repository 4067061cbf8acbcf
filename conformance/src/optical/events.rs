//! GET EVENT STATUS NOTIFICATION, polled (MMC-6): the media class events
//! the sr driver turns into disk events and udev into "media changed" and
//! "eject request" (a disc arriving, the operator's eject, a swap, each in
//! the order it happened), the media status bits, the classes the drive
//! says it supports, and the asynchronous form a drive without it refuses.

use super::drive::{DOOR_OPEN, Drive, MEDIA_CLASS, MEDIA_PRESENT, code, event, gesn};
use crate::common::{Lun, Runner};
use crate::expect::{be, ensure};
use crate::sense;

/// Classes a GESN request may name (bit n: class n); bits 0 and 7 are
/// reserved.
const CLASSES: std::ops::RangeInclusive<u8> = 1..=6;

/// The check of the empty drive, before there is a state to go back to.
pub(super) fn run_empty(suite: &mut Runner<Drive<'_>>) {
    suite.check_as_is("events.empty-drive", |drive| {
        let (_, status) = drive.media_events()?;
        ensure!(
            status & (DOOR_OPEN | MEDIA_PRESENT) == 0,
            "media status 0x{status:02X} of an empty drive with its tray closed, expected door closed and no media"
        );
        Ok(())
    });
}

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("events.new-media-then-no-change", |drive| {
        drive.eject(true).map_err(|e| format!("the forced eject failed: {e}"))?;
        drive.drain_media_events()?;
        drive.insert_pressed()?;
        let (reported, status) = drive.media_event()?;
        ensure!(
            reported == event::NEW_MEDIA,
            "after a disc went in GESN reported event {reported}, expected new media (2)"
        );
        ensure!(status & MEDIA_PRESENT != 0, "new media with media status 0x{status:02X}: Media Present clear");
        let (reported, status) = drive.media_event()?;
        ensure!(reported == event::NO_CHANGE, "GESN reported event {reported} after new media, expected no change (0)");
        ensure!(
            status & (DOOR_OPEN | MEDIA_PRESENT) == MEDIA_PRESENT,
            "media status 0x{status:02X} with the disc in and the tray closed, expected 02h"
        );
        drive.expect_disc_arrival()
    });
    suite.check("events.operator-eject", |drive| {
        drive.eject(false)?;
        drive.expect_media_events(
            &[event::EJECT_REQUEST, event::MEDIA_REMOVAL],
            DOOR_OPEN | MEDIA_PRESENT,
            DOOR_OPEN,
        )?;
        drive.execute_expecting(&super::drive::tur(), &[], 0, code::NO_DISC_TRAY_OPEN)?;
        ensure!(drive.door_open()?, "MECHANISM STATUS says the door is closed after the operator's eject");
        Ok(())
    });
    suite.check("events.swap-in-order", |drive| {
        drive.eject(false)?;
        drive.insert_pressed()?;
        drive.expect_media_events(
            &[event::EJECT_REQUEST, event::MEDIA_REMOVAL, event::NEW_MEDIA],
            DOOR_OPEN | MEDIA_PRESENT,
            MEDIA_PRESENT,
        )?;
        drive.expect_disc_arrival()
    });
    suite.check("events.supported-classes-answer", |drive| {
        let supported = supported_classes(drive)?;
        for class in CLASSES.filter(|class| supported & (1 << class) != 0) {
            let data = drive.execute_good(&gesn(1 << class, 8), &[], 8)?;
            ensure!(data.len() >= 4, "GESN of class {class}: {} bytes, shorter than the header", data.len());
            let declared = 2 + be(&data, 0..2)? as usize;
            ensure!(
                data.len() == declared.min(8) && declared >= 8,
                "GESN of class {class}: EVENT DATA LENGTH accounts for {declared} bytes, {} returned; a supported \
                 class reports a 4-byte event",
                data.len()
            );
            ensure!(data[2] & 0x80 == 0, "GESN of supported class {class} set NEA");
            ensure!(data[2] & 0x07 == class, "GESN of class {class} reported class {}", data[2] & 0x07);
            ensure!(data[3] == supported, "SUPPORTED EVENT CLASSES 0x{:02X}, earlier 0x{supported:02X}", data[3]);
        }
        Ok(())
    });
    let unsupported = unsupported_class(suite);
    suite.check_if("events.unsupported-class-has-no-event", unsupported, |drive, class| {
        let data = drive.execute_good(&gesn(1 << class, 8), &[], 8)?;
        ensure!(
            data.len() == 4 && be(&data, 0..2)? == 2,
            "GESN of unsupported class {class} returned {data:02X?}, expected the 4-byte header alone"
        );
        ensure!(data[2] & 0x80 != 0, "GESN of unsupported class {class}: NEA clear");
        Ok(())
    });
    suite.check("invalid.gesn-asynchronous", |drive| {
        // Polled clear: asynchronous notification, which needs a transport
        // feature a drive without it must refuse.
        let mut cdb = gesn(1 << MEDIA_CLASS, 8);
        cdb[1] = 0;
        drive.execute_expecting(&cdb, &[], 8, sense::INVALID_FIELD_IN_CDB).map(drop)
    });
}

/// SUPPORTED EVENT CLASSES of a media class reply.
fn supported_classes(drive: &mut Drive<'_>) -> Result<u8, String> {
    let data = drive.execute_good(&gesn(1 << MEDIA_CLASS, 8), &[], 8)?;
    ensure!(data.len() >= 4, "GESN returned {} bytes, shorter than the header", data.len());
    Ok(data[3])
}

/// A class the drive does not support, for the NEA check (skipped if it
/// supports them all).
fn unsupported_class(suite: &mut Runner<Drive<'_>>) -> Result<u8, String> {
    let supported = supported_classes(&mut suite.dev).map_err(|e| format!("GESN: {e}"))?;
    CLASSES.rev().find(|class| supported & (1 << class) == 0).ok_or_else(|| "the drive supports every class".into())
}
