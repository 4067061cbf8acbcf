//! What a disc looks like to the commands that describe it: READ
//! CAPACITY, READ TOC/PMA/ATIP, READ DISC INFORMATION, READ TRACK
//! INFORMATION, READ DVD STRUCTURE, READ FORMAT CAPACITIES. One session,
//! one data track (Mode 1 / DVD sectors) from LBA 0: on a pressed disc to
//! the end, closed; on a DVD+R as far as it is recorded, open (with a next
//! writable address and free blocks) until CLOSE TRACK/SESSION.

use tcmu_guest_sdk::scsi::bytes::{get_be16, get_be32, put_be16, put_be32};
use tcmu_guest_sdk::scsi::capacity::read_capacity_10_data;
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{LBA_OUT_OF_RANGE, Sense, SenseCode, key};
use tcmu_guest_sdk::{Command, Transfer};

use crate::disc::SECTOR;
use crate::recording::{Recording, Status};
use crate::{OpticalDrive, Outcome};

/// The only track, and the lead-out's track number.
const TRACK: u8 = 1;
const LEAD_OUT: u8 = 0xaa;
/// ADR 1 (Q sub-channel position), CONTROL 4 (data track, recorded
/// uninterrupted).
const ADR_CONTROL_DATA: u8 = 0x14;
/// READ DVD STRUCTURE of a structure this disc does not have.
const INCOMPATIBLE_FORMAT: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x30, 0x02);
/// First physical sector of a DVD's data area (ECMA-267).
const DVD_DATA_START_PSN: u32 = 0x0003_0000;

/// LBA → minutes, seconds, frames (75 frames a second, 2 s pre-gap).
/// Minutes past 255 (only a DVD gets there) are clamped.
pub(crate) fn msf(lba: u32) -> [u8; 3] {
    let frames = lba.saturating_add(150);
    let minutes = (frames / (60 * 75)).min(255) as u8;
    [minutes, (frames / 75 % 60) as u8, (frames % 75) as u8]
}

/// A start address in a TOC descriptor, as LBA or as 0:M:S:F.
fn address(lba: u32, as_msf: bool) -> [u8; 4] {
    if as_msf {
        let [m, s, f] = msf(lba);
        [0, m, s, f]
    } else {
        lba.to_be_bytes()
    }
}

impl OpticalDrive {
    /// READ CAPACITY(10): last LBA and 2048-byte blocks.
    pub(crate) fn read_capacity(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        // A blank disc reports LBA 0, as drives do.
        let blocks = self.ready_disc()?.blocks();
        let data = read_capacity_10_data(u64::from(blocks.saturating_sub(1)), SECTOR);
        Ok(respond(xfer, cmd, &data, 8))
    }

    /// READ TOC/PMA/ATIP formats 0 (TOC), 1 (session information) and 2
    /// (full TOC). The format may also come in the control byte's two
    /// high bits (the SFF-8020 form older software sends).
    pub(crate) fn read_toc(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let as_msf = cdb[1] & 0x02 != 0;
        let mut format = cdb[2] & 0x0f;
        if format == 0 {
            format = cdb[9] >> 6;
        }
        let start_track = cdb[6];
        let allocation = u32::from(get_be16(&cdb[7..]));
        let blocks = self.ready_disc()?.blocks();
        if blocks == 0 {
            // A blank disc has no table of contents.
            return Err(Sense::invalid_cdb_field(2, None));
        }
        let mut data = vec![0u8; 4];
        match format {
            0 => {
                data[2] = TRACK;
                data[3] = TRACK;
                if start_track > TRACK && start_track != LEAD_OUT {
                    return Err(Sense::invalid_cdb_field(6, None));
                }
                if start_track <= TRACK {
                    data.extend([0, ADR_CONTROL_DATA, TRACK, 0]);
                    data.extend(address(0, as_msf));
                }
                data.extend([0, ADR_CONTROL_DATA, LEAD_OUT, 0]);
                data.extend(address(blocks, as_msf));
            }
            1 => {
                data[2] = 1; // first complete session
                data[3] = 1; // last complete session
                data.extend([0, ADR_CONTROL_DATA, TRACK, 0]);
                data.extend(address(0, as_msf));
            }
            2 => {
                data[2] = 1;
                data[3] = 1;
                let [m, s, f] = msf(blocks);
                // Session 1: A0 first track (disc type 00h, CD-ROM), A1
                // last track, A2 lead-out start, then track 1 itself.
                for (point, p) in [(0xa0, [TRACK, 0x00, 0]), (0xa1, [TRACK, 0, 0]), (0xa2, [m, s, f])] {
                    data.extend([1, ADR_CONTROL_DATA, 0, point, 0, 0, 0, 0, p[0], p[1], p[2]]);
                }
                let [m, s, f] = msf(0);
                data.extend([1, ADR_CONTROL_DATA, 0, TRACK, 0, 0, 0, 0, m, s, f]);
            }
            _ => return Err(Sense::invalid_cdb_field(2, None)),
        }
        let len = (data.len() - 2) as u16;
        put_be16(&mut data, len);
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// READ DISC INFORMATION, standard disc information (data type 000b):
    /// one session and one track on a non-erasable disc, complete for a
    /// pressed disc, blank, incomplete or complete for a DVD+R.
    pub(crate) fn read_disc_information(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        if cdb[1] & 0x07 != 0 {
            return Err(Sense::invalid_cdb_field(1, Some(2)));
        }
        let allocation = u32::from(get_be16(&cdb[7..]));
        let recording = self.ready_disc()?.recording.clone();
        let mut data = vec![0u8; 34];
        put_be16(&mut data, 32);
        // Last session state (bits 3-2) and disc status (1-0): empty and
        // blank, incomplete and incomplete, complete and complete.
        data[2] = match recording.as_ref().map(|r| r.status) {
            Some(Status::Blank) => 0b0000,
            Some(Status::Incomplete) => 0b01 << 2 | 0b01,
            Some(Status::Complete) | None => 0b11 << 2 | 0b10,
        };
        data[3] = TRACK; // first track on the disc
        data[4] = 1; // sessions
        data[5] = TRACK; // first track in the last session
        data[6] = TRACK; // last track in the last session
        data[7] = 0x20; // URU: unrestricted use
        data[8] = 0x00; // disc type: CD-ROM / data (also what DVD drives report)
        match &recording {
            Some(r) if r.status != Status::Complete => {
                // Where the next session's lead-in would start, and the last
                // possible lead-out: the end of the data area.
                put_be32(&mut data[16..], 0);
                put_be32(&mut data[20..], r.capacity);
            }
            // A complete disc has no next lead-in and no last possible lead-out.
            _ => {
                put_be32(&mut data[16..], u32::MAX);
                put_be32(&mut data[20..], u32::MAX);
            }
        }
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// READ TRACK INFORMATION by LBA, track or session number.
    pub(crate) fn read_track_information(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let number = get_be32(&cdb[2..]);
        let allocation = u32::from(get_be16(&cdb[7..]));
        let disc = self.ready_disc()?;
        let blocks = disc.blocks();
        let recording = disc.recording.clone();
        let open = recording.as_ref().is_some_and(|r| r.status != Status::Complete && !r.track_closed);
        // The track spans the recorded sectors; an open one the whole
        // space it may still fill.
        let span = match &recording {
            Some(r) if open => r.track_end(),
            _ => blocks,
        };
        match cdb[1] & 0x03 {
            0b00 if number < span => {}
            0b00 => return Err(LBA_OUT_OF_RANGE.into()),
            // Track FFh is the invisible (open) track of a recordable disc.
            0b01 if number == 1 || number == 0xff && open => {}
            0b10 if number == 1 => {}
            0b01 | 0b10 => return Err(Sense::invalid_cdb_field(2, None)),
            _ => return Err(Sense::invalid_cdb_field(1, Some(1))),
        }
        let mut data = vec![0u8; 48];
        put_be16(&mut data, 46);
        data[2] = TRACK;
        data[3] = 1; // session
        data[5] = 0x04; // track mode: data, recorded uninterrupted
        data[6] = 0x01; // data mode 1
        data[7] = 0x00; // no next writable address, no last recorded address
        put_be32(&mut data[8..], 0); // track start
        put_be32(&mut data[20..], if self.current_profile() == crate::features::profile::CD_ROM { 0 } else { 16 });
        put_be32(&mut data[24..], span); // track size
        if let Some(r) = &recording {
            track_recording(&mut data, r, open);
        }
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// READ DVD STRUCTURE: formats 00h (physical format), 01h (copyright:
    /// no protection), 04h (manufacturing information, empty), 11h (DVD+R
    /// ADIP, on a DVD+R) and FFh (the list). 0Eh (DVD-R pre-recorded
    /// lead-in), and 11h on a pressed disc, are 05/30/02.
    pub(crate) fn read_dvd_structure(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 12 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        if cdb[1] & 0x0f != 0 {
            // Media type 1 is BD; only DVD structures here.
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let layer = cdb[6];
        let format = cdb[7];
        let allocation = u32::from(get_be16(&cdb[8..]));
        let disc = self.ready_disc()?;
        let recordable = disc.recording.as_ref().map(|r| r.capacity);
        // The data area: what is pressed, or the whole recordable area.
        let blocks = recordable.unwrap_or(disc.blocks());
        if layer != 0 && format < 0xc0 {
            return Err(Sense::invalid_cdb_field(6, None));
        }
        let body: Vec<u8> = match format {
            0x00 => {
                let mut p = vec![0u8; 2048];
                p[0] = if recordable.is_some() { 0xa1 } else { 0x01 }; // book type DVD+R / DVD-ROM, version 1
                p[1] = 0x02; // 120 mm, maximum rate 10.08 Mbit/s
                p[2] = if recordable.is_some() { 0x02 } else { 0x01 }; // one layer; recordable / embossed
                p[3] = 0x10; // 0.267 µm/bit, 0.74 µm/track
                put_be32(&mut p[4..], DVD_DATA_START_PSN);
                put_be32(&mut p[8..], DVD_DATA_START_PSN.saturating_add(blocks - 1));
                p
            }
            0x01 => vec![0, 0, 0, 0], // no copy protection, all regions
            0x04 => vec![0u8; 2048],
            0x11 if recordable.is_some() => adip(blocks),
            0x0e | 0x11 => return Err(INCOMPATIBLE_FORMAT.into()),
            0xff => {
                let mut list = Vec::new();
                let mut formats = vec![(0x00u8, 2048u16), (0x01, 4), (0x04, 2048)];
                if recordable.is_some() {
                    formats.push((0x11, 256));
                }
                formats.push((0xff, 4 * (formats.len() as u16 + 1)));
                for (code, len) in formats {
                    let mut d = [code, 0x40, 0, 0]; // RDS: readable with READ DVD STRUCTURE
                    put_be16(&mut d[2..], len);
                    list.extend(d);
                }
                list
            }
            _ => return Err(Sense::invalid_cdb_field(7, None)),
        };
        let mut data = vec![0u8; 4];
        put_be16(&mut data, (body.len() + 2) as u16);
        data.extend(body);
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// READ FORMAT CAPACITIES: the capacity list header and one current
    /// descriptor of the disc as "formatted media".
    pub(crate) fn read_format_capacities(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let allocation = u32::from(get_be16(&cdb[7..]));
        let disc = self.ready_disc()?;
        // A DVD+R that is not complete: its whole capacity, unformatted.
        let (blocks, kind) = match &disc.recording {
            Some(r) if r.status != Status::Complete => (r.capacity, 0x01),
            _ => (disc.blocks(), 0x02),
        };
        let mut data = vec![0, 0, 0, 8];
        let mut d = [0u8; 8];
        put_be32(&mut d, blocks);
        d[4] = kind; // descriptor type: unformatted or formatted media
        d[5..8].copy_from_slice(&SECTOR.to_be_bytes()[1..]);
        data.extend(d);
        Ok(respond(xfer, cmd, &data, allocation))
    }
}

/// The recording fields of a READ TRACK INFORMATION reply: the reserved
/// and blank bits, the next writable address and free blocks of an open
/// track, the last recorded address. On DVD+R a reserved or closed track
/// has RT set (RT and Blank: 00 invisible, 01 blank, 10 partial or
/// complete, 11 reserved), as dvd+rw-mediainfo decodes it.
fn track_recording(data: &mut [u8], r: &Recording, open: bool) {
    let rt = r.reserved > 0 || !open;
    data[6] = 0x01 | u8::from(rt) << 7 | u8::from(r.written == 0) << 6; // RT, Blank, data mode 1
    if r.written == 0 {
        data[5] = 0x04; // a blank track has no copy or damage state
    }
    let mut valid = 0;
    if open {
        valid |= 0x01; // NWA_V
        put_be32(&mut data[12..], r.written);
        put_be32(&mut data[16..], r.free());
    }
    if r.written > 0 {
        valid |= 0x02; // LRA_V
        put_be32(&mut data[28..], r.written - 1);
    }
    data[7] = valid;
}

/// READ DVD STRUCTURE 11h, DVD+R ADIP information: the disc's book type,
/// data area, and the media identifier dvd+rw-mediainfo prints.
fn adip(blocks: u32) -> Vec<u8> {
    let mut a = vec![0u8; 256];
    a[0] = 0xa1; // DVD+R, version 1
    a[1] = 0x02; // 120 mm, 10.08 Mbit/s
    a[2] = 0x02; // one layer, recordable
    a[3] = 0x10;
    put_be32(&mut a[4..], DVD_DATA_START_PSN);
    put_be32(&mut a[8..], DVD_DATA_START_PSN.saturating_add(blocks - 1));
    a[19..27].copy_from_slice(b"TCMUWASM"); // disc manufacturer ID
    a[27..30].copy_from_slice(b"R01"); // media type ID
    a[30] = 0x01; // product revision
    a
}

#[cfg(test)]
mod tests {
    use super::msf;

    #[test]
    fn msf_counts_the_two_second_pregap() {
        assert_eq!(msf(0), [0, 2, 0]);
        assert_eq!(msf(74), [0, 2, 74]);
        assert_eq!(msf(75), [0, 3, 0]);
        assert_eq!(msf(60 * 75 - 150), [1, 0, 0]);
        assert_eq!(msf(u32::MAX - 150)[0], 255);
    }
}
