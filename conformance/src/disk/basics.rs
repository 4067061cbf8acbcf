//! Commands every logical unit answers the same way: TEST UNIT READY,
//! REQUEST SENSE, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, and the
//! rejection of unknown opcodes and service actions.

use super::device::Device;
use super::suite::Suite;
use crate::cdb::{self, service_action};
use crate::expect::{self, ensure};
use crate::sense::{self, Sense, SenseFormat};

/// REQUEST SENSE allocation length: the largest sense SPC-4 allows.
const SENSE_ALLOC: u8 = 252;

fn test_unit_ready(dev: &mut Device<'_>) -> Result<(), String> {
    let response = dev.execute(&cdb::test_unit_ready(), &[], 0)?;
    expect::good(&response).map_err(|e| format!("TEST UNIT READY: {e}"))
}

/// REQUEST SENSE with nothing to report: GOOD and NO SENSE in the
/// requested format.
fn request_sense(dev: &mut Device<'_>, descriptor: bool) -> Result<(), String> {
    let response = dev.execute(&cdb::request_sense(descriptor, SENSE_ALLOC), &[], SENSE_ALLOC.into())?;
    if descriptor && expect::sense(&response, sense::INVALID_FIELD_IN_CDB).is_ok() {
        // SPC-4 lets a device without descriptor-format sense refuse DESC=1 this way.
        return Ok(());
    }
    expect::good(&response)?;
    let data = &response.data_in;
    let min_len = if descriptor { 8 } else { 18 };
    ensure!(data.len() >= min_len, "{} bytes of sense data, expected at least {min_len}", data.len());
    let declared = 8 + usize::from(data[7]);
    ensure!(data.len() == declared, "ADDITIONAL SENSE LENGTH accounts for {declared} bytes, {} returned", data.len());
    let decoded = Sense::decode(data).map_err(|e| e.to_string())?;
    let format = if descriptor { SenseFormat::Descriptor } else { SenseFormat::Fixed };
    ensure!(
        decoded.format == format && !decoded.deferred,
        "response code 0x{:02X} for DESC={}",
        data[0] & 0x7F,
        u8::from(descriptor)
    );
    ensure!(decoded.code == sense::NO_SENSE, "expected {} got {}", sense::NO_SENSE, decoded.code);
    Ok(())
}

pub(super) fn run(suite: &mut Suite<'_>) {
    suite.check("test-unit-ready", test_unit_ready);
    suite.check("request-sense.fixed-format", |dev| request_sense(dev, false));
    suite.check("request-sense.descriptor-format", |dev| request_sense(dev, true));
    suite.check("start-stop-unit.start", |dev| {
        dev.execute_good(&cdb::start_stop_unit(true), &[], 0)?;
        test_unit_ready(dev)
    });
    suite.check("start-stop-unit.stop-then-start", |dev| {
        dev.execute_good(&cdb::start_stop_unit(false), &[], 0)?;
        dev.execute_good(&cdb::start_stop_unit(true), &[], 0)?;
        test_unit_ready(dev)
    });
    suite.check("prevent-allow-medium-removal", |dev| {
        dev.execute_good(&cdb::prevent_allow_medium_removal(true), &[], 0)?;
        dev.execute_good(&cdb::prevent_allow_medium_removal(false), &[], 0)?;
        Ok(())
    });
    suite.check("unknown-opcode", |dev| {
        let response = dev.execute(&cdb::unknown_opcode(), &[], 0)?;
        expect::sense(&response, sense::INVALID_COMMAND_OPERATION_CODE)?;
        Ok(())
    });
    suite.check("invalid-field.service-action", |dev| {
        let response = dev.execute(&cdb::service_action_in16(service_action::UNASSIGNED, 32), &[], 32)?;
        expect::sense(&response, sense::INVALID_FIELD_IN_CDB)?;
        Ok(())
    });
}
