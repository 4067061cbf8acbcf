//! Removable media through the sandbox: the host grants each loaded medium
//! as a revocable capability. A handler that keeps a grant after the
//! medium left (the `medium-probe` fixture hoards them) gets `no-medium`
//! and never reaches the old image; a rebuilt instance hears the medium
//! in the drive again; handlers built for the frozen 0.2.0 contract still
//! link and serve.

use std::sync::Arc;
use std::time::Duration;

use tcmu_wasm::backing::BackingFile;
use tcmu_wasm::device::{Backend, DeviceError, Medium, MediumChange};
use tcmu_wasm::handlers;
use tcmu_wasm::sandbox::{DeviceSpec, HandlerCode, Limits, Runtime, SandboxedDevice};
use tcmu_wasm::sim::{SimCompletion, SimConfig, SimDevice};

const DEADLINE: Duration = Duration::from_secs(30);

fn code(runtime: &Arc<Runtime>, path: std::path::PathBuf) -> Arc<HandlerCode> {
    HandlerCode::load(runtime, &path).unwrap()
}

fn start(code: Arc<HandlerCode>, backing: Option<Arc<BackingFile>>) -> SimDevice {
    let spec = DeviceSpec::new("drive0", "", backing, Limits::default());
    SimDevice::start(SimConfig { data_blocks: 64, ..SimConfig::default() }, "drive0", move || {
        Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>)
    })
    .unwrap()
}

fn image(dir: &tempfile::TempDir, name: &str, fill: u8) -> Arc<BackingFile> {
    let path = dir.path().join(name);
    std::fs::write(&path, vec![fill; 4096]).unwrap();
    Arc::new(BackingFile::open(&path, 4096, false).unwrap())
}

fn medium(barcode: &str, load_id: u64, image: &Arc<BackingFile>) -> Medium {
    Medium { barcode: barcode.into(), write_protected: false, load_id, image: image.clone() }
}

fn sense(c: &SimCompletion) -> (u8, u8, u8, u8) {
    (
        c.status,
        c.sense.get(2).map_or(0, |k| k & 0xf),
        c.sense.get(12).copied().unwrap_or(0),
        c.sense.get(13).copied().unwrap_or(0),
    )
}

const NO_MEDIUM: (u8, u8, u8, u8) = (2, 2, 0x3a, 0);

#[test]
fn a_revoked_cartridge_grant_fails_with_no_medium_and_never_reaches_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(None).unwrap();
    let mut dev = start(code(&runtime, handlers::fixture("medium-probe")), None);
    let (a, b) = (image(&dir, "A.img", b'a'), image(&dir, "B.img", b'b'));

    assert_eq!(sense(&dev.execute(&[0, 0, 0, 0, 0, 0], &[], 0).unwrap()), NO_MEDIUM, "empty drive");
    dev.handle().change_medium(MediumChange::Load(medium("A00001", 1, &a)), DEADLINE).unwrap();
    assert_eq!(dev.execute(&[0; 6], &[], 0).unwrap().status, 0);
    let read = dev.execute(&[0xc0, 0, 0, 0, 0, 0], &[], 16).unwrap();
    assert_eq!((read.status, read.data_in.as_slice()), (0, &[b'a'; 16][..]));

    dev.handle().change_medium(MediumChange::Unload, DEADLINE).unwrap();
    assert_eq!(sense(&dev.execute(&[0xc0, 0, 0, 0, 0, 0], &[], 16).unwrap()), NO_MEDIUM, "read through revoked grant");
    assert_eq!(sense(&dev.execute(&[0xc1, 0, 0, 0, 0, 0], &[b'X'; 16], 0).unwrap()), NO_MEDIUM, "write through it");
    assert_eq!(std::fs::read(dir.path().join("A.img")).unwrap(), vec![b'a'; 4096], "the old image is untouched");

    // A new cartridge does not bring the old grant back to life, nor lend it the new image.
    dev.handle().change_medium(MediumChange::Load(medium("B00002", 2, &b)), DEADLINE).unwrap();
    assert_eq!(sense(&dev.execute(&[0xc0, 0, 0, 0, 0, 0], &[], 16).unwrap()), NO_MEDIUM, "grant 0 stays revoked");
    assert_eq!(sense(&dev.execute(&[0xc1, 0, 0, 0, 0, 0], &[b'X'; 16], 0).unwrap()), NO_MEDIUM);
    let read = dev.execute(&[0xc0, 1, 0, 0, 0, 0], &[], 16).unwrap();
    assert_eq!((read.status, read.data_in.as_slice()), (0, &[b'b'; 16][..]), "grant 1 is B");
    assert_eq!(dev.execute(&[0xc1, 1, 0, 0, 0, 0], &[b'Y'; 16], 0).unwrap().status, 0);
    assert_eq!(&std::fs::read(dir.path().join("B.img")).unwrap()[..17], b"YYYYYYYYYYYYYYYYb");
    assert_eq!(std::fs::read(dir.path().join("A.img")).unwrap(), vec![b'a'; 4096]);

    // Loading into a full drive is refused, and so is a medium the handler rejects.
    let err = dev.handle().change_medium(MediumChange::Load(medium("A00001", 3, &a)), DEADLINE).unwrap_err();
    assert!(matches!(err, DeviceError::Backend(_)), "{err:?}");
    dev.stop().unwrap();
}

#[test]
fn a_rebuilt_instance_hears_the_medium_in_the_drive_and_a_refused_one_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(None).unwrap();
    let mut dev = start(code(&runtime, handlers::fixture("medium-probe")), None);
    let a = image(&dir, "A.img", b'a');
    dev.handle().change_medium(MediumChange::Load(medium("A00001", 7, &a)), DEADLINE).unwrap();

    let trap = dev.execute(&[0xc3, 0, 0, 0, 0, 0], &[], 0).unwrap();
    assert_eq!(sense(&trap), (2, 4, 0x44, 0), "the trap fails only its command");
    let who = dev.execute(&[0xc2, 0, 0, 0, 0, 0], &[], 64).unwrap();
    assert_eq!(who.status, 0, "{who:?}");
    assert_eq!(&who.data_in[..8], &7u64.to_be_bytes(), "same load, same id");
    assert_eq!(&who.data_in[8..], b"A00001");
    let read = dev.execute(&[0xc0, 0, 0, 0, 0, 0], &[], 16).unwrap();
    assert_eq!(read.data_in, vec![b'a'; 16], "the new instance's grant works");

    dev.handle().change_medium(MediumChange::Unload, DEADLINE).unwrap();
    let bad = image(&dir, "BAD.img", 0);
    let err = dev.handle().change_medium(MediumChange::Load(medium("BAD001", 8, &bad)), DEADLINE).unwrap_err();
    assert!(err.to_string().contains("refusing BAD001"), "{err}");
    assert_eq!(sense(&dev.execute(&[0; 6], &[], 0).unwrap()), NO_MEDIUM, "a refused medium leaves the drive empty");
    dev.handle().change_medium(MediumChange::Load(medium("A00001", 9, &a)), DEADLINE).unwrap();
    assert_eq!(dev.execute(&[0; 6], &[], 0).unwrap().status, 0);
    dev.stop().unwrap();
}

#[test]
fn a_disk_handler_takes_no_medium() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(None).unwrap();
    let disk = image(&dir, "disk.img", 0);
    let dev = start(code(&runtime, handlers::built("file")), Some(disk.clone()));
    let err = dev.handle().change_medium(MediumChange::Load(medium("A00001", 1, &disk)), DEADLINE).unwrap_err();
    assert!(err.to_string().contains("no removable medium"), "{err}");
    dev.stop().unwrap();
}

#[test]
fn handlers_describe_their_config_keys() {
    let runtime = Runtime::new(None).unwrap();
    let names = |handler: &str| -> Vec<String> {
        code(&runtime, handlers::built(handler)).config_keys().iter().map(|k| k.name.clone()).collect()
    };
    assert_eq!(names("file"), ["ro", "block_size", "serial", "wwn", "vendor", "product"]);
    assert!(names("tape").contains(&"early_warning".to_owned()));
    assert_eq!(names("changer"), ["serial", "vendor", "product"]);
    assert_eq!(names("optical"), ["serial", "wwn", "vendor", "product"]);
    let file = code(&runtime, handlers::built("file"));
    let block_size = file.config_keys().iter().find(|k| k.name == "block_size").unwrap();
    assert_eq!(block_size.value.as_deref(), Some("512|1024|2048|4096"));
    assert!(file.config_keys().iter().find(|k| k.name == "ro").unwrap().value.is_none(), "ro is a flag");
}

#[test]
fn a_handler_built_for_the_0_2_0_contract_still_links_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(None).unwrap();
    let legacy = code(&runtime, handlers::fixture("legacy-0-2-0"));
    assert_eq!(legacy.info().name, "legacy-0-2-0");
    assert!(!legacy.is_stateful() && !legacy.takes_media() && !legacy.is_changer());
    assert!(legacy.config_keys().is_empty(), "0.2.0 has no config-help");
    let disk = image(&dir, "disk.img", 0x5a);
    let mut dev = start(legacy, Some(disk));
    assert_eq!(dev.execute(&[0; 6], &[], 0).unwrap().status, 0);
    let read = dev.execute(&[0x08, 0, 0, 0, 1, 0], &[], 512).unwrap();
    assert_eq!((read.status, read.data_in), (0, vec![0x5a; 512]));
    dev.stop().unwrap();
}
