//! MODE SENSE/SELECT: the block descriptor (density, block length; 0 =
//! variable), the header's buffered mode, and pages 0Ah (control: D_SENSE),
//! 0Fh (data compression: DCE), 10h (device configuration), 11h (medium
//! partition, one partition) and 1Ch (informational exceptions: DEXCPT,
//! TEST, MRIE). Also REPORT DENSITY SUPPORT.

use tcmu_guest_sdk::scsi::cdb::stream::ReportDensitySupport;
use tcmu_guest_sdk::scsi::cdb::{ModeForm, ModeSelect, ModeSense};
use tcmu_guest_sdk::scsi::mode::{
    BlockDescriptor, ControlPage, DEVICE_SPECIFIC_WP, ModeHeader, ModePage, mode_sense_data, page_code,
    parse_mode_parameters,
};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::{Sense, SenseFormat};
use tcmu_guest_sdk::spc::readiness;
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::density;
use crate::{Outcome, TapeDrive, transfer_failed};

/// Page codes of SSC.
mod page {
    pub const DATA_COMPRESSION: u8 = 0x0f;
    pub const DEVICE_CONFIGURATION: u8 = 0x10;
    pub const MEDIUM_PARTITION: u8 = 0x11;
}

/// Density code "use the default" and "no change" in MODE SELECT.
const DENSITY_DEFAULT: u8 = 0x00;
const DENSITY_NO_CHANGE: u8 = 0x7f;

impl TapeDrive {
    fn pages(&self) -> Vec<ModePage> {
        let control = ModePage {
            code: page_code::CONTROL,
            subpage: 0,
            current: ControlPage { descriptor_sense: self.spc.sense_format == SenseFormat::Descriptor }.to_parameters(),
            changeable: ControlPage { descriptor_sense: true }.to_parameters(),
            default: ControlPage { descriptor_sense: false }.to_parameters(),
        };
        let compression = |dce: bool| {
            let mut p = vec![0u8; 14];
            p[0] = 0x40 | if dce { 0x80 } else { 0 }; // DCC: capable; DCE
            p[1] = 0x80; // DDE: decompress on read
            p[2..6].copy_from_slice(&1u32.to_be_bytes()); // compression algorithm
            p[6..10].copy_from_slice(&1u32.to_be_bytes()); // decompression algorithm
            p
        };
        let mut compression_changeable = vec![0u8; 14];
        compression_changeable[0] = 0x80;
        let mut configuration = vec![0u8; 14];
        configuration[6] = 0x40; // BIS: block identifiers supported
        configuration[8] = 0x18; // EEG, SEW: early warning, synchronize at it
        configuration[12] = 0x01; // SELECT DATA COMPRESSION ALGORITHM
        let mut partition = vec![0u8; 8];
        partition[2] = 0x10; // PSUM 10b: partition size in MB
        partition[3] = 0x03; // format and partition recognition
        let capacity_mb = self.loaded_tape().map_or(0, |t| t.capacity() / 1_000_000);
        partition[6..8].copy_from_slice(&(capacity_mb.min(0xffff) as u16).to_be_bytes());
        let exceptions = |dexcpt: bool, mrie: u8| {
            let mut p = vec![0u8; 10];
            p[0] = if dexcpt { 0x08 } else { 0 };
            p[1] = mrie & 0x0f;
            p
        };
        vec![
            control,
            ModePage {
                code: page::DATA_COMPRESSION,
                subpage: 0,
                current: compression(self.settings.compression),
                changeable: compression_changeable,
                default: compression(false),
            },
            ModePage::fixed(page::DEVICE_CONFIGURATION, 0, configuration),
            ModePage::fixed(page::MEDIUM_PARTITION, 0, partition),
            ModePage {
                code: page_code::INFORMATIONAL_EXCEPTIONS_CONTROL,
                subpage: 0,
                current: exceptions(self.settings.dexcpt, self.settings.mrie),
                changeable: vec![0x0c, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0],
                default: exceptions(true, 0),
            },
        ]
    }

    fn mode_header(&self) -> ModeHeader {
        let write_protect =
            if self.loaded_tape().is_some_and(|t| t.write_protected()) { DEVICE_SPECIFIC_WP } else { 0 };
        let medium_type = match self.loaded_tape() {
            Some(_) => density::by_code(self.settings.density).map_or(0, |d| d.medium_type),
            None => 0,
        };
        ModeHeader { medium_type, device_specific: write_protect | (self.settings.buffered_mode & 0x07) << 4 }
    }

    /// MODE SENSE(6/10).
    pub(crate) fn mode_sense(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ModeSense::parse(cmd.cdb)?;
        let descriptor = BlockDescriptor::sequential(self.settings.density, 0, self.settings.block_length);
        let data = mode_sense_data(&request, self.mode_header(), Some(descriptor), &self.pages())?;
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }

    /// MODE SELECT(6/10): the block descriptor sets the density and the
    /// block length (fixed or variable mode), the header the buffered
    /// mode; pages change only their changeable bits. Everything is
    /// checked before anything takes effect.
    pub(crate) fn mode_select(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let select = ModeSelect::parse(cmd.cdb)?;
        if select.save_pages {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let list_len = u32::from(select.parameter_list_length).min(cmd.data_out_len);
        let list = xfer.read_data_out(0, list_len).map_err(transfer_failed)?;
        let parameters = parse_mode_parameters(&list, select.form)?;
        let header_len: u16 = match select.form {
            ModeForm::Six => 4,
            ModeForm::Ten => 8,
        };

        let mut settings = self.settings;
        if !list.is_empty() {
            settings.buffered_mode = (parameters.device_specific >> 4) & 0x07;
        }
        if parameters.block_descriptors.len() > 1 {
            return Err(Sense::invalid_parameter_field(header_len - 1, None));
        }
        if let Some(descriptor) = parameters.block_descriptors.first() {
            settings.density = match descriptor.density() {
                DENSITY_DEFAULT => self.config.density,
                DENSITY_NO_CHANGE => settings.density,
                code if density::by_code(code).is_some() => code,
                _ => return Err(Sense::invalid_parameter_field(header_len, None)),
            };
            let length = descriptor.block_length;
            if length > self.config.max_block {
                return Err(Sense::invalid_parameter_field(header_len + 5, None));
            }
            settings.block_length = length;
        }

        let pages = self.pages();
        let find = |code: u8| pages.iter().find(|p| p.code == code).expect("every page is offered");
        let mut descriptor_sense = self.spc.sense_format == SenseFormat::Descriptor;
        for sent in &parameters.pages {
            let unknown = || Sense::invalid_parameter_field(sent.offset as u16, Some(5));
            if sent.subpage != 0 {
                return Err(unknown());
            }
            match sent.code {
                page_code::CONTROL => {
                    descriptor_sense = ControlPage::from_parameters(&find(sent.code).apply(sent)?).descriptor_sense
                }
                page::DATA_COMPRESSION => settings.compression = find(sent.code).apply(sent)?[0] & 0x80 != 0,
                page_code::INFORMATIONAL_EXCEPTIONS_CONTROL => {
                    let p = find(sent.code).apply(sent)?;
                    settings.dexcpt = p[0] & 0x08 != 0;
                    settings.mrie = p[1] & 0x0f;
                }
                page::DEVICE_CONFIGURATION | page::MEDIUM_PARTITION => {
                    find(sent.code).apply(sent)?;
                }
                _ => return Err(unknown()),
            }
        }
        self.settings = settings;
        self.spc.sense_format = if descriptor_sense { SenseFormat::Descriptor } else { SenseFormat::Fixed };
        Ok(Completion::good())
    }

    /// REPORT DENSITY SUPPORT: the densities the drive writes, or (MEDIA)
    /// the one of the loaded cartridge; with MEDIUM TYPE, medium types.
    pub(crate) fn report_density_support(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ReportDensitySupport::parse(cmd.cdb)?;
        let loaded = self.loaded_tape();
        if request.media && loaded.is_none() {
            return Err(readiness::MEDIUM_NOT_PRESENT.into());
        }
        let current = density::by_code(self.settings.density).unwrap_or(&density::DEFAULT);
        let densities: Vec<&density::Density> =
            if request.media { vec![current] } else { density::ALL.iter().collect() };
        let mut data = vec![0u8; 4];
        for d in densities {
            if request.medium_type {
                data.extend(density::medium_type_descriptor(d));
            } else {
                let capacity = match (request.media, loaded) {
                    (true, Some(tape)) => (tape.capacity() / 1_000_000) as u32,
                    _ => d.nominal_mb,
                };
                data.extend(density::descriptor(d, d.code == self.config.density, capacity));
            }
        }
        let available = (data.len() - 2) as u16;
        data[0..2].copy_from_slice(&available.to_be_bytes());
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }
}
