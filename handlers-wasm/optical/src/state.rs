//! What the drive carries into a new instance (hot reload, rebuild after
//! a fault) through the SDK's state hooks.
//!
//! Format version 1, big-endian:
//!
//! ```text
//! 1                         version
//! u8 has_load, u64 load_id  the disc load the tray state belongs to
//! u8 tray_open, u8 spinning_up, u8 prevent, u8 descriptor_sense
//! u16 read_speed
//! u8 n, n x u8              pending media events, oldest first
//! ...                       unit attentions (UnitAttentions::save)
//! ```
//!
//! The prevent flag, the sense format, the read speed and pending unit
//! attentions always carry over. The tray and the events carry over only
//! when the host put the same disc load into the new instance; a different
//! load keeps its fresh "medium may have changed".

use tcmu_guest_sdk::sense::SenseFormat;
use tcmu_guest_sdk::spc::UnitAttentions;
use tcmu_guest_sdk::state::StateReader;

use crate::OpticalDrive;
use crate::events::MediaEvents;

const VERSION: u8 = 1;

pub(crate) fn save(drive: &OpticalDrive, out: &mut Vec<u8>) {
    out.push(VERSION);
    match drive.disc.as_ref() {
        Some(disc) => {
            out.push(1);
            out.extend_from_slice(&disc.info.load_id.to_be_bytes());
        }
        None => out.extend_from_slice(&[0; 9]),
    }
    out.push(u8::from(drive.tray_open));
    out.push(u8::from(drive.spinning_up));
    out.push(u8::from(drive.prevent));
    out.push(u8::from(drive.spc.sense_format == SenseFormat::Descriptor));
    out.extend_from_slice(&drive.read_speed.to_be_bytes());
    let events: Vec<u8> = drive.events.pending().map(|e| e as u8).collect();
    out.push(events.len() as u8);
    out.extend_from_slice(&events);
    drive.spc.unit_attentions.save(out);
}

pub(crate) fn restore(drive: &mut OpticalDrive, bytes: &[u8]) -> Result<(), String> {
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
    let tray_open = r.flag()?;
    let spinning_up = r.flag()?;
    let prevent = r.flag()?;
    let descriptor_sense = r.flag()?;
    let read_speed = r.u16()?;
    let n = usize::from(r.u8()?);
    let events = MediaEvents::from_codes(r.take(n)?);
    let (attentions, rest) = UnitAttentions::restore(r.rest()).ok_or("saved state has malformed unit attentions")?;
    if !rest.is_empty() {
        return Err(format!("saved state has {} bytes too many", rest.len()));
    }

    drive.prevent = prevent;
    drive.spc.sense_format = if descriptor_sense { SenseFormat::Descriptor } else { SenseFormat::Fixed };
    drive.spc.unit_attentions = attentions;
    drive.read_speed = read_speed.clamp(176, crate::mode::MAX_READ_SPEED);
    let same_load = match drive.disc.as_ref() {
        Some(disc) => has_load && disc.info.load_id == load_id,
        None => !has_load,
    };
    if same_load {
        drive.tray_open = tray_open;
        drive.spinning_up = spinning_up && drive.disc.is_some();
        drive.events = events;
    } else if drive.disc.is_some() {
        // The disc the host just loaded is news the old state cannot know.
        drive.spc.unit_attentions.raise(tcmu_guest_sdk::spc::readiness::MEDIUM_MAY_HAVE_CHANGED);
    }
    Ok(())
}
