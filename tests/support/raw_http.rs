//! Hand-made HTTP requests, for what an SDK would never send: missing or foreign targets,
//! malformed bodies; and plain GETs for the admin port. Requests are signed with the client's
//! keys like an SDK's (unless asked not to), so only the part under test is hostile.

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{CLIENT_ACCESS_KEY_ID, CLIENT_SECRET, TARGET_PREFIX, within};

/// The answer to a raw request.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl RawResponse {
    /// A header as text, if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy), for messages.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts DynamoDB's error shape (a JSON object with string `__type` and `message` or
    /// `Message`) and returns `__type`.
    pub(crate) fn error_type(&self) -> String {
        self.try_error_type().unwrap_or_else(|why| panic!("{why}"))
    }

    /// `__type` if the body has DynamoDB's error shape, else why not.
    pub(crate) fn try_error_type(&self) -> Result<String, String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })?;
        let kind = body.get("__type").and_then(serde_json::Value::as_str);
        let message = body
            .get("message")
            .or_else(|| body.get("Message"))
            .and_then(serde_json::Value::as_str);
        match (kind, message) {
            (Some(kind), Some(_)) => Ok(kind.to_owned()),
            _ => Err(format!(
                "status {} body lacks __type/message: {}",
                self.status,
                self.text()
            )),
        }
    }
}

/// How [`RawRequest::send_with`] failed: before an answer began, or while reading its body.
#[derive(Debug)]
pub(crate) enum SendError {
    Request(hyper_util::client::legacy::Error),
    Body(hyper::Error),
}

/// A POST to `/` in DynamoDB's JSON protocol, with control over every part.
#[derive(Clone, Debug)]
pub(crate) struct RawRequest {
    method: http::Method,
    target: Option<String>,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    sign: bool,
    session_token: Option<String>,
}

impl RawRequest {
    /// `X-Amz-Target: DynamoDB_20120810.{operation}` with `body`.
    pub(crate) fn new(operation: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::with_target(&format!("{TARGET_PREFIX}.{operation}"), body)
    }

    /// Any `X-Amz-Target` value.
    pub(crate) fn with_target(target: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            target: Some(target.to_owned()),
            ..Self::without_target(body)
        }
    }

    /// No `X-Amz-Target` at all.
    pub(crate) fn without_target(body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: http::Method::POST,
            target: None,
            body: body.into(),
            headers: vec![(
                header::CONTENT_TYPE.as_str().to_owned(),
                "application/x-amz-json-1.0".to_owned(),
            )],
            sign: true,
            session_token: None,
        }
    }

    /// Adds a header (signed along with the rest).
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Another HTTP method than DynamoDB's POST.
    pub(crate) fn method(mut self, method: http::Method) -> Self {
        self.method = method;
        self
    }

    /// Sends no `Authorization` at all.
    pub(crate) fn unsigned(mut self) -> Self {
        self.sign = false;
        self
    }

    /// Signs with a client session token (`X-Amz-Security-Token`).
    pub(crate) fn session_token(mut self, token: &str) -> Self {
        self.session_token = Some(token.to_owned());
        self
    }

    /// The `X-Amz-Target` this request sends, if any.
    pub(crate) fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The body this request sends.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Sends the request on a fresh connection; panics if there is no HTTP answer.
    pub(crate) async fn send(&self, addr: SocketAddr) -> RawResponse {
        let what = format!("request to {addr}");
        within(&what, self.try_send(addr))
            .await
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Sends the request on a fresh connection.
    pub(crate) async fn try_send(&self, addr: SocketAddr) -> Result<RawResponse, String> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        self.send_with(&client, addr).await.map_err(|e| match e {
            SendError::Request(e) => format!("{e:?}"),
            SendError::Body(e) => format!("reading body: {e}"),
        })
    }

    /// Sends the request with `client`, on a connection from its pool (keep-alive); the
    /// client's own error, so a caller can tell a refused connect from a broken exchange.
    pub(crate) async fn send_with(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        addr: SocketAddr,
    ) -> Result<RawResponse, SendError> {
        let response = client
            .request(self.build(addr))
            .await
            .map_err(SendError::Request)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(SendError::Body)?.to_bytes();
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    fn build(&self, addr: SocketAddr) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(format!("http://{addr}/"))
            .header(header::HOST, addr.to_string())
            .body(Full::new(Bytes::from(self.body.clone())))
            .expect("valid request");
        for (name, value) in self.all_headers(addr) {
            let name = header::HeaderName::from_bytes(name.as_bytes()).expect("header name");
            let value = header::HeaderValue::from_str(&value).expect("header value");
            request.headers_mut().append(name, value);
        }
        request
    }

    /// Every header but `Content-Length`/`Transfer-Encoding`, including the signature.
    pub(crate) fn all_headers(&self, addr: SocketAddr) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        if let Some(target) = &self.target {
            headers.push(("x-amz-target".to_owned(), target.clone()));
        }
        if self.sign {
            headers.extend(self.signature(addr, &headers));
        }
        headers
    }

    fn signature(&self, addr: SocketAddr, headers: &[(String, String)]) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = aws_credential_types::Credentials::new(
            CLIENT_ACCESS_KEY_ID,
            CLIENT_SECRET,
            self.session_token.clone(),
            None,
            "tests",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("dynamodb")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let host = addr.to_string();
        let signed = std::iter::once(("host", host.as_str()))
            .chain(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let signable = SignableRequest::new(
            self.method.as_str(),
            format!("http://{addr}/"),
            signed,
            SignableBody::Bytes(&self.body),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// A GET on a fresh connection (the admin endpoints); panics if there is no HTTP answer.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    admin_request(addr, http::Method::GET, path, &[], "").await
}

/// Any request on a fresh connection, with `headers` and `body` (the admin endpoints);
/// panics if there is no HTTP answer.
pub(crate) async fn admin_request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("valid request");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let exchange = async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(RawResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    let what = format!("{method} {addr}{path}");
    within(&what, exchange)
        .await
        .unwrap_or_else(|e| panic!("{what} failed: {e:?}"))
}
