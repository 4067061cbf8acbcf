//! What a handler declares about itself, independent of how it runs.

/// The SCSI device class a handler emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// SBC disk.
    Disk,
    /// SSC tape.
    Tape,
    /// SMC medium changer.
    Changer,
    /// MMC optical drive.
    Optical,
    /// Anything else.
    Other,
}

/// A handler's self-description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerInfo {
    /// Short name.
    pub name: String,
    /// Device class.
    pub kind: DeviceKind,
    /// One-liner.
    pub description: String,
}
