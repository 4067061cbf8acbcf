//! LIO's configfs tree: user backstores, their tcm_loop and iSCSI exports,
//! and the recovery actions. Paths follow `/sys/kernel/config/target`.
//!
//! Order matters: a backstore is configured (`control`, attributes) before
//! `enable`; an export links the backstore into a LUN; teardown unlinks the
//! LUN symlink (never `rm`s it), removes the LUN and target directories,
//! then the backstore. `enable` and the backstore's `rmdir` block until the
//! daemon answers the netlink event they cause, so they must never run on
//! the netlink thread.

use std::io;
use std::path::{Path, PathBuf};

/// Root of LIO's configfs tree.
pub const TARGET_ROOT: &str = "/sys/kernel/config/target";
const MODULE_PARAMS: &str = "/sys/module/target_core_user/parameters";

/// A configfs operation that failed, with the path it was on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct ConfigfsError {
    op: &'static str,
    path: String,
    #[source]
    source: io::Error,
}

type Result<T> = std::result::Result<T, ConfigfsError>;

fn ctx<T>(op: &'static str, path: &Path, r: io::Result<T>) -> Result<T> {
    r.map_err(|source| ConfigfsError { op, path: path.display().to_string(), source })
}

fn write(path: &Path, value: &str) -> Result<()> {
    tracing::debug!(path = %path.display(), value, "configfs write");
    ctx("writing", path, std::fs::write(path, value))
}

fn mkdir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => ctx("creating", path, r),
    }
}

fn rmdir(path: &Path) -> Result<()> {
    match std::fs::remove_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => ctx("removing", path, r),
    }
}

/// Whether LIO's configfs is there (configfs mounted, target_core_mod loaded).
pub fn available() -> bool {
    Path::new(TARGET_ROOT).join("core").is_dir()
}

/// Settings for a new user backstore.
#[derive(Debug, Clone)]
pub struct BackstoreSpec {
    /// HBA index (`user_<hba>`).
    pub hba: u32,
    /// Backstore name.
    pub name: String,
    /// `dev_config`: `<subtype>/<cfg>`; no commas (the control parser splits on them).
    pub dev_config: String,
    /// Size in bytes.
    pub size: u64,
    /// Largest command in 512-byte sectors.
    pub hw_max_sectors: u32,
    /// Data area size in MiB.
    pub max_data_area_mb: u32,
    /// Seconds before the kernel times out a command we have not completed.
    pub cmd_time_out: u32,
}

/// A user backstore's directory.
#[derive(Debug, Clone)]
pub struct Backstore {
    /// HBA index.
    pub hba: u32,
    /// Name.
    pub name: String,
    dir: PathBuf,
}

impl Backstore {
    /// The backstore at `core/user_<hba>/<name>` (which may or may not exist).
    pub fn at(hba: u32, name: &str) -> Self {
        let dir = Path::new(TARGET_ROOT).join("core").join(format!("user_{hba}")).join(name);
        Self { hba, name: name.to_owned(), dir }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// Whether it is enabled.
    pub fn enabled(&self) -> bool {
        std::fs::read_to_string(self.dir.join("enable")).is_ok_and(|s| s.trim() == "1")
    }

    /// Its size as the kernel has it (`attrib/dev_size`).
    pub fn dev_size(&self) -> Result<u64> {
        let path = self.dir.join("attrib/dev_size");
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigfsError {
            op: "reading",
            path: path.display().to_string(),
            source,
        })?;
        text.trim().parse().map_err(|_| ConfigfsError {
            op: "reading",
            path: path.display().to_string(),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("dev_size {:?} is not a number", text.trim())),
        })
    }

    /// Create and configure a backstore, without enabling it.
    pub fn create(spec: &BackstoreSpec) -> Result<Self> {
        if spec.dev_config.contains(',') || spec.name.contains(['/', ',']) {
            return Err(ConfigfsError {
                op: "configuring",
                path: spec.name.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "names and dev_config may not contain ',' or '/'"),
            });
        }
        let store = Self::at(spec.hba, &spec.name);
        mkdir(store.dir.parent().expect("has an HBA dir"))?;
        mkdir(&store.dir)?;
        let control = format!(
            "dev_config={},dev_size={},hw_max_sectors={},max_data_area_mb={}",
            spec.dev_config, spec.size, spec.hw_max_sectors, spec.max_data_area_mb
        );
        write(&store.dir.join("control"), &control)?;
        write(&store.dir.join("attrib/cmd_time_out"), &spec.cmd_time_out.to_string())?;
        Ok(store)
    }

    /// Set the unit serial LIO reports for the device (`wwn/vpd_unit_serial`;
    /// without it the core's NAA identifier is all zeroes).
    pub fn set_unit_serial(&self, serial: &str) -> Result<()> {
        write(&self.dir.join("wwn/vpd_unit_serial"), serial)
    }

    /// Enable it. Blocks until the daemon answers the ADDED_DEVICE event;
    /// fails with EIO if the answer was an error.
    pub fn enable(&self) -> Result<()> {
        write(&self.dir.join("enable"), "1")
    }

    /// `action/block_dev`: stop the kernel queueing new commands (1) or resume (0).
    pub fn block(&self, blocked: bool) -> Result<()> {
        write(&self.dir.join("action/block_dev"), if blocked { "1" } else { "0" })
    }

    /// `action/reset_ring`: fail every command in the ring with BUSY (so
    /// initiators retry) and zero head and tail.
    pub fn reset_ring(&self) -> Result<()> {
        write(&self.dir.join("action/reset_ring"), "1")
    }

    /// Remove it (a REMOVED event; blocks until answered), then its HBA
    /// directory if that is now empty.
    pub fn remove(&self) -> Result<()> {
        rmdir(&self.dir)?;
        let hba = self.dir.parent().expect("has an HBA dir");
        if std::fs::read_dir(hba).is_ok_and(|mut d| d.next().is_none()) {
            // Another backstore may have appeared meanwhile; that is fine.
            let _ = std::fs::remove_dir(hba);
        }
        Ok(())
    }
}

/// Release configfs writers a crashed daemon left waiting for netlink
/// replies (`block_netlink`, `reset_netlink`): they fail with EIO instead
/// of sitting in D state forever. A no-op on kernels without the knobs.
pub fn reset_pending_netlink() -> Result<()> {
    let params = Path::new(MODULE_PARAMS);
    if !params.join("reset_netlink").exists() {
        return Ok(());
    }
    write(&params.join("block_netlink"), "1")?;
    let reset = write(&params.join("reset_netlink"), "1");
    write(&params.join("block_netlink"), "0")?;
    reset
}

/// A stable NAA-5 WWN for a name (OUI 00-14-05, as LIO uses), so the same
/// device gets the same target identity across daemon restarts.
pub fn wwn_for(name: &str, salt: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{salt}/{name}").as_bytes());
    let tail = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & 0xf_ffff_ffff;
    format!("naa.5001405{tail:09x}")
}

/// Name of our port symlink in a LUN directory.
const PORT_LINK: &str = "tcmu_wasm_port";

/// Create `tpg/lun/lun_0` and link `store` into it (idempotent).
fn link_lun0(tpg: &Path, store: &Backstore) -> Result<()> {
    let lun = tpg.join("lun/lun_0");
    mkdir(&lun)?;
    let link = lun.join(PORT_LINK);
    if !link.exists() {
        ctx("linking", &link, std::os::unix::fs::symlink(store.dir(), &link))?;
    }
    Ok(())
}

/// Unlink LUN 0's port symlink (never `rm` it: configfs) and remove the LUN.
fn unlink_lun0(tpg: &Path) -> Result<()> {
    let lun = tpg.join("lun/lun_0");
    let link = lun.join(PORT_LINK);
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return ctx("unlinking", &link, Err(e)),
        _ => {}
    }
    rmdir(&lun)
}

/// A tcm_loop target exposing one backstore as LUN 0 on a local SCSI host.
#[derive(Debug, Clone)]
pub struct LoopbackExport {
    tpg: PathBuf,
    /// The target WWN.
    pub wwn: String,
}

impl LoopbackExport {
    fn tpg_for(wwn: &str) -> PathBuf {
        Path::new(TARGET_ROOT).join("loopback").join(wwn).join("tpgt_1")
    }

    /// The export for device `name`, whether or not it exists yet.
    pub fn for_device(name: &str) -> Self {
        let wwn = wwn_for(name, "loopback-target");
        Self { tpg: Self::tpg_for(&wwn), wwn }
    }

    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.tpg.join("lun/lun_0").is_dir()
    }

    /// Create it (idempotent): target, TPG, nexus, then LUN 0 linked to
    /// `store`. The nexus must exist first: tcm_loop scans a LUN when it is
    /// linked, and without a nexus the scan finds no I_T nexus and the disk
    /// never appears.
    pub fn create(&self, store: &Backstore) -> Result<()> {
        mkdir(&Path::new(TARGET_ROOT).join("loopback"))?;
        mkdir(self.tpg.parent().expect("target dir"))?;
        mkdir(&self.tpg)?;
        let nexus = self.tpg.join("nexus");
        if std::fs::read_to_string(&nexus).map(|s| s.trim().is_empty()).unwrap_or(true) {
            write(&nexus, &wwn_for(&self.wwn, "loopback-initiator"))?;
        }
        link_lun0(&self.tpg, store)
    }

    /// Remove it: unlink the LUN, remove LUN 0, drop the nexus (writing
    /// `NULL`; tcm_loop refuses while a port is still active, hence after
    /// the LUN), then the TPG and target.
    pub fn remove(&self) -> Result<()> {
        unlink_lun0(&self.tpg)?;
        let nexus = self.tpg.join("nexus");
        if std::fs::read_to_string(&nexus).is_ok_and(|s| !s.trim().is_empty())
            && let Err(e) = write(&nexus, "NULL")
        {
            // tcm_loop refuses while it still counts a port (it does not
            // count down a LUN whose SCSI device never appeared); removing
            // the TPG below drops the nexus too.
            tracing::warn!(error = %e, "could not drop the tcm_loop nexus first");
        }
        rmdir(&self.tpg)?;
        rmdir(self.tpg.parent().expect("target dir"))
    }
}

/// An iSCSI target exposing one backstore as LUN 0 on a portal, with demo
/// mode (any initiator, no CHAP): meant for tests and trusted networks.
#[derive(Debug, Clone)]
pub struct IscsiExport {
    tpg: PathBuf,
    /// Target IQN.
    pub iqn: String,
    /// Portal `ip:port`.
    pub portal: String,
}

impl IscsiExport {
    /// The export of device `name` at `iqn` on `portal`.
    pub fn new(iqn: &str, portal: &str) -> Self {
        let tpg = Path::new(TARGET_ROOT).join("iscsi").join(iqn).join("tpgt_1");
        Self { tpg, iqn: iqn.to_owned(), portal: portal.to_owned() }
    }

    /// The default IQN for a device.
    pub fn default_iqn(name: &str) -> String {
        format!("iqn.2026-11.org.tcmu-wasm:{name}")
    }

    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.tpg.join("lun/lun_0").is_dir()
    }

    /// Create it (idempotent).
    pub fn create(&self, store: &Backstore) -> Result<()> {
        mkdir(&Path::new(TARGET_ROOT).join("iscsi"))?;
        mkdir(self.tpg.parent().expect("target dir"))?;
        mkdir(&self.tpg)?;
        link_lun0(&self.tpg, store)?;
        mkdir(&self.tpg.join("np").join(&self.portal))?;
        for (attr, value) in [
            ("attrib/generate_node_acls", "1"),
            ("attrib/demo_mode_write_protect", "0"),
            ("attrib/cache_dynamic_acls", "1"),
            ("attrib/authentication", "0"),
            ("enable", "1"),
        ] {
            write(&self.tpg.join(attr), value)?;
        }
        Ok(())
    }

    /// Remove it: disable, unlink the LUN, remove portal, LUN, TPG, target.
    pub fn remove(&self) -> Result<()> {
        if self.tpg.is_dir() {
            let _ = write(&self.tpg.join("enable"), "0");
        }
        unlink_lun0(&self.tpg)?;
        rmdir(&self.tpg.join("np").join(&self.portal))?;
        rmdir(&self.tpg)?;
        rmdir(self.tpg.parent().expect("target dir"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wwns_are_stable_and_well_formed() {
        let a = wwn_for("disk0", "loopback-target");
        assert_eq!(a, wwn_for("disk0", "loopback-target"));
        assert_ne!(a, wwn_for("disk1", "loopback-target"));
        assert_ne!(a, wwn_for("disk0", "loopback-initiator"));
        assert!(a.starts_with("naa.5001405") && a.len() == 20, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
