//! tcmu-wasm: a TCMU (Linux `target_core_user`) daemon whose SCSI device
//! handlers are sandboxed WebAssembly components.
//!
//! The crate is laid out along the data path:
//! - [`ring`]: the shared-memory command ring (mailbox, entries, data buffers);
//! - [`sim`]: a simulated kernel that drives the ring for tests and benches;
//! - [`device`]: one device's loop (ring + doorbell + handler backend);
//! - [`backing`]: backing files, bounded to the operator's grant;
//! - [`aio`]: the device's asynchronous store I/O (io_uring) and its ordering rules;
//! - [`sandbox`]: the wasmtime runtime that hosts handler components;
//! - [`native`]: the same handlers linked natively (the benchmark baseline);
//! - [`kernel`]: uio, netlink and configfs glue to `target_core_user`;
//! - [`control`]: the operator's config and the `serve` daemon;
//! - [`check`](mod@check) and [`bench`](mod@bench): the `tcmu-wasm check` and `bench` commands;
//! - [`new_handler`]: `tcmu-wasm new-handler`, a handler crate from the SDK's template.

#![warn(missing_docs)]

pub mod aio;
pub mod backing;
#[cfg(feature = "dev-tools")]
pub mod bench;
#[cfg(feature = "dev-tools")]
pub mod check;
pub mod control;
pub mod device;
pub mod handlers;
pub mod kernel;
pub mod metrics;
#[cfg(feature = "dev-tools")]
pub mod native;
#[cfg(feature = "dev-tools")]
pub mod new_handler;
pub mod ring;
pub mod sandbox;
#[cfg(feature = "test-utils")]
pub mod sim;
pub mod size;
