//! The per-device loop and its handle.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Backend, Doorbell};
use crate::ring::{Entry, Ring, RingError};

/// Completions written before the kernel is told, at most. Batching saves
/// a wake-up per command; the cap bounds the latency it adds.
const NOTIFY_BATCH: u32 = 32;

/// Requests from the control plane to a running device.
#[derive(Debug)]
pub enum Control {
    /// The device's size changed; the outcome goes to the sender.
    Resize(u64, mpsc::Sender<Result<(), String>>),
    /// The write cache was switched; the sender hears when it is applied.
    WriteCache(bool, mpsc::Sender<()>),
    /// Stop serving; the loop returns after finishing the command in hand.
    Stop,
}

/// Counters a device keeps (for tests and operators' diagnostics).
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Commands completed (including failed ones).
    pub commands: AtomicU64,
    /// Malformed entries failed without reaching the handler.
    pub invalid_entries: AtomicU64,
    /// TMRs acknowledged.
    pub tmrs: AtomicU64,
}

/// One device's loop: ring + doorbell + backend.
pub struct DeviceLoop {
    name: Arc<str>,
    ring: Ring,
    doorbell: Box<dyn Doorbell>,
    backend: Box<dyn Backend>,
    stats: Arc<DeviceStats>,
}

impl DeviceLoop {
    /// Assemble a loop that counts into `stats`.
    pub fn new(
        name: Arc<str>,
        ring: Ring,
        doorbell: Box<dyn Doorbell>,
        backend: Box<dyn Backend>,
        stats: Arc<DeviceStats>,
    ) -> Self {
        Self { name, ring, doorbell, backend, stats }
    }

    /// Drain every pending entry, notifying the kernel in batches. Returns
    /// the number of entries finished.
    pub fn drain(&mut self) -> Result<u32, RingError> {
        let mut finished = 0u32;
        let mut unnotified = 0u32;
        let mut notified_tail = self.ring.tail();
        while let Some(entry) = self.ring.next_entry()? {
            match entry {
                Entry::Command(cmd) => {
                    let response = self.backend.handle(&cmd);
                    self.ring.complete(cmd, &response)?;
                    self.stats.commands.fetch_add(1, Ordering::Relaxed);
                }
                Entry::Invalid(bad) => {
                    tracing::warn!(device = %self.name, cmd_id = bad.cmd_id, error = %bad.error, "malformed command entry failed");
                    self.ring.complete_invalid(bad)?;
                    self.stats.invalid_entries.fetch_add(1, Ordering::Relaxed);
                }
                Entry::Tmr(tmr) => {
                    tracing::info!(device = %self.name, kind = ?tmr.kind, aborted = ?tmr.aborted, "task management");
                    self.backend.task_management(&tmr);
                    self.ring.ack_tmr(tmr)?;
                    self.stats.tmrs.fetch_add(1, Ordering::Relaxed);
                }
            }
            finished += 1;
            unnotified += 1;
            if unnotified == NOTIFY_BATCH {
                self.notify();
                notified_tail = self.ring.tail();
                unnotified = 0;
            }
        }
        // Compare tails rather than count entries: `next` also moves past PAD
        // and unknown-opcode entries on its own, and the kernel must hear
        // about those too.
        if self.ring.tail() != notified_tail {
            self.notify();
        }
        Ok(finished)
    }

    fn notify(&self) {
        if let Err(e) = self.doorbell.notify() {
            tracing::error!(device = %self.name, error = %e, "notifying the kernel failed");
        }
    }

    /// Run until `Control::Stop` or a fatal ring error.
    fn run(mut self, control: mpsc::Receiver<Control>, wake: Arc<EventFd>) -> Result<(), RingError> {
        // Lines logged below this thread's loop (ring, sandbox) carry the device name.
        let _span = tracing::info_span!("device", name = %self.name).entered();
        tracing::info!(device = %self.name, "serving");
        let result = self.serve(&control, &wake);
        self.backend.close();
        match &result {
            Ok(()) => tracing::info!(device = %self.name, "stopped"),
            Err(e) => tracing::error!(device = %self.name, error = %e, "device stopped: ring unusable"),
        }
        result
    }

    fn serve(&mut self, control: &mpsc::Receiver<Control>, wake: &EventFd) -> Result<(), RingError> {
        // Entries may already be waiting (a restarted daemon adopting a ring).
        self.drain()?;
        loop {
            let (ring_ready, control_ready) = {
                let mut fds =
                    [PollFd::new(self.doorbell.fd(), PollFlags::POLLIN), PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
                match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        tracing::error!(device = %self.name, error = %e, "poll failed");
                        return Err(RingError::Corrupt { offset: 0, reason: format!("poll: {e}") });
                    }
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if control_ready {
                let _ = wake.read();
                while let Ok(msg) = control.try_recv() {
                    match msg {
                        Control::Stop => return Ok(()),
                        Control::Resize(size, reply) => {
                            let result = self.backend.resized(size);
                            match &result {
                                Ok(()) => tracing::info!(device = %self.name, size, "resized"),
                                Err(e) => tracing::error!(device = %self.name, size, error = %e, "resize refused"),
                            }
                            let _ = reply.send(result);
                        }
                        Control::WriteCache(enabled, reply) => {
                            self.backend.write_cache_changed(enabled);
                            tracing::info!(device = %self.name, enabled, "write cache switched");
                            let _ = reply.send(());
                        }
                    }
                }
            }
            if ring_ready {
                if let Err(e) = self.doorbell.ack() {
                    tracing::warn!(device = %self.name, error = %e, "doorbell ack failed");
                }
                self.drain()?;
            }
        }
    }
}

/// A running device thread.
pub struct DeviceHandle {
    name: Arc<str>,
    control: mpsc::Sender<Control>,
    wake: Arc<EventFd>,
    stats: Arc<DeviceStats>,
    thread: Option<JoinHandle<Result<(), RingError>>>,
}

impl DeviceHandle {
    /// Start a device thread. The backend is built on that thread by
    /// `make_backend` (wasm stores and native handlers need not be `Send`);
    /// if building fails the thread ends with the error.
    pub fn spawn(
        name: &str,
        ring: Ring,
        doorbell: Box<dyn Doorbell>,
        make_backend: impl FnOnce() -> anyhow::Result<Box<dyn Backend>> + Send + 'static,
    ) -> io::Result<(Self, mpsc::Receiver<anyhow::Result<()>>)> {
        let name: Arc<str> = name.into();
        let (tx, rx) = mpsc::channel();
        let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
        let stats = Arc::new(DeviceStats::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (name, wake, stats) = (name.clone(), wake.clone(), stats.clone());
            std::thread::Builder::new().name(format!("dev-{name}")).spawn(move || {
                let backend = match make_backend() {
                    Ok(b) => {
                        let _ = ready_tx.send(Ok(()));
                        b
                    }
                    Err(e) => {
                        tracing::error!(device = %name, error = %format!("{e:#}"), "handler failed to start");
                        let reason = format!("{e:#}");
                        let _ = ready_tx.send(Err(e));
                        return Err(RingError::BadMailbox(reason));
                    }
                };
                DeviceLoop::new(name, ring, doorbell, backend, stats).run(rx, wake)
            })?
        };
        Ok((Self { name, control: tx, wake, stats, thread: Some(thread) }, ready_rx))
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    /// Send a control message.
    pub fn send(&self, msg: Control) {
        if self.control.send(msg).is_ok() {
            let _ = self.wake.write(1);
        }
    }

    /// Resize the device and wait until it has applied (or refused) it.
    pub fn resize(&self, size: u64) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::Resize(size, tx));
        let result = rx.recv().map_err(|_| anyhow::anyhow!("device {} is not running", self.name))?;
        result.map_err(|e| anyhow::anyhow!("device {} refused the resize: {e}", self.name))
    }

    /// Switch the device's write cache and wait until it is applied.
    pub fn set_write_cache(&self, enabled: bool) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Control::WriteCache(enabled, tx));
        rx.recv().map_err(|_| anyhow::anyhow!("device {} is not running", self.name))
    }

    /// Stop the device and wait for its thread.
    pub fn stop(mut self) -> Result<(), RingError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), RingError> {
        self.send(Control::Stop);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(RingError::Corrupt { offset: 0, reason: "device thread panicked".into() }),
            None => Ok(()),
        }
    }
}

impl Drop for DeviceHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
