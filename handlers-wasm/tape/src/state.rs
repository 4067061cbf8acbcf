//! What the drive carries into a new instance (hot reload, rebuild after
//! a fault) through the SDK's state hooks.
//!
//! Format version 1, big-endian:
//!
//! ```text
//! 1                       version
//! u8  has_load, u64 load_id   the load the position belongs to
//! u8  readiness           0 empty, 1 threading, 2 ready, 3 ejected
//! u64 position            logical object number
//! u32 block_length, u8 density, u8 buffered_mode, u8 compression,
//! u8 dexcpt, u8 mrie, u8 prevent, u8 descriptor_sense
//! 5 x u64                 counters: bytes written/read, records written/read, TapeAlert
//! ...                     unit attentions (UnitAttentions::save)
//! ```
//!
//! Settings always carry over. Position and readiness carry over only
//! when the host loaded the same cartridge load into the new instance
//! (same load id): a different load is a new cartridge, which starts at
//! BOT and becomes ready as a fresh load does.

use tcmu_guest_sdk::sense::SenseFormat;
use tcmu_guest_sdk::spc::UnitAttentions;
use tcmu_guest_sdk::state::StateReader;

use crate::{Counters, Readiness, TapeDrive};

const VERSION: u8 = 1;

pub(crate) fn save(drive: &TapeDrive, out: &mut Vec<u8>) {
    out.push(VERSION);
    match drive.tape.as_ref() {
        Some(tape) => {
            out.push(1);
            out.extend_from_slice(&tape.info.load_id.to_be_bytes());
        }
        None => out.extend_from_slice(&[0; 9]),
    }
    out.push(match drive.readiness {
        Readiness::Empty => 0,
        Readiness::Threading => 1,
        Readiness::Ready => 2,
        Readiness::Ejected => 3,
    });
    out.extend_from_slice(&drive.tape.as_ref().map_or(0, |t| t.pos).to_be_bytes());
    let s = &drive.settings;
    out.extend_from_slice(&s.block_length.to_be_bytes());
    out.extend_from_slice(&[s.density, s.buffered_mode, u8::from(s.compression), u8::from(s.dexcpt), s.mrie]);
    out.push(u8::from(drive.prevent));
    out.push(u8::from(drive.spc.sense_format == SenseFormat::Descriptor));
    let c = &drive.counters;
    for v in [c.bytes_written, c.bytes_read, c.records_written, c.records_read, c.tape_alert] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    drive.spc.unit_attentions.save(out);
}

pub(crate) fn restore(drive: &mut TapeDrive, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = StateReader::new(bytes);
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!("saved state version {version} is not {VERSION}"));
    }
    let has_load = r.flag()?;
    let load_id = r.u64()?;
    let readiness = match r.u8()? {
        0 => Readiness::Empty,
        1 => Readiness::Threading,
        2 => Readiness::Ready,
        3 => Readiness::Ejected,
        other => return Err(format!("saved state has readiness {other}")),
    };
    let position = r.u64()?;
    let mut settings = drive.settings;
    settings.block_length = r.u32()?;
    if settings.block_length > drive.config.max_block {
        return Err(format!("saved block length {} exceeds max_block", settings.block_length));
    }
    settings.density = r.u8()?;
    if crate::density::by_code(settings.density).is_none() {
        return Err(format!("saved density {:#x} is not one this build offers", settings.density));
    }
    settings.buffered_mode = r.u8()? & 0x07;
    settings.compression = r.flag()?;
    settings.dexcpt = r.flag()?;
    settings.mrie = r.u8()? & 0x0f;
    let prevent = r.flag()?;
    let descriptor_sense = r.flag()?;
    let mut counters = Counters::default();
    for field in [
        &mut counters.bytes_written,
        &mut counters.bytes_read,
        &mut counters.records_written,
        &mut counters.records_read,
    ] {
        *field = r.u64()?;
    }
    counters.tape_alert = r.u64()?;
    let (attentions, rest) = UnitAttentions::restore(r.rest()).ok_or("saved state has malformed unit attentions")?;
    if !rest.is_empty() {
        return Err(format!("saved state has {} bytes too many", rest.len()));
    }

    drive.settings = settings;
    drive.prevent = prevent;
    drive.spc.sense_format = if descriptor_sense { SenseFormat::Descriptor } else { SenseFormat::Fixed };
    drive.spc.unit_attentions = attentions;
    if let Some(tape) = drive.tape.as_mut()
        && has_load
        && tape.info.load_id == load_id
    {
        // The same load: the tape is where it was, threaded or not.
        tape.pos = position.min(tape.index.len());
        drive.readiness = readiness;
        drive.counters = counters;
    }
    Ok(())
}
