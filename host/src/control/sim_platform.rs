//! A registry platform on the simulated kernel: every added device gets a
//! [`SimKernel`] instead of a backstore, so the registry, the control
//! socket, hot reload and the scale benchmark run without LIO. Tests drive
//! a device through [`SimPlatform::kernel`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::DeviceConfig;
use super::registry::{Platform, Registry};
use crate::ring::Ring;
use crate::sim::{SimConfig, SimKernel};
use tcmu_guest_sdk::DeviceIdentity;

/// Simulated kernels, one per device.
#[derive(Default)]
pub struct SimPlatform {
    config: SimConfig,
    kernels: Mutex<HashMap<String, Arc<Mutex<SimKernel>>>>,
}

impl SimPlatform {
    /// Devices get kernels shaped like `config`.
    pub fn new(config: SimConfig) -> Self {
        Self { config, kernels: Mutex::default() }
    }

    /// The simulated kernel of device `name`.
    pub fn kernel(&self, name: &str) -> Option<Arc<Mutex<SimKernel>>> {
        self.kernels.lock().unwrap().get(name).cloned()
    }
}

impl Platform for SimPlatform {
    fn create(&self, registry: &Registry, cfg: &DeviceConfig, _identity: &DeviceIdentity) -> anyhow::Result<()> {
        let kernel = SimKernel::new(self.config.clone())?;
        let ring = Ring::attach(kernel.region())?;
        registry.attach(&cfg.name, ring, Box::new(kernel.doorbell()?))?;
        self.kernels.lock().unwrap().insert(cfg.name.clone(), Arc::new(Mutex::new(kernel)));
        Ok(())
    }

    fn adopt(&self, _registry: &Registry, _cfg: &DeviceConfig) -> anyhow::Result<bool> {
        Ok(false)
    }

    fn destroy(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<()> {
        registry.detach(&cfg.name);
        self.kernels.lock().unwrap().remove(&cfg.name);
        Ok(())
    }

    fn release(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<()> {
        self.destroy(registry, cfg)
    }
}
