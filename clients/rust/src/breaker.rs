//! A circuit breaker (closed / open / half-open) with an injected clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// closed: calls pass. open: calls fail at once. half-open: one probe call tests recovery, the others fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// When the breaker opens and when it probes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOptions {
    /// Consecutive failures that open the breaker. Default 5.
    pub failure_threshold: u32,
    /// Time open before one probe is let through. Default 1 s.
    pub reset_timeout: Duration,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        Self { failure_threshold: 5, reset_timeout: Duration::from_millis(1000) }
    }
}

/// The time source; tests pass one they move by hand.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Instant,
    probing: bool,
    opened: u64,
}

/// After `failure_threshold` consecutive failures it opens and calls fail at once (no timeout to wait out);
/// after `reset_timeout` the next call is a probe, and only one probe is out at a time. The probe's success
/// closes the breaker, its failure opens it for another `reset_timeout`.
pub struct CircuitBreaker {
    options: BreakerOptions,
    clock: Clock,
    /// Closed with no failure counted: the state of nearly every call, read without the lock.
    healthy: AtomicBool,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker").field("options", &self.options).field("state", &self.state()).finish()
    }
}

impl CircuitBreaker {
    pub fn new(options: BreakerOptions) -> Self {
        Self::with_clock(options, Arc::new(Instant::now))
    }

    pub fn with_clock(options: BreakerOptions, clock: Clock) -> Self {
        let now = clock();
        Self {
            options,
            clock,
            healthy: AtomicBool::new(true),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: now,
                probing: false,
                opened: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn options(&self) -> BreakerOptions {
        self.options
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Times the breaker opened.
    pub fn opened(&self) -> u64 {
        self.lock().opened
    }

    /// Whether a call may go out now; `true` in half-open state makes that call the probe.
    pub fn allow(&self) -> bool {
        self.acquire().is_some()
    }

    /// `None`: the call may not go out; `Some(true)`: it goes out as the probe.
    pub(crate) fn acquire(&self) -> Option<bool> {
        if self.healthy.load(Ordering::Acquire) {
            return Some(false);
        }
        let mut b = self.lock();
        match b.state {
            BreakerState::Closed => return Some(false),
            BreakerState::Open => {
                if (self.clock)().saturating_duration_since(b.opened_at) < self.options.reset_timeout {
                    return None;
                }
                b.state = BreakerState::HalfOpen;
            }
            BreakerState::HalfOpen => {}
        }
        if b.probing {
            return None;
        }
        b.probing = true;
        Some(true)
    }

    /// The probe was abandoned unanswered (its caller went away): the next call probes instead.
    pub(crate) fn release_probe(&self) {
        let mut b = self.lock();
        if b.state == BreakerState::HalfOpen {
            b.probing = false;
        }
    }

    pub fn success(&self) {
        if self.healthy.load(Ordering::Acquire) {
            return;
        }
        let mut b = self.lock();
        b.failures = 0;
        b.probing = false;
        b.state = BreakerState::Closed;
        self.healthy.store(true, Ordering::Release);
    }

    pub fn failure(&self) {
        let mut b = self.lock();
        self.healthy.store(false, Ordering::Release);
        b.probing = false;
        b.failures += 1;
        if b.state == BreakerState::HalfOpen || b.failures >= self.options.failure_threshold {
            if b.state != BreakerState::Open {
                b.opened += 1;
            }
            b.state = BreakerState::Open;
            b.opened_at = (self.clock)();
            b.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let n = Arc::clone(&now);
        (Arc::new(move || *n.lock().unwrap()), now)
    }

    #[test]
    fn opens_after_threshold_probes_once_and_closes_on_success() {
        let (clock, now) = manual();
        let b = CircuitBreaker::with_clock(
            BreakerOptions { failure_threshold: 3, reset_timeout: Duration::from_millis(100) },
            clock,
        );
        for _ in 0..2 {
            assert!(b.allow());
            b.failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opened(), 1);
        assert!(!b.allow(), "open: calls fail at once");
        *now.lock().unwrap() += Duration::from_millis(99);
        assert!(!b.allow(), "still within reset_timeout");
        *now.lock().unwrap() += Duration::from_millis(1);
        assert!(b.allow(), "the probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow(), "one probe at a time");
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
    }

    #[test]
    fn a_failed_probe_reopens_for_another_reset_timeout() {
        let (clock, now) = manual();
        let b = CircuitBreaker::with_clock(
            BreakerOptions { failure_threshold: 1, reset_timeout: Duration::from_millis(100) },
            clock,
        );
        b.failure();
        *now.lock().unwrap() += Duration::from_millis(100);
        assert!(b.allow());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opened(), 2);
        *now.lock().unwrap() += Duration::from_millis(50);
        assert!(!b.allow());
    }

    #[test]
    fn success_resets_the_failure_count() {
        let b = CircuitBreaker::new(BreakerOptions { failure_threshold: 2, reset_timeout: Duration::from_secs(1) });
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
