//! The admin port: `GET /healthz` (the process is alive), `GET /readyz` (the readiness gate
//! is open and the sidecar is not draining), `GET /metrics` (Prometheus text), `GET /status`
//! (HTML, or JSON with `Accept: application/json`), and the one action, `POST
//! /admin/write-region`, guarded by a bearer token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use crate::config::WriteFailover;
use crate::proxy::Proxy;
use crate::status::{Status, render};

pub struct Admin {
    pub proxy: Arc<Proxy>,
    /// Set when shutdown starts, so Kubernetes stops sending traffic while requests drain.
    pub draining: Arc<AtomicBool>,
    /// Open once credentials work for every managed table (`readiness`).
    pub readiness: Arc<crate::readiness::Gate>,
}

/// The largest admin request body read: a region name in JSON.
const MAX_ACTION_BODY: usize = 4096;

impl Admin {
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if request.method() == Method::POST && path == WRITE_REGION {
            return self.move_writes(request).await;
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET, and POST for actions\n",
            );
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => {
                if self.draining.load(Ordering::Acquire) {
                    text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                } else {
                    match self.readiness.verdict() {
                        Ok(()) => text(StatusCode::OK, "ready\n"),
                        Err(why) => text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &format!("not ready: {why}\n"),
                        ),
                    }
                }
            }
            "/metrics" => match self.proxy.render_metrics() {
                Ok(body) => with_type(Bytes::from(body), "text/plain; version=0.0.4"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
            },
            "/status" => {
                let status = Status::gather(&self.proxy, self.draining.load(Ordering::Acquire));
                if wants_json(&request) {
                    with_type(Bytes::from(render::json(&status)), "application/json")
                } else {
                    with_type(
                        Bytes::from(render::html(&status)),
                        "text/html; charset=utf-8",
                    )
                }
            }
            WRITE_REGION => {
                let body = serde_json::json!({
                    "region": self.proxy.write_region(),
                    "write_failover": match self.proxy.snapshot.load().config.routing.write_failover {
                        WriteFailover::Auto => "auto",
                        WriteFailover::Manual => "manual",
                    },
                });
                with_type(Bytes::from(body.to_string()), "application/json")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// `POST /admin/write-region {"region": "us-west-2"}` with `Authorization: Bearer
    /// <[admin] token>`: moves writes (under `write_failover = "manual"`). No token
    /// configured: the action does not exist.
    async fn move_writes(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let token = self.proxy.snapshot.load().config.admin_token.clone();
        let Some(token) = token else {
            return text(
                StatusCode::NOT_FOUND,
                "admin actions are off: set [admin] token or GLOBALSCALE_ADMIN_TOKEN\n",
            );
        };
        let offered = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(offered.as_bytes().ct_eq(token.as_bytes())) {
            tracing::warn!("admin: write region change refused: wrong or missing token");
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required\n",
            );
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
        let body = Limited::new(request.into_body(), MAX_ACTION_BODY).collect();
        let Ok(Ok(body)) = tokio::time::timeout(std::time::Duration::from_secs(10), body).await
        else {
            return text(StatusCode::BAD_REQUEST, "unreadable body\n");
        };
        let Ok(wanted) = serde_json::from_slice::<Move>(&body.to_bytes()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "expected {\"region\": \"<name>\"}\n",
            );
        };
        match self.proxy.set_write_region(&wanted.region) {
            Ok(previous) => {
                tracing::warn!(from = previous, to = wanted.region, "admin: writes moved");
                let body = serde_json::json!({"region": wanted.region, "previous": previous});
                with_type(Bytes::from(body.to_string()), "application/json")
            }
            Err(e) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
        }
    }
}

const WRITE_REGION: &str = "/admin/write-region";

/// The body of a write region change.
#[derive(serde::Deserialize)]
struct Move {
    region: String,
}

/// `Accept: application/json` (or `*/json`) asks for JSON; browsers ask for HTML.
fn wants_json<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") && !v.contains("text/html"))
}

fn with_type(body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

/// A plain-text answer (`/healthz`, `/readyz`, every error): typed, so a browser, `curl -i` or a
/// proxy that sniffs an untyped body shows it as the text it is.
fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = with_type(
        Bytes::copy_from_slice(body.as_bytes()),
        "text/plain; charset=utf-8",
    );
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
