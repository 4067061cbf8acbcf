//! `tcmu-wasm bench`: drive a handler through the full ring path (the
//! simulated kernel, ring, device loop and backing file) and measure IOPS,
//! throughput and latency. `--native` serves the same file-handler logic
//! linked into the host, so the sandbox tax is measured in one run.

pub mod neighbour;
pub mod reload;
pub mod scale;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::backing::BackingFile;
use crate::device::Backend;
use crate::native::NativeDevice;
use crate::sandbox::{DeviceSpec, HandlerCode, Limits, SandboxedDevice};
use crate::sim::{SimConfig, SimDevice, SimError};

/// Access pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Sequential reads.
    Read,
    /// Sequential writes.
    Write,
    /// Uniformly random reads.
    Randread,
    /// Uniformly random writes.
    Randwrite,
}

impl Pattern {
    fn is_write(self) -> bool {
        matches!(self, Pattern::Write | Pattern::Randwrite)
    }
    fn is_random(self) -> bool {
        matches!(self, Pattern::Randread | Pattern::Randwrite)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Device size in bytes.
    pub size: u64,
    /// Access pattern.
    pub pattern: Pattern,
    /// Bytes per command (multiple of 512).
    pub block_size: u32,
    /// How long to measure.
    pub duration: Duration,
    /// Commands kept in flight.
    pub iodepth: u32,
    /// Handler config string.
    pub config: String,
    /// Directory for the temporary backing file (page-cached).
    pub dir: PathBuf,
    /// How the store's transfers run (both sides alike).
    pub io: crate::aio::IoSettings,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// "wasm" or "native".
    pub mode: &'static str,
    /// Access pattern.
    pub rw: Pattern,
    /// Bytes per command.
    pub bs: u32,
    /// Commands in flight.
    pub iodepth: u32,
    /// Commands completed.
    pub ops: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// Commands per second.
    pub iops: f64,
    /// Megabytes (10^6) per second.
    pub mbps: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
}

const SECTOR: u32 = 512;

/// Run the benchmark; `code` None means the native baseline.
pub fn run(code: Option<Arc<HandlerCode>>, opts: &BenchOptions) -> anyhow::Result<BenchResult> {
    anyhow::ensure!(
        opts.block_size >= SECTOR && opts.block_size.is_multiple_of(SECTOR),
        "--bs must be a multiple of 512"
    );
    anyhow::ensure!(opts.size >= opts.block_size as u64, "--size must hold at least one block");
    anyhow::ensure!(opts.iodepth >= 1, "--iodepth must be at least 1");
    let file = tempfile::Builder::new().prefix("tcmu-wasm-bench").tempfile_in(&opts.dir)?;
    prefill(file.as_file(), opts.size).context("filling the backing file")?;
    let backing = Arc::new(BackingFile::open(file.path(), opts.size, false)?);

    let mode = if code.is_some() { "wasm" } else { "native" };
    let data_blocks = ((opts.block_size as u64 * opts.iodepth as u64 * 2).div_ceil(4096) as u32).max(1024);
    let sim =
        SimConfig { ring_size: 1 << 20, data_blocks, scatter: false, gather_data_in: false, ..SimConfig::default() };
    let config = opts.config.clone();
    let io = opts.io;
    let mut dev = SimDevice::start(sim, "bench0", move || -> anyhow::Result<Box<dyn Backend>> {
        Ok(match code {
            Some(code) => Box::new(SandboxedDevice::open(
                code,
                DeviceSpec { io, ..DeviceSpec::new("bench0", &config, Some(backing), Limits::default()) },
            )?),
            None => Box::new(
                NativeDevice::<tcmu_handler_file::FileDisk>::open(
                    &config,
                    &tcmu_guest_sdk::DeviceIdentity::from_name("bench0"),
                    Some(backing),
                    io,
                )
                .map_err(|e| anyhow::anyhow!("native handler refused to open: {e}"))?,
            ),
        })
    })?;

    let blocks_per_cmd = (opts.block_size / SECTOR) as u64;
    let slots = opts.size / opts.block_size as u64;
    let payload = vec![0x5au8; if opts.pattern.is_write() { opts.block_size as usize } else { 0 }];
    let mut rng = SmallRng::seed_from_u64(42);
    let mut next_slot = 0u64;
    let mut inflight: HashMap<u16, Instant> = HashMap::new();
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;

    // Warm-up then measure; commands in flight at the switch count for
    // neither the histogram nor the totals of the wrong phase.
    let warmup = Duration::from_millis(300).min(opts.duration / 4);
    let started = Instant::now();
    let mut measuring_since: Option<Instant> = None;
    let mut ops = 0u64;
    loop {
        let now = Instant::now();
        if measuring_since.is_none() && now >= started + warmup {
            measuring_since = Some(now);
        }
        let done_submitting = measuring_since.is_some_and(|t| now >= t + opts.duration);
        if done_submitting && inflight.is_empty() {
            break;
        }
        while !done_submitting && inflight.len() < opts.iodepth as usize {
            let slot = if opts.pattern.is_random() {
                rng.random_range(0..slots)
            } else {
                let s = next_slot;
                next_slot = (next_slot + 1) % slots;
                s
            };
            let cdb = crate::sim::rw16(opts.pattern.is_write(), slot * blocks_per_cmd, blocks_per_cmd as u32);
            let data_in = if opts.pattern.is_write() { 0 } else { opts.block_size };
            match dev.kernel.submit(&cdb, &payload, data_in) {
                Ok(id) => {
                    inflight.insert(id, Instant::now());
                }
                Err(SimError::RingFull | SimError::DataAreaFull) => break,
                Err(e) => return Err(e.into()),
            }
        }
        for c in dev.kernel.wait(Duration::from_millis(100))? {
            let Some(t0) = inflight.remove(&c.cmd_id) else { continue };
            anyhow::ensure!(c.status == 0, "command failed with status {:#x}, sense {:02x?}", c.status, c.sense);
            if measuring_since.is_some_and(|m| t0 >= m) {
                hist.record(t0.elapsed().as_micros().max(1) as u64)?;
                ops += 1;
            }
        }
    }
    let seconds = measuring_since.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9);
    dev.stop()?;
    Ok(BenchResult {
        mode,
        rw: opts.pattern,
        bs: opts.block_size,
        iodepth: opts.iodepth,
        ops,
        seconds,
        iops: ops as f64 / seconds,
        mbps: ops as f64 * opts.block_size as f64 / seconds / 1e6,
        p50_us: hist.value_at_quantile(0.5) as f64,
        p99_us: hist.value_at_quantile(0.99) as f64,
    })
}

/// Write the whole file once so reads come from the page cache, not holes.
fn prefill(file: &std::fs::File, size: u64) -> std::io::Result<()> {
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + 3) as u8).collect();
    let mut w = std::io::BufWriter::new(file);
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    w.flush()
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<6} {:<9} bs={:<7} qd={:<3} {:>10.0} IOPS {:>9.1} MB/s  p50 {:>7.1} us  p99 {:>7.1} us  ({} ops in {:.2} s)",
            self.mode,
            format!("{:?}", self.rw).to_lowercase(),
            self.bs,
            self.iodepth,
            self.iops,
            self.mbps,
            self.p50_us,
            self.p99_us,
            self.ops,
            self.seconds
        )
    }
}

/// The wasm handler and the native baseline, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The best wasm round.
    pub wasm: BenchResult,
    /// The best native round.
    pub native: BenchResult,
    /// wasm IOPS / native IOPS.
    pub ratio: f64,
}

/// Run `rounds` alternating rounds of wasm and native; the best of each counts.
pub fn compare(code: Arc<HandlerCode>, opts: &BenchOptions, rounds: u32) -> anyhow::Result<Comparison> {
    let (mut wasm, mut native) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        wasm.push(run(Some(code.clone()), opts)?);
        native.push(run(None, opts)?);
    }
    let best =
        |runs: Vec<BenchResult>| runs.into_iter().max_by(|a, b| a.iops.total_cmp(&b.iops)).expect("at least one round");
    let (wasm, native) = (best(wasm), best(native));
    let ratio = wasm.iops / native.iops;
    Ok(Comparison { wasm, native, ratio })
}
