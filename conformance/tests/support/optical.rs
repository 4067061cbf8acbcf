//! The optical handler, compiled natively, behind [`OpticalTarget`]: discs
//! are in-memory images granted the way the host grants them (a
//! revocable cartridge, revoked before the handler hears of the unload),
//! and an unforced eject asks the handler first, as the host's operator
//! eject does.

use tcmu_conformance::{DiscKind, OPTICAL_SECTOR_SIZE, OpticalTarget, Response, ScsiTarget, pressed_disc_image};
use tcmu_guest_sdk::testing::{self, MemStore};
use tcmu_guest_sdk::{DeviceIdentity, Handler, MediumInfo};
use tcmu_handler_optical::OpticalDrive;

/// Bytes of the recording trailer after a recordable image's data area
/// (the handler's format, docs/optical.md).
const RECORDING_TRAILER: usize = tcmu_handler_optical::recording::TRAILER as usize;

/// An [`OpticalDrive`] and the disc images the suite has had put in it.
pub struct OpticalDriveTarget {
    drive: OpticalDrive,
    /// The grant the drive holds, if any.
    inserted: Option<MemStore>,
    /// The recordable disc inserted last, for [`DiscKind::SameRecordable`].
    last_recordable: Option<MemStore>,
    next_load_id: u64,
}

impl OpticalDriveTarget {
    /// An empty drive opened with `config`.
    pub fn open(config: &str) -> Self {
        let drive = OpticalDrive::open(config, &DeviceIdentity::from_name("conformance"), None)
            .expect("the optical handler opens");
        Self { drive, inserted: None, last_recordable: None, next_load_id: 1 }
    }

    /// The recordable disc inserted last, as it is now.
    pub fn last_recordable(&self) -> Option<Vec<u8>> {
        self.last_recordable.as_ref().map(MemStore::contents)
    }
}

impl ScsiTarget for OpticalDriveTarget {
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let outcome = testing::execute(&mut self.drive, cdb, data_out, data_in_len);
        let completion = outcome.completion;
        if completion.data_in_len > data_in_len {
            return Err(format!(
                "handler claims {} bytes of data-in in a {data_in_len}-byte buffer",
                completion.data_in_len
            ));
        }
        Ok(Response { status: completion.status, sense: completion.sense, data_in: outcome.data_in })
    }
}

impl OpticalTarget for OpticalDriveTarget {
    fn insert(&mut self, disc: DiscKind) -> Result<(), String> {
        if self.inserted.is_some() {
            return Err("the drive already holds a disc".into());
        }
        let (image, write_protected) = match disc {
            DiscKind::Pressed { sectors } => {
                (MemStore::from_bytes(pressed_disc_image(sectors)).write_protected(), true)
            }
            DiscKind::BlankRecordable { sectors } => {
                let blank = MemStore::new(sectors as usize * OPTICAL_SECTOR_SIZE as usize + RECORDING_TRAILER);
                self.last_recordable = Some(blank.clone());
                (blank, false)
            }
            DiscKind::SameRecordable => {
                // The old grant is revoked; the disc itself is its bytes.
                let last = self.last_recordable.as_ref().ok_or("no recordable disc was inserted before")?;
                let again = MemStore::from_bytes(last.contents());
                self.last_recordable = Some(again.clone());
                (again, false)
            }
        };
        let info = MediumInfo { barcode: "CONFORMANCE".into(), write_protected, load_id: self.next_load_id };
        self.next_load_id += 1;
        self.drive.medium_loaded(Box::new(image.clone()), info)?;
        self.inserted = Some(image);
        Ok(())
    }

    fn eject(&mut self, force: bool) -> Result<(), String> {
        let Some(image) = self.inserted.take() else { return Ok(()) };
        if !force && !self.drive.removal_requested() {
            self.inserted = Some(image);
            return Err("the initiator prevents medium removal".into());
        }
        image.revoke();
        self.drive.medium_unloaded();
        Ok(())
    }
}
