//! The real Prometheus (Debian's `prometheus` package) scraping a sidecar and evaluating the
//! repository's rules, asked through its HTTP API; and `promtool`. A missing binary panics:
//! these tests never skip.

use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{HANG, free_port, get, repo_root};

/// How many times Prometheus gets a fresh port when its first one was taken before it bound.
const PORT_ATTEMPTS: usize = 3;

/// A Prometheus server on `127.0.0.1:PORT` with its storage in a temp dir; killed on drop.
pub(crate) struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` every second as job `job` and
    /// evaluating `rule_files` (paths or globs) every second; returns once it is ready.
    pub(crate) async fn start(job: &str, target: SocketAddr, rule_files: &[&Path]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("globalscale-prometheus-")
            .tempdir()
            .expect("temp dir for Prometheus");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        for file in rule_files {
            let _ = writeln!(config, "  - {:?}", file.display().to_string());
        }
        let _ = write!(
            config,
            "scrape_configs:\n  - job_name: {job:?}\n    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        for attempt in 1..=PORT_ATTEMPTS {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let mut child = spawn(dir.path(), addr);
            match wait_ready(&mut child, addr, dir.path()).await {
                Ok(()) => return Self { child, dir, addr },
                Err(log) if log.contains("address already in use") && attempt < PORT_ATTEMPTS => {}
                Err(log) => panic!("Prometheus did not start; its log:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// What Prometheus logged so far.
    pub(crate) fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// `data` of a GET of the HTTP API at `path` (with its query string); panics unless
    /// Prometheus answers `"status": "success"`.
    pub(crate) async fn api(&self, path: &str) -> Value {
        let response = get(self.addr, path).await;
        let body = response.json();
        assert!(
            response.status == 200 && body["status"] == "success",
            "GET {path}: HTTP {} {body}",
            response.status
        );
        body["data"].clone()
    }

    /// The result of an instant query: the series of a vector, or the one value of a scalar;
    /// the error Prometheus gave otherwise.
    pub(crate) async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let response = get(self.addr, &format!("/api/v1/query?query={}", encode(expr))).await;
        let body = response.json();
        if body["status"] != "success" {
            return Err(format!(
                "HTTP {}: {}: {}",
                response.status, body["errorType"], body["error"]
            ));
        }
        let data = &body["data"];
        Ok(match &data["result"] {
            Value::Array(series) => series.clone(),
            other => vec![other.clone()],
        })
    }

    /// Every rule of every group, as `/api/v1/rules` describes it.
    pub(crate) async fn rules(&self) -> Vec<Value> {
        let data = self.api("/api/v1/rules").await;
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Every pending or firing alert.
    pub(crate) async fn alerts(&self) -> Vec<Value> {
        let data = self.api("/api/v1/alerts").await;
        data["alerts"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `promtool` with `args` in the repository root; panics if it cannot be started.
pub(crate) fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): {}", missing("promtool", &e)))
}

fn missing(binary: &str, e: &std::io::Error) -> String {
    if e.kind() == ErrorKind::NotFound {
        format!("{binary} is not on PATH; install Debian's prometheus package (scripts/test does)")
    } else {
        String::new()
    }
}

fn spawn(dir: &Path, addr: SocketAddr) -> Child {
    let log = fs::File::create(dir.join("prometheus.log")).expect("Prometheus log");
    Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-lifecycle")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("Prometheus log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start prometheus ({e}): {}",
                missing("prometheus", &e)
            )
        })
}

/// Waits for `/-/ready` to answer 200; the log if the process exits first.
async fn wait_ready(child: &mut Child, addr: SocketAddr, dir: &Path) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Err(format!("exited with {status}\n{}", read_log(dir)));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && get(addr, "/-/ready").await.status == 200
        {
            return Ok(());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus not ready within {HANG:?}; its log:\n{}",
            read_log(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

/// Percent-encodes a query parameter's value (everything but RFC 3986's unreserved bytes).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
