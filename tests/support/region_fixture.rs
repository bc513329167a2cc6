//! A region as the sidecar sees it, with faults on demand: an in-process HTTP proxy in front of
//! an upstream (usually DynamoDB Local) that records every request it receives and, depending
//! on its [`Mode`], forwards it, answers with an error, stays silent, or stops listening.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::HANG;

/// What the fixture does with the next request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Forward to the upstream and return its response.
    Forward,
    /// Not listening: connects are refused (open connections are closed).
    Refuse,
    /// Accept and read the request, never answer.
    BlackHole,
    /// Answer with this status and an `InternalServerError` body.
    Status(u16),
    /// Answer 400 `ThrottlingException`.
    Throttle,
    /// Answer 400 with this error of DynamoDB's front door, as a region answers credentials
    /// it does not know (`UnrecognizedClientException`) or a role without the permission
    /// (`AccessDeniedException`); DynamoDB Local accepts any credentials.
    Unauthorised(&'static str),
    /// Answer this status and an `InternalServerError` body to requests whose body contains
    /// the text (a poison request), forward the others.
    StatusWhen(u16, &'static str),
    /// Answer as [`Mode::Unauthorised`] requests whose body contains the text (a role
    /// without the permission on one table), forward the others.
    UnauthorisedWhen(&'static str, &'static str),
    /// Answer 200 with this JSON body to requests whose body contains the text, forward the
    /// others: a region whose answer the test chose.
    AnswerWhen(&'static str, String),
    /// Wait, then forward.
    Delay(Duration),
    /// Forward (so the region applies the request), then never answer: the ambiguous
    /// failure where a write happened but its caller cannot know.
    ApplyThenHang,
    /// Forward (so the region applies the request), then answer with an `x-amz-crc32` that
    /// does not match the body: an answer corrupted on its way.
    CorruptChecksum,
    /// Forward (so the region applies the request), then answer 200 with a body that is not
    /// JSON: an upstream that lies.
    NotJson,
    /// Forward, except every `n`th request (counting from the first), whose connection is
    /// closed without an answer after the request was read.
    DropEvery(usize),
}

/// One request as the fixture received it.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// Path and query, as on the request line.
    pub(crate) uri: String,
    /// Every header in order, names lower-case, values lossily decoded.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The operation from `X-Amz-Target` (`GetItem` for `DynamoDB_20120810.GetItem`).
    pub(crate) fn operation(&self) -> Option<&str> {
        self.header("x-amz-target")
            .map(|t| t.rsplit_once('.').map_or(t, |(_, op)| op))
    }
}

/// A recording, fault-injecting proxy on `127.0.0.1:PORT`; stops everything on drop.
pub(crate) struct RegionFixture {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    upstream: String,
    mode: Mutex<Mode>,
    recorded: Mutex<Vec<Recorded>>,
    served: AtomicUsize,
    /// Requests handled, for [`Mode::DropEvery`].
    handled: AtomicUsize,
    connections: Mutex<Vec<JoinHandle<()>>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl RegionFixture {
    /// Starts forwarding to `upstream` (`http://host:port`).
    pub(crate) async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind fixture");
        let addr = listener.local_addr().expect("fixture addr");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            mode: Mutex::new(Mode::Forward),
            recorded: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
            handled: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for a region's `endpoint`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode. Entering [`Mode::Refuse`] returns once the port is closed; leaving it
    /// listens again on the same port.
    pub(crate) async fn set_mode(&self, mode: Mode) {
        let previous = std::mem::replace(&mut *lock(&self.shared.mode), mode.clone());
        if mode == Mode::Refuse && previous != Mode::Refuse {
            self.stop_listening().await;
        } else if previous == Mode::Refuse && mode != Mode::Refuse {
            let listener = std::net::TcpListener::bind(self.addr)
                .unwrap_or_else(|e| panic!("listen again on {}: {e}", self.addr));
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            let accept = tokio::spawn(accept_loop(listener, Arc::clone(&self.shared)));
            *lock(&self.accept) = Some(accept);
        }
    }

    /// Every request received so far, oldest first.
    pub(crate) fn recorded(&self) -> Vec<Recorded> {
        lock(&self.shared.recorded).clone()
    }

    /// Every request received so far; forgets them.
    pub(crate) fn take_recorded(&self) -> Vec<Recorded> {
        std::mem::take(&mut *lock(&self.shared.recorded))
    }

    /// How many requests were received (recorded, whatever the mode did with them).
    pub(crate) fn received(&self) -> usize {
        lock(&self.shared.recorded).len()
    }

    /// How many requests got an answer from this fixture.
    pub(crate) fn served(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// The recorded requests for `operation` (from `X-Amz-Target`).
    pub(crate) fn recorded_op(&self, operation: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.operation() == Some(operation))
            .collect()
    }

    /// Waits until a recorded request satisfies `matches`; panics after [`HANG`].
    pub(crate) async fn wait_for(&self, what: &str, matches: impl Fn(&Recorded) -> bool) {
        let deadline = tokio::time::Instant::now() + HANG;
        while !lock(&self.shared.recorded).iter().any(&matches) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fixture {} never received {what}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop_listening(&self) {
        // The accept loop first, so that no connection is added behind our back.
        let accept = lock(&self.accept).take();
        if let Some(accept) = accept {
            accept.abort();
            // Returns once the task is dropped, so the listener is closed.
            let _ = accept.await;
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for connection in connections {
            connection.abort();
            let _ = connection.await;
        }
    }
}

impl Drop for RegionFixture {
    fn drop(&mut self) {
        if let Some(accept) = lock(&self.accept).take() {
            accept.abort();
        }
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide its own failure behind ours.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let conn_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&conn_shared), request));
            // A connection the sidecar drops mid-way is not the fixture's failure.
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let mut connections = lock(&shared.connections);
        connections.retain(|task| !task.is_finished());
        connections.push(task);
    }
}

/// Returning an error makes hyper close the connection without an answer.
type Handled = Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>>;

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Handled {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    lock(&shared.recorded).push(Recorded {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    });
    let mode = lock(&shared.mode).clone();
    let nth = shared.handled.fetch_add(1, Ordering::SeqCst) + 1;
    let response = match mode {
        Mode::DropEvery(n) if nth.is_multiple_of(n) => {
            return Err("dropped by the test fixture".into());
        }
        Mode::CorruptChecksum => {
            let mut response = forward(&shared, parts, body).await;
            response
                .headers_mut()
                .insert("x-amz-crc32", http::HeaderValue::from_static("12345"));
            response
        }
        Mode::NotJson => {
            let _applied = forward(&shared, parts, body).await;
            Response::new(Full::new(Bytes::from_static(b"<html>all good</html>")))
        }
        Mode::StatusWhen(status, text) if String::from_utf8_lossy(&body).contains(text) => {
            dynamodb_error(
                status,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "Internal server error (injected by the test fixture)",
            )
        }
        Mode::UnauthorisedWhen(name, text) if String::from_utf8_lossy(&body).contains(text) => {
            dynamodb_error(
                400,
                &format!("com.amazon.coral.service#{name}"),
                "User is not authorized to perform this action (injected by the test fixture)",
            )
        }
        Mode::AnswerWhen(text, answer) if String::from_utf8_lossy(&body).contains(text) => {
            json_answer(&answer)
        }
        Mode::Forward
        | Mode::DropEvery(_)
        | Mode::StatusWhen(..)
        | Mode::UnauthorisedWhen(..)
        | Mode::AnswerWhen(..) => forward(&shared, parts, body).await,
        Mode::Delay(delay) => {
            tokio::time::sleep(delay).await;
            forward(&shared, parts, body).await
        }
        Mode::BlackHole | Mode::Refuse => std::future::pending().await,
        Mode::ApplyThenHang => {
            let _applied = forward(&shared, parts, body).await;
            std::future::pending().await
        }
        Mode::Status(status) => dynamodb_error(
            status,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error (injected by the test fixture)",
        ),
        Mode::Unauthorised(name) => dynamodb_error(
            400,
            &format!("com.amazon.coral.service#{name}"),
            "The security token included in the request is invalid. (injected by the test fixture)",
        ),
        Mode::Throttle => dynamodb_error(
            400,
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "Rate of requests exceeds the allowed throughput (injected by the test fixture)",
        ),
    };
    shared.served.fetch_add(1, Ordering::SeqCst);
    Ok(response)
}

async fn forward(
    shared: &Shared,
    parts: http::request::Parts,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(parts.method)
        .uri(format!("{}{path}", shared.upstream))
        .body(Full::new(body))
        .expect("upstream request");
    // Host and the rest stay as the sidecar signed them; the body is re-framed by hyper.
    *request.headers_mut() = parts.headers;
    request.headers_mut().remove(header::TRANSFER_ENCODING);
    let response = match shared.client.request(request).await {
        Ok(response) => response,
        Err(e) => return bad_gateway(&format!("upstream {}: {e:?}", shared.upstream)),
    };
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return bad_gateway(&format!("upstream body: {e}")),
    };
    for hop in [
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::CONTENT_LENGTH,
    ] {
        parts.headers.remove(hop);
    }
    Response::from_parts(parts, Full::new(body))
}

/// A DynamoDB-shaped error body with a correct `x-amz-crc32`.
fn dynamodb_error(status: u16, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    Response::builder()
        .status(StatusCode::from_u16(status).expect("status code"))
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .header(
            "x-amzn-requestid",
            "FIXTURE0000000000000000000000000000000000000000000000",
        )
        .header("x-amz-crc32", crc32fast::hash(body.as_bytes()).to_string())
        .body(Full::new(Bytes::from(body)))
        .expect("error response")
}

/// A 200 answer with `body` and its `x-amz-crc32`.
fn json_answer(body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .header("x-amz-crc32", crc32fast::hash(body.as_bytes()).to_string())
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("answer")
}

/// The upstream behind the fixture is unreachable: not DynamoDB-shaped, on purpose.
fn bad_gateway(why: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Full::new(Bytes::from(format!("fixture: {why}"))))
        .expect("bad gateway response")
}
