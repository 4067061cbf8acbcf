//! MODE SENSE and MODE SELECT, and what the pages control.

use tcmu_guest_sdk::scsi::opcode::*;
use tcmu_guest_sdk::sense::{
    INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAMETER_LIST, LBA_OUT_OF_RANGE, PARAMETER_LIST_LENGTH_ERROR,
    SAVING_PARAMETERS_NOT_SUPPORTED,
};

use super::*;

const CACHING: u8 = 0x08;
const CONTROL: u8 = 0x0A;
const ALL: u8 = 0x3F;

fn mode_sense_6(page_control: u8, page: u8, dbd: bool) -> [u8; 6] {
    [MODE_SENSE_6, if dbd { 0x08 } else { 0 }, page_control << 6 | page, 0, 255, 0]
}

fn mode_sense_10(page: u8, llbaa: bool) -> [u8; 10] {
    [MODE_SENSE_10, if llbaa { 0x10 } else { 0 }, page, 0, 0, 0, 0, 1, 0, 0]
}

/// The pages of MODE SENSE(6) data: (code, parameter bytes).
fn pages_6(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut rest = &data[4 + data[3] as usize..];
    let mut pages = Vec::new();
    while !rest.is_empty() {
        let len = rest[1] as usize;
        pages.push((rest[0] & 0x3f, rest[2..2 + len].to_vec()));
        rest = &rest[2 + len..];
    }
    pages
}

fn write_cache(rig: &mut Rig) -> bool {
    let data = rig.ok(&mode_sense_6(0, CACHING, true), &[], 255);
    pages_6(&data)[0].1[0] & 0x04 != 0
}

/// A MODE SELECT(6) parameter list with no block descriptor and `pages`.
fn select_list(pages: &[&[u8]]) -> Vec<u8> {
    let mut list = vec![0, 0, 0, 0];
    for page in pages {
        list.extend_from_slice(page);
    }
    list
}

fn caching_page(wce: bool) -> Vec<u8> {
    let mut page = vec![CACHING, 0x12];
    page.extend_from_slice(&[0; 0x12]);
    page[2] = u8::from(wce) << 2;
    page
}

fn control_page(d_sense: bool) -> Vec<u8> {
    let mut page = vec![CONTROL, 0x0a];
    page.extend_from_slice(&[0; 0x0a]);
    page[2] = u8::from(d_sense) << 2;
    page
}

fn mode_select_6(list: &[u8]) -> [u8; 6] {
    [MODE_SELECT_6, 0x10, 0, 0, list.len() as u8, 0]
}

#[test]
fn mode_sense_6_all_pages_with_block_descriptor() {
    let mut rig = Rig::new();
    let data = rig.ok(&mode_sense_6(0, ALL, false), &[], 255);
    assert_eq!(data[0] as usize, data.len() - 1);
    assert_eq!(data[2], 0x10, "DPOFUA, not write protected");
    assert_eq!(data[3], 8);
    assert_eq!(&data[4..12], &[0, 0, 0, BLOCKS as u8, 0, 0, 2, 0]);
    let pages = pages_6(&data);
    assert_eq!(pages.iter().map(|p| p.0).collect::<Vec<_>>(), [CACHING, CONTROL]);
    assert_eq!(pages[0].1.len(), 0x12);
    assert_eq!(pages[0].1[0], 0x04, "WCE on by default");
    assert_eq!(pages[1].1.len(), 0x0a);
}

#[test]
fn mode_sense_10_with_long_lba_descriptor() {
    let mut rig = Rig::new();
    let data = rig.ok(&mode_sense_10(CACHING, true), &[], 256);
    assert_eq!(u16::from_be_bytes([data[0], data[1]]) as usize, data.len() - 2);
    assert_eq!(data[4] & 1, 1, "LONGLBA");
    assert_eq!(&data[6..8], &[0, 16]);
    assert_eq!(&data[8..16], &BLOCKS.to_be_bytes());
    assert_eq!(&data[20..24], &(BS as u32).to_be_bytes());
    assert_eq!(&data[24..26], &[CACHING, 0x12]);
}

#[test]
fn mode_sense_reports_write_protect() {
    let mut rig = Rig::with("ro", 4 * BS);
    let data = rig.ok(&mode_sense_6(0, CACHING, true), &[], 255);
    assert_eq!(data[2], 0x90, "WP and DPOFUA");
}

#[test]
fn mode_sense_page_control() {
    let mut rig = Rig::new();
    let changeable = rig.ok(&mode_sense_6(1, ALL, true), &[], 255);
    let pages = pages_6(&changeable);
    assert_eq!(pages[0].1[0], 0x04, "WCE changeable");
    assert!(pages[0].1[1..].iter().all(|&b| b == 0));
    assert_eq!(pages[1].1[0], 0x04, "D_SENSE changeable");
    rig.ok(&mode_sense_6(2, ALL, true), &[], 255);
    rig.fails(&mode_sense_6(3, ALL, true), &[], 255, SAVING_PARAMETERS_NOT_SUPPORTED);
    rig.fails(&mode_sense_6(0, 0x1c, true), &[], 255, INVALID_FIELD_IN_CDB);
}

#[test]
fn mode_sense_short_allocation_length() {
    let mut rig = Rig::new();
    let (done, data) = rig.run(&[MODE_SENSE_6, 0, ALL, 0, 4, 0], &[], 4);
    assert_eq!(done, Completion::good_with_data(4));
    assert_eq!(data[0] as usize, 4 + 8 + 20 + 12 - 1, "the length still describes all the data");
}

#[test]
fn mode_select_turns_the_write_cache_off_and_on() {
    let mut rig = Rig::new();
    let list = select_list(&[&caching_page(false)]);
    rig.ok(&mode_select_6(&list), &list, 0);
    assert!(!write_cache(&mut rig));
    assert_eq!(rig.backing().flushes, 1, "disabling the cache flushes it");
    rig.ok(&cdb10(WRITE_10, 0, 0, 1), &blocks_of(1, 1), 0);
    assert_eq!(rig.backing().flushes, 2, "every write is durable without a cache");

    let list = select_list(&[&caching_page(true)]);
    rig.ok(&mode_select_6(&list), &list, 0);
    assert!(write_cache(&mut rig));
    rig.ok(&cdb10(WRITE_10, 0, 0, 1), &blocks_of(1, 1), 0);
    assert_eq!(rig.backing().flushes, 2);
}

#[test]
fn mode_select_10_with_block_descriptor_restating_the_capacity() {
    let mut rig = Rig::new();
    let mut list = vec![0, 0, 0, 0, 0, 0, 0, 8];
    list.extend_from_slice(&(BLOCKS as u32).to_be_bytes());
    list.extend_from_slice(&(BS as u32).to_be_bytes());
    list.extend(caching_page(false));
    let cdb = [MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, list.len() as u8, 0];
    rig.ok(&cdb, &list, 0);
    assert!(!write_cache(&mut rig));

    // A different block size is not a change MODE SELECT can make.
    list[12..16].copy_from_slice(&4096u32.to_be_bytes());
    let sense = rig.fails(&cdb, &list, 0, INVALID_FIELD_IN_PARAMETER_LIST);
    assert_eq!(field_pointer(&sense), Some([0x80, 0, 8]));
}

#[test]
fn mode_select_refuses_unchangeable_bits_and_changes_nothing() {
    let mut rig = Rig::new();
    let mut caching = caching_page(false);
    caching[2] |= 0x01; // RCD
    let list = select_list(&[&control_page(true), &caching]);
    let sense = rig.fails(&mode_select_6(&list), &list, 0, INVALID_FIELD_IN_PARAMETER_LIST);
    assert_eq!(field_pointer(&sense), Some([0x80 | 0x08, 0, 4 + 12 + 2]));
    assert!(write_cache(&mut rig));
    // The control page in the same list did not take effect either.
    let (done, _) = rig.run(&cdb10(READ_10, 0, BLOCKS as u32, 1), &[], BS as u32);
    assert_eq!(sense_format(&done.sense), SenseFormat::Fixed);
}

#[test]
fn mode_select_refusals() {
    let mut rig = Rig::new();
    let list = select_list(&[&caching_page(true)]);
    // SP: nothing can be saved.
    let cdb = [MODE_SELECT_6, 0x11, 0, 0, list.len() as u8, 0];
    rig.fails(&cdb, &list, 0, INVALID_FIELD_IN_CDB);
    // A page the device does not have.
    let list = select_list(&[&[0x1c, 0x02, 0, 0]]);
    rig.fails(&mode_select_6(&list), &list, 0, INVALID_FIELD_IN_PARAMETER_LIST);
    // A page cut short by the parameter list length.
    let list = select_list(&[&caching_page(true)]);
    rig.fails(&[MODE_SELECT_6, 0x10, 0, 0, 10, 0], &list, 0, PARAMETER_LIST_LENGTH_ERROR);
    // A page with the wrong length.
    let list = select_list(&[&[CACHING, 0x02, 0x04, 0]]);
    rig.fails(&mode_select_6(&list), &list, 0, INVALID_FIELD_IN_PARAMETER_LIST);
    // An empty parameter list is fine.
    rig.ok(&[MODE_SELECT_6, 0x10, 0, 0, 0, 0], &[], 0);
}

#[test]
fn d_sense_switches_to_descriptor_sense() {
    let mut rig = Rig::new();
    let list = select_list(&[&control_page(true)]);
    rig.ok(&mode_select_6(&list), &list, 0);
    let sense = rig.fails(&cdb16(READ_16, 0, BLOCKS, 1), &[], BS as u32, LBA_OUT_OF_RANGE);
    assert_eq!(sense_format(&sense), SenseFormat::Descriptor);
    let data = rig.ok(&mode_sense_6(0, CONTROL, true), &[], 255);
    assert_eq!(pages_6(&data)[0].1[0], 0x04);
}

#[test]
fn the_operator_switches_the_write_cache() {
    use tcmu_guest_sdk::Handler;
    let mut rig = Rig::new();
    rig.disk.write_cache_changed(false);
    assert!(!write_cache(&mut rig), "MODE SENSE shows WCE off");
    assert_eq!(rig.backing().flushes, 1, "disabling the cache flushes it");
    rig.ok(&cdb10(WRITE_10, 0, 0, 1), &blocks_of(1, 1), 0);
    assert_eq!(rig.backing().flushes, 2, "writes are durable without a cache");
    rig.disk.write_cache_changed(true);
    assert!(write_cache(&mut rig));
    assert_eq!(rig.backing().flushes, 2, "enabling needs no flush");
}
