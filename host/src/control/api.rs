//! The control socket's protocol: one JSON object per line each way.
//!
//! A request names the protocol version it speaks (`"v": 1`) and an
//! operation (`"op"`); the daemon answers every line with one line:
//!
//! ```text
//! → {"v":1,"op":"status"}
//! ← {"v":1,"ok":true,"result":{"devices":[...]}}
//! → {"v":1,"op":"reload","device":"disk0","wasm":"/srv/file.wasm"}
//! ← {"v":1,"ok":false,"error":{"kind":"failed","message":"..."}}
//! ```
//!
//! Version rule: a daemon answers requests of versions it knows and refuses
//! newer ones with `unsupported-version`; fields are only ever added within
//! a version, and clients ignore fields they do not know.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::MetricsSnapshot;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line accepted.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// One request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// The operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Every device (or one) with its state and metrics.
    Status {
        /// Only this device.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    /// Handlers on the search path and the code loaded now.
    Handlers,
    /// Create, export and serve a device: a `[[device]]` table as JSON.
    Add {
        /// The device's config (the same keys as in the config file).
        device: serde_json::Value,
    },
    /// Unexport, remove and stop a device.
    Remove {
        /// Its name.
        device: String,
    },
    /// Swap in new handler code while devices stay attached.
    Reload {
        /// Which devices.
        #[serde(flatten)]
        target: ReloadTarget,
        /// The new component; default: the handler's file again (it changed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wasm: Option<PathBuf>,
        /// Return to the code each device ran before its last reload.
        #[serde(default)]
        rollback: bool,
        /// Start the new code without the old state.
        #[serde(default)]
        discard_state: bool,
    },
    /// Lift a fence and rebuild the handler instance.
    Reset {
        /// The device.
        device: String,
    },
    /// Every device's metrics in Prometheus' text format.
    Metrics,
    /// Tape libraries: what is where.
    LibraryStatus {
        /// Only this library.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        library: Option<String>,
    },
    /// Create a blank cartridge image in a library's directory.
    LibraryCreate {
        /// The library.
        library: String,
        /// Its barcode (and image name).
        barcode: String,
        /// Capacity in bytes; default: the library's `cartridge_size`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        /// Put it in a mail slot too.
        #[serde(default)]
        import: bool,
    },
    /// Put a cartridge into a mail slot.
    LibraryImport {
        /// The library.
        library: String,
        /// The cartridge.
        barcode: String,
        /// The mail slot, from 1; default: the first empty one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_slot: Option<u16>,
    },
    /// Put an image into a drive outside a library (ejecting what was in).
    MediaInsert {
        /// The drive.
        device: String,
        /// The image file (absolute).
        image: PathBuf,
        /// Grant it read-write (a recordable disc).
        #[serde(default)]
        recordable: bool,
        /// Eject what is in the drive even if the initiator prevents it.
        #[serde(default)]
        force: bool,
    },
    /// Take the medium out of a drive outside a library.
    MediaEject {
        /// The drive.
        device: String,
        /// Even if the initiator prevents removal.
        #[serde(default)]
        force: bool,
    },
    /// Take the cartridge out of a mail slot.
    LibraryExport {
        /// The library.
        library: String,
        /// The mail slot, from 1; default: the first full one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_slot: Option<u16>,
    },
}

/// Which devices a reload applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadTarget {
    /// One device.
    Device(String),
    /// Every device served by the handler of this name.
    Handler(String),
    /// Every device whose handler's `.wasm` changed on disk (SIGHUP).
    Changed(bool),
}

/// One response line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version of the answer.
    pub v: u32,
    /// Whether the operation succeeded.
    pub ok: bool,
    /// Its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: impl Serialize) -> Self {
        let result = serde_json::to_value(result).unwrap_or(serde_json::Value::Null);
        Self { v: PROTOCOL_VERSION, ok: true, result: Some(result), error: None }
    }

    /// A failure.
    pub fn err(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { v: PROTOCOL_VERSION, ok: false, result: None, error: Some(ApiError { kind, message: message.into() }) }
    }
}

/// A failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Its class.
    pub kind: ErrorKind,
    /// For the operator.
    pub message: String,
}

/// Classes of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The line is not a request this daemon understands.
    BadRequest,
    /// The request's version is newer than this daemon's.
    UnsupportedVersion,
    /// The caller may not do this.
    Unauthorized,
    /// No such device or handler.
    NotFound,
    /// It conflicts with what exists (a name or backing in use).
    Conflict,
    /// Another operation on the device is in progress, or too many clients.
    Busy,
    /// The operation was tried and failed; nothing changed.
    Failed,
}

/// Who made a device's kernel side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The daemon: a `[[device]]` of its config, or `ctl add`.
    #[default]
    Daemon,
    /// Somebody else, through configfs (targetcli, rtslib): the daemon
    /// serves it but never removes its backstore.
    Kernel,
}

/// One device in `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Device name.
    pub name: String,
    /// Handler name (from `describe`).
    pub handler: String,
    /// Device type.
    pub device_type: String,
    /// SHA-256 of the code serving now.
    pub digest: String,
    /// Where that code was loaded from.
    pub wasm: PathBuf,
    /// starting, serving, fenced, stopping, failed, stopped.
    pub state: String,
    /// Why, for failed and stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How it is exported.
    pub export: String,
    /// Who made its kernel side (`kernel`: through configfs; its creator
    /// exports and removes it).
    #[serde(default)]
    pub origin: Origin,
    /// Its size in bytes.
    pub size: u64,
    /// The unit serial the host assigned.
    pub serial: String,
    /// Whether code before the last reload is kept for `--rollback`.
    pub can_roll_back: bool,
    /// The medium in a drive outside a library (`ctl media`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<super::media::MediumStatus>,
    /// Counters and latency.
    pub metrics: MetricsSnapshot,
}

/// The answer to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The daemon's instance id (identities derive from it).
    pub instance_id: String,
    /// The devices, by name.
    pub devices: Vec<DeviceStatus>,
}

/// One handler in `handlers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerEntry {
    /// Name from `describe`, or `?` when it failed to load.
    pub name: String,
    /// Device type.
    pub device_type: String,
    /// Description, or why it is unusable.
    pub description: String,
    /// The file.
    pub wasm: PathBuf,
    /// SHA-256 (when loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Devices served by this code now.
    pub devices: Vec<String>,
    /// Whether it is on the search path (else only loaded by path).
    pub on_search_path: bool,
}

/// The answer to `handlers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlersReport {
    /// The directories searched, in order.
    pub search_path: Vec<PathBuf>,
    /// The handlers.
    pub handlers: Vec<HandlerEntry>,
}

/// What one device's reload did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadResult {
    /// The device.
    pub device: String,
    /// Whether the new code serves now.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Digest serving now.
    pub digest: String,
    /// How long the device held its commands, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_us: Option<u64>,
    /// Bytes of state carried over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_bytes: Option<usize>,
}

/// The answer to `reload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// One entry per device tried.
    pub results: Vec<ReloadResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let r = Request { v: 1, op: Op::Status { device: None } };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"v":1,"op":"status"}"#);
        let r = Request {
            v: 1,
            op: Op::Reload {
                target: ReloadTarget::Device("disk0".into()),
                wasm: Some("/srv/f.wasm".into()),
                rollback: false,
                discard_state: false,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"op":"reload","device":"disk0","wasm":"/srv/f.wasm","rollback":false,"discard_state":false}"#
        );
        let back: Request = serde_json::from_str(r#"{"v":1,"op":"reload","handler":"file"}"#).unwrap();
        assert!(matches!(back.op, Op::Reload { target: ReloadTarget::Handler(h), rollback: false, .. } if h == "file"));
    }

    #[test]
    fn responses_carry_either_a_result_or_an_error() {
        let ok = serde_json::to_string(&Response::ok(serde_json::json!({"n": 1}))).unwrap();
        assert_eq!(ok, r#"{"v":1,"ok":true,"result":{"n":1}}"#);
        let err = serde_json::to_string(&Response::err(ErrorKind::NotFound, "no device x")).unwrap();
        assert_eq!(err, r#"{"v":1,"ok":false,"error":{"kind":"not-found","message":"no device x"}}"#);
    }
}
