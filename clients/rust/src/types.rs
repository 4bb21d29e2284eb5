//! What the calls take and return (docs/protocol.md, "Requests and replies").

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::codec::int;

/// One part of an entity, `[entity_type, name]`: `entity_type` is `user`, `client-id`, `consumer-group`,
/// `default` or `tier`; a `None` name is the `<default>` entity of that type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Component(pub String, pub Option<String>);

impl Component {
    pub fn user(name: impl Into<String>) -> Self {
        Self("user".into(), Some(name.into()))
    }
    pub fn client_id(name: impl Into<String>) -> Self {
        Self("client-id".into(), Some(name.into()))
    }
    pub fn consumer_group(name: impl Into<String>) -> Self {
        Self("consumer-group".into(), Some(name.into()))
    }
    pub fn tier(name: impl Into<String>) -> Self {
        Self("tier".into(), Some(name.into()))
    }
    /// `[type, null]`: the `<default>` entity of `entity_type` (as a filter: any entity with that part).
    pub fn default_of(entity_type: impl Into<String>) -> Self {
        Self(entity_type.into(), None)
    }
    /// `["default", null]`: the global default.
    pub fn global_default() -> Self {
        Self("default".into(), None)
    }
}

/// An entity: one component, or a user and a client-id.
pub type Entity = Vec<Component>;

/// The rate a record call is throttled on: one of the three built-in keys, or `<resource>_rate` of a named
/// resource ([`QuotaClient::record_usage`](crate::QuotaClient::record_usage)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaKey {
    ProduceBytesRate,
    ConsumeBytesRate,
    RequestRate,
    /// `<name>_rate` of a resource declared in the sidecar's `quotas.resources`; holds the resource's name.
    ResourceRate(String),
}

impl QuotaKey {
    /// The key as the wire writes it, e.g. `request_rate` or `orders_rate`.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::ProduceBytesRate => "produce_bytes_rate".into(),
            Self::ConsumeBytesRate => "consume_bytes_rate".into(),
            Self::RequestRate => "request_rate".into(),
            Self::ResourceRate(name) => format!("{name}_rate").into(),
        }
    }

    /// One of the three built-in keys (a resource's key is known only with its call).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "produce_bytes_rate" => Some(Self::ProduceBytesRate),
            "consume_bytes_rate" => Some(Self::ConsumeBytesRate),
            "request_rate" => Some(Self::RequestRate),
            _ => None,
        }
    }
}

/// The period of the rate that binds a Throttled answer: a key may carry several rates (`100/s` and
/// `10000/d`), one bucket per period; the longest wait wins and the reply names its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Per second: the wire leaves `period` out.
    Second,
    Minute,
    Hour,
    Day,
}

impl Period {
    /// The unit as the wire and the rate grammar write it: `s`, `min`, `h`, `d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "min",
            Self::Hour => "h",
            Self::Day => "d",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "s" => Some(Self::Second),
            "min" => Some(Self::Minute),
            "h" => Some(Self::Hour),
            "d" => Some(Self::Day),
            _ => None,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// A quota's value: a limit, `"unlimited"`, or a name (a tier's name for key `tier`, a reason for `blocked`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaValue {
    Limit(u64),
    Unlimited,
    Text(String),
}

impl Serialize for QuotaValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Limit(n) => s.serialize_u64(*n),
            Self::Unlimited => s.serialize_str("unlimited"),
            Self::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for QuotaValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = QuotaValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<QuotaValue, E> {
                Ok(QuotaValue::Limit(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<QuotaValue, E> {
                u64::try_from(v).map(QuotaValue::Limit).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<QuotaValue, E> {
                int::from_f64(v).map(QuotaValue::Limit).ok_or_else(|| E::custom("not an integer"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QuotaValue, E> {
                Ok(if v == "unlimited" { QuotaValue::Unlimited } else { QuotaValue::Text(v.to_owned()) })
            }
        }
        d.deserialize_any(V)
    }
}

/// One change of AlterQuotas. `quota_value: None` removes the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaAlteration {
    pub entity: Entity,
    pub quota_key: String,
    pub quota_value: Option<QuotaValue>,
    /// `Some(true)`: measured and counted, never enforced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<bool>,
}

impl QuotaAlteration {
    /// Sets `quota_key` of `entity` to `value` (`None` removes it).
    pub fn new(entity: Entity, quota_key: impl Into<String>, value: Option<QuotaValue>) -> Self {
        Self { entity, quota_key: quota_key.into(), quota_value: value, shadow: None }
    }
}

/// One configured entity, as DescribeQuotas returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QuotaEntry {
    pub entity: Entity,
    pub quotas: BTreeMap<String, QuotaValue>,
    /// Keys whose values are shadow (measured, not enforced).
    #[serde(default)]
    pub shadow: Vec<String>,
}

/// A blocked principal: the bucket's display form and the reason an operator gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub entity: String,
    pub reason: String,
}

/// The answer to a record call: Ok (`throttle_time_ms` 0), Throttled, or Denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    /// How long to delay (record mode) or refuse (admit mode) the client; 0 for Ok and Denied.
    pub throttle_time_ms: u64,
    /// Throttled only: the bucket that needs the longest wait.
    pub quota_type: Option<QuotaKey>,
    /// Throttled only: that bucket's display form, e.g. `user:alice/client-id:app-1`.
    pub entity: Option<String>,
    /// Whether the usage was recorded (false only for a refused admit call, and for Denied).
    pub recorded: bool,
    /// Set when the principal is blocked: reject the request.
    pub denied: Option<Denied>,
    /// Throttled only: the period of the rate that needs the longest wait ([`Period::Second`] when the reply
    /// names none).
    pub period: Option<Period>,
}

impl RecordResult {
    /// The Ok answer.
    pub const OK: RecordResult = RecordResult {
        throttle_time_ms: 0,
        quota_type: None,
        entity: None,
        recorded: true,
        denied: None,
        period: None,
    };
}

/// The principal and amount of a record call. Absent names are left out of the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub user: Option<&'a str>,
    pub client_id: Option<&'a str>,
    /// RecordConsume only.
    pub consumer_group: Option<&'a str>,
    /// Bytes (produce, consume) or the request count (RecordRequest; 0 means the default, 1).
    pub amount: u64,
    /// Admit mode: admitted only if it fits; a refused call records nothing.
    pub admit: bool,
}

/// The answer to AcquireLease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseResult {
    Granted {
        lease_id: String,
        ttl_ms: u64,
    },
    /// The group holds `max_in_flight` leases: retry after `throttle_time_ms`.
    Throttled {
        throttle_time_ms: u64,
        entity: String,
    },
}

/// One live bucket (DescribeUsage).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BucketUsage {
    pub entity: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub consumer_group: Option<String>,
    pub quota_type: String,
    pub rate: f64,
    #[serde(deserialize_with = "int::u64")]
    pub limit: u64,
    pub utilization: f64,
    #[serde(deserialize_with = "int::u64")]
    pub throttled_total: u64,
    #[serde(deserialize_with = "int::u64")]
    pub last_seen_ms: u64,
}

/// One event of the violation log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ViolationEvent {
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub entity: String,
    pub quota_type: Option<String>,
    pub detail: String,
    #[serde(deserialize_with = "int::u64")]
    pub count: u64,
    #[serde(default)]
    pub reported_by: Option<String>,
}

/// An entity and how many events name it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EntityCount {
    pub entity: String,
    #[serde(deserialize_with = "int::u64")]
    pub count: u64,
}

/// Totals over every event that matched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ViolationSummary {
    #[serde(deserialize_with = "int::u64")]
    pub total: u64,
    pub by_type: BTreeMap<String, u64>,
    pub top_entities: Vec<EntityCount>,
}

/// DescribeViolations' reply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Violations {
    pub events: Vec<ViolationEvent>,
    pub summary: ViolationSummary,
}

/// Filters of DescribeViolations; `Default` asks for everything (the server's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViolationsQuery {
    /// Events at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    pub entities: Option<Vec<Component>>,
    /// Violation types, e.g. `RATE_LIMIT_EXCEEDED`.
    pub types: Option<Vec<String>>,
    /// At most this many events (1..10000; the server's default 100).
    pub limit: Option<u64>,
}

/// Filters of DescribeUsage; `Default` is every bucket, top 100 by utilization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    pub entities: Vec<Component>,
    pub top: Option<u64>,
    /// `"utilization"` or `"rate"`.
    pub sort_by: Option<String>,
}

/// One sidecar of a fleet (DescribeFleet).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FleetSidecar {
    pub node_id: String,
    #[serde(deserialize_with = "int::i64")]
    pub seen_ms_ago: i64,
    #[serde(deserialize_with = "int::i64")]
    pub sync_lag_ms: i64,
    pub breaker: String,
    #[serde(deserialize_with = "int::u64")]
    pub buckets: u64,
    #[serde(deserialize_with = "int::u64")]
    pub queued: u64,
    #[serde(deserialize_with = "int::u64")]
    pub config_version: u64,
    #[serde(deserialize_with = "int::u64")]
    pub sync_interval_ms: u64,
    pub settings: String,
    pub instance: String,
}

/// The fleet as the sidecar saw it at its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Fleet {
    pub enabled: bool,
    pub node_id: Option<String>,
    pub backend: Option<String>,
    pub breaker: Option<String>,
    #[serde(deserialize_with = "int::u64")]
    pub live: u64,
    #[serde(deserialize_with = "int::i64")]
    pub sync_lag_ms: i64,
    pub last_error: Option<String>,
    pub sidecars: Vec<FleetSidecar>,
}

/// Hello's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOk {
    pub protocol_version: u64,
    pub server_version: String,
}
