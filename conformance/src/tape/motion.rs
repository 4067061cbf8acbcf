//! Moving the tape and writing marks: WRITE FILEMARKS(6), SPACE(6/16)
//! (SSC-3), LOCATE(10/16), REWIND, ERASE and overwriting in the
//! middle, with READ POSITION (all three forms) after every motion.
//!
//! Most checks run on the same recording, three files:
//!
//! ```text
//! object  0  1  2  3   4  5  6   7  | 8
//!         b  b  b  FM  b  b  FM  b  | end of data
//! file    0  0  0  0   1  1  1   2  | 2
//! ```

use super::drive::{Drive, Info, SpaceCode, Stop, block, locate10, locate16, read6, space6, space16};
use crate::common::{Lun, Runner};
use crate::expect::ensure;

/// End of data of the recording, and its file.
const EOD: u64 = 8;
const LAST_FILE: u64 = 2;
/// The block length of the recording.
const LEN: u32 = 64;

/// Record the three files; returns the blocks by object number (filemarks
/// as `None`).
fn record(drive: &mut Drive<'_>) -> Result<Vec<Option<Vec<u8>>>, String> {
    let mut objects = Vec::new();
    for (file, blocks) in [3u64, 2, 1].into_iter().enumerate() {
        for _ in 0..blocks {
            let data = block(objects.len() as u64, LEN, 0x80 + file as u8);
            drive.write(&data)?;
            objects.push(Some(data));
        }
        if file < 2 {
            drive.filemarks(1)?;
            objects.push(None);
        }
    }
    drive.expect_at(EOD, LAST_FILE)?;
    drive.rewind()?;
    drive.expect_at(0, 0)?;
    Ok(objects)
}

/// The block at `object` of the recording.
fn data_at(objects: &[Option<Vec<u8>>], object: usize) -> Result<&[u8], String> {
    objects.get(object).and_then(Option::as_deref).ok_or_else(|| format!("object {object} is not a block"))
}

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("write-filemarks.zero-and-two", |drive| {
        drive.write(&block(0, LEN, 0x01))?;
        drive.filemarks(0)?;
        drive.expect_at(1, 0)?;
        drive.filemarks(2)?;
        drive.expect_at(3, 2)?;
        drive.write(&block(3, LEN, 0x02))?;
        drive.expect_at(4, 2)?;
        drive.rewind()?;
        drive.space(SpaceCode::Filemarks, 2)?;
        drive.expect_at(3, 2)?;
        drive.read_expecting(&block(3, LEN, 0x02))
    });
    suite.check("rewind", |drive| {
        record(drive)?;
        drive.space(SpaceCode::EndOfData, 0)?;
        drive.expect_at(EOD, LAST_FILE)?;
        drive.rewind()?;
        let pos = drive.position()?;
        ensure!(pos.bop, "READ POSITION after REWIND: BOP clear");
        drive.expect_at(0, 0)
    });
    suite.check("space.blocks-forward", |drive| {
        let objects = record(drive)?;
        drive.space(SpaceCode::Blocks, 2)?;
        drive.expect_at(2, 0)?;
        drive.space(SpaceCode::Blocks, 0)?;
        drive.expect_at(2, 0)?;
        drive.read_expecting(data_at(&objects, 2)?)?;
        drive.expect_at(3, 0)
    });
    suite.check("space.blocks-forward-over-filemark", |drive| {
        let objects = record(drive)?;
        drive.space(SpaceCode::Blocks, 2)?;
        // Two blocks ahead, the filemark comes first: stop past it.
        drive.expect_stream(&space6(SpaceCode::Blocks, 2), &[], 0, Stop::filemark(Info::Is(1)))?;
        drive.expect_at(4, 1)?;
        drive.read_expecting(data_at(&objects, 4)?)
    });
    suite.check("space.blocks-backward-over-filemark", |drive| {
        record(drive)?;
        drive.locate(4)?;
        // Backwards the filemark stops the motion before it (BOP side).
        drive.expect_stream(&space6(SpaceCode::Blocks, -1), &[], 0, Stop::filemark(Info::Is(1)))?;
        drive.expect_at(3, 0)?;
        drive.space(SpaceCode::Blocks, -2)?;
        drive.expect_at(1, 0)
    });
    suite.check("space.blocks-backward-to-bop", |drive| {
        record(drive)?;
        drive.locate(3)?;
        drive.expect_stream(&space6(SpaceCode::Blocks, -10), &[], 0, Stop::bop(Info::Is(7)))?;
        let pos = drive.position()?;
        ensure!(pos.bop, "at the beginning of the partition BOP is clear");
        drive.expect_at(0, 0)
    });
    suite.check("space.blocks-forward-to-eod", |drive| {
        record(drive)?;
        drive.locate(7)?;
        drive.expect_stream(&space6(SpaceCode::Blocks, 3), &[], 0, Stop::end_of_data(Info::Is(2)))?;
        drive.expect_at(EOD, LAST_FILE)
    });
    suite.check("space.filemarks-forward", |drive| {
        let objects = record(drive)?;
        drive.space(SpaceCode::Filemarks, 1)?;
        drive.expect_at(4, 1)?;
        drive.space(SpaceCode::Filemarks, 1)?;
        drive.expect_at(7, 2)?;
        drive.read_expecting(data_at(&objects, 7)?)
    });
    suite.check("space.filemarks-backward", |drive| {
        record(drive)?;
        drive.space(SpaceCode::EndOfData, 0)?;
        // Backwards over a filemark ends on its BOP side.
        drive.space(SpaceCode::Filemarks, -1)?;
        drive.expect_at(6, 1)?;
        drive.expect_stream(&space6(SpaceCode::Filemarks, -5), &[], 0, Stop::bop(Info::Is(4)))?;
        drive.expect_at(0, 0)
    });
    suite.check("space.filemarks-to-eod-st-count", |drive| {
        // st's MTEOM: 0x7FFFFF filemarks, BLANK CHECK with what was not
        // spaced over, from which st counts the files.
        record(drive)?;
        drive.expect_stream(
            &space6(SpaceCode::Filemarks, 0x7F_FFFF),
            &[],
            0,
            Stop::end_of_data(Info::Is(0x7F_FFFF - 2)),
        )?;
        drive.expect_at(EOD, LAST_FILE)
    });
    suite.check("space.end-of-data", |drive| {
        record(drive)?;
        drive.space(SpaceCode::EndOfData, 0)?;
        drive.expect_at(EOD, LAST_FILE)?;
        drive.expect_stream(&read6(LEN, false), &[], LEN, Stop::end_of_data(Info::Is(LEN.into())))?;
        // Appending there continues the last file.
        drive.write(&block(EOD, LEN, 0x03))?;
        drive.expect_at(EOD + 1, LAST_FILE)
    });
    suite.check("space16", |drive| {
        record(drive)?;
        drive.execute_good(&space16(SpaceCode::Blocks, 2), &[], 0)?;
        drive.expect_at(2, 0)?;
        drive.execute_good(&space16(SpaceCode::Filemarks, 1), &[], 0)?;
        drive.expect_at(4, 1)?;
        drive.execute_good(&space16(SpaceCode::EndOfData, 0), &[], 0)?;
        drive.expect_at(EOD, LAST_FILE)?;
        drive.execute_good(&space16(SpaceCode::Filemarks, -2), &[], 0)?;
        drive.expect_at(3, 0)?;
        drive.execute_good(&space16(SpaceCode::Blocks, -3), &[], 0)?;
        drive.expect_at(0, 0)
    });
    suite.check("locate10", |drive| {
        let objects = record(drive)?;
        drive.locate(5)?;
        drive.expect_at(5, 1)?;
        drive.read_expecting(data_at(&objects, 5)?)?;
        drive.locate(2)?;
        drive.expect_at(2, 0)?;
        drive.read_expecting(data_at(&objects, 2)?)?;
        drive.locate(EOD as u32)?;
        drive.expect_at(EOD, LAST_FILE)?;
        drive.locate(0)?;
        drive.expect_at(0, 0)
    });
    suite.check("locate10.beyond-end-of-data", |drive| {
        record(drive)?;
        drive.expect_stream(&locate10(100), &[], 0, Stop::end_of_data(Info::Any))?;
        drive.expect_at(EOD, LAST_FILE)
    });
    suite.check("locate16", |drive| {
        let objects = record(drive)?;
        drive.execute_good(&locate16(0, 4), &[], 0)?;
        drive.expect_at(4, 1)?;
        drive.read_expecting(data_at(&objects, 4)?)?;
        // Logical file 2 starts past the second filemark.
        drive.execute_good(&locate16(1, 2), &[], 0)?;
        drive.expect_at(7, 2)?;
        drive.execute_good(&locate16(3, 0), &[], 0)?;
        drive.expect_at(EOD, LAST_FILE)?;
        drive.execute_good(&locate16(1, 0), &[], 0)?;
        drive.expect_at(0, 0)
    });
    suite.check("locate16.beyond-end-of-data", |drive| {
        record(drive)?;
        drive.expect_stream(&locate16(0, 1000), &[], 0, Stop::end_of_data(Info::Any))?;
        drive.expect_at(EOD, LAST_FILE)
    });
    suite.check("overwrite.forgets-what-followed", |drive| {
        let objects = record(drive)?;
        drive.locate(2)?;
        let new = block(2, 3 * LEN, 0x04);
        drive.write(&new)?;
        drive.expect_at(3, 0)?;
        drive.rewind()?;
        drive.space(SpaceCode::EndOfData, 0)?;
        drive.expect_at(3, 0)?;
        drive.rewind()?;
        drive.read_expecting(data_at(&objects, 0)?)?;
        drive.read_expecting(data_at(&objects, 1)?)?;
        drive.read_expecting(&new)?;
        drive.expect_stream(&read6(LEN, false), &[], LEN, Stop::end_of_data(Info::Is(LEN.into())))?;
        drive.rewind()?;
        // The filemarks went with the rest.
        drive.expect_stream(&space6(SpaceCode::Filemarks, 1), &[], 0, Stop::end_of_data(Info::Is(1)))?;
        drive.expect_at(3, 0)
    });
    suite.check("overwrite.filemark-in-the-middle", |drive| {
        let objects = record(drive)?;
        drive.locate(1)?;
        drive.filemarks(1)?;
        drive.expect_at(2, 1)?;
        drive.space(SpaceCode::EndOfData, 0)?;
        drive.expect_at(2, 1)?;
        drive.rewind()?;
        drive.read_expecting(data_at(&objects, 0)?)?;
        drive.expect_stream(&read6(LEN, false), &[], LEN, Stop::filemark(Info::Is(LEN.into())))?;
        drive.expect_at(2, 1)
    });
    suite.check("erase.at-position", |drive| {
        let objects = record(drive)?;
        drive.locate(4)?;
        drive.erase()?;
        drive.expect_at(4, 1)?;
        drive.expect_stream(&read6(LEN, false), &[], LEN, Stop::end_of_data(Info::Is(LEN.into())))?;
        drive.rewind()?;
        drive.space(SpaceCode::EndOfData, 0)?;
        drive.expect_at(4, 1)?;
        drive.rewind()?;
        drive.read_expecting(data_at(&objects, 0)?)
    });
    suite.check("erase.long", |drive| {
        record(drive)?;
        drive.execute_good(&[super::drive::op::ERASE_6, 0x01, 0, 0, 0, 0], &[], 0)?;
        drive.rewind()?;
        drive.expect_stream(&read6(LEN, false), &[], LEN, Stop::end_of_data(Info::Is(LEN.into())))?;
        drive.expect_at(0, 0)
    });
}
