//! Reading back what [`Handler::save_state`](crate::Handler::save_state)
//! wrote: a cursor over the saved bytes whose every read fails cleanly on a
//! short or malformed buffer, so a state from a broken or hostile build is
//! refused rather than misread.

/// Reads big-endian fields in order from saved state.
#[derive(Debug, Clone)]
pub struct StateReader<'a>(&'a [u8]);

impl<'a> StateReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("saved state is cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// A flag byte: 0 or 1, anything else is an error.
    pub fn flag(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("saved state has a flag byte {other}")),
        }
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// What is left unread.
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order_and_refuses_short_or_bad_input() {
        let mut r = StateReader::new(&[1, 0, 0, 0, 2, 0, 3, 9]);
        assert!(r.flag().unwrap());
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.u16().unwrap(), 3);
        assert!(r.flag().is_err());
        assert!(r.u8().is_err());
        assert!(StateReader::new(&[0, 1]).u32().is_err());
        assert!(r.rest().is_empty());
    }
}
