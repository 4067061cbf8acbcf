//! Density codes the drive offers (REPORT DENSITY SUPPORT, the mode block
//! descriptor). The image format is the same for all of them; the code is
//! what clients print and what backup catalogues record.

/// One density.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Density {
    /// SSC density code.
    pub code: u8,
    /// What `density=` accepts and REPORT DENSITY SUPPORT names.
    pub name: &'static str,
    /// Nominal native capacity in MB, for REPORT DENSITY SUPPORT without MEDIA.
    pub nominal_mb: u32,
    /// Bits per mm and tracks, as the LTO consortium assigns them.
    pub bits_per_mm: u32,
    /// Tracks.
    pub tracks: u16,
    /// The mode header's MEDIUM TYPE for a data cartridge of this
    /// generation, as LTO drives report it (tapeinfo prints it).
    pub medium_type: u8,
}

/// LTO generations 5 to 9, which Linux's mt-st and sg3_utils name.
pub const ALL: [Density; 5] = [
    Density { code: 0x58, name: "LTO-5", nominal_mb: 1_500_000, bits_per_mm: 15142, tracks: 1280, medium_type: 0x58 },
    Density { code: 0x5a, name: "LTO-6", nominal_mb: 2_500_000, bits_per_mm: 15142, tracks: 2176, medium_type: 0x68 },
    Density { code: 0x5c, name: "LTO-7", nominal_mb: 6_000_000, bits_per_mm: 19107, tracks: 3584, medium_type: 0x78 },
    Density { code: 0x5e, name: "LTO-8", nominal_mb: 12_000_000, bits_per_mm: 20669, tracks: 6656, medium_type: 0x88 },
    Density { code: 0x60, name: "LTO-9", nominal_mb: 18_000_000, bits_per_mm: 20669, tracks: 8960, medium_type: 0x98 },
];

/// The density of a drive whose config names none.
pub const DEFAULT: Density = ALL[0];

/// A density by its code.
pub fn by_code(code: u8) -> Option<&'static Density> {
    ALL.iter().find(|d| d.code == code)
}

/// A density by its name (case-insensitive).
pub fn by_name(name: &str) -> Option<&'static Density> {
    ALL.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// One density support data descriptor (SSC-3 8.2.4.2), 52 bytes.
/// `capacity_mb` is the medium's when REPORT DENSITY SUPPORT asked about
/// the loaded medium, else the nominal one.
pub fn descriptor(d: &Density, default: bool, capacity_mb: u32) -> Vec<u8> {
    let mut b = vec![0u8; 52];
    b[0] = d.code;
    b[1] = d.code;
    b[2] = 0x80 | if default { 0x20 } else { 0 }; // WRTOK, DEFLT
    b[5..8].copy_from_slice(&d.bits_per_mm.to_be_bytes()[1..]);
    b[8..10].copy_from_slice(&127u16.to_be_bytes()); // 12.7 mm, in tenths
    b[10..12].copy_from_slice(&d.tracks.to_be_bytes());
    b[12..16].copy_from_slice(&capacity_mb.to_be_bytes());
    put_text(&mut b[16..24], "LTO-CVE");
    put_text(&mut b[24..32], d.name);
    put_text(&mut b[32..52], &format!("Ultrium {} (virtual)", &d.name[4..]));
    b
}

/// A medium type descriptor (SSC-3 8.2.4.3), 56 bytes: data cartridges
/// of `d`.
pub fn medium_type_descriptor(d: &Density) -> Vec<u8> {
    let mut b = vec![0u8; 56];
    b[0] = 0x00; // data medium
    b[2..4].copy_from_slice(&52u16.to_be_bytes());
    b[4] = 1; // one density code follows
    b[5] = d.code;
    b[14..16].copy_from_slice(&127u16.to_be_bytes());
    b[16..18].copy_from_slice(&846u16.to_be_bytes()); // medium length in m
    put_text(&mut b[20..28], "LTO-CVE");
    put_text(&mut b[28..36], d.name);
    put_text(&mut b[36..56], &format!("Ultrium {} data", &d.name[4..]));
    b
}

fn put_text(field: &mut [u8], text: &str) {
    tcmu_guest_sdk::scsi::inquiry::put_ascii(field, text);
}
