//! The HPA controller's clock: every time it reads (recommendation and
//! scale-event ages, CPU initialization periods, condition and scale
//! times) comes from a [`Clock`], so tests drive time by hand.

use std::sync::Mutex;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Where the controller reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug)]
pub struct FakeClock(Mutex<Timestamp>);

impl FakeClock {
    /// A clock standing at `at`.
    pub fn at(at: Timestamp) -> Self {
        FakeClock(Mutex::new(at))
    }

    /// Moves the clock `secs` seconds on.
    pub fn advance(&self, secs: i64) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t = shift(*t, secs);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `t` moved `secs` seconds (negative: back), clamped to jiff's range.
pub(crate) fn shift(t: Timestamp, secs: i64) -> Timestamp {
    shift_by(t, SignedDuration::from_secs(secs))
}

/// `t` moved by `d`, clamped to jiff's range.
pub(crate) fn shift_by(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}
