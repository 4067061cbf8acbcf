//! The cartridge image format, version 1 (docs/cartridge-format.md).
//!
//! ```text
//! offset 0     header, 4096 bytes (all zero: a blank cartridge)
//! offset 4096  record, record, ...   each 32-byte aligned
//!              zeroes                 end of data
//! ```
//!
//! A record is a 32-byte header followed by its payload, padded to 32
//! bytes. Filemarks are records without payload. The writer puts the
//! payload first and the header last, and keeps every byte after the last
//! record zero, so an interrupted write leaves either the whole record or
//! end of data where it was going: nothing acknowledged is lost and
//! nothing half-written reads back.
//!
//! Integers are little-endian. The header and every record header carry a
//! CRC-32 of themselves; the payload has none (it moves between the image
//! and the initiator without passing through the handler).

use tcmu_guest_sdk::sense::{SenseCode, key};

/// First bytes of a formatted cartridge.
pub const MAGIC: &[u8; 8] = b"TCMUTAPE";
/// The version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of the header; records start here.
pub const HEADER_LEN: u64 = 4096;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: u64 = 32;
/// First bytes of a record header.
pub const RECORD_MAGIC: &[u8; 4] = b"TREC";
/// Where the MAM attribute list starts in the header, and its room.
pub const MAM_OFFSET: usize = 64;
/// Bytes the header has for host-writable MAM attributes.
pub const MAM_ROOM: usize = HEADER_LEN as usize - MAM_OFFSET;

/// Most records the index holds (12 bytes each in guest memory, well
/// inside the default memory cap even while the vectors grow). An image
/// with more, hostile or not, reads up to here and then as damaged, and a
/// full index takes no more writes: never an out-of-memory trap.
pub const MAX_RECORDS: u64 = 4 << 20;

/// MEDIUM ERROR, MEDIUM FORMAT CORRUPTED (03/31/00): a record or the
/// header fails its check.
pub const FORMAT_CORRUPTED: SenseCode = SenseCode::new(key::MEDIUM_ERROR, 0x31, 0x00);
/// MEDIUM ERROR, CANNOT READ MEDIUM - UNKNOWN FORMAT (03/30/01): not a
/// cartridge of this format.
pub const UNKNOWN_FORMAT: SenseCode = SenseCode::new(key::MEDIUM_ERROR, 0x30, 0x01);
/// MEDIUM ERROR, CANNOT READ MEDIUM - INCOMPATIBLE FORMAT (03/30/02): a
/// later version of this format.
pub const INCOMPATIBLE_FORMAT: SenseCode = SenseCode::new(key::MEDIUM_ERROR, 0x30, 0x02);

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A logical block of `length` bytes.
    Data,
    /// A filemark.
    Filemark,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Data => 1,
            Kind::Filemark => 2,
        }
    }
}

/// The header of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Data or filemark.
    pub kind: Kind,
    /// Payload bytes (0 for a filemark).
    pub length: u32,
    /// The record's logical object number, counted from 0 at BOP over
    /// blocks and filemarks alike (what READ POSITION reports).
    pub object: u64,
}

impl RecordHeader {
    /// The 32 bytes on the image.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN as usize] {
        let mut b = [0u8; RECORD_HEADER_LEN as usize];
        b[0..4].copy_from_slice(RECORD_MAGIC);
        b[4] = self.kind.code();
        b[8..12].copy_from_slice(&self.length.to_le_bytes());
        b[16..24].copy_from_slice(&self.object.to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode 32 bytes: `Ok(None)` for all zeroes (end of data), an error
    /// for anything that is not a well-formed header.
    pub fn decode(b: &[u8]) -> Result<Option<Self>, &'static str> {
        if b.len() < RECORD_HEADER_LEN as usize {
            return Err("record header cut short by the end of the image");
        }
        let b = &b[..RECORD_HEADER_LEN as usize];
        if b.iter().all(|&x| x == 0) {
            return Ok(None);
        }
        if &b[0..4] != RECORD_MAGIC {
            return Err("record header has no magic");
        }
        if crc32fast::hash(&b[..28]).to_le_bytes() != b[28..32] {
            return Err("record header fails its CRC");
        }
        let length = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        let kind = match (b[4], length) {
            (1, _) => Kind::Data,
            (2, 0) => Kind::Filemark,
            _ => return Err("record header has an unknown kind"),
        };
        let object = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        Ok(Some(Self { kind, length, object }))
    }

    /// Bytes this record takes on the image, header and padding included.
    pub fn footprint(length: u32) -> u64 {
        RECORD_HEADER_LEN + u64::from(length).next_multiple_of(32)
    }
}

/// The image header of a formatted cartridge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Times the cartridge was loaded into a drive.
    pub load_count: u64,
    /// Host-written MAM attributes, encoded as the attribute list of READ
    /// ATTRIBUTE (identifier, format, length, value), ascending.
    pub mam: Vec<u8>,
}

/// What the header of an image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderState {
    /// All zeroes: a new cartridge, formatted by its first write.
    Blank,
    /// A cartridge of this format.
    Formatted(Header),
    /// Unusable: every medium command fails with this.
    Unusable(SenseCode, String),
}

impl Header {
    /// The 4096 bytes on the image.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[16..24].copy_from_slice(&self.load_count.to_le_bytes());
        b[24..28].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        let mam_len = self.mam.len().min(MAM_ROOM);
        b[32..36].copy_from_slice(&(mam_len as u32).to_le_bytes());
        b[MAM_OFFSET..MAM_OFFSET + mam_len].copy_from_slice(&self.mam[..mam_len]);
        let crc = crc32fast::hash(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode the first bytes of an image (`bytes` may be shorter than
    /// the header when the image is).
    pub fn decode(bytes: &[u8]) -> HeaderState {
        if bytes.len() < HEADER_LEN as usize {
            return HeaderState::Unusable(
                FORMAT_CORRUPTED,
                format!("image of {} bytes is smaller than the {HEADER_LEN}-byte header", bytes.len()),
            );
        }
        let b = &bytes[..HEADER_LEN as usize];
        if b.iter().all(|&x| x == 0) {
            return HeaderState::Blank;
        }
        if &b[0..8] != MAGIC {
            return HeaderState::Unusable(UNKNOWN_FORMAT, "not a tcmu-wasm cartridge image".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return HeaderState::Unusable(
                INCOMPATIBLE_FORMAT,
                format!("cartridge format version {version}; this handler reads version {VERSION}"),
            );
        }
        let mut zeroed = b.to_vec();
        zeroed[12..16].fill(0);
        if crc32fast::hash(&zeroed).to_le_bytes() != b[12..16] {
            return HeaderState::Unusable(FORMAT_CORRUPTED, "cartridge header fails its CRC".into());
        }
        let data_start = u32::from_le_bytes(b[24..28].try_into().expect("4 bytes"));
        let mam_len = u32::from_le_bytes(b[32..36].try_into().expect("4 bytes")) as usize;
        if u64::from(data_start) != HEADER_LEN || mam_len > MAM_ROOM {
            return HeaderState::Unusable(FORMAT_CORRUPTED, "cartridge header has impossible lengths".into());
        }
        HeaderState::Formatted(Header {
            load_count: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            mam: b[MAM_OFFSET..MAM_OFFSET + mam_len].to_vec(),
        })
    }
}

/// Where every record is, built by scanning the image at load and kept
/// up to date by writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Image offset of each record's header, by logical object number.
    offsets: Vec<u64>,
    /// Payload length of each record (0 for filemarks).
    lengths: Vec<u32>,
    /// Object numbers of the filemarks, ascending.
    filemarks: Vec<u64>,
    /// Where the next record goes: just past the last one.
    end: u64,
    /// Why the scan stopped before end of data, if it did: the records
    /// from here on cannot be read.
    damage: Option<String>,
}

impl Index {
    /// An empty tape.
    pub fn new() -> Self {
        Self { end: HEADER_LEN, ..Self::default() }
    }

    /// Records (blocks and filemarks) before end of data.
    pub fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Whether the tape holds no records.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Offset of record `object`, or of end of data for `len()`.
    pub fn offset(&self, object: u64) -> u64 {
        self.offsets.get(object as usize).copied().unwrap_or(self.end)
    }

    /// Offset where the next record after the last one goes.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Record `object`: its kind and payload length.
    pub fn record(&self, object: u64) -> Option<(Kind, u32)> {
        let length = *self.lengths.get(object as usize)?;
        let kind = if self.is_filemark(object) { Kind::Filemark } else { Kind::Data };
        Some((kind, length))
    }

    fn is_filemark(&self, object: u64) -> bool {
        self.filemarks.binary_search(&object).is_ok()
    }

    /// Filemarks before object `object`: the logical file it is in.
    pub fn filemarks_before(&self, object: u64) -> u64 {
        self.filemarks.partition_point(|&f| f < object) as u64
    }

    /// The `n`th filemark (0-based), if there are that many.
    pub fn filemark(&self, n: u64) -> Option<u64> {
        self.filemarks.get(usize::try_from(n).ok()?).copied()
    }

    /// Filemarks on the tape.
    pub fn filemark_count(&self) -> u64 {
        self.filemarks.len() as u64
    }

    /// The scan stopped at an unreadable record instead of end of data.
    pub fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    /// Append a record that was just written at [`end`](Index::end).
    pub fn push(&mut self, kind: Kind, length: u32) {
        if kind == Kind::Filemark {
            self.filemarks.push(self.len());
        }
        self.offsets.push(self.end);
        self.lengths.push(length);
        self.end += RecordHeader::footprint(length);
    }

    /// Forget records from `object` on (they are being overwritten).
    /// Returns the offset the tape now ends at.
    pub fn truncate(&mut self, object: u64) -> u64 {
        if object < self.len() {
            self.end = self.offsets[object as usize];
            self.offsets.truncate(object as usize);
            self.lengths.truncate(object as usize);
            let keep = self.filemarks_before(object) as usize;
            self.filemarks.truncate(keep);
        }
        self.damage = None;
        self.end
    }

    /// Build the index of an image of `size` bytes by reading record
    /// headers through `read(offset, len)` from the end of the header up
    /// to the first all-zero slot (end of data) or the first record that
    /// does not check out (damage: what precedes it stays readable).
    pub fn scan<E>(size: u64, read: impl FnMut(u64, u32) -> Result<Vec<u8>, E>) -> Result<Self, E> {
        Self::scan_at_most(size, MAX_RECORDS, read)
    }

    fn scan_at_most<E>(
        size: u64,
        max_records: u64,
        mut read: impl FnMut(u64, u32) -> Result<Vec<u8>, E>,
    ) -> Result<Self, E> {
        // Read ahead in windows while records are small, so a tape of
        // small fixed blocks does not take one host call per record.
        const WINDOW: u64 = 64 * 1024;
        let mut index = Index::new();
        let mut window: (u64, Vec<u8>) = (0, Vec::new());
        loop {
            let at = index.end;
            if index.len() >= max_records {
                index.damage = Some(format!("more than {max_records} records: this handler indexes no more"));
                return Ok(index);
            }
            if at + RECORD_HEADER_LEN > size {
                return Ok(index); // the physical end: end of data, whatever is there
            }
            let in_window = at >= window.0 && at + RECORD_HEADER_LEN <= window.0 + window.1.len() as u64;
            if !in_window {
                let small = index.lengths.last().is_some_and(|&l| u64::from(l) < WINDOW / 16);
                let want = if small { WINDOW } else { RECORD_HEADER_LEN };
                let len = want.min(size - at) as u32;
                window = (at, read(at, len)?);
            }
            let start = (at - window.0) as usize;
            let header = match RecordHeader::decode(&window.1[start..]) {
                Ok(None) => return Ok(index),
                Ok(Some(header)) => header,
                Err(why) => {
                    index.damage = Some(format!("record {} at offset {at}: {why}", index.len()));
                    return Ok(index);
                }
            };
            if header.object != index.len() {
                index.damage =
                    Some(format!("record at offset {at} says object {}, expected {}", header.object, index.len()));
                return Ok(index);
            }
            if at + RecordHeader::footprint(header.length) > size {
                index.damage = Some(format!("record {} at offset {at} runs past the end of the image", index.len()));
                return Ok(index);
            }
            index.push(header.kind, header.length);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_headers_roundtrip_and_reject_damage() {
        let h = RecordHeader { kind: Kind::Data, length: 65536, object: 7 };
        let bytes = h.encode();
        assert_eq!(RecordHeader::decode(&bytes), Ok(Some(h)));
        assert_eq!(RecordHeader::decode(&[0; 32]), Ok(None));
        let mut bad = bytes;
        bad[9] ^= 1;
        assert!(RecordHeader::decode(&bad).is_err(), "CRC");
        assert!(RecordHeader::decode(&bytes[..20]).is_err(), "cut short");
        let fm = RecordHeader { kind: Kind::Filemark, length: 0, object: 0 };
        assert_eq!(RecordHeader::decode(&fm.encode()), Ok(Some(fm)));
        assert_eq!(RecordHeader::footprint(1), 64);
        assert_eq!(RecordHeader::footprint(0), 32);
        assert_eq!(RecordHeader::footprint(64), 96);
    }

    #[test]
    fn headers_roundtrip_and_each_kind_of_bad_header_is_named() {
        let h = Header { load_count: 3, mam: vec![1, 2, 3] };
        assert_eq!(Header::decode(&h.encode()), HeaderState::Formatted(h.clone()));
        assert_eq!(Header::decode(&[0; 4096]), HeaderState::Blank);
        assert!(matches!(Header::decode(&[0; 100]), HeaderState::Unusable(c, _) if c == FORMAT_CORRUPTED));
        let mut b = h.encode();
        b[0] = b'X';
        assert!(matches!(Header::decode(&b), HeaderState::Unusable(c, _) if c == UNKNOWN_FORMAT));
        let mut b = h.encode();
        b[8] = 2;
        assert!(matches!(Header::decode(&b), HeaderState::Unusable(c, _) if c == INCOMPATIBLE_FORMAT));
        let mut b = h.encode();
        b[100] ^= 0xff;
        assert!(matches!(Header::decode(&b), HeaderState::Unusable(c, _) if c == FORMAT_CORRUPTED));
    }

    fn image(records: &[(Kind, u32)], size: usize) -> Vec<u8> {
        let mut img = vec![0u8; size];
        img[..4096].copy_from_slice(&Header::default().encode());
        let mut index = Index::new();
        for (i, &(kind, length)) in records.iter().enumerate() {
            let at = index.end() as usize;
            let header = RecordHeader { kind, length, object: i as u64 };
            img[at..at + 32].copy_from_slice(&header.encode());
            img[at + 32..at + 32 + length as usize].fill(0xa5);
            index.push(kind, length);
        }
        img
    }

    fn scan(img: &[u8]) -> Index {
        Index::scan(img.len() as u64, |at, len| Ok::<_, ()>(img[at as usize..][..len as usize].to_vec())).unwrap()
    }

    #[test]
    fn scan_finds_records_filemarks_and_end_of_data() {
        let recs = [(Kind::Data, 100), (Kind::Data, 5000), (Kind::Filemark, 0), (Kind::Data, 1)];
        let index = scan(&image(&recs, 64 * 1024));
        assert_eq!(index.len(), 4);
        assert_eq!(index.record(1), Some((Kind::Data, 5000)));
        assert_eq!(index.record(2), Some((Kind::Filemark, 0)));
        assert_eq!(index.filemarks_before(3), 1);
        assert_eq!(index.damage(), None);
        assert_eq!(index.end(), 4096 + 160 + 5056 + 32 + 64);
    }

    #[test]
    fn scan_stops_at_damage_and_keeps_what_precedes_it() {
        let recs = [(Kind::Data, 100), (Kind::Data, 100), (Kind::Data, 100)];
        let mut img = image(&recs, 64 * 1024);
        img[4096 + 160 + 3] ^= 0xff; // second record's magic
        let index = scan(&img);
        assert_eq!(index.len(), 1);
        assert!(index.damage().unwrap().contains("record 1"));
        // A record whose payload runs past the end of the image.
        let mut img = image(&[(Kind::Data, 100), (Kind::Data, 1000)], 8192);
        img.truncate(4096 + 160 + 600);
        let index = scan(&img);
        assert_eq!(index.len(), 1);
        assert!(index.damage().unwrap().contains("past the end"));
    }

    #[test]
    fn an_image_of_too_many_records_reads_as_damaged_past_the_limit() {
        let recs = [(Kind::Filemark, 0); 10];
        let img = image(&recs, 16384);
        let index = Index::scan_at_most(img.len() as u64, 4, |at, len| {
            Ok::<_, ()>(img[at as usize..][..len as usize].to_vec())
        })
        .unwrap();
        assert_eq!(index.len(), 4);
        assert!(index.damage().unwrap().contains("more than 4 records"));
    }

    #[test]
    fn truncate_forgets_later_records_and_filemarks() {
        let recs = [(Kind::Data, 10), (Kind::Filemark, 0), (Kind::Data, 10), (Kind::Filemark, 0)];
        let mut index = scan(&image(&recs, 16384));
        let end = index.truncate(2);
        assert_eq!((index.len(), index.filemark_count(), end), (2, 1, 4096 + 64 + 32));
        index.push(Kind::Data, 1);
        assert_eq!(index.record(2), Some((Kind::Data, 1)));
    }
}
