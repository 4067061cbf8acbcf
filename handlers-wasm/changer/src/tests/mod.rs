//! Native tests: the changer driven through `testing::execute` over an
//! in-memory library that keeps the host's move rules.

mod hostile;
mod moves;
mod status;
mod unit;

use std::cell::RefCell;
use std::rc::Rc;

use tcmu_guest_sdk::sense::SenseCode;
use tcmu_guest_sdk::testing::{Outcome, execute};
use tcmu_guest_sdk::{DeviceIdentity, Element, ElementKind, Handler, Library, MoveError, STATUS_GOOD};

use crate::Changer;

/// The host's default addresses (mhvtl's).
const DRIVE: u16 = 0x0001;
const PICKER: u16 = 0x02f0;
const MAIL: u16 = 0x0300;
const SLOT: u16 = 0x0400;

/// What the fake library holds, shared with the test that made it.
#[derive(Debug, Default)]
struct LibraryState {
    elements: Vec<Element>,
    /// The mail slots are locked.
    prevent: bool,
    /// Drives refuse loads and unloads with this reason.
    broken_drives: Option<String>,
    /// `prevent_removal` calls, in order.
    prevent_calls: Vec<bool>,
}

/// An in-memory library with the host's rules (`host/src/control/library.rs`):
/// the picker is no source or destination, a drive gives up its cartridge
/// whether or not it was unloaded, a cartridge moved out of a drive keeps
/// the slot it came from as its source, and while removal is prevented
/// nothing goes into a mail slot.
#[derive(Debug, Clone, Default)]
struct FakeLibrary(Rc<RefCell<LibraryState>>);

impl FakeLibrary {
    /// `drives` drives, one picker, `mail` mail slots and `slots` slots at
    /// the host's addresses; the first `full` slots hold A00001, A00002...
    fn new(drives: u16, mail: u16, slots: u16, full: u16) -> Self {
        let mut elements = Vec::new();
        for i in 0..drives {
            elements.push(empty(DRIVE + i, ElementKind::DataTransfer));
            elements.last_mut().unwrap().drive_serial = Some(format!("DRV{:05}", i + 1));
        }
        elements.push(empty(PICKER, ElementKind::Transport));
        elements.extend((0..mail).map(|i| empty(MAIL + i, ElementKind::ImportExport)));
        elements.extend((0..slots).map(|i| empty(SLOT + i, ElementKind::Storage)));
        let library = Self::from_elements(elements);
        for i in 0..full {
            library.put(SLOT + i, &format!("A{:05}", i + 1));
        }
        library
    }

    fn from_elements(elements: Vec<Element>) -> Self {
        Self(Rc::new(RefCell::new(LibraryState { elements, ..Default::default() })))
    }

    fn element(&self, address: u16) -> Element {
        self.0.borrow().elements.iter().find(|e| e.address == address).cloned().expect("an element of the layout")
    }

    fn barcode(&self, address: u16) -> Option<String> {
        self.element(address).barcode
    }

    fn with(&self, address: u16, f: impl FnOnce(&mut Element)) {
        let mut state = self.0.borrow_mut();
        f(state.elements.iter_mut().find(|e| e.address == address).expect("an element of the layout"));
    }

    /// Put a cartridge in (setup, no rules).
    fn put(&self, address: u16, barcode: &str) {
        self.with(address, |e| e.barcode = Some(barcode.into()));
    }

    /// The operator imports a cartridge into a mail slot.
    fn import(&self, address: u16, barcode: &str) {
        self.with(address, |e| {
            e.barcode = Some(barcode.into());
            e.source = None;
            e.imported = true;
        });
    }

    /// The operator takes a cartridge out of a mail slot.
    fn export(&self, address: u16) {
        self.with(address, |e| {
            e.barcode = None;
            e.source = None;
            e.imported = false;
        });
    }

    fn kind(&self, address: u16) -> Result<ElementKind, MoveError> {
        let state = self.0.borrow();
        match state.elements.iter().find(|e| e.address == address).map(|e| e.kind) {
            None | Some(ElementKind::Transport) => Err(MoveError::InvalidElement(address)),
            Some(kind) => Ok(kind),
        }
    }
}

fn empty(address: u16, kind: ElementKind) -> Element {
    Element { address, kind, barcode: None, source: None, drive_serial: None, imported: false }
}

impl Library for FakeLibrary {
    fn elements(&self) -> Vec<Element> {
        self.0.borrow().elements.clone()
    }

    fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), MoveError> {
        let from = self.kind(source)?;
        let to = self.kind(destination)?;
        let moving = self.element(source);
        let barcode = moving.barcode.clone().ok_or(MoveError::SourceEmpty)?;
        if source == destination {
            return Ok(());
        }
        if self.element(destination).full() {
            return Err(MoveError::DestinationFull);
        }
        if to == ElementKind::ImportExport && self.0.borrow().prevent {
            return Err(MoveError::RemovalPrevented);
        }
        let drive_involved = from == ElementKind::DataTransfer || to == ElementKind::DataTransfer;
        if let Some(why) = self.0.borrow().broken_drives.clone().filter(|_| drive_involved) {
            return Err(MoveError::DriveFailed(why));
        }
        let origin = if from == ElementKind::DataTransfer { moving.source.or(Some(source)) } else { Some(source) };
        self.with(source, |e| {
            e.barcode = None;
            e.source = None;
            e.imported = false;
        });
        self.with(destination, |e| {
            e.barcode = Some(barcode);
            e.source = origin;
            e.imported = false;
        });
        Ok(())
    }

    fn exchange_medium(&mut self, source: u16, first: u16, second: u16) -> Result<(), MoveError> {
        for address in [first, second] {
            if self.kind(address)? == ElementKind::DataTransfer {
                return Err(MoveError::DriveFailed("exchanging with a drive is not supported".into()));
            }
        }
        self.kind(source)?;
        let parked = self.element(first).barcode.ok_or(MoveError::SourceEmpty)?;
        if second != source && self.element(second).full() {
            return Err(MoveError::DestinationFull);
        }
        self.with(first, |e| e.barcode = None);
        if let Err(e) = self.move_medium(source, first) {
            self.put(first, &parked);
            return Err(e);
        }
        self.with(second, |e| {
            e.barcode = Some(parked);
            e.source = Some(first);
            e.imported = false;
        });
        Ok(())
    }

    fn prevent_removal(&mut self, prevent: bool) {
        let mut state = self.0.borrow_mut();
        state.prevent = prevent;
        state.prevent_calls.push(prevent);
    }
}

/// A changer over a fake library.
struct Rig {
    changer: Changer,
    library: FakeLibrary,
}

impl Rig {
    /// Two drives, one picker, two mail slots, six slots; slots 0-2 full.
    fn new() -> Self {
        Self::with_library(FakeLibrary::new(2, 2, 6, 3))
    }

    fn with_library(library: FakeLibrary) -> Self {
        let mut changer = open("");
        changer.library_attached(Box::new(library.clone()));
        Self { changer, library }
    }

    fn run(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Outcome {
        execute(&mut self.changer, cdb, data_out, data_in_len)
    }

    /// Run a command that must succeed; its data-in.
    #[track_caller]
    fn ok(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Vec<u8> {
        let outcome = self.run(cdb, data_out, data_in_len);
        assert_eq!(outcome.status(), STATUS_GOOD, "{cdb:02x?} failed with {:02x?}", outcome.sense_code());
        outcome.data_in
    }

    /// Run a command that must fail with `code`; its sense data.
    #[track_caller]
    fn fails(&mut self, cdb: &[u8], data_out: &[u8], code: SenseCode) -> Vec<u8> {
        let outcome = self.run(cdb, data_out, 4096);
        assert_eq!(outcome.sense_code(), (code.key, code.asc, code.ascq), "{cdb:02x?}");
        outcome.completion.sense
    }

    fn tur(&mut self) -> Outcome {
        self.run(&[0; 6], &[], 0)
    }
}

fn open(config: &str) -> Changer {
    Changer::open(config, &DeviceIdentity::from_name("changer0"), None).expect("the config is valid")
}

/// The fixed-format sense-key-specific bytes (SKSV, C/D, field pointer).
fn field_pointer(sense: &[u8]) -> [u8; 3] {
    sense[15..18].try_into().unwrap()
}

/// A field pointer into the CDB at `byte`, without a bit.
fn cdb_field(byte: u8) -> [u8; 3] {
    [0xc0, 0, byte]
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be24(b: &[u8]) -> usize {
    usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
}
