//! One connection: dialing (TCP or TLS, then Hello), the writer task and the reader task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::client::Shared;
use crate::codec::{self, HEADER_BYTES};
use crate::error::{Error, Result};

/// A connection that has said Hello: frames queued by callers, written by its writer task.
pub(crate) struct Conn {
    pub(crate) gen: u64,
    /// Frames queued since the writer's last write: calls made meanwhile share one write (auto-pipelining).
    out: Mutex<Vec<u8>>,
    wake_writer: Notify,
    /// The writer's failure, left for the reader to close the connection with once it has delivered the
    /// replies it has already read (it may be yielding between parts of them).
    write_failed: Mutex<Option<Error>>,
    wake_reader: Notify,
    dead: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Conn {
    /// Appends a frame (written by `encode`) to the next write.
    pub(crate) fn queue(&self, encode: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = out.is_empty();
        encode(&mut out)?;
        drop(out);
        // A non-empty buffer already has the writer's wake-up pending: one per batch.
        if was_empty {
            self.wake_writer.notify_one();
        }
        Ok(())
    }

    pub(crate) fn mark_dead(&self) {
        self.dead.store(true, Ordering::Release);
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Stops both tasks; dropping their halves closes the socket.
    pub(crate) fn abort(&self) {
        for t in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            t.abort();
        }
    }
}

/// Connects and says Hello, up to `attempts` times with exponential backoff, and installs the connection.
/// A non-retriable answer (a wrong token, an unsupported version) ends it at once.
pub(crate) async fn dial(shared: &Arc<Shared>, attempts: u32) -> Result<()> {
    let o = &shared.options;
    let mut delay = o.initial_backoff;
    let mut attempt = 1u32;
    loop {
        if shared.is_closed() {
            return Err(Error::ConnectionClosed("the client was closed".into()));
        }
        // The timeout drops a half-made connection, socket and all: nothing outlives a failed attempt.
        let last = match tokio::time::timeout(o.connect_timeout, open(shared)).await {
            Ok(Ok(conn)) => match shared.install(conn) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            Ok(Err(e)) if !e.is_retriable() => return Err(e),
            Ok(Err(e)) => e,
            Err(_) => Error::Timeout(format!(
                "no connection to {} within {} ms",
                shared.address,
                o.connect_timeout.as_millis()
            )),
        };
        if attempt >= attempts || shared.is_closed() {
            return Err(Error::ConnectionClosed(format!(
                "cannot reach the rivven server at {} ({last})",
                shared.address
            )));
        }
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shared.closed() => {}
        }
        delay = (delay * 2).min(o.max_backoff);
    }
}

fn io_error(shared: &Shared, e: std::io::Error) -> Error {
    Error::ConnectionClosed(format!("connection to {} failed: {e}", shared.address))
}

async fn open(shared: &Arc<Shared>) -> Result<Arc<Conn>> {
    let o = &shared.options;
    let tcp = TcpStream::connect((o.host.as_str(), o.port)).await.map_err(|e| io_error(shared, e))?;
    tcp.set_nodelay(true).map_err(|e| io_error(shared, e))?;
    match &shared.tls {
        None => {
            let mut s = tcp;
            hello(shared, &mut s).await?;
            let (r, w) = s.into_split();
            Ok(start(shared, r, w))
        }
        Some((config, name)) => {
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
            let mut s = connector.connect(name.clone(), tcp).await.map_err(|e| io_error(shared, e))?;
            hello(shared, &mut s).await?;
            let (r, w) = tokio::io::split(s);
            Ok(start(shared, r, w))
        }
    }
}

/// Hello goes first on every connection, before any call is sent on it.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(shared: &Shared, s: &mut S) -> Result<()> {
    let o = &shared.options;
    let body = codec::HelloBody {
        ty: "Hello",
        protocol_version: 1,
        client_name: o.client_name.as_deref(),
        token: o.token.as_deref(),
    };
    let mut frame = Vec::with_capacity(64);
    codec::encode_frame(&mut frame, 1, &body)?;
    s.write_all(&frame).await.map_err(|e| io_error(shared, e))?;
    s.flush().await.map_err(|e| io_error(shared, e))?;
    let mut head = [0u8; HEADER_BYTES];
    s.read_exact(&mut head).await.map_err(|e| io_error(shared, e))?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len < 4 || len - 4 > o.max_frame_bytes {
        return Err(Error::ConnectionClosed(format!("a reply frame of {len} bytes from {}", shared.address)));
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await.map_err(|e| io_error(shared, e))?;
    codec::decode_reply(&body)?.into_hello()?;
    Ok(())
}

fn start<R, W>(shared: &Arc<Shared>, r: R, w: W) -> Arc<Conn>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(Conn {
        gen: shared.next_gen(),
        out: Mutex::new(Vec::with_capacity(16 * 1024)),
        wake_writer: Notify::new(),
        write_failed: Mutex::new(None),
        wake_reader: Notify::new(),
        dead: AtomicBool::new(false),
        tasks: Mutex::new(Vec::with_capacity(2)),
    });
    let reader = tokio::spawn(read_loop(Arc::clone(shared), Arc::clone(&conn), r));
    let writer = tokio::spawn(write_loop(Arc::clone(shared), Arc::clone(&conn), w));
    conn.tasks.lock().unwrap_or_else(PoisonError::into_inner).extend([reader.abort_handle(), writer.abort_handle()]);
    conn
}

async fn write_loop<W: AsyncWrite + Unpin>(shared: Arc<Shared>, conn: Arc<Conn>, mut w: W) {
    let mut batch: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        conn.wake_writer.notified().await;
        std::mem::swap(&mut *conn.out.lock().unwrap_or_else(PoisonError::into_inner), &mut batch);
        if batch.is_empty() {
            continue;
        }
        let written = async {
            w.write_all(&batch).await?;
            w.flush().await
        }
        .await;
        if let Err(e) = written {
            // Not closed from here: that would abort the reader with replies already read but not yet
            // delivered, and fail their calls as if they had never been answered.
            *conn.write_failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(io_error(&shared, e));
            conn.wake_reader.notify_one();
            return;
        }
        batch.clear();
        // One huge request must not pin its buffer for the connection's life.
        if batch.capacity() > 1024 * 1024 {
            batch = Vec::with_capacity(16 * 1024);
        }
    }
}

/// Replies delivered before the reader yields to the callers they woke (and to the writer), on a
/// current-thread runtime.
const DELIVER_CHUNK: usize = 64;

async fn read_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, conn: Arc<Conn>, mut r: R) {
    let max = shared.options.max_frame_bytes;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut replies = Vec::with_capacity(64);
    // On one thread, replies are delivered a part at a time, yielding between parts: the callers woken by the
    // first part run and queue their next calls, and the writer sends those while this task delivers the rest,
    // so the sidecar works on one batch while this process prepares the next (all at once, each side would
    // wait while the other works: half the throughput). On a multi-thread runtime the woken callers already run
    // beside this task, and yielding would only cut the writes into smaller ones.
    let chunk = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => DELIVER_CHUNK,
        _ => usize::MAX,
    };
    let err = 'conn: loop {
        // Every whole frame in the buffer; the length is checked as soon as its 4 bytes are in, so an
        // oversized frame is never buffered.
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len < 4 || len - 4 > max {
                shared.deliver(&mut replies);
                break 'conn Error::ConnectionClosed(format!(
                    "a reply frame of {len} bytes from {} (max_frame_bytes {max}): connection closed",
                    shared.address
                ));
            }
            if buf.len() < 4 + len {
                buf.reserve(4 + len - buf.len());
                break;
            }
            let mut frame = buf.split_to(4 + len);
            frame.advance(4);
            let id = frame.get_u32();
            let body = frame.freeze();
            if id == 0 {
                // A connection-level error (then the server closes): replies before it still count.
                shared.deliver(&mut replies);
                break 'conn match codec::decode_reply(&body) {
                    Err(e) => e,
                    Ok(other) => other.unexpected("Error"),
                };
            }
            replies.push((id, body));
            if replies.len() == chunk {
                shared.deliver(&mut replies);
                tokio::task::yield_now().await;
            }
        }
        if !replies.is_empty() {
            shared.deliver(&mut replies);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        if let Some(e) = conn.write_failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
            break e;
        }
        let read = tokio::select! {
            read = r.read_buf(&mut buf) => read,
            // read_buf is cancel-safe: nothing read is lost; the loop delivers what is whole, then closes.
            () = conn.wake_reader.notified() => continue 'conn,
        };
        match read {
            Ok(0) => break Error::ConnectionClosed(format!("connection to {} closed", shared.address)),
            Ok(_) => {}
            Err(e) => break io_error(&shared, e),
        }
    };
    shared.conn_closed(&conn, err);
}
