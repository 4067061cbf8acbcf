//! TCMU devices as UIO nodes: `/sys/class/uio/uioN/name` is
//! `tcm-user/<hba>/<device>/<subtype>/<cfgstring>`, map 0 is the shared
//! region, and the node's fd is the doorbell — a 4-byte read waits for the
//! kernel, a 4-byte write tells it completions are ready.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use memmap2::MmapOptions;

use crate::device::Doorbell;
use crate::ring::Region;

const SYS_UIO: &str = "/sys/class/uio";

/// A parsed UIO name of a TCMU device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcmuName {
    /// HBA index (`user_<hba>` in configfs).
    pub hba: u32,
    /// Backstore name.
    pub device: String,
    /// Handler subtype (the part of `dev_config` before the first `/`).
    pub subtype: String,
    /// The rest of `dev_config`.
    pub cfg: String,
}

impl TcmuName {
    /// Parse `tcm-user/<hba>/<device>/<subtype>/<cfg>`; `None` for other UIO devices.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.trim_end().strip_prefix("tcm-user/")?;
        let mut parts = rest.splitn(4, '/');
        let hba = parts.next()?.parse().ok()?;
        let device = parts.next()?.to_owned();
        let subtype = parts.next()?.to_owned();
        let cfg = parts.next().unwrap_or("").to_owned();
        Some(Self { hba, device, subtype, cfg })
    }
}

/// Every TCMU device currently registered, as (uio index, name).
pub fn list() -> io::Result<Vec<(u32, TcmuName)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(SYS_UIO) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(index) = entry.file_name().to_str().and_then(|n| n.strip_prefix("uio")).and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let Ok(name) = std::fs::read_to_string(entry.path().join("name")) else { continue };
        if let Some(parsed) = TcmuName::parse(&name) {
            out.push((index, parsed));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// An opened TCMU UIO device: its mapped region and its doorbell.
pub struct UioDevice {
    /// UIO index (`/dev/uio<index>`).
    pub index: u32,
    /// The shared region (mailbox, ring, data area).
    pub region: Region,
    /// The doorbell.
    pub doorbell: UioDoorbell,
}

impl UioDevice {
    /// Open `/dev/uio<index>` and map its map 0.
    pub fn open(index: u32) -> io::Result<Self> {
        let size_path: PathBuf = [SYS_UIO, &format!("uio{index}"), "maps", "map0", "size"].iter().collect();
        let text = std::fs::read_to_string(&size_path)?;
        let size = parse_hex(text.trim()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: bad size {text:?}", size_path.display()))
        })?;
        let file = open_node(index)?;
        let map = MmapOptions::new().len(size as usize).map_raw(&file)?;
        Ok(Self { index, region: Region::new(map), doorbell: UioDoorbell { file } })
    }
}

/// Open `/dev/uio<index>`. The kernel announces a new device before
/// devtmpfs (or udev) has necessarily created its node, so a missing node
/// is retried for a short while.
fn open_node(index: u32) -> io::Result<File> {
    let path = format!("/dev/uio{index}");
    let mut waited = std::time::Duration::ZERO;
    loop {
        match OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_CLOEXEC).open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && waited < std::time::Duration::from_secs(5) => {
                let step = std::time::Duration::from_millis(50);
                std::thread::sleep(step);
                waited += step;
            }
            other => return other,
        }
    }
}

fn parse_hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

/// The UIO fd as a doorbell.
#[derive(Debug)]
pub struct UioDoorbell {
    file: File,
}

impl Doorbell for UioDoorbell {
    fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn ack(&self) -> io::Result<()> {
        // The interrupt count; its value does not matter, reading re-arms.
        let mut count = [0u8; 4];
        (&self.file).read_exact(&mut count)
    }

    fn notify(&self) -> io::Result<()> {
        (&self.file).write_all(&0u32.to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcmu_uio_names() {
        let n = TcmuName::parse("tcm-user/1/disk0/wasm/file\n").unwrap();
        assert_eq!(n, TcmuName { hba: 1, device: "disk0".into(), subtype: "wasm".into(), cfg: "file".into() });
        let n = TcmuName::parse("tcm-user/3/img/qcow//var/lib/a.img").unwrap();
        assert_eq!((n.subtype.as_str(), n.cfg.as_str()), ("qcow", "/var/lib/a.img"));
        assert_eq!(TcmuName::parse("uio_pci_generic"), None);
        assert_eq!(TcmuName::parse("tcm-user/x/disk0/wasm/"), None);
    }

    #[test]
    fn parses_map_sizes() {
        assert_eq!(parse_hex("0x40800000"), Some(0x4080_0000));
        assert_eq!(parse_hex("zz"), None);
    }
}
