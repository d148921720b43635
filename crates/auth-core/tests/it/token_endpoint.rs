//! The shared token-endpoint client against a canned loopback server: what each grant
//! puts on the wire, and how every kind of answer is read (data-driven).

use std::time::{Duration, SystemTime};

use d365_auth_core::grant::{ClientCredential, ClientKind, TokenEndpointClient, TokenForm};
use d365_auth_core::{Authority, EndpointVersion, ErrorKind, Tenant, TokenEndpoint, TokenRequest};
use d365_test_support::{Canned, CannedServer, Captured};
use secrecy::{ExposeSecret, SecretString};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";
const V2_OK: &str = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ.v2.token"}"#;

fn endpoint(server: &CannedServer, version: EndpointVersion) -> TokenEndpoint {
    Authority::custom(&server.base, Tenant::parse(TENANT).unwrap())
        .unwrap()
        .token_endpoint(version)
}

fn org() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com/").unwrap()
}

async fn send_one(
    canned: Canned,
    form: impl Fn(&TokenEndpoint) -> TokenForm<'static>,
) -> (
    Result<d365_auth_core::grant::TokenResponse, d365_auth_core::AuthError>,
    Captured,
) {
    let server = CannedServer::start(vec![canned]).await;
    let endpoint = endpoint(&server, EndpointVersion::V2);
    let client = TokenEndpointClient::builder()
        .timeout(Duration::from_secs(5))
        .build();
    let outcome = client.send(&endpoint, &form(&endpoint)).await;
    (outcome, server.requests().remove(0))
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn pairs(captured: &Captured) -> Vec<(String, String)> {
    let mut form = captured.form();
    form.sort();
    form
}

fn expected(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form: Vec<_> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    form.sort();
    form
}

#[tokio::test]
async fn client_secret_post_sends_the_secret_in_the_body_with_a_v2_scope() {
    let secret: &SecretString = leak("s3cr3t+/=&value".into());
    let request = leak(org());
    let (outcome, captured) = send_one(Canned::json(200, V2_OK), |endpoint| {
        TokenForm::new("client_credentials", CLIENT)
            .credential(ClientCredential::SecretPost(secret))
            .target(request, ClientKind::Confidential, endpoint)
    })
    .await;
    assert_eq!(
        outcome.unwrap().access_token().expose_secret(),
        "eyJ.v2.token"
    );
    assert_eq!(captured.method, "POST");
    assert_eq!(captured.path(), format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        captured.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(captured.header("authorization"), None);
    assert_eq!(
        pairs(&captured),
        expected(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "s3cr3t+/=&value"),
            ("scope", "https://contoso.crm.dynamics.com/.default"),
        ])
    );
}

#[tokio::test]
async fn client_secret_basic_form_encodes_id_and_secret_inside_the_header() {
    let secret: &SecretString = leak("a b+c/d=e&f:g".into());
    let request = leak(org());
    let (_, captured) = send_one(Canned::json(200, V2_OK), |endpoint| {
        TokenForm::new("client_credentials", "client:id")
            .credential(ClientCredential::SecretBasic(secret))
            .target(request, ClientKind::Confidential, endpoint)
    })
    .await;
    let header = captured.header("authorization").unwrap();
    let encoded = header.strip_prefix("Basic ").unwrap();
    use base64::Engine as _;
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    // RFC 6749 §2.3.1: each part form-encoded, then joined by ':'.
    assert_eq!(decoded, "client%3Aid:a+b%2Bc%2Fd%3De%26f%3Ag");
    assert!(
        pairs(&captured)
            .iter()
            .all(|(name, _)| name != "client_secret" && name != "client_id")
    );
}

#[tokio::test]
async fn an_assertion_is_sent_with_its_type_and_the_client_id() {
    let assertion: &SecretString = leak("header.payload.signature".into());
    let request = leak(org());
    let (_, captured) = send_one(Canned::json(200, V2_OK), |endpoint| {
        TokenForm::new("client_credentials", CLIENT)
            .credential(ClientCredential::Assertion(assertion))
            .target(request, ClientKind::Confidential, endpoint)
    })
    .await;
    assert_eq!(
        pairs(&captured),
        expected(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ),
            ("client_assertion", "header.payload.signature"),
            ("scope", "https://contoso.crm.dynamics.com/.default"),
        ])
    );
}

#[tokio::test]
async fn v1_sends_resource_and_reads_string_numbers() {
    let server = CannedServer::start(vec![Canned::json(
        200,
        r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","expires_on":"1767225600","not_before":"1767222000","resource":"https://contoso.crm.dynamics.com/","access_token":"eyJ.v1"}"#,
    )])
    .await;
    let endpoint = endpoint(&server, EndpointVersion::V1);
    let secret = SecretString::from("x");
    let form = TokenForm::new("client_credentials", CLIENT)
        .credential(ClientCredential::SecretPost(&secret))
        .target(&org(), ClientKind::Confidential, &endpoint)
        .scope("offline_access");
    let before = SystemTime::now();
    let response = TokenEndpointClient::new()
        .send(&endpoint, &form)
        .await
        .unwrap();
    assert_eq!(response.expires_in(), Some(Duration::from_secs(3599)));
    assert_eq!(response.ext_expires_in(), Some(Duration::from_secs(3599)));
    assert_eq!(
        response.resource(),
        Some("https://contoso.crm.dynamics.com/")
    );
    let token = response.into_access_token(&org()).unwrap();
    let lifetime = token.expires_on().duration_since(before).unwrap();
    assert!(
        lifetime > Duration::from_secs(3590) && lifetime <= Duration::from_secs(3600),
        "{lifetime:?}"
    );
    let captured = server.requests().remove(0);
    assert_eq!(captured.path(), format!("/{TENANT}/oauth2/token"));
    let form = captured.form();
    assert!(form.contains(&(
        "resource".into(),
        "https://contoso.crm.dynamics.com/".into()
    )));
    assert!(
        form.iter().all(|(name, _)| name != "scope"),
        "v1 takes no scope: {form:?}"
    );
}

#[tokio::test]
async fn password_and_refresh_grants_carry_user_fields_and_refresh_tokens_come_back() {
    let password: &SecretString = leak("p@ss word".into());
    let request = leak(org());
    let body = r#"{"token_type":"Bearer","scope":"https://contoso.crm.dynamics.com/user_impersonation","expires_in":3599,"refresh_in":1800,"access_token":"eyJ.user","refresh_token":"0.ARfresh"}"#;
    let (outcome, captured) = send_one(Canned::json(200, body), |endpoint| {
        TokenForm::new("password", CLIENT)
            .param("username", "ana@contoso.com")
            .secret_param("password", password)
            .target(request, ClientKind::Public, endpoint)
            .scope("offline_access")
    })
    .await;
    assert_eq!(
        pairs(&captured),
        expected(&[
            ("grant_type", "password"),
            ("client_id", CLIENT),
            ("username", "ana@contoso.com"),
            ("password", "p@ss word"),
            (
                "scope",
                "https://contoso.crm.dynamics.com/user_impersonation offline_access"
            ),
        ])
    );
    let response = outcome.unwrap();
    assert_eq!(response.refresh_in(), Some(Duration::from_secs(1800)));
    let token = response.into_access_token(request).unwrap();
    assert_eq!(token.refresh_token().unwrap().expose_secret(), "0.ARfresh");
    assert!(token.refresh_on().is_some());

    let refresh: &SecretString = leak("0.ARfresh".into());
    let (_, captured) = send_one(Canned::json(200, V2_OK), |endpoint| {
        TokenForm::refresh_token(CLIENT, refresh).target(request, ClientKind::Public, endpoint)
    })
    .await;
    let form = pairs(&captured);
    assert!(form.contains(&("grant_type".into(), "refresh_token".into())));
    assert!(form.contains(&("refresh_token".into(), "0.ARfresh".into())));
}

#[tokio::test]
async fn other_grants_use_the_same_form_rules() {
    let device_code: &SecretString = leak("GMMhmHCXhWEzkobqIHGG_EnNYYsAkukHspeYUk9E8".into());
    let secret: &SecretString = leak("a b".into());
    let request = leak(org());
    let (outcome, captured) = send_one(Canned::json(200, V2_OK), |endpoint| {
        TokenForm::new("urn:ietf:params:oauth:grant-type:device_code", CLIENT)
            .secret_param("device_code", device_code)
            .credential(ClientCredential::SecretBasic(secret))
            .target(request, ClientKind::Public, endpoint)
    })
    .await;
    assert!(outcome.is_ok());
    assert_eq!(
        pairs(&captured),
        expected(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", "GMMhmHCXhWEzkobqIHGG_EnNYYsAkukHspeYUk9E8"),
            (
                "scope",
                "https://contoso.crm.dynamics.com/user_impersonation"
            ),
        ])
    );
    assert!(
        captured
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
}

/// How every kind of answer is read: (name, canned response, expected kind, text the
/// message must contain).
fn answers() -> Vec<(&'static str, Canned, ErrorKind, &'static str)> {
    let entra_error = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 0a1b\r\nCorrelation ID: 9f8e\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[7000215],"timestamp":"2026-01-01 00:00:00Z","trace_id":"0a1b","correlation_id":"9f8e","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#;
    vec![
        (
            "entra error",
            Canned::json(401, entra_error),
            ErrorKind::InvalidClientSecret,
            "correlation id 9f8e",
        ),
        (
            "several codes, first wins",
            Canned::json(
                400,
                r#"{"error":"invalid_grant","error_codes":[50076,50079],"suberror":"basic_action","claims":"{\"access_token\":{}}"}"#,
            ),
            ErrorKind::MfaRequired,
            "AADSTS50076",
        ),
        (
            "plain RFC 6749",
            Canned::json(
                400,
                r#"{"error":"invalid_grant","error_description":"bad grant"}"#,
            ),
            ErrorKind::InvalidGrant,
            "bad grant",
        ),
        (
            "unknown code falls back to error",
            Canned::json(400, r#"{"error":"invalid_client","error_codes":[123456]}"#),
            ErrorKind::InvalidClient,
            "AADSTS123456",
        ),
        (
            "AD FS error",
            Canned::json(
                400,
                r#"{"error":"invalid_grant","error_description":"MSIS9683: Received invalid OAuth JWT Bearer request."}"#,
            ),
            ErrorKind::InvalidGrant,
            "MSIS9683",
        ),
        (
            "unavailable",
            Canned::json(503, r#"{"error":"temporarily_unavailable"}"#),
            ErrorKind::ServiceUnavailable,
            "HTTP 503",
        ),
        (
            "throttled with plain text",
            Canned::with_type(429, "text/plain", "Too many requests").header("retry-after", "7"),
            ErrorKind::Throttled,
            "retry after 7 s",
        ),
        (
            "proxy 502 page",
            Canned::with_type(
                502,
                "text/html",
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            ),
            ErrorKind::UnexpectedResponse,
            "an HTML page titled \"502 Bad Gateway\"",
        ),
        (
            "empty error body",
            Canned::with_type(500, "text/plain", ""),
            ErrorKind::UnexpectedResponse,
            "an empty body",
        ),
        (
            "truncated error JSON",
            Canned::json(400, r#"{"error":"invalid_gr"#),
            ErrorKind::UnexpectedResponse,
            "a truncated JSON body",
        ),
        (
            "plain text error",
            Canned::with_type(400, "text/plain", "Bad Request"),
            ErrorKind::UnexpectedResponse,
            "a non-JSON body: \"Bad Request\"",
        ),
        (
            "JSON that is no error",
            Canned::json(404, r#"{"message":"no such route"}"#),
            ErrorKind::UnexpectedResponse,
            "JSON that is not an OAuth error",
        ),
        (
            "redirect",
            Canned::with_type(302, "text/html", "")
                .header("location", "https://login.example/elsewhere"),
            ErrorKind::Redirected,
            "to https://login.example/elsewhere",
        ),
        (
            "200 HTML login page",
            Canned::with_type(200, "text/html", "<html><title>Sign in</title></html>"),
            ErrorKind::UnexpectedResponse,
            "a body that is not JSON",
        ),
        (
            "200 empty",
            Canned::json(200, ""),
            ErrorKind::UnexpectedResponse,
            "an empty body",
        ),
        (
            "200 truncated token",
            Canned::json(
                200,
                r#"{"token_type":"Bearer","access_token":"eyJSECRETPART"#,
            ),
            ErrorKind::UnexpectedResponse,
            "a truncated JSON body",
        ),
        (
            "200 without a token",
            Canned::json(200, r#"{"token_type":"Bearer","expires_in":3599}"#),
            ErrorKind::UnexpectedResponse,
            "missing field `access_token`",
        ),
        (
            "200 with a bad number",
            Canned::json(
                200,
                r#"{"access_token":"eyJSECRETPART","expires_in":"soon"}"#,
            ),
            ErrorKind::UnexpectedResponse,
            "field `expires_in` is invalid",
        ),
    ]
}

#[tokio::test]
async fn every_kind_of_answer_is_read_into_a_typed_error() {
    for (name, canned, kind, text) in answers() {
        let secret: &SecretString = leak("never-shown".into());
        let request = leak(org());
        let (outcome, _) = send_one(canned, |endpoint| {
            TokenForm::new("client_credentials", CLIENT)
                .credential(ClientCredential::SecretPost(secret))
                .target(request, ClientKind::Confidential, endpoint)
        })
        .await;
        let error = outcome.expect_err(name);
        let message = error.to_string();
        assert_eq!(error.kind(), kind, "{name}: {message}");
        assert!(message.contains(text), "{name}: {message:?} lacks {text:?}");
        for secret in ["never-shown", "eyJSECRETPART"] {
            assert!(
                !message.contains(secret) && !format!("{error:?}").contains(secret),
                "{name} leaked: {message}"
            );
        }
    }
}

#[tokio::test]
async fn identity_errors_keep_entra_diagnostics() {
    let (outcome, _) = send_one(
        Canned::json(401, String::from_utf8(answers()[0].1.body.clone()).unwrap()),
        |endpoint| {
            TokenForm::new("client_credentials", CLIENT).target(
                leak(org()),
                ClientKind::Confidential,
                endpoint,
            )
        },
    )
    .await;
    let error = outcome.unwrap_err();
    let identity = error.identity().unwrap();
    assert_eq!(identity.status().as_u16(), 401);
    assert_eq!(identity.error(), "invalid_client");
    assert_eq!(identity.codes(), &[7000215]);
    assert_eq!(identity.trace_id(), Some("0a1b"));
    assert_eq!(identity.correlation_id(), Some("9f8e"));
    assert_eq!(identity.timestamp(), Some("2026-01-01 00:00:00Z"));
    assert!(identity.description().unwrap().starts_with("AADSTS7000215"));
    assert_eq!(error.aadsts(), Some(7000215));
    assert!(error.hint().unwrap().contains("Value, not its Secret ID"));
    assert!(!error.is_transient());
}

#[tokio::test]
async fn missing_expiry_defaults_to_ten_minutes() {
    let (outcome, _) = send_one(
        Canned::json(200, r#"{"access_token":"abc","token_type":"bearer"}"#),
        |endpoint| {
            TokenForm::new("client_credentials", CLIENT).target(
                leak(org()),
                ClientKind::Confidential,
                endpoint,
            )
        },
    )
    .await;
    let token = outcome.unwrap().into_access_token(&org()).unwrap();
    let remaining = token.remaining_at(SystemTime::now());
    assert!(remaining > Duration::from_secs(590) && remaining <= Duration::from_secs(600));
    assert_eq!(token.token_type(), "bearer");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_is_a_network_error() {
    let server = CannedServer::start(vec![Canned::hang()]).await;
    let endpoint = endpoint(&server, EndpointVersion::V2);
    let client = TokenEndpointClient::builder()
        .timeout(Duration::from_millis(300))
        .build();
    let form = TokenForm::new("client_credentials", CLIENT).target(
        &org(),
        ClientKind::Confidential,
        &endpoint,
    );
    let error = client.send(&endpoint, &form).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.is_transient());

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let authority = Authority::custom(&format!("http://{closed}"), Tenant::Organizations).unwrap();
    let endpoint = authority.token_endpoint(EndpointVersion::V2);
    let form = TokenForm::new("client_credentials", CLIENT).target(
        &org(),
        ClientKind::Confidential,
        &endpoint,
    );
    let error = client.send(&endpoint, &form).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    assert!(
        error
            .to_string()
            .contains("could not reach the token endpoint")
    );
}

#[tokio::test]
async fn a_token_is_read_from_a_get_with_headers_and_string_numbers() {
    // The shape of a managed identity endpoint's answer: numbers as strings, no
    // `expires_in` at App Service, an `expires_on` epoch instead.
    let expires_on = SystemTime::now() + Duration::from_secs(3000);
    let epoch = expires_on
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        r#"{{"access_token":"eyJ.mi.token","expires_on":"{epoch}","resource":"https://contoso.crm.dynamics.com/","token_type":"Bearer","client_id":"{CLIENT}"}}"#
    );
    let server = CannedServer::start(vec![Canned::json(200, &body)]).await;
    let url = url::Url::parse(&format!(
        "{}/msi/token?api-version=2019-08-01&resource=https://contoso.crm.dynamics.com/",
        server.base
    ))
    .unwrap();
    let mut secret = http::HeaderValue::from_static("rotated-header-secret");
    secret.set_sensitive(true);
    let answer = TokenEndpointClient::new()
        .get_token(
            &url,
            &[(http::HeaderName::from_static("x-identity-header"), secret)],
        )
        .await
        .unwrap();
    assert_eq!(answer.access_token().expose_secret(), "eyJ.mi.token");
    let skew = answer
        .expiry()
        .duration_since(expires_on)
        .unwrap_or_else(|error| error.duration());
    assert!(skew < Duration::from_secs(2), "{skew:?}");
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(
        sent.header("x-identity-header"),
        Some("rotated-header-secret")
    );
    assert_eq!(sent.path(), "/msi/token");
    assert!(sent.target.contains("api-version=2019-08-01"));

    // A refusal is read like any other, with its status for a retry decision.
    let server = CannedServer::start(vec![Canned::json(
        410,
        r#"{"error":"unavailable","error_description":"the identity is being updated"}"#,
    )])
    .await;
    let url = url::Url::parse(&format!("{}/msi/token", server.base)).unwrap();
    let error = TokenEndpointClient::new()
        .get_token(&url, &[])
        .await
        .unwrap_err();
    assert_eq!(error.identity().map(|e| e.status().as_u16()), Some(410));
}
