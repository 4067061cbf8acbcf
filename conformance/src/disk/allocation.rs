//! Short allocation lengths (SPC-4 4.2.5.6): the device returns GOOD and
//! exactly the first ALLOCATION LENGTH bytes of what it would have sent,
//! length fields still describing the whole response.

use super::device::Device;
use super::opcodes::LIST_ALLOC;
use super::suite::Suite;
use crate::cdb::{self, ALL_MODE_PAGES, PageControl, Reporting};
use crate::expect::{self, ensure};

/// Fetch a response in full and with `short` bytes of room; the short one
/// must be the full one's first `short` bytes.
fn truncated(dev: &mut Device<'_>, cdb_for: impl Fn(u32) -> Vec<u8>, full: u32, short: u32) -> Result<(), String> {
    let complete = dev.execute_good(&cdb_for(full), &[], full)?;
    ensure!(
        complete.len() > short as usize,
        "the full response is only {} bytes, nothing to truncate at {short}",
        complete.len()
    );
    let response = dev.execute(&cdb_for(short), &[], short)?;
    expect::good(&response)?;
    expect::same_bytes(
        &format!("{short}-byte allocation"),
        &response.data_in,
        &complete[..short as usize],
    )
}

pub(super) fn run(suite: &mut Suite<'_>) {
    suite.check("allocation.inquiry-5", |dev| {
        truncated(dev, |alloc| cdb::inquiry(false, 0, alloc as u16), 0xFF, 5)
    });
    suite.check("allocation.inquiry-0", |dev| {
        let response = dev.execute(&cdb::inquiry(false, 0, 0), &[], 0)?;
        expect::good(&response)?;
        expect::data_len(&response, 0)
    });
    suite.check("allocation.vpd-00-4", |dev| {
        truncated(dev, |alloc| cdb::inquiry(true, 0, alloc as u16), 0xFF, 4)
    });
    suite.check("allocation.mode-sense6-4", |dev| {
        truncated(dev, |alloc| cdb::mode_sense6(PageControl::Current, ALL_MODE_PAGES, alloc as u8), 0xFF, 4)
    });
    suite.check("allocation.mode-sense10-8", |dev| {
        truncated(dev, |alloc| cdb::mode_sense10(PageControl::Current, ALL_MODE_PAGES, alloc as u16), 4096, 8)
    });
    suite.check("allocation.read-capacity16-8", |dev| truncated(dev, cdb::read_capacity16, 32, 8));
    suite.check("allocation.report-supported-opcodes-4", |dev| {
        truncated(dev, |alloc| cdb::report_supported_opcodes(Reporting::All, 0, 0, alloc), LIST_ALLOC, 4)
    });
}
