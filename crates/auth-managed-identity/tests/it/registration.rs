//! The registration: its name and keys, which configurations it takes by itself (App
//! Service's environment only), its checks naming the key at fault, and providers built
//! from a `GrantConfig` that get tokens from loopback endpoints.

use std::time::Duration;

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{ConfigError, Resource};
use d365_auth_managed_identity::REGISTRATION;
use d365_test_support::Server;
use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    CLIENT_ID, OBJECT_ID, RESOURCE, RESOURCE_ID, app_service_token, epoch_in, imds_answering,
    imds_token, probes, request, token_requests,
};

fn config(settings: &[(&'static str, &str)]) -> GrantConfig {
    let mut config = GrantConfig::default();
    config.organization = Some(Resource::parse(crate::ORG).unwrap());
    for (name, value) in settings {
        if *name == "IdentityHeader" {
            config.set_secret(name, SecretString::from(*value));
        } else {
            config.set_text(name, *value);
        }
    }
    config
}

#[test]
fn it_says_what_it_is_and_reads() {
    assert_eq!(REGISTRATION.name(), "managed-identity");
    assert!(REGISTRATION.description().contains("managed identity"));
    assert!(!REGISTRATION.needs_authority());
    let keys: Vec<(&str, Option<&str>, bool)> = REGISTRATION
        .keys()
        .iter()
        .map(|key| (key.name, key.variable, key.is_secret))
        .collect();
    assert_eq!(
        keys,
        [
            ("ManagedIdentityObjectId", None, false),
            ("ManagedIdentityResourceId", None, false),
            ("IdentityEndpoint", Some("IDENTITY_ENDPOINT"), false),
            ("IdentityHeader", Some("IDENTITY_HEADER"), true),
            (
                "ImdsEndpoint",
                Some("AZURE_POD_IDENTITY_AUTHORITY_HOST"),
                false
            ),
        ]
    );
    let object_id = REGISTRATION.keys()[0];
    assert!(object_id.matches("managedidentityprincipalid"));
}

#[test]
fn it_takes_an_app_service_environment_by_itself_and_nothing_else() {
    let app_service = config(&[
        ("IdentityEndpoint", "http://127.0.0.1:41741/msi/token"),
        ("IdentityHeader", "header"),
    ]);
    assert!(REGISTRATION.accepts(&app_service));
    let mut with_auth_type = app_service.clone();
    with_auth_type.auth_type = Some("ClientSecret".into());
    assert!(!REGISTRATION.accepts(&with_auth_type));
    assert!(!REGISTRATION.accepts(&config(&[("IdentityEndpoint", "http://127.0.0.1:1/t")])));
    assert!(!REGISTRATION.accepts(&config(&[("ImdsEndpoint", "http://127.0.0.1:1")])));
    assert!(!REGISTRATION.accepts(&config(&[("ManagedIdentityObjectId", OBJECT_ID)])));
    assert!(!REGISTRATION.accepts(&GrantConfig::default()));
}

#[test]
fn check_names_the_key_at_fault() {
    let mut two_ids = config(&[("ManagedIdentityObjectId", OBJECT_ID)]);
    two_ids.client_id = Some(CLIENT_ID.into());
    let mut bad_client_id = GrantConfig::default();
    bad_client_id.client_id = Some("my-app".into());
    let cases: Vec<(GrantConfig, &str, &str)> = vec![
        (
            config(&[("IdentityEndpoint", "http://127.0.0.1:41741/msi/token")]),
            "IdentityHeader",
            "IdentityHeader is required",
        ),
        (
            config(&[("IdentityHeader", "secret-header")]),
            "IdentityEndpoint",
            "IdentityEndpoint is required",
        ),
        (
            config(&[("ImdsEndpoint", "http://identity.example.com")]),
            "ImdsEndpoint",
            "plain http",
        ),
        (
            config(&[
                ("IdentityEndpoint", "http://127.0.0.1:41741/msi/token?x=1"),
                ("IdentityHeader", "secret-header"),
            ]),
            "IdentityEndpoint",
            "query string",
        ),
        (
            two_ids,
            "ManagedIdentityObjectId",
            "ClientId and ManagedIdentityObjectId both name",
        ),
        (
            config(&[("ManagedIdentityObjectId", "not-a-guid")]),
            "ManagedIdentityObjectId",
            "`not-a-guid` is not a GUID",
        ),
        (
            config(&[("ManagedIdentityResourceId", "importer")]),
            "ManagedIdentityResourceId",
            "not the Azure resource id",
        ),
        (bad_client_id, "ClientId", "`my-app` is not a GUID"),
    ];
    for (config, key, expected) in cases {
        let error = REGISTRATION.check(&config).unwrap_err();
        let setting = match &error {
            ConfigError::Missing { setting, .. } | ConfigError::Invalid { setting, .. } => *setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(setting, key, "{error}");
        assert!(error.to_string().contains(expected), "{expected}: {error}");
        assert!(!error.to_string().contains("secret-header"));
        assert!(REGISTRATION.build(&config).is_err());
    }
    REGISTRATION.check(&GrantConfig::default()).unwrap();
    REGISTRATION
        .check(&config(&[("ManagedIdentityResourceId", RESOURCE_ID)]))
        .unwrap();
}

#[tokio::test]
async fn builds_an_imds_grant_from_configuration() {
    let server = imds_answering(vec![imds_token("from-configuration")]).await;
    let mut config = config(&[
        ("ImdsEndpoint", &server.base),
        ("ManagedIdentityObjectId", OBJECT_ID),
    ]);
    config.grant = Some("managed-identity".into());
    // A client of the program's, which may use a proxy: not used (see the registration).
    config.http = Some(reqwest::Client::new());
    let provider = REGISTRATION.build(&config).unwrap();
    let token = provider.request_token(&request()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "from-configuration");
    assert_eq!(
        probes(&server),
        0,
        "a host named in configuration is not probed"
    );
    let asked = token_requests(&server);
    assert_eq!(
        asked[0].target,
        format!(
            "/metadata/identity/oauth2/token?api-version=2018-02-01&{RESOURCE}&object_id={OBJECT_ID}"
        )
    );
    assert_eq!(provider.grant().as_str(), "managed_identity");
}

#[tokio::test]
async fn builds_an_app_service_grant_from_configuration_with_the_client_id() {
    let expires_on = epoch_in(Duration::from_secs(3600));
    let server = Server::start(move |_, _| app_service_token("from-app-service", expires_on)).await;
    let mut config = config(&[
        ("IdentityEndpoint", &format!("{}/msi/token", server.base)),
        ("IdentityHeader", "the-header"),
    ]);
    config.client_id = Some(CLIENT_ID.into());
    let provider = REGISTRATION.build(&config).unwrap();
    let token = provider.request_token(&request()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "from-app-service");
    let asked = server.requests();
    assert_eq!(
        asked[0].target,
        format!("/msi/token?api-version=2019-08-01&{RESOURCE}&client_id={CLIENT_ID}")
    );
    assert_eq!(asked[0].header("x-identity-header"), Some("the-header"));
    assert!(!format!("{provider:?}").contains("the-header"));
    assert!(!provider.cache_key().contains("the-header"));
}
