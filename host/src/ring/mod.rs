//! The TCMU command ring, user-space side.
//!
//! [`Ring`] reads entries that the kernel (or [`crate::sim`]) produced at
//! `cmd_head`, validates every offset and length against the region before
//! touching it, and writes responses and advances `cmd_tail`. Nothing it
//! reads can make it panic or access memory outside the region: an entry
//! whose buffers are bad is failed with [`RingError`] as its reason; a ring
//! whose framing is bad (an entry length that cannot be trusted to find
//! the next entry) stops with [`RingError::Corrupt`].
//!
//! Many commands may be outstanding at once: [`Ring::next_entry`] reads
//! ahead of the tail, and [`Ring::complete`] takes completions in any
//! order. Where the kernel offers `CAP_OOOC` (every kernel since 4.6) a
//! completion goes out at once, written into the oldest unanswered entry
//! with its own `cmd_id` ("stealing" the entry, as the kernel's
//! tcmu-design document describes); without it, the response waits in the
//! command's own entry until every older command is answered. Either way
//! the tail moves only over answered entries, so it never passes the
//! head, and the number of unanswered entries behind `next` is exactly
//! the number of commands outstanding.

pub mod entry;
pub mod layout;
pub mod region;

pub use entry::{BufferError, Cdb, CommandEntry, DataBuffer, Entry, InvalidEntry, Segment, TmrEntry, TmrKind};
pub use region::{Region, RegionError};

use std::collections::VecDeque;

use entry::Slot;
use layout::{hdr, mailbox, op, req, rsp, tmr};

/// Largest CDB we accept (variable-length CDBs top out at 260 bytes).
pub const MAX_CDB_LEN: usize = 260;

/// What went wrong with the ring or an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The mailbox does not describe a ring we can serve.
    #[error("bad mailbox: {0}")]
    BadMailbox(String),
    /// The ring's framing cannot be trusted any more; the device must stop.
    #[error("corrupt ring at offset {offset:#x}: {reason}")]
    Corrupt {
        /// Ring-relative offset of the bad entry.
        offset: u32,
        /// What was wrong.
        reason: String,
    },
    /// The entry's CDB offset or length is bad.
    #[error("bad CDB: {0}")]
    BadCdb(String),
    /// An iovec leaves the data area or lengths overflow.
    #[error("bad iovec {index}: {reason}")]
    BadIovec {
        /// Index in the entry's iovec array.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// A completion was offered for an entry this ring does not have
    /// outstanding (taken from another ring, or answered already).
    #[error("completion for an entry that is not outstanding (at {entry:#x})")]
    NotOutstanding {
        /// The entry's offset.
        entry: u32,
    },
    /// A region access failed (an internal bound check tripped).
    #[error(transparent)]
    Region(#[from] RegionError),
}

/// The result of serving a command, as written into the entry's `rsp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// SCSI status byte.
    pub status: u8,
    /// Sense bytes (truncated to 96).
    pub sense: Vec<u8>,
    /// Bytes of data-in produced, when the command produced data-in; the
    /// kernel is told about a short transfer with `UFLAG_READ_LEN`.
    pub data_in_len: Option<u32>,
    /// Bytes of data-out the handler consumed. Accounting only (metrics);
    /// not written to the ring.
    pub data_out_taken: u64,
}

/// SCSI status bytes a device may return (SAM-5 table 33, without the
/// obsolete ones): GOOD, CHECK CONDITION, CONDITION MET, BUSY, RESERVATION
/// CONFLICT, TASK SET FULL, ACA ACTIVE, TASK ABORTED.
pub const VALID_STATUSES: [u8; 8] = [0x00, 0x02, 0x04, 0x08, 0x18, 0x28, 0x30, 0x40];

/// Whether `sense` is fixed (70h/71h, at least 8 bytes) or descriptor
/// (72h/73h, at least 8 bytes) format sense data.
fn is_valid_sense(sense: &[u8]) -> bool {
    sense.len() >= 8 && matches!(sense[0] & 0x7f, 0x70..=0x73)
}

impl Response {
    /// GOOD, no data-in accounting.
    pub fn good() -> Self {
        Self { status: 0, sense: Vec::new(), data_in_len: None, data_out_taken: 0 }
    }

    /// Build the response to a handler's completion. `moved_data_in` says
    /// whether the handler put data-in into the buffer (only then is a short
    /// transfer reported); `room` is the data-in buffer size.
    ///
    /// The handler is untrusted: a status byte SAM does not define, or
    /// CHECK CONDITION without usable sense, becomes HARDWARE ERROR /
    /// INTERNAL TARGET FAILURE, and the second value says what was wrong.
    pub fn from_handler(
        status: u8,
        mut sense: Vec<u8>,
        data_in_len: u32,
        moved_data_in: bool,
        room: u32,
    ) -> (Self, Option<&'static str>) {
        if !VALID_STATUSES.contains(&status) {
            return (Self::check_condition(0x04, 0x44, 0x00), Some("invalid SCSI status byte"));
        }
        if status == 0x02 && !is_valid_sense(&sense) {
            return (Self::check_condition(0x04, 0x44, 0x00), Some("CHECK CONDITION without valid sense data"));
        }
        if status != 0x02 {
            // Sense only travels with CHECK CONDITION.
            sense.clear();
        }
        sense.truncate(layout::SENSE_BUFFER_SIZE);
        let response =
            Self { status, sense, data_in_len: moved_data_in.then(|| data_in_len.min(room)), data_out_taken: 0 };
        (response, None)
    }

    /// CHECK CONDITION with fixed-format sense for key/asc/ascq.
    pub fn check_condition(key: u8, asc: u8, ascq: u8) -> Self {
        let mut sense = vec![0u8; 18];
        sense[0] = 0x70;
        sense[2] = key;
        sense[7] = 10;
        sense[12] = asc;
        sense[13] = ascq;
        Self { status: 0x02, sense, data_in_len: None, data_out_taken: 0 }
    }

    /// The same response, recording `bytes` of data-out consumed.
    pub fn with_data_out_taken(mut self, bytes: u64) -> Self {
        self.data_out_taken = bytes;
        self
    }
}

/// An entry between the tail and `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowSlot {
    offset: u32,
    len: u32,
    /// Whether a response is in it (or it needs none: PAD, TMR, unknown).
    answered: bool,
}

/// The user-space side of one TCMU command ring.
#[derive(Debug)]
pub struct Ring {
    region: Region,
    cmdr_off: u32,
    cmdr_size: u32,
    flags: u16,
    /// Our copy of `cmd_tail`; the mailbox copy is only ever written.
    tail: u32,
    /// Where the next entry is read.
    next: u32,
    /// The entries from `tail` to `next`, oldest first; the front is
    /// always unanswered (answered ones at the front are passed at once).
    window: VecDeque<WindowSlot>,
    /// Sequence number of `window[0]`: entry `seq` sits at `seq - base`.
    base: u64,
    /// Whether the entry taken as `seq` still awaits its completion, at
    /// `seq - answers_base` (a command's answer may go into another
    /// command's entry, so this is kept apart from `window`).
    awaiting: VecDeque<bool>,
    answers_base: u64,
}

impl Ring {
    /// Attach to a region whose mailbox the kernel has initialised. The
    /// current `cmd_tail` is adopted, so a restarted daemon continues where
    /// its predecessor stopped.
    pub fn attach(region: Region) -> Result<Self, RingError> {
        let version = region.read_u16(mailbox::VERSION as u64)?;
        if version != layout::MAILBOX_VERSION {
            return Err(RingError::BadMailbox(format!("version {version}, expected {}", layout::MAILBOX_VERSION)));
        }
        let flags = region.read_u16(mailbox::FLAGS as u64)?;
        let cmdr_off = region.read_u32(mailbox::CMDR_OFF as u64)?;
        let cmdr_size = region.read_u32(mailbox::CMDR_SIZE as u64)?;
        if (cmdr_off as usize) < mailbox::SIZE || cmdr_off % layout::ENTRY_ALIGN != 0 {
            return Err(RingError::BadMailbox(format!("cmdr_off {cmdr_off:#x} overlaps the mailbox or is unaligned")));
        }
        if cmdr_size < rsp::END as u32 || cmdr_size % layout::ENTRY_ALIGN != 0 {
            return Err(RingError::BadMailbox(format!("cmdr_size {cmdr_size:#x} too small or unaligned")));
        }
        region
            .check(cmdr_off as u64, cmdr_size as u64)
            .map_err(|e| RingError::BadMailbox(format!("ring leaves the region: {e}")))?;
        let tail = region.load_acquire(mailbox::CMD_TAIL as u64)?;
        if tail >= cmdr_size || tail % layout::ENTRY_ALIGN != 0 {
            return Err(RingError::BadMailbox(format!("cmd_tail {tail:#x} outside the ring")));
        }
        Ok(Self {
            region,
            cmdr_off,
            cmdr_size,
            flags,
            tail,
            next: tail,
            window: VecDeque::new(),
            base: 0,
            awaiting: VecDeque::new(),
            answers_base: 0,
        })
    }

    /// The region this ring lives in.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Mailbox capability flags (`layout::FLAG_CAP_*`).
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Ring size in bytes.
    pub fn size(&self) -> u32 {
        self.cmdr_size
    }

    /// Our tail (ring-relative).
    pub fn tail(&self) -> u32 {
        self.tail
    }

    /// Whether the kernel may take completions in any order (`CAP_OOOC`).
    pub fn out_of_order(&self) -> bool {
        self.flags & layout::FLAG_CAP_OOOC != 0
    }

    /// Commands (and malformed entries) taken but not yet completed.
    pub fn outstanding(&self) -> usize {
        self.window.iter().filter(|s| !s.answered).count()
    }

    /// Whether the ring has commands taken but not yet completed.
    pub fn has_outstanding(&self) -> bool {
        !self.window.is_empty()
    }

    /// The kernel's head, loaded with acquire ordering so that the entry
    /// bytes it covers are visible.
    pub fn head(&self) -> Result<u32, RingError> {
        let head = self.region.load_acquire(mailbox::CMD_HEAD as u64)?;
        if head >= self.cmdr_size || head % layout::ENTRY_ALIGN != 0 {
            return Err(RingError::Corrupt { offset: head, reason: "cmd_head outside the ring or unaligned".into() });
        }
        Ok(head)
    }

    /// Whether the kernel produced entries not taken yet (one acquire
    /// load; a corrupt head counts as news, for [`Ring::next_entry`] to
    /// report).
    pub fn has_new_entries(&self) -> bool {
        !self.head().is_ok_and(|head| head == self.next)
    }

    fn entry_addr(&self, ring_off: u32, field: usize) -> u64 {
        self.cmdr_off as u64 + ring_off as u64 + field as u64
    }

    /// Put the entry just read at `next` into the window.
    fn take(&mut self, len: u32, answered: bool) -> Result<Slot, RingError> {
        let slot = Slot { offset: self.next, len, seq: self.base + self.window.len() as u64 };
        self.window.push_back(WindowSlot { offset: self.next, len, answered });
        self.awaiting.push_back(!answered);
        self.next = (self.next + len) % self.cmdr_size;
        if answered {
            self.pass_answered()?;
        }
        Ok(slot)
    }

    /// Move the tail over the answered entries at the front of the window.
    fn pass_answered(&mut self) -> Result<(), RingError> {
        let before = self.tail;
        while let Some(front) = self.window.front().filter(|s| s.answered) {
            self.tail = (self.tail + front.len) % self.cmdr_size;
            self.window.pop_front();
            self.base += 1;
        }
        if self.tail != before {
            // Release: our response bytes are visible before the kernel sees the tail.
            self.region.store_release(mailbox::CMD_TAIL as u64, self.tail)?;
        }
        Ok(())
    }

    /// Take the next entry the kernel produced. PAD entries are skipped
    /// and unknown opcodes are flagged `UFLAG_UNKNOWN_OP` and skipped, both
    /// here. Commands and malformed entries stay outstanding until
    /// [`Ring::complete`] / [`Ring::complete_invalid`]; TMRs need no answer.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, RingError> {
        loop {
            let head = self.head()?;
            if head == self.next {
                return Ok(None);
            }
            let at = self.next;
            let produced = (head + self.cmdr_size - at) % self.cmdr_size;
            let len_op = self.region.read_u32(self.entry_addr(at, hdr::LEN_OP))?;
            let len = len_op & !op::MASK;
            let corrupt = |reason: String| RingError::Corrupt { offset: at, reason };
            if len < hdr::SIZE as u32 {
                return Err(corrupt(format!("entry length {len} shorter than its header")));
            }
            if len > produced {
                return Err(corrupt(format!("entry length {len} runs past cmd_head ({produced} bytes produced)")));
            }
            if at + len > self.cmdr_size {
                return Err(corrupt(format!("entry length {len} wraps the ring end")));
            }
            match len_op & op::MASK {
                op::PAD => {
                    self.take(len, true)?;
                }
                op::CMD => {
                    let cmd_id = self.region.read_u16(self.entry_addr(at, hdr::CMD_ID))?;
                    if len < rsp::END as u32 {
                        // Too short to hold a response: not a slot we can answer in.
                        return Err(corrupt(format!("command entry length {len} cannot hold a response")));
                    }
                    // Parse before taking: the request is copied out, so the
                    // entry may carry another command's response later.
                    let parsed = self.parse_command(at, len);
                    let slot = self.take(len, false)?;
                    return Ok(Some(match parsed {
                        Ok((cdb, data, bidi_in)) => Entry::Command(CommandEntry { cmd_id, cdb, data, bidi_in, slot }),
                        Err(error) => Entry::Invalid(InvalidEntry { cmd_id, error, slot }),
                    }));
                }
                op::TMR => {
                    let parsed = self.parse_tmr(at, len);
                    let slot = self.take(len, true)?;
                    match parsed {
                        Ok((kind, aborted)) => return Ok(Some(Entry::Tmr(TmrEntry { kind, aborted, slot }))),
                        Err(e) => tracing::warn!(offset = at, error = %e, "malformed TMR entry skipped"),
                    }
                }
                other => {
                    tracing::warn!(offset = at, opcode = other, "unknown ring opcode; flagged UNKNOWN_OP");
                    let uflags_at = self.entry_addr(at, hdr::UFLAGS);
                    let uflags = self.region.read_u8(uflags_at)?;
                    self.region.write_u8(uflags_at, uflags | layout::UFLAG_UNKNOWN_OP)?;
                    self.take(len, true)?;
                }
            }
        }
    }

    fn parse_command(&self, at: u32, len: u32) -> Result<(Cdb, DataBuffer, Option<DataBuffer>), RingError> {
        let iov_cnt = self.region.read_u32(self.entry_addr(at, req::IOV_CNT))? as u64;
        let bidi_cnt = self.region.read_u32(self.entry_addr(at, req::IOV_BIDI_CNT))? as u64;
        let dif_cnt = self.region.read_u32(self.entry_addr(at, req::IOV_DIF_CNT))? as u64;
        let total_iovs = iov_cnt + bidi_cnt + dif_cnt;
        let iov_bytes = total_iovs * req::IOV_SIZE as u64;
        if req::IOV as u64 + iov_bytes > len as u64 {
            return Err(RingError::BadIovec {
                index: 0,
                reason: format!("{total_iovs} iovecs do not fit the {}-byte entry", len),
            });
        }

        let cdb_off = self.region.read_u64(self.entry_addr(at, req::CDB_OFF))?;
        let bad_cdb = |e: RegionError| RingError::BadCdb(e.to_string());
        self.region.check(cdb_off, 1).map_err(bad_cdb)?;
        let opcode = self.region.read_u8(cdb_off)?;
        let additional = if opcode == 0x7f {
            self.region.check(cdb_off, 8).map_err(bad_cdb)?;
            self.region.read_u8(cdb_off + 7)?
        } else {
            0
        };
        let cdb_len = layout::cdb_len(opcode, additional);
        if cdb_len > MAX_CDB_LEN {
            return Err(RingError::BadCdb(format!("length {cdb_len} exceeds {MAX_CDB_LEN}")));
        }
        self.region.check(cdb_off, cdb_len as u64).map_err(bad_cdb)?;
        let mut cdb = Cdb::from_elem(0, cdb_len);
        self.region.read(cdb_off, &mut cdb)?;

        // Data buffers must sit in the data area, past the ring: a buffer
        // overlapping the mailbox or ring would let a response overwrite them.
        let data_start = self.cmdr_off as u64 + self.cmdr_size as u64;
        let read_iovs = |first: u64, count: u64| -> Result<DataBuffer, RingError> {
            let mut segments = entry::Segments::new();
            let mut total: u32 = 0;
            for i in first..first + count {
                let base_at = self.entry_addr(at, req::IOV) + i * req::IOV_SIZE as u64;
                let base = self.region.read_u64(base_at)?;
                let len = self.region.read_u64(base_at + 8)?;
                let bad = |reason: String| RingError::BadIovec { index: i as usize, reason };
                if base < data_start {
                    return Err(bad(format!("base {base:#x} is inside the mailbox or ring")));
                }
                self.region.check(base, len).map_err(|e| bad(e.to_string()))?;
                let len32 = u32::try_from(len).map_err(|_| bad(format!("length {len} too large")))?;
                total = total.checked_add(len32).ok_or_else(|| bad("total length overflows u32".into()))?;
                if len32 > 0 {
                    segments.push(Segment { offset: base, len: len32 });
                }
            }
            Ok(DataBuffer::new(self.region.clone(), segments, total))
        };
        let data = read_iovs(0, iov_cnt)?;
        let bidi_in = if bidi_cnt > 0 { Some(read_iovs(iov_cnt, bidi_cnt)?) } else { None };
        // DIF iovecs are validated with the rest but not served: LIO does
        // not pass protection information to TCMU.
        if dif_cnt > 0 {
            read_iovs(iov_cnt + bidi_cnt, dif_cnt)?;
        }
        Ok((cdb, data, bidi_in))
    }

    fn parse_tmr(&self, at: u32, len: u32) -> Result<(TmrKind, Vec<u16>), RingError> {
        if len < tmr::CMD_IDS as u32 {
            return Err(RingError::Corrupt { offset: at, reason: format!("TMR entry length {} too short", len) });
        }
        let kind = TmrKind::from_raw(self.region.read_u8(self.entry_addr(at, tmr::TYPE))?);
        let cnt = self.region.read_u32(self.entry_addr(at, tmr::CMD_CNT))? as u64;
        if tmr::CMD_IDS as u64 + cnt * 2 > len as u64 {
            return Err(RingError::Corrupt { offset: at, reason: format!("TMR lists {cnt} ids in {} bytes", len) });
        }
        let aborted = (0..cnt)
            .map(|i| self.region.read_u16(self.entry_addr(at, tmr::CMD_IDS) + i * 2))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kind, aborted))
    }

    /// Where the response of the command taken as `slot` goes: with
    /// `CAP_OOOC` the oldest unanswered entry (the front), else its own.
    /// The entry is marked answered.
    fn claim(&mut self, slot: Slot) -> Result<u32, RingError> {
        let awaiting = slot.seq.checked_sub(self.answers_base).and_then(|i| self.awaiting.get_mut(i as usize));
        match awaiting {
            Some(a) if *a => *a = false,
            _ => return Err(RingError::NotOutstanding { entry: slot.offset }),
        }
        while self.awaiting.front() == Some(&false) {
            self.awaiting.pop_front();
            self.answers_base += 1;
        }
        // In order, the command's own entry is still unanswered (its seq
        // is at or past the window's base); out of order, the front is.
        let out_of_order = self.out_of_order();
        let index = if out_of_order { 0 } else { (slot.seq - self.base) as usize };
        let target = &mut self.window[index];
        debug_assert!(!target.answered && (out_of_order || target.offset == slot.offset));
        target.answered = true;
        Ok(target.offset)
    }

    fn write_response(
        &mut self,
        slot: Slot,
        cmd_id: u16,
        response: &Response,
        buffer_len: u32,
    ) -> Result<(), RingError> {
        let at = self.claim(slot)?;
        // The entry may be another command's (stolen): name ours.
        self.region.write_u16(self.entry_addr(at, hdr::CMD_ID), cmd_id)?;
        self.region.write_u8(self.entry_addr(at, rsp::SCSI_STATUS), response.status)?;
        let sense_at = self.entry_addr(at, rsp::SENSE);
        let n = response.sense.len().min(layout::SENSE_BUFFER_SIZE);
        self.region.write(sense_at, &response.sense[..n])?;
        self.region.fill(sense_at + n as u64, (layout::SENSE_BUFFER_SIZE - n) as u64, 0)?;
        let uflags_at = self.entry_addr(at, hdr::UFLAGS);
        let mut uflags = self.region.read_u8(uflags_at)? & !layout::UFLAG_READ_LEN;
        let mut read_len = 0;
        if let Some(produced) = response.data_in_len
            && self.flags & layout::FLAG_CAP_READ_LEN != 0
            && produced < buffer_len
        {
            uflags |= layout::UFLAG_READ_LEN;
            read_len = produced;
        }
        self.region.write_u32(self.entry_addr(at, rsp::READ_LEN), read_len)?;
        self.region.write_u8(uflags_at, uflags)?;
        self.pass_answered()
    }

    /// Write the response of `cmd`, in any order relative to the other
    /// outstanding commands, and move the tail as far as it may go.
    pub fn complete(&mut self, cmd: CommandEntry, response: &Response) -> Result<(), RingError> {
        let buffer_len = cmd.bidi_in.as_ref().unwrap_or(&cmd.data).len();
        self.write_response(cmd.slot, cmd.cmd_id, response, buffer_len)
    }

    /// Fail a malformed command (CHECK CONDITION, HARDWARE ERROR /
    /// INTERNAL TARGET FAILURE).
    pub fn complete_invalid(&mut self, entry: InvalidEntry) -> Result<(), RingError> {
        self.write_response(entry.slot, entry.cmd_id, &Response::check_condition(0x04, 0x44, 0x00), 0)
    }
}
