//! SMC (medium changer) CDBs.

use super::{bit, fixed_len};
use crate::scsi::bytes::{get_be16, get_be24};
use crate::sense::Sense;

/// READ ELEMENT STATUS (B8h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadElementStatus {
    /// Report barcodes (VOLTAG).
    pub voltag: bool,
    /// Element type code: 0 all types, 1 transport, 2 storage, 3
    /// import/export, 4 data transfer.
    pub element_type: u8,
    /// First element address wanted.
    pub starting_address: u16,
    /// How many elements at most.
    pub count: u16,
    /// Report drive identifiers (DVCID).
    pub dvcid: bool,
    /// Answer from current data, without moving anything (CURDATA).
    pub current_data: bool,
    /// Allocation length (24 bits).
    pub allocation_length: u32,
}

impl ReadElementStatus {
    /// Decode READ ELEMENT STATUS; element type codes above 4 are invalid.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<12>(cdb)?;
        let element_type = c[1] & 0x0f;
        if element_type > 4 {
            return Err(Sense::invalid_cdb_field(1, Some(3)));
        }
        Ok(Self {
            voltag: bit(c[1], 4),
            element_type,
            starting_address: get_be16(&c[2..]),
            count: get_be16(&c[4..]),
            dvcid: bit(c[6], 0),
            current_data: bit(c[6], 1),
            allocation_length: get_be24(&c[7..]),
        })
    }
}

/// MOVE MEDIUM (A5h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveMedium {
    /// The picker to use (0: the default one).
    pub transport: u16,
    /// Source element.
    pub source: u16,
    /// Destination element.
    pub destination: u16,
    /// Turn the cartridge over (INVERT); no tape library can.
    pub invert: bool,
}

impl MoveMedium {
    /// Decode MOVE MEDIUM.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<12>(cdb)?;
        Ok(Self {
            transport: get_be16(&c[2..]),
            source: get_be16(&c[4..]),
            destination: get_be16(&c[6..]),
            invert: bit(c[10], 0),
        })
    }
}

/// EXCHANGE MEDIUM (A6h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeMedium {
    /// The picker to use.
    pub transport: u16,
    /// Source element.
    pub source: u16,
    /// Where the source's cartridge goes.
    pub first_destination: u16,
    /// Where the first destination's cartridge goes.
    pub second_destination: u16,
    /// INV1 or INV2.
    pub invert: bool,
}

impl ExchangeMedium {
    /// Decode EXCHANGE MEDIUM.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<12>(cdb)?;
        Ok(Self {
            transport: get_be16(&c[2..]),
            source: get_be16(&c[4..]),
            first_destination: get_be16(&c[6..]),
            second_destination: get_be16(&c[8..]),
            invert: c[10] & 0x03 != 0,
        })
    }
}

/// POSITION TO ELEMENT (2Bh on a changer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionToElement {
    /// The picker.
    pub transport: u16,
    /// The element to position in front of.
    pub destination: u16,
    /// INVERT.
    pub invert: bool,
}

impl PositionToElement {
    /// Decode POSITION TO ELEMENT.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let c = fixed_len::<10>(cdb)?;
        Ok(Self { transport: get_be16(&c[2..]), destination: get_be16(&c[4..]), invert: bit(c[8], 0) })
    }
}

/// INITIALIZE ELEMENT STATUS (07h) and INITIALIZE ELEMENT STATUS WITH
/// RANGE (37h in SMC-3; E7h, its vendor-specific code before, which mhvtl
/// and older libraries take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitializeElementStatus {
    /// The element range, for WITH RANGE with RANGE set: (first, count).
    pub range: Option<(u16, u16)>,
}

impl InitializeElementStatus {
    /// Decode INITIALIZE ELEMENT STATUS (6 bytes) or, for opcodes 37h and
    /// E7h, WITH RANGE (10 bytes).
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if matches!(cdb.first(), Some(&(0x37 | 0xe7))) {
            let c = fixed_len::<10>(cdb)?;
            let range = bit(c[1], 0).then(|| (get_be16(&c[2..]), get_be16(&c[6..])));
            return Ok(Self { range });
        }
        fixed_len::<6>(cdb)?;
        Ok(Self { range: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_element_status_as_mtx_and_ch_send_it() {
        // mtx: storage elements with VOLTAG from 0x400, 6 of them, 64 KiB.
        let res = ReadElementStatus::parse(&[0xb8, 0x12, 0x04, 0x00, 0, 6, 0, 0x01, 0x00, 0x00, 0, 0]).unwrap();
        assert_eq!(
            (res.voltag, res.element_type, res.starting_address, res.count, res.allocation_length),
            (true, 2, 0x400, 6, 0x10000)
        );
        // ch: one element with DVCID.
        let res = ReadElementStatus::parse(&[0xb8, 0x14, 0, 1, 0, 1, 1, 0, 0, 255, 0, 0]).unwrap();
        assert!(res.dvcid && res.element_type == 4);
        assert!(ReadElementStatus::parse(&[0xb8, 0x05, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0]).is_err());
    }

    #[test]
    fn moves_and_exchanges() {
        let m = MoveMedium::parse(&[0xa5, 0, 0, 0, 0x04, 0x01, 0, 0x01, 0, 0, 0, 0]).unwrap();
        assert_eq!((m.source, m.destination, m.invert), (0x401, 1, false));
        let x = ExchangeMedium::parse(&[0xa6, 0, 0, 0, 0, 1, 4, 0, 4, 1, 2, 0]).unwrap();
        assert_eq!((x.source, x.first_destination, x.second_destination, x.invert), (1, 0x400, 0x401, true));
        let p = PositionToElement::parse(&[0x2b, 0, 0, 0, 4, 2, 0, 0, 0, 0]).unwrap();
        assert_eq!(p.destination, 0x402);
        assert_eq!(InitializeElementStatus::parse(&[0x07, 0, 0, 0, 0, 0]).unwrap().range, None);
        let r = InitializeElementStatus::parse(&[0xe7, 1, 4, 0, 0, 0, 0, 3, 0, 0]).unwrap();
        assert_eq!(r.range, Some((0x400, 3)));
    }
}
