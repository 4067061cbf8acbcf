//! How a device, or one request to it, fails. Each error knows the errno
//! the kernel should hear when it answers a netlink event.

use std::time::Duration;

use nix::libc;

use crate::ring::RingError;

/// A backend refused a control request.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot do this at all.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The request was refused and changed nothing.
    #[error("{0}")]
    Refused(String),
    /// Host I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BackendError {
    /// The errno for the kernel.
    pub fn errno(&self) -> i32 {
        match self {
            BackendError::Unsupported(_) => libc::EOPNOTSUPP,
            BackendError::Refused(_) => libc::EINVAL,
            BackendError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// A device thread, or a request to it, failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The ring became unusable; the device stopped.
    #[error("ring unusable: {0}")]
    Ring(#[from] RingError),
    /// Waiting for the doorbell failed.
    #[error("poll: {0}")]
    Poll(nix::Error),
    /// The backend could not be built (the handler refused to open, ...).
    #[error("{0}")]
    Start(String),
    /// The device thread panicked.
    #[error("device thread panicked")]
    Panicked,
    /// The device did not answer in time (its handler may be stuck).
    #[error("device did not {what} within {after:?}")]
    Timeout {
        /// What was asked.
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The device thread is gone.
    #[error("device is not running")]
    NotRunning,
    /// The backend refused the request.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl DeviceError {
    /// The errno for the kernel.
    pub fn errno(&self) -> i32 {
        match self {
            DeviceError::Ring(_) | DeviceError::Panicked => libc::EIO,
            DeviceError::Poll(e) => *e as i32,
            DeviceError::Start(_) => libc::EINVAL,
            DeviceError::Timeout { .. } => libc::ETIMEDOUT,
            DeviceError::NotRunning => libc::ENODEV,
            DeviceError::Backend(e) => e.errno(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_errno() {
        assert_eq!(DeviceError::Timeout { what: "stop", after: Duration::from_secs(1) }.errno(), libc::ETIMEDOUT);
        assert_eq!(DeviceError::NotRunning.errno(), libc::ENODEV);
        assert_eq!(DeviceError::from(BackendError::Unsupported("x")).errno(), libc::EOPNOTSUPP);
        assert_eq!(BackendError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)).errno(), libc::ENOSPC);
        assert_eq!(DeviceError::Poll(nix::errno::Errno::EBADF).errno(), libc::EBADF);
    }
}
