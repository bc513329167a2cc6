use serde_json::json;

use super::*;
use crate::config::TableConfig;
use crate::wire::Operation;

const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/GlobalCatalog";

fn policies(learned: bool) -> Policies {
    let table = TableConfig {
        name: "GlobalCatalog".into(),
        partition_key: Some("ItemID".into()),
        sort_key: None,
        key_types: None,
        key_prefix: Some("us-east-1#".into()),
        version_attribute: None,
        audit: false,
        arn: learned.then(|| scope_of(ARN)).flatten(),
        shared: crate::plan::Shared::default(),
    };
    Policies::from([("GlobalCatalog".to_owned(), table)])
}

fn canonical(
    operation: Operation,
    body: &serde_json::Value,
    policies: &Policies,
) -> Result<Option<Canonical>, ProxyError> {
    let bytes = body.to_string();
    let view = RequestView::parse(operation, bytes.as_bytes())?;
    let catalog = Catalog {
        policies,
        audit_table: Some("GlobalCatalog-audit"),
        regions: vec!["us-east-1", "us-west-2"],
    };
    canonical_body(&view, &catalog)
}

fn body_of(canonical: &Canonical) -> serde_json::Value {
    serde_json::from_slice(&canonical.body).unwrap()
}

#[test]
fn reads_table_arns() {
    let arn = Arn::parse(ARN).unwrap();
    assert_eq!(
        (arn.partition, arn.region, arn.account, arn.table, arn.more),
        ("aws", "us-east-1", "123456789012", "GlobalCatalog", None)
    );
    let index = Arn::parse("arn:aws-cn:dynamodb:cn-north-1:1:table/T/index/ByName").unwrap();
    assert_eq!((index.table, index.more), ("T", Some("index/ByName")));
    for not_one in [
        "GlobalCatalog",
        "arn:aws:s3:us-east-1:1:table/T",
        "arn:aws:dynamodb:us-east-1:1:stream/T",
        "arn:aws:dynamodb:us-east-1:1:table/",
        "arn::dynamodb:us-east-1:1:table/T",
        "arn:aws:dynamodb",
    ] {
        assert_eq!(Arn::parse(not_one), None, "{not_one}");
    }
    assert!(looks_like_arn("ARN:aws:x") && !looks_like_arn("Table"));
}

#[test]
fn an_arn_of_a_managed_table_becomes_its_name_everywhere() {
    let policies = policies(true);
    let get = json!({"TableName": ARN, "Key": {"ItemID": {"S": "a"}}});
    let done = canonical(Operation::GetItem, &get, &policies)
        .unwrap()
        .unwrap();
    assert_eq!(body_of(&done)["TableName"], "GlobalCatalog");
    assert_eq!(
        done.spellings,
        [("GlobalCatalog".to_owned(), ARN.to_owned())]
    );

    let other_region = ARN.replace("us-east-1", "us-west-2");
    let batch = json!({"RequestItems": {other_region.clone(): [{"DeleteRequest": {"Key": {"ItemID": {"S": "a"}}}}]}});
    let done = canonical(Operation::BatchWriteItem, &batch, &policies)
        .unwrap()
        .unwrap();
    assert!(body_of(&done)["RequestItems"]["GlobalCatalog"].is_array());

    let transaction = json!({"TransactItems": [
        {"Put": {"TableName": ARN, "Item": {"ItemID": {"S": "a"}}}},
        {"ConditionCheck": {"TableName": "Other", "Key": {"k": {"S": "a"}}, "ConditionExpression": "attribute_exists(k)"}}]});
    let done = canonical(Operation::TransactWriteItems, &transaction, &policies)
        .unwrap()
        .unwrap();
    let sent = body_of(&done);
    assert_eq!(
        sent["TransactItems"][0]["Put"]["TableName"],
        "GlobalCatalog"
    );
    assert_eq!(
        sent["TransactItems"][1]["ConditionCheck"]["TableName"],
        "Other"
    );
}

#[test]
fn names_and_unmanaged_arns_are_left_alone() {
    let policies = policies(true);
    let plain = json!({"TableName": "GlobalCatalog", "Key": {}});
    assert!(
        canonical(Operation::GetItem, &plain, &policies)
            .unwrap()
            .is_none()
    );
    let other =
        json!({"TableName": "arn:aws:dynamodb:us-east-1:123456789012:table/Other", "Key": {}});
    assert!(
        canonical(Operation::GetItem, &other, &policies)
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_arn_of_another_account_region_or_resource_is_refused() {
    let policies = policies(true);
    for arn in [
        ARN.replace("123456789012", "999999999999"),
        ARN.replace("us-east-1", "ap-south-1"),
        ARN.replace("arn:aws:", "arn:aws-cn:"),
        format!("{ARN}/index/ByCategory"),
        format!("{ARN}/"),
        ARN.replace("dynamodb", "DynamoDB"),
        ARN.replace("arn:", "ARN:"),
    ] {
        let get = json!({"TableName": arn, "Key": {}});
        let err = canonical(Operation::GetItem, &get, &policies).unwrap_err();
        assert!(
            matches!(err, ProxyError::AccessDenied(_) | ProxyError::Validation(_)),
            "{arn}: {err}"
        );
    }
    let mut replicated = super::tests::policies(true);
    if let Some(table) = replicated.get_mut("GlobalCatalog") {
        table.arn = table.arn.take().map(|a| a.with_replicas(["ap-south-1"]));
    }
    let replica = json!({"TableName": ARN.replace("us-east-1", "ap-south-1"), "Key": {}});
    let done = canonical(Operation::GetItem, &replica, &replicated).unwrap();
    assert!(done.is_some(), "a replica region's ARN is the table's");

    let unlearned = policies_unlearned();
    let get = json!({"TableName": ARN, "Key": {}});
    let err = canonical(Operation::GetItem, &get, &unlearned).unwrap_err();
    assert!(err.to_string().contains("not yet learned"), "{err}");
}

fn policies_unlearned() -> Policies {
    policies(false)
}

#[test]
fn two_spellings_of_one_table_in_a_batch_are_refused() {
    let batch = json!({"RequestItems": {
        ARN: {"Keys": [{"ItemID": {"S": "a"}}]},
        "GlobalCatalog": {"Keys": [{"ItemID": {"S": "b"}}]}}});
    let err = canonical(Operation::BatchGetItem, &batch, &policies(true)).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn answers_get_the_clients_spelling_back() {
    let spellings = [("GlobalCatalog".to_owned(), ARN.to_owned())];
    let serde_json::Value::Object(mut answer) = json!({
        "Responses": {"GlobalCatalog": [], "Other": []},
        "UnprocessedKeys": {"GlobalCatalog": {"Keys": []}},
        "ConsumedCapacity": [{"TableName": "GlobalCatalog"}, {"TableName": "Other"}]
    }) else {
        unreachable!()
    };
    restore_spellings(&spellings, &mut answer);
    assert!(answer["Responses"][ARN].is_array() && answer["Responses"]["Other"].is_array());
    assert!(answer["UnprocessedKeys"][ARN].is_object());
    assert_eq!(answer["ConsumedCapacity"][0]["TableName"], ARN);
    assert_eq!(answer["ConsumedCapacity"][1]["TableName"], "Other");
}

fn refs(operation: Operation, body: &serde_json::Value) -> Result<References, ProxyError> {
    let bytes = body.to_string();
    let view = RequestView::parse(operation, bytes.as_bytes())?;
    References::read(&view)
}

#[test]
fn the_audit_table_is_refused_by_every_name() {
    let audit = "GlobalCatalog-audit";
    let audit_arn = "arn:aws:dynamodb:us-west-2:123456789012:table/GlobalCatalog-audit";
    for (operation, body) in [
        (
            Operation::DeleteItem,
            json!({"TableName": audit, "Key": {}}),
        ),
        (
            Operation::DeleteItem,
            json!({"TableName": audit_arn, "Key": {}}),
        ),
        (Operation::DeleteTable, json!({"TableName": audit})),
        (
            Operation::BatchWriteItem,
            json!({"RequestItems": {audit: []}}),
        ),
        (
            Operation::TransactWriteItems,
            json!({"TransactItems": [{"Delete": {"TableName": audit, "Key": {}}}]}),
        ),
        (
            Operation::ExecuteStatement,
            json!({"Statement": "DELETE FROM\n\"GlobalCatalog-audit\" WHERE ItemKey = 'x'"}),
        ),
        (
            Operation::BatchExecuteStatement,
            json!({"Statements": [{"Statement": "select * from \"globalcatalog-audit\""}]}),
        ),
        (
            Operation::TagResource,
            json!({"ResourceArn": audit_arn, "Tags": []}),
        ),
        (
            Operation::PutResourcePolicy,
            json!({"ResourceArn": audit_arn, "Policy": "{}"}),
        ),
        (
            Operation::DeleteBackup,
            json!({"BackupArn": format!("{audit_arn}/backup/01")}),
        ),
        (
            Operation::RestoreTableFromBackup,
            json!({"TargetTableName": audit, "BackupArn": "arn:aws:dynamodb:us-east-1:1:table/X/backup/1"}),
        ),
        (
            Operation::ImportTable,
            json!({"TableCreationParameters": {"TableName": audit}}),
        ),
        (Operation::UpdateTimeToLive, json!({"TableName": audit})),
        (
            Operation::DescribeTable,
            json!({"TableName": "ARN:aws:dynamodb:us-west-2:1:table/GlobalCatalog-audit"}),
        ),
    ] {
        let refs = refs(operation.clone(), &body).unwrap();
        let result = guard_audit_table(&refs, audit);
        assert!(
            matches!(result, Err(ProxyError::AccessDenied(_))),
            "{operation:?} {body}"
        );
    }
    for (operation, body) in [
        (
            Operation::PutItem,
            json!({"TableName": "GlobalCatalog", "Item": {}}),
        ),
        (
            Operation::ExecuteStatement,
            json!({"Statement": "SELECT * FROM \"GlobalCatalog\" WHERE a = 'GlobalCatalog-audit'"}),
        ),
        (Operation::ListTables, json!({})),
    ] {
        let refs = refs(operation.clone(), &body).unwrap();
        guard_audit_table(&refs, audit).unwrap();
    }
}

#[test]
fn an_unreadable_statement_is_refused() {
    let err = refs(
        Operation::ExecuteStatement,
        &json!({"Statement": "SELECT * FROM \"GlobalCatalog"}),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            ProxyError::UnreadableStatement { statement, source: crate::wire::partiql::PartiqlError::Unterminated(_) }
                if statement.ends_with("GlobalCatalog")
        ),
        "{err}"
    );
    assert!(!err.retryable(), "{err}");
}
