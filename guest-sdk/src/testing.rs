//! Test doubles for running handlers natively, without a host: an
//! in-memory [`MemStore`] (also a [`Cartridge`] that can be revoked like a
//! host grant), the data buffers of one command, and a one-call command
//! runner. Handler unit tests and the conformance suites use the same
//! pieces, so a handler behaves the same under both.
//!
//! ```
//! use tcmu_guest_sdk::testing::{MemStore, run};
//! use tcmu_guest_sdk::{Command, Completion, Store};
//!
//! let store = MemStore::new(4096);
//! Store::write_at(&store, 0, b"hello").unwrap();
//! let cmd = Command { cdb: &[0x08, 0, 0, 0, 1, 0], data_out_len: 0, data_in_len: 512 };
//! let (done, data) = run(&cmd, &[], |_, _| {
//!     Store::read_to_data_in(&store, 0, 5, 0).unwrap();
//!     Completion::good_with_data(5)
//! });
//! assert_eq!((done.status, &data[..]), (0, &b"hello"[..]));
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::{Cartridge, Command, Completion, Handler, IoError, MediumError, Store, Transfer};

thread_local! {
    // The buffers of the command `run` is running: the store's zero-copy
    // moves reach them the way the host's reach the ring.
    static BUFFERS: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

struct Buffers {
    data_out: Vec<u8>,
    data_in: Vec<u8>,
}

fn with_buffers<R>(f: impl FnOnce(&mut Buffers) -> Result<R, IoError>) -> Result<R, IoError> {
    // Outside a command there are no buffers, as in the host.
    BUFFERS.with(|b| b.borrow_mut().as_mut().map_or(Err(IoError::OutOfRange), f))
}

fn range(offset: u64, len: u64, size: usize) -> Result<std::ops::Range<usize>, IoError> {
    let end = offset.checked_add(len).filter(|&e| e <= size as u64).ok_or(IoError::OutOfRange)?;
    Ok(offset as usize..end as usize)
}

/// The data buffers of the running command, as a [`Transfer`].
#[derive(Debug, Default)]
pub struct MemTransfer;

impl Transfer for MemTransfer {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, IoError> {
        with_buffers(|b| Ok(b.data_out[range(offset.into(), len.into(), b.data_out.len())?].to_vec()))
    }

    fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), IoError> {
        with_buffers(|b| {
            let r = range(offset.into(), data.len() as u64, b.data_in.len())?;
            b.data_in[r].copy_from_slice(data);
            Ok(())
        })
    }
}

/// Run one command: `f` gets `cmd` and a [`Transfer`] over `data_out` and
/// a data-in buffer of `cmd.data_in_len` bytes. Returns the completion and
/// the data-in the completion claims (its `data_in_len`, cut to the buffer).
pub fn run(
    cmd: &Command<'_>,
    data_out: &[u8],
    f: impl FnOnce(&Command<'_>, &mut dyn Transfer) -> Completion,
) -> (Completion, Vec<u8>) {
    let buffers = Buffers { data_out: data_out.to_vec(), data_in: vec![0; cmd.data_in_len as usize] };
    let outer = BUFFERS.with(|b| b.borrow_mut().replace(buffers));
    let cmd = Command { data_out_len: data_out.len() as u32, ..*cmd };
    let done = f(&cmd, &mut MemTransfer);
    let buffers = BUFFERS.with(|b| std::mem::replace(&mut *b.borrow_mut(), outer)).expect("installed above");
    let mut data_in = buffers.data_in;
    data_in.truncate(done.data_in_len as usize);
    (done, data_in)
}

/// What [`execute`] returns: the completion and the data-in it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the command ended.
    pub completion: Completion,
    /// The data-in the completion claims.
    pub data_in: Vec<u8>,
}

impl Outcome {
    /// SCSI status.
    pub fn status(&self) -> u8 {
        self.completion.status
    }

    /// (sense key, ASC, ASCQ) from fixed or descriptor sense; zeros without sense.
    pub fn sense_code(&self) -> (u8, u8, u8) {
        let s = &self.completion.sense;
        match s.first().map(|b| b & 0x7f) {
            Some(0x70 | 0x71) if s.len() >= 14 => (s[2] & 0xf, s[12], s[13]),
            Some(0x72 | 0x73) if s.len() >= 4 => (s[1] & 0xf, s[2], s[3]),
            _ => (0, 0, 0),
        }
    }
}

/// Send one command to `handler`: the one-call runner.
pub fn execute<H: Handler>(handler: &mut H, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Outcome {
    let cmd = Command { cdb, data_out_len: data_out.len() as u32, data_in_len };
    let (completion, data_in) = run(&cmd, data_out, |c, x| handler.handle(c, x));
    Outcome { completion, data_in }
}

/// An in-memory store of fixed size. Clones share the bytes, so a test
/// keeps one to look at what the handler wrote. As a [`Cartridge`] it can
/// be revoked, after which every call fails with `NoMedium` — the way a
/// host grant behaves after an unload.
#[derive(Debug, Clone)]
pub struct MemStore {
    bytes: Rc<RefCell<Vec<u8>>>,
    read_only: bool,
    revoked: Rc<Cell<bool>>,
}

impl MemStore {
    /// `size` zero bytes, writable.
    pub fn new(size: usize) -> Self {
        Self::from_bytes(vec![0; size])
    }

    /// A store holding `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes: Rc::new(RefCell::new(bytes)), read_only: false, revoked: Rc::default() }
    }

    /// The same bytes, refusing writes (a write-protected cartridge).
    pub fn write_protected(&self) -> Self {
        Self { read_only: true, ..self.clone() }
    }

    /// A copy of the contents.
    pub fn contents(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }

    /// Grow (with zeroes) or shrink the store, as an operator's resize would.
    pub fn resize(&self, size: usize) {
        self.bytes.borrow_mut().resize(size, 0);
    }

    /// Revoke the grant (every clone): calls fail with `NoMedium` from now on.
    pub fn revoke(&self) {
        self.revoked.set(true);
    }

    fn writable(&self) -> Result<(), IoError> {
        if self.read_only { Err(IoError::ReadOnly) } else { Ok(()) }
    }

    fn live(&self) -> Result<(), MediumError> {
        if self.revoked.get() { Err(MediumError::NoMedium) } else { Ok(()) }
    }
}

impl Store for MemStore {
    fn size(&self) -> u64 {
        self.bytes.borrow().len() as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, IoError> {
        let bytes = self.bytes.borrow();
        Ok(bytes[range(offset, len.into(), bytes.len())?].to_vec())
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), IoError> {
        self.writable()?;
        let mut bytes = self.bytes.borrow_mut();
        let r = range(offset, data.len() as u64, bytes.len())?;
        bytes[r].copy_from_slice(data);
        Ok(())
    }
    fn flush(&self) -> Result<(), IoError> {
        Ok(())
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), IoError> {
        self.write_zeroes(offset, len)
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), IoError> {
        self.writable()?;
        let mut bytes = self.bytes.borrow_mut();
        let r = range(offset, len, bytes.len())?;
        bytes[r].fill(0);
        Ok(())
    }
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), IoError> {
        let data = Store::read_at(self, offset, len)?;
        MemTransfer.write_data_in(data_in_offset, &data)
    }
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), IoError> {
        let data = MemTransfer.read_data_out(data_out_offset, len)?;
        Store::write_at(self, offset, &data)
    }
}

impl Cartridge for MemStore {
    fn size(&self) -> Result<u64, MediumError> {
        self.live()?;
        Ok(Store::size(self))
    }
    fn read_only(&self) -> Result<bool, MediumError> {
        self.live()?;
        Ok(self.read_only)
    }
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, MediumError> {
        self.live()?;
        Ok(Store::read_at(self, offset, len)?)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.live()?;
        Ok(Store::write_at(self, offset, data)?)
    }
    fn flush(&self) -> Result<(), MediumError> {
        self.live()
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), MediumError> {
        self.live()?;
        Ok(Store::discard(self, offset, len)?)
    }
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), MediumError> {
        self.live()?;
        Ok(Store::read_to_data_in(self, offset, len, data_in_offset)?)
    }
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), MediumError> {
        self.live()?;
        Ok(Store::write_from_data_out(self, offset, len, data_out_offset)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_copy_moves_reach_the_running_commands_buffers_only() {
        let store = MemStore::new(1024);
        let cmd = Command { cdb: &[0x0a, 0, 0, 0, 1, 0], data_out_len: 0, data_in_len: 0 };
        let (done, _) = run(&cmd, &[7u8; 512], |_, _| {
            Store::write_from_data_out(&store, 512, 512, 0).unwrap();
            assert_eq!(Store::write_from_data_out(&store, 600, 512, 0), Err(IoError::OutOfRange), "past the store");
            assert_eq!(Store::write_from_data_out(&store, 0, 513, 0), Err(IoError::OutOfRange), "past data-out");
            Completion::good()
        });
        assert_eq!(done.status, 0);
        assert_eq!(&store.contents()[512..], &[7u8; 512][..]);
        assert_eq!(Store::read_to_data_in(&store, 0, 1, 0), Err(IoError::OutOfRange), "no command, no buffers");
        assert_eq!(Store::write_at(&store.write_protected(), 0, &[1]), Err(IoError::ReadOnly));
    }

    #[test]
    fn a_revoked_cartridge_fails_every_call_with_no_medium() {
        let store = MemStore::from_bytes(vec![1; 64]);
        let held: Box<dyn Cartridge> = Box::new(store.clone());
        assert_eq!(Cartridge::read_at(&*held, 0, 4), Ok(vec![1; 4]));
        store.revoke();
        assert_eq!(Cartridge::read_at(&*held, 0, 4), Err(MediumError::NoMedium));
        assert_eq!(Cartridge::write_at(&*held, 0, &[2]), Err(MediumError::NoMedium));
        assert_eq!(store.contents(), vec![1; 64]);
    }
}
