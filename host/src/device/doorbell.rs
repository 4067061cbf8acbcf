//! How the kernel and the daemon wake each other. On a real device this is
//! the UIO fd (a 4-byte read waits for the kernel, a 4-byte write tells it
//! completions are ready); the simulator uses a pair of eventfds. The
//! device loop only needs an fd to poll plus these two operations.

use std::io;
use std::os::fd::BorrowedFd;

/// The two-way notification channel of one device.
pub trait Doorbell: Send {
    /// The fd that becomes readable when the kernel has queued entries.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Consume the pending wake-up (after `fd` polled readable).
    fn ack(&self) -> io::Result<()>;
    /// Tell the kernel that completions are in the ring.
    fn notify(&self) -> io::Result<()>;
}
