//! The JavaScript SDK v3 in a web page, in headless Chromium, against the sidecar: the
//! browser's own CORS machinery (preflight, allowed origin, exposed headers) decides whether
//! the page's calls go through. A page of an allowed origin lists, puts and gets; a page of
//! any other origin is stopped by the browser, and nothing it asked for reaches the region.

#![allow(clippy::expect_used)]

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::{
    DynamoLocal, PageServer, RegionFixture, Sidecar, SidecarConfig, TABLE, bundle_browser_sdk,
    create_global_catalog, sdk_client,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_sdk_in_a_browser_works_from_allowed_origins_only() {
    let bundle = Arc::new(bundle_browser_sdk());
    let allowed = PageServer::start(Arc::clone(&bundle)).await;
    let other = PageServer::start(bundle).await;
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let config = SidecarConfig::new()
        .region("us-east-1", &region.endpoint())
        .section("[routing]\nprobe_interval_ms = 600000")
        .section(&format!(
            "[cors]\nallowed_origins = [{:?}]",
            allowed.origin()
        ));
    let sidecar = Sidecar::start(&config).await;
    let query = |id: &str| format!("endpoint={}&table={TABLE}&id={id}", sidecar.endpoint());

    let result = allowed.run(&query("from-allowed")).await;
    let result: Value = serde_json::from_str(&result).expect("the page's JSON result");
    assert_eq!(result["error"], Value::Null, "{result}");
    assert!(
        result["tables"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == TABLE)),
        "{result}"
    );
    assert_eq!(result["item"], "chromium", "{result}");
    // The request id is readable: exposed to the page.
    assert!(
        result["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{result}"
    );

    let result = other.run(&query("from-other")).await;
    let result: Value = serde_json::from_str(&result).expect("the page's JSON result");
    assert!(result["error"].is_string(), "{result}");
    assert!(
        region
            .recorded_op("PutItem")
            .iter()
            .all(|r| { !String::from_utf8_lossy(&r.body).contains("from-other") }),
        "a call from an origin not allowed reached the region"
    );
}
