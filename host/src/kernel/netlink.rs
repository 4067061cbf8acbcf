//! The `TCM-USER` generic-netlink family.
//!
//! The kernel multicasts ADDED/REMOVED/RECONFIG_DEVICE on group `config`
//! and — once we announce `SUPP_KERN_CMD_REPLY` with SET_FEATURES — blocks
//! the configfs writer that caused the event until the matching `*_DONE`
//! arrives. With no reply that writer sits in D state for good, so the
//! listener thread here does nothing but receive and hand each event to a
//! thread of its own, which runs the control plane's handler with a deadline
//! and replies: a slow or stuck handler makes its event fail with
//! `-ETIMEDOUT`, never stalls the kernel or other devices' events (the
//! kernel has at most one event per device outstanding, so events of one
//! device still arrive in order).

use std::sync::{Arc, mpsc};
use std::time::Duration;

use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder};
use neli::nl::NlPayload;
use neli::router::synchronous::{NlRouter, NlRouterReceiverHandle};
use neli::types::GenlBuffer;
use neli::utils::Groups;

use super::uio::TcmuName;

/// Family name.
pub const FAMILY: &str = "TCM-USER";
/// Multicast group carrying device events.
pub const GROUP: &str = "config";
const VERSION: u8 = 2;

/// `enum tcmu_genl_cmd`.
mod cmd {
    pub const ADDED_DEVICE: u8 = 1;
    pub const REMOVED_DEVICE: u8 = 2;
    pub const RECONFIG_DEVICE: u8 = 3;
    pub const ADDED_DEVICE_DONE: u8 = 4;
    pub const REMOVED_DEVICE_DONE: u8 = 5;
    pub const RECONFIG_DEVICE_DONE: u8 = 6;
    pub const SET_FEATURES: u8 = 7;
}

/// `enum tcmu_genl_attr`.
mod attr {
    pub const DEVICE: u16 = 1;
    pub const MINOR: u16 = 2;
    pub const DEV_CFG: u16 = 4;
    pub const DEV_SIZE: u16 = 5;
    pub const WRITECACHE: u16 = 6;
    pub const CMD_STATUS: u16 = 7;
    pub const DEVICE_ID: u16 = 8;
    pub const SUPP_KERN_CMD_REPLY: u16 = 9;
}

type Msg = Genlmsghdr<u8, u16>;

/// A device event from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    /// What happened.
    pub kind: EventKind,
    /// The device (`DEVICE` attribute, the UIO name).
    pub device: TcmuName,
    /// UIO minor (`/dev/uio<minor>`).
    pub minor: u32,
    /// The kernel's id for the event's device (echoed in the reply).
    pub device_id: u32,
}

/// Event kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The backstore was enabled.
    Added,
    /// The backstore is being removed.
    Removed,
    /// An attribute changed.
    Reconfig {
        /// New `dev_size`.
        dev_size: Option<u64>,
        /// New `dev_config`.
        dev_config: Option<String>,
        /// New write-cache setting.
        write_cache: Option<bool>,
    },
}

impl EventKind {
    fn done_cmd(&self) -> u8 {
        match self {
            EventKind::Added => cmd::ADDED_DEVICE_DONE,
            EventKind::Removed => cmd::REMOVED_DEVICE_DONE,
            EventKind::Reconfig { .. } => cmd::RECONFIG_DEVICE_DONE,
        }
    }
}

/// Errors setting up the netlink side.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The family is not registered: target_core_user is not loaded.
    #[error("generic netlink family {FAMILY} not found: is the target_core_user module loaded? ({0})")]
    NoFamily(String),
    /// Anything else neli reported.
    #[error("netlink: {0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> NetlinkError {
    NetlinkError::Other(e.to_string())
}

/// What answers events: returns 0 or a negative errno for the kernel.
pub type EventHandler = Arc<dyn Fn(&DeviceEvent) -> i32 + Send + Sync>;

/// The listener: owns the socket and the thread answering events.
pub struct Listener {
    _thread: std::thread::JoinHandle<()>,
}

impl Listener {
    /// Connect, announce kernel-reply support and start answering events.
    /// Events for devices whose subtype is not `subtype` belong to another
    /// daemon and are left alone. Each of ours goes to `handler` on a thread
    /// of its own; if no status comes within `deadline` the kernel is told
    /// `-ETIMEDOUT`.
    pub fn start(subtype: &str, handler: EventHandler, deadline: Duration) -> Result<Self, NetlinkError> {
        let (router, events) = NlRouter::connect(NlFamily::Generic, Some(0), Groups::empty()).map_err(other)?;
        let family = router.resolve_genl_family(FAMILY).map_err(|e| NetlinkError::NoFamily(e.to_string()))?;
        let group = router.resolve_nl_mcast_group(FAMILY, GROUP).map_err(other)?;
        router.add_mcast_membership(Groups::new_groups(&[group])).map_err(other)?;
        send(&router, family, cmd::SET_FEATURES, vec![attr_u8(attr::SUPP_KERN_CMD_REPLY, 1)?])?;
        tracing::info!(family, group, "netlink: listening for TCM-USER events");
        let subtype = subtype.to_owned();
        let thread = std::thread::Builder::new()
            .name("netlink".into())
            .spawn(move || listen(Arc::new(router), family, events, &subtype, handler, deadline))
            .map_err(other)?;
        Ok(Self { _thread: thread })
    }
}

fn listen(
    router: Arc<NlRouter>,
    family: u16,
    events: NlRouterReceiverHandle<u16, Msg>,
    subtype: &str,
    handler: EventHandler,
    deadline: Duration,
) {
    for msg in events {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "netlink: receive error");
                continue;
            }
        };
        let Some(payload) = msg.get_payload() else { continue };
        let event = match parse_event(payload) {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "netlink: malformed event ignored");
                continue;
            }
        };
        if event.device.subtype != subtype {
            tracing::debug!(device = %event.device.device, subtype = %event.device.subtype, "netlink: not our device");
            continue;
        }
        let (router, handler) = (router.clone(), handler.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("event-{}", event.device.device))
            .spawn(move || answer(&router, family, &event, &handler, deadline));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "netlink: cannot start an event thread; the event times out in the kernel");
        }
    }
    tracing::warn!("netlink: event stream ended");
}

/// Run `handler` for one event with a deadline and send the kernel its status.
fn answer(router: &NlRouter, family: u16, event: &DeviceEvent, handler: &EventHandler, deadline: Duration) {
    let (tx, rx) = mpsc::channel();
    let worker = {
        let (event, handler) = (event.clone(), handler.clone());
        std::thread::Builder::new().name(format!("apply-{}", event.device.device)).spawn(move || {
            let _ = tx.send(handler(&event));
        })
    };
    let status = match worker {
        Err(_) => -nix::libc::EAGAIN,
        Ok(_) => rx.recv_timeout(deadline).unwrap_or_else(|_| {
            tracing::error!(device = %event.device.device, ?deadline, "control plane did not answer in time; failing the event");
            -nix::libc::ETIMEDOUT
        }),
    };
    let reply = [attr_i32(attr::CMD_STATUS, status), attr_u32(attr::DEVICE_ID, event.device_id)];
    match reply.into_iter().collect::<Result<Vec<_>, _>>().and_then(|a| send(router, family, event.kind.done_cmd(), a))
    {
        Ok(()) => tracing::info!(device = %event.device.device, kind = ?event.kind, status, "netlink: answered"),
        Err(e) => tracing::error!(device = %event.device.device, error = %e, "netlink: reply failed"),
    }
}

fn parse_event(msg: &Msg) -> Result<Option<DeviceEvent>, String> {
    let attrs = msg.attrs().get_attr_handle();
    let text = |id| -> Option<String> {
        attrs.get_attr_payload_as_with_len::<String>(id).ok().map(|s| s.trim_end_matches('\0').to_owned())
    };
    let kind = match *msg.cmd() {
        cmd::ADDED_DEVICE => EventKind::Added,
        cmd::REMOVED_DEVICE => EventKind::Removed,
        cmd::RECONFIG_DEVICE => EventKind::Reconfig {
            dev_size: attrs.get_attr_payload_as::<u64>(attr::DEV_SIZE).ok(),
            dev_config: text(attr::DEV_CFG),
            write_cache: attrs.get_attr_payload_as::<u8>(attr::WRITECACHE).ok().map(|v| v != 0),
        },
        _ => return Ok(None),
    };
    let name = text(attr::DEVICE).ok_or("event without DEVICE")?;
    let device = TcmuName::parse(&name).ok_or_else(|| format!("unparsable DEVICE {name:?}"))?;
    let minor = attrs.get_attr_payload_as::<u32>(attr::MINOR).map_err(|e| format!("MINOR: {e}"))?;
    let device_id = attrs.get_attr_payload_as::<u32>(attr::DEVICE_ID).map_err(|e| format!("DEVICE_ID: {e}"))?;
    Ok(Some(DeviceEvent { kind, device, minor, device_id }))
}

type Attr = neli::genl::Nlattr<u16, neli::types::Buffer>;

fn attr_u8(id: u16, v: u8) -> Result<Attr, NetlinkError> {
    build_attr(id, v)
}

fn attr_u32(id: u16, v: u32) -> Result<Attr, NetlinkError> {
    build_attr(id, v)
}

fn attr_i32(id: u16, v: i32) -> Result<Attr, NetlinkError> {
    build_attr(id, v)
}

fn build_attr<P: neli::Size + neli::ToBytes>(id: u16, payload: P) -> Result<Attr, NetlinkError> {
    NlattrBuilder::default()
        .nla_type(AttrTypeBuilder::default().nla_type(id).build().map_err(other)?)
        .nla_payload(payload)
        .build()
        .map_err(other)
}

/// Send one command and wait for the kernel's ACK (or error).
fn send(router: &NlRouter, family: u16, command: u8, attrs: Vec<Attr>) -> Result<(), NetlinkError> {
    let msg: Msg = GenlmsghdrBuilder::default()
        .cmd(command)
        .version(VERSION)
        .attrs(attrs.into_iter().collect::<GenlBuffer<u16, neli::types::Buffer>>())
        .build()
        .map_err(other)?;
    let acks: NlRouterReceiverHandle<u16, Msg> =
        router.send(family, NlmF::ACK, NlPayload::Payload(msg)).map_err(other)?;
    for ack in acks {
        ack.map_err(other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(command: u8, attrs: Vec<Attr>) -> Msg {
        GenlmsghdrBuilder::default()
            .cmd(command)
            .version(VERSION)
            .attrs(attrs.into_iter().collect::<GenlBuffer<u16, neli::types::Buffer>>())
            .build()
            .unwrap()
    }

    fn device_attrs() -> Vec<Attr> {
        vec![
            // nla_put_string includes the NUL.
            build_attr(attr::DEVICE, "tcm-user/10/disk0/wasm/disk0\0").unwrap(),
            attr_u32(attr::MINOR, 3).unwrap(),
            attr_u32(attr::DEVICE_ID, 77).unwrap(),
        ]
    }

    #[test]
    fn parses_added_and_removed_events() {
        let ev = parse_event(&event(cmd::ADDED_DEVICE, device_attrs())).unwrap().unwrap();
        assert_eq!(ev.kind, EventKind::Added);
        assert_eq!((ev.device.device.as_str(), ev.device.subtype.as_str(), ev.device.hba), ("disk0", "wasm", 10));
        assert_eq!((ev.minor, ev.device_id), (3, 77));
        assert_eq!(ev.kind.done_cmd(), cmd::ADDED_DEVICE_DONE);
        let ev = parse_event(&event(cmd::REMOVED_DEVICE, device_attrs())).unwrap().unwrap();
        assert_eq!(ev.kind.done_cmd(), cmd::REMOVED_DEVICE_DONE);
    }

    #[test]
    fn parses_reconfig_attributes() {
        let mut attrs = device_attrs();
        attrs.push(build_attr(attr::DEV_SIZE, 1u64 << 30).unwrap());
        attrs.push(attr_u8(attr::WRITECACHE, 1).unwrap());
        let ev = parse_event(&event(cmd::RECONFIG_DEVICE, attrs)).unwrap().unwrap();
        assert_eq!(ev.kind, EventKind::Reconfig { dev_size: Some(1 << 30), dev_config: None, write_cache: Some(true) });
        assert_eq!(ev.kind.done_cmd(), cmd::RECONFIG_DEVICE_DONE);
    }

    #[test]
    fn ignores_replies_and_rejects_incomplete_events() {
        assert_eq!(parse_event(&event(cmd::ADDED_DEVICE_DONE, device_attrs())).unwrap(), None);
        let no_id = device_attrs().into_iter().take(2).collect();
        assert!(parse_event(&event(cmd::ADDED_DEVICE, no_id)).unwrap_err().contains("DEVICE_ID"));
        let bad_name = vec![build_attr(attr::DEVICE, "uio_pci\0").unwrap()];
        assert!(parse_event(&event(cmd::ADDED_DEVICE, bad_name)).unwrap_err().contains("unparsable"));
    }
}
