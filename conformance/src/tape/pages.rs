//! What the drive reports beyond the data: LOG SENSE (SPC-4, SSC-3's
//! pages), READ and WRITE ATTRIBUTE (SPC-4's medium auxiliary memory),
//! REPORT DENSITY SUPPORT (SSC-3), and allocation lengths shorter than the data,
//! which must cut the data and leave its length fields whole (SPC-4
//! 4.2.5.6).

use super::drive::{Drive, block, log_sense, read_attribute, read_position, report_density_support, write_attribute};
use super::limits::{TAPE_CAPACITY, tape_capacity};
use crate::common::{self, Lun, Runner, Truncation};
use crate::expect::{be, ensure};
use crate::sense;

/// Log pages of SPC-4 and SSC-3 the suite knows the layout of.
const SUPPORTED_PAGES: u8 = 0x00;
const TAPE_ALERT: u8 = 0x2E;
/// Attribute formats (SPC-4).
const BINARY: u8 = 0;
const ASCII: u8 = 1;
const TEXT: u8 = 2;
/// APPLICATION VENDOR, a host attribute of 8 ASCII bytes.
const APPLICATION_VENDOR: u16 = 0x0800;
/// REMAINING CAPACITY IN PARTITION, a read-only device attribute.
const REMAINING_CAPACITY: u16 = 0x0000;
/// Room for attribute lists.
const ATTRIBUTE_ALLOC: u32 = 8192;

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("log-sense.supported-pages", check_log_pages);
    let listed = log_page_listed(suite, TAPE_ALERT);
    suite.check_if("log-sense.tape-alert", listed, |drive, ()| {
        let page = drive.execute_good(&log_sense(TAPE_ALERT, 1024), &[], 1024)?;
        let parameters = log_parameters(&page)?;
        let codes: Vec<u16> = parameters.iter().map(|(code, _, _)| *code).collect();
        ensure!(codes == (1..=64).collect::<Vec<u16>>(), "TapeAlert parameters {codes:04X?}, expected 0001h-0040h");
        for (code, _, value) in &parameters {
            ensure!(value.len() == 1, "TapeAlert flag {code:04X}h is {} bytes, expected 1", value.len());
        }
        Ok(())
    });
    let listed = log_page_listed(suite, TAPE_CAPACITY);
    suite.check_if("log-sense.tape-capacity", listed, check_tape_capacity);
    suite.check("log-sense.unsupported-page", |drive| {
        let supported = drive.execute_good(&log_sense(SUPPORTED_PAGES, 1024), &[], 1024)?;
        let page = [0x3E, 0x2F, 0x30]
            .into_iter()
            .find(|c| !supported[4..].contains(c))
            .ok_or("every candidate page exists")?;
        drive
            .execute_expecting(&log_sense(page, 1024), &[], 1024, sense::INVALID_FIELD_IN_CDB)
            .map_err(|e| format!("log page {page:02X}h: {e}"))?;
        Ok(())
    });
    suite.check("read-attribute.values-list-and-supported", check_attribute_lists);
    suite.check("write-attribute.host-attribute", check_write_attribute);
    suite.check("write-attribute.read-only-attribute", |drive| {
        let list = attribute_list(REMAINING_CAPACITY, BINARY, &[0; 8]);
        drive.execute_expecting(
            &write_attribute(list.len() as u32),
            &list,
            0,
            sense::INVALID_FIELD_IN_PARAMETER_LIST,
        )?;
        Ok(())
    });
    suite.check("report-density-support", check_density_support);
    for truncation in truncations() {
        let name =
            format!("allocation.{}", truncation.what.to_lowercase().replace([' ', '(', ')'], "-").replace("--", "-"));
        let name = name.trim_end_matches('-').to_owned();
        suite.check(&name, |drive| {
            // Something on the tape, so the position is not all zeroes.
            drive.write(&block(0, 64, 0x01))?;
            truncation.check(drive)
        });
    }
}

/// The truncations of a tape drive: the SPC ones and LOG SENSE, READ
/// ATTRIBUTE, READ POSITION (long form) and REPORT DENSITY SUPPORT.
fn truncations() -> Vec<Truncation> {
    let mut all = common::spc_truncations(false);
    all.extend([
        Truncation {
            what: "LOG SENSE 00h",
            cdb_for: Box::new(|alloc| log_sense(SUPPORTED_PAGES, alloc as u16)),
            full: 1024,
            short: 5,
            declared_len: |data| Ok(4 + be(data, 2..4)?),
        },
        Truncation {
            what: "READ ATTRIBUTE",
            cdb_for: Box::new(|alloc| read_attribute(0x00, 0, alloc)),
            full: ATTRIBUTE_ALLOC,
            short: 8,
            declared_len: |data| Ok(4 + be(data, 0..4)?),
        },
        Truncation {
            what: "READ POSITION long form",
            cdb_for: Box::new(|alloc| read_position(0x06, alloc as u16)),
            full: 32,
            short: 16,
            declared_len: |_| Ok(32),
        },
        Truncation {
            what: "REPORT DENSITY SUPPORT",
            cdb_for: Box::new(|alloc| report_density_support(false, alloc as u16)),
            full: 4096,
            short: 4,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
    ]);
    all
}

/// Whether LOG SENSE 00h lists `code` (else the check of it is skipped).
fn log_page_listed(suite: &mut Runner<Drive<'_>>, code: u8) -> Result<(), String> {
    let supported = suite
        .dev
        .execute_good(&log_sense(SUPPORTED_PAGES, 1024), &[], 1024)
        .map_err(|e| format!("LOG SENSE 00h: {e}"))?;
    if supported.get(4..).unwrap_or_default().contains(&code) {
        Ok(())
    } else {
        Err(format!("log page {code:02X}h is not listed"))
    }
}

/// A log page's parameters (code, control byte, value), which must tile
/// the page PAGE LENGTH describes, in ascending order of code.
pub(super) fn log_parameters(page: &[u8]) -> Result<Vec<(u16, u8, Vec<u8>)>, String> {
    ensure!(page.len() >= 4, "a log page of {} bytes, shorter than its header", page.len());
    let declared = 4 + be(page, 2..4)? as usize;
    ensure!(declared == page.len(), "PAGE LENGTH accounts for {declared} bytes, {} returned", page.len());
    let mut parameters: Vec<(u16, u8, Vec<u8>)> = Vec::new();
    let mut at = 4;
    while at < page.len() {
        ensure!(at + 4 <= page.len(), "a parameter header at byte {at} is cut off");
        let code = be(page, at..at + 2)? as u16;
        let len = usize::from(page[at + 3]);
        ensure!(at + 4 + len <= page.len(), "parameter {code:04X}h claims {len} bytes, {} remain", page.len() - at - 4);
        if let Some((previous, _, _)) = parameters.last() {
            ensure!(*previous < code, "parameter {code:04X}h follows {previous:04X}h: not ascending");
        }
        parameters.push((code, page[at + 2], page[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    Ok(parameters)
}

/// LOG SENSE 00h lists itself and ascending codes; every page it lists
/// comes back with its own code and parameters that tile it.
fn check_log_pages(drive: &mut Drive<'_>) -> Result<(), String> {
    let supported = drive.execute_good(&log_sense(SUPPORTED_PAGES, 1024), &[], 1024)?;
    ensure!(supported.len() >= 4, "LOG SENSE 00h returned {} bytes", supported.len());
    ensure!(supported[0] & 0x3F == SUPPORTED_PAGES, "LOG SENSE 00h came back as page {:02X}h", supported[0] & 0x3F);
    let declared = 4 + be(&supported, 2..4)? as usize;
    ensure!(declared == supported.len(), "PAGE LENGTH accounts for {declared} bytes, {} returned", supported.len());
    let codes = &supported[4..];
    ensure!(codes.first() == Some(&SUPPORTED_PAGES), "page 00h does not list itself first: {codes:02X?}");
    ensure!(codes.windows(2).all(|w| w[0] < w[1]), "page codes not ascending: {codes:02X?}");
    for &code in &codes[1..] {
        let page =
            drive.execute_good(&log_sense(code, 4096), &[], 4096).map_err(|e| format!("log page {code:02X}h: {e}"))?;
        ensure!(
            page.first().map(|b| b & 0x3F) == Some(code),
            "log page {code:02X}h came back as {:02X?}",
            page.first()
        );
        log_parameters(&page).map_err(|e| format!("log page {code:02X}h: {e}"))?;
    }
    Ok(())
}

/// LOG SENSE 31h: the maximum capacity of the cartridge in MiB, all of it
/// remaining on an erased tape, and less once a MiB and more is written.
fn check_tape_capacity(drive: &mut Drive<'_>, (): ()) -> Result<(), String> {
    let capacity = drive.params.capacity;
    let mib = capacity >> 20;
    let before = tape_capacity(drive)?.ok_or("page 31h disappeared")?;
    ensure!(
        before.maximum <= mib && (before.maximum + 1) << 20 >= capacity - capacity / 16,
        "maximum capacity {} MiB for a cartridge of {capacity} bytes",
        before.maximum
    );
    ensure!(
        before.remaining <= before.maximum && before.remaining + 1 >= before.maximum,
        "remaining capacity {} MiB of {} on an erased tape",
        before.remaining,
        before.maximum
    );
    let len = drive.big_block();
    let blocks = (3 << 19) / len + 1;
    drive.write_blocks(blocks, len, 0x91)?;
    let after = tape_capacity(drive)?.ok_or("page 31h disappeared")?;
    ensure!(
        after.remaining < before.remaining,
        "remaining capacity {} MiB after writing {} bytes, {} before",
        after.remaining,
        u64::from(blocks) * u64::from(len),
        before.remaining
    );
    ensure!(
        after.maximum == before.maximum,
        "maximum capacity changed from {} to {} MiB",
        before.maximum,
        after.maximum
    );
    Ok(())
}

/// One attribute of a READ ATTRIBUTE list.
struct Attribute {
    id: u16,
    read_only: bool,
    format: u8,
    value: Vec<u8>,
}

/// Parse READ ATTRIBUTE values: AVAILABLE DATA, then attributes that tile
/// it in ascending order, each of a defined format, ASCII ones printable.
fn parse_attributes(data: &[u8]) -> Result<Vec<Attribute>, String> {
    ensure!(data.len() >= 4, "READ ATTRIBUTE returned {} bytes", data.len());
    let declared = 4 + be(data, 0..4)? as usize;
    ensure!(declared == data.len(), "AVAILABLE DATA accounts for {declared} bytes, {} returned", data.len());
    let mut attributes: Vec<Attribute> = Vec::new();
    let mut at = 4;
    while at < data.len() {
        ensure!(at + 5 <= data.len(), "an attribute header at byte {at} is cut off");
        let id = be(data, at..at + 2)? as u16;
        let len = be(data, at + 3..at + 5)? as usize;
        ensure!(at + 5 + len <= data.len(), "attribute {id:04X}h claims {len} bytes, {} remain", data.len() - at - 5);
        let attribute = Attribute {
            id,
            read_only: data[at + 2] & 0x80 != 0,
            format: data[at + 2] & 0x03,
            value: data[at + 5..at + 5 + len].to_vec(),
        };
        ensure!(attribute.format != 3, "attribute {id:04X}h has the reserved format 11b");
        if attribute.format == ASCII {
            common::printable(&format!("attribute {id:04X}h"), &attribute.value)?;
        }
        if let Some(previous) = attributes.last() {
            ensure!(previous.id < id, "attribute {id:04X}h follows {:04X}h: not ascending", previous.id);
        }
        attributes.push(attribute);
        at += 5 + len;
    }
    Ok(attributes)
}

/// A two-byte identifier list with a four-byte length (ATTRIBUTE LIST,
/// SUPPORTED ATTRIBUTES), ascending.
fn parse_identifiers(data: &[u8], what: &str) -> Result<Vec<u16>, String> {
    ensure!(data.len() >= 4, "{what}: {} bytes", data.len());
    let declared = 4 + be(data, 0..4)? as usize;
    ensure!(declared == data.len(), "{what}: AVAILABLE DATA accounts for {declared} bytes, {} returned", data.len());
    ensure!(data.len().is_multiple_of(2), "{what}: an odd number of identifier bytes");
    let ids: Vec<u16> = data[4..].chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    ensure!(ids.windows(2).all(|w| w[0] < w[1]), "{what}: identifiers not ascending: {ids:04X?}");
    Ok(ids)
}

/// ATTRIBUTE VALUES, ATTRIBUTE LIST and SUPPORTED ATTRIBUTES agree:
/// the list names exactly the attributes the values carry, every one of
/// them supported; device attributes (below 0800h) are read only; FIRST
/// ATTRIBUTE starts the values there.
fn check_attribute_lists(drive: &mut Drive<'_>) -> Result<(), String> {
    let values = drive.execute_good(&read_attribute(0x00, 0, ATTRIBUTE_ALLOC), &[], ATTRIBUTE_ALLOC)?;
    let attributes = parse_attributes(&values)?;
    ensure!(!attributes.is_empty(), "the cartridge has no attributes at all");
    for a in &attributes {
        ensure!(a.id >= 0x0800 || a.read_only, "device attribute {:04X}h is not READ ONLY", a.id);
        ensure!(matches!(a.format, BINARY | ASCII | TEXT), "attribute {:04X}h format {}", a.id, a.format);
    }
    let value_ids: Vec<u16> = attributes.iter().map(|a| a.id).collect();
    let list = drive.execute_good(&read_attribute(0x01, 0, ATTRIBUTE_ALLOC), &[], ATTRIBUTE_ALLOC)?;
    let list = parse_identifiers(&list, "ATTRIBUTE LIST")?;
    ensure!(list == value_ids, "ATTRIBUTE LIST {list:04X?}, the values are of {value_ids:04X?}");
    let supported = drive.execute_good(&read_attribute(0x05, 0, ATTRIBUTE_ALLOC), &[], ATTRIBUTE_ALLOC)?;
    let supported = parse_identifiers(&supported, "SUPPORTED ATTRIBUTES")?;
    for id in &value_ids {
        ensure!(supported.contains(id), "attribute {id:04X}h is present but not in SUPPORTED ATTRIBUTES");
    }
    let from = value_ids[value_ids.len() / 2];
    let tail = drive.execute_good(&read_attribute(0x00, from, ATTRIBUTE_ALLOC), &[], ATTRIBUTE_ALLOC)?;
    let tail: Vec<u16> = parse_attributes(&tail)?.iter().map(|a| a.id).collect();
    let expected: Vec<u16> = value_ids.iter().copied().filter(|&id| id >= from).collect();
    ensure!(tail == expected, "FIRST ATTRIBUTE {from:04X}h: got {tail:04X?}, expected {expected:04X?}");
    Ok(())
}

/// A WRITE ATTRIBUTE parameter list of one attribute.
fn attribute_list(id: u16, format: u8, value: &[u8]) -> Vec<u8> {
    let mut attribute = id.to_be_bytes().to_vec();
    attribute.push(format);
    attribute.extend_from_slice(&(value.len() as u16).to_be_bytes());
    attribute.extend_from_slice(value);
    let mut list = (attribute.len() as u32).to_be_bytes().to_vec();
    list.extend(attribute);
    list
}

/// APPLICATION VENDOR written reads back; written with length 0 it is gone.
fn check_write_attribute(drive: &mut Drive<'_>) -> Result<(), String> {
    let value = *b"TCMUCHK ";
    let list = attribute_list(APPLICATION_VENDOR, ASCII, &value);
    drive.execute_good(&write_attribute(list.len() as u32), &list, 0)?;
    let read = |drive: &mut Drive<'_>| -> Result<Option<Attribute>, String> {
        let data =
            drive.execute_good(&read_attribute(0x00, APPLICATION_VENDOR, ATTRIBUTE_ALLOC), &[], ATTRIBUTE_ALLOC)?;
        Ok(parse_attributes(&data)?.into_iter().find(|a| a.id == APPLICATION_VENDOR))
    };
    let written = read(drive)?.ok_or("APPLICATION VENDOR written, then not there")?;
    ensure!(
        (written.format, written.read_only, written.value.as_slice()) == (ASCII, false, &value[..]),
        "APPLICATION VENDOR reads back as format {} read-only {} {:?}",
        written.format,
        written.read_only,
        written.value.escape_ascii().to_string()
    );
    let delete = attribute_list(APPLICATION_VENDOR, ASCII, &[]);
    drive.execute_good(&write_attribute(delete.len() as u32), &delete, 0)?;
    ensure!(read(drive)?.is_none(), "APPLICATION VENDOR written with length 0 is still there");
    Ok(())
}

/// REPORT DENSITY SUPPORT: 52-byte descriptors, one of them the density
/// MODE SENSE reports; with MEDIA, the loaded medium's.
fn check_density_support(drive: &mut Drive<'_>) -> Result<(), String> {
    let current = drive.density;
    for media in [false, true] {
        let data = drive.execute_good(&report_density_support(media, 4096), &[], 4096)?;
        ensure!(data.len() >= 4, "REPORT DENSITY SUPPORT returned {} bytes", data.len());
        let declared = 2 + be(&data, 0..2)? as usize;
        ensure!(
            declared == data.len(),
            "AVAILABLE DENSITY SUPPORT LENGTH accounts for {declared}, {} returned",
            data.len()
        );
        let descriptors = &data[4..];
        ensure!(
            !descriptors.is_empty() && descriptors.len() % 52 == 0,
            "{} bytes of density descriptors, not a multiple of 52",
            descriptors.len()
        );
        let primaries: Vec<u8> = descriptors.chunks(52).map(|d| d[0]).collect();
        for d in descriptors.chunks(52) {
            common::printable(&format!("density {:02X}h names", d[0]), &d[16..52])?;
        }
        ensure!(
            primaries.contains(&current),
            "MEDIA={}: densities {primaries:02X?} lack the current {current:02X}h",
            u8::from(media)
        );
    }
    Ok(())
}
