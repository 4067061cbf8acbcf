//! The control plane: the operator's configuration and the `serve` daemon
//! that turns it into kernel devices served by handler instances.

pub mod config;
pub mod serve;
