//! The native baseline: a handler crate linked straight into the host and
//! driven through the same ring, device loop, backing file and buffer code
//! as the sandbox — only the wasm boundary is missing. `bench --native`
//! measures against it, so the ratio is the sandbox tax and nothing else.
//!
//! Not a way to serve untrusted handlers: a native handler that panics
//! takes the host down with it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tcmu_guest_sdk::{self as sdk, Handler};

use crate::aio::{IoEngine, IoSettings, OpKind};
use crate::backing::{BackingFile, StoreError};
use crate::device::{Backend, BackendError, CommandIo};
use crate::ring::{CommandEntry, Response, TmrEntry, TmrKind};

type SharedIo = Rc<RefCell<Option<CommandIo>>>;

fn sdk_error(e: StoreError) -> sdk::IoError {
    match e {
        StoreError::OutOfRange => sdk::IoError::OutOfRange,
        StoreError::ReadOnly => sdk::IoError::ReadOnly,
        StoreError::TooLarge => sdk::IoError::TooLarge,
        StoreError::Io(e) => sdk::IoError::Io(e.to_string()),
    }
}

struct NativeStore {
    file: Arc<BackingFile>,
    io: SharedIo,
    engine: Option<Arc<IoEngine>>,
}

impl NativeStore {
    /// As the wasm host's store calls: wait for the queued I/O a
    /// synchronous access must see.
    fn settle(&self, kind: OpKind, offset: u64, len: u64) -> Result<(), StoreError> {
        self.engine.as_ref().map_or(Ok(()), |e| e.settle(&self.file, kind, offset, len, None))
    }

    fn with_io<T>(&self, f: impl FnOnce(&mut CommandIo) -> Result<T, StoreError>) -> Result<T, sdk::IoError> {
        match self.io.borrow_mut().as_mut() {
            Some(io) => f(io).map_err(sdk_error),
            None => Err(sdk::IoError::OutOfRange),
        }
    }
}

impl sdk::Store for NativeStore {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn read_only(&self) -> bool {
        self.file.read_only()
    }
    fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, sdk::IoError> {
        self.settle(OpKind::Read, offset, len.into()).and_then(|()| self.file.read_vec(offset, len)).map_err(sdk_error)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), sdk::IoError> {
        self.settle(OpKind::Write, offset, data.len() as u64)
            .and_then(|()| self.file.write_from(offset, data))
            .map_err(sdk_error)
    }
    fn flush(&self) -> Result<(), sdk::IoError> {
        match &self.engine {
            Some(engine) => engine.flush(&self.file).map_err(sdk_error),
            None => self.file.flush().map_err(sdk_error),
        }
    }
    fn discard(&self, offset: u64, len: u64) -> Result<(), sdk::IoError> {
        match &self.engine {
            Some(engine) => engine.discard(&self.file, offset, len, None).map_err(sdk_error),
            None => self.file.discard(offset, len, None).map_err(sdk_error),
        }
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), sdk::IoError> {
        match &self.engine {
            Some(engine) => engine.write_zeroes(&self.file, offset, len, None).map_err(sdk_error),
            None => self.file.write_zeroes(offset, len, None).map_err(sdk_error),
        }
    }
    fn read_to_data_in(&self, offset: u64, len: u32, data_in_offset: u32) -> Result<(), sdk::IoError> {
        self.with_io(|io| io.store_to_data_in(&self.file, offset, len, data_in_offset, true))
    }
    fn write_from_data_out(&self, offset: u64, len: u32, data_out_offset: u32) -> Result<(), sdk::IoError> {
        self.with_io(|io| io.data_out_to_store(&self.file, offset, len, data_out_offset, true))
    }
}

struct NativeTransfer<'a>(&'a RefCell<Option<CommandIo>>);

impl sdk::Transfer for NativeTransfer<'_> {
    fn read_data_out(&mut self, offset: u32, len: u32) -> Result<Vec<u8>, sdk::IoError> {
        match self.0.borrow_mut().as_mut() {
            Some(io) => io.read_data_out(offset, len, u64::MAX).map_err(sdk_error),
            None => Err(sdk::IoError::OutOfRange),
        }
    }
    fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), sdk::IoError> {
        match self.0.borrow_mut().as_mut() {
            Some(io) => io.write_data_in(offset, data).map_err(sdk_error),
            None => Err(sdk::IoError::OutOfRange),
        }
    }
}

/// A device served by handler `H` compiled into the host.
pub struct NativeDevice<H: Handler> {
    handler: H,
    io: SharedIo,
    backing: Option<Arc<BackingFile>>,
    engine: Option<Arc<IoEngine>>,
}

impl<H: Handler> NativeDevice<H> {
    /// Open `H` with `config` and `identity` over `backing`, its store
    /// transfers run as `io_settings` say (as a sandboxed device's are).
    pub fn open(
        config: &str,
        identity: &sdk::DeviceIdentity,
        backing: Option<Arc<BackingFile>>,
        io_settings: IoSettings,
    ) -> Result<Self, String> {
        let io: SharedIo = Rc::default();
        let engine = match &backing {
            Some(_) => Some(Arc::new(IoEngine::new(io_settings).map_err(|e| format!("setting up I/O: {e}"))?)),
            None => None,
        };
        let store = backing
            .clone()
            .map(|file| Box::new(NativeStore { file, io: io.clone(), engine: engine.clone() }) as Box<dyn sdk::Store>);
        let handler = H::open(config, identity, store)?;
        Ok(Self { handler, io, backing, engine })
    }
}

impl<H: Handler> Backend for NativeDevice<H> {
    fn io_engine(&self) -> Option<Arc<IoEngine>> {
        self.engine.clone()
    }

    fn handle(&mut self, cmd: &CommandEntry) -> Response {
        let io = CommandIo::new(cmd, self.engine.clone());
        let sdk_cmd = sdk::Command { cdb: &cmd.cdb, data_out_len: io.data_out_len(), data_in_len: io.data_in_len() };
        let room = io.data_in_len();
        *self.io.borrow_mut() = Some(io);
        let done = self.handler.handle(&sdk_cmd, &mut NativeTransfer(&self.io));
        let io = self.io.borrow_mut().take();
        let moved = io.as_ref().is_some_and(|io| io.moved_data_in());
        let (response, _) = Response::from_handler(done.status, done.sense, done.data_in_len, moved, room);
        response.with_data_out_taken(io.map_or(0, |io| io.data_out_taken()))
    }

    fn task_management(&mut self, tmr: &TmrEntry) {
        let kind = match tmr.kind {
            TmrKind::AbortTask => sdk::TaskManagement::AbortTask,
            TmrKind::AbortTaskSet => sdk::TaskManagement::AbortTaskSet,
            TmrKind::ClearAca => sdk::TaskManagement::ClearAca,
            TmrKind::ClearTaskSet => sdk::TaskManagement::ClearTaskSet,
            TmrKind::LunReset => sdk::TaskManagement::LunReset,
            TmrKind::TargetWarmReset => sdk::TaskManagement::TargetWarmReset,
            TmrKind::TargetColdReset => sdk::TaskManagement::TargetColdReset,
            TmrKind::LunResetPr => sdk::TaskManagement::LunResetPr,
            TmrKind::Unknown(_) => sdk::TaskManagement::Unknown,
        };
        self.handler.task_management(kind);
    }

    fn resized(&mut self, new_size: u64) -> Result<(), BackendError> {
        if let Some(b) = &self.backing {
            b.resize(new_size).map_err(|e| BackendError::Refused(format!("resizing the backing file: {e}")))?;
        }
        self.handler.resized(new_size);
        Ok(())
    }

    fn write_cache_changed(&mut self, enabled: bool) {
        self.handler.write_cache_changed(enabled);
    }

    fn close(&mut self) {
        self.handler.close();
    }
}
