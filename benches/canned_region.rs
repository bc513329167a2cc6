//! A canned DynamoDB region as a process of its own, answering after a set delay: the region
//! behind the load harness's audit phase (`benches/load/run --only audit`), where the sidecar
//! runs as a real process and auditing's spool fsync should hide behind the region's work.
//!
//! `canned_region --listen 127.0.0.1:PORT --delay-us N` answers by `X-Amz-Target` alone, the
//! bodies the harness's nginx region answers (`benches/load/bodies.py`): `DescribeTable` with
//! the harness table's key schema, `BatchWriteItem` with no `UnprocessedItems`, everything
//! else `{}`; each with its `x-amz-crc32` and an `x-amzn-requestid`, released `N` µs after
//! the request was read (0: at once). It also measures the audit shipper's lag: every item of
//! a `BatchWriteItem` that carries an `EventId` ULID counts now minus the ULID's time, and
//! `GET /lags` answers their count, p50 and p99 in ms, then starts over.
//!
//! Lean on purpose, so the CPU it takes from the 2-core machine stays small beside the
//! sidecar's: one tokio thread, one delay thread, no body parsed but `BatchWriteItem`'s.
//! Without `--listen` it prints its usage and exits at once: `cargo bench` and
//! `cargo test --all-targets` run every bench target.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const USAGE: &str = "usage: canned_region --listen 127.0.0.1:PORT [--delay-us N] (a canned DynamoDB region for benches/load/run; nothing to do without --listen)";

/// `DescribeTable`'s answer: `bodies.py`'s, the key schema the sidecar reads at start.
const DESCRIBE_TABLE: &str = r#"{"Table":{"TableName":"GlobalCatalog","TableStatus":"ACTIVE","TableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/GlobalCatalog","KeySchema":[{"AttributeName":"ItemID","KeyType":"HASH"},{"AttributeName":"Category","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"ItemID","AttributeType":"S"},{"AttributeName":"Category","AttributeType":"S"}],"BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST"},"ItemCount":0,"TableSizeBytes":0,"CreationDateTime":1767225600.0}}"#;
/// `BatchWriteItem`'s answer: every item stored, none left for the shipper to resend.
const BATCH_WRITE_ITEM: &str = r#"{"UnprocessedItems":{}}"#;
const EMPTY: &str = "{}";

#[derive(Parser)]
#[command(about = "A canned DynamoDB region for the load harness")]
struct Args {
    /// Where to listen, e.g. 127.0.0.1:8000.
    #[arg(long)]
    listen: SocketAddr,
    /// Microseconds from reading a request to releasing its answer (0: at once).
    #[arg(long, default_value_t = 2000)]
    delay_us: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if !std::env::args().any(|a| a == "--listen" || a.starts_with("--listen=")) {
        println!("{USAGE}");
        return Ok(());
    }
    let args = Args::parse();
    // One thread: the region must not take the sidecar's CPU; it does little per request.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(args.listen).await?;
    let delay = Duration::from_micros(args.delay_us);
    let region = Arc::new(Region {
        delays: (!delay.is_zero())
            .then(|| DelayLine::start(delay))
            .transpose()?,
        requests: AtomicU64::new(0),
        lags: Mutex::default(),
    });
    eprintln!(
        "canned region: listening on {}, answering after {} µs",
        listener.local_addr()?,
        args.delay_us
    );
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: wait for connections to close.
                eprintln!("canned region: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let region = Arc::clone(&region);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&region)));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the region keeps between requests.
struct Region {
    /// None when answers go out at once.
    delays: Option<DelayLine>,
    requests: AtomicU64,
    lags: Mutex<Lags>,
}

/// The shipping lags seen since the last `GET /lags`.
#[derive(Default)]
struct Lags {
    ms: Vec<u64>,
    batches: u64,
}

async fn answer(
    request: Request<Incoming>,
    region: Arc<Region>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET && request.uri().path() == "/lags" {
        return Ok(lags(&region));
    }
    let target = request.headers().get("x-amz-target");
    let is = |operation: &[u8]| target.is_some_and(|t| t.as_bytes().ends_with(operation));
    let body = if is(b".DescribeTable") {
        DESCRIBE_TABLE
    } else if is(b".BatchWriteItem") {
        let request = read(request.into_body()).await;
        record_lags(&region, &request);
        BATCH_WRITE_ITEM
    } else {
        discard(request.into_body()).await;
        EMPTY
    };
    if let Some(delays) = &region.delays {
        delays.sleep().await;
    }
    let id = region.requests.fetch_add(1, Ordering::Relaxed);
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert(
        "x-amz-crc32",
        HeaderValue::from(crc32fast::hash(body.as_bytes())),
    );
    if let Ok(id) = HeaderValue::try_from(format!("CANNEDREGION{id:040}")) {
        headers.insert("x-amzn-requestid", id);
    }
    Ok(response)
}

/// The whole body, as a region reads it before answering (empty if the client broke off).
async fn read(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default()
}

/// Reads the body to its end without keeping it, so the connection stays usable.
async fn discard(mut body: Incoming) {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return;
        }
    }
}

/// The parts of a `BatchWriteItem` the lag needs; serde skips everything else unread.
#[derive(Deserialize)]
struct BatchWrite<'a> {
    #[serde(rename = "RequestItems", borrow)]
    request_items: HashMap<Cow<'a, str>, Vec<WriteRequest<'a>>>,
}

#[derive(Deserialize)]
struct WriteRequest<'a> {
    #[serde(rename = "PutRequest", borrow)]
    put: Option<PutRequest<'a>>,
}

#[derive(Deserialize)]
struct PutRequest<'a> {
    #[serde(rename = "Item", borrow)]
    item: AuditItem<'a>,
}

#[derive(Deserialize)]
struct AuditItem<'a> {
    #[serde(rename = "EventId", borrow)]
    event_id: Option<StringValue<'a>>,
}

#[derive(Deserialize)]
struct StringValue<'a> {
    #[serde(rename = "S", borrow)]
    s: Cow<'a, str>,
}

/// Counts, for every item whose `EventId` is a ULID, the milliseconds since the ULID's time:
/// the event id is fixed when the sidecar spools the intent, so this is spool-to-region.
fn record_lags(region: &Region, body: &[u8]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let Ok(batch) = serde_json::from_slice::<BatchWrite<'_>>(body) else {
        return;
    };
    let mut lags = region.lags.lock().unwrap_or_else(PoisonError::into_inner);
    lags.batches += 1;
    let ids = batch
        .request_items
        .values()
        .flatten()
        .filter_map(|w| w.put.as_ref()?.item.event_id.as_ref());
    for id in ids {
        if let Ok(ulid) = ulid::Ulid::from_string(&id.s) {
            lags.ms.push(now.saturating_sub(ulid.timestamp_ms()));
        }
    }
}

/// `GET /lags`: the lags since the last call, then forgets them.
fn lags(region: &Region) -> Response<Full<Bytes>> {
    let Lags { mut ms, batches } =
        std::mem::take(&mut *region.lags.lock().unwrap_or_else(PoisonError::into_inner));
    ms.sort_unstable();
    let body = serde_json::json!({
        "count": ms.len(),
        "batches": batches,
        "p50_ms": percentile(&ms, 50),
        "p99_ms": percentile(&ms, 99),
        "max_ms": ms.last(),
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The nearest-rank percentile of sorted values; None when there are none.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    let rank = (sorted.len() * p).div_ceil(100);
    sorted.get(rank.saturating_sub(1)).copied()
}

/// Holds each answer until its deadline: a thread sleeping to the next deadline, which wakes
/// within the kernel's timer slack (tens of µs). Not tokio's timer, whose 1 ms ticks would
/// round 2 ms up to 3 and lock a closed loop to the ticks (benches/audit.rs, `DelayLine`).
/// One delay for every answer, and requests read on one thread: deadlines arrive in order,
/// so a queue is all the ordering needed.
struct DelayLine {
    delay: Duration,
    queue: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

impl DelayLine {
    fn start(delay: Duration) -> std::io::Result<DelayLine> {
        let (queue, waiting) = mpsc::channel();
        std::thread::Builder::new()
            .name("delay-line".into())
            .spawn(move || release(&waiting))?;
        Ok(DelayLine { delay, queue })
    }

    async fn sleep(&self) {
        let (wake, woken) = oneshot::channel();
        if self.queue.send((Instant::now() + self.delay, wake)).is_ok() {
            let _ = woken.await;
        }
    }
}

/// The delay thread: wakes each waiter at its deadline, until the region goes away.
fn release(waiting: &mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut due: VecDeque<(Instant, oneshot::Sender<()>)> = VecDeque::new();
    loop {
        let received = match due.front() {
            Some((at, _)) => waiting.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => waiting.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(next) => due.push_back(next),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while due.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, wake)) = due.pop_front() {
                let _ = wake.send(());
            }
        }
    }
}
