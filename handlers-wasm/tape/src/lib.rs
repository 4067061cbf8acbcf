//! # tcmu-handler-tape: an SSC-3 tape drive over host-granted cartridges
//!
//! [`TapeDrive`] is a sequential-access device (peripheral type 01h,
//! removable) whose cartridges are image files the host grants while one
//! is loaded ([`Handler::medium_loaded`]); the image format is in
//! [`format`] and docs/cartridge-format.md. It answers what the Linux st
//! driver, mt-st, tar, dd, mtx's tapeinfo, Bacula's btape, Amanda's
//! amtapetype and sg3_utils send:
//!
//! - TEST UNIT READY (02/3A/00 when empty, 02/04/01 while the tape is
//!   threaded, then 06/28/00 once), REQUEST SENSE, INQUIRY with VPD 00h,
//!   80h, 83h and B0h, REPORT SUPPORTED OPERATION CODES is not offered;
//! - READ(6) and WRITE(6), fixed and variable, with SSC's residuals: a
//!   short block is CHECK CONDITION, NO SENSE, ILI, INFORMATION = requested
//!   − actual (unless SILI), a long block ILI with a negative INFORMATION
//!   and the data cut to the request (with or without SILI, as LTO drives
//!   do, so st returns ENOMEM), a filemark NO SENSE, FILEMARK 00/01, end of
//!   data BLANK CHECK 00/05, each with the residual; the transfer length
//!   actually produced goes back as the ring's `read_len`;
//! - WRITE FILEMARKS(6), SPACE(6)/(16) over blocks, filemarks and to end of
//!   data, REWIND, READ POSITION (short, long, extended), LOCATE(10)/(16),
//!   ERASE, LOAD UNLOAD, PREVENT ALLOW MEDIUM REMOVAL, VERIFY(6);
//! - READ BLOCK LIMITS, MODE SENSE/SELECT(6/10) with the block descriptor
//!   (density, block length; 0 = variable) and pages 0Ah, 0Fh, 10h, 11h,
//!   1Ch; REPORT DENSITY SUPPORT; LOG SENSE pages 00h, 02h, 03h, 0Ch, 17h,
//!   2Eh, 31h and LOG SELECT (reset); READ/WRITE ATTRIBUTE (MAM).
//!
//! Writes in the middle of the tape forget everything after them, as on a
//! real tape. A write that ends beyond early warning completes and
//! reports NO SENSE, EOM, 00/02; one that does not fit before the physical
//! end writes nothing and reports VOLUME OVERFLOW 0D/00/02. An acknowledged
//! write is on the image when the command completes (payload, then
//! header), and the image is flushed before the tape moves away from what
//! was written, so killing the daemon mid-stream loses nothing
//! acknowledged. A damaged image fails with MEDIUM ERROR (03/30/0x, 03/31/00)
//! where the damage is; what precedes it stays readable.
//!
//! One partition; no compression (page 0Fh's DCE is kept and reported, the
//! data is stored as is), no encryption, no logical block protection, no
//! setmarks, no FORMAT MEDIUM.
//!
//! ## Config string
//!
//! Items separated by `,` or `;`, each `key=value`:
//!
//! | item | meaning | default |
//! |------|---------|---------|
//! | `serial=S` | unit serial number (VPD 80h; a changer's DVCID) | the host's |
//! | `wwn=naa.…` | logical unit name (VPD 83h) | derived from the serial |
//! | `vendor=V` | T10 vendor identification, up to 8 characters | `TCMUWASM` |
//! | `product=P` | product identification, up to 16 characters | `VIRTUAL TAPE` |
//! | `density=D` | `LTO-5` … `LTO-9` or a code (`0x58`) | `LTO-5` |
//! | `max_block=N` | largest block (READ BLOCK LIMITS); K/M suffixes | `1M` |
//! | `early_warning=N` | early warning this far before the end; K/M/G | 1 MiB (¼ of cartridges under 4 MiB) |
//!
//! ## State across instances
//!
//! Mode settings, pending unit attentions, the prevent flag, counters and
//! — for the same load (the host's load id) — the position and readiness
//! are saved through the SDK's state hooks, so a hot reload or a rebuild
//! after a fault keeps the tape where it was.

mod attributes;
mod config;
pub mod density;
pub mod format;
mod io;
mod logs;
mod medium;
mod mode;
mod motion;
mod state;

#[cfg(test)]
mod tests;

use tcmu_guest_sdk::scsi::cdb::PreventAllowMediumRemoval;
use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type::TAPE, version_descriptor};
use tcmu_guest_sdk::scsi::{opcode, respond};
use tcmu_guest_sdk::sense::{
    INTERNAL_TARGET_FAILURE, INVALID_COMMAND_OPERATION_CODE, Sense, SenseCode, WRITE_PROTECTED,
};
use tcmu_guest_sdk::spc::{Spc, readiness};
use tcmu_guest_sdk::{
    Cartridge, Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, IoError, LogLevel, MediumInfo,
    Store, TaskManagement, Transfer, log,
};

use config::Config;
use medium::Tape;

/// Opcodes of SSC the SDK's opcode table does not name.
pub(crate) mod ssc {
    pub const REWIND: u8 = 0x01;
    pub const READ_BLOCK_LIMITS: u8 = 0x05;
    pub const READ_6: u8 = 0x08;
    pub const WRITE_6: u8 = 0x0a;
    pub const WRITE_FILEMARKS_6: u8 = 0x10;
    pub const SPACE_6: u8 = 0x11;
    pub const VERIFY_6: u8 = 0x13;
    pub const ERASE_6: u8 = 0x19;
    pub const LOAD_UNLOAD: u8 = 0x1b;
    pub const LOCATE_10: u8 = 0x2b;
    pub const READ_POSITION: u8 = 0x34;
    pub const REPORT_DENSITY_SUPPORT: u8 = 0x44;
    pub const LOG_SELECT: u8 = 0x4c;
    pub const LOG_SENSE: u8 = 0x4d;
    pub const READ_ATTRIBUTE: u8 = 0x8c;
    pub const WRITE_ATTRIBUTE: u8 = 0x8d;
    pub const SPACE_16: u8 = 0x91;
    pub const LOCATE_16: u8 = 0x92;
}

/// Where the drive is with its medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// No cartridge.
    Empty,
    /// A cartridge was just loaded: the next medium command reports
    /// "becoming ready", threads the tape and queues "medium may have changed".
    Threading,
    /// Ready for medium commands.
    Ready,
    /// Unloaded by LOAD UNLOAD: still in the drive (the library may take
    /// it), not ready until a LOAD.
    Ejected,
}

/// Device settings an initiator changes with MODE SELECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Block length of fixed-block mode; 0 = variable.
    pub block_length: u32,
    /// Density code.
    pub density: u8,
    /// Buffered mode of the mode header (bits 6-4 of the device-specific byte).
    pub buffered_mode: u8,
    /// Data compression enabled (page 0Fh DCE).
    pub compression: bool,
    /// Informational exceptions: DEXCPT and MRIE of page 1Ch.
    pub dexcpt: bool,
    /// Method of reporting informational exceptions.
    pub mrie: u8,
}

/// What the drive counts for LOG SENSE (since the load or a LOG SELECT reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counters {
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub records_written: u64,
    pub records_read: u64,
    /// TapeAlert flags 1..=64 (bit n-1 for flag n), cleared when read.
    pub tape_alert: u64,
}

/// The tape drive: one per device.
pub struct TapeDrive {
    config: Config,
    spc: Spc,
    tape: Option<Tape>,
    readiness: Readiness,
    settings: Settings,
    counters: Counters,
    /// PREVENT ALLOW MEDIUM REMOVAL: LOAD UNLOAD may not unload.
    prevent: bool,
}

/// What a command implementation returns: its completion, or the sense to
/// fail with (encoded in the format the initiator chose).
pub(crate) type Outcome = Result<Completion, Sense>;

impl Handler for TapeDrive {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("tape", DeviceType::Tape, "SSC-3 tape drive over host-granted cartridge images")
    }

    fn config_keys() -> Vec<tcmu_guest_sdk::ConfigKey> {
        config::keys()
    }

    fn open(config: &str, identity: &DeviceIdentity, _store: Option<Box<dyn Store>>) -> Result<Self, String> {
        // A drive has no store of its own: cartridges come and go as media.
        let config = Config::parse(config)?;
        let identity = identity.configured(config.serial.as_deref(), config.wwn.as_ref());
        let settings = Settings {
            block_length: 0,
            density: config.density,
            buffered_mode: 1,
            compression: false,
            dexcpt: true,
            mrie: 0,
        };
        Ok(TapeDrive {
            config,
            spc: Spc::new(identity),
            tape: None,
            readiness: Readiness::Empty,
            settings,
            counters: Counters::default(),
            prevent: false,
        })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        if let Err(attention) = self.spc.gate(cmd) {
            return attention;
        }
        self.execute(cmd, xfer).unwrap_or_else(|sense| {
            if sense.code == WRITE_PROTECTED {
                self.tape_alert(logs::TAPE_ALERT_WRITE_PROTECT);
            }
            self.spc.fail(sense)
        })
    }

    fn task_management(&mut self, _tmf: TaskManagement) {
        // Commands run one at a time and complete before a TMF is seen:
        // there is nothing to abort.
    }

    fn close(&mut self) {
        if let Some(tape) = &mut self.tape
            && let Err(e) = tape.flush()
        {
            log(LogLevel::Error, &format!("flush on close failed: {:?}", e.code));
        }
    }

    fn medium_loaded(&mut self, cartridge: Box<dyn Cartridge>, info: MediumInfo) -> Result<(), String> {
        if self.tape.is_some() {
            return Err("the drive already holds a cartridge".into());
        }
        let config = &self.config;
        let tape = Tape::load(cartridge, info, |capacity| config.early_warning_for(capacity));
        self.tape = Some(tape);
        self.readiness = Readiness::Threading;
        self.counters = Counters::default();
        Ok(())
    }

    fn removal_requested(&mut self) -> bool {
        if self.prevent {
            return false;
        }
        // The grant still works: make what was written durable before the
        // host takes the cartridge.
        if let Some(tape) = &mut self.tape
            && let Err(e) = tape.flush()
        {
            tcmu_guest_sdk::log(tcmu_guest_sdk::LogLevel::Warn, &format!("flushing before the eject: {e:?}"));
        }
        true
    }

    fn medium_unloaded(&mut self) {
        // The grant is already revoked: nothing left to flush through it.
        self.tape = None;
        self.readiness = Readiness::Empty;
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        state::save(self, out);
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        state::restore(self, bytes)
    }
}

impl TapeDrive {
    fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        use opcode::{INQUIRY, MODE_SELECT_6, MODE_SELECT_10, MODE_SENSE_6, MODE_SENSE_10};
        use opcode::{PREVENT_ALLOW_MEDIUM_REMOVAL, REQUEST_SENSE, TEST_UNIT_READY};
        use ssc::*;
        match cmd.opcode() {
            TEST_UNIT_READY => {
                self.ready_tape()?;
                Ok(Completion::good())
            }
            REQUEST_SENSE => {
                let current = self.standing_condition();
                self.spc.request_sense(cmd, xfer, current)
            }
            INQUIRY => self.inquiry(cmd, xfer),
            MODE_SENSE_6 | MODE_SENSE_10 => self.mode_sense(cmd, xfer),
            MODE_SELECT_6 | MODE_SELECT_10 => self.mode_select(cmd, xfer),
            READ_BLOCK_LIMITS => self.read_block_limits(cmd, xfer),
            REPORT_DENSITY_SUPPORT => self.report_density_support(cmd, xfer),
            LOG_SENSE => self.log_sense(cmd, xfer),
            LOG_SELECT => self.log_select(cmd),
            PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.prevent = PreventAllowMediumRemoval::parse(cmd.cdb)?.prevent;
                Ok(Completion::good())
            }
            READ_6 => self.read(cmd),
            WRITE_6 => self.write(cmd),
            VERIFY_6 => self.verify(cmd, xfer),
            WRITE_FILEMARKS_6 => self.write_filemarks(cmd),
            SPACE_6 | SPACE_16 => self.space(cmd),
            REWIND => self.rewind(cmd),
            LOCATE_10 | LOCATE_16 => self.locate(cmd),
            READ_POSITION => self.read_position(cmd, xfer),
            ERASE_6 => self.erase(cmd),
            LOAD_UNLOAD => self.load_unload(cmd),
            READ_ATTRIBUTE => self.read_attribute(cmd, xfer),
            WRITE_ATTRIBUTE => self.write_attribute(cmd, xfer),
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }

    /// The cartridge, ready for a medium command: NOT READY when there is
    /// none or it was unloaded; the first command after a load reports
    /// "becoming ready" while the tape is threaded, and queues the unit
    /// attention that tells initiators the medium changed.
    pub(crate) fn ready_tape(&mut self) -> Result<&mut Tape, Sense> {
        match self.readiness {
            Readiness::Empty | Readiness::Ejected => Err(readiness::MEDIUM_NOT_PRESENT.into()),
            Readiness::Threading => {
                if let Some(tape) = &mut self.tape {
                    tape.thread();
                }
                self.readiness = Readiness::Ready;
                self.spc.unit_attentions.raise(readiness::MEDIUM_MAY_HAVE_CHANGED);
                Err(readiness::BECOMING_READY.into())
            }
            Readiness::Ready => self.tape.as_mut().ok_or_else(|| INTERNAL_TARGET_FAILURE.into()),
        }
    }

    /// The cartridge, if one is loaded, ready or not (for MODE SENSE,
    /// LOG SENSE and READ ATTRIBUTE, which work on an unthreaded tape).
    pub(crate) fn loaded_tape(&self) -> Option<&Tape> {
        match self.readiness {
            Readiness::Empty | Readiness::Ejected => None,
            Readiness::Threading | Readiness::Ready => self.tape.as_ref(),
        }
    }

    /// What REQUEST SENSE reports when no unit attention is pending.
    fn standing_condition(&self) -> Option<Sense> {
        match self.readiness {
            Readiness::Empty | Readiness::Ejected => Some(readiness::MEDIUM_NOT_PRESENT.into()),
            Readiness::Threading => Some(readiness::BECOMING_READY.into()),
            Readiness::Ready => None,
        }
    }

    fn inquiry(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let revision = revision();
        let mut standard = StandardInquiry::new(TAPE, &self.config.vendor, &self.config.product, &revision);
        standard.removable = true;
        standard.version_descriptors = &[version_descriptor::SAM_5, version_descriptor::SPC_4, version_descriptor::SSC];
        // Sequential-access device capabilities: not a WORM drive.
        let capabilities = || vec![TAPE, 0xb0, 0x00, 0x02, 0x00, 0x00];
        let extra: [(u8, &dyn Fn() -> Vec<u8>); 1] = [(0xb0, &capabilities)];
        self.spc.inquiry(cmd, xfer, &standard, &extra)
    }

    /// READ BLOCK LIMITS: any length from 1 byte to `max_block`
    /// (granularity 2^0); with MLOC, the largest logical object identifier.
    fn read_block_limits(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 6 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let mloc = cdb[1] & 0x01 != 0;
        let data = if mloc {
            let mut d = vec![0u8; 20];
            d[12..20].copy_from_slice(&u64::from(u32::MAX).to_be_bytes());
            d
        } else {
            let max = self.config.max_block.to_be_bytes();
            vec![0x00, max[1], max[2], max[3], 0x00, 0x01]
        };
        let len = data.len() as u32;
        Ok(respond(xfer, cmd, &data, len))
    }

    /// Fixed-block mode's block length, `None` in variable mode.
    pub(crate) fn fixed_block(&self) -> Option<u32> {
        (self.settings.block_length != 0).then_some(self.settings.block_length)
    }

    /// Bytes in the data buffer the command needs, or INVALID FIELD IN CDB
    /// when the buffer the initiator sent does not hold them: like LIO,
    /// refuse rather than move part of the data.
    pub(crate) fn buffer_for(&self, len: u64, room: u32) -> Result<u32, Sense> {
        u32::try_from(len).ok().filter(|&len| len <= room).ok_or_else(|| Sense::invalid_cdb_field(2, None))
    }
}

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

/// A sense with INFORMATION set to a signed residual.
pub(crate) fn residual(code: SenseCode, information: i64) -> Sense {
    Sense::from(code).with_signed_information(information)
}

tcmu_guest_sdk::export_handler!(TapeDrive);
