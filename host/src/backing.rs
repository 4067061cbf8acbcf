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
            return Ok(Self { file, path: path.to_owned(), size: AtomicU64::new(size), read_only });
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
        Ok(Self { file, path: path.to_owned(), size: AtomicU64::new(size), read_only })
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
        Self { file, path: path.to_owned(), size: AtomicU64::new(size), read_only }
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

    /// Grow or shrink the grant (TCMU RECONFIG dev_size); grows the file.
    /// A read-only file cannot grow, so a grant past its end is refused.
    pub fn resize(&self, size: u64) -> io::Result<()> {
        use std::os::unix::fs::FileTypeExt;
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
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Write `data` at `offset`.
    pub fn write_from(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.check_writable(offset, data.len() as u64)?;
        self.file.write_all_at(data, offset)?;
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
        let zeroes = vec![0u8; CHUNK.min(len) as usize];
        let mut done = 0;
        while done < len {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(StoreError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("zeroing stopped at the call's deadline after {done} of {len} bytes"),
                )));
            }
            let n = (len - done).min(CHUNK) as usize;
            self.file.write_all_at(&zeroes[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Read store bytes straight into a command's data buffer.
    pub fn read_to_buffer(&self, offset: u64, len: u32, buf: &DataBuffer, buf_offset: u32) -> Result<(), StoreError> {
        self.check(offset, len as u64)?;
        buf.fill_with(buf_offset as u64, len as u64, |pos, chunk| -> Result<(), StoreError> {
            self.file.read_exact_at(chunk, offset + pos)?;
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
            self.file.write_all_at(chunk, offset + pos)?;
            Ok(())
        })
    }
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
    }
}
