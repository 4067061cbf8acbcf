//! The SMC-3 changer suite: what `tcmu-wasm check` runs for handlers that
//! describe themselves as medium changers.
//!
//! The suite learns the element addresses from the element address
//! assignment page (1Dh), as mtx and the kernel's ch driver do, and checks
//! them against the library the operator configured. Every check that
//! moves cartridges puts them back in their slots afterwards (and allows
//! medium removal again), so each starts from the configured placement.

mod elements;
mod identity;
mod moves;
mod robot;
mod status;

use robot::Robot;

use crate::common::{self, Runner};
use crate::outcome::CheckOutcome;
use crate::target::ScsiTarget;

/// The library the changer under test serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangerParams {
    /// Data transfer elements (drives).
    pub drives: u16,
    /// Import/export elements (mail slots), empty at the start.
    pub mail_slots: u16,
    /// Storage elements (slots).
    pub slots: u16,
    /// The cartridges at the start: barcode and storage slot index (0 is
    /// the lowest storage element address). Nothing else is full.
    pub cartridges: Vec<(String, u16)>,
    /// Each drive's unit serial number, by drive index, as DVCID should
    /// report it; empty if not known.
    pub drive_serials: Vec<String>,
}

/// The smallest library the suite can work with: (drives, mail slots,
/// slots, cartridges). Two slots must start empty.
pub const CHANGER_MIN_LAYOUT: (u16, u16, u16, usize) = (1, 1, 4, 2);

/// Run the changer suite against `target` and return one outcome per
/// check, in the order they ran.
///
/// The checks, by family: TEST UNIT READY, REQUEST SENSE, standard INQUIRY
/// and VPD pages 00h, 80h, 83h; MODE SENSE of pages 1Dh, 1Eh and 1Fh;
/// READ ELEMENT STATUS of every type and of each, with and without VOLTAG,
/// with DVCID, one element at a time as ch does, from a starting address in
/// the middle and past the end, and under short allocation lengths; MOVE
/// MEDIUM between slots, drives and mail slots, with SVALID and the source
/// address, and its errors; PREVENT ALLOW MEDIUM REMOVAL against the mail
/// slots; EXCHANGE MEDIUM; POSITION TO ELEMENT; INITIALIZE ELEMENT STATUS
/// (with range); an unknown operation code.
pub fn changer_suite(target: &mut dyn ScsiTarget, params: &ChangerParams) -> Vec<CheckOutcome> {
    if let Err(reason) = check_params(params) {
        return vec![CheckOutcome::fail("changer-parameters", reason)];
    }
    let mut robot = Robot::new(target, params.clone());
    common::clear_unit_attentions(&mut robot);
    let layout = robot.learn_layout();
    let mut suite = Runner::new(robot);
    identity::run(&mut suite);
    if let Err(reason) = layout {
        let mut outcomes = suite.into_outcomes();
        outcomes.push(CheckOutcome::fail("element-layout", format!("{reason}; the element checks cannot run")));
        return outcomes;
    }
    elements::run(&mut suite);
    moves::run(&mut suite);
    suite.into_outcomes()
}

fn check_params(params: &ChangerParams) -> Result<(), String> {
    let (drives, mail_slots, slots, cartridges) = CHANGER_MIN_LAYOUT;
    if params.drives < drives || params.mail_slots < mail_slots || params.slots < slots {
        return Err(format!(
            "a library of {} drives, {} mail slots and {} slots; the suite needs at least {drives}, {mail_slots} and {slots}",
            params.drives, params.mail_slots, params.slots
        ));
    }
    if params.cartridges.len() < cartridges || params.cartridges.len() + 2 > usize::from(params.slots) {
        return Err(format!(
            "{} cartridges in {} slots; the suite needs at least {cartridges} and two empty slots",
            params.cartridges.len(),
            params.slots
        ));
    }
    let mut slots_used: Vec<u16> = params.cartridges.iter().map(|(_, s)| *s).collect();
    slots_used.sort_unstable();
    slots_used.dedup();
    if slots_used.len() != params.cartridges.len() || slots_used.iter().any(|&s| s >= params.slots) {
        return Err(format!("cartridges placed at slot indexes {slots_used:?} of {} slots", params.slots));
    }
    Ok(())
}
