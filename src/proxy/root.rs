//! `GET /`: DynamoDB answers it with `200 healthy: dynamodb.<region>.amazonaws.com`; DynamoDB
//! Local refuses it (400, `Server: Jetty`), and tools and test suites tell the two apart by
//! that answer. The sidecar asks the region routing would choose, unsigned and without a
//! body, and passes its answer on; when that region gives none the sidecar can pass on
//! (DynamoDB's own is text, not the JSON every other answer is) it answers as DynamoDB does.

use bytes::Bytes;
use http::header::HOST;
use http::{Request, Response};
use http_body_util::Full;

use super::{Proxy, Reply};
use crate::snapshot::Snapshot;

impl Proxy {
    pub(super) async fn root(&self, snapshot: &Snapshot) -> Response<Full<Bytes>> {
        let own = || Response::new(Full::new(Bytes::from_static(b"healthy: globalscale")));
        // A place among the requests in flight, as any request: a flood of `GET /` costs
        // the regions no more than a flood of anything else.
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return own();
        };
        let candidates =
            crate::route::candidates(&snapshot.region_views(), snapshot.config.routing.policy);
        let Some(region) = candidates.first().map(|&i| &snapshot.regions[i]) else {
            return own();
        };
        let Ok(request) = Request::get(region.endpoint.clone())
            .header(HOST, region.host.clone())
            .body(Full::new(Bytes::new()))
        else {
            return own();
        };
        let deadline = tokio::time::Instant::now() + snapshot.config.timeouts.request;
        match snapshot.upstream.send(request, deadline).await {
            Ok(upstream) => super::reply::reply_response(Reply {
                region: std::sync::Arc::clone(&region.label),
                upstream,
            }),
            Err(_) => own(),
        }
    }
}
