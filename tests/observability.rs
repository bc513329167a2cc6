//! The monitoring that ships in `deploy/`: the Prometheus rules (`deploy/prometheus/`), their
//! unit tests and runbooks, and the Grafana dashboard (`deploy/grafana/`). `promtool` checks
//! and unit-tests the rules; then a real Prometheus scrapes a real sidecar whose home region
//! is down, under traffic, and every rule and every dashboard query must evaluate without
//! error, over metric names the sidecar actually exports, with the region-ejected alert raised.
//!
//! Nothing here is timed: everything is polled up to [`support::HANG`].

#![allow(clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use support::{
    CLIENT_ACCESS_KEY_ID, CLIENT_SECRET, DynamoLocal, HANG, Mode, Prometheus, RegionFixture,
    Sidecar, SidecarConfig, TABLE, audit_section, create_audit_table, create_global_catalog, item,
    promtool, repo_root, sdk_client,
};
use tokio::task::JoinHandle;

const RULES_DIR: &str = "deploy/prometheus";
const RULES_GLOB: &str = "deploy/prometheus/*.rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/tests.yml";
const RUNBOOKS: &str = "deploy/prometheus/README.md";
const DASHBOARD: &str = "deploy/grafana/globalscale.json";

/// The scrape job's name; `GlobalScaleTargetDown` finds sidecars by a job containing it.
const JOB: &str = "globalscale";

/// Fast health settings, so the home region is ejected within the test's patience.
const ROUTING: &str = "[routing]\nprobe_interval_ms = 200\nprobe_timeout_ms = 600\neject_after_failures = 3\nreadmit_after_successes = 2";

/// The alert that must be raised once the home region is down.
const EJECTED: &str = "GlobalScaleRegionEjected";

fn rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(RULES_DIR))
        .expect("read deploy/prometheus")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {RULES_GLOB}");
    files
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn assert_success(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let files = rule_files();
    let mut args = vec!["check", "rules"];
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    assert_success("promtool check rules", &promtool(&args));
    assert_success(
        "promtool test rules",
        &promtool(&["test", "rules", RULE_TESTS]),
    );
}

/// The alert names the rule files define, in order (`- alert: Name` lines).
fn alert_names() -> Vec<String> {
    rule_files()
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("read rules");
            text.lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("- alert:")
                        .map(|n| n.trim().to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every alert has a unit test in which it fires and one in which it must not, and a
/// runbook section.
#[test]
fn every_alert_has_a_firing_and_a_quiet_case_and_a_runbook() {
    let tests = read(RULE_TESTS);
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("alertname:") else {
            continue;
        };
        let expected = lines[i + 1..]
            .iter()
            .find(|l| l.starts_with("exp_alerts:"))
            .expect("exp_alerts after alertname");
        let set = if *expected == "exp_alerts: []" {
            &mut quiet
        } else {
            &mut fires
        };
        set.insert(name.trim().to_owned());
    }
    let runbooks = read(RUNBOOKS);
    let names = alert_names();
    assert!(!names.is_empty(), "no alerts found in {RULES_GLOB}");
    for name in &names {
        assert!(
            fires.contains(name),
            "{RULE_TESTS}: no case where {name} fires"
        );
        assert!(
            quiet.contains(name),
            "{RULE_TESTS}: no case where {name} stays quiet"
        );
        assert!(
            runbooks.lines().any(|l| l == format!("### {name}")),
            "{RUNBOOKS}: no `### {name}` section"
        );
    }
}

/// Every panel of the dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = stack.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            stack.extend(nested);
        }
        out.push(panel);
    }
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// The dashboard loads through file provisioning as well as import: no `__inputs`, whose
/// `${DS_PROMETHEUS}` provisioning never fills in, but a datasource variable that every
/// panel, query and variable reads.
#[test]
fn the_dashboard_takes_its_datasource_from_a_variable() {
    let dashboard = dashboard();
    assert!(
        dashboard.get("__inputs").is_none(),
        "__inputs breaks file provisioning"
    );
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!(schema >= 38, "schemaVersion {schema} predates Grafana 10");
    let datasource = variables(&dashboard)
        .into_iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["name"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let uses_variable = |v: &Value| v["datasource"]["uid"] == "${datasource}";
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = &panel["title"];
        assert!(ids.insert(panel["id"].as_u64()), "duplicate id: {title}");
        if panel["type"] == "row" {
            continue;
        }
        assert!(uses_variable(panel), "panel {title}: datasource");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for target in targets {
            assert!(
                uses_variable(target),
                "panel {title}: a target's datasource"
            );
            let expr = target["expr"].as_str().expect("a target's expr");
            // Recording rules would leave the panel empty where the rules are not loaded.
            let recorded = identifiers(expr).find(|word| word.contains(':'));
            assert!(recorded.is_none(), "panel {title} reads {recorded:?}");
        }
    }
    for variable in query_variables(&dashboard) {
        assert!(
            uses_variable(variable),
            "variable {}: datasource",
            variable["name"]
        );
    }
    assert!(
        !read(DASHBOARD).contains("DS_PROMETHEUS"),
        "a leftover ${{DS_PROMETHEUS}}"
    );
}

fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .collect()
}

/// The variables whose values come from a Prometheus query (not the datasource choice).
fn query_variables(dashboard: &Value) -> Vec<&Value> {
    variables(dashboard)
        .into_iter()
        .filter(|v| v["type"] == "query")
        .collect()
}

/// A dashboard expression as Grafana would send it with every variable at "All".
fn substitute(expr: &str, names: &[String]) -> String {
    let mut out = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1m");
    // Longest first, so `$instance` is never read as `$in` + "stance".
    let mut names: Vec<&String> = names.iter().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out
            .replace(&format!("${{{name}}}"), ".*")
            .replace(&format!("${name}"), ".*");
    }
    assert!(!out.contains('$'), "an unknown variable in {expr}");
    out
}

/// Each panel query as Prometheus gets it, with its panel's title.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let names: Vec<String> = variables(dashboard)
        .iter()
        .map(|v| v["name"].as_str().expect("variable name").to_owned())
        .collect();
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            let names = &names;
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| {
                    (
                        title.clone(),
                        substitute(t["expr"].as_str().expect("expr"), names),
                    )
                })
        })
        .collect()
}

/// `label_values(selector, label)` of each query variable, as (selector, label).
fn variable_queries(dashboard: &Value) -> Vec<(String, String)> {
    let names: Vec<String> = variables(dashboard)
        .iter()
        .map(|v| v["name"].as_str().expect("variable name").to_owned())
        .collect();
    query_variables(dashboard)
        .iter()
        .map(|v| {
            let query = v["query"]["query"].as_str().expect("variable query");
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("not label_values(selector, label): {query}"));
            let (selector, label) = inner.rsplit_once(',').expect("selector, label");
            (substitute(selector.trim(), &names), label.trim().to_owned())
        })
        .collect()
}

/// The metric names an expression reads (identifiers of the sidecar's families; recording
/// rules, which hold a colon, are not the sidecar's).
fn metric_names(expr: &str) -> BTreeSet<String> {
    identifiers(expr)
        .filter(|word| {
            (word.starts_with("globalscale_") || word.starts_with("process_"))
                && !word.contains(':')
        })
        .map(str::to_owned)
        .collect()
}

/// The words of an expression that may be metric names (a subquery's `5m:1m` starts with a
/// digit, so it is not one).
fn identifiers(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// GetItem and PutItem through the sidecar until dropped, paced so as not to starve two busy
/// cores; failures are expected while the home region goes down and are not counted.
struct Traffic {
    ok: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Traffic {
    fn start(endpoint: &str) -> Self {
        let client = sdk_client(endpoint);
        let ok = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ok);
        let task = tokio::spawn(async move {
            for n in 0u64.. {
                let id = format!("observed-{n}");
                let put = client
                    .put_item()
                    .table_name(TABLE)
                    .set_item(Some(item(&id, "x", &[])))
                    .send()
                    .await;
                let read = client
                    .get_item()
                    .table_name(TABLE)
                    .key("ItemID", AttributeValue::S(id))
                    .key("Category", AttributeValue::S("x".into()))
                    .send()
                    .await;
                if put.is_ok() && read.is_ok() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { ok, task }
    }

    async fn wait_for(&self, rounds: usize) {
        poll(
            &format!("{rounds} successful rounds of traffic"),
            || async {
                let ok = self.ok.load(Ordering::Relaxed);
                (ok >= rounds).then_some(()).ok_or(format!("{ok} so far"))
            },
        )
        .await;
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls `check` until it returns `Ok`; panics with `what` and the last `Err` after [`HANG`].
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {HANG:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Two regions over one DynamoDB Local store, each behind a fixture; the sidecar with every
/// optional family of metrics on (sigv4 clients, a versioned and audited table).
struct Setup {
    _ddb: DynamoLocal,
    _spool: tempfile::TempDir,
    home: RegionFixture,
    _second: RegionFixture,
    sidecar: Sidecar,
}

async fn setup() -> Setup {
    let ddb = DynamoLocal::cluster(2).await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    create_audit_table(&direct).await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(1)).await;
    let spool = tempfile::tempdir().expect("spool dir");
    let auth = format!(
        "[auth]\nmode = \"sigv4\"\n\n[[clients]]\nname = \"app\"\naccess_key_id = {CLIENT_ACCESS_KEY_ID:?}\nsecret_access_key = {CLIENT_SECRET:?}"
    );
    let config = SidecarConfig::new()
        .timeouts(300, 2_000, 10_000)
        .region("us-east-1", &home.endpoint())
        .region("us-west-2", &second.endpoint())
        .table_line("version_attribute = \"Version\"")
        .table_line("audit = true")
        .section(&audit_section(spool.path(), ""))
        .section(ROUTING)
        .section(&auth);
    let sidecar = Sidecar::start(&config).await;
    Setup {
        _ddb: ddb,
        _spool: spool,
        home,
        _second: second,
        sidecar,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_dashboard_evaluate_against_a_sidecar_whose_home_region_is_down() {
    let setup = setup().await;
    let traffic = Traffic::start(&setup.sidecar.endpoint());
    let rules_glob = repo_root().join(RULES_GLOB);
    let prometheus = Prometheus::start(JOB, setup.sidecar.admin_addr(), &[&rules_glob]).await;
    traffic.wait_for(5).await;
    setup.home.set_mode(Mode::Refuse).await;

    poll("the sidecar scraped (up == 1)", || async {
        let up = prometheus.query(&format!("up{{job={JOB:?}}}")).await?;
        (up.len() == 1 && up[0]["value"][1] == "1")
            .then_some(())
            .ok_or(format!("{up:?}"))
    })
    .await;
    region_ejected_alert_raised(&prometheus).await;
    // Judged over data that includes the ejection and the failover.
    let rules = every_rule_evaluated(&prometheus).await;
    check_runbook_links(&rules);
    let dashboard = dashboard();
    let mut exprs: Vec<String> = rules
        .iter()
        .map(|r| r["query"].as_str().expect("query").to_owned())
        .collect();
    exprs.extend(panel_queries(&dashboard).into_iter().map(|(_, q)| q));
    exprs.extend(variable_queries(&dashboard).into_iter().map(|(s, _)| s));
    every_metric_exported(&prometheus, &exprs).await;
    every_dashboard_query_answers(&prometheus, &dashboard).await;

    traffic
        .wait_for(traffic.ok.load(Ordering::Relaxed) + 5)
        .await;
    drop(traffic);
    setup.sidecar.stop().await;
}

/// Waits until every rule has been evaluated again since now, then requires each to be
/// healthy; returns them. Called once the sidecar has been scraped: a first evaluation may
/// come before the first scrape, and an expression over no series fails no matching.
async fn every_rule_evaluated(prometheus: &Prometheus) -> Vec<Value> {
    let before: Vec<(Value, Value)> = prometheus
        .rules()
        .await
        .into_iter()
        .map(|r| (r["name"].clone(), r["lastEvaluation"].clone()))
        .collect();
    let rules = poll("every rule evaluated over scraped data", || async {
        let rules = prometheus.rules().await;
        let stale: Vec<&Value> = rules
            .iter()
            .filter(|r| {
                r["health"] == "unknown"
                    || before.contains(&(r["name"].clone(), r["lastEvaluation"].clone()))
            })
            .map(|r| &r["name"])
            .collect();
        if stale.is_empty() && !rules.is_empty() {
            Ok(rules)
        } else {
            Err(format!(
                "{} rules, not evaluated since: {stale:?}",
                rules.len()
            ))
        }
    })
    .await;
    let broken: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok" || r.get("lastError").is_some_and(|e| e != ""))
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(broken.is_empty(), "rules failing to evaluate: {broken:#?}");
    let defined: usize = rule_files()
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).expect("read rules");
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("- alert:") || l.starts_with("- record:"))
                .count()
        })
        .sum();
    assert_eq!(
        rules.len(),
        defined,
        "Prometheus loaded {} rules; {RULES_GLOB} defines {defined}\n{}",
        rules.len(),
        prometheus.log()
    );
    rules
}

/// Each alert's `runbook_url` is an absolute link to its own section of the runbooks.
fn check_runbook_links(rules: &[Value]) {
    let runbooks = read(RUNBOOKS);
    for rule in rules.iter().filter(|r| r["type"] == "alerting") {
        let name = rule["name"].as_str().expect("name");
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        assert!(
            url.starts_with("https://")
                && url.ends_with(&format!("/{RUNBOOKS}#{}", name.to_lowercase())),
            "{name}: runbook_url {url:?}"
        );
        assert!(
            runbooks.lines().any(|l| l == format!("### {name}")),
            "{RUNBOOKS} has no section for {name}"
        );
    }
}

/// Every `globalscale_*` and `process_*` name the rules and the dashboard read is one the
/// sidecar exported (a misspelt name evaluates without error, to nothing).
async fn every_metric_exported(prometheus: &Prometheus, exprs: &[String]) {
    let wanted: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(
        wanted.contains("globalscale_region_healthy"),
        "no names found in {wanted:?}"
    );
    poll("every metric read exported by the sidecar", || async {
        let names = prometheus.api("/api/v1/label/__name__/values").await;
        let names: BTreeSet<&str> = names
            .as_array()
            .expect("names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| !names.contains(w.as_str()))
            .collect();
        missing
            .is_empty()
            .then_some(())
            .ok_or(format!("not exported: {missing:?}"))
    })
    .await;
}

async fn region_ejected_alert_raised(prometheus: &Prometheus) {
    poll(
        &format!("{EJECTED} for us-east-1 pending or firing"),
        || async {
            let alerts = prometheus.alerts().await;
            alerts
                .iter()
                .any(|a| {
                    a["labels"]["alertname"] == EJECTED
                        && a["labels"]["region"] == "us-east-1"
                        && (a["state"] == "pending" || a["state"] == "firing")
                })
                .then_some(())
                .ok_or(format!("alerts: {alerts:?}"))
        },
    )
    .await;
}

/// Every panel and variable query evaluates without error, and returns series once there is
/// data (an empty answer would be a panel that never shows anything).
async fn every_dashboard_query_answers(prometheus: &Prometheus, dashboard: &Value) {
    let panels = panel_queries(dashboard);
    let variables = variable_queries(dashboard);
    assert!(!panels.is_empty(), "no panel queries in {DASHBOARD}");
    poll("every dashboard query returns data", || async {
        let mut empty = Vec::new();
        for (title, expr) in &panels {
            let result = prometheus
                .query(expr)
                .await
                .unwrap_or_else(|e| panic!("panel {title:?}: {expr}: {e}"));
            if result.is_empty() {
                empty.push(format!("panel {title:?}: {expr}"));
            }
        }
        for (selector, label) in &variables {
            let result = prometheus
                .query(selector)
                .await
                .unwrap_or_else(|e| panic!("variable query {selector}: {e}"));
            if !result
                .iter()
                .any(|s| s["metric"][label.as_str()].is_string())
            {
                empty.push(format!("variable: no {label} in {selector}"));
            }
        }
        empty.is_empty().then_some(()).ok_or(format!("{empty:#?}"))
    })
    .await;
}

#[test]
fn substitution_leaves_plain_promql() {
    let names = ["in".to_owned(), "instance".to_owned()];
    assert_eq!(
        substitute(
            "rate(x{instance=~\"$instance\", a=~\"${in}\"}[$__rate_interval])",
            &names
        ),
        "rate(x{instance=~\".*\", a=~\".*\"}[1m])"
    );
    assert_eq!(
        metric_names(
            "sum(rate(globalscale_a_total[1m])) / instance:globalscale_b:rate5m + process_open_fds"
        ),
        BTreeSet::from([
            "globalscale_a_total".to_owned(),
            "process_open_fds".to_owned()
        ])
    );
}
