//! REPORT SUPPORTED OPERATION CODES, from the table of what
//! [`FileDisk::execute`] dispatches, with each command's CDB usage data: a
//! one in every CDB bit the handler acts on. Bits it only checks to refuse
//! (RDPROTECT, ANCHOR, LOEJ, ...) are zero, telling initiators not to use
//! them.

use tcmu_guest_sdk::scsi::cdb::ReportSupportedOperationCodes;
use tcmu_guest_sdk::scsi::opcode::{self as op, service_action as sa};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::scsi::supported::{SupportedCommand, supported_operation_codes_data};
use tcmu_guest_sdk::{Command, Transfer};

use crate::{FileDisk, Outcome};

const F: u8 = 0xff;

/// Every command the handler implements, in opcode order.
pub(crate) const SUPPORTED_COMMANDS: &[SupportedCommand] = &[
    SupportedCommand::new(&[op::TEST_UNIT_READY, 0, 0, 0, 0, 0]),
    SupportedCommand::new(&[op::REQUEST_SENSE, 0x01, 0, 0, F, 0]),
    SupportedCommand::new(&[op::READ_6, 0x1f, F, F, F, 0]),
    SupportedCommand::new(&[op::WRITE_6, 0x1f, F, F, F, 0]),
    SupportedCommand::new(&[op::INQUIRY, 0x01, F, F, F, 0]),
    SupportedCommand::new(&[op::MODE_SELECT_6, 0x10, 0, 0, F, 0]),
    SupportedCommand::new(&[op::MODE_SENSE_6, 0x08, F, F, F, 0]),
    SupportedCommand::new(&[op::START_STOP_UNIT, 0x01, 0, 0, 0x05, 0]),
    SupportedCommand::new(&[op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x03, 0]),
    SupportedCommand::new(&[op::READ_CAPACITY_10, 0, F, F, F, F, 0, 0, 0x01, 0]),
    SupportedCommand::new(&[op::READ_10, 0x18, F, F, F, F, 0, F, F, 0]),
    SupportedCommand::new(&[op::WRITE_10, 0x18, F, F, F, F, 0, F, F, 0]),
    SupportedCommand::new(&[op::VERIFY_10, 0x16, F, F, F, F, 0, F, F, 0]),
    SupportedCommand::new(&[op::SYNCHRONIZE_CACHE_10, 0x02, F, F, F, F, 0, F, F, 0]),
    SupportedCommand::new(&[op::WRITE_SAME_10, 0x08, F, F, F, F, 0, F, F, 0]),
    SupportedCommand::new(&[op::UNMAP, 0, 0, 0, 0, 0, 0, F, F, 0]),
    SupportedCommand::new(&[op::MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, F, F, 0]),
    SupportedCommand::new(&[op::MODE_SENSE_10, 0x18, F, F, 0, 0, 0, F, F, 0]),
    SupportedCommand::new(&[op::READ_16, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::new(&[op::COMPARE_AND_WRITE, 0x18, F, F, F, F, F, F, F, F, 0, 0, 0, F, 0, 0]),
    SupportedCommand::new(&[op::WRITE_16, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::new(&[op::VERIFY_16, 0x16, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::new(&[op::SYNCHRONIZE_CACHE_16, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::new(&[op::WRITE_SAME_16, 0x09, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::with_service_action(
        sa::READ_CAPACITY_16,
        &[op::SERVICE_ACTION_IN_16, sa::READ_CAPACITY_16 as u8, F, F, F, F, F, F, F, F, F, F, F, F, 0x01, 0],
    ),
    SupportedCommand::with_service_action(
        sa::REPORT_SUPPORTED_OPERATION_CODES,
        &[op::MAINTENANCE_IN, sa::REPORT_SUPPORTED_OPERATION_CODES as u8, 0x87, F, F, F, F, F, F, F, 0, 0],
    ),
    SupportedCommand::new(&[op::READ_12, 0x18, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::new(&[op::WRITE_12, 0x18, F, F, F, F, F, F, F, F, 0, 0]),
    SupportedCommand::new(&[op::VERIFY_12, 0x16, F, F, F, F, F, F, F, F, 0, 0]),
];

impl FileDisk {
    /// REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN; its other service
    /// actions are invalid fields).
    pub(crate) fn report_supported_operation_codes(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ReportSupportedOperationCodes::parse(cmd.cdb)?;
        let data = supported_operation_codes_data(SUPPORTED_COMMANDS, &request)?;
        Ok(respond(xfer, cmd, &data, request.allocation_length))
    }
}
