//! The operator's config string. See the crate documentation for the syntax.

/// Longest serial number accepted. It also lands in the T10 vendor ID
/// designator of VPD page 83h, whose length field is one byte.
const MAX_SERIAL_LEN: usize = 128;

const KNOWN_KEYS: &str = "serial, vendor, product";

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
        let mut seen = Vec::new();
        for item in text.split([',', ';']).map(str::trim).filter(|item| !item.is_empty()) {
            let Some((key, value)) = item.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
                return Err(unknown_or_valueless(item));
            };
            if seen.contains(&key) {
                return Err(format!("option {key:?} is given twice"));
            }
            seen.push(key);
            match key {
                "serial" => config.serial = Some(ascii_field("serial", value, MAX_SERIAL_LEN)?),
                "vendor" => config.vendor = ascii_field("vendor", value, 8)?,
                "product" => config.product = ascii_field("product", value, 16)?,
                _ => return Err(format!("unknown option {key:?} (known: {KNOWN_KEYS})")),
            }
        }
        Ok(config)
    }
}

fn unknown_or_valueless(key: &str) -> String {
    if KNOWN_KEYS.split(", ").any(|known| known == key) {
        format!("option {key:?} needs a value ({key}=...)")
    } else {
        format!("unknown option {key:?} (known: {KNOWN_KEYS})")
    }
}

/// INQUIRY strings are printable ASCII of bounded length.
fn ascii_field(key: &str, value: &str, max_len: usize) -> Result<String, String> {
    if value.is_empty() || value.len() > max_len {
        return Err(format!("{key} must be 1 to {max_len} characters, got {value:?}"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!("{key} must be printable ASCII, got {value:?}"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
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
