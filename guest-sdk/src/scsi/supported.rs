//! REPORT SUPPORTED OPERATION CODES parameter data (SPC-4 6.35).
//!
//! A handler lists what it implements as a table of [`SupportedCommand`]s,
//! each with its CDB usage data: the CDB with a one in every bit the
//! device server looks at (the opcode and service action in their own
//! places). [`supported_operation_codes_data`] answers both the
//! all-commands and the one-command forms from that table.

use crate::scsi::bytes::{put_be16, put_be32};
use crate::scsi::cdb::{ReportSupportedOperationCodes, ReportingOptions};
use crate::scsi::opcode::has_service_action;
use crate::sense::Sense;

/// One command a handler implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedCommand {
    /// Operation code.
    pub opcode: u8,
    /// Service action, for opcodes that have them.
    pub service_action: Option<u16>,
    /// CDB usage data; its length is the CDB length.
    pub cdb_usage: &'static [u8],
}

impl SupportedCommand {
    /// A command without service action; the opcode is `cdb_usage[0]`.
    pub const fn new(cdb_usage: &'static [u8]) -> Self {
        Self { opcode: cdb_usage[0], service_action: None, cdb_usage }
    }

    /// A command with service action `service_action`; the opcode is
    /// `cdb_usage[0]`.
    pub const fn with_service_action(service_action: u16, cdb_usage: &'static [u8]) -> Self {
        Self { opcode: cdb_usage[0], service_action: Some(service_action), cdb_usage }
    }

    fn cdb_len(&self) -> u16 {
        self.cdb_usage.len() as u16
    }
}

/// A command timeouts descriptor that reports no timeouts (both zero:
/// "not specified"); handlers run one command at a time and cannot promise
/// more.
const TIMEOUTS_DESCRIPTOR: [u8; 12] = [0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// SUPPORT field values of the one-command format.
const NOT_SUPPORTED: u8 = 0b001;
const SUPPORTED_AS_STANDARD: u8 = 0b011;

/// Build the parameter data `request` asks for out of `commands`. Asking
/// for one opcode with the wrong reporting option for it (with or without
/// service action) is INVALID FIELD IN CDB; asking for an unsupported
/// command is not an error, its SUPPORT field says so. The result is not
/// cut to the allocation length.
pub fn supported_operation_codes_data(
    commands: &[SupportedCommand],
    request: &ReportSupportedOperationCodes,
) -> Result<Vec<u8>, Sense> {
    let timeouts = request.return_timeouts;
    let (opcode, service_action) = match request.options {
        ReportingOptions::All => return Ok(all_commands(commands, timeouts)),
        ReportingOptions::Opcode(opcode) if has_service_action(opcode) => {
            return Err(Sense::invalid_cdb_field(3, None));
        }
        ReportingOptions::Opcode(opcode) => (opcode, None),
        ReportingOptions::OpcodeServiceAction(opcode, _) if !has_service_action(opcode) => {
            return Err(Sense::invalid_cdb_field(3, None));
        }
        ReportingOptions::OpcodeServiceAction(opcode, sa) => (opcode, Some(sa)),
        ReportingOptions::OpcodeMaybeServiceAction(opcode, sa) => (opcode, has_service_action(opcode).then_some(sa)),
    };
    let found = commands.iter().find(|c| c.opcode == opcode && c.service_action == service_action);
    Ok(one_command(found, timeouts))
}

fn all_commands(commands: &[SupportedCommand], timeouts: bool) -> Vec<u8> {
    let descriptor_len = 8 + if timeouts { TIMEOUTS_DESCRIPTOR.len() } else { 0 };
    let mut data = vec![0u8; 4];
    for command in commands {
        let mut d = [0u8; 8];
        d[0] = command.opcode;
        put_be16(&mut d[2..], command.service_action.unwrap_or(0));
        d[5] = u8::from(timeouts) << 1 | u8::from(command.service_action.is_some());
        put_be16(&mut d[6..], command.cdb_len());
        data.extend_from_slice(&d);
        if timeouts {
            data.extend_from_slice(&TIMEOUTS_DESCRIPTOR);
        }
    }
    put_be32(&mut data, (commands.len() * descriptor_len) as u32);
    data
}

fn one_command(command: Option<&SupportedCommand>, timeouts: bool) -> Vec<u8> {
    let Some(command) = command else {
        return vec![0, NOT_SUPPORTED, 0, 0];
    };
    let mut data = vec![0, u8::from(timeouts) << 7 | SUPPORTED_AS_STANDARD, 0, 0];
    put_be16(&mut data[2..], command.cdb_len());
    data.extend_from_slice(command.cdb_usage);
    if timeouts {
        data.extend_from_slice(&TIMEOUTS_DESCRIPTOR);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::opcode::{self, service_action};

    const COMMANDS: &[SupportedCommand] = &[
        SupportedCommand::new(&[opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0]),
        SupportedCommand::with_service_action(
            service_action::READ_CAPACITY_16,
            &[
                opcode::SERVICE_ACTION_IN_16,
                0x10,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x01,
                0,
            ],
        ),
    ];

    fn request(options: ReportingOptions, return_timeouts: bool) -> ReportSupportedOperationCodes {
        ReportSupportedOperationCodes { return_timeouts, options, allocation_length: 4096 }
    }

    #[test]
    fn all_commands_format() {
        let d = supported_operation_codes_data(COMMANDS, &request(ReportingOptions::All, false)).unwrap();
        assert_eq!(d.len(), 4 + 16);
        assert_eq!(&d[..4], &[0, 0, 0, 16]);
        assert_eq!(&d[4..12], &[0x00, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&d[12..20], &[0x9e, 0, 0, 0x10, 0, 0x01, 0, 16]);
    }

    #[test]
    fn all_commands_with_timeouts() {
        let d = supported_operation_codes_data(COMMANDS, &request(ReportingOptions::All, true)).unwrap();
        assert_eq!(d.len(), 4 + 2 * 20);
        assert_eq!(&d[..4], &[0, 0, 0, 40]);
        assert_eq!(d[9], 0x02); // CTDP
        assert_eq!(&d[12..14], &[0, 0x0a]);
        assert_eq!(d[24 + 5], 0x03); // CTDP | SERVACTV
    }

    #[test]
    fn one_command_formats() {
        let d = supported_operation_codes_data(COMMANDS, &request(ReportingOptions::Opcode(0x00), false)).unwrap();
        assert_eq!(d, vec![0, 0x03, 0, 6, 0, 0, 0, 0, 0, 0]);
        let d =
            supported_operation_codes_data(COMMANDS, &request(ReportingOptions::OpcodeServiceAction(0x9e, 0x10), true))
                .unwrap();
        assert_eq!(&d[..4], &[0, 0x83, 0, 16]);
        assert_eq!(&d[4..6], &[0x9e, 0x10]);
        assert_eq!(d.len(), 4 + 16 + 12);
        let d = supported_operation_codes_data(
            COMMANDS,
            &request(ReportingOptions::OpcodeMaybeServiceAction(0x00, 7), false),
        )
        .unwrap();
        assert_eq!(d[1], 0x03, "the service action of an opcode without them is ignored");
    }

    #[test]
    fn one_command_not_supported() {
        let d = supported_operation_codes_data(COMMANDS, &request(ReportingOptions::Opcode(0x28), true)).unwrap();
        assert_eq!(d, vec![0, 0x01, 0, 0]);
        let d = supported_operation_codes_data(
            COMMANDS,
            &request(ReportingOptions::OpcodeServiceAction(0x9e, 0x12), false),
        )
        .unwrap();
        assert_eq!(d[1], 0x01);
    }

    #[test]
    fn wrong_option_for_opcode_is_invalid() {
        for options in [ReportingOptions::Opcode(0x9e), ReportingOptions::OpcodeServiceAction(0x00, 0)] {
            let err = supported_operation_codes_data(COMMANDS, &request(options, false)).unwrap_err();
            assert_eq!(err, Sense::invalid_cdb_field(3, None));
        }
    }
}
