//! WRITE SAME and UNMAP.

use tcmu_guest_sdk::scsi::opcode::*;
use tcmu_guest_sdk::sense::{
    INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAMETER_LIST, LBA_OUT_OF_RANGE, PARAMETER_LIST_LENGTH_ERROR,
    WRITE_PROTECTED,
};

use super::*;

#[test]
fn write_same_repeats_a_block() {
    let mut rig = Rig::new();
    let mut block = vec![0u8; BS];
    block[0] = 0xab;
    block[BS - 1] = 0xcd;
    rig.ok(&cdb10(WRITE_SAME_10, 0, 3, 5), &block, 0);
    assert_eq!(rig.medium(3 * BS, 5 * BS), block.repeat(5));
    // Neighbours untouched.
    assert_eq!(rig.medium(2 * BS, BS), Rig::new().medium(2 * BS, BS));
    assert_eq!(rig.medium(8 * BS, BS), Rig::new().medium(8 * BS, BS));
}

#[test]
fn write_same_repeats_across_pattern_chunks() {
    let blocks = 2048; // 1 MiB: several write_at chunks
    let mut rig = Rig::with("", blocks * BS);
    rig.ok(&cdb16(WRITE_SAME_16, 0, 0, blocks as u32), &blocks_of(0x42, 1), 0);
    assert!(rig.medium(0, blocks * BS).iter().all(|&b| b == 0x42));
}

#[test]
fn write_same_zeroes_write_or_unmap() {
    let mut rig = Rig::new();
    rig.ok(&cdb10(WRITE_SAME_10, 0, 0, 2), &blocks_of(0, 1), 0);
    assert_eq!(rig.backing().zeroings, vec![(0, 2 * BS as u64)]);
    rig.ok(&cdb16(WRITE_SAME_16, 0x08, 4, 2), &blocks_of(0, 1), 0);
    assert_eq!(rig.backing().discards, vec![(4 * BS as u64, 2 * BS as u64)]);
    assert_eq!(rig.medium(0, 2 * BS), blocks_of(0, 2));
    assert_eq!(rig.medium(4 * BS, 2 * BS), blocks_of(0, 2));
}

#[test]
fn write_same_with_unmap_still_writes_non_zero_data() {
    let mut rig = Rig::new();
    rig.ok(&cdb16(WRITE_SAME_16, 0x08, 0, 2), &blocks_of(9, 1), 0);
    assert_eq!(rig.medium(0, 2 * BS), blocks_of(9, 2));
    assert!(rig.backing().discards.is_empty());
}

#[test]
fn write_same_ndob_needs_no_data_out() {
    let mut rig = Rig::new();
    rig.ok(&cdb16(WRITE_SAME_16, 0x01, 1, 1), &[], 0);
    assert_eq!(rig.backing().zeroings, vec![(BS as u64, BS as u64)]);
    rig.ok(&cdb16(WRITE_SAME_16, 0x09, 2, 1), &[], 0);
    assert_eq!(rig.backing().discards, vec![(2 * BS as u64, BS as u64)]);
}

#[test]
fn write_same_refusals() {
    let mut rig = Rig::new();
    let block = blocks_of(1, 1);
    // ANCHOR is not supported.
    rig.fails(&cdb16(WRITE_SAME_16, 0x18, 0, 1), &block, 0, INVALID_FIELD_IN_CDB);
    // WSNZ: zero blocks is refused, with the pointer on the length field.
    let sense = rig.fails(&cdb10(WRITE_SAME_10, 0, 0, 0), &block, 0, INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), Some([0xc0, 0, 7]));
    let sense = rig.fails(&cdb16(WRITE_SAME_16, 0, 0, 0), &block, 0, INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), Some([0xc0, 0, 10]));
    // More than the block limits page allows.
    let too_many = (1u32 << 30) / BS as u32 + 1;
    rig.fails(&cdb16(WRITE_SAME_16, 0, 0, too_many), &block, 0, INVALID_FIELD_IN_CDB);
    // The obsolete PBDATA bit.
    rig.fails(&cdb10(WRITE_SAME_10, 0x04, 0, 1), &block, 0, INVALID_FIELD_IN_CDB);
    // No data-out block.
    rig.fails(&cdb10(WRITE_SAME_10, 0, 0, 1), &[], 0, INVALID_FIELD_IN_CDB);
    rig.fails(&cdb10(WRITE_SAME_10, 0, BLOCKS as u32 - 1, 2), &block, 0, LBA_OUT_OF_RANGE);

    let mut rig = Rig::with("ro", BLOCKS as usize * BS);
    rig.fails(&cdb10(WRITE_SAME_10, 0, 0, 1), &block, 0, WRITE_PROTECTED);
}

fn unmap_cdb(list_len: usize) -> [u8; 10] {
    cdb10(UNMAP, 0, 0, list_len as u16)
}

fn unmap_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let mut list = vec![0u8; 8];
    list[0..2].copy_from_slice(&((6 + 16 * ranges.len()) as u16).to_be_bytes());
    list[2..4].copy_from_slice(&((16 * ranges.len()) as u16).to_be_bytes());
    for &(lba, blocks) in ranges {
        list.extend_from_slice(&lba.to_be_bytes());
        list.extend_from_slice(&blocks.to_be_bytes());
        list.extend_from_slice(&[0; 4]);
    }
    list
}

#[test]
fn unmap_discards_every_range() {
    let mut rig = Rig::new();
    let list = unmap_list(&[(1, 2), (10, 0), (BLOCKS - 1, 1)]);
    rig.ok(&unmap_cdb(list.len()), &list, 0);
    assert_eq!(rig.backing().discards, vec![(BS as u64, 2 * BS as u64), ((BLOCKS - 1) * BS as u64, BS as u64)]);
    assert_eq!(rig.medium(BS, 2 * BS), blocks_of(0, 2));
}

#[test]
fn unmap_with_an_empty_list_does_nothing() {
    let mut rig = Rig::new();
    rig.ok(&unmap_cdb(0), &[], 0);
    assert!(rig.backing().discards.is_empty());
}

#[test]
fn unmap_checks_the_whole_list_first() {
    let mut rig = Rig::new();
    let list = unmap_list(&[(0, 1), (BLOCKS, 1)]);
    rig.fails(&unmap_cdb(list.len()), &list, 0, LBA_OUT_OF_RANGE);
    assert!(rig.backing().discards.is_empty());

    let max = (1u32 << 30) / BS as u32;
    let list = unmap_list(&[(0, 1), (1, max)]);
    let sense = rig.fails(&unmap_cdb(list.len()), &list, 0, INVALID_FIELD_IN_PARAMETER_LIST);
    assert_eq!(field_pointer(&sense), Some([0x80, 0, 8 + 16 + 8]));
    assert!(rig.backing().discards.is_empty());
}

#[test]
fn unmap_refusals() {
    let mut rig = Rig::new();
    rig.fails(&unmap_cdb(4), &[0; 4], 0, PARAMETER_LIST_LENGTH_ERROR);
    let list = unmap_list(&[(0, 1)]);
    rig.fails(&cdb10(UNMAP, 0x01, 0, list.len() as u16), &list, 0, INVALID_FIELD_IN_CDB);
    let too_many = unmap_list(&vec![(0, 0); 257]);
    rig.fails(&unmap_cdb(too_many.len()), &too_many, 0, INVALID_FIELD_IN_PARAMETER_LIST);

    let mut rig = Rig::with("ro", BLOCKS as usize * BS);
    rig.fails(&unmap_cdb(list.len()), &list, 0, WRITE_PROTECTED);
}

#[test]
fn unmap_reads_only_the_parameter_list_length() {
    let mut rig = Rig::new();
    // Two descriptors sent, but the CDB covers only the first.
    let list = unmap_list(&[(0, 1), (5, 1)]);
    rig.ok(&unmap_cdb(8 + 16), &list, 0);
    assert_eq!(rig.backing().discards, vec![(0, BS as u64)]);
}
