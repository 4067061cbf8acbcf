//! READ, WRITE and SYNCHRONIZE CACHE: the bulk path, zero-copy through the
//! guest.

use tcmu_guest_sdk::scsi::cdb::{ReadWrite, SynchronizeCache};
use tcmu_guest_sdk::{Command, Completion};

use crate::{FileDisk, Outcome, fits_buffer, read_failed, refuse_protection, write_failed};

impl FileDisk {
    /// READ(6/10/12/16). FUA needs nothing: every read comes from the store.
    pub(crate) fn read(&self, cmd: &Command<'_>) -> Outcome {
        let read = ReadWrite::parse(cmd.cdb)?;
        refuse_protection(read.protect)?;
        let extent = self.extent(read.lba, read.blocks.into())?;
        let len = fits_buffer(extent.len, cmd.data_in_len)?;
        if len > 0 {
            self.store.read_to_data_in(extent.offset, len, 0).map_err(|e| read_failed("read", e))?;
        }
        Ok(Completion::good_with_data(len))
    }

    /// WRITE(6/10/12/16).
    pub(crate) fn write(&self, cmd: &Command<'_>) -> Outcome {
        let write = ReadWrite::parse(cmd.cdb)?;
        refuse_protection(write.protect)?;
        self.check_writable()?;
        let extent = self.extent(write.lba, write.blocks.into())?;
        let len = fits_buffer(extent.len, cmd.data_out_len)?;
        if len == 0 {
            return Ok(Completion::good());
        }
        self.store.write_from_data_out(extent.offset, len, 0).map_err(|e| write_failed("write", e))?;
        self.complete_write(write.fua)
    }

    /// SYNCHRONIZE CACHE(10/16). The store flushes as a whole, so the range
    /// is only checked; IMMED changes nothing since the flush is quick to
    /// start and the status follows it.
    pub(crate) fn synchronize_cache(&self, cmd: &Command<'_>) -> Outcome {
        let sync = SynchronizeCache::parse(cmd.cdb)?;
        self.extent(sync.lba, sync.blocks.into())?;
        self.store.flush().map_err(|e| write_failed("flush", e))?;
        Ok(Completion::good())
    }
}
