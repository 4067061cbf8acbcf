//! Keeping a CPU hog from starving the devices that share its core.
//!
//! Every handler call gets a short CPU slice ([`super::Limits::slice`]) and a
//! long budget. A call that outlives its slice is not normal command work;
//! its device thread is switched to `SCHED_IDLE` for the rest of the call, so
//! it runs only when no well-behaved thread wants the CPU, and is switched
//! back when the call returns. Returning from `SCHED_IDLE` needs
//! `CAP_SYS_NICE` (the daemon runs as root); where it is missing, the hog is
//! throttled instead: it sleeps one slice for every slice it runs.

use std::sync::OnceLock;
use std::time::Duration;

use nix::libc;

/// How the process keeps hogs in check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fairness {
    /// Demote the overrunning thread to `SCHED_IDLE` and restore it after.
    Demote,
    /// Sleep a slice per slice (no privilege to undo a demotion).
    Throttle,
}

/// A thread's scheduling before a demotion.
#[derive(Debug, Clone, Copy)]
pub struct Saved {
    policy: libc::c_int,
    priority: libc::c_int,
}

/// Switch the calling thread to `SCHED_IDLE`; `None` if that failed.
pub fn demote() -> Option<Saved> {
    // SAFETY: plain syscalls on the calling thread (pid 0) with a valid,
    // initialised sched_param.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        if policy < 0 {
            return None;
        }
        let mut param: libc::sched_param = std::mem::zeroed();
        if libc::sched_getparam(0, &mut param) != 0 {
            return None;
        }
        let idle = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) != 0 {
            return None;
        }
        Some(Saved { policy, priority: param.sched_priority })
    }
}

/// Undo [`demote`] on the calling thread.
pub fn restore(saved: Saved) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: saved.priority };
    // SAFETY: as in `demote`.
    if unsafe { libc::sched_setscheduler(0, saved.policy, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Which mechanism works in this process (probed once, on a scratch thread).
pub fn fairness() -> Fairness {
    static PROBED: OnceLock<Fairness> = OnceLock::new();
    *PROBED.get_or_init(|| {
        let works = std::thread::spawn(|| demote().is_some_and(|saved| restore(saved).is_ok())).join();
        let fairness = if works.unwrap_or(false) { Fairness::Demote } else { Fairness::Throttle };
        if fairness == Fairness::Throttle {
            tracing::warn!(
                "cannot leave SCHED_IDLE without CAP_SYS_NICE: handler calls that overrun their CPU slice are \
                 throttled instead of deprioritised"
            );
        }
        fairness
    })
}

/// The throttle's pause for one overrun slice.
pub fn throttle(slice: Duration) {
    std::thread::sleep(slice);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demotion_is_undone() {
        std::thread::spawn(|| {
            // SAFETY: reading the calling thread's policy.
            let before = unsafe { libc::sched_getscheduler(0) };
            let Some(saved) = demote() else { return };
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
            if restore(saved).is_ok() {
                assert_eq!(unsafe { libc::sched_getscheduler(0) }, before);
                assert_eq!(fairness(), Fairness::Demote);
            } else {
                assert_eq!(fairness(), Fairness::Throttle);
            }
        })
        .join()
        .unwrap();
    }
}
