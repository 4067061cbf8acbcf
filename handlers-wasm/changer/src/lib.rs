//! # tcmu-handler-changer: an SMC-3 medium changer over the host's library
//!
//! [`Changer`] is the robot of a virtual tape library (peripheral device
//! type 08h). The host keeps the library itself, which cartridge is in which
//! slot, mail slot or drive, and carries out every move, loading and
//! unloading its drives; the handler turns SMC commands into calls on the
//! [`Library`] it receives in [`Handler::library_attached`] and formats the
//! answers the way mtx, the kernel's `ch` driver and backup software expect.
//!
//! Commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (VPD 00h, 80h, 83h),
//! MODE SENSE(6/10) with the element address assignment (1Dh), transport
//! geometry (1Eh), device capabilities (1Fh) and control (0Ah) pages, MODE
//! SELECT(6/10) (D_SENSE is the only changeable bit), READ ELEMENT STATUS
//! (every element type, with VOLTAG and DVCID), MOVE MEDIUM, EXCHANGE
//! MEDIUM, POSITION TO ELEMENT, INITIALIZE ELEMENT STATUS (07h) and
//! INITIALIZE ELEMENT STATUS WITH RANGE (37h, and E7h as mhvtl takes it),
//! and PREVENT ALLOW MEDIUM REMOVAL, which locks the mail slots against the
//! operator. REPORT LUNS is the kernel's.
//!
//! ## Element addresses
//!
//! Nothing about the layout is built in: element addresses, how many
//! elements of each type there are, barcodes, drive serial numbers and where
//! each cartridge came from all come from [`Library::elements`]. Page 1Dh
//! reports, per element type, the lowest address and the count. (The host
//! follows mhvtl: drives from 0001h, the picker at 02F0h, mail slots from
//! 0300h, storage slots from 0400h.) The changer sees the library as it is
//! when a command arrives; moves made by other initiators or the operator
//! need no bookkeeping here. When the host reports that something other
//! than this changer changed elements (the operator used a mail slot, or
//! restored the library), the next command reports UNIT ATTENTION 06/28/00
//! (NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED) so initiators read
//! element status again. A report of what the changer's own moves did
//! raises nothing: the initiator that moved knows.
//!
//! Without a library, or with a library that has no elements, the changer
//! still answers INQUIRY, MODE SENSE and the like, and fails the element
//! commands with NOT READY, MANUAL INTERVENTION REQUIRED (02/04/03).
//!
//! ## Config string
//!
//! Items separated by `,` or `;`, each `key=value`:
//!
//! | item | meaning | default |
//! |------|---------|---------|
//! | `serial=S` | unit serial number (VPD 0x80), up to 128 printable ASCII characters | the host's |
//! | `vendor=V` | T10 vendor identification, up to 8 characters | `TCMUWASM` |
//! | `product=P` | product identification, up to 16 characters | `VIRTUAL CHANGER` |
//!
//! Unknown keys fail `open`. Without `serial=` the changer reports the
//! identity the host assigns; with it, the NAA name is derived from the
//! configured serial. The changer takes no backing store.
//!
//! ## Not supported
//!
//! - Inverting cartridges (the INVERT bits of MOVE and EXCHANGE MEDIUM and
//!   POSITION TO ELEMENT): tape cartridges have one side.
//! - The picker as a source or destination (the host never parks a
//!   cartridge in it), and EXCHANGE MEDIUM with a drive as first or second
//!   destination (the host does not do it; two moves do). Page 1Fh says so.
//! - Alternate volume tags, SEND VOLUME TAG / REQUEST VOLUME ELEMENT
//!   ADDRESS, the ATTACHED commands (A7h, B4h), OPEN/CLOSE IMPORT/EXPORT
//!   ELEMENT, LOG SENSE and REPORT SUPPORTED OPERATION CODES.
//! - Saved mode pages; changed mode pages do not raise MODE PARAMETERS
//!   CHANGED for other initiators (the handler cannot tell them apart).
//!
//! ## State across instances
//!
//! The D_SENSE setting, the PREVENT state as the initiator last set it and
//! the pending unit attentions are saved through the SDK's state hooks
//! (format: version byte 1, D_SENSE, PREVENT, then the unit attention queue
//! as `UnitAttentions::save` writes it). The host keeps the library's own
//! lock across instances, so restoring does not call
//! [`Library::prevent_removal`] again.

mod config;
mod mode;
mod moves;
mod status;

#[cfg(test)]
mod tests;

use tcmu_guest_sdk::scsi::cdb::Inquiry;
use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type, version_descriptor};
use tcmu_guest_sdk::scsi::{opcode, respond};
use tcmu_guest_sdk::sense::{
    INVALID_COMMAND_OPERATION_CODE, LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED, MEDIUM_MAY_HAVE_CHANGED, Sense,
    SenseCode, SenseFormat, key,
};
use tcmu_guest_sdk::spc::{Spc, UnitAttentions};
use tcmu_guest_sdk::{
    Command, Completion, DeviceIdentity, DeviceType, Element, Handler, HandlerInfo, Library, LogLevel, Store, Transfer,
    log,
};

use config::Config;

/// The changer: one per device.
pub struct Changer {
    config: Config,
    /// Identity (the configured serial, else the host's), pending unit
    /// attentions and the sense format D_SENSE chose.
    spc: Spc,
    /// The host's library; `None` until `library_attached`.
    library: Option<Box<dyn Library>>,
    /// The library has elements. Fixed by the host's layout, so it is
    /// learnt once, in `library_attached`, and TEST UNIT READY costs no
    /// host call.
    ready: bool,
    /// PREVENT ALLOW MEDIUM REMOVAL as the initiator last set it.
    prevent: bool,
    /// What this changer's own recent moves left in the elements they
    /// touched (address, barcode, imported), newest last, so a report of
    /// those very changes raises no unit attention while a later change by
    /// the operator to the same element still does.
    own_changes: Vec<(u16, Option<String>, bool)>,
}

/// What a command implementation returns: its completion, or the sense to
/// fail with (encoded in the format the initiator chose).
type Outcome = Result<Completion, Sense>;

/// ILLEGAL REQUEST: INVALID ELEMENT ADDRESS (05/21/01).
pub(crate) const INVALID_ELEMENT_ADDRESS: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x21, 0x01);
/// ILLEGAL REQUEST: MEDIUM DESTINATION ELEMENT FULL (05/3B/0D).
pub(crate) const MEDIUM_DESTINATION_FULL: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x3B, 0x0D);
/// ILLEGAL REQUEST: MEDIUM SOURCE ELEMENT EMPTY (05/3B/0E).
pub(crate) const MEDIUM_SOURCE_EMPTY: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x3B, 0x0E);
/// HARDWARE ERROR: LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED
/// (04/04/03), for a drive that would not take or give a cartridge.
pub(crate) const DRIVE_FAILED: SenseCode = SenseCode::new(key::HARDWARE_ERROR, 0x04, 0x03);

/// Own changes remembered at most (one EXCHANGE touches three elements).
const MAX_OWN_CHANGES: usize = 16;

/// SMC-3, no version claimed.
const SMC_3: u16 = 0x0480;
/// The product revision level: the handler's major.minor version.
const REVISION: &str = concat!(env!("CARGO_PKG_VERSION_MAJOR"), ".", env!("CARGO_PKG_VERSION_MINOR"));
/// Byte 55 of standard INQUIRY data is vendor specific; Exabyte put a
/// "bar code reader present" flag in its bit 0, and mtx's `loaderinfo`
/// reads it there when the data is longer than 55 bytes.
const BARCODE_READER_BYTE: usize = 55;
const BARCODE_READER: u8 = 0x01;

impl Handler for Changer {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("changer", DeviceType::Changer, "SMC-3 medium changer over the host's tape library")
    }

    fn config_keys() -> Vec<tcmu_guest_sdk::ConfigKey> {
        config::keys()
    }

    /// The changer keeps no data of its own: a store, if the host grants
    /// one, goes unused.
    fn open(config: &str, identity: &DeviceIdentity, _store: Option<Box<dyn Store>>) -> Result<Self, String> {
        let config = Config::parse(config)?;
        let identity = identity.configured(config.serial.as_deref(), None);
        Ok(Changer {
            config,
            spc: Spc::new(identity),
            library: None,
            ready: false,
            prevent: false,
            own_changes: Vec::new(),
        })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        if let Err(attention) = self.spc.gate(cmd) {
            return attention;
        }
        self.execute(cmd, xfer).unwrap_or_else(|sense| self.spc.fail(sense))
    }

    /// Keep the library. Its lock is not touched: on a rebuilt instance the
    /// host still holds the lock the previous one set.
    fn library_attached(&mut self, library: Box<dyn Library>) {
        self.ready = !library.elements().is_empty();
        if !self.ready {
            log(LogLevel::Warn, "the library has no elements; element commands will fail NOT READY");
        }
        self.library = Some(library);
    }

    fn elements_changed(&mut self, addresses: &[u16]) {
        if addresses.is_empty() {
            return;
        }
        let now = self.library.as_ref().map(|library| library.elements()).unwrap_or_default();
        let content = |address: u16| {
            now.iter().find(|e| e.address == address).map(|e| (e.barcode.clone(), e.imported)).unwrap_or_default()
        };
        let mut external = false;
        for &address in addresses {
            let (barcode, imported) = content(address);
            match self.own_changes.iter().position(|(a, _, _)| *a == address) {
                // The element holds what this changer's own move left there.
                Some(i) if self.own_changes[i].1 == barcode && self.own_changes[i].2 == imported => {
                    self.own_changes.remove(i);
                }
                Some(i) => {
                    self.own_changes.remove(i);
                    external = true;
                }
                None => external = true,
            }
        }
        if external {
            log(LogLevel::Info, &format!("library elements {addresses:04x?} changed; reporting 06/28/00"));
            self.spc.unit_attentions.raise(MEDIUM_MAY_HAVE_CHANGED);
        }
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        out.extend([STATE_VERSION, u8::from(self.descriptor_sense()), u8::from(self.prevent)]);
        self.spc.unit_attentions.save(out);
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        let flag = |b: u8| match b {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("saved state has a flag byte {other}")),
        };
        match state {
            [] => Ok(()),
            [STATE_VERSION, d_sense, prevent, rest @ ..] => {
                let attentions = match UnitAttentions::restore(rest) {
                    Some((attentions, [])) => attentions,
                    _ => return Err(format!("saved state has {} malformed bytes of unit attentions", rest.len())),
                };
                let (d_sense, prevent) = (flag(*d_sense)?, flag(*prevent)?);
                self.set_descriptor_sense(d_sense);
                self.prevent = prevent;
                self.spc.unit_attentions = attentions;
                Ok(())
            }
            [version, ..] => Err(format!("saved state version {version} is not {STATE_VERSION}")),
        }
    }
}

/// Version of the bytes `save_state` writes: D_SENSE, PREVENT, then the
/// unit attention queue ([`UnitAttentions::save`]).
const STATE_VERSION: u8 = 1;

impl Changer {
    fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        use opcode::*;
        match cmd.opcode() {
            TEST_UNIT_READY => self.test_unit_ready(),
            REQUEST_SENSE => {
                let standing = self.not_ready().err();
                self.spc.request_sense(cmd, xfer, standing)
            }
            INQUIRY => self.inquiry(cmd, xfer),
            MODE_SENSE_6 | MODE_SENSE_10 => self.mode_sense(cmd, xfer),
            MODE_SELECT_6 | MODE_SELECT_10 => self.mode_select(cmd, xfer),
            PREVENT_ALLOW_MEDIUM_REMOVAL => self.prevent_allow_medium_removal(cmd),
            READ_ELEMENT_STATUS => self.read_element_status(cmd, xfer),
            MOVE_MEDIUM => self.move_medium(cmd),
            EXCHANGE_MEDIUM => self.exchange_medium(cmd),
            POSITION_TO_ELEMENT => self.position_to_element(cmd),
            INITIALIZE_ELEMENT_STATUS | INITIALIZE_ELEMENT_STATUS_WITH_RANGE | moves::INITIALIZE_WITH_RANGE_E7 => {
                self.initialize_element_status(cmd)
            }
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }

    /// D_SENSE of the control mode page: report descriptor-format sense.
    fn descriptor_sense(&self) -> bool {
        self.spc.sense_format == SenseFormat::Descriptor
    }

    fn set_descriptor_sense(&mut self, on: bool) {
        self.spc.sense_format = if on { SenseFormat::Descriptor } else { SenseFormat::Fixed };
    }

    /// NOT READY unless a library with elements is attached.
    fn not_ready(&self) -> Result<(), Sense> {
        if self.library.is_some() && self.ready {
            Ok(())
        } else {
            Err(LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED.into())
        }
    }

    /// Every element, in address order, for a command about elements; NOT
    /// READY without any.
    fn elements(&self) -> Result<Vec<Element>, Sense> {
        self.not_ready()?;
        let mut elements = self.library.as_ref().map(|library| library.elements()).unwrap_or_default();
        if elements.is_empty() {
            return Err(LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED.into());
        }
        // The contract promises address order; sorting keeps "the first
        // element at or after the starting address" right if a host slips.
        elements.sort_by_key(|e| e.address);
        Ok(elements)
    }

    /// TEST UNIT READY: ready with a library to work on.
    fn test_unit_ready(&self) -> Outcome {
        self.not_ready()?;
        Ok(Completion::good())
    }

    /// INQUIRY: the VPD pages come from the shared SPC layer; the standard
    /// data is built here because of the bar code reader flag.
    fn inquiry(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let mut standard =
            StandardInquiry::new(peripheral_type::CHANGER, &self.config.vendor, &self.config.product, REVISION);
        standard.version_descriptors = &[version_descriptor::SAM_5, version_descriptor::SPC_4, SMC_3];
        let request = Inquiry::parse(cmd.cdb)?;
        if request.evpd {
            return self.spc.inquiry(cmd, xfer, &standard, &[]);
        }
        let mut data = standard.to_bytes();
        if let Some(flags) = data.get_mut(BARCODE_READER_BYTE) {
            *flags |= BARCODE_READER;
        }
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }

    /// Remember what this changer's own move left in `addresses`.
    fn note_own_changes(&mut self, addresses: &[u16]) {
        let now = self.library.as_ref().map(|library| library.elements()).unwrap_or_default();
        for &address in addresses {
            self.own_changes.retain(|(a, _, _)| *a != address);
            let (barcode, imported) =
                now.iter().find(|e| e.address == address).map(|e| (e.barcode.clone(), e.imported)).unwrap_or_default();
            self.own_changes.push((address, barcode, imported));
        }
        let excess = self.own_changes.len().saturating_sub(MAX_OWN_CHANGES);
        self.own_changes.drain(..excess);
    }
}

tcmu_guest_sdk::export_handler!(Changer);
