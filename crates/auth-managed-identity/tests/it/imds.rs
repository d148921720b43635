//! What the instance metadata endpoint receives: the probe, then `GET
//! /metadata/identity/oauth2/token` with the exact query and `Metadata: true`, for the
//! system-assigned identity and each way of naming a user-assigned one; the token read from
//! IMDS's string numbers.

use std::time::{Duration, SystemTime};

use d365_auth_core::{Grant, TokenProvider};
use d365_auth_managed_identity::{ManagedIdentity, ManagedIdentityId};
use secrecy::ExposeSecret as _;

use crate::{
    CLIENT_ID, OBJECT_ID, RESOURCE, RESOURCE_ID, RESOURCE_ID_QUERY, fast, imds, imds_token, probes,
    request, token_requests,
};

const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

#[tokio::test]
async fn system_assigned_sends_the_exact_query_and_the_metadata_header() {
    let server = imds(|_, _| imds_token("imds-token")).await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .retry_policy(fast())
        .build()
        .unwrap();
    let before = SystemTime::now();
    let token = grant.request_token(&request()).await.unwrap();

    assert_eq!(token.secret().expose_secret(), "imds-token");
    assert_eq!(token.token_type(), "Bearer");
    // "3599" as a string, counted from when the answer arrived.
    let lifetime = token.expires_on().duration_since(before).unwrap();
    assert!(
        lifetime > Duration::from_secs(3590) && lifetime <= Duration::from_secs(3600),
        "{lifetime:?}"
    );

    let all = server.requests();
    assert_eq!(all.len(), 2, "a probe, then the token request");
    let probe = &all[0];
    assert_eq!(probe.method, "GET");
    assert_eq!(
        probe.header("metadata"),
        None,
        "the probe is refused at once by IMDS"
    );
    let asked = &all[1];
    assert_eq!(asked.method, "GET");
    assert_eq!(
        asked.target,
        format!("{TOKEN_PATH}?api-version=2018-02-01&{RESOURCE}")
    );
    assert_eq!(asked.header("metadata"), Some("true"));
    assert_eq!(asked.header("x-identity-header"), None);
    assert!(asked.body.is_empty());
}

#[tokio::test]
async fn each_user_assigned_id_is_sent_as_imds_names_it() {
    for (identity, parameter) in [
        (
            ManagedIdentityId::ClientId(CLIENT_ID.to_owned()),
            format!("client_id={CLIENT_ID}"),
        ),
        (
            ManagedIdentityId::ObjectId(OBJECT_ID.to_owned()),
            format!("object_id={OBJECT_ID}"),
        ),
        (
            ManagedIdentityId::ResourceId(RESOURCE_ID.to_owned()),
            format!("msi_res_id={RESOURCE_ID_QUERY}"),
        ),
    ] {
        let server = imds(|_, _| imds_token("imds-token")).await;
        let grant = ManagedIdentity::builder()
            .imds_endpoint(&server.base)
            .identity(identity.clone())
            .retry_policy(fast())
            .build()
            .unwrap();
        assert_eq!(grant.identity(), &identity);
        grant.request_token(&request()).await.unwrap();
        let asked = token_requests(&server);
        assert_eq!(asked.len(), 1);
        assert_eq!(
            asked[0].target,
            format!("{TOKEN_PATH}?api-version=2018-02-01&{RESOURCE}&{parameter}"),
            "{identity:?}"
        );
        assert_eq!(asked[0].header("metadata"), Some("true"));
    }
}

#[tokio::test]
async fn the_builder_shortcuts_name_the_same_identities() {
    let host = "http://127.0.0.1:50342";
    for (built, expected) in [
        (
            ManagedIdentity::builder()
                .imds_endpoint(host)
                .client_id(CLIENT_ID),
            ManagedIdentityId::ClientId(CLIENT_ID.to_owned()),
        ),
        (
            ManagedIdentity::builder()
                .imds_endpoint(host)
                .object_id(format!(" {OBJECT_ID} ")),
            ManagedIdentityId::ObjectId(OBJECT_ID.to_owned()),
        ),
        (
            ManagedIdentity::builder()
                .imds_endpoint(host)
                .resource_id(RESOURCE_ID),
            ManagedIdentityId::ResourceId(RESOURCE_ID.to_owned()),
        ),
        (
            ManagedIdentity::builder()
                .imds_endpoint(host)
                .client_id(CLIENT_ID)
                .system_assigned(),
            ManagedIdentityId::System,
        ),
    ] {
        assert_eq!(built.build().unwrap().identity(), &expected);
    }
}

#[tokio::test]
async fn the_probe_is_sent_once_and_can_be_turned_off() {
    let server = imds(|_, _| imds_token("imds-token")).await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .retry_policy(fast())
        .build()
        .unwrap();
    assert_eq!(grant.probe_timeout(), Some(Duration::from_secs(1)));
    grant.request_token(&request()).await.unwrap();
    grant.clone().request_token(&request()).await.unwrap();
    assert_eq!(probes(&server), 1, "clones share what the probe learnt");
    assert_eq!(token_requests(&server).len(), 2);

    let server = imds(|_, _| imds_token("imds-token")).await;
    let grant = ManagedIdentity::builder()
        .imds_endpoint(&server.base)
        .probe(false)
        .build()
        .unwrap();
    assert_eq!(grant.probe_timeout(), None);
    grant.request_token(&request()).await.unwrap();
    assert_eq!(probes(&server), 0);
    assert_eq!(token_requests(&server).len(), 1);
}

#[tokio::test]
async fn an_imds_host_keeps_its_path_prefix() {
    let grant = ManagedIdentity::builder()
        .imds_endpoint("http://127.0.0.1:50342/proxy/")
        .build()
        .unwrap();
    assert_eq!(
        grant.token_endpoint().as_str(),
        "http://127.0.0.1:50342/proxy/metadata/identity/oauth2/token"
    );
}

#[tokio::test]
async fn the_grant_and_its_cache_key_name_the_source_endpoint_and_identity() {
    let system = ManagedIdentity::builder()
        .imds_endpoint("http://127.0.0.1:50342")
        .build()
        .unwrap();
    assert_eq!(system.grant(), Grant::new("managed_identity"));
    assert_eq!(
        system.cache_key(),
        "managed_identity|imds|http://127.0.0.1:50342/metadata/identity/oauth2/token|system"
    );
    let user = ManagedIdentity::builder()
        .imds_endpoint("http://127.0.0.1:50342")
        .client_id(CLIENT_ID)
        .build()
        .unwrap();
    assert_eq!(
        user.cache_key(),
        format!(
            "managed_identity|imds|http://127.0.0.1:50342/metadata/identity/oauth2/token|client_id={CLIENT_ID}"
        )
    );
    let default = ManagedIdentity::builder().build().unwrap();
    assert_eq!(
        default.token_endpoint().as_str(),
        "http://169.254.169.254/metadata/identity/oauth2/token"
    );
    let shown = format!("{default:?}");
    assert!(
        shown.contains("169.254.169.254") && shown.contains("System"),
        "{shown}"
    );
}
