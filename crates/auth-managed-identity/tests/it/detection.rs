//! Finding the endpoint from variables (a lookup closure: the process environment is never
//! changed): App Service, IMDS, the `AZURE_POD_IDENTITY_AUTHORITY_HOST` override, the
//! environments this crate refuses; and the checks on endpoint URLs and ids.

use d365_auth_core::{ConfigError, TokenProvider};
use d365_auth_managed_identity::{IMDS_ENDPOINT, ManagedIdentity, ManagedIdentitySource};
use secrecy::SecretString;

use crate::{fast, imds_answering, imds_token, probes, request, token_requests, variables};

#[test]
fn app_service_variables_are_app_service_and_win_over_the_imds_override() {
    let app_service = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
        ("IDENTITY_HEADER", "rotated-header"),
    ];
    for extra in [
        &[][..],
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")][..],
    ] {
        let mut pairs = app_service.to_vec();
        pairs.extend_from_slice(extra);
        let source = ManagedIdentitySource::from_variables(variables(&pairs)).unwrap();
        assert_eq!(source.kind(), "app-service");
        assert_eq!(
            source.endpoint().as_str(),
            "http://127.0.0.1:41741/msi/token"
        );
        assert!(!format!("{source:?}").contains("rotated-header"));
        let grant = ManagedIdentity::builder()
            .from_variables(variables(&pairs))
            .build()
            .unwrap();
        assert_eq!(
            grant.token_endpoint().as_str(),
            "http://127.0.0.1:41741/msi/token"
        );
        assert_eq!(grant.probe_timeout(), None);
    }
}

#[test]
fn nothing_set_is_imds_at_the_link_local_address_probed() {
    let source = ManagedIdentitySource::from_variables(|_| None).unwrap();
    assert_eq!(source.kind(), "imds");
    assert_eq!(source.endpoint().as_str(), format!("{IMDS_ENDPOINT}/"));
    // Empty values count as unset.
    let grant = ManagedIdentity::builder()
        .from_variables(variables(&[
            ("IDENTITY_ENDPOINT", " "),
            ("IDENTITY_HEADER", ""),
        ]))
        .build()
        .unwrap();
    assert_eq!(
        grant.token_endpoint().as_str(),
        "http://169.254.169.254/metadata/identity/oauth2/token"
    );
    assert!(grant.probe_timeout().is_some());
}

#[tokio::test]
async fn the_pod_identity_host_overrides_imds_and_is_not_probed() {
    let server = imds_answering(vec![imds_token("from-the-override")]).await;
    let grant = ManagedIdentity::builder()
        .from_variables(variables(&[(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            &server.base,
        )]))
        .retry_policy(fast())
        .build()
        .unwrap();
    assert_eq!(grant.source().kind(), "imds");
    grant.request_token(&request()).await.unwrap();
    assert_eq!(probes(&server), 0);
    assert_eq!(token_requests(&server).len(), 1);
    // The builder still decides.
    let probed = ManagedIdentity::builder()
        .from_variables(variables(&[(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            &server.base,
        )]))
        .probe(true)
        .build()
        .unwrap();
    assert!(probed.probe_timeout().is_some());
}

#[test]
fn half_an_environment_and_unsupported_ones_are_refused_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token")],
            "IDENTITY_HEADER is required",
        ),
        (
            &[("IDENTITY_HEADER", "secret-header")],
            "IDENTITY_ENDPOINT is required",
        ),
        (
            &[
                (
                    "IDENTITY_ENDPOINT",
                    "http://127.0.0.1:40342/metadata/identity/oauth2/token",
                ),
                ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
            ],
            "Azure Arc",
        ),
        (
            &[
                (
                    "IDENTITY_ENDPOINT",
                    "https://127.0.0.1:2377/metadata/identity/oauth2/token",
                ),
                ("IDENTITY_HEADER", "secret-header"),
                ("IDENTITY_SERVER_THUMBPRINT", "ABCDEF"),
            ],
            "Service Fabric",
        ),
        (
            &[
                ("IDENTITY_ENDPOINT", "not a url"),
                ("IDENTITY_HEADER", "secret-header"),
            ],
            "IDENTITY_ENDPOINT: the value is not an absolute URL",
        ),
        (
            &[(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                "http://169.254.169.254/?x=1",
            )],
            "AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://169.254.169.254` has a query string",
        ),
    ];
    for (pairs, expected) in cases {
        let error = ManagedIdentitySource::from_variables(variables(pairs)).unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
        assert!(!error.to_string().contains("secret-header"));
        let error = ManagedIdentity::builder()
            .from_variables(variables(pairs))
            .build()
            .unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
}

#[test]
fn endpoint_urls_are_checked_and_never_echo_credentials() {
    let refused = [
        (
            "http://user:p4ssw0rd@127.0.0.1:50342",
            "contains a user name or password",
        ),
        (
            "http://127.0.0.1:50342/?api-version=1",
            "has a query string or fragment",
        ),
        (
            "http://127.0.0.1:50342/#top",
            "has a query string or fragment",
        ),
        (
            "http://identity.example.com",
            "plain http to a host that is neither on this machine",
        ),
        ("ftp://127.0.0.1", "is not http or https"),
        ("169.254.169.254", "not an absolute URL"),
    ];
    for (url, expected) in refused {
        let imds = ManagedIdentity::builder()
            .imds_endpoint(url)
            .build()
            .unwrap_err();
        let app_service = ManagedIdentity::builder()
            .app_service(url, SecretString::from("h"))
            .build()
            .unwrap_err();
        for error in [imds, app_service] {
            assert!(error.to_string().contains(expected), "{url}: {error}");
            assert!(!error.to_string().contains("p4ssw0rd"), "{error}");
            assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
        }
        let shown = format!(
            "{:?}",
            ManagedIdentity::builder().app_service(url, SecretString::from("h"))
        );
        assert!(!shown.contains("p4ssw0rd"), "{shown}");
    }
    // https anywhere; http on this host and its network.
    for url in [
        "https://identity.example.com/token",
        "http://10.1.2.3:2579",
        "http://localhost:8081/msi/token",
    ] {
        ManagedIdentity::builder()
            .imds_endpoint(url)
            .build()
            .unwrap();
    }
    // A source made by hand is checked too.
    let by_hand = ManagedIdentitySource::Imds {
        endpoint: "http://user:p4ssw0rd@127.0.0.1:50342".parse().unwrap(),
    };
    assert!(!format!("{by_hand:?}").contains("p4ssw0rd"));
    assert!(ManagedIdentity::builder().source(by_hand).build().is_err());
}

#[test]
fn an_app_service_header_is_checked_without_being_shown() {
    for header in ["", "  ", "line\nbreak-secret"] {
        let error = ManagedIdentity::builder()
            .app_service(
                "http://127.0.0.1:41741/msi/token",
                SecretString::from(header),
            )
            .build()
            .unwrap_err();
        assert!(
            error.to_string().contains("App Service identity header"),
            "{error}"
        );
        assert!(!error.to_string().contains("break-secret"), "{error}");
    }
}

#[test]
fn ids_are_checked() {
    let cases = [
        (
            ManagedIdentity::builder().client_id("importer"),
            "`importer` is not a GUID",
        ),
        (ManagedIdentity::builder().object_id(""), "the id is empty"),
        (
            ManagedIdentity::builder().resource_id(
                "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/z",
            ),
            "is not the Azure resource id of a user-assigned identity",
        ),
        (
            ManagedIdentity::builder().client_id("Url=https://x;Secret=hidden"),
            "`(not shown)` is not a GUID",
        ),
    ];
    for (builder, expected) in cases {
        let error = builder.build().unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
        assert!(!error.to_string().contains("hidden"));
    }
}
