//! The control plane: the operator's configuration, the device registry,
//! the control socket and its protocol, and the `serve` daemon that ties
//! them to the kernel.
//!
//! - [`config`]: the TOML file (`[daemon]`, `[control]`, `[metrics]`, `[[device]]`);
//! - [`registry`]: the devices, changing at runtime; operator actions;
//! - [`platform`]: their kernel side through configfs and uio;
//!   `sim_platform` the same on the simulated kernel (feature `test-utils`);
//! - [`api`] and [`socket`]: the JSON-lines protocol and the authenticated
//!   Unix socket; [`ctl`]: the client behind `tcmu-wasm ctl`;
//! - [`metrics_http`]: the optional Prometheus listener;
//! - [`identity`]: default device identities;
//! - [`libraries`] and [`library`]: tape libraries; [`media`]: the media
//!   of drives outside a library (`ctl media`);
//! - [`serve`]: the daemon.

pub mod api;
pub mod config;
pub mod ctl;
pub mod dbus;
pub mod identity;
pub mod kernel_devices;
pub mod libraries;
pub mod library;
pub mod media;
pub mod metrics_http;
pub mod platform;
pub mod registry;
pub mod serve;
#[cfg(feature = "test-utils")]
pub mod sim_platform;
pub mod socket;
