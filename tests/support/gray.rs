//! Read load for gray failures: SDK readers (eventually consistent GetItem, the SDK's own
//! retries off) whose every latency and error is kept, taken phase by phase, and a small
//! summary of a phase (count, errors, p50, p99, reads per region from the sidecar's metrics);
//! with writers, a small write load during the faults ([`super::gray_writes`]).
//! `GRAY_STATUS=1` also prints the sidecar's `/status` JSON after each phase of [`scenario`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::task::JoinHandle;

use super::gray_writes::{Tally, WriteLoad, read_back};
use super::{TABLE, get, metric_sum, sdk_client_with};

/// Readers running until [`ReadLoad::stop`].
pub(crate) struct ReadLoad {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

/// One phase's reads.
#[derive(Debug)]
pub(crate) struct Phase {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) errors: Vec<String>,
}

impl Phase {
    /// The `q` quantile (0 to 1) of the latencies.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[at]
    }

    /// `reads, errors, p50, p99` as one line.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} reads, {} failed, p50 {:.1} ms, p99 {:.1} ms",
            self.latencies.len(),
            self.errors.len(),
            self.quantile(0.5).as_secs_f64() * 1e3,
            self.quantile(0.99).as_secs_f64() * 1e3
        )
    }
}

impl ReadLoad {
    /// `readers` tasks reading the item `item` over and over through `endpoint`.
    pub(crate) fn start(endpoint: &str, readers: usize, item: &str) -> Self {
        let client = sdk_client_with(endpoint, None, |b| {
            b.retry_config(RetryConfig::disabled()).timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
        });
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let tasks = (0..readers)
            .map(|_| {
                let (client, stop, seen) = (client.clone(), Arc::clone(&stop), Arc::clone(&seen));
                let item = item.to_owned();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Acquire) {
                        let started = Instant::now();
                        let result = client
                            .get_item()
                            .table_name(TABLE)
                            .key("ItemID", AttributeValue::S(item.clone()))
                            .key("Category", AttributeValue::S("Gray".into()))
                            .send()
                            .await;
                        let elapsed = started.elapsed();
                        let mut seen = seen.lock().expect("seen");
                        match result {
                            Ok(_) => seen.latencies.push(elapsed),
                            Err(e) => seen.errors.push(format!(
                                "GetItem: {}",
                                aws_sdk_dynamodb::error::DisplayErrorContext(e)
                            )),
                        }
                    }
                })
            })
            .collect();
        Self { stop, seen, tasks }
    }

    /// The reads that ended since the previous call.
    pub(crate) fn take(&self) -> Phase {
        let mut seen = self.seen.lock().expect("seen");
        Phase {
            latencies: std::mem::take(&mut seen.latencies),
            errors: std::mem::take(&mut seen.errors),
        }
    }

    /// Reads ended since the previous [`take`](Self::take).
    pub(crate) fn count(&self) -> usize {
        self.seen.lock().expect("seen").latencies.len()
    }

    /// Stops the readers; what they read since the last take.
    pub(crate) async fn stop(self) -> Phase {
        self.stop.store(true, Ordering::Release);
        for task in self.tasks {
            task.await.expect("reader task");
        }
        let mut seen = self.seen.lock().expect("seen");
        Phase {
            latencies: std::mem::take(&mut seen.latencies),
            errors: std::mem::take(&mut seen.errors),
        }
    }
}

/// Per-region totals of the sidecar's counters that a phase's figures are differences of.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    /// Successful GetItem attempts per region, in `regions` order.
    pub(crate) reads: Vec<f64>,
    pub(crate) hedges: f64,
    pub(crate) hedges_won: f64,
    pub(crate) eventual_reads: f64,
}

impl Counts {
    pub(crate) async fn read(admin: SocketAddr, regions: &[&str]) -> Self {
        let text = get(admin, "/metrics").await.text();
        let sum =
            |name: &str, labels: &[(&str, &str)]| metric_sum(&text, name, labels).unwrap_or(0.0);
        Self {
            reads: regions
                .iter()
                .map(|region| {
                    sum(
                        "globalscale_upstream_requests_total",
                        &[
                            ("region", region),
                            ("operation", "GetItem"),
                            ("outcome", "success"),
                        ],
                    )
                })
                .collect(),
            hedges: sum("globalscale_hedges_total", &[]),
            hedges_won: sum("globalscale_hedges_won_total", &[]),
            eventual_reads: sum("globalscale_eventual_reads_total", &[]),
        }
    }

    /// What happened between `earlier` and `self`.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            reads: self
                .reads
                .iter()
                .zip(&earlier.reads)
                .map(|(now, then)| now - then)
                .collect(),
            hedges: self.hedges - earlier.hedges,
            hedges_won: self.hedges_won - earlier.hedges_won,
            eventual_reads: self.eventual_reads - earlier.eventual_reads,
        }
    }

    /// Hedges as a share of eventually consistent reads.
    pub(crate) fn hedge_share(&self) -> f64 {
        if self.eventual_reads == 0.0 {
            0.0
        } else {
            self.hedges / self.eventual_reads
        }
    }
}

/// The regions of the scenario, home first; only home has a fault front.
pub(crate) const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-central-1"];

/// One phase of [`scenario`]: what the readers saw and what the regions received.
#[derive(Debug)]
pub(crate) struct PhaseReport {
    pub(crate) name: &'static str,
    pub(crate) reads: Phase,
    pub(crate) counts: Counts,
    /// Whether home was demoted for reads or ejected at some point of the phase.
    pub(crate) home_left: bool,
}

impl PhaseReport {
    pub(crate) fn print(&self) {
        let per_region: Vec<String> = REGIONS
            .iter()
            .zip(&self.counts.reads)
            .map(|(r, n)| format!("{r} {n:.0}"))
            .collect();
        println!(
            "{:<22} {}; served: {}; hedges {:.0} ({:.1} % of reads), won {:.0}",
            self.name,
            self.reads.summary(),
            per_region.join(", "),
            self.counts.hedges,
            self.counts.hedge_share() * 100.0,
            self.counts.hedges_won,
        );
    }
}

/// Everything [`scenario`] measured, phase by phase.
#[derive(Debug)]
pub(crate) struct Scenario {
    pub(crate) phases: Vec<PhaseReport>,
    /// Where a PutItem sent while home was slow was served.
    pub(crate) write_while_slow: String,
    /// Whether that PutItem went to home first (it may move on after a timeout, by the
    /// retry rules, but never on latency alone).
    pub(crate) write_sent_home: bool,
    /// Per fault phase, what each writer was told and what its item holds at the end.
    pub(crate) writes: Vec<(&'static str, Vec<Tally>)>,
}

impl Scenario {
    pub(crate) fn phase(&self, name: &str) -> &PhaseReport {
        self.phases
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no phase {name}"))
    }

    /// The issue's figures.
    pub(crate) fn print_figures(&self) {
        let healthy = self.phase("healthy");
        let slow = self.phase("home 400 ms slow");
        let hole = self.phase("home black-holed");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "healthy: p99 {:.1} ms, hedges {:.2} % of reads (target at most 5 %)",
            ms(healthy.reads.quantile(0.99)),
            healthy.counts.hedge_share() * 100.0
        );
        println!(
            "home 400 ms slow: p99 {:.1} ms against healthy p99 + 100 ms = {:.1} ms; {} failed",
            ms(slow.reads.quantile(0.99)),
            ms(healthy.reads.quantile(0.99)) + 100.0,
            slow.reads.errors.len()
        );
        println!(
            "home black-holed: p99 {:.1} ms (target at most 300 ms); {} failed",
            ms(hole.reads.quantile(0.99)),
            hole.reads.errors.len()
        );
    }
}

/// Polls `admin` for `name{region=home}` until it reads `value`, up to a minute.
async fn wait_home(admin: SocketAddr, name: &str, value: f64) {
    let started = Instant::now();
    while super::metric(admin, name, &[("region", REGIONS[0])]).await != Some(value) {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "{name} of home never {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether home is demoted for reads or ejected now.
async fn home_left(admin: SocketAddr) -> bool {
    let home = [("region", REGIONS[0])];
    super::metric(admin, "globalscale_region_read_demoted", &home).await == Some(1.0)
        || super::metric(admin, "globalscale_region_healthy", &home).await == Some(0.0)
}

/// A PutItem through `sidecar` while home is slow: the region that served it, and whether
/// it was sent home first.
async fn put_while_slow(sidecar: &super::Sidecar, home: &super::RegionFixture) -> (String, bool) {
    let write_body = format!(
        r#"{{"TableName":"{TABLE}","Item":{{"ItemID":{{"S":"gray-w"}},"Category":{{"S":"Gray"}}}}}}"#
    );
    let write = super::RawRequest::new("PutItem", write_body)
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(write.status, 200, "{}", write.text());
    let write_while_slow = write
        .header("x-globalscale-region")
        .unwrap_or_default()
        .to_owned();
    let write_sent_home = home
        .recorded_op("PutItem")
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains("gray-w"));
    println!(
        "a PutItem while home is slow: sent home first: {write_sent_home}, served by {write_while_slow}"
    );
    (write_while_slow, write_sent_home)
}

/// Three regions on one DynamoDB Local, a fault front before home, four SDK readers: a
/// healthy window, home answering 400 ms late, its recovery, home silent, its recovery.
/// Each fault lasts `window`; `[routing] failback_ramp_ms` is `ramp_ms`, the rest defaults.
pub(crate) async fn scenario(window: Duration, ramp_ms: u64) -> Scenario {
    scenario_with_writers(window, ramp_ms, 0).await
}

/// [`scenario`], with `writers` SDK writers during each fault, each on an item of its own.
pub(crate) async fn scenario_with_writers(
    window: Duration,
    ramp_ms: u64,
    writers: usize,
) -> Scenario {
    use super::{
        DynamoLocal, Mode, RegionFixture, Sidecar, SidecarConfig, create_global_catalog, item,
        sdk_client,
    };
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    direct
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("gray-1", "Gray", &[("Name", "read me")])))
        .send()
        .await
        .expect("PutItem");
    let config = SidecarConfig::new()
        .timeouts(500, 1_000, 5_000)
        .section(&format!("[routing]\nfailback_ramp_ms = {ramp_ms}"))
        .region(REGIONS[0], &home.endpoint())
        .region(REGIONS[1], &ddb.endpoint(0))
        .region(REGIONS[2], &ddb.endpoint(0));
    let sidecar = Sidecar::start(&config).await;
    let admin = sidecar.admin_addr();
    let load = ReadLoad::start(&sidecar.endpoint(), 4, "gray-1");
    // Warm-up: connections, the schema, home's latency baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = load.take();
    let mut phases = Vec::new();
    let mut counts = Counts::read(admin, &REGIONS).await;
    let mut phase = async |name: &'static str, until: &mut dyn FnMut() -> bool| {
        let started = Instant::now();
        let mut left = false;
        while started.elapsed() < window || !until() {
            left |= home_left(admin).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let now = Counts::read(admin, &REGIONS).await;
        let report = PhaseReport {
            name,
            reads: load.take(),
            counts: now.since(&counts),
            home_left: left,
        };
        report.print();
        if std::env::var_os("GRAY_STATUS").is_some() {
            let accept = [("accept", "application/json")];
            let status =
                super::admin_request(admin, http::Method::GET, "/status", &accept, "").await;
            let status = status.text();
            println!("{status}");
        }
        counts = now;
        report
    };
    phases.push(phase("healthy", &mut || true).await);

    home.set_mode(Mode::Delay(Duration::from_millis(400))).await;
    let (write_while_slow, write_sent_home) = put_while_slow(&sidecar, &home).await;
    let mut written = Vec::new();
    let writing = WriteLoad::start(&sidecar.endpoint(), &direct, writers, "gray-slow").await;
    phases.push(phase("home 400 ms slow", &mut || true).await);
    written.push(("home 400 ms slow", writing.stop().await));

    home.set_mode(Mode::Forward).await;
    wait_home(admin, "globalscale_region_read_demoted", 0.0).await;
    phases.push(phase("slow: recovery", &mut || true).await);

    home.set_mode(Mode::BlackHole).await;
    let writing = WriteLoad::start(&sidecar.endpoint(), &direct, writers, "gray-hole").await;
    phases.push(phase("home black-holed", &mut || true).await);
    written.push(("home black-holed", writing.stop().await));

    home.set_mode(Mode::Forward).await;
    wait_home(admin, "globalscale_region_healthy", 1.0).await;
    wait_home(admin, "globalscale_region_read_demoted", 0.0).await;
    phases.push(phase("black hole: recovery", &mut || true).await);

    let rest = load.stop().await;
    assert!(
        rest.errors.is_empty(),
        "reads failed at the end: {:?}",
        rest.errors
    );
    drop(sidecar);
    // Read last: a write the sidecar gave up on may still reach the store after its answer.
    read_back(&direct, &mut written).await;
    Scenario {
        phases,
        write_while_slow,
        write_sent_home,
        writes: written,
    }
}
