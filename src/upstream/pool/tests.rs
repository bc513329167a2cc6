//! The pool against a real HTTP/1 server on a local socket: connections are reused, and a
//! connection the server closed while it sat idle costs the next request nothing.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::{Timeouts, TlsRoots};
use crate::upstream::Upstream;

/// A server that answers `ok` and counts the connections it accepted; with `one_each`, it
/// closes each connection after its first answer, without saying so in the answer (as a
/// server's idle timeout does).
async fn server(one_each: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                if one_each {
                    // Serves one request, then drops the socket.
                    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                    let tx = std::sync::Mutex::new(Some(tx));
                    let service = service_fn(move |_: Request<Incoming>| {
                        if let Some(tx) = tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        answer()
                    });
                    let conn =
                        hyper::server::conn::http1::Builder::new().serve_connection(io, service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = rx => {
                            // Let the answer go out, then close under the idle client.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service_fn(|_: Request<Incoming>| answer()))
                        .await;
                }
            });
        }
    });
    (format!("http://{address}"), accepted)
}

fn answer() -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"{}")))))
}

fn upstream() -> Upstream {
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        attempt: Duration::from_secs(5),
        request: Duration::from_secs(10),
        upstream_idle: Duration::from_secs(50),
    };
    Upstream::new(&timeouts, TlsRoots::Webpki).unwrap()
}

async fn get(upstream: &Upstream, endpoint: &str) -> Result<Bytes, crate::upstream::UpstreamError> {
    let request = Request::post(endpoint)
        .header(http::header::HOST, endpoint.trim_start_matches("http://"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    upstream
        .send(request, deadline)
        .await
        .map(|answer| answer.body)
}

#[tokio::test]
async fn one_connection_serves_requests_one_after_another() {
    let (endpoint, accepted) = server(false).await;
    let upstream = upstream();
    for _ in 0..5 {
        assert_eq!(get(&upstream, &endpoint).await.unwrap(), "{}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_without_an_error() {
    let (endpoint, accepted) = server(true).await;
    let upstream = upstream();
    for _ in 0..5 {
        assert_eq!(get(&upstream, &endpoint).await.unwrap(), "{}");
        // Long enough for the server to close the connection it just answered on.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = get(&upstream(), &endpoint).await.unwrap_err();
    assert!(error.never_sent(), "{error:?}");
}

#[tokio::test]
async fn idle_connections_are_closed_in_the_background() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&closed);
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service_fn(|_| answer()))
            .await;
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        attempt: Duration::from_secs(5),
        request: Duration::from_secs(10),
        upstream_idle: Duration::from_millis(100),
    };
    let upstream = Upstream::new(&timeouts, TlsRoots::Webpki).unwrap();
    let swept_before = Upstream::idle_closed();
    assert_eq!(get(&upstream, &endpoint).await.unwrap(), "{}");
    // No further request comes to find the connection expired: only the sweep closes it.
    tokio::time::timeout(Duration::from_secs(30), async {
        while closed.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the idle connection was closed by the sweep");
    assert!(Upstream::idle_closed() > swept_before);
}
