//! The tape drive under test: the target, what the suite learnt about it,
//! CDB builders for SSC commands, the stream bits and signed INFORMATION
//! of tape sense data, and READ POSITION in its three forms.

use super::{TapeParams, TapeTarget};
use crate::common::{self, Lun, Settle, describe};
use crate::expect::{self, be, ensure};
use crate::pattern;
use crate::sense::SenseCode;
use crate::target::{Response, STATUS_CHECK_CONDITION, STATUS_GOOD, ScsiTarget};

/// Sense codes SSC-3 gives tape conditions.
pub(crate) mod code {
    use crate::sense::SenseCode;

    /// NO SENSE, NO ADDITIONAL SENSE INFORMATION (00/00/00), with ILI.
    pub(crate) const NO_SENSE: SenseCode = SenseCode::new(0x00, 0x00, 0x00);
    /// NO SENSE, FILEMARK DETECTED (00/00/01).
    pub(crate) const FILEMARK: SenseCode = SenseCode::new(0x00, 0x00, 0x01);
    /// NO SENSE, END-OF-PARTITION/MEDIUM DETECTED (00/00/02): early warning.
    pub(crate) const EARLY_WARNING: SenseCode = SenseCode::new(0x00, 0x00, 0x02);
    /// NO SENSE, BEGINNING-OF-PARTITION/MEDIUM DETECTED (00/00/04).
    pub(crate) const BEGINNING_OF_PARTITION: SenseCode = SenseCode::new(0x00, 0x00, 0x04);
    /// BLANK CHECK, END-OF-DATA DETECTED (08/00/05).
    pub(crate) const END_OF_DATA: SenseCode = SenseCode::new(0x08, 0x00, 0x05);
    /// VOLUME OVERFLOW, END-OF-PARTITION/MEDIUM DETECTED (0D/00/02).
    pub(crate) const VOLUME_OVERFLOW: SenseCode = SenseCode::new(0x0D, 0x00, 0x02);
    /// NOT READY, MEDIUM NOT PRESENT (02/3A/00).
    pub(crate) const MEDIUM_NOT_PRESENT: SenseCode = SenseCode::new(0x02, 0x3A, 0x00);
    /// NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY (02/04/01).
    pub(crate) const BECOMING_READY: SenseCode = SenseCode::new(0x02, 0x04, 0x01);
    /// NOT READY, INITIALIZING COMMAND REQUIRED (02/04/02): loaded, not threaded.
    pub(crate) const INITIALIZING_COMMAND_REQUIRED: SenseCode = SenseCode::new(0x02, 0x04, 0x02);
    /// UNIT ATTENTION, NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (06/28/00).
    pub(crate) const MEDIUM_MAY_HAVE_CHANGED: SenseCode = SenseCode::new(0x06, 0x28, 0x00);
    /// ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED (05/53/02).
    pub(crate) const MEDIUM_REMOVAL_PREVENTED: SenseCode = SenseCode::new(0x05, 0x53, 0x02);
}

/// Opcodes of SSC-3 and SPC-4 the suite sends to a tape drive.
pub(crate) mod op {
    pub(crate) const TEST_UNIT_READY: u8 = 0x00;
    pub(crate) const REWIND: u8 = 0x01;
    pub(crate) const READ_BLOCK_LIMITS: u8 = 0x05;
    pub(crate) const READ_6: u8 = 0x08;
    pub(crate) const WRITE_6: u8 = 0x0A;
    pub(crate) const WRITE_FILEMARKS_6: u8 = 0x10;
    pub(crate) const SPACE_6: u8 = 0x11;
    pub(crate) const VERIFY_6: u8 = 0x13;
    pub(crate) const MODE_SELECT_6: u8 = 0x15;
    pub(crate) const ERASE_6: u8 = 0x19;
    pub(crate) const LOAD_UNLOAD: u8 = 0x1B;
    pub(crate) const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    pub(crate) const LOCATE_10: u8 = 0x2B;
    pub(crate) const READ_POSITION: u8 = 0x34;
    pub(crate) const REPORT_DENSITY_SUPPORT: u8 = 0x44;
    pub(crate) const LOG_SENSE: u8 = 0x4D;
    pub(crate) const READ_ATTRIBUTE: u8 = 0x8C;
    pub(crate) const WRITE_ATTRIBUTE: u8 = 0x8D;
    pub(crate) const SPACE_16: u8 = 0x91;
    pub(crate) const LOCATE_16: u8 = 0x92;
}

/// What SPACE moves over (SSC-3, the CODE field of SPACE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpaceCode {
    Blocks = 0,
    Filemarks = 1,
    EndOfData = 3,
}

/// The stream bits of byte 2 of fixed-format sense (and of the stream
/// commands descriptor).
pub(crate) const FILEMARK: u8 = 0x80;
pub(crate) const EOM: u8 = 0x40;
pub(crate) const ILI: u8 = 0x20;

/// Tape sense data as the checks need it: the code, the stream bits and
/// the INFORMATION field as the signed residual SSC makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamSense {
    pub(crate) code: SenseCode,
    /// FILEMARK, EOM and ILI as in fixed-format byte 2.
    pub(crate) bits: u8,
    /// INFORMATION when VALID: two's complement, 32 bits in fixed format.
    pub(crate) information: Option<i64>,
}

impl StreamSense {
    /// Decode fixed or descriptor format (information descriptor 00h,
    /// stream commands descriptor 04h).
    pub(crate) fn decode(sense: &[u8]) -> Result<Self, String> {
        let Some(&first) = sense.first() else { return Err("no sense data".into()) };
        match first & 0x7F {
            0x70 | 0x71 => {
                ensure!(sense.len() >= 14, "fixed-format sense of {} bytes, too short for ASC/ASCQ", sense.len());
                let information = i32::from_be_bytes([sense[3], sense[4], sense[5], sense[6]]);
                Ok(Self {
                    code: SenseCode::new(sense[2] & 0x0F, sense[12], sense[13]),
                    bits: sense[2] & (FILEMARK | EOM | ILI),
                    information: (first & 0x80 != 0).then_some(i64::from(information)),
                })
            }
            0x72 | 0x73 => {
                ensure!(sense.len() >= 8, "descriptor-format sense of {} bytes, shorter than its header", sense.len());
                let end = sense.len().min(8 + usize::from(sense[7]));
                let mut decoded =
                    Self { code: SenseCode::new(sense[1] & 0x0F, sense[2], sense[3]), bits: 0, information: None };
                let mut at = 8;
                while at + 2 <= end {
                    let len = 2 + usize::from(sense[at + 1]);
                    let Some(descriptor) = sense.get(at..(at + len).min(end)) else { break };
                    match descriptor[0] {
                        0x00 if descriptor.len() >= 12 && descriptor[2] & 0x80 != 0 => {
                            let value: [u8; 8] = descriptor[4..12].try_into().expect("eight bytes");
                            decoded.information = Some(i64::from_be_bytes(value));
                        }
                        0x04 if descriptor.len() >= 4 => decoded.bits = descriptor[3] & (FILEMARK | EOM | ILI),
                        _ => {}
                    }
                    at += len;
                }
                Ok(decoded)
            }
            other => Err(format!("unknown sense response code 0x{other:02X}")),
        }
    }
}

impl std::fmt::Display for StreamSense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        for (bit, name) in [(FILEMARK, "FILEMARK"), (EOM, "EOM"), (ILI, "ILI")] {
            if self.bits & bit != 0 {
                write!(f, " {name}")?;
            }
        }
        match self.information {
            Some(information) => write!(f, " INFORMATION {information}"),
            None => write!(f, " (VALID clear)"),
        }
    }
}

/// What a check expects of the INFORMATION field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Info {
    /// VALID set and this residual.
    Is(i64),
    /// Zero, or VALID clear: nothing was left undone.
    ZeroOrAbsent,
    /// Whatever the device says.
    Any,
}

/// What READ POSITION reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// Logical object number (long form).
    pub(crate) object: u64,
    /// Logical file identifier: filemarks between BOP and here.
    pub(crate) file: u64,
    pub(crate) bop: bool,
    pub(crate) eop: bool,
}

/// Block length of the known state: variable mode.
pub(crate) const VARIABLE: u32 = 0;

/// The drive under test.
pub(crate) struct Drive<'t> {
    target: &'t mut dyn TapeTarget,
    pub(crate) params: TapeParams,
    /// Whether a cartridge is in the drive, and whether its tab is set.
    pub(crate) loaded: Option<bool>,
    /// The drive was told to unload (LOAD UNLOAD) and not yet to load.
    pub(crate) ejected: bool,
    /// The density code the drive reported at the start (MODE SELECT
    /// sends it back).
    pub(crate) density: u8,
    /// The device-specific byte of the mode header at the start, WP clear.
    pub(crate) device_specific: u8,
    /// Whether `density` and `device_specific` hold what the drive said.
    mode_learned: bool,
    /// MAXIMUM BLOCK LENGTH LIMIT of READ BLOCK LIMITS.
    pub(crate) max_block: u32,
}

impl Lun for Drive<'_> {
    fn target(&mut self) -> &mut dyn ScsiTarget {
        self.target
    }
}

impl<'t> Drive<'t> {
    pub(crate) fn new(target: &'t mut dyn TapeTarget, params: TapeParams) -> Self {
        Self {
            target,
            params,
            loaded: None,
            ejected: false,
            density: 0,
            device_specific: 0,
            mode_learned: false,
            max_block: 64 << 10,
        }
    }

    /// The largest block the data checks write: 64 KiB, or less if the
    /// drive takes less.
    pub(crate) fn big_block(&self) -> u32 {
        self.max_block.min(64 << 10)
    }

    /// Put the cartridge in (the host's part of a load).
    pub(crate) fn load(&mut self, write_protected: bool) -> Result<(), String> {
        self.target.load(write_protected).map_err(|e| format!("loading the cartridge failed: {e}"))?;
        self.loaded = Some(write_protected);
        self.ejected = false;
        Ok(())
    }

    /// Take the cartridge out (the host's part of an unload).
    pub(crate) fn unload(&mut self) -> Result<(), String> {
        self.target.unload().map_err(|e| format!("unloading the cartridge failed: {e}"))?;
        self.loaded = None;
        self.ejected = false;
        Ok(())
    }

    /// TEST UNIT READY until GOOD, at most 16 times; the codes seen before.
    pub(crate) fn thread(&mut self) -> Result<Vec<SenseCode>, String> {
        let mut seen = Vec::new();
        for _ in 0..16 {
            let response = self.execute(&[op::TEST_UNIT_READY, 0, 0, 0, 0, 0], &[], 0)?;
            if response.status == STATUS_GOOD {
                return Ok(seen);
            }
            let sense = response.decoded_sense().map_err(|e| format!("TEST UNIT READY: {response} ({e})"))?;
            seen.push(sense.code);
            ensure!(
                [code::BECOMING_READY, code::MEDIUM_MAY_HAVE_CHANGED].contains(&sense.code)
                    || sense.code.key == crate::sense::KEY_UNIT_ATTENTION,
                "TEST UNIT READY after a load reported {} (seen so far: {})",
                sense.code,
                codes(&seen)
            );
        }
        Err(format!("the drive did not become ready in 16 TEST UNIT READYs: {}", codes(&seen)))
    }

    /// Run a command that must stop as `want` says; returns its response.
    pub(crate) fn expect_stream(
        &mut self,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: u32,
        want: Stop,
    ) -> Result<Response, String> {
        let response = self.execute(cdb, data_out, data_in_len)?;
        stream(&response, want).map_err(|e| format!("{}: {e}", describe(cdb)))?;
        Ok(response)
    }

    /// WRITE(6) of one variable-length block.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.execute_good(&transfer6(op::WRITE_6, 0, data.len() as u32), data, 0).map(drop)
    }

    /// WRITE(6) FIXED of `data`, whole blocks of `block` bytes.
    pub(crate) fn write_fixed(&mut self, data: &[u8], block: u32) -> Result<(), String> {
        let blocks = data.len() as u32 / block;
        self.execute_good(&transfer6(op::WRITE_6, 1, blocks), data, 0).map(drop)
    }

    /// WRITE FILEMARKS(6) of `count` marks.
    pub(crate) fn filemarks(&mut self, count: u32) -> Result<(), String> {
        self.execute_good(&transfer6(op::WRITE_FILEMARKS_6, 0, count), &[], 0).map(drop)
    }

    /// READ(6) of a variable-length block that must be exactly `want`.
    pub(crate) fn read_expecting(&mut self, want: &[u8]) -> Result<(), String> {
        let cdb = transfer6(op::READ_6, 0, want.len() as u32);
        let data = self.execute_good(&cdb, &[], want.len() as u32)?;
        expect::same_bytes(&format!("{} data", describe(&cdb)), &data, want)
    }

    /// REWIND.
    pub(crate) fn rewind(&mut self) -> Result<(), String> {
        self.execute_good(&[op::REWIND, 0, 0, 0, 0, 0], &[], 0).map(drop)
    }

    /// SPACE(6) that must end GOOD.
    pub(crate) fn space(&mut self, code: SpaceCode, count: i32) -> Result<(), String> {
        self.execute_good(&space6(code, count), &[], 0).map(drop)
    }

    /// LOCATE(10) to logical object `object`, which must end GOOD.
    pub(crate) fn locate(&mut self, object: u32) -> Result<(), String> {
        self.execute_good(&locate10(object), &[], 0).map(drop)
    }

    /// ERASE(6), short, at the position.
    pub(crate) fn erase(&mut self) -> Result<(), String> {
        self.execute_good(&[op::ERASE_6, 0, 0, 0, 0, 0], &[], 0).map(drop)
    }

    /// MODE SELECT(6) of a block descriptor with the drive's density and
    /// `block_length` (0: variable), and the device-specific byte it had.
    pub(crate) fn set_block_length(&mut self, block_length: u32) -> Result<(), String> {
        if !self.mode_learned {
            self.learn_mode()?;
        }
        let list = self.block_descriptor_list(block_length);
        self.execute_good(&mode_select6(list.len() as u8), &list, 0).map(drop)
    }

    /// Remember the density and device-specific byte MODE SENSE(6) reports,
    /// for MODE SELECT to send back.
    pub(crate) fn learn_mode(&mut self) -> Result<(), String> {
        let data = self.execute_good(&common::mode_sense6(0, 0x3F, 0xFF), &[], 0xFF)?;
        ensure!(data.len() >= 12 && data[3] == 8, "MODE SENSE(6) has no 8-byte block descriptor: {data:02X?}");
        self.density = data[4];
        self.device_specific = data[2] & 0x7F;
        self.mode_learned = true;
        Ok(())
    }

    /// The MODE SELECT(6) parameter list of a block descriptor.
    pub(crate) fn block_descriptor_list(&self, block_length: u32) -> Vec<u8> {
        let l = block_length.to_be_bytes();
        vec![0, 0, self.device_specific & 0x7F, 8, self.density, 0, 0, 0, 0, l[1], l[2], l[3]]
    }

    /// The block length MODE SENSE(6) reports in the block descriptor.
    pub(crate) fn block_length(&mut self) -> Result<u32, String> {
        let data = self.execute_good(&common::mode_sense6(0, 0x3F, 0xFF), &[], 0xFF)?;
        ensure!(data.len() >= 12 && data[3] == 8, "MODE SENSE(6) has no 8-byte block descriptor: {data:02X?}");
        Ok(be(&data, 9..12)? as u32)
    }

    /// Write `blocks` variable-length blocks of `len` bytes tagged
    /// `tag`; returns them.
    pub(crate) fn write_blocks(&mut self, count: u32, len: u32, tag: u8) -> Result<Vec<Vec<u8>>, String> {
        let mut written = Vec::new();
        for i in 0..count {
            let data = block(u64::from(i), len, tag);
            self.write(&data).map_err(|e| format!("writing block {i}: {e}"))?;
            written.push(data);
        }
        Ok(written)
    }

    /// READ POSITION in all three forms, which must agree; returns the
    /// position.
    pub(crate) fn position(&mut self) -> Result<Position, String> {
        let long = self.execute_good(&read_position(0x06, 32), &[], 32)?;
        ensure!(long.len() == 32, "READ POSITION long form: {} bytes, expected 32", long.len());
        ensure!(long[0] & 0x0C == 0, "long form: MPU or LONU set (position unknown): 0x{:02X}", long[0]);
        ensure!(be(&long, 4..8)? == 0, "long form: PARTITION NUMBER {}, expected 0", be(&long, 4..8)?);
        let pos = Position {
            object: be(&long, 8..16)?,
            file: be(&long, 16..24)?,
            bop: long[0] & 0x80 != 0,
            eop: long[0] & 0x40 != 0,
        };
        ensure!(
            pos.bop == (pos.object == 0),
            "long form: BOP {} at logical object {} (one partition: BOP exactly at object 0)",
            u8::from(pos.bop),
            pos.object
        );

        let short = self.execute_good(&read_position(0x00, 0), &[], 20)?;
        ensure!(short.len() == 20, "READ POSITION short form: {} bytes, expected 20", short.len());
        ensure!(short[0] & 0x04 == 0, "short form: LOLU set (position unknown): 0x{:02X}", short[0]);
        ensure!(
            short[0] & 0xC0 == long[0] & 0xC0,
            "short form BOP/EOP 0x{:02X}, long form 0x{:02X}",
            short[0],
            long[0]
        );
        let first = be(&short, 4..8)?;
        ensure!(first == pos.object, "short form: FIRST LOGICAL OBJECT LOCATION {first}, long form {}", pos.object);
        let buffered = be(&short, 13..16)?;
        let last = be(&short, 8..12)?;
        ensure!(
            buffered != 0 || last == first,
            "short form: LAST LOGICAL OBJECT LOCATION {last} differs from FIRST {first} with an empty buffer"
        );

        let extended = self.execute_good(&read_position(0x08, 32), &[], 32)?;
        ensure!(extended.len() == 32, "READ POSITION extended form: {} bytes, expected 32", extended.len());
        ensure!(
            be(&extended, 2..4)? == 0x1C,
            "extended form: ADDITIONAL LENGTH {}, expected 1Ch",
            be(&extended, 2..4)?
        );
        ensure!(extended[0] & 0xC0 == long[0] & 0xC0, "extended form BOP/EOP 0x{:02X}", extended[0]);
        let first = be(&extended, 8..16)?;
        ensure!(first == pos.object, "extended form: FIRST LOGICAL OBJECT LOCATION {first}, long form {}", pos.object);
        Ok(pos)
    }

    /// READ POSITION must say logical object `object` in logical file
    /// `file`, before early warning.
    pub(crate) fn expect_at(&mut self, object: u64, file: u64) -> Result<(), String> {
        let pos = self.position()?;
        ensure!(
            (pos.object, pos.file) == (object, file),
            "READ POSITION: logical object {} in file {}, expected object {object} in file {file}",
            pos.object,
            pos.file
        );
        ensure!(!pos.eop, "READ POSITION: EOP set at logical object {object}, long before early warning");
        Ok(())
    }
}

impl Settle for Drive<'_> {
    /// The known state: the writable cartridge loaded and ready, nothing
    /// prevented, variable mode, at BOP with nothing recorded.
    fn settle(&mut self) -> Result<(), String> {
        self.execute_good(&[op::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0, 0], &[], 0)?;
        if self.loaded == Some(true) {
            self.unload()?;
        }
        if self.loaded.is_none() {
            self.load(false)?;
            self.thread()?;
        }
        if self.ejected {
            self.execute_good(&load_unload(true), &[], 0)?;
            self.ejected = false;
            self.thread()?;
        }
        self.set_block_length(VARIABLE)?;
        self.rewind()?;
        self.erase()?;
        let data = self.execute_good(&read_position(0x06, 32), &[], 32)?;
        ensure!(be(&data, 8..16)? == 0, "after REWIND and ERASE the drive is not at object 0: {data:02X?}");
        Ok(())
    }
}

/// How a command must stop: CHECK CONDITION with `code`, the stream bits
/// of `set` set and those of `clear` clear, and INFORMATION as `info` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stop {
    pub(crate) code: SenseCode,
    pub(crate) set: u8,
    pub(crate) clear: u8,
    pub(crate) info: Info,
}

impl Stop {
    /// NO SENSE, FILEMARK, 00/01: a filemark ended a read or a space.
    pub(crate) fn filemark(info: Info) -> Self {
        Self { code: code::FILEMARK, set: FILEMARK, clear: ILI, info }
    }

    /// BLANK CHECK, 00/05: end of data.
    pub(crate) fn end_of_data(info: Info) -> Self {
        Self { code: code::END_OF_DATA, set: 0, clear: FILEMARK | ILI, info }
    }

    /// NO SENSE, ILI, 00/00: a block of another length than asked for.
    pub(crate) fn ili(info: Info) -> Self {
        Self { code: code::NO_SENSE, set: ILI, clear: FILEMARK | EOM, info }
    }

    /// NO SENSE, EOM, 00/04: the beginning of the partition stopped a
    /// backward motion.
    pub(crate) fn bop(info: Info) -> Self {
        Self { code: code::BEGINNING_OF_PARTITION, set: EOM, clear: FILEMARK | ILI, info }
    }

    /// NO SENSE, EOM, 00/02, nothing left undone: a write completed past
    /// early warning.
    pub(crate) fn early_warning() -> Self {
        Self { code: code::EARLY_WARNING, set: EOM, clear: FILEMARK | ILI, info: Info::ZeroOrAbsent }
    }

    /// VOLUME OVERFLOW, EOM, 0D/00/02: a write that did not fit.
    pub(crate) fn overflow(info: Info) -> Self {
        Self { code: code::VOLUME_OVERFLOW, set: EOM, clear: FILEMARK | ILI, info }
    }
}

/// Check a response against how it must stop.
pub(crate) fn stream(response: &Response, want: Stop) -> Result<StreamSense, String> {
    let Stop { code: expected, set, clear, info } = want;
    ensure!(response.status == STATUS_CHECK_CONDITION, "expected {expected} got {response}");
    let sense = StreamSense::decode(&response.sense)?;
    ensure!(sense.code == expected, "expected {expected} got {sense}");
    ensure!(sense.bits & set == set, "expected {} set: got {sense}", bit_names(set & !sense.bits));
    ensure!(sense.bits & clear == 0, "expected {} clear: got {sense}", bit_names(sense.bits & clear));
    match info {
        Info::Is(value) => ensure!(sense.information == Some(value), "expected INFORMATION {value}: got {sense}"),
        Info::ZeroOrAbsent => {
            ensure!(matches!(sense.information, None | Some(0)), "expected no residual: got {sense}")
        }
        Info::Any => {}
    }
    Ok(sense)
}

fn bit_names(bits: u8) -> String {
    let names: Vec<&str> = [(FILEMARK, "FILEMARK"), (EOM, "EOM"), (ILI, "ILI")]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|x| x.1)
        .collect();
    names.join(" and ")
}

/// Sense codes as a list for messages.
pub(crate) fn codes(seen: &[SenseCode]) -> String {
    if seen.is_empty() {
        return "none".into();
    }
    seen.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Recognizable contents for block `index` of a check, `len` bytes.
pub(crate) fn block(index: u64, len: u32, tag: u8) -> Vec<u8> {
    pattern::blocks(index, 1, len, tag)
}

/// READ(6), WRITE(6), VERIFY(6) or WRITE FILEMARKS(6): byte 1 as given, a
/// 24-bit length.
pub(crate) fn transfer6(opcode: u8, byte1: u8, length: u32) -> Vec<u8> {
    debug_assert!(length <= 0xFF_FFFF);
    let l = length.to_be_bytes();
    vec![opcode, byte1, l[1], l[2], l[3], 0]
}

/// READ(6) of `length` bytes (variable) with SILI as given.
pub(crate) fn read6(length: u32, sili: bool) -> Vec<u8> {
    transfer6(op::READ_6, if sili { 0x02 } else { 0 }, length)
}

/// READ(6) FIXED of `blocks` blocks.
pub(crate) fn read6_fixed(blocks: u32) -> Vec<u8> {
    transfer6(op::READ_6, 0x01, blocks)
}

/// SPACE(6): a signed 24-bit count.
pub(crate) fn space6(code: SpaceCode, count: i32) -> Vec<u8> {
    let c = count.to_be_bytes();
    vec![op::SPACE_6, code as u8, c[1], c[2], c[3], 0]
}

/// SPACE(16): a signed 64-bit count.
pub(crate) fn space16(code: SpaceCode, count: i64) -> Vec<u8> {
    let mut cdb = vec![0u8; 16];
    cdb[0] = op::SPACE_16;
    cdb[1] = code as u8;
    cdb[4..12].copy_from_slice(&count.to_be_bytes());
    cdb
}

/// LOCATE(10) to a logical object (BT clear, no partition change).
pub(crate) fn locate10(object: u32) -> Vec<u8> {
    let o = object.to_be_bytes();
    vec![op::LOCATE_10, 0, 0, o[0], o[1], o[2], o[3], 0, 0, 0]
}

/// LOCATE(16) with DEST_TYPE `destination` (0 object, 1 file, 3 EOD).
pub(crate) fn locate16(destination: u8, identifier: u64) -> Vec<u8> {
    let mut cdb = vec![0u8; 16];
    cdb[0] = op::LOCATE_16;
    cdb[1] = destination << 3;
    cdb[4..12].copy_from_slice(&identifier.to_be_bytes());
    cdb
}

/// READ POSITION with SERVICE ACTION `form` and an allocation length.
pub(crate) fn read_position(form: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::READ_POSITION, form, 0, 0, 0, 0, 0, hi, lo, 0]
}

/// MODE SELECT(6) with PF set.
pub(crate) fn mode_select6(len: u8) -> Vec<u8> {
    vec![op::MODE_SELECT_6, 0x10, 0, 0, len, 0]
}

/// LOAD UNLOAD: LOAD as given, nothing else.
pub(crate) fn load_unload(load: bool) -> Vec<u8> {
    vec![op::LOAD_UNLOAD, 0, 0, 0, u8::from(load), 0]
}

/// LOG SENSE of cumulative values of `page` from parameter 0.
pub(crate) fn log_sense(page: u8, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::LOG_SENSE, 0, 0x40 | page, 0, 0, 0, 0, hi, lo, 0]
}

/// READ ATTRIBUTE with SERVICE ACTION `action` from `first`.
pub(crate) fn read_attribute(action: u8, first: u16, alloc: u32) -> Vec<u8> {
    let mut cdb = vec![0u8; 16];
    cdb[0] = op::READ_ATTRIBUTE;
    cdb[1] = action;
    cdb[8..10].copy_from_slice(&first.to_be_bytes());
    cdb[10..14].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

/// WRITE ATTRIBUTE of a parameter list of `len` bytes (WTC set).
pub(crate) fn write_attribute(len: u32) -> Vec<u8> {
    let mut cdb = vec![0u8; 16];
    cdb[0] = op::WRITE_ATTRIBUTE;
    cdb[1] = 0x01;
    cdb[10..14].copy_from_slice(&len.to_be_bytes());
    cdb
}

/// REPORT DENSITY SUPPORT; `media` asks about the loaded medium.
pub(crate) fn report_density_support(media: bool, alloc: u16) -> Vec<u8> {
    let [hi, lo] = alloc.to_be_bytes();
    vec![op::REPORT_DENSITY_SUPPORT, u8::from(media), 0, 0, 0, 0, 0, hi, lo, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_sense_residuals_are_signed_and_need_valid() {
        let mut sense = vec![0u8; 18];
        sense[0] = 0xF0;
        sense[2] = ILI;
        sense[3..7].copy_from_slice(&(-744i32).to_be_bytes());
        sense[7] = 10;
        let decoded = StreamSense::decode(&sense).unwrap();
        assert_eq!((decoded.code, decoded.bits, decoded.information), (code::NO_SENSE, ILI, Some(-744)));
        assert_eq!(decoded.to_string(), "00/00/00 ILI INFORMATION -744");
        sense[0] = 0x70;
        assert_eq!(StreamSense::decode(&sense).unwrap().information, None);
    }

    #[test]
    fn descriptor_sense_carries_stream_bits_and_information_in_descriptors() {
        let mut sense = vec![0x72, 0x00, 0x00, 0x01, 0, 0, 0, 16];
        sense.extend_from_slice(&[0x00, 0x0A, 0x80, 0]);
        sense.extend_from_slice(&4096u64.to_be_bytes());
        sense.extend_from_slice(&[0x04, 0x02, 0, FILEMARK]);
        let decoded = StreamSense::decode(&sense).unwrap();
        assert_eq!((decoded.code, decoded.bits, decoded.information), (code::FILEMARK, FILEMARK, Some(4096)));
        assert!(StreamSense::decode(&[0x7F, 0, 0]).is_err());
    }

    #[test]
    fn stops_check_code_bits_and_residual() {
        let response = |sense: Vec<u8>| Response { status: STATUS_CHECK_CONDITION, sense, data_in: vec![] };
        let mut sense = vec![0u8; 18];
        sense[0] = 0xF0;
        sense[2] = 0x08; // BLANK CHECK, EOM clear
        sense[3..7].copy_from_slice(&512u32.to_be_bytes());
        sense[7] = 10;
        sense[13] = 0x05;
        assert!(stream(&response(sense.clone()), Stop::end_of_data(Info::Is(512))).is_ok());
        assert_eq!(
            stream(&response(sense.clone()), Stop::end_of_data(Info::Is(4096))).unwrap_err(),
            "expected INFORMATION 4096: got 08/00/05 INFORMATION 512"
        );
        sense[2] |= ILI;
        assert_eq!(
            stream(&response(sense), Stop::end_of_data(Info::Any)).unwrap_err(),
            "expected ILI clear: got 08/00/05 ILI INFORMATION 512"
        );
        let good = Response { status: 0, sense: vec![], data_in: vec![] };
        assert_eq!(stream(&good, Stop::early_warning()).unwrap_err(), "expected 00/00/02 got GOOD");
    }
}
