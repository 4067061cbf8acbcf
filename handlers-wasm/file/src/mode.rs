//! MODE SENSE and MODE SELECT: the caching page (WCE changeable) and the
//! control page (D_SENSE changeable). Nothing is saved across restarts.
//!
//! SPC would have a mode change raise MODE PARAMETERS CHANGED for the
//! other initiators; the handler cannot tell initiators apart (the kernel
//! keeps the I_T nexus to itself), so it does not.

use tcmu_guest_sdk::scsi::cdb::{ModeForm, ModeSelect, ModeSense};
use tcmu_guest_sdk::scsi::mode::{
    BlockDescriptor, CachingPage, ControlPage, DEVICE_SPECIFIC_DPOFUA, DEVICE_SPECIFIC_WP, ModeHeader, ModePage,
    mode_sense_data, page_code, parse_mode_parameters,
};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::Sense;
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::{FileDisk, Outcome, transfer_failed, write_failed};

/// Power-on values.
const DEFAULT_CACHING: CachingPage = CachingPage { write_cache: true, read_cache_disabled: false };
const DEFAULT_CONTROL: ControlPage = ControlPage { descriptor_sense: false };

impl FileDisk {
    fn caching_page(&self) -> ModePage {
        ModePage {
            code: page_code::CACHING,
            subpage: 0,
            current: CachingPage { write_cache: self.write_cache, read_cache_disabled: false }.to_parameters(),
            changeable: CachingPage { write_cache: true, read_cache_disabled: false }.to_parameters(),
            default: DEFAULT_CACHING.to_parameters(),
        }
    }

    fn control_page(&self) -> ModePage {
        ModePage {
            code: page_code::CONTROL,
            subpage: 0,
            current: ControlPage { descriptor_sense: self.descriptor_sense() }.to_parameters(),
            changeable: ControlPage { descriptor_sense: true }.to_parameters(),
            default: DEFAULT_CONTROL.to_parameters(),
        }
    }

    /// MODE SENSE(6/10).
    pub(crate) fn mode_sense(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let request = ModeSense::parse(cmd.cdb)?;
        let write_protect = if self.read_only { DEVICE_SPECIFIC_WP } else { 0 };
        let header = ModeHeader { medium_type: 0, device_specific: write_protect | DEVICE_SPECIFIC_DPOFUA };
        let block_descriptor = BlockDescriptor { blocks: self.block_count(), block_length: self.block_size() };
        let pages = [self.caching_page(), self.control_page()];
        let data = mode_sense_data(&request, header, Some(block_descriptor), &pages)?;
        Ok(respond(xfer, cmd, &data, request.allocation_length.into()))
    }

    /// MODE SELECT(6/10). A clear PF bit means vendor-specific page layout;
    /// this device's vendor-specific layout is the standard one, so PF is
    /// not checked. Block descriptors may restate the capacity and block
    /// size but not change them. Every page is checked before any takes
    /// effect.
    pub(crate) fn mode_select(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let select = ModeSelect::parse(cmd.cdb)?;
        if select.save_pages {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        let list_len = u32::from(select.parameter_list_length).min(cmd.data_out_len);
        let list = xfer.read_data_out(0, list_len).map_err(transfer_failed)?;
        let parameters = parse_mode_parameters(&list, select.form)?;

        let header_len = match select.form {
            ModeForm::Six => 4,
            ModeForm::Ten => 8,
        };
        for descriptor in &parameters.block_descriptors {
            let same_size = descriptor.blocks == 0 || descriptor.blocks == self.block_count();
            if !same_size || descriptor.block_length != self.block_size() {
                return Err(Sense::invalid_parameter_field(header_len, None));
            }
        }

        let (caching_page, control_page) = (self.caching_page(), self.control_page());
        let mut caching = CachingPage::from_parameters(&caching_page.current);
        let mut control = ControlPage::from_parameters(&control_page.current);
        for page in &parameters.pages {
            match (page.code, page.subpage) {
                (page_code::CACHING, 0) => caching = CachingPage::from_parameters(&caching_page.apply(page)?),
                (page_code::CONTROL, 0) => control = ControlPage::from_parameters(&control_page.apply(page)?),
                _ => return Err(Sense::invalid_parameter_field(page.offset as u16, Some(5))),
            }
        }

        // Turning the write cache off promises that completed writes are
        // durable, including those acknowledged while it was on.
        if self.write_cache && !caching.write_cache {
            self.store.flush().map_err(|e| write_failed("flush on write cache disable", e))?;
        }
        self.write_cache = caching.write_cache;
        self.set_descriptor_sense(control.descriptor_sense);
        Ok(Completion::good())
    }
}
