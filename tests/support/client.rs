//! The application's side: an AWS SDK client with keys no region knows, and the table the tests
//! work on.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Builder, Credentials, Region};
use aws_sdk_dynamodb::operation::create_table::CreateTableOutput;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

use super::{CLIENT_ACCESS_KEY_ID, CLIENT_SECRET, TABLE};

/// A DynamoDB client for `endpoint` signing as the application would: region `us-east-1`,
/// static keys the regions never knew.
pub(crate) fn sdk_client(endpoint: &str) -> Client {
    sdk_client_with(endpoint, None, |builder| builder)
}

/// [`sdk_client`] with an optional session token and a last say on the config (retries, ...).
pub(crate) fn sdk_client_with(
    endpoint: &str,
    session_token: Option<&str>,
    customize: impl FnOnce(Builder) -> Builder,
) -> Client {
    let credentials = Credentials::new(
        CLIENT_ACCESS_KEY_ID,
        CLIENT_SECRET,
        session_token.map(str::to_owned),
        None,
        "globalscale-tests",
    );
    let builder = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint);
    Client::from_conf(customize(builder).build())
}

/// Creates `GlobalCatalog` (`ItemID` S hash, `Category` S range, on demand) through `client`,
/// which may point at DynamoDB Local or at the sidecar.
pub(crate) async fn create_global_catalog(client: &Client) -> CreateTableOutput {
    create_table(client, TABLE).await
}

/// Creates a table shaped like `GlobalCatalog` under another name.
pub(crate) async fn create_table(client: &Client, name: &str) -> CreateTableOutput {
    create_keyed_table(client, name, "ItemID", "Category").await
}

/// Creates an on-demand table `name` with string keys `hash` and `range`.
pub(crate) async fn create_keyed_table(
    client: &Client,
    name: &str,
    hash: &str,
    range: &str,
) -> CreateTableOutput {
    keyed_table(client, name, hash, range)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"))
}

/// The CreateTable request of an on-demand table `name` with string keys `hash` and
/// `range`, for a caller that handles the answer itself.
pub(crate) fn keyed_table(
    client: &Client,
    name: &str,
    hash: &str,
    range: &str,
) -> CreateTableFluentBuilder {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("key schema element")
    };
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute(hash))
        .attribute_definitions(attribute(range))
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
}

/// An item keyed `ItemID`/`Category` with string attributes `extra`.
pub(crate) fn item(
    item_id: &str,
    category: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("ItemID".to_owned(), AttributeValue::S(item_id.to_owned())),
        (
            "Category".to_owned(),
            AttributeValue::S(category.to_owned()),
        ),
    ]);
    for (name, value) in extra {
        item.insert((*name).to_owned(), AttributeValue::S((*value).to_owned()));
    }
    item
}

/// A BatchWriteItem put request of `item(id, "x")`.
pub(crate) fn put_request(id: &str) -> aws_sdk_dynamodb::types::WriteRequest {
    aws_sdk_dynamodb::types::WriteRequest::builder()
        .put_request(
            aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item(id, "x", &[])))
                .build()
                .expect("PutRequest"),
        )
        .build()
}
