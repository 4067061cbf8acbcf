//! Media of drives outside a library: an optical drive's disc, a
//! standalone tape drive's cartridge. The operator puts an image in with
//! `tcmu-wasm ctl media insert DEVICE IMAGE` and takes it out with `ctl
//! media eject DEVICE`; the config's `medium` key says what is in the drive
//! on its first start. What each drive holds is kept in `media.json` in the
//! daemon's state directory after every change, so a restarted daemon puts
//! the same disc back (and an ejected drive stays empty).
//!
//! The handler never sees a path: the host opens the image the operator
//! named and grants it as a revocable cartridge, exactly as a library
//! loads a drive. An eject asks the handler first (WIT 0.2.2 `removal`),
//! so a drive the initiator locked with PREVENT ALLOW MEDIUM REMOVAL keeps
//! its disc unless the operator forces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::api::ErrorKind;
use super::registry::{OpError, OpResult, Registry};
use crate::backing::BackingFile;
use crate::device::{DeviceHandle, Medium, MediumChange};

/// Version of `media.json`.
const MEDIA_VERSION: u32 = 1;

/// The file's name in the state directory.
pub const MEDIA_FILE: &str = "media.json";

/// A medium in a drive, as the operator named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediumStatus {
    /// The image file.
    pub image: PathBuf,
    /// Granted read-write (a recordable disc, a writable cartridge).
    #[serde(default)]
    pub recordable: bool,
}

/// `media.json`: each standalone drive that was ever changed, and what it
/// holds (`null`: empty, so the config's initial medium no longer applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SavedMedia {
    version: u32,
    drives: BTreeMap<String, Option<MediumStatus>>,
}

/// The media of every standalone drive, saved in the state directory.
pub struct MediaBook {
    path: PathBuf,
    saved: Mutex<SavedMedia>,
    /// Load ids for standalone drives (libraries count their own).
    next_load_id: AtomicU64,
}

impl MediaBook {
    /// Read `media.json` from `state_dir`, if there is one. A file that
    /// cannot be read is kept aside (renamed, never overwritten) and the
    /// book starts empty.
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join(MEDIA_FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<SavedMedia>(&bytes) {
                Ok(saved) if saved.version == MEDIA_VERSION => saved,
                Ok(saved) => Self::set_aside(&path, &format!("version {} is not {MEDIA_VERSION}", saved.version)),
                Err(e) => Self::set_aside(&path, &e.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SavedMedia::default(),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read the drives' media; starting with the config's");
                SavedMedia::default()
            }
        };
        Self { path, saved: Mutex::new(saved), next_load_id: AtomicU64::new(1) }
    }

    fn set_aside(path: &Path, why: &str) -> SavedMedia {
        let aside = path.with_extension(format!("json.unreadable-{}", std::process::id()));
        let moved = std::fs::rename(path, &aside);
        tracing::error!(
            file = %path.display(), kept_as = %aside.display(), renamed = moved.is_ok(), error = why,
            "the drives' media file is unreadable; starting with the config's media"
        );
        SavedMedia::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SavedMedia> {
        self.saved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `device` holds per the book: `None` if the book never heard of
    /// it (the config's medium applies), `Some(None)` if it is empty.
    pub fn get(&self, device: &str) -> Option<Option<MediumStatus>> {
        self.lock().drives.get(device).cloned()
    }

    /// Record what `device` holds now and save the book.
    fn set(&self, device: &str, medium: Option<MediumStatus>) -> Result<(), String> {
        let mut saved = self.lock();
        saved.version = MEDIA_VERSION;
        saved.drives.insert(device.to_owned(), medium);
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.path.with_extension("json.tmp");
            let text = serde_json::to_vec_pretty(&*saved).map_err(std::io::Error::other)?;
            let file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut &file, &text)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| format!("saving {}: {e}", self.path.display()))
    }

    fn load_id(&self) -> u64 {
        self.next_load_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A single-layer DVD+R's capacity in bytes (2,295,104 sectors).
pub const DVD_PLUS_R_CAPACITY: u64 = 2_295_104 * 2048;

/// Bytes of the recording trailer after a recordable image's data area
/// (the optical handler's format, docs/optical.md).
pub const RECORDING_TRAILER: u64 = 4096;

/// Smallest recordable capacity the optical handler takes: 64 sectors.
pub const MIN_RECORDABLE: u64 = 64 * 2048;

/// Create a blank recordable disc image of `capacity` bytes (a multiple of
/// 2048): a sparse file of zeroes, the data area and then the trailer. The
/// file must not exist. Returns the file's size.
pub fn create_blank_disc(path: &Path, capacity: u64) -> Result<u64, String> {
    if capacity < MIN_RECORDABLE || !capacity.is_multiple_of(2048) || capacity / 2048 > u64::from(u32::MAX) {
        return Err(format!(
            "capacity {capacity} must be a multiple of 2048 bytes, at least {MIN_RECORDABLE} and under 8 TiB"
        ));
    }
    let size = capacity + RECORDING_TRAILER;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!("{} exists already", path.display()),
        _ => format!("creating {}: {e}", path.display()),
    })?;
    file.set_len(size).and_then(|()| file.sync_all()).map_err(|e| format!("sizing {}: {e}", path.display()))?;
    Ok(size)
}

/// What a `ctl media` request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaChange {
    /// The drive.
    pub device: String,
    /// What it holds now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<MediumStatus>,
    /// What happened, for the operator.
    pub message: String,
}

/// The label a handler hears for an image: its file name's letters and
/// digits, upper-cased, at most 32 (the barcode rules); "DISC" if none.
fn label(image: &Path) -> String {
    let stem = image.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let label: String = stem
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => Some(c.to_ascii_uppercase()),
            '-' | '_' => Some(c),
            _ => None,
        })
        .take(super::library::MAX_BARCODE)
        .collect();
    if label.is_empty() { "DISC".into() } else { label }
}

/// Open the image the operator named: a regular, non-empty file.
fn open_image(status: &MediumStatus, load_id: u64) -> Result<Medium, String> {
    let path = &status.image;
    if !path.is_absolute() {
        return Err(format!("image {} must be an absolute path", path.display()));
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("image {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("image {} is not a regular file", path.display()));
    }
    if meta.len() == 0 {
        return Err(format!("image {} is empty", path.display()));
    }
    let image = BackingFile::open(path, meta.len(), !status.recordable)
        .map_err(|e| format!("opening image {}: {e}", path.display()))?;
    Ok(Medium { barcode: label(path), write_protected: !status.recordable, load_id, image: Arc::new(image) })
}

impl Registry {
    /// A standalone drive's device, serving and taking media.
    fn standalone_drive(&self, device: &str) -> OpResult<Arc<DeviceHandle>> {
        let slot =
            self.slot(device).ok_or_else(|| OpError::new(ErrorKind::NotFound, format!("no device {device:?}")))?;
        if let Some(library) = self.library_of(device) {
            return Err(OpError::new(
                ErrorKind::BadRequest,
                format!(
                    "{device} is in library {library}: its changer moves the cartridges (mtx, or `ctl library import`)"
                ),
            ));
        }
        let takes = slot.code().takes_media();
        if !takes {
            return Err(OpError::new(
                ErrorKind::BadRequest,
                format!("{device}'s handler takes no removable medium (it exports no tcmu:handler/removable)"),
            ));
        }
        slot.handle().ok_or_else(|| OpError::new(ErrorKind::Conflict, format!("{device} is not running")))
    }

    fn medium_request(&self, handle: &DeviceHandle, change: MediumChange) -> Result<(), String> {
        let deadline = Instant::now() + self.deadlines().event;
        let left = deadline.saturating_duration_since(Instant::now());
        handle.change_medium(change, left).map_err(|e| format!("{e:#}"))
    }

    /// What `device` holds, if it is a standalone drive: the book's word,
    /// else the config's initial medium.
    pub(super) fn standalone_medium(&self, device: &str) -> Option<MediumStatus> {
        let slot = self.slot(device)?;
        if self.library_of(device).is_some() {
            return None;
        }
        match self.media().get(device) {
            Some(held) => held,
            None => slot
                .config()
                .medium
                .clone()
                .map(|image| MediumStatus { image, recordable: slot.config().medium_recordable }),
        }
    }

    /// A standalone drive's device came up: put back the medium it holds.
    /// A failure leaves the drive empty and says so; the book keeps the
    /// medium, so the next start tries again.
    pub(super) fn restore_standalone_medium(&self, device: &str) {
        let Some(slot) = self.slot(device) else { return };
        if !slot.code().takes_media() {
            return;
        }
        let Some(status) = self.standalone_medium(device) else { return };
        let Some(handle) = slot.handle() else { return };
        let loaded = open_image(&status, self.media().load_id())
            .and_then(|medium| self.medium_request(&handle, MediumChange::Load(medium)));
        match loaded {
            Ok(()) => tracing::info!(device, image = %status.image.display(), "medium back in its drive"),
            Err(e) => tracing::error!(device, image = %status.image.display(), error = %e, "could not load the medium"),
        }
    }

    /// Put `image` into `device` (read-write if `recordable`). A medium
    /// already in the drive is ejected first, which the initiator may
    /// refuse (PREVENT) unless `force`.
    pub fn media_insert(&self, device: &str, image: &Path, recordable: bool, force: bool) -> OpResult<MediaChange> {
        let handle = self.standalone_drive(device)?;
        let slot =
            self.slot(device).ok_or_else(|| OpError::new(ErrorKind::NotFound, format!("no device {device:?}")))?;
        let _op = slot.try_op()?;
        let status = MediumStatus { image: image.to_owned(), recordable };
        // Open first: a bad image leaves the disc in the drive where it is.
        let medium = open_image(&status, self.media().load_id()).map_err(|e| OpError::new(ErrorKind::BadRequest, e))?;
        let previous = self.standalone_medium(device);
        let mut message = String::new();
        if let Some(old) = &previous {
            self.eject_locked(device, &handle, force)?;
            message = format!("ejected {}; ", old.image.display());
        }
        if let Err(e) = self.medium_request(&handle, MediumChange::Load(medium)) {
            self.record(device, None)?;
            return Err(OpError::new(ErrorKind::Failed, format!("{message}{device} refused {}: {e}", image.display())));
        }
        self.record(device, Some(status.clone()))?;
        tracing::info!(device, image = %image.display(), recordable, "medium inserted");
        message.push_str(&format!(
            "{} is in {device}{}",
            image.display(),
            if recordable { " (recordable)" } else { " (read-only)" }
        ));
        Ok(MediaChange { device: device.to_owned(), medium: Some(status), message })
    }

    /// Take the medium out of `device`: refused while the initiator
    /// prevents removal, unless `force`.
    pub fn media_eject(&self, device: &str, force: bool) -> OpResult<MediaChange> {
        let handle = self.standalone_drive(device)?;
        let slot =
            self.slot(device).ok_or_else(|| OpError::new(ErrorKind::NotFound, format!("no device {device:?}")))?;
        let _op = slot.try_op()?;
        let Some(old) = self.standalone_medium(device) else {
            return Ok(MediaChange { device: device.to_owned(), medium: None, message: format!("{device} is empty") });
        };
        self.eject_locked(device, &handle, force)?;
        tracing::info!(device, image = %old.image.display(), force, "medium ejected");
        Ok(MediaChange {
            device: device.to_owned(),
            medium: None,
            message: format!("ejected {} from {device}", old.image.display()),
        })
    }

    fn eject_locked(&self, device: &str, handle: &DeviceHandle, force: bool) -> OpResult<()> {
        let change = if force { MediumChange::Unload } else { MediumChange::Eject };
        self.medium_request(handle, change).map_err(|e| OpError::new(ErrorKind::Conflict, format!("{device}: {e}")))?;
        self.record(device, None)
    }

    fn record(&self, device: &str, medium: Option<MediumStatus>) -> OpResult<()> {
        self.media().set(device, medium).map_err(|e| OpError::new(ErrorKind::Failed, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_file_name() {
        assert_eq!(label(Path::new("/srv/iso/debian-12.8.0-amd64.iso")), "DEBIAN-1280-AMD64");
        assert_eq!(label(Path::new("/srv/x/..iso")), "DISC");
        assert_eq!(label(Path::new(&format!("/srv/{}.iso", "a".repeat(50)))).len(), 32);
    }

    #[test]
    fn the_book_survives_a_restart_and_sets_aside_what_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let book = MediaBook::open(dir.path());
        assert_eq!(book.get("dvd0"), None);
        let disc = MediumStatus { image: "/srv/a.iso".into(), recordable: false };
        book.set("dvd0", Some(disc.clone())).unwrap();
        book.set("dvd1", None).unwrap();
        let again = MediaBook::open(dir.path());
        assert_eq!(again.get("dvd0"), Some(Some(disc)));
        assert_eq!(again.get("dvd1"), Some(None));

        std::fs::write(dir.path().join(MEDIA_FILE), b"{ not json").unwrap();
        let fresh = MediaBook::open(dir.path());
        assert_eq!(fresh.get("dvd0"), None);
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("unreadable"))
            .collect();
        assert_eq!(kept.len(), 1, "the unreadable file is kept aside");
        assert_eq!(std::fs::read(kept[0].path()).unwrap(), b"{ not json");
    }

    #[test]
    fn blank_discs_are_sparse_zeroes_of_capacity_plus_trailer_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blank.dvd");
        assert_eq!(create_blank_disc(&path, 1 << 20).unwrap(), (1 << 20) + RECORDING_TRAILER);
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0));
        assert!(create_blank_disc(&path, 1 << 20).unwrap_err().contains("exists already"));
        assert!(create_blank_disc(&dir.path().join("odd"), 1000).unwrap_err().contains("multiple of 2048"));
    }

    #[test]
    fn only_regular_non_empty_files_are_images() {
        let dir = tempfile::tempdir().unwrap();
        let status = |p: &Path| MediumStatus { image: p.to_owned(), recordable: false };
        assert!(open_image(&status(dir.path()), 1).unwrap_err().contains("not a regular file"));
        let empty = dir.path().join("empty.iso");
        std::fs::write(&empty, b"").unwrap();
        assert!(open_image(&status(&empty), 1).unwrap_err().contains("empty"));
        assert!(open_image(&status(Path::new("relative.iso")), 1).unwrap_err().contains("absolute"));
        let iso = dir.path().join("disc.iso");
        std::fs::write(&iso, vec![0u8; 4096]).unwrap();
        let medium = open_image(&status(&iso), 7).unwrap();
        assert!(medium.write_protected && medium.image.read_only());
        assert_eq!((medium.load_id, medium.barcode.as_str()), (7, "DISC"));
    }
}
