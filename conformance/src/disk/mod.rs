//! The SBC-3 disk suite: what `tcmu-wasm check` runs for handlers that
//! describe themselves as disks.
//!
//! Each module covers one command family and registers its checks in the
//! order they run. Checks that only apply to some devices (read-only ones,
//! ones that support UNMAP, targets that can resize) either are left out
//! (the read-only and writable variants replace each other) or are
//! reported as skipped with the device's own reason.

mod allocation;
mod basics;
mod capabilities;
mod capacity;
mod compare_and_write;
mod device;
mod inquiry;
mod mode;
mod opcodes;
mod read_only;
mod read_write;
mod resize;
mod suite;
mod sync_cache;
mod unmap;
mod verify;
mod vpd;
mod write_same;

use capabilities::Capabilities;
use device::Device;
use suite::Suite;

use crate::cdb;
use crate::outcome::CheckOutcome;
use crate::sense::{KEY_UNIT_ATTENTION, Sense};
use crate::target::{STATUS_CHECK_CONDITION, ScsiTarget};

/// What the operator configured for the disk under test; the suite holds
/// the device's answers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskParams {
    /// Capacity in bytes (the device has `size_bytes / block_size` blocks).
    pub size_bytes: u64,
    /// Logical block length in bytes.
    pub block_size: u32,
    /// Whether the device was configured read-only.
    pub read_only: bool,
}

/// The suite spreads its checks over the medium and needs this many blocks.
pub const DISK_MIN_BLOCKS: u64 = 1024;
/// TEST UNIT READYs spent clearing unit attentions left from before the run
/// (power on, reset), so they do not land on the first check.
const UNIT_ATTENTION_RETRIES: usize = 4;

/// Run the disk suite against `target` and return one outcome per check,
/// in the order they ran.
///
/// The checks, by family: TEST UNIT READY, REQUEST SENSE, START STOP UNIT,
/// PREVENT ALLOW MEDIUM REMOVAL and rejection of unknown opcodes and
/// service actions; standard INQUIRY and VPD pages 00h, 80h, 83h, B0h,
/// B1h, B2h; READ CAPACITY(10/16) against `params`; MODE SENSE(6/10) and a
/// MODE SELECT round trip of WCE; REPORT SUPPORTED OPERATION CODES; short
/// allocation lengths; READ and WRITE(6/10/12/16) round trips at LBA 0,
/// the last LBA and across blocks, FUA, zero lengths and the end of the
/// medium; VERIFY(10/16); WRITE SAME(10/16); UNMAP; SYNCHRONIZE
/// CACHE(10/16); COMPARE AND WRITE; write protection when
/// `params.read_only`; and the unit attention and new capacity after
/// [`ScsiTarget::resize`].
///
/// Checks that write restore what they overwrote, MODE SELECT is undone and
/// a resize is reverted, so a writable device ends as it started unless a
/// check fails midway. Against an in-process target of 16 MiB the whole
/// run takes milliseconds.
pub fn disk_suite(target: &mut dyn ScsiTarget, params: &DiskParams) -> Vec<CheckOutcome> {
    if params.block_size == 0 || params.size_bytes / u64::from(params.block_size) < DISK_MIN_BLOCKS {
        let reason = format!(
            "{} bytes in blocks of {} is not the {DISK_MIN_BLOCKS} blocks the suite needs",
            params.size_bytes, params.block_size
        );
        return vec![CheckOutcome::fail("disk-parameters", reason)];
    }
    let blocks = params.size_bytes / u64::from(params.block_size);
    let mut dev = Device::new(target, params.block_size, blocks, params.read_only);
    clear_unit_attentions(&mut dev);
    dev.caps = Capabilities::probe(&mut dev);

    let mut suite = Suite::new(dev);
    basics::run(&mut suite);
    inquiry::run(&mut suite);
    capacity::run(&mut suite);
    mode::run(&mut suite);
    opcodes::run(&mut suite);
    allocation::run(&mut suite);
    read_write::run(&mut suite);
    verify::run(&mut suite);
    write_same::run(&mut suite);
    unmap::run(&mut suite);
    sync_cache::run(&mut suite);
    compare_and_write::run(&mut suite);
    read_only::run(&mut suite);
    resize::run(&mut suite, params.size_bytes);
    suite.into_outcomes()
}

/// Issue TEST UNIT READY until it stops reporting UNIT ATTENTION. Anything
/// else is left for the `test-unit-ready` check to report.
fn clear_unit_attentions(dev: &mut Device<'_>) {
    for _ in 0..UNIT_ATTENTION_RETRIES {
        let Ok(response) = dev.execute(&cdb::test_unit_ready(), &[], 0) else {
            return;
        };
        let unit_attention = response.status == STATUS_CHECK_CONDITION
            && Sense::decode(&response.sense).is_ok_and(|sense| sense.code.key == KEY_UNIT_ATTENTION);
        if !unit_attention {
            return;
        }
    }
}
