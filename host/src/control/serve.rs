//! `tcmu-wasm serve`: create (or adopt) the configured devices in the
//! kernel, serve each from its own sandboxed handler instance, answer the
//! kernel's netlink events, and tear down on SIGINT/SIGTERM.
//!
//! Threads: the main thread sets up and then waits for a signal; the
//! netlink thread only receives and replies; one control thread applies
//! events (start, stop, resize a device) with a deadline the netlink
//! thread enforces; one thread per device serves its ring.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};

use super::config::{DeviceConfig, Export, ServeConfig};
use crate::backing::BackingFile;
use crate::device::{Backend, DeviceHandle};
use crate::handlers;
use crate::kernel::configfs::{self, Backstore, BackstoreSpec, IscsiExport, LoopbackExport};
use crate::kernel::netlink::{self, DeviceEvent, EventKind};
use crate::kernel::uio::{self, UioDevice};
use crate::ring::Ring;
use crate::sandbox::{HandlerCode, Runtime, SandboxedDevice};

/// The handler subtype our backstores carry in `dev_config`
/// (`wasm/<handler>`): events for other subtypes belong to other daemons.
pub const SUBTYPE: &str = "wasm";

struct Device {
    cfg: DeviceConfig,
    code: Arc<HandlerCode>,
}

/// The daemon's state, shared by the main and control threads.
pub struct Daemon {
    settings: super::config::DaemonSettings,
    devices: HashMap<String, Device>,
    running: Mutex<HashMap<String, DeviceHandle>>,
}

impl Daemon {
    fn start_device(&self, name: &str, uio_index: u32) -> anyhow::Result<()> {
        let dev = self.devices.get(name).with_context(|| format!("no device {name:?} in the configuration"))?;
        if self.running.lock().unwrap().contains_key(name) {
            return Ok(());
        }
        let backing = match &dev.cfg.backing {
            Some(path) => Some(Arc::new(
                BackingFile::open(path, dev.cfg.size.0, dev.cfg.read_only)
                    .with_context(|| format!("opening backing file {}", path.display()))?,
            )),
            None => None,
        };
        let uio = UioDevice::open(uio_index).with_context(|| format!("opening /dev/uio{uio_index}"))?;
        let ring = Ring::attach(uio.region).context("attaching to the command ring")?;
        let (code, config, limits, dev_name) =
            (dev.code.clone(), dev.cfg.config.clone(), dev.cfg.limits(), name.to_owned());
        let (handle, ready) = DeviceHandle::spawn(name, ring, Box::new(uio.doorbell), move || {
            Ok(Box::new(SandboxedDevice::open(&dev_name, code, &config, backing, limits)?) as Box<dyn Backend>)
        })?;
        // The handler's open may be slow; the netlink deadline bounds us anyway.
        match ready.recv_timeout(Duration::from_secs(self.settings.event_timeout_secs)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.context(format!("starting handler for {name}"))),
            Err(_) => anyhow::bail!("handler for {name} did not open in time"),
        }
        tracing::info!(device = name, uio = uio_index, handler = %dev.code.info().name, "device serving");
        self.running.lock().unwrap().insert(name.to_owned(), handle);
        Ok(())
    }

    fn stop_device(&self, name: &str) {
        let handle = self.running.lock().unwrap().remove(name);
        if let Some(handle) = handle
            && let Err(e) = handle.stop()
        {
            tracing::warn!(device = name, error = %e, "device thread ended with an error");
        }
    }

    /// Apply one kernel event; the status goes back to the kernel.
    fn on_event(&self, event: &DeviceEvent) -> i32 {
        let name = event.device.device.as_str();
        match &event.kind {
            EventKind::Added => match self.start_device(name, event.minor) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(device = name, error = %format!("{e:#}"), "refusing the device");
                    -nix::libc::EINVAL
                }
            },
            EventKind::Removed => {
                self.stop_device(name);
                0
            }
            EventKind::Reconfig { dev_size, dev_config, write_cache } => {
                if dev_config.is_some() {
                    tracing::error!(device = name, "changing dev_config of a running device is not supported");
                    return -nix::libc::EOPNOTSUPP;
                }
                let running = self.running.lock().unwrap();
                let Some(handle) = running.get(name) else { return -nix::libc::ENODEV };
                if let Some(enabled) = write_cache
                    && let Err(e) = handle.set_write_cache(*enabled)
                {
                    tracing::error!(device = name, error = %format!("{e:#}"), "write cache change failed");
                    return -nix::libc::EIO;
                }
                if let Some(size) = dev_size
                    && let Err(e) = handle.resize(*size)
                {
                    tracing::error!(device = name, error = %format!("{e:#}"), "resize refused");
                    return -nix::libc::EINVAL;
                }
                0
            }
        }
    }
}

fn spec(settings: &super::config::DaemonSettings, d: &DeviceConfig) -> BackstoreSpec {
    BackstoreSpec {
        hba: settings.hba,
        name: d.name.clone(),
        dev_config: format!("{SUBTYPE}/{}", d.name),
        size: d.size.0,
        hw_max_sectors: d.hw_max_sectors,
        max_data_area_mb: d.max_data_area_mb,
        cmd_time_out: d.cmd_time_out,
    }
}

/// Make sure LIO's configfs is there, loading the modules once if not.
fn preflight(cfg: &ServeConfig) -> anyhow::Result<()> {
    if !configfs::available() || !std::path::Path::new("/sys/module/target_core_user").exists() {
        let mut modules = vec!["target_core_user"];
        if cfg.devices.iter().any(|d| d.export == Export::Loopback) {
            modules.push("tcm_loop");
        }
        if cfg.devices.iter().any(|d| d.export == Export::Iscsi) {
            modules.push("iscsi_target_mod");
        }
        let status = std::process::Command::new("modprobe").args(&modules).status();
        tracing::info!(?modules, ?status, "loaded kernel modules");
    }
    anyhow::ensure!(
        configfs::available() && std::path::Path::new("/sys/module/target_core_user").exists(),
        "LIO is not available: {} or the target_core_user module is missing. Load the modules \
         (`modprobe target_core_user tcm_loop`) and make sure configfs is mounted on /sys/kernel/config. \
         On a machine without them, run the VM harness instead (tests/vm/run.sh).",
        configfs::TARGET_ROOT
    );
    Ok(())
}

/// Run the daemon until SIGINT or SIGTERM.
pub fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    // Block the stop signals before any thread exists, so every thread
    // inherits the mask and only the main thread's sigwait sees them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;

    let cache = cfg.daemon.cache_dir.clone().unwrap_or_else(handlers::default_cache_dir);
    let runtime = Runtime::new(Some(cache))?;
    let mut devices = HashMap::new();
    for d in &cfg.devices {
        let path = handlers::resolve(&d.handler).with_context(|| format!("device {:?}", d.name))?;
        let code =
            HandlerCode::load(&runtime, &path).with_context(|| format!("device {:?}: loading handler", d.name))?;
        devices.insert(d.name.clone(), Device { cfg: d.clone(), code });
    }
    preflight(&cfg)?;

    let daemon = Arc::new(Daemon { settings: cfg.daemon.clone(), devices, running: Mutex::default() });
    let (tx, rx) = mpsc::channel::<netlink::Request>();
    {
        let daemon = daemon.clone();
        std::thread::Builder::new().name("control".into()).spawn(move || {
            for (event, reply) in rx {
                let _ = reply.send(daemon.on_event(&event));
            }
        })?;
    }
    if let Err(e) = configfs::reset_pending_netlink() {
        tracing::warn!(error = %e, "could not reset pending netlink requests");
    }
    let deadline = Duration::from_secs(cfg.daemon.event_timeout_secs);
    let _listener = netlink::Listener::start(SUBTYPE, tx, deadline)?;

    let existing = uio::list()?;
    let mut started = Vec::new();
    for d in &cfg.devices {
        let result = bring_up(&daemon, d, &existing);
        match result {
            Ok(()) => started.push(d.name.clone()),
            Err(e) => {
                tracing::error!(device = %d.name, error = %format!("{e:#}"), "device failed to start");
                teardown(&daemon, &cfg, &started);
                return Err(e.context(format!("device {:?}", d.name)));
            }
        }
    }
    tracing::info!(devices = started.len(), "serving; SIGINT or SIGTERM stops");
    let signal = signals.wait()?;
    tracing::info!(?signal, "stopping");
    teardown(&daemon, &cfg, &started);
    Ok(())
}

fn bring_up(daemon: &Daemon, d: &DeviceConfig, existing: &[(u32, uio::TcmuName)]) -> anyhow::Result<()> {
    let store = match existing.iter().find(|(_, n)| n.device == d.name && n.subtype == SUBTYPE) {
        Some((index, name)) => {
            // A predecessor's device: stop new commands, fail the ones in
            // the ring with BUSY (initiators retry), serve, unblock.
            tracing::info!(device = %d.name, uio = index, "adopting existing device");
            let store = Backstore::at(name.hba, &name.device);
            store.block(true)?;
            let started =
                store.reset_ring().map_err(anyhow::Error::from).and_then(|()| daemon.start_device(&d.name, *index));
            store.block(false)?;
            started?;
            store
        }
        None => {
            let store = Backstore::create(&spec(&daemon.settings, d))?;
            if let Err(e) = store.set_unit_serial(&configfs::unit_serial_for(&d.name)) {
                tracing::warn!(device = %d.name, error = %e, "could not set the unit serial");
            }
            // Blocks until our control thread has answered ADDED_DEVICE.
            store.enable().context("enabling the backstore (the daemon refused it; see the log above)")?;
            anyhow::ensure!(
                daemon.running.lock().unwrap().contains_key(&d.name),
                "the kernel never announced the device (is another daemon answering TCM-USER events?)"
            );
            store
        }
    };
    match d.export {
        Export::Loopback => {
            let export = LoopbackExport::for_device(&d.name);
            export.create(&store)?;
            tracing::info!(device = %d.name, wwn = %export.wwn, "exported through tcm_loop");
        }
        Export::Iscsi => {
            let (iqn, portal) = d.iscsi();
            IscsiExport::new(&iqn, &portal).create(&store)?;
            tracing::info!(device = %d.name, %iqn, %portal, "exported over iSCSI");
        }
        Export::None => {}
    }
    Ok(())
}

fn teardown(daemon: &Daemon, cfg: &ServeConfig, started: &[String]) {
    for name in started.iter().rev() {
        let Some(d) = cfg.devices.iter().find(|d| &d.name == name) else { continue };
        if !d.persist {
            let result = match d.export {
                Export::Loopback => LoopbackExport::for_device(name).remove(),
                Export::Iscsi => {
                    let (iqn, portal) = d.iscsi();
                    IscsiExport::new(&iqn, &portal).remove()
                }
                Export::None => Ok(()),
            };
            if let Err(e) = result {
                tracing::error!(device = %name, error = %e, "removing the export failed");
            }
            let store = uio::list()
                .ok()
                .and_then(|l| l.into_iter().find(|(_, n)| &n.device == name).map(|(_, n)| Backstore::at(n.hba, name)))
                .unwrap_or_else(|| Backstore::at(daemon.settings.hba, name));
            // Blocks until our control thread has answered REMOVED_DEVICE.
            if let Err(e) = store.remove() {
                tracing::error!(device = %name, error = %e, "removing the backstore failed");
            }
        }
        // Persisted devices keep their kernel side; their commands wait for
        // the next daemon (up to cmd_time_out).
        daemon.stop_device(name);
        tracing::info!(device = %name, persisted = d.persist, "device stopped");
    }
}
