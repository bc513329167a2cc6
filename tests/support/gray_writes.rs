//! Write load for gray failures: SDK writers (the SDK's own retries off), each adding one to
//! its own item's count `n` with `ADD n :one` and keeping what each write was told: succeeded,
//! refused (a 4xx: not applied) or ambiguous (a 5xx, or no answer: maybe applied).
//!
//! Read from the store at the end, a count tells whether a write was applied twice (or a
//! success never applied): it lies between the writes that succeeded and those plus the
//! ambiguous ones, whatever the sidecar did with them. Every other writer adds only on the
//! condition that `n` is the count it expects (read from the store after any answer but a
//! success): DynamoDB itself refuses a second application of such a write, so what its count
//! can show is an answer that lies (a refusal for a write that was applied); the writers
//! without a condition are the ones whose count shows a write sent and applied twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::task::JoinHandle;

use super::{TABLE, item, sdk_client_with};

/// The pace of each writer: a small load beside the readers, not a flood.
const PACE: Duration = Duration::from_millis(50);

/// What one writer was told about its writes, and what its item holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) item: String,
    /// Whether its writes carried the condition on the count.
    pub(crate) conditional: bool,
    pub(crate) succeeded: u64,
    pub(crate) ambiguous: u64,
    pub(crate) refused: u64,
    /// The item's count in the store, read once every write has ended.
    pub(crate) stored: u64,
}

impl Tally {
    /// Whether the stored count is one the answers allow: no write applied twice, no
    /// success lost.
    pub(crate) fn consistent(&self) -> bool {
        (self.succeeded..=self.succeeded + self.ambiguous).contains(&self.stored)
    }

    /// `item (condition): n succeeded, n ambiguous, n refused; stored n` as one line.
    pub(crate) fn summary(&self) -> String {
        let kind = if self.conditional {
            "conditional"
        } else {
            "unconditional"
        };
        format!(
            "{} ({kind}): {} succeeded, {} ambiguous, {} refused; stored {}",
            self.item, self.succeeded, self.ambiguous, self.refused, self.stored
        )
    }
}

/// Writers running until [`WriteLoad::stop`].
pub(crate) struct WriteLoad {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Tally>>,
}

impl WriteLoad {
    /// `writers` tasks writing through `endpoint`, each to its own item `{prefix}-{i}`,
    /// created with a count of 0 through `store` (the region's DynamoDB itself); the odd ones
    /// write on a condition.
    pub(crate) async fn start(
        endpoint: &str,
        store: &Client,
        writers: usize,
        prefix: &str,
    ) -> Self {
        let client = sdk_client_with(endpoint, None, |b| {
            b.retry_config(RetryConfig::disabled()).timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for i in 0..writers {
            let id = format!("{prefix}-{i}");
            let mut initial = item(&id, "Gray", &[]);
            initial.insert("n".into(), AttributeValue::N("0".into()));
            store
                .put_item()
                .table_name(TABLE)
                .set_item(Some(initial))
                .send()
                .await
                .expect("PutItem of a writer's item");
            let (client, store, stop) = (client.clone(), store.clone(), Arc::clone(&stop));
            let tally = Tally {
                item: id,
                conditional: i % 2 == 1,
                ..Tally::default()
            };
            tasks.push(tokio::spawn(write(client, store, tally, stop)));
        }
        Self { stop, tasks }
    }

    /// Stops the writers once their writes in flight end; what each was told.
    pub(crate) async fn stop(self) -> Vec<Tally> {
        self.stop.store(true, Ordering::Release);
        let mut tallies = Vec::new();
        for task in self.tasks {
            tallies.push(task.await.expect("writer task"));
        }
        tallies
    }
}

/// One writer's loop over its item (`tally.item`), counting in `tally`.
async fn write(client: Client, store: Client, mut tally: Tally, stop: Arc<AtomicBool>) -> Tally {
    let mut pace = tokio::time::interval(PACE);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expected = Some(0);
    while !stop.load(Ordering::Acquire) {
        pace.tick().await;
        let mut update = client
            .update_item()
            .table_name(TABLE)
            .set_key(Some(item(&tally.item, "Gray", &[])))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        if tally.conditional {
            let n = match expected {
                Some(n) => n,
                None => stored(&store, &tally.item).await,
            };
            expected = Some(n);
            update = update
                .condition_expression("n = :n")
                .expression_attribute_values(":n", AttributeValue::N(n.to_string()));
        }
        expected = match update.send().await {
            Ok(_) => {
                tally.succeeded += 1;
                expected.map(|n| n + 1)
            }
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if status.is_some_and(|s| (400..500).contains(&s)) {
                    tally.refused += 1;
                } else {
                    tally.ambiguous += 1;
                }
                None
            }
        };
    }
    tally
}

/// Reads each writer's count from the store into its tally (once every write has ended),
/// and prints the tallies of each phase.
pub(crate) async fn read_back(store: &Client, written: &mut [(&'static str, Vec<Tally>)]) {
    for (name, tallies) in written {
        for tally in tallies {
            tally.stored = stored(store, &tally.item).await;
            println!("writes while {name}: {}", tally.summary());
        }
    }
}

/// The count `n` of item `id`, read from the store with a strongly consistent read.
async fn stored(store: &Client, id: &str) -> u64 {
    let found = store
        .get_item()
        .table_name(TABLE)
        .set_key(Some(item(id, "Gray", &[])))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem from the store")
        .item
        .expect("the writer's item");
    match found.get("n") {
        Some(AttributeValue::N(n)) => n.parse().expect("a count"),
        other => panic!("{id}: n is {other:?}"),
    }
}
