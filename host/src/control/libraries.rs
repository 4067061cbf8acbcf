//! Tape libraries in the registry: each `[[library]]` names a changer
//! device and drive devices of this daemon. The registry gives the changer
//! its library (a [`LibraryPort`] bound to that library alone), carries
//! out drive loads and unloads through the drives' device threads, puts a
//! drive's cartridge back when its device comes up, and answers the
//! operator's `ctl library` requests (create, import, export, status).
//!
//! A changer's move into a drive runs on the changer's device thread
//! (inside its host call) and waits for the drive's thread to take the
//! cartridge, bounded by the changer's command deadline; the drive thread
//! never waits for the changer, so the two cannot deadlock.

use std::sync::{Arc, Weak};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::api::ErrorKind;
use super::config::{DeviceConfig, LibraryConfig};
use super::identity;
use super::library::{self, DriveLink, FIRST_MAIL_SLOT, Layout, Library};
use super::registry::{OpError, OpResult, Registry};
use crate::device::{Element, ElementKind, LibraryPort, Medium, MediumChange};

/// A library the registry serves.
pub struct LibraryEntry {
    /// As configured.
    pub cfg: LibraryConfig,
    /// The model.
    pub library: Arc<Library>,
}

/// Which part of a library a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Changer,
    Drive(u16),
}

/// Loads and unloads a library's drives through their devices.
struct RegistryDrives {
    registry: Weak<Registry>,
    library: String,
    drives: Vec<String>,
}

impl RegistryDrives {
    fn drive(&self, index: u16) -> Result<&str, String> {
        self.drives
            .get(usize::from(index))
            .map(String::as_str)
            .ok_or_else(|| format!("library {} has no drive {index}", self.library))
    }

    fn change(&self, index: u16, change: MediumChange, deadline: Instant) -> Result<(), String> {
        let name = self.drive(index)?;
        let registry = self.registry.upgrade().ok_or("the daemon is stopping")?;
        let handle = registry.slot(name).and_then(|slot| slot.handle());
        let Some(handle) = handle else {
            // Nothing holds a cartridge in a drive whose device is down, so
            // taking it out needs nothing; putting one in needs the device.
            return match change {
                MediumChange::Unload | MediumChange::Eject => Ok(()),
                MediumChange::Load(_) => Err(format!("drive {name} is not running")),
            };
        };
        let left = deadline.saturating_duration_since(Instant::now());
        handle.change_medium(change, left).map_err(|e| format!("drive {name}: {e}"))
    }
}

impl DriveLink for RegistryDrives {
    fn load(&self, index: u16, medium: Medium, deadline: Instant) -> Result<(), String> {
        let barcode = medium.barcode.clone();
        self.change(index, MediumChange::Load(medium), deadline)?;
        tracing::info!(library = %self.library, drive = self.drives[usize::from(index)], %barcode, "cartridge loaded");
        Ok(())
    }

    fn unload(&self, index: u16, deadline: Instant) -> Result<(), String> {
        self.change(index, MediumChange::Unload, deadline)
    }
}

/// An element, as `ctl library status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementStatus {
    /// SMC element address.
    pub address: u16,
    /// `drive`, `picker`, `mail-slot` or `slot`.
    pub kind: String,
    /// 1-based number within its kind (what mtx prints for slots).
    pub number: u16,
    /// The cartridge in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// Where that cartridge came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<u16>,
    /// The drive device (drives only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Its write-protect tab.
    #[serde(default)]
    pub write_protected: bool,
}

/// `ctl library status` for one library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryStatus {
    /// Its name.
    pub name: String,
    /// The changer device.
    pub changer: String,
    /// The cartridge directory.
    pub directory: std::path::PathBuf,
    /// Every element.
    pub elements: Vec<ElementStatus>,
}

/// What a `ctl library` request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryChange {
    /// The library.
    pub library: String,
    /// The cartridge.
    pub barcode: String,
    /// The element it is in now (or left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u16>,
    /// What happened, for the operator.
    pub message: String,
}

/// Check that a library member's handler fits its role: a changer's must
/// be a changer, a drive's a tape drive that takes removable media.
pub fn check_member(
    libraries: &[LibraryConfig],
    device: &str,
    code: &crate::sandbox::HandlerCode,
) -> anyhow::Result<()> {
    for l in libraries {
        if l.changer == device {
            anyhow::ensure!(
                code.info().device_type == tcmu_guest_sdk::DeviceType::Changer,
                "it is library {:?}'s changer, but handler {} is a {:?} handler",
                l.name,
                code.info().name,
                code.info().device_type
            );
        }
        if l.drives.iter().any(|d| d == device) {
            let drive = matches!(code.info().device_type, tcmu_guest_sdk::DeviceType::Tape) && code.takes_media();
            anyhow::ensure!(
                drive,
                "it is a drive of library {:?}, but handler {} is not a tape drive (a {:?} handler)",
                l.name,
                code.info().name,
                code.info().device_type
            );
        }
    }
    Ok(())
}

/// The serial number a device reports: `serial=` in its handler config, else
/// the identity the host assigns (what DVCID must match).
fn reported_serial(instance_id: &str, device: &DeviceConfig) -> String {
    device
        .config
        .split([',', ';'])
        .filter_map(|item| item.trim().split_once('='))
        .find(|(key, _)| key.trim() == "serial")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_else(|| identity::device_identity(instance_id, &device.name).serial)
}

impl Registry {
    /// Set up a library before its devices are added: create its directory
    /// and missing cartridges, and open its saved contents (or place the
    /// configured cartridges on a first start). `devices` are the
    /// configured devices, for the drives' serial numbers.
    pub fn add_library(self: &Arc<Self>, cfg: LibraryConfig, devices: &[DeviceConfig]) -> anyhow::Result<()> {
        cfg.validate()?;
        let ctx = |e: String| anyhow::anyhow!("library {:?}: {e}", cfg.name);
        anyhow::ensure!(!self.lock_libraries().contains_key(&cfg.name), "library {:?} exists already", cfg.name);
        std::fs::create_dir_all(&cfg.directory)
            .map_err(|e| ctx(format!("creating {}: {e}", cfg.directory.display())))?;
        for barcode in &cfg.cartridges {
            if !library::image_path(&cfg.directory, barcode).exists() {
                library::create_cartridge(&cfg.directory, barcode, cfg.cartridge_size.0).map_err(ctx)?;
                tracing::info!(library = %cfg.name, %barcode, size = cfg.cartridge_size.0, "created blank cartridge");
            }
        }
        let layout = Layout::new(cfg.drives.len() as u16, cfg.mail_slots, cfg.slots).map_err(ctx)?;
        let initial: Vec<(String, u16)> = cfg.cartridges.iter().cloned().zip(0..).collect();
        let link = Arc::new(RegistryDrives {
            registry: Arc::downgrade(self),
            library: cfg.name.clone(),
            drives: cfg.drives.clone(),
        });
        let serials = cfg
            .drives
            .iter()
            .map(|name| match devices.iter().find(|d| &d.name == name) {
                Some(device) => reported_serial(self.instance_id(), device),
                None => identity::device_identity(self.instance_id(), name).serial,
            })
            .collect();
        let library = Library::open(&cfg.name, layout, &cfg.directory, &initial, link).map_err(ctx)?;
        let library = library.with_drive_serials(serials);
        for barcode in &cfg.write_protected {
            library.set_write_protected(barcode, true).map_err(ctx)?;
        }
        tracing::info!(library = %cfg.name, drives = cfg.drives.len(), slots = cfg.slots, "library ready");
        let name = cfg.name.clone();
        self.lock_libraries().insert(name, Arc::new(LibraryEntry { cfg, library: Arc::new(library) }));
        Ok(())
    }

    fn lock_libraries(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Arc<LibraryEntry>>> {
        self.libraries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn role(&self, device: &str) -> Option<(Arc<LibraryEntry>, Role)> {
        self.lock_libraries().values().find_map(|entry| {
            if entry.cfg.changer == device {
                return Some((entry.clone(), Role::Changer));
            }
            let index = entry.cfg.drives.iter().position(|d| d == device)?;
            Some((entry.clone(), Role::Drive(index as u16)))
        })
    }

    /// The library `device` belongs to (as changer or drive), if any.
    pub(super) fn library_of(&self, device: &str) -> Option<String> {
        self.role(device).map(|(entry, _)| entry.cfg.name.clone())
    }

    /// The library a changer device serves, for its [`DeviceSpec`](crate::sandbox::DeviceSpec).
    pub(super) fn changer_library(&self, device: &str) -> Option<Arc<dyn LibraryPort>> {
        match self.role(device)? {
            (entry, Role::Changer) => Some(entry.library.clone() as Arc<dyn LibraryPort>),
            _ => None,
        }
    }

    /// A drive's device came up: give it the cartridge its library says it
    /// holds. A failure leaves the drive empty (and says so); the library
    /// still lists the cartridge there, so a move out of the drive works.
    pub(super) fn restore_library_drive(&self, device: &str) {
        let Some((entry, Role::Drive(index))) = self.role(device) else { return };
        let deadline = Instant::now() + self.deadlines().event;
        match entry.library.restore_drive(index, deadline) {
            Ok(Some(barcode)) => {
                tracing::info!(library = %entry.cfg.name, device, %barcode, "cartridge back in its drive")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(library = %entry.cfg.name, device, error = %e, "could not reload the drive"),
        }
    }

    /// Refuse a library member whose handler does not fit its role.
    pub(super) fn check_library_member(&self, device: &str, code: &crate::sandbox::HandlerCode) -> OpResult<()> {
        let configs: Vec<LibraryConfig> = self.lock_libraries().values().map(|e| e.cfg.clone()).collect();
        check_member(&configs, device, code)
            .map_err(|e| OpError::new(ErrorKind::BadRequest, format!("device {device:?}: {e:#}")))
    }

    fn find_library(&self, name: &str) -> OpResult<Arc<LibraryEntry>> {
        self.lock_libraries()
            .get(name)
            .cloned()
            .ok_or_else(|| OpError::new(ErrorKind::NotFound, format!("no library {name:?}")))
    }

    /// Tell the changer that an element changed under it (it raises a unit
    /// attention so initiators re-read the element status).
    fn notify_changer(&self, entry: &LibraryEntry, address: u16) {
        if let Some(handle) = self.slot(&entry.cfg.changer).and_then(|slot| slot.handle()) {
            handle.elements_changed(vec![address]);
        }
    }

    /// Every library (or one) with what is where.
    pub fn library_status(&self, only: Option<&str>) -> OpResult<Vec<LibraryStatus>> {
        let entries: Vec<Arc<LibraryEntry>> = match only {
            Some(name) => vec![self.find_library(name)?],
            None => self.lock_libraries().values().cloned().collect(),
        };
        Ok(entries
            .iter()
            .map(|entry| LibraryStatus {
                name: entry.cfg.name.clone(),
                changer: entry.cfg.changer.clone(),
                directory: entry.cfg.directory.clone(),
                elements: entry.library.elements().into_iter().map(|e| element_status(entry, e)).collect(),
            })
            .collect())
    }

    /// Create a blank cartridge image of `size` bytes (default: the
    /// library's `cartridge_size`), and with `import` put it in a mail slot.
    pub fn library_create(
        &self,
        name: &str,
        barcode: &str,
        size: Option<u64>,
        import: bool,
    ) -> OpResult<LibraryChange> {
        let entry = self.find_library(name)?;
        let size = size.unwrap_or(entry.cfg.cartridge_size.0);
        if size < super::config::MIN_CARTRIDGE_SIZE || !size.is_multiple_of(4096) {
            return Err(OpError::new(
                ErrorKind::BadRequest,
                format!("size {size} must be a multiple of 4096 bytes, at least {}", super::config::MIN_CARTRIDGE_SIZE),
            ));
        }
        let path = library::create_cartridge(entry.library.directory(), barcode, size)
            .map_err(|e| OpError::new(ErrorKind::Conflict, e))?;
        tracing::info!(library = name, barcode, size, "created blank cartridge");
        if import {
            let mut done = self.library_import(name, barcode, None)?;
            done.message = format!("created {} ({size} bytes); {}", path.display(), done.message);
            return Ok(done);
        }
        Ok(LibraryChange {
            library: name.to_owned(),
            barcode: barcode.to_owned(),
            address: None,
            message: format!("created {} ({size} bytes); import it to put it in the library", path.display()),
        })
    }

    /// Put cartridge `barcode` into mail slot `mail_slot` (1-based; default:
    /// the first empty one).
    pub fn library_import(&self, name: &str, barcode: &str, mail_slot: Option<u16>) -> OpResult<LibraryChange> {
        let entry = self.find_library(name)?;
        let index = match mail_slot {
            Some(0) => return Err(OpError::new(ErrorKind::BadRequest, "mail slots are numbered from 1")),
            Some(n) => n - 1,
            None => first_mail_slot(&entry, false)
                .ok_or_else(|| OpError::new(ErrorKind::Conflict, format!("library {name} has no empty mail slot")))?,
        };
        let address = entry.library.import(barcode, index).map_err(|e| OpError::new(ErrorKind::Conflict, e))?;
        self.notify_changer(&entry, address);
        tracing::info!(library = name, barcode, address, "cartridge imported");
        Ok(LibraryChange {
            library: name.to_owned(),
            barcode: barcode.to_owned(),
            address: Some(address),
            message: format!("{barcode} is in mail slot {}", index + 1),
        })
    }

    /// Take the cartridge out of mail slot `mail_slot` (1-based; default:
    /// the first full one). Its image stays in the directory.
    pub fn library_export(&self, name: &str, mail_slot: Option<u16>) -> OpResult<LibraryChange> {
        let entry = self.find_library(name)?;
        let index = match mail_slot {
            Some(0) => return Err(OpError::new(ErrorKind::BadRequest, "mail slots are numbered from 1")),
            Some(n) => n - 1,
            None => first_mail_slot(&entry, true)
                .ok_or_else(|| OpError::new(ErrorKind::Conflict, format!("library {name}'s mail slots are empty")))?,
        };
        let (address, barcode) = entry.library.export(index).map_err(|e| OpError::new(ErrorKind::Conflict, e))?;
        self.notify_changer(&entry, address);
        tracing::info!(library = name, %barcode, address, "cartridge exported");
        Ok(LibraryChange {
            library: name.to_owned(),
            message: format!(
                "{barcode} left mail slot {}; its image stays in {}",
                index + 1,
                entry.cfg.directory.display()
            ),
            barcode,
            address: Some(address),
        })
    }
}

/// The first mail slot index that is full (or empty).
fn first_mail_slot(entry: &LibraryEntry, full: bool) -> Option<u16> {
    entry
        .library
        .elements()
        .into_iter()
        .find(|e| e.kind == ElementKind::ImportExport && e.full() == full)
        .map(|e| e.address - FIRST_MAIL_SLOT)
}

fn element_status(entry: &LibraryEntry, e: Element) -> ElementStatus {
    let (kind, number, device) = match e.kind {
        ElementKind::DataTransfer => {
            let index = e.address - library::FIRST_DRIVE;
            ("drive", index + 1, entry.cfg.drives.get(usize::from(index)).cloned())
        }
        ElementKind::Transport => ("picker", 1, None),
        ElementKind::ImportExport => ("mail-slot", e.address - FIRST_MAIL_SLOT + 1, None),
        ElementKind::Storage => ("slot", e.address - library::FIRST_SLOT + 1, None),
    };
    let write_protected = e.barcode.as_deref().is_some_and(|b| entry.library.is_write_protected(b));
    ElementStatus {
        address: e.address,
        kind: kind.into(),
        number,
        barcode: e.barcode,
        source: e.source,
        device,
        write_protected,
    }
}
