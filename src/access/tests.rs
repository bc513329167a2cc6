use super::*;

fn allowed() -> Allowed {
    Allowed::new(vec![
        "GlobalCatalog".into(),
        "Orders*".into(),
        "*-audit".into(),
    ])
}

fn check(op: Operation, body: &str) -> Result<(), ProxyError> {
    let view = RequestView::parse(op, body.as_bytes())?;
    let refs = References::read(&view)?;
    allowed().check("app", &view, &refs)
}

#[test]
fn patterns_match_whole_names_with_stars_anywhere() {
    let a = allowed();
    assert!(a.allows("GlobalCatalog") && a.allows("Orders") && a.allows("Orders2024"));
    assert!(a.allows("GlobalCatalog-audit"));
    assert!(!a.allows("GlobalCatalog2") && !a.allows("MyOrders") && !a.allows(""));
    assert!(glob("a*b*c", "aXbYc") && glob("a*b*c", "abc") && !glob("a*b*c", "acb"));
    assert!(glob("*", "anything") && !glob("ab", "a"));
}

#[test]
fn every_table_of_a_batch_or_transaction_must_be_allowed() {
    let batch = r#"{"RequestItems": {"GlobalCatalog": [], "Secrets": []}}"#;
    let err = check(Operation::BatchWriteItem, batch).unwrap_err();
    assert!(matches!(err, ProxyError::AccessDenied(_)), "{err}");
    assert!(err.to_string().contains("Secrets"), "{err}");
    let transaction = r#"{"TransactItems": [
        {"Put": {"TableName": "Orders", "Item": {}}},
        {"ConditionCheck": {"TableName": "Secrets", "Key": {}}}]}"#;
    assert!(check(Operation::TransactWriteItems, transaction).is_err());
    let fine = r#"{"TransactItems": [{"Put": {"TableName": "Orders", "Item": {}}}]}"#;
    check(Operation::TransactWriteItems, fine).unwrap();
    check(
        Operation::GetItem,
        r#"{"TableName": "GlobalCatalog", "Key": {}}"#,
    )
    .unwrap();
}

#[test]
fn partiql_statements_name_their_tables_or_are_refused() {
    let ok =
        r#"{"Statement": "SELECT * FROM \"GlobalCatalog\".\"ByName\" WHERE a = 'FROM Secrets'"}"#;
    check(Operation::ExecuteStatement, ok).unwrap();
    for denied in [
        r#"{"Statement": "select * from Secrets"}"#,
        r#"{"Statement": "UPDATE \"Secrets\" SET a = 1"}"#,
        r#"{"Statement": "SELECT * FROM Orders, Secrets"}"#,
        r#"{"Statement": "SELECT * FROM\tSecrets"}"#,
        r#"{"Statement": "SELECT * FROM/**/\"Secrets\".\"Index\""}"#,
        r#"{"Statement": "SELECT 1"}"#,
        r#"{"Statement": "SELECT * FROM \"Orders"}"#,
    ] {
        assert!(
            check(Operation::ExecuteStatement, denied).is_err(),
            "{denied}"
        );
    }
    let batch = r#"{"Statements": [{"Statement": "INSERT INTO Orders VALUE {'k': 1}"},
        {"Statement": "DELETE FROM \"Secrets\" WHERE k = 1"}]}"#;
    assert!(check(Operation::BatchExecuteStatement, batch).is_err());
    let transaction = r#"{"TransactStatements": [{"Statement": "EXISTS(SELECT * FROM \"Orders\" WHERE k = 1)"}]}"#;
    check(Operation::ExecuteTransaction, transaction).unwrap();
    check(
        Operation::ExecuteStatement,
        r#"{"Statement": "SELECT * FROM Orders -- a comment"}"#,
    )
    .unwrap();
}

#[test]
fn arns_and_listings_fail_closed() {
    let tag = r#"{"ResourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/Secrets"}"#;
    assert!(check(Operation::ListTagsOfResource, tag).is_err());
    let mine = r#"{"ResourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders"}"#;
    check(Operation::ListTagsOfResource, mine).unwrap();
    assert!(check(Operation::ListBackups, "{}").is_err());
    assert!(check(Operation::ListGlobalTables, "{}").is_err());
    check(Operation::ListTables, "{}").unwrap();
    check(Operation::DescribeEndpoints, "{}").unwrap();
}
