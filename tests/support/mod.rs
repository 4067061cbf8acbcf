//! Shared test support: a RAM-disk backend that speaks just enough SCSI
//! (READ(16)/WRITE(16)/TEST UNIT READY) to check the ring path byte for
//! byte without any handler in the way.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tcmu_wasm::control::config::DaemonSettings;
use tcmu_wasm::control::registry::Registry;
use tcmu_wasm::control::sim_platform::SimPlatform;

use tcmu_wasm::device::Backend;
use tcmu_wasm::ring::{CommandEntry, Response, TmrEntry};

/// Sector size of [`RamDisk`].
pub const SECTOR: u64 = 512;

/// A disk in memory, shared with the test so it can inspect contents and
/// the TMRs that arrived.
#[derive(Clone, Default)]
pub struct RamDisk {
    /// Contents.
    pub data: Arc<Mutex<Vec<u8>>>,
    /// TMR kinds received, in order.
    pub tmrs: Arc<Mutex<Vec<tcmu_wasm::ring::TmrKind>>>,
}

impl RamDisk {
    /// A zeroed disk of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self { data: Arc::new(Mutex::new(vec![0; bytes])), tmrs: Arc::default() }
    }
}

/// READ(16) or WRITE(16) CDB.
pub use tcmu_wasm::sim::rw16;

impl Backend for RamDisk {
    fn handle(&mut self, cmd: &CommandEntry) -> Response {
        match cmd.cdb[0] {
            0x00 => Response::good(),
            op @ (0x88 | 0x8a) => {
                let lba = u64::from_be_bytes(cmd.cdb[2..10].try_into().unwrap());
                let len = u32::from_be_bytes(cmd.cdb[10..14].try_into().unwrap()) as u64 * SECTOR;
                let mut disk = self.data.lock().unwrap();
                let start = lba * SECTOR;
                if start + len > disk.len() as u64 || len > cmd.data.len() as u64 {
                    return Response::check_condition(0x05, 0x21, 0x00);
                }
                let range = start as usize..(start + len) as usize;
                let ok = if op == 0x88 {
                    cmd.data.write(0, &disk[range]).is_ok()
                } else {
                    cmd.data.read(0, &mut disk[range]).is_ok()
                };
                if !ok {
                    return Response::check_condition(0x04, 0x44, 0x00);
                }
                Response { data_in_len: (op == 0x88).then_some(len as u32), ..Response::good() }
            }
            // A short data-in: INQUIRY-like, always 36 bytes whatever the room.
            0x12 => {
                let reply: Vec<u8> = (0..36u8).collect();
                let n = reply.len().min(cmd.data.len() as usize);
                cmd.data.write(0, &reply[..n]).unwrap();
                Response { data_in_len: Some(n as u32), ..Response::good() }
            }
            _ => Response::check_condition(0x05, 0x20, 0x00),
        }
    }

    fn task_management(&mut self, tmr: &TmrEntry) {
        self.tmrs.lock().unwrap().push(tmr.kind);
    }

    fn resized(&mut self, new_size: u64) -> Result<(), tcmu_wasm::device::BackendError> {
        self.data.lock().unwrap().resize(new_size as usize, 0);
        Ok(())
    }

    fn write_cache_changed(&mut self, _enabled: bool) {}

    fn close(&mut self) {}
}

/// A registry whose devices get simulated kernels and whose handlers are
/// the built ones, found by name; its code cache and state live under
/// `dir`, identities derive from `instance`.
pub fn sim_registry(dir: &Path, instance: &str) -> Arc<Registry> {
    let runtime = tcmu_wasm::sandbox::Runtime::new(Some(dir.join("cache"))).expect("runtime");
    let settings =
        DaemonSettings { instance_id: Some(instance.into()), state_dir: Some(dir.join("state")), ..Default::default() };
    let handlers = tcmu_wasm::handlers::built("file").parent().expect("a handlers directory").to_owned();
    Registry::with_handler_dirs(
        runtime,
        settings,
        Arc::new(SimPlatform::new(tcmu_wasm::sim::SimConfig::default())),
        vec![handlers],
    )
}
