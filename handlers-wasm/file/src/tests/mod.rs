//! Native tests: the handler driven through an in-memory store and the
//! command buffers, the way the host drives it.

mod identity;
mod io;
mod mode;
mod provisioning;
mod unit;

use std::cell::RefCell;
use std::rc::Rc;

use tcmu_guest_sdk::sense::{SenseCode, SenseFormat};
use tcmu_guest_sdk::{Command, Completion, Handler, IoError, STATUS_CHECK_CONDITION, STATUS_GOOD, Store, Transfer};

use crate::FileDisk;

/// Everything the store and the transfer share, as the host's would: the
/// medium and the buffers of the command in flight, plus counters that let
/// tests see how the handler used them.
#[derive(Default)]
struct Backing {
    medium: Vec<u8>,
    read_only: bool,
    /// Fail every store operation with an I/O error.
    broken: bool,
    data_out: Vec<u8>,
    data_in: Vec<u8>,
    flushes: usize,
    discards: Vec<(u64, u64)>,
    zeroings: Vec<(u64, u64)>,
    /// Bytes that crossed into or out of the guest through read_at/write_at.
    guest_copied_bytes: u64,
}

type Shared = Rc<RefCell<Backing>>;

struct MemStore(Shared);

fn range(offset: u64, len: u64, size: usize) -> Result<std::ops::Range<usize>, IoError> {
    let end = offset.checked_add(len).ok_or(IoError::OutOfRange)?;
    if end > size as u64 {
        return Err(IoError::OutOfRange);
    }
    Ok(offset as usize..end as usize)
}

impl MemStore {
    fn writable(&self) -> Result<std::cell::RefMut<'_, Backing>, IoError> {
        let b = self.0.borrow_mut();
        if b.broken {
            return Err(IoError::Io("EIO".into()));
        }
        if b.read_only {
            return Err(IoError::ReadOnly);
        }
        Ok(b)
    }

    fn readable(&self) -> Result<std::cell::RefMut<'_, Backing>, IoError> {
        let b = self.0.borrow_mut();
        if b.broken {
            return Err(IoError::Io("EIO".into()));
        }
        Ok(b)
    }
}

impl Store for MemStore {
    fn size(&self) -> u64 {
        self.0.borrow().medium.len() as u64
    }
    fn read_only(&self) -> bool {
        self.0.borrow().read_only
    }
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, IoError> {
        let mut b = self.readable()?;
        let r = range(offset, len.into(), b.medium.len())?;
        b.guest_copied_bytes += u64::from(len);
        Ok(b.medium[r].to_vec())
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), IoError> {
        let mut b = self.writable()?;
        let r = range(offset, data.len() as u64, b.medium.len())?;
        b.guest_copied_bytes += data.len() as u64;
        b.medium[r].copy_from_slice(data);
        Ok(())
    }
    fn flush(&self) -> Result<(), IoError> {
        self.writable()?.flushes += 1;
        Ok(())
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), IoError> {
        let mut b = self.writable()?;
        let r = range(offset, len, b.medium.len())?;
        b.medium[r].fill(0);
        b.discards.push((offset, len));
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), IoError> {
        let mut b = self.writable()?;
        let r = range(offset, len, b.medium.len())?;
        b.medium[r].fill(0);
        b.zeroings.push((offset, len));
        Ok(())
    }
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), IoError> {
        let mut b = self.readable()?;
        let from = range(offset, len.into(), b.medium.len())?;
        let to = range(data_in_offset.into(), len.into(), b.data_in.len())?;
        let Backing { medium, data_in, .. } = &mut *b;
        data_in[to].copy_from_slice(&medium[from]);
        Ok(())
    }
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), IoError> {
        let mut b = self.writable()?;
        let to = range(offset, len.into(), b.medium.len())?;
        let from = range(data_out_offset.into(), len.into(), b.data_out.len())?;
        let Backing { medium, data_out, .. } = &mut *b;
        medium[to].copy_from_slice(&data_out[from]);
        Ok(())
    }
}

struct MemTransfer(Shared);

impl Transfer for MemTransfer {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, IoError> {
        let b = self.0.borrow();
        let r = range(offset.into(), len.into(), b.data_out.len())?;
        Ok(b.data_out[r].to_vec())
    }
    fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), IoError> {
        let mut b = self.0.borrow_mut();
        let r = range(offset.into(), data.len() as u64, b.data_in.len())?;
        b.data_in[r].copy_from_slice(data);
        Ok(())
    }
}

/// A [`FileDisk`] on a memory store.
struct Rig {
    disk: FileDisk,
    backing: Shared,
}

/// Default medium: 64 blocks of 512 bytes.
const BLOCKS: u64 = 64;
const BS: usize = 512;

impl Rig {
    fn new() -> Self {
        Self::with("serial=test-1", BLOCKS as usize * BS)
    }

    fn with(config: &str, size: usize) -> Self {
        Self::try_with(config, size, false).unwrap()
    }

    fn try_with(config: &str, size: usize, read_only: bool) -> Result<Self, String> {
        let backing = Shared::default();
        {
            let mut b = backing.borrow_mut();
            // A recognisable pattern, so reads of untouched blocks are checked too.
            b.medium = (0..size).map(|i| (i % 251) as u8).collect();
            b.read_only = read_only;
        }
        let disk = FileDisk::open(
            config,
            &tcmu_guest_sdk::DeviceIdentity::from_name("rig"),
            Some(Box::new(MemStore(backing.clone()))),
        )?;
        Ok(Self { disk, backing })
    }

    /// Run one command with `data_out` and `data_in_len` bytes of room;
    /// returns the completion and the data-in it produced.
    fn run(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> (Completion, Vec<u8>) {
        {
            let mut b = self.backing.borrow_mut();
            b.data_out = data_out.to_vec();
            b.data_in = vec![0xee; data_in_len as usize];
        }
        let cmd = Command { cdb, data_out_len: data_out.len() as u32, data_in_len };
        let done = self.disk.handle(&cmd, &mut MemTransfer(self.backing.clone()));
        assert!(done.data_in_len <= data_in_len, "claimed more data-in than there was room for");
        let data_in = self.backing.borrow().data_in[..done.data_in_len as usize].to_vec();
        (done, data_in)
    }

    /// Run a command that must succeed; returns its data-in.
    fn ok(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Vec<u8> {
        let (done, data_in) = self.run(cdb, data_out, data_in_len);
        assert_eq!(done.status, STATUS_GOOD, "{cdb:02x?} failed with sense {:02x?}", done.sense);
        data_in
    }

    /// Run a command that must fail with `code`; returns the sense bytes.
    fn fails(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32, code: SenseCode) -> Vec<u8> {
        let (done, _) = self.run(cdb, data_out, data_in_len);
        assert_eq!(done.status, STATUS_CHECK_CONDITION, "{cdb:02x?} did not fail");
        assert_eq!(sense_code(&done.sense), code, "{cdb:02x?}: sense {:02x?}", done.sense);
        assert_eq!(done.data_in_len, 0);
        done.sense
    }

    fn medium(&self, offset: usize, len: usize) -> Vec<u8> {
        self.backing.borrow().medium[offset..offset + len].to_vec()
    }

    fn backing(&self) -> std::cell::RefMut<'_, Backing> {
        self.backing.borrow_mut()
    }
}

/// The triple of fixed or descriptor sense.
fn sense_code(sense: &[u8]) -> SenseCode {
    match sense_format(sense) {
        SenseFormat::Fixed => SenseCode::new(sense[2] & 0x0f, sense[12], sense[13]),
        SenseFormat::Descriptor => SenseCode::new(sense[1] & 0x0f, sense[2], sense[3]),
    }
}

fn sense_format(sense: &[u8]) -> SenseFormat {
    match sense[0] & 0x7f {
        0x70 => SenseFormat::Fixed,
        0x72 => SenseFormat::Descriptor,
        other => panic!("response code {other:#x} is neither fixed nor descriptor sense"),
    }
}

/// The INFORMATION field of fixed sense, when VALID.
fn fixed_information(sense: &[u8]) -> Option<u32> {
    (sense[0] & 0x80 != 0).then(|| u32::from_be_bytes(sense[3..7].try_into().unwrap()))
}

/// The sense-key-specific bytes of fixed sense, when SKSV.
fn field_pointer(sense: &[u8]) -> Option<[u8; 3]> {
    (sense[15] & 0x80 != 0).then(|| sense[15..18].try_into().unwrap())
}

// CDB builders for the commands the tests send most.

fn cdb10(opcode: u8, byte1: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = opcode;
    c[1] = byte1;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn cdb12(opcode: u8, byte1: u8, lba: u32, blocks: u32) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = opcode;
    c[1] = byte1;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[6..10].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn cdb16(opcode: u8, byte1: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = opcode;
    c[1] = byte1;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// `blocks` blocks of data where every byte is `fill`.
fn blocks_of(fill: u8, blocks: usize) -> Vec<u8> {
    vec![fill; blocks * BS]
}
