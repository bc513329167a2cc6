//! `/status` with the home region down, the way people see it: the page's text over HTTP, the
//! same facts as JSON, and the page rendered by headless Chromium, both as a DOM and as a
//! screenshot at `target/artifacts/status-page.png`, which CI keeps as an artifact so a change
//! to the page can be looked at. A missing `chromium` fails the test; it is never skipped.

#![allow(clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use support::{
    DynamoLocal, Mode, RawRequest, RegionFixture, Sidecar, SidecarConfig, TABLE, admin_request,
    create_global_catalog, get, repo_root, sdk_client, within,
};

const HOME: &str = "us-east-1";
const SECOND: &str = "us-west-2";

/// What headless Chromium needs here: no sandbox (containers), and nothing that reaches for
/// Google's services, which on a closed network stalls it.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
];

/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn key(id: &str) -> Value {
    json!({"ItemID": {"S": id}, "Category": {"S": "status"}})
}

fn put(id: &str) -> RawRequest {
    let body = json!({"TableName": TABLE, "Item": key(id)});
    RawRequest::new("PutItem", body.to_string())
}

fn get_item(id: &str) -> RawRequest {
    let body = json!({"TableName": TABLE, "Key": key(id)});
    RawRequest::new("GetItem", body.to_string())
}

async fn status_json(sidecar: &Sidecar) -> Value {
    let accept = [("accept", "application/json")];
    let response = admin_request(sidecar.admin_addr(), Method::GET, "/status", &accept, "").await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// Reads through the sidecar until `/status` says the home region is ejected, with the
/// ejection among its events, and reads are served from the second region.
async fn until_home_ejected(sidecar: &Sidecar) -> Value {
    let shows_ejection = |status: &Value| {
        status["regions"][0]["healthy"] == false
            && status["serving_region"] == SECOND
            && status["events"][0]["region"] == HOME
            && status["events"][0]["event"] == "ejected"
    };
    within("/status showing the home region ejected", async {
        for attempt in 0usize.. {
            // Whatever the answer: the reads are there to meet the refused region.
            get_item(&format!("item-{}", attempt % 3))
                .send(sidecar.listen_addr())
                .await;
            let status = status_json(sidecar).await;
            if shows_ejection(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!("0.. has no end")
    })
    .await
}

/// Runs headless Chromium with `args` on `url`, with a fresh profile. Chromium runs in its own
/// process group, killed as a whole when the run ends or hangs (then `within` panics).
async fn chromium(args: &[String], url: &str) -> Output {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut command = tokio::process::Command::new("chromium");
    command
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run chromium ({e}): this test renders /status in Debian's chromium, which \
             scripts/test installs (apt-get install chromium)"
        )
    });
    let _group = ProcessGroup(child.id());
    let output = within(&format!("chromium {args:?}"), child.wait_with_output())
        .await
        .expect("chromium's output");
    assert!(
        output.status.success(),
        "chromium {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A process group (led by the pid) killed on drop: a hung browser's renderers go with it.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // Usually the group is gone already, and `kill` says so on stderr.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The page's text facts, in HTML from the admin port or in Chromium's DOM.
fn assert_page_says(page: &str, reason: &str, source: &str) {
    for expected in [
        HOME,
        SECOND,
        "ejected",
        "healthy",
        reason,
        &format!("Serving from {SECOND}: {HOME} was ejected at"),
        "Writes go to us-west-2 too (write failover: auto).",
        "Recent events",
    ] {
        assert!(
            page.contains(expected),
            "{source} lacks {expected:?}:\n{page}"
        );
    }
}

fn check_json(status: &Value) -> &str {
    assert_eq!(status["regions"][0]["name"], HOME);
    assert_eq!(status["regions"][0]["home"], true);
    assert_eq!(status["regions"][0]["healthy"], false);
    assert_eq!(status["regions"][1]["name"], SECOND);
    assert_eq!(status["regions"][1]["healthy"], true);
    // The home region answered reads before it went down: its last latency is stale, not shown.
    assert!(status["regions"][0]["latency_ms"].is_null(), "{status:#}");
    assert!(
        status["regions"][0]["get_item_p50_ms"].is_null(),
        "{status:#}"
    );
    assert!(status["regions"][1]["latency_ms"].is_f64(), "{status:#}");
    assert_eq!(status["serving_region"], SECOND);
    assert_eq!(status["write_failover"], "auto");
    assert_eq!(status["routing_policy"], "ordered");
    assert_eq!(status["auth"], "none");
    assert_eq!(status["draining"], false);
    assert_eq!(status["config"]["generation"], 1);
    assert!(status["config"]["loaded_at"].is_string());
    assert!(
        status["retry_budget"]["capacity"]
            .as_u64()
            .is_some_and(|c| c > 0)
    );
    assert!(status["audit"].is_null());
    assert_eq!(status["events"][0]["region"], HOME);
    assert_eq!(status["events"][0]["event"], "ejected");
    let reason = status["events"][0]["reason"].as_str().expect("a reason");
    // A refused connect, or a pooled connection the region closed as it went down.
    assert!(
        ["connect_error", "transport_error"].contains(&reason),
        "{status:#}"
    );
    reason
}

/// Renders `url` to `target/artifacts/status-page.png` and checks it is a real PNG.
async fn screenshot(url: &str) -> PathBuf {
    let dir = repo_root().join("target/artifacts");
    std::fs::create_dir_all(&dir).expect("create target/artifacts");
    let png = dir.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let args = [
        format!("--screenshot={}", png.display()),
        "--window-size=1200,900".to_owned(),
    ];
    chromium(&args, url).await;
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("chromium wrote no screenshot at {}: {e}", png.display()));
    assert!(
        bytes.starts_with(PNG_SIGNATURE),
        "{} is not a PNG",
        png.display()
    );
    assert!(
        bytes.len() > 10 * 1024,
        "{} is only {} bytes: a blank page?",
        png.display(),
        bytes.len()
    );
    png
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_with_the_home_region_down() {
    let ddb = DynamoLocal::cluster(2).await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(1)).await;
    let config = SidecarConfig::new()
        .region(HOME, &home.endpoint())
        .region(SECOND, &second.endpoint())
        // Three failures to eject, not one: on a starved machine a single slow answer from
        // the healthy region would eject it too, and the page would show both down. No
        // hedges: a read the starved home answers late is still asserted to come from home.
        .section(
            "[routing]\neject_after_failures = 3\nprobe_interval_ms = 200\nhedge_reads = false",
        );
    let sidecar = Sidecar::start(&config).await;
    for i in 0..3 {
        let id = format!("item-{i}");
        let write = put(&id).send(sidecar.listen_addr()).await;
        assert_eq!(write.status, 200, "{}", write.text());
        let read = get_item(&id).send(sidecar.listen_addr()).await;
        assert_eq!(read.status, 200, "{}", read.text());
        assert_eq!(read.header("x-globalscale-region"), Some(HOME));
    }

    home.set_mode(Mode::Refuse).await;
    let status = until_home_ejected(&sidecar).await;
    let reason = check_json(&status);

    let page = get(sidecar.admin_addr(), "/status").await;
    assert_eq!(page.status, 200);
    let content_type = page.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_page_says(&page.text(), reason, "GET /status");

    let url = format!("http://{}/status", sidecar.admin_addr());
    let dom = chromium(&["--dump-dom".to_owned()], &url).await;
    assert_page_says(
        &String::from_utf8_lossy(&dom.stdout),
        reason,
        "Chromium's DOM",
    );
    let png = screenshot(&url).await;
    println!("the status page, rendered: {}", png.display());

    sidecar.stop().await;
}
