//! `globalscale audit verify` as a cron job runs it: the binary on a config file, over a
//! trail the sidecar shipped through the SDK against DynamoDB Local. Clean on an honest
//! trail (exit 0); after a record is deleted, one altered and one forged directly in the
//! audit table, each is named and the exit code is 1.

#![allow(clippy::expect_used)]

mod support;

use std::process::Output;

use aws_sdk_dynamodb::types::AttributeValue;
use support::{
    DynamoLocal, Sidecar, SidecarConfig, TABLE, audit_records, audit_section, create_audit_table,
    create_global_catalog, item, run_command, sdk_client, wait_for_records,
};

const AUDIT_TABLE: &str = "GlobalCatalog-audit";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_is_clean_on_an_honest_trail_and_names_what_was_tampered_with() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let spool = tempfile::tempdir().expect("spool");
    let config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .table_line("audit = true")
        .section(&audit_section(spool.path(), ""));
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client(&sidecar.endpoint());
    for i in 0..8 {
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item(&format!("v{i}"), "x", &[("Name", "n")])))
            .send()
            .await
            .expect("PutItem");
    }
    let records = wait_for_records(&local, 8).await;
    sidecar.stop().await;
    let honest = run_command(&config, &["audit", "verify"]).await;
    assert_eq!(honest.status.code(), Some(0), "{}", text(&honest));
    assert!(
        text(&honest).contains("8 records read"),
        "{}",
        text(&honest)
    );

    // By ChainSeq: delete the 3rd, alter the 5th, forge a copy of the 7th.
    let seq = |r: &support::Record| match &r["ChainSeq"] {
        AttributeValue::N(n) => n.parse::<u64>().expect("ChainSeq"),
        other => panic!("ChainSeq {other:?}"),
    };
    let by_seq = |n: u64| {
        records
            .iter()
            .find(|r| seq(r) == n)
            .cloned()
            .expect("a record of that place")
    };
    let key = |r: &support::Record| {
        [
            ("ItemKey".to_owned(), r["ItemKey"].clone()),
            ("EventId".to_owned(), r["EventId"].clone()),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    local
        .delete_item()
        .table_name(AUDIT_TABLE)
        .set_key(Some(key(&by_seq(3))))
        .send()
        .await
        .expect("delete a record");
    let mut altered = by_seq(5);
    altered.insert("Principal".into(), AttributeValue::S("someone-else".into()));
    local
        .put_item()
        .table_name(AUDIT_TABLE)
        .set_item(Some(altered))
        .send()
        .await
        .expect("alter a record");
    let mut forged = by_seq(7);
    forged.insert(
        "EventId".into(),
        AttributeValue::S("01FORGED0000000000000000000".into()),
    );
    local
        .put_item()
        .table_name(AUDIT_TABLE)
        .set_item(Some(forged))
        .send()
        .await
        .expect("forge a record");
    assert_eq!(audit_records(&local).await.len(), 8);

    let tampered = run_command(&config, &["audit", "verify"]).await;
    let report = text(&tampered);
    assert_eq!(tampered.status.code(), Some(1), "{report}");
    assert!(report.contains("has no record 3"), "the deletion: {report}");
    assert!(report.contains("record 5"), "the alteration: {report}");
    assert!(report.contains("two records 7"), "the forgery: {report}");
}
