//! READ(6), WRITE(6) and VERIFY(6) in variable and fixed-block mode, with
//! the residuals SSC-3 defines for READ(6) and VERIFY(6):
//!
//! - a block shorter than a variable READ: NO SENSE, ILI, INFORMATION =
//!   requested − actual, the block transferred; with SILI, GOOD and the
//!   transport's residual instead;
//! - a block longer than the request: ILI with a negative INFORMATION, the
//!   data cut to the request, the position past the block; with SILI,
//!   only when the mode block length is non-zero;
//! - a filemark: NO SENSE, FILEMARK, 00/01, INFORMATION = what was not
//!   read (bytes, or blocks in fixed mode), the position past the mark;
//! - end of data: BLANK CHECK, 00/05, the same residual, no motion;
//! - in fixed mode a block of another length stops the read with ILI and
//!   INFORMATION = blocks requested − blocks read before it.

use super::drive::{Drive, Info, Stop, VARIABLE, block, op, read6, read6_fixed, transfer6};
use crate::common::{Lun, Runner};
use crate::expect::{self, ensure};
use crate::sense;

/// A block of this length is read with shorter and longer requests.
const BLOCK: u32 = 1000;
/// Fixed-mode block length.
const FIXED: u32 = 512;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("write-read.variable", check_variable_round_trip);
    suite.check("write-read.zero-length", |drive| {
        drive.execute_good(&transfer6(op::WRITE_6, 0, 0), &[], 0)?;
        drive.expect_at(0, 0)?;
        drive.write(&block(0, 64, 0x01))?;
        drive.rewind()?;
        let data = drive.execute_good(&read6(0, false), &[], 0)?;
        ensure!(data.is_empty(), "READ(6) of zero bytes returned {} bytes", data.len());
        drive.expect_at(0, 0)
    });
    suite.check("read.short-block", |drive| {
        let data = one_block(drive)?;
        let response =
            drive.expect_stream(&read6(4096, false), &[], 4096, Stop::ili(Info::Is(4096 - i64::from(BLOCK))))?;
        expect::same_bytes("data of the short block", &response.data_in, &data)?;
        drive.expect_at(1, 0)
    });
    suite.check("read.short-block-sili", |drive| {
        let data = one_block(drive)?;
        let got = drive.execute_good(&read6(4096, true), &[], 4096)?;
        expect::same_bytes("data of the short block (the transport carries the residual)", &got, &data)?;
        drive.expect_at(1, 0)
    });
    suite.check("read.long-block", |drive| {
        let data = one_block(drive)?;
        let response =
            drive.expect_stream(&read6(256, false), &[], 256, Stop::ili(Info::Is(256 - i64::from(BLOCK))))?;
        expect::same_bytes("data of the long block, cut to the request", &response.data_in, &data[..256])?;
        drive.expect_at(1, 0)
    });
    suite.check("read.long-block-sili-variable-mode", |drive| {
        // An overlength block is reported even with SILI in variable mode,
        // as LTO drives do (IBM's and Quantum's LTO references): SSC-3
        // lets a drive stay silent here, but then the st driver with its
        // `sili` option hands a truncated block to read() as if it were
        // whole, where it must fail with ENOMEM.
        let data = one_block(drive)?;
        let response = drive.expect_stream(&read6(256, true), &[], 256, Stop::ili(Info::Is(256 - i64::from(BLOCK))))?;
        expect::same_bytes("data of the long block, cut to the request", &response.data_in, &data[..256])?;
        drive.expect_at(1, 0)
    });
    suite.check("read.long-block-sili-fixed-mode", |drive| {
        // ... and with a non-zero block length it is, even with SILI.
        let data = one_block(drive)?;
        drive.set_block_length(FIXED)?;
        let response = drive.expect_stream(&read6(256, true), &[], 256, Stop::ili(Info::Is(256 - i64::from(BLOCK))))?;
        expect::same_bytes("data of the long block, cut to the request", &response.data_in, &data[..256])?;
        drive.expect_at(1, 0)
    });
    suite.check("read.filemark-residual", |drive| {
        let data = block(0, BLOCK, 0x21);
        drive.write(&data)?;
        drive.filemarks(1)?;
        drive.write(&block(2, 10, 0x22))?;
        drive.rewind()?;
        drive.read_expecting(&data)?;
        // Nothing read: the residual is the whole request. (A CHECK
        // CONDITION that moved no data carries no transfer length for the
        // transport to check; the INFORMATION field says it all.)
        drive.expect_stream(&read6(4096, false), &[], 4096, Stop::filemark(Info::Is(4096)))?;
        drive.expect_at(2, 1)?;
        drive.read_expecting(&block(2, 10, 0x22))?;
        drive.expect_at(3, 1)
    });
    suite.check("read.end-of-data-residual", |drive| {
        drive.write(&block(0, 100, 0x31))?;
        drive.filemarks(1)?;
        drive.rewind()?;
        drive.space(super::drive::SpaceCode::Blocks, 1)?;
        drive.expect_stream(&read6(4096, false), &[], 4096, Stop::filemark(Info::Is(4096)))?;
        drive.expect_at(2, 1)?;
        for _ in 0..2 {
            drive.expect_stream(&read6(512, false), &[], 512, Stop::end_of_data(Info::Is(512)))?;
            drive.expect_at(2, 1)?;
        }
        Ok(())
    });
    suite.check("write-read.fixed", |drive| {
        drive.set_block_length(FIXED)?;
        let data = fixed_blocks(4, 0x41);
        drive.write_fixed(&data, FIXED)?;
        drive.expect_at(4, 0)?;
        drive.rewind()?;
        let got = drive.execute_good(&read6_fixed(4), &[], 4 * FIXED)?;
        expect::same_bytes("four fixed blocks", &got, &data)?;
        drive.expect_at(4, 0)?;
        drive.rewind()?;
        let got = drive.execute_good(&read6_fixed(1), &[], FIXED)?;
        expect::same_bytes("the first fixed block", &got, &data[..FIXED as usize])?;
        // Each fixed block is one logical block: a variable READ of 512
        // reads the next one.
        drive.read_expecting(&data[FIXED as usize..2 * FIXED as usize])?;
        drive.expect_at(2, 0)
    });
    suite.check("read.fixed-filemark-residual", |drive| {
        drive.set_block_length(FIXED)?;
        let data = fixed_blocks(4, 0x51);
        drive.write_fixed(&data, FIXED)?;
        drive.filemarks(1)?;
        drive.rewind()?;
        let response = drive.expect_stream(&read6_fixed(6), &[], 6 * FIXED, Stop::filemark(Info::Is(2)))?;
        expect::same_bytes("the blocks before the filemark", &response.data_in, &data)?;
        drive.expect_at(5, 1)
    });
    suite.check("read.fixed-end-of-data-residual", |drive| {
        drive.set_block_length(FIXED)?;
        let data = fixed_blocks(2, 0x61);
        drive.write_fixed(&data, FIXED)?;
        drive.rewind()?;
        let response = drive.expect_stream(&read6_fixed(5), &[], 5 * FIXED, Stop::end_of_data(Info::Is(3)))?;
        expect::same_bytes("the blocks before end of data", &response.data_in, &data)?;
        drive.expect_at(2, 0)
    });
    suite.check("read.fixed-wrong-length-residual", |drive| {
        drive.set_block_length(FIXED)?;
        let data = fixed_blocks(2, 0x71);
        drive.write_fixed(&data, FIXED)?;
        drive.set_block_length(VARIABLE)?;
        drive.write(&block(2, 100, 0x72))?;
        drive.write(&block(3, BLOCK, 0x73))?;
        drive.set_block_length(FIXED)?;
        drive.rewind()?;
        // Two good blocks, then a short one: INFORMATION counts the blocks
        // not read, the wrong one included.
        let response = drive.expect_stream(&read6_fixed(4), &[], 4 * FIXED, Stop::ili(Info::Is(2)))?;
        ensure!(
            response.data_in.len() >= data.len(),
            "{} bytes of data-in, the two good blocks are {}",
            response.data_in.len(),
            data.len()
        );
        expect::same_bytes("the blocks before the short one", &response.data_in[..data.len()], &data)?;
        drive.expect_at(3, 0)?;
        // A long one stops the next read at once.
        drive.expect_stream(&read6_fixed(1), &[], FIXED, Stop::ili(Info::Is(1)))?;
        drive.expect_at(4, 0)
    });
    suite.check("verify", |drive| {
        let data = one_block(drive)?;
        let length = data.len() as u32;
        drive.execute_good(&transfer6(op::VERIFY_6, 0, length), &[], 0)?;
        drive.expect_at(1, 0)?;
        drive.rewind()?;
        drive.execute_good(&transfer6(op::VERIFY_6, 0x02, length), &data, 0)?;
        drive.expect_at(1, 0)?;
        drive.rewind()?;
        let mut other = data.clone();
        other[BLOCK as usize / 2] ^= 0x01;
        drive.execute_expecting(&transfer6(op::VERIFY_6, 0x02, length), &other, 0, sense::MISCOMPARE_DURING_VERIFY)?;
        Ok(())
    });
}

/// Write one block of `BLOCK` bytes and rewind; returns it.
fn one_block(drive: &mut Drive<'_>) -> Result<Vec<u8>, String> {
    let data = block(0, BLOCK, 0x11);
    drive.write(&data)?;
    drive.expect_at(1, 0)?;
    drive.rewind()?;
    Ok(data)
}

/// `count` recognizable fixed-length blocks.
fn fixed_blocks(count: u32, tag: u8) -> Vec<u8> {
    crate::pattern::blocks(0, count, FIXED, tag)
}

/// Variable blocks of 100, 5000 and (up to) 64 Ki bytes, a filemark and a
/// 10-byte block: written, read back with READ POSITION after each.
fn check_variable_round_trip(drive: &mut Drive<'_>) -> Result<(), String> {
    let lengths = [100, 5000, drive.big_block()];
    let mut written = Vec::new();
    for (i, &len) in lengths.iter().enumerate() {
        let data = block(i as u64, len, 0x01);
        drive.write(&data)?;
        drive.expect_at(i as u64 + 1, 0)?;
        written.push(data);
    }
    drive.filemarks(1)?;
    drive.expect_at(4, 1)?;
    let last = block(4, 10, 0x02);
    drive.write(&last)?;
    drive.expect_at(5, 1)?;
    drive.rewind()?;
    drive.expect_at(0, 0)?;
    for (i, data) in written.iter().enumerate() {
        drive.read_expecting(data)?;
        drive.expect_at(i as u64 + 1, 0)?;
    }
    drive.expect_stream(&read6(4096, false), &[], 4096, Stop::filemark(Info::Is(4096)))?;
    drive.expect_at(4, 1)?;
    drive.read_expecting(&last)?;
    drive.expect_at(5, 1)?;
    drive.expect_stream(&read6(512, false), &[], 512, Stop::end_of_data(Info::Is(512)))?;
    drive.expect_at(5, 1)
}
