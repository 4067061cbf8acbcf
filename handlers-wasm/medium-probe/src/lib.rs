//! Test fixture for removable media. It keeps every cartridge grant it is
//! ever given (a hostile handler would), so tests can call through a grant
//! the host has revoked and check that it fails with `no-medium` and never
//! reaches an image.
//!
//! Vendor commands (CDB byte 1 = index into the hoarded grants, in load order):
//! - `C0h` read the first 16 bytes of that grant's image;
//! - `C1h` write the 16 bytes of data-out at offset 0 through it;
//! - `C2h` report the current medium: load id (8 bytes, big-endian) and barcode;
//! - `C3h` trap (to make the host rebuild the instance).
//!
//! TEST UNIT READY: NOT READY, MEDIUM NOT PRESENT (02/3A/00) when empty.

use tcmu_guest_sdk::sense::{self, Sense};
use tcmu_guest_sdk::{
    Cartridge, Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, MediumError, MediumInfo, Store,
    Transfer,
};

/// The fixture's device.
pub struct Probe {
    hoard: Vec<Box<dyn Cartridge>>,
    current: Option<MediumInfo>,
}

fn medium_sense(e: MediumError) -> Sense {
    match e {
        MediumError::NoMedium => sense::MEDIUM_NOT_PRESENT.into(),
        MediumError::Io(_) => sense::UNRECOVERED_READ_ERROR.into(),
    }
}

impl Probe {
    fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Result<Completion, Sense> {
        let grant = || cmd.cdb.get(1).map(|&i| usize::from(i));
        match cmd.opcode() {
            0x00 => match self.current {
                Some(_) => Ok(Completion::good()),
                None => Err(sense::MEDIUM_NOT_PRESENT.into()),
            },
            0xc0 => {
                let c = grant().and_then(|i| self.hoard.get(i)).ok_or(sense::INVALID_FIELD_IN_CDB)?;
                let data = c.read_at(0, 16).map_err(medium_sense)?;
                xfer.write_data_in(0, &data).map_err(|_| Sense::from(sense::INVALID_FIELD_IN_CDB))?;
                Ok(Completion::good_with_data(16))
            }
            0xc1 => {
                let c = grant().and_then(|i| self.hoard.get(i)).ok_or(sense::INVALID_FIELD_IN_CDB)?;
                let data = xfer.read_data_out(0, 16).map_err(|_| Sense::from(sense::INVALID_FIELD_IN_CDB))?;
                c.write_at(0, &data).map_err(medium_sense)?;
                Ok(Completion::good())
            }
            0xc2 => {
                let info = self.current.as_ref().ok_or(sense::MEDIUM_NOT_PRESENT)?;
                let mut data = info.load_id.to_be_bytes().to_vec();
                data.extend_from_slice(info.barcode.as_bytes());
                xfer.write_data_in(0, &data).map_err(|_| Sense::from(sense::INVALID_FIELD_IN_CDB))?;
                Ok(Completion::good_with_data(data.len() as u32))
            }
            0xc3 => panic!("asked to trap"),
            _ => Err(sense::INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }
}

impl Handler for Probe {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("medium-probe", DeviceType::Other, "hoards cartridge grants (test fixture)")
    }

    fn open(_config: &str, _identity: &DeviceIdentity, _store: Option<Box<dyn Store>>) -> Result<Self, String> {
        Ok(Self { hoard: Vec::new(), current: None })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        self.execute(cmd, xfer).unwrap_or_else(Completion::from)
    }

    fn medium_loaded(&mut self, cartridge: Box<dyn Cartridge>, info: MediumInfo) -> Result<(), String> {
        if info.barcode.starts_with("BAD") {
            return Err(format!("refusing {}", info.barcode));
        }
        self.hoard.push(cartridge);
        self.current = Some(info);
        Ok(())
    }

    fn medium_unloaded(&mut self) {
        // Keeps the grant on purpose.
        self.current = None;
    }
}

tcmu_guest_sdk::export_handler!(Probe);
