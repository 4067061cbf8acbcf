//! Resizing under the device (TCMU RECONFIG dev_size): the next command
//! reports UNIT ATTENTION, CAPACITY DATA HAS CHANGED, exactly
//! once, and READ CAPACITY follows the new size.

use super::capacity::{expect_capacity10, expect_capacity16};
use super::device::{Device, Span};
use super::suite::Suite;
use crate::cdb::{self, CdbSize};
use crate::expect;
use crate::sense;

/// Blocks the medium grows by.
const GROWTH_BLOCKS: u64 = 256;

/// The unit attention must come with the next command, and only with it.
fn expect_one_unit_attention(dev: &mut Device<'_>) -> Result<(), String> {
    dev.execute_expecting(&cdb::test_unit_ready(), &[], 0, sense::CAPACITY_DATA_HAS_CHANGED)
        .map_err(|e| format!("first TEST UNIT READY after the resize: {e}"))?;
    let response = dev.execute(&cdb::test_unit_ready(), &[], 0)?;
    expect::good(&response).map_err(|e| format!("second TEST UNIT READY after the resize: {e}"))
}

pub(super) fn run(suite: &mut Suite<'_>, size_bytes: u64) {
    let block_size = suite.dev.block_size;
    let old_blocks = suite.dev.blocks;
    let new_blocks = old_blocks + GROWTH_BLOCKS;
    if let Err(reason) = suite.dev.resize(new_blocks * u64::from(block_size)) {
        suite.skip("resize", format!("the target cannot resize: {reason}"));
        return;
    }
    suite.check("resize.unit-attention-once", expect_one_unit_attention);
    suite.check("resize.read-capacity", move |dev| {
        expect_capacity16(dev, new_blocks, block_size)?;
        expect_capacity10(dev, new_blocks, block_size)
    });
    suite.check("resize.new-blocks-readable", move |dev| {
        dev.read(CdbSize::Sixteen, Span::new(new_blocks - 1, 1)).map(drop)
    });
    suite.check("resize.restore", move |dev| {
        dev.resize(size_bytes).map_err(|e| format!("shrinking back to {size_bytes} bytes: {e}"))?;
        expect_one_unit_attention(dev)?;
        expect_capacity16(dev, old_blocks, block_size).map(drop)
    });
}
