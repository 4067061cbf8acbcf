//! WRITE SAME(10) and (16) (SBC-3 5.40, 5.41): one block fills a range,
//! and with UNMAP the range reads back as zeroes.

use super::device::{Device, Effect, Span};
use super::suite::Suite;
use crate::cdb::{self, CdbSize, WRITE_SAME_UNMAP};
use crate::expect::{self, ensure};
use crate::pattern;
use crate::sense;

/// Blocks filled (or MAXIMUM WRITE SAME LENGTH, if less).
const FILL_BLOCKS: u32 = 16;

fn write_same_cdb(size: CdbSize, flags: u8, span: Span) -> Vec<u8> {
    let opcode = if size == CdbSize::Ten { cdb::op::WRITE_SAME_10 } else { cdb::op::WRITE_SAME_16 };
    cdb::block_command(opcode, size, flags, span.lba, span.blocks)
}

/// WRITE SAME with `flags` and the one-block `block` over `span`, which
/// must then show `effect`.
fn fill(
    dev: &mut Device<'_>,
    size: CdbSize,
    flags: u8,
    span: Span,
    block: &[u8],
    effect: Effect<'_>,
) -> Result<(), String> {
    dev.expect_effect(span, effect, |dev, _| {
        expect::good(&dev.execute(&write_same_cdb(size, flags, span), block, 0)?)
    })
}

/// `Ok` if WRITE SAME of `size` may unmap and unmapped blocks read zeroes.
fn unmap_reads_zero(dev: &Device<'_>, size: CdbSize) -> Result<(), String> {
    let provisioning = dev.caps.provisioning.as_ref().map_err(|e| format!("no VPD page B2h: {e}"))?;
    let (supported, bit) = match size {
        CdbSize::Ten => (provisioning.write_same10_unmap, "LBPWS10"),
        _ => (provisioning.write_same16_unmap, "LBPWS"),
    };
    ensure!(supported, "VPD page B2h reports {bit}=0 (WRITE SAME({}) cannot unmap)", size.len());
    dev.caps.unmapped_reads_zero()
}

fn register(suite: &mut Suite<'_>, size: CdbSize) {
    let dev = &suite.dev;
    let name = |case: &str| format!("write-same{}.{case}", size.len());
    let max = dev.caps.limits.as_ref().map_or(0, |limits| limits.max_write_same);
    let blocks = if max == 0 { FILL_BLOCKS } else { FILL_BLOCKS.min(max as u32) };
    let span = Span::new(dev.blocks / 3, blocks);
    let unmap = unmap_reads_zero(dev, size);
    suite.check(name("fill"), move |dev| {
        let block = pattern::blocks(span.lba, 1, dev.block_size, write_same_cdb(size, 0, span)[0]);
        let filled = block.repeat(span.blocks as usize);
        fill(dev, size, 0, span, &block, Effect::Holds(&filled))
    });
    suite.check_if(name("unmap"), unmap, move |dev, ()| {
        let zeroes = vec![0; dev.block_size as usize];
        fill(dev, size, WRITE_SAME_UNMAP, span, &zeroes, Effect::Zeroed)
    });
}

pub(super) fn run(suite: &mut Suite<'_>) {
    if suite.dev.read_only {
        return;
    }
    register(suite, CdbSize::Ten);
    register(suite, CdbSize::Sixteen);
    let last = suite.dev.last_lba();
    suite.check("write-same16.past-end", move |dev| {
        dev.expect_effect(Span::new(last, 1), Effect::Unchanged, |dev, _| {
            let block = pattern::blocks(last, 1, dev.block_size, cdb::op::WRITE_SAME_16);
            let cdb = write_same_cdb(CdbSize::Sixteen, 0, Span::new(last, 2));
            dev.execute_expecting(&cdb, &block, 0, sense::LBA_OUT_OF_RANGE)?;
            Ok(())
        })
    });
    let non_zero = match &suite.dev.caps.limits {
        Ok(limits) if limits.write_same_non_zero => Ok(()),
        Ok(_) => Err("VPD page B0h reports WSNZ=0: zero blocks means the rest of the medium, not exercised".into()),
        Err(e) => Err(format!("no VPD page B0h: {e}")),
    };
    let lba = suite.dev.blocks / 3;
    suite.check_if("write-same16.zero-blocks-rejected", non_zero, move |dev, ()| {
        dev.expect_effect(Span::new(lba, 1), Effect::Unchanged, |dev, _| {
            let block = pattern::blocks(lba, 1, dev.block_size, cdb::op::WRITE_SAME_16);
            let cdb = write_same_cdb(CdbSize::Sixteen, 0, Span::new(lba, 0));
            dev.execute_expecting(&cdb, &block, 0, sense::INVALID_FIELD_IN_CDB)?;
            Ok(())
        })
    });
}
