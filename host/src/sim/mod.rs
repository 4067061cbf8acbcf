//! A simulated kernel: the driver side of the TCMU ring, for tests,
//! `tcmu-wasm check` and `tcmu-wasm bench`.
//!
//! [`SimKernel`] builds the region exactly as `target_core_user` does
//! (mailbox, command ring at `cmdr_off`, data area after it, in a memfd
//! mapping), allocates data blocks the way the kernel does (a command's
//! buffer is a list of iovecs over non-contiguous blocks), pads the ring
//! at wrap-around, injects TMRs and malformed entries, wakes user space
//! through an eventfd and collects completions. The daemon side drives it
//! with the very same [`crate::ring::Ring`] it uses on a real device.

mod doorbell;
mod harness;
pub mod load;

pub use doorbell::SimDoorbell;
pub use harness::{DEFAULT_TIMEOUT, SimDevice};

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use memmap2::MmapOptions;
use nix::sys::eventfd::{EfdFlags, EventFd};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::ring::layout::{self, hdr, mailbox, op, req, rsp, tmr};
use crate::ring::{Region, RegionError};

/// Shape of the simulated device.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Command ring size in bytes (multiple of 8).
    pub ring_size: u32,
    /// Data block size (the kernel's is one page).
    pub block_size: u32,
    /// Number of data blocks.
    pub data_blocks: u32,
    /// Mailbox capability flags to advertise.
    pub flags: u16,
    /// Seed for the block allocator, so a failing run can be replayed.
    pub seed: u64,
    /// Hand out data blocks in random order, so nearly every buffer is
    /// split over many iovecs (tests). When false, the lowest free blocks
    /// go first, as the kernel's bitmap allocator does (benchmarks).
    pub scatter: bool,
    /// Copy data-in back out of the data area on completion, as the kernel
    /// does into its scatterlist. Benchmarks turn it off so the driver's
    /// copying does not compete with the daemon they measure.
    pub gather_data_in: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            ring_size: 64 * 1024,
            block_size: 4096,
            data_blocks: 2048, // 8 MiB
            flags: layout::FLAG_CAP_OOOC | layout::FLAG_CAP_READ_LEN | layout::FLAG_CAP_TMR,
            seed: 0x7c3u64,
            scatter: true,
            gather_data_in: true,
        }
    }
}

/// Why the simulator could not queue something.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Not enough free space in the command ring right now.
    #[error("command ring full")]
    RingFull,
    /// Not enough free data blocks right now.
    #[error("data area full")]
    DataAreaFull,
    /// The request can never fit this device.
    #[error("request too large for this device: {0}")]
    TooLarge(String),
    /// The daemon did not complete in time.
    #[error("timed out waiting for completions")]
    Timeout,
    /// The daemon broke the ring protocol.
    #[error("protocol violation by user space: {0}")]
    Protocol(String),
    /// OS error (memfd, eventfd, poll).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Region access failed.
    #[error(transparent)]
    Region(#[from] RegionError),
}

/// A completed command as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCompletion {
    /// The command id `submit` returned.
    pub cmd_id: u16,
    /// SCSI status.
    pub status: u8,
    /// Sense buffer, trimmed to its reported length (empty for GOOD).
    pub sense: Vec<u8>,
    /// Data-in gathered back: `min(read_len, data_in_len)` with
    /// `UFLAG_READ_LEN`, else `data_in_len` bytes (empty when the
    /// simulator does not gather, see [`SimConfig::gather_data_in`]).
    pub data_in: Vec<u8>,
    /// The `read_len` the daemon reported, if it set `UFLAG_READ_LEN`.
    pub read_len: Option<u32>,
    /// Whether the daemon flagged the entry `UFLAG_UNKNOWN_OP`.
    pub unknown_op: bool,
}

/// Kinds of broken entries the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// An iovec whose base points into the command ring.
    IovecInRing,
    /// An iovec that runs past the end of the region.
    IovecPastEnd,
    /// An iovec whose base + length overflows u64.
    IovecOverflow,
    /// A CDB offset outside the region.
    CdbOutOfRegion,
    /// More iovecs claimed than the entry holds.
    TooManyIovecs,
    /// An entry with an opcode TCMU does not define.
    UnknownOpcode,
}

/// Data blocks of one command and the iovecs (region offset, length) over them.
type DataAllocation = (Vec<u32>, Vec<(u64, u32)>);

/// An entry in the ring that user space has not passed yet.
#[derive(Debug)]
struct Inflight {
    offset: u32,
    len: u32,
    kind: InflightKind,
}

#[derive(Debug)]
enum InflightKind {
    Pad,
    /// A command entry; the command answered in it is whichever `cmd_id`
    /// user space writes there (itself, unless it completes out of order).
    Command {
        cmd_id: u16,
    },
    /// An entry with an opcode TCMU does not define (injected).
    Unknown {
        cmd_id: u16,
    },
    Tmr,
}

/// A command user space has not completed: its data blocks and buffer.
#[derive(Debug)]
struct Outstanding {
    blocks: Vec<u32>,
    iovs: Vec<(u64, u32)>,
    data_in_len: u32,
}

/// The simulated kernel side of one TCMU device.
pub struct SimKernel {
    region: Region,
    cfg: SimConfig,
    data_off: u64,
    head: u32,
    /// Tail up to which completions have been collected.
    reaped_tail: u32,
    free_blocks: Vec<u32>,
    inflight: VecDeque<Inflight>,
    /// Commands by id, as the kernel keeps them (its `commands` xarray).
    commands: HashMap<u16, Outstanding>,
    next_id: u16,
    rng: SmallRng,
    to_user: EventFd,
    from_user: EventFd,
}

impl std::fmt::Debug for SimKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKernel").field("head", &self.head).field("inflight", &self.inflight.len()).finish()
    }
}

fn align8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

impl SimKernel {
    /// Build a device: memfd-backed region, mailbox initialised as the
    /// kernel does (version 2, flags, `cmdr_off` = 128).
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        if !cfg.ring_size.is_multiple_of(8) || (cfg.ring_size as usize) < rsp::END * 4 {
            return Err(SimError::TooLarge(format!("ring size {} unusable", cfg.ring_size)));
        }
        let cmdr_off = mailbox::SIZE as u64;
        let data_off = (cmdr_off + cfg.ring_size as u64).next_multiple_of(4096);
        let total = data_off + cfg.block_size as u64 * cfg.data_blocks as u64;
        let fd: OwnedFd = nix::sys::memfd::memfd_create(c"tcmu-sim", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(io::Error::from)?;
        nix::unistd::ftruncate(&fd, total as i64).map_err(io::Error::from)?;
        let map = MmapOptions::new().len(total as usize).map_raw(&std::fs::File::from(fd))?;
        let region = Region::new(map);
        region.write_u16(mailbox::VERSION as u64, layout::MAILBOX_VERSION)?;
        region.write_u16(mailbox::FLAGS as u64, cfg.flags)?;
        region.write_u32(mailbox::CMDR_OFF as u64, cmdr_off as u32)?;
        region.write_u32(mailbox::CMDR_SIZE as u64, cfg.ring_size)?;
        region.store_release(mailbox::CMD_HEAD as u64, 0)?;
        region.store_release(mailbox::CMD_TAIL as u64, 0)?;
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        // Allocation takes from the end: descending order hands out the
        // lowest blocks first.
        let mut free_blocks: Vec<u32> = (0..cfg.data_blocks).rev().collect();
        if cfg.scatter {
            // Consecutive allocations are then rarely contiguous, as on a
            // busy kernel: iovec splitting is exercised on every command.
            for i in (1..free_blocks.len()).rev() {
                free_blocks.swap(i, rng.random_range(0..=i));
            }
        }
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        Ok(Self {
            region,
            data_off,
            head: 0,
            reaped_tail: 0,
            free_blocks,
            inflight: VecDeque::new(),
            commands: HashMap::new(),
            next_id: 1,
            rng,
            to_user: EventFd::from_flags(flags).map_err(io::Error::from)?,
            from_user: EventFd::from_flags(flags).map_err(io::Error::from)?,
            cfg,
        })
    }

    /// The region, for the daemon's [`crate::ring::Ring::attach`].
    pub fn region(&self) -> Region {
        self.region.clone()
    }

    /// The daemon's end of the wake-up channel.
    pub fn doorbell(&self) -> io::Result<SimDoorbell> {
        SimDoorbell::new(self.to_user.as_fd(), self.from_user.as_fd())
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Largest data buffer one command can have.
    pub fn max_data_len(&self) -> u64 {
        self.cfg.block_size as u64 * self.cfg.data_blocks as u64
    }

    /// Entries queued and not yet collected.
    pub fn outstanding(&self) -> usize {
        self.inflight.iter().filter(|i| !matches!(i.kind, InflightKind::Pad)).count()
    }

    fn cmdr_off(&self) -> u64 {
        mailbox::SIZE as u64
    }

    fn free_ring_space(&self) -> u32 {
        let used = (self.head + self.cfg.ring_size - self.reaped_tail) % self.cfg.ring_size;
        // One byte always stays free so head == tail means empty.
        self.cfg.ring_size - used - 1
    }

    /// Reserve `len` bytes of ring at the head, padding to the ring end
    /// first when the entry would not fit there.
    fn reserve(&mut self, len: u32) -> Result<u32, SimError> {
        if len + 8 > self.cfg.ring_size / 2 {
            return Err(SimError::TooLarge(format!("entry of {len} bytes")));
        }
        let to_end = self.cfg.ring_size - self.head;
        let pad = if to_end < len { to_end } else { 0 };
        if self.free_ring_space() < pad + len {
            return Err(SimError::RingFull);
        }
        if pad > 0 {
            let at = self.cmdr_off() + self.head as u64;
            self.region.write_u32(at + hdr::LEN_OP as u64, pad | op::PAD)?;
            self.region.write_u16(at + hdr::CMD_ID as u64, 0)?;
            self.region.write_u16(at + hdr::KFLAGS as u64, 0)?;
            self.inflight.push_back(Inflight { offset: self.head, len: pad, kind: InflightKind::Pad });
            self.head = 0;
        }
        Ok(self.head)
    }

    fn publish(&mut self, len: u32) -> Result<(), SimError> {
        self.head = (self.head + len) % self.cfg.ring_size;
        self.region.store_release(mailbox::CMD_HEAD as u64, self.head)?;
        self.to_user.write(1).map_err(io::Error::from)?;
        Ok(())
    }

    /// The next command id no outstanding command has (the kernel's ids
    /// come from an xarray: unique among outstanding commands).
    fn take_id(&mut self) -> u16 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.commands.contains_key(&id) {
                return id;
            }
        }
    }

    /// Allocate blocks for `len` bytes and return them with the iovecs
    /// (adjacent blocks merged, as the kernel does).
    fn alloc_data(&mut self, len: u64) -> Result<DataAllocation, SimError> {
        if len > self.max_data_len() {
            return Err(SimError::TooLarge(format!("{len}-byte data buffer")));
        }
        let bs = self.cfg.block_size as u64;
        let nblocks = len.div_ceil(bs) as usize;
        if nblocks > self.free_blocks.len() {
            return Err(SimError::DataAreaFull);
        }
        let mut blocks: Vec<u32> = self.free_blocks.split_off(self.free_blocks.len() - nblocks);
        blocks.reverse();
        let mut iovs: Vec<(u64, u32)> = Vec::new();
        let mut left = len;
        for &b in &blocks {
            let chunk = left.min(bs) as u32;
            let base = self.data_off + b as u64 * bs;
            match iovs.last_mut() {
                Some((last_base, last_len)) if *last_base + *last_len as u64 == base => *last_len += chunk,
                _ => iovs.push((base, chunk)),
            }
            left -= chunk as u64;
        }
        Ok((blocks, iovs))
    }

    fn free_data(&mut self, blocks: Vec<u32>) {
        if self.cfg.scatter {
            // Return in random order so the next allocations interleave.
            for b in blocks {
                let at = self.rng.random_range(0..=self.free_blocks.len());
                self.free_blocks.insert(at, b);
            }
        } else {
            // Kept in descending order (the lowest block is allocated
            // first); an insertion each, not a sort per completion.
            for b in blocks {
                let at = self.free_blocks.partition_point(|&x| x > b);
                self.free_blocks.insert(at, b);
            }
        }
    }

    /// Queue a SCSI command. The data buffer is `max(data_out.len(),
    /// data_in_len)` bytes (one buffer for both directions, as in the
    /// kernel), pre-filled with `data_out`. Returns the command id.
    pub fn submit(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<u16, SimError> {
        if cdb.is_empty() || cdb.len() > crate::ring::MAX_CDB_LEN {
            return Err(SimError::TooLarge(format!("{}-byte CDB", cdb.len())));
        }
        let buf_len = (data_out.len() as u64).max(data_in_len as u64);
        let (blocks, iovs) = self.alloc_data(buf_len)?;
        let base = (req::IOV + iovs.len() * req::IOV_SIZE).max(rsp::END) as u64;
        let len = align8(base + cdb.len() as u64) as u32;
        let at_ring = match self.reserve(len) {
            Ok(at) => at,
            Err(e) => {
                self.free_data(blocks);
                return Err(e);
            }
        };
        let id = self.take_id();
        let at = self.cmdr_off() + at_ring as u64;
        self.region.fill(at, len as u64, 0)?;
        self.region.write_u32(at + hdr::LEN_OP as u64, len | op::CMD)?;
        self.region.write_u16(at + hdr::CMD_ID as u64, id)?;
        self.region.write_u32(at + req::IOV_CNT as u64, iovs.len() as u32)?;
        self.region.write_u64(at + req::CDB_OFF as u64, at + base)?;
        self.region.write(at + base, cdb)?;
        let mut written = 0usize;
        for (i, &(iov_base, iov_len)) in iovs.iter().enumerate() {
            let iov_at = at + (req::IOV + i * req::IOV_SIZE) as u64;
            self.region.write_u64(iov_at, iov_base)?;
            self.region.write_u64(iov_at + 8, iov_len as u64)?;
            // Data-out goes in; the rest of the buffer keeps stale bytes,
            // as a real data area does.
            let n = (data_out.len() - written).min(iov_len as usize);
            self.region.write(iov_base, &data_out[written..written + n])?;
            written += n;
        }
        self.inflight.push_back(Inflight { offset: at_ring, len, kind: InflightKind::Command { cmd_id: id } });
        self.commands.insert(id, Outstanding { blocks, iovs, data_in_len });
        self.publish(len)?;
        Ok(id)
    }

    /// Queue a TMR entry (`tmr_type` raw, e.g. `layout::tmr::TYPE_LUN_RESET`).
    pub fn submit_tmr(&mut self, tmr_type: u8, aborted: &[u16]) -> Result<(), SimError> {
        let len = align8((tmr::CMD_IDS + aborted.len() * 2) as u64) as u32;
        let at_ring = self.reserve(len)?;
        let at = self.cmdr_off() + at_ring as u64;
        self.region.fill(at, len as u64, 0)?;
        self.region.write_u32(at + hdr::LEN_OP as u64, len | op::TMR)?;
        self.region.write_u8(at + tmr::TYPE as u64, tmr_type)?;
        self.region.write_u32(at + tmr::CMD_CNT as u64, aborted.len() as u32)?;
        for (i, id) in aborted.iter().enumerate() {
            self.region.write_u16(at + (tmr::CMD_IDS + 2 * i) as u64, *id)?;
        }
        self.inflight.push_back(Inflight { offset: at_ring, len, kind: InflightKind::Tmr });
        self.publish(len)
    }

    /// Queue a broken command entry (see [`Malformation`]); the daemon must
    /// fail it (or flag it unknown) and keep serving. Returns its id.
    pub fn submit_malformed(&mut self, kind: Malformation) -> Result<u16, SimError> {
        let len = align8((rsp::END + 16) as u64) as u32;
        let at_ring = self.reserve(len)?;
        let id = self.take_id();
        let at = self.cmdr_off() + at_ring as u64;
        self.region.fill(at, len as u64, 0)?;
        let opcode = if kind == Malformation::UnknownOpcode { 5 } else { op::CMD };
        self.region.write_u32(at + hdr::LEN_OP as u64, len | opcode)?;
        self.region.write_u16(at + hdr::CMD_ID as u64, id)?;
        let cdb_at = at + rsp::END as u64;
        self.region.write(cdb_at, &[0x00; 6])?; // TEST UNIT READY
        self.region.write_u64(at + req::CDB_OFF as u64, cdb_at)?;
        let iov = at + req::IOV as u64;
        let region_len = self.region.len() as u64;
        let (cnt, base, iov_len, cdb_off) = match kind {
            Malformation::IovecInRing => (1, self.cmdr_off(), 512, cdb_at),
            Malformation::IovecPastEnd => (1, region_len - 512, 4096, cdb_at),
            Malformation::IovecOverflow => (1, u64::MAX - 8, 4096, cdb_at),
            Malformation::CdbOutOfRegion => (0, 0, 0, region_len + 4096),
            Malformation::TooManyIovecs => (1_000_000, self.data_off, 512, cdb_at),
            Malformation::UnknownOpcode => (0, 0, 0, cdb_at),
        };
        self.region.write_u32(at + req::IOV_CNT as u64, cnt)?;
        self.region.write_u64(at + req::CDB_OFF as u64, cdb_off)?;
        self.region.write_u64(iov, base)?;
        self.region.write_u64(iov + 8, iov_len)?;
        let kind = if kind == Malformation::UnknownOpcode {
            InflightKind::Unknown { cmd_id: id }
        } else {
            self.commands.insert(id, Outstanding { blocks: Vec::new(), iovs: Vec::new(), data_in_len: 0 });
            InflightKind::Command { cmd_id: id }
        };
        self.inflight.push_back(Inflight { offset: at_ring, len, kind });
        self.publish(len)?;
        Ok(id)
    }

    /// Place raw bytes at the head as if they were an entry, advance the
    /// head by their length and ring the doorbell — for tests of what the
    /// daemon does with entries no real kernel would write. The caller is
    /// responsible for the bytes; no padding or accounting is done, so
    /// nothing queued this way is ever reaped.
    pub fn inject_raw(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        let len = u32::try_from(bytes.len()).map_err(|_| SimError::TooLarge("raw entry".into()))?;
        if len % 8 != 0 || self.head + len > self.cfg.ring_size || self.free_ring_space() < len {
            return Err(SimError::TooLarge(format!("raw entry of {len} bytes at {:#x}", self.head)));
        }
        self.region.write(self.cmdr_off() + self.head as u64, bytes)?;
        self.publish(len)
    }

    /// Collect every completion user space has published (no waiting).
    pub fn reap(&mut self) -> Result<Vec<SimCompletion>, SimError> {
        let tail = self.region.load_acquire(mailbox::CMD_TAIL as u64)?;
        if tail >= self.cfg.ring_size || tail % 8 != 0 {
            return Err(SimError::Protocol(format!("cmd_tail {tail:#x} outside the ring")));
        }
        let mut advanced = (tail + self.cfg.ring_size - self.reaped_tail) % self.cfg.ring_size;
        let mut out = Vec::new();
        while advanced > 0 {
            let Some(front) = self.inflight.pop_front() else {
                return Err(SimError::Protocol(format!("cmd_tail moved {advanced} bytes past the last entry")));
            };
            if front.offset != self.reaped_tail || front.len > advanced {
                return Err(SimError::Protocol(format!(
                    "cmd_tail {tail:#x} stops inside the entry at {:#x} (+{})",
                    front.offset, front.len
                )));
            }
            advanced -= front.len;
            self.reaped_tail = (self.reaped_tail + front.len) % self.cfg.ring_size;
            let at = self.cmdr_off() + front.offset as u64;
            let uflags = self.region.read_u8(at + hdr::UFLAGS as u64)?;
            let answered = match front.kind {
                InflightKind::Pad | InflightKind::Tmr => continue,
                InflightKind::Unknown { cmd_id } => {
                    out.push(SimCompletion {
                        cmd_id,
                        status: 0,
                        sense: Vec::new(),
                        data_in: Vec::new(),
                        read_len: None,
                        unknown_op: uflags & layout::UFLAG_UNKNOWN_OP != 0,
                    });
                    continue;
                }
                InflightKind::Command { cmd_id } => {
                    // As the kernel does: the id in the entry names the
                    // command answered there.
                    let answered = self.region.read_u16(at + hdr::CMD_ID as u64)?;
                    if answered != cmd_id && self.cfg.flags & layout::FLAG_CAP_OOOC == 0 {
                        return Err(SimError::Protocol(format!(
                            "command {answered} answered in the entry of {cmd_id} without CAP_OOOC"
                        )));
                    }
                    answered
                }
            };
            let Some(Outstanding { blocks, iovs, data_in_len }) = self.commands.remove(&answered) else {
                return Err(SimError::Protocol(format!("cmd_id {answered} is not outstanding: the ring is broken")));
            };
            let status = self.region.read_u8(at + rsp::SCSI_STATUS as u64)?;
            let read_len = (uflags & layout::UFLAG_READ_LEN != 0)
                .then(|| self.region.read_u32(at + rsp::READ_LEN as u64))
                .transpose()?;
            let mut sense = vec![0u8; layout::SENSE_BUFFER_SIZE];
            self.region.read(at + rsp::SENSE as u64, &mut sense)?;
            sense.truncate(sense_len(&sense, status));
            let gather =
                if self.cfg.gather_data_in { read_len.map_or(data_in_len, |r| r.min(data_in_len)) as usize } else { 0 };
            let mut data_in = vec![0u8; gather];
            let mut done = 0usize;
            for (base, len) in iovs {
                if done == gather {
                    break;
                }
                let n = (gather - done).min(len as usize);
                self.region.read(base, &mut data_in[done..done + n])?;
                done += n;
            }
            self.free_data(blocks);
            out.push(SimCompletion {
                cmd_id: answered,
                status,
                sense,
                data_in,
                read_len,
                unknown_op: uflags & layout::UFLAG_UNKNOWN_OP != 0,
            });
        }
        Ok(out)
    }

    /// Wait up to `timeout` for the daemon's notification, then reap.
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<SimCompletion>, SimError> {
        let fd = self.from_user.as_fd();
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).map_err(io::Error::from)?;
        if ready == 0 {
            return Ok(Vec::new());
        }
        // Non-blocking: EAGAIN just means a racing reader took it.
        let _ = self.from_user.read();
        self.reap()
    }

    /// Submit one command and wait for its completion (everything else
    /// completed meanwhile is discarded). Convenience for tests and `check`.
    pub fn execute(
        &mut self,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: u32,
        timeout: Duration,
    ) -> Result<SimCompletion, SimError> {
        let id = self.submit(cdb, data_out, data_in_len)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            for c in self.wait(Duration::from_millis(50))? {
                if c.cmd_id == id {
                    return Ok(c);
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err(SimError::Timeout);
            }
        }
    }
}

/// A READ(16) or WRITE(16) CDB, for drivers of the simulated kernel.
pub fn rw16(write: bool, lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = if write { 0x8a } else { 0x88 };
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// Length of the meaningful part of a sense buffer: fixed format carries
/// its additional length in byte 7, descriptor format too.
fn sense_len(sense: &[u8], status: u8) -> usize {
    if status == 0 || sense.iter().all(|&b| b == 0) {
        return 0;
    }
    let resp = sense[0] & 0x7f;
    let n = match resp {
        0x70..=0x73 => 8 + sense[7] as usize,
        _ => sense.len(),
    };
    n.min(sense.len())
}
