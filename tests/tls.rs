//! Upstream TLS behind a private certificate authority (a corporate TLS-inspecting proxy, a
//! private CA in front of a VPC endpoint): trusted when the machine's store trusts it
//! (`SSL_CERT_FILE` here), refused when the sidecar is told to trust only its built-in roots.

#![allow(clippy::expect_used)]

mod support;

use support::{
    DynamoLocal, RawRequest, SidecarConfig, SidecarProcess, TABLE, TlsRegion,
    create_global_catalog, sdk_client,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_behind_a_private_ca_is_trusted_through_the_system_store() {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], ddb.port(0)));
    let region = TlsRegion::start(upstream).await;
    let ca = region.ca_file();
    let env = [("SSL_CERT_FILE", ca.to_str().expect("UTF-8 path"))];
    let get = format!(
        r#"{{"TableName":"{TABLE}","Key":{{"ItemID":{{"S":"tls"}},"Category":{{"S":"x"}}}}}}"#
    );
    let config = |roots: &str| {
        SidecarConfig::new()
            .timeouts(1_000, 2_000, 5_000)
            .section(&format!("[upstream]\ntls_roots = \"{roots}\""))
            .region("us-east-1", &region.endpoint())
    };

    for roots in ["both", "system"] {
        let sidecar = SidecarProcess::start_with_env(config(roots), &env).await;
        let response = RawRequest::new("GetItem", get.clone())
            .send(sidecar.listen_addr())
            .await;
        assert_eq!(response.status, 200, "{roots}: {}", response.text());
    }

    let sidecar = SidecarProcess::start_with_env(config("webpki"), &env).await;
    let response = RawRequest::new("GetItem", get)
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.text().contains("certificate"),
        "the refusal names the certificate: {}",
        response.text()
    );
}
