//! The operator's config string. See the crate documentation for the syntax.

use tcmu_guest_sdk::scsi::vpd::NaaId;
use tcmu_guest_sdk::{ConfigKey, config};

/// Longest serial number accepted (it also lands in a one-byte length field).
const MAX_SERIAL_LEN: usize = 128;
/// Largest block a drive may offer: the st driver and the ring's data area
/// both cap a single transfer well below READ(6)'s 24-bit length.
const MAX_BLOCK_LIMIT: u32 = 8 << 20;

const KNOWN_KEYS: &str = "serial, wwn, vendor, product, density, max_block, early_warning";

/// The keys, as `tcmu-wasm handlers` and targetcli's `help create` show
/// them (`Handler::config_keys`); in the order of [`KNOWN_KEYS`].
pub(crate) fn keys() -> Vec<ConfigKey> {
    let mut keys = config::identity_keys(true, "VIRTUAL TAPE");
    keys.extend([
        ConfigKey::value("density", "LTO-5...LTO-9|0xNN", "density the drive reports and writes; default LTO-5"),
        ConfigKey::value("max_block", "N[K|M]", "largest block (READ BLOCK LIMITS); default 1M"),
        ConfigKey::value(
            "early_warning",
            "N[K|M|G]",
            "early warning this far before the end; default 1 MiB (a quarter of cartridges under 4 MiB)",
        ),
    ]);
    keys
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
    /// The density code the drive reports and writes.
    pub density: u8,
    /// Largest logical block (READ BLOCK LIMITS).
    pub max_block: u32,
    /// Bytes before the physical end of the cartridge where early warning
    /// begins; `None`: 1 MiB, or a quarter of a cartridge smaller than 4 MiB.
    pub early_warning: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            serial: None,
            wwn: None,
            vendor: "TCMUWASM".into(),
            product: "VIRTUAL TAPE".into(),
            density: crate::density::DEFAULT.code,
            max_block: 1 << 20,
            early_warning: None,
        }
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
                "density" => config.density = parse_density(value)?,
                "max_block" => {
                    let size = parse_size(value).map_err(|e| format!("max_block: {e}"))?;
                    config.max_block = u32::try_from(size)
                        .ok()
                        .filter(|&s| (1..=MAX_BLOCK_LIMIT).contains(&s))
                        .ok_or_else(|| format!("max_block {value:?} is not between 1 and {MAX_BLOCK_LIMIT}"))?;
                }
                "early_warning" => {
                    config.early_warning = Some(parse_size(value).map_err(|e| format!("early_warning: {e}"))?)
                }
                _ => return Err(config::unknown(key, KNOWN_KEYS)),
            }
        }
        Ok(config)
    }

    /// The early-warning distance for a cartridge of `capacity` bytes.
    pub fn early_warning_for(&self, capacity: u64) -> u64 {
        self.early_warning.unwrap_or(if capacity < 4 << 20 { capacity / 4 } else { 1 << 20 })
    }
}

fn parse_density(value: &str) -> Result<u8, String> {
    let code = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => crate::density::by_name(value).map(|d| d.code).or_else(|| value.parse().ok()),
    };
    code.filter(|&c| crate::density::by_code(c).is_some()).ok_or_else(|| {
        let names: Vec<_> = crate::density::ALL.iter().map(|d| d.name).collect();
        format!("density {value:?} is not one of {}", names.join(", "))
    })
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
fn parse_size(value: &str) -> Result<u64, String> {
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 10),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 20),
        Some(b'g' | b'G') => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{value:?} is not a size (a number with an optional K, M or G)"))
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
    fn parses_every_option() {
        let c = Config::parse("serial=T1, vendor=ACME, product=LTO, density=LTO-6, max_block=256K; early_warning=2M")
            .unwrap();
        assert_eq!(c.serial.as_deref(), Some("T1"));
        assert_eq!((c.vendor.as_str(), c.product.as_str()), ("ACME", "LTO"));
        assert_eq!((c.density, c.max_block, c.early_warning), (0x5a, 256 << 10, Some(2 << 20)));
        assert_eq!(Config::parse("density=0x58").unwrap().density, 0x58);
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn refuses_bad_options_with_a_reason() {
        for bad in
            ["bogus=1", "serial", "max_block=0", "max_block=1G", "density=9", "early_warning=x", "vendor=123456789"]
        {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
        assert!(Config::parse("serial=a,serial=b").unwrap_err().contains("twice"));
    }

    #[test]
    fn early_warning_scales_down_for_tiny_cartridges() {
        let c = Config::default();
        assert_eq!(c.early_warning_for(64 << 20), 1 << 20);
        assert_eq!(c.early_warning_for(2 << 20), 512 << 10);
    }
}
