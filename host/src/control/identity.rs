//! Default device identities: every device gets a unit serial and an NAA
//! name unique to it and stable across restarts, derived from the daemon's
//! instance id and the device name. Without this, two devices whose
//! handler config names no serial look like one disk to multipath and udev.

use sha2::{Digest, Sha256};
use tcmu_guest_sdk::DeviceIdentity;
use tcmu_guest_sdk::scsi::vpd::NaaId;

use super::config::DaemonSettings;

/// The daemon's instance id: the configured one, else `/etc/machine-id`,
/// else the host name.
pub fn instance_id(settings: &DaemonSettings) -> String {
    if let Some(id) = &settings.instance_id {
        return id.trim().to_owned();
    }
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id")
        && !id.trim().is_empty()
    {
        return id.trim().to_owned();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tcmu-wasm".into())
}

/// The identity of device `name` under `instance`: a UUID-shaped serial
/// (as targetcli writes into `vpd_unit_serial`) and the NAA 6 name the SDK
/// derives from that serial (IEEE company id 00-14-05, like LIO's own).
/// This mapping must never change, or every device's identity would.
pub fn device_identity(instance: &str, name: &str) -> DeviceIdentity {
    let d = Sha256::digest(format!("tcmu-wasm/identity/{instance}/{name}").as_bytes());
    let h = hex::encode(&d[..16]);
    let serial = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    let naa = NaaId::from_serial(&serial).to_string();
    DeviceIdentity { name: name.to_owned(), serial, naa }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_unique_per_device_and_instance_and_stable() {
        let a = device_identity("host-a", "disk0");
        assert_eq!(a, device_identity("host-a", "disk0"), "stable");
        let b = device_identity("host-a", "disk1");
        let c = device_identity("host-b", "disk0");
        assert_ne!(a.serial, b.serial);
        assert_ne!(a.naa, b.naa);
        assert_ne!(a.serial, c.serial, "the same name on another daemon is another device");
        assert_eq!(a.serial.len(), 36);
        assert!(a.naa.starts_with("naa.6001405") && a.naa.len() == 36, "{}", a.naa);
        assert!(a.naa.parse::<NaaId>().is_ok());
    }

    #[test]
    fn the_configured_instance_id_wins() {
        let settings = DaemonSettings { instance_id: Some(" rack4 ".into()), ..Default::default() };
        assert_eq!(instance_id(&settings), "rack4");
        assert!(!instance_id(&DaemonSettings::default()).is_empty());
    }
}
