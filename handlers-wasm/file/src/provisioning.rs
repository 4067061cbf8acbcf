//! WRITE SAME and UNMAP: writing or deallocating many blocks at once.
//! Deallocated blocks read back as zeroes (the store's `discard` promises
//! it), so the device reports LBPRZ and may unmap instead of writing zeroes.

use tcmu_guest_sdk::scsi::cdb::{Unmap, WriteSame, parse_unmap_parameters};
use tcmu_guest_sdk::scsi::opcode;
use tcmu_guest_sdk::sense::Sense;
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::{FileDisk, Outcome, fits_buffer, refuse_protection, transfer_failed, write_failed};

/// The most bytes one WRITE SAME or UNMAP may cover. It bounds how long a
/// single command can keep the device busy when the store has to write
/// the blocks; 1 GiB still makes mkfs's discard pass quick.
const MAX_BYTES_PER_COMMAND: u64 = 1 << 30;
/// The most blocks one WRITE SAME or UNMAP may cover, whatever the block
/// size: initiators (libiscsi's conformance tests among them) treat a
/// MAXIMUM UNMAP LBA COUNT above 2^20 as implausible.
const MAX_BLOCKS_PER_COMMAND: u64 = 1 << 20;
/// The most descriptors one UNMAP parameter list may carry.
pub(crate) const MAX_UNMAP_DESCRIPTORS: u32 = 256;
/// Bytes per write_at call when WRITE SAME repeats a non-zero block.
const PATTERN_CHUNK: u64 = 256 * 1024;

impl FileDisk {
    /// The most blocks one WRITE SAME or UNMAP may cover.
    pub(crate) fn max_blocks_per_provisioning_command(&self) -> u32 {
        (MAX_BYTES_PER_COMMAND / u64::from(self.block_size())).min(MAX_BLOCKS_PER_COMMAND) as u32
    }

    /// WRITE SAME(10/16). A zero block (or NDOB) becomes write_zeroes, or
    /// discard when the UNMAP bit allows; other data is written out in
    /// chunks of the repeated block.
    pub(crate) fn write_same(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let ws = WriteSame::parse(cmd.cdb)?;
        refuse_protection(ws.protect)?;
        if ws.anchor {
            return Err(Sense::invalid_cdb_field(1, Some(4))); // ANC_SUP is 0
        }
        // WSNZ is set, so 0 ("to the end of the medium") is refused, as is
        // more than the advertised maximum.
        if ws.blocks == 0 || ws.blocks > self.max_blocks_per_provisioning_command() {
            let length_field = if cmd.opcode() == opcode::WRITE_SAME_10 { 7 } else { 10 };
            return Err(Sense::invalid_cdb_field(length_field, None));
        }
        self.check_writable()?;
        let extent = self.extent(ws.lba, ws.blocks.into())?;

        let block = if ws.ndob {
            None
        } else {
            let block_size = self.block_size();
            fits_buffer(block_size.into(), cmd.data_out_len)?;
            Some(xfer.read_data_out(0, block_size).map_err(transfer_failed)?)
        };
        match block.filter(|b| b.iter().any(|&byte| byte != 0)) {
            None if ws.unmap => self.store.discard(extent.offset, extent.len).map_err(|e| write_failed("unmap", e))?,
            None => self.store.write_zeroes(extent.offset, extent.len).map_err(|e| write_failed("write zeroes", e))?,
            Some(block) => {
                let chunk = block.repeat((extent.len.min(PATTERN_CHUNK) / block.len() as u64) as usize);
                let mut done = 0;
                while done < extent.len {
                    let len = (extent.len - done).min(chunk.len() as u64) as usize;
                    self.store
                        .write_at(extent.offset + done, &chunk[..len])
                        .map_err(|e| write_failed("write same", e))?;
                    done += len as u64;
                }
            }
        }
        self.complete_write(false)
    }

    /// UNMAP. The whole parameter list is checked before anything is
    /// deallocated, so a bad descriptor leaves the medium untouched.
    pub(crate) fn unmap(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let unmap = Unmap::parse(cmd.cdb)?;
        if unmap.anchor {
            return Err(Sense::invalid_cdb_field(1, Some(0))); // ANC_SUP is 0
        }
        self.check_writable()?;
        let list_len = u32::from(unmap.parameter_list_length).min(cmd.data_out_len);
        let list = xfer.read_data_out(0, list_len).map_err(transfer_failed)?;
        let descriptors = parse_unmap_parameters(&list)?;
        if descriptors.len() > MAX_UNMAP_DESCRIPTORS as usize {
            // The UNMAP BLOCK DESCRIPTOR DATA LENGTH field.
            return Err(Sense::invalid_parameter_field(2, None));
        }

        let mut extents = Vec::with_capacity(descriptors.len());
        let mut total_blocks = 0u64;
        for (i, descriptor) in descriptors.iter().enumerate() {
            total_blocks += u64::from(descriptor.blocks);
            if total_blocks > self.max_blocks_per_provisioning_command().into() {
                // This descriptor's NUMBER OF LOGICAL BLOCKS field.
                let field = 8 + 16 * i + 8;
                return Err(Sense::invalid_parameter_field(field as u16, None));
            }
            extents.push(self.extent(descriptor.lba, descriptor.blocks.into())?);
        }
        for extent in extents.into_iter().filter(|e| e.len > 0) {
            self.store.discard(extent.offset, extent.len).map_err(|e| write_failed("unmap", e))?;
        }
        Ok(Completion::good())
    }
}
