//! Every scenario of conformance/scenarios.json, driven through conformance/harness.ts (real sidecars,
//! signals, hostile servers, the Node client's reference answers).

mod common;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::conformance::*;
use rivven_client::*;
use serde_json::{json, Value};

/// One harness for the whole binary; scenarios run one at a time (they time calls, and share it).
static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fn scenario(name: &str) -> Value {
    load("scenarios.json")["scenarios"][name].clone()
}

/// Runs `body` on a current-thread runtime with the harness to itself.
fn run<F>(body: F)
where
    F: for<'h> FnOnce(&'h mut Harness) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'h>>,
{
    let mut guard = HARNESS.lock().unwrap_or_else(PoisonError::into_inner);
    let h = guard.get_or_insert_with(Harness::start);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(body(h));
}

fn ms(v: &Value) -> Duration {
    Duration::from_millis(v.as_u64().unwrap())
}

fn builder(s: &Value) -> ClientBuilder {
    QuotaClient::builder().host(s["host"].as_str().unwrap()).port(s["port"].as_u64().unwrap() as u16)
}

async fn setup(c: &QuotaClient, sc: &Value) {
    let alts: Vec<_> = sc["setup"].as_array().unwrap().iter().map(alteration).collect();
    assert_eq!(c.alter_quotas(&alts, false).await.unwrap(), alts.len() as u64);
}

async fn step(b: &BrokerQuotas, st: &Value) -> i64 {
    let s = |k: &str| st.get(k).and_then(Value::as_str);
    let bytes = st.get("bytes").and_then(Value::as_u64).unwrap_or(0);
    match st["call"].as_str().unwrap() {
        "produce" => b.produce(s("user"), s("client_id"), bytes).await,
        "fetch" => b.fetch(s("user"), s("client_id"), s("consumer_group"), bytes).await,
        "request" => b.request(s("user"), s("client_id")).await,
        c => panic!("unknown call {c}"),
    }
}

#[test]
fn throttles_equal_the_node_clients() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("throttles");
            let s = h.call("start_sidecar", sc["sidecar"].clone());
            let c = builder(&s).connect().await.unwrap();
            setup(&c, &sc).await;
            let b = BrokerQuotas::builder(c.clone()).record_deadline(ms(&sc["broker"]["record_deadline_ms"])).build();
            let mut answers = Vec::new();
            for st in sc["steps"].as_array().unwrap() {
                if let Some(a) = st.get("advance_ms") {
                    h.call("advance_clock", json!({"sidecar": s["sidecar"], "ms": a}));
                }
                let got = step(&b, st).await;
                assert_eq!(Value::from(got), st["expect"], "step {st}");
                answers.push(Value::from(got));
            }
            assert_eq!(b.failures(), 0);
            let reference = h.call("reference", json!({"scenario": "throttles"}));
            assert_eq!(Value::Array(answers), reference["answers"], "the Node client's answers, live");
            h.call("stop", json!({"sidecar": s["sidecar"]}));
        })
    });
}

#[test]
fn ten_thousand_calls_in_flight_are_answered_in_order() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("in_flight");
            let reference = h.call("reference", json!({"scenario": "in_flight"}))["answers"].clone();
            let s = h.call("start_sidecar", sc["sidecar"].clone());
            let timeout = ms(&sc["client"]["request_timeout_ms"]);
            let c = builder(&s)
                .max_pending(sc["client"]["max_pending"].as_u64().unwrap() as usize)
                .request_timeout(timeout)
                .connect()
                .await
                .unwrap();
            setup(&c, &sc).await;
            let b = BrokerQuotas::builder(c.clone()).record_deadline(timeout).build();
            let n = sc["calls"].as_u64().unwrap() as usize;
            let order = Arc::new(Mutex::new(Vec::with_capacity(n)));
            let mut tasks = Vec::with_capacity(n);
            // Spawned, not awaited: every call is sent before any reply is read. On this single-threaded
            // runtime tasks run and finish in the order they are woken, so `order` is the completion order.
            for i in 0..n {
                let (b, order, call) = (b.clone(), order.clone(), sc["call"].clone());
                tasks.push(tokio::spawn(async move {
                    let got = step(&b, &call).await;
                    order.lock().unwrap().push(i);
                    got
                }));
            }
            let mut answers = Vec::with_capacity(n);
            for t in tasks {
                answers.push(Value::from(t.await.unwrap()));
            }
            assert_eq!(b.failures(), 0);
            assert_eq!(Value::Array(answers), reference, "each call got its own reply");
            let order = order.lock().unwrap();
            assert!(order.iter().enumerate().all(|(i, j)| i == *j), "completed in the order made");
            h.call("stop", json!({"sidecar": s["sidecar"]}));
        })
    });
}

async fn outage(h: &mut Harness, name: &str) {
    let sc = scenario(name);
    let s = h.call("start_sidecar", sc["sidecar"].clone());
    let c = builder(&s).connect().await.unwrap();
    let bo = &sc["broker"];
    let b = BrokerQuotas::builder(c.clone())
        .record_deadline(ms(&bo["record_deadline_ms"]))
        .breaker(BreakerOptions {
            failure_threshold: bo["failure_threshold"].as_u64().unwrap() as u32,
            reset_timeout: ms(&bo["reset_timeout_ms"]),
        })
        .build();
    // One call answered by the sidecar (a cold one may miss the 25 ms deadline: try again).
    common::until_answered(&b, "u", Duration::from_secs(10)).await;
    let before = b.failures();
    let signal = sc["signal"].as_str().unwrap();
    h.call("signal", json!({"sidecar": s["sidecar"], "signal": signal}));
    let within = ms(&sc["within_ms"]);
    let calls = sc["calls"].as_u64().unwrap();
    for _ in 0..calls {
        let t = Instant::now();
        assert_eq!(b.request(Some("u"), None).await, 0);
        assert!(t.elapsed() <= within, "answered within {within:?} ({:?})", t.elapsed());
    }
    assert_eq!(b.failures() - before, calls, "every call counted as a failure");
    assert!(b.short_circuited() > 0, "the breaker short-circuited some");
    assert!(b.breaker().opened() >= 1);
    if signal == "KILL" {
        h.call("restart", json!({"sidecar": s["sidecar"]}));
    } else {
        h.call("signal", json!({"sidecar": s["sidecar"], "signal": "CONT"}));
    }
    let t = Instant::now();
    while b.breaker().state() != BreakerState::Closed {
        assert!(t.elapsed() <= ms(&sc["recover_within_ms"]), "the breaker closes");
        b.request(Some("u"), None).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A call the sidecar answers is no failure (a restarted sidecar is cold, as at the start: one may be late).
    common::until_answered(&b, "u", ms(&sc["recover_within_ms"]).saturating_sub(t.elapsed())).await;
    h.call("stop", json!({"sidecar": s["sidecar"]}));
}

#[test]
fn a_killed_sidecar_fails_open_and_the_breaker_closes_after_restart() {
    run(|h| Box::pin(outage(h, "sidecar_killed")));
}

#[test]
fn a_stopped_sidecar_fails_open_and_the_breaker_closes_after_cont() {
    run(|h| Box::pin(outage(h, "sidecar_stopped")));
}

/// Makes a case's call; `Ok` when it succeeded.
async fn case_call(c: &QuotaClient, call: &str) -> Result<()> {
    match call {
        "produce" => c
            .record_produce(Record { user: Some("u"), amount: 1, ..Record::default() }, CallOptions::default())
            .await
            .map(drop),
        "describeQuotas" => c.describe_quotas(&[]).await.map(drop),
        "alterQuotas" => c
            .alter_quotas(
                &[QuotaAlteration::new(vec![Component::user("u")], "request_rate", Some(QuotaValue::Limit(5)))],
                true,
            )
            .await
            .map(drop),
        "ping" => c.ping().await,
        other => panic!("unknown call {other}"),
    }
}

/// `expect: "ok"` or `expect_error: CODE`, from the connect or the call.
async fn check_case(b: ClientBuilder, case: &Value) {
    let outcome = match b.connect_attempts(2).connect().await {
        Ok(c) => match case.get("call").and_then(Value::as_str) {
            Some(call) => case_call(&c, call).await,
            None => c.ping().await,
        },
        Err(e) => Err(e),
    };
    match (case.get("expect_error").and_then(Value::as_str), outcome) {
        (None, Ok(())) => {}
        (None, Err(e)) => panic!("{case}: {e}"),
        (Some(code), Err(e)) => assert_eq!(e.code().as_str(), code, "{case}: {e}"),
        (Some(code), Ok(())) => panic!("{case}: expected {code}"),
    }
}

#[test]
fn tokens_authenticate_and_roles_authorize() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("auth");
            let s = h.call("start_sidecar", sc["sidecar"].clone());
            for case in sc["cases"].as_array().unwrap() {
                let mut b = builder(&s).client_name("rust-conformance");
                match case["token"].as_str() {
                    Some("wrong") => b = b.token("rvn_not_a_token_of_this_server"),
                    Some(name) => b = b.token(s["tokens"][name].as_str().unwrap()),
                    None => {}
                }
                check_case(b, case).await;
            }
            h.call("stop", json!({"sidecar": s["sidecar"]}));
        })
    });
}

fn file(s: &Value, k: &str) -> String {
    s["tls"][k].as_str().unwrap().to_owned()
}

#[test]
fn tls_with_the_ca_and_without_it() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("tls");
            let s = h.call("start_sidecar", sc["sidecar"].clone());
            for case in sc["cases"].as_array().unwrap() {
                let tls = if case["trust_ca"] == true {
                    TlsOptions::default().with_ca_file(file(&s, "ca")).unwrap()
                } else {
                    TlsOptions::default()
                };
                check_case(builder(&s).tls(tls.clone()), case).await;
                // The server certificate names localhost too.
                let named = TlsOptions { server_name: s["tls"]["server_name"].as_str().map(str::to_owned), ..tls };
                check_case(builder(&s).tls(named), case).await;
            }
            h.call("stop", json!({"sidecar": s["sidecar"]}));
        })
    });
}

#[test]
fn mtls_client_certificates_authenticate() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("mtls");
            let s = h.call("start_sidecar", sc["sidecar"].clone());
            for case in sc["cases"].as_array().unwrap() {
                let mut tls = TlsOptions::default().with_ca_file(file(&s, "ca")).unwrap();
                if let Some(who) = case["client_cert"].as_str() {
                    tls = tls
                        .with_client_cert_files(file(&s, &format!("{who}_cert")), file(&s, &format!("{who}_key")))
                        .unwrap();
                }
                let mut b = builder(&s).tls(tls);
                if let Some(name) = case["token"].as_str() {
                    b = b.token(s["tokens"][name].as_str().unwrap());
                }
                check_case(b, case).await;
            }
            h.call("stop", json!({"sidecar": s["sidecar"]}));
        })
    });
}

#[test]
fn a_blocked_principal_is_denied_then_unblocked() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("denied");
            let s = h.call("start_sidecar", sc["sidecar"].clone());
            let c = builder(&s).connect().await.unwrap();
            let block = alteration(&sc["block"]);
            c.alter_quotas(std::slice::from_ref(&block), false).await.unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let seen2 = seen.clone();
            let b = BrokerQuotas::builder(c.clone())
                .record_deadline(Duration::from_secs(5))
                .on_denied(move |e, r| seen2.lock().unwrap().push((e.to_owned(), r.to_owned())))
                .build();
            let user = block.entity[0].1.clone();
            let u = user.as_deref();
            assert_eq!(b.produce(u, None, 10).await, DENIED);
            assert_eq!(b.fetch(u, None, Some("g"), 10).await, DENIED);
            assert_eq!(b.request(u, None).await, DENIED);
            assert_eq!(b.failures(), 0);
            let want =
                (sc["expect_entity"].as_str().unwrap().to_owned(), sc["expect_reason"].as_str().unwrap().to_owned());
            assert_eq!(*seen.lock().unwrap(), vec![want.clone(), want.clone(), want]);
            let unblock = QuotaAlteration { quota_value: None, ..block };
            c.alter_quotas(&[unblock], false).await.unwrap();
            assert_eq!(b.produce(u, None, 10).await, 0);
            assert_eq!(b.request(u, None).await, 0);
            h.call("stop", json!({"sidecar": s["sidecar"]}));
        })
    });
}

#[test]
fn hostile_servers_end_every_call_cleanly() {
    run(|h| {
        Box::pin(async move {
            let sc = scenario("hostile");
            for m in sc["modes"].as_array().unwrap() {
                let mode = m["mode"].as_str().unwrap();
                let hs = h.call("start_hostile", json!({"mode": mode}));
                let within = ms(&m["within_ms"]);
                let b = builder(&hs).max_frame_bytes(1024 * 1024);
                let t = Instant::now();
                if mode == "silent_hello" {
                    let err = b.connect_timeout(ms(&m["connect_timeout_ms"])).connect().await.unwrap_err();
                    assert!(t.elapsed() <= within, "{mode}: {:?}", t.elapsed());
                    let codes = m["connect_codes"].as_array().unwrap();
                    assert!(codes.contains(&json!(err.code().as_str())), "{mode}: {err}");
                } else {
                    let b = match m.get("request_timeout_ms") {
                        Some(t) => b.request_timeout(ms(t)),
                        None => b,
                    };
                    let c = b.connect().await.unwrap();
                    let r = c
                        .record_produce(
                            Record { user: Some("u"), amount: 1, ..Record::default() },
                            CallOptions::default(),
                        )
                        .await;
                    assert!(t.elapsed() <= within, "{mode}: {:?}", t.elapsed());
                    let err = r.unwrap_err();
                    let codes = m["codes"].as_array().unwrap();
                    assert!(codes.contains(&json!(err.code().as_str())), "{mode}: {err}");
                    let broker = BrokerQuotas::new(c.clone());
                    let t = Instant::now();
                    assert_eq!(broker.produce(Some("u"), None, 1).await, 0, "{mode}");
                    assert!(t.elapsed() <= within, "{mode}");
                    assert_eq!(broker.failures(), 1, "{mode}");
                    if let Some(max) = m.get("max_bytes_accepted") {
                        // The client closed the connection instead of buffering the oversized frame.
                        let t = Instant::now();
                        loop {
                            let st = h.call("hostile_stats", json!({"hostile": hs["hostile"]}));
                            if st["closed_by_peer"] == true {
                                assert!(st["bytes_sent"].as_u64().unwrap() <= max.as_u64().unwrap(), "{st}");
                                break;
                            }
                            assert!(t.elapsed() < within, "{mode}: the client closes the connection");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    c.close().await;
                }
                h.call("stop", json!({"hostile": hs["hostile"]}));
            }
        })
    });
}
