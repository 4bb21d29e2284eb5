//! QuotaClient and BrokerQuotas against a real sidecar, and against fake servers for the failure modes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rivven_client::*;
use tokio::io::AsyncWriteExt;

async fn client(s: &Sidecar) -> QuotaClient {
    QuotaClient::builder().port(s.port).client_name("rust-test").connect().await.unwrap()
}

fn set(entity: Entity, key: &str, value: QuotaValue) -> QuotaAlteration {
    QuotaAlteration::new(entity, key, Some(value))
}

#[tokio::test]
async fn hello_ping_and_an_unthrottled_record_call() {
    let s = Sidecar::start();
    let c = client(&s).await;
    assert!(c.is_connected());
    let h = c.hello().await.unwrap();
    assert_eq!(h.protocol_version, 1);
    assert!(!h.server_version.is_empty());
    c.ping().await.unwrap();
    let r = c
        .record_produce(Record { user: Some("alice"), amount: 10, ..Record::default() }, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(r, RecordResult::OK);
}

#[tokio::test]
async fn quotas_are_altered_described_and_throttle_record_calls() {
    let s = Sidecar::start();
    let c = client(&s).await;
    let alice = vec![Component::user("alice")];
    let n = c.alter_quotas(&[set(alice.clone(), "produce_bytes_rate", QuotaValue::Limit(1000))], true).await.unwrap();
    assert_eq!(n, 1, "validate_only counts what would be applied");
    assert!(c.describe_quotas(&[Component::user("alice")]).await.unwrap().is_empty(), "validate_only changes nothing");
    let n = c.alter_quotas(&[set(alice.clone(), "produce_bytes_rate", QuotaValue::Limit(1000))], false).await.unwrap();
    assert_eq!(n, 1);
    let entries = c.describe_quotas(&[Component::user("alice")]).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entity, alice);
    assert_eq!(entries[0].quotas.get("produce_bytes_rate"), Some(&QuotaValue::Limit(1000)));
    let all = c.describe_quotas(&[]).await.unwrap();
    assert_eq!(all[0].entity, vec![Component::global_default()], "the global default comes first");

    let r = Record { user: Some("alice"), amount: 100_000, ..Record::default() };
    let first = c.record_produce(r, CallOptions::default()).await.unwrap();
    let second = c.record_produce(r, CallOptions::default()).await.unwrap();
    let throttled = if first.throttle_time_ms > 0 { first } else { second };
    assert!(throttled.throttle_time_ms > 0);
    assert_eq!(throttled.quota_type, Some(QuotaKey::ProduceBytesRate));
    assert_eq!(throttled.entity.as_deref(), Some("user:alice"));
    assert!(throttled.recorded);

    let b = BrokerQuotas::builder(c.clone()).record_deadline(Duration::from_secs(5)).build();
    assert!(b.produce(Some("alice"), None, 1).await > 0);
    assert_eq!(b.produce(Some("bob"), None, 1).await, 0);
    assert_eq!(b.failures(), 0);
}

#[tokio::test]
async fn a_bad_alteration_is_an_error_with_its_code_and_index() {
    let s = Sidecar::start();
    let c = client(&s).await;
    let err = c
        .alter_quotas(
            &[
                set(vec![Component::user("a")], "request_rate", QuotaValue::Limit(5)),
                set(vec![Component::user("b")], "request_rate", QuotaValue::Limit(0)),
            ],
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidQuotaValue);
    assert_eq!(err.index(), Some(1));
    assert!(!err.is_retriable());
    assert!(c.describe_quotas(&[Component::user("a")]).await.unwrap().is_empty(), "all or nothing");
}

#[tokio::test]
async fn a_blocked_principal_is_denied_without_counting_a_failure() {
    let s = Sidecar::start();
    let c = client(&s).await;
    c.alter_quotas(&[set(vec![Component::user("mallory")], "blocked", QuotaValue::Text("abuse".into()))], false)
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let b = BrokerQuotas::builder(c.clone())
        .record_deadline(Duration::from_secs(5))
        .on_denied(move |e, r| seen2.lock().unwrap().push((e.to_owned(), r.to_owned())))
        .build();
    assert_eq!(b.produce(Some("mallory"), Some("x"), 1).await, DENIED);
    assert_eq!(b.fetch(Some("mallory"), None, Some("g"), 1).await, DENIED);
    assert_eq!(b.request(Some("mallory"), None).await, DENIED);
    assert_eq!(b.failures(), 0);
    assert_eq!(seen.lock().unwrap()[0], ("user:mallory".to_owned(), "abuse".to_owned()));
    assert_eq!(seen.lock().unwrap().len(), 3);
    c.alter_quotas(&[QuotaAlteration::new(vec![Component::user("mallory")], "blocked", None)], false).await.unwrap();
    assert_eq!(b.request(Some("mallory"), None).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_connection() {
    let s = Sidecar::start();
    let c = client(&s).await;
    c.alter_quotas(&[set(vec![Component::user("flood")], "request_rate", QuotaValue::Limit(100))], false)
        .await
        .unwrap();
    let b = BrokerQuotas::builder(c.clone()).record_deadline(Duration::from_secs(30)).build();
    let mut tasks = Vec::new();
    for _ in 0..2000 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move { b.request(Some("flood"), None).await }));
    }
    let mut throttled = 0;
    for t in tasks {
        if t.await.unwrap() > 0 {
            throttled += 1;
        }
    }
    assert_eq!(b.failures(), 0);
    assert!(throttled > 1000, "2000 requests against 100/s: most are throttled ({throttled})");
    assert_eq!(c.pending_count(), 0);
}

// On one thread, replies arrive in parts of 64 with the reader yielding between parts: every call still gets
// its own answer, whatever part its reply came in.
#[tokio::test]
async fn many_concurrent_calls_on_one_thread_each_get_their_answer() {
    let s = Sidecar::start();
    let c = client(&s).await;
    c.alter_quotas(&[set(vec![Component::user("slow")], "request_rate", QuotaValue::Limit(10))], false).await.unwrap();
    let b = BrokerQuotas::builder(c.clone()).record_deadline(Duration::from_secs(30)).build();
    let mut tasks = Vec::new();
    for i in 0..3000 {
        let b = b.clone();
        // Every third call is a user limited to 10/s: its answers are throttles, the others' are Ok.
        let user = if i % 3 == 0 { "slow".to_owned() } else { format!("free-{i}") };
        tasks.push(tokio::spawn(async move { (i, b.request(Some(&user), None).await) }));
    }
    let mut wrong = Vec::new();
    let mut throttled = 0;
    for t in tasks {
        let (i, answer) = t.await.unwrap();
        if i % 3 != 0 && answer != 0 {
            wrong.push((i, answer));
        }
        if i % 3 == 0 && answer > 0 {
            throttled += 1;
        }
    }
    assert!(wrong.is_empty(), "calls of unlimited users answered as throttled: {wrong:?}");
    assert!(throttled > 900, "the limited user's 1000 calls are mostly throttled ({throttled})");
    assert_eq!(b.failures(), 0);
    assert_eq!(c.pending_count(), 0);
}

#[tokio::test]
async fn usage_leases_violations_and_fleet() {
    let s = Sidecar::start();
    let c = client(&s).await;
    c.alter_quotas(&[set(vec![Component::user("u")], "max_in_flight", QuotaValue::Limit(1))], false).await.unwrap();
    let LeaseResult::Granted { lease_id, ttl_ms } =
        c.acquire_lease(Some("u"), None, Some(60_000), CallOptions::default()).await.unwrap()
    else {
        panic!("the first lease is granted")
    };
    assert_eq!(ttl_ms, 60_000);
    let LeaseResult::Throttled { throttle_time_ms, entity } =
        c.acquire_lease(Some("u"), None, None, CallOptions::default()).await.unwrap()
    else {
        panic!("the second waits")
    };
    assert!(throttle_time_ms > 0);
    assert_eq!(entity, "user:u");
    c.release_lease(&lease_id, CallOptions::default()).await.unwrap();
    assert!(matches!(
        c.acquire_lease(Some("u"), None, None, CallOptions::default()).await.unwrap(),
        LeaseResult::Granted { .. }
    ));

    c.record_request(Record { user: Some("v"), amount: 3, ..Record::default() }, CallOptions::default()).await.unwrap();
    let usage =
        c.describe_usage(&UsageQuery { entities: vec![Component::user("v")], ..UsageQuery::default() }).await.unwrap();
    assert!(usage.iter().any(|b| b.user.as_deref() == Some("v") && b.quota_type == "request_rate"));
    assert!(c.reset_usage(&[Component::user("v")]).await.unwrap() >= 1);
    let v = c.describe_violations(&ViolationsQuery::default()).await.unwrap();
    assert_eq!(v.summary.total as usize, v.events.len());
    let f = c.describe_fleet().await.unwrap();
    assert!(!f.enabled);
    assert_eq!(f.sync_lag_ms, -1);
}

#[tokio::test]
async fn a_silent_server_times_out_and_forgets_the_call() {
    let port = fake_server(|mut s| async move { while read_frame(&mut s).await.is_some() {} }).await;
    let c = QuotaClient::builder().port(port).request_timeout(SHORT).connect().await.unwrap();
    let t = Instant::now();
    let err = c.ping().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert!(err.is_retriable());
    assert!(t.elapsed() >= SHORT);
    assert_eq!(c.pending_count(), 0, "a timed-out call leaves nothing pending");
}

#[tokio::test]
async fn past_max_pending_calls_fail_at_once_with_overloaded() {
    let port = fake_server(|mut s| async move { while read_frame(&mut s).await.is_some() {} }).await;
    let c = QuotaClient::builder()
        .port(port)
        .max_pending(2)
        .request_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let c1 = c.clone();
    let c2 = c.clone();
    let a = tokio::spawn(async move { c1.ping().await });
    let b = tokio::spawn(async move { c2.ping().await });
    while c.pending_count() < 2 {
        tokio::task::yield_now().await;
    }
    let err = c.ping().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Overloaded);
    let broker = BrokerQuotas::new(c.clone());
    assert_eq!(broker.request(Some("x"), None).await, 0, "a broker call fails open");
    assert_eq!(broker.failures(), 1);
    c.close().await;
    assert_eq!(a.await.unwrap().unwrap_err().code(), ErrorCode::ConnectionClosed, "close fails pending calls");
    assert_eq!(b.await.unwrap().unwrap_err().code(), ErrorCode::ConnectionClosed);
    assert_eq!(c.ping().await.unwrap_err().code(), ErrorCode::ConnectionClosed);
}

#[tokio::test]
async fn a_reply_frame_over_max_frame_bytes_closes_the_connection() {
    let sent = Arc::new(AtomicUsize::new(0));
    let sent2 = sent.clone();
    let port = fake_server(move |mut s| {
        let sent = sent2.clone();
        async move {
            let Some((id, _)) = read_frame(&mut s).await else { return };
            let mut head = Vec::new();
            head.extend_from_slice(&(64u32 * 1024 * 1024).to_be_bytes());
            head.extend_from_slice(&id.to_be_bytes());
            s.write_all(&head).await.unwrap();
            let chunk = vec![0u8; 64 * 1024];
            while s.write_all(&chunk).await.is_ok() {
                sent.fetch_add(chunk.len(), Ordering::Relaxed);
                if sent.load(Ordering::Relaxed) > 64 * 1024 * 1024 {
                    break;
                }
            }
        }
    })
    .await;
    let c = QuotaClient::builder().port(port).max_frame_bytes(1024 * 1024).connect().await.unwrap();
    let err = c.ping().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConnectionClosed);
    tokio::time::sleep(SHORT).await;
    assert!(sent.load(Ordering::Relaxed) < 32 * 1024 * 1024, "the client stopped reading");
}

#[tokio::test]
async fn a_connection_level_error_fails_every_call_on_the_connection() {
    let port = fake_server(|mut s| async move {
        let _ = read_frame(&mut s).await;
        let _ = read_frame(&mut s).await;
        let e = body(serde_json::json!({"type": "Error", "code": "FRAME_TOO_LARGE", "message": "too big"}));
        s.write_all(&frame(0, &e)).await.unwrap();
    })
    .await;
    let c = QuotaClient::builder().port(port).connect().await.unwrap();
    let (a, b) = tokio::join!(c.ping(), c.ping());
    assert_eq!(a.unwrap_err().code(), ErrorCode::FrameTooLarge);
    assert_eq!(b.unwrap_err().code(), ErrorCode::FrameTooLarge);
}

#[tokio::test]
async fn a_server_that_never_answers_hello_fails_the_connect_within_its_timeout() {
    let port = mute_server().await;
    let t = Instant::now();
    let err = QuotaClient::builder()
        .port(port)
        .connect_timeout(Duration::from_millis(100))
        .connect_attempts(2)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConnectionClosed);
    assert!(err.to_string().contains("TIMEOUT"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn nothing_listening_fails_the_connect_after_its_attempts() {
    // A port bound and not listening: refused, and no test beside this one can take it meanwhile.
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = holder.local_addr().unwrap().port();
    let err = QuotaClient::builder()
        .port(port)
        .connect_attempts(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConnectionClosed);
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_connection() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let port = fake_server(move |mut s| {
        let tx = tx.clone();
        async move {
            while read_frame(&mut s).await.is_some() {}
            let _ = tx.send(());
        }
    })
    .await;
    let c = QuotaClient::builder().port(port).connect().await.unwrap();
    let c2 = c.clone();
    drop(c);
    assert!(tokio::time::timeout(SHORT, rx.recv()).await.is_err(), "a clone keeps it open");
    drop(c2);
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
}

#[tokio::test]
async fn the_broker_fails_open_while_the_sidecar_is_down_and_recovers_after_restart() {
    let mut s = Sidecar::start();
    let c = QuotaClient::builder()
        .port(s.port)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let b = BrokerQuotas::builder(c.clone())
        .breaker(BreakerOptions { failure_threshold: 3, reset_timeout: Duration::from_millis(100) })
        .build();
    // A sidecar under load may miss the first 25 ms deadline: wait for one call it answers in time.
    until_answered(&b, "a", Duration::from_secs(10)).await;
    let before = b.failures();
    s.kill();
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(b.request(Some("a"), None).await, 0);
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    assert_eq!(b.failures() - before, 20, "every call answered 0 is counted");
    assert!(b.short_circuited() > 0);
    assert!(b.breaker().opened() >= 1);
    s.restart();
    let t = Instant::now();
    while b.breaker().state() != BreakerState::Closed || !c.is_connected() {
        assert!(t.elapsed() < Duration::from_secs(30), "the breaker closes after the restart");
        b.request(Some("a"), None).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Calls are answered by the sidecar again: the restarted one is cold, as at the start, and may miss one.
    c.ping().await.unwrap();
    until_answered(&b, "a", Duration::from_secs(30)).await;
}

#[test]
fn callers_looping_on_an_open_breaker_do_not_starve_the_runtime() {
    // One thread, as a broker's event loop: a caller that gets 0 at once, again and again, must still let the
    // other tasks (timers, the reader, the probe) run.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let port = fake_server(|mut s| async move { while read_frame(&mut s).await.is_some() {} }).await;
            let c = QuotaClient::builder().port(port).connect().await.unwrap();
            let b = BrokerQuotas::builder(c)
                .breaker(BreakerOptions { failure_threshold: 1, reset_timeout: Duration::from_secs(3600) })
                .build();
            assert_eq!(b.request(Some("a"), None).await, 0, "the silent server times out: the breaker opens");
            assert_eq!(b.breaker().state(), BreakerState::Open);
            let spinner = b.clone();
            tokio::spawn(async move {
                loop {
                    spinner.request(Some("a"), None).await;
                }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(b.short_circuited() > 0);
            tx.send(()).unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("the sleeping task ran again");
}

#[tokio::test]
async fn a_probe_whose_caller_goes_away_lets_the_next_call_probe() {
    let port = fake_server(|mut s| async move { while read_frame(&mut s).await.is_some() {} }).await;
    let c = QuotaClient::builder().port(port).connect().await.unwrap();
    let now = Arc::new(std::sync::Mutex::new(Instant::now()));
    let clock_now = now.clone();
    let b = BrokerQuotas::builder(c)
        .record_deadline(Duration::from_millis(50))
        .breaker(BreakerOptions { failure_threshold: 1, reset_timeout: Duration::from_secs(3600) })
        .clock(Arc::new(move || *clock_now.lock().unwrap()))
        .build();
    assert_eq!(b.request(Some("a"), None).await, 0, "the silent server: the breaker opens");
    assert_eq!(b.breaker().state(), BreakerState::Open);
    *now.lock().unwrap() += Duration::from_secs(3600);
    // The probe goes out; its caller gives up before the deadline.
    assert!(tokio::time::timeout(Duration::from_millis(5), b.request(Some("a"), None)).await.is_err());
    assert_eq!(b.breaker().state(), BreakerState::HalfOpen);
    let short = b.short_circuited();
    assert_eq!(b.request(Some("a"), None).await, 0);
    assert_eq!(b.short_circuited(), short, "the next call went out as the probe");
    assert_eq!(b.breaker().state(), BreakerState::Open, "and its timeout opened the breaker again");
}

#[tokio::test]
async fn each_call_times_out_at_its_own_deadline() {
    let port = fake_server(|mut s| async move { while read_frame(&mut s).await.is_some() {} }).await;
    let c = QuotaClient::builder().port(port).request_timeout(Duration::from_millis(400)).connect().await.unwrap();
    let t = Instant::now();
    let short = CallOptions { timeout: Some(Duration::from_millis(50)), fail_fast: false };
    let r = Record { user: Some("a"), amount: 1, ..Record::default() };
    let (slow, fast) = tokio::join!(
        async {
            let e = c.ping().await.unwrap_err();
            (e.code(), t.elapsed())
        },
        async {
            let e = c.record_request(r, short).await.unwrap_err();
            (e.code(), t.elapsed())
        }
    );
    assert_eq!(fast.0, ErrorCode::Timeout);
    assert_eq!(slow.0, ErrorCode::Timeout);
    assert!(fast.1 >= Duration::from_millis(50) && fast.1 < Duration::from_millis(400), "{:?}", fast.1);
    assert!(slow.1 >= Duration::from_millis(400), "{:?}", slow.1);
    assert_eq!(c.pending_count(), 0);
}

#[tokio::test]
async fn calls_waiting_for_a_connection_count_against_max_pending() {
    // A server that says Hello once, then goes away for good: the client can only wait for a reconnection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (id, _) = read_frame(&mut s).await.unwrap();
        s.write_all(&frame(id, &hello_ok())).await.unwrap();
    });
    let c = QuotaClient::builder()
        .port(port)
        .max_pending(2)
        .request_timeout(Duration::from_secs(30))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .connect()
        .await
        .unwrap();
    server.await.unwrap();
    while c.is_connected() {
        tokio::task::yield_now().await;
    }
    let (c1, c2) = (c.clone(), c.clone());
    let a = tokio::spawn(async move { c1.describe_quotas(&[]).await });
    let b = tokio::spawn(async move { c2.ping().await });
    while c.pending_count() < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(c.ping().await.unwrap_err().code(), ErrorCode::Overloaded);
    let fast = CallOptions { timeout: None, fail_fast: true };
    let r = Record { user: Some("a"), amount: 1, ..Record::default() };
    assert_eq!(c.record_request(r, fast).await.unwrap_err().code(), ErrorCode::Overloaded);
    a.abort();
    b.abort();
    let _ = (a.await, b.await);
    assert_eq!(c.pending_count(), 0, "a waiting call that goes away is no longer counted");
    assert_eq!(c.record_request(r, fast).await.unwrap_err().code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn a_usage_call_outside_the_protocol_is_refused_before_sending() {
    let frames = Arc::new(AtomicUsize::new(0));
    let seen = frames.clone();
    let port = fake_server(move |mut s| {
        let seen = seen.clone();
        async move {
            while read_frame(&mut s).await.is_some() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
    .await;
    let c = QuotaClient::builder().port(port).request_timeout(SHORT).connect().await.unwrap();
    let one = Record { user: Some("a"), amount: 1, ..Record::default() };
    for bad in ["", "Orders", "1orders", "or-ders", &"o".repeat(33)] {
        let err = c.record_usage(bad, one, CallOptions::default()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "resource {bad:?}");
    }
    let huge = Record { amount: 1 << 53, ..one };
    assert_eq!(
        c.record_usage("orders", huge, CallOptions::default()).await.unwrap_err().code(),
        ErrorCode::InvalidRequest
    );
    c.ping().await.unwrap_err(); // a frame the server does see, after the refused ones
    assert_eq!(frames.load(Ordering::SeqCst), 1, "only the ping was sent");
}
