//! The shared region: a mapping that the kernel (or the simulator) writes
//! concurrently with us. We never form Rust references to it except for
//! short-lived data-buffer slices whose ownership the TCMU protocol hands
//! to user space; everything else goes through bounds-checked volatile or
//! atomic accessors that return [`RegionError`] instead of panicking.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use memmap2::MmapRaw;

/// An access that would leave the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("access of {len} bytes at offset {offset:#x} leaves the {size:#x}-byte region")]
pub struct RegionError {
    /// Requested offset.
    pub offset: u64,
    /// Requested length.
    pub len: u64,
    /// Region size.
    pub size: usize,
}

/// A shared mapping, cheap to clone (the mapping lives as long as any clone).
#[derive(Clone)]
pub struct Region {
    map: Arc<MmapRaw>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("len", &self.len()).finish()
    }
}

impl Region {
    /// Wrap a mapping.
    pub fn new(map: MmapRaw) -> Self {
        Self { map: Arc::new(map) }
    }

    /// Region size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the region is empty (never true for a usable ring).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check that `[offset, offset + len)` lies inside the region and return
    /// the offset as `usize`.
    pub fn check(&self, offset: u64, len: u64) -> Result<usize, RegionError> {
        let err = RegionError { offset, len, size: self.len() };
        let end = offset.checked_add(len).ok_or(err)?;
        if end > self.len() as u64 {
            return Err(err);
        }
        Ok(offset as usize)
    }

    /// The address of region bytes `[offset, offset+len)`, for handing a
    /// range to the kernel as an I/O buffer (io_uring). Whoever submits it
    /// must keep this region alive until the I/O completes.
    pub(crate) fn raw_range(&self, offset: u64, len: u64) -> Result<*mut u8, RegionError> {
        let off = self.check(offset, len)?;
        Ok(self.ptr(off))
    }

    fn ptr(&self, offset: usize) -> *mut u8 {
        // In bounds: every caller checked `offset` first.
        unsafe { self.map.as_mut_ptr().add(offset) }
    }

    /// The 32-bit word at `offset` as an atomic (for `cmd_head`/`cmd_tail`).
    pub fn atomic_u32(&self, offset: u64) -> Result<&AtomicU32, RegionError> {
        let off = self.check(offset, 4)?;
        let ptr = self.ptr(off);
        if !(ptr as usize).is_multiple_of(4) {
            return Err(RegionError { offset, len: 4, size: self.len() });
        }
        // SAFETY: in bounds, 4-byte aligned, and the mapping outlives `&self`.
        // AtomicU32 has the same layout as u32 and may alias memory that
        // another process (the kernel) accesses atomically.
        Ok(unsafe { AtomicU32::from_ptr(ptr.cast()) })
    }

    /// Load a `u32` with acquire ordering.
    pub fn load_acquire(&self, offset: u64) -> Result<u32, RegionError> {
        Ok(self.atomic_u32(offset)?.load(Ordering::Acquire))
    }

    /// Store a `u32` with release ordering.
    pub fn store_release(&self, offset: u64, value: u32) -> Result<(), RegionError> {
        self.atomic_u32(offset)?.store(value, Ordering::Release);
        Ok(())
    }

    /// Copy bytes out of the region.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RegionError> {
        let off = self.check(offset, buf.len() as u64)?;
        // SAFETY: bounds checked; `buf` is ours and cannot overlap the mapping
        // (it is a Rust allocation, not a reference into the region).
        unsafe { std::ptr::copy_nonoverlapping(self.ptr(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy bytes into the region.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), RegionError> {
        let off = self.check(offset, data.len() as u64)?;
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr(off), data.len()) };
        Ok(())
    }

    /// Fill a range with one byte value.
    pub fn fill(&self, offset: u64, len: u64, byte: u8) -> Result<(), RegionError> {
        let off = self.check(offset, len)?;
        // SAFETY: bounds checked.
        unsafe { std::ptr::write_bytes(self.ptr(off), byte, len as usize) };
        Ok(())
    }

    /// Read a little-endian integer field.
    pub fn read_u8(&self, offset: u64) -> Result<u8, RegionError> {
        let mut b = [0u8; 1];
        self.read(offset, &mut b)?;
        Ok(b[0])
    }

    /// Read a little-endian `u16`.
    pub fn read_u16(&self, offset: u64) -> Result<u16, RegionError> {
        let mut b = [0u8; 2];
        self.read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Read a little-endian `u32`.
    pub fn read_u32(&self, offset: u64) -> Result<u32, RegionError> {
        let mut b = [0u8; 4];
        self.read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read a little-endian `u64`.
    pub fn read_u64(&self, offset: u64) -> Result<u64, RegionError> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write a `u8`.
    pub fn write_u8(&self, offset: u64, v: u8) -> Result<(), RegionError> {
        self.write(offset, &[v])
    }

    /// Write a little-endian `u16`.
    pub fn write_u16(&self, offset: u64, v: u16) -> Result<(), RegionError> {
        self.write(offset, &v.to_le_bytes())
    }

    /// Write a little-endian `u32`.
    pub fn write_u32(&self, offset: u64, v: u32) -> Result<(), RegionError> {
        self.write(offset, &v.to_le_bytes())
    }

    /// Write a little-endian `u64`.
    pub fn write_u64(&self, offset: u64, v: u64) -> Result<(), RegionError> {
        self.write(offset, &v.to_le_bytes())
    }

    /// Run `f` on a mutable slice of the region, for I/O straight into a
    /// data buffer (`pread` into the ring).
    ///
    /// # Safety
    /// The caller must own `[offset, offset + len)` under the TCMU protocol:
    /// a data buffer of a command that user space has not completed yet,
    /// which neither the kernel nor anyone else touches meanwhile.
    pub unsafe fn with_slice_mut<R>(
        &self,
        offset: u64,
        len: u64,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, RegionError> {
        let off = self.check(offset, len)?;
        // SAFETY: bounds checked; exclusivity is the caller's contract.
        let slice = unsafe { std::slice::from_raw_parts_mut(self.ptr(off), len as usize) };
        Ok(f(slice))
    }

    /// Run `f` on a shared slice of the region (`pwrite` from the ring).
    ///
    /// # Safety
    /// As for [`Region::with_slice_mut`].
    pub unsafe fn with_slice<R>(&self, offset: u64, len: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, RegionError> {
        let off = self.check(offset, len)?;
        // SAFETY: bounds checked; exclusivity is the caller's contract.
        let slice = unsafe { std::slice::from_raw_parts(self.ptr(off), len as usize) };
        Ok(f(slice))
    }
}
