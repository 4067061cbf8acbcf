//! `tcmu-wasm check`: run the conformance suite for a handler's device
//! type against the handler, served through the simulated kernel and the
//! real ring, device loop and sandbox.
//!
//! - A disk gets a temporary backing file of `size` bytes.
//! - A tape drive starts empty; the suite has a temporary blank cartridge
//!   of `size` bytes loaded into it (and reloaded write-protected), as a
//!   library would. Unless the config sets `early_warning=`, the drive is
//!   told to warn `size / 16` bytes before the end, and the suite is told
//!   the same.
//! - A changer gets a temporary library ([`CHANGER_LAYOUT`]) whose drives
//!   are not devices: loads and unloads succeed without one.
//! - An optical drive starts empty; the suite has discs put in and taken
//!   out as the operator's `ctl media` would: a pressed disc of `size`
//!   bytes (a read-only image holding the suite's sector pattern) and blank
//!   recordable discs of `size` bytes (sparse images from
//!   [`create_blank_disc`], granted writable), which it burns and
//!   re-inserts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tcmu_conformance::{
    ChangerParams, CheckOutcome, DiscKind, DiskParams, OPTICAL_SECTOR_SIZE, OpticalParams, OpticalTarget, ScsiTarget,
    TapeParams, TapeTarget,
};

use crate::backing::BackingFile;
use crate::control::library::{self, DriveLink, Layout, Library};
use crate::control::media::create_blank_disc;
use crate::device::{Backend, Medium, MediumChange};
use crate::sandbox::{DeviceSpec, HandlerCode, Limits, SandboxedDevice};
use crate::sim::{SimConfig, SimDevice};
use tcmu_guest_sdk::DeviceType;

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The handler's config string.
    pub config: String,
    /// Size of the temporary backing store (a tape drive's cartridge).
    pub size: u64,
    /// Sandbox limits.
    pub limits: Limits,
}

/// The library a changer is checked with: (drives, mail slots, slots).
pub const CHANGER_LAYOUT: (u16, u16, u16) = (2, 1, 6);
/// The cartridges in it at the start: (barcode, slot index).
pub const CHANGER_CARTRIDGES: [(&str, u16); 3] = [("CHK001L5", 0), ("CHK002L5", 1), ("CHK003L5", 2)];
/// The barcode of a tape drive's cartridge.
const TAPE_BARCODE: &str = "CHKTAPE1";
/// The labels of an optical drive's discs.
const PRESSED_LABEL: &str = "CHKPRESSED";
const RECORDABLE_LABEL: &str = "CHKBLANK";
/// How long a medium change may take.
const MEDIUM_DEADLINE: Duration = Duration::from_secs(60);

impl ScsiTarget for SimDevice {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<tcmu_conformance::Response, String> {
        let done = SimDevice::execute(self, cdb, data_out, data_in_len).map_err(|e| e.to_string())?;
        Ok(tcmu_conformance::Response { status: done.status, sense: done.sense, data_in: done.data_in })
    }

    fn resize(&mut self, new_size: u64) -> Result<(), String> {
        SimDevice::resize(self, new_size).map_err(|e| format!("{e:#}"))
    }
}

/// Serve `code` on the simulator with what its device type needs and run
/// its suite. Returns one outcome per check.
pub fn run(code: Arc<HandlerCode>, opts: &CheckOptions) -> anyhow::Result<Vec<CheckOutcome>> {
    match code.info().device_type {
        DeviceType::Disk => run_disk(code, opts),
        DeviceType::Tape => run_tape(code, opts),
        DeviceType::Changer => run_changer(code, opts),
        DeviceType::Optical => run_optical(code, opts),
        other => anyhow::bail!("no conformance suite for {other:?} handlers yet"),
    }
}

/// The simulated kernel the suites run on: 16 MiB of data area.
fn sim_config() -> SimConfig {
    SimConfig { data_blocks: 4096, ..SimConfig::default() }
}

/// Start the handler on the simulator with `spec`.
fn start(code: Arc<HandlerCode>, spec: DeviceSpec) -> anyhow::Result<SimDevice> {
    let name = spec.name.to_string();
    SimDevice::start(sim_config(), &name, move || Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>))
}

/// A disk over a fresh temporary backing file.
fn run_disk(code: Arc<HandlerCode>, opts: &CheckOptions) -> anyhow::Result<Vec<CheckOutcome>> {
    let dir = tempfile::tempdir()?;
    let read_only = config_is_read_only(&opts.config);
    let path = dir.path().join("check.img");
    if read_only {
        // A read-only grant needs an existing file of the full size.
        std::fs::File::create(&path)?.set_len(opts.size)?;
    }
    let backing = Arc::new(BackingFile::open(&path, opts.size, read_only)?);
    let spec = DeviceSpec::new("check0", &opts.config, Some(backing), opts.limits.clone());
    let mut dev = start(code, spec)?;
    let params = DiskParams { size_bytes: opts.size, block_size: block_size(&opts.config), read_only };
    let outcomes = tcmu_conformance::disk_suite(&mut dev, &params);
    dev.stop()?;
    Ok(outcomes)
}

/// A tape drive, empty at the start, and a blank cartridge for it.
fn run_tape(code: Arc<HandlerCode>, opts: &CheckOptions) -> anyhow::Result<Vec<CheckOutcome>> {
    let dir = tempfile::tempdir()?;
    let image = library::create_cartridge(dir.path(), TAPE_BARCODE, opts.size).map_err(anyhow::Error::msg)?;
    let (config, early_warning) = tape_config(&opts.config, opts.size)?;
    let dev = start(code, DeviceSpec::new("check0", &config, None, opts.limits.clone()))?;
    let mut drive = CheckDrive { dev, image, size: opts.size, next_load_id: 1 };
    let params = TapeParams { capacity: opts.size, early_warning };
    let outcomes = tcmu_conformance::tape_suite(&mut drive, &params);
    drive.dev.stop()?;
    Ok(outcomes)
}

/// The drive's config, with `early_warning=` added if the operator gave
/// none, and the early-warning distance in bytes.
fn tape_config(config: &str, size: u64) -> anyhow::Result<(String, u64)> {
    let given = config_items(config).find_map(|(k, v)| (k == "early_warning").then_some(v));
    match given {
        Some(value) => {
            let value = value.context("early_warning needs a value")?;
            let bytes = crate::size::parse_size(value).map_err(anyhow::Error::msg).context("early_warning")?;
            Ok((config.to_owned(), bytes))
        }
        None => {
            let bytes = size / 16;
            let separator = if config.trim().is_empty() { "" } else { "," };
            Ok((format!("{config}{separator}early_warning={bytes}"), bytes))
        }
    }
}

/// The simulated drive and the cartridge the suite has loaded into it.
struct CheckDrive {
    dev: SimDevice,
    image: PathBuf,
    size: u64,
    next_load_id: u64,
}

impl ScsiTarget for CheckDrive {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<tcmu_conformance::Response, String> {
        ScsiTarget::execute(&mut self.dev, cdb, data_out, data_in_len)
    }
}

impl TapeTarget for CheckDrive {
    fn load(&mut self, write_protected: bool) -> Result<(), String> {
        let image = BackingFile::open(&self.image, self.size, write_protected)
            .map_err(|e| format!("opening {}: {e}", self.image.display()))?;
        let medium = Medium {
            barcode: TAPE_BARCODE.into(),
            write_protected,
            load_id: self.next_load_id,
            image: Arc::new(image),
        };
        self.next_load_id += 1;
        self.dev.handle().change_medium(MediumChange::Load(medium), MEDIUM_DEADLINE).map_err(|e| format!("{e:#}"))?;
        Ok(())
    }

    fn unload(&mut self) -> Result<(), String> {
        self.dev.handle().change_medium(MediumChange::Unload, MEDIUM_DEADLINE).map_err(|e| format!("{e:#}"))?;
        Ok(())
    }
}

/// Drives that load and unload nothing: in `check` the changer is the
/// device under test, and a library's drives are devices of their own.
struct NoDrives;

impl DriveLink for NoDrives {
    fn load(&self, _index: u16, _medium: Medium, _deadline: Instant) -> Result<(), String> {
        Ok(())
    }

    fn unload(&self, _index: u16, _deadline: Instant) -> Result<(), String> {
        Ok(())
    }
}

/// A changer over a temporary library of [`CHANGER_LAYOUT`] holding
/// [`CHANGER_CARTRIDGES`].
fn run_changer(code: Arc<HandlerCode>, opts: &CheckOptions) -> anyhow::Result<Vec<CheckOutcome>> {
    let dir = tempfile::tempdir()?;
    let (drives, mail_slots, slots) = CHANGER_LAYOUT;
    for (barcode, _) in CHANGER_CARTRIDGES {
        library::create_cartridge(dir.path(), barcode, 1 << 20).map_err(anyhow::Error::msg)?;
    }
    let initial: Vec<(String, u16)> = CHANGER_CARTRIDGES.iter().map(|&(b, s)| (b.to_owned(), s)).collect();
    let drive_serials: Vec<String> = (1..=drives).map(|i| format!("CHKDRV{i:02}")).collect();
    let layout = Layout::new(drives, mail_slots, slots).map_err(anyhow::Error::msg)?;
    let library = Library::open("check", layout, dir.path(), &initial, Arc::new(NoDrives))
        .map_err(anyhow::Error::msg)?
        .with_drive_serials(drive_serials.clone());
    let mut spec = DeviceSpec::new("check0", &opts.config, None, opts.limits.clone());
    spec.library = Some(Arc::new(library));
    let mut dev = start(code, spec)?;
    let params = ChangerParams { drives, mail_slots, slots, cartridges: initial, drive_serials };
    let outcomes = tcmu_conformance::changer_suite(&mut dev, &params);
    dev.stop()?;
    Ok(outcomes)
}

/// An optical drive, empty at the start, and the discs the suite asks for,
/// of `size` bytes each (whole sectors).
fn run_optical(code: Arc<HandlerCode>, opts: &CheckOptions) -> anyhow::Result<Vec<CheckOutcome>> {
    let sectors = u32::try_from(opts.size / u64::from(OPTICAL_SECTOR_SIZE)).context("--size too large for a disc")?;
    let dir = tempfile::tempdir()?;
    let dev = start(code, DeviceSpec::new("check0", &opts.config, None, opts.limits.clone()))?;
    let mut drive = CheckOptical { dev, dir: dir.path().to_owned(), last_recordable: None, next_load_id: 1 };
    let params = OpticalParams { pressed_sectors: sectors, recordable_sectors: sectors };
    let outcomes = tcmu_conformance::optical_suite(&mut drive, &params);
    drive.dev.stop()?;
    Ok(outcomes)
}

/// The simulated optical drive and the disc images the suite had made, in
/// a temporary directory.
struct CheckOptical {
    dev: SimDevice,
    dir: PathBuf,
    /// The recordable image inserted last (for [`DiscKind::SameRecordable`]).
    last_recordable: Option<PathBuf>,
    next_load_id: u64,
}

impl CheckOptical {
    /// The pressed disc's image, written with the suite's pattern the first
    /// time it is asked for.
    fn pressed_image(&self, sectors: u32) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("pressed-{sectors}.iso"));
        if !path.exists() {
            std::fs::write(&path, tcmu_conformance::pressed_disc_image(sectors))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(path)
    }

    /// A new blank recordable image; the one before it is no longer needed
    /// once another blank disc is asked for.
    fn blank_image(&mut self, sectors: u32) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("blank-{}.dvd", self.next_load_id));
        create_blank_disc(&path, u64::from(sectors) * u64::from(OPTICAL_SECTOR_SIZE))?;
        if let Some(old) = self.last_recordable.replace(path.clone()) {
            let _ = std::fs::remove_file(old);
        }
        Ok(path)
    }
}

impl ScsiTarget for CheckOptical {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<tcmu_conformance::Response, String> {
        ScsiTarget::execute(&mut self.dev, cdb, data_out, data_in_len)
    }
}

impl OpticalTarget for CheckOptical {
    fn insert(&mut self, disc: DiscKind) -> Result<(), String> {
        let (path, label, recordable) = match disc {
            DiscKind::Pressed { sectors } => (self.pressed_image(sectors)?, PRESSED_LABEL, false),
            DiscKind::BlankRecordable { sectors } => (self.blank_image(sectors)?, RECORDABLE_LABEL, true),
            DiscKind::SameRecordable => {
                let path = self.last_recordable.clone().ok_or("no recordable disc was inserted before")?;
                (path, RECORDABLE_LABEL, true)
            }
        };
        // As `ctl media insert` opens an image: its whole size, read-only
        // unless recordable.
        let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        let image =
            BackingFile::open(&path, size, !recordable).map_err(|e| format!("opening {}: {e}", path.display()))?;
        let medium = Medium {
            barcode: label.into(),
            write_protected: !recordable,
            load_id: self.next_load_id,
            image: Arc::new(image),
        };
        self.next_load_id += 1;
        self.dev.handle().change_medium(MediumChange::Load(medium), MEDIUM_DEADLINE).map_err(|e| format!("{e:#}"))
    }

    fn eject(&mut self, force: bool) -> Result<(), String> {
        // `ctl media eject` and `--force`: the handler is asked first unless
        // forced.
        let change = if force { MediumChange::Unload } else { MediumChange::Eject };
        self.dev.handle().change_medium(change, MEDIUM_DEADLINE).map_err(|e| format!("{e:#}"))
    }
}

/// The `ro` flag of a handler config string (`key=value` items separated
/// by `,` or `;`), which the suite needs to know to expect DATA PROTECT.
fn config_is_read_only(config: &str) -> bool {
    config_items(config).any(|(k, v)| k == "ro" && matches!(v, None | Some("1" | "true" | "yes")))
}

fn block_size(config: &str) -> u32 {
    config_items(config)
        .find_map(|(k, v)| (k == "block_size").then(|| v.and_then(|v| v.parse().ok())).flatten())
        .unwrap_or(512)
}

fn config_items(config: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    config.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(|item| match item.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (item, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_config_adds_early_warning_unless_given() {
        assert_eq!(tape_config("", 4 << 20).unwrap(), ("early_warning=262144".into(), 256 << 10));
        assert_eq!(tape_config("serial=T", 16 << 20).unwrap(), ("serial=T,early_warning=1048576".into(), 1 << 20));
        assert_eq!(tape_config("early_warning=512K", 4 << 20).unwrap(), ("early_warning=512K".into(), 512 << 10));
        assert!(tape_config("early_warning", 4 << 20).is_err());
    }
}
