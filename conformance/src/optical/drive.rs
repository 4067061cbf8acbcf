//! The optical drive under test: the target and what the suite put in it,
//! the MMC sense codes and CDB builders, and the steps checks share
//! (waiting for the drive to become ready, polling media events, reading
//! and comparing sectors, fetching the configuration and mode pages).

use super::{DiscKind, OPTICAL_SECTOR_SIZE, OpticalParams, OpticalTarget, pressed_sector};
use crate::common::{self, Lun, Settle, describe};
use crate::expect::{self, be, ensure};
use crate::sense::{KEY_UNIT_ATTENTION, SenseCode};
use crate::target::{STATUS_GOOD, ScsiTarget};

/// Sense codes of MMC-6 and SPC-4 the optical checks expect.
pub(crate) mod code {
    use crate::sense::SenseCode;

    /// NOT READY, MEDIUM NOT PRESENT - TRAY CLOSED (02/3A/01).
    pub(crate) const NO_DISC_TRAY_CLOSED: SenseCode = SenseCode::new(0x02, 0x3A, 0x01);
    /// NOT READY, MEDIUM NOT PRESENT - TRAY OPEN (02/3A/02).
    pub(crate) const NO_DISC_TRAY_OPEN: SenseCode = SenseCode::new(0x02, 0x3A, 0x02);
    /// NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY (02/04/01).
    pub(crate) const BECOMING_READY: SenseCode = SenseCode::new(0x02, 0x04, 0x01);
    /// NOT READY, LOGICAL UNIT NOT READY, OPERATION IN PROGRESS (02/04/07):
    /// an immediate CLOSE TRACK/SESSION still writing.
    pub(crate) const OPERATION_IN_PROGRESS: SenseCode = SenseCode::new(0x02, 0x04, 0x07);
    /// UNIT ATTENTION, NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (06/28/00).
    pub(crate) const MEDIUM_MAY_HAVE_CHANGED: SenseCode = SenseCode::new(0x06, 0x28, 0x00);
    /// ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED (05/53/02).
    pub(crate) const MEDIUM_REMOVAL_PREVENTED: SenseCode = SenseCode::new(0x05, 0x53, 0x02);
    /// ILLEGAL REQUEST, INVALID ADDRESS FOR WRITE (05/21/02).
    pub(crate) const INVALID_ADDRESS_FOR_WRITE: SenseCode = SenseCode::new(0x05, 0x21, 0x02);
    /// ILLEGAL REQUEST, COMMAND SEQUENCE ERROR (05/2C/00).
    pub(crate) const COMMAND_SEQUENCE_ERROR: SenseCode = SenseCode::new(0x05, 0x2C, 0x00);
    /// ILLEGAL REQUEST, CANNOT READ MEDIUM - INCOMPATIBLE FORMAT (05/30/02):
    /// a DVD structure the disc does not have.
    pub(crate) const INCOMPATIBLE_FORMAT: SenseCode = SenseCode::new(0x05, 0x30, 0x02);
}

/// Opcodes of MMC-6 and SPC-4 the suite sends to an optical drive.
pub(crate) mod op {
    pub(crate) const TEST_UNIT_READY: u8 = 0x00;
    pub(crate) const REQUEST_SENSE: u8 = 0x03;
    pub(crate) const START_STOP_UNIT: u8 = 0x1B;
    pub(crate) const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    pub(crate) const READ_CAPACITY: u8 = 0x25;
    pub(crate) const READ_10: u8 = 0x28;
    pub(crate) const WRITE_10: u8 = 0x2A;
    pub(crate) const SYNCHRONIZE_CACHE: u8 = 0x35;
    pub(crate) const READ_TOC_PMA_ATIP: u8 = 0x43;
    pub(crate) const GET_CONFIGURATION: u8 = 0x46;
    pub(crate) const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4A;
    pub(crate) const READ_DISC_INFORMATION: u8 = 0x51;
    pub(crate) const READ_TRACK_INFORMATION: u8 = 0x52;
    pub(crate) const RESERVE_TRACK: u8 = 0x53;
    pub(crate) const CLOSE_TRACK_SESSION: u8 = 0x5B;
    pub(crate) const READ_12: u8 = 0xA8;
    pub(crate) const WRITE_12: u8 = 0xAA;
    pub(crate) const READ_DVD_STRUCTURE: u8 = 0xAD;
    pub(crate) const MECHANISM_STATUS: u8 = 0xBD;
}

/// Media class event codes of GET EVENT STATUS NOTIFICATION (MMC-6).
pub(crate) mod event {
    /// No change since the last report.
    pub(crate) const NO_CHANGE: u8 = 0;
    /// The user asked for the disc (the eject button).
    pub(crate) const EJECT_REQUEST: u8 = 1;
    /// A disc was put in, or the tray closed on one.
    pub(crate) const NEW_MEDIA: u8 = 2;
    /// The disc was taken out, or the tray opened.
    pub(crate) const MEDIA_REMOVAL: u8 = 3;
}

/// Bits of the media status byte of a media event: the tray (door) is
/// open; a disc is in the drive.
pub(crate) const DOOR_OPEN: u8 = 0x01;
pub(crate) const MEDIA_PRESENT: u8 = 0x02;

/// The class request bit and class number of the media class of GESN.
pub(crate) const MEDIA_CLASS: u8 = 4;

/// MMC profile numbers the suite looks for.
pub(crate) mod profile {
    pub(crate) const NONE: u16 = 0x0000;
    pub(crate) const CD_ROM: u16 = 0x0008;
    pub(crate) const CD_R: u16 = 0x0009;
    pub(crate) const CD_RW: u16 = 0x000A;
    pub(crate) const DVD_ROM: u16 = 0x0010;
    pub(crate) const DVD_R: u16 = 0x0011;
    pub(crate) const DVD_RAM: u16 = 0x0012;
    pub(crate) const DVD_PLUS_R: u16 = 0x001B;
}

/// Which disc the suite last had put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disc {
    Pressed,
    Recordable,
}

/// TEST UNIT READYs a drive gets to become ready after a disc arrives or
/// an immediate close starts: each costs a command, not time, so a drive
/// that never gets there fails rather than hangs.
const MAX_NOT_READY: usize = 32;
/// Media events the suite reads before it gives up on reaching "no change".
const MAX_EVENTS: usize = 16;

/// The drive under test.
pub(crate) struct Drive<'t> {
    target: &'t mut dyn OpticalTarget,
    pub(crate) params: OpticalParams,
    /// The disc in the drive, as far as the suite knows.
    pub(crate) disc: Option<Disc>,
    /// The suite opened the tray (START STOP UNIT) with the disc on it.
    pub(crate) tray_open: bool,
}

impl Lun for Drive<'_> {
    fn target(&mut self) -> &mut dyn ScsiTarget {
        self.target
    }
}

impl<'t> Drive<'t> {
    pub(crate) fn new(target: &'t mut dyn OpticalTarget, params: OpticalParams) -> Self {
        Self { target, params, disc: None, tray_open: false }
    }

    /// Sectors on the pressed disc.
    pub(crate) fn pressed_sectors(&self) -> u32 {
        self.params.pressed_sectors
    }

    /// Have `kind` put into the (empty) drive.
    pub(crate) fn insert(&mut self, kind: DiscKind) -> Result<(), String> {
        self.target.insert(kind).map_err(|e| format!("inserting {kind:?} failed: {e}"))?;
        self.disc = Some(match kind {
            DiscKind::Pressed { .. } => Disc::Pressed,
            DiscKind::BlankRecordable { .. } | DiscKind::SameRecordable => Disc::Recordable,
        });
        self.tray_open = false;
        Ok(())
    }

    /// The pressed disc.
    pub(crate) fn insert_pressed(&mut self) -> Result<(), String> {
        let sectors = self.params.pressed_sectors;
        self.insert(DiscKind::Pressed { sectors })
    }

    /// A fresh blank recordable disc.
    pub(crate) fn insert_blank(&mut self) -> Result<(), String> {
        let sectors = self.params.recordable_sectors;
        self.insert(DiscKind::BlankRecordable { sectors })
    }

    /// Have the disc taken out (see [`OpticalTarget::eject`]); the target's
    /// refusal is returned as is.
    pub(crate) fn eject(&mut self, force: bool) -> Result<(), String> {
        self.target.eject(force)?;
        self.disc = None;
        self.tray_open = false;
        Ok(())
    }

    /// TEST UNIT READY until GOOD, through what a drive may say on the way
    /// (becoming ready, an immediate close in progress, unit attentions);
    /// returns what it said.
    pub(crate) fn wait_ready(&mut self) -> Result<Vec<SenseCode>, String> {
        let mut seen = Vec::new();
        for _ in 0..MAX_NOT_READY {
            let response = self.execute(&tur(), &[], 0)?;
            if response.status == STATUS_GOOD {
                return Ok(seen);
            }
            let sense = response.decoded_sense().map_err(|e| format!("TEST UNIT READY: {response} ({e})"))?;
            seen.push(sense.code);
            ensure!(
                [code::BECOMING_READY, code::OPERATION_IN_PROGRESS].contains(&sense.code)
                    || sense.code.key == KEY_UNIT_ATTENTION,
                "TEST UNIT READY reported {} on the way to ready (so far: {})",
                sense.code,
                codes(&seen)
            );
        }
        Err(format!("the drive did not become ready in {MAX_NOT_READY} TEST UNIT READYs: {}", codes(&seen)))
    }

    /// What a drive owes an initiator when a disc arrives (SPC-4, MMC-6):
    /// TEST UNIT READY reports one UNIT ATTENTION 28/00 and any number of
    /// BECOMING READY (see [`check_arrival`]), then GOOD.
    pub(crate) fn expect_disc_arrival(&mut self) -> Result<(), String> {
        let mut seen = Vec::new();
        for _ in 0..MAX_NOT_READY {
            let response = self.execute(&tur(), &[], 0)?;
            if response.status == STATUS_GOOD {
                return check_arrival(&seen);
            }
            let sense = response.decoded_sense().map_err(|e| format!("TEST UNIT READY: {response} ({e})"))?;
            seen.push(sense.code);
        }
        Err(format!("the drive did not become ready in {MAX_NOT_READY} TEST UNIT READYs: {}", codes(&seen)))
    }

    /// One media class event (GET EVENT STATUS NOTIFICATION, polled, media
    /// class only): the reply must be the 4-byte header (event data length
    /// 6, class 4, NEA clear, media among the supported classes) and one
    /// 4-byte media event descriptor. Returns (event code, media status).
    pub(crate) fn media_event(&mut self) -> Result<(u8, u8), String> {
        let data = self.execute_good(&gesn(1 << MEDIA_CLASS, 8), &[], 8)?;
        ensure!(data.len() == 8, "GESN of the media class returned {} bytes, expected 8", data.len());
        let declared = be(&data, 0..2)?;
        ensure!(declared == 6, "GESN EVENT DATA LENGTH {declared}, expected 6 (a header and one media event)");
        ensure!(data[2] & 0x80 == 0, "GESN set NEA although the media class was asked for and is supported");
        ensure!(data[2] & 0x07 == MEDIA_CLASS, "GESN reported class {}, expected the media class (4)", data[2] & 0x07);
        ensure!(
            data[3] & (1 << MEDIA_CLASS) != 0,
            "GESN SUPPORTED EVENT CLASSES 0x{:02X} lacks the media class",
            data[3]
        );
        Ok((data[4] & 0x0F, data[5]))
    }

    /// Media events until "no change"; returns the codes before it and the
    /// media status that came with "no change".
    pub(crate) fn media_events(&mut self) -> Result<(Vec<u8>, u8), String> {
        let mut events = Vec::new();
        for _ in 0..MAX_EVENTS {
            let (code, status) = self.media_event()?;
            if code == event::NO_CHANGE {
                return Ok((events, status));
            }
            events.push(code);
        }
        Err(format!("GESN reported {MAX_EVENTS} media events without reaching \"no change\": {events:?}"))
    }

    /// Read away pending media events; returns their codes.
    pub(crate) fn drain_media_events(&mut self) -> Result<Vec<u8>, String> {
        self.media_events().map(|(events, _)| events)
    }

    /// The media events must be exactly `want`, then "no change" with a
    /// status whose bits in `mask` are `status`.
    pub(crate) fn expect_media_events(&mut self, want: &[u8], mask: u8, status: u8) -> Result<(), String> {
        let (events, got) = self.media_events()?;
        ensure!(events == want, "media events {} then no change; expected {}", event_names(&events), event_names(want));
        ensure!(
            got & mask == status,
            "media status 0x{got:02X} with the events read, expected 0x{status:02X} in bits 0x{mask:02X} \
             (01h door open, 02h media present)"
        );
        Ok(())
    }

    /// READ(10) or READ(12) of `count` sectors at `lba`; returns the data.
    pub(crate) fn read(&mut self, opcode: u8, lba: u32, count: u32) -> Result<Vec<u8>, String> {
        let len = count * OPTICAL_SECTOR_SIZE;
        let cdb = transfer(opcode, lba, count);
        let data = self.execute_good(&cdb, &[], len)?;
        ensure!(data.len() == len as usize, "{}: {} bytes of data-in, expected {len}", describe(&cdb), data.len());
        Ok(data)
    }

    /// Read `count` sectors at `lba` of the pressed disc, which must hold
    /// its pattern.
    pub(crate) fn expect_pressed(&mut self, opcode: u8, lba: u32, count: u32) -> Result<(), String> {
        let data = self.read(opcode, lba, count)?;
        let want: Vec<u8> = (lba..lba + count).flat_map(pressed_sector).collect();
        expect::same_blocks(&data, &want, lba.into(), OPTICAL_SECTOR_SIZE)
    }

    /// Read `want` back from `lba` with `opcode`.
    pub(crate) fn expect_sectors(&mut self, opcode: u8, lba: u32, want: &[u8]) -> Result<(), String> {
        let count = want.len() as u32 / OPTICAL_SECTOR_SIZE;
        let data = self.read(opcode, lba, count)?;
        expect::same_blocks(&data, want, lba.into(), OPTICAL_SECTOR_SIZE)
    }

    /// READ CAPACITY: (last LBA, block length).
    pub(crate) fn capacity(&mut self) -> Result<(u32, u32), String> {
        let data = self.execute_good(&[op::READ_CAPACITY, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8)?;
        ensure!(data.len() == 8, "READ CAPACITY returned {} bytes, expected 8", data.len());
        Ok((be(&data, 0..4)? as u32, be(&data, 4..8)? as u32))
    }

    /// GET CONFIGURATION with `rt` from feature `start`, decoded.
    pub(crate) fn configuration(&mut self, rt: u8, start: u16) -> Result<Configuration, String> {
        let data =
            self.execute_good(&get_configuration(rt, start, CONFIGURATION_ALLOC), &[], CONFIGURATION_ALLOC.into())?;
        Configuration::decode(&data)
    }

    /// READ DISC INFORMATION (standard disc information); checks the
    /// length and returns the data.
    pub(crate) fn disc_information(&mut self) -> Result<Vec<u8>, String> {
        let data = self.execute_good(&read_disc_information(0, 0xFF), &[], 0xFF)?;
        let declared = 2 + be(&data, 0..2)? as usize;
        ensure!(declared >= 34, "DISC INFORMATION LENGTH accounts for {declared} bytes, MMC-6 defines at least 34");
        ensure!(
            data.len() == declared,
            "DISC INFORMATION LENGTH accounts for {declared} bytes, {} returned",
            data.len()
        );
        Ok(data)
    }

    /// READ TRACK INFORMATION of track `track`, decoded.
    pub(crate) fn track(&mut self, track: u32) -> Result<TrackInfo, String> {
        let data = self.execute_good(&read_track_information(0b01, track, 0xFF), &[], 0xFF)?;
        TrackInfo::decode(&data)
    }

    /// READ DVD STRUCTURE of `format` (layer 0); returns the structure
    /// after the 4-byte header, whose length must account for it.
    pub(crate) fn dvd_structure(&mut self, format: u8) -> Result<Vec<u8>, String> {
        let data =
            self.execute_good(&read_dvd_structure(format, DVD_STRUCTURE_ALLOC), &[], DVD_STRUCTURE_ALLOC.into())?;
        let declared = 2 + be(&data, 0..2)? as usize;
        ensure!(
            data.len() == declared && declared >= 4,
            "READ DVD STRUCTURE {format:02X}h: DATA LENGTH accounts for {declared} bytes, {} returned",
            data.len()
        );
        Ok(data[4..].to_vec())
    }

    /// MODE SENSE(10) of one page (current values); returns the page from
    /// its page code on.
    pub(crate) fn mode_page(&mut self, page: u8) -> Result<Vec<u8>, String> {
        let data = self.execute_good(&common::mode_sense10(0, page, MODE_ALLOC), &[], MODE_ALLOC.into())?;
        let pages = common::mode_pages(&data, true)?;
        match pages.as_slice() {
            [(code, bytes)] if *code == page => Ok(bytes.clone()),
            _ => Err(format!(
                "MODE SENSE(10) of page {page:02X}h returned pages {:02X?}",
                pages.iter().map(|(code, _)| *code).collect::<Vec<_>>()
            )),
        }
    }

    /// START STOP UNIT with LoEj: open the tray (`load` false) or close it.
    pub(crate) fn tray(&mut self, load: bool) -> Result<(), String> {
        self.execute_good(&start_stop(true, load), &[], 0)?;
        self.tray_open = !load && self.disc.is_some();
        Ok(())
    }

    /// MECHANISM STATUS: the door open bit.
    pub(crate) fn door_open(&mut self) -> Result<bool, String> {
        let data = self.execute_good(&mechanism_status(0xFF), &[], 0xFF)?;
        ensure!(data.len() >= 8, "MECHANISM STATUS returned {} bytes, shorter than its 8-byte header", data.len());
        let declared = 8 + be(&data, 6..8)? as usize;
        ensure!(data.len() == declared, "MECHANISM STATUS accounts for {declared} bytes, {} returned", data.len());
        Ok(data[1] & 0x10 != 0)
    }
}

impl Settle for Drive<'_> {
    /// The known state: removal allowed, the pressed disc in, the tray
    /// closed, ready, no media event pending.
    fn settle(&mut self) -> Result<(), String> {
        self.execute_good(&prevent_allow(false), &[], 0)?;
        if self.disc != Some(Disc::Pressed) {
            self.eject(true).map_err(|e| format!("the forced eject failed: {e}"))?;
            self.insert_pressed()?;
        } else if self.tray_open {
            self.tray(true)?;
        } else {
            // A check whose refused eject went through anyway left the tray
            // open behind the suite's back.
            let response = self.execute(&tur(), &[], 0)?;
            if response.decoded_sense().is_ok_and(|s| s.code == code::NO_DISC_TRAY_OPEN) {
                self.tray(true)?;
            }
        }
        self.wait_ready()?;
        self.drain_media_events()?;
        self.execute_good(&tur(), &[], 0).map(drop)
    }
}

/// The TEST UNIT READY codes seen on the way to GOOD after a disc arrived
/// must be one UNIT ATTENTION 28/00 (SPC-4: the medium may have changed)
/// and otherwise only BECOMING READY, before or after it: a drive may
/// report the unit attention as soon as the disc is in (SAM-5 has a
/// pending unit attention win over NOT READY) or once it is ready.
pub(crate) fn check_arrival(seen: &[SenseCode]) -> Result<(), String> {
    let attentions = seen.iter().filter(|&&c| c == code::MEDIUM_MAY_HAVE_CHANGED).count();
    let others = seen.iter().any(|&c| c != code::MEDIUM_MAY_HAVE_CHANGED && c != code::BECOMING_READY);
    ensure!(
        attentions == 1 && !others,
        "after a disc arrived TEST UNIT READY reported {} then GOOD; expected one {} and otherwise only {}",
        codes(seen),
        code::MEDIUM_MAY_HAVE_CHANGED,
        code::BECOMING_READY
    );
    Ok(())
}

/// Allocation length for GET CONFIGURATION.
pub(crate) const CONFIGURATION_ALLOC: u16 = 4096;
/// Allocation length for READ DVD STRUCTURE: a 2048-byte structure and its header.
pub(crate) const DVD_STRUCTURE_ALLOC: u16 = 2052;
/// Allocation length for MODE SENSE(10).
pub(crate) const MODE_ALLOC: u16 = 1024;

/// One feature descriptor of GET CONFIGURATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Feature {
    pub(crate) code: u16,
    pub(crate) version: u8,
    pub(crate) persistent: bool,
    pub(crate) current: bool,
    /// The feature-dependent data after the 4-byte descriptor header.
    pub(crate) data: Vec<u8>,
}

/// A GET CONFIGURATION reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Configuration {
    /// DATA LENGTH of the feature header.
    pub(crate) data_len: u32,
    pub(crate) current_profile: u16,
    pub(crate) features: Vec<Feature>,
}

impl Configuration {
    /// Decode a complete reply: the 8-byte feature header, whose DATA
    /// LENGTH counts the bytes after itself, and descriptors that tile the
    /// rest with ADDITIONAL LENGTHs that are multiples of 4 (MMC-6).
    pub(crate) fn decode(data: &[u8]) -> Result<Self, String> {
        ensure!(data.len() >= 8, "GET CONFIGURATION returned {} bytes, shorter than the feature header", data.len());
        let data_len = be(data, 0..4)? as u32;
        ensure!(
            data.len() == 4 + data_len as usize,
            "GET CONFIGURATION DATA LENGTH {data_len} accounts for {} bytes, {} returned",
            4 + data_len as usize,
            data.len()
        );
        let current_profile = be(data, 6..8)? as u16;
        let mut features = Vec::new();
        let mut at = 8;
        while at < data.len() {
            ensure!(at + 4 <= data.len(), "a feature descriptor header at byte {at} is cut off");
            let code = be(data, at..at + 2)? as u16;
            let len = usize::from(data[at + 3]);
            ensure!(len.is_multiple_of(4), "feature {code:04X}h ADDITIONAL LENGTH {len} is not a multiple of 4");
            ensure!(
                at + 4 + len <= data.len(),
                "feature {code:04X}h claims {len} bytes, {} remain",
                data.len() - at - 4
            );
            features.push(Feature {
                code,
                version: (data[at + 2] >> 2) & 0x0F,
                persistent: data[at + 2] & 0x02 != 0,
                current: data[at + 2] & 0x01 != 0,
                data: data[at + 4..at + 4 + len].to_vec(),
            });
            at += 4 + len;
        }
        Ok(Self { data_len, current_profile, features })
    }

    pub(crate) fn feature(&self, code: u16) -> Option<&Feature> {
        self.features.iter().find(|f| f.code == code)
    }

    /// A feature that must be listed.
    pub(crate) fn require(&self, code: u16) -> Result<&Feature, String> {
        self.feature(code).ok_or_else(|| format!("feature {code:04X}h is not listed (features {})", self.codes()))
    }

    /// The profile list (feature 0000h): (profile, CurrentP) pairs.
    pub(crate) fn profiles(&self) -> Result<Vec<(u16, bool)>, String> {
        let list = self.require(0x0000)?;
        Ok(list.data.chunks(4).map(|d| (u16::from_be_bytes([d[0], d[1]]), d[2] & 0x01 != 0)).collect())
    }

    /// The feature codes, for messages.
    pub(crate) fn codes(&self) -> String {
        let codes: Vec<String> = self.features.iter().map(|f| format!("{:04X}", f.code)).collect();
        codes.join(" ")
    }
}

/// A READ TRACK INFORMATION reply, the fields the checks look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackInfo {
    pub(crate) track: u16,
    pub(crate) session: u16,
    /// Byte 5: Damage, Copy, track mode.
    pub(crate) track_mode: u8,
    /// RT (reserved track).
    pub(crate) reserved: bool,
    pub(crate) blank: bool,
    /// The NEXT WRITABLE ADDRESS if NWA_V is set.
    pub(crate) next_writable: Option<u32>,
    /// The LAST RECORDED ADDRESS if LRA_V is set.
    pub(crate) last_recorded: Option<u32>,
    pub(crate) start: u32,
    pub(crate) free: u32,
    pub(crate) size: u32,
}

impl TrackInfo {
    /// Decode a reply that reaches at least the last recorded address
    /// (byte 31) and is as long as its DATA LENGTH says.
    pub(crate) fn decode(data: &[u8]) -> Result<Self, String> {
        let declared = 2 + be(data, 0..2)? as usize;
        ensure!(
            data.len() == declared,
            "TRACK INFORMATION DATA LENGTH accounts for {declared} bytes, {} returned",
            data.len()
        );
        ensure!(data.len() >= 34, "{} bytes of track information, too short for the track number MSB", data.len());
        Ok(Self {
            track: u16::from_be_bytes([data[32], data[2]]),
            session: u16::from_be_bytes([data[33], data[3]]),
            track_mode: data[5],
            reserved: data[6] & 0x80 != 0,
            blank: data[6] & 0x40 != 0,
            next_writable: (data[7] & 0x01 != 0).then(|| be(data, 12..16).unwrap_or_default() as u32),
            last_recorded: (data[7] & 0x02 != 0).then(|| be(data, 28..32).unwrap_or_default() as u32),
            start: be(data, 8..12)? as u32,
            free: be(data, 16..20)? as u32,
            size: be(data, 24..28)? as u32,
        })
    }
}

/// Sense codes as a list for messages.
pub(crate) fn codes(seen: &[SenseCode]) -> String {
    if seen.is_empty() {
        return "nothing".into();
    }
    seen.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Media event codes as names for messages.
pub(crate) fn event_names(events: &[u8]) -> String {
    if events.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = events
        .iter()
        .map(|&code| match code {
            event::EJECT_REQUEST => "eject request (1)".to_owned(),
            event::NEW_MEDIA => "new media (2)".to_owned(),
            event::MEDIA_REMOVAL => "media removal (3)".to_owned(),
            other => format!("event {other}"),
        })
        .collect();
    names.join(", ")
}

/// Minutes, seconds and frames of `lba` on the CD time line (75 frames a
/// second, LBA 0 at 00:02:00), or `None` past 255 minutes, which a byte
/// cannot hold.
pub(crate) fn msf(lba: u32) -> Option<[u8; 3]> {
    const FRAMES_PER_SECOND: u64 = 75;
    const PREGAP_FRAMES: u64 = 2 * FRAMES_PER_SECOND;
    let frames = u64::from(lba) + PREGAP_FRAMES;
    let minutes = frames / (60 * FRAMES_PER_SECOND);
    let seconds = frames / FRAMES_PER_SECOND % 60;
    let frame = frames % FRAMES_PER_SECOND;
    Some([u8::try_from(minutes).ok()?, seconds as u8, frame as u8])
}

pub(crate) fn tur() -> Vec<u8> {
    vec![op::TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// START STOP UNIT with LoEj and Start as given, power condition 0.
pub(crate) fn start_stop(load_eject: bool, start: bool) -> Vec<u8> {
    vec![op::START_STOP_UNIT, 0, 0, 0, u8::from(load_eject) << 1 | u8::from(start), 0]
}

/// PREVENT ALLOW MEDIUM REMOVAL: PREVENT 01b or 00b.
pub(crate) fn prevent_allow(prevent: bool) -> Vec<u8> {
    vec![op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, u8::from(prevent), 0]
}

/// READ(10)/(12) or WRITE(10)/(12) of `count` sectors at `lba`.
pub(crate) fn transfer(opcode: u8, lba: u32, count: u32) -> Vec<u8> {
    let l = lba.to_be_bytes();
    if matches!(opcode, op::READ_12 | op::WRITE_12) {
        let n = count.to_be_bytes();
        vec![opcode, 0, l[0], l[1], l[2], l[3], n[0], n[1], n[2], n[3], 0, 0]
    } else {
        debug_assert!(count <= 0xFFFF);
        let n = (count as u16).to_be_bytes();
        vec![opcode, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
    }
}

/// GET EVENT STATUS NOTIFICATION, polled, for the classes in `classes`.
pub(crate) fn gesn(classes: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::GET_EVENT_STATUS_NOTIFICATION, 0x01, 0, 0, classes, 0, 0, hi, lo, 0]
}

/// GET CONFIGURATION with RT `rt` from feature `start`.
pub(crate) fn get_configuration(rt: u8, start: u16, alloc: u16) -> Vec<u8> {
    let [s_hi, s_lo] = start.to_be_bytes();
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::GET_CONFIGURATION, rt, s_hi, s_lo, 0, 0, 0, hi, lo, 0]
}

/// READ TOC/PMA/ATIP of `format` from track (or session) `track`.
pub(crate) fn read_toc(as_msf: bool, format: u8, track: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::READ_TOC_PMA_ATIP, u8::from(as_msf) << 1, format, 0, 0, 0, track, hi, lo, 0]
}

/// READ DISC INFORMATION of data type `data_type`.
pub(crate) fn read_disc_information(data_type: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::READ_DISC_INFORMATION, data_type, 0, 0, 0, 0, 0, hi, lo, 0]
}

/// READ TRACK INFORMATION with address type `kind` (00b LBA, 01b track,
/// 10b session) of `number`.
pub(crate) fn read_track_information(kind: u8, number: u32, alloc: u16) -> Vec<u8> {
    let n = number.to_be_bytes();
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::READ_TRACK_INFORMATION, kind, n[0], n[1], n[2], n[3], 0, hi, lo, 0]
}

/// READ DVD STRUCTURE of `format`, layer 0, DVD media.
pub(crate) fn read_dvd_structure(format: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::READ_DVD_STRUCTURE, 0, 0, 0, 0, 0, 0, format, hi, lo, 0, 0]
}

/// MECHANISM STATUS.
pub(crate) fn mechanism_status(alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::MECHANISM_STATUS, 0, 0, 0, 0, 0, 0, 0, hi, lo, 0, 0]
}

/// RESERVE TRACK of `sectors` (ARSV clear: a reservation size).
pub(crate) fn reserve_track(sectors: u32) -> Vec<u8> {
    let s = sectors.to_be_bytes();
    vec![op::RESERVE_TRACK, 0, 0, 0, 0, s[0], s[1], s[2], s[3], 0]
}

/// CLOSE TRACK/SESSION with `function` (1 track, 2 session) of track 1.
pub(crate) fn close(function: u8, immediate: bool) -> Vec<u8> {
    vec![op::CLOSE_TRACK_SESSION, u8::from(immediate), function, 0, 0, 1, 0, 0, 0, 0]
}

/// SYNCHRONIZE CACHE(10) of the whole disc.
pub(crate) fn synchronize_cache() -> Vec<u8> {
    vec![op::SYNCHRONIZE_CACHE, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msf_counts_75_frames_a_second_from_a_two_second_pregap() {
        assert_eq!(msf(0), Some([0, 2, 0]));
        assert_eq!(msf(16), Some([0, 2, 16]));
        assert_eq!(msf(4350), Some([1, 0, 0]));
        assert_eq!(msf(8192), Some([1, 51, 17]));
        assert_eq!(msf(449_849), Some([99, 59, 74]));
        assert_eq!(msf(256 * 4500), None);
    }

    #[test]
    fn arrival_wants_one_unit_attention_among_becoming_readys() {
        assert!(check_arrival(&[code::BECOMING_READY, code::MEDIUM_MAY_HAVE_CHANGED]).is_ok());
        assert!(check_arrival(&[code::MEDIUM_MAY_HAVE_CHANGED, code::BECOMING_READY]).is_ok());
        assert!(check_arrival(&[code::MEDIUM_MAY_HAVE_CHANGED]).is_ok());
        assert!(check_arrival(&[]).unwrap_err().contains("reported nothing then GOOD"));
        assert!(check_arrival(&[code::BECOMING_READY]).is_err());
        assert!(check_arrival(&[code::MEDIUM_MAY_HAVE_CHANGED, code::MEDIUM_MAY_HAVE_CHANGED]).is_err());
        assert!(check_arrival(&[code::MEDIUM_MAY_HAVE_CHANGED, code::OPERATION_IN_PROGRESS]).is_err());
    }

    #[test]
    fn configuration_decodes_and_refuses_ragged_descriptors() {
        let mut data = vec![0, 0, 0, 0, 0, 0, 0x00, 0x10];
        data.extend([0x00, 0x00, 0x03, 8, 0x00, 0x10, 0x01, 0, 0x00, 0x08, 0x00, 0]);
        data.extend([0x00, 0x1F, 0x05, 0]);
        let len = (data.len() - 4) as u8;
        data[3] = len;
        let c = Configuration::decode(&data).unwrap();
        assert_eq!(c.current_profile, 0x0010);
        assert_eq!(c.profiles().unwrap(), [(0x0010, true), (0x0008, false)]);
        let dvd_read = c.require(0x001F).unwrap();
        assert_eq!((dvd_read.version, dvd_read.persistent, dvd_read.current), (1, false, true));
        data[8 + 3] = 6;
        assert!(Configuration::decode(&data).unwrap_err().contains("multiple of 4"));
        data[3] += 1;
        assert!(Configuration::decode(&data).is_err());
    }

    #[test]
    fn transfer_cdbs() {
        assert_eq!(transfer(op::READ_10, 0x0102_0304, 5), [0x28, 0, 1, 2, 3, 4, 0, 0, 5, 0]);
        assert_eq!(transfer(op::WRITE_12, 7, 0x10), [0xAA, 0, 0, 0, 0, 7, 0, 0, 0, 0x10, 0, 0]);
    }
}
