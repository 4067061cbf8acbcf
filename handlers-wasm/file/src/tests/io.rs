//! READ, WRITE, SYNCHRONIZE CACHE, VERIFY and COMPARE AND WRITE.

use tcmu_guest_sdk::scsi::opcode::*;
use tcmu_guest_sdk::sense::{
    INVALID_FIELD_IN_CDB, LBA_OUT_OF_RANGE, MISCOMPARE_DURING_VERIFY, UNRECOVERED_READ_ERROR, WRITE_ERROR,
    WRITE_PROTECTED,
};

use super::*;

#[test]
fn write_then_read_back_in_every_cdb_size() {
    let mut rig = Rig::new();
    let writes: [(Vec<u8>, Vec<u8>); 4] = [
        (vec![WRITE_6, 0, 0, 1, 1, 0], vec![READ_6, 0, 0, 1, 1, 0]),
        (cdb10(WRITE_10, 0, 2, 1).to_vec(), cdb10(READ_10, 0, 2, 1).to_vec()),
        (cdb12(WRITE_12, 0, 3, 1).to_vec(), cdb12(READ_12, 0, 3, 1).to_vec()),
        (cdb16(WRITE_16, 0, 4, 1).to_vec(), cdb16(READ_16, 0, 4, 1).to_vec()),
    ];
    for (fill, (write, read)) in (1u8..).zip(writes) {
        rig.ok(&write, &blocks_of(fill, 1), 0);
        assert_eq!(rig.ok(&read, &[], BS as u32), blocks_of(fill, 1), "{read:02x?}");
    }
    assert_eq!(rig.medium(BS, 4 * BS), [1, 2, 3, 4].iter().flat_map(|&f| blocks_of(f, 1)).collect::<Vec<_>>());
}

#[test]
fn reads_return_the_medium_and_never_pass_through_the_guest() {
    let mut rig = Rig::new();
    let expected = rig.medium(10 * BS, 3 * BS);
    assert_eq!(rig.ok(&cdb10(READ_10, 0, 10, 3), &[], 3 * BS as u32), expected);
    rig.ok(&cdb10(WRITE_10, 0, 10, 3), &blocks_of(9, 3), 0);
    assert_eq!(rig.backing().guest_copied_bytes, 0);
}

#[test]
fn read_6_transfer_length_zero_means_256_blocks() {
    let mut rig = Rig::with("", 300 * BS);
    let data = rig.ok(&[READ_6, 0, 0, 0, 0, 0], &[], 256 * BS as u32);
    assert_eq!(data.len(), 256 * BS);
}

#[test]
fn zero_transfer_length_transfers_nothing() {
    let mut rig = Rig::new();
    let (done, data) = rig.run(&cdb10(READ_10, 0, 5, 0), &[], 0);
    assert_eq!((done, data.len()), (Completion::good(), 0));
    let before = rig.medium(0, BLOCKS as usize * BS);
    rig.ok(&cdb16(WRITE_16, 0, 5, 0), &[], 0);
    assert_eq!(rig.medium(0, BLOCKS as usize * BS), before);
    // Zero blocks right at the capacity is still in range.
    rig.ok(&cdb10(READ_10, 0, BLOCKS as u32, 0), &[], 0);
}

#[test]
fn last_block_is_addressable_and_the_next_is_not() {
    let mut rig = Rig::new();
    let last = BLOCKS - 1;
    rig.ok(&cdb16(WRITE_16, 0, last, 1), &blocks_of(7, 1), 0);
    assert_eq!(rig.ok(&cdb16(READ_16, 0, last, 1), &[], BS as u32), blocks_of(7, 1));
    rig.fails(&cdb16(READ_16, 0, BLOCKS, 1), &[], BS as u32, LBA_OUT_OF_RANGE);
    rig.fails(&cdb16(READ_16, 0, last, 2), &[], 2 * BS as u32, LBA_OUT_OF_RANGE);
    rig.fails(&cdb16(WRITE_16, 0, BLOCKS, 1), &blocks_of(7, 1), 0, LBA_OUT_OF_RANGE);
    rig.fails(&cdb10(READ_10, 0, BLOCKS as u32 + 1, 0), &[], 0, LBA_OUT_OF_RANGE);
    // An LBA plus length that wraps around 2^64 is out of range, not block 0.
    rig.fails(&cdb16(READ_16, 0, u64::MAX, 2), &[], 2 * BS as u32, LBA_OUT_OF_RANGE);
}

#[test]
fn partial_trailing_block_is_not_addressable() {
    let mut rig = Rig::with("", 10 * BS + 100);
    rig.ok(&cdb10(READ_10, 0, 9, 1), &[], BS as u32);
    rig.fails(&cdb10(READ_10, 0, 10, 1), &[], BS as u32, LBA_OUT_OF_RANGE);
}

#[test]
fn buffers_smaller_than_the_transfer_are_refused() {
    let mut rig = Rig::new();
    rig.fails(&cdb10(READ_10, 0, 0, 2), &[], BS as u32, INVALID_FIELD_IN_CDB);
    let before = rig.medium(0, 2 * BS);
    rig.fails(&cdb10(WRITE_10, 0, 0, 2), &blocks_of(1, 1), 0, INVALID_FIELD_IN_CDB);
    assert_eq!(rig.medium(0, 2 * BS), before);
}

#[test]
fn larger_data_in_buffer_reports_what_was_read() {
    let mut rig = Rig::new();
    let (done, data) = rig.run(&cdb10(READ_10, 0, 0, 1), &[], 4 * BS as u32);
    assert_eq!(done, Completion::good_with_data(BS as u32));
    assert_eq!(data, rig.medium(0, BS));
}

#[test]
fn protection_information_is_refused() {
    let mut rig = Rig::new();
    let sense = rig.fails(&cdb10(READ_10, 0x20, 0, 1), &[], BS as u32, INVALID_FIELD_IN_CDB);
    assert_eq!(field_pointer(&sense), Some([0xc0 | 0x08 | 7, 0, 1]));
    rig.fails(&cdb16(WRITE_16, 0x40, 0, 1), &blocks_of(1, 1), 0, INVALID_FIELD_IN_CDB);
}

#[test]
fn fua_flushes_and_the_write_cache_defers() {
    let mut rig = Rig::new();
    rig.ok(&cdb10(WRITE_10, 0, 0, 1), &blocks_of(1, 1), 0);
    assert_eq!(rig.backing().flushes, 0);
    rig.ok(&cdb10(WRITE_10, 0x08, 0, 1), &blocks_of(1, 1), 0);
    assert_eq!(rig.backing().flushes, 1);
    // FUA on a read needs no flush: reads always come from the store.
    rig.ok(&cdb10(READ_10, 0x08, 0, 1), &[], BS as u32);
    assert_eq!(rig.backing().flushes, 1);
}

#[test]
fn writes_are_refused_when_read_only() {
    for (config, store_read_only) in [("ro", false), ("", true)] {
        let mut rig = Rig::try_with(config, BLOCKS as usize * BS, store_read_only).unwrap();
        let before = rig.medium(0, BS);
        rig.fails(&cdb10(WRITE_10, 0, 0, 1), &blocks_of(1, 1), 0, WRITE_PROTECTED);
        rig.fails(&[WRITE_6, 0, 0, 0, 1, 0], &blocks_of(1, 1), 0, WRITE_PROTECTED);
        assert_eq!(rig.medium(0, BS), before);
        rig.ok(&cdb10(READ_10, 0, 0, 1), &[], BS as u32);
    }
}

#[test]
fn io_errors_become_medium_errors() {
    let mut rig = Rig::new();
    rig.backing().broken = true;
    rig.fails(&cdb10(READ_10, 0, 0, 1), &[], BS as u32, UNRECOVERED_READ_ERROR);
    rig.fails(&cdb10(WRITE_10, 0, 0, 1), &blocks_of(1, 1), 0, WRITE_ERROR);
    rig.fails(&cdb10(SYNCHRONIZE_CACHE_10, 0, 0, 0), &[], 0, WRITE_ERROR);
}

#[test]
fn synchronize_cache_flushes_a_valid_range() {
    let mut rig = Rig::new();
    rig.ok(&cdb10(SYNCHRONIZE_CACHE_10, 0, 0, 0), &[], 0);
    rig.ok(&cdb16(SYNCHRONIZE_CACHE_16, 0x02, BLOCKS - 4, 4), &[], 0);
    assert_eq!(rig.backing().flushes, 2);
    rig.fails(&cdb16(SYNCHRONIZE_CACHE_16, 0, BLOCKS - 4, 5), &[], 0, LBA_OUT_OF_RANGE);
    assert_eq!(rig.backing().flushes, 2);
}

#[test]
fn verify_without_bytchk_checks_the_range_only() {
    let mut rig = Rig::new();
    rig.ok(&cdb10(VERIFY_10, 0, 0, BLOCKS as u16), &[], 0);
    rig.ok(&cdb12(VERIFY_12, 0, 1, 1), &[], 0);
    rig.fails(&cdb16(VERIFY_16, 0, BLOCKS - 1, 2), &[], 0, LBA_OUT_OF_RANGE);
    rig.fails(&cdb10(VERIFY_10, 0b100, 0, 1), &[], 0, INVALID_FIELD_IN_CDB);
}

#[test]
fn verify_with_bytchk_compares_data_out() {
    let mut rig = Rig::new();
    let mut data = rig.medium(2 * BS, 3 * BS);
    rig.ok(&cdb10(VERIFY_10, 0b010, 2, 3), &data, 0);
    data[BS + 17] ^= 0xff;
    let sense = rig.fails(&cdb16(VERIFY_16, 0b010, 2, 3), &data, 0, MISCOMPARE_DURING_VERIFY);
    assert_eq!(fixed_information(&sense), Some(BS as u32 + 17));
    rig.fails(&cdb10(VERIFY_10, 0b010, 2, 3), &data[..BS], 0, INVALID_FIELD_IN_CDB);
}

#[test]
fn verify_compares_across_chunk_boundaries() {
    // 2 MiB of 512-byte blocks spans several compare chunks.
    let blocks = 4096;
    let mut rig = Rig::with("", blocks * BS);
    let mut data = rig.medium(0, blocks * BS);
    rig.ok(&cdb16(VERIFY_16, 0b010, 0, blocks as u32), &data, 0);
    let late = blocks * BS - 3;
    data[late] ^= 1;
    let sense = rig.fails(&cdb16(VERIFY_16, 0b010, 0, blocks as u32), &data, 0, MISCOMPARE_DURING_VERIFY);
    assert_eq!(fixed_information(&sense), Some(late as u32));
}

#[test]
fn verify_bytchk_3_compares_every_block_with_one() {
    let mut rig = Rig::new();
    rig.ok(&cdb10(WRITE_10, 0, 4, 3), &blocks_of(0x5a, 3), 0);
    rig.ok(&cdb10(VERIFY_10, 0b110, 4, 3), &blocks_of(0x5a, 1), 0);
    // Block 7 still holds the initial pattern.
    let sense = rig.fails(&cdb10(VERIFY_10, 0b110, 4, 4), &blocks_of(0x5a, 1), 0, MISCOMPARE_DURING_VERIFY);
    let first_difference = rig.medium(7 * BS, BS).iter().position(|&b| b != 0x5a).unwrap();
    assert_eq!(fixed_information(&sense), Some((3 * BS + first_difference) as u32));
}

fn compare_and_write(lba: u64, blocks: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = COMPARE_AND_WRITE;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[13] = blocks;
    c
}

#[test]
fn compare_and_write_writes_on_match() {
    let mut rig = Rig::new();
    let mut data_out = rig.medium(8 * BS, 2 * BS);
    data_out.extend(blocks_of(0x33, 2));
    rig.ok(&compare_and_write(8, 2), &data_out, 0);
    assert_eq!(rig.medium(8 * BS, 2 * BS), blocks_of(0x33, 2));
    assert_eq!(rig.backing().flushes, 0);
}

#[test]
fn compare_and_write_miscompare_writes_nothing() {
    let mut rig = Rig::new();
    let before = rig.medium(8 * BS, 2 * BS);
    let mut data_out = before.clone();
    data_out[BS + 100] ^= 0x01;
    data_out.extend(blocks_of(0x33, 2));
    let sense = rig.fails(&compare_and_write(8, 2), &data_out, 0, MISCOMPARE_DURING_VERIFY);
    assert_eq!(sense[0], 0xf0, "VALID must be set");
    assert_eq!(fixed_information(&sense), Some(BS as u32 + 100));
    assert_eq!(rig.medium(8 * BS, 2 * BS), before);
}

#[test]
fn compare_and_write_checks_range_buffer_and_protection() {
    let mut rig = Rig::new();
    rig.ok(&compare_and_write(0, 0), &[], 0);
    // 256 blocks wrap to 0 in the one-byte field; the data-out gives it away.
    let before = rig.medium(0, 2 * BS);
    rig.fails(&compare_and_write(0, 0), &blocks_of(0, 512), 0, INVALID_FIELD_IN_CDB);
    assert_eq!(rig.medium(0, 2 * BS), before);
    rig.fails(&compare_and_write(BLOCKS - 1, 2), &blocks_of(0, 4), 0, LBA_OUT_OF_RANGE);
    rig.fails(&compare_and_write(0, 2), &blocks_of(0, 3), 0, INVALID_FIELD_IN_CDB);
    let mut fua = compare_and_write(0, 1);
    fua[1] = 0x08;
    let mut data_out = rig.medium(0, BS);
    data_out.extend(blocks_of(1, 1));
    rig.ok(&fua, &data_out, 0);
    assert_eq!(rig.backing().flushes, 1);

    let mut rig = Rig::with("ro", BLOCKS as usize * BS);
    rig.fails(&compare_and_write(0, 1), &blocks_of(0, 2), 0, WRITE_PROTECTED);
}
