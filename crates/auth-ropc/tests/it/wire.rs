//! What the password grant puts on the wire: the form for a public and a confidential
//! client, v2 scopes with `offline_access`, the v1 and AD FS `resource`, the user realm
//! call before it, and what comes back on the token.

use d365_auth_core::grant::{ClientKind, default_http_client};
use d365_auth_core::{AuthError, EndpointVersion, Grant, TokenProvider, TokenRequest};
use d365_auth_ropc::UsernamePassword;
use d365_test_support::{Canned, Captured, Server};
use secrecy::ExposeSecret;

const ORG: &str = "https://contoso.crm.dynamics.com";

fn request() -> TokenRequest {
    TokenRequest::for_url(ORG).unwrap()
}

fn names(request: &Captured) -> Vec<String> {
    let mut names: Vec<String> = request.form().into_iter().map(|(name, _)| name).collect();
    names.sort();
    names
}

async fn get(grant: &UsernamePassword) -> Result<d365_auth_core::AccessToken, AuthError> {
    grant.request_token(&request()).await
}

#[tokio::test]
async fn public_client_on_v2_sends_no_secret_and_asks_for_user_impersonation_and_offline_access() {
    let server = Server::managed(|_, _| Canned::token("ACCESS", Some("REFRESH"), 3599)).await;
    let grant = UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("contoso.onmicrosoft.com")
        .client_id("public-app")
        .username("ana@contoso.com")
        .password("pa ss&word=1".into())
        .build()
        .unwrap();
    assert_eq!(grant.client_kind(), ClientKind::Public);
    assert_eq!(grant.grant(), Grant::new("password"));

    let token = get(&grant).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let realm = &requests[0];
    assert!(realm.is_realm());
    assert_eq!(realm.method, "GET");
    assert_eq!(
        realm.target,
        "/common/userrealm/ana@contoso.com?api-version=1.0"
    );
    assert_eq!(realm.header("accept"), Some("application/json"));

    let sent = &requests[1];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path(), "/contoso.onmicrosoft.com/oauth2/v2.0/token");
    assert_eq!(
        names(sent),
        ["client_id", "grant_type", "password", "scope", "username"]
    );
    assert_eq!(sent.field("grant_type").as_deref(), Some("password"));
    assert_eq!(sent.field("client_id").as_deref(), Some("public-app"));
    assert_eq!(sent.field("username").as_deref(), Some("ana@contoso.com"));
    assert_eq!(sent.field("password").as_deref(), Some("pa ss&word=1"));
    assert_eq!(
        sent.field("scope").as_deref(),
        Some("https://contoso.crm.dynamics.com/user_impersonation offline_access")
    );
    assert!(sent.header("authorization").is_none());

    assert_eq!(token.secret().expose_secret(), "ACCESS");
    assert_eq!(
        token.refresh_token().map(ExposeSecret::expose_secret),
        Some("REFRESH")
    );
    assert_eq!(
        token.scope(),
        Some("https://contoso.crm.dynamics.com/user_impersonation")
    );
}

#[tokio::test]
async fn confidential_client_sends_its_secret_and_asks_for_default() {
    let server = Server::managed(|_, _| Canned::token("ACCESS", Some("REFRESH"), 3599)).await;
    let grant = UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("organizations")
        .client_id("confidential-app")
        .client_secret("app-secret".into())
        .username("ana@contoso.com")
        .password("pw".into())
        .build()
        .unwrap();
    assert_eq!(grant.client_kind(), ClientKind::Confidential);
    get(&grant).await.unwrap();

    let sent = &server.token_requests()[0];
    assert_eq!(sent.path(), "/organizations/oauth2/v2.0/token");
    assert_eq!(
        names(sent),
        [
            "client_id",
            "client_secret",
            "grant_type",
            "password",
            "scope",
            "username"
        ]
    );
    assert_eq!(sent.field("client_secret").as_deref(), Some("app-secret"));
    assert_eq!(
        sent.field("scope").as_deref(),
        Some("https://contoso.crm.dynamics.com/.default offline_access")
    );
}

#[tokio::test]
async fn v1_names_the_resource_and_drops_offline_access() {
    let server = Server::managed(|_, _| {
        Canned::json(
            200,
            r#"{"token_type":"Bearer","expires_in":"3599","expires_on":"1893456000","resource":"https://contoso.crm.dynamics.com/","access_token":"ACCESS","refresh_token":"REFRESH"}"#,
        )
    })
    .await;
    let grant = UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("contoso.onmicrosoft.com")
        .endpoint_version(EndpointVersion::V1)
        .client_id("public-app")
        .username("ana@contoso.com")
        .password("pw".into())
        .build()
        .unwrap();
    let token = get(&grant).await.unwrap();

    let sent = &server.token_requests()[0];
    assert_eq!(sent.path(), "/contoso.onmicrosoft.com/oauth2/token");
    assert_eq!(
        names(sent),
        [
            "client_id",
            "grant_type",
            "password",
            "resource",
            "username"
        ]
    );
    assert_eq!(
        sent.field("resource").as_deref(),
        Some("https://contoso.crm.dynamics.com/")
    );
    assert!(token.refresh_token().is_some());
}

#[tokio::test]
async fn adfs_uses_its_one_endpoint_with_resource_and_no_realm_call() {
    let server = Server::start(|_, _| Canned::token("ACCESS", Some("REFRESH"), 3599)).await;
    let grant = UsernamePassword::builder()
        .adfs(&server.base)
        .client_id("adfs-client")
        .username(r"CONTOSO\ana")
        .password("pw".into())
        .build()
        .unwrap();
    assert!(!grant.checks_user_realm());
    get(&grant).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path(), "/adfs/oauth2/token");
    assert_eq!(
        requests[0].field("username").as_deref(),
        Some(r"CONTOSO\ana")
    );
    assert_eq!(
        requests[0].field("resource").as_deref(),
        Some("https://contoso.crm.dynamics.com/")
    );
    assert!(requests[0].field("scope").is_none());
}

#[tokio::test]
async fn a_callers_http_client_is_used() {
    let server = Server::managed(|_, _| Canned::token("ACCESS", None, 3599)).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("my-agent/1.0")
        .build()
        .unwrap();
    let grant = UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("organizations")
        .client_id("app")
        .username("ana@contoso.com")
        .password("pw".into())
        .http_client(client)
        .build()
        .unwrap();
    get(&grant).await.unwrap();
    for request in server.requests() {
        assert_eq!(
            request.header("user-agent"),
            Some("my-agent/1.0"),
            "{request:?}"
        );
    }
    // The default client is d365's own.
    assert!(default_http_client().is_ok());
}

#[tokio::test]
async fn the_cache_key_names_endpoint_client_and_user_but_no_secret() {
    let build = |user: &str| {
        UsernamePassword::builder()
            .tenant("organizations")
            .client_id("app")
            .client_secret("the-secret".into())
            .username(user)
            .password("the-password".into())
            .build()
            .unwrap()
    };
    let ana = build("Ana@Contoso.com");
    let bo = build("bo@contoso.com");
    assert_ne!(ana.cache_key(), bo.cache_key());
    assert_eq!(ana.cache_key(), build("ana@contoso.com").cache_key());
    let key = ana.cache_key();
    assert!(
        key.starts_with(
            "password|https://login.microsoftonline.com/organizations/oauth2/v2.0/token|app|ana@contoso.com|"
        ),
        "{key}"
    );
    assert!(
        !key.contains("the-secret") && !key.contains("the-password"),
        "{key}"
    );
    let other_secret = UsernamePassword::builder()
        .tenant("organizations")
        .client_id("app")
        .client_secret("a-rotated-secret".into())
        .username("ana@contoso.com")
        .password("the-password".into())
        .build()
        .unwrap();
    assert_ne!(
        key,
        other_secret.cache_key(),
        "a confidential client's key carries its secret's fingerprint"
    );
}
