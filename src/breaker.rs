//! [`CircuitBreaker`]: once the store has failed a few times in a row, later requests
//! fail at once instead of each waiting out the store's timeout; one probe at a time
//! finds out when it answers again.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Circuit breaker settings for the store calls of one [`SessionMiddleware`]
/// (see [`SessionMiddlewareBuilder::circuit_breaker`]).
///
/// After [`failures`](Self::failures) store calls in a row have failed (a backend error
/// or timeout: not a malformed record), the breaker *opens*: store calls fail at once
/// with [`StoreError::Unavailable`]. Every [`cool_down`](Self::cool_down) a probe (a
/// `load` of an ID no session has, in the background: no request waits for it) asks
/// the store: when it answers, the breaker closes and service resumes; when it fails or
/// takes more than a second, the breaker stays open for another cool-down. A call that
/// was already in flight and succeeds closes it too.
///
/// The default, 3 failures and a 250 ms cool-down, answers a frozen store in
/// milliseconds after the first few timeouts, and resumes service within the cool-down
/// (plus one round trip) of the store answering again.
///
/// [`SessionMiddleware`]: crate::SessionMiddleware
/// [`SessionMiddlewareBuilder::circuit_breaker`]: crate::SessionMiddlewareBuilder::circuit_breaker
/// [`StoreError::Unavailable`]: crate::store::StoreError::Unavailable
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub(crate) failures: u32,
    pub(crate) cool_down: Duration,
    pub(crate) enabled: bool,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            failures: 3,
            cool_down: Duration::from_millis(250),
            enabled: true,
        }
    }
}

impl CircuitBreaker {
    /// The default breaker: opens after 3 failures in a row, probes every 250 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// No breaker: every request tries the store and waits out its timeout.
    pub fn off() -> Self {
        CircuitBreaker {
            enabled: false,
            ..Self::default()
        }
    }

    /// How many store calls in a row must fail before the breaker opens. Default 3;
    /// must be at least 1.
    pub fn failures(mut self, failures: u32) -> Self {
        self.failures = failures;
        self
    }

    /// How long the breaker stays open before a probe tries the store again. Default
    /// 250 ms; must not be zero.
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }
}

/// Whether a store call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The breaker is closed.
    Call,
    /// The breaker is open: fail at once.
    Reject,
    /// The breaker is open and a probe is due: fail at once, and start the probe
    /// (reported as [`Admit::Probe`]).
    StartProbe,
    /// The probe.
    Probe,
}

/// What a finished store call tells the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The store answered (a malformed record or an unsupported call counts: the store
    /// is up).
    Answered,
    /// The store failed or did not answer in time.
    Failed,
    /// The call was dropped before it finished (its request went away).
    Abandoned,
}

/// What changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    Opened,
    Closed,
}

/// The breaker's state, shared by every worker.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: CircuitBreaker,
    epoch: Instant,
    /// Store calls failed in a row.
    failed: AtomicU32,
    /// While open: 1 + until when (ms since `epoch`). 0 while closed.
    open_until: AtomicU64,
    probing: AtomicBool,
}

impl Breaker {
    pub(crate) fn new(settings: CircuitBreaker) -> Self {
        Breaker {
            settings,
            epoch: Instant::now(),
            failed: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    pub(crate) fn settings(&self) -> CircuitBreaker {
        self.settings
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn open_for_cool_down(&self) -> bool {
        let cool = u64::try_from(self.settings.cool_down.as_millis()).unwrap_or(u64::MAX);
        let until = self.now_ms().saturating_add(cool).saturating_add(1);
        self.open_until.swap(until, Ordering::AcqRel) == 0
    }

    /// Whether the breaker is closed (or off): `admit` would answer [`Admit::Call`],
    /// and asking changes nothing.
    pub(crate) fn is_closed(&self) -> bool {
        !self.settings.enabled || self.open_until.load(Ordering::Acquire) == 0
    }

    /// Whether a store call may start now.
    pub(crate) fn admit(&self) -> Admit {
        if !self.settings.enabled {
            return Admit::Call;
        }
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Admit::Call;
        }
        if self.now_ms().saturating_add(1) < until {
            return Admit::Reject;
        }
        match self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admit::StartProbe,
            Err(_) => Admit::Reject,
        }
    }

    /// Takes the outcome of a call `admit` let through.
    pub(crate) fn report(&self, admitted: Admit, report: Report) -> Change {
        if !self.settings.enabled || matches!(admitted, Admit::Reject | Admit::StartProbe) {
            return Change::None;
        }
        let change = match report {
            Report::Answered => {
                // Plain loads first: on the healthy path nothing is written.
                if self.failed.load(Ordering::Acquire) != 0 {
                    self.failed.store(0, Ordering::Release);
                }
                let was_open = self.open_until.load(Ordering::Acquire) != 0
                    && self.open_until.swap(0, Ordering::AcqRel) != 0;
                if was_open {
                    Change::Closed
                } else {
                    Change::None
                }
            }
            Report::Failed if admitted == Admit::Probe => {
                self.open_for_cool_down();
                Change::None
            }
            Report::Failed => {
                let failed = self.failed.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                if failed >= self.settings.failures && self.open_for_cool_down() {
                    Change::Opened
                } else {
                    Change::None
                }
            }
            Report::Abandoned => {
                if admitted == Admit::Probe {
                    self.open_for_cool_down();
                }
                Change::None
            }
        };
        if admitted == Admit::Probe {
            self.probing.store(false, Ordering::Release);
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cool_ms: u64) -> Breaker {
        let settings = CircuitBreaker::new()
            .failures(failures)
            .cool_down(Duration::from_millis(cool_ms));
        Breaker::new(settings)
    }

    fn call(b: &Breaker, report: Report) -> (Admit, Change) {
        let admitted = b.admit();
        (admitted, b.report(admitted, report))
    }

    #[test]
    fn opens_after_the_failures_in_a_row_and_a_success_resets_the_count() {
        let b = breaker(2, 60_000);
        assert_eq!(call(&b, Report::Failed), (Admit::Call, Change::None));
        assert_eq!(call(&b, Report::Answered), (Admit::Call, Change::None));
        assert_eq!(call(&b, Report::Failed), (Admit::Call, Change::None));
        assert_eq!(call(&b, Report::Failed), (Admit::Call, Change::Opened));
        assert_eq!(b.admit(), Admit::Reject);
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_through_and_its_success_closes() {
        let b = breaker(1, 0);
        assert_eq!(call(&b, Report::Failed).1, Change::Opened);
        assert_eq!(b.admit(), Admit::StartProbe);
        assert_eq!(b.admit(), Admit::Reject, "one probe at a time");
        assert_eq!(b.report(Admit::Probe, Report::Answered), Change::Closed);
        assert_eq!(b.admit(), Admit::Call);
    }

    #[test]
    fn a_failed_or_abandoned_probe_keeps_it_open_for_another_cool_down() {
        let b = breaker(1, 60_000);
        call(&b, Report::Failed);
        b.open_until.store(1, Ordering::Release); // the cool-down is over
        assert_eq!(b.admit(), Admit::StartProbe);
        assert_eq!(b.report(Admit::Probe, Report::Abandoned), Change::None);
        assert_eq!(b.admit(), Admit::Reject, "a new cool-down started");
        b.open_until.store(1, Ordering::Release);
        let due = b.admit();
        assert_eq!(
            due,
            Admit::StartProbe,
            "the abandoned probe released its turn"
        );
        b.report(Admit::Probe, Report::Failed);
        assert_eq!(b.admit(), Admit::Reject);
    }

    #[test]
    fn an_in_flight_call_that_succeeds_closes_it_and_off_never_opens() {
        let b = breaker(1, 60_000);
        let in_flight = b.admit();
        call(&b, Report::Failed);
        assert_eq!(b.report(in_flight, Report::Answered), Change::Closed);
        let off = Breaker::new(CircuitBreaker::off().failures(1));
        for _ in 0..3 {
            assert_eq!(call(&off, Report::Failed), (Admit::Call, Change::None));
        }
    }
}
