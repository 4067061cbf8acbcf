//! The file handler, compiled natively, behind [`ScsiTarget`], on the SDK's
//! `testing` store and command buffers.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod optical;

use tcmu_conformance::{CheckOutcome, Response, ScsiTarget};
use tcmu_guest_sdk::Handler;
use tcmu_guest_sdk::testing::{self, MemStore};
use tcmu_handler_file::FileDisk;

/// A [`FileDisk`] over an in-memory medium (the SDK's testing store, the
/// same one handler unit tests use).
pub struct FileTarget {
    disk: FileDisk,
    medium: MemStore,
}

impl FileTarget {
    /// Open the handler with `config` over `medium`.
    pub fn open(config: &str, medium: Vec<u8>, read_only_store: bool) -> Self {
        let store = MemStore::from_bytes(medium);
        let medium = if read_only_store { store.write_protected() } else { store };
        let disk = FileDisk::open(
            config,
            &tcmu_guest_sdk::DeviceIdentity::from_name("conformance"),
            Some(Box::new(medium.clone())),
        )
        .expect("the file handler opens");
        Self { disk, medium }
    }

    /// A copy of the medium as it is now.
    pub fn medium(&self) -> Vec<u8> {
        self.medium.contents()
    }
}

impl ScsiTarget for FileTarget {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let outcome = testing::execute(&mut self.disk, cdb, data_out, data_in_len);
        let completion = outcome.completion;
        if completion.data_in_len > data_in_len {
            return Err(format!(
                "handler claims {} bytes of data-in in a {data_in_len}-byte buffer",
                completion.data_in_len
            ));
        }
        Ok(Response { status: completion.status, sense: completion.sense, data_in: outcome.data_in })
    }

    fn resize(&mut self, new_size: u64) -> Result<(), String> {
        self.medium.resize(new_size as usize);
        self.disk.resized(new_size);
        Ok(())
    }
}

/// A medium whose every byte depends on its offset, so lost or misplaced
/// data shows.
pub fn patterned_medium(size: usize) -> Vec<u8> {
    (0..size).map(|offset| (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()[0]).collect()
}

/// Print outcomes as `tcmu-wasm check` would, and the failed ones' names.
pub fn report(outcomes: &[CheckOutcome]) -> Vec<&str> {
    for outcome in outcomes {
        println!("{outcome}");
    }
    outcomes.iter().filter(|outcome| !outcome.passed()).map(|outcome| outcome.name.as_str()).collect()
}
