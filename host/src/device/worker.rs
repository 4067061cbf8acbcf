//! The per-device loop and its handle.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Backend, BackendError, DeviceError, Doorbell, ReloadOutcome, ReloadRequest};
use crate::metrics::DeviceMetrics;
use crate::ring::{Entry, Ring};

/// Completions written before the kernel is told, at most. Batching saves
/// a wake-up per command; the cap bounds the latency it adds.
const NOTIFY_BATCH: u32 = 32;

/// How long [`Drop`] of a [`DeviceHandle`] waits for the thread.
const DROP_STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Requests from the control plane to a running device. Each is handled
/// between two commands; the reply goes to the sender.
#[derive(Debug)]
pub enum Control {
    /// The device's size changed.
    Resize(u64, mpsc::Sender<Result<(), BackendError>>),
    /// The write cache was switched.
    WriteCache(bool, mpsc::Sender<()>),
    /// Swap in new handler code.
    Reload(ReloadRequest, mpsc::Sender<Result<ReloadOutcome, BackendError>>),
    /// Lift a fence and rebuild.
    Reset(mpsc::Sender<Result<(), BackendError>>),
    /// Load or unload the drive's medium.
    Medium(super::MediumChange, mpsc::Sender<Result<(), BackendError>>),
    /// Library elements changed under the changer.
    ElementsChanged(Vec<u16>),
    /// Stop serving; the loop returns after finishing the command in hand.
    Stop,
}

/// Why a drain returned.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// The ring is empty.
    Empty,
    /// A control request is waiting; entries may remain.
    Interrupted,
}

/// One device's loop: ring + doorbell + backend.
pub struct DeviceLoop {
    name: Arc<str>,
    ring: Ring,
    doorbell: Box<dyn Doorbell>,
    backend: Box<dyn Backend>,
    metrics: Arc<DeviceMetrics>,
    /// Set by [`DeviceHandle::send`]: stop draining and look at the control channel.
    control_pending: Arc<AtomicBool>,
}

impl DeviceLoop {
    fn drain(&mut self) -> Result<Drained, DeviceError> {
        let mut unnotified = 0u32;
        let mut notified_tail = self.ring.tail();
        let mut outcome = Drained::Empty;
        while let Some(entry) = self.ring.next_entry()? {
            match entry {
                Entry::Command(cmd) => {
                    let started = Instant::now();
                    let opcode = cmd.cdb.first().copied().unwrap_or(0xff);
                    self.metrics.command_started();
                    let response = self.backend.handle(&cmd);
                    self.ring.complete(cmd, &response)?;
                    self.metrics.command_finished(
                        opcode,
                        response.status,
                        &response.sense,
                        response.data_in_len.map_or(0, u64::from),
                        response.data_out_taken,
                        started.elapsed(),
                    );
                }
                Entry::Invalid(bad) => {
                    tracing::warn!(device = %self.name, cmd_id = bad.cmd_id, error = %bad.error, "malformed command entry failed");
                    self.ring.complete_invalid(bad)?;
                    self.metrics.invalid_entry();
                }
                Entry::Tmr(tmr) => {
                    tracing::info!(device = %self.name, kind = ?tmr.kind, aborted = ?tmr.aborted, "task management");
                    self.backend.task_management(&tmr);
                    self.metrics.tmr();
                }
            }
            unnotified += 1;
            if unnotified == NOTIFY_BATCH {
                self.notify();
                notified_tail = self.ring.tail();
                unnotified = 0;
            }
            // A reload or stop waits for the command boundary, not for the
            // ring to run dry (under load it never does).
            if self.control_pending.load(Ordering::Acquire) {
                outcome = Drained::Interrupted;
                break;
            }
        }
        // Compare tails rather than count entries: `next` also moves past PAD
        // and unknown-opcode entries on its own, and the kernel must hear
        // about those too.
        if self.ring.tail() != notified_tail {
            self.notify();
        }
        Ok(outcome)
    }

    fn notify(&self) {
        if let Err(e) = self.doorbell.notify() {
            tracing::error!(device = %self.name, error = %e, "notifying the kernel failed");
        }
    }

    /// Run until `Control::Stop` or a fatal ring error.
    fn run(mut self, control: mpsc::Receiver<Control>, wake: Arc<EventFd>) -> Result<(), DeviceError> {
        // Lines logged below this thread's loop (ring, sandbox) carry the device name.
        let _span = tracing::info_span!("device", name = %self.name).entered();
        tracing::info!(device = %self.name, "serving");
        let result = self.serve(&control, &wake);
        self.backend.close();
        match &result {
            Ok(()) => tracing::info!(device = %self.name, "stopped"),
            Err(e) => tracing::error!(device = %self.name, error = %e, "device stopped"),
        }
        result
    }

    /// Apply the waiting control requests; `false` on Stop.
    fn apply_controls(&mut self, control: &mpsc::Receiver<Control>) -> bool {
        self.control_pending.store(false, Ordering::Release);
        while let Ok(msg) = control.try_recv() {
            match msg {
                Control::Stop => return false,
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
                Control::Reload(request, reply) => {
                    let digest = request.code.digest()[..12].to_owned();
                    let result = self.backend.reload(request);
                    match &result {
                        Ok(done) => tracing::info!(
                            device = %self.name, digest, pause_us = done.pause.as_micros() as u64,
                            state_bytes = done.state_bytes, "handler reloaded"
                        ),
                        Err(e) => {
                            tracing::error!(device = %self.name, digest, error = %e, "reload refused; the old code keeps serving")
                        }
                    }
                    let _ = reply.send(result);
                }
                Control::Reset(reply) => {
                    let result = self.backend.reset();
                    tracing::info!(device = %self.name, ok = result.is_ok(), "reset by the operator");
                    let _ = reply.send(result);
                }
                Control::Medium(change, reply) => {
                    let loading = matches!(change, super::MediumChange::Load(_));
                    let result = self.backend.change_medium(change);
                    tracing::info!(device = %self.name, loading, ok = result.is_ok(), "medium changed");
                    let _ = reply.send(result);
                }
                Control::ElementsChanged(addresses) => self.backend.elements_changed(&addresses),
            }
        }
        true
    }

    fn serve(&mut self, control: &mpsc::Receiver<Control>, wake: &EventFd) -> Result<(), DeviceError> {
        // Entries may already be waiting (a restarted daemon adopting a ring).
        let mut backlog = true;
        loop {
            let (ring_ready, control_ready) = {
                let mut fds =
                    [PollFd::new(self.doorbell.fd(), PollFlags::POLLIN), PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
                let timeout = if backlog { PollTimeout::ZERO } else { PollTimeout::NONE };
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(DeviceError::Poll(e)),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if control_ready || self.control_pending.load(Ordering::Acquire) {
                let _ = wake.read();
                if !self.apply_controls(control) {
                    return Ok(());
                }
            }
            if ring_ready && let Err(e) = self.doorbell.ack() {
                tracing::warn!(device = %self.name, error = %e, "doorbell ack failed");
            }
            backlog = self.drain()? == Drained::Interrupted;
        }
    }
}

/// A running device thread. Shareable: every method takes `&self`.
pub struct DeviceHandle {
    name: Arc<str>,
    control: mpsc::Sender<Control>,
    control_pending: Arc<AtomicBool>,
    wake: Arc<EventFd>,
    metrics: Arc<DeviceMetrics>,
    /// Disconnects when the thread ends.
    finished: Mutex<mpsc::Receiver<()>>,
    thread: Mutex<Option<JoinHandle<Result<(), DeviceError>>>>,
}

impl DeviceHandle {
    /// Start a device thread that counts into `metrics`. The backend is built
    /// on that thread by `make_backend` (wasm stores and native handlers need
    /// not be `Send`); the receiver hears whether that worked, and if it did
    /// not the thread ends with the error.
    pub fn spawn(
        name: &str,
        ring: Ring,
        doorbell: Box<dyn Doorbell>,
        metrics: Arc<DeviceMetrics>,
        make_backend: impl FnOnce() -> anyhow::Result<Box<dyn Backend>> + Send + 'static,
    ) -> io::Result<(Self, mpsc::Receiver<anyhow::Result<()>>)> {
        let name: Arc<str> = name.into();
        let (tx, rx) = mpsc::channel();
        let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
        let control_pending = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (finished_tx, finished) = mpsc::channel::<()>();
        let thread = {
            let (name, wake, metrics, pending) = (name.clone(), wake.clone(), metrics.clone(), control_pending.clone());
            std::thread::Builder::new().name(format!("dev-{name}")).spawn(move || {
                let _finished = finished_tx;
                let backend = match make_backend() {
                    Ok(b) => {
                        let _ = ready_tx.send(Ok(()));
                        b
                    }
                    Err(e) => {
                        let reason = format!("{e:#}");
                        tracing::error!(device = %name, error = %reason, "handler failed to start");
                        let _ = ready_tx.send(Err(e));
                        return Err(DeviceError::Start(reason));
                    }
                };
                let device = DeviceLoop { name, ring, doorbell, backend, metrics, control_pending: pending };
                device.run(rx, wake)
            })?
        };
        let handle = Self {
            name,
            control: tx,
            control_pending,
            wake,
            metrics,
            finished: Mutex::new(finished),
            thread: Mutex::new(Some(thread)),
        };
        Ok((handle, ready_rx))
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<DeviceMetrics> {
        &self.metrics
    }

    /// Whether the device thread has ended (stopped, or its ring failed).
    pub fn is_finished(&self) -> bool {
        self.thread.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_none_or(|t| t.is_finished())
    }

    /// Send a control message.
    pub fn send(&self, msg: Control) {
        if self.control.send(msg).is_ok() {
            self.control_pending.store(true, Ordering::Release);
            let _ = self.wake.write(1);
        }
    }

    /// Send the request `make` builds around a reply channel and wait up to
    /// `deadline` for the answer.
    fn request<T>(
        &self,
        what: &'static str,
        deadline: Duration,
        make: impl FnOnce(mpsc::Sender<T>) -> Control,
    ) -> Result<T, DeviceError> {
        let (tx, rx) = mpsc::channel();
        self.send(make(tx));
        match rx.recv_timeout(deadline) {
            Ok(answer) => Ok(answer),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(DeviceError::Timeout { what, after: deadline }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(DeviceError::NotRunning),
        }
    }

    /// Resize the device and wait until it has applied (or refused) it.
    pub fn resize(&self, size: u64, deadline: Duration) -> Result<(), DeviceError> {
        Ok(self.request("resize", deadline, |tx| Control::Resize(size, tx))??)
    }

    /// Switch the device's write cache and wait until it is applied.
    pub fn set_write_cache(&self, enabled: bool, deadline: Duration) -> Result<(), DeviceError> {
        self.request("switch its write cache", deadline, |tx| Control::WriteCache(enabled, tx))
    }

    /// Swap in new code at the next command boundary.
    pub fn reload(&self, request: ReloadRequest, deadline: Duration) -> Result<ReloadOutcome, DeviceError> {
        Ok(self.request("reload", deadline, |tx| Control::Reload(request, tx))??)
    }

    /// Load or unload the drive's medium.
    pub fn change_medium(&self, change: super::MediumChange, deadline: Duration) -> Result<(), DeviceError> {
        Ok(self.request("medium", deadline, |tx| Control::Medium(change, tx))??)
    }

    /// Tell a changer that library elements changed under it (no wait).
    pub fn elements_changed(&self, addresses: Vec<u16>) {
        self.send(Control::ElementsChanged(addresses));
    }

    /// Lift a fence and rebuild the instance.
    pub fn reset(&self, deadline: Duration) -> Result<(), DeviceError> {
        Ok(self.request("reset", deadline, Control::Reset)??)
    }

    /// Stop the device and wait up to `deadline` for its thread. A thread
    /// that does not stop in time (a handler stuck in a host call) is left
    /// behind, detached; the caller goes on. Stopping twice is harmless.
    pub fn stop(&self, deadline: Duration) -> Result<(), DeviceError> {
        let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() else { return Ok(()) };
        self.send(Control::Stop);
        let finished = self.finished.lock().unwrap_or_else(|p| p.into_inner()).recv_timeout(deadline);
        match finished {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!(device = %self.name, ?deadline, "device thread did not stop in time; leaving it behind");
                Err(DeviceError::Timeout { what: "stop", after: deadline })
            }
            _ => thread.join().unwrap_or(Err(DeviceError::Panicked)),
        }
    }
}

impl Drop for DeviceHandle {
    fn drop(&mut self) {
        let _ = self.stop(DROP_STOP_DEADLINE);
    }
}
