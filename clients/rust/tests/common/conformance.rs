//! The conformance kit (conformance/README.md): its files, JSON compared by value, and the harness process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rivven_client::{Component, Entity, QuotaAlteration, QuotaValue};
use serde_json::{json, Value};

/// `RIVVEN_CONFORMANCE_DIR`, else `conformance/` at the repository root.
pub fn dir() -> PathBuf {
    let d = std::env::var_os("RIVVEN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo_root().join("conformance"));
    assert!(
        d.join("README.md").exists(),
        "no conformance kit at {} (set RIVVEN_CONFORMANCE_DIR to the directory holding harness.ts and vectors/)",
        d.display()
    );
    d
}

pub fn load(rel: &str) -> Value {
    let p = dir().join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// msgpack maps are objects (key order aside), numbers compare by value (an int may travel as a float64).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A msgpack body as JSON.
pub fn decode(body: &[u8]) -> Value {
    rmp_serde::from_slice(body).unwrap()
}

pub fn entity(v: &Value) -> Entity {
    serde_json::from_value::<Vec<Component>>(v.clone()).unwrap()
}

pub fn alteration(v: &Value) -> QuotaAlteration {
    let value = match &v["quota_value"] {
        Value::Null => None,
        Value::String(s) if s == "unlimited" => Some(QuotaValue::Unlimited),
        Value::String(s) => Some(QuotaValue::Text(s.clone())),
        n => Some(QuotaValue::Limit(n.as_u64().unwrap())),
    };
    let mut a = QuotaAlteration::new(entity(&v["entity"]), v["quota_key"].as_str().unwrap(), value);
    a.shadow = v.get("shadow").and_then(Value::as_bool);
    a
}

pub fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// `node --import tsx conformance/harness.ts`, spoken to line by line. Its stdin closing (this process
/// ending) makes it kill what it started.
pub struct Harness {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next: u64,
}

const HARNESS_WAIT: Duration = Duration::from_secs(180);

impl Harness {
    pub fn start() -> Harness {
        let d = dir();
        let root = d.parent().unwrap().to_path_buf();
        let mut child = Command::new("node")
            .current_dir(&root)
            .args(["--import", "tsx"])
            .arg(d.join("harness.ts"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be on PATH");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut h = Harness { child, stdin, lines, next: 1 };
        let ready: Value = serde_json::from_str(&h.line()).unwrap();
        assert_eq!(ready, json!({"ready": true, "format": 1}));
        h
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(HARNESS_WAIT) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("the harness did not answer within {HARNESS_WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the harness exited"),
        }
    }

    /// Sends a command and returns its result; panics on `ok: false`.
    pub fn call(&mut self, cmd: &str, args: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let mut req = json!({"id": id, "cmd": cmd});
        if let Value::Object(m) = args {
            for (k, v) in m {
                req[k] = v;
            }
        }
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let reply: Value = serde_json::from_str(&self.line()).unwrap();
        assert_eq!(reply["id"], json!(id), "replies come in order");
        assert_eq!(reply["ok"], json!(true), "harness {cmd} failed: {reply}");
        reply
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"id": 0, "cmd": "shutdown"}));
        let _ = self.child.wait();
    }
}
