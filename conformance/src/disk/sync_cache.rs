//! SYNCHRONIZE CACHE(10) and (16) (SBC-3 5.22, 5.23).

use super::device::Span;
use super::suite::Suite;
use crate::cdb::{self, CdbSize};
use crate::expect;
use crate::sense;

fn sync_cdb(size: CdbSize, span: Span) -> Vec<u8> {
    let opcode = if size == CdbSize::Ten { cdb::op::SYNCHRONIZE_CACHE_10 } else { cdb::op::SYNCHRONIZE_CACHE_16 };
    cdb::block_command(opcode, size, 0, span.lba, span.blocks)
}

fn register(suite: &mut Suite<'_>, size: CdbSize) {
    let name = |case: &str| format!("synchronize-cache{}.{case}", size.len());
    let last = suite.dev.last_lba();
    let middle = suite.dev.blocks / 2;
    // NUMBER OF LOGICAL BLOCKS 0: from the LBA to the end of the medium.
    suite.check(name("whole-medium"), move |dev| {
        expect::good(&dev.execute(&sync_cdb(size, Span::new(0, 0)), &[], 0)?)
    });
    suite
        .check(name("range"), move |dev| expect::good(&dev.execute(&sync_cdb(size, Span::new(middle, 16)), &[], 0)?));
    suite.check(name("past-end"), move |dev| {
        dev.execute_expecting(&sync_cdb(size, Span::new(last, 2)), &[], 0, sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
}

pub(super) fn run(suite: &mut Suite<'_>) {
    register(suite, CdbSize::Ten);
    register(suite, CdbSize::Sixteen);
}
