//! Kernel glue: the three ways the daemon talks to `target_core_user`.
//!
//! - [`uio`]: finding a TCMU device's UIO node, mapping its ring, and the
//!   4-byte read/write doorbell;
//! - [`netlink`]: the `TCM-USER` generic-netlink family (device added,
//!   removed, reconfigured), answered promptly from a thread no handler
//!   can stall;
//! - [`configfs`]: creating, exporting (tcm_loop, iSCSI) and removing
//!   user backstores, and the recovery actions (`block_dev`, `reset_ring`).

pub mod configfs;
pub mod netlink;
pub mod uio;
