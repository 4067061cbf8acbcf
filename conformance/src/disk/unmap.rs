//! UNMAP (SBC-3 5.28): unmapped ranges, and the parameter list and range
//! checks that must leave the medium alone.

use super::device::{Device, Effect, Span};
use super::suite::Suite;
use crate::cdb::{self, ANCHOR};
use crate::expect::{self, ensure};
use crate::sense;
use crate::target::Response;

/// Blocks unmapped by the range check (or MAXIMUM UNMAP LBA COUNT, if less).
const UNMAP_BLOCKS: u32 = 8;
/// Length of the UNMAP parameter list header.
const HEADER_LEN: u16 = 8;

/// UNMAP with byte 1 `flags` and one block descriptor per range.
fn unmap(dev: &mut Device<'_>, flags: u8, ranges: &[(u64, u32)]) -> Result<Response, String> {
    let list = cdb::unmap_parameter_list(ranges);
    dev.execute(&cdb::unmap(flags, list.len() as u16), &list, 0)
}

pub(super) fn run(suite: &mut Suite<'_>) {
    if suite.dev.read_only {
        return;
    }
    let dev = &suite.dev;
    let (blocks, last) = (dev.blocks, dev.last_lba());
    let limits = dev.caps.unmap().cloned();
    let supported = || limits.as_ref().map(drop).map_err(Clone::clone);
    let anchor_supported = dev.caps.provisioning.as_ref().is_ok_and(|provisioning| provisioning.anchor);
    let zeroes = dev.caps.unmapped_reads_zero().is_ok();
    let max_lbas = limits.as_ref().map_or(0, |limits| limits.max_unmap_lbas);
    let span = Span::new(blocks / 4, UNMAP_BLOCKS.min(max_lbas.max(1)));

    suite.check_if("unmap.range", supported(), move |dev, ()| {
        // Without LBPRZ unmapped blocks may read back anything; only the neighbours are checked.
        let effect = if zeroes { Effect::Zeroed } else { Effect::Unspecified };
        dev.expect_effect(span, effect, |dev, _| expect::good(&unmap(dev, 0, &[(span.lba, span.blocks)])?))
    });
    suite.check_if("unmap.past-end", supported(), move |dev, ()| {
        dev.expect_effect(Span::new(last, 1), Effect::Unchanged, |dev, _| {
            expect::sense(&unmap(dev, 0, &[(last, 2)])?, sense::LBA_OUT_OF_RANGE)?;
            Ok(())
        })
    });
    suite.check_if("unmap.parameter-list-too-short", supported(), |dev, ()| {
        let list = cdb::unmap_parameter_list(&[]);
        let short = HEADER_LEN / 2;
        dev.execute_expecting(
            &cdb::unmap(0, short),
            &list[..usize::from(short)],
            0,
            sense::PARAMETER_LIST_LENGTH_ERROR,
        )?;
        Ok(())
    });
    suite.check_if("unmap.empty-parameter-list", supported(), |dev, ()| {
        expect::good(&dev.execute(&cdb::unmap(0, 0), &[], 0)?)
    });
    let anchor = supported().and_then(|()| {
        ensure!(!anchor_supported, "VPD page B2h reports ANC_SUP=1");
        Ok(())
    });
    suite.check_if("unmap.anchor-unsupported", anchor, move |dev, ()| {
        dev.expect_effect(span, Effect::Unchanged, |dev, _| {
            expect::sense(&unmap(dev, ANCHOR, &[(span.lba, span.blocks)])?, sense::INVALID_FIELD_IN_CDB)?;
            Ok(())
        })
    });
    let over_limit = limits.and_then(|limits| {
        let max = limits.max_unmap_lbas;
        ensure!(
            u64::from(max) < blocks,
            "MAXIMUM UNMAP LBA COUNT {max} cannot be exceeded on a medium of {blocks} blocks"
        );
        Ok(max + 1)
    });
    suite.check_if("unmap.over-max-lba-count", over_limit, |dev, count| {
        dev.expect_effect(Span::new(0, 1), Effect::Unchanged, |dev, _| {
            expect::sense(&unmap(dev, 0, &[(0, count)])?, sense::INVALID_FIELD_IN_PARAMETER_LIST)?;
            Ok(())
        })
    });
}
