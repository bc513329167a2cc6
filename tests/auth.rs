//! Client authentication and access, through real clients: the Rust SDK, boto3, the AWS CLI
//! and the JavaScript SDK, signed with the right key, a wrong secret, an unknown key, a
//! session token and a clock ten minutes off; allow-lists inside batches, transactions,
//! PartiQL and listings; and what reached the region: only the sidecar's own signatures, and
//! nothing at all for a refused request.

#![allow(clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use aws_smithy_async::time::StaticTimeSource;
use support::{
    DynamoLocal, RawRequest, RegionFixture, Sidecar, SidecarConfig, TABLE, create_global_catalog,
    create_table, item, metric, put_request, run_boto3, run_js_script, sdk_client, sdk_client_with,
};

const CLIENTS: &str = r#"
[auth]
mode = "sigv4"

[[clients]]
name = "app"
access_key_id = "AKIDCLIENT"
secret_access_key = "client-secret"
tables = ["GlobalCatalog", "Orders*"]

[[clients]]
name = "ops"
access_key_id = "AKIDOPS"
secret_access_key = "ops-secret"

[[clients]]
name = "js"
access_key_id = "js-client"
secret_access_key = "js-secret"
"#;

struct Setup {
    ddb: DynamoLocal,
    region: RegionFixture,
    sidecar: Sidecar,
}

async fn setup() -> Setup {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    create_table(&direct, "Secrets").await;
    create_table(&direct, "Orders2026").await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let config = SidecarConfig::new()
        .region("us-east-1", &region.endpoint())
        .section(CLIENTS);
    let sidecar = Sidecar::start(&config).await;
    Setup {
        ddb,
        region,
        sidecar,
    }
}

/// A Rust SDK client with these keys, no retries, and its clock `offset` off.
fn client(setup: &Setup, key: &str, secret: &str, token: Option<&str>, ahead: i64) -> Client {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(
        key,
        secret,
        token.map(str::to_owned),
        None,
        "t",
    );
    let offset = Duration::from_secs(ahead.unsigned_abs());
    let now = if ahead >= 0 {
        SystemTime::now() + offset
    } else {
        SystemTime::now() - offset
    };
    sdk_client_with(&setup.sidecar.endpoint(), None, move |b| {
        let b = b
            .credentials_provider(credentials)
            .retry_config(RetryConfig::disabled());
        if ahead == 0 {
            b
        } else {
            b.time_source(StaticTimeSource::new(now))
        }
    })
}

/// The DynamoDB error name and message of a failed call, and its HTTP status.
fn refusal<E: std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<R, aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> (u16, String) {
    let err = result.expect_err("refused");
    let status = err.raw_response().map_or(0, |r| r.status().as_u16());
    let body = err
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    (status, body)
}

async fn put(client: &Client, id: &str) -> Result<(), String> {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item(id, "x", &[])))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// Requests the region received that mention `needle` in their body.
fn reached(setup: &Setup, needle: &str) -> usize {
    setup
        .region
        .recorded()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_signed_right_is_served_and_signed_wrong_never_reaches_a_region() {
    let setup = setup().await;
    put(
        &client(&setup, "AKIDCLIENT", "client-secret", None, 0),
        "good",
    )
    .await
    .expect("the right key is served");
    put(
        &client(
            &setup,
            "AKIDCLIENT",
            "client-secret",
            Some("session-tok"),
            0,
        ),
        "tok",
    )
    .await
    .expect("a session token, signed, is served");

    let wrong = client(&setup, "AKIDCLIENT", "not-the-secret", None, 0);
    let (status, body) = refusal(
        wrong
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item("wrong", "x", &[])))
            .send()
            .await,
    );
    assert_eq!(status, 400);
    assert!(body.contains("InvalidSignatureException"), "{body}");
    assert!(
        body.contains("does not match the signature you provided"),
        "{body}"
    );
    let unknown = client(&setup, "AKIDNOBODY", "whatever", None, 0);
    let (status, body) = refusal(
        unknown
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item("unknown", "x", &[])))
            .send()
            .await,
    );
    assert_eq!(status, 400);
    assert!(body.contains("UnrecognizedClientException"), "{body}");

    assert_eq!(
        reached(&setup, "\"wrong\""),
        0,
        "a refused request reached the region"
    );
    assert_eq!(reached(&setup, "\"unknown\""), 0);
    assert_eq!(reached(&setup, "\"good\""), 1);
    for request in setup.region.recorded() {
        let authorization = request.header("authorization").expect("signed");
        assert!(
            authorization.contains("Credential=AKIDSIDECAR/"),
            "only the sidecar signs upstream: {authorization}"
        );
        assert!(
            request.header("x-amz-security-token").is_none(),
            "the client's session token stays with the sidecar"
        );
    }
    let admin = setup.sidecar.admin_addr();
    for reason in ["bad_signature", "unknown_key"] {
        let labels = [("reason", reason)];
        let failures = metric(admin, "globalscale_auth_failures_total", &labels).await;
        assert_eq!(failures, Some(1.0), "{reason}");
    }
    let served = support::metric_sum(
        &support::get(admin, "/metrics").await.text(),
        "globalscale_requests_total",
        &[("client", "app"), ("status", "200")],
    );
    assert_eq!(served, Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_ten_minutes_off_is_refused_in_dynamodbs_words() {
    let setup = setup().await;
    for (ahead, says) in [
        (600, "Signature not yet current"),
        (-600, "Signature expired"),
    ] {
        let skewed = client(&setup, "AKIDCLIENT", "client-secret", None, ahead);
        let (status, body) = refusal(
            skewed
                .put_item()
                .table_name(TABLE)
                .set_item(Some(item("skewed", "x", &[])))
                .send()
                .await,
        );
        assert_eq!(status, 400);
        assert!(
            body.contains("InvalidSignatureException") && body.contains(says),
            "{ahead} s off: {body}"
        );
    }
    assert_eq!(reached(&setup, "skewed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lists_hold_inside_batches_transactions_partiql_and_listings() {
    let setup = setup().await;
    let app = client(&setup, "AKIDCLIENT", "client-secret", None, 0);
    let (status, body) = refusal(
        app.batch_write_item()
            .request_items(TABLE, vec![put_request("batch-ok")])
            .request_items("Secrets", vec![put_request("batch-secret")])
            .send()
            .await,
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("AccessDeniedException") && body.contains("Secrets"),
        "{body}"
    );
    let check = ConditionCheck::builder()
        .table_name("Secrets")
        .set_key(Some(item("k", "x", &[])))
        .condition_expression("attribute_exists(ItemID)")
        .build()
        .expect("ConditionCheck");
    let (_, body) = refusal(
        app.transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .send()
            .await,
    );
    assert!(body.contains("AccessDeniedException"), "{body}");
    let (_, body) = refusal(
        app.execute_statement()
            .statement("SELECT * FROM \"Secrets\"")
            .send()
            .await,
    );
    assert!(body.contains("AccessDeniedException"), "{body}");
    assert_eq!(
        reached(&setup, "Secrets"),
        0,
        "nothing of it reached the region"
    );
    assert_eq!(
        reached(&setup, "batch-ok"),
        0,
        "a refused batch is refused whole"
    );

    let listed = app.list_tables().send().await.expect("ListTables");
    assert_eq!(listed.table_names(), ["GlobalCatalog", "Orders2026"]);
    let ops = client(&setup, "AKIDOPS", "ops-secret", None, 0);
    let all = ops.list_tables().send().await.expect("ListTables");
    assert_eq!(
        all.table_names(),
        ["GlobalCatalog", "Orders2026", "Secrets"]
    );
    put(&ops, "ops-may")
        .await
        .expect("no allow-list: every table");
}

const BOTO3_KEYS: &str = r#"
import json, sys, boto3
from botocore.config import Config
def client(key, secret, token=None):
    return boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-west-2",
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"max_attempts": 1}))
item = {"ItemID": {"S": "py"}, "Category": {"S": "x"}}
out = {}
client("AKIDOPS", "ops-secret").put_item(TableName="GlobalCatalog", Item=item)
client("AKIDOPS", "ops-secret", "a-session-token").get_item(TableName="GlobalCatalog", Key=item)
out["served"] = True
for name, key, secret in [("wrong", "AKIDOPS", "nope"), ("unknown", "AKIDWHO", "nope")]:
    try:
        client(key, secret).get_item(TableName="GlobalCatalog", Key=item)
        out[name] = "served"
    except Exception as e:
        out[name] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_the_cli_and_the_javascript_sdk_sign_as_dynamodb_expects() {
    let setup = setup().await;
    let endpoint = setup.sidecar.endpoint();
    let out = run_boto3(BOTO3_KEYS, &endpoint).await;
    assert_eq!(out["served"], true);
    assert_eq!(out["wrong"], "InvalidSignatureException");
    assert_eq!(out["unknown"], "UnrecognizedClientException");

    let cli = |key: &str, secret: &str| {
        std::process::Command::new("aws")
            .args(["dynamodb", "list-tables", "--endpoint-url", &endpoint])
            .args(["--region", "eu-central-1", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .unwrap_or_else(|e| panic!("the AWS CLI (`aws`) must be on PATH: {e}"))
    };
    let listed = cli("AKIDCLIENT", "client-secret");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(
        listed["TableNames"],
        serde_json::json!(["GlobalCatalog", "Orders2026"])
    );
    let refused = cli("AKIDCLIENT", "wrong");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("InvalidSignatureException"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The JavaScript SDK v3, as client `js`.
    let js = run_js_script(
        "signing.mjs",
        &[
            ("ENDPOINT", endpoint.as_str()),
            ("ACCESS_KEY_ID", "js-client"),
            ("SECRET_ACCESS_KEY", "js-secret"),
            ("TABLE", TABLE),
        ],
    )
    .await;
    assert_eq!(
        js,
        serde_json::json!({
            "tables": ["GlobalCatalog", "Orders2026", "Secrets"],
            "read_back": "signed",
            "wrong_secret": "InvalidSignatureException",
        })
    );
    let _ = &setup.ddb;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_signed_in_any_case_and_order_pass_and_a_tampered_body_does_not() {
    let setup = setup().await;
    let addr = setup.sidecar.listen_addr();
    let body = serde_json::json!({"TableName": TABLE, "Key": {"ItemID": {"S": "k"}, "Category": {"S": "x"}}})
        .to_string();
    let odd = RawRequest::new("GetItem", body.clone())
        .header("X-Zeta-Header", "  spaced   value ")
        .header("x-ALPHA-header", "a")
        .header("X-Amz-User-Agent", "odd/1.0");
    let answer = odd.send(addr).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let unsigned = RawRequest::new("GetItem", body.clone())
        .unsigned()
        .send(addr)
        .await;
    assert_eq!(unsigned.status, 400);
    assert!(
        unsigned
            .error_type()
            .ends_with("MissingAuthenticationTokenException")
    );

    // Signed over one body, sent with another.
    let signed = RawRequest::new("GetItem", body.clone()).all_headers(addr);
    let tampered = body.replace("\"k\"", "\"j\"");
    let mut request = RawRequest::new("GetItem", tampered).unsigned();
    for (name, value) in signed {
        if !name.eq_ignore_ascii_case("content-type") {
            request = request.header(&name, &value);
        }
    }
    let answer = request.send(addr).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.error_type().ends_with("InvalidSignatureException"));
}
