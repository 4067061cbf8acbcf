//! Assertions that explain themselves: each returns `Err` saying what was
//! expected and what the device did.

use crate::sense::{Sense, SenseCode};
use crate::target::{Response, STATUS_CHECK_CONDITION, STATUS_GOOD};

/// Return `Err(format!(...))` from the enclosing check unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err(format!($($reason)+));
        }
    };
}
pub(crate) use ensure;

/// Expect GOOD status.
pub(crate) fn good(response: &Response) -> Result<(), String> {
    ensure!(response.status == STATUS_GOOD, "expected GOOD got {response}");
    Ok(())
}

/// Expect CHECK CONDITION with `code`; returns the decoded sense.
pub(crate) fn sense(response: &Response, code: SenseCode) -> Result<Sense, String> {
    ensure!(response.status == STATUS_CHECK_CONDITION, "expected {code} got {response}");
    let sense = response.decoded_sense().map_err(|e| format!("expected {code} got CHECK CONDITION with {e}"))?;
    ensure!(sense.code == code, "expected {code} got {}", sense.code);
    Ok(sense)
}

/// Expect exactly `len` bytes of data-in.
pub(crate) fn data_len(response: &Response, len: usize) -> Result<(), String> {
    let got = response.data_in.len();
    ensure!(got == len, "expected {len} bytes of data-in got {got}");
    Ok(())
}

/// Compare block data; a mismatch names the LBA and the byte in it.
pub(crate) fn same_blocks(got: &[u8], want: &[u8], first_lba: u64, block_size: u32) -> Result<(), String> {
    ensure!(got.len() == want.len(), "expected {} bytes of block data got {}", want.len(), got.len());
    let Some(offset) = first_difference(got, want) else {
        return Ok(());
    };
    let block_size = block_size as usize;
    let lba = first_lba + (offset / block_size) as u64;
    Err(format!("LBA {lba} byte {}: expected 0x{:02X} got 0x{:02X}", offset % block_size, want[offset], got[offset]))
}

/// Compare structured data (pages, headers) byte for byte.
pub(crate) fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    ensure!(got.len() == want.len(), "{what}: expected {} bytes got {}", want.len(), got.len());
    if let Some(offset) = first_difference(got, want) {
        return Err(format!("{what}: byte {offset} expected 0x{:02X} got 0x{:02X}", want[offset], got[offset]));
    }
    Ok(())
}

fn first_difference(got: &[u8], want: &[u8]) -> Option<usize> {
    got.iter().zip(want).position(|(g, w)| g != w)
}

/// The big-endian field at `range` of a response, or why it is missing.
pub(crate) fn be(data: &[u8], range: std::ops::Range<usize>) -> Result<u64, String> {
    debug_assert!(range.len() <= 8);
    let end = range.end;
    let bytes =
        data.get(range).ok_or_else(|| format!("response too short: {} bytes, field needs {end}", data.len()))?;
    Ok(bytes.iter().fold(0, |value, &b| value << 8 | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sense;

    fn check_condition(sense: &[u8]) -> Response {
        Response { status: STATUS_CHECK_CONDITION, sense: sense.to_vec(), data_in: vec![] }
    }

    fn fixed(key: u8, asc: u8) -> Vec<u8> {
        vec![0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, 0, 0, 0, 0, 0]
    }

    #[test]
    fn messages_decode_what_was_observed() {
        let good_response = Response { status: STATUS_GOOD, sense: vec![], data_in: vec![] };
        assert_eq!(good(&good_response), Ok(()));
        assert_eq!(good(&check_condition(&fixed(5, 0x24))).unwrap_err(), "expected GOOD got CHECK CONDITION 05/24/00");
        assert_eq!(
            sense(&check_condition(&fixed(5, 0x24)), sense::MISCOMPARE_DURING_VERIFY).unwrap_err(),
            "expected 0E/1D/00 got 05/24/00"
        );
        assert_eq!(sense(&good_response, sense::MISCOMPARE_DURING_VERIFY).unwrap_err(), "expected 0E/1D/00 got GOOD");
        assert_eq!(
            sense(&check_condition(&[]), sense::LBA_OUT_OF_RANGE).unwrap_err(),
            "expected 05/21/00 got CHECK CONDITION with no sense data"
        );
        let busy = Response { status: 0x08, sense: vec![], data_in: vec![] };
        assert_eq!(good(&busy).unwrap_err(), "expected GOOD got BUSY");
    }

    #[test]
    fn block_mismatch_names_lba_and_byte() {
        let want = vec![0u8; 1024];
        let mut got = want.clone();
        got[512 + 3] = 0x7F;
        assert_eq!(same_blocks(&got, &want, 10, 512).unwrap_err(), "LBA 11 byte 3: expected 0x00 got 0x7F");
        assert!(same_blocks(&want, &want, 10, 512).is_ok());
        assert!(same_blocks(&want[..512], &want, 10, 512).is_err());
    }

    #[test]
    fn big_endian_fields() {
        assert_eq!(be(&[1, 2, 3, 4], 1..3), Ok(0x0203));
        assert_eq!(be(&[1, 2], 0..4).unwrap_err(), "response too short: 2 bytes, field needs 4");
    }
}
