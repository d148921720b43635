//! What App Service's identity endpoint receives: `GET {IDENTITY_ENDPOINT}` with
//! `api-version=2019-08-01`, the resource, the identity as App Service names it, and
//! `X-IDENTITY-HEADER`; the token read from a string `expires_on` without `expires_in`.

use std::time::{Duration, UNIX_EPOCH};

use d365_auth_core::TokenProvider;
use d365_auth_managed_identity::{ManagedIdentity, ManagedIdentityId, ManagedIdentitySource};
use d365_test_support::Server;
use secrecy::{ExposeSecret as _, SecretString};

use crate::{
    CLIENT_ID, OBJECT_ID, RESOURCE, RESOURCE_ID, RESOURCE_ID_QUERY, app_service_token, epoch_in,
    fast, request, token_requests,
};

const HEADER: &str = "app-service-header-value";

#[tokio::test]
async fn app_service_sends_its_header_and_api_version_and_reads_a_string_expires_on() {
    let expires_on = epoch_in(Duration::from_secs(86_400));
    let server =
        Server::start(move |_, _| app_service_token("app-service-token", expires_on)).await;
    let grant = ManagedIdentity::builder()
        .app_service(
            format!("{}/msi/token", server.base),
            SecretString::from(HEADER),
        )
        .retry_policy(fast())
        .build()
        .unwrap();
    assert!(matches!(
        grant.source(),
        ManagedIdentitySource::AppService { .. }
    ));
    assert_eq!(grant.probe_timeout(), None, "App Service is never probed");

    let token = grant.request_token(&request()).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "app-service-token");
    assert_eq!(
        token.expires_on(),
        UNIX_EPOCH + Duration::from_secs(expires_on),
        "expires_on, a string epoch, is the expiry"
    );

    let all = server.requests();
    assert_eq!(all.len(), 1, "no probe");
    let asked = &all[0];
    assert_eq!(asked.method, "GET");
    assert_eq!(
        asked.target,
        format!("/msi/token?api-version=2019-08-01&{RESOURCE}")
    );
    assert_eq!(asked.header("x-identity-header"), Some(HEADER));
    assert_eq!(asked.header("metadata"), None);
    assert!(
        grant
            .cache_key()
            .starts_with("managed_identity|app-service|http://127.0.0.1:")
            && !grant.cache_key().contains(HEADER),
        "{}",
        grant.cache_key()
    );
}

#[tokio::test]
async fn each_user_assigned_id_is_sent_as_app_service_names_it() {
    for (identity, parameter) in [
        (
            ManagedIdentityId::ClientId(CLIENT_ID.to_owned()),
            format!("client_id={CLIENT_ID}"),
        ),
        (
            ManagedIdentityId::ObjectId(OBJECT_ID.to_owned()),
            format!("principal_id={OBJECT_ID}"),
        ),
        (
            ManagedIdentityId::ResourceId(RESOURCE_ID.to_owned()),
            format!("mi_res_id={RESOURCE_ID_QUERY}"),
        ),
    ] {
        let expires_on = epoch_in(Duration::from_secs(3600));
        let server = Server::start(move |_, _| app_service_token("t", expires_on)).await;
        let grant = ManagedIdentity::builder()
            .source(ManagedIdentitySource::AppService {
                endpoint: format!("{}/msi/token", server.base).parse().unwrap(),
                header: SecretString::from(HEADER),
            })
            .identity(identity.clone())
            .retry_policy(fast())
            .build()
            .unwrap();
        grant.request_token(&request()).await.unwrap();
        let asked = token_requests(&server);
        assert_eq!(asked.len(), 1);
        assert_eq!(
            asked[0].target,
            format!("/msi/token?api-version=2019-08-01&{RESOURCE}&{parameter}"),
            "{identity:?}"
        );
        assert_eq!(asked[0].header("x-identity-header"), Some(HEADER));
    }
}
