//! Fencing a device whose handler keeps faulting.
//!
//! One fault rebuilds the instance; a handler that faults again and again
//! (a bug hit by every command, an `open` that traps) would otherwise be
//! rebuilt on every command forever, burning CPU its neighbours need and
//! flooding the log. After [`FencePolicy::max_faults`] faults within
//! [`FencePolicy::window`] the device is fenced: commands fail at once with
//! NOT READY, MANUAL INTERVENTION REQUIRED (02/04/03) and no instance is
//! built. When the backoff has passed, one command may try a new instance
//! (probation); a fault then fences again for twice as long, up to
//! [`FencePolicy::max_backoff`]. An operator's reload or reset lifts the
//! fence at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When to fence and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencePolicy {
    /// Faults within `window` that fence the device.
    pub max_faults: u32,
    /// The window faults are counted in.
    pub window: Duration,
    /// The first fence's length.
    pub initial_backoff: Duration,
    /// The longest fence.
    pub max_backoff: Duration,
}

impl Default for FencePolicy {
    fn default() -> Self {
        Self {
            max_faults: 3,
            window: Duration::from_secs(60),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Whether a command may reach the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Serve it.
    Admit,
    /// The fence just ended: serve it on probation (log that the fence lifted).
    Probation,
    /// Fail it fast; the fence lasts this much longer.
    Fenced(Duration),
}

/// What a fault leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Rebuild on the next command.
    Rebuild,
    /// The device is now fenced for this long.
    Fence(Duration),
}

/// The fault history of one device.
#[derive(Debug)]
pub struct FenceState {
    policy: FencePolicy,
    recent: VecDeque<Instant>,
    fenced_until: Option<Instant>,
    next_backoff: Duration,
    probation: bool,
    last_fault: Option<Instant>,
}

impl FenceState {
    /// No faults yet.
    pub fn new(policy: FencePolicy) -> Self {
        let next_backoff = policy.initial_backoff;
        Self { policy, recent: VecDeque::new(), fenced_until: None, next_backoff, probation: false, last_fault: None }
    }

    /// Whether the device is fenced at `now`.
    pub fn is_fenced(&self, now: Instant) -> bool {
        self.fenced_until.is_some_and(|until| now < until)
    }

    /// Decide about a command arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.fenced_until {
            Some(until) if now < until => Admission::Fenced(until - now),
            Some(_) => {
                self.fenced_until = None;
                self.probation = true;
                Admission::Probation
            }
            None => Admission::Admit,
        }
    }

    /// A fault at `now`.
    pub fn fault(&mut self, now: Instant) -> FaultOutcome {
        self.last_fault = Some(now);
        self.recent.push_back(now);
        while self.recent.front().is_some_and(|t| now.saturating_duration_since(*t) > self.policy.window) {
            self.recent.pop_front();
        }
        if self.probation || self.recent.len() >= self.policy.max_faults as usize {
            let backoff = self.next_backoff;
            self.fenced_until = Some(now + backoff);
            self.next_backoff = (backoff * 2).min(self.policy.max_backoff);
            self.probation = false;
            self.recent.clear();
            FaultOutcome::Fence(backoff)
        } else {
            FaultOutcome::Rebuild
        }
    }

    /// A command completed without a fault at `now`: probation is passed,
    /// and once a window has gone by without faults the backoff resets.
    pub fn success(&mut self, now: Instant) {
        self.probation = false;
        if self.last_fault.is_none_or(|t| now.saturating_duration_since(t) > self.policy.window) {
            self.recent.clear();
            self.next_backoff = self.policy.initial_backoff;
        }
    }

    /// Whether any fault was ever seen (else [`FenceState::success`] has
    /// nothing to do, and the hot path skips reading the clock for it).
    pub fn has_history(&self) -> bool {
        self.last_fault.is_some() || self.probation
    }

    /// The operator intervened (reload, reset): forget everything.
    pub fn reset(&mut self) {
        *self = Self::new(self.policy.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FencePolicy {
        FencePolicy {
            max_faults: 3,
            window: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
        }
    }

    #[test]
    fn isolated_faults_only_rebuild() {
        let mut f = FenceState::new(policy());
        let t0 = Instant::now();
        assert_eq!(f.fault(t0), FaultOutcome::Rebuild);
        assert_eq!(f.fault(t0 + Duration::from_secs(11)), FaultOutcome::Rebuild);
        assert_eq!(f.fault(t0 + Duration::from_secs(22)), FaultOutcome::Rebuild);
        assert_eq!(f.admit(t0 + Duration::from_secs(22)), Admission::Admit);
    }

    #[test]
    fn repeated_faults_fence_with_doubling_backoff() {
        let mut f = FenceState::new(policy());
        let t0 = Instant::now();
        f.fault(t0);
        f.fault(t0);
        assert_eq!(f.fault(t0), FaultOutcome::Fence(Duration::from_secs(1)));
        assert_eq!(f.admit(t0 + Duration::from_millis(500)), Admission::Fenced(Duration::from_millis(500)));
        assert!(f.is_fenced(t0));
        // After the backoff one command is let through; a fault fences again, longer.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(f.admit(t1), Admission::Probation);
        assert_eq!(f.fault(t1), FaultOutcome::Fence(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(f.admit(t2), Admission::Probation);
        assert_eq!(f.fault(t2), FaultOutcome::Fence(Duration::from_secs(4)));
        let t3 = t2 + Duration::from_secs(4);
        assert_eq!(f.admit(t3), Admission::Probation);
        assert_eq!(f.fault(t3), FaultOutcome::Fence(Duration::from_secs(4)), "capped at max_backoff");
    }

    #[test]
    fn a_quiet_window_after_probation_resets_the_backoff() {
        let mut f = FenceState::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            f.fault(t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(f.admit(t1), Admission::Probation);
        f.success(t1);
        assert_eq!(f.admit(t1), Admission::Admit);
        // Still within a window of the last fault: the next fence is longer.
        for _ in 0..2 {
            f.fault(t1);
        }
        assert_eq!(f.fault(t1), FaultOutcome::Fence(Duration::from_secs(2)));
        let t1 = t1 + Duration::from_secs(2);
        assert_eq!(f.admit(t1), Admission::Probation);
        f.success(t1);
        f.success(t1 + Duration::from_secs(11));
        let t2 = t1 + Duration::from_secs(12);
        for _ in 0..2 {
            assert_eq!(f.fault(t2), FaultOutcome::Rebuild);
        }
        assert_eq!(f.fault(t2), FaultOutcome::Fence(Duration::from_secs(1)));
    }

    #[test]
    fn reset_lifts_the_fence() {
        let mut f = FenceState::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            f.fault(t0);
        }
        f.reset();
        assert_eq!(f.admit(t0), Admission::Admit);
    }
}
