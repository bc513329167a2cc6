//! `globalscale check-config` as an operator runs it: the binary on the shipped
//! `config/local.toml` and on configs start-up refuses. Everything it needs is held by the
//! test (the listen address, a region's port, the spool's place), so the test sees that it
//! binds nothing, contacts no region and creates no spool while it answers.

#![allow(clippy::expect_used)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with only `env` for an environment, as a container gets only its own.
fn globalscale(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_globalscale"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("cannot run globalscale")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "check-config exited with {}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A listener nobody serves: a port that is taken, and where a connection would wait.
fn held_port() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

fn assert_never_contacted(listener: &TcpListener, what: &str) {
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("check-config connected to {what} (from {peer})"),
        Err(e) => panic!("accept on {what}: {e}"),
    }
}

/// The shipped file in a folder of the test's own, so that its relative spool lands there.
fn local_config_copy(root: &Path) -> PathBuf {
    let dir = root.join("config");
    std::fs::create_dir(&dir).expect("config dir");
    let path = dir.join("local.toml");
    std::fs::copy(repo_root().join("config/local.toml"), &path).expect("copy config/local.toml");
    path
}

#[test]
fn the_local_config_prints_its_promises_without_binding_contacting_or_creating() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = local_config_copy(root.path());
    let listen = held_port();
    let region = held_port();
    let listen_addr = listen.local_addr().expect("addr").to_string();
    let region_endpoint = format!("http://{}", region.local_addr().expect("addr"));
    let regions = format!("us-west-2={region_endpoint},us-east-1,eu-central-1");
    let output = globalscale(
        &config,
        &["check-config"],
        &[
            ("DDB_REGIONS", &regions),
            ("GLOBALSCALE_LISTEN", &listen_addr),
        ],
    );
    let v = stdout_json(&output);

    assert_eq!(v["home_region"], "us-west-2");
    let regions: Vec<(&str, &str, bool)> = v["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name"),
                r["endpoint"].as_str().expect("endpoint"),
                r["custom_endpoint"].as_bool().expect("custom_endpoint"),
            )
        })
        .collect();
    assert_eq!(
        regions,
        [
            ("us-west-2", format!("{region_endpoint}/").as_str(), true),
            ("us-east-1", "http://127.0.0.1:8001/", true),
            ("eu-central-1", "http://127.0.0.1:8003/", true),
        ]
    );
    let table = &v["tables"][0];
    assert_eq!(table["name"], "GlobalCatalog");
    assert_eq!(table["key_prefix"], "us-west-2#");
    assert_eq!(table["version_attribute"], "Version");
    assert_eq!(table["audit"], true);
    assert_eq!(v["audit"]["mode"], "spooled");
    assert_eq!(v["listen"], listen_addr.as_str());
    assert_eq!(v["admin_listen"], "127.0.0.1:9000");

    let spool = PathBuf::from(v["audit"]["spool_dir"].as_str().expect("spool_dir"));
    assert_eq!(
        spool,
        root.path().join("config/../.tools/local-state/audit-spool"),
        "a relative spool_dir is the config file's, as at start-up"
    );
    assert!(
        !root.path().join(".tools").exists(),
        "check-config created the spool's directory"
    );
    assert_never_contacted(&region, "the home region's endpoint");
}

#[test]
fn the_shipped_file_where_it_lies_is_valid() {
    let output = globalscale(
        &repo_root().join("config/local.toml"),
        &["check-config"],
        &[],
    );
    let v = stdout_json(&output);
    assert_eq!(v["home_region"], "us-east-1");
    assert_eq!(v["tables"][0]["key_prefix"], "us-east-1#");
}

/// What start-up says of a config, and that it did not start: exit 2, one line on stderr.
fn refused(config: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = globalscale(config, args, env);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?} on a bad config exited with {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout.is_empty(),
        "{args:?} printed a summary of a bad config"
    );
    String::from_utf8(output.stderr).expect("stderr is UTF-8")
}

#[test]
fn a_bad_config_exits_2_with_the_message_start_up_gives() {
    let root = tempfile::tempdir().expect("tempdir");
    let bad_file = root.path().join("bad.toml");
    // A prefix without the partition key's name: the sidecar could forward a request
    // unprefixed while it learned it.
    std::fs::write(
        &bad_file,
        "[[regions]]\nname = \"us-east-1\"\n[[tables]]\nname = \"GlobalCatalog\"\nkey_prefix = \"{region}#\"\n",
    )
    .expect("write bad.toml");
    let local = local_config_copy(root.path());
    let no_env: &[(&str, &str)] = &[];
    for (config, env, key) in [
        (bad_file.as_path(), no_env, "tables[0].partition_key"),
        (local.as_path(), &[("DDB_REGIONS", " , ")], "DDB_REGIONS"),
    ] {
        let checked = refused(config, &["check-config"], env);
        assert!(
            checked.starts_with("globalscale: invalid config key `") && checked.contains(key),
            "{checked}"
        );
        // Start-up refuses the same config before it binds or opens anything.
        let started = refused(config, &[], env);
        assert_eq!(checked, started, "check-config and start-up disagree");
    }
}

/// `--check-config` is the command under the flag's spelling: the same promises, the same
/// exit codes.
#[test]
fn the_flag_spelling_runs_the_same_check() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = local_config_copy(root.path());
    let env = [("DDB_REGIONS", "eu-central-1,us-east-1,us-west-2")];
    let command = stdout_json(&globalscale(&config, &["check-config"], &env));
    let flag = stdout_json(&globalscale(&config, &["--check-config"], &env));
    assert_eq!(flag, command);
    assert_eq!(flag["home_region"], "eu-central-1");

    let bad = root.path().join("bad.toml");
    std::fs::write(&bad, "listen = 8000\n").expect("write bad config");
    let refused = globalscale(&bad, &["--check-config"], &[]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
}
