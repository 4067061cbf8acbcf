//! One device's data path: the loop that takes entries from the ring,
//! hands commands to the device's [`Backend`] and writes completions back.
//!
//! Each device runs on its own thread and owns its ring, doorbell and
//! backend, so a slow or broken handler stalls nothing but its own LUN.
//! The control plane talks to a running device through [`DeviceHandle`].

mod command_io;
mod doorbell;
mod worker;

pub use command_io::CommandIo;
pub use doorbell::Doorbell;
pub use worker::{Control, DeviceHandle, DeviceLoop, DeviceStats};

use crate::ring::{CommandEntry, Response, TmrEntry};

/// What serves a device's commands: a sandboxed wasm handler
/// ([`crate::sandbox::SandboxedDevice`]) or the native baseline
/// ([`crate::native::NativeDevice`]).
pub trait Backend {
    /// Serve one command. Never fails: every failure is a SCSI response.
    fn handle(&mut self, cmd: &CommandEntry) -> Response;
    /// A task management function arrived.
    fn task_management(&mut self, tmr: &TmrEntry);
    /// The device was resized to `new_size` bytes. An error means the
    /// new size could not be applied and the device keeps its old one.
    fn resized(&mut self, new_size: u64) -> Result<(), String>;
    /// The operator switched the write cache on or off.
    fn write_cache_changed(&mut self, enabled: bool);
    /// The device is going away.
    fn close(&mut self);
}
