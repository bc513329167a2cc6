//! The audit write-ahead under `kill -9`, through the SDK against DynamoDB Local: a front
//! lets the home region apply a write and holds its answer, the sidecar is killed while the
//! answer is on its way, and a new sidecar on the same spool ships the write's record,
//! exactly once: `accepted` on a versioned table (recovery reads the write id back),
//! `unknown` elsewhere. A write the region never received leaves no record or an `unknown`
//! one, never an `accepted` one; a refused write leaves none.

#![allow(clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use support::{
    DynamoLocal, Mode, Record, RegionFixture, SidecarConfig, SidecarProcess, TABLE, audit_records,
    audit_section, create_audit_table, create_global_catalog, item, put_request, s,
    sdk_client_with, spool_dir, wait_for_metric, wait_for_records,
};

/// The sidecar in front of `home` only, with an attempt timeout longer than any test, so a
/// held answer keeps the request in flight until the kill.
fn config(home: &str, spool: &Path, versioned: bool) -> SidecarConfig {
    let config = SidecarConfig::new()
        .timeouts(1_000, 120_000, 120_000)
        .section("[routing]\neject_after_failures = 100\nprobe_interval_ms = 600000")
        .region("us-east-1", home)
        .table_line("audit = true")
        .section(&audit_section(spool, ""));
    if versioned {
        config.table_line("version_attribute = \"Version\"")
    } else {
        config
    }
}

fn client(endpoint: &str) -> Client {
    sdk_client_with(endpoint, None, |b| b.retry_config(RetryConfig::disabled()))
}

/// One write of each kind the test sends while its answer is held.
#[derive(Clone, Copy, Debug)]
enum Write {
    Put,
    Update,
    Batch,
    Transaction,
}

impl Write {
    /// The item ids the write touches.
    fn ids(self) -> Vec<String> {
        let name = format!("{self:?}").to_lowercase();
        match self {
            Write::Put | Write::Update => vec![format!("{name}-1")],
            Write::Batch | Write::Transaction => vec![format!("{name}-1"), format!("{name}-2")],
        }
    }

    async fn send(self, client: &Client) {
        let ids = self.ids();
        let result = match self {
            Write::Put => client
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item(&ids[0], "x", &[("Name", "held")])))
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("{e:?}")),
            Write::Update => client
                .update_item()
                .table_name(TABLE)
                .set_key(Some(item(&ids[0], "x", &[])))
                .update_expression("SET #n = :n")
                .expression_attribute_names("#n", "Name")
                .expression_attribute_values(":n", AttributeValue::S("held".into()))
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("{e:?}")),
            Write::Batch => client
                .batch_write_item()
                .request_items(TABLE, ids.iter().map(|id| put_request(id)).collect())
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("{e:?}")),
            Write::Transaction => {
                let put = Put::builder()
                    .table_name(TABLE)
                    .set_item(Some(item(&ids[0], "x", &[("Name", "held")])))
                    .build()
                    .expect("Put");
                let update = Update::builder()
                    .table_name(TABLE)
                    .set_key(Some(item(&ids[1], "x", &[])))
                    .update_expression("SET #n = :n")
                    .expression_attribute_names("#n", "Name")
                    .expression_attribute_values(":n", AttributeValue::S("held".into()))
                    .build()
                    .expect("Update");
                client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .transact_items(TransactWriteItem::builder().update(update).build())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| format!("{e:?}"))
            }
        };
        // Killed before its answer: an error is what the client sees.
        drop(result);
    }
}

/// Whether DynamoDB holds every item the write touches.
async fn applied(local: &Client, write: Write) -> bool {
    for id in write.ids() {
        let got = local
            .get_item()
            .table_name(TABLE)
            .set_key(Some(item(&id, "x", &[])))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        if got.item.is_none() {
            return false;
        }
    }
    true
}

/// The records of `ids`, once their count is reached and a little longer (a duplicate
/// would show).
async fn records_of(local: &Client, ids: &[String]) -> Vec<Record> {
    wait_for_records(local, ids.len()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let keys: Vec<String> = ids.iter().map(|id| format!("{TABLE}#{id}#x")).collect();
    audit_records(local)
        .await
        .into_iter()
        .filter(|r| keys.iter().any(|k| k == s(r, "ItemKey")))
        .collect()
}

/// One region behind a fault front, its tables made, and a spool.
struct World {
    // Kept for its processes: dropped, the region stops.
    _ddb: DynamoLocal,
    local: Client,
    home: RegionFixture,
    spool: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let ddb = DynamoLocal::single().await;
        let local = client(&ddb.endpoint(0));
        create_global_catalog(&local).await;
        create_audit_table(&local).await;
        let home = RegionFixture::start(&ddb.endpoint(0)).await;
        World {
            _ddb: ddb,
            local,
            home,
            spool: spool_dir(),
        }
    }

    fn config(&self, versioned: bool) -> SidecarConfig {
        config(&self.home.endpoint(), self.spool.path(), versioned)
    }
}

/// Sends `write` through the sidecar at `endpoint` with the region's answer held, and
/// returns once the region has applied it, the client still waiting.
async fn send_held(world: &World, endpoint: &str, write: Write) -> tokio::task::JoinHandle<()> {
    world.home.set_mode(Mode::ApplyThenHang).await;
    let sender = client(endpoint);
    let in_flight = tokio::spawn(async move { write.send(&sender).await });
    let deadline = tokio::time::Instant::now() + support::HANG;
    while !applied(&world.local, write).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{write:?} never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    in_flight
}

/// Sends `write` with its answer held, kills the sidecar once the region applied it, starts
/// a new one on the same spool, and returns the write's records.
async fn killed_while_answering(write: Write, versioned: bool) -> Vec<Record> {
    let world = World::start().await;
    let (local, home, config) = (&world.local, &world.home, world.config(versioned));
    let mut first = SidecarProcess::start(config.clone()).await;
    let in_flight = send_held(&world, &first.endpoint(), write).await;
    first.signal("KILL");
    first.wait_exit().await;
    in_flight.abort();
    home.set_mode(Mode::Forward).await;
    let _second = SidecarProcess::start(config).await;
    let records = records_of(local, &write.ids()).await;
    assert_eq!(
        records.len(),
        write.ids().len(),
        "{write:?}: one record per item, exactly once: {records:?}"
    );
    records
}

fn outcomes(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| s(r, "Outcome")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_put_applied_but_unanswered_is_recorded_as_accepted_after_a_kill() {
    let records = killed_while_answering(Write::Put, true).await;
    assert_eq!(outcomes(&records), ["accepted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_update_applied_but_unanswered_is_recorded_as_accepted_after_a_kill() {
    let records = killed_while_answering(Write::Update, true).await;
    assert_eq!(outcomes(&records), ["accepted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_batch_applied_but_unanswered_is_recorded_as_accepted_after_a_kill() {
    let records = killed_while_answering(Write::Batch, true).await;
    assert_eq!(outcomes(&records), ["accepted", "accepted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_transaction_applied_but_unanswered_is_recorded_as_accepted_after_a_kill() {
    let records = killed_while_answering(Write::Transaction, true).await;
    assert_eq!(outcomes(&records), ["accepted", "accepted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unversioned_writes_applied_but_unanswered_are_recorded_as_unknown_after_a_kill() {
    for write in [Write::Put, Write::Transaction] {
        let records = killed_while_answering(write, false).await;
        assert!(
            outcomes(&records).iter().all(|o| *o == "unknown"),
            "{write:?}: {records:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_killed_before_it_reached_the_region_is_never_recorded_as_accepted() {
    let world = World::start().await;
    let (local, home, config) = (&world.local, &world.home, world.config(true));
    let mut first = SidecarProcess::start(config.clone()).await;
    // The region reads the request and never applies it.
    home.set_mode(Mode::BlackHole).await;
    let sender = client(&first.endpoint());
    let in_flight = tokio::spawn(async move { Write::Put.send(&sender).await });
    home.wait_for("the PutItem", |r| r.operation() == Some("PutItem"))
        .await;
    first.signal("KILL");
    first.wait_exit().await;
    in_flight.abort();
    home.set_mode(Mode::Forward).await;
    let second = SidecarProcess::start(config).await;
    // A marker write after the restart ships behind whatever recovery decided.
    Write::Update.send(&client(&second.endpoint())).await;
    let marker = records_of(local, &Write::Update.ids()).await;
    assert_eq!(outcomes(&marker), ["accepted"]);
    let held = audit_records(local)
        .await
        .into_iter()
        .filter(|r| s(r, "ItemKey") == format!("{TABLE}#put-1#x"))
        .collect::<Vec<_>>();
    assert!(!applied(local, Write::Put).await, "the put never applied");
    assert!(
        held.iter().all(|r| s(r, "Outcome") == "unknown") && held.len() <= 1,
        "a write that never happened is at most an unknown: {held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_conditional_write_leaves_no_record() {
    let world = World::start().await;
    let local = &world.local;
    let sidecar = SidecarProcess::start(world.config(false)).await;
    let client = client(&sidecar.endpoint());
    let refused = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("refused-1", "x", &[])))
        .condition_expression("attribute_exists(ItemID)")
        .send()
        .await;
    assert!(refused.is_err(), "the condition fails on a missing item");
    Write::Put.send(&client).await;
    let records = records_of(local, &Write::Put.ids()).await;
    assert_eq!(outcomes(&records), ["accepted"]);
    assert!(
        audit_records(local)
            .await
            .iter()
            .all(|r| s(r, "ItemKey") != format!("{TABLE}#refused-1#x")),
        "a refused write leaves no record"
    );
}

/// A client that hangs up while the region works takes the request's future with it: the
/// write may have been applied, and nobody will hear the answer. Its intents are settled as
/// they stand (`unknown`) and shipped by this run, not left in the spool as a write in flight
/// until the next start (they held the backlog up and made a shutdown wait out its drain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_client_hung_up_ships_as_unknown_in_the_same_run() {
    let world = World::start().await;
    let (local, home) = (&world.local, &world.home);
    let sidecar = SidecarProcess::start(world.config(false)).await;
    let write = Write::Put;
    let in_flight = send_held(&world, &sidecar.endpoint(), write).await;
    // The region answers again (the held answer stays held), so the records can ship; then
    // the client goes away: its connection closes with the request unanswered.
    home.set_mode(Mode::Forward).await;
    in_flight.abort();
    let _ = in_flight.await;
    let records = records_of(local, &write.ids()).await;
    assert_eq!(outcomes(&records), ["unknown"], "{records:?}");
    wait_for_metric(sidecar.admin_addr(), "globalscale_audit_backlog", 0.0).await;
    let spooled = support::metric(
        sidecar.admin_addr(),
        "globalscale_audit_records_total",
        &[("outcome", "spooled")],
    )
    .await;
    assert_eq!(spooled, Some(1.0), "the record counted as spooled");
}
