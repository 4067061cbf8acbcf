//! The data buffers of the command a handler is serving, with the
//! operations the `transfer` interface and the store's direct-transfer
//! methods perform on them. Shared by the wasm host and the native
//! baseline so both do exactly the same work per byte.

use std::sync::Arc;

use crate::aio::IoEngine;
use crate::backing::{BackingFile, StoreError};
use crate::ring::{CommandEntry, DataBuffer};

/// Buffers of the command in flight.
#[derive(Debug)]
pub struct CommandIo {
    data: DataBuffer,
    bidi_in: Option<DataBuffer>,
    moved_data_in: bool,
    data_out_taken: u64,
    /// What the handler gave through `transfer.set-sense` (the last call).
    sense: Vec<u8>,
    /// Where the device's store transfers are queued ([`crate::aio`]);
    /// `None` runs them inside the call.
    engine: Option<Arc<IoEngine>>,
}

impl CommandIo {
    /// Take the buffers of `cmd` (cheap: region handle + segment list).
    /// Store transfers go through `engine` when there is one.
    pub fn new(cmd: &CommandEntry, engine: Option<Arc<IoEngine>>) -> Self {
        Self {
            data: cmd.data.clone(),
            bidi_in: cmd.bidi_in.clone(),
            moved_data_in: false,
            data_out_taken: 0,
            sense: Vec::new(),
            engine,
        }
    }

    /// Bytes of data-out (the shared buffer for one-directional commands).
    pub fn data_out_len(&self) -> u32 {
        self.data.len()
    }

    /// Room for data-in.
    pub fn data_in_len(&self) -> u32 {
        self.data_in().len()
    }

    fn data_in(&self) -> &DataBuffer {
        self.bidi_in.as_ref().unwrap_or(&self.data)
    }

    /// Whether the handler put any data-in into the buffer. The ring then
    /// reports a short transfer (READ_LEN); for commands that moved none —
    /// writes — no residual is reported, because the kernel would apply it
    /// to the data-out direction.
    pub fn moved_data_in(&self) -> bool {
        self.moved_data_in
    }

    /// Bytes of data-out the handler took (for metrics).
    pub fn data_out_taken(&self) -> u64 {
        self.data_out_taken
    }

    /// Keep `sense` as the command's sense data (`transfer.set-sense`); a
    /// later call replaces it. Only what the ring can carry is kept.
    pub fn set_sense(&mut self, mut sense: Vec<u8>) {
        sense.truncate(crate::ring::layout::SENSE_BUFFER_SIZE);
        self.sense = sense;
    }

    /// The sense data `set_sense` kept (empty if none).
    pub fn take_sense(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sense)
    }

    /// Copy data-out bytes, at most `max` of them. The range and then
    /// `max` are checked before anything is allocated: the length is the
    /// caller's (a guest's) to choose.
    pub fn read_data_out(&mut self, offset: u32, len: u32, max: u64) -> Result<Vec<u8>, StoreError> {
        if u64::from(offset) + u64::from(len) > u64::from(self.data.len()) {
            return Err(StoreError::OutOfRange);
        }
        if u64::from(len) > max {
            return Err(StoreError::TooLarge);
        }
        let mut out = vec![0u8; len as usize];
        self.data.read(offset as u64, &mut out)?;
        self.data_out_taken += u64::from(len);
        Ok(out)
    }

    /// Copy bytes into data-in.
    pub fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), StoreError> {
        self.data_in().write(offset as u64, data)?;
        self.moved_data_in = true;
        Ok(())
    }

    /// Store → data-in, no intermediate copy: queued when the command has
    /// an engine and `queue` (the device's store; a cartridge's image is
    /// read in the call), else done before returning.
    pub fn store_to_data_in(
        &mut self,
        store: &Arc<BackingFile>,
        offset: u64,
        len: u32,
        data_in_offset: u32,
        queue: bool,
    ) -> Result<(), StoreError> {
        let buffer = self.bidi_in.as_ref().unwrap_or(&self.data);
        match self.engine.as_ref().filter(|_| queue) {
            Some(engine) => engine.read(store, offset, len, buffer, data_in_offset)?,
            None => store.read_to_buffer(offset, len, buffer, data_in_offset)?,
        }
        self.moved_data_in = true;
        Ok(())
    }

    /// Data-out → store, no intermediate copy; queued as
    /// [`CommandIo::store_to_data_in`] is.
    pub fn data_out_to_store(
        &mut self,
        store: &Arc<BackingFile>,
        offset: u64,
        len: u32,
        data_out_offset: u32,
        queue: bool,
    ) -> Result<(), StoreError> {
        match self.engine.as_ref().filter(|_| queue) {
            Some(engine) => engine.write(store, offset, len, &self.data, data_out_offset)?,
            None => store.write_from_buffer(offset, len, &self.data, data_out_offset)?,
        }
        self.data_out_taken += u64::from(len);
        Ok(())
    }
}
