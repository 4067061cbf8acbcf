//! One handler instance: its wasm `Store` and the loaded exports, and the
//! one way to call into it — [`Instance::call`], which gives the call its
//! CPU budget and slice, keeps the device thread's scheduling in order and
//! turns any failure into a classified [`Fault`].

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{config_help, device, library_events, removable, removal, short_command, state};
use super::guest_text::{MAX_GUEST_TEXT, sanitize};
use super::host::DeviceState;
use super::{EPOCH_TICK, HandlerCode, sched, wasi};
use crate::metrics::FaultCause;

/// Why a call into a handler failed; the instance is unusable afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({detail})", cause.name().replace('_', " "))]
pub struct Fault {
    /// The class of failure.
    pub cause: FaultCause,
    /// What wasmtime or the host said, bounded and escaped.
    pub detail: String,
}

/// The exports of a live instance (only `device` is required).
pub(super) struct Exports {
    pub device: device::Guest,
    /// The optional `state` export.
    pub state: Option<state::Guest>,
    /// The `removable` export of drives with removable media.
    pub removable: Option<removable::Guest>,
    /// The `removal` export (0.2.2) of drives whose initiator can lock the
    /// medium in.
    pub removal: Option<removal::Guest>,
    /// The `library-events` export of changers.
    pub library_events: Option<library_events::Guest>,
    /// The `config-help` export (0.2.3): the handler's config keys.
    pub config_help: Option<config_help::Guest>,
    /// The `short-command` export (0.2.4): `handle` for CDBs of at most
    /// 16 bytes without the guest allocating.
    pub short_command: Option<short_command::Guest>,
}

/// A live instance of a handler component.
pub(super) struct Instance {
    pub store: Store<DeviceState>,
    pub exports: Exports,
}

/// Epoch ticks in `d`, at least one.
pub(super) fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

impl Instance {
    /// Instantiate `code` into a fresh store holding `data`. Instantiation
    /// runs guest initialisers, so it gets `budget` like any call.
    pub fn new(code: &HandlerCode, data: DeviceState, budget: Duration, slice: Duration) -> Result<Self, Fault> {
        let mut store = Store::new(code.runtime.engine(), data);
        store.limiter(|s| s.limiter());
        store.epoch_deadline_callback(|mut cx| {
            let now = Instant::now();
            let clock = &mut cx.data_mut().clock;
            if now >= clock.deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            let first_overrun = !clock.overran;
            clock.overran = true;
            match sched::fairness() {
                sched::Fairness::Demote if first_overrun => clock.demoted = sched::demote(),
                sched::Fairness::Demote => {}
                sched::Fairness::Throttle => sched::throttle(clock.slice.min(clock.deadline - now)),
            }
            let slice_ticks = clock.slice_ticks;
            if first_overrun {
                cx.data().metrics.cpu_demotion();
            }
            Ok(UpdateDeadline::Continue(slice_ticks))
        });
        arm(&mut store, budget, slice);
        let instantiated = code.pre.instantiate(&mut store);
        disarm(&mut store);
        let instance = instantiated.map_err(|e| classify(&e, &store))?;
        let indices = &code.exports;
        let device = indices.device.load(&mut store, &instance).map_err(|e| classify(&e, &store))?;
        macro_rules! optional {
            ($field:ident) => {
                match &indices.$field {
                    Some(i) => Some(i.load(&mut store, &instance).map_err(|e| classify(&e, &store))?),
                    None => None,
                }
            };
        }
        let exports = Exports {
            device,
            state: optional!(state),
            removable: optional!(removable),
            removal: optional!(removal),
            library_events: optional!(library_events),
            config_help: optional!(config_help),
            short_command: optional!(short_command),
        };
        Ok(Self { store, exports })
    }

    /// Run `f` against the instance with `budget` of wall-clock time, of which
    /// each `slice` past the first runs deprioritised.
    pub fn call<R>(
        &mut self,
        budget: Duration,
        slice: Duration,
        f: impl FnOnce(&mut Store<DeviceState>, &Exports) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        arm(&mut self.store, budget, slice);
        let result = f(&mut self.store, &self.exports);
        disarm(&mut self.store);
        result.map_err(|e| classify(&e, &self.store))
    }
}

fn arm(store: &mut Store<DeviceState>, budget: Duration, slice: Duration) {
    let data = store.data_mut();
    data.cap.denied = None;
    data.clock.deadline = Instant::now() + budget;
    data.clock.slice = slice;
    data.clock.slice_ticks = ticks(slice);
    data.clock.overran = false;
    data.clock.demoted = None;
    let first = data.clock.slice_ticks.min(ticks(budget));
    store.set_epoch_deadline(first);
}

fn disarm(store: &mut Store<DeviceState>) {
    if let Some(saved) = store.data_mut().clock.demoted.take()
        && let Err(e) = sched::restore(saved)
    {
        tracing::error!(device = %store.data().device, error = %e, "could not restore the device thread's scheduling");
    }
}

/// Name the cause of a failed call.
pub(super) fn classify(error: &wasmtime::Error, store: &Store<DeviceState>) -> Fault {
    let detail = sanitize(&format!("{error:#}"), MAX_GUEST_TEXT).into_owned();
    let cause = if store.data().cap.denied.is_some() {
        FaultCause::MemoryCap
    } else {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => FaultCause::CpuBudget,
            Some(_) => FaultCause::Trap,
            None if is_forbidden(error) => FaultCause::Forbidden,
            // Anything else a host function raised (a bad resource handle,
            // a refused grow) is the guest's doing too.
            None => FaultCause::Trap,
        }
    };
    Fault { cause, detail }
}

fn is_forbidden(error: &wasmtime::Error) -> bool {
    let text = format!("{error:#}");
    error.downcast_ref::<wasmtime_wasi::I32Exit>().is_some()
        || error.downcast_ref::<wasmtime::component::ResourceTableError>().is_some()
        || text.contains(wasi::WAIT_REFUSED)
        || text.contains(wasi::UNPROVIDED)
        || text.contains("exceeds limit")
}
