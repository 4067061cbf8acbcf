//! The handler trait and the plain-Rust types it speaks. These mirror the
//! WIT contract in `wit/handler.wit` one to one.

use crate::sense::SenseCode;

/// SCSI status byte GOOD.
pub const STATUS_GOOD: u8 = 0x00;
/// SCSI status byte CHECK CONDITION.
pub const STATUS_CHECK_CONDITION: u8 = 0x02;
/// SCSI status byte CONDITION MET.
pub const STATUS_CONDITION_MET: u8 = 0x04;
/// SCSI status byte BUSY.
pub const STATUS_BUSY: u8 = 0x08;
/// SCSI status byte RESERVATION CONFLICT.
pub const STATUS_RESERVATION_CONFLICT: u8 = 0x18;
/// SCSI status byte TASK SET FULL.
pub const STATUS_TASK_SET_FULL: u8 = 0x28;

/// Longest sense buffer TCMU carries back to the kernel.
pub const MAX_SENSE_LEN: usize = 96;

/// The SCSI peripheral device type a handler emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// SBC direct-access block device.
    Disk,
    /// SSC sequential-access (tape) device.
    Tape,
    /// SMC medium changer.
    Changer,
    /// MMC optical drive.
    Optical,
    /// Anything else.
    Other,
}

/// What a handler says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerInfo {
    /// Short name, e.g. `"file"`.
    pub name: String,
    /// Device type; selects the `tcmu-wasm check` suite.
    pub device_type: DeviceType,
    /// One-line description.
    pub description: String,
}

/// One item of a handler's config string, for help texts (what
/// [`Handler::config_keys`] returns; WIT 0.2.3 `config-help`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    /// The key (`block_size`), or the flag itself (`ro`).
    pub name: String,
    /// What the value looks like (`512|1024|2048|4096`); `None` for a flag.
    pub value: Option<String>,
    /// One line: what it does, and its default.
    pub description: String,
}

impl ConfigKey {
    /// A `key=VALUE` item.
    pub fn value(name: &str, value: &str, description: &str) -> Self {
        Self { name: name.into(), value: Some(value.into()), description: description.into() }
    }

    /// A flag without a value.
    pub fn flag(name: &str, description: &str) -> Self {
        Self { name: name.into(), value: None, description: description.into() }
    }
}

impl std::fmt::Display for ConfigKey {
    /// `block_size=512|1024|2048|4096: logical block size (default 512)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}: {}", self.name, self.description),
            None => write!(f, "{}: {}", self.name, self.description),
        }
    }
}

impl HandlerInfo {
    /// Build a `HandlerInfo`.
    pub fn new(name: &str, device_type: DeviceType, description: &str) -> Self {
        Self { name: name.into(), device_type, description: description.into() }
    }
}

/// Who a device is, as the host assigns it: unique per device and stable
/// across daemon restarts. Report these unless the operator configured an
/// identity of their own, so two devices never look like one disk to
/// multipath or udev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The operator's name for the device.
    pub name: String,
    /// Unit serial number (VPD page 80h): printable ASCII, at most 64 characters.
    pub serial: String,
    /// Logical unit name (VPD page 83h): `naa.6` and 31 hex digits.
    pub naa: String,
}

impl DeviceIdentity {
    /// An identity derived from `name` alone, for tests and native use:
    /// serial `name`, NAA name derived from it.
    pub fn from_name(name: &str) -> Self {
        let naa = crate::scsi::vpd::NaaId::from_serial(name).to_string();
        Self { name: name.into(), serial: name.into(), naa }
    }

    /// The NAA name, parsed; `None` if the host sent something malformed
    /// (then derive one from the serial).
    pub fn naa_id(&self) -> Option<crate::scsi::vpd::NaaId> {
        self.naa.parse().ok()
    }

    /// The identity to report when the operator may have configured a
    /// serial and a WWN: each where given (a WWN derived from a configured
    /// serial, so `serial=` alone fixes the whole identity), else this one.
    pub fn configured(&self, serial: Option<&str>, wwn: Option<&crate::scsi::vpd::NaaId>) -> Self {
        use crate::scsi::vpd::NaaId;
        let naa = match (wwn, serial) {
            (Some(wwn), _) => wwn.clone(),
            (None, Some(serial)) => NaaId::from_serial(serial),
            (None, None) => self.naa_id().unwrap_or_else(|| NaaId::from_serial(&self.serial)),
        };
        Self { name: self.name.clone(), serial: serial.unwrap_or(&self.serial).to_owned(), naa: naa.to_string() }
    }
}

/// One SCSI command.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// The CDB bytes.
    pub cdb: &'a [u8],
    /// Bytes of data-out available through [`Transfer::read_data_out`].
    pub data_out_len: u32,
    /// Room for data-in, in bytes.
    pub data_in_len: u32,
}

impl Command<'_> {
    /// The operation code (first CDB byte); 0xff for an empty CDB, which no
    /// command uses, so it falls into "invalid opcode".
    pub fn opcode(&self) -> u8 {
        self.cdb.first().copied().unwrap_or(0xff)
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// SCSI status byte.
    pub status: u8,
    /// Sense data, at most [`MAX_SENSE_LEN`] bytes (longer is truncated by the host).
    pub sense: Vec<u8>,
    /// Bytes of data-in produced.
    pub data_in_len: u32,
}

impl Completion {
    /// GOOD status, no data-in.
    pub fn good() -> Self {
        Self { status: STATUS_GOOD, sense: Vec::new(), data_in_len: 0 }
    }
    /// GOOD status with `len` bytes of data-in.
    pub fn good_with_data(len: u32) -> Self {
        Self { status: STATUS_GOOD, sense: Vec::new(), data_in_len: len }
    }
    /// CHECK CONDITION with fixed-format sense for `code`.
    pub fn check_condition(code: &SenseCode) -> Self {
        Self { status: STATUS_CHECK_CONDITION, sense: code.fixed(), data_in_len: 0 }
    }
    /// CHECK CONDITION with ready-made sense bytes.
    pub fn check_condition_with_sense(sense: Vec<u8>) -> Self {
        Self { status: STATUS_CHECK_CONDITION, sense, data_in_len: 0 }
    }
    /// Any status without sense (BUSY, RESERVATION CONFLICT, ...).
    pub fn status(status: u8) -> Self {
        Self { status, sense: Vec::new(), data_in_len: 0 }
    }
}

/// Task management functions forwarded by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum TaskManagement {
    AbortTask,
    AbortTaskSet,
    ClearAca,
    ClearTaskSet,
    LunReset,
    TargetWarmReset,
    TargetColdReset,
    LunResetPr,
    Unknown,
}

/// Why a store or transfer operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoError {
    /// The range leaves the store or the command's buffer.
    OutOfRange,
    /// The store is read-only.
    ReadOnly,
    /// More bytes than the handler could receive in one call (its memory cap).
    TooLarge,
    /// The host's I/O failed.
    Io(String),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::OutOfRange => f.write_str("range out of bounds"),
            IoError::ReadOnly => f.write_str("store is read-only"),
            IoError::TooLarge => f.write_str("request larger than the handler's memory cap"),
            IoError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for IoError {}

/// The device's backing store, granted by the host.
pub trait Store {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool;
    /// Read `len` bytes at `offset`.
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, IoError>;
    /// Write `data` at `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), IoError>;
    /// Make completed writes durable.
    fn flush(&self) -> Result<(), IoError>;
    /// Forget a range; later reads return zeroes.
    fn discard(&self, offset: u64, len: u64) -> Result<(), IoError>;
    /// Zero a range.
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), IoError>;
    /// Move store bytes straight into the current command's data-in buffer.
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), IoError>;
    /// Move the current command's data-out bytes straight to the store.
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), IoError>;
}

/// What the host says about a medium it loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediumInfo {
    /// The barcode on the label.
    pub barcode: String,
    /// The write-protect tab is set: writes fail with `read-only`.
    pub write_protected: bool,
    /// This load's number: save it with position state and compare it on
    /// restore, to tell "the same load" from "a new cartridge".
    pub load_id: u64,
}

/// Why a call through a [`Cartridge`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediumError {
    /// The medium was unloaded: the grant is revoked.
    NoMedium,
    /// The call itself failed.
    Io(IoError),
}

impl std::fmt::Display for MediumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediumError::NoMedium => f.write_str("no medium (the grant was revoked)"),
            MediumError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MediumError {}

impl From<IoError> for MediumError {
    fn from(e: IoError) -> Self {
        MediumError::Io(e)
    }
}

/// A loaded medium's image, granted until the host unloads it.
pub trait Cartridge {
    /// Size of the image in bytes.
    fn size(&self) -> Result<u64, MediumError>;
    /// Whether writes are refused.
    fn read_only(&self) -> Result<bool, MediumError>;
    /// Read `len` bytes at `offset`.
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, MediumError>;
    /// Write `data` at `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), MediumError>;
    /// Make completed writes durable.
    fn flush(&self) -> Result<(), MediumError>;
    /// Forget a range; later reads return zeroes.
    fn discard(&self, offset: u64, len: u64) -> Result<(), MediumError>;
    /// Move image bytes straight into the current command's data-in buffer.
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), MediumError>;
    /// Move the current command's data-out bytes straight to the image.
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), MediumError>;
}

/// SMC element types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElementKind {
    /// The picker (medium transport element, type 1).
    Transport,
    /// A storage slot (type 2).
    Storage,
    /// A mail slot (import/export element, type 3).
    ImportExport,
    /// A drive (data transfer element, type 4).
    DataTransfer,
}

impl ElementKind {
    /// The SMC element type code.
    pub fn code(self) -> u8 {
        match self {
            ElementKind::Transport => 1,
            ElementKind::Storage => 2,
            ElementKind::ImportExport => 3,
            ElementKind::DataTransfer => 4,
        }
    }
}

/// One element of the library and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Element address.
    pub address: u16,
    /// Element type.
    pub kind: ElementKind,
    /// The barcode of the cartridge in it, if it is full.
    pub barcode: Option<String>,
    /// Where that cartridge came from.
    pub source: Option<u16>,
    /// A drive's unit serial number.
    pub drive_serial: Option<String>,
    /// A mail slot holding a cartridge the operator put in.
    pub imported: bool,
}

impl Element {
    /// Whether a cartridge is in it.
    pub fn full(&self) -> bool {
        self.barcode.is_some()
    }
}

/// Why a library move failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    /// Nothing in the source (05/3B/0E).
    SourceEmpty,
    /// The destination is full (05/3B/0D).
    DestinationFull,
    /// No element at that address (05/21/01).
    InvalidElement(u16),
    /// The mail slots are locked (05/53/02).
    RemovalPrevented,
    /// A drive could not take or give the cartridge.
    DriveFailed(String),
}

impl std::fmt::Display for MoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MoveError::SourceEmpty => f.write_str("source element is empty"),
            MoveError::DestinationFull => f.write_str("destination element is full"),
            MoveError::InvalidElement(a) => write!(f, "no element at address {a:#x}"),
            MoveError::RemovalPrevented => f.write_str("medium removal prevented"),
            MoveError::DriveFailed(why) => write!(f, "drive failed: {why}"),
        }
    }
}

impl std::error::Error for MoveError {}

/// A changer's library, carried out by the host.
pub trait Library {
    /// Every element, in address order.
    fn elements(&self) -> Vec<Element>;
    /// Move a cartridge (into a drive loads it, out of one unloads it).
    fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), MoveError>;
    /// Move `source` to `first` and what was in `first` to `second`.
    fn exchange_medium(&mut self, source: u16, first: u16, second: u16) -> Result<(), MoveError>;
    /// Lock or unlock the mail slots.
    fn prevent_removal(&mut self, prevent: bool);
}

/// The data buffers of the command being handled.
pub trait Transfer {
    /// Copy `len` bytes of data-out starting at `offset`.
    fn read_data_out(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, IoError>;
    /// Copy `data` into the data-in buffer at `offset`.
    fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), IoError>;
}

/// A SCSI device handler. One value serves one device; the host calls it
/// for one command at a time.
///
/// State that must survive a hot reload of the handler's code, or the
/// rebuild of its instance after a fault (pending unit attentions, mode
/// pages an initiator changed, a tape's position), goes through
/// [`save_state`](Handler::save_state) and
/// [`restore_state`](Handler::restore_state). The SDK notices when the
/// saved bytes change after a command and tells the host, which keeps the
/// latest snapshot.
pub trait Handler: Sized + 'static {
    /// Static facts about the handler.
    fn describe() -> HandlerInfo;
    /// The keys the config string of [`open`](Handler::open) takes, for
    /// operators' help texts (`tcmu-wasm handlers`, targetcli's `help
    /// create`). The default lists none.
    fn config_keys() -> Vec<ConfigKey> {
        Vec::new()
    }
    /// Open a device with the operator's config string, the identity the
    /// host assigned and the granted store. Called again, with the same
    /// arguments, for every new instance (hot reload, rebuild after a fault).
    fn open(config: &str, identity: &DeviceIdentity, store: Option<Box<dyn Store>>) -> Result<Self, String>;
    /// Handle one command.
    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion;
    /// A task management function arrived (no command is in flight).
    fn task_management(&mut self, _tmf: TaskManagement) {}
    /// The device was resized; the store already reports `new_size`.
    fn resized(&mut self, _new_size: u64) {}
    /// The operator switched the write cache on or off.
    fn write_cache_changed(&mut self, _enabled: bool) {}
    /// The device is going away.
    fn close(&mut self) {}
    /// A medium was loaded (drives with removable media). The default
    /// refuses: the handler takes no removable medium.
    fn medium_loaded(&mut self, _cartridge: Box<dyn Cartridge>, _info: MediumInfo) -> Result<(), String> {
        Err("this handler takes no removable medium".into())
    }
    /// The medium was taken out; its grant is already revoked.
    fn medium_unloaded(&mut self) {}
    /// The operator asked for the medium (WIT 0.2.2 `removal`): answer
    /// whether it may go now. A drive answers false while the initiator
    /// prevents removal, and reports an eject request to the initiator as a
    /// locked drive's button does. The default lets it go.
    fn removal_requested(&mut self) -> bool {
        true
    }
    /// Right after `open`: the host's library, for changers. Other devices
    /// get one without elements and ignore it (the default).
    fn library_attached(&mut self, _library: Box<dyn Library>) {}
    /// Elements of the library changed under the changer.
    fn elements_changed(&mut self, _addresses: &[u16]) {}
    /// Append the state to carry into a new instance to `out` (which is
    /// empty). Keep it small and cheap: the SDK calls it after every
    /// command to notice changes. Put a format version in it. The default
    /// saves nothing.
    fn save_state(&self, _out: &mut Vec<u8>) {}
    /// Take over state that [`save_state`](Handler::save_state) of this or
    /// another build produced, right after `open`. The default accepts only
    /// "no state", so a build that cannot read its predecessor's state
    /// refuses the hot reload instead of silently dropping it.
    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        if state.is_empty() { Ok(()) } else { Err("this build of the handler keeps no state".into()) }
    }
}

/// Log levels for [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Log a message through the host (tagged with the device name there). On
/// native builds it goes to stderr at `Warn` and above.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_family = "wasm")]
    crate::wasm::log(level, message);
    #[cfg(not(target_family = "wasm"))]
    if matches!(level, LogLevel::Error | LogLevel::Warn) {
        eprintln!("handler {level:?}: {message}");
    }
}
