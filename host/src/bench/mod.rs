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

use crate::backing::{BackingFile, OpenFlags};
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
    /// An existing file or block device to serve instead of a temporary
    /// file (write patterns overwrite it; read patterns open it read-only).
    pub backing: Option<PathBuf>,
    /// Open the backing with O_DIRECT (`direct = true`).
    pub direct: bool,
    /// Which handler logic the native baseline links in.
    pub native: NativeHandler,
}

/// The handlers with a native build for `--native` / `--compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NativeHandler {
    /// `file`: the SBC disk over the backing.
    #[default]
    File,
    /// `null`: answers READ/WRITE without I/O.
    Null,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// "wasm", "native" or "fio".
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
    /// CPU time of the device thread (ring, device loop, sandbox, handler,
    /// host I/O calls) per completed command, microseconds; `None` for fio.
    pub device_cpu_us_per_cmd: Option<f64>,
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
    let scratch;
    let (path, read_only) = match &opts.backing {
        Some(path) => (path.as_path(), !opts.pattern.is_write()),
        None => {
            scratch = scratch_file(opts)?;
            (scratch.path(), false)
        }
    };
    let flags = OpenFlags { read_only, direct: opts.direct };
    let backing = Arc::new(
        BackingFile::open_with(path, opts.size, flags).with_context(|| format!("opening {}", path.display()))?,
    );

    let mode = if code.is_some() { "wasm" } else { "native" };
    let data_blocks = ((opts.block_size as u64 * opts.iodepth as u64 * 2).div_ceil(4096) as u32).max(1024);
    let sim =
        SimConfig { ring_size: 1 << 20, data_blocks, scatter: false, gather_data_in: false, ..SimConfig::default() };
    let config = opts.config.clone();
    let io = opts.io;
    let native = opts.native;
    let mut dev = SimDevice::start(sim, "bench0", move || -> anyhow::Result<Box<dyn Backend>> {
        Ok(match code {
            Some(code) => Box::new(SandboxedDevice::open(
                code,
                DeviceSpec { io, ..DeviceSpec::new("bench0", &config, Some(backing), Limits::default()) },
            )?),
            None => {
                let identity = tcmu_guest_sdk::DeviceIdentity::from_name("bench0");
                let refused = |e: String| anyhow::anyhow!("native handler refused to open: {e}");
                match native {
                    NativeHandler::File => Box::new(
                        NativeDevice::<tcmu_handler_file::FileDisk>::open(&config, &identity, Some(backing), io)
                            .map_err(refused)?,
                    ),
                    NativeHandler::Null => Box::new(
                        NativeDevice::<tcmu_handler_null::NullDisk>::open(&config, &identity, Some(backing), io)
                            .map_err(refused)?,
                    ),
                }
            }
        })
    })?;
    let device_thread = find_thread("dev-bench0");

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
    // Device-thread CPU over the measurement, and every command completed
    // in it (whenever submitted): what that CPU time paid for.
    let mut cpu_at_start = None;
    let mut completed_while_measuring = 0u64;
    loop {
        let now = Instant::now();
        if measuring_since.is_none() && now >= started + warmup {
            measuring_since = Some(now);
            cpu_at_start = device_thread.and_then(thread_cpu_ns);
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
            if measuring_since.is_some() {
                completed_while_measuring += 1;
            }
            if measuring_since.is_some_and(|m| t0 >= m) {
                hist.record(t0.elapsed().as_micros().max(1) as u64)?;
                ops += 1;
            }
        }
    }
    let seconds = measuring_since.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9);
    let cpu_at_end = device_thread.and_then(thread_cpu_ns);
    let device_cpu_us_per_cmd = match (cpu_at_start, cpu_at_end) {
        (Some(a), Some(b)) if completed_while_measuring > 0 => {
            Some(b.saturating_sub(a) as f64 / 1000.0 / completed_while_measuring as f64)
        }
        _ => None,
    };
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
        device_cpu_us_per_cmd,
    })
}

/// The id of this process's thread named `name` (`/proc/self/task/*/comm`).
fn find_thread(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        (comm.trim_end() == name).then(|| task.file_name().to_str()?.parse().ok()).flatten()
    })
}

/// Nanoseconds thread `tid` has run on a CPU (`schedstat`'s first field).
fn thread_cpu_ns(tid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// A temporary backing file of the bench's size, written once through.
fn scratch_file(opts: &BenchOptions) -> anyhow::Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new().prefix("tcmu-wasm-bench").tempfile_in(&opts.dir)?;
    prefill(file.as_file(), opts.size).context("filling the backing file")?;
    Ok(file)
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
        )?;
        if let Some(cpu) = self.device_cpu_us_per_cmd {
            let whose = if self.mode == "fio" { "fio's thread" } else { "device thread" };
            write!(f, "  {whose} {cpu:.2} us CPU/command")?;
        }
        Ok(())
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
    /// What the sandbox adds to the device thread's CPU time per command
    /// (wasm minus native), microseconds.
    pub sandbox_cpu_us_per_cmd: Option<f64>,
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
    let sandbox_cpu_us_per_cmd = wasm.device_cpu_us_per_cmd.zip(native.device_cpu_us_per_cmd).map(|(w, n)| w - n);
    Ok(Comparison { wasm, native, ratio, sandbox_cpu_us_per_cmd })
}

/// tcmu-wasm (the wasm handler through the ring) and fio, on the same
/// backing, pattern, block size and queue depth.
#[derive(Debug, Clone, Serialize)]
pub struct FioComparison {
    /// The best wasm round.
    pub wasm: BenchResult,
    /// The best fio round (io_uring engine).
    pub fio: BenchResult,
    /// wasm IOPS / fio IOPS.
    pub ratio: f64,
    /// The fio command line of the last round.
    pub fio_command: String,
}

/// Run `rounds` alternating rounds of the wasm handler and of fio (its
/// io_uring engine, `direct` as the bench's) on one backing: the given
/// one, or a temporary file both share. The best round of each counts.
pub fn compare_fio(code: Arc<HandlerCode>, opts: &BenchOptions, rounds: u32) -> anyhow::Result<FioComparison> {
    let scratch;
    let mut opts = opts.clone();
    if opts.backing.is_none() {
        scratch = scratch_file(&opts)?;
        opts.backing = Some(scratch.path().to_owned());
    }
    let (mut wasm, mut fio) = (Vec::new(), Vec::new());
    let mut fio_command = String::new();
    for _ in 0..rounds.max(1) {
        wasm.push(run(Some(code.clone()), &opts)?);
        let (result, command) = run_fio(&opts)?;
        fio.push(result);
        fio_command = command;
    }
    let best =
        |runs: Vec<BenchResult>| runs.into_iter().max_by(|a, b| a.iops.total_cmp(&b.iops)).expect("at least one round");
    let (wasm, fio) = (best(wasm), best(fio));
    let ratio = wasm.iops / fio.iops;
    Ok(FioComparison { wasm, fio, ratio, fio_command })
}

/// One fio run of `opts`' workload on `opts.backing`; the figures and the
/// command line.
pub fn run_fio(opts: &BenchOptions) -> anyhow::Result<(BenchResult, String)> {
    let path = opts.backing.as_ref().context("fio needs a backing path")?;
    let rw = match opts.pattern {
        Pattern::Read => "read",
        Pattern::Write => "write",
        Pattern::Randread => "randread",
        Pattern::Randwrite => "randwrite",
    };
    let args = vec![
        "--name=tcmu-wasm-bench".to_owned(),
        format!("--filename={}", path.display()),
        "--ioengine=io_uring".to_owned(),
        format!("--direct={}", u8::from(opts.direct)),
        format!("--rw={rw}"),
        format!("--bs={}", opts.block_size),
        format!("--iodepth={}", opts.iodepth),
        format!("--size={}", opts.size),
        "--time_based".to_owned(),
        "--ramp_time=300ms".to_owned(),
        format!("--runtime={}ms", opts.duration.as_millis().max(1)),
        "--output-format=json".to_owned(),
    ];
    let command = format!("fio {}", args.join(" "));
    let out = std::process::Command::new("fio").args(&args).output().context("running fio (apt-get install fio)")?;
    anyhow::ensure!(out.status.success(), "{command} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).context("fio's JSON output")?;
    let job = &report["jobs"][0];
    let side = &job[if opts.pattern.is_write() { "write" } else { "read" }];
    let number = |v: &serde_json::Value| v.as_f64().with_context(|| format!("fio's report lacks a figure: {v}"));
    let seconds = number(&job["job_runtime"])? / 1000.0;
    let ops = number(&side["total_ios"])? as u64;
    let percentile = |p: &str| number(&side["clat_ns"]["percentile"][p]).map(|ns| ns / 1000.0);
    let result = BenchResult {
        mode: "fio",
        rw: opts.pattern,
        bs: opts.block_size,
        iodepth: opts.iodepth,
        ops,
        seconds,
        iops: number(&side["iops"])?,
        mbps: number(&side["bw_bytes"])? / 1e6,
        p50_us: percentile("50.000000")?,
        p99_us: percentile("99.000000")?,
        // fio's own thread: its user + system CPU share of the run over the
        // I/Os it did, the counterpart of the device thread's figure (the
        // kernel's submission work, which both pay, is in it).
        device_cpu_us_per_cmd: match (job["usr_cpu"].as_f64(), job["sys_cpu"].as_f64()) {
            (Some(usr), Some(sys)) if ops > 0 => Some((usr + sys) / 100.0 * seconds * 1e6 / ops as f64),
            _ => None,
        },
    };
    Ok((result, command))
}
