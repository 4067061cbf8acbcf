//! VERIFY and COMPARE AND WRITE: the commands that compare the medium with
//! data, a chunk at a time in guest memory.

use tcmu_guest_sdk::scsi::cdb::{ByteCheck, CompareAndWrite, Verify};
use tcmu_guest_sdk::sense::{MISCOMPARE_DURING_VERIFY, Sense};
use tcmu_guest_sdk::{Command, Completion, Transfer};

use crate::{Extent, FileDisk, Outcome, fits_buffer, read_failed, refuse_protection, transfer_failed, write_failed};

/// Bytes compared per step, bounding the guest memory a compare holds
/// (twice this: the medium's bytes and the expected ones). A multiple of
/// every block size.
const COMPARE_CHUNK: u64 = 256 * 1024;

/// The largest COMPARE AND WRITE, advertised in the block limits page: the
/// CDB's one-byte field allows no more, and compares are chunked anyway.
pub(crate) const MAX_COMPARE_AND_WRITE_BLOCKS: u8 = u8::MAX;

impl FileDisk {
    /// VERIFY(10/12/16). Without BYTCHK only the range is checked: the
    /// store reports no latent errors to look for.
    pub(crate) fn verify(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let verify = Verify::parse(cmd.cdb)?;
        refuse_protection(verify.protect)?;
        let extent = self.extent(verify.lba, verify.blocks.into())?;
        if extent.len == 0 {
            return Ok(Completion::good());
        }
        let mismatch = match verify.byte_check {
            ByteCheck::None => None,
            ByteCheck::DataOut => {
                fits_buffer(extent.len, cmd.data_out_len)?;
                self.first_mismatch(extent, |at, len| read_data_out(xfer, at, len))?
            }
            ByteCheck::SingleBlock => {
                let block_size = self.block_size();
                fits_buffer(block_size.into(), cmd.data_out_len)?;
                let block = read_data_out(xfer, 0, block_size)?;
                // Chunks are whole blocks, so each is a prefix of the block repeated.
                let chunk = extent.len.min(COMPARE_CHUNK);
                let pattern = block.repeat((chunk / u64::from(block_size)) as usize);
                self.first_mismatch(extent, |_, len| Ok(pattern[..len as usize].to_vec()))?
            }
        };
        match mismatch {
            Some(offset) => Err(miscompare(offset)),
            None => Ok(Completion::good()),
        }
    }

    /// COMPARE AND WRITE: the data-out holds the blocks to compare, then
    /// the blocks to write. Commands run one at a time per device, so the
    /// compare and the write are atomic to every initiator. On a miscompare
    /// nothing is written.
    pub(crate) fn compare_and_write(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let caw = CompareAndWrite::parse(cmd.cdb)?;
        refuse_protection(caw.protect)?;
        self.check_writable()?;
        let extent = self.extent(caw.lba, caw.blocks.into())?;
        if extent.len == 0 {
            // Zero blocks is no error, but data-out sent with it means the
            // initiator meant more blocks than the one-byte field can say
            // (256 wraps to 0): refuse rather than silently compare nothing.
            if cmd.data_out_len != 0 {
                return Err(Sense::invalid_cdb_field(13, None));
            }
            return Ok(Completion::good());
        }
        fits_buffer(2 * extent.len, cmd.data_out_len)?;
        if let Some(offset) = self.first_mismatch(extent, |at, len| read_data_out(xfer, at, len))? {
            return Err(miscompare(offset));
        }
        // Both halves fit the u32 data-out, as fits_buffer just checked.
        let len = extent.len as u32;
        self.store.write_from_data_out(extent.offset, len, len).map_err(|e| write_failed("compare and write", e))?;
        self.complete_write(caw.fua)
    }

    /// The offset within `extent` of the first byte that differs from what
    /// `expected(offset, len)` says belongs there, if any.
    fn first_mismatch(
        &self,
        extent: Extent,
        mut expected: impl FnMut(u64, u32) -> Result<Vec<u8>, Sense>,
    ) -> Result<Option<u64>, Sense> {
        let mut done = 0;
        while done < extent.len {
            let len = (extent.len - done).min(COMPARE_CHUNK) as u32;
            let medium = self.store.read_at(extent.offset + done, len).map_err(|e| read_failed("verify read", e))?;
            let wanted = expected(done, len)?;
            if let Some(i) = medium.iter().zip(&wanted).position(|(have, want)| have != want) {
                return Ok(Some(done + i as u64));
            }
            done += u64::from(len);
        }
        Ok(None)
    }
}

/// MISCOMPARE with the INFORMATION field set to the offset of the first
/// byte that differed, as SBC-3 asks of both VERIFY and COMPARE AND WRITE.
fn miscompare(offset: u64) -> Sense {
    Sense::from(MISCOMPARE_DURING_VERIFY).with_information(offset)
}

/// Data-out bytes `at..at + len`; callers have checked they exist.
fn read_data_out(xfer: &mut dyn Transfer, at: u64, len: u32) -> Result<Vec<u8>, Sense> {
    xfer.read_data_out(at as u32, len).map_err(transfer_failed)
}
