//! `tcmu-wasm check`: run the conformance suite for a handler's device
//! type against the handler, served through the simulated kernel and the
//! real ring, device loop and sandbox.

use std::sync::Arc;

use tcmu_conformance::{CheckOutcome, DiskParams, ScsiTarget};

use crate::backing::BackingFile;
use crate::sandbox::{DeviceSpec, HandlerCode, Limits, SandboxedDevice};
use crate::sim::{SimConfig, SimDevice};
use tcmu_guest_sdk::DeviceType;

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The handler's config string.
    pub config: String,
    /// Size of the temporary backing store.
    pub size: u64,
    /// Sandbox limits.
    pub limits: Limits,
}

impl ScsiTarget for SimDevice {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<tcmu_conformance::Response, String> {
        let done = SimDevice::execute(self, cdb, data_out, data_in_len).map_err(|e| e.to_string())?;
        Ok(tcmu_conformance::Response { status: done.status, sense: done.sense, data_in: done.data_in })
    }

    fn resize(&mut self, new_size: u64) -> Result<(), String> {
        SimDevice::resize(self, new_size).map_err(|e| format!("{e:#}"))
    }
}

/// Serve `code` from a fresh temporary backing file and run its suite.
/// Returns one outcome per check.
pub fn run(code: Arc<HandlerCode>, opts: &CheckOptions) -> anyhow::Result<Vec<CheckOutcome>> {
    let dir = tempfile::tempdir()?;
    let read_only = config_is_read_only(&opts.config);
    let path = dir.path().join("check.img");
    if read_only {
        // A read-only grant needs an existing file of the full size.
        std::fs::File::create(&path)?.set_len(opts.size)?;
    }
    let backing = Arc::new(BackingFile::open(&path, opts.size, read_only)?);
    let kind = code.info().device_type;
    let (config, limits) = (opts.config.clone(), opts.limits.clone());
    let sim = SimConfig { data_blocks: 4096, ..SimConfig::default() };
    let mut dev = SimDevice::start(sim, "check0", move || {
        Ok(Box::new(SandboxedDevice::open(code, DeviceSpec::new("check0", &config, Some(backing), limits))?)
            as Box<dyn crate::device::Backend>)
    })?;
    let outcomes = match kind {
        DeviceType::Disk => {
            let params = DiskParams { size_bytes: opts.size, block_size: block_size(&opts.config), read_only };
            tcmu_conformance::disk_suite(&mut dev, &params)
        }
        other => anyhow::bail!("no conformance suite for {other:?} handlers yet"),
    };
    dev.stop()?;
    Ok(outcomes)
}

/// The `ro` flag of a handler config string (`key=value` items separated
/// by `,` or `;`), which the suite needs to know to expect DATA PROTECT.
fn config_is_read_only(config: &str) -> bool {
    config_items(config).any(|(k, v)| k == "ro" && matches!(v, None | Some("1" | "true" | "yes")))
}

fn block_size(config: &str) -> u32 {
    config_items(config)
        .find_map(|(k, v)| (k == "block_size").then(|| v.and_then(|v| v.parse().ok())).flatten())
        .unwrap_or(512)
}

fn config_items(config: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    config.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(|item| match item.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (item, None),
    })
}
