//! `QuotaClient`: one connection to a sidecar, pipelined calls matched to replies by correlation id.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::codec;
use crate::conn::{self, Conn};
use crate::deadlines::DeadlineQueue;
use crate::error::{Error, Result};
use crate::options::{ClientBuilder, ClientOptions};

/// How one call is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Overrides `request_timeout` for this call (BrokerQuotas passes its record deadline).
    pub timeout: Option<Duration>,
    /// Without a live connection, fail at once with UNAVAILABLE (and reconnect in the background) instead of
    /// waiting for the reconnection. For calls in a broker's request path.
    pub fail_fast: bool,
}

/// A connection to one rivven sidecar. Cheap to clone (an `Arc`); every clone shares the connection, and the
/// connection closes when the last clone is dropped or [`close`](QuotaClient::close) is called.
///
/// Calls are pipelined: one writer task sends every frame queued since its last write in one write, one
/// reader task matches replies to calls by correlation id. At most `max_pending` calls are in flight. If the
/// connection drops, calls sent on it fail with CONNECTION_CLOSED (they may or may not have been applied),
/// the client reconnects in the background with exponential backoff, and calls made meanwhile wait for it
/// (within their timeout) unless made fail-fast.
#[derive(Clone)]
pub struct QuotaClient {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for QuotaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaClient").field("address", &self.handle.shared.address).finish()
    }
}

/// Dropping the last client shuts the connection down (the tasks hold `Shared`, not this).
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown("the client was dropped");
    }
}

pub(crate) struct Shared {
    pub(crate) options: ClientOptions,
    pub(crate) address: String,
    pub(crate) tls:
        Option<(Arc<tokio_rustls::rustls::ClientConfig>, tokio_rustls::rustls::pki_types::ServerName<'static>)>,
    state: Mutex<State>,
    /// Bumped whenever a connection comes or goes, or the client closes: wakes calls waiting for one.
    epoch: watch::Sender<u64>,
    closing: Notify,
    next_seq: AtomicU64,
    next_gen: AtomicU64,
}

/// Correlation ids are sequential u32s: a multiplicative hash spreads them at a fraction of SipHash's cost
/// (they are ours, not an attacker's).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type PendingMap = HashMap<u32, Pending, BuildHasherDefault<IdHasher>>;

struct State {
    closed: bool,
    conn: Option<Arc<Conn>>,
    dialing: Option<AbortHandle>,
    pending: PendingMap,
    /// Calls waiting for a connection (not sent yet).
    waiting: usize,
    next_id: u32,
    /// One queue (and one expiry task) per timeout value in use.
    deadlines: HashMap<Duration, DeadlineQueue>,
}

struct Pending {
    /// Unique per call: a guard only removes its own entry, even after the id was reused.
    seq: u64,
    gen: u64,
    tx: oneshot::Sender<Result<Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every update is a single insert/remove).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn bump(&self) {
        self.epoch.send_modify(|e| *e = e.wrapping_add(1));
    }

    pub(crate) fn next_gen(&self) -> u64 {
        self.next_gen.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `conn` the connection, unless it died already or the client closed.
    pub(crate) fn install(&self, conn: Arc<Conn>) -> Result<()> {
        let mut st = self.lock();
        if st.closed || conn.is_dead() {
            let closed = st.closed;
            drop(st);
            conn.abort();
            return Err(Error::ConnectionClosed(if closed {
                "the client was closed".into()
            } else {
                format!("connection to {} closed", self.address)
            }));
        }
        st.conn = Some(conn);
        drop(st);
        self.bump();
        Ok(())
    }

    /// Replies read from connection `gen`, in order: each settles its call (a call that timed out is gone and
    /// its late reply is dropped).
    pub(crate) fn deliver(&self, replies: &mut Vec<(u32, Bytes)>) {
        let mut senders = Vec::with_capacity(replies.len());
        {
            let mut st = self.lock();
            for (id, body) in replies.drain(..) {
                if let Some(p) = st.pending.remove(&id) {
                    senders.push((p.tx, body));
                }
            }
            if st.pending.is_empty() {
                st.deadlines.values_mut().for_each(DeadlineQueue::clear);
            }
        }
        for (tx, body) in senders {
            let _ = tx.send(Ok(body));
        }
    }

    /// `conn` is gone: its calls fail with `err`; reconnect in the background unless closed.
    pub(crate) fn conn_closed(self: &Arc<Self>, conn: &Conn, err: Error) {
        let gen = conn.gen;
        let mut failed = Vec::new();
        let reconnect;
        {
            let mut st = self.lock();
            // Marked under the lock `install` takes: a connection that died before it was installed (its
            // reader saw EOF right after Hello) is never installed.
            conn.mark_dead();
            let current = st.conn.as_ref().is_some_and(|c| c.gen == gen);
            if current {
                if let Some(c) = st.conn.take() {
                    c.mark_dead();
                    c.abort();
                }
            }
            let ids: Vec<u32> = st.pending.iter().filter(|(_, p)| p.gen == gen).map(|(id, _)| *id).collect();
            for id in ids {
                if let Some(p) = st.pending.remove(&id) {
                    failed.push(p.tx);
                }
            }
            reconnect = current && !st.closed;
            if reconnect {
                self.start_dialing(&mut st);
            }
        }
        for tx in failed {
            let _ = tx.send(Err(err.clone()));
        }
        self.bump();
    }

    /// Starts the background reconnect loop (attempts until the client closes) if none is running.
    fn start_dialing(self: &Arc<Self>, st: &mut State) {
        if st.closed || st.conn.is_some() || st.dialing.is_some() {
            return;
        }
        let shared = Arc::clone(self);
        let task = tokio::spawn(async move {
            let result = conn::dial(&shared, u32::MAX).await;
            let mut st = shared.lock();
            st.dialing = None;
            drop(st);
            if result.is_err() {
                // A refused Hello (wrong token) ends the loop; the next call starts another.
                shared.bump();
            }
        });
        st.dialing = Some(task.abort_handle());
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) async fn closed(&self) {
        let notified = self.closing.notified();
        if self.is_closed() {
            return;
        }
        notified.await;
    }

    pub(crate) fn shutdown(&self, why: &str) {
        let (conn, dialing, pending) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            for q in st.deadlines.values() {
                q.task.abort();
            }
            st.deadlines.clear();
            (st.conn.take(), st.dialing.take(), std::mem::take(&mut st.pending))
        };
        if let Some(c) = conn {
            c.mark_dead();
            c.abort();
        }
        if let Some(d) = dialing {
            d.abort();
        }
        for (_, p) in pending {
            let _ = p.tx.send(Err(Error::ConnectionClosed(why.to_owned())));
        }
        self.closing.notify_waiters();
        self.bump();
    }

    /// Removes call `id` if it is still the one with `seq` (it timed out, or its caller went away).
    fn forget(&self, id: u32, seq: u64) {
        let mut st = self.lock();
        if st.pending.get(&id).is_some_and(|p| p.seq == seq) {
            st.pending.remove(&id);
        }
    }

    /// Registers a call on the live connection and queues its frame, or says why not.
    ///
    /// Without a connection, a call that will wait for one (`wait`) is counted in `waiting` (and so against
    /// `max_pending`) until its `Waiting` guard goes; `None` is returned.
    fn start<F>(
        self: &Arc<Self>,
        encode: &mut Option<F>,
        timeout: Duration,
        at: Instant,
        waiting: &mut Waiting<'_>,
    ) -> Result<Option<Started>>
    where
        F: FnOnce(&mut Vec<u8>, u32) -> Result<()>,
    {
        let mut st = self.lock();
        if waiting.counted {
            st.waiting -= 1;
            waiting.counted = false;
        }
        if st.closed {
            return Err(Error::ConnectionClosed("the client is closed".into()));
        }
        let in_flight = st.pending.len() + st.waiting;
        if in_flight >= self.options.max_pending {
            return Err(Error::Overloaded(format!(
                "{in_flight} calls are in flight to {} (max_pending)",
                self.address
            )));
        }
        let Some(conn) = st.conn.clone() else {
            self.start_dialing(&mut st);
            if waiting.wait {
                st.waiting += 1;
                waiting.counted = true;
            }
            return Ok(None);
        };
        let mut id = st.next_id;
        // 0 is the server's connection-level error; skip ids still in flight after a wrap-around.
        while id == 0 || st.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        st.next_id = id.wrapping_add(1);
        let Some(encode) = encode.take() else {
            return Err(Error::ConnectionClosed("internal: call started twice".into()));
        };
        conn.queue(|out| encode(out, id))?;
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        st.pending.insert(id, Pending { seq, gen: conn.gen, tx });
        let State { deadlines, pending, .. } = &mut *st;
        let queue = deadlines.entry(timeout).or_insert_with(|| self.expiry(timeout));
        queue.push(at, id, seq, pending.len(), |id, seq| pending.get(&id).is_some_and(|p| p.seq == seq));
        Ok(Some(Started { id, seq, rx }))
    }

    /// The queue of calls with this timeout, and the task that fails them with TIMEOUT when they are due. The
    /// task holds only a weak reference: it never keeps a dropped client alive.
    fn expiry(self: &Arc<Self>, timeout: Duration) -> DeadlineQueue {
        let wake = Arc::new(Notify::new());
        let shared = Arc::downgrade(self);
        let woken = Arc::clone(&wake);
        let task = tokio::spawn(async move {
            loop {
                let head = match shared.upgrade() {
                    Some(s) => s.lock().deadlines.get(&timeout).and_then(DeadlineQueue::head),
                    None => return,
                };
                match head {
                    None => woken.notified().await,
                    // Woken early when an earlier deadline becomes the head.
                    Some(at) => tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = woken.notified() => {}
                    },
                }
                let Some(s) = shared.upgrade() else { return };
                s.expire(timeout);
            }
        });
        DeadlineQueue::new(wake, task.abort_handle())
    }

    fn expire(&self, timeout: Duration) {
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut st = self.lock();
            let State { deadlines, pending, .. } = &mut *st;
            let Some(q) = deadlines.get_mut(&timeout) else { return };
            q.pop_due(now, |id, seq| {
                if pending.get(&id).is_some_and(|p| p.seq == seq) {
                    if let Some(p) = pending.remove(&id) {
                        due.push(p.tx);
                    }
                }
            });
        }
        if due.is_empty() {
            return;
        }
        let err = Error::Timeout(format!("no reply from {} within {} ms", self.address, timeout.as_millis()));
        for tx in due {
            let _ = tx.send(Err(err.clone()));
        }
    }
}

/// A call waiting for a connection counts against `max_pending`, as the Node client's does.
struct Waiting<'a> {
    shared: &'a Shared,
    wait: bool,
    counted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.shared.lock().waiting -= 1;
        }
    }
}

struct Started {
    id: u32,
    seq: u64,
    rx: oneshot::Receiver<Result<Bytes>>,
}

/// Removes a call's pending entry if its future is dropped or times out before the reply.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u32,
    seq: u64,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.forget(self.id, self.seq);
        }
    }
}

impl QuotaClient {
    /// Options for a new client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::from(ClientOptions::default())
    }

    /// Connects with these options (see [`ClientBuilder::connect`]).
    pub async fn connect_with(options: ClientOptions) -> Result<QuotaClient> {
        let tls = match &options.tls {
            Some(t) => Some(t.build(&options.host)?),
            None => None,
        };
        let address = format!("{}:{}", options.host, options.port);
        let shared = Arc::new(Shared {
            options,
            address,
            tls,
            state: Mutex::new(State {
                closed: false,
                conn: None,
                dialing: None,
                pending: PendingMap::default(),
                waiting: 0,
                next_id: 1,
                deadlines: HashMap::new(),
            }),
            epoch: watch::channel(0).0,
            closing: Notify::new(),
            next_seq: AtomicU64::new(1),
            next_gen: AtomicU64::new(0),
        });
        let client = QuotaClient { handle: Arc::new(Handle { shared }) };
        let shared = &client.handle.shared;
        conn::dial(shared, shared.options.connect_attempts).await?;
        Ok(client)
    }

    pub fn options(&self) -> &ClientOptions {
        &self.handle.shared.options
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.handle.shared.address
    }

    /// True while a connection is up and has said Hello.
    pub fn is_connected(&self) -> bool {
        self.handle.shared.lock().conn.is_some()
    }

    /// Calls in flight.
    /// Calls in flight: sent and unanswered, or waiting for a connection.
    pub fn pending_count(&self) -> usize {
        let st = self.handle.shared.lock();
        st.pending.len() + st.waiting
    }

    /// Fails every pending call with CONNECTION_CLOSED, stops reconnecting and closes the connection.
    pub async fn close(&self) {
        self.handle.shared.shutdown("the client was closed");
    }

    /// Sends `body` and waits for its reply's body, within the call's timeout.
    pub(crate) async fn call_raw<T: serde::Serialize>(&self, body: &T, opts: CallOptions) -> Result<Bytes> {
        let shared = &self.handle.shared;
        let timeout = opts.timeout.unwrap_or(shared.options.request_timeout);
        let deadline = Instant::now() + timeout;
        let mut encode = Some(|out: &mut Vec<u8>, id: u32| codec::encode_frame(out, id, body));
        // Subscribed before the first try, so a connection made in between is not missed; only on the slow path.
        let mut epoch: Option<watch::Receiver<u64>> = None;
        let mut waiting = Waiting { shared, wait: !opts.fail_fast, counted: false };
        let started = loop {
            if let Some(e) = epoch.as_mut() {
                e.mark_unchanged();
            }
            if let Some(s) = shared.start(&mut encode, timeout, deadline, &mut waiting)? {
                break s;
            }
            if opts.fail_fast {
                return Err(Error::Unavailable(format!("not connected to {}", shared.address)));
            }
            let Some(epoch) = epoch.as_mut() else {
                epoch = Some(shared.epoch.subscribe());
                continue;
            };
            // Wait for a connection (or the client closing), within this call's timeout.
            if tokio::time::timeout_at(deadline, epoch.changed()).await.is_err() {
                return Err(Error::Timeout(format!(
                    "no connection to {} within {} ms",
                    shared.address,
                    timeout.as_millis()
                )));
            }
        };
        // The reply, or TIMEOUT from the deadline queue, or CONNECTION_CLOSED: every way out settles it.
        let mut guard = PendingGuard { shared, id: started.id, seq: started.seq, armed: true };
        let reply = started.rx.await;
        guard.armed = false;
        reply.unwrap_or_else(|_| Err(Error::ConnectionClosed("the client was closed".into())))
    }
}
