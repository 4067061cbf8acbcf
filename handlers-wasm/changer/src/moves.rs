//! The commands that move (or would move) cartridges: MOVE MEDIUM,
//! EXCHANGE MEDIUM, POSITION TO ELEMENT, INITIALIZE ELEMENT STATUS [WITH
//! RANGE] and PREVENT ALLOW MEDIUM REMOVAL. The host checks and carries out
//! moves; the handler checks the CDB, names the picker, and turns the
//! host's [`MoveError`]s into sense data pointing at the CDB field at fault.

use tcmu_guest_sdk::scsi::cdb::PreventAllowMediumRemoval;
use tcmu_guest_sdk::scsi::cdb::changer::{ExchangeMedium, InitializeElementStatus, MoveMedium, PositionToElement};
use tcmu_guest_sdk::sense::{
    FieldPointer, LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED, MEDIUM_REMOVAL_PREVENTED, Sense,
};
use tcmu_guest_sdk::{Command, Completion, Element, ElementKind, Library, LogLevel, MoveError, log};

use crate::mode::exchange_partner;
use crate::{Changer, DRIVE_FAILED, INVALID_ELEMENT_ADDRESS, MEDIUM_DESTINATION_FULL, MEDIUM_SOURCE_EMPTY, Outcome};

/// INITIALIZE ELEMENT STATUS WITH RANGE as mhvtl and older libraries number
/// it (SMC-3 says 37h); both have the same 10-byte layout.
pub(crate) const INITIALIZE_WITH_RANGE_E7: u8 = 0xE7;

/// CDB byte offsets of the element address fields, for field pointers.
const TRANSPORT_FIELD: u16 = 2;
const SOURCE_FIELD: u16 = 4;

/// INVALID ELEMENT ADDRESS pointing at the CDB field at `byte`.
fn invalid_element(byte: u16) -> Sense {
    Sense::from(INVALID_ELEMENT_ADDRESS).with_field_pointer(FieldPointer::cdb(byte, None))
}

/// The element at `address`, or INVALID ELEMENT ADDRESS at `field`.
fn element(elements: &[Element], address: u16, field: u16) -> Result<&Element, Sense> {
    elements.iter().find(|e| e.address == address).ok_or_else(|| invalid_element(field))
}

/// The picker named in the CDB: 0 is the default one, anything else must
/// be a medium transport element.
fn check_transport(elements: &[Element], transport: u16) -> Result<(), Sense> {
    let is_picker = |e: &Element| e.address == transport && e.kind == ElementKind::Transport;
    if transport == 0 || elements.iter().any(is_picker) { Ok(()) } else { Err(invalid_element(TRANSPORT_FIELD)) }
}

/// The sense for a move the host refused. `fields` are the element
/// addresses of the CDB with their byte offsets, for the field pointer of
/// an invalid one.
fn move_failed(error: MoveError, fields: &[(u16, u16)]) -> Sense {
    match error {
        MoveError::SourceEmpty => MEDIUM_SOURCE_EMPTY.into(),
        MoveError::DestinationFull => MEDIUM_DESTINATION_FULL.into(),
        MoveError::InvalidElement(address) => match fields.iter().find(|(a, _)| *a == address) {
            Some(&(_, byte)) => invalid_element(byte),
            None => INVALID_ELEMENT_ADDRESS.into(),
        },
        MoveError::RemovalPrevented => MEDIUM_REMOVAL_PREVENTED.into(),
        // HARDWARE ERROR, as mhvtl answers a failed load. The request was
        // valid (ILLEGAL REQUEST would tell the initiator to fix it) and the
        // changer as a whole stays ready (NOT READY would have it wait for
        // readiness and retry): the drive failed, and someone has to look.
        // The reason goes to the host's log.
        MoveError::DriveFailed(why) => {
            log(LogLevel::Error, &format!("the drive failed the move: {why}"));
            DRIVE_FAILED.into()
        }
    }
}

impl Changer {
    /// The library, to move with; NOT READY without one.
    fn library_mut(&mut self) -> Result<&mut dyn Library, Sense> {
        self.not_ready()?;
        match self.library.as_mut() {
            Some(library) => Ok(library.as_mut()),
            None => Err(LUN_NOT_READY_MANUAL_INTERVENTION_REQUIRED.into()),
        }
    }

    /// MOVE MEDIUM: slot, mail slot or drive to slot, mail slot or drive.
    /// Into a drive the host loads the cartridge; out of one it unloads it
    /// first, whether or not the initiator already did.
    pub(crate) fn move_medium(&mut self, cmd: &Command<'_>) -> Outcome {
        let request = MoveMedium::parse(cmd.cdb)?;
        if request.invert {
            return Err(Sense::invalid_cdb_field(10, Some(0)));
        }
        let elements = self.elements()?;
        check_transport(&elements, request.transport)?;
        let (source, destination) = (request.source, request.destination);
        self.library_mut()?
            .move_medium(source, destination)
            .map_err(|e| move_failed(e, &[(source, SOURCE_FIELD), (destination, 6)]))?;
        self.note_own_changes(&[source, destination]);
        Ok(Completion::good())
    }

    /// EXCHANGE MEDIUM: the source's cartridge to the first destination,
    /// and the first destination's to the second (which may be the source:
    /// a swap).
    pub(crate) fn exchange_medium(&mut self, cmd: &Command<'_>) -> Outcome {
        let request = ExchangeMedium::parse(cmd.cdb)?;
        if request.invert {
            // INV2 is bit 1 of byte 10, INV1 bit 0; point at the higher one set.
            let bit = if cmd.cdb.get(10).is_some_and(|b| b & 0x02 != 0) { 1 } else { 0 };
            return Err(Sense::invalid_cdb_field(10, Some(bit)));
        }
        let elements = self.elements()?;
        check_transport(&elements, request.transport)?;
        let (source, first, second) = (request.source, request.first_destination, request.second_destination);
        let fields = [(source, SOURCE_FIELD), (first, 6), (second, 8)];
        for &(address, byte) in &fields {
            element(&elements, address, byte)?;
        }
        for &(address, byte) in &fields[1..] {
            // Page 1Fh offers no exchange with these; a valid element the
            // command cannot use is an invalid field, not an invalid address.
            if !element(&elements, address, byte).is_ok_and(|e| exchange_partner(e.kind)) {
                return Err(Sense::invalid_cdb_field(byte, None));
            }
        }
        self.library_mut()?.exchange_medium(source, first, second).map_err(|e| move_failed(e, &fields))?;
        self.note_own_changes(&[source, first, second]);
        Ok(Completion::good())
    }

    /// POSITION TO ELEMENT: there is no picker to move about, so a valid
    /// request is done as soon as it is checked.
    pub(crate) fn position_to_element(&self, cmd: &Command<'_>) -> Outcome {
        let request = PositionToElement::parse(cmd.cdb)?;
        if request.invert {
            return Err(Sense::invalid_cdb_field(8, Some(0)));
        }
        let elements = self.elements()?;
        check_transport(&elements, request.transport)?;
        element(&elements, request.destination, 4)?;
        Ok(Completion::good())
    }

    /// INITIALIZE ELEMENT STATUS and WITH RANGE: the host always knows what
    /// is where (there is nothing to scan), so a valid request succeeds at
    /// once. A range must start at or before the last element.
    pub(crate) fn initialize_element_status(&self, cmd: &Command<'_>) -> Outcome {
        let request = InitializeElementStatus::parse(cmd.cdb)?;
        let elements = self.elements()?;
        if let Some((first, _count)) = request.range
            && !elements.iter().any(|e| e.address >= first)
        {
            return Err(invalid_element(2));
        }
        Ok(Completion::good())
    }

    /// PREVENT ALLOW MEDIUM REMOVAL: lock or unlock the mail slots against
    /// the operator. Moves by the picker go on; the host may refuse those
    /// that would put a cartridge where the operator could take it
    /// (MEDIUM REMOVAL PREVENTED).
    pub(crate) fn prevent_allow_medium_removal(&mut self, cmd: &Command<'_>) -> Outcome {
        let request = PreventAllowMediumRemoval::parse(cmd.cdb)?;
        self.prevent = request.prevent;
        if let Some(library) = self.library.as_mut() {
            library.prevent_removal(request.prevent);
        }
        Ok(Completion::good())
    }
}
