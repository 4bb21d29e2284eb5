//! The typed calls of [`QuotaClient`]: one per request of docs/protocol.md.

use crate::client::{CallOptions, QuotaClient};
use crate::codec::{self, Reply};
use crate::error::{Error, Result};
use crate::types::{
    BucketUsage, Component, Denied, Fleet, HelloOk, LeaseResult, Period, QuotaAlteration, QuotaEntry, QuotaKey, Record,
    RecordResult, UsageQuery, Violations, ViolationsQuery,
};

impl QuotaClient {
    /// Says Hello again on the connection (with the connection's client name and token).
    pub async fn hello(&self) -> Result<HelloOk> {
        let o = self.options();
        let body = codec::HelloBody {
            ty: "Hello",
            protocol_version: 1,
            client_name: o.client_name.as_deref(),
            token: o.token.as_deref(),
        };
        self.call_body(&body, CallOptions::default()).await?.into_hello()
    }

    pub async fn ping(&self) -> Result<()> {
        match self.call_body(&codec::TypeOnly { ty: "Ping" }, CallOptions::default()).await? {
            Reply::Pong {} => Ok(()),
            other => Err(other.unexpected("Pong")),
        }
    }

    /// A produce of `r.amount` bytes by (`r.user`, `r.client_id`).
    pub async fn record_produce(&self, r: Record<'_>, opts: CallOptions) -> Result<RecordResult> {
        self.record("RecordProduce", r, opts).await
    }

    /// A fetch of `r.amount` bytes, held against `r.consumer_group`'s quota too when it has one.
    pub async fn record_consume(&self, r: Record<'_>, opts: CallOptions) -> Result<RecordResult> {
        self.record("RecordConsume", r, opts).await
    }

    /// `r.amount` requests (0 means 1), for request_rate.
    pub async fn record_request(&self, r: Record<'_>, opts: CallOptions) -> Result<RecordResult> {
        self.record("RecordRequest", r, opts).await
    }

    /// `r.amount` units (0 means 1) of the named `resource` (declared in the sidecar's `quotas.resources`),
    /// held against `<resource>_rate`; `r.consumer_group` is ignored. Answered like the other record calls,
    /// Throttled naming [`QuotaKey::ResourceRate`]. An undeclared resource is `INVALID_REQUEST` from the sidecar;
    /// a name outside the grammar (1-32 of `a-z`, `0-9`, `_`, starting with a letter) or an amount above 2^53-1
    /// fails here, unsent.
    pub async fn record_usage(&self, resource: &str, r: Record<'_>, opts: CallOptions) -> Result<RecordResult> {
        if !is_resource_name(resource) {
            return Err(Error::InvalidRequest(
                "resource must be 1-32 characters of a-z, 0-9 and _, starting with a letter".into(),
            ));
        }
        if r.amount > MAX_INT {
            return Err(Error::InvalidRequest("amount must be an integer from 1 to 2^53-1".into()));
        }
        let body = codec::RecordUsageBody {
            ty: "RecordUsage",
            resource,
            user: r.user,
            client_id: r.client_id,
            amount: r.amount.max(1),
            admit: r.admit,
        };
        let raw = self.call_raw(&body, opts).await?;
        if raw.as_ref() == codec::OK_BODY {
            return Ok(RecordResult::OK);
        }
        record_result(codec::decode_reply(&raw)?, Some(resource))
    }

    async fn record(&self, ty: &'static str, r: Record<'_>, opts: CallOptions) -> Result<RecordResult> {
        let body = codec::RecordBody {
            ty,
            user: r.user,
            client_id: r.client_id,
            consumer_group: if ty == "RecordConsume" { r.consumer_group } else { None },
            bytes: if ty == "RecordRequest" { None } else { Some(r.amount) },
            count: if ty == "RecordRequest" { Some(r.amount.max(1)) } else { None },
            admit: r.admit,
        };
        let raw = self.call_raw(&body, opts).await?;
        // Nearly every answer is Ok, always the same bytes: no decoding.
        if raw.as_ref() == codec::OK_BODY {
            return Ok(RecordResult::OK);
        }
        record_result(codec::decode_reply(&raw)?, None)
    }

    /// The configured quotas of every entity (empty `entities`), or of those containing any listed component.
    pub async fn describe_quotas(&self, entities: &[Component]) -> Result<Vec<QuotaEntry>> {
        let body = codec::EntitiesBody { ty: "DescribeQuotas", entities };
        match self.call_body(&body, CallOptions::default()).await? {
            Reply::QuotasDescribed { entries } => Ok(entries),
            other => Err(other.unexpected("QuotasDescribed")),
        }
    }

    /// Applies every alteration or none (durable before the answer); the number applied.
    pub async fn alter_quotas(&self, alterations: &[QuotaAlteration], validate_only: bool) -> Result<u64> {
        let body = codec::AlterBody { ty: "AlterQuotas", alterations, validate_only };
        match self.call_body(&body, CallOptions::default()).await? {
            Reply::QuotasAltered { altered_count } => Ok(altered_count),
            other => Err(other.unexpected("QuotasAltered")),
        }
    }

    /// The live buckets, highest first.
    pub async fn describe_usage(&self, q: &UsageQuery) -> Result<Vec<BucketUsage>> {
        let body =
            codec::UsageBody { ty: "DescribeUsage", entities: &q.entities, top: q.top, sort_by: q.sort_by.as_deref() };
        match self.call_body(&body, CallOptions::default()).await? {
            Reply::UsageDescribed { buckets } => Ok(buckets),
            other => Err(other.unexpected("UsageDescribed")),
        }
    }

    /// Clears the usage and debt of the listed principals' buckets; how many were reset.
    pub async fn reset_usage(&self, entities: &[Component]) -> Result<u64> {
        let body = codec::EntitiesBody { ty: "ResetUsage", entities };
        match self.call_body(&body, CallOptions::default()).await? {
            Reply::UsageReset { buckets } => Ok(buckets),
            other => Err(other.unexpected("UsageReset")),
        }
    }

    /// Takes an in-flight lease (max_in_flight), or learns how long until one frees up.
    pub async fn acquire_lease(
        &self,
        user: Option<&str>,
        client_id: Option<&str>,
        ttl_ms: Option<u64>,
        opts: CallOptions,
    ) -> Result<LeaseResult> {
        let body = codec::LeaseBody { ty: "AcquireLease", user, client_id, ttl_ms };
        match self.call_body(&body, opts).await? {
            Reply::LeaseGranted { lease_id, ttl_ms } => Ok(LeaseResult::Granted { lease_id, ttl_ms }),
            Reply::Throttled { throttle_time_ms, entity, .. } => {
                Ok(LeaseResult::Throttled { throttle_time_ms, entity })
            }
            other => Err(other.unexpected("LeaseGranted or Throttled")),
        }
    }

    /// Ends a lease (idempotent).
    pub async fn release_lease(&self, lease_id: &str, opts: CallOptions) -> Result<()> {
        match self.call_body(&codec::ReleaseBody { ty: "ReleaseLease", lease_id }, opts).await? {
            Reply::Ok {} => Ok(()),
            other => Err(other.unexpected("Ok")),
        }
    }

    /// The violation log: episode starts and ends, oldest first, with a summary of all that match.
    pub async fn describe_violations(&self, q: &ViolationsQuery) -> Result<Violations> {
        let body = codec::ViolationsBody {
            ty: "DescribeViolations",
            since_ms: q.since_ms,
            entities: q.entities.as_deref(),
            types: q.types.as_deref(),
            limit: q.limit,
        };
        match self.call_body(&body, CallOptions::default()).await? {
            Reply::ViolationsDescribed { events, summary } => Ok(Violations { events, summary }),
            other => Err(other.unexpected("ViolationsDescribed")),
        }
    }

    /// The fleet as the sidecar saw it at its last heartbeat.
    pub async fn describe_fleet(&self) -> Result<Fleet> {
        match self.call_body(&codec::TypeOnly { ty: "DescribeFleet" }, CallOptions::default()).await? {
            Reply::FleetDescribed(f) => Ok(f),
            other => Err(other.unexpected("FleetDescribed")),
        }
    }

    async fn call_body<T: serde::Serialize>(&self, body: &T, opts: CallOptions) -> Result<Reply> {
        let raw = self.call_raw(body, opts).await?;
        codec::decode_reply(&raw)
    }
}

/// The largest amount the protocol carries (2^53-1).
const MAX_INT: u64 = (1 << 53) - 1;

fn is_resource_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A record reply; `resource`: the call was RecordUsage, so Throttled must name `<resource>_rate`.
fn record_result(reply: Reply, resource: Option<&str>) -> Result<RecordResult> {
    match reply {
        Reply::Ok {} => Ok(RecordResult::OK),
        Reply::Throttled { throttle_time_ms, quota_type, entity, recorded, period } => {
            let key = match resource {
                None => QuotaKey::parse(&quota_type),
                Some(name) => quota_type
                    .strip_suffix("_rate")
                    .filter(|stem| *stem == name)
                    .map(|stem| QuotaKey::ResourceRate(stem.to_owned())),
            };
            let Some(key) = key else {
                let shown: String = quota_type.chars().take(64).collect();
                return Err(Error::UnexpectedReply(format!("unknown quota_type {shown}")));
            };
            let period = match period.as_deref() {
                None => Period::Second,
                Some(p) => Period::parse(p).ok_or_else(|| {
                    let shown: String = p.chars().take(64).collect();
                    Error::UnexpectedReply(format!("unknown period {shown}"))
                })?,
            };
            Ok(RecordResult {
                throttle_time_ms,
                quota_type: Some(key),
                entity: Some(entity),
                recorded,
                denied: None,
                period: Some(period),
            })
        }
        Reply::Denied { entity, reason } => Ok(RecordResult {
            throttle_time_ms: 0,
            quota_type: None,
            entity: None,
            recorded: false,
            denied: Some(Denied { entity, reason }),
            period: None,
        }),
        other => Err(other.unexpected("Ok, Throttled or Denied")),
    }
}
