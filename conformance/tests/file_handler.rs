//! The suite against the real file handler, compiled natively: every check
//! passes, and the medium ends exactly as it started.

mod support;

use std::time::Instant;

use support::{FileTarget, patterned_medium, report};
use tcmu_conformance::{DiskParams, disk_suite};

const SIZE: u64 = 16 << 20;

/// Run the suite; return the failed checks' names and whether the medium
/// came back unchanged.
fn run(config: &str, block_size: u32, read_only: bool, read_only_store: bool) -> (Vec<String>, bool) {
    let medium = patterned_medium(SIZE as usize);
    let mut target = FileTarget::open(config, medium.clone(), read_only_store);
    let params = DiskParams { size_bytes: SIZE, block_size, read_only };
    let started = Instant::now();
    let outcomes = disk_suite(&mut target, &params);
    println!("{} checks in {:?}", outcomes.len(), started.elapsed());
    let failed = report(&outcomes).into_iter().map(String::from).collect();
    (failed, target.medium() == medium)
}

#[test]
fn writable_disk_passes() {
    let (failed, unchanged) = run("serial=conformance", 512, false, false);
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(unchanged, "the suite left the medium changed");
}

#[test]
fn writable_disk_with_4096_byte_blocks_passes() {
    let (failed, unchanged) = run("serial=conformance,block_size=4096", 4096, false, false);
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(unchanged, "the suite left the medium changed");
}

#[test]
fn read_only_disk_passes() {
    let (failed, unchanged) = run("serial=conformance,ro", 512, true, false);
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(unchanged, "a read-only medium changed");
}

#[test]
fn read_only_store_makes_a_read_only_disk() {
    let (failed, unchanged) = run("serial=conformance", 512, true, true);
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(unchanged, "a read-only medium changed");
}

#[test]
fn check_names_are_unique() {
    let mut target = FileTarget::open("serial=conformance", vec![0; SIZE as usize], false);
    let outcomes = disk_suite(&mut target, &DiskParams { size_bytes: SIZE, block_size: 512, read_only: false });
    let mut names: Vec<&str> = outcomes.iter().map(|outcome| outcome.name.as_str()).collect();
    names.sort_unstable();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate check names");
}
