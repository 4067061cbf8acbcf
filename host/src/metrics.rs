//! Per-device metrics: counters and a latency histogram the device thread
//! updates with relaxed atomics (no lock on the data path) and the control
//! plane reads at any time without involving the device thread — so a stuck
//! device still reports, and reading never slows it down.
//!
//! One [`DeviceMetrics`] lives as long as the device's registry entry, across
//! restarts of its thread, hot reloads and rebuilds of its instance. The
//! control socket serves a [`MetricsSnapshot`]; [`prometheus`] renders the
//! same figures in Prometheus' text format.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

pub mod prometheus;

/// What kind of command, by operation code. The host does not interpret
/// commands; this split only makes the counters readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandClass {
    /// READ(6/10/12/16).
    Read,
    /// WRITE, WRITE AND VERIFY, WRITE SAME, COMPARE AND WRITE.
    Write,
    /// SYNCHRONIZE CACHE.
    Flush,
    /// UNMAP.
    Unmap,
    /// Everything else (INQUIRY, MODE SENSE, TEST UNIT READY, tape motion...).
    Other,
}

impl CommandClass {
    /// All classes, in counter order.
    pub const ALL: [CommandClass; 5] =
        [CommandClass::Read, CommandClass::Write, CommandClass::Flush, CommandClass::Unmap, CommandClass::Other];

    /// The class of a CDB's operation code.
    pub fn of(opcode: u8) -> Self {
        match opcode {
            0x08 | 0x28 | 0xa8 | 0x88 => CommandClass::Read,
            0x0a | 0x2a | 0xaa | 0x8a | 0x2e | 0xae | 0x8e | 0x41 | 0x93 | 0x89 => CommandClass::Write,
            0x35 | 0x91 => CommandClass::Flush,
            0x42 => CommandClass::Unmap,
            _ => CommandClass::Other,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            CommandClass::Read => "read",
            CommandClass::Write => "write",
            CommandClass::Flush => "flush",
            CommandClass::Unmap => "unmap",
            CommandClass::Other => "other",
        }
    }
}

/// Why a handler instance faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultCause {
    /// A trap: panic, `unreachable`, out-of-bounds access, stack overflow.
    Trap,
    /// The call ran past its CPU budget.
    CpuBudget,
    /// A memory grow past the device's cap.
    MemoryCap,
    /// A call the sandbox refuses: blocking, an import it does not provide,
    /// exit, too many resources.
    Forbidden,
}

impl FaultCause {
    /// All causes, in counter order.
    pub const ALL: [FaultCause; 4] =
        [FaultCause::Trap, FaultCause::CpuBudget, FaultCause::MemoryCap, FaultCause::Forbidden];

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            FaultCause::Trap => "trap",
            FaultCause::CpuBudget => "cpu_budget",
            FaultCause::MemoryCap => "memory_cap",
            FaultCause::Forbidden => "forbidden",
        }
    }
}

/// Why a new instance was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildCause {
    /// The previous instance faulted.
    Fault,
    /// The operator reset the device (`ctl reset`), lifting a fence.
    Reset,
}

impl RebuildCause {
    /// All causes, in counter order.
    pub const ALL: [RebuildCause; 2] = [RebuildCause::Fault, RebuildCause::Reset];

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            RebuildCause::Fault => "fault",
            RebuildCause::Reset => "reset",
        }
    }
}

/// Sub-buckets per power of two (from 4 µs on: each octave split in four
/// equal parts, so a bucket is at most 25% wide).
const SUB_BUCKETS: usize = 4;
/// Octaves covered: up to 2^28 µs ≈ 268 s; longer lands in one overflow
/// bucket past them.
const OCTAVES: usize = 27;
const BUCKETS: usize = SUB_BUCKETS * OCTAVES + 1;

/// A lock-free latency histogram in microseconds, log-linear buckets
/// (about ±10% resolution), for percentiles an operator reads and
/// Prometheus buckets. `bench` keeps using an exact histogram.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    /// Upper bound (exclusive) of bucket `i`, in µs.
    fn upper_bound_us(i: usize) -> f64 {
        if i < SUB_BUCKETS {
            return (i + 1) as f64;
        }
        let (octave, sub) = (i / SUB_BUCKETS + 1, i % SUB_BUCKETS);
        ((SUB_BUCKETS + sub + 1) << (octave - 2)) as f64
    }

    /// Integer arithmetic only: the device thread records every command,
    /// and under emulation floating point is slow.
    fn bucket_of(us: u64) -> usize {
        if us < SUB_BUCKETS as u64 {
            return us as usize;
        }
        let octave = 63 - us.leading_zeros() as usize; // ≥ 2
        let sub = ((us >> (octave - 2)) & 3) as usize;
        (SUB_BUCKETS * (octave - 1) + sub).min(BUCKETS - 1)
    }

    /// Count one sample.
    pub fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Samples so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of all samples, µs.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0..=1) in µs: the upper bound of the bucket it falls
    /// in, so never an underestimate. `None` without samples.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::upper_bound_us(i));
            }
        }
        Some(Self::upper_bound_us(BUCKETS - 1))
    }

    /// Cumulative counts at each power of two from 1 µs (Prometheus `le`
    /// buckets, in seconds), then the total.
    pub fn cumulative_octaves(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::with_capacity(OCTAVES);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if (i + 1) % SUB_BUCKETS == 0 {
                out.push((Self::upper_bound_us(i) / 1e6, seen));
            }
        }
        out
    }
}

/// Counters of one device.
#[derive(Debug, Default)]
pub struct DeviceMetrics {
    commands: [AtomicU64; 5],
    /// CHECK CONDITION completions by sense key (0..=15).
    sense_keys: [AtomicU64; 16],
    /// Completions with a status other than GOOD and CHECK CONDITION.
    other_status: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    in_flight: AtomicU64,
    invalid_entries: AtomicU64,
    tmrs: AtomicU64,
    faults: [AtomicU64; 4],
    rebuilds: [AtomicU64; 2],
    /// Completions the host had to correct (bad status byte, CHECK
    /// CONDITION without sense).
    sanitized: AtomicU64,
    fenced: AtomicBool,
    fences: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    last_reload_pause_us: AtomicU64,
    log_suppressed: AtomicU64,
    cpu_demotions: AtomicU64,
    /// Service time: from the device thread taking the entry to its completion.
    pub latency: LatencyHistogram,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl DeviceMetrics {
    /// A command is being served.
    pub fn command_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A command finished with `status` (and `sense` when CHECK CONDITION),
    /// moving `bytes_in` to and `bytes_out` from the initiator.
    pub fn command_finished(
        &self,
        opcode: u8,
        status: u8,
        sense: &[u8],
        bytes_in: u64,
        bytes_out: u64,
        latency: Duration,
    ) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let class = CommandClass::of(opcode);
        bump(&self.commands[class as usize]);
        match status {
            0x00 => {}
            0x02 => {
                if let Some(key) = sense_key(sense) {
                    bump(&self.sense_keys[key as usize]);
                }
            }
            _ => bump(&self.other_status),
        }
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        self.latency.record(latency);
    }

    /// A malformed ring entry was failed.
    pub fn invalid_entry(&self) {
        bump(&self.invalid_entries);
    }

    /// A TMR was acknowledged.
    pub fn tmr(&self) {
        bump(&self.tmrs);
    }

    /// The handler faulted.
    pub fn fault(&self, cause: FaultCause) {
        bump(&self.faults[cause as usize]);
    }

    /// A new instance was built.
    pub fn rebuild(&self, cause: RebuildCause) {
        bump(&self.rebuilds[cause as usize]);
    }

    /// The host corrected a handler's completion.
    pub fn sanitized(&self) {
        bump(&self.sanitized);
    }

    /// The device was fenced (`true`) or the fence lifted.
    pub fn set_fenced(&self, fenced: bool) {
        if fenced && !self.fenced.swap(true, Ordering::Relaxed) {
            bump(&self.fences);
        } else if !fenced {
            self.fenced.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the device is fenced now.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Relaxed)
    }

    /// A hot reload swapped the instance after pausing the device for `pause`.
    pub fn reloaded(&self, pause: Duration) {
        bump(&self.reloads);
        self.last_reload_pause_us.store(pause.as_micros() as u64, Ordering::Relaxed);
    }

    /// A hot reload was refused; the old instance keeps serving.
    pub fn reload_failed(&self) {
        bump(&self.reload_failures);
    }

    /// Guest log lines dropped by the rate limit.
    pub fn log_suppressed(&self, lines: u64) {
        self.log_suppressed.fetch_add(lines, Ordering::Relaxed);
    }

    /// A call overran its CPU slice and the device thread was demoted.
    pub fn cpu_demotion(&self) {
        bump(&self.cpu_demotions);
    }

    /// Commands completed so far.
    pub fn commands(&self) -> u64 {
        self.commands.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Handler faults so far.
    pub fn faults(&self) -> u64 {
        self.faults.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// A consistent-enough copy of every figure.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let commands_by_class =
            CommandClass::ALL.iter().map(|c| (c.name().to_owned(), load(&self.commands[*c as usize]))).collect();
        let errors_by_sense_key = (0..16)
            .filter_map(|k| {
                let n = load(&self.sense_keys[k]);
                (n > 0).then(|| (SENSE_KEY_NAMES[k].to_owned(), n))
            })
            .collect();
        let faults_by_cause =
            FaultCause::ALL.iter().map(|c| (c.name().to_owned(), load(&self.faults[*c as usize]))).collect();
        let rebuilds_by_cause =
            RebuildCause::ALL.iter().map(|c| (c.name().to_owned(), load(&self.rebuilds[*c as usize]))).collect();
        let errors = self.sense_keys.iter().map(load).sum::<u64>() + load(&self.other_status);
        MetricsSnapshot {
            commands: self.commands(),
            commands_by_class,
            errors,
            errors_by_sense_key,
            other_status: load(&self.other_status),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            in_flight: load(&self.in_flight),
            invalid_entries: load(&self.invalid_entries),
            tmrs: load(&self.tmrs),
            faults: self.faults(),
            faults_by_cause,
            rebuilds: self.rebuilds.iter().map(load).sum(),
            rebuilds_by_cause,
            sanitized: load(&self.sanitized),
            fenced: self.is_fenced(),
            fences: load(&self.fences),
            reloads: load(&self.reloads),
            reload_failures: load(&self.reload_failures),
            last_reload_pause_us: load(&self.last_reload_pause_us),
            log_lines_suppressed: load(&self.log_suppressed),
            cpu_demotions: load(&self.cpu_demotions),
            latency_p50_us: self.latency.quantile_us(0.5),
            latency_p99_us: self.latency.quantile_us(0.99),
        }
    }
}

/// The sense key of fixed (70h/71h) or descriptor (72h/73h) sense data.
pub fn sense_key(sense: &[u8]) -> Option<u8> {
    match sense.first().map(|b| b & 0x7f) {
        Some(0x70 | 0x71) => sense.get(2).map(|b| b & 0x0f),
        Some(0x72 | 0x73) => sense.get(1).map(|b| b & 0x0f),
        _ => None,
    }
}

/// SPC sense key names, by value.
pub const SENSE_KEY_NAMES: [&str; 16] = [
    "no_sense",
    "recovered_error",
    "not_ready",
    "medium_error",
    "hardware_error",
    "illegal_request",
    "unit_attention",
    "data_protect",
    "blank_check",
    "vendor_specific",
    "copy_aborted",
    "aborted_command",
    "reserved_0c",
    "volume_overflow",
    "miscompare",
    "completed",
];

/// Every figure of one device, as the control socket reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct MetricsSnapshot {
    /// Commands completed.
    pub commands: u64,
    /// ... by [`CommandClass`] name.
    pub commands_by_class: Vec<(String, u64)>,
    /// Completions other than GOOD.
    pub errors: u64,
    /// CHECK CONDITION completions by sense key name (only keys seen).
    pub errors_by_sense_key: Vec<(String, u64)>,
    /// Completions with BUSY, RESERVATION CONFLICT, TASK SET FULL, ...
    pub other_status: u64,
    /// Bytes of data-in produced.
    pub bytes_in: u64,
    /// Bytes of data-out consumed.
    pub bytes_out: u64,
    /// Commands in the device now.
    pub in_flight: u64,
    /// Malformed ring entries failed.
    pub invalid_entries: u64,
    /// Task management functions.
    pub tmrs: u64,
    /// Handler faults.
    pub faults: u64,
    /// ... by [`FaultCause`] name.
    pub faults_by_cause: Vec<(String, u64)>,
    /// New instances built.
    pub rebuilds: u64,
    /// ... by [`RebuildCause`] name.
    pub rebuilds_by_cause: Vec<(String, u64)>,
    /// Completions the host corrected.
    pub sanitized: u64,
    /// Whether the device is fenced now.
    pub fenced: bool,
    /// Times it was fenced.
    pub fences: u64,
    /// Hot reloads done.
    pub reloads: u64,
    /// Hot reloads refused.
    pub reload_failures: u64,
    /// How long the last reload paused the device, µs.
    pub last_reload_pause_us: u64,
    /// Guest log lines dropped by the rate limit.
    pub log_lines_suppressed: u64,
    /// Calls that overran their CPU slice.
    pub cpu_demotions: u64,
    /// Median service time, µs (bucket upper bound).
    pub latency_p50_us: Option<f64>,
    /// 99th percentile service time, µs.
    pub latency_p99_us: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile_us(0.5).unwrap();
        let p99 = h.quantile_us(0.99).unwrap();
        assert!((500.0..=500.0 * 1.25).contains(&p50), "p50 {p50}");
        assert!((990.0..=990.0 * 1.25).contains(&p99), "p99 {p99}");
        // Every value lands in a bucket whose bounds hold it.
        for us in [0u64, 1, 3, 4, 5, 7, 8, 100, 1023, 1024, 1 << 20] {
            let i = LatencyHistogram::bucket_of(us);
            let lower = if i == 0 { 0.0 } else { LatencyHistogram::upper_bound_us(i - 1) };
            assert!((lower..LatencyHistogram::upper_bound_us(i)).contains(&(us as f64)), "{us} in bucket {i}");
        }
        assert_eq!(h.count(), 1000);
        assert!(LatencyHistogram::default().quantile_us(0.5).is_none());
    }

    #[test]
    fn extreme_latencies_land_in_the_end_buckets() {
        let h = LatencyHistogram::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(100_000));
        let octaves = h.cumulative_octaves();
        assert_eq!(octaves.first().unwrap().1, 1);
        assert_eq!(octaves.last().unwrap().1, 1, "the overflow bucket is past the last octave");
        assert_eq!(h.quantile_us(1.0).unwrap(), LatencyHistogram::upper_bound_us(BUCKETS - 1));
    }

    #[test]
    fn counts_by_class_and_sense_key() {
        let m = DeviceMetrics::default();
        let illegal = [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0];
        let descriptor_ua = [0x72, 0x06, 0x29, 0];
        for (opcode, status, sense) in [(0x28, 0, &[][..]), (0x2a, 0, &[]), (0xff, 2, &illegal), (0, 2, &descriptor_ua)]
        {
            m.command_started();
            m.command_finished(opcode, status, sense, 512, 0, Duration::from_micros(10));
        }
        m.command_started();
        m.command_finished(0x00, 0x08, &[], 0, 0, Duration::from_micros(10));
        let s = m.snapshot();
        assert_eq!((s.commands, s.errors, s.other_status, s.in_flight), (5, 3, 1, 0));
        assert!(s.commands_by_class.contains(&("read".into(), 1)));
        assert!(s.commands_by_class.contains(&("other".into(), 3)));
        assert_eq!(s.errors_by_sense_key, vec![("illegal_request".to_owned(), 1), ("unit_attention".to_owned(), 1)]);
        assert_eq!(s.bytes_in, 2048);
    }

    #[test]
    fn a_fence_is_counted_once_until_lifted() {
        let m = DeviceMetrics::default();
        m.set_fenced(true);
        m.set_fenced(true);
        m.set_fenced(false);
        m.set_fenced(true);
        let s = m.snapshot();
        assert_eq!((s.fenced, s.fences), (true, 2));
    }
}
