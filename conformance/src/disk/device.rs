//! The disk under test: the target, its geometry, and medium helpers that
//! plant known data, watch what a command did to it and put it back.

use super::capabilities::Capabilities;
use crate::cdb::{self, CdbSize};
use crate::expect::{self, ensure};
use crate::pattern;
use crate::sense::{Sense, SenseCode};
use crate::target::{Response, ScsiTarget};

/// Tag of the data planted before a command whose effect is checked.
const SEED_TAG: u8 = 0x5E;

/// A run of consecutive blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) lba: u64,
    pub(crate) blocks: u32,
}

impl Span {
    pub(crate) fn new(lba: u64, blocks: u32) -> Self {
        Self { lba, blocks }
    }

    /// One past the last LBA.
    fn end(self) -> u64 {
        self.lba + u64::from(self.blocks)
    }
}

/// What a command must have done to a span of the medium.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect<'a> {
    /// Nothing: the span holds what it held.
    Unchanged,
    /// The span holds exactly these bytes.
    Holds(&'a [u8]),
    /// The span reads back as zeroes.
    Zeroed,
    /// Anything may be in the span; only its neighbours must be untouched.
    Unspecified,
}

/// The disk under test.
pub(crate) struct Device<'t> {
    target: &'t mut dyn ScsiTarget,
    pub(crate) block_size: u32,
    /// Capacity in blocks as configured (not as the device reports it).
    pub(crate) blocks: u64,
    pub(crate) read_only: bool,
    pub(crate) caps: Capabilities,
}

impl<'t> Device<'t> {
    pub(crate) fn new(target: &'t mut dyn ScsiTarget, block_size: u32, blocks: u64, read_only: bool) -> Self {
        Self { target, block_size, blocks, read_only, caps: Capabilities::default() }
    }

    /// Run one command; a transport failure becomes the check's failure.
    pub(crate) fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let response = self
            .target
            .execute(cdb, data_out, data_in_len)
            .map_err(|e| format!("transport failure on opcode 0x{:02X}: {e}", cdb[0]))?;
        ensure!(
            response.data_in.len() <= data_in_len as usize,
            "opcode 0x{:02X} returned {} bytes of data-in into a {data_in_len}-byte buffer",
            cdb[0],
            response.data_in.len()
        );
        Ok(response)
    }

    /// Run one command that must end GOOD; returns its data-in.
    pub(crate) fn execute_good(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Vec<u8>, String> {
        let response = self.execute(cdb, data_out, data_in_len)?;
        expect::good(&response).map_err(|e| format!("opcode 0x{:02X}: {e}", cdb[0]))?;
        Ok(response.data_in)
    }

    /// Run one command that must end in CHECK CONDITION with `code`.
    pub(crate) fn execute_expecting(
        &mut self,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: u32,
        code: SenseCode,
    ) -> Result<Sense, String> {
        let response = self.execute(cdb, data_out, data_in_len)?;
        expect::sense(&response, code)
    }

    /// Ask the target to change the device's size.
    pub(crate) fn resize(&mut self, new_size: u64) -> Result<(), String> {
        self.target.resize(new_size)
    }

    pub(crate) fn last_lba(&self) -> u64 {
        self.blocks - 1
    }

    /// Bytes in `blocks` blocks.
    pub(crate) fn bytes(&self, blocks: u32) -> u32 {
        blocks * self.block_size
    }

    /// READ a span with a CDB of `size`, which must return GOOD and exactly
    /// the span's bytes.
    pub(crate) fn read(&mut self, size: CdbSize, span: Span) -> Result<Vec<u8>, String> {
        let cdb = cdb::block_command(size.read_opcode(), size, 0, span.lba, span.blocks);
        let response = self.execute(&cdb, &[], self.bytes(span.blocks))?;
        expect::good(&response).map_err(|e| format!("READ({}) of LBA {}: {e}", size.len(), span.lba))?;
        expect::data_len(&response, self.bytes(span.blocks) as usize)
            .map_err(|e| format!("READ({}) of LBA {}: {e}", size.len(), span.lba))?;
        Ok(response.data_in)
    }

    /// WRITE(16) `data` at `lba`, which must return GOOD.
    pub(crate) fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), String> {
        let blocks = data.len() as u32 / self.block_size;
        let cdb = cdb::block_command(CdbSize::Sixteen.write_opcode(), CdbSize::Sixteen, 0, lba, blocks);
        let response = self.execute(&cdb, data, 0)?;
        expect::good(&response).map_err(|e| format!("WRITE(16) of LBA {lba}: {e}"))
    }

    /// Plant recognizable data (tagged `tag`) in `span`, run `check` with
    /// it, and put the old data back. A read-only device cannot be planted
    /// on, so there `check` gets what a READ of size `cross_check` returns;
    /// pick a size other than the one under test.
    pub(crate) fn with_known_data(
        &mut self,
        span: Span,
        tag: u8,
        cross_check: CdbSize,
        check: impl FnOnce(&mut Self, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.read_only {
            let data = self.read(cross_check, span)?;
            return check(self, &data);
        }
        let saved = self.read(CdbSize::Sixteen, span)?;
        let data = pattern::blocks(span.lba, span.blocks, self.block_size, tag);
        let outcome = self.write(span.lba, &data).and_then(|()| check(self, &data));
        self.restore(span.lba, &saved, outcome)
    }

    /// Run `command` and check its `effect` on `span` and that the block on
    /// either side of it is untouched. On a writable device the span is
    /// first planted with recognizable data, so a command that zeroes or
    /// scribbles is caught, and afterwards the old data goes back.
    /// `command` gets the span's contents from before it runs.
    pub(crate) fn expect_effect(
        &mut self,
        span: Span,
        effect: Effect<'_>,
        command: impl FnOnce(&mut Self, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        debug_assert!(span.blocks > 0 && span.end() <= self.blocks);
        let window = self.with_neighbours(span);
        if self.read_only {
            return self.run_and_compare(window, span, effect, command);
        }
        let saved = self.read(CdbSize::Sixteen, window)?;
        let seed = pattern::blocks(span.lba, span.blocks, self.block_size, SEED_TAG);
        let outcome = self.write(span.lba, &seed).and_then(|()| self.run_and_compare(window, span, effect, command));
        self.restore(window.lba, &saved, outcome)
    }

    fn run_and_compare(
        &mut self,
        window: Span,
        span: Span,
        effect: Effect<'_>,
        command: impl FnOnce(&mut Self, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let before = self.read(CdbSize::Sixteen, window)?;
        let start = ((span.lba - window.lba) * u64::from(self.block_size)) as usize;
        let in_span = start..start + self.bytes(span.blocks) as usize;
        command(self, &before[in_span.clone()])?;
        let after = self.read(CdbSize::Sixteen, window)?;
        let mut expected = before;
        match effect {
            Effect::Unchanged => {}
            Effect::Holds(data) => expected[in_span].copy_from_slice(data),
            Effect::Zeroed => expected[in_span].fill(0),
            Effect::Unspecified => expected[in_span.clone()].copy_from_slice(&after[in_span]),
        }
        expect::same_blocks(&after, &expected, window.lba, self.block_size)
            .map_err(|e| format!("medium afterwards: {e}"))
    }

    /// `span` grown by one block on each side, within the medium.
    fn with_neighbours(&self, span: Span) -> Span {
        let first = span.lba.saturating_sub(1);
        let end = (span.end() + 1).min(self.blocks);
        Span::new(first, (end - first) as u32)
    }

    /// Write `saved` back at `lba`, folding a failure into `outcome`.
    fn restore(&mut self, lba: u64, saved: &[u8], outcome: Result<(), String>) -> Result<(), String> {
        match (outcome, self.write(lba, saved)) {
            (outcome, Ok(())) => outcome,
            (Ok(()), Err(e)) => Err(format!("restoring the medium failed: {e}")),
            (Err(e), Err(restore)) => Err(format!("{e}; restoring the medium also failed: {restore}")),
        }
    }
}
