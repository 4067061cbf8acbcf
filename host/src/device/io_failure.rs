//! The SCSI answer to a command whose queued store I/O failed: MEDIUM
//! ERROR, UNRECOVERED READ ERROR (03/11/00) for a read, WRITE ERROR
//! (03/0C/00) for a write, flush, discard or write-zeroes. For READ and WRITE CDBs (6, 10, 12, 16)
//! the sense's INFORMATION field names the first LBA that was not
//! transferred, as a disk reports it and as Linux's sd uses it to complete
//! the good part of the request; the block size is what the CDB's transfer
//! length makes of the buffer.

use crate::aio::{IoFailure, OpKind};
use crate::ring::{CommandEntry, Response};

/// LBA and transfer length (blocks) of a READ or WRITE CDB.
fn read_write_extent(cdb: &[u8]) -> Option<(u64, u64)> {
    let be = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    match (cdb.first()?, cdb.len()) {
        // READ(6)/WRITE(6): 21-bit LBA; a transfer length of 0 means 256.
        (0x08 | 0x0a, 6..) => {
            let lba = be(&cdb[1..4]) & 0x1f_ffff;
            let blocks = if cdb[4] == 0 { 256 } else { u64::from(cdb[4]) };
            Some((lba, blocks))
        }
        (0x28 | 0x2a, 10..) => Some((be(&cdb[2..6]), be(&cdb[7..9]))),
        (0xa8 | 0xaa, 12..) => Some((be(&cdb[2..6]), be(&cdb[6..10]))),
        (0x88 | 0x8a, 16..) => Some((be(&cdb[2..10]), be(&cdb[10..14]))),
        _ => None,
    }
}

/// The response for `cmd`, whose I/O failed as `failure` says.
pub fn medium_error(cmd: &CommandEntry, failure: &IoFailure) -> Response {
    let (asc, ascq) = match failure.kind {
        OpKind::Read => (0x11, 0x00),
        OpKind::Write | OpKind::Flush | OpKind::Discard | OpKind::WriteZeroes => (0x0c, 0x00),
    };
    let mut response = Response::check_condition(0x03, asc, ascq);
    let buffer = cmd.bidi_in.as_ref().unwrap_or(&cmd.data).len().max(cmd.data.len());
    if failure.kind != OpKind::Flush
        && let Some((lba, blocks)) = read_write_extent(&cmd.cdb)
        && blocks > 0
        && u64::from(buffer) % blocks == 0
    {
        let block_size = u64::from(buffer) / blocks;
        if let Some(blocks_done) = failure.buffer_offset.checked_div(block_size) {
            let failed = lba + blocks_done;
            // Fixed format: VALID, and INFORMATION holds 4 bytes; a larger
            // LBA cannot be named there, so VALID stays clear.
            if let Ok(info) = u32::try_from(failed) {
                response.sense[0] |= 0x80;
                response.sense[3..7].copy_from_slice(&info.to_be_bytes());
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_of_every_read_and_write_cdb() {
        assert_eq!(read_write_extent(&[0x08, 0x01, 0x02, 0x03, 0, 0]), Some((0x10203, 256)));
        assert_eq!(read_write_extent(&[0x2a, 0, 0, 0, 1, 0, 0, 0, 8, 0]), Some((256, 8)));
        assert_eq!(read_write_extent(&[0xa8, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0]), Some((9, 2)));
        let mut cdb16 = [0u8; 16];
        cdb16[0] = 0x88;
        cdb16[9] = 7;
        cdb16[13] = 1;
        assert_eq!(read_write_extent(&cdb16), Some((7, 1)));
        assert_eq!(read_write_extent(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None, "SYNCHRONIZE CACHE names no LBA");
    }
}
