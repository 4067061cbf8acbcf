//! Containment, tried the way an attacker would: a handler that loops,
//! exhausts memory, traps, blocks in a host call, exits, hoards host
//! resources, floods the log, lies in its completions or reaches past its
//! grant fails only its own device's commands — quickly — while a second
//! device keeps serving; repeated faults fence the device; misbehaving
//! `describe`, `open` and `close` are bounded too.

use std::sync::Arc;
use std::time::Duration;

use tcmu_wasm::backing::BackingFile;
use tcmu_wasm::device::Backend;
use tcmu_wasm::handlers;
use tcmu_wasm::metrics::DeviceMetrics;
use tcmu_wasm::sandbox::{DeviceSpec, HandlerCode, Limits, OpenError, Runtime, SandboxedDevice};
use tcmu_wasm::sim::{SimCompletion, SimConfig, SimDevice};

const READ_10: [u8; 10] = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];
const TUR: [u8; 6] = [0; 6];
const QUERY_STATE: [u8; 6] = [0xc0, 0, 0, 0, 0, 0];

fn limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        command_budget: Duration::from_millis(300),
        open_budget: Duration::from_millis(500),
        ..Limits::default()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    runtime: Arc<Runtime>,
    code: Arc<HandlerCode>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let code = HandlerCode::load(&runtime, &handlers::fixture("hostile")).unwrap();
    Fixture { dir, runtime, code }
}

fn spec(fx: &Fixture, name: &str, mode: &str, metrics: &Arc<DeviceMetrics>) -> DeviceSpec {
    let backing = Arc::new(BackingFile::open(&fx.dir.path().join(format!("{name}.img")), 1 << 20, false).unwrap());
    let mut limits = limits();
    if mode == "oom" {
        // Filling even 32 MiB takes a while once the call is demoted below
        // a neighbour that keeps both cores busy (as `contained` does); the
        // short budget would then name the CPU, not the memory cap.
        limits.command_budget = Duration::from_secs(10);
    }
    let mut spec = DeviceSpec::new(name, mode, Some(backing), limits);
    spec.metrics = metrics.clone();
    spec
}

fn start_with(fx: &Fixture, name: &str, mode: &str) -> (SimDevice, Arc<DeviceMetrics>) {
    let metrics = Arc::new(DeviceMetrics::default());
    let (code, spec) = (fx.code.clone(), spec(fx, name, mode, &metrics));
    let dev = SimDevice::start_with_metrics(SimConfig::default(), name, metrics.clone(), move || {
        Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>)
    })
    .unwrap();
    (dev, metrics)
}

fn start(fx: &Fixture, name: &str, mode: &str) -> SimDevice {
    start_with(fx, name, mode).0
}

fn sense_of(c: &SimCompletion) -> (u8, u8, u8) {
    assert_eq!(c.status, 0x02, "CHECK CONDITION expected, got {c:?}");
    (c.sense[2] & 0x0f, c.sense[12], c.sense[13])
}

fn assert_handler_fault(c: &SimCompletion) {
    assert_eq!(sense_of(c), (0x04, 0x44, 0x00), "HARDWARE ERROR / INTERNAL TARGET FAILURE");
}

/// The misbehaving device's READ fails with a handler fault while a second
/// device answers a stream of commands; afterwards the faulty device is
/// rebuilt and serves again (and faults again, deterministically). Returns
/// the faulty device's metrics.
fn contained(mode: &str) -> Arc<DeviceMetrics> {
    let fx = fixture();
    let (mut bad, metrics) = start_with(&fx, "bad0", mode);
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
    let s = metrics.snapshot();
    assert_eq!((s.faults, s.rebuilds), (2, 1), "{s:?}");
    metrics
}

fn fault_cause(metrics: &DeviceMetrics) -> String {
    let s = metrics.snapshot();
    s.faults_by_cause.iter().filter(|(_, n)| *n > 0).map(|(c, _)| c.clone()).collect::<Vec<_>>().join(",")
}

#[test]
fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    assert_eq!(fault_cause(&contained("spin")), "cpu_budget");
}

#[test]
fn memory_exhaustion_is_stopped_by_the_memory_cap() {
    assert_eq!(fault_cause(&contained("oom")), "memory_cap");
}

#[test]
fn a_trap_fails_only_its_command() {
    assert_eq!(fault_cause(&contained("trap")), "trap");
}

#[test]
fn sleeping_in_a_host_call_faults_at_once_instead_of_holding_the_command() {
    // Without the sandbox's no-wait poll this READ would take 60 s and
    // succeed; it must fault instead.
    assert_eq!(fault_cause(&contained("sleep")), "forbidden");
}

#[test]
fn waiting_on_a_clock_pollable_faults() {
    assert_eq!(fault_cause(&contained("poll")), "forbidden");
}

#[test]
fn exiting_faults_only_the_command() {
    assert_eq!(fault_cause(&contained("exit")), "forbidden");
}

#[test]
fn hoarding_host_resources_hits_the_table_cap() {
    assert_eq!(fault_cause(&contained("pollables")), "forbidden");
}

#[test]
fn a_handler_cannot_reach_past_its_grant_or_size_host_allocations() {
    let fx = fixture();
    let mut dev = start(&fx, "escape0", "escape");
    let c = dev.execute(&READ_10, &[], 8 * 512).unwrap();
    assert_eq!(c.status, 0);
    assert_eq!(&c.data_in[..10], &[1u8; 10], "every attempt refused (1 = refused)");
    dev.stop().unwrap();
}

#[test]
fn repeated_faults_fence_the_device_until_reset() {
    let fx = fixture();
    let (mut dev, metrics) = start_with(&fx, "fence0", "every:trap");
    for _ in 0..3 {
        assert_handler_fault(&dev.execute(&TUR, &[], 0).unwrap());
    }
    // Fenced: no rebuild, no handler call, NOT READY / MANUAL INTERVENTION REQUIRED.
    for _ in 0..50 {
        assert_eq!(sense_of(&dev.execute(&TUR, &[], 0).unwrap()), (0x02, 0x04, 0x03));
    }
    let s = metrics.snapshot();
    assert!(s.fenced && s.fences == 1, "{s:?}");
    assert_eq!((s.faults, s.rebuilds), (3, 2), "no rebuild while fenced: {s:?}");
    dev.handle().reset(Duration::from_secs(10)).unwrap();
    assert!(!metrics.snapshot().fenced);
    assert_handler_fault(&dev.execute(&TUR, &[], 0).unwrap());
    dev.stop().unwrap();
}

#[test]
fn a_handler_whose_open_misbehaves_is_refused_within_the_open_budget() {
    let fx = fixture();
    for (mode, cause) in [("open:spin", "cpu budget"), ("open:sleep", "forbidden"), ("open:trap", "trap")] {
        let metrics = Arc::new(DeviceMetrics::default());
        let err = SandboxedDevice::open(fx.code.clone(), spec(&fx, "open0", mode, &metrics)).err().expect(mode);
        assert!(matches!(err, OpenError::Fault { during: "open", .. }), "{mode}: {err}");
        assert!(err.to_string().contains(cause), "{mode}: {err}");
    }
}

#[test]
fn a_close_that_spins_or_sleeps_does_not_hold_up_the_stop() {
    let fx = fixture();
    for mode in ["close:spin", "close:sleep"] {
        let mut dev = start(&fx, "close0", mode);
        assert_eq!(dev.execute(&TUR, &[], 0).unwrap().status, 0);
        // The harness's stop deadline is far longer than the close budget;
        // a close that were allowed to run on would time it out.
        dev.stop().unwrap();
    }
}

#[test]
fn misbehaving_describe_is_refused_at_load() {
    let fx = fixture();
    for (variant, why) in [
        ("hostile-describe-sleeps", "forbidden"),
        ("hostile-describe-spins", "cpu budget"),
        ("hostile-huge-name", "a name must be"),
    ] {
        let err = HandlerCode::load(&fx.runtime, &handlers::fixture(variant)).expect_err(variant);
        let text = format!("{err:#}");
        assert!(text.contains(why), "{variant}: {text}");
        assert!(text.len() < 4096, "{variant}: the error quotes the guest's text unbounded ({} bytes)", text.len());
    }
}

#[test]
fn a_log_flood_is_rate_limited() {
    let fx = fixture();
    let (mut dev, metrics) = start_with(&fx, "flood0", "log-flood");
    let c = dev.execute(&READ_10, &[], 8 * 512).unwrap();
    assert_eq!(c.status, 0, "a handler may log, it only loses the lines");
    let suppressed = metrics.snapshot().log_lines_suppressed;
    assert!(suppressed >= 199_000, "only {suppressed} of 200000 lines suppressed");
    dev.stop().unwrap();
}

#[test]
fn invalid_completions_are_corrected_not_passed_to_the_kernel() {
    let fx = fixture();
    for mode in ["bad-status", "no-sense"] {
        let (mut dev, metrics) = start_with(&fx, "lie0", mode);
        assert_handler_fault(&dev.execute(&READ_10, &[], 8 * 512).unwrap());
        let s = metrics.snapshot();
        assert_eq!((s.sanitized, s.faults), (1, 0), "{mode}: {s:?}");
        dev.stop().unwrap();
    }
}

#[test]
fn sense_through_set_sense_is_bounded_and_the_last_call_wins() {
    let fx = fixture();
    let (mut dev, metrics) = start_with(&fx, "sense0", "sense-flood");
    let c = dev.execute(&READ_10, &[], 8 * 512).unwrap();
    assert_eq!(sense_of(&c), (0x05, 0x24, 0x00), "the last set-sense, not the earlier MEDIUM ERRORs");
    assert_eq!(c.sense.len(), 96, "only what the ring's sense buffer holds is kept");
    assert!(c.sense[18..].iter().all(|&b| b == 0xee), "the rest is the handler's, truncated");
    assert_eq!(dev.execute(&TUR, &[], 0).unwrap().status, 0, "the device serves on");
    let s = metrics.snapshot();
    assert_eq!((s.sanitized, s.faults), (0, 0), "{s:?}");
    dev.stop().unwrap();
    // The same through `device.handle`, which a CDB longer than 16 bytes
    // takes (READ(32), a variable-length CDB), with the completion's own
    // sense empty.
    let (mut dev, metrics) = start_with(&fx, "sense1", "every:sense-flood");
    let mut read_32 = [0u8; 32];
    (read_32[0], read_32[7], read_32[9]) = (0x7f, 0x18, 0x09);
    let c = dev.execute(&read_32, &[], 512).unwrap();
    assert_eq!((sense_of(&c), c.sense.len()), ((0x05, 0x24, 0x00), 96));
    assert_eq!(sense_of(&dev.execute(&TUR, &[], 0).unwrap()), (0x05, 0x24, 0x00), "short CDBs alike");
    assert_eq!(metrics.snapshot().sanitized, 0);
    dev.stop().unwrap();
}

fn query(dev: &mut SimDevice) -> (u8, u32) {
    let c = dev.execute(&QUERY_STATE, &[], 64).unwrap();
    assert_eq!((c.status, c.data_in.len()), (0, 5), "{c:?}");
    (c.data_in[0], u32::from_le_bytes(c.data_in[1..5].try_into().unwrap()))
}

#[test]
fn a_rebuilt_instance_keeps_the_state_and_what_the_host_said() {
    let fx = fixture();
    let (mut dev, _) = start_with(&fx, "state0", "trap");
    for _ in 0..3 {
        assert_eq!(dev.execute(&TUR, &[], 0).unwrap().status, 0);
    }
    dev.handle().set_write_cache(false, Duration::from_secs(10)).unwrap();
    assert_eq!(query(&mut dev), (0, 4));
    assert_handler_fault(&dev.execute(&READ_10, &[], 8 * 512).unwrap());
    // The new instance restored the snapshot taken after the query.
    assert_eq!(query(&mut dev), (0, 5), "write cache off and the command count survive the fault");
    dev.stop().unwrap();
}

#[test]
fn without_state_the_host_replays_what_it_told_the_handler() {
    let fx = fixture();
    let (mut dev, _) = start_with(&fx, "replay0", "trap,stateless");
    dev.handle().set_write_cache(false, Duration::from_secs(10)).unwrap();
    assert_eq!(query(&mut dev).0, 0);
    assert_handler_fault(&dev.execute(&READ_10, &[], 8 * 512).unwrap());
    // A fresh instance (count restarts) that heard "write cache off" again:
    // the operator's setting is not lost to the fault.
    assert_eq!(query(&mut dev), (0, 1));
    dev.stop().unwrap();
}

#[test]
fn a_handler_that_refuses_to_open_is_reported() {
    let fx = fixture();
    let metrics = Arc::new(DeviceMetrics::default());
    let err = SandboxedDevice::open(fx.code.clone(), spec(&fx, "x0", "no-such-mode", &metrics)).err().expect("fails");
    assert!(matches!(&err, OpenError::Refused(m) if m.contains("unknown mode")), "{err}");
}

#[test]
fn compiled_code_is_cached_by_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let runtime = Runtime::new(Some(cache.clone())).unwrap();
    let first = HandlerCode::load(&runtime, &handlers::fixture("hostile")).unwrap();
    let entries = || {
        std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<Vec<_>>()
    };
    let cached = entries();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].starts_with(first.digest()), "{cached:?} keyed by {}", first.digest());
    let second = HandlerCode::load(&runtime, &handlers::fixture("hostile")).unwrap();
    assert_eq!(second.info(), first.info());
    assert_eq!(entries(), cached, "loaded from the cache, nothing recompiled");
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let runtime = Runtime::new(Some(cache.clone())).unwrap();
    HandlerCode::load(&runtime, &handlers::fixture("hostile")).unwrap();
    let entry = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&entry, b"garbage").unwrap();
    let code = HandlerCode::load(&runtime, &handlers::fixture("hostile")).unwrap();
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
