//! The admin port: `GET /healthz` (the process is alive), `GET /readyz` (some region can take
//! traffic and the sidecar is not draining), `GET /metrics` (Prometheus text).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;

use crate::proxy::Proxy;

pub struct Admin {
    pub proxy: Arc<Proxy>,
    /// Set when shutdown starts, so Kubernetes stops sending traffic while requests drain.
    pub draining: Arc<AtomicBool>,
}

impl Admin {
    pub fn handle<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => {
                if self.draining.load(Ordering::Acquire) {
                    text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                } else if self.proxy.snapshot.load().any_region_healthy() {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "no healthy region\n")
                }
            }
            "/metrics" => match self.proxy.render_metrics() {
                Ok(body) => {
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    response
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// `globalscale --health-check URL`: exit 0 when `GET URL` answers 200.
pub async fn health_check(url: &str) -> std::process::ExitCode {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let Ok(uri) = url.parse::<http::Uri>() else {
        eprintln!("not a URL: {url}");
        return std::process::ExitCode::FAILURE;
    };
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = tokio::time::timeout(std::time::Duration::from_secs(3), client.get(uri));
    match request.await {
        Ok(Ok(response)) if response.status() == StatusCode::OK => std::process::ExitCode::SUCCESS,
        Ok(Ok(response)) => {
            eprintln!("{url}: {}", response.status());
            std::process::ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("{url}: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{url}: timed out");
            std::process::ExitCode::FAILURE
        }
    }
}
