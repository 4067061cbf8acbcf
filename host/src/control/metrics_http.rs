//! The optional Prometheus listener: `GET /metrics` on a loopback address
//! (`[metrics] listen`), off by default.
//!
//! Hand-written rather than a web framework: it answers one path with one
//! text body, one request per connection, with a read timeout and a header
//! size cap, on loopback only (config validation refuses other addresses).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;

use super::registry::Registry;

const MAX_HEADER_BYTES: usize = 8192;
const MAX_CLIENTS: usize = 8;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Start listening; the listener lives as long as the process.
pub fn start(addr: SocketAddr, registry: Arc<Registry>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding the metrics listener on {addr}"))?;
    let bound = listener.local_addr()?;
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("metrics-http".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            if clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                clients.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            let (registry, clients) = (registry.clone(), clients.clone());
            let _ = std::thread::Builder::new().name("metrics-conn".into()).spawn(move || {
                let _ = answer(stream, &registry);
                clients.fetch_sub(1, Ordering::AcqRel);
            });
        }
    })?;
    tracing::info!(address = %bound, "metrics listening (GET /metrics)");
    Ok(bound)
}

fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEADER_BYTES {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "headers too large\n");
        }
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match (method, target) {
        (b"GET", b"/metrics") => {
            let body = registry.with_metrics(crate::metrics::prometheus::render);
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
        }
        (b"GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "only /metrics is served\n"),
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET only\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}
