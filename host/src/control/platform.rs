//! The real kernel side of a device: a user backstore in LIO's configfs,
//! its uio ring, and its tcm_loop or iSCSI export.

use anyhow::Context;

use super::config::{DaemonSettings, DeviceConfig, Export};
use super::registry::{Platform, Registry};
use crate::kernel::configfs::{Backstore, BackstoreSpec, IscsiExport, LoopbackExport};
use crate::kernel::uio::{self, UioDevice};
use crate::ring::Ring;
use tcmu_guest_sdk::DeviceIdentity;

/// The handler subtype our backstores carry in `dev_config`
/// (`wasm/<device>`): events for other subtypes belong to other daemons.
pub const SUBTYPE: &str = "wasm";

/// LIO through configfs and uio.
#[derive(Debug)]
pub struct KernelPlatform {
    settings: DaemonSettings,
}

/// `dev_size` given to LIO for a device without a store.
const NO_STORE_DEV_SIZE: u64 = 1 << 20;

impl KernelPlatform {
    /// Devices go on HBA `settings.hba`.
    pub fn new(settings: DaemonSettings) -> Self {
        Self { settings }
    }

    fn spec(&self, d: &DeviceConfig) -> BackstoreSpec {
        BackstoreSpec {
            hba: self.settings.hba,
            name: d.name.clone(),
            dev_config: format!("{SUBTYPE}/{}", d.name),
            // LIO wants a size even for devices without a store (tapes,
            // changers): it only feeds the READ CAPACITY LIO never answers
            // for a passthrough backstore.
            size: if d.size.0 == 0 { NO_STORE_DEV_SIZE } else { d.size.0 },
            hw_max_sectors: d.hw_max_sectors,
            max_data_area_mb: d.max_data_area_mb,
            cmd_time_out: d.cmd_time_out,
        }
    }

    /// The backstore of `name`, wherever the kernel has it.
    fn backstore(&self, name: &str) -> Backstore {
        uio::list()
            .ok()
            .and_then(|l| l.into_iter().find(|(_, n)| n.device == name && n.subtype == SUBTYPE))
            .map(|(_, n)| Backstore::at(n.hba, name))
            .unwrap_or_else(|| Backstore::at(self.settings.hba, name))
    }

    fn export(&self, d: &DeviceConfig, store: &Backstore) -> anyhow::Result<()> {
        match d.export {
            Export::Loopback => {
                let export = LoopbackExport::for_device(&d.name);
                export.create(store).context("exporting through tcm_loop")?;
                tracing::info!(device = %d.name, wwn = %export.wwn, "exported through tcm_loop");
            }
            Export::Iscsi => {
                let (iqn, portal) = d.iscsi();
                IscsiExport::new(&iqn, &portal).create(store).context("exporting over iSCSI")?;
                tracing::info!(device = %d.name, %iqn, %portal, "exported over iSCSI");
            }
            Export::None => {}
        }
        Ok(())
    }

    fn unexport(&self, d: &DeviceConfig) -> anyhow::Result<()> {
        match d.export {
            Export::Loopback => LoopbackExport::for_device(&d.name).remove()?,
            Export::Iscsi => {
                let (iqn, portal) = d.iscsi();
                IscsiExport::new(&iqn, &portal).remove()?
            }
            Export::None => {}
        }
        Ok(())
    }
}

impl Platform for KernelPlatform {
    fn create(&self, _registry: &Registry, cfg: &DeviceConfig, identity: &DeviceIdentity) -> anyhow::Result<()> {
        let store = Backstore::create(&self.spec(cfg))?;
        // LIO's own idea of the unit serial, the same one the handler reports.
        if let Err(e) = store.set_unit_serial(&identity.serial) {
            tracing::warn!(device = %cfg.name, error = %e, "could not set the unit serial");
        }
        // Blocks until an event thread has answered ADDED_DEVICE, which
        // attaches the device in the registry.
        store.enable().context("enabling the backstore (the daemon refused it; see the log above)")?;
        self.export(cfg, &store)
    }

    fn adopt(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<bool> {
        let existing = uio::list()?;
        let Some((index, name)) = existing.into_iter().find(|(_, n)| n.device == cfg.name && n.subtype == SUBTYPE)
        else {
            return Ok(false);
        };
        // A predecessor's device: stop new commands, fail the ones in the
        // ring with BUSY (initiators retry), serve, unblock.
        tracing::info!(device = %cfg.name, uio = index, "adopting existing device");
        let store = Backstore::at(name.hba, &name.device);
        store.block(true)?;
        let attached = store.reset_ring().map_err(anyhow::Error::from).and_then(|()| {
            let uio = UioDevice::open(index).with_context(|| format!("opening /dev/uio{index}"))?;
            let ring = Ring::attach(uio.region).context("attaching to the command ring")?;
            registry.attach(&cfg.name, ring, Box::new(uio.doorbell)).map_err(anyhow::Error::from)
        });
        store.block(false)?;
        attached?;
        self.export(cfg, &store)?;
        Ok(true)
    }

    fn destroy(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<()> {
        let unexported = self.unexport(cfg);
        let store = self.backstore(&cfg.name);
        // Blocks until an event thread has answered REMOVED_DEVICE (which
        // stops the device thread); without a backstore, stop it here.
        let removed = if store.exists() { store.remove().map_err(anyhow::Error::from) } else { Ok(()) };
        registry.detach(&cfg.name);
        unexported.context("removing the export")?;
        removed.context("removing the backstore")
    }

    fn release(&self, _registry: &Registry, _cfg: &DeviceConfig) -> anyhow::Result<()> {
        // Persisted devices keep backstore and export; their commands wait
        // for the next daemon (up to cmd_time_out).
        Ok(())
    }
}

/// Attach a device the kernel announced (`ADDED_DEVICE` for `/dev/uio<minor>`).
pub fn attach_announced(registry: &Registry, name: &str, minor: u32) -> Result<(), crate::device::DeviceError> {
    use crate::device::DeviceError;
    let uio = UioDevice::open(minor).map_err(|e| DeviceError::Start(format!("opening /dev/uio{minor}: {e}")))?;
    let ring = Ring::attach(uio.region)?;
    registry.attach(name, ring, Box::new(uio.doorbell))
}
