//! LOG SENSE pages 00h (supported pages), 02h/03h (write/read error
//! counters: this drive never retries, so only the byte counts move), 0Ch
//! (sequential access), 17h (volume statistics), 2Eh (TapeAlert; flags
//! clear when read) and 31h (tape capacity), and LOG SELECT's counter reset.
//!
//! Counters run from the load (or the last reset); capacities are in MiB.

use tcmu_guest_sdk::scsi::cdb::stream::LogSense;
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::Sense;
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::{Counters, Outcome, TapeDrive};

/// Log page codes.
mod page {
    pub const SUPPORTED: u8 = 0x00;
    pub const WRITE_ERRORS: u8 = 0x02;
    pub const READ_ERRORS: u8 = 0x03;
    pub const SEQUENTIAL_ACCESS: u8 = 0x0c;
    pub const VOLUME_STATISTICS: u8 = 0x17;
    pub const TAPE_ALERT: u8 = 0x2e;
    pub const TAPE_CAPACITY: u8 = 0x31;
    pub const ALL: [u8; 7] =
        [SUPPORTED, WRITE_ERRORS, READ_ERRORS, SEQUENTIAL_ACCESS, VOLUME_STATISTICS, TAPE_ALERT, TAPE_CAPACITY];
}

/// TapeAlert flag 09h: a write to a write-protected cartridge.
pub(crate) const TAPE_ALERT_WRITE_PROTECT: u8 = 0x09;

/// A log page's parameters, in code order.
struct Parameters(Vec<(u16, u8, Vec<u8>)>);

impl Parameters {
    fn new() -> Self {
        Self(Vec::new())
    }

    /// A counter (control byte 00h: a bounded data counter, binary).
    fn counter(mut self, code: u16, value: u64, width: usize) -> Self {
        self.0.push((code, 0x00, value.to_be_bytes()[8 - width..].to_vec()));
        self
    }

    /// A binary-list parameter (control byte 03h, as TapeAlert's are).
    fn flag(mut self, code: u16, value: bool) -> Self {
        self.0.push((code, 0x03, vec![u8::from(value)]));
        self
    }

    /// The page: header and the parameters from `pointer` on.
    fn page(self, code: u8, pointer: u16) -> Vec<u8> {
        let mut data = vec![code, 0, 0, 0];
        for (param, control, value) in self.0.into_iter().filter(|(p, _, _)| *p >= pointer) {
            data.extend_from_slice(&param.to_be_bytes());
            data.push(control);
            data.push(value.len() as u8);
            data.extend(value);
        }
        let len = (data.len() - 4) as u16;
        data[2..4].copy_from_slice(&len.to_be_bytes());
        data
    }
}

impl TapeDrive {
    /// LOG SENSE.
    pub(crate) fn log_sense(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = LogSense::parse(cmd.cdb)?;
        let pointer = request.parameter_pointer;
        let c = self.counters;
        let mib = |bytes: u64| bytes >> 20;
        let (capacity, remaining, mounts) =
            self.loaded_tape().map_or((0, 0, 0), |t| (t.capacity(), t.remaining(), t.header.load_count));
        let data = match (request.page_code, request.subpage_code) {
            (page::SUPPORTED, 0) => {
                let mut d = vec![0, 0, 0, page::ALL.len() as u8];
                d.extend_from_slice(&page::ALL);
                d
            }
            (page::SUPPORTED, 0xff) => {
                let mut d = vec![0x40, 0xff, 0, 0];
                for code in page::ALL {
                    d.extend_from_slice(&[code, 0]);
                }
                d.extend_from_slice(&[0, 0xff]);
                let len = (d.len() - 4) as u16;
                d[2..4].copy_from_slice(&len.to_be_bytes());
                d
            }
            (code @ (page::WRITE_ERRORS | page::READ_ERRORS), 0) => {
                let bytes = if code == page::WRITE_ERRORS { c.bytes_written } else { c.bytes_read };
                (0..=4u16)
                    .fold(Parameters::new(), |p, code| p.counter(code, 0, 4))
                    .counter(5, bytes, 8)
                    .counter(6, 0, 4)
                    .page(code, pointer)
            }
            (page::SEQUENTIAL_ACCESS, 0) => Parameters::new()
                .counter(0, c.bytes_written, 8)
                .counter(1, c.bytes_written, 8)
                .counter(2, c.bytes_read, 8)
                .counter(3, c.bytes_read, 8)
                .counter(4, mib(capacity - remaining), 4)
                .counter(5, mib(capacity), 4)
                .counter(0x100, 0, 8)
                .page(page::SEQUENTIAL_ACCESS, pointer),
            (page::VOLUME_STATISTICS, 0) => Parameters::new()
                .counter(0, 1, 1) // page valid
                .counter(1, mounts, 4)
                .counter(2, c.records_written, 8)
                .counter(3, 0, 4)
                .counter(7, c.records_read, 8)
                .counter(8, 0, 4)
                .page(page::VOLUME_STATISTICS, pointer),
            (page::TAPE_ALERT, 0) => {
                let flags = c.tape_alert;
                // TapeAlert flags are cleared by reading them (SSC-3 8.2.3).
                self.counters.tape_alert = 0;
                (1..=64u16)
                    .fold(Parameters::new(), |p, flag| p.flag(flag, flags & (1 << (flag - 1)) != 0))
                    .page(page::TAPE_ALERT, pointer)
            }
            (page::TAPE_CAPACITY, 0) => Parameters::new()
                .counter(1, mib(remaining), 4)
                .counter(2, 0, 4)
                .counter(3, mib(capacity), 4)
                .counter(4, 0, 4)
                .page(page::TAPE_CAPACITY, pointer),
            (code, 0) if !page::ALL.contains(&code) => return Err(Sense::invalid_cdb_field(2, Some(5))),
            _ => return Err(Sense::invalid_cdb_field(3, None)),
        };
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }

    /// LOG SELECT: PCR resets the counters; parameter lists (thresholds)
    /// are not supported.
    pub(crate) fn log_select(&mut self, cmd: &Command<'_>) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        if cdb[1] & 0x01 != 0 {
            return Err(Sense::invalid_cdb_field(1, Some(0))); // SP: nothing is saved
        }
        if u16::from_be_bytes([cdb[7], cdb[8]]) != 0 {
            return Err(Sense::invalid_cdb_field(7, None));
        }
        if cdb[1] & 0x02 != 0 {
            let tape_alert = self.counters.tape_alert;
            self.counters = Counters { tape_alert, ..Counters::default() };
        }
        Ok(Completion::good())
    }

    /// Raise TapeAlert flag `flag` (1..=64).
    pub(crate) fn tape_alert(&mut self, flag: u8) {
        self.counters.tape_alert |= 1 << (flag - 1);
    }
}
