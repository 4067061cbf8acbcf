//! READ and WRITE in all four CDB sizes (SBC-3 5.11-5.14, 5.29-5.32):
//! data lands where it was sent and comes back intact, the ends of the
//! medium are enforced, and zero-length transfers are no-ops.

use super::device::{Device, Effect, Span};
use super::suite::Suite;
use crate::cdb::{self, CdbSize, FUA};
use crate::expect::{self, ensure};
use crate::pattern;
use crate::sense;

/// Blocks moved by the multi-block checks (or MAXIMUM TRANSFER LENGTH, if less).
const MULTI_BLOCKS: u32 = 16;
/// What a READ(6) TRANSFER LENGTH of 0 means.
const READ6_ZERO_BLOCKS: u32 = 256;

/// `Ok` if `lba` fits a CDB of `size`.
fn addressable(size: CdbSize, lba: u64) -> Result<(), String> {
    ensure!(lba <= size.max_lba(), "LBA {lba} does not fit a {}-byte CDB", size.len());
    Ok(())
}

/// A READ size to cross-check `size` against on a read-only device.
fn cross_check(size: CdbSize, span: Span) -> CdbSize {
    let end = span.lba + u64::from(span.blocks);
    if size == CdbSize::Sixteen && end <= CdbSize::Ten.max_lba() { CdbSize::Ten } else { CdbSize::Sixteen }
}

fn read_cdb(size: CdbSize, span: Span) -> Vec<u8> {
    cdb::block_command(size.read_opcode(), size, 0, span.lba, span.blocks)
}

/// READ `span` with a CDB of `size`: GOOD and exactly `want`.
fn read_matches(dev: &mut Device<'_>, size: CdbSize, span: Span, want: &[u8]) -> Result<(), String> {
    let response = dev.execute(&read_cdb(size, span), &[], dev.bytes(span.blocks))?;
    expect::good(&response)?;
    expect::same_blocks(&response.data_in, want, span.lba, dev.block_size)
}

/// Plant data in `span` and READ it back with a CDB of `size`.
fn read_known(dev: &mut Device<'_>, size: CdbSize, span: Span) -> Result<(), String> {
    dev.with_known_data(span, size.read_opcode(), cross_check(size, span), |dev, want| {
        read_matches(dev, size, span, want)
    })
}

/// WRITE a pattern to `span` with a CDB of `size` and byte 1 `flags`; it
/// must land there and nowhere else.
fn write_lands(dev: &mut Device<'_>, size: CdbSize, flags: u8, span: Span) -> Result<(), String> {
    let data = pattern::blocks(span.lba, span.blocks, dev.block_size, size.write_opcode());
    dev.expect_effect(span, Effect::Holds(&data), |dev, _| {
        let cdb = cdb::block_command(size.write_opcode(), size, flags, span.lba, span.blocks);
        expect::good(&dev.execute(&cdb, &data, 0)?)
    })
}

fn register_reads(suite: &mut Suite<'_>, size: CdbSize) {
    let dev = &suite.dev;
    let name = |case: &str| format!("read{}.{case}", size.len());
    let (last, blocks, multi) = (dev.last_lba(), dev.blocks, multi_block_span(dev));
    suite.check(name("lba-0"), move |dev| read_known(dev, size, Span::new(0, 1)));
    suite.check_if(name("last-lba"), addressable(size, last), move |dev, ()| read_known(dev, size, Span::new(last, 1)));
    suite.check(name("multi-block"), move |dev| read_known(dev, size, multi));
    suite.check_if(name("past-end"), addressable(size, blocks), move |dev, ()| {
        let span = Span::new(blocks, 1);
        dev.execute_expecting(&read_cdb(size, span), &[], dev.bytes(1), sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
    suite.check_if(name("straddles-end"), addressable(size, last), move |dev, ()| {
        let span = Span::new(last, 2);
        dev.execute_expecting(&read_cdb(size, span), &[], dev.bytes(2), sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
    if size == CdbSize::Six {
        suite.check_if(name("zero-means-256-blocks"), enough_blocks(blocks), |dev, ()| read6_zero_length(dev));
    } else {
        suite.check(name("zero-length"), move |dev| {
            let response = dev.execute(&read_cdb(size, Span::new(0, 0)), &[], 0)?;
            expect::good(&response)?;
            expect::data_len(&response, 0)
        });
    }
}

fn enough_blocks(blocks: u64) -> Result<(), String> {
    ensure!(blocks >= u64::from(READ6_ZERO_BLOCKS), "the medium has fewer than 256 blocks");
    Ok(())
}

/// READ(6) with TRANSFER LENGTH 0 reads 256 blocks (SBC-3 5.11), or is
/// refused if that exceeds MAXIMUM TRANSFER LENGTH.
fn read6_zero_length(dev: &mut Device<'_>) -> Result<(), String> {
    let cdb = cdb::block_command(cdb::op::READ_6, CdbSize::Six, 0, 0, 0);
    let data_in_len = dev.bytes(READ6_ZERO_BLOCKS);
    if let Some(max) = dev.caps.max_transfer().filter(|&max| max < READ6_ZERO_BLOCKS) {
        dev.execute_expecting(&cdb, &[], data_in_len, sense::INVALID_FIELD_IN_CDB)
            .map_err(|e| format!("256 blocks exceed MAXIMUM TRANSFER LENGTH {max}: {e}"))?;
        return Ok(());
    }
    let span = Span::new(0, READ6_ZERO_BLOCKS);
    dev.with_known_data(span, cdb::op::READ_6, CdbSize::Sixteen, |dev, want| {
        let response = dev.execute(&cdb, &[], data_in_len)?;
        expect::good(&response)?;
        expect::same_blocks(&response.data_in, want, 0, dev.block_size)
    })
}

fn register_writes(suite: &mut Suite<'_>, size: CdbSize) {
    let dev = &suite.dev;
    let name = |case: &str| format!("write{}.{case}", size.len());
    let (last, blocks, multi) = (dev.last_lba(), dev.blocks, multi_block_span(dev));
    let fua = dev.caps.fua();
    suite.check(name("lba-0"), move |dev| write_lands(dev, size, 0, Span::new(0, 1)));
    suite.check_if(name("last-lba"), addressable(size, last), move |dev, ()| {
        write_lands(dev, size, 0, Span::new(last, 1))
    });
    suite.check(name("multi-block"), move |dev| write_lands(dev, size, 0, multi));
    suite.check_if(name("past-end"), addressable(size, blocks), move |dev, ()| {
        dev.expect_effect(Span::new(last, 1), Effect::Unchanged, |dev, _| {
            let data = pattern::blocks(last, 2, dev.block_size, size.write_opcode());
            let straddling = cdb::block_command(size.write_opcode(), size, 0, last, 2);
            dev.execute_expecting(&straddling, &data, 0, sense::LBA_OUT_OF_RANGE)
                .map_err(|e| format!("writing LBAs {last}-{blocks}: {e}"))?;
            let beyond = cdb::block_command(size.write_opcode(), size, 0, blocks, 1);
            dev.execute_expecting(&beyond, &data[..dev.block_size as usize], 0, sense::LBA_OUT_OF_RANGE)
                .map_err(|e| format!("writing LBA {blocks}: {e}"))?;
            Ok(())
        })
    });
    if size == CdbSize::Six {
        return;
    }
    suite.check_if(name("fua"), fua, move |dev, ()| write_lands(dev, size, FUA, multi));
    suite.check(name("zero-length"), move |dev| {
        dev.expect_effect(Span::new(0, 1), Effect::Unchanged, |dev, _| {
            let cdb = cdb::block_command(size.write_opcode(), size, 0, 0, 0);
            expect::good(&dev.execute(&cdb, &[], 0)?)
        })
    });
}

/// Where the multi-block checks transfer: the middle of the medium.
fn multi_block_span(dev: &Device<'_>) -> Span {
    let blocks = dev.caps.max_transfer().map_or(MULTI_BLOCKS, |max| max.min(MULTI_BLOCKS));
    Span::new(dev.blocks / 2, blocks)
}

pub(super) fn run(suite: &mut Suite<'_>) {
    for size in CdbSize::ALL {
        register_reads(suite, size);
    }
    let too_long = match suite.dev.caps.max_transfer() {
        Some(max) if u64::from(max) < suite.dev.blocks && max < 0xFFFF => Ok(max + 1),
        Some(max) => Err(format!("MAXIMUM TRANSFER LENGTH {max} cannot be exceeded within a READ(10) on this medium")),
        None => Err("VPD page B0h reports no MAXIMUM TRANSFER LENGTH".to_string()),
    };
    suite.check_if("read10.over-max-transfer-length", too_long, |dev, blocks| {
        let cdb = read_cdb(CdbSize::Ten, Span::new(0, blocks));
        dev.execute_expecting(&cdb, &[], dev.bytes(blocks), sense::INVALID_FIELD_IN_CDB)?;
        Ok(())
    });
    suite.check("read16.lba-wraps", |dev| {
        let cdb = read_cdb(CdbSize::Sixteen, Span::new(u64::MAX, 2));
        dev.execute_expecting(&cdb, &[], dev.bytes(2), sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
    if suite.dev.read_only {
        return;
    }
    for size in CdbSize::ALL {
        register_writes(suite, size);
    }
    suite.check("write16.lba-wraps", |dev| {
        // LBA 2^64-1 plus two blocks wraps to LBA 0 in 64-bit arithmetic.
        dev.expect_effect(Span::new(0, 1), Effect::Unchanged, |dev, _| {
            let data = pattern::blocks(0, 2, dev.block_size, cdb::op::WRITE_16);
            let cdb = cdb::block_command(cdb::op::WRITE_16, CdbSize::Sixteen, 0, u64::MAX, 2);
            dev.execute_expecting(&cdb, &data, 0, sense::LBA_OUT_OF_RANGE)?;
            Ok(())
        })
    });
}
