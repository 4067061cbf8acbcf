//! One device served by a sandboxed handler instance: the instance's
//! lifecycle (open, rebuild after a fault, hot reload, fence), the state
//! that must outlive an instance, and the translation of calls and
//! completions between the ring and the handler.
//!
//! State across instances. Two kinds survive an instance:
//! - what the handler saves through the optional `state` export: a snapshot
//!   is taken after open, after every command that reports
//!   `state-changed`, and after every control call; a rebuilt instance
//!   restores the last snapshot, a hot reload the old instance's state;
//! - what the host told the handler (write cache on/off, a resize): each
//!   such event gets a sequence number, and a new instance hears every
//!   event newer than the snapshot it restored — all of them when it had
//!   none — so an operator's write-cache-off is never silently lost.

use std::sync::Arc;
use std::time::Instant;

use super::bindings::types;
use super::fence::{Admission, FaultOutcome, FenceState};
use super::guest_text::{LogLimiter, MAX_GUEST_TEXT, Verdict, sanitize};
use super::host::DeviceState;
use super::instance::{Fault, Instance};
use super::{HandlerCode, Limits};
use crate::aio::{IoEngine, IoSettings};
use crate::backing::BackingFile;
use crate::device::{Backend, BackendError, CommandIo, LibraryPort, Medium, MediumChange, ReloadRequest, StatePolicy};
use crate::metrics::{DeviceMetrics, RebuildCause};
use crate::ring::{CommandEntry, Response, TmrEntry, TmrKind};
use tcmu_guest_sdk::DeviceIdentity;

/// HARDWARE ERROR / INTERNAL TARGET FAILURE: the handler faulted.
const HANDLER_FAULT: (u8, u8, u8) = (0x04, 0x44, 0x00);
/// NOT READY / LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED: the
/// device is fenced after repeated faults.
const FENCED: (u8, u8, u8) = (0x02, 0x04, 0x03);
/// Largest state a handler may save.
const MAX_STATE_BYTES: usize = 16 << 20;

/// Everything about a device except its code.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Device name (for logs).
    pub name: Arc<str>,
    /// The operator's handler config string.
    pub config: String,
    /// The identity the host assigns.
    pub identity: DeviceIdentity,
    /// The granted backing store.
    pub backing: Option<Arc<BackingFile>>,
    /// Resource caps.
    pub limits: Limits,
    /// Where the device counts.
    pub metrics: Arc<DeviceMetrics>,
    /// A changer's library (`None` for every other device).
    pub library: Option<Arc<dyn LibraryPort>>,
    /// How the store's transfers run ([`crate::aio`]).
    pub io: IoSettings,
}

impl DeviceSpec {
    /// A spec with the identity derived from `name` and fresh metrics (for
    /// tests, `check` and `bench`; the daemon derives identities per
    /// instance, see `control::identity`).
    pub fn new(name: &str, config: &str, backing: Option<Arc<BackingFile>>, limits: Limits) -> Self {
        Self {
            name: name.into(),
            config: config.to_owned(),
            identity: DeviceIdentity::from_name(name),
            backing,
            limits,
            metrics: Arc::default(),
            library: None,
            io: IoSettings::default(),
        }
    }
}

/// Why a device could not open (or reopen, or reload).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The handler's `open` returned an error.
    #[error("handler refused to open: {0}")]
    Refused(String),
    /// The handler faulted.
    #[error("handler faulted in {during}: {fault}")]
    Fault {
        /// Which call.
        during: &'static str,
        /// What happened.
        fault: Fault,
    },
    /// The new instance could not take the state over.
    #[error("state hand-over failed: {0}")]
    State(String),
    /// The store's I/O engine could not be set up.
    #[error("setting up the backing store's I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The latest state snapshot and the host event it includes.
#[derive(Debug, Default)]
struct Snapshot {
    bytes: Vec<u8>,
    /// Sequence number of the newest host event applied before it was taken.
    event_seq: u64,
}

/// What the host told the handler, with sequence numbers.
#[derive(Debug, Default)]
struct HostEvents {
    seq: u64,
    write_cache: Option<(bool, u64)>,
    resize: Option<(u64, u64)>,
}

/// A device whose commands run in its own wasm instance.
pub struct SandboxedDevice {
    spec: DeviceSpec,
    code: Arc<HandlerCode>,
    live: Option<Instance>,
    snapshot: Snapshot,
    events: HostEvents,
    fence: FenceState,
    /// The medium in the drive (drives with removable media only). It
    /// outlives instances: a rebuilt or reloaded one hears it again.
    medium: Option<Medium>,
    /// Host lines caused by handler behaviour (faults, bad completions).
    host_log: LogLimiter,
    /// The store's I/O queue; it outlives instances, so a reload or a
    /// rebuild never loses a transfer in flight.
    engine: Option<Arc<IoEngine>>,
    /// The CDB buffer handed to `handle`, kept between commands so that
    /// copying a CDB allocates nothing.
    cdb_scratch: Vec<u8>,
}

impl SandboxedDevice {
    /// Instantiate `code` for the device and open it. Fails if the handler
    /// refuses to open or faults doing so.
    pub fn open(code: Arc<HandlerCode>, spec: DeviceSpec) -> Result<Self, OpenError> {
        let fence = FenceState::new(spec.limits.fence.clone());
        let host_log = LogLimiter::new(spec.limits.log_burst, spec.limits.log_per_second);
        let engine = match &spec.backing {
            Some(_) => Some(Arc::new(IoEngine::new(spec.io)?)),
            None => None,
        };
        let mut dev = Self {
            engine,
            spec,
            code,
            live: None,
            snapshot: Snapshot::default(),
            events: HostEvents::default(),
            fence,
            medium: None,
            host_log,
            cdb_scratch: Vec::with_capacity(32),
        };
        let (live, snapshot) = dev.start(&dev.code.clone(), None, StatePolicy::Require)?;
        dev.live = Some(live);
        dev.snapshot = snapshot;
        Ok(dev)
    }

    /// The code serving now.
    pub fn code(&self) -> &Arc<HandlerCode> {
        &self.code
    }

    fn data(&self) -> DeviceState {
        let l = &self.spec.limits;
        let mut data = DeviceState::new(
            self.spec.name.clone(),
            self.spec.backing.clone(),
            l.memory_bytes,
            self.spec.metrics.clone(),
            LogLimiter::new(l.log_burst, l.log_per_second),
        );
        data.library = self.spec.library.clone();
        data.engine = self.engine.clone();
        data
    }

    /// Grant `medium` to `live` and tell the handler.
    fn announce_medium(&self, live: &mut Instance, medium: &Medium) -> Result<Result<(), String>, Fault> {
        let limits = &self.spec.limits;
        let info = super::bindings::medium::MediumInfo {
            barcode: medium.barcode.clone(),
            write_protected: medium.write_protected,
            load_id: medium.load_id,
        };
        let grant = live
            .store
            .data_mut()
            .load_medium(medium.clone())
            .map_err(|e| Fault { cause: crate::metrics::FaultCause::Forbidden, detail: e.to_string() })?;
        let result = live.call(limits.open_budget, limits.slice, |store, x| match &x.removable {
            Some(removable) => removable.call_loaded(store, grant, &info),
            None => Ok(Err("the handler takes no removable medium (it does not export tcmu:handler/removable)".into())),
        })?;
        if result.is_err() {
            live.store.data_mut().unload_medium();
        }
        Ok(result.map_err(|msg| sanitize(&msg, MAX_GUEST_TEXT).into_owned()))
    }

    /// Whether the handler lets the medium go now (`removal` export). A
    /// handler without the export, or without a live instance, is not
    /// asked; one that faults answering does not hold the medium hostage
    /// either, but the fault is counted and the instance rebuilt.
    fn removal_allowed(&mut self) -> Result<bool, BackendError> {
        let limits = self.spec.limits.clone();
        let Some(live) = self.live.as_mut() else { return Ok(true) };
        let result = live.call(limits.command_budget, limits.slice, |store, x| match &x.removal {
            Some(removal) => removal.call_removal_requested(store),
            None => Ok(true),
        });
        match result {
            Ok(allowed) => {
                self.resnapshot("removal-requested");
                Ok(allowed)
            }
            Err(fault) => {
                self.faulted("removal-requested", fault);
                Ok(true)
            }
        }
    }

    /// A new, opened instance of `code`, with `state` restored (under
    /// `policy`) and newer host events replayed; returns it with its
    /// first snapshot.
    fn start(
        &self,
        code: &Arc<HandlerCode>,
        state: Option<&Snapshot>,
        policy: StatePolicy,
    ) -> Result<(Instance, Snapshot), OpenError> {
        let limits = &self.spec.limits;
        let fault = |during| move |fault| OpenError::Fault { during, fault };
        let mut live =
            Instance::new(code, self.data(), limits.open_budget, limits.slice).map_err(fault("instantiate"))?;
        let grant = live.store.data_mut().grant_store().map_err(|e| OpenError::Fault {
            during: "open",
            fault: Fault { cause: crate::metrics::FaultCause::Forbidden, detail: e.to_string() },
        })?;
        let identity = types::DeviceIdentity {
            name: self.spec.identity.name.clone(),
            serial: self.spec.identity.serial.clone(),
            naa: self.spec.identity.naa.clone(),
        };
        let config = &self.spec.config;
        live.call(limits.open_budget, limits.slice, |store, x| x.device.call_open(store, config, &identity, grant))
            .map_err(fault("open"))?
            .map_err(|msg| OpenError::Refused(sanitize(&msg, MAX_GUEST_TEXT).into_owned()))?;

        // The medium goes in before the state, so a restored position
        // applies to it (the handler compares the load id it saved).
        if let Some(medium) = &self.medium
            && let Err(msg) = self.announce_medium(&mut live, medium).map_err(fault("loaded"))?
        {
            tracing::warn!(device = %self.spec.name, barcode = %medium.barcode, error = %msg, "new instance refused the loaded medium");
        }

        // Restore the state, if there is any to restore.
        let mut restored_seq = None;
        if let Some(state) = state.filter(|s| !s.bytes.is_empty()) {
            let outcome = match live.exports.state.is_some() {
                false => Err("the new code does not export tcmu:handler/state, so the state would be lost".to_owned()),
                true => live
                    .call(limits.open_budget, limits.slice, |store, x| {
                        x.state.as_ref().expect("checked").call_restore(store, &state.bytes)
                    })
                    .map_err(fault("restore"))?
                    .map_err(|msg| sanitize(&msg, MAX_GUEST_TEXT).into_owned()),
            };
            match (outcome, policy) {
                (Ok(()), _) => restored_seq = Some(state.event_seq),
                (Err(msg), StatePolicy::Require) => return Err(OpenError::State(msg)),
                (Err(msg), StatePolicy::BestEffort | StatePolicy::Discard) => {
                    tracing::warn!(device = %self.spec.name, error = %msg, "new instance serves without the saved state");
                }
            }
        }

        // Replay what the host said since (everything, without a snapshot;
        // resizes only to handlers whose state says they saw none).
        let after = restored_seq.unwrap_or(0);
        let budget = limits.command_budget;
        if let Some((enabled, seq)) = self.events.write_cache
            && (restored_seq.is_none() || seq > after)
        {
            live.call(budget, limits.slice, |store, x| x.device.call_write_cache_changed(store, enabled))
                .map_err(fault("write-cache-changed"))?;
        }
        if let Some((size, seq)) = self.events.resize
            && restored_seq.is_some()
            && seq > after
        {
            live.call(budget, limits.slice, |store, x| x.device.call_resized(store, size)).map_err(fault("resized"))?;
        }
        let snapshot = self.save(&mut live).map_err(fault("save"))?;
        Ok((live, snapshot))
    }

    /// The instance's state now (empty without a `state` export).
    fn save(&self, live: &mut Instance) -> Result<Snapshot, Fault> {
        let event_seq = self.events.seq;
        if live.exports.state.is_none() {
            return Ok(Snapshot { bytes: Vec::new(), event_seq });
        }
        let limits = &self.spec.limits;
        let bytes = live.call(limits.command_budget, limits.slice, |store, x| {
            x.state.as_ref().expect("checked").call_save(store)
        })?;
        if bytes.len() > MAX_STATE_BYTES {
            return Err(Fault {
                cause: crate::metrics::FaultCause::Forbidden,
                detail: format!("saved state of {} bytes exceeds {MAX_STATE_BYTES}", bytes.len()),
            });
        }
        Ok(Snapshot { bytes, event_seq })
    }

    /// Refresh the snapshot after a state change; a fault is a fault.
    fn resnapshot(&mut self, during: &'static str) {
        let Some(mut live) = self.live.take() else { return };
        match self.save(&mut live) {
            Ok(snapshot) => {
                self.snapshot = snapshot;
                self.live = Some(live);
            }
            Err(fault) => self.faulted(during, fault),
        }
    }

    /// Log a fault, drop the instance and apply the fence policy.
    fn faulted(&mut self, during: &str, fault: Fault) {
        self.live = None;
        self.spec.metrics.fault(fault.cause);
        let outcome = self.fence.fault(Instant::now());
        let (device, handler) = (&*self.spec.name, self.code.info().name.as_str());
        if let Verdict::Log { suppressed } = self.host_log.admit(Instant::now()) {
            tracing::error!(device, handler, during, cause = fault.cause.name(), detail = %fault.detail, suppressed, "handler fault");
        }
        if let FaultOutcome::Fence(backoff) = outcome {
            self.spec.metrics.set_fenced(true);
            tracing::error!(
                device,
                handler,
                ?backoff,
                "device fenced after repeated faults: commands fail with NOT READY (02/04/03) until the backoff \
                 ends, or `tcmu-wasm ctl reset`/`reload` lifts it"
            );
        }
    }

    /// The live instance, rebuilding one if the last faulted. `None` means
    /// the command must fail: fenced, or the rebuild faulted too.
    fn admit(&mut self) -> Result<&mut Instance, (u8, u8, u8)> {
        match self.fence.admit(Instant::now()) {
            Admission::Fenced(_) => return Err(FENCED),
            Admission::Probation => {
                self.spec.metrics.set_fenced(false);
                tracing::info!(device = %self.spec.name, "fence lifted: trying a new instance");
            }
            Admission::Admit => {}
        }
        if self.live.is_none() {
            self.rebuild(RebuildCause::Fault).map_err(|()| HANDLER_FAULT)?;
        }
        Ok(self.live.as_mut().expect("just built"))
    }

    fn rebuild(&mut self, cause: RebuildCause) -> Result<(), ()> {
        self.spec.metrics.rebuild(cause);
        let state = std::mem::take(&mut self.snapshot);
        match self.start(&self.code.clone(), Some(&state), StatePolicy::BestEffort) {
            Ok((live, snapshot)) => {
                self.live = Some(live);
                self.snapshot = snapshot;
                Ok(())
            }
            Err(e) => {
                // Keep the state for the next attempt.
                self.snapshot = state;
                let fault = match e {
                    OpenError::Fault { fault, .. } => fault,
                    other => Fault { cause: crate::metrics::FaultCause::Trap, detail: other.to_string() },
                };
                self.faulted("rebuild", fault);
                Err(())
            }
        }
    }

    /// Call into the live instance for a control event; a fault drops it.
    fn control(
        &mut self,
        during: &'static str,
        f: impl FnOnce(&mut wasmtime::Store<DeviceState>, &super::bindings::device::Guest) -> wasmtime::Result<()>,
    ) {
        let limits = self.spec.limits.clone();
        let Some(live) = self.live.as_mut() else { return };
        match live.call(limits.command_budget, limits.slice, |store, x| f(store, &x.device)) {
            Ok(()) => {
                self.resnapshot(during);
            }
            Err(fault) => self.faulted(during, fault),
        }
    }
}

impl Backend for SandboxedDevice {
    fn io_engine(&self) -> Option<Arc<IoEngine>> {
        self.engine.clone()
    }

    fn handle(&mut self, cmd: &CommandEntry) -> Response {
        let (budget, slice) = (self.spec.limits.command_budget, self.spec.limits.slice);
        let engine = self.engine.clone();
        let mut cdb_scratch = std::mem::take(&mut self.cdb_scratch);
        let live = match self.admit() {
            Ok(live) => live,
            Err((key, asc, ascq)) => {
                self.cdb_scratch = cdb_scratch;
                return Response::check_condition(key, asc, ascq);
            }
        };
        let io = CommandIo::new(cmd, engine);
        let (data_out_len, data_in_room) = (io.data_out_len(), io.data_in_len());
        live.store.data_mut().io = Some(io);
        let result = match live.exports.short_command.as_ref() {
            // The CDB as two words, sense through `transfer.set-sense`: no
            // list to allocate in the guest, none to free after.
            Some(_) if cmd.cdb.len() <= SHORT_CDB => {
                let (high, low) = pack_cdb(&cmd.cdb);
                live.call(budget, slice, |store, x| {
                    let short = x.short_command.as_ref().expect("matched above");
                    short.call_handle_short(store, high, low, cmd.cdb.len() as u8, data_out_len, data_in_room)
                })
                .map(|done| HandlerAnswer {
                    status: done.status,
                    sense: Vec::new(),
                    data_in_len: done.data_in_len,
                    state_changed: done.state_changed,
                })
            }
            _ => {
                cdb_scratch.clear();
                cdb_scratch.extend_from_slice(&cmd.cdb);
                let wit_cmd = types::Command { cdb: cdb_scratch, data_out_len, data_in_len: data_in_room };
                let result = live.call(budget, slice, |store, x| x.device.call_handle(store, &wit_cmd));
                cdb_scratch = wit_cmd.cdb;
                result.map(|done| HandlerAnswer {
                    status: done.status,
                    sense: done.sense,
                    data_in_len: done.data_in_len,
                    state_changed: done.state_changed,
                })
            }
        };
        self.cdb_scratch = cdb_scratch;
        // (`faulted` below is what drops an instance; the call does not.)
        let live = self.live.as_mut().expect("admitted above");
        let mut io = live.store.data_mut().io.take();
        match result {
            Ok(mut done) => {
                if self.fence.has_history() {
                    self.fence.success(Instant::now());
                }
                if done.sense.is_empty()
                    && let Some(io) = io.as_mut()
                {
                    done.sense = io.take_sense();
                }
                let moved = io.as_ref().is_some_and(|io| io.moved_data_in());
                let (response, corrected) =
                    Response::from_handler(done.status, done.sense, done.data_in_len, moved, data_in_room);
                if let Some(what) = corrected {
                    self.spec.metrics.sanitized();
                    if let Verdict::Log { suppressed } = self.host_log.admit(Instant::now()) {
                        tracing::warn!(device = %self.spec.name, opcode = cmd.cdb[0], what, suppressed, "handler completion corrected");
                    }
                }
                if done.state_changed {
                    self.resnapshot("save");
                }
                response.with_data_out_taken(io.map_or(0, |io| io.data_out_taken()))
            }
            Err(fault) => {
                self.faulted("handle", fault);
                Response::check_condition(HANDLER_FAULT.0, HANDLER_FAULT.1, HANDLER_FAULT.2)
            }
        }
    }

    fn task_management(&mut self, tmr: &TmrEntry) {
        let kind = match tmr.kind {
            TmrKind::AbortTask => types::TaskManagementFunction::AbortTask,
            TmrKind::AbortTaskSet => types::TaskManagementFunction::AbortTaskSet,
            TmrKind::ClearAca => types::TaskManagementFunction::ClearAca,
            TmrKind::ClearTaskSet => types::TaskManagementFunction::ClearTaskSet,
            TmrKind::LunReset => types::TaskManagementFunction::LunReset,
            TmrKind::TargetWarmReset => types::TaskManagementFunction::TargetWarmReset,
            TmrKind::TargetColdReset => types::TaskManagementFunction::TargetColdReset,
            TmrKind::LunResetPr => types::TaskManagementFunction::LunResetPr,
            TmrKind::Unknown(_) => types::TaskManagementFunction::Unknown,
        };
        self.control("task-management", |store, device| device.call_task_management(store, kind));
    }

    fn resized(&mut self, new_size: u64) -> Result<(), BackendError> {
        if let Some(b) = &self.spec.backing {
            b.resize(new_size).map_err(|e| BackendError::Refused(format!("resizing the backing file: {e}")))?;
        }
        self.events.seq += 1;
        self.events.resize = Some((new_size, self.events.seq));
        // A fault here drops the instance; its successor hears the resize
        // (it is newer than any snapshot) and opens on the resized store.
        self.control("resized", |store, device| device.call_resized(store, new_size));
        Ok(())
    }

    fn write_cache_changed(&mut self, enabled: bool) {
        self.events.seq += 1;
        self.events.write_cache = Some((enabled, self.events.seq));
        self.control("write-cache-changed", |store, device| device.call_write_cache_changed(store, enabled));
    }

    fn reload(&mut self, request: ReloadRequest) -> Result<crate::device::ReloadOutcome, BackendError> {
        let started = Instant::now();
        let refuse = |e: OpenError| BackendError::Refused(e.to_string());
        // The freshest state: the live instance's, else the last snapshot.
        let state = match self.live.take() {
            Some(mut live) => {
                let state = self.save(&mut live);
                self.live = Some(live);
                match state {
                    Ok(s) => s,
                    Err(fault) => {
                        self.faulted("save", fault.clone());
                        return Err(BackendError::Refused(format!(
                            "the serving instance faulted saving its state: {fault}"
                        )));
                    }
                }
            }
            None => std::mem::take(&mut self.snapshot),
        };
        let state_bytes = state.bytes.len();
        let carried = match request.state {
            StatePolicy::Discard => None,
            _ => Some(&state),
        };
        let (live, snapshot) = match self.start(&request.code, carried, request.state) {
            Ok(started) => started,
            Err(e) => {
                if self.live.is_none() {
                    self.snapshot = state;
                }
                self.spec.metrics.reload_failed();
                return Err(refuse(e));
            }
        };
        // The old instance is not closed: the device is not going away, its
        // state lives on in the new one, and a close would flush the store
        // (milliseconds of fsync inside the pause). Its memory is unmapped
        // off the device thread.
        if let Some(old) = self.live.replace(live) {
            let _ = std::thread::Builder::new().name("drop-instance".into()).spawn(move || drop(old));
        }
        self.snapshot = snapshot;
        self.code = request.code;
        self.fence.reset();
        self.spec.metrics.set_fenced(false);
        let pause = started.elapsed();
        self.spec.metrics.reloaded(pause);
        Ok(crate::device::ReloadOutcome { pause, state_bytes, digest: self.code.digest().to_owned() })
    }

    fn change_medium(&mut self, change: MediumChange) -> Result<(), BackendError> {
        if !self.code.takes_media() {
            return Err(BackendError::Unsupported("this handler takes no removable medium"));
        }
        match change {
            MediumChange::Load(medium) => {
                if let Some(old) = &self.medium {
                    return Err(BackendError::Refused(format!("the drive already holds {}", old.barcode)));
                }
                self.medium = Some(medium.clone());
                let Some(mut live) = self.live.take() else {
                    // The next instance hears of it when it is built.
                    return Ok(());
                };
                match self.announce_medium(&mut live, &medium) {
                    Ok(Ok(())) => {
                        self.live = Some(live);
                        self.resnapshot("loaded");
                        Ok(())
                    }
                    Ok(Err(msg)) => {
                        self.live = Some(live);
                        self.medium = None;
                        Err(BackendError::Refused(format!("the drive refused {}: {msg}", medium.barcode)))
                    }
                    Err(fault) => {
                        // The medium stays: it is in the drive, and the
                        // rebuilt instance hears of it.
                        self.faulted("loaded", fault);
                        Ok(())
                    }
                }
            }
            MediumChange::Eject => {
                if self.medium.is_none() || self.removal_allowed()? {
                    self.change_medium(MediumChange::Unload)
                } else {
                    Err(BackendError::Refused(
                        "the initiator prevents medium removal (PREVENT ALLOW MEDIUM REMOVAL); force the eject to \
                         take the medium anyway"
                            .into(),
                    ))
                }
            }
            MediumChange::Unload => {
                if self.medium.take().is_none() {
                    return Ok(());
                }
                // Revoke first: whatever the handler does next, the image
                // is out of its reach.
                let Some(live) = self.live.as_mut() else { return Ok(()) };
                live.store.data_mut().unload_medium();
                let limits = self.spec.limits.clone();
                let result = live.call(limits.command_budget, limits.slice, |store, x| match &x.removable {
                    Some(removable) => removable.call_unloaded(store),
                    None => Ok(()),
                });
                match result {
                    Ok(()) => self.resnapshot("unloaded"),
                    Err(fault) => self.faulted("unloaded", fault),
                }
                Ok(())
            }
        }
    }

    fn elements_changed(&mut self, addresses: &[u16]) {
        let limits = self.spec.limits.clone();
        let Some(live) = self.live.as_mut() else { return };
        let result = live.call(limits.command_budget, limits.slice, |store, x| match &x.library_events {
            Some(events) => events.call_elements_changed(store, addresses),
            None => Ok(()),
        });
        match result {
            Ok(()) => self.resnapshot("elements-changed"),
            Err(fault) => self.faulted("elements-changed", fault),
        }
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        self.fence.reset();
        self.spec.metrics.set_fenced(false);
        if self.live.is_none() {
            self.rebuild(RebuildCause::Reset)
                .map_err(|()| BackendError::Refused("the new instance faulted; see the log".into()))?;
        }
        Ok(())
    }

    fn close(&mut self) {
        let limits = self.spec.limits.clone();
        if let Some(mut live) = self.live.take()
            && let Err(fault) = live.call(limits.open_budget, limits.slice, |store, x| x.device.call_close(store))
        {
            tracing::warn!(device = %self.spec.name, %fault, "handler faulted in close");
        }
        if let Some(b) = &self.spec.backing
            && let Err(e) = b.flush()
        {
            tracing::error!(device = %self.spec.name, error = %e, "flushing backing file failed");
        }
    }
}

/// The longest CDB `short-command.handle-short` carries (every fixed-length CDB).
const SHORT_CDB: usize = 16;

/// What either form of `handle` answered.
struct HandlerAnswer {
    status: u8,
    sense: Vec<u8>,
    data_in_len: u32,
    state_changed: bool,
}

/// A CDB of at most [`SHORT_CDB`] bytes as `handle-short`'s two big-endian
/// words (bytes 0-7, then 8-15; zero past the CDB's end).
fn pack_cdb(cdb: &[u8]) -> (u64, u64) {
    let mut bytes = [0u8; SHORT_CDB];
    bytes[..cdb.len()].copy_from_slice(cdb);
    let (high, low) = bytes.split_at(8);
    (u64::from_be_bytes(high.try_into().expect("8 bytes")), u64::from_be_bytes(low.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::pack_cdb;

    #[test]
    fn a_short_cdb_packs_into_two_big_endian_words_zero_padded() {
        assert_eq!(pack_cdb(&[0x28, 1, 2, 3, 4, 5, 6, 7, 8, 9]), (0x2801_0203_0405_0607, 0x0809_0000_0000_0000));
        assert_eq!(pack_cdb(&[0; 6]), (0, 0));
        let sixteen: Vec<u8> = (0x80..0x90).collect();
        assert_eq!(pack_cdb(&sixteen), (0x8081_8283_8485_8687, 0x8889_8a8b_8c8d_8e8f));
    }
}
