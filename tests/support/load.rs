//! Continuous SDK load (reads and unconditional writes at once) with every failure counted,
//! and small readers of what the sidecar reports: its metrics, and which region served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::{OwnedRwLockWriteGuard, RwLock};
use tokio::task::JoinHandle;

use super::{RawRequest, TABLE, get, item, sdk_client_with};

/// Readers and writers running against the sidecar until [`Load::stop`].
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    /// Each request holds a read lock for its duration; [`Load::pause`] takes the write lock.
    gate: Arc<RwLock<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the load saw.
#[derive(Debug)]
pub(crate) struct LoadReport {
    pub(crate) ok: usize,
    pub(crate) errors: Vec<String>,
}

impl LoadReport {
    /// Panics with every error the clients saw, `context` first, if there was any.
    pub(crate) fn assert_no_errors(&self, context: &str) {
        assert!(
            self.errors.is_empty(),
            "{context} client saw errors: {:?}",
            self.errors
        );
    }
}

impl Load {
    /// Starts `workers` writers (unconditional PutItem) and as many readers (GetItem of what
    /// the writers wrote). The SDK's own retries are off: every error the sidecar lets
    /// through is counted.
    pub(crate) fn start(endpoint: &str, workers: usize) -> Self {
        let client = sdk_client_with(endpoint, None, |b| {
            b.retry_config(RetryConfig::disabled()).timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
        });
        let load = Self {
            stop: Arc::new(AtomicBool::new(false)),
            ok: Arc::new(AtomicUsize::new(0)),
            errors: Arc::new(std::sync::Mutex::new(Vec::new())),
            gate: Arc::new(RwLock::new(())),
            tasks: Vec::new(),
        };
        let mut tasks = Vec::new();
        for worker in 0..workers {
            for reader in [false, true] {
                let (client, stop, ok, errors, gate) = (
                    client.clone(),
                    Arc::clone(&load.stop),
                    Arc::clone(&load.ok),
                    Arc::clone(&load.errors),
                    Arc::clone(&load.gate),
                );
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let _running = gate.read().await;
                        n += 1;
                        let result = if reader {
                            read(&client, worker).await
                        } else {
                            write(&client, worker, n).await
                        };
                        match result {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                errors.lock().expect("errors").push(e);
                                0
                            }
                        };
                    }
                }));
            }
        }
        Self { tasks, ..load }
    }

    /// Requests that succeeded so far.
    pub(crate) fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until at least `more` further requests succeeded (so a phase of the test really
    /// ran under load); panics if that takes over a minute.
    pub(crate) async fn wait_for(&self, more: usize) {
        let target = self.ok() + more;
        let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
        while self.ok() < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "load stalled at {} ok",
                self.ok()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the requests in flight, then sends no more until the returned guard is
    /// dropped.
    ///
    /// A DynamoDB Local process starting on a shared store that another process is writing to
    /// can fail its start-up read with `database is locked` (see [`super::DynamoLocal::restart`]);
    /// a test revives a region with the load paused so that start-up always succeeds.
    pub(crate) async fn pause(&self) -> OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.gate).write_owned().await
    }

    pub(crate) async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Release);
        for task in self.tasks {
            task.await.expect("load task");
        }
        let errors = std::mem::take(&mut *self.errors.lock().expect("errors"));
        LoadReport {
            ok: self.ok.load(Ordering::Relaxed),
            errors,
        }
    }
}

async fn write(client: &Client, worker: usize, n: u64) -> Result<(), String> {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item(
            &format!("load-{worker}"),
            "Load",
            &[("n", &n.to_string())],
        )))
        .send()
        .await
        .map(drop)
        .map_err(|e| {
            format!(
                "PutItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        })
}

async fn read(client: &Client, worker: usize) -> Result<(), String> {
    client
        .get_item()
        .table_name(TABLE)
        .key("ItemID", AttributeValue::S(format!("load-{worker}")))
        .key("Category", AttributeValue::S("Load".into()))
        .send()
        .await
        .map(drop)
        .map_err(|e| {
            format!(
                "GetItem: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        })
}

/// The value of one series (`name` with exactly these labels, in any order) on `/metrics`.
pub(crate) async fn metric(admin: SocketAddr, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = get(admin, "/metrics").await.text();
    let mut wanted = label_pairs(labels);
    wanted.sort_unstable();
    series(&text, name).find_map(|(mut found, value)| {
        found.sort_unstable();
        (found == wanted).then_some(value)
    })
}

/// `name` summed over the series whose labels include `labels`, in a Prometheus text
/// exposition; `None` when no series matches.
pub(crate) fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted = label_pairs(labels);
    let values: Vec<f64> = series(exposition, name)
        .filter(|(found, _)| wanted.iter().all(|w| found.contains(&w.as_str())))
        .map(|(_, value)| value)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<String> {
    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect()
}

/// The series of metric `name` in an exposition: each one's `key="value"` labels and value.
fn series<'a>(exposition: &'a str, name: &'a str) -> impl Iterator<Item = (Vec<&'a str>, f64)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let inner = if rest.is_empty() {
                ""
            } else {
                rest.strip_prefix('{')?.strip_suffix('}')?
            };
            let labels = inner.split(',').filter(|s| !s.is_empty()).collect();
            Some((labels, value.parse().ok()?))
        })
}

/// The region that served one GetItem through the sidecar at `addr`.
pub(crate) async fn served_by(addr: SocketAddr) -> String {
    let body = format!(
        r#"{{"TableName":"{TABLE}","Key":{{"ItemID":{{"S":"probe"}},"Category":{{"S":"x"}}}}}}"#
    );
    let response = RawRequest::new("GetItem", body).send(addr).await;
    assert_eq!(response.status, 200, "GetItem: {}", response.text());
    response
        .header("x-globalscale-region")
        .expect("x-globalscale-region header")
        .to_owned()
}
