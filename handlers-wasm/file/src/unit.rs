//! Commands about the logical unit as a whole: readiness, sense, power
//! and capacity.

use tcmu_guest_sdk::scsi::capacity::{ReadCapacity16Data, read_capacity_10_data};
use tcmu_guest_sdk::scsi::cdb::{PreventAllowMediumRemoval, ReadCapacity10, ReadCapacity16, StartStopUnit};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::Sense;
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::{FileDisk, Outcome, write_failed};

impl FileDisk {
    /// TEST UNIT READY: ready whenever the store holds a block.
    pub(crate) fn test_unit_ready(&self) -> Outcome {
        self.last_lba()?;
        Ok(Completion::good())
    }

    /// REQUEST SENSE: the pending unit attention, which this clears, or NO
    /// SENSE. Sense from failed commands travels with their CHECK CONDITION
    /// (autosense), so there is nothing else to report.
    pub(crate) fn request_sense(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        self.spc.request_sense(cmd, xfer, None)
    }

    /// START STOP UNIT. A store has no spindle to stop, so the unit stays
    /// ready either way; stopping flushes the cache first unless NO_FLUSH
    /// says otherwise, which is the part initiators rely on at shutdown.
    /// Power conditions and eject are not supported.
    pub(crate) fn start_stop_unit(&self, cmd: &Command<'_>) -> Outcome {
        let ssu = StartStopUnit::parse(cmd.cdb)?;
        if ssu.power_condition != 0 {
            return Err(Sense::invalid_cdb_field(4, Some(7)));
        }
        if ssu.load_eject {
            return Err(Sense::invalid_cdb_field(4, Some(1))); // no removable medium
        }
        if !ssu.start && !ssu.no_flush {
            self.store.flush().map_err(|e| write_failed("flush before stop", e))?;
        }
        Ok(Completion::good())
    }

    /// PREVENT ALLOW MEDIUM REMOVAL: the medium cannot be removed anyway,
    /// so either request is satisfied as soon as it is valid.
    pub(crate) fn prevent_allow_medium_removal(&self, cmd: &Command<'_>) -> Outcome {
        PreventAllowMediumRemoval::parse(cmd.cdb)?;
        Ok(Completion::good())
    }

    /// READ CAPACITY(10). PMI asks for the last block before a delay;
    /// there are no delays, so the answer is always the last block.
    pub(crate) fn read_capacity_10(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        ReadCapacity10::parse(cmd.cdb)?;
        let data = read_capacity_10_data(self.last_lba()?, self.block_size());
        Ok(respond(xfer, cmd, &data, data.len() as u32))
    }

    /// READ CAPACITY(16), with logical block provisioning enabled.
    pub(crate) fn read_capacity_16(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ReadCapacity16::parse(cmd.cdb)?;
        let data = ReadCapacity16Data {
            last_lba: self.last_lba()?,
            block_length: self.block_size(),
            provisioning: true,
            unmapped_reads_zero: true,
            ..Default::default()
        }
        .to_bytes();
        Ok(respond(xfer, cmd, &data, request.allocation_length))
    }
}
