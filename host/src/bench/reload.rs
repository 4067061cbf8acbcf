//! `tcmu-wasm bench-reload`: hot reload under load. A file-handler device
//! in the simulator serves a verifying random read/write load while its
//! code is swapped back and forth between two builds; the report counts
//! failed commands and data errors (both must be 0) and gives the pause
//! each swap held the device for.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backing::BackingFile;
use crate::device::{Backend, ReloadRequest, StatePolicy};
use crate::sandbox::{DeviceSpec, HandlerCode, Limits, SandboxedDevice};
use crate::sim::load::{self, LoadConfig};
use crate::sim::{SimConfig, SimDevice};

/// What to run.
#[derive(Debug, Clone)]
pub struct ReloadBenchOptions {
    /// Reloads, alternating between the two builds.
    pub reloads: u32,
    /// Commands in flight.
    pub iodepth: u32,
    /// Device size.
    pub size: u64,
    /// Time between reloads.
    pub interval: Duration,
    /// Directory for the backing file.
    pub dir: std::path::PathBuf,
}

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadBenchReport {
    /// Reloads that swapped the code.
    pub reloads: u32,
    /// Reloads refused.
    pub reload_failures: u32,
    /// Commands completed.
    pub commands: u64,
    /// Commands that did not end GOOD.
    pub failed_commands: u64,
    /// Reads that returned other data than was written.
    pub data_errors: u64,
    /// How long a swap held the device: median, 99th percentile, worst (µs).
    pub pause_p50_us: f64,
    /// See `pause_p50_us`.
    pub pause_p99_us: f64,
    /// See `pause_p50_us`.
    pub pause_max_us: f64,
    /// Command latency (submit to completion) p99 and worst over the run (µs).
    pub command_p99_us: f64,
    /// See `command_p99_us`.
    pub command_max_us: f64,
    /// Digest serving at the end (an even number of reloads ends on build A).
    pub final_digest: String,
    /// The first failures, if any.
    pub failures: Vec<String>,
}

fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

/// Swap `a` and `b` under load.
pub fn run(a: Arc<HandlerCode>, b: Arc<HandlerCode>, opts: &ReloadBenchOptions) -> anyhow::Result<ReloadBenchReport> {
    anyhow::ensure!(
        opts.size >= 1 << 20 && opts.size.is_multiple_of(u64::from(load::BLOCK)),
        "--size must be at least 1M, in 4K"
    );
    let file = tempfile::Builder::new().prefix("tcmu-wasm-reload").tempfile_in(&opts.dir)?;
    let backing = Arc::new(BackingFile::open(file.path(), opts.size, false)?);
    let spec = DeviceSpec::new("reload0", "serial=reload0", Some(backing), Limits::default());
    let data_blocks = (opts.iodepth * 2 * load::BLOCK / 4096).max(256);
    let sim = SimConfig { data_blocks, ..SimConfig::default() };
    let code = a.clone();
    let mut dev =
        SimDevice::start(sim, "reload0", move || Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>))?;
    let stop = AtomicBool::new(false);
    let cfg = LoadConfig { size: opts.size, iodepth: opts.iodepth, write_share: 0.5, seed: 7 };
    let (kernel, handle) = dev.split();
    let mut pauses = Vec::new();
    let mut refused = Vec::new();
    let mut final_digest = a.digest().to_owned();
    let load_report = std::thread::scope(|scope| {
        let loader = scope.spawn(|| load::run(kernel, &cfg, &stop));
        // Let the load reach its depth first.
        std::thread::sleep(opts.interval);
        for i in 0..opts.reloads {
            let code = if i % 2 == 0 { b.clone() } else { a.clone() };
            let started = Instant::now();
            match handle.reload(ReloadRequest { code, state: StatePolicy::Require }, Duration::from_secs(60)) {
                Ok(done) => {
                    pauses.push(done.pause);
                    final_digest = done.digest;
                }
                Err(e) => refused.push(format!("reload {i} after {:?}: {e}", started.elapsed())),
            }
            std::thread::sleep(opts.interval);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        loader.join().expect("load thread")
    })?;
    dev.stop()?;
    pauses.sort();
    let mut latencies = load_report.latencies.clone();
    latencies.sort();
    let mut failures = refused.clone();
    failures.extend(load_report.first_failures.iter().cloned());
    Ok(ReloadBenchReport {
        reloads: pauses.len() as u32,
        reload_failures: refused.len() as u32,
        commands: load_report.commands,
        failed_commands: load_report.failed,
        data_errors: load_report.data_errors,
        pause_p50_us: quantile_us(&pauses, 0.5),
        pause_p99_us: quantile_us(&pauses, 0.99),
        pause_max_us: quantile_us(&pauses, 1.0),
        command_p99_us: quantile_us(&latencies, 0.99),
        command_max_us: quantile_us(&latencies, 1.0),
        final_digest,
        failures,
    })
}

impl std::fmt::Display for ReloadBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} reloads ({} refused) under load: {} commands, {} failed, {} data errors",
            self.reloads, self.reload_failures, self.commands, self.failed_commands, self.data_errors
        )?;
        writeln!(
            f,
            "pause per reload: p50 {:.0} us, p99 {:.0} us, max {:.0} us",
            self.pause_p50_us, self.pause_p99_us, self.pause_max_us
        )?;
        write!(
            f,
            "command latency over the run: p99 {:.0} us, max {:.0} us",
            self.command_p99_us, self.command_max_us
        )?;
        for failure in &self.failures {
            write!(f, "\n  {failure}")?;
        }
        Ok(())
    }
}
