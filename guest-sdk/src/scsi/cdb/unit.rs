//! CDBs about the logical unit as a whole: READ CAPACITY, START STOP UNIT
//! and PREVENT ALLOW MEDIUM REMOVAL.

use super::{bit, fixed_len};
use crate::scsi::bytes::{get_be32, get_be64};
use crate::scsi::opcode::{self, service_action};
use crate::sense::{INVALID_COMMAND_OPERATION_CODE, Sense};

/// READ CAPACITY(10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCapacity10 {
    /// With `pmi`, the LBA after which the initiator wants the last block
    /// before a substantial delay; must be 0 without it.
    pub lba: u32,
    /// Partial medium indicator (obsolete in SBC-4).
    pub pmi: bool,
}

impl ReadCapacity10 {
    /// Decode READ CAPACITY(10); a non-zero LBA without PMI is invalid.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::READ_CAPACITY_10) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<10>(cdb)?;
        let decoded = Self { lba: get_be32(&c[2..]), pmi: bit(c[8], 0) };
        if !decoded.pmi && decoded.lba != 0 {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        Ok(decoded)
    }
}

/// READ CAPACITY(16), service action 0x10 of SERVICE ACTION IN(16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCapacity16 {
    /// See [`ReadCapacity10::lba`].
    pub lba: u64,
    /// Bytes of parameter data the initiator has room for.
    pub allocation_length: u32,
    /// Partial medium indicator (obsolete in SBC-4).
    pub pmi: bool,
}

impl ReadCapacity16 {
    /// Decode READ CAPACITY(16). Another service action of SERVICE ACTION
    /// IN(16) is INVALID FIELD IN CDB, pointing at the service action.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::SERVICE_ACTION_IN_16) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<16>(cdb)?;
        if opcode::service_action(c) != Some(service_action::READ_CAPACITY_16) {
            return Err(Sense::invalid_cdb_field(1, Some(4)));
        }
        let decoded = Self { lba: get_be64(&c[2..]), allocation_length: get_be32(&c[10..]), pmi: bit(c[14], 0) };
        if !decoded.pmi && decoded.lba != 0 {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        Ok(decoded)
    }
}

/// START STOP UNIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartStopUnit {
    /// Status may be returned before the operation completes.
    pub immed: bool,
    /// POWER CONDITION MODIFIER (byte 3, bits 3-0).
    pub power_condition_modifier: u8,
    /// POWER CONDITION (byte 4, bits 7-4); 0 means "process START and LOEJ".
    pub power_condition: u8,
    /// When stopping, do not flush the write cache first.
    pub no_flush: bool,
    /// Load (with `start`) or eject (without) the medium.
    pub load_eject: bool,
    /// Start (true) or stop (false) the logical unit.
    pub start: bool,
}

impl StartStopUnit {
    /// Decode START STOP UNIT.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::START_STOP_UNIT) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<6>(cdb)?;
        Ok(Self {
            immed: bit(c[1], 0),
            power_condition_modifier: c[3] & 0x0f,
            power_condition: c[4] >> 4,
            no_flush: bit(c[4], 2),
            load_eject: bit(c[4], 1),
            start: bit(c[4], 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sense::FieldPointer;

    #[test]
    fn read_capacity_lba_requires_pmi() {
        assert_eq!(
            ReadCapacity10::parse(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            ReadCapacity10 { lba: 0, pmi: false }
        );
        let err = ReadCapacity10::parse(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(err.unwrap_err().field_pointer, Some(FieldPointer::cdb(2, None)));
        assert!(ReadCapacity10::parse(&[opcode::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 1, 0]).is_ok());
    }

    #[test]
    fn read_capacity_16_service_action() {
        let mut c = [0u8; 16];
        c[0] = opcode::SERVICE_ACTION_IN_16;
        c[1] = 0x10;
        c[13] = 32;
        assert_eq!(ReadCapacity16::parse(&c).unwrap(), ReadCapacity16 { lba: 0, allocation_length: 32, pmi: false });
        c[1] = 0x12; // GET LBA STATUS
        assert_eq!(ReadCapacity16::parse(&c).unwrap_err().field_pointer, Some(FieldPointer::cdb(1, Some(4))));
    }

    #[test]
    fn start_stop_unit_fields() {
        let ssu = StartStopUnit::parse(&[opcode::START_STOP_UNIT, 1, 0, 0x0a, 0x37, 0]).unwrap();
        assert_eq!(
            ssu,
            StartStopUnit {
                immed: true,
                power_condition_modifier: 0x0a,
                power_condition: 3,
                no_flush: true,
                load_eject: true,
                start: true,
            }
        );
    }
}
