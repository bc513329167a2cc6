//! Heap allocations (and bytes) per GetItem (and per PutItem) through the whole request path, a figure that
//! does not move with the machine: from the client's bytes arriving at the sidecar's HTTP
//! server to the answer's bytes leaving it, with the real `App` (both listeners, the proxy
//! workers, the prober) in this process, in front of a canned region on loopback.
//!
//! The load harness's GetItem (`benches/load/bodies.py`): the table `GlobalCatalog` with
//! `key_prefix = "{region}#"` and `version_attribute = "Version"`, whose answer is a 1.4 KB
//! item the sidecar restores, and the same request on a table with no policy (forwarded and
//! answered as it came). The client and the canned region are blocking loopback sockets on
//! threads of their own that allocate nothing per request (the "client and region alone"
//! line checks it), so every allocation counted is the sidecar's, on whichever thread.
//!
//! The counter wraps the system allocator (`stats_alloc`); the binary runs on mimalloc
//! (`src/main.rs`). The counts are the calls the code makes to the global allocator, the
//! same whichever allocator serves them. `heaptrack` on this bench's binary shows where
//! they come from (see `benches/README.md`).
//!
//! `cargo bench --bench allocations` (release profile); `cargo test --bench allocations`
//! runs it briefly in the test profile, where the counts come out the same.

// A measuring program: a failed set-up step should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::alloc::System;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use globalscale::app::App;
use globalscale::config::Config;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const TABLE: &str = "GlobalCatalog";
const PLAIN: &str = "Plain";
const HOME_REGION: &str = "us-east-1";
const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// Room for a request or an answer: the largest here is about 1.6 KB.
const BUFFER: usize = 64 * 1024;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    // Like criterion's filter: only the lines whose name holds it (for heaptrack).
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let (warmup, measured) = if full { (2_000, 20_000) } else { (50, 200) };
    globalscale::logging::init(globalscale::logging::Format::Text);
    let region = CannedRegion::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sidecar = runtime.block_on(start_sidecar(region.addr));

    // (what, where, the request, whether the answer's key comes back without its prefix)
    let rows = [
        (
            "client and region alone (the check: 0)",
            region.addr,
            Request::GetItem(TABLE),
            false,
        ),
        (
            "sidecar, prefixed + versioned table",
            sidecar,
            Request::GetItem(TABLE),
            true,
        ),
        (
            "sidecar, table without a policy",
            sidecar,
            Request::GetItem(PLAIN),
            false,
        ),
        (
            "sidecar, PutItem, prefixed + versioned",
            sidecar,
            Request::PutItem(TABLE),
            false,
        ),
    ];
    println!("allocations per request, after {warmup} warm-up requests, over {measured}:");
    println!(
        "{:<42} {:>12} {:>10} {:>12}",
        "", "allocations", "reallocs", "bytes"
    );
    for (name, addr, request, restored) in rows {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let mut client = Client::connect(addr, request);
        let answer = String::from_utf8_lossy(client.send()).into_owned();
        match request {
            Request::GetItem(_) => {
                let prefixed = answer.contains(&format!("\"{HOME_REGION}#item-1\""));
                assert!(answer.starts_with(r#"{"Item":{"#), "not an item: {answer}");
                assert_eq!(prefixed, !restored, "{name}: {answer}");
            }
            Request::PutItem(_) => assert_eq!(answer, "{}", "{name}"),
        }
        let per = measure(&mut client, warmup, measured);
        println!(
            "{name:<42} {:>12.2} {:>10.2} {:>12.0}",
            per.allocations, per.reallocations, per.bytes
        );
    }
    // The runtime and the app in it end with the process.
    std::mem::forget(runtime);
}

/// What one request cost, averaged.
struct PerRequest {
    allocations: f64,
    reallocations: f64,
    bytes: f64,
}

/// `measured` requests on one keep-alive connection after `warmup` of them, counted on every
/// thread. The last request's late frees (and any allocation after its answer) fall outside
/// the window, and the last warm-up's inside: in a steady state they are the same work.
fn measure(client: &mut Client, warmup: usize, measured: usize) -> PerRequest {
    for _ in 0..warmup {
        client.send();
    }
    let region = Region::new(GLOBAL);
    for _ in 0..measured {
        client.send();
    }
    let change = region.change();
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let per = |n: usize| n as f64 / measured as f64;
    PerRequest {
        allocations: per(change.allocations),
        reallocations: per(change.reallocations),
        bytes: per(change.bytes_allocated),
    }
}

/// The load harness's sidecar config (`benches/load/stack.py`) with a second, plain table,
/// and probes once a minute: live traffic keeps the region from being probed anyway, and
/// the prober's own rounds are not a GetItem's cost.
async fn start_sidecar(region: SocketAddr) -> SocketAddr {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[upstream_credentials]
access_key_id = "AKIDLOADHARNESS"
secret_access_key = "load-harness-secret"

[[regions]]
name = "{HOME_REGION}"
endpoint = "http://{region}"

[auth]
mode = "none"

[routing]
probe_interval_ms = 60000

[[tables]]
name = "{TABLE}"
partition_key = "ItemID"
sort_key = "Category"
key_prefix = "{{region}}#"
version_attribute = "Version"

[[tables]]
name = "{PLAIN}"
partition_key = "ItemID"
sort_key = "Category"
"#
    );
    let config = Config::from_toml_str(&text).expect("config");
    let app = App::build(config).await.expect("app");
    let addr = app.listen_addr();
    tokio::spawn(app.run(std::future::pending()));
    addr
}

/// A request the bench sends, to a table.
#[derive(Clone, Copy)]
enum Request {
    /// The load harness's GetItem.
    GetItem(&'static str),
    /// The load harness's 1.4 KB PutItem without a version, to which the sidecar adds its
    /// condition and the version and write id it stores.
    PutItem(&'static str),
}

impl Request {
    fn operation(self) -> &'static str {
        match self {
            Self::GetItem(_) => "GetItem",
            Self::PutItem(_) => "PutItem",
        }
    }

    fn body(self) -> String {
        match self {
            Self::GetItem(table) => format!(
                r#"{{"TableName":"{table}","Key":{{"ItemID":{{"S":"item-1"}},"Category":{{"S":"c"}}}}}}"#
            ),
            Self::PutItem(table) => {
                let envelope = format!(r#"{{"TableName":"{table}","Item":}}"#);
                let item = padded_item("item-1", 1400 - envelope.len());
                format!(r#"{{"TableName":"{table}","Item":{item}}}"#)
            }
        }
    }
}

/// A client sending the load harness's requests with the headers an AWS SDK sends
/// (`benches/load/request.lua`), and reading each answer whole before the next.
struct Client {
    stream: TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr, request: Request) -> Self {
        let body = request.body();
        let operation = request.operation();
        let signature = "0f".repeat(32);
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: {TARGET_PREFIX}{operation}\r\nX-Amz-Date: 20260101T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=AKIDLOADCLIENT/20260101/{HOME_REGION}/dynamodb/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}\r\n\
             User-Agent: aws-sdk-rust/1.3 os/linux lang/rust (globalscale allocations bench)\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            request: request.into_bytes(),
            buffer: vec![0; BUFFER],
        }
    }

    /// One request; returns the answer's body, which must come with a 200.
    fn send(&mut self) -> &[u8] {
        self.stream.write_all(&self.request).expect("send");
        let (head, length) = read_message(&mut self.stream, &mut self.buffer, |bytes| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = response.parse(bytes).expect("an answer") else {
                return None;
            };
            assert_eq!(
                response.code,
                Some(200),
                "{}",
                String::from_utf8_lossy(bytes)
            );
            Some((head, content_length(response.headers)))
        });
        &self.buffer[head..head + length]
    }
}

/// Reads one message (head and `Content-Length` body) into `buffer`; `parse` gives the
/// head's length and the body's once the head is complete. Returns them. One message at a
/// time on the connection: nothing follows it in the buffer.
fn read_message(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    mut parse: impl FnMut(&[u8]) -> Option<(usize, usize)>,
) -> (usize, usize) {
    let mut filled = 0;
    let mut message = None;
    loop {
        let read = stream.read(&mut buffer[filled..]).expect("read");
        assert!(read > 0, "connection closed mid-message");
        filled += read;
        if message.is_none() {
            message = parse(&buffer[..filled]);
        }
        if let Some((head, length)) = message
            && filled >= head + length
        {
            assert_eq!(filled, head + length, "more than one message");
            return (head, length);
        }
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> usize {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
        .expect("a Content-Length")
}

/// A DynamoDB region answering by `X-Amz-Target` alone with fixed answers, as the load
/// harness's canned nginx does; a thread per connection.
struct CannedRegion {
    addr: SocketAddr,
}

impl CannedRegion {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let answers: &'static Answers = Box::leak(Box::new(Answers::new()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let stream = stream.expect("accept");
                std::thread::spawn(move || answers.serve(stream));
            }
        });
        Self { addr }
    }
}

/// Each answer whole (head and body), built once.
struct Answers {
    get_item: Vec<u8>,
    describe_table: Vec<u8>,
    other: Vec<u8>,
}

impl Answers {
    fn new() -> Self {
        Self {
            get_item: answer(&get_item_answer()),
            describe_table: answer(&describe_table_answer()),
            other: answer("{}"),
        }
    }

    fn serve(&self, mut stream: TcpStream) {
        stream.set_nodelay(true).expect("nodelay");
        let mut buffer = vec![0; BUFFER];
        loop {
            // A connection the sidecar closes ends here.
            if stream.peek(&mut [0]).map_or(true, |n| n == 0) {
                return;
            }
            let mut target = [0u8; 64];
            let mut target_length = 0;
            read_message(&mut stream, &mut buffer, |bytes| {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut request = httparse::Request::new(&mut headers);
                let httparse::Status::Complete(head) = request.parse(bytes).expect("a request")
                else {
                    return None;
                };
                if let Some(h) = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("x-amz-target"))
                {
                    let n = h.value.len().min(target.len());
                    target[..n].copy_from_slice(&h.value[..n]);
                    target_length = n;
                }
                Some((head, content_length(request.headers)))
            });
            let answer = match &target[..target_length] {
                t if t.ends_with(b".GetItem") => &self.get_item,
                t if t.ends_with(b".DescribeTable") => &self.describe_table,
                _ => &self.other,
            };
            if stream.write_all(answer).is_err() {
                return;
            }
        }
    }
}

/// An answer with the headers DynamoDB sends (the sidecar checks `x-amz-crc32`).
fn answer(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nServer: canned\r\nContent-Type: application/x-amz-json-1.0\r\n\
         Content-Length: {}\r\nConnection: keep-alive\r\nx-amz-crc32: {}\r\n\
         x-amzn-RequestId: 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEF\r\n\r\n{body}",
        body.len(),
        crc32fast::hash(body.as_bytes())
    )
    .into_bytes()
}

/// `benches/load/bodies.py`'s item: the key, then attributes of 100 characters until its
/// JSON is at least `size` bytes.
fn padded_item(partition_key: &str, size: usize) -> String {
    let mut item = format!(r#"{{"ItemID":{{"S":"{partition_key}"}},"Category":{{"S":"c"}}"#);
    let mut i = 0;
    while item.len() + 1 < size {
        let _ = write!(
            item,
            r#","Attr{i:05}":{{"S":"v{i:05}-{}"}}"#,
            "x".repeat(100)
        );
        i += 1;
    }
    item.push('}');
    item
}

/// `benches/load/bodies.py`'s GetItem answer: the key as the sidecar stored it (prefixed),
/// attributes of 100 characters up to about 1.4 KB, and a version.
fn get_item_answer() -> String {
    let item = padded_item(&format!("{HOME_REGION}#item-1"), 1400);
    let item = item.strip_suffix('}').unwrap_or(&item);
    format!(r#"{{"Item":{item},"Version":{{"N":"3"}}}}}}"#)
}

/// What the sidecar asks at start of a prefixed table: its key schema.
fn describe_table_answer() -> String {
    format!(
        r#"{{"Table":{{"TableName":"{TABLE}","TableStatus":"ACTIVE","TableArn":"arn:aws:dynamodb:{HOME_REGION}:123456789012:table/{TABLE}","KeySchema":[{{"AttributeName":"ItemID","KeyType":"HASH"}},{{"AttributeName":"Category","KeyType":"RANGE"}}],"AttributeDefinitions":[{{"AttributeName":"ItemID","AttributeType":"S"}},{{"AttributeName":"Category","AttributeType":"S"}}],"BillingModeSummary":{{"BillingMode":"PAY_PER_REQUEST"}},"ItemCount":0,"TableSizeBytes":0,"CreationDateTime":1767225600.0}}}}"#
    )
}
