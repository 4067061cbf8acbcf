//! The operator's control socket: a Unix socket speaking [`super::api`].
//!
//! Security model:
//! - the socket lives in a directory only root (and the configured group)
//!   can enter, and is itself mode 0600 (0660 with a group), so the file
//!   system keeps others out before any byte is read;
//! - every connection is checked again with `SO_PEERCRED`: root, or a
//!   process whose primary or supplementary groups include the configured
//!   group; anyone else gets one `unauthorized` line and is logged;
//! - a non-root caller may name host paths (an added device's `backing`, a
//!   handler or `--wasm` file, a drive's medium image) only under
//!   `control.allow_paths`, since the
//!   daemon opens them as root;
//! - at most [`MAX_CLIENTS`] connections at once, requests of at most
//!   [`super::api::MAX_REQUEST_BYTES`], connections that neither send nor
//!   read for [`IDLE_TIMEOUT`] closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Group};

use super::api::{self, ErrorKind, Op, PROTOCOL_VERSION, ReloadReport, Request, Response};
use super::config::{ControlSettings, DeviceConfig, is_within, normalize};
use super::registry::Registry;

/// Connections served at once.
pub const MAX_CLIENTS: usize = 16;
/// A connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Process id.
    pub pid: i32,
}

impl Caller {
    fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// The listening socket; removed again when dropped.
pub struct ControlServer {
    path: PathBuf,
    inode: u64,
}

struct Server {
    registry: Arc<Registry>,
    settings: ControlSettings,
    group: Option<Gid>,
    clients: AtomicUsize,
}

impl ControlServer {
    /// Create the socket and start answering on it.
    pub fn start(settings: &ControlSettings, registry: Arc<Registry>) -> anyhow::Result<Self> {
        let group = match &settings.group {
            Some(name) => Some(
                Group::from_name(name)
                    .with_context(|| format!("looking up group {name:?}"))?
                    .with_context(|| format!("control.group {name:?} does not exist"))?
                    .gid,
            ),
            None => None,
        };
        let path = settings.socket.clone();
        prepare_directory(&path, group)?;
        remove_stale(&path)?;
        let listener = UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = group {
            nix::unistd::chown(&path, None, Some(gid)).with_context(|| format!("chgrp {}", path.display()))?;
        }
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path)?);
        let server = Arc::new(Server { registry, settings: settings.clone(), group, clients: AtomicUsize::new(0) });
        std::thread::Builder::new().name("control".into()).spawn(move || accept_loop(&listener, &server))?;
        tracing::info!(socket = %path.display(), mode = format!("{mode:o}"), group = ?settings.group, "control socket listening");
        Ok(Self { path, inode })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Only our own socket: a successor may have bound the path already.
        if std::fs::metadata(&self.path).is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn prepare_directory(path: &Path, group: Option<Gid>) -> anyhow::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else { return Ok(()) };
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = group {
        nix::unistd::chown(dir, None, Some(gid)).with_context(|| format!("chgrp {}", dir.display()))?;
    }
    Ok(())
}

/// Remove a socket a dead daemon left; refuse if a live one answers on it.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    anyhow::ensure!(meta.file_type().is_socket(), "{} exists and is not a socket", path.display());
    if UnixStream::connect(path).is_ok() {
        anyhow::bail!("another tcmu-wasm daemon is answering on {}", path.display());
    }
    std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))
}

fn accept_loop(listener: &UnixListener, server: &Arc<Server>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if server.clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            server.clients.fetch_sub(1, Ordering::AcqRel);
            let _ = reply(&stream, &Response::err(ErrorKind::Busy, "too many control connections; try again"));
            continue;
        }
        let server = server.clone();
        let spawned = std::thread::Builder::new().name("control-conn".into()).spawn(move || {
            serve_connection(&server, stream);
            server.clients.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "control socket: cannot start a connection thread");
        }
    }
}

fn reply(mut stream: &UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line)
}

/// Supplementary groups of `pid`, from `/proc/<pid>/status`.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return Vec::new() };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

fn authorize(server: &Server, stream: &UnixStream) -> Result<Caller, String> {
    let cred = getsockopt(stream, PeerCredentials).map_err(|e| format!("SO_PEERCRED failed: {e}"))?;
    let caller = Caller { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() };
    if caller.is_root() {
        return Ok(caller);
    }
    if let Some(group) = server.group
        && (caller.gid == group.as_raw() || supplementary_groups(caller.pid).contains(&group.as_raw()))
    {
        return Ok(caller);
    }
    Err(format!("uid {} (pid {}) is neither root nor in the control group", caller.uid, caller.pid))
}

fn serve_connection(server: &Server, stream: UnixStream) {
    let caller = match authorize(server, &stream) {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(reason = %why, "control socket: connection refused");
            let _ = reply(&stream, &Response::err(ErrorKind::Unauthorized, format!("refused: {why}")));
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    // A client that stops reading must not hold this thread forever either.
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    loop {
        let mut line = Vec::new();
        let limit = api::MAX_REQUEST_BYTES as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(n) if n as u64 >= limit => {
                let _ = reply(&stream, &Response::err(ErrorKind::BadRequest, "request line too long"));
                return;
            }
            Ok(_) => {}
            Err(_) => return, // timeout or reset
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let response = handle_line(server, caller, &line);
        if reply(&stream, &response).is_err() {
            return;
        }
    }
}

fn handle_line(server: &Server, caller: Caller, line: &[u8]) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return Response::err(ErrorKind::BadRequest, format!("not JSON: {e}")),
    };
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v > u64::from(PROTOCOL_VERSION) => {
            return Response::err(
                ErrorKind::UnsupportedVersion,
                format!("protocol version {v} is newer than this daemon's {PROTOCOL_VERSION}"),
            );
        }
        Some(_) => {}
        None => return Response::err(ErrorKind::BadRequest, "missing protocol version \"v\""),
    }
    let request: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return Response::err(ErrorKind::BadRequest, format!("bad request: {e}")),
    };
    let op_name = op_name(&request.op);
    let response = execute(server, caller, request.op);
    let level_ok = response.ok;
    if !matches!(op_name, "status" | "metrics" | "handlers" | "library-status") {
        let message = response.error.as_ref().map(|e| e.message.as_str()).unwrap_or("");
        if level_ok {
            tracing::info!(uid = caller.uid, pid = caller.pid, op = op_name, "control: done");
        } else {
            tracing::warn!(uid = caller.uid, pid = caller.pid, op = op_name, error = message, "control: failed");
        }
    }
    response
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Status { .. } => "status",
        Op::Handlers => "handlers",
        Op::Add { .. } => "add",
        Op::Remove { .. } => "remove",
        Op::Reload { .. } => "reload",
        Op::Reset { .. } => "reset",
        Op::Metrics => "metrics",
        Op::LibraryStatus { .. } => "library-status",
        Op::LibraryCreate { .. } => "library-create",
        Op::LibraryImport { .. } => "library-import",
        Op::LibraryExport { .. } => "library-export",
        Op::MediaInsert { .. } => "media-insert",
        Op::MediaEject { .. } => "media-eject",
    }
}

/// Whether `caller` may have the daemon open `path`.
fn check_path(server: &Server, caller: Caller, what: &str, path: &Path) -> Result<(), Response> {
    if caller.is_root() {
        return Ok(());
    }
    let resolved = normalize(path);
    if is_within(path, &server.settings.allow_paths) {
        Ok(())
    } else {
        Err(Response::err(
            ErrorKind::Unauthorized,
            format!(
                "{what} {} is outside control.allow_paths; only root may name other host paths",
                resolved.display()
            ),
        ))
    }
}

fn execute(server: &Server, caller: Caller, op: Op) -> Response {
    let registry = &server.registry;
    let answer = |r: Result<serde_json::Value, super::registry::OpError>| match r {
        Ok(v) => Response::ok(v),
        Err(e) => Response::err(e.kind, e.message),
    };
    match op {
        Op::Status { device } => answer(registry.status(device.as_deref()).map(|r| json(&r))),
        Op::Handlers => Response::ok(registry.handlers()),
        Op::Metrics => Response::ok(registry.with_metrics(crate::metrics::prometheus::render)),
        Op::Add { device } => {
            let cfg: DeviceConfig = match serde_json::from_value(device) {
                Ok(c) => c,
                Err(e) => return Response::err(ErrorKind::BadRequest, format!("bad [[device]] table: {e}")),
            };
            if let Some(backing) = &cfg.backing
                && let Err(r) = check_path(server, caller, "backing", backing)
            {
                return r;
            }
            if let Some(medium) = &cfg.medium
                && let Err(r) = check_path(server, caller, "medium", medium)
            {
                return r;
            }
            if (cfg.handler.contains('/') || cfg.handler.ends_with(".wasm"))
                && let Err(r) = check_path(server, caller, "handler", Path::new(&cfg.handler))
            {
                return r;
            }
            let name = cfg.name.clone();
            answer(registry.add(cfg).and_then(|()| registry.status(Some(&name))).map(|r| json(&r)))
        }
        Op::LibraryStatus { library } => answer(registry.library_status(library.as_deref()).map(|r| json(&r))),
        Op::LibraryCreate { library, barcode, size, import } => {
            answer(registry.library_create(&library, &barcode, size, import).map(|r| json(&r)))
        }
        Op::LibraryImport { library, barcode, mail_slot } => {
            answer(registry.library_import(&library, &barcode, mail_slot).map(|r| json(&r)))
        }
        Op::LibraryExport { library, mail_slot } => {
            answer(registry.library_export(&library, mail_slot).map(|r| json(&r)))
        }
        Op::MediaInsert { device, image, recordable, force } => {
            if let Err(r) = check_path(server, caller, "image", &image) {
                return r;
            }
            answer(registry.media_insert(&device, &image, recordable, force).map(|r| json(&r)))
        }
        Op::MediaEject { device, force } => answer(registry.media_eject(&device, force).map(|r| json(&r))),
        Op::Remove { device } => answer(registry.remove(&device).map(|()| serde_json::json!({ "removed": device }))),
        Op::Reset { device } => answer(registry.reset(&device).map(|()| serde_json::json!({ "reset": device }))),
        Op::Reload { target, wasm, rollback, discard_state } => {
            if let Some(path) = &wasm
                && let Err(r) = check_path(server, caller, "--wasm", path)
            {
                return r;
            }
            answer(
                registry
                    .reload(&target, wasm.as_deref(), rollback, discard_state)
                    .map(|results| json(&ReloadReport { results })),
            )
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The client side: send one request and read its answer.
pub fn request(socket: &Path, op: Op, timeout: Duration) -> anyhow::Result<Response> {
    let stream = UnixStream::connect(socket).with_context(|| {
        format!("connecting to {} (is the daemon running, and may you use its socket?)", socket.display())
    })?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(&Request { v: PROTOCOL_VERSION, op })?;
    line.push(b'\n');
    // A refusing daemon answers before reading and hangs up, so a failed
    // write may still have an answer waiting: read it either way.
    let written = (&stream).write_all(&line);
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).context("reading the daemon's answer")?;
    if answer.is_empty() {
        written.context("sending the request")?;
        anyhow::bail!("the daemon closed the connection without answering");
    }
    serde_json::from_str(&answer).context("parsing the daemon's answer")
}
