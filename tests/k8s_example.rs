//! The Kubernetes example as each cluster would run it. The base and every overlay of
//! `deploy/k8s` are rendered with kustomize; the sidecar container's config file and
//! environment are taken from the rendered objects (the generated ConfigMap names, hashes and
//! all, resolved through the Deployment's own references), and the binary's `check-config`
//! runs on them. Every rendering must keep the promises the example exists to show: keys
//! prefixed with the cluster's home region, a version checked on every write, the audit trail
//! on with its spool on a volume of the sidecar, and the home region the same in the region
//! order, `AWS_REGION` and the overlay's name. A removed promise fails here.
//!
//! Needs `kustomize`, or `kubectl` (which includes it), on PATH, as `scripts/check-infra`
//! does; without either the test fails.

#![allow(clippy::expect_used)]

#[path = "k8s_example/rendered.rs"]
mod rendered;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use globalscale::audit::spool::DEFAULT_SEGMENT_BYTES;
use globalscale::server::DRAIN_TIMEOUT;
use rendered::{Container, Rendered, mount_holding, parse, render};
use serde_json::Value;

const SIDECAR: &str = "globalscale";
const APP: &str = "app";
const TABLE: &str = "GlobalCatalog";
/// The replica regions of the global table, sorted.
const REGIONS: [&str; 3] = ["eu-central-1", "us-east-1", "us-west-2"];
/// The base renders on its own as us-east-1's (its kustomization.yaml says so).
const BASE_HOME: &str = "us-east-1";
const HOME_LABEL: &str = "globalscale/home-region";
/// Kubernetes' default when a pod does not say.
const DEFAULT_GRACE_SECONDS: u64 = 30;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s")
}

/// The base and each overlay, with the home region each must have: an overlay's is its
/// directory's name.
fn kustomizations() -> Vec<(PathBuf, String)> {
    let mut found = vec![(k8s_dir().join("base"), BASE_HOME.to_owned())];
    let overlays = std::fs::read_dir(k8s_dir().join("overlays")).expect("deploy/k8s/overlays");
    let mut overlays: Vec<PathBuf> = overlays
        .map(|entry| entry.expect("overlay entry").path())
        .filter(|path| path.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    assert!(!overlays.is_empty(), "deploy/k8s/overlays has no overlay");
    for dir in overlays {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        found.push((dir, name));
    }
    found
}

// --- the sidecar as the container would start it -----------------------------------------

/// The container's args with `--config` pointed at a copy of its config file in `dir`.
fn config_args(container: &Container, dir: &Path, rendered: &Rendered) -> Vec<String> {
    let mut args = container.args.clone();
    let at = args
        .iter()
        .position(|a| a == "--config")
        .unwrap_or_else(|| {
            panic!(
                "{}: no `--config PATH` in its args {args:?}",
                container.name
            )
        });
    let in_container = PathBuf::from(&args[at + 1]);
    let copy = dir.join(in_container.file_name().expect("a file name"));
    std::fs::write(&copy, rendered.file(container, &in_container)).expect("write the config");
    args[at + 1] = copy.display().to_string();
    args
}

/// `globalscale check-config` with the sidecar container's args, config file and environment,
/// and nothing else of this process's environment.
fn check_config(rendered: &Rendered, origin: &str) -> Value {
    let container = rendered.container(SIDECAR);
    assert!(
        container.command.is_empty(),
        "{origin}: the sidecar's command is replaced; the image's entrypoint is the binary"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_globalscale"))
        .args(config_args(container, dir.path(), rendered))
        .arg("check-config")
        .env_clear()
        .envs(rendered.env(container))
        .output()
        .expect("cannot run globalscale");
    assert!(
        output.status.success(),
        "{origin}: the sidecar's config is refused:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("check-config prints JSON")
}

// --- the promises ------------------------------------------------------------------------

/// Bytes of a Kubernetes quantity such as `256Mi`.
fn quantity_bytes(quantity: &str) -> u64 {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| quantity.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((quantity, 1));
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("quantity {quantity:?} is not an integer with a unit"));
    number * unit
}

/// Every promise the rendering breaks; empty when it keeps them all.
fn broken_promises(rendered: &Rendered, summary: &Value, home: &str) -> Vec<String> {
    let mut broken = Vec::new();
    let mut expect = |holds: bool, what: String| {
        if !holds {
            broken.push(what);
        }
    };
    let sidecar = rendered.container(SIDECAR);
    let env = rendered.env(sidecar);

    expect(
        summary["home_region"] == home,
        format!("home region is {}, not {home}", summary["home_region"]),
    );
    expect(
        env.get("AWS_REGION").map(String::as_str) == Some(home),
        format!(
            "the sidecar's AWS_REGION is {:?}, not {home}",
            env.get("AWS_REGION")
        ),
    );
    let label = rendered
        .deployment
        .spec
        .template
        .metadata
        .labels
        .get(HOME_LABEL);
    expect(
        label.is_none_or(|l| l == home),
        format!("the pods' {HOME_LABEL} label is {label:?}, not {home}"),
    );
    let regions = summary["regions"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<&str> = regions.iter().filter_map(|r| r["name"].as_str()).collect();
    names.sort_unstable();
    expect(
        names == REGIONS,
        format!("regions are {names:?}, not {REGIONS:?}"),
    );
    for region in &regions {
        expect(
            region["custom_endpoint"] == false,
            format!(
                "region {} goes to {}, not AWS",
                region["name"], region["endpoint"]
            ),
        );
    }

    let table = summary["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == TABLE))
        .cloned()
        .unwrap_or_default();
    let prefix = table["key_prefix"].as_str().unwrap_or("");
    expect(
        prefix.contains(home),
        format!(
            "{TABLE}'s key prefix is {}, not in {home}'s namespace",
            table["key_prefix"]
        ),
    );
    expect(
        table["version_attribute"].is_string(),
        format!("{TABLE} has no version_attribute"),
    );
    expect(table["audit"] == true, format!("{TABLE} is not audited"));

    let grace = rendered
        .pod()
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    expect(
        grace > DRAIN_TIMEOUT.as_secs(),
        format!(
            "terminationGracePeriodSeconds {grace} leaves the sidecar less than its {DRAIN_TIMEOUT:?} to drain and ship its spool"
        ),
    );
    broken.extend(spool_problems(rendered, sidecar, &summary["audit"]));
    broken
}

/// The spool must be on a writable volume of the sidecar that holds it whole: an emptyDir
/// evicts the pod at once past its sizeLimit, and the spool's files take `max_spool_bytes`
/// plus two segments (the active one and the standby, both pre-zeroed).
fn spool_problems(rendered: &Rendered, sidecar: &Container, audit: &Value) -> Vec<String> {
    let Some(spool) = audit["spool_dir"].as_str() else {
        return vec!["no [audit] section".to_owned()];
    };
    let Some(mount) = mount_holding(sidecar, Path::new(spool)) else {
        return vec![format!(
            "spool_dir {spool} is on no volume of the sidecar: the container's root filesystem is read-only"
        )];
    };
    let volume = rendered.volume(&mount.name);
    if mount.read_only || volume.config_map.is_some() {
        return vec![format!(
            "spool_dir {spool} is on the read-only volume {}",
            mount.name
        )];
    }
    if volume.persistent_volume_claim.is_some() {
        return Vec::new();
    }
    let Some(limit) = volume
        .empty_dir
        .as_ref()
        .and_then(|e| e.size_limit.as_deref())
    else {
        return vec![format!(
            "spool_dir {spool} is on volume {}, not an emptyDir with a sizeLimit",
            mount.name
        )];
    };
    let max = audit["max_spool_bytes"].as_u64().unwrap_or(u64::MAX);
    if max.saturating_add(2 * DEFAULT_SEGMENT_BYTES) > quantity_bytes(limit) {
        return vec![format!(
            "max_spool_bytes {max} plus two {DEFAULT_SEGMENT_BYTES}-byte segments passes the spool volume's sizeLimit {limit}"
        )];
    }
    Vec::new()
}

// --- the tests ---------------------------------------------------------------------------

#[test]
fn every_rendering_keeps_the_example_s_promises() {
    let mut failures = Vec::new();
    for (dir, home) in kustomizations() {
        let origin = dir
            .strip_prefix(k8s_dir())
            .expect("under deploy/k8s")
            .display()
            .to_string();
        let rendered = parse(&render(&dir), &origin);
        let summary = check_config(&rendered, &origin);
        let broken = broken_promises(&rendered, &summary, &home);
        println!("{origin}: home {home}, {} promise(s) broken", broken.len());
        failures.extend(
            broken
                .into_iter()
                .map(|b| format!("deploy/k8s/{origin}: {b}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The checks above fire: a rendering with every promise taken out breaks each of them.
#[test]
fn a_rendering_without_the_promises_is_caught() {
    let origin = "overlays/us-west-2";
    let mut rendered = parse(&render(&k8s_dir().join(origin)), origin);
    let sidecar = rendered.container(SIDECAR).clone();
    let config_path = PathBuf::from(
        &sidecar.args[sidecar
            .args
            .iter()
            .position(|a| a == "--config")
            .expect("--config")
            + 1],
    );
    let config = rendered.file(&sidecar, &config_path);
    let mut stripped = String::new();
    for line in config.lines() {
        let line = match line.split_once(" = ").map(|(key, _)| key) {
            Some("key_prefix" | "version_attribute") => continue,
            Some("audit") => "audit = false",
            Some("spool_dir") => "spool_dir = \"/tmp/spool\"",
            _ => line,
        };
        stripped.push_str(line);
        stripped.push('\n');
    }
    for data in rendered.config_maps.values_mut() {
        if data.contains_key(
            config_path
                .file_name()
                .expect("name")
                .to_str()
                .expect("UTF-8"),
        ) {
            data.insert("globalscale.toml".to_owned(), stripped.clone());
        }
        if data.contains_key("DDB_REGIONS") {
            data.insert("DDB_REGIONS".to_owned(), "us-east-1,us-west-2".to_owned());
        }
    }
    rendered
        .deployment
        .spec
        .template
        .spec
        .termination_grace_period_seconds = Some(20);

    let summary = check_config(&rendered, origin);
    let broken = broken_promises(&rendered, &summary, "us-west-2");
    for expected in [
        "home region is \"us-east-1\"",
        "regions are",
        "key prefix is null",
        "no version_attribute",
        "is not audited",
        "spool_dir /tmp/spool is on no volume",
        "terminationGracePeriodSeconds 20",
    ] {
        assert!(
            broken.iter().any(|b| b.contains(expected)),
            "no broken promise says {expected:?}: {broken:#?}"
        );
    }
}

/// The example application leaves the pod at once on SIGTERM, so the sidecar (stopped only
/// after it) gets the grace period to drain and ship its spool. As a container's PID 1 an
/// interpreter without a handler would ignore SIGTERM; here, as an ordinary process, it would
/// die of the signal: an exit status of 0 is the handler's.
#[test]
fn the_example_app_exits_at_once_on_sigterm() {
    let rendered = parse(&render(&k8s_dir().join("base")), "base");
    let app = rendered.container(APP);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = app.command.clone();
    for word in command.iter_mut().skip(1) {
        let path = Path::new(word.as_str());
        if path.is_absolute() {
            let copy = dir.path().join(path.file_name().expect("a file name"));
            std::fs::write(&copy, rendered.file(app, path)).expect("write the script");
            *word = copy.display().to_string();
        }
    }
    // A port of the test's own stands in for the sidecar's.
    let sidecar = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut env = rendered.env(app);
    env.insert(
        "AWS_ENDPOINT_URL_DYNAMODB".to_owned(),
        format!("http://{}", sidecar.local_addr().expect("addr")),
    );
    env.insert("STATE_DIR".to_owned(), dir.path().display().to_string());
    env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env_clear()
        .envs(env)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    // Its first round's line: the handler is installed before the loop starts.
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the app's output");
    assert!(
        line.contains("\"reachable\": true"),
        "the app's first round: {line:?}"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -TERM failed");
    let status = child.wait().expect("wait for the app");
    assert_eq!(
        status.code(),
        Some(0),
        "the app did not exit on SIGTERM by itself ({status}); as PID 1 it would ignore it"
    );
}
