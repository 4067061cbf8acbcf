//! Big-endian field access. SCSI puts every multi-byte field in big-endian
//! order; these read or write one at the start of a slice, so call sites
//! read like the spec tables: `get_be32(&cdb[2..])` is "bytes 2 to 5".
//!
//! All of them panic when the slice is shorter than the field, like slice
//! indexing does; decoders check CDB lengths once, up front.

/// Read a 16-bit field.
pub fn get_be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Read a 24-bit field.
pub fn get_be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// Read a 32-bit field.
pub fn get_be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Read a 64-bit field.
pub fn get_be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8-byte slice"))
}

/// Write a 16-bit field.
pub fn put_be16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

/// Write a 24-bit field: the low 24 bits of `v`.
pub fn put_be24(b: &mut [u8], v: u32) {
    debug_assert!(v < 1 << 24, "{v:#x} does not fit a 24-bit field");
    b[..3].copy_from_slice(&v.to_be_bytes()[1..]);
}

/// Write a 32-bit field.
pub fn put_be32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_be_bytes());
}

/// Write a 64-bit field.
pub fn put_be64(b: &mut [u8], v: u64) {
    b[..8].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_an_offset() {
        let mut b = [0u8; 12];
        put_be16(&mut b[1..], 0x0102);
        put_be24(&mut b[3..], 0x030405);
        put_be32(&mut b[6..], 0x0607_0809);
        assert_eq!(b, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0]);
        assert_eq!(get_be16(&b[1..]), 0x0102);
        assert_eq!(get_be24(&b[3..]), 0x030405);
        assert_eq!(get_be32(&b[6..]), 0x0607_0809);

        let mut b = [0u8; 9];
        put_be64(&mut b[1..], 0x1122_3344_5566_7788);
        assert_eq!(b[1], 0x11);
        assert_eq!(b[8], 0x88);
        assert_eq!(get_be64(&b[1..]), 0x1122_3344_5566_7788);
    }

    #[test]
    #[should_panic]
    fn short_slice_panics() {
        get_be32(&[1, 2, 3]);
    }
}
