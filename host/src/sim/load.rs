//! A verifying load for the simulated kernel: random 4 KiB writes and reads
//! kept `iodepth` deep, every read checked against a shadow copy of what
//! was written. Used by the hot-reload tests and benchmark, which must show
//! that swapping code under load fails no command and corrupts no byte.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{SimError, SimKernel, rw16};

/// Bytes per command.
pub const BLOCK: u32 = 4096;

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Device size in bytes (a multiple of [`BLOCK`]); the device must start zeroed.
    pub size: u64,
    /// Commands kept in flight.
    pub iodepth: u32,
    /// Share of writes, 0..=1.
    pub write_share: f64,
    /// Seed of the access pattern.
    pub seed: u64,
}

/// What the load saw.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Commands completed.
    pub commands: u64,
    /// Commands that did not end GOOD.
    pub failed: u64,
    /// Reads whose data differed from what was written.
    pub data_errors: u64,
    /// The first failures, for the message.
    pub first_failures: Vec<String>,
    /// Every command's latency (submit to completion).
    pub latencies: Vec<Duration>,
}

struct Pending {
    block: u64,
    write: Option<Vec<u8>>,
    sent: Instant,
}

/// Run the load on `kernel` until `stop` is set and everything in flight
/// has completed. 512-byte logical blocks are assumed (the file handler's
/// default).
pub fn run(kernel: &mut SimKernel, cfg: &LoadConfig, stop: &AtomicBool) -> Result<LoadReport, SimError> {
    let blocks = cfg.size / u64::from(BLOCK);
    let per_block = BLOCK / 512;
    let mut shadow: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut busy: HashSet<u64> = HashSet::new();
    let mut pending: HashMap<u16, Pending> = HashMap::new();
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let mut report = LoadReport::default();
    let note = |report: &mut LoadReport, what: String| {
        if report.first_failures.len() < 8 {
            report.first_failures.push(what);
        }
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && pending.is_empty() {
            return Ok(report);
        }
        while !stopping && pending.len() < cfg.iodepth as usize {
            let block = rng.random_range(0..blocks);
            if !busy.insert(block) {
                continue; // one command per block at a time: results stay checkable
            }
            let write = rng.random_bool(cfg.write_share);
            let data: Vec<u8> = if write { (0..BLOCK).map(|_| rng.random()).collect() } else { Vec::new() };
            let cdb = rw16(write, block * u64::from(per_block), per_block);
            let submitted = kernel.submit(&cdb, &data, if write { 0 } else { BLOCK });
            match submitted {
                Ok(id) => {
                    pending.insert(id, Pending { block, write: write.then_some(data), sent: Instant::now() });
                }
                Err(SimError::RingFull | SimError::DataAreaFull) => {
                    busy.remove(&block);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        for c in kernel.wait(Duration::from_millis(100))? {
            let Some(p) = pending.remove(&c.cmd_id) else { continue };
            busy.remove(&p.block);
            report.commands += 1;
            report.latencies.push(p.sent.elapsed());
            if c.status != 0 {
                report.failed += 1;
                note(&mut report, format!("block {}: status {:#x} sense {:02x?}", p.block, c.status, c.sense));
                continue;
            }
            match p.write {
                Some(data) => {
                    shadow.insert(p.block, data);
                }
                None => {
                    let expected = shadow.get(&p.block);
                    let ok = match expected {
                        Some(e) => c.data_in == *e,
                        None => c.data_in.len() == BLOCK as usize && c.data_in.iter().all(|&b| b == 0),
                    };
                    if !ok {
                        report.data_errors += 1;
                        note(&mut report, format!("block {}: read back other data", p.block));
                    }
                }
            }
        }
    }
}
