//! INQUIRY, its VPD pages, and REPORT SUPPORTED OPERATION CODES.

use tcmu_guest_sdk::scsi::opcode::*;
use tcmu_guest_sdk::scsi::vpd::NaaId;
use tcmu_guest_sdk::sense::{INVALID_COMMAND_OPERATION_CODE, INVALID_FIELD_IN_CDB};

use super::*;
use crate::commands::SUPPORTED_COMMANDS;

fn inquiry(evpd: bool, page: u8, allocation_length: u16) -> [u8; 6] {
    let [hi, lo] = allocation_length.to_be_bytes();
    [INQUIRY, u8::from(evpd), page, hi, lo, 0]
}

fn vpd(rig: &mut Rig, page: u8) -> Vec<u8> {
    let data = rig.ok(&inquiry(true, page, 1024), &[], 1024);
    assert_eq!(&data[..2], &[0x00, page]);
    assert_eq!(usize::from(u16::from_be_bytes([data[2], data[3]])), data.len() - 4);
    data
}

#[test]
fn standard_inquiry_defaults() {
    let mut rig = Rig::new();
    let data = rig.ok(&inquiry(false, 0, 255), &[], 255);
    assert_eq!(data.len(), 64);
    assert_eq!(data[0], 0x00, "direct-access device");
    assert_eq!(data[1], 0x00, "not removable");
    assert_eq!(data[2], 0x06, "SPC-4");
    assert_eq!(data[4] as usize, data.len() - 5);
    assert_eq!(&data[8..16], b"TCMUWASM");
    assert_eq!(&data[16..32], b"FILE DISK       ");
    assert_eq!(&data[58..64], &[0x00, 0xA0, 0x04, 0x60, 0x04, 0xC0]);
}

#[test]
fn inquiry_honours_vendor_and_product() {
    let mut rig = Rig::with("vendor=ACME,product=Warp Drive", 4 * BS);
    let data = rig.ok(&inquiry(false, 0, 36), &[], 36);
    assert_eq!(&data[8..32], b"ACME    Warp Drive      ");
}

#[test]
fn short_allocation_length_returns_the_start() {
    let mut rig = Rig::new();
    let full = rig.ok(&inquiry(false, 0, 255), &[], 255);
    let (done, data) = rig.run(&inquiry(false, 0, 5), &[], 5);
    assert_eq!(done, Completion::good_with_data(5));
    assert_eq!(data, full[..5]);
    let (done, _) = rig.run(&inquiry(true, 0x83, 0), &[], 0);
    assert_eq!(done, Completion::good());
}

#[test]
fn inquiry_field_errors() {
    let mut rig = Rig::new();
    let sense = rig.fails(&inquiry(false, 0x80, 255), &[], 255, INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), Some([0xc0, 0, 2]));
    rig.fails(&inquiry(true, 0x86, 255), &[], 255, INVALID_FIELD_IN_CDB);
}

#[test]
fn supported_vpd_pages_are_all_served() {
    let mut rig = Rig::new();
    let pages = vpd(&mut rig, 0x00)[4..].to_vec();
    assert_eq!(pages, [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]);
    for page in pages {
        vpd(&mut rig, page);
    }
}

#[test]
fn unit_serial_number_page() {
    let mut rig = Rig::with("serial=SN-0042", 4 * BS);
    assert_eq!(&vpd(&mut rig, 0x80)[4..], b"SN-0042");
}

/// The designators of a device identification page: (type, bytes).
fn designators(page: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut found = Vec::new();
    let mut rest = &page[4..];
    while !rest.is_empty() {
        let len = rest[3] as usize;
        assert_eq!(rest[1] & 0x30, 0, "associated with the logical unit");
        found.push((rest[1] & 0x0f, rest[4..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    found
}

#[test]
fn device_identification_derives_naa_from_serial() {
    let mut rig = Rig::with("serial=SN-0042", 4 * BS);
    let found = designators(&vpd(&mut rig, 0x83));
    assert_eq!(found[0], (0x3, NaaId::from_serial("SN-0042").as_bytes().to_vec()));
    assert_eq!(found[1].0, 0x1);
    assert!(found[1].1.starts_with(b"TCMUWASMSN-0042"));
}

#[test]
fn device_identification_uses_the_configured_wwn() {
    let mut rig = Rig::with("serial=a,wwn=naa.6001405aabbccddeeff0011223344556", 4 * BS);
    let found = designators(&vpd(&mut rig, 0x83));
    let wwn: NaaId = "naa.6001405aabbccddeeff0011223344556".parse().unwrap();
    assert_eq!(found[0], (0x3, wwn.as_bytes().to_vec()));
}

#[test]
fn block_limits_page() {
    let mut rig = Rig::with("block_size=4096", 16 * 4096);
    let page = vpd(&mut rig, 0xB0);
    let be32 = |at: usize| u32::from_be_bytes(page[at..at + 4].try_into().unwrap());
    assert_eq!(page[4] & 1, 1, "WSNZ");
    assert_eq!(page[5], 255, "maximum COMPARE AND WRITE length");
    assert_eq!(be32(8), u32::MAX / 4096, "maximum transfer length");
    assert_eq!(be32(20), (1 << 30) / 4096, "maximum unmap LBA count");
    assert_eq!(be32(24), 256, "maximum unmap block descriptor count");
    assert_eq!(u64::from_be_bytes(page[36..44].try_into().unwrap()), (1 << 30) / 4096);
}

#[test]
fn characteristics_and_provisioning_pages() {
    let mut rig = Rig::new();
    assert_eq!(&vpd(&mut rig, 0xB1)[4..6], &[0, 1], "non-rotating medium");
    let provisioning = vpd(&mut rig, 0xB2);
    assert_eq!(provisioning[5] & 0xe4, 0xe4, "LBPU, LBPWS, LBPWS10, LBPRZ");
    assert_eq!(provisioning[6] & 0x07, 2, "thin provisioned");
}

fn report_opcodes(options: u8, opcode: u8, service_action: u16, allocation_length: u32) -> [u8; 12] {
    let mut c = [MAINTENANCE_IN, 0x0c, options, opcode, 0, 0, 0, 0, 0, 0, 0, 0];
    c[4..6].copy_from_slice(&service_action.to_be_bytes());
    c[6..10].copy_from_slice(&allocation_length.to_be_bytes());
    c
}

#[test]
fn report_all_supported_operation_codes() {
    let mut rig = Rig::new();
    let data = rig.ok(&report_opcodes(0, 0, 0, 4096), &[], 4096);
    let listed = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
    assert_eq!(listed, 8 * SUPPORTED_COMMANDS.len());
    let opcodes: Vec<u8> = data[4..].chunks(8).map(|d| d[0]).collect();
    for expected in [READ_16, WRITE_16, UNMAP, COMPARE_AND_WRITE, SERVICE_ACTION_IN_16] {
        assert!(opcodes.contains(&expected), "{expected:#x} not listed");
    }
    // Truncated to the allocation length, with GOOD status.
    assert_eq!(rig.ok(&report_opcodes(0, 0, 0, 10), &[], 10), data[..10]);
}

#[test]
fn report_one_operation_code() {
    let mut rig = Rig::new();
    let data = rig.ok(&report_opcodes(1, READ_10, 0, 64), &[], 64);
    assert_eq!(&data[..4], &[0, 0x03, 0, 10]);
    assert_eq!(data[4], READ_10);
    let data = rig.ok(&report_opcodes(2, SERVICE_ACTION_IN_16, 0x10, 64), &[], 64);
    assert_eq!(&data[..6], &[0, 0x03, 0, 16, SERVICE_ACTION_IN_16, 0x10]);
    let data = rig.ok(&report_opcodes(1, FORMAT_UNIT, 0, 64), &[], 64);
    assert_eq!(data, [0, 0x01, 0, 0], "not supported");
    rig.fails(&report_opcodes(1, SERVICE_ACTION_IN_16, 0, 64), &[], 64, INVALID_FIELD_IN_CDB);
}

/// A CDB of the right length for `opcode` whose fields are all zero, but
/// for the service action.
fn probe_cdb(command: &tcmu_guest_sdk::scsi::supported::SupportedCommand) -> Vec<u8> {
    let mut cdb = vec![0u8; command.cdb_usage.len()];
    cdb[0] = command.opcode;
    if let Some(sa) = command.service_action {
        cdb[1] = sa as u8;
    }
    cdb
}

#[test]
fn reported_commands_are_exactly_the_dispatched_ones() {
    let mut rig = Rig::new();
    for command in SUPPORTED_COMMANDS {
        let (done, _) = rig.run(&probe_cdb(command), &vec![0; 4096], 4096);
        assert!(
            done.status == STATUS_GOOD || sense_code(&done.sense) != INVALID_COMMAND_OPERATION_CODE,
            "{:#04x} is listed but not dispatched",
            command.opcode
        );
    }
    for opcode in 0..=u8::MAX {
        if SUPPORTED_COMMANDS.iter().any(|c| c.opcode == opcode) {
            continue;
        }
        let cdb = [opcode; 16];
        rig.fails(&cdb, &[], 512, INVALID_COMMAND_OPERATION_CODE);
    }
}

#[test]
fn other_service_actions_are_invalid_fields() {
    let mut rig = Rig::new();
    let mut get_lba_status = cdb16(SERVICE_ACTION_IN_16, 0x12, 0, 0);
    get_lba_status[13] = 32;
    rig.fails(&get_lba_status, &[], 32, INVALID_FIELD_IN_CDB);
    let mut target_port_groups = report_opcodes(0, 0, 0, 64);
    target_port_groups[1] = 0x0a;
    rig.fails(&target_port_groups, &[], 64, INVALID_FIELD_IN_CDB);
}
