//! Backing stores: the host file behind a device, and the operations the
//! handler capability (`tcmu:handler/backing.store`) and the native
//! baseline both run on it. Every offset the handler passes is checked
//! against the size the operator configured, never against the file, so
//! a handler cannot reach past its grant even when the file is larger.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::ring::{BufferError, DataBuffer};

/// Why a backing-store operation failed; maps onto the WIT `io-error`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The range leaves the store or the command's buffer.
    #[error("range out of bounds")]
    OutOfRange,
    /// The store is read-only.
    #[error("store is read-only")]
    ReadOnly,
    /// More bytes than the caller could receive (a handler's memory cap).
    #[error("request larger than the handler's memory cap")]
    TooLarge,
    /// The host I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<BufferError> for StoreError {
    fn from(e: BufferError) -> Self {
        match e {
            BufferError::OutOfRange { .. } => StoreError::OutOfRange,
            BufferError::Region(r) => StoreError::Io(io::Error::other(r)),
        }
    }
}

mod blk {
    // BLKGETSIZE64 = _IOR(0x12, 114, u64): a block device's size in bytes.
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    // BLKSSZGET = _IO(0x12, 104), writing an int: the logical block size.
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), nix::libc::c_int);
}

/// The logical block size of the block device open as `file` (BLKSSZGET):
/// what O_DIRECT offsets, lengths and buffers must be aligned to.
fn logical_block_size(file: &File) -> io::Result<u64> {
    let mut bytes: nix::libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer.
    unsafe { blk::blksszget(file.as_raw_fd(), &mut bytes) }.map_err(io::Error::from)?;
    Ok(u64::try_from(bytes).unwrap_or(512).max(512))
}

/// What O_DIRECT transfers on a file need: `statx(STATX_DIOALIGN)` where the
/// kernel (6.1+) and the filesystem report it, else a page, which every
/// filesystem that supports O_DIRECT accepts.
fn file_dio_alignment(file: &File) -> Alignment {
    use nix::libc;
    // SAFETY: statx fills the zeroed struct; the empty path with
    // AT_EMPTY_PATH names the descriptor itself.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::statx(file.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut stx) };
    if rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0 {
        Alignment { memory: u64::from(stx.stx_dio_mem_align).max(1), offset: u64::from(stx.stx_dio_offset_align) }
    } else {
        Alignment { memory: 4096, offset: 4096 }
    }
}

/// O_DIRECT's alignment rules for one backing: buffer addresses must be
/// multiples of `memory`, file offsets and lengths multiples of `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alignment {
    /// Buffer address alignment, bytes.
    pub memory: u64,
    /// File offset and length alignment, bytes.
    pub offset: u64,
}

impl Alignment {
    /// Whether a transfer of `len` bytes between `address` and store
    /// `offset` may go straight to the device.
    pub fn allows(&self, address: usize, len: u64, offset: u64) -> bool {
        (address as u64).is_multiple_of(self.memory)
            && len.is_multiple_of(self.offset)
            && offset.is_multiple_of(self.offset)
    }

    /// `[offset, offset+len)` widened to whole alignment units.
    pub fn widen(&self, offset: u64, len: u64) -> (u64, u64) {
        let start = offset - offset % self.offset;
        let end = offset.saturating_add(len).div_ceil(self.offset).saturating_mul(self.offset);
        (start, end - start)
    }
}

/// How to open a backing store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Grant it read-only.
    pub read_only: bool,
    /// Bypass the host page cache (`O_DIRECT`): the data moves between the
    /// device and the TCMU data area with no copy and no cache. Transfers
    /// that break the device's alignment go through an aligned bounce
    /// buffer instead (slower, same result).
    pub direct: bool,
}

/// The size of the block device open as `file` (BLKGETSIZE64).
fn block_device_size(file: &File) -> io::Result<u64> {
    let mut bytes = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
    unsafe { blk::blkgetsize64(file.as_raw_fd(), &mut bytes) }.map_err(io::Error::from)?;
    Ok(bytes)
}

/// The size of `path` if it is a block device (`None` for anything else,
/// including a path that does not exist yet).
pub fn block_device_size_of(path: &Path) -> io::Result<Option<u64>> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_block_device() => block_device_size(&File::open(path)?).map(Some),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A backing file or block device, bounded to a configured size.
#[derive(Debug)]
pub struct BackingFile {
    file: File,
    path: PathBuf,
    size: AtomicU64,
    read_only: bool,
    /// Set when opened with `O_DIRECT`: what transfers must respect.
    direct: Option<Alignment>,
}

impl std::os::fd::AsRawFd for BackingFile {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl BackingFile {
    /// Open `path` as the grant of `size` bytes.
    ///
    /// - A block device (an LVM volume, a SAN LUN) is opened exclusively
    ///   (`O_EXCL`: refused while mounted or held by another program), and
    ///   must be at least `size` bytes; it is never resized.
    /// - A regular file is created (unless read-only) and made `size` bytes
    ///   long if it is shorter. A longer file is left alone: the grant is
    ///   `size`, whatever lies beyond stays unreachable.
    /// - Anything else (a directory, a FIFO, a character device) is refused.
    pub fn open(path: &Path, size: u64, read_only: bool) -> io::Result<Self> {
        Self::open_with(path, size, OpenFlags { read_only, direct: false })
    }

    /// [`BackingFile::open`], with `O_DIRECT` if `flags.direct`. A direct
    /// grant must be a whole number of the device's alignment units (a
    /// filesystem without O_DIRECT, such as tmpfs before Linux 6.6, is
    /// refused with a clear error).
    pub fn open_with(path: &Path, size: u64, flags: OpenFlags) -> io::Result<Self> {
        let mut store = Self::open_buffered(path, size, flags.read_only)?;
        if flags.direct {
            store.reopen_direct()?;
        }
        Ok(store)
    }

    /// Swap the descriptor for an `O_DIRECT` one on the same object (the
    /// buffered open did the creating, sizing and exclusivity checks).
    fn reopen_direct(&mut self) -> io::Result<()> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let is_bdev = self.file.metadata()?.file_type().is_block_device();
        let mut flags = nix::libc::O_DIRECT;
        if is_bdev {
            flags |= nix::libc::O_EXCL;
        }
        // The buffered descriptor still holds a block device exclusively; a
        // second O_EXCL open by the same process would be refused, so drop
        // it first (nothing can take the device in between that the
        // O_EXCL open below would not then refuse).
        let placeholder = File::open("/dev/null")?;
        drop(std::mem::replace(&mut self.file, placeholder));
        let file =
            OpenOptions::new().read(true).write(!self.read_only).custom_flags(flags).open(&self.path).map_err(|e| {
                match e.raw_os_error() {
                    Some(nix::libc::EINVAL) => io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("{}: the filesystem does not support O_DIRECT (direct = true)", self.path.display()),
                    ),
                    Some(nix::libc::EBUSY) => io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!("block device {} is in use (mounted, or held by another program)", self.path.display()),
                    ),
                    _ => e,
                }
            })?;
        let align = if is_bdev {
            let lbs = logical_block_size(&file)?;
            Alignment { memory: lbs, offset: lbs }
        } else {
            file_dio_alignment(&file)
        };
        if !self.size().is_multiple_of(align.offset) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: with direct = true the size must be a multiple of {} bytes (O_DIRECT's alignment here)",
                    self.path.display(),
                    align.offset
                ),
            ));
        }
        self.file = file;
        self.direct = Some(align);
        Ok(())
    }

    fn open_buffered(path: &Path, size: u64, read_only: bool) -> io::Result<Self> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let existing = match std::fs::metadata(path) {
            Ok(m) => Some(m.file_type()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if existing.is_some_and(|t| t.is_block_device()) {
            let file =
                OpenOptions::new().read(true).write(!read_only).custom_flags(nix::libc::O_EXCL).open(path).map_err(
                    |e| match e.raw_os_error() {
                        Some(nix::libc::EBUSY) => io::Error::new(
                            io::ErrorKind::ResourceBusy,
                            format!("block device {} is in use (mounted, or held by another program)", path.display()),
                        ),
                        _ => e,
                    },
                )?;
            let len = block_device_size(&file)?;
            if len < size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("block device {} is {len} bytes, smaller than the configured {size}", path.display()),
                ));
            }
            return Ok(Self { file, path: path.to_owned(), size: AtomicU64::new(size), read_only, direct: None });
        }
        if let Some(kind) = existing
            && !kind.is_file()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is neither a regular file nor a block device", path.display()),
            ));
        }
        let file = OpenOptions::new().read(true).write(!read_only).create(!read_only).truncate(false).open(path)?;
        let len = file.metadata()?.len();
        if len < size {
            if read_only {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is {len} bytes, shorter than the configured {size}, and read-only", path.display()),
                ));
            }
            file.set_len(size)?;
        }
        Ok(Self { file, path: path.to_owned(), size: AtomicU64::new(size), read_only, direct: None })
    }

    /// Bytes the backing can hold: a block device's size, a file's length.
    fn capacity(&self) -> io::Result<u64> {
        use std::os::unix::fs::FileTypeExt;
        let meta = self.file.metadata()?;
        if meta.file_type().is_block_device() { block_device_size(&self.file) } else { Ok(meta.len()) }
    }

    /// A grant of `size` bytes over an already open `file`, whatever its
    /// access mode, for tests that need I/O to fail: a file opened
    /// read-only but granted writable fails every write with EBADF.
    #[cfg(feature = "test-utils")]
    pub fn from_open_file(file: File, path: &Path, size: u64, read_only: bool) -> Self {
        Self { file, path: path.to_owned(), size: AtomicU64::new(size), read_only, direct: None }
    }

    /// The host path (for logs; never shown to a handler).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Granted size in bytes.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Whether writes are refused.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The alignment transfers need, if opened with `O_DIRECT`.
    pub fn direct(&self) -> Option<Alignment> {
        self.direct
    }

    /// The span a synchronous access of `[offset, offset+len)` really
    /// touches: widened to alignment units on a direct store (a bounce
    /// buffer reads and rewrites whole units), else the range itself.
    pub fn touched_span(&self, offset: u64, len: u64) -> (u64, u64) {
        match self.direct {
            Some(align) => align.widen(offset, len),
            None => (offset, len),
        }
    }

    /// Read exactly `buf.len()` bytes at `offset`, through an aligned
    /// bounce buffer where O_DIRECT's alignment is not met.
    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self.direct {
            Some(align) if !align.allows(buf.as_ptr() as usize, buf.len() as u64, offset) => {
                let (start, len) = align.widen(offset, buf.len() as u64);
                let mut bounce = bounce_buffer(len)?;
                self.file.read_exact_at(&mut bounce, start)?;
                let at = (offset - start) as usize;
                buf.copy_from_slice(&bounce[at..at + buf.len()]);
                Ok(())
            }
            _ => self.file.read_exact_at(buf, offset),
        }
    }

    /// Write all of `buf` at `offset`; where O_DIRECT's alignment is not
    /// met, the whole units around it are read, patched and written back
    /// (callers have waited for every queued write those units overlap).
    fn pwrite(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.direct {
            Some(align) if !align.allows(buf.as_ptr() as usize, buf.len() as u64, offset) => {
                let (start, len) = align.widen(offset, buf.len() as u64);
                let mut bounce = bounce_buffer(len)?;
                let at = (offset - start) as usize;
                if at != 0 || buf.len() as u64 != len {
                    self.file.read_exact_at(&mut bounce, start)?;
                }
                bounce[at..at + buf.len()].copy_from_slice(buf);
                self.file.write_all_at(&bounce, start)
            }
            _ => self.file.write_all_at(buf, offset),
        }
    }

    /// Grow or shrink the grant (TCMU RECONFIG dev_size); grows the file.
    /// A read-only file cannot grow, so a grant past its end is refused.
    pub fn resize(&self, size: u64) -> io::Result<()> {
        use std::os::unix::fs::FileTypeExt;
        if let Some(align) = self.direct
            && !size.is_multiple_of(align.offset)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a direct store's size must be a multiple of {} bytes, not {size}", align.offset),
            ));
        }
        let len = self.capacity()?;
        if len < size {
            if self.file.metadata()?.file_type().is_block_device() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the block device is {len} bytes, cannot grant {size}"),
                ));
            }
            if self.read_only {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("read-only backing file is {len} bytes, cannot grant {size}"),
                ));
            }
            self.file.set_len(size)?;
        }
        self.size.store(size, Ordering::Release);
        Ok(())
    }

    /// Check that `[offset, offset+len)` lies inside the grant (and, for
    /// `write`, that the store is writable), as every operation does.
    pub fn check_range(&self, offset: u64, len: u64, write: bool) -> Result<(), StoreError> {
        if write { self.check_writable(offset, len) } else { self.check(offset, len) }
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), StoreError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(StoreError::OutOfRange),
        }
    }

    fn check_writable(&self, offset: u64, len: u64) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        self.check(offset, len)
    }

    /// Read `len` bytes at `offset` into a new vector.
    pub fn read_vec(&self, offset: u64, len: u32) -> Result<Vec<u8>, StoreError> {
        self.check(offset, len as u64)?;
        let mut buf = vec![0u8; len as usize];
        self.pread(&mut buf, offset)?;
        Ok(buf)
    }

    /// Write `data` at `offset`.
    pub fn write_from(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.check_writable(offset, data.len() as u64)?;
        self.pwrite(data, offset)?;
        Ok(())
    }

    /// Make completed writes durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        if !self.read_only {
            self.file.sync_data()?;
        }
        Ok(())
    }

    fn fallocate(&self, mode: nix::fcntl::FallocateFlags, offset: u64, len: u64) -> nix::Result<()> {
        nix::fcntl::fallocate(&self.file, mode, offset as i64, len as i64)
    }

    /// Zero a range, deallocating it where the filesystem can. Where it
    /// cannot, zeroes are written, stopping with an error at `deadline`.
    pub fn discard(&self, offset: u64, len: u64, deadline: Option<Instant>) -> Result<(), StoreError> {
        use nix::fcntl::FallocateFlags as F;
        self.check_writable(offset, len)?;
        if len == 0 || self.fallocate(F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE, offset, len).is_ok() {
            return Ok(());
        }
        self.write_zeroes_by_writing(offset, len, deadline)
    }

    /// Zero a range, keeping it allocated: `ZERO_RANGE`; where the
    /// filesystem lacks it (tmpfs) a punched hole filled in again, which is
    /// as quick; else zeroes written, stopping with an error at `deadline`.
    pub fn write_zeroes(&self, offset: u64, len: u64, deadline: Option<Instant>) -> Result<(), StoreError> {
        use nix::fcntl::FallocateFlags as F;
        self.check_writable(offset, len)?;
        if len == 0 || self.fallocate(F::FALLOC_FL_ZERO_RANGE | F::FALLOC_FL_KEEP_SIZE, offset, len).is_ok() {
            return Ok(());
        }
        if self.fallocate(F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE, offset, len).is_ok() {
            // Re-allocate so later writes need no new blocks; a hole reads as
            // zeroes either way, so failing here loses nothing.
            let _ = self.fallocate(F::FALLOC_FL_KEEP_SIZE, offset, len);
            return Ok(());
        }
        self.write_zeroes_by_writing(offset, len, deadline)
    }

    fn write_zeroes_by_writing(&self, offset: u64, len: u64, deadline: Option<Instant>) -> Result<(), StoreError> {
        const CHUNK: u64 = 1 << 20;
        // Page-aligned, so a direct store takes it without a bounce.
        let zeroes = bounce_buffer(CHUNK.min(len))?;
        let mut done = 0;
        while done < len {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(StoreError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("zeroing stopped at the call's deadline after {done} of {len} bytes"),
                )));
            }
            let n = (len - done).min(CHUNK) as usize;
            self.pwrite(&zeroes[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Read store bytes straight into a command's data buffer.
    pub fn read_to_buffer(&self, offset: u64, len: u32, buf: &DataBuffer, buf_offset: u32) -> Result<(), StoreError> {
        self.check(offset, len as u64)?;
        buf.fill_with(buf_offset as u64, len as u64, |pos, chunk| -> Result<(), StoreError> {
            self.pread(chunk, offset + pos)?;
            Ok(())
        })
    }

    /// Write a command's data-buffer bytes straight to the store.
    pub fn write_from_buffer(
        &self,
        offset: u64,
        len: u32,
        buf: &DataBuffer,
        buf_offset: u32,
    ) -> Result<(), StoreError> {
        self.check_writable(offset, len as u64)?;
        buf.drain_with(buf_offset as u64, len as u64, |pos, chunk| -> Result<(), StoreError> {
            self.pwrite(chunk, offset + pos)?;
            Ok(())
        })
    }
}

/// Zeroed, page-aligned memory of `len` bytes (an anonymous mapping, so
/// any O_DIRECT alignment up to a page is met).
fn bounce_buffer(len: u64) -> io::Result<memmap2::MmapMut> {
    memmap2::MmapOptions::new().len(usize::try_from(len.max(1)).map_err(io::Error::other)?).map_anon()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_neither_a_file_nor_a_block_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = BackingFile::open(dir.path(), 4096, false).unwrap_err();
        assert!(err.to_string().contains("neither a regular file nor a block device"), "{err}");
        let err = BackingFile::open(Path::new("/dev/null"), 4096, false).unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
    }

    /// A direct store in a temp dir, or `None` where its filesystem has no
    /// O_DIRECT (tmpfs before Linux 6.6).
    fn direct_store(dir: &tempfile::TempDir, size: u64) -> Option<BackingFile> {
        match BackingFile::open_with(&dir.path().join("d.img"), size, OpenFlags { read_only: false, direct: true }) {
            Ok(store) => Some(store),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn direct_io_takes_any_offset_and_keeps_the_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let Some(store) = direct_store(&dir, 64 << 10) else { return };
        let align = store.direct().expect("opened direct");
        assert!(align.offset >= 512 && align.offset.is_power_of_two(), "{align:?}");
        // Aligned: straight through.
        let block = bounce_buffer(8192).unwrap();
        store.write_from(0, &block).unwrap();
        let mut whole: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8).collect();
        store.write_from(16384, &whole).unwrap();
        // Unaligned offset, length and address: read-modify-write of whole
        // units, the bytes around it untouched.
        let odd: Vec<u8> = vec![0xee; 1001];
        store.write_from(16384 + 700, &odd[..1000]).unwrap();
        whole[700..1700].fill(0xee);
        assert_eq!(store.read_vec(16384, 16384).unwrap(), whole);
        assert_eq!(store.read_vec(16384 + 3, 2000).unwrap(), whole[3..2003], "unaligned read");
        // What went to the device is what a buffered reader sees.
        let on_disk = std::fs::read(dir.path().join("d.img")).unwrap();
        assert_eq!(&on_disk[16384..32768], &whole[..]);
        store.write_zeroes_by_writing(16384 + 10, 100, None).unwrap();
        whole[10..110].fill(0);
        assert_eq!(store.read_vec(16384, 16384).unwrap(), whole, "zeroes written through the bounce too");
        let (start, end) = (16384 + 700 - 700 % align.offset, (16384 + 1700u64).div_ceil(align.offset) * align.offset);
        assert_eq!(store.touched_span(16384 + 700, 1000), (start, end - start), "whole units around the range");
    }

    #[test]
    fn a_direct_grant_must_be_whole_alignment_units() {
        let dir = tempfile::tempdir().unwrap();
        let Some(store) = direct_store(&dir, 64 << 10) else { return };
        let unit = store.direct().unwrap().offset;
        drop(store);
        let err = BackingFile::open_with(
            &dir.path().join("d.img"),
            (64 << 10) + unit / 2,
            OpenFlags { read_only: false, direct: true },
        )
        .unwrap_err();
        assert!(err.to_string().contains("must be a multiple of"), "{err}");
        let store = direct_store(&dir, 64 << 10).unwrap();
        let err = store.resize((128 << 10) + 1).unwrap_err();
        assert!(err.to_string().contains("multiple of"), "{err}");
        store.resize(128 << 10).unwrap();
        assert_eq!(store.size(), 128 << 10);
    }

    /// A loop device over a file of `bytes`, detached on drop.
    struct Loop(PathBuf, tempfile::NamedTempFile);

    impl Loop {
        fn new(bytes: u64) -> Option<Self> {
            let image = tempfile::NamedTempFile::new().ok()?;
            image.as_file().set_len(bytes).ok()?;
            let out =
                std::process::Command::new("losetup").args(["--find", "--show"]).arg(image.path()).output().ok()?;
            if !out.status.success() {
                return None;
            }
            Some(Self(PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()), image))
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }

    #[test]
    fn a_block_device_is_sized_from_itself_held_exclusively_and_never_grown() {
        let Some(dev) = Loop::new(8 << 20) else {
            // Needs root and loop devices (CI runs as root; a laptop may not).
            eprintln!("skipped: no loop device (needs root and losetup)");
            return;
        };
        let err = BackingFile::open(&dev.0, 16 << 20, false).unwrap_err();
        assert!(err.to_string().contains("smaller than the configured"), "{err}");
        let store = BackingFile::open(&dev.0, 4 << 20, false).unwrap();
        let again = BackingFile::open(&dev.0, 4 << 20, false).unwrap_err();
        assert!(again.to_string().contains("in use"), "{again}");
        assert_eq!(store.capacity().unwrap(), 8 << 20);
        store.write_from(4096, &[0x5a; 8192]).unwrap();
        store.flush().unwrap();
        assert_eq!(store.read_vec(4096, 8192).unwrap(), vec![0x5a; 8192]);
        store.write_zeroes(4096, 4096, None).unwrap();
        store.discard(8192, 4096, None).unwrap();
        assert_eq!(store.read_vec(4096, 8192).unwrap(), vec![0; 8192], "zeroed and discarded ranges read zero");
        assert!(matches!(store.read_vec(4 << 20, 512), Err(StoreError::OutOfRange)), "the grant, not the device");
        assert_eq!(block_device_size_of(&dev.0).unwrap(), Some(8 << 20));
        assert_eq!(block_device_size_of(dev.1.path()).unwrap(), None, "a file is not sized this way");
        store.resize(8 << 20).unwrap();
        let err = store.resize(9 << 20).unwrap_err();
        assert!(err.to_string().contains("cannot grant"), "{err}");
        drop(store);
        // O_DIRECT on the device: its logical block size is the alignment,
        // and it is still held exclusively.
        let direct = BackingFile::open_with(&dev.0, 4 << 20, OpenFlags { read_only: false, direct: true }).unwrap();
        assert_eq!(direct.direct().map(|a| a.offset), Some(512));
        let again = BackingFile::open(&dev.0, 4 << 20, false).unwrap_err();
        assert!(again.to_string().contains("in use"), "{again}");
        direct.write_from(513, &[0x77; 3]).unwrap();
        let got = direct.read_vec(512, 8).unwrap();
        assert_eq!(got, [0, 0x77, 0x77, 0x77, 0, 0, 0, 0]);
    }
}
