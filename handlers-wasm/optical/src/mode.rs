//! MODE SENSE/SELECT(6/10): pages 01h (read error recovery), 05h (write
//! parameters, which growisofs reads and writes back before burning), 0Ah
//! (control: D_SENSE), 1Ah (power condition), 1Dh (timeout and protect) and
//! 2Ah (MM capabilities and mechanical status). Page 2Ah is what makes Linux's sr
//! driver see an MMC-3 drive that reads DVDs (without it sr logs "scsi-1
//! drive" and masks DVD, and dvd+rw-mediainfo says "not a DVD unit").
//! MMC devices return no block descriptor.

use tcmu_guest_sdk::scsi::bytes::put_be16;
use tcmu_guest_sdk::scsi::cdb::{ModeSelect, ModeSense};
use tcmu_guest_sdk::scsi::mode::{
    ControlPage, ModeHeader, ModePage, mode_sense_data, page_code, parse_mode_parameters,
};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{Sense, SenseFormat};
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::{OpticalDrive, Outcome, transfer_failed};

/// Page codes of MMC.
mod page {
    pub const WRITE_PARAMETERS: u8 = 0x05;
    pub const TIMEOUT_AND_PROTECT: u8 = 0x1d;
    pub const CAPABILITIES: u8 = 0x2a;
}

/// The drive's nominal read speed in kB/s (8x DVD = 8 × 1385 kB/s), which
/// page 2Ah reports and SET CD SPEED may not exceed.
pub(crate) const MAX_READ_SPEED: u16 = 11_080;

/// The write speed on a DVD+R, kB/s (8x).
pub(crate) const WRITE_SPEED: u16 = 11_080;

/// Page 05h's parameter bytes (its bytes 2..52) at power-on: incremental
/// writing of Mode 1 data in track mode 5, variable packets, single
/// session. On a DVD+R a drive ignores most of it.
pub(crate) fn default_write_parameters() -> Vec<u8> {
    let mut p = vec![0u8; 50];
    p[0] = 0x00; // byte 2: write type 0 (packet/incremental), no test write
    p[1] = 0x05; // byte 3: single session, variable packets, track mode 5
    p[2] = 0x08; // byte 4: data block type 8, Mode 1
    p
}

/// What MODE SELECT may change in page 05h: write type, test write, BUFE,
/// link size, multi-session, packet and track mode, data block type,
/// session format, packet size, audio pause, MCN and ISRC.
fn write_parameters_changeable() -> Vec<u8> {
    let mut c = vec![0u8; 50];
    c[0] = 0x7f;
    c[1] = 0xff;
    c[2] = 0x0f;
    c[3] = 0xff;
    c[5] = 0xff; // byte 7: initiator application code
    c[6] = 0xff; // byte 8: session format
    c[8..14].fill(0xff); // bytes 10-15: packet size, audio pause length
    c[14..46].fill(0xff); // bytes 16-47: MCN, ISRC
    c
}

impl OpticalDrive {
    fn pages(&self) -> Vec<ModePage> {
        let control = ModePage {
            code: page_code::CONTROL,
            subpage: 0,
            current: ControlPage { descriptor_sense: self.spc.sense_format == SenseFormat::Descriptor }.to_parameters(),
            changeable: ControlPage { descriptor_sense: true }.to_parameters(),
            default: ControlPage { descriptor_sense: false }.to_parameters(),
        };
        // Read error recovery: read retry count 1, nothing changeable.
        let mut recovery = vec![0u8; 10];
        recovery[1] = 1;
        let power = vec![0u8; 10];
        let mut timeout = vec![0u8; 8];
        put_be16(&mut timeout[4..], 1); // group 1 minimum timeout (s)
        put_be16(&mut timeout[6..], 1); // group 2 minimum timeout (s)
        let write_parameters = ModePage {
            code: page::WRITE_PARAMETERS,
            subpage: 0,
            current: self.write_parameters.clone(),
            changeable: write_parameters_changeable(),
            default: default_write_parameters(),
        };
        vec![
            ModePage::fixed(page_code::READ_WRITE_ERROR_RECOVERY, 0, recovery),
            write_parameters,
            control,
            ModePage::fixed(page_code::POWER_CONDITION, 0, power),
            ModePage::fixed(page::TIMEOUT_AND_PROTECT, 0, timeout),
            ModePage::fixed(page::CAPABILITIES, 0, self.capabilities()),
        ]
    }

    /// Page 2Ah's parameter bytes (its bytes 2..32).
    fn capabilities(&self) -> Vec<u8> {
        let mut p = vec![0u8; 30];
        p[0] = 0x08; // byte 2: DVD-ROM read (no CD-R/RW, DVD-R/RAM media)
        p[1] = 0x00; // byte 3: writes nothing
        p[2] = 0x40 | 0x10 | 0x20; // byte 4: multi-session, mode 2 form 1 and form 2
        p[3] = 0x00; // byte 5: no CD-DA
        // Byte 6: tray loading mechanism (001b), eject, lock; lock state.
        p[4] = 0x20 | 0x08 | 0x01 | u8::from(self.prevent) << 1;
        p[5] = 0x00; // byte 7
        put_be16(&mut p[6..], MAX_READ_SPEED); // bytes 8-9: maximum read speed (obsolete)
        put_be16(&mut p[10..], 64); // bytes 12-13: buffer size, KiB
        put_be16(&mut p[12..], self.read_speed); // bytes 14-15: current read speed (obsolete)
        // Bytes 18-19 maximum and 28-29 current write speed with a DVD+R
        // in the drive (DVD+R writing has no bit of its own in this page:
        // feature 002Bh tells it); 30-31, the write speed descriptors
        // that follow, none (GET PERFORMANCE type 03h lists them).
        if self.disc.as_ref().is_some_and(|d| d.recording.is_some()) {
            put_be16(&mut p[16..], WRITE_SPEED);
            put_be16(&mut p[26..], WRITE_SPEED);
        }
        p
    }

    /// MODE SENSE(6/10).
    pub(crate) fn mode_sense(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ModeSense::parse(cmd.cdb)?;
        let data = mode_sense_data(&request, ModeHeader::default(), None, &self.pages())?;
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }

    /// MODE SELECT(6/10): only the control page's D_SENSE changes; other
    /// pages are accepted as they are. Block descriptors are refused.
    pub(crate) fn mode_select(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let select = ModeSelect::parse(cmd.cdb)?;
        if select.save_pages {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let list_len = u32::from(select.parameter_list_length).min(cmd.data_out_len);
        let list = xfer.read_data_out(0, list_len).map_err(transfer_failed)?;
        let parameters = parse_mode_parameters(&list, select.form)?;
        if !parameters.block_descriptors.is_empty() {
            return Err(Sense::invalid_parameter_field(6, None));
        }
        let pages = self.pages();
        let mut descriptor_sense = self.spc.sense_format == SenseFormat::Descriptor;
        let mut write_parameters = None;
        for sent in &parameters.pages {
            let unknown = || Sense::invalid_parameter_field(sent.offset as u16, Some(5));
            let page = pages.iter().find(|p| p.code == sent.code && sent.subpage == 0).ok_or_else(unknown)?;
            let values = page.apply(sent)?;
            match sent.code {
                page_code::CONTROL => descriptor_sense = ControlPage::from_parameters(&values).descriptor_sense,
                page::WRITE_PARAMETERS => write_parameters = Some(values),
                _ => {}
            }
        }
        // Every page was valid: only now does anything change.
        self.spc.sense_format = if descriptor_sense { SenseFormat::Descriptor } else { SenseFormat::Fixed };
        if let Some(values) = write_parameters {
            self.write_parameters = values;
        }
        Ok(Completion::good())
    }
}
