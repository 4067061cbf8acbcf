//! The file handler through the whole stack: simulated kernel → ring →
//! device loop → wasm sandbox → backing file, and the same handler linked
//! natively, which must behave identically.

use std::sync::Arc;

use tcmu_wasm::backing::BackingFile;
use tcmu_wasm::check::{self, CheckOptions};
use tcmu_wasm::device::Backend;
use tcmu_wasm::handlers;
use tcmu_wasm::native::NativeDevice;
use tcmu_wasm::sandbox::{DeviceSpec, HandlerCode, Limits, Runtime, SandboxedDevice};
use tcmu_wasm::sim::{SimConfig, SimDevice};
use tcmu_wasm_tests::rw16;

fn file_code() -> Arc<HandlerCode> {
    let runtime = Runtime::new(None).unwrap();
    let path = handlers::built("file");
    HandlerCode::load(&runtime, &path).unwrap()
}

fn conformance(config: &str) -> (usize, Vec<String>) {
    let opts = CheckOptions { config: config.into(), size: 16 << 20, limits: Limits::default() };
    let outcomes = check::run(file_code(), &opts).unwrap();
    let failed = outcomes.iter().filter(|o| !o.passed()).map(|o| o.to_string()).collect();
    (outcomes.len(), failed)
}

#[test]
fn passes_the_disk_conformance_suite_in_the_sandbox() {
    let (ran, failed) = conformance("serial=t0");
    assert!(ran > 100, "only {ran} checks ran");
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn passes_the_suite_read_only_and_with_4k_blocks() {
    for config in ["ro,serial=t1", "block_size=4096,serial=t2"] {
        let (_, failed) = conformance(config);
        assert!(failed.is_empty(), "{config}: {failed:#?}");
    }
}

/// Serve the same script of commands from wasm and from native over
/// identical backing files: completions and final contents must match.
#[test]
fn wasm_and_native_answer_identically() {
    let dir = tempfile::tempdir().unwrap();
    let code = file_code();
    let run = |native: bool| {
        let path = dir.path().join(if native { "n.img" } else { "w.img" });
        let backing = Arc::new(BackingFile::open(&path, 4 << 20, false).unwrap());
        let code = code.clone();
        let mut dev = SimDevice::start(SimConfig::default(), "cmp0", move || -> anyhow::Result<Box<dyn Backend>> {
            Ok(if native {
                Box::new(
                    NativeDevice::<tcmu_handler_file::FileDisk>::open(
                        "serial=cmp",
                        &tcmu_guest_sdk::DeviceIdentity::from_name("cmp0"),
                        Some(backing),
                        tcmu_wasm::aio::IoSettings::default(),
                    )
                    .map_err(anyhow::Error::msg)?,
                )
            } else {
                Box::new(SandboxedDevice::open(
                    code,
                    DeviceSpec::new("cmp0", "serial=cmp", Some(backing), Limits::default()),
                )?)
            })
        })
        .unwrap();
        let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        let script: Vec<(Vec<u8>, Vec<u8>, u32)> = vec![
            (vec![0x12, 0, 0, 0, 96, 0], vec![], 96),      // INQUIRY
            (vec![0x12, 1, 0x83, 0, 255, 0], vec![], 255), // VPD 83
            (vec![0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], vec![], 32), // READ CAPACITY(16)
            (rw16(true, 100, 512).to_vec(), data.clone(), 0),
            (rw16(false, 100, 512).to_vec(), vec![], data.len() as u32),
            (rw16(false, 8191, 2).to_vec(), vec![], 1024), // past the end
            (vec![0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], vec![], 0), // SYNCHRONIZE CACHE(10)
            (vec![0xc5; 6], vec![], 0),                    // unknown opcode
        ];
        let answers: Vec<_> = script
            .iter()
            .map(|(cdb, out, din)| {
                let c = dev.execute(cdb, out, *din).unwrap();
                (c.status, c.sense, c.data_in, c.read_len)
            })
            .collect();
        dev.stop().unwrap();
        (answers, std::fs::read(&path).unwrap())
    };
    let (wasm, wasm_file) = run(false);
    let (native, native_file) = run(true);
    assert_eq!(wasm, native);
    assert_eq!(wasm_file, native_file);
    assert_eq!(wasm[4].2.len(), 256 * 1024, "the read returned the written data");
    assert_eq!(wasm[5].0, 2, "past-the-end read fails");
}
