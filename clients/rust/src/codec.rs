//! Frames and bodies: `length u32 BE | correlation_id u32 BE | one msgpack map` (docs/protocol.md).
//!
//! Bodies are written with rmp-serde in its named (map) form: by default it writes structs as arrays, which
//! the server refuses. Field order is declaration order; the record requests' encoding (a fixmap, keys `type`,
//! `user`, `client_id`, `consumer_group`, `bytes`/`count`, `admit` when true, smallest ints and strings) is
//! byte for byte the Node client's, which keeps the server on its fast path.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};
use crate::types::{
    BucketUsage, Component, Fleet, HelloOk, QuotaAlteration, QuotaEntry, ViolationEvent, ViolationSummary,
};

/// `length` + `correlation_id`.
pub(crate) const HEADER_BYTES: usize = 8;

/// The Ok reply's body, always these 29 bytes (map16 `{type: "Ok", throttle_time_ms: 0}`): matched without
/// decoding, as it answers nearly every record call.
pub(crate) const OK_BODY: &[u8] = b"\xde\x00\x02\xa4type\xa2Ok\xb0throttle_time_ms\x00";

/// Appends one frame for `body` to `out`.
pub(crate) fn encode_frame<T: Serialize>(out: &mut Vec<u8>, id: u32, body: &T) -> Result<(), Error> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    rmp_serde::encode::write_named(out, body).map_err(|e| {
        out.truncate(start);
        // Only a body that cannot be msgpack at all gets here (our types always can).
        Error::InvalidRequest(format!("cannot encode the request: {e}"))
    })?;
    let Ok(len) = u32::try_from(out.len() - start - 4) else {
        out.truncate(start);
        return Err(Error::InvalidRequest("the request does not fit in a frame".into()));
    };
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&id.to_be_bytes());
    Ok(())
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
pub(crate) struct HelloBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub protocol_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'a str>,
}

/// A body that is only its type (Ping, DescribeFleet).
#[derive(Serialize)]
pub(crate) struct TypeOnly {
    #[serde(rename = "type")]
    pub ty: &'static str,
}

#[derive(Serialize)]
pub(crate) struct RecordBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    pub admit: bool,
}

/// RecordUsage: not on the server's record fast path; written as the Node client writes it, `amount` left out
/// when 1 (the default), `admit` only when true.
#[derive(Serialize)]
pub(crate) struct RecordUsageBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "is_one")]
    pub amount: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub admit: bool,
}

#[derive(Serialize)]
pub(crate) struct EntitiesBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub entities: &'a [Component],
}

#[derive(Serialize)]
pub(crate) struct AlterBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub alterations: &'a [QuotaAlteration],
    pub validate_only: bool,
}

#[derive(Serialize)]
pub(crate) struct UsageBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub entities: &'a [Component],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct LeaseBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct ReleaseBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub lease_id: &'a str,
}

#[derive(Serialize)]
pub(crate) struct ViolationsBody<'a> {
    #[serde(rename = "type")]
    pub ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<&'a [Component]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Every reply body a client understands; anything else is `Other` (UNEXPECTED_REPLY for the call).
#[derive(Deserialize)]
#[serde(tag = "type")]
pub(crate) enum Reply {
    HelloOk {
        #[serde(deserialize_with = "int::u64")]
        protocol_version: u64,
        server_version: String,
    },
    Pong {},
    Ok {},
    Throttled {
        #[serde(deserialize_with = "int::u64")]
        throttle_time_ms: u64,
        quota_type: String,
        entity: String,
        #[serde(default)]
        recorded: bool,
        #[serde(default)]
        period: Option<String>,
    },
    Denied {
        entity: String,
        reason: String,
    },
    Error {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default, deserialize_with = "int::opt_u64")]
        index: Option<u64>,
    },
    QuotasDescribed {
        entries: Vec<QuotaEntry>,
    },
    QuotasAltered {
        #[serde(deserialize_with = "int::u64")]
        altered_count: u64,
    },
    UsageDescribed {
        buckets: Vec<BucketUsage>,
    },
    UsageReset {
        #[serde(deserialize_with = "int::u64")]
        buckets: u64,
    },
    LeaseGranted {
        lease_id: String,
        #[serde(deserialize_with = "int::u64")]
        ttl_ms: u64,
    },
    ViolationsDescribed {
        events: Vec<ViolationEvent>,
        summary: ViolationSummary,
    },
    FleetDescribed(Fleet),
    #[serde(other)]
    Other,
}

impl Reply {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::HelloOk { .. } => "HelloOk",
            Self::Pong {} => "Pong",
            Self::Ok {} => "Ok",
            Self::Throttled { .. } => "Throttled",
            Self::Denied { .. } => "Denied",
            Self::Error { .. } => "Error",
            Self::QuotasDescribed { .. } => "QuotasDescribed",
            Self::QuotasAltered { .. } => "QuotasAltered",
            Self::UsageDescribed { .. } => "UsageDescribed",
            Self::UsageReset { .. } => "UsageReset",
            Self::LeaseGranted { .. } => "LeaseGranted",
            Self::ViolationsDescribed { .. } => "ViolationsDescribed",
            Self::FleetDescribed(_) => "FleetDescribed",
            Self::Other => "an unknown type",
        }
    }

    pub(crate) fn into_hello(self) -> Result<HelloOk, Error> {
        match self {
            Self::HelloOk { protocol_version, server_version } => Ok(HelloOk { protocol_version, server_version }),
            other => Err(other.unexpected("HelloOk")),
        }
    }

    pub(crate) fn unexpected(&self, wanted: &str) -> Error {
        Error::UnexpectedReply(format!("expected {wanted}, got {}", self.name()))
    }
}

/// Decodes a reply body; an Error reply becomes the error it carries.
pub(crate) fn decode_reply(body: &[u8]) -> Result<Reply, Error> {
    let reply: Reply =
        rmp_serde::from_slice(body).map_err(|e| Error::UnexpectedReply(format!("undecodable reply ({e})")))?;
    match reply {
        Reply::Error { code, message, index } => {
            Err(Error::Server { code: ErrorCode::from_wire(&code), message, index })
        }
        other => Ok(other),
    }
}

/// Integers arrive as a msgpack int or as a float64 that holds one (msgpackr writes 2^32 and above as
/// float64): a reader takes both wherever an integer is expected.
pub(crate) mod int {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};

    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

    pub(crate) fn from_f64(v: f64) -> Option<u64> {
        if v.fract() == 0.0 && (0.0..=MAX_SAFE).contains(&v) {
            Some(v as u64)
        } else {
            None
        }
    }

    struct U64;
    impl Visitor<'_> for U64 {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(E::custom)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            from_f64(v).ok_or_else(|| E::custom("not an integer"))
        }
    }

    struct I64;
    impl Visitor<'_> for I64 {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v.abs() <= MAX_SAFE {
                Ok(v as i64)
            } else {
                Err(E::custom("not an integer"))
            }
        }
    }

    struct OptU64;
    impl<'de> Visitor<'de> for OptU64 {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or nil")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            u64(d).map(Some)
        }
    }

    pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(U64)
    }

    pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(I64)
    }

    pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptU64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_body_is_the_servers_ok() {
        let r: Reply = rmp_serde::from_slice(OK_BODY).unwrap();
        assert!(matches!(r, Reply::Ok {}));
        assert_eq!(OK_BODY.len(), 29);
    }

    #[test]
    fn frame_length_counts_id_and_body() {
        let mut out = Vec::new();
        encode_frame(&mut out, 42, &TypeOnly { ty: "Ping" }).unwrap();
        assert_eq!(&out[..8], &[0, 0, 0, (out.len() - 4) as u8, 0, 0, 0, 42]);
        assert_eq!(out[8], 0x81, "a fixmap, not an array");
    }

    #[test]
    fn unknown_code_is_internal_error() {
        let mut body = Vec::new();
        rmp_serde::encode::write_named(
            &mut body,
            &serde_json::json!({"type": "Error", "code": "NEW_CODE", "message": "m"}),
        )
        .unwrap();
        let err = decode_reply(&body).err().unwrap();
        assert_eq!(err.code(), ErrorCode::InternalError);
    }
}
