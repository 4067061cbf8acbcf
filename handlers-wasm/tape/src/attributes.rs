//! READ ATTRIBUTE and WRITE ATTRIBUTE: the cartridge's medium auxiliary
//! memory (MAM, SPC-4 7.4).
//!
//! Device attributes are computed (capacities in MiB, load count, medium
//! serial number = the barcode); host attributes (0800h-0BFFh, and the
//! vendor-specific 1000h-17FFh) are kept in the cartridge header, so they
//! travel with the cartridge. One volume, one partition.

use tcmu_guest_sdk::scsi::cdb::stream::{AttributeAction, ReadAttribute, WriteAttribute};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{self, Sense, SenseCode, key};
use tcmu_guest_sdk::spc::readiness;
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::format::MAM_ROOM;
use crate::{Outcome, TapeDrive, transfer_failed};

/// ILLEGAL REQUEST, AUXILIARY MEMORY OUT OF SPACE (05/55/06).
const MAM_FULL: SenseCode = SenseCode::new(key::ILLEGAL_REQUEST, 0x55, 0x06);

/// Attribute formats.
const BINARY: u8 = 0;
const ASCII: u8 = 1;
const TEXT: u8 = 2;

/// One attribute: identifier, format and value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attribute {
    id: u16,
    format: u8,
    read_only: bool,
    value: Vec<u8>,
}

impl Attribute {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(u8::from(self.read_only) << 7 | self.format);
        out.extend_from_slice(&(self.value.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.value);
    }
}

/// Host attributes SPC-4 defines: identifier, format, length (`None`:
/// variable, up to the given maximum).
const HOST_ATTRIBUTES: [(u16, u8, usize, bool); 13] = [
    (0x0800, ASCII, 8, true),      // application vendor
    (0x0801, ASCII, 32, true),     // application name
    (0x0802, ASCII, 8, true),      // application version
    (0x0803, TEXT, 160, true),     // user medium text label
    (0x0804, ASCII, 12, true),     // date and time last written
    (0x0805, BINARY, 1, true),     // text localization identifier
    (0x0806, ASCII, 32, true),     // barcode
    (0x0807, TEXT, 80, true),      // owning host textual name
    (0x0808, TEXT, 160, true),     // media pool
    (0x0809, ASCII, 16, true),     // partition user text label
    (0x080a, BINARY, 1, true),     // load/unload at partition
    (0x080b, ASCII, 16, true),     // application format version
    (0x080c, BINARY, 1024, false), // volume coherency information (variable)
];
/// Vendor-specific host attributes: any format, up to this many bytes.
const VENDOR_HOST_RANGE: std::ops::RangeInclusive<u16> = 0x1000..=0x17ff;
const VENDOR_HOST_MAX: usize = 160;

/// Device attributes this drive reports.
const DEVICE_ATTRIBUTES: [u16; 8] = [0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0400, 0x0401, 0x0408];

fn ascii(text: &str, len: usize) -> Vec<u8> {
    let mut v = vec![b' '; len];
    for (slot, b) in v.iter_mut().zip(text.bytes()) {
        *slot = b;
    }
    v
}

/// Decode the stored attribute list (the format READ ATTRIBUTE returns).
fn decode_list(mut bytes: &[u8]) -> Vec<Attribute> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let id = u16::from_be_bytes([bytes[0], bytes[1]]);
        let format = bytes[2] & 0x03;
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        if bytes.len() < 5 + len {
            break; // a cut list: keep what is whole
        }
        out.push(Attribute { id, format, read_only: false, value: bytes[5..5 + len].to_vec() });
        bytes = &bytes[5 + len..];
    }
    out
}

impl TapeDrive {
    /// Every attribute the loaded cartridge has, ascending.
    fn attributes(&self) -> Result<Vec<Attribute>, Sense> {
        let tape = self.loaded_tape().ok_or(Sense::from(readiness::MEDIUM_NOT_PRESENT))?;
        tape.usable()?;
        let mib = |bytes: u64| (bytes >> 20).to_be_bytes().to_vec();
        let device = |id, format, value| Attribute { id, format, read_only: true, value };
        let mut all = vec![
            device(0x0000, BINARY, mib(tape.remaining())),
            device(0x0001, BINARY, mib(tape.capacity())),
            device(0x0002, BINARY, self.counters.tape_alert.to_be_bytes().to_vec()),
            device(0x0003, BINARY, tape.header.load_count.to_be_bytes().to_vec()),
            device(0x0004, BINARY, ((MAM_ROOM - tape.header.mam.len()) as u64).to_be_bytes().to_vec()),
            device(0x0400, ASCII, ascii("TCMUWASM", 8)),
            device(0x0401, ASCII, ascii(&tape.info.barcode, 32)),
            device(0x0408, BINARY, vec![0x00]), // data medium
        ];
        let host = decode_list(&tape.header.mam);
        if !host.iter().any(|a| a.id == 0x0806) {
            // The label's barcode until an application writes its own.
            all.push(Attribute { id: 0x0806, format: ASCII, read_only: false, value: ascii(&tape.info.barcode, 32) });
        }
        all.extend(host);
        all.sort_by_key(|a| a.id);
        Ok(all)
    }

    /// READ ATTRIBUTE.
    pub(crate) fn read_attribute(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ReadAttribute::parse(cmd.cdb)?;
        if request.volume != 0 {
            return Err(Sense::invalid_cdb_field(5, None));
        }
        if request.partition != 0 {
            return Err(Sense::invalid_cdb_field(7, None));
        }
        let first = request.first_attribute;
        let data = match request.action {
            AttributeAction::Values => {
                let mut body = Vec::new();
                for a in self.attributes()?.iter().filter(|a| a.id >= first) {
                    a.encode(&mut body);
                }
                with_length32(body)
            }
            AttributeAction::List => {
                let body =
                    self.attributes()?.iter().filter(|a| a.id >= first).flat_map(|a| a.id.to_be_bytes()).collect();
                with_length32(body)
            }
            AttributeAction::Supported => {
                self.attributes()?; // needs a medium like the others
                let mut ids: Vec<u16> = DEVICE_ATTRIBUTES.to_vec();
                ids.extend(HOST_ATTRIBUTES.iter().map(|(id, ..)| *id));
                ids.sort_unstable();
                with_length32(ids.into_iter().filter(|&id| id >= first).flat_map(u16::to_be_bytes).collect())
            }
            // Available data (2 bytes), first number, how many.
            AttributeAction::VolumeList | AttributeAction::PartitionList => vec![0, 2, 0, 1],
        };
        Ok(respond(xfer, cmd, &data, request.allocation_length))
    }

    /// WRITE ATTRIBUTE: host attributes only, each of its defined format
    /// and length (a length of 0 deletes it). All are checked first.
    pub(crate) fn write_attribute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = WriteAttribute::parse(cmd.cdb)?;
        if request.volume != 0 {
            return Err(Sense::invalid_cdb_field(5, None));
        }
        if request.partition != 0 {
            return Err(Sense::invalid_cdb_field(7, None));
        }
        let len = request.parameter_list_length.min(cmd.data_out_len);
        let list = xfer.read_data_out(0, len).map_err(transfer_failed)?;
        let tape = self.ready_tape()?;
        tape.usable()?;
        tape.writable()?;
        if list.len() < 4 {
            return if list.is_empty() {
                Ok(Completion::good())
            } else {
                Err(sense::PARAMETER_LIST_LENGTH_ERROR.into())
            };
        }
        let declared = u32::from_be_bytes([list[0], list[1], list[2], list[3]]) as usize;
        let body = &list[4..(4 + declared).min(list.len())];

        let mut stored = decode_list(&tape.header.mam);
        let mut at = 0;
        while at < body.len() {
            let offset = (4 + at) as u16;
            if body.len() - at < 5 {
                return Err(sense::PARAMETER_LIST_LENGTH_ERROR.into());
            }
            let id = u16::from_be_bytes([body[at], body[at + 1]]);
            let format = body[at + 2] & 0x03;
            let value_len = usize::from(u16::from_be_bytes([body[at + 3], body[at + 4]]));
            let Some(value) = body.get(at + 5..at + 5 + value_len) else {
                return Err(sense::PARAMETER_LIST_LENGTH_ERROR.into());
            };
            check_writable_attribute(id, format, value_len)
                .map_err(|byte| Sense::invalid_parameter_field(offset + byte, None))?;
            stored.retain(|a| a.id != id);
            if value_len > 0 {
                stored.push(Attribute { id, format, read_only: false, value: value.to_vec() });
            }
            at += 5 + value_len;
        }
        stored.sort_by_key(|a| a.id);
        let mut mam = Vec::new();
        for a in &stored {
            a.encode(&mut mam);
        }
        if mam.len() > MAM_ROOM {
            return Err(MAM_FULL.into());
        }
        tape.header.mam = mam;
        tape.write_header()?;
        tape.flush()?;
        Ok(Completion::good())
    }
}

/// Whether a host may write attribute `id` with this format and length;
/// else the offset (within the attribute) of the field that is wrong.
fn check_writable_attribute(id: u16, format: u8, len: usize) -> Result<(), u16> {
    if let Some(&(_, want_format, want_len, fixed)) = HOST_ATTRIBUTES.iter().find(|(a, ..)| *a == id) {
        if format != want_format {
            return Err(2);
        }
        let len_ok = len == 0 || if fixed { len == want_len } else { len <= want_len };
        return if len_ok { Ok(()) } else { Err(3) };
    }
    if VENDOR_HOST_RANGE.contains(&id) {
        return if len <= VENDOR_HOST_MAX { Ok(()) } else { Err(3) };
    }
    Err(0) // a device attribute, or not one a host may write
}

fn with_length32(body: Vec<u8>) -> Vec<u8> {
    let mut data = (body.len() as u32).to_be_bytes().to_vec();
    data.extend(body);
    data
}
