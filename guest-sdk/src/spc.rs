//! The SPC layer every handler shares: the unit-attention queue with SAM's
//! rules for which commands bypass it, REQUEST SENSE in the format the
//! initiator chose, CHECK CONDITION in that format, and INQUIRY with the
//! VPD pages every device type has (00h, 80h, 83h) plus the handler's own.
//!
//! A handler keeps one [`Spc`] and runs every command through
//! [`Spc::gate`] first:
//!
//! ```
//! use tcmu_guest_sdk::spc::Spc;
//! use tcmu_guest_sdk::{sense, Command, DeviceIdentity};
//!
//! let mut spc = Spc::new(DeviceIdentity::from_name("tape0"));
//! spc.unit_attentions.raise(sense::POWER_ON_RESET);
//! let tur = Command { cdb: &[0; 6], data_out_len: 0, data_in_len: 0 };
//! let inquiry = Command { cdb: &[0x12, 0, 0, 0, 36, 0], data_out_len: 0, data_in_len: 36 };
//! assert!(spc.gate(&inquiry).is_ok(), "INQUIRY bypasses a unit attention");
//! assert!(spc.gate(&tur).is_err(), "TEST UNIT READY reports it");
//! assert!(spc.gate(&tur).is_ok(), "once");
//! ```

use std::collections::VecDeque;

use crate::scsi::cdb::{Inquiry, RequestSense};
use crate::scsi::inquiry::StandardInquiry;
use crate::scsi::vpd::{self, Designator, NaaId};
use crate::scsi::{opcode, respond};
use crate::sense::{self, NO_ADDITIONAL_SENSE, Sense, SenseCode, SenseFormat};
use crate::{Command, Completion, DeviceIdentity, Transfer};

/// Unit attentions a device holds at once; older ones are dropped first
/// (SAM-5 lets a device lose them when it runs out of room), except that
/// the same condition is never queued twice.
pub const MAX_UNIT_ATTENTIONS: usize = 8;

/// Pending unit-attention conditions, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitAttentions {
    queue: VecDeque<SenseCode>,
}

impl UnitAttentions {
    /// Queue `code` (a UNIT ATTENTION sense code) unless it is already pending.
    pub fn raise(&mut self, code: SenseCode) {
        if self.queue.contains(&code) {
            return;
        }
        if self.queue.len() == MAX_UNIT_ATTENTIONS {
            self.queue.pop_front();
        }
        self.queue.push_back(code);
    }

    /// The oldest pending condition, taken off the queue.
    pub fn take(&mut self) -> Option<SenseCode> {
        self.queue.pop_front()
    }

    /// The oldest pending condition, left on the queue.
    pub fn peek(&self) -> Option<&SenseCode> {
        self.queue.front()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forget every pending condition.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Whether `opcode` runs despite a pending unit attention and leaves it
    /// pending (SAM-5 5.14: INQUIRY and REPORT LUNS; REQUEST SENSE runs
    /// too, and reports the condition as its sense data).
    pub fn bypassed_by(opcode: u8) -> bool {
        matches!(opcode, opcode::INQUIRY | opcode::REPORT_LUNS | opcode::REQUEST_SENSE)
    }

    /// Append the queue to `out` (for `save_state`): a count, then three
    /// bytes per condition.
    pub fn save(&self, out: &mut Vec<u8>) {
        out.push(self.queue.len() as u8);
        for code in &self.queue {
            out.extend_from_slice(&[code.key, code.asc, code.ascq]);
        }
    }

    /// Read what [`UnitAttentions::save`] wrote at the start of `bytes`;
    /// returns the queue and the bytes after it, or `None` if malformed.
    pub fn restore(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let (&n, rest) = bytes.split_first()?;
        let n = usize::from(n);
        if n > MAX_UNIT_ATTENTIONS || rest.len() < 3 * n {
            return None;
        }
        let (codes, rest) = rest.split_at(3 * n);
        let queue = codes.chunks_exact(3).map(|c| SenseCode::new(c[0], c[1], c[2])).collect();
        Some((Self { queue }, rest))
    }
}

/// The SPC state of one logical unit.
#[derive(Debug, Clone)]
pub struct Spc {
    /// Who the device is (serial, NAA name).
    pub identity: DeviceIdentity,
    /// Pending unit attentions.
    pub unit_attentions: UnitAttentions,
    /// The sense format the initiator chose (control mode page D_SENSE).
    pub sense_format: SenseFormat,
}

impl Spc {
    /// A logical unit with `identity`, no pending conditions, fixed sense.
    pub fn new(identity: DeviceIdentity) -> Self {
        Self { identity, unit_attentions: UnitAttentions::default(), sense_format: SenseFormat::Fixed }
    }

    /// Run before every command: a pending unit attention fails the command
    /// (and is cleared), except for the commands SAM lets through.
    pub fn gate(&mut self, cmd: &Command<'_>) -> Result<(), Completion> {
        if UnitAttentions::bypassed_by(cmd.opcode()) {
            return Ok(());
        }
        match self.unit_attentions.take() {
            Some(code) => Err(self.fail(Sense::from(code))),
            None => Ok(()),
        }
    }

    /// CHECK CONDITION with `sense` in the chosen format.
    pub fn fail(&self, sense: Sense) -> Completion {
        sense.completion(self.sense_format)
    }

    /// REQUEST SENSE: the oldest unit attention (which this clears), else
    /// `current` (a handler's standing condition such as "medium not
    /// present" or a deferred error), else NO SENSE. Sense of failed
    /// commands travels with their CHECK CONDITION (autosense), so it is
    /// not kept for REQUEST SENSE. The DESC bit picks the format.
    pub fn request_sense(
        &mut self,
        cmd: &Command<'_>,
        xfer: &mut dyn Transfer,
        current: Option<Sense>,
    ) -> Result<Completion, Sense> {
        let request = RequestSense::parse(cmd.cdb)?;
        let sense = match self.unit_attentions.take() {
            Some(code) => Sense::from(code),
            None => current.unwrap_or_else(|| Sense::from(NO_ADDITIONAL_SENSE)),
        };
        let format = if request.descriptor_format { SenseFormat::Descriptor } else { SenseFormat::Fixed };
        Ok(respond(xfer, cmd, &sense.to_bytes(format), request.allocation_length.into()))
    }

    /// INQUIRY: the standard data, or VPD pages 00h (listing every page
    /// offered), 80h (the serial) and 83h (the NAA name and a T10 vendor
    /// designator), and any of `extra` (page code, page bytes built on
    /// demand). An unknown page is INVALID FIELD IN CDB at byte 2.
    pub fn inquiry(
        &self,
        cmd: &Command<'_>,
        xfer: &mut dyn Transfer,
        standard: &StandardInquiry<'_>,
        extra: &[(u8, &dyn Fn() -> Vec<u8>)],
    ) -> Result<Completion, Sense> {
        let inquiry = Inquiry::parse(cmd.cdb)?;
        let pdt = standard.peripheral_type;
        let data = match (inquiry.evpd, inquiry.page_code) {
            (false, _) => standard.to_bytes(),
            (true, vpd::page::SUPPORTED_PAGES) => {
                let mut pages = vec![vpd::page::SUPPORTED_PAGES, vpd::page::UNIT_SERIAL_NUMBER];
                pages.push(vpd::page::DEVICE_IDENTIFICATION);
                pages.extend(extra.iter().map(|(code, _)| *code));
                pages.sort_unstable();
                pages.dedup();
                vpd::supported_pages(pdt, &pages)
            }
            (true, vpd::page::UNIT_SERIAL_NUMBER) => vpd::unit_serial_number(pdt, &self.identity.serial),
            (true, vpd::page::DEVICE_IDENTIFICATION) => {
                let naa = self.identity.naa_id().unwrap_or_else(|| NaaId::from_serial(&self.identity.serial));
                let designators = [
                    Designator::Naa(&naa),
                    Designator::T10VendorId { vendor: standard.vendor, identifier: &self.identity.serial },
                ];
                vpd::device_identification(pdt, &designators)
            }
            (true, code) => match extra.iter().find(|(c, _)| *c == code) {
                Some((_, page)) => page(),
                None => return Err(Sense::invalid_cdb_field(2, None)),
            },
        };
        Ok(respond(xfer, cmd, &data, inquiry.allocation_length.into()))
    }
}

/// Sense codes of removable-medium readiness every drive reports.
pub mod readiness {
    use super::*;

    /// NOT READY, MEDIUM NOT PRESENT (02/3A/00).
    pub const MEDIUM_NOT_PRESENT: SenseCode = sense::MEDIUM_NOT_PRESENT;
    /// NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY (02/04/01).
    pub const BECOMING_READY: SenseCode = SenseCode::new(sense::key::NOT_READY, 0x04, 0x01);
    /// UNIT ATTENTION, NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (06/28/00).
    pub const MEDIUM_MAY_HAVE_CHANGED: SenseCode = sense::MEDIUM_MAY_HAVE_CHANGED;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::inquiry::peripheral_type::TAPE;
    use crate::testing::run;

    fn cmd(cdb: &[u8], data_in_len: u32) -> Command<'_> {
        Command { cdb, data_out_len: 0, data_in_len }
    }

    #[test]
    fn unit_attentions_queue_in_order_once_each_and_bounded() {
        let mut ua = UnitAttentions::default();
        ua.raise(sense::POWER_ON_RESET);
        ua.raise(sense::MEDIUM_MAY_HAVE_CHANGED);
        ua.raise(sense::POWER_ON_RESET);
        assert_eq!(ua.take(), Some(sense::POWER_ON_RESET));
        assert_eq!(ua.take(), Some(sense::MEDIUM_MAY_HAVE_CHANGED));
        assert_eq!(ua.take(), None);
        for ascq in 0..10 {
            ua.raise(SenseCode::new(6, 0x2a, ascq));
        }
        assert_eq!(ua.peek(), Some(&SenseCode::new(6, 0x2a, 2)), "the oldest went first");
        let mut saved = Vec::new();
        ua.save(&mut saved);
        saved.push(0xee);
        let (back, rest) = UnitAttentions::restore(&saved).unwrap();
        assert_eq!((back, rest), (ua, &[0xee][..]));
        assert!(UnitAttentions::restore(&[9]).is_none());
        assert!(UnitAttentions::restore(&[2, 6, 0x29]).is_none());
    }

    #[test]
    fn request_sense_reports_and_clears_the_unit_attention_in_the_format_asked() {
        let mut spc = Spc::new(DeviceIdentity::from_name("t0"));
        spc.unit_attentions.raise(sense::POWER_ON_RESET);
        // REQUEST SENSE is not failed by the UA; it returns it.
        let rs_desc = [0x03, 0x01, 0, 0, 252, 0];
        assert!(spc.gate(&cmd(&rs_desc, 252)).is_ok());
        let (done, data) = run(&cmd(&rs_desc, 252), &[], |c, x| spc.request_sense(c, x, None).unwrap());
        assert_eq!(done.status, 0);
        assert_eq!(&data[..4], &[0x72, 6, 0x29, 0], "descriptor format");
        let rs = [0x03, 0, 0, 0, 18, 0];
        let standing = Sense::from(readiness::MEDIUM_NOT_PRESENT);
        let (_, data) = run(&cmd(&rs, 18), &[], |c, x| spc.request_sense(c, x, Some(standing)).unwrap());
        assert_eq!((data[0], data[2], data[12]), (0x70, 2, 0x3a), "then the standing condition");
        let (_, data) = run(&cmd(&rs, 18), &[], |c, x| spc.request_sense(c, x, None).unwrap());
        assert_eq!((data[2], data[12]), (0, 0), "then NO SENSE");
    }

    #[test]
    fn inquiry_offers_the_common_pages_and_the_handlers_own() {
        let spc = Spc::new(DeviceIdentity::from_name("tape0"));
        let std = StandardInquiry::new(TAPE, "TCMUWASM", "TAPE", "0.1");
        let b0 = || vpd::supported_pages(TAPE, &[]); // any bytes will do
        let extra: [(u8, &dyn Fn() -> Vec<u8>); 1] = [(0xb0, &b0)];
        let ask = |page: u8| {
            let cdb = [0x12, 1, page, 0, 255, 0];
            run(&cmd(&cdb, 255), &[], |c, x| spc.inquiry(c, x, &std, &extra).unwrap_or_else(Completion::from))
        };
        let (_, pages) = ask(0x00);
        assert_eq!(&pages[4..], &[0x00, 0x80, 0x83, 0xb0]);
        let (_, serial) = ask(0x80);
        assert_eq!(&serial[4..], b"tape0");
        let (_, ids) = ask(0x83);
        assert_eq!(ids[0] & 0x1f, TAPE);
        assert_eq!(&ids[4..8], &[0x01, 0x03, 0x00, 0x10], "NAA designator first");
        let (done, _) = ask(0xb1);
        assert_eq!((done.status, done.sense[12]), (2, 0x24));
        let cdb = [0x12, 0, 0, 0, 36, 0];
        let (_, data) = run(&cmd(&cdb, 36), &[], |c, x| spc.inquiry(c, x, &std, &extra).unwrap());
        assert_eq!((data[0], &data[8..16]), (TAPE, &b"TCMUWASM"[..]));
    }
}
