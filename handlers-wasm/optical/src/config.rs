//! The operator's config string. See the crate documentation for the syntax.

use tcmu_guest_sdk::scsi::vpd::NaaId;
use tcmu_guest_sdk::{ConfigKey, config};

/// Longest serial number accepted (it also lands in a one-byte length field).
const MAX_SERIAL_LEN: usize = 128;

const KNOWN_KEYS: &str = "serial, wwn, vendor, product";

/// The keys, as `tcmu-wasm handlers` and targetcli's `help create` show
/// them (`Handler::config_keys`); in the order of [`KNOWN_KEYS`].
pub(crate) fn keys() -> Vec<ConfigKey> {
    config::identity_keys(true, "VIRTUAL DVD-ROM")
}

/// The parsed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Unit serial number; `None` uses the host's.
    pub serial: Option<String>,
    /// Logical unit name; derived from the serial unless given.
    pub wwn: Option<NaaId>,
    /// T10 vendor identification.
    pub vendor: String,
    /// Product identification.
    pub product: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { serial: None, wwn: None, vendor: "TCMUWASM".into(), product: "VIRTUAL DVD-ROM".into() }
    }
}

impl Config {
    /// Parse `key=value` items separated by `,` or `;`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config = Config::default();
        for (key, value) in config::items(text)? {
            let Some(value) = value else { return Err(config::unknown_or_valueless(key, KNOWN_KEYS)) };
            match key {
                "serial" => config.serial = Some(config::ascii_field("serial", value, MAX_SERIAL_LEN)?),
                "wwn" => config.wwn = Some(value.parse().map_err(|e| format!("wwn: {e}"))?),
                "vendor" => config.vendor = config::ascii_field("vendor", value, 8)?,
                "product" => config.product = config::ascii_field("product", value, 16)?,
                _ => return Err(config::unknown(key, KNOWN_KEYS)),
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_described_keys_are_the_known_ones() {
        let described: Vec<String> = super::keys().into_iter().map(|k| k.name).collect();
        assert_eq!(described.join(", "), super::KNOWN_KEYS);
    }

    use super::*;

    #[test]
    fn parses_identity_and_refuses_unknown_keys() {
        let c = Config::parse("serial=DVD1, vendor=ACME; product=DVD-ROM 16X").unwrap();
        assert_eq!(c.serial.as_deref(), Some("DVD1"));
        assert_eq!((c.vendor.as_str(), c.product.as_str()), ("ACME", "DVD-ROM 16X"));
        assert_eq!(Config::parse("").unwrap(), Config::default());
        for bad in ["bogus=1", "serial", "vendor=123456789", "product=12345678901234567"] {
            assert!(Config::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
