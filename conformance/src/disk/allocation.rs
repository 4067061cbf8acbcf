//! Short allocation lengths (SPC-4 4.2.5.6): the device returns GOOD and
//! exactly the first ALLOCATION LENGTH bytes of what it would have sent,
//! length fields still describing the whole response.

use super::device::Device;
use super::opcodes::LIST_ALLOC;
use super::suite::Suite;
use crate::cdb::{self, ALL_MODE_PAGES, PageControl, Reporting};
use crate::expect::{self, be, ensure};

/// A command whose response starts with a header giving its length.
struct Truncation {
    name: &'static str,
    /// The CDB with a given allocation length.
    cdb_for: fn(u32) -> Vec<u8>,
    /// Room for the whole response.
    full: u32,
    /// The short allocation length under test.
    short: u32,
    /// The response length its header declares (READ CAPACITY(16), whose
    /// length is fixed, instead vouches for its contents).
    declared_len: fn(&Device<'_>, &[u8]) -> Result<u64, String>,
}

const TRUNCATIONS: [Truncation; 6] = [
    Truncation {
        name: "allocation.inquiry-5",
        cdb_for: |alloc| cdb::inquiry(false, 0, alloc as u16),
        full: 0xFF,
        short: 5,
        declared_len: |_, data| Ok(5 + be(data, 4..5)?),
    },
    Truncation {
        name: "allocation.vpd-00-4",
        cdb_for: |alloc| cdb::inquiry(true, 0, alloc as u16),
        full: 0xFF,
        short: 4,
        declared_len: |_, data| Ok(4 + be(data, 2..4)?),
    },
    Truncation {
        name: "allocation.mode-sense6-4",
        cdb_for: |alloc| cdb::mode_sense6(PageControl::Current, ALL_MODE_PAGES, alloc as u8),
        full: 0xFF,
        short: 4,
        declared_len: |_, data| Ok(1 + be(data, 0..1)?),
    },
    Truncation {
        name: "allocation.mode-sense10-8",
        cdb_for: |alloc| cdb::mode_sense10(PageControl::Current, ALL_MODE_PAGES, alloc as u16),
        full: 4096,
        short: 8,
        declared_len: |_, data| Ok(2 + be(data, 0..2)?),
    },
    Truncation {
        name: "allocation.read-capacity16-8",
        cdb_for: cdb::read_capacity16,
        full: 32,
        short: 8,
        declared_len: |dev, data| {
            let last_lba = be(data, 0..8)?;
            ensure!(
                last_lba == dev.last_lba(),
                "READ CAPACITY(16) reports last LBA {last_lba}, expected {}",
                dev.last_lba()
            );
            Ok(32)
        },
    },
    Truncation {
        name: "allocation.report-supported-opcodes-4",
        cdb_for: |alloc| cdb::report_supported_opcodes(Reporting::All, 0, 0, alloc),
        full: LIST_ALLOC,
        short: 4,
        declared_len: |_, data| Ok(4 + be(data, 0..4)?),
    },
];

impl Truncation {
    /// Fetch the response in full, which must be what its header declares,
    /// then with `short` bytes of room, which must be its first bytes.
    fn check(&self, dev: &mut Device<'_>) -> Result<(), String> {
        let complete = dev.execute_good(&(self.cdb_for)(self.full), &[], self.full)?;
        let declared = (self.declared_len)(dev, &complete)?;
        ensure!(
            complete.len() as u64 == declared.min(self.full.into()),
            "the full response's header accounts for {declared} bytes, {} returned",
            complete.len()
        );
        ensure!(
            complete.len() > self.short as usize,
            "the full response is only {} bytes, nothing to truncate at {}",
            complete.len(),
            self.short
        );
        let response = dev.execute(&(self.cdb_for)(self.short), &[], self.short)?;
        expect::good(&response)?;
        expect::same_bytes(
            &format!("{}-byte allocation", self.short),
            &response.data_in,
            &complete[..self.short as usize],
        )
    }
}

pub(super) fn run(suite: &mut Suite<'_>) {
    for truncation in &TRUNCATIONS {
        suite.check(truncation.name, |dev| truncation.check(dev));
    }
    suite.check("allocation.inquiry-0", |dev| {
        let response = dev.execute(&cdb::inquiry(false, 0, 0), &[], 0)?;
        expect::good(&response)?;
        expect::data_len(&response, 0)
    });
}
