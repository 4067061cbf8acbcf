//! MODE SENSE and MODE SELECT: the control page (D_SENSE changeable) and
//! the three SMC pages, element address assignment (1Dh), transport
//! geometry (1Eh) and device capabilities (1Fh), which describe the library
//! and change with nothing an initiator sends. Nothing is saved.
//!
//! A changer has no block descriptors. MODE SELECT may send the SMC pages
//! back unchanged (some initiators echo every page they read); a changed
//! bit in them, or any other page, is INVALID FIELD IN PARAMETER LIST.

use tcmu_guest_sdk::scsi::bytes::put_be16;
use tcmu_guest_sdk::scsi::cdb::{ModeForm, ModeSelect, ModeSense};
use tcmu_guest_sdk::scsi::mode::{
    ControlPage, ModeHeader, ModePage, mode_sense_data, page_code, parse_mode_parameters,
};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{INTERNAL_TARGET_FAILURE, Sense};
use tcmu_guest_sdk::{Command, Completion, Element, ElementKind, LogLevel, Transfer, log};

use crate::{Changer, Outcome};

/// Element address assignment page.
pub(crate) const ELEMENT_ADDRESS_ASSIGNMENT: u8 = 0x1D;
/// Transport geometry parameters page.
pub(crate) const TRANSPORT_GEOMETRY: u8 = 0x1E;
/// Device capabilities page.
pub(crate) const DEVICE_CAPABILITIES: u8 = 0x1F;

/// Element type bits of the device capabilities page: which element types
/// can store cartridges (byte 2), can be moved to (bytes 4-7, one byte per
/// source type) and can be exchanged with (bytes 12-15).
mod to {
    pub const TRANSPORT: u8 = 0x01;
    pub const STORAGE: u8 = 0x02;
    pub const IMPORT_EXPORT: u8 = 0x04;
    pub const DATA_TRANSFER: u8 = 0x08;
}

/// Slots, mail slots and drives: everything a cartridge can rest in and be
/// moved between. The host never parks a cartridge in the picker, so it is
/// neither source nor destination.
const HOLDERS: u8 = to::STORAGE | to::IMPORT_EXPORT | to::DATA_TRANSFER;
/// First destinations of EXCHANGE MEDIUM: the host exchanges through slots
/// and mail slots only (with a drive it takes two moves), from any source.
const EXCHANGE_PARTNERS: u8 = to::STORAGE | to::IMPORT_EXPORT;
/// Byte 3 is reserved in SMC-3, but SMC-2 era software reads it: mtx's
/// `loaderinfo` shows bit 0 as "SCSI Media Changer (rev 2)" and bit 1 as
/// "Volume Tag Reader Present" (mhvtl sets both, and bit 2 "auto clean",
/// which this library does not do).
const SMC2_VOLUME_TAG_READER: u8 = 0x03;

/// Power-on values.
const DEFAULT_CONTROL: ControlPage = ControlPage { descriptor_sense: false };

impl Changer {
    fn control_page(&self) -> ModePage {
        ModePage {
            code: page_code::CONTROL,
            subpage: 0,
            current: ControlPage { descriptor_sense: self.descriptor_sense() }.to_parameters(),
            changeable: ControlPage { descriptor_sense: true }.to_parameters(),
            default: DEFAULT_CONTROL.to_parameters(),
        }
    }

    /// Every page, in page code order. The SMC pages describe the library
    /// as it is; without one they describe an empty library.
    fn pages(&self) -> Vec<ModePage> {
        let elements = self.library.as_ref().map(|library| library.elements()).unwrap_or_default();
        vec![
            self.control_page(),
            ModePage::fixed(ELEMENT_ADDRESS_ASSIGNMENT, 0, element_address_assignment(&elements)),
            ModePage::fixed(TRANSPORT_GEOMETRY, 0, transport_geometry(&elements)),
            ModePage::fixed(DEVICE_CAPABILITIES, 0, device_capabilities()),
        ]
    }

    /// MODE SENSE(6/10). DBD changes nothing: there is no block descriptor.
    pub(crate) fn mode_sense(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ModeSense::parse(cmd.cdb)?;
        let data = mode_sense_data(&request, ModeHeader::default(), None, &self.pages())?;
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }

    /// MODE SELECT(6/10). A clear PF bit means vendor-specific page layout;
    /// this device's is the standard one, so PF is not checked. Every page
    /// is checked before any takes effect.
    pub(crate) fn mode_select(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let select = ModeSelect::parse(cmd.cdb)?;
        if select.save_pages {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let list_len = u32::from(select.parameter_list_length).min(cmd.data_out_len);
        let list = xfer.read_data_out(0, list_len).map_err(|e| {
            log(LogLevel::Error, &format!("data-out transfer failed: {e}"));
            Sense::from(INTERNAL_TARGET_FAILURE)
        })?;
        let parameters = parse_mode_parameters(&list, select.form)?;
        if !parameters.block_descriptors.is_empty() {
            // Point at BLOCK DESCRIPTOR LENGTH: a changer has none.
            let length_field = match select.form {
                ModeForm::Six => 3,
                ModeForm::Ten => 6,
            };
            return Err(Sense::invalid_parameter_field(length_field, None));
        }

        let pages = self.pages();
        let mut control = ControlPage::from_parameters(&pages[0].current);
        for sent in &parameters.pages {
            let page = pages.iter().find(|p| p.code == sent.code && p.subpage == sent.subpage);
            let Some(page) = page else {
                let at = u16::try_from(sent.offset).unwrap_or(u16::MAX);
                return Err(Sense::invalid_parameter_field(at, Some(5)));
            };
            // The SMC pages have no changeable bits: `apply` accepts them
            // only unchanged.
            let values = page.apply(sent)?;
            if page.code == page_code::CONTROL {
                control = ControlPage::from_parameters(&values);
            }
        }
        self.set_descriptor_sense(control.descriptor_sense);
        Ok(Completion::good())
    }
}

/// Page 1Dh parameters: for the picker, the slots, the mail slots and the
/// drives in turn, the first address and how many there are (zero and zero
/// for a type the library lacks). Addresses of a type are expected to be
/// consecutive, as SMC assumes and the host lays them out.
pub(crate) fn element_address_assignment(elements: &[Element]) -> Vec<u8> {
    let mut p = vec![0u8; 18];
    let types = [ElementKind::Transport, ElementKind::Storage, ElementKind::ImportExport, ElementKind::DataTransfer];
    for (i, kind) in types.into_iter().enumerate() {
        let of_kind = || elements.iter().filter(move |e| e.kind == kind);
        let first = of_kind().map(|e| e.address).min().unwrap_or(0);
        let count = u16::try_from(of_kind().count()).unwrap_or(u16::MAX);
        put_be16(&mut p[4 * i..], first);
        put_be16(&mut p[4 * i + 2..], count);
    }
    p
}

/// Most transport geometry descriptors a page_0 page holds (two bytes each).
const MAX_TRANSPORTS: usize = 127;

/// Page 1Eh parameters: one descriptor per picker, none of which rotates
/// cartridges (ROTATE clear), each the next member of the one transport
/// set. At least one, so readers that expect a descriptor find one.
pub(crate) fn transport_geometry(elements: &[Element]) -> Vec<u8> {
    let pickers = elements.iter().filter(|e| e.kind == ElementKind::Transport).count();
    let pickers = pickers.clamp(1, MAX_TRANSPORTS);
    (0..pickers).flat_map(|member| [0, member as u8]).collect()
}

/// Page 1Fh parameters (bytes 2-19 of the page).
pub(crate) fn device_capabilities() -> Vec<u8> {
    let mut p = vec![0u8; 18];
    p[0] = HOLDERS; // byte 2: STORDT, STORI/E, STORST (not STORMT)
    p[1] = SMC2_VOLUME_TAG_READER; // byte 3
    // Bytes 4-7, moves from MT, ST, I/E and DT: none from the picker,
    // from every other element to every other kind.
    p[2..6].copy_from_slice(&[0, HOLDERS, HOLDERS, HOLDERS]);
    // Bytes 12-15, exchanges with MT, ST, I/E and DT as the source.
    p[10..14].copy_from_slice(&[0, EXCHANGE_PARTNERS, EXCHANGE_PARTNERS, EXCHANGE_PARTNERS]);
    p
}

/// Whether EXCHANGE MEDIUM may take `kind` as a first or second
/// destination (page 1Fh bytes 12-15 say the same).
pub(crate) fn exchange_partner(kind: ElementKind) -> bool {
    let bit = match kind {
        ElementKind::Transport => to::TRANSPORT,
        ElementKind::Storage => to::STORAGE,
        ElementKind::ImportExport => to::IMPORT_EXPORT,
        ElementKind::DataTransfer => to::DATA_TRANSFER,
    };
    EXCHANGE_PARTNERS & bit != 0
}
