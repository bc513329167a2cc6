//! Hands what a region received to `verify_sigv4.py`, which recomputes every signature with
//! botocore: an implementation that shares no code with the sidecar's signer.

use std::process::Command;

use super::{
    CLIENT_ACCESS_KEY_ID, CLIENT_SECRET, Recorded, SIDECAR_ACCESS_KEY_ID, SIDECAR_SECRET, base64,
    python, repo_root,
};

/// The keys a region should find in a signature.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keys<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    /// The `X-Amz-Security-Token` that must be sent; `None`: none may be.
    pub(crate) session_token: Option<&'a str>,
}

/// Asserts that every request in `records` carries a valid SigV4 signature by the sidecar's keys
/// for `region` and service `dynamodb`, with `session_token` as `X-Amz-Security-Token` (or none),
/// and no trace of the client's keys. Panics with botocore's findings otherwise; panics too when
/// `records` is empty, so a test cannot pass by checking nothing.
pub(crate) fn verify_signatures(records: &[Recorded], region: &str, session_token: Option<&str>) {
    assert!(!records.is_empty(), "no recorded requests to verify");
    let keys = Keys {
        access_key_id: SIDECAR_ACCESS_KEY_ID,
        secret_access_key: SIDECAR_SECRET,
        session_token,
    };
    let forbidden = [CLIENT_ACCESS_KEY_ID, CLIENT_SECRET];
    if let Err(findings) = check_signatures(records, region, keys, &forbidden) {
        panic!("botocore rejected signatures for {region}:\n{findings}");
    }
}

/// Runs the botocore verifier: `Ok` with its report when every record verifies, `Err` with its
/// findings otherwise (an empty `records` is an error). Panics when the verifier cannot run.
pub(crate) fn check_signatures(
    records: &[Recorded],
    region: &str,
    keys: Keys<'_>,
    forbidden: &[&str],
) -> Result<String, String> {
    let records: Vec<_> = records
        .iter()
        .map(|record| {
            let host = record
                .header("host")
                .unwrap_or_else(|| panic!("a {} request arrived without Host", record.method));
            serde_json::json!({
                "method": record.method,
                "url": format!("http://{host}{}", record.uri),
                "headers": record.headers,
                "body_b64": base64(&record.body),
                "region": region,
            })
        })
        .collect();
    let spec = serde_json::json!({
        "access_key_id": keys.access_key_id,
        "secret_access_key": keys.secret_access_key,
        "session_token": keys.session_token,
        "forbidden": forbidden,
        "records": records,
    });
    let file = tempfile::Builder::new()
        .prefix("globalscale-sigv4-")
        .suffix(".json")
        .tempfile()
        .expect("temp file for the verifier");
    std::fs::write(file.path(), spec.to_string()).expect("write verifier input");

    let python = python();
    let script = repo_root().join("tests/support/verify_sigv4.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (set $PYTHON to a Python with botocore): {e}",
                python.display()
            )
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => Ok(report),
        Some(1) => Err(report),
        _ => panic!(
            "the botocore verifier could not run with {} ({}): {report}",
            python.display(),
            out.status
        ),
    }
}
