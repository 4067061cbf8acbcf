//! GET CONFIGURATION: the profiles the drive plays (DVD+R, DVD-ROM,
//! CD-ROM), the current one from the disc, and the features of a DVD+R
//! writer with a tray, each flagged current or not for the disc in it.

use tcmu_guest_sdk::scsi::bytes::{get_be16, put_be16, put_be32};
use tcmu_guest_sdk::scsi::respond;
use tcmu_guest_sdk::sense::Sense;
use tcmu_guest_sdk::{Command, Transfer};

use crate::disc::SECTOR;
use crate::{OpticalDrive, Outcome};

/// MMC profile numbers.
pub mod profile {
    /// No current profile (no disc, or not ready).
    pub const NONE: u16 = 0x0000;
    /// CD-ROM.
    pub const CD_ROM: u16 = 0x0008;
    /// DVD-ROM.
    pub const DVD_ROM: u16 = 0x0010;
    /// DVD+R.
    pub const DVD_PLUS_R: u16 = 0x001b;
}

/// Feature codes of MMC-6.
mod feature {
    pub const PROFILE_LIST: u16 = 0x0000;
    pub const CORE: u16 = 0x0001;
    pub const MORPHING: u16 = 0x0002;
    pub const REMOVABLE_MEDIUM: u16 = 0x0003;
    pub const RANDOM_READABLE: u16 = 0x0010;
    pub const MULTI_READ: u16 = 0x001d;
    pub const CD_READ: u16 = 0x001e;
    pub const DVD_READ: u16 = 0x001f;
    pub const DVD_PLUS_R: u16 = 0x002b;
    pub const POWER_MANAGEMENT: u16 = 0x0100;
    pub const TIMEOUT: u16 = 0x0105;
    pub const REAL_TIME_STREAMING: u16 = 0x0107;
}

/// The profiles offered, most capable first (MMC wants descending
/// profile numbers within the list).
const PROFILES: [u16; 3] = [profile::DVD_PLUS_R, profile::DVD_ROM, profile::CD_ROM];

/// One feature descriptor: code, version, persistent and current bits,
/// and its data.
struct Feature {
    code: u16,
    version: u8,
    persistent: bool,
    current: bool,
    data: Vec<u8>,
}

impl Feature {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut header = [0u8; 4];
        put_be16(&mut header, self.code);
        header[2] = (self.version & 0x0f) << 2 | u8::from(self.persistent) << 1 | u8::from(self.current);
        header[3] = self.data.len() as u8;
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.data);
    }
}

impl OpticalDrive {
    /// The current profile: DVD+R with a recordable disc (blank, written
    /// or complete: the medium does not change), DVD-ROM with a pressed
    /// one, none without a readable disc.
    pub(crate) fn current_profile(&self) -> u16 {
        match &self.disc {
            Some(disc) if self.disc_ready() && disc.recording.is_some() => profile::DVD_PLUS_R,
            Some(_) if self.disc_ready() => profile::DVD_ROM,
            _ => profile::NONE,
        }
    }

    fn features(&self) -> Vec<Feature> {
        let current = self.current_profile();
        let readable = self.disc.as_ref().is_some_and(|d| d.blocks() > 0) && current != profile::NONE;
        let cd = current == profile::CD_ROM;
        let plus_r = current == profile::DVD_PLUS_R;
        let dvd = current == profile::DVD_ROM || plus_r;
        let mut list = Vec::new();
        for p in PROFILES {
            let mut d = [0u8; 4];
            put_be16(&mut d, p);
            d[2] = u8::from(p == current);
            list.extend_from_slice(&d);
        }
        let mut core = vec![0u8; 8];
        put_be32(&mut core, 0x0000_0001); // physical interface: SCSI family
        let mut random = vec![0u8; 8];
        put_be32(&mut random, SECTOR);
        put_be16(&mut random[4..], if dvd { 16 } else { 1 }); // blocking: an ECC block of a DVD
        random[6] = 0x01; // PP: read error recovery page present
        let timeout = vec![0u8; 4]; // no Group 3 timeouts
        let simple = |code, version, current, data| Feature { code, version, persistent: true, current, data };
        vec![
            simple(feature::PROFILE_LIST, 0, true, list),
            simple(feature::CORE, 2, true, core),
            // OCEvent, ASYNC: polled operational change events only.
            simple(feature::MORPHING, 1, true, vec![0x02, 0, 0, 0]),
            // Tray (001b), Load, Eject, Lock: a drive whose tray opens and
            // closes by command and which honours PREVENT.
            simple(feature::REMOVABLE_MEDIUM, 0, true, vec![0x20 | 0x10 | 0x08 | 0x01, 0, 0, 0]),
            Feature { code: feature::RANDOM_READABLE, version: 0, persistent: false, current: readable, data: random },
            Feature { code: feature::MULTI_READ, version: 0, persistent: false, current: cd, data: vec![] },
            Feature { code: feature::CD_READ, version: 2, persistent: false, current: cd, data: vec![0, 0, 0, 0] },
            Feature { code: feature::DVD_READ, version: 1, persistent: false, current: dvd, data: vec![0, 0, 0, 0] },
            // Write: DVD+R recording (no dual layer).
            Feature {
                code: feature::DVD_PLUS_R,
                version: 0,
                persistent: false,
                current: plus_r,
                data: vec![1, 0, 0, 0],
            },
            simple(feature::POWER_MANAGEMENT, 0, true, vec![]),
            simple(feature::TIMEOUT, 1, true, timeout),
            // SCS (SET CD SPEED) and MP2A; no stream writing.
            simple(feature::REAL_TIME_STREAMING, 3, true, vec![0x02 | 0x08, 0, 0, 0]),
        ]
    }

    /// GET CONFIGURATION with RT 0 (every feature from the starting one),
    /// 1 (the current ones) or 2 (just the starting one). The header's data
    /// length counts every byte after itself, before the allocation length
    /// cuts the reply.
    pub(crate) fn get_configuration(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Outcome {
        let cdb = cmd.cdb;
        if cdb.len() < 10 {
            return Err(Sense::invalid_cdb_field(0, None));
        }
        let rt = cdb[1] & 0x03;
        let start = get_be16(&cdb[2..]);
        let allocation = u32::from(get_be16(&cdb[7..]));
        let features = self.features();
        let selected: Vec<&Feature> = match rt {
            0 => features.iter().filter(|f| f.code >= start).collect(),
            1 => features.iter().filter(|f| f.code >= start && f.current).collect(),
            2 => features.iter().filter(|f| f.code == start).collect(),
            _ => return Err(Sense::invalid_cdb_field(1, Some(1))),
        };
        let mut data = vec![0u8; 8];
        put_be16(&mut data[6..], self.current_profile());
        for f in selected {
            f.encode(&mut data);
        }
        let len = (data.len() - 4) as u32;
        put_be32(&mut data, len);
        Ok(respond(xfer, cmd, &data, allocation))
    }
}
