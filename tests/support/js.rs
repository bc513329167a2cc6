//! The JavaScript SDK v3 as the sidecar's client: runs `tests/clients/js/scenario.mjs` under
//! `node` against an endpoint and a table, and reads back the one JSON line it prints per step.
//!
//! The SDK comes from `tests/clients/js/node_modules`, installed from the committed lock file by
//! `scripts/test`. A missing `node`, a missing install or one older than the lock panics with
//! what to run: like every other tool here, it is never a skip.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use super::{repo_root, within};

/// The package the scenario exercises; its installed version is checked against the lock.
const SDK_PACKAGE: &str = "@aws-sdk/client-dynamodb";

/// Environment variables that would move the SDK off its defaults or off the test's endpoint
/// if the developer's shell had them set; the scenario runs with none of them.
const SDK_SETTINGS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_DEFAULTS_MODE",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ENABLE_ENDPOINT_DISCOVERY",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
];

/// Runs the scenario against `endpoint` (the sidecar's `http://127.0.0.1:PORT`) on `table`,
/// with a fresh run id so its keys never meet another run's, plus `extra_env` (which wins over
/// the defaults here, including `RUN_ID`). Returns node's output, whatever its exit code.
pub(crate) async fn run_js_scenario(
    endpoint: &str,
    table: &str,
    extra_env: &[(&str, &str)],
) -> Output {
    let dir = js_client_dir();
    check_installed(&dir);
    let node = node();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut command = tokio::process::Command::new(&node);
    command
        .arg("scenario.mjs")
        .current_dir(&dir)
        .env("ENDPOINT", endpoint)
        .env("TABLE", table)
        .env("RUN_ID", &run_id)
        // No profile, no instance metadata: the script's own keys are the only ones in play.
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(extra_env.iter().copied())
        .kill_on_drop(true);
    for name in SDK_SETTINGS {
        if !extra_env.iter().any(|(set, _)| set == name) {
            command.env_remove(name);
        }
    }
    within("node scenario.mjs", command.output())
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()))
}

/// The scenario's step lines from a run that must have passed: panics with the whole output
/// unless node exited 0, every line is a JSON object with `"ok": true`, and the last one is
/// `"done"` (so a script that stopped early without an error still fails).
pub(crate) fn passed_steps(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert!(
        output.status.success(),
        "scenario.mjs exited with {}\n{shown}",
        output.status
    );
    let steps: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("scenario.mjs printed a line that is not JSON ({e}): {line}\n{shown}")
            })
        })
        .collect();
    for step in &steps {
        assert_eq!(step["ok"], true, "step not ok: {step}\n{shown}");
    }
    assert_eq!(
        steps.last().map(|step| &step["step"]),
        Some(&Value::from("done")),
        "scenario.mjs did not reach its last step\n{shown}"
    );
    steps
}

fn js_client_dir() -> PathBuf {
    repo_root().join("tests/clients/js")
}

/// `node` from `PATH`, as `scripts/test` and a developer's shell would find it.
fn node() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "node is not on PATH: the JavaScript SDK tests need Node.js 20 or newer \
                 (install it, then run scripts/test, which installs tests/clients/js)"
            )
        })
}

/// Panics unless the SDK is installed at the version the lock file pins: a stale install would
/// test another SDK than the one committed.
fn check_installed(dir: &Path) {
    let lock_path = dir.join("package-lock.json");
    let installed_path = dir
        .join("node_modules")
        .join(SDK_PACKAGE)
        .join("package.json");
    let installed = std::fs::read_to_string(&installed_path).unwrap_or_else(|e| {
        panic!(
            "{SDK_PACKAGE} is not installed ({}: {e}); run scripts/test, or \
             npm ci --prefix tests/clients/js",
            installed_path.display()
        )
    });
    let lock = std::fs::read_to_string(&lock_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lock_path.display()));
    let version = |text: &str, pointer: &str, what: &Path| -> String {
        let json: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", what.display()));
        json.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {pointer} in {}", what.display()))
            .to_owned()
    };
    let locked = version(
        &lock,
        &format!(
            "/packages/node_modules~1{}/version",
            SDK_PACKAGE.replace('/', "~1")
        ),
        &lock_path,
    );
    let have = version(&installed, "/version", &installed_path);
    assert_eq!(
        have, locked,
        "{SDK_PACKAGE} {have} is installed but the lock pins {locked}; run scripts/test, or \
         npm ci --prefix tests/clients/js"
    );
}
