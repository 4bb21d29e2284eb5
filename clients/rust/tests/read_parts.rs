//! The reader on a current-thread runtime delivers replies a part at a time and yields between parts: replies it
//! has already read must still reach their callers whatever happens while it yields.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use rivven_client::*;
use tokio::io::AsyncWriteExt;

const CALLS: usize = 200;

// The server answers every call in one write and closes. The callers woken by the reader's first part make
// their next calls at once; the writer's writes to the closed socket then fail (the first draws a reset, the
// next one fails) while the reader is yielding between parts with the rest of the answers already in its buffer.
// Those answers were received: their calls must get them, not a connection error.
#[tokio::test]
async fn answers_already_read_reach_their_calls_when_a_write_fails_between_parts() {
    let first = Arc::new(AtomicBool::new(true));
    let port = fake_server(move |mut s| {
        let first = first.clone();
        async move {
            let pong = frame(0, &body(serde_json::json!({"type": "Pong"})));
            if !first.swap(false, Ordering::SeqCst) {
                // The reconnections: every call answered at once.
                while let Some((id, _)) = read_frame(&mut s).await {
                    let mut f = pong.clone();
                    f[4..8].copy_from_slice(&id.to_be_bytes());
                    if s.write_all(&f).await.is_err() {
                        return;
                    }
                }
                return;
            }
            let mut out = Vec::new();
            for _ in 0..CALLS {
                let Some((id, _)) = read_frame(&mut s).await else { return };
                out.extend_from_slice(&frame(id, &body(serde_json::json!({"type": "Pong"}))));
            }
            s.write_all(&out).await.unwrap();
            drop(s);
        }
    })
    .await;
    let c = QuotaClient::builder().port(port).connect().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..CALLS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let first = c.ping().await;
            // Each caller goes on calling, like a broker's request loop does.
            for _ in 0..3 {
                let _ = c.ping().await;
            }
            first
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failed.push(e.to_string());
        }
    }
    assert!(failed.is_empty(), "{} of {CALLS} answered calls failed, first: {:?}", failed.len(), failed.first());
}
