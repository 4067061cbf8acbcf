//! Mode parameters: MODE SENSE data (header, block descriptor, pages in
//! their current, changeable and default flavours) and MODE SELECT
//! parameter list parsing and checking (SPC-4 7.5).
//!
//! A handler describes each page it supports as a [`ModePage`], built
//! fresh from its state, and lets [`mode_sense_data`] pick what the CDB
//! asked for. For MODE SELECT, [`parse_mode_parameters`] splits the list
//! and [`ModePage::apply`] checks a sent page against the changeable mask.
//! Saved pages are not supported: MODE SENSE for saved values fails with
//! SAVING PARAMETERS NOT SUPPORTED, as SPC-4 asks of such devices.

mod pages;
mod select;

pub use pages::*;
pub use select::*;

use crate::scsi::bytes::{put_be16, put_be24, put_be32, put_be64};
use crate::scsi::cdb::{ModeForm, ModeSense, PageControl};
use crate::sense::{SAVING_PARAMETERS_NOT_SUPPORTED, Sense};

/// Mode page codes.
pub mod page_code {
    /// Vendor specific (no page format); see [`mode_sense_data`](super::mode_sense_data).
    pub const VENDOR_SPECIFIC: u8 = 0x00;
    /// Read-write error recovery.
    pub const READ_WRITE_ERROR_RECOVERY: u8 = 0x01;
    /// Caching (SBC).
    pub const CACHING: u8 = 0x08;
    /// Control.
    pub const CONTROL: u8 = 0x0A;
    /// Power condition.
    pub const POWER_CONDITION: u8 = 0x1A;
    /// Informational exceptions control.
    pub const INFORMATIONAL_EXCEPTIONS_CONTROL: u8 = 0x1C;
    /// In MODE SENSE: every page.
    pub const ALL_PAGES: u8 = 0x3F;
}

/// In MODE SENSE: every subpage (of one page, or with
/// [`page_code::ALL_PAGES`], of all pages).
pub const ALL_SUBPAGES: u8 = 0xFF;

/// DEVICE-SPECIFIC PARAMETER bit of direct-access devices: write protected.
pub const DEVICE_SPECIFIC_WP: u8 = 0x80;
/// DEVICE-SPECIFIC PARAMETER bit of direct-access devices: the DPO and FUA
/// bits of READ and WRITE are supported.
pub const DEVICE_SPECIFIC_DPOFUA: u8 = 0x10;

/// A mode parameter block descriptor: the medium's block count and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockDescriptor {
    /// Number of logical blocks.
    pub blocks: u64,
    /// Logical block length in bytes.
    pub block_length: u32,
}

impl BlockDescriptor {
    /// A sequential-access (SSC) short descriptor: the density code takes
    /// byte 0, where a direct-access descriptor has the top byte of the
    /// block count, and the count is 24 bits (0: all that remain).
    pub fn sequential(density: u8, blocks: u32, block_length: u32) -> Self {
        Self { blocks: (u64::from(density) << 24) | u64::from(blocks & 0xff_ffff), block_length }
    }

    /// The density code of a sequential-access short descriptor (see
    /// [`BlockDescriptor::sequential`]).
    pub fn density(&self) -> u8 {
        (self.blocks >> 24) as u8
    }
}

/// One mode page in the three flavours MODE SENSE can ask for. Each holds
/// the page's parameter bytes, i.e. everything after the page header
/// (bytes 2.. of a page_0 page, 4.. of a subpage), and all three have the
/// same length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModePage {
    /// Page code (0x00..=0x3E).
    pub code: u8,
    /// Subpage code; 0 selects the short page_0 format.
    pub subpage: u8,
    /// The values in effect.
    pub current: Vec<u8>,
    /// Ones where MODE SELECT may change a bit.
    pub changeable: Vec<u8>,
    /// The power-on values.
    pub default: Vec<u8>,
}

impl ModePage {
    /// A page nothing may change: current and default are `values`.
    pub fn fixed(code: u8, subpage: u8, values: Vec<u8>) -> Self {
        Self { code, subpage, changeable: vec![0; values.len()], default: values.clone(), current: values }
    }

    /// Check a page sent with MODE SELECT against this one and return its
    /// parameter bytes, the new current values. The page must have this
    /// page's length and may differ from the current values only in
    /// changeable bits; otherwise INVALID FIELD IN PARAMETER LIST points at
    /// the page length or at the first offending bit.
    pub fn apply(&self, sent: &SentModePage<'_>) -> Result<Vec<u8>, Sense> {
        if sent.parameters.len() != self.current.len() {
            return Err(Sense::invalid_parameter_field(sent.length_field_offset(), None));
        }
        let fixed_bits = self.current.iter().zip(&self.changeable).zip(sent.parameters);
        for (i, ((&current, &changeable), &wanted)) in fixed_bits.enumerate() {
            let forbidden = (current ^ wanted) & !changeable;
            if forbidden != 0 {
                let bit = 7 - forbidden.leading_zeros() as u8;
                let byte = sent.parameters_offset() + i;
                return Err(Sense::invalid_parameter_field(field_offset(byte), Some(bit)));
            }
        }
        Ok(sent.parameters.to_vec())
    }

    /// The page with header, in the flavour `control` asks for.
    fn encode(&self, control: PageControl) -> Vec<u8> {
        let parameters = match control {
            // Saved values are refused before pages are encoded.
            PageControl::Current | PageControl::Saved => &self.current,
            PageControl::Changeable => &self.changeable,
            PageControl::Default => &self.default,
        };
        let mut page = if self.subpage == 0 {
            let len = u8::try_from(parameters.len()).expect("page_0 pages hold at most 255 bytes");
            vec![self.code & 0x3f, len]
        } else {
            let len = u16::try_from(parameters.len()).expect("subpages hold at most 65535 bytes");
            let [hi, lo] = len.to_be_bytes();
            vec![0x40 | (self.code & 0x3f), self.subpage, hi, lo]
        };
        page.extend_from_slice(parameters);
        page
    }
}

/// Field pointers are 16 bits; parameter lists longer than that cannot be
/// sent (the MODE SELECT(10) length field is 16 bits too).
fn field_offset(offset: usize) -> u16 {
    u16::try_from(offset).unwrap_or(u16::MAX)
}

/// The mode parameter header fields a device reports besides lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModeHeader {
    /// MEDIUM TYPE (0 for direct-access devices).
    pub medium_type: u8,
    /// DEVICE-SPECIFIC PARAMETER, e.g. [`DEVICE_SPECIFIC_WP`] |
    /// [`DEVICE_SPECIFIC_DPOFUA`] for a disk.
    pub device_specific: u8,
}

/// Build MODE SENSE parameter data for `request`: header, the block
/// descriptor (unless DBD is set or `block_descriptor` is `None`; long when
/// LLBAA allows) and the requested pages out of `pages` (in the order
/// given, which SPC wants ascending by page code). Fails with INVALID FIELD
/// IN CDB for pages or subpages not in `pages` and with SAVING PARAMETERS
/// NOT SUPPORTED for saved values. The result is not cut to the allocation
/// length.
pub fn mode_sense_data(
    request: &ModeSense,
    header: ModeHeader,
    block_descriptor: Option<BlockDescriptor>,
    pages: &[ModePage],
) -> Result<Vec<u8>, Sense> {
    if request.page_control == PageControl::Saved {
        return Err(SAVING_PARAMETERS_NOT_SUPPORTED.into());
    }
    let selected = select_pages(request, pages)?;

    let long_lba = request.form == ModeForm::Ten && request.llbaa;
    let descriptor = block_descriptor.filter(|_| !request.dbd).map(|d| {
        // Nothing in a block descriptor is changeable.
        let d = match request.page_control {
            PageControl::Changeable => BlockDescriptor { blocks: 0, block_length: 0 },
            _ => d,
        };
        encode_block_descriptor(d, long_lba)
    });
    let descriptor = descriptor.unwrap_or_default();

    let mut data = match request.form {
        ModeForm::Six => {
            vec![0, header.medium_type, header.device_specific, descriptor.len() as u8]
        }
        ModeForm::Ten => {
            let mut h = vec![0, 0, header.medium_type, header.device_specific, u8::from(long_lba), 0, 0, 0];
            put_be16(&mut h[6..], descriptor.len() as u16);
            h
        }
    };
    data.extend_from_slice(&descriptor);
    for page in selected {
        data.extend_from_slice(&page.encode(request.page_control));
    }
    // MODE DATA LENGTH counts the bytes after itself; MODE SENSE(6) can
    // describe at most 256 bytes in all.
    match request.form {
        ModeForm::Six => {
            data.truncate(256);
            data[0] = (data.len() - 1) as u8;
        }
        ModeForm::Ten => {
            data.truncate(usize::from(u16::MAX) + 2);
            let len = (data.len() - 2) as u16;
            put_be16(&mut data, len);
        }
    }
    Ok(data)
}

fn select_pages<'p>(request: &ModeSense, pages: &'p [ModePage]) -> Result<Vec<&'p ModePage>, Sense> {
    let subpages_wanted = |page: &ModePage| match request.subpage_code {
        ALL_SUBPAGES => true,
        subpage => page.subpage == subpage,
    };
    if request.page_code == page_code::ALL_PAGES {
        // 3Fh/00h is every page_0 page; 3Fh/FFh every page and subpage.
        return match request.subpage_code {
            0 | ALL_SUBPAGES => Ok(pages.iter().filter(|p| subpages_wanted(p)).collect()),
            _ => Err(Sense::invalid_cdb_field(3, None)),
        };
    }
    let matching: Vec<_> = pages.iter().filter(|p| p.code == request.page_code).collect();
    if matching.is_empty() && request.page_code == page_code::VENDOR_SPECIFIC && request.subpage_code == 0 {
        // Page 00h is vendor specific and needs no page format: a device
        // without one returns the header and block descriptor alone, which
        // is what the st driver asks for to learn density and block size.
        return Ok(Vec::new());
    }
    if matching.is_empty() {
        return Err(Sense::invalid_cdb_field(2, Some(5)));
    }
    let selected: Vec<_> = matching.into_iter().filter(|p| subpages_wanted(p)).collect();
    if selected.is_empty() {
        return Err(Sense::invalid_cdb_field(3, None));
    }
    Ok(selected)
}

/// Short (8-byte) or long (16-byte) block descriptor.
fn encode_block_descriptor(d: BlockDescriptor, long_lba: bool) -> Vec<u8> {
    if long_lba {
        let mut b = vec![0u8; LONG_DESCRIPTOR_LEN];
        put_be64(&mut b, d.blocks);
        put_be32(&mut b[12..], d.block_length);
        b
    } else {
        let mut b = vec![0u8; SHORT_DESCRIPTOR_LEN];
        // SBC: a count that does not fit is reported as FFFFFFFFh.
        put_be32(&mut b, u32::try_from(d.blocks).unwrap_or(u32::MAX));
        put_be24(&mut b[5..], d.block_length.min(0xff_ffff));
        b
    }
}

const SHORT_DESCRIPTOR_LEN: usize = 8;
const LONG_DESCRIPTOR_LEN: usize = 16;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sense::{FieldPointer, INVALID_FIELD_IN_CDB, INVALID_FIELD_IN_PARAMETER_LIST};

    fn caching(write_cache: bool) -> ModePage {
        ModePage {
            code: page_code::CACHING,
            subpage: 0,
            current: CachingPage { write_cache, read_cache_disabled: false }.to_parameters(),
            changeable: CachingPage { write_cache: true, read_cache_disabled: false }.to_parameters(),
            default: CachingPage { write_cache: true, read_cache_disabled: false }.to_parameters(),
        }
    }

    fn pages() -> Vec<ModePage> {
        vec![
            caching(false),
            ModePage::fixed(page_code::CONTROL, 0, ControlPage::default().to_parameters()),
            ModePage::fixed(page_code::CONTROL, 0x01, vec![0xaa; 4]),
        ]
    }

    fn request(form: ModeForm, page_code: u8, subpage_code: u8) -> ModeSense {
        ModeSense {
            form,
            dbd: false,
            llbaa: false,
            page_control: PageControl::Current,
            page_code,
            subpage_code,
            allocation_length: 255,
        }
    }

    const DISK: BlockDescriptor = BlockDescriptor { blocks: 1000, block_length: 512 };
    const HEADER: ModeHeader = ModeHeader { medium_type: 0, device_specific: DEVICE_SPECIFIC_DPOFUA };

    #[test]
    fn six_byte_header_block_descriptor_and_page() {
        let d = mode_sense_data(&request(ModeForm::Six, page_code::CACHING, 0), HEADER, Some(DISK), &pages()).unwrap();
        assert_eq!(d.len(), 4 + 8 + 20);
        assert_eq!(&d[..4], &[31, 0, 0x10, 8]);
        assert_eq!(&d[4..12], &[0, 0, 0x03, 0xe8, 0, 0, 0x02, 0x00]);
        assert_eq!(&d[12..15], &[0x08, 0x12, 0x00]);
    }

    #[test]
    fn ten_byte_header_with_long_descriptor() {
        let mut r = request(ModeForm::Ten, page_code::CONTROL, 0);
        r.llbaa = true;
        let big = BlockDescriptor { blocks: 1 << 33, block_length: 4096 };
        let d = mode_sense_data(&r, HEADER, Some(big), &pages()).unwrap();
        assert_eq!(d.len(), 8 + 16 + 12);
        assert_eq!(&d[..8], &[0, 34, 0, 0x10, 1, 0, 0, 16]);
        assert_eq!(&d[8..16], &(1u64 << 33).to_be_bytes());
        assert_eq!(&d[20..24], &4096u32.to_be_bytes());
        assert_eq!(&d[24..26], &[0x0a, 0x0a]);
    }

    #[test]
    fn short_descriptor_saturates_block_count_and_dbd_drops_it() {
        let big = BlockDescriptor { blocks: 1 << 33, block_length: 512 };
        let d = mode_sense_data(&request(ModeForm::Ten, page_code::CACHING, 0), HEADER, Some(big), &pages()).unwrap();
        assert_eq!(&d[6..8], &[0, 8]);
        assert_eq!(&d[8..12], &[0xff; 4]);
        let mut r = request(ModeForm::Six, page_code::CACHING, 0);
        r.dbd = true;
        let d = mode_sense_data(&r, HEADER, Some(DISK), &pages()).unwrap();
        assert_eq!(d[3], 0);
        assert_eq!(d.len(), 4 + 20);
    }

    #[test]
    fn all_pages_with_and_without_subpages() {
        let d = mode_sense_data(&request(ModeForm::Six, page_code::ALL_PAGES, 0), HEADER, None, &pages()).unwrap();
        assert_eq!(d.len(), 4 + 20 + 12);
        let d = mode_sense_data(&request(ModeForm::Six, page_code::ALL_PAGES, ALL_SUBPAGES), HEADER, None, &pages())
            .unwrap();
        assert_eq!(d.len(), 4 + 20 + 12 + 8);
        assert_eq!(&d[36..40], &[0x4a, 0x01, 0, 4]);
        let d =
            mode_sense_data(&request(ModeForm::Six, page_code::CONTROL, ALL_SUBPAGES), HEADER, None, &pages()).unwrap();
        assert_eq!(d.len(), 4 + 12 + 8);
    }

    #[test]
    fn page_zero_without_such_a_page_is_header_and_block_descriptor() {
        let d = mode_sense_data(&request(ModeForm::Six, 0, 0), HEADER, Some(DISK), &pages()).unwrap();
        assert_eq!((d.len(), d[0], d[3]), (12, 11, 8));
    }

    #[test]
    fn unknown_pages_and_subpages_are_invalid_cdb_fields() {
        let err = mode_sense_data(&request(ModeForm::Six, 0x19, 0), HEADER, None, &pages()).unwrap_err();
        assert_eq!((err.code, err.field_pointer), (INVALID_FIELD_IN_CDB, Some(FieldPointer::cdb(2, Some(5)))));
        let err = mode_sense_data(&request(ModeForm::Six, page_code::CACHING, 1), HEADER, None, &pages()).unwrap_err();
        assert_eq!(err.field_pointer, Some(FieldPointer::cdb(3, None)));
        let err =
            mode_sense_data(&request(ModeForm::Six, page_code::ALL_PAGES, 5), HEADER, None, &pages()).unwrap_err();
        assert_eq!(err.field_pointer, Some(FieldPointer::cdb(3, None)));
    }

    #[test]
    fn page_control_flavours() {
        let mut r = request(ModeForm::Six, page_code::CACHING, 0);
        r.page_control = PageControl::Changeable;
        let d = mode_sense_data(&r, HEADER, Some(DISK), &pages()).unwrap();
        assert_eq!(&d[4..12], &[0; 8], "block descriptors are not changeable");
        assert_eq!(d[14], 0x04);
        r.page_control = PageControl::Default;
        assert_eq!(mode_sense_data(&r, HEADER, None, &pages()).unwrap()[6], 0x04);
        r.page_control = PageControl::Current;
        assert_eq!(mode_sense_data(&r, HEADER, None, &pages()).unwrap()[6], 0x00);
        r.page_control = PageControl::Saved;
        assert_eq!(mode_sense_data(&r, HEADER, None, &pages()), Err(SAVING_PARAMETERS_NOT_SUPPORTED.into()));
    }

    #[test]
    fn apply_allows_only_changeable_bits() {
        let page = caching(false);
        let mut sent_bytes = CachingPage { write_cache: true, read_cache_disabled: false }.to_parameters();
        let sent = SentModePage { code: 0x08, subpage: 0, parameters: &sent_bytes, offset: 4 };
        assert!(CachingPage::from_parameters(&page.apply(&sent).unwrap()).write_cache);

        sent_bytes[0] |= 0x01; // RCD is not changeable
        let sent = SentModePage { code: 0x08, subpage: 0, parameters: &sent_bytes, offset: 4 };
        let err = page.apply(&sent).unwrap_err();
        assert_eq!(err.code, INVALID_FIELD_IN_PARAMETER_LIST);
        assert_eq!(err.field_pointer, Some(FieldPointer::parameter(6, Some(0))));

        let short = [0u8; 4];
        let sent = SentModePage { code: 0x08, subpage: 0, parameters: &short, offset: 4 };
        assert_eq!(page.apply(&sent).unwrap_err().field_pointer, Some(FieldPointer::parameter(5, None)));
    }
}
