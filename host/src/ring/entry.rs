//! Entries as user space sees them, parsed and validated out of the ring
//! into owned values before any handler runs. A `CMD` entry's response
//! overlays its request (they share a union), so everything needed to
//! serve the command is copied out first.

use smallvec::SmallVec;

use super::region::{Region, RegionError};

/// A CDB, held inline up to 16 bytes (every CDB but the variable-length
/// ones): taking a command from the ring allocates nothing for it.
pub type Cdb = SmallVec<[u8; 16]>;

/// A buffer's segments, inline up to four (a 1 MiB transfer in the
/// kernel's 64 KiB data blocks is at most 16, usually one run): cloning a
/// buffer for queued I/O allocates nothing.
pub(crate) type Segments = SmallVec<[Segment; 4]>;

/// One contiguous piece of a command's data buffer, as a region offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset from the start of the region.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
}

/// Why a data-buffer access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    /// The range leaves the command's buffer.
    #[error("range {offset}+{len} leaves the {size}-byte data buffer")]
    OutOfRange {
        /// Requested offset in the buffer.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Buffer size.
        size: u32,
    },
    /// A segment leaves the region (validated at parse time, so this
    /// indicates a bug, reported rather than trusted).
    #[error(transparent)]
    Region(#[from] RegionError),
}

/// A command's data buffer: the kernel's scatter list, addressed as one
/// contiguous byte range `[0, len)`.
#[derive(Debug, Clone)]
pub struct DataBuffer {
    region: Region,
    segments: Segments,
    len: u32,
}

impl DataBuffer {
    pub(crate) fn new(region: Region, segments: Segments, len: u32) -> Self {
        Self { region, segments, len }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segments (region offsets), in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Walk the region ranges that make up buffer bytes `[offset, offset+len)`,
    /// calling `f(region_offset, buffer_offset_relative_to_start, chunk_len)`.
    fn walk<E: From<BufferError>>(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), E>,
    ) -> Result<(), E> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len as u64).ok_or(BufferError::OutOfRange {
            offset,
            len,
            size: self.len,
        })?;
        let mut pos = 0u64; // buffer offset where the current segment starts
        let mut done = 0usize;
        for seg in &self.segments {
            let seg_end = pos + seg.len as u64;
            if seg_end > offset && pos < end {
                let from = offset.max(pos);
                let to = end.min(seg_end);
                let chunk = (to - from) as usize;
                f(seg.offset + (from - pos), done, chunk)?;
                done += chunk;
            }
            pos = seg_end;
            if pos >= end {
                break;
            }
        }
        Ok(())
    }

    /// Buffer bytes `[offset, offset+len)` as iovecs over the region, for
    /// an asynchronous read or write. The caller keeps a clone of this
    /// buffer (and so the mapping) until the I/O has completed, and does
    /// not complete the command before then.
    pub(crate) fn iovecs(&self, offset: u64, len: u64) -> Result<IoVecList, BufferError> {
        let mut out = IoVecList::new();
        self.walk(offset, len, |at, _, n| -> Result<(), BufferError> {
            let base = self.region.raw_range(at, n as u64)?;
            out.push(nix::libc::iovec { iov_base: base.cast(), iov_len: n });
            Ok(())
        })?;
        Ok(out)
    }

    /// Copy buffer bytes starting at `offset` into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BufferError> {
        self.walk(offset, out.len() as u64, |at, done, n| {
            self.region.read(at, &mut out[done..done + n]).map_err(BufferError::from)
        })
    }

    /// Copy `data` into the buffer at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), BufferError> {
        self.walk(offset, data.len() as u64, |at, done, n| {
            self.region.write(at, &data[done..done + n]).map_err(BufferError::from)
        })
    }

    /// Fill buffer bytes `[offset, offset+len)` chunk by chunk from `f`,
    /// which receives the buffer-relative position and a slice of the
    /// region to fill (e.g. a `pread` from the backing file). No
    /// intermediate copy.
    pub fn fill_with<E: From<BufferError>>(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.walk(offset, len, |at, done, n| {
            // SAFETY: a DataBuffer exists only for a command that user space
            // has taken from the ring and not completed; the protocol gives
            // us the buffer exclusively until we advance cmd_tail.
            unsafe { self.region.with_slice_mut(at, n as u64, |s| f(done as u64, s)) }.map_err(BufferError::from)?
        })
    }

    /// Drain buffer bytes `[offset, offset+len)` chunk by chunk into `f`
    /// (e.g. a `pwrite` to the backing file). No intermediate copy.
    pub fn drain_with<E: From<BufferError>>(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.walk(offset, len, |at, done, n| {
            // SAFETY: as in `fill_with`.
            unsafe { self.region.with_slice(at, n as u64, |s| f(done as u64, s)) }.map_err(BufferError::from)?
        })
    }
}

/// iovecs over a buffer's bytes: one inline (the usual case, a
/// contiguous run of the data area), more on the heap.
pub(crate) type IoVecList = SmallVec<[nix::libc::iovec; 1]>;

/// A SCSI command taken from the ring.
#[derive(Debug)]
pub struct CommandEntry {
    /// The kernel's command id (echoed in TMR abort lists).
    pub cmd_id: u16,
    /// The CDB.
    pub cdb: Cdb,
    /// The data buffer (data-out for writes, data-in for reads: the kernel
    /// uses one buffer for both directions).
    pub data: DataBuffer,
    /// Separate data-in buffer of a bidirectional command, if any.
    pub bidi_in: Option<DataBuffer>,
    pub(super) slot: Slot,
}

/// A command entry that could not be parsed. It still occupies a valid
/// slot, so it is completed with an error and the ring moves on.
#[derive(Debug)]
pub struct InvalidEntry {
    /// The kernel's command id.
    pub cmd_id: u16,
    /// What was wrong with it.
    pub error: super::RingError,
    pub(super) slot: Slot,
}

/// A task management notification (TCMU_OP_TMR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmrEntry {
    /// The function, decoded.
    pub kind: TmrKind,
    /// Ids of the commands the kernel aborted: completed by us already,
    /// still outstanding (the kernel waits for their completion), or not
    /// yet taken from the ring.
    pub aborted: Vec<u16>,
    pub(super) slot: Slot,
}

/// Task management function types (`TCMU_TMR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum TmrKind {
    AbortTask,
    AbortTaskSet,
    ClearAca,
    ClearTaskSet,
    LunReset,
    TargetWarmReset,
    TargetColdReset,
    LunResetPr,
    Unknown(u8),
}

impl TmrKind {
    pub(super) fn from_raw(raw: u8) -> Self {
        use super::layout::tmr::*;
        match raw {
            TYPE_ABORT_TASK => TmrKind::AbortTask,
            TYPE_ABORT_TASK_SET => TmrKind::AbortTaskSet,
            TYPE_CLEAR_ACA => TmrKind::ClearAca,
            TYPE_CLEAR_TASK_SET => TmrKind::ClearTaskSet,
            TYPE_LUN_RESET => TmrKind::LunReset,
            TYPE_TARGET_WARM_RESET => TmrKind::TargetWarmReset,
            TYPE_TARGET_COLD_RESET => TmrKind::TargetColdReset,
            TYPE_LUN_RESET_PRO => TmrKind::LunResetPr,
            other => TmrKind::Unknown(other),
        }
    }
}

/// Where an entry sits in the ring, and its place among the entries the
/// ring has taken (`seq`), which finds it among the outstanding ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) offset: u32,
    pub(super) len: u32,
    pub(super) seq: u64,
}

/// What the ring hands to the device loop.
#[derive(Debug)]
pub enum Entry {
    /// A command to serve and then [`super::Ring::complete`].
    Command(CommandEntry),
    /// A malformed command to fail with [`super::Ring::complete_invalid`].
    Invalid(InvalidEntry),
    /// A TMR to act on; it needs no answer in the ring.
    Tmr(TmrEntry),
}
