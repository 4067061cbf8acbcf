//! What the device says it supports, learned once before the checks run.
//! Checks of optional features consult it and skip with the reason when the
//! device reports the feature absent; the pages themselves are checked by
//! their own checks.

use super::capacity::{self, Capacity16};
use super::device::Device;
use super::mode;
use super::vpd::{self, BlockLimits, Provisioning};
use crate::cdb::PageControl;

/// The device's own claims, each with why it is missing if it could not be read.
#[derive(Debug, Clone)]
pub(crate) struct Capabilities {
    pub(crate) limits: Result<BlockLimits, String>,
    pub(crate) provisioning: Result<Provisioning, String>,
    pub(crate) capacity: Result<Capacity16, String>,
    /// DPOFUA bit of the MODE SENSE header: DPO and FUA are supported.
    pub(crate) dpo_fua: Result<bool, String>,
}

impl Default for Capabilities {
    fn default() -> Self {
        fn unknown<T>() -> Result<T, String> {
            Err("not probed".into())
        }
        Self { limits: unknown(), provisioning: unknown(), capacity: unknown(), dpo_fua: unknown() }
    }
}

impl Capabilities {
    pub(crate) fn probe(dev: &mut Device<'_>) -> Self {
        Self {
            limits: vpd::fetch(dev, vpd::BLOCK_LIMITS).and_then(|page| BlockLimits::parse(&page)),
            provisioning: vpd::fetch(dev, vpd::LOGICAL_BLOCK_PROVISIONING).and_then(|page| Provisioning::parse(&page)),
            capacity: capacity::read_capacity16(dev),
            dpo_fua: mode::mode_sense6(dev, PageControl::Current, mode::CACHING_PAGE).map(|data| data.dpo_fua()),
        }
    }

    /// MAXIMUM TRANSFER LENGTH, when the device reports a limit.
    pub(crate) fn max_transfer(&self) -> Option<u32> {
        self.limits.as_ref().ok().map(|limits| limits.max_transfer).filter(|&max| max != 0)
    }

    /// `Ok` if FUA may be set on writes.
    pub(crate) fn fua(&self) -> Result<(), String> {
        match &self.dpo_fua {
            Ok(true) => Ok(()),
            Ok(false) => Err("MODE SENSE reports DPOFUA=0".into()),
            Err(e) => Err(format!("MODE SENSE failed: {e}")),
        }
    }

    /// The UNMAP limits, if the device supports UNMAP (VPD B2h LBPU).
    pub(crate) fn unmap(&self) -> Result<&BlockLimits, String> {
        let provisioning = self.provisioning.as_ref().map_err(|e| format!("no VPD page B2h: {e}"))?;
        if !provisioning.unmap {
            return Err("VPD page B2h reports LBPU=0 (UNMAP not supported)".into());
        }
        self.limits.as_ref().map_err(|e| format!("no VPD page B0h: {e}"))
    }

    /// `Ok` if unmapped blocks read back as zeroes (READ CAPACITY(16) LBPRZ).
    pub(crate) fn unmapped_reads_zero(&self) -> Result<(), String> {
        match &self.capacity {
            Ok(capacity) if capacity.unmapped_reads_zero => Ok(()),
            Ok(_) => Err("READ CAPACITY(16) reports LBPRZ=0: unmapped blocks read back unspecified data".into()),
            Err(e) => Err(format!("READ CAPACITY(16) failed: {e}")),
        }
    }

    /// MAXIMUM COMPARE AND WRITE LENGTH, if COMPARE AND WRITE is supported.
    pub(crate) fn compare_and_write(&self) -> Result<u8, String> {
        match &self.limits {
            Ok(limits) if limits.max_compare_and_write > 0 => Ok(limits.max_compare_and_write),
            Ok(_) => Err("VPD page B0h reports MAXIMUM COMPARE AND WRITE LENGTH 0 (not supported)".into()),
            Err(e) => Err(format!("no VPD page B0h: {e}")),
        }
    }
}
