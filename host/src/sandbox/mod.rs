//! The sandbox runtime: one wasmtime [`Engine`] for the process, handler
//! components compiled once (and cached on disk by content hash), and per
//! device a [`SandboxedDevice`] — its own `Store` and long-lived instance
//! with a memory cap and a per-call CPU budget.
//!
//! Containment: a trap, CPU-budget overrun or out-of-memory inside a
//! handler fails only the command in hand (CHECK CONDITION, HARDWARE ERROR
//! / INTERNAL TARGET FAILURE 04/44/00), is logged with the device name,
//! and the instance is rebuilt from the compiled template and re-opened.
//! HARDWARE ERROR rather than BUSY: a handler bug is deterministic, and
//! BUSY would make the initiator replay the same command into it forever.

mod bindings;
mod code;
mod device;
mod host;

pub use code::HandlerCode;
pub use device::SandboxedDevice;
pub use host::StoreGrant;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use host::DeviceState;

/// How often the epoch advances; CPU budgets are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-device resource caps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a handler instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock CPU budget for one `handle` (or TMR/resize) call.
    pub command_budget: Duration,
    /// Budget for `open` and `close` (handlers may scan their store).
    pub open_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // Generous on purpose: under qemu's TCG a call runs ~20x slower
        // than native, and a budget that trips there is a false failure.
        Self { memory_bytes: 256 << 20, command_budget: Duration::from_secs(10), open_budget: Duration::from_secs(60) }
    }
}

impl Limits {
    pub(crate) fn ticks(budget: Duration) -> u64 {
        (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
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
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wt)?;
        bindings::DeviceHandler::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(wt)?;

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
