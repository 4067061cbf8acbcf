//! VERIFY(10) and VERIFY(16) (SBC-3 5.33, 5.35): the range check without
//! data, and BYTCHK=1 comparison that must spot a single wrong byte.

use super::device::Span;
use super::suite::Suite;
use crate::cdb::{self, BYTCHK, CdbSize};
use crate::expect;
use crate::sense;

/// Blocks compared by the BYTCHK checks.
const COMPARED_BLOCKS: u32 = 4;

fn verify_cdb(size: CdbSize, flags: u8, span: Span) -> Vec<u8> {
    let opcode = if size == CdbSize::Ten { cdb::op::VERIFY_10 } else { cdb::op::VERIFY_16 };
    cdb::block_command(opcode, size, flags, span.lba, span.blocks)
}

fn register(suite: &mut Suite<'_>, size: CdbSize) {
    let name = |case: &str| format!("verify{}.{case}", size.len());
    let last = suite.dev.last_lba();
    let compared = Span::new(suite.dev.blocks / 3, COMPARED_BLOCKS);
    let tag = verify_cdb(size, 0, compared)[0];
    suite.check(name("no-byte-check"), move |dev| {
        let response = dev.execute(&verify_cdb(size, 0, Span::new(0, 8)), &[], 0)?;
        expect::good(&response)
    });
    suite.check(name("byte-check-match"), move |dev| {
        dev.with_known_data(compared, tag, CdbSize::Sixteen, |dev, data| {
            expect::good(&dev.execute(&verify_cdb(size, BYTCHK, compared), data, 0)?)
        })
    });
    suite.check(name("byte-check-miscompare"), move |dev| {
        dev.with_known_data(compared, tag, CdbSize::Sixteen, |dev, data| {
            let mut wrong = data.to_vec();
            wrong[dev.block_size as usize + 7] ^= 0xFF;
            let cdb = verify_cdb(size, BYTCHK, compared);
            dev.execute_expecting(&cdb, &wrong, 0, sense::MISCOMPARE_DURING_VERIFY)?;
            Ok(())
        })
    });
    suite.check(name("past-end"), move |dev| {
        let cdb = verify_cdb(size, 0, Span::new(last, 2));
        dev.execute_expecting(&cdb, &[], 0, sense::LBA_OUT_OF_RANGE)?;
        Ok(())
    });
}

pub(super) fn run(suite: &mut Suite<'_>) {
    register(suite, CdbSize::Ten);
    register(suite, CdbSize::Sixteen);
}
