//! `tcmu-wasm bench-neighbour`: what a hostile device costs the device next
//! to it. The whole process is pinned to one CPU, so the two devices share
//! a core; a well-behaved file-handler device is measured alone (quiet) and
//! then while a neighbour served by the `hostile` fixture misbehaves on
//! every command it gets (each case in turn). The goal for every case: the
//! host stays up, nothing hangs, and the well-behaved device keeps at least
//! 0.9 of its quiet throughput. The neighbour's commands are paced at one
//! per millisecond at most, so what is measured is its handler, not the
//! simulated kernel submitting for it in a tight loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::{BenchOptions, Pattern};
use crate::backing::BackingFile;
use crate::device::Backend;
use crate::metrics::DeviceMetrics;
use crate::sandbox::{DeviceSpec, HandlerCode, Limits, SandboxedDevice};
use crate::sim::{SimConfig, SimDevice};

/// The misbehaviours measured, as `hostile` config strings.
pub const CASES: &[&str] =
    &["spin", "spin-ms=2000", "sleep", "poll", "oom", "every:trap", "pollables", "log-flood", "escape"];

/// One case's figures.
#[derive(Debug, Clone, Serialize)]
pub struct NeighbourCase {
    /// The hostile config.
    pub misdeed: String,
    /// The well-behaved device's IOPS meanwhile.
    pub iops: f64,
    /// `iops` / quiet IOPS.
    pub ratio: f64,
    /// Commands the neighbour got answered (it never hangs).
    pub neighbour_commands: u64,
    /// Its faults, fenced state and CPU demotions at the end.
    pub neighbour_faults: u64,
    /// Whether it ended fenced.
    pub neighbour_fenced: bool,
    /// Calls of it that overran their CPU slice.
    pub neighbour_demotions: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct NeighbourReport {
    /// The CPU both devices ran on.
    pub cpu: usize,
    /// IOPS of the well-behaved device alone (mean of a run before and after).
    pub quiet_iops: f64,
    /// Each case.
    pub cases: Vec<NeighbourCase>,
}

/// Run every case in `cases` for `seconds` each.
pub fn run(
    file: Arc<HandlerCode>,
    hostile: Arc<HandlerCode>,
    cases: &[String],
    seconds: f64,
    dir: &std::path::Path,
) -> anyhow::Result<NeighbourReport> {
    let cpu = pin_to_one_cpu()?;
    let opts = BenchOptions {
        size: 64 << 20,
        pattern: Pattern::Randread,
        block_size: 4096,
        duration: Duration::from_secs_f64(seconds),
        iodepth: 8,
        config: "serial=quiet0".into(),
        dir: dir.to_owned(),
        io: crate::aio::IoSettings::default(),
        backing: None,
        direct: false,
        native: super::NativeHandler::File,
    };
    let before = super::run(Some(file.clone()), &opts)?.iops;
    let mut results = Vec::new();
    for misdeed in cases {
        results.push(one_case(&file, &hostile, misdeed, &opts, dir)?);
    }
    let after = super::run(Some(file.clone()), &opts)?.iops;
    let quiet = (before + after) / 2.0;
    for r in &mut results {
        r.ratio = r.iops / quiet;
    }
    Ok(NeighbourReport { cpu, quiet_iops: quiet, cases: results })
}

fn one_case(
    file: &Arc<HandlerCode>,
    hostile: &Arc<HandlerCode>,
    misdeed: &str,
    opts: &BenchOptions,
    dir: &std::path::Path,
) -> anyhow::Result<NeighbourCase> {
    let scratch = tempfile::Builder::new().prefix("tcmu-wasm-neighbour").tempfile_in(dir)?;
    let backing = Arc::new(BackingFile::open(scratch.path(), 1 << 20, false)?);
    let metrics = Arc::new(DeviceMetrics::default());
    // Short budgets, so the misbehaviour repeats often within a run.
    let limits =
        Limits { command_budget: Duration::from_secs(1), open_budget: Duration::from_secs(2), ..Limits::default() };
    let limits = if misdeed.starts_with("spin-ms") {
        Limits { command_budget: Duration::from_secs(10), ..limits }
    } else {
        limits
    };
    let mut spec = DeviceSpec::new("hostile0", misdeed, Some(backing), limits);
    spec.metrics = metrics.clone();
    let code = hostile.clone();
    let mut neighbour = SimDevice::start_with_metrics(SimConfig::default(), "hostile0", metrics.clone(), move || {
        Ok(Box::new(SandboxedDevice::open(code, spec)?) as Box<dyn Backend>)
    })?;
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let read10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];
    let iops = std::thread::scope(|scope| -> anyhow::Result<f64> {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if neighbour.execute(&read10, &[], 4096).is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                // Up to a thousand commands a second: the neighbour's
                // handler is measured, not the simulator running its kernel
                // side in a tight loop (a fenced device answers in
                // microseconds).
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let result = super::run(Some(file.clone()), opts);
        stop.store(true, Ordering::Relaxed);
        Ok(result?.iops)
    })?;
    neighbour.stop()?;
    let s = metrics.snapshot();
    Ok(NeighbourCase {
        misdeed: misdeed.to_owned(),
        iops,
        ratio: 0.0,
        neighbour_commands: answered.load(Ordering::Relaxed),
        neighbour_faults: s.faults,
        neighbour_fenced: s.fenced,
        neighbour_demotions: s.cpu_demotions,
    })
}

/// Pin the calling thread (and so every thread it starts) to one CPU it
/// may run on; returns that CPU.
fn pin_to_one_cpu() -> anyhow::Result<usize> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0))?;
    let cpu = (0..CpuSet::count()).find(|&c| allowed.is_set(c).unwrap_or(false)).unwrap_or(0);
    let mut one = CpuSet::new();
    one.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &one)?;
    Ok(cpu)
}

impl std::fmt::Display for NeighbourReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "both devices on CPU {}; well-behaved device alone: {:.0} IOPS (4 KiB randread, qd 8)",
            self.cpu, self.quiet_iops
        )?;
        writeln!(
            f,
            "{:<14} {:>10} {:>7} {:>10} {:>7} {:>7} {:>10}",
            "NEIGHBOUR", "IOPS", "RATIO", "ANSWERED", "FAULTS", "FENCED", "DEMOTIONS"
        )?;
        for c in &self.cases {
            writeln!(
                f,
                "{:<14} {:>10.0} {:>7.3} {:>10} {:>7} {:>7} {:>10}",
                c.misdeed,
                c.iops,
                c.ratio,
                c.neighbour_commands,
                c.neighbour_faults,
                c.neighbour_fenced,
                c.neighbour_demotions
            )?;
        }
        Ok(())
    }
}
