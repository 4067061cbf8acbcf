//! Reading a handler's config string: `key=value` items and bare flags,
//! separated by `,` or `;`, the convention every handler here follows.
//!
//! ```
//! use tcmu_guest_sdk::config;
//!
//! let items = config::items("serial=t0; ro").unwrap();
//! assert_eq!(items, [("serial", Some("t0")), ("ro", None)]);
//! assert!(config::items("a=1,a=2").unwrap_err().contains("twice"));
//! ```

/// The items of `text`, trimmed, empty ones skipped; a key given twice is
/// refused.
pub fn items(text: &str) -> Result<Vec<(&str, Option<&str>)>, String> {
    let mut out: Vec<(&str, Option<&str>)> = Vec::new();
    for item in text.split([',', ';']).map(str::trim).filter(|item| !item.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (item, None),
        };
        if out.iter().any(|(seen, _)| *seen == key) {
            return Err(format!("option {key:?} is given twice"));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The error for `key` given without a value, or not known at all; `known`
/// lists the keys, comma-separated.
pub fn unknown_or_valueless(key: &str, known: &str) -> String {
    if known.split(", ").any(|k| k == key) {
        format!("option {key:?} needs a value ({key}=...)")
    } else {
        unknown(key, known)
    }
}

/// The error for an unknown `key`.
pub fn unknown(key: &str, known: &str) -> String {
    format!("unknown option {key:?} (known: {known})")
}

/// An identification string (INQUIRY vendor/product, a serial number): 1 to
/// `max_len` printable ASCII characters.
pub fn ascii_field(key: &str, value: &str, max_len: usize) -> Result<String, String> {
    if value.is_empty() || value.len() > max_len {
        return Err(format!("{key} must be 1 to {max_len} characters, got {value:?}"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!("{key} must be printable ASCII, got {value:?}"));
    }
    Ok(value.to_owned())
}

/// The identity keys most handlers share, for their
/// [`Handler::config_keys`](crate::Handler::config_keys): `serial`, `wwn`
/// (when `with_wwn`), `vendor` and `product`, the last with the handler's
/// default product identification.
pub fn identity_keys(with_wwn: bool, default_product: &str) -> Vec<crate::ConfigKey> {
    use crate::ConfigKey;
    let mut keys = vec![ConfigKey::value(
        "serial",
        "TEXT",
        "unit serial number (VPD 80h), up to 128 printable ASCII characters; default the host's",
    )];
    if with_wwn {
        keys.push(ConfigKey::value(
            "wwn",
            "naa.5...|naa.6...",
            "logical unit name (VPD 83h); default derived from the serial",
        ));
    }
    keys.push(ConfigKey::value("vendor", "TEXT", "T10 vendor identification, up to 8 characters; default TCMUWASM"));
    keys.push(ConfigKey::value(
        "product",
        "TEXT",
        &format!("product identification, up to 16 characters; default {default_product}"),
    ));
    keys
}
