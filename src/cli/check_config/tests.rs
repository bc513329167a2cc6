use serde_json::{Value, json};

use super::*;

/// The shipped local config with the regions moved as an overlay moves them.
fn local_with_regions(regions: &str) -> Config {
    let env = |name: &str| (name == "DDB_REGIONS").then(|| regions.to_owned());
    Config::from_toml_with_env(include_str!("../../../config/local.toml"), env).unwrap()
}

fn printed(config: &Config) -> Value {
    let mut out = Vec::new();
    print(config, &mut out).unwrap();
    assert_eq!(
        out.last(),
        Some(&b'\n'),
        "one document, ending in a newline"
    );
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn the_home_region_is_the_first_after_the_override_and_resolves_the_prefix() {
    let config = local_with_regions("eu-central-1,us-east-1,us-west-2");
    let s = summary(&config);
    assert_eq!(s.home_region, "eu-central-1");
    let names: Vec<&str> = s.regions.iter().map(|r| r.name).collect();
    assert_eq!(names, ["eu-central-1", "us-east-1", "us-west-2"]);
    let table = &s.tables[0];
    assert_eq!(table.name, "GlobalCatalog");
    assert_eq!(table.key_prefix.as_deref(), Some("eu-central-1#"));
    assert_eq!(table.key_prefix_template, Some("{region}#"));
    assert_eq!(table.version_attribute, Some("Version"));
    assert!(table.audit);
}

#[test]
fn a_bare_region_name_keeps_the_file_s_endpoint_and_a_new_one_goes_to_aws() {
    let config = local_with_regions("us-west-2,ap-south-1,us-east-1");
    let regions = summary(&config).regions;
    assert_eq!(regions[0].endpoint, "http://127.0.0.1:8002/");
    assert!(regions[0].custom_endpoint);
    assert_eq!(
        regions[1].endpoint,
        "https://dynamodb.ap-south-1.amazonaws.com/"
    );
    assert!(!regions[1].custom_endpoint);
    assert!(regions[2].custom_endpoint);
}

#[test]
fn the_json_names_every_promise() {
    let config = local_with_regions("us-east-1,us-west-2,eu-central-1");
    let v = printed(&config);
    assert_eq!(v["home_region"], "us-east-1");
    assert_eq!(
        v["regions"][1],
        json!({"name": "us-west-2", "endpoint": "http://127.0.0.1:8002/", "custom_endpoint": true})
    );
    assert_eq!(
        v["tables"][0],
        json!({
            "name": "GlobalCatalog",
            "partition_key": "ItemID",
            "sort_key": "Category",
            "key_prefix": "us-east-1#",
            "key_prefix_template": "{region}#",
            "version_attribute": "Version",
            "audit": true,
        })
    );
    assert_eq!(v["audit"]["table"], "GlobalCatalog-audit");
    assert_eq!(v["audit"]["mode"], "spooled");
    assert_eq!(v["audit"]["images"], "new_and_old");
    assert_eq!(v["audit"]["max_spool_bytes"], 1 << 30);
    assert_eq!(
        v["routing"],
        json!({"policy": "ordered", "write_failover": "auto"})
    );
    assert_eq!(
        v["auth"],
        json!({"mode": "none", "clients": [], "admin_actions": false})
    );
    assert_eq!(v["upstream_credentials"], "static");
    assert_eq!(v["listen"], "127.0.0.1:8000");
    assert_eq!(v["admin_listen"], "127.0.0.1:9000");
}

#[test]
fn a_table_without_promises_says_so() {
    let config = Config::from_toml_str(
        "[[regions]]\nname = \"us-east-1\"\n[[tables]]\nname = \"Plain\"\n[routing]\npolicy = \"latency\"\nwrite_failover = \"manual\"\n",
    )
    .unwrap();
    let v = printed(&config);
    assert_eq!(
        v["tables"][0],
        json!({
            "name": "Plain",
            "partition_key": null,
            "sort_key": null,
            "key_prefix": null,
            "key_prefix_template": null,
            "version_attribute": null,
            "audit": false,
        })
    );
    assert_eq!(v["audit"], Value::Null);
    assert_eq!(
        v["routing"],
        json!({"policy": "latency", "write_failover": "manual"})
    );
    assert_eq!(v["upstream_credentials"], "default_chain");
    assert_eq!(v["regions"][0]["custom_endpoint"], false);
}

#[test]
fn atomic_audit_and_sigv4_clients_are_named_without_their_secrets() {
    let text = "[[regions]]\nname = \"us-east-1\"\n\
        [[tables]]\nname = \"Orders\"\naudit = true\n\
        [audit]\ntable = \"Orders-audit\"\nspool_dir = \"/spool\"\nmode = \"atomic\"\nimages = \"none\"\n\
        [auth]\nmode = \"sigv4\"\n\
        [[clients]]\nname = \"app\"\naccess_key_id = \"AKIDAPP\"\nsecret_access_key = \"app-secret\"\n\
        [admin]\ntoken = \"an-admin-token-of-length\"\n";
    let config = Config::from_toml_str(text).unwrap();
    let v = printed(&config);
    assert_eq!(
        v["audit"],
        json!({
            "table": "Orders-audit",
            "mode": "atomic",
            "spool_dir": "/spool",
            "max_spool_bytes": 1 << 30,
            "images": "none",
        })
    );
    assert_eq!(
        v["auth"],
        json!({"mode": "sigv4", "clients": ["app"], "admin_actions": true})
    );
    let text = v.to_string();
    for secret in ["app-secret", "an-admin-token-of-length", "AKIDAPP"] {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
}
