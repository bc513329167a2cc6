//! A boto3 script run against an endpoint, the way the Python tests run it: no AWS config
//! files, no instance metadata, one JSON line of results on stdout.

use super::python;

/// Runs `script` with the endpoint as its first argument; its JSON output. Panics with the
/// script's output when it fails, and says so when boto3 cannot be imported (exit code 2).
pub(crate) async fn run_boto3(script: &str, endpoint: &str) -> serde_json::Value {
    let python = python();
    let out = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(endpoint)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(2),
        "boto3 is not importable with {} (deploy/local/ensure-venv boto3, or set $PYTHON): {stderr}",
        python.display()
    );
    assert!(
        out.status.success(),
        "boto3 script failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("boto3 script output is not JSON ({e}): {stdout}"))
}
