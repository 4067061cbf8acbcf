//! The operator's config string. See the crate documentation for the syntax.

use tcmu_guest_sdk::{ConfigKey, config};

/// Longest serial number accepted. It also lands in the T10 vendor ID
/// designator of VPD page 83h, whose length field is one byte.
const MAX_SERIAL_LEN: usize = 128;

const KNOWN_KEYS: &str = "serial, vendor, product";

/// The keys, as `tcmu-wasm handlers` and targetcli's `help create` show
/// them (`Handler::config_keys`); in the order of [`KNOWN_KEYS`].
pub(crate) fn keys() -> Vec<ConfigKey> {
    config::identity_keys(false, "VIRTUAL CHANGER")
}

/// The parsed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Unit serial number; `None` when the operator gave none.
    pub serial: Option<String>,
    /// T10 vendor identification.
    pub vendor: String,
    /// Product identification.
    pub product: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { serial: None, vendor: "TCMUWASM".into(), product: "VIRTUAL CHANGER".into() }
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
    fn empty_config_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::parse(" ; , ").unwrap(), Config::default());
        assert!(Config::default().product.len() <= 16);
    }

    #[test]
    fn every_option() {
        let c = Config::parse("serial = LIB 42 ;vendor=ACME, product=Robot Arm").unwrap();
        assert_eq!(c.serial.as_deref(), Some("LIB 42"));
        assert_eq!((c.vendor.as_str(), c.product.as_str()), ("ACME", "Robot Arm"));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |text| Config::parse(text).unwrap_err();
        assert!(err("slots=10").contains("unknown option \"slots\""));
        assert!(err("ro").contains("unknown option \"ro\""));
        assert!(err("serial").contains("needs a value"));
        assert!(err("vendor=NINECHARS").contains("1 to 8"));
        assert!(err("product=SEVENTEEN CHARSXX").contains("1 to 16"));
        assert!(err("serial=").contains("1 to 128"));
        assert!(err("product=tab\there").contains("printable ASCII"));
        assert!(err("vendor=A,vendor=B").contains("twice"));
    }
}
