//! Discovery endpoints: what MSAL and azure-identity read before they ask for a token.

use d365_emulator::Emulator;
use serde_json::Value;

use crate::common::{self, client};

async fn get(url: &str) -> (u16, Value) {
    let reply = common::send(client().get(url)).await;
    (reply.status.as_u16(), reply.body)
}

#[tokio::test]
async fn openid_configuration_v2_points_at_the_emulator() {
    let emulator = Emulator::builder().start().await.expect("started");
    let base = emulator.base_url();
    let tenant = emulator.tenant_id();
    for segment in [tenant, "contoso.onmicrosoft.com"] {
        let (status, doc) = get(&format!(
            "{base}/{segment}/v2.0/.well-known/openid-configuration"
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            doc["token_endpoint"],
            format!("{base}/{tenant}/oauth2/v2.0/token")
        );
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{base}/{tenant}/oauth2/v2.0/authorize")
        );
        assert_eq!(doc["issuer"], format!("{base}/{tenant}/v2.0"));
        assert_eq!(
            doc["jwks_uri"],
            format!("{base}/{tenant}/discovery/v2.0/keys")
        );
        let methods = doc["token_endpoint_auth_methods_supported"].to_string();
        assert!(methods.contains("private_key_jwt") && methods.contains("client_secret_basic"));
    }
    let (status, doc) = get(&format!(
        "{base}/organizations/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/organizations/oauth2/v2.0/token")
    );
}

#[tokio::test]
async fn openid_configuration_v1_and_unknown_tenant() {
    let emulator = Emulator::builder().start().await.expect("started");
    let base = emulator.base_url();
    let tenant = emulator.tenant_id();
    let (status, doc) = get(&format!("{base}/{tenant}/.well-known/openid-configuration")).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/{tenant}/oauth2/token")
    );
    assert_eq!(doc["issuer"], format!("https://sts.windows.net/{tenant}/"));
    assert_eq!(doc["jwks_uri"], format!("{base}/common/discovery/keys"));

    let (status, doc) = get(&format!(
        "{base}/nowhere.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(doc["error"], "invalid_tenant");
    assert_eq!(doc["error_codes"][0], 90002);
}

#[tokio::test]
async fn keys_are_the_same_under_every_jwks_url() {
    let emulator = Emulator::builder().start().await.expect("started");
    let base = emulator.base_url();
    let tenant = emulator.tenant_id();
    let (_, v2) = get(&format!("{base}/{tenant}/discovery/v2.0/keys")).await;
    let (_, v1) = get(&format!("{base}/common/discovery/keys")).await;
    let (_, v1_tenant) = get(&format!("{base}/{tenant}/discovery/keys")).await;
    let key = &v2["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["issuer"], format!("{base}/{tenant}/v2.0"));
    assert_eq!(key["kid"], v1["keys"][0]["kid"]);
    assert_eq!(key["kid"], v1_tenant["keys"][0]["kid"]);
    assert_eq!(key["kid"], key["x5t"]);
    assert!(key["x5c"][0].is_string());
}

#[tokio::test]
async fn instance_discovery_describes_the_emulator_host() {
    let emulator = Emulator::builder().start().await.expect("started");
    let base = emulator.base_url();
    let host = base.split("://").nth(1).expect("host");
    let authorize = format!("{base}/{}/oauth2/v2.0/authorize", emulator.tenant_id());
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/common/discovery/instance"),
        &[
            ("api-version", "1.1"),
            ("authorization_endpoint", authorize.as_str()),
        ],
    )
    .expect("url");
    let (status, doc) = get(url.as_str()).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["tenant_discovery_endpoint"],
        format!(
            "{base}/{}/v2.0/.well-known/openid-configuration",
            emulator.tenant_id()
        )
    );
    assert_eq!(doc["metadata"][0]["preferred_network"], host);

    let foreign = reqwest::Url::parse_with_params(
        &format!("{base}/common/discovery/instance"),
        &[
            ("api-version", "1.1"),
            (
                "authorization_endpoint",
                "https://login.example.com/t/oauth2/v2.0/authorize",
            ),
        ],
    )
    .expect("url");
    let (status, doc) = get(foreign.as_str()).await;
    assert_eq!(status, 400);
    assert_eq!(doc["error"], "invalid_instance");
    assert_eq!(doc["error_codes"][0], 50049);
}

#[tokio::test]
async fn user_realm_matches_the_path_case_insensitively() {
    let emulator = Emulator::builder().start().await.expect("started");
    let base = emulator.base_url();
    for path in ["common/userrealm", "common/UserRealm", "COMMON/USERREALM"] {
        let (status, realm) = get(&format!(
            "{base}/{path}/alice@contoso.onmicrosoft.com?api-version=1.0"
        ))
        .await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(realm["account_type"], "Managed");
        assert_eq!(realm["domain_name"], "contoso.onmicrosoft.com");
        assert_eq!(
            realm["cloud_audience_urn"],
            "urn:federation:MicrosoftOnline"
        );
    }
    let (_, realm) = get(&format!(
        "{base}/common/userrealm/someone%40elsewhere.example?api-version=1.0"
    ))
    .await;
    assert_eq!(realm["account_type"], "Unknown");
    let (status, _) = get(&format!("{base}/no/such/path")).await;
    assert_eq!(status, 404);
}
