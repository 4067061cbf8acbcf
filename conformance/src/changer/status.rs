//! READ ELEMENT STATUS data (SMC-3): the element status header, then
//! element status pages, each a page header and descriptors of one length.

use crate::expect::{be, ensure};

/// Element type codes.
pub(crate) mod kind {
    pub(crate) const ALL: u8 = 0;
    pub(crate) const TRANSPORT: u8 = 1;
    pub(crate) const STORAGE: u8 = 2;
    pub(crate) const IMPORT_EXPORT: u8 = 3;
    pub(crate) const DATA_TRANSFER: u8 = 4;

    pub(crate) fn name(code: u8) -> &'static str {
        match code {
            TRANSPORT => "medium transport",
            STORAGE => "storage",
            IMPORT_EXPORT => "import/export",
            DATA_TRANSFER => "data transfer",
            _ => "unknown",
        }
    }
}

/// Bits of descriptor byte 2.
pub(crate) mod flag {
    pub(crate) const FULL: u8 = 0x01;
    pub(crate) const IMPEXP: u8 = 0x02;
    pub(crate) const EXCEPT: u8 = 0x04;
    pub(crate) const ACCESS: u8 = 0x08;
}

/// Byte 9: SVALID.
const SVALID: u8 = 0x80;
/// Bytes of a volume tag: 32 of identifier, 2 reserved, 2 of sequence number.
pub(crate) const VOLTAG_LEN: usize = 36;
/// The descriptor bytes every element has.
const BASE_LEN: usize = 12;

/// One element descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub(crate) element_type: u8,
    pub(crate) bytes: Vec<u8>,
    pvoltag: bool,
    avoltag: bool,
}

impl Descriptor {
    pub(crate) fn address(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    pub(crate) fn flags(&self) -> u8 {
        self.bytes[2]
    }

    pub(crate) fn full(&self) -> bool {
        self.flags() & flag::FULL != 0
    }

    /// ASC and ASCQ of an exception.
    pub(crate) fn exception(&self) -> (u8, u8) {
        (self.bytes[4], self.bytes[5])
    }

    /// The source storage element address, when SVALID.
    pub(crate) fn source(&self) -> Option<u16> {
        (self.bytes[9] & SVALID != 0).then(|| u16::from_be_bytes([self.bytes[10], self.bytes[11]]))
    }

    /// The primary volume tag, when the page carries them.
    pub(crate) fn volume_tag(&self) -> Option<&[u8]> {
        self.pvoltag.then(|| &self.bytes[BASE_LEN..BASE_LEN + VOLTAG_LEN])
    }

    /// The volume identifier of the primary tag without its blank padding;
    /// `None` without tags or when it is all blanks or zeroes.
    pub(crate) fn barcode(&self) -> Option<String> {
        let tag = self.volume_tag()?;
        let identifier = &tag[..32];
        let end = identifier.iter().rposition(|&b| b != b' ' && b != 0).map_or(0, |i| i + 1);
        (end > 0).then(|| String::from_utf8_lossy(&identifier[..end]).into_owned())
    }

    /// Where the device identifier fields start (SMC-3: after the tags).
    fn identifier_at(&self) -> usize {
        BASE_LEN + VOLTAG_LEN * (usize::from(self.pvoltag) + usize::from(self.avoltag))
    }

    /// CODE SET, IDENTIFIER TYPE and the identifier, if the descriptor is
    /// long enough to carry the fields.
    pub(crate) fn identifier(&self) -> Result<Option<Identifier<'_>>, String> {
        let at = self.identifier_at();
        let Some(header) = self.bytes.get(at..at + 4) else { return Ok(None) };
        let len = usize::from(header[3]);
        let identifier = self.bytes.get(at + 4..at + 4 + len).ok_or_else(|| {
            format!(
                "element {:04X}h: IDENTIFIER LENGTH {len} runs past its {}-byte descriptor",
                self.address(),
                self.bytes.len()
            )
        })?;
        Ok(Some(Identifier { code_set: header[0] & 0x0F, id: identifier }))
    }
}

/// A drive's device identifier (DVCID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identifier<'d> {
    pub(crate) code_set: u8,
    pub(crate) id: &'d [u8],
}

/// One element status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) element_type: u8,
    pub(crate) pvoltag: bool,
    pub(crate) descriptor_len: usize,
    pub(crate) descriptors: Vec<Descriptor>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// FIRST ELEMENT ADDRESS REPORTED.
    pub(crate) first: u16,
    /// NUMBER OF ELEMENTS AVAILABLE.
    pub(crate) count: u16,
    pub(crate) pages: Vec<Page>,
}

impl Report {
    /// Parse a complete report: BYTE COUNT OF REPORT AVAILABLE is what
    /// follows the header, pages tile it, each page's byte count is whole
    /// descriptors of its DESCRIPTOR LENGTH, long enough for the tags it
    /// says it carries, the descriptors add up to NUMBER OF ELEMENTS and
    /// the first is at FIRST ELEMENT ADDRESS REPORTED.
    pub(crate) fn parse(data: &[u8]) -> Result<Self, String> {
        ensure!(data.len() >= 8, "READ ELEMENT STATUS returned {} bytes, less than its header", data.len());
        let first = be(data, 0..2)? as u16;
        let count = be(data, 2..4)? as u16;
        let byte_count = be(data, 5..8)? as usize;
        ensure!(
            byte_count == data.len() - 8,
            "BYTE COUNT OF REPORT AVAILABLE {byte_count}, {} bytes follow the header",
            data.len() - 8
        );
        let mut pages = Vec::new();
        let mut at = 8;
        while at < data.len() {
            ensure!(at + 8 <= data.len(), "an element status page header at byte {at} is cut off");
            let header = &data[at..at + 8];
            let element_type = header[0];
            let pvoltag = header[1] & 0x80 != 0;
            let avoltag = header[1] & 0x40 != 0;
            let descriptor_len = be(header, 2..4)? as usize;
            let bytes = be(header, 5..8)? as usize;
            ensure!(
                (kind::TRANSPORT..=kind::DATA_TRANSFER).contains(&element_type),
                "page at byte {at}: ELEMENT TYPE CODE {element_type}"
            );
            let min = BASE_LEN + VOLTAG_LEN * (usize::from(pvoltag) + usize::from(avoltag));
            ensure!(
                descriptor_len >= min,
                "{} page: ELEMENT DESCRIPTOR LENGTH {descriptor_len}, its tags need {min}",
                kind::name(element_type)
            );
            ensure!(
                bytes.is_multiple_of(descriptor_len),
                "{} page: BYTE COUNT OF DESCRIPTOR DATA AVAILABLE {bytes} is not whole descriptors of {descriptor_len}",
                kind::name(element_type)
            );
            let body = data.get(at + 8..at + 8 + bytes).ok_or_else(|| {
                format!(
                    "{} page: {bytes} bytes of descriptors, {} remain",
                    kind::name(element_type),
                    data.len() - at - 8
                )
            })?;
            let descriptors = body
                .chunks(descriptor_len)
                .map(|d| Descriptor { element_type, bytes: d.to_vec(), pvoltag, avoltag })
                .collect();
            pages.push(Page { element_type, pvoltag, descriptor_len, descriptors });
            at += 8 + bytes;
        }
        let described: usize = pages.iter().map(|p| p.descriptors.len()).sum();
        ensure!(described == usize::from(count), "NUMBER OF ELEMENTS AVAILABLE {count}, {described} descriptors");
        if let Some(d) = pages.first().and_then(|p| p.descriptors.first()) {
            ensure!(
                d.address() == first,
                "FIRST ELEMENT ADDRESS REPORTED {first:04X}h, the first descriptor is {:04X}h",
                d.address()
            );
        }
        Ok(Self { first, count, pages })
    }

    /// Every descriptor, page by page.
    pub(crate) fn descriptors(&self) -> impl Iterator<Item = &Descriptor> {
        self.pages.iter().flat_map(|p| &p.descriptors)
    }

    /// The descriptor of `address`.
    pub(crate) fn element(&self, address: u16) -> Result<&Descriptor, String> {
        self.descriptors()
            .find(|d| d.address() == address)
            .ok_or_else(|| format!("element {address:04X}h is not reported"))
    }

    /// Where each cartridge is, by its volume tag: (address, barcode).
    pub(crate) fn placement(&self) -> Result<Vec<(u16, String)>, String> {
        let mut placed = Vec::new();
        for d in self.descriptors() {
            match (d.full(), d.barcode()) {
                (true, Some(barcode)) => placed.push((d.address(), barcode)),
                (true, None) => return Err(format!("element {:04X}h is full without a volume tag", d.address())),
                (false, Some(barcode)) => {
                    return Err(format!("element {:04X}h is empty with volume tag {barcode:?}", d.address()));
                }
                (false, None) => {}
            }
        }
        Ok(placed)
    }
}

/// READ ELEMENT STATUS.
pub(crate) fn read_element_status(
    element_type: u8,
    voltag: bool,
    start: u16,
    count: u16,
    dvcid: bool,
    alloc: u32,
) -> Vec<u8> {
    let [s1, s0] = start.to_be_bytes();
    let [c1, c0] = count.to_be_bytes();
    let [_, a2, a1, a0] = alloc.to_be_bytes();
    vec![0xB8, u8::from(voltag) << 4 | element_type, s1, s0, c1, c0, u8::from(dvcid), a2, a1, a0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of two slots with volume tags, the first full.
    fn report() -> Vec<u8> {
        let mut data = vec![0x04, 0x00, 0, 2, 0, 0, 0, 8 + 2 * 48];
        data.extend_from_slice(&[kind::STORAGE, 0x80, 0, 48, 0, 0, 0, 96]);
        for (address, barcode) in [(0x0400u16, Some(b"TAPE01")), (0x0401, None)] {
            let mut d = vec![0u8; 48];
            d[0..2].copy_from_slice(&address.to_be_bytes());
            if let Some(barcode) = barcode {
                d[2] = flag::FULL | flag::ACCESS;
                d[12..44].fill(b' ');
                d[12..18].copy_from_slice(barcode);
            }
            data.extend(d);
        }
        data
    }

    #[test]
    fn parses_pages_descriptors_and_volume_tags() {
        let report = Report::parse(&report()).unwrap();
        assert_eq!((report.first, report.count, report.pages.len()), (0x0400, 2, 1));
        assert_eq!(report.placement().unwrap(), [(0x0400, "TAPE01".to_owned())]);
        assert!(!report.element(0x0401).unwrap().full());
        assert_eq!(report.element(0x0400).unwrap().identifier().unwrap(), None, "no room for DVCID fields");
    }

    #[test]
    fn refuses_a_byte_count_that_is_not_the_report() {
        let mut data = report();
        data[7] = 48;
        assert!(Report::parse(&data).unwrap_err().contains("BYTE COUNT OF REPORT AVAILABLE 48"));
        let mut data = report();
        data[3] = 3;
        assert!(Report::parse(&data).unwrap_err().contains("NUMBER OF ELEMENTS AVAILABLE 3"));
        // FULL clear while the tag names a cartridge: where is it?
        let mut data = report();
        data[8 + 8 + 2] = flag::ACCESS;
        let report = Report::parse(&data).unwrap();
        assert!(report.placement().unwrap_err().contains("empty with volume tag \"TAPE01\""));
    }
}
