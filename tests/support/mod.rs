//! The integration harness: small builders that start the pieces a test talks to and clean them
//! up when dropped, even when the test panics.
//!
//! - [`DynamoLocal`]: DynamoDB Local processes sharing one store (a global table without lag).
//! - [`RegionFixture`]: an in-process HTTP proxy in front of a region that records what it
//!   receives and can refuse, black-hole, fail, throttle or delay on demand.
//! - [`Sidecar`] (in-process) and [`SidecarProcess`] (the binary), configured by [`SidecarConfig`].
//! - [`sdk_client`] and [`RawRequest`]: an AWS SDK client and a hand-made request, both signed
//!   with client keys the regions never heard of; [`send_streaming`] for oversized bodies.
//! - [`verify_signatures`]: the independent botocore check of what a region received.
//! - [`Prometheus`] and [`promtool`]: the real ones, for the rules and dashboard in `deploy/`.
//! - [`flood`]: a client without credentials flooding a sidecar while a signed one works.
//!
//! Every address is `127.0.0.1` with a port chosen by the OS; nothing listens on a fixed port.

// Each test binary uses a different part of the harness; and a harness that cannot set up has
// nothing better to do than fail the test, with a message: so it panics instead of returning.
#![allow(dead_code, unused_imports, clippy::expect_used, clippy::unwrap_used)]

mod audit;
mod boto3;
mod browser;
mod client;
mod clients;
mod dynamo_local;
mod flood;
mod gray;
mod gray_writes;
mod load;
mod prometheus_server;
mod raw_http;
mod region_fixture;
mod sidecar;
mod sigv4_check;
mod streaming;
mod tls_region;

pub(crate) use audit::{
    AUDIT_TABLE, Record, audit_records, audit_section, audited, create_audit_table,
    delete_audit_table, put_status, run_command, s, spool_dir, wait_for_metric, wait_for_records,
};
pub(crate) use boto3::run_boto3;
pub(crate) use browser::{PageServer, bundle_browser_sdk};
pub(crate) use client::{
    create_global_catalog, create_keyed_table, create_table, item, keyed_table, put_request,
    sdk_client, sdk_client_with,
};
pub(crate) use clients::{
    ProcessClient, ScenarioEnv, ScenarioOutput, aws_cli, check_js_installed,
    isolate_from_aws_settings, node, run_js_script, run_process_client, scenario_definition,
    scenario_steps,
};
pub(crate) use dynamo_local::DynamoLocal;
pub(crate) use flood::{FloodPlan, FloodReport, flood, mib, rss};
pub(crate) use gray::{Counts, Phase, ReadLoad, Scenario, scenario, scenario_with_writers};
pub(crate) use load::{Load, LoadReport, metric, metric_sum, served_by};
pub(crate) use prometheus_server::{Prometheus, promtool};
pub(crate) use raw_http::{RawRequest, RawResponse, SendError, admin_request, get};
pub(crate) use region_fixture::{Mode, Recorded, RegionFixture};
pub(crate) use sidecar::{Sidecar, SidecarConfig, SidecarProcess};
pub(crate) use sigv4_check::{Keys, check_signatures, verify_signatures};
pub(crate) use streaming::{Framing, send_streaming};
pub(crate) use tls_region::TlsRegion;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The keys the application signs with; no region knows them.
pub(crate) const CLIENT_ACCESS_KEY_ID: &str = "AKIDCLIENT";
pub(crate) const CLIENT_SECRET: &str = "client-secret";
/// The keys the sidecar signs with (`[upstream_credentials]` in every test config).
pub(crate) const SIDECAR_ACCESS_KEY_ID: &str = "AKIDSIDECAR";
pub(crate) const SIDECAR_SECRET: &str = "sidecar-secret";
/// The managed table of every test config.
pub(crate) const TABLE: &str = "GlobalCatalog";
/// The `X-Amz-Target` prefix of DynamoDB's JSON protocol.
pub(crate) const TARGET_PREFIX: &str = "DynamoDB_20120810";

/// How long anything may take before a test calls it a hang rather than slowness.
pub(crate) const HANG: Duration = Duration::from_secs(90);

/// Awaits `future`, panicking with `what` if it takes longer than [`HANG`].
pub(crate) async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(HANG, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {HANG:?}, hung"))
}

/// The repository root (where `Cargo.toml` is).
pub(crate) fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of a folder of the repository (fixtures, a fuzz corpus), sorted by name.
pub(crate) fn fixture_files(relative: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(relative))
        .unwrap_or_else(|e| panic!("the fixture directory {relative}: {e}"))
        .map(|entry| entry.expect("a fixture file").path())
        .collect();
    files.sort();
    files
}

/// A port nothing listens on right now: bind `127.0.0.1:0`, note the port, release it.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// `127.0.0.1:port` for a port from [`free_port`].
pub(crate) fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// The Python that has botocore/boto3: `$PYTHON`, else the repo's `.tools/venv`, else `python3`.
pub(crate) fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("PYTHON") {
        return PathBuf::from(python);
    }
    let venv = repo_root().join(".tools/venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Standard base64 with padding (the verifier's record format); no crate in the tree offers it.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (input, expected) in cases {
        assert_eq!(base64(input.as_bytes()), expected, "base64({input:?})");
    }
}
