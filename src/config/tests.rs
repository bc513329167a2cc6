use super::*;

const MINIMAL: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"
"#;

fn err(text: &str) -> String {
    Config::from_toml_str(text).unwrap_err().to_string()
}

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8000".parse().unwrap());
    assert_eq!(c.admin_listen, "127.0.0.1:9000".parse().unwrap());
    assert!(matches!(c.credentials, CredentialsConfig::DefaultChain));
    assert_eq!(c.routing.policy, RoutingPolicy::Ordered);
    assert_eq!(c.timeouts.attempt, Duration::from_secs(1));
    assert_eq!(c.routing.retry_budget, 500);
    assert_eq!(c.tls_roots, TlsRoots::Both);
}

#[test]
fn tls_roots_are_a_choice_of_three() {
    for (text, roots) in [
        ("webpki", TlsRoots::Webpki),
        ("system", TlsRoots::System),
        ("both", TlsRoots::Both),
    ] {
        let c = Config::from_toml_str(&format!("{MINIMAL}\n[upstream]\ntls_roots = \"{text}\"\n"))
            .unwrap();
        assert_eq!(c.tls_roots, roots);
    }
    let msg = err(&format!("{MINIMAL}\n[upstream]\ntls_roots = \"none\"\n"));
    assert!(msg.contains("upstream.tls_roots"), "{msg}");
}

#[test]
fn the_shipped_local_config_is_valid() {
    let c = Config::from_toml_str(include_str!("../../config/local.toml")).unwrap();
    assert_eq!(c.regions.len(), 3);
    assert_eq!(c.regions[0].name, "us-east-1");
    assert_eq!(
        c.table("GlobalCatalog").unwrap().sort_key.as_deref(),
        Some("Category")
    );
    assert!(c.table("GlobalCatalog").unwrap().audit);
}

#[test]
fn a_relative_spool_dir_is_the_config_file_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.toml");
    let text = format!(
        "{MINIMAL}\n[[tables]]\nname = \"T1x\"\naudit = true\n[audit]\ntable = \"A\"\nspool_dir = \"spool\"\n"
    );
    std::fs::write(&path, text).unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.audit.unwrap().spool_dir, dir.path().join("spool"));
}

#[test]
fn the_shipped_kubernetes_config_is_valid() {
    let c = Config::from_toml_str(include_str!("../../deploy/k8s/base/globalscale.toml")).unwrap();
    assert!(matches!(c.credentials, CredentialsConfig::DefaultChain));
    assert!(
        c.regions
            .iter()
            .all(|r| r.endpoint.scheme_str() == Some("https"))
    );
    assert!(c.audit.unwrap().max_spool_bytes < 256 * 1024 * 1024);
}

#[test]
fn region_without_endpoint_goes_to_aws_over_tls() {
    let c = Config::from_toml_str("[[regions]]\nname = \"eu-central-1\"\n").unwrap();
    assert_eq!(
        c.regions[0].endpoint.to_string(),
        "https://dynamodb.eu-central-1.amazonaws.com/"
    );
}

#[test]
fn unknown_keys_are_named() {
    let msg = err(&format!("{MINIMAL}\nlisten_port = 1\n"));
    assert!(msg.contains("listen_port"), "{msg}");
    let msg = err("[[regions]]\nname = \"us-east-1\"\nendpiont = \"x\"\n");
    assert!(msg.contains("endpiont"), "{msg}");
}

#[test]
fn wrong_types_are_named_by_their_path() {
    let msg = err("listen = 5\n[[regions]]\nname = \"us-east-1\"\n");
    assert!(msg.contains("`listen`") && msg.contains("line 1"), "{msg}");
    let msg = err("[[regions]]\nname = \"us-east-1\"\n[routing]\nmax_attempts = \"x\"\n");
    assert!(msg.contains("`routing.max_attempts`"), "{msg}");
    let msg = err("[[regions]]\nname = \"us-east-1\"\n[[tables]]\nname = \"Tab\"\nsort = \"x\"\n");
    assert!(msg.contains("tables[0]") && msg.contains("sort"), "{msg}");
}

#[test]
fn bad_values_are_named() {
    let msg = err(&format!("listen = \"nowhere\"\n{MINIMAL}"));
    assert!(msg.contains("`listen`"), "{msg}");
    let msg = err("[[regions]]\nname = \"us-east-1\"\nendpoint = \"ftp://x\"\n");
    assert!(msg.contains("regions[0].endpoint"), "{msg}");
    let msg = err(
        "[[regions]]\nname = \"us-east-1\"\nendpoint = \"http://dynamodb.us-east-1.amazonaws.com\"\n",
    );
    assert!(msg.contains("https"), "{msg}");
    let msg = err(&format!("{MINIMAL}\n[routing]\npolicy = \"random\"\n"));
    assert!(msg.contains("routing.policy"), "{msg}");
    let msg = err(&format!("{MINIMAL}\n[routing]\nretry_budget = 2000000\n"));
    assert!(msg.contains("routing.retry_budget"), "{msg}");
    let c = Config::from_toml_str(&format!("{MINIMAL}\n[routing]\nretry_budget = 0\n")).unwrap();
    assert_eq!(c.routing.retry_budget, 0, "0 turns paid retries off");
    let msg = err(&format!("{MINIMAL}\n[[regions]]\nname = \"us-east-1\"\n"));
    assert!(msg.contains("listed twice"), "{msg}");
    assert!(err("").contains("`regions`"));
}

#[test]
fn key_prefixes_are_literal_text_and_the_home_region() {
    let table = |line: &str| {
        format!("{MINIMAL}\n[[tables]]\nname = \"T1x\"\npartition_key = \"k\"\n{line}\n")
    };
    let c = Config::from_toml_str(&table("key_prefix = \"{region}#\"")).unwrap();
    assert_eq!(c.tables[0].key_prefix.as_deref(), Some("{region}#"));
    Config::from_toml_str(&table("key_prefix = \"tenant-a#\"")).unwrap();
    for (line, says) in [
        ("key_prefix = \"\"", "is empty"),
        ("key_prefix = \"{tenant}#\"", "only placeholder"),
    ] {
        let msg = err(&table(line));
        assert!(
            msg.contains("tables[0].key_prefix") && msg.contains(says),
            "{msg}"
        );
    }
    let msg = err(&format!(
        "{MINIMAL}\n[[tables]]\nname = \"T1x\"\nkey_prefix = \"{{region}}#\"\n"
    ));
    assert!(msg.contains("tables[0].partition_key"), "{msg}");
}

#[test]
fn a_version_attribute_is_any_attribute_but_a_key() {
    let table = |line: &str| {
        format!("{MINIMAL}\n[[tables]]\nname = \"T1x\"\npartition_key = \"k\"\n{line}\n")
    };
    let c = Config::from_toml_str(&table("version_attribute = \"Version\"")).unwrap();
    assert_eq!(c.tables[0].version_attribute.as_deref(), Some("Version"));
    for (line, says) in [
        ("version_attribute = \"\"", "is empty"),
        ("version_attribute = \"k\"", "key attribute"),
        (
            "version_attribute = \"__globalscale_write\"",
            "own attribute",
        ),
    ] {
        let msg = err(&table(line));
        assert!(
            msg.contains("tables[0].version_attribute") && msg.contains(says),
            "{msg}"
        );
    }
}

#[test]
fn sigv4_clients_with_secrets_from_the_file_or_the_environment() {
    let text = format!(
        "{MINIMAL}\n[auth]\nmode = \"sigv4\"\n\
         [[clients]]\nname = \"app\"\naccess_key_id = \"AKIDAPP\"\nsecret_access_key = \"s1\"\n\
         tables = [\"GlobalCatalog\", \"Orders*\"]\n\
         [[clients]]\nname = \"batch-job\"\naccess_key_id = \"AKIDJOB\"\nsecret_access_key_env = \"JOB_SECRET\"\n"
    );
    let env = |name: &str| (name == "JOB_SECRET").then(|| "s2".to_owned());
    let c = Config::from_toml_with_env(&text, env).unwrap();
    assert_eq!(c.auth.mode, AuthMode::Sigv4);
    assert_eq!(c.auth.clients[1].secret_access_key, "s2");
    assert_eq!(
        c.auth.clients[0].tables.as_deref(),
        Some(&["GlobalCatalog".to_owned(), "Orders*".to_owned()][..])
    );
    assert!(
        !format!("{:?}", c.auth).contains("s1"),
        "secrets stay out of Debug"
    );
    let msg = Config::from_toml_with_env(&text, |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("clients[1].secret_access_key_env") && msg.contains("JOB_SECRET"),
        "{msg}"
    );
}

#[test]
fn auth_mistakes_name_their_key() {
    let client = "[[clients]]\nname = \"a\"\naccess_key_id = \"b\"\nsecret_access_key = \"c\"\n";
    for (snippet, key, says) in [
        ("[auth]\nmode = \"sigv4\"\n".to_owned(), "`clients`", "at least one"),
        (client.to_owned(), "`clients`", "only checked with"),
        ("[auth]\nmode = \"mtls\"\n".to_owned(), "auth.mode", "is not one of"),
        (
            format!("[auth]\nmode = \"sigv4\"\n{client}{client}"),
            "clients[1].name",
            "twice",
        ),
        (
            "[auth]\nmode = \"sigv4\"\n[[clients]]\nname = \"a b\"\naccess_key_id = \"b\"\nsecret_access_key = \"c\"\n".to_owned(),
            "clients[0].name",
            "letters",
        ),
        (
            "[auth]\nmode = \"sigv4\"\n[[clients]]\nname = \"a\"\naccess_key_id = \"b\"\n".to_owned(),
            "clients[0].secret_access_key",
            "is required",
        ),
        ("[limits]\nmax_in_flight = 0\n".to_owned(), "limits.max_in_flight", "at least 1"),
    ] {
        let msg = err(&format!("{MINIMAL}\n{snippet}"));
        assert!(msg.contains(key) && msg.contains(says), "{msg}");
    }
}

#[test]
fn without_authentication_the_api_stays_on_loopback_unless_told_otherwise() {
    let remote = format!("listen = \"0.0.0.0:8000\"\n{MINIMAL}");
    let msg = err(&remote);
    assert!(
        msg.contains("listen") && msg.contains("allow_unauthenticated_remote"),
        "{msg}"
    );
    Config::from_toml_str(&format!(
        "{remote}\n[auth]\nmode = \"none\"\nallow_unauthenticated_remote = true\n"
    ))
    .unwrap();
    let ipv6 = format!("listen = \"[::1]:8000\"\n{MINIMAL}");
    Config::from_toml_str(&ipv6).unwrap();
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.auth.mode, AuthMode::None);
    assert_eq!(c.limits.max_in_flight, 1024);
}

#[test]
fn ddb_regions_overrides_the_list_and_keeps_known_endpoints() {
    let text = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"
[[regions]]
name = "us-west-2"
endpoint = "http://127.0.0.1:8002"
"#;
    let env = |k: &str| {
        (k == "DDB_REGIONS").then(|| "us-west-2, eu-central-1=http://127.0.0.1:8003".to_owned())
    };
    let c = Config::from_toml_with_env(text, env).unwrap();
    let names: Vec<_> = c.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["us-west-2", "eu-central-1"]);
    assert_eq!(c.regions[0].endpoint.to_string(), "http://127.0.0.1:8002/");
    assert_eq!(c.regions[1].endpoint.to_string(), "http://127.0.0.1:8003/");
}

#[test]
fn listen_overrides_from_env() {
    let env = |k: &str| (k == "GLOBALSCALE_LISTEN").then(|| "127.0.0.1:18000".to_owned());
    let c = Config::from_toml_with_env(MINIMAL, env).unwrap();
    assert_eq!(c.listen, "127.0.0.1:18000".parse().unwrap());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let c = Config::from_toml_str(&format!(
        "{MINIMAL}\n[upstream_credentials]\naccess_key_id = \"AKID\"\nsecret_access_key = \"s3cr3t\"\n"
    ))
    .unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
}

#[test]
fn server_section_defaults_and_values() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.server.header_timeout, Duration::from_secs(30));
    assert_eq!(c.server.idle_timeout, Duration::from_mins(1));
    assert_eq!(
        c.server.max_connections, None,
        "derived from the descriptor limit"
    );
    let c = Config::from_toml_str(&format!(
        "{MINIMAL}\n[server]\nheader_timeout_ms = 250\nidle_timeout_ms = 500\nmax_connections = 32\n"
    ))
    .unwrap();
    assert_eq!(c.server.header_timeout, Duration::from_millis(250));
    assert_eq!(c.server.idle_timeout, Duration::from_millis(500));
    assert_eq!(c.server.max_connections, Some(32));
}

#[test]
fn the_body_memory_budget_defaults_for_a_sidecar_and_fits_one_largest_request() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.server.max_body_memory_bytes, 64 << 20);
    let c = Config::from_toml_str(&format!(
        "{MINIMAL}\n[server]\nmax_body_memory_bytes = 33554432\n"
    ))
    .unwrap();
    assert_eq!(c.server.max_body_memory_bytes, 32 << 20);
    for (bytes, says) in [
        ("0", "at least 16777216"),
        ("16777215", "at least 16777216"),
        ("68719476737", "at most"),
        ("-1", "server.max_body_memory_bytes"),
    ] {
        let msg = err(&format!(
            "{MINIMAL}\n[server]\nmax_body_memory_bytes = {bytes}\n"
        ));
        assert!(
            msg.contains("server.max_body_memory_bytes"),
            "{bytes}: {msg}"
        );
        assert!(msg.contains(says), "{bytes}: {msg}");
    }
}

#[test]
fn upstream_idle_timeout_defaults_below_aws_idle_close() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.timeouts.upstream_idle, Duration::from_secs(50));
    let c =
        Config::from_toml_str(&format!("{MINIMAL}\n[upstream]\nidle_timeout_ms = 2000\n")).unwrap();
    assert_eq!(c.timeouts.upstream_idle, Duration::from_secs(2));
    for bad in ["0", "700000"] {
        let msg = err(&format!("{MINIMAL}\n[upstream]\nidle_timeout_ms = {bad}\n"));
        assert!(msg.contains("upstream.idle_timeout_ms"), "{bad}: {msg}");
    }
}

#[test]
fn bad_server_values_are_named() {
    for (snippet, key) in [
        ("header_timeout_ms = 0", "server.header_timeout_ms"),
        ("idle_timeout_ms = 700000", "server.idle_timeout_ms"),
        ("max_connections = 0", "server.max_connections"),
        ("max_connections = 2000000", "server.max_connections"),
        ("idle_timeout = 5", "idle_timeout"),
        ("header_timeout_ms = \"30s\"", "server.header_timeout_ms"),
    ] {
        let msg = err(&format!("{MINIMAL}\n[server]\n{snippet}\n"));
        assert!(msg.contains(key), "{snippet}: {msg}");
    }
}

#[test]
fn audit_needs_its_section_and_names_what_is_wrong() {
    let audit = "[audit]\ntable = \"Trail\"\nspool_dir = \"/var/spool\"\n";
    let audited = "[[tables]]\nname = \"T1x\"\naudit = true\n";
    let config = Config::from_toml_str(&format!("{MINIMAL}\n{audited}\n{audit}")).unwrap();
    let section = config.audit.unwrap();
    assert_eq!(section.table, "Trail");
    assert_eq!(section.images, AuditImages::New);
    assert_eq!(section.max_spool_bytes, 1 << 30);
    assert!(config.tables[0].audit);
    for (snippet, key, says) in [
        (
            audited.to_owned(),
            "tables[0].audit",
            "needs an [audit] section",
        ),
        (
            format!("{audited}\n[audit]\nspool_dir = \"/s\"\n"),
            "audit.table",
            "is required",
        ),
        (
            format!("{audited}\n[audit]\ntable = \"Trail\"\n"),
            "audit.spool_dir",
            "is required",
        ),
        (
            format!("{audit}images = \"all\"\n"),
            "audit.images",
            "is not one of",
        ),
        (
            format!("{audit}mode = \"sync\"\n"),
            "audit.mode",
            "is not one of",
        ),
        (
            format!("{audit}max_spool_bytes = 10\n"),
            "audit.max_spool_bytes",
            "at least",
        ),
        (
            format!("[[tables]]\nname = \"Trail\"\n\n{audit}"),
            "tables[0].name",
            "is the audit table",
        ),
    ] {
        let msg = err(&format!("{MINIMAL}\n{snippet}"));
        assert!(msg.contains(key) && msg.contains(says), "{msg}");
    }
}

#[test]
fn streams_endpoints_default_beside_the_endpoint() {
    let text = r#"
[[regions]]
name = "us-east-1"

[[regions]]
name = "eu-central-1"
endpoint = "https://dynamodb.eu-central-1.amazonaws.com"

[[regions]]
name = "local"
endpoint = "http://127.0.0.1:8001"

[[regions]]
name = "us-west-2"
endpoint = "http://127.0.0.1:8002"
streams_endpoint = "http://127.0.0.1:9002"
"#;
    let c = Config::from_toml_str(text).unwrap();
    let streams: Vec<String> = c
        .regions
        .iter()
        .map(|r| r.streams_endpoint.to_string())
        .collect();
    assert_eq!(
        streams,
        [
            "https://streams.dynamodb.us-east-1.amazonaws.com/",
            "https://streams.dynamodb.eu-central-1.amazonaws.com/",
            "http://127.0.0.1:8001/",
            "http://127.0.0.1:9002/",
        ]
    );
    let bad = err(&format!(
        "{MINIMAL}streams_endpoint = \"ftp://streams.example\"\n"
    ));
    assert!(bad.contains("regions[0].streams_endpoint"), "{bad}");
    // An override that moves the endpoint takes the default beside the new one.
    let moved = Config::from_toml_with_env(text, |k| {
        (k == "DDB_REGIONS").then(|| "us-west-2=http://127.0.0.1:7002".to_owned())
    })
    .unwrap();
    assert_eq!(
        moved.regions[0].streams_endpoint.to_string(),
        "http://127.0.0.1:7002/"
    );
}

#[test]
fn cors_origins_are_none_by_default() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.cors, crate::server::cors::AllowedOrigins::default());
    let c =
        Config::from_toml_str(&format!("{MINIMAL}\n[cors]\nallowed_origins = [\"*\"]\n")).unwrap();
    assert!(c.cors.any);
    let bad = err(&format!("{MINIMAL}\n[cors]\nallowed_origin = []\n"));
    assert!(bad.contains("allowed_origin"), "{bad}");
}
