//! # tcmu-handler-file: an SBC-3 disk on the granted backing store
//!
//! [`FileDisk`] turns the [`Store`] the host grants into a direct-access
//! block device: READ/WRITE(6/10/12/16) with FUA, VERIFY, WRITE SAME and
//! UNMAP (thin provisioning; unmapped blocks read as zeroes), COMPARE AND
//! WRITE, SYNCHRONIZE CACHE, READ CAPACITY, INQUIRY with the usual VPD
//! pages, MODE SENSE/SELECT (caching and control pages), REQUEST SENSE,
//! REPORT SUPPORTED OPERATION CODES, START STOP UNIT and PREVENT ALLOW
//! MEDIUM REMOVAL. REPORT LUNS, reservations, ALUA and the unit attentions
//! that follow task management are the kernel's; since commands run one at
//! a time, a task management function finds nothing to abort.
//!
//! Bulk data never enters the guest: READ and WRITE move it between the
//! store and the command's buffers with `read_to_data_in` and
//! `write_from_data_out`. Only compares (VERIFY, COMPARE AND WRITE), the
//! WRITE SAME pattern and parameter lists pass through guest memory.
//!
//! ## Config string
//!
//! Items separated by `,` or `;`, each `key=value` or a flag:
//!
//! | item | meaning | default |
//! |------|---------|---------|
//! | `ro` | refuse writes (DATA PROTECT); also implied by a read-only store | writable |
//! | `block_size=N` | logical block size: 512, 1024, 2048 or 4096 | 512 |
//! | `serial=S` | unit serial number (VPD 0x80), up to 128 printable ASCII characters | `tcmu-wasm-file` |
//! | `wwn=naa.6…` | NAA 5 or 6 logical unit name (VPD 0x83) | derived from the serial |
//! | `vendor=V` | T10 vendor identification, up to 8 characters | `TCMUWASM` |
//! | `product=P` | product identification, up to 16 characters | `FILE DISK` |
//!
//! For example `serial=db-01,block_size=4096`. Unknown keys fail `open`.
//! Without `serial=`/`wwn=` the disk reports the identity the host assigns
//! (unique per device, stable across restarts). A store whose size is not a
//! multiple of the block size loses the partial block.
//!
//! ## State across instances
//!
//! The write-cache (WCE) and descriptor-sense (D_SENSE) settings and a
//! pending unit attention are saved through the SDK's state hooks, so a hot
//! reload or the rebuild after a fault keeps them (format: version byte 1,
//! WCE, D_SENSE, then 0 or 1 followed by key/ASC/ASCQ).

mod commands;
mod compare;
mod config;
mod identity;
mod io;
mod mode;
mod provisioning;
mod unit;

#[cfg(test)]
mod tests;

use tcmu_guest_sdk::scsi::opcode;
use tcmu_guest_sdk::sense::{
    CAPACITY_DATA_HAS_CHANGED, INTERNAL_TARGET_FAILURE, INVALID_COMMAND_OPERATION_CODE, INVALID_FIELD_IN_CDB,
    LBA_OUT_OF_RANGE, MEDIUM_NOT_PRESENT, Sense, SenseCode, SenseFormat, WRITE_PROTECTED,
};
use tcmu_guest_sdk::spc::{Spc, UnitAttentions};
use tcmu_guest_sdk::{
    Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, IoError, LogLevel, Store, Transfer, log,
};

use config::Config;

/// The file disk: one per device.
pub struct FileDisk {
    store: Box<dyn Store>,
    config: Config,
    /// Identity (the configured serial/WWN, else the host's), pending unit
    /// attentions and the sense format D_SENSE chose.
    spc: Spc,
    /// Writes are refused: the `ro` option or a read-only store.
    read_only: bool,
    /// WCE of the caching mode page: writes may complete before they are
    /// durable. When clear, every write is followed by a flush.
    write_cache: bool,
}

/// A byte range of the store.
#[derive(Clone, Copy)]
struct Extent {
    offset: u64,
    len: u64,
}

/// What a command implementation returns: its completion, or the sense to
/// fail with (encoded in the format the initiator chose).
type Outcome = Result<Completion, Sense>;

impl Handler for FileDisk {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("file", DeviceType::Disk, "SBC-3 disk on the granted backing store")
    }

    fn config_keys() -> Vec<tcmu_guest_sdk::ConfigKey> {
        config::keys()
    }

    fn open(config: &str, identity: &DeviceIdentity, store: Option<Box<dyn Store>>) -> Result<Self, String> {
        let config = Config::parse(config)?;
        let store = store.ok_or("the file handler needs a backing store; configure one for this device")?;
        let block_size = u64::from(config.block_size);
        if store.size() < block_size {
            return Err(format!(
                "the backing store ({} bytes) is smaller than one {block_size}-byte block",
                store.size()
            ));
        }
        let identity = identity.configured(config.serial.as_deref(), config.wwn.as_ref());
        Ok(FileDisk {
            read_only: config.read_only || store.read_only(),
            store,
            config,
            spc: Spc::new(identity),
            write_cache: true,
        })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        if let Err(attention) = self.spc.gate(cmd) {
            return attention;
        }
        self.execute(cmd, xfer).unwrap_or_else(|sense| self.fail(sense))
    }

    fn resized(&mut self, new_size: u64) {
        log(
            LogLevel::Info,
            &format!("resized to {new_size} bytes ({} blocks)", new_size / u64::from(self.config.block_size)),
        );
        self.spc.unit_attentions.raise(CAPACITY_DATA_HAS_CHANGED);
    }

    fn write_cache_changed(&mut self, enabled: bool) {
        // As MODE SELECT does: switching the cache off makes earlier writes durable.
        if self.write_cache
            && !enabled
            && let Err(e) = self.store.flush()
        {
            log(LogLevel::Error, &format!("flush on write cache disable failed: {e}"));
        }
        self.write_cache = enabled;
    }

    fn close(&mut self) {
        if let Err(e) = self.store.flush() {
            log(LogLevel::Error, &format!("flush on close failed: {e}"));
        }
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        out.extend([STATE_VERSION, u8::from(self.write_cache), u8::from(self.descriptor_sense())]);
        self.spc.unit_attentions.save(out);
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        let flag = |b: u8| match b {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("saved state has a flag byte {other}")),
        };
        match state {
            [] => Ok(()),
            // Version 1 (builds before the shared SPC layer): at most one
            // unit attention, flagged.
            [1, wce, d_sense, rest @ ..] => {
                let mut attentions = UnitAttentions::default();
                match rest {
                    [0] => {}
                    [1, key, asc, ascq] => attentions.raise(SenseCode::new(*key, *asc, *ascq)),
                    _ => return Err(format!("saved state has {} bytes of unit attention", rest.len())),
                }
                self.apply_state(flag(*wce)?, flag(*d_sense)?, attentions);
                Ok(())
            }
            [STATE_VERSION, wce, d_sense, rest @ ..] => {
                let attentions = match UnitAttentions::restore(rest) {
                    Some((attentions, [])) => attentions,
                    _ => return Err(format!("saved state has {} malformed bytes of unit attentions", rest.len())),
                };
                self.apply_state(flag(*wce)?, flag(*d_sense)?, attentions);
                Ok(())
            }
            [version, ..] => Err(format!("saved state version {version} is not 1 or {STATE_VERSION}")),
        }
    }
}

/// Version of the bytes `save_state` writes: WCE, D_SENSE, then the unit
/// attention queue ([`UnitAttentions::save`]). Version 1 is still read.
const STATE_VERSION: u8 = 2;

impl FileDisk {
    fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        use opcode::*;
        match cmd.opcode() {
            TEST_UNIT_READY => self.test_unit_ready(),
            REQUEST_SENSE => self.request_sense(cmd, xfer),
            INQUIRY => self.inquiry(cmd, xfer),
            MODE_SENSE_6 | MODE_SENSE_10 => self.mode_sense(cmd, xfer),
            MODE_SELECT_6 | MODE_SELECT_10 => self.mode_select(cmd, xfer),
            START_STOP_UNIT => self.start_stop_unit(cmd),
            PREVENT_ALLOW_MEDIUM_REMOVAL => self.prevent_allow_medium_removal(cmd),
            READ_CAPACITY_10 => self.read_capacity_10(cmd, xfer),
            SERVICE_ACTION_IN_16 => self.read_capacity_16(cmd, xfer),
            MAINTENANCE_IN => self.report_supported_operation_codes(cmd, xfer),
            READ_6 | READ_10 | READ_12 | READ_16 => self.read(cmd),
            WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 => self.write(cmd),
            VERIFY_10 | VERIFY_12 | VERIFY_16 => self.verify(cmd, xfer),
            COMPARE_AND_WRITE => self.compare_and_write(cmd, xfer),
            WRITE_SAME_10 | WRITE_SAME_16 => self.write_same(cmd, xfer),
            UNMAP => self.unmap(cmd, xfer),
            SYNCHRONIZE_CACHE_10 | SYNCHRONIZE_CACHE_16 => self.synchronize_cache(cmd),
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }

    /// CHECK CONDITION with `sense` in the format D_SENSE selects.
    fn fail(&self, sense: Sense) -> Completion {
        self.spc.fail(sense)
    }

    /// D_SENSE of the control mode page: report descriptor-format sense.
    fn descriptor_sense(&self) -> bool {
        self.spc.sense_format == SenseFormat::Descriptor
    }

    fn set_descriptor_sense(&mut self, on: bool) {
        self.spc.sense_format = if on { SenseFormat::Descriptor } else { SenseFormat::Fixed };
    }

    fn apply_state(&mut self, write_cache: bool, descriptor_sense: bool, attentions: UnitAttentions) {
        self.write_cache = write_cache;
        self.set_descriptor_sense(descriptor_sense);
        self.spc.unit_attentions = attentions;
    }

    fn block_size(&self) -> u32 {
        self.config.block_size
    }

    /// Whole blocks in the store; a partial last block is not addressable.
    fn block_count(&self) -> u64 {
        self.store.size() / u64::from(self.block_size())
    }

    /// The last LBA. A store shrunk below one block has no medium to speak of.
    fn last_lba(&self) -> Result<u64, Sense> {
        self.block_count().checked_sub(1).ok_or_else(|| MEDIUM_NOT_PRESENT.into())
    }

    /// The bytes of `blocks` blocks from `lba`, or LOGICAL BLOCK ADDRESS OUT
    /// OF RANGE when they run past the last block. Zero blocks at the
    /// capacity itself is in range: it transfers nothing.
    fn extent(&self, lba: u64, blocks: u64) -> Result<Extent, Sense> {
        match lba.checked_add(blocks) {
            Some(end) if end <= self.block_count() => {
                let block_size = u64::from(self.block_size());
                Ok(Extent { offset: lba * block_size, len: blocks * block_size })
            }
            _ => Err(LBA_OUT_OF_RANGE.into()),
        }
    }

    /// DATA PROTECT for any command that would change the medium.
    fn check_writable(&self) -> Result<(), Sense> {
        if self.read_only { Err(WRITE_PROTECTED.into()) } else { Ok(()) }
    }

    /// Finish a write: make it durable now if the initiator asked (FUA) or
    /// the write cache is off.
    fn complete_write(&self, fua: bool) -> Outcome {
        if fua || !self.write_cache {
            self.store.flush().map_err(|e| write_failed("flush", e))?;
        }
        Ok(Completion::good())
    }
}

/// Refuse protection information: the device reports no PROTECT support,
/// so a non-zero RDPROTECT/WRPROTECT/VRPROTECT is an invalid field.
fn refuse_protection(protect: u8) -> Result<(), Sense> {
    if protect == 0 { Ok(()) } else { Err(Sense::invalid_cdb_field(1, Some(7))) }
}

/// `len` bytes as a transfer length, provided the command's buffer of
/// `room` bytes holds them. The kernel sizes buffers by the initiator's
/// expected transfer length, which can disagree with the CDB; like LIO,
/// refuse such commands rather than move part of the data.
fn fits_buffer(len: u64, room: u32) -> Result<u32, Sense> {
    u32::try_from(len).ok().filter(|&len| len <= room).ok_or_else(|| INVALID_FIELD_IN_CDB.into())
}

fn read_failed(what: &str, e: IoError) -> Sense {
    log(LogLevel::Error, &format!("{what} failed: {e}"));
    e.read_sense().into()
}

fn write_failed(what: &str, e: IoError) -> Sense {
    log(LogLevel::Error, &format!("{what} failed: {e}"));
    e.write_sense().into()
}

/// The command's own buffers failed us: only a host fault does that.
fn transfer_failed(e: IoError) -> Sense {
    log(LogLevel::Error, &format!("data-out transfer failed: {e}"));
    INTERNAL_TARGET_FAILURE.into()
}

tcmu_guest_sdk::export_handler!(FileDisk);
