//! What auth-core gives a grant crate beyond `send`, checked against a canned loopback
//! server: `post_form` for the identity provider's other endpoints (a device
//! authorization endpoint), the polling errors of the device code grant as kinds,
//! `into_renewed_token` and `is_refresh_token_refused` for refresh-token reuse.

use std::time::Duration;

use d365_auth_core::grant::{ClientKind, TokenEndpointClient, TokenForm};
use d365_auth_core::{AuthError, Authority, EndpointVersion, ErrorKind, Tenant, TokenRequest};
use d365_test_support::{Canned, CannedServer};
use secrecy::{ExposeSecret, SecretString};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";

fn client() -> TokenEndpointClient {
    TokenEndpointClient::builder()
        .timeout(Duration::from_secs(5))
        .build()
}

fn authority(server: &CannedServer) -> Authority {
    Authority::custom(&server.base, Tenant::parse(TENANT).unwrap()).unwrap()
}

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

async fn post_one(
    canned: Canned,
) -> (
    Result<serde_json::Value, AuthError>,
    d365_test_support::Captured,
) {
    let server = CannedServer::start(vec![canned]).await;
    let url = authority(&server)
        .tenant_endpoint("oauth2/v2.0/devicecode")
        .unwrap();
    let outcome = client()
        .post_form(
            &url,
            &[
                ("client_id", "app"),
                (
                    "scope",
                    "https://contoso.crm.dynamics.com/user_impersonation offline_access",
                ),
            ],
        )
        .await;
    (outcome, server.requests().remove(0))
}

/// A grant's `request_token` future must be `Send` (`async_trait` boxes it as such), so
/// every future of the client it awaits must be too.
#[test]
fn post_form_can_be_awaited_by_a_grant() {
    fn assert_send<T: Send>(_: &T) {}
    let client = client();
    let url =
        url::Url::parse("https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode")
            .unwrap();
    assert_send(&client.post_form(&url, &[("client_id", "app")]));
}

#[tokio::test]
async fn post_form_sends_a_form_and_returns_the_json() {
    let (outcome, sent) = post_one(Canned::json(
        200,
        r#"{"user_code":"ABCD","device_code":"DEVICE-CODE-VALUE","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in..."}"#,
    ))
    .await;
    let answer = outcome.unwrap();
    assert_eq!(answer["user_code"], "ABCD");
    assert_eq!(answer["interval"], 5);
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path(), format!("/{TENANT}/oauth2/v2.0/devicecode"));
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(
        sent.form(),
        [
            ("client_id".to_owned(), "app".to_owned()),
            (
                "scope".to_owned(),
                "https://contoso.crm.dynamics.com/user_impersonation offline_access".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn post_form_classifies_failures_like_the_token_endpoint() {
    let (outcome, _) = post_one(Canned::entra_error(
        400,
        "unauthorized_client",
        700016,
        "Application with identifier 'app' was not found in the directory.",
    ))
    .await;
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClientNotFound, "{error}");
    assert!(error.to_string().contains("AADSTS700016"), "{error}");

    let (outcome, _) = post_one(Canned::with_type(
        502,
        "text/html",
        "<html><title>Bad Gateway</title></html>",
    ))
    .await;
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
    assert!(error.to_string().contains("Bad Gateway"), "{error}");

    // A 200 that is not JSON is never quoted: it might hold a device code.
    let (outcome, _) = post_one(Canned::json(200, r#"{"device_code":"DEVICE-CODE-VAL"#)).await;
    let error = outcome.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
    assert!(!error.to_string().contains("DEVICE-CODE"), "{error}");

    let (outcome, _) = post_one(Canned::json(429, "{}").header("retry-after", "7")).await;
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Throttled);
}

#[tokio::test]
async fn device_code_polling_errors_arrive_as_kinds() {
    let cases = [
        (
            Canned::entra_error(
                400,
                "authorization_pending",
                70016,
                "The provided request has not yet been authorized by the user.",
            ),
            ErrorKind::AuthorizationPending,
        ),
        (
            Canned::json(
                400,
                r#"{"error":"slow_down","error_description":"Poll less often."}"#,
            ),
            ErrorKind::SlowDown,
        ),
        (
            Canned::entra_error(
                400,
                "authorization_declined",
                70000,
                "The user declined the request.",
            ),
            ErrorKind::AuthorizationDeclined,
        ),
        (
            Canned::entra_error(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ),
            ErrorKind::CodeExpired,
        ),
        (
            Canned::json(400, r#"{"error":"bad_verification_code"}"#),
            ErrorKind::InvalidGrant,
        ),
    ];
    let device_code = SecretString::from("DEVICE-CODE-VALUE");
    for (canned, kind) in cases {
        let server = CannedServer::start(vec![canned]).await;
        let endpoint = authority(&server).token_endpoint(EndpointVersion::V2);
        let form = TokenForm::new("urn:ietf:params:oauth:grant-type:device_code", "app")
            .secret_param("device_code", &device_code);
        let error = client().send(&endpoint, &form).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert!(!error.is_refresh_token_refused() || kind == ErrorKind::InvalidGrant);
        assert!(!error.to_string().contains("DEVICE-CODE-VALUE"));
    }
}

#[tokio::test]
async fn renewed_tokens_keep_the_redeemed_refresh_token_unless_a_new_one_came() {
    let redeemed = SecretString::from("OLD-REFRESH");
    for (canned, expected) in [
        (Canned::token("ACCESS-1", None, 3599), "OLD-REFRESH"),
        (
            Canned::token("ACCESS-2", Some("NEW-REFRESH"), 3599),
            "NEW-REFRESH",
        ),
    ] {
        let server = CannedServer::start(vec![canned]).await;
        let endpoint = authority(&server).token_endpoint(EndpointVersion::V2);
        let form = TokenForm::refresh_token("app", &redeemed).target(
            &request(),
            ClientKind::Public,
            &endpoint,
        );
        let response = client().send(&endpoint, &form).await.unwrap();
        let token = response.into_renewed_token(&request(), &redeemed).unwrap();
        assert_eq!(
            token.refresh_token().map(ExposeSecret::expose_secret),
            Some(expected)
        );
    }

    let server = CannedServer::start(vec![Canned::entra_error(
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity.",
    )])
    .await;
    let endpoint = authority(&server).token_endpoint(EndpointVersion::V2);
    let form = TokenForm::refresh_token("app", &redeemed).target(
        &request(),
        ClientKind::Public,
        &endpoint,
    );
    let error = client().send(&endpoint, &form).await.unwrap_err();
    assert!(error.is_refresh_token_refused(), "{error}");
}
