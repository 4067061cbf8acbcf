//! One device served by a sandboxed handler instance.

use std::sync::Arc;

use anyhow::Context;
use wasmtime::{Store, Trap};

use super::bindings::{DeviceHandler, types};
use super::host::DeviceState;
use super::{HandlerCode, Limits, wt};
use crate::backing::BackingFile;
use crate::device::{Backend, CommandIo};
use crate::ring::{CommandEntry, Response, TmrEntry, TmrKind};

/// Sense key HARDWARE ERROR, ASC/ASCQ INTERNAL TARGET FAILURE: what the
/// initiator sees when the handler faulted.
const HANDLER_FAULT: (u8, u8, u8) = (0x04, 0x44, 0x00);

struct Live {
    store: Store<DeviceState>,
    handler: DeviceHandler,
}

/// A device whose commands run in its own wasm instance.
pub struct SandboxedDevice {
    name: Arc<str>,
    code: Arc<HandlerCode>,
    config: String,
    backing: Option<Arc<BackingFile>>,
    limits: Limits,
    live: Option<Live>,
    faults: u64,
}

impl SandboxedDevice {
    /// Instantiate `code` for device `name` and open it with the operator's
    /// `config` and `backing` store. Fails if the handler refuses to open.
    pub fn open(
        name: &str,
        code: Arc<HandlerCode>,
        config: &str,
        backing: Option<Arc<BackingFile>>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let mut dev =
            Self { name: name.into(), code, config: config.to_owned(), backing, limits, live: None, faults: 0 };
        dev.live = Some(dev.instantiate()?);
        Ok(dev)
    }

    /// Handler faults (traps, budget overruns, memory cap hits) so far.
    pub fn faults(&self) -> u64 {
        self.faults
    }

    fn instantiate(&self) -> anyhow::Result<Live> {
        let engine = self.code.runtime.engine();
        let state = DeviceState::new(self.name.clone(), self.backing.clone(), self.limits.memory_bytes);
        let mut store = Store::new(engine, state);
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(Limits::ticks(self.limits.open_budget));
        let handler = self.code.pre.instantiate(&mut store).map_err(wt).context("instantiating handler")?;
        let grant = store.data_mut().grant_store().map_err(wt)?;
        let opened = handler
            .tcmu_handler_device()
            .call_open(&mut store, &self.config, grant)
            .map_err(|e| anyhow::anyhow!("handler trapped in open: {}", fault_cause(&e, &store)))?;
        opened.map_err(|msg| anyhow::anyhow!("handler refused to open: {msg}"))?;
        Ok(Live { store, handler })
    }

    /// Log a fault, drop the poisoned instance and build a fresh one.
    fn recover(&mut self, what: &str, error: &wasmtime::Error) {
        self.faults += 1;
        let cause = self.live.as_ref().map(|l| fault_cause(error, &l.store)).unwrap_or_else(|| error.to_string());
        tracing::error!(device = %self.name, handler = %self.code.info().name, during = what, cause = %cause, "handler fault; rebuilding instance");
        self.live = None;
        self.rebuild();
    }

    fn rebuild(&mut self) {
        match self.instantiate() {
            Ok(live) => self.live = Some(live),
            Err(e) => {
                tracing::error!(device = %self.name, error = %format!("{e:#}"), "could not rebuild handler instance")
            }
        }
    }

    /// The live instance, rebuilding it first if an earlier rebuild failed.
    fn live(&mut self) -> Option<&mut Live> {
        if self.live.is_none() {
            self.rebuild();
        }
        self.live.as_mut()
    }
}

/// Name the cause of a guest fault for the log.
fn fault_cause(error: &wasmtime::Error, store: &Store<DeviceState>) -> String {
    if let Some(wanted) = store.data().cap.denied {
        return format!("memory cap exceeded ({wanted} bytes requested)");
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => "CPU budget exceeded".to_string(),
        Some(Trap::UnreachableCodeReached) => "guest aborted (panic or unreachable)".to_string(),
        Some(trap) => format!("trap: {trap}"),
        None => format!("{error:?}"),
    }
}

impl Backend for SandboxedDevice {
    fn handle(&mut self, cmd: &CommandEntry) -> Response {
        let budget = Limits::ticks(self.limits.command_budget);
        let Some(live) = self.live() else {
            return Response::check_condition(HANDLER_FAULT.0, HANDLER_FAULT.1, HANDLER_FAULT.2);
        };
        let io = CommandIo::new(cmd);
        let wit_cmd =
            types::Command { cdb: cmd.cdb.clone(), data_out_len: io.data_out_len(), data_in_len: io.data_in_len() };
        let data_in_room = io.data_in_len();
        live.store.data_mut().io = Some(io);
        live.store.set_epoch_deadline(budget);
        let result = live.handler.tcmu_handler_device().call_handle(&mut live.store, &wit_cmd);
        let io = live.store.data_mut().io.take();
        match result {
            Ok(done) => {
                let moved = io.is_some_and(|io| io.moved_data_in());
                Response::from_handler(done.status, done.sense, done.data_in_len, moved, data_in_room)
            }
            Err(e) => {
                self.recover("handle", &e);
                Response::check_condition(HANDLER_FAULT.0, HANDLER_FAULT.1, HANDLER_FAULT.2)
            }
        }
    }

    fn task_management(&mut self, tmr: &TmrEntry) {
        let budget = Limits::ticks(self.limits.command_budget);
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
        let Some(live) = self.live() else { return };
        live.store.set_epoch_deadline(budget);
        if let Err(e) = live.handler.tcmu_handler_device().call_task_management(&mut live.store, kind) {
            self.recover("task-management", &e);
        }
    }

    fn resized(&mut self, new_size: u64) -> Result<(), String> {
        if let Some(b) = &self.backing {
            b.resize(new_size).map_err(|e| format!("resizing the backing file: {e}"))?;
        }
        let budget = Limits::ticks(self.limits.command_budget);
        let Some(live) = self.live() else { return Ok(()) };
        live.store.set_epoch_deadline(budget);
        if let Err(e) = live.handler.tcmu_handler_device().call_resized(&mut live.store, new_size) {
            // The rebuilt instance opens on the resized store, so the new
            // size still takes effect.
            self.recover("resized", &e);
        }
        Ok(())
    }

    fn write_cache_changed(&mut self, enabled: bool) {
        let budget = Limits::ticks(self.limits.command_budget);
        let Some(live) = self.live() else { return };
        live.store.set_epoch_deadline(budget);
        if let Err(e) = live.handler.tcmu_handler_device().call_write_cache_changed(&mut live.store, enabled) {
            self.recover("write-cache-changed", &e);
        }
    }

    fn close(&mut self) {
        let budget = Limits::ticks(self.limits.open_budget);
        if let Some(mut live) = self.live.take() {
            live.store.set_epoch_deadline(budget);
            if let Err(e) = live.handler.tcmu_handler_device().call_close(&mut live.store) {
                tracing::warn!(device = %self.name, cause = %fault_cause(&e, &live.store), "handler faulted in close");
            }
        }
        if let Some(b) = &self.backing
            && let Err(e) = b.flush()
        {
            tracing::error!(device = %self.name, error = %e, "flushing backing file failed");
        }
    }
}
