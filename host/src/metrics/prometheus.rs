//! The Prometheus text exposition format (version 0.0.4) of every device's
//! metrics. Written by hand: it is a few lines per family, and the only
//! label values are device and handler names, which the config restricts
//! to letters, digits, `-`, `_` and `.` (escaped anyway).

use std::fmt::Write;

use super::{CommandClass, DeviceMetrics, FaultCause, RebuildCause, SENSE_KEY_NAMES};
use std::sync::atomic::Ordering;

/// One device as the exporter sees it.
pub struct Labelled<'a> {
    /// Device name.
    pub device: &'a str,
    /// Handler name.
    pub handler: &'a str,
    /// Its metrics.
    pub metrics: &'a DeviceMetrics,
}

/// A family with one sample per device: name, type, help, getter.
type Simple = (&'static str, &'static str, &'static str, fn(&DeviceMetrics) -> u64);

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Family<'w> {
    out: &'w mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP tcmu_wasm_{name} {help}");
        let _ = writeln!(self.out, "# TYPE tcmu_wasm_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, extra: &str, value: impl std::fmt::Display) {
        let sep = if extra.is_empty() { "" } else { "," };
        let _ = writeln!(self.out, "tcmu_wasm_{name}{{{labels}{sep}{extra}}} {value}");
    }
}

/// Render every device.
pub fn render(devices: &[Labelled<'_>]) -> String {
    let mut out = String::new();
    let labels: Vec<String> =
        devices.iter().map(|d| format!("device=\"{}\",handler=\"{}\"", escape(d.device), escape(d.handler))).collect();
    let mut f = Family { out: &mut out };

    f.header("commands_total", "counter", "SCSI commands completed, by class of operation code.");
    for (d, l) in devices.iter().zip(&labels) {
        for class in CommandClass::ALL {
            f.sample(
                "commands_total",
                l,
                &format!("class=\"{}\"", class.name()),
                load(&d.metrics.commands[class as usize]),
            );
        }
    }
    f.header("check_conditions_total", "counter", "Completions with CHECK CONDITION, by sense key.");
    for (d, l) in devices.iter().zip(&labels) {
        for (key, name) in SENSE_KEY_NAMES.iter().enumerate() {
            let n = load(&d.metrics.sense_keys[key]);
            if n > 0 {
                f.sample("check_conditions_total", l, &format!("sense_key=\"{name}\""), n);
            }
        }
    }
    let simple: [Simple; 12] = [
        (
            "other_status_total",
            "counter",
            "Completions with BUSY, RESERVATION CONFLICT or another non-GOOD status.",
            |m| load(&m.other_status),
        ),
        ("data_in_bytes_total", "counter", "Bytes of data-in sent to initiators.", |m| load(&m.bytes_in)),
        ("data_out_bytes_total", "counter", "Bytes of data-out taken from initiators.", |m| load(&m.bytes_out)),
        ("in_flight", "gauge", "Commands being served now.", |m| load(&m.in_flight)),
        ("invalid_entries_total", "counter", "Malformed ring entries failed before reaching the handler.", |m| {
            load(&m.invalid_entries)
        }),
        ("tmrs_total", "counter", "Task management functions.", |m| load(&m.tmrs)),
        (
            "sanitized_completions_total",
            "counter",
            "Handler completions the host corrected (bad status, missing sense).",
            |m| load(&m.sanitized),
        ),
        ("fenced", "gauge", "1 while the device is fenced after repeated faults.", |m| u64::from(m.is_fenced())),
        ("fences_total", "counter", "Times the device was fenced.", |m| load(&m.fences)),
        ("reloads_total", "counter", "Hot reloads applied.", |m| load(&m.reloads)),
        ("reload_failures_total", "counter", "Hot reloads refused (the old code kept serving).", |m| {
            load(&m.reload_failures)
        }),
        ("log_lines_suppressed_total", "counter", "Handler log lines dropped by the rate limit.", |m| {
            load(&m.log_suppressed)
        }),
    ];
    for (name, kind, help, get) in simple {
        f.header(name, kind, help);
        for (d, l) in devices.iter().zip(&labels) {
            f.sample(name, l, "", get(d.metrics));
        }
    }
    f.header("faults_total", "counter", "Handler faults, by cause.");
    for (d, l) in devices.iter().zip(&labels) {
        for cause in FaultCause::ALL {
            f.sample(
                "faults_total",
                l,
                &format!("cause=\"{}\"", cause.name()),
                load(&d.metrics.faults[cause as usize]),
            );
        }
    }
    f.header("rebuilds_total", "counter", "Handler instances rebuilt, by cause.");
    for (d, l) in devices.iter().zip(&labels) {
        for cause in RebuildCause::ALL {
            f.sample(
                "rebuilds_total",
                l,
                &format!("cause=\"{}\"", cause.name()),
                load(&d.metrics.rebuilds[cause as usize]),
            );
        }
    }
    f.header(
        "cpu_demotions_total",
        "counter",
        "Handler calls that overran their CPU slice (the device thread was deprioritised).",
    );
    for (d, l) in devices.iter().zip(&labels) {
        f.sample("cpu_demotions_total", l, "", load(&d.metrics.cpu_demotions));
    }
    f.header("command_seconds", "histogram", "Service time of a command in the daemon.");
    for (d, l) in devices.iter().zip(&labels) {
        let h = &d.metrics.latency;
        for (le, count) in h.cumulative_octaves() {
            f.sample("command_seconds_bucket", l, &format!("le=\"{le:e}\""), count);
        }
        f.sample("command_seconds_bucket", l, "le=\"+Inf\"", h.count());
        let _ = writeln!(f.out, "tcmu_wasm_command_seconds_sum{{{l}}} {}", h.sum_us() as f64 / 1e6);
        let _ = writeln!(f.out, "tcmu_wasm_command_seconds_count{{{l}}} {}", h.count());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_families_with_labels() {
        let m = DeviceMetrics::default();
        m.command_started();
        m.command_finished(0x28, 0, &[], 4096, 0, Duration::from_micros(50));
        m.fault(FaultCause::CpuBudget);
        let text = render(&[Labelled { device: "disk0", handler: "file", metrics: &m }]);
        assert!(text.contains("# TYPE tcmu_wasm_commands_total counter"), "{text}");
        assert!(
            text.contains("tcmu_wasm_commands_total{device=\"disk0\",handler=\"file\",class=\"read\"} 1"),
            "{text}"
        );
        assert!(text.contains("tcmu_wasm_faults_total{device=\"disk0\",handler=\"file\",cause=\"cpu_budget\"} 1"));
        assert!(text.contains("tcmu_wasm_data_in_bytes_total{device=\"disk0\",handler=\"file\"} 4096"));
        assert!(text.contains("tcmu_wasm_command_seconds_count{device=\"disk0\",handler=\"file\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(series.ends_with('}') && value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
