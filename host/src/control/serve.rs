//! `tcmu-wasm serve`: create (or adopt) the configured devices in the
//! kernel, serve each from its own sandboxed handler instance, answer the
//! kernel's netlink events and the operator's control socket, and tear
//! down on SIGINT/SIGTERM. SIGHUP reloads handlers whose `.wasm` changed.
//!
//! Threads: the main thread sets up, then waits for signals; the netlink
//! thread only receives, and each kernel event gets a thread that applies
//! it with a deadline; the control socket has an accept thread and one
//! thread per connection (operator actions, which write configfs, run
//! there); one thread per device serves its ring.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};

use super::api::ReloadTarget;
use super::config::{DeviceConfig, Export, KernelDeviceSettings, ServeConfig};
use super::identity;
use super::kernel_devices;
use super::platform::{KernelPlatform, SUBTYPE, attach_announced};
use super::registry::{Platform, Registry};
use super::socket::ControlServer;
use crate::backing::{BackingFile, OpenFlags};
use crate::device::Backend;
use crate::handlers;
use crate::kernel::configfs::{self, Backstore};
use crate::kernel::netlink::{self, DeviceEvent, EventKind};
use crate::kernel::uio::{self, TcmuName};
use crate::sandbox::{DeviceSpec, HandlerCode, Runtime, SandboxedDevice};

/// Make sure LIO's configfs is there, loading the modules once if not.
fn preflight(cfg: &ServeConfig) -> anyhow::Result<()> {
    if !configfs::available() || !Path::new("/sys/module/target_core_user").exists() {
        let mut modules = vec!["target_core_user", "tcm_loop"];
        if cfg.devices.iter().any(|d| d.export == Export::Iscsi) {
            modules.push("iscsi_target_mod");
        }
        let status = std::process::Command::new("modprobe").args(&modules).status();
        tracing::info!(?modules, ?status, "loaded kernel modules");
    }
    anyhow::ensure!(
        configfs::available() && Path::new("/sys/module/target_core_user").exists(),
        "LIO is not available: {} or the target_core_user module is missing. Load the modules \
         (`modprobe target_core_user tcm_loop`) and make sure configfs is mounted on /sys/kernel/config. \
         On a machine without them, run the VM harness instead (tests/vm/run.sh).",
        configfs::TARGET_ROOT
    );
    Ok(())
}

/// Apply one kernel event; the status (0 or -errno) goes back to the kernel.
fn on_event(registry: &Registry, kernel_devices: &KernelDeviceSettings, event: &DeviceEvent) -> i32 {
    let name = event.device.device.as_str();
    match &event.kind {
        EventKind::Added if registry.slot(name).is_some() => match attach_announced(registry, name, event.minor) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(device = name, error = %e, "refusing the device");
                -e.errno()
            }
        },
        EventKind::Added => {
            let minor = event.minor;
            match serve_kernel_device(registry, kernel_devices, &event.device, |registry, _| {
                Ok(attach_announced(registry, name, minor)?)
            }) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(device = name, dev_config = %format!("{}/{}", event.device.subtype, event.device.cfg),
                        error = %e, "refusing the device created through configfs");
                    -e.errno
                }
            }
        }
        EventKind::Removed => {
            registry.on_removed(name);
            0
        }
        EventKind::Reconfig { dev_size, dev_config, write_cache } => {
            let current = format!("{}/{}", event.device.subtype, event.device.cfg);
            if dev_config.as_ref().is_some_and(|c| *c != current) {
                tracing::error!(device = name, "changing dev_config of a running device is not supported");
                return -nix::libc::EOPNOTSUPP;
            }
            // (The same dev_config again is no change: `targetctl restore`
            // writes every attribute back after `enable`.)
            match registry.on_reconfig(name, *write_cache, *dev_size) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(device = name, error = %e, "reconfiguration failed");
                    -e.errno()
                }
            }
        }
    }
}

/// A device somebody created through configfs: its size from configfs,
/// the rest from its `dev_config` (see `kernel_devices`).
fn serve_kernel_device(
    registry: &Registry,
    settings: &KernelDeviceSettings,
    name: &TcmuName,
    attach: impl FnOnce(&Registry, &DeviceConfig) -> anyhow::Result<()>,
) -> Result<(), kernel_devices::Refused> {
    let size = Backstore::at(name.hba, &name.device)
        .dev_size()
        .map_err(|e| kernel_devices::Refused { message: format!("{e:#}"), errno: nix::libc::EIO })?;
    kernel_devices::serve(registry, settings, name, size, attach)
}

/// Take over the configfs-created devices a predecessor served (they stay
/// in the kernel across a restart, their commands waiting).
fn adopt_kernel_devices(registry: &Registry, platform: &KernelPlatform, settings: &KernelDeviceSettings) {
    let Ok(existing) = uio::list() else { return };
    for (_, name) in existing.into_iter().filter(|(_, n)| n.subtype == SUBTYPE) {
        if registry.slot(&name.device).is_some() {
            continue;
        }
        match serve_kernel_device(registry, settings, &name, |registry, cfg| match platform.adopt(registry, cfg)? {
            true => Ok(()),
            false => anyhow::bail!("the device went away"),
        }) {
            Ok(()) => tracing::info!(device = %name.device, "adopted a device created through configfs"),
            Err(e) => {
                tracing::error!(device = %name.device, error = %e, "not serving a device created through configfs")
            }
        }
    }
}

/// Run the daemon until SIGINT or SIGTERM.
pub fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    // Block the signals before any thread exists, so every thread inherits
    // the mask and only the main thread's sigwait sees them.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block()?;

    let cache = cfg.daemon.cache_dir.clone().unwrap_or_else(handlers::default_cache_dir);
    let runtime = Runtime::new(Some(cache))?;
    preflight(&cfg)?;

    let platform = Arc::new(KernelPlatform::new(cfg.daemon.clone()));
    let registry = Registry::new(runtime, cfg.daemon.clone(), platform.clone());
    if let Err(e) = configfs::reset_pending_netlink() {
        tracing::warn!(error = %e, "could not reset pending netlink requests");
    }
    let handler: netlink::EventHandler = {
        let (registry, kernel_devices) = (registry.clone(), cfg.kernel_devices.clone());
        Arc::new(move |event| on_event(&registry, &kernel_devices, event))
    };
    let _listener = netlink::Listener::start(SUBTYPE, handler, Duration::from_secs(cfg.daemon.event_timeout_secs))?;
    let _control = match cfg.control.enabled() {
        true => Some(ControlServer::start(&cfg.control, registry.clone())?),
        false => None,
    };
    let _dbus = start_dbus(&registry, &cfg);
    if let Some(addr) = cfg.metrics.address()? {
        super::metrics_http::start(addr, registry.clone())?;
    }

    // Libraries first: a changer gets its library when its device comes up,
    // and a drive its cartridge.
    for library in &cfg.libraries {
        if let Err(e) = registry.add_library(library.clone(), &cfg.devices) {
            tracing::error!(library = %library.name, error = %format!("{e:#}"), "library not available");
        }
    }
    let started = Instant::now();
    let failed = bring_up(&registry, &cfg.devices);
    adopt_kernel_devices(&registry, &platform, &cfg.kernel_devices);
    tracing::info!(
        devices = cfg.devices.len() - failed,
        failed,
        ms = started.elapsed().as_millis() as u64,
        "serving; SIGINT or SIGTERM stops, SIGHUP reloads changed handlers"
    );
    loop {
        match signals.wait()? {
            Signal::SIGHUP => match registry.reload(&ReloadTarget::Changed(true), None, false, false) {
                Ok(results) if results.is_empty() => tracing::info!("SIGHUP: no handler changed on disk"),
                Ok(results) => {
                    for r in results {
                        tracing::info!(device = %r.device, ok = r.ok, error = ?r.error, digest = %r.digest, "SIGHUP reload");
                    }
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP reload failed"),
            },
            signal => {
                tracing::info!(?signal, "stopping");
                break;
            }
        }
    }
    registry.shutdown();
    Ok(())
}

/// The D-Bus service, where there is a bus and the name is free.
fn start_dbus(registry: &Arc<Registry>, cfg: &ServeConfig) -> Option<super::dbus::Service> {
    if !cfg.dbus.enabled {
        return None;
    }
    if cfg.dbus.address.is_none() && !super::dbus::system_bus_present() {
        tracing::info!("no system D-Bus: targetcli will not list user:wasm (devices it makes are still served)");
        return None;
    }
    match super::dbus::start(registry.clone(), cfg.kernel_devices.clone(), cfg.dbus.address.as_deref()) {
        Ok(service) => {
            tracing::info!(name = super::dbus::BUS_NAME, "D-Bus service up: targetcli lists /backstores/user:wasm");
            Some(service)
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "D-Bus service not started; serving without it");
            None
        }
    }
}

/// Bring the configured devices up side by side, so one slow handler does
/// not hold up the rest; returns how many failed (each is logged and left
/// out, the others serve).
fn bring_up(registry: &Arc<Registry>, devices: &[DeviceConfig]) -> usize {
    std::thread::scope(|scope| {
        let workers: Vec<_> = devices
            .iter()
            .map(|d| {
                let registry = registry.clone();
                scope.spawn(move || (d.name.clone(), registry.add_configured(d.clone())))
            })
            .collect();
        let mut failed = 0;
        for worker in workers {
            match worker.join() {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => {
                    failed += 1;
                    tracing::error!(device = %name, error = %e, "device failed to start; the others serve");
                }
                Err(_) => failed += 1,
            }
        }
        failed
    })
}

/// What `serve --check-config` found about one device.
#[derive(Debug)]
pub struct CheckedDevice {
    /// The device.
    pub name: String,
    /// Its handler's name.
    pub handler: String,
    /// Device type.
    pub device_type: String,
    /// The size configured.
    pub size: u64,
    /// The export.
    pub export: Export,
    /// Whether the backing file exists (else the daemon creates it).
    pub backing_exists: bool,
    /// Whether the device has a backing store at all (tape drives and
    /// changers do not).
    pub has_backing: bool,
}

/// Validate a config without touching the kernel: load each handler and
/// open each device with its config on its real backing, read-only (a
/// temporary sparse file of the configured size where the backing does not
/// exist yet), so a handler config the handler refuses fails here and not
/// at `enable`.
pub fn check_config(cfg: &ServeConfig) -> anyhow::Result<Vec<CheckedDevice>> {
    let runtime = Runtime::new(Some(cfg.daemon.cache_dir.clone().unwrap_or_else(handlers::default_cache_dir)))?;
    let instance = identity::instance_id(&cfg.daemon);
    // Removed when dropped, whichever way this returns.
    let scratch = tempfile::Builder::new().prefix("tcmu-wasm-check").tempdir()?;
    let mut out = Vec::new();
    for d in &cfg.devices {
        let ctx = || format!("device {:?}", d.name);
        let code = HandlerCode::load(&runtime, &handlers::resolve(&d.handler).with_context(ctx)?).with_context(ctx)?;
        super::libraries::check_member(&cfg.libraries, &d.name, &code).with_context(ctx)?;
        let (backing, exists) = match &d.backing {
            Some(path) if path.exists() => {
                let file = BackingFile::open_with(path, d.size.0, OpenFlags { read_only: true, direct: d.direct })
                    .with_context(|| format!("device {:?}: opening backing {} read-only", d.name, path.display()))?;
                (Some(Arc::new(file)), true)
            }
            Some(_) => {
                let path = scratch.path().join(format!("{}.img", d.name));
                std::fs::File::create(&path)?.set_len(d.size.0)?;
                (Some(Arc::new(BackingFile::open(&path, d.size.0, true)?)), false)
            }
            None => (None, false),
        };
        let mut spec = DeviceSpec::new(&d.name, &d.config, backing, d.limits());
        spec.identity = identity::device_identity(&instance, &d.name);
        let mut device = SandboxedDevice::open(code.clone(), spec).with_context(ctx)?;
        device.close();
        out.push(CheckedDevice {
            name: d.name.clone(),
            handler: code.info().name.clone(),
            device_type: format!("{:?}", code.info().device_type).to_lowercase(),
            size: d.size.0,
            export: d.export,
            backing_exists: exists,
            has_backing: d.backing.is_some(),
        });
    }
    Ok(out)
}
