//! What auditing costs a write, printed, never asserted: PutItem throughput and latency through
//! the sidecar with auditing off and on (`images = "new"`, the spool on this machine's disk),
//! against a canned region that answers after a set delay: 2 ms, close to DynamoDB's own
//! single-digit milliseconds (where the intents' fsync overlaps the region's work and should
//! cost nearly nothing), and at once (where the sidecar and the spool are all there is to
//! measure). The targets: at 2 ms, throughput within 5 % and at most 100 µs added to
//! p50; at once, a cost of at most 30 %. Every figure is the median over the rounds.
//!
//! For each delay and number of concurrent clients (closed loop, keep-alive HTTP/1): PutItem/s off and
//! on, the cost, p50/p99 latency off and on, the process's CPU time per PutItem (clients,
//! sidecar and stub share this process and its two worker threads), and for the audited runs
//! the fsync group sizes the spool reached (records spooled per fsync, from the sidecar's
//! `/metrics`), then the records shipped once the backlog drained and the BatchWriteItem calls
//! that took them, to show the shipper keeps up, and the shipping lag (from a record's
//! event id, fixed when its intent was spooled, to the canned region receiving it in a
//! BatchWriteItem: p50 and p99). The smoke run of `cargo test --all-targets` is shorter and
//! unoptimized: its figures mean nothing.
//!
//! `cargo bench --bench audit`; the spool goes under Cargo's target tmp dir, or under
//! `GLOBALSCALE_BENCH_SPOOL_DIR` when set (on a tmpfs an fsync costs nothing: the output names
//! the filesystem it ran on).

// A measuring program: a failed set-up step should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use globalscale::app::App;
use globalscale::config::Config;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What the stub region answers `DescribeTable` with: the key schema of the config's table.
const DESCRIBE: &str = r#"{"Table":{"TableName":"Bench","TableStatus":"ACTIVE","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"}]}}"#;
/// The size of the item's one non-key attribute.
const VALUE_BYTES: usize = 200;

/// The canned region's answer delays: DynamoDB's own milliseconds, then at once.
const DELAYS: &[Duration] = &[Duration::from_millis(2), Duration::ZERO];

/// How long and how hard to push.
struct Plan {
    clients: Vec<usize>,
    /// How long the canned region takes to answer.
    delays: Vec<Duration>,
    rounds: usize,
    /// `[audit] commit_delay_us`, when set (else the default).
    commit_delay_us: Option<u64>,
    warmup: Duration,
    run: Duration,
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
    let mut plan = if std::env::args().any(|a| a == "--bench") {
        Plan {
            clients: vec![8, 64],
            delays: DELAYS.to_vec(),
            rounds: 3,
            commit_delay_us: None,
            warmup: Duration::from_millis(500),
            run: Duration::from_secs(3),
        }
    } else {
        Plan {
            clients: vec![8],
            delays: DELAYS.to_vec(),
            rounds: 1,
            commit_delay_us: None,
            warmup: Duration::from_millis(50),
            run: Duration::from_millis(200),
        }
    };
    narrow(&mut plan);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(&plan));
}

/// `--clients N` and `--delay-us D` (each repeatable) and `--rounds R` narrow a run to the
/// cases named, for profiling one of them; `--commit-delay-us C` sets the audited sidecar's
/// `[audit] commit_delay_us`.
fn narrow(plan: &mut Plan) {
    let args: Vec<String> = std::env::args().collect();
    let values = |flag: &str| -> Vec<u64> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .filter_map(|w| w[1].parse().ok())
            .collect()
    };
    let clients = values("--clients");
    if !clients.is_empty() {
        plan.clients = clients
            .into_iter()
            .filter_map(|c| usize::try_from(c).ok())
            .collect();
    }
    let delays = values("--delay-us");
    if !delays.is_empty() {
        plan.delays = delays.into_iter().map(Duration::from_micros).collect();
    }
    if let Some(&rounds) = values("--rounds").last() {
        plan.rounds = usize::try_from(rounds).unwrap_or(1);
    }
    plan.commit_delay_us = values("--commit-delay-us").last().copied();
}

async fn run(plan: &Plan) {
    let (region, served) = stub_region().await;
    let spool_root = spool_root();
    let spool_dir = spool_root.path().join("spool");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
    let off = Sidecar::start(&config(region, None, None)).await;
    let on = Sidecar::start(&config(region, Some(&spool_dir), plan.commit_delay_us)).await;
    println!(
        "audit benchmark: PutItem of ~{} bytes, closed loop, {:?} warm-up then {:?} per run, {} round(s), medians; canned region on 127.0.0.1",
        put_body(0, 0).len(),
        plan.warmup,
        plan.run,
        plan.rounds,
    );
    println!(
        "spool: {} on {}",
        spool_dir.display(),
        filesystem(spool_root.path())
    );
    for &delay in &plan.delays {
        served.delay_us.store(
            u64::try_from(delay.as_micros()).unwrap_or(0),
            Ordering::Relaxed,
        );
        let mut rows = Vec::new();
        for &clients in &plan.clients {
            let mut rounds = Vec::new();
            for _ in 0..plan.rounds {
                let off_run = measure(&client, &off, clients, plan).await;
                let on_run = measure(&client, &on, clients, plan).await;
                let drained = drain(&client, &on, &served).await;
                rounds.push(Row {
                    clients,
                    off: off_run,
                    on: on_run,
                    drained,
                });
            }
            rows.push(rounds);
        }
        println!();
        println!("=== canned region answering after {delay:?} ===");
        print_throughput(&rows);
        print_shipping(&rows);
    }
    off.stop().await;
    on.stop().await;
}

/// The spool's parent: under Cargo's target dir, which is on the build's disk.
fn spool_root() -> tempfile::TempDir {
    let base = std::env::var_os("GLOBALSCALE_BENCH_SPOOL_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&base).expect("spool base dir");
    tempfile::tempdir_in(base).expect("spool temp dir")
}

/// The filesystem type and device holding `path`, from the longest mount point above it.
fn filesystem(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), format!("{kind} ({device} mounted on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "an unknown filesystem".to_owned(), |(_, fs)| fs)
}

fn config(region: SocketAddr, spool_dir: Option<&Path>, commit_delay_us: Option<u64>) -> Config {
    let mut text = format!(
        r#"listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[upstream_credentials]
access_key_id = "AKIDBENCH"
secret_access_key = "bench"
[[regions]]
name = "us-east-1"
endpoint = "http://{region}"
[[tables]]
name = "Bench"
partition_key = "pk"
sort_key = "sk"
"#
    );
    if let Some(dir) = spool_dir {
        let _ = write!(
            text,
            "audit = true\n[audit]\ntable = \"Bench-audit\"\nspool_dir = '{}'\nimages = \"new\"\n",
            dir.display()
        );
        if let Some(us) = commit_delay_us {
            let _ = writeln!(text, "commit_delay_us = {us}");
        }
    }
    Config::from_toml_str(&text).expect("config")
}

/// One sidecar in this process, and how to stop it.
struct Sidecar {
    addr: SocketAddr,
    admin: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl Sidecar {
    async fn start(config: &Config) -> Sidecar {
        let app = App::build(config.clone()).await.expect("app");
        let (addr, admin) = (app.listen_addr(), app.admin_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            app.run(async move {
                let _ = stopped.await;
            })
            .await
            .expect("sidecar run");
        });
        Sidecar {
            addr,
            admin,
            stop,
            running,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.running).await;
    }
}

/// The audit counters of a sidecar's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct Audit {
    spooled: u64,
    shipped: u64,
    failed: u64,
    fsyncs: u64,
    largest_group: u64,
    backlog: u64,
}

async fn scrape(client: &HttpClient, sidecar: &Sidecar) -> Audit {
    let request = Request::get(format!("http://{}/metrics", sidecar.admin))
        .body(Full::default())
        .expect("request");
    let response = client.request(request).await.expect("scrape /metrics");
    let body = response.into_body().collect().await.expect("metrics body");
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    let value = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let records = |outcome: &str| {
        value(&format!(
            "globalscale_audit_records_total{{outcome=\"{outcome}\"}}"
        ))
    };
    Audit {
        spooled: records("spooled"),
        shipped: records("shipped"),
        failed: records("failed"),
        fsyncs: value("globalscale_audit_spool_fsyncs_total"),
        largest_group: value("globalscale_audit_spool_largest_group"),
        backlog: value("globalscale_audit_backlog"),
    }
}

/// One configuration at one concurrency.
struct Measured {
    rate: f64,
    /// Process CPU time (every thread: clients, sidecars, stub, spool writer) per 200.
    cpu_per_put: Duration,
    errors: usize,
    latencies: Vec<Duration>,
    /// Audit counters before the warm-up, then around the measured run.
    before_warmup: Audit,
    before: Audit,
    after: Audit,
}

async fn measure(client: &HttpClient, sidecar: &Sidecar, clients: usize, plan: &Plan) -> Measured {
    let before_warmup = scrape(client, sidecar).await;
    load(client, sidecar.addr, clients, plan.warmup).await;
    let before = scrape(client, sidecar).await;
    let cpu = cpu_time();
    let (elapsed, latencies, errors) = load(client, sidecar.addr, clients, plan.run).await;
    let cpu = cpu_time().saturating_sub(cpu);
    let after = scrape(client, sidecar).await;
    Measured {
        rate: per_second(latencies.len() as u64, elapsed),
        cpu_per_put: cpu / u32::try_from(latencies.len().max(1)).unwrap_or(u32::MAX),
        errors,
        latencies,
        before_warmup,
        before,
        after,
    }
}

/// `clients` loops of PutItem for `duration`: the time they took, the latencies of the 200s
/// (sorted), and how many answers were anything else.
async fn load(
    client: &HttpClient,
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
) -> (Duration, Vec<Duration>, usize) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                for i in 0.. {
                    if started.elapsed() >= duration {
                        break;
                    }
                    let sent = Instant::now();
                    if put(&client, addr, put_body(task, i)).await {
                        latencies.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    (elapsed, latencies, errors)
}

/// User and system CPU time of this process so far, from `/proc/self/stat` (in ticks of
/// 1/100 s, `USER_HZ` on Linux); zero where there is no procfs.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |at: usize| fields.get(at).and_then(|v| v.parse::<u64>().ok());
    let total = ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0);
    Duration::from_millis(total * 10)
}

fn put_body(task: usize, i: usize) -> Bytes {
    let value = "v".repeat(VALUE_BYTES);
    Bytes::from(format!(
        r#"{{"TableName":"Bench","Item":{{"pk":{{"S":"k{task}-{i}"}},"sk":{{"S":"s"}},"v":{{"S":"{value}"}}}}}}"#
    ))
}

/// Sends one PutItem; whether it was answered 200 (anything else is printed, the first few).
async fn put(client: &HttpClient, addr: SocketAddr, body: Bytes) -> bool {
    static PRINTED: AtomicU64 = AtomicU64::new(0);
    let request = Request::post(format!("http://{addr}/"))
        .header("x-amz-target", "DynamoDB_20120810.PutItem")
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
        .body(Full::new(body))
        .expect("request");
    let (status, answer) = match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes);
            (Some(status), body.unwrap_or_default())
        }
        Err(e) => (None, Bytes::from(e.to_string())),
    };
    let ok = status == Some(StatusCode::OK);
    if !ok && PRINTED.fetch_add(1, Ordering::Relaxed) < 3 {
        eprintln!(
            "PutItem answered {status:?}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    ok
}

/// What shipping looked like after an audited run.
struct Drained {
    /// From the end of the measured run to backlog 0.
    took: Duration,
    audit: Audit,
    /// BatchWriteItem calls the stub region received, warm-up to drained.
    batches: u64,
    /// Shipping lag of every record the stub region received, sorted, in milliseconds.
    lags: Vec<u64>,
}

/// Waits for the shipper to empty the spool (at most a minute), and takes what the stub
/// region counted of the shipping meanwhile.
async fn drain(client: &HttpClient, sidecar: &Sidecar, served: &Served) -> Drained {
    let started = Instant::now();
    loop {
        let audit = scrape(client, sidecar).await;
        if audit.backlog == 0 || started.elapsed() > Duration::from_mins(1) {
            let mut lags = std::mem::take(&mut *served.lags.lock().expect("lags"));
            lags.sort_unstable();
            return Drained {
                took: started.elapsed(),
                audit,
                batches: served.batches.swap(0, Ordering::Relaxed),
                lags,
            };
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Row {
    clients: usize,
    off: Measured,
    on: Measured,
    drained: Drained,
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The median over the rounds of `figure`.
fn over(rounds: &[Row], figure: impl Fn(&Row) -> f64) -> f64 {
    median(rounds.iter().map(figure).collect())
}

fn print_throughput(rows: &[Vec<Row>]) {
    println!(
        "clients  PutItem/s off  PutItem/s on  cost %  p50 off ms  p50 on ms  added p50 us  p99 off ms  p99 on ms  CPU us/put off  CPU us/put on  records/fsync  largest group  errors off/on"
    );
    for rounds in rows {
        let Some(first) = rounds.first() else {
            continue;
        };
        let off = over(rounds, |r| r.off.rate);
        let on = over(rounds, |r| r.on.rate);
        let p50_off = over(rounds, |r| ms(pct(&r.off.latencies, 50)));
        let p50_on = over(rounds, |r| ms(pct(&r.on.latencies, 50)));
        let per_fsync = over(rounds, |r| {
            ratio(
                r.on.after.spooled - r.on.before.spooled,
                r.on.after.fsyncs - r.on.before.fsyncs,
            )
        });
        let errors: (usize, usize) = rounds
            .iter()
            .fold((0, 0), |(a, b), r| (a + r.off.errors, b + r.on.errors));
        println!(
            "{:>7}  {:>13.0}  {:>12.0}  {:>6.1}  {:>10.3}  {:>9.3}  {:>12.0}  {:>10.3}  {:>9.3}  {:>14.1}  {:>13.1}  {:>13.2}  {:>13}  {:>6}/{}",
            first.clients,
            off,
            on,
            (off - on) / off * 100.0,
            p50_off,
            p50_on,
            (p50_on - p50_off) * 1_000.0,
            over(rounds, |r| ms(pct(&r.off.latencies, 99))),
            over(rounds, |r| ms(pct(&r.on.latencies, 99))),
            over(rounds, |r| us(r.off.cpu_per_put)),
            over(rounds, |r| us(r.on.cpu_per_put)),
            per_fsync,
            rounds
                .iter()
                .map(|r| r.on.after.largest_group)
                .max()
                .unwrap_or(0),
            errors.0,
            errors.1,
        );
    }
    println!(
        "(medians over the rounds; CPU: the whole process's, clients and canned region included, over the run / PutItems answered 200; records/fsync: intents spooled / spool fsyncs over the audited run (settlements take no fsync of their own); largest group: the most one fsync covered since start-up)"
    );
}

fn print_shipping(rows: &[Vec<Row>]) {
    println!(
        "clients  spooled (warm-up + run)  shipped  failed  backlog  drained in ms  BatchWriteItems  records/batch  lag p50 ms  lag p99 ms"
    );
    for rounds in rows {
        for row in rounds {
            let (start, end) = (row.on.before_warmup, row.drained.audit);
            let shipped = end.shipped - start.shipped;
            let lag = |p: usize| {
                let lags = &row.drained.lags;
                lags.get((lags.len() * p / 100).min(lags.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "{:>7}  {:>23}  {:>7}  {:>6}  {:>7}  {:>13.0}  {:>15}  {:>13.1}  {:>10}  {:>10}",
                row.clients,
                end.spooled - start.spooled,
                shipped,
                end.failed - start.failed,
                end.backlog,
                ms(row.drained.took),
                row.drained.batches,
                ratio(shipped, row.drained.batches),
                lag(50),
                lag(99),
            );
        }
    }
    println!(
        "(per round; lag: from a record's event id, fixed when its intent was spooled, to the canned region receiving it, millisecond resolution)"
    );
}

#[allow(clippy::cast_precision_loss)]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000_000.0
}

/// Counts the stub region keeps.
#[derive(Default)]
struct Served {
    requests: AtomicU64,
    batches: AtomicU64,
    /// How long the region takes to answer anything but `DescribeTable`, in µs.
    delay_us: AtomicU64,
    /// Shipping lag of each record received, in ms.
    lags: std::sync::Mutex<Vec<u64>>,
    delays: DelayLine,
}

/// What the canned region's answers wait on: a thread that wakes each at its deadline, to
/// within the kernel's timer slack (tens of µs). Not tokio's timer: its 1 ms ticks round
/// every delay up to the next tick, and a closed loop then locks to the ticks, so that a
/// request reaching the region 0.1 ms later costs a whole millisecond, or none: the
/// difference between two sidecars would be measured in the timer's steps.
struct DelayLine {
    queue: std::sync::Mutex<std::sync::mpsc::Sender<(Instant, tokio::sync::oneshot::Sender<()>)>>,
}

impl Default for DelayLine {
    fn default() -> Self {
        let (queue, waiting) =
            std::sync::mpsc::channel::<(Instant, tokio::sync::oneshot::Sender<()>)>();
        std::thread::Builder::new()
            .name("stub-delays".into())
            .spawn(move || {
                let mut due = std::collections::BinaryHeap::new();
                let mut order = 0u64;
                loop {
                    let next = due.peek().map(
                        |std::cmp::Reverse((at, _, _)): &std::cmp::Reverse<(Instant, u64, _)>| *at,
                    );
                    let received = match next {
                        Some(at) => {
                            waiting.recv_timeout(at.saturating_duration_since(Instant::now()))
                        }
                        None => waiting
                            .recv()
                            .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected),
                    };
                    match received {
                        Ok((at, wake)) => {
                            order += 1;
                            due.push(std::cmp::Reverse((at, order, Waker(wake))));
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    let now = Instant::now();
                    while due
                        .peek()
                        .is_some_and(|std::cmp::Reverse((at, _, _))| *at <= now)
                    {
                        if let Some(std::cmp::Reverse((_, _, Waker(wake)))) = due.pop() {
                            let _ = wake.send(());
                        }
                    }
                }
            })
            .expect("delay thread");
        DelayLine {
            queue: std::sync::Mutex::new(queue),
        }
    }
}

impl DelayLine {
    async fn sleep(&self, delay: Duration) {
        let (wake, woken) = tokio::sync::oneshot::channel();
        let sent = self
            .queue
            .lock()
            .expect("delay queue")
            .send((Instant::now() + delay, wake));
        if sent.is_ok() {
            let _ = woken.await;
        }
    }
}

/// A oneshot sender in the delay heap, which orders by deadline and arrival only.
struct Waker(tokio::sync::oneshot::Sender<()>);

impl PartialEq for Waker {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Waker {}
impl PartialOrd for Waker {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waker {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// A region that answers every request after `Served::delay_us`: `DescribeTable` (at once)
/// with the bench table's key schema, everything else (PutItem, the shipper's
/// BatchWriteItem, the probe's GetItem) `{}`. Returns its address and what it counts.
async fn stub_region() -> (SocketAddr, Arc<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
    let addr = listener.local_addr().expect("stub addr");
    let served = Arc::new(Served::default());
    let counted = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(request, Arc::clone(&served)));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, counted)
}

async fn answer(
    request: Request<Incoming>,
    served: Arc<Served>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = request.headers().get("x-amz-target");
    let is = |operation: &[u8]| target.is_some_and(|t| t.as_bytes().ends_with(operation));
    let describe = is(b".DescribeTable");
    let batch = is(b".BatchWriteItem");
    // Read the whole request, as a region does before answering.
    let body = request
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    if batch {
        served.batches.fetch_add(1, Ordering::Relaxed);
        let lags = shipping_lags(&body);
        served.lags.lock().expect("lags").extend(lags);
    }
    let delay = served.delay_us.load(Ordering::Relaxed);
    if !describe && delay > 0 {
        served.delays.sleep(Duration::from_micros(delay)).await;
    }
    let body: &'static str = if describe { DESCRIBE } else { "{}" };
    let id = served.requests.fetch_add(1, Ordering::Relaxed);
    let response = Response::builder()
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-crc32", crc32fast::hash(body.as_bytes()).to_string())
        .header("x-amzn-requestid", format!("BENCH{id:020}"))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("response");
    Ok(response)
}

/// For each record of a BatchWriteItem: milliseconds from its event id's time to now.
fn shipping_lags(body: &[u8]) -> Vec<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let puts = request["RequestItems"]
        .as_object()
        .into_iter()
        .flat_map(|tables| tables.values())
        .filter_map(serde_json::Value::as_array)
        .flatten();
    puts.filter_map(|put| put["PutRequest"]["Item"]["EventId"]["S"].as_str())
        .filter_map(|id| ulid::Ulid::from_string(id).ok())
        .map(|id| now.saturating_sub(id.timestamp_ms()))
        .collect()
}
