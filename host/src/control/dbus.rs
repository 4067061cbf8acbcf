//! `org.kernel.TCMUService1` on the system bus: the service targetcli asks
//! for the `user:` backstores it can create (clients.md §6). The layout is
//! tcmu-runner's: an ObjectManager at `/org/kernel/TCMUService1` and one
//! object per subtype under it — ours is `wasm`, so targetcli shows
//! `/backstores/user:wasm` and writes `dev_config = wasm/<cfgstring>`,
//! which `kernel_devices` serves.
//!
//! The `org.kernel.TCMUService1` interface:
//! - `ConfigDesc` (s): the `cfgstring` grammar, the installed handlers and
//!   the config keys each describes (WIT 0.2.3 `config-help`, asked once
//!   when the daemon loads the handler, never on a caller's behalf)
//!   (targetcli's `help create`);
//! - `CheckConfig(s config) -> (b valid, s message)`: parses the string and
//!   checks the handler is installed and every path is under
//!   `kernel_devices.allow_backing` — no file is opened and no handler code
//!   runs on the caller's behalf;
//! - `ChangeMedium(s name, t size, s config) -> (i rc, s message)`: loads the
//!   medium the config names (`wasm/<handler>/<image>[;recordable]`, an empty
//!   image ejects) into drive `name` (targetcli's `changemedium`).
//!
//! Who may call: the policy file (`packaging/dbus/org.kernel.TCMUService1.conf`)
//! lets only root own the name and call it; every method also asks the bus
//! for the caller's uid and refuses anyone but root, so a bus with a looser
//! policy does not open the daemon up (tcmu-runner's CVE-2017-1000198..201
//! came from trusting its callers). The name is requested without queueing
//! or replacing: where tcmu-runner (or another daemon) owns it, the daemon
//! logs that targetcli will not list `user:wasm` and serves on without it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;

use zbus::message::Header;
use zbus::{Connection, fdo, interface};

use super::config::KernelDeviceSettings;
use super::kernel_devices::{self, KernelDeviceConfig};
use super::platform::SUBTYPE;
use super::registry::Registry;
use crate::handlers;

/// The well-known name targetcli looks for.
pub const BUS_NAME: &str = "org.kernel.TCMUService1";
/// The ObjectManager's path.
pub const ROOT_PATH: &str = "/org/kernel/TCMUService1";

/// The `wasm` subtype's object.
struct Subtype {
    registry: Arc<Registry>,
    settings: KernelDeviceSettings,
    /// The grammar and the handlers' names, at once.
    description: String,
    /// The same with every handler's config keys, once a background
    /// thread has loaded them (compiling uncached handlers takes seconds).
    described: Arc<OnceLock<String>>,
}

/// The caller's uid, from the bus (not from anything the caller says).
async fn caller_uid(connection: &Connection, header: &Header<'_>) -> fdo::Result<u32> {
    let sender = header.sender().ok_or_else(|| fdo::Error::AccessDenied("the call has no sender".into()))?;
    let bus = fdo::DBusProxy::new(connection).await?;
    bus.get_connection_unix_user(sender.clone().into()).await
}

async fn require_root(connection: &Connection, header: &Header<'_>, method: &str) -> fdo::Result<()> {
    let uid = caller_uid(connection, header).await?;
    if uid == 0 {
        return Ok(());
    }
    tracing::warn!(uid, method, "D-Bus: refused a caller who is not root");
    Err(fdo::Error::AccessDenied(format!("{BUS_NAME}.{method} is for root only")))
}

impl Subtype {
    /// The parsed config after `wasm/`, if valid for a new device.
    fn check(&self, config: &str) -> Result<KernelDeviceConfig, String> {
        let rest = config
            .strip_prefix(SUBTYPE)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| format!("the config must start with {SUBTYPE}/ (targetcli adds it for user:{SUBTYPE})"))?;
        let parsed = kernel_devices::check(&self.settings, rest).map_err(|r| r.message)?;
        handlers::resolve_in(&parsed.handler, self.registry.handler_dirs()).map_err(|e| format!("{e:#}"))?;
        Ok(parsed)
    }

    fn change_medium(&self, name: &str, config: &str) -> Result<String, String> {
        let parsed = self.check(config)?;
        let image = parsed.medium.as_deref().or(parsed.backing.as_deref());
        let change = match image {
            Some(image) => self.registry.media_insert(name, image, parsed.medium_recordable, false),
            None => self.registry.media_eject(name, false),
        };
        change.map(|c| c.message).map_err(|e| e.message)
    }
}

#[interface(name = "org.kernel.TCMUService1")]
impl Subtype {
    /// The cfgstring grammar and the installed handlers.
    #[zbus(property, name = "ConfigDesc")]
    fn config_desc(&self) -> String {
        self.described.get().unwrap_or(&self.description).clone()
    }

    /// Whether `config` (`wasm/<cfgstring>`) would make a device.
    #[zbus(name = "CheckConfig")]
    async fn check_config(
        &self,
        config: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> fdo::Result<(bool, String)> {
        require_root(connection, &header, "CheckConfig").await?;
        Ok(match self.check(&config) {
            Ok(_) => (true, "OK".into()),
            Err(why) => (false, why),
        })
    }

    /// Load (or, with no image, eject) drive `name`'s medium.
    #[zbus(name = "ChangeMedium")]
    async fn change_medium_method(
        &self,
        name: String,
        _size: u64,
        config: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> fdo::Result<(i32, String)> {
        require_root(connection, &header, "ChangeMedium").await?;
        // The registry call waits for the drive's thread (bounded by its
        // control deadline); this bus has nothing else that could wait.
        Ok(match self.change_medium(&name, &config) {
            Ok(message) => {
                tracing::info!(device = %name, config = %config, "D-Bus ChangeMedium");
                (0, message)
            }
            Err(why) => {
                tracing::warn!(device = %name, config = %config, error = %why, "D-Bus ChangeMedium refused");
                (-nix::libc::EINVAL, why)
            }
        })
    }
}

/// The `ConfigDesc` text: the grammar and the handlers found by name; with
/// `with_keys`, each handler's config keys too (loading every handler).
fn describe(registry: &Registry, settings: &KernelDeviceSettings, with_keys: bool) -> String {
    let paths = handlers::available_in(registry.handler_dirs());
    let name_of = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let names: Vec<String> = paths.iter().map(|p| name_of(p)).collect();
    let allowed = if settings.allow_backing.is_empty() {
        "none (set kernel_devices.allow_backing in the daemon's config)".to_owned()
    } else {
        settings.allow_backing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    let mut text = format!(
        "<handler>/<backing>[;option]... served by tcmu-wasm.\n\
         handler: one of {handlers}.\n\
         backing: an absolute path to a file or block device under {allowed}, or empty.\n\
         options: ro, direct, io=auto|uring|blocking, max_in_flight=N, busy_poll_us=N, medium=PATH, recordable, \
         config=<the handler's own config, the rest of the string>.\n\
         Example: file//var/lib/tcmu-wasm/images/vol1.img;config=serial=vol1",
        handlers = if names.is_empty() { "(none installed)".to_owned() } else { names.join(", ") },
    );
    if with_keys {
        for path in &paths {
            match registry.load_code(path) {
                Ok(code) if !code.config_keys().is_empty() => {
                    text.push_str(&format!("\n{} config (items separated by ','):", name_of(path)));
                    for key in code.config_keys() {
                        text.push_str(&format!("\n  {key}"));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(handler = %path.display(), error = %format!("{e:#}"), "D-Bus ConfigDesc: handler not loadable")
                }
            }
        }
    }
    text
}

/// The service while it runs; dropping it leaves the bus.
pub struct Service {
    _connection: zbus::blocking::Connection,
}

/// Own `org.kernel.TCMUService1` on `address` (the system bus by default)
/// and serve the `wasm` object. An error says why (no bus, the name is
/// taken); the daemon serves on without the service.
pub fn start(
    registry: Arc<Registry>,
    settings: KernelDeviceSettings,
    address: Option<&str>,
) -> anyhow::Result<Service> {
    let description = describe(&registry, &settings, false);
    let described = Arc::new(OnceLock::new());
    {
        let (registry, settings, described) = (registry.clone(), settings.clone(), described.clone());
        std::thread::Builder::new()
            .name("dbus-describe".into())
            .spawn(move || {
                let _ = described.set(describe(&registry, &settings, true));
            })
            .context("starting the ConfigDesc thread")?;
    }
    let object = Subtype { registry, settings, description, described };
    let builder = match address {
        Some(a) => zbus::blocking::connection::Builder::address(a)?,
        None => zbus::blocking::connection::Builder::system()?,
    };
    let connection = builder
        .serve_at(ROOT_PATH, fdo::ObjectManager)?
        .serve_at(format!("{ROOT_PATH}/{SUBTYPE}"), object)?
        .build()
        .context("connecting to the bus")?;
    // Asked for here, not through the builder, which takes any reply as
    // success (a queued request would leave us serving nobody).
    let taken = || {
        anyhow::anyhow!(
            "{BUS_NAME} is owned by another process (tcmu-runner?): targetcli will list its backstores, not \
             user:{SUBTYPE}; stop it to manage tcmu-wasm devices with targetcli"
        )
    };
    match connection.request_name_with_flags(BUS_NAME, fdo::RequestNameFlags::DoNotQueue.into()) {
        Ok(fdo::RequestNameReply::PrimaryOwner | fdo::RequestNameReply::AlreadyOwner) => {}
        Ok(fdo::RequestNameReply::Exists | fdo::RequestNameReply::InQueue) | Err(zbus::Error::NameTaken) => {
            return Err(taken());
        }
        Err(e) => return Err(anyhow::Error::from(e).context(format!("requesting {BUS_NAME}"))),
    }
    Ok(Service { _connection: connection })
}

/// Whether a system bus socket exists at all (no bus: no service, quietly).
pub fn system_bus_present() -> bool {
    std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some() || Path::new("/run/dbus/system_bus_socket").exists()
}
