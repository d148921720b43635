//! What `ClientCredentials::builder().build()` refuses before any request, what it only
//! warns about, and how external assertions are read.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use d365_auth_client_credentials::ClientCredentials;
use d365_auth_core::{ErrorKind, TokenProvider, TokenRequest};
use d365_test_support::{Canned, CannedServer, LogCapture};
use secrecy::SecretString;

const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

#[test]
fn mistakes_are_refused_with_what_to_do() {
    let base = || {
        ClientCredentials::builder()
            .tenant("contoso.onmicrosoft.com")
            .client_id(CLIENT)
    };
    let cases: Vec<(
        &str,
        Result<ClientCredentials, d365_auth_core::ConfigError>,
        &str,
    )> = vec![
        (
            "no client id",
            ClientCredentials::builder()
                .tenant("contoso.com")
                .client_secret("s".into())
                .build(),
            "client id is required",
        ),
        (
            "blank client id",
            base().client_id("  ").client_secret("s".into()).build(),
            "client id is required",
        ),
        (
            "no tenant",
            ClientCredentials::builder()
                .client_id(CLIENT)
                .client_secret("s".into())
                .build(),
            "tenant is required",
        ),
        (
            "common tenant",
            base().tenant("common").client_secret("s".into()).build(),
            "`common` names no tenant",
        ),
        (
            "consumers tenant",
            base().tenant("consumers").client_secret("s".into()).build(),
            "`consumers` names no tenant",
        ),
        (
            "bad tenant",
            base().tenant("contoso").client_secret("s".into()).build(),
            "the tenant `contoso` is not valid",
        ),
        (
            "no credential",
            base().build(),
            "client credential is required",
        ),
        (
            "two credentials",
            base()
                .client_secret("s".into())
                .federated_token_file("/tmp/x")
                .build(),
            "more than one credential",
        ),
        (
            "empty secret",
            base().client_secret("".into()).build(),
            "client secret is required",
        ),
        (
            "blank secret",
            base().client_secret("   ".into()).build(),
            "client secret is required",
        ),
        (
            "plain http host",
            base()
                .authority_host("http://login.example.com")
                .client_secret("s".into())
                .build(),
            "uses plain http",
        ),
        (
            "missing certificate file",
            base()
                .certificate_pem_files("/nonexistent/key.pem", "/nonexistent/cert.pem")
                .build(),
            "could not be read",
        ),
        (
            "bad AD FS URL",
            base()
                .adfs("https://adfs.contoso.com/other")
                .client_secret("s".into())
                .build(),
            "has the path `/other`",
        ),
    ];
    for (name, outcome, expected) in cases {
        let error = outcome.expect_err(name);
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
}

#[test]
fn valid_settings_pick_the_right_endpoint() {
    let v2 = ClientCredentials::builder()
        .tenant("contoso.onmicrosoft.com")
        .client_id(CLIENT)
        .client_secret("s".into())
        .build()
        .unwrap();
    assert_eq!(
        v2.token_endpoint().url().as_str(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    let gov = ClientCredentials::builder()
        .tenant("contoso.onmicrosoft.us")
        .cloud(d365_auth_core::Cloud::UsGovernment)
        .endpoint_version(d365_auth_core::EndpointVersion::V1)
        .client_id(CLIENT)
        .client_secret("s".into())
        .build()
        .unwrap();
    assert_eq!(
        gov.token_endpoint().url().as_str(),
        "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/token"
    );
    let adfs = ClientCredentials::builder()
        .adfs("https://adfs.contoso.com")
        .client_id("crm-app")
        .client_secret("s".into())
        .build()
        .unwrap();
    assert_eq!(
        adfs.token_endpoint().url().as_str(),
        "https://adfs.contoso.com/adfs/oauth2/token"
    );
    assert!(v2.cache_key().contains(CLIENT) && v2.cache_key().contains("oauth2/v2.0/token"));
}

#[test]
fn a_secret_id_instead_of_a_value_is_warned_about_without_showing_it() {
    let logs = LogCapture::default();
    let subscriber = logs.subscriber();
    let secret_id = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let grant = tracing::subscriber::with_default(subscriber, || {
        ClientCredentials::builder()
            .tenant("contoso.com")
            .client_id(CLIENT)
            .client_secret(secret_id.into())
            .build()
    });
    assert!(grant.is_ok(), "a warning, not an error");
    let text = logs.text();
    assert!(
        text.contains("looks like a GUID") && text.contains("AADSTS7000215"),
        "{text}"
    );
    assert!(!text.contains(secret_id), "the secret was logged: {text}");
    let debug = format!("{:?}", grant.unwrap());
    assert!(!debug.contains(secret_id), "{debug}");
}

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

fn sent_assertions(server: &CannedServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|request| {
            request
                .form()
                .into_iter()
                .find(|(name, _)| name == "client_assertion")
                .unwrap()
                .1
        })
        .collect()
}

#[tokio::test]
async fn a_federated_token_file_is_reread_when_it_changes() {
    let server = CannedServer::start(vec![Canned::json(
        200,
        r#"{"access_token":"t","expires_in":3599}"#,
    )])
    .await;
    let directory = std::env::temp_dir().join(format!("d365-federated-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("token");
    std::fs::write(&path, format!("{JWT}\n")).unwrap();
    let grant = ClientCredentials::builder()
        .authority_host(&server.base)
        .tenant("contoso.com")
        .client_id(CLIENT)
        .federated_token_file(&path)
        .build()
        .unwrap();
    grant.request_token(&request()).await.unwrap();
    grant.request_token(&request()).await.unwrap();
    let rotated = format!("{JWT}rotated");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(rotated.as_bytes())
        .unwrap();
    grant.request_token(&request()).await.unwrap();
    assert_eq!(
        sent_assertions(&server),
        vec![JWT.to_owned(), JWT.to_owned(), rotated]
    );

    std::fs::write(&path, "  \n").unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credential);
    assert!(error.to_string().contains("is empty"), "{error}");
    std::fs::remove_file(&path).unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert!(error.to_string().contains("could not be read"), "{error}");
    assert_eq!(
        server.requests().len(),
        3,
        "nothing is sent without an assertion"
    );
}

#[tokio::test]
async fn a_callback_is_called_for_every_request_and_must_return_a_jwt() {
    let server = CannedServer::start(vec![Canned::json(
        200,
        r#"{"access_token":"t","expires_in":3599}"#,
    )])
    .await;
    let calls = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&calls);
    let grant = ClientCredentials::builder()
        .authority_host(&server.base)
        .tenant("contoso.com")
        .client_id(CLIENT)
        .assertion_callback(move || {
            let counter = Arc::clone(&counter);
            async move {
                *counter.lock().unwrap() += 1;
                Ok(SecretString::from(JWT))
            }
        })
        .build()
        .unwrap();
    grant.request_token(&request()).await.unwrap();
    grant.request_token(&request()).await.unwrap();
    assert_eq!(*calls.lock().unwrap(), 2);
    assert_eq!(
        sent_assertions(&server),
        vec![JWT.to_owned(), JWT.to_owned()]
    );

    let not_a_jwt = ClientCredentials::builder()
        .authority_host(&server.base)
        .tenant("contoso.com")
        .client_id(CLIENT)
        .assertion_callback(|| async { Ok(SecretString::from("/var/run/secrets/token")) })
        .build()
        .unwrap();
    let error = not_a_jwt.request_token(&request()).await.unwrap_err();
    assert!(error.to_string().contains("is not a JWT"), "{error}");
}
