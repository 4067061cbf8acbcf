//! `tcmu-wasm serve --config FILE`: one `[[device]]` table per device
//! (none is fine: devices can be added at runtime with `tcmu-wasm ctl add`).
//!
//! ```toml
//! [daemon]                 # optional
//! cache_dir = "/var/cache/tcmu-wasm"
//! instance_id = "rack4-a"  # identity base (default: /etc/machine-id)
//! state_dir = "/var/lib/tcmu-wasm"  # media.json: what is in each drive outside a library
//!
//! [control]                # optional: the operator socket
//! socket = "/run/tcmu-wasm/control.sock"
//! group = "tcmu"           # members may connect too (default: root only)
//! allow_paths = ["/srv/tcmu"]  # where non-root callers may point backing/--wasm
//!
//! [metrics]                # optional: Prometheus text over HTTP, off by default
//! listen = "127.0.0.1:9725"
//!
//! [kernel_devices]         # backstores others create through configfs (docs/targetcli.md)
//! allow_backing = ["/var/lib/tcmu-wasm/images"]  # the only host paths they may name
//!
//! [[device]]
//! name = "disk0"
//! handler = "file"         # a built handler's name, or a path to a .wasm
//! config = "serial=disk0"  # the handler's own config string (optional)
//! size = "64M"
//! backing = "/var/lib/tcmu-wasm/disk0.img"
//! export = "loopback"      # "loopback", "iscsi" or "none"
//!
//! [[device]]               # an optical drive (docs/optical.md)
//! name = "dvd0"
//! handler = "optical"
//! export = "loopback"
//! medium = "/srv/iso/debian.iso"  # optional: the disc in the drive on the first start
//!
//! [[library]]              # a tape library over devices above (docs/vtl.md)
//! name = "vtl0"
//! changer = "changer0"     # a [[device]] with the changer handler
//! drives = ["tape0", "tape1"]  # [[device]]s with the tape handler, element order
//! slots = 8
//! mail_slots = 1
//! directory = "/var/lib/tcmu-wasm/vtl0"  # cartridge images and library.json
//! cartridge_size = "64M"   # capacity of the cartridges created below
//! cartridges = ["E01001L5", "E01002L5"]  # created if missing, in slots 1.. on first start
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sandbox::Limits;
use crate::size::parse_size;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Daemon-wide settings.
    #[serde(default)]
    pub daemon: DaemonSettings,
    /// The control socket.
    #[serde(default)]
    pub control: ControlSettings,
    /// The Prometheus listener.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// The devices.
    #[serde(rename = "device", default)]
    pub devices: Vec<DeviceConfig>,
    /// Tape libraries over some of the devices.
    #[serde(rename = "library", default)]
    pub libraries: Vec<LibraryConfig>,
    /// Devices others create through configfs (targetcli, rtslib).
    #[serde(default)]
    pub kernel_devices: KernelDeviceSettings,
    /// The D-Bus service targetcli asks (`org.kernel.TCMUService1`).
    #[serde(default)]
    pub dbus: DbusSettings,
}

/// `org.kernel.TCMUService1` (control/dbus.rs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbusSettings {
    /// Own the name where a system bus runs (default on; a machine without
    /// a bus, or with tcmu-runner owning the name, serves on without it).
    pub enabled: bool,
    /// Another bus than the system bus (a D-Bus address; tests).
    pub address: Option<String>,
}

impl Default for DbusSettings {
    fn default() -> Self {
        Self { enabled: true, address: None }
    }
}

/// Kernel-first devices: user backstores created by anyone with
/// `dev_config = wasm/<handler>/<backing>[;option...]` (targetcli,
/// `targetctl restore`, raw configfs), served if the handler is installed
/// and the config is valid (docs/targetcli.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelDeviceSettings {
    /// Serve them at all (default on). Off, every such `enable` fails.
    pub enabled: bool,
    /// Directories (or block devices) such a device's backing or medium may
    /// name; nothing outside them is opened. Empty (the default): only
    /// handlers without host files (a RAM disk, an empty drive).
    pub allow_backing: Vec<PathBuf>,
}

impl Default for KernelDeviceSettings {
    fn default() -> Self {
        Self { enabled: true, allow_backing: Vec::new() }
    }
}

/// One tape library: a changer device, its drives and its cartridges.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryConfig {
    /// The library's name (for `ctl library`).
    pub name: String,
    /// The `[[device]]` that is its medium changer.
    pub changer: String,
    /// The `[[device]]`s that are its drives, in element order (the first
    /// is data transfer element 0001h).
    pub drives: Vec<String>,
    /// Storage slots.
    pub slots: u16,
    /// Mail slots (import/export elements).
    #[serde(default)]
    pub mail_slots: u16,
    /// Where the cartridge images (`<BARCODE>.tape`) and `library.json` live.
    pub directory: PathBuf,
    /// Capacity of cartridges created for `cartridges` (and by `ctl library
    /// create` without a size).
    #[serde(default = "default_cartridge_size")]
    pub cartridge_size: Size,
    /// Barcodes: each image is created (blank) if missing, and on the
    /// library's first start they fill the slots from slot 1 in order.
    #[serde(default)]
    pub cartridges: Vec<String>,
    /// Barcodes whose write-protect tab is set.
    #[serde(default)]
    pub write_protected: Vec<String>,
}

fn default_cartridge_size() -> Size {
    Size(64 << 20)
}

/// Smallest cartridge: the image header and a little tape.
pub const MIN_CARTRIDGE_SIZE: u64 = 1 << 20;

impl LibraryConfig {
    /// Check what can be checked without the devices.
    pub fn validate(&self) -> anyhow::Result<()> {
        let ctx = |msg: String| anyhow::anyhow!("library {:?}: {msg}", self.name);
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        anyhow::ensure!(ok_name, "library name {:?}: use 1-64 letters, digits, '-', '_' or '.'", self.name);
        let drives = u16::try_from(self.drives.len()).unwrap_or(u16::MAX);
        super::library::Layout::new(drives, self.mail_slots, self.slots).map_err(ctx)?;
        let mut seen = HashSet::new();
        for d in std::iter::once(&self.changer).chain(&self.drives) {
            if !seen.insert(d) {
                return Err(ctx(format!("device {d:?} is named twice")));
            }
        }
        if !self.directory.is_absolute() {
            return Err(ctx(format!("directory {} must be an absolute path", self.directory.display())));
        }
        if self.cartridge_size.0 < MIN_CARTRIDGE_SIZE || !self.cartridge_size.0.is_multiple_of(4096) {
            return Err(ctx(format!(
                "cartridge_size {} must be a multiple of 4096 bytes, at least {MIN_CARTRIDGE_SIZE}",
                self.cartridge_size.0
            )));
        }
        let mut barcodes = HashSet::new();
        for b in &self.cartridges {
            super::library::check_barcode(b).map_err(ctx)?;
            if !barcodes.insert(b) {
                return Err(ctx(format!("cartridge {b} is listed twice")));
            }
        }
        if self.cartridges.len() > usize::from(self.slots) {
            return Err(ctx(format!("{} cartridges do not fit {} slots", self.cartridges.len(), self.slots)));
        }
        for b in &self.write_protected {
            super::library::check_barcode(b).map_err(ctx)?;
        }
        Ok(())
    }
}

/// Daemon-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSettings {
    /// Compiled-code cache directory (default: see `handlers::default_cache_dir`).
    pub cache_dir: Option<PathBuf>,
    /// LIO HBA index for our backstores (`core/user_<hba>`).
    pub hba: u32,
    /// Seconds the control plane may take to answer a kernel event before
    /// the event is failed (the kernel's configfs writer waits meanwhile).
    pub event_timeout_secs: u64,
    /// What device identities are derived from, with the device name
    /// (default: `/etc/machine-id`, else the host name). Two daemons that
    /// could export to the same initiator need different ids.
    pub instance_id: Option<String>,
    /// Where the daemon keeps what must outlive it besides the devices'
    /// own files: `media.json`, the medium in each drive outside a library
    /// (default [`DEFAULT_STATE_DIR`]; created when first needed).
    pub state_dir: Option<PathBuf>,
}

/// Default `daemon.state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tcmu-wasm";

impl Default for DaemonSettings {
    fn default() -> Self {
        Self { cache_dir: None, hba: 10, event_timeout_secs: 30, instance_id: None, state_dir: None }
    }
}

impl DaemonSettings {
    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }
}

/// The operator's control socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSettings {
    /// Path of the Unix socket; `""` turns it off.
    pub socket: PathBuf,
    /// A group whose members may use the socket besides root.
    pub group: Option<String>,
    /// Directories under which a non-root caller may name host paths
    /// (`backing` of an added device, `--wasm` of a reload). Root may
    /// name any path.
    pub allow_paths: Vec<PathBuf>,
}

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/tcmu-wasm/control.sock";

impl Default for ControlSettings {
    fn default() -> Self {
        Self { socket: PathBuf::from(DEFAULT_SOCKET), group: None, allow_paths: Vec::new() }
    }
}

impl ControlSettings {
    /// Whether the socket is on.
    pub fn enabled(&self) -> bool {
        !self.socket.as_os_str().is_empty()
    }
}

/// The Prometheus listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Loopback address to serve `GET /metrics` on; none by default.
    pub listen: Option<String>,
}

impl MetricsSettings {
    /// The address to listen on, if any; only loopback addresses are allowed.
    pub fn address(&self) -> anyhow::Result<Option<SocketAddr>> {
        let Some(text) = &self.listen else { return Ok(None) };
        let addr: SocketAddr = text
            .parse()
            .map_err(|_| anyhow::anyhow!("metrics.listen {text:?} is not ip:port (e.g. 127.0.0.1:9725)"))?;
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "metrics.listen {addr} is not a loopback address: the metrics listener has no authentication, so it \
             only listens on loopback (put a proxy in front to expose it)"
        );
        Ok(Some(addr))
    }
}

/// How a device is exported to initiators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Export {
    /// tcm_loop: a local SCSI disk (`/dev/sdX`).
    Loopback,
    /// LIO iSCSI target on `iscsi_portal`.
    Iscsi,
    /// No fabric: the backstore only.
    None,
}

/// A size written as `"64M"` or as a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Size(n)),
            Raw::Text(t) => parse_size(&t).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

/// One device.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Backstore name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Handler name or `.wasm` path.
    pub handler: String,
    /// The handler's config string.
    #[serde(default)]
    pub config: String,
    /// Device size: of the backing store; devices without one (tape
    /// drives, changers) may leave it out.
    #[serde(default)]
    pub size: Size,
    /// Host file granted to the handler as its store.
    pub backing: Option<PathBuf>,
    /// Grant the store read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Fabric export.
    pub export: Export,
    /// Keep the kernel device when the daemon stops (a restarted daemon
    /// adopts it); otherwise it is removed.
    #[serde(default)]
    pub persist: bool,
    /// Allow another device on the same backing file or block device (both
    /// must say so). Off by default: two devices writing one file corrupt it.
    #[serde(default)]
    pub shared_backing: bool,
    /// iSCSI target name (default `iqn.2026-11.org.tcmu-wasm:<name>`).
    pub iscsi_iqn: Option<String>,
    /// iSCSI portal (default `127.0.0.1:3260`).
    pub iscsi_portal: Option<String>,
    /// Handler memory cap (default 256M).
    pub memory_limit: Option<Size>,
    /// CPU budget per command, seconds (default 10).
    pub command_budget_secs: Option<f64>,
    /// Kernel command timeout, seconds (`attrib/cmd_time_out`, default 30).
    #[serde(default = "default_cmd_time_out")]
    pub cmd_time_out: u32,
    /// Largest command, 512-byte sectors (default 2048 = 1 MiB).
    #[serde(default = "default_hw_max_sectors")]
    pub hw_max_sectors: u32,
    /// Kernel data area, MiB (default 64).
    #[serde(default = "default_max_data_area_mb")]
    pub max_data_area_mb: u32,
    /// How the store's transfers run: `auto` (io_uring where the kernel
    /// allows it), `uring`, or `blocking` (one command at a time).
    #[serde(default)]
    pub io: crate::aio::IoMode,
    /// Commands whose store I/O may be in flight at once (default 64).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Microseconds the device thread spins for new commands and finished
    /// I/O before it sleeps (default 0: never). Lowers the latency of a
    /// queue-depth-1 workload by the two wake-ups of a round trip; costs
    /// up to a core while the device is in use. Devices with a `backing`.
    #[serde(default)]
    pub busy_poll_us: u32,
    /// Open the backing with `O_DIRECT` (no host page cache: for a backing
    /// larger than RAM, or storage whose own cache should decide). The size
    /// must then be a multiple of the device's O_DIRECT alignment.
    #[serde(default)]
    pub direct: bool,
    /// A drive with removable media outside a library (an optical drive, a
    /// standalone tape drive): the image in it when the daemon first serves
    /// it. Later `ctl media insert`/`eject` are kept in the state directory
    /// and win over this on restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<PathBuf>,
    /// Grant `medium` read-write: a recordable disc, a writable cartridge
    /// (default: read-only, a pressed disc).
    #[serde(default)]
    pub medium_recordable: bool,
}

fn default_cmd_time_out() -> u32 {
    30
}
fn default_hw_max_sectors() -> u32 {
    2048
}
/// The longest busy-poll window a device may ask for: beyond a millisecond
/// a spin costs far more than the wake-up it saves.
const MAX_BUSY_POLL_US: u32 = 1000;

/// Commands with I/O in flight per device, at most: far above what an
/// initiator queues to one LUN (tcm_loop's and iSCSI's queues are a few
/// hundred deep), low enough that a typo is an error, not a silent no-op.
const MAX_IN_FLIGHT: u32 = 4096;

fn default_max_in_flight() -> u32 {
    crate::aio::DEFAULT_MAX_IN_FLIGHT as u32
}

fn default_max_data_area_mb() -> u32 {
    64
}

impl DeviceConfig {
    /// The sandbox limits this device asks for.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(m) = self.memory_limit {
            limits.memory_bytes = m.0 as usize;
        }
        if let Some(s) = self.command_budget_secs {
            limits.command_budget = Duration::from_secs_f64(s);
        }
        limits
    }

    /// iSCSI IQN and portal.
    pub fn iscsi(&self) -> (String, String) {
        let iqn =
            self.iscsi_iqn.clone().unwrap_or_else(|| crate::kernel::configfs::IscsiExport::default_iqn(&self.name));
        let portal = self.iscsi_portal.clone().unwrap_or_else(|| "127.0.0.1:3260".into());
        (iqn, portal)
    }
}

impl ServeConfig {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut cfg: ServeConfig = toml::from_str(text)?;
        for d in &mut cfg.devices {
            d.size_from_block_device()?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mut names = HashSet::new();
        for d in &self.devices {
            d.validate()?;
            anyhow::ensure!(names.insert(&d.name), "device name {:?} is used twice", d.name);
        }
        for (i, a) in self.devices.iter().enumerate() {
            for b in &self.devices[..i] {
                a.check_not_sharing_with(b)?;
            }
        }
        let mut in_library = HashSet::new();
        let mut library_names = HashSet::new();
        for l in &self.libraries {
            l.validate()?;
            anyhow::ensure!(library_names.insert(&l.name), "library name {:?} is used twice", l.name);
            for member in std::iter::once(&l.changer).chain(&l.drives) {
                anyhow::ensure!(
                    self.devices.iter().any(|d| &d.name == member),
                    "library {:?}: there is no [[device]] named {member:?}",
                    l.name
                );
                anyhow::ensure!(in_library.insert(member), "device {member:?} is in two libraries");
                anyhow::ensure!(
                    self.devices.iter().all(|d| &d.name != member || d.medium.is_none()),
                    "library {:?}: device {member:?} sets a medium, but the library decides what is in its drives",
                    l.name
                );
            }
        }
        for (i, a) in self.libraries.iter().enumerate() {
            for b in &self.libraries[..i] {
                anyhow::ensure!(
                    normalize(&a.directory) != normalize(&b.directory),
                    "libraries {:?} and {:?} share the directory {}",
                    b.name,
                    a.name,
                    a.directory.display()
                );
            }
        }
        if let Some(group) = &self.control.group {
            anyhow::ensure!(!group.is_empty(), "control.group must name a group");
        }
        for dir in &self.control.allow_paths {
            anyhow::ensure!(dir.is_absolute(), "control.allow_paths: {} must be absolute", dir.display());
        }
        for dir in &self.kernel_devices.allow_backing {
            anyhow::ensure!(
                dir.is_absolute() && !has_dot_dot(dir),
                "kernel_devices.allow_backing: {} must be absolute, without '..'",
                dir.display()
            );
        }
        self.metrics.address()?;
        if let Some(id) = &self.daemon.instance_id {
            anyhow::ensure!(!id.trim().is_empty() && id.len() <= 256, "daemon.instance_id must be 1-256 characters");
        }
        Ok(())
    }
}

impl DeviceConfig {
    /// Device `name` served by `handler`, every optional key at its default.
    pub fn with_defaults(name: &str, handler: &str, export: Export) -> Self {
        serde_json::from_value(serde_json::json!({ "name": name, "handler": handler, "export": export }))
            .expect("a device's optional keys all have defaults")
    }

    /// A device on a block device may leave `size` out: it is then the
    /// device's whole size.
    pub fn size_from_block_device(&mut self) -> anyhow::Result<()> {
        if self.size.0 == 0
            && let Some(path) = &self.backing
            && let Some(bytes) = crate::backing::block_device_size_of(path)
                .map_err(|e| anyhow::anyhow!("device {:?}: sizing {}: {e}", self.name, path.display()))?
        {
            self.size = Size(bytes - bytes % 512);
        }
        Ok(())
    }

    /// Check one device's settings on their own.
    pub fn validate(&self) -> anyhow::Result<()> {
        let d = self;
        let ok_name = !d.name.is_empty()
            && d.name.len() <= 64
            && d.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !d.name.starts_with('.');
        anyhow::ensure!(ok_name, "device name {:?}: use 1-64 letters, digits, '-', '_' or '.'", d.name);
        let ctx = |msg: String| anyhow::anyhow!("device {:?}: {msg}", d.name);
        if !d.size.0.is_multiple_of(512) || (d.size.0 == 0 && d.backing.is_some()) {
            return Err(ctx(format!("size {} must be a non-zero multiple of 512 bytes", d.size.0)));
        }
        if let Some(b) = &d.backing
            && !b.is_absolute()
        {
            return Err(ctx(format!("backing {} must be an absolute path", b.display())));
        }
        if let Some(m) = &d.medium
            && !m.is_absolute()
        {
            return Err(ctx(format!("medium {} must be an absolute path", m.display())));
        }
        if d.medium_recordable && d.medium.is_none() {
            return Err(ctx("medium_recordable needs a medium".into()));
        }
        if d.export == Export::Iscsi {
            let (_, portal) = d.iscsi();
            if portal.parse::<std::net::SocketAddr>().is_err() {
                return Err(ctx(format!("iscsi_portal {portal:?} is not ip:port")));
            }
        } else if d.iscsi_iqn.is_some() || d.iscsi_portal.is_some() {
            return Err(ctx("iscsi_iqn/iscsi_portal given but export is not \"iscsi\"".into()));
        }
        if !(8..=65535).contains(&d.hw_max_sectors) {
            return Err(ctx(format!("hw_max_sectors {} out of range 8..=65535", d.hw_max_sectors)));
        }
        if d.cmd_time_out == 0 {
            return Err(ctx("cmd_time_out must be non-zero (0 lets a stuck command hang forever)".into()));
        }
        if let Some(s) = d.command_budget_secs
            && !(s > 0.0 && s.is_finite() && s <= 3600.0)
        {
            return Err(ctx(format!("command_budget_secs {s} must be positive (at most 3600)")));
        }
        if let Some(m) = d.memory_limit
            && !((1 << 20)..=(4u64 << 30)).contains(&m.0)
        {
            return Err(ctx(format!("memory_limit {} must be between 1M and 4G", m.0)));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&d.max_in_flight) {
            return Err(ctx(format!(
                "max_in_flight {} out of range 1..={MAX_IN_FLIGHT} (commands with I/O in flight at once)",
                d.max_in_flight
            )));
        }
        if d.busy_poll_us > MAX_BUSY_POLL_US {
            return Err(ctx(format!(
                "busy_poll_us {} is more than {MAX_BUSY_POLL_US} (a spin that long saves nothing over a sleep)",
                d.busy_poll_us
            )));
        }
        if d.config.len() > 4096 || d.config.contains(['\n', '\0']) {
            return Err(ctx("config must be one line of at most 4096 bytes".into()));
        }
        Ok(())
    }

    /// Refuse two devices on one backing file or block device unless both
    /// allow it.
    pub fn check_not_sharing_with(&self, other: &DeviceConfig) -> anyhow::Result<()> {
        self.check_not_sharing(self.backing_identity().as_ref(), other, other.backing_identity().as_ref())
    }

    /// [`DeviceConfig::check_not_sharing_with`] with both backings'
    /// identities already known (the registry keeps them, so adding a device
    /// costs no system call per existing device).
    pub fn check_not_sharing(
        &self,
        mine: Option<&BackingIdentity>,
        other: &DeviceConfig,
        theirs: Option<&BackingIdentity>,
    ) -> anyhow::Result<()> {
        let (Some(a), Some(b), Some(path)) = (mine, theirs, &self.backing) else { return Ok(()) };
        if self.shared_backing && other.shared_backing {
            return Ok(());
        }
        if a == b {
            anyhow::bail!(
                "devices {:?} and {:?} use the same backing {}: two devices writing one file corrupt it \
                 (set shared_backing = true on both if they really should)",
                other.name,
                self.name,
                path.display()
            );
        }
        Ok(())
    }
}

/// What a backing path is, for telling whether two devices share one: its
/// path once `.`, `..` and symlinks in the existing part are resolved, and,
/// for something that exists, its inode (a file) or device number (a block
/// device), which also catches hard links and device aliases.
#[derive(Debug, Clone)]
pub struct BackingIdentity {
    path: PathBuf,
    object: Option<(bool, u64, u64)>,
}

impl PartialEq for BackingIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path || (self.object.is_some() && self.object == other.object)
    }
}

impl DeviceConfig {
    /// The identity of this device's backing, if it has one.
    pub fn backing_identity(&self) -> Option<BackingIdentity> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let path = self.backing.as_ref()?;
        let object = std::fs::metadata(path)
            .ok()
            .map(|m| if m.file_type().is_block_device() { (true, m.rdev(), 0) } else { (false, m.dev(), m.ino()) });
        Some(BackingIdentity { path: normalize(path), object })
    }
}

/// Whether `path` has a `..` component.
pub fn has_dot_dot(path: &Path) -> bool {
    path.components().any(|c| c == std::path::Component::ParentDir)
}

/// Whether `path` is (once normalized) one of `allowed` or under one of
/// them. A relative path, or one with `..` (which [`normalize`] cannot
/// resolve past a part that does not exist yet), is never allowed.
pub fn is_within(path: &Path, allowed: &[PathBuf]) -> bool {
    if !path.is_absolute() || has_dot_dot(path) {
        return false;
    }
    let resolved = normalize(path);
    allowed.iter().any(|dir| resolved.starts_with(normalize(dir)))
}

/// `path` with its longest existing prefix canonicalized (symlinks, `.`,
/// `..` resolved) and the rest appended as written.
pub fn normalize(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut out) = existing.canonicalize() {
            out.extend(rest.iter().rev());
            return out;
        }
        match existing.file_name() {
            Some(name) => {
                rest.push(name.to_owned());
                existing.pop();
            }
            None => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_paths_cannot_be_escaped_with_dot_dot_or_a_missing_part() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = vec![dir.path().join("srv")];
        std::fs::create_dir(&allowed[0]).unwrap();
        assert!(is_within(&allowed[0].join("a.img"), &allowed));
        assert!(is_within(&allowed[0].join("new/deeper/a.img"), &allowed));
        // `missing/..` cannot be resolved by canonicalize; it must not pass as
        // a path under the directory.
        assert!(!is_within(&allowed[0].join("missing/../../../etc/shadow"), &allowed));
        assert!(!is_within(&allowed[0].join("../x.img"), &allowed));
        assert!(!is_within(std::path::Path::new("srv/a.img"), &allowed));
        assert!(!is_within(&dir.path().join("srv2/a.img"), &allowed), "a sibling sharing the prefix");
        assert!(!is_within(std::path::Path::new("/etc/shadow"), &[]));
    }

    #[test]
    fn every_example_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                ServeConfig::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
                seen += 1;
            }
        }
        assert!(seen >= 3, "examples/ has the disk, library and optical configs");
    }

    const EXAMPLE: &str = r#"
        [[device]]
        name = "disk0"
        handler = "file"
        size = "64M"
        backing = "/var/lib/tcmu-wasm/disk0.img"
        export = "loopback"
    "#;

    #[test]
    fn parses_the_documented_example() {
        let cfg = ServeConfig::parse(EXAMPLE).unwrap();
        let d = &cfg.devices[0];
        assert_eq!((d.name.as_str(), d.handler.as_str(), d.size), ("disk0", "file", Size(64 << 20)));
        assert_eq!(d.export, Export::Loopback);
        assert_eq!((d.cmd_time_out, d.hw_max_sectors, d.persist), (30, 2048, false));
        assert_eq!(cfg.daemon.hba, 10);
    }

    #[test]
    fn rejects_bad_configs_with_the_reason() {
        let cases = [
            (EXAMPLE.replace("\"64M\"", "\"64Q\""), "invalid size"),
            (EXAMPLE.replace("\"64M\"", "1000"), "multiple of 512"),
            (EXAMPLE.replace("disk0\"\n", "disk/0\"\n"), "device name"),
            (EXAMPLE.replace("loopback", "fibre"), "unknown variant"),
            (EXAMPLE.replace("handler = \"file\"", "handlr = \"file\""), "unknown field"),
            (EXAMPLE.replace("/var/lib", "var/lib"), "absolute"),
            (format!("{EXAMPLE}{EXAMPLE}"), "used twice"),
            (EXAMPLE.replace("export = \"loopback\"", "export = \"iscsi\"\niscsi_portal = \"localhost\""), "ip:port"),
            (format!("{EXAMPLE}{}", EXAMPLE.replace("\"disk0\"", "\"disk1\"")), "use the same backing"),
            (
                EXAMPLE.replace(
                    "backing = \"/var/lib/tcmu-wasm/disk0.img\"",
                    "backing = \"/var/lib/tcmu-wasm/./disk0.img\"",
                ) + &EXAMPLE.replace("\"disk0\"\n", "\"disk1\"\n"),
                "use the same backing",
            ),
            (format!("[metrics]\nlisten = \"0.0.0.0:9725\"\n{EXAMPLE}"), "not a loopback"),
            (EXAMPLE.replace("size = \"64M\"", "size = \"64M\"\nmemory_limit = \"1K\""), "memory_limit"),
            (EXAMPLE.replace("size = \"64M\"", "size = \"64M\"\nbusy_poll_us = 5000"), "busy_poll_us 5000"),
            (EXAMPLE.replace("size = \"64M\"", "size = \"64M\"\nmax_in_flight = 0"), "max_in_flight 0 out of range"),
            (EXAMPLE.replace("size = \"64M\"", "size = \"64M\"\nmax_in_flight = 100000"), "max_in_flight 100000"),
        ];
        for (text, want) in cases {
            let err = ServeConfig::parse(&text).expect_err(want);
            assert!(format!("{err:#}").contains(want), "{want}: {err:#}");
        }
    }
}
