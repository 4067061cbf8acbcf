//! A virtual tape library end to end on the simulated kernel: the registry
//! serves a changer and two tape drives of one `[[library]]`; MOVE MEDIUM
//! through the changer loads and unloads the drives (which report
//! 02/04/01, then 06/28/00, then ready), data written on one drive reads
//! back on the other, `tcmu-wasm ctl library` (the real binary) creates
//! and imports cartridges (the changer reports 06/28/00), and a restarted
//! daemon finds every cartridge where it was, in the drives too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tcmu_wasm::control::config::{ControlSettings, DaemonSettings, DeviceConfig, LibraryConfig, ServeConfig};
use tcmu_wasm::control::registry::Registry;
use tcmu_wasm::control::sim_platform::SimPlatform;
use tcmu_wasm::control::socket::ControlServer;
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::Runtime;
use tcmu_wasm::sim::{SimCompletion, SimConfig};

const T: Duration = Duration::from_secs(30);

struct Daemon {
    socket: PathBuf,
    platform: Arc<SimPlatform>,
    registry: Arc<Registry>,
    _server: ControlServer,
}

fn config(dir: &Path) -> ServeConfig {
    let text = format!(
        r#"
        [[device]]
        name = "changer0"
        handler = "changer"
        export = "none"
        [[device]]
        name = "tape0"
        handler = "tape"
        export = "none"
        [[device]]
        name = "tape1"
        handler = "tape"
        config = "serial=DRIVE-B"
        export = "none"
        [[library]]
        name = "vtl0"
        changer = "changer0"
        drives = ["tape0", "tape1"]
        slots = 4
        mail_slots = 1
        directory = "{}"
        cartridge_size = "1M"
        cartridges = ["TAPE01", "TAPE02"]
    "#,
        dir.join("vtl0").display()
    );
    ServeConfig::parse(&text).unwrap()
}

fn start(dir: &Path, cfg: &ServeConfig) -> Daemon {
    let runtime = Runtime::new(Some(dir.join("cache"))).unwrap();
    let platform = Arc::new(SimPlatform::new(SimConfig { data_blocks: 256, ..SimConfig::default() }));
    let settings = DaemonSettings { instance_id: Some("library-test".into()), ..Default::default() };
    let dirs = vec![PathBuf::from(handlers::BUILT_HANDLERS)];
    let registry = Registry::with_handler_dirs(runtime, settings, platform.clone(), dirs);
    for l in &cfg.libraries {
        registry.add_library(l.clone(), &cfg.devices).unwrap();
    }
    for d in &cfg.devices {
        registry.add(d.clone()).unwrap();
    }
    let socket = dir.join(format!("control-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let control = ControlSettings { socket: socket.clone(), group: None, allow_paths: Vec::new() };
    let server = ControlServer::start(&control, registry.clone()).unwrap();
    Daemon { socket, platform, registry, _server: server }
}

fn exec(d: &Daemon, device: &str, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> SimCompletion {
    let kernel = d.platform.kernel(device).unwrap();
    let mut kernel = kernel.lock().unwrap();
    kernel.execute(cdb, data_out, data_in_len, T).unwrap()
}

/// (key, ASC, ASCQ) of fixed-format sense; zeros for GOOD.
fn sense(c: &SimCompletion) -> (u8, u8, u8) {
    if c.status == 0 { (0, 0, 0) } else { (c.sense[2] & 0x0f, c.sense[12], c.sense[13]) }
}

fn tur(d: &Daemon, device: &str) -> (u8, u8, u8) {
    sense(&exec(d, device, &[0; 6], &[], 0))
}

fn move_medium(d: &Daemon, source: u16, destination: u16) -> (u8, u8, u8) {
    let [s0, s1] = source.to_be_bytes();
    let [d0, d1] = destination.to_be_bytes();
    sense(&exec(d, "changer0", &[0xa5, 0, 0, 0, s0, s1, d0, d1, 0, 0, 0, 0], &[], 0))
}

/// READ ELEMENT STATUS, all types, VOLTAG and DVCID.
fn element_status(d: &Daemon) -> Vec<u8> {
    let c = exec(d, "changer0", &[0xb8, 0x10, 0, 0, 0xff, 0xff, 0x01, 0, 0x40, 0, 0, 0], &[], 0x4000);
    assert_eq!(c.status, 0, "{:02x?}", c.sense);
    c.data_in
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn ctl(d: &Daemon, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
        .args(["ctl", "--socket"])
        .arg(&d.socket)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Thread a freshly loaded drive: becoming ready, then the unit attention, then ready.
fn becomes_ready(d: &Daemon, drive: &str) {
    assert_eq!(tur(d, drive), (2, 0x04, 0x01), "{drive}: becoming ready");
    assert_eq!(tur(d, drive), (6, 0x28, 0x00), "{drive}: medium may have changed");
    assert_eq!(tur(d, drive), (0, 0, 0), "{drive}: ready");
}

const SLOT1: u16 = 0x0400;
const SLOT2: u16 = 0x0401;
const MAIL1: u16 = 0x0300;
const DRIVE0: u16 = 0x0001;
const DRIVE1: u16 = 0x0002;

#[test]
fn moves_load_drives_data_follows_the_cartridge_and_everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let d = start(dir.path(), &cfg);

    // Empty drives; barcodes and the drives' serials in the element status.
    assert_eq!(tur(&d, "tape0"), (2, 0x3a, 0));
    let status = element_status(&d);
    assert!(contains(&status, b"TAPE01                          "), "blank-padded VOLTAG");
    assert!(contains(&status, b"DRIVE-B"), "DVCID is the configured serial");
    let tape0_serial = d.registry.status(Some("tape0")).unwrap().devices[0].serial.clone();
    assert!(contains(&status, tape0_serial.as_bytes()), "DVCID is the host's serial");

    // slot 1 -> drive 0: the drive threads the tape.
    assert_eq!(move_medium(&d, SLOT1, DRIVE0), (0, 0, 0));
    becomes_ready(&d, "tape0");
    let record: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let write = exec(&d, "tape0", &[0x0a, 0, 0, 0x10, 0x00, 0], &record, 0);
    assert_eq!(write.status, 0);
    assert_eq!(exec(&d, "tape0", &[0x10, 0, 0, 0, 1, 0], &[], 0).status, 0, "filemark");

    // Errors: an empty source, a full destination.
    assert_eq!(move_medium(&d, SLOT1, SLOT2), (5, 0x3b, 0x0e));
    assert_eq!(move_medium(&d, SLOT2, DRIVE0), (5, 0x3b, 0x0d));
    assert_eq!(move_medium(&d, 0x0999, SLOT2), (5, 0x21, 0x01));

    // drive 0 -> drive 1 without an unload first: it moves, data and all.
    assert_eq!(move_medium(&d, DRIVE0, DRIVE1), (0, 0, 0));
    assert_eq!(tur(&d, "tape0"), (2, 0x3a, 0), "the first drive is empty");
    becomes_ready(&d, "tape1");
    let read = exec(&d, "tape1", &[0x08, 0, 0, 0x10, 0x00, 0], &[], 4096);
    assert_eq!((read.status, &read.data_in), (0, &record));
    let status = element_status(&d);
    assert!(contains(&status, b"TAPE01"));

    // The operator creates a cartridge and puts it in the mail slot.
    let out = ctl(&d, &["library", "create", "vtl0", "NEW001", "--size", "2M", "--import"]);
    assert!(out.contains("mail slot 1"), "{out}");
    assert_eq!(tur(&d, "changer0"), (6, 0x28, 0x00), "the changer tells initiators");
    assert_eq!(tur(&d, "changer0"), (0, 0, 0), "once");
    // Locked mail slots keep it in; unlocked, it goes to a slot.
    assert_eq!(sense(&exec(&d, "changer0", &[0x1e, 0, 0, 0, 1, 0], &[], 0)), (0, 0, 0));
    let export = Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
        .args(["ctl", "--socket"])
        .arg(&d.socket)
        .args(["library", "export", "vtl0"])
        .output()
        .unwrap();
    assert!(!export.status.success(), "PREVENT MEDIUM REMOVAL locks the mail slots");
    assert_eq!(move_medium(&d, SLOT2, MAIL1), (5, 0x3b, 0x0d), "the mail slot is full");
    assert_eq!(sense(&exec(&d, "changer0", &[0x1e, 0, 0, 0, 0, 0], &[], 0)), (0, 0, 0));
    assert_eq!(move_medium(&d, MAIL1, 0x0402), (0, 0, 0));
    let listing = ctl(&d, &["library", "status", "vtl0"]);
    assert!(listing.contains("NEW001") && listing.contains("TAPE02"), "{listing}");
    assert!(listing.contains("TAPE01 (from 0x0400)") && listing.contains("[tape1]"), "{listing}");

    // Restart: a new daemon on the same directory.
    drop(d);
    let d = start(dir.path(), &cfg);
    becomes_ready(&d, "tape1");
    let read = exec(&d, "tape1", &[0x08, 0, 0, 0x10, 0x00, 0], &[], 4096);
    assert_eq!((read.status, &read.data_in), (0, &record), "the cartridge is still in drive 1, data intact");
    assert_eq!(tur(&d, "tape0"), (2, 0x3a, 0));
    let status = element_status(&d);
    assert!(contains(&status, b"NEW001"));
    // Back to its slot, whether or not the drive was unloaded.
    assert_eq!(move_medium(&d, DRIVE1, SLOT1), (0, 0, 0));
    assert_eq!(tur(&d, "tape1"), (2, 0x3a, 0));
    let listing = ctl(&d, &["library", "status"]);
    assert!(listing.contains("drive       2  0x0002  empty"), "{listing}");
}

#[test]
fn library_configs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = config(dir.path());
    let text = |edit: &dyn Fn(&mut LibraryConfig), devices: &[DeviceConfig]| {
        let mut l = good.libraries[0].clone();
        edit(&mut l);
        let mut cfg = good.clone();
        cfg.libraries = vec![l];
        cfg.devices = devices.to_vec();
        cfg
    };
    let cases: Vec<(ServeConfig, &str)> = vec![
        (text(&|l| l.drives = vec!["tape9".into()], &good.devices), "no [[device]] named"),
        (text(&|l| l.drives = vec!["changer0".into()], &good.devices), "named twice"),
        (text(&|l| l.slots = 0, &good.devices), "storage slots"),
        (text(&|l| l.cartridges = vec!["bad code".into()], &good.devices), "barcode"),
        (text(&|l| l.cartridge_size.0 = 1000, &good.devices), "cartridge_size"),
        (text(&|l| l.directory = "relative".into(), &good.devices), "absolute"),
    ];
    for (cfg, want) in cases {
        let toml = toml_of(&cfg);
        let err = ServeConfig::parse(&toml).expect_err(want);
        assert!(format!("{err:#}").contains(want), "{want}: {err:#}");
    }
}

/// A config back to TOML (devices and libraries only).
fn toml_of(cfg: &ServeConfig) -> String {
    #[derive(serde::Serialize)]
    struct File<'a> {
        device: &'a [DeviceConfig],
        library: &'a [LibraryConfig],
    }
    toml::to_string(&File { device: &cfg.devices, library: &cfg.libraries }).unwrap()
}

#[test]
fn a_library_member_with_the_wrong_kind_of_handler_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.devices[2].handler = "changer".into(); // tape1, a drive
    cfg.devices[2].config.clear();
    let runtime = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let platform = Arc::new(SimPlatform::new(SimConfig { data_blocks: 64, ..SimConfig::default() }));
    let settings = DaemonSettings { instance_id: Some("library-test".into()), ..Default::default() };
    let registry =
        Registry::with_handler_dirs(runtime, settings, platform, vec![PathBuf::from(handlers::BUILT_HANDLERS)]);
    registry.add_library(cfg.libraries[0].clone(), &cfg.devices).unwrap();
    let err = registry.add(cfg.devices[2].clone()).unwrap_err();
    assert!(err.message.contains("is not a tape drive"), "{}", err.message);
    let mut changer = cfg.devices[0].clone();
    changer.handler = "tape".into();
    let err = registry.add(changer).unwrap_err();
    assert!(err.message.contains("changer, but handler tape"), "{}", err.message);
}
