//! A read-only device refuses every command that would change the medium
//! with DATA PROTECT, WRITE PROTECTED, and the medium stays as it was.

use super::device::{Device, Effect, Span};
use super::suite::Suite;
use crate::cdb::{self, CdbSize};
use crate::expect;
use crate::pattern;
use crate::sense;

/// Run the would-be write `cdb` with `data_out` against `span`; it must be
/// refused and change nothing.
fn refused(dev: &mut Device<'_>, span: Span, cdb: &[u8], data_out: &[u8]) -> Result<(), String> {
    dev.expect_effect(span, Effect::Unchanged, |dev, _| {
        expect::sense(&dev.execute(cdb, data_out, 0)?, sense::WRITE_PROTECTED)?;
        Ok(())
    })
}

pub(super) fn run(suite: &mut Suite<'_>) {
    if !suite.dev.read_only {
        return;
    }
    let span = Span::new(suite.dev.blocks / 2, 1);
    for size in CdbSize::ALL {
        suite.check(format!("read-only.write{}", size.len()), move |dev| {
            let data = pattern::blocks(span.lba, 1, dev.block_size, size.write_opcode());
            refused(dev, span, &cdb::block_command(size.write_opcode(), size, 0, span.lba, 1), &data)
        });
    }
    suite.check("read-only.write-same16", move |dev| {
        let data = pattern::blocks(span.lba, 1, dev.block_size, cdb::op::WRITE_SAME_16);
        refused(dev, span, &cdb::block_command(cdb::op::WRITE_SAME_16, CdbSize::Sixteen, 0, span.lba, 1), &data)
    });
    let unmap = suite.dev.caps.unmap().map(drop);
    suite.check_if("read-only.unmap", unmap, move |dev, ()| {
        let list = cdb::unmap_parameter_list(&[(span.lba, 1)]);
        refused(dev, span, &cdb::unmap(0, list.len() as u16), &list)
    });
    let compare_and_write = suite.dev.caps.compare_and_write().map(drop);
    suite.check_if("read-only.compare-and-write", compare_and_write, move |dev, ()| {
        // The verify data matches, so only write protection can refuse it.
        let current = dev.read(CdbSize::Sixteen, span)?;
        let write = pattern::blocks(span.lba, 1, dev.block_size, cdb::op::COMPARE_AND_WRITE);
        refused(dev, span, &cdb::compare_and_write(span.lba, 1), &[current, write].concat())
    });
}
