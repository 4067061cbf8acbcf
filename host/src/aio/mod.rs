//! Asynchronous backing-store I/O for one device: the bulk transfers a
//! handler asks for (`store.read-to-data-in`, `store.write-from-data-out`,
//! and `store.flush`, `store.discard`, `store.write-zeroes` during a
//! command) are queued here and run with io_uring
//! while the device thread goes on to the next commands; a command is
//! answered once its handler has returned *and* its I/O has finished.
//!
//! The handler keeps its model — one `handle` call at a time, state in
//! `self` — and never sees the difference except in speed. The ordering
//! rules that make that true (docs/architecture.md, "Commands in flight"):
//!
//! 1. Overlapping ranges execute in arrival order: an operation waits for
//!    every earlier unfinished one on the same file that it conflicts
//!    with (a write conflicts with any overlapping read or write; a read
//!    with an overlapping write). Reads of one range run in parallel.
//!    Discard and write-zeroes count as writes of their range.
//! 2. A flush waits for every earlier write on the file, so SYNCHRONIZE
//!    CACHE and FUA cover every write that completed before them (and
//!    every write queued before them).
//! 3. A synchronous store call (`read-at`, `write-at`, or any call outside
//!    a command) first waits for every
//!    unfinished operation it conflicts with — so it sees every earlier
//!    write — and COMPARE AND WRITE, which reads with `read-at` and then
//!    queues its write before any later command runs, is atomic against
//!    overlapping writes.
//! 4. A failed operation fails only its own command (the device loop turns
//!    it into MEDIUM ERROR with the LBA).
//! 5. A command's completion is never written before its I/O is done: the
//!    kernel reuses a completed command's data blocks at once.
//!
//! Without io_uring (`io_uring_setup` refused, or [`IoMode::Blocking`])
//! operations run to completion when queued: the same rules, no overlap.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use io_uring::{IoUring, opcode, types};
use slab::Slab;

use crate::backing::{BackingFile, StoreError};
use crate::ring::DataBuffer;
use crate::ring::entry::IoVecList;

/// How a device runs its backing-store I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum IoMode {
    /// io_uring where the kernel allows it, else blocking.
    #[default]
    Auto,
    /// io_uring, or fail to start.
    Uring,
    /// Every transfer runs to completion inside the handler's call (one
    /// command at a time, as before 0.3).
    Blocking,
}

/// Commands a device keeps in flight at most, unless configured.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// A device's I/O settings (the config's `io` and `max_in_flight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoSettings {
    /// How transfers run.
    pub mode: IoMode,
    /// Commands with I/O in flight at most; the device takes no further
    /// entries from the ring until one finishes.
    pub max_in_flight: usize,
    /// Try each transfer at once with `RWF_NOWAIT` before queueing it on
    /// io_uring (page-cached data then costs no ring round trip). Off only
    /// to exercise the queue in tests.
    pub nowait_first: bool,
    /// How long the device thread spins, watching the ring and the
    /// completion queue, before it sleeps (the config's `busy_poll_us`).
    /// Zero (the default) never spins. A few tens of microseconds save the
    /// two wake-ups of a low-queue-depth round trip at the price of a core
    /// kept busy while the device is in use.
    pub busy_poll: std::time::Duration,
}

impl Default for IoSettings {
    fn default() -> Self {
        Self {
            mode: IoMode::Auto,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            nowait_first: true,
            busy_poll: std::time::Duration::ZERO,
        }
    }
}

/// Identifies one command's I/O in the engine.
pub type Token = u64;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Store → data-in.
    Read,
    /// Data-out → store.
    Write,
    /// Make earlier writes durable.
    Flush,
    /// Deallocate a range (reads return zeroes after).
    Discard,
    /// Zero a range, keeping it allocated.
    WriteZeroes,
}

impl OpKind {
    /// Whether the operation changes the store's contents.
    pub fn writes(self) -> bool {
        matches!(self, OpKind::Write | OpKind::Discard | OpKind::WriteZeroes)
    }

    /// Whether the operation moves bytes through the command's buffer.
    fn transfers(self) -> bool {
        matches!(self, OpKind::Read | OpKind::Write)
    }
}

/// Why a command's I/O failed.
#[derive(Debug)]
pub struct IoFailure {
    /// What failed.
    pub kind: OpKind,
    /// Offset in the command's buffer where the failed transfer stopped
    /// (what had been transferred before it is good).
    pub buffer_offset: u64,
    /// The error.
    pub error: io::Error,
}

/// iovecs pointing into the TCMU data area. A single one is held inline
/// and handed to the kernel by its base and length; two or more live on
/// the heap, where their address stays put while the operation moves
/// about the map (the kernel reads the array when the SQE executes).
struct IoVecs(IoVecList);

// SAFETY: the pointers refer to the region mapping, which the operation
// keeps alive through its `DataBuffer` clone; only the device thread that
// owns the engine touches them.
unsafe impl Send for IoVecs {}

struct Op {
    token: Token,
    kind: OpKind,
    file: Arc<BackingFile>,
    /// Store range (offset, length); a flush covers the whole file.
    offset: u64,
    len: u64,
    /// Where in the command's buffer the transfer starts.
    buffer_offset: u64,
    /// Bytes transferred so far.
    done: u64,
    buffer: Option<DataBuffer>,
    iovecs: IoVecs,
    /// For discard and write-zeroes: the queueing call's deadline, which
    /// bounds the fallback of writing zeroes where fallocate fails.
    deadline: Option<Instant>,
}

impl Op {
    /// Whether this (earlier) operation must finish before `later` starts.
    fn blocks(&self, later_kind: OpKind, file: &Arc<BackingFile>, offset: u64, len: u64) -> bool {
        if !Arc::ptr_eq(&self.file, file) {
            return false;
        }
        let overlaps = || self.offset < offset.saturating_add(len) && offset < self.offset.saturating_add(self.len);
        match (self.kind, later_kind) {
            (OpKind::Flush, _) => false,
            (earlier, OpKind::Flush) => earlier.writes(),
            (OpKind::Read, OpKind::Read) => false,
            _ => overlaps(),
        }
    }
}

#[derive(Default)]
struct CommandState {
    ops_left: u32,
    failure: Option<IoFailure>,
    sealed: bool,
}

/// Unfinished operations by id (ids grow in arrival order). An operation
/// stays where it was put until it finishes: a B-tree of operations would
/// shift them on every removal, and an `Op` is a few hundred bytes.
#[derive(Default)]
struct OpTable {
    slots: Slab<Op>,
    /// Id → slot, in arrival order.
    order: BTreeMap<u64, usize>,
}

impl OpTable {
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn insert(&mut self, id: u64, op: Op) {
        let slot = self.slots.insert(op);
        self.order.insert(id, slot);
    }

    fn get(&self, id: u64) -> Option<&Op> {
        self.order.get(&id).map(|&slot| &self.slots[slot])
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Op> {
        self.order.get(&id).map(|&slot| &mut self.slots[slot])
    }

    fn contains(&self, id: u64) -> bool {
        self.order.contains_key(&id)
    }

    fn remove(&mut self, id: u64) -> Option<Op> {
        self.order.remove(&id).map(|slot| self.slots.remove(slot))
    }

    /// Every unfinished operation, in no particular order.
    fn all(&self) -> impl Iterator<Item = &Op> {
        self.slots.iter().map(|(_, op)| op)
    }

    /// The operations that arrived before `id`.
    fn before(&self, id: u64) -> impl Iterator<Item = &Op> {
        self.order.range(..id).map(|(_, &slot)| &self.slots[slot])
    }
}

struct Inner {
    uring: Option<IoUring>,
    ops: OpTable,
    next_op: u64,
    commands: HashMap<Token, CommandState>,
    next_token: Token,
    /// The command whose handler is running (operations queued now are its).
    current: Option<Token>,
    /// Sealed commands whose I/O has finished, in finishing order.
    finished: Vec<(Token, Option<IoFailure>)>,
    /// SQEs pushed since the last `submit`.
    unsubmitted: u32,
    /// Operations held back by an earlier conflicting one, in arrival
    /// order: the only ones a completion may let start.
    blocked: Vec<u64>,
    /// Completion-queue entries being processed (kept for its capacity).
    cqes: Vec<(u64, i32)>,
    /// A failed overflow flush was logged.
    overflow_warned: bool,
}

/// One device's I/O queue. Used from the device thread only (the handler's
/// host calls run there too); the lock is never contended.
pub struct IoEngine {
    inner: Mutex<Inner>,
    max_in_flight: usize,
    nowait_first: bool,
    busy_poll: std::time::Duration,
    /// The io_uring's own descriptor: readable while its completion queue
    /// holds entries (the device loop polls it; reaping clears it).
    ring_fd: Option<RawFd>,
}

impl std::fmt::Debug for IoEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("IoEngine").field("uring", &inner.uring.is_some()).field("ops", &inner.ops.len()).finish()
    }
}

/// Submission queue entries per engine; more operations wait in `ops`
/// until there is room.
const QUEUE_ENTRIES: u32 = 256;

/// Completion queue entries for a device with `max_in_flight` commands:
/// room for two operations each (a write and its flush) so the queue does
/// not overflow in normal use (overflowed completions cost the kernel an
/// atomic allocation each, and are only reported by an enter), at least
/// twice the submission queue as io_uring's default.
fn completion_entries(max_in_flight: usize) -> u32 {
    let wanted = max_in_flight.saturating_mul(2).clamp(2 * QUEUE_ENTRIES as usize, 1 << 16);
    wanted.next_power_of_two() as u32
}

impl IoEngine {
    /// An engine in `mode`. `Auto` falls back to blocking I/O (logged)
    /// where io_uring is not available.
    pub fn new(settings: IoSettings) -> io::Result<Self> {
        let mode = settings.mode;
        let uring = match mode {
            IoMode::Blocking => None,
            IoMode::Uring | IoMode::Auto => {
                match IoUring::builder().setup_cqsize(completion_entries(settings.max_in_flight)).build(QUEUE_ENTRIES) {
                    Ok(ring) => Some(ring),
                    Err(e) if mode == IoMode::Auto => {
                        tracing::warn!(error = %e, "io_uring unavailable; backing-store I/O runs one command at a time");
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let ring_fd = uring.as_ref().map(|ring| ring.as_raw_fd());
        let inner = Inner {
            uring,
            ops: OpTable::default(),
            next_op: 0,
            commands: HashMap::new(),
            next_token: 1,
            current: None,
            finished: Vec::new(),
            unsubmitted: 0,
            blocked: Vec::new(),
            cqes: Vec::new(),
            overflow_warned: false,
        };
        Ok(Self {
            inner: Mutex::new(inner),
            max_in_flight: settings.max_in_flight.max(1),
            nowait_first: settings.nowait_first,
            busy_poll: settings.busy_poll,
            ring_fd,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commands with I/O in flight at most.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// How long the device loop spins before it sleeps ([`IoSettings::busy_poll`]).
    pub fn busy_poll(&self) -> std::time::Duration {
        self.busy_poll
    }

    /// Whether the completion queue holds completions not yet reaped (no
    /// syscall: it is shared memory). For a spinning device loop.
    pub fn has_completions(&self) -> bool {
        self.lock().uring.as_mut().is_some_and(|ring| !ring.completion().is_empty())
    }

    /// Whether transfers really run asynchronously (io_uring).
    pub fn is_async(&self) -> bool {
        self.lock().uring.is_some()
    }

    /// The descriptor that is readable while completed operations wait to
    /// be reaped (the io_uring itself: polling it costs no eventfd signal
    /// per completion and no read to clear it); `None` without io_uring.
    pub fn completion_fd(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: the ring is created with the engine and never replaced
        // or closed before it, so the descriptor lives as long as `self`.
        self.ring_fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// Operations not finished yet.
    pub fn unfinished(&self) -> usize {
        self.lock().ops.len()
    }

    /// A command's handler is about to run: what it queues is this token's.
    pub fn begin(&self) -> Token {
        let mut inner = self.lock();
        let token = inner.next_token;
        inner.next_token += 1;
        // Registered in `commands` only once it queues something or fails:
        // a command that moves nothing through the queue (page-cached data,
        // no I/O at all) costs no map insert.
        inner.current = Some(token);
        token
    }

    /// The handler of `token` returned. `Some` when its I/O is all done
    /// (with the failure, if any): answer it now. `None`: it is answered
    /// through [`IoEngine::reap`].
    pub fn seal(&self, token: Token) -> Option<Option<IoFailure>> {
        let mut inner = self.lock();
        if inner.current == Some(token) {
            inner.current = None;
        }
        let Some(state) = inner.commands.get_mut(&token) else {
            return Some(None);
        };
        if state.ops_left == 0 {
            return inner.commands.remove(&token).map(|s| s.failure);
        }
        state.sealed = true;
        None
    }

    /// Queue store bytes → the current command's `buffer`.
    pub fn read(
        &self,
        file: &Arc<BackingFile>,
        offset: u64,
        len: u32,
        buffer: &DataBuffer,
        buffer_offset: u32,
    ) -> Result<(), StoreError> {
        file.check_range(offset, len.into(), false)?;
        self.queue(OpKind::Read, file, offset, len.into(), Some((buffer, buffer_offset)), None)
    }

    /// Queue the current command's `buffer` bytes → store.
    pub fn write(
        &self,
        file: &Arc<BackingFile>,
        offset: u64,
        len: u32,
        buffer: &DataBuffer,
        buffer_offset: u32,
    ) -> Result<(), StoreError> {
        file.check_range(offset, len.into(), true)?;
        self.queue(OpKind::Write, file, offset, len.into(), Some((buffer, buffer_offset)), None)
    }

    /// Queue a flush of `file` for the current command.
    pub fn flush(&self, file: &Arc<BackingFile>) -> Result<(), StoreError> {
        self.queue(OpKind::Flush, file, 0, u64::MAX, None, None)
    }

    /// Queue a discard of `[offset, offset+len)` for the current command
    /// (`fallocate` punching a hole; where that fails, the range is zeroed
    /// as [`BackingFile::discard`] does, stopping at `deadline`).
    pub fn discard(
        &self,
        file: &Arc<BackingFile>,
        offset: u64,
        len: u64,
        deadline: Option<Instant>,
    ) -> Result<(), StoreError> {
        file.check_range(offset, len, true)?;
        self.queue(OpKind::Discard, file, offset, len, None, deadline)
    }

    /// Queue zeroing `[offset, offset+len)` for the current command
    /// (`fallocate` zeroing the range; where that fails, as
    /// [`BackingFile::write_zeroes`] does, stopping at `deadline`).
    pub fn write_zeroes(
        &self,
        file: &Arc<BackingFile>,
        offset: u64,
        len: u64,
        deadline: Option<Instant>,
    ) -> Result<(), StoreError> {
        file.check_range(offset, len, true)?;
        self.queue(OpKind::WriteZeroes, file, offset, len, None, deadline)
    }

    fn queue(
        &self,
        kind: OpKind,
        file: &Arc<BackingFile>,
        offset: u64,
        len: u64,
        buffer: Option<(&DataBuffer, u32)>,
        deadline: Option<Instant>,
    ) -> Result<(), StoreError> {
        if len == 0 {
            // Nothing to move (the range was checked by the caller).
            return Ok(());
        }
        let iovecs_of = |buffer: Option<(&DataBuffer, u32)>| -> Result<IoVecs, StoreError> {
            Ok(IoVecs(match buffer {
                Some((buf, at)) => buf.iovecs(at.into(), len)?,
                None => IoVecList::new(),
            }))
        };
        let direct = file.direct();
        // O_DIRECT cannot take a transfer that breaks the device's
        // alignment (a handler may pass any offsets): such a one runs now,
        // through the store's bounce buffer, as a synchronous call would.
        // (The iovecs are built only where they are used: a direct store's
        // check, or io_uring below.)
        let mut direct_iovecs = None;
        let bounced = match direct {
            Some(a) if kind.transfers() => {
                let iovecs = iovecs_of(buffer)?;
                let aligned = offset.is_multiple_of(a.offset)
                    && iovecs.0.iter().all(|v| a.allows(v.iov_base as usize, v.iov_len as u64, 0));
                direct_iovecs = Some(iovecs);
                !aligned
            }
            // Zeroing what fallocate cannot would rewrite whole units.
            Some(a) if kind.writes() => !a.allows(0, len, offset),
            _ => false,
        };
        let mut inner = self.lock();
        let Some(token) = inner.current else {
            // Outside a command: nothing to answer later, so run it now.
            drop(inner);
            self.settle(file, kind, offset, len, deadline)?;
            return run_blocking(kind, file, offset, len, buffer, deadline);
        };
        if inner.uring.is_none() || bounced {
            if bounced {
                drop(inner);
                self.settle(file, kind, offset, len, deadline)?;
                inner = self.lock();
            }
            // Everything this conflicts with has finished already.
            return run_blocking(kind, file, offset, len, buffer, deadline).or_else(|e| match e {
                StoreError::Io(error) => {
                    let failure = IoFailure { kind, buffer_offset: buffer.map_or(0, |b| b.1.into()), error };
                    let state = inner.commands.entry(token).or_default();
                    state.failure.get_or_insert(failure);
                    Ok(())
                }
                other => Err(other),
            });
        }
        let mut iovecs = match direct_iovecs {
            Some(iovecs) => iovecs,
            None => iovecs_of(buffer)?,
        };
        let buffer_offset = buffer.map_or(0, |b| u64::from(b.1));
        // The fast path: where nothing unfinished conflicts, try the
        // transfer at once without blocking (RWF_NOWAIT). Page-cached data
        // completes here, with no ring round trip; only what would wait for
        // the device goes to io_uring.
        let mut done = 0u64;
        // Not for O_DIRECT: a direct read "without waiting" still waits for
        // the device, on this thread.
        if self.nowait_first
            && direct.is_none()
            && kind.transfers()
            && !inner.ops.all().any(|op| op.blocks(kind, file, offset, len))
        {
            match transfer_nowait(kind, file, offset, &iovecs.0) {
                Ok(n) if n as u64 >= len => return Ok(()),
                Ok(n) => {
                    done = n as u64;
                    advance(&mut iovecs.0, n);
                }
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::EAGAIN)
                        || e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => {}
                Err(error) => {
                    let state = inner.commands.entry(token).or_default();
                    state.failure.get_or_insert(IoFailure { kind, buffer_offset, error });
                    return Ok(());
                }
            }
        }
        let id = inner.next_op;
        inner.next_op += 1;
        inner.ops.insert(
            id,
            Op {
                token,
                kind,
                file: file.clone(),
                offset,
                len,
                buffer_offset,
                done,
                buffer: buffer.map(|b| b.0.clone()),
                iovecs,
                deadline,
            },
        );
        inner.commands.entry(token).or_default().ops_left += 1;
        inner.start_or_hold(id);
        Ok(())
    }

    /// Hand the queued operations to the kernel (one syscall).
    pub fn submit(&self) -> io::Result<()> {
        self.lock().submit()
    }

    /// Collect the commands whose I/O finished (no waiting, and no
    /// syscall unless completions overflowed the queue: it is shared
    /// memory).
    pub fn reap(&self) -> Vec<(Token, Option<IoFailure>)> {
        let mut done = Vec::new();
        self.reap_into(&mut done);
        done
    }

    /// [`IoEngine::reap`] into `done` (appended; both vectors keep their
    /// capacity, so a device loop reaping in a loop allocates nothing).
    pub fn reap_into(&self, done: &mut Vec<(Token, Option<IoFailure>)>) {
        let mut inner = self.lock();
        inner.process_completions();
        done.append(&mut inner.finished);
    }

    /// Wait until no unfinished operation conflicts with a `kind` access
    /// of `file` at `[offset, offset+len)` (a synchronous store call).
    /// On a direct store the range is first widened to the alignment units
    /// a bounce buffer rewrites.
    ///
    /// With a `deadline` (a handler's call), a wait that outlasts it fails
    /// with `TimedOut` and the call does nothing: a stuck backing store
    /// then fails the command instead of holding the device thread past
    /// the call's budget. (The operations waited for go on and complete
    /// their own commands.) Kernels before 5.11 cannot time the wait; there
    /// the deadline is checked between completions only.
    pub fn settle(
        &self,
        file: &Arc<BackingFile>,
        kind: OpKind,
        offset: u64,
        len: u64,
        deadline: Option<Instant>,
    ) -> Result<(), StoreError> {
        let (offset, len) = if kind == OpKind::Flush { (offset, len) } else { file.touched_span(offset, len) };
        let mut inner = self.lock();
        while inner.ops.all().any(|op| op.blocks(kind, file, offset, len)) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(StoreError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "earlier I/O on the store it overlaps did not finish by the call's deadline",
                )));
            }
            inner.wait_one(deadline)?;
        }
        Ok(())
    }

    /// Wait for every operation to finish (stop, shutdown). The commands
    /// are then reported by [`IoEngine::reap`].
    pub fn drain(&self) -> io::Result<()> {
        let mut inner = self.lock();
        while !inner.ops.is_empty() {
            inner.wait_one(None)?;
        }
        Ok(())
    }
}

/// One `preadv2`/`pwritev2` with `RWF_NOWAIT`: the bytes moved, or
/// EAGAIN where the transfer would have to wait for the device.
fn transfer_nowait(kind: OpKind, file: &BackingFile, offset: u64, iovecs: &[nix::libc::iovec]) -> io::Result<usize> {
    let count = iovecs.len().min(nix::libc::c_int::MAX as usize) as nix::libc::c_int;
    // SAFETY: the iovecs describe live memory of the command's data
    // buffer (see `DataBuffer::iovecs`); the call returns before we go on.
    let n = unsafe {
        match kind {
            OpKind::Read => {
                nix::libc::preadv2(file.as_raw_fd(), iovecs.as_ptr(), count, offset as i64, nix::libc::RWF_NOWAIT)
            }
            _ => nix::libc::pwritev2(file.as_raw_fd(), iovecs.as_ptr(), count, offset as i64, nix::libc::RWF_NOWAIT),
        }
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 && kind == OpKind::Read && !iovecs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the backing store ended early"));
    }
    Ok(n as usize)
}

/// Run one operation to completion on this thread.
fn run_blocking(
    kind: OpKind,
    file: &BackingFile,
    offset: u64,
    len: u64,
    buffer: Option<(&DataBuffer, u32)>,
    deadline: Option<Instant>,
) -> Result<(), StoreError> {
    match (kind, buffer) {
        (OpKind::Read, Some((buf, at))) => file.read_to_buffer(offset, len as u32, buf, at),
        (OpKind::Write, Some((buf, at))) => file.write_from_buffer(offset, len as u32, buf, at),
        (OpKind::Flush, _) => file.flush(),
        (OpKind::Discard, _) => file.discard(offset, len, deadline),
        (OpKind::WriteZeroes, _) => file.write_zeroes(offset, len, deadline),
        _ => Err(StoreError::OutOfRange),
    }
}

impl Inner {
    /// Whether an earlier unfinished operation holds back operation `id`.
    fn is_held(&self, id: u64) -> bool {
        let Some(op) = self.ops.get(id) else { return false };
        self.ops.before(id).any(|earlier| earlier.blocks(op.kind, &op.file, op.offset, op.len))
    }

    /// Start the newly queued operation `id`, or hold it back behind the
    /// earlier one it conflicts with.
    fn start_or_hold(&mut self, id: u64) {
        if self.is_held(id) {
            self.blocked.push(id);
        } else {
            self.start(id);
        }
    }

    /// Push operation `id`; where the kernel will not take it, it
    /// finishes with that error (its command fails with MEDIUM ERROR)
    /// rather than waiting for a completion that cannot come.
    fn start(&mut self, id: u64) {
        if let Err(e) = self.push(id) {
            tracing::error!(error = %e, "submitting backing-store I/O failed; its command fails");
            self.finish(id, Err(e));
        }
    }

    /// Start every held-back operation that no earlier unfinished one
    /// blocks any more (after some finished).
    fn start_ready(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        let mut held = std::mem::take(&mut self.blocked);
        held.retain(|&id| {
            if !self.ops.contains(id) {
                return false;
            }
            if self.is_held(id) {
                return true;
            }
            self.start(id);
            false
        });
        self.blocked = held;
    }

    /// Put operation `id` (or what is left of it) on the submission queue.
    fn push(&mut self, id: u64) -> io::Result<()> {
        let op = self.ops.get_mut(id).expect("operation exists");
        let fd = types::Fd(op.file.as_raw_fd());
        let at = op.offset + op.done;
        let entry = match (op.kind, &op.iovecs.0[..]) {
            (OpKind::Read, [one]) => opcode::Read::new(fd, one.iov_base.cast(), one.iov_len as u32).offset(at).build(),
            (OpKind::Write, [one]) => {
                opcode::Write::new(fd, one.iov_base.cast_const().cast(), one.iov_len as u32).offset(at).build()
            }
            (OpKind::Read, _) => {
                debug_assert!(op.iovecs.0.spilled(), "an iovec array the kernel reads must not move");
                opcode::Readv::new(fd, op.iovecs.0.as_ptr(), op.iovecs.0.len() as u32).offset(at).build()
            }
            (OpKind::Write, _) => {
                debug_assert!(op.iovecs.0.spilled(), "an iovec array the kernel reads must not move");
                opcode::Writev::new(fd, op.iovecs.0.as_ptr(), op.iovecs.0.len() as u32).offset(at).build()
            }
            (OpKind::Flush, _) => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
            // The preferred way only; where it fails, completion runs the
            // store's whole fallback chain (`run_blocking`).
            (OpKind::Discard, _) => opcode::Fallocate::new(fd, op.len)
                .offset(op.offset)
                .mode(nix::libc::FALLOC_FL_PUNCH_HOLE | nix::libc::FALLOC_FL_KEEP_SIZE)
                .build(),
            (OpKind::WriteZeroes, _) => opcode::Fallocate::new(fd, op.len)
                .offset(op.offset)
                .mode(nix::libc::FALLOC_FL_ZERO_RANGE | nix::libc::FALLOC_FL_KEEP_SIZE)
                .build(),
        }
        .user_data(id);
        let ring = self.uring.as_mut().expect("pushing needs io_uring");
        // SAFETY: the iovecs and the memory they describe (the data area,
        // kept mapped by the op's `DataBuffer`) and the file (kept open by
        // the op's `Arc`) live in `self.ops` until the completion arrives.
        while unsafe { ring.submission().push(&entry) }.is_err() {
            ring.submit()?;
            self.unsubmitted = 0;
        }
        self.unsubmitted += 1;
        Ok(())
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.unsubmitted > 0
            && let Some(ring) = &self.uring
        {
            ring.submit()?;
            self.unsubmitted = 0;
        }
        Ok(())
    }

    /// Submit, wait for at least one completion (or until `deadline`,
    /// where the kernel can time the wait), and process what came.
    fn wait_one(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let Some(ring) = &self.uring else { return Ok(()) };
        let waited = match deadline {
            Some(d) if ring.params().is_feature_ext_arg() => {
                let timeout = types::Timespec::from(d.saturating_duration_since(Instant::now()));
                ring.submitter().submit_with_args(1, &types::SubmitArgs::new().timespec(&timeout))
            }
            _ => ring.submit_and_wait(1),
        };
        match waited {
            Ok(_) => {}
            // The deadline passed, or a signal came: the caller looks again.
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ETIME | nix::libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
        self.unsubmitted = 0;
        self.process_completions();
        Ok(())
    }

    fn process_completions(&mut self) {
        let Some(ring) = self.uring.as_mut() else { return };
        let mut done = std::mem::take(&mut self.cqes);
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        // More completions than the queue holds wait in the kernel until an
        // enter asks for them (the ring fd stays readable meanwhile, and
        // without one no wake-up would ever bring them).
        while ring.submission().cq_overflow() {
            // An enter that only asks for completions: nothing queued is
            // submitted here (`unsubmitted` still counts it).
            // SAFETY: no submissions, no argument.
            let flushed = unsafe {
                ring.submitter().enter::<nix::libc::sigset_t>(0, 0, io_uring::EnterFlags::GETEVENTS.bits(), None)
            };
            if let Err(e) = flushed {
                // Once per engine: a kernel that keeps refusing would
                // otherwise log on every pass of the device loop.
                if !self.overflow_warned {
                    self.overflow_warned = true;
                    tracing::warn!(error = %e, "flushing io_uring's overflowed completions failed; retrying at every reap");
                }
                break;
            }
            let before = done.len();
            done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
            if done.len() == before {
                break;
            }
        }
        let mut progressed = false;
        for (id, result) in done.drain(..) {
            let Some(op) = self.ops.get_mut(id) else { continue };
            let outcome = match (op.kind, result) {
                (_, r) if r == -nix::libc::EAGAIN || r == -nix::libc::EINTR => None,
                // fallocate refused (a filesystem without the mode, a
                // kernel without the opcode, a misaligned block-device
                // range): the store's own chain, here, before anything
                // this op holds back starts.
                (OpKind::Discard | OpKind::WriteZeroes, r) if r < 0 => {
                    let (kind, file, offset, len, deadline) =
                        (op.kind, op.file.clone(), op.offset, op.len, op.deadline);
                    Some(run_blocking(kind, &file, offset, len, None, deadline).map_err(|e| match e {
                        StoreError::Io(error) => error,
                        other => io::Error::other(other.to_string()),
                    }))
                }
                (_, r) if r < 0 => Some(Err(io::Error::from_raw_os_error(-r))),
                (OpKind::Flush | OpKind::Discard | OpKind::WriteZeroes, _) => Some(Ok(())),
                (_, 0) => Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the backing store ended early"))),
                (_, r) => {
                    op.done += r as u64;
                    if op.done >= op.len {
                        Some(Ok(()))
                    } else {
                        // Short transfer: resubmit the rest.
                        advance(&mut op.iovecs.0, r as usize);
                        None
                    }
                }
            };
            match outcome {
                None => self.start(id),
                Some(result) => {
                    self.finish(id, result);
                    progressed = true;
                }
            }
        }
        self.cqes = done;
        if progressed {
            self.start_ready();
        }
    }

    fn finish(&mut self, id: u64, result: io::Result<()>) {
        let Some(op) = self.ops.remove(id) else { return };
        let Some(state) = self.commands.get_mut(&op.token) else { return };
        state.ops_left -= 1;
        if let Err(error) = result {
            state.failure.get_or_insert(IoFailure { kind: op.kind, buffer_offset: op.buffer_offset + op.done, error });
        }
        drop(op.buffer);
        if state.ops_left == 0 && state.sealed {
            let state = self.commands.remove(&op.token).expect("present");
            self.finished.push((op.token, state.failure));
        }
    }
}

/// Drop the first `n` bytes from an iovec list.
fn advance(iovecs: &mut IoVecList, mut n: usize) {
    let mut skip = 0;
    for v in iovecs.iter_mut() {
        if n >= v.iov_len {
            n -= v.iov_len;
            skip += 1;
        } else {
            // SAFETY: stays inside the same iovec.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n) }.cast();
            v.iov_len -= n;
            break;
        }
    }
    iovecs.drain(..skip);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Region, Segment};

    fn file(dir: &tempfile::TempDir, name: &str) -> Arc<BackingFile> {
        Arc::new(BackingFile::open(&dir.path().join(name), 1 << 20, false).unwrap())
    }

    fn op(kind: OpKind, file: &Arc<BackingFile>, offset: u64, len: u64) -> Op {
        Op {
            token: 1,
            kind,
            file: file.clone(),
            offset,
            len,
            buffer_offset: 0,
            done: 0,
            buffer: None,
            iovecs: IoVecs(IoVecList::new()),
            deadline: None,
        }
    }

    #[test]
    fn what_waits_for_what() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (file(&dir, "a"), file(&dir, "b"));
        let write = op(OpKind::Write, &a, 4096, 4096);
        let read = op(OpKind::Read, &a, 4096, 4096);
        let flush = op(OpKind::Flush, &a, 0, u64::MAX);
        // Overlapping: a write waits for reads and writes, a read for writes.
        assert!(write.blocks(OpKind::Write, &a, 8191, 1));
        assert!(write.blocks(OpKind::Read, &a, 0, 4097));
        assert!(read.blocks(OpKind::Write, &a, 4096, 1));
        assert!(!read.blocks(OpKind::Read, &a, 4096, 4096), "reads of one range run together");
        // Adjacent ranges and other files never wait.
        assert!(!write.blocks(OpKind::Write, &a, 8192, 4096));
        assert!(!write.blocks(OpKind::Read, &a, 0, 4096));
        assert!(!write.blocks(OpKind::Write, &b, 4096, 4096));
        // A flush waits for every earlier write, nothing waits for a flush.
        assert!(write.blocks(OpKind::Flush, &a, 0, u64::MAX));
        assert!(!read.blocks(OpKind::Flush, &a, 0, u64::MAX));
        assert!(!flush.blocks(OpKind::Write, &a, 4096, 4096));
        assert!(!write.blocks(OpKind::Flush, &b, 0, u64::MAX));
    }

    #[test]
    fn advancing_iovecs_drops_whole_ones_and_cuts_into_the_next() {
        let mut bytes = [0u8; 64];
        let base = bytes.as_mut_ptr();
        let iov = |at: usize, len: usize| nix::libc::iovec { iov_base: unsafe { base.add(at) }.cast(), iov_len: len };
        let mut v = IoVecList::from_vec(vec![iov(0, 10), iov(10, 20), iov(30, 30)]);
        advance(&mut v, 15);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].iov_base as usize - base as usize, v[0].iov_len), (15, 15));
        advance(&mut v, 15);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].iov_len, 30);
    }

    /// A data buffer over an anonymous mapping, as a command's would be.
    fn buffer(len: u32) -> DataBuffer {
        let map = memmap2::MmapOptions::new().len(len as usize).map_anon().unwrap();
        let region = Region::new(memmap2::MmapRaw::from(map));
        DataBuffer::new(region, [Segment { offset: 0, len }].into_iter().collect(), len)
    }

    #[test]
    fn queued_transfers_finish_with_their_command_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = file(&dir, "q");
        let settings = IoSettings { mode: IoMode::Uring, max_in_flight: 8, nowait_first: false, ..Default::default() };
        let engine = IoEngine::new(settings).unwrap();
        let out = buffer(8192);
        out.write(0, &[0xab; 8192]).unwrap();
        // Command 1 writes, command 2 reads the same range back: the read
        // waits for the write, whatever io_uring would do on its own.
        let first = engine.begin();
        engine.write(&store, 4096, 8192, &out, 0).unwrap();
        engine.flush(&store).unwrap();
        assert!(engine.seal(first).is_none(), "the write is still queued");
        let second = engine.begin();
        let back = buffer(8192);
        engine.read(&store, 4096, 8192, &back, 0).unwrap();
        // Nothing to move: nothing queued.
        engine.read(&store, 0, 0, &back, 0).unwrap();
        assert!(engine.seal(second).is_none());
        engine.submit().unwrap();
        engine.drain().unwrap();
        let done = engine.reap();
        let mut tokens: Vec<Token> = done.iter().map(|(t, _)| *t).collect();
        tokens.sort_unstable();
        assert_eq!(tokens, vec![first, second], "both commands finish, once each");
        assert!(done.iter().all(|(_, failure)| failure.is_none()));
        // The read ran after the write it overlaps.
        let mut got = [0u8; 8192];
        back.read(0, &mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0xab));
        // Out of range and read-only are refused at once, not queued.
        let third = engine.begin();
        assert!(matches!(engine.read(&store, (1 << 20) - 4096, 8192, &back, 0), Err(StoreError::OutOfRange)));
        assert!(matches!(engine.seal(third), Some(None)));
    }

    #[test]
    fn the_completion_queue_grows_with_the_commands_in_flight() {
        assert_eq!(completion_entries(1), 512, "io_uring's default: twice the submission queue");
        assert_eq!(completion_entries(64), 512);
        assert_eq!(completion_entries(300), 1024);
        assert_eq!(completion_entries(4096), 8192, "two operations per command");
        assert_eq!(completion_entries(usize::MAX), 1 << 16);
        // The kernel takes it.
        let settings = IoSettings { mode: IoMode::Uring, max_in_flight: 4096, ..Default::default() };
        assert!(IoEngine::new(settings).unwrap().is_async());
    }

    #[test]
    fn completions_beyond_the_queue_are_reaped_without_another_submit() {
        let dir = tempfile::tempdir().unwrap();
        let store = file(&dir, "overflow");
        let settings = IoSettings { mode: IoMode::Uring, nowait_first: false, ..Default::default() };
        let engine = IoEngine::new(settings).unwrap();
        // More reads than the completion queue holds (twice the 256
        // submission entries), each its own command, all finished before
        // anything is reaped.
        let commands = 3 * QUEUE_ENTRIES as usize;
        let buffers: Vec<DataBuffer> = (0..commands).map(|_| buffer(512)).collect();
        let mut tokens = Vec::new();
        for (i, back) in buffers.iter().enumerate() {
            let token = engine.begin();
            engine.read(&store, (i as u64 % 2048) * 512, 512, back, 0).unwrap();
            assert!(engine.seal(token).is_none());
            tokens.push(token);
        }
        engine.submit().unwrap();
        let fd = engine.completion_fd().expect("io_uring");
        let mut done = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while done.len() < commands && Instant::now() < deadline {
            // Sleep on the ring's fd as the device loop does, then reap
            // (no enter of our own).
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            engine.reap_into(&mut done);
        }
        let mut got: Vec<Token> = done.iter().map(|(t, _)| *t).collect();
        got.sort_unstable();
        assert_eq!(got, tokens, "every command finishes, once");
        assert!(done.iter().all(|(_, failure)| failure.is_none()));
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        assert_eq!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap(), 0, "reaped: nothing readable");
    }

    #[test]
    fn discard_and_write_zeroes_are_queued_as_writes_of_their_range() {
        // A regular filesystem, and tmpfs, where fallocate cannot zero a
        // range and the queued operation falls back to the store's chain.
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        dirs.extend(tempfile::tempdir_in("/dev/shm").ok());
        for dir in &dirs {
            let store = file(dir, "z");
            let settings =
                IoSettings { mode: IoMode::Uring, max_in_flight: 8, nowait_first: false, ..Default::default() };
            let engine = IoEngine::new(settings).unwrap();
            let out = buffer(65536);
            out.write(0, &[0xcc; 65536]).unwrap();
            let first = engine.begin();
            engine.write(&store, 0, 65536, &out, 0).unwrap();
            assert!(engine.seal(first).is_none());
            // Queued behind the write they overlap, not run in the call; the
            // flush waits for them as for any write.
            let second = engine.begin();
            engine.discard(&store, 4096, 8192, None).unwrap();
            engine.write_zeroes(&store, 16384, 16384, None).unwrap();
            engine.flush(&store).unwrap();
            assert_eq!(engine.unfinished(), 4, "write, discard, write-zeroes and flush all queued");
            assert!(engine.seal(second).is_none());
            // A later read of the range sees the write, then the zeroes.
            let third = engine.begin();
            let back = buffer(65536);
            engine.read(&store, 0, 65536, &back, 0).unwrap();
            assert!(engine.seal(third).is_none());
            engine.submit().unwrap();
            engine.drain().unwrap();
            let done = engine.reap();
            let mut tokens: Vec<Token> = done.iter().map(|(t, _)| *t).collect();
            tokens.sort_unstable();
            assert_eq!(tokens, vec![first, second, third], "in {}", dir.path().display());
            assert!(done.iter().all(|(_, failure)| failure.is_none()));
            let mut want = vec![0xcc; 65536];
            want[4096..12288].fill(0);
            want[16384..32768].fill(0);
            let mut got = vec![0u8; 65536];
            back.read(0, &mut got).unwrap();
            assert!(got == want, "the read saw other data in {}", dir.path().display());
            assert!(store.read_vec(0, 65536).unwrap() == want);
            // Out of range is refused at once, not queued.
            let fourth = engine.begin();
            assert!(matches!(engine.discard(&store, (1 << 20) - 4096, 8192, None), Err(StoreError::OutOfRange)));
            assert!(matches!(engine.write_zeroes(&store, u64::MAX, 2, None), Err(StoreError::OutOfRange)));
            assert!(matches!(engine.seal(fourth), Some(None)));
        }
    }

    #[test]
    fn a_synchronous_call_stops_waiting_for_stuck_io_at_its_deadline() {
        use std::io::Write as _;
        use std::time::Duration;
        // A FIFO as the store: a read of it waits until someone writes,
        // which is a backing store that does not answer.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stuck");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Read and write: opening a FIFO so does not wait for a peer.
        let fifo = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut peer = fifo.try_clone().unwrap();
        let store = Arc::new(BackingFile::from_open_file(fifo, &path, 1 << 20, false));
        let settings = IoSettings { mode: IoMode::Uring, nowait_first: false, ..Default::default() };
        let engine = IoEngine::new(settings).unwrap();
        let first = engine.begin();
        let back = buffer(4096);
        engine.read(&store, 0, 4096, &back, 0).unwrap();
        assert!(engine.seal(first).is_none());
        engine.submit().unwrap();
        // A write over the stuck read waits for it, but not past the deadline.
        let t0 = Instant::now();
        let error = engine.settle(&store, OpKind::Write, 0, 4096, Some(t0 + Duration::from_millis(200))).unwrap_err();
        let waited = t0.elapsed();
        assert!(matches!(&error, StoreError::Io(e) if e.kind() == io::ErrorKind::TimedOut), "{error}");
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(10), "waited {waited:?}");
        // Nothing it does not conflict with is waited for, deadline or not.
        engine.settle(&store, OpKind::Read, 0, 4096, Some(Instant::now())).unwrap();
        // The stuck read goes on and answers its own command once data comes.
        peer.write_all(&[0x5a; 4096]).unwrap();
        engine.drain().unwrap();
        let done = engine.reap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, first);
        assert!(done[0].1.is_none(), "{:?}", done[0].1);
        let mut got = [0u8; 4096];
        back.read(0, &mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn a_direct_transfer_that_breaks_alignment_runs_after_what_it_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let flags = crate::backing::OpenFlags { read_only: false, direct: true };
        let store = match BackingFile::open_with(&dir.path().join("d"), 1 << 20, flags) {
            Ok(store) => Arc::new(store),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => return eprintln!("skipped: {e}"),
            Err(e) => panic!("{e}"),
        };
        let engine = IoEngine::new(IoSettings {
            mode: IoMode::Uring,
            max_in_flight: 8,
            nowait_first: true,
            ..Default::default()
        })
        .unwrap();
        let first = engine.begin();
        let aa = buffer(4096);
        aa.write(0, &[0xaa; 4096]).unwrap();
        engine.write(&store, 0, 4096, &aa, 0).unwrap();
        assert!(engine.seal(first).is_none(), "aligned: queued on io_uring, not tried at once");
        // From buffer offset 1 the memory is unaligned: bounced, and so run
        // at once, but only after the queued write it overlaps.
        let second = engine.begin();
        let bb = buffer(4096);
        bb.write(1, &[0xbb; 512]).unwrap();
        engine.write(&store, 0, 512, &bb, 1).unwrap();
        assert!(matches!(engine.seal(second), Some(None)), "done when the call returned");
        let done = engine.reap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, first);
        assert!(done[0].1.is_none());
        let got = store.read_vec(0, 4096).unwrap();
        assert!(got[..512].iter().all(|&b| b == 0xbb) && got[512..].iter().all(|&b| b == 0xaa), "arrival order");
    }
}
