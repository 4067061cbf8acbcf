//! The file handler, compiled natively, behind [`ScsiTarget`]: its store is
//! a `Vec<u8>` and its command buffers live next to it, the way the host's
//! TCMU mailbox would hold them.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use tcmu_conformance::{CheckOutcome, Response, ScsiTarget};
use tcmu_guest_sdk::{Command, Handler, IoError, Store, Transfer};
use tcmu_handler_file::FileDisk;

/// The medium and the current command's buffers, shared by the store and
/// the transfer the handler is given.
#[derive(Default)]
struct Backing {
    medium: Vec<u8>,
    read_only: bool,
    data_out: Vec<u8>,
    data_in: Vec<u8>,
}

/// `offset..offset + len` if it lies within `limit` bytes.
fn range(offset: u64, len: u64, limit: usize) -> Result<std::ops::Range<usize>, IoError> {
    let end = offset.checked_add(len).ok_or(IoError::OutOfRange)?;
    if end > limit as u64 {
        return Err(IoError::OutOfRange);
    }
    Ok(offset as usize..end as usize)
}

struct MemoryStore(Rc<RefCell<Backing>>);

impl MemoryStore {
    fn writable(&self) -> Result<std::cell::RefMut<'_, Backing>, IoError> {
        let backing = self.0.borrow_mut();
        if backing.read_only {
            return Err(IoError::ReadOnly);
        }
        Ok(backing)
    }

    fn fill(&self, offset: u64, len: u64) -> Result<(), IoError> {
        let mut backing = self.writable()?;
        let bytes = range(offset, len, backing.medium.len())?;
        backing.medium[bytes].fill(0);
        Ok(())
    }
}

impl Store for MemoryStore {
    fn size(&self) -> u64 {
        self.0.borrow().medium.len() as u64
    }

    fn read_only(&self) -> bool {
        self.0.borrow().read_only
    }

    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, IoError> {
        let backing = self.0.borrow();
        Ok(backing.medium[range(offset, len.into(), backing.medium.len())?].to_vec())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), IoError> {
        let mut backing = self.writable()?;
        let bytes = range(offset, data.len() as u64, backing.medium.len())?;
        backing.medium[bytes].copy_from_slice(data);
        Ok(())
    }

    fn flush(&self) -> Result<(), IoError> {
        Ok(())
    }

    fn discard(&self, offset: u64, len: u64) -> Result<(), IoError> {
        self.fill(offset, len)
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), IoError> {
        self.fill(offset, len)
    }

    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), IoError> {
        let backing = &mut *self.0.borrow_mut();
        let from = range(offset, len.into(), backing.medium.len())?;
        let to = range(data_in_offset.into(), len.into(), backing.data_in.len())?;
        backing.data_in[to].copy_from_slice(&backing.medium[from]);
        Ok(())
    }

    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), IoError> {
        let backing = &mut *self.writable()?;
        let from = range(data_out_offset.into(), len.into(), backing.data_out.len())?;
        let to = range(offset, len.into(), backing.medium.len())?;
        backing.medium[to].copy_from_slice(&backing.data_out[from]);
        Ok(())
    }
}

struct MemoryTransfer(Rc<RefCell<Backing>>);

impl Transfer for MemoryTransfer {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, IoError> {
        let backing = self.0.borrow();
        Ok(backing.data_out[range(offset.into(), len.into(), backing.data_out.len())?].to_vec())
    }

    fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), IoError> {
        let mut backing = self.0.borrow_mut();
        let to = range(offset.into(), data.len() as u64, backing.data_in.len())?;
        backing.data_in[to].copy_from_slice(data);
        Ok(())
    }
}

/// A [`FileDisk`] over an in-memory medium.
pub struct FileTarget {
    disk: FileDisk,
    backing: Rc<RefCell<Backing>>,
}

impl FileTarget {
    /// Open the handler with `config` over `medium`.
    pub fn open(config: &str, medium: Vec<u8>, read_only_store: bool) -> Self {
        let backing = Rc::new(RefCell::new(Backing { medium, read_only: read_only_store, ..Backing::default() }));
        let store = Box::new(MemoryStore(Rc::clone(&backing)));
        let disk = FileDisk::open(config, &tcmu_guest_sdk::DeviceIdentity::from_name("conformance"), Some(store))
            .expect("the file handler opens");
        Self { disk, backing }
    }

    /// A copy of the medium as it is now.
    pub fn medium(&self) -> Vec<u8> {
        self.backing.borrow().medium.clone()
    }
}

impl ScsiTarget for FileTarget {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        {
            let mut backing = self.backing.borrow_mut();
            backing.data_out = data_out.to_vec();
            backing.data_in = vec![0; data_in_len as usize];
        }
        let command = Command { cdb, data_out_len: data_out.len() as u32, data_in_len };
        let completion = self.disk.handle(&command, &mut MemoryTransfer(Rc::clone(&self.backing)));
        let mut data_in = std::mem::take(&mut self.backing.borrow_mut().data_in);
        if completion.data_in_len > data_in_len {
            return Err(format!(
                "handler claims {} bytes of data-in in a {data_in_len}-byte buffer",
                completion.data_in_len
            ));
        }
        data_in.truncate(completion.data_in_len as usize);
        Ok(Response { status: completion.status, sense: completion.sense, data_in })
    }

    fn resize(&mut self, new_size: u64) -> Result<(), String> {
        self.backing.borrow_mut().medium.resize(new_size as usize, 0);
        self.disk.resized(new_size);
        Ok(())
    }
}

/// A medium whose every byte depends on its offset, so lost or misplaced
/// data shows.
pub fn patterned_medium(size: usize) -> Vec<u8> {
    (0..size).map(|offset| (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()[0]).collect()
}

/// Print outcomes as `tcmu-wasm check` would, and the failed ones' names.
pub fn report(outcomes: &[CheckOutcome]) -> Vec<&str> {
    for outcome in outcomes {
        println!("{outcome}");
    }
    outcomes.iter().filter(|outcome| !outcome.passed()).map(|outcome| outcome.name.as_str()).collect()
}
