//! Running named checks against the device and collecting their outcomes.

use std::panic::{self, AssertUnwindSafe};

use super::device::Device;
use crate::outcome::CheckOutcome;

/// The device under test and the outcomes so far.
pub(crate) struct Suite<'t> {
    pub(crate) dev: Device<'t>,
    outcomes: Vec<CheckOutcome>,
}

impl<'t> Suite<'t> {
    pub(crate) fn new(dev: Device<'t>) -> Self {
        Self { dev, outcomes: Vec::new() }
    }

    pub(crate) fn into_outcomes(self) -> Vec<CheckOutcome> {
        self.outcomes
    }

    /// Run one check. A panic (a bug in the suite or the target adapter)
    /// fails that check instead of taking the whole run down.
    pub(crate) fn check(&mut self, name: impl Into<String>, check: impl FnOnce(&mut Device<'t>) -> Result<(), String>) {
        let dev = &mut self.dev;
        let result = panic::catch_unwind(AssertUnwindSafe(|| check(dev)))
            .unwrap_or_else(|payload| Err(format!("check panicked: {}", panic_message(payload.as_ref()))));
        self.outcomes.push(match result {
            Ok(()) => CheckOutcome::pass(name),
            Err(reason) => CheckOutcome::fail(name, reason),
        });
    }

    /// Run `check` with what `applies` holds if it is `Ok`; otherwise record
    /// a skip with its reason.
    pub(crate) fn check_if<T>(
        &mut self,
        name: impl Into<String>,
        applies: Result<T, String>,
        check: impl FnOnce(&mut Device<'t>, T) -> Result<(), String>,
    ) {
        match applies {
            Ok(value) => self.check(name, |dev| check(dev, value)),
            Err(reason) => self.skip(name, reason),
        }
    }

    /// Record a check that does not apply to this device.
    pub(crate) fn skip(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.outcomes.push(CheckOutcome::skip(name, reason));
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
