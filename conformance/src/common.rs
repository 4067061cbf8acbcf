//! What the tape and changer suites share: running named checks with the
//! device put back in a known state after each, the SPC commands every
//! device type answers (standard INQUIRY, VPD pages 00h, 80h and 83h,
//! REQUEST SENSE) and the short-allocation rule of SPC-4 4.2.5.6.

use std::panic::{self, AssertUnwindSafe};

use crate::expect::{self, be, ensure};
use crate::outcome::CheckOutcome;
use crate::sense::{self, KEY_UNIT_ATTENTION, Sense, SenseCode};
use crate::target::{Response, STATUS_CHECK_CONDITION, ScsiTarget};

/// VPD page codes of SPC-4.
pub(crate) mod vpd {
    pub(crate) const SUPPORTED_PAGES: u8 = 0x00;
    pub(crate) const UNIT_SERIAL_NUMBER: u8 = 0x80;
    pub(crate) const DEVICE_IDENTIFICATION: u8 = 0x83;
}

/// Allocation length for INQUIRY data and VPD pages.
pub(crate) const INQUIRY_ALLOC: u16 = 0xFF;
/// TEST UNIT READYs spent clearing unit attentions left from before the run.
const UNIT_ATTENTION_RETRIES: usize = 8;

/// A logical unit the suites send commands to.
pub(crate) trait Lun {
    /// The target behind it.
    fn target(&mut self) -> &mut dyn ScsiTarget;

    /// Run one command; a transport failure becomes the check's failure, as
    /// does more data-in than there was room for.
    fn execute(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Response, String> {
        let response = self
            .target()
            .execute(cdb, data_out, data_in_len)
            .map_err(|e| format!("transport failure on opcode 0x{:02X}: {e}", cdb[0]))?;
        ensure!(
            response.data_in.len() <= data_in_len as usize,
            "opcode 0x{:02X} returned {} bytes of data-in into a {data_in_len}-byte buffer",
            cdb[0],
            response.data_in.len()
        );
        Ok(response)
    }

    /// Run one command that must end GOOD; returns its data-in.
    fn execute_good(&mut self, cdb: &[u8], data_out: &[u8], data_in_len: u32) -> Result<Vec<u8>, String> {
        let response = self.execute(cdb, data_out, data_in_len)?;
        expect::good(&response).map_err(|e| format!("{}: {e}", describe(cdb)))?;
        Ok(response.data_in)
    }

    /// Run one command that must end in CHECK CONDITION with `code`.
    fn execute_expecting(
        &mut self,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: u32,
        code: SenseCode,
    ) -> Result<Sense, String> {
        let response = self.execute(cdb, data_out, data_in_len)?;
        expect::sense(&response, code).map_err(|e| format!("{}: {e}", describe(cdb)))
    }
}

/// A CDB as failure messages show it: `CDB 08 02 00 10 00 00`.
pub(crate) fn describe(cdb: &[u8]) -> String {
    let bytes: Vec<String> = cdb.iter().map(|b| format!("{b:02X}")).collect();
    format!("CDB {}", bytes.join(" "))
}

/// A device the suite can put back in its known state between checks.
pub(crate) trait Settle {
    /// Undo what a check may have left behind (a mode change, a moved
    /// cartridge, a locked door).
    fn settle(&mut self) -> Result<(), String>;
}

/// The device under test and the outcomes so far.
pub(crate) struct Runner<D> {
    pub(crate) dev: D,
    outcomes: Vec<CheckOutcome>,
}

impl<D: Settle> Runner<D> {
    pub(crate) fn new(dev: D) -> Self {
        Self { dev, outcomes: Vec::new() }
    }

    pub(crate) fn into_outcomes(self) -> Vec<CheckOutcome> {
        self.outcomes
    }

    /// Run one check, then settle the device; a settle that fails fails the
    /// check, which left the device in a state the suite cannot undo. A
    /// panic (a bug in the suite or the target adapter) fails that check
    /// instead of taking the whole run down.
    pub(crate) fn check(&mut self, name: &str, check: impl FnOnce(&mut D) -> Result<(), String>) {
        let result = guarded(&mut self.dev, check);
        let settled = guarded(&mut self.dev, |dev| dev.settle());
        let result = match (result, settled) {
            (result, Ok(())) => result,
            (Ok(()), Err(e)) => Err(format!("putting the device back failed: {e}")),
            (Err(e), Err(settle)) => Err(format!("{e}; putting the device back also failed: {settle}")),
        };
        self.record(name, result);
    }

    /// Run one check without settling afterwards (checks of the state the
    /// device starts in, before there is a state to go back to).
    pub(crate) fn check_as_is(&mut self, name: &str, check: impl FnOnce(&mut D) -> Result<(), String>) {
        let result = guarded(&mut self.dev, check);
        self.record(name, result);
    }

    /// Run `check` with what `applies` holds if it is `Ok`; otherwise record
    /// a skip with its reason.
    pub(crate) fn check_if<T>(
        &mut self,
        name: &str,
        applies: Result<T, String>,
        check: impl FnOnce(&mut D, T) -> Result<(), String>,
    ) {
        match applies {
            Ok(value) => self.check(name, |dev| check(dev, value)),
            Err(reason) => self.outcomes.push(CheckOutcome::skip(name, reason)),
        }
    }

    fn record(&mut self, name: &str, result: Result<(), String>) {
        self.outcomes.push(match result {
            Ok(()) => CheckOutcome::pass(name),
            Err(reason) => CheckOutcome::fail(name, reason),
        });
    }
}

fn guarded<D>(dev: &mut D, f: impl FnOnce(&mut D) -> Result<(), String>) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| f(dev)))
        .unwrap_or_else(|payload| Err(format!("check panicked: {}", panic_message(payload.as_ref()))))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// Whether a response is CHECK CONDITION with a UNIT ATTENTION sense key.
pub(crate) fn is_unit_attention(response: &Response) -> bool {
    response.status == STATUS_CHECK_CONDITION
        && Sense::decode(&response.sense).is_ok_and(|sense| sense.code.key == KEY_UNIT_ATTENTION)
}

/// Issue TEST UNIT READY until it stops reporting UNIT ATTENTION. Anything
/// else is left for the checks to report.
pub(crate) fn clear_unit_attentions(lun: &mut impl Lun) {
    for _ in 0..UNIT_ATTENTION_RETRIES {
        match lun.execute(&[0; 6], &[], 0) {
            Ok(response) if is_unit_attention(&response) => {}
            _ => return,
        }
    }
}

/// INQUIRY CDB.
pub(crate) fn inquiry(evpd: bool, page: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![0x12, u8::from(evpd), page, hi, lo, 0]
}

/// Every byte is printable ASCII (20h-7Eh), as SPC-4 requires of ASCII fields.
pub(crate) fn printable(field: &str, bytes: &[u8]) -> Result<(), String> {
    ensure!(
        bytes.iter().all(|b| (0x20..=0x7E).contains(b)),
        "{field} is not printable ASCII: {:?}",
        bytes.escape_ascii().to_string()
    );
    Ok(())
}

/// Standard INQUIRY data (SPC-4 6.6): at least 36 bytes, as long as
/// ADDITIONAL LENGTH says, peripheral qualifier 0 with `device_type`,
/// RESPONSE DATA FORMAT 2, SPC-3 or later, printable identification.
/// Returns the data.
pub(crate) fn check_standard_inquiry(lun: &mut impl Lun, device_type: u8) -> Result<Vec<u8>, String> {
    let data = lun.execute_good(&inquiry(false, 0, INQUIRY_ALLOC), &[], INQUIRY_ALLOC.into())?;
    ensure!(data.len() >= 36, "{} bytes of standard data, SPC-4 requires at least 36", data.len());
    let declared = 5 + usize::from(data[4]);
    ensure!(
        data.len() == declared.min(INQUIRY_ALLOC.into()),
        "ADDITIONAL LENGTH accounts for {declared} bytes, {} returned",
        data.len()
    );
    ensure!(
        data[0] == device_type,
        "peripheral byte 0x{:02X}, expected 0x{device_type:02X} (qualifier 0, device type {device_type:02X}h)",
        data[0]
    );
    ensure!(data[3] & 0x0F == 2, "RESPONSE DATA FORMAT {} expected 2", data[3] & 0x0F);
    ensure!((0x05..=0x07).contains(&data[2]), "VERSION 0x{:02X}, expected SPC-3 (05h) or later", data[2]);
    printable("T10 VENDOR IDENTIFICATION", &data[8..16])?;
    printable("PRODUCT IDENTIFICATION", &data[16..32])?;
    printable("PRODUCT REVISION LEVEL", &data[32..36])?;
    Ok(data)
}

/// Fetch a VPD page, which must come back GOOD with its own page code, the
/// device's peripheral byte and as many bytes as PAGE LENGTH says.
pub(crate) fn vpd_page(lun: &mut impl Lun, code: u8, device_type: u8) -> Result<Vec<u8>, String> {
    let page = lun
        .execute_good(&inquiry(true, code, INQUIRY_ALLOC), &[], INQUIRY_ALLOC.into())
        .map_err(|e| format!("VPD page {code:02X}h: {e}"))?;
    ensure!(page.len() >= 4, "VPD page {code:02X}h is {} bytes, shorter than its header", page.len());
    ensure!(page[1] == code, "VPD page {code:02X}h came back as page {:02X}h", page[1]);
    ensure!(
        page[0] == device_type,
        "VPD page {code:02X}h peripheral byte 0x{:02X}, expected 0x{device_type:02X}",
        page[0]
    );
    let declared = 4 + be(&page, 2..4)? as usize;
    ensure!(
        page.len() == declared.min(INQUIRY_ALLOC.into()),
        "VPD page {code:02X}h PAGE LENGTH accounts for {declared} bytes, {} returned",
        page.len()
    );
    Ok(page)
}

/// VPD page 00h: ascending, listing 00h, 80h, 83h and `required`, every
/// listed page fetchable. Returns the page codes.
pub(crate) fn check_supported_pages(lun: &mut impl Lun, device_type: u8, required: &[u8]) -> Result<Vec<u8>, String> {
    let page = vpd_page(lun, vpd::SUPPORTED_PAGES, device_type)?;
    let codes = page[4..].to_vec();
    ensure!(codes.windows(2).all(|pair| pair[0] < pair[1]), "page codes not in ascending order: {codes:02X?}");
    let base = [vpd::SUPPORTED_PAGES, vpd::UNIT_SERIAL_NUMBER, vpd::DEVICE_IDENTIFICATION];
    for &code in base.iter().chain(required) {
        ensure!(codes.contains(&code), "page {code:02X}h missing from {codes:02X?}");
    }
    for &code in &codes {
        vpd_page(lun, code, device_type)?;
    }
    Ok(codes)
}

/// VPD page 80h: a non-empty, printable PRODUCT SERIAL NUMBER. Returns it
/// without trailing blanks.
pub(crate) fn check_serial_number(lun: &mut impl Lun, device_type: u8) -> Result<String, String> {
    let page = vpd_page(lun, vpd::UNIT_SERIAL_NUMBER, device_type)?;
    let serial = &page[4..];
    ensure!(serial.iter().any(|&b| b != b' '), "empty PRODUCT SERIAL NUMBER");
    printable("PRODUCT SERIAL NUMBER", serial)?;
    Ok(String::from_utf8_lossy(serial).trim_end().to_owned())
}

/// Designator types of a designation descriptor (SPC-4 7.8).
const DESIGNATOR_T10_VENDOR_ID: u8 = 0x1;
const DESIGNATOR_EUI64: u8 = 0x2;
const DESIGNATOR_NAA: u8 = 0x3;
const DESIGNATOR_SCSI_NAME: u8 = 0x8;
const CODE_SET_BINARY: u8 = 0x1;
const CODE_SET_ASCII: u8 = 0x2;

/// VPD page 83h: descriptors that tile the page, ASCII ones printable,
/// NAA ones of their NAA's length, and at least one logical unit
/// designator of a type SPC-4 accepts as the LU's name (T10 vendor
/// ID, EUI-64, NAA or SCSI name string).
pub(crate) fn check_device_identification(lun: &mut impl Lun, device_type: u8) -> Result<(), String> {
    let page = vpd_page(lun, vpd::DEVICE_IDENTIFICATION, device_type)?;
    let mut rest = &page[4..];
    let mut named = false;
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
        if designator_type == DESIGNATOR_NAA {
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
        }
        let names_the_lu = matches!(
            designator_type,
            DESIGNATOR_T10_VENDOR_ID | DESIGNATOR_EUI64 | DESIGNATOR_NAA | DESIGNATOR_SCSI_NAME
        );
        named |= association == 0 && names_the_lu && !designator.is_empty();
    }
    ensure!(named, "no designator naming the logical unit (T10 vendor ID, EUI-64, NAA or SCSI name)");
    Ok(())
}

/// An unsupported VPD page and a page code without EVPD are both INVALID
/// FIELD IN CDB.
pub(crate) fn check_vpd_errors(lun: &mut impl Lun, device_type: u8) -> Result<(), String> {
    let listed = vpd_page(lun, vpd::SUPPORTED_PAGES, device_type)?;
    let code = [0xBF, 0xCE, 0x7E]
        .into_iter()
        .find(|code| !listed[4..].contains(code))
        .ok_or("the device lists every candidate page (BFh, CEh, 7Eh)")?;
    lun.execute_expecting(&inquiry(true, code, INQUIRY_ALLOC), &[], INQUIRY_ALLOC.into(), sense::INVALID_FIELD_IN_CDB)
        .map_err(|e| format!("page {code:02X}h: {e}"))?;
    lun.execute_expecting(
        &inquiry(false, vpd::UNIT_SERIAL_NUMBER, INQUIRY_ALLOC),
        &[],
        INQUIRY_ALLOC.into(),
        sense::INVALID_FIELD_IN_CDB,
    )
    .map_err(|e| format!("PAGE CODE 80h without EVPD: {e}"))?;
    Ok(())
}

/// REQUEST SENSE of a ready device with nothing pending: GOOD and NO
/// SENSE, in fixed format (70h) without DESC and descriptor format (72h)
/// with it (SPC-4, REQUEST SENSE).
pub(crate) fn check_request_sense(lun: &mut impl Lun) -> Result<(), String> {
    let fixed = lun.execute_good(&[0x03, 0, 0, 0, 252, 0], &[], 252)?;
    ensure!(fixed.len() >= 18, "{} bytes of fixed-format sense, expected at least 18", fixed.len());
    ensure!(fixed[0] & 0x7F == 0x70, "response code 0x{:02X}, expected 70h without DESC", fixed[0] & 0x7F);
    let code = Sense::decode(&fixed).map_err(|e| e.to_string())?.code;
    ensure!(code == sense::NO_SENSE, "REQUEST SENSE reports {code} on a ready device, expected 00/00/00");
    let descriptor = lun.execute_good(&[0x03, 1, 0, 0, 252, 0], &[], 252)?;
    ensure!(descriptor.len() >= 8, "{} bytes of descriptor-format sense, expected at least 8", descriptor.len());
    ensure!(descriptor[0] & 0x7F == 0x72, "response code 0x{:02X} with DESC set, expected 72h", descriptor[0] & 0x7F);
    let code = Sense::decode(&descriptor).map_err(|e| e.to_string())?.code;
    ensure!(code == sense::NO_SENSE, "descriptor-format REQUEST SENSE reports {code}, expected 00/00/00");
    Ok(())
}

/// A command whose response starts with a header giving its length.
pub(crate) struct Truncation {
    pub(crate) what: &'static str,
    /// The CDB with a given allocation length.
    pub(crate) cdb_for: Box<dyn Fn(u32) -> Vec<u8>>,
    /// Room for the whole response.
    pub(crate) full: u32,
    /// The short allocation length under test.
    pub(crate) short: u32,
    /// The response length its header declares.
    pub(crate) declared_len: fn(&[u8]) -> Result<u64, String>,
}

impl Truncation {
    /// Fetch the response in full, which must be what its header declares,
    /// then with `short` bytes of room, which must be GOOD and exactly its
    /// first bytes (SPC-4 4.2.5.6: the header still describes the whole).
    pub(crate) fn check(&self, lun: &mut impl Lun) -> Result<(), String> {
        let complete = lun.execute_good(&(self.cdb_for)(self.full), &[], self.full)?;
        let declared = (self.declared_len)(&complete)?;
        ensure!(
            complete.len() as u64 == declared.min(self.full.into()),
            "{}: the full response's header accounts for {declared} bytes, {} returned",
            self.what,
            complete.len()
        );
        ensure!(
            complete.len() > self.short as usize,
            "{}: the full response is only {} bytes, nothing to truncate at {}",
            self.what,
            complete.len(),
            self.short
        );
        let cdb = (self.cdb_for)(self.short);
        let response = lun.execute(&cdb, &[], self.short)?;
        expect::good(&response).map_err(|e| format!("{} with {}: {e}", self.what, describe(&cdb)))?;
        expect::same_bytes(
            &format!("{} with a {}-byte allocation", self.what, self.short),
            &response.data_in,
            &complete[..self.short as usize],
        )
    }
}

/// The truncations every device type has: standard INQUIRY to 5 bytes, VPD
/// page 00h to 4, MODE SENSE(6) to 4 and MODE SENSE(10) to 8 (all pages;
/// `dbd` for devices without block descriptors).
pub(crate) fn spc_truncations(dbd: bool) -> Vec<Truncation> {
    let dbd = if dbd { 0x08 } else { 0 };
    vec![
        Truncation {
            what: "standard INQUIRY",
            cdb_for: Box::new(|alloc| inquiry(false, 0, alloc as u16)),
            full: 0xFF,
            short: 5,
            declared_len: |data| Ok(5 + be(data, 4..5)?),
        },
        Truncation {
            what: "VPD page 00h",
            cdb_for: Box::new(|alloc| inquiry(true, 0, alloc as u16)),
            full: 0xFF,
            short: 4,
            declared_len: |data| Ok(4 + be(data, 2..4)?),
        },
        Truncation {
            what: "MODE SENSE(6)",
            cdb_for: Box::new(move |alloc| mode_sense6(dbd, 0x3F, alloc as u8)),
            full: 0xFF,
            short: 4,
            declared_len: |data| Ok(1 + be(data, 0..1)?),
        },
        Truncation {
            what: "MODE SENSE(10)",
            cdb_for: Box::new(move |alloc| mode_sense10(dbd, 0x3F, alloc as u16)),
            full: 4096,
            short: 8,
            declared_len: |data| Ok(2 + be(data, 0..2)?),
        },
    ]
}

/// MODE SENSE(6) of the current values; `byte1` carries DBD.
pub(crate) fn mode_sense6(byte1: u8, page: u8, alloc: u8) -> Vec<u8> {
    vec![0x1A, byte1, page, 0, alloc, 0]
}

/// MODE SENSE(10) of the current values; `byte1` carries DBD.
pub(crate) fn mode_sense10(byte1: u8, page: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![0x5A, byte1, page, 0, 0, 0, 0, hi, lo, 0]
}

/// The pages of MODE SENSE(6) or (10) data: (page code, page bytes from
/// the page code on). The pages must tile the data after the header and
/// block descriptors.
pub(crate) fn mode_pages(data: &[u8], ten: bool) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let (header_len, descriptors_len) = if ten { (8, be(data, 6..8)? as usize) } else { (4, be(data, 3..4)? as usize) };
    let declared = if ten { 2 + be(data, 0..2)? as usize } else { 1 + be(data, 0..1)? as usize };
    ensure!(declared == data.len(), "MODE DATA LENGTH accounts for {declared} bytes, {} returned", data.len());
    let mut at = header_len + descriptors_len;
    ensure!(at <= data.len(), "block descriptors of {descriptors_len} bytes run past the {}-byte data", data.len());
    let mut pages = Vec::new();
    while at < data.len() {
        ensure!(at + 2 <= data.len(), "a page header at byte {at} is cut off");
        let subpage_format = data[at] & 0x40 != 0;
        let (len, header) =
            if subpage_format { (be(data, at + 2..at + 4)? as usize, 4) } else { (usize::from(data[at + 1]), 2) };
        ensure!(
            at + header + len <= data.len(),
            "page {:02X}h at byte {at} claims {len} bytes, {} remain",
            data[at] & 0x3F,
            data.len() - at - header
        );
        pages.push((data[at] & 0x3F, data[at..at + header + len].to_vec()));
        at += header + len;
    }
    Ok(pages)
}
