//! Hot reload of a running device: the new code serves from the next
//! command on with the old instance's state; code that cannot open or
//! cannot take the state is refused and the old code keeps serving; under
//! a verifying load no command fails and no byte changes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tcmu_wasm::backing::BackingFile;
use tcmu_wasm::device::{Backend, DeviceError, ReloadRequest, StatePolicy};
use tcmu_wasm::handlers;
use tcmu_wasm::metrics::DeviceMetrics;
use tcmu_wasm::sandbox::{DeviceSpec, HandlerCode, Limits, Runtime, SandboxedDevice};
use tcmu_wasm::sim::load::{self, LoadConfig};
use tcmu_wasm::sim::{SimConfig, SimDevice};
use tcmu_wasm_tests::rw16;

const DEADLINE: Duration = Duration::from_secs(30);
const INQUIRY: [u8; 6] = [0x12, 0, 0, 0, 96, 0];
const TUR: [u8; 6] = [0; 6];
/// MODE SENSE(6), caching page (08h).
const MODE_SENSE_CACHING: [u8; 6] = [0x1a, 0x08, 0x08, 0, 0xff, 0];

struct Builds {
    _dir: tempfile::TempDir,
    a: Arc<HandlerCode>,
    b: Arc<HandlerCode>,
    hostile: Arc<HandlerCode>,
}

fn builds() -> Builds {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let load = |p: std::path::PathBuf| HandlerCode::load(&runtime, &p).unwrap();
    Builds {
        a: load(handlers::built("file")),
        b: load(handlers::fixture("file-build-b")),
        hostile: load(handlers::fixture("hostile")),
        _dir: dir,
    }
}

fn start(builds: &Builds, config: &str, size: u64) -> (SimDevice, Arc<DeviceMetrics>) {
    let path = builds._dir.path().join(format!("disk-{}.img", rand_suffix()));
    let backing = Arc::new(BackingFile::open(&path, size, false).unwrap());
    let metrics = Arc::new(DeviceMetrics::default());
    let mut spec = DeviceSpec::new("reload0", config, Some(backing), Limits::default());
    spec.metrics = metrics.clone();
    let code = builds.a.clone();
    let sim = SimConfig { data_blocks: 512, ..SimConfig::default() };
    let dev = SimDevice::start_with_metrics(sim, "reload0", metrics.clone(), move || {
        Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>)
    })
    .unwrap();
    (dev, metrics)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The INQUIRY product revision, which tells the builds apart.
fn revision(dev: &mut SimDevice) -> String {
    let c = dev.execute(&INQUIRY, &[], 96).unwrap();
    assert_eq!(c.status, 0);
    String::from_utf8_lossy(&c.data_in[32..36]).trim().to_owned()
}

fn wce(dev: &mut SimDevice) -> bool {
    let c = dev.execute(&MODE_SENSE_CACHING, &[], 255).unwrap();
    assert_eq!(c.status, 0, "{c:?}");
    let page = 4 + usize::from(c.data_in[3]);
    assert_eq!(c.data_in[page] & 0x3f, 0x08);
    c.data_in[page + 2] & 0x04 != 0
}

fn reload(dev: &SimDevice, code: &Arc<HandlerCode>, state: StatePolicy) -> Result<usize, DeviceError> {
    dev.handle().reload(ReloadRequest { code: code.clone(), state }, DEADLINE).map(|o| o.state_bytes)
}

#[test]
fn the_new_build_serves_with_the_old_instances_state() {
    let b = builds();
    let (mut dev, metrics) = start(&b, "serial=r0", 8 << 20);
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(dev.execute(&rw16(true, 8, 8), &pattern, 0).unwrap().status, 0);
    // Host-told state (write cache off) and a pending unit attention (resize).
    dev.handle().set_write_cache(false, DEADLINE).unwrap();
    dev.resize(16 << 20).unwrap();
    assert_eq!(revision(&mut dev), "0.1");

    let carried = reload(&dev, &b.b, StatePolicy::Require).unwrap();
    assert!(carried > 0, "the file handler has state to carry");
    assert_eq!(revision(&mut dev), "0.1b", "build B answers now");
    let ua = dev.execute(&TUR, &[], 0).unwrap();
    assert_eq!(
        (ua.status, ua.sense[2] & 0xf, ua.sense[12], ua.sense[13]),
        (2, 6, 0x2a, 0x09),
        "the pending UA moved over"
    );
    assert_eq!(dev.execute(&TUR, &[], 0).unwrap().status, 0, "and is reported once");
    assert!(!wce(&mut dev), "write cache stays off");
    let back = dev.execute(&rw16(false, 8, 8), &[], 4096).unwrap();
    assert_eq!(back.data_in, pattern);

    reload(&dev, &b.a, StatePolicy::Require).unwrap();
    assert_eq!(revision(&mut dev), "0.1");
    assert!(!wce(&mut dev));
    let s = metrics.snapshot();
    assert_eq!((s.reloads, s.reload_failures, s.faults), (2, 0, 0), "{s:?}");
    dev.stop().unwrap();
}

#[test]
fn code_that_cannot_open_is_refused_and_the_old_code_keeps_serving() {
    let b = builds();
    let (mut dev, metrics) = start(&b, "serial=r1", 8 << 20);
    // The hostile fixture refuses the file handler's config string.
    let err = reload(&dev, &b.hostile, StatePolicy::Require).unwrap_err();
    assert!(err.to_string().contains("refused to open"), "{err}");
    assert_eq!(revision(&mut dev), "0.1");
    assert_eq!(metrics.snapshot().reload_failures, 1);
    dev.stop().unwrap();
}

#[test]
fn code_that_cannot_take_the_state_is_refused_unless_told_to_drop_it() {
    let b = builds();
    // An empty config is valid for both the file handler and the fixture.
    let (mut dev, _) = start(&b, "", 8 << 20);
    let err = reload(&dev, &b.hostile, StatePolicy::Require).unwrap_err();
    assert!(err.to_string().contains("state hand-over failed"), "{err}");
    assert_eq!(revision(&mut dev), "0.1", "the file handler still answers");
    // Asked to, the new code starts fresh.
    reload(&dev, &b.hostile, StatePolicy::Discard).unwrap();
    // Only the fixture answers its vendor command C0h (with 5 bytes).
    let c = dev.execute(&[0xc0, 0, 0, 0, 0, 0], &[], 64).unwrap();
    assert_eq!((c.status, c.data_in.len()), (0, 5), "the fixture serves now: {c:?}");
    dev.stop().unwrap();
}

#[test]
fn reloads_under_a_verifying_load_fail_no_command() {
    let b = builds();
    let size = 8 << 20;
    let (mut dev, metrics) = start(&b, "serial=r3", size);
    let stop = AtomicBool::new(false);
    let cfg = LoadConfig { size, iodepth: 8, write_share: 0.5, seed: 11 };
    let (kernel, handle) = dev.split();
    let report = std::thread::scope(|scope| {
        let loader = scope.spawn(|| load::run(kernel, &cfg, &stop));
        for i in 0..20 {
            std::thread::sleep(Duration::from_millis(10));
            let code = if i % 2 == 0 { &b.b } else { &b.a };
            handle.reload(ReloadRequest { code: code.clone(), state: StatePolicy::Require }, DEADLINE).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        loader.join().unwrap()
    })
    .unwrap();
    assert!(report.commands > 100, "the load ran: {report:?}");
    assert_eq!((report.failed, report.data_errors), (0, 0), "{:?}", report.first_failures);
    assert_eq!(metrics.snapshot().reloads, 20);
    assert_eq!(revision(&mut dev), "0.1", "20 reloads end on build A");
    dev.stop().unwrap();
}
