//! A client without credentials doing its worst against a running sidecar, for a bounded
//! time, while a well-behaved signed client works beside it: silent TCP connections to the
//! proxy and admin ports (each reopened as soon as the sidecar closes it), and 16 MiB bodies
//! with no signature, an unknown key, and a known key id with a wrong signature (with a
//! `Content-Length`, and chunked). What the well-behaved side saw comes back as a
//! [`FloodReport`]: every GetItem and `/healthz` with its latency or its failure, and the
//! sidecar's largest RSS. Used by `tests/floods.rs` (correctness) and `benches/floods.rs`
//! (figures).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::{CLIENT_ACCESS_KEY_ID, TABLE};

/// DynamoDB's largest request body, which every flood body is.
pub(crate) const LARGE_BODY: usize = 16 * 1024 * 1024;

/// How hard and how long to flood.
#[derive(Clone, Debug)]
pub(crate) struct FloodPlan {
    pub(crate) duration: Duration,
    /// Silent connections kept open (and reopened) against each port.
    pub(crate) silent_proxy: usize,
    pub(crate) silent_admin: usize,
    /// Senders of large bodies per kind ([`BodyKind`]).
    pub(crate) large_bodies: usize,
    /// Concurrent signed clients doing GetItem in a loop.
    pub(crate) signed_clients: usize,
}

/// How a large body comes.
#[derive(Clone, Copy, Debug)]
enum BodyKind {
    NoSignature,
    UnknownKey,
    /// A configured access key id (key ids are not secret), a wrong signature.
    KnownKey,
    KnownKeyChunked,
}

const KINDS: [BodyKind; 4] = [
    BodyKind::NoSignature,
    BodyKind::UnknownKey,
    BodyKind::KnownKey,
    BodyKind::KnownKeyChunked,
];

/// What the well-behaved side saw.
#[derive(Debug, Default)]
pub(crate) struct FloodReport {
    pub(crate) gets: Vec<Duration>,
    pub(crate) get_failures: Vec<String>,
    pub(crate) healthz: Vec<Duration>,
    pub(crate) healthz_failures: Vec<String>,
    /// The sidecar's VmRSS before the floods, and the largest during them (sampled every
    /// 20 ms), in bytes.
    pub(crate) rss_before: u64,
    pub(crate) max_rss: u64,
    /// How each large body ended: `<kind> <status or error>` and how many.
    pub(crate) bodies: BTreeMap<String, usize>,
}

impl FloodReport {
    /// The `q`-th percentile of `samples`, in milliseconds.
    pub(crate) fn percentile(samples: &[Duration], q: f64) -> f64 {
        let mut sorted = samples.to_vec();
        sorted.sort();
        if sorted.is_empty() {
            return f64::NAN;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let at = ((sorted.len() as f64 * q / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[at].as_secs_f64() * 1000.0
    }

    /// One paragraph of figures.
    pub(crate) fn print(&self, label: &str) {
        let p = Self::percentile;
        println!("{label}:");
        println!(
            "  signed GetItem: {} ok, {} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.gets.len(),
            self.get_failures.len(),
            p(&self.gets, 50.0),
            p(&self.gets, 99.0),
            p(&self.gets, 100.0)
        );
        println!(
            "  /healthz: {} ok, {} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.healthz.len(),
            self.healthz_failures.len(),
            p(&self.healthz, 50.0),
            p(&self.healthz, 99.0),
            p(&self.healthz, 100.0)
        );
        println!(
            "  sidecar RSS: {:.1} MiB before, {:.1} MiB at most during the floods",
            mib(self.rss_before),
            mib(self.max_rss)
        );
        for (outcome, count) in &self.bodies {
            println!("  16 MiB bodies, {outcome}: {count}");
        }
    }
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Floods `proxy` and `admin` as `plan` says while `client` reads the `flood`/`x` item of
/// `GlobalCatalog` and `/healthz` is asked every 50 ms; samples the RSS of process `pid`.
///
/// The well-behaved side runs on a runtime of its own, on its own thread: sharing the
/// attackers' runtime, its tasks would wait behind hundreds of theirs, and what it measured
/// would be this process's queue rather than the sidecar.
pub(crate) async fn flood(
    proxy: SocketAddr,
    admin: SocketAddr,
    pid: u32,
    client: &Client,
    plan: &FloodPlan,
) -> FloodReport {
    let rss_before = rss(pid).unwrap_or(0);
    let mut attackers = JoinSet::new();
    for _ in 0..plan.silent_proxy {
        attackers.spawn(silent(proxy));
    }
    for _ in 0..plan.silent_admin {
        attackers.spawn(silent(admin));
    }
    let bodies = Arc::new(Mutex::new(BTreeMap::new()));
    for kind in KINDS {
        for _ in 0..plan.large_bodies {
            attackers.spawn(large_bodies(proxy, kind, Arc::clone(&bodies)));
        }
    }
    let until = Instant::now() + plan.duration;
    let (client, clients) = (client.clone(), plan.signed_clients);
    let watching = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the watchers' runtime")
            .block_on(watch(client, clients, admin, until))
    });
    let max_rss = max_rss(pid, until).await;
    let mut report = tokio::task::spawn_blocking(move || watching.join())
        .await
        .expect("the watchers' thread")
        .expect("the watchers");
    (report.rss_before, report.max_rss) = (rss_before, max_rss);
    attackers.shutdown().await;
    report.bodies = std::mem::take(&mut *bodies.lock().unwrap());
    report
}

/// `clients` signed clients reading in a loop and a `/healthz` prober, until `until`.
async fn watch(client: Client, clients: usize, admin: SocketAddr, until: Instant) -> FloodReport {
    let mut watchers = JoinSet::new();
    for _ in 0..clients {
        let client = client.clone();
        watchers.spawn(async move { get_items(&client, until).await });
    }
    watchers.spawn(async move { healthz(admin, until).await });
    let mut report = FloodReport::default();
    while let Some(part) = watchers.join_next().await {
        let part = part.expect("a watcher task");
        report.gets.extend(part.gets);
        report.get_failures.extend(part.get_failures);
        report.healthz.extend(part.healthz);
        report.healthz_failures.extend(part.healthz_failures);
    }
    report
}

async fn get_items(client: &Client, until: Instant) -> FloodReport {
    let mut report = FloodReport::default();
    while Instant::now() < until {
        let started = Instant::now();
        let answer = client
            .get_item()
            .table_name(TABLE)
            .key("ItemID", AttributeValue::S("flood".into()))
            .key("Category", AttributeValue::S("x".into()))
            .send()
            .await;
        match answer {
            Ok(output) if output.item.is_some() => report.gets.push(started.elapsed()),
            Ok(output) => report.get_failures.push(format!("no item: {output:?}")),
            Err(e) => report.get_failures.push(format!("{e:?}")),
        }
    }
    report
}

async fn healthz(admin: SocketAddr, until: Instant) -> FloodReport {
    let mut report = FloodReport::default();
    while Instant::now() < until {
        let started = Instant::now();
        match tokio::time::timeout(super::HANG, get_healthz(admin)).await {
            Ok(Ok(())) => report.healthz.push(started.elapsed()),
            Ok(Err(e)) => report.healthz_failures.push(e.to_string()),
            Err(_) => report.healthz_failures.push("hung".into()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report
}

/// `GET /healthz` on a fresh connection, as a kubelet probe asks it.
async fn get_healthz(admin: SocketAddr) -> io::Result<()> {
    let mut stream = TcpStream::connect(admin).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: sidecar\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "answered {:?}",
            String::from_utf8_lossy(&answer)
        )))
    }
}

/// The largest VmRSS of `pid` until `until`.
async fn max_rss(pid: u32, until: Instant) -> u64 {
    let mut max = 0;
    while Instant::now() < until {
        max = max.max(rss(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    max.max(rss(pid).unwrap_or(0))
}

/// The resident set of process `pid`, in bytes (`/proc/<pid>/status`).
pub(crate) fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Connects, sends nothing, and connects again once the sidecar closes the connection.
async fn silent(addr: SocketAddr) {
    loop {
        match TcpStream::connect(addr).await {
            Ok(mut stream) => {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await
                    && n > 0
                {}
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Sends 16 MiB bodies of `kind` one after another, counting how each ended.
async fn large_bodies(
    addr: SocketAddr,
    kind: BodyKind,
    outcomes: Arc<Mutex<BTreeMap<String, usize>>>,
) {
    loop {
        let outcome = match Box::pin(large_body(addr, kind)).await {
            Ok(status) => format!("{kind:?} {status}"),
            Err(e) => format!("{kind:?} {:?}", e.kind()),
        };
        *outcomes.lock().unwrap().entry(outcome).or_default() += 1;
    }
}

/// One request with a 16 MiB body of `kind`; the status the sidecar answered with, which
/// it may do before the body is sent.
async fn large_body(addr: SocketAddr, kind: BodyKind) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(head(addr, kind).as_bytes()).await?;
    let (mut reader, mut writer) = stream.split();
    let chunked = matches!(kind, BodyKind::KnownKeyChunked);
    let write = async {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..LARGE_BODY / chunk.len() {
            if chunked {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
            }
            writer.write_all(&chunk).await?;
            if chunked {
                writer.write_all(b"\r\n").await?;
            }
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        Ok::<_, io::Error>(())
    };
    let mut answer = [0u8; 16];
    let read = reader.read(&mut answer);
    tokio::pin!(read);
    let n = tokio::select! {
        n = &mut read => n?,
        // Sent in full, or refused under it: the answer may still be there to read.
        _ = write => read.await?,
    };
    let answer = String::from_utf8_lossy(&answer[..n]);
    Ok(answer
        .strip_prefix("HTTP/1.1 ")
        .map_or_else(|| format!("unexpected {answer:?}"), |s| s[..3].to_owned()))
}

fn head(addr: SocketAddr, kind: BodyKind) -> String {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let authorization = |key: &str| {
        format!(
            "authorization: AWS4-HMAC-SHA256 Credential={key}/{}/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=date;host;x-amz-target, Signature={}\r\n",
            day(SystemTime::now()),
            "0".repeat(64)
        )
    };
    let (auth, framing) = match kind {
        BodyKind::NoSignature => (String::new(), format!("content-length: {LARGE_BODY}")),
        BodyKind::UnknownKey => (
            authorization("AKIDNOBODY"),
            format!("content-length: {LARGE_BODY}"),
        ),
        BodyKind::KnownKey => (
            authorization(CLIENT_ACCESS_KEY_ID),
            format!("content-length: {LARGE_BODY}"),
        ),
        BodyKind::KnownKeyChunked => (
            authorization(CLIENT_ACCESS_KEY_ID),
            "transfer-encoding: chunked".to_owned(),
        ),
    };
    format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: DynamoDB_20120810.PutItem\r\n\
         content-type: application/x-amz-json-1.0\r\ndate: {date}\r\n{auth}{framing}\r\n\r\n"
    )
}

/// `YYYYMMDD` of `time` in UTC (Howard Hinnant's days-to-civil).
fn day(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

#[test]
fn day_is_the_utc_date() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_mins(29_944_000);
    assert_eq!(day(t), "20261207");
    assert_eq!(day(SystemTime::UNIX_EPOCH), "19700101");
}
