//! One device's data path: the loop that takes entries from the ring,
//! hands commands to the device's [`Backend`] and writes completions back.
//!
//! Each device runs on its own thread and owns its ring, doorbell and
//! backend, so a slow or broken handler stalls nothing but its own LUN.
//! The control plane talks to a running device through [`DeviceHandle`],
//! and every such call has a deadline: a device stuck in its handler never
//! stalls the caller.

mod command_io;
mod doorbell;
mod error;
mod io_failure;
mod medium;
mod worker;

pub use command_io::CommandIo;
pub use doorbell::Doorbell;
pub use error::{BackendError, DeviceError};
pub use medium::{Element, ElementKind, LibraryPort, Medium, MediumChange, MoveError};
pub use worker::{Control, DeviceHandle, DeviceLoop};

use std::sync::Arc;
use std::time::Duration;

use crate::ring::{CommandEntry, Response, TmrEntry};
use crate::sandbox::HandlerCode;

/// What to do with the device's state on a hot reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatePolicy {
    /// Carry it over; refuse the reload if the new code cannot take it.
    Require,
    /// Carry it over if the new code takes it, else serve without it.
    BestEffort,
    /// Start the new code fresh.
    Discard,
}

/// A hot reload: new code for a running device.
#[derive(Debug, Clone)]
pub struct ReloadRequest {
    /// The code to serve from now on (already compiled and checked).
    pub code: Arc<HandlerCode>,
    /// What happens to the old instance's state.
    pub state: StatePolicy,
}

/// What a hot reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// How long the device held its commands while swapping.
    pub pause: Duration,
    /// Bytes of state carried over.
    pub state_bytes: usize,
    /// Digest of the code now serving.
    pub digest: String,
}

/// What serves a device's commands: a sandboxed wasm handler
/// ([`crate::sandbox::SandboxedDevice`]) or, for benchmarks, the native
/// baseline.
pub trait Backend {
    /// Serve one command. Never fails: every failure is a SCSI response.
    /// Store transfers the handler queued on [`Backend::io_engine`] may
    /// still be running when this returns; the loop answers the command
    /// when they are done.
    fn handle(&mut self, cmd: &CommandEntry) -> Response;
    /// The queue this backend's store transfers go to, if they are
    /// queued (see [`crate::aio`]). Asked once, when the device starts.
    fn io_engine(&self) -> Option<Arc<crate::aio::IoEngine>> {
        None
    }
    /// A task management function arrived.
    fn task_management(&mut self, tmr: &TmrEntry);
    /// The device was resized to `new_size` bytes. An error means the
    /// new size could not be applied and the device keeps its old one.
    fn resized(&mut self, new_size: u64) -> Result<(), BackendError>;
    /// The operator switched the write cache on or off.
    fn write_cache_changed(&mut self, enabled: bool);
    /// Swap in new handler code between two commands.
    fn reload(&mut self, _request: ReloadRequest) -> Result<ReloadOutcome, BackendError> {
        Err(BackendError::Unsupported("this backend cannot be reloaded"))
    }
    /// The operator asks for a fresh start: lift a fence, rebuild.
    fn reset(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    /// A medium is loaded into, or taken out of, the drive.
    fn change_medium(&mut self, _change: MediumChange) -> Result<(), BackendError> {
        Err(BackendError::Unsupported("this device takes no removable medium"))
    }
    /// Someone other than the changer changed these library elements.
    fn elements_changed(&mut self, _addresses: &[u16]) {}
    /// The device is going away.
    fn close(&mut self);
}
