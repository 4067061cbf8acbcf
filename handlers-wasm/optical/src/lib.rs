//! # tcmu-handler-optical: an MMC DVD drive over host-granted disc images
//!
//! [`OpticalDrive`] is a CD/DVD drive (peripheral type 05h, removable) with
//! a tray. Its disc is an image file the host grants while it is in the
//! drive ([`Handler::medium_loaded`]); the handler never sees a path. An
//! image of 2048-byte sectors (ISO 9660, UDF) reads as a pressed DVD-ROM
//! with one session and one data track; a recordable image (a blank one
//! granted writable, or one with a recording trailer, see [`recording`])
//! is a DVD+R that growisofs, xorriso and cdrskin burn. It answers what Linux's sr driver
//! and cdrom layer, udev's `cdrom_id`, `mount`, `eject`, sg3_utils,
//! dvd+rw-mediainfo, xorriso, cdrskin, wodim and cd-info send:
//!
//! - TEST UNIT READY with the tray states: 02/3A/01 (tray closed, no disc),
//!   02/3A/02 (tray open); after a disc arrived or the tray closed on one,
//!   06/28/00 once, then 02/04/01 once; REQUEST SENSE; INQUIRY with VPD
//!   00h, 80h and 83h;
//! - GET CONFIGURATION (RT 0, 1, 2): profiles DVD+R, DVD-ROM and CD-ROM,
//!   the current one from the disc; features 0000h–0003h, 0010h,
//!   001Dh–001Fh, 002Bh, 0100h, 0105h and 0107h with their current bits;
//! - GET EVENT STATUS NOTIFICATION (polled): operational change and media
//!   classes, media events queued in order (eject request, media removal,
//!   new media);
//! - MODE SENSE/SELECT(6/10) pages 01h, 05h (write parameters), 0Ah, 1Ah,
//!   1Dh and 2Ah (DVD-ROM read, write speeds, tray, eject, lock);
//! - READ CAPACITY, READ(10), READ(12); READ TOC/PMA/ATIP formats 0, 1, 2
//!   (LBA and MSF); READ DISC INFORMATION; READ TRACK INFORMATION (next
//!   writable address and free blocks of a recordable disc); READ DVD
//!   STRUCTURE 00h, 01h, 04h, 11h (DVD+R ADIP), FFh; READ FORMAT CAPACITIES;
//! - recording a DVD+R: RESERVE TRACK, WRITE(10)/(12) at the next writable
//!   address, SEND OPC INFORMATION, CLOSE TRACK/SESSION (functions 1, 2, 5,
//!   6, with Immed and "operation in progress" 02/04/07 while closing);
//! - MECHANISM STATUS; START STOP UNIT with LoEj (eject and load, eject
//!   refused with 05/53/02 while prevented); PREVENT ALLOW MEDIUM REMOVAL;
//!   SET CD SPEED, SET STREAMING, GET PERFORMANCE; READ BUFFER CAPACITY;
//!   SYNCHRONIZE CACHE.
//!
//! Not supported: CD audio, DVD+RW, DVD-R/RW, multi-session DVD+R, BD.
//!
//! ## Config string
//!
//! Items separated by `,` or `;`, each `key=value`:
//!
//! | item | meaning | default |
//! |------|---------|---------|
//! | `serial=S` | unit serial number (VPD 80h) | the host's |
//! | `wwn=naa.…` | logical unit name (VPD 83h) | derived from the serial |
//! | `vendor=V` | T10 vendor identification, up to 8 characters | `TCMUWASM` |
//! | `product=P` | product identification, up to 16 characters | `VIRTUAL DVD-ROM` |
//!
//! ## The tray
//!
//! An eject (START STOP UNIT with LoEj, `eject`) opens the tray; the disc
//! stays on it and comes back when the tray closes (`eject -t`, or the
//! cdrom layer's auto-close on open). The host taking the disc away (the
//! operator's `ctl media eject`) leaves the tray open and reports an eject
//! request and a media removal; a disc the host puts in closes the tray.

mod config;
mod disc;
mod events;
pub mod features;
mod layout;
mod mode;
pub mod recording;
mod state;

#[cfg(test)]
mod tests;

use tcmu_guest_sdk::scsi::bytes::{get_be16, get_be32, put_be16, put_be32};
use tcmu_guest_sdk::scsi::cdb::{PreventAllowMediumRemoval, ReadWrite, StartStopUnit};
use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type::OPTICAL, version_descriptor};
use tcmu_guest_sdk::scsi::{opcode, respond};
use tcmu_guest_sdk::sense::{
    INTERNAL_TARGET_FAILURE, INVALID_COMMAND_OPERATION_CODE, LBA_OUT_OF_RANGE, MEDIUM_REMOVAL_PREVENTED,
    PARAMETER_LIST_LENGTH_ERROR, Sense, SenseCode, key,
};
use tcmu_guest_sdk::spc::{Spc, readiness};
use tcmu_guest_sdk::{
    Cartridge, Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, IoError, LogLevel, MediumInfo,
    Store, TaskManagement, Transfer, log,
};

use config::Config;
use disc::{Disc, SECTOR};
use events::{MediaEvent, MediaEvents};

/// Opcodes of MMC the SDK's opcode table does not name.
pub(crate) mod mmc {
    pub const READ_FORMAT_CAPACITIES: u8 = 0x23;
    pub const READ_TOC_PMA_ATIP: u8 = 0x43;
    pub const GET_CONFIGURATION: u8 = 0x46;
    pub const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4a;
    pub const READ_DISC_INFORMATION: u8 = 0x51;
    pub const READ_TRACK_INFORMATION: u8 = 0x52;
    pub const READ_BUFFER_CAPACITY: u8 = 0x5c;
    pub const GET_PERFORMANCE: u8 = 0xac;
    pub const READ_DVD_STRUCTURE: u8 = 0xad;
    pub const SET_STREAMING: u8 = 0xb6;
    pub const SET_CD_SPEED: u8 = 0xbb;
    pub const MECHANISM_STATUS: u8 = 0xbd;
}

/// NOT READY, MEDIUM NOT PRESENT - TRAY CLOSED.
pub const NO_DISC_TRAY_CLOSED: SenseCode = SenseCode::new(key::NOT_READY, 0x3a, 0x01);
/// NOT READY, MEDIUM NOT PRESENT - TRAY OPEN.
pub const NO_DISC_TRAY_OPEN: SenseCode = SenseCode::new(key::NOT_READY, 0x3a, 0x02);

/// The optical drive: one per device.
pub struct OpticalDrive {
    config: Config,
    spc: Spc,
    disc: Option<Disc>,
    /// The tray is out (a disc on it is not readable).
    tray_open: bool,
    /// A disc arrived or the tray closed on one: after the unit attention
    /// ("medium may have changed", raised then), the next medium command
    /// reports "becoming ready".
    spinning_up: bool,
    /// PREVENT ALLOW MEDIUM REMOVAL: the tray stays shut.
    prevent: bool,
    /// Media events for GET EVENT STATUS NOTIFICATION.
    events: MediaEvents,
    /// The read speed SET CD SPEED / SET STREAMING chose, kB/s.
    read_speed: u16,
    /// Commands left that report "operation in progress" after an
    /// immediate CLOSE TRACK/SESSION.
    busy: u8,
    /// Mode page 05h (write parameters) as MODE SELECT left it.
    write_parameters: Vec<u8>,
}

/// What a command implementation returns: its completion, or the sense to
/// fail with (encoded in the format the initiator chose).
pub(crate) type Outcome = Result<Completion, Sense>;

impl Handler for OpticalDrive {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("optical", DeviceType::Optical, "MMC DVD-ROM drive with a tray over host-granted disc images")
    }

    fn config_keys() -> Vec<tcmu_guest_sdk::ConfigKey> {
        config::keys()
    }

    fn open(config: &str, identity: &DeviceIdentity, _store: Option<Box<dyn Store>>) -> Result<Self, String> {
        // A drive has no store of its own: discs come and go as media.
        let config = Config::parse(config)?;
        let identity = identity.configured(config.serial.as_deref(), config.wwn.as_ref());
        Ok(OpticalDrive {
            config,
            spc: Spc::new(identity),
            disc: None,
            tray_open: false,
            spinning_up: false,
            prevent: false,
            events: MediaEvents::default(),
            read_speed: mode::MAX_READ_SPEED,
            busy: 0,
            write_parameters: mode::default_write_parameters(),
        })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        // MMC-5 4.1.6.1: GET CONFIGURATION and GET EVENT STATUS NOTIFICATION
        // run despite a pending unit attention and leave it pending (as
        // INQUIRY does), so a poller learns of the new disc from GESN and
        // the next TEST UNIT READY still reports 06/28/00.
        let mmc_bypass = matches!(cmd.opcode(), mmc::GET_CONFIGURATION | mmc::GET_EVENT_STATUS_NOTIFICATION);
        if !mmc_bypass && let Err(attention) = self.spc.gate(cmd) {
            return attention;
        }
        self.execute(cmd, xfer).unwrap_or_else(|sense| self.spc.fail(sense))
    }

    fn task_management(&mut self, _tmf: TaskManagement) {
        // Commands run one at a time and complete before a TMF is seen.
    }

    fn medium_loaded(&mut self, image: Box<dyn Cartridge>, info: MediumInfo) -> Result<(), String> {
        if self.disc.is_some() {
            return Err("the drive already holds a disc".into());
        }
        self.disc = Some(Disc::load(image, info)?);
        self.busy = 0;
        // Putting a disc in closes the tray over it.
        self.tray_open = false;
        self.disc_arrived();
        Ok(())
    }

    fn removal_requested(&mut self) -> bool {
        if self.prevent && self.disc.is_some() {
            // A locked drive's eject button: the initiator hears the
            // request and may allow removal and eject itself.
            self.events.push(MediaEvent::EjectRequest);
            return false;
        }
        // The grant still works: make a recording durable before it goes.
        if let Some(disc) = &self.disc
            && disc.recording.is_some()
            && !disc.info.write_protected
            && let Err(e) = disc.save_recording(true)
        {
            log(LogLevel::Warn, &format!("saving the recording before the eject: {e:?}"));
        }
        true
    }

    fn medium_unloaded(&mut self) {
        // The host took the disc: as if the eject button was pressed and
        // the disc lifted off the open tray.
        if self.disc.take().is_some() {
            self.events.push(MediaEvent::EjectRequest);
            self.events.push(MediaEvent::MediaRemoval);
        }
        self.tray_open = true;
        self.spinning_up = false;
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        state::save(self, out);
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        state::restore(self, bytes)
    }
}

impl OpticalDrive {
    fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        use mmc::*;
        use opcode::{INQUIRY, MODE_SELECT_6, MODE_SELECT_10, MODE_SENSE_6, MODE_SENSE_10};
        use opcode::{PREVENT_ALLOW_MEDIUM_REMOVAL, READ_10, READ_12, READ_CAPACITY_10, REQUEST_SENSE};
        use opcode::{START_STOP_UNIT, SYNCHRONIZE_CACHE_10, TEST_UNIT_READY, WRITE_10, WRITE_12};
        match cmd.opcode() {
            TEST_UNIT_READY => {
                self.ready_disc()?;
                Ok(Completion::good())
            }
            REQUEST_SENSE => {
                let current = self.standing_condition();
                self.spc.request_sense(cmd, xfer, current)
            }
            INQUIRY => self.inquiry(cmd, xfer),
            MODE_SENSE_6 | MODE_SENSE_10 => self.mode_sense(cmd, xfer),
            MODE_SELECT_6 | MODE_SELECT_10 => self.mode_select(cmd, xfer),
            GET_CONFIGURATION => self.get_configuration(cmd, xfer),
            GET_EVENT_STATUS_NOTIFICATION => self.get_event_status(cmd, xfer),
            PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.prevent = PreventAllowMediumRemoval::parse(cmd.cdb)?.prevent;
                Ok(Completion::good())
            }
            START_STOP_UNIT => self.start_stop(cmd),
            MECHANISM_STATUS => self.mechanism_status(cmd, xfer),
            READ_CAPACITY_10 => self.read_capacity(cmd, xfer),
            READ_10 | READ_12 => self.read(cmd),
            READ_TOC_PMA_ATIP => self.read_toc(cmd, xfer),
            READ_DISC_INFORMATION => self.read_disc_information(cmd, xfer),
            READ_TRACK_INFORMATION => self.read_track_information(cmd, xfer),
            READ_DVD_STRUCTURE => self.read_dvd_structure(cmd, xfer),
            READ_FORMAT_CAPACITIES => self.read_format_capacities(cmd, xfer),
            SET_CD_SPEED => self.set_cd_speed(cmd),
            SET_STREAMING => self.set_streaming(cmd, xfer),
            GET_PERFORMANCE => self.get_performance(cmd, xfer),
            READ_BUFFER_CAPACITY => self.read_buffer_capacity(cmd, xfer),
            SYNCHRONIZE_CACHE_10 => self.synchronize_cache(),
            WRITE_10 | WRITE_12 => self.write(cmd),
            recording::opcode::RESERVE_TRACK => self.reserve_track(cmd),
            recording::opcode::SEND_OPC_INFORMATION => self.send_opc(cmd),
            recording::opcode::CLOSE_TRACK_SESSION => self.close_track_session(cmd),
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }

    /// Whether a disc is in and the tray closed (ready or spinning up).
    pub(crate) fn disc_ready(&self) -> bool {
        self.disc.is_some() && !self.tray_open
    }

    /// A disc is in under a closed tray (put there by the host, or the
    /// tray closed on it). The unit attention comes first, as on a real
    /// drive: Linux's sr notices a media change from the unit attention
    /// (on TEST UNIT READY or GESN) when it opens the drive, and a unit
    /// attention on a READ would fail that READ instead.
    fn disc_arrived(&mut self) {
        self.spinning_up = true;
        self.spc.unit_attentions.raise(readiness::MEDIUM_MAY_HAVE_CHANGED);
        self.events.push(MediaEvent::NewMedia);
    }

    /// The disc, ready for a medium command: NOT READY with the tray state
    /// when there is none; the first command after a disc arrived (and its
    /// unit attention was reported) says "becoming ready".
    pub(crate) fn ready_disc(&mut self) -> Result<&Disc, Sense> {
        if let Some(sense) = self.not_ready() {
            return Err(sense);
        }
        if self.spinning_up {
            self.spinning_up = false;
            return Err(readiness::BECOMING_READY.into());
        }
        if self.busy > 0 {
            self.busy -= 1;
            return Err(recording::OPERATION_IN_PROGRESS.into());
        }
        self.disc.as_ref().ok_or_else(|| INTERNAL_TARGET_FAILURE.into())
    }

    /// NOT READY with the tray state, if there is no readable disc.
    fn not_ready(&self) -> Option<Sense> {
        if self.tray_open {
            Some(NO_DISC_TRAY_OPEN.into())
        } else if self.disc.is_none() {
            Some(NO_DISC_TRAY_CLOSED.into())
        } else {
            None
        }
    }

    /// What REQUEST SENSE reports when no unit attention is pending.
    fn standing_condition(&self) -> Option<Sense> {
        self.not_ready()
            .or_else(|| self.spinning_up.then(|| readiness::BECOMING_READY.into()))
            .or_else(|| (self.busy > 0).then(|| recording::OPERATION_IN_PROGRESS.into()))
    }

    fn inquiry(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let revision = revision();
        let mut standard = StandardInquiry::new(OPTICAL, &self.config.vendor, &self.config.product, &revision);
        standard.removable = true;
        standard.version_descriptors = &[version_descriptor::SAM_5, version_descriptor::SPC_4, MMC_6];
        self.spc.inquiry(cmd, xfer, &standard, &[])
    }

    /// READ(10) and READ(12) of 2048-byte sectors.
    fn read(&mut self, cmd: &Command<'_>) -> Outcome {
        let rw = ReadWrite::parse(cmd.cdb)?;
        let room = cmd.data_in_len;
        let disc = self.ready_disc()?;
        let end = rw.lba.checked_add(u64::from(rw.blocks)).filter(|&end| end <= u64::from(disc.blocks()));
        if end.is_none() {
            return Err(Sense::from(LBA_OUT_OF_RANGE).with_information(rw.lba));
        }
        if rw.blocks == 0 {
            return Ok(Completion::good());
        }
        let len = u64::from(rw.blocks) * u64::from(SECTOR);
        if len > u64::from(room) {
            // The initiator's buffer does not hold the transfer: refuse
            // rather than move part of it (as LIO does for disks).
            return Err(Sense::invalid_cdb_field(7, None));
        }
        disc.read_to_data_in(rw.lba as u32, rw.blocks)?;
        Ok(Completion::good_with_data(len as u32))
    }

    /// START STOP UNIT: with LoEj, eject (refused while prevented) or load;
    /// without, spinning up or down, which changes nothing here.
    fn start_stop(&mut self, cmd: &Command<'_>) -> Outcome {
        let ssu = StartStopUnit::parse(cmd.cdb)?;
        if ssu.power_condition != 0 || !ssu.load_eject {
            return Ok(Completion::good());
        }
        if ssu.start {
            if self.tray_open {
                self.tray_open = false;
                if self.disc.is_some() {
                    self.disc_arrived();
                }
            }
        } else {
            if self.prevent {
                return Err(MEDIUM_REMOVAL_PREVENTED.into());
            }
            if !self.tray_open {
                self.tray_open = true;
                self.spinning_up = false;
                if self.disc.is_some() {
                    self.events.push(MediaEvent::MediaRemoval);
                }
            }
        }
        Ok(Completion::good())
    }

    /// MECHANISM STATUS: no changer, idle, the door flag, no slot tables.
    fn mechanism_status(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 12 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let allocation = u32::from(get_be16(&cdb[8..]));
        let mut data = vec![0u8; 8];
        data[1] = u8::from(self.tray_open) << 4; // mechanism idle; door open
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// SET CD SPEED: a read speed in kB/s (FFFFh: the fastest), kept for
    /// page 2Ah; the write speed is ignored on a drive that does not write.
    fn set_cd_speed(&mut self, cmd: &Command<'_>) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 12 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let wanted = get_be16(&cdb[2..]);
        self.read_speed = wanted.clamp(176, mode::MAX_READ_SPEED);
        Ok(Completion::good())
    }

    /// SET STREAMING with a performance descriptor (type 0): the read size
    /// over read time sets the read speed; other types are refused.
    fn set_streaming(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 12 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        if cdb[8] != 0 {
            return Err(Sense::invalid_cdb_field(8, None));
        }
        let len = u32::from(get_be16(&cdb[9..])).min(cmd.data_out_len);
        if len < 28 {
            return Err(PARAMETER_LIST_LENGTH_ERROR.into());
        }
        let d = xfer.read_data_out(0, 28).map_err(transfer_failed)?;
        let (size, time) = (get_be32(&d[12..]), get_be32(&d[16..]));
        if time != 0 {
            // Read size in kB over read time in ms.
            let speed = u64::from(size) * 1000 / u64::from(time);
            self.read_speed = speed.clamp(176, u64::from(mode::MAX_READ_SPEED)) as u16;
        }
        Ok(Completion::good())
    }

    /// GET PERFORMANCE: performance data (type 00h), one nominal descriptor
    /// over the disc for reading, or with the Write bit for writing a
    /// recordable disc; write speed descriptors (type 03h), one for a
    /// recordable disc, none for a pressed one.
    fn get_performance(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 12 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let data_type = cdb[1] & 0x1f;
        let max_descriptors = u32::from(get_be16(&cdb[8..]));
        let kind = cdb[10];
        let mut data = vec![0u8; 8];
        let disc = self.disc.as_ref().filter(|_| self.disc_ready());
        let recordable = disc.and_then(|d| d.recording.as_ref()).map(|r| r.capacity);
        match kind {
            0x00 => {
                let write = data_type & 0x04 != 0;
                data[4] = data_type & 0x04; // Write bit echoes the request
                let (end, speed) = match (write, recordable) {
                    (false, _) => (disc.map_or(0, |d| d.blocks().saturating_sub(1)), u32::from(self.read_speed)),
                    (true, Some(capacity)) => (capacity - 1, u32::from(mode::WRITE_SPEED)),
                    (true, None) => (0, 0),
                };
                if max_descriptors > 0 && speed > 0 {
                    let mut d = [0u8; 16];
                    put_be32(&mut d[4..], speed);
                    put_be32(&mut d[8..], end);
                    put_be32(&mut d[12..], speed);
                    data.extend(d);
                }
            }
            0x03 => {
                if let Some(capacity) = recordable
                    && max_descriptors > 0
                {
                    let mut d = [0u8; 16];
                    put_be32(&mut d[4..], capacity - 1); // end LBA
                    put_be32(&mut d[8..], u32::from(self.read_speed));
                    put_be32(&mut d[12..], u32::from(mode::WRITE_SPEED));
                    data.extend(d);
                }
            }
            _ => return Err(Sense::invalid_cdb_field(10, None)),
        }
        let len = (data.len() - 4) as u32;
        put_be32(&mut data, len);
        Ok(respond(xfer, cmd, &data, u32::MAX))
    }

    /// READ BUFFER CAPACITY: an empty 64 KiB buffer (nothing is written).
    fn read_buffer_capacity(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let allocation = u32::from(get_be16(&cdb[7..]));
        let mut data = vec![0u8; 12];
        put_be16(&mut data, 10);
        if cdb[1] & 0x01 != 0 {
            // Block: length in blocks, available in blocks.
            data[3] = 0x01;
            put_be32(&mut data[8..], 64 * 1024 / SECTOR);
        } else {
            put_be32(&mut data[4..], 64 * 1024);
            put_be32(&mut data[8..], 64 * 1024);
        }
        Ok(respond(xfer, cmd, &data, allocation))
    }
}

/// Version descriptor of MMC-6 (no SDK constant: only optical drives claim it).
const MMC_6: u16 = 0x0580;

/// INQUIRY's product revision: the crate version, as the four characters
/// the field holds.
fn revision() -> String {
    env!("CARGO_PKG_VERSION").chars().take(4).collect()
}

/// The command's own buffers failed us: only a host fault does that.
pub(crate) fn transfer_failed(e: IoError) -> Sense {
    log(LogLevel::Error, &format!("data transfer failed: {e}"));
    INTERNAL_TARGET_FAILURE.into()
}

tcmu_guest_sdk::export_handler!(OpticalDrive);
