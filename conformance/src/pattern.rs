//! Recognizable block contents.
//!
//! Every 16-byte cell of a pattern block says which write put it there (a
//! tag), which LBA it belongs to and where in the block it sits, so a block
//! that lands at the wrong LBA, a torn or shifted transfer and stale data
//! all show up as a mismatch that names what went wrong.

/// `blocks` blocks starting at `first_lba`, marked with `tag`.
pub(crate) fn blocks(first_lba: u64, blocks: u32, block_size: u32, tag: u8) -> Vec<u8> {
    let block_size = block_size as usize;
    let mut data = Vec::with_capacity(blocks as usize * block_size);
    for lba in first_lba..first_lba + u64::from(blocks) {
        data.extend((0..block_size).map(|offset| cell_byte(tag, lba, offset)));
    }
    data
}

/// Byte `offset` of a block: cells of `tag`, 7 low bytes of the LBA, the
/// offset of the cell in the block (4 bytes) and `b"TCMU"`.
fn cell_byte(tag: u8, lba: u64, offset: usize) -> u8 {
    let cell_start = (offset & !0xF) as u32;
    match offset & 0xF {
        0 => tag,
        i @ 1..=7 => lba.to_be_bytes()[i],
        i @ 8..=11 => cell_start.to_be_bytes()[i - 8],
        i => b"TCMU"[i - 12],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_name_tag_lba_and_offset() {
        let data = blocks(0x0102, 2, 32, 0xAB);
        assert_eq!(data.len(), 64);
        assert_eq!(&data[..16], &[0xAB, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, b'T', b'C', b'M', b'U']);
        assert_eq!(&data[16..28], &[0xAB, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 16]);
        assert_eq!(&data[32..40], &[0xAB, 0, 0, 0, 0, 0, 1, 3]);
    }

    #[test]
    fn tags_and_lbas_give_different_blocks() {
        assert_ne!(blocks(7, 1, 512, 1), blocks(7, 1, 512, 2));
        assert_ne!(blocks(7, 1, 512, 1), blocks(8, 1, 512, 1));
        assert!(blocks(0, 1, 512, 0).iter().any(|&b| b != 0));
    }
}
