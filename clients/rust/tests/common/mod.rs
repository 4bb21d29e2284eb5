//! Test helpers: a real sidecar (`bin/rivven serve` from the repository root) and a scriptable fake server.
#![allow(dead_code)]

pub mod conformance;

use std::io::{BufRead, BufReader};
use std::net::Shutdown;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The repository root: `RIVVEN_REPO_ROOT`, else two levels above this crate.
pub fn repo_root() -> PathBuf {
    std::env::var_os("RIVVEN_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A TCP proxy on a port of its own, forwarding each connection to the port `target` holds (0: the server is
/// down, the connection is closed at once). A restarted sidecar keeps its address through it without binding a
/// port again: the port a killed process freed can be taken meanwhile (an outgoing connection of a test running
/// beside it, the client's own reconnect).
struct PortKeeper {
    port: u16,
    target: Arc<AtomicU16>,
    closed: Arc<AtomicBool>,
}

impl PortKeeper {
    fn start() -> PortKeeper {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let (to, done) = (target.clone(), closed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), port) = (client, to.load(Ordering::SeqCst)) else { continue };
                let upstream = match port {
                    0 => None,
                    p => std::net::TcpStream::connect(("127.0.0.1", p)).ok(),
                };
                let Some(upstream) = upstream else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                for (mut from, mut into) in
                    [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        // Either side ending ends both, as one connection straight to the sidecar would.
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = into.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        PortKeeper { port, target, closed }
    }
}

impl Drop for PortKeeper {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `closed` and ends, closing the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A sidecar in its own process, with its own data directory; killed and removed on drop. `port` is a
/// [`PortKeeper`]'s: it stays the sidecar's address across `restart`.
pub struct Sidecar {
    child: Option<Child>,
    keeper: PortKeeper,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sidecar {
    pub fn start() -> Sidecar {
        let dir = std::env::temp_dir().join(format!(
            "rivven-rs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let keeper = PortKeeper::start();
        let (child, port) = Self::spawn(&dir);
        keeper.target.store(port, Ordering::SeqCst);
        Sidecar { child: Some(child), port: keeper.port, keeper, dir }
    }

    fn spawn(dir: &PathBuf) -> (Child, u16) {
        let root = repo_root();
        assert!(
            root.join("dist/app.js").exists(),
            "{}/dist is missing: run `npm run build` at the repository root first",
            root.display()
        );
        let mut cmd = Command::new("node");
        cmd.current_dir(&root)
            .args(["bin/rivven", "serve", "--port", "0", "--data-dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, _) in std::env::vars() {
            if k.starts_with("RIVVEN_") {
                cmd.env_remove(k);
            }
        }
        // The metrics port would collide between sidecars of parallel tests.
        cmd.env("RIVVEN_METRICS_PORT", "0");
        let mut child = cmd.spawn().expect("node must be on PATH");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().expect("the sidecar exited before listening").unwrap();
            if line.contains("\"rivven listening\"") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let addr = v["address"].as_str().unwrap().to_owned();
                break addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
            }
        };
        // Keep reading its log, or it blocks once the pipe is full.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        (child, port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.keeper.target.store(0, Ordering::SeqCst);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Killed if running, then started again with the same address and data directory.
    pub fn restart(&mut self) {
        self.kill();
        let (child, port) = Self::spawn(&self.dir);
        self.child = Some(child);
        self.keeper.target.store(port, Ordering::SeqCst);
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill();
        if self.dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One msgpack map body from JSON (keys as written).
pub fn body(v: serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmp_serde::encode::write_named(&mut out, &v).unwrap();
    out
}

pub fn frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + body.len());
    f.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Reads one frame: (correlation id, body).
pub async fn read_frame(s: &mut TcpStream) -> Option<(u32, Vec<u8>)> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let id = u32::from_be_bytes(head[4..].try_into().unwrap());
    let mut b = vec![0u8; len - 4];
    s.read_exact(&mut b).await.ok()?;
    Some((id, b))
}

pub fn hello_ok() -> Vec<u8> {
    body(serde_json::json!({"type": "HelloOk", "protocol_version": 1, "server_version": "fake"}))
}

/// A server that answers Hello, then hands each later connection to `after_hello`.
pub async fn fake_server<F, Fut>(after_hello: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let after_hello = std::sync::Arc::new(after_hello);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let f = after_hello.clone();
            tokio::spawn(async move {
                let Some((id, _)) = read_frame(&mut s).await else { return };
                s.write_all(&frame(id, &hello_ok())).await.unwrap();
                f(s).await;
            });
        }
    });
    port
}

/// A server that accepts and never says anything, Hello included.
pub async fn mute_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

pub const SHORT: Duration = Duration::from_millis(200);

/// Makes `b.request(user)` until one call is answered by the sidecar within the broker's record deadline (0, and
/// no failure counted), for at most `within`. A sidecar just started or restarted (cold), or a loaded machine,
/// can make one call miss a 25 ms deadline: such a call answers 0 too, and counts as a failure.
pub async fn until_answered(b: &rivven_client::BrokerQuotas, user: &str, within: Duration) {
    let t = std::time::Instant::now();
    loop {
        let f = b.failures();
        let got = b.request(Some(user), None).await;
        if got == 0 && b.failures() == f {
            return;
        }
        assert_eq!(got, 0, "a call that fails answers 0");
        assert!(t.elapsed() < within, "no call answered by the sidecar within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
