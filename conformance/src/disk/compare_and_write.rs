//! COMPARE AND WRITE (SBC-3 5.2): the write happens only when the verify
//! data matches, and a miscompare names the first differing byte.

use super::device::{Device, Effect, Span};
use super::suite::Suite;
use crate::cdb;
use crate::expect::{self, ensure};
use crate::pattern;
use crate::sense;
use crate::target::Response;

/// Blocks compared and written (or MAXIMUM COMPARE AND WRITE LENGTH, if less).
const BLOCKS: u8 = 2;
/// Byte of the last compared block that the miscompare check changes.
const CHANGED_BYTE: usize = 13;

/// COMPARE AND WRITE of `verify` followed by `write` at `lba`.
fn compare_and_write(dev: &mut Device<'_>, lba: u64, verify: &[u8], write: &[u8]) -> Result<Response, String> {
    let blocks = (verify.len() / dev.block_size as usize) as u8;
    dev.execute(&cdb::compare_and_write(lba, blocks), &[verify, write].concat(), 0)
}

pub(super) fn run(suite: &mut Suite<'_>) {
    if suite.dev.read_only {
        return;
    }
    let supported = suite.dev.caps.compare_and_write();
    let blocks = supported.as_ref().map_or(1, |&max| max.min(BLOCKS));
    let span = Span::new(suite.dev.blocks / 2 + 64, blocks.into());
    let (last, end) = (suite.dev.last_lba(), suite.dev.blocks);
    let applies = || supported.as_ref().map(drop).map_err(Clone::clone);

    suite.check_if("compare-and-write.match-writes", applies(), move |dev, ()| {
        let new = pattern::blocks(span.lba, span.blocks, dev.block_size, cdb::op::COMPARE_AND_WRITE);
        dev.expect_effect(span, Effect::Holds(&new), |dev, before| {
            expect::good(&compare_and_write(dev, span.lba, before, &new)?)
        })
    });
    suite.check_if("compare-and-write.miscompare", applies(), move |dev, ()| {
        let new = pattern::blocks(span.lba, span.blocks, dev.block_size, cdb::op::COMPARE_AND_WRITE);
        dev.expect_effect(span, Effect::Unchanged, |dev, before| {
            let mut verify = before.to_vec();
            let offset = verify.len() - dev.block_size as usize + CHANGED_BYTE;
            verify[offset] ^= 0xFF;
            let sense =
                expect::sense(&compare_and_write(dev, span.lba, &verify, &new)?, sense::MISCOMPARE_DURING_VERIFY)?;
            ensure!(
                sense.information == Some(offset as u64),
                "INFORMATION {:?}, expected {offset} (offset of the first differing byte)",
                sense.information
            );
            Ok(())
        })
    });
    suite.check_if("compare-and-write.past-end", applies(), move |dev, ()| {
        // Straddle the end when two blocks are allowed, else start just past it.
        let (lba, blocks) = if blocks >= 2 { (last, 2) } else { (end, 1) };
        dev.expect_effect(Span::new(last, 1), Effect::Unchanged, |dev, before| {
            let verify = before.repeat(blocks);
            let write = pattern::blocks(lba, blocks as u32, dev.block_size, cdb::op::COMPARE_AND_WRITE);
            expect::sense(&compare_and_write(dev, lba, &verify, &write)?, sense::LBA_OUT_OF_RANGE)?;
            Ok(())
        })
    });
    suite.check_if("compare-and-write.zero-blocks", applies(), move |dev, ()| {
        dev.expect_effect(span, Effect::Unchanged, |dev, _| {
            expect::good(&dev.execute(&cdb::compare_and_write(span.lba, 0), &[], 0)?)
        })
    });
    let over_limit = supported.and_then(|max| {
        ensure!(max < u8::MAX, "MAXIMUM COMPARE AND WRITE LENGTH {max} cannot be exceeded");
        Ok(max + 1)
    });
    suite.check_if("compare-and-write.over-max-length", over_limit, move |dev, blocks| {
        let span = Span::new(span.lba, blocks.into());
        let new = pattern::blocks(span.lba, span.blocks, dev.block_size, cdb::op::COMPARE_AND_WRITE);
        dev.expect_effect(span, Effect::Unchanged, |dev, before| {
            expect::sense(&compare_and_write(dev, span.lba, before, &new)?, sense::INVALID_FIELD_IN_CDB)?;
            Ok(())
        })
    });
}
