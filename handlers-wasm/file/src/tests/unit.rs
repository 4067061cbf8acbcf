//! Opening, readiness, sense, unit attentions, power and capacity.

use tcmu_guest_sdk::scsi::opcode::*;
use tcmu_guest_sdk::sense::{
    CAPACITY_DATA_HAS_CHANGED, INVALID_COMMAND_OPERATION_CODE, INVALID_FIELD_IN_CDB, MEDIUM_NOT_PRESENT,
};

use super::*;

#[test]
fn open_requires_a_store() {
    let err = FileDisk::open("", &tcmu_guest_sdk::DeviceIdentity::from_name("t"), None).err().unwrap();
    assert!(err.contains("backing store"), "{err}");
}

#[test]
fn open_rejects_bad_config_and_tiny_stores() {
    let err = Rig::try_with("colour=blue", 4 * BS, false).err().unwrap();
    assert!(err.contains("unknown option \"colour\""), "{err}");
    let err = Rig::try_with("block_size=4096", 4095, false).err().unwrap();
    assert!(err.contains("smaller than one 4096-byte block"), "{err}");
}

#[test]
fn describes_itself_as_a_disk() {
    let info = FileDisk::describe();
    assert_eq!((info.name.as_str(), info.device_type), ("file", tcmu_guest_sdk::DeviceType::Disk));
}

#[test]
fn test_unit_ready_and_invalid_opcode() {
    let mut rig = Rig::new();
    rig.ok(&[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0);
    rig.fails(&[FORMAT_UNIT, 0, 0, 0, 0, 0], &[], 0, INVALID_COMMAND_OPERATION_CODE);
    rig.fails(&[], &[], 0, INVALID_COMMAND_OPERATION_CODE);
}

#[test]
fn request_sense_without_anything_pending() {
    let mut rig = Rig::new();
    let fixed = rig.ok(&[REQUEST_SENSE, 0, 0, 0, 252, 0], &[], 252);
    assert_eq!(fixed.len(), 18);
    assert_eq!((fixed[0], fixed[2], fixed[12], fixed[13]), (0x70, 0, 0, 0));
    let descriptor = rig.ok(&[REQUEST_SENSE, 1, 0, 0, 252, 0], &[], 252);
    assert_eq!(descriptor, [0x72, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(rig.ok(&[REQUEST_SENSE, 0, 0, 0, 8, 0], &[], 252).len(), 8);
}

#[test]
fn resize_raises_one_capacity_unit_attention() {
    let mut rig = Rig::new();
    rig.backing().medium.resize(2 * BLOCKS as usize * BS, 0);
    rig.disk.resized(2 * BLOCKS * BS as u64);
    // INQUIRY passes without consuming it.
    rig.ok(&[INQUIRY, 0, 0, 0, 36, 0], &[], 36);
    rig.fails(&[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0, CAPACITY_DATA_HAS_CHANGED);
    rig.ok(&[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(read_capacity_10(&mut rig), (2 * BLOCKS - 1, BS as u32));
}

#[test]
fn request_sense_reports_and_clears_the_unit_attention() {
    let mut rig = Rig::new();
    rig.disk.resized(BLOCKS * BS as u64);
    let sense = rig.ok(&[REQUEST_SENSE, 0, 0, 0, 18, 0], &[], 18);
    assert_eq!(sense_code(&sense), CAPACITY_DATA_HAS_CHANGED);
    rig.ok(&cdb10(READ_10, 0, 0, 1), &[], BS as u32);
}

#[test]
fn unit_attention_precedes_even_invalid_commands() {
    let mut rig = Rig::new();
    rig.disk.resized(BLOCKS * BS as u64);
    rig.fails(&[FORMAT_UNIT, 0, 0, 0, 0, 0], &[], 0, CAPACITY_DATA_HAS_CHANGED);
    rig.fails(&[FORMAT_UNIT, 0, 0, 0, 0, 0], &[], 0, INVALID_COMMAND_OPERATION_CODE);
}

fn read_capacity_10(rig: &mut Rig) -> (u64, u32) {
    let data = rig.ok(&[READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8);
    let be32 = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
    (be32(0).into(), be32(4))
}

fn read_capacity_16_cdb(allocation_length: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = SERVICE_ACTION_IN_16;
    c[1] = 0x10;
    c[10..14].copy_from_slice(&allocation_length.to_be_bytes());
    c
}

#[test]
fn read_capacity_reports_whole_blocks() {
    let mut rig = Rig::with("block_size=4096", 10 * 4096 + 1000);
    assert_eq!(read_capacity_10(&mut rig), (9, 4096));
    let data = rig.ok(&read_capacity_16_cdb(32), &[], 32);
    assert_eq!(&data[..8], &9u64.to_be_bytes());
    assert_eq!(&data[8..12], &4096u32.to_be_bytes());
    assert_eq!(data[14] & 0xc0, 0xc0, "LBPME and LBPRZ");
}

#[test]
fn read_capacity_field_checks() {
    let mut rig = Rig::new();
    // An LBA without PMI.
    rig.fails(&[READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0], &[], 8, INVALID_FIELD_IN_CDB);
    // Short allocation length: the start of the data, GOOD.
    let data = rig.ok(&read_capacity_16_cdb(12), &[], 32);
    assert_eq!(data.len(), 12);
}

#[test]
fn a_store_shrunk_below_one_block_has_no_medium() {
    let mut rig = Rig::new();
    rig.backing().medium.truncate(100);
    rig.disk.resized(100);
    rig.fails(&[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0, CAPACITY_DATA_HAS_CHANGED);
    rig.fails(&[TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0, MEDIUM_NOT_PRESENT);
    rig.fails(&read_capacity_16_cdb(32), &[], 32, MEDIUM_NOT_PRESENT);
}

#[test]
fn start_stop_unit() {
    let mut rig = Rig::new();
    rig.ok(&[START_STOP_UNIT, 0, 0, 0, 0x01, 0], &[], 0);
    assert_eq!(rig.backing().flushes, 0);
    rig.ok(&[START_STOP_UNIT, 1, 0, 0, 0x00, 0], &[], 0);
    assert_eq!(rig.backing().flushes, 1, "stopping flushes");
    rig.ok(&[START_STOP_UNIT, 0, 0, 0, 0x04, 0], &[], 0);
    assert_eq!(rig.backing().flushes, 1, "unless NO_FLUSH");
    // Still ready: there is nothing to spin down.
    rig.ok(&cdb10(READ_10, 0, 0, 1), &[], BS as u32);
    rig.fails(&[START_STOP_UNIT, 0, 0, 0, 0x02, 0], &[], 0, INVALID_FIELD_IN_CDB);
    rig.fails(&[START_STOP_UNIT, 0, 0, 0, 0x31, 0], &[], 0, INVALID_FIELD_IN_CDB);
}

#[test]
fn prevent_allow_medium_removal() {
    let mut rig = Rig::new();
    rig.ok(&[PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1, 0], &[], 0);
    rig.ok(&[PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0, 0], &[], 0);
    rig.fails(&[PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 2, 0], &[], 0, INVALID_FIELD_IN_CDB);
}

#[test]
fn close_flushes() {
    let mut rig = Rig::new();
    rig.disk.close();
    assert_eq!(rig.backing().flushes, 1);
}
