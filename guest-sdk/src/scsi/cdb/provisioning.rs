//! SBC provisioning CDBs: WRITE SAME and UNMAP, with UNMAP's parameter list.

use super::{bit, fixed_len, protect_field};
use crate::scsi::bytes::{get_be16, get_be32, get_be64};
use crate::scsi::opcode;
use crate::sense::{INVALID_COMMAND_OPERATION_CODE, PARAMETER_LIST_LENGTH_ERROR, Sense};

/// WRITE SAME (10 or 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSame {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks; 0 means "to the end of the medium" unless
    /// the device sets WSNZ in the block limits VPD page.
    pub blocks: u32,
    /// The initiator allows unmapping the blocks instead of writing them,
    /// provided they then read back as the data it sent.
    pub unmap: bool,
    /// Anchor the blocks (only meaningful with `unmap`).
    pub anchor: bool,
    /// No data-out buffer: the block to write is all zeroes (WRITE SAME(16)
    /// only).
    pub ndob: bool,
    /// WRPROTECT.
    pub protect: u8,
}

impl WriteSame {
    /// Decode WRITE SAME(10/16). WRITE SAME(10)'s obsolete PBDATA and LBDATA
    /// bits are refused: nothing implements them any more.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        let (byte1, lba, blocks, ndob) = match cdb.first().copied() {
            Some(opcode::WRITE_SAME_10) => {
                let c = fixed_len::<10>(cdb)?;
                if c[1] & 0b110 != 0 {
                    let culprit = if bit(c[1], 2) { 2 } else { 1 };
                    return Err(Sense::invalid_cdb_field(1, Some(culprit)));
                }
                (c[1], get_be32(&c[2..]).into(), get_be16(&c[7..]).into(), false)
            }
            Some(opcode::WRITE_SAME_16) => {
                let c = fixed_len::<16>(cdb)?;
                (c[1], get_be64(&c[2..]), get_be32(&c[10..]), bit(c[1], 0))
            }
            _ => return Err(INVALID_COMMAND_OPERATION_CODE.into()),
        };
        Ok(Self { lba, blocks, unmap: bit(byte1, 3), anchor: bit(byte1, 4), ndob, protect: protect_field(byte1) })
    }
}

/// UNMAP. Its block ranges arrive in the parameter list; see
/// [`parse_unmap_parameters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmap {
    /// Anchor the blocks instead of deallocating them.
    pub anchor: bool,
    /// Bytes of parameter list (data-out).
    pub parameter_list_length: u16,
}

impl Unmap {
    /// Decode UNMAP.
    pub fn parse(cdb: &[u8]) -> Result<Self, Sense> {
        if cdb.first() != Some(&opcode::UNMAP) {
            return Err(INVALID_COMMAND_OPERATION_CODE.into());
        }
        let c = fixed_len::<10>(cdb)?;
        Ok(Self { anchor: bit(c[1], 0), parameter_list_length: get_be16(&c[7..]) })
    }
}

/// One range of an UNMAP parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmapDescriptor {
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks; 0 is allowed and unmaps nothing.
    pub blocks: u32,
}

/// Offset of the first block descriptor in an UNMAP parameter list.
const UNMAP_HEADER_LEN: usize = 8;
/// Size of one UNMAP block descriptor.
const UNMAP_DESCRIPTOR_LEN: usize = 16;

/// Parse an UNMAP parameter list (the data-out, cut to the CDB's parameter
/// list length). An empty list is valid and unmaps nothing; a list too
/// short for the 8-byte header is a PARAMETER LIST LENGTH ERROR. Like most
/// targets this trusts the data that arrived over the header's length
/// fields: descriptors the lengths claim but the list does not hold, and a
/// trailing partial descriptor, are ignored.
pub fn parse_unmap_parameters(list: &[u8]) -> Result<Vec<UnmapDescriptor>, Sense> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    if list.len() < UNMAP_HEADER_LEN {
        return Err(PARAMETER_LIST_LENGTH_ERROR.into());
    }
    let declared = usize::from(get_be16(&list[2..]));
    let available = list.len() - UNMAP_HEADER_LEN;
    let descriptors = &list[UNMAP_HEADER_LEN..][..declared.min(available)];
    Ok(descriptors
        .chunks_exact(UNMAP_DESCRIPTOR_LEN)
        .map(|d| UnmapDescriptor { lba: get_be64(d), blocks: get_be32(&d[8..]) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sense::FieldPointer;

    #[test]
    fn write_same_flags() {
        let ws = WriteSame::parse(&[opcode::WRITE_SAME_10, 0x08, 0, 0, 0, 3, 0, 0, 4, 0]).unwrap();
        assert_eq!(ws, WriteSame { lba: 3, blocks: 4, unmap: true, anchor: false, ndob: false, protect: 0 });
        let err = WriteSame::parse(&[opcode::WRITE_SAME_10, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(err.field_pointer, Some(FieldPointer::cdb(1, Some(1))));

        let mut c = [0u8; 16];
        c[0] = opcode::WRITE_SAME_16;
        c[1] = 0x19; // ANCHOR, UNMAP, NDOB
        c[13] = 1;
        let ws = WriteSame::parse(&c).unwrap();
        assert!(ws.anchor && ws.unmap && ws.ndob);
        assert_eq!(ws.blocks, 1);
    }

    fn unmap_list(descriptors: &[(u64, u32)]) -> Vec<u8> {
        let body = descriptors.len() * 16;
        let mut list = Vec::new();
        list.extend_from_slice(&((body + 6) as u16).to_be_bytes());
        list.extend_from_slice(&(body as u16).to_be_bytes());
        list.extend_from_slice(&[0; 4]);
        for &(lba, blocks) in descriptors {
            list.extend_from_slice(&lba.to_be_bytes());
            list.extend_from_slice(&blocks.to_be_bytes());
            list.extend_from_slice(&[0; 4]);
        }
        list
    }

    #[test]
    fn unmap_cdb_and_parameters() {
        let u = Unmap::parse(&[opcode::UNMAP, 1, 0, 0, 0, 0, 0, 0, 24, 0]).unwrap();
        assert_eq!(u, Unmap { anchor: true, parameter_list_length: 24 });

        let list = unmap_list(&[(1, 2), (100, 0)]);
        assert_eq!(
            parse_unmap_parameters(&list).unwrap(),
            vec![UnmapDescriptor { lba: 1, blocks: 2 }, UnmapDescriptor { lba: 100, blocks: 0 }]
        );
        assert_eq!(parse_unmap_parameters(&[]).unwrap(), vec![]);
        assert_eq!(parse_unmap_parameters(&[0; 7]), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
    }

    #[test]
    fn unmap_parameters_ignore_what_did_not_arrive() {
        let list = unmap_list(&[(1, 2), (3, 4)]);
        // Cut inside the second descriptor: only the first one is whole.
        assert_eq!(parse_unmap_parameters(&list[..8 + 20]).unwrap().len(), 1);
        // A header claiming one descriptor limits the list to one.
        let mut short_claim = list.clone();
        short_claim[2..4].copy_from_slice(&16u16.to_be_bytes());
        assert_eq!(parse_unmap_parameters(&short_claim).unwrap().len(), 1);
    }
}
