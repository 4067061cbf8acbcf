//! `tcmu-wasm bench-scale`: one daemon (registry, control socket) on the
//! simulated kernel, with devices added and removed at runtime through the
//! socket. Reports the time to add and remove them, the resident memory
//! each device costs, and the socket's latency with few and with many
//! devices — none of which should grow per device as devices are added.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::control::api::Op;
use crate::control::config::{ControlSettings, DaemonSettings};
use crate::control::registry::Registry;
use crate::control::sim_platform::SimPlatform;
use crate::control::socket::{self, ControlServer};
use crate::handlers;
use crate::sandbox::Runtime;
use crate::sim::SimConfig;

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// Devices added.
    pub devices: usize,
    /// Time to add them all through the socket, seconds.
    pub add_all_s: f64,
    /// Mean time of one `add`, first tenth and last tenth of the devices (ms).
    pub add_first_ms: f64,
    /// See `add_first_ms`.
    pub add_last_ms: f64,
    /// Resident memory before any device and with all of them, MiB.
    pub rss_before_mib: f64,
    /// See `rss_before_mib`.
    pub rss_all_mib: f64,
    /// (rss_all - rss_before) / devices, KiB.
    pub rss_per_device_kib: f64,
    /// `status` round trip with one tenth of the devices and with all (p50/p99, µs).
    pub status_few_p50_us: f64,
    /// See `status_few_p50_us`.
    pub status_few_p99_us: f64,
    /// See `status_few_p50_us`.
    pub status_all_p50_us: f64,
    /// See `status_few_p50_us`.
    pub status_all_p99_us: f64,
    /// A `reset` (a round trip to one device thread) with all devices (p50/p99, µs).
    pub device_call_p50_us: f64,
    /// See `device_call_p50_us`.
    pub device_call_p99_us: f64,
    /// Commands served (one READ per device, checked GOOD).
    pub commands_ok: usize,
    /// Time to remove them all, seconds.
    pub remove_all_s: f64,
    /// Resident memory after removing them, MiB.
    pub rss_after_mib: f64,
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e6
    };
    (at(0.5), at(0.99))
}

fn time_status(socket: &std::path::Path, rounds: usize) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let answer = socket::request(socket, Op::Status { device: None }, Duration::from_secs(30))?;
        anyhow::ensure!(answer.ok, "status failed: {:?}", answer.error);
        samples.push(t.elapsed());
    }
    Ok(quantiles(samples))
}

/// Add `devices` file-handler devices of 1 MiB each, measure, remove them.
pub fn run(devices: usize, dir: &std::path::Path) -> anyhow::Result<ScaleReport> {
    anyhow::ensure!(devices >= 10, "--devices must be at least 10");
    let work = tempfile::Builder::new().prefix("tcmu-wasm-scale").tempdir_in(dir)?;
    let runtime = Runtime::new(Some(work.path().join("cache")))?;
    let platform =
        Arc::new(SimPlatform::new(SimConfig { data_blocks: 64, ring_size: 16 * 1024, ..SimConfig::default() }));
    let settings = DaemonSettings { instance_id: Some("scale".into()), ..Default::default() };
    let registry = Registry::with_handler_dirs(runtime, settings, platform.clone(), handlers::search_path());
    let sock = work.path().join("control.sock");
    let control = ControlSettings { socket: sock.clone(), group: None, allow_paths: Vec::new() };
    let _server = ControlServer::start(&control, registry.clone())?;
    // Compile and cache the handler once, outside the measurement.
    registry.load_code(&handlers::resolve("file")?)?;
    let rss_before = rss_mib();

    let tenth = devices / 10;
    let mut add_times = Vec::new();
    let mut status_few = (0.0, 0.0);
    let started = Instant::now();
    for i in 0..devices {
        let backing = work.path().join(format!("d{i}.img"));
        let table = serde_json::json!({
            "name": format!("d{i}"), "handler": "file", "size": "1M",
            "backing": backing, "export": "none",
        });
        let t = Instant::now();
        let answer = socket::request(&sock, Op::Add { device: table }, Duration::from_secs(60))?;
        anyhow::ensure!(answer.ok, "adding d{i}: {:?}", answer.error);
        add_times.push(t.elapsed());
        if i + 1 == tenth {
            status_few = time_status(&sock, 200)?;
        }
    }
    let add_all = started.elapsed();
    let rss_all = rss_mib();
    let status_all = time_status(&sock, 200)?;

    let mut calls = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let answer =
            socket::request(&sock, Op::Reset { device: format!("d{}", i % devices) }, Duration::from_secs(30))?;
        anyhow::ensure!(answer.ok, "reset: {:?}", answer.error);
        calls.push(t.elapsed());
    }
    let device_call = quantiles(calls);

    let mut commands_ok = 0;
    for i in 0..devices {
        let kernel = platform.kernel(&format!("d{i}")).expect("added");
        let read = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];
        let c = kernel.lock().unwrap().execute(&read, &[], 4096, Duration::from_secs(30))?;
        if c.status == 0 {
            commands_ok += 1;
        }
    }

    let started = Instant::now();
    for i in 0..devices {
        let answer = socket::request(&sock, Op::Remove { device: format!("d{i}") }, Duration::from_secs(60))?;
        anyhow::ensure!(answer.ok, "removing d{i}: {:?}", answer.error);
    }
    let remove_all = started.elapsed();
    // Dropped instances unmap on helper threads; let them finish.
    std::thread::sleep(Duration::from_millis(200));
    let mean_ms = |d: &[Duration]| d.iter().map(Duration::as_secs_f64).sum::<f64>() / d.len() as f64 * 1e3;
    Ok(ScaleReport {
        devices,
        add_all_s: add_all.as_secs_f64(),
        add_first_ms: mean_ms(&add_times[..tenth]),
        add_last_ms: mean_ms(&add_times[devices - tenth..]),
        rss_before_mib: rss_before,
        rss_all_mib: rss_all,
        rss_per_device_kib: (rss_all - rss_before) * 1024.0 / devices as f64,
        status_few_p50_us: status_few.0,
        status_few_p99_us: status_few.1,
        status_all_p50_us: status_all.0,
        status_all_p99_us: status_all.1,
        device_call_p50_us: device_call.0,
        device_call_p99_us: device_call.1,
        commands_ok,
        remove_all_s: remove_all.as_secs_f64(),
        rss_after_mib: rss_mib(),
    })
}

impl std::fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenth = self.devices / 10;
        writeln!(
            f,
            "{} devices added through the control socket in {:.2} s ({:.1} ms each for the first {tenth}, {:.1} ms for the last {tenth})",
            self.devices, self.add_all_s, self.add_first_ms, self.add_last_ms
        )?;
        writeln!(
            f,
            "resident memory: {:.1} MiB before, {:.1} MiB with all ({:.0} KiB per device), {:.1} MiB after removing them",
            self.rss_before_mib, self.rss_all_mib, self.rss_per_device_kib, self.rss_after_mib
        )?;
        writeln!(
            f,
            "status round trip: p50 {:.0} us / p99 {:.0} us with {tenth} devices, p50 {:.0} us / p99 {:.0} us with {}",
            self.status_few_p50_us,
            self.status_few_p99_us,
            self.status_all_p50_us,
            self.status_all_p99_us,
            self.devices
        )?;
        writeln!(
            f,
            "a call to one device thread (reset): p50 {:.0} us, p99 {:.0} us",
            self.device_call_p50_us, self.device_call_p99_us
        )?;
        write!(
            f,
            "{} of {} devices answered a READ; removing all took {:.2} s",
            self.commands_ok, self.devices, self.remove_all_s
        )
    }
}
