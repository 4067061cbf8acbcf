//! A tape library as the host keeps it: the element layout, which
//! cartridge is in which element, and the moves that change it. The
//! changer's handler only formats SCSI; every move is carried out here
//! (through [`LibraryPort`]), and a move into or out of a drive loads or
//! unloads it through a [`DriveLink`]. The contents are saved in the
//! cartridge directory after every change, so they survive a restart.
//!
//! Element addresses follow mhvtl's defaults, which mtx, the ch driver and
//! backup software all handle: drives from 0001h, the picker at 02F0h,
//! mail slots from 0300h, storage slots from 0400h.
//!
//! The registry builds one per `[[library]]` table, with a [`DriveLink`]
//! over the drives' devices; `tcmu-wasm ctl library` reaches it through
//! the control socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backing::BackingFile;
use crate::device::{Element, ElementKind, LibraryPort, Medium, MoveError};

/// First drive address.
pub const FIRST_DRIVE: u16 = 0x0001;
/// The picker's address.
pub const TRANSPORT: u16 = 0x02f0;
/// First mail slot address.
pub const FIRST_MAIL_SLOT: u16 = 0x0300;
/// First storage slot address.
pub const FIRST_SLOT: u16 = 0x0400;
/// Most drives, mail slots and storage slots a library may have.
pub const MAX_DRIVES: u16 = TRANSPORT - FIRST_DRIVE;
/// See [`MAX_DRIVES`].
pub const MAX_MAIL_SLOTS: u16 = FIRST_SLOT - FIRST_MAIL_SLOT;
/// See [`MAX_DRIVES`].
pub const MAX_SLOTS: u16 = 0x1000;
/// Longest barcode (the VOLTAG field holds 32 characters of identifier).
pub const MAX_BARCODE: usize = 32;

/// Check a barcode: 1-32 of `A-Z`, `0-9`, `-`, `_`. It names the image
/// file in the cartridge directory, so nothing else is allowed.
pub fn check_barcode(barcode: &str) -> Result<(), String> {
    let ok = !barcode.is_empty()
        && barcode.len() <= MAX_BARCODE
        && barcode.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "barcode {:?} must be 1-{MAX_BARCODE} characters of A-Z, 0-9, '-' and '_'",
            crate::sandbox::guest_text::sanitize(barcode, 64)
        ))
    }
}

/// How a library is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Drives (data transfer elements), in element order.
    pub drives: u16,
    /// Mail slots (import/export elements).
    pub mail_slots: u16,
    /// Storage slots.
    pub slots: u16,
}

impl Layout {
    /// Check the counts against the address ranges.
    pub fn new(drives: u16, mail_slots: u16, slots: u16) -> Result<Self, String> {
        if drives == 0 || drives > MAX_DRIVES {
            return Err(format!("a library has 1-{MAX_DRIVES} drives, not {drives}"));
        }
        if mail_slots > MAX_MAIL_SLOTS {
            return Err(format!("a library has at most {MAX_MAIL_SLOTS} mail slots, not {mail_slots}"));
        }
        if slots == 0 || slots > MAX_SLOTS {
            return Err(format!("a library has 1-{MAX_SLOTS} storage slots, not {slots}"));
        }
        Ok(Self { drives, mail_slots, slots })
    }

    /// The element at `address`, with its index within its kind.
    pub fn element(&self, address: u16) -> Option<(ElementKind, u16)> {
        let within = |first: u16, count: u16| address.checked_sub(first).filter(|&i| i < count);
        if address == TRANSPORT {
            Some((ElementKind::Transport, 0))
        } else if let Some(i) = within(FIRST_DRIVE, self.drives) {
            Some((ElementKind::DataTransfer, i))
        } else if let Some(i) = within(FIRST_MAIL_SLOT, self.mail_slots) {
            Some((ElementKind::ImportExport, i))
        } else {
            within(FIRST_SLOT, self.slots).map(|i| (ElementKind::Storage, i))
        }
    }

    /// Every address, in address order.
    pub fn addresses(&self) -> impl Iterator<Item = u16> + '_ {
        (FIRST_DRIVE..FIRST_DRIVE + self.drives)
            .chain(std::iter::once(TRANSPORT))
            .chain(FIRST_MAIL_SLOT..FIRST_MAIL_SLOT + self.mail_slots)
            .chain(FIRST_SLOT..FIRST_SLOT + self.slots)
    }
}

/// A cartridge in an element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// Its barcode (and image name).
    pub barcode: String,
    /// The element it came from, for SValid.
    pub source: Option<u16>,
    /// In a mail slot: the operator put it there.
    #[serde(default)]
    pub imported: bool,
}

/// What is where: saved as `library.json` in the cartridge directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    /// Format version of this file.
    pub version: u32,
    /// Full elements by address.
    pub elements: BTreeMap<u16, Placed>,
    /// Write-protected cartridges (by barcode).
    #[serde(default)]
    pub write_protected: Vec<String>,
}

/// Version of `library.json`.
const CONTENTS_VERSION: u32 = 1;

/// Loads and unloads the library's drives (the registry's drive devices in
/// the daemon; a fake in tests). Both finish by `deadline`.
pub trait DriveLink: Send + Sync {
    /// Put `medium` into drive `index`.
    fn load(&self, index: u16, medium: Medium, deadline: Instant) -> Result<(), String>;
    /// Take the medium out of drive `index`.
    fn unload(&self, index: u16, deadline: Instant) -> Result<(), String>;
}

struct Inner {
    contents: Contents,
    prevent_removal: bool,
    next_load_id: u64,
}

/// One library.
pub struct Library {
    name: String,
    layout: Layout,
    directory: PathBuf,
    link: Arc<dyn DriveLink>,
    /// Each drive's unit serial number (DVCID in READ ELEMENT STATUS).
    drive_serials: Vec<String>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("name", &self.name).field("layout", &self.layout).finish()
    }
}

impl Library {
    /// Open the library kept in `directory`: its saved contents if there
    /// are any, else `initial` (barcode, slot index) placements. Contents
    /// naming elements the layout lacks, or barcodes without an image, are
    /// refused.
    pub fn open(
        name: &str,
        layout: Layout,
        directory: &Path,
        initial: &[(String, u16)],
        link: Arc<dyn DriveLink>,
    ) -> Result<Self, String> {
        let saved = directory.join("library.json");
        let contents = match std::fs::read(&saved) {
            Ok(bytes) => serde_json::from_slice::<Contents>(&bytes).map_err(|e| format!("{}: {e}", saved.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut contents = Contents { version: CONTENTS_VERSION, ..Default::default() };
                for (barcode, slot) in initial {
                    if *slot >= layout.slots {
                        return Err(format!("cartridge {barcode} is placed in slot {slot}, past the last slot"));
                    }
                    contents
                        .elements
                        .insert(FIRST_SLOT + slot, Placed { barcode: barcode.clone(), source: None, imported: false });
                }
                contents
            }
            Err(e) => return Err(format!("{}: {e}", saved.display())),
        };
        if contents.version != CONTENTS_VERSION {
            return Err(format!("{}: version {} is not {CONTENTS_VERSION}", saved.display(), contents.version));
        }
        let mut seen = std::collections::HashSet::new();
        for (address, placed) in &contents.elements {
            check_barcode(&placed.barcode)?;
            match layout.element(*address) {
                None | Some((ElementKind::Transport, _)) => {
                    return Err(format!(
                        "cartridge {} sits at {address:#06x}, not a slot, mail slot or drive",
                        placed.barcode
                    ));
                }
                Some(_) => {}
            }
            if !seen.insert(placed.barcode.clone()) {
                return Err(format!("cartridge {} is in two places", placed.barcode));
            }
            if !image_path(directory, &placed.barcode).is_file() {
                return Err(format!("cartridge {} has no image in {}", placed.barcode, directory.display()));
            }
        }
        let library = Self {
            name: name.to_owned(),
            layout,
            directory: directory.to_owned(),
            link,
            drive_serials: Vec::new(),
            inner: Mutex::new(Inner { contents, prevent_removal: false, next_load_id: 1 }),
        };
        library.save(&library.lock().contents)?;
        Ok(library)
    }

    /// Report `serials` as the drives' identifiers (DVCID), by drive index.
    pub fn with_drive_serials(mut self, serials: Vec<String>) -> Self {
        self.drive_serials = serials;
        self
    }

    /// Set or clear the write-protect tab of `barcode` (takes effect at
    /// its next load).
    pub fn set_write_protected(&self, barcode: &str, protected: bool) -> Result<(), String> {
        check_barcode(barcode)?;
        let mut inner = self.lock();
        let mut contents = inner.contents.clone();
        contents.write_protected.retain(|b| b != barcode);
        if protected {
            contents.write_protected.push(barcode.to_owned());
            contents.write_protected.sort();
        }
        if contents != inner.contents {
            self.save(&contents)?;
            inner.contents = contents;
        }
        Ok(())
    }

    /// Put back the cartridge the contents say drive `index` holds (after
    /// a restart, or when the drive's device comes up again). Returns its
    /// barcode, `None` for an empty drive.
    pub fn restore_drive(&self, index: u16, deadline: Instant) -> Result<Option<String>, String> {
        let mut inner = self.lock();
        let address = FIRST_DRIVE + index;
        let Some(placed) = inner.contents.elements.get(&address).cloned() else { return Ok(None) };
        let medium = self.medium(&mut inner, &placed.barcode).map_err(|e| e.to_string())?;
        self.link.load(index, medium, deadline)?;
        Ok(Some(placed.barcode))
    }

    /// The directory of the cartridge images.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Whether `barcode` is write-protected.
    pub fn is_write_protected(&self, barcode: &str) -> bool {
        self.lock().contents.write_protected.iter().any(|b| b == barcode)
    }

    /// The library's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Save `contents` atomically (write, fsync, rename).
    fn save(&self, contents: &Contents) -> Result<(), String> {
        let path = self.directory.join("library.json");
        let tmp = self.directory.join(".library.json.tmp");
        let bytes = serde_json::to_vec_pretty(contents).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| format!("saving {}: {e}", path.display()))
    }

    /// Where the drives' media are now, by drive index (for restoring the
    /// drives after a restart).
    pub fn loaded_drives(&self) -> Vec<(u16, String)> {
        let inner = self.lock();
        inner
            .contents
            .elements
            .iter()
            .filter_map(|(a, p)| match self.layout.element(*a) {
                Some((ElementKind::DataTransfer, i)) => Some((i, p.barcode.clone())),
                _ => None,
            })
            .collect()
    }

    /// The medium for a load of `barcode` (its image opened, read-only if
    /// write-protected), with a fresh load id.
    fn medium(&self, inner: &mut Inner, barcode: &str) -> Result<Medium, MoveError> {
        let write_protected = inner.contents.write_protected.iter().any(|b| b == barcode);
        let path = image_path(&self.directory, barcode);
        let size = std::fs::metadata(&path).map_err(|e| MoveError::DriveFailed(format!("{barcode}: {e}")))?.len();
        let image = BackingFile::open(&path, size, write_protected)
            .map_err(|e| MoveError::DriveFailed(format!("opening {barcode}: {e}")))?;
        let load_id = inner.next_load_id;
        inner.next_load_id += 1;
        Ok(Medium { barcode: barcode.to_owned(), write_protected, load_id, image: Arc::new(image) })
    }

    fn kind(&self, address: u16) -> Result<(ElementKind, u16), MoveError> {
        match self.layout.element(address) {
            Some((ElementKind::Transport, _)) | None => Err(MoveError::InvalidElement(address)),
            Some(found) => Ok(found),
        }
    }

    /// One move, under the lock; the caller saves.
    fn move_locked(
        &self,
        inner: &mut Inner,
        source: u16,
        destination: u16,
        deadline: Instant,
    ) -> Result<(), MoveError> {
        let (from, from_index) = self.kind(source)?;
        let (to, to_index) = self.kind(destination)?;
        let placed = inner.contents.elements.get(&source).cloned().ok_or(MoveError::SourceEmpty)?;
        if source == destination {
            return Ok(());
        }
        if inner.contents.elements.contains_key(&destination) {
            return Err(MoveError::DestinationFull);
        }
        if to == ElementKind::ImportExport && source != destination && inner.prevent_removal {
            // The mail slots are locked: nothing goes out to the operator.
            return Err(MoveError::RemovalPrevented);
        }
        if from == ElementKind::DataTransfer {
            // Whether or not the initiator unloaded it first (`mtx unload`
            // is used both ways), the drive lets go of the medium now.
            self.link.unload(from_index, deadline).map_err(MoveError::DriveFailed)?;
        }
        if to == ElementKind::DataTransfer {
            let medium = self.medium(inner, &placed.barcode)?;
            if let Err(why) = self.link.load(to_index, medium, deadline) {
                // Put it back where it was if that was a drive.
                if from == ElementKind::DataTransfer
                    && let Ok(back) = self.medium(inner, &placed.barcode)
                {
                    let _ = self.link.load(from_index, back, deadline);
                }
                return Err(MoveError::DriveFailed(why));
            }
        }
        inner.contents.elements.remove(&source);
        // The source of a cartridge is where it was stored: a move between
        // drives keeps the original slot.
        let origin = if from == ElementKind::DataTransfer { placed.source.or(Some(source)) } else { Some(source) };
        inner
            .contents
            .elements
            .insert(destination, Placed { barcode: placed.barcode, source: origin, imported: false });
        Ok(())
    }

    /// The operator puts a cartridge (with an image in the directory) into
    /// mail slot `index`.
    pub fn import(&self, barcode: &str, index: u16) -> Result<u16, String> {
        check_barcode(barcode)?;
        let mut inner = self.lock();
        if inner.prevent_removal {
            return Err("the mail slots are locked (PREVENT MEDIUM REMOVAL)".into());
        }
        if index >= self.layout.mail_slots {
            return Err(format!("the library has {} mail slots", self.layout.mail_slots));
        }
        let address = FIRST_MAIL_SLOT + index;
        if inner.contents.elements.contains_key(&address) {
            return Err(format!("mail slot {index} is full"));
        }
        if inner.contents.elements.values().any(|p| p.barcode == barcode) {
            return Err(format!("cartridge {barcode} is already in the library"));
        }
        if !image_path(&self.directory, barcode).is_file() {
            return Err(format!("cartridge {barcode} has no image; create it first"));
        }
        let mut contents = inner.contents.clone();
        contents.elements.insert(address, Placed { barcode: barcode.to_owned(), source: None, imported: true });
        self.save(&contents)?;
        inner.contents = contents;
        Ok(address)
    }

    /// The operator takes the cartridge out of mail slot `index`.
    pub fn export(&self, index: u16) -> Result<(u16, String), String> {
        let mut inner = self.lock();
        if inner.prevent_removal {
            return Err("the mail slots are locked (PREVENT MEDIUM REMOVAL)".into());
        }
        let address = FIRST_MAIL_SLOT + index;
        if index >= self.layout.mail_slots {
            return Err(format!("the library has {} mail slots", self.layout.mail_slots));
        }
        let mut contents = inner.contents.clone();
        let placed = contents.elements.remove(&address).ok_or(format!("mail slot {index} is empty"))?;
        self.save(&contents)?;
        inner.contents = contents;
        Ok((address, placed.barcode))
    }
}

/// The image of `barcode` in `directory`.
pub fn image_path(directory: &Path, barcode: &str) -> PathBuf {
    directory.join(format!("{barcode}.tape"))
}

/// Create a blank cartridge: a sparse image of `size` bytes of zeroes (the
/// tape handler formats it with its first write). Refuses to replace an
/// existing image. Returns its path.
pub fn create_cartridge(directory: &Path, barcode: &str, size: u64) -> Result<PathBuf, String> {
    check_barcode(barcode)?;
    let path = image_path(directory, barcode);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!("cartridge {barcode} exists already ({})", path.display()),
        _ => format!("creating {}: {e}", path.display()),
    })?;
    file.set_len(size).and_then(|()| file.sync_all()).map_err(|e| format!("sizing {}: {e}", path.display()))?;
    Ok(path)
}

impl LibraryPort for Library {
    fn elements(&self) -> Vec<Element> {
        let inner = self.lock();
        self.layout
            .addresses()
            .map(|address| {
                let (kind, _) = self.layout.element(address).expect("from the layout");
                let placed = inner.contents.elements.get(&address);
                Element {
                    address,
                    kind,
                    barcode: placed.map(|p| p.barcode.clone()),
                    source: placed.and_then(|p| p.source),
                    drive_serial: match kind {
                        ElementKind::DataTransfer => {
                            self.drive_serials.get(usize::from(address - FIRST_DRIVE)).cloned()
                        }
                        _ => None,
                    },
                    imported: placed.is_some_and(|p| p.imported),
                }
            })
            .collect()
    }

    fn move_medium(&self, source: u16, destination: u16, deadline: Instant) -> Result<(), MoveError> {
        let mut inner = self.lock();
        self.move_locked(&mut inner, source, destination, deadline)?;
        // A move onto itself changes nothing and needs no save.
        if source != destination {
            self.save(&inner.contents).map_err(MoveError::DriveFailed)?;
        }
        Ok(())
    }

    fn exchange_medium(&self, source: u16, first: u16, second: u16, deadline: Instant) -> Result<(), MoveError> {
        let mut inner = self.lock();
        for address in [first, second] {
            if self.kind(address)?.0 == ElementKind::DataTransfer {
                return Err(MoveError::DriveFailed("exchanging with a drive is not supported; move twice".into()));
            }
        }
        if !inner.contents.elements.contains_key(&first) {
            return Err(MoveError::SourceEmpty);
        }
        if second != source && inner.contents.elements.contains_key(&second) {
            return Err(MoveError::DestinationFull);
        }
        // First out of the way, then the source in; with second == source
        // that is a swap through the picker.
        let parked = inner.contents.elements.remove(&first).expect("checked");
        match self.move_locked(&mut inner, source, first, deadline) {
            Ok(()) => {
                inner.contents.elements.insert(second, Placed { source: Some(first), ..parked });
                self.save(&inner.contents).map_err(MoveError::DriveFailed)
            }
            Err(e) => {
                inner.contents.elements.insert(first, parked);
                Err(e)
            }
        }
    }

    fn prevent_removal(&self, prevent: bool) {
        self.lock().prevent_removal = prevent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeLink {
        calls: Mutex<Vec<String>>,
        refuse_loads: std::sync::atomic::AtomicBool,
    }

    impl DriveLink for FakeLink {
        fn load(&self, index: u16, medium: Medium, _deadline: Instant) -> Result<(), String> {
            if self.refuse_loads.load(std::sync::atomic::Ordering::Relaxed) {
                return Err("drive refused".into());
            }
            self.calls.lock().unwrap().push(format!("load {index} {} {}", medium.barcode, medium.load_id));
            Ok(())
        }
        fn unload(&self, index: u16, _deadline: Instant) -> Result<(), String> {
            self.calls.lock().unwrap().push(format!("unload {index}"));
            Ok(())
        }
    }

    fn library(dir: &Path, link: Arc<FakeLink>) -> Library {
        for b in ["A00001", "A00002", "A00003"] {
            std::fs::write(image_path(dir, b), b"").unwrap();
        }
        let initial = [("A00001".to_owned(), 0), ("A00002".to_owned(), 1)];
        Library::open("vtl", Layout::new(2, 1, 6).unwrap(), dir, &initial, link).unwrap()
    }

    fn at(lib: &Library, address: u16) -> Option<String> {
        lib.elements().into_iter().find(|e| e.address == address).and_then(|e| e.barcode)
    }

    #[test]
    fn moves_follow_the_smc_rules_and_drive_moves_go_through_the_drives() {
        let dir = tempfile::tempdir().unwrap();
        let link = Arc::new(FakeLink::default());
        let lib = library(dir.path(), link.clone());
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        assert_eq!(lib.elements().len(), 2 + 1 + 1 + 6);

        assert_eq!(lib.move_medium(FIRST_SLOT + 2, FIRST_DRIVE, soon), Err(MoveError::SourceEmpty));
        assert_eq!(lib.move_medium(FIRST_SLOT, FIRST_SLOT + 1, soon), Err(MoveError::DestinationFull));
        assert_eq!(lib.move_medium(FIRST_SLOT, 0x0999, soon), Err(MoveError::InvalidElement(0x0999)));
        assert_eq!(lib.move_medium(TRANSPORT, FIRST_SLOT, soon), Err(MoveError::InvalidElement(TRANSPORT)));

        lib.move_medium(FIRST_SLOT, FIRST_DRIVE, soon).unwrap();
        assert_eq!(at(&lib, FIRST_DRIVE).as_deref(), Some("A00001"));
        let drive = lib.elements().into_iter().find(|e| e.address == FIRST_DRIVE).unwrap();
        assert_eq!(drive.source, Some(FIRST_SLOT), "SValid + source for the loaded drive");
        assert_eq!(at(&lib, FIRST_SLOT), None, "its slot shows empty");

        // Drive to drive keeps the original slot as the source.
        lib.move_medium(FIRST_DRIVE, FIRST_DRIVE + 1, soon).unwrap();
        let drive = lib.elements().into_iter().find(|e| e.address == FIRST_DRIVE + 1).unwrap();
        assert_eq!(drive.source, Some(FIRST_SLOT));
        lib.move_medium(FIRST_DRIVE + 1, FIRST_SLOT + 5, soon).unwrap();
        assert_eq!(
            *link.calls.lock().unwrap(),
            ["load 0 A00001 1", "unload 0", "load 1 A00001 2", "unload 1"],
            "every load has a fresh id"
        );

        // A drive that refuses leaves the cartridge where it was.
        link.refuse_loads.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(lib.move_medium(FIRST_SLOT + 5, FIRST_DRIVE, soon), Err(MoveError::DriveFailed(_))));
        assert_eq!(at(&lib, FIRST_SLOT + 5).as_deref(), Some("A00001"));
    }

    #[test]
    fn mail_slots_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let link = Arc::new(FakeLink::default());
        let lib = library(dir.path(), link.clone());
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        assert!(lib.import("../etc", 0).is_err(), "barcodes name files: no paths");
        assert!(lib.import("A00009", 0).unwrap_err().contains("no image"));
        assert!(lib.import("A00001", 0).unwrap_err().contains("already"));
        assert_eq!(lib.import("A00003", 0).unwrap(), FIRST_MAIL_SLOT);
        assert!(lib.elements().iter().any(|e| e.address == FIRST_MAIL_SLOT && e.imported));
        lib.move_medium(FIRST_MAIL_SLOT, FIRST_SLOT + 3, soon).unwrap();
        lib.move_medium(FIRST_SLOT + 1, FIRST_MAIL_SLOT, soon).unwrap();
        lib.prevent_removal(true);
        assert!(lib.export(0).unwrap_err().contains("locked"));
        lib.prevent_removal(false);
        assert_eq!(lib.export(0).unwrap(), (FIRST_MAIL_SLOT, "A00002".to_owned()));
        lib.exchange_medium(FIRST_SLOT, FIRST_SLOT + 3, FIRST_SLOT, soon).unwrap();
        assert_eq!(at(&lib, FIRST_SLOT).as_deref(), Some("A00003"), "a swap");
        assert_eq!(at(&lib, FIRST_SLOT + 3).as_deref(), Some("A00001"));
        drop(lib);

        // Reopened: the saved contents win over the initial placement.
        let again = library(dir.path(), link);
        assert_eq!(at(&again, FIRST_SLOT).as_deref(), Some("A00003"));
        assert_eq!(at(&again, FIRST_SLOT + 1), None);
        assert_eq!(at(&again, FIRST_SLOT + 3).as_deref(), Some("A00001"));

        // A saved file naming an element the layout lacks is refused.
        let small = Layout::new(1, 0, 2).unwrap();
        let err = Library::open("vtl", small, dir.path(), &[], Arc::new(FakeLink::default())).unwrap_err();
        assert!(err.contains("not a slot"), "{err}");
    }
}
