//! The client credentials grant against a third-party OAuth 2.0 server
//! (`oauth2-mock-server` from npm, installed by `cargo xtask test`): client_secret_post,
//! client_secret_basic, and the certificate assertion in both algorithms, each checked on
//! the server side by code that is not ours.

use d365_auth_client_credentials::{
    AssertionAlgorithm, Certificate, ClientCredentials, SecretMethod,
};
use d365_auth_core::grant::{TargetParameter, TokenEndpoint};
use d365_auth_core::{TokenProvider, TokenRequest};
use d365_e2e::{MockServer, interop_available};
use secrecy::SecretString;

const CLIENT: &str = "d3650000-1111-4000-8000-000000000001";
const SECRET: &str = "a secret+with/odd=chars&more:colon";
const MOCK_SERVER: &str = "node/node_modules/oauth2-mock-server/package.json";

fn endpoint(server: &MockServer) -> TokenEndpoint {
    TokenEndpoint::new(server.token_url.parse().unwrap(), TargetParameter::Scope)
}

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

#[tokio::test]
async fn client_secret_post_and_basic_are_accepted() {
    if !interop_available(MOCK_SERVER) {
        return;
    }
    for (method, expected) in [(SecretMethod::Post, "post"), (SecretMethod::Basic, "basic")] {
        let mut server = MockServer::start(&serde_json::json!({
            "client_id": CLIENT, "client_secret": SECRET, "method": expected,
        }))
        .await;
        let grant = ClientCredentials::builder()
            .token_endpoint(endpoint(&server))
            .client_id(CLIENT)
            .client_secret(SECRET.into())
            .secret_method(method)
            .build()
            .unwrap();
        let token = grant
            .request_token(&request())
            .await
            .unwrap_or_else(|e| panic!("{expected}: {e}"));
        let report = server.next_report().await;
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["client_auth"], expected);
        assert_eq!(report["grant_type"], "client_credentials");
        assert_eq!(report["scope"], "https://contoso.crm.dynamics.com/.default");
        assert!(token.expires_on() > std::time::SystemTime::now());
        server.stop().await;
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_server_and_reported_typed() {
    if !interop_available(MOCK_SERVER) {
        return;
    }
    let mut server = MockServer::start(&serde_json::json!({
        "client_id": CLIENT, "client_secret": SECRET, "method": "post",
    }))
    .await;
    let grant = ClientCredentials::builder()
        .token_endpoint(endpoint(&server))
        .client_id(CLIENT)
        .client_secret("wrong".into())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert_eq!(
        error.kind(),
        d365_auth_core::ErrorKind::InvalidClient,
        "{error}"
    );
    assert_eq!(server.next_report().await["ok"], false);
    server.stop().await;
}

#[tokio::test]
async fn certificate_assertions_verify_with_node_crypto() {
    if !interop_available(MOCK_SERVER) {
        return;
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let certificate_pem = rcgen::CertificateParams::new(vec!["d365-interop".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let certificate =
        Certificate::from_pem(&SecretString::from(key.serialize_pem()), &certificate_pem).unwrap();
    for (algorithm, name) in [
        (AssertionAlgorithm::Ps256, "PS256"),
        (AssertionAlgorithm::Rs256, "RS256"),
    ] {
        let mut server = MockServer::start(&serde_json::json!({
            "client_id": CLIENT, "method": "assertion", "certificate_pem": certificate_pem,
        }))
        .await;
        let grant = ClientCredentials::builder()
            .token_endpoint(endpoint(&server))
            .client_id(CLIENT)
            .certificate(certificate.clone())
            .assertion_algorithm(algorithm)
            .build()
            .unwrap();
        grant
            .request_token(&request())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        grant.request_token(&request()).await.unwrap();
        let (first, second) = (server.next_report().await, server.next_report().await);
        for report in [&first, &second] {
            assert_eq!(report["ok"], true, "{name}: {report}");
            assert_eq!(report["alg"], name);
        }
        assert_ne!(first["jti"], second["jti"], "a fresh assertion per request");
        server.stop().await;
    }
}
