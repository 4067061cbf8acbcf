//! Media of a drive outside a library, end to end on the simulated kernel:
//! an optical drive starts with the config's disc, `tcmu-wasm ctl media`
//! (the real binary) swaps and ejects discs, the initiator sees eject
//! request → media removal → new media in GET EVENT STATUS NOTIFICATION and
//! the unit attention once, PREVENT ALLOW MEDIUM REMOVAL holds the disc
//! against an unforced eject, and a restarted daemon finds the drive as the
//! operator left it (a different disc, or empty).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use tcmu_wasm::control::config::{ControlSettings, DaemonSettings, ServeConfig};
use tcmu_wasm::control::registry::Registry;
use tcmu_wasm::control::sim_platform::SimPlatform;
use tcmu_wasm::control::socket::ControlServer;
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::Runtime;
use tcmu_wasm::sim::{SimCompletion, SimConfig};

const T: Duration = Duration::from_secs(30);
const SECTOR: usize = 2048;

struct Daemon {
    socket: PathBuf,
    platform: Arc<SimPlatform>,
    registry: Arc<Registry>,
    _server: ControlServer,
}

/// A disc image of `sectors` sectors, each filled with `fill` and its number.
fn disc(dir: &Path, name: &str, sectors: usize, fill: u8) -> PathBuf {
    let mut bytes = vec![fill; sectors * SECTOR];
    for (n, sector) in bytes.chunks_mut(SECTOR).enumerate() {
        sector[..4].copy_from_slice(&(n as u32).to_be_bytes());
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn config(dir: &Path, first: &Path) -> ServeConfig {
    let text = format!(
        r#"
        [daemon]
        state_dir = "{}"
        [[device]]
        name = "dvd0"
        handler = "optical"
        export = "none"
        medium = "{}"
        [[device]]
        name = "disk0"
        handler = "file"
        size = "1M"
        backing = "{}"
        export = "none"
    "#,
        dir.join("state").display(),
        first.display(),
        dir.join("disk0.img").display()
    );
    ServeConfig::parse(&text).unwrap()
}

fn start(dir: &Path, cfg: &ServeConfig) -> Daemon {
    let runtime = Runtime::new(Some(dir.join("cache"))).unwrap();
    let platform = Arc::new(SimPlatform::new(SimConfig { data_blocks: 256, ..SimConfig::default() }));
    let settings = DaemonSettings { instance_id: Some("media-test".into()), ..cfg.daemon.clone() };
    let dirs = vec![PathBuf::from(handlers::BUILT_HANDLERS)];
    let registry = Registry::with_handler_dirs(runtime, settings, platform.clone(), dirs);
    for d in &cfg.devices {
        registry.add(d.clone()).unwrap();
    }
    let socket = dir.join(format!("control-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let control = ControlSettings { socket: socket.clone(), group: None, allow_paths: Vec::new() };
    let server = ControlServer::start(&control, registry.clone()).unwrap();
    Daemon { socket, platform, registry, _server: server }
}

fn exec(d: &Daemon, cdb: &[u8], data_in_len: u32) -> SimCompletion {
    exec_out(d, cdb, &[], data_in_len)
}

fn exec_out(d: &Daemon, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> SimCompletion {
    let kernel = d.platform.kernel("dvd0").unwrap();
    let mut kernel = kernel.lock().unwrap();
    kernel.execute(cdb, data_out, data_in_len, T).unwrap()
}

/// (key, ASC, ASCQ) of fixed-format sense; zeros for GOOD.
fn sense(c: &SimCompletion) -> (u8, u8, u8) {
    if c.status == 0 { (0, 0, 0) } else { (c.sense[2] & 0x0f, c.sense[12], c.sense[13]) }
}

fn tur(d: &Daemon) -> (u8, u8, u8) {
    sense(&exec(d, &[0; 6], 0))
}

/// A new disc: the unit attention once, then becoming ready, then ready.
fn becomes_ready(d: &Daemon) {
    assert_eq!(tur(d), (6, 0x28, 0x00), "not ready to ready change");
    assert_eq!(tur(d), (2, 0x04, 0x01), "becoming ready");
    assert_eq!(tur(d), (0, 0, 0), "ready");
}

/// The next media-class event code (0 = no change), polled.
fn media_event(d: &Daemon) -> u8 {
    let c = exec(d, &[0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0], 8);
    assert_eq!(c.status, 0, "{:02x?}", c.sense);
    assert_eq!(c.data_in[2] & 0x07, 4, "media class");
    c.data_in[4] & 0x0f
}

/// The first four bytes of sector `lba` (its number) and its fill byte.
fn read_sector(d: &Daemon, lba: u32) -> (u32, u8) {
    let [a, b, c, e] = lba.to_be_bytes();
    let r = exec(d, &[0x28, 0, a, b, c, e, 0, 0, 1, 0], SECTOR as u32);
    assert_eq!(r.status, 0, "{:02x?}", r.sense);
    (u32::from_be_bytes(r.data_in[..4].try_into().unwrap()), r.data_in[100])
}

fn ctl(d: &Daemon, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
        .args(["ctl", "--socket"])
        .arg(&d.socket)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn ctl_ok(d: &Daemon, args: &[&str]) -> String {
    let out = ctl(d, args);
    assert!(out.status.success(), "ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ctl_err(d: &Daemon, args: &[&str]) -> String {
    let out = ctl(d, args);
    assert!(!out.status.success(), "ctl {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

const EJECT_REQUEST: u8 = 1;
const NEW_MEDIA: u8 = 2;
const MEDIA_REMOVAL: u8 = 3;
const PREVENT: [u8; 6] = [0x1e, 0, 0, 0, 1, 0];
const ALLOW: [u8; 6] = [0x1e, 0, 0, 0, 0, 0];

#[test]
fn the_operator_changes_discs_the_initiator_hears_it_and_a_restart_keeps_the_drive_as_left() {
    let dir = tempfile::tempdir().unwrap();
    let first = disc(dir.path(), "first.iso", 32, 0xa1);
    let second = disc(dir.path(), "second.iso", 48, 0xb2);
    let cfg = config(dir.path(), &first);
    let d = start(dir.path(), &cfg);

    // The config's disc is in the drive at start.
    assert_eq!(media_event(&d), NEW_MEDIA);
    assert_eq!(media_event(&d), 0, "no change after that");
    becomes_ready(&d);
    assert_eq!(read_sector(&d, 31), (31, 0xa1));
    let status = ctl_ok(&d, &["status", "dvd0"]);
    assert!(status.contains(&format!("medium    {} (read-only)", first.display())), "{status}");

    // The initiator locks the disc in: an unforced eject or swap is refused,
    // the initiator hears the eject request, and the disc stays.
    assert_eq!(sense(&exec(&d, &PREVENT, 0)), (0, 0, 0));
    let err = ctl_err(&d, &["media", "eject", "dvd0"]);
    assert!(err.contains("prevents medium removal"), "{err}");
    assert_eq!(media_event(&d), EJECT_REQUEST);
    let second_arg = second.to_str().unwrap();
    let err = ctl_err(&d, &["media", "insert", "dvd0", second_arg]);
    assert!(err.contains("prevents medium removal"), "{err}");
    assert_eq!(media_event(&d), EJECT_REQUEST);
    assert_eq!(tur(&d), (0, 0, 0), "still ready, no unit attention");
    assert_eq!(read_sector(&d, 3), (3, 0xa1));

    // A bad image changes nothing either.
    let missing = dir.path().join("missing.iso");
    let err = ctl_err(&d, &["media", "insert", "dvd0", missing.to_str().unwrap(), "--force"]);
    assert!(err.contains("missing.iso"), "{err}");
    assert_eq!(read_sector(&d, 3), (3, 0xa1));

    // Forced, the swap happens: eject request, media removal, new media.
    let out = ctl_ok(&d, &["media", "insert", "dvd0", second_arg, "--force"]);
    assert!(out.contains("ejected") && out.contains("second.iso is in dvd0"), "{out}");
    assert_eq!(media_event(&d), EJECT_REQUEST);
    assert_eq!(media_event(&d), MEDIA_REMOVAL);
    assert_eq!(media_event(&d), NEW_MEDIA);
    assert_eq!(media_event(&d), 0);
    becomes_ready(&d);
    assert_eq!(read_sector(&d, 47), (47, 0xb2));

    // Allowed again, an unforced eject works; the tray is open.
    assert_eq!(sense(&exec(&d, &ALLOW, 0)), (0, 0, 0));
    assert!(ctl_ok(&d, &["media", "eject", "dvd0"]).contains("ejected"));
    assert_eq!(media_event(&d), EJECT_REQUEST);
    assert_eq!(media_event(&d), MEDIA_REMOVAL);
    assert_eq!(tur(&d), (2, 0x3a, 0x02), "tray open, no medium");
    assert!(ctl_ok(&d, &["media", "eject", "dvd0"]).contains("empty"), "ejecting an empty drive is fine");

    // A disk takes no medium.
    let err = ctl_err(&d, &["media", "insert", "disk0", second_arg]);
    assert!(err.contains("takes no removable medium"), "{err}");

    // Restart: the drive is empty as left, not back to the config's disc.
    drop(d);
    let d = start(dir.path(), &cfg);
    assert_eq!(sense(&exec(&d, &[0; 6], 0)).1, 0x3a, "still empty");
    assert!(d.registry.status(Some("dvd0")).unwrap().devices[0].medium.is_none());
    ctl_ok(&d, &["media", "insert", "dvd0", second_arg]);
    drop(d);

    // Restart again: the operator's second disc is back in.
    let d = start(dir.path(), &cfg);
    becomes_ready(&d);
    assert_eq!(read_sector(&d, 40), (40, 0xb2));
    let medium = d.registry.status(Some("dvd0")).unwrap().devices[0].medium.clone().unwrap();
    assert_eq!((medium.image, medium.recordable), (second, false));
}

#[test]
fn a_library_drive_may_not_name_a_medium_and_a_recordable_flag_needs_one() {
    let err = ServeConfig::parse(
        r#"
        [[device]]
        name = "changer0"
        handler = "changer"
        export = "none"
        [[device]]
        name = "tape0"
        handler = "tape"
        export = "none"
        medium = "/srv/a.tape"
        [[library]]
        name = "vtl0"
        changer = "changer0"
        drives = ["tape0"]
        slots = 2
        directory = "/srv/vtl0"
    "#,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("the library decides"), "{err:#}");
    let err = ServeConfig::parse(
        r#"
        [[device]]
        name = "dvd0"
        handler = "optical"
        export = "none"
        medium_recordable = true
    "#,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("needs a medium"), "{err:#}");
}

#[test]
fn a_blank_disc_burned_through_the_drive_reads_back_after_an_eject_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = disc(dir.path(), "first.iso", 32, 0xa1);
    let cfg = config(dir.path(), &first);
    let blank = dir.path().join("blank.dvd");
    let made = Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
        .args(["media", "blank", "--size", "1M"])
        .arg(&blank)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert_eq!(std::fs::metadata(&blank).unwrap().len(), (1 << 20) + 4096);

    let d = start(dir.path(), &cfg);
    let blank_arg = blank.to_str().unwrap();
    ctl_ok(&d, &["media", "insert", "dvd0", blank_arg, "--recordable"]);
    becomes_ready(&d);
    let profile = exec(&d, &[0x46, 0x01, 0, 0, 0, 0, 0, 0, 8, 0], 8);
    assert_eq!(&profile.data_in[6..8], &[0x00, 0x1b], "a DVD+R");
    // Burn 32 sectors, close track and session.
    let data: Vec<u8> = (0..32 * SECTOR).map(|i| (i / SECTOR) as u8 ^ 0x5a).collect();
    let write = exec_out(&d, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 32, 0], &data, 0);
    assert_eq!(sense(&write), (0, 0, 0));
    assert_eq!(sense(&exec(&d, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0)), (0, 0, 0));
    assert_eq!(sense(&exec(&d, &[0x5b, 0, 1, 0, 0, 1, 0, 0, 0, 0], 0)), (0, 0, 0));
    assert_eq!(sense(&exec(&d, &[0x5b, 0, 2, 0, 0, 0, 0, 0, 0, 0], 0)), (0, 0, 0));
    // The image on the host: the data from its first byte.
    assert_eq!(&std::fs::read(&blank).unwrap()[..data.len()], &data[..]);

    // Eject and re-insert: complete, reads as written.
    ctl_ok(&d, &["media", "eject", "dvd0"]);
    ctl_ok(&d, &["media", "insert", "dvd0", blank_arg, "--recordable"]);
    becomes_ready(&d);
    let info = exec(&d, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], 34);
    assert_eq!(info.data_in[2] & 0x0f, 0b1110, "complete");
    let read = exec(&d, &[0x28, 0, 0, 0, 0, 0, 0, 0, 32, 0], 32 * SECTOR as u32);
    assert_eq!(read.data_in, data);
    drop(d);

    // Restart: the burned disc is back in the drive, still complete.
    let d = start(dir.path(), &cfg);
    becomes_ready(&d);
    let capacity = exec(&d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(&capacity.data_in[..4], &31u32.to_be_bytes());
    let medium = d.registry.status(Some("dvd0")).unwrap().devices[0].medium.clone().unwrap();
    assert!(medium.recordable);
}
