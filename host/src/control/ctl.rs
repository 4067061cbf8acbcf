//! `tcmu-wasm ctl`: the control socket's client — building requests and
//! printing answers for people (tables) or programs (`--json`).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::api::{DeviceStatus, HandlersReport, Op, ReloadReport, Response, StatusReport};
use super::config::{DEFAULT_SOCKET, ServeConfig};

/// How long `ctl` waits for an answer: adding a device compiles its handler
/// and waits for the kernel, a reload waits for a command boundary.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// The socket to talk to: `--socket`, else `$TCMU_WASM_SOCKET`, else the
/// `[control] socket` of `--config`, else the default.
pub fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(s) = socket {
        return Ok(s.to_owned());
    }
    if let Some(s) = std::env::var_os("TCMU_WASM_SOCKET") {
        return Ok(s.into());
    }
    if let Some(path) = config {
        let cfg = ServeConfig::load(path)?;
        anyhow::ensure!(cfg.control.enabled(), "{} turns the control socket off", path.display());
        return Ok(cfg.control.socket);
    }
    Ok(PathBuf::from(DEFAULT_SOCKET))
}

/// A `[[device]]` table (or its bare keys) as the JSON the socket takes.
pub fn device_table(text: &str) -> anyhow::Result<serde_json::Value> {
    let doc: toml::Table = text.parse().context("parsing the device table as TOML")?;
    let table = match doc.get("device") {
        Some(toml::Value::Array(tables)) => {
            anyhow::ensure!(tables.len() == 1, "give one [[device]] table, not {}", tables.len());
            tables[0].clone()
        }
        Some(toml::Value::Table(t)) => toml::Value::Table(t.clone()),
        _ => toml::Value::Table(doc),
    };
    Ok(serde_json::to_value(table)?)
}

/// Send `op` and return the result, or the daemon's error as an error.
pub fn call(socket: &Path, op: Op) -> anyhow::Result<serde_json::Value> {
    let response: Response = super::socket::request(socket, op, ANSWER_TIMEOUT)?;
    match (response.ok, response.result, response.error) {
        (true, Some(result), _) => Ok(result),
        (true, None, _) => Ok(serde_json::Value::Null),
        (false, _, Some(e)) => {
            anyhow::bail!("{} ({})", e.message, serde_json::to_value(e.kind)?.as_str().unwrap_or(""))
        }
        (false, _, None) => anyhow::bail!("the daemon refused without a reason"),
    }
}

fn micros(us: Option<f64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1000.0 => format!("{us:.0}us"),
        Some(us) if us < 1e6 => format!("{:.1}ms", us / 1e3),
        Some(us) => format!("{:.1}s", us / 1e6),
    }
}

/// The `status` table.
pub fn format_status(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:<12} {:<8} {:>10} {:>7} {:>6} {:>8} {:>5} {:>8} {:>8}",
        "DEVICE", "HANDLER", "DIGEST", "STATE", "COMMANDS", "ERRORS", "FAULTS", "REBUILDS", "INFL", "P50", "P99"
    );
    for d in &report.devices {
        let m = &d.metrics;
        let digest = d.digest.get(..12).unwrap_or(&d.digest);
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:<12} {:<8} {:>10} {:>7} {:>6} {:>8} {:>5} {:>8} {:>8}",
            d.name,
            d.handler,
            if digest.is_empty() { "-" } else { digest },
            d.state,
            m.commands,
            m.errors,
            m.faults,
            m.rebuilds,
            m.in_flight,
            micros(m.latency_p50_us),
            micros(m.latency_p99_us)
        );
    }
    for d in report.devices.iter().filter(|d| d.reason.is_some()) {
        let _ = writeln!(out, "{}: {}", d.name, d.reason.as_deref().unwrap_or(""));
    }
    out
}

/// One device in detail (`status DEVICE`).
pub fn format_device(d: &DeviceStatus) -> String {
    let m = &d.metrics;
    let mut out = format_status(&StatusReport { instance_id: String::new(), devices: vec![d.clone()] });
    let _ = writeln!(out, "  code      {} ({})", d.wasm.display(), d.digest);
    let _ = writeln!(out, "  type      {}, {} bytes, export {}, serial {}", d.device_type, d.size, d.export, d.serial);
    if let Some(medium) = &d.medium {
        let access = if medium.recordable { "recordable" } else { "read-only" };
        let _ = writeln!(out, "  medium    {} ({access})", medium.image.display());
    }
    let classes: Vec<String> = m.commands_by_class.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let _ = writeln!(out, "  commands  {}", classes.join(", "));
    let keys: Vec<String> = m.errors_by_sense_key.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "  errors    {} (other status {})",
        if keys.is_empty() { "none".into() } else { keys.join(", ") },
        m.other_status
    );
    let faults: Vec<String> =
        m.faults_by_cause.iter().filter(|(_, n)| *n > 0).map(|(c, n)| format!("{c} {n}")).collect();
    let _ = writeln!(
        out,
        "  faults    {}; fenced {} ({} times); cpu demotions {}",
        if faults.is_empty() { "none".into() } else { faults.join(", ") },
        m.fenced,
        m.fences,
        m.cpu_demotions
    );
    let _ = writeln!(
        out,
        "  reloads   {} ({} refused), last pause {}us, rollback {}",
        m.reloads,
        m.reload_failures,
        m.last_reload_pause_us,
        if d.can_roll_back { "possible" } else { "none" }
    );
    let _ = writeln!(
        out,
        "  data      {} bytes in, {} bytes out; {} invalid entries, {} TMRs, {} corrected completions, {} log lines dropped",
        m.bytes_in, m.bytes_out, m.invalid_entries, m.tmrs, m.sanitized, m.log_lines_suppressed
    );
    out
}

/// The `handlers` listing.
pub fn format_handlers(report: &HandlersReport) -> String {
    let mut out = String::new();
    for h in &report.handlers {
        let digest = h.digest.as_deref().map(|d| &d[..12]).unwrap_or("-");
        let users = if h.devices.is_empty() { String::new() } else { format!("  [{}]", h.devices.join(", ")) };
        let _ = writeln!(
            out,
            "{:<12} {:<8} {:<12} {}  ({}){users}",
            h.name,
            h.device_type,
            digest,
            h.description,
            h.wasm.display()
        );
    }
    let dirs: Vec<String> = report.search_path.iter().map(|d| d.display().to_string()).collect();
    let _ = writeln!(out, "search path: {}", dirs.join(":"));
    out
}

/// The `library status` listing: one line per element, like `mtx status`.
pub fn format_libraries(libraries: &[super::libraries::LibraryStatus]) -> String {
    let mut out = String::new();
    for l in libraries {
        let _ = writeln!(out, "library {} (changer {}, cartridges in {})", l.name, l.changer, l.directory.display());
        for e in &l.elements {
            if e.kind == "picker" {
                continue;
            }
            let what = match (&e.barcode, e.source) {
                (Some(b), Some(src)) if e.kind == "drive" => format!("{b} (from {src:#06x})"),
                (Some(b), _) => b.clone(),
                (None, _) => "empty".into(),
            };
            let wp = if e.write_protected { " [write-protected]" } else { "" };
            let device = e.device.as_deref().map(|d| format!(" [{d}]")).unwrap_or_default();
            let _ = writeln!(out, "  {:<9} {:>3}  {:#06x}  {what}{wp}{device}", e.kind, e.number, e.address);
        }
    }
    out
}

/// The `reload` results; the second value says whether all succeeded.
pub fn format_reload(report: &ReloadReport) -> (String, bool) {
    let mut out = String::new();
    if report.results.is_empty() {
        out.push_str("nothing to reload (no handler changed)\n");
    }
    for r in &report.results {
        match &r.error {
            None => {
                let _ = writeln!(
                    out,
                    "{}: reloaded to {} (paused {}us, {} bytes of state carried over)",
                    r.device,
                    &r.digest[..12.min(r.digest.len())],
                    r.pause_us.unwrap_or(0),
                    r.state_bytes.unwrap_or(0)
                );
            }
            Some(e) => {
                let _ = writeln!(out, "{}: NOT reloaded, still {}: {e}", r.device, &r.digest[..12.min(r.digest.len())]);
            }
        }
    }
    (out, report.results.iter().all(|r| r.ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_tables_in_every_spelling() {
        let array = device_table("[[device]]\nname = \"d\"\nsize = \"1M\"\n").unwrap();
        let table = device_table("[device]\nname = \"d\"\nsize = \"1M\"\n").unwrap();
        let bare = device_table("name = \"d\"\nsize = \"1M\"\n").unwrap();
        assert_eq!(array, table);
        assert_eq!(table, bare);
        assert_eq!(bare["name"], "d");
        let err = device_table("[[device]]\nname = \"a\"\n[[device]]\nname = \"b\"\n").unwrap_err();
        assert!(err.to_string().contains("one [[device]]"), "{err}");
        assert!(device_table("name = ").is_err());
    }

    #[test]
    fn latencies_read_well() {
        assert_eq!(micros(None), "-");
        assert_eq!(micros(Some(42.0)), "42us");
        assert_eq!(micros(Some(4200.0)), "4.2ms");
        assert_eq!(micros(Some(4.2e6)), "4.2s");
    }
}
