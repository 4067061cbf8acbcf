//! READ ELEMENT STATUS (SMC-3 6.12): the element status data header, then
//! one element status page per element type in the report, each a page
//! header and fixed-length element descriptors.
//!
//! The report starts at the first element of the requested type (or of any
//! type, for type 0) whose address is at or after the starting address and
//! holds at most NUMBER OF ELEMENTS descriptors. The header's byte count is
//! always that of the whole report, even when the allocation length cuts
//! the data: mtx reads it to ask again with a buffer big enough. Only the
//! bytes the initiator can take are encoded, so a huge library with a small
//! allocation length costs little.

use tcmu_guest_sdk::scsi::bytes::{put_be16, put_be24};
use tcmu_guest_sdk::scsi::cdb::changer::ReadElementStatus;
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{FieldPointer, Sense};
use tcmu_guest_sdk::{Command, Element, ElementKind, Transfer};

use crate::{Changer, INVALID_ELEMENT_ADDRESS, Outcome};

/// Element status data header and element status page header, each.
const HEADER_LEN: usize = 8;
/// The descriptor bytes every element has: address, flags, ASC/ASCQ,
/// SValid and source address.
const BASE_LEN: usize = 12;
/// A volume tag: 32 bytes of identifier, blank padded, then 2 reserved
/// bytes and a 2-byte volume sequence number.
const VOLTAG_LEN: usize = 36;
const VOLUME_IDENTIFIER_LEN: usize = 32;
/// CODE SET, IDENTIFIER TYPE, reserved and IDENTIFIER LENGTH, which follow
/// the volume tags in every descriptor (zero unless a drive's identifier
/// was asked for).
const IDENTIFIER_HEADER_LEN: usize = 4;
/// The longest identifier the one-byte IDENTIFIER LENGTH can describe.
const MAX_IDENTIFIER_LEN: usize = u8::MAX as usize;
/// The largest value of a 24-bit byte count.
const MAX_BYTE_COUNT: usize = 0xff_ffff;

/// Element descriptor flag bits (byte 2).
mod flag {
    /// The element holds a cartridge.
    pub const FULL: u8 = 0x01;
    /// Import/export: the operator put the cartridge in (clear: the picker did).
    pub const IMPEXP: u8 = 0x02;
    /// The picker can reach the element.
    pub const ACCESS: u8 = 0x08;
    /// Import/export: the element can take cartridges out of the library.
    pub const EXENAB: u8 = 0x10;
    /// Import/export: the element can bring cartridges in.
    pub const INENAB: u8 = 0x20;
}

/// Byte 9: the source storage element address is valid.
const SVALID: u8 = 0x80;
/// MEDIUM TYPE "data medium": every cartridge in the host's library is a
/// data cartridge image.
const DATA_MEDIUM: u8 = 0x01;
/// Page header byte 1: descriptors carry the primary volume tag.
const PVOLTAG: u8 = 0x80;
/// DVCID code set 2: the identifier is ASCII.
const CODE_SET_ASCII: u8 = 0x02;
/// DVCID identifier type 0 (vendor specific): the drive's unit serial
/// number alone, as VPD page 80h reports it, without the vendor and product
/// a T10 vendor ID (type 1) would need and the library does not know.
const IDENTIFIER_TYPE_SERIAL: u8 = 0x00;

impl Changer {
    /// READ ELEMENT STATUS. CURDATA asks not to move anything to find out;
    /// nothing ever moves for that, so it changes nothing.
    pub(crate) fn read_element_status(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ReadElementStatus::parse(cmd.cdb)?;
        let elements = self.elements()?;
        let limit = (request.allocation_length as usize).min(cmd.data_in_len as usize);
        let report = element_status(&elements, &request, limit)?;
        Ok(respond(xfer, cmd, &report, request.allocation_length))
    }
}

/// One element status page: the elements of one type in the report.
struct Page<'e> {
    kind: ElementKind,
    elements: Vec<&'e Element>,
    /// Bytes per descriptor, the same for every descriptor of the page.
    descriptor_len: usize,
}

/// The report for `request` over `elements` (in address order), encoded up
/// to at least `limit` bytes (the rest is counted, not built). A starting
/// address past every element of the requested type is INVALID ELEMENT
/// ADDRESS.
pub(crate) fn element_status(
    elements: &[Element],
    request: &ReadElementStatus,
    limit: usize,
) -> Result<Vec<u8>, Sense> {
    let wanted = |e: &&Element| request.element_type == 0 || e.kind.code() == request.element_type;
    let mut candidates = elements.iter().filter(wanted).filter(|e| e.address >= request.starting_address).peekable();
    let Some(first) = candidates.peek().map(|e| e.address) else {
        return Err(Sense::from(INVALID_ELEMENT_ADDRESS).with_field_pointer(FieldPointer::cdb(2, None)));
    };
    let selected: Vec<&Element> = candidates.take(usize::from(request.count)).collect();

    // One page per element type, in the order the types first appear.
    let mut pages: Vec<Page<'_>> = Vec::new();
    for element in &selected {
        match pages.iter_mut().find(|p| p.kind == element.kind) {
            Some(page) => page.elements.push(element),
            None => pages.push(Page { kind: element.kind, elements: vec![element], descriptor_len: 0 }),
        }
    }
    for page in &mut pages {
        let identifier_len = if request.dvcid && page.kind == ElementKind::DataTransfer {
            page.elements.iter().map(|e| identifier(e).len()).max().unwrap_or(0)
        } else {
            0
        };
        let voltag_len = if request.voltag { VOLTAG_LEN } else { 0 };
        page.descriptor_len = BASE_LEN + voltag_len + IDENTIFIER_HEADER_LEN + identifier_len;
    }

    let report_len: usize = pages.iter().map(|p| HEADER_LEN + p.elements.len() * p.descriptor_len).sum();
    let mut out = Vec::with_capacity(limit.min(HEADER_LEN + report_len));
    out.extend_from_slice(&[0; HEADER_LEN]);
    put_be16(&mut out[0..], selected.first().map_or(first, |e| e.address));
    // At most NUMBER OF ELEMENTS, a 16-bit field: this fits.
    put_be16(&mut out[2..], u16::try_from(selected.len()).unwrap_or(u16::MAX));
    put_be24(&mut out[5..], byte_count(report_len));

    'pages: for page in &pages {
        let mut header = [0u8; HEADER_LEN];
        header[0] = page.kind.code();
        header[1] = if request.voltag { PVOLTAG } else { 0 };
        // BASE_LEN + VOLTAG_LEN + IDENTIFIER_HEADER_LEN + MAX_IDENTIFIER_LEN fits 16 bits.
        put_be16(&mut header[2..], page.descriptor_len as u16);
        put_be24(&mut header[5..], byte_count(page.elements.len() * page.descriptor_len));
        out.extend_from_slice(&header);
        for element in &page.elements {
            if out.len() >= limit {
                break 'pages;
            }
            out.extend_from_slice(&descriptor(element, request, page.descriptor_len));
        }
    }
    Ok(out)
}

/// A byte count for a 24-bit field; a report too big for it (over 16 MiB,
/// which no allocation length can take either) says as much as fits.
fn byte_count(len: usize) -> u32 {
    len.min(MAX_BYTE_COUNT) as u32
}

/// One element descriptor of `len` bytes.
fn descriptor(element: &Element, request: &ReadElementStatus, len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    put_be16(&mut d[0..], element.address);
    d[2] = flags(element);
    // Bytes 3-8: reserved, no exception (ASC/ASCQ zero), and for drives no
    // SCSI bus address the library could vouch for (ID VALID clear).
    if let Some(source) = element.source.filter(|&s| element.full() && s != element.address) {
        d[9] = SVALID;
        put_be16(&mut d[10..], source);
    }
    if element.full() {
        d[9] |= DATA_MEDIUM;
    }
    let mut at = BASE_LEN;
    if request.voltag {
        // An empty element's volume tag is all zeroes.
        if let Some(barcode) = &element.barcode {
            let field = &mut d[at..at + VOLUME_IDENTIFIER_LEN];
            field.fill(b' ');
            let n = barcode.len().min(VOLUME_IDENTIFIER_LEN);
            field[..n].copy_from_slice(&barcode.as_bytes()[..n]);
        }
        at += VOLTAG_LEN;
    }
    if request.dvcid && element.kind == ElementKind::DataTransfer {
        let id = identifier(element);
        if !id.is_empty() {
            d[at] = CODE_SET_ASCII;
            d[at + 1] = IDENTIFIER_TYPE_SERIAL;
            d[at + 3] = id.len() as u8; // at most MAX_IDENTIFIER_LEN
            // The page's descriptors are as long as its longest identifier;
            // shorter ones are followed by zeroes.
            d[at + IDENTIFIER_HEADER_LEN..][..id.len()].copy_from_slice(&id);
        }
    }
    d
}

/// The flag byte. The picker reaches every element (the host has no door a
/// mail slot could be open behind), and mail slots work both ways.
fn flags(element: &Element) -> u8 {
    let full = if element.full() { flag::FULL } else { 0 };
    match element.kind {
        // ACCESS is reserved for the picker itself.
        ElementKind::Transport => full,
        ElementKind::Storage | ElementKind::DataTransfer => full | flag::ACCESS,
        ElementKind::ImportExport => {
            let operator = if element.full() && element.imported { flag::IMPEXP } else { 0 };
            full | operator | flag::ACCESS | flag::EXENAB | flag::INENAB
        }
    }
}

/// A drive's DVCID identifier: its serial number, as printable ASCII (code
/// set 2 promises no more), cut to what IDENTIFIER LENGTH can say.
fn identifier(element: &Element) -> Vec<u8> {
    let serial = element.drive_serial.as_deref().unwrap_or_default();
    serial.bytes().take(MAX_IDENTIFIER_LEN).map(|b| if b.is_ascii_graphic() || b == b' ' { b } else { b'?' }).collect()
}
