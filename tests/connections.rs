//! Client connections as an attacker or a careless client holds them: silent sockets, partial
//! HTTP/2 prefaces and idle keep-alive connections are closed; at a full proxy port a new
//! connection takes the slot of a silent one while the admin port answers; a drain under load breaks no request that
//! was sent; an unspecified admin address answers on IPv6 too.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{
    DynamoLocal, RawRequest, SendError, Sidecar, SidecarConfig, SidecarProcess, get, within,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP/2 connection preface a prior-knowledge client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A sidecar config whose only region refuses connections (the proxy answers 503 at once)
/// with the given `[server]` lines.
fn config(server: &str) -> SidecarConfig {
    SidecarConfig::new()
        .region("us-east-1", "http://127.0.0.1:9")
        .section(&format!("[server]\n{server}"))
}

/// Reads and discards until the peer closes (EOF or reset); panics if it stays open.
async fn wait_closed_by_peer(mut stream: TcpStream, what: &str) {
    within(what, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await
            && n > 0
        {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_request_are_closed_after_the_header_timeout() {
    let sidecar = Sidecar::start(&config("header_timeout_ms = 200")).await;
    for addr in [sidecar.listen_addr(), sidecar.admin_addr()] {
        let silent = TcpStream::connect(addr).await.expect("connect");
        wait_closed_by_peer(silent, "a connection that sends nothing").await;

        let mut partial = TcpStream::connect(addr).await.expect("connect");
        partial.write_all(&H2_PREFACE[..16]).await.expect("write");
        wait_closed_by_peer(partial, "a partial HTTP/2 preface").await;

        let mut h2 = TcpStream::connect(addr).await.expect("connect");
        h2.write_all(H2_PREFACE).await.expect("write");
        h2.write_all(EMPTY_SETTINGS).await.expect("write");
        wait_closed_by_peer(h2, "HTTP/2 without a stream").await;

        let mut head = TcpStream::connect(addr).await.expect("connect");
        head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        wait_closed_by_peer(head, "an HTTP/1 head never finished").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let sidecar = Sidecar::start(&config("header_timeout_ms = 100\nidle_timeout_ms = 300")).await;
    let admin = sidecar.admin_addr();

    let io = TokioIo::new(TcpStream::connect(admin).await.expect("connect"));
    let (mut send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("HTTP/1 handshake");
    let conn = tokio::spawn(conn);
    assert_eq!(healthz(&mut send).await, 200);
    within("the idle HTTP/1 connection to close", conn)
        .await
        .expect("connection task")
        .expect("an idle HTTP/1 connection closes cleanly");

    let io = TokioIo::new(TcpStream::connect(admin).await.expect("connect"));
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    assert_eq!(healthz_h2(&mut send).await, 200);
    within("the idle HTTP/2 connection to close", conn)
        .await
        .expect("connection task")
        .expect("an idle HTTP/2 connection ends with a GOAWAY, not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_outlasts_the_header_timeout() {
    // hyper's own header timeout restarts between keep-alive requests; the idle timeout,
    // not the header timeout, must decide how long an answered connection may wait.
    let sidecar =
        Sidecar::start(&config("header_timeout_ms = 100\nidle_timeout_ms = 600000")).await;
    let io = TokioIo::new(
        TcpStream::connect(sidecar.admin_addr())
            .await
            .expect("connect"),
    );
    let (mut send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("HTTP/1 handshake");
    tokio::spawn(conn);
    assert_eq!(healthz(&mut send).await, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        healthz(&mut send).await,
        200,
        "the same connection, ten header timeouts later"
    );
}

async fn healthz(send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) -> u16 {
    let request = Request::get("/healthz")
        .header(http::header::HOST, "sidecar")
        .body(Empty::new())
        .expect("request");
    let response = within("GET /healthz", send.send_request(request))
        .await
        .expect("an answer on the kept-alive connection");
    let status = response.status().as_u16();
    response.into_body().collect().await.expect("body");
    status
}

async fn healthz_h2(send: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>) -> u16 {
    let request = Request::get("http://sidecar/healthz")
        .body(Empty::new())
        .expect("request");
    let response = within("GET /healthz over HTTP/2", send.send_request(request))
        .await
        .expect("an answer over HTTP/2");
    let status = response.status().as_u16();
    response.into_body().collect().await.expect("body");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_proxy_port_closes_silent_connections_for_new_ones_and_the_admin_port_answers() {
    const CAP: u32 = 16;
    let sidecar = Sidecar::start(&config(&format!(
        "header_timeout_ms = 600000\nmax_connections = {CAP}"
    )))
    .await;
    let (proxy, admin) = (sidecar.listen_addr(), sidecar.admin_addr());
    let mut silent = Vec::new();
    for _ in 0..CAP {
        silent.push(
            TcpStream::connect(proxy)
                .await
                .expect("connect below the cap"),
        );
    }
    wait_for_open_connections(admin, CAP).await;
    for _ in 0..10 {
        assert_eq!(get(admin, "/healthz").await.status, 200);
    }
    // At the cap, a client with a request takes the slot of a silent one at once, rather
    // than waiting for a header timeout of ten minutes.
    let response = within(
        "a request at the cap",
        RawRequest::new("ListTables", "{}").try_send(proxy),
    )
    .await
    .expect("a request at the cap is served");
    assert_eq!(response.status, 503, "{}", response.text());
    let evicted = support::metric_sum(
        &get(admin, "/metrics").await.text(),
        "globalscale_connections_evicted_total",
        &[("listener", "proxy"), ("state", "silent")],
    );
    assert!(evicted >= Some(1.0), "{evicted:?}");
    assert!(
        open_connections(admin).await <= Some(f64::from(CAP)),
        "the cap holds"
    );
    // The oldest silent connection is the one that made room.
    wait_closed_by_peer(silent.remove(0), "the oldest silent connection").await;
}

/// `globalscale_connections_open{listener="proxy"}`.
async fn open_connections(admin: SocketAddr) -> Option<f64> {
    let text = get(admin, "/metrics").await.text();
    support::metric_sum(
        &text,
        "globalscale_connections_open",
        &[("listener", "proxy")],
    )
}

async fn wait_for_open_connections(admin: SocketAddr, wanted: u32) {
    within("the proxy port to fill up", async {
        while open_connections(admin).await != Some(f64::from(wanted)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unspecified_admin_address_answers_on_ipv6_and_ipv4() {
    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        eprintln!("this host has no IPv6 loopback; nothing to test");
        return;
    }
    for unspecified in ["[::]:0", "0.0.0.0:0"] {
        let config = SidecarConfig::new()
            .region("us-east-1", "http://127.0.0.1:9")
            .listeners(
                "127.0.0.1:0".parse().expect("addr"),
                unspecified.parse().expect("addr"),
            );
        let sidecar = Sidecar::start(&config).await;
        let port = sidecar.admin_addr().port();
        for ip in ["[::1]", "127.0.0.1"] {
            let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
            let status = get(addr, "/healthz").await.status;
            assert_eq!(status, 200, "admin_listen {unspecified}, GET via {addr}");
        }
        sidecar.stop().await;
    }
}

mod drain {
    use super::*;

    /// HTTP/1 keep-alive clients and HTTP/2 clients, each on its own connection.
    const H1_CLIENTS: usize = 96;
    const H2_CLIENTS: usize = 32;

    #[derive(Default)]
    struct Tally {
        /// Clients that have had two answers on their connection, so it is being reused.
        warmed_up: AtomicUsize,
        answers: AtomicUsize,
        closing_answers: AtomicUsize,
        refused: AtomicUsize,
        /// HTTP/2 requests the client did not send, or the server did not take, because of
        /// the GOAWAY: RFC 9113 §6.8 guarantees they were not processed, so they are safe to
        /// send again, like a refused connect. (hyper's client reports them instead of
        /// retrying them: hyperium/hyper#2500.)
        goaway_refused: AtomicUsize,
        broken: std::sync::Mutex<Vec<String>>,
    }

    /// Sends ListTables in a loop until a connect is refused (the listener has closed); any
    /// other failure is a request that was sent and lost.
    async fn client(
        client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        addr: SocketAddr,
        tally: Arc<Tally>,
    ) {
        let request = RawRequest::new("ListTables", "{}");
        let mut answers = 0;
        loop {
            match request.send_with(&client, addr).await {
                Ok(response) => {
                    answers += 1;
                    if answers == 2 {
                        tally.warmed_up.fetch_add(1, Ordering::Relaxed);
                    }
                    tally.answers.fetch_add(1, Ordering::Relaxed);
                    if response.header("connection") == Some("close") {
                        tally.closing_answers.fetch_add(1, Ordering::Relaxed);
                    }
                    if response.status != 200 {
                        let why = format!("status {}: {}", response.status, response.text());
                        tally.broken.lock().expect("tally").push(why);
                    }
                }
                Err(SendError::Request(e)) if e.is_connect() => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(SendError::Request(e)) if refused_by_goaway(&e) => {
                    // The next request opens a new connection, which the closed listener
                    // refuses.
                    tally.goaway_refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tally.broken.lock().expect("tally").push(format!("{e:?}"));
                    return;
                }
            }
        }
    }

    /// Whether `e` is a stream refused by a graceful GOAWAY (`NO_ERROR`) from the sidecar.
    fn refused_by_goaway(e: &hyper_util::client::legacy::Error) -> bool {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            if let Some(h2) = cause.downcast_ref::<h2::Error>() {
                return h2.is_go_away()
                    && h2.is_remote()
                    && h2.reason() == Some(h2::Reason::NO_ERROR);
            }
            source = cause.source();
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_under_keep_alive_load_breaks_no_sent_request() {
        let ddb = DynamoLocal::single().await;
        // Two proxy workers whatever the machine: the drain must wait until every worker has
        // closed its copy of the listener (one worker is the default on 2 cores).
        let mut process = SidecarProcess::start_with_env(
            SidecarConfig::new().region("us-east-1", &ddb.endpoint(0)),
            &[("GLOBALSCALE_WORKERS", "2")],
        )
        .await;
        let addr = process.listen_addr();
        let tally = Arc::new(Tally::default());
        let mut clients = Vec::new();
        for i in 0..H1_CLIENTS + H2_CLIENTS {
            let mut builder = Client::builder(TokioExecutor::new());
            builder.http2_only(i >= H1_CLIENTS);
            let task = client(builder.build_http(), addr, Arc::clone(&tally));
            clients.push(tokio::spawn(task));
        }
        within("every client reusing its connection", async {
            while tally.warmed_up.load(Ordering::Relaxed) < clients.len() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;

        process.signal("TERM");
        for client in clients {
            within("a client to stop", client)
                .await
                .expect("client task");
        }
        let status = process.wait_exit().await;
        let broken = tally.broken.lock().expect("tally").clone();
        eprintln!(
            "answers {}, of which Connection: close {}, refused connects {}, \
             refused by GOAWAY {}, broken {}",
            tally.answers.load(Ordering::Relaxed),
            tally.closing_answers.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
            tally.goaway_refused.load(Ordering::Relaxed),
            broken.len()
        );
        assert!(
            broken.is_empty(),
            "requests lost in the drain: {broken:#?}\nstderr:\n{}",
            process.stderr()
        );
        assert_eq!(status.code(), Some(0), "stderr:\n{}", process.stderr());
        assert!(
            tally.closing_answers.load(Ordering::Relaxed) > 0,
            "no answer said Connection: close"
        );
    }
}
