//! One attempt's request as it leaves for a region, built and signed the same way by every
//! sender: the proxy's attempt loop and the health probes.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Request};
use http_body_util::Full;

use crate::error::{InternalError, ProxyError};
use crate::region::Region;
use crate::upstream::sign::Signer;
use crate::wire;

/// The header that names the operation.
/// A `static` built at compile time: a `&str` name is parsed and hashed again at every
/// look-up (callgrind put the four names of the request path at about 2,000 instructions per
/// request).
pub static X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");

/// What an attempt sends, whichever region it goes to.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub target: HeaderValue,
    pub content_type: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub body: Bytes,
}

impl Outbound {
    /// The same request with another body (a verification resend).
    #[must_use]
    pub fn with_body(&self, body: Bytes) -> Self {
        Self {
            body,
            ..self.clone()
        }
    }
}

/// The request to `region`, signed for it: the region is part of SigV4's credential scope,
/// so every attempt is signed after its region is chosen.
pub async fn signed_request(
    signer: &Signer,
    region: &Region,
    outbound: &Outbound,
) -> Result<Request<Full<Bytes>>, ProxyError> {
    let content_type = outbound
        .content_type
        .clone()
        .unwrap_or_else(|| HeaderValue::from_static(wire::CONTENT_TYPE));
    let mut builder = Request::post(region.endpoint.clone())
        .header(HOST, region.host.clone())
        .header(&X_AMZ_TARGET, outbound.target.clone())
        .header(CONTENT_TYPE, content_type);
    if let Some(agent) = &outbound.user_agent {
        builder = builder.header(USER_AGENT, agent.clone());
    }
    let mut request = builder
        .body(Full::new(outbound.body.clone()))
        .map_err(InternalError::Request)?;
    signer
        .sign(&mut request, &outbound.body, &region.name)
        .await?;
    Ok(request)
}
