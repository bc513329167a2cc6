//! Every path to a table meets its policy, tried as a hostile client would through the Rust
//! SDK and boto3 against DynamoDB Local: the managed table named by its ARN (served under its
//! whole policy, or refused when the ARN names another account or region), PartiQL spellings
//! of it (whitespace, comments, quotes, letter case, index suffixes: refused), and the audit
//! table by every operation and name (refused, whatever the allow-lists say). After each
//! attack the item of another namespace is unchanged, no unprefixed key is stored, and the
//! audit table holds exactly the records of the writes that were served.

#![allow(clippy::expect_used)]

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementRequest, Delete, DeleteRequest, KeysAndAttributes, Put,
    PutRequest, Tag, TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use support::{
    AUDIT_TABLE, DynamoLocal, Sidecar, SidecarConfig, TABLE, audit_records, audit_section,
    create_audit_table, create_global_catalog, item, metric, run_boto3, s, sdk_client,
    sdk_client_with, wait_for_records,
};

type Item = HashMap<String, AttributeValue>;

/// The managed table's ARN as DynamoDB Local's own (`ddblocal`, account 000000000000) would
/// be written for the home region.
const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/GlobalCatalog";
/// The item of another home region, planted straight into the table.
const FOREIGN: &str = "us-west-2#secret";

const CLIENTS: &str = r#"
[auth]
mode = "sigv4"

[[clients]]
name = "app"
access_key_id = "AKIDAPP"
secret_access_key = "app-secret"
tables = ["*"]

[[clients]]
name = "ops"
access_key_id = "AKIDOPS"
secret_access_key = "ops-secret"
"#;

struct World {
    ddb: DynamoLocal,
    direct: Client,
    sidecar: Sidecar,
    _spool: tempfile::TempDir,
}

/// A prefixed, versioned, audited `GlobalCatalog` with a planted foreign item; with `auth`,
/// the clients of [`CLIENTS`].
async fn world(auth: bool) -> World {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    create_audit_table(&direct).await;
    direct
        .put_item()
        .table_name(TABLE)
        .set_item(Some(foreign_item()))
        .send()
        .await
        .expect("plant the foreign item");
    let spool = tempfile::tempdir().expect("spool dir");
    // Two regions on one store: a global table without replication lag.
    let mut config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .region("us-west-2", &ddb.endpoint(0))
        .table_line("key_prefix = \"{region}#\"")
        .table_line("version_attribute = \"Version\"")
        .table_line("audit = true")
        .section(&audit_section(spool.path(), ""));
    if auth {
        config = config.section(CLIENTS);
    }
    let sidecar = Sidecar::start(&config).await;
    World {
        ddb,
        direct,
        sidecar,
        _spool: spool,
    }
}

fn foreign_item() -> Item {
    let mut foreign = item(FOREIGN, "x", &[("Data", "orig")]);
    foreign.insert("Version".into(), AttributeValue::N("5".into()));
    foreign
}

fn client(w: &World, key: &str, secret: &str) -> Client {
    sdk_client_with(&w.sidecar.endpoint(), None, |b| {
        b.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key, secret, None, None, "test",
        ))
    })
}

fn key(id: &str) -> Item {
    item(id, "x", &[])
}

/// Every item as stored, read straight from the region.
async fn stored(w: &World) -> Vec<Item> {
    w.direct
        .scan()
        .table_name(TABLE)
        .consistent_read(true)
        .send()
        .await
        .expect("Scan direct")
        .items
        .unwrap_or_default()
}

/// The foreign item is as planted; every stored key sits in a namespace.
async fn nothing_escaped(w: &World) {
    let items = stored(w).await;
    let foreign = items
        .iter()
        .find(|i| i.get("ItemID") == Some(&AttributeValue::S(FOREIGN.into())))
        .expect("the foreign item is still there");
    assert_eq!(foreign, &foreign_item(), "the foreign item was changed");
    for i in &items {
        let Some(AttributeValue::S(id)) = i.get("ItemID") else {
            panic!("item without a string key: {i:?}")
        };
        assert!(
            id.starts_with("us-east-1#") || id.starts_with("us-west-2#"),
            "an unprefixed key was stored: {id:?}"
        );
    }
}

/// A transaction's Delete of `key` in `table`.
fn transact_delete(table: &str, key: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .delete(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key))
                .build()
                .expect("delete"),
        )
        .build()
}

fn code<E: ProvideErrorMetadata>(result: Result<impl std::fmt::Debug, E>) -> String {
    match result {
        Ok(ok) => panic!("served, not refused: {ok:?}"),
        Err(e) => e.code().unwrap_or("no code").to_owned(),
    }
}

/// The ARN of a managed table is the table: its whole policy applies, and answers keep
/// the client's spelling.
#[allow(clippy::too_many_lines)] // one story: each write by ARN, then what it left behind
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_named_by_its_arn_gets_its_whole_policy() {
    let w = world(false).await;
    let client = sdk_client(&w.sidecar.endpoint());

    let read = client
        .get_item()
        .table_name(TABLE_ARN)
        .set_key(Some(key(FOREIGN)))
        .send()
        .await
        .expect("GetItem by ARN");
    assert_eq!(read.item, None, "another region's item was read by ARN");

    let put = client
        .put_item()
        .table_name(TABLE_ARN)
        .set_item(Some(item("by-arn", "x", &[("Data", "a")])))
        .send()
        .await
        .expect("PutItem by ARN");
    assert!(put.attributes.is_none());
    // The same key once more, without the version read: the version check applies.
    let again = client
        .put_item()
        .table_name(TABLE_ARN)
        .set_item(Some(item("by-arn", "x", &[("Data", "b")])))
        .send()
        .await;
    assert_eq!(code(again), "ConditionalCheckFailedException");
    // An overwrite aimed at the foreign key lands in this namespace instead.
    client
        .put_item()
        .table_name(TABLE_ARN)
        .set_item(Some(item(FOREIGN, "x", &[("Data", "pwned")])))
        .send()
        .await
        .expect("PutItem by ARN of a key that looks foreign");

    let other_region = TABLE_ARN.replace("us-east-1", "us-west-2");
    let batch = client
        .batch_write_item()
        .request_items(
            other_region.clone(),
            vec![
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(key("batch-arn")))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            ],
        )
        .send()
        .await
        .expect("BatchWriteItem keyed by an ARN of another replica region");
    assert!(batch.unprocessed_items.unwrap_or_default().is_empty());

    let got = client
        .batch_get_item()
        .request_items(
            TABLE_ARN,
            KeysAndAttributes::builder()
                .keys(key("by-arn"))
                .keys(key(FOREIGN))
                .keys(key("batch-arn"))
                .build()
                .expect("keys"),
        )
        .send()
        .await
        .expect("BatchGetItem by ARN");
    let responses = got.responses.unwrap_or_default();
    let items = responses
        .get(TABLE_ARN)
        .unwrap_or_else(|| panic!("Responses keyed as the request was: {responses:?}"));
    assert_eq!(items.len(), 3, "{items:?}");
    for i in items {
        let Some(AttributeValue::S(id)) = i.get("ItemID") else {
            panic!("{i:?}")
        };
        assert!(!id.starts_with("us-east-1#"), "a prefix was shown: {id}");
        if id == FOREIGN {
            assert_eq!(i.get("Data"), Some(&AttributeValue::S("pwned".into())));
        }
    }

    let scan = client
        .scan()
        .table_name(TABLE_ARN)
        .send()
        .await
        .expect("Scan by ARN");
    for i in scan.items.unwrap_or_default() {
        assert_ne!(
            i.get("Data"),
            Some(&AttributeValue::S("orig".into())),
            "{i:?}"
        );
        assert!(
            i.keys().all(|k| !k.starts_with("__globalscale")),
            "a hidden attribute was shown: {i:?}"
        );
    }

    let transaction = client
        .transact_write_items()
        .transact_items(transact_delete(TABLE_ARN, key("batch-arn")))
        .send()
        .await;
    transaction.expect("TransactWriteItems by ARN");

    // Each served write left a record: two puts, one batch put, one transaction delete.
    let records = wait_for_records(&w.direct, 4).await;
    let tables: Vec<&str> = records.iter().map(|r| s(r, "Table")).collect();
    assert!(tables.iter().all(|t| *t == TABLE), "{tables:?}");
    nothing_escaped(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arn_of_another_account_or_resource_is_refused() {
    let w = world(false).await;
    let client = sdk_client(&w.sidecar.endpoint());
    for (arn, expected) in [
        (
            TABLE_ARN.replace("000000000000", "123456789012"),
            "AccessDeniedException",
        ),
        (
            TABLE_ARN.replace("us-east-1", "ap-south-1"),
            "AccessDeniedException",
        ),
        (format!("{TABLE_ARN}/index/ByName"), "ValidationException"),
    ] {
        let put = client
            .put_item()
            .table_name(&arn)
            .set_item(Some(item(FOREIGN, "x", &[("Data", "pwned")])))
            .send()
            .await;
        assert_eq!(code(put), expected, "{arn}");
        let scan = client.scan().table_name(&arn).send().await;
        assert_eq!(code(scan), expected, "{arn}");
    }
    assert!(audit_records(&w.direct).await.is_empty());
    nothing_escaped(&w).await;
    let refused = metric(
        w.sidecar.admin_addr(),
        "globalscale_policy_refusals_total",
        &[("reason", "table_arn")],
    )
    .await;
    assert_eq!(refused, Some(6.0));
}

/// PartiQL reaches a prefixed, versioned table in no spelling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partiql_spellings_of_a_managed_table_are_refused() {
    let w = world(false).await;
    let client = sdk_client(&w.sidecar.endpoint());
    for statement in [
        format!("UPDATE\n{TABLE} SET Data='pwned' WHERE ItemID='{FOREIGN}' AND Category='x'"),
        format!("UPDATE\t\"{TABLE}\" SET Data='pwned' WHERE ItemID='{FOREIGN}' AND Category='x'"),
        format!("SELECT * FROM\t{TABLE}"),
        format!("SELECT * FROM {TABLE}.ByName"),
        format!("SELECT * FROM \"{TABLE}\".\"ByName\""),
        format!("select * from /* hi */ {TABLE} -- there"),
        format!("DELETE FROM\r\n{TABLE} WHERE ItemID='{FOREIGN}' AND Category='x'"),
        format!("INSERT INTO {TABLE} VALUE {{'ItemID': 'plain', 'Category': 'x'}}"),
        "SELECT * FROM globalcatalog".to_owned(),
    ] {
        let result = client
            .execute_statement()
            .statement(&statement)
            .send()
            .await;
        assert_eq!(code(result), "ValidationException", "{statement:?}");
    }
    let batch = client
        .batch_execute_statement()
        .statements(
            BatchStatementRequest::builder()
                .statement(format!(
                    "DELETE FROM\n{TABLE} WHERE ItemID='{FOREIGN}' AND Category='x'"
                ))
                .build()
                .expect("statement"),
        )
        .send()
        .await;
    assert_eq!(code(batch), "ValidationException");
    nothing_escaped(&w).await;
    assert!(audit_records(&w.direct).await.is_empty());
}

/// The audit table is the sidecar's alone: every path to it is refused, for a client with
/// the widest allow-list (`*`) as for one with none, and for an unauthenticated client; the
/// trail is intact and shipping goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_table_is_out_of_every_clients_reach() {
    for auth in [false, true] {
        let w = world(auth).await;
        let clients = if auth {
            vec![
                client(&w, "AKIDAPP", "app-secret"),
                client(&w, "AKIDOPS", "ops-secret"),
            ]
        } else {
            vec![sdk_client(&w.sidecar.endpoint())]
        };
        let first = clients.first().expect("a client");
        first
            .put_item()
            .table_name(TABLE)
            .set_item(Some(key("recorded")))
            .send()
            .await
            .expect("an audited write");
        let records = wait_for_records(&w.direct, 1).await;
        for client in &clients {
            attack_audit_table(client, &records[0]).await;
        }
        let listed = first.list_tables().send().await.expect("ListTables");
        let names = listed.table_names.unwrap_or_default();
        assert!(names.contains(&TABLE.to_owned()), "{names:?}");
        assert!(!names.contains(&AUDIT_TABLE.to_owned()), "{names:?}");

        // The table and its record are as shipped, and shipping goes on.
        let after = audit_records(&w.direct).await;
        assert_eq!(after, records, "auth = {auth}");
        first
            .put_item()
            .table_name(TABLE)
            .set_item(Some(key("recorded-too")))
            .send()
            .await
            .expect("a second audited write");
        wait_for_records(&w.direct, 2).await;
        let refused = metric(
            w.sidecar.admin_addr(),
            "globalscale_policy_refusals_total",
            &[("reason", "audit_table")],
        )
        .await
        .expect("the refusals metric");
        let clients_count = u32::try_from(clients.len()).expect("a few clients");
        assert!(refused >= 16.0 * f64::from(clients_count), "{refused}");
        nothing_escaped(&w).await;
        drop(w.ddb);
    }
}

#[allow(clippy::too_many_lines)] // one list: every way to name and reach the audit table
async fn attack_audit_table(client: &Client, record: &Item) {
    let audit_arn = format!("arn:aws:dynamodb:us-east-1:000000000000:table/{AUDIT_TABLE}");
    let record_key: Item = ["ItemKey", "EventId"]
        .into_iter()
        .map(|k| (k.to_owned(), record[k].clone()))
        .collect();
    let denied = |what: &str, code: String| {
        assert_eq!(code, "AccessDeniedException", "{what}");
    };
    for table in [AUDIT_TABLE, audit_arn.as_str()] {
        denied(
            "DeleteItem",
            code(
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(record_key.clone()))
                    .send()
                    .await,
            ),
        );
        let mut forged = record.clone();
        forged.insert("Principal".into(), AttributeValue::S("someone-else".into()));
        denied(
            "PutItem",
            code(
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(forged))
                    .send()
                    .await,
            ),
        );
        denied(
            "UpdateItem",
            code(
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(record_key.clone()))
                    .update_expression("SET Operation = :o")
                    .expression_attribute_values(":o", AttributeValue::S("GetItem".into()))
                    .send()
                    .await,
            ),
        );
        denied(
            "Query",
            code(
                client
                    .query()
                    .table_name(table)
                    .key_condition_expression("ItemKey = :k")
                    .expression_attribute_values(":k", record["ItemKey"].clone())
                    .send()
                    .await,
            ),
        );
        denied(
            "BatchWriteItem",
            code(
                client
                    .batch_write_item()
                    .request_items(
                        table,
                        vec![
                            WriteRequest::builder()
                                .delete_request(
                                    DeleteRequest::builder()
                                        .set_key(Some(record_key.clone()))
                                        .build()
                                        .expect("delete"),
                                )
                                .build(),
                        ],
                    )
                    .send()
                    .await,
            ),
        );
        denied(
            "TransactWriteItems",
            code(
                client
                    .transact_write_items()
                    .transact_items(
                        TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(TABLE)
                                    .set_item(Some(key("cover")))
                                    .build()
                                    .expect("put"),
                            )
                            .build(),
                    )
                    .transact_items(transact_delete(table, record_key.clone()))
                    .send()
                    .await,
            ),
        );
        denied(
            "DescribeTable",
            code(client.describe_table().table_name(table).send().await),
        );
    }
    for statement in [
        format!("DELETE FROM \"{AUDIT_TABLE}\" WHERE ItemKey = 'x' AND EventId = 'y'"),
        format!("select * from\n\"{AUDIT_TABLE}\""),
        format!("SELECT * FROM /**/\"{}\"", AUDIT_TABLE.to_lowercase()),
    ] {
        denied(
            &statement,
            code(
                client
                    .execute_statement()
                    .statement(&statement)
                    .send()
                    .await,
            ),
        );
    }
    denied(
        "DeleteTable",
        code(client.delete_table().table_name(AUDIT_TABLE).send().await),
    );
    denied(
        "UpdateTimeToLive",
        code(
            client
                .update_time_to_live()
                .table_name(AUDIT_TABLE)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name("EventId")
                        .build()
                        .expect("ttl"),
                )
                .send()
                .await,
        ),
    );
    denied(
        "TagResource",
        code(
            client
                .tag_resource()
                .resource_arn(&audit_arn)
                .tags(Tag::builder().key("k").value("v").build().expect("tag"))
                .send()
                .await,
        ),
    );
    denied(
        "PutResourcePolicy",
        code(
            client
                .put_resource_policy()
                .resource_arn(&audit_arn)
                .policy("{}")
                .send()
                .await,
        ),
    );
}

/// boto3, as a Python application would send them: the same spellings, the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_meets_the_same_policies() {
    let w = world(false).await;
    let script = r#"
import json, sys, boto3, botocore
c = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="AKIDPY", aws_secret_access_key="s",
                 config=botocore.config.Config(retries={"max_attempts": 1}))
arn = "arn:aws:dynamodb:us-east-1:000000000000:table/GlobalCatalog"
out = {}
def attempt(name, f):
    try:
        f(); out[name] = "ok"
    except botocore.exceptions.ClientError as e:
        out[name] = e.response["Error"]["Code"]
attempt("put_by_arn", lambda: c.put_item(TableName=arn, Item={"ItemID": {"S": "py"}, "Category": {"S": "x"}}))
out["get_foreign_by_arn"] = "Item" in c.get_item(TableName=arn, Key={"ItemID": {"S": "us-west-2#secret"}, "Category": {"S": "x"}})
attempt("partiql_update_newline", lambda: c.execute_statement(
    Statement="UPDATE\nGlobalCatalog SET Data='pwned' WHERE ItemID='us-west-2#secret' AND Category='x'"))
attempt("partiql_select_tab", lambda: c.execute_statement(Statement="SELECT * FROM\tGlobalCatalog"))
attempt("audit_delete", lambda: c.delete_item(TableName="GlobalCatalog-audit",
    Key={"ItemKey": {"S": "a"}, "EventId": {"S": "b"}}))
attempt("audit_drop", lambda: c.delete_table(TableName="GlobalCatalog-audit"))
attempt("audit_partiql", lambda: c.execute_statement(Statement='DELETE FROM "GlobalCatalog-audit" WHERE ItemKey = \'a\''))
print(json.dumps(out))
"#;
    let out = run_boto3(script, &w.sidecar.endpoint()).await;
    assert_eq!(out["put_by_arn"], "ok", "{out}");
    assert_eq!(out["get_foreign_by_arn"], false, "{out}");
    for refused in ["partiql_update_newline", "partiql_select_tab"] {
        assert_eq!(out[refused], "ValidationException", "{out}");
    }
    for refused in ["audit_delete", "audit_drop", "audit_partiql"] {
        assert_eq!(out[refused], "AccessDeniedException", "{out}");
    }
    let records = wait_for_records(&w.direct, 1).await;
    assert_eq!(s(&records[0], "Principal"), "AKIDPY");
    nothing_escaped(&w).await;
}

/// A signature must cover the operation: a GetItem's, replayed as a DeleteItem, is refused;
/// and without client authentication, the principal a record names is marked as claimed
/// and cannot carry control characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_policy_reads_is_signed_and_a_claimed_principal_is_marked() {
    let w = world(true).await;
    let script = r#"
import json, sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
body = json.dumps({"TableName": "GlobalCatalog", "Key": {"ItemID": {"S": "kept"}, "Category": {"S": "x"}}})
req = AWSRequest(method="POST", url=sys.argv[1] + "/", data=body,
                 headers={"Content-Type": "application/x-amz-json-1.0"})
SigV4Auth(Credentials("AKIDOPS", "ops-secret"), "dynamodb", "us-east-1").add_auth(req)
headers = dict(req.headers.items())
headers["X-Amz-Target"] = "DynamoDB_20120810.DeleteItem"
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/", data=body.encode(), headers=headers, method="POST"))
    print(json.dumps({"status": 200}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": json.loads(e.read())}))
"#;
    let ops = client(&w, "AKIDOPS", "ops-secret");
    ops.put_item()
        .table_name(TABLE)
        .set_item(Some(key("kept")))
        .send()
        .await
        .expect("put");
    let out = run_boto3(script, &w.sidecar.endpoint()).await;
    assert_eq!(out["status"], 400, "{out}");
    let kind = out["body"]["__type"].as_str().unwrap_or_default();
    assert!(kind.ends_with("#InvalidSignatureException"), "{out}");
    let still = w
        .direct
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key("us-east-1#kept")))
        .send()
        .await
        .expect("GetItem direct");
    assert!(
        still.item.is_some(),
        "the replayed signature deleted the item"
    );
    let records = wait_for_records(&w.direct, 1).await;
    assert_eq!(
        records[0].get("PrincipalVerified"),
        Some(&AttributeValue::Bool(true))
    );
    assert_eq!(s(&records[0], "Principal"), "ops");

    // Without authentication the key id is only claimed.
    let open = world(false).await;
    let claimed = sdk_client_with(&open.sidecar.endpoint(), None, |b| {
        b.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "catalog-app\tadmin",
            "s",
            None,
            None,
            "test",
        ))
    });
    claimed
        .put_item()
        .table_name(TABLE)
        .set_item(Some(key("claimed")))
        .send()
        .await
        .expect("put with a claimed key id");
    let records = wait_for_records(&open.direct, 1).await;
    assert_eq!(s(&records[0], "Principal"), "catalogappadmin");
    assert_eq!(
        records[0].get("PrincipalVerified"),
        Some(&AttributeValue::Bool(false))
    );
}
