//! What a client without credentials can cost, against the real binary in front
//! of DynamoDB Local: for a few seconds, silent connections flood the proxy and admin ports
//! and 16 MiB bodies come without a signature, with an unknown key, and with a known key id
//! and a wrong signature, while a signed SDK client reads an item and `/healthz` is asked.
//! Asserted: no GetItem fails, every `/healthz` answers 200, the sidecar's RSS stays under
//! the bound docs/src/access-control.md states, each limit was reached and counted, and the
//! body memory is given back. Latencies are printed, not asserted (`benches/floods.rs` measures them).

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{
    DynamoLocal, FloodPlan, SidecarConfig, SidecarProcess, TABLE, create_global_catalog, flood,
    get, item, metric_sum, mib, sdk_client, within,
};

/// The bound on RSS that docs/src/access-control.md states ("Limits"), under these floods
/// with the default body budget (64 MiB).
const RSS_BOUND: u64 = 128 * 1024 * 1024;

const SIGV4: &str = r#"
[auth]
mode = "sigv4"

[[clients]]
name = "app"
access_key_id = "AKIDCLIENT"
secret_access_key = "client-secret"
"#;

const PLAN: FloodPlan = FloodPlan {
    duration: Duration::from_secs(4),
    silent_proxy: 150,
    silent_admin: 100,
    large_bodies: 3,
    signed_clients: 2,
};

/// DynamoDB Local with the item the signed client reads, and the sidecar binary in front
/// of it with the issue's cap of 100 connections and `extra` config.
async fn setup(extra: &str) -> (DynamoLocal, SidecarProcess) {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    direct
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("flood", "x", &[])))
        .send()
        .await
        .expect("PutItem straight to DynamoDB Local");
    let config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .section("[server]\nmax_connections = 100")
        .section(extra);
    (ddb, SidecarProcess::start(config).await)
}

async fn floods_cost_the_signed_client_nothing(extra: &str, label: &str) {
    let (_ddb, sidecar) = setup(extra).await;
    let (proxy, admin) = (sidecar.listen_addr(), sidecar.admin_addr());
    let client = sdk_client(&sidecar.endpoint());
    let report = within(
        "the floods",
        flood(proxy, admin, sidecar.pid(), &client, &PLAN),
    )
    .await;
    report.print(label);
    assert!(
        report.get_failures.is_empty(),
        "signed GetItems failed under the floods: {:?}\nstderr:\n{}",
        report.get_failures,
        sidecar.stderr()
    );
    assert!(!report.gets.is_empty(), "no GetItem completed");
    assert!(
        report.healthz_failures.is_empty(),
        "/healthz failed under the floods: {:?}",
        report.healthz_failures
    );
    assert!(!report.healthz.is_empty(), "/healthz never answered");
    assert!(
        report.max_rss < RSS_BOUND,
        "RSS reached {:.1} MiB",
        mib(report.max_rss)
    );
    assert_limits_were_reached(admin).await;
}

/// The floods reached each limit, the metrics say so, and the bodies' memory is back.
async fn assert_limits_were_reached(admin: std::net::SocketAddr) {
    let text = get(admin, "/metrics").await.text();
    let value = |name: &str, labels: &[(&str, &str)]| metric_sum(&text, name, labels);
    for listener in ["proxy", "admin"] {
        let evicted = value(
            "globalscale_connections_evicted_total",
            &[("listener", listener), ("state", "silent")],
        );
        assert!(evicted > Some(0.0), "{listener}: {evicted:?}");
    }
    let refused = value("globalscale_body_memory_refusals_total", &[]);
    assert!(
        refused > Some(0.0),
        "the body budget was never reached: {refused:?}"
    );
    within("the bodies' memory to be released", async {
        loop {
            let text = get(admin, "/metrics").await.text();
            if metric_sum(&text, "globalscale_body_memory_bytes", &[]) == Some(0.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sigv4_floods_cost_a_signed_client_nothing_and_rss_stays_bounded() {
    floods_cost_the_signed_client_nothing(SIGV4, "floods, [auth] mode = \"sigv4\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_floods_cost_a_client_nothing_and_rss_stays_bounded() {
    // Every body is read (there is no signature to check first): the budget alone holds.
    floods_cost_the_signed_client_nothing("", "floods, [auth] mode = \"none\"").await;
}
