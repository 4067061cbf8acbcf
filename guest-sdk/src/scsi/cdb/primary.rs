//! SPC (primary command) CDBs.

use super::{bit, fixed_len};
use crate::scsi::bytes::{get_be16, get_be32};
use crate::scsi::opcode::{self, service_action};
use crate::sense::{INVALID_COMMAND_OPERATION_CODE, Sense};

/// INQUIRY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inquiry {
    /// Return the vital product data page `page_code` rather than the
    /// standard INQUIRY data.
    pub evpd: bool,
    /// The VPD page wanted (always 0 without `evpd`).
    pub page_code: u8,
    /// Bytes the initiator has room for.
    pub allocation_length: u16,
}

impl Inquiry {
    /// Decode INQUIRY. The obsolete CMDDT bit, and a page code without
    /// EVPD, are INVALID FIELD IN CDB.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::INQUIRY) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<6>(cdb)?;
        if bit(c[1], 1) {
            return Err(Sense::invalid_cdb_field(1, Some(1)));
        }
        let evpd = bit(c[1], 0);
        if !evpd && c[2] != 0 {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        Ok(Self { evpd, page_code: c[2], allocation_length: get_be16(&c[3..]) })
    }
}

/// Which of the 6- and 10-byte MODE SENSE / MODE SELECT forms a command
/// is; it decides the mode parameter header layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeForm {
    /// MODE SENSE(6) / MODE SELECT(6): 4-byte header, short block descriptors.
    Six,
    /// MODE SENSE(10) / MODE SELECT(10): 8-byte header, long block
    /// descriptors allowed.
    Ten,
}

/// Which values MODE SENSE returns (the PC field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageControl {
    /// The values in effect.
    Current,
    /// A mask of the bits MODE SELECT may change.
    Changeable,
    /// The power-on values.
    Default,
    /// The values saved in non-volatile storage.
    Saved,
}

/// MODE SENSE (6 or 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSense {
    /// Which form the CDB had.
    pub form: ModeForm,
    /// Disable block descriptors: return none.
    pub dbd: bool,
    /// Long LBA accepted: a 16-byte block descriptor may be returned
    /// (MODE SENSE(10) only).
    pub llbaa: bool,
    /// Current, changeable, default or saved values.
    pub page_control: PageControl,
    /// The page wanted; 0x3F is all pages.
    pub page_code: u8,
    /// The subpage wanted; 0xFF is all subpages.
    pub subpage_code: u8,
    /// Bytes the initiator has room for.
    pub allocation_length: u16,
}

impl ModeSense {
    /// Decode MODE SENSE(6/10).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let (form, c, allocation_length): (_, &[u8], _) = match cdb.first().copied() {
            Some(opcode::MODE_SENSE_6) => {
                let c = fixed_len::<6>(cdb)?;
                (ModeForm::Six, c, u16::from(c[4]))
            }
            Some(opcode::MODE_SENSE_10) => {
                let c = fixed_len::<10>(cdb)?;
                (ModeForm::Ten, c, get_be16(&c[7..]))
            }
            _ => return Err(INVALID_COMMAND_OPERATION_CODE.into()),
        };
        let page_control = match c[2] >> 6 {
            0 => PageControl::Current,
            1 => PageControl::Changeable,
            2 => PageControl::Default,
            _ => PageControl::Saved,
        };
        Ok(Self {
            form,
            dbd: bit(c[1], 3),
            llbaa: form == ModeForm::Ten && bit(c[1], 4),
            page_control,
            page_code: c[2] & 0x3f,
            subpage_code: c[3],
            allocation_length,
        })
    }
}

/// MODE SELECT (6 or 10). The pages arrive in the parameter list; see
/// [`crate::scsi::mode::parse_mode_parameters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSelect {
    /// Which form the CDB had.
    pub form: ModeForm,
    /// Page format: the pages follow the standard page layout (when clear
    /// their layout is vendor specific).
    pub page_format: bool,
    /// Save pages: also store the new values in non-volatile storage.
    pub save_pages: bool,
    /// Bytes of parameter list (data-out).
    pub parameter_list_length: u16,
}

impl ModeSelect {
    /// Decode MODE SELECT(6/10).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let (form, byte1, parameter_list_length) = match cdb.first().copied() {
            Some(opcode::MODE_SELECT_6) => {
                let c = fixed_len::<6>(cdb)?;
                (ModeForm::Six, c[1], u16::from(c[4]))
            }
            Some(opcode::MODE_SELECT_10) => {
                let c = fixed_len::<10>(cdb)?;
                (ModeForm::Ten, c[1], get_be16(&c[7..]))
            }
            _ => return Err(INVALID_COMMAND_OPERATION_CODE.into()),
        };
        Ok(Self { form, page_format: bit(byte1, 4), save_pages: bit(byte1, 0), parameter_list_length })
    }
}

/// REQUEST SENSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSense {
    /// Return descriptor-format sense data.
    pub descriptor_format: bool,
    /// Bytes the initiator has room for.
    pub allocation_length: u8,
}

impl RequestSense {
    /// Decode REQUEST SENSE.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::REQUEST_SENSE) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<6>(cdb)?;
        Ok(Self { descriptor_format: bit(c[1], 0), allocation_length: c[4] })
    }
}

/// What REPORT SUPPORTED OPERATION CODES asks about (the REPORTING OPTIONS
/// field with the requested opcode and service action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportingOptions {
    /// 000b: every supported command.
    All,
    /// 001b: one operation code that has no service actions.
    Opcode(u8),
    /// 010b: one operation code with one of its service actions.
    OpcodeServiceAction(u8, u16),
    /// 011b: one operation code, with the service action if the operation
    /// code has service actions.
    OpcodeMaybeServiceAction(u8, u16),
}

/// REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN, service action 0x0C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSupportedOperationCodes {
    /// RCTD: include command timeouts descriptors.
    pub return_timeouts: bool,
    /// Which commands to report.
    pub options: ReportingOptions,
    /// Bytes the initiator has room for.
    pub allocation_length: u32,
}

impl ReportSupportedOperationCodes {
    /// Decode REPORT SUPPORTED OPERATION CODES. Another MAINTENANCE IN
    /// service action, or a reserved reporting option, is INVALID FIELD IN
    /// CDB.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::MAINTENANCE_IN) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<12>(cdb)?;
        if opcode::service_action(c) != Some(service_action::REPORT_SUPPORTED_OPERATION_CODES) {
            return Err(Sense::invalid_cdb_field(1, Some(4)));
        }
        let (requested_opcode, requested_sa) = (c[3], get_be16(&c[4..]));
        let options = match c[2] & 0x07 {
            0b000 => ReportingOptions::All,
            0b001 => ReportingOptions::Opcode(requested_opcode),
            0b010 => ReportingOptions::OpcodeServiceAction(requested_opcode, requested_sa),
            0b011 => ReportingOptions::OpcodeMaybeServiceAction(requested_opcode, requested_sa),
            _ => return Err(Sense::invalid_cdb_field(2, Some(2))),
        };
        Ok(Self { return_timeouts: bit(c[2], 7), options, allocation_length: get_be32(&c[6..]) })
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreventAllowMediumRemoval {
    /// Prevent (true) or allow (false) medium removal.
    pub prevent: bool,
}

impl PreventAllowMediumRemoval {
    /// Decode PREVENT ALLOW MEDIUM REMOVAL. The obsolete PREVENT values 10b
    /// and 11b are INVALID FIELD IN CDB.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::PREVENT_ALLOW_MEDIUM_REMOVAL) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<6>(cdb)?;
        match c[4] & 0b11 {
            0b00 => Ok(Self { prevent: false }),
            0b01 => Ok(Self { prevent: true }),
            _ => Err(Sense::invalid_cdb_field(4, Some(1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sense::FieldPointer;

    #[test]
    fn inquiry_fields_and_errors() {
        assert_eq!(
            Inquiry::parse(&[opcode::INQUIRY, 1, 0x83, 0x01, 0x00, 0]).unwrap(),
            Inquiry { evpd: true, page_code: 0x83, allocation_length: 256 }
        );
        assert_eq!(
            Inquiry::parse(&[opcode::INQUIRY, 0, 0x80, 0, 36, 0]).unwrap_err().field_pointer,
            Some(FieldPointer::cdb(2, None))
        );
        assert_eq!(
            Inquiry::parse(&[opcode::INQUIRY, 2, 0, 0, 36, 0]).unwrap_err().field_pointer,
            Some(FieldPointer::cdb(1, Some(1)))
        );
    }

    #[test]
    fn mode_sense_6_and_10() {
        let ms = ModeSense::parse(&[opcode::MODE_SENSE_6, 0x18, 0x48, 0, 0xfc, 0]).unwrap();
        assert_eq!(
            ms,
            ModeSense {
                form: ModeForm::Six,
                dbd: true,
                llbaa: false, // MODE SENSE(6) has no LLBAA bit
                page_control: PageControl::Changeable,
                page_code: 0x08,
                subpage_code: 0,
                allocation_length: 0xfc,
            }
        );
        let ms = ModeSense::parse(&[opcode::MODE_SENSE_10, 0x10, 0xff, 0xff, 0, 0, 0, 0x10, 0, 0]).unwrap();
        assert_eq!(ms.form, ModeForm::Ten);
        assert!(ms.llbaa && !ms.dbd);
        assert_eq!(ms.page_control, PageControl::Saved);
        assert_eq!((ms.page_code, ms.subpage_code, ms.allocation_length), (0x3f, 0xff, 0x1000));
    }

    #[test]
    fn mode_select_6_and_10() {
        assert_eq!(
            ModeSelect::parse(&[opcode::MODE_SELECT_6, 0x11, 0, 0, 24, 0]).unwrap(),
            ModeSelect { form: ModeForm::Six, page_format: true, save_pages: true, parameter_list_length: 24 }
        );
        let ms = ModeSelect::parse(&[opcode::MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 1, 2, 0]).unwrap();
        assert_eq!((ms.form, ms.save_pages, ms.parameter_list_length), (ModeForm::Ten, false, 0x102));
    }

    #[test]
    fn request_sense_fields() {
        assert_eq!(
            RequestSense::parse(&[opcode::REQUEST_SENSE, 1, 0, 0, 252, 0]).unwrap(),
            RequestSense { descriptor_format: true, allocation_length: 252 }
        );
    }

    #[test]
    fn report_supported_operation_codes_options() {
        let cdb = |options: u8| [opcode::MAINTENANCE_IN, 0x0c, options, 0x9e, 0, 0x10, 0, 0, 2, 0, 0, 0];
        let all = ReportSupportedOperationCodes::parse(&cdb(0x80)).unwrap();
        assert_eq!(all.options, ReportingOptions::All);
        assert!(all.return_timeouts);
        assert_eq!(all.allocation_length, 512);
        assert_eq!(ReportSupportedOperationCodes::parse(&cdb(1)).unwrap().options, ReportingOptions::Opcode(0x9e));
        assert_eq!(
            ReportSupportedOperationCodes::parse(&cdb(2)).unwrap().options,
            ReportingOptions::OpcodeServiceAction(0x9e, 0x10)
        );
        assert_eq!(
            ReportSupportedOperationCodes::parse(&cdb(3)).unwrap().options,
            ReportingOptions::OpcodeMaybeServiceAction(0x9e, 0x10)
        );
        assert_eq!(
            ReportSupportedOperationCodes::parse(&cdb(4)).unwrap_err().field_pointer,
            Some(FieldPointer::cdb(2, Some(2)))
        );
        let mut other_sa = cdb(0);
        other_sa[1] = 0x0a; // REPORT TARGET PORT GROUPS
        assert_eq!(
            ReportSupportedOperationCodes::parse(&other_sa).unwrap_err().field_pointer,
            Some(FieldPointer::cdb(1, Some(4)))
        );
    }

    #[test]
    fn prevent_allow_values() {
        let cdb = |prevent| [opcode::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, prevent, 0];
        assert!(!PreventAllowMediumRemoval::parse(&cdb(0)).unwrap().prevent);
        assert!(PreventAllowMediumRemoval::parse(&cdb(1)).unwrap().prevent);
        assert!(PreventAllowMediumRemoval::parse(&cdb(2)).is_err());
    }
}
