//! Optical drives broken on purpose make the checks aimed at the breakage
//! fail, and leave unrelated checks passing: the optical checks can fail,
//! and they fail for the right reason.

mod support;

use support::optical::OpticalDriveTarget;
use support::report;
use tcmu_conformance::{CheckOutcome, DiscKind, OpticalParams, OpticalTarget, Response, ScsiTarget, optical_suite};

const PARAMS: OpticalParams = OpticalParams { pressed_sectors: 300, recordable_sectors: 256 };

/// Answers GOOD to every command with a zero-filled buffer, and takes any
/// disc in and out.
struct AcceptsEverything;

impl ScsiTarget for AcceptsEverything {
    fn execute(&mut self, _cdb: &[u8], _data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        Ok(Response { status: 0, sense: Vec::new(), data_in: vec![0; data_in_len as usize] })
    }
}

impl OpticalTarget for AcceptsEverything {
    fn insert(&mut self, _disc: DiscKind) -> Result<(), String> {
        Ok(())
    }

    fn eject(&mut self, _force: bool) -> Result<(), String> {
        Ok(())
    }
}

/// The optical handler with its CDBs rewritten before it sees them, its
/// responses altered afterwards, or the operator's part done wrong.
struct Tampered {
    inner: OpticalDriveTarget,
    rewrite_cdb: fn(&mut [u8]),
    alter_response: fn(&[u8], &mut Response),
    /// The operator's eject ignores the initiator's lock.
    ejects_regardless: bool,
    /// GESN is answered after a TEST UNIT READY, whose unit attention it
    /// reports instead (as the handler did before it let GESN through).
    gesn_takes_unit_attentions: bool,
}

impl Tampered {
    fn new() -> Self {
        Self {
            inner: OpticalDriveTarget::open("serial=broken"),
            rewrite_cdb: |_| {},
            alter_response: |_, _| {},
            ejects_regardless: false,
            gesn_takes_unit_attentions: false,
        }
    }
}

impl ScsiTarget for Tampered {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let mut cdb = cdb.to_vec();
        (self.rewrite_cdb)(&mut cdb);
        if self.gesn_takes_unit_attentions && cdb[0] == 0x4A {
            let tur = self.inner.execute(&[0; 6], &[], 0)?;
            if tur.sense.get(2).is_some_and(|key| key & 0x0F == 0x06) {
                return Ok(tur);
            }
        }
        let mut response = self.inner.execute(&cdb, data_out, data_in_len)?;
        (self.alter_response)(&cdb, &mut response);
        Ok(response)
    }
}

impl OpticalTarget for Tampered {
    fn insert(&mut self, disc: DiscKind) -> Result<(), String> {
        self.inner.insert(disc)
    }

    fn eject(&mut self, force: bool) -> Result<(), String> {
        self.inner.eject(force || self.ejects_regardless)
    }
}

fn outcome<'a>(outcomes: &'a [CheckOutcome], name: &str) -> &'a CheckOutcome {
    outcomes.iter().find(|outcome| outcome.name == name).unwrap_or_else(|| panic!("no check named {name}"))
}

/// Run the suite against `target`; `broken` must fail, `intact` must pass.
fn expect_failures(target: &mut dyn OpticalTarget, broken: &[&str], intact: &[&str]) {
    let outcomes = optical_suite(target, &PARAMS);
    report(&outcomes);
    for name in broken {
        assert!(!outcome(&outcomes, name).passed(), "{name} passed against a broken target");
    }
    for name in intact {
        let o = outcome(&outcomes, name);
        assert!(o.passed() && o.skipped.is_none(), "{name} did not pass although its command works: {o}");
    }
}

#[test]
fn accepting_everything_fails_every_check() {
    let outcomes = optical_suite(&mut AcceptsEverything, &PARAMS);
    report(&outcomes);
    let passed: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| outcome.passed() && outcome.skipped.is_none())
        .map(|outcome| outcome.name.as_str())
        .collect();
    assert!(passed.is_empty(), "passed against a target that accepts everything: {passed:?}");
}

#[test]
fn a_corrupted_read12_fails_the_read12_checks_only() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            if cdb[0] == 0xA8 && response.data_in.len() > 100 {
                response.data_in[100] ^= 0x01;
            }
        },
        ..Tampered::new()
    };
    expect_failures(
        &mut target,
        &["read12.middle-sectors", "read12.last-sectors", "recording.sequential-writes"],
        &["read10.first-sectors", "read10.last-sector", "recording.close-session-completes-the-disc"],
    );
}

#[test]
fn a_lead_out_one_frame_late_in_msf_fails_the_msf_toc_only() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            // READ TOC format 0 with MSF: the lead-out descriptor is last.
            if cdb[0] == 0x43
                && cdb[1] & 0x02 != 0
                && cdb[2] & 0x0F == 0
                && let Some(frame) = response.data_in.last_mut()
            {
                *frame += 1;
            }
        },
        ..Tampered::new()
    };
    expect_failures(&mut target, &["read-toc.format0-msf"], &["read-toc.format0-lba", "read-toc.format2-full-toc"]);
}

#[test]
fn a_capacity_off_by_one_fails_read_capacity_and_the_toc_cross_check() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            if cdb[0] == 0x25 && response.data_in.len() == 8 {
                response.data_in[3] = response.data_in[3].wrapping_add(1);
            }
        },
        ..Tampered::new()
    };
    expect_failures(&mut target, &["read-capacity", "read-toc.format0-lba"], &["read-toc.format0-from-the-lead-out"]);
}

#[test]
fn a_drive_that_ignores_prevent_fails_the_prevent_checks() {
    let mut target = Tampered {
        rewrite_cdb: |cdb| {
            if cdb[0] == 0x1E {
                cdb[4] = 0;
            }
        },
        ..Tampered::new()
    };
    expect_failures(
        &mut target,
        &["prevent.start-stop-eject-refused", "prevent.lock-state-in-page-2a", "prevent.operator-eject-refused"],
        &["start-stop.eject-then-load", "prevent.allow-restores-eject", "events.operator-eject"],
    );
}

#[test]
fn an_operator_eject_through_the_lock_fails_the_operator_check() {
    let mut target = Tampered { ejects_regardless: true, ..Tampered::new() };
    expect_failures(
        &mut target,
        &["prevent.operator-eject-refused"],
        &["prevent.start-stop-eject-refused", "prevent.forced-eject", "events.operator-eject"],
    );
}

#[test]
fn gesn_that_takes_the_unit_attention_fails_the_pass_through_check() {
    let mut target = Tampered { gesn_takes_unit_attentions: true, ..Tampered::new() };
    expect_failures(
        &mut target,
        &["unit-attention.survives-gesn-and-get-configuration"],
        &["readiness.insert-pressed-disc", "events.operator-eject"],
    );
}

#[test]
fn a_dvd_plus_r_reported_as_dvd_rom_fails_the_blank_disc_check() {
    let mut target = Tampered {
        alter_response: |cdb, response| {
            if cdb[0] == 0x46 && response.data_in.get(6..8) == Some(&[0x00, 0x1B]) {
                response.data_in[7] = 0x10;
            }
        },
        ..Tampered::new()
    };
    expect_failures(
        &mut target,
        &["recording.blank-disc", "recording.complete-disc-survives-reinsertion"],
        &["get-configuration.profile-list", "recording.sequential-writes"],
    );
}

#[test]
fn a_close_that_reports_becoming_ready_fails_the_immediate_close_check() {
    let mut target = Tampered {
        alter_response: |_, response| {
            // 02/04/07 (operation in progress) turned into 02/04/01.
            if response.sense.len() >= 14
                && (response.sense[2] & 0x0F, response.sense[12], response.sense[13]) == (2, 4, 7)
            {
                response.sense[13] = 0x01;
            }
        },
        ..Tampered::new()
    };
    expect_failures(&mut target, &["recording.close-track-immediate"], &["recording.close-session-completes-the-disc"]);
}

#[test]
fn writes_that_land_one_sector_late_fail_the_recording_checks() {
    let mut target = Tampered {
        rewrite_cdb: |cdb| {
            if cdb[0] == 0x2A || cdb[0] == 0xAA {
                let lba = u32::from_be_bytes([cdb[2], cdb[3], cdb[4], cdb[5]]);
                cdb[2..6].copy_from_slice(&lba.wrapping_add(1).to_be_bytes());
            }
        },
        ..Tampered::new()
    };
    expect_failures(
        &mut target,
        &[
            "recording.write-only-at-the-next-writable-address",
            "recording.sequential-writes",
            "recording.close-session-completes-the-disc",
        ],
        &["recording.blank-disc", "recording.close-on-a-blank-disc-refused", "read10.first-sectors"],
    );
}
