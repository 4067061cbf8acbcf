//! Kernel-first devices (a user backstore somebody created through
//! configfs with `dev_config = wasm/<handler>/<backing>[;option]...`),
//! on the simulated kernel: served when the handler is installed and every
//! host path is under the allow-list, refused with an errno (and nothing
//! left behind) otherwise, never removed by the daemon, forgotten when the
//! kernel removes them.

use std::time::Duration;

use tcmu_wasm::control::api::{ErrorKind, Origin};
use tcmu_wasm::control::config::KernelDeviceSettings;
use tcmu_wasm::control::kernel_devices;
use tcmu_wasm::control::registry::Registry;
use tcmu_wasm::kernel::uio::TcmuName;
use tcmu_wasm::ring::Ring;
use tcmu_wasm::sim::{SimConfig, SimKernel};
use tcmu_wasm_tests::{rw16, sim_registry};

const DEADLINE: Duration = Duration::from_secs(30);

fn announced(device: &str, cfg: &str) -> TcmuName {
    TcmuName { hba: 3, device: device.into(), subtype: "wasm".into(), cfg: cfg.into() }
}

/// Serve `name` on a fresh simulated kernel, as the ADDED event does.
fn serve(
    registry: &Registry,
    settings: &KernelDeviceSettings,
    name: &TcmuName,
    size: u64,
) -> (Result<(), kernel_devices::Refused>, SimKernel) {
    let kernel = SimKernel::new(SimConfig::default()).unwrap();
    let result = kernel_devices::serve(registry, settings, name, size, |registry, cfg| {
        registry.attach(&cfg.name, Ring::attach(kernel.region())?, Box::new(kernel.doorbell()?))?;
        Ok(())
    });
    (result, kernel)
}

#[test]
fn a_configfs_device_is_served_checked_and_left_to_its_creator() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let registry = sim_registry(dir.path(), "kd");
    let allow = KernelDeviceSettings { enabled: true, allow_backing: vec![images.clone()] };

    // Refused, each with its errno, and nothing registered.
    let outside = dir.path().join("outside.img");
    for (cfg, errno) in [
        (format!("file/{}", outside.display()), nix::libc::EPERM),
        (format!("file/{}/../outside.img", images.display()), nix::libc::EPERM),
        (format!("no-such-handler/{}/x.img", images.display()), nix::libc::ENOENT),
        (format!("file/{}/x.img;colour=red", images.display()), nix::libc::EINVAL),
        ("file/relative.img".to_owned(), nix::libc::EINVAL),
    ] {
        let (result, _) = serve(&registry, &allow, &announced("kd0", &cfg), 1 << 20);
        let err = result.expect_err(&cfg);
        assert_eq!(err.errno, errno, "{cfg}: {}", err.message);
        assert!(registry.slot("kd0").is_none(), "{cfg}: a refused device stayed registered");
    }
    assert!(!outside.exists(), "a refused device's backing was created");

    // Served: the handler's config reaches it, the data lands in the file.
    let cfg = format!("file/{}/kd0.img;config=serial=KD0SERIAL", images.display());
    let (result, mut kernel) = serve(&registry, &allow, &announced("kd0", &cfg), 1 << 20);
    result.unwrap();
    let data: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
    let w = kernel.execute(&rw16(true, 8, 8), &data, 0, DEADLINE).unwrap();
    assert_eq!(w.status, 0);
    let r = kernel.execute(&rw16(false, 8, 8), &[], 4096, DEADLINE).unwrap();
    assert_eq!((r.status, &r.data_in), (0, &data));
    let inquiry = kernel.execute(&[0x12, 1, 0x80, 0, 64, 0], &[], 64, DEADLINE).unwrap();
    assert!(String::from_utf8_lossy(&inquiry.data_in).contains("KD0SERIAL"), "the handler config did not arrive");
    let file = std::fs::read(images.join("kd0.img")).unwrap();
    assert_eq!((file.len(), &file[4096..8192]), (1 << 20, &data[..]));

    let status = registry.status(Some("kd0")).unwrap();
    assert_eq!((status.devices[0].origin, status.devices[0].state.as_str()), (Origin::Kernel, "serving"));
    // Its creator removes it, not the operator's socket.
    let err = registry.remove("kd0").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("configfs"), "{}", err.message);
    // A second announcement of the same name is refused (one device, one name).
    let (again, _) = serve(&registry, &allow, &announced("kd0", &cfg), 1 << 20);
    assert_eq!(again.unwrap_err().errno, nix::libc::EBUSY);
    assert!(registry.status(Some("kd0")).unwrap().devices[0].state == "serving");

    // The kernel's REMOVED event forgets it; the name can be used again.
    registry.on_removed("kd0");
    assert!(registry.slot("kd0").is_none());
    let (result, mut kernel) = serve(&registry, &allow, &announced("kd0", &cfg), 1 << 20);
    result.unwrap();
    let r = kernel.execute(&rw16(false, 8, 8), &[], 4096, DEADLINE).unwrap();
    assert_eq!((r.status, &r.data_in), (0, &data), "the data did not survive the re-creation");
    registry.on_removed("kd0");

    // Off: every such device is refused.
    let off = KernelDeviceSettings { enabled: false, ..allow };
    let (result, _) = serve(&registry, &off, &announced("kd1", "null/"), 0);
    assert_eq!(result.unwrap_err().errno, nix::libc::EPERM);
}
