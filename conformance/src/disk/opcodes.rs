//! REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) in its three reporting
//! options.

use super::device::Device;
use super::suite::Suite;
use crate::cdb::{self, Reporting, op, service_action};
use crate::expect::{self, be, ensure};
use crate::sense;

/// Allocation length for the all-commands list.
pub(crate) const LIST_ALLOC: u32 = 8192;
/// Allocation length for one-command reports.
const ONE_ALLOC: u32 = 64;
/// SUPPORT field values of a one-command report.
const NOT_SUPPORTED: u8 = 0b001;
const SUPPORTED_STANDARD: u8 = 0b011;
const SUPPORTED_VENDOR: u8 = 0b101;

/// One command descriptor of the all-commands list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    opcode: u8,
    service_action: Option<u16>,
    cdb_len: u16,
}

/// Commands a disk must list: (opcode, service action, CDB length).
const REQUIRED: [(u8, Option<u16>, u16); 9] = [
    (op::TEST_UNIT_READY, None, 6),
    (op::INQUIRY, None, 6),
    (op::READ_CAPACITY_10, None, 10),
    (op::READ_10, None, 10),
    (op::WRITE_10, None, 10),
    (op::READ_16, None, 16),
    (op::WRITE_16, None, 16),
    (op::SERVICE_ACTION_IN_16, Some(service_action::READ_CAPACITY_16 as u16), 16),
    (op::MAINTENANCE_IN, Some(service_action::REPORT_SUPPORTED_OPERATION_CODES as u16), 12),
];

/// The CDB length SPC-4 fixes for an opcode's group, where it fixes one.
fn group_cdb_len(opcode: u8) -> Option<u16> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

fn all_commands(dev: &mut Device<'_>) -> Result<Vec<Descriptor>, String> {
    let cdb = cdb::report_supported_opcodes(Reporting::All, 0, 0, LIST_ALLOC);
    let data = dev.execute_good(&cdb, &[], LIST_ALLOC)?;
    let declared = 4 + be(&data, 0..4)? as usize;
    ensure!(declared == data.len(), "COMMAND DATA LENGTH accounts for {declared} bytes, {} returned", data.len());
    let mut rest = &data[4..];
    let mut descriptors = Vec::new();
    while !rest.is_empty() {
        ensure!(rest.len() >= 8, "a command descriptor is cut off after {} bytes", rest.len());
        // CTDP: a 12-byte command timeouts descriptor follows, although RCTD was clear.
        ensure!(rest[5] & 0x02 == 0, "CTDP=1 for opcode 0x{:02X} although RCTD was clear", rest[0]);
        let service_action = (rest[5] & 0x01 != 0).then(|| be(rest, 2..4).map(|sa| sa as u16)).transpose()?;
        descriptors.push(Descriptor { opcode: rest[0], service_action, cdb_len: be(rest, 6..8)? as u16 });
        rest = &rest[8..];
    }
    Ok(descriptors)
}

fn check_all_commands(dev: &mut Device<'_>) -> Result<(), String> {
    let list = all_commands(dev)?;
    for (opcode, service_action, cdb_len) in REQUIRED {
        let found = list
            .iter()
            .find(|d| d.opcode == opcode && d.service_action == service_action)
            .ok_or_else(|| format!("opcode 0x{opcode:02X} service action {service_action:?} not listed"))?;
        ensure!(
            found.cdb_len == cdb_len,
            "opcode 0x{opcode:02X} listed with CDB length {} expected {cdb_len}",
            found.cdb_len
        );
    }
    for (i, descriptor) in list.iter().enumerate() {
        let Descriptor { opcode, service_action, cdb_len } = *descriptor;
        ensure!(opcode != op::UNKNOWN, "lists opcode 0x{opcode:02X}, which it rejects");
        ensure!(
            !list[..i].contains(descriptor),
            "opcode 0x{opcode:02X} service action {service_action:?} listed twice"
        );
        if let Some(expected) = group_cdb_len(opcode) {
            ensure!(
                cdb_len == expected,
                "opcode 0x{opcode:02X} listed with CDB length {cdb_len}, its group has {expected}"
            );
        }
    }
    Ok(())
}

/// A one-command report for a supported command: SUPPORT 011b or 101b and
/// a usage map of the command's length that starts with the opcode.
fn check_one_supported(
    dev: &mut Device<'_>,
    reporting: Reporting,
    opcode: u8,
    action: u16,
    cdb_len: u16,
) -> Result<(), String> {
    let cdb = cdb::report_supported_opcodes(reporting, opcode, action, ONE_ALLOC);
    let data = dev.execute_good(&cdb, &[], ONE_ALLOC)?;
    let support = be(&data, 1..2)? as u8 & 0x07;
    ensure!(
        matches!(support, SUPPORTED_STANDARD | SUPPORTED_VENDOR),
        "SUPPORT {support:03b} for opcode 0x{opcode:02X}, expected 011b"
    );
    let size = be(&data, 2..4)?;
    ensure!(size == u64::from(cdb_len), "CDB SIZE {size} expected {cdb_len}");
    ensure!(data.len() == 4 + usize::from(cdb_len), "{} bytes returned, expected {}", data.len(), 4 + cdb_len);
    ensure!(data[4] == opcode, "CDB USAGE DATA starts with 0x{:02X}, expected the opcode", data[4]);
    Ok(())
}

pub(super) fn run(suite: &mut Suite<'_>) {
    suite.check("report-supported-opcodes.all", check_all_commands);
    suite.check("report-supported-opcodes.one-supported", |dev| {
        check_one_supported(dev, Reporting::OpcodeOnly, op::READ_10, 0, 10)
    });
    suite.check("report-supported-opcodes.service-action", |dev| {
        let action = service_action::READ_CAPACITY_16.into();
        check_one_supported(dev, Reporting::OpcodeAndServiceAction, op::SERVICE_ACTION_IN_16, action, 16)
    });
    suite.check("report-supported-opcodes.one-unsupported", |dev| {
        let cdb = cdb::report_supported_opcodes(Reporting::OpcodeOnly, op::UNKNOWN, 0, ONE_ALLOC);
        let data = dev.execute_good(&cdb, &[], ONE_ALLOC)?;
        let support = be(&data, 1..2)? as u8 & 0x07;
        ensure!(support == NOT_SUPPORTED, "SUPPORT {support:03b} for opcode 0x{:02X}, expected 001b", op::UNKNOWN);
        Ok(())
    });
    suite.check("report-supported-opcodes.service-action-required", |dev| {
        // Reporting option 001b names an opcode that has service actions.
        let cdb = cdb::report_supported_opcodes(Reporting::OpcodeOnly, op::SERVICE_ACTION_IN_16, 0, ONE_ALLOC);
        dev.execute_expecting(&cdb, &[], ONE_ALLOC, sense::INVALID_FIELD_IN_CDB)?;
        Ok(())
    });
    suite.check("report-supported-opcodes.reserved-reporting-options", |dev| {
        let cdb = cdb::report_supported_opcodes(Reporting::Reserved, 0, 0, ONE_ALLOC);
        let response = dev.execute(&cdb, &[], ONE_ALLOC)?;
        expect::sense(&response, sense::INVALID_FIELD_IN_CDB)?;
        Ok(())
    });
}
