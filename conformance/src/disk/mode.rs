//! MODE SENSE(6/10) and MODE SELECT(10) (SPC-4 6.11-6.14, SBC-3 6.4).

use super::device::Device;
use super::suite::Suite;
use crate::cdb::{self, ALL_MODE_PAGES, PageControl};
use crate::expect::{self, be, ensure};
use crate::sense;
use crate::target::Response;

pub(crate) const CACHING_PAGE: u8 = 0x08;
const CONTROL_PAGE: u8 = 0x0A;
/// Whole-page lengths (PAGE LENGTH + 2) that SBC-3 and SPC-4 define.
const CACHING_PAGE_LEN: usize = 0x14;
const CONTROL_PAGE_LEN: usize = 0x0C;
/// WCE bit in byte 2 of the caching page.
const WCE: u8 = 0x04;
/// WP and DPOFUA in the DEVICE-SPECIFIC PARAMETER byte (SBC-3 6.4.1).
const WP: u8 = 0x80;
const DPOFUA: u8 = 0x10;

const MODE_SENSE6_ALLOC: u8 = 0xFF;
const MODE_SENSE10_ALLOC: u16 = 4096;

/// The two MODE SENSE sizes, whose headers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Six,
    Ten,
}

/// Decoded mode parameter data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModeData {
    device_specific: u8,
    block_descriptors: Vec<u8>,
    pages: Vec<ModePage>,
}

/// One mode page, header included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModePage {
    code: u8,
    subpage: u8,
    bytes: Vec<u8>,
}

impl ModeData {
    pub(crate) fn write_protected(&self) -> bool {
        self.device_specific & WP != 0
    }

    pub(crate) fn dpo_fua(&self) -> bool {
        self.device_specific & DPOFUA != 0
    }

    /// The page `code` (subpage 0), which must be the only page returned
    /// and have SBC-3's length.
    fn only_page(&self, code: u8, len: usize) -> Result<&ModePage, String> {
        let codes: Vec<String> = self.pages.iter().map(|page| format!("{:02X}h", page.code)).collect();
        ensure!(
            self.pages.len() == 1 && self.pages[0].code == code && self.pages[0].subpage == 0,
            "asked for page {code:02X}h, got pages [{}]",
            codes.join(", ")
        );
        let page = &self.pages[0];
        ensure!(page.bytes.len() == len, "page {code:02X}h is {} bytes, expected {len}", page.bytes.len());
        Ok(page)
    }

    fn parse(data: &[u8], form: Form) -> Result<Self, String> {
        let (header_len, declared, device_specific, long_lba, descriptors_len) = match form {
            Form::Six => {
                ensure!(data.len() >= 4, "mode parameter header: {} bytes, expected 4", data.len());
                (4, 1 + usize::from(data[0]), data[2], false, usize::from(data[3]))
            }
            Form::Ten => {
                ensure!(data.len() >= 8, "mode parameter header: {} bytes, expected 8", data.len());
                (8, 2 + be(data, 0..2)? as usize, data[3], data[4] & 0x01 != 0, be(data, 6..8)? as usize)
            }
        };
        ensure!(declared == data.len(), "MODE DATA LENGTH accounts for {declared} bytes, {} returned", data.len());
        ensure!(!long_lba, "LONGLBA=1 although LLBAA was not set");
        ensure!(
            descriptors_len % 8 == 0 && header_len + descriptors_len <= data.len(),
            "BLOCK DESCRIPTOR LENGTH {descriptors_len} does not fit {} bytes of mode data",
            data.len()
        );
        let block_descriptors = data[header_len..header_len + descriptors_len].to_vec();
        let pages = parse_pages(&data[header_len + descriptors_len..])?;
        Ok(Self { device_specific, block_descriptors, pages })
    }
}

fn parse_pages(mut rest: &[u8]) -> Result<Vec<ModePage>, String> {
    let mut pages = Vec::new();
    while !rest.is_empty() {
        ensure!(rest.len() >= 2, "a mode page header is cut off after {} byte", rest.len());
        let code = rest[0] & 0x3F;
        let sub_page_format = rest[0] & 0x40 != 0;
        let (subpage, len) = if sub_page_format {
            ensure!(rest.len() >= 4, "the header of subpage of page {code:02X}h is cut off");
            (rest[1], 4 + be(rest, 2..4)? as usize)
        } else {
            (0, 2 + usize::from(rest[1]))
        };
        ensure!(len <= rest.len(), "page {code:02X}h claims {len} bytes, only {} remain", rest.len());
        pages.push(ModePage { code, subpage, bytes: rest[..len].to_vec() });
        rest = &rest[len..];
    }
    Ok(pages)
}

pub(crate) fn mode_sense6(dev: &mut Device<'_>, pc: PageControl, page: u8) -> Result<ModeData, String> {
    let data = dev.execute_good(&cdb::mode_sense6(pc, page, MODE_SENSE6_ALLOC), &[], MODE_SENSE6_ALLOC.into())?;
    ModeData::parse(&data, Form::Six).map_err(|e| format!("MODE SENSE(6): {e}"))
}

pub(crate) fn mode_sense10(dev: &mut Device<'_>, pc: PageControl, page: u8) -> Result<ModeData, String> {
    let data = dev.execute_good(&cdb::mode_sense10(pc, page, MODE_SENSE10_ALLOC), &[], MODE_SENSE10_ALLOC.into())?;
    ModeData::parse(&data, Form::Ten).map_err(|e| format!("MODE SENSE(10): {e}"))
}

/// The caching page's `pc` values, fetched with MODE SENSE(10).
fn caching_page(dev: &mut Device<'_>, pc: PageControl) -> Result<Vec<u8>, String> {
    let data = mode_sense10(dev, pc, CACHING_PAGE)?;
    Ok(data.only_page(CACHING_PAGE, CACHING_PAGE_LEN)?.bytes.clone())
}

/// MODE SELECT(10) of one page (PS cleared, no block descriptors).
fn select_page(dev: &mut Device<'_>, page: &[u8]) -> Result<Response, String> {
    let mut parameters = vec![0u8; 8];
    parameters.extend_from_slice(page);
    parameters[8] &= 0x7F;
    dev.execute(&cdb::mode_select10(parameters.len() as u16), &parameters, 0)
}

/// Set WCE through MODE SELECT and read it back.
fn set_wce(dev: &mut Device<'_>, page: &[u8], wce: bool) -> Result<(), String> {
    let mut page = page.to_vec();
    page[2] = if wce { page[2] | WCE } else { page[2] & !WCE };
    let response = select_page(dev, &page)?;
    expect::good(&response).map_err(|e| format!("MODE SELECT setting WCE={}: {e}", u8::from(wce)))?;
    let now = caching_page(dev, PageControl::Current)?[2] & WCE != 0;
    ensure!(now == wce, "MODE SELECT set WCE={} but MODE SENSE reads WCE={}", u8::from(wce), u8::from(now));
    Ok(())
}

fn check_block_descriptor(dev: &mut Device<'_>) -> Result<(), String> {
    let data = mode_sense6(dev, PageControl::Current, CACHING_PAGE)?;
    let descriptors = &data.block_descriptors;
    ensure!(
        descriptors.is_empty() || descriptors.len() == 8,
        "{} bytes of block descriptors, expected none or one short descriptor (8)",
        descriptors.len()
    );
    if descriptors.is_empty() {
        return Ok(());
    }
    let blocks = be(descriptors, 0..4)?;
    let reportable = dev.blocks.min(u64::from(u32::MAX));
    ensure!(blocks == 0 || blocks == reportable, "NUMBER OF LOGICAL BLOCKS {blocks} expected {reportable} (or 0)");
    let block_length = be(descriptors, 5..8)?;
    ensure!(
        block_length == u64::from(dev.block_size),
        "LOGICAL BLOCK LENGTH {block_length} expected {}",
        dev.block_size
    );
    Ok(())
}

/// Page 3Fh returns each page once, including the caching and control
/// pages exactly as they come when asked for alone.
fn check_all_pages(dev: &mut Device<'_>) -> Result<(), String> {
    let all = mode_sense10(dev, PageControl::Current, ALL_MODE_PAGES)?;
    for (i, page) in all.pages.iter().enumerate() {
        let repeated = all.pages[..i].iter().any(|p| (p.code, p.subpage) == (page.code, page.subpage));
        ensure!(!repeated, "page {:02X}h/{:02X}h returned twice", page.code, page.subpage);
    }
    for (code, len) in [(CACHING_PAGE, CACHING_PAGE_LEN), (CONTROL_PAGE, CONTROL_PAGE_LEN)] {
        let page = all
            .pages
            .iter()
            .find(|p| p.code == code && p.subpage == 0)
            .ok_or_else(|| format!("page {code:02X}h missing from all pages"))?;
        let alone = mode_sense10(dev, PageControl::Current, code)?;
        let alone = alone.only_page(code, len)?;
        expect::same_bytes(&format!("page {code:02X}h among all pages vs alone"), &page.bytes, &alone.bytes)?;
    }
    Ok(())
}

/// A page the device does not have is refused.
fn check_unsupported_page(dev: &mut Device<'_>) -> Result<(), String> {
    let all = mode_sense10(dev, PageControl::Current, ALL_MODE_PAGES)?;
    let code = [0x3E, 0x3D, 0x2F]
        .into_iter()
        .find(|&code| all.pages.iter().all(|page| page.code != code))
        .ok_or("the device returns every candidate page (3Eh, 3Dh, 2Fh)")?;
    let cdb = cdb::mode_sense6(PageControl::Current, code, MODE_SENSE6_ALLOC);
    dev.execute_expecting(&cdb, &[], MODE_SENSE6_ALLOC.into(), sense::INVALID_FIELD_IN_CDB)
        .map_err(|e| format!("page {code:02X}h: {e}"))?;
    Ok(())
}

/// Both headers' WP bit says whether the device is read-only.
fn check_write_protect_bit(dev: &mut Device<'_>) -> Result<(), String> {
    let expected = dev.read_only;
    let six = mode_sense6(dev, PageControl::Current, CACHING_PAGE)?;
    let ten = mode_sense10(dev, PageControl::Current, CACHING_PAGE)?;
    for (name, data) in [("MODE SENSE(6)", six), ("MODE SENSE(10)", ten)] {
        ensure!(
            data.write_protected() == expected,
            "{name}: WP={} on a {} device",
            u8::from(data.write_protected()),
            if expected { "read-only" } else { "writable" }
        );
    }
    Ok(())
}

/// WCE round-trips through MODE SELECT when it is changeable (and is put
/// back); otherwise selecting the page unchanged works and changing WCE is
/// refused.
fn check_wce_round_trip(dev: &mut Device<'_>) -> Result<(), String> {
    let current = caching_page(dev, PageControl::Current)?;
    let changeable = caching_page(dev, PageControl::Changeable)?;
    let wce = current[2] & WCE != 0;
    if changeable[2] & WCE != 0 {
        let toggled = set_wce(dev, &current, !wce);
        let restored = set_wce(dev, &current, wce).map_err(|e| format!("restoring WCE: {e}"));
        return toggled.and(restored);
    }
    let response = select_page(dev, &current)?;
    expect::good(&response).map_err(|e| format!("MODE SELECT of the unchanged caching page: {e}"))?;
    let mut toggled = current.clone();
    toggled[2] ^= WCE;
    let response = select_page(dev, &toggled)?;
    expect::sense(&response, sense::INVALID_FIELD_IN_PARAMETER_LIST)
        .map_err(|e| format!("MODE SELECT changing WCE, which is not changeable: {e}"))?;
    Ok(())
}

pub(super) fn run(suite: &mut Suite<'_>) {
    suite.check("mode-sense6.caching-page", |dev| {
        mode_sense6(dev, PageControl::Current, CACHING_PAGE)?.only_page(CACHING_PAGE, CACHING_PAGE_LEN)?;
        Ok(())
    });
    suite.check("mode-sense6.control-page", |dev| {
        mode_sense6(dev, PageControl::Current, CONTROL_PAGE)?.only_page(CONTROL_PAGE, CONTROL_PAGE_LEN)?;
        Ok(())
    });
    suite.check("mode-sense6.block-descriptor", check_block_descriptor);
    suite.check("mode-sense10.all-pages", check_all_pages);
    suite.check("mode-sense10.changeable-values", |dev| {
        caching_page(dev, PageControl::Changeable)?;
        Ok(())
    });
    suite.check("mode-sense.saved-values-unsupported", |dev| {
        let cdb = cdb::mode_sense6(PageControl::Saved, CACHING_PAGE, MODE_SENSE6_ALLOC);
        let alloc = MODE_SENSE6_ALLOC.into();
        dev.execute_expecting(&cdb, &[], alloc, sense::SAVING_PARAMETERS_NOT_SUPPORTED)?;
        Ok(())
    });
    suite.check("mode-sense.unsupported-page", check_unsupported_page);
    suite.check("mode-sense.write-protect-bit", check_write_protect_bit);
    suite.check("mode-select.caching-wce", check_wce_round_trip);
}
