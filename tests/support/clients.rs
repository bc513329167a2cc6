//! The clients of `tests/clients/` that run as processes: boto3 (`python/scenario.py`), the AWS
//! CLI (`cli/scenario.py`) and the JavaScript SDK v3 (`js/scenario.mjs`). Each runs the one
//! scenario of `tests/clients/scenario.json` against an endpoint and prints one JSON line per
//! step; at the pause point it prints `{"pause": NAME}` and waits for a line on stdin, so a test
//! can break something at a known moment (no sleeps) and let it go on.
//!
//! The tools come from what `scripts/test` installs: the venv's Python and AWS CLI
//! (`tests/clients/python/requirements.txt`), `node` on `PATH` and `tests/clients/js/node_modules`
//! (its `package-lock.json`). A missing one panics with what to run: never a skip.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{python, repo_root, within};

/// A client that runs as a process.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ProcessClient {
    Python,
    Cli,
    Js,
}

/// What every client is told (`tests/clients/scenario.json`, "about").
#[derive(Clone, Debug)]
pub(crate) struct ScenarioEnv {
    /// The sidecar.
    pub(crate) endpoint: String,
    /// A live region's own endpoint, to see what is stored there.
    pub(crate) region_endpoint: String,
    /// The sidecar's home region: the key prefix.
    pub(crate) home_region: String,
    /// Makes every key of the run unique.
    pub(crate) run_id: String,
    /// The pause point to stop at, if any.
    pub(crate) pause_at: Option<String>,
}

/// What a client process printed, and how it ended.
#[derive(Debug)]
pub(crate) struct ScenarioOutput {
    pub(crate) steps: Vec<Value>,
    pub(crate) pauses: Vec<String>,
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ScenarioOutput {
    /// Both outputs, for a failure message.
    pub(crate) fn shown(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// How long one step line may take: the audit step alone may poll for 90 s.
const LINE_WAIT: Duration = Duration::from_mins(4);

/// Environment variables that would move an SDK off its defaults or off the test's endpoint if
/// the developer's shell had them set; the clients run with none of them.
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
    "AWS_PAGER",
    "AWS_CLI_AUTO_PROMPT",
];

/// Takes out of `command`'s environment what would move an SDK off its defaults or its
/// endpoint, and points it at no AWS config file and no instance metadata: a script's own
/// settings are the only ones in play.
pub(crate) fn isolate_from_aws_settings(command: &mut tokio::process::Command) {
    for name in SDK_SETTINGS {
        command.env_remove(name);
    }
    command
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// The scenario definition every client reads.
pub(crate) fn scenario_definition() -> Value {
    let path = repo_root().join("tests/clients/scenario.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The step names of the definition, in order.
pub(crate) fn scenario_steps(definition: &Value) -> Vec<String> {
    definition["steps"]
        .as_array()
        .expect("steps in scenario.json")
        .iter()
        .map(|s| s["name"].as_str().expect("step name").to_owned())
        .collect()
}

/// Runs `client` with `env`, calling `on_pause` at each pause line before letting it go on.
/// Returns what it printed, whatever its exit status; panics if it hangs.
pub(crate) async fn run_process_client(
    client: ProcessClient,
    env: &ScenarioEnv,
    on_pause: &mut dyn FnMut(&str),
) -> ScenarioOutput {
    let mut command = command(client);
    command
        .env("ENDPOINT", &env.endpoint)
        .env("REGION_ENDPOINT", &env.region_endpoint)
        .env("HOME_REGION", &env.home_region)
        .env("RUN_ID", &env.run_id)
        .env("PAUSE_AT", env.pause_at.as_deref().unwrap_or(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    isolate_from_aws_settings(&mut command);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {client:?} client: {e}"));
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text).await;
        text
    });
    let mut stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut output = ScenarioOutput {
        steps: Vec::new(),
        pauses: Vec::new(),
        status: None,
        stdout: String::new(),
        stderr: String::new(),
    };
    loop {
        let Ok(line) = tokio::time::timeout(LINE_WAIT, lines.next_line()).await else {
            let _ = child.start_kill();
            output.stderr = within("the client's stderr", stderr)
                .await
                .unwrap_or_default();
            panic!(
                "the {client:?} client printed nothing for {LINE_WAIT:?}: hung\n{}",
                output.shown()
            );
        };
        let Some(line) = line.unwrap_or_else(|e| panic!("reading the client's stdout: {e}")) else {
            break;
        };
        output.stdout.push_str(&line);
        output.stdout.push('\n');
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue; // judged below: every step line must be JSON
        };
        if let Some(point) = value.get("pause").and_then(Value::as_str) {
            output.pauses.push(point.to_owned());
            on_pause(point);
            let pipe = stdin.as_mut().expect("the client's stdin");
            pipe.write_all(b"go\n")
                .await
                .expect("write to the client's stdin");
            pipe.flush().await.expect("flush the client's stdin");
        } else {
            output.steps.push(value);
        }
    }
    drop(stdin);
    output.status = Some(
        within("the client's exit", child.wait())
            .await
            .expect("wait"),
    );
    output.stderr = within("the client's stderr", stderr)
        .await
        .unwrap_or_default();
    output
}

fn command(client: ProcessClient) -> tokio::process::Command {
    let clients = repo_root().join("tests/clients");
    match client {
        ProcessClient::Python => {
            let mut command = tokio::process::Command::new(python());
            command.arg(clients.join("python/scenario.py"));
            command
        }
        ProcessClient::Cli => {
            let mut command = tokio::process::Command::new(python());
            command
                .arg(clients.join("cli/scenario.py"))
                .env("AWS_CLI", aws_cli());
            command
        }
        ProcessClient::Js => {
            let dir = clients.join("js");
            check_js_installed(&dir);
            let mut command = tokio::process::Command::new(node());
            command.arg("scenario.mjs").current_dir(dir);
            command
        }
    }
}

/// The AWS CLI beside the Python the tests use (the venv's), else `aws` on `PATH`.
pub(crate) fn aws_cli() -> PathBuf {
    let python = python();
    if let Some(beside) = python.parent().map(|dir| dir.join("aws"))
        && beside.is_file()
    {
        return beside;
    }
    on_path("aws").unwrap_or_else(|| {
        panic!(
            "the AWS CLI is neither beside {} nor on PATH: run scripts/test, or \
             deploy/local/ensure-venv awscli",
            python.display()
        )
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `node` from `PATH`, as `scripts/test` and a developer's shell would find it.
pub(crate) fn node() -> PathBuf {
    on_path("node").unwrap_or_else(|| {
        panic!(
            "node is not on PATH: the JavaScript clients need Node.js 20 or newer \
             (install it, then run scripts/test, which installs tests/clients/js)"
        )
    })
}

/// The package the JavaScript clients use; its installed version is checked against the lock.
const SDK_PACKAGE: &str = "@aws-sdk/client-dynamodb";

/// Panics unless the SDK is installed in `dir` at the version its lock file pins: a stale
/// install would test another SDK than the one committed.
pub(crate) fn check_js_installed(dir: &Path) {
    let lock_path = dir.join("package-lock.json");
    let installed_path = dir
        .join("node_modules")
        .join(SDK_PACKAGE)
        .join("package.json");
    let shown = dir.strip_prefix(repo_root()).unwrap_or(dir).display();
    let installed = std::fs::read_to_string(&installed_path).unwrap_or_else(|e| {
        panic!(
            "{SDK_PACKAGE} is not installed ({}: {e}); run scripts/test, or npm ci --prefix {shown}",
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
         npm ci --prefix {shown}"
    );
}

/// Runs `tests/clients/js/<script>` under `node` with `env` (and none of the SDK settings of the
/// developer's shell); its last stdout line as JSON. Panics with its output unless it exits 0.
pub(crate) async fn run_js_script(script: &str, env: &[(&str, &str)]) -> Value {
    let dir = repo_root().join("tests/clients/js");
    check_js_installed(&dir);
    let mut command = tokio::process::Command::new(node());
    command.arg(script).current_dir(&dir).kill_on_drop(true);
    isolate_from_aws_settings(&mut command);
    command.envs(env.iter().copied());
    let out = within(script, command.output())
        .await
        .unwrap_or_else(|e| panic!("cannot run node {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} exited with {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("node {script} printed no JSON line ({e}):\n{stdout}\n{stderr}"))
}
