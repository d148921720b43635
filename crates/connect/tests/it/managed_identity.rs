//! The managed identity through configuration (feature `managed-identity`): named in a
//! connection string, taken by itself from an App Service environment, its keys spelt and
//! checked as the user wrote them — against loopback endpoints only.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use d365_auth_core::{Grant, TokenProvider, TokenRequest};
use d365_connect::{ConnectError, ConnectOptions, ConnectionString, EnvironmentSettings, Registry};
use d365_test_support::{Canned, Server};
use secrecy::ExposeSecret as _;

const ORG: &str = "https://contoso.crm.dynamics.com";
const RESOURCE: &str = "resource=https%3A%2F%2Fcontoso.crm.dynamics.com%2F";
const OBJECT_ID: &str = "00000000-0000-0000-0000-0000000000d1";
const CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000c1";
const HEADER: &str = "APP-SERVICE-HEADER-9";

fn token(access: &str) -> Canned {
    let expires_on = (SystemTime::now() + Duration::from_secs(3600))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Canned::json(
        200,
        format!(
            r#"{{"access_token":"{access}","expires_on":"{expires_on}","resource":"{ORG}/","token_type":"Bearer"}}"#
        ),
    )
}

#[test]
fn the_registry_lists_the_managed_identity() {
    let registry = Registry::enabled();
    let grant = registry.get("Managed-Identity").unwrap();
    assert_eq!(grant.name(), "managed-identity");
    assert!(!grant.needs_authority());
}

#[tokio::test]
async fn a_connection_string_names_the_managed_identity_and_its_keys() {
    let server = Server::start(|_, _| token("from-imds")).await;
    let text = format!(
        "AuthType=OAuth;Grant=managed-identity;Url={ORG};ImdsEndpoint={};ManagedIdentityPrincipalId={OBJECT_ID}",
        server.base
    );
    let connection = ConnectionString::parse(&text).unwrap();
    assert_eq!(connection.grant().name(), "managed-identity");
    assert!(
        connection
            .to_redacted_string()
            .contains("ManagedIdentityObjectId=")
    );
    let provider = connection
        .credential()
        .provider(&ConnectOptions::new())
        .await
        .unwrap();
    assert_eq!(provider.grant(), Grant::new("managed_identity"));
    let token = provider
        .request_token(&TokenRequest::for_url(ORG).unwrap())
        .await
        .unwrap();
    assert_eq!(token.secret().expose_secret(), "from-imds");
    let asked = server.requests();
    assert_eq!(
        asked.len(),
        1,
        "a host named in configuration is not probed"
    );
    assert_eq!(
        asked[0].target,
        format!(
            "/metadata/identity/oauth2/token?api-version=2018-02-01&{RESOURCE}&object_id={OBJECT_ID}"
        )
    );
    assert_eq!(asked[0].header("metadata"), Some("true"));
}

#[test]
fn connection_string_mistakes_name_the_key() {
    let cases = [
        (
            format!(
                "AuthType=OAuth;Grant=managed-identity;Url={ORG};IdentityEndpoint=http://127.0.0.1:1/msi/token"
            ),
            "IdentityHeader",
        ),
        (
            format!(
                "AuthType=OAuth;Grant=managed-identity;Url={ORG};ClientId={CLIENT_ID};ManagedIdentityObjectId={OBJECT_ID}"
            ),
            "ClientId and ManagedIdentityObjectId both name",
        ),
        (
            format!(
                "AuthType=OAuth;Grant=managed-identity;Url={ORG};ImdsEndpoint=http://identity.example.com"
            ),
            "ImdsEndpoint",
        ),
        (
            format!("AuthType=OAuth;Grant=managed-identity;Url={ORG};IdentityHeader={HEADER}"),
            "IdentityEndpoint",
        ),
    ];
    for (text, expected) in cases {
        let error = ConnectionString::parse(&text).unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
        assert!(!error.to_string().contains(HEADER), "{error}");
        assert!(!format!("{error:?}").contains(HEADER), "{error:?}");
    }
}

#[tokio::test]
async fn an_app_service_environment_is_taken_by_itself() {
    let server = Server::start(|_, _| token("from-app-service")).await;
    let endpoint = format!("{}/msi/token", server.base);
    let mut variables = HashMap::from([
        ("D365_URL", ORG.to_owned()),
        ("IDENTITY_ENDPOINT", endpoint.clone()),
        ("IDENTITY_HEADER", HEADER.to_owned()),
        ("AZURE_CLIENT_ID", CLIENT_ID.to_owned()),
    ]);
    let read = |variables: &HashMap<&str, String>| {
        EnvironmentSettings::from_variables(|name| variables.get(name).cloned())
    };
    let settings = read(&variables).unwrap();
    assert_eq!(settings.grant().name(), "managed-identity");
    assert!(!format!("{settings:?}").contains(HEADER));
    let provider = settings
        .credential()
        .provider(&ConnectOptions::new())
        .await
        .unwrap();
    assert!(!format!("{provider:?}").contains(HEADER));
    assert!(!provider.cache_key().contains(HEADER));
    let token = provider
        .request_token(&TokenRequest::for_url(ORG).unwrap())
        .await
        .unwrap();
    assert_eq!(token.secret().expose_secret(), "from-app-service");
    let asked = server.requests();
    assert_eq!(
        asked[0].target,
        format!("/msi/token?api-version=2019-08-01&{RESOURCE}&client_id={CLIENT_ID}")
    );
    assert_eq!(asked[0].header("x-identity-header"), Some(HEADER));

    // A client secret in the environment comes first, as in azure-identity.
    variables.insert("AZURE_CLIENT_SECRET", "SUPER-SECRET-1".to_owned());
    variables.insert("AZURE_TENANT_ID", "contoso.onmicrosoft.com".to_owned());
    assert_eq!(
        read(&variables).unwrap().grant().name(),
        "client-credentials"
    );

    // Half an App Service environment, named: the missing variable is named.
    let half = HashMap::from([
        ("D365_URL", ORG.to_owned()),
        ("D365_GRANT", "managed-identity".to_owned()),
        ("IDENTITY_ENDPOINT", endpoint),
    ]);
    let error = read(&half).unwrap_err();
    assert!(
        matches!(error, ConnectError::Environment { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("IDENTITY_HEADER is not set"),
        "{error}"
    );

    // The IMDS override, named by D365_GRANT.
    let named = HashMap::from([
        ("D365_URL", ORG.to_owned()),
        ("D365_GRANT", "managed-identity".to_owned()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", server.base.clone()),
    ]);
    let settings = read(&named).unwrap();
    assert_eq!(settings.grant().name(), "managed-identity");
    assert!(
        settings
            .credential()
            .config()
            .text("ImdsEndpoint")
            .is_some_and(|host| host == server.base)
    );
}
