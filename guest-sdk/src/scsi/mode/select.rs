//! MODE SELECT parameter lists.

use super::{BlockDescriptor, LONG_DESCRIPTOR_LEN, SHORT_DESCRIPTOR_LEN, field_offset};
use crate::scsi::bytes::{get_be16, get_be24, get_be32, get_be64};
use crate::scsi::cdb::ModeForm;
use crate::sense::{PARAMETER_LIST_LENGTH_ERROR, Sense};

/// A MODE SELECT parameter list, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModeParameters<'a> {
    /// MEDIUM TYPE.
    pub medium_type: u8,
    /// DEVICE-SPECIFIC PARAMETER (its WP and DPOFUA bits are reserved in
    /// MODE SELECT).
    pub device_specific: u8,
    /// Block descriptors; a direct-access device takes at most one.
    pub block_descriptors: Vec<BlockDescriptor>,
    /// The pages, in the order sent.
    pub pages: Vec<SentModePage<'a>>,
}

/// One page of a MODE SELECT parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentModePage<'a> {
    /// Page code.
    pub code: u8,
    /// Subpage code (0 for page_0 format).
    pub subpage: u8,
    /// The parameter bytes after the page header.
    pub parameters: &'a [u8],
    /// Offset of the page header in the parameter list, for field pointers.
    pub offset: usize,
}

impl SentModePage<'_> {
    fn subpage_format(&self) -> bool {
        self.subpage != 0
    }

    /// Offset of the PAGE LENGTH field in the parameter list.
    pub fn length_field_offset(&self) -> u16 {
        field_offset(self.offset + if self.subpage_format() { 2 } else { 1 })
    }

    /// Offset of the first parameter byte in the parameter list.
    pub fn parameters_offset(&self) -> usize {
        self.offset + if self.subpage_format() { 4 } else { 2 }
    }
}

/// Split a MODE SELECT parameter list (the data-out, cut to the CDB's
/// parameter list length) into header, block descriptors and pages. An
/// empty list changes nothing and is valid. A list that ends inside the
/// header, a block descriptor or a page is a PARAMETER LIST LENGTH ERROR;
/// a block descriptor length that is not a whole number of descriptors is
/// INVALID FIELD IN PARAMETER LIST.
pub fn parse_mode_parameters(list: &[u8], form: ModeForm) -> Result<ModeParameters<'_>, Sense> {
    if list.is_empty() {
        return Ok(ModeParameters::default());
    }
    let (header_len, medium_type, device_specific, long_lba, descriptors_len, descriptors_len_at) = match form {
        ModeForm::Six if list.len() >= 4 => (4, list[1], list[2], false, usize::from(list[3]), 3u16),
        ModeForm::Ten if list.len() >= 8 => {
            (8, list[2], list[3], list[4] & 1 != 0, usize::from(get_be16(&list[6..])), 6)
        }
        _ => return Err(PARAMETER_LIST_LENGTH_ERROR.into()),
    };
    let descriptor_len = if long_lba { LONG_DESCRIPTOR_LEN } else { SHORT_DESCRIPTOR_LEN };
    if descriptors_len % descriptor_len != 0 {
        return Err(Sense::invalid_parameter_field(descriptors_len_at, None));
    }
    let descriptors = list[header_len..].get(..descriptors_len).ok_or(PARAMETER_LIST_LENGTH_ERROR)?;
    let block_descriptors = descriptors
        .chunks_exact(descriptor_len)
        .map(|d| {
            if long_lba {
                BlockDescriptor { blocks: get_be64(d), block_length: get_be32(&d[12..]) }
            } else {
                BlockDescriptor { blocks: get_be32(d).into(), block_length: get_be24(&d[5..]) }
            }
        })
        .collect();

    let mut pages = Vec::new();
    let mut at = header_len + descriptors_len;
    while at < list.len() {
        let rest = &list[at..];
        let subpage_format = rest[0] & 0x40 != 0;
        let (subpage, page_header_len, parameters_len) = match (subpage_format, rest.len()) {
            (false, 2..) => (0, 2, usize::from(rest[1])),
            (true, 4..) => (rest[1], 4, usize::from(get_be16(&rest[2..]))),
            _ => return Err(PARAMETER_LIST_LENGTH_ERROR.into()),
        };
        let parameters = rest[page_header_len..].get(..parameters_len).ok_or(PARAMETER_LIST_LENGTH_ERROR)?;
        pages.push(SentModePage { code: rest[0] & 0x3f, subpage, parameters, offset: at });
        at += page_header_len + parameters_len;
    }
    Ok(ModeParameters { medium_type, device_specific, block_descriptors, pages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::mode::CachingPage;

    fn select_list_6(pages: &[&[u8]], descriptor: Option<[u8; 8]>) -> Vec<u8> {
        let mut list = vec![0, 0, 0, if descriptor.is_some() { 8 } else { 0 }];
        list.extend(descriptor.iter().flatten());
        for page in pages {
            list.extend_from_slice(page);
        }
        list
    }

    #[test]
    fn parse_select_six_with_descriptor_and_pages() {
        let mut caching_page = vec![0x88, 0x12]; // PS set: reserved in MODE SELECT
        caching_page.extend(CachingPage { write_cache: true, read_cache_disabled: false }.to_parameters());
        let subpage = [0x4a, 0x01, 0x00, 0x02, 0xde, 0xad];
        let list = select_list_6(&[&caching_page, &subpage], Some([0, 0, 0, 10, 0, 0, 2, 0]));
        let parsed = parse_mode_parameters(&list, ModeForm::Six).unwrap();
        assert_eq!(parsed.block_descriptors, vec![BlockDescriptor { blocks: 10, block_length: 512 }]);
        assert_eq!(parsed.pages.len(), 2);
        assert_eq!((parsed.pages[0].code, parsed.pages[0].subpage, parsed.pages[0].offset), (0x08, 0, 12));
        assert!(CachingPage::from_parameters(parsed.pages[0].parameters).write_cache);
        assert_eq!((parsed.pages[1].code, parsed.pages[1].subpage), (0x0a, 1));
        assert_eq!(parsed.pages[1].parameters, &[0xde, 0xad]);
        assert_eq!(parsed.pages[1].offset, 32);
        assert_eq!(parsed.pages[1].length_field_offset(), 32 + 2);
        assert_eq!(parsed.pages[1].parameters_offset(), 32 + 4);
    }

    #[test]
    fn parse_select_ten_with_long_descriptor() {
        let mut list = vec![0, 0, 0, 0, 1, 0, 0, 16];
        list.extend_from_slice(&5u64.to_be_bytes());
        list.extend_from_slice(&[0, 0, 0, 0]);
        list.extend_from_slice(&4096u32.to_be_bytes());
        let parsed = parse_mode_parameters(&list, ModeForm::Ten).unwrap();
        assert_eq!(parsed.block_descriptors, vec![BlockDescriptor { blocks: 5, block_length: 4096 }]);
        assert!(parsed.pages.is_empty());
    }

    #[test]
    fn parse_select_truncations() {
        assert_eq!(parse_mode_parameters(&[], ModeForm::Six).unwrap(), ModeParameters::default());
        assert_eq!(parse_mode_parameters(&[0, 0, 0], ModeForm::Six), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
        assert_eq!(parse_mode_parameters(&[0; 6], ModeForm::Ten), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
        // Block descriptor length says 8, but no descriptor follows.
        assert_eq!(parse_mode_parameters(&[0, 0, 0, 8], ModeForm::Six), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
        // A page longer than what arrived.
        let list = select_list_6(&[&[0x08, 0x12, 0, 0]], None);
        assert_eq!(parse_mode_parameters(&list, ModeForm::Six), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
        // A lone byte where a page header should be.
        let list = select_list_6(&[&[0x08]], None);
        assert_eq!(parse_mode_parameters(&list, ModeForm::Six), Err(PARAMETER_LIST_LENGTH_ERROR.into()));
        // Not a whole block descriptor.
        let err = parse_mode_parameters(&[0, 0, 0, 4, 0, 0, 0, 0], ModeForm::Six).unwrap_err();
        assert_eq!(err, Sense::invalid_parameter_field(3, None));
    }
}
