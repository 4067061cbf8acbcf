//! The registry and the control socket, end to end on the simulated kernel:
//! `tcmu-wasm ctl` (the real binary) adds, inspects, reloads, rolls back,
//! resets and removes devices while they serve; callers who are neither
//! root nor in the control group are refused; a non-root member may name
//! host paths only under `control.allow_paths`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tcmu_wasm::control::api::{ErrorKind, Op, StatusReport};
use tcmu_wasm::control::config::{ControlSettings, DaemonSettings};
use tcmu_wasm::control::registry::Registry;
use tcmu_wasm::control::sim_platform::SimPlatform;
use tcmu_wasm::control::socket::{self, ControlServer};
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::Runtime;
use tcmu_wasm::sim::SimConfig;

struct Daemon {
    dir: tempfile::TempDir,
    socket: PathBuf,
    platform: Arc<SimPlatform>,
    registry: Arc<Registry>,
    _server: ControlServer,
}

fn daemon(group: Option<&str>, allow: &[&str]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    // Let an unprivileged test client reach the socket's directory; the
    // daemon's SO_PEERCRED check is what must keep it out.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let platform = Arc::new(SimPlatform::new(SimConfig { data_blocks: 256, ..SimConfig::default() }));
    let settings = DaemonSettings { instance_id: Some("control-test".into()), ..Default::default() };
    let dirs = vec![PathBuf::from(handlers::BUILT_HANDLERS)];
    let registry = Registry::with_handler_dirs(runtime, settings, platform.clone(), dirs);
    let socket = dir.path().join("run/control.sock");
    let control = ControlSettings {
        socket: socket.clone(),
        group: group.map(str::to_owned),
        allow_paths: allow.iter().map(PathBuf::from).collect(),
    };
    let server = ControlServer::start(&control, registry.clone()).unwrap();
    Daemon { dir, socket, platform, registry, _server: server }
}

fn ctl_as(d: &Daemon, user: Option<(u32, u32)>, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_tcmu-wasm");
    let mut cmd = match user {
        None => Command::new(bin),
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into(), bin.into()]);
            c
        }
    };
    cmd.args(["ctl", "--socket"]).arg(&d.socket).args(args).env("RUST_LOG", "off");
    cmd.output().unwrap()
}

fn ctl(d: &Daemon, args: &[&str]) -> String {
    let out = ctl_as(d, None, args);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn device_toml(d: &Daemon, name: &str) -> String {
    let backing = d.dir.path().join(format!("{name}.img"));
    format!("name=\"{name}\" handler=\"file\" size=\"4M\" backing=\"{}\" export=\"none\"", backing.display())
}

fn status(d: &Daemon) -> StatusReport {
    serde_json::from_str(&ctl(d, &["--json", "status"])).unwrap()
}

/// INQUIRY product revision of a device, through its simulated kernel.
fn revision(d: &Daemon, name: &str) -> String {
    let kernel = d.platform.kernel(name).unwrap();
    let c =
        kernel.lock().unwrap().execute(&[0x12, 0, 0, 0, 96, 0], &[], 96, std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(c.status, 0);
    String::from_utf8_lossy(&c.data_in[32..36]).trim().to_owned()
}

#[test]
fn ctl_drives_the_whole_device_lifecycle() {
    let d = daemon(None, &[]);
    assert!(status(&d).devices.is_empty());

    let out = ctl(&d, &["add", "--toml", &device_toml(&d, "disk0")]);
    assert!(out.contains("disk0") && out.contains("serving"), "{out}");
    ctl(&d, &["add", "--toml", &device_toml(&d, "disk1")]);
    let report = status(&d);
    assert_eq!(report.devices.len(), 2);
    let (a, b) = (&report.devices[0], &report.devices[1]);
    assert_eq!((a.name.as_str(), a.state.as_str(), a.handler.as_str()), ("disk0", "serving", "file"));
    assert_ne!(a.serial, b.serial, "each device gets its own identity");
    assert_eq!(revision(&d, "disk0"), "0.1");

    // The table: a header and one row per device.
    let table = ctl(&d, &["status"]);
    assert!(table.starts_with("DEVICE") && table.lines().count() == 3, "{table}");
    let detail = ctl(&d, &["status", "disk0"]);
    assert!(detail.contains("commands") && detail.contains(&a.digest), "{detail}");

    // Reload one device to the second build, then roll back.
    let build_b = handlers::fixture("file-build-b");
    let out = ctl(&d, &["reload", "--device", "disk0", "--wasm", build_b.to_str().unwrap()]);
    assert!(out.contains("disk0: reloaded"), "{out}");
    assert_eq!(revision(&d, "disk0"), "0.1b");
    assert_eq!(revision(&d, "disk1"), "0.1", "only the named device");
    let after = status(&d);
    assert!(after.devices[0].can_roll_back && after.devices[0].digest != a.digest);
    assert_eq!(after.devices[0].metrics.reloads, 1);
    ctl(&d, &["reload", "--device", "disk0", "--rollback"]);
    assert_eq!(revision(&d, "disk0"), "0.1");
    assert_eq!(status(&d).devices[0].digest, a.digest);

    // Reload by handler name: both devices.
    let out = ctl(&d, &["reload", "--handler", "file", "--wasm", build_b.to_str().unwrap()]);
    assert_eq!(out.matches("reloaded").count(), 2, "{out}");

    // A reload that cannot work changes nothing and says why.
    let out =
        ctl_as(&d, None, &["reload", "--device", "disk1", "--wasm", handlers::fixture("hostile").to_str().unwrap()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT reloaded") && text.contains("Other"), "{text}");
    assert_eq!(revision(&d, "disk1"), "0.1b");

    let handlers_listing = ctl(&d, &["handlers"]);
    assert!(handlers_listing.contains("file") && handlers_listing.contains("[disk0, disk1]"), "{handlers_listing}");
    let metrics = ctl(&d, &["metrics"]);
    assert!(metrics.contains("tcmu_wasm_reloads_total{device=\"disk0\",handler=\"file\"} 3"), "{metrics}");
    assert_eq!(ctl(&d, &["reset", "disk0"]).trim(), "disk0: done");

    ctl(&d, &["remove", "disk0"]);
    let left = status(&d);
    assert_eq!(left.devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["disk1"]);
    assert!(d.platform.kernel("disk0").is_none(), "its kernel side is gone");
    ctl(&d, &["remove", "disk1"]);
    assert!(status(&d).devices.is_empty());
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let d = daemon(None, &[]);
    ctl(&d, &["add", "--toml", &device_toml(&d, "disk0")]);
    let refused = |args: &[&str], want: &str| {
        let out = ctl_as(&d, None, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(err.contains(want), "{args:?}: {err}");
    };
    refused(&["add", "--toml", &device_toml(&d, "disk0")], "exists already");
    // A second device on the same backing file.
    refused(&["add", "--toml", &device_toml(&d, "disk0").replacen("disk0", "disk9", 1)], "same backing");
    refused(&["add", "--toml", "name=\"x\" handler=\"file\" size=\"1000\" export=\"none\""], "multiple of 512");
    refused(&["add", "--toml", "name=\"x\" handler=\"nosuch\" size=\"1M\" export=\"none\""], "no handler named");
    // The handler refuses its config: nothing is left behind.
    refused(&["add", "--toml", &format!("{} config=\"block_size=513\"", device_toml(&d, "bad0"))], "block_size");
    refused(&["remove", "nosuch"], "no device");
    refused(&["reload", "--device", "disk0", "--rollback"], "nothing to roll back to");
    assert_eq!(status(&d).devices.len(), 1);
    assert!(d.platform.kernel("bad0").is_none());

    // Raw protocol errors.
    let raw = |line: &str| {
        use std::io::{BufRead, Write};
        let stream = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        (&stream).write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(&stream).read_line(&mut answer).unwrap();
        serde_json::from_str::<tcmu_wasm::control::api::Response>(&answer).unwrap()
    };
    assert_eq!(raw("{\"v\":99,\"op\":\"status\"}\n").error.unwrap().kind, ErrorKind::UnsupportedVersion);
    assert_eq!(raw("nonsense\n").error.unwrap().kind, ErrorKind::BadRequest);
    assert_eq!(raw("{\"v\":1,\"op\":\"format-disk\"}\n").error.unwrap().kind, ErrorKind::BadRequest);
    assert!(raw("{\"v\":1,\"op\":\"status\"}\n").ok);
}

#[test]
fn only_root_and_the_control_group_may_connect() {
    let d = daemon(Some("nogroup"), &[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "group-accessible socket");
    // Open the socket file to everyone: the peer-credential check alone must hold.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(d.socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let stranger = ctl_as(&d, Some((65534, 1)), &["status"]);
    assert!(!stranger.status.success());
    let err = String::from_utf8_lossy(&stranger.stderr);
    assert!(err.contains("neither root nor in the control group"), "{err}");

    let member = ctl_as(&d, Some((65534, 65534)), &["status"]);
    assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));
}

#[test]
fn group_members_may_name_host_paths_only_under_allow_paths() {
    let allowed = tempfile::tempdir().unwrap();
    let d = daemon(Some("nogroup"), &[allowed.path().to_str().unwrap()]);
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(d.socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let member = Some((65534, 65534));
    let add = |backing: &Path| {
        let toml =
            format!("name=\"m0\" handler=\"file\" size=\"1M\" backing=\"{}\" export=\"none\"", backing.display());
        ctl_as(&d, member, &["add", "--toml", &toml])
    };
    let out = add(Path::new("/etc/shadow"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside control.allow_paths"));
    // `..` does not get out either.
    let sneaky = allowed.path().join("../../etc/passwd");
    assert!(!add(&sneaky).status.success());
    let out = add(&allowed.path().join("m0.img"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // And no code from elsewhere.
    let out = ctl_as(
        &d,
        member,
        &["reload", "--device", "m0", "--wasm", handlers::fixture("file-build-b").to_str().unwrap()],
    );
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("outside control.allow_paths"));
    d.registry.remove("m0").unwrap();
}

#[test]
fn a_second_daemon_does_not_steal_a_live_socket() {
    let d = daemon(None, &[]);
    let control = ControlSettings { socket: d.socket.clone(), group: None, allow_paths: Vec::new() };
    let err = ControlServer::start(&control, d.registry.clone()).err().expect("refused");
    assert!(format!("{err:#}").contains("another tcmu-wasm daemon"), "{err:#}");
    // The first still answers.
    let answer = socket::request(&d.socket, Op::Status { device: None }, std::time::Duration::from_secs(5)).unwrap();
    assert!(answer.ok);
}

#[test]
fn reload_changed_follows_each_devices_file() {
    let d = daemon(None, &[]);
    let wasm = d.dir.path().join("mine.wasm");
    std::fs::copy(handlers::built("file"), &wasm).unwrap();
    let toml = device_toml(&d, "disk0").replace("handler=\"file\"", &format!("handler=\"{}\"", wasm.display()));
    ctl(&d, &["add", "--toml", &toml]);
    // The same bytes under the search path's name: must not confuse the
    // registry about which file disk0 came from.
    ctl(&d, &["reload", "--device", "disk0", "--wasm", handlers::built("file").to_str().unwrap()]);
    ctl(&d, &["reload", "--device", "disk0", "--wasm", wasm.to_str().unwrap()]);
    assert!(ctl(&d, &["reload", "--changed"]).contains("nothing to reload"));
    std::fs::copy(handlers::fixture("file-build-b"), &wasm).unwrap();
    assert!(ctl(&d, &["reload", "--changed"]).contains("disk0: reloaded"));
    assert_eq!(revision(&d, "disk0"), "0.1b");
    std::fs::copy(handlers::built("file"), &wasm).unwrap();
    assert!(ctl(&d, &["reload", "--changed"]).contains("disk0: reloaded"));
    assert_eq!(revision(&d, "disk0"), "0.1");
    ctl(&d, &["remove", "disk0"]);
}
