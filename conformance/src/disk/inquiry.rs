//! INQUIRY: standard data and the VPD pages (SPC-4 6.6, 7.8; SBC-3 6.5).

use super::device::Device;
use super::suite::Suite;
use super::vpd::{self, BlockLimits, Provisioning};
use crate::cdb;
use crate::expect::{self, be, ensure};
use crate::sense;

/// Allocation length for standard INQUIRY data.
const STANDARD_ALLOC: u16 = 0xFF;
/// Pages SBC-3 expects a disk to list in VPD page 00h.
const REQUIRED_PAGES: [u8; 6] = [
    vpd::SUPPORTED_PAGES,
    vpd::UNIT_SERIAL_NUMBER,
    vpd::DEVICE_IDENTIFICATION,
    vpd::BLOCK_LIMITS,
    vpd::BLOCK_DEVICE_CHARACTERISTICS,
    vpd::LOGICAL_BLOCK_PROVISIONING,
];
/// Designator type NAA in a designation descriptor.
const DESIGNATOR_NAA: u8 = 0x3;
/// Code sets of a designation descriptor.
const CODE_SET_BINARY: u8 = 0x1;
const CODE_SET_ASCII: u8 = 0x2;

/// Fetch standard INQUIRY data (used for the short-allocation checks too).
pub(crate) fn standard_data(dev: &mut Device<'_>) -> Result<Vec<u8>, String> {
    dev.execute_good(&cdb::inquiry(false, 0, STANDARD_ALLOC), &[], STANDARD_ALLOC.into())
}

/// Every byte is printable ASCII (20h-7Eh), as SPC-4 requires of ASCII fields.
fn printable(field: &str, bytes: &[u8]) -> Result<(), String> {
    ensure!(
        bytes.iter().all(|b| (0x20..=0x7E).contains(b)),
        "{field} is not printable ASCII: {:?}",
        bytes.escape_ascii().to_string()
    );
    Ok(())
}

fn check_standard_data(dev: &mut Device<'_>) -> Result<(), String> {
    let data = standard_data(dev)?;
    ensure!(data.len() >= 36, "{} bytes of standard data, SPC-4 requires at least 36", data.len());
    let declared = 5 + usize::from(data[4]);
    ensure!(
        data.len() == declared.min(STANDARD_ALLOC.into()),
        "ADDITIONAL LENGTH accounts for {declared} bytes, {} returned",
        data.len()
    );
    ensure!(data[0] == 0x00, "peripheral byte 0x{:02X}, expected 0x00 (qualifier 0, direct-access device)", data[0]);
    ensure!(data[3] & 0x0F == 2, "RESPONSE DATA FORMAT {} expected 2", data[3] & 0x0F);
    ensure!((0x05..=0x07).contains(&data[2]), "VERSION 0x{:02X}, expected SPC-3 (05h) or later", data[2]);
    printable("T10 VENDOR IDENTIFICATION", &data[8..16])?;
    printable("PRODUCT IDENTIFICATION", &data[16..32])?;
    printable("PRODUCT REVISION LEVEL", &data[32..36])
}

fn check_supported_pages(dev: &mut Device<'_>) -> Result<(), String> {
    let page = vpd::fetch(dev, vpd::SUPPORTED_PAGES)?;
    let codes = &page[4..];
    ensure!(codes.windows(2).all(|pair| pair[0] < pair[1]), "page codes not in ascending order: {codes:02X?}");
    for required in REQUIRED_PAGES {
        ensure!(codes.contains(&required), "page {required:02X}h missing from {codes:02X?}");
    }
    for &code in codes {
        vpd::fetch(dev, code)?;
    }
    Ok(())
}

fn check_device_identification(dev: &mut Device<'_>) -> Result<(), String> {
    let page = vpd::fetch(dev, vpd::DEVICE_IDENTIFICATION)?;
    let mut rest = &page[4..];
    let mut naa_found = false;
    while !rest.is_empty() {
        ensure!(rest.len() >= 4, "a designation descriptor header is cut off");
        let len = 4 + usize::from(rest[3]);
        ensure!(len <= rest.len(), "a designation descriptor claims {len} bytes, {} remain", rest.len());
        let (descriptor, next) = rest.split_at(len);
        rest = next;
        let code_set = descriptor[0] & 0x0F;
        let association = (descriptor[1] >> 4) & 0x3;
        let designator_type = descriptor[1] & 0x0F;
        let designator = &descriptor[4..];
        if code_set == CODE_SET_ASCII {
            printable(&format!("designator type {designator_type}"), designator)?;
        }
        if designator_type != DESIGNATOR_NAA || association != 0 {
            continue;
        }
        ensure!(code_set == CODE_SET_BINARY, "NAA designator with code set {code_set}, expected binary (1)");
        let naa = designator.first().map(|b| b >> 4);
        let expected_len = match naa {
            Some(2 | 3 | 5) => 8,
            Some(6) => 16,
            _ => return Err(format!("NAA designator with unknown NAA field {naa:?}")),
        };
        ensure!(
            designator.len() == expected_len,
            "NAA {} designator is {} bytes, expected {expected_len}",
            naa.unwrap_or_default(),
            designator.len()
        );
        naa_found = true;
    }
    ensure!(naa_found, "no NAA designator associated with the logical unit");
    Ok(())
}

fn check_block_limits(dev: &mut Device<'_>) -> Result<(), String> {
    let limits = BlockLimits::parse(&vpd::fetch(dev, vpd::BLOCK_LIMITS)?)?;
    if limits.max_transfer != 0 && limits.optimal_transfer != 0 {
        ensure!(
            limits.optimal_transfer <= limits.max_transfer,
            "OPTIMAL TRANSFER LENGTH {} exceeds MAXIMUM TRANSFER LENGTH {}",
            limits.optimal_transfer,
            limits.max_transfer
        );
    }
    if limits.max_transfer != 0 {
        ensure!(
            u32::from(limits.optimal_transfer_granularity) <= limits.max_transfer,
            "OPTIMAL TRANSFER LENGTH GRANULARITY {} exceeds MAXIMUM TRANSFER LENGTH {}",
            limits.optimal_transfer_granularity,
            limits.max_transfer
        );
    }
    if let (Some(alignment), granularity @ 1..) = (limits.unmap_granularity_alignment, limits.optimal_unmap_granularity)
    {
        ensure!(
            alignment < granularity,
            "UNMAP GRANULARITY ALIGNMENT {alignment} not below OPTIMAL UNMAP GRANULARITY {granularity}"
        );
    }
    if let Ok(provisioning) = &dev.caps.provisioning {
        let unmap = provisioning.unmap;
        for (field, value) in [
            ("MAXIMUM UNMAP LBA COUNT", limits.max_unmap_lbas),
            ("MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT", limits.max_unmap_descriptors),
        ] {
            ensure!(
                (value != 0) == unmap,
                "{field} is {value} with LBPU={} (SBC-3: non-zero exactly when UNMAP is supported)",
                u8::from(unmap)
            );
        }
    }
    Ok(())
}

fn check_block_device_characteristics(dev: &mut Device<'_>) -> Result<(), String> {
    let page = vpd::fetch(dev, vpd::BLOCK_DEVICE_CHARACTERISTICS)?;
    let page_length = be(&page, 2..4)?;
    ensure!(
        page_length == vpd::SBC3_PAGE_LENGTH && page.len() >= 8,
        "PAGE LENGTH 0x{page_length:X}, SBC-3 requires 0x3C"
    );
    let rotation = be(&page, 4..6)?;
    ensure!(!matches!(rotation, 0x0002..=0x0400 | 0xFFFF), "MEDIUM ROTATION RATE 0x{rotation:04X} is reserved");
    let form_factor = page[7] & 0x0F;
    ensure!(form_factor <= 5, "NOMINAL FORM FACTOR {form_factor} is reserved");
    Ok(())
}

fn check_provisioning(dev: &mut Device<'_>) -> Result<(), String> {
    let provisioning = Provisioning::parse(&vpd::fetch(dev, vpd::LOGICAL_BLOCK_PROVISIONING)?)?;
    ensure!(provisioning.provisioning_type <= 2, "PROVISIONING TYPE {} is reserved", provisioning.provisioning_type);
    ensure!(provisioning.read_zeroes_field <= 2, "LBPRZ field {:03b} is reserved", provisioning.read_zeroes_field);
    Ok(())
}

pub(super) fn run(suite: &mut Suite<'_>) {
    suite.check("inquiry.standard", check_standard_data);
    suite.check("inquiry.page-code-without-evpd", |dev| {
        let response = dev.execute(&cdb::inquiry(false, vpd::UNIT_SERIAL_NUMBER, 0xFF), &[], 0xFF)?;
        expect::sense(&response, sense::INVALID_FIELD_IN_CDB)?;
        Ok(())
    });
    suite.check("inquiry.vpd-00-supported-pages", check_supported_pages);
    suite.check("inquiry.vpd-80-unit-serial-number", |dev| {
        let page = vpd::fetch(dev, vpd::UNIT_SERIAL_NUMBER)?;
        ensure!(page.len() > 4, "empty PRODUCT SERIAL NUMBER");
        printable("PRODUCT SERIAL NUMBER", &page[4..])
    });
    suite.check("inquiry.vpd-83-device-identification", check_device_identification);
    suite.check("inquiry.vpd-b0-block-limits", check_block_limits);
    suite.check("inquiry.vpd-b1-block-device-characteristics", check_block_device_characteristics);
    suite.check("inquiry.vpd-b2-logical-block-provisioning", check_provisioning);
    suite.check("inquiry.unsupported-vpd-page", |dev| {
        let listed = vpd::fetch(dev, vpd::SUPPORTED_PAGES)?;
        let code = [0xBF, 0xCE, 0x7E]
            .into_iter()
            .find(|code| !listed[4..].contains(code))
            .ok_or("the device lists every candidate page (BFh, CEh, 7Eh)")?;
        let response = dev.execute(&cdb::inquiry(true, code, 0xFF), &[], 0xFF)?;
        expect::sense(&response, sense::INVALID_FIELD_IN_CDB).map_err(|e| format!("page {code:02X}h: {e}"))?;
        Ok(())
    });
}
