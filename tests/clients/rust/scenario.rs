//! The Rust SDK (`aws-sdk-dynamodb`) against the sidecar, as an application uses it: a client
//! with the SDK's defaults (standard retries, three attempts) and only the endpoint, region and
//! keys set. Runs the steps of `tests/clients/scenario.json` in-process and returns the same step
//! lines the other clients print, so `tests/client_matrix.rs` judges all four alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Builder, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Get, KeysAndAttributes, Put, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactGetItem, TransactWriteItem, WriteRequest,
};
use serde_json::{Map, Value, json};

/// The access key id this client signs with: the audit records' `Principal`.
pub(crate) const ACCESS_KEY_ID: &str = "AKIDRUSTSDK";

type Item = HashMap<String, AttributeValue>;
type Step = Result<Map<String, Value>, String>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the Rust side gives every client (`tests/clients/scenario.json`, "about").
pub(crate) struct Env {
    pub(crate) endpoint: String,
    pub(crate) region_endpoint: String,
    pub(crate) home_region: String,
    pub(crate) run_id: String,
}

/// Runs every step of `definition` in order; `pause` is called at the pause point (in the middle
/// of the paginated query). Returns the step lines, ending with `done` or with the failed step.
pub(crate) async fn run(definition: &Value, env: &Env, pause: &mut dyn FnMut(&str)) -> Vec<Value> {
    let tally = Arc::new(Tally::default());
    let mut scenario = Scenario {
        d: definition,
        env,
        client: client(&env.endpoint, Some(Arc::clone(&tally))),
        region: client(&env.region_endpoint, None),
        pause,
    };
    let mut lines = Vec::new();
    let names: Vec<&str> = definition["steps"]
        .as_array()
        .expect("steps in scenario.json")
        .iter()
        .map(|s| s["name"].as_str().expect("step name"))
        .collect();
    for name in &names {
        let (calls_before, attempts_before) = tally.read();
        let result = scenario.step(name).await;
        let (calls, attempts) = tally.read();
        let calls = calls - calls_before;
        let mut line =
            json!({"step": name, "calls": calls, "retries": attempts - attempts_before - calls});
        match result {
            Ok(extra) => {
                line["ok"] = true.into();
                line.as_object_mut().expect("object").extend(extra);
                lines.push(line);
            }
            Err(error) => {
                line["ok"] = false.into();
                line["error"] = error.into();
                lines.push(line);
                return lines;
            }
        }
    }
    lines.push(json!({"step": "done", "ok": true, "steps": names.len()}));
    lines
}

/// Calls and attempts through the sidecar: the SDK's retries are the difference.
#[derive(Debug, Default)]
struct Tally {
    calls: AtomicUsize,
    attempts: AtomicUsize,
}

impl Tally {
    fn read(&self) -> (usize, usize) {
        (
            self.calls.load(Ordering::Relaxed),
            self.attempts.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug)]
struct Counting(Arc<Tally>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "Counting"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A client with the SDK's defaults: only the endpoint, region and keys are set.
fn client(endpoint: &str, tally: Option<Arc<Tally>>) -> Client {
    let credentials = Credentials::new(ACCESS_KEY_ID, "rust-secret", None, None, "client-matrix");
    let mut builder = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint);
    if let Some(tally) = tally {
        builder = builder.interceptor(Counting(tally));
    }
    Client::from_conf(builder.build())
}

struct Scenario<'a> {
    d: &'a Value,
    env: &'a Env,
    client: Client,
    region: Client,
    pause: &'a mut dyn FnMut(&str),
}

fn expect(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

fn expect_equal<T: PartialEq + std::fmt::Debug>(
    actual: &T,
    expected: &T,
    what: &str,
) -> Result<(), String> {
    expect(actual == expected, || {
        format!("{what}: expected {expected:?}, got {actual:?}")
    })
}

fn sdk<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e:?}")
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A DynamoDB-JSON value of scenario.json (`{"S": "x"}`, `{"M": {...}}`) as the SDK's type.
fn attribute(value: &Value) -> AttributeValue {
    let (kind, inner) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("a typed attribute value");
    let strings = || -> Vec<String> {
        inner
            .as_array()
            .expect("a set")
            .iter()
            .map(|v| v.as_str().expect("a set member").to_owned())
            .collect()
    };
    match kind.as_str() {
        "S" => s(inner.as_str().expect("S")),
        "N" => AttributeValue::N(inner.as_str().expect("N").to_owned()),
        "SS" => AttributeValue::Ss(strings()),
        "NS" => AttributeValue::Ns(strings()),
        "BOOL" => AttributeValue::Bool(inner.as_bool().expect("BOOL")),
        "L" => AttributeValue::L(inner.as_array().expect("L").iter().map(attribute).collect()),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .expect("M")
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        ),
        other => panic!("scenario.json uses an attribute type {other} this client does not read"),
    }
}

/// An item with its sets sorted: DynamoDB returns sets in no particular order.
fn normalized(item: &Item) -> Item {
    item.iter()
        .map(|(k, v)| {
            let v = match v {
                AttributeValue::Ss(set) => {
                    let mut set = set.clone();
                    set.sort();
                    AttributeValue::Ss(set)
                }
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

impl Scenario<'_> {
    fn str(&self, name: &str) -> &str {
        self.d[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in scenario.json"))
    }

    fn usize(&self, pointer: &str) -> usize {
        let value = self.d.pointer(pointer).and_then(Value::as_u64);
        usize::try_from(value.unwrap_or_else(|| panic!("{pointer} in scenario.json")))
            .expect("size")
    }

    fn table(&self) -> &str {
        self.str("table")
    }

    fn version(&self) -> &str {
        self.str("version_attribute")
    }

    fn id(&self, name: &str) -> String {
        format!("rust-{}-{name}", self.env.run_id)
    }

    fn key(&self, item_id: &str, category: &str) -> Item {
        HashMap::from([
            (self.str("partition_key").to_owned(), s(item_id)),
            (self.str("sort_key").to_owned(), s(category)),
        ])
    }

    fn category(&self) -> &str {
        self.d["item"][self.str("sort_key")]["S"]
            .as_str()
            .expect("item category")
    }

    fn item_key(&self) -> Item {
        self.key(&self.id("item"), self.category())
    }

    fn item(&self, version: Option<u64>) -> Item {
        let mut item: Item = self.d["item"]
            .as_object()
            .expect("item")
            .iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        item.extend(self.item_key());
        if let Some(version) = version {
            item.insert(self.version().to_owned(), n(version));
        }
        item
    }

    fn versioned(&self, item: &Item) -> Item {
        let mut item = item.clone();
        item.insert(self.version().to_owned(), n(1));
        item
    }

    async fn step(&mut self, name: &str) -> Step {
        match name {
            "create_table_if_missing" => self.create_table_if_missing().await,
            "put" => self.put().await,
            "get" => self.get().await,
            "versioned_update" => self.versioned_update().await,
            "conditional_put_fails" => self.conditional_put_fails().await,
            "stored_upstream" => self.stored_upstream().await,
            "paginated_query" => self.paginated_query().await,
            "batch_write_get" => self.batch_write_get().await,
            "transaction" => self.transaction().await,
            "transaction_cancelled" => self.transaction_cancelled().await,
            "delete" => self.delete().await,
            "audit_history" => self.audit_history().await,
            "audit_refused" => self.audit_refused().await,
            other => Err(format!("the Rust client implements no step {other}")),
        }
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, String> {
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk("GetItem"))?;
        Ok(out.item)
    }

    async fn create_table_if_missing(&mut self) -> Step {
        match self
            .client
            .describe_table()
            .table_name(self.table())
            .send()
            .await
        {
            Ok(_) => return Ok(Map::from_iter([("created".into(), false.into())])),
            Err(e) => match e.into_service_error() {
                DescribeTableError::ResourceNotFoundException(_) => {}
                other => return Err(format!("DescribeTable: {other:?}")),
            },
        }
        let (pk, sk) = (self.str("partition_key"), self.str("sort_key"));
        crate::support::keyed_table(&self.client, self.table(), pk, sk)
            .send()
            .await
            .map_err(sdk("CreateTable"))?;
        self.client
            .wait_until_table_exists()
            .table_name(self.table())
            .wait(Duration::from_secs(90))
            .await
            .map_err(sdk("waiting for the table"))?;
        Ok(Map::from_iter([("created".into(), true.into())]))
    }

    async fn put(&mut self) -> Step {
        self.client
            .put_item()
            .table_name(self.table())
            .set_item(Some(self.item(None)))
            .send()
            .await
            .map_err(sdk("PutItem"))?;
        Ok(Map::new())
    }

    async fn get(&mut self) -> Step {
        let item = self.get_item(self.item_key()).await?;
        let item = item.ok_or("GetItem: no Item for the key just put")?;
        expect_equal(
            &normalized(&item),
            &normalized(&self.item(Some(1))),
            "GetItem Item",
        )?;
        Ok(Map::new())
    }

    async fn versioned_update(&mut self) -> Step {
        let out = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(self.item_key()))
            .update_expression(format!("SET #name = :name, {} = :read", self.version()))
            .expression_attribute_names("#name", "Name")
            .expression_attribute_values(":name", s(self.str("updated_name")))
            .expression_attribute_values(":read", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(sdk("UpdateItem"))?;
        let attributes = out.attributes.unwrap_or_default();
        expect_equal(
            &attributes.get("Name"),
            &Some(&s(self.str("updated_name"))),
            "ALL_NEW Name",
        )?;
        expect_equal(
            &attributes.get(self.version()),
            &Some(&n(2)),
            "ALL_NEW Version",
        )?;
        Ok(Map::new())
    }

    async fn conditional_put_fails(&mut self) -> Step {
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(self.item(Some(1))))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(error) = result else {
            return Err("PutItem with a stale Version succeeded".into());
        };
        let status = error.raw_response().map(|r| r.status().as_u16());
        let PutItemError::ConditionalCheckFailedException(conflict) = error.into_service_error()
        else {
            return Err("expected a ConditionalCheckFailedException".into());
        };
        expect_equal(&status, &Some(400), "error status")?;
        let old_version = conflict.item().and_then(|item| item.get(self.version()));
        expect_equal(&old_version, &Some(&n(2)), "ALL_OLD Version")?;
        let item = self
            .get_item(self.item_key())
            .await?
            .ok_or("the item is gone")?;
        expect_equal(
            &item.get("Name"),
            &Some(&s(self.str("updated_name"))),
            "Name after the failed put",
        )?;
        expect_equal(
            &item.get(self.version()),
            &Some(&n(2)),
            "Version after the failed put",
        )?;
        Ok(Map::from_iter([(
            "error".into(),
            "ConditionalCheckFailedException".into(),
        )]))
    }

    async fn stored_upstream(&mut self) -> Step {
        let plain = self.item_key();
        let stored_key = format!("{}#{}", self.env.home_region, self.id("item"));
        let mut prefixed = plain.clone();
        prefixed.insert(self.str("partition_key").to_owned(), s(&stored_key));
        let direct = |key: Item| {
            self.region
                .get_item()
                .table_name(self.table())
                .set_key(Some(key))
                .consistent_read(true)
                .send()
        };
        let stored = direct(prefixed)
            .await
            .map_err(sdk("GetItem from the region"))?
            .item;
        let stored = stored.ok_or_else(|| {
            format!(
                "nothing stored under {stored_key} in {}",
                self.env.region_endpoint
            )
        })?;
        expect_equal(&stored.get(self.version()), &Some(&n(2)), "stored Version")?;
        let under_plain = direct(plain)
            .await
            .map_err(sdk("GetItem from the region"))?
            .item;
        expect_equal(&under_plain, &None, "item stored under the plain key")?;
        Ok(Map::from_iter([("stored_key".into(), stored_key.into())]))
    }

    async fn write_batch(&self, items: &[Item]) -> Result<usize, String> {
        let requests = items
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .expect("PutRequest");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let mut pending = HashMap::from([(self.table().to_owned(), requests)]);
        let mut rounds = 0;
        while !pending.is_empty() {
            expect(rounds < self.usize("/batch_rounds"), || {
                format!("BatchWriteItem still unprocessed after {rounds} rounds")
            })?;
            let out = self
                .client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(sdk("BatchWriteItem"))?;
            pending = out.unprocessed_items.unwrap_or_default();
            rounds += 1;
        }
        Ok(rounds)
    }

    async fn paginated_query(&mut self) -> Step {
        let pk = self.id("query");
        let page_size = self.usize("/query/page_size");
        let size = self.usize("/query/payload_bytes");
        let items: Vec<Item> = (0..self.usize("/query/items"))
            .map(|i| {
                let mut item = self.key(&pk, &format!("c-{i:03}"));
                let fill = char::from(b'a' + u8::try_from(i % 26).expect("letter"));
                let mut payload = format!("{i:04}:");
                payload.extend(std::iter::repeat_n(fill, size - payload.len()));
                item.insert("Payload".into(), s(&payload));
                item
            })
            .collect();
        self.write_batch(&items).await?;
        let mut pages = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression(format!("{} = :pk", self.str("partition_key")))
            .expression_attribute_values(":pk", s(&pk))
            .consistent_read(true)
            .into_paginator()
            .page_size(i32::try_from(page_size).expect("page size"))
            .send();
        let (mut seen, mut sizes) = (0, Vec::new());
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk("Query page"))?;
            let got = page.items();
            expect(got.len() <= page_size, || {
                format!("Query page of {} items, Limit {page_size}", got.len())
            })?;
            sizes.push(got.len());
            for item in got {
                let expected = items
                    .get(seen)
                    .ok_or("Query returned more items than were written")?;
                expect_equal(
                    item,
                    &self.versioned(expected),
                    &format!("Query item {seen} (order, exactly once)"),
                )?;
                seen += 1;
            }
            if sizes.len() == 1 {
                let point = self.d["pause_point"].as_str().expect("pause_point");
                (self.pause)(point);
            }
        }
        expect_equal(&seen, &items.len(), "Query items in all pages")?;
        expect(sizes.len() >= items.len() / page_size, || {
            format!("Query came back in {} pages", sizes.len())
        })?;
        Ok(Map::from_iter([
            ("items".into(), seen.into()),
            ("pages".into(), json!(sizes)),
        ]))
    }

    async fn batch_write_get(&mut self) -> Step {
        let items: Vec<Item> = (0..self.usize("/batch/items"))
            .map(|i| {
                let mut item = self.key(&self.id("batch"), &format!("b-{i}"));
                item.insert("Index".into(), n(i as u64));
                item
            })
            .collect();
        let write_rounds = self.write_batch(&items).await?;
        let keys: Vec<Item> = (0..items.len())
            .map(|i| self.key(&self.id("batch"), &format!("b-{i}")))
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .expect("keys");
        let mut pending = HashMap::from([(self.table().to_owned(), request)]);
        let (mut got, mut get_rounds) = (Vec::new(), 0);
        while !pending.is_empty() {
            expect(get_rounds < self.usize("/batch_rounds"), || {
                format!("BatchGetItem still unprocessed after {get_rounds} rounds")
            })?;
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(sdk("BatchGetItem"))?;
            got.extend(
                out.responses
                    .unwrap_or_default()
                    .remove(self.table())
                    .unwrap_or_default(),
            );
            pending = out.unprocessed_keys.unwrap_or_default();
            get_rounds += 1;
        }
        let index = |item: &Item| match item.get("Index") {
            Some(AttributeValue::N(i)) => i.parse::<usize>().unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        got.sort_by_key(index);
        let expected: Vec<Item> = items.iter().map(|item| self.versioned(item)).collect();
        expect_equal(&got, &expected, "BatchGetItem items")?;
        Ok(Map::from_iter([
            ("items".into(), got.len().into()),
            ("write_rounds".into(), write_rounds.into()),
            ("get_rounds".into(), get_rounds.into()),
        ]))
    }

    fn put_action(&self, item: &Item) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item.clone()))
            .build()
            .expect("Put");
        TransactWriteItem::builder().put(put).build()
    }

    fn check_action(&self, condition: &str) -> TransactWriteItem {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(self.item_key()))
            .condition_expression(format!("{condition}({})", self.str("partition_key")))
            .build()
            .expect("ConditionCheck");
        TransactWriteItem::builder().condition_check(check).build()
    }

    async fn transaction(&mut self) -> Step {
        let named = |category: &str, name: &str| {
            let mut item = self.key(&self.id("tx"), category);
            item.insert("Name".into(), s(name));
            item
        };
        let (first, second) = (named("one", "Hammer"), named("two", "Saw"));
        self.client
            .transact_write_items()
            .transact_items(self.put_action(&first))
            .transact_items(self.put_action(&second))
            .transact_items(self.check_action("attribute_exists"))
            .send()
            .await
            .map_err(sdk("TransactWriteItems"))?;
        let get = |category: &str| {
            let get = Get::builder()
                .table_name(self.table())
                .set_key(Some(self.key(&self.id("tx"), category)))
                .build()
                .expect("Get");
            TransactGetItem::builder().get(get).build()
        };
        let out = self
            .client
            .transact_get_items()
            .transact_items(get("one"))
            .transact_items(get("two"))
            .send()
            .await
            .map_err(sdk("TransactGetItems"))?;
        let got: Vec<Option<&Item>> = out.responses().iter().map(|r| r.item()).collect();
        let expected = [self.versioned(&first), self.versioned(&second)];
        expect_equal(
            &got,
            &vec![Some(&expected[0]), Some(&expected[1])],
            "TransactGetItems items",
        )?;
        Ok(Map::from_iter([("items".into(), got.len().into())]))
    }

    async fn transaction_cancelled(&mut self) -> Step {
        let mut third = self.key(&self.id("tx"), "three");
        third.insert("Name".into(), s("Drill"));
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.put_action(&third))
            .transact_items(self.check_action("attribute_not_exists"))
            .send()
            .await;
        let error = match result {
            Ok(_) => {
                return Err("TransactWriteItems with a failing ConditionCheck succeeded".into());
            }
            Err(e) => e.into_service_error(),
        };
        let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
            return Err(format!(
                "expected a TransactionCanceledException, got {error:?}"
            ));
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|r| r.code())
            .collect();
        expect_equal(
            &codes,
            &vec!["None", "ConditionalCheckFailed"],
            "CancellationReasons codes",
        )?;
        let left = self.get_item(self.key(&self.id("tx"), "three")).await?;
        expect_equal(&left, &None, "item of the cancelled transaction")?;
        Ok(Map::from_iter([
            ("error".into(), "TransactionCanceledException".into()),
            ("reasons".into(), json!(codes)),
        ]))
    }

    async fn delete(&mut self) -> Step {
        let out: DeleteItemOutput = self
            .client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(self.item_key()))
            .condition_expression(format!("{} = :v", self.version()))
            .expression_attribute_values(":v", n(2))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk("DeleteItem"))?;
        let old_version = out.attributes().and_then(|a| a.get(self.version()));
        expect_equal(&old_version, &Some(&n(2)), "DeleteItem ALL_OLD Version")?;
        expect_equal(
            &self.get_item(self.item_key()).await?,
            &None,
            "GetItem after DeleteItem",
        )?;
        Ok(Map::new())
    }

    /// The Query of the item's audit records (`ItemKey` `<table>#<stored key>#<category>`), at
    /// whichever endpoint `client` talks to.
    fn audit_query(&self, client: &Client) -> QueryFluentBuilder {
        let item_key = format!(
            "{}#{}#{}#{}",
            self.table(),
            self.env.home_region,
            self.id("item"),
            self.category()
        );
        client
            .query()
            .table_name(self.str("audit_table"))
            .key_condition_expression("ItemKey = :k")
            .expression_attribute_values(":k", s(&item_key))
            .consistent_read(true)
    }

    async fn audit_history(&mut self) -> Step {
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.usize("/audit_wait_seconds") as u64);
        let records = loop {
            // Straight from the region: the sidecar refuses its audit table (audit_refused).
            let out = self
                .audit_query(&self.region)
                .send()
                .await
                .map_err(sdk("Query of the audit table in the region"))?;
            let records = out.items.unwrap_or_default();
            if records.len() >= 3 || tokio::time::Instant::now() > deadline {
                break records;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let field = |name: &str| -> Vec<Option<String>> {
            records
                .iter()
                .map(|r| match r.get(name) {
                    Some(AttributeValue::S(v) | AttributeValue::N(v)) => Some(v.clone()),
                    _ => None,
                })
                .collect()
        };
        let all = |values: &[&str]| {
            values
                .iter()
                .map(|v| Some((*v).to_owned()))
                .collect::<Vec<_>>()
        };
        expect_equal(
            &field("Operation"),
            &all(&["PutItem", "UpdateItem", "DeleteItem"]),
            "audit Operations",
        )?;
        expect_equal(
            &field(self.version()),
            &all(&["1", "2", "2"]),
            "audit Versions",
        )?;
        expect_equal(&field("Outcome"), &all(&["accepted"; 3]), "audit Outcomes")?;
        expect_equal(
            &field("Principal"),
            &all(&[ACCESS_KEY_ID; 3]),
            "audit Principals",
        )?;
        let keys: Vec<Option<&AttributeValue>> = records.iter().map(|r| r.get("Key")).collect();
        let expected = AttributeValue::M(self.item_key());
        expect_equal(
            &keys,
            &vec![Some(&expected); 3],
            "audit Keys (as the client sees them)",
        )?;
        Ok(Map::from_iter([("regions".into(), json!(field("Region")))]))
    }

    async fn audit_refused(&mut self) -> Step {
        let Err(error) = self.audit_query(&self.client).send().await else {
            return Err("Query of the audit table through the sidecar succeeded".into());
        };
        let status = error.raw_response().map(|r| r.status().as_u16());
        // DynamoDB's model names no AccessDeniedException for Query: the SDK's unmodeled
        // error, with the code the sidecar's `__type` gave.
        let error = error.into_service_error();
        expect_equal(&error.code(), &Some("AccessDeniedException"), "error code")?;
        expect_equal(&status, &Some(400), "error status")?;
        Ok(Map::from_iter([(
            "error".into(),
            "AccessDeniedException".into(),
        )]))
    }
}
