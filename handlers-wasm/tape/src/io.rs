//! READ(6), WRITE(6), VERIFY(6) and WRITE FILEMARKS(6), with SSC's
//! residuals.
//!
//! Residuals count what the command did *not* do: bytes in variable mode,
//! blocks in fixed mode. They travel in the sense INFORMATION field with
//! VALID set; a block longer than the request gives a negative one.

use tcmu_guest_sdk::scsi::cdb::stream::{StreamTransfer6, WriteFilemarks};
use tcmu_guest_sdk::sense::{self, MISCOMPARE_DURING_VERIFY, Sense};
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::format::Kind;
use crate::medium::{EARLY_WARNING, FILEMARK_DETECTED, Tape, VOLUME_OVERFLOW};
use crate::{Outcome, TapeDrive, residual, transfer_failed};

/// Where the payload of the blocks a read-like command passes over goes.
enum Sink<'a> {
    /// The data-in buffer (READ).
    DataIn,
    /// Nowhere: only check that the blocks are there (VERIFY, BYTCMP=0).
    Check,
    /// Compared with the data-out buffer (VERIFY, BYTCMP=1).
    Compare(&'a mut dyn Transfer),
}

/// How a read-like command ended short of its request.
struct Stop {
    sense: Sense,
    /// Bytes of data-in produced before it.
    produced: u32,
}

impl TapeDrive {
    /// READ(6).
    pub(crate) fn read(&mut self, cmd: &Command<'_>) -> Outcome {
        let read = StreamTransfer6::parse_read(cmd.cdb)?;
        self.check_fixed_bit(read.fixed)?;
        let block = self.settings.block_length;
        let bytes = if read.fixed { u64::from(read.length) * u64::from(block) } else { read.length.into() };
        let room = self.buffer_for(bytes, cmd.data_in_len)?;
        let tape = self.ready_tape()?;
        tape.usable()?;
        let before = tape.pos;
        let result = if read.fixed {
            read_fixed(tape, read.length, block, &mut Sink::DataIn)
        } else {
            read_variable(tape, read.length, read.sili, &mut Sink::DataIn)
        };
        let records = tape.pos - before;
        self.counters.records_read += records;
        match result {
            Ok(produced) => {
                self.counters.bytes_read += u64::from(produced);
                Ok(Completion::good_with_data(produced.min(room)))
            }
            Err(stop) => {
                self.counters.bytes_read += u64::from(stop.produced);
                let mut done = self.spc.fail(stop.sense);
                done.data_in_len = stop.produced;
                Ok(done)
            }
        }
    }

    /// VERIFY(6): read-like over the next blocks without moving data to the
    /// initiator; with BYTCMP, compare them with the data-out buffer.
    pub(crate) fn verify(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let verify = StreamTransfer6::parse_verify(cmd.cdb)?;
        self.check_fixed_bit(verify.fixed)?;
        let block = self.settings.block_length;
        if verify.byte_compare {
            let bytes = if verify.fixed { u64::from(verify.length) * u64::from(block) } else { verify.length.into() };
            self.buffer_for(bytes, cmd.data_out_len)?;
        }
        let tape = self.ready_tape()?;
        tape.usable()?;
        let mut sink = if verify.byte_compare { Sink::Compare(xfer) } else { Sink::Check };
        let result = if verify.fixed {
            read_fixed(tape, verify.length, block, &mut sink)
        } else {
            read_variable(tape, verify.length, false, &mut sink)
        };
        match result {
            Ok(_) => Ok(Completion::good()),
            Err(stop) => Err(stop.sense),
        }
    }

    /// WRITE(6).
    pub(crate) fn write(&mut self, cmd: &Command<'_>) -> Outcome {
        let write = StreamTransfer6::parse_write(cmd.cdb)?;
        self.check_fixed_bit(write.fixed)?;
        let block = self.settings.block_length;
        let max_block = self.config.max_block;
        let bytes = if write.fixed { u64::from(write.length) * u64::from(block) } else { write.length.into() };
        if !write.fixed && write.length > max_block {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        self.buffer_for(bytes, cmd.data_out_len)?;
        let tape = self.ready_tape()?;
        if write.length == 0 {
            return Ok(Completion::good()); // SSC: nothing transferred, no motion
        }
        tape.begin_write()?;
        let (count, length) = if write.fixed { (write.length, block) } else { (1, write.length) };
        let (written, result) = append_blocks(tape, count, length);
        let past_early_warning = tape.past_early_warning();
        self.account_writes(written, length);
        result?;
        if written < count {
            let unwritten = if write.fixed { count - written } else { length };
            return Err(residual(VOLUME_OVERFLOW, unwritten.into()).with_eom());
        }
        if past_early_warning {
            return Err(residual(EARLY_WARNING, 0).with_eom());
        }
        Ok(Completion::good())
    }

    /// WRITE FILEMARKS(6): `count` filemarks at the position, then the
    /// buffer flushed (SSC: a count of 0 only flushes).
    pub(crate) fn write_filemarks(&mut self, cmd: &Command<'_>) -> Outcome {
        let marks = WriteFilemarks::parse(cmd.cdb)?;
        if marks.setmarks {
            return Err(Sense::invalid_cdb_field(1, Some(1)));
        }
        let tape = self.ready_tape()?;
        tape.usable()?;
        if marks.count == 0 {
            tape.flush()?;
            return Ok(Completion::good());
        }
        tape.begin_write()?;
        for written in 0..marks.count {
            if !tape.fits(0) {
                return Err(residual(VOLUME_OVERFLOW, (marks.count - written).into()).with_eom());
            }
            tape.append(Kind::Filemark, 0, 0)?;
        }
        tape.flush()?;
        if tape.past_early_warning() {
            return Err(residual(EARLY_WARNING, 0).with_eom());
        }
        Ok(Completion::good())
    }

    fn account_writes(&mut self, records: u32, length: u32) {
        self.counters.records_written += u64::from(records);
        self.counters.bytes_written += u64::from(records) * u64::from(length);
    }

    /// FIXED=1 needs fixed-block mode: in variable mode it is an invalid
    /// field, as SSC requires.
    fn check_fixed_bit(&self, fixed: bool) -> Result<(), Sense> {
        if fixed && self.fixed_block().is_none() { Err(Sense::invalid_cdb_field(1, Some(0))) } else { Ok(()) }
    }
}

/// Append up to `count` blocks of `length` bytes from the data-out
/// buffer, as many as fit before the physical end. Returns how many were
/// written, and the error that stopped it.
fn append_blocks(tape: &mut Tape, count: u32, length: u32) -> (u32, Result<(), Sense>) {
    for written in 0..count {
        if !tape.fits(length) {
            return (written, Ok(()));
        }
        if let Err(sense) = tape.append(Kind::Data, length, written * length) {
            return (written, Err(sense));
        }
    }
    (count, Ok(()))
}

/// Variable mode: the next block, whatever its length, against a request
/// of `requested` bytes. Returns the bytes produced.
fn read_variable(tape: &mut Tape, requested: u32, sili: bool, sink: &mut Sink<'_>) -> Result<u32, Stop> {
    if requested == 0 {
        return Ok(0);
    }
    let stop = |sense: Sense, produced| Stop { sense, produced };
    match tape.current() {
        None => Err(stop(tape.end_sense().with_signed_information(requested.into()), 0)),
        Some((Kind::Filemark, _)) => {
            tape.pos += 1;
            Err(stop(residual(FILEMARK_DETECTED, requested.into()).with_filemark(), 0))
        }
        Some((Kind::Data, actual)) => {
            let n = actual.min(requested);
            let object = tape.pos;
            move_payload(tape, object, n, 0, sink).map_err(|sense| stop(sense, 0))?;
            tape.pos += 1;
            let produced = if matches!(sink, Sink::DataIn) { n } else { 0 };
            let short = i64::from(requested) - i64::from(actual);
            match short {
                0 => Ok(produced),
                // A short block with SILI is no error: the initiator
                // learns the length from the transfer residual.
                1.. if sili => Ok(produced),
                _ => Err(stop(residual(sense::NO_ADDITIONAL_SENSE, short).with_ili(), produced)),
            }
        }
    }
}

/// Fixed mode: `count` blocks of `block` bytes. Stops at the first one
/// that is not a block of that length. Returns the bytes produced.
fn read_fixed(tape: &mut Tape, count: u32, block: u32, sink: &mut Sink<'_>) -> Result<u32, Stop> {
    let produces = matches!(sink, Sink::DataIn);
    let produced = |i: u32| if produces { i * block } else { 0 };
    for i in 0..count {
        let left = i64::from(count - i);
        let stop = |sense: Sense| Stop { sense, produced: produced(i) };
        match tape.current() {
            None => return Err(stop(tape.end_sense().with_signed_information(left))),
            Some((Kind::Filemark, _)) => {
                tape.pos += 1;
                return Err(stop(residual(FILEMARK_DETECTED, left).with_filemark()));
            }
            Some((Kind::Data, actual)) => {
                let object = tape.pos;
                move_payload(tape, object, actual.min(block), i * block, sink).map_err(stop)?;
                tape.pos += 1;
                if actual != block {
                    // SSC: INFORMATION is the blocks not read, not counting
                    // the one of the wrong length, which was passed over.
                    return Err(stop(residual(sense::NO_ADDITIONAL_SENSE, left).with_ili()));
                }
            }
        }
    }
    Ok(produced(count))
}

/// Move `len` payload bytes of `object` to where `sink` says, at byte
/// `at` of the command's buffer.
fn move_payload(tape: &Tape, object: u64, len: u32, at: u32, sink: &mut Sink<'_>) -> Result<(), Sense> {
    match sink {
        Sink::DataIn => tape.payload_to_data_in(object, len, at),
        Sink::Check => Ok(()),
        Sink::Compare(xfer) => {
            let on_tape = tape.payload(object, len)?;
            let sent = xfer.read_data_out(at, len).map_err(transfer_failed)?;
            if on_tape == sent { Ok(()) } else { Err(MISCOMPARE_DURING_VERIFY.into()) }
        }
    }
}
