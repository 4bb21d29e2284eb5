//! The quota check as a broker sees it (bench/broker-path.ts, in Rust): one connection, 256 concurrent callers
//! each awaiting a check before making the next, 64 principals. Against:
//!   rivven  `BrokerQuotas::request` over one `QuotaClient` to the sidecar (`node bin/rivven serve`)
//!   incr    redis-rs's multiplexed connection (pipelines concurrent commands) doing INCR on a private
//!           redis-server: a floor with no quota logic at all
//!
//! `cargo run --release -- [--seconds 4] [--threads 1] [--runs 3] [--deadline-ms 25] [--warmup-ms 3000]`;
//! prints a table and one JSON line. Only checks the sidecar answered count as rivven checks; calls answered 0
//! for a failure (a missed deadline, the breaker open) are reported apart, since they cost nothing and would
//! inflate the rate.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rivven_client::{BrokerQuotas, QuotaClient};

const CALLERS: usize = 256;
const PRINCIPALS: usize = 64;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The sidecar with a request_rate no caller reaches (every check resolves and records, none is throttled).
fn sidecar(dir: &std::path::Path) -> Result<(Proc, u16), Error> {
    let mut child = Command::new("node")
        .current_dir(root())
        .args(["bin/rivven", "serve", "--port", "0", "--data-dir"])
        .arg(dir)
        .env("RIVVEN_METRICS_PORT", "0")
        .env("RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE", "1000000000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let port = loop {
        let line = lines.next().ok_or("the sidecar exited")??;
        if line.contains("\"rivven listening\"") {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            let addr = v["address"].as_str().ok_or("no address")?;
            break addr.rsplit(':').next().ok_or("bad address")?.parse()?;
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Ok((Proc(child), port))
}

fn redis_server(dir: &std::path::Path) -> Result<(Proc, u16), Error> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .current_dir(dir)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()?;
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(10) {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((Proc(child), port))
}

/// A process's CPU time (user + system), from /proc/<pid>/stat; 0 where there is no /proc.
fn cpu_seconds_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime the 13th.
    let Some(rest) = stat.rsplit(')').next() else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

struct Summary {
    /// Client-side CPU per call, in microseconds: what the caller's process pays, whatever else the machine runs.
    cpu_us: f64,
    /// The server's CPU per call (the sidecar, or redis-server).
    server_cpu_us: f64,
    calls: f64,
    secs: f64,
    /// Calls answered 0 for a failure (deadline missed, breaker open) during the run: not checks.
    failed: u64,
    per_sec: f64,
    p50: f64,
    p99: f64,
}

/// CALLERS loops of `check` for `d`: checks per second and latency percentiles (ms).
async fn drive<F, Fut>(server: u32, check: F, d: Duration) -> Summary
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let cpu = cpu_seconds();
    let server_cpu = cpu_seconds_of(&server.to_string());
    let end = start + d;
    let mut tasks = Vec::with_capacity(CALLERS);
    for c in 0..CALLERS {
        let check = check.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut i = c;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    return lat;
                }
                check(i % PRINCIPALS).await;
                i += 1;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_us = (cpu_seconds() - cpu) * 1e6 / all.len().max(1) as f64;
    let server_cpu_us = (cpu_seconds_of(&server.to_string()) - server_cpu) * 1e6 / all.len().max(1) as f64;
    all.sort_by(|a, b| a.total_cmp(b));
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0.0);
    Summary {
        cpu_us,
        server_cpu_us,
        calls: all.len() as f64,
        secs,
        failed: 0,
        per_sec: all.len() as f64 / secs,
        p50: pct(0.5),
        p99: pct(0.99),
    }
}

fn median(mut v: Vec<Summary>) -> Summary {
    v.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    let mid = v.len() / 2;
    v.swap_remove(mid)
}

/// A rivven run: only checks the sidecar answered count; calls answered 0 for a failure are reported apart.
async fn drive_rivven<F, Fut>(server: u32, broker: &BrokerQuotas, check: F, d: Duration) -> Summary
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let before = broker.failures();
    let mut s = drive(server, check, d).await;
    s.failed = broker.failures() - before;
    s.per_sec = (s.calls - s.failed as f64) / s.secs;
    s
}

async fn run(seconds: u64, runs: usize, deadline: Duration, warm: Duration) -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("rivven-rs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let names: Arc<Vec<String>> = Arc::new((0..PRINCIPALS).map(|i| format!("tenant-{i}")).collect());
    let measure = Duration::from_secs(seconds);

    let (sidecar, port) = sidecar(&dir)?;
    let spid = sidecar.0.id();
    let client = QuotaClient::builder().port(port).client_name("rust-bench").connect().await?;
    let codes: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let seen = codes.clone();
    let broker = BrokerQuotas::builder(client)
        .record_deadline(deadline)
        .on_error(move |e| {
            *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(e.code().to_string()).or_default() +=
                1
        })
        .build();
    let (redis_proc, rport) = redis_server(&dir)?;
    let rpid = redis_proc.0.id();
    let redis = redis::Client::open(format!("redis://127.0.0.1:{rport}/"))?.get_multiplexed_async_connection().await?;

    let rivven_check = {
        let (b, n) = (broker.clone(), names.clone());
        move |p: usize| {
            let (b, n) = (b.clone(), n.clone());
            async move {
                b.request(Some(&n[p]), Some("app")).await;
            }
        }
    };
    let incr_check = {
        let (r, n) = (redis.clone(), names.clone());
        move |p: usize| {
            let (mut r, n) = (r.clone(), n.clone());
            async move {
                let _: redis::RedisResult<i64> = redis::cmd("INCR").arg(&n[p]).query_async(&mut r).await;
            }
        }
    };
    drive(spid, rivven_check.clone(), warm).await;
    drive(rpid, incr_check.clone(), warm).await;
    let (mut rv, mut rd) = (Vec::new(), Vec::new());
    // Alternating order, so neither always runs on a warmer machine.
    for i in 0..runs {
        if i % 2 == 0 {
            rv.push(drive_rivven(spid, &broker, rivven_check.clone(), measure).await);
            rd.push(drive(rpid, incr_check.clone(), measure).await);
        } else {
            rd.push(drive(rpid, incr_check.clone(), measure).await);
            rv.push(drive_rivven(spid, &broker, rivven_check.clone(), measure).await);
        }
        let (v, d) = (&rv[i], &rd[i]);
        println!(
            "run {}: rivven {:.0}k ({:.2}+{:.2} us CPU/check), INCR {:.0}k ({:.2}+{:.2} us): {:.2}x",
            i + 1,
            v.per_sec / 1e3,
            v.cpu_us,
            v.server_cpu_us,
            d.per_sec / 1e3,
            d.cpu_us,
            d.server_cpu_us,
            v.per_sec / d.per_sec
        );
    }
    let (rv, rd) = (median(rv), median(rd));
    let failed = rv.failed;
    println!("record deadline {} ms", deadline.as_millis());
    println!(
        "| {CALLERS} callers, one connection, median of {runs} x {seconds} s | checks/s | p50 | p99 | client CPU/check | server CPU/check |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| rivven-client `BrokerQuotas::request` | {:.0}k | {:.2} ms | {:.2} ms | {:.2} us | {:.2} us |",
        rv.per_sec / 1e3,
        rv.p50,
        rv.p99,
        rv.cpu_us,
        rv.server_cpu_us
    );
    println!(
        "| redis-rs multiplexed `INCR` (no quota logic) | {:.0}k | {:.2} ms | {:.2} ms | {:.2} us | {:.2} us |",
        rd.per_sec / 1e3,
        rd.p50,
        rd.p99,
        rd.cpu_us,
        rd.server_cpu_us
    );
    println!(
        "rivven / INCR: {:.2}x; in that run, calls answered 0 for a failure (not counted as checks): {failed}",
        rv.per_sec / rd.per_sec
    );
    println!(
        "{}",
        serde_json::json!({
            "rivven": {"checks_per_sec": rv.per_sec.round(), "p50_ms": rv.p50, "p99_ms": rv.p99, "failed_open": failed, "client_cpu_us": rv.cpu_us, "server_cpu_us": rv.server_cpu_us},
            "redis_rs_incr": {"checks_per_sec": rd.per_sec.round(), "p50_ms": rd.p50, "p99_ms": rd.p99, "client_cpu_us": rd.cpu_us, "server_cpu_us": rd.server_cpu_us},
            "rivven_vs_incr": (rv.per_sec / rd.per_sec * 100.0).round() / 100.0,
        })
    );
    eprintln!(
        "failures by code: {:?}; breaker opened {} times",
        codes.lock().map(|c| c.clone()).unwrap_or_default(),
        broker.breaker().opened()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> Result<u64, Error> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or("missing value")?.parse()?),
            None => Ok(default),
        }
    };
    let (seconds, threads, runs) = (arg("--seconds", 4)?, arg("--threads", 1)?, arg("--runs", 3)?);
    let deadline = Duration::from_millis(arg("--deadline-ms", 25)?);
    // The sidecar's JIT needs seconds of traffic to settle (redis-server needs none): a short warm-up made the
    // first run measure the compiler.
    let warm = Duration::from_millis(arg("--warmup-ms", 3000)?);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads as usize).enable_all().build()?
    };
    println!(
        "runtime: {}",
        if threads <= 1 { "current_thread".to_string() } else { format!("multi_thread, {threads} workers") }
    );
    rt.block_on(run(seconds, runs.max(1) as usize, deadline, warm))
}
