//! The daemon's end of the simulator's eventfd pair.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::device::Doorbell;

/// Wake-ups from the simulated kernel (`to_user`) and to it (`from_user`).
#[derive(Debug)]
pub struct SimDoorbell {
    to_user: OwnedFd,
    from_user: OwnedFd,
}

impl SimDoorbell {
    pub(super) fn new(to_user: BorrowedFd<'_>, from_user: BorrowedFd<'_>) -> io::Result<Self> {
        Ok(Self { to_user: to_user.try_clone_to_owned()?, from_user: from_user.try_clone_to_owned()? })
    }
}

impl Doorbell for SimDoorbell {
    fn fd(&self) -> BorrowedFd<'_> {
        self.to_user.as_fd()
    }

    fn ack(&self) -> io::Result<()> {
        let mut buf = [0u8; 8];
        match nix::unistd::read(&self.to_user, &mut buf) {
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn notify(&self) -> io::Result<()> {
        nix::unistd::write(&self.from_user, &1u64.to_ne_bytes())?;
        Ok(())
    }
}
