//! Where keys and items live, per operation, in requests and in answers: the one walker
//! every key rewriting step uses, so no step keeps its own list of places.

use serde_json::{Map, Value};

use super::Operation;

/// What sits at a place the walker visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A primary key: `Key`, `Keys[]`, `DeleteRequest.Key`, `UnprocessedKeys`.
    Key,
    /// A whole item, or the part of it an answer carries: `Item`, `Items[]`, `Attributes`,
    /// `PutRequest.Item`, `Responses`, `CancellationReasons[].Item`.
    Item,
    /// A position to start from or continue at: `ExclusiveStartKey`, `LastEvaluatedKey`.
    /// With a filter, it may be an item the client never saw.
    StartKey,
    /// `ItemCollectionMetrics[].ItemCollectionKey`: the partition key alone.
    CollectionKey,
}

/// What an answer does not say about itself: the tables of the request it answers.
#[derive(Debug, Clone, Copy)]
pub struct AnswerContext<'a> {
    /// `TableName` of a single-table request.
    pub table: Option<&'a str>,
    /// The table of each `TransactItems` action, in order (answers refer to them by index).
    pub action_tables: &'a [String],
}

type Visit<'f, E> = dyn FnMut(&str, Site, &mut Map<String, Value>) -> Result<(), E> + 'f;

/// Visits every key and item of a request with the table it belongs to.
pub fn request_sites<E>(
    op: &Operation,
    body: &mut Map<String, Value>,
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    if let Some(table) = body
        .get("TableName")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        for (field, site) in [
            ("Key", Site::Key),
            ("Item", Site::Item),
            ("ExclusiveStartKey", Site::StartKey),
        ] {
            if let Some(map) = body.get_mut(field).and_then(Value::as_object_mut) {
                visit(&table, site, map)?;
            }
        }
    }
    match op {
        Operation::BatchGetItem => per_table(body.get_mut("RequestItems"), |table, request| {
            each_map(request.get_mut("Keys"), |key| visit(table, Site::Key, key))
        }),
        Operation::BatchWriteItem => per_table(body.get_mut("RequestItems"), |table, requests| {
            each_map(Some(requests), |request| {
                write_request(table, request, visit)
            })
        }),
        Operation::TransactGetItems | Operation::TransactWriteItems => {
            each_map(body.get_mut("TransactItems"), |item| {
                for action in item.values_mut().filter_map(Value::as_object_mut) {
                    let Some(table) = action.get("TableName").and_then(Value::as_str) else {
                        continue;
                    };
                    let table = table.to_owned();
                    for (field, site) in [("Key", Site::Key), ("Item", Site::Item)] {
                        if let Some(map) = action.get_mut(field).and_then(Value::as_object_mut) {
                            visit(&table, site, map)?;
                        }
                    }
                }
                Ok(())
            })
        }
        _ => Ok(()),
    }
}

/// Visits every key and item of an answer (success or error body) with its table.
pub fn answer_sites<E>(
    op: &Operation,
    context: AnswerContext<'_>,
    body: &mut Map<String, Value>,
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    if let Some(table) = context.table {
        for (field, site) in [
            ("Item", Site::Item),
            ("Attributes", Site::Item),
            ("LastEvaluatedKey", Site::StartKey),
        ] {
            if let Some(map) = body.get_mut(field).and_then(Value::as_object_mut) {
                visit(table, site, map)?;
            }
        }
        each_map(body.get_mut("Items"), |item| visit(table, Site::Item, item))?;
    }
    match op {
        Operation::BatchGetItem => {
            per_table(body.get_mut("Responses"), |table, items| {
                each_map(Some(items), |item| visit(table, Site::Item, item))
            })?;
            per_table(body.get_mut("UnprocessedKeys"), |table, request| {
                each_map(request.get_mut("Keys"), |key| visit(table, Site::Key, key))
            })
        }
        Operation::BatchWriteItem => {
            per_table(body.get_mut("UnprocessedItems"), |table, requests| {
                each_map(Some(requests), |request| {
                    write_request(table, request, visit)
                })
            })?;
            collection_metrics_per_table(body, visit)
        }
        Operation::TransactWriteItems => {
            each_indexed(
                body.get_mut("CancellationReasons"),
                context,
                |table, reason| match reason.get_mut("Item").and_then(Value::as_object_mut) {
                    Some(item) => visit(table, Site::Item, item),
                    None => Ok(()),
                },
            )?;
            collection_metrics_per_table(body, visit)
        }
        Operation::TransactGetItems => each_indexed(
            body.get_mut("Responses"),
            context,
            |table, response| match response.get_mut("Item").and_then(Value::as_object_mut) {
                Some(item) => visit(table, Site::Item, item),
                None => Ok(()),
            },
        ),
        _ => match (context.table, body.get_mut("ItemCollectionMetrics")) {
            (Some(table), Some(Value::Object(metrics))) => collection_key(table, metrics, visit),
            _ => Ok(()),
        },
    }
}

/// What a write does to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Put,
    Update,
    Delete,
}

/// One item a write request changes: its table, what it does, and its `Item` (a put) or `Key`.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub table: &'a str,
    pub kind: WriteKind,
    pub map: &'a Map<String, Value>,
}

/// Every item a write request changes, in request order (a transaction's condition checks
/// change nothing and are left out).
pub fn writes<'a>(op: &Operation, body: &'a Map<String, Value>) -> Vec<Write<'a>> {
    let mut found = Vec::new();
    let single = match op {
        Operation::PutItem => Some((WriteKind::Put, "Item")),
        Operation::UpdateItem => Some((WriteKind::Update, "Key")),
        Operation::DeleteItem => Some((WriteKind::Delete, "Key")),
        _ => None,
    };
    if let Some((kind, field)) = single
        && let (Some(table), Some(map)) = (
            body.get("TableName").and_then(Value::as_str),
            body.get(field).and_then(Value::as_object),
        )
    {
        found.push(Write { table, kind, map });
    }
    match op {
        Operation::BatchWriteItem => {
            let tables = body.get("RequestItems").and_then(Value::as_object);
            for (table, requests) in tables.into_iter().flatten() {
                let requests = requests.as_array().into_iter().flatten();
                for request in requests.filter_map(Value::as_object) {
                    for (name, field, kind) in [
                        ("PutRequest", "Item", WriteKind::Put),
                        ("DeleteRequest", "Key", WriteKind::Delete),
                    ] {
                        if let Some(map) = request
                            .get(name)
                            .and_then(|r| r.get(field))
                            .and_then(Value::as_object)
                        {
                            found.push(Write { table, kind, map });
                        }
                    }
                }
            }
        }
        Operation::TransactWriteItems => {
            let items = body.get("TransactItems").and_then(Value::as_array);
            for item in items.into_iter().flatten().filter_map(Value::as_object) {
                for (name, action) in item {
                    let (kind, field) = match name.as_str() {
                        "Put" => (WriteKind::Put, "Item"),
                        "Update" => (WriteKind::Update, "Key"),
                        "Delete" => (WriteKind::Delete, "Key"),
                        _ => continue,
                    };
                    if let (Some(table), Some(map)) = (
                        action.get("TableName").and_then(Value::as_str),
                        action.get(field).and_then(Value::as_object),
                    ) {
                        found.push(Write { table, kind, map });
                    }
                }
            }
        }
        _ => {}
    }
    found
}

fn write_request<E>(
    table: &str,
    request: &mut Map<String, Value>,
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    for (kind, field, site) in [
        ("PutRequest", "Item", Site::Item),
        ("DeleteRequest", "Key", Site::Key),
    ] {
        let inner = request.get_mut(kind).and_then(Value::as_object_mut);
        if let Some(map) = inner
            .and_then(|r| r.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            visit(table, site, map)?;
        }
    }
    Ok(())
}

fn collection_metrics_per_table<E>(
    body: &mut Map<String, Value>,
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    per_table(body.get_mut("ItemCollectionMetrics"), |table, metrics| {
        each_map(Some(metrics), |m| collection_key(table, m, visit))
    })
}

fn collection_key<E>(
    table: &str,
    metrics: &mut Map<String, Value>,
    visit: &mut Visit<'_, E>,
) -> Result<(), E> {
    match metrics
        .get_mut("ItemCollectionKey")
        .and_then(Value::as_object_mut)
    {
        Some(key) => visit(table, Site::CollectionKey, key),
        None => Ok(()),
    }
}

/// `{"<table>": value, ...}`: each table's value.
fn per_table<E>(
    value: Option<&mut Value>,
    mut each: impl FnMut(&str, &mut Value) -> Result<(), E>,
) -> Result<(), E> {
    match value.and_then(Value::as_object_mut) {
        Some(tables) => tables
            .iter_mut()
            .try_for_each(|(table, value)| each(table, value)),
        None => Ok(()),
    }
}

/// Each map in a list.
fn each_map<E>(
    value: Option<&mut Value>,
    each: impl FnMut(&mut Map<String, Value>) -> Result<(), E>,
) -> Result<(), E> {
    match value.and_then(Value::as_array_mut) {
        Some(list) => list
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .try_for_each(each),
        None => Ok(()),
    }
}

/// Each map of a list answering `TransactItems` by position, with that action's table.
fn each_indexed<E>(
    value: Option<&mut Value>,
    context: AnswerContext<'_>,
    mut each: impl FnMut(&str, &mut Map<String, Value>) -> Result<(), E>,
) -> Result<(), E> {
    let Some(list) = value.and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (entry, table) in list.iter_mut().zip(context.action_tables) {
        if let Some(map) = entry.as_object_mut() {
            each(table, map)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
