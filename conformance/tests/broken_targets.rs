//! Targets broken on purpose make the checks aimed at the breakage fail,
//! and leave unrelated checks passing: the checks can fail, and they fail
//! for the right reason.

mod support;

use support::{FileTarget, report};
use tcmu_conformance::{CheckOutcome, DiskParams, Response, ScsiTarget, disk_suite};

const SIZE: u64 = 4 << 20;
const PARAMS: DiskParams = DiskParams { size_bytes: SIZE, block_size: 512, read_only: false };

/// Answers GOOD to every command, with a zero-filled buffer.
struct AcceptsEverything;

impl ScsiTarget for AcceptsEverything {
    fn execute(&mut self, _cdb: &[u8], _data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        Ok(Response { status: 0, sense: Vec::new(), data_in: vec![0; data_in_len as usize] })
    }
}

/// The file handler with its CDBs rewritten before it sees them, or its
/// responses altered afterwards.
struct Tampered {
    inner: FileTarget,
    rewrite_cdb: fn(&mut [u8]),
    alter_response: fn(&[u8], &mut Response),
    forward_resize: bool,
}

impl Tampered {
    fn new() -> Self {
        Self {
            inner: FileTarget::open("serial=broken", vec![0; SIZE as usize], false),
            rewrite_cdb: |_| {},
            alter_response: |_, _| {},
            forward_resize: true,
        }
    }
}

impl ScsiTarget for Tampered {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let mut cdb = cdb.to_vec();
        (self.rewrite_cdb)(&mut cdb);
        let mut response = self.inner.execute(&cdb, data_out, data_in_len)?;
        (self.alter_response)(&cdb, &mut response);
        Ok(response)
    }

    fn resize(&mut self, new_size: u64) -> Result<(), String> {
        if self.forward_resize {
            return self.inner.resize(new_size);
        }
        // Grow the medium behind the handler's back: no resized() call.
        Ok(())
    }
}

fn outcome<'a>(outcomes: &'a [CheckOutcome], name: &str) -> &'a CheckOutcome {
    outcomes.iter().find(|outcome| outcome.name == name).unwrap_or_else(|| panic!("no check named {name}"))
}

/// Run the suite against `target`; `broken` must fail, `intact` must pass.
fn expect_failures(target: &mut dyn ScsiTarget, broken: &[&str], intact: &[&str]) {
    expect_failures_with(&PARAMS, target, broken, intact);
}

fn expect_failures_with(params: &DiskParams, target: &mut dyn ScsiTarget, broken: &[&str], intact: &[&str]) {
    let outcomes = disk_suite(target, params);
    report(&outcomes);
    for name in broken {
        assert!(!outcome(&outcomes, name).passed(), "{name} passed against a broken target");
    }
    for name in intact {
        assert!(outcome(&outcomes, name).passed(), "{name} failed although its command works");
    }
}

/// Checks whose whole expectation is GOOD (and, for zero-length writes, no
/// change): the only ones a target that says yes to everything can pass.
const SATISFIED_BY_GOOD: &[&str] = &[
    "test-unit-ready",
    "start-stop-unit.start",
    "start-stop-unit.stop-then-start",
    "prevent-allow-medium-removal",
    "allocation.inquiry-0",
    "read10.zero-length",
    "read12.zero-length",
    "read16.zero-length",
    "write10.zero-length",
    "write12.zero-length",
    "write16.zero-length",
    "verify10.no-byte-check",
    "verify10.byte-check-match",
    "verify16.no-byte-check",
    "verify16.byte-check-match",
    "synchronize-cache10.whole-medium",
    "synchronize-cache10.range",
    "synchronize-cache16.whole-medium",
    "synchronize-cache16.range",
];

#[test]
fn accepting_everything_fails_every_check_that_expects_more_than_good() {
    let outcomes = disk_suite(&mut AcceptsEverything, &PARAMS);
    report(&outcomes);
    let passed: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| outcome.passed() && outcome.skipped.is_none())
        .map(|outcome| outcome.name.as_str())
        .collect();
    let unexpected: Vec<&&str> = passed.iter().filter(|name| !SATISFIED_BY_GOOD.contains(name)).collect();
    assert!(unexpected.is_empty(), "passed against a target that accepts everything: {unexpected:?}");
    assert!(passed.len() < outcomes.len() / 5, "{} of {} checks passed", passed.len(), outcomes.len());
    // Without believable VPD pages the optional features are skipped, with reasons.
    for name in ["unmap.range", "compare-and-write.miscompare", "write-same16.unmap", "resize"] {
        assert!(outcome(&outcomes, name).skipped.is_some(), "{name} was not skipped");
    }
}

#[test]
fn corrupted_read10_data_fails_the_read10_checks_only() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            if cdb[0] == 0x28 && !response.data_in.is_empty() {
                response.data_in[100] ^= 0x01;
            }
        },
        ..Tampered::new()
    };
    expect_failures(
        &mut target,
        &["read10.lba-0", "read10.last-lba", "read10.multi-block"],
        &["read12.lba-0", "read16.multi-block", "write10.multi-block"],
    );
}

#[test]
fn misplaced_write12_fails_the_write12_checks() {
    let mut target = Tampered {
        rewrite_cdb: |cdb| {
            if cdb[0] == 0xAA {
                // Off by one block: the neighbour check catches it.
                let lba = u32::from_be_bytes([cdb[2], cdb[3], cdb[4], cdb[5]]);
                cdb[2..6].copy_from_slice(&lba.wrapping_add(1).to_be_bytes());
            }
        },
        ..Tampered::new()
    };
    expect_failures(
        &mut target,
        &["write12.lba-0", "write12.multi-block", "write12.fua"],
        &["write10.lba-0", "write16.fua"],
    );
}

#[test]
fn wrong_miscompare_offset_fails_the_miscompare_check() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            if cdb[0] == 0x89 && response.status == 0x02 {
                // Report the first byte of the buffer in either sense format.
                match response.sense[0] & 0x7F {
                    0x70 => response.sense[3..7].fill(0),
                    _ => response.sense[12..20].fill(0),
                }
            }
        },
        ..Tampered::new()
    };
    expect_failures(&mut target, &["compare-and-write.miscompare"], &["compare-and-write.match-writes"]);
}

#[test]
fn capacity_off_by_one_fails_read_capacity() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            if cdb[0] == 0x9E && response.data_in.len() >= 8 {
                response.data_in[7] = response.data_in[7].wrapping_add(1);
            }
        },
        ..Tampered::new()
    };
    expect_failures(&mut target, &["read-capacity16"], &["read-capacity10"]);
}

#[test]
fn a_resize_the_handler_never_hears_of_fails_the_resize_checks() {
    let mut target = Tampered { forward_resize: false, ..Tampered::new() };
    expect_failures(
        &mut target,
        &["resize.unit-attention-once", "resize.read-capacity", "resize.restore"],
        &["read-capacity16"],
    );
}

#[test]
fn a_disk_configured_read_only_that_accepts_writes_fails_the_read_only_checks() {
    // The operator asked for read-only; the handler was opened writable.
    let params = DiskParams { read_only: true, ..PARAMS };
    expect_failures_with(
        &params,
        &mut Tampered::new(),
        &[
            "read-only.write6",
            "read-only.write16",
            "read-only.write-same16",
            "read-only.unmap",
            "read-only.compare-and-write",
            "mode-sense.write-protect-bit",
        ],
        &["read10.lba-0", "verify16.byte-check-miscompare"],
    );
}
