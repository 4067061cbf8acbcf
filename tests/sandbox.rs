//! Containment: a handler that loops forever, exhausts memory, traps or
//! reaches past its grant fails only its own device's commands, and a
//! second device keeps serving meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tcmu_wasm::backing::BackingFile;
use tcmu_wasm::device::Backend;
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::{HandlerCode, Limits, Runtime, SandboxedDevice};
use tcmu_wasm::sim::{SimCompletion, SimConfig, SimDevice};

const READ_10: [u8; 10] = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];
const TUR: [u8; 6] = [0; 6];

fn hostile_path() -> std::path::PathBuf {
    handlers::fixture("hostile")
}

fn limits() -> Limits {
    Limits { memory_bytes: 32 << 20, command_budget: Duration::from_millis(300), open_budget: Duration::from_secs(30) }
}

struct Fixture {
    _dir: tempfile::TempDir,
    code: Arc<HandlerCode>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let code = HandlerCode::load(&runtime, &hostile_path()).unwrap();
    Fixture { _dir: dir, code }
}

fn start(fx: &Fixture, name: &str, mode: &str) -> SimDevice {
    let backing = Arc::new(BackingFile::open(&fx._dir.path().join(format!("{name}.img")), 1 << 20, false).unwrap());
    let (code, name2, mode) = (fx.code.clone(), name.to_owned(), mode.to_owned());
    SimDevice::start(SimConfig::default(), name, move || {
        Ok(Box::new(SandboxedDevice::open(&name2, code, &mode, Some(backing), limits())?) as Box<dyn Backend>)
    })
    .unwrap()
}

fn assert_handler_fault(c: &SimCompletion) {
    assert_eq!(c.status, 0x02, "CHECK CONDITION");
    assert_eq!(
        (c.sense[2] & 0x0f, c.sense[12], c.sense[13]),
        (0x04, 0x44, 0x00),
        "HARDWARE ERROR / INTERNAL TARGET FAILURE"
    );
}

/// The misbehaving device's READ fails with a handler fault while a second
/// device answers a stream of commands; afterwards the faulty device is
/// rebuilt and serves again (and faults again, deterministically).
fn contained(mode: &str) {
    let fx = fixture();
    let mut bad = start(&fx, "bad0", mode);
    let mut good = start(&fx, "good0", "well-behaved");
    let misdeed = std::thread::spawn(move || {
        let c = bad.execute(&READ_10, &[], 8 * 512).unwrap();
        (bad, c)
    });
    let mut served = 0;
    while !misdeed.is_finished() || served < 20 {
        let c = good.execute(&READ_10, &[], 8 * 512).unwrap();
        assert_eq!((c.status, c.data_in.len()), (0, 8 * 512));
        served += 1;
    }
    let (mut bad, c) = misdeed.join().unwrap();
    assert_handler_fault(&c);
    assert_eq!(bad.execute(&TUR, &[], 0).unwrap().status, 0, "rebuilt instance serves");
    assert_handler_fault(&bad.execute(&READ_10, &[], 8 * 512).unwrap());
    bad.stop().unwrap();
    good.stop().unwrap();
}

#[test]
fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    contained("spin");
}

#[test]
fn memory_exhaustion_is_stopped_by_the_memory_cap() {
    contained("oom");
}

#[test]
fn a_trap_fails_only_its_command() {
    contained("trap");
}

#[test]
fn a_handler_cannot_reach_past_its_grant() {
    let fx = fixture();
    let mut dev = start(&fx, "escape0", "escape");
    let c = dev.execute(&READ_10, &[], 8 * 512).unwrap();
    assert_eq!(c.status, 0);
    assert_eq!(&c.data_in[..8], &[1u8; 8], "every attempt refused with out-of-range (1 = refused)");
    dev.stop().unwrap();
}

#[test]
fn a_handler_that_refuses_to_open_is_reported() {
    let fx = fixture();
    let backing = Arc::new(BackingFile::open(&fx._dir.path().join("x.img"), 4096, false).unwrap());
    let err = SandboxedDevice::open("x0", fx.code.clone(), "no-such-mode", Some(backing), limits())
        .err()
        .expect("open fails");
    assert!(format!("{err:#}").contains("unknown mode"), "{err:#}");
}

#[test]
fn compiled_code_is_cached_by_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let runtime = Runtime::new(Some(cache.clone())).unwrap();
    let first = HandlerCode::load(&runtime, &hostile_path()).unwrap();
    let entries = || {
        std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<Vec<_>>()
    };
    let cached = entries();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].starts_with(first.digest()), "{cached:?} keyed by {}", first.digest());
    let second = HandlerCode::load(&runtime, &hostile_path()).unwrap();
    assert_eq!(second.info(), first.info());
    assert_eq!(entries(), cached, "loaded from the cache, nothing recompiled");
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let runtime = Runtime::new(Some(cache.clone())).unwrap();
    HandlerCode::load(&runtime, &hostile_path()).unwrap();
    let entry = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&entry, b"garbage").unwrap();
    let code = HandlerCode::load(&runtime, &hostile_path()).unwrap();
    assert_eq!(code.info().name, "hostile");
    assert!(std::fs::metadata(&entry).unwrap().len() > 1000, "the entry was rewritten");
}

#[test]
fn a_non_component_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
    let runtime = Runtime::new(None).unwrap();
    let err = HandlerCode::load(&runtime, &bogus).expect_err("not a component");
    assert!(format!("{err:#}").contains("compiling handler"), "{err:#}");
}
