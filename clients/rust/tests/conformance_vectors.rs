//! Every vector of conformance/vectors: requests written as the Node client writes them (byte for byte where
//! `exact`), replies read as the README says (`expect`), and the error table.

mod common;

use std::time::Duration;

use common::conformance::*;
use common::*;
use rivven_client::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

fn vectors(file: &str) -> Vec<Value> {
    let v = load(file);
    assert_eq!(v["format"], 1);
    v["vectors"].as_array().unwrap().clone()
}

/// Makes the vector's call on `c`; the result does not matter (the peer only captures the frame).
async fn make_call(c: &QuotaClient, call: &Value) {
    let a = &call["args"];
    let s = |k: &str| a.get(k).and_then(Value::as_str);
    let n = |k: &str| a.get(k).and_then(Value::as_u64);
    let comps = |k: &str| a.get(k).map(entity);
    let rec = Record {
        user: s("user"),
        client_id: s("client_id"),
        consumer_group: s("consumer_group"),
        amount: n("bytes").or(n("count")).or(n("amount")).unwrap_or(0),
        admit: a.get("admit").and_then(Value::as_bool).unwrap_or(false),
    };
    let o = CallOptions::default();
    let _ = match call["method"].as_str().unwrap() {
        "hello" => c.hello().await.map(drop),
        "ping" => c.ping().await,
        "recordProduce" => c.record_produce(rec, o).await.map(drop),
        "recordConsume" => c.record_consume(rec, o).await.map(drop),
        "recordRequest" => c.record_request(rec, o).await.map(drop),
        "recordUsage" => c.record_usage(s("resource").unwrap(), rec, o).await.map(drop),
        "describeQuotas" => c.describe_quotas(&comps("entities").unwrap_or_default()).await.map(drop),
        "alterQuotas" => {
            let alts: Vec<_> = a["alterations"].as_array().unwrap().iter().map(alteration).collect();
            c.alter_quotas(&alts, a.get("validate_only").and_then(Value::as_bool).unwrap_or(false)).await.map(drop)
        }
        "describeUsage" => {
            let q = UsageQuery {
                entities: comps("entities").unwrap_or_default(),
                top: n("top"),
                sort_by: s("sort_by").map(str::to_owned),
            };
            c.describe_usage(&q).await.map(drop)
        }
        "resetUsage" => c.reset_usage(&comps("entities").unwrap_or_default()).await.map(drop),
        "acquireLease" => c.acquire_lease(s("user"), s("client_id"), n("ttl_ms"), o).await.map(drop),
        "releaseLease" => c.release_lease(s("lease_id").unwrap(), o).await,
        "describeViolations" => {
            let q = ViolationsQuery {
                since_ms: n("since_ms"),
                entities: comps("entities"),
                types: a.get("types").map(|t| serde_json::from_value(t.clone()).unwrap()),
                limit: n("limit"),
            };
            c.describe_violations(&q).await.map(drop)
        }
        "describeFleet" => c.describe_fleet().await.map(drop),
        m => panic!("unknown method {m}"),
    };
}

#[tokio::test]
async fn requests_are_written_as_the_vectors_say() {
    // One peer: it answers Hello and hands over the next frame of each connection.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Vec<u8>)>();
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Some((id, hello)) = read_frame(&mut s).await else { return };
                    s.write_all(&frame(id, &hello_ok())).await.unwrap();
                    let mut head = [0u8; 8];
                    use tokio::io::AsyncReadExt;
                    if s.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
                    let mut body = vec![0u8; len - 4];
                    s.read_exact(&mut body).await.unwrap();
                    let mut whole = head.to_vec();
                    whole.extend_from_slice(&body);
                    let _ = tx.send((hello, whole));
                });
            }
        });
        port
    };
    let mut checked = 0;
    for v in vectors("vectors/requests.json") {
        let name = v["name"].as_str().unwrap();
        let args = &v["call"]["args"];
        let mut b = QuotaClient::builder().port(port).connect_attempts(1).request_timeout(Duration::from_millis(500));
        if let Some(n) = opt_str(args, "client_name").filter(|_| v["call"]["method"] == "hello") {
            b = b.client_name(n);
        }
        if let Some(t) = opt_str(args, "token").filter(|_| v["call"]["method"] == "hello") {
            b = b.token(t);
        }
        let c = b.connect().await.unwrap();
        let call = v["call"].clone();
        let c2 = c.clone();
        let task = tokio::spawn(async move { make_call(&c2, &call).await });
        let (hello, got) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        task.abort();
        drop(c);
        let want = hex(v["frame"].as_str().unwrap());
        let len = u32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
        assert_eq!(len, got.len() - 4, "{name}: length counts correlation id and body");
        let body = &got[8..];
        assert!(same(&decode(body), &v["object"]), "{name}: {} != {}", decode(body), v["object"]);
        if v["exact"] == Value::Bool(true) {
            assert_eq!(body, &want[8..], "{name}: the body bytes");
        }
        if v["call"]["method"] == "hello" {
            assert!(same(&decode(&hello), &v["object"]), "{name}: the connection's own Hello");
        }
        checked += 1;
    }
    assert!(checked >= 30, "every request vector ({checked})");
}

/// A peer that answers Hello, then every frame with `reply` (on the request's id, or on 0).
async fn replying_peer(reply: Vec<u8>, on_zero: bool) -> u16 {
    let reply = std::sync::Arc::new(reply);
    fake_server(move |mut s| {
        let reply = reply.clone();
        async move {
            while let Some((id, _)) = read_frame(&mut s).await {
                let id = if on_zero { 0 } else { id };
                if s.write_all(&frame(id, &reply)).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

enum Outcome {
    Record(RecordResult),
    Lease(LeaseResult),
    Done,
}

async fn call_for(c: &QuotaClient, ty: &str) -> Result<Outcome> {
    let r = Record { user: Some("alice"), amount: 1, ..Record::default() };
    let o = CallOptions::default();
    Ok(match ty {
        "Hello" => c.hello().await.map(|_| Outcome::Done)?,
        "Ping" | "*" => c.ping().await.map(|_| Outcome::Done)?,
        "RecordProduce" => Outcome::Record(c.record_produce(r, o).await?),
        "RecordConsume" => Outcome::Record(c.record_consume(r, o).await?),
        "RecordRequest" => Outcome::Record(c.record_request(r, o).await?),
        "RecordUsage" => Outcome::Record(c.record_usage("orders", r, o).await?),
        "DescribeQuotas" => c.describe_quotas(&[]).await.map(|_| Outcome::Done)?,
        "AlterQuotas" => c.alter_quotas(&[], false).await.map(|_| Outcome::Done)?,
        "DescribeUsage" => c.describe_usage(&UsageQuery::default()).await.map(|_| Outcome::Done)?,
        "ResetUsage" => c.reset_usage(&[Component::user("a")]).await.map(|_| Outcome::Done)?,
        "AcquireLease" => Outcome::Lease(c.acquire_lease(Some("alice"), None, None, o).await?),
        "ReleaseLease" => c.release_lease("l-1", o).await.map(|_| Outcome::Done)?,
        "DescribeViolations" => c.describe_violations(&ViolationsQuery::default()).await.map(|_| Outcome::Done)?,
        "DescribeFleet" => c.describe_fleet().await.map(|_| Outcome::Done)?,
        t => panic!("unknown request type {t}"),
    })
}

async fn broker_for(b: &BrokerQuotas, ty: &str) -> i64 {
    match ty {
        "RecordProduce" => b.produce(Some("alice"), None, 1).await,
        "RecordConsume" => b.fetch(Some("alice"), None, Some("g"), 1).await,
        "RecordRequest" => b.request(Some("alice"), None).await,
        "RecordUsage" => b.usage(Some("alice"), None, "orders", 1).await,
        t => panic!("no broker call for {t}"),
    }
}

fn check_record(name: &str, got: &RecordResult, want: &Value) {
    assert_eq!(Some(got.throttle_time_ms), want.get("throttle_time_ms").and_then(Value::as_u64).or(Some(0)), "{name}");
    if let Some(d) = want.get("denied") {
        let denied = got.denied.as_ref().unwrap_or_else(|| panic!("{name}: denied"));
        assert_eq!(denied.entity, d["entity"].as_str().unwrap(), "{name}");
        assert_eq!(denied.reason, d["reason"].as_str().unwrap(), "{name}");
        return;
    }
    assert!(got.denied.is_none(), "{name}");
    assert_eq!(
        got.quota_type.as_ref().map(|q| q.as_str()).as_deref(),
        want.get("quota_type").and_then(Value::as_str),
        "{name}"
    );
    assert_eq!(got.period.map(Period::as_str), want.get("period").and_then(Value::as_str), "{name}: period");
    assert_eq!(got.entity.as_deref(), want.get("entity").and_then(Value::as_str), "{name}");
    if let Some(r) = want.get("recorded") {
        assert_eq!(Value::Bool(got.recorded), *r, "{name}");
    }
}

#[tokio::test]
async fn replies_are_read_as_the_vectors_say() {
    let mut all = vectors("vectors/replies.json");
    all.extend(vectors("vectors/errors.json"));
    let mut checked = 0;
    for v in all {
        let name = v["name"].as_str().unwrap().to_owned();
        let f = hex(v["frame"].as_str().unwrap());
        assert_eq!(u32::from_be_bytes(f[..4].try_into().unwrap()) as usize, f.len() - 4, "{name}");
        let body = f[8..].to_vec();
        assert!(same(&decode(&body), &v["object"]), "{name}: {} != {}", decode(&body), v["object"]);
        let on_zero = v["correlation_id"] == 0;
        let port = replying_peer(body, on_zero).await;
        let c = QuotaClient::builder().port(port).connect_attempts(1).connect().await.unwrap();
        let ty = v["for"].as_str().unwrap();
        let expect = v.get("expect").cloned().unwrap_or(Value::Null);
        if let Some(e) = expect.get("error") {
            let err = if e.get("connection") == Some(&Value::Bool(true)) {
                // Every call in flight on the connection fails with it.
                let (a, b) = tokio::join!(call_for(&c, ty), call_for(&c, ty));
                let a = a.err().unwrap_or_else(|| panic!("{name}: fails"));
                assert_eq!(a.code(), b.err().unwrap_or_else(|| panic!("{name}: both fail")).code(), "{name}");
                a
            } else {
                call_for(&c, ty).await.err().unwrap_or_else(|| panic!("{name}: the call fails"))
            };
            assert_eq!(err.code().as_str(), e["code"].as_str().unwrap(), "{name}");
            assert_eq!(Value::Bool(err.is_retriable()), e["retriable"], "{name}");
            if let Some(i) = e.get("index") {
                assert_eq!(err.index(), i.as_u64(), "{name}");
            }
        } else {
            match call_for(&c, ty).await {
                Ok(Outcome::Record(r)) => check_record(&name, &r, &expect["record"]),
                Ok(Outcome::Lease(l)) => {
                    if let Some(want) = expect.get("lease") {
                        match l {
                            LeaseResult::Granted { .. } => assert_eq!(want["granted"], true, "{name}"),
                            LeaseResult::Throttled { throttle_time_ms, entity } => {
                                assert_eq!(want["granted"], false, "{name}");
                                assert_eq!(Some(throttle_time_ms), want["throttle_time_ms"].as_u64(), "{name}");
                                assert_eq!(Some(entity.as_str()), want["entity"].as_str(), "{name}");
                            }
                        }
                    }
                }
                Ok(Outcome::Done) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        if let Some(want) = expect.get("broker") {
            let c2 = QuotaClient::builder().port(port).connect_attempts(1).connect().await.unwrap();
            let b = BrokerQuotas::builder(c2).record_deadline(Duration::from_secs(5)).build();
            assert_eq!(Value::from(broker_for(&b, ty).await), *want, "{name}: the broker's answer");
            let failed = want == 0 && expect.get("error").is_some();
            assert_eq!(b.failures(), u64::from(failed), "{name}: a failure is counted, nothing else is");
        }
        checked += 1;
    }
    assert!(checked >= 50, "every reply and error vector ({checked})");
}

#[test]
fn the_error_table_is_the_one_table() {
    let t = load("vectors/error-codes.json");
    let codes = t["codes"].as_array().unwrap();
    assert_eq!(codes.len(), ErrorCode::ALL.len(), "exactly these codes");
    for c in codes {
        let name = c["code"].as_str().unwrap();
        let code = ErrorCode::from_wire(name);
        assert_eq!(code.as_str(), name);
        assert_eq!(Value::Bool(code.is_retriable()), c["retriable"], "{name}");
    }
}
