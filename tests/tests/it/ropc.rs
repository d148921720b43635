//! The password grant against a third-party OAuth 2.0 server (`oauth2-mock-server` from
//! npm, installed by `cargo xtask test`): the password is checked server side by code that
//! is not ours, a public client sends no secret, and renewal uses the refresh token the
//! server issued instead of the password.

use d365_auth_core::grant::{TargetParameter, TokenEndpoint};
use d365_auth_core::{TokenProvider, TokenRequest};
use d365_auth_ropc::UsernamePassword;
use d365_e2e::{MockServer, interop_available};
use secrecy::ExposeSecret;

const CLIENT: &str = "d3650000-2222-4000-8000-000000000002";
const USER: &str = "ana@contoso.com";
const PASSWORD: &str = "p@ss word;with=odd&chars";
const MOCK_SERVER: &str = "node/node_modules/oauth2-mock-server/package.json";

fn grant(server: &MockServer, secret: Option<&str>, password: &str) -> UsernamePassword {
    let mut builder = UsernamePassword::builder()
        .token_endpoint(TokenEndpoint::new(
            server.token_url.parse().unwrap(),
            TargetParameter::Scope,
        ))
        .client_id(CLIENT)
        .username(USER)
        .password(password.into());
    if let Some(secret) = secret {
        builder = builder.client_secret(secret.into());
    }
    builder.build().unwrap()
}

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

#[tokio::test]
async fn a_public_client_signs_in_then_renews_with_the_refresh_token() {
    if !interop_available(MOCK_SERVER) {
        return;
    }
    let mut server = MockServer::start(&serde_json::json!({
        "client_id": CLIENT, "method": "none", "users": { USER: PASSWORD },
    }))
    .await;
    let grant = grant(&server, None, PASSWORD);
    let first = grant.request_token(&request()).await.unwrap();
    let report = server.next_report().await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["grant_type"], "password");
    assert_eq!(report["username"], USER);
    assert_eq!(
        report["scope"],
        "https://contoso.crm.dynamics.com/user_impersonation offline_access"
    );
    let refresh_token = first
        .refresh_token()
        .expect("the server issued a refresh token")
        .expose_secret()
        .to_owned();

    let renewed = grant.renew_token(&request(), &first).await.unwrap();
    let report = server.next_report().await;
    assert_eq!(report["grant_type"], "refresh_token", "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(!renewed.same_token(&first));
    assert_ne!(
        renewed.refresh_token().unwrap().expose_secret(),
        refresh_token,
        "the new refresh token replaces the old"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_confidential_client_sends_its_secret_and_a_wrong_password_is_refused() {
    if !interop_available(MOCK_SERVER) {
        return;
    }
    let mut server = MockServer::start(&serde_json::json!({
        "client_id": CLIENT, "method": "post", "client_secret": "app-secret", "users": { USER: PASSWORD },
    }))
    .await;
    grant(&server, Some("app-secret"), PASSWORD)
        .request_token(&request())
        .await
        .unwrap();
    let report = server.next_report().await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["scope"],
        "https://contoso.crm.dynamics.com/.default offline_access"
    );

    let error = grant(&server, Some("app-secret"), "wrong-password")
        .request_token(&request())
        .await
        .unwrap_err();
    let report = server.next_report().await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0], "user credentials");
    assert_eq!(
        error.kind(),
        d365_auth_core::ErrorKind::InvalidClient,
        "{error}"
    );
    assert!(
        !error.to_string().contains("wrong-password")
            && !format!("{error:?}").contains("app-secret"),
        "{error}"
    );
    server.stop().await;
}
