//! `org.kernel.TCMUService1` on a private dbus-daemon that loads the
//! shipped policy file: the ObjectManager layout targetcli reads,
//! `CheckConfig` verdicts, `ChangeMedium` loading and ejecting a drive's
//! disc, a second owner refused with a clear message, and callers who are
//! not root refused twice over — by the bus policy, and by the daemon itself
//! on a bus without that policy.
//!
//! Needs `dbus-daemon` (Debian: `dbus`); the non-root checks need root to
//! switch user. Set TCMU_WASM_SKIP_DBUS=1 to skip where there is no
//! dbus-daemon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcmu_wasm::control::config::{DeviceConfig, Export, KernelDeviceSettings};
use tcmu_wasm::control::dbus;
use tcmu_wasm::control::registry::Registry;
use tcmu_wasm_tests::sim_registry;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/dbus/org.kernel.TCMUService1.conf");

/// A dbus-daemon on a socket in `dir`; killed when dropped.
struct Bus {
    child: Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start a bus shaped like the system bus (method calls denied unless a
/// policy allows them), with the shipped policy included or not.
fn bus(dir: &Path, with_policy: bool) -> Option<Bus> {
    if std::env::var_os("TCMU_WASM_SKIP_DBUS").is_some() {
        return None;
    }
    let socket = dir.join(if with_policy { "strict.sock" } else { "loose.sock" });
    let include = if with_policy { format!("<include>{POLICY}</include>") } else { String::new() };
    // Without the shipped policy, this bus lets anyone call anything: what
    // is left to refuse a stranger is the daemon's own check.
    let open = if with_policy { "" } else { r#"<allow send_destination="*"/><allow own="*"/>"# };
    let config = format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    {open}
  </policy>
  {include}
</busconfig>"#,
        socket = socket.display()
    );
    let path = dir.join(if with_policy { "strict.conf" } else { "loose.conf" });
    std::fs::write(&path, config).unwrap();
    let child = match Command::new("dbus-daemon")
        .arg(format!("--config-file={}", path.display()))
        .arg("--nofork")
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot run dbus-daemon ({e}): install dbus, or set TCMU_WASM_SKIP_DBUS=1"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "dbus-daemon did not listen on {}", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Bus { child, address: format!("unix:path={}", socket.display()) })
}

struct Setup {
    _dir: tempfile::TempDir,
    images: PathBuf,
    registry: Arc<Registry>,
    settings: KernelDeviceSettings,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let registry = sim_registry(dir.path(), "dbus");
    let settings = KernelDeviceSettings { enabled: true, allow_backing: vec![images.clone()] };
    Setup { _dir: dir, images, registry, settings }
}

fn client(address: &str) -> zbus::blocking::Connection {
    zbus::blocking::connection::Builder::address(address).unwrap().build().unwrap()
}

fn check_config(c: &zbus::blocking::Connection, config: &str) -> (bool, String) {
    let path = format!("{}/wasm", dbus::ROOT_PATH);
    c.call_method(Some(dbus::BUS_NAME), path.as_str(), Some("org.kernel.TCMUService1"), "CheckConfig", &(config,))
        .unwrap()
        .body()
        .deserialize()
        .unwrap()
}

fn change_medium(c: &zbus::blocking::Connection, name: &str, config: &str) -> (i32, String) {
    let path = format!("{}/wasm", dbus::ROOT_PATH);
    c.call_method(
        Some(dbus::BUS_NAME),
        path.as_str(),
        Some("org.kernel.TCMUService1"),
        "ChangeMedium",
        &(name, 0u64, config),
    )
    .unwrap()
    .body()
    .deserialize()
    .unwrap()
}

/// Call CheckConfig as uid/gid 65534 with dbus-send; its exit status and output.
fn check_config_as_nobody(address: &str) -> Option<(bool, String)> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root: the non-root caller checks are skipped");
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "dbus-send"])
        .arg(format!("--bus={address}"))
        .args(["--print-reply", "--dest=org.kernel.TCMUService1", "/org/kernel/TCMUService1/wasm"])
        .args(["org.kernel.TCMUService1.CheckConfig", "string:wasm/null/"])
        .output()
        .expect("setpriv and dbus-send run");
    Some((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

#[test]
fn targetcli_sees_the_wasm_subtype_and_only_root_gets_answers() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let Some(bus) = bus(dir.path(), true) else { return };
    let _service = dbus::start(s.registry.clone(), s.settings.clone(), Some(&bus.address)).unwrap();
    let root = client(&bus.address);

    // What targetcli's _user_backstores() does: GetManagedObjects on the root.
    type Managed = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedValue>>>;
    let managed: Managed = root
        .call_method(
            Some(dbus::BUS_NAME),
            dbus::ROOT_PATH,
            Some("org.freedesktop.DBus.ObjectManager"),
            "GetManagedObjects",
            &(),
        )
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    let paths: Vec<String> = managed.keys().map(|p| p.to_string()).collect();
    assert_eq!(paths, vec!["/org/kernel/TCMUService1/wasm".to_owned()], "one user:wasm object");
    let props = &managed.values().next().unwrap()["org.kernel.TCMUService1"];
    let desc: String = props["ConfigDesc"].try_clone().unwrap().try_into().unwrap();
    assert!(
        desc.contains("file") && desc.contains("optical") && desc.contains(&s.images.display().to_string()),
        "{desc}"
    );
    // The handlers' own config keys join it once the daemon has loaded them.
    let described = (0..300).find_map(|_| {
        let desc: String = root
            .call_method(
                Some(dbus::BUS_NAME),
                format!("{}/wasm", dbus::ROOT_PATH).as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.kernel.TCMUService1", "ConfigDesc"),
            )
            .unwrap()
            .body()
            .deserialize::<OwnedValue>()
            .unwrap()
            .try_into()
            .unwrap();
        if desc.contains("file config") {
            return Some(desc);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        None
    });
    let described = described.expect("ConfigDesc never gained the handlers' keys");
    assert!(described.contains("  block_size=512|1024|2048|4096: logical block size"), "{described}");
    assert!(described.contains("tape config") && described.contains("  early_warning="), "{described}");

    // CheckConfig: what targetcli's `create` asks before writing configfs.
    let ok = format!("wasm/file/{}/v1.img;config=serial=v1", s.images.display());
    assert_eq!(check_config(&root, &ok), (true, "OK".to_owned()));
    assert!(!s.images.join("v1.img").exists(), "CheckConfig created the backing");
    for (config, want) in [
        ("wasm/file//etc/v1.img".to_owned(), "outside kernel_devices.allow_backing"),
        (format!("wasm/nosuch/{}/v1.img", s.images.display()), "no handler named \"nosuch\""),
        (format!("wasm/file/{}/v1.img;colour=red", s.images.display()), "unknown option"),
        (format!("file/{}/v1.img", s.images.display()), "must start with wasm/"),
    ] {
        let (valid, message) = check_config(&root, &config);
        assert!(!valid && message.contains(want), "{config}: {message}");
    }

    // Nobody else gets an answer: the bus policy refuses the call.
    if let Some((ok, out)) = check_config_as_nobody(&bus.address) {
        assert!(!ok && out.contains("AccessDenied"), "a non-root caller got through the policy: {out}");
    }

    // A second owner of the name is told who has it.
    let err = match dbus::start(s.registry.clone(), s.settings.clone(), Some(&bus.address)) {
        Err(e) => format!("{e:#}"),
        Ok(_) => panic!("two services owned the name"),
    };
    assert!(err.contains("owned by another process"), "{err}");
}

#[test]
fn the_daemon_refuses_strangers_even_on_a_bus_that_lets_them_call() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let Some(bus) = bus(dir.path(), false) else { return };
    let _service = dbus::start(s.registry.clone(), s.settings.clone(), Some(&bus.address)).unwrap();
    if let Some((ok, out)) = check_config_as_nobody(&bus.address) {
        assert!(
            !ok && out.contains("AccessDenied") && out.contains("root only"),
            "the daemon answered a stranger: {out}"
        );
    }
    // Root still gets answers there.
    assert!(check_config(&client(&bus.address), "wasm/null/").0);
}

#[test]
fn change_medium_swaps_the_disc_in_a_drive() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let Some(bus) = bus(dir.path(), true) else { return };
    s.registry.add(DeviceConfig::with_defaults("dvd0", "optical", Export::None)).unwrap();
    let _service = dbus::start(s.registry.clone(), s.settings.clone(), Some(&bus.address)).unwrap();
    let root = client(&bus.address);
    let iso = s.images.join("disc.iso");
    std::fs::write(&iso, vec![0u8; 2048 * 64]).unwrap();
    let medium = |r: &Registry| r.status(Some("dvd0")).unwrap().devices[0].medium.as_ref().map(|m| m.image.clone());

    let (rc, message) = change_medium(&root, "dvd0", &format!("wasm/optical/{}", iso.display()));
    assert_eq!(rc, 0, "{message}");
    assert_eq!(medium(&s.registry), Some(iso.clone()));
    // Outside the allow-list: refused, the disc stays.
    let (rc, message) = change_medium(&root, "dvd0", "wasm/optical//etc/passwd");
    assert!(rc != 0 && message.contains("allow_backing"), "{message}");
    assert_eq!(medium(&s.registry), Some(iso.clone()));
    // A disk has no medium to change.
    let (rc, _) = change_medium(&root, "nosuch", &format!("wasm/optical/{}", iso.display()));
    assert_ne!(rc, 0);
    // No image: eject.
    let (rc, message) = change_medium(&root, "dvd0", "wasm/optical/");
    assert_eq!(rc, 0, "{message}");
    assert_eq!(medium(&s.registry), None);
}
