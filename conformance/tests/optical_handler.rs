//! The optical suite against the real optical handler, compiled natively:
//! every check passes, none is skipped, and the discs it burned are what
//! the handler's image format says they are.

mod support;

use std::time::Instant;

use support::optical::OpticalDriveTarget;
use support::report;
use tcmu_conformance::{OpticalParams, optical_suite};

const PARAMS: OpticalParams = OpticalParams { pressed_sectors: 1000, recordable_sectors: 512 };

#[test]
fn every_check_passes() {
    let mut target = OpticalDriveTarget::open("serial=conformance");
    let started = Instant::now();
    let outcomes = optical_suite(&mut target, &PARAMS);
    println!("{} checks in {:?}", outcomes.len(), started.elapsed());
    let failed = report(&outcomes);
    assert!(failed.is_empty(), "failed: {failed:?}");
    let skipped: Vec<&str> = outcomes.iter().filter(|o| o.skipped.is_some()).map(|o| o.name.as_str()).collect();
    assert!(skipped.is_empty(), "skipped against a DVD+R writer: {skipped:?}");
    // The last disc burned was closed: its trailer says complete (status 2).
    let burned = target.last_recordable().expect("the suite burned discs");
    let trailer = &burned[PARAMS.recordable_sectors as usize * 2048..];
    assert_eq!(&trailer[..8], b"TCMUDVDR");
}

#[test]
fn the_smallest_discs_pass() {
    let params = OpticalParams {
        pressed_sectors: tcmu_conformance::OPTICAL_MIN_PRESSED_SECTORS,
        recordable_sectors: tcmu_conformance::OPTICAL_MIN_RECORDABLE_SECTORS,
    };
    let outcomes = optical_suite(&mut OpticalDriveTarget::open(""), &params);
    let failed = report(&outcomes);
    assert!(failed.is_empty(), "failed: {failed:?}");
}

#[test]
fn check_names_are_unique() {
    let outcomes = optical_suite(&mut OpticalDriveTarget::open(""), &PARAMS);
    let mut names: Vec<&str> = outcomes.iter().map(|outcome| outcome.name.as_str()).collect();
    names.sort_unstable();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate check names");
}

#[test]
fn too_small_discs_are_refused_up_front() {
    let params = OpticalParams { pressed_sectors: 10, ..PARAMS };
    let outcomes = optical_suite(&mut OpticalDriveTarget::open(""), &params);
    assert_eq!(outcomes.len(), 1);
    assert!(!outcomes[0].passed());
}
