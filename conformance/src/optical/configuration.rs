//! GET CONFIGURATION (MMC-6): the feature header (DATA LENGTH of what
//! follows, the current profile), the profile list in descending order
//! with the current profile flagged, feature descriptors in ascending
//! order of code with the features each listed profile requires, their
//! current bits with and without a disc, the three request types (RT 0
//! all, 1 current, 2 one) and the reserved one. udev's cdrom_id, growisofs
//! and libburn decide what the disc is from this reply alone.

use super::drive::{Configuration, Drive, Feature, profile};
use crate::common::{Lun, Runner};
use crate::expect::ensure;
use crate::sense;

/// Feature codes of MMC-6.
pub(crate) mod feature {
    pub(crate) const PROFILE_LIST: u16 = 0x0000;
    pub(crate) const CORE: u16 = 0x0001;
    pub(crate) const MORPHING: u16 = 0x0002;
    pub(crate) const REMOVABLE_MEDIUM: u16 = 0x0003;
    pub(crate) const RANDOM_READABLE: u16 = 0x0010;
    pub(crate) const MULTI_READ: u16 = 0x001D;
    pub(crate) const CD_READ: u16 = 0x001E;
    pub(crate) const DVD_READ: u16 = 0x001F;
    pub(crate) const DVD_PLUS_R: u16 = 0x002B;
    pub(crate) const POWER_MANAGEMENT: u16 = 0x0100;
    pub(crate) const TIMEOUT: u16 = 0x0105;
    pub(crate) const REAL_TIME_STREAMING: u16 = 0x0107;
}

/// Features that are current whatever the drive holds, and persistent.
const ALWAYS_CURRENT: [u16; 5] =
    [feature::PROFILE_LIST, feature::CORE, feature::MORPHING, feature::REMOVABLE_MEDIUM, feature::POWER_MANAGEMENT];

/// Features that describe a disc: not current without one.
const MEDIUM_FEATURES: [u16; 5] =
    [feature::RANDOM_READABLE, feature::MULTI_READ, feature::CD_READ, feature::DVD_READ, feature::DVD_PLUS_R];

/// The features MMC-6's profile definitions require of a drive listing
/// the profile (beyond the ones every drive has).
const PROFILE_FEATURES: [(u16, &[u16]); 3] = [
    (profile::CD_ROM, &[feature::RANDOM_READABLE, feature::MULTI_READ, feature::CD_READ]),
    (profile::DVD_ROM, &[feature::RANDOM_READABLE, feature::DVD_READ, feature::REAL_TIME_STREAMING]),
    (
        profile::DVD_PLUS_R,
        &[feature::RANDOM_READABLE, feature::DVD_READ, feature::DVD_PLUS_R, feature::REAL_TIME_STREAMING],
    ),
];

/// Features every drive has.
const EVERY_DRIVE: [u16; 6] = [
    feature::PROFILE_LIST,
    feature::CORE,
    feature::MORPHING,
    feature::REMOVABLE_MEDIUM,
    feature::POWER_MANAGEMENT,
    feature::TIMEOUT,
];

/// Byte 4 of feature 0003h: Load, Eject and Lock.
const LOAD: u8 = 0x10;
const EJECT: u8 = 0x08;
const LOCK: u8 = 0x01;

/// Feature codes no CD/DVD drive of this kind has, for RT 2 of an absent
/// feature: BD Read, BD Write, HD DVD Read.
const ABSENT_CANDIDATES: [u16; 3] = [0x0040, 0x0041, 0x0050];

/// The check of the empty drive, before there is a state to go back to.
pub(super) fn run_empty(suite: &mut Runner<Drive<'_>>) {
    suite.check_as_is("get-configuration.empty-drive", |drive| {
        let configuration = drive.configuration(0, 0)?;
        ensure!(
            configuration.current_profile == profile::NONE,
            "current profile {:04X}h with no disc, expected 0000h",
            configuration.current_profile
        );
        let flagged: Vec<u16> = configuration.profiles()?.into_iter().filter(|(_, c)| *c).map(|(p, _)| p).collect();
        ensure!(flagged.is_empty(), "profiles {flagged:04X?} flagged CurrentP with no disc");
        check_always_current(&configuration)?;
        for code in MEDIUM_FEATURES {
            if let Some(f) = configuration.feature(code) {
                ensure!(!f.current, "feature {code:04X}h is current with no disc in the drive");
            }
        }
        Ok(())
    });
}

pub(super) fn run(suite: &mut Runner<Drive<'_>>) {
    suite.check("get-configuration.profile-list", |drive| {
        let configuration = drive.configuration(0, 0)?;
        check_profile_list(&configuration, profile::DVD_ROM)
    });
    suite.check("get-configuration.features-in-order", |drive| {
        let configuration = drive.configuration(0, 0)?;
        let codes: Vec<u16> = configuration.features.iter().map(|f| f.code).collect();
        ensure!(
            codes.first() == Some(&feature::PROFILE_LIST),
            "the first feature is not the profile list: {codes:04X?}"
        );
        ensure!(
            codes.windows(2).all(|pair| pair[0] < pair[1]),
            "feature codes not in ascending order: {}",
            configuration.codes()
        );
        Ok(())
    });
    suite.check("get-configuration.required-features", check_required_features);
    suite.check("get-configuration.current-with-a-pressed-disc", |drive| {
        let configuration = drive.configuration(0, 0)?;
        check_current(&configuration, profile::DVD_ROM)?;
        let random = configuration.require(feature::RANDOM_READABLE)?;
        ensure!(random.data.len() >= 6, "Random Readable (0010h) has {} bytes of data, expected 8", random.data.len());
        let blocking = u16::from_be_bytes([random.data[4], random.data[5]]);
        ensure!(blocking == 16, "Random Readable blocking {blocking} with a DVD in, expected 16 (one ECC block)");
        Ok(())
    });
    suite.check("get-configuration.rt1-current-only", |drive| {
        let all = drive.configuration(0, 0)?;
        let current = drive.configuration(1, 0)?;
        ensure!(
            current.current_profile == all.current_profile,
            "RT 1 current profile {:04X}h, RT 0 {:04X}h",
            current.current_profile,
            all.current_profile
        );
        let want: Vec<&Feature> = all.features.iter().filter(|f| f.current).collect();
        let got: Vec<&Feature> = current.features.iter().collect();
        ensure!(
            got == want,
            "RT 1 listed features {}, RT 0's current ones are {}",
            current.codes(),
            want.iter().map(|f| format!("{:04X}", f.code)).collect::<Vec<_>>().join(" ")
        );
        Ok(())
    });
    suite.check("get-configuration.rt2-one-feature", |drive| {
        let all = drive.configuration(0, 0)?;
        let dvd_read = all.require(feature::DVD_READ)?.clone();
        let one = drive.configuration(2, feature::DVD_READ)?;
        ensure!(
            one.features == [dvd_read],
            "RT 2 of 001Fh listed {}, expected exactly 001Fh as RT 0 has it",
            one.codes()
        );
        let absent = ABSENT_CANDIDATES
            .into_iter()
            .find(|code| all.feature(*code).is_none())
            .ok_or("the drive lists every candidate absent feature")?;
        let none = drive.configuration(2, absent)?;
        ensure!(
            none.features.is_empty() && none.data_len == 4,
            "RT 2 of absent feature {absent:04X}h returned features {} with DATA LENGTH {}, expected the header alone",
            none.codes(),
            none.data_len
        );
        ensure!(none.current_profile == all.current_profile, "RT 2 changed the current profile");
        Ok(())
    });
    suite.check("get-configuration.starting-feature", |drive| {
        let all = drive.configuration(0, 0)?;
        let from = drive.configuration(0, feature::RANDOM_READABLE)?;
        let want: Vec<&Feature> = all.features.iter().filter(|f| f.code >= feature::RANDOM_READABLE).collect();
        ensure!(
            from.features.iter().collect::<Vec<_>>() == want,
            "RT 0 from 0010h listed {}, expected the features from 0010h on",
            from.codes()
        );
        Ok(())
    });
    suite.check("invalid.get-configuration-rt", |drive| {
        let cdb = super::drive::get_configuration(0x03, 0, 8);
        drive.execute_expecting(&cdb, &[], 8, sense::INVALID_FIELD_IN_CDB).map(drop)
    });
}

/// The profile list: profiles in descending order (MMC-6 5.3.1), exactly
/// `current` flagged CurrentP, matching the header's current profile.
pub(crate) fn check_profile_list(configuration: &Configuration, current: u16) -> Result<(), String> {
    let profiles = configuration.profiles()?;
    ensure!(!profiles.is_empty(), "the profile list is empty");
    let numbers: Vec<u16> = profiles.iter().map(|(p, _)| *p).collect();
    ensure!(numbers.windows(2).all(|pair| pair[0] > pair[1]), "profiles not in descending order: {numbers:04X?}");
    ensure!(
        configuration.current_profile == current,
        "current profile {:04X}h, expected {current:04X}h",
        configuration.current_profile
    );
    let flagged: Vec<u16> = profiles.iter().filter(|(_, c)| *c).map(|(p, _)| *p).collect();
    ensure!(flagged == [current], "profiles flagged CurrentP: {flagged:04X?}, expected {current:04X}h alone");
    Ok(())
}

/// The features every drive has are current and persistent.
fn check_always_current(configuration: &Configuration) -> Result<(), String> {
    for code in ALWAYS_CURRENT {
        let f = configuration.require(code)?;
        ensure!(
            f.current && f.persistent,
            "feature {code:04X}h: current {} persistent {}, both must be 1",
            f.current,
            f.persistent
        );
    }
    Ok(())
}

/// The current bits with a DVD of profile `current` in: the profile list,
/// the always-current features, DVD Read, the DVD+R feature only with a
/// DVD+R, no CD feature; Random Readable unless a blank disc has nothing
/// to read.
pub(crate) fn check_current(configuration: &Configuration, current: u16) -> Result<(), String> {
    check_profile_list(configuration, current)?;
    check_always_current(configuration)?;
    let is_current = |code| configuration.feature(code).is_some_and(|f| f.current);
    ensure!(is_current(feature::DVD_READ), "DVD Read (001Fh) is not current with a DVD in");
    ensure!(
        is_current(feature::DVD_PLUS_R) == (current == profile::DVD_PLUS_R),
        "DVD+R (002Bh) current is {} with profile {current:04X}h",
        is_current(feature::DVD_PLUS_R)
    );
    for code in [feature::MULTI_READ, feature::CD_READ] {
        ensure!(!is_current(code), "CD feature {code:04X}h is current with a DVD in");
    }
    if current == profile::DVD_ROM {
        ensure!(is_current(feature::RANDOM_READABLE), "Random Readable (0010h) is not current with a pressed DVD in");
    }
    Ok(())
}

/// Every listed profile's features present; the always-there features too,
/// the Removable Medium feature able to load, eject and lock (the tray
/// checks rely on it), Random Readable of 2048-byte blocks.
fn check_required_features(drive: &mut Drive<'_>) -> Result<(), String> {
    let configuration = drive.configuration(0, 0)?;
    for code in EVERY_DRIVE {
        configuration.require(code)?;
    }
    let profiles: Vec<u16> = configuration.profiles()?.into_iter().map(|(p, _)| p).collect();
    for (listed, needs) in PROFILE_FEATURES {
        if profiles.contains(&listed) {
            for &code in needs {
                configuration.require(code).map_err(|e| format!("profile {listed:04X}h needs it: {e}"))?;
            }
        }
    }
    let core = configuration.require(feature::CORE)?;
    ensure!(
        core.data.len() >= 4,
        "Core (0001h) has {} bytes of data, too few for the physical interface",
        core.data.len()
    );
    let removable = configuration.require(feature::REMOVABLE_MEDIUM)?;
    let bits = removable.data.first().copied().unwrap_or_default();
    ensure!(
        bits & (LOAD | EJECT | LOCK) == LOAD | EJECT | LOCK,
        "Removable Medium (0003h) byte 4 0x{bits:02X}: Load, Eject and Lock must all be set for a tray the \
         initiator opens, closes and locks"
    );
    let random = configuration.require(feature::RANDOM_READABLE)?;
    ensure!(random.data.len() >= 8, "Random Readable (0010h) has {} bytes of data, expected 8", random.data.len());
    let block = u32::from_be_bytes([random.data[0], random.data[1], random.data[2], random.data[3]]);
    ensure!(block == 2048, "Random Readable LOGICAL BLOCK SIZE {block}, expected 2048");
    Ok(())
}

/// Whether the drive records DVD+R discs: the DVD+R profile listed and
/// feature 002Bh's Write bit set (else the recording checks are skipped).
pub(crate) fn writes_dvd_plus_r(configuration: &Configuration) -> Result<(), String> {
    let profiles: Vec<u16> = configuration.profiles()?.into_iter().map(|(p, _)| p).collect();
    if !profiles.contains(&profile::DVD_PLUS_R) {
        return Err("the DVD+R profile (001Bh) is not listed".into());
    }
    match configuration.feature(feature::DVD_PLUS_R) {
        Some(f) if f.data.first().is_some_and(|b| b & 0x01 != 0) => Ok(()),
        Some(_) => Err("feature 002Bh reports DVD+R read only (Write clear)".into()),
        None => Err("feature 002Bh (DVD+R) is not listed".into()),
    }
}
