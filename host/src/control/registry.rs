//! The device registry: every device the daemon serves, which can change
//! while it runs.
//!
//! Who calls what, on which thread:
//! - operator actions (`add`, `remove`, `reload`, `reset`) run on the
//!   caller's thread — a control-socket connection, or the main thread at
//!   start and stop — never on a netlink event thread, because the configfs
//!   writes they make (`enable`, the backstore's `rmdir`) block until an
//!   event thread has answered the kernel;
//! - kernel events ([`Registry::attach`], [`Registry::detach`],
//!   [`Registry::on_reconfig`]) run on per-event threads;
//! - reads (`status`) take each device's lock only for a moment and never
//!   wait for a device thread, so a stuck device still reports.
//!
//! Locks: `devices` (the map) is held only to look up, insert or remove a
//! slot; each slot's `inner` only to read or swap its fields; each slot's
//! `op` serializes operator actions on that device (a second action on a
//! busy device is refused, not queued). No lock is held across a configfs
//! write or a wait for a device thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::api::{
    DeviceStatus, ErrorKind, HandlerEntry, HandlersReport, Origin, ReloadResult, ReloadTarget, StatusReport,
};
use super::config::{DaemonSettings, DeviceConfig, normalize};
use super::identity;
use crate::backing::{BackingFile, OpenFlags};
use crate::device::{Backend, DeviceError, DeviceHandle, Doorbell, ReloadRequest, StatePolicy};
use crate::handlers;
use crate::metrics::DeviceMetrics;
use crate::ring::Ring;
use crate::sandbox::{DeviceSpec, HandlerCode, Runtime, SandboxedDevice};
use tcmu_guest_sdk::DeviceIdentity;

/// How a device gets its kernel side (configfs + uio, or the simulator).
pub trait Platform: Send + Sync {
    /// Create the kernel side of a new device and bring it up. Before this
    /// returns `Ok`, [`Registry::attach`] must have run for it (directly, or
    /// from the kernel's ADDED event).
    fn create(&self, registry: &Registry, cfg: &DeviceConfig, identity: &DeviceIdentity) -> anyhow::Result<()>;
    /// If the kernel already has this device (a predecessor's, kept with
    /// `persist`), take it over: attach to its ring and export it. `false`
    /// when there is nothing to adopt.
    fn adopt(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<bool>;
    /// Unexport and remove the kernel side; the device thread stops through
    /// [`Registry::detach`] (the kernel's REMOVED event, or directly).
    fn destroy(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<()>;
    /// Unexport only, keeping the backstore for the next daemon (persist).
    fn release(&self, registry: &Registry, cfg: &DeviceConfig) -> anyhow::Result<()>;
}

fn code_key(code: &HandlerCode) -> String {
    format!("{} {}", code.digest(), code.path().display())
}

/// An operator-facing failure: a class and a message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    /// The class (maps onto the socket protocol's error kinds).
    pub kind: ErrorKind,
    /// For the operator.
    pub message: String,
}

impl OpError {
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    fn failed(e: anyhow::Error) -> Self {
        Self::new(ErrorKind::Failed, format!("{e:#}"))
    }
}

pub(super) type OpResult<T> = Result<T, OpError>;

/// Where a device is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Being created; the kernel side may not exist yet.
    Starting,
    /// Its thread serves the ring.
    Serving,
    /// Being removed.
    Stopping,
    /// Bringing it up failed; kept for `status` until removed.
    Failed(String),
}

/// One device.
pub struct Slot {
    cfg: DeviceConfig,
    origin: Origin,
    /// What its backing is, to refuse another device on it.
    backing_id: Option<super::config::BackingIdentity>,
    identity: DeviceIdentity,
    metrics: Arc<DeviceMetrics>,
    /// Serializes operator actions on this device.
    op: Mutex<()>,
    inner: Mutex<SlotInner>,
}

struct SlotInner {
    phase: Phase,
    code: Arc<HandlerCode>,
    previous: Option<Arc<HandlerCode>>,
    handle: Option<Arc<DeviceHandle>>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device's config.
    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// The device's metrics.
    pub fn metrics(&self) -> &Arc<DeviceMetrics> {
        &self.metrics
    }

    /// The code it runs now.
    pub(crate) fn code(&self) -> Arc<HandlerCode> {
        self.lock().code.clone()
    }

    /// The running device, if it is running.
    pub(crate) fn handle(&self) -> Option<Arc<DeviceHandle>> {
        self.lock().handle.clone().filter(|h| !h.is_finished())
    }

    pub(super) fn try_op(&self) -> OpResult<MutexGuard<'_, ()>> {
        self.op.try_lock().map_err(|_| {
            OpError::new(ErrorKind::Busy, format!("device {:?} is busy with another operation", self.cfg.name))
        })
    }
}

/// Deadlines for requests to device threads.
#[derive(Debug, Clone)]
pub struct Deadlines {
    /// Kernel events: attach (the handler's open) must finish within this.
    pub event: Duration,
    /// Control calls to a running device (resize, write cache, reload, reset).
    pub control: Duration,
    /// Stopping a device thread.
    pub stop: Duration,
}

impl Deadlines {
    fn from_settings(settings: &DaemonSettings) -> Self {
        let event = Duration::from_secs(settings.event_timeout_secs.max(2));
        Self {
            // Answer the kernel before its waiter gives up on us.
            event: event.saturating_sub(Duration::from_secs(1)),
            control: Duration::from_secs(60),
            stop: Duration::from_secs(15),
        }
    }
}

/// The registry.
pub struct Registry {
    runtime: Arc<Runtime>,
    settings: DaemonSettings,
    instance_id: String,
    deadlines: Deadlines,
    platform: Arc<dyn Platform>,
    devices: Mutex<BTreeMap<String, Arc<Slot>>>,
    /// Code loaded so far, by digest (shared by devices using the same file).
    codes: Mutex<BTreeMap<String, Arc<HandlerCode>>>,
    /// Where handlers are found by name.
    handler_dirs: Vec<PathBuf>,
    /// Configured devices that failed to come up at start, with the reason
    /// (shown by `status` until added again or removed).
    failures: Mutex<BTreeMap<String, (DeviceConfig, String)>>,
    /// Tape libraries, by name (see `libraries.rs`).
    pub(super) libraries: Mutex<BTreeMap<String, Arc<super::libraries::LibraryEntry>>>,
    /// What each drive outside a library holds (see `media.rs`).
    media: super::media::MediaBook,
}

impl Registry {
    /// An empty registry whose devices get their kernel side from `platform`.
    pub fn new(runtime: Arc<Runtime>, settings: DaemonSettings, platform: Arc<dyn Platform>) -> Arc<Self> {
        let instance_id = identity::instance_id(&settings);
        let deadlines = Deadlines::from_settings(&settings);
        let media = super::media::MediaBook::open(&settings.state_dir());
        Arc::new(Self {
            runtime,
            settings,
            instance_id,
            deadlines,
            platform,
            devices: Mutex::default(),
            codes: Mutex::default(),
            handler_dirs: handlers::search_path(),
            failures: Mutex::default(),
            libraries: Mutex::default(),
            media,
        })
    }

    /// An empty registry that finds handlers by name in `dirs` only.
    pub fn with_handler_dirs(
        runtime: Arc<Runtime>,
        settings: DaemonSettings,
        platform: Arc<dyn Platform>,
        dirs: Vec<PathBuf>,
    ) -> Arc<Self> {
        let registry = Self::new(runtime, settings, platform);
        let mut registry = Arc::into_inner(registry).expect("not shared yet");
        registry.handler_dirs = dirs;
        Arc::new(registry)
    }

    /// The standalone drives' media.
    pub(super) fn media(&self) -> &super::media::MediaBook {
        &self.media
    }

    /// The daemon's settings.
    pub fn settings(&self) -> &DaemonSettings {
        &self.settings
    }

    /// The instance id identities derive from.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The deadlines in force.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Slot>>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device called `name`.
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.map().get(name).cloned()
    }

    /// Device names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    /// Where handlers are found by name, in order.
    pub fn handler_dirs(&self) -> &[PathBuf] {
        &self.handler_dirs
    }

    fn find(&self, name: &str) -> OpResult<Arc<Slot>> {
        self.slot(name).ok_or_else(|| OpError::new(ErrorKind::NotFound, format!("no device {name:?}")))
    }

    /// Load (or reuse) the code at `path`; off every device thread.
    pub fn load_code(&self, path: &Path) -> anyhow::Result<Arc<HandlerCode>> {
        // One copy per file and content. Keyed by path too: a device
        // remembers which file its code came from, and SIGHUP re-reads that
        // file, even when another file holds the same bytes.
        let codes = || self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let code = HandlerCode::load_reusing(&self.runtime, path, |digest| {
            codes().get(&format!("{digest} {}", path.display())).cloned()
        })?;
        Ok(codes().entry(code_key(&code)).or_insert(code).clone())
    }

    /// Forget loaded code no device runs or could roll back to.
    fn prune_codes(&self) {
        let in_use: Vec<String> = self
            .map()
            .values()
            .flat_map(|s| {
                let inner = s.lock();
                let mut d = vec![code_key(&inner.code)];
                d.extend(inner.previous.as_deref().map(code_key));
                d
            })
            .collect();
        self.codes.lock().unwrap_or_else(|p| p.into_inner()).retain(|key, _| in_use.contains(key));
    }

    fn failures(&self) -> MutexGuard<'_, BTreeMap<String, (DeviceConfig, String)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Registry::add`] for a device of the config file: a failure is also
    /// kept for `status`, so the operator sees what did not come up.
    pub fn add_configured(&self, cfg: DeviceConfig) -> OpResult<()> {
        let name = cfg.name.clone();
        let result = self.add(cfg.clone());
        if let Err(e) = &result {
            self.failures().insert(name, (cfg, e.message.clone()));
        }
        result
    }

    /// Add a device: validate it, load its handler, create its kernel side,
    /// serve and export it. Nothing is left behind when this fails.
    pub fn add(&self, mut cfg: DeviceConfig) -> OpResult<()> {
        self.failures().remove(&cfg.name);
        cfg.size_from_block_device().map_err(|e| OpError::new(ErrorKind::BadRequest, format!("{e:#}")))?;
        let code = self.code_for(&cfg)?;
        let slot = self.insert(cfg, code, Origin::Daemon)?;
        let _op = slot.try_op()?;
        let started = Instant::now();
        let result = match self.platform.adopt(self, &slot.cfg) {
            Ok(true) => Ok(()),
            Ok(false) => self.platform.create(self, &slot.cfg, &slot.identity),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if self.is_serving(&slot) => {
                tracing::info!(device = %slot.cfg.name, ms = started.elapsed().as_millis() as u64, "device added");
                Ok(())
            }
            Ok(()) => {
                self.undo_add(&slot);
                Err(OpError::new(
                    ErrorKind::Failed,
                    "the kernel never announced the device (is another daemon answering TCM-USER events?)",
                ))
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(device = %slot.cfg.name, error = %reason, "adding the device failed; undoing");
                self.undo_add(&slot);
                Err(OpError::new(ErrorKind::Failed, reason))
            }
        }
    }

    /// Serve a device somebody else created through configfs (see
    /// `kernel_devices`): check it, load its installed handler, and run
    /// `attach`, which must attach its ring. Nothing is left behind when
    /// this fails; the kernel side is never touched.
    pub fn add_kernel_device(
        &self,
        cfg: DeviceConfig,
        attach: impl FnOnce(&Registry, &DeviceConfig) -> anyhow::Result<()>,
    ) -> OpResult<()> {
        let code = self.code_for(&cfg)?;
        let slot = self.insert(cfg, code, Origin::Kernel)?;
        let _op = slot.try_op()?;
        match attach(self, &slot.cfg) {
            Ok(()) if self.is_serving(&slot) => Ok(()),
            outcome => {
                self.forget(&slot.cfg.name);
                let reason = match outcome {
                    Err(e) => format!("{e:#}"),
                    Ok(()) => "the device did not come up".into(),
                };
                Err(OpError::new(ErrorKind::Failed, reason))
            }
        }
    }

    /// The kernel's REMOVED event: stop the device; forget it if it was
    /// somebody else's (its backstore is gone, so is the device).
    pub fn on_removed(&self, name: &str) {
        if self.slot(name).is_some_and(|slot| slot.origin == Origin::Kernel) {
            self.forget(name);
            tracing::info!(device = name, "device removed through configfs");
        } else {
            self.detach(name);
        }
    }

    /// A valid device's handler code, loaded (or reused) and fit for it.
    fn code_for(&self, cfg: &DeviceConfig) -> OpResult<Arc<HandlerCode>> {
        cfg.validate().map_err(|e| OpError::new(ErrorKind::BadRequest, format!("{e:#}")))?;
        let path = handlers::resolve_in(&cfg.handler, &self.handler_dirs)
            .map_err(|e| OpError::new(ErrorKind::NotFound, format!("{e:#}")))?;
        let code = self.load_code(&path).map_err(OpError::failed)?;
        self.check_library_member(&cfg.name, &code)?;
        Ok(code)
    }

    /// Stop device `name` and drop its slot and the code only it used.
    fn forget(&self, name: &str) {
        self.detach(name);
        self.map().remove(name);
        self.prune_codes();
    }

    fn insert(&self, cfg: DeviceConfig, code: Arc<HandlerCode>, origin: Origin) -> OpResult<Arc<Slot>> {
        let mut map = self.map();
        if map.contains_key(&cfg.name) {
            return Err(OpError::new(ErrorKind::Conflict, format!("device {:?} exists already", cfg.name)));
        }
        let backing_id = cfg.backing_identity();
        for other in map.values() {
            cfg.check_not_sharing(backing_id.as_ref(), &other.cfg, other.backing_id.as_ref())
                .map_err(|e| OpError::new(ErrorKind::Conflict, format!("{e:#}")))?;
        }
        let identity = identity::device_identity(&self.instance_id, &cfg.name);
        let slot = Arc::new(Slot {
            origin,
            identity,
            backing_id,
            metrics: Arc::default(),
            op: Mutex::new(()),
            inner: Mutex::new(SlotInner { phase: Phase::Starting, code, previous: None, handle: None }),
            cfg,
        });
        map.insert(slot.cfg.name.clone(), slot.clone());
        Ok(slot)
    }

    fn undo_add(&self, slot: &Arc<Slot>) {
        if let Err(e) = self.platform.destroy(self, &slot.cfg) {
            tracing::warn!(device = %slot.cfg.name, error = %format!("{e:#}"), "cleaning up the failed device");
        }
        self.forget(&slot.cfg.name);
    }

    fn is_serving(&self, slot: &Slot) -> bool {
        let inner = slot.lock();
        inner.phase == Phase::Serving && inner.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Serve device `name` on `ring`: open its backing file, build its
    /// handler instance on a new device thread and wait (up to the event
    /// deadline) for the handler's open. Called for the kernel's ADDED
    /// event, on adoption, and by the simulator platform.
    pub fn attach(&self, name: &str, ring: Ring, doorbell: Box<dyn Doorbell>) -> Result<(), DeviceError> {
        let slot = self.slot(name).ok_or_else(|| DeviceError::Start(format!("no device {name:?} in the registry")))?;
        let code = {
            let inner = slot.lock();
            if inner.handle.as_ref().is_some_and(|h| !h.is_finished()) {
                return Ok(()); // already serving (a repeated event)
            }
            inner.code.clone()
        };
        let cfg = &slot.cfg;
        let backing = match &cfg.backing {
            Some(path) => Some(Arc::new(
                BackingFile::open_with(path, cfg.size.0, OpenFlags { read_only: cfg.read_only, direct: cfg.direct })
                    .map_err(|e| DeviceError::Start(format!("opening backing file {}: {e}", path.display())))?,
            )),
            None => None,
        };
        let mut limits = cfg.limits();
        // Open (and restore) must finish before the kernel's waiter gives up.
        limits.open_budget = limits.open_budget.min(self.deadlines.event.mul_f64(0.45));
        let spec = DeviceSpec {
            name: cfg.name.as_str().into(),
            config: cfg.config.clone(),
            identity: slot.identity.clone(),
            backing,
            limits,
            metrics: slot.metrics.clone(),
            library: self.changer_library(name),
            io: crate::aio::IoSettings {
                mode: cfg.io,
                max_in_flight: cfg.max_in_flight.max(1) as usize,
                busy_poll: std::time::Duration::from_micros(cfg.busy_poll_us.into()),
                ..Default::default()
            },
        };
        let (handle, ready) = DeviceHandle::spawn(name, ring, doorbell, slot.metrics.clone(), move || {
            Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>)
        })
        .map_err(|e| DeviceError::Start(format!("starting the device thread: {e}")))?;
        match ready.recv_timeout(self.deadlines.event) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let reason = format!("{e:#}");
                slot.lock().phase = Phase::Failed(reason.clone());
                return Err(DeviceError::Start(reason));
            }
            Err(_) => {
                let reason = format!("the handler did not open within {:?}", self.deadlines.event);
                slot.lock().phase = Phase::Failed(reason.clone());
                // Its thread ends once the open returns; do not wait here.
                std::thread::spawn(move || drop(handle));
                return Err(DeviceError::Timeout { what: "open", after: self.deadlines.event });
            }
        }
        {
            let mut inner = slot.lock();
            inner.handle = Some(Arc::new(handle));
            inner.phase = Phase::Serving;
            tracing::info!(device = name, handler = %inner.code.info().name, "device serving");
        }
        // A library drive gets back the cartridge its library says it holds.
        self.restore_library_drive(name);
        // Any other drive gets back the medium it held.
        self.restore_standalone_medium(name);
        Ok(())
    }

    /// Stop device `name`'s thread (the kernel's REMOVED event, or a removal
    /// without a kernel). Never waits longer than the stop deadline.
    pub fn detach(&self, name: &str) {
        let Some(slot) = self.slot(name) else { return };
        let handle = slot.lock().handle.take();
        if let Some(handle) = handle
            && let Err(e) = handle.stop(self.deadlines.stop)
        {
            tracing::warn!(device = name, error = %e, "device thread ended with an error");
        }
    }

    /// A RECONFIG event: write cache and/or size changed.
    pub fn on_reconfig(&self, name: &str, write_cache: Option<bool>, size: Option<u64>) -> Result<(), DeviceError> {
        let slot = self.slot(name).ok_or(DeviceError::NotRunning)?;
        let handle = slot.lock().handle.clone().ok_or(DeviceError::NotRunning)?;
        if let Some(enabled) = write_cache {
            handle.set_write_cache(enabled, self.deadlines.event)?;
        }
        if let Some(size) = size {
            handle.resize(size, self.deadlines.event)?;
        }
        Ok(())
    }

    /// Remove a device: unexport it, remove its kernel side, stop it.
    pub fn remove(&self, name: &str) -> OpResult<()> {
        if self.slot(name).is_none() && self.failures().remove(name).is_some() {
            return Ok(()); // only a record of a failed start
        }
        let slot = self.find(name)?;
        if slot.origin == Origin::Kernel {
            return Err(OpError::new(
                ErrorKind::BadRequest,
                format!(
                    "device {name:?} was created through configfs (targetcli, rtslib); remove its backstore there \
                     and the daemon lets go of it"
                ),
            ));
        }
        let _op = slot.try_op()?;
        slot.lock().phase = Phase::Stopping;
        let result = self.platform.destroy(self, &slot.cfg);
        // Whatever the kernel did, our side stops.
        self.forget(name);
        result.map_err(OpError::failed)?;
        tracing::info!(device = name, "device removed");
        Ok(())
    }

    /// Stop every device at daemon exit: persisted ones keep their kernel
    /// side for the next daemon, the rest are removed.
    pub fn shutdown(&self) {
        for name in self.names().into_iter().rev() {
            let Some(slot) = self.slot(&name) else { continue };
            let result = if slot.cfg.persist {
                let released = self.platform.release(self, &slot.cfg);
                self.detach(&name);
                self.map().remove(&name);
                released
            } else {
                // `remove` stops the thread and forgets the slot even when
                // the kernel side fails to go.
                self.remove(&name).map_err(|e| anyhow::anyhow!(e.message))
            };
            if let Err(e) = result {
                tracing::error!(device = %name, error = %format!("{e:#}"), "stopping the device");
            }
            tracing::info!(device = %name, persisted = slot.cfg.persist, "device stopped");
        }
    }

    /// Hot reload. The new code is loaded and checked here, on the caller's
    /// thread; each device then swaps at its next command boundary.
    pub fn reload(
        &self,
        target: &ReloadTarget,
        wasm: Option<&Path>,
        rollback: bool,
        discard_state: bool,
    ) -> OpResult<Vec<ReloadResult>> {
        let slots: Vec<Arc<Slot>> = match target {
            ReloadTarget::Device(name) => vec![self.find(name)?],
            ReloadTarget::Handler(handler) => {
                let slots: Vec<_> = self
                    .map()
                    .values()
                    .filter(|s| s.lock().code.info().name == *handler || s.cfg.handler == *handler)
                    .cloned()
                    .collect();
                if slots.is_empty() {
                    return Err(OpError::new(ErrorKind::NotFound, format!("no device runs handler {handler:?}")));
                }
                slots
            }
            ReloadTarget::Changed(_) => self.map().values().cloned().collect(),
        };
        if rollback && wasm.is_some() {
            return Err(OpError::new(ErrorKind::BadRequest, "--rollback and --wasm exclude each other"));
        }
        let state = if discard_state { StatePolicy::Discard } else { StatePolicy::Require };
        // Load each distinct new file once.
        let mut loaded: BTreeMap<PathBuf, Result<Arc<HandlerCode>, String>> = BTreeMap::new();
        let mut results = Vec::new();
        for slot in slots {
            let current = slot.lock().code.clone();
            let new_code = if rollback {
                match slot.lock().previous.clone() {
                    Some(previous) => Ok(previous),
                    None => Err("nothing to roll back to (no earlier reload)".to_owned()),
                }
            } else {
                let path = match wasm {
                    Some(p) => p.to_owned(),
                    None => current.path().to_owned(),
                };
                loaded
                    .entry(normalize(&path))
                    .or_insert_with(|| self.load_code(&path).map_err(|e| format!("{e:#}")))
                    .clone()
            };
            if matches!(target, ReloadTarget::Changed(_))
                && new_code.as_ref().is_ok_and(|c| c.digest() == current.digest())
            {
                continue; // unchanged on disk
            }
            results.push(self.reload_one(&slot, current, new_code, state));
        }
        self.prune_codes();
        Ok(results)
    }

    fn reload_one(
        &self,
        slot: &Arc<Slot>,
        current: Arc<HandlerCode>,
        new_code: Result<Arc<HandlerCode>, String>,
        state: StatePolicy,
    ) -> ReloadResult {
        let name = slot.cfg.name.clone();
        let fail = |error: String| {
            slot.metrics.reload_failed();
            tracing::error!(device = %name, error = %error, "reload refused; the old code keeps serving");
            ReloadResult {
                device: name.clone(),
                ok: false,
                error: Some(error),
                digest: current.digest().to_owned(),
                pause_us: None,
                state_bytes: None,
            }
        };
        let code = match new_code {
            Ok(code) => code,
            Err(e) => return fail(e),
        };
        if code.info().device_type != current.info().device_type {
            return fail(format!(
                "the new code is a {:?} handler, the device a {:?}",
                code.info().device_type,
                current.info().device_type
            ));
        }
        let Ok(_op) = slot.try_op() else { return fail("the device is busy with another operation".into()) };
        // The slot is not locked while the device swaps.
        let handle = slot.lock().handle.clone();
        let outcome = match handle {
            Some(handle) => handle.reload(ReloadRequest { code: code.clone(), state }, self.deadlines.control),
            None => Err(DeviceError::NotRunning),
        };
        match outcome {
            Ok(done) => {
                let mut inner = slot.lock();
                inner.previous = Some(std::mem::replace(&mut inner.code, code));
                ReloadResult {
                    device: name,
                    ok: true,
                    error: None,
                    digest: done.digest,
                    pause_us: Some(done.pause.as_micros() as u64),
                    state_bytes: Some(done.state_bytes),
                }
            }
            Err(e) => fail(format!("{e}")),
        }
    }

    /// Lift a fence and rebuild a device's instance.
    pub fn reset(&self, name: &str) -> OpResult<()> {
        let slot = self.find(name)?;
        let _op = slot.try_op()?;
        let handle =
            slot.lock().handle.clone().ok_or_else(|| OpError::new(ErrorKind::Failed, "the device is not running"))?;
        handle.reset(self.deadlines.control).map_err(|e| OpError::new(ErrorKind::Failed, e.to_string()))
    }

    /// Every device's state and metrics.
    pub fn status(&self, only: Option<&str>) -> OpResult<StatusReport> {
        let failed: Vec<DeviceStatus> = self
            .failures()
            .values()
            .filter(|(cfg, _)| only.is_none_or(|n| n == cfg.name))
            .map(|(cfg, why)| DeviceStatus {
                name: cfg.name.clone(),
                handler: cfg.handler.clone(),
                device_type: "?".into(),
                digest: String::new(),
                wasm: PathBuf::new(),
                state: "failed".into(),
                reason: Some(why.clone()),
                export: format!("{:?}", cfg.export).to_lowercase(),
                origin: Origin::Daemon,
                size: cfg.size.0,
                serial: identity::device_identity(&self.instance_id, &cfg.name).serial,
                can_roll_back: false,
                medium: None,
                metrics: Default::default(),
            })
            .collect();
        let slots: Vec<Arc<Slot>> = match only {
            Some(_) if !failed.is_empty() => {
                return Ok(StatusReport { instance_id: self.instance_id.clone(), devices: failed });
            }
            Some(name) => vec![self.find(name)?],
            None => self.map().values().cloned().collect(),
        };
        let mut devices: Vec<DeviceStatus> = slots
            .iter()
            .map(|slot| {
                let medium = self.standalone_medium(&slot.cfg.name);
                let inner = slot.lock();
                let finished = inner.handle.as_ref().is_some_and(|h| h.is_finished());
                let (state, reason) = match &inner.phase {
                    Phase::Starting => ("starting", None),
                    Phase::Stopping => ("stopping", None),
                    Phase::Failed(why) => ("failed", Some(why.clone())),
                    Phase::Serving if finished || inner.handle.is_none() => {
                        ("stopped", Some("the device thread ended; see the log".to_owned()))
                    }
                    Phase::Serving if slot.metrics.is_fenced() => ("fenced", None),
                    Phase::Serving => ("serving", None),
                };
                DeviceStatus {
                    name: slot.cfg.name.clone(),
                    handler: inner.code.info().name.clone(),
                    device_type: format!("{:?}", inner.code.info().device_type).to_lowercase(),
                    digest: inner.code.digest().to_owned(),
                    wasm: inner.code.path().to_owned(),
                    state: state.to_owned(),
                    reason,
                    export: format!("{:?}", slot.cfg.export).to_lowercase(),
                    origin: slot.origin,
                    size: slot.cfg.size.0,
                    serial: slot.identity.serial.clone(),
                    can_roll_back: inner.previous.is_some(),
                    medium,
                    metrics: slot.metrics.snapshot(),
                }
            })
            .collect();
        devices.extend(failed);
        devices.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(StatusReport { instance_id: self.instance_id.clone(), devices })
    }

    /// Handlers on the search path, plus code loaded from elsewhere.
    pub fn handlers(&self) -> HandlersReport {
        let users = |digest: &str| -> Vec<String> {
            self.map().values().filter(|s| s.lock().code.digest() == digest).map(|s| s.cfg.name.clone()).collect()
        };
        let mut entries = Vec::new();
        let mut seen = Vec::new();
        for path in handlers::available_in(&self.handler_dirs) {
            // Described, not kept: only code a device runs stays loaded.
            let entry = match HandlerCode::load(&self.runtime, &path) {
                Ok(code) => {
                    seen.push(code.digest().to_owned());
                    HandlerEntry {
                        name: code.info().name.clone(),
                        device_type: format!("{:?}", code.info().device_type).to_lowercase(),
                        description: code.info().description.clone(),
                        wasm: path,
                        digest: Some(code.digest().to_owned()),
                        devices: users(code.digest()),
                        on_search_path: true,
                    }
                }
                Err(e) => HandlerEntry {
                    name: "?".into(),
                    device_type: "?".into(),
                    description: format!("unusable: {e:#}"),
                    wasm: path,
                    digest: None,
                    devices: Vec::new(),
                    on_search_path: true,
                },
            };
            entries.push(entry);
        }
        let loaded: Vec<Arc<HandlerCode>> =
            self.codes.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for code in loaded.into_iter().filter(|c| !seen.iter().any(|d| d == c.digest())) {
            entries.push(HandlerEntry {
                name: code.info().name.clone(),
                device_type: format!("{:?}", code.info().device_type).to_lowercase(),
                description: code.info().description.clone(),
                wasm: code.path().to_owned(),
                digest: Some(code.digest().to_owned()),
                devices: users(code.digest()),
                on_search_path: false,
            });
        }
        HandlersReport { search_path: self.handler_dirs.clone(), handlers: entries }
    }

    /// Every device's metrics with its labels, for the Prometheus listener.
    pub fn with_metrics<R>(&self, f: impl FnOnce(&[crate::metrics::prometheus::Labelled<'_>]) -> R) -> R {
        let slots: Vec<Arc<Slot>> = self.map().values().cloned().collect();
        let handlers: Vec<String> = slots.iter().map(|s| s.lock().code.info().name.clone()).collect();
        let labelled: Vec<_> = slots
            .iter()
            .zip(&handlers)
            .map(|(s, h)| crate::metrics::prometheus::Labelled { device: &s.cfg.name, handler: h, metrics: &s.metrics })
            .collect();
        f(&labelled)
    }
}
