//! `/readyz` means the sidecar can serve: not ready until it has credentials and a region
//! accepted a signed request to each managed table. DynamoDB Local accepts any credentials,
//! so the regions here are fault fronts that answer as DynamoDB answers keys it does not know
//! (`UnrecognizedClientException`) or a role without the permission (`AccessDeniedException`).

#![allow(clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{
    AUDIT_TABLE, DynamoLocal, HANG, Mode, RegionFixture, SidecarConfig, SidecarProcess,
    audit_section, create_audit_table, create_global_catalog, get, metric, sdk_client, spool_dir,
};

const REFUSALS: &str = "globalscale_readiness_refusals_total";

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + HANG;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn refusals(admin: SocketAddr, region: &str, error: &str) -> f64 {
    metric(admin, REFUSALS, &[("region", region), ("error", error)])
        .await
        .unwrap_or(0.0)
}

/// DynamoDB Local with the managed table, two fault fronts as us-east-1 and us-west-2 in
/// `home` and `second` modes, and the binary before them.
async fn start(
    home: Mode,
    second: Mode,
) -> (DynamoLocal, RegionFixture, RegionFixture, SidecarProcess) {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let east = RegionFixture::start(&ddb.endpoint(0)).await;
    let west = RegionFixture::start(&ddb.endpoint(0)).await;
    east.set_mode(home).await;
    west.set_mode(second).await;
    let process = SidecarProcess::start(
        SidecarConfig::new()
            .section("[routing]\nprobe_interval_ms = 100\nprobe_timeout_ms = 2000")
            .region("us-east-1", &east.endpoint())
            .region("us-west-2", &west.endpoint()),
    )
    .await;
    (ddb, east, west, process)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_regions_refuse_keep_the_pod_out_of_its_services() {
    let (_ddb, east, west, process) = start(
        Mode::Unauthorised("UnrecognizedClientException"),
        Mode::Unauthorised("AccessDeniedException"),
    )
    .await;
    let admin = process.admin_addr();
    until("both refusals counted", async || {
        refusals(admin, "us-east-1", "UnrecognizedClientException").await >= 1.0
            && refusals(admin, "us-west-2", "AccessDeniedException").await >= 1.0
    })
    .await;

    // Every region has refused, and the gate opens only on an acceptance.
    let readyz = get(admin, "/readyz").await;
    assert_eq!(readyz.status, 503, "{}", readyz.text());
    let why = readyz.text();
    assert!(
        why.contains("GlobalCatalog")
            && why.contains("us-east-1: UnrecognizedClientException")
            && why.contains("us-west-2: AccessDeniedException"),
        "{why}"
    );
    assert_eq!(metric(admin, "globalscale_ready", &[]).await, Some(0.0));
    assert_eq!(
        get(admin, "/healthz").await.status,
        200,
        "alive all the same"
    );
    let logs = process.stderr();
    assert!(
        logs.lines().any(|l| l.contains("not ready")
            && l.contains("us-east-1")
            && l.contains("UnrecognizedClientException")),
        "no log line names the region and the error:\n{logs}"
    );

    // The role fixed (IRSA annotation corrected, policy attached): the next round opens it.
    east.set_mode(Mode::Forward).await;
    west.set_mode(Mode::Forward).await;
    until("/readyz 200 once a region accepts", async || {
        get(admin, "/readyz").await.status == 200
    })
    .await;
    assert_eq!(metric(admin, "globalscale_ready", &[]).await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_region_accepting_each_table_is_enough_and_the_refusal_is_still_named() {
    let (_ddb, _east, west, process) =
        start(Mode::Unauthorised("ExpiredTokenException"), Mode::Forward).await;
    let admin = process.admin_addr();
    until("/readyz 200", async || {
        get(admin, "/readyz").await.status == 200
    })
    .await;
    // The home region is checked first, so its refusal was counted before the second region
    // accepted.
    assert!(refusals(admin, "us-east-1", "ExpiredTokenException").await >= 1.0);
    assert!(refusals(admin, "us-west-2", "ExpiredTokenException").await < 1.0);
    assert!(
        west.recorded_op("GetItem")
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("GlobalCatalog")),
        "the check is a GetItem of the managed table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_not_ready() {
    let ddb = DynamoLocal::single().await;
    let process =
        SidecarProcess::start(SidecarConfig::new().region("us-east-1", &ddb.endpoint(0))).await;
    let admin = process.admin_addr();
    until("the check answered", async || {
        get(admin, "/readyz")
            .await
            .text()
            .contains("ResourceNotFoundException")
    })
    .await;
    assert_eq!(get(admin, "/readyz").await.status, 503);
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    until("/readyz 200 once the table exists", async || {
        get(admin, "/readyz").await.status == 200
    })
    .await;
}

/// The decision documented in docs/src/operating.md ("Readiness"): once started, a pod stays in its
/// Services when every region is ejected, since every pod shares the regions; clients get
/// DynamoDB's retryable 503 from each pod instead of connection errors from none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_region_does_not_take_a_started_pod_out() {
    let (_ddb, east, west, process) = start(Mode::Forward, Mode::Forward).await;
    let admin = process.admin_addr();
    until("/readyz 200", async || {
        get(admin, "/readyz").await.status == 200
    })
    .await;
    east.set_mode(Mode::Refuse).await;
    west.set_mode(Mode::Refuse).await;
    until("both regions ejected", async || {
        metric(
            admin,
            "globalscale_region_healthy",
            &[("region", "us-east-1")],
        )
        .await
            == Some(0.0)
            && metric(
                admin,
                "globalscale_region_healthy",
                &[("region", "us-west-2")],
            )
            .await
                == Some(0.0)
    })
    .await;
    assert_eq!(get(admin, "/readyz").await.status, 200);
}

/// A role that may use the catalog but not write the audit trail keeps the pod out: it
/// would spool every audited write's records and then refuse audited writes. The check
/// writes nothing (its condition fails on every item), and once the permission is there the
/// gate opens with the audit table still empty of anything but real records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_table_the_role_may_not_write_keeps_the_pod_out() {
    let ddb = DynamoLocal::single().await;
    let client = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&client).await;
    create_audit_table(&client).await;
    let east = RegionFixture::start(&ddb.endpoint(0)).await;
    let west = RegionFixture::start(&ddb.endpoint(0)).await;
    east.set_mode(Mode::UnauthorisedWhen("AccessDeniedException", AUDIT_TABLE))
        .await;
    west.set_mode(Mode::UnauthorisedWhen("AccessDeniedException", AUDIT_TABLE))
        .await;
    let spool = spool_dir();
    let process = SidecarProcess::start(
        SidecarConfig::new()
            .section("[routing]\nprobe_interval_ms = 100\nprobe_timeout_ms = 2000")
            .region("us-east-1", &east.endpoint())
            .region("us-west-2", &west.endpoint())
            .table_line("audit = true")
            .section(&audit_section(spool.path(), "")),
    )
    .await;
    let admin = process.admin_addr();
    until(
        "the audit table's refusal counted in both regions",
        async || {
            refusals(admin, "us-east-1", "AccessDeniedException").await >= 1.0
                && refusals(admin, "us-west-2", "AccessDeniedException").await >= 1.0
        },
    )
    .await;
    let readyz = get(admin, "/readyz").await;
    assert_eq!(readyz.status, 503, "{}", readyz.text());
    assert!(readyz.text().contains(AUDIT_TABLE), "{}", readyz.text());

    east.set_mode(Mode::Forward).await;
    west.set_mode(Mode::Forward).await;
    until(
        "/readyz 200 once the audit table takes a signed write",
        async || get(admin, "/readyz").await.status == 200,
    )
    .await;
    let trail = client
        .scan()
        .table_name(AUDIT_TABLE)
        .send()
        .await
        .expect("scan the audit table");
    assert_eq!(trail.count(), 0, "the check wrote nothing: {trail:?}");
}
