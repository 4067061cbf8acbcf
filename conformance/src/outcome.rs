//! The result of one check, and how it prints.

use std::fmt;

/// The result of one named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Dotted check name, e.g. `read16.last-lba`.
    pub name: String,
    /// `Err` says why the check failed, with the observed status and sense
    /// decoded.
    pub result: Result<(), String>,
    /// Set when the check did not apply to this device (it reports the
    /// feature unsupported, or the target cannot do what the check needs);
    /// `result` is then `Ok`.
    pub skipped: Option<String>,
}

impl CheckOutcome {
    /// A check that ran and passed.
    pub fn pass(name: impl Into<String>) -> Self {
        Self { name: name.into(), result: Ok(()), skipped: None }
    }

    /// A check that ran and failed for `reason`.
    pub fn fail(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { name: name.into(), result: Err(reason.into()), skipped: None }
    }

    /// A check that did not apply, for `reason`.
    pub fn skip(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { name: name.into(), result: Ok(()), skipped: Some(reason.into()) }
    }

    /// Whether the check passed or did not apply.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

/// One line: `PASS  read16.last-lba`,
/// `FAIL  compare-and-write.miscompare: expected 0E/1D/00 got 05/24/00` or
/// `SKIP  unmap.range: VPD B2 reports LBPU=0`.
impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.result, &self.skipped) {
            (Err(reason), _) => write!(f, "FAIL  {}: {reason}", self.name),
            (Ok(()), Some(reason)) => write!(f, "SKIP  {}: {reason}", self.name),
            (Ok(()), None) => write!(f, "PASS  {}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_one_line_per_outcome() {
        assert_eq!(CheckOutcome::pass("read16.last-lba").to_string(), "PASS  read16.last-lba");
        assert_eq!(
            CheckOutcome::fail("compare-and-write.miscompare", "expected 0E/1D/00 got 05/24/00").to_string(),
            "FAIL  compare-and-write.miscompare: expected 0E/1D/00 got 05/24/00"
        );
        let skipped = CheckOutcome::skip("unmap.range", "VPD B2 reports LBPU=0");
        assert_eq!(skipped.to_string(), "SKIP  unmap.range: VPD B2 reports LBPU=0");
        assert!(skipped.passed());
        assert!(!CheckOutcome::fail("x", "y").passed());
    }
}
