//! What a new user runs first, run here so it cannot rot: the smoke examples of `examples/` (plain
//! boto3, the AWS CLI, the JavaScript SDK v3) and `scripts/aws-load --dry-run`, each against the
//! local stack as `deploy/local/up` builds it: three regions, the tables made by
//! `deploy/local/localctl.py create-tables`, and the `globalscale` binary on the shipped
//! `config/local.toml` (its regions moved with `DDB_REGIONS`, its listeners with
//! `GLOBALSCALE_LISTEN`, the only changes). The endpoints reach the scripts through the same
//! environment variables a user sets: the sidecar's, and the home region's, where they read the
//! audit table (the sidecar refuses it) with credentials of their own, as an auditor would.

#![allow(clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::{
    DynamoLocal, SidecarProcess, aws_cli, check_js_installed, isolate_from_aws_settings, node,
    python, repo_root, within,
};

const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-central-1"];

/// The local stack: regions, tables, and the binary on `config/local.toml`.
struct Stack {
    ddb: DynamoLocal,
    sidecar: SidecarProcess,
    _spool: tempfile::TempDir,
}

async fn local_stack() -> Stack {
    let ddb = DynamoLocal::cluster(REGIONS.len()).await;
    let tables = run(
        tokio::process::Command::new(python())
            .arg(repo_root().join("deploy/local/localctl.py"))
            .arg("create-tables")
            .arg(ddb.endpoint(0)),
        "localctl.py create-tables",
    )
    .await;
    assert_success("localctl.py create-tables", &tables);

    let spool = tempfile::tempdir().expect("spool dir");
    let shipped =
        std::fs::read_to_string(repo_root().join("config/local.toml")).expect("config/local.toml");
    // The spool is the one path the file gives relative to itself (.tools/ of the checkout); a
    // test keeps its own.
    let spool_line = shipped
        .lines()
        .find(|line| line.starts_with("spool_dir"))
        .expect("config/local.toml has a spool_dir");
    let text = shipped.replace(
        spool_line,
        &format!("spool_dir = {:?}", spool.path().display().to_string()),
    );
    let regions: Vec<String> = REGIONS
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name}={}", ddb.endpoint(i)))
        .collect();
    let sidecar =
        SidecarProcess::start_with_config_text(&text, &[("DDB_REGIONS", &regions.join(","))]).await;
    Stack {
        ddb,
        sidecar,
        _spool: spool,
    }
}

async fn run(command: &mut tokio::process::Command, what: &str) -> Output {
    isolate_from_aws_settings(command);
    output(command, what).await
}

/// Runs `command` as it is set up, AWS settings and all.
async fn output(command: &mut tokio::process::Command, what: &str) -> Output {
    command.kill_on_drop(true);
    within(what, command.output())
        .await
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} exited with {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs one smoke example against the stack; its stdout, checked: it put `test123` at
/// `version`, showed the audit record of that version, and said OK.
async fn smoke(name: &str, command: &mut tokio::process::Command, stack: &Stack, version: u32) {
    command
        .current_dir(repo_root())
        .env("GLOBALSCALE_ENDPOINT", stack.sidecar.endpoint())
        .env("GLOBALSCALE_AUDIT_ENDPOINT", stack.ddb.endpoint(0));
    isolate_from_aws_settings(command);
    // The auditor's own keys, the default credential chain's first link (set after the
    // isolation, which removes them): the audit table is read with them, straight from the
    // home region.
    command
        .env("AWS_ACCESS_KEY_ID", "auditor")
        .env("AWS_SECRET_ACCESS_KEY", "auditor");
    let output = output(command, name).await;
    assert_success(name, &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    for expected in [
        format!("version: {version}\n"),
        "audit record: ItemKey GlobalCatalog#us-east-1#test123#Demo, EventId ".to_owned(),
        "PutItem by app in us-east-1 at ".to_owned(),
        format!(", Version {version}, Outcome accepted\n"),
        format!("{name}: OK\n"),
    ] {
        assert!(
            stdout.contains(&expected),
            "{name} did not print {expected:?}:\n{stdout}"
        );
    }
}

/// The three smoke examples one after another on the same item: each reads the version the one
/// before it left and writes the next, so the versions go 1, 2, 3 across three languages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_examples_in_boto3_the_cli_and_javascript() {
    let stack = local_stack().await;
    let examples = repo_root().join("examples");
    check_js_installed(&examples);
    // smoke.sh finds the CLI in .tools/venv, else on PATH: put the one the tests use first.
    let aws = aws_cli();
    let path = std::env::join_paths(
        std::iter::once(aws.parent().expect("aws's directory").to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )
    .expect("PATH");

    let mut python_example = tokio::process::Command::new(python());
    python_example.arg(examples.join("smoke.py"));
    smoke("smoke.py", &mut python_example, &stack, 1).await;

    let mut cli_example = tokio::process::Command::new("bash");
    cli_example
        .arg(examples.join("smoke.sh"))
        .env("PATH", &path);
    smoke("smoke.sh", &mut cli_example, &stack, 2).await;

    let mut js_example = tokio::process::Command::new(node());
    js_example.arg(examples.join("smoke.mjs"));
    smoke("smoke.mjs", &mut js_example, &stack, 3).await;
}

/// `scripts/aws-load --dry-run`, as the AWS workflow runs it but against the local regions:
/// every operation measured straight to every region and through the sidecar, the sidecar's
/// added latency, no error, and the Markdown report where the job summary would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_load_dry_run_reports_every_region_and_the_sidecar() {
    let stack = local_stack().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (json_path, summary_path) = (out.path().join("load.json"), out.path().join("summary.md"));
    let mut command = tokio::process::Command::new(python());
    command
        .arg(repo_root().join("scripts/aws-load"))
        .args(["--dry-run", "--ops", "5", "--concurrency", "2"])
        .arg("--sidecar")
        .arg(stack.sidecar.endpoint())
        .arg("--json")
        .arg(&json_path)
        .arg("--summary")
        .arg(&summary_path)
        .env_remove("GITHUB_STEP_SUMMARY");
    for (i, name) in REGIONS.iter().enumerate() {
        command
            .arg("--region")
            .arg(format!("{name}={}", stack.ddb.endpoint(i)));
    }
    let output = run(&mut command, "scripts/aws-load --dry-run").await;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert_success("scripts/aws-load --dry-run", &output);

    let figures: Value = serde_json::from_str(&read(&json_path)).expect("aws-load JSON");
    assert_eq!(figures["errors"], serde_json::json!({}), "{figures:#}");
    let rows = figures["rows"].as_array().expect("rows");
    for operation in ["PutItem", "Query"] {
        let measured: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r["operation"] == operation)
            .map(|r| {
                assert_eq!(r["calls"], 10, "5 calls by each of 2 workers: {r}");
                for figure in ["per_second", "p50_ms", "p95_ms"] {
                    assert!(r[figure].as_f64().is_some_and(|v| v > 0.0), "{figure}: {r}");
                }
                (
                    r["path"].as_str().expect("path"),
                    r["region"].as_str().expect("region"),
                )
            })
            .collect();
        let mut expected: Vec<(&str, &str)> =
            REGIONS.iter().map(|region| ("direct", *region)).collect();
        // Home is healthy: the sidecar served everything there.
        expected.push(("sidecar", "us-east-1"));
        assert_eq!(measured, expected, "{operation} rows");
    }
    let added = figures["added"].as_array().expect("added");
    assert_eq!(
        added.len(),
        2,
        "the sidecar's added latency per operation: {added:?}"
    );
    let summary = read(&summary_path);
    for expected in [
        "## GlobalScale load run (dry run, local regions)",
        "| PutItem | sidecar | us-east-1 | 10 |",
        "| Query | direct | eu-central-1 | 10 |",
        "Added by the sidecar",
        "Errors: 0.",
    ] {
        assert!(
            summary.contains(expected),
            "summary lacks {expected:?}:\n{summary}"
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
