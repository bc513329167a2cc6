//! Flood costs, printed, never asserted: a signed client's GetItem latency and
//! `/healthz`'s while a client without credentials floods the sidecar (silent connections
//! on both ports, 16 MiB bodies without a signature, with an unknown key, and with a known
//! key id and a wrong signature, with a `Content-Length` and chunked), and the sidecar's
//! RSS; the same client without the floods first, for comparison. With `[auth] mode =
//! "sigv4"` (only the known key id's bodies are read) and `"none"` (every body is read).
//!
//! `cargo bench --bench floods` runs the binary built with the bench profile in front of
//! DynamoDB Local (Java 17, like the tests), for 15 s per case; `tests/floods.rs` asserts
//! the correctness side of the same floods. Record what it prints in `benches/README.md`.

// A measuring program: a failed set-up step should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::{
    DynamoLocal, FloodPlan, SidecarConfig, SidecarProcess, TABLE, create_global_catalog, flood,
    item, sdk_client,
};

const SIGV4: &str = r#"
[auth]
mode = "sigv4"

[[clients]]
name = "app"
access_key_id = "AKIDCLIENT"
secret_access_key = "client-secret"
"#;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(full));
}

async fn run(full: bool) {
    let duration = Duration::from_secs(if full { 15 } else { 1 });
    let flood_plan = FloodPlan {
        duration,
        silent_proxy: 300,
        silent_admin: 200,
        large_bodies: 4,
        signed_clients: 1,
    };
    let quiet = FloodPlan {
        silent_proxy: 0,
        silent_admin: 0,
        large_bodies: 0,
        ..flood_plan.clone()
    };
    println!(
        "floods benchmark: {} s per case, max_connections = 100, the default body budget \
         (64 MiB); one signed client doing GetItem in a closed loop; /healthz every 50 ms \
         on a fresh connection; {} silent connections on the proxy port, {} on the admin \
         port, {} senders of 16 MiB bodies of each of 4 kinds",
        duration.as_secs(),
        flood_plan.silent_proxy,
        flood_plan.silent_admin,
        flood_plan.large_bodies
    );
    for (mode, extra) in [("sigv4", SIGV4), ("none", "")] {
        let ddb = DynamoLocal::single().await;
        let direct = sdk_client(&ddb.endpoint(0));
        create_global_catalog(&direct).await;
        direct
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item("flood", "x", &[])))
            .send()
            .await
            .expect("PutItem");
        let config = SidecarConfig::new()
            .region("us-east-1", &ddb.endpoint(0))
            .section("[server]\nmax_connections = 100")
            .section(extra);
        let sidecar = SidecarProcess::start(config).await;
        let (proxy, admin, pid) = (sidecar.listen_addr(), sidecar.admin_addr(), sidecar.pid());
        let client = sdk_client(&sidecar.endpoint());
        flood(proxy, admin, pid, &client, &quiet)
            .await
            .print(&format!("[auth] mode = \"{mode}\", no flood"));
        flood(proxy, admin, pid, &client, &flood_plan)
            .await
            .print(&format!("[auth] mode = \"{mode}\", floods"));
    }
}
