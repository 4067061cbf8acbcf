//! Typed views of the common mode pages.

/// The caching mode page (0x08, SBC-3 6.4.5), reduced to the two bits a
/// cache-less or write-back emulation acts on. Its other fields are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CachingPage {
    /// WCE: writes may complete before they are durable.
    pub write_cache: bool,
    /// RCD: the read cache is disabled.
    pub read_cache_disabled: bool,
}

impl CachingPage {
    /// Parameter bytes of the caching page.
    pub const LEN: usize = 0x12;

    /// Encode as page parameters. Use with every flag set to true to build
    /// a changeable-bits mask.
    pub fn to_parameters(&self) -> Vec<u8> {
        let mut p = vec![0u8; Self::LEN];
        p[0] = u8::from(self.write_cache) << 2 | u8::from(self.read_cache_disabled);
        p
    }

    /// Decode from page parameters (such as [`ModePage::apply`](super::ModePage::apply) returns).
    pub fn from_parameters(p: &[u8]) -> Self {
        Self { write_cache: p[0] & 0x04 != 0, read_cache_disabled: p[0] & 0x01 != 0 }
    }
}

/// The control mode page (0x0A, SPC-4 7.5.8), reduced to its D_SENSE bit;
/// its other fields are zero (restricted reordering, no QERR, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlPage {
    /// D_SENSE: report sense data in descriptor format.
    pub descriptor_sense: bool,
}

impl ControlPage {
    /// Parameter bytes of the control page.
    pub const LEN: usize = 0x0A;

    /// Encode as page parameters.
    pub fn to_parameters(&self) -> Vec<u8> {
        let mut p = vec![0u8; Self::LEN];
        p[0] = u8::from(self.descriptor_sense) << 2;
        p
    }

    /// Decode from page parameters.
    pub fn from_parameters(p: &[u8]) -> Self {
        Self { descriptor_sense: p[0] & 0x04 != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_page_round_trip() {
        let p = ControlPage { descriptor_sense: true }.to_parameters();
        assert_eq!(p.len(), 10);
        assert_eq!(p[0], 0x04);
        assert!(ControlPage::from_parameters(&p).descriptor_sense);
    }
}
