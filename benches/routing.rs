//! Routing figures against a real DynamoDB Local, printed, never asserted:
//!
//! - the sidecar's own overhead (GetItem straight to DynamoDB Local vs through the sidecar);
//! - what a killed home region (connection refused) adds to each request;
//! - what a black-holed home region costs the request in flight (about one attempt timeout);
//! - how long after the home region answers again traffic returns to it (fail back).
//!
//! `cargo bench --bench routing` (needs Java 17 and npm, like the tests).

// A measuring program: a failed set-up step should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use globalscale::app::App;
use globalscale::config::Config;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

const SAMPLES: usize = 400;
const GET: &str = r#"{"TableName":"Bench","Key":{"pk":{"S":"k1"}}}"#;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// DynamoDB Local, and its data directory (removed after the process is gone).
struct Jvm(Child, #[allow(dead_code)] tempfile::TempDir);
impl Drop for Jvm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let (_jvm, dynamo) = start_dynamodb_local().await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    send(&client, dynamo, "CreateTable", r#"{"TableName":"Bench","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#).await;
    send(
        &client,
        dynamo,
        "PutItem",
        r#"{"TableName":"Bench","Item":{"pk":{"S":"k1"},"v":{"S":"x"}}}"#,
    )
    .await;

    println!(
        "routing benchmark: {SAMPLES} sequential GetItem requests per case, DynamoDB Local on 127.0.0.1"
    );
    let direct = measure(&client, dynamo, SAMPLES, 500).await;
    report("direct to DynamoDB Local", &direct);

    let dynamo_url = format!("http://{dynamo}");
    let sidecar = start_sidecar(&[("us-east-1", &dynamo_url)], 1_000, 100).await;
    let through = measure(&client, sidecar, SAMPLES, 100).await;
    report("through the sidecar, home healthy", &through);
    println!(
        "  sidecar overhead p50: {:.3} ms",
        ms(pct(&through, 50)) - ms(pct(&direct, 50))
    );
    for (name, addr) in [("direct", dynamo), ("sidecar", sidecar)] {
        concurrent(&client, addr, name, 16, Duration::from_secs(3)).await;
    }

    // Nothing listens on the home port: every request pays one refused connect until the
    // region is ejected after 100 failures (live and probes), so 80 requests measure
    // exactly that cost.
    let refused = format!("http://{}", free_addr().await);
    let sidecar = start_sidecar(
        &[("us-east-1", &refused), ("us-west-2", &dynamo_url)],
        1_000,
        100,
    )
    .await;
    let killed = measure(&client, sidecar, 80, 0).await;
    report(
        "home killed (connection refused), not yet ejected (80 requests)",
        &killed,
    );
    println!(
        "  extra per request vs healthy home: p50 {:.3} ms, p99 {:.3} ms (target < 5 ms)",
        ms(pct(&killed, 50)) - ms(pct(&through, 50)),
        ms(pct(&killed, 99)) - ms(pct(&through, 99))
    );

    // A home region that accepts and never answers: the request in flight waits one
    // attempt timeout, then moves on.
    let hole = black_hole().await;
    let sidecar = start_sidecar(
        &[
            ("us-east-1", &format!("http://{hole}")),
            ("us-west-2", &dynamo_url),
        ],
        1_000,
        100,
    )
    .await;
    let holed = measure(&client, sidecar, 3, 0).await;
    report("home black-holed, attempt_ms = 1000 (3 requests)", &holed);

    fail_back(&client, &dynamo_url, dynamo).await;
}

/// Time from the home region listening again to the first request it serves.
async fn fail_back(client: &HttpClient, dynamo_url: &str, dynamo: SocketAddr) {
    let home = free_addr().await;
    let sidecar = start_sidecar(
        &[
            ("us-east-1", &format!("http://{home}")),
            ("us-west-2", dynamo_url),
        ],
        1_000,
        3,
    )
    .await;
    // Let probes eject the home region.
    for _ in 0..50 {
        send(client, sidecar, "GetItem", GET).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revived = Instant::now();
    let forwarder = tokio::spawn(forward(
        TcpListener::bind(home).await.expect("bind home"),
        dynamo,
    ));
    let mut served_by_home = None;
    while revived.elapsed() < Duration::from_secs(30) {
        let (_, region) = send(client, sidecar, "GetItem", GET).await;
        if region.as_deref() == Some("us-east-1") {
            served_by_home = Some(revived.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match served_by_home {
        Some(t) => println!(
            "fail back: home served again {:.0} ms after it came back (target < 5000 ms)",
            ms(t)
        ),
        None => println!("fail back: home did not serve within 30 s"),
    }
    forwarder.abort();
}

async fn measure(client: &HttpClient, addr: SocketAddr, n: usize, warmup: usize) -> Vec<Duration> {
    for _ in 0..warmup {
        send(client, addr, "GetItem", GET).await;
    }
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let (status, _) = send(client, addr, "GetItem", GET).await;
        assert!(status.is_success(), "GetItem answered {status}");
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / total.as_secs_f64();
    println!("  throughput: {rate:.0} req/s (one client, sequential)");
    samples
}

/// `clients` concurrent loops of GetItem for `duration`: throughput and latency side by side.
async fn concurrent(
    client: &HttpClient,
    addr: SocketAddr,
    name: &str,
    clients: usize,
    duration: Duration,
) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while started.elapsed() < duration {
                let t = Instant::now();
                let (status, _) = send(&client, addr, "GetItem", GET).await;
                assert!(status.is_success(), "GetItem answered {status}");
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("load task"));
    }
    samples.sort();
    #[allow(clippy::cast_precision_loss)]
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "{name}, {clients} concurrent clients: {rate:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
        ms(pct(&samples, 50)),
        ms(pct(&samples, 99))
    );
}

fn report(name: &str, samples: &[Duration]) {
    println!(
        "{name}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(pct(samples, 50)),
        ms(pct(samples, 99)),
        ms(samples[samples.len() - 1])
    );
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    op: &str,
    body: &'static str,
) -> (http::StatusCode, Option<String>) {
    let request = http::Request::post(format!("http://{addr}/"))
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let response = client.request(request).await.expect("send");
    let status = response.status();
    let region = response
        .headers()
        .get("x-globalscale-region")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    if !status.is_success() {
        eprintln!(
            "{op} answered {status} from {region:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    (status, region)
}

async fn start_sidecar(regions: &[(&str, &str)], attempt_ms: u64, eject_after: u32) -> SocketAddr {
    use std::fmt::Write;
    let mut text = String::from(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[upstream_credentials]\naccess_key_id = \"AKIDBENCH\"\nsecret_access_key = \"bench\"\n",
    );
    for (name, endpoint) in regions {
        let _ = write!(
            text,
            "[[regions]]\nname = \"{name}\"\nendpoint = \"{endpoint}\"\n"
        );
    }
    let _ = write!(
        text,
        "[timeouts]\nconnect_ms = 500\nattempt_ms = {attempt_ms}\nrequest_ms = 10000\n[routing]\nprobe_interval_ms = 500\neject_after_failures = {eject_after}\nreadmit_after_successes = 2\n"
    );
    let config = Config::from_toml_str(&text).expect("config");
    let app = App::build(config).await.expect("app");
    let addr = app.listen_addr();
    tokio::spawn(app.run(std::future::pending()));
    addr
}

async fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Accepts connections and never answers.
async fn black_hole() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A plain TCP forwarder: the home region "coming back".
async fn forward(listener: TcpListener, to: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn start_dynamodb_local() -> (Jvm, SocketAddr) {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = if let Ok(dir) = std::env::var("DYNAMODB_LOCAL_DIR") {
        dir
    } else {
        let out = Command::new(format!("{root}/deploy/local/fetch-dynamodb-local"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run deploy/local/fetch-dynamodb-local");
        assert!(out.status.success(), "fetch-dynamodb-local failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("dir")
            .to_owned()
    };
    let addr = free_addr().await;
    // One shared store on disk: regions differ only by the region in each signature, and
    // DynamoDB Local keeps a store per region unless it shares one.
    let data = tempfile::tempdir().expect("temp dir");
    let child = Command::new("java")
        .arg(format!("-Djava.library.path={dir}/DynamoDBLocal_lib"))
        .args([
            "-jar",
            &format!("{dir}/DynamoDBLocal.jar"),
            "-port",
            &addr.port().to_string(),
            "-sharedDb",
            "-dbPath",
            &data.path().display().to_string(),
            "-disableTelemetry",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("java (DynamoDB Local needs Java 17)");
    let jvm = Jvm(child, data);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    loop {
        let request = http::Request::post(format!("http://{addr}/"))
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        if let Ok(r) = client.request(request).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "DynamoDB Local did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (jvm, addr)
}
