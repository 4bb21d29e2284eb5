//! Rust client for the [rivven](https://github.com/rivven) quota sidecar.
//!
//! [`QuotaClient`] is one pipelined connection (TCP or TLS) with typed record and admin calls;
//! [`BrokerQuotas`] wraps it for a broker's request path: a deadline per call (default 25 ms) after which it
//! answers 0, a circuit breaker, background reconnect, bounded in-flight calls, and [`DENIED`] (-1) for a
//! blocked principal. The wire is docs/protocol.md; errors carry a code of its one error table.
//!
//! The README follows (its example is compiled as a doc test).
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

mod breaker;
mod broker;
mod calls;
mod client;
mod codec;
mod conn;
mod deadlines;
mod error;
mod options;
mod types;

pub use breaker::{BreakerOptions, BreakerState, CircuitBreaker, Clock};
pub use broker::{BrokerQuotas, BrokerQuotasBuilder, DENIED};
pub use client::{CallOptions, QuotaClient};
pub use error::{Error, ErrorCode, Result};
pub use options::{ClientBuilder, ClientOptions, TlsOptions};
pub use types::{
    BucketUsage, Component, Denied, Entity, EntityCount, Fleet, FleetSidecar, HelloOk, LeaseResult, Period,
    QuotaAlteration, QuotaEntry, QuotaKey, QuotaValue, Record, RecordResult, UsageQuery, ViolationEvent,
    ViolationSummary, Violations, ViolationsQuery,
};
