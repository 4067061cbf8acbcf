//! GET EVENT STATUS NOTIFICATION, polled: the operational change class
//! (nothing ever changes) and the media class, whose events queue up in
//! the order they happened (eject request, media removal, new media) so
//! the sr driver and udev see each one.

use std::collections::VecDeque;

use tcmu_guest_sdk::scsi::bytes::{get_be16, put_be16};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::Sense;
use tcmu_guest_sdk::{Command, Transfer};

use crate::{OpticalDrive, Outcome};

/// Media events not yet reported; older ones are dropped past this many
/// (an initiator that never polls must not grow the queue).
const MAX_PENDING: usize = 8;

/// Notification class bits (the CDB's class request, the reply's
/// supported-classes byte) and the class numbers of the reply header.
mod class {
    pub const OPERATIONAL_CHANGE: u8 = 1;
    pub const MEDIA: u8 = 4;
    /// The classes this drive reports.
    pub const SUPPORTED: u8 = 1 << OPERATIONAL_CHANGE | 1 << MEDIA;
}

/// Media class event codes (MMC-6 table 150).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MediaEvent {
    /// The eject button was pressed (here: the operator asked the host to
    /// take the disc out).
    EjectRequest = 1,
    /// A disc was put in (or the tray closed on one).
    NewMedia = 2,
    /// The disc was taken out (or the tray opened).
    MediaRemoval = 3,
}

/// The media events not yet reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MediaEvents {
    pending: VecDeque<MediaEvent>,
}

impl MediaEvents {
    /// Queue `event`.
    pub fn push(&mut self, event: MediaEvent) {
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(event);
    }

    /// The oldest pending event, taken off the queue.
    fn take(&mut self) -> Option<MediaEvent> {
        self.pending.pop_front()
    }

    /// The pending events, oldest first (for the saved state).
    pub fn pending(&self) -> impl Iterator<Item = MediaEvent> + '_ {
        self.pending.iter().copied()
    }

    /// Rebuild from saved codes; unknown codes are skipped.
    pub fn from_codes(codes: &[u8]) -> Self {
        let mut events = Self::default();
        for &code in codes {
            let event = match code {
                1 => MediaEvent::EjectRequest,
                2 => MediaEvent::NewMedia,
                3 => MediaEvent::MediaRemoval,
                _ => continue,
            };
            events.push(event);
        }
        events
    }
}

impl OpticalDrive {
    /// GET EVENT STATUS NOTIFICATION. Only polled operation: a request for
    /// asynchronous notification is INVALID FIELD IN CDB (byte 1, bit 0).
    /// Of the requested classes the lowest-numbered one with an event
    /// pending is reported (and the event consumed); with none pending,
    /// the lowest requested supported class reports "no change". A request
    /// for no supported class gets the header alone with NEA set.
    pub(crate) fn get_event_status(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        if cdb[1] & 0x01 == 0 {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let requested = cdb[4] & class::SUPPORTED;
        let allocation = u32::from(get_be16(&cdb[7..]));
        let mut data = vec![0u8; 4];
        data[3] = class::SUPPORTED;
        if requested == 0 {
            data[2] = 0x80; // NEA: no event available
            put_be16(&mut data[0..], 2);
            return Ok(respond(xfer, cmd, &data, allocation));
        }
        let media_wanted = requested & 1 << class::MEDIA != 0;
        // Operational change events never happen here, so the media class
        // reports whenever it is asked for.
        if media_wanted {
            let event = self.events.take().map_or(0, |e| e as u8);
            data[2] = class::MEDIA;
            data.extend([event, self.media_status(), 0, 0]);
        } else {
            data[2] = class::OPERATIONAL_CHANGE;
            // No change; operational status 0 (available), no persistent prevent.
            data.extend([0, u8::from(self.prevent) << 7, 0, 0]);
        }
        let len = (data.len() - 2) as u16;
        put_be16(&mut data[0..], len);
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// The media status byte: tray open (bit 0), a disc in the drive (bit 1).
    pub(crate) fn media_status(&self) -> u8 {
        let present = self.disc.is_some() && !self.tray_open;
        u8::from(self.tray_open) | u8::from(present) << 1
    }
}
