//! Removable media and libraries as the device layer sees them: a medium
//! the host loads into a drive (and takes away again), and the port
//! through which a changer's handler reaches its library. The library
//! itself — which cartridge is where, moves, persistence — lives in the
//! control plane; a changer only ever sees this port, bound to its own
//! library.

use std::sync::Arc;
use std::time::Instant;

use crate::backing::BackingFile;

/// A medium loaded into a drive.
#[derive(Debug, Clone)]
pub struct Medium {
    /// The barcode on the label.
    pub barcode: String,
    /// Whether the write-protect tab is set (the image is opened read-only).
    pub write_protected: bool,
    /// This load's number, unique per library while the daemon runs.
    pub load_id: u64,
    /// The image, granted to the drive's instance until the medium leaves.
    pub image: Arc<BackingFile>,
}

/// What happens to a drive's medium.
#[derive(Debug, Clone)]
pub enum MediumChange {
    /// Put this medium in (the drive must be empty).
    Load(Medium),
    /// Take the medium out; its grant is revoked first. The library's
    /// moves and the operator's forced eject: the handler is not asked.
    Unload,
    /// The operator's eject: ask the handler first (its `removal` export,
    /// WIT 0.2.2) and take the medium out only if the initiator lets it
    /// go; refused (and nothing changes) while removal is prevented.
    /// Handlers without that export are not asked. An empty drive is fine.
    Eject,
}

// The element and move types are the SDK's: host and handler speak the
// same library vocabulary, converted to and from WIT at the sandbox edge.
pub use tcmu_guest_sdk::{Element, ElementKind, MoveError};

/// A changer's view of its library. Every call finishes by `deadline`
/// (the changer's command budget), whatever the drives do.
pub trait LibraryPort: Send + Sync {
    /// Every element, in address order.
    fn elements(&self) -> Vec<Element>;
    /// Move a cartridge; a move into or out of a drive loads or unloads it.
    fn move_medium(&self, source: u16, destination: u16, deadline: Instant) -> Result<(), MoveError>;
    /// Move `source` to `first` and what was in `first` to `second`.
    fn exchange_medium(&self, source: u16, first: u16, second: u16, deadline: Instant) -> Result<(), MoveError>;
    /// Lock or unlock the mail slots against the operator.
    fn prevent_removal(&self, prevent: bool);
}

impl std::fmt::Debug for dyn LibraryPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LibraryPort")
    }
}
