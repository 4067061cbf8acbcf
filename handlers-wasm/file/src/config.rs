//! The operator's config string. See the crate documentation for the syntax.

use tcmu_guest_sdk::scsi::vpd::NaaId;
use tcmu_guest_sdk::{ConfigKey, config};

/// Logical block sizes the handler offers. Linux handles all of them; the
/// host's store does byte-granular I/O, so the choice is the operator's.
const BLOCK_SIZES: [u32; 4] = [512, 1024, 2048, 4096];
/// Longest serial number accepted. It also lands in the T10 vendor ID
/// designator, whose length field is one byte.
const MAX_SERIAL_LEN: usize = 128;

const KNOWN_KEYS: &str = "ro, block_size, serial, wwn, vendor, product";

/// The keys, as `tcmu-wasm handlers` and targetcli's `help create` show
/// them (`Handler::config_keys`); in the order of [`KNOWN_KEYS`].
pub(crate) fn keys() -> Vec<ConfigKey> {
    let mut keys = vec![
        ConfigKey::flag("ro", "refuse writes (DATA PROTECT); also implied by a read-only store; default writable"),
        ConfigKey::value("block_size", "512|1024|2048|4096", "logical block size; default 512"),
    ];
    keys.extend(config::identity_keys(true, "FILE DISK"));
    keys
}

/// The parsed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// Refuse writes even when the store allows them.
    pub read_only: bool,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Unit serial number; `None` when the operator gave none.
    pub serial: Option<String>,
    /// Logical unit name for the device identification page; derived from
    /// the serial unless given.
    pub wwn: Option<NaaId>,
    /// T10 vendor identification.
    pub vendor: String,
    /// Product identification.
    pub product: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            read_only: false,
            block_size: 512,
            serial: None,
            wwn: None,
            vendor: "TCMUWASM".into(),
            product: "FILE DISK".into(),
        }
    }
}

impl Config {
    /// Parse `key=value` items and the `ro` flag, separated by `,` or `;`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config = Config::default();
        for (key, value) in config::items(text)? {
            match (key, value) {
                ("ro", None) => config.read_only = true,
                ("ro", Some(_)) => return Err("option \"ro\" takes no value".into()),
                (_, None) => return Err(config::unknown_or_valueless(key, KNOWN_KEYS)),
                ("block_size", Some(v)) => config.block_size = parse_block_size(v)?,
                ("serial", Some(v)) => config.serial = Some(config::ascii_field("serial", v, MAX_SERIAL_LEN)?),
                ("wwn", Some(v)) => config.wwn = Some(v.parse().map_err(|e| format!("wwn: {e}"))?),
                ("vendor", Some(v)) => config.vendor = config::ascii_field("vendor", v, 8)?,
                ("product", Some(v)) => config.product = config::ascii_field("product", v, 16)?,
                (_, Some(_)) => return Err(config::unknown(key, KNOWN_KEYS)),
            }
        }
        Ok(config)
    }
}

fn parse_block_size(value: &str) -> Result<u32, String> {
    value
        .parse()
        .ok()
        .filter(|size| BLOCK_SIZES.contains(size))
        .ok_or_else(|| format!("block_size {value:?} is not one of {BLOCK_SIZES:?}"))
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
    }

    #[test]
    fn every_option() {
        let c =
            Config::parse("ro, block_size=4096; serial = SN 42 ,wwn=naa.5000c50012345678,vendor=ACME,product=Big Disk")
                .unwrap();
        assert!(c.read_only);
        assert_eq!(c.block_size, 4096);
        assert_eq!(c.serial.as_deref(), Some("SN 42"));
        assert_eq!(c.wwn.unwrap().to_string(), "naa.5000c50012345678");
        assert_eq!((c.vendor.as_str(), c.product.as_str()), ("ACME", "Big Disk"));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |text| Config::parse(text).unwrap_err();
        assert!(err("size=1G").contains("unknown option \"size\""));
        assert!(err("bogus").contains("unknown option \"bogus\""));
        assert!(err("serial").contains("needs a value"));
        assert!(err("ro=1").contains("takes no value"));
        assert!(err("block_size=520").contains("not one of"));
        assert!(err("block_size=4k").contains("not one of"));
        assert!(err("vendor=NINECHARS").contains("1 to 8"));
        assert!(err("serial=").contains("1 to 128"));
        assert!(err("product=tab\there").contains("printable ASCII"));
        assert!(err("wwn=naa.7123").starts_with("wwn:"));
        assert!(err("ro,ro").contains("twice"));
    }
}
