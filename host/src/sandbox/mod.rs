//! The sandbox runtime: one wasmtime [`Engine`] for the process, handler
//! components compiled once (and cached on disk by content hash), and per
//! device a [`SandboxedDevice`] — its own `Store` and long-lived instance
//! with a memory cap and per-call CPU budgets.
//!
//! Containment, whatever the handler does:
//! - a trap, a budget overrun, a denied memory grow or a forbidden call
//!   (waiting, an import the sandbox does not provide, exit) fails only the
//!   command in hand (CHECK CONDITION, HARDWARE ERROR / INTERNAL TARGET
//!   FAILURE 04/44/00) and the instance is rebuilt before the next command;
//!   HARDWARE ERROR rather than BUSY, because a handler bug is deterministic
//!   and BUSY would make the initiator replay the command into it forever;
//! - a handler that faults over and over is fenced ([`fence`]);
//! - no host function waits or allocates more than the guest's memory cap
//!   ([`host`], [`wasi`]); guest text reaching the log is bounded, escaped
//!   and rate-limited ([`guest_text`]);
//! - a call that overruns its CPU slice runs deprioritised ([`sched`]);
//! - `describe`, `open` and `close` have budgets like commands.

mod bindings;
mod code;
mod device;
pub mod fence;
pub mod guest_text;
mod host;
mod instance;
pub mod sched;
pub mod wasi;

pub use code::HandlerCode;
pub use device::{DeviceSpec, OpenError, SandboxedDevice};
pub use host::StoreGrant;
pub use instance::Fault;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use fence::FencePolicy;
use host::DeviceState;

/// The version of `tcmu:handler` this host speaks.
pub const WIT_VERSION: &str = "0.2.4";

/// The oldest `tcmu:handler` release whose components this host loads: the
/// 0.2 line only adds, so anything from 0.2.0 to [`WIT_VERSION`] links
/// (docs/wit.md, "Versions").
pub const OLDEST_WIT_VERSION: &str = "0.2.0";

/// How often the epoch advances; CPU budgets and slices are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Budget of `describe` (it should only return constants).
pub const DESCRIBE_BUDGET: Duration = Duration::from_secs(5);

/// Per-device resource caps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory (all memories and tables of the instance together) a
    /// handler instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget for one `handle` (or TMR, resize, save/restore) call.
    pub command_budget: Duration,
    /// Budget for `open` (with restoring state) and `close`: handlers may scan
    /// their store. Keep it below the kernel's event timeout.
    pub open_budget: Duration,
    /// CPU slice after which a call runs deprioritised.
    pub slice: Duration,
    /// When repeated faults fence the device.
    pub fence: FencePolicy,
    /// Guest log lines at once, and per second after that.
    pub log_burst: u32,
    /// See `log_burst`.
    pub log_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        // Generous on purpose: under qemu's TCG a call runs ~20x slower
        // than native, and a budget that trips there is a false failure.
        Self {
            memory_bytes: 256 << 20,
            command_budget: Duration::from_secs(10),
            open_budget: Duration::from_secs(20),
            slice: Duration::from_millis(20),
            fence: FencePolicy::default(),
            log_burst: 100,
            log_per_second: 20,
        }
    }
}

/// The process-wide engine, linker and code cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<DeviceState>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Build the engine and linker. `cache_dir` holds compiled components
    /// keyed by content hash; `None` compiles every time.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Component-model async bookkeeping more than doubles the cost of
        // an export call and no handler uses it.
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(wt)?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(wt)?;
        host::add_to_linker(&mut linker).map_err(wt)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        }
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)?;
        }
        // Decide how hogs are kept in check before any device runs.
        sched::fairness();
        Ok(Arc::new(Self { engine, linker, cache_dir, ticker_stop }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// wasmtime 48 has its own error type; carry its full chain into anyhow.
pub(crate) fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}
