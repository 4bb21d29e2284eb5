//! `BrokerQuotas`: what a broker calls on each client request. It never stalls the broker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{BreakerOptions, CircuitBreaker, Clock};
use crate::client::{CallOptions, QuotaClient};
use crate::error::{Error, Result};
use crate::types::{Record, RecordResult};

/// What a call answers for a blocked principal: reject the request (Kafka: an authorization or quota error to
/// the client), do not delay it.
pub const DENIED: i64 = -1;

type OnError = Arc<dyn Fn(&Error) + Send + Sync>;
type OnDenied = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Builds a [`BrokerQuotas`] over a connected [`QuotaClient`].
#[derive(Clone)]
pub struct BrokerQuotasBuilder {
    client: QuotaClient,
    record_deadline: Duration,
    breaker: BreakerOptions,
    clock: Option<Clock>,
    on_error: Option<OnError>,
    on_denied: Option<OnDenied>,
}

impl std::fmt::Debug for BrokerQuotasBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerQuotasBuilder")
            .field("record_deadline", &self.record_deadline)
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl BrokerQuotasBuilder {
    /// A record call not answered within this is answered 0 (fail open). Default 25 ms.
    pub fn record_deadline(mut self, d: Duration) -> Self {
        self.record_deadline = d;
        self
    }
    /// When the breaker opens and when it probes again. Default 5 failures, 1 s.
    pub fn breaker(mut self, b: BreakerOptions) -> Self {
        self.breaker = b;
        self
    }
    /// The breaker's time source (tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Told about each call answered 0 because the sidecar could not answer (rate-limit your logging).
    pub fn on_error(mut self, f: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(f));
        self
    }
    /// Told about each call answered [`DENIED`]: the blocked entity and the reason an operator gave.
    pub fn on_denied(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.on_denied = Some(Arc::new(f));
        self
    }
    pub fn build(self) -> BrokerQuotas {
        let breaker = match self.clock {
            Some(c) => CircuitBreaker::with_clock(self.breaker, c),
            None => CircuitBreaker::new(self.breaker),
        };
        BrokerQuotas {
            inner: Arc::new(Inner {
                call: CallOptions { timeout: Some(self.record_deadline), fail_fast: true },
                client: self.client,
                breaker,
                failures: AtomicU64::new(0),
                short_circuited: AtomicU64::new(0),
                on_error: self.on_error,
                on_denied: self.on_denied,
            }),
        }
    }
}

/// Records each client request of a broker and answers how many milliseconds to delay that client (0 = none),
/// the way a Kafka broker applies `throttle_time_ms`; [`DENIED`] (-1) for a blocked principal.
///
/// It never stalls the broker. A call answers within `record_deadline`, or 0. Without a connection it answers
/// 0 at once (the client reconnects in the background) instead of waiting for a reconnect. After
/// `failure_threshold` consecutive failures (timeouts, lost connections, an overloaded sidecar) the breaker
/// opens and calls answer 0 at once, without being sent; after `reset_timeout` one call probes the sidecar and,
/// if it answers, closes the breaker. Every 0 given for a failure is counted in [`failures`](Self::failures).
/// Cheap to clone; clones share the breaker and counters.
#[derive(Clone)]
pub struct BrokerQuotas {
    inner: Arc<Inner>,
}

struct Inner {
    client: QuotaClient,
    call: CallOptions,
    breaker: CircuitBreaker,
    failures: AtomicU64,
    short_circuited: AtomicU64,
    on_error: Option<OnError>,
    on_denied: Option<OnDenied>,
}

/// Releases the probe if its caller goes away (drops the future) before the answer, so the breaker never
/// stays half-open waiting for a probe nobody will finish.
struct ProbeGuard<'a> {
    inner: &'a Inner,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.breaker.release_probe();
        }
    }
}

impl std::fmt::Debug for BrokerQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerQuotas")
            .field("client", &self.inner.client)
            .field("breaker", &self.inner.breaker)
            .field("failures", &self.failures())
            .finish()
    }
}

impl BrokerQuotas {
    /// Defaults: a 25 ms record deadline, a breaker of 5 failures and 1 s.
    pub fn new(client: QuotaClient) -> Self {
        Self::builder(client).build()
    }

    pub fn builder(client: QuotaClient) -> BrokerQuotasBuilder {
        BrokerQuotasBuilder {
            client,
            record_deadline: Duration::from_millis(25),
            breaker: BreakerOptions::default(),
            clock: None,
            on_error: None,
            on_denied: None,
        }
    }

    pub fn client(&self) -> &QuotaClient {
        &self.inner.client
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// Calls answered 0 because the sidecar could not answer (failed, late, or not tried: breaker open).
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Of those, the calls not sent because the breaker was open.
    pub fn short_circuited(&self) -> u64 {
        self.inner.short_circuited.load(Ordering::Relaxed)
    }

    /// A produce request of `bytes` from (user, client_id): the delay in ms, 0, or [`DENIED`].
    pub async fn produce(&self, user: Option<&str>, client_id: Option<&str>, bytes: u64) -> i64 {
        let r = Record { user, client_id, amount: bytes, ..Record::default() };
        self.run(|c, o| async move { c.record_produce(r, o).await }).await
    }

    /// A fetch of `bytes` by a consumer, held against its group's quota too when it has one.
    pub async fn fetch(
        &self,
        user: Option<&str>,
        client_id: Option<&str>,
        consumer_group: Option<&str>,
        bytes: u64,
    ) -> i64 {
        let r = Record { user, client_id, consumer_group, amount: bytes, admit: false };
        self.run(|c, o| async move { c.record_consume(r, o).await }).await
    }

    /// Any request, for request_rate.
    pub async fn request(&self, user: Option<&str>, client_id: Option<&str>) -> i64 {
        let r = Record { user, client_id, amount: 1, ..Record::default() };
        self.run(|c, o| async move { c.record_request(r, o).await }).await
    }

    /// `amount` units (0 means 1) of a named resource (orders, API calls: declared in the sidecar's
    /// `quotas.resources`), for `<resource>_rate`: the delay in ms, 0, or [`DENIED`], as for the other calls.
    pub async fn usage(&self, user: Option<&str>, client_id: Option<&str>, resource: &str, amount: u64) -> i64 {
        let r = Record { user, client_id, amount, ..Record::default() };
        self.run(|c, o| async move { c.record_usage(resource, r, o).await }).await
    }

    async fn run<'a, F, Fut>(&'a self, call: F) -> i64
    where
        F: FnOnce(&'a QuotaClient, CallOptions) -> Fut,
        Fut: std::future::Future<Output = Result<RecordResult>>,
    {
        let inner = &*self.inner;
        let Some(probe) = inner.breaker.acquire() else {
            inner.failures.fetch_add(1, Ordering::Relaxed);
            inner.short_circuited.fetch_add(1, Ordering::Relaxed);
            // Answered without any I/O: a caller looping on calls would never yield, and would starve the
            // runtime (the reader task, the timers, the probe that closes the breaker). Spend coop budget.
            tokio::task::coop::consume_budget().await;
            return 0;
        };
        let mut guard = ProbeGuard { inner, armed: probe };
        let result = call(&inner.client, inner.call).await;
        guard.armed = false;
        match result {
            Ok(r) => {
                inner.breaker.success();
                match r.denied {
                    None => i64::try_from(r.throttle_time_ms).unwrap_or(i64::MAX),
                    Some(d) => {
                        if let Some(f) = &inner.on_denied {
                            f(&d.entity, &d.reason);
                        }
                        DENIED
                    }
                }
            }
            Err(e) => {
                inner.failures.fetch_add(1, Ordering::Relaxed);
                // Fail-fast errors (no connection, max_pending) come back without I/O too.
                tokio::task::coop::consume_budget().await;
                // A non-retriable error is a bad call, not a sick sidecar: it does not move the breaker.
                if e.is_retriable() {
                    inner.breaker.failure();
                } else {
                    inner.breaker.success();
                }
                if let Some(f) = &inner.on_error {
                    f(&e);
                }
                0
            }
        }
    }
}
