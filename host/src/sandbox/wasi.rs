//! The WASI a handler gets: what Rust's `wasm32-wasip2` standard library
//! imports, minus everything that reaches outside the sandbox or waits.
//!
//! | interface | what the guest gets |
//! |---|---|
//! | `wasi:cli/*` (environment, exit, stdio, terminals) | no arguments, no environment, stdin closed, stdout/stderr discarded; `exit` ends the call as a fault |
//! | `wasi:io/error`, `wasi:io/streams` | only the stdio streams above exist, none of which ever waits |
//! | `wasi:io/poll` | `ready` answers; `poll` and `pollable.block` return at once if something is ready and otherwise **fault the call** ("handlers may not wait") |
//! | `wasi:clocks/monotonic-clock`, `wall-clock` | reading the clocks; a subscription can be polled for readiness but never waited on |
//! | `wasi:random/*` | random bytes, at most [`MAX_RANDOM_BYTES`] per call |
//! | `wasi:filesystem/*`, `wasi:sockets/*`, anything else | stubbed by [`stub_unknown_imports`]: a component importing them loads, and the first call faults |
//!
//! Why no waiting at all: epoch interruption stops guest code, not host
//! code, so a guest blocked in a host call would hold its command (and its
//! device thread) past any budget. Every host function a handler can reach
//! returns in bounded time instead; a handler that needs time to pass (a tape
//! becoming ready) reads the clock on its next command.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasData, Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;

use super::host::DeviceState;

/// Largest `get-random-bytes` request (the host allocates the answer).
pub const MAX_RANDOM_BYTES: u64 = 64 * 1024;

/// Message of the fault a waiting call raises; [`super::device`] maps it
/// to the `forbidden` fault cause.
pub const WAIT_REFUSED: &str = "handlers may not wait: wasi:io/poll found nothing ready";

/// Interfaces the host links (any version), WASI and tcmu:handler alike.
const PROVIDED: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:io/poll",
    "tcmu:handler/types",
    "tcmu:handler/backing",
    "tcmu:handler/transfer",
    "tcmu:handler/log",
    "tcmu:handler/medium",
    "tcmu:handler/library",
];

/// A resource of an interface the sandbox does not provide; no value of it
/// ever exists, because every function that would make one faults.
struct Unprovided;

/// Define every import of `component` from an interface the host does not
/// provide as functions that fault the calling command ("the sandbox does
/// not provide ..."), so that a component whose standard library pulls in
/// `wasi:filesystem` or `wasi:sockets` still loads.
///
/// Not wasmtime's `define_unknown_imports_as_traps`: that also defines the
/// resource types a provided interface merely `use`s from another one
/// (`pollable` in `wasi:clocks/monotonic-clock`) as fresh types, which then
/// no longer match. Here a resource is stubbed only in an unprovided
/// interface, and only where it is introduced (not where it is used).
pub fn stub_unknown_imports(
    linker: &mut Linker<DeviceState>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    let provided = |name: &str| PROVIDED.contains(&name.split('@').next().unwrap_or(name));
    let mut seen: Vec<ResourceType> = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            if !provided(name) {
                wasmtime::bail!("the handler imports {name:?} at the top level; handlers import interfaces only");
            }
            continue;
        };
        let stub = !provided(name);
        let mut linker_instance = if stub { Some(linker.instance(name)?) } else { None };
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::Resource(ty) => {
                    if seen.contains(&ty) {
                        continue; // `use`d from an earlier interface
                    }
                    seen.push(ty);
                    if let Some(li) = linker_instance.as_mut() {
                        li.resource(export, ResourceType::host::<Unprovided>(), |_, _| Ok(()))?;
                    }
                }
                ComponentItem::ComponentFunc(_) => {
                    if let Some(li) = linker_instance.as_mut() {
                        let what = format!("{name}#{export}");
                        li.func_new(export, move |_, _, _, _| wasmtime::bail!("{UNPROVIDED}: {what}"))?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Message of the fault a call into an unprovided interface raises.
pub const UNPROVIDED: &str = "the sandbox does not provide this import to handlers";

/// Link the allowed WASI interfaces.
pub fn add_to_linker(linker: &mut Linker<DeviceState>) -> wasmtime::Result<()> {
    let l = linker;
    cli::environment::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::exit::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |s| s.cli())?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, |s| s.clocks())?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, |s| s.clocks())?;
    random::random::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<_, Table>(l, |s| &mut s.table)?;
    wasmtime_wasi::p2::bindings::sync::io::streams::add_to_linker::<_, Table>(l, |s| &mut s.table)?;
    sync_poll::add_to_linker::<_, NoWait>(l, |s| NoWaitPoll(&mut s.table))?;
    Ok(())
}

struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// `wasi:io/poll` that answers readiness but never waits.
struct NoWait;

impl HasData for NoWait {
    type Data<'a> = NoWaitPoll<'a>;
}

struct NoWaitPoll<'a>(&'a mut ResourceTable);

impl NoWaitPoll<'_> {
    /// Whether `pollable` is ready now (never waits: wasmtime-wasi's
    /// `ready` polls the readiness future once).
    fn ready_now(&mut self, pollable: &Resource<DynPollable>) -> wasmtime::Result<bool> {
        let borrowed = Resource::new_borrow(pollable.rep());
        let table = &mut *self.0;
        wasmtime_wasi::runtime::in_tokio(async { async_poll::HostPollable::ready(table, borrowed).await })
    }
}

impl sync_poll::Host for NoWaitPoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        if pollables.is_empty() {
            wasmtime::bail!("empty poll list");
        }
        let mut ready = Vec::new();
        for (i, p) in pollables.iter().enumerate() {
            if self.ready_now(p)? {
                ready.push(u32::try_from(i)?);
            }
        }
        if ready.is_empty() {
            wasmtime::bail!(WAIT_REFUSED);
        }
        Ok(ready)
    }
}

impl sync_poll::HostPollable for NoWaitPoll<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        self.ready_now(&pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        if self.ready_now(&pollable)? { Ok(()) } else { wasmtime::bail!(WAIT_REFUSED) }
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.0, pollable)
    }
}
