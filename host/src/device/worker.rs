//! The per-device loop and its handle.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use slab::Slab;

use super::{Backend, BackendError, DeviceError, Doorbell, ReloadOutcome, ReloadRequest};
use crate::aio::{IoEngine, IoFailure, Token};
use crate::metrics::DeviceMetrics;
use crate::ring::{CommandEntry, Entry, Response, Ring};

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

/// A command whose handler returned while its store I/O still runs.
struct InFlight {
    cmd: CommandEntry,
    response: Response,
    started: Instant,
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
    /// The backend's store I/O queue, if its transfers are queued.
    engine: Option<Arc<IoEngine>>,
    /// Commands waiting for their I/O. They stay in their slot until
    /// answered (a map of them would move a few hundred bytes on every
    /// insert and removal); `by_token` finds the slot.
    in_flight: Slab<InFlight>,
    by_token: HashMap<Token, usize>,
    max_in_flight: usize,
    /// Reaped commands, reused between reaps.
    reaped: Vec<(Token, Option<IoFailure>)>,
    /// Completions written since the kernel was last told.
    unnotified: u32,
    notified_tail: u32,
}

impl DeviceLoop {
    /// Answer `cmd` and count it.
    fn finish(&mut self, cmd: CommandEntry, response: Response, started: Instant) -> Result<(), DeviceError> {
        let opcode = cmd.cdb.first().copied().unwrap_or(0xff);
        self.ring.complete(cmd, &response)?;
        self.metrics.command_finished(
            opcode,
            response.status,
            &response.sense,
            response.data_in_len.map_or(0, u64::from),
            response.data_out_taken,
            started.elapsed(),
        );
        self.completed();
        Ok(())
    }

    /// One more entry answered: tell the kernel every [`NOTIFY_BATCH`].
    fn completed(&mut self) {
        self.unnotified += 1;
        if self.unnotified >= NOTIFY_BATCH {
            self.notify_if_moved();
        }
    }

    /// Tell the kernel if the tail moved since it was last told. Tails are
    /// compared rather than entries counted: the ring also passes PAD,
    /// TMR and unknown entries on its own, and the kernel must hear of those.
    fn notify_if_moved(&mut self) {
        if self.ring.tail() != self.notified_tail {
            self.notify();
            self.notified_tail = self.ring.tail();
        }
        self.unnotified = 0;
    }

    /// Answer the commands whose I/O finished.
    fn reap(&mut self) -> Result<(), DeviceError> {
        if self.in_flight.is_empty() {
            // Only a sealed command still in flight can finish.
            return Ok(());
        }
        self.reap_all()
    }

    /// [`DeviceLoop::reap`], emptying the completion queue even when no
    /// command is in flight.
    fn reap_all(&mut self) -> Result<(), DeviceError> {
        let Some(engine) = self.engine.clone() else { return Ok(()) };
        let mut reaped = std::mem::take(&mut self.reaped);
        engine.reap_into(&mut reaped);
        for (token, failure) in reaped.drain(..) {
            let Some(slot) = self.by_token.remove(&token) else { continue };
            let done = self.in_flight.remove(slot);
            let response = match failure {
                Some(failure) => self.io_failed(&done.cmd, failure),
                None => done.response,
            };
            self.finish(done.cmd, response, done.started)?;
        }
        self.reaped = reaped;
        Ok(())
    }

    /// The response of a command whose store I/O failed.
    fn io_failed(&self, cmd: &CommandEntry, failure: IoFailure) -> Response {
        tracing::error!(device = %self.name, opcode = cmd.cdb.first().copied().unwrap_or(0), kind = ?failure.kind,
            error = %failure.error, "backing-store I/O failed; the command fails with MEDIUM ERROR");
        super::io_failure::medium_error(cmd, &failure)
    }

    fn serve_command(&mut self, cmd: CommandEntry) -> Result<(), DeviceError> {
        let started = Instant::now();
        self.metrics.command_started();
        let token = self.engine.as_ref().map(|e| e.begin());
        let response = self.backend.handle(&cmd);
        match (token, &self.engine) {
            (Some(token), Some(engine)) => match engine.seal(token) {
                Some(None) => self.finish(cmd, response, started),
                Some(Some(failure)) => {
                    let response = self.io_failed(&cmd, failure);
                    self.finish(cmd, response, started)
                }
                None => {
                    let slot = self.in_flight.insert(InFlight { cmd, response, started });
                    self.by_token.insert(token, slot);
                    Ok(())
                }
            },
            _ => self.finish(cmd, response, started),
        }
    }

    fn drain(&mut self) -> Result<Drained, DeviceError> {
        let mut outcome = Drained::Empty;
        while self.in_flight.len() < self.max_in_flight
            && let Some(entry) = self.ring.next_entry()?
        {
            match entry {
                Entry::Command(cmd) => self.serve_command(cmd)?,
                Entry::Invalid(bad) => {
                    tracing::warn!(device = %self.name, cmd_id = bad.cmd_id, error = %bad.error, "malformed command entry failed");
                    self.ring.complete_invalid(bad)?;
                    self.metrics.invalid_entry();
                    self.completed();
                }
                Entry::Tmr(tmr) => {
                    tracing::info!(device = %self.name, kind = ?tmr.kind, aborted = ?tmr.aborted, in_flight = self.in_flight.len(), "task management");
                    // Aborted commands still in flight are answered when
                    // their I/O is done: the kernel waits for them, and a
                    // write already issued is not torn by a cancel.
                    self.backend.task_management(&tmr);
                    self.metrics.tmr();
                    self.completed();
                }
            }
            // A reload or stop waits for the command boundary, not for the
            // ring to run dry (under load it never does).
            if self.control_pending.load(Ordering::Acquire) {
                outcome = Drained::Interrupted;
                break;
            }
            // Pick up finished I/O as we go, so a long burst of entries
            // does not hold back completions.
            if self.in_flight.len() >= NOTIFY_BATCH as usize {
                self.submit_io();
                self.reap()?;
            }
        }
        self.submit_io();
        self.notify_if_moved();
        Ok(outcome)
    }

    fn submit_io(&self) {
        if let Some(engine) = &self.engine
            && let Err(e) = engine.submit()
        {
            tracing::error!(device = %self.name, error = %e, "submitting backing-store I/O failed");
        }
    }

    /// Wait for every command in flight and answer it (before a stop).
    fn settle_in_flight(&mut self) -> Result<(), DeviceError> {
        if let Some(engine) = self.engine.clone() {
            if let Err(e) = engine.drain() {
                tracing::error!(device = %self.name, error = %e, "waiting for backing-store I/O failed");
            }
            self.reap()?;
        }
        self.notify_if_moved();
        Ok(())
    }

    /// Spin up to the engine's busy-poll window for new entries, finished
    /// I/O or a control request, instead of sleeping at once: `true` when
    /// one turned up. A sleep and its wake-up cost more than a
    /// low-queue-depth command's whole service time; the window bounds the
    /// CPU spent when nothing comes.
    fn spin_for_work(&self) -> bool {
        let Some(engine) = &self.engine else { return false };
        let window = engine.busy_poll();
        if window.is_zero() {
            return false;
        }
        let deadline = Instant::now() + window;
        loop {
            // Reading the clock costs more than the checks: read it now and then.
            for _ in 0..32 {
                if self.ring.has_new_entries()
                    || self.control_pending.load(Ordering::Acquire)
                    || (!self.in_flight.is_empty() && engine.has_completions())
                {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
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
        let asynchronous = self.engine.as_ref().is_some_and(|e| e.is_async());
        tracing::info!(device = %self.name, asynchronous, max_in_flight = self.max_in_flight, "serving");
        let mut result = self.serve(&control, &wake);
        // No command is left unanswered and no write unfinished at a stop.
        if let Err(e) = self.settle_in_flight()
            && result.is_ok()
        {
            result = Err(e);
        }
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
            let (ring_ready, control_ready, io_ready) = {
                // Finished I/O wakes the loop too: the io_uring's own fd is
                // readable while its completion queue holds entries (no
                // allocation per wake-up: a device without io_uring polls
                // two fds).
                let io_fd = self.engine.as_ref().and_then(|e| e.completion_fd());
                let mut fds = [
                    PollFd::new(self.doorbell.fd(), PollFlags::POLLIN),
                    PollFd::new(wake.as_fd(), PollFlags::POLLIN),
                    PollFd::new(io_fd.unwrap_or(wake.as_fd()), PollFlags::POLLIN),
                ];
                let fds = &mut fds[..if io_fd.is_some() { 3 } else { 2 }];
                let timeout = if backlog || self.spin_for_work() { PollTimeout::ZERO } else { PollTimeout::NONE };
                match nix::poll::poll(fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(DeviceError::Poll(e)),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]), fds.len() == 3 && ready(&fds[2]))
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
            if io_ready {
                // Whatever the completions are for: left in the queue, they
                // would keep the fd readable and the poll from sleeping.
                self.reap_all()?;
            } else {
                self.reap()?;
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
                let engine = backend.io_engine();
                let max_in_flight = engine.as_ref().map_or(1, |e| e.max_in_flight());
                let notified_tail = ring.tail();
                let device = DeviceLoop {
                    name,
                    ring,
                    doorbell,
                    backend,
                    metrics,
                    control_pending: pending,
                    engine,
                    in_flight: Slab::new(),
                    by_token: HashMap::new(),
                    max_in_flight,
                    reaped: Vec::new(),
                    unnotified: 0,
                    notified_tail,
                };
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
