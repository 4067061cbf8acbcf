//! `tcmu-wasm check` for the removable-media device types: the SSC suite
//! against the built tape handler (empty drive, a blank cartridge loaded
//! and reloaded write-protected), the SMC suite against the built changer
//! (a temporary library) and the MMC suite against the built optical
//! handler (empty drive, a pressed disc and blank DVD+R discs put in and
//! taken out as `ctl media` does), each through the simulated kernel, ring,
//! device loop and sandbox. Every check must pass; none may be skipped,
//! since the handlers offer everything the suites probe for.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcmu_conformance::{ChangerParams, Response, ScsiTarget, TapeParams, TapeTarget, changer_suite, tape_suite};
use tcmu_wasm::backing::BackingFile;
use tcmu_wasm::check::{self, CheckOptions};
use tcmu_wasm::control::library::{DriveLink, Layout, Library, create_cartridge};
use tcmu_wasm::device::{Backend, Medium, MediumChange};
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::{DeviceSpec, HandlerCode, Limits, Runtime, SandboxedDevice};
use tcmu_wasm::sim::{SimConfig, SimDevice};

/// Run the suite for a built handler; returns (checks run, failures,
/// skips), printing every outcome (shown when a test fails).
fn check(handler: &str, config: &str, size: u64) -> (usize, Vec<String>, Vec<String>) {
    let runtime = Runtime::new(None).unwrap();
    let code = HandlerCode::load(&runtime, &handlers::built(handler)).unwrap();
    let opts = CheckOptions { config: config.into(), size, limits: Limits::default() };
    let outcomes = check::run(code, &opts).unwrap();
    for outcome in &outcomes {
        println!("{outcome}");
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).map(ToString::to_string).collect();
    let skipped = outcomes.iter().filter(|o| o.skipped.is_some()).map(ToString::to_string).collect();
    (outcomes.len(), failed, skipped)
}

#[test]
fn the_tape_handler_passes_the_ssc_suite() {
    let (ran, failed, skipped) = check("tape", "", 4 << 20);
    assert!(ran >= 70, "only {ran} checks ran");
    assert!(failed.is_empty(), "{} of {ran} checks failed:\n{}", failed.len(), failed.join("\n"));
    assert!(skipped.is_empty(), "{}", skipped.join("\n"));
}

#[test]
fn the_tape_handler_passes_with_its_own_early_warning_and_identity() {
    // early_warning= from the operator is what the suite expects.
    let (_, failed, _) = check("tape", "serial=CHK-T2,density=LTO-6,early_warning=512K", 6 << 20);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn the_changer_handler_passes_the_smc_suite() {
    let (ran, failed, skipped) = check("changer", "", 0);
    assert!(ran >= 40, "only {ran} checks ran");
    assert!(failed.is_empty(), "{} of {ran} checks failed:\n{}", failed.len(), failed.join("\n"));
    assert!(skipped.is_empty(), "{}", skipped.join("\n"));
}

#[test]
fn the_optical_handler_passes_the_mmc_suite() {
    let (ran, failed, skipped) = check("optical", "", 4 << 20);
    assert!(ran >= 80, "only {ran} checks ran");
    assert!(failed.is_empty(), "{} of {ran} checks failed:\n{}", failed.len(), failed.join("\n"));
    assert!(skipped.is_empty(), "{}", skipped.join("\n"));
}

#[test]
fn a_disc_too_small_for_the_optical_suite_fails_rather_than_passing_nothing() {
    let (ran, failed, _) = check("optical", "", 64 << 10);
    assert_eq!(ran, 1);
    assert!(failed[0].contains("optical-parameters"), "{failed:?}");
}

#[test]
fn a_cartridge_too_small_for_the_suite_fails_rather_than_passing_nothing() {
    let (ran, failed, _) = check("tape", "", 512 << 10);
    assert_eq!(ran, 1);
    assert!(failed[0].contains("tape-parameters"), "{failed:?}");
}

/// The command line: `tcmu-wasm check --handler tape|changer|optical`
/// prints one line per check and the summary, and exits 0.
#[test]
fn the_check_command_runs_the_removable_media_suites() {
    for (handler, size) in [("tape", "4M"), ("changer", "1M"), ("optical", "4M")] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
            .args(["check", "--handler", handler, "--size", size])
            .env("TCMU_WASM_HANDLER_PATH", handlers::BUILT_HANDLERS)
            .env("TCMU_WASM_CACHE_DIR", dir.path())
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{handler}:\n{text}");
        assert!(text.contains(&format!("checking handler {handler}")), "{text}");
        assert!(text.contains(" passed, 0 failed, 0 skipped"), "{text}");
        assert!(text.lines().filter(|l| l.starts_with("PASS  ")).count() >= 40, "{text}");
    }
}

// The suites can fail, for the right reason: the same handlers behind a
// target that breaks one behaviour make the checks of that behaviour fail
// and leave the others passing.

const DEADLINE: Duration = Duration::from_secs(30);
const CARTRIDGE: u64 = 4 << 20;

fn serve(handler: &str, spec: DeviceSpec) -> SimDevice {
    let runtime = Runtime::new(None).unwrap();
    let code = HandlerCode::load(&runtime, &handlers::built(handler)).unwrap();
    SimDevice::start(SimConfig { data_blocks: 4096, ..SimConfig::default() }, "broken0", move || {
        Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>)
    })
    .unwrap()
}

/// The tape handler with a cartridge to load, its responses altered by
/// `alter` (which sees the CDB).
struct BrokenDrive {
    dev: SimDevice,
    _dir: tempfile::TempDir,
    image: std::path::PathBuf,
    load_id: u64,
    alter: fn(&[u8], &mut Response),
}

impl BrokenDrive {
    fn new(alter: fn(&[u8], &mut Response)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = create_cartridge(dir.path(), "BROKEN1", CARTRIDGE).unwrap();
        let spec = DeviceSpec::new("broken0", "early_warning=256K", None, Limits::default());
        Self { dev: serve("tape", spec), _dir: dir, image, load_id: 1, alter }
    }
}

impl ScsiTarget for BrokenDrive {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let mut response = ScsiTarget::execute(&mut self.dev, cdb, data_out, data_in_len)?;
        (self.alter)(cdb, &mut response);
        Ok(response)
    }
}

impl TapeTarget for BrokenDrive {
    fn load(&mut self, write_protected: bool) -> Result<(), String> {
        let image = Arc::new(BackingFile::open(&self.image, CARTRIDGE, write_protected).map_err(|e| e.to_string())?);
        let medium = Medium { barcode: "BROKEN1".into(), write_protected, load_id: self.load_id, image };
        self.load_id += 1;
        self.dev.handle().change_medium(MediumChange::Load(medium), DEADLINE).map_err(|e| e.to_string())
    }

    fn unload(&mut self) -> Result<(), String> {
        self.dev.handle().change_medium(MediumChange::Unload, DEADLINE).map_err(|e| e.to_string())
    }
}

/// Run `suite`'s outcomes: each of `broken` must fail, each of `intact` pass.
fn expect(outcomes: &[tcmu_conformance::CheckOutcome], broken: &[&str], intact: &[&str]) {
    for outcome in outcomes {
        println!("{outcome}");
    }
    let find = |name: &str| outcomes.iter().find(|o| o.name == name).unwrap_or_else(|| panic!("no check {name}"));
    for name in broken {
        assert!(!find(name).passed(), "{name} passed against a broken target");
    }
    for name in intact {
        assert!(find(name).passed(), "{name} failed although what it checks works: {}", find(name));
    }
}

fn tape_with(alter: fn(&[u8], &mut Response), broken: &[&str], intact: &[&str]) {
    let mut drive = BrokenDrive::new(alter);
    let outcomes = tape_suite(&mut drive, &TapeParams { capacity: CARTRIDGE, early_warning: 256 << 10 });
    expect(&outcomes, broken, intact);
    drive.dev.stop().unwrap();
}

fn fixed_sense(response: &mut Response) -> Option<&mut Vec<u8>> {
    (response.status == 2 && response.sense.len() >= 18 && response.sense[0] & 0x7f == 0x70)
        .then_some(&mut response.sense)
}

#[test]
fn the_tape_suite_catches_residuals_of_the_wrong_sign() {
    tape_with(
        |_, response| {
            if let Some(sense) = fixed_sense(response)
                && sense[2] & 0x20 != 0
            {
                let information = i32::from_be_bytes(sense[3..7].try_into().unwrap());
                sense[3..7].copy_from_slice(&information.wrapping_neg().to_be_bytes());
            }
        },
        &["read.short-block", "read.long-block", "read.long-block-sili-fixed-mode", "read.fixed-wrong-length-residual"],
        &["read.filemark-residual", "read.end-of-data-residual", "inquiry.standard", "space.blocks-forward-to-eod"],
    );
}

#[test]
fn the_tape_suite_catches_end_of_data_reported_as_tgt_does() {
    // tgt: BLANK CHECK with EOM and 00/00 instead of 00/05.
    tape_with(
        |_, response| {
            if let Some(sense) = fixed_sense(response)
                && (sense[2] & 0x0f, sense[12], sense[13]) == (8, 0, 5)
            {
                sense[2] |= 0x40;
                sense[13] = 0;
            }
        },
        &[
            "read.end-of-data-residual",
            "space.filemarks-to-eod-st-count",
            "locate10.beyond-end-of-data",
            "readiness.load",
        ],
        &["read.short-block", "read.filemark-residual", "space.filemarks-forward"],
    );
}

#[test]
fn the_tape_suite_catches_a_lost_filemark_bit_and_a_silent_early_warning() {
    tape_with(
        |_, response| {
            let code = fixed_sense(response).map(|s| (s[2] & 0x0f, s[12], s[13]));
            match code {
                Some((0, 0, 1)) => response.sense[2] &= !0x80,
                // mhvtl before b210a64: early warning without 00/02.
                Some((0, 0, 2)) => {
                    response.status = 0;
                    response.sense.clear();
                }
                _ => {}
            }
        },
        &["read.filemark-residual", "space.blocks-forward-over-filemark", "early-warning-then-overflow"],
        &["read.short-block", "read.fixed-end-of-data-residual", "space.blocks-backward-to-bop"],
    );
}

#[test]
fn the_tape_suite_catches_a_position_of_zeroes_and_a_missing_wp_bit() {
    tape_with(
        |cdb, response| match cdb[0] {
            // tgt: READ POSITION returns zeros.
            0x34 if response.status == 0 => response.data_in.fill(0),
            0x1a if response.status == 0 && response.data_in.len() > 2 => response.data_in[2] &= 0x7f,
            _ => {}
        },
        &["write-read.variable", "locate10", "space.blocks-forward", "write-protected"],
        &["inquiry.standard", "read-block-limits", "mode-sense6.block-descriptor"],
    );
}

/// Drives that load and unload nothing.
struct NoDrives;

impl DriveLink for NoDrives {
    fn load(&self, _: u16, _: Medium, _: Instant) -> Result<(), String> {
        Ok(())
    }
    fn unload(&self, _: u16, _: Instant) -> Result<(), String> {
        Ok(())
    }
}

/// The changer handler over a library of 2 drives, 1 mail slot, 6 slots
/// and 3 cartridges, its responses altered by `alter`.
fn changer_with(alter: fn(&[u8], &mut Response), broken: &[&str], intact: &[&str]) {
    struct Broken(SimDevice, fn(&[u8], &mut Response));
    impl ScsiTarget for Broken {
        fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
            let mut response = ScsiTarget::execute(&mut self.0, cdb, data_out, data_in_len)?;
            (self.1)(cdb, &mut response);
            Ok(response)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cartridges: Vec<(String, u16)> = (0..3).map(|i| (format!("BRK00{i}"), i)).collect();
    for (barcode, _) in &cartridges {
        create_cartridge(dir.path(), barcode, 1 << 20).unwrap();
    }
    let library =
        Library::open("broken", Layout::new(2, 1, 6).unwrap(), dir.path(), &cartridges, Arc::new(NoDrives)).unwrap();
    let mut spec = DeviceSpec::new("broken0", "", None, Limits::default());
    spec.library = Some(Arc::new(library));
    let mut target = Broken(serve("changer", spec), alter);
    let params = ChangerParams { drives: 2, mail_slots: 1, slots: 6, cartridges, drive_serials: Vec::new() };
    let outcomes = changer_suite(&mut target, &params);
    expect(&outcomes, broken, intact);
    target.0.stop().unwrap();
}

/// Every element descriptor of a READ ELEMENT STATUS response.
fn each_descriptor(data: &mut [u8], f: impl Fn(&mut [u8])) {
    let mut at = 8;
    while at + 8 <= data.len() {
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let bytes = usize::from(data[at + 5]) << 16 | usize::from(data[at + 6]) << 8 | usize::from(data[at + 7]);
        let end = (at + 8 + bytes).min(data.len());
        if len > 0 {
            for descriptor in data[at + 8..end].chunks_mut(len) {
                f(descriptor);
            }
        }
        at += 8 + bytes;
    }
}

#[test]
fn the_changer_suite_catches_a_truncated_byte_count_and_a_lost_source() {
    changer_with(
        |cdb, response| {
            if cdb[0] == 0xb8 && response.status == 0 && response.data_in.len() >= 8 {
                let shown = (response.data_in.len() - 8) as u32;
                response.data_in[5..8].copy_from_slice(&shown.to_be_bytes()[1..]);
                each_descriptor(&mut response.data_in, |d| {
                    if d.len() > 9 {
                        d[9] &= 0x7f;
                    }
                });
            }
        },
        &["read-element-status.short-allocation", "move-medium.slot-to-slot", "move-medium.slot-to-drive-and-back"],
        &["read-element-status.all-types", "move-medium.source-empty", "mode-sense.element-address-assignment"],
    );
}

#[test]
fn the_changer_suite_catches_generic_move_errors_and_a_wrong_echo() {
    changer_with(
        |cdb, response| {
            if cdb[0] == 0xa5 && response.status == 2 && response.sense.len() >= 14 && response.sense[12] == 0x3b {
                response.sense[12] = 0x24;
                response.sense[13] = 0;
            }
            if cdb[0] == 0xb8 && cdb[4..6] == [0, 1] && response.data_in.len() >= 18 {
                response.data_in[17] ^= 0x01;
            }
        },
        &["move-medium.source-empty", "move-medium.destination-full", "read-element-status.one-element-each"],
        &["move-medium.slot-to-slot", "move-medium.invalid-address", "read-element-status.each-type"],
    );
}
