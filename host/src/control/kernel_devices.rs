//! Kernel-first devices: a user backstore somebody else created — with
//! targetcli, rtslib, `targetctl restore` or raw configfs writes — whose
//! `dev_config` names one of our handlers:
//!
//! ```text
//! wasm/<handler>/<backing>[;<option>]...
//! wasm/file//var/lib/tcmu-wasm/images/d1.img;direct=1;config=serial=d1
//! wasm/optical/;medium=/srv/iso/debian.iso
//! ```
//!
//! `<handler>` is an installed handler's name (never a path: configfs
//! callers do not get to pick code from the file system); `<backing>` is
//! empty or an absolute path under `kernel_devices.allow_backing` (the same
//! convention as tcmu-runner's `file//path`). Options: `ro`, `direct`,
//! `io=auto|uring|blocking`, `max_in_flight=N`, `busy_poll_us=N`,
//! `medium=PATH` (a drive's disc or cartridge, also under the allow-list),
//! `recordable` (the medium read-write), and `config=...`, the handler's
//! own config string, which takes the rest of the text (it may contain
//! `;`). The device's size is the backstore's `dev_size`.
//!
//! The TOML-first devices the daemon creates itself carry
//! `wasm/<device name>`; an announced device whose backstore name is in the
//! registry is one of those. Everything else under `wasm/` is parsed here;
//! whatever fails — an unknown handler, a path outside the allow-list, a
//! bad option — is refused with a log line naming the reason and an errno
//! for the kernel, so the creator's `enable` write fails at once.
//!
//! Such a device belongs to its creator: the daemon never removes its
//! backstore (not at shutdown, not on `ctl remove`); a restarted daemon
//! adopts the ones it finds; the kernel's REMOVED event forgets it.

use std::path::PathBuf;

use super::config::{DeviceConfig, Export, KernelDeviceSettings, Size, is_within};
use super::registry::{OpError, Registry};
use crate::aio::IoMode;
use crate::kernel::uio::TcmuName;

/// The parsed `<handler>/<backing>[;option]...` part of a `dev_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelDeviceConfig {
    /// Installed handler name.
    pub handler: String,
    /// The store, if any.
    pub backing: Option<PathBuf>,
    /// Grant it read-only.
    pub read_only: bool,
    /// Open it with O_DIRECT.
    pub direct: bool,
    /// Store I/O mode.
    pub io: IoMode,
    /// In-flight limit, if given.
    pub max_in_flight: Option<u32>,
    /// Busy-poll window, if given.
    pub busy_poll_us: Option<u32>,
    /// A drive's medium.
    pub medium: Option<PathBuf>,
    /// The medium read-write.
    pub medium_recordable: bool,
    /// The handler's own config string.
    pub config: String,
}

/// Longest `dev_config` the kernel keeps (`TCMU_CONFIG_LEN`).
const MAX_DEV_CONFIG: usize = 256;

fn handler_name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

impl KernelDeviceConfig {
    /// Parse the text after `wasm/`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_DEV_CONFIG {
            return Err(format!("dev_config is longer than {MAX_DEV_CONFIG} bytes"));
        }
        if text.contains(['\n', '\0', ',']) {
            return Err("dev_config may not contain a newline, NUL or ','".into());
        }
        let (handler, rest) = text.split_once('/').ok_or_else(|| {
            format!("{text:?} is not <handler>/<backing>[;option]... (e.g. file//var/lib/tcmu-wasm/images/d1.img)")
        })?;
        if !handler_name_ok(handler) {
            return Err(format!("handler {handler:?}: name an installed handler (letters, digits, '-', '_')"));
        }
        let (backing, mut options) = match rest.split_once(';') {
            Some((b, o)) => (b, Some(o)),
            None => (rest, None),
        };
        let backing = match backing {
            "" => None,
            b if b.starts_with('/') => Some(PathBuf::from(b)),
            b => return Err(format!("backing {b:?} must be an absolute path (or empty for none)")),
        };
        let mut out = Self {
            handler: handler.to_owned(),
            backing,
            read_only: false,
            direct: false,
            io: IoMode::Auto,
            max_in_flight: None,
            busy_poll_us: None,
            medium: None,
            medium_recordable: false,
            config: String::new(),
        };
        while let Some(text) = options.take() {
            if let Some(config) = text.strip_prefix("config=") {
                out.config = config.to_owned();
                break;
            }
            let (option, more) = match text.split_once(';') {
                Some((o, m)) => (o, Some(m)),
                None => (text, None),
            };
            options = more;
            out.apply(option)?;
        }
        Ok(out)
    }

    fn apply(&mut self, option: &str) -> Result<(), String> {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let flag = |value: Option<&str>| match value {
            None | Some("1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no") => Ok(false),
            Some(v) => Err(format!("option {key}: {v:?} is not 0/1")),
        };
        let number = |value: Option<&str>| {
            value.and_then(|v| v.parse::<u32>().ok()).ok_or_else(|| format!("option {key} needs a number"))
        };
        match key {
            "" => {}
            "ro" | "read_only" => self.read_only = flag(value)?,
            "direct" => self.direct = flag(value)?,
            "recordable" => self.medium_recordable = flag(value)?,
            "io" => {
                self.io = match value {
                    Some("auto") => IoMode::Auto,
                    Some("uring") => IoMode::Uring,
                    Some("blocking") => IoMode::Blocking,
                    _ => return Err("option io: auto, uring or blocking".into()),
                }
            }
            "max_in_flight" => self.max_in_flight = Some(number(value)?),
            "busy_poll_us" => self.busy_poll_us = Some(number(value)?),
            "medium" => match value {
                Some(v) if v.starts_with('/') => self.medium = Some(PathBuf::from(v)),
                _ => return Err("option medium needs an absolute path".into()),
            },
            other => {
                return Err(format!(
                    "unknown option {other:?} (ro, direct, io, max_in_flight, busy_poll_us, medium, recordable, \
                     config=...)"
                ));
            }
        }
        Ok(())
    }

    /// Every host path it names must be under `allowed`.
    pub fn check_paths(&self, allowed: &[PathBuf]) -> Result<(), String> {
        for (what, path) in [("backing", &self.backing), ("medium", &self.medium)] {
            if let Some(path) = path
                && !is_within(path, allowed)
            {
                return Err(if allowed.is_empty() {
                    format!(
                        "{what} {}: kernel-created devices may open no host file until the daemon's config lists \
                         directories in kernel_devices.allow_backing",
                        path.display()
                    )
                } else {
                    format!(
                        "{what} {} is outside kernel_devices.allow_backing ({})",
                        path.display(),
                        allowed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                    )
                });
            }
        }
        Ok(())
    }

    /// The device it describes: backstore `name` of `size` bytes, exported
    /// by its creator (not by us), kept when the daemon stops.
    pub fn device_config(&self, name: &str, size: u64) -> DeviceConfig {
        let mut device = DeviceConfig::with_defaults(name, &self.handler, Export::None);
        device.config = self.config.clone();
        device.size = Size(if self.backing.is_some() { size } else { 0 });
        device.backing = self.backing.clone();
        device.read_only = self.read_only;
        device.persist = true;
        device.direct = self.direct;
        device.io = self.io;
        device.medium = self.medium.clone();
        device.medium_recordable = self.medium_recordable;
        if let Some(n) = self.max_in_flight {
            device.max_in_flight = n;
        }
        if let Some(us) = self.busy_poll_us {
            device.busy_poll_us = us;
        }
        device
    }
}

/// Why a kernel-first device was refused, with the errno the kernel gets.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// For the log.
    pub message: String,
    /// Negated for the netlink reply.
    pub errno: i32,
}

impl Refused {
    fn invalid(message: String) -> Self {
        Self { message, errno: nix::libc::EINVAL }
    }
}

impl From<OpError> for Refused {
    fn from(e: OpError) -> Self {
        let errno = match e.kind {
            super::api::ErrorKind::NotFound => nix::libc::ENOENT,
            super::api::ErrorKind::Conflict | super::api::ErrorKind::Busy => nix::libc::EBUSY,
            super::api::ErrorKind::Unauthorized => nix::libc::EPERM,
            super::api::ErrorKind::BadRequest => nix::libc::EINVAL,
            _ => nix::libc::EIO,
        };
        Self { message: e.message, errno }
    }
}

/// `cfg` (a `dev_config` after `wasm/`) parsed, if the settings allow
/// such devices at all and every host path it names. Opens nothing.
pub fn check(settings: &KernelDeviceSettings, cfg: &str) -> Result<KernelDeviceConfig, Refused> {
    if !settings.enabled {
        return Err(Refused {
            message: "kernel-created devices are off (kernel_devices.enabled = false)".into(),
            errno: nix::libc::EPERM,
        });
    }
    let parsed = KernelDeviceConfig::parse(cfg).map_err(Refused::invalid)?;
    parsed.check_paths(&settings.allow_backing).map_err(|m| Refused { message: m, errno: nix::libc::EPERM })?;
    Ok(parsed)
}

/// The device config for announced backstore `name` (its `dev_config`
/// after `wasm/` is `cfg`) of `size` bytes, if the settings allow it.
pub fn config_for(settings: &KernelDeviceSettings, name: &str, cfg: &str, size: u64) -> Result<DeviceConfig, Refused> {
    let device = check(settings, cfg)?.device_config(name, size);
    device.validate().map_err(|e| Refused::invalid(format!("{e:#}")))?;
    Ok(device)
}

/// Serve a device the kernel announced that is not one of ours: check it,
/// load its handler, and run `attach` (which attaches its ring).
pub fn serve(
    registry: &Registry,
    settings: &KernelDeviceSettings,
    name: &TcmuName,
    size: u64,
    attach: impl FnOnce(&Registry, &DeviceConfig) -> anyhow::Result<()>,
) -> Result<(), Refused> {
    let device = config_for(settings, &name.device, &name.cfg, size)?;
    registry.add_kernel_device(device, attach)?;
    tracing::info!(device = %name.device, dev_config = %format!("{}/{}", name.subtype, name.cfg),
        "serving a device created through configfs");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_backing_options_and_the_handler_config() {
        let c = KernelDeviceConfig::parse("file//var/lib/x/d1.img;direct;ro=0;max_in_flight=8;config=serial=a;b=c")
            .unwrap();
        assert_eq!(c.handler, "file");
        assert_eq!(c.backing.as_deref(), Some(Path::new("/var/lib/x/d1.img")));
        assert!(c.direct && !c.read_only);
        assert_eq!(c.max_in_flight, Some(8));
        assert_eq!(c.config, "serial=a;b=c");
        let c = KernelDeviceConfig::parse("optical/;medium=/srv/iso/a.iso;recordable").unwrap();
        assert_eq!(
            (c.backing, c.medium.as_deref(), c.medium_recordable),
            (None, Some(Path::new("/srv/iso/a.iso")), true)
        );
        let c = KernelDeviceConfig::parse("null/").unwrap();
        assert_eq!((c.handler.as_str(), c.backing, c.config.as_str()), ("null", None, ""));
    }

    #[test]
    fn refuses_paths_handlers_and_options_it_does_not_know() {
        for (text, want) in [
            ("file", "not <handler>/<backing>"),
            ("../x/", "installed handler"),
            ("/abs/path.wasm/", "installed handler"),
            ("file/relative.img", "absolute"),
            ("file//x.img;colour=red", "unknown option"),
            ("file//x.img;io=fast", "option io"),
            ("file//x.img;max_in_flight=lots", "needs a number"),
            ("optical/;medium=rel.iso", "absolute path"),
        ] {
            let err = KernelDeviceConfig::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(KernelDeviceConfig::parse(&format!("file//{}", "a".repeat(300))).unwrap_err().contains("longer"));
    }

    #[test]
    fn host_paths_must_be_under_the_allow_list() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir(&images).unwrap();
        let settings = KernelDeviceSettings { enabled: true, allow_backing: vec![images.clone()] };
        let ok = format!("file/{}/d1.img", images.display());
        let device = config_for(&settings, "kd1", &ok, 1 << 20).unwrap();
        assert_eq!((device.backing.unwrap(), device.size.0), (images.join("d1.img"), 1 << 20));
        assert!(device.persist && device.export == Export::None);
        for path in [
            dir.path().join("d1.img"),
            images.join("../d1.img"),
            images.join("missing/../../d1.img"),
            PathBuf::from("/etc/shadow"),
        ] {
            let err = config_for(&settings, "kd1", &format!("file/{}", path.display()), 1 << 20).unwrap_err();
            assert!(
                err.message.contains("outside kernel_devices.allow_backing"),
                "{}: {}",
                path.display(),
                err.message
            );
            assert_eq!(err.errno, nix::libc::EPERM);
        }
        // A symlink inside that points outside is judged by its target.
        std::os::unix::fs::symlink("/etc", images.join("etc")).unwrap();
        assert!(config_for(&settings, "kd1", &format!("file/{}/etc/shadow", images.display()), 1 << 20).is_err());
        // No list: no host file at all, but a device without one is fine.
        let none = KernelDeviceSettings::default();
        assert!(config_for(&none, "kd1", &ok, 1 << 20).unwrap_err().message.contains("allow_backing"));
        assert!(config_for(&none, "kd2", "null/", 0).is_ok());
        let off = KernelDeviceSettings { enabled: false, ..KernelDeviceSettings::default() };
        assert_eq!(config_for(&off, "kd2", "null/", 0).unwrap_err().errno, nix::libc::EPERM);
        // The device rules still apply (a name the daemon cannot use).
        assert!(config_for(&none, "bad name", "null/", 0).is_err());
    }
}
