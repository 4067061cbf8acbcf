//! Commands that move the tape or report where it is: SPACE, REWIND,
//! LOCATE, READ POSITION, ERASE and LOAD UNLOAD.
//!
//! Positions are logical object numbers: blocks and filemarks both count,
//! from 0 at the beginning of the partition, as READ POSITION reports them
//! and LOCATE takes them. The drive flushes what it wrote before moving
//! away from it.

use tcmu_guest_sdk::scsi::cdb::stream::{
    Erase, LoadUnload, Locate, PositionForm, ReadPosition, Rewind, Space, SpaceCode,
};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{self, Sense};
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::medium::{BEGINNING_OF_PARTITION, FILEMARK_DETECTED, Tape};
use crate::{Outcome, Readiness, TapeDrive, residual};

impl TapeDrive {
    /// SPACE(6) and SPACE(16).
    pub(crate) fn space(&mut self, cmd: &Command<'_>) -> Outcome {
        let space =
            if cmd.opcode() == crate::ssc::SPACE_6 { Space::parse6(cmd.cdb)? } else { Space::parse16(cmd.cdb)? };
        if space.code == SpaceCode::SequentialFilemarks {
            return Err(Sense::invalid_cdb_field(1, Some(3)));
        }
        let tape = self.ready_tape()?;
        tape.usable()?;
        tape.flush()?;
        match space.code {
            SpaceCode::Blocks => space_blocks(tape, space.count),
            SpaceCode::Filemarks => space_filemarks(tape, space.count),
            SpaceCode::EndOfData => {
                tape.pos = tape.index.len();
                match tape.index.damage() {
                    Some(_) => Err(tape.end_sense()),
                    None => Ok(Completion::good()),
                }
            }
            SpaceCode::SequentialFilemarks => unreachable!("refused above"),
        }
    }

    /// REWIND (IMMED is honoured by completing at once: the rewind is instant).
    pub(crate) fn rewind(&mut self, cmd: &Command<'_>) -> Outcome {
        Rewind::parse(cmd.cdb)?;
        let tape = self.ready_tape()?;
        tape.flush()?;
        tape.pos = 0;
        Ok(Completion::good())
    }

    /// LOCATE(10) and LOCATE(16): to a logical object, or (LOCATE(16)) to
    /// the start of a logical file or to end of data. One partition.
    pub(crate) fn locate(&mut self, cmd: &Command<'_>) -> Outcome {
        let locate =
            if cmd.opcode() == crate::ssc::LOCATE_10 { Locate::parse10(cmd.cdb)? } else { Locate::parse16(cmd.cdb)? };
        if locate.change_partition && locate.partition != 0 {
            let byte = if cmd.opcode() == crate::ssc::LOCATE_10 { 8 } else { 3 };
            return Err(Sense::invalid_cdb_field(byte, None));
        }
        let tape = self.ready_tape()?;
        tape.usable()?;
        tape.flush()?;
        let len = tape.index.len();
        let target = match locate.destination {
            0 => Some(locate.object),
            // The start of logical file n: just past filemark n-1.
            1 => match locate.object {
                0 => Some(0),
                n => tape.index.filemark(n - 1).map(|f| f + 1),
            },
            _ => Some(len), // 3: end of data
        };
        match target {
            Some(target) if target <= len => {
                tape.pos = target;
                Ok(Completion::good())
            }
            _ => {
                tape.pos = len;
                Err(tape.end_sense())
            }
        }
    }

    /// READ POSITION: short, long and extended forms. The drive has no
    /// write buffer of its own (writes go to the image as they arrive), so
    /// the buffered counts are zero.
    pub(crate) fn read_position(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ReadPosition::parse(cmd.cdb)?;
        let tape = self.ready_tape()?;
        tape.usable()?;
        let pos = tape.pos;
        let bop = pos == 0;
        let eop = tape.in_early_warning();
        let flags = (u8::from(bop) << 7) | (u8::from(eop) << 6);
        let data = match request.form {
            PositionForm::Short => {
                let mut d = vec![0u8; 20];
                d[0] = flags;
                let block = u32::try_from(pos).unwrap_or(u32::MAX);
                d[4..8].copy_from_slice(&block.to_be_bytes());
                d[8..12].copy_from_slice(&block.to_be_bytes());
                d
            }
            PositionForm::Long => {
                let mut d = vec![0u8; 32];
                d[0] = flags;
                d[8..16].copy_from_slice(&pos.to_be_bytes());
                d[16..24].copy_from_slice(&tape.index.filemarks_before(pos).to_be_bytes());
                d
            }
            PositionForm::Extended => {
                let mut d = vec![0u8; 32];
                d[0] = flags;
                d[2..4].copy_from_slice(&0x1cu16.to_be_bytes());
                d[8..16].copy_from_slice(&pos.to_be_bytes());
                d[16..24].copy_from_slice(&pos.to_be_bytes());
                d
            }
        };
        // The short form's length is fixed; the others have an allocation length.
        let allocation = match request.form {
            PositionForm::Short => 20,
            _ => u32::from(request.allocation_length),
        };
        Ok(respond(xfer, cmd, &data, allocation))
    }

    /// ERASE: end of data at the position (short), or everything from the
    /// position to the end zeroed (long); either way what followed is gone.
    pub(crate) fn erase(&mut self, cmd: &Command<'_>) -> Outcome {
        Erase::parse(cmd.cdb)?;
        let tape = self.ready_tape()?;
        tape.begin_write()?;
        tape.flush()?;
        Ok(Completion::good())
    }

    /// LOAD UNLOAD. Load (also retension, which is a rewind here) threads
    /// the cartridge again if it was unloaded and rewinds it; unload
    /// flushes, rewinds and leaves the cartridge in the drive not ready,
    /// for the library to take, unless PREVENT ALLOW MEDIUM REMOVAL forbids.
    pub(crate) fn load_unload(&mut self, cmd: &Command<'_>) -> Outcome {
        let request = LoadUnload::parse(cmd.cdb)?;
        if self.tape.is_none() {
            return Err(tcmu_guest_sdk::spc::readiness::MEDIUM_NOT_PRESENT.into());
        }
        if request.load || request.retension && !request.end_of_tape {
            // The initiator loads the tape itself: no "becoming ready" for it
            // to see, and no unit attention telling it what it just did.
            if self.readiness == Readiness::Threading
                && let Some(tape) = &mut self.tape
            {
                tape.thread();
            }
            self.readiness = Readiness::Ready;
            let tape = self.ready_tape()?;
            tape.flush()?;
            tape.pos = 0;
            return Ok(Completion::good());
        }
        if self.prevent {
            return Err(sense::MEDIUM_REMOVAL_PREVENTED.into());
        }
        if let Some(tape) = &mut self.tape {
            tape.flush()?;
            tape.pos = 0;
        }
        self.readiness = Readiness::Ejected;
        Ok(Completion::good())
    }
}

/// SPACE over `count` blocks (negative: backwards). A filemark stops it
/// (forwards just past the mark, backwards just before it), as do end of
/// data and the beginning of the partition; each reports the blocks not
/// spaced over.
fn space_blocks(tape: &mut Tape, count: i64) -> Outcome {
    let pos = tape.pos;
    let index = &tape.index;
    let before = index.filemarks_before(pos);
    if count >= 0 {
        let next_mark = index.filemark(before);
        let limit = next_mark.unwrap_or(index.len());
        let available = limit - pos;
        if count as u64 <= available {
            tape.pos = pos + count as u64;
            return Ok(Completion::good());
        }
        let left = count - available as i64;
        match next_mark {
            Some(mark) => {
                tape.pos = mark + 1;
                Err(residual(FILEMARK_DETECTED, left).with_filemark())
            }
            None => {
                tape.pos = index.len();
                Err(tape.end_sense().with_signed_information(left))
            }
        }
    } else {
        let wanted = count.unsigned_abs();
        let previous_mark = before.checked_sub(1).and_then(|n| index.filemark(n));
        let start = previous_mark.map_or(0, |mark| mark + 1);
        let available = pos - start;
        if wanted <= available {
            tape.pos = pos - wanted;
            return Ok(Completion::good());
        }
        let left = (wanted - available) as i64;
        match previous_mark {
            Some(mark) => {
                tape.pos = mark;
                Err(residual(FILEMARK_DETECTED, left).with_filemark())
            }
            None => {
                tape.pos = 0;
                Err(residual(BEGINNING_OF_PARTITION, left).with_eom())
            }
        }
    }
}

/// SPACE over `count` filemarks (negative: backwards, ending just before
/// the last mark passed). End of data reports BLANK CHECK with the marks
/// not spaced over, which st uses to count files for `eod`.
fn space_filemarks(tape: &mut Tape, count: i64) -> Outcome {
    let pos = tape.pos;
    let index = &tape.index;
    let before = index.filemarks_before(pos);
    if count >= 0 {
        let ahead = index.filemark_count() - before;
        if count as u64 <= ahead {
            if count > 0 {
                let mark = index.filemark(before + count as u64 - 1).expect("counted");
                tape.pos = mark + 1;
            }
            return Ok(Completion::good());
        }
        let left = count - ahead as i64;
        tape.pos = index.len();
        Err(tape.end_sense().with_signed_information(left))
    } else {
        let wanted = count.unsigned_abs();
        if wanted <= before {
            tape.pos = index.filemark(before - wanted).expect("counted");
            return Ok(Completion::good());
        }
        let left = (wanted - before) as i64;
        tape.pos = 0;
        Err(residual(BEGINNING_OF_PARTITION, left).with_eom())
    }
}
