//! A simulated kernel wired to a running device thread: what `check`,
//! `bench` and the tests use to put a backend behind a ring.

use std::sync::Arc;
use std::time::Duration;

use super::{SimCompletion, SimConfig, SimError, SimKernel};
use crate::device::{Backend, DeviceHandle};
use crate::metrics::DeviceMetrics;
use crate::ring::Ring;

/// How long [`SimDevice::execute`] waits for one command by default.
/// Generous: a handler's CPU budget must trip before this does.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long control calls (resize, stop) of the harness wait.
pub const CONTROL_DEADLINE: Duration = Duration::from_secs(60);

/// A [`SimKernel`] whose ring is served by a device thread.
pub struct SimDevice {
    /// The kernel side, for submitting and collecting.
    pub kernel: SimKernel,
    handle: DeviceHandle,
}

impl SimDevice {
    /// Create the simulated device and start serving it with the backend
    /// `make_backend` builds (on the device thread). Fails if the backend
    /// cannot be built.
    pub fn start(
        cfg: SimConfig,
        name: &str,
        make_backend: impl FnOnce() -> anyhow::Result<Box<dyn Backend>> + Send + 'static,
    ) -> anyhow::Result<Self> {
        Self::start_with_metrics(cfg, name, Arc::default(), make_backend)
    }

    /// [`SimDevice::start`], counting into `metrics`.
    pub fn start_with_metrics(
        cfg: SimConfig,
        name: &str,
        metrics: Arc<DeviceMetrics>,
        make_backend: impl FnOnce() -> anyhow::Result<Box<dyn Backend>> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let kernel = SimKernel::new(cfg)?;
        let ring = Ring::attach(kernel.region())?;
        let (handle, ready) = DeviceHandle::spawn(name, ring, Box::new(kernel.doorbell()?), metrics, make_backend)?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Self { kernel, handle }),
            Ok(Err(e)) => Err(e),
            Err(_) => anyhow::bail!("device thread for {name} exited during start"),
        }
    }

    /// Run one command to completion.
    pub fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<SimCompletion, SimError> {
        self.kernel.execute(cdb, data_out, data_in_len, DEFAULT_TIMEOUT)
    }

    /// Resize the device as TCMU RECONFIG would, and wait until the device
    /// has applied it.
    pub fn resize(&self, size: u64) -> anyhow::Result<()> {
        Ok(self.handle.resize(size, CONTROL_DEADLINE)?)
    }

    /// The device thread's handle.
    pub fn handle(&self) -> &DeviceHandle {
        &self.handle
    }

    /// The kernel side and the handle at once, so one thread can drive
    /// commands while another sends control requests.
    pub fn split(&mut self) -> (&mut SimKernel, &DeviceHandle) {
        (&mut self.kernel, &self.handle)
    }

    /// Stop the device thread.
    pub fn stop(self) -> anyhow::Result<()> {
        let handle = self.handle;
        handle.stop(CONTROL_DEADLINE)?;
        Ok(())
    }
}
