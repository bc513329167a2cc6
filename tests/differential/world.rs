//! What both sides run on: one DynamoDB Local with three small tables, a sidecar in front
//! of it whose only table has no key prefix and no version (so it rewrites nothing), and a
//! client for each; and how a case becomes its request and the answer an [`Outcome`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::corpus::{Case, Kind, n, ns, s, ss};
use crate::support::{
    DynamoLocal, Sidecar, SidecarConfig, TABLE, create_keyed_table, create_table, sdk_client,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Key conditions query this table (`pk`, `sk`).
const KEYED: &str = "Keyed";
/// Updates change a fresh copy of the first catalog item here.
const SCRATCH: &str = "Scratch";

/// What a request came to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// A Scan's or Query's items, sorted by key.
    Items(Vec<Item>),
    /// Whether the conditional Put of each probe item onto itself succeeded.
    Checks(Vec<bool>),
    /// The item after an UpdateItem (`ALL_NEW`), or what a projection kept of one.
    Item(Option<Item>),
    /// An error answer.
    Refused { code: String, message: String },
}

impl Outcome {
    /// The same answer: both refused with the same error code (the wording may differ),
    /// or equal.
    pub(crate) fn agrees(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Refused { code: a, .. }, Self::Refused { code: b, .. }) => a == b,
            _ => self == other,
        }
    }

    pub(crate) fn is_refused(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sorted = |item: &Item| -> BTreeMap<String, AttributeValue> {
            item.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        match self {
            Self::Items(items) => {
                let keys: Vec<String> = items.iter().map(|i| key_of(i).join("/")).collect();
                write!(f, "items {keys:?}")
            }
            Self::Checks(checks) => write!(f, "conditional Puts succeeded {checks:?}"),
            Self::Item(item) => write!(f, "item {:?}", item.as_ref().map(sorted)),
            Self::Refused { code, message } => write!(f, "refused: {code}: {message}"),
        }
    }
}

/// DynamoDB Local, the sidecar in front of it, and a client for each.
pub(crate) struct World {
    /// Straight to DynamoDB Local.
    pub(crate) direct: Client,
    /// Through the sidecar.
    pub(crate) through: Client,
    _sidecar: Sidecar,
    _ddb: DynamoLocal,
}

impl World {
    pub(crate) async fn start() -> Self {
        let ddb = DynamoLocal::single().await;
        let config = SidecarConfig::new().region("us-east-1", &ddb.endpoint(0));
        let sidecar = Sidecar::start(&config).await;
        let direct = sdk_client(&ddb.endpoint(0));
        let through = sdk_client(&sidecar.endpoint());
        create_table(&direct, TABLE).await;
        create_table(&direct, SCRATCH).await;
        create_keyed_table(&direct, KEYED, "pk", "sk").await;
        for item in catalog() {
            put(&direct, TABLE, item).await;
        }
        for (pk, sk) in [("a", "a1"), ("a", "b2"), ("a", "c3"), ("b", "a1")] {
            put(
                &direct,
                KEYED,
                HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]),
            )
            .await;
        }
        Self {
            direct,
            through,
            _sidecar: sidecar,
            _ddb: ddb,
        }
    }
}

async fn put(client: &Client, table: &str, item: Item) {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem into {table}: {e:?}"));
}

fn catalog_item(item_id: &str, category: &str, attributes: Vec<(&str, AttributeValue)>) -> Item {
    let mut item = HashMap::from([
        ("ItemID".to_owned(), s(item_id)),
        ("Category".to_owned(), s(category)),
    ]);
    item.extend(attributes.into_iter().map(|(k, v)| (k.to_owned(), v)));
    item
}

fn map(entries: Vec<(&str, AttributeValue)>) -> AttributeValue {
    AttributeValue::M(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// The catalog: a rich item, a smaller one, one with empty containers, a bare one and one
/// with a negative price and an empty string.
fn catalog() -> Vec<Item> {
    vec![
        catalog_item(
            "a",
            "book",
            vec![
                ("title", s("Dune")),
                ("price", n("12")),
                ("tags", ss(&["classic", "scifi"])),
                ("stock", n("0")),
                ("ratings", AttributeValue::L(vec![n("5"), n("3"), s("x")])),
                (
                    "meta",
                    map(vec![
                        ("color", s("red")),
                        ("dims", AttributeValue::L(vec![n("1"), n("2")])),
                        ("nested", map(vec![("deep", s("yes"))])),
                    ]),
                ),
                ("flag", AttributeValue::Bool(true)),
                ("note", s("apple pie")),
                ("nums", ns(&["1", "2", "3"])),
                ("status", s("active")),
                ("a.b", s("dotted")),
                ("x-y", n("7")),
                ("year", n("1965")),
                ("nothing", AttributeValue::Null(true)),
            ],
        ),
        catalog_item(
            "b",
            "book",
            vec![
                ("title", s("Emma")),
                ("price", n("7")),
                ("tags", ss(&["classic"])),
                ("ratings", AttributeValue::L(vec![n("1")])),
                ("meta", map(vec![("color", s("blue"))])),
                ("note", s("banana")),
                ("status", s("retired")),
                ("year", n("1815")),
            ],
        ),
        catalog_item(
            "c",
            "toy",
            vec![
                ("price", n("30")),
                ("ratings", AttributeValue::L(Vec::new())),
                ("meta", map(Vec::new())),
                ("note", s("apple")),
                ("tags", ss(&["kids"])),
                ("flag", AttributeValue::Bool(false)),
                ("nums", ns(&["2"])),
            ],
        ),
        catalog_item("d", "toy", vec![("title", s("Zed"))]),
        catalog_item(
            "e",
            "food",
            vec![
                ("title", s("apple")),
                ("price", n("-1.5")),
                ("note", s("")),
                ("stock", n("5")),
                (
                    "meta",
                    map(vec![
                        ("color", s("red")),
                        ("dims", AttributeValue::L(Vec::new())),
                    ]),
                ),
            ],
        ),
    ]
}

/// `ItemID`/`Category` or `pk`/`sk`.
fn key_of(item: &Item) -> [String; 2] {
    let text = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|name| item.get(*name).and_then(|v| v.as_s().ok()).cloned())
            .unwrap_or_default()
    };
    [text(["ItemID", "pk"]), text(["Category", "sk"])]
}

fn sorted(items: &[Item]) -> Outcome {
    let mut items = items.to_vec();
    items.sort_by_key(key_of);
    Outcome::Items(items)
}

/// The error answer as an outcome; anything but an answer (no connection, a timeout) is the
/// harness failing, not an outcome.
fn refused<E: ProvideErrorMetadata + fmt::Debug>(error: &E) -> Outcome {
    let code = error
        .code()
        .unwrap_or_else(|| panic!("no error answer: {error:?}"));
    Outcome::Refused {
        code: code.to_owned(),
        message: error.message().unwrap_or_default().to_owned(),
    }
}

/// Sends `text` as `case`'s expression, with `case`'s maps, through `client`.
pub(crate) async fn run(client: &Client, case: &Case, text: &str) -> Outcome {
    let names: Option<HashMap<String, String>> =
        (!case.names.is_empty()).then(|| case.names.clone().into_iter().collect());
    let values: Option<Item> =
        (!case.values.is_empty()).then(|| case.values.clone().into_iter().collect());
    match case.kind {
        Kind::Filter => client
            .scan()
            .table_name(TABLE)
            .filter_expression(text)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_or_else(|e| refused(&e), |out| sorted(out.items())),
        Kind::Condition => conditional_puts(client, text, names, values).await,
        Kind::KeyCondition => client
            .query()
            .table_name(KEYED)
            .key_condition_expression(text)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_or_else(|e| refused(&e), |out| sorted(out.items())),
        Kind::Projection => client
            .get_item()
            .table_name(TABLE)
            .set_key(Some(catalog_item("a", "book", Vec::new())))
            .projection_expression(text)
            .set_expression_attribute_names(names)
            .send()
            .await
            .map_or_else(|e| refused(&e), |out| Outcome::Item(out.item().cloned())),
        Kind::Update => update(client, text, names, values).await,
    }
}

/// Puts three catalog items (the rich, the empty-containers and the bare one) onto
/// themselves under the condition: the table is unchanged whatever the outcome.
async fn conditional_puts(
    client: &Client,
    text: &str,
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
) -> Outcome {
    let probes = catalog();
    let mut checks = Vec::new();
    for probe in [&probes[0], &probes[2], &probes[3]] {
        let put = client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(probe.clone()))
            .condition_expression(text)
            .set_expression_attribute_names(names.clone())
            .set_expression_attribute_values(values.clone())
            .send()
            .await;
        match put {
            Ok(_) => checks.push(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => checks.push(false),
            Err(e) => return refused(&e),
        }
    }
    Outcome::Checks(checks)
}

/// Resets the scratch item to the first catalog item, then updates it.
async fn update(
    client: &Client,
    text: &str,
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
) -> Outcome {
    let mut scratch = catalog().swap_remove(0);
    scratch.insert("ItemID".into(), s("scratch"));
    put(client, SCRATCH, scratch).await;
    client
        .update_item()
        .table_name(SCRATCH)
        .set_key(Some(catalog_item("scratch", "book", Vec::new())))
        .update_expression(text)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .map_or_else(
            |e| refused(&e),
            |out| Outcome::Item(out.attributes().cloned()),
        )
}
