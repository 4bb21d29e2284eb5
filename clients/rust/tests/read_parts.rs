//! The reader on a current-thread runtime delivers replies a part at a time and yields between parts: replies it
//! has already read must still reach their callers whatever happens while it yields.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use rivven_client::*;
use tokio::io::AsyncWriteExt;

const CALLS: usize = 200;

/// Answers the first connection's first CALLS calls in one write, then `last` (if any), and closes; answers every
/// later connection's calls one by one.
async fn answer_all_then_close(last: Option<Vec<u8>>) -> u16 {
    let first = Arc::new(AtomicBool::new(true));
    fake_server(move |mut s| {
        let first = first.clone();
        let last = last.clone();
        async move {
            let pong = body(serde_json::json!({"type": "Pong"}));
            if !first.swap(false, Ordering::SeqCst) {
                while let Some((id, _)) = read_frame(&mut s).await {
                    if s.write_all(&frame(id, &pong)).await.is_err() {
                        return;
                    }
                }
                return;
            }
            let mut out = Vec::new();
            for _ in 0..CALLS {
                let Some((id, _)) = read_frame(&mut s).await else { return };
                out.extend_from_slice(&frame(id, &pong));
            }
            out.extend_from_slice(last.as_deref().unwrap_or_default());
            s.write_all(&out).await.unwrap();
        }
    })
    .await
}

/// CALLS callers on this (one-thread) runtime that each call once, then go on calling as a broker's request loop
/// does: the first calls' errors, and the later calls' error codes.
async fn first_and_later_errors(port: u16) -> (Vec<String>, Vec<ErrorCode>) {
    let c = QuotaClient::builder().port(port).connect().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..CALLS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let first = c.ping().await.err().map(|e| e.to_string());
            let mut later = Vec::new();
            for _ in 0..3 {
                if let Err(e) = c.ping().await {
                    later.push(e.code());
                }
            }
            (first, later)
        }));
    }
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for t in tasks {
        let (f, l) = t.await.unwrap();
        first.extend(f);
        later.extend(l);
    }
    (first, later)
}

// The server answers every call in one write and closes. The callers woken by the reader's first part make their
// next calls at once; the writer's writes to the closed socket then fail (the first draws a reset, the next one
// fails) while the reader is yielding between parts with the rest of the answers already in its buffer. Those
// answers were received: their calls must get them, not a connection error.
#[tokio::test]
async fn answers_already_read_reach_their_calls_when_a_write_fails_between_parts() {
    let (failed, _) = first_and_later_errors(answer_all_then_close(None).await).await;
    assert!(failed.is_empty(), "{} of {CALLS} answered calls failed, first: {:?}", failed.len(), failed.first());
}

// The same with a connection-level error after the answers: the calls it fails get what the server said, not the
// writer's Broken pipe from writing to the socket the server then closed.
#[tokio::test]
async fn a_connection_level_error_after_parts_of_answers_is_what_the_calls_after_them_get() {
    let e = body(serde_json::json!({"type": "Error", "code": "FRAME_TOO_LARGE", "message": "too big"}));
    let (failed, later) = first_and_later_errors(answer_all_then_close(Some(frame(0, &e))).await).await;
    assert!(failed.is_empty(), "{} of {CALLS} answered calls failed, first: {:?}", failed.len(), failed.first());
    assert!(!later.is_empty(), "calls made while the reader yielded went on the closing connection");
    let other: Vec<&ErrorCode> = later.iter().filter(|c| **c != ErrorCode::FrameTooLarge).collect();
    assert!(other.is_empty(), "{} of {} later calls failed otherwise: {other:?}", other.len(), later.len());
}
